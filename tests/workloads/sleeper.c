/* SPDX-License-Identifier: MIT */
/*
 * sleeper MODE LOG READY [SECS]
 *
 * Spends its life blocked in one syscall so that a dump catches it there:
 *   nanosleep  loop of SECS-long nanosleeps (default 1); logs every EINTR
 *              wake ("wake EINTR left <ms>") and "tick <n>" after each full
 *              sleep, n growing by one.
 *   wait4      round n: forks a child that sleeps SECS (default 3) and exits
 *              with status 40+n%10; the parent blocks in wait4 and logs
 *              "round <n> child <pid> status <s> ok|BAD".
 *   pause      SIGUSR1 handler logs "got SIGUSR1 <k>"; the main loop blocks
 *              in pause() and logs "pause returned <k> errno EINTR".
 *   zombie     forks a child that exits at once with status 7 and leaves it
 *              a zombie ("zombie <pid>"); once the file SECS names exists
 *              (a path here), reaps it: "reaped <pid> status 7 ok|BAD".
 * READY is created (holding the pid) once the program is about to block.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "wl.h"

static int log_fd = -1;
static volatile sig_atomic_t usr1_count;

static void run_nanosleep(const char *ready, double secs)
{
	unsigned long tick = 0;
	int announced = 0;

	for (;;) {
		double deadline = wl_now() + secs;

		if (!announced++)
			wl_ready(ready);
		for (;;) {
			double left = deadline - wl_now();
			struct timespec ts;

			if (left <= 0)
				break;
			ts.tv_sec = (time_t)left;
			ts.tv_nsec = (long)((left - ts.tv_sec) * 1e9);
			if (nanosleep(&ts, NULL) == 0)
				break;
			if (errno != EINTR)
				wl_die("nanosleep: %s", strerror(errno));
			wl_log(log_fd, "wake EINTR left %ld ms",
			       (long)((deadline - wl_now()) * 1000));
		}
		wl_log(log_fd, "tick %lu", ++tick);
	}
}

static void run_wait4(const char *ready, double secs)
{
	for (unsigned long round = 0;; round++) {
		int want = 40 + round % 10, status;
		struct rusage ru;
		pid_t child = fork(), got;

		if (child < 0)
			wl_die("fork: %s", strerror(errno));
		if (child == 0) {
			wl_sleep(secs);
			_exit(want);
		}
		wl_log(log_fd, "round %lu child %d forked", round, child);
		if (round == 0)
			wl_ready(ready);
		while ((got = wait4(child, &status, 0, &ru)) < 0 && errno == EINTR)
			wl_log(log_fd, "wait4 EINTR");
		if (got != child) {
			wl_log(log_fd, "round %lu wait4 returned %d errno %d BAD", round, got,
			       errno);
			wl_sleep(secs);
			continue;
		}
		wl_log(log_fd, "round %lu child %d status %d %s", round, child,
		       WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		       WIFEXITED(status) && WEXITSTATUS(status) == want ? "ok" : "BAD");
	}
}

static void on_usr1(int sig)
{
	int saved = errno;

	usr1_count++;
	wl_log(log_fd, "got SIGUSR1 %d", (int)usr1_count);
	errno = saved;
}

static void run_pause(const char *ready)
{
	struct sigaction sa = {.sa_handler = on_usr1};

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		wl_die("sigaction: %s", strerror(errno));
	wl_ready(ready);
	for (;;) {
		int r = pause();

		wl_log(log_fd, "pause returned %d count %d errno %s", r, (int)usr1_count,
		       errno == EINTR ? "EINTR" : strerror(errno));
	}
}

static void run_zombie(const char *ready, const char *trigger)
{
	pid_t child = fork(), got;
	int status;

	if (child < 0)
		wl_die("fork: %s", strerror(errno));
	if (child == 0)
		_exit(7);
	wl_log(log_fd, "zombie %d", child);
	wl_ready(ready);
	while (!wl_file_exists(trigger))
		wl_sleep(0.05);
	while ((got = waitpid(child, &status, 0)) < 0 && errno == EINTR)
		;
	wl_log(log_fd, "reaped %d status %d %s", got, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
	       got == child && WIFEXITED(status) && WEXITSTATUS(status) == 7 ? "ok" : "BAD");
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	double secs;

	if (argc < 4)
		wl_die("usage: sleeper nanosleep|wait4|pause LOG READY [SECS] | zombie LOG READY "
		       "TRIGGER");
	wl_close_inherited();
	log_fd = wl_open_log(argv[2]);
	if (!strcmp(argv[1], "nanosleep")) {
		secs = argc > 4 ? atof(argv[4]) : 1.0;
		run_nanosleep(argv[3], secs);
	} else if (!strcmp(argv[1], "wait4")) {
		secs = argc > 4 ? atof(argv[4]) : 3.0;
		run_wait4(argv[3], secs);
	} else if (!strcmp(argv[1], "pause")) {
		run_pause(argv[3]);
	} else if (!strcmp(argv[1], "zombie") && argc > 4) {
		run_zombie(argv[3], argv[4]);
	}
	wl_die("sleeper: unknown mode %s", argv[1]);
}
