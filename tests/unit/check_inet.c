/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the TCP/UDP pieces: sockdiag_inet_find (INET_DIAG through
 * libnl) on live sockets, the network lock (lib/netlock.c: packets of a
 * locked connection do not pass, they do again once unlocked; table names
 * checked), and the inet kind's dump of a UDP socket (queued datagrams read
 * with their sources, not consumed, SO_PEEK_OFF put back).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "kinds/fd_kind.h"
#include "netlock.h"
#include "sockdiag.h"

static uint32_t inode_of(int fd)
{
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	return (uint32_t)st.st_ino;
}

/* A loopback TCP connection: *l listener, *c client, *a accepted. */
static void tcp_conn(int family, int *l, int *c, int *a)
{
	struct sockaddr_storage ss = {0};
	socklen_t len =
	    family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

	if (family == AF_INET6) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	} else {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	*l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(*l, 0);
	ck_assert_int_eq(bind(*l, (struct sockaddr *)&ss, len), 0);
	ck_assert_int_eq(listen(*l, 7), 0);
	ck_assert_int_eq(getsockname(*l, (struct sockaddr *)&ss, &len), 0);
	*c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(*c, 0);
	ck_assert_int_eq(connect(*c, (struct sockaddr *)&ss, len), 0);
	*a = accept4(*l, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(*a, 0);
}

START_TEST(test_diag_live)
{
	struct ckpt_error e = {};
	struct inet_diag_info d;
	int l, c, a, u;

	tcp_conn(AF_INET6, &l, &c, &a);
	ck_assert_msg(sockdiag_inet_find(AF_INET6, IPPROTO_TCP, inode_of(l), &d, &e) == 0, "%s",
		      e.msg);
	ck_assert_uint_eq(d.state, 10);
	ck_assert_uint_eq(d.wqueue, 7); /* the backlog */
	ck_assert_uint_eq(d.rqueue, 0);
	ck_assert_msg(sockdiag_inet_find(AF_INET6, IPPROTO_TCP, inode_of(a), &d, &e) == 0, "%s",
		      e.msg);
	ck_assert_uint_eq(d.state, 1);
	ck_assert_int_eq(shutdown(c, SHUT_WR), 0);
	usleep(20000);
	ck_assert_msg(sockdiag_inet_find(AF_INET6, IPPROTO_TCP, inode_of(a), &d, &e) == 0, "%s",
		      e.msg);
	ck_assert_uint_eq(d.state, 8); /* CLOSE_WAIT */
	ck_assert_uint_eq(d.shutdown, 1);
	/* an unbound UDP socket is in no table (the kind treats it as closed) */
	u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(sockdiag_inet_find(AF_INET, IPPROTO_UDP, inode_of(u), &d, &e), -ENOENT);
	ck_assert_int_eq(sockdiag_inet_find(AF_INET, IPPROTO_TCP, inode_of(l), &d, &e), -ENOENT);
	close(u);
	close(a);
	close(c);
	close(l);
}
END_TEST

START_TEST(test_lock_names)
{
	ck_assert(netlock_name_ok("ckpt_12_abc"));
	ck_assert(!netlock_name_ok(""));
	ck_assert(!netlock_name_ok("filter"));
	ck_assert(!netlock_name_ok("ckpt_"));
	ck_assert(!netlock_name_ok("a b"));
	ck_assert(!netlock_name_ok("x;delete table inet filter"));
	ck_assert(!netlock_name_ok(NULL));
}
END_TEST

static bool readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms) == 1;
}

