/* SPDX-License-Identifier: MIT */
/*
 * ckptd protocol framing (lib/rpc.c): round trips over a SOCK_SEQPACKET
 * socketpair with and without an fd, hand-made bad packets (oversized,
 * length mismatch, truncated, garbage, two fds, foreign control messages)
 * and request validation. Every test checks that no fd was leaked.
 */
#include <check.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "cleanup.h"
#include "restorer_io.h"
#include "rpc.h"

static int count_fds(void)
{
	_cleanup_closedir_ DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	return n - 1; /* the DIR's own fd */
}

struct pair {
	int a, b;
	int fds_before;
};

static struct pair pair_open(void)
{
	struct pair p = {.fds_before = count_fds()};
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	p.a = sv[0];
	p.b = sv[1];
	return p;
}

static void pair_close(struct pair *p)
{
	close(p->a);
	close(p->b);
	ck_assert_int_eq(count_fds(), p->fds_before);
}

/* Send raw bytes as one packet, with nfds copies of fd in SCM_RIGHTS. */
static void send_raw(int sock, const void *data, size_t len, int fd, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 32)];
	} control = {};
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds > 0) {
		struct cmsghdr *c;

		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		for (int i = 0; i < nfds; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
	}
	ck_assert_int_eq(sendmsg(sock, &mh, 0), (ssize_t)len);
}

static void send_framed(int sock, const void *payload, uint32_t len, uint32_t claimed)
{
	_cleanup_free_ uint8_t *buf = malloc(len + 4);
	uint32_t le = htole32(claimed);

	memcpy(buf, &le, 4);
	memcpy(buf + 4, payload, len);
	send_raw(sock, buf, len + 4, -1, 0);
}

/* ---- round trips ------------------------------------------------------------- */

