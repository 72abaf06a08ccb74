/* SPDX-License-Identifier: MIT */
/*
 * Short freezes for --leave-running: a task's pages are moved into pipes
 * while it is frozen, without copying them, and written to the pages image
 * after it is resumed. See docs/dump.md, "Leave running".
 *
 * The pipes are made by the task (remote pipe2; we take the read end with
 * pidfd_getfd and size it ourselves, as root), filled by the task
 * (remote vmsplice of its own ranges: the pipe then holds references to
 * the task's pages, not copies), and their write ends closed again in the
 * task. A page referenced by a pipe is the page the task keeps writing to
 * once resumed, so before the resume the task forks a child that is killed
 * before it runs (remote clone, the child traced through
 * PTRACE_O_TRACECLONE, SIGKILL, reaped by the task itself with a remote
 * wait4): fork makes every private page of the task copy-on-write, and
 * since the pipe still holds a reference to each page the kernel copies it
 * on the task's next write instead of reusing it. The pipes keep the pages
 * as they were at the freeze.
 */
#define LOG_PREFIX "dump: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "dump_internal.h"
#include "log.h"
#include "page_pipes.h"
#include "page_writer.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/*
 * Bytes per pipe: 16384 slots of 40 bytes in the kernel; halved if refused.
 * Above /proc/sys/fs/pipe-max-size (1 MiB) only with CAP_SYS_RESOURCE,
 * which containers often drop: then 1 MiB pipes, many of them.
 */
#define PIPE_BYTES (64u << 20)
#define PIPE_BYTES_MIN 4096u
/* scratch: the iovecs of one vmsplice, and the two fds of pipe2 */
#define SCRATCH_FDS (PIPE_IOV_MAX * sizeof(struct iovec))

static int rcall(struct page_pipes *pp, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		 long *ret, const char *what, struct ckpt_error *e)
{
	int r = rsys_call(&pp->t->rsys, nr, a1, a2, a3, a4, 0, 0, ret, e);

	if (r < 0)
		return r;
	if (*ret < 0 && *ret > -4096)
		return ckpt_err_errno(e, (int)*ret, "pid %d: remote %s", pp->t->pid, what);
	return 0;
}

/* Trace (or stop tracing) the task's clones; the other options as at seize. */
static int set_trace_clone(struct page_pipes *pp, bool on, struct ckpt_error *e)
{
	long opts = PTRACE_O_TRACESYSGOOD | (pp->suspend_seccomp ? PTRACE_O_SUSPEND_SECCOMP : 0) |
		    (on ? PTRACE_O_TRACECLONE : 0);

	if (ptrace(PTRACE_SETOPTIONS, pp->t->pid, NULL, (void *)opts) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: PTRACE_SETOPTIONS", pp->t->pid);
	return 0;
}

int page_pipes_start(struct page_pipes *pp, struct dump_task *t, struct img *pages,
		     struct ckpt_error *e)
{
	struct proc_status st;
	struct rlimit rl;
	int r;

	memset(pp, 0, sizeof(*pp));
	pp->t = t;
	pp->wfd = -1;
	pp->pidfd = -1;
	r = page_writer_start(&pp->writer, pages, e);
	if (r < 0)
		return r;
	r = proc_parse_status(t->pid, &st, e);
	if (r < 0)
		return r;
	pp->suspend_seccomp = st.seccomp != 0;
	/* one fd per pipe: as many as we may */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	pp->max_pipes = PAGE_PIPES_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur / 2 < pp->max_pipes)
		pp->max_pipes = rl.rlim_cur / 2 > 16 ? rl.rlim_cur / 2 : 16;
	pp->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (pp->pidfd < 0)
		return ckpt_err_errno(e, -errno, "pid %d: pidfd_open", t->pid);
	r = rsys_init(&t->rsys, t->pid, 0, e);
	if (r < 0)
		return r;
	t->rsys_open = true;
	return rsys_scratch(&t->rsys, SCRATCH_FDS + 2 * sizeof(int), e);
}

static int drain(struct page_pipes *pp, struct ckpt_error *e);

/* Close the task's write end of the current pipe. */
static int close_write_end(struct page_pipes *pp, struct ckpt_error *e)
{
	long res;
	int r;

	if (pp->wfd < 0)
		return 0;
	r = rcall(pp, __NR_close, (uint64_t)pp->wfd, 0, 0, 0, &res, "close", e);
	pp->wfd = -1;
	return r;
}

