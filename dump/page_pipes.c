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
#include "fault.h"
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
/*
 * Pipes per round: made in one batch (pipe2), filled and closed in another
 * (close of the task's read end, vmsplice, close of its write end: 3 calls
 * a pipe, within one batch run). 256 MiB a round with 1 MiB pipes.
 */
#define ROUND_PIPES PAGE_PIPES_ROUND
/* ranges of one round, in the scratch (256 KiB), then the pipe2 results */
#define ROUND_IOVS 16384
#define SCRATCH_FDS (ROUND_IOVS * sizeof(struct iovec))
#define SCRATCH_LEN (SCRATCH_FDS + ROUND_PIPES * 2 * sizeof(int))

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

/* Size a pipe of ours, as large as we may (as root: more than
 * pipe-max-size; the slot array must be allocated). */
static int size_pipe(int fd, unsigned from, struct ckpt_error *e)
{
	for (unsigned size = from;; size /= 2) {
		int got = fcntl(fd, F_SETPIPE_SZ, size);

		if (got > 0)
			return got;
		if ((errno != EPERM && errno != ENOMEM) || size <= PIPE_BYTES_MIN)
			return ckpt_err_errno(e, -errno, "F_SETPIPE_SZ");
	}
}

int page_pipes_start(struct page_pipes *pp, struct dump_task *t, struct img *pages,
		     struct ckpt_error *e)
{
	struct proc_status st;
	struct rlimit rl;
	int probe[2];
	int r;

	memset(pp, 0, sizeof(*pp));
	pp->t = t;
	pp->pidfd = -1;
	r = page_writer_start(&pp->writer, pages, NULL, e);
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
	/* how large we may make a pipe: the same for the task's, which we size */
	if (pipe2(probe, O_CLOEXEC) < 0)
		return ckpt_err_errno(e, -errno, "pipe2");
	r = size_pipe(probe[0], PIPE_BYTES, e);
	close(probe[0]);
	close(probe[1]);
	if (r < 0)
		return r;
	pp->pipe_size = (unsigned)r;
	pp->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (pp->pidfd < 0)
		return ckpt_err_errno(e, -errno, "pid %d: pidfd_open", t->pid);
	r = rsys_init(&t->rsys, t->pid, 0, e);
	if (r < 0)
		return r;
	t->rsys_open = true;
	return rsys_scratch(&t->rsys, SCRATCH_LEN, e);
}

static int drain(struct page_pipes *pp, struct ckpt_error *e);

/* A pipe of a round: the task's ends, our read end, what it takes. */
struct round_pipe {
	int task_fds[2];
	int rfd;
	uint64_t room, bytes;
	size_t iov, niov; /* its ranges in the round's iovecs */
};

/* Close the task's fds of a failed round (its session is still open). */
static void close_task_fds(struct page_pipes *pp)
{
	for (size_t i = 0; i < pp->ntask_fds; i++) {
		long res;

		rsys_call(&pp->t->rsys, __NR_close, (uint64_t)pp->task_fds[i], 0, 0, 0, 0, 0, &res,
			  NULL);
	}
	pp->ntask_fds = 0;
}

/* k pipes made by the task, their read ends ours and sized: how many made. */
static int round_make(struct page_pipes *pp, struct round_pipe *rp, size_t k, struct ckpt_error *e)
{
	uint64_t fds_addr = pp->t->rsys.scratch + SCRATCH_FDS;
	struct rsys_op ops[ROUND_PIPES];
	int fds[ROUND_PIPES][2];
	size_t made;
	int r;

	for (size_t i = 0; i < k; i++)
		ops[i] = (struct rsys_op){.nr = __NR_pipe2,
					  .a = {fds_addr + i * sizeof(fds[0]), O_CLOEXEC}};
	r = rsys_batch(&pp->t->rsys, ops, k, e);
	if (r < 0)
		return r;
	r = remote_read(pp->t->pid, fds_addr, fds, k * sizeof(fds[0]), e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < k; i++) {
		if (ops[i].ret != 0)
			continue;
		pp->task_fds[pp->ntask_fds++] = fds[i][0];
		pp->task_fds[pp->ntask_fds++] = fds[i][1];
	}
	/* the task's fd limit may stop it early: the pipes made are enough */
	made = rsys_op_failed(ops, k);
	if (!made)
		return ckpt_err_errno(e, (int)ops[0].ret, "pid %d: remote pipe2", pp->t->pid);
	for (size_t i = 0; i < made; i++) {
		int *grown, got;

		rp[i] = (struct round_pipe){.task_fds = {fds[i][0], fds[i][1]}, .rfd = -1};
		rp[i].rfd = (int)syscall(SYS_pidfd_getfd, pp->pidfd, fds[i][0], 0);
		if (rp[i].rfd < 0)
			return ckpt_err_errno(e, -errno, "pid %d: pidfd_getfd of its pipe",
					      pp->t->pid);
		grown = realloc(pp->pipes, (pp->npipes + 1) * sizeof(*pp->pipes));
		if (!grown) {
			close(rp[i].rfd);
			return ckpt_err(e, -ENOMEM, "out of memory");
		}
		pp->pipes = grown;
		pp->pipes[pp->npipes++] = rp[i].rfd;
		got = size_pipe(rp[i].rfd, pp->pipe_size, e);
		if (got < 0)
			return ckpt_err_wrap(e, "pid %d: its pipe", pp->t->pid);
		rp[i].room = (uint64_t)got;
	}
	return (int)made;
}

