/* SPDX-License-Identifier: MIT */
/*
 * Image files: the kind table, writing (temporary directory, running CRC32C,
 * inventory last, rename into place), reading (header and record checks that
 * never trust a length) and verification of a whole directory. The on-disk
 * format is in docs/images.md; the JSON printer is in image_json.c.
 */
#define LOG_PREFIX "image: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/utsname.h>
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
/* Read size when checksumming whole images (the buffer is page aligned). */
#define IMG_VERIFY_CHUNK (1u << 20)

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
			if (!parse_pid(name + plen + 1, len - plen - 5, &pid))
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

static int dir_check_target(const char *path, struct ckpt_error *e)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return ckpt_err_errno(e, -errno, "cannot use %s as checkpoint directory", path);
	}
	if (!S_ISDIR(st.st_mode))
		return ckpt_err(e, -EEXIST,
				"%s exists and is not a directory; choose a new checkpoint path",
				path);
	dir = opendir(path);
	if (!dir)
		return ckpt_err_errno(e, -errno, "cannot read directory %s", path);
	while ((errno = 0, de = readdir(dir))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			return ckpt_err(
			    e, -ENOTEMPTY,
			    "%s is not empty (contains %s); choose a new checkpoint path "
			    "or remove it",
			    path, de->d_name);
	}
	if (errno)
		return ckpt_err_errno(e, -errno, "cannot read directory %s", path);
	return 0;
}

int img_dir_create(const char *path, struct img_dir **ret, struct ckpt_error *e)
{
	struct img_dir *d;
	size_t len;
	char *slash;
	int r;

	if (!path || !*path)
		return ckpt_err(e, -EINVAL, "no checkpoint directory given");
	len = strlen(path);
	if (len > PATH_MAX - 32)
		return ckpt_err(e, -ENAMETOOLONG, "checkpoint path is too long (%zu bytes)", len);
	r = ckpt_fault_inject("image-dir-create", e);
	if (r < 0)
		return r;
	d = calloc(1, sizeof(*d));
	if (!d)
		return ckpt_err(e, -ENOMEM, "out of memory");
	d->dirfd = -1;
	d->path = strdup(path);
	if (!d->path)
		goto oom;
	/* "dir/" and "dir" are the same target; rename(2) wants no trailing slash. */
	for (len = strlen(d->path); len > 1 && d->path[len - 1] == '/'; len--)
		d->path[len - 1] = '\0';
	r = dir_check_target(d->path, e);
	if (r < 0)
		goto fail;
	if (asprintf(&d->tmp_path, "%s.tmp.XXXXXX", d->path) < 0) {
		d->tmp_path = NULL;
		goto oom;
	}
	d->parent = strdup(d->path);
	if (!d->parent)
		goto oom;
	slash = strrchr(d->parent, '/');
	if (!slash)
		strcpy(d->parent, ".");
	else if (slash == d->parent)
		d->parent[1] = '\0';
	else
		*slash = '\0';
	if (!mkdtemp(d->tmp_path)) {
		r = ckpt_err_errno(e, -errno, "cannot create temporary directory %s", d->tmp_path);
		free(d->tmp_path);
		d->tmp_path = NULL;
		goto fail;
	}
	d->dirfd = open(d->tmp_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dirfd < 0) {
		r = ckpt_err_errno(e, -errno, "cannot open %s", d->tmp_path);
		goto fail;
	}
	pr_debug("writing checkpoint %s in %s", d->path, d->tmp_path);
	*ret = d;
	return 0;
oom:
	r = ckpt_err(e, -ENOMEM, "out of memory");
fail:
	img_dir_free(d);
	return r;
}

/* The directory behind dirfd must be empty: checked without any path. */
static int dir_check_empty_fd(int dirfd, const char *what, struct ckpt_error *e)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	/* a new open file description: a dup would share (and move) the offset */
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot use %s as checkpoint directory", what);
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return ckpt_err_errno(e, -errno, "%s is not a readable directory", what);
	}
	while ((errno = 0, de = readdir(dir))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			return ckpt_err(e, -ENOTEMPTY,
					"%s is not empty (contains %s); choose a new checkpoint "
					"directory or empty it",
					what, de->d_name);
	}
	if (errno)
		return ckpt_err_errno(e, -errno, "cannot read directory %s", what);
	return 0;
}

