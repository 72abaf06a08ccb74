/* SPDX-License-Identifier: MIT */
/*
 * Timers, in the signals stage (after memory, before resume): itimers with
 * setitimer, POSIX timers with timer_create + timer_settime, all by remote
 * syscalls in the task. Every signal is blocked in the task until its saved
 * mask is set at resume, so a timer that expires in between only leaves its
 * signal pending, which is what would have happened without the dump.
 *
 * POSIX timers must come back with the same id (the program holds it). The
 * kernel hands out ids from a per-process counter that starts at 0 in a new
 * process and only grows (Linux >= 3.10, still so in 6.x), and the restored
 * task is a fresh fork that never created a timer. So the timers are created
 * in increasing id order, and each gap is filled by creating (and at once
 * deleting) dummy timers; every id obtained is checked against the saved
 * one, and a mismatch fails the restore with a clear error.
 *
 * The sigev value is the one /proc/PID/timers shows (its "signal: N/value"
 * line). Remaining times are relative: the time the tree spent dumped does
 * not count. An overrun count or a signal of the timer already pending at
 * dump (restored as a pending signal) is not tied back to the timer.
 */
#define LOG_PREFIX "timers: "

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "fault.h"
#include "log.h"
#include "restore.h"

/* scratch layout: sigevent, then the id timer_create writes, then the time */
#define SCR_SEV 0
#define SCR_ID 64
#define SCR_TIME 128

/* dummies allowed to fill one gap of ids, and in all */
#define MAX_TIMER_ID_GAP 65536

int timers_validate(struct restore_ctx *ctx, const char *f, const CoreEntry *c)
{
	struct ckpt_error *e = &ctx->err;
	int prev = -1;

	for (size_t i = 0; i < c->n_itimers; i++) {
		const Itimer *it = c->itimers[i];

		if (it->which > ITIMER_PROF || it->value_us / 1000000 > INT32_MAX ||
		    it->interval_us / 1000000 > INT32_MAX)
			return ckpt_err(e, -EINVAL,
					"%s: field itimers[%zu]: which %u value %" PRIu64
					" us interval %" PRIu64 " us is not a valid itimer",
					f, i, it->which, it->value_us, it->interval_us);
	}
	for (size_t i = 0; i < c->n_posix_timers; i++) {
		const PosixTimer *pt = c->posix_timers[i];
		int how = pt->notify & ~SIGEV_THREAD_ID;
		bool tid_ok = !(pt->notify & SIGEV_THREAD_ID);

		for (size_t k = 0; !tid_ok && pt->has_notify_tid && k < c->n_threads; k++)
			tid_ok = c->threads[k]->tid == pt->notify_tid;
		if (pt->id <= prev || pt->id - prev > MAX_TIMER_ID_GAP)
			return ckpt_err(e, -EINVAL,
					"%s: field posix_timers[%zu].id: %d is not above %d or too "
					"far from it",
					f, i, pt->id, prev);
		if ((how != SIGEV_SIGNAL && how != SIGEV_NONE && how != SIGEV_THREAD) || !tid_ok)
			return ckpt_err(e, -EINVAL,
					"%s: field posix_timers[%zu].notify: %d (thread %d) is not "
					"a valid notification of this process",
					f, i, pt->notify, pt->notify_tid);
		if (how != SIGEV_NONE && (pt->signo < 1 || pt->signo > 64))
			return ckpt_err(e, -EINVAL,
					"%s: field posix_timers[%zu].signo: %d is out of range", f,
					i, pt->signo);
		prev = pt->id;
	}
	return 0;
}

static int restore_itimers(struct restore_ctx *ctx, struct rtask *t)
{
	for (size_t i = 0; i < t->core->n_itimers; i++) {
		const Itimer *it = t->core->itimers[i];
		struct itimerval iv = {
		    .it_interval = {.tv_sec = (time_t)(it->interval_us / 1000000),
				    .tv_usec = (suseconds_t)(it->interval_us % 1000000)},
		    .it_value = {.tv_sec = (time_t)(it->value_us / 1000000),
				 .tv_usec = (suseconds_t)(it->value_us % 1000000)},
		};
		int r;

		r = remote_write(t->pid, t->rsys.scratch + SCR_TIME, &iv, sizeof(iv), &ctx->err);
		if (r >= 0)
			r = rcall(t, &ctx->err, __NR_setitimer,
				  RARGS(it->which, t->rsys.scratch + SCR_TIME, 0), NULL,
				  "setitimer(%u, value %" PRIu64 " us, interval %" PRIu64 " us)",
				  it->which, it->value_us, it->interval_us);
		if (r < 0)
			return r;
	}
	return 0;
}

