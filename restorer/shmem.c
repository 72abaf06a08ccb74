/* SPDX-License-Identifier: MIT */
/*
 * Shared memory objects (FILE_SHMEM entries of files.img, dump/dump_shmem.c):
 * each is created ONCE, by the restorer process P, in stage files, before
 * anything is forked, and kept at a high fd (rfile.map_fd) that every task
 * inherits; stage memory maps it MAP_SHARED (or MAP_PRIVATE) at the saved
 * address and offset by remote mmap, so that every sharer maps the same
 * object again. The content is read from pages-<owner>.img straight into a
 * mapping of the object in P (holes stay holes) and its CRC32C checked.
 *
 *   anonymous  mmap(MAP_SHARED|MAP_ANONYMOUS) in P, filled, then the shmem
 *              file itself opened through /proc/self/map_files (so the
 *              tasks' maps still say "/dev/zero (deleted)"), P's mapping gone
 *   memfd      memfd_create(name), mode, size, content, seals last
 *   deleted    O_TMPFILE in its directory, size, content, owner, mode
 *   file       the file itself, if it is still the dumped one (identity);
 *              a missing tmpfs file is recreated with the saved content,
 *              owner, mode and mtime; a changed one is refused (stage
 *              verify). Opened read-only unless an area maps it shared and
 *              writable: private and read-only mappings, a program's exe
 *              link (PR_SET_MM_MAP refuses a file open for writing, as
 *              exec does) and the fds reopened from it need no more
 *   SysV       the segment with the saved id: reused if it is still the
 *              same (key, size, creator pid), else recreated with that id
 *              (/proc/sys/kernel/shm_next_id); the saved content is written
 *              into it; each task attaches it with shmat(SHM_REMAP)
 */
#define LOG_PREFIX "shmem: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "fault.h"
#include "log.h"
#include "restore.h"

#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef SHM_REMAP
#define SHM_REMAP 040000
#endif
/* Larger than any object a real program has; bounds every computation below. */
#define SHMEM_MAX_SIZE (1ULL << 46)
#define SHMEM_MAX_RUNS (1u << 24)
#define MEMFD_NAME_MAX 249
#define OPEN_FLAGS                                                                                 \
	(O_ACCMODE | O_APPEND | O_NONBLOCK | O_NOATIME | O_DIRECT | O_SYNC | O_DSYNC | O_LARGEFILE)

static uint64_t page_up(uint64_t v)
{
	return (v + RST_PAGE_SIZE - 1) & ~(RST_PAGE_SIZE - 1);
}

static const ShmemEntry *shm(const struct rfile *f)
{
	return f->fe->shmem;
}

static uint64_t content_len(const ShmemEntry *se)
{
	uint64_t n = 0;

	for (size_t i = 0; i < se->n_runs; i++)
		n += se->runs[i]->len;
	return n;
}

uint64_t shmem_task_bytes(const struct restore_ctx *ctx, pid_t pid)
{
	uint64_t n = 0;

	for (size_t i = 0; i < ctx->nfiles; i++) {
		const ShmemEntry *se = ctx->files[i].fe->shmem;

		if (ctx->files[i].fe->type != FILE_TYPE__FILE_SHMEM || !se || !se->content_saved ||
		    !se->has_pages_pid || se->pages_pid != (uint32_t)pid)
			continue;
		for (size_t k = 0; k < se->n_runs && k < SHMEM_MAX_RUNS; k++)
			if (se->runs[k]->len <= SHMEM_MAX_SIZE)
				n += se->runs[k]->len;
	}
	return n;
}

/* The directory part of path ("/" for "/x"), into buf. */
static const char *dir_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash && slash != path ? (size_t)(slash - path) : 1;

	snprintf(buf, len, "%.*s", (int)n, path);
	return buf;
}

/* ---- stage verify ---------------------------------------------------------------- */

