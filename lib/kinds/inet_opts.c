/* SPDX-License-Identifier: MIT */
/*
 * Socket options of TCP and UDP sockets (inet.c): one table of the options
 * saved, which sockets each applies to, and when the restore sets it.
 *
 * Dump: every option of the table that applies to the socket is read with
 * getsockopt and saved only when it differs from a new socket's of the same
 * family and protocol (what the program changed; a value that follows a
 * sysctl, TCP_KEEPIDLE or IP_TTL, keeps following it). Restore: each saved
 * option is set, at its stage, unless the socket already has that value.
 * See docs/fd-kinds.md, "TCP and UDP sockets".
 */
#define LOG_PREFIX "kind inet: "

#include <errno.h>
#include <linux/filter.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "cleanup.h"
#include "inet_internal.h"
#include "log.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef TCP_TX_DELAY
#define TCP_TX_DELAY 37
#endif
/* newer than these headers: the kernel's numbers (asm-generic/socket.h, in.h, in6.h, tcp.h) */
#ifndef SO_TXREHASH
#define SO_TXREHASH 74
#endif
#ifndef SO_RCVMARK
#define SO_RCVMARK 75
#endif
#ifndef SO_PREFER_BUSY_POLL
#define SO_PREFER_BUSY_POLL 69
#endif
#ifndef IP_RECVFRAGSIZE
#define IP_RECVFRAGSIZE 25
#endif
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif
#ifndef IPV6_MINHOPCOUNT
#define IPV6_MINHOPCOUNT 73
#endif
#ifndef IPV6_RECVORIGDSTADDR
#define IPV6_RECVORIGDSTADDR 74
#endif
#ifndef IPV6_RECVFRAGSIZE
#define IPV6_RECVFRAGSIZE 77
#endif
#ifndef IP_UNICAST_IF
#define IP_UNICAST_IF 50
#endif
#ifndef IPV6_UNICAST_IF
#define IPV6_UNICAST_IF 76
#endif
#ifndef TCP_RTO_MAX_MS
#define TCP_RTO_MAX_MS 44
#endif
/* the timestamp options by their old numbers: a 64-bit program's (SO_TIMESTAMP_OLD...) */
#define SO_TIMESTAMP_OLD_ 29
#define SO_TIMESTAMPNS_OLD_ 35
#define SO_TIMESTAMPING_OLD_ 37

enum opt_type {
	OT_INT,
	OT_LINGER, /* struct linger */
	OT_NAME,   /* a name: a device, a congestion control algorithm */
	OT_FILTER, /* a classic BPF program: SO_GET_FILTER reads it, SO_ATTACH_FILTER sets it */
	OT_BYTES,  /* bytes as getsockopt gives them and setsockopt takes them: IP options */
};

/* the most an OT_BYTES option holds: an IPv6 extension header, (255 + 1) * 8 */
#define BYTES_MAX 2048

/* which sockets an option applies to */
#define ON_TCP 0x1u
#define ON_UDP 0x2u
#define ON_ALL (ON_TCP | ON_UDP)
#define ON_LITE 0x4u	/* UDP-Lite sockets only (they are ON_UDP too) */
#define ON_V6 0x10u	/* AF_INET6 sockets only */
#define ON_UNCONN 0x20u /* not a TCP connection (its value there is the kernel's) */

struct inet_opt {
	int level, name;
	const char *label;
	enum opt_type type;
	unsigned on;
	enum inet_opt_when when;
};

#define O(level, name, type, on, when)                                                             \
	{                                                                                          \
		level, name, #name, type, on, when                                                 \
	}

/*
 * The order is the order they are set in: IP_TOS before SO_PRIORITY (setting
 * the TOS changes the priority), the filter before SO_LOCK_FILTER, SO_BUF_LOCK
 * after the buffer sizes (setting a size locks it).
 */