/*
 * Hand the pending ranges, in order, to the round's pipes: as much as each
 * takes (every page a whole slot), at most PIPE_IOV_MAX ranges a vmsplice
 * and ROUND_IOVS a round. A range may be split. Returns the ranges used.
 */
static size_t round_plan(struct page_pipes *pp, struct round_pipe *rp, size_t k, struct iovec *iov)
{
	size_t n = 0, p = 0;
	uint64_t off = 0; /* into pp->pend[p] */

	for (size_t i = 0; i < k; i++) {
		rp[i].iov = n;
		while (p < pp->npend && rp[i].bytes < rp[i].room && rp[i].niov < PIPE_IOV_MAX &&
		       n < ROUND_IOVS) {
			uint64_t len = pp->pend[p].iov_len - off;

			if (len > rp[i].room - rp[i].bytes)
				len = rp[i].room - rp[i].bytes;
			iov[n].iov_base = (char *)pp->pend[p].iov_base + off;
			iov[n].iov_len = len;
			n++;
			rp[i].niov++;
			rp[i].bytes += len;
			off += len;
			if (off == pp->pend[p].iov_len) {
				p++;
				off = 0;
			}
		}
	}
	/* what is left waits for the next round */
	if (p < pp->npend) {
		pp->pend[p].iov_base = (char *)pp->pend[p].iov_base + off;
		pp->pend[p].iov_len -= off;
	}
	memmove(pp->pend, pp->pend + p, (pp->npend - p) * sizeof(*pp->pend));
	pp->npend -= p;
	return n;
}

