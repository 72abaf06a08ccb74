/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of lib/sockdiag.c (UNIX_DIAG through libnl) and of the unix
 * socket kind's dump (lib/kinds/unix.c): canned netlink replies parsed and
 * malformed ones refused; live lookups of a socketpair and of a listener
 * with a pending connection; a dump reads the queue without consuming it
 * and puts SO_PEEK_OFF back.
 */
#include <check.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "kinds/fd_kind.h"
#include "sockdiag.h"

/* A reply under construction: header, unix_diag_msg, attributes. */
struct canned {
	union {
		char buf[1024];
		struct nlmsghdr align;
	};
	size_t len;
};

static void canned_init(struct canned *c, uint8_t family, uint32_t ino)
{
	struct unix_diag_msg *m;

	memset(c, 0, sizeof(*c));
	c->len = NLMSG_LENGTH(sizeof(*m));
	m = NLMSG_DATA((struct nlmsghdr *)c->buf);
	m->udiag_family = family;
	m->udiag_type = SOCK_STREAM;
	m->udiag_state = 1;
	m->udiag_ino = ino;
	((struct nlmsghdr *)c->buf)->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	((struct nlmsghdr *)c->buf)->nlmsg_len = (uint32_t)c->len;
}

static void canned_attr(struct canned *c, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)(c->buf + NLMSG_ALIGN(c->len));

	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	memcpy((char *)a + NLA_HDRLEN, data, len);
	c->len = NLMSG_ALIGN(c->len) + NLA_ALIGN(a->nla_len);
	((struct nlmsghdr *)c->buf)->nlmsg_len = (uint32_t)c->len;
}

