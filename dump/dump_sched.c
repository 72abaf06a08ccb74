/* SPDX-License-Identifier: MIT */
/*
 * Scheduling state of a thread: policy, priority, nice, SCHED_RESET_ON_FORK
 * and the SCHED_DEADLINE parameters (sched_getattr), the I/O priority
 * (ioprio_get) and the CPU affinity (sched_getaffinity). The calls work on
 * any tid from the dumper: no remote syscall is needed. Util clamps are not
 * saved (these kernels have none: CONFIG_UCLAMP_TASK). The NUMA memory
 * policy only the thread can tell (get_mempolicy in its remote batch,
 * dump_task.c): mempolicy_to_proto.
 *
 * An affinity that allows every CPU online at dump is the default, not a
 * choice of the program: it is not saved, so that a checkpoint restored on
 * a machine with more CPUs lets the program use them all.
 */
#define LOG_PREFIX "dump sched: "

#include <errno.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "cpuset.h"
#include "sched_attr.h"
#include "dump_internal.h"
#include "log.h"

static int dump_affinity(pid_t tid, const cpu_set_t *online, ThreadCore *tc, struct ckpt_error *e)
{
	cpu_set_t mask, both;
	size_t words = 0;
	const uint64_t *w = (const uint64_t *)&mask;

	if (sched_getaffinity(tid, sizeof(mask), &mask) < 0)
		return ckpt_err_errno(e, -errno, "thread %d: sched_getaffinity", tid);
	CPU_AND(&both, &mask, online);
	if (CPU_EQUAL(&both, online))
		return 0; /* the default: every CPU */
	for (size_t i = 0; i < sizeof(mask) / 8; i++)
		if (w[i])
			words = i + 1;
	tc->cpu_affinity = calloc(words ? words : 1, sizeof(uint64_t));
	if (!tc->cpu_affinity)
		return ckpt_err(e, -ENOMEM, "out of memory");
	memcpy(tc->cpu_affinity, w, words * sizeof(uint64_t));
	tc->n_cpu_affinity = words;
	return 0;
}

int dump_thread_sched(pid_t tid, const cpu_set_t *online, ThreadCore *tc, struct ckpt_error *e)
{
	struct kernel_sched_attr attr;
	SchedAttr *s;
	long io;

	memset(&attr, 0, sizeof(attr));
	if (syscall(SYS_sched_getattr, tid, &attr, sizeof(attr), 0) < 0)
		return ckpt_err_errno(e, -errno, "thread %d: sched_getattr", tid);
	s = calloc(1, sizeof(*s));
	if (!s)
		return ckpt_err(e, -ENOMEM, "out of memory");
	sched_attr__init(s);
	tc->sched = s;
	s->policy = attr.sched_policy;
	s->has_flags = true;
	s->flags = attr.sched_flags & CKPT_SCHED_FLAGS;
	s->has_nice = true;
	s->nice = attr.sched_nice;
	s->has_priority = true;
	s->priority = attr.sched_priority;
	/* ioprio_get of a tid reads that thread's own */
	io = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid);
	if (io < 0)
		return ckpt_err_errno(e, -errno, "thread %d: ioprio_get", tid);
	s->has_ioprio = true;
	s->ioprio = (uint32_t)io;
	if (attr.sched_policy == SCHED_DEADLINE) {
		s->has_runtime = s->has_deadline = s->has_period = true;
		s->runtime = attr.sched_runtime;
		s->deadline = attr.sched_deadline;
		s->period = attr.sched_period;
	}
	return dump_affinity(tid, online, tc, e);
}

/* The soft limit resource of the saved ones (what the kernel checks), or 0. */
static uint64_t saved_rlimit(const CoreEntry *core, unsigned resource)
{
	for (size_t i = 0; i < core->n_rlimits; i++)
		if (core->rlimits[i]->resource == resource)
			return core->rlimits[i]->cur;
	return 0;
}

