/* SPDX-License-Identifier: MIT */
/*
 * TCP and UDP sockets, IPv4 and IPv6. One FileEntry per socket.
 *
 * Dump. State from sock_diag (INET_DIAG, lib/sockdiag.c: state, listen
 * backlog, accept queue, shutdown), addresses from getsockname/getpeername
 * and options from getsockopt on our pidfd_getfd copy. UDP: the queued
 * datagrams with their sources, peeked stepping SO_PEEK_OFF (never
 * consumed). Established TCP connections, once every fd is dumped
 * (dump_done): every one of them is locked first (lib/netlock.c: an
 * nftables table dropping their packets both ways, so the kernel neither
 * acknowledges data the checkpoint does not hold nor answers the peer with
 * a reset once the tree is killed), then put in repair mode (TCP_REPAIR):
 * sequence numbers, both queues (MSG_PEEK in repair mode), negotiated
 * options, window and timestamp are read. A socket in repair mode sends
 * nothing when it is closed, so killing the tree leaves the peer waiting.
 * A failed dump or --leave-running undoes both (dump_undo) before the tree
 * resumes; then the peer's retransmissions get through.
 *
 * Restore. Everything is made by the restorer process on the first
 * open_shared call: listening, bound and unconnected sockets and UDP
 * sockets first (an established socket bound to a listener's port would
 * keep the listener from binding), UDP queues sent again, UDP sockets
 * connected, then every established connection in repair mode (sequence
 * numbers, bind, connect without a packet, options, queues, window), the
 * lock tables deleted, repair mode off (the peer gets a window probe, and
 * the retransmission timer resends what was unacknowledged) and the part
 * of the send queue that was never sent written normally.
 * See docs/fd-kinds.md, "TCP and UDP sockets".
 */
#define LOG_PREFIX "kind inet: "

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"
#include "netlock.h"
#include "sockdiag.h"
#include "sockopt.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* kernel TCP states (include/net/tcp_states.h) */
#define IST_ESTABLISHED 1
#define IST_CLOSE 7
#define IST_LISTEN 10

#define TCPOPT_MSS 2
#define TCPOPT_WSCALE 3
#define TCPOPT_SACKOK 4
#define TCPOPT_TS 8

/* what one checkpoint saves of one socket's queues */
#define QUEUE_MAX (64u << 20)
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
static const char *inet_entry_describe(const FileEntry *fe, char *buf, size_t blen)
{
	const InetSkEntry *ie = fe->inet_sk;
	char a[80], b[80];

	if (!ie) {
		snprintf(buf, blen, "socket %s", fe->path);
		return buf;
	}
	addr_str(ie->family, ie->has_src_addr ? &ie->src_addr : NULL, ie->src_port, a, sizeof(a));
	if (ie->has_dst_addr)
		snprintf(buf, blen, "%s%s socket %s (%s <-> %s)",
			 ie->proto == IPPROTO_TCP ? "TCP" : "UDP",
			 ie->family == AF_INET6 ? "v6" : "", fe->path, a,
			 addr_str(ie->family, &ie->dst_addr, ie->dst_port, b, sizeof(b)));
	else
		snprintf(buf, blen, "%s%s socket %s (%s, %s)",
			 ie->proto == IPPROTO_TCP ? "TCP" : "UDP",
			 ie->family == AF_INET6 ? "v6" : "", fe->path, a, state_name(ie->state));
	return buf;
}

static bool inet_is_established(const InetSkEntry *ie)
{
	return ie->proto == IPPROTO_TCP && ie->state == IST_ESTABLISHED;
}

/* An established connection held and restored with TCP_REPAIR (not --tcp-close). */
static bool inet_is_repaired(const InetSkEntry *ie)
{
	return inet_is_established(ie) && !(ie->has_closed && ie->closed);
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

static socklen_t inet_make_sa(uint32_t family, const ProtobufCBinaryData *a, uint32_t port,
			      uint32_t scope, struct sockaddr_storage *ss)
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

static bool inet_sock_int(int fd, int level, int opt, int *ret)
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
	       (type == SOCK_DGRAM && proto == IPPROTO_UDP);
}

