/* SPDX-License-Identifier: MIT */
/*
 * The kernel reader's offsets kept for the boot (lib/kread_offsets.h).
 *
 * Finding them means indexing this kernel's BTF (5 MB, 125,000 types) and
 * looking up some forty struct members by name: about 4 ms here, most of
 * what a dump's own preparation waited for before its freeze (the reader
 * is prepared in a thread while the dump makes its directory, and the
 * freeze needs it for its first task). Nothing they depend on changes
 * while the kernel runs, so the first dump of a boot writes them to a
 * file and the next ones read it (CRIU keeps its kernel facts the same
 * way, in /run/criu.kdat).
 *
 * A file is used only for the boot, the kernel's BTF, the program build
 * and the layout it was written for (struct kread_cache_key, the layout's
 * size and CACHE_VERSION), with a CRC32C of it all. A wrong offset would
 * make the reader's programs read the wrong kernel memory (they only read,
 * so no harm to the kernel, but a wrong answer for the dump): so only root
 * uses the cache, and only a file that root owns in a directory root owns,
 * neither writable by anyone else. The program's build id names the file:
 * a rebuilt program (other code, maybe other offsets) never reads what an
 * older one wrote, and two programs (ckptctl and ckptd) do not take turns
 * overwriting one file.
 */
#define LOG_PREFIX "kernel reader: "

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "kread_offsets.h"

#define CACHE_MAGIC "ckptkro\n"
/* bumped when what an offset means changes without the layout's size */
#define CACHE_VERSION 2u

struct cache_file {
	char magic[8];
	uint32_t version, offsets_size;
	struct kread_cache_key key;
	struct kread_offsets o;
	uint32_t crc; /* CRC32C of everything before it */
};

/* ---- the key ------------------------------------------------------------ */

struct note_walk {
	struct kread_cache_key *key;
	bool found;
};

/* The main program's NT_GNU_BUILD_ID note (the first object listed). */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct note_walk *w = arg;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum && !w->found; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
		const char *end = p + ph->p_memsz;

		if (ph->p_type != PT_NOTE)
			continue;
		while (!w->found && (size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
			const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
			size_t name = (n->n_namesz + 3) & ~3u, desc = (n->n_descsz + 3) & ~3u;
			const char *d = p + sizeof(*n) + name;

			if ((size_t)(end - p) < sizeof(*n) + name + desc)
				break;
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
			    !memcmp(p + sizeof(*n), "GNU", 4) && n->n_descsz > 0 &&
			    n->n_descsz <= sizeof(w->key->build_id)) {
				memcpy(w->key->build_id, d, n->n_descsz);
				w->key->build_id_len = n->n_descsz;
				w->found = true;
			}
			p = d + desc;
		}
	}
	return 1; /* the main program only */
}

int kread_cache_key_now(struct kread_cache_key *ret, struct ckpt_error *e)
{
	struct note_walk w = {.key = ret};
	_cleanup_close_ int fd = -1;
	struct stat st;
	ssize_t n;

	memset(ret, 0, sizeof(*ret));
	dl_iterate_phdr(find_build_id, &w);
	if (!w.found)
		return ckpt_err(e, -ENOENT, "this program has no build id");
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "/proc/sys/kernel/random/boot_id");
	n = read(fd, ret->boot_id, sizeof(ret->boot_id) - 1);
	if (n < 32)
		return ckpt_err(e, -EIO, "/proc/sys/kernel/random/boot_id: no boot id");
	ret->boot_id[strcspn(ret->boot_id, "\n")] = '\0';
	memset(ret->boot_id + strlen(ret->boot_id), 0, sizeof(ret->boot_id) - strlen(ret->boot_id));
	if (stat("/sys/kernel/btf/vmlinux", &st) < 0)
		return ckpt_err_errno(e, -errno, "/sys/kernel/btf/vmlinux");
	ret->btf_size = (uint64_t)st.st_size;
	return 0;
}

