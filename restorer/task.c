/* SPDX-License-Identifier: MIT */
/*
 * Code that runs inside each new task, between its clone3() and the moment
 * the restorer seizes it to replace its memory. A task is a fork of the
 * restorer (P) or of its parent task: it has P's memory, with the images it
 * needs already loaded (its own, its ancestors' and subtree's and a few
 * siblings': "what a fork hands down" below), and P's file objects. It
 *   a. blocks every signal and drops what it inherited from the restorer's
 *      runtime (rseq, robust list, tid address), and dies with its parent
 *      until resume (parent-death signal);
 *   b. makes its session (setsid) if it leads one;
 *   c. puts the memory it shares copy-on-write with its parent and children
 *      in place (cow.c), then forks its children with their pids (clone3
 *      with set_tid), which inherit that memory;
 * then follows P's phases (a futex in a shared page): group leaders make
 * their groups, members join them, and each task installs its fds and the
 * state only it can set, maps the gadget, and waits to be seized.
 *
 * It never prints (its fds 0-2 become the restored program's): every
 * outcome goes to P over the status pipe, and any failure ends with _exit.
 */
#define LOG_PREFIX "task: "

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault.h"
#include "restore.h"

#ifndef RSEQ_SIG
#define RSEQ_SIG 0x53053053
#endif

/* The kernel's struct sigaction for rt_sigaction (not glibc's). */
struct kernel_sigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

static void send_msg(struct restore_ctx *ctx, struct rtask *t, int kind, int arg,
		     const struct ckpt_error *e)
{
	struct task_msg m = {.pid = t->pid, .kind = kind, .arg = arg};
	ssize_t n;

	if (e) {
		m.err = e->code;
		memcpy(m.text, e->msg, sizeof(m.text));
		m.text[sizeof(m.text) - 1] = '\0';
	}
	do
		n = write(ctx->status_wr, &m, sizeof(m));
	while (n < 0 && errno == EINTR);
}

void task_busy(struct restore_ctx *ctx, struct rtask *t)
{
	send_msg(ctx, t, MSG_BUSY, 0, NULL);
}

static __attribute__((noreturn)) void task_fail(struct restore_ctx *ctx, struct rtask *t, int phase,
						const struct ckpt_error *e)
{
	send_msg(ctx, t, MSG_ERROR, phase, e);
	_exit(1);
}

static void wait_phase(struct restore_ctx *ctx, uint32_t phase)
{
	uint32_t cur;

	while ((cur = __atomic_load_n(&ctx->ctl->phase, __ATOMIC_ACQUIRE)) < phase)
		syscall(SYS_futex, &ctx->ctl->phase, FUTEX_WAIT, cur, NULL, NULL, 0);
}