int img_dir_create_at(int dirfd, const char *what, struct img_dir **ret, struct ckpt_error *e)
{
	struct img_dir *d;
	int r;

	if (!what || !*what)
		what = "the checkpoint directory";
	r = ckpt_fault_inject("image-dir-create", e);
	if (r < 0)
		return r;
	r = dir_check_empty_fd(dirfd, what, e);
	if (r < 0)
		return r;
	d = calloc(1, sizeof(*d));
	if (!d)
		return ckpt_err(e, -ENOMEM, "out of memory");
	d->in_place = true;
	d->path = strdup(what);
	d->tmp_path = strdup(what); /* only named in messages */
	d->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	if (!d->path || !d->tmp_path || d->dirfd < 0) {
		r = d->dirfd < 0 ? ckpt_err_errno(e, -errno, "cannot duplicate the fd of %s", what)
				 : ckpt_err(e, -ENOMEM, "out of memory");
		img_dir_free(d);
		return r;
	}
	pr_debug("writing checkpoint in place in %s", what);
	*ret = d;
	return 0;
}

int img_dir_fd(const struct img_dir *d)
{
	return d ? d->dirfd : -EBADF;
}

int img_dir_add_record(struct img_dir *d, const struct img *img, struct ckpt_error *e)
{
	if (d->nrecs == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct img_record *n = realloc(d->recs, cap * sizeof(*n));

		if (!n)
			return ckpt_err(e, -ENOMEM, "out of memory");
		d->recs = n;
		d->cap = cap;
	}
	memcpy(d->recs[d->nrecs].name, img->name, sizeof(img->name));
	d->recs[d->nrecs].size = img->off;
	d->recs[d->nrecs].crc = img->crc;
	d->nrecs++;
	return 0;
}

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

static int img_write_raw(struct img *img, const void *data, size_t len, struct ckpt_error *e)
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
	img->crc = crc32c(img->crc, data, len);
	img->off += len;
	return 0;
}

int img_create_internal(struct img_dir *d, enum img_kind kind, int pid, bool record,
			struct img **ret, struct ckpt_error *e)
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
	d->open_writers++;
	img_file_name(kind, pid, img->name, sizeof(img->name));
	img->fd = openat(d->dirfd, img->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
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
	put_le32(hdr + 12, 0);
	/* Pages images: header then zeros up to the first page-aligned data offset. */
	r = img_write_raw(img, hdr, kd->msg_desc ? IMG_HEADER_SIZE : IMG_PAGES_DATA_OFFSET, e);
	if (r < 0) {
		img_free(img);
		return r;
	}
	*ret = img;
	return 0;
}

