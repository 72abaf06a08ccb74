/* SPDX-License-Identifier: MIT */
/*
 * The restore stages: one list, in order, each with why it sits where it
 * does. A stage either finishes completely or fails; on failure every task
 * created so far is killed and reaped (tree_rollback) and the error names
 * the stage. Each stage can be forced to fail with CKPT_FAULT=restore-<name>.
 */
#define LOG_PREFIX "restore: "

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "cleanup.h"
#include "clock.h"
#include "fault.h"
#include "log.h"
#include "restore.h"
#include "restore_check.h"
#include "restorer_io.h"

static int stage_verify(struct restore_ctx *ctx)
{
	int r = images_load(ctx);

	if (r < 0)
		return r;
	for (size_t i = 0; i < ctx->ntasks; i++)
		ctx->bytes_total += ctx->tasks[i].pages_bytes;
	r = locks_verify(ctx);
	if (r < 0 || ctx->opts->images_only)
		return r;
	return checks_machine(ctx);
}

static int stage_plan(struct restore_ctx *ctx)
{
	return plan_build(ctx);
}

static int stage_pids(struct restore_ctx *ctx)
{
	/* first: before anything else of the restorer can take those addresses */
	int r = cow_plan_reserve(ctx);

	if (r >= 0)
		r = plan_check_stops(ctx);

	if (r >= 0)
		r = procstate_check_audit(ctx);
	if (r >= 0)
		r = keyring_check(ctx);
	if (r >= 0)
		r = checks_pids_free(ctx);
	/* last: the tree's keyring, the first thing made for it */
	if (r >= 0)
		r = keyring_enter(ctx);
	return r;
}

static int stage_clocks(struct restore_ctx *ctx)
{
	return clocks_enter(ctx);
}

static int stage_files(struct restore_ctx *ctx)
{
	return files_open_all(ctx);
}

static int stage_tree(struct restore_ctx *ctx)
{
	return tree_create(ctx);
}

static int stage_fds(struct restore_ctx *ctx)
{
	return tree_setup_tasks(ctx);
}

static int stage_locks(struct restore_ctx *ctx)
{
	_cleanup_free_ bool *taken = calloc(ctx->nfiles + 1, sizeof(*taken));

	if (!taken)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < ctx->ntasks; i++) {
		int r = locks_restore_task(ctx, &ctx->tasks[i], taken);

		if (r < 0)
			return r;
	}
	return 0;
}

static int stage_cgroups(struct restore_ctx *ctx)
{
	return cgroups_restore(ctx);
}

static int stage_memory(struct restore_ctx *ctx)
{
	int r = mem_seize_all(ctx);

	/* --lazy: each task's userfaultfd, to register its lazy areas with */
	if (r >= 0 && ctx->opts->lazy)
		r = lazy_receive_all(ctx);
	if (r >= 0)
		r = mem_restore_all(ctx);
	return r;
}

static int stage_pager(struct restore_ctx *ctx)
{
	return pager_start(ctx);
}

static int stage_seccomp(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		int r = seccomp_restore_task(ctx, &ctx->tasks[i]);

		if (r < 0)
			return r;
	}
	return 0;
}

/* the other threads' batches first, then the main thread's */
static int creds_task(struct restore_ctx *ctx, struct rtask *t)
{
	int r = threads_creds(ctx, t);

	return r < 0 ? r : creds_queue_task(ctx, t);
}

static int stage_creds(struct restore_ctx *ctx)
{
	static const task_step steps[] = {creds_task};

	return tasks_batch_each(ctx, steps, ARRAY_SIZE(steps), NULL);
}

static int stage_sigio(struct restore_ctx *ctx)
{
	return sigio_restore(ctx);
}

static int stage_signals(struct restore_ctx *ctx)
{
	static const task_step steps[] = {signals_queue_task};

	return tasks_batch_each(ctx, steps, ARRAY_SIZE(steps), NULL);
}

static int stage_procstate(struct restore_ctx *ctx)
{
	static const task_step steps[] = {procstate_queue_task};

	return tasks_batch_each(ctx, steps, ARRAY_SIZE(steps), procstate_after_task);
}

/*
 * The commit point. Every task is complete and still stopped; the last
 * cancel check (SIGTERM, the program that reports our outcome gone,
 * ckptd's client gone) passed, so somebody will be told the tree runs.
 * The commit record (--commit-fd, lib/restorer_io.h) says so before the
 * first task runs: whoever outlives us (ckptctl, ckptd's worker, ckptd,
 * ckptd's client) reads the outcome there if we die without printing it.
 * From here on a cancel comes too late and nothing is rolled back, but a
 * failure to let the tasks go, which rewrites the record.
 */