/* a. Nothing of the restorer's runtime may act on the restored memory. */
static int reset_inherited(pid_t parent, struct ckpt_error *e)
{
	sigset_t all;

	sigfillset(&all);
	if (sigprocmask(SIG_SETMASK, &all, NULL) < 0)
		return ckpt_err_errno(e, -errno, "sigprocmask");
	/* glibc registered rseq in the restorer; the kernel would keep writing
	 * the cpu number into what becomes the restored program's memory. */
	if (__rseq_size > 0) {
		void *area = (char *)__builtin_thread_pointer() + __rseq_offset;

		if (syscall(SYS_rseq, area, __rseq_size, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) < 0 &&
		    syscall(SYS_rseq, area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) < 0 &&
		    errno != EINVAL)
			return ckpt_err_errno(e, -errno, "unregistering the restorer's rseq");
	}
	if (syscall(SYS_set_robust_list, NULL, 3 * sizeof(void *)) < 0)
		return ckpt_err_errno(e, -errno, "set_robust_list(NULL)");
	syscall(SYS_set_tid_address, NULL);
	/* Until resume, a task dies with its parent (P for the root): if the
	 * restorer itself is killed, the half-made tree follows it. Cleared
	 * by the last remote calls (resume_queue_task). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return ckpt_err_errno(e, -errno, "prctl(PR_SET_PDEATHSIG)");
	if (getppid() != parent)
		return ckpt_err(e, -ESRCH, "the parent died before the task started");
	return 0;
}

static __attribute__((noreturn)) void task_main(struct restore_ctx *ctx, struct rtask *t,
						pid_t parent);

/* ---- what a fork hands down ------------------------------------------------------- */

/*
 * A task has what P or its parent had when it was forked, the images of
 * every task among it (ctx->arena). It needs its own, its subtree's (to fork
 * its children), its ancestors' (cow.c reads its parent's areas) and those
 * of the siblings it copies pages from (cow.c fill_kept). The others are
 * left out of each fork: their page tables would be copied into every one of
 * N tasks and unmapped again in stage memory, and the forks, one after the
 * other in the root, grew with the memory they copy (docs/restore.md, "What
 * a fork hands down"). The subtree of a task is one range of the arena
 * (images.c load_tasks).
 */
static int fork_hand_down(struct restore_ctx *ctx, const struct rtask *c, bool inherit,
			  struct ckpt_error *e)
{
	int r = arena_inherit(&ctx->arena, c->arena_lo, c->arena_sub_hi, inherit, e);

	for (size_t i = 0; r >= 0 && i < c->n_sib_reads; i++)
		r = arena_inherit(&ctx->arena, c->sib_reads[i]->arena_lo, c->sib_reads[i]->arena_hi,
				  inherit, e);
	return r < 0 ? ckpt_err_wrap(e, "pid %d: the images its fork hands down", c->pid) : r;
}

pid_t task_clone(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e)
{
	pid_t want = t->pid;
	struct clone_args args = {
	    /* its fd table is ours (images.c checked files_of is its parent) */
	    .flags = (t->pst->has_files_of ? CLONE_FILES : 0) | (t->pst->has_fs_of ? CLONE_FS : 0),
	    .exit_signal = t->core->has_exit_signal ? t->core->exit_signal : SIGCHLD,
	    .set_tid = (uint64_t)(uintptr_t)&want,
	    .set_tid_size = 1,
	};
	pid_t self = getpid();
	uint64_t saved;
	long pid;

	/* raw clone3: glibc has no wrapper; without CLONE_VM this is a fork */
	saved = caps_raise(RESTORE_CAPS_CR);
	pid = syscall(SYS_clone3, &args, sizeof(args));
	caps_restore(saved); /* in the child too */
	if (pid < 0)
		return ckpt_err_errno(e, -errno, "pid %d: clone3 with set_tid %d%s", t->pid, t->pid,
				      errno == EEXIST ? " (the pid was taken meanwhile)" : "");
	if (pid == 0)
		task_main(ctx, t, self);
	if (pid != t->pid)
		return ckpt_err(e, -EIO, "pid %d: clone3 made pid %ld instead", t->pid, pid);
	return (pid_t)pid;
}

/*
 * A zombie child: forked with its pid, it exits at once with its saved wait
 * status (killed by its signal, with core dumps off: the "core dumped" bit
 * is lost). The parent waits until it is a zombie without reaping it
 * (WNOWAIT) and swallows its SIGCHLD (blocked here, so queued): the program
 * got that one before the dump.
 */
static int zombie_clone(const PstreeEntry *z, struct ckpt_error *e)
{
	pid_t want = z->pid;
	struct clone_args args = {
	    .exit_signal = SIGCHLD,
	    .set_tid = (uint64_t)(uintptr_t)&want,
	    .set_tid_size = 1,
	};
	int status = (int)z->zombie_status;
	struct timespec zero = {0, 0};
	siginfo_t si;
	sigset_t chld;
	uint64_t saved;
	long pid;

	saved = caps_raise(RESTORE_CAPS_CR);
	pid = syscall(SYS_clone3, &args, sizeof(args));
	caps_restore(saved); /* in the child too */
	if (pid < 0)
		return ckpt_err_errno(e, -errno, "zombie pid %d: clone3 with set_tid", z->pid);
	if (pid == 0) {
		if (z->zombie_comm)
			prctl(PR_SET_NAME, z->zombie_comm);
		/* its group and session (images.c zombie_group_ok): nothing to report
		 * from here, the parent checks where it landed */
		if (z->sid == z->pid)
			setsid();
		else if (z->pgid != getpgrp())
			setpgid(0, z->pgid);
		if (WIFSIGNALED(status)) {
			struct rlimit no_core = {0, 0};
			sigset_t one;

			setrlimit(RLIMIT_CORE, &no_core);
			signal(WTERMSIG(status), SIG_DFL);
			sigemptyset(&one);
			sigaddset(&one, WTERMSIG(status));
			sigprocmask(SIG_UNBLOCK, &one, NULL);
			kill(getpid(), WTERMSIG(status));
		}
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
	}
	if (pid != z->pid)
		return ckpt_err(e, -EIO, "zombie pid %d: clone3 made pid %ld instead", z->pid, pid);
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0)
		if (errno != EINTR)
			return ckpt_err_errno(e, -errno, "zombie pid %d: waitid(WNOWAIT)", z->pid);
	if (getpgid(pid) != z->pgid || getsid(pid) != z->sid)
		return ckpt_err(e, -EIO, "zombie pid %d: in group %d session %d, not %d and %d",
				z->pid, getpgid(pid), getsid(pid), z->pgid, z->sid);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigtimedwait(&chld, NULL, &zero);
	return 0;
}

