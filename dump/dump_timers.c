/* SPDX-License-Identifier: MIT */
/*
 * Timers of a process: the three itimers (alarm() is ITIMER_REAL) and the
 * POSIX timers of timer_create. Which POSIX timers exist, with their clock,
 * signal, sigev value and notify target, only /proc/PID/timers tells; their
 * remaining time and interval only a remote timer_gettime does. Both run in
 * the task's remote-syscall session of dump_task_core, so the remaining
 * times are read while the tree is frozen (they keep running meanwhile).
 */
#define LOG_PREFIX "dump: "

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "cleanup.h"
#include "dump_internal.h"
#include "fault.h"
#include "log.h"

/* a sane bound: each timer costs a remote call at restore */
#define MAX_POSIX_TIMERS 4096
/* one batch of timer_gettime: their results (32 bytes each) fit the scratch page */
#define TIMERS_PER_BATCH 64

static uint64_t tv_us(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000000 + (uint64_t)tv->tv_usec;
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000 + (uint64_t)ts->tv_nsec;
}

static int dump_itimers(struct dump_task *t, CoreEntry *core, struct ckpt_error *e)
{
	static const int which[] = {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF};
	struct itimerval iv[3];
	size_t bad;
	int r;

	struct rsys_op ops[3];

	memset(iv, 0, sizeof(iv));
	for (int i = 0; i < 3; i++)
		ops[i] = (struct rsys_op){
		    __NR_getitimer, {which[i], t->rsys.scratch + i * sizeof(iv[0])}, 0};
	r = remote_write(t->pid, t->rsys.scratch, iv, sizeof(iv), e);
	if (r >= 0)
		r = rsys_batch(&t->rsys, ops, 3, e);
	if (r >= 0 && (bad = rsys_op_failed(ops, 3)) < 3)
		r = ckpt_err_errno(e, (int)ops[bad].ret, "remote getitimer(%d) in pid %d",
				   which[bad], t->pid);
	if (r >= 0)
		r = remote_read(t->pid, t->rsys.scratch, iv, sizeof(iv), e);
	if (r < 0)
		return r;
	core->itimers = calloc(3, sizeof(*core->itimers));
	if (!core->itimers)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (int i = 0; i < 3; i++) {
		Itimer *it;

		if (!timerisset(&iv[i].it_value))
			continue;
		it = calloc(1, sizeof(*it));
		if (!it)
			return ckpt_err(e, -ENOMEM, "out of memory");
		itimer__init(it);
		it->which = (uint32_t)which[i];
		it->value_us = tv_us(&iv[i].it_value);
		it->interval_us = tv_us(&iv[i].it_interval);
		core->itimers[core->n_itimers++] = it;
	}
	return 0;
}

/*
 * One record of /proc/PID/timers:
 *   ID: 0
 *   signal: 34/00000000deadbeef      (signal number / sigev_value)
 *   notify: signal/pid.1234          (signal|none|thread, pid or tid)
 *   ClockID: 1
 */
static int parse_timer_line(const char *line, PosixTimer *pt, bool *complete)
{
	char how[16], who[8];
	unsigned long long sival;
	int n;

	if (sscanf(line, "ID: %d", &pt->id) == 1)
		return 0;
	if (sscanf(line, "signal: %d/%llx", &pt->signo, &sival) == 2) {
		pt->sival = sival;
		return 0;
	}
	if (sscanf(line, "notify: %15[a-z]/%7[a-z].%d", how, who, &n) == 3) {
		if (!strcmp(how, "signal"))
			pt->notify = SIGEV_SIGNAL;
		else if (!strcmp(how, "none"))
			pt->notify = SIGEV_NONE;
		else if (!strcmp(how, "thread"))
			pt->notify = SIGEV_THREAD;
		else
			return -EINVAL;
		if (!strcmp(who, "tid")) {
			pt->notify |= SIGEV_THREAD_ID;
			pt->has_notify_tid = true;
			pt->notify_tid = n;
		}
		return 0;
	}
	if (sscanf(line, "ClockID: %d", &pt->clock) == 1) {
		*complete = true;
		return 0;
	}
	return -EINVAL;
}

