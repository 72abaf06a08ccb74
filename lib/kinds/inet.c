/* SPDX-License-Identifier: MIT */
/*
 * TCP and UDP sockets, IPv4 and IPv6. One FileEntry per socket.
 *
 * Dump. State from sock_diag (INET_DIAG, lib/sockdiag.c: state, listen
 * backlog, accept queue, shutdown), addresses from getsockname/getpeername
 * and options from getsockopt on our pidfd_getfd copy. UDP: the queued
 * datagrams with their sources, peeked stepping SO_PEEK_OFF (never
 * consumed). Established TCP connections, once every fd is dumped
 * (dump_done): locked and read in repair mode (TCP_REPAIR), in tcp_repair.c.
 *
 * Restore. Everything is made by the restorer process on the first
 * open_shared call: listening, bound and unconnected sockets and UDP
 * sockets first (an established socket bound to a listener's port would
 * keep the listener from binding), UDP queues sent again, UDP sockets
 * connected, then every established connection in repair mode and the lock
 * tables deleted (tcp_repair.c).
 * See docs/fd-kinds.md, "TCP and UDP sockets".
 */
#define LOG_PREFIX "kind inet: "

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "kread.h"
#include "log.h"
#include "netlock.h"
#include "sockdiag.h"
#include "sockopt.h"
#include "inet_internal.h"

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
#define SOCK_SNDBUF_LOCK 1
#define SOCK_RCVBUF_LOCK 2

/* what one checkpoint saves of one socket's queues */
#define DGRAM_MAX 65536u
#define DGRAMS_MAX 65536u

static const char *state_name(uint32_t st)
{
	static const char *const n[] = {
	    "?",     "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",	"TIME_WAIT",
	    "CLOSE", "CLOSE_WAIT",  "LAST_ACK", "LISTEN",   "CLOSING",	 "NEW_SYN_RECV"};

	return st < ARRAY_SIZE(n) ? n[st] : "?";
}

static const char *addr_str(uint32_t family, const ProtobufCBinaryData *a, uint32_t port, char *buf,
			    size_t blen)
{
	char s[INET6_ADDRSTRLEN] = "?";

	if (a && a->len == (family == AF_INET6 ? 16u : 4u))
		inet_ntop((int)family, a->data, s, sizeof(s));
	snprintf(buf, blen, family == AF_INET6 ? "[%s]:%u" : "%s:%u", s, port);
	return buf;
}

/* "TCP socket socket:[123] (127.0.0.1:80 <-> 127.0.0.1:5000)" */
const char *inet_entry_describe(const FileEntry *fe, char *buf, size_t blen)
{
	const InetSkEntry *ie = fe->inet_sk;
	char a[80], b[80];

	if (!ie) {
		snprintf(buf, blen, "socket %s", fe->path);
		return buf;
	}
	addr_str(ie->family, ie->has_src_addr ? &ie->src_addr : NULL, ie->src_port, a, sizeof(a));
	if (ie->has_dst_addr)
		snprintf(buf, blen, "%s%s socket %s (%s <-> %s)", inet_proto_name(ie->proto),
			 ie->family == AF_INET6 ? "v6" : "", fe->path, a,
			 addr_str(ie->family, &ie->dst_addr, ie->dst_port, b, sizeof(b)));
	else
		snprintf(buf, blen, "%s%s socket %s (%s, %s)", inet_proto_name(ie->proto),
			 ie->family == AF_INET6 ? "v6" : "", fe->path, a, state_name(ie->state));
	return buf;
}

/* ---- addresses ------------------------------------------------------------------ */

static int save_addr(const struct sockaddr_storage *ss, ProtobufCBinaryData *a, uint32_t *port,
		     uint32_t *scope, struct ckpt_error *e)
{
	const void *src;
	size_t len;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		src = &s4->sin_addr;
		len = 4;
		*port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		src = &s6->sin6_addr;
		len = 16;
		*port = ntohs(s6->sin6_port);
		if (scope)
			*scope = s6->sin6_scope_id;
	} else {
		return ckpt_err(e, -EAFNOSUPPORT, "address of family %u", ss->ss_family);
	}
	a->data = malloc(len);
	if (!a->data)
		return ckpt_err(e, -ENOMEM, "out of memory");
	memcpy(a->data, src, len);
	a->len = len;
	return 0;
}

socklen_t inet_make_sa(uint32_t family, const ProtobufCBinaryData *a, uint32_t port, uint32_t scope,
		       struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (a && a->len == 4)
			memcpy(&s4->sin_addr, a->data, 4);
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)port);
	s6->sin6_scope_id = scope;
	if (a && a->len == 16)
		memcpy(&s6->sin6_addr, a->data, 16);
	return sizeof(*s6);
}

/* ---- dump ------------------------------------------------------------------------- */

bool inet_sock_int(int fd, int level, int opt, int *ret)
{
	socklen_t sl = sizeof(*ret);

	return getsockopt(fd, level, opt, ret, &sl) == 0;
}

static bool inet_matches(const struct fd_probe *p)
{
	int domain = -1, type = -1, proto = -1;

	if (!S_ISSOCK(p->st.st_mode) || p->local_fd < 0 ||
	    !inet_sock_int(p->local_fd, SOL_SOCKET, SO_DOMAIN, &domain) ||
	    !inet_sock_int(p->local_fd, SOL_SOCKET, SO_TYPE, &type) ||
	    !inet_sock_int(p->local_fd, SOL_SOCKET, SO_PROTOCOL, &proto))
		return false;
	if (domain != AF_INET && domain != AF_INET6)
		return false;
	return (type == SOCK_STREAM && proto == IPPROTO_TCP) ||
	       (type == SOCK_DGRAM && (proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE)) ||
	       (type == SOCK_DGRAM && domain == AF_INET && proto == IPPROTO_ICMP) ||
	       (type == SOCK_DGRAM && domain == AF_INET6 && proto == IPPROTO_ICMPV6);
}

/* "TCP socket", "UDPv6 socket": by the protocol alone (other IP sockets are probe.c's) */
static bool inet_describe(const struct fd_probe *p, char *buf, size_t len)
{
	int domain = fdk_probe_sock_domain(p), proto = -1, type = -1;
	const char *v6 = domain == AF_INET6 ? "v6" : "";

	if (domain != AF_INET && domain != AF_INET6)
		return false;
	inet_sock_int(p->local_fd, SOL_SOCKET, SO_PROTOCOL, &proto);
	inet_sock_int(p->local_fd, SOL_SOCKET, SO_TYPE, &type);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_UDPLITE &&
	    !(type == SOCK_DGRAM && (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)))
		return false;
	snprintf(buf, len, "%s%s socket", inet_proto_name((uint32_t)proto), v6);
	return true;
}

