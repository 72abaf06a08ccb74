/* SPDX-License-Identifier: MIT */
/*
 * mdwe LOG READY
 *
 * Memory-deny-write-execute (prctl PR_SET_MDWE, Linux 6.3+): once set it
 * cannot be cleared, and mprotect may no longer make a mapping executable
 * that was not. A tree of three processes in three states:
 *
 *   main  PR_MDWE_REFUSE_EXEC_GAIN, set before it forks "heir", which
 *         inherits it;
 *   heir  (inherited) PR_MDWE_REFUSE_EXEC_GAIN;
 *   lone  forked before main set it, sets REFUSE_EXEC_GAIN|NO_INHERIT itself
 *         and forks "free", which does not inherit it;
 *   free  no MDWE.
 *
 * Every 100 ms each reads PR_GET_MDWE and tries to make a page of its own
 * (mapped read-write) executable, and logs "bad NAME: ..." when either
 * differs from what it saw right after its setup, "ok NAME N" every 500 ms.
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "wl.h"

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif
#ifndef PR_MDWE_REFUSE_EXEC_GAIN
#define PR_MDWE_REFUSE_EXEC_GAIN (1UL << 0)
#endif
#ifndef PR_MDWE_NO_INHERIT
#define PR_MDWE_NO_INHERIT (1UL << 1)
#endif

static int log_fd;

/* what this process can observe: its flags, and whether exec may be gained */
static void observe(long *flags, int *gain)
{
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	*flags = prctl(PR_GET_MDWE, 0, 0, 0, 0);
	*gain = mprotect(p, 4096, PROT_READ | PROT_EXEC) == 0 ? 1 : -errno;
	munmap(p, 4096);
}

static void run(const char *name, const char *ready)
{
	long flags0, flags;
	int gain0, gain;

	observe(&flags0, &gain0);
	wl_log(log_fd, "start %s %d mdwe %ld gain %d", name, getpid(), flags0, gain0);
	if (ready)
		wl_ready(ready);
	for (unsigned long n = 0;; n++) {
		observe(&flags, &gain);
		if (flags != flags0 || gain != gain0)
			wl_log(log_fd, "bad %s: mdwe was %ld now %ld, exec gain was %d now %d",
			       name, flags0, flags, gain0, gain);
		if (n % 5 == 0)
			wl_log(log_fd, "ok %s %lu", name, n / 5 + 1);
		wl_sleep(0.1);
	}
}

static pid_t spawn(void (*fn)(void))
{
	pid_t pid = fork();

	if (pid < 0)
		wl_die("fork: %s", strerror(errno));
	if (pid == 0) {
		fn();
		_exit(0);
	}
	return pid;
}

static void free_main(void)
{
	run("free", NULL);
}
static void heir_main(void)
{
	run("heir", NULL);
}

static void lone_main(void)
{
	if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN | PR_MDWE_NO_INHERIT, 0, 0, 0) < 0)
		wl_die("lone: PR_SET_MDWE: %s", strerror(errno));
	spawn(free_main);
	run("lone", NULL);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		wl_die("usage: mdwe LOG READY");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	spawn(lone_main);
	if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) < 0)
		wl_die("main: PR_SET_MDWE: %s", strerror(errno));
	spawn(heir_main);
	run("main", argv[2]);
	return 0;
}
