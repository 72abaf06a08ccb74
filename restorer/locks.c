/* SPDX-License-Identifier: MIT */
/*
 * File locks (flock.proto), taken again by the restored tasks themselves
 * with remote syscalls once stage memory has closed the restorer's own
 * copies of their files: a POSIX lock belongs to a process and is dropped
 * by ANY close of the file by that process, so it can only be taken after
 * the last such close. flock locks, OFD locks and leases belong to the open
 * file description: taken once, through the first task that has it (a
 * lease then notifies that task, as F_SETLEASE makes its caller the owner).
 * A lock another process took meanwhile fails the restore, naming it.
 */
#define LOG_PREFIX "locks: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/syscall.h>

#include "cleanup.h"
#include "log.h"
#include "restore.h"

#ifndef F_OFD_SETLK
#define F_OFD_SETLK 37
#endif

static const char *lock_kind_name(FileLockKind k)
{
	switch (k) {
	case FILE_LOCK_KIND__LOCK_POSIX:
		return "POSIX";
	case FILE_LOCK_KIND__LOCK_FLOCK:
		return "flock";
	case FILE_LOCK_KIND__LOCK_OFD:
		return "OFD";
	case FILE_LOCK_KIND__LOCK_LEASE:
		return "lease";
	default:
		return "unknown";
	}
}

static int verify_lock(const FileLock *l, bool posix_only, const char *where,
		       struct ckpt_error *e)
{
	bool ranged = l->kind == FILE_LOCK_KIND__LOCK_POSIX || l->kind == FILE_LOCK_KIND__LOCK_OFD;

	if (l->kind < FILE_LOCK_KIND__LOCK_POSIX || l->kind > FILE_LOCK_KIND__LOCK_LEASE)
		return ckpt_err(e, -EINVAL, "%s: field kind: unknown lock kind %d", where, l->kind);
	if (posix_only != (l->kind == FILE_LOCK_KIND__LOCK_POSIX))
		return ckpt_err(e, -EINVAL, "%s: field kind: a %s lock does not belong here", where,
				lock_kind_name(l->kind));
	if (ranged != l->has_start || (!ranged && l->has_end))
		return ckpt_err(e, -EINVAL, "%s: field start: a %s lock %s a byte range", where,
				lock_kind_name(l->kind), ranged ? "needs" : "has no");
	if (ranged && (l->start > INT64_MAX || (l->has_end && (l->end < l->start ||
							       l->end > INT64_MAX))))
		return ckpt_err(e, -EINVAL, "%s: field end: bad byte range %" PRIu64 "-%" PRIu64,
				where, l->start, l->end);
	return 0;
}

int locks_verify(struct restore_ctx *ctx)
{
	char where[96];
	int r;

	for (size_t i = 0; i < ctx->nfiles; i++) {
		const FileEntry *fe = ctx->files[i].fe;

		for (size_t k = 0; k < fe->n_locks; k++) {
			snprintf(where, sizeof(where), "files.img: file id %u: lock %zu", fe->id, k);
			r = verify_lock(fe->locks[k], false, where, &ctx->err);
			if (r < 0)
				return r;
		}
	}
	for (size_t i = 0; i < ctx->ntasks; i++) {
		const struct rtask *t = &ctx->tasks[i];

		for (size_t f = 0; f < t->n_fds; f++)
			for (size_t k = 0; k < t->fds[f]->n_posix_locks; k++) {
				snprintf(where, sizeof(where), "fds-%d.img: fd %u: posix lock %zu",
					 t->pid, t->fds[f]->fd, k);
				r = verify_lock(t->fds[f]->posix_locks[k], true, where, &ctx->err);
				if (r < 0)
					return r;
			}
	}
	return 0;
}

