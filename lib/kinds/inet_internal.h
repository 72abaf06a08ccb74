/* SPDX-License-Identifier: MIT */
/*
 * TCP and UDP sockets (lib/kinds/inet.c) and their established TCP
 * connections (lib/kinds/tcp_repair.c): what the two files share. Private to
 * lib/kinds/.
 */
#pragma once

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fd_kind.h"

/* kernel TCP states (include/net/tcp_states.h) */
#define IST_ESTABLISHED 1
#define IST_FIN_WAIT1 4
#define IST_FIN_WAIT2 5
#define IST_CLOSE 7
#define IST_CLOSE_WAIT 8
#define IST_LAST_ACK 9
#define IST_LISTEN 10
#define IST_CLOSING 11
#define ISTF(st) (1u << (st))
/* the connection states restored in repair mode; of them, those where... */
#define ISTF_CONN                                                                                  \
	(ISTF(IST_ESTABLISHED) | ISTF(IST_FIN_WAIT1) | ISTF(IST_FIN_WAIT2) |                       \
	 ISTF(IST_CLOSE_WAIT) | ISTF(IST_LAST_ACK) | ISTF(IST_CLOSING))
/* ...the program shut its side down: our FIN is counted in write_seq */
#define ISTF_OUR_FIN                                                                               \
	(ISTF(IST_FIN_WAIT1) | ISTF(IST_FIN_WAIT2) | ISTF(IST_LAST_ACK) | ISTF(IST_CLOSING))
/* ...the peer's FIN arrived: counted in rcv_nxt */
#define ISTF_PEER_FIN (ISTF(IST_CLOSE_WAIT) | ISTF(IST_LAST_ACK) | ISTF(IST_CLOSING))

/* what one checkpoint saves of one socket's queues */
#define QUEUE_MAX (64u << 20)

/* One socket being restored, and all of them (the kind's fd_open_ctx.priv). */
struct isk {
	const FileEntry *fe;
	const InetSkEntry *ie;
	int fd;
};

struct istate {
	struct isk *s;
	size_t n;
};

/* A TCP connection: established, or half closed (FIN_WAIT1 ... CLOSING). */
static inline bool inet_is_established(const InetSkEntry *ie)
{
	return ie->proto == IPPROTO_TCP && ie->state < 32 && (ISTF(ie->state) & ISTF_CONN);
}

static inline bool inet_state_has(const InetSkEntry *ie, uint32_t mask)
{
	return ie->state < 32 && (ISTF(ie->state) & mask);
}

/* UDP or UDP-Lite (RFC 3828: UDP with a partial checksum; the same code in the kernel) */
static inline bool inet_is_udp(const InetSkEntry *ie)
{
	return ie->proto == IPPROTO_UDP || ie->proto == IPPROTO_UDPLITE;
}

/* An ICMP "ping" socket (SOCK_DGRAM, IPPROTO_ICMP or IPPROTO_ICMPV6): echo requests only */
static inline bool inet_is_ping(const InetSkEntry *ie)
{
	return ie->proto == IPPROTO_ICMP || ie->proto == IPPROTO_ICMPV6;
}

/* Why socket() failed with err, when it is not plain: ping sockets are for some groups only. */
static inline const char *inet_sock_hint(const InetSkEntry *ie, int err)
{
	return err == EACCES && inet_is_ping(ie)
		   ? " (net.ipv4.ping_group_range must include the group of the process "
		     "making it)"
		   : "";
}

/* "TCP", "UDP", "UDP-Lite", "ICMP ping" */
static inline const char *inet_proto_name(uint32_t proto)
{
	return proto == IPPROTO_TCP				  ? "TCP"
	       : proto == IPPROTO_UDPLITE			  ? "UDP-Lite"
	       : proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6 ? "ICMP ping"
								  : "UDP";
}

/* An established connection held and restored with TCP_REPAIR (not --tcp-close). */
static inline bool inet_is_repaired(const InetSkEntry *ie)
{
	return inet_is_established(ie) && !(ie->has_closed && ie->closed);
}

/* "TCP socket socket:[123] (127.0.0.1:80 <-> 127.0.0.1:5000)" */
const char *inet_entry_describe(const FileEntry *fe, char *buf, size_t blen);
socklen_t inet_make_sa(uint32_t family, const ProtobufCBinaryData *a, uint32_t port, uint32_t scope,
		       struct sockaddr_storage *ss);
int inet_new_sock(const InetSkEntry *ie);
bool inet_sock_int(int fd, int level, int opt, int *ret);
int inet_set_int(int fd, int level, int opt, int v);

/* inet_opts.c: the socket options of its table (when the restore sets each) */
enum inet_opt_when {
	OPT_BEFORE_BIND, /* bind and connect depend on them (SO_BINDTODEVICE...) */
	OPT_LAST,	 /* once the socket is complete */
};
int inet_opts_dump(int fd, InetSkEntry *ie, struct ckpt_error *e);
int inet_opts_check(const InetSkEntry *ie);
bool inet_opts_get(const InetSkEntry *ie, int level, int name, int *ret);
int inet_opts_set(int fd, const InetSkEntry *ie, enum inet_opt_when when, struct ckpt_error *e);

/* tcp_repair.c: dump (struct fd_kind.dump_done, dump_undo) */
int tcp_repair_dump_done(const struct fd_dump_view *v, struct ckpt_error *e);
void tcp_repair_dump_undo(const struct fd_dump_view *v);
/* tcp_repair.c: restore, in the order inet.c calls them */
int tcp_make_reset(struct isk *u, struct ckpt_error *e);
int tcp_make_repaired(struct isk *u, struct ckpt_error *e);
int tcp_unlock_all(struct istate *st, struct ckpt_error *e);
int tcp_repair_off(struct isk *u, struct ckpt_error *e);
int tcp_lock_pass_ours(struct istate *st, struct ckpt_error *e);