/* One round: up to ROUND_PIPES pipes made, filled and closed in the task. */
static int round_run(struct page_pipes *pp, struct ckpt_error *e)
{
	_cleanup_free_ struct iovec *iov = calloc(ROUND_IOVS, sizeof(*iov));
	/* 3 calls a pipe, and the closes of pipes made but not used */
	_cleanup_free_ struct rsys_op *ops = calloc(5 * ROUND_PIPES, sizeof(*ops));
	struct round_pipe rp[ROUND_PIPES];
	uint64_t scratch = pp->t->rsys.scratch;
	size_t k, niov, nops = 0, used, extra;
	int r;

	if (!iov || !ops)
		return ckpt_err(e, -ENOMEM, "out of memory");
	if (pp->npipes == pp->max_pipes || pp->bytes - pp->drained >= PAGE_PIPES_BYTES_MAX) {
		/* as much as we hold: write it out now, still frozen, and go on */
		pr_debug("pid %d: %zu pipes full: written while frozen", pp->t->pid, pp->npipes);
		r = drain(pp, e);
		if (r < 0)
			return r;
	}
	k = (size_t)((pp->pend_bytes + pp->pipe_size - 1) / pp->pipe_size);
	if (k > ROUND_PIPES)
		k = ROUND_PIPES;
	if (k > pp->max_pipes - pp->npipes)
		k = pp->max_pipes - pp->npipes;
	if (!k)
		k = 1;
	r = round_make(pp, rp, k, e);
	if (r < 0)
		return r;
	k = (size_t)r;
	/* a failure while the task holds the round's pipe ends */
	r = ckpt_fault_inject("page-pipes-round", e);
	if (r < 0)
		return r;
	niov = round_plan(pp, rp, k, iov);
	r = remote_write(pp->t->pid, scratch, iov, niov * sizeof(*iov), e);
	if (r < 0)
		return r;
	/* pipes made after one that failed (none, unless the kernel's own
	 * limit was reached and then left): not used, closed again */
	for (size_t j = 2 * k; j < pp->ntask_fds; j++)
		ops[nops++] = (struct rsys_op){.nr = __NR_close, .a = {(uint64_t)pp->task_fds[j]}};
	extra = nops;
	/* non-blocking: a full pipe would return short, never wait for a reader */
	for (size_t i = 0; i < k; i++) {
		ops[nops++] =
		    (struct rsys_op){.nr = __NR_close, .a = {(uint64_t)rp[i].task_fds[0]}};
		if (rp[i].niov)
			ops[nops++] = (struct rsys_op){.nr = __NR_vmsplice,
						       .a = {(uint64_t)rp[i].task_fds[1],
							     scratch + rp[i].iov * sizeof(*iov),
							     rp[i].niov, SPLICE_F_NONBLOCK}};
		ops[nops++] =
		    (struct rsys_op){.nr = __NR_close, .a = {(uint64_t)rp[i].task_fds[1]}};
	}
	r = rsys_batch(&pp->t->rsys, ops, nops, e);
	if (r < 0)
		return r;
	/* the task's ends are closed, whatever the results (close frees the fd) */
	pp->ntask_fds = 0;
	used = 0;
	for (size_t i = 0, j = extra; i < k; i++) {
		long moved;

		if (ops[j].ret < 0)
			return ckpt_err_errno(e, (int)ops[j].ret, "pid %d: remote close",
					      pp->t->pid);
		j++;
		if (!rp[i].niov) {
			j++;
			continue;
		}
		moved = ops[j++].ret;
		if (moved < 0 && moved > -4096)
			return ckpt_err_errno(e, (int)moved, "pid %d: remote vmsplice", pp->t->pid);
		if ((uint64_t)moved != rp[i].bytes)
			return ckpt_err(e, -EIO,
					"pid %d: vmsplice moved %ld of %" PRIu64
					" bytes into an empty pipe of %" PRIu64,
					pp->t->pid, moved, rp[i].bytes, rp[i].room);
		if (ops[j].ret < 0)
			return ckpt_err_errno(e, (int)ops[j].ret, "pid %d: remote close",
					      pp->t->pid);
		j++;
		pp->bytes += (uint64_t)moved;
		pp->pend_bytes -= (uint64_t)moved;
		used++;
	}
	pr_debug("pid %d: a round of %zu pipes (%zu used), %zu ranges", pp->t->pid, k, used, niov);
	/* pipes left empty (the ranges ran out): not ours to keep */
	for (size_t i = used; i < k; i++)
		close(pp->pipes[--pp->npipes]);
	return 0;
}

int page_pipes_add(struct page_pipes *pp, struct iovec *iov, size_t n, struct ckpt_error *e)
{
	if (pp->npend + n > pp->pend_cap) {
		size_t cap = pp->npend + n > 2 * pp->pend_cap ? pp->npend + n : 2 * pp->pend_cap;
		struct iovec *grown = realloc(pp->pend, cap * sizeof(*grown));

		if (!grown)
			return ckpt_err(e, -ENOMEM, "out of memory");
		pp->pend = grown;
		pp->pend_cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		pp->pend[pp->npend++] = iov[i];
		pp->pend_bytes += iov[i].iov_len;
	}
	/* a round's worth: move it now (the ranges held stay bounded) */
	while (pp->pend_bytes >= (uint64_t)ROUND_PIPES * pp->pipe_size || pp->npend >= ROUND_IOVS) {
		int r = round_run(pp, e);

		if (r < 0)
			return r;
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
	int r = 0;

	while (r >= 0 && pp->npend)
		r = round_run(pp, e);
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

void page_pipes_abort(struct page_pipes *pp)
{
	if (pp->t && pp->t->rsys_open)
		close_task_fds(pp);
	pp->ntask_fds = 0;
}

void page_pipes_free(struct page_pipes *pp)
{
	page_pipes_abort(pp);
	page_writer_stop(&pp->writer, NULL);
	for (size_t i = 0; i < pp->npipes; i++)
		close(pp->pipes[i]);
	free(pp->pipes);
	pp->pipes = NULL;
	free(pp->pend);
	pp->pend = NULL;
	pp->npend = 0;
	pp->npipes = 0;
	if (pp->pidfd > 0)
		close(pp->pidfd);
	pp->pidfd = -1;
}
