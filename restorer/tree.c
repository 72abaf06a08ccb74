/* SPDX-License-Identifier: MIT */
/*
 * The restorer's (P's) side of the tree: fork the root, drive every task
 * through its phases, and on failure kill and reap everything.
 *
 * P is a child subreaper, so every task whose parent dies comes to P: that
 * is what lets rollback reap the whole tree. The tasks report over one
 * status pipe in packet mode (O_DIRECT: each write of a struct task_msg is
 * one packet, written atomically); P advances them with a phase number in a
 * shared page (futex). P only ever kills pids that said hello (they exist
 * and are ours, and nobody reaps them but P) and its own children.
 */
#define LOG_PREFIX "tree: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "log.h"
#include "proc.h"
#include "restore.h"
#include "thp.h"

#define POLL_MS 50
/* the look for tasks dead without a word waits ten times what it took */
#define CHECK_COST_RATIO 10
#define ROLLBACK_TIMEOUT_MS 10000
/* below this many tasks the forks cost less than making huge pages */
#define HUGE_FORK_MIN_TASKS 64
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

static const char *phase_name(int phase)
{
	switch (phase) {
	case PHASE_FORKED:
		return "forking";
	case PHASE_GROUPS:
		return "making process groups";
	case PHASE_JOIN:
		return "joining process groups";
	case PHASE_SETUP:
		return "setting up fds and process state";
	default:
		return "starting";
	}
}

static int ctl_setup(struct restore_ctx *ctx)
{
	int p[2];
	int r;

	ctx->ctl = mmap(NULL, RESTORE_CTL_SIZE(ctx->ntasks), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctx->ctl == MAP_FAILED) {
		ctx->ctl = NULL;
		return ckpt_err_errno(&ctx->err, -errno, "mmap of the control page");
	}
	if (pipe2(p, O_CLOEXEC | O_DIRECT) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "pipe2 for the status pipe");
	ctx->status_rd = p[0];
	ctx->status_wr = p[1];
	r = fd_spare(ctx, &ctx->status_rd, "the status pipe");
	if (r >= 0)
		r = fd_spare(ctx, &ctx->status_wr, "the status pipe");
	if (r < 0)
		return r;
	/* Only P's end is non-blocking; a packet takes a whole slot of the
	 * pipe, so make room for many (best effort: writers just wait). */
	if (fcntl(ctx->status_rd, F_SETFL, O_NONBLOCK) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "fcntl(O_NONBLOCK) on the status pipe");
	fcntl(ctx->status_rd, F_SETPIPE_SZ, 1 << 20);
	return 0;
}

static void set_phase(struct restore_ctx *ctx, uint32_t phase)
{
	__atomic_store_n(&ctx->ctl->phase, phase, __ATOMIC_RELEASE);
	syscall(SYS_futex, &ctx->ctl->phase, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/*
 * Handle one message (*ready counts the tasks that reached phase); negative
 * when a task reported a failure.
 */
static int handle_msg(struct restore_ctx *ctx, const struct task_msg *m, int phase, size_t *ready)
{
	struct rtask *t = task_by_pid(ctx, m->pid);

	if (!t)
		return ckpt_err(&ctx->err, -EPROTO, "status message from unknown pid %d", m->pid);
	switch (m->kind) {
	case MSG_HELLO:
		t->created = true;
		return 0;
	case MSG_PHASE:
		if (m->arg == phase && !t->ready) {
			t->ready = true;
			(*ready)++;
		}
		return 0;
	case MSG_BUSY:
		return 0; /* drain_msgs noted the time */
	case MSG_ERROR:
		ckpt_err(&ctx->err, m->err < 0 ? m->err : -EIO, "pid %d: %.*s", m->pid,
			 (int)sizeof(m->text) - 1, m->text);
		return ctx->err.code;
	default:
		return ckpt_err(&ctx->err, -EPROTO, "pid %d: unknown status message %d", m->pid,
				m->kind);
	}
}

/* Read every message waiting in the pipe (timeout_ms: wait for the first). */
static int drain_msgs(struct restore_ctx *ctx, int phase, int timeout_ms, size_t *ready)
{
	struct pollfd pfd = {.fd = ctx->status_rd, .events = POLLIN};
	struct task_msg m;

	for (;;) {
		ssize_t n;
		int r = poll(&pfd, 1, timeout_ms);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		timeout_ms = 0;
		n = read(ctx->status_rd, &m, sizeof(m));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n != (ssize_t)sizeof(m))
			return ckpt_err(&ctx->err, -EPROTO, "short status message (%zd bytes)", n);
		ctx->last_msg = ckpt_monotonic_seconds();
		r = handle_msg(ctx, &m, phase, ready);
		if (r < 0)
			return r;
	}
}

/* A created task that is gone or a zombie died without telling why. */
static int check_deaths(struct restore_ctx *ctx, int phase)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];
		struct ckpt_error ignore = {0};
		struct proc_stat st;

		if (!t->created || t->ready)
			continue;
		if (proc_parse_stat(t->pid, &st, &ignore) < 0)
			return ckpt_err(&ctx->err, -ESRCH, "pid %d vanished while %s", t->pid,
					phase_name(phase));
		if (st.state != 'Z' && st.state != 'X')
			continue;
		if (WIFSIGNALED(st.exit_code))
			return ckpt_err(&ctx->err, -ESRCH,
					"pid %d was killed by signal %d while %s", t->pid,
					WTERMSIG(st.exit_code), phase_name(phase));
		return ckpt_err(&ctx->err, -ESRCH, "pid %d exited with status %d while %s", t->pid,
				WEXITSTATUS(st.exit_code), phase_name(phase));
	}
	return 0;
}