static int verify_content(struct restore_ctx *ctx, const struct rfile *f)
{
	struct ckpt_error *e = &ctx->err;
	const ShmemEntry *se = shm(f);
	uint64_t prev = 0, total, shm_bytes;
	struct rtask *t;

	if (se->n_runs > SHMEM_MAX_RUNS)
		return ckpt_err(e, -E2BIG, "files.img: object %u (%s): %zu runs", f->fe->id,
				f->fe->path, se->n_runs);
	for (size_t i = 0; i < se->n_runs; i++) {
		const ShmemRun *r = se->runs[i];

		if (r->offset % RST_PAGE_SIZE || r->len % RST_PAGE_SIZE || !r->len ||
		    r->offset < prev || r->len > SHMEM_MAX_SIZE ||
		    r->offset + r->len > page_up(se->size))
			return ckpt_err(e, -EINVAL,
					"files.img: object %u (%s): field runs[%zu]: %#" PRIx64
					"+%#" PRIx64 " is unaligned, out of order or beyond the "
					"object's %" PRIu64 " bytes",
					f->fe->id, f->fe->path, i, r->offset, r->len, se->size);
		prev = r->offset + r->len;
	}
	if (!se->content_saved)
		return 0;
	t = se->has_pages_pid ? task_by_pid(ctx, (pid_t)se->pages_pid) : NULL;
	if (!t || !se->has_pages_off || !se->has_content_crc32c)
		return ckpt_err(e, -EINVAL,
				"files.img: object %u (%s): fields pages_pid/pages_off/"
				"content_crc32c: missing, or pid %u is not a task of the tree",
				f->fe->id, f->fe->path, se->pages_pid);
	total = content_len(se);
	shm_bytes = shmem_task_bytes(ctx, t->pid);
	if (se->pages_off % RST_PAGE_SIZE || se->pages_off < t->pages_bytes - shm_bytes ||
	    se->pages_off > t->pages_bytes || total > t->pages_bytes - se->pages_off)
		return ckpt_err(e, -EINVAL,
				"files.img: object %u (%s): %" PRIu64
				" bytes at data offset %" PRIu64
				" are not inside the shared memory part of pages-%d.img",
				f->fe->id, f->fe->path, total, se->pages_off, t->pid);
	return 0;
}

/* The segment with id now, if any; 1 if it is the dumped one, 0 if gone. */
static int sysv_probe(struct restore_ctx *ctx, const struct rfile *f)
{
	const ShmemEntry *se = shm(f);
	struct shmid_ds ds;

	if (shmctl(se->sysv_id, IPC_STAT, &ds) < 0) {
		if (errno == EINVAL || errno == EIDRM)
			return 0;
		return ckpt_err_errno(&ctx->err, -errno, "System V shared memory id %d: IPC_STAT",
				      se->sysv_id);
	}
	/* (not the creator pid: a segment recreated by a restore has ours) */
	if ((uint64_t)ds.shm_segsz != se->size ||
	    (ds.shm_perm.__key != se->sysv_key && !(ds.shm_perm.mode & SHM_DEST)))
		return ckpt_err(&ctx->err, -EEXIST,
				"System V shared memory id %d is taken by another segment (key "
				"%#x, %zu bytes; the dumped one: key %#x, %" PRIu64 " bytes)",
				se->sysv_id, ds.shm_perm.__key, (size_t)ds.shm_segsz, se->sysv_key,
				se->size);
	return 1;
}

/* How a file object's map_fd is open: see the top of this file. */
static int file_open_mode(const struct rfile *f)
{
	return f->shmem_map_rw ? O_RDWR : O_RDONLY;
}

/* A named file: the dumped one if it exists (else, on tmpfs, recreated later). */
static int verify_file(struct restore_ctx *ctx, struct rfile *f)
{
	struct ckpt_error *e = &ctx->err;
	const ShmemEntry *se = shm(f);
	char what[PATH_MAX + 64];
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	if (!f->fe->ident)
		return ckpt_err(e, -EINVAL, "files.img: object %u (%s): no identity", f->fe->id,
				f->fe->path);
	/*
	 * The dump's own check looks at the images alone: a tree left running
	 * goes on writing its shared files (a JVM's hsperfdata, deleted when
	 * it exits), which says nothing about the images; the restore compares.
	 */
	if (ctx->opts->images_only)
		return 0;
	snprintf(what, sizeof(what), "%s file %s",
		 f->shmem_map_rw ? "shared mapped" : "saved tmpfs", f->fe->path);
	/* a FIFO put at the path is refused, not waited on for a writer */
	fd = file_open_regular(f->fe->path, file_open_mode(f) | O_CLOEXEC | O_NOFOLLOW, &st);
	if (fd == -ENOENT && se->tmpfs)
		return 0; /* recreated from the saved content in stage files */
	if (fd == -EBADMSG)
		return ckpt_err(e, -EINVAL, "%s is no longer a regular file", what);
	if (fd < 0)
		return ckpt_err_errno(e, fd, "%s", what);
	/* size and mtime as dumped, or else the same content */
	r = file_ident_check(fd, f->fe->ident, what, e);
	if (r < 0)
		return r;
	f->map_fd = TAKE_FD(fd);
	return 0;
}

