/* SPDX-License-Identifier: MIT */
/*
 * Image files: the kind table, writing (header, buffered records and page
 * data, running CRC32C) and reading (header and record checks that never
 * trust a length). The checkpoint directory around them (temporary directory,
 * inventory last, rename into place, verification) is in image_dir.c; the
 * on-disk format is in docs/images.md; the JSON printer is in image_json.c.
 */
#define LOG_PREFIX "image: "

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "fault.h"
#include "image.h"
#include "image_internal.h"
#include "log.h"

#include "core.pb-c.h"
#include "files.pb-c.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"

/* Page images are laid out in 4 KiB pages whatever the reader's page size. */
#define IMG_PAGE_SIZE 4096u
/* Write buffer for record images, read-ahead buffer for records. */
#define IMG_BUF_SIZE (64u << 10)

/* "CKxx" little endian: one distinct magic per kind. */
#define IMG_MAGIC(a, b) (0x4b43u | ((uint32_t)(a) << 16) | ((uint32_t)(b) << 24))

static const struct img_kind_desc kind_table[IMG__COUNT] = {
    [IMG_INVENTORY] = {IMG_INVENTORY, "inventory", "inventory.img", IMG_MAGIC('I', 'V'), false,
		       &inventory__descriptor},
    [IMG_PSTREE] = {IMG_PSTREE, "pstree", "pstree.img", IMG_MAGIC('P', 'S'), false,
		    &pstree_entry__descriptor},
    [IMG_CORE] = {IMG_CORE, "core", "core-%d.img", IMG_MAGIC('C', 'O'), true,
		  &core_entry__descriptor},
    [IMG_MM] = {IMG_MM, "mm", "mm-%d.img", IMG_MAGIC('M', 'M'), true, &mm_entry__descriptor},
    [IMG_PAGEMAP] = {IMG_PAGEMAP, "pagemap", "pagemap-%d.img", IMG_MAGIC('P', 'M'), true,
		     &pagemap_entry__descriptor},
    [IMG_PAGES] = {IMG_PAGES, "pages", "pages-%d.img", IMG_MAGIC('P', 'G'), true, NULL},
    [IMG_FILES] = {IMG_FILES, "files", "files.img", IMG_MAGIC('F', 'L'), false,
		   &file_entry__descriptor},
    [IMG_FDS] = {IMG_FDS, "fds", "fds-%d.img", IMG_MAGIC('F', 'D'), true, &fd_entry__descriptor},
};

/* --- the kind table -------------------------------------------------------- */

const struct img_kind_desc *img_kind_desc(enum img_kind kind)
{
	if ((unsigned)kind >= IMG__COUNT)
		return NULL;
	return &kind_table[kind];
}

