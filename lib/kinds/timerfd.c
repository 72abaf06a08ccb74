/* SPDX-License-Identifier: MIT */
/*
 * timerfd. fdinfo shows the clock, the expirations not yet read ("ticks:"),
 * the settime flags and the remaining time and interval ("it_value:",
 * "it_interval:", relative). Restore: timerfd_create on the same clock,
 * timerfd_settime, then the unread expirations with TFD_IOC_SET_TICKS
 * (settime clears them; the ioctl needs CONFIG_CHECKPOINT_RESTORE, and a
 * restore that would lose expirations without it fails).
 *
 * Firing time: a relative timer keeps its remaining time (the time the
 * tree spent checkpointed does not count, as for POSIX timers); a
 * TFD_TIMER_ABSTIME timer keeps its absolute expiration on its clock (the
 * dump adds the remaining time to the clock's now), so a timer for 12:00
 * still fires at 12:00 (at once, counting one expiration, if that is past).
 * An armed periodic timer that has expired and whose next period the
 * kernel has not computed yet shows it_value 0: it is restarted one
 * interval from now, its unread expirations kept.
 */
#define LOG_PREFIX "kind timerfd: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif
#ifndef TFD_TIMER_CANCEL_ON_SET
#define TFD_TIMER_CANCEL_ON_SET (1 << 1)
#endif
#define NSEC_PER_SEC 1000000000ULL
/* far beyond any timer: keeps nanosecond arithmetic in 64 bits */
#define TIMERFD_NS_MAX (UINT64_C(1) << 62)

static bool timerfd_matches(const struct fd_probe *p)
{
	return !strcmp(p->link, "anon_inode:[timerfd]");
}

static bool timerfd_describe(const struct fd_probe *p, char *buf, size_t len)
{
	return fdk_describe_as(timerfd_matches(p), "timerfd", buf, len);
}

/* "key (SEC, NSEC)" -> nanoseconds */
static bool parse_pair(const char *text, const char *key, uint64_t *ret)
{
	const char *s = strstr(text, key);
	unsigned long long sec, nsec;

	if (!s || sscanf(s + strlen(key), " (%llu, %llu)", &sec, &nsec) != 2 ||
	    nsec >= NSEC_PER_SEC || sec >= TIMERFD_NS_MAX / NSEC_PER_SEC)
		return false;
	*ret = sec * NSEC_PER_SEC + nsec;
	return true;
}

static int fill_entry(const char *text, TimerfdEntry *t, struct ckpt_error *e)
{
	uint64_t clk, ticks, fl;

	if (!fdk_fdinfo_u64(text, "clockid:", 10, &clk) ||
	    !fdk_fdinfo_u64(text, "ticks:", 10, &ticks) ||
	    !fdk_fdinfo_u64(text, "settime flags:", 8, &fl) ||
	    !parse_pair(text, "it_value:", &t->value_ns) ||
	    !parse_pair(text, "it_interval:", &t->interval_ns))
		return ckpt_err(e, -EINVAL, "timerfd: cannot parse its fdinfo");
	t->clockid = (uint32_t)clk;
	t->has_ticks = true;
	t->ticks = ticks;
	t->has_settime_flags = true;
	t->settime_flags = (uint32_t)fl;
	return 0;
}

static int timerfd_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	struct timespec now;
	TimerfdEntry *t;
	int r;

	r = ckpt_fault_inject("timerfd-dump", e);
	if (r < 0)
		return r;
	r = fdk_read_fdinfo(p, &text, e);
	if (r < 0)
		return r;
	r = fdk_dump_common(p, FILE_TYPE__FILE_TIMERFD, fe, e);
	if (r < 0)
		return r;
	t = calloc(1, sizeof(*t));
	if (!t)
		return ckpt_err(e, -ENOMEM, "out of memory");
	timerfd_entry__init(t);
	fe->timerfd = t;
	r = fill_entry(text, t, e);
	if (r < 0)
		return r;
	if ((t->settime_flags & TFD_TIMER_ABSTIME) && t->value_ns) {
		if (clock_gettime((clockid_t)t->clockid, &now) < 0)
			return ckpt_err_errno(e, -errno, "timerfd: clock_gettime(%u)", t->clockid);
		t->has_abs_value_ns = true;
		t->abs_value_ns =
		    (uint64_t)now.tv_sec * NSEC_PER_SEC + (uint64_t)now.tv_nsec + t->value_ns;
		/* on the task's clock: its time namespace may not be ours */
		if (t->clockid == CLOCK_MONOTONIC || t->clockid == CLOCK_BOOTTIME ||
		    t->clockid == CLOCK_BOOTTIME_ALARM) {
			int64_t tm, tb, sm, sb, d;

			r = ckpt_timens_offsets(p->pid, &tm, &tb, e);
			if (r >= 0)
				r = ckpt_timens_offsets(0, &sm, &sb, e);
			if (r < 0)
				return ckpt_err_wrap(e, "timerfd");
			d = t->clockid == CLOCK_MONOTONIC ? tm - sm : tb - sb;
			t->abs_value_ns = (uint64_t)((int64_t)t->abs_value_ns + d);
		}
	}
	pr_debug("pid %d fd %d: timerfd clock %u, %" PRIu64 " ns left, every %" PRIu64
		 " ns, %" PRIu64 " unread\n",
		 p->pid, p->fd, t->clockid, t->value_ns, t->interval_ns, t->ticks);
	return 0;
}