static const struct inet_opt opts[] = {
    /* before bind: they decide which addresses and devices bind accepts */
    O(SOL_SOCKET, SO_BINDTODEVICE, OT_NAME, ON_ALL, OPT_BEFORE_BIND),
    O(IPPROTO_IP, IP_FREEBIND, OT_INT, ON_ALL, OPT_BEFORE_BIND),
    O(IPPROTO_IP, IP_TRANSPARENT, OT_INT, ON_ALL, OPT_BEFORE_BIND),
    O(IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, OT_INT, ON_ALL, OPT_BEFORE_BIND),
    O(IPPROTO_IPV6, IPV6_FREEBIND, OT_INT, ON_ALL | ON_V6, OPT_BEFORE_BIND),
    O(IPPROTO_IPV6, IPV6_TRANSPARENT, OT_INT, ON_ALL | ON_V6, OPT_BEFORE_BIND),
    O(IPPROTO_IP, IP_LOCAL_PORT_RANGE, OT_INT, ON_ALL, OPT_BEFORE_BIND),
    /* the rest once the socket is complete (connections out of repair mode) */
    O(IPPROTO_IP, IP_TOS, OT_INT, ON_ALL, OPT_LAST),
    O(IPPROTO_IP, IP_TTL, OT_INT, ON_ALL, OPT_LAST),
    O(IPPROTO_IP, IP_MTU_DISCOVER, OT_INT, ON_ALL, OPT_LAST),
    O(IPPROTO_IP, IP_RECVERR, OT_INT, ON_ALL, OPT_LAST),
    O(IPPROTO_IP, IP_PKTINFO, OT_INT, ON_ALL, OPT_LAST),
    O(IPPROTO_IP, IP_RECVTOS, OT_INT, ON_ALL, OPT_LAST),
    O(IPPROTO_IP, IP_RECVTTL, OT_INT, ON_ALL, OPT_LAST),
    O(IPPROTO_IP, IP_RECVOPTS, OT_INT, ON_ALL, OPT_LAST),
    O(IPPROTO_IP, IP_RETOPTS, OT_INT, ON_ALL, OPT_LAST),
    O(IPPROTO_IP, IP_OPTIONS, OT_BYTES, ON_ALL, OPT_LAST),
    O(IPPROTO_IP, IP_RECVORIGDSTADDR, OT_INT, ON_ALL, OPT_LAST),
    O(IPPROTO_IP, IP_CHECKSUM, OT_INT, ON_ALL, OPT_LAST),
    O(IPPROTO_IP, IP_MINTTL, OT_INT, ON_ALL, OPT_LAST),
    O(IPPROTO_IP, IP_RECVFRAGSIZE, OT_INT, ON_UDP, OPT_LAST),
    O(IPPROTO_IP, IP_UNICAST_IF, OT_INT, ON_UDP, OPT_LAST),
    O(IPPROTO_IP, IP_MULTICAST_TTL, OT_INT, ON_UDP, OPT_LAST),
    O(IPPROTO_IP, IP_MULTICAST_LOOP, OT_INT, ON_UDP, OPT_LAST),
    O(IPPROTO_IP, IP_MULTICAST_ALL, OT_INT, ON_UDP, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_TCLASS, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_UNICAST_HOPS, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_MTU_DISCOVER, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_RECVERR, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_RECVPKTINFO, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_RECVTCLASS, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_RECVHOPLIMIT, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_RECVRTHDR, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_RECVHOPOPTS, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    /* the extension headers sent with every packet */
    O(IPPROTO_IPV6, IPV6_HOPOPTS, OT_BYTES, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_RTHDR, OT_BYTES, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_DSTOPTS, OT_BYTES, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_RTHDRDSTOPTS, OT_BYTES, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_RECVDSTOPTS, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_AUTOFLOWLABEL, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_DONTFRAG, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_RECVPATHMTU, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_MINHOPCOUNT, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_RECVORIGDSTADDR, OT_INT, ON_ALL | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_RECVFRAGSIZE, OT_INT, ON_UDP | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, OT_INT, ON_UDP | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_MULTICAST_IF, OT_INT, ON_UDP | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_UNICAST_IF, OT_INT, ON_UDP | ON_V6, OPT_LAST),
    O(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, OT_INT, ON_UDP | ON_V6, OPT_LAST),
    O(SOL_SOCKET, SO_PRIORITY, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_MARK, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_BROADCAST, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_DONTROUTE, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_OOBINLINE, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_RCVLOWAT, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_ZEROCOPY, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_LINGER, OT_LINGER, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_ATTACH_FILTER, OT_FILTER, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_LOCK_FILTER, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_BUF_LOCK, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_TIMESTAMP_OLD_, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_TIMESTAMPNS_OLD_, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_TIMESTAMPING_OLD_, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_PEEK_OFF, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_SELECT_ERR_QUEUE, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_BUSY_POLL, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_PREFER_BUSY_POLL, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_RCVMARK, OT_INT, ON_ALL, OPT_LAST),
    O(SOL_SOCKET, SO_TXREHASH, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_MAXSEG, OT_INT, ON_TCP | ON_UNCONN, OPT_LAST),
    O(IPPROTO_TCP, TCP_CORK, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_KEEPIDLE, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_KEEPINTVL, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_KEEPCNT, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_SYNCNT, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_LINGER2, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_DEFER_ACCEPT, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_WINDOW_CLAMP, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_QUICKACK, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_CONGESTION, OT_NAME, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_USER_TIMEOUT, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_NOTSENT_LOWAT, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_FASTOPEN, OT_INT, ON_TCP | ON_UNCONN, OPT_LAST),
    O(IPPROTO_TCP, TCP_FASTOPEN_CONNECT, OT_INT, ON_TCP | ON_UNCONN, OPT_LAST),
    O(IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_SAVE_SYN, OT_INT, ON_TCP | ON_UNCONN, OPT_LAST),
    O(IPPROTO_TCP, TCP_INQ, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_TX_DELAY, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_TCP, TCP_RTO_MAX_MS, OT_INT, ON_TCP, OPT_LAST),
    O(IPPROTO_UDP, UDP_CORK, OT_INT, ON_UDP, OPT_LAST),
    O(IPPROTO_UDP, UDP_SEGMENT, OT_INT, ON_UDP, OPT_LAST),
    O(IPPROTO_UDP, UDP_GRO, OT_INT, ON_UDP, OPT_LAST),
    O(IPPROTO_UDP, UDP_NO_CHECK6_TX, OT_INT, ON_UDP | ON_V6, OPT_LAST),
    O(IPPROTO_UDP, UDP_NO_CHECK6_RX, OT_INT, ON_UDP | ON_V6, OPT_LAST),
    /* checksum coverage (RFC 3828) */
    O(IPPROTO_UDPLITE, UDPLITE_SEND_CSCOV, OT_INT, ON_LITE, OPT_LAST),
    O(IPPROTO_UDPLITE, UDPLITE_RECV_CSCOV, OT_INT, ON_LITE, OPT_LAST),
};

#define NAME_MAX_LEN 64	      /* IFNAMSIZ 16, TCP_CA_NAME_MAX 16 */
#define FILTER_MAX (4096 * 8) /* BPF_MAXINSNS instructions */

/* One option's value: an int, or bytes (data, len). */
struct optval {
	int i;
	socklen_t len;
	uint8_t *data;
};

static void optval_free(struct optval *v)
{
	free(v->data);
	v->data = NULL;
}

static bool applies(const struct inet_opt *o, const InetSkEntry *ie)
{
	unsigned proto = ie->proto == IPPROTO_TCP	? ON_TCP
			 : ie->proto == IPPROTO_UDPLITE ? ON_UDP | ON_LITE
							: ON_UDP;

	/* a ping socket: the socket and IP options a UDP socket has */
	if (inet_is_ping(ie) &&
	    (!(o->on & ON_UDP) ||
	     (o->level != SOL_SOCKET && o->level != IPPROTO_IP && o->level != IPPROTO_IPV6)))
		return false;
	if (!(o->on & proto))
		return false;
	if ((o->on & ON_V6) && ie->family != AF_INET6)
		return false;
	if ((o->on & ON_UNCONN) && inet_is_established(ie))
		return false;
	return true;
}

static const struct inet_opt *find_opt(uint32_t level, uint32_t name)
{
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if ((uint32_t)opts[i].level == level && (uint32_t)opts[i].name == name)
			return &opts[i];
	return NULL;
}

/* Read one option; -errno (-ENOPROTOOPT: not an option of this socket). */
static int opt_read(int fd, const struct inet_opt *o, struct optval *v)
{
	socklen_t len = 0;

	memset(v, 0, sizeof(*v));
	switch (o->type) {
	case OT_INT:
		v->len = sizeof(v->i);
		return getsockopt(fd, o->level, o->name, &v->i, &v->len) < 0 ? -errno : 0;
	case OT_LINGER:
	case OT_NAME:
		len = o->type == OT_LINGER ? sizeof(struct linger) : NAME_MAX_LEN;
		break;
	case OT_BYTES:
		len = BYTES_MAX;
		break;
	case OT_FILTER:
		/* the number of instructions first (0: no filter; EACCES: an eBPF program) */
		if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &len) < 0)
			return -errno;
		if (len > FILTER_MAX / 8)
			return -EFBIG;
		if (!len)
			return 0;
		break;
	}
	v->data = calloc(1, o->type == OT_FILTER ? len * 8 : len);
	if (!v->data)
		return -ENOMEM;
	v->len = len;
	if (getsockopt(fd, o->level, o->type == OT_FILTER ? SO_GET_FILTER : o->name, v->data,
		       &v->len) < 0)
		return -errno;
	if (o->type == OT_FILTER)
		v->len *= 8; /* SO_GET_FILTER counts instructions */
	if (o->type == OT_NAME)
		v->len = (socklen_t)strnlen((char *)v->data, v->len);
	return 0;
}