static int verify_object(struct restore_ctx *ctx, struct rfile *f)
{
	struct ckpt_error *e = &ctx->err;
	const ShmemEntry *se = shm(f);
	char dir[PATH_MAX];
	struct stat st;
	int r;

	/* (an empty memfd held as an fd is common; shared anonymous memory is never empty) */
	if (!se || se->size > SHMEM_MAX_SIZE || (!se->size && se->kind == SHMEM_KIND__SHMEM_ANON))
		return ckpt_err(e, -EINVAL,
				"files.img: object %u (%s): field shmem: missing, or size %" PRIu64
				" is out of range",
				f->fe->id, f->fe->path, se ? se->size : 0);
	r = verify_content(ctx, f);
	if (r < 0)
		return r;
	if (se->content_saved != (se->kind != SHMEM_KIND__SHMEM_FILE || se->tmpfs))
		return ckpt_err(e, -EINVAL, "files.img: object %u (%s): field content_saved: %d",
				f->fe->id, f->fe->path, se->content_saved);
	switch (se->kind) {
	case SHMEM_KIND__SHMEM_ANON:
		return 0;
	case SHMEM_KIND__SHMEM_MEMFD:
		if (!se->memfd || !se->memfd->name || strlen(se->memfd->name) > MEMFD_NAME_MAX)
			return ckpt_err(e, -EINVAL,
					"files.img: object %u: field memfd: missing, or its name "
					"is longer than %d bytes",
					f->fe->id, MEMFD_NAME_MAX);
		return 0;
	case SHMEM_KIND__SHMEM_SYSV:
		if (!se->has_sysv_id || se->sysv_id < 0 || !se->has_sysv_key || !se->has_sysv_cpid)
			return ckpt_err(e, -EINVAL,
					"files.img: object %u (%s): fields sysv_id/sysv_key/"
					"sysv_cpid: missing",
					f->fe->id, f->fe->path);
		r = ctx->opts->images_only ? 0 : sysv_probe(ctx, f);
		return r < 0 ? r : 0;
	case SHMEM_KIND__SHMEM_DELETED:
		if (ctx->opts->images_only)
			return 0;
		dir_of(f->fe->path, dir, sizeof(dir));
		if (stat(dir, &st) < 0)
			return ckpt_err_errno(e, -errno,
					      "deleted file %s is recreated in its directory %s",
					      f->fe->path, dir);
		if (!S_ISDIR(st.st_mode))
			return ckpt_err(e, -ENOTDIR,
					"deleted file %s is recreated in its directory, but %s "
					"is no longer a directory",
					f->fe->path, dir);
		return 0;
	case SHMEM_KIND__SHMEM_FILE:
		return verify_file(ctx, f);
	default:
		return ckpt_err(e, -EINVAL, "files.img: object %u (%s): field kind: unknown %d",
				f->fe->id, f->fe->path, se->kind);
	}
}