static int zombies_create(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e)
{
	for (size_t i = 0; i < ctx->nzombies; i++)
		if (ctx->zombies[i]->ppid == t->pid && zombie_clone(ctx->zombies[i], e) < 0)
			return -1;
	return 0;
}

/*
 * The groups whose leader was gone at dump that t makes (plan.c): a helper
 * with the group's pid makes it and exits; a zombie until t reaps it, it
 * keeps the group there for the members to join (setpgid finds a group by
 * a zombie in it). Its SIGCHLD is swallowed like a zombie's.
 */
static int lost_groups_make(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e)
{
	for (size_t i = 0; i < ctx->plan.nlost_groups; i++) {
		const struct lost_group *g = &ctx->plan.lost_groups[i];
		PstreeEntry h = PSTREE_ENTRY__INIT;

		if (g->maker != t)
			continue;
		h.pid = h.pgid = g->pgid;
		h.sid = getsid(0);
		h.zombie_comm = (char *)"ckpt-pgrp";
		if (zombie_clone(&h, e) < 0)
			return ckpt_err_wrap(e, "process group %d (its leader gone)", g->pgid);
	}
	return 0;
}

/* Once every member joined: the helpers go, before the program runs. */
static int lost_groups_reap(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e)
{
	for (size_t i = 0; i < ctx->plan.nlost_groups; i++) {
		const struct lost_group *g = &ctx->plan.lost_groups[i];
		pid_t r;

		if (g->maker != t)
			continue;
		while ((r = waitpid(g->pgid, NULL, 0)) < 0 && errno == EINTR)
			;
		if (r != g->pgid)
			return ckpt_err_errno(e, -errno, "process group %d: reaping its helper",
					      g->pgid);
	}
	return 0;
}

/* ---- the setup phase -------------------------------------------------------------- */

static int restore_sigactions(const CoreEntry *c, struct ckpt_error *e)
{
	for (size_t i = 0; i < c->n_sigactions; i++) {
		const SigAction *sa = c->sigactions[i];
		struct kernel_sigaction k = {sa->handler, sa->flags, sa->restorer, sa->mask};

		if (sa->sig == SIGKILL || sa->sig == SIGSTOP)
			continue;
		/* all signals stay blocked: no handler can run in our memory */
		if (syscall(SYS_rt_sigaction, sa->sig, &k, NULL, sizeof(uint64_t)) < 0)
			return ckpt_err_errno(e, -errno, "rt_sigaction(%u)", sa->sig);
	}
	return 0;
}

static int restore_fs_state(const CoreEntry *c, struct ckpt_error *e)
{
	if (!(c->has_cwd_deleted && c->cwd_deleted) && chdir(c->cwd) < 0)
		return ckpt_err_errno(e, -errno, "chdir(%s)", c->cwd);
	/* after chdir: a cwd outside the new root stays reachable, as it was */
	if (strcmp(c->root, "/") && chroot(c->root) < 0)
		return ckpt_err_errno(e, -errno, "chroot(%s)", c->root);
	umask(c->umask);
	return 0;
}

