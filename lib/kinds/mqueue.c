/* SPDX-License-Identifier: MIT */
/*
 * POSIX message queues (mq_open). A queue is a named object of its IPC
 * namespace, like a file of a file system that is never mounted where the
 * program can see it: its fd's /proc link is the queue's name ("/jobs"),
 * relative to the mqueue file system, not a path. It outlives the tree,
 * with its messages, so the restore opens it again by name (mq_open, no
 * O_CREAT) and takes only the queue dumped: the same inode (the dump
 * checks that the name still leads to it, the restore that it still does),
 * maximum count and size of messages. Refused: a queue that was unlinked
 * (nothing can open it again, and its messages cannot be read without
 * taking them), one in another IPC namespace than the dumper's, and a
 * notification registered by a task of the tree (mq_notify: it goes with
 * the task).
 */
#define LOG_PREFIX "kind mqueue: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"

#define MQUEUE_MAGIC 0x19800202

/* "/name" or "/name (deleted)": one component (the queue's name) */
static bool mqueue_link(const char *link)
{
	const char *slash = link[0] == '/' ? strchr(link + 1, '/') : link;

	return link[0] == '/' && link[1] && !slash;
}

static bool mqueue_matches(const struct fd_probe *p)
{
	struct statfs sfs;

	/* the file system is asked only of a file whose link could be a queue */
	return S_ISREG(p->st.st_mode) && p->local_fd >= 0 && mqueue_link(p->link) &&
	       fstatfs(p->local_fd, &sfs) == 0 && sfs.f_type == MQUEUE_MAGIC;
}

static bool mqueue_describe(const struct fd_probe *p, char *buf, size_t len)
{
	if (!mqueue_matches(p))
		return false;
	snprintf(buf, len, "POSIX message queue %s", p->link);
	return true;
}

/* The queue named name, opened with flags' access mode, checked against ino and dev. */
static int open_named(const char *name, uint32_t flags, uint64_t ino, uint64_t dev, int *ret_fd,
		      struct ckpt_error *e)
{
	_cleanup_close_ int q = -1;
	struct stat st;

	q = mq_open(name, (int)(flags & (O_ACCMODE | O_NONBLOCK)) | O_CLOEXEC);
	if (q < 0 && errno == ENOENT)
		return ckpt_err(e, -ENOENT,
				"POSIX message queue %s: no queue has that name (it "
				"was unlinked)",
				name);
	if (q < 0)
		return ckpt_err_errno(e, -errno, "POSIX message queue %s: mq_open", name);
	if (fstat(q, &st) < 0)
		return ckpt_err_errno(e, -errno, "POSIX message queue %s", name);
	if ((uint64_t)st.st_ino != ino || (uint64_t)st.st_dev != dev)
		return ckpt_err(e, -ESTALE,
				"POSIX message queue %s: the queue of that name is not the one "
				"dumped (inode %" PRIu64 ", now %" PRIu64 "): it was unlinked "
				"and made again",
				name, ino, (uint64_t)st.st_ino);
	*ret_fd = TAKE_FD(q);
	return 0;
}

/* The IPC namespace of pid is ours. */
static int same_ipc_ns(pid_t pid, struct ckpt_error *e)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	if (stat(path, &a) < 0 || stat("/proc/self/ns/ipc", &b) < 0)
		return ckpt_err_errno(e, -errno, "%s", path);
	if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
		return ckpt_err(e, -EOPNOTSUPP,
				"it is in another IPC namespace than the dumper's; not supported");
	return 0;
}

/* NOTIFY_PID of what reading the queue's file shows (without moving its position). */
static int notify_pid(int fd, pid_t *ret, struct ckpt_error *e)
{
	char buf[256];
	const char *at;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n < 0)
		return ckpt_err_errno(e, -errno, "reading its state");
	buf[n] = '\0';
	at = strstr(buf, "NOTIFY_PID:");
	*ret = at ? (pid_t)atoi(at + 11) : 0;
	return 0;
}

