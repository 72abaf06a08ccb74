/* SPDX-License-Identifier: MIT */
/*
 * Stages signals and resume. rseq and pending signals once the memory they
 * refer to is in place; the task queues its pending signals to itself
 * (rt_sigqueueinfo from the task itself accepts any si_code), while every
 * signal is blocked. At resume, the gadget is unmapped by the last remote
 * call, which leaves the task in its syscall-exit stop; the saved registers
 * (interrupted syscalls fixed up for a new task), xstate and signal mask are
 * set there, and the task returns to user space straight into the restored
 * program when it is detached. rsys_fini() is never called: it would put
 * back the restorer's registers.
 */
#define LOG_PREFIX "signals: "

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "restore.h"

int signals_queue_thread(struct restore_ctx *ctx, struct rtask *t, pid_t tid,
			 const ProtobufCBinaryData *si)
{
	const siginfo_t *info = (const siginfo_t *)si->data;
	int r;

	r = remote_write(t->pid, t->rsys.scratch, si->data, si->len, &ctx->err);
	if (r < 0)
		return r;
	return rcall(t, &ctx->err, __NR_rt_tgsigqueueinfo,
		     RARGS(t->pid, tid, info->si_signo, t->rsys.scratch), NULL,
		     "thread %d: rt_tgsigqueueinfo(signal %d, code %d)", tid, info->si_signo,
		     info->si_code);
}

static int queue_one(struct restore_ctx *ctx, struct rtask *t, const ProtobufCBinaryData *si,
		     bool shared)
{
	const siginfo_t *info = (const siginfo_t *)si->data;
	int r;

	r = remote_write(t->pid, t->rsys.scratch, si->data, si->len, &ctx->err);
	if (r < 0)
		return r;
	if (shared)
		return rcall(t, &ctx->err, __NR_rt_sigqueueinfo,
			     RARGS(t->pid, info->si_signo, t->rsys.scratch), NULL,
			     "rt_sigqueueinfo(signal %d, code %d)", info->si_signo, info->si_code);
	return rcall(t, &ctx->err, __NR_rt_tgsigqueueinfo,
		     RARGS(t->pid, t->pid, info->si_signo, t->rsys.scratch), NULL,
		     "rt_tgsigqueueinfo(signal %d, code %d)", info->si_signo, info->si_code);
}

int signals_queue_task(struct restore_ctx *ctx, struct rtask *t)
{
	const ThreadCore *th = t->thread;
	int r = 0;

	/* queued: made before the first call made right away, or in the
	 * stage's batch (most tasks have nothing else to do here) */
	if (th->rseq)
		r = rqueue(t, &ctx->err, __NR_rseq,
			   RARGS(th->rseq->abi_pointer, th->rseq->abi_size, 0, th->rseq->signature),
			   "rseq registration of %#" PRIx64, th->rseq->abi_pointer);
	/* all signals are blocked (remote syscall session): nothing is delivered */
	for (size_t i = 0; r >= 0 && i < t->core->n_shared_pending; i++)
		r = queue_one(ctx, t, &t->core->shared_pending[i], true);
	for (size_t i = 0; r >= 0 && i < th->n_pending; i++)
		r = queue_one(ctx, t, &th->pending[i], false);
	if (r >= 0)
		r = timers_restore_task(ctx, t);
	if (r >= 0)
		r = threads_queue_state(ctx, t);
	return r;
}

void regs_from_image(const UserRegs *s, struct user_regs_struct *d)
{
	*d = (struct user_regs_struct){
	    .r15 = s->r15,
	    .r14 = s->r14,
	    .r13 = s->r13,
	    .r12 = s->r12,
	    .rbp = s->rbp,
	    .rbx = s->rbx,
	    .r11 = s->r11,
	    .r10 = s->r10,
	    .r9 = s->r9,
	    .r8 = s->r8,
	    .rax = s->rax,
	    .rcx = s->rcx,
	    .rdx = s->rdx,
	    .rsi = s->rsi,
	    .rdi = s->rdi,
	    .orig_rax = s->orig_rax,
	    .rip = s->rip,
	    .cs = s->cs,
	    .eflags = s->eflags,
	    .rsp = s->rsp,
	    .ss = s->ss,
	    .fs_base = s->fs_base,
	    .gs_base = s->gs_base,
	    .ds = s->ds,
	    .es = s->es,
	    .fs = s->fs,
	    .gs = s->gs,
	};
}

