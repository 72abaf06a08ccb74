/* SPDX-License-Identifier: MIT */
/*
 * bench/scale.c KIND N READY: holds N of one kind of resource for
 * bench/scale.sh, writes its pid to READY once they exist and then waits:
 *   threads  N threads besides the main one, each blocked in a futex wait
 *   procs    N processes in all (the root and N-1 children), each paused
 *   fds      N fds, each its own open file description of /dev/null
 *   maps     N private anonymous mappings of one page each, touched, with
 *            alternating protections so that none merge
 *   shared   N processes in all sharing one open file description (fd 3,
 *            one file opened by the root before it forks)
 * A process that finds something missing after a restore has nothing to
 * report: the bench checks that it runs, the tests check the state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned int never;

static void die(const char *what)
{
	fprintf(stderr, "scale: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		syscall(SYS_futex, &never, FUTEX_WAIT, 0, NULL, NULL, 0);
	return NULL;
}

static void ready(const char *path)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", getpid()) < 0 || fclose(f) != 0 || rename(tmp, path) < 0)
		die("writing the ready file");
}

static void forks(long n)
{
	for (long i = 1; i < n; i++) {
		pid_t p = fork();

		if (p < 0)
			die("fork");
		if (p == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
	}
}

int main(int argc, char **argv)
{
	long n;

	if (argc != 4) {
		fprintf(stderr, "usage: scale threads|procs|fds|maps|shared N READY\n");
		return 2;
	}
	n = atol(argv[2]);
	syscall(SYS_close_range, 3, ~0U, 0); /* nothing inherited (a pipe would be refused) */
	if (!strcmp(argv[1], "threads")) {
		for (long i = 0; i < n; i++) {
			pthread_t t;
			pthread_attr_t a;

			pthread_attr_init(&a);
			pthread_attr_setstacksize(&a, 64 * 1024);
			if (pthread_create(&t, &a, sleeper, NULL) != 0)
				die("pthread_create");
		}
	} else if (!strcmp(argv[1], "procs")) {
		forks(n);
	} else if (!strcmp(argv[1], "fds")) {
		struct rlimit rl;

		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		for (long i = 0; i < n; i++)
			if (open("/dev/null", O_RDONLY) < 0)
				die("open /dev/null");
	} else if (!strcmp(argv[1], "maps")) {
		for (long i = 0; i < n; i++) {
			char *p = mmap(NULL, 4096, i % 2 ? PROT_READ : PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p == MAP_FAILED)
				die("mmap");
			if (!(i % 2))
				p[0] = 1;
		}
	} else if (!strcmp(argv[1], "shared")) {
		int fd = open("/dev/null", O_RDONLY);

		if (fd < 0)
			die("open /dev/null");
		forks(n);
	} else {
		fprintf(stderr, "scale: unknown kind %s\n", argv[1]);
		return 2;
	}
	ready(argv[3]);
	for (;;)
		pause();
}