/* "TCP socket", "UDPv6 socket": by the protocol alone (other IP sockets are probe.c's) */
static bool inet_describe(const struct fd_probe *p, char *buf, size_t len)
{
	int domain = fdk_probe_sock_domain(p), proto = -1;
	const char *v6 = domain == AF_INET6 ? "v6" : "";

	if (domain != AF_INET && domain != AF_INET6)
		return false;
	inet_sock_int(p->local_fd, SOL_SOCKET, SO_PROTOCOL, &proto);
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return false;
	snprintf(buf, len, "%s%s socket", proto == IPPROTO_TCP ? "TCP" : "UDP", v6);
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
	return 0;
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
	if (ie->proto == IPPROTO_UDP)
		return 0;
	switch (d->state) {
	case IST_LISTEN:
		if (d->rqueue)
			return ckpt_err(e, -EOPNOTSUPP,
					"it has %u connections not yet accepted; listening "
					"sockets with pending connections are not supported",
					d->rqueue);
		return 0;
	case IST_ESTABLISHED:
		if (d->shutdown)
			return ckpt_err(e, -EOPNOTSUPP, "it is shut down (%u); not supported",
					d->shutdown);
		return 0;
	case IST_CLOSE:
		return 0;
	default:
		return ckpt_err(e, -EOPNOTSUPP,
				"its connection is in state %s; only listening, established and "
				"closed TCP sockets are supported",
				state_name(d->state));
	}
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
	r = sockdiag_inet_find(domain, proto, (uint32_t)p->st.st_ino, &d, e);
	if (r == -ENOENT && !ie->src_port) {
		/* never bound: in no table sock_diag walks */
		memset(&d, 0, sizeof(d));
		d.state = IST_CLOSE;
		r = 0;
	}
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
	if (r >= 0)
		r = dump_options(p->local_fd, ie, e);
	if (r >= 0 && ie->proto == IPPROTO_UDP)
		r = dump_dgrams(p->local_fd, ie, e);
	if (r < 0)
		return ckpt_err_wrap(e, "%s", inet_entry_describe(fe, what, sizeof(what)));
	pr_debug("pid %d fd %d: %s\n", p->pid, p->fd, inet_entry_describe(fe, what, sizeof(what)));
	return 0;
}

/* ---- dump: established connections ------------------------------------------------ */

/* Our own copy of fd of pid (the task is frozen). */
static int grab_fd(pid_t pid, int fd, struct ckpt_error *e)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int r;

	if (pidfd < 0)
		return ckpt_err_errno(e, -errno, "pid %d: pidfd_open", pid);
	r = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (r < 0)
		return ckpt_err_errno(e, -errno, "pid %d: fd %d: pidfd_getfd", pid, fd);
	return r;
}

static int set_tcp(int fd, int opt, int v)
{
	return setsockopt(fd, IPPROTO_TCP, opt, &v, sizeof(v));
}

static int get_tcp_u32(int fd, int opt, uint32_t *ret)
{
	socklen_t sl = sizeof(*ret);

	return getsockopt(fd, IPPROTO_TCP, opt, ret, &sl);
}

/* Peek n bytes of the queue chosen with TCP_REPAIR_QUEUE. */
static int peek_queue(int fd, int queue, size_t n, ProtobufCBinaryData *ret,
		      protobuf_c_boolean *has, struct ckpt_error *e)
{
	const char *name = queue == TCP_RECV_QUEUE ? "receive" : "send";
	ssize_t got;

	if (set_tcp(fd, TCP_REPAIR_QUEUE, queue) < 0)
		return ckpt_err_errno(e, -errno, "TCP_REPAIR_QUEUE %s", name);
	if (!n)
		return 0;
	if (n > QUEUE_MAX)
		return ckpt_err(e, -EFBIG,
				"its %s queue holds %zu bytes, more than a checkpoint "
				"saves",
				name, n);
	ret->data = malloc(n);
	if (!ret->data)
		return ckpt_err(e, -ENOMEM, "out of memory for its %s queue", name);
	got = recv(fd, ret->data, n, MSG_PEEK | MSG_DONTWAIT);
	if (got < 0)
		return ckpt_err_errno(e, -errno, "peeking at its %s queue", name);
	ret->len = (size_t)got;
	*has = true;
	if ((size_t)got != n)
		return ckpt_err(e, -EIO, "read %zd bytes of its %s queue, the kernel counts %zu",
				got, name, n);
	return 0;
}