/* A new pipe: made in the task, its read end ours, sized by us. */
static int new_pipe(struct page_pipes *pp, struct ckpt_error *e)
{
	uint64_t fds_addr = pp->t->rsys.scratch + SCRATCH_FDS;
	int fds[2], *grown, rfd;
	long res;
	int r;

	r = close_write_end(pp, e);
	if (r < 0)
		return r;
	if (pp->npipes == pp->max_pipes || pp->bytes - pp->drained >= PAGE_PIPES_BYTES_MAX) {
		/* as much as we hold: write it out now, still frozen, and go on */
		pr_debug("pid %d: %zu pipes full: written while frozen", pp->t->pid, pp->npipes);
		r = drain(pp, e);
		if (r < 0)
			return r;
	}
	r = rcall(pp, __NR_pipe2, fds_addr, O_CLOEXEC, 0, 0, &res, "pipe2", e);
	if (r < 0)
		return r;
	r = remote_read(pp->t->pid, fds_addr, fds, sizeof(fds), e);
	if (r < 0)
		return r;
	pp->wfd = fds[1];
	rfd = (int)syscall(SYS_pidfd_getfd, pp->pidfd, fds[0], 0);
	if (rfd < 0)
		r = ckpt_err_errno(e, -errno, "pid %d: pidfd_getfd of its pipe", pp->t->pid);
	/* the task's read end: gone (we hold ours) */
	if (rcall(pp, __NR_close, (uint64_t)fds[0], 0, 0, 0, &res, "close", e) < 0 && r >= 0)
		r = -EIO;
	if (r < 0) {
		if (rfd >= 0)
			close(rfd);
		return r;
	}
	grown = realloc(pp->pipes, (pp->npipes + 1) * sizeof(*pp->pipes));
	if (!grown) {
		close(rfd);
		return ckpt_err(e, -ENOMEM, "out of memory");
	}
	pp->pipes = grown;
	pp->pipes[pp->npipes++] = rfd;
	/* as root: more than pipe-max-size; the slot array must be allocated */
	for (unsigned size = PIPE_BYTES;; size /= 2) {
		int got = fcntl(rfd, F_SETPIPE_SZ, size);

		if (got > 0) {
			pp->room = (uint64_t)got;
			return 0;
		}
		if (errno != EPERM && errno != ENOMEM)
			return ckpt_err_errno(e, -errno, "pid %d: F_SETPIPE_SZ", pp->t->pid);
		if (size <= PIPE_BYTES_MIN)
			return ckpt_err_errno(e, -errno, "pid %d: F_SETPIPE_SZ", pp->t->pid);
	}
}

int page_pipes_add(struct page_pipes *pp, struct iovec *iov, size_t n, struct ckpt_error *e)
{
	while (n) {
		uint64_t want = 0, moved;
		size_t k = 0;
		long res;
		int r;

		if (!pp->room) {
			r = new_pipe(pp, e);
			if (r < 0)
				return r;
		}
		/* as many ranges as fit the pipe (every page takes a whole slot) */
		while (k < n && k < PIPE_IOV_MAX && want < pp->room) {
			want += iov[k].iov_len;
			k++;
		}
		r = remote_write(pp->t->pid, pp->t->rsys.scratch, iov, k * sizeof(*iov), e);
		if (r < 0)
			return r;
		/* non-blocking: a full pipe returns short, never waits for a reader */
		r = rcall(pp, __NR_vmsplice, (uint64_t)pp->wfd, pp->t->rsys.scratch, k,
			  SPLICE_F_NONBLOCK, &res, "vmsplice", e);
		if (r == -EAGAIN) {
			pp->room = 0;
			continue;
		}
		if (r < 0)
			return r;
		if (res == 0)
			return ckpt_err(e, -EIO, "pid %d: vmsplice moved nothing", pp->t->pid);
		moved = (uint64_t)res;
		pp->bytes += moved;
		/* short: the pipe is full */
		pp->room = moved >= pp->room || moved < want ? 0 : pp->room - moved;
		/* skip what was moved */
		while (res > 0) {
			if ((uint64_t)res >= iov->iov_len) {
				res -= (long)iov->iov_len;
				iov++;
				n--;
			} else {
				iov->iov_base = (char *)iov->iov_base + res;
				iov->iov_len -= (size_t)res;
				res = 0;
			}
		}
	}
	return 0;
}

