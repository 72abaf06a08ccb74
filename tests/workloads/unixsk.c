/* SPDX-License-Identifier: MIT */
/*
 * unixsk: unix sockets of every kind between two processes, for
 * test_unix.sh.
 *
 *   unixsk tree DIR LOG READY
 *       The root R forks a child C. Before READY, with queued data that
 *       nobody reads until DIR/go exists:
 *       - stream socketpair: N records each way ("S%014u\n"), R's end
 *         with SO_RCVBUF 100000 and SO_PASSCRED;
 *       - a stream listener bound to DIR/srv.sock (mode 0640) held by R,
 *         C connected to it and accepted by R: N records each way;
 *       - datagram and seqpacket socketpairs: M messages each way, each of
 *         a different size (boundaries checked); C's datagram end O_NONBLOCK;
 *       - a listener on the abstract name "@ckpt-unixsk-ab-<R>" held by R;
 *       - a listener on "@ckpt-unixsk-pend-<R>" held by R with one pending
 *         connection from C, not yet accepted;
 *       - a socketpair end held by R whose other end R closed (the JVM's).
 *       Once DIR/go exists, both read and check every queued record and
 *       message (each exactly once, in order), R accepts the pending
 *       connection and C sends "pend" over it, C connects a new client to
 *       the abstract listener and to DIR/srv.sock and says hello, options
 *       and flags are checked, then a last ping-pong on every pair. Each
 *       step logs "ok WHAT"; all done: "ALL OK R" / "ALL OK C"; any
 *       failure "FAIL ..." and exit 3.
 *   unixsk server PATH READY
 *       Listens on PATH, accepts connections and holds them (the outside
 *       end for the refusal test).
 *   unixsk client PATH READY
 *       Connects to PATH and sleeps.
 *   unixsk dgserver PATH READY OUT
 *       A datagram socket bound to PATH; writes every message to OUT, one a
 *       line.
 *   unixsk dgclient PATH READY GO
 *       A datagram socket connected to PATH; once GO exists, sends "msgN"
 *       (N = 0, 1, 2...) every 50 ms.
 */
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include "wl.h"

#define N 1000
#define M 6
#define REC 16

static int logfd = -1;
static const char *who = "?";

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			char m_[256];                                                              \
			snprintf(m_, sizeof(m_), __VA_ARGS__);                                     \
			wl_log(logfd, "FAIL %s: %s (errno %s)", who, m_, strerror(errno));         \
			exit(3);                                                                   \
		}                                                                                  \
	} while (0)

static socklen_t mkaddr(struct sockaddr_un *sa, const char *name, int abstract)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (abstract) {
		snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "%s", name);
		return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
	}
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", name);
	return sizeof(*sa);
}

static int listener(const char *name, int abstract, int backlog)
{
	struct sockaddr_un sa;
	socklen_t len = mkaddr(&sa, name, abstract);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, len) == 0 && listen(fd, backlog) == 0,
	      "listen on %s", name);
	return fd;
}

static int connect_to(const char *name, int abstract)
{
	struct sockaddr_un sa;
	socklen_t len = mkaddr(&sa, name, abstract);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, len) == 0, "connect to %s", name);
	return fd;
}

/* in writes of 50 records: a few big skbs, well within the socket's buffer */
static void send_records(int fd, unsigned from, unsigned n, char tag)
{
	char buf[50 * REC + 1];
	unsigned k = 0;

	for (unsigned i = from; i < from + n; i++) {
		snprintf(buf + k * REC, REC + 1, "%c%014u\n", tag, i);
		if (++k == 50 || i + 1 == from + n) {
			CHECK(wl_write_all(fd, buf, k * REC) == 0, "write record %u", i);
			k = 0;
		}
	}
}

static void read_full(int fd, char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = read(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		CHECK(n > 0, "read (%zu of %zu)", off, len);
		off += (size_t)n;
	}
}

static void recv_records(int fd, unsigned from, unsigned n, char tag, const char *what)
{
	char buf[REC + 1], want[REC + 1];

	for (unsigned i = from; i < from + n; i++) {
		read_full(fd, buf, REC);
		buf[REC] = 0;
		snprintf(want, sizeof(want), "%c%014u\n", tag, i);
		CHECK(!memcmp(buf, want, REC), "%s: record %u is '%.15s'", what, i, buf);
	}
}

/* message i: M bytes of pattern, length 1 + 37 * i */
static size_t msg_len(unsigned i)
{
	return 1 + 37 * i;
}

static void send_msgs(int fd, char tag)
{
	char buf[512];

	for (unsigned i = 0; i < M; i++) {
		memset(buf, tag + (int)i, sizeof(buf));
		CHECK(send(fd, buf, msg_len(i), 0) == (ssize_t)msg_len(i), "send message %u", i);
	}
}