static int dump_options(int fd, InetSkEntry *ie, struct ckpt_error *e)
{
	int ra = 0, rp = 0, ka = 0, snd = 0, rcv = 0, v6 = 0, nd = 0;

	if (!inet_sock_int(fd, SOL_SOCKET, SO_REUSEADDR, &ra) ||
	    !inet_sock_int(fd, SOL_SOCKET, SO_REUSEPORT, &rp) ||
	    !inet_sock_int(fd, SOL_SOCKET, SO_KEEPALIVE, &ka) ||
	    !inet_sock_int(fd, SOL_SOCKET, SO_SNDBUF, &snd) ||
	    !inet_sock_int(fd, SOL_SOCKET, SO_RCVBUF, &rcv) ||
	    sockopt_get_timeo(fd, SO_RCVTIMEO, &ie->rcvtimeo_us) < 0 ||
	    sockopt_get_timeo(fd, SO_SNDTIMEO, &ie->sndtimeo_us) < 0 ||
	    (ie->family == AF_INET6 && !inet_sock_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6)) ||
	    (ie->proto == IPPROTO_TCP && !inet_sock_int(fd, IPPROTO_TCP, TCP_NODELAY, &nd)))
		return ckpt_err_errno(e, -errno, "reading its options (getsockopt)");
	ie->has_reuseaddr = ie->has_reuseport = ie->has_keepalive = true;
	ie->has_sndbuf = ie->has_rcvbuf = ie->has_rcvtimeo_us = ie->has_sndtimeo_us = true;
	ie->reuseaddr = ra != 0;
	ie->reuseport = rp != 0;
	ie->keepalive = ka != 0;
	ie->sndbuf = (uint32_t)snd;
	ie->rcvbuf = (uint32_t)rcv;
	if (ie->family == AF_INET6) {
		ie->has_v6only = true;
		ie->v6only = v6 != 0;
	}
	if (ie->proto == IPPROTO_TCP) {
		ie->has_nodelay = true;
		ie->nodelay = nd != 0;
	}
	return inet_opts_dump(fd, ie, e);
}

static int dump_addrs(int fd, InetSkEntry *ie, struct ckpt_error *e)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int r;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return ckpt_err_errno(e, -errno, "getsockname");
	r = save_addr(&ss, &ie->src_addr, &ie->src_port, &ie->src_scope, e);
	if (r < 0)
		return r;
	ie->has_src_addr = ie->has_src_port = true;
	ie->has_src_scope = ie->family == AF_INET6;
	sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		if (errno == ENOTCONN)
			return 0;
		return ckpt_err_errno(e, -errno, "getpeername");
	}
	r = save_addr(&ss, &ie->dst_addr, &ie->dst_port, NULL, e);
	if (r < 0)
		return r;
	ie->has_dst_addr = ie->has_dst_port = true;
	return 0;
}

static int add_dgram(InetSkEntry *ie, const uint8_t *data, size_t len,
		     const struct sockaddr_storage *from, struct ckpt_error *e)
{
	InetDgram **v, *d;
	uint32_t port = 0;
	int r;

	v = realloc(ie->dgrams, (ie->n_dgrams + 1) * sizeof(*v));
	if (!v)
		return ckpt_err(e, -ENOMEM, "out of memory for its queue");
	ie->dgrams = v;
	d = malloc(sizeof(*d));
	if (!d)
		return ckpt_err(e, -ENOMEM, "out of memory for its queue");
	inet_dgram__init(d);
	ie->dgrams[ie->n_dgrams++] = d;
	d->data.data = malloc(len ? len : 1);
	if (!d->data.data)
		return ckpt_err(e, -ENOMEM, "out of memory for its queue");
	memcpy(d->data.data, data, len);
	d->data.len = len;
	if (from->ss_family == AF_INET || from->ss_family == AF_INET6) {
		r = save_addr(from, &d->src_addr, &port, NULL, e);
		if (r < 0)
			return r;
		d->has_src_addr = d->has_src_port = true;
		d->src_port = port;
	}
	return 0;
}

/* UDP: every queued datagram, peeked from offset 0 on; the peek offset is put back. */
static int dump_dgrams(int fd, InetSkEntry *ie, struct ckpt_error *e)
{
	_cleanup_free_ uint8_t *buf = malloc(DGRAM_MAX);
	int zero = 0, old = -1, r = 0;
	size_t total = 0;

	if (!buf)
		return ckpt_err(e, -ENOMEM, "out of memory");
	if (!inet_sock_int(fd, SOL_SOCKET, SO_PEEK_OFF, &old))
		return ckpt_err_errno(e, -errno, "SO_PEEK_OFF");
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return ckpt_err_errno(e, -errno, "SO_PEEK_OFF to read its queue");
	while (r >= 0) {
		struct sockaddr_storage from = {0};
		struct iovec iov = {.iov_base = buf, .iov_len = DGRAM_MAX};
		struct msghdr mh = {.msg_name = &from,
				    .msg_namelen = sizeof(from),
				    .msg_iov = &iov,
				    .msg_iovlen = 1};
		ssize_t n = recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT);

		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			r = ckpt_err_errno(e, -errno, "peeking at its queue");
		else if (n == 0)
			r = ckpt_err(e, -EOPNOTSUPP,
				     "a zero-length datagram is queued; not supported");
		else if (mh.msg_flags & MSG_TRUNC)
			r = ckpt_err(e, -EMSGSIZE, "a queued datagram is larger than %u bytes",
				     DGRAM_MAX);
		else if ((total += (size_t)n) > QUEUE_MAX || ie->n_dgrams >= DGRAMS_MAX)
			r = ckpt_err(e, -EFBIG, "its queue holds more than a checkpoint saves");
		else
			r = add_dgram(ie, buf, (size_t)n, &from, e);
	}
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)) < 0 && r >= 0)
		r = ckpt_err_errno(e, -errno, "putting its SO_PEEK_OFF %d back", old);
	return r;
}

static int check_state(const struct inet_diag_info *d, InetSkEntry *ie, struct ckpt_error *e)
{
	if (inet_is_udp(ie) || inet_is_ping(ie))
		return 0;
	switch (d->state) {
	case IST_LISTEN:
		/* only accept reaches them, and none can be put back: the
		 * program accepts them while the dump waits (fd_kind.h) */
		if (d->rqueue)
			return ckpt_err(
			    e, -EAGAIN,
			    "it has %u connection%s not yet accepted (the dump lets the "
			    "program accept %s first)",
			    d->rqueue, d->rqueue == 1 ? "" : "s", d->rqueue == 1 ? "it" : "them");
		return 0;
	case IST_ESTABLISHED:
		if (d->shutdown)
			return ckpt_err(e, -EOPNOTSUPP, "it is shut down (%u); not supported",
					d->shutdown);
		return 0;
	case IST_FIN_WAIT1:
	case IST_FIN_WAIT2:
	case IST_CLOSE_WAIT:
	case IST_LAST_ACK:
	case IST_CLOSING:
	case IST_CLOSE:
		return 0;
	default:
		return ckpt_err(e, -EOPNOTSUPP,
				"its connection is in state %s; not supported (a connection "
				"being opened)",
				state_name(d->state));
	}
}

