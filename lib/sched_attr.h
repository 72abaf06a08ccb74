/* SPDX-License-Identifier: MIT */
/*
 * The kernel's struct sched_attr (sched_getattr/sched_setattr), version 0,
 * shared by the dump and the restore of scheduling policies
 * (linux/sched/types.h clashes with glibc's sched.h).
 */
#pragma once

#include <linux/sched.h>
#include <stdint.h>

struct kernel_sched_attr {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

/* The sched_flags a checkpoint saves and a restore accepts. */
#define CKPT_SCHED_FLAGS (SCHED_FLAG_RESET_ON_FORK | SCHED_FLAG_RECLAIM | SCHED_FLAG_DL_OVERRUN)

/* ioprio_get/ioprio_set (linux/ioprio.h is not in Debian 12's headers) */
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_CLASS_RT 1
