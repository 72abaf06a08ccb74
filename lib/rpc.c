/* SPDX-License-Identifier: MIT */
/*
 * Framing of the ckptd protocol over SOCK_SEQPACKET: see rpc.h and
 * docs/protocol.md.
 */
#define LOG_PREFIX "rpc: "

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "image.h"
#include "log.h"
#include "restorer_io.h"
#include "rpc.h"

/* Room for a few fds, so that a peer sending too many still has them all
 * received (and closed) rather than some dropped by the kernel. */
#define RPC_MAX_CMSG_FDS 16

const char *rpc_type_name(int type)
{
	switch (type) {
	case RPC_TYPE__RPC_VERSION:
		return "version";
	case RPC_TYPE__RPC_DUMP:
		return "dump";
	case RPC_TYPE__RPC_RESTORE:
		return "restore";
	case RPC_TYPE__RPC_STATUS:
		return "status";
	case RPC_TYPE__RPC_CANCEL:
		return "cancel";
	case RPC_TYPE__RPC_PRESERVE:
		return "preserve";
	}
	return "unknown";
}

const char *rpc_job_state_name(int state)
{
	switch (state) {
	case JOB_STATE__JOB_RUNNING:
		return "running";
	case JOB_STATE__JOB_DONE:
		return "done";
	case JOB_STATE__JOB_FAILED:
		return "failed";
	case JOB_STATE__JOB_CANCELLED:
		return "cancelled";
	}
	return "unknown";
}

/* The fds of fds[] that are not -1 (at most 2), in order, in one SCM_RIGHTS. */
static ssize_t sendmsg_fds(int sock, const void *buf, size_t len, const int *all, size_t nall)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} control = {};
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	int fds[2];
	size_t nfds = 0;
	ssize_t n;

	for (size_t i = 0; i < nall; i++) {
		if (all[i] < 0)
			continue;
		if (nfds == 2)
			return -EINVAL;
		fds[nfds++] = all[i];
	}
	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

ssize_t rpc_sendmsg_fd(int sock, const void *buf, size_t len, int fd)
{
	return sendmsg_fds(sock, buf, len, &fd, 1);
}

int rpc_send(int sock, const ProtobufCMessage *msg, int fd, struct ckpt_error *e)
{
	return rpc_send_fds(sock, msg, &fd, 1, e);
}

int rpc_send_fds(int sock, const ProtobufCMessage *msg, const int *fds, size_t nfds,
		 struct ckpt_error *e)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	_cleanup_free_ uint8_t *buf = NULL;
	uint32_t le;
	ssize_t n;
	int r;

	r = ckpt_fault_inject("rpc-send", e);
	if (r < 0)
		return r;
	if (len > RPC_FRAME_MAX - sizeof(le))
		return ckpt_err(e, -EMSGSIZE,
				"%s message of %zu bytes is over the %d-byte frame limit",
				msg->descriptor->short_name, len, RPC_FRAME_MAX);
	buf = malloc(sizeof(le) + len);
	if (!buf)
		return ckpt_err(e, -ENOMEM, "out of memory for a %zu-byte frame", len);
	le = htole32((uint32_t)len);
	memcpy(buf, &le, sizeof(le));
	protobuf_c_message_pack(msg, buf + sizeof(le));

	n = sendmsg_fds(sock, buf, sizeof(le) + len, fds, nfds);
	if (n < 0)
		return ckpt_err_errno(e, (int)n, "sending %s message (%zu bytes%s)",
				      msg->descriptor->short_name, len,
				      nfds && fds[0] >= 0 ? ", with fds" : "");
	if ((size_t)n != sizeof(le) + len)
		return ckpt_err(e, -EIO, "sending %s message: short send of %zd of %zu bytes",
				msg->descriptor->short_name, n, sizeof(le) + len);
	pr_debug("sent %s (%zu bytes)\n", msg->descriptor->short_name, len);
	return 0;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * Collect the fds of every SCM_RIGHTS message into fds[] (so that all of them
 * can be closed whatever happens next); report any other control message.
 */
static int collect_fds(struct msghdr *mh, int *fds, size_t *nfds, struct ckpt_error *e)
{
	int r = 0;

	*nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < n && *nfds < RPC_MAX_CMSG_FDS; i++)
				memcpy(&fds[(*nfds)++], CMSG_DATA(c) + i * sizeof(int),
				       sizeof(int));
			continue;
		}
		if (r == 0)
			r = ckpt_err(e, -EBADMSG,
				     "unexpected control message (level %d, type %d) in a frame",
				     c->cmsg_level, c->cmsg_type);
	}
	return r;
}