/* Is fd a socket of our network namespace? */
static bool our_netns(int fd)
{
	_cleanup_close_ int ours = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	uint64_t a = 0, b = 1;
	socklen_t la = sizeof(a), lb = sizeof(b);

	return ours >= 0 && getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &a, &la) == 0 &&
	       getsockopt(ours, SOL_SOCKET, SO_NETNS_COOKIE, &b, &lb) == 0 && a == b;
}

/*
 * A TCP socket sock_diag does not know although it has a port: its
 * connection is over (reset, refused, timed out), the socket unhashed. After
 * a reset it is shut down both ways (tcp_done): reads return end of file.
 * An error not read yet (POLLERR) is refused: SO_ERROR would consume it and
 * nothing tells which it is; so is data left unread.
 */
static int dump_closed(int fd, InetSkEntry *ie, struct inet_diag_info *d, struct ckpt_error *e)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};
	struct tcp_info ti = {0};
	socklen_t sl = sizeof(ti);
	int inq = 0;

	if (ie->proto != IPPROTO_TCP || !our_netns(fd) ||
	    getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &sl) < 0 || ti.tcpi_state != IST_CLOSE)
		return -ENOENT;
	if (poll(&pfd, 1, 0) < 0)
		return ckpt_err_errno(e, -errno, "poll");
	if (pfd.revents & POLLERR)
		return ckpt_err(e, -EOPNOTSUPP,
				"its connection is closed with an error the program has not read "
				"yet (SO_ERROR would consume it); not supported");
	if (ioctl(fd, SIOCINQ, &inq) == 0 && inq > 0)
		return ckpt_err(e, -EOPNOTSUPP,
				"its connection is closed with %d bytes the program has not read; "
				"not supported",
				inq);
	memset(d, 0, sizeof(*d));
	d->state = IST_CLOSE;
	if (pfd.revents & POLLRDHUP) {
		ie->has_reset = ie->reset = true;
		d->shutdown = 3;
	} else {
		/* a connect that failed: the port it had is no longer its own */
		ie->has_src_port = false;
		ie->src_port = 0;
	}
	return 0;
}

/*
 * A ping socket: sock_diag does not list them; connected or not from
 * getpeername, a receive side shut down from poll. Refused: echo replies or
 * errors queued (they would have to be made up by the restore).
 */
/* One hex address of /proc/net/icmp{,6}: 32-bit words in host order. */
static bool proc_addr(const char *hex, size_t alen, uint8_t *ret)
{
	if (strlen(hex) != alen * 2)
		return false;
	for (size_t i = 0; i < alen / 4; i++) {
		char w[9];
		uint32_t v;

		memcpy(w, hex + i * 8, 8);
		w[8] = '\0';
		v = (uint32_t)strtoul(w, NULL, 16);
		memcpy(ret + i * 4, &v, 4);
	}
	return true;
}

/*
 * Multicast groups joined: no call lists a socket's, the kernel reader does
 * (inet_sock.mc_list, the IPv6 list). Saved in the order they were joined
 * (the kernel's lists are newest first); a group with a source filter is
 * refused. Without a reader this cannot be told, and is logged.
 */
static int dump_mcast(const struct fd_probe *p, InetSkEntry *ie, struct ckpt_error *e)
{
	_cleanup_free_ struct kread_mcast *v = NULL;
	struct kread_inet_mc mc;
	size_t n = 0;
	int r = kread_inet_mcast(p->kread, p->local_fd, (uint64_t)p->st.st_ino, &mc, e);

	if (r < 0) {
		pr_info("pid %d fd %d: multicast groups joined not known, not restored (%s)",
			p->pid, p->fd, e->msg);
		ckpt_err_clear(e);
		return 0;
	}
	if (mc.mc_index || mc.mc_addr) {
		ie->has_mc_if_index = ie->has_mc_if_addr = true;
		ie->mc_if_index = mc.mc_index;
		ie->mc_if_addr.len = 4;
		ie->mc_if_addr.data = malloc(4);
		if (!ie->mc_if_addr.data)
			return ckpt_err(e, -ENOMEM, "out of memory");
		memcpy(ie->mc_if_addr.data, &mc.mc_addr, 4);
	}
	if (!mc.joined)
		return 0;
	r = kread_inet_mcast_list(p->kread, p->local_fd, (uint64_t)p->st.st_ino, &v, &n, e);
	if (r < 0)
		return ckpt_err_wrap(e, "its multicast groups");
	ie->mcast = calloc(n ? n : 1, sizeof(*ie->mcast));
	if (!ie->mcast)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = n; i-- > 0;) {
		const struct kread_mcast *k = &v[i];
		InetMcast *m;

		if (k->filtered)
			return ckpt_err(
			    e, -EOPNOTSUPP, "%s",
			    "it has joined a multicast group with a source filter "
			    "(IP_ADD_SOURCE_MEMBERSHIP, MCAST_MSFILTER...): not supported");
		m = calloc(1, sizeof(*m));
		if (!m)
			return ckpt_err(e, -ENOMEM, "out of memory");
		inet_mcast__init(m);
		ie->mcast[ie->n_mcast++] = m; /* freed with the entry from now on */
		m->family = k->family == 4 ? AF_INET : AF_INET6;
		m->ifindex = k->ifindex;
		m->group.len = k->family == 4 ? 4 : 16;
		m->group.data = malloc(m->group.len);
		if (k->family == 4) {
			m->has_address = true;
			m->address.len = 4;
			m->address.data = malloc(4);
		}
		if (!m->group.data || (m->has_address && !m->address.data))
			return ckpt_err(e, -ENOMEM, "out of memory");
		memcpy(m->group.data, k->group, m->group.len);
		if (m->has_address)
			memcpy(m->address.data, &k->address, 4);
	}
	return 0;
}

/* IP_MULTICAST_IF, then the groups joined again, in order (post_options). */
static int restore_mcast(int fd, const InetSkEntry *ie, struct ckpt_error *e)
{
	if (ie->has_mc_if_index) {
		struct ip_mreqn mr = {.imr_ifindex = ie->mc_if_index};

		memcpy(&mr.imr_address, ie->mc_if_addr.data, 4);
		if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr)) < 0)
			return ckpt_err_errno(e, -errno, "IP_MULTICAST_IF (interface %d)",
					      ie->mc_if_index);
	}
	for (size_t i = 0; i < ie->n_mcast; i++) {
		const InetMcast *m = ie->mcast[i];
		int r;

		if (m->family == AF_INET) {
			struct ip_mreqn mr = {.imr_ifindex = m->ifindex};

			memcpy(&mr.imr_multiaddr, m->group.data, 4);
			memcpy(&mr.imr_address, m->address.data, 4);
			r = setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr));
		} else {
			struct ipv6_mreq mr = {.ipv6mr_interface = (unsigned)m->ifindex};

			memcpy(&mr.ipv6mr_multiaddr, m->group.data, 16);
			r = setsockopt(fd, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mr, sizeof(mr));
		}
		if (r < 0)
			return ckpt_err_errno(e, -errno, "joining multicast group %zu of %zu again",
					      i + 1, ie->n_mcast);
	}
	return 0;
}