static int timerfd_check(const FileEntry *fe, struct ckpt_error *e)
{
	const TimerfdEntry *t = fe->timerfd;

	if (fe->type != FILE_TYPE__FILE_TIMERFD || !t)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: not a timerfd entry", fe->id);
	if (t->value_ns >= TIMERFD_NS_MAX || t->interval_ns >= TIMERFD_NS_MAX ||
	    (t->has_abs_value_ns && t->abs_value_ns >= TIMERFD_NS_MAX))
		return ckpt_err(e, -EINVAL, "files.img: entry %u: timerfd time out of range",
				fe->id);
	if (t->settime_flags & ~(uint32_t)(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET))
		return ckpt_err(e, -EINVAL, "files.img: entry %u: field timerfd.settime_flags: %#x",
				fe->id, t->settime_flags);
	return 0;
}

static int timerfd_verify(const FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("timerfd-verify", e);

	return r < 0 ? r : timerfd_check(fe, e);
}

static struct timespec ts_of(uint64_t ns)
{
	return (struct timespec){.tv_sec = (time_t)(ns / NSEC_PER_SEC),
				 .tv_nsec = (long)(ns % NSEC_PER_SEC)};
}

static int arm(int fd, const TimerfdEntry *t, struct ckpt_error *e)
{
	struct itimerspec its = {.it_interval = ts_of(t->interval_ns)};
	int flags = 0;

	if (t->has_abs_value_ns) {
		its.it_value = ts_of(t->abs_value_ns);
		flags = (int)t->settime_flags;
	} else if (t->value_ns) {
		its.it_value = ts_of(t->value_ns);
	} else if (t->interval_ns) {
		/* expired, next period not yet computed: one interval from now */
		its.it_value = ts_of(t->interval_ns);
	} else {
		return 0; /* disarmed */
	}
	if (timerfd_settime(fd, flags, &its, NULL) < 0)
		return ckpt_err_errno(e, -errno, "timerfd_settime");
	return 0;
}

static int timerfd_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	const TimerfdEntry *t = fe->timerfd;
	_cleanup_close_ int fd = -1;
	int r;

	r = ckpt_fault_inject("timerfd-open", e);
	if (r >= 0)
		r = timerfd_check(fe, e);
	if (r < 0)
		return r;
	fd = timerfd_create((clockid_t)t->clockid, fd_flags & O_CLOEXEC ? TFD_CLOEXEC : 0);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "timerfd_create on clock %u", t->clockid);
	r = arm(fd, t, e);
	if (r < 0)
		return r;
	if (t->ticks && ioctl(fd, TFD_IOC_SET_TICKS, &t->ticks) < 0)
		return ckpt_err_errno(e, -errno,
				      "timerfd: restoring its %" PRIu64
				      " unread expirations (TFD_IOC_SET_TICKS; the kernel needs "
				      "CONFIG_CHECKPOINT_RESTORE)",
				      t->ticks);
	r = fdk_set_nonblock(fd, fe, e);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

const struct fd_kind fd_kind_timerfd = {
    .name = "timerfd",
    .in_flight = true,
    .matches = timerfd_matches,
    .describe = timerfd_describe,
    .entry_field = offsetof(FileEntry, timerfd),
    .path = FD_PATH_ANON_INODE,
    .dump = timerfd_dump,
    .verify = timerfd_verify,
    .open = timerfd_open,
};