void kread_cache_path(const char *dir, const struct kread_cache_key *key, char *path, size_t len)
{
	char hex[2 * sizeof(key->build_id) + 1] = "";

	for (uint32_t i = 0; i < key->build_id_len && i < sizeof(key->build_id); i++)
		snprintf(hex + 2 * i, 3, "%02x", key->build_id[i]);
	snprintf(path, len, "%s/kread-%s.offsets", dir, hex);
}

/* ---- the file ----------------------------------------------------------- */

/* Whether st may hold what only root may say: root's, nobody else may write. */
static int trusted(const char *path, const struct stat *st, mode_t type, struct ckpt_error *e)
{
	if ((st->st_mode & S_IFMT) != type)
		return ckpt_err(e, -EINVAL, "%s is not a %s", path,
				type == S_IFDIR ? "directory" : "regular file");
	if (st->st_uid != 0 || (st->st_mode & (S_IWGRP | S_IWOTH)))
		return ckpt_err(e, -EPERM,
				"%s belongs to uid %u with mode %04o: only root may write it", path,
				(unsigned)st->st_uid, (unsigned)(st->st_mode & 07777));
	return 0;
}

static int open_dir(const char *dir, struct ckpt_error *e)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	int r;

	if (fd < 0)
		return ckpt_err_errno(e, -errno, "%s", dir);
	if (fstat(fd, &st) < 0)
		return ckpt_err_errno(e, -errno, "%s", dir);
	r = trusted(dir, &st, S_IFDIR, e);
	return r < 0 ? r : TAKE_FD(fd);
}

static uint32_t file_crc(const struct cache_file *f)
{
	return crc32c(0, f, offsetof(struct cache_file, crc));
}

int kread_cache_load(const char *dir, const struct kread_cache_key *key, struct kread_offsets *ret,
		     struct ckpt_error *e)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	char path[PATH_MAX];
	struct cache_file f;
	struct stat st;
	ssize_t n;
	int r;

	kread_cache_path(dir, key, path, sizeof(path));
	dfd = open_dir(dir, e);
	if (dfd < 0)
		return dfd;
	fd = openat(dfd, strrchr(path, '/') + 1, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "%s", path);
	if (fstat(fd, &st) < 0)
		return ckpt_err_errno(e, -errno, "%s", path);
	r = trusted(path, &st, S_IFREG, e);
	if (r < 0)
		return r;
	if (st.st_size != (off_t)sizeof(f))
		return ckpt_err(e, -EINVAL, "%s: %lld bytes, not %zu", path, (long long)st.st_size,
				sizeof(f));
	n = pread(fd, &f, sizeof(f), 0);
	if (n != (ssize_t)sizeof(f))
		return ckpt_err_errno(e, n < 0 ? -errno : -EIO, "reading %s", path);
	if (memcmp(f.magic, CACHE_MAGIC, sizeof(f.magic)) || f.version != CACHE_VERSION ||
	    f.offsets_size != sizeof(f.o))
		return ckpt_err(e, -EINVAL, "%s: another layout", path);
	if (file_crc(&f) != f.crc)
		return ckpt_err(e, -EBADMSG, "%s: damaged (its CRC32C does not match)", path);
	if (memcmp(&f.key, key, sizeof(*key)))
		return ckpt_err(e, -ESTALE, "%s: written for another boot or kernel", path);
	*ret = f.o;
	return 0;
}

int kread_cache_store(const char *dir, const struct kread_cache_key *key,
		      const struct kread_offsets *o, struct ckpt_error *e)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	struct cache_file f;
	ssize_t n;
	int r;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return ckpt_err_errno(e, -errno, "creating %s", dir);
	dfd = open_dir(dir, e);
	if (dfd < 0)
		return dfd;
	memset(&f, 0, sizeof(f));
	memcpy(f.magic, CACHE_MAGIC, sizeof(f.magic));
	f.version = CACHE_VERSION;
	f.offsets_size = sizeof(f.o);
	f.key = *key;
	f.o = *o;
	f.crc = file_crc(&f);
	kread_cache_path(dir, key, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "creating a file in %s", dir);
	n = write(fd, &f, sizeof(f));
	r = n == (ssize_t)sizeof(f) ? 0 : n < 0 ? -errno : -EIO;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return ckpt_err_errno(e, r, "writing %s", path);
	}
	return 0;
}