/*
 * What a TCP socket may hold that no call reads back: TCP_MD5SIG keys
 * (sock_diag shows that there are some) and an upper layer protocol
 * (TCP_ULP: kernel TLS keeps its keys and record state there).
 */
#ifndef TCP_AO_INFO
#define TCP_AO_INFO 40 /* Linux 6.7 */
#endif

static int check_tcp_keys_ulp(int fd, const struct inet_diag_info *d, struct ckpt_error *e)
{
	char ulp[32] = "";
	socklen_t len = sizeof(ulp) - 1;
	uint8_t ao[256] = {0}; /* struct tcp_ao_info_opt, zeroed: what a newer one adds is 0 */
	socklen_t aolen = sizeof(ao);

	if (d->md5sig)
		return ckpt_err(e, -EOPNOTSUPP, "%s",
				"it has TCP_MD5SIG keys, which cannot be read back: not supported");
	/* TCP-AO (RFC 5925): ENOENT without keys, ENOPROTOOPT in a kernel without it */
	if (getsockopt(fd, IPPROTO_TCP, TCP_AO_INFO, ao, &aolen) == 0)
		return ckpt_err(e, -EOPNOTSUPP, "%s",
				"it has TCP-AO keys (TCP_AO_ADD_KEY), which cannot be read back: "
				"not supported");
	if (getsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, &len) == 0 && ulp[0])
		return ckpt_err(e, -EOPNOTSUPP,
				"it runs the TCP upper layer protocol \"%s\" (TCP_ULP: kernel TLS "
				"and the like keep state no call reads back): not supported",
				ulp);
	return 0;
}

/*
 * Urgent data (send(MSG_OOB)) not read yet: TCP repair has no way to put
 * the urgent pointer back, so it is refused. A peek with MSG_OOB shows the
 * byte and leaves it (EINVAL: none, or SO_OOBINLINE).
 */
static int check_urgent(int fd, struct ckpt_error *e)
{
	int inline_ = 0, one = 1, zero = 0, inq = 0, all = 0;
	socklen_t len = sizeof(inline_);
	uint8_t b;

	if (recv(fd, &b, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) == 1)
		return ckpt_err(e, -EOPNOTSUPP,
				"it has urgent data (MSG_OOB) not read yet: TCP repair cannot put "
				"the urgent mark back; not supported");
	/*
	 * A mark whose byte was taken: SIOCINQ counts the bytes up to it, or
	 * all of them with SO_OOBINLINE, set for the time of the question on
	 * the frozen program's socket. (An in-line mark stops the queue's peek:
	 * tcp_repair.c says so.) The kernel reader sees both too. The peer may
	 * still be sending (the connection is not locked yet): the answer
	 * counts only if the queue did not grow while it was asked (the same
	 * count before and after; the frozen program reads nothing), else it
	 * is asked again; a queue that never holds still is no mark found here
	 * (the kernel reader still looks).
	 */
	if (getsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &inline_, &len) < 0 || inline_)
		return 0;
	for (int tries = 0;; tries++) {
		int after = 0;

		if (ioctl(fd, SIOCINQ, &inq) < 0)
			return 0;
		if (setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one)) < 0)
			return 0;
		/* the peer's data arriving in between, made certain */
		if (!tries && ckpt_fault("inet-urgent-gap"))
			usleep(50000);
		if (ioctl(fd, SIOCINQ, &all) < 0)
			all = inq;
		if (setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &zero, sizeof(zero)) < 0)
			return ckpt_err_errno(e, -errno, "putting SO_OOBINLINE back");
		if (ioctl(fd, SIOCINQ, &after) < 0 || after == inq)
			break;
		if (tries == 7)
			return 0;
	}
	if (all != inq)
		return ckpt_err(
		    e, -EOPNOTSUPP,
		    "it has an urgent mark (MSG_OOB) %d bytes into its unread data, not "
		    "read past yet (the urgent byte taken or left in line with "
		    "SO_OOBINLINE): TCP repair cannot put the mark back; not supported",
		    inq);
	return 0;
}
/*
 * State the kernel keeps that no call reads back, from the kernel reader
 * (lib/kread.c): refused, since it could not be put back. Without a reader
 * only logged (as the multicast groups above).
 */
static int check_kernel_state(const struct fd_probe *p, const InetSkEntry *ie, struct ckpt_error *e)
{
	bool tcp = ie->proto == IPPROTO_TCP;
	struct kread_inet_state ks;
	int r = kread_inet_state(p->kread, p->local_fd, (uint64_t)p->st.st_ino, tcp, &ks, e);

	if (r < 0) {
		pr_info("pid %d fd %d: urgent marks, reuseport programs, IPv6 flow labels and "
			"anycast addresses not looked for (%s)",
			p->pid, p->fd, e->msg);
		ckpt_err_clear(e);
		return 0;
	}
	if (ks.urgent && inet_is_established(ie))
		return ckpt_err(
		    e, -EOPNOTSUPP,
		    "it has an urgent mark (MSG_OOB) %u bytes into its unread data, not "
		    "read past yet (the urgent byte taken or left in line with "
		    "SO_OOBINLINE): TCP repair cannot put the mark back; not supported",
		    ks.urg_offset);
	if (ks.reuseport_prog)
		return ckpt_err(e, -EOPNOTSUPP, "%s",
				"its SO_REUSEPORT group has a BPF program "
				"(SO_ATTACH_REUSEPORT_CBPF/EBPF), which cannot be read back; not "
				"supported");
	if (ks.flowlabels)
		return ckpt_err(e, -EOPNOTSUPP, "%s",
				"it holds IPv6 flow labels (IPV6_FLOWLABEL_MGR), which cannot be "
				"read back; not supported");
	if (ks.anycast)
		return ckpt_err(
		    e, -EOPNOTSUPP, "%s",
		    "it joined IPv6 anycast addresses (IPV6_JOIN_ANYCAST), which cannot "
		    "be read back; not supported");
	return 0;
}

/*
 * The ping socket ino in /proc/PID/net/icmp (icmp6): its state and peer
 * (getpeername says ENOTCONN for a ping socket connected with port 0).
 */
static int ping_proc(pid_t pid, const InetSkEntry *ie, uint32_t *ret_st, uint8_t *ret_rem,
		     struct ckpt_error *e)
{
	char path[64], line[512], loc[65], rem[65];
	size_t alen = ie->family == AF_INET6 ? 16 : 4;
	_cleanup_fclose_ FILE *f = NULL;