/* Parse a decimal pid (1..INT_MAX, no sign, no leading zero) of exactly len chars. */
static bool parse_pid(const char *s, size_t len, int *ret)
{
	long long v = 0;

	if (len == 0 || len > 10 || s[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (v > INT_MAX)
		return false;
	*ret = (int)v;
	return true;
}

/* "PID-K" of a pages part's name: K from 1 to IMG_PAGES_PARTS_MAX - 1. */
static bool parse_part_name(const char *s, size_t len, int *ret_pid)
{
	const char *dash = memchr(s, '-', len);
	int part;

	return dash && parse_pid(s, (size_t)(dash - s), ret_pid) &&
	       parse_pid(dash + 1, len - (size_t)(dash - s) - 1, &part) &&
	       part < IMG_PAGES_PARTS_MAX;
}

int img_kind_from_name(const char *name, enum img_kind *ret_kind, int *ret_pid)
{
	size_t len = strlen(name);

	for (unsigned k = 0; k < IMG__COUNT; k++) {
		const struct img_kind_desc *d = &kind_table[k];
		size_t plen = strlen(d->name);
		int pid = 0;

		if (!d->per_task) {
			if (strcmp(name, d->file_fmt))
				continue;
		} else {
			/* "<name>-<pid>.img" */
			if (len < plen + 6 || strncmp(name, d->name, plen) || name[plen] != '-' ||
			    strcmp(name + len - 4, ".img"))
				continue;
			if (!parse_pid(name + plen + 1, len - plen - 5, &pid) &&
			    !(d->kind == IMG_PAGES &&
			      parse_part_name(name + plen + 1, len - plen - 5, &pid)))
				continue;
		}
		if (ret_kind)
			*ret_kind = d->kind;
		if (ret_pid)
			*ret_pid = pid;
		return 0;
	}
	return -EINVAL;
}

void img_file_name(enum img_kind kind, int pid, char *buf, size_t len)
{
	const struct img_kind_desc *d = img_kind_desc(kind);

	if (!len)
		return;
	if (!d)
		snprintf(buf, len, "unknown-kind-%d.img", (int)kind);
	else if (d->per_task)
		snprintf(buf, len, "%s-%d.img", d->name, pid);
	else
		snprintf(buf, len, "%s", d->file_fmt);
}

void img_pages_part_name(int pid, unsigned part, char *buf, size_t len)
{
	if (!part)
		img_file_name(IMG_PAGES, pid, buf, len);
	else if (len)
		snprintf(buf, len, "pages-%d-%u.img", pid, part);
}

/* Header word 12 of a pages image: (parts - 1) << 16 | part; 0 for other kinds. */
static uint32_t part_word(unsigned part, unsigned nparts)
{
	return (uint32_t)(nparts - 1) << 16 | part;
}

/* --- small I/O helpers ----------------------------------------------------- */

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* All of iov[0..n) (consumed: the entries are advanced as they are written). */
static int writev_full(int fd, struct iovec *iov, size_t n)
{
	while (n) {
		ssize_t w = writev(fd, iov, n < IOV_MAX ? (int)n : IOV_MAX);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		while (n && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Returns bytes read (short only at end of file) or negative errno. */
ssize_t img_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, off + done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static uint32_t get_le32(const unsigned char *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void img_free(struct img *img)
{
	if (!img)
		return;
	if (img->fd >= 0)
		close(img->fd);
	if (img->writing && img->dir && img->dir->open_writers)
		img->dir->open_writers--;
	free(img->buf);
	free(img);
}

/* --- writing --------------------------------------------------------------- */

/* Accept bytes into the image: running size and checksum first, then buffer or write. */
static int img_flush(struct img *img, struct ckpt_error *e)
{
	int r;

	if (!img->buf_len)
		return 0;
	r = write_full(img->fd, img->buf, img->buf_len);
	if (r < 0)
		return ckpt_err_errno(e, r, "%s: write failed", img->name);
	img->buf_len = 0;
	return 0;
}

/* Store bytes (buffered or written), without the checksum. */
static int img_store(struct img *img, const void *data, size_t len, struct ckpt_error *e)
{
	int r;

	if (img->buf && len <= IMG_BUF_SIZE - img->buf_len) {
		memcpy(img->buf + img->buf_len, data, len);
		img->buf_len += len;
	} else {
		r = img_flush(img, e);
		if (r < 0)
			return r;
		r = write_full(img->fd, data, len);
		if (r < 0)
			return ckpt_err_errno(e, r, "%s: write failed at offset %" PRIu64,
					      img->name, img->off);
	}
	return 0;
}

static int img_write_raw(struct img *img, const void *data, size_t len, struct ckpt_error *e)
{
	int r = img_store(img, data, len, e);

	if (r < 0)
		return r;
	img->crc = crc32c(img->crc, data, len);
	img->off += len;
	return 0;
}

/*
 * Write LEN bytes of zeros: fallocate alone would not do, tmpfs leaves the
 * pages it allocates untouched until written (and the host may not have
 * backed them yet). The file offset stays at 0.
 */
static int fill_zeros(int fd, uint64_t len)
{
	enum { CHUNK = 1 << 20 };
	_cleanup_free_ char *zero = calloc(1, CHUNK);
	uint64_t off = 0;

	if (!zero)
		return -1;
	while (off < len) {
		size_t n = len - off < CHUNK ? (size_t)(len - off) : CHUNK;
		ssize_t w = pwrite(fd, zero, n, (off_t)off);

		if (w <= 0)
			return -1;
		off += (uint64_t)w;
	}
	return 0;
}

static int reserve(struct img_dir *d, enum img_kind kind, int pid, unsigned part, uint64_t bytes,
		   struct ckpt_error *e)
{
	const struct img_kind_desc *kd = img_kind_desc(kind);
	struct img_reservation *g, rv = {.kind = kind, .pid = pid, .part = part};
	_cleanup_close_ int fd = -1;

	if (!kd || !d || d->dirfd < 0 || d->committed || d->sealed)
		return ckpt_err(e, -EINVAL,
				"cannot reserve an image: directory not open for writing");
	if (kd->per_task && pid <= 0)
		return ckpt_err(e, -EINVAL, "%s image: invalid pid %d", kd->name, pid);
	if (part >= IMG_PAGES_PARTS_MAX)
		return ckpt_err(e, -EINVAL, "%s image of pid %d: no part %u (at most %u)", kd->name,
				pid, part, IMG_PAGES_PARTS_MAX);
	if (!kd->per_task)
		rv.pid = 0;
	if (kind == IMG_PAGES)
		img_pages_part_name(rv.pid, part, rv.name, sizeof(rv.name));
	else
		img_file_name(kind, rv.pid, rv.name, sizeof(rv.name));
	rv.len = IMG_PAGES_DATA_OFFSET + bytes;
	fd = openat(d->dirfd, rv.name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot create %s in %s", rv.name, d->tmp_path);
	if (fill_zeros(fd, rv.len) < 0) {
		/* not an error: the image is created as usual when written */
		pr_debug("%s: nothing reserved ahead (%m)", rv.name);
		close(TAKE_FD(fd));
		unlinkat(d->dirfd, rv.name, 0);
		return 0;
	}
	g = realloc(d->res, (d->nres + 1) * sizeof(*g));
	if (!g) {
		close(TAKE_FD(fd));
		unlinkat(d->dirfd, rv.name, 0);
		return ckpt_err(e, -ENOMEM, "out of memory");
	}
	d->res = g;
	rv.fd = TAKE_FD(fd);
	d->res[d->nres++] = rv;
	return 0;
}

int img_reserve(struct img_dir *d, enum img_kind kind, int pid, uint64_t bytes,
		struct ckpt_error *e)
{
	return reserve(d, kind, pid, 0, bytes, e);
}

int img_reserve_pages_part(struct img_dir *d, int pid, unsigned part, uint64_t bytes,
			   struct ckpt_error *e)
{
	return reserve(d, IMG_PAGES, pid, part, bytes, e);
}

unsigned img_reserved(const struct img_dir *d, enum img_kind kind, int pid)
{
	unsigned n = 0;

	for (size_t i = 0; i < d->nres; i++)
		if (d->res[i].kind == kind && d->res[i].pid == pid)
			n++;
	return n;
}

/* The file reserved for the image (part: of a pages image), or -1. */
static int take_reservation(struct img_dir *d, enum img_kind kind, int pid, unsigned part,
			    uint64_t *len)
{
	for (size_t i = 0; i < d->nres; i++) {
		struct img_reservation rv = d->res[i];

		if (rv.kind != kind || rv.pid != pid || rv.part != part)
			continue;
		d->res[i] = d->res[--d->nres];
		*len = rv.len;
		return rv.fd;
	}
	return -1;
}

static int create_image(struct img_dir *d, enum img_kind kind, int pid, unsigned part,
			unsigned nparts, bool record, struct img **ret, struct ckpt_error *e)
{
	const struct img_kind_desc *kd = img_kind_desc(kind);
	unsigned char hdr[IMG_PAGES_DATA_OFFSET] = {0};
	struct img *img;
	int r;

	if (!kd)
		return ckpt_err(e, -EINVAL, "unknown image kind %d", (int)kind);
	if (!d || d->dirfd < 0 || d->committed)
		return ckpt_err(e, -EINVAL,
				"%s image: checkpoint directory is not open for writing", kd->name);
	if (kd->per_task && pid <= 0)
		return ckpt_err(e, -EINVAL, "%s image: invalid pid %d", kd->name, pid);
	r = ckpt_fault_inject("image-create", e);
	if (r < 0)
		return r;
	img = calloc(1, sizeof(*img));
	if (!img)
		return ckpt_err(e, -ENOMEM, "out of memory");
	img->kind = kind;
	img->pid = kd->per_task ? pid : 0;
	img->writing = true;
	img->record = record;
	img->dir = d;
	img->part = part;
	img->nparts = nparts;
	d->open_writers++;
	if (kind == IMG_PAGES)
		img_pages_part_name(pid, part, img->name, sizeof(img->name));
	else
		img_file_name(kind, pid, img->name, sizeof(img->name));
	img->fd = take_reservation(d, kind, img->pid, part, &img->reserved);
	if (img->fd < 0)
		img->fd =
		    openat(d->dirfd, img->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (img->fd < 0) {
		r = ckpt_err_errno(e, -errno, "cannot create %s in %s", img->name, d->tmp_path);
		img_free(img);
		return r;
	}
	if (kd->msg_desc) {
		img->buf = malloc(IMG_BUF_SIZE);
		if (!img->buf) {
			img_free(img);
			return ckpt_err(e, -ENOMEM, "out of memory");
		}
	}
	put_le32(hdr, kd->magic);
	put_le32(hdr + 4, IMG_FORMAT_VERSION);
	put_le32(hdr + 8, kind);
	put_le32(hdr + 12, kind == IMG_PAGES ? part_word(part, nparts) : 0);
	/* Pages images: header then zeros up to the first page-aligned data offset. */
	r = img_write_raw(img, hdr, kd->msg_desc ? IMG_HEADER_SIZE : IMG_PAGES_DATA_OFFSET, e);
	if (r < 0) {
		img_free(img);
		return r;
	}
	*ret = img;
	return 0;
}

int img_create_internal(struct img_dir *d, enum img_kind kind, int pid, bool record,
			struct img **ret, struct ckpt_error *e)
{
	return create_image(d, kind, pid, 0, 1, record, ret, e);
}

int img_create_pages_part(struct img_dir *d, int pid, unsigned part, unsigned nparts,
			  struct img **ret, struct ckpt_error *e)
{
	if (nparts < 1 || nparts > IMG_PAGES_PARTS_MAX || part >= nparts)
		return ckpt_err(e, -EINVAL, "pages image of pid %d: no part %u of %u", pid, part,
				nparts);
	return create_image(d, IMG_PAGES, pid, part, nparts, true, ret, e);
}

int img_create(struct img_dir *d, enum img_kind kind, int pid, struct img **ret,
	       struct ckpt_error *e)
{
	if (kind == IMG_INVENTORY)
		return ckpt_err(e, -EINVAL, "inventory.img is written by img_dir_commit()");
	return img_create_internal(d, kind, pid, true, ret, e);
}

/*
 * Fault step image-write, looked up at an image's first write only: the
 * lookups (CKPT_FAULT and CKPT_PAUSE in the environment, about 100 ns) cost
 * more than packing a small record, and a final dump writes 15,000 pagemap
 * records while the tree is frozen (1.5 ms of lookups).
 */
static int write_fault(struct img *img, struct ckpt_error *e)
{
	int r;

	if (img->write_looked)
		return 0;
	r = ckpt_fault_inject("image-write", e);
	img->write_looked = r >= 0;
	return r;
}

int img_write_msg(struct img *img, const ProtobufCMessage *msg, struct ckpt_error *e)
{
	const struct img_kind_desc *kd = img_kind_desc(img->kind);
	_cleanup_free_ unsigned char *big = NULL;
	unsigned char *out;
	size_t len;
	int r;

	if (!img->writing)
		return ckpt_err(e, -EBADF, "%s: not open for writing", img->name);
	if (!kd->msg_desc)
		return ckpt_err(e, -EINVAL, "%s: a pages image holds no messages", img->name);
	if (!msg || msg->descriptor != kd->msg_desc)
		return ckpt_err(e, -EINVAL, "%s: record must be a %s, not a %s", img->name,
				kd->msg_desc->name, msg ? msg->descriptor->name : "NULL");
	r = write_fault(img, e);
	if (r < 0)
		return r;
	len = protobuf_c_message_get_packed_size(msg);
	if (len > IMG_MSG_MAX)
		return ckpt_err(e, -EFBIG, "%s: %s record of %zu bytes exceeds the limit of %u",
				img->name, kd->msg_desc->name, len, IMG_MSG_MAX);
	/* Pack straight into the write buffer when it fits there. */
	if (4 + len > IMG_BUF_SIZE - img->buf_len) {
		r = img_flush(img, e);
		if (r < 0)
			return r;
	}
	if (4 + len <= IMG_BUF_SIZE - img->buf_len) {
		out = img->buf + img->buf_len;
		put_le32(out, len);
		protobuf_c_message_pack(msg, out + 4);
		img->buf_len += 4 + len;
		img->crc = crc32c(img->crc, out, 4 + len);
		img->off += 4 + len;
		return 0;
	}
	big = malloc(4 + len);
	if (!big)
		return ckpt_err(e, -ENOMEM, "%s: out of memory for a %zu-byte record", img->name,
				len);
	put_le32(big, len);
	protobuf_c_message_pack(msg, big + 4);
	return img_write_raw(img, big, 4 + len, e);
}

static int check_pages_write(struct img *img, size_t len, struct ckpt_error *e)
{

	if (!img->writing)
		return ckpt_err(e, -EBADF, "%s: not open for writing", img->name);
	if (img->kind != IMG_PAGES)
		return ckpt_err(e, -EINVAL, "%s: page data goes only into pages images", img->name);
	if (len % IMG_PAGE_SIZE)
		return ckpt_err(e, -EINVAL, "%s: %zu bytes of page data is not a multiple of %u",
				img->name, len, IMG_PAGE_SIZE);
	return write_fault(img, e);
}

int img_write_pages(struct img *img, const void *buf, size_t len, struct ckpt_error *e)
{
	int r = check_pages_write(img, len, e);

	if (r < 0)
		return r;
	return img_write_raw(img, buf, len, e);
}

int img_write_pages_summed(struct img *img, const void *buf, size_t len, uint32_t crc,
			   struct ckpt_error *e)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return img_writev_pages_summed(img, &iov, 1, crc, e);
}

int img_writev_pages_summed(struct img *img, struct iovec *iov, size_t n, uint32_t crc,
			    struct ckpt_error *e)
{
	size_t len = 0;
	int r;

	for (size_t i = 0; i < n; i++)
		len += iov[i].iov_len;
	r = check_pages_write(img, len, e);
	if (r < 0)
		return r;
	r = writev_full(img->fd, iov, n);
	if (r < 0)
		return ckpt_err_errno(e, r, "%s: write failed at offset %" PRIu64, img->name,
				      img->off);
	img->crc = crc;
	img->off += len;
	return 0;
}

uint32_t img_crc(const struct img *img)
{
	return img->crc;
}

int img_close_write(struct img *img, struct ckpt_error *e)
{
	int r;

	if (!img)
		return ckpt_err(e, -EINVAL, "no image to close");
	if (!img->writing) {
		img_free(img);
		return ckpt_err(e, -EBADF, "image not open for writing");
	}
	r = img_flush(img, e);
	/* the zeros reserved and not overwritten go */
	if (r >= 0 && img->reserved > img->off && ftruncate(img->fd, (off_t)img->off) < 0)
		r = ckpt_err_errno(e, -errno, "%s: cannot cut it to its %" PRIu64 " bytes",
				   img->name, img->off);
	if (r >= 0)
		r = ckpt_fault_inject("image-close", e);
	if (r >= 0 && fsync(img->fd) < 0)
		r = ckpt_err_errno(e, -errno, "%s: fsync failed", img->name);
	if (r >= 0) {
		int fd = TAKE_FD(img->fd);

		if (close(fd) < 0 && errno != EINTR)
			r = ckpt_err_errno(e, -errno, "%s: close failed", img->name);
	}
	if (r >= 0 && img->record)
		r = img_dir_add_record(img->dir, img, e);
	if (r >= 0)
		pr_debug("%s: %" PRIu64 " bytes, crc32c %08x", img->name, img->off, img->crc);
	img_free(img);
	return r;
}

/* --- reading --------------------------------------------------------------- */

static const char *kind_name_of_magic(uint32_t magic)
{
	for (unsigned k = 0; k < IMG__COUNT; k++)
		if (kind_table[k].magic == magic)
			return kind_table[k].name;
	return NULL;
}

static int img_check_header(struct img *img, struct ckpt_error *e)
{
	const struct img_kind_desc *kd = &kind_table[img->kind];
	unsigned char hdr[IMG_HEADER_SIZE];
	uint32_t magic, version, kind, reserved;
	const char *other;
	ssize_t n;

	if (img->size < IMG_HEADER_SIZE)
		return ckpt_err(e, -EBADMSG,
				"%s: file of %" PRIu64 " bytes is too short for the %d-byte header",
				img->name, img->size, IMG_HEADER_SIZE);
	n = img_pread_full(img->fd, hdr, sizeof(hdr), 0);
	if (n < 0)
		return ckpt_err_errno(e, n, "%s: cannot read the header", img->name);
	if (n != sizeof(hdr))
		return ckpt_err(e, -EBADMSG, "%s: short read of the header", img->name);
	magic = get_le32(hdr);
	version = get_le32(hdr + 4);
	kind = get_le32(hdr + 8);
	reserved = get_le32(hdr + 12);
	if (magic != kd->magic) {
		other = kind_name_of_magic(magic);
		if (other)
			return ckpt_err(e, -EBADMSG,
					"%s: header magic is that of a %s image, not %s", img->name,
					other, kd->name);
		return ckpt_err(e, -EBADMSG, "%s: bad magic 0x%08x (a %s image has 0x%08x)",
				img->name, magic, kd->name, kd->magic);
	}
	if (version != IMG_FORMAT_VERSION)
		return ckpt_err(e, -EPROTONOSUPPORT,
				"%s: header format version %u, this ckpt reads version %d",
				img->name, version, IMG_FORMAT_VERSION);
	if (kind != (uint32_t)img->kind)
		return ckpt_err(e, -EBADMSG, "%s: header kind %u, expected %d (%s)", img->name,
				kind, (int)img->kind, kd->name);
	if (img->kind == IMG_PAGES) {
		unsigned part = reserved & 0xffff, nparts = (reserved >> 16) + 1;

		if (nparts > IMG_PAGES_PARTS_MAX || part >= nparts)
			return ckpt_err(e, -EBADMSG,
					"%s: header says part %u of %u (at most %d parts)",
					img->name, part, nparts, IMG_PAGES_PARTS_MAX);
		if (part != img->part)
			return ckpt_err(e, -EBADMSG, "%s: header says part %u, the name %u",
					img->name, part, img->part);
		img->nparts = nparts;
	} else if (reserved) {
		return ckpt_err(e, -EBADMSG, "%s: header reserved field is 0x%08x, not 0",
				img->name, reserved);
	}
	if (img->kind != IMG_PAGES) {
		img->off = IMG_HEADER_SIZE;
		return 0;
	}
	if (img->size < IMG_PAGES_DATA_OFFSET)
		return ckpt_err(e, -EBADMSG,
				"%s: size %" PRIu64 " is shorter than the %d-byte header page",
				img->name, img->size, IMG_PAGES_DATA_OFFSET);
	if ((img->size - IMG_PAGES_DATA_OFFSET) % IMG_PAGE_SIZE)
		return ckpt_err(e, -EBADMSG,
				"%s: page data of %" PRIu64
				" bytes is not a multiple of %u (truncated?)",
				img->name, img->size - IMG_PAGES_DATA_OFFSET, IMG_PAGE_SIZE);
	img->off = IMG_PAGES_DATA_OFFSET;
	return 0;
}

static int open_image(int dirfd, enum img_kind kind, int pid, unsigned part, struct img **ret,
		      struct ckpt_error *e)
{
	const struct img_kind_desc *kd = img_kind_desc(kind);
	struct img *img;
	struct stat st;
	int r;

	if (!kd)
		return ckpt_err(e, -EINVAL, "unknown image kind %d", (int)kind);
	if (kd->per_task && pid <= 0)
		return ckpt_err(e, -EINVAL, "%s image: invalid pid %d", kd->name, pid);
	img = calloc(1, sizeof(*img));
	if (!img)
		return ckpt_err(e, -ENOMEM, "out of memory");
	img->kind = kind;
	img->pid = kd->per_task ? pid : 0;
	img->part = part;
	if (kind == IMG_PAGES)
		img_pages_part_name(pid, part, img->name, sizeof(img->name));
	else
		img_file_name(kind, pid, img->name, sizeof(img->name));
	img->fd = img_open_file(dirfd, img->name, &st);
	if (img->fd == -EBADMSG) {
		r = ckpt_err(e, -EBADMSG, "%s: not a regular file", img->name);
		goto fail;
	}
	if (img->fd < 0) {
		r = ckpt_err_errno(e, img->fd, "%s: cannot open", img->name);
		goto fail;
	}
	img->size = st.st_size;
	r = img_check_header(img, e);
	if (r < 0)
		goto fail;
	*ret = img;
	return 0;
fail:
	img_free(img);
	return r;
}

int img_open_file(int dirfd, const char *name, struct stat *st)
{
	_cleanup_close_ int fd =
	    openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);

	if (fd < 0 || fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EBADMSG;
	if (fcntl(fd, F_SETFL, 0) < 0)
		return -errno;
	return TAKE_FD(fd);
}

int img_open(int dirfd, enum img_kind kind, int pid, struct img **ret, struct ckpt_error *e)
{
	return open_image(dirfd, kind, pid, 0, ret, e);
}

int img_open_pages_part(int dirfd, int pid, unsigned part, struct img **ret, struct ckpt_error *e)
{
	if (part >= IMG_PAGES_PARTS_MAX)
		return ckpt_err(e, -EINVAL, "pages image of pid %d: no part %u", pid, part);
	return open_image(dirfd, IMG_PAGES, pid, part, ret, e);
}

unsigned img_pages_nparts(const struct img *img)
{
	return img->kind == IMG_PAGES && img->nparts ? img->nparts : 1;
}

int img_open_name(int dirfd, const char *name, struct img **ret, struct ckpt_error *e)
{
	enum img_kind kind;
	int pid;

	if (img_kind_from_name(name, &kind, &pid) < 0)
		return ckpt_err(e, -EINVAL, "%s: not the name of a known image kind", name);
	if (kind == IMG_PAGES) {
		for (unsigned k = 0; k < IMG_PAGES_PARTS_MAX; k++) {
			char part[IMG_NAME_MAX];

			img_pages_part_name(pid, k, part, sizeof(part));
			if (!strcmp(part, name))
				return img_open_pages_part(dirfd, pid, k, ret, e);
		}
	}
	return img_open(dirfd, kind, pid, ret, e);
}

/* Read exactly len bytes at the current offset through the read-ahead buffer. */
static int img_read_bytes(struct img *img, void *dst, size_t len, struct ckpt_error *e)
{
	unsigned char *out = dst;

	if (!img->buf) {
		img->buf = malloc(IMG_BUF_SIZE);
		if (!img->buf)
			return ckpt_err(e, -ENOMEM, "out of memory");
		img->buf_len = 0;
	}
	while (len) {
		uint64_t pos = img->off;
		ssize_t n;

		if (pos >= img->buf_off && pos < img->buf_off + img->buf_len) {
			size_t avail = img->buf_off + img->buf_len - pos;
			size_t take = avail < len ? avail : len;

			memcpy(out, img->buf + (pos - img->buf_off), take);
			out += take;
			len -= take;
			img->off += take;
			continue;
		}
		if (len >= IMG_BUF_SIZE) {
			n = img_pread_full(img->fd, out, len, pos);
			if (n >= 0 && (size_t)n == len) {
				img->off += len;
				return 0;
			}
		} else {
			n = img_pread_full(img->fd, img->buf, IMG_BUF_SIZE, pos);
			if (n > 0) {
				img->buf_off = pos;
				img->buf_len = n;
				continue;
			}
		}
		if (n < 0)
			return ckpt_err_errno(e, n, "%s: read failed at offset %" PRIu64, img->name,
					      pos);
		return ckpt_err(e, -EBADMSG, "%s: short read at offset %" PRIu64 " (file shrank?)",
				img->name, pos);
	}
	return 0;
}

int img_read_msg(struct img *img, ProtobufCMessage **ret, struct ckpt_error *e)
{
	const struct img_kind_desc *kd = img_kind_desc(img->kind);
	_cleanup_free_ unsigned char *data = NULL;
	unsigned char lenbuf[4];
	uint64_t at = img->off, left;
	uint32_t len;
	ProtobufCMessage *msg;
	int r;

	*ret = NULL;
	if (img->writing)
		return ckpt_err(e, -EBADF, "%s: open for writing, not reading", img->name);
	if (!kd->msg_desc)
		return ckpt_err(e, -EINVAL, "%s: a pages image holds no records", img->name);
	if (at >= img->size)
		return 0;
	left = img->size - at;
	if (left < 4)
		return ckpt_err(e, -EBADMSG,
				"%s: record at offset %" PRIu64 ": truncated length (%" PRIu64
				" bytes left)",
				img->name, at, left);
	r = img_read_bytes(img, lenbuf, 4, e);
	if (r < 0)
		return r;
	len = get_le32(lenbuf);
	if (len > IMG_MSG_MAX)
		return ckpt_err(e, -EBADMSG,
				"%s: record at offset %" PRIu64 ": length %u exceeds limit %u",
				img->name, at, len, IMG_MSG_MAX);
	if (len > left - 4)
		return ckpt_err(e, -EBADMSG,
				"%s: record at offset %" PRIu64
				": length %u runs past the end of the "
				"file (%" PRIu64 " bytes left)",
				img->name, at, len, left - 4);
	data = malloc(len ? len : 1);
	if (!data)
		return ckpt_err(e, -ENOMEM, "%s: out of memory for a %u-byte record", img->name,
				len);
	r = img_read_bytes(img, data, len, e);
	if (r < 0)
		return r;
	msg = protobuf_c_message_unpack(kd->msg_desc, img->alloc, len, data);
	if (!msg)
		return ckpt_err(e, -EBADMSG,
				"%s: record at offset %" PRIu64 ": cannot unpack %s (%u bytes): "
				"corrupted or missing a required field",
				img->name, at, kd->msg_desc->name, len);
	*ret = msg;
	return 1;
}

int img_read_one(struct img *img, ProtobufCMessage **ret, struct ckpt_error *e)
{
	ProtobufCMessage *msg = NULL, *extra = NULL;
	int r;

	r = img_read_msg(img, &msg, e);
	if (r < 0)
		return r;
	if (r == 0)
		return ckpt_err(e, -EBADMSG, "%s: no record (empty image)", img->name);
	r = img_read_msg(img, &extra, e);
	if (r != 0) {
		protobuf_c_message_free_unpacked(msg, img->alloc);
		if (r < 0)
			return r;
		protobuf_c_message_free_unpacked(extra, img->alloc);
		return ckpt_err(e, -EBADMSG, "%s: more than one record", img->name);
	}
	*ret = msg;
	return 0;
}

void img_set_allocator(struct img *img, ProtobufCAllocator *a)
{
	img->alloc = a;
}

int img_fd(const struct img *img)
{
	return img->fd;
}

const char *img_name(const struct img *img)
{
	return img->name;
}

enum img_kind img_get_kind(const struct img *img)
{
	return img->kind;
}

uint64_t img_pages_data_size(const struct img *img)
{
	if (img->kind != IMG_PAGES)
		return 0;
	if (img->writing)
		return img->off - IMG_PAGES_DATA_OFFSET;
	return img->size - IMG_PAGES_DATA_OFFSET;
}

void img_close(struct img *img)
{
	img_free(img);
}

uint32_t img_fds_digest(FdEntry *const *fds, size_t n)
{
	uint32_t crc = 0;

	for (size_t i = 0; i < n; i++) {
		uint32_t v[3] = {htole32(fds[i]->fd), htole32(fds[i]->id),
				 htole32(fds[i]->has_cloexec && fds[i]->cloexec)};

		crc = crc32c(crc, v, sizeof(v));
	}
	return crc;
}