/* Check the packet's flags, control messages and length prefix. */
static int check_frame(struct msghdr *mh, ssize_t n, size_t nfds, size_t max_fds,
		       struct ckpt_error *e)
{
	uint32_t le;

	if (mh->msg_flags & MSG_TRUNC)
		return ckpt_err(e, -EMSGSIZE, "frame of %zd bytes is over the %d-byte limit", n,
				RPC_FRAME_MAX);
	if (mh->msg_flags & MSG_CTRUNC)
		return ckpt_err(e, -EBADMSG,
				"frame carried more control data than expected "
				"(more than one fd?)");
	if (nfds > max_fds && max_fds)
		return ckpt_err(e, -EBADMSG, "frame carried %zu fds, at most %zu %s allowed", nfds,
				max_fds, max_fds == 1 ? "is" : "are");
	if (nfds && !max_fds)
		return ckpt_err(e, -EBADMSG, "frame carried an fd where none is expected");
	if ((size_t)n < sizeof(le))
		return ckpt_err(e, -EBADMSG, "frame of %zd bytes is shorter than its length prefix",
				n);
	memcpy(&le, mh->msg_iov->iov_base, sizeof(le));
	if (le32toh(le) != (size_t)n - sizeof(le))
		return ckpt_err(e, -EBADMSG,
				"frame length field says %u bytes but %zu bytes follow it",
				le32toh(le), (size_t)n - sizeof(le));
	return 0;
}

/*
 * Receive one packet into buf; on success *ret_len is the payload length
 * (after the prefix) and ret_fds[0..max_fds) its fds, -1 where none came.
 */
static int recv_frame(int sock, uint8_t *buf, size_t *ret_len, int *ret_fds, size_t max_fds,
		      struct ckpt_error *e)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * RPC_MAX_CMSG_FDS)];
	} control = {};
	struct iovec iov = {.iov_base = buf, .iov_len = RPC_FRAME_MAX};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = control.buf,
			    .msg_controllen = sizeof(control.buf)};
	int fds[RPC_MAX_CMSG_FDS];
	size_t nfds = 0;
	ssize_t n;
	int r;

	do
		/* MSG_TRUNC: n is the real size of an oversized packet */
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return ckpt_err(e, -EAGAIN,
					"no message to receive (timeout, or non-blocking socket)");
		return ckpt_err_errno(e, -errno, "receiving a message");
	}
	r = collect_fds(&mh, fds, &nfds, e);
	if (r == 0 && n == 0 && nfds == 0)
		r = ckpt_err(e, -ECONNRESET, "the peer closed the connection");
	if (r == 0)
		r = check_frame(&mh, n, nfds, max_fds, e);
	if (r < 0) {
		close_fds(fds, nfds);
		return r;
	}
	*ret_len = (size_t)n - sizeof(uint32_t);
	for (size_t i = 0; i < max_fds; i++)
		ret_fds[i] = i < nfds ? fds[i] : -1;
	return 0;
}

static int recv_msg(int sock, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **ret,
		    int *ret_fd, int *ret_fd2, struct ckpt_error *e)
{
	_cleanup_free_ uint8_t *buf = malloc(RPC_FRAME_MAX);
	int fds[2] = {-1, -1};
	_cleanup_close_ int fd = -1, fd2 = -1;
	ProtobufCMessage *msg;
	size_t len = 0;
	int r;

	if (!buf)
		return ckpt_err(e, -ENOMEM, "out of memory for a receive buffer");
	r = ckpt_fault_inject("rpc-recv", e);
	if (r < 0)
		return r;
	r = recv_frame(sock, buf, &len, fds, ret_fd ? (ret_fd2 ? 2 : 1) : 0, e);
	if (r < 0)
		return r;
	fd = fds[0];
	fd2 = fds[1];
	msg = protobuf_c_message_unpack(desc, NULL, len, buf + sizeof(uint32_t));
	if (!msg)
		return ckpt_err(
		    e, -EBADMSG,
		    "frame of %zu bytes is not a valid %s message (bad or missing fields)", len,
		    desc->short_name);
	pr_debug("received %s (%zu bytes, fds %d %d)\n", desc->short_name, len, fd, fd2);
	*ret = msg;
	if (ret_fd)
		*ret_fd = TAKE_FD(fd);
	if (ret_fd2)
		*ret_fd2 = TAKE_FD(fd2);
	return 0;
}

int rpc_recv_request(int sock, Request **ret, int *ret_fd, int *ret_fd2, struct ckpt_error *e)
{
	return recv_msg(sock, &request__descriptor, (ProtobufCMessage **)ret, ret_fd,
			ret_fd ? ret_fd2 : NULL, e);
}