START_TEST(test_parse_canned)
{
	struct unix_diag_vfs vfs = {.udiag_vfs_ino = 9, .udiag_vfs_dev = 10};
	struct unix_diag_rqlen q = {.udiag_rqueue = 3, .udiag_wqueue = 7};
	uint32_t peer = 42, icons[2] = {5, 6};
	uint8_t sh = 3;
	struct unix_diag_info u;
	struct ckpt_error e = {};
	struct canned c;

	canned_init(&c, AF_UNIX, 77);
	canned_attr(&c, UNIX_DIAG_NAME, "/tmp/x.sock", 12);
	canned_attr(&c, UNIX_DIAG_VFS, &vfs, sizeof(vfs));
	canned_attr(&c, UNIX_DIAG_PEER, &peer, sizeof(peer));
	canned_attr(&c, UNIX_DIAG_ICONS, icons, sizeof(icons));
	canned_attr(&c, UNIX_DIAG_RQLEN, &q, sizeof(q));
	canned_attr(&c, UNIX_DIAG_SHUTDOWN, &sh, sizeof(sh));
	ck_assert_msg(sockdiag_unix_parse((struct nlmsghdr *)c.buf, &u, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(u.ino, 77);
	ck_assert_uint_eq(u.type, SOCK_STREAM);
	ck_assert_uint_eq(u.state, 1);
	ck_assert_uint_eq(u.name_len, 12);
	ck_assert_str_eq(u.name, "/tmp/x.sock");
	ck_assert(u.has_vfs && u.vfs_ino == 9 && u.vfs_dev == 10);
	ck_assert(u.has_peer && u.peer == 42);
	ck_assert(u.has_rqlen && u.rqueue == 3 && u.wqueue == 7);
	ck_assert_uint_eq(u.shutdown, 3);
	ck_assert_uint_eq(u.nicons, 2);
	ck_assert(u.icons[0] == 5 && u.icons[1] == 6);
	unix_diag_info_release(&u);

	/* no attributes: unnamed, no peer */
	canned_init(&c, AF_UNIX, 78);
	ck_assert_msg(sockdiag_unix_parse((struct nlmsghdr *)c.buf, &u, &e) == 0, "%s", e.msg);
	ck_assert(!u.has_peer && !u.name_len && !u.nicons && !u.has_vfs);
	unix_diag_info_release(&u);
}
END_TEST

START_TEST(test_parse_bad)
{
	char longname[200];
	struct unix_diag_info u;
	struct ckpt_error e = {};
	struct canned c;

	canned_init(&c, AF_INET, 1);
	ck_assert_int_eq(sockdiag_unix_parse((struct nlmsghdr *)c.buf, &u, &e), -EBADMSG);
	canned_init(&c, AF_UNIX, 1);
	((struct nlmsghdr *)c.buf)->nlmsg_len = NLMSG_LENGTH(4);
	ck_assert_int_eq(sockdiag_unix_parse((struct nlmsghdr *)c.buf, &u, &e), -EBADMSG);
	memset(longname, 'a', sizeof(longname));
	canned_init(&c, AF_UNIX, 1);
	canned_attr(&c, UNIX_DIAG_NAME, longname, sizeof(longname));
	ck_assert_int_eq(sockdiag_unix_parse((struct nlmsghdr *)c.buf, &u, &e), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(e.msg, "inode 1"));
	/* an attribute shorter than its policy's minimum */
	canned_init(&c, AF_UNIX, 1);
	canned_attr(&c, UNIX_DIAG_RQLEN, "abc", 3);
	ck_assert_int_eq(sockdiag_unix_parse((struct nlmsghdr *)c.buf, &u, &e), -EBADMSG);
}
END_TEST

static uint32_t ino_of(int fd)
{
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	return (uint32_t)st.st_ino;
}

START_TEST(test_live_pair)
{
	struct unix_diag_info u;
	struct ckpt_error e = {};
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	ck_assert_int_eq(send(sv[1], "hello", 5, 0), 5);
	ck_assert_msg(sockdiag_unix_get(ino_of(sv[0]), &u, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(u.type, SOCK_SEQPACKET);
	ck_assert(u.has_peer && u.peer == ino_of(sv[1]));
	ck_assert(u.has_rqlen && u.rqueue == 5);
	unix_diag_info_release(&u);
	close(sv[1]);
	/* the peer closed: still a peer attribute, inode 0, shut down both ways */
	ck_assert_msg(sockdiag_unix_get(ino_of(sv[0]), &u, &e) == 0, "%s", e.msg);
	ck_assert(u.has_peer && u.peer == 0 && u.shutdown == 3);
	unix_diag_info_release(&u);
	close(sv[0]);
	ck_assert_int_eq(sockdiag_unix_get(1, &u, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "inode 1"));
}
END_TEST

struct seek {
	uint32_t ino, client;
	bool found;
};

static int seek_cb(const struct unix_diag_info *u, void *arg)
{
	struct seek *s = arg;

	if (u->ino == s->ino && u->nicons == 1 && u->icons[0] == s->client)
		s->found = true;
	return 0;
}

START_TEST(test_live_listener)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 +
			(socklen_t)snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1,
					    "ckpt-check-sockdiag-%d", getpid());
	_cleanup_close_ int l = socket(AF_UNIX, SOCK_STREAM, 0),
			    c = socket(AF_UNIX, SOCK_STREAM, 0);
	struct unix_diag_info u;
	struct ckpt_error e = {};
	struct seek s;

	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, len), 0);
	ck_assert_int_eq(listen(l, 4), 0);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&sa, len), 0);
	ck_assert_msg(sockdiag_unix_get(ino_of(l), &u, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(u.state, 10);
	ck_assert(u.rqueue == 1 && u.wqueue == 4); /* accept queue and backlog */
	ck_assert_uint_eq(u.nicons, 1);
	ck_assert_uint_eq(u.icons[0], ino_of(c));
	ck_assert_uint_eq(u.name_len, (size_t)len - offsetof(struct sockaddr_un, sun_path));
	ck_assert(u.name[0] == 0 && !memcmp(u.name + 1, "ckpt-check-sockdiag-", 20));
	unix_diag_info_release(&u);
	s = (struct seek){.ino = ino_of(l), .client = ino_of(c)};
	ck_assert_msg(sockdiag_unix_dump(1u << 10, seek_cb, &s, &e) == 0, "%s", e.msg);
	ck_assert(s.found);
}
END_TEST

/* The kind's dump: the queue is read, not consumed; SO_PEEK_OFF comes back. */
START_TEST(test_dump_peeks)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	int sv[2], off = 3, got = 0;
	socklen_t sl = sizeof(got);
	const struct fd_kind *k;
	struct ckpt_error e = {};
	struct fd_probe p;
	FileEntry fe;
	char buf[16];

	ck_assert_int_ge(pidfd, 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	ck_assert_int_eq(send(sv[1], "one", 3, 0), 3);
	ck_assert_int_eq(send(sv[1], "", 0, 0), 0);
	ck_assert_int_eq(send(sv[1], "three", 5, 0), 5);
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)), 0);
	ck_assert_msg(fd_probe_fill(pidfd, getpid(), sv[0], &p, &e) == 0, "%s", e.msg);
	k = fd_kind_find(&p);
	ck_assert_ptr_nonnull(k);
	ck_assert_str_eq(k->name, "unix socket");
	file_entry__init(&fe);
	ck_assert_msg(k->dump(&p, &fe, &e) == 0, "%s", e.msg);
	fd_probe_release(&p);
	ck_assert_int_eq(fe.type, FILE_TYPE__FILE_UNIX_SK);
	ck_assert_uint_eq(fe.unix_sk->n_queue, 0);
	ck_assert_uint_eq(fe.unix_sk->n_msgs, 3);
	ck_assert(fe.unix_sk->msgs[0]->data.len == 3 &&
		  !memcmp(fe.unix_sk->msgs[0]->data.data, "one", 3));
	ck_assert_uint_eq(fe.unix_sk->msgs[1]->data.len, 0);
	ck_assert(fe.unix_sk->msgs[2]->data.len == 5 &&
		  !memcmp(fe.unix_sk->msgs[2]->data.data, "three", 5));
	/* no credentials attached (nobody had SO_PASSCRED), no fds */
	ck_assert(!fe.unix_sk->msgs[0]->has_cred_pid && !fe.unix_sk->msgs[0]->n_fds);
	ck_assert_int_eq(fe.unix_sk->peek_off, 3);
	ck_assert_int_eq(getsockopt(sv[0], SOL_SOCKET, SO_PEEK_OFF, &got, &sl), 0);
	ck_assert_int_eq(got, 3);
	file_entry_free_fields(&fe);
	/* nothing consumed */
	off = -1;
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)), 0);
	ck_assert_int_eq(recv(sv[0], buf, sizeof(buf), 0), 3);
	ck_assert_int_eq(recv(sv[0], buf, sizeof(buf), 0), 0);
	ck_assert_int_eq(recv(sv[0], buf, sizeof(buf), 0), 5);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sockdiag");
	TCase *tc = tcase_create("unix");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_parse_canned);
	tcase_add_test(tc, test_parse_bad);
	tcase_add_test(tc, test_live_pair);
	tcase_add_test(tc, test_live_listener);
	tcase_add_test(tc, test_dump_peeks);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