int shmem_verify(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nfiles; i++) {
		struct rfile *f = &ctx->files[i], *o;

		if (!f->fe->has_shmem_id || !(f->used_by_fd || f->in_flight))
			continue;
		o = file_by_id(ctx, f->fe->shmem_id);
		/* a file open on tmpfs saved with its content (--save-tmpfs-files)
		 * is a file object of the same path */
		if (!o || o->fe->type != FILE_TYPE__FILE_SHMEM || !o->fe->shmem ||
		    (o->fe->shmem->kind != SHMEM_KIND__SHMEM_MEMFD &&
		     o->fe->shmem->kind != SHMEM_KIND__SHMEM_DELETED &&
		     !(o->fe->shmem->kind == SHMEM_KIND__SHMEM_FILE && o->fe->shmem->tmpfs &&
		       f->fe->type == FILE_TYPE__FILE_REG && !strcmp(o->fe->path, f->fe->path))))
			return ckpt_err(&ctx->err, -EINVAL,
					"files.img: file id %u (%s): field shmem_id: %u is not a "
					"memfd, deleted file or saved tmpfs file object",
					f->fe->id, f->fe->path, f->fe->shmem_id);
		o->shmem_used = true;
	}
	for (size_t i = 0; i < ctx->nfiles; i++) {
		struct rfile *f = &ctx->files[i];
		int r;

		if (f->fe->type != FILE_TYPE__FILE_SHMEM || !f->shmem_used)
			continue;
		r = verify_object(ctx, f);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- stage files ------------------------------------------------------------------ */

/* Read the saved runs into base (a mapping of the whole object) and check them. */
static int fill_at(struct restore_ctx *ctx, const struct rfile *f, char *base)
{
	struct ckpt_error *e = &ctx->err;
	const ShmemEntry *se = shm(f);
	_cleanup_img_pages_ struct img_pages *pages = NULL;
	uint64_t off = se->pages_off;
	uint32_t crc = 0;
	int r = img_pages_open(ctx->dirfd, (int)se->pages_pid, &pages, e);

	if (r < 0)
		return r;
	for (size_t i = 0; i < se->n_runs; i++) {
		const ShmemRun *run = se->runs[i];
		uint64_t done = 0;

		while (done < run->len) {
			size_t want =
			    run->len - done > (1u << 30) ? (1u << 30) : (size_t)(run->len - done);

			r = img_pages_read(pages, base + run->offset + done, want, off + done, e);
			if (r < 0)
				return ckpt_err_wrap(e, "the content of %s", f->fe->path);
			done += want;
		}
		crc = crc32c(crc, base + run->offset, run->len);
		off += run->len;
	}
	if (crc != se->content_crc32c)
		return ckpt_err(e, -EBADMSG,
				"shared memory object %s: saved content is corrupt (CRC32C %08x, "
				"files.img says %08x)",
				f->fe->path, crc, se->content_crc32c);
	return 0;
}

static int fill_fd(struct restore_ctx *ctx, const struct rfile *f, int fd)
{
	uint64_t len = page_up(shm(f)->size);
	void *p;
	int r;

	if (!shm(f)->n_runs)
		return 0;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return ckpt_err_errno(&ctx->err, -errno, "mapping %s to fill it", f->fe->path);
	r = fill_at(ctx, f, p);
	munmap(p, len);
	return r;
}

static int create_anon(struct restore_ctx *ctx, struct rfile *f, int *ret_fd)
{
	uint64_t len = page_up(shm(f)->size);
	char path[96];
	void *p;
	int fd, r;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1,
		 0);
	if (p == MAP_FAILED)
		return ckpt_err_errno(&ctx->err, -errno,
				      "mmap of %" PRIu64 " bytes of shared memory", len);
	r = fill_at(ctx, f, p);
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)p,
		 (unsigned long)p + (unsigned long)len);
	if (r >= 0) {
		/* map_files needs CAP_CHECKPOINT_RESTORE (our own mapping) */
		uint64_t saved = caps_raise(RESTORE_CAPS_CR);

		fd = open(path, O_RDWR | O_CLOEXEC);
		caps_restore(saved);
	} else {
		fd = -1;
	}
	if (r >= 0 && fd < 0)
		r = ckpt_err_errno(&ctx->err, -errno, "opening %s", path);
	munmap(p, len);
	*ret_fd = fd;
	return r;
}

static int set_owner_mode(struct restore_ctx *ctx, const struct rfile *f, int fd)
{
	const ShmemEntry *se = shm(f);

	/* before fchmod: a change of owner clears the set-id bits */
	if ((se->has_uid || se->has_gid) &&
	    fchown(fd, se->has_uid ? se->uid : (uid_t)-1, se->has_gid ? se->gid : (gid_t)-1) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "%s: fchown to %u:%u", f->fe->path,
				      se->uid, se->gid);
	if (f->fe->has_mode && fchmod(fd, (mode_t)(f->fe->mode & 07777)) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "%s: fchmod 0%o", f->fe->path,
				      f->fe->mode & 07777);
	return 0;
}