int img_create(struct img_dir *d, enum img_kind kind, int pid, struct img **ret,
	       struct ckpt_error *e)
{
	if (kind == IMG_INVENTORY)
		return ckpt_err(e, -EINVAL, "inventory.img is written by img_dir_commit()");
	return img_create_internal(d, kind, pid, true, ret, e);
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
	r = ckpt_fault_inject("image-write", e);
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

int img_write_pages(struct img *img, const void *buf, size_t len, struct ckpt_error *e)
{
	int r;

	if (!img->writing)
		return ckpt_err(e, -EBADF, "%s: not open for writing", img->name);
	if (img->kind != IMG_PAGES)
		return ckpt_err(e, -EINVAL, "%s: page data goes only into pages images", img->name);
	if (len % IMG_PAGE_SIZE)
		return ckpt_err(e, -EINVAL, "%s: %zu bytes of page data is not a multiple of %u",
				img->name, len, IMG_PAGE_SIZE);
	r = ckpt_fault_inject("image-write", e);
	if (r < 0)
		return r;
	return img_write_raw(img, buf, len, e);
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

/* Defaults for the fields a caller may leave unset, stored in d. */
static void inventory_fill_defaults(struct img_dir *d, Inventory *inv)
{
	struct utsname u;
	struct timespec ts;

	/* the writer only ever writes its own format */
	inv->format_version = IMG_FORMAT_VERSION;
	if (!inv->tool_version) {
		snprintf(d->tool_version, sizeof(d->tool_version), "%s", CKPT_VERSION);
		inv->tool_version = d->tool_version;
	}
	if (uname(&u) == 0) {
		if (!inv->kernel_release) {
			memcpy(d->kernel_release, u.release, sizeof(d->kernel_release));
			inv->kernel_release = d->kernel_release;
		}
		if (!inv->hostname) {
			memcpy(d->hostname, u.nodename, sizeof(d->hostname));
			inv->hostname = d->hostname;
		}
	}
	if (!inv->has_created_unix_ns && clock_gettime(CLOCK_REALTIME, &ts) == 0) {
		inv->has_created_unix_ns = true;
		inv->created_unix_ns = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	}
}

static int inventory_fill_images(struct img_dir *d, Inventory *inv, struct ckpt_error *e)
{
	free(d->sums);
	free(d->sum_ptrs);
	d->sums = calloc(d->nrecs ? d->nrecs : 1, sizeof(*d->sums));
	d->sum_ptrs = calloc(d->nrecs ? d->nrecs : 1, sizeof(*d->sum_ptrs));
	if (!d->sums || !d->sum_ptrs)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < d->nrecs; i++) {
		image_sum__init(&d->sums[i]);
		d->sums[i].name = d->recs[i].name;
		d->sums[i].size = d->recs[i].size;
		d->sums[i].crc32c = d->recs[i].crc;
		d->sum_ptrs[i] = &d->sums[i];
	}
	inv->n_images = d->nrecs;
	inv->images = d->sum_ptrs;
	return 0;
}

static int fsync_path(const char *path, struct ckpt_error *e)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open %s to sync it", path);
	if (fsync(fd) < 0)
		return ckpt_err_errno(e, -errno, "fsync of %s failed", path);
	return 0;
}

int img_dir_commit(struct img_dir *d, Inventory *inv, struct ckpt_error *e)
{
	struct img *img = NULL;
	Inventory out;
	int r;

	if (!d || d->committed)
		return ckpt_err(e, -EINVAL, "checkpoint directory is not open for writing");
	if (d->open_writers)
		return ckpt_err(e, -EBUSY, "%s: %u image(s) still open for writing", d->path,
				d->open_writers);
	r = ckpt_fault_inject("image-commit", e);
	if (r < 0)
		return r;
	/*
	 * inv->images is filled as documented (it points into d, valid until
	 * img_dir_free()); the defaults go into a copy only, so that the caller's
	 * message never points at storage it does not know about.
	 */
	r = inventory_fill_images(d, inv, e);
	if (r < 0)
		return r;
	out = *inv;
	inventory_fill_defaults(d, &out);
	r = img_create_internal(d, IMG_INVENTORY, 0, false, &img, e);
	if (r < 0)
		return r;
	r = img_write_msg(img, &out.base, e);
	if (r < 0) {
		img_free(img);
		return r;
	}
	r = img_close_write(img, e);
	if (r < 0)
		return r;
	if (fsync(d->dirfd) < 0)
		return ckpt_err_errno(e, -errno, "fsync of %s failed", d->tmp_path);
	if (d->in_place) {
		/* inventory.img, written last, is what makes the directory valid */
		d->committed = true;
		pr_debug("committed %s in place (%zu images)", d->path, d->nrecs);
		return 0;
	}
	if (rename(d->tmp_path, d->path) < 0) {
		if (errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR)
			return ckpt_err(e, -errno,
					"cannot move the checkpoint into place: %s appeared and is "
					"not an empty directory",
					d->path);
		return ckpt_err_errno(e, -errno, "cannot rename %s to %s", d->tmp_path, d->path);
	}
	d->committed = true;
	pr_debug("committed %s (%zu images)", d->path, d->nrecs);
	return fsync_path(d->parent, e);
}

