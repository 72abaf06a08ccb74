/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: CKPT_FAULT=<step>[,<step>...] makes ckpt_fault(step)
 * true, so that tests can force the failure (and the rollback) of any named
 * step of dump or restore. The steps are listed in docs/fault-injection.md.
 */
#pragma once

#include <stdbool.h>

#include "error.h"

bool ckpt_fault(const char *step);
/*
 * If the step is selected, fill e and return -EIO ("injected fault at step X"), else 0.
 * First, if CKPT_PAUSE=<step>:<path>[,<step>:<path>...] names the step, pause there: create
 * <path>.paused and wait until <path> exists (at most 120 s). Tests use it to
 * act at a known moment (a signal sent while the tree is frozen, a file
 * swapped between a check and its use) instead of racing.
 */
int ckpt_fault_inject(const char *step, struct ckpt_error *e);