int rpc_recv_response(int sock, Response **ret, int *ret_fd, struct ckpt_error *e)
{
	return recv_msg(sock, &response__descriptor, (ProtobufCMessage **)ret, ret_fd, NULL, e);
}

void rpc_request_free(Request *req)
{
	if (req)
		request__free_unpacked(req, NULL);
}

void rpc_response_free(Response *resp)
{
	if (resp)
		response__free_unpacked(resp, NULL);
}

static int check_dir_fd(const Request *req, int fd, struct ckpt_error *e)
{
	struct stat st;

	if (fd < 0)
		return ckpt_err(e, -EINVAL,
				"%s request came without the image directory fd (SCM_RIGHTS)",
				rpc_type_name(req->type));
	if (fstat(fd, &st) < 0)
		return ckpt_err_errno(e, -errno, "%s request: fstat of the image directory fd",
				      rpc_type_name(req->type));
	if (!S_ISDIR(st.st_mode))
		return ckpt_err(e, -ENOTDIR,
				"%s request: the fd passed as image directory is not a directory "
				"(mode 0%o)",
				rpc_type_name(req->type), (unsigned)(st.st_mode & S_IFMT));
	return 0;
}

/* A restore's commit record: a memfd we may write (and grow). */
static int check_commit_fd(const Request *req, int fd2, struct ckpt_error *e)
{
	bool want = req->type == RPC_TYPE__RPC_RESTORE && req->restore->has_commit_fd &&
		    req->restore->commit_fd;
	int seals, fl;

	if (!want && fd2 >= 0)
		return ckpt_err(e, -EINVAL, "%s request came with a second fd it did not announce",
				rpc_type_name(req->type));
	if (!want)
		return 0;
	if (fd2 < 0)
		return ckpt_err(e, -EINVAL,
				"restore request with commit_fd came without its second fd");
	seals = fcntl(fd2, F_GET_SEALS);
	fl = fcntl(fd2, F_GETFL);
	if (seals < 0 || fl < 0)
		return ckpt_err(e, -EINVAL, "restore request: the commit_fd is not a memfd");
	if ((fl & O_ACCMODE) != O_RDWR)
		return ckpt_err(e, -EINVAL,
				"restore request: the commit_fd is not open read-write");
	if (seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_FUTURE_WRITE))
		return ckpt_err(e, -EINVAL,
				"restore request: the commit_fd is sealed against writing");
	return 0;
}

int rpc_validate_request(const Request *req, int fd, int fd2, struct ckpt_error *e)
{
	int r;

	if (req->version != RPC_PROTOCOL_VERSION)
		return ckpt_err(e, -EPROTONOSUPPORT,
				"client speaks protocol version %u, this ckptd speaks version %d",
				req->version, RPC_PROTOCOL_VERSION);
	switch (req->type) {
	case RPC_TYPE__RPC_VERSION:
	case RPC_TYPE__RPC_STATUS:
		break;
	case RPC_TYPE__RPC_DUMP:
		if (!req->dump)
			return ckpt_err(e, -EINVAL, "dump request without its dump field");
		if (req->dump->pid <= 0)
			return ckpt_err(e, -EINVAL, "dump request: pid %d is not a valid pid",
					req->dump->pid);
		r = check_dir_fd(req, fd, e);
		return r < 0 ? r : check_commit_fd(req, fd2, e);
	case RPC_TYPE__RPC_RESTORE:
		if (!req->restore)
			return ckpt_err(e, -EINVAL, "restore request without its restore field");
		r = check_dir_fd(req, fd, e);
		return r < 0 ? r : check_commit_fd(req, fd2, e);
	case RPC_TYPE__RPC_CANCEL:
		if (!req->cancel)
			return ckpt_err(e, -EINVAL, "cancel request without its cancel field");
		break;
	case RPC_TYPE__RPC_PRESERVE:
		if (!req->preserve)
			return ckpt_err(e, -EINVAL, "preserve request without its preserve field");
		switch (req->preserve->op) {
		case PRESERVE_OP__PRESERVE_OP_REGISTER:
			if (!req->preserve->has_pid || req->preserve->pid <= 0)
				return ckpt_err(e, -EINVAL, "preserve request: no valid pid");
			break;
		case PRESERVE_OP__PRESERVE_OP_CANCEL:
			if (!req->preserve->has_id)
				return ckpt_err(e, -EINVAL,
						"preserve cancel request without an id");
			break;
		case PRESERVE_OP__PRESERVE_OP_LIST:
		case PRESERVE_OP__PRESERVE_OP_DUMP_ALL:
		case PRESERVE_OP__PRESERVE_OP_RESTORE_ALL:
			break;
		default:
			return ckpt_err(e, -EINVAL, "preserve request: unknown operation %d",
					(int)req->preserve->op);
		}
		break;
	default:
		return ckpt_err(e, -EINVAL, "unknown request type %d", (int)req->type);
	}
	if (fd2 >= 0)
		return ckpt_err(e, -EINVAL, "%s request came with two fds; it takes none",
				rpc_type_name(req->type));
	if (fd >= 0)
		return ckpt_err(e, -EINVAL, "%s request came with an fd; it takes none",
				rpc_type_name(req->type));
	return 0;
}

