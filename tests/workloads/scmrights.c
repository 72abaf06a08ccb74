/* SPDX-License-Identifier: MIT */
/*
 * scmrights: file descriptors in flight (SCM_RIGHTS) and credentials
 * (SCM_CREDENTIALS) in unix socket queues, for test_scm_rights.sh.
 *
 *   scmrights DIR LOG READY
 *       One process. Before READY it queues, and does not receive:
 *       - on a stream socketpair: "s-plain-1"; "s-fds-2" with the read end
 *         of a pipe (O_NONBLOCK, "pipedata" in it, the write end kept) and
 *         DIR/data1 opened O_RDWR at offset 5 (closed here: only in
 *         flight); "s-plain-3"; "s-fds-4" with one end of a socketpair
 *         ("hello-sp" queued in it, the other end kept);
 *       - on a seqpacket socketpair: "q-1" with DIR/data2 (O_RDWR, offset
 *         0, also kept open here: one description), "q-2", "" (empty) with
 *         an eventfd holding 7;
 *       - on a datagram socketpair: "d-1", then the receiver turns
 *         SO_PASSCRED on (the message has no credentials); "d-2" with a
 *         memfd ("memfd-content", sealed F_SEAL_GROW, offset 6) and a
 *         deleted file ("deleted-content", offset 8), both only in flight;
 *       - on a stream socketpair whose receiver has SO_PASSCRED:
 *         "cred-1" from this process, "cred-2" from a child run as uid
 *         4321 gid 1234 that exits at once (its pid is gone).
 *       Once DIR/go exists it receives everything and checks: the stream
 *       boundaries (a read ending before a send with fds gets none, and
 *       one reaching into it stops after that send's bytes), each fd works (the pipe gives
 * "pipedata" then what is written to the kept write end; data1 is at offset 5, reads "56789",
 * O_RDWR; the socketpair end reads "hello-sp" and talks to the kept end; the eventfd reads 7),
 * data2's received description is the kept one (a write through one moves the other's offset),
 *       credentials as sent (pid, uid, gid; none for "d-1"). Each check logs
 *       "ok WHAT"; all done: "ALL OK"; a failure: "FAIL ..." and exit 3.
 *   scmrights DIR LOG READY epoll
 *       An epoll instance in flight only (closed here), for the refusal.
 *   scmrights DIR LOG READY epollshared
 *       An epoll instance (an eventfd registered with data 42) in flight and
 *       kept open: once DIR/go exists, the one received reports the
 *       registration, and a change through the kept fd ("ok epoll shared").
 *   scmrights DIR LOG READY tcpshared
 *       An accepted TCP connection (loopback, both ends in the program) in
 *       flight and kept open: once DIR/go exists, data flows through the
 *       one received and the kept one ("ok tcp shared").
 *   scmrights DIR LOG READY cycle
 *       A socketpair end in flight only, in its own peer's queue, and in
 *       its own queue a listening socket (abstract name) in flight only;
 *       once DIR/go exists, both received: the first written through ("ok
 *       cycle"), the second accepts a new client ("ok listener").
 *   scmrights DIR LOG READY cred
 *       Its own credentials and a pipe's read end queued on a stream pair
 *       with SO_PASSCRED (test_ckptd_restore_privs: a user's restore);
 *       once DIR/go exists, checked ("ok cred").
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "wl.h"

static int logfd = -1;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			char m_[256];                                                              \
			snprintf(m_, sizeof(m_), __VA_ARGS__);                                     \
			wl_log(logfd, "FAIL %s (errno %s)", m_, strerror(errno));                  \
			exit(3);                                                                   \
		}                                                                                  \
	} while (0)

/* sendmsg of data with fds (n of them) and, if cred, SCM_CREDENTIALS of ourselves */
static void send_with(int s, const char *data, const int *fds, int n, const struct ucred *cred)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8) + CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = strlen(data)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	size_t len = 0;
	struct cmsghdr *c;

	memset(&ctl, 0, sizeof(ctl));
	if (n) {
		c = (struct cmsghdr *)ctl.buf;
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
		len += CMSG_SPACE(sizeof(int) * n);
	}
	if (cred) {
		c = (struct cmsghdr *)(ctl.buf + len);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(*cred));
		memcpy(CMSG_DATA(c), cred, sizeof(*cred));
		len += CMSG_SPACE(sizeof(*cred));
	}
	if (len) {
		mh.msg_control = ctl.buf;
		mh.msg_controllen = len;
	}
	CHECK(sendmsg(s, &mh, 0) == (ssize_t)strlen(data), "sendmsg %s", data);
}