static int restore_commit(struct restore_ctx *ctx)
{
	const struct restore_opts *o = ctx->opts;
	struct restore_commit c = {.root_pid = ctx->root ? ctx->root->pid : 0,
				   .ntasks = (unsigned)ctx->ntasks,
				   .new_pidns = ctx->in_ns_init};
	int r = restore_check_cancel(ctx);

	for (size_t i = 0; r >= 0 && i < o->n_commit_fds; i++) {
		r = restore_commit_write(o->commit_fds[i], &c);
		if (r < 0) {
			ckpt_err_errno(&ctx->err, r, "writing the commit record (--commit-fd %d)",
				       o->commit_fds[i]);
			while (i-- > 0)
				restore_commit_write(o->commit_fds[i], NULL);
		}
	}
	if (r < 0)
		return r;
	ctx->committed = true;
	/* the init of a new pid namespace no longer dies with the restorer
	 * outside: the namespace it keeps is the committed tree's (pidns.c) */
	if (ctx->in_ns_init)
		prctl(PR_SET_PDEATHSIG, 0);
	/* a pause only (tests kill the restorer or its parent here) */
	ckpt_fault_inject("restorer-committed", NULL);
	return 0;
}

static int stage_resume(struct restore_ctx *ctx)
{
	static const task_step steps[] = {resume_queue_task};
	int r;

	r = resume_stopped_children(ctx);
	if (r < 0)
		return r;
	/* (a task finished with its stopped children is skipped) */
	r = tasks_batch_each(ctx, steps, ARRAY_SIZE(steps), resume_finish_task);
	if (r < 0)
		return r;
	r = restore_commit(ctx);
	if (r < 0)
		return r;
	return resume_all(ctx);
}

/*
 * Every stage runs with the effective set the restorer started with: empty
 * for a non-root caller (main.c), whose capabilities stay in the permitted
 * set and are raised around the few calls that need them, those on the
 * tree's own tasks included (/proc of a task: proc_open_tracee; their
 * remote calls: rtask_caps).
 */
struct stage {
	const char *name;
	int (*run)(struct restore_ctx *ctx);
	/* why the stage exists and why it sits here (documentation only) */
	const char *why;
};

