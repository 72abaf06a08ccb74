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

int signals_restore_task(struct restore_ctx *ctx, struct rtask *t)
{
	const ThreadCore *th = t->thread;
	int r = 0;

	if (th->rseq)
		r = rcall(t, &ctx->err, __NR_rseq,
			  RARGS(th->rseq->abi_pointer, th->rseq->abi_size, 0, th->rseq->signature),
			  NULL, "rseq registration of %#" PRIx64, th->rseq->abi_pointer);
	/* all signals are blocked (remote syscall session): nothing is delivered */
	for (size_t i = 0; r >= 0 && i < t->core->n_shared_pending; i++)
		r = queue_one(ctx, t, &t->core->shared_pending[i], true);
	for (size_t i = 0; r >= 0 && i < th->n_pending; i++)
		r = queue_one(ctx, t, &th->pending[i], false);
	if (r >= 0)
		r = timers_restore_task(ctx, t);
	if (r >= 0)
		r = threads_restore_state(ctx, t);
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

int resume_prepare_task(struct restore_ctx *ctx, struct rtask *t)
{
	const ThreadCore *th = t->thread;
	struct user_regs_struct regs;
	int r;

	/* the restorer's safety signal is replaced by the saved one (procstate.c) */
	r = rcall(t, &ctx->err, __NR_prctl, RARGS(PR_SET_PDEATHSIG, procstate_pdeathsig(ctx, t)),
		  NULL, "prctl(PR_SET_PDEATHSIG)");
	if (r < 0)
		return r;
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
		t->finished = true;
	return r;
}

int resume_all(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];
		int r;

		r = ptrace_detach(t->pid, plan_stop_signal(t), &ctx->err);
		if (r < 0)
			return r;
		t->seized = false;
		r = threads_detach(ctx, t);
		if (r < 0)
			return r;
	}
	return 0;
}