/*
 * What sched_setattr and ioprio_set allow a caller without CAP_SYS_NICE
 * (and CAP_SYS_ADMIN) on a thread of its own, which starts at the
 * restorer's SCHED_OTHER, nice 0 (ckptd's), with the saved resource
 * limits already set (stage creds comes first): a real-time policy up to
 * RLIMIT_RTPRIO, a nice value down to 20 - RLIMIT_NICE, no deadline
 * policy, no real-time I/O class. The restorer (restorer/sched.c) would
 * fail there; the dump says so first, naming the thread.
 */
int dump_sched_check_unprivileged(const CoreEntry *core, struct ckpt_error *e)
{
	uint64_t rtprio = saved_rlimit(core, RLIMIT_RTPRIO),
		 nice_lim = saved_rlimit(core, RLIMIT_NICE);
	const char *why = "(your restore runs without capabilities: dump it as root, or change "
			  "it first)";

	/* set by the task itself before its limits are restored: the restorer's */
	if (core->has_autogroup_nice && core->autogroup_nice < 0)
		return ckpt_err(e, -EPERM,
				"its autogroup's nice value %d (/proc/PID/autogroup) needs "
				"CAP_SYS_NICE to be set again %s",
				core->autogroup_nice, why);

	for (size_t i = 0; i < core->n_threads; i++) {
		const ThreadCore *tc = core->threads[i];
		const SchedAttr *s = tc->sched;

		if (!s)
			continue;
		if (s->policy == SCHED_DEADLINE)
			return ckpt_err(
			    e, -EPERM,
			    "thread %d: its SCHED_DEADLINE policy needs CAP_SYS_NICE to "
			    "be set again %s",
			    tc->tid, why);
		if ((s->policy == SCHED_FIFO || s->policy == SCHED_RR) && s->priority > rtprio)
			return ckpt_err(
			    e, -EPERM,
			    "thread %d: its real-time policy %s priority %u needs "
			    "CAP_SYS_NICE to be set again: its RLIMIT_RTPRIO allows %" PRIu64 " %s",
			    tc->tid, s->policy == SCHED_FIFO ? "SCHED_FIFO" : "SCHED_RR",
			    s->priority, rtprio, why);
		if (s->has_nice && s->nice < 0 && (uint64_t)(20 - s->nice) > nice_lim)
			return ckpt_err(
			    e, -EPERM,
			    "thread %d: its nice value %d needs CAP_SYS_NICE to be set "
			    "again: its RLIMIT_NICE %" PRIu64 " lets it down to %d only %s",
			    tc->tid, s->nice, nice_lim,
			    nice_lim > 20 ? 20 - (int)(nice_lim > 40 ? 40 : nice_lim) : 0, why);
		if (s->has_ioprio && s->ioprio >> IOPRIO_CLASS_SHIFT == IOPRIO_CLASS_RT)
			return ckpt_err(e, -EPERM,
					"thread %d: its real-time I/O class (ionice -c1) needs "
					"CAP_SYS_NICE or CAP_SYS_ADMIN to be set again %s",
					tc->tid, why);
	}
	return 0;
}

int mempolicy_to_proto(int mode, const uint64_t *nodes, size_t words, MemPolicy **ret,
		       struct ckpt_error *e)
{
	MemPolicy *p = calloc(1, sizeof(*p));
	size_t n = words;

	if (!p)
		return ckpt_err(e, -ENOMEM, "out of memory");
	mem_policy__init(p);
	p->mode = (uint32_t)mode;
	while (n && !nodes[n - 1])
		n--;
	if (n) {
		p->nodes = calloc(n, sizeof(*p->nodes));
		if (!p->nodes) {
			free(p);
			return ckpt_err(e, -ENOMEM, "out of memory");
		}
		memcpy(p->nodes, nodes, n * sizeof(*nodes));
		p->n_nodes = n;
	}
	*ret = p;
	return 0;
}