START_TEST(test_roundtrip_no_fd)
{
	struct pair p = pair_open();
	struct ckpt_error e = {};
	Request req = REQUEST__INIT;
	CancelRequest cancel = CANCEL_REQUEST__INIT;
	Request *got = NULL;
	int fd = 123;

	req.version = RPC_PROTOCOL_VERSION;
	req.type = RPC_TYPE__RPC_CANCEL;
	cancel.job_id = 0x123456789abcULL;
	req.cancel = &cancel;
	ck_assert_int_eq(rpc_send(p.a, &req.base, -1, &e), 0);
	ck_assert_msg(rpc_recv_request(p.b, &got, &fd, NULL, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(fd, -1);
	ck_assert_int_eq(got->type, RPC_TYPE__RPC_CANCEL);
	ck_assert_ptr_nonnull(got->cancel);
	ck_assert_uint_eq(got->cancel->job_id, 0x123456789abcULL);
	ck_assert_int_eq(rpc_validate_request(got, fd, -1, &e), 0);
	rpc_request_free(got);
	pair_close(&p);
}
END_TEST

START_TEST(test_roundtrip_with_fd)
{
	struct pair p = pair_open();
	struct ckpt_error e = {};
	Request req = REQUEST__INIT;
	DumpRequest dump = DUMP_REQUEST__INIT;
	_cleanup_(rpc_request_freep) Request *got = NULL;
	struct stat st1, st2;
	int dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd = -1;

	ck_assert_int_ge(dir, 0);
	req.version = RPC_PROTOCOL_VERSION;
	req.type = RPC_TYPE__RPC_DUMP;
	dump.pid = 4242;
	dump.has_leave_running = true;
	dump.leave_running = true;
	req.dump = &dump;
	ck_assert_int_eq(rpc_send(p.a, &req.base, dir, &e), 0);
	ck_assert_msg(rpc_recv_request(p.b, &got, &fd, NULL, &e) == 0, "%s", e.msg);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ne(fd, dir);
	ck_assert_int_eq(fstat(fd, &st1), 0);
	ck_assert_int_eq(fstat(dir, &st2), 0);
	ck_assert(st1.st_ino == st2.st_ino && st1.st_dev == st2.st_dev);
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(got->dump->pid, 4242);
	ck_assert(got->dump->leave_running);
	ck_assert_msg(rpc_validate_request(got, fd, -1, &e) == 0, "%s", e.msg);
	close(fd);
	close(dir);
	pair_close(&p);
}
END_TEST

/* A restore with its commit record: two fds in one packet, both received. */
START_TEST(test_roundtrip_two_fds)
{
	struct pair p = pair_open();
	struct ckpt_error e = {};
	Request req = REQUEST__INIT;
	RestoreRequest rr = RESTORE_REQUEST__INIT;
	_cleanup_(rpc_request_freep) Request *got = NULL;
	int dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int mfd = memfd_create("t", MFD_CLOEXEC);
	int fds[2] = {dir, mfd}, fd = -1, fd2 = -1;

	ck_assert_int_ge(dir, 0);
	ck_assert_int_ge(mfd, 0);
	req.version = RPC_PROTOCOL_VERSION;
	req.type = RPC_TYPE__RPC_RESTORE;
	rr.has_commit_fd = rr.commit_fd = true;
	req.restore = &rr;
	ck_assert_int_eq(rpc_send_fds(p.a, &req.base, fds, 2, &e), 0);
	ck_assert_msg(rpc_recv_request(p.b, &got, &fd, &fd2, &e) == 0, "%s", e.msg);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(fd2, 0);
	ck_assert_msg(rpc_validate_request(got, fd, fd2, &e) == 0, "%s", e.msg);
	/* what ckpt-restore writes there, the client reads */
	{
		struct restore_commit c = {.root_pid = 4242, .ntasks = 3}, back = {0};

		ck_assert(!restore_commit_read(mfd, &back));
		ck_assert_int_eq(restore_commit_write(fd2, &c), 0);
		ck_assert(restore_commit_read(mfd, &back));
		ck_assert_int_eq(back.root_pid, 4242);
		ck_assert_uint_eq(back.ntasks, 3);
		ck_assert(!back.new_pidns);
		ck_assert_int_eq(restore_commit_write(fd2, NULL), 0);
		ck_assert(!restore_commit_read(mfd, &back));
	}
	close(fd);
	close(fd2);
	close(mfd);
	close(dir);
	pair_close(&p);
}
END_TEST

/* A second fd only as a restore's announced commit record, a writable memfd. */
START_TEST(test_validate_commit_fd)
{
	struct ckpt_error e = {};
	Request req = REQUEST__INIT;
	RestoreRequest rr = RESTORE_REQUEST__INIT;
	DumpRequest dump = DUMP_REQUEST__INIT;
	int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int mfd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int file = open("/dev/null", O_RDWR | O_CLOEXEC), ro;
	char path[64];

	ck_assert_int_ge(mfd, 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(ro, 0);
	req.version = RPC_PROTOCOL_VERSION;
	req.type = RPC_TYPE__RPC_RESTORE;
	req.restore = &rr;
	/* not announced */
	ck_assert_int_eq(rpc_validate_request(&req, dir, mfd, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "did not announce"));
	rr.has_commit_fd = rr.commit_fd = true;
	ck_assert_msg(rpc_validate_request(&req, dir, mfd, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(rpc_validate_request(&req, dir, -1, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "without its second fd"));
	ck_assert_int_eq(rpc_validate_request(&req, dir, file, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "not a memfd"));
	ck_assert_int_eq(rpc_validate_request(&req, dir, ro, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "not open read-write"));
	ck_assert_int_eq(fcntl(mfd, F_ADD_SEALS, F_SEAL_GROW), 0);
	ck_assert_int_eq(rpc_validate_request(&req, dir, mfd, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "sealed against writing"));
	/* a dump takes one fd */
	req.type = RPC_TYPE__RPC_DUMP;
	req.restore = NULL;
	dump.pid = 1;
	req.dump = &dump;
	ck_assert_int_eq(rpc_validate_request(&req, dir, file, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "did not announce"));
	/* and a status none */
	req.type = RPC_TYPE__RPC_STATUS;
	ck_assert_int_eq(rpc_validate_request(&req, -1, file, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "two fds"));
	close(ro);
	close(file);
	close(mfd);
	close(dir);
}
END_TEST

START_TEST(test_roundtrip_response)
{
	struct pair p = pair_open();
	struct ckpt_error e = {};
	Response resp = RESPONSE__INIT;
	JobInfo j1 = JOB_INFO__INIT, j2 = JOB_INFO__INIT;
	JobInfo *jobs[] = {&j1, &j2};
	_cleanup_(rpc_response_freep) Response *got = NULL;
	int fd = 0;

	resp.version = RPC_PROTOCOL_VERSION;
	resp.status = 0;
	j1.job_id = 1;
	j1.type = RPC_TYPE__RPC_DUMP;
	j1.state = JOB_STATE__JOB_DONE;
	j2.job_id = 2;
	j2.type = RPC_TYPE__RPC_RESTORE;
	j2.state = JOB_STATE__JOB_FAILED;
	j2.error = "pid 812 is taken";
	resp.n_jobs = 2;
	resp.jobs = jobs;
	ck_assert_int_eq(rpc_send(p.b, &resp.base, -1, &e), 0);
	ck_assert_msg(rpc_recv_response(p.a, &got, &fd, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(fd, -1);
	ck_assert_uint_eq(got->n_jobs, 2);
	ck_assert_str_eq(got->jobs[1]->error, "pid 812 is taken");
	ck_assert_str_eq(rpc_job_state_name(got->jobs[1]->state), "failed");
	ck_assert_str_eq(rpc_type_name(got->jobs[0]->type), "dump");

	/* and the refusal helper */
	rpc_response_free(TAKE_PTR(got));
	ck_assert_int_eq(rpc_send_error(p.b, -EPERM, "not yours", &e), 0);
	ck_assert_int_eq(rpc_recv_response(p.a, &got, NULL, &e), 0);
	ck_assert_int_eq(got->status, -EPERM);
	ck_assert_str_eq(got->error, "not yours");
	pair_close(&p);
}
END_TEST

/* ---- framing limits ------------------------------------------------------------ */

START_TEST(test_send_oversized)
{
	struct pair p = pair_open();
	struct ckpt_error e = {};
	Response resp = RESPONSE__INIT;
	_cleanup_free_ char *big = malloc(RPC_FRAME_MAX);

	memset(big, 'x', RPC_FRAME_MAX - 1);
	big[RPC_FRAME_MAX - 1] = 0;
	resp.version = RPC_PROTOCOL_VERSION;
	resp.error = big;
	ck_assert_int_eq(rpc_send(p.a, &resp.base, -1, &e), -EMSGSIZE);
	ck_assert_ptr_nonnull(strstr(e.msg, "frame limit"));
	pair_close(&p);
}
END_TEST

/* Bad packets: each must be rejected with -EBADMSG / -EMSGSIZE and a message. */
enum bad_kind {
	BAD_OVERSIZED,
	BAD_LEN_MISMATCH,
	BAD_TRUNCATED,
	BAD_GARBAGE,
	BAD_TWO_FDS,
	BAD_UNWANTED_FD,
	BAD_CREDS,
	BAD_EMPTY_FRAME,
	BAD_MANY_FDS,
};

static const struct {
	enum bad_kind kind;
	int code;
	const char *msg;
} bad_frames[] = {
    {BAD_OVERSIZED, -EMSGSIZE, "frame of 65636 bytes is over the 65536-byte limit"},
    {BAD_LEN_MISMATCH, -EBADMSG, "length field says 10 bytes but 5 bytes follow"},
    {BAD_TRUNCATED, -EBADMSG, "shorter than its length prefix"},
    {BAD_GARBAGE, -EBADMSG, "not a valid Request message"},
    {BAD_TWO_FDS, -EBADMSG, "carried 2 fds, at most 1"},
    {BAD_UNWANTED_FD, -EBADMSG, "an fd where none is expected"},
    {BAD_CREDS, -EBADMSG, "unexpected control message"},
    {BAD_EMPTY_FRAME, -EBADMSG, "not a valid Request message"},
    /* more fds than the receive buffer holds: the kernel drops the rest */
    {BAD_MANY_FDS, -EBADMSG, "more control data than expected"},
};

static void send_bad(int sock, enum bad_kind kind)
{
	static const uint8_t garbage[] = {0xff, 0xfe, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x07};
	static const uint8_t valid_status[] = {0x08, 0x01, 0x10, 0x04}; /* version 1, type 4 */
	_cleanup_close_ int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ uint8_t *big = NULL;
	uint8_t buf[8] = {};

	switch (kind) {
	case BAD_OVERSIZED:
		big = calloc(1, RPC_FRAME_MAX + 100);
		send_raw(sock, big, RPC_FRAME_MAX + 100, -1, 0);
		break;
	case BAD_LEN_MISMATCH:
		send_framed(sock, "abcde", 5, 10);
		break;
	case BAD_TRUNCATED:
		send_raw(sock, buf, 2, -1, 0);
		break;
	case BAD_GARBAGE:
		send_framed(sock, garbage, sizeof(garbage), sizeof(garbage));
		break;
	case BAD_TWO_FDS:
		memcpy(buf, &(uint32_t){htole32(4)}, 4);
		memcpy(buf + 4, valid_status, 4);
		send_raw(sock, buf, 8, dir, 2);
		break;
	case BAD_UNWANTED_FD:
		memcpy(buf, &(uint32_t){htole32(4)}, 4);
		memcpy(buf + 4, valid_status, 4);
		send_raw(sock, buf, 8, dir, 1);
		break;
	case BAD_CREDS:
		/* with SO_PASSCRED on the receiver, every packet carries
		 * SCM_CREDENTIALS: a control message the protocol has no use for */
		send_framed(sock, valid_status, 4, 4);
		break;
	case BAD_MANY_FDS:
		memcpy(buf, &(uint32_t){htole32(4)}, 4);
		memcpy(buf + 4, valid_status, 4);
		send_raw(sock, buf, 8, dir, 32);
		break;
	case BAD_EMPTY_FRAME:
		/* a prefix and no message: the required fields are missing */
		send_framed(sock, "", 0, 0);
		break;
	}
}

START_TEST(test_bad_frames)
{
	struct pair p = pair_open();
	struct ckpt_error e = {};
	Request *got = NULL;
	int fd = -7, r;
	int *want_fd = bad_frames[_i].kind == BAD_UNWANTED_FD ? NULL : &fd;

	if (bad_frames[_i].kind == BAD_CREDS)
		ck_assert_int_eq(setsockopt(p.b, SOL_SOCKET, SO_PASSCRED, &(int){1}, sizeof(int)),
				 0);
	send_bad(p.a, bad_frames[_i].kind);
	r = rpc_recv_request(p.b, &got, want_fd, NULL, &e);
	ck_assert_msg(r == bad_frames[_i].code, "case %d: got %d (%s)", _i, r, e.msg);
	ck_assert_int_eq(e.code, r);
	ck_assert_msg(strstr(e.msg, bad_frames[_i].msg), "case %d: message '%s' lacks '%s'", _i,
		      e.msg, bad_frames[_i].msg);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(fd, -7);
	pair_close(&p);
}
END_TEST

START_TEST(test_peer_closed)
{
	struct pair p = pair_open();
	struct ckpt_error e = {};
	Response *got = NULL;
	int fd = -7;

	close(p.a);
	ck_assert_int_eq(rpc_recv_response(p.b, &got, &fd, &e), -ECONNRESET);
	ck_assert_ptr_nonnull(strstr(e.msg, "closed the connection"));
	ck_assert_int_eq(rpc_send_error(p.b, -EIO, "x", &e), -EPIPE);
	p.a = open("/dev/null", O_RDONLY | O_CLOEXEC); /* for pair_close */
	pair_close(&p);
}
END_TEST

START_TEST(test_recv_timeout)
{
	struct pair p = pair_open();
	struct ckpt_error e = {};
	struct timeval tv = {.tv_usec = 10000};
	Response *got = NULL;

	ck_assert_int_eq(setsockopt(p.a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	ck_assert_int_eq(rpc_recv_response(p.a, &got, NULL, &e), -EAGAIN);
	ck_assert_ptr_nonnull(strstr(e.msg, "no message to receive"));
	pair_close(&p);
}
END_TEST

/* ---- validation ------------------------------------------------------------------ */

enum fd_kind { FD_NONE, FD_DIR, FD_FILE };

static DumpRequest dump_ok = {.base = PROTOBUF_C_MESSAGE_INIT(&dump_request__descriptor),
			      .pid = 812};
static DumpRequest dump_pid0 = {.base = PROTOBUF_C_MESSAGE_INIT(&dump_request__descriptor),
				.pid = 0};
static RestoreRequest restore_ok = RESTORE_REQUEST__INIT;
static CancelRequest cancel_ok = CANCEL_REQUEST__INIT;

static const struct {
	uint32_t version;
	int type;
	DumpRequest *dump;
	RestoreRequest *restore;
	CancelRequest *cancel;
	enum fd_kind fd;
	int code;
	const char *msg;
} validations[] = {
    {1, RPC_TYPE__RPC_DUMP, &dump_ok, NULL, NULL, FD_DIR, 0, NULL},
    {1, RPC_TYPE__RPC_RESTORE, NULL, &restore_ok, NULL, FD_DIR, 0, NULL},
    {1, RPC_TYPE__RPC_STATUS, NULL, NULL, NULL, FD_NONE, 0, NULL},
    {1, RPC_TYPE__RPC_VERSION, NULL, NULL, NULL, FD_NONE, 0, NULL},
    {1, RPC_TYPE__RPC_CANCEL, NULL, NULL, &cancel_ok, FD_NONE, 0, NULL},
    {2, RPC_TYPE__RPC_STATUS, NULL, NULL, NULL, FD_NONE, -EPROTONOSUPPORT,
     "client speaks protocol version 2, this ckptd speaks version 1"},
    {0, RPC_TYPE__RPC_DUMP, &dump_ok, NULL, NULL, FD_DIR, -EPROTONOSUPPORT, "version 0"},
    {1, 99, NULL, NULL, NULL, FD_NONE, -EINVAL, "unknown request type 99"},
    {1, RPC_TYPE__RPC_DUMP, NULL, NULL, NULL, FD_DIR, -EINVAL, "without its dump field"},
    {1, RPC_TYPE__RPC_RESTORE, NULL, NULL, NULL, FD_DIR, -EINVAL, "without its restore field"},
    {1, RPC_TYPE__RPC_CANCEL, NULL, NULL, NULL, FD_NONE, -EINVAL, "without its cancel field"},
    {1, RPC_TYPE__RPC_DUMP, &dump_pid0, NULL, NULL, FD_DIR, -EINVAL, "pid 0 is not a valid"},
    {1, RPC_TYPE__RPC_DUMP, &dump_ok, NULL, NULL, FD_NONE, -EINVAL,
     "without the image directory fd"},
    {1, RPC_TYPE__RPC_DUMP, &dump_ok, NULL, NULL, FD_FILE, -ENOTDIR, "is not a directory"},
    {1, RPC_TYPE__RPC_RESTORE, NULL, &restore_ok, NULL, FD_FILE, -ENOTDIR, "is not a directory"},
    {1, RPC_TYPE__RPC_STATUS, NULL, NULL, NULL, FD_DIR, -EINVAL, "it takes none"},
};

START_TEST(test_validate)
{
	int before = count_fds();
	struct ckpt_error e = {};
	Request req = REQUEST__INIT;
	int fd = -1, r;

	if (validations[_i].fd == FD_DIR)
		fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else if (validations[_i].fd == FD_FILE)
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	req.version = validations[_i].version;
	req.type = validations[_i].type;
	req.dump = validations[_i].dump;
	req.restore = validations[_i].restore;
	req.cancel = validations[_i].cancel;
	r = rpc_validate_request(&req, fd, -1, &e);
	ck_assert_msg(r == validations[_i].code, "case %d: got %d (%s)", _i, r, e.msg);
	if (validations[_i].msg)
		ck_assert_msg(strstr(e.msg, validations[_i].msg), "case %d: '%s' lacks '%s'", _i,
			      e.msg, validations[_i].msg);
	if (fd >= 0)
		close(fd);
	ck_assert_int_eq(count_fds(), before);
}
END_TEST

/* A request with an unknown version still unpacks, so ckptd can answer it. */
START_TEST(test_unknown_version_on_wire)
{
	struct pair p = pair_open();
	struct ckpt_error e = {};
	Request req = REQUEST__INIT;
	_cleanup_(rpc_request_freep) Request *got = NULL;
	int fd;

	req.version = 7;
	req.type = RPC_TYPE__RPC_VERSION;
	ck_assert_int_eq(rpc_send(p.a, &req.base, -1, &e), 0);
	ck_assert_int_eq(rpc_recv_request(p.b, &got, &fd, NULL, &e), 0);
	ck_assert_int_eq(rpc_validate_request(got, fd, -1, &e), -EPROTONOSUPPORT);
	ck_assert_ptr_nonnull(strstr(e.msg, "version 7"));
	pair_close(&p);
}
END_TEST

/* ---- connect ----------------------------------------------------------------- */

START_TEST(test_connect)
{
	int before = count_fds();
	struct ckpt_error e = {};
	char dir[] = "/tmp/check_rpc.XXXXXX", path[128];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char longpath[200];
	int lfd, cfd = -1, afd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ckptd.sock", dir);
	ck_assert_int_eq(rpc_connect(path, &cfd, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "ckptd is not running at"));
	ck_assert_int_eq(cfd, -1);

	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	ck_assert_int_eq(rpc_connect(longpath, &cfd, &e), -ENAMETOOLONG);

	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, path);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	ck_assert_msg(rpc_connect(path, &cfd, &e) == 0, "%s", e.msg);
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(afd, 0);
	ck_assert_int_eq(rpc_send_error(afd, 0, NULL, &e), 0);
	close(afd);
	close(cfd);
	close(lfd);
	unlink(path);
	rmdir(dir);
	ck_assert_int_eq(count_fds(), before);
}
END_TEST

START_TEST(test_fault_injection)
{
	struct pair p = pair_open();
	struct ckpt_error e = {};

	setenv("CKPT_FAULT", "rpc-send", 1);
	ck_assert_int_eq(rpc_send_error(p.a, 0, NULL, &e), -EIO);
	ck_assert_ptr_nonnull(strstr(e.msg, "rpc-send"));
	unsetenv("CKPT_FAULT");
	pair_close(&p);
}
END_TEST

/* ---- the client library against a fake ckptd ------------------------------------ */

enum srv_mode {
	SRV_DUMP_OK,
	SRV_REFUSE,
	SRV_HANGUP,
	SRV_STATUS,
	SRV_BAD_VERSION,
	SRV_VERSION,
	SRV_HANGUP_COMMITTED, /* a restore: commit record written, then gone */
};

struct server {
	char dir[64];
	char path[128];
	pid_t pid;
	int fds_before;
};

static void send_progress(int sock, uint32_t done)
{
	struct ckpt_error e = {};
	Response resp = RESPONSE__INIT;
	Progress pr = PROGRESS__INIT;

	resp.version = RPC_PROTOCOL_VERSION;
	pr.job_id = 7;
	pr.has_tasks_done = pr.has_tasks_total = pr.has_bytes = true;
	pr.tasks_done = done;
	pr.tasks_total = 3;
	pr.bytes = done * 1000;
	resp.progress = &pr;
	rpc_send(sock, &resp.base, -1, &e);
}

/* The dump a daemon would do: write into the directory it was handed. */
static int serve_dump(int sock, const Request *req, int dirfd)
{
	struct ckpt_error e = {};
	Response resp = RESPONSE__INIT;
	JobInfo job = JOB_INFO__INIT;
	int fd;

	if (req->type != RPC_TYPE__RPC_DUMP || req->dump->pid != 4242 || !req->dump->leave_running)
		return 20;
	fd = openat(dirfd, "inventory.img", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return 21;
	close(fd);
	if (req->want_progress) {
		send_progress(sock, 1);
		send_progress(sock, 3);
	}
	resp.version = RPC_PROTOCOL_VERSION;
	job.job_id = 7;
	job.type = RPC_TYPE__RPC_DUMP;
	job.state = JOB_STATE__JOB_DONE;
	job.has_pid = job.has_seconds = job.has_tasks_total = true;
	job.pid = 4242;
	job.seconds = 0.5;
	job.tasks_total = 3;
	resp.job = &job;
	resp.has_images_bytes = true;
	resp.images_bytes = 8192;
	return rpc_send(sock, &resp.base, -1, &e) < 0 ? 22 : 0;
}

static int serve_status(int sock)
{
	struct ckpt_error e = {};
	Response resp = RESPONSE__INIT;
	JobInfo j1 = JOB_INFO__INIT, j2 = JOB_INFO__INIT;
	JobInfo *jobs[] = {&j1, &j2};

	resp.version = RPC_PROTOCOL_VERSION;
	j1.job_id = 1;
	j1.type = RPC_TYPE__RPC_DUMP;
	j1.state = JOB_STATE__JOB_RUNNING;
	j2.job_id = 2;
	j2.type = RPC_TYPE__RPC_RESTORE;
	j2.state = JOB_STATE__JOB_FAILED;
	j2.error = "pid 812 is taken";
	resp.n_jobs = 2;
	resp.jobs = jobs;
	return rpc_send(sock, &resp.base, -1, &e) < 0 ? 30 : 0;
}

static int serve_one(int lfd, enum srv_mode mode)
{
	_cleanup_(rpc_request_freep) Request *req = NULL;
	struct ckpt_error e = {};
	Response resp = RESPONSE__INIT;
	_cleanup_close_ int sock = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	_cleanup_close_ int fd = -1, fd2 = -1;

	if (sock < 0 || rpc_recv_request(sock, &req, &fd, &fd2, &e) < 0)
		return 10;
	if (rpc_validate_request(req, fd, fd2, &e) < 0)
		return rpc_send_error(sock, e.code, e.msg, &e) < 0 ? 11 : 0;
	resp.version = RPC_PROTOCOL_VERSION;
	switch (mode) {
	case SRV_DUMP_OK:
		return serve_dump(sock, req, fd);
	case SRV_REFUSE:
		return rpc_send_error(sock, -EPERM, "pid 1: not yours", &e) < 0 ? 12 : 0;
	case SRV_HANGUP:
		return 0;
	case SRV_HANGUP_COMMITTED:
		/* what ckpt-restore writes before the tree runs; ckptd dies */
		return restore_commit_write(
			   fd2, &(struct restore_commit){.root_pid = 4343, .ntasks = 2}) < 0
			   ? 14
			   : 0;
	case SRV_STATUS:
		return serve_status(sock);
	case SRV_BAD_VERSION:
		resp.version = 9;
		break;
	case SRV_VERSION:
		resp.daemon_version = "0.1.0";
		break;
	}
	return rpc_send(sock, &resp.base, -1, &e) < 0 ? 13 : 0;
}

static void server_start(struct server *s, enum srv_mode mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int lfd;

	s->fds_before = count_fds();
	strcpy(s->dir, "/tmp/check_rpc.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(s->dir));
	snprintf(s->path, sizeof(s->path), "%s/ckptd.sock", s->dir);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, s->path);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	s->pid = fork();
	ck_assert_int_ge(s->pid, 0);
	if (s->pid == 0)
		_exit(serve_one(lfd, mode));
	close(lfd);
}

/* Wait for the fake daemon, check it was happy, remove its files. */
static void server_stop(struct server *s)
{
	char cmd[160];
	int status;

	ck_assert_int_eq(waitpid(s->pid, &status, 0), s->pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fake ckptd: status 0x%x",
		      status);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", s->dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(count_fds(), s->fds_before);
}

static void count_progress(const struct ckpt_progress *p, void *data)
{
	unsigned *n = data;

	ck_assert_uint_eq(p->job_id, 7);
	ck_assert_uint_eq(p->tasks_total, 3);
	(*n)++;
}

START_TEST(test_client_dump)
{
	struct server s;
	struct ckpt_result r;
	char img[192], file[224];
	unsigned nprogress = 0;
	struct stat st;

	server_start(&s, SRV_DUMP_OK);
	snprintf(img, sizeof(img), "%s/img", s.dir);
	struct ckpt_dump_opts o = {.pid = 4242,
				   .dir = img,
				   .leave_running = 1,
				   .socket = s.path,
				   .progress = _i ? count_progress : NULL,
				   .progress_data = &nprogress};
	ck_assert_msg(ckpt_dump(&o, &r) == 0, "%s", r.error);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.error, "");
	ck_assert_int_eq(r.pid, 4242);
	ck_assert_uint_eq(r.ntasks, 3);
	ck_assert_uint_eq(r.bytes, 8192);
	ck_assert_uint_eq(r.job_id, 7);
	ck_assert(r.seconds == 0.5);
	ck_assert_uint_eq(nprogress, _i ? 2 : 0);
	ck_assert_int_eq(stat(img, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	snprintf(file, sizeof(file), "%s/inventory.img", img);
	ck_assert_int_eq(access(file, F_OK), 0);
	server_stop(&s);
}
END_TEST

static const struct {
	enum srv_mode mode;
	int code;
	const char *msg;
} client_failures[] = {
    {SRV_REFUSE, -EPERM, "pid 1: not yours"},
    {SRV_HANGUP, -ECONNRESET,
     "ckptd went away before the checkpoint was complete: nothing was checkpointed"},
    {SRV_BAD_VERSION, -EPROTONOSUPPORT, "protocol version 9, this libckpt speaks version 1"},
};

START_TEST(test_client_dump_fails)
{
	struct server s;
	struct ckpt_result r;
	char img[192];

	server_start(&s, client_failures[_i].mode);
	snprintf(img, sizeof(img), "%s/img", s.dir);
	struct ckpt_dump_opts o = {.pid = 4242, .dir = img, .socket = s.path};
	ck_assert_int_eq(ckpt_dump(&o, &r), client_failures[_i].code);
	ck_assert_int_eq(r.status, client_failures[_i].code);
	ck_assert_msg(strstr(r.error, client_failures[_i].msg), "'%s' lacks '%s'", r.error,
		      client_failures[_i].msg);
	/* the directory made for the dump does not outlive it */
	ck_assert_int_eq(access(img, F_OK), -1);
	server_stop(&s);
}
END_TEST

/*
 * ckptd gone without an answer during a restore: libckpt waits for the
 * directory and answers from the commit record it sent (the tree runs), or
 * says nothing was restored.
 */
START_TEST(test_client_restore_lost)
{
	struct server s;
	struct ckpt_result r;

	server_start(&s, _i ? SRV_HANGUP_COMMITTED : SRV_HANGUP);
	struct ckpt_restore_opts o = {.dir = s.dir, .socket = s.path};
	if (_i) {
		ck_assert_msg(ckpt_restore(&o, &r) == 0, "%s", r.error);
		ck_assert_int_eq(r.pid, 4343);
		ck_assert_uint_eq(r.ntasks, 2);
	} else {
		ck_assert_int_eq(ckpt_restore(&o, &r), -ECONNRESET);
		ck_assert_msg(strstr(r.error, "ckptd went away during the restore: nothing was "
					      "restored"),
			      "%s", r.error);
	}
	server_stop(&s);
}
END_TEST

START_TEST(test_client_bad_dirs)
{
	int before = count_fds();
	struct ckpt_result r;
	char dir[] = "/tmp/check_rpc.XXXXXX", file[64];
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/old.img", dir);
	fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	close(fd);

	struct ckpt_dump_opts d = {.pid = 1, .dir = dir, .socket = "/nonexistent"};
	ck_assert_int_eq(ckpt_dump(&d, &r), -ENOTEMPTY);
	ck_assert_ptr_nonnull(strstr(r.error, "is not empty (holds 'old.img')"));

	d.dir = file;
	ck_assert_int_eq(ckpt_dump(&d, &r), -ENOTDIR);
	ck_assert_ptr_nonnull(strstr(r.error, "opening image directory"));

	d.pid = 0;
	ck_assert_int_eq(ckpt_dump(&d, &r), -EINVAL);
	ck_assert_int_eq(ckpt_dump(NULL, NULL), -EINVAL);

	struct ckpt_restore_opts o = {.dir = "/nonexistent/img", .socket = "/nonexistent"};
	ck_assert_int_eq(ckpt_restore(&o, &r), -ENOENT);
	ck_assert_ptr_nonnull(strstr(r.error, "opening image directory /nonexistent/img"));

	unlink(file);
	rmdir(dir);
	ck_assert_int_eq(count_fds(), before);
}
END_TEST

START_TEST(test_client_status)
{
	struct server s;
	struct ckpt_result r;
	struct ckpt_job *jobs = NULL;
	size_t n = 0;

	server_start(&s, SRV_STATUS);
	ck_assert_msg(ckpt_job_status(s.path, &jobs, &n, &r) == 0, "%s", r.error);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(jobs[0].state, CKPT_JOB_RUNNING);
	ck_assert_ptr_null(jobs[0].error);
	ck_assert_int_eq(jobs[1].type, CKPT_JOB_RESTORE);
	ck_assert_str_eq(ckpt_job_state_name(jobs[1].state), "failed");
	ck_assert_str_eq(jobs[1].error, "pid 812 is taken");
	ckpt_jobs_free(jobs, n);
	server_stop(&s);
}
END_TEST

/* $CKPT_SOCKET is the socket when the caller names none. */
START_TEST(test_client_env_socket)
{
	struct server s;
	struct ckpt_result r;
	char v[16];

	server_start(&s, SRV_VERSION);
	setenv("CKPT_SOCKET", s.path, 1);
	ck_assert_msg(ckpt_daemon_version(NULL, v, sizeof(v), &r) == 0, "%s", r.error);
	ck_assert_str_eq(v, "0.1.0");
	unsetenv("CKPT_SOCKET");
	server_stop(&s);
}
END_TEST

/* The daemon's validation error travels back to the caller as is. */
START_TEST(test_client_cancel_refused)
{
	struct server s;
	struct ckpt_result r;

	server_start(&s, SRV_REFUSE);
	ck_assert_int_eq(ckpt_cancel(s.path, 99, &r), -EPERM);
	ck_assert_str_eq(r.error, "pid 1: not yours");
	ck_assert_uint_eq(r.job_id, 99);
	server_stop(&s);
}
END_TEST

static Suite *rpc_suite(void)
{
	Suite *s = suite_create("rpc");
	TCase *tc = tcase_create("framing");

	tcase_add_test(tc, test_roundtrip_no_fd);
	tcase_add_test(tc, test_roundtrip_with_fd);
	tcase_add_test(tc, test_roundtrip_two_fds);
	tcase_add_test(tc, test_roundtrip_response);
	tcase_add_test(tc, test_send_oversized);
	tcase_add_loop_test(tc, test_bad_frames, 0, ARRAY_SIZE(bad_frames));
	tcase_add_test(tc, test_peer_closed);
	tcase_add_test(tc, test_recv_timeout);
	suite_add_tcase(s, tc);

	tc = tcase_create("validate");
	tcase_add_loop_test(tc, test_validate, 0, ARRAY_SIZE(validations));
	tcase_add_test(tc, test_unknown_version_on_wire);
	tcase_add_test(tc, test_validate_commit_fd);
	suite_add_tcase(s, tc);

	tc = tcase_create("connect");
	tcase_add_test(tc, test_connect);
	tcase_add_test(tc, test_fault_injection);
	suite_add_tcase(s, tc);

	tc = tcase_create("client");
	tcase_add_loop_test(tc, test_client_dump, 0, 2);
	tcase_add_loop_test(tc, test_client_dump_fails, 0, ARRAY_SIZE(client_failures));
	tcase_add_loop_test(tc, test_client_restore_lost, 0, 2);
	tcase_add_test(tc, test_client_bad_dirs);
	tcase_add_test(tc, test_client_status);
	tcase_add_test(tc, test_client_env_socket);
	tcase_add_test(tc, test_client_cancel_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rpc_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