static void dir_remove_contents(int dirfd)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	int fd = dup(dirfd);

	if (fd < 0)
		return;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return;
	}
	rewinddir(dir); /* the dup shares the offset of dirfd, which may have been read */
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd, de->d_name, 0) < 0 && errno == EISDIR)
			unlinkat(dirfd, de->d_name, AT_REMOVEDIR);
	}
}

void img_dir_free(struct img_dir *d)
{
	if (!d)
		return;
	if (!d->committed && d->in_place) {
		if (d->dirfd >= 0)
			dir_remove_contents(d->dirfd);
	} else if (!d->committed && d->tmp_path) {
		if (d->dirfd >= 0)
			dir_remove_contents(d->dirfd);
		if (rmdir(d->tmp_path) < 0)
			pr_debug("cannot remove %s: %m", d->tmp_path);
	}
	if (d->dirfd >= 0)
		close(d->dirfd);
	free(d->recs);
	free(d->sums);
	free(d->sum_ptrs);
	free(d->path);
	free(d->tmp_path);
	free(d->parent);
	free(d);
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
	if (reserved)
		return ckpt_err(e, -EBADMSG, "%s: header reserved field is 0x%08x, not 0",
				img->name, reserved);
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

int img_open(int dirfd, enum img_kind kind, int pid, struct img **ret, struct ckpt_error *e)
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
	img_file_name(kind, pid, img->name, sizeof(img->name));
	img->fd = openat(dirfd, img->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (img->fd < 0) {
		r = ckpt_err_errno(e, -errno, "%s: cannot open", img->name);
		goto fail;
	}
	if (fstat(img->fd, &st) < 0) {
		r = ckpt_err_errno(e, -errno, "%s: cannot stat", img->name);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		r = ckpt_err(e, -EBADMSG, "%s: not a regular file", img->name);
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

int img_open_name(int dirfd, const char *name, struct img **ret, struct ckpt_error *e)
{
	enum img_kind kind;
	int pid;

	if (img_kind_from_name(name, &kind, &pid) < 0)
		return ckpt_err(e, -EINVAL, "%s: not the name of a known image kind", name);
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
	msg = protobuf_c_message_unpack(kd->msg_desc, NULL, len, data);
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
		protobuf_c_message_free_unpacked(msg, NULL);
		if (r < 0)
			return r;
		protobuf_c_message_free_unpacked(extra, NULL);
		return ckpt_err(e, -EBADMSG, "%s: more than one record", img->name);
	}
	*ret = msg;
	return 0;
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

/* --- verification ---------------------------------------------------------- */

static bool name_is_plain(const char *name)
{
	return name && *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..") &&
	       strlen(name) < IMG_NAME_MAX;
}

static int cmp_sum_name(const void *a, const void *b)
{
	return strcmp((*(ImageSum *const *)a)->name, (*(ImageSum *const *)b)->name);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* Size and CRC32C of one listed image, read in full. */
static int verify_image_sum(int dirfd, const ImageSum *s, unsigned char *buf, struct ckpt_error *e)
{
	_cleanup_close_ int fd = openat(dirfd, s->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	uint64_t off = 0;
	uint32_t crc = 0;
	struct stat st;

	if (fd < 0)
		return ckpt_err_errno(e, -errno, "%s: listed in the inventory but cannot be opened",
				      s->name);
	if (fstat(fd, &st) < 0)
		return ckpt_err_errno(e, -errno, "%s: cannot stat", s->name);
	if (!S_ISREG(st.st_mode))
		return ckpt_err(e, -EBADMSG, "%s: not a regular file", s->name);
	if ((uint64_t)st.st_size != s->size)
		return ckpt_err(e, -EBADMSG,
				"%s: size is %" PRIu64 " bytes, the inventory recorded %" PRIu64
				" (truncated or modified)",
				s->name, (uint64_t)st.st_size, s->size);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (off < s->size) {
		size_t want = s->size - off < IMG_VERIFY_CHUNK ? s->size - off : IMG_VERIFY_CHUNK;
		ssize_t n = img_pread_full(fd, buf, want, off);

		if (n < 0)
			return ckpt_err_errno(e, n, "%s: read failed at offset %" PRIu64, s->name,
					      off);
		if ((size_t)n != want)
			return ckpt_err(e, -EBADMSG, "%s: short read at offset %" PRIu64, s->name,
					off);
		crc = crc32c(crc, buf, n);
		off += n;
	}
	if (crc != s->crc32c)
		return ckpt_err(e, -EBADMSG,
				"%s: checksum mismatch (crc32c %08x, the inventory recorded %08x): "
				"the image is corrupted",
				s->name, crc, s->crc32c);
	return 0;
}

static bool listed(ImageSum **sorted, size_t n, const char *name)
{
	ImageSum key = {.name = (char *)name}, *kp = &key;

	return bsearch(&kp, sorted, n, sizeof(*sorted), cmp_sum_name) != NULL;
}

static int verify_sums(int dirfd, const Inventory *inv, ImageSum **sorted, struct ckpt_error *e)
{
	_cleanup_free_ unsigned char *buf = NULL;
	int r;

	for (size_t i = 0; i < inv->n_images; i++) {
		const char *name = inv->images[i]->name;

		if (!name_is_plain(name))
			return ckpt_err(e, -EBADMSG,
					"inventory.img: images[%zu]: name \"%.64s\" is not a plain "
					"file name",
					i, name ? name : "");
		if (!strcmp(name, "inventory.img"))
			return ckpt_err(e, -EBADMSG, "inventory.img: lists itself");
		sorted[i] = inv->images[i];
	}
	qsort(sorted, inv->n_images, sizeof(*sorted), cmp_sum_name);
	for (size_t i = 1; i < inv->n_images; i++)
		if (!strcmp(sorted[i - 1]->name, sorted[i]->name))
			return ckpt_err(e, -EBADMSG, "inventory.img: %s is listed twice",
					sorted[i]->name);
	/* before reading GiBs of checksums */
	if (!listed(sorted, inv->n_images, "pstree.img"))
		return ckpt_err(e, -EBADMSG, "inventory.img: pstree.img is not listed");
	/* page aligned: the kernel copies into a misaligned buffer at a third of the speed */
	buf = aligned_alloc(4096, IMG_VERIFY_CHUNK);
	if (!buf)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < inv->n_images; i++) {
		r = verify_image_sum(dirfd, inv->images[i], buf, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Every pid of pstree.img: read after the checksums matched. */
static int read_pstree_pids(int dirfd, int **ret_pids, size_t *ret_n, struct ckpt_error *e)
{
	_cleanup_img_ struct img *img = NULL;
	_cleanup_free_ int *pids = NULL;
	size_t n = 0, cap = 0;
	int r;

	r = img_open(dirfd, IMG_PSTREE, 0, &img, e);
	if (r < 0)
		return r;
	for (;;) {
		ProtobufCMessage *m;
		PstreeEntry *pe;

		r = img_read_msg(img, &m, e);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		pe = (PstreeEntry *)m;
		if (pe->pid <= 0) {
			r = ckpt_err(e, -EBADMSG, "pstree.img: entry %zu: invalid pid %d", n,
				     pe->pid);
			protobuf_c_message_free_unpacked(m, NULL);
			return r;
		}
		if (pe->has_zombie_status) {
			/* a zombie has no image of its own */
			protobuf_c_message_free_unpacked(m, NULL);
			continue;
		}
		if (n == cap) {
			int *np;

			cap = cap ? cap * 2 : 16;
			np = realloc(pids, cap * sizeof(*np));
			if (!np) {
				protobuf_c_message_free_unpacked(m, NULL);
				return ckpt_err(e, -ENOMEM, "out of memory");
			}
			pids = np;
		}
		pids[n++] = pe->pid;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	if (!n)
		return ckpt_err(e, -EBADMSG, "pstree.img: no task");
	*ret_pids = TAKE_PTR(pids);
	*ret_n = n;
	return 0;
}

static int verify_tasks(int dirfd, const Inventory *inv, ImageSum **sorted, struct ckpt_error *e)
{
	static const enum img_kind task_kinds[] = {IMG_CORE, IMG_MM, IMG_PAGEMAP, IMG_PAGES,
						   IMG_FDS};
	_cleanup_free_ int *pids = NULL;
	bool root_found = false;
	char name[IMG_NAME_MAX];
	size_t n = 0;
	int r;

	r = read_pstree_pids(dirfd, &pids, &n, e);
	if (r < 0)
		return r;
	qsort(pids, n, sizeof(*pids), cmp_int);
	for (size_t i = 0; i < n; i++) {
		if (i && pids[i] == pids[i - 1])
			return ckpt_err(e, -EBADMSG, "pstree.img: pid %d appears twice", pids[i]);
		if (pids[i] == inv->root_pid)
			root_found = true;
		for (size_t k = 0; k < ARRAY_SIZE(task_kinds); k++) {
			img_file_name(task_kinds[k], pids[i], name, sizeof(name));
			if (!listed(sorted, inv->n_images, name))
				return ckpt_err(e, -EBADMSG,
						"pid %d: %s is missing (not in the inventory)",
						pids[i], name);
		}
	}
	if (!root_found)
		return ckpt_err(e, -EBADMSG, "inventory.img: root_pid %d is not in pstree.img",
				inv->root_pid);
	return 0;
}

int img_dir_verify_fd(int dirfd, const char *what, Inventory **ret_inv, struct ckpt_error *e)
{
	_cleanup_img_ struct img *img = NULL;
	_cleanup_free_ ImageSum **sorted = NULL;
	ProtobufCMessage *m = NULL;
	Inventory *inv;
	int r;

	if (!what)
		what = "checkpoint";
	r = ckpt_fault_inject("image-verify", e);
	if (r < 0)
		return r;
	r = img_open(dirfd, IMG_INVENTORY, 0, &img, e);
	if (r == -ENOENT)
		return ckpt_err(e, r,
				"%s: no inventory.img: not a checkpoint directory (or an "
				"unfinished one)",
				what);
	if (r < 0)
		return ckpt_err_wrap(e, "%s", what);
	r = img_read_one(img, &m, e);
	if (r < 0)
		return ckpt_err_wrap(e, "%s", what);
	inv = (Inventory *)m;
	if (inv->format_version != IMG_FORMAT_VERSION) {
		r = ckpt_err(e, -EPROTONOSUPPORT,
			     "%s: inventory.img: format_version %u, this ckpt reads version %d",
			     what, inv->format_version, IMG_FORMAT_VERSION);
		goto fail;
	}
	sorted = calloc(inv->n_images ? inv->n_images : 1, sizeof(*sorted));
	if (!sorted) {
		r = ckpt_err(e, -ENOMEM, "out of memory");
		goto fail;
	}
	r = verify_sums(dirfd, inv, sorted, e);
	if (r >= 0)
		r = verify_tasks(dirfd, inv, sorted, e);
	if (r < 0) {
		ckpt_err_wrap(e, "%s", what);
		goto fail;
	}
	pr_debug("%s: %zu images verified", what, inv->n_images);
	*ret_inv = inv;
	return 0;
fail:
	inventory__free_unpacked(inv, NULL);
	return r;
}

int img_dir_open_verified(const char *path, int *ret_dirfd, Inventory **ret_inv,
			  struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	int r;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open checkpoint directory %s", path);
	r = img_dir_verify_fd(fd, path, ret_inv, e);
	if (r < 0)
		return r;
	*ret_dirfd = TAKE_FD(fd);
	return 0;
}