int rpc_connect(const char *path, int *ret_fd, struct ckpt_error *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	size_t len = strlen(path);
	int r;

	r = ckpt_fault_inject("rpc-connect", e);
	if (r < 0)
		return r;
	if (len == 0 || len >= sizeof(sa.sun_path))
		return ckpt_err(e, -ENAMETOOLONG,
				"socket path '%s' is empty or longer than %zu bytes", path,
				sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, len);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "creating a unix socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		if (r == -ENOENT || r == -ECONNREFUSED)
			return ckpt_err(e, r,
					"ckptd is not running at %s: %s (start ckptd.socket, or "
					"set CKPT_SOCKET)",
					path, strerror(-r));
		return ckpt_err_errno(e, r, "connecting to ckptd at %s", path);
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int rpc_send_error(int sock, int status, const char *msg, struct ckpt_error *e)
{
	Response resp = RESPONSE__INIT;

	resp.version = RPC_PROTOCOL_VERSION;
	resp.status = status;
	resp.error = (char *)msg;
	return rpc_send(sock, &resp.base, -1, e);
}

/*
 * Wait, at most timeout_s, until no worker of ckptd holds the directory
 * any more, then tell what happened. A dump: 1 if the directory holds a
 * complete checkpoint (verified), else 0 and the partial images are removed
 * (inventory.img first); the tree was resumed. A restore: 1 and *ret_commit
 * if its commit record (commit_fd) says committed: the tree runs; else 0,
 * nothing was restored. -ETIMEDOUT if the directory is still held.
 */
static int settle_lost_job(int dir_fd, int commit_fd, int type, unsigned timeout_s,
			   struct restore_commit *ret_commit, struct ckpt_error *e)
{
	_cleanup_close_ int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct timespec t0, t;
	Inventory *inv = NULL;
	struct ckpt_error ve = {0};

	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open the image directory again");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* the worker holds the directory (flock) until it is gone, and it
	 * waits for its ckpt-restore */
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return ckpt_err_errno(e, -errno, "cannot lock the image directory");
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= (time_t)timeout_s)
			return ckpt_err(e, -ETIMEDOUT,
					"ckptd went away and its worker still holds the image "
					"directory after %u s: the outcome is unknown",
					timeout_s);
		nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
	}
	if (type != RPC_TYPE__RPC_DUMP)
		return restore_commit_read(commit_fd, ret_commit) ? 1 : 0;
	if (img_dir_verify_fd(fd, "the image directory", &inv, &ve) == 0) {
		inventory__free_unpacked(inv, NULL);
		return 1;
	}
	pr_debug("no complete checkpoint: %s", ve.msg);
	img_dir_remove_images(fd);
	return 0;
}

int rpc_settle_lost(int dir_fd, int commit_fd, int type, unsigned timeout_s, Response **ret,
		    struct ckpt_error *e)
{
	JobInfo ji = JOB_INFO__INIT;
	Response resp = RESPONSE__INIT;
	struct restore_commit cr;
	uint8_t buf[256];
	int r = settle_lost_job(dir_fd, commit_fd, type, timeout_s, &cr, e);

	if (r < 0)
		return r;
	if (r == 0)
		return ckpt_err(e, -ECONNRESET,
				type == RPC_TYPE__RPC_DUMP
				    ? "ckptd went away before the checkpoint was complete: nothing "
				      "was checkpointed, the program runs on"
				    : "ckptd went away during the restore: nothing was restored");
	ji.type = type;
	ji.state = JOB_STATE__JOB_DONE;
	if (type == RPC_TYPE__RPC_RESTORE) {
		ji.has_pid = !cr.new_pidns;
		ji.pid = cr.new_pidns ? 0 : cr.root_pid;
		resp.has_ntasks = true;
		resp.ntasks = cr.ntasks;
	}
	/* an answer of our own, freed like any other */
	resp.version = RPC_PROTOCOL_VERSION;
	resp.job = &ji;
	*ret = response__unpack(NULL, response__pack(&resp, buf), buf);
	if (!*ret)
		return ckpt_err(e, -ENOMEM, "out of memory");
	return 0;
}
