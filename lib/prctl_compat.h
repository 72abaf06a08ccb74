/* SPDX-License-Identifier: MIT */
/*
 * prctl options newer than the headers of Debian 12 (the machines' own
 * kernel has them; a kernel without them answers EINVAL).
 */
#pragma once

#include <sys/prctl.h>

/* memory-deny-write-execute, Linux 6.3 */
#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif
