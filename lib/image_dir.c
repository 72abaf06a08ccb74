/* SPDX-License-Identifier: MIT */
/*
 * Checkpoint directories: writing one (a temporary directory next to the
 * target, or an empty directory given as an fd; inventory.img with the size
 * and CRC32C of every image written last; fsync; rename into place) and
 * verifying one before anything is restored from it. The image files
 * themselves are read and written in image.c.
 */
#define LOG_PREFIX "image: "

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "fault.h"
#include "image.h"
#include "image_internal.h"
#include "log.h"
#include "thp.h"

#include "inventory.pb-c.h"
#include "pstree.pb-c.h"

/*
 * Read size when checksumming whole images (the buffer is page aligned):
 * one huge page, a fresh one per verification, which in 4 KiB pages cost a
 * first access each (5 ms of a 1 MiB restore's stage verify; lib/thp.h).
 * The fuzz build makes it smaller: under ASan a large buffer is an mmap and
 * a shadow fill on every verification, most of a fuzz run's time.
 */
#ifndef IMG_VERIFY_CHUNK
#define IMG_VERIFY_CHUNK THP_SIZE
#endif

static void dir_remove_contents(int dirfd);

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

/*
 * PATH.tmp.XXXXXX directories of earlier dumps to PATH that died (killed):
 * a live dump holds a lock on its own (flock on its directory fd, taken
 * right after mkdtemp), so one we can lock has no owner and is removed.
 */