struct got {
	char data[256];
	ssize_t len;
	int fds[8];
	int nfds;
	bool cred;
	struct ucred uc;
};

/* recvmsg of at most size bytes, non-blocking */
static void recv_with(int s, size_t size, struct got *g)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8) + CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = g->data, .iov_len = size};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl)};

	memset(g, 0, sizeof(*g));
	g->len = recvmsg(s, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	CHECK(g->len >= 0, "recvmsg");
	g->data[g->len] = '\0';
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_type == SCM_RIGHTS) {
			g->nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(g->fds, CMSG_DATA(c), sizeof(int) * g->nfds);
		} else if (c->cmsg_type == SCM_CREDENTIALS) {
			g->cred = true;
			memcpy(&g->uc, CMSG_DATA(c), sizeof(g->uc));
		}
	}
}

static void expect(int s, size_t size, const char *data, int nfds, struct got *g)
{
	recv_with(s, size, g);
	CHECK(!strcmp(g->data, data), "received %.60s, expected %.60s", g->data, data);
	CHECK(g->nfds == nfds, "'%s' came with %d fds, expected %d", data, g->nfds, nfds);
}

static void read_is(int fd, const char *want, const char *what)
{
	char buf[64] = "";
	ssize_t n = read(fd, buf, sizeof(buf) - 1);

	CHECK(n == (ssize_t)strlen(want) && !memcmp(buf, want, n), "%s: read %zd '%s', expected '%s'",
	      what, n, n > 0 ? buf : "", want);
}