/* The state of a connection in repair mode (fd in repair mode). */
static int read_repaired(int fd, InetSkEntry *ie, struct ckpt_error *e)
{
	struct tcp_repair_window w;
	struct tcp_info ti;
	socklen_t sl;
	int inq = 0, outq = 0, unsent = 0, r;

	if (set_tcp(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) < 0 ||
	    get_tcp_u32(fd, TCP_QUEUE_SEQ, &ie->snd_seq) < 0 ||
	    set_tcp(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) < 0 ||
	    get_tcp_u32(fd, TCP_QUEUE_SEQ, &ie->rcv_seq) < 0)
		return ckpt_err_errno(e, -errno, "reading its sequence numbers (TCP_QUEUE_SEQ)");
	ie->has_snd_seq = ie->has_rcv_seq = true;
	if (ioctl(fd, SIOCINQ, &inq) < 0 || ioctl(fd, SIOCOUTQ, &outq) < 0 ||
	    ioctl(fd, SIOCOUTQNSD, &unsent) < 0)
		return ckpt_err_errno(e, -errno, "reading its queue lengths (SIOCINQ, SIOCOUTQ)");
	r = peek_queue(fd, TCP_RECV_QUEUE, (size_t)inq, &ie->recv_queue, &ie->has_recv_queue, e);
	if (r >= 0)
		r = peek_queue(fd, TCP_SEND_QUEUE, (size_t)outq, &ie->send_queue,
			       &ie->has_send_queue, e);
	if (r < 0)
		return r;
	ie->has_unsent = true;
	ie->unsent = (uint32_t)unsent;
	sl = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &sl) < 0 ||
	    get_tcp_u32(fd, TCP_MAXSEG, &ie->mss) < 0)
		return ckpt_err_errno(e, -errno, "reading its options (TCP_INFO, TCP_MAXSEG)");
	ie->has_mss = ie->has_wscale_ok = ie->has_sack_ok = ie->has_tstamp_ok = true;
	ie->wscale_ok = (ti.tcpi_options & TCPI_OPT_WSCALE) != 0;
	ie->sack_ok = (ti.tcpi_options & TCPI_OPT_SACK) != 0;
	ie->tstamp_ok = (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) != 0;
	ie->has_snd_wscale = ie->has_rcv_wscale = true;
	ie->snd_wscale = ti.tcpi_snd_wscale;
	ie->rcv_wscale = ti.tcpi_rcv_wscale;
	if (ie->tstamp_ok) {
		if (get_tcp_u32(fd, TCP_TIMESTAMP, &ie->timestamp) < 0)
			return ckpt_err_errno(e, -errno, "TCP_TIMESTAMP");
		ie->has_timestamp = true;
	}
	sl = sizeof(w);
	if (getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &sl) < 0)
		return ckpt_err_errno(e, -errno, "TCP_REPAIR_WINDOW");
	ie->has_snd_wl1 = ie->has_snd_wnd = ie->has_max_window = true;
	ie->has_rcv_wnd = ie->has_rcv_wup = true;
	ie->snd_wl1 = w.snd_wl1;
	ie->snd_wnd = w.snd_wnd;
	ie->max_window = w.max_window;
	ie->rcv_wnd = w.rcv_wnd;
	ie->rcv_wup = w.rcv_wup;
	if (set_tcp(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE) < 0)
		return ckpt_err_errno(e, -errno, "TCP_REPAIR_QUEUE");
	return 0;
}

/* The connection as netlock wants it; IPv4-mapped IPv6 addresses as IPv4. */
static void lock_conn(const InetSkEntry *ie, struct netlock_conn *c)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(c, 0, sizeof(*c));
	c->family = (int)ie->family;
	c->sport = (uint16_t)ie->src_port;
	c->dport = (uint16_t)ie->dst_port;
	if (ie->family == AF_INET6 && !memcmp(ie->src_addr.data, mapped, 12) &&
	    !memcmp(ie->dst_addr.data, mapped, 12)) {
		c->family = AF_INET;
		memcpy(c->src, ie->src_addr.data + 12, 4);
		memcpy(c->dst, ie->dst_addr.data + 12, 4);
		return;
	}
	memcpy(c->src, ie->src_addr.data, ie->src_addr.len);
	memcpy(c->dst, ie->dst_addr.data, ie->dst_addr.len);
}