static int timer_cmp(const void *a, const void *b)
{
	const PosixTimer *x = *(PosixTimer *const *)a, *y = *(PosixTimer *const *)b;

	return (x->id > y->id) - (x->id < y->id);
}

static int parse_timers(pid_t pid, CoreEntry *core, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	PosixTimer *pt = NULL;
	char path[64], *save = NULL;
	bool complete = false;
	size_t len;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/timers", pid);
	r = proc_read_file(path, &text, &len, e);
	if (r < 0)
		return r;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!pt) {
			if (core->n_posix_timers >= MAX_POSIX_TIMERS)
				return ckpt_err(e, -EOPNOTSUPP,
						"pid %d has more than %d POSIX timers; not "
						"supported",
						pid, MAX_POSIX_TIMERS);
			pt = calloc(1, sizeof(*pt));
			if (!pt)
				return ckpt_err(e, -ENOMEM, "out of memory");
			posix_timer__init(pt);
			core->posix_timers[core->n_posix_timers++] = pt;
			complete = false;
		}
		if (parse_timer_line(line, pt, &complete) < 0)
			return ckpt_err(e, -EINVAL, "%s: cannot parse line '%s'", path, line);
		if (complete)
			pt = NULL;
	}
	if (pt)
		return ckpt_err(e, -EINVAL, "%s: truncated record of timer %d", path, pt->id);
	qsort(core->posix_timers, core->n_posix_timers, sizeof(*core->posix_timers), timer_cmp);
	return 0;
}

static int dump_posix_timers(struct dump_task *t, CoreEntry *core, struct ckpt_error *e)
{
	int r;

	core->posix_timers = calloc(MAX_POSIX_TIMERS, sizeof(*core->posix_timers));
	if (!core->posix_timers)
		return ckpt_err(e, -ENOMEM, "out of memory");
	r = parse_timers(t->pid, core, e);
	/* timer_gettime of TIMERS_PER_BATCH timers at a time, each into its slot of scratch */
	for (size_t i = 0; r >= 0 && i < core->n_posix_timers; i += TIMERS_PER_BATCH) {
		size_t n = core->n_posix_timers - i < TIMERS_PER_BATCH ? core->n_posix_timers - i
								       : TIMERS_PER_BATCH;
		struct itimerspec its[TIMERS_PER_BATCH];
		struct rsys_op ops[TIMERS_PER_BATCH];
		size_t bad;

		for (size_t k = 0; k < n; k++)
			ops[k] = (struct rsys_op){
			    __NR_timer_gettime,
			    {(uint64_t)core->posix_timers[i + k]->id, t->rsys.scratch + k * sizeof(its[0])},
			    0};
		r = rsys_batch(&t->rsys, ops, n, e);
		if (r >= 0 && (bad = rsys_op_failed(ops, n)) < n)
			r = ckpt_err_errno(e, (int)ops[bad].ret,
					   "remote timer_gettime(%d) in pid %d",
					   core->posix_timers[i + bad]->id, t->pid);
		if (r >= 0)
			r = remote_read(t->pid, t->rsys.scratch, its, n * sizeof(its[0]), e);
		if (r < 0)
			return ckpt_err_wrap(e, "POSIX timer %d", core->posix_timers[i]->id);
		for (size_t k = 0; k < n; k++) {
			PosixTimer *pt = core->posix_timers[i + k];

			pt->value_ns = ts_ns(&its[k].it_value);
			pt->interval_ns = ts_ns(&its[k].it_interval);
			pr_debug("pid %d: POSIX timer %d clock %d signal %d notify %d value %" PRIu64
				 " ns interval %" PRIu64 " ns",
				 t->pid, pt->id, pt->clock, pt->signo, pt->notify, pt->value_ns,
				 pt->interval_ns);
		}
	}
	return r;
}

int dump_timers(struct dump_task *t, CoreEntry *core, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("dump-timers", e);

	if (r >= 0)
		r = dump_itimers(t, core, e);
	if (r >= 0)
		r = dump_posix_timers(t, core, e);
	return r < 0 ? ckpt_err_wrap(e, "timers") : 0;
}