static const struct stage stages[] = {
    {"verify", stage_verify,
     "Images are never trusted: everything is read and every field checked (and the "
     "images checked against this CPU, kernel and file system) before anything is created, "
     "so a bad image gives an error and never a half-restored tree."},
    {"plan", stage_plan,
     "Restore order is data: the dependency graph of files, tasks, groups and fds is sorted "
     "once (cycles rejected); later stages follow that order."},
    {"pids", stage_pids,
     "clone3(set_tid) can only take free pids; find a pid in use now, with a clear message, "
     "rather than half way through forking. First, the address ranges of memory shared "
     "copy-on-write between parents and children are reserved in the restorer, before "
     "anything it allocates later can land there (cow.c). Last, the tree's session keyring "
     "(keyring.c): every task inherits the restorer's, chosen before the first fork."},
    {"clocks", stage_clocks,
     "--continue-clocks: the time namespace the tasks will enter gets its offsets before any "
     "task exists (they are fixed once one enters it), and absolute timerfd deadlines are "
     "moved onto P's clock before stage files arms them."},
    {"files", stage_files,
     "Open file descriptions are created once, by the restorer itself, before any fork, so "
     "that every task inherits the same description (shared offset and flags)."},
    {"tree", stage_tree,
     "Tasks are forked with their pids, parents before children; sessions are made before "
     "the children that inherit them, then groups in two rounds (leaders, then members)."},
    {"fds", stage_fds,
     "Each task installs its fds at their numbers and closes the rest, and sets what only "
     "the task itself can set (cwd, root, umask, name, sigactions); it maps "
     "the gadget page for the remote syscalls of the next stages."},
    {"cgroups", stage_cgroups,
     "Every task and thread exists now (threads are made in stage fds) and none has run the "
     "program yet: each goes to its saved cgroups before memory, so that its pages are "
     "charged to its own memory cgroup, and before procstate, because joining a cpuset "
     "resets the CPU affinity procstate sets. Unprivileged: the moves are the caller's "
     "own (a cgroup file the caller may not write is an error)."},
    {"memory", stage_memory,
     "The restorer's memory in each task is replaced by the saved address space, driven "
     "from outside with remote syscalls, before creds: the task still holds the restorer's "
     "permitted set, raised around the calls that need it (PR_SET_MM_MAP, mlock)."},
    {"pager", stage_pager,
     "--lazy: the pager starts as soon as every lazy area is registered (stage memory) and "
     "before any later remote call could touch a missing page (rseq registration writes into "
     "the task's memory): a fault of the restorer's own calls is served like the program's. "
     "Forked by P, not by a task, so no task of the tree is its parent. Without --lazy it "
     "does nothing."},
    {"locks", stage_locks,
     "A POSIX lock belongs to a process and any close of its file drops it: the tasks take "
     "their file locks themselves once stage memory has closed the restorer's copies of "
     "their files, and before creds (a lease needs the file's owner or CAP_LEASE)."},
    {"seccomp", stage_seccomp,
     "Seccomp filters need CAP_SYS_ADMIN or no_new_privs in the installing thread: they go "
     "in before creds takes the restorer's privileges away. Every thread is then traced "
     "with PTRACE_O_SUSPEND_SECCOMP, so no later remote call meets the filters."},
    {"creds", stage_creds,
     "Resource limits and credentials last among the privileged steps: after them the task "
     "may no longer be allowed to map, open or set what the earlier stages needed."},
    {"sigio", stage_sigio,
     "Signal-driven I/O of the open file descriptions (O_ASYNC, owner, F_SETSIG) by a task "
     "holding each: after creds, because F_SETOWN records the caller's credentials, which "
     "the kernel checks against the owner's each time it sends a signal."},
    {"signals", stage_signals,
     "rseq, pending signals and timers once the memory they point into is in place; every "
     "signal stays blocked until the saved mask is set at resume (a timer that expires "
     "meanwhile leaves its signal pending)."},
    {"procstate", stage_procstate,
     "Personality (after memory: READ_IMPLIES_EXEC would change the mappings), timer slack, "
     "the LDT (before resume loads segment registers that may select its entries), "
     "parent-death signals and child subreaper (after creds, which clear the parent-death "
     "signal), per-thread modes (TSC, CPUID, speculation controls: after seccomp, whose "
     "filters may force those off), then scheduling policy, nice and CPU affinity last, so that a "
     "SCHED_IDLE or "
     "nice 19 thread does not slow down the restore."},
    {"resume", stage_resume,
     "Only when every task is complete: the gadget is unmapped, saved registers, xstate and "
     "signal mask set, and syscall user dispatch after the last remote call (it would turn "
     "them into SIGSYS), then all tasks are detached together."},
};

static int run_stage(struct restore_ctx *ctx, const struct stage *s)
{
	char step[64];
	double t0 = ckpt_monotonic_seconds();
	int r;

	ctx->stage = s->name;
	snprintf(step, sizeof(step), "restore-%s", s->name);
	r = restore_check_cancel(ctx);
	if (r == 0)
		r = ckpt_fault_inject(step, &ctx->err);
	if (r == 0) {
		restore_progress(ctx);
		r = s->run(ctx);
	}
	if (r < 0) {
		if (!ctx->err.code)
			ckpt_err(&ctx->err, r, "failed without details");
		ckpt_err_wrap(&ctx->err, "stage %s", s->name);
		return r;
	}
	pr_info("stage %-8s done in %.3f s", s->name, ckpt_monotonic_seconds() - t0);
	return 0;
}

int restore_check_images(const char *dir, bool pages_sums_known, struct ckpt_error *e)
{
	struct restore_opts opts = {RESTORE_OPTS_NO_FDS, .dir = dir, .plan_only = true,
				    .images_only = true, .pages_sums_known = pages_sums_known};
	struct restore_ctx ctx;
	int r;

	restore_ctx_init(&ctx, &opts);
	r = restore_run(&ctx);
	if (r < 0)
		*e = ctx.err;
	restore_ctx_free(&ctx);
	return r;
}

int restore_run(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ARRAY_SIZE(stages); i++) {
		int r = run_stage(ctx, &stages[i]);

		if (r < 0) {
			pr_info("%s; rolling back", ctx->err.msg);
			tree_rollback(ctx);
			restore_undo_run(ctx);
			/* (the tasks could not all be let go after the commit) */
			for (size_t k = 0; ctx->committed && k < ctx->opts->n_commit_fds; k++)
				restore_commit_write(ctx->opts->commit_fds[k], NULL);
			return r;
		}
		if (ctx->opts->plan_only && !strcmp(stages[i].name, "plan"))
			return 0;
	}
	return 0;
}
