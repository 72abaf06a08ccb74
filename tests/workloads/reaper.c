/* SPDX-License-Identifier: MIT */
/*
 * reaper [--timeout SECS] [--quiet] -- cmd args...
 *
 * Runs cmd as a child subreaper so that nothing an end-to-end test starts
 * can outlive it: every orphan of the test (a dumped tree, a restored tree
 * reparented away from ckpt-restore, a stray sleep) is adopted here and
 * reaped. When cmd exits, every remaining descendant is SIGKILLed and
 * reaped. On timeout (or SIGTERM/SIGINT/SIGHUP) everything, cmd included,
 * is killed and reaper exits 124 (128+sig for a signal).
 *
 * PID 1 reaps orphans only about once a second here; being the subreaper
 * also means a killed tree's pids are freed as soon as we reap them, which
 * is what a test that restores right after a dump needs.
 *
 * Exit status: cmd's exit code, 128+N if cmd died of signal N, 124 on
 * timeout, 125 on a usage or setup error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PIDS 32768

struct reaper {
	pid_t self;
	pid_t cmd;
	bool quiet;
	int cmd_status; /* wait status of cmd, valid once cmd_done */
	bool cmd_done;
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reap every child that has exited; remember cmd's status. */
static void reap_all(struct reaper *r)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);

		if (pid <= 0)
			return;
		if (pid == r->cmd) {
			r->cmd_status = status;
			r->cmd_done = true;
		}
	}
}

/* ppid and comm of pid from /proc/PID/stat; false if it is gone. */
static bool read_stat(pid_t pid, pid_t *ppid, char *comm, size_t comm_len)
{
	char path[64], buf[512];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';

	/* comm may contain spaces and parentheses: the last ')' ends it. */
	char *open_paren = strchr(buf, '(');
	char *close_paren = strrchr(buf, ')');
	char state;

	if (!open_paren || !close_paren || close_paren < open_paren)
		return false;
	snprintf(comm, comm_len, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
	if (sscanf(close_paren + 2, "%c %d", &state, ppid) != 2)
		return false;
	return true;
}

/*
 * Collect every descendant of ours: build the ppid table of all processes,
 * then keep those whose ppid chain reaches us. Returns the count.
 */
static int find_descendants(struct reaper *r, pid_t *out, int max, char (*comms)[32])
{
	static pid_t ppid_of[MAX_PIDS + 1];
	static char comm_of[MAX_PIDS + 1][32];
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	memset(ppid_of, 0, sizeof(ppid_of));
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		pid_t ppid;

		if (*end || pid <= 0 || pid > MAX_PIDS)
			continue;
		if (read_stat(pid, &ppid, comm_of[pid], sizeof(comm_of[pid])))
			ppid_of[pid] = ppid;
	}
	closedir(d);

	for (pid_t pid = 1; pid <= MAX_PIDS && n < max; pid++) {
		pid_t p = ppid_of[pid];
		int depth = 0;

		if (!p || pid == r->self)
			continue;
		while (p && p != r->self && p <= MAX_PIDS && depth++ < 4096)
			p = ppid_of[p];
		if (p == r->self) {
			if (comms)
				snprintf(comms[n], sizeof(comms[n]), "%s", comm_of[pid]);
			out[n++] = pid;
		}
	}
	return n;
}

/*
 * SIGKILL and reap every descendant until none is left. A task forking
 * while we kill its parent leaves an orphan that is reparented to us, so
 * repeat the walk; bounded by a deadline.
 */
static void kill_descendants(struct reaper *r, const char *why)
{
	static pid_t pids[MAX_PIDS];
	static char comms[MAX_PIDS][32];
	double deadline = now_mono() + 10.0;
	bool reported = false;

	while (now_mono() < deadline) {
		int n = find_descendants(r, pids, MAX_PIDS, comms);

		reap_all(r);
		if (n == 0)
			break;
		for (int i = 0; i < n; i++) {
			if (!r->quiet && !reported && pids[i] != r->cmd)
				fprintf(stderr, "reaper: %s: killing leftover pid %d (%s)\n", why,
					pids[i], comms[i]);
			kill(pids[i], SIGKILL);
		}
		reported = true;
		usleep(10000);
		reap_all(r);
	}
	/* Wait (bounded) for the last ones to be reaped. */
	while (now_mono() < deadline) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG | __WALL);

		if (pid < 0 && errno == ECHILD)
			break;
		if (pid == r->cmd) {
			r->cmd_status = status;
			r->cmd_done = true;
		}
		if (pid <= 0)
			usleep(5000);
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: reaper [--timeout SECS] [--quiet] -- cmd [args...]\n");
	return 125;
}

static pid_t spawn(char **argv, const sigset_t *oldmask)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	/* A test must start from a clean fd table: no inherited pipes. */
	syscall(SYS_close_range, 3, ~0U, 0);
	execvp(argv[0], argv);
	fprintf(stderr, "reaper: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int main(int argc, char **argv)
{
	struct reaper r = {.self = getpid()};
	double timeout = 0;
	sigset_t mask, oldmask;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			timeout = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--quiet")) {
			r.quiet = true;
		} else {
			return usage();
		}
	}
	if (i >= argc)
		return usage();

	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		perror("reaper: PR_SET_CHILD_SUBREAPER");
		return 125;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);

	r.cmd = spawn(&argv[i], &oldmask);
	if (r.cmd < 0) {
		perror("reaper: fork");
		return 125;
	}

	double deadline = timeout > 0 ? now_mono() + timeout : 0;
	int exit_code = -1;

	while (!r.cmd_done) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
		siginfo_t si;
		int sig;

		reap_all(&r);
		if (r.cmd_done)
			break;
		if (deadline && now_mono() > deadline) {
			fprintf(stderr, "reaper: timeout after %.0f s, killing everything\n",
				timeout);
			exit_code = 124;
			break;
		}
		sig = sigtimedwait(&mask, &si, &ts);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
			fprintf(stderr, "reaper: got signal %d, killing everything\n", sig);
			exit_code = 128 + sig;
			break;
		}
	}

	kill_descendants(&r, r.cmd_done ? "command finished" : "aborting");
	if (exit_code >= 0)
		return exit_code;
	if (WIFEXITED(r.cmd_status))
		return WEXITSTATUS(r.cmd_status);
	if (WIFSIGNALED(r.cmd_status))
		return 128 + WTERMSIG(r.cmd_status);
	return 125;
}