/* the restorer's safety signal is replaced by the saved one (procstate.c) */
int resume_queue_task(struct restore_ctx *ctx, struct rtask *t)
{
	if (t->finished)
		return 0;
	return rqueue(t, &ctx->err, __NR_prctl,
		      RARGS(PR_SET_PDEATHSIG, procstate_pdeathsig(ctx, t)),
		      "prctl(PR_SET_PDEATHSIG)");
}

/* Once resume_queue_task's calls are made. */
int resume_finish_task(struct restore_ctx *ctx, struct rtask *t)
{
	const ThreadCore *th = t->thread;
	struct user_regs_struct regs;
	int r;

	if (t->finished)
		return 0;
	/* the other threads are done with the gadget: their final state first */
	r = threads_resume_prepare(ctx, t);
	if (r < 0)
		return r;
	/* the last remote call: the task stays in its syscall-exit stop */
	r = rcall(t, &ctx->err, __NR_munmap, RARGS(t->gadget, GADGET_SIZE), NULL,
		  "munmap of the gadget at %#" PRIx64, t->gadget);
	if (r < 0)
		return r;
	regs_from_image(th->regs, &regs);
	/* the pending signals are queued already (signals_restore) */
	r = regs_prepare_resume(t->pid, &regs, th->blocked, false, &ctx->err);
	if (r >= 0)
		r = ptrace_set_regs(t->pid, &regs, &ctx->err);
	if (r >= 0)
		r = ptrace_set_xstate(t->pid, th->xstate.data, th->xstate.len, &ctx->err);
	if (r >= 0)
		r = ptrace_set_sigmask(t->pid, th->blocked, &ctx->err);
	if (r >= 0)
		r = modes_thread_sud(t->pid, th, &ctx->err);
	if (r >= 0)
		t->finished = true;
	return r;
}

/* Let t go: detached (with its stop signal queued if saved as stopped), main thread first. */
static int detach_task(struct restore_ctx *ctx, struct rtask *t)
{
	int r = ptrace_detach(t->pid, plan_stop_signal(t), &ctx->err);

	if (r < 0)
		return r;
	t->seized = false;
	return threads_detach(ctx, t);
}

int resume_all(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];
		int r;

		/* a stopped child went first (resume_stopped_children) */
		if (!t->seized)
			continue;
		r = detach_task(ctx, t);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool stop_collected(const struct rtask *t)
{
	return t->core->has_stop_collected && t->core->stop_collected;
}

/* Was sig pending for t's process or its main thread when it was dumped? */
static bool was_pending(const struct rtask *t, int sig)
{
	const ProtobufCBinaryData *v[2] = {t->core->shared_pending, t->thread->pending};
	const size_t n[2] = {t->core->n_shared_pending, t->thread->n_pending};

	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < n[k]; i++)
			if (v[k][i].len >= sizeof(int) && *(const int *)v[k][i].data == sig)
				return true;
	return false;
}

/*
 * Parent p (still ours, every signal blocked) collects child c's stop
 * report with wait4(WUNTRACED | WNOHANG), as it had before the dump; the
 * report comes once c's group stop is complete.
 */
static int collect_stop(struct restore_ctx *ctx, struct rtask *p, const struct rtask *c)
{
	for (int i = 0; i < 2500; i++) {
		long got = 0;
		int r = rcall(p, &ctx->err, __NR_wait4,
			      RARGS((uint64_t)c->pid, 0, WUNTRACED | WNOHANG, 0), &got,
			      "wait4(%d, WUNTRACED) for its stop", c->pid);

		if (r < 0)
			return r;
		if (got == c->pid)
			return 0;
		if (got != 0)
			return ckpt_err(&ctx->err, got < 0 ? (int)got : -EIO,
					"pid %d: wait4(%d, WUNTRACED) for its stop answered %ld",
					p->pid, c->pid, got);
		usleep(2000);
	}
	return ckpt_err(&ctx->err, -ETIMEDOUT, "pid %d: no stop of pid %d to collect after 5 s",
			p->pid, c->pid);
}

