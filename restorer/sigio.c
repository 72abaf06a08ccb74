/* SPDX-License-Identifier: MIT */
/*
 * Signal-driven I/O of the open file descriptions (FileEntry.sigio):
 * O_ASYNC, the owner signals go to (F_SETOWN_EX: a thread, process or
 * process group of the tree) and the signal sent (F_SETSIG). It belongs to
 * the description, so it is set once, by remote fcntl calls in one task
 * that holds it, in stage sigio: after creds, because F_SETOWN records the
 * caller's uid and euid in the description, and the kernel checks them
 * against the owner's credentials each time it sends a signal. The task is
 * the owner's own process when it holds the description (the usual
 * fcntl(fd, F_SETOWN, getpid())), else the first holder of the tree.
 *
 * Order: O_ASYNC first (a terminal's fasync makes its foreground group or
 * the caller the owner when O_ASYNC is set on a description without one),
 * then the owner (F_SETOWN_EX replaces whatever that set, also with
 * "none"), then the signal. Setting
 * them sends nothing; every signal stays blocked in the tree until resume.
 * O_ASYNC is set through the description's fd number in that task: that is
 * the number its signals carry (si_fd), which the dump checked is the only
 * one the tree holds it under when F_SETSIG is set.
 */
#define LOG_PREFIX "sigio: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>

#include "log.h"
#include "restore.h"

/* The signal numbers F_SETSIG accepts (valid_signal: 1.._NSIG, 0 for SIGIO). */
#define SIGIO_SIG_MAX 64

/* tid is a thread of the tree (main or other); its task in *ret. */
static bool tree_tid(const struct restore_ctx *ctx, pid_t tid, struct rtask **ret)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		if (t->pid == tid) {
			*ret = t;
			return true;
		}
		for (size_t k = 1; k < t->pst->n_threads; k++)
			if (t->pst->threads[k] == tid) {
				*ret = t;
				return true;
			}
	}
	return false;
}

/* The lowest fd of task t on file id, or -1. */
static int task_fd_of(const struct rtask *t, uint32_t id)
{
	for (size_t k = 0; k < t->n_fds; k++)
		if (t->fds[k]->id == id)
			return (int)t->fds[k]->fd;
	return -1;
}

/* The task that sets it (see above), and its fd. */
static struct rtask *sigio_holder(const struct restore_ctx *ctx, const FileEntry *fe, int *ret_fd)
{
	const FileSigio *s = fe->sigio;
	struct rtask *owner = NULL;

	if (s->owner && s->owner_type != F_OWNER_PGRP && tree_tid(ctx, s->owner, &owner) &&
	    (*ret_fd = task_fd_of(owner, fe->id)) >= 0)
		return owner;
	for (size_t i = 0; i < ctx->ntasks; i++)
		if ((*ret_fd = task_fd_of(&ctx->tasks[i], fe->id)) >= 0)
			return &ctx->tasks[i];
	return NULL;
}