static void recv_msgs(int fd, char tag, const char *what)
{
	char buf[512];

	for (unsigned i = 0; i < M; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = fd, .events = POLLIN};

			poll(&p, 1, 5000);
			n = recv(fd, buf, sizeof(buf), 0);
		}
		CHECK(n == (ssize_t)msg_len(i), "%s: message %u has %zd bytes, want %zu", what, i,
		      n, msg_len(i));
		for (ssize_t k = 0; k < n; k++)
			CHECK(buf[k] == tag + (int)i, "%s: message %u byte %zd", what, i, k);
	}
}

static void wait_go(const char *dir)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/go", dir);
	while (!wl_file_exists(path))
		wl_sleep(0.05);
}

static void pingpong(int fd, int first, const char *what)
{
	char b[4] = "png";

	for (int i = 0; i < 20; i++) {
		if (first)
			CHECK(send(fd, b, 3, 0) == 3, "%s ping", what);
		CHECK(recv(fd, b, 3, 0) == 3, "%s pong", what);
		if (!first)
			CHECK(send(fd, b, 3, 0) == 3, "%s ping back", what);
	}
}

static int getint(int fd, int opt)
{
	int v = -1;
	socklen_t sl = sizeof(v);

	CHECK(getsockopt(fd, SOL_SOCKET, opt, &v, &sl) == 0, "getsockopt %d", opt);
	return v;
}

static void set_blocking(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
}

static int tree(const char *dir, const char *logpath, const char *ready)
{
	int sp[2], dp[2], qp[2], jp[2], lsn, ab, pend, acc, cli = -1, st;
	char srv[4200], abname[64], pendname[64];
	pid_t root = getpid(), child;

	logfd = wl_open_log(logpath);
	snprintf(srv, sizeof(srv), "%s/srv.sock", dir);
	snprintf(abname, sizeof(abname), "ckpt-unixsk-ab-%d", (int)root);
	snprintf(pendname, sizeof(pendname), "ckpt-unixsk-pend-%d", (int)root);
	who = "R";
	unlink(srv);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0, "socketpair stream");
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, dp) == 0, "socketpair dgram");
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, qp) == 0, "socketpair seqpacket");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, jp) == 0, "socketpair jvm");
	close(jp[1]);
	{
		int v = 100000, one = 1;

		CHECK(setsockopt(sp[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) == 0, "SO_RCVBUF");
		CHECK(setsockopt(sp[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) == 0,
		      "SO_PASSCRED");
	}
	lsn = listener(srv, 0, 7);
	CHECK(chmod(srv, 0640) == 0, "chmod");
	ab = listener(abname, 1, 5);
	pend = listener(pendname, 1, 3);
	child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		int c, pc, rcv;

		who = "C";
		close(sp[0]);
		close(dp[0]);
		close(qp[0]);
		close(jp[0]);
		close(lsn);
		close(ab);
		close(pend);
		c = connect_to(srv, 0);
		pc = connect_to(pendname, 1);
		fcntl(dp[1], F_SETFL, O_NONBLOCK);
		send_records(sp[1], 0, N, 'c');
		send_records(c, 0, N, 'd');
		send_msgs(dp[1], 'a');
		send_msgs(qp[1], 'A');
		wait_go(dir);
		recv_records(sp[1], 0, N, 'r', "C stream pair");
		recv_records(c, 0, N, 's', "C path-bound connection");
		wl_log(logfd, "ok C stream queues");
		recv_msgs(dp[1], 'm', "C dgram");
		CHECK(fcntl(dp[1], F_GETFL) & O_NONBLOCK, "dgram end lost O_NONBLOCK");
		recv_msgs(qp[1], 'M', "C seqpacket");
		wl_log(logfd, "ok C message queues");
		CHECK(send(pc, "pend", 4, 0) == 4, "send on the pending connection");
		{
			int a = connect_to(abname, 1), s = connect_to(srv, 0);

			CHECK(send(a, "hello", 5, 0) == 5 && send(s, "hi", 2, 0) == 2, "hello");
			close(a);
			close(s);
		}
		set_blocking(dp[1]);
		pingpong(sp[1], 1, "C stream pair");
		pingpong(c, 1, "C path-bound");
		pingpong(dp[1], 1, "C dgram");
		pingpong(qp[1], 1, "C seqpacket");
		rcv = getint(sp[1], SO_RCVBUF);
		(void)rcv;
		wl_log(logfd, "ALL OK C");
		for (;;)
			pause();
	}
	acc = accept(lsn, NULL, NULL);
	CHECK(acc >= 0, "accept");
	send_records(sp[0], 0, N, 'r');
	send_records(acc, 0, N, 's');
	send_msgs(dp[0], 'm');
	send_msgs(qp[0], 'M');
	int rcvbuf = getint(sp[0], SO_RCVBUF);
	/* the child's queued data and pending connection are in before READY */
	for (int i = 0; i < 200; i++) {
		int inq = 0;

		ioctl(sp[0], FIONREAD, &inq);
		if (inq == N * REC)
			break;
		wl_sleep(0.02);
	}
	wl_sleep(0.2);
	wl_log(logfd, "R %d C %d queued", (int)root, (int)child);
	wl_ready(ready);
	wait_go(dir);
	recv_records(sp[0], 0, N, 'c', "R stream pair");
	recv_records(acc, 0, N, 'd', "R path-bound connection");
	wl_log(logfd, "ok R stream queues");
	recv_msgs(dp[0], 'a', "R dgram");
	recv_msgs(qp[0], 'A', "R seqpacket");
	wl_log(logfd, "ok R message queues");
	{
		char b[8] = {0};
		int p = accept(pend, NULL, NULL);

		CHECK(p >= 0, "accept the pending connection");
		read_full(p, b, 4);
		CHECK(!memcmp(b, "pend", 4), "pending connection said '%s'", b);
		wl_log(logfd, "ok R pending connection");
		cli = accept(ab, NULL, NULL);
		CHECK(cli >= 0, "accept on the abstract listener");
		read_full(cli, b, 5);
		CHECK(!memcmp(b, "hello", 5), "abstract client said '%s'", b);
		wl_log(logfd, "ok R abstract listener");
		close(cli);
		cli = accept(lsn, NULL, NULL);
		CHECK(cli >= 0, "accept on the path listener");
		read_full(cli, b, 2);
		CHECK(!memcmp(b, "hi", 2), "path client said '%s'", b);
		wl_log(logfd, "ok R path listener");
		close(cli);
	}
	{
		char b[4];

		CHECK(read(jp[0], b, 1) == 0, "closed peer: no EOF");
		wl_log(logfd, "ok R closed peer");
	}
	CHECK(getint(sp[0], SO_RCVBUF) == rcvbuf, "SO_RCVBUF %d, was %d", getint(sp[0], SO_RCVBUF),
	      rcvbuf);
	CHECK(getint(sp[0], SO_PASSCRED) == 1, "SO_PASSCRED lost");
	wl_log(logfd, "ok R options");
	pingpong(sp[0], 0, "R stream pair");
	pingpong(acc, 0, "R path-bound");
	pingpong(dp[0], 0, "R dgram");
	pingpong(qp[0], 0, "R seqpacket");
	wl_log(logfd, "ALL OK R");
	waitpid(child, &st, 0);
	return 0;
}

