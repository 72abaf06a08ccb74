/* SPDX-License-Identifier: MIT */
/*
 * Socket state from the kernel's sock_diag netlink interface, through libnl
 * (nl_sock, nl_send_auto, nl_recvmsgs with a callback; attributes parsed
 * with nla_parse). Unix sockets (UNIX_DIAG), TCP and UDP sockets
 * (INET_DIAG) and netlink sockets (NETLINK_DIAG) share one request and
 * receive loop. Library code: negative
 * errno and a filled struct ckpt_error, nothing printed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "error.h"

struct nlmsghdr;

/* What UNIX_DIAG says about one unix socket. */
struct unix_diag_info {
	uint32_t ino;
	uint8_t type;  /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	uint8_t state; /* TCP_ESTABLISHED, TCP_CLOSE, TCP_LISTEN */
	uint8_t shutdown;
	bool has_peer; /* UNIX_DIAG_PEER present (peer may be 0: closed) */
	uint32_t peer;
	size_t name_len; /* 0: unnamed; name[0] == 0: abstract */
	char name[sizeof(((struct sockaddr_un *)0)->sun_path)];
	bool has_vfs; /* bound to a path: the socket file's inode and device */
	uint32_t vfs_ino, vfs_dev;
	bool has_rqlen;
	uint32_t rqueue, wqueue; /* listening: accept queue length and backlog */
	uint32_t *icons;	 /* listening: client inodes of pending connections */
	size_t nicons;
};

void unix_diag_info_release(struct unix_diag_info *u);

/*
 * Parse one SOCK_DIAG_BY_FAMILY reply (struct unix_diag_msg and its
 * attributes) into ret (icons malloc'ed: unix_diag_info_release).
 */
int sockdiag_unix_parse(const struct nlmsghdr *nlh, struct unix_diag_info *ret,
			struct ckpt_error *e);

/* The unix socket with this inode (exact lookup). -ENOENT: no such socket. */
int sockdiag_unix_get(uint32_t ino, struct unix_diag_info *ret, struct ckpt_error *e);

/*
 * Every unix socket of this network namespace whose state bit is in
 * states (1 << TCP_LISTEN...): cb is called for each (its info released
 * after the call); a negative return from cb stops the walk and is returned.
 */
typedef int (*sockdiag_unix_cb)(const struct unix_diag_info *u, void *arg);
int sockdiag_unix_dump(uint32_t states, sockdiag_unix_cb cb, void *arg, struct ckpt_error *e);

/* What INET_DIAG says about one TCP or UDP socket. */
struct inet_diag_info {
	uint32_t ino;
	uint8_t family; /* AF_INET, AF_INET6 */
	uint8_t state;	/* TCP_ESTABLISHED, TCP_LISTEN, TCP_CLOSE... (UDP: 1 connected, 7) */
	uint8_t shutdown;
	uint16_t sport, dport; /* host order */
	/* listening: accept queue length and backlog; else bytes queued in and out */
	uint32_t rqueue, wqueue;
	bool md5sig; /* TCP: TCP_MD5SIG keys set (INET_DIAG_MD5SIG; asked with CAP_NET_ADMIN) */
};

/*
 * The TCP or UDP socket (protocol IPPROTO_TCP or IPPROTO_UDP) of family
 * AF_INET or AF_INET6 with this inode, in this network namespace.
 * -ENOENT: none.
 */
int sockdiag_inet_find(int family, int protocol, uint32_t ino, struct inet_diag_info *ret,
		       struct ckpt_error *e);

/* What NETLINK_DIAG says about one netlink socket. */
struct netlink_diag_info {
	uint32_t ino;
	uint8_t type, protocol;
	uint8_t state; /* NETLINK_CONNECTED: a default destination set with connect() */
	uint32_t portid, dst_portid, dst_group;
	uint32_t rmem_alloc; /* bytes queued for reading (SK_MEMINFO_RMEM_ALLOC) */
	uint32_t flags;	     /* NDIAG_FLAG_*: NDIAG_FLAG_CB_RUNNING, a dump in progress */
};

/*
 * The netlink socket of protocol with this inode, in this network
 * namespace. -ENOENT: none (a socket never bound is in no table the kernel
 * walks).
 */
int sockdiag_netlink_find(int protocol, uint32_t ino, struct netlink_diag_info *ret,
			  struct ckpt_error *e);
