/* SPDX-License-Identifier: MIT */
/*
 * The other threads of a multi-threaded task (the main thread, tid == pid,
 * is the task itself and is restored as before).
 *
 * In the task (setup phase, after the gadget is mapped), each thread is made
 * with a raw clone3(CLONE_THREAD..., set_tid) on a small stack of its own.
 * The new thread runs only raw syscalls (it shares the creating thread's fs
 * base, so no libc call that touches TLS is allowed): pause() in a loop,
 * with every signal blocked (the mask is inherited). Its rseq registration,
 * sigaltstack, robust list and tid address start empty: the kernel does not
 * hand them to a CLONE_VM child.
 *
 * P then seizes every thread and opens a remote-syscall session in each,
 * through the same gadget (the threads share the address space, so one
 * memory restore serves them all). Per-thread state is set by remote calls
 * made in that thread: credentials (its own: ThreadCore.creds), rseq,
 * sigaltstack, robust list, tid address and its own pending signals (and in
 * seccomp.c, procstate.c: seccomp filters, personality, timer slack,
 * parent-death signal). At resume, every other thread gets
 * its final registers, xstate and mask in its syscall-exit stop before the
 * main thread unmaps the gadget with the last remote call of the task.
 *
 * The struct rtask helpers (rcall, creds_queue_task...) work on t->rsys;
 * for a thread, its session is swapped into t->rsys for the duration.
 */
#define LOG_PREFIX "threads: "

#include <errno.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "fault.h"
#include "log.h"
#include "restore.h"

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

/* Stack of a new thread: it only ever runs a syscall loop. */
#define THREAD_STACK_SIZE (16ULL << 10)

/*
 * clone3 in assembly: the child returns from the syscall on the new stack
 * with rax == 0 and must not return into C code (whose frame lives on the
 * creating thread's stack), so it loops on pause() right here.
 */
static long clone3_paused_thread(struct clone_args *args)
{
	long ret;

	asm volatile("syscall\n\t"
		     "test %%rax, %%rax\n\t"
		     "jnz 2f\n\t"
		     "1:\n\t"
		     "mov %[pause], %%eax\n\t"
		     "syscall\n\t"
		     "jmp 1b\n\t"
		     "2:\n\t"
		     : "=a"(ret)
		     : "0"((long)__NR_clone3), "D"(args),
		       "S"(sizeof(*args)), [pause] "i"(__NR_pause)
		     : "rcx", "r11", "memory");
	return ret;
}

