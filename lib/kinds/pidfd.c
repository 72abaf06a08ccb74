/* SPDX-License-Identifier: MIT */
/*
 * pidfds (pidfd_open, clone's CLONE_PIDFD). fdinfo names the process
 * ("Pid:"; -1 once it is gone). A pidfd of a task of the tree is made again
 * by the task that holds it, in stage fds, once every task exists
 * (open_in_task: pidfd_open of the same pid, the restored task). A pidfd of
 * a process outside the tree is made again only for that same process,
 * still running at restore (same pid and start time); one of a process that
 * has exited cannot be made again and is refused at dump. A thread pidfd
 * (PIDFD_THREAD) is made with that flag.
 */
#define LOG_PREFIX "kind pidfd: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"
#include "proc.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

static bool pidfd_matches(const struct fd_probe *p)
{
	return !strcmp(p->link, "anon_inode:[pidfd]");
}

static bool pidfd_describe(const struct fd_probe *p, char *buf, size_t len)
{
	return fdk_describe_as(pidfd_matches(p), "pidfd", buf, len);
}

/* /proc/PID/stat field 22: when the process started (clock ticks since boot). */
static int start_time(pid_t pid, uint64_t *ret, struct ckpt_error *e)
{
	struct proc_stat st;
	int r = proc_parse_stat(pid, &st, e);

	if (r < 0)
		return r;
	*ret = st.start_time;
	return 0;
}

static int pidfd_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	const char *line;
	PidfdEntry *pe;
	long pid;
	int r;

	r = ckpt_fault_inject("pidfd-dump", e);
	if (r < 0)
		return r;
	r = fdk_read_fdinfo(p, &text, e);
	if (r < 0)
		return r;
	line = strstr(text, "\nPid:");
	if (!line || sscanf(line + 5, "%ld", &pid) != 1)
		return ckpt_err(e, -EINVAL, "pidfd: no Pid line in its fdinfo");
	if (pid <= 0)
		return ckpt_err(e, -EOPNOTSUPP,
				"pidfd of a process that has exited and been reaped: ckpt cannot "
				"make such a pidfd again");
	r = fdk_dump_common(p, FILE_TYPE__FILE_PIDFD, fe, e);
	if (r < 0)
		return r;
	pe = calloc(1, sizeof(*pe));
	if (!pe)
		return ckpt_err(e, -ENOMEM, "out of memory");
	pidfd_entry__init(pe);
	fe->pidfd = pe;
	pe->pid = (int32_t)pid;
	/* in_tree and start_time: pidfd_dump_done, once the tree is known */
	return 0;
}

static bool in_tree(const struct fd_dump_view *v, pid_t pid)
{
	for (size_t i = 0; i < v->npids; i++)
		if (v->pids[i] == pid)
			return true;
	return false;
}

/* The process a thread id belongs to (itself for a process), 0 if gone. */
static pid_t tgid_of(pid_t tid)
{
	struct ckpt_error tmp = {0};
	struct proc_status st;

	return proc_parse_status(tid, &st, &tmp) < 0 ? 0 : st.tgid;
}

/* Whether the target is one of the tree's, else the start time of the outside one. */
static int pidfd_dump_done(const struct fd_dump_view *v, struct ckpt_error *e)
{
	for (size_t i = 0; i < v->n; i++) {
		FileEntry *fe = v->items[i].fe;
		PidfdEntry *pe = fe->pidfd;
		int r;

		if (fe->type != FILE_TYPE__FILE_PIDFD || !pe)
			continue;
		/* a thread pidfd names a tid: in the tree if its process is */
		pe->in_tree = in_tree(v, pe->pid) || in_tree(v, tgid_of(pe->pid));
		if (pe->in_tree)
			continue;
		r = start_time(pe->pid, &pe->start_time, e);
		if (r < 0)
			return ckpt_err_wrap(e,
					     "pid %d: fd %d: pidfd of pid %d outside the tree, "
					     "which has exited",
					     v->items[i].pid, v->items[i].fd, pe->pid);
		pe->has_start_time = true;
	}
	return 0;
}

static int pidfd_check(const FileEntry *fe, struct ckpt_error *e)
{
	if (fe->type != FILE_TYPE__FILE_PIDFD || !fe->pidfd)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: not a pidfd entry", fe->id);
	if (fe->pidfd->pid <= 0)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: field pidfd.pid: %d", fe->id,
				fe->pidfd->pid);
	if (!fe->pidfd->in_tree && !fe->pidfd->has_start_time)
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u: field pidfd.start_time: missing for a "
				"process outside the tree",
				fe->id);
	return 0;
}

/* Outside the tree: the very process, still there. */
static int check_outside(const FileEntry *fe, struct ckpt_error *e)
{
	const PidfdEntry *pe = fe->pidfd;
	struct ckpt_error tmp = {0};
	uint64_t st = 0;

	if (pe->in_tree)
		return 0;
	if (start_time(pe->pid, &st, &tmp) < 0 || st != pe->start_time)
		return ckpt_err(e, -ESRCH,
				"pidfd of pid %d (outside the tree): that process has exited since "
				"the dump%s; a pidfd of it cannot be made again",
				pe->pid, st ? " and its pid belongs to another process" : "");
	return 0;
}

static int pidfd_verify(const FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("pidfd-verify", e);

	if (r >= 0)
		r = pidfd_check(fe, e);
	return r < 0 ? r : check_outside(fe, e);
}

static int pidfd_open_in_task(const FileEntry *fe, pid_t pid, int *ret_fd, struct ckpt_error *e)
{
	unsigned flags = fe->flags & (O_NONBLOCK | PIDFD_THREAD);
	int fd, r;

	r = ckpt_fault_inject("pidfd-open", e);
	if (r >= 0)
		r = pidfd_check(fe, e);
	if (r >= 0)
		r = check_outside(fe, e);
	if (r < 0)
		return r;
	fd = (int)syscall(SYS_pidfd_open, fe->pidfd->pid, flags);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "pid %d: pidfd_open(%d%s)", pid, fe->pidfd->pid,
				      flags & PIDFD_THREAD ? ", PIDFD_THREAD" : "");
	*ret_fd = fd;
	return 0;
}

const struct fd_kind fd_kind_pidfd = {
    .name = "pidfd",
    .matches = pidfd_matches,
    .describe = pidfd_describe,
    .entry_field = offsetof(FileEntry, pidfd),
    .path = FD_PATH_ANON_INODE,
    .dump = pidfd_dump,
    .verify = pidfd_verify,
    .dump_done = pidfd_dump_done,
    .open_in_task = pidfd_open_in_task,
};