/* Data of a locked connection does not arrive; once unlocked, it does (retransmitted). */
START_TEST(test_lock_drops)
{
	struct sockaddr_in s = {0}, d = {0};
	socklen_t sl = sizeof(s);
	struct ckpt_error e = {};
	struct netlock_conn conn = {.family = AF_INET};
	char table[64], buf[8];
	int l, c, a;

	tcp_conn(AF_INET, &l, &c, &a);
	ck_assert_int_eq(getsockname(a, (struct sockaddr *)&s, &sl), 0);
	sl = sizeof(d);
	ck_assert_int_eq(getpeername(a, (struct sockaddr *)&d, &sl), 0);
	memcpy(conn.src, &s.sin_addr, 4);
	memcpy(conn.dst, &d.sin_addr, 4);
	conn.sport = ntohs(s.sin_port);
	conn.dport = ntohs(d.sin_port);
	snprintf(table, sizeof(table), "ckpt_unit_%d", getpid());
	ck_assert_msg(netlock_lock(table, &conn, 1, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(send(c, "ping", 4, 0), 4);
	ck_assert_msg(!readable(a, 300), "data of a locked connection arrived");
	ck_assert_msg(netlock_unlock(table, &e) == 0, "%s", e.msg);
	ck_assert_msg(readable(a, 5000), "data did not arrive after unlock");
	ck_assert_int_eq(recv(a, buf, sizeof(buf), 0), 4);
	/* a table already gone is fine */
	ck_assert_msg(netlock_unlock(table, &e) == 0, "%s", e.msg);
	close(a);
	close(c);
	close(l);
}
END_TEST

/* The kind's dump of a UDP socket: datagrams and sources read, not consumed. */
START_TEST(test_dump_udp)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	struct sockaddr_in from = {0};
	const struct fd_kind *k;
	struct ckpt_error e = {};
	struct fd_probe p;
	FileEntry fe;
	char buf[16];
	int u, s, off = 2, got = 0;

	ck_assert_int_ge(pidfd, 0);
	u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(u, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(u, (struct sockaddr *)&sa, &sl), 0);
	ck_assert_int_eq(sendto(s, "one", 3, 0, (struct sockaddr *)&sa, sizeof(sa)), 3);
	ck_assert_int_eq(sendto(s, "three", 5, 0, (struct sockaddr *)&sa, sizeof(sa)), 5);
	sl = sizeof(from);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&from, &sl), 0);
	ck_assert_int_eq(setsockopt(u, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)), 0);
	ck_assert_msg(fd_probe_fill(pidfd, getpid(), u, &p, &e) == 0, "%s", e.msg);
	k = fd_kind_find(&p);
	ck_assert_ptr_nonnull(k);
	ck_assert_str_eq(k->name, "TCP/UDP socket");
	file_entry__init(&fe);
	ck_assert_msg(k->dump(&p, &fe, &e) == 0, "%s", e.msg);
	fd_probe_release(&p);
	ck_assert_int_eq(fe.type, FILE_TYPE__FILE_INET_SK);
	ck_assert_uint_eq(fe.inet_sk->proto, IPPROTO_UDP);
	ck_assert_uint_eq(fe.inet_sk->src_port, ntohs(sa.sin_port));
	ck_assert_uint_eq(fe.inet_sk->n_dgrams, 2);
	ck_assert(fe.inet_sk->dgrams[0]->data.len == 3 &&
		  !memcmp(fe.inet_sk->dgrams[0]->data.data, "one", 3));
	ck_assert(fe.inet_sk->dgrams[1]->data.len == 5 &&
		  !memcmp(fe.inet_sk->dgrams[1]->data.data, "three", 5));
	ck_assert_uint_eq(fe.inet_sk->dgrams[1]->src_port, ntohs(from.sin_port));
	file_entry_free_fields(&fe);
	sl = sizeof(got);
	ck_assert_int_eq(getsockopt(u, SOL_SOCKET, SO_PEEK_OFF, &got, &sl), 0);
	ck_assert_int_eq(got, 2);
	off = -1;
	ck_assert_int_eq(setsockopt(u, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)), 0);
	ck_assert_int_eq(recv(u, buf, sizeof(buf), MSG_DONTWAIT), 3);
	ck_assert_int_eq(recv(u, buf, sizeof(buf), MSG_DONTWAIT), 5);
	close(u);
	close(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inet");
	TCase *tc = tcase_create("inet");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_diag_live);
	tcase_add_test(tc, test_lock_names);
	tcase_add_test(tc, test_lock_drops);
	tcase_add_test(tc, test_dump_udp);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