/*
 * Until every task reached the phase; a failure if none was heard from for
 * RST_PHASE_TIMEOUT_MS (a long step, such as reading memory shared with its
 * children before the fork, sends MSG_BUSY now and then).
 */
static int wait_phase_all(struct restore_ctx *ctx, int phase)
{
	double deadline, next_check = 0, t0 = ckpt_monotonic_seconds();
	size_t ready = 0, idle;

	ctx->last_msg = t0;

	for (size_t i = 0; i < ctx->ntasks; i++) {
		ctx->tasks[i].ready = !task_in_phase(&ctx->tasks[i], phase);
		ready += ctx->tasks[i].ready;
	}
	idle = ready;
	while (ready < ctx->ntasks) {
		/* (counted as they report: a look at all 10,000 after each
		 * drain of a few messages was time P did not read) */
		int r = drain_msgs(ctx, phase, POLL_MS, &ready);

		/* a look at every task's /proc stat: not after each message
		 * (thousands of tasks report in one phase), and at most a tenth
		 * of our time (4,000 tasks: 60 ms a look; every 50 ms, it was
		 * most of what we did while they waited for us) */
		if (r >= 0 && ckpt_monotonic_seconds() >= next_check) {
			double t0 = ckpt_monotonic_seconds(), wait;

			r = check_deaths(ctx, phase);
			wait = CHECK_COST_RATIO * (ckpt_monotonic_seconds() - t0);
			next_check = ckpt_monotonic_seconds() +
				     (wait > POLL_MS / 1000.0 ? wait : POLL_MS / 1000.0);
		}
		if (r < 0)
			return r;
		deadline = ctx->last_msg + RST_PHASE_TIMEOUT_MS / 1000.0;
		if (ready < ctx->ntasks && ckpt_monotonic_seconds() > deadline) {
			for (size_t i = 0; i < ctx->ntasks; i++)
				if (!ctx->tasks[i].ready)
					return ckpt_err(&ctx->err, -ETIMEDOUT,
							"pid %d: no report after %d s while %s",
							ctx->tasks[i].pid,
							RST_PHASE_TIMEOUT_MS / 1000,
							phase_name(phase));
		}
	}
	pr_debug("%zu tasks done %s in %.3f s (%zu taking part)", ctx->ntasks, phase_name(phase),
		 ckpt_monotonic_seconds() - t0, ctx->ntasks - idle);
	return 0;
}

static int run_phase(struct restore_ctx *ctx, int phase)
{
	set_phase(ctx, (uint32_t)phase);
	return wait_phase_all(ctx, phase);
}

/*
 * Every task is a fork of P's memory or of its parent's: a fork copies a
 * page-table entry per 4 KiB page and each task unmaps them again in stage
 * memory, so with N tasks each fork cost O(N) and the tree O(N^2) (10,000
 * processes: 20 ms a process against 6 ms at 100). Collapsed into huge
 * pages first, P's anonymous memory is one entry per 2 MiB to copy and to
 * unmap. Best effort: the kernel may have no huge page to give (the forks
 * are then as before). The tasks' images are not among it: they are in the
 * arena (4 KiB pages, MADV_NOHUGEPAGE, which MADV_COLLAPSE respects), whose
 * pages a fork copies only for the tasks the child needs (task.c); what is
 * collapsed is the rest of P's heap, about 3 KiB a task.
 */