static int mqueue_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	_cleanup_close_ int q = -1;
	struct mq_attr attr;
	MqueueEntry *m;
	pid_t notify = 0;
	int r;

	r = ckpt_fault_inject("mqueue-dump", e);
	if (r >= 0 && fdk_link_is_deleted(p->link))
		r = ckpt_err(e, -EOPNOTSUPP,
			     "it was unlinked (mq_unlink): nothing can open it again, and its "
			     "messages cannot be read without taking them; not supported");
	if (r >= 0 && !p->in_flight)
		r = same_ipc_ns(p->pid, e);
	if (r >= 0 && mq_getattr(p->local_fd, &attr) < 0)
		r = ckpt_err_errno(e, -errno, "mq_getattr");
	if (r >= 0)
		r = notify_pid(p->local_fd, &notify, e);
	/* the name still leads to it */
	if (r >= 0)
		r = open_named(p->link, p->info.flags, (uint64_t)p->st.st_ino,
			       (uint64_t)p->st.st_dev, &q, e);
	if (r >= 0)
		r = fdk_dump_common(p, FILE_TYPE__FILE_MQUEUE, fe, e);
	if (r < 0)
		return ckpt_err_wrap(e, "POSIX message queue %s", p->link);
	m = calloc(1, sizeof(*m));
	if (!m)
		return ckpt_err(e, -ENOMEM, "out of memory");
	mqueue_entry__init(m);
	fe->mqueue = m;
	m->ino = (uint64_t)p->st.st_ino;
	m->dev = (uint64_t)p->st.st_dev;
	m->maxmsg = (uint64_t)attr.mq_maxmsg;
	m->msgsize = (uint64_t)attr.mq_msgsize;
	m->has_notify_pid = notify != 0;
	m->notify_pid = notify;
	pr_debug("pid %d fd %d: POSIX message queue %s, %ld messages of at most %ld\n", p->pid,
		 p->fd, p->link, attr.mq_curmsgs, attr.mq_maxmsg);
	return 0;
}

/* A notification registered by a task of the tree goes with it. */
static int mqueue_dump_done(const struct fd_dump_view *v, struct ckpt_error *e)
{
	for (size_t i = 0; i < v->n; i++) {
		const FileEntry *fe = v->items[i].fe;

		if (fe->type != FILE_TYPE__FILE_MQUEUE || !fe->mqueue ||
		    !fe->mqueue->has_notify_pid)
			continue;
		for (size_t k = 0; k < v->npids; k++)
			if (v->pids[k] == fe->mqueue->notify_pid)
				return ckpt_err(e, -EOPNOTSUPP,
						"pid %d: fd %d: POSIX message queue %s: pid %d "
						"registered a notification (mq_notify); not "
						"supported",
						v->items[i].pid, v->items[i].fd, fe->path,
						fe->mqueue->notify_pid);
	}
	return 0;
}

static int mqueue_check(const FileEntry *fe, struct ckpt_error *e)
{
	int r = fdk_check_entry(fe, FILE_TYPE__FILE_MQUEUE, e);

	if (r < 0)
		return r;
	if (!fe->mqueue || !mqueue_link(fe->path))
		return ckpt_err(e, -EINVAL, "files.img: entry %u: not a message queue entry",
				fe->id);
	if (!fe->mqueue->maxmsg || !fe->mqueue->msgsize)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: field mqueue: no message fits",
				fe->id);
	return 0;
}

static int mqueue_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	const MqueueEntry *m = fe->mqueue;
	_cleanup_close_ int q = -1;
	struct mq_attr attr;
	int r;

	r = ckpt_fault_inject("mqueue-open", e);
	if (r >= 0)
		r = mqueue_check(fe, e);
	if (r >= 0)
		r = open_named(fe->path, fe->flags, m->ino, m->dev, &q, e);
	if (r < 0)
		return r;
	if (mq_getattr(q, &attr) < 0)
		return ckpt_err_errno(e, -errno, "POSIX message queue %s: mq_getattr", fe->path);
	if ((uint64_t)attr.mq_maxmsg != m->maxmsg || (uint64_t)attr.mq_msgsize != m->msgsize)
		return ckpt_err(e, -ESTALE,
				"POSIX message queue %s: %ld messages of %ld bytes at most, dumped "
				"%" PRIu64 " of %" PRIu64,
				fe->path, attr.mq_maxmsg, attr.mq_msgsize, m->maxmsg, m->msgsize);
	r = fdk_set_fd_flags(q, fd_flags, fe, e);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(q);
	return 0;
}

/* Before anything is made: the queue is there (opened, checked, closed). */
static int mqueue_verify(const FileEntry *fe, struct ckpt_error *e)
{
	_cleanup_close_ int q = -1;
	int r = ckpt_fault_inject("mqueue-verify", e);

	return r < 0 ? r : mqueue_open(fe, O_CLOEXEC, &q, e);
}

const struct fd_kind fd_kind_mqueue = {
    .name = "POSIX message queue",
    .matches = mqueue_matches,
    .describe = mqueue_describe,
    .entry_field = offsetof(FileEntry, mqueue),
    .path = FD_PATH_ABSOLUTE,
    .dump = mqueue_dump,
    .verify = mqueue_verify,
    .open = mqueue_open,
    .dump_done = mqueue_dump_done,
};
