/* SPDX-License-Identifier: MIT */
/* The one clock of ckpt's durations, deadlines and timeouts. */
#pragma once

/* Seconds of CLOCK_MONOTONIC: only differences mean something. */
double ckpt_monotonic_seconds(void);