static void huge_pages_for_forks(struct restore_ctx *ctx)
{
	struct proc_vma_list l = {0};
	struct ckpt_error ignore = {0};
	double t0 = ckpt_monotonic_seconds();
	uint64_t bytes = 0;

	if (ctx->ntasks < HUGE_FORK_MIN_TASKS || proc_parse_maps(0, &l, &ignore) < 0)
		return;
	for (size_t i = 0; i < l.n; i++) {
		const struct proc_vma *v = &l.v[i];
		uint64_t s, e;

		if (v->shared || !(v->prot & PROT_WRITE) || v->ino ||
		    (v->path[0] && strcmp(v->path, "[heap]")) ||
		    !thp_inner(v->start, v->end, &s, &e))
			continue;
		if (madvise((void *)(uintptr_t)s, e - s, MADV_COLLAPSE) == 0)
			bytes += e - s;
	}
	proc_vma_list_free(&l);
	pr_debug("%" PRIu64 " MiB of our memory in huge pages for %zu forks in %.1f ms",
		 bytes >> 20, ctx->ntasks, (ckpt_monotonic_seconds() - t0) * 1e3);
}

int tree_create(struct restore_ctx *ctx)
{
	sigset_t all, old;
	int r;

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "prctl(PR_SET_CHILD_SUBREAPER)");
	ctx->subreaper = true;
	r = gadget_choose(ctx);
	if (r >= 0)
		r = ctl_setup(ctx);
	if (r >= 0 && ctx->opts->lazy)
		r = lazy_setup(ctx);
	if (r < 0)
		return r;
	huge_pages_for_forks(ctx);
	/* Blocked in every task from its first instruction on. P itself may
	 * still be interrupted: the tasks die with it (parent-death signal). */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	ctx->tree_started = true;
	r = task_clone(ctx, ctx->root, &ctx->err);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		return r;
	/* our own child: watched for death even before it says hello */
	ctx->root->created = true;
	r = wait_phase_all(ctx, PHASE_FORKED);
	if (r >= 0)
		r = run_phase(ctx, PHASE_GROUPS);
	if (r >= 0)
		r = run_phase(ctx, PHASE_JOIN);
	return r;
}

int tree_setup_tasks(struct restore_ctx *ctx)
{
	int r = run_phase(ctx, PHASE_SETUP);

	/* --shell-job: the root's group is the terminal's foreground job
	 * before any task runs its own code again (else it reads: SIGTTIN) */
	if (r >= 0)
		r = tty_shell_foreground(ctx);
	return r;
}

/* ---- rollback -------------------------------------------------------------------- */

static void kill_children_of_self(void)
{
	_cleanup_free_ pid_t *kids = NULL;
	struct ckpt_error ignore = {0};
	size_t n = 0;

	if (proc_list_children(getpid(), getpid(), &kids, &n, &ignore) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
}

/* Hello messages still queued name tasks that exist; the rest is moot now. */
static void learn_created(struct restore_ctx *ctx)
{
	struct task_msg m;

	if (ctx->status_rd < 0)
		return;
	while (read(ctx->status_rd, &m, sizeof(m)) == (ssize_t)sizeof(m)) {
		struct rtask *t = task_by_pid(ctx, m.pid);

		if (t && m.kind == MSG_HELLO)
			t->created = true;
	}
}

void tree_rollback(struct restore_ctx *ctx)
{
	double deadline = ckpt_monotonic_seconds() + ROLLBACK_TIMEOUT_MS / 1000.0;
	size_t reaped = 0;

	tty_shell_rollback(ctx);
	if (!ctx->tree_started)
		return;
	learn_created(ctx);
	for (size_t i = 0; i < ctx->ntasks; i++)
		if (ctx->tasks[i].created)
			kill(ctx->tasks[i].pid, SIGKILL);
	/* Orphans come to us (subreaper): kill our children until none is left. */
	for (;;) {
		int status;
		pid_t p;

		kill_children_of_self();
		p = waitpid(-1, &status, __WALL | WNOHANG);
		if (p < 0 && errno == ECHILD)
			break;
		if (p > 0) {
			reaped++;
			continue;
		}
		if (ckpt_monotonic_seconds() > deadline) {
			pr_warn("rollback: some tasks could not be reaped within %d s",
				ROLLBACK_TIMEOUT_MS / 1000);
			break;
		}
		usleep(2000);
	}
	ctx->tree_started = false;
	pr_info("rollback: killed and reaped %zu tasks", reaped);
}
