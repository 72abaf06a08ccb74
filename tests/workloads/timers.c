/* SPDX-License-Identifier: MIT */
/*
 * timers LOG READY
 *
 * Keeps every kind of timer busy so that a dump catches them armed:
 *   - alarm(3), set just before READY is created; its SIGALRM handler logs
 *     "alarm <ms>" with the milliseconds since it was set (by CLOCK_MONOTONIC,
 *     which a restore does not touch: the time spent dumped counts);
 *   - ITIMER_PROF every 10 ms of CPU time (the main loop burns 20 ms of CPU
 *     every 100 ms), counted in its SIGPROF handler;
 *   - POSIX timer 0: CLOCK_MONOTONIC, SIGRTMIN with value 4660, every 200 ms;
 *     its handler checks si_code SI_TIMER and the value;
 *   - POSIX timer 1 created and deleted (a gap in the ids), timer 2:
 *     CLOCK_REALTIME, SIGRTMIN+1, SIGEV_THREAD_ID to the main thread,
 *     one-shot in 1000 s (must keep its id and remaining time).
 *   - EXTRA more POSIX timers (ids 3 on), CLOCK_MONOTONIC, SIGRTMIN+1
 *     (ignored), one-shot, timer k in 10000 + 10 k s: every tick checks that
 *     timer k's remaining time is timer 3's + 10 k s (within 1 s), else
 *     logs "extra BAD <k>" and counts it as bad (a dump that mixed up the
 *     timers' remaining times: they are read in batches).
 * Every 100 ms the main loop logs "tick <n> rt <r> prof <p> alarms <a> bad <b>".
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>

#include "wl.h"

static int log_fd = -1;
static volatile sig_atomic_t rt_count, prof_count, alarm_count, bad_count;
static double alarm_set;

static void on_alarm(int sig)
{
	(void)sig;
	alarm_count++;
	wl_log(log_fd, "alarm %ld", (long)((wl_now() - alarm_set) * 1000));
}

static void on_prof(int sig)
{
	(void)sig;
	prof_count++;
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_code != SI_TIMER || si->si_value.sival_int != 4660)
		bad_count++;
	rt_count++;
}

static void handle(int sig, void (*fn)(int), void (*act)(int, siginfo_t *, void *))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	if (act) {
		sa.sa_sigaction = act;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
	} else {
		sa.sa_handler = fn;
		sa.sa_flags = SA_RESTART;
	}
	if (sigaction(sig, &sa, NULL) < 0)
		wl_die("sigaction %d: %s", sig, strerror(errno));
}

#define EXTRA 100

static timer_t make_timer(clockid_t clock, int sig, int value, bool to_thread)
{
	struct sigevent sev;
	timer_t id;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = to_thread ? SIGEV_THREAD_ID : SIGEV_SIGNAL;
	sev.sigev_signo = sig;
	sev.sigev_value.sival_int = value;
	if (to_thread)
		sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(clock, &sev, &id) < 0)
		wl_die("timer_create: %s", strerror(errno));
	return id;
}

static void arm(timer_t id, long value_ms, long interval_ms)
{
	struct itimerspec its = {
	    .it_value = {value_ms / 1000, value_ms % 1000 * 1000000},
	    .it_interval = {interval_ms / 1000, interval_ms % 1000 * 1000000},
	};

	if (timer_settime(id, 0, &its, NULL) < 0)
		wl_die("timer_settime: %s", strerror(errno));
}

static void burn(double secs)
{
	double end = wl_now() + secs;
	volatile unsigned long x = 0;

	while (wl_now() < end)
		x++;
}

static timer_t extra[EXTRA];

static double remaining(timer_t id)
{
	struct itimerspec its;

	if (timer_gettime(id, &its) < 0)
		return -1;
	return its.it_value.tv_sec + its.it_value.tv_nsec / 1e9;
}

static void check_extra(void)
{
	double base = remaining(extra[0]);

	for (int k = 1; k < EXTRA; k++) {
		double d = remaining(extra[k]) - base - 10.0 * k;

		if (d < -1 || d > 1) {
			bad_count++;
			wl_log(log_fd, "extra BAD %d", k);
		}
	}
}

int main(int argc, char **argv)
{
	struct itimerval prof = {{0, 10000}, {0, 10000}};
	timer_t t0, t1, t2;

	if (argc != 3)
		wl_die("usage: timers LOG READY");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	handle(SIGALRM, on_alarm, NULL);
	handle(SIGPROF, on_prof, NULL);
	handle(SIGRTMIN, NULL, on_rt);
	handle(SIGRTMIN + 1, SIG_IGN, NULL);
	t0 = make_timer(CLOCK_MONOTONIC, SIGRTMIN, 4660, false);
	t1 = make_timer(CLOCK_MONOTONIC, SIGRTMIN, 0, false);
	t2 = make_timer(CLOCK_REALTIME, SIGRTMIN + 1, 77, true);
	timer_delete(t1);
	wl_log(log_fd, "timers %ld %ld", (long)(intptr_t)t0, (long)(intptr_t)t2);
	arm(t0, 200, 200);
	arm(t2, 1000000, 0);
	for (int k = 0; k < EXTRA; k++) {
		extra[k] = make_timer(CLOCK_MONOTONIC, SIGRTMIN + 1, k, false);
		arm(extra[k], (10000L + 10L * k) * 1000, 0);
	}
	if (setitimer(ITIMER_PROF, &prof, NULL) < 0)
		wl_die("setitimer: %s", strerror(errno));
	alarm_set = wl_now();
	alarm(3);
	wl_ready(argv[2]);
	for (unsigned long tick = 1;; tick++) {
		burn(0.02);
		wl_sleep(0.08);
		check_extra();
		wl_log(log_fd, "tick %lu rt %d prof %d alarms %d bad %d", tick, (int)rt_count,
		       (int)prof_count, (int)alarm_count, (int)bad_count);
	}
}
