/* SPDX-License-Identifier: MIT */
/*
 * Scheduling policy, priority, nice, SCHED_RESET_ON_FORK (sched_setattr), I/O
 * priority (ioprio_set) and CPU affinity (sched_setaffinity) of each thread, set by the restorer on
 * the tid: no remote call is needed. Done in stage procstate, right before
 * resume, so that a thread made SCHED_IDLE or nice 19 does not slow down the
 * remote calls of the restore itself.
 *
 * Affinity: a checkpoint should be restorable on another machine. CPUs of
 * the saved mask that are not online here are left out with a warning; if
 * none of them is, the thread keeps every CPU, with a warning too. A thread
 * whose mask was every CPU online at dump had nothing saved (dump_sched.c)
 * and keeps the restorer's affinity, normally every CPU of this machine.
 */
#define LOG_PREFIX "sched: "

#include <errno.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cpuset.h"
#include "sched_attr.h"
#include "log.h"
#include "restore.h"

static const char *policy_name(uint32_t p)
{
	static const char *const names[] = {"SCHED_OTHER",    "SCHED_FIFO", "SCHED_RR",
					    "SCHED_BATCH",    "SCHED_ISO",  "SCHED_IDLE",
					    "SCHED_DEADLINE", "SCHED_EXT"};

	return p < sizeof(names) / sizeof(names[0]) ? names[p] : "?";
}

int sched_validate(struct restore_ctx *ctx, const char *f, size_t idx, const ThreadCore *tc)
{
	const SchedAttr *s = tc->sched;

	/* 4 is unused; 7 is SCHED_EXT (it fails to restore without a BPF scheduler) */
	if (s &&
	    (s->policy > 7 || s->policy == 4 || (s->has_nice && (s->nice < -20 || s->nice > 19)) ||
	     (s->has_priority && s->priority > 99) ||
	     (s->has_flags && (s->flags & ~(uint64_t)CKPT_SCHED_FLAGS))))
		return ckpt_err(&ctx->err, -EINVAL,
				"%s: field threads[%zu].sched: policy %u nice %d priority %u flags "
				"%#" PRIx64 " is not a valid scheduling state",
				f, idx, s->policy, s->nice, s->priority, s->flags);
	/* classes none, real-time, best-effort, idle; the rest the kernel judges */
	if (s && s->has_ioprio && (s->ioprio >> IOPRIO_CLASS_SHIFT) > 3)
		return ckpt_err(
		    &ctx->err, -EINVAL,
		    "%s: field threads[%zu].sched.ioprio: %#x has no I/O priority class", f, idx,
		    s->ioprio);
	if (tc->n_cpu_affinity > CPU_SETSIZE / 64)
		return ckpt_err(&ctx->err, -EINVAL,
				"%s: field threads[%zu].cpu_affinity: %zu words (max %d)", f, idx,
				tc->n_cpu_affinity, CPU_SETSIZE / 64);
	return 0;
}

static int set_sched(struct restore_ctx *ctx, pid_t pid, const ThreadCore *tc)
{
	const SchedAttr *s = tc->sched;
	struct kernel_sched_attr a = {
	    .size = sizeof(a),
	    .sched_policy = s->policy,
	    .sched_flags = s->flags,
	    .sched_nice = s->nice,
	    .sched_priority = s->priority,
	    .sched_runtime = s->runtime,
	    .sched_deadline = s->deadline,
	    .sched_period = s->period,
	};

	/* sched_setattr sets the nice value only with SCHED_OTHER/BATCH; other
	 * policies keep the one the thread had: set it first */
	if (s->policy != SCHED_OTHER && s->policy != SCHED_BATCH && s->has_nice) {
		struct kernel_sched_attr n = {.size = sizeof(n), .sched_nice = s->nice};

		if (syscall(SYS_sched_setattr, tc->tid, &n, 0) < 0)
			return ckpt_err_errno(&ctx->err, -errno,
					      "pid %d: thread %d: sched_setattr(SCHED_OTHER, nice "
					      "%d) before %s%s",
					      pid, tc->tid, s->nice, policy_name(s->policy),
					      errno == EPERM ? " (a lower nice value needs "
							       "CAP_SYS_NICE or RLIMIT_NICE)"
							     : "");
	}
	/* the I/O priority first: the kernel derives one from nice while the
	 * thread has none of its own (0, left as is) */
	if (s->has_ioprio && s->ioprio &&
	    syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tc->tid, s->ioprio) < 0)
		return ckpt_err_errno(
		    &ctx->err, -errno, "pid %d: thread %d: ioprio_set(class %u, level %u)%s", pid,
		    tc->tid, s->ioprio >> IOPRIO_CLASS_SHIFT, s->ioprio & 0x1fff,
		    errno == EPERM && s->ioprio >> IOPRIO_CLASS_SHIFT == IOPRIO_CLASS_RT
			? " (the real-time class needs CAP_SYS_ADMIN or "
			  "CAP_SYS_NICE)"
			: "");
	if (syscall(SYS_sched_setattr, tc->tid, &a, 0) == 0)
		return 0;
	return ckpt_err_errno(&ctx->err, -errno,
			      "pid %d: thread %d: sched_setattr(%s, nice %d, priority %u%s)%s", pid,
			      tc->tid, policy_name(s->policy), s->nice, s->priority,
			      s->flags & SCHED_FLAG_RESET_ON_FORK ? ", SCHED_RESET_ON_FORK" : "",
			      errno == EPERM ? " (a real-time policy or a lower nice value needs "
					       "CAP_SYS_NICE or RLIMIT_RTPRIO/RLIMIT_NICE)"
					     : "");
}

static int set_affinity(struct restore_ctx *ctx, pid_t pid, const ThreadCore *tc,
			const cpu_set_t *online)
{
	cpu_set_t saved, want;
	char s1[256], s2[256];

	CPU_ZERO(&saved);
	memcpy(&saved, tc->cpu_affinity, tc->n_cpu_affinity * sizeof(uint64_t));
	CPU_AND(&want, &saved, online);
	cpu_list_format(&saved, s1, sizeof(s1));
	if (CPU_COUNT(&want) == 0) {
		cpu_list_format(online, s2, sizeof(s2));
		pr_warn("pid %d: thread %d: none of the CPUs of its affinity (%s) is online here "
			"(%s); it runs on every CPU",
			pid, tc->tid, s1, s2);
		return 0;
	}
	if (!CPU_EQUAL(&want, &saved)) {
		cpu_list_format(&want, s2, sizeof(s2));
		pr_warn("pid %d: thread %d: CPU affinity %s names CPUs this machine does not have; "
			"restored as %s",
			pid, tc->tid, s1, s2);
	}
	if (sched_setaffinity(tc->tid, sizeof(want), &want) < 0)
		return ckpt_err_errno(&ctx->err, -errno,
				      "pid %d: thread %d: sched_setaffinity(CPUs %s)", pid, tc->tid,
				      s1);
	return 0;
}

int sched_restore_task(struct restore_ctx *ctx, struct rtask *t)
{
	cpu_set_t online;
	int r = cpus_online(&online, &ctx->err);

	for (size_t i = 0; r >= 0 && i <= t->n_threads; i++) {
		const ThreadCore *tc = i ? t->threads[i - 1].core : t->thread;

		if (tc->n_cpu_affinity)
			r = set_affinity(ctx, t->pid, tc, &online);
		if (r >= 0 && tc->sched)
			r = set_sched(ctx, t->pid, tc);
	}
	return r;
}
