/* SPDX-License-Identifier: MIT */
/* The one clock of ckpt's durations, deadlines and timeouts; time namespaces. */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "error.h"

/* Seconds of CLOCK_MONOTONIC: only differences mean something. */
double ckpt_monotonic_seconds(void);
/* Nanoseconds of clock clk as we see it (0 if it cannot be read). */
int64_t ckpt_clock_ns(clockid_t clk);
/* The CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets (ns) of the time namespace
 * of pid's children (pid 0: ours), 0 when there is none. */
int ckpt_timens_offsets(pid_t pid, int64_t *mono, int64_t *boot, struct ckpt_error *e);
