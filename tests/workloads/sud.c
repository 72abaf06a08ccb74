/* SPDX-License-Identifier: MIT */
/*
 * sud LOG READY
 *
 * Syscall user dispatch (prctl PR_SET_SYSCALL_USER_DISPATCH), as an
 * emulator uses it: system calls made from libc pass, any other one raises
 * SIGSYS and is emulated by the handler. Three threads:
 *
 *   main   dispatch on, libc's code exempt, a selector byte set to "block"
 *          for good: a raw getpid from this program's own code is answered
 *          by the handler with 4242;
 *   plain  no dispatch: the raw getpid is the kernel's;
 *   nosel  dispatch on without a selector (always dispatched outside
 *          libc): the handler answers 4343.
 *
 * Every 100 ms each makes its raw getpid and logs "bad NAME: ..." when
 * the answer differs from its first one, "ok NAME N" every 500 ms; "start
 * NAME TID getpid V" first. nanosleep and write go through libc. A dump
 * that made its remote calls with the dispatch on would kill the program
 * with SIGSYS (the selector blocks everything outside libc all the time).
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "wl.h"

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#define SYSCALL_DISPATCH_FILTER_ALLOW 0
#define SYSCALL_DISPATCH_FILTER_BLOCK 1
#endif

static int log_fd;
static volatile char selector = SYSCALL_DISPATCH_FILTER_BLOCK;
static __thread long emulated; /* what the handler answers in this thread */
static uintptr_t libc_start, libc_len;
static pthread_barrier_t setup_done;

/* a system call from this program's own code, not libc's */
static long raw_getpid(void)
{
	long r;

	__asm__ volatile("syscall" : "=a"(r) : "a"((long)SYS_getpid) : "rcx", "r11", "memory");
	return r;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;

	(void)sig;
	uc->uc_mcontext.gregs[REG_RAX] = si->si_syscall == SYS_getpid ? emulated : -ENOSYS;
}

/* the executable mapping of libc (the one holding nanosleep) */
static void find_libc(void)
{
	uintptr_t want = (uintptr_t)&nanosleep, s, e;
	char line[512], perms[8];
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		wl_die("/proc/self/maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) == 3 && s <= want && want < e) {
			libc_start = s;
			libc_len = e - s;
		}
	fclose(f);
	if (!libc_len)
		wl_die("no mapping holds nanosleep");
}

static void dispatch_on(char *sel)
{
	if (prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, libc_start, libc_len, sel) < 0)
		wl_die("PR_SET_SYSCALL_USER_DISPATCH: %s", strerror(errno));
}

static void nap(void)
{
	struct timespec ts = {0, 100 * 1000 * 1000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void run(const char *name, const char *ready)
{
	long v0 = raw_getpid();

	wl_log(log_fd, "start %s %ld getpid %ld", name, (long)syscall(SYS_gettid), v0);
	if (ready)
		wl_ready(ready);
	for (unsigned long n = 0;; n++) {
		long v = raw_getpid();

		if (v != v0)
			wl_log(log_fd, "bad %s: getpid %ld, was %ld", name, v, v0);
		if (n % 5 == 0)
			wl_log(log_fd, "ok %s %lu", name, n / 5 + 1);
		nap();
	}
}

static void *plain_main(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&setup_done);
	run("plain", NULL);
	return NULL;
}

static void *nosel_main(void *arg)
{
	(void)arg;
	emulated = 4343;
	dispatch_on(NULL);
	pthread_barrier_wait(&setup_done);
	run("nosel", NULL);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	pthread_t plain, nosel;

	if (argc != 3)
		wl_die("usage: sud LOG READY");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	find_libc();
	sigaction(SIGSYS, &sa, NULL);
	pthread_barrier_init(&setup_done, NULL, 3);
	if (pthread_create(&plain, NULL, plain_main, NULL) ||
	    pthread_create(&nosel, NULL, nosel_main, NULL))
		wl_die("pthread_create");
	emulated = 4242;
	dispatch_on((char *)&selector);
	pthread_barrier_wait(&setup_done);
	run("main", argv[2]);
	return 0;
}