static bool locked_item(const struct fd_dump_item *it)
{
	const FileEntry *fe = it->fe;

	return fe->type == FILE_TYPE__FILE_INET_SK && fe->inet_sk && inet_is_repaired(fe->inet_sk);
}

static int check_conn(const FileEntry *fe, struct ckpt_error *e)
{
	const InetSkEntry *ie = fe->inet_sk;
	size_t alen = ie->family == AF_INET6 ? 16 : 4;

	if (!ie->has_src_addr || !ie->has_dst_addr || ie->src_addr.len != alen ||
	    ie->dst_addr.len != alen)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): addresses missing", fe->id,
				fe->path);
	return 0;
}

static int tcp_repair_dump_done(const struct fd_dump_view *v, struct ckpt_error *e)
{
	_cleanup_free_ struct netlock_conn *conns = calloc(v->n + 1, sizeof(*conns));
	char table[64], what[PATH_MAX + 160];
	struct timespec ts;
	size_t n = 0;
	int r;

	if (!conns)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; v->tcp_close && i < v->n; i++)
		if (locked_item(&v->items[i]))
			v->items[i].fe->inet_sk->has_closed = v->items[i].fe->inet_sk->closed =
			    true;
	for (size_t i = 0; i < v->n; i++) {
		if (!locked_item(&v->items[i]))
			continue;
		r = check_conn(v->items[i].fe, e);
		if (r < 0)
			return r;
		lock_conn(v->items[i].fe->inet_sk, &conns[n++]);
	}
	if (!n)
		return 0;
	/* one table per dump, named by the tree's root; the time makes it unique */
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(table, sizeof(table), "ckpt_%d_%llx", v->npids ? (int)v->pids[0] : (int)v->self,
		 (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec);
	r = netlock_lock(table, conns, n, e);
	if (r < 0)
		return r;
	/* from here on dump_undo deletes the table (and takes repair mode off) */
	for (size_t i = 0; i < v->n; i++) {
		if (!locked_item(&v->items[i]))
			continue;
		v->items[i].fe->inet_sk->lock_table = strdup(table);
		if (!v->items[i].fe->inet_sk->lock_table)
			return ckpt_err(e, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < v->n; i++) {
		const struct fd_dump_item *it = &v->items[i];
		_cleanup_close_ int fd = -1;

		if (!locked_item(it))
			continue;
		fd = grab_fd(it->pid, it->fd, e);
		if (fd < 0)
			return fd;
		r = ckpt_fault_inject("inet-repair", e);
		if (r >= 0 && set_tcp(fd, TCP_REPAIR, TCP_REPAIR_ON) < 0)
			r = ckpt_err_errno(e, -errno, "TCP_REPAIR (needs CAP_NET_ADMIN)");
		if (r >= 0)
			r = read_repaired(fd, it->fe->inet_sk, e);
		if (r < 0)
			return ckpt_err_wrap(e, "pid %d: fd %d: %s", it->pid, it->fd,
					     inet_entry_describe(it->fe, what, sizeof(what)));
		pr_debug("pid %d fd %d: %s: snd %u rcv %u, %zu bytes in, %zu out (%u unsent)\n",
			 it->pid, it->fd, it->fe->path, it->fe->inet_sk->snd_seq,
			 it->fe->inet_sk->rcv_seq, it->fe->inet_sk->recv_queue.len,
			 it->fe->inet_sk->send_queue.len, it->fe->inet_sk->unsent);
	}
	return 0;
}

static void tcp_repair_dump_undo(const struct fd_dump_view *v)
{
	for (size_t i = 0; i < v->n; i++) {
		const struct fd_dump_item *it = &v->items[i];
		InetSkEntry *ie = it->fe->inet_sk;
		struct ckpt_error tmp = {0};
		_cleanup_close_ int fd = -1;
		int ra;

		if (!locked_item(it) || !ie->lock_table)
			continue;
		/* out of repair mode (a window probe), SO_REUSEADDR as it was */
		fd = grab_fd(it->pid, it->fd, &tmp);
		if (fd >= 0) {
			ra = ie->reuseaddr;
			if (set_tcp(fd, TCP_REPAIR, TCP_REPAIR_OFF) < 0 ||
			    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &ra, sizeof(ra)) < 0)
				pr_debug("pid %d fd %d: leaving repair mode: %m\n", it->pid,
					 it->fd);
		}
		if (netlock_unlock(ie->lock_table, &tmp) < 0)
			pr_debug("%s\n", tmp.msg);
	}
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
	      (ie->type == SOCK_DGRAM && ie->proto == IPPROTO_UDP)))
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
	if (ie->proto == IPPROTO_TCP && ie->state != IST_ESTABLISHED && ie->state != IST_LISTEN &&
	    ie->state != IST_CLOSE)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field inet_sk.state: %u",
				fe->id, fe->path, ie->state);
	if (ie->proto == IPPROTO_UDP && ie->state != IST_ESTABLISHED && ie->state != IST_CLOSE)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field inet_sk.state: %u",
				fe->id, fe->path, ie->state);
	if (inet_is_repaired(ie) &&
	    (!ie->has_dst_addr || !ie->has_src_addr || !ie->has_snd_seq || !ie->has_rcv_seq ||
	     (ie->has_unsent && ie->has_send_queue && ie->unsent > ie->send_queue.len) ||
	     (ie->has_unsent && ie->unsent && !ie->has_send_queue) ||
	     (ie->lock_table && !netlock_name_ok(ie->lock_table))))
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u (%s): field inet_sk: a connection without "
				"its state",
				fe->id, fe->path);
	if (ie->has_backlog && ie->backlog > 1u << 20)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field inet_sk.backlog: %u",
				fe->id, fe->path, ie->backlog);
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

