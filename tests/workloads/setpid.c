/* SPDX-License-Identifier: MIT */
/*
 * setpid PID CMD [ARG...]: run CMD as a new process with exactly pid PID
 * (clone3 with set_tid; needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN).
 * The parent exits at once (0, or 1 with a message if the pid is taken),
 * so CMD is adopted by the nearest child subreaper. Tests use it to take
 * the pids of a dumped tree (test_new_pidns).
 */
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	pid_t want;
	struct clone_args args = {.exit_signal = SIGCHLD};
	long pid;

	if (argc < 3) {
		fprintf(stderr, "usage: setpid PID CMD [ARG...]\n");
		return 2;
	}
	want = (pid_t)atoi(argv[1]);
	args.set_tid = (uint64_t)(uintptr_t)&want;
	args.set_tid_size = 1;
	pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0) {
		fprintf(stderr, "setpid: clone3 with set_tid %d: %s\n", want, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	return 0;
}