static int map_gadget(struct rtask *t, struct ckpt_error *e)
{
	const unsigned char *code;
	unsigned char *g;
	size_t len;

	/* MAP_FIXED over our own reservation, inherited from P (gadget_choose) */
	g = mmap((void *)(uintptr_t)t->gadget, GADGET_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (g == MAP_FAILED)
		return ckpt_err_errno(e, -errno, "mapping the gadget at %#llx",
				      (unsigned long long)t->gadget);
	if ((uintptr_t)g != t->gadget)
		return ckpt_err(e, -EEXIST, "gadget mapped at %p instead of %#llx", (void *)g,
				(unsigned long long)t->gadget);
	/* syscall; then int3s: the task never runs past the syscall-exit stop;
	 * and the code of batches (rsys_batch), which ends in a loop */
	memset(g, 0xcc, RST_PAGE_SIZE);
	g[0] = 0x0f;
	g[1] = 0x05;
	code = rsys_batch_code(&len);
	memcpy(g + GADGET_BATCH_CODE, code, len);
	if (mprotect(g, RST_PAGE_SIZE, PROT_READ | PROT_EXEC) < 0)
		return ckpt_err_errno(e, -errno, "mprotect of the gadget");
	return 0;
}

/* By the task itself, its own file: whatever credentials come later. */
static int restore_coredump_filter(const CoreEntry *c, struct ckpt_error *e)
{
	char buf[16];
	int fd, n, r;

	if (!c->has_coredump_filter)
		return 0;
	fd = open("/proc/self/coredump_filter", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "opening /proc/self/coredump_filter");
	n = snprintf(buf, sizeof(buf), "%#x", c->coredump_filter);
	r = write(fd, buf, (size_t)n) == n ? 0 : -errno;
	close(fd);
	if (r < 0)
		return ckpt_err_errno(e, r, "writing coredump_filter %#x", c->coredump_filter);
	return 0;
}

static int task_setup(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e)
{
	const CoreEntry *c = t->core;
	int r;

	r = ckpt_fault_inject("restore-task-setup", e);
	/* before the fds: its fd is gone again before theirs are placed */
	if (r >= 0)
		r = restore_coredump_filter(c, e);
	/* every group exists now; before the fds: it needs P's terminal fd */
	if (r >= 0)
		r = tty_task_foreground(ctx, t, e);
	/* before the fds: that closes P's fd of a deleted cwd; a cwd shared
	 * with the parent (CLONE_FS) is the parent's to set */
	if (r >= 0 && c->has_cwd_deleted && c->cwd_deleted && !t->pst->has_fs_of)
		r = deleted_cwd_enter(ctx, c, e);
	if (r >= 0)
		r = task_install_fds(ctx, t, e);
	if (r >= 0 && !t->pst->has_fs_of)
		r = restore_fs_state(c, e);
	if (r >= 0 && prctl(PR_SET_NAME, c->comm) < 0)
		r = ckpt_err_errno(e, -errno, "prctl(PR_SET_NAME, %s)", c->comm);
	if (r >= 0)
		r = restore_sigactions(c, e);
	if (r >= 0)
		r = map_gadget(t, e);
	/*
	 * Every path of the images this task uses is opened. Its effective
	 * set stays as P's (empty for a non-root caller): the userfaultfd and
	 * the threads (clone3 with set_tid) raise what they need for the call,
	 * P's remote calls raise the task's (rtask_caps) around theirs.
	 */
	/* --lazy: made by the task itself (a userfaultfd serves the mm of its
	 * maker), sent to P and closed; P registers its areas in stage memory */
	if (r >= 0 && ctx->opts->lazy) {
		uint64_t saved = caps_raise(CAPS_BIT(CAP_SYS_PTRACE));

		r = lazy_task_uffd(ctx, t, e);
		caps_restore(saved);
	}
	/* last: the threads share everything set up above (fds, fs, sigactions) */
	if (r >= 0) {
		uint64_t saved = caps_raise(RESTORE_CAPS_CR);

		r = threads_create(t, e);
		/* (the threads start with the raised set: P empties it when it
		 * seizes them, threads_seize) */
		caps_restore(saved);
	}
	return r;
}

/* ---- main ------------------------------------------------------------------------------ */

bool task_in_phase(const struct rtask *t, int phase)
{
	switch (phase) {
	case PHASE_GROUPS:
		return t->group_leader;
	case PHASE_JOIN:
		/* (one forked into its group, its session leader's, is there) */
		return t->joins_group && t->pgid != t->fork_pgid;
	default:
		return true;
	}
}

static void task_main(struct restore_ctx *ctx, struct rtask *t, pid_t parent)
{
	struct ckpt_error e = {0};

	/* P's alone: ckptd waits for the end of --hold-fd, not for ours */
	restore_close_control_fds(ctx->opts);
	if (reset_inherited(parent, &e) < 0)
		task_fail(ctx, t, 0, &e);
	send_msg(ctx, t, MSG_HELLO, 0, NULL);
	if (t->setsid_leader && setsid() < 0) {
		ckpt_err_errno(&e, -errno, "setsid");
		task_fail(ctx, t, PHASE_FORKED, &e);
	}
	/* before forking: the children inherit the controlling terminal */
	if (tty_task_session(ctx, t, &e) < 0)
		task_fail(ctx, t, PHASE_FORKED, &e);
	/* and the audit ids, and the autogroup of the session */
	if (procstate_task_audit(t, &e) < 0 || procstate_task_autogroup(t, &e) < 0)
		task_fail(ctx, t, PHASE_FORKED, &e);
	/* the memory it shares with its children, for them to inherit by fork */
	if (cow_task_premap(ctx, t, &e) < 0)
		task_fail(ctx, t, PHASE_FORKED, &e);
	/* its descendants' images: each child gets its own subtree's only */
	if (arena_inherit(&ctx->arena, t->arena_hi, t->arena_sub_hi, false, &e) < 0)
		task_fail(ctx, t, PHASE_FORKED, &e);
	for (size_t i = 0; i < t->n_children; i++)
		if (cow_task_fork(ctx, t, i, true, &e) < 0 ||
		    fork_hand_down(ctx, t->children[i], true, &e) < 0 ||
		    task_clone(ctx, t->children[i], &e) < 0 ||
		    fork_hand_down(ctx, t->children[i], false, &e) < 0 ||
		    cow_task_fork(ctx, t, i, false, &e) < 0)
			task_fail(ctx, t, PHASE_FORKED, &e);
	if (zombies_create(ctx, t, &e) < 0 || lost_groups_make(ctx, t, &e) < 0)
		task_fail(ctx, t, PHASE_FORKED, &e);
	send_msg(ctx, t, MSG_PHASE, PHASE_FORKED, NULL);

	/* the rounds of groups: only the tasks that make or join one */
	if (task_in_phase(t, PHASE_GROUPS)) {
		wait_phase(ctx, PHASE_GROUPS);
		if (setpgid(0, 0) < 0) {
			ckpt_err_errno(&e, -errno, "setpgid(0, 0) to make group %d", t->pid);
			task_fail(ctx, t, PHASE_GROUPS, &e);
		}
		send_msg(ctx, t, MSG_PHASE, PHASE_GROUPS, NULL);
	}
	if (task_in_phase(t, PHASE_JOIN)) {
		wait_phase(ctx, PHASE_JOIN);
		if (setpgid(0, t->pgid) < 0) {
			ckpt_err_errno(&e, -errno, "setpgid(0, %d)", t->pgid);
			task_fail(ctx, t, PHASE_JOIN, &e);
		}
		send_msg(ctx, t, MSG_PHASE, PHASE_JOIN, NULL);
	}

	wait_phase(ctx, PHASE_SETUP);
	/* every task joined its group */
	if (lost_groups_reap(ctx, t, &e) < 0 || task_setup(ctx, t, &e) < 0)
		task_fail(ctx, t, PHASE_SETUP, &e);
	send_msg(ctx, t, MSG_PHASE, PHASE_SETUP, NULL);

	/* P seizes us here; from now on it drives everything from outside. */
	for (;;)
		wait_phase(ctx, UINT32_MAX);
}