static int inet_new_sock(const InetSkEntry *ie)
{
	return socket((int)ie->family, (int)ie->type | SOCK_CLOEXEC, (int)ie->proto);
}

static int inet_set_int(int fd, int level, int opt, int v)
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

struct isk {
	const FileEntry *fe;
	const InetSkEntry *ie;
	int fd;
};

struct istate {
	struct isk *s;
	size_t n;
};

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
	if (ie->has_sndbuf && ie->proto == IPPROTO_UDP && (int)ie->sndbuf != snd &&
	    inet_set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, (int)ie->sndbuf / 2) < 0)
		return -errno;
	if (ie->has_rcvbuf && ie->proto == IPPROTO_UDP && (int)ie->rcvbuf != rcv &&
	    inet_set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, (int)ie->rcvbuf / 2) < 0)
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
		return ckpt_err_errno(e, -errno, "%s: socket", what);
	if (pre_bind_options(u->fd, ie) < 0)
		return ckpt_err_errno(e, -errno, "%s: options", what);
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

	s = socket((int)ie->family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
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

	if (ie->proto != IPPROTO_UDP || ie->state != IST_ESTABLISHED || !ie->has_dst_addr)
		return 0;
	len = inet_make_sa(ie->family, &ie->dst_addr, ie->dst_port, ie->src_scope, &ss);
	if (connect(u->fd, (struct sockaddr *)&ss, len) < 0)
		return ckpt_err_errno(e, -errno, "%s: connect",
				      inet_entry_describe(u->fe, what, sizeof(what)));
	return 0;
}

/* Write a whole queue of a socket in repair mode (or normally, queue < 0). */
static int write_queue(int fd, int queue, const uint8_t *data, size_t len)
{
	size_t off = 0;

	if (queue >= 0 && inet_set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue) < 0)
		return -errno;
	while (off < len) {
		ssize_t n = send(fd, data + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

static int repair_options(int fd, const InetSkEntry *ie)
{
	struct tcp_repair_opt o[4];
	int n = 0;

	o[n++] = (struct tcp_repair_opt){TCPOPT_MSS, ie->mss};
	if (ie->wscale_ok)
		o[n++] =
		    (struct tcp_repair_opt){TCPOPT_WSCALE, ie->snd_wscale | (ie->rcv_wscale << 16)};
	if (ie->sack_ok)
		o[n++] = (struct tcp_repair_opt){TCPOPT_SACKOK, 0};
	if (ie->tstamp_ok)
		o[n++] = (struct tcp_repair_opt){TCPOPT_TS, 0};
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, o, (socklen_t)(n * sizeof(o[0]))) < 0)
		return -errno;
	return 0;
}

/*
 * A buffer big enough for a queue of len bytes written at once (the kernel
 * doubles what it is given and counts its own overhead), never smaller than
 * the saved size; left alone when the default does.
 */