/*
 * Does a stop of one of p's children send p a SIGCHLD? Not when p ignores
 * SIGCHLD or set SA_NOCLDSTOP (the kernel's do_notify_parent_cldstop);
 * p's sigactions are its dumped ones since stage setup.
 */
static bool stop_sends_sigchld(const struct rtask *p)
{
	for (size_t i = 0; i < p->core->n_sigactions; i++) {
		const SigAction *sa = p->core->sigactions[i];

		if (sa->sig == SIGCHLD)
			return sa->handler != (uint64_t)(uintptr_t)SIG_IGN &&
			       !(sa->flags & SA_NOCLDSTOP);
	}
	return true;
}

/*
 * The SIGCHLD c's stop sends p, dequeued (rt_sigtimedwait) unless one was
 * pending at dump or the stop sends none. It comes once c's group stop is
 * complete, which may be after c is detached and even after its report can
 * be collected (the kernel marks the group stopped, then notifies): waited
 * for up to 5 s. p's scratch page holds the set and the timeout.
 */
static int drop_sigchld(struct restore_ctx *ctx, struct rtask *p, const struct rtask *c)
{
	const struct {
		uint64_t set;
		struct timespec ts;
	} arg = {.set = 1ull << (SIGCHLD - 1), .ts = {.tv_sec = 5}};
	long got = 0;
	int r;

	if (was_pending(p, SIGCHLD) || !stop_sends_sigchld(p))
		return 0;
	r = remote_write(p->pid, p->rsys.scratch, &arg, sizeof(arg), &ctx->err);
	if (r >= 0)
		r = rflush(p, &ctx->err);
	if (r >= 0)
		r = rsys_call(&p->rsys, __NR_rt_sigtimedwait, p->rsys.scratch, 0,
			      p->rsys.scratch + offsetof(typeof(arg), ts), 8, 0, 0, &got,
			      &ctx->err);
	if (r < 0)
		return ckpt_err_wrap(
		    &ctx->err, "pid %d: rt_sigtimedwait for the SIGCHLD of the stop of pid %d",
		    p->pid, c->pid);
	if (got == -EAGAIN)
		return ckpt_err(&ctx->err, -ETIMEDOUT,
				"pid %d: no SIGCHLD from the stop of its child %d after 5 s",
				p->pid, c->pid);
	if (got != SIGCHLD)
		return ckpt_err(
		    &ctx->err, got < 0 ? (int)got : -EIO,
		    "pid %d: rt_sigtimedwait for the SIGCHLD of the stop of pid %d answered %ld",
		    p->pid, c->pid, got);
	return 0;
}

/*
 * Before the commit point, children before their parents: a task saved as
 * stopped whose parent is in the tree stops now, its final state set and
 * detached with its stop signal (in a group stop it runs nothing). Its
 * parent, still ours, collects the report if it had collected it before
 * the dump, and drops the SIGCHLD the stop sent unless one was pending at
 * dump: the parent sees the stop as it had seen it, once. A rollback kills
 * the child like any task.
 */
int resume_stopped_children(struct restore_ctx *ctx)
{
	for (size_t i = ctx->ntasks; i-- > 0;) {
		struct rtask *c = &ctx->tasks[i];
		int r;

		if (!c->parent || !plan_stop_signal(c))
			continue;
		r = resume_queue_task(ctx, c);
		r = rqueue_end(c, &ctx->err, r);
		if (r >= 0)
			r = resume_finish_task(ctx, c);
		if (r >= 0)
			r = detach_task(ctx, c);
		if (r >= 0 && stop_collected(c))
			r = collect_stop(ctx, c->parent, c);
		if (r >= 0)
			r = drop_sigchld(ctx, c->parent, c);
		if (r < 0)
			return r;
	}
	return 0;
}