static int create_memfd(struct restore_ctx *ctx, struct rfile *f, int *ret_fd)
{
	const ShmemEntry *se = shm(f);
	const MemfdEntry *m = se->memfd;
	_cleanup_close_ int fd = -1;
	int r;

	fd = (int)syscall(SYS_memfd_create, m->name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = (int)syscall(SYS_memfd_create, m->name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return ckpt_err_errno(&ctx->err, -errno, "memfd_create(\"%s\")", m->name);
	if (f->fe->has_mode && fchmod(fd, (mode_t)(f->fe->mode & 07777)) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "memfd %s: fchmod", m->name);
	if (ftruncate(fd, (off_t)se->size) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "memfd %s: ftruncate to %" PRIu64, m->name,
				      se->size);
	r = fill_fd(ctx, f, fd);
	if (r < 0)
		return r;
	/* seals last: F_SEAL_WRITE and friends would forbid the filling */
	if (m->has_seals && m->seals && fcntl(fd, F_ADD_SEALS, (int)m->seals) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "memfd %s: adding seals %#x", m->name,
				      m->seals);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* An unnamed file (O_TMPFILE) in the directory of path, with the content. */
static int create_tmpfile(struct restore_ctx *ctx, struct rfile *f, int *ret_fd)
{
	_cleanup_close_ int fd = -1;
	char dir[PATH_MAX];
	int r;

	dir_of(f->fe->path, dir, sizeof(dir));
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return ckpt_err_errno(&ctx->err, -errno,
				      "cannot recreate %s as an unnamed file (O_TMPFILE) in %s",
				      f->fe->path, dir);
	if (ftruncate(fd, (off_t)shm(f)->size) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "%s: ftruncate", f->fe->path);
	r = fill_fd(ctx, f, fd);
	if (r >= 0)
		r = set_owner_mode(ctx, f, fd);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* A tmpfs file gone since the dump: made again, named last. */
static int create_file(struct restore_ctx *ctx, struct rfile *f, int *ret_fd)
{
	_cleanup_close_ int fd = -1, named = -1;
	struct file_made made, got;
	struct stat st;
	char self[64];
	int r;

	r = create_tmpfile(ctx, f, &fd);
	if (r < 0)
		return r;
	made = file_made_of(fd, NULL);
	/* its saved mtime: the identity a later restore compares */
	if (f->fe->ident && f->fe->ident->mtime_ns) {
		struct timespec ts[2] = {
		    {.tv_nsec = UTIME_OMIT},
		    {.tv_sec = (time_t)(f->fe->ident->mtime_ns / 1000000000ULL),
		     .tv_nsec = (long)(f->fe->ident->mtime_ns % 1000000000ULL)}};

		if (futimens(fd, ts) < 0)
			return ckpt_err_errno(&ctx->err, -errno, "%s: setting its mtime",
					      f->fe->path);
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, self, AT_FDCWD, f->fe->path, AT_SYMLINK_FOLLOW) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "recreating shared mapped file %s",
				      f->fe->path);
	/* removed again if the restore fails, unless replaced since */
	r = restore_undo_unlink(ctx, f->fe->path, fd);
	if (r >= 0)
		r = ckpt_fault_inject("shmem-recreated", &ctx->err);
	if (r < 0)
		return r;
	pr_info("recreated %s (%" PRIu64 " bytes) from the checkpoint", f->fe->path, shm(f)->size);
	/*
	 * By its name, or the mappings would show "DIR/#INODE (deleted)". The
	 * directory is writable by others (/dev/shm): what is opened must be
	 * the file just made, not one put there since (a FIFO is not waited on).
	 */
	named = file_open_regular(f->fe->path, file_open_mode(f) | O_CLOEXEC | O_NOFOLLOW, &st);
	if (named >= 0)
		got = file_made_of(named, NULL);
	if (named == -EBADMSG || (named >= 0 && !file_made_same(&got, &made)))
		return ckpt_err(&ctx->err, -ESTALE,
				"recreated file %s was replaced by another before it could be "
				"opened again",
				f->fe->path);
	if (named < 0)
		return ckpt_err_errno(&ctx->err, named, "reopening recreated file %s", f->fe->path);
	*ret_fd = TAKE_FD(named);
	return 0;
}

static int write_int_file(const char *path, long v, struct ckpt_error *e)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld", v);

	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		return ckpt_err_errno(e, -errno, "writing %ld to %s", v, path);
	return 0;
}

/* The segment with the saved id: reused if still there, else made with that id. */
static int sysv_get(struct restore_ctx *ctx, const struct rfile *f)
{
	const ShmemEntry *se = shm(f);
	struct ckpt_error *e = &ctx->err;
	struct shmid_ds ds;
	uint64_t saved;
	int r, id;

	r = sysv_probe(ctx, f);
	if (r != 0)
		return r < 0 ? r : 0;
	saved = caps_raise(RESTORE_CAPS_CR); /* writable with CAP_CHECKPOINT_RESTORE */
	r = write_int_file("/proc/sys/kernel/shm_next_id", se->sysv_id, e);
	caps_restore(saved);
	if (r < 0)
		return ckpt_err_wrap(e, "recreating System V segment %d", se->sysv_id);
	id = shmget(se->sysv_removed ? IPC_PRIVATE : se->sysv_key, se->size,
		    IPC_CREAT | IPC_EXCL | (int)(se->sysv_mode & 0777));
	r = id < 0 ? -errno : 0;
	/* the kernel forgets shm_next_id once used (and refuses -1 from us) */
	if (r >= 0 && id == se->sysv_id)
		r = restore_undo_shm(ctx, id);
	if (r < 0 && id >= 0) {
		shmctl(id, IPC_RMID, NULL);
		return r;
	}
	if (r < 0)
		return ckpt_err_errno(
		    e, r, "recreating System V segment %d (key %#x, %" PRIu64 " bytes)%s",
		    se->sysv_id, se->sysv_key, se->size,
		    r == -EEXIST ? ": its key is taken by another segment" : "");
	if (id != se->sysv_id) {
		shmctl(id, IPC_RMID, NULL);
		return ckpt_err(e, -EEXIST, "recreating System V segment %d: got id %d instead",
				se->sysv_id, id);
	}
	if (shmctl(id, IPC_STAT, &ds) == 0) {
		ds.shm_perm.uid = se->has_uid ? se->uid : ds.shm_perm.uid;
		ds.shm_perm.gid = se->has_gid ? se->gid : ds.shm_perm.gid;
		ds.shm_perm.mode = se->sysv_mode & 0777;
		if (shmctl(id, IPC_SET, &ds) < 0)
			pr_debug("segment %d: IPC_SET: %m", id);
	}
	pr_info("recreated System V segment %d (%" PRIu64 " bytes)", id, se->size);
	return 0;
}

static int create_sysv(struct restore_ctx *ctx, struct rfile *f)
{
	const ShmemEntry *se = shm(f);
	void *p;
	int r;

	r = sysv_get(ctx, f);
	if (r < 0)
		return r;
	p = shmat(se->sysv_id, NULL, 0);
	if (p == (void *)-1)
		return ckpt_err_errno(&ctx->err, -errno,
				      "shmat of System V segment %d in the restorer", se->sysv_id);
	r = fill_at(ctx, f, p);
	if (r >= 0 && se->sysv_removed) {
		/* Removed while attached: remove it again. Our attachment (and
		 * the tasks', inherited by fork until they shmat their own)
		 * keeps it alive; Linux lets them attach a removed segment. */
		if (shmctl(se->sysv_id, IPC_RMID, NULL) < 0)
			r = ckpt_err_errno(&ctx->err, -errno, "IPC_RMID of segment %d",
					   se->sysv_id);
		return r;
	}
	shmdt(p);
	return r;
}

static int create_object(struct restore_ctx *ctx, struct rfile *f)
{
	int fd = -1, r;

	r = ckpt_fault_inject("shmem-create", &ctx->err);
	if (r < 0)
		return r;

	switch (shm(f)->kind) {
	case SHMEM_KIND__SHMEM_ANON:
		r = create_anon(ctx, f, &fd);
		break;
	case SHMEM_KIND__SHMEM_MEMFD:
		r = create_memfd(ctx, f, &fd);
		break;
	case SHMEM_KIND__SHMEM_DELETED:
		r = create_tmpfile(ctx, f, &fd);
		break;
	case SHMEM_KIND__SHMEM_FILE:
		/* an existing file was opened (and checked) in stage verify */
		r = f->map_fd >= 0 ? 0 : create_file(ctx, f, &fd);
		break;
	case SHMEM_KIND__SHMEM_SYSV:
		return create_sysv(ctx, f);
	default:
		return ckpt_err(&ctx->err, -EINVAL, "object %u: unknown kind", f->fe->id);
	}
	if (r < 0 || fd < 0)
		return r;
	/* at a number no task uses, inherited by all of them */
	r = fd_spare(ctx, &fd, f->fe->path);
	if (r < 0) {
		close(fd);
		return r;
	}
	f->map_fd = fd;
	return 0;
}

int shmem_create_all(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nfiles; i++) {
		struct rfile *f = &ctx->files[i];
		int r;

		if (f->fe->type != FILE_TYPE__FILE_SHMEM || !f->shmem_used)
			continue;
		r = create_object(ctx, f);
		if (r < 0)
			return ckpt_err_wrap(&ctx->err, "shared memory object %u (%s)", f->fe->id,
					     f->fe->path);
		pr_debug("object %u %s: fd %d", f->fe->id, f->fe->path, f->map_fd);
	}
	return 0;
}

/*
 * memfd_create's description does not count as a writer of the file, but
 * one opened again (/proc/self/fd/N) read-write does, and then an exec of
 * the memfd fails with ETXTBSY while it is open. So the first read-write
 * fd of a memfd gets memfd_create's own description, as the program had it;
 * other read-write descriptions are reopened (the program made those by
 * reopening too: memfd_create makes only one).
 */
static int memfd_own_desc(struct rfile *o, uint32_t flags, struct ckpt_error *e)
{
	const int settable = O_APPEND | O_NONBLOCK | O_NOATIME | O_DIRECT;
	int fd;

	if (o->fe->shmem->kind != SHMEM_KIND__SHMEM_MEMFD || (flags & O_ACCMODE) != O_RDWR ||
	    o->memfd_desc_taken)
		return -ENOENT;
	fd = fcntl(o->map_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "dup of memfd %s", o->fe->path);
	if (fcntl(fd, F_SETFL, (int)flags & settable) < 0) {
		int r = ckpt_err_errno(e, -errno, "memfd %s: F_SETFL 0%o", o->fe->path,
				       flags & settable);
		close(fd);
		return r;
	}
	o->memfd_desc_taken = true;
	return fd;
}

/* A new description of the object, opened again through /proc/self/fd. */
static int reopen_obj(const struct rfile *o, const struct rfile *f, uint32_t flags,
		      struct ckpt_error *e)
{
	char self[64];
	int fd;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", o->map_fd);
	fd = open(self, (int)(flags | O_CLOEXEC));
	if (fd < 0 && errno == EPERM && (flags & O_NOATIME))
		fd = open(self, (int)((flags & ~(uint32_t)O_NOATIME) | O_CLOEXEC));
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "file id %u: reopening %s (flags 0%o)", f->fe->id,
				      o->fe->path, flags);
	return fd;
}

