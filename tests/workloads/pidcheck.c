/* SPDX-License-Identifier: MIT */
/*
 * pidcheck LOG: every 100 ms, checks that the pids it sees are the ones it
 * had when it started: getpid(), getppid(), the pid field of
 * /proc/self/stat and the target of /proc/self, and the pid field of its
 * own /proc/PID/stat that it keeps open (position parked at 3, read with
 * pread: a file of a process in /proc, restored in the task); writes
 * "ok N pid P ppid Q" or "BAD N ..." to LOG. Dies with its parent
 * (PR_SET_PDEATHSIG, SIGKILL). Used by test_new_pidns: after a restore into
 * a new pid namespace every one of them must still be the saved pid.
 */
#include <fcntl.h>
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

/* The pid field of the /proc stat file kept open at fd; -2 if its position moved. */
static int kept_stat_pid(int fd)
{
	char buf[32] = {0};
	int pid = -1;

	if (lseek(fd, 0, SEEK_CUR) != 3)
		return -2;
	if (pread(fd, buf, sizeof(buf) - 1, 0) > 0 && sscanf(buf, "%d", &pid) != 1)
		pid = -1;
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
	int kept = open("/proc/self/stat", O_RDONLY);

	if (argc != 2) {
		fprintf(stderr, "usage: pidcheck LOG\n");
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != ppid0)
		return 1;
	log = fopen(argv[1], "a");
	if (!log || kept < 0 || lseek(kept, 3, SEEK_SET) != 3)
		return 1;
	setvbuf(log, NULL, _IOLBF, 0);
	for (unsigned long n = 1;; n++) {
		pid_t p = getpid(), pp = getppid();
		int sp = stat_pid(), sl = self_link(), kp = kept_stat_pid(kept);

		if (p != pid0 || pp != ppid0 || sp != pid0 || sl != pid0 || kp != pid0)
			fprintf(log,
				"BAD %lu getpid %d getppid %d stat %d /proc/self %d kept stat %d, "
				"want %d %d\n",
				n, p, pp, sp, sl, kp, pid0, ppid0);
		else
			fprintf(log, "ok %lu pid %d ppid %d\n", n, p, pp);
		nanosleep(&tick, NULL);
	}
}
