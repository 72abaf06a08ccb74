/* SPDX-License-Identifier: MIT */
/*
 * sleeper MODE LOG READY [SECS]
 *
 * Spends its life blocked in one syscall so that a dump catches it there:
 *   nanosleep  loop of SECS-long nanosleeps (default 1); logs every EINTR
 *              wake ("wake EINTR left <ms>") and "tick <n>" after each full
 *              sleep, n growing by one.
 *   wait4      round n: forks a child that sleeps SECS (default 3) and exits
 *              with status 40+n%10; the parent blocks in wait4 and logs
 *              "round <n> child <pid> status <s> ok|BAD".
 *   pause      SIGUSR1 handler logs "got SIGUSR1 <k>"; the main loop blocks
 *              in pause() and logs "pause returned <k> errno EINTR".
 *   zombie     forks a child that exits at once with status 7 and leaves it
 *              a zombie ("zombie <pid>"); once the file SECS names exists
 *              (a path here), reaps it: "reaped <pid> status 7 ok|BAD".
 *   epoll | epoll_pwait | iouring | semop | sigtimedwait | recvtimeo
 *              blocks in one call that no event will ever end: epoll_wait
 *              on an empty epoll, epoll_pwait unblocking SIGUSR2 (which the
 *              program otherwise blocks), io_uring_enter waiting for a CQE,
 *              semop waiting for a semaphore, sigtimedwait for SIGUSR2 (left
 *              blocked), recv on a socket with SO_RCVTIMEO of an hour. Each
 *              return is logged, "MODE returned <r> errno <e> mask <hex>"
 *              (the signal mask after it), and the call is made again. A
 *              SIGUSR1 handler without SA_RESTART logs "got SIGUSR1 <k>".
 *              SIGUSR2 (handler "got SIGUSR2 <k>") ends sigtimedwait with 12.
 *              semop logs "semid <id>" first (the test removes it).
 * READY is created (holding the pid) once the program is about to block.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/io_uring.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wl.h"

static int log_fd = -1;
static volatile sig_atomic_t usr1_count, usr2_count;

static void run_nanosleep(const char *ready, double secs)
{
	unsigned long tick = 0;
	int announced = 0;

	for (;;) {
		double deadline = wl_now() + secs;

		if (!announced++)
			wl_ready(ready);
		for (;;) {
			double left = deadline - wl_now();
			struct timespec ts;

			if (left <= 0)
				break;
			ts.tv_sec = (time_t)left;
			ts.tv_nsec = (long)((left - ts.tv_sec) * 1e9);
			if (nanosleep(&ts, NULL) == 0)
				break;
			if (errno != EINTR)
				wl_die("nanosleep: %s", strerror(errno));
			wl_log(log_fd, "wake EINTR left %ld ms",
			       (long)((deadline - wl_now()) * 1000));
		}
		wl_log(log_fd, "tick %lu", ++tick);
	}
}

static void run_wait4(const char *ready, double secs)
{
	for (unsigned long round = 0;; round++) {
		int want = 40 + round % 10, status;
		struct rusage ru;
		pid_t child = fork(), got;

		if (child < 0)
			wl_die("fork: %s", strerror(errno));
		if (child == 0) {
			wl_sleep(secs);
			_exit(want);
		}
		wl_log(log_fd, "round %lu child %d forked", round, child);
		if (round == 0)
			wl_ready(ready);
		while ((got = wait4(child, &status, 0, &ru)) < 0 && errno == EINTR)
			wl_log(log_fd, "wait4 EINTR");
		if (got != child) {
			wl_log(log_fd, "round %lu wait4 returned %d errno %d BAD", round, got,
			       errno);
			wl_sleep(secs);
			continue;
		}
		wl_log(log_fd, "round %lu child %d status %d %s", round, child,
		       WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		       WIFEXITED(status) && WEXITSTATUS(status) == want ? "ok" : "BAD");
	}
}

static void on_usr1(int sig)
{
	int saved = errno;

	usr1_count++;
	wl_log(log_fd, "got SIGUSR1 %d", (int)usr1_count);
	errno = saved;
}

static void run_pause(const char *ready)
{
	struct sigaction sa = {.sa_handler = on_usr1};

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		wl_die("sigaction: %s", strerror(errno));
	wl_ready(ready);
	for (;;) {
		int r = pause();

		wl_log(log_fd, "pause returned %d count %d errno %s", r, (int)usr1_count,
		       errno == EINTR ? "EINTR" : strerror(errno));
	}
}

static void on_usr2(int sig)
{
	int saved = errno;

	usr2_count++;
	wl_log(log_fd, "got SIGUSR2 %d", (int)usr2_count);
	errno = saved;
}

/* A ring whose io_uring_enter waits for one CQE that nothing will post. */
static int iouring_setup(void)
{
	struct io_uring_params p = {0};
	int fd = (int)syscall(__NR_io_uring_setup, 4, &p);
	size_t sq_len, cq_len;

	if (fd < 0)
		wl_die("io_uring_setup: %s", strerror(errno));
	sq_len = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
	cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		sq_len = cq_len = sq_len > cq_len ? sq_len : cq_len;
	if (mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
		 IORING_OFF_SQ_RING) == MAP_FAILED ||
	    (!(p.features & IORING_FEAT_SINGLE_MMAP) &&
	     mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
		  IORING_OFF_CQ_RING) == MAP_FAILED) ||
	    mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES) == MAP_FAILED)
		wl_die("io_uring mmap: %s", strerror(errno));
	return fd;
}

