/* SPDX-License-Identifier: MIT */
/*
 * fidelity MODE LOG READY [ARGS...]
 *
 * Small programs that check their own state after a restore (docs/fidelity.md);
 * each logs "ok N" every 500 ms while its state is what it set up, and
 * "bad WHAT: ..." on any difference.
 *
 *   stop    forks a child that moves to a process group of its own and is
 *           stopped by SIGTSTP; the parent logs "stopped SIG" for each stop
 *           its waitpid(WUNTRACED) reports, "continued" and "exited ..."
 *           (the child logs "tick N" every 100 ms while it runs).
 */
#include <signal.h>
#include <sys/wait.h>

#include "wl.h"

static int logfd;

/* ---- stop ------------------------------------------------------------------------------------ */

static void stop_main(const char *ready)
{
	pid_t kid = fork();
	int st;

	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid == 0) {
		setpgid(0, 0);
		for (long n = 1;; n++) {
			wl_log(logfd, "tick %ld", n);
			wl_sleep(0.1);
		}
	}
	/* both sides, so that the group exists before the signal is sent */
	setpgid(kid, kid);
	if (kill(kid, SIGTSTP) < 0)
		wl_die("kill: %s", strerror(errno));
	if (waitpid(kid, &st, WUNTRACED) != kid || !WIFSTOPPED(st))
		wl_die("waitpid: child not stopped (status %#x)", st);
	wl_log(logfd, "child %d stopped %d", kid, WSTOPSIG(st));
	wl_ready(ready);
	for (long n = 1;; n++) {
		pid_t p = waitpid(kid, &st, WUNTRACED | WCONTINUED | WNOHANG);

		if (p == kid && WIFSTOPPED(st))
			wl_log(logfd, "stopped %d", WSTOPSIG(st));
		else if (p == kid && WIFCONTINUED(st))
			wl_log(logfd, "continued");
		else if (p == kid)
			wl_log(logfd, "exited %#x", st);
		if (n % 5 == 0)
			wl_log(logfd, "ok %ld", n / 5);
		wl_sleep(0.1);
	}
}

int main(int argc, char **argv)
{
	wl_close_inherited();
	if (argc < 4)
		wl_die("usage: fidelity MODE LOG READY [ARGS...]");
	logfd = wl_open_log(argv[2]);
	if (!strcmp(argv[1], "stop"))
		stop_main(argv[3]);
	wl_die("fidelity: unknown mode %s", argv[1]);
	return 2;
}