/* The task forks a child that never runs: its pages become copy-on-write. */
static int protect_pages(struct page_pipes *pp, struct ckpt_error *e)
{
	pid_t pid = pp->t->pid, child;
	int r, status;
	long res;

	r = set_trace_clone(pp, true, e);
	if (r < 0)
		return r;
	/* no exit signal (the task gets no SIGCHLD), the fd table shared (its
	 * exit closes nothing), no CLONE_VM: a copy of the address space */
	r = rcall(pp, __NR_clone, CLONE_FILES | CLONE_FS, 0, 0, 0, &res, "clone", e);
	if (r >= 0)
		r = set_trace_clone(pp, false, e);
	if (r < 0)
		return r;
	child = (pid_t)res;
	/* auto-attached by PTRACE_O_TRACECLONE: stopped before any instruction */
	if (kill(child, SIGKILL) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: killing its copy %d", pid, child);
	for (;;) {
		if (waitpid(child, &status, __WALL) < 0)
			return ckpt_err_errno(e, -errno, "pid %d: waiting for its copy %d", pid,
					      child);
		if (WIFEXITED(status) || WIFSIGNALED(status))
			break;
	}
	/* our wait handed the zombie to its parent, which reaps it itself */
	r = rcall(pp, __NR_wait4, (uint64_t)child, 0, __WALL, 0, &res, "wait4", e);
	if (r < 0)
		return r;
	pr_debug("pid %d: pages made copy-on-write by child %d", pid, child);
	return 0;
}

int page_pipes_seal(struct page_pipes *pp, struct ckpt_error *e)
{
	int r = close_write_end(pp, e);

	if (r >= 0 && pp->bytes)
		r = protect_pages(pp, e);
	if (r >= 0) {
		r = rsys_fini(&pp->t->rsys, e);
		pp->t->rsys_open = false;
	}
	return r;
}

/* Write the pipes to the image in order, and close them. */
static int drain(struct page_pipes *pp, struct ckpt_error *e)
{
	uint64_t total = 0;

	for (size_t i = 0; i < pp->npipes; i++) {
		for (;;) {
			size_t got = 0;
			char *buf;
			int r = page_writer_buf(&pp->writer, &buf, e);

			if (r < 0)
				return r;
			while (got < PAGE_WRITER_BUF) {
				ssize_t k = read(pp->pipes[i], buf + got, PAGE_WRITER_BUF - got);

				if (k < 0 && errno == EINTR)
					continue;
				if (k < 0)
					return ckpt_err_errno(e, -errno, "pid %d: reading pipe %zu",
							      pp->t->pid, i);
				if (k == 0)
					break;
				got += (size_t)k;
			}
			if (!got)
				break;
			r = page_writer_submit(&pp->writer, got, e);
			if (r < 0)
				return r;
			total += got;
		}
	}
	if (pp->drained + total != pp->bytes)
		return ckpt_err(e, -EIO,
				"pid %d: %" PRIu64
				" bytes of pages read back from the pipes, %" PRIu64
				" moved into them",
				pp->t->pid, pp->drained + total, pp->bytes);
	pp->drained += total;
	for (size_t i = 0; i < pp->npipes; i++)
		close(pp->pipes[i]);
	pp->npipes = 0;
	return 0;
}

int page_pipes_write(struct page_pipes *pp, struct ckpt_error *e)
{
	int r = drain(pp, e);

	if (r >= 0)
		r = page_writer_stop(&pp->writer, e);
	return r;
}

void page_pipes_free(struct page_pipes *pp)
{
	if (pp->t && pp->t->rsys_open && pp->wfd >= 0) {
		long res;

		rsys_call(&pp->t->rsys, __NR_close, (uint64_t)pp->wfd, 0, 0, 0, 0, 0, &res, NULL);
	}
	pp->wfd = -1;
	page_writer_stop(&pp->writer, NULL);
	for (size_t i = 0; i < pp->npipes; i++)
		close(pp->pipes[i]);
	free(pp->pipes);
	pp->pipes = NULL;
	pp->npipes = 0;
	if (pp->pidfd > 0)
		close(pp->pidfd);
	pp->pidfd = -1;
}
