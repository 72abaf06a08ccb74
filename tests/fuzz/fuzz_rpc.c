/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target "rpc": the ckptd protocol's receiving side (lib/rpc.c). The
 * first input byte says what goes with the packet, the rest is the packet
 * (length prefix + packed message, or anything else), sent as one
 * SOCK_SEQPACKET packet over a socketpair and received by rpc_recv_request()
 * (what ckptd does with every packet of a client, then
 * rpc_validate_request()) or rpc_recv_response() (what ckptctl and libckpt
 * do with the daemon's answers):
 *
 *   bits 0-1  fds in SCM_RIGHTS: none, a directory, a regular file, both
 *   bit 2     a Response instead of a Request
 *   bit 3     the receiver takes no fd (ret_fd NULL, as the clients do)
 *
 * Packets over RPC_FRAME_MAX, foreign fds and bytes that do not unpack must
 * give an error with every fd closed; a leaked fd aborts the run.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "rpc.h"

static int sock[2] = {-1, -1};
static int dir_fd = -1, file_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* a packet of RPC_FRAME_MAX and more must fit in the socket buffer */
	int sndbuf = 4 * RPC_FRAME_MAX;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sock) < 0 ||
	    setsockopt(sock[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0) {
		perror("fuzz_rpc: socketpair");
		abort();
	}
	dir_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	file_fd = memfd_create("fuzz-rpc", MFD_CLOEXEC);
	if (dir_fd < 0 || file_fd < 0) {
		perror("fuzz_rpc: open");
		abort();
	}
	return 0;
}

static bool send_packet(const uint8_t *data, size_t len, unsigned fdmode)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} control = {};
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	int fds[2], nfds = 0;

	if (fdmode & 1)
		fds[nfds++] = dir_fd;
	if (fdmode & 2)
		fds[nfds++] = file_fd;
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
	/* an empty packet without fds reads as the peer's end: still worth a run */
	return sendmsg(sock[0], &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ckpt_error e = {0};
	unsigned flags;
	int fd = -1, fd2 = -1, r, mark;

	if (size < 1)
		return 0;
	mark = fuzz_fd_mark();
	flags = data[0];
	if (!send_packet(data + 1, size - 1, flags & 3))
		return 0;
	if (flags & 4) {
		Response *resp = NULL;

		r = rpc_recv_response(sock[1], &resp, flags & 8 ? NULL : &fd, &e);
		if (r == 0) {
			for (size_t i = 0; i < resp->n_jobs; i++)
				(void)rpc_job_state_name(resp->jobs[i]->state);
			if (resp->job)
				(void)rpc_type_name(resp->job->type);
			rpc_response_free(resp);
		}
	} else {
		Request *req = NULL;

		r = rpc_recv_request(sock[1], &req, flags & 8 ? NULL : &fd,
				     flags & 16 ? NULL : &fd2, &e);
		if (r == 0) {
			(void)rpc_type_name(req->type);
			(void)rpc_validate_request(req, fd, fd2, &e);
			rpc_request_free(req);
		}
	}
	if (fd >= 0)
		close(fd);
	if (fd2 >= 0)
		close(fd2);
	fuzz_fd_check(mark);
	return 0;
}
