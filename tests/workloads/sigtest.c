/* SPDX-License-Identifier: MIT */
/*
 * sigtest LOG READY TRIGGER
 * sigtest --send PID SIGNO VALUE     (sigqueue helper for the tests)
 *
 * Signal state that a dump must carry over:
 * - SIGUSR1: SA_SIGINFO|SA_RESTART handler with SIGHUP in sa_mask; it logs
 *   "SIGUSR1 code <si_code> value <si_int> pid <si_pid> mask ok|BAD"
 *   (mask: SIGHUP and SIGUSR1 blocked while it runs, as sa_mask says).
 * - SIGUSR2 blocked, queued to itself with value 4660 before READY: pending
 *   at dump time. Same for SIGRTMIN, queued three times (values 1, 2, 3).
 * - SIGTERM ignored, SIGPIPE handled by SIG_DFL.
 * Once TRIGGER exists it logs "pending usr2 <0|1> rtmin <0|1>", unblocks
 * both and their handlers log "SIGUSR2 code .. value .. pid .." and
 * "SIGRTMIN value ..", then "unblocked".
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "wl.h"

static int log_fd = -1;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	sigset_t cur;
	bool mask_ok;

	sigprocmask(SIG_BLOCK, NULL, &cur);
	mask_ok =
	    sigismember(&cur, SIGHUP) && sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGUSR2);
	wl_log(log_fd, "SIGUSR1 code %d value %d pid %d mask %s", si->si_code,
	       si->si_value.sival_int, si->si_pid, mask_ok ? "ok" : "BAD");
	errno = saved;
}

static void on_usr2(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;

	wl_log(log_fd, "SIGUSR2 code %d value %d pid %d", si->si_code, si->si_value.sival_int,
	       si->si_pid);
	errno = saved;
}

static void on_rtmin(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;

	wl_log(log_fd, "SIGRTMIN value %d code %d", si->si_value.sival_int, si->si_code);
	errno = saved;
}

static void handle(int sig, void (*fn)(int, siginfo_t *, void *), int flags, int extra_mask)
{
	struct sigaction sa = {.sa_sigaction = fn, .sa_flags = SA_SIGINFO | flags};

	sigemptyset(&sa.sa_mask);
	if (extra_mask)
		sigaddset(&sa.sa_mask, extra_mask);
	if (sigaction(sig, &sa, NULL) < 0)
		wl_die("sigaction %d: %s", sig, strerror(errno));
}

static int send_mode(int argc, char **argv)
{
	union sigval v;

	if (argc != 5)
		wl_die("usage: sigtest --send PID SIGNO VALUE");
	v.sival_int = atoi(argv[4]);
	if (sigqueue(atoi(argv[2]), atoi(argv[3]), v) < 0)
		wl_die("sigqueue: %s", strerror(errno));
	return 0;
}

static void queue_self(int sig, int value)
{
	union sigval v = {.sival_int = value};

	if (sigqueue(getpid(), sig, v) < 0)
		wl_die("sigqueue self %d: %s", sig, strerror(errno));
}

int main(int argc, char **argv)
{
	sigset_t block;
	bool unblocked = false;

	if (argc > 1 && !strcmp(argv[1], "--send"))
		return send_mode(argc, argv);
	if (argc != 4)
		wl_die("usage: sigtest LOG READY TRIGGER");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);

	handle(SIGUSR1, on_usr1, SA_RESTART, SIGHUP);
	handle(SIGUSR2, on_usr2, 0, 0);
	handle(SIGRTMIN, on_rtmin, 0, 0);
	signal(SIGTERM, SIG_IGN);

	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &block, NULL);
	queue_self(SIGUSR2, 4660);
	for (int v = 1; v <= 3; v++)
		queue_self(SIGRTMIN, v);
	wl_log(log_fd, "queued pid %d", getpid());
	wl_ready(argv[2]);

	for (;;) {
		wl_sleep(0.05);
		if (unblocked || !wl_file_exists(argv[3]))
			continue;

		sigset_t pend;

		sigpending(&pend);
		wl_log(log_fd, "pending usr2 %d rtmin %d", sigismember(&pend, SIGUSR2),
		       sigismember(&pend, SIGRTMIN));
		sigprocmask(SIG_UNBLOCK, &block, NULL);
		unblocked = true;
		wl_log(log_fd, "unblocked");
	}
}