int main(int argc, char **argv)
{
	int st[2], sq[2], sd[2], sc[2], pp[2], sp[2], one = 1, d1, d2, ev, fds[2];
	char path[4096], go[4096];
	struct ucred self;
	struct got g;
	pid_t child;
	off_t off;

	if (argc == 5 && !strcmp(argv[4], "epoll")) {
		/* an epoll instance in flight only: refused (its registrations need a task) */
		int ep, s2[2];

		wl_close_inherited();
		ep = epoll_create1(0);
		if (ep < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, s2) < 0)
			wl_die("epoll: %s", strerror(errno));
		send_with(s2[0], "ep", &ep, 1, NULL);
		close(ep);
		wl_ready(argv[3]);
		for (;;)
			pause();
	}
	if (argc == 5 && !strcmp(argv[4], "cycle")) {
		/* a socketpair end in flight only, in its own peer's queue */
		int s2[2];
		struct got g2;

		wl_close_inherited();
		logfd = wl_open_log(argv[2]);
		snprintf(go, sizeof(go), "%s/go", argv[1]);
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		socklen_t salen;
		int l, c, a;

		CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s2) == 0, "socketpair");
		send_with(s2[0], "cyc", &s2[0], 1, NULL);
		/* a listening socket in flight only (an abstract name) */
		salen = offsetof(struct sockaddr_un, sun_path) + 1 +
			snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "ckpt-scm-l-%d", getpid());
		l = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK(l >= 0 && bind(l, (struct sockaddr *)&sa, salen) == 0 && listen(l, 4) == 0,
		      "listener");
		send_with(s2[1], "lst", &l, 1, NULL);
		close(l);
		close(s2[0]);
		wl_ready(argv[3]);
		while (!wl_file_exists(go))
			wl_sleep(0.05);
		expect(s2[1], 200, "cyc", 1, &g2);
		CHECK(write(g2.fds[0], "back", 4) == 4, "write through the socket in flight");
		read_is(s2[1], "back", "its peer");
		wl_log(logfd, "ok cycle");
		/* the listener was sent from s2[1] to s2[0], now received through g2.fds[0] */
		expect(g2.fds[0], 200, "lst", 1, &g2);
		c = socket(AF_UNIX, SOCK_STREAM, 0);
		CHECK(c >= 0 && connect(c, (struct sockaddr *)&sa, salen) == 0, "connect to it");
		a = accept(g2.fds[0], NULL, NULL);
		CHECK(a >= 0 && write(c, "hi", 2) == 2, "accept on the listener in flight");
		read_is(a, "hi", "accepted connection");
		wl_log(logfd, "ok listener");
		for (;;)
			pause();
	}
	if (argc == 5 && !strcmp(argv[4], "epollshared")) {
		/* an epoll instance in flight that the program keeps too: one instance */
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42}, got_ev;
		int ep, efd, s2[2];
		struct got g2;

		wl_close_inherited();
		logfd = wl_open_log(argv[2]);
		snprintf(go, sizeof(go), "%s/go", argv[1]);
		ep = epoll_create1(0);
		efd = eventfd(1, 0);
		CHECK(ep >= 0 && efd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0 &&
			  socketpair(AF_UNIX, SOCK_DGRAM, 0, s2) == 0,
		      "setup");
		send_with(s2[0], "ep", &ep, 1, NULL);
		wl_ready(argv[3]);
		while (!wl_file_exists(go))
			wl_sleep(0.05);
		expect(s2[1], 200, "ep", 1, &g2);
		CHECK(epoll_wait(g2.fds[0], &got_ev, 1, 0) == 1 && got_ev.data.u64 == 42,
		      "the epoll in flight does not report its registration");
		ev.data.u64 = 43;
		CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, efd, &ev) == 0 &&
			  epoll_wait(g2.fds[0], &got_ev, 1, 0) == 1 && got_ev.data.u64 == 43,
		      "the epoll in flight is not the one kept");
		wl_log(logfd, "ok epoll shared");
		for (;;)
			pause();
	}
	if (argc == 5 && !strcmp(argv[4], "tcpshared")) {
		/* an accepted TCP connection in flight that the program keeps too */
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t sl = sizeof(sin);
		int l, c, a, s2[2];
		struct got g2;

		wl_close_inherited();
		logfd = wl_open_log(argv[2]);
		snprintf(go, sizeof(go), "%s/go", argv[1]);
		l = socket(AF_INET, SOCK_STREAM, 0);
		CHECK(l >= 0 && bind(l, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(l, 4) == 0 &&
			  getsockname(l, (struct sockaddr *)&sin, &sl) == 0,
		      "listener");
		c = socket(AF_INET, SOCK_STREAM, 0);
		CHECK(c >= 0 && connect(c, (struct sockaddr *)&sin, sizeof(sin)) == 0, "connect");
		a = accept(l, NULL, NULL);
		CHECK(a >= 0 && socketpair(AF_UNIX, SOCK_DGRAM, 0, s2) == 0, "accept");
		send_with(s2[0], "tcp", &a, 1, NULL);
		wl_ready(argv[3]);
		while (!wl_file_exists(go))
			wl_sleep(0.05);
		expect(s2[1], 200, "tcp", 1, &g2);
		CHECK(write(g2.fds[0], "via", 3) == 3, "write through the connection in flight");
		read_is(c, "via", "the connection's peer");
		CHECK(write(c, "back", 4) == 4, "write back");
		read_is(a, "back", "the kept fd of the connection");
		wl_log(logfd, "ok tcp shared");
		for (;;)
			pause();
	}
	if (argc == 5 && !strcmp(argv[4], "cred")) {
		/* our own credentials and a pipe end, queued on a SO_PASSCRED stream pair */
		int s2[2], p2[2];
		struct got g2;

		wl_close_inherited();
		logfd = wl_open_log(argv[2]);
		snprintf(go, sizeof(go), "%s/go", argv[1]);
		CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s2) == 0 && pipe(p2) == 0 &&
			  setsockopt(s2[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) == 0,
		      "setup");
		self = (struct ucred){.pid = getpid(), .uid = getuid(), .gid = getgid()};
		send_with(s2[0], "mine", &p2[0], 1, &self);
		close(p2[0]);
		wl_ready(argv[3]);
		while (!wl_file_exists(go))
			wl_sleep(0.05);
		expect(s2[1], 200, "mine", 1, &g2);
		CHECK(g2.cred && g2.uc.pid == self.pid && g2.uc.uid == self.uid &&
			  g2.uc.gid == self.gid,
		      "credentials %d %u %u", g2.uc.pid, g2.uc.uid, g2.uc.gid);
		CHECK(write(p2[1], "x", 1) == 1, "pipe");
		read_is(g2.fds[0], "x", "pipe in flight");
		wl_log(logfd, "ok cred");
		for (;;)
			pause();
	}
	if (argc != 4)
		wl_die("usage: scmrights DIR LOG READY [epoll|epollshared|tcpshared|cycle|cred]");
	wl_close_inherited();
	logfd = wl_open_log(argv[2]);
	snprintf(go, sizeof(go), "%s/go", argv[1]);

	snprintf(path, sizeof(path), "%s/data1", argv[1]);
	d1 = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(d1 >= 0 && write(d1, "0123456789", 10) == 10 && lseek(d1, 5, SEEK_SET) == 5, "data1");
	snprintf(path, sizeof(path), "%s/data2", argv[1]);
	d2 = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(d2 >= 0, "data2");
	CHECK(pipe2(pp, O_NONBLOCK) == 0 && write(pp[1], "pipedata", 8) == 8, "pipe");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0 && write(sp[1], "hello-sp", 8) == 8,
	      "socketpair sp");
	ev = eventfd(7, 0);
	CHECK(ev >= 0, "eventfd");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, st) == 0, "stream pair");
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq) == 0, "seqpacket pair");
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sd) == 0, "datagram pair");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sc) == 0, "cred pair");

	send_with(st[0], "s-plain-1", NULL, 0, NULL);
	fds[0] = pp[0];
	fds[1] = d1;
	send_with(st[0], "s-fds-2", fds, 2, NULL);
	send_with(st[0], "s-plain-3", NULL, 0, NULL);
	send_with(st[0], "s-fds-4", &sp[0], 1, NULL);
	close(pp[0]); /* only in flight now */
	close(d1);
	close(sp[0]);

	send_with(sq[0], "q-1", &d2, 1, NULL);
	send_with(sq[0], "q-2", NULL, 0, NULL);
	send_with(sq[0], "", &ev, 1, NULL);
	close(ev);

	send_with(sd[0], "d-1", NULL, 0, NULL);
	CHECK(setsockopt(sd[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) == 0, "SO_PASSCRED");
	/* a memfd and a deleted file, in flight only */
	fds[0] = memfd_create("scm-memfd", MFD_ALLOW_SEALING);
	CHECK(fds[0] >= 0 && write(fds[0], "memfd-content", 13) == 13 &&
		  fcntl(fds[0], F_ADD_SEALS, F_SEAL_GROW) == 0 && lseek(fds[0], 6, SEEK_SET) == 6,
	      "memfd");
	snprintf(path, sizeof(path), "%s/gone", argv[1]);
	fds[1] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fds[1] >= 0 && write(fds[1], "deleted-content", 15) == 15 && unlink(path) == 0 &&
		  lseek(fds[1], 8, SEEK_SET) == 8,
	      "deleted file");
	send_with(sd[0], "d-2", fds, 2, NULL);
	close(fds[0]);
	close(fds[1]);

	CHECK(setsockopt(sc[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) == 0, "SO_PASSCRED");
	self = (struct ucred){.pid = getpid(), .uid = getuid(), .gid = getgid()};
	send_with(sc[0], "cred-1", NULL, 0, &self);
	child = fork();
	CHECK(child >= 0, "fork");
	if (child == 0) {
		if (setgid(1234) < 0 || setuid(4321) < 0)
			_exit(1);
		send_with(sc[0], "cred-2", NULL, 0, NULL);
		_exit(0);
	}
	CHECK(waitpid(child, &one, 0) == child && one == 0, "the sending child");
	wl_log(logfd, "queued child %d", child);
	wl_ready(argv[3]);

	while (!wl_file_exists(go))
		wl_sleep(0.05);

	/*
	 * stream: a read ending before the send with fds gets no fds; one
	 * reaching into it stops after the bytes the fds were sent with
	 */
	expect(st[1], strlen("s-plain-1"), "s-plain-1", 0, &g);
	expect(st[1], 200, "s-fds-2", 2, &g);
	pp[0] = g.fds[0];
	d1 = g.fds[1];
	expect(st[1], 4, "s-pl", 0, &g);
	expect(st[1], 200, "ain-3s-fds-4", 1, &g);
	sp[0] = g.fds[0];
	wl_log(logfd, "ok stream boundaries");

	CHECK(fcntl(pp[0], F_GETFL) & O_NONBLOCK, "the pipe's O_NONBLOCK");
	read_is(pp[0], "pipedata", "pipe in flight");
	CHECK(write(pp[1], "more", 4) == 4, "write to the kept pipe end");
	read_is(pp[0], "more", "pipe after restore");
	wl_log(logfd, "ok pipe");

	CHECK((fcntl(d1, F_GETFL) & O_ACCMODE) == O_RDWR, "data1 O_RDWR");
	off = lseek(d1, 0, SEEK_CUR);
	CHECK(off == 5, "data1 offset %lld, expected 5", (long long)off);
	read_is(d1, "56789", "data1");
	wl_log(logfd, "ok regular file");

	read_is(sp[0], "hello-sp", "socketpair end in flight");
	CHECK(write(sp[1], "ping", 4) == 4, "ping");
	read_is(sp[0], "ping", "socketpair ping");
	CHECK(write(sp[0], "pong", 4) == 4, "pong");
	read_is(sp[1], "pong", "socketpair pong");
	wl_log(logfd, "ok socketpair");

	expect(sq[1], 200, "q-1", 1, &g);
	CHECK(write(d2, "XY", 2) == 2, "write to data2");
	off = lseek(g.fds[0], 0, SEEK_CUR);
	CHECK(off == 2, "data2 in flight: offset %lld after a write through the kept fd, expected 2",
	      (long long)off);
	wl_log(logfd, "ok shared description");
	expect(sq[1], 200, "q-2", 0, &g);
	expect(sq[1], 200, "", 1, &g);
	{
		uint64_t v = 0;

		CHECK(read(g.fds[0], &v, 8) == 8 && v == 7, "eventfd in flight: %llu",
		      (unsigned long long)v);
	}
	wl_log(logfd, "ok seqpacket");

	expect(sd[1], 200, "d-1", 0, &g);
	CHECK(g.cred && g.uc.pid == 0 && g.uc.uid == 65534 && g.uc.gid == 65534,
	      "d-1: credentials %d %u %u, expected none (0 65534 65534)", g.uc.pid, g.uc.uid,
	      g.uc.gid);
	wl_log(logfd, "ok no credentials");
	expect(sd[1], 200, "d-2", 2, &g);
	read_is(g.fds[0], "content", "memfd in flight (offset 6)");
	CHECK(fcntl(g.fds[0], F_GET_SEALS) == F_SEAL_GROW, "memfd seals %d",
	      fcntl(g.fds[0], F_GET_SEALS));
	read_is(g.fds[1], "content", "deleted file in flight (offset 8)");
	{
		struct stat sb;

		CHECK(fstat(g.fds[1], &sb) == 0 && sb.st_nlink == 0 && S_ISREG(sb.st_mode),
		      "deleted file in flight: not a deleted regular file");
	}
	wl_log(logfd, "ok memfd and deleted file");

	expect(sc[1], 200, "cred-1", 0, &g);
	CHECK(g.cred && g.uc.pid == self.pid && g.uc.uid == self.uid && g.uc.gid == self.gid,
	      "cred-1: credentials %d %u %u", g.uc.pid, g.uc.uid, g.uc.gid);
	expect(sc[1], 200, "cred-2", 0, &g);
	CHECK(g.cred && g.uc.pid == child && g.uc.uid == 4321 && g.uc.gid == 1234,
	      "cred-2: credentials %d %u %u, expected %d 4321 1234", g.uc.pid, g.uc.uid, g.uc.gid,
	      child);
	wl_log(logfd, "ok credentials");
	wl_log(logfd, "ALL OK");
	for (;;)
		pause();
}