static bool same(const struct optval *a, const struct optval *b)
{
	return a->i == b->i && a->len == b->len &&
	       (!a->len || !a->data || !b->data || !memcmp(a->data, b->data, a->len));
}

static bool same_saved(const struct optval *a, const InetSockOpt *s)
{
	if (s->has_value)
		return a->len == sizeof(int) && !a->data && a->i == s->value;
	return a->len == s->data.len && (!a->len || !memcmp(a->data, s->data.data, a->len));
}

static int save_opt(InetSkEntry *ie, const struct inet_opt *o, struct optval *v)
{
	InetSockOpt **n, *s;

	n = realloc(ie->opts, (ie->n_opts + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	ie->opts = n;
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	inet_sock_opt__init(s);
	ie->opts[ie->n_opts++] = s;
	s->level = (uint32_t)o->level;
	s->name = (uint32_t)o->name;
	if (o->type == OT_INT) {
		s->has_value = true;
		s->value = v->i;
		return 0;
	}
	s->has_data = true;
	s->data.len = v->len;
	s->data.data = v->data ? v->data : calloc(1, 1);
	v->data = NULL;
	return s->data.data ? 0 : -ENOMEM;
}

/* What ckpt cannot restore, refused: a ULP (kernel TLS), an eBPF filter, corked UDP data. */
static int refuse(int fd, const InetSkEntry *ie, struct ckpt_error *e)
{
	char ulp[32] = "";
	socklen_t len = sizeof(ulp);
	struct optval v;
	int cork = 0, outq = 0, r;

	if (ie->proto == IPPROTO_TCP && getsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, &len) == 0 &&
	    len && ulp[0])
		return ckpt_err(e, -EOPNOTSUPP,
				"it has the upper layer protocol \"%.*s\" (TCP_ULP); not supported",
				(int)len, ulp);
	r = opt_read(fd, find_opt(SOL_SOCKET, SO_ATTACH_FILTER), &v);
	optval_free(&v);
	if (r == -EACCES)
		return ckpt_err(e, -EOPNOTSUPP,
				"it has an eBPF socket filter (SO_ATTACH_BPF), which cannot be "
				"read back; not supported");
	if (ie->proto != IPPROTO_TCP && inet_sock_int(fd, IPPROTO_UDP, UDP_CORK, &cork) && cork &&
	    ioctl(fd, SIOCOUTQ, &outq) == 0 && outq > 0)
		return ckpt_err(e, -EOPNOTSUPP,
				"it is corked (UDP_CORK) with %d bytes not sent yet; not supported",
				outq);
	return 0;
}

int inet_opts_dump(int fd, InetSkEntry *ie, struct ckpt_error *e)
{
	_cleanup_close_ int fresh = inet_new_sock(ie);
	int r;

	if (fresh < 0)
		return ckpt_err_errno(e, -errno, "a new socket to compare its options with%s",
				      inet_sock_hint(ie, errno));
	r = refuse(fd, ie, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		const struct inet_opt *o = &opts[i];
		struct optval cur, def;

		if (!applies(o, ie))
			continue;
		r = opt_read(fd, o, &cur);
		if (r == -ENOPROTOOPT || r == -EOPNOTSUPP || r == -EINVAL) {
			optval_free(&cur);
			continue; /* not an option of this kernel or socket */
		}
		if (r >= 0 && opt_read(fresh, o, &def) >= 0 && same(&cur, &def)) {
			optval_free(&cur);
			optval_free(&def);
			continue;
		}
		optval_free(&def);
		if (r >= 0)
			r = save_opt(ie, o, &cur);
		optval_free(&cur);
		if (r < 0)
			return ckpt_err_errno(e, r, "reading its option %s", o->label);
	}
	return 0;
}

int inet_opts_check(const InetSkEntry *ie)
{
	for (size_t i = 0; i < ie->n_opts; i++) {
		const InetSockOpt *s = ie->opts[i];
		const struct inet_opt *o = find_opt(s->level, s->name);

		if (!o || !applies(o, ie) || s->has_value != (o->type == OT_INT) ||
		    s->has_data == (o->type == OT_INT))
			return -EINVAL;
		if ((o->type == OT_LINGER && s->data.len != sizeof(struct linger)) ||
		    (o->type == OT_NAME && s->data.len >= NAME_MAX_LEN) ||
		    (o->type == OT_FILTER && (s->data.len > FILTER_MAX || s->data.len % 8)) ||
		    (o->type == OT_BYTES && s->data.len > BYTES_MAX))
			return -EINVAL;
	}
	return 0;
}

bool inet_opts_get(const InetSkEntry *ie, int level, int name, int *ret)
{
	for (size_t i = 0; i < ie->n_opts; i++)
		if (ie->opts[i]->level == (uint32_t)level && ie->opts[i]->name == (uint32_t)name &&
		    ie->opts[i]->has_value) {
			*ret = ie->opts[i]->value;
			return true;
		}
	return false;
}

static int opt_write(int fd, const struct inet_opt *o, const InetSockOpt *s)
{
	char name[NAME_MAX_LEN];
	struct sock_fprog prog;

	switch (o->type) {
	case OT_INT:
		return inet_set_int(fd, o->level, o->name, s->value);
	case OT_LINGER:
	case OT_BYTES:
		return setsockopt(fd, o->level, o->name, s->data.data, (socklen_t)s->data.len);
	case OT_NAME:
		memcpy(name, s->data.data, s->data.len);
		name[s->data.len] = 0;
		return setsockopt(fd, o->level, o->name, name, (socklen_t)s->data.len + 1);
	case OT_FILTER:
		prog.len = (unsigned short)(s->data.len / 8);
		prog.filter = (struct sock_filter *)s->data.data;
		return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
	}
	errno = EINVAL;
	return -1;
}

int inet_opts_set(int fd, const InetSkEntry *ie, enum inet_opt_when when, struct ckpt_error *e)
{
	/* in the table's order, whatever the image's */
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		const struct inet_opt *o = &opts[i];

		if (o->when != when)
			continue;
		for (size_t k = 0; k < ie->n_opts; k++) {
			const InetSockOpt *s = ie->opts[k];
			struct optval cur;
			bool skip;

			if (s->level != (uint32_t)o->level || s->name != (uint32_t)o->name)
				continue;
			skip = opt_read(fd, o, &cur) == 0 && same_saved(&cur, s);
			optval_free(&cur);
			if (!skip && opt_write(fd, o, s) < 0)
				return ckpt_err_errno(e, -errno, "setting its option %s", o->label);
		}
	}
	return 0;
}