static int set_queue_buf(int fd, int force, int plain, uint32_t saved, size_t len)
{
	int cur = 0;
	size_t want = len * 2 + (256u << 10);

	if (!len || (inet_sock_int(fd, SOL_SOCKET, plain, &cur) && (size_t)cur >= want))
		return 0;
	if (want < saved)
		want = saved;
	return inet_set_int(fd, SOL_SOCKET, force, (int)(want / 2 + 1));
}

/* An established connection, left in repair mode (tcp_repair_off finishes it). */
static int tcp_make_repaired(struct isk *u, struct ckpt_error *e)
{
	const InetSkEntry *ie = u->ie;
	size_t sent = ie->send_queue.len - ie->unsent;
	struct tcp_repair_window w = {.snd_wl1 = ie->snd_wl1,
				      .snd_wnd = ie->snd_wnd,
				      .max_window = ie->max_window,
				      .rcv_wnd = ie->rcv_wnd,
				      .rcv_wup = ie->rcv_wup};
	char what[PATH_MAX + 160];
	struct sockaddr_storage ss;
	socklen_t len;
	int r;

	inet_entry_describe(u->fe, what, sizeof(what));
	u->fd = inet_new_sock(ie);
	if (u->fd < 0)
		return ckpt_err_errno(e, -errno, "%s: socket", what);
	if (inet_set_int(u->fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON) < 0)
		return ckpt_err_errno(e, -errno, "%s: TCP_REPAIR (needs CAP_NET_ADMIN)", what);
	/* the queues must fit at once: buffers at least as large as they were, and as the data */
	if (set_queue_buf(u->fd, SO_SNDBUFFORCE, SO_SNDBUF, ie->sndbuf, ie->send_queue.len) < 0 ||
	    set_queue_buf(u->fd, SO_RCVBUFFORCE, SO_RCVBUF, ie->rcvbuf, ie->recv_queue.len) < 0)
		return ckpt_err_errno(e, -errno, "%s: buffer sizes for its queues", what);
	if (inet_set_int(u->fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) < 0 ||
	    inet_set_int(u->fd, IPPROTO_TCP, TCP_QUEUE_SEQ,
			 (int)(ie->snd_seq - (uint32_t)ie->send_queue.len)) < 0 ||
	    inet_set_int(u->fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) < 0 ||
	    inet_set_int(u->fd, IPPROTO_TCP, TCP_QUEUE_SEQ,
			 (int)(ie->rcv_seq - (uint32_t)ie->recv_queue.len)) < 0)
		return ckpt_err_errno(e, -errno, "%s: sequence numbers (TCP_QUEUE_SEQ)", what);
	if (ie->family == AF_INET6 && ie->has_v6only &&
	    inet_set_int(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, ie->v6only) < 0)
		return ckpt_err_errno(e, -errno, "%s: IPV6_V6ONLY", what);
	/* in repair mode bind takes the port even from a listener (forced reuse) */
	len = inet_make_sa(ie->family, &ie->src_addr, ie->src_port, ie->src_scope, &ss);
	if (bind(u->fd, (struct sockaddr *)&ss, len) < 0)
		return ckpt_err_errno(e, -errno, "%s: bind", what);
	/* in repair mode connect sends nothing: the socket is established at once */
	len = inet_make_sa(ie->family, &ie->dst_addr, ie->dst_port, ie->src_scope, &ss);
	if (connect(u->fd, (struct sockaddr *)&ss, len) < 0)
		return ckpt_err_errno(e, -errno, "%s: connect in repair mode", what);
	if (repair_options(u->fd, ie) < 0)
		return ckpt_err_errno(e, -errno, "%s: TCP_REPAIR_OPTIONS", what);
	if (ie->has_timestamp &&
	    inet_set_int(u->fd, IPPROTO_TCP, TCP_TIMESTAMP, (int)ie->timestamp) < 0)
		return ckpt_err_errno(e, -errno, "%s: TCP_TIMESTAMP", what);
	r = write_queue(u->fd, TCP_RECV_QUEUE, ie->recv_queue.data, ie->recv_queue.len);
	if (r < 0)
		return ckpt_err_errno(e, r, "%s: its receive queue (%zu bytes)", what,
				      ie->recv_queue.len);
	r = write_queue(u->fd, TCP_SEND_QUEUE, ie->send_queue.data, sent);
	if (r < 0)
		return ckpt_err_errno(e, r, "%s: its send queue (%zu bytes)", what, sent);
	if (ie->has_snd_wl1 && setsockopt(u->fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) < 0)
		return ckpt_err_errno(e, -errno, "%s: TCP_REPAIR_WINDOW", what);
	if (inet_set_int(u->fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE) < 0)
		return ckpt_err_errno(e, -errno, "%s: TCP_REPAIR_QUEUE", what);
	return 0;
}

