/* SPDX-License-Identifier: MIT */
/*
 * The ckptd protocol (proto/rpc.proto) on the wire: one SOCK_SEQPACKET packet
 * per message, u32 little-endian length + packed Request or Response, at most
 * RPC_FRAME_MAX bytes, with at most one fd in SCM_RIGHTS (the image
 * directory; a restore request with commit_fd has its commit record as a
 * second). docs/protocol.md describes the protocol for other clients.
 *
 * Receivers trust nothing: a truncated packet, a length that does not match
 * the packet, more fds than expected, any other control message or bytes that do
 * not unpack give an error and every fd that came with the packet is closed.
 */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <sys/types.h>

#include "error.h"
#include "rpc.pb-c.h"

#define RPC_PROTOCOL_VERSION 1
/* Largest packet (length prefix included) either side sends or accepts. */
#define RPC_FRAME_MAX (64 * 1024)
/* Where ckptd listens; clients let $CKPT_SOCKET override it (lib does not). */
#define CKPT_SOCKET_DEFAULT "/run/ckpt/ckptd.sock"

/*
 * Send msg (a Request or a Response) as one packet, with fd in SCM_RIGHTS
 * unless fd is -1. The caller keeps fd. Never raises SIGPIPE: a closed peer
 * gives -EPIPE. Returns 0 or a negative errno (-EMSGSIZE for a message over
 * RPC_FRAME_MAX).
 */
int rpc_send(int sock, const ProtobufCMessage *msg, int fd, struct ckpt_error *e);
/* The same with those of the nfds fds of fds[] that are not -1 (at most
 * 2), in order, in one SCM_RIGHTS message. */
int rpc_send_fds(int sock, const ProtobufCMessage *msg, const int *fds, size_t nfds,
		 struct ckpt_error *e);
/* sendmsg of len bytes of buf as one packet, with fd in SCM_RIGHTS unless fd
 * is -1, again on EINTR, never raising SIGPIPE: the bytes sent, or -errno. */
ssize_t rpc_sendmsg_fd(int sock, const void *buf, size_t len, int fd);

/*
 * Receive one packet and unpack it. On success *ret is the message (free with
 * rpc_request_free / rpc_response_free) and *ret_fd the fd that came with it
 * (O_CLOEXEC) or -1; ret_fd may be NULL, then a packet carrying an fd is an
 * error. The peer closing the connection gives -ECONNRESET with a message
 * saying so (the daemon treats it as the end of the conversation, not a
 * failure). On error the outputs are untouched and nothing is leaked.
 * A timeout set with SO_RCVTIMEO, or nothing to read on a non-blocking
 * socket, gives -EAGAIN. ret_fd2, if not NULL, takes a second fd of the
 * packet (or -1); if NULL, a packet with two fds is an error.
 */
int rpc_recv_request(int sock, Request **ret, int *ret_fd, int *ret_fd2, struct ckpt_error *e);
int rpc_recv_response(int sock, Response **ret, int *ret_fd, struct ckpt_error *e);

void rpc_request_free(Request *req);
void rpc_response_free(Response *resp);
static inline void rpc_request_freep(Request **p)
{
	if (*p)
		rpc_request_free(*p);
}
static inline void rpc_response_freep(Response **p)
{
	if (*p)
		rpc_response_free(*p);
}

/*
 * Check a received request before acting on it: the version is
 * RPC_PROTOCOL_VERSION (else the error names both versions, code
 * -EPROTONOSUPPORT), the type is known, the sub-message of the type is
 * present (dump / restore / cancel), dump has pid > 0, dump and restore
 * came with fd and it is a directory, and the other types came without an
 * fd; fd2 (-1: none) comes exactly with a restore's commit_fd and is a
 * memfd open for writing whose seals allow writing. Returns 0,
 * -EPROTONOSUPPORT or -EINVAL.
 */
int rpc_validate_request(const Request *req, int fd, int fd2, struct ckpt_error *e);

/* "dump", "restore", ... or "unknown" for a value outside RpcType. */
const char *rpc_type_name(int type);
/* "running", "done", "failed", "cancelled" or "unknown". */
const char *rpc_job_state_name(int state);

/*
 * Connect a SOCK_SEQPACKET | SOCK_CLOEXEC socket to path (the caller picks
 * CKPT_SOCKET_DEFAULT or $CKPT_SOCKET). A missing socket or nobody listening
 * gives an error that says ckptd is not running at path.
 */
int rpc_connect(const char *path, int *ret_fd, struct ckpt_error *e);

/*
 * Send a final Response with only status (negative errno, or 0) and the
 * error message (may be NULL): the daemon's answer to a request it refuses.
 */
int rpc_send_error(int sock, int status, const char *msg, struct ckpt_error *e);

/*
 * ckptd closed the connection during a dump or restore on dir_fd (it was
 * killed): wait, at most timeout_s, until no worker of ckptd holds the
 * directory any more, then tell what happened, as an answer. 0 and *ret a
 * Response of our own (status 0) when the job was done: a dump whose
 * directory holds a complete checkpoint (verified; else the partial images
 * are removed, inventory.img first, and the tree was resumed), a restore
 * whose commit record (commit_fd, the memfd sent as RestoreRequest.commit_fd)
 * says committed (the root's pid and tasks from it). Else the error saying
 * nothing was done (-ECONNRESET) or that the outcome is unknown
 * (-ETIMEDOUT). Clients (ckptctl, libckpt) call it when the connection ends
 * without an answer.
 */
int rpc_settle_lost(int dir_fd, int commit_fd, int type, unsigned timeout_s, Response **ret,
		    struct ckpt_error *e);

/* How long a client waits for a lost job's worker to let go. */
#define RPC_SETTLE_TIMEOUT 120
