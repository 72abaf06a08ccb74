/* SPDX-License-Identifier: MIT */
/*
 * Scheduling state of a thread: policy, priority, nice, SCHED_RESET_ON_FORK
 * and the SCHED_DEADLINE parameters (sched_getattr), the I/O priority
 * (ioprio_get) and the CPU affinity (sched_getaffinity). The calls work on
 * any tid from the dumper: no remote syscall is needed. Util clamps are not
 * saved.
 *
 * An affinity that allows every CPU online at dump is the default, not a
 * choice of the program: it is not saved, so that a checkpoint restored on
 * a machine with more CPUs lets the program use them all.
 */
#define LOG_PREFIX "dump sched: "

#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