/* timer_create with sev (NULL: a dummy), *ret the id the kernel gave. */
static int create_one(struct restore_ctx *ctx, struct rtask *t, const struct sigevent *sev,
		      clockid_t clock, int *ret)
{
	uint64_t a = t->rsys.scratch;
	int r = 0;

	if (sev)
		r = remote_write(t->pid, a + SCR_SEV, sev, sizeof(*sev), &ctx->err);
	if (r >= 0)
		r = rcall(t, &ctx->err, __NR_timer_create,
			  RARGS((uint64_t)clock, sev ? a + SCR_SEV : 0, a + SCR_ID), NULL,
			  "timer_create(clock %d)", clock);
	if (r >= 0)
		r = remote_read(t->pid, a + SCR_ID, ret, sizeof(*ret), &ctx->err);
	return r;
}

static struct timespec ns_ts(uint64_t ns)
{
	return (struct timespec){.tv_sec = (time_t)(ns / 1000000000),
				 .tv_nsec = (long)(ns % 1000000000)};
}

static int restore_posix_timer(struct restore_ctx *ctx, struct rtask *t, const PosixTimer *pt,
			       int *next)
{
	struct sigevent sev;
	struct itimerspec its;
	uint64_t value = pt->value_ns;
	int id = -1, r;

	/* fill the gap below the saved id: the counter only moves forward */
	while (*next < pt->id) {
		r = create_one(ctx, t, NULL, CLOCK_MONOTONIC, &id);
		if (r >= 0)
			r = rcall(t, &ctx->err, __NR_timer_delete, RARGS((uint64_t)id), NULL,
				  "timer_delete(%d) of a dummy timer", id);
		if (r < 0)
			return r;
		if (id >= pt->id)
			break;
		*next = id + 1;
	}
	memset(&sev, 0, sizeof(sev));
	sev.sigev_value.sival_ptr = (void *)(uintptr_t)pt->sival;
	sev.sigev_signo = pt->signo;
	sev.sigev_notify = pt->notify;
	if (pt->has_notify_tid)
		sev._sigev_un._tid = pt->notify_tid; /* sigev_notify_thread_id */
	r = create_one(ctx, t, &sev, pt->clock, &id);
	if (r < 0)
		return r;
	if (id != pt->id)
		return ckpt_err(&ctx->err, -EEXIST,
				"the kernel gave id %d instead of %d (timer ids are not handed "
				"out in sequence here)",
				id, pt->id);
	*next = id + 1;
	/* an expired periodic timer whose signal is queued reads 0: not disarmed */
	if (!value && pt->interval_ns)
		value = pt->interval_ns;
	if (!value)
		return 0;
	its.it_value = ns_ts(value);
	its.it_interval = ns_ts(pt->interval_ns);
	r = remote_write(t->pid, t->rsys.scratch + SCR_TIME, &its, sizeof(its), &ctx->err);
	if (r >= 0)
		r = rcall(t, &ctx->err, __NR_timer_settime,
			  RARGS((uint64_t)id, 0, t->rsys.scratch + SCR_TIME, 0), NULL,
			  "timer_settime(value %" PRIu64 " ns, interval %" PRIu64 " ns)", value,
			  pt->interval_ns);
	return r;
}

int timers_restore_task(struct restore_ctx *ctx, struct rtask *t)
{
	int next = 0;
	int r = ckpt_fault_inject("restore-timers", &ctx->err);

	if (r >= 0)
		r = restore_itimers(ctx, t);
	for (size_t i = 0; r >= 0 && i < t->core->n_posix_timers; i++) {
		r = restore_posix_timer(ctx, t, t->core->posix_timers[i], &next);
		if (r < 0)
			ckpt_err_wrap(&ctx->err, "POSIX timer %d", t->core->posix_timers[i]->id);
	}
	if (r < 0)
		return ckpt_err_wrap(&ctx->err, "pid %d: timers", t->pid);
	return 0;
}