	snprintf(path, sizeof(path), "/proc/%d/net/icmp%s", (int)pid,
		 ie->family == AF_INET6 ? "6" : "");
	f = fopen(path, "re");
	if (!f)
		return ckpt_err_errno(e, -errno, "%s", path);
	while (fgets(line, sizeof(line), f)) {
		unsigned st, rxq;
		unsigned long ino;

		if (sscanf(line,
			   " %*d: %64[0-9A-Fa-f]:%*x %64[0-9A-Fa-f]:%*x %x %*x:%x %*x:%*x %*x %*u "
			   "%*d %lu",
			   loc, rem, &st, &rxq, &ino) != 5 ||
		    ino != ie->inode)
			continue;
		if (!proc_addr(rem, alen, ret_rem))
			break;
		*ret_st = st;
		return 0;
	}
	return ckpt_err(e, -ENOENT, "it is not in %s", path);
}

static int dump_ping(pid_t pid, int fd, InetSkEntry *ie, struct inet_diag_info *d,
		     struct ckpt_error *e)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLRDHUP};
	uint8_t rem[16];
	uint32_t st = 0;
	char c;
	int r = ping_proc(pid, ie, &st, rem, e);

	if (r < 0)
		return r;
	memset(d, 0, sizeof(*d));
	d->state = st == IST_ESTABLISHED ? IST_ESTABLISHED : IST_CLOSE;
	if (d->state == IST_ESTABLISHED && !ie->has_dst_addr) {
		/* connected with port 0: the kernel's getpeername says ENOTCONN */
		ie->dst_addr.len = ie->family == AF_INET6 ? 16 : 4;
		ie->dst_addr.data = malloc(ie->dst_addr.len);
		if (!ie->dst_addr.data)
			return ckpt_err(e, -ENOMEM, "out of memory");
		memcpy(ie->dst_addr.data, rem, ie->dst_addr.len);
		ie->has_dst_addr = ie->has_dst_port = true;
		ie->dst_port = 0;
	}
	if (poll(&pfd, 1, 0) < 0)
		return ckpt_err_errno(e, -errno, "poll");
	if (pfd.revents & POLLERR)
		return ckpt_err(e, -EOPNOTSUPP,
				"it has an error queued (an ICMP error or IP_RECVERR message); "
				"not supported");
	if (pfd.revents & POLLRDHUP)
		d->shutdown = 1;
	if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) >= 0)
		return ckpt_err(e, -EOPNOTSUPP,
				"it has echo replies the program has not read; not supported "
				"(they cannot be put back)");
	return 0;
}

static int inet_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	struct inet_diag_info d;
	char what[PATH_MAX + 160];
	InetSkEntry *ie;
	int domain = 0, proto = 0, type = 0, r;

	r = ckpt_fault_inject("inet-dump", e);
	if (r < 0)
		return r;
	r = fdk_dump_common(p, FILE_TYPE__FILE_INET_SK, fe, e);
	if (r < 0)
		return r;
	fe->has_pos = false;
	ie = malloc(sizeof(*ie));
	if (!ie)
		return ckpt_err(e, -ENOMEM, "out of memory");
	inet_sk_entry__init(ie);
	fe->inet_sk = ie; /* freed with the entry from now on */
	inet_sock_int(p->local_fd, SOL_SOCKET, SO_DOMAIN, &domain);
	inet_sock_int(p->local_fd, SOL_SOCKET, SO_TYPE, &type);
	inet_sock_int(p->local_fd, SOL_SOCKET, SO_PROTOCOL, &proto);
	ie->inode = (uint64_t)p->st.st_ino;
	ie->family = (uint32_t)domain;
	ie->type = (uint32_t)type;
	ie->proto = (uint32_t)proto;
	r = dump_addrs(p->local_fd, ie, e);
	if (r < 0)
		return ckpt_err_wrap(e, "%s", inet_entry_describe(fe, what, sizeof(what)));
	if (inet_is_ping(ie))
		r = dump_ping(p->pid, p->local_fd, ie, &d, e);
	else
		r = sockdiag_inet_find(domain, proto, (uint32_t)p->st.st_ino, &d, e);
	if (r == -ENOENT && !ie->src_port) {
		/* never bound: in no table sock_diag walks */
		memset(&d, 0, sizeof(d));
		d.state = IST_CLOSE;
		r = 0;
	}
	if (r == -ENOENT)
		r = dump_closed(p->local_fd, ie, &d, e);
	if (r == -ENOENT)
		return ckpt_err(e, r,
				"%s: sock_diag does not know it (a socket of another network "
				"namespace?); not supported",
				inet_entry_describe(fe, what, sizeof(what)));
	if (r < 0)
		return ckpt_err_wrap(e, "%s", inet_entry_describe(fe, what, sizeof(what)));
	ie->state = d.state;
	ie->has_shutdown = true;
	ie->shutdown = d.shutdown;
	r = check_state(&d, ie, e);
	if (r >= 0 && d.state == IST_LISTEN) {
		ie->has_backlog = true;
		ie->backlog = d.wqueue;
	}
	if (r >= 0 && ie->proto == IPPROTO_TCP)
		r = check_tcp_keys_ulp(p->local_fd, &d, e);
	if (r >= 0 && (inet_is_udp(ie) || inet_is_ping(ie)))
		r = dump_mcast(p, ie, e);
	if (r >= 0 && ie->proto == IPPROTO_TCP && inet_is_established(ie))
		r = check_urgent(p->local_fd, e);
	if (r >= 0)
		r = check_kernel_state(p, ie, e);
	if (r >= 0)
		r = dump_options(p->local_fd, ie, e);
	if (r >= 0 && inet_is_udp(ie))
		r = dump_dgrams(p->local_fd, ie, e);
	if (r < 0)
		return ckpt_err_wrap(e, "%s", inet_entry_describe(fe, what, sizeof(what)));
	pr_debug("pid %d fd %d: %s\n", p->pid, p->fd, inet_entry_describe(fe, what, sizeof(what)));
	return 0;
}

/* ---- restore: checks ---------------------------------------------------------------- */

