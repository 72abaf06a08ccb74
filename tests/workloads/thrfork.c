/* SPDX-License-Identifier: MIT */
/*
 * thrfork LOG READY STOP
 *
 * A process whose worker thread (not the main one) forks: the kernel lists
 * that child under the worker (/proc/PID/task/TID/children), not under the
 * main thread. The child counts in its own memory and logs
 * "child <pid> <n>" every 100 ms; the main thread logs "main <n>". When STOP
 * exists the child exits with status 7 and the main thread reaps it with
 * waitpid (a child of another thread of the group can be waited for by any
 * thread), logs "reaped <pid> status <s>" and exits 0.
 */
#include <pthread.h>
#include <sys/wait.h>

#include "wl.h"

static int log_fd;
static const char *stop_path;
static volatile pid_t child;

static void child_main(void)
{
	unsigned long n = 0;

	for (;;) {
		wl_log(log_fd, "child %d %lu", getpid(), ++n);
		if (wl_file_exists(stop_path))
			_exit(7);
		wl_sleep(0.1);
	}
}

static void *worker(void *arg)
{
	pid_t pid = fork();

	(void)arg;
	if (pid < 0)
		wl_die("thrfork: fork: %s", strerror(errno));
	if (pid == 0)
		child_main();
	child = pid;
	for (;;)
		wl_sleep(1);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long n = 0;
	pthread_t th;
	int status;

	if (argc != 4)
		wl_die("usage: thrfork LOG READY STOP");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	stop_path = argv[3];
	if (pthread_create(&th, NULL, worker, NULL))
		wl_die("thrfork: pthread_create failed");
	while (!child)
		wl_sleep(0.01);
	wl_ready(argv[2]);
	while (!wl_file_exists(stop_path)) {
		wl_log(log_fd, "main %lu", ++n);
		wl_sleep(0.1);
	}
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			wl_die("thrfork: waitpid %d: %s", child, strerror(errno));
	wl_log(log_fd, "reaped %d status %d", child, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}
