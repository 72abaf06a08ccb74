/* SPDX-License-Identifier: MIT */
/*
 * sigfreeze LOG READY MIB
 *
 * Two threads waiting in system calls that a signal with a handler must
 * interrupt: the main thread in read() of an empty pipe, a second thread in
 * pause(). SIGUSR1 (taken by the main thread only) and SIGUSR2 (the pause
 * thread only) have handlers installed without SA_RESTART, so the kernel
 * makes read() and pause() return EINTR once the handler has run. MIB MiB
 * of memory are filled so that a dump takes a while. Logs:
 *   "handler usr1 <n>" / "handler usr2 <n>"   from the handlers
 *   "read EINTR <n>"  / "pause EINTR <n>"     after the call returned
 *   "read RESTARTED"                          if read() returned anything else
 * and creates READY (the test then waits for both threads to be in their
 * calls: /proc/PID/task/TID/syscall).
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

#include "wl.h"

static int log_fd;
static volatile sig_atomic_t usr1, usr2, pause_waiting;

static void on_usr1(int sig)
{
	(void)sig;
	usr1++;
	wl_log(log_fd, "handler usr1 %d", (int)usr1);
}

static void on_usr2(int sig)
{
	(void)sig;
	usr2++;
	wl_log(log_fd, "handler usr2 %d", (int)usr2);
}

static void block(int sig)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *pauser(void *arg)
{
	(void)arg;
	block(SIGUSR1);
	for (;;) {
		pause_waiting = 1;
		pause();
		wl_log(log_fd, "pause %s %d", errno == EINTR ? "EINTR" : "RETURNED", (int)usr2);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {0};
	pthread_t th;
	int p[2];
	size_t mib;
	char *mem;

	if (argc != 4)
		wl_die("usage: sigfreeze LOG READY MIB");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	mib = strtoul(argv[3], NULL, 10);
	mem = mmap(NULL, (mib ? mib : 1) << 20, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		wl_die("sigfreeze: mmap: %s", strerror(errno));
	for (size_t i = 0; i < (mib << 20); i += 4096)
		mem[i] = (char)(i >> 12) | 1;
	sa.sa_handler = on_usr1; /* no SA_RESTART */
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	if (pthread_create(&th, NULL, pauser, NULL))
		wl_die("sigfreeze: pthread_create failed");
	block(SIGUSR2); /* after the pauser was made: it keeps SIGUSR2 */
	if (pipe(p) < 0)
		wl_die("sigfreeze: pipe: %s", strerror(errno));
	while (!pause_waiting)
		wl_sleep(0.01);
	wl_ready(argv[2]);
	for (;;) {
		char c;
		ssize_t n = read(p[0], &c, 1);

		if (n < 0 && errno == EINTR)
			wl_log(log_fd, "read EINTR %d", (int)usr1);
		else
			wl_log(log_fd, "read RESTARTED %zd", n);
	}
}
