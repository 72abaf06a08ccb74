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
 *   attr [setlogin]  sets its oom_score_adj to 345 and forks a child that
 *           sets its own to 678 (with setlogin, the child also sets its audit
 *           login uid to 1234, which draws a new session id); both check
 *           their oom_score_adj, loginuid and sessionid every 100 ms.
 */
#include <signal.h>
#include <stdbool.h>
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

/* ---- attr ------------------------------------------------------------------------------------ */

static long read_num(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

static void write_str(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, v, strlen(v)) != (ssize_t)strlen(v))
		wl_die("write %s to %s: %s", v, path, strerror(errno));
	close(fd);
}

static void attr_watch(const char *name)
{
	long oom = read_num("/proc/self/oom_score_adj");
	long uid = read_num("/proc/self/loginuid"), sid = read_num("/proc/self/sessionid");

	wl_log(logfd, "start %s pid %d oom %ld loginuid %ld sessionid %ld", name, getpid(), oom,
	       uid, sid);
	for (long n = 1;; n++) {
		long o = read_num("/proc/self/oom_score_adj");
		long u = read_num("/proc/self/loginuid"), s = read_num("/proc/self/sessionid");

		if (o != oom)
			wl_log(logfd, "bad %s: oom_score_adj was %ld now %ld", name, oom, o);
		if (u != uid || s != sid)
			wl_log(logfd, "bad %s: loginuid/sessionid were %ld/%ld now %ld/%ld", name,
			       uid, sid, u, s);
		if (n % 5 == 0)
			wl_log(logfd, "ok %s %ld", name, n / 5);
		wl_sleep(0.1);
	}
}

static void attr_main(const char *ready, bool setlogin)
{
	pid_t kid;

	write_str("/proc/self/oom_score_adj", "345");
	kid = fork();
	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid == 0) {
		write_str("/proc/self/oom_score_adj", "678");
		if (setlogin)
			write_str("/proc/self/loginuid", "1234");
		attr_watch("child");
	}
	wl_ready(ready);
	attr_watch("main");
}

int main(int argc, char **argv)
{
	wl_close_inherited();
	if (argc < 4)
		wl_die("usage: fidelity MODE LOG READY [ARGS...]");
	logfd = wl_open_log(argv[2]);
	if (!strcmp(argv[1], "stop"))
		stop_main(argv[3]);
	if (!strcmp(argv[1], "attr"))
		attr_main(argv[3], argc > 4 && !strcmp(argv[4], "setlogin"));
	wl_die("fidelity: unknown mode %s", argv[1]);
	return 2;
}