static int check_entry(const FileEntry *fe, struct ckpt_error *e)
{
	const InetSkEntry *ie = fe->inet_sk;
	size_t alen;

	if (fe->type != FILE_TYPE__FILE_INET_SK || !fe->path || strncmp(fe->path, "socket:[", 8))
		return ckpt_err(e, -EINVAL, "files.img: entry %u: not a TCP/UDP socket entry",
				fe->id);
	if (!ie)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field inet_sk: missing",
				fe->id, fe->path);
	if ((ie->family != AF_INET && ie->family != AF_INET6) ||
	    !((ie->type == SOCK_STREAM && ie->proto == IPPROTO_TCP) ||
	      (ie->type == SOCK_DGRAM && inet_is_udp(ie)) ||
	      (ie->type == SOCK_DGRAM && ie->family == AF_INET && ie->proto == IPPROTO_ICMP) ||
	      (ie->type == SOCK_DGRAM && ie->family == AF_INET6 && ie->proto == IPPROTO_ICMPV6)))
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u (%s): field inet_sk: family %u type %u "
				"protocol %u",
				fe->id, fe->path, ie->family, ie->type, ie->proto);
	alen = ie->family == AF_INET6 ? 16 : 4;
	if ((ie->has_src_addr && ie->src_addr.len != alen) ||
	    (ie->has_dst_addr && ie->dst_addr.len != alen) || ie->src_port > 65535 ||
	    ie->dst_port > 65535)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field inet_sk: addresses",
				fe->id, fe->path);
	if (ie->proto == IPPROTO_TCP && !inet_is_established(ie) && ie->state != IST_LISTEN &&
	    ie->state != IST_CLOSE)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field inet_sk.state: %u",
				fe->id, fe->path, ie->state);
	if ((inet_is_udp(ie) || inet_is_ping(ie)) && ie->state != IST_ESTABLISHED &&
	    ie->state != IST_CLOSE)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field inet_sk.state: %u",
				fe->id, fe->path, ie->state);
	if (inet_is_repaired(ie) &&
	    (!ie->has_dst_addr || !ie->has_src_addr || !ie->has_snd_seq || !ie->has_rcv_seq ||
	     (ie->has_unsent && ie->has_send_queue && ie->unsent > ie->send_queue.len) ||
	     (ie->has_unsent && ie->unsent && !ie->has_send_queue) ||
	     (ie->lock_table && !netlock_name_ok(ie->lock_table)) ||
	     (ie->state != IST_ESTABLISHED && !ie->lock_table)))
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u (%s): field inet_sk: a connection without "
				"its state",
				fe->id, fe->path);
	if (inet_opts_check(ie) < 0)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field inet_sk.opts", fe->id,
				fe->path);
	if (ie->has_reset && ie->reset && (ie->proto != IPPROTO_TCP || ie->state != IST_CLOSE))
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field inet_sk.reset", fe->id,
				fe->path);
	if (ie->has_backlog && ie->backlog > 1u << 20)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field inet_sk.backlog: %u",
				fe->id, fe->path, ie->backlog);
	if (ie->has_mc_if_index != ie->has_mc_if_addr ||
	    (ie->has_mc_if_addr &&
	     (ie->mc_if_addr.len != 4 || (!inet_is_udp(ie) && !inet_is_ping(ie)))))
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field inet_sk.mc_if_index",
				fe->id, fe->path);
	for (size_t i = 0; i < ie->n_mcast; i++) {
		const InetMcast *m = ie->mcast[i];

		if (ie->n_mcast > 2 * KREAD_MCAST_MAX || (!inet_is_udp(ie) && !inet_is_ping(ie)) ||
		    !((m->family == AF_INET && m->group.len == 4 && m->has_address &&
		       m->address.len == 4) ||
		      (m->family == AF_INET6 && ie->family == AF_INET6 && m->group.len == 16)))
			return ckpt_err(e, -EINVAL,
					"files.img: entry %u (%s): field inet_sk.mcast[%zu]",
					fe->id, fe->path, i);
	}
	if (ie->n_dgrams > DGRAMS_MAX)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field inet_sk.dgrams",
				fe->id, fe->path);
	for (size_t i = 0; i < ie->n_dgrams; i++)
		if (ie->dgrams[i]->data.len > DGRAM_MAX ||
		    (ie->dgrams[i]->has_src_addr && ie->dgrams[i]->src_addr.len != 4 &&
		     ie->dgrams[i]->src_addr.len != 16))
			return ckpt_err(e, -EINVAL,
					"files.img: entry %u (%s): field inet_sk.dgrams", fe->id,
					fe->path);
	return 0;
}

int inet_new_sock(const InetSkEntry *ie)
{
	return socket((int)ie->family, (int)ie->type | SOCK_CLOEXEC, (int)ie->proto);
}

int inet_set_int(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v));
}

/*
 * Options bind depends on. A TCP socket always binds with SO_REUSEADDR (the
 * saved value is set after): the killed program's closed connections may
 * have left TIME_WAIT sockets on its port, which it did not have to face.
 */
static int pre_bind_options(int fd, const InetSkEntry *ie)
{
	if (((ie->reuseaddr || ie->proto == IPPROTO_TCP) &&
	     inet_set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0) ||
	    (ie->reuseport && inet_set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0) ||
	    (ie->family == AF_INET6 && ie->has_v6only &&
	     inet_set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, ie->v6only) < 0))
		return -errno;
	return 0;
}

/* A listening or bound socket: its port must be free (the dumped program still running?) */
static int check_port(const FileEntry *fe, struct ckpt_error *e)
{
	const InetSkEntry *ie = fe->inet_sk;
	_cleanup_close_ int fd = -1;
	struct sockaddr_storage ss;
	char what[PATH_MAX + 160];
	socklen_t len;

	if (inet_is_repaired(ie) || !ie->src_port)
		return 0;
	fd = inet_new_sock(ie);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "socket");
	len = inet_make_sa(ie->family, ie->has_src_addr ? &ie->src_addr : NULL, ie->src_port,
			   ie->src_scope, &ss);
	if (pre_bind_options(fd, ie) < 0)
		return ckpt_err_errno(e, -errno, "%s: options",
				      inet_entry_describe(fe, what, sizeof(what)));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return ckpt_err_errno(e, -errno, "%s: its address is not free",
				      inet_entry_describe(fe, what, sizeof(what)));
	return 0;
}

static int inet_verify(const FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("inet-verify", e);

	if (r >= 0)
		r = check_entry(fe, e);
	if (r >= 0 && fe->inet_sk->proto == IPPROTO_TCP && fe->inet_sk->state == IST_LISTEN)
		r = check_port(fe, e);
	return r;
}

/* ---- restore ------------------------------------------------------------------------ */

static struct isk *by_inode(struct istate *st, uint64_t ino)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->s[i].ie->inode == ino)
			return &st->s[i];
	return NULL;
}

/*
 * Buffer sizes only where they differ from a fresh socket's: setting one
 * fixes it (no autotuning any more), as the program's own setsockopt did.
 */
static int set_bufs(int fd, const InetSkEntry *ie)
{
	_cleanup_close_ int fresh = inet_new_sock(ie);
	int snd = 0, rcv = 0;

	if (fresh < 0)
		return -errno;
	inet_sock_int(fresh, SOL_SOCKET, SO_SNDBUF, &snd);
	inet_sock_int(fresh, SOL_SOCKET, SO_RCVBUF, &rcv);
	int lock = 0;
	bool udp = ie->proto != IPPROTO_TCP;

	/* a size the program set is locked (SO_BUF_LOCK): then it is set again, TCP too */
	inet_opts_get(ie, SOL_SOCKET, SO_BUF_LOCK, &lock);
	if (ie->has_sndbuf && ((udp && (int)ie->sndbuf != snd) || (lock & SOCK_SNDBUF_LOCK)) &&
	    inet_set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, (int)ie->sndbuf / 2) < 0)
		return -errno;
	if (ie->has_rcvbuf && ((udp && (int)ie->rcvbuf != rcv) || (lock & SOCK_RCVBUF_LOCK)) &&
	    inet_set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, (int)ie->rcvbuf / 2) < 0)
		return -errno;
	/* the locks as they were (the restore's own SO_*BUFFORCE set them) */
	if (inet_set_int(fd, SOL_SOCKET, SO_BUF_LOCK, lock) < 0 && errno != ENOPROTOOPT)
		return -errno;
	return 0;
}

