/* SPDX-License-Identifier: MIT */
/*
 * --continue-clocks: the tree runs in a new time namespace whose
 * CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets make both clocks go on from
 * their values at the dump's freeze (inventory frozen_monotonic_ns,
 * frozen_boottime_ns, read as the tree saw them). The time the tree spent
 * checkpointed does not count; CLOCK_REALTIME jumps, as it must.
 *
 * Stage clocks (after pids, before files and tree): P unshares
 * CLONE_NEWTIME, which makes a namespace for its children only, and writes
 * the offsets into /proc/self/timens_offsets before any child exists (they
 * are fixed once a task enters it). Time namespace offsets are relative to
 * the machine's clocks, not to P's own namespace: a restorer that runs in a
 * time namespace itself subtracts its own offsets. P stays in its own time
 * namespace (its deadlines and durations do not jump).
 *
 * Timers: relative ones (itimers, POSIX timers, relative timerfds) keep
 * their remaining time anyway. An absolute timerfd deadline is on the tree's
 * clock, but P arms it (stage files) on its own clock: the saved deadline is
 * moved by the difference of the two here. An absolute clock_nanosleep the
 * freeze interrupted is restarted by the task on its own clock: right.
 */
#define LOG_PREFIX "clocks: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "log.h"
#include "restore.h"

#define NSEC 1000000000LL
/* a clock value the kernel accepts in a time namespace (KTIME_SEC_MAX / 2) */
#define CLOCK_NS_MAX (((int64_t)1 << 62) - 1)

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

int clocks_validate(struct restore_ctx *ctx)
{
	const Inventory *inv = ctx->inv;

	if (inv->has_frozen_monotonic_ns != inv->has_frozen_boottime_ns)
		return ckpt_err(&ctx->err, -EINVAL,
				"inventory.img: fields frozen_monotonic_ns and frozen_boottime_ns: "
				"only one of them is set");
	if ((inv->has_frozen_monotonic_ns && inv->frozen_monotonic_ns > CLOCK_NS_MAX) ||
	    (inv->has_frozen_boottime_ns && inv->frozen_boottime_ns > CLOCK_NS_MAX))
		return ckpt_err(&ctx->err, -EINVAL,
				"inventory.img: fields frozen_monotonic_ns %" PRIu64
				" / frozen_boottime_ns %" PRIu64 ": out of range",
				inv->frozen_monotonic_ns, inv->frozen_boottime_ns);
	if (inv->has_frozen_monotonic_ns &&
	    inv->frozen_boottime_ns + NSEC / 10 < inv->frozen_monotonic_ns)
		return ckpt_err(&ctx->err, -EINVAL,
				"inventory.img: field frozen_boottime_ns %" PRIu64
				" is below frozen_monotonic_ns %" PRIu64
				" (boot time includes the monotonic time)",
				inv->frozen_boottime_ns, inv->frozen_monotonic_ns);
	return 0;
}

/* "SECS NSECS" with NSECS in [0, 1e9), as timens_offsets wants it */
static void split_ns(int64_t v, long long *sec, long *nsec)
{
	*sec = v / NSEC;
	*nsec = (long)(v % NSEC);
	if (*nsec < 0) {
		*nsec += NSEC;
		(*sec)--;
	}
}

/* An absolute timerfd deadline on the tree's clock, moved onto ours. */
static void move_timerfds(struct restore_ctx *ctx, int64_t d_mono, int64_t d_boot)
{
	for (size_t i = 0; i < ctx->nfiles; i++) {
		FileEntry *fe = ctx->files[i].fe;
		TimerfdEntry *t = fe->timerfd;
		int64_t d, v;

		if (fe->type != FILE_TYPE__FILE_TIMERFD || !t || !t->has_abs_value_ns)
			continue;
		if (t->clockid == CLOCK_MONOTONIC)
			d = d_mono;
		else if (t->clockid == CLOCK_BOOTTIME || t->clockid == CLOCK_BOOTTIME_ALARM)
			d = d_boot;
		else
			continue;
		v = (int64_t)t->abs_value_ns - d;
		/* already past on the tree's clock: fires at once, as it would */
		t->abs_value_ns = v > 0 ? (uint64_t)v : 1;
	}
}

int clocks_enter(struct restore_ctx *ctx)
{
	const Inventory *inv = ctx->inv;
	int64_t own_mono, own_boot, off_mono, off_boot;
	long long ms, bs;
	long mn, bn;
	char buf[128];
	_cleanup_close_ int fd = -1;
	uint64_t saved;
	ssize_t n;
	int r, len;

	if (!ctx->opts->continue_clocks)
		return 0;
	if (!inv->has_frozen_monotonic_ns || !inv->has_frozen_boottime_ns)
		return ckpt_err(&ctx->err, -EOPNOTSUPP,
				"--continue-clocks: the images do not say the tree's clocks at the "
				"dump (made by an older ckpt); restore without --continue-clocks");
	r = ckpt_timens_offsets(0, &own_mono, &own_boot, &ctx->err);
	if (r < 0)
		return r;
	/* offsets are against the machine's clocks: ours minus our own offsets */
	off_mono = (int64_t)inv->frozen_monotonic_ns - (ckpt_clock_ns(CLOCK_MONOTONIC) - own_mono);
	off_boot = (int64_t)inv->frozen_boottime_ns - (ckpt_clock_ns(CLOCK_BOOTTIME) - own_boot);
	split_ns(off_mono, &ms, &mn);
	split_ns(off_boot, &bs, &bn);
	saved = caps_raise(CAPS_BIT(CAP_SYS_ADMIN) | CAPS_BIT(CAP_SYS_TIME));
	if (unshare(CLONE_NEWTIME) < 0) {
		r = ckpt_err_errno(
		    &ctx->err, -errno,
		    "--continue-clocks: unshare(CLONE_NEWTIME) (needs CAP_SYS_ADMIN)");
		goto out;
	}
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		r = ckpt_err_errno(&ctx->err, -errno,
				   "--continue-clocks: /proc/self/timens_offsets");
		goto out;
	}
	len = snprintf(buf, sizeof(buf), "monotonic %lld %ld\nboottime %lld %ld\n", ms, mn, bs, bn);
	n = write(fd, buf, (size_t)len);
	if (n != len) {
		r = ckpt_err_errno(&ctx->err, n < 0 ? -errno : -EIO,
				   "--continue-clocks: writing offsets monotonic %lld.%09ld s, "
				   "boottime %lld.%09ld s to /proc/self/timens_offsets (needs "
				   "CAP_SYS_TIME)",
				   ms, mn, bs, bn);
		goto out;
	}
	move_timerfds(ctx, off_mono - own_mono, off_boot - own_boot);
	pr_info("new time namespace: monotonic %+.3f s, boottime %+.3f s from the machine's "
		"clocks: they go on from %.3f s and %.3f s",
		(double)off_mono / 1e9, (double)off_boot / 1e9,
		(double)inv->frozen_monotonic_ns / 1e9, (double)inv->frozen_boottime_ns / 1e9);
	r = 0;
out:
	caps_restore(saved);
	return r;
}