/*
 * --tcp-close: a connection that was reset. A connection to a temporary
 * listener on loopback whose accepted end is closed with SO_LINGER 0: the
 * reset leaves the socket closed with ECONNRESET pending, as the program
 * would have seen had the peer reset it.
 */
static int tcp_make_reset(struct isk *u, struct ckpt_error *e)
{
	const InetSkEntry *ie = u->ie;
	uint8_t lo4[4] = {127, 0, 0, 1}, lo6[16] = {[15] = 1};
	ProtobufCBinaryData lo = {.data = ie->family == AF_INET6 ? lo6 : lo4,
				  .len = ie->family == AF_INET6 ? 16 : 4};
	_cleanup_close_ int l = socket((int)ie->family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	_cleanup_close_ int a = -1;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	char what[PATH_MAX + 160];
	struct sockaddr_storage ss;
	socklen_t len = inet_make_sa(ie->family, &lo, 0, 0, &ss);

	inet_entry_describe(u->fe, what, sizeof(what));
	if (l < 0 || bind(l, (struct sockaddr *)&ss, len) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&ss, &len) < 0)
		return ckpt_err_errno(e, -errno, "%s: a temporary listener to reset it", what);
	u->fd = inet_new_sock(ie);
	if (u->fd < 0 || connect(u->fd, (struct sockaddr *)&ss, len) < 0)
		return ckpt_err_errno(e, -errno, "%s: connecting to reset it", what);
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (a < 0 || setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		return ckpt_err_errno(e, -errno, "%s: accept", what);
	close(TAKE_FD(a));
	/* loopback: the reset has arrived once the socket is closed */
	for (int tries = 0; tries < 1000; tries++) {
		struct timespec ts = {0, 1000000};
		struct tcp_info ti = {0};
		socklen_t sl = sizeof(ti);

		if (getsockopt(u->fd, IPPROTO_TCP, TCP_INFO, &ti, &sl) == 0 &&
		    ti.tcpi_state == IST_CLOSE)
			return 0;
		nanosleep(&ts, NULL);
	}
	return ckpt_err(e, -ETIMEDOUT, "%s: the reset did not arrive", what);
}

/* Out of repair mode, then what was never sent goes out as ordinary data. */
static int tcp_repair_off(struct isk *u, struct ckpt_error *e)
{
	const InetSkEntry *ie = u->ie;
	size_t sent = ie->send_queue.len - ie->unsent;
	char what[PATH_MAX + 160];
	int r;

	if (inet_set_int(u->fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF) < 0)
		return ckpt_err_errno(e, -errno, "%s: leaving repair mode",
				      inet_entry_describe(u->fe, what, sizeof(what)));
	r = write_queue(u->fd, -1, ie->send_queue.data + sent, ie->unsent);
	if (r < 0)
		return ckpt_err_errno(e, r, "%s: sending the %u bytes it had not sent yet",
				      inet_entry_describe(u->fe, what, sizeof(what)), ie->unsent);
	return 0;
}

/* Every lock table named by the images, deleted once (connections are back). */
static int tcp_unlock_all(struct istate *st, struct ckpt_error *e)
{
	for (size_t i = 0; i < st->n; i++) {
		const char *t = st->s[i].ie->lock_table;
		bool seen = false;
		int r;

		if (!t || !inet_is_repaired(st->s[i].ie))
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = st->s[k].ie->lock_table && !strcmp(st->s[k].ie->lock_table, t);
		if (seen)
			continue;
		r = netlock_unlock(t, e);
		if (r < 0)
			return r;
	}
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
		if (!inet_is_established(st->s[i].ie))
			r = make_plain(&st->s[i], e);
		else if (!inet_is_repaired(st->s[i].ie))
			r = tcp_make_reset(&st->s[i], e);
	for (size_t i = 0; r >= 0 && i < st->n; i++)
		r = fill_dgrams(&st->s[i], e);
	for (size_t i = 0; r >= 0 && i < st->n; i++)
		r = connect_udp(&st->s[i], e);
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
};
