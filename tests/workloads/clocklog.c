/* SPDX-License-Identifier: MIT */
/*
 * clocklog LOG READY N: every 100 ms writes "tick MONO BOOT REAL" (seconds
 * of CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME) to LOG. Holds four
 * timers of N seconds on CLOCK_MONOTONIC (ITIMER_REAL is on it too): a
 * relative timerfd, an absolute (TFD_TIMER_ABSTIME) timerfd, a POSIX timer
 * and an itimer; when one fires it writes "fired KIND armed A at F" (its
 * arming and firing times on CLOCK_MONOTONIC) and arms it again for N s.
 * test_continue_clocks: with --continue-clocks, F - A stays N across a
 * dump and restore, and the clocks never step by the time spent dumped.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t posix_fired, alarm_fired;

static void on_posix(int sig)
{
	(void)sig;
	posix_fired = 1;
}

static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

static double now(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timespec ts_of(double s)
{
	return (struct timespec){.tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9)};
}

int main(int argc, char **argv)
{
	struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
	double armed[4], n;
	const char *kind[4] = {"timerfd", "timerfd-abs", "posix", "itimer"};
	int tfd, afd;
	timer_t pt;
	FILE *log, *ready;

	if (argc != 4) {
		fprintf(stderr, "usage: clocklog LOG READY N\n");
		return 2;
	}
	n = atof(argv[3]);
	signal(SIGUSR1, on_posix);
	signal(SIGALRM, on_alarm);
	log = fopen(argv[1], "a");
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	afd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	if (!log || tfd < 0 || afd < 0 || timer_create(CLOCK_MONOTONIC, &sev, &pt) < 0)
		return 1;
	setvbuf(log, NULL, _IOLBF, 0);
	for (int k = 0; k < 4; k++) {
		struct itimerspec its = {.it_value = ts_of(n)};
		struct itimerval iv = {.it_value = {.tv_sec = (time_t)n}};

		armed[k] = now(CLOCK_MONOTONIC);
		if (k == 0)
			timerfd_settime(tfd, 0, &its, NULL);
		else if (k == 1) {
			its.it_value = ts_of(armed[k] + n);
			timerfd_settime(afd, TFD_TIMER_ABSTIME, &its, NULL);
		} else if (k == 2)
			timer_settime(pt, 0, &its, NULL);
		else
			setitimer(ITIMER_REAL, &iv, NULL);
	}
	ready = fopen(argv[2], "w");
	if (!ready)
		return 1;
	fprintf(ready, "%d\n", getpid());
	fclose(ready);
	for (;;) {
		struct timespec tick = {0, 100 * 1000 * 1000};
		uint64_t exp;
		bool fired[4];

		fprintf(log, "tick %.6f %.6f %.6f\n", now(CLOCK_MONOTONIC), now(CLOCK_BOOTTIME),
			now(CLOCK_REALTIME));
		fired[0] = read(tfd, &exp, sizeof(exp)) == sizeof(exp);
		fired[1] = read(afd, &exp, sizeof(exp)) == sizeof(exp);
		fired[2] = posix_fired;
		fired[3] = alarm_fired;
		posix_fired = alarm_fired = 0;
		for (int k = 0; k < 4; k++) {
			struct itimerspec its = {.it_value = ts_of(n)};
			struct itimerval iv = {.it_value = {.tv_sec = (time_t)n}};
			double t = now(CLOCK_MONOTONIC);

			if (!fired[k])
				continue;
			fprintf(log, "fired %s armed %.6f at %.6f\n", kind[k], armed[k], t);
			armed[k] = t;
			if (k == 0)
				timerfd_settime(tfd, 0, &its, NULL);
			else if (k == 1) {
				its.it_value = ts_of(t + n);
				timerfd_settime(afd, TFD_TIMER_ABSTIME, &its, NULL);
			} else if (k == 2)
				timer_settime(pt, 0, &its, NULL);
			else
				setitimer(ITIMER_REAL, &iv, NULL);
		}
		nanosleep(&tick, NULL);
	}
}