/* Options after everything else. */
static int post_options(const struct isk *u, struct ckpt_error *e)
{
	const InetSkEntry *ie = u->ie;
	char what[PATH_MAX + 160];
	int fd = u->fd, r;

	if ((ie->has_keepalive && inet_set_int(fd, SOL_SOCKET, SO_KEEPALIVE, ie->keepalive) < 0) ||
	    (ie->has_reuseaddr && inet_set_int(fd, SOL_SOCKET, SO_REUSEADDR, ie->reuseaddr) < 0) ||
	    (ie->has_nodelay && inet_set_int(fd, IPPROTO_TCP, TCP_NODELAY, ie->nodelay) < 0) ||
	    (ie->has_rcvtimeo_us && sockopt_set_timeo(fd, SO_RCVTIMEO, ie->rcvtimeo_us) < 0) ||
	    (ie->has_sndtimeo_us && sockopt_set_timeo(fd, SO_SNDTIMEO, ie->sndtimeo_us) < 0))
		return ckpt_err_errno(e, -errno, "%s: setting its options",
				      inet_entry_describe(u->fe, what, sizeof(what)));
	r = set_bufs(fd, ie);
	if (r < 0)
		return ckpt_err_errno(e, r, "%s: buffer sizes",
				      inet_entry_describe(u->fe, what, sizeof(what)));
	r = inet_opts_set(fd, ie, OPT_LAST, e);
	if (r >= 0)
		r = restore_mcast(fd, ie, e);
	if (r < 0)
		return ckpt_err_wrap(e, "%s", inet_entry_describe(u->fe, what, sizeof(what)));
	return fdk_set_nonblock(fd, u->fe, e);
}

/* Listening, bound, unconnected TCP sockets and UDP sockets (bound, not yet connected). */
static int make_plain(struct isk *u, struct ckpt_error *e)
{
	const InetSkEntry *ie = u->ie;
	char what[PATH_MAX + 160];
	struct sockaddr_storage ss;
	socklen_t len;

	inet_entry_describe(u->fe, what, sizeof(what));
	u->fd = inet_new_sock(ie);
	if (u->fd < 0)
		return ckpt_err_errno(e, -errno, "%s: socket%s", what, inet_sock_hint(ie, errno));
	if (pre_bind_options(u->fd, ie) < 0)
		return ckpt_err_errno(e, -errno, "%s: options", what);
	if (inet_opts_set(u->fd, ie, OPT_BEFORE_BIND, e) < 0)
		return ckpt_err_wrap(e, "%s", what);
	if (ie->src_port) {
		len = inet_make_sa(ie->family, ie->has_src_addr ? &ie->src_addr : NULL,
				   ie->src_port, ie->src_scope, &ss);
		if (bind(u->fd, (struct sockaddr *)&ss, len) < 0)
			return ckpt_err_errno(e, -errno, "%s: bind", what);
	}
	if (ie->state == IST_LISTEN && ie->proto == IPPROTO_TCP &&
	    listen(u->fd, ie->has_backlog ? (int)ie->backlog : 128) < 0)
		return ckpt_err_errno(e, -errno, "%s: listen", what);
	return 0;
}

/* A queued datagram sent again from its source address if we can bind it, else from anywhere. */
static int send_dgram(const struct isk *u, const InetDgram *d, struct ckpt_error *e)
{
	const InetSkEntry *ie = u->ie;
	static const uint8_t any[16];
	_cleanup_close_ int s = -1;
	struct sockaddr_storage to, from;
	char what[PATH_MAX + 160];
	socklen_t tolen, fromlen;
	ProtobufCBinaryData lo;
	uint8_t lo4[4] = {127, 0, 0, 1}, lo6[16] = {[15] = 1};

	s = socket((int)ie->family, SOCK_DGRAM | SOCK_CLOEXEC, (int)ie->proto);
	if (s < 0)
		return ckpt_err_errno(e, -errno, "socket");
	if (d->has_src_addr && d->src_addr.len == (ie->family == AF_INET6 ? 16u : 4u)) {
		fromlen = inet_make_sa(ie->family, &d->src_addr, d->src_port, 0, &from);
		inet_set_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
		inet_set_int(s, SOL_SOCKET, SO_REUSEPORT, 1);
		if (bind(s, (struct sockaddr *)&from, fromlen) < 0)
			pr_debug("%s: queued datagram: cannot send from its source: %m\n",
				 u->fe->path);
	}
	/* to our own address; a wildcard one through loopback */
	if (!ie->has_src_addr || !memcmp(ie->src_addr.data, any, ie->src_addr.len)) {
		lo.data = ie->family == AF_INET6 ? lo6 : lo4;
		lo.len = ie->family == AF_INET6 ? 16 : 4;
		tolen = inet_make_sa(ie->family, &lo, ie->src_port, 0, &to);
	} else {
		tolen = inet_make_sa(ie->family, &ie->src_addr, ie->src_port, ie->src_scope, &to);
	}
	if (sendto(s, d->data.data, d->data.len, MSG_DONTWAIT, (struct sockaddr *)&to, tolen) !=
	    (ssize_t)d->data.len)
		return ckpt_err_errno(e, -errno, "%s: putting a queued datagram back",
				      inet_entry_describe(u->fe, what, sizeof(what)));
	return 0;
}

