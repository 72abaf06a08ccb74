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
/* If the step is selected, fill e and return -EIO ("injected fault at step X"), else 0. */
int ckpt_fault_inject(const char *step, struct ckpt_error *e);