int threads_create(struct rtask *t, struct ckpt_error *e)
{
	for (size_t i = 0; i < t->n_threads; i++) {
		pid_t want = t->threads[i].tid;
		struct clone_args args = {
		    .flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
			     CLONE_SYSVSEM,
		    .set_tid = (uint64_t)(uintptr_t)&want,
		    .set_tid_size = 1,
		};
		void *stack;
		long tid;

		/* freed with the rest of the restorer's memory at stage memory */
		stack = mmap(NULL, THREAD_STACK_SIZE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (stack == MAP_FAILED)
			return ckpt_err_errno(e, -errno, "thread %d: mapping its stack", want);
		args.stack = (uint64_t)(uintptr_t)stack;
		args.stack_size = THREAD_STACK_SIZE;
		tid = clone3_paused_thread(&args);
		if (tid < 0)
			return ckpt_err_errno(e, (int)tid, "thread %d: clone3 with set_tid%s", want,
					      tid == -EEXIST ? " (the tid was taken meanwhile)"
							     : "");
		if (tid != want)
			return ckpt_err(e, -EIO, "thread %d: clone3 made tid %ld instead", want,
					tid);
	}
	return 0;
}

/* The threads' seizes begun, up to the first failure: each ended (waited for). */
static int seize_end_all(struct restore_ctx *ctx, struct rtask *t, size_t begun)
{
	struct ckpt_error tmp = {0};
	int r = 0;

	for (size_t i = 0; i < begun; i++) {
		struct rthread *th = &t->threads[i];
		/* made by us, in its pause() loop: no /proc read of its state */
		int r2 = ptrace_seize_end(th->tid, 'S', NULL, r < 0 ? &tmp : &ctx->err);

		if (r2 >= 0)
			th->seized = true;
		else if (r >= 0)
			r = ckpt_err_wrap(&ctx->err, "pid %d: thread %d", t->pid, th->tid);
	}
	return r;
}

int threads_seize(struct restore_ctx *ctx, struct rtask *t)
{
	size_t begun = 0;
	int r = 0;

	/* every thread seized and interrupted, then each stop waited for: they
	 * trap while P goes on (ptrace_seize_begin) */
	for (; r >= 0 && begun < t->n_threads; begun++) {
		r = ptrace_seize_begin(t->threads[begun].tid, &ctx->err);
		if (r < 0)
			r = ckpt_err_wrap(&ctx->err, "pid %d: thread %d", t->pid,
					  t->threads[begun].tid);
	}
	if (r < 0) {
		seize_end_all(ctx, t, begun - 1);
		return r;
	}
	r = seize_end_all(ctx, t, begun);
	if (r < 0)
		return r;
	for (size_t i = 0; i < t->n_threads; i++) {
		struct rthread *th = &t->threads[i];

		r = rsys_init(&th->rsys, th->tid, t->gadget, &ctx->err);
		if (r < 0)
			return ckpt_err_wrap(&ctx->err, "pid %d: thread %d", t->pid, th->tid);
		th->rsys.scratch = t->gadget + RST_PAGE_SIZE;
		th->rsys.scratch_len = GADGET_SCRATCH_SIZE;
		rsys_batch_at(&th->rsys, t->gadget + GADGET_BATCH_CODE, t->gadget + GADGET_TABLE);
		/* the effective set it was made with (clone3 with set_tid needs
		 * it in the task): emptied, each remote call raises its own */
		threads_swap_rsys(t, th);
		r = rtask_caps(ctx, t, false);
		threads_swap_rsys(t, th);
		if (r < 0)
			return ckpt_err_wrap(&ctx->err, "pid %d: thread %d", t->pid, th->tid);
	}
	return 0;
}

void threads_swap_rsys(struct rtask *t, struct rthread *th)
{
	struct rsys tmp = t->rsys;
	struct rqueue *q = t->rq;

	t->rsys = th->rsys;
	th->rsys = tmp;
	t->rq = th->rq;
	th->rq = q;
}

/* The thread's batches and scratch in lane k of the gadget, or (k < 0) in
 * the gadget's own table and scratch page, which the threads take turns at. */
static void lane_use(const struct rtask *t, struct rthread *th, int k)
{
	uint64_t lane = t->gadget + GADGET_LANES + (uint64_t)k * GADGET_LANE_SIZE;

	if (k < 0) {
		th->rsys.scratch = t->gadget + RST_PAGE_SIZE;
		th->rsys.batch_table = t->gadget + GADGET_TABLE;
		th->rsys.batch_room = 0;
	} else {
		th->rsys.scratch = lane + RST_PAGE_SIZE;
		th->rsys.batch_table = lane;
		th->rsys.batch_room = RSYS_LANE_CALLS;
	}
	th->rsys.scratch_len = GADGET_SCRATCH_SIZE;
}

/*
 * For each other thread of t, its session swapped into t->rsys: queue()
 * queues its calls, made as one batch, then after() (if any) makes calls
 * right away. The batches of RST_LANES threads run at the same time, each
 * thread with a lane of the gadget as its table and scratch: P starts them
 * all, then stops each, then finishes each, so that the threads' runs (and
 * the wake-ups across the two CPUs) overlap instead of taking turns with P.
 * After a failure the batches started are still finished, and no thread
 * after it is started.
 */
int threads_batch_each(struct restore_ctx *ctx, struct rtask *t, thread_step queue,
		       thread_step after, pid_t *ret_failed)
{
	struct ckpt_error tmp = {0};
	pid_t failed = 0;
	int r = 0;

	for (size_t base = 0; r >= 0 && base < t->n_threads; base += RST_LANES) {
		size_t n = t->n_threads - base < RST_LANES ? t->n_threads - base : RST_LANES;
		bool running[RST_LANES] = {false};
		size_t started = 0;

		for (size_t k = 0; r >= 0 && k < n; k++) {
			struct rthread *th = &t->threads[base + k];

			lane_use(t, th, (int)k);
			threads_swap_rsys(t, th);
			r = queue(ctx, t, th);
			/* the third thread's batch fails, those around it run on */
			if (r >= 0 && base + k == 2 && ckpt_fault("rqueue-thread-einval"))
				r = rqueue(t, &ctx->err, __NR_prctl, RARGS(PR_SET_PDEATHSIG, 1000),
					   "prctl(PR_SET_PDEATHSIG, 1000)");
			r = r < 0 ? rqueue_end(t, &ctx->err, r) : rflush_start(t, &ctx->err);
			threads_swap_rsys(t, th);
			running[k] = r > 0;
			started = k + 1;
			if (r < 0)
				failed = th->tid;
		}
		for (size_t k = 0; k < started; k++) {
			struct rthread *th = &t->threads[base + k];
			int r2 = 0;

			threads_swap_rsys(t, th);
			if (running[k])
				r2 = rflush_stop(t, r < 0 ? &tmp : &ctx->err);
			threads_swap_rsys(t, th);
			if (r2 < 0 && r >= 0) {
				r = r2;
				failed = th->tid;
			}
		}
		for (size_t k = 0; k < started; k++) {
			struct rthread *th = &t->threads[base + k];
			int r2 = 0;

			threads_swap_rsys(t, th);
			if (running[k])
				r2 = rflush(t, r < 0 ? &tmp : &ctx->err);
			if (r2 >= 0 && r >= 0 && after)
				r2 = after(ctx, t, th);
			threads_swap_rsys(t, th);
			lane_use(t, th, -1);
			if (r2 < 0 && r >= 0) {
				r = r2;
				failed = th->tid;
			}
		}
	}
	if (ret_failed)
		*ret_failed = failed;
	return r < 0 ? r : 0;
}

/* credentials belong to each thread, not to the process */
static int thread_creds(struct restore_ctx *ctx, struct rtask *t, struct rthread *th)
{
	return creds_queue_thread(ctx, t, th->core->creds ?: t->core->creds);
}

int threads_creds(struct restore_ctx *ctx, struct rtask *t)
{
	pid_t failed;
	int r = threads_batch_each(ctx, t, thread_creds, NULL, &failed);

	return r < 0 ? ckpt_err_wrap(&ctx->err, "thread %d", failed) : 0;
}

/*
 * sigaltstack, robust list and name of the thread whose session is
 * t->rsys: queued (the stack and the name in scratch slots of their own);
 * thread_tid_address then makes the tid address a call of its own.
 */
#define SCRATCH_SS 0
#define SCRATCH_NAME 64

static int thread_misc(struct restore_ctx *ctx, struct rtask *t, const ThreadCore *tc)
{
	struct ckpt_error *e = &ctx->err;
	int r = 0;

	if (tc->has_ss_flags && !(tc->ss_flags & SS_DISABLE)) {
		stack_t ss = {
		    .ss_sp = (void *)(uintptr_t)tc->ss_sp,
		    /* SS_ONSTACK is a state, not a flag one can set */
		    .ss_flags = (int)(tc->ss_flags & SS_AUTODISARM),
		    .ss_size = tc->ss_size,
		};

		_Static_assert(sizeof(ss) <= SCRATCH_NAME, "stack_t fits its slot");
		r = rqueue_write(t, e, t->rsys.scratch + SCRATCH_SS, &ss, sizeof(ss));
		if (r >= 0)
			r = rqueue(t, e, __NR_sigaltstack, RARGS(t->rsys.scratch + SCRATCH_SS, 0),
				   "thread %d: sigaltstack(%#" PRIx64 ", %" PRIu64 " bytes)",
				   tc->tid, tc->ss_sp, tc->ss_size);
	}
	if (r >= 0 && tc->has_robust_list && tc->robust_list)
		r = rqueue(t, e, __NR_set_robust_list, RARGS(tc->robust_list, tc->robust_list_len),
			   "thread %d: set_robust_list(%#" PRIx64 ")", tc->tid, tc->robust_list);
	if (r >= 0 && tc->comm && tc->comm[0]) {
		char name[16] = {0};

		strncpy(name, tc->comm, sizeof(name) - 1);
		r = rqueue_write(t, e, t->rsys.scratch + SCRATCH_NAME, name, sizeof(name));
		if (r >= 0)
			r = rqueue(t, e, __NR_prctl,
				   RARGS(PR_SET_NAME, t->rsys.scratch + SCRATCH_NAME),
				   "thread %d: prctl(PR_SET_NAME, %s)", tc->tid, name);
	}
	return r;
}

/* Always made, also with 0, and after the queued calls, alone: every
 * thread then sits in a syscall-exit stop where its final registers can be
 * set (a pending signal queued after it is such a call too). */
static int thread_tid_address(struct restore_ctx *ctx, struct rtask *t, const ThreadCore *tc)
{
	return rcall(t, &ctx->err, __NR_set_tid_address, RARGS(tc->clear_child_tid), NULL,
		     "thread %d: set_tid_address(%#" PRIx64 ")", tc->tid,
		     tc->has_clear_child_tid ? tc->clear_child_tid : 0);
}

static int thread_state_queue(struct restore_ctx *ctx, struct rtask *t, struct rthread *th)
{
	const ThreadCore *tc = th->core;
	int r = 0;

	if (tc->rseq)
		r = rqueue(t, &ctx->err, __NR_rseq,
			   RARGS(tc->rseq->abi_pointer, tc->rseq->abi_size, 0, tc->rseq->signature),
			   "thread %d: rseq registration of %#" PRIx64, th->tid,
			   tc->rseq->abi_pointer);
	return r < 0 ? r : thread_misc(ctx, t, tc);
}

static int thread_state_after(struct restore_ctx *ctx, struct rtask *t, struct rthread *th)
{
	const ThreadCore *tc = th->core;
	int r = thread_tid_address(ctx, t, tc);

	for (size_t k = 0; r >= 0 && k < tc->n_pending; k++)
		r = signals_queue_thread(ctx, t, th->tid, &tc->pending[k]);
	return r;
}

/* The main thread's calls are queued, its set_tid_address last: its
 * syscall-exit stop comes with stage resume's last call (the gadget's
 * munmap), so the queue runs as the task's batch of the stage. */
int threads_queue_state(struct restore_ctx *ctx, struct rtask *t)
{
	const ThreadCore *tc = t->thread;
	int r = threads_batch_each(ctx, t, thread_state_queue, thread_state_after, NULL);

	if (r >= 0)
		r = thread_misc(ctx, t, tc);
	if (r >= 0)
		r = rqueue(t, &ctx->err, __NR_set_tid_address, RARGS(tc->clear_child_tid),
			   "thread %d: set_tid_address(%#" PRIx64 ")", tc->tid,
			   tc->has_clear_child_tid ? tc->clear_child_tid : 0);
	return r;
}

int threads_resume_prepare(struct restore_ctx *ctx, struct rtask *t)
{
	for (size_t i = 0; i < t->n_threads; i++) {
		struct rthread *th = &t->threads[i];
		struct user_regs_struct regs;
		int r;

		/* in the syscall-exit stop of its last remote call (set_tid_address) */
		regs_from_image(th->core->regs, &regs);
		r = regs_prepare_resume(th->tid, &regs, th->core->blocked, false, &ctx->err);
		if (r >= 0)
			r = ptrace_set_regs(th->tid, &regs, &ctx->err);
		if (r >= 0)
			r = ptrace_set_xstate(th->tid, th->core->xstate.data, th->core->xstate.len,
					      &ctx->err);
		if (r >= 0)
			r = ptrace_set_sigmask(th->tid, th->core->blocked, &ctx->err);
		if (r >= 0)
			r = modes_thread_sud(th->tid, th->core, &ctx->err);
		if (r < 0)
			return ckpt_err_wrap(&ctx->err, "pid %d: thread %d", t->pid, th->tid);
	}
	return 0;
}

int threads_detach(struct restore_ctx *ctx, struct rtask *t)
{
	for (size_t i = 0; i < t->n_threads; i++) {
		struct rthread *th = &t->threads[i];
		int r;

		if (!th->seized)
			continue;
		r = ptrace_detach(th->tid, 0, &ctx->err);
		if (r < 0)
			return r;
		th->seized = false;
	}
	return 0;
}
