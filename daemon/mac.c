/* SPDX-License-Identifier: MIT */
/* ckptd's seal on its checkpoints (mac.h). */
#define LOG_PREFIX "mac: "

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cleanup.h"
#include "image.h"
#include "mac.h"

#define MAC_HEX_LEN 64

int mac_key_load(const char *path, uint8_t key[MAC_KEY_LEN], struct ckpt_error *e)
{
	_cleanup_free_ char *dir = strdup(path);
	_cleanup_close_ int fd = -1;
	struct stat st;
	ssize_t n;

	if (!dir)
		return ckpt_err(e, -ENOMEM, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		uint8_t k[MAC_KEY_LEN];

		if (mkdir(dirname(dir), 0700) < 0 && errno != EEXIST)
			return ckpt_err_errno(e, -errno, "cannot make the directory of %s", path);
		if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k))
			return ckpt_err_errno(e, -errno, "getrandom for %s", path);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0 || write(fd, k, sizeof(k)) != (ssize_t)sizeof(k) || fsync(fd) < 0)
			return ckpt_err_errno(e, -errno, "cannot create the key %s", path);
		close(fd);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open the key %s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || st.st_mode & 077)
		return ckpt_err(e, -EPERM, "%s must be a regular file of root's, mode 0600", path);
	n = read(fd, key, MAC_KEY_LEN);
	if (n != MAC_KEY_LEN)
		return ckpt_err(e, -EINVAL, "%s: not a %d-byte key", path, MAC_KEY_LEN);
	return 0;
}

static void hmac_freep(EVP_MAC_CTX **c)
{
	EVP_MAC_CTX_free(*c);
}

/* HMAC-SHA256 keyed with key (OpenSSL 3 EVP_MAC). */
static EVP_MAC_CTX *hmac_new(const uint8_t key[MAC_KEY_LEN])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end()};

	EVP_MAC_free(mac); /* the context holds its own reference */
	if (c && !EVP_MAC_init(c, key, MAC_KEY_LEN, params)) {
		EVP_MAC_CTX_free(c);
		c = NULL;
	}
	return c;
}

/* Feed the whole file name in dirfd; exactly size bytes (the inventory's) when size != -1. */
static int feed_file(EVP_MAC_CTX *h, int dirfd, const char *name, int64_t size, uint8_t *buf,
		     struct ckpt_error *e)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int64_t total = 0;
	ssize_t n;

	if (fd < 0)
		return ckpt_err_errno(e, -errno, "%s", name);
	while ((n = read(fd, buf, 1 << 20)) > 0) {
		if (!EVP_MAC_update(h, buf, (size_t)n))
			return ckpt_err(e, -EIO, "HMAC failed");
		total += n;
	}
	if (n < 0)
		return ckpt_err_errno(e, -errno, "reading %s", name);
	if (size >= 0 && total != size)
		return ckpt_err(e, -EBADMSG, "%s: not the size the inventory records", name);
	return 0;
}

int mac_compute(const uint8_t key[MAC_KEY_LEN], uid_t uid, int dirfd, uint8_t out[32],
		struct ckpt_error *e)
{
	EVP_MAC_CTX *h __attribute__((cleanup(hmac_freep))) = hmac_new(key);
	_cleanup_free_ uint8_t *buf = malloc(1 << 20);
	_cleanup_img_ struct img *inv_img = NULL;
	ProtobufCMessage *m = NULL;
	Inventory *inv;
	uint32_t le_uid = htole32((uint32_t)uid);
	size_t len = 0;
	int r;

	if (!h || !buf)
		return ckpt_err(e, -ENOMEM, "out of memory (or no HMAC-SHA256 in libcrypto)");
	if (!EVP_MAC_update(h, (const uint8_t *)"ckpt-mac-1", 10) ||
	    !EVP_MAC_update(h, (const uint8_t *)&le_uid, sizeof(le_uid)))
		return ckpt_err(e, -EIO, "HMAC failed");
	r = feed_file(h, dirfd, "inventory.img", -1, buf, e);
	if (r < 0)
		return r;
	r = img_open_name(dirfd, "inventory.img", &inv_img, e);
	if (r >= 0)
		r = img_read_one(inv_img, &m, e);
	if (r < 0)
		return r;
	inv = (Inventory *)m;
	for (size_t i = 0; r >= 0 && i < inv->n_images; i++) {
		const char *name = inv->images[i]->name;

		/* the names are bound by the inventory's bytes; keep them plain */
		if (!name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
			r = ckpt_err(e, -EBADMSG, "inventory.img: bad image name");
		else
			r = feed_file(h, dirfd, name, (int64_t)inv->images[i]->size, buf, e);
	}
	inventory__free_unpacked(inv, NULL);
	if (r < 0)
		return r;
	if (!EVP_MAC_final(h, out, &len, 32) || len != 32)
		return ckpt_err(e, -EIO, "HMAC failed");
	return 0;
}

static void to_hex(const uint8_t mac[32], char hex[MAC_HEX_LEN + 2])
{
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", mac[i]);
	hex[MAC_HEX_LEN] = '\n';
	hex[MAC_HEX_LEN + 1] = '\0';
}

int mac_seal(const uint8_t key[MAC_KEY_LEN], uid_t uid, int img_dirfd, int out_fd,
	     struct ckpt_error *e)
{
	char hex[MAC_HEX_LEN + 2];
	uint8_t mac[32];
	int r = mac_compute(key, uid, img_dirfd, mac, e);

	if (r < 0)
		return r;
	to_hex(mac, hex);
	if (write(out_fd, hex, MAC_HEX_LEN + 1) != MAC_HEX_LEN + 1 || fsync(out_fd) < 0)
		return ckpt_err_errno(e, -errno, "writing " MAC_FILE);
	return 0;
}

int mac_check(const uint8_t key[MAC_KEY_LEN], uid_t uid, int img_dirfd, int mac_dirfd,
	      struct ckpt_error *e)
{
	_cleanup_close_ int fd =
	    openat(mac_dirfd, MAC_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	char want[MAC_HEX_LEN + 2], got[MAC_HEX_LEN + 2];
	struct ckpt_error tmp = {0};
	uint8_t mac[32];
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != uid ||
	    st.st_size != MAC_HEX_LEN + 1 || read(fd, got, MAC_HEX_LEN + 1) != MAC_HEX_LEN + 1)
		return ckpt_err(e, -EPERM,
				"no valid " MAC_FILE ": only checkpoints that ckptd made for "
				"uid %u can be restored for it (the restore needs privileges: "
				"the same pids, TCP repair, System V ids)",
				(unsigned)uid);
	got[MAC_HEX_LEN + 1] = '\0';
	if (mac_compute(key, uid, img_dirfd, mac, &tmp) < 0)
		return ckpt_err(e, -EPERM, MAC_FILE ": cannot check it: %s", tmp.msg);
	to_hex(mac, want);
	if (CRYPTO_memcmp(want, got, MAC_HEX_LEN) != 0)
		return ckpt_err(e, -EPERM,
				MAC_FILE
				": the images are not the ones ckptd wrote for uid %u "
				"(changed since, or made for another user): a restore for a "
				"non-root caller needs privileges only such images are granted",
				(unsigned)uid);
	return 0;
}