static int verify_one(struct restore_ctx *ctx, const struct rfile *f)
{
	const FileEntry *fe = f->fe;
	const FileSigio *s = fe->sigio;
	struct rtask *t;
	int fd = -1;

	if (!f->used_by_fd)
		return ckpt_err(&ctx->err, -EINVAL,
				"files.img: entry %u (%s): field sigio: set on an entry no fd uses",
				fe->id, fe->path);
	if (s->has_owner != s->has_owner_type || s->owner < 0 ||
	    (s->has_owner_type && s->owner_type > F_OWNER_PGRP))
		return ckpt_err(&ctx->err, -EINVAL,
				"files.img: entry %u (%s): field sigio.owner: type %u id %d is not "
				"an owner F_SETOWN_EX takes",
				fe->id, fe->path, s->owner_type, s->owner);
	if (s->owner > 0) {
		bool ok;

		if (s->owner_type == F_OWNER_PGRP) {
			t = task_by_pid(ctx, s->owner);
			ok = t && t->pst->pgid == s->owner;
		} else {
			ok = tree_tid(ctx, s->owner, &t);
		}
		if (!ok)
			return ckpt_err(&ctx->err, -EINVAL,
					"files.img: entry %u (%s): field sigio.owner: %s %d is not "
					"one of the tree",
					fe->id, fe->path,
					s->owner_type == F_OWNER_PGRP  ? "process group"
					: s->owner_type == F_OWNER_TID ? "thread"
								       : "process",
					s->owner);
	}
	if (s->sig > SIGIO_SIG_MAX)
		return ckpt_err(&ctx->err, -EINVAL,
				"files.img: entry %u (%s): field sigio.sig: %u is not a signal",
				fe->id, fe->path, s->sig);
	if (!sigio_holder(ctx, fe, &fd))
		return ckpt_err(&ctx->err, -EINVAL,
				"files.img: entry %u (%s): field sigio: no task holds it", fe->id,
				fe->path);
	if (!(s->async && s->sig))
		return 0;
	for (size_t i = 0; i < ctx->ntasks; i++) {
		const struct rtask *o = &ctx->tasks[i];

		for (size_t k = 0; k < o->n_fds; k++)
			if (o->fds[k]->id == fe->id && (int)o->fds[k]->fd != fd)
				return ckpt_err(&ctx->err, -EINVAL,
						"files.img: entry %u (%s): field sigio: O_ASYNC "
						"with F_SETSIG on a description held as fd %d and "
						"as fd %u (pid %d): the dump refuses that",
						fe->id, fe->path, fd, o->fds[k]->fd, o->pid);
	}
	return 0;
}

int sigio_verify(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nfiles; i++) {
		int r;

		if (!ctx->files[i].fe->sigio)
			continue;
		r = verify_one(ctx, &ctx->files[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int restore_one(struct restore_ctx *ctx, const FileEntry *fe)
{
	const FileSigio *s = fe->sigio;
	struct ckpt_error *e = &ctx->err;
	struct f_owner_ex owner = {.type = (int)s->owner_type, .pid = s->owner};
	struct rtask *t;
	long fl = 0;
	int fd = -1, r = 0;

	t = sigio_holder(ctx, fe, &fd);
	if (!t)
		return ckpt_err(e, -EINVAL, "file %u (%s): no task holds it", fe->id, fe->path);
	if (s->async) {
		r = rcall(t, e, __NR_fcntl, RARGS((uint64_t)fd, F_GETFL), &fl, "fd %d: F_GETFL",
			  fd);
		if (r >= 0 && !(fl & O_ASYNC))
			r = rcall(t, e, __NR_fcntl,
				  RARGS((uint64_t)fd, F_SETFL, (uint64_t)fl | O_ASYNC), NULL,
				  "fd %d (%s): F_SETFL O_ASYNC", fd, fe->path);
	}
	if (r >= 0 && (s->async || s->owner)) {
		if (!s->owner)
			owner.type = F_OWNER_PID;
		r = remote_write(t->pid, t->rsys.scratch, &owner, sizeof(owner), e);
		if (r >= 0)
			r = rcall(t, e, __NR_fcntl,
				  RARGS((uint64_t)fd, F_SETOWN_EX, t->rsys.scratch), NULL,
				  "fd %d (%s): F_SETOWN_EX type %d id %d", fd, fe->path, owner.type,
				  owner.pid);
	}
	if (r >= 0 && s->sig)
		r = rcall(t, e, __NR_fcntl, RARGS((uint64_t)fd, F_SETSIG, s->sig), NULL,
			  "fd %d (%s): F_SETSIG %u", fd, fe->path, s->sig);
	if (r >= 0)
		pr_debug("pid %d: fd %d (%s): async %d owner %d:%d sig %u", t->pid, fd, fe->path,
			 s->async, owner.type, owner.pid, s->sig);
	return r;
}

int sigio_restore(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nfiles; i++) {
		int r;

		if (!ctx->files[i].fe->sigio || !ctx->files[i].used_by_fd)
			continue;
		r = restore_one(ctx, ctx->files[i].fe);
		if (r < 0)
			return r;
	}
	return 0;
}
