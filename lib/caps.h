/* SPDX-License-Identifier: MIT */
/*
 * The effective capability set, raised around the calls that need it.
 * ckpt-restore run for a non-root caller keeps its capabilities in the
 * permitted set only (caps_lower_all at start): whatever it opens, binds,
 * connects or changes into from an image is then done with exactly the
 * caller's rights, and each privileged call (clone3 with set_tid, ptrace,
 * TCP_REPAIR, the network lock) raises what it needs for its duration:
 *
 *	uint64_t saved = caps_raise(CAPS_BIT(CAP_NET_ADMIN));
 *	r = setsockopt(...);
 *	caps_restore(saved);
 *
 * For a process whose effective set is already full (root) both are no-ops.
 * Only capabilities 0..63 are handled (cap_last_cap is 40 here).
 */
#pragma once

#include <linux/capability.h>
#include <stdint.h>

#define CAPS_BIT(c) (1ULL << (c))
#define CAPS_ALL (~0ULL)

/* The current effective and permitted sets (0 on error). */
uint64_t caps_effective(void);
uint64_t caps_permitted(void);
uint64_t caps_inheritable(void);
/*
 * Raise caps (those of them in the permitted set) into the effective set;
 * returns the effective set before, for caps_restore. errno is kept.
 */
uint64_t caps_raise(uint64_t caps);
/* Set the effective set back to what caps_raise returned. errno is kept. */
void caps_restore(uint64_t saved);
/* Empty the effective set, keeping the permitted one; -errno on failure. */
int caps_lower_all(void);
