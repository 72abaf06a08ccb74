/* SPDX-License-Identifier: MIT */
/*
 * holder MODE LOG READY
 *
 * Holds one resource and checks itself every 100 ms, so a test can see
 * that a refused dump left it intact (test_unsupported uses extpipe and
 * netlink, the modes a dump refuses):
 *   pipe    a pipe at fds 5 (read end) and 6 (write end); each iteration
 *           writes a byte through it and reads it back
 *   socket  a unix stream socketpair at fds 5 and 6, same round trip
 *   tcp     a TCP connection over loopback, accepted end at fd 5 and
 *           client end at fd 6, same round trip
 *   netlink a generic netlink socket (NETLINK_GENERIC: refused, its
 *           families keep state in the kernel) at fd 7, and the unix
 *           socketpair of "socket"
 *   extpipe the read end of a pipe at fd 5 whose write end is held by a
 *           process outside the tree (a grandchild that escaped to the
 *           subreaper), writing a byte every 50 ms; each iteration reads one
 *   thread  a second thread that bumps a counter every 10 ms; each
 *           iteration checks that it moved
 * Every iteration also checks 4 MiB of xorshift data in memory. Logs
 * "ok <n>" or "FAIL <n> <what>"; READY (holding the pid) after the first.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/wait.h>

#include "wl.h"

#define WORDS (4u << 20) / 8

static atomic_ulong thread_ticks;
static int external; /* extpipe mode */

static void *ticker(void *arg)
{
	for (;;) {
		atomic_fetch_add(&thread_ticks, 1);
		wl_sleep(0.01);
	}
	return NULL;
}

static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Move the pair to fds 5 and 6 (via high numbers: they may overlap). */
static void place_pair(int fds[2])
{
	int r = fcntl(fds[0], F_DUPFD, 20), w = fcntl(fds[1], F_DUPFD, 20);

	if (r < 0 || w < 0)
		wl_die("F_DUPFD: %s", strerror(errno));
	close(fds[0]);
	close(fds[1]);
	if (dup2(r, 5) < 0 || dup2(w, 6) < 0)
		wl_die("dup2: %s", strerror(errno));
	close(r);
	close(w);
}

/* Only the read end stays here, at fd 5; the writer leaves the tree. */
static void external_writer(void)
{
	int fds[2], st;
	pid_t mid;

	if (pipe(fds) < 0)
		wl_die("pipe: %s", strerror(errno));
	mid = fork();
	if (mid < 0)
		wl_die("fork: %s", strerror(errno));
	if (mid == 0) {
		if (fork() != 0)
			_exit(0);
		/* the grandchild: reparented to the subreaper, out of the tree */
		close(fds[0]);
		signal(SIGPIPE, SIG_DFL);
		for (;;) {
			if (write(fds[1], "x", 1) != 1)
				_exit(0);
			wl_sleep(0.05);
		}
	}
	waitpid(mid, &st, 0);
	close(fds[1]);
	if (dup2(fds[0], 5) < 0)
		wl_die("dup2: %s", strerror(errno));
	close(fds[0]);
}

/* fds[0] the accepted end, fds[1] the client end of a loopback TCP connection */
static void tcp_pair(int fds[2])
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &len) < 0)
		wl_die("tcp listener: %s", strerror(errno));
	fds[1] = socket(AF_INET, SOCK_STREAM, 0);
	if (fds[1] < 0 || connect(fds[1], (struct sockaddr *)&sa, sizeof(sa)) < 0)
		wl_die("tcp connect: %s", strerror(errno));
	fds[0] = accept(l, NULL, NULL);
	if (fds[0] < 0)
		wl_die("tcp accept: %s", strerror(errno));
	close(l);
}

static const char *round_trip(unsigned long n)
{
	char out = 'a' + n % 26, in = 0;

	if (external)
		return read(5, &in, 1) == 1 && in == 'x' ? NULL : "read from fd 5 failed";
	if (write(6, &out, 1) != 1)
		return "write to fd 6 failed";
	if (read(5, &in, 1) != 1 || in != out)
		return "read from fd 5 did not return what was written";
	return NULL;
}

int main(int argc, char **argv)
{
	static uint64_t area[WORDS];
	unsigned long last_ticks = 0;
	uint64_t s = 88172645463325252ULL;
	const char *mode;
	int log_fd, fds[2];

	if (argc != 4)
		wl_die("usage: holder pipe|extpipe|socket|tcp|netlink|thread LOG READY");
	wl_close_inherited();
	mode = argv[1];
	log_fd = wl_open_log(argv[2]);
	for (size_t i = 0; i < WORDS; i++)
		area[i] = next(&s);

	if (!strcmp(mode, "pipe")) {
		if (pipe(fds) < 0)
			wl_die("pipe: %s", strerror(errno));
		place_pair(fds);
	} else if (!strcmp(mode, "extpipe")) {
		external = 1;
		external_writer();
	} else if (!strcmp(mode, "socket")) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
			wl_die("socketpair: %s", strerror(errno));
		place_pair(fds);
	} else if (!strcmp(mode, "tcp")) {
		tcp_pair(fds);
		place_pair(fds);
	} else if (!strcmp(mode, "netlink")) {
		int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);

		if (nl < 0 || dup2(nl, 7) < 0)
			wl_die("netlink socket: %s", strerror(errno));
		close(nl);
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
			wl_die("socketpair: %s", strerror(errno));
		place_pair(fds);
	} else if (!strcmp(mode, "thread")) {
		pthread_t t;

		if (pthread_create(&t, NULL, ticker, NULL))
			wl_die("pthread_create failed");
	} else {
		wl_die("holder: unknown mode %s", mode);
	}

	for (unsigned long n = 1;; n++) {
		const char *what = NULL;
		uint64_t v = 88172645463325252ULL;

		wl_sleep(0.1);
		for (size_t i = 0; i < WORDS && !what; i++)
			if (area[i] != next(&v))
				what = "memory changed";
		if (!what && strcmp(mode, "thread"))
			what = round_trip(n);
		if (!what && !strcmp(mode, "thread")) {
			unsigned long t = atomic_load(&thread_ticks);

			if (t == last_ticks)
				what = "thread counter did not move";
			last_ticks = t;
		}
		if (what)
			wl_log(log_fd, "FAIL %lu %s", n, what);
		else
			wl_log(log_fd, "ok %lu", n);
		if (n == 1)
			wl_ready(argv[3]);
	}
}