static void run_blocker(const char *mode, const char *ready)
{
	struct sigaction sa = {.sa_handler = on_usr1};
	sigset_t usr2, none, cur;
	int fd = -1, sv[2];

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		wl_die("sigaction: %s", strerror(errno));
	sa.sa_handler = on_usr2;
	if (sigaction(SIGUSR2, &sa, NULL) < 0)
		wl_die("sigaction: %s", strerror(errno));
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigemptyset(&none);
	if (sigprocmask(SIG_BLOCK, &usr2, NULL) < 0)
		wl_die("sigprocmask: %s", strerror(errno));
	if (!strcmp(mode, "epoll") || !strcmp(mode, "epoll_pwait")) {
		fd = epoll_create1(EPOLL_CLOEXEC);
	} else if (!strcmp(mode, "iouring")) {
		fd = iouring_setup();
	} else if (!strcmp(mode, "semop")) {
		fd = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
		wl_log(log_fd, "semid %d", fd);
	} else if (!strcmp(mode, "recvtimeo")) {
		struct timeval tv = {.tv_sec = 3600};

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			wl_die("socketpair: %s", strerror(errno));
		if (setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
			wl_die("SO_RCVTIMEO: %s", strerror(errno));
		fd = sv[0];
	} else if (strcmp(mode, "sigtimedwait")) {
		wl_die("sleeper: unknown mode %s", mode);
	}
	if (fd < 0 && strcmp(mode, "sigtimedwait"))
		wl_die("%s: setting up: %s", mode, strerror(errno));
	wl_ready(ready);
	for (;;) {
		struct epoll_event ev;
		struct sembuf down = {.sem_num = 0, .sem_op = -1};
		struct timespec hour = {.tv_sec = 3600};
		char c;
		long r;

		if (!strcmp(mode, "epoll"))
			r = epoll_wait(fd, &ev, 1, -1);
		else if (!strcmp(mode, "epoll_pwait"))
			r = epoll_pwait(fd, &ev, 1, -1, &none);
		else if (!strcmp(mode, "iouring"))
			r = syscall(__NR_io_uring_enter, fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
		else if (!strcmp(mode, "semop"))
			r = semop(fd, &down, 1);
		else if (!strcmp(mode, "sigtimedwait"))
			r = sigtimedwait(&usr2, NULL, &hour);
		else
			r = recv(fd, &c, 1, 0);
		int err = r < 0 ? errno : 0;
		sigprocmask(SIG_BLOCK, NULL, &cur);
		unsigned long mask = 0;
		for (int sig = 1; sig < 32; sig++)
			if (sigismember(&cur, sig))
				mask |= 1UL << (sig - 1);
		wl_log(log_fd, "%s returned %ld errno %s mask %#lx", mode, r,
		       !err ? "0" : err == EINTR ? "EINTR" : strerror(err), mask);
	}
}

static void run_zombie(const char *ready, const char *trigger)
{
	pid_t child = fork(), got;
	int status;

	if (child < 0)
		wl_die("fork: %s", strerror(errno));
	if (child == 0)
		_exit(7);
	wl_log(log_fd, "zombie %d", child);
	wl_ready(ready);
	while (!wl_file_exists(trigger))
		wl_sleep(0.05);
	while ((got = waitpid(child, &status, 0)) < 0 && errno == EINTR)
		;
	wl_log(log_fd, "reaped %d status %d %s", got, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
	       got == child && WIFEXITED(status) && WEXITSTATUS(status) == 7 ? "ok" : "BAD");
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	double secs;

	if (argc < 4)
		wl_die("usage: sleeper nanosleep|wait4|pause LOG READY [SECS] | zombie LOG READY "
		       "TRIGGER | epoll|epoll_pwait|iouring|semop|sigtimedwait|recvtimeo LOG READY");
	wl_close_inherited();
	log_fd = wl_open_log(argv[2]);
	if (!strcmp(argv[1], "nanosleep")) {
		secs = argc > 4 ? atof(argv[4]) : 1.0;
		run_nanosleep(argv[3], secs);
	} else if (!strcmp(argv[1], "wait4")) {
		secs = argc > 4 ? atof(argv[4]) : 3.0;
		run_wait4(argv[3], secs);
	} else if (!strcmp(argv[1], "pause")) {
		run_pause(argv[3]);
	} else if (!strcmp(argv[1], "zombie") && argc > 4) {
		run_zombie(argv[3], argv[4]);
	} else {
		run_blocker(argv[1], argv[3]);
	}
	wl_die("sleeper: unknown mode %s", argv[1]);
}