int shmem_open_fd(struct restore_ctx *ctx, struct rfile *f)
{
	struct rfile *o = file_by_id(ctx, f->fe->shmem_id);
	uint32_t flags = (f->fe->has_flags ? f->fe->flags : O_RDONLY) & OPEN_FLAGS;
	uint64_t pos = f->fe->has_pos ? f->fe->pos : 0;
	int fd;

	fd = memfd_own_desc(o, flags, &ctx->err);
	if (fd == -ENOENT)
		fd = reopen_obj(o, f, flags, &ctx->err);
	if (fd < 0)
		return fd;
	if (pos > (uint64_t)INT64_MAX || lseek(fd, (off_t)pos, SEEK_SET) < 0) {
		close(fd);
		return ckpt_err_errno(&ctx->err, -errno ? -errno : -EINVAL,
				      "file id %u (%s): lseek to %" PRIu64, f->fe->id, f->fe->path,
				      pos);
	}
	f->obj_fd = fd;
	return 0;
}

/* ---- stage memory --------------------------------------------------------------------- */

int shmem_attach_sysv(struct restore_ctx *ctx, struct rtask *t, size_t vma_idx)
{
	const Vma *v = t->mm->vmas[vma_idx];
	const ShmemEntry *se = file_by_id(ctx, v->file_id)->fe->shmem;
	/* attached writable if it ever could be written (mprotect sets the rest) */
	bool rdonly = !(v->vmflags && strstr(v->vmflags, "mw"));
	long got = 0;
	int r;

	/* the later areas of one attachment are part of the first one's shmat */
	if (v->pgoff)
		return 0;
	r = rcall(t, &ctx->err, __NR_shmat,
		  RARGS((uint64_t)se->sysv_id, v->start, SHM_REMAP | (rdonly ? SHM_RDONLY : 0)),
		  &got, "shmat of System V segment %d at %#" PRIx64, se->sysv_id, v->start);
	if (r >= 0 && (uint64_t)got != v->start)
		r = ckpt_err(&ctx->err, -EFAULT,
			     "pid %d: System V segment %d attached at %#lx, not %#" PRIx64, t->pid,
			     se->sysv_id, got, v->start);
	return r;
}