/* "write lock on bytes 0-99", "read lock on bytes 1073741824-EOF", "write lease" */
static void describe(const FileLock *l, char *buf, size_t len)
{
	const char *type = l->write ? "write" : "read";

	if (l->kind == FILE_LOCK_KIND__LOCK_LEASE)
		snprintf(buf, len, "%s lease", type);
	else if (l->kind == FILE_LOCK_KIND__LOCK_FLOCK)
		snprintf(buf, len, "flock %s lock", type);
	else if (l->has_end)
		snprintf(buf, len, "%s %s lock on bytes %" PRIu64 "-%" PRIu64,
			 lock_kind_name(l->kind), type, l->start, l->end);
	else
		snprintf(buf, len, "%s %s lock on bytes %" PRIu64 "-EOF", lock_kind_name(l->kind),
			 type, l->start);
}

static int take_lock(struct restore_ctx *ctx, struct rtask *t, const FdEntry *fd,
		     const FileEntry *fe, const FileLock *l)
{
	struct flock fl = {
	    .l_type = l->write ? F_WRLCK : F_RDLCK,
	    .l_whence = SEEK_SET,
	    .l_start = (off_t)l->start,
	    .l_len = l->has_end ? (off_t)(l->end - l->start + 1) : 0,
	};
	long nr, res = 0;
	uint64_t a1, a2;
	char what[96];
	int r;

	switch (l->kind) {
	case FILE_LOCK_KIND__LOCK_FLOCK:
		nr = __NR_flock;
		a1 = (l->write ? LOCK_EX : LOCK_SH) | LOCK_NB;
		a2 = 0;
		break;
	case FILE_LOCK_KIND__LOCK_LEASE:
		nr = __NR_fcntl;
		a1 = F_SETLEASE;
		a2 = l->write ? F_WRLCK : F_RDLCK;
		break;
	default:
		nr = __NR_fcntl;
		a1 = l->kind == FILE_LOCK_KIND__LOCK_OFD ? F_OFD_SETLK : F_SETLK;
		a2 = t->rsys.scratch;
		r = remote_write(t->pid, t->rsys.scratch, &fl, sizeof(fl), &ctx->err);
		if (r < 0)
			return r;
		break;
	}
	describe(l, what, sizeof(what));
	r = rsys_call(&t->rsys, nr, fd->fd, a1, a2, 0, 0, 0, &res, &ctx->err);
	if (r < 0)
		return ckpt_err_wrap(&ctx->err, "pid %d: fd %u (%s): %s", t->pid, fd->fd, fe->path,
				     what);
	if (res == -EAGAIN || res == -EACCES || res == -EWOULDBLOCK)
		return ckpt_err(&ctx->err, -EBUSY,
				"pid %d: fd %u (%s): its %s is held by another process now "
				"(taken since the dump); the restore cannot give it back",
				t->pid, fd->fd, fe->path, what);
	if (res < 0)
		return ckpt_err_errno(&ctx->err, (int)res, "pid %d: fd %u (%s): taking its %s",
				      t->pid, fd->fd, fe->path, what);
	pr_debug("pid %d: fd %u (%s): %s", t->pid, fd->fd, fe->path, what);
	return 0;
}

/* taken[i]: the locks of ctx->files[i] are taken (by an earlier task or fd) */
int locks_restore_task(struct restore_ctx *ctx, struct rtask *t, bool *taken)
{
	for (size_t i = 0; i < t->n_fds; i++) {
		const FdEntry *fd = t->fds[i];
		struct rfile *f = file_by_id(ctx, fd->id);
		size_t idx = (size_t)(f - ctx->files);
		int r;

		for (size_t k = 0; k < fd->n_posix_locks; k++) {
			r = take_lock(ctx, t, fd, f->fe, fd->posix_locks[k]);
			if (r < 0)
				return r;
		}
		if (taken[idx])
			continue;
		taken[idx] = true;
		for (size_t k = 0; k < f->fe->n_locks; k++) {
			r = take_lock(ctx, t, fd, f->fe, f->fe->locks[k]);
			if (r < 0)
				return r;
		}
	}
	return 0;
}
