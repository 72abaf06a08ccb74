/* SPDX-License-Identifier: MIT */
/*
 * File locks of the tree, from the "lock:" lines of /proc/PID/fdinfo/FD.
 * flock locks, OFD locks and leases belong to an open file description:
 * saved once in its FileEntry, from the fd that first showed it. POSIX
 * locks belong to a process: saved in the FdEntry of the first fd of that
 * process on the description (the kernel lists them under every fd of the
 * process on it). What cannot be taken again the same way is refused.
 */
#define LOG_PREFIX "dump: "

#include <errno.h>
#include <stdlib.h>

#include "cleanup.h"
#include "dump_internal.h"
#include "log.h"

static int lock_add(FileLock ***v, size_t *n, const struct proc_lock *l, struct ckpt_error *e)
{
	FileLock **nv, *fl;

	nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv)
		return ckpt_err(e, -ENOMEM, "out of memory for file locks");
	*v = nv;
	fl = calloc(1, sizeof(*fl));
	if (!fl)
		return ckpt_err(e, -ENOMEM, "out of memory for file locks");
	file_lock__init(fl);
	switch (l->kind) {
	case PROC_LOCK_POSIX:
		fl->kind = FILE_LOCK_KIND__LOCK_POSIX;
		break;
	case PROC_LOCK_FLOCK:
		fl->kind = FILE_LOCK_KIND__LOCK_FLOCK;
		break;
	case PROC_LOCK_OFD:
		fl->kind = FILE_LOCK_KIND__LOCK_OFD;
		break;
	default:
		fl->kind = FILE_LOCK_KIND__LOCK_LEASE;
		break;
	}
	fl->write = l->write;
	if (l->kind == PROC_LOCK_POSIX || l->kind == PROC_LOCK_OFD) {
		fl->has_start = true;
		fl->start = l->start;
		fl->has_end = !l->to_eof;
		fl->end = l->end;
	}
	(*v)[(*n)++] = fl;
	return 0;
}

/* An earlier fd of this task on the same description: its POSIX locks are saved there. */
static bool posix_saved(const struct dump_task *t, uint32_t id)
{
	for (size_t k = 0; k < t->nfds; k++)
		if (t->fds[k]->id == id)
			return true;
	return false;
}

int dump_fd_locks(struct dump_task *t, int fd, const char *fdinfo, FdEntry *fde, FileEntry *new_fe,
		  struct ckpt_error *e)
{
	_cleanup_(proc_lock_list_free) struct proc_lock_list locks = {0};
	bool posix_done = posix_saved(t, fde->id);
	int r;

	r = proc_fdinfo_locks(t->pid, fd, fdinfo, &locks, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: fd %d: its file locks", t->pid, fd);
	for (size_t i = 0; i < locks.n; i++) {
		const struct proc_lock *l = &locks.v[i];

		if (l->lease_breaking)
			return ckpt_err(e, -EBUSY,
					"pid %d: fd %d: its lease is being broken by another "
					"process; dump again once the lease is given up",
					t->pid, fd);
		if (l->kind == PROC_LOCK_OTHER)
			return ckpt_err(e, -EOPNOTSUPP,
					"pid %d: fd %d: holds a %s lock (fdinfo), which ckpt cannot "
					"take again",
					t->pid, fd, l->what);
		/* a POSIX lock belongs to the fd table, taken by one of the processes
		 * sharing it: which one (its l_pid) is not in fdinfo */
		if (l->kind == PROC_LOCK_POSIX && t->files_shared)
			return ckpt_err(e, -EOPNOTSUPP,
					"pid %d: fd %d: a POSIX lock in an fd table shared with "
					"another process (CLONE_FILES); not supported",
					t->pid, fd);
		if (l->kind == PROC_LOCK_POSIX)
			r = posix_done ? 0
				       : lock_add(&fde->posix_locks, &fde->n_posix_locks, l, e);
		else
			r = new_fe ? lock_add(&new_fe->locks, &new_fe->n_locks, l, e) : 0;
		if (r < 0)
			return r;
	}
	if (locks.n)
		pr_debug("pid %d: fd %d: %zu lock(s)", t->pid, fd, locks.n);
	return 0;
}