static int dgserver(const char *path, const char *ready, const char *out)
{
	struct sockaddr_un sa;
	socklen_t len = mkaddr(&sa, path, 0);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	char buf[128];

	logfd = wl_open_log(out);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, len) == 0, "bind %s", path);
	wl_ready(ready);
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

		if (n > 0)
			wl_log(logfd, "%.*s", (int)n, buf);
	}
}

static int dgclient(const char *path, const char *ready, const char *go)
{
	struct sockaddr_un sa;
	socklen_t len = mkaddr(&sa, path, 0);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	char buf[32];

	CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, len) == 0, "connect %s", path);
	wl_ready(ready);
	for (unsigned i = 0;; wl_sleep(0.05)) {
		if (!wl_file_exists(go))
			continue;
		snprintf(buf, sizeof(buf), "msg%u", i++);
		send(fd, buf, strlen(buf), 0);
	}
}

int main(int argc, char **argv)
{
	wl_close_inherited();
	signal(SIGPIPE, SIG_IGN);
	if (argc == 5 && !strcmp(argv[1], "tree"))
		return tree(argv[2], argv[3], argv[4]);
	if (argc == 4 && !strcmp(argv[1], "server")) {
		int l = listener(argv[2], 0, 8);

		wl_ready(argv[3]);
		for (;;)
			accept(l, NULL, NULL);
	}
	if (argc == 4 && !strcmp(argv[1], "client")) {
		int c = connect_to(argv[2], 0);

		(void)c;
		wl_ready(argv[3]);
		for (;;)
			pause();
	}
	if (argc == 5 && !strcmp(argv[1], "dgserver"))
		return dgserver(argv[2], argv[3], argv[4]);
	if (argc == 5 && !strcmp(argv[1], "dgclient"))
		return dgclient(argv[2], argv[3], argv[4]);
	wl_die("usage: unixsk tree DIR LOG READY | server PATH READY | client PATH READY | "
	       "dgserver PATH READY OUT | dgclient PATH READY GO");
	return 2;
}