static int fill_dgrams(struct isk *u, struct ckpt_error *e)
{
	char what[PATH_MAX + 160];
	int r, inq = 0;

	if (!u->ie->n_dgrams)
		return 0;
	if (!u->ie->src_port)
		return ckpt_err(e, -EINVAL, "%s: queued datagrams on an unbound socket",
				inet_entry_describe(u->fe, what, sizeof(what)));
	for (size_t i = 0; i < u->ie->n_dgrams; i++) {
		r = send_dgram(u, u->ie->dgrams[i], e);
		if (r < 0)
			return r;
	}
	/* loopback delivers at once: check they all arrived */
	for (int tries = 0; tries < 100; tries++) {
		struct timespec ts = {0, 1000000};

		if (ioctl(u->fd, SIOCINQ, &inq) == 0 && inq > 0)
			break;
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int connect_udp(struct isk *u, struct ckpt_error *e)
{
	const InetSkEntry *ie = u->ie;
	char what[PATH_MAX + 160];
	struct sockaddr_storage ss;
	socklen_t len;

	if (!(inet_is_udp(ie) || inet_is_ping(ie)) || ie->state != IST_ESTABLISHED ||
	    !ie->has_dst_addr)
		return 0;
	len = inet_make_sa(ie->family, &ie->dst_addr, ie->dst_port, ie->src_scope, &ss);
	if (connect(u->fd, (struct sockaddr *)&ss, len) < 0)
		return ckpt_err_errno(e, -errno, "%s: connect",
				      inet_entry_describe(u->fe, what, sizeof(what)));
	return 0;
}

/* A connection that was reset, its error (ECONNRESET) already read by the program. */
static int make_reset(struct isk *u, struct ckpt_error *e)
{
	char what[PATH_MAX + 160];
	int err = 0;
	int r = tcp_make_reset(u, e);

	if (r >= 0 && !inet_sock_int(u->fd, SOL_SOCKET, SO_ERROR, &err))
		r = ckpt_err_errno(e, -errno, "%s: SO_ERROR",
				   inet_entry_describe(u->fe, what, sizeof(what)));
	return r;
}

/*
 * A UDP or closed TCP socket shut down: the same shutdown again (on a socket
 * that is not connected the kernel records it and says ENOTCONN).
 * Established connections and reset sockets have theirs already.
 */
static int shut_down(struct isk *u, struct ckpt_error *e)
{
	const InetSkEntry *ie = u->ie;
	char what[PATH_MAX + 160];
	uint32_t how = ie->shutdown & 3;

	if (!how || inet_is_established(ie) || (ie->has_reset && ie->reset) ||
	    (ie->proto == IPPROTO_TCP && ie->state == IST_LISTEN))
		return 0;
	if (shutdown(u->fd, (int)how - 1) < 0 && errno != ENOTCONN)
		return ckpt_err_errno(e, -errno, "%s: shutdown",
				      inet_entry_describe(u->fe, what, sizeof(what)));
	return 0;
}

static int collect(struct fd_open_ctx *ctx, struct istate *st, struct ckpt_error *e)
{
	st->s = calloc(ctx->nall + 1, sizeof(*st->s));
	if (!st->s)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < ctx->nall; i++) {
		const FileEntry *fe = ctx->all[i];
		int r;

		if (fe->type != FILE_TYPE__FILE_INET_SK)
			continue;
		r = check_entry(fe, e);
		if (r < 0)
			return r;
		if (by_inode(st, fe->inet_sk->inode))
			return ckpt_err(e, -EINVAL, "files.img: entry %u: socket:[%llu] twice",
					fe->id, (unsigned long long)fe->inet_sk->inode);
		st->s[st->n++] = (struct isk){.fe = fe, .ie = fe->inet_sk, .fd = -1};
	}
	return 0;
}

static int build_all(struct istate *st, struct ckpt_error *e)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < st->n; i++)
		if (st->s[i].ie->has_reset && st->s[i].ie->reset)
			r = make_reset(&st->s[i], e);
		else if (!inet_is_established(st->s[i].ie))
			r = make_plain(&st->s[i], e);
		else if (!inet_is_repaired(st->s[i].ie))
			r = tcp_make_reset(&st->s[i], e);
	for (size_t i = 0; r >= 0 && i < st->n; i++)
		r = fill_dgrams(&st->s[i], e);
	for (size_t i = 0; r >= 0 && i < st->n; i++)
		r = connect_udp(&st->s[i], e);
	for (size_t i = 0; r >= 0 && i < st->n; i++)
		r = shut_down(&st->s[i], e);
	if (r >= 0)
		r = tcp_lock_pass_ours(st, e);
	for (size_t i = 0; r >= 0 && i < st->n; i++)
		if (inet_is_repaired(st->s[i].ie))
			r = tcp_make_repaired(&st->s[i], e);
	if (r >= 0)
		r = tcp_unlock_all(st, e);
	for (size_t i = 0; r >= 0 && i < st->n; i++)
		if (inet_is_repaired(st->s[i].ie))
			r = tcp_repair_off(&st->s[i], e);
	for (size_t i = 0; r >= 0 && i < st->n; i++)
		r = post_options(&st->s[i], e);
	return r;
}

/* The first open: every inet socket of the restore, made together. */
static int build(struct fd_open_ctx *ctx, struct ckpt_error *e)
{
	struct istate *st = calloc(1, sizeof(*st));
	int r;

	if (!st)
		return ckpt_err(e, -ENOMEM, "out of memory");
	ctx->priv = st; /* freed by open_done, whatever happens next */
	r = collect(ctx, st, e);
	return r < 0 ? r : build_all(st, e);
}

static int fd_of(void *priv, const FileEntry *fe)
{
	struct isk *u = by_inode(priv, fe->inet_sk->inode);

	return u ? u->fd : -1;
}

static const struct fdk_batch inet_batch = {
    .check = check_entry,
    .build = build,
    .fd_of = fd_of,
    .describe = inet_entry_describe,
};

static int inet_open_shared(struct fd_open_ctx *ctx, const FileEntry *fe, int *ret_fd,
			    struct ckpt_error *e)
{
	int r = ckpt_fault_inject("inet-open", e);

	return r < 0 ? r : fdk_batch_open(ctx, &inet_batch, fe, ret_fd, e);
}

/*
 * End of the files stage. A connection still in repair mode (the stage
 * failed before its turn) is closed silently: the peer keeps waiting behind
 * the lock and a later restore can try again.
 */
static void inet_open_done(struct fd_open_ctx *ctx)
{
	struct istate *st = ctx->priv;

	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++)
		if (st->s[i].fd >= 0)
			close(st->s[i].fd);
	free(st->s);
	free(st);
	ctx->priv = NULL;
}

/* Killing dump, last look: a connection came to a listener since it was saved. */
static int inet_dump_recheck(const struct fd_dump_view *v, struct ckpt_error *e)
{
	for (size_t i = 0; i < v->n; i++) {
		const FileEntry *fe = v->items[i].fe;
		struct inet_diag_info d;
		char what[PATH_MAX + 160];
		int r;

		if (fe->type != FILE_TYPE__FILE_INET_SK || !fe->inet_sk ||
		    fe->inet_sk->proto != IPPROTO_TCP || fe->inet_sk->state != IST_LISTEN)
			continue;
		r = sockdiag_inet_find((int)fe->inet_sk->family, IPPROTO_TCP,
				       (uint32_t)fe->inet_sk->inode, &d, e);
		if (r >= 0 && d.rqueue)
			r = ckpt_err(e, -EAGAIN,
				     "a connection came while the checkpoint was committed; it "
				     "is withdrawn and the tree left running");
		if (r < 0)
			return ckpt_err_wrap(e, "pid %d: fd %d: %s", v->items[i].pid,
					     v->items[i].fd,
					     inet_entry_describe(fe, what, sizeof(what)));
	}
	return 0;
}

const struct fd_kind fd_kind_inet = {
    .name = "TCP/UDP socket",
    .matches = inet_matches,
    .describe = inet_describe,
    .entry_field = offsetof(FileEntry, inet_sk),
    .path = FD_PATH_PROC_LINK,
    .dump = inet_dump,
    .verify = inet_verify,
    .dump_done = tcp_repair_dump_done,
    .open_shared = inet_open_shared,
    .open_done = inet_open_done,
    .dump_undo = tcp_repair_dump_undo,
    .dump_recheck = inet_dump_recheck,
};
