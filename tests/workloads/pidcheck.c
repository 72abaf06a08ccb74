/* SPDX-License-Identifier: MIT */
/*
 * pidcheck LOG: every 100 ms, checks that the pids it sees are the ones it
 * had when it started: getpid(), getppid(), the pid field of
 * /proc/self/stat and the target of /proc/self; writes
 * "ok N pid P ppid Q" or "BAD N ..." to LOG. Dies with its parent
 * (PR_SET_PDEATHSIG, SIGKILL). Used by test_new_pidns: after a restore into
 * a new pid namespace every one of them must still be the saved pid.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static int stat_pid(void)
{
	FILE *f = fopen("/proc/self/stat", "r");
	int pid = -1;

	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = -1;
		fclose(f);
	}
	return pid;
}

static int self_link(void)
{
	char buf[64];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return atoi(buf);
}

int main(int argc, char **argv)
{
	pid_t pid0 = getpid(), ppid0 = getppid();
	struct timespec tick = {0, 100 * 1000 * 1000};
	FILE *log;

	if (argc != 2) {
		fprintf(stderr, "usage: pidcheck LOG\n");
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != ppid0)
		return 1;
	log = fopen(argv[1], "a");
	if (!log)
		return 1;
	setvbuf(log, NULL, _IOLBF, 0);
	for (unsigned long n = 1;; n++) {
		pid_t p = getpid(), pp = getppid();
		int sp = stat_pid(), sl = self_link();

		if (p != pid0 || pp != ppid0 || sp != pid0 || sl != pid0)
			fprintf(log,
				"BAD %lu getpid %d getppid %d stat %d /proc/self %d, want %d %d\n",
				n, p, pp, sp, sl, pid0, ppid0);
		else
			fprintf(log, "ok %lu pid %d ppid %d\n", n, p, pp);
		nanosleep(&tick, NULL);
	}
}