static void remove_stale_tmp(const char *path, const char *parent)
{
	_cleanup_closedir_ DIR *dir = opendir(parent);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t len = strlen(base);
	struct dirent *de;

	while (dir && (de = readdir(dir))) {
		_cleanup_close_ int fd = -1;

		if (strncmp(de->d_name, base, len) || strncmp(de->d_name + len, ".tmp.", 5) ||
		    strlen(de->d_name + len + 5) != 6)
			continue;
		fd =
		    openat(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
			continue; /* a live dump's */
		pr_debug("removing %s/%s, left by a dump that died", parent, de->d_name);
		dir_remove_contents(fd);
		unlinkat(dirfd(dir), de->d_name, AT_REMOVEDIR);
	}
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
	remove_stale_tmp(d->path, d->parent);
	if (!mkdtemp(d->tmp_path)) {
		r = ckpt_err_errno(e, -errno, "cannot create temporary directory %s", d->tmp_path);
		free(d->tmp_path);
		d->tmp_path = NULL;
		goto fail;
	}
	d->dirfd = open(d->tmp_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dirfd < 0 || flock(d->dirfd, LOCK_EX | LOCK_NB) < 0) {
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

int img_dir_seal(struct img_dir *d, Inventory *inv, struct ckpt_error *e)
{
	struct img *img = NULL;
	Inventory out;
	int r;

	if (!d || d->committed || d->sealed)
		return ckpt_err(e, -EINVAL, "checkpoint directory is not open for writing");
	if (d->open_writers)
		return ckpt_err(e, -EBUSY, "%s: %u image(s) still open for writing", d->path,
				d->open_writers);
	r = ckpt_fault_inject("image-commit", e);
	if (r < 0)
		return r;
	/* reserved and never written (a task that had no pages after all) */
	for (; d->nres; d->nres--) {
		struct img_reservation *rv = &d->res[d->nres - 1];

		close(rv->fd);
		if (unlinkat(d->dirfd, rv->name, 0) < 0)
			return ckpt_err_errno(e, -errno, "cannot remove %s (reserved, not written)",
					      rv->name);
	}
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
	d->sealed = true;
	if (d->in_place) {
		/* inventory.img, written last, is what makes the directory valid */
		d->committed = true;
		pr_debug("committed %s in place (%zu images)", d->path, d->nrecs);
	}
	return 0;
}

int img_dir_publish(struct img_dir *d, struct ckpt_error *e)
{
	if (!d || !d->sealed)
		return ckpt_err(e, -EINVAL, "checkpoint directory is not sealed");
	if (d->in_place)
		return 0;
	if (d->committed)
		return ckpt_err(e, -EINVAL, "%s is committed already", d->path);
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

int img_dir_commit(struct img_dir *d, Inventory *inv, struct ckpt_error *e)
{
	int r = img_dir_seal(d, inv, e);

	return r < 0 ? r : img_dir_publish(d, e);
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
	for (size_t i = 0; i < d->nres; i++)
		close(d->res[i].fd);
	free(d->res);
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

/* Size and CRC32C of one listed image, read in full (or only its size). */
static int verify_image_sum(int dirfd, const ImageSum *s, unsigned char *buf, bool size_only,
			    struct ckpt_error *e)
{
	struct stat st;
	_cleanup_close_ int fd = img_open_file(dirfd, s->name, &st);
	uint64_t off = 0;
	uint32_t crc = 0;

	if (fd == -EBADMSG)
		return ckpt_err(e, -EBADMSG, "%s: not a regular file", s->name);
	if (fd < 0)
		return ckpt_err_errno(e, fd, "%s: listed in the inventory but cannot be opened",
				      s->name);
	if ((uint64_t)st.st_size != s->size)
		return ckpt_err(e, -EBADMSG,
				"%s: size is %" PRIu64 " bytes, the inventory recorded %" PRIu64
				" (truncated or modified)",
				s->name, (uint64_t)st.st_size, s->size);
	if (size_only)
		return 0;
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

static bool is_pages_name(const char *name)
{
	enum img_kind kind;
	int pid;

	return img_kind_from_name(name, &kind, &pid) == 0 && kind == IMG_PAGES;
}

static void verify_buf_free(unsigned char **buf)
{
	thp_unmap(*buf, IMG_VERIFY_CHUNK);
}

static int verify_sums(int dirfd, const Inventory *inv, unsigned flags, ImageSum **sorted,
		       struct ckpt_error *e)
{
	_cleanup_(verify_buf_free) unsigned char *buf = NULL;
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
	buf = thp_map(IMG_VERIFY_CHUNK);
	if (!buf)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < inv->n_images; i++) {
		bool size_only =
		    (flags & IMG_VERIFY_PAGES_BY_SIZE) && is_pages_name(inv->images[i]->name);

		r = verify_image_sum(dirfd, inv->images[i], buf, size_only, e);
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

/* Every part pages-PID.img says the task's data has is listed (checksummed). */
static int verify_pages_parts(int dirfd, const Inventory *inv, ImageSum **sorted, int pid,
			      struct ckpt_error *e)
{
	_cleanup_img_ struct img *img = NULL;
	char name[IMG_NAME_MAX];
	int r = img_open(dirfd, IMG_PAGES, pid, &img, e);

	if (r < 0)
		return r;
	for (unsigned k = 1; k < img_pages_nparts(img); k++) {
		img_pages_part_name(pid, k, name, sizeof(name));
		if (!listed(sorted, inv->n_images, name))
			return ckpt_err(e, -EBADMSG,
					"pid %d: %s is missing (pages-%d.img says its data has %u "
					"parts; not in the inventory)",
					pid, name, pid, img_pages_nparts(img));
	}
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
		r = verify_pages_parts(dirfd, inv, sorted, pids[i], e);
		if (r < 0)
			return r;
	}
	if (!root_found)
		return ckpt_err(e, -EBADMSG, "inventory.img: root_pid %d is not in pstree.img",
				inv->root_pid);
	return 0;
}

int img_dir_verify_fd(int dirfd, const char *what, Inventory **ret_inv, struct ckpt_error *e)
{
	return img_dir_verify_fd_flags(dirfd, what, 0, ret_inv, e);
}

int img_dir_verify_fd_flags(int dirfd, const char *what, unsigned flags, Inventory **ret_inv,
			    struct ckpt_error *e)
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
	r = verify_sums(dirfd, inv, flags, sorted, e);
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
	return img_dir_open_verified_flags(path, 0, ret_dirfd, ret_inv, e);
}

int img_dir_open_verified_flags(const char *path, unsigned flags, int *ret_dirfd,
				Inventory **ret_inv, struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	int r;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open checkpoint directory %s", path);
	r = img_dir_verify_fd_flags(fd, path, flags, ret_inv, e);
	if (r < 0)
		return r;
	*ret_dirfd = TAKE_FD(fd);
	return 0;
}

int img_dir_inventory_crc(int dirfd, uint32_t *ret, struct ckpt_error *e)
{
	struct stat st;
	_cleanup_close_ int fd = img_open_file(dirfd, "inventory.img", &st);
	char buf[16384];
	uint32_t crc = 0;
	ssize_t n;

	if (fd == -EBADMSG)
		return ckpt_err(e, -EBADMSG, "inventory.img: not a regular file");
	if (fd < 0)
		return ckpt_err_errno(e, fd, "inventory.img: cannot open");
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		crc = crc32c(crc, buf, (size_t)n);
	if (n < 0)
		return ckpt_err_errno(e, -errno, "reading inventory.img");
	*ret = crc;
	return 0;
}

void img_dir_remove_images(int dirfd)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	int fd;

	unlinkat(dirfd, "inventory.img", 0);
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir))) {
		size_t len = strlen(de->d_name);

		if (len > 4 && !strcmp(de->d_name + len - 4, ".img"))
			unlinkat(dirfd, de->d_name, 0);
	}
}
