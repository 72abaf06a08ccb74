/* SPDX-License-Identifier: MIT */
/*
 * cgtree LOG READY: a tree for test_cgroups. The root forks a child with
 * two more threads; every thread logs "thread PID TID" once, then
 * "tick PID TID N" every 100 ms (so the test sees each run again after
 * restore). READY gets the root's pid once every thread has logged.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "wl.h"

static int log_fd;

static void *loop(void *arg)
{
	pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);

	(void)arg;
	wl_log(log_fd, "thread %d %d\n", (int)pid, (int)tid);
	for (unsigned long n = 1;; n++) {
		wl_sleep(0.1);
		wl_log(log_fd, "tick %d %d %lu\n", (int)pid, (int)tid, n);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int p[2];
	char c;
	pid_t child;

	if (argc != 3)
		wl_die("usage: cgtree LOG READY");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	if (pipe(p) < 0)
		wl_die("pipe: %s", strerror(errno));
	child = fork();
	if (child < 0)
		wl_die("fork: %s", strerror(errno));
	if (child == 0) {
		pthread_t th;

		close(p[0]);
		for (int i = 0; i < 2; i++)
			if (pthread_create(&th, NULL, loop, NULL))
				wl_die("pthread_create");
		if (write(p[1], "x", 1) != 1)
			wl_die("write");
		close(p[1]);
		loop(NULL);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		wl_die("the child did not start");
	close(p[0]);
	/* the child's threads log their line first thing: give them the time */
	wl_sleep(0.3);
	wl_ready(argv[2]);
	loop(NULL);
	return 0;
}
