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

/* KSM for the whole process, Linux 6.4 */
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif

/* the private futex hash of a process, Linux 6.16 */
#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH 78
#define PR_FUTEX_HASH_SET_SLOTS 1
#define PR_FUTEX_HASH_GET_SLOTS 2
#endif
/* the most slots the kernel gives a private futex hash (futex_hash_allocate) */
#define FUTEX_HASH_SLOTS_MAX (1u << 16)

/* x86 arch_prctl codes (asm/prctl.h has them since 4.12) */
#ifndef ARCH_GET_CPUID
#define ARCH_GET_CPUID 0x1011
#define ARCH_SET_CPUID 0x1012
#endif
/* dynamically enabled xstate features (Linux 5.16): AMX tiles */
#ifndef ARCH_GET_XCOMP_PERM
#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#endif
#define XFEATURE_XTILEDATA 18

#ifndef PR_SPEC_L1D_FLUSH
#define PR_SPEC_L1D_FLUSH 2
#endif
#ifndef PR_SPEC_DISABLE_NOEXEC
#define PR_SPEC_DISABLE_NOEXEC (1UL << 4)
#endif
