/* SPDX-License-Identifier: MIT */
/*
 * Established TCP connections of the TCP/UDP socket kind (inet.c).
 *
 * Dump, once every fd is dumped (dump_done): every established connection
 * is locked first (lib/netlock.c: an nftables table dropping their packets
 * both ways, so the kernel neither acknowledges data the checkpoint does not
 * hold nor answers the peer with a reset once the tree is killed), then put
 * in repair mode (TCP_REPAIR): sequence numbers, both queues (MSG_PEEK in
 * repair mode), negotiated options, window and timestamp are read. A socket
 * in repair mode sends nothing when it is closed, so killing the tree leaves
 * the peer waiting. A failed dump or --leave-running undoes both (dump_undo)
 * before the tree resumes; then the peer's retransmissions get through.
 *
 * Restore (called by inet.c's build, after the other sockets): each
 * connection in repair mode (sequence numbers, bind, connect without a
 * packet, options, queues, window; a half-closed one's FINs replayed while
 * the lock still holds it: restore_fins), the lock tables deleted, repair mode off
 * (the peer gets a window probe, and the retransmission timer resends what
 * was unacknowledged) and the part of the send queue that was never sent
 * written normally; with --tcp-close a connection comes back reset instead.
 * See docs/fd-kinds.md, "TCP and UDP sockets".
 */
#define LOG_PREFIX "kind inet: "

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "caps.h"
#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "inet_internal.h"
#include "log.h"
#include "netlock.h"

#define TCPOPT_MSS 2
#define TCPOPT_WSCALE 3
#define TCPOPT_SACKOK 4
#define TCPOPT_TS 8

/* ---- dump: established connections ------------------------------------------------ */

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
	/* a receive queue's peek stops at an urgent mark, left in line with SO_OOBINLINE */
	if ((size_t)got != n && queue == TCP_RECV_QUEUE)
		return ckpt_err(
		    e, -EOPNOTSUPP,
		    "it has an urgent mark (MSG_OOB) %zd bytes into its unread data, not "
		    "read past yet (the urgent byte taken or left in line with "
		    "SO_OOBINLINE): TCP repair cannot put the mark back; not supported",
		    got);
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
	/*
	 * A FIN of ours counts one in both lengths (and in snd_seq) while it is
	 * not acknowledged, or not sent; it holds no data (CRIU's soccr does the same).
	 */
	if (inet_state_has(ie, ISTF_OUR_FIN)) {
		outq -= outq > 0;
		if (unsent > 0) {
			unsent--;
			ie->has_fin_unsent = ie->fin_unsent = true;
		}
	}
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

int tcp_repair_dump_done(const struct fd_dump_view *v, struct ckpt_error *e)
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
		fd = fdk_grab_fd(it->pid, it->fd, e);
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

void tcp_repair_dump_undo(const struct fd_dump_view *v)
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
		fd = fdk_grab_fd(it->pid, it->fd, &tmp);
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

/* ---- restore ------------------------------------------------------------------------ */

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

/* ---- restore: half-closed connections ------------------------------------------------ */

/*
 * The mark of the segments the restore injects (SO_MARK on its raw socket);
 * the lock tables let them through (tcp_lock_pass_ours), nothing else.
 */
#define INJECT_MARK 0x636b7074u /* "ckpt" */

static uint16_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/*
 * A segment from the peer to the restored socket (flags: FIN|ACK or ACK) at
 * sequence number seq acknowledging ack, through a raw socket whose packets
 * carry INJECT_MARK. With timestamps negotiated it carries one, or the
 * kernel refuses it (RFC 7323); its value is never stored (restore_fins
 * keeps rcv_wup below seq), so PAWS checks the peer's real ones afterwards.
 */
static int inject(const InetSkEntry *ie, uint8_t flags, uint32_t seq, uint32_t ack,
		  struct ckpt_error *e)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	uint8_t pkt[80] = {0}, pseudo[40] = {0};
	bool v4 = ie->family == AF_INET || (!memcmp(ie->src_addr.data, mapped, 12) &&
					    !memcmp(ie->dst_addr.data, mapped, 12));
	const uint8_t *src = ie->dst_addr.data + (ie->family == AF_INET6 && v4 ? 12 : 0);
	const uint8_t *dst = ie->src_addr.data + (ie->family == AF_INET6 && v4 ? 12 : 0);
	size_t alen = v4 ? 4 : 16, hlen = v4 ? 20 : 40, tlen = ie->tstamp_ok ? 32 : 20;
	uint32_t tsval = htonl(1), tsecr = htonl(ie->timestamp);
	uint32_t nseq = htonl(seq), nack = htonl(ack);
	uint32_t win = ie->snd_wnd >> (ie->wscale_ok ? ie->snd_wscale : 0);
	uint32_t mark = INJECT_MARK;
	uint8_t *t = pkt + hlen;
	_cleanup_close_ int s =
	    socket(v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	struct sockaddr_storage to = {0};
	socklen_t tolen;
	uint16_t c;

	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0)
		return ckpt_err_errno(e, -errno, "a raw socket to give it the peer's segments");
	/* TCP header: ports, seq, ack, header length, flags, window */
	t[0] = (uint8_t)(ie->dst_port >> 8), t[1] = (uint8_t)ie->dst_port;
	t[2] = (uint8_t)(ie->src_port >> 8), t[3] = (uint8_t)ie->src_port;
	memcpy(t + 4, &nseq, 4);
	memcpy(t + 8, &nack, 4);
	t[12] = (uint8_t)(tlen / 4) << 4;
	t[13] = flags;
	win = win > 0xffff ? 0xffff : win;
	t[14] = (uint8_t)(win >> 8), t[15] = (uint8_t)win;
	if (ie->tstamp_ok) {
		t[20] = t[21] = 1; /* NOP NOP TS */
		t[22] = 8, t[23] = 10;
		memcpy(t + 24, &tsval, 4);
		memcpy(t + 28, &tsecr, 4);
	}
	/* checksum over the pseudo header (addresses, protocol, length) and the segment */
	memcpy(pseudo, src, alen);
	memcpy(pseudo + alen, dst, alen);
	pseudo[2 * alen + (v4 ? 1 : 7)] = IPPROTO_TCP;
	pseudo[2 * alen + 3] = (uint8_t)tlen;
	c = (uint16_t)~csum_add(csum_add(0, pseudo, v4 ? 12 : 40), t, tlen);
	t[16] = (uint8_t)(c >> 8), t[17] = (uint8_t)c;
	if (v4) {
		/* the kernel fills in the total length, id and checksum */
		pkt[0] = 0x45, pkt[8] = 64, pkt[9] = IPPROTO_TCP;
		memcpy(pkt + 12, src, 4);
		memcpy(pkt + 16, dst, 4);
		((struct sockaddr_in *)&to)->sin_family = AF_INET;
		memcpy(&((struct sockaddr_in *)&to)->sin_addr, dst, 4);
		tolen = sizeof(struct sockaddr_in);
	} else {
		pkt[0] = 0x60, pkt[5] = (uint8_t)tlen, pkt[6] = IPPROTO_TCP, pkt[7] = 64;
		memcpy(pkt + 8, src, 16);
		memcpy(pkt + 24, dst, 16);
		((struct sockaddr_in6 *)&to)->sin6_family = AF_INET6;
		memcpy(&((struct sockaddr_in6 *)&to)->sin6_addr, dst, 16);
		((struct sockaddr_in6 *)&to)->sin6_scope_id = ie->src_scope;
		tolen = sizeof(struct sockaddr_in6);
	}
	if (sendto(s, pkt, hlen + tlen, 0, (struct sockaddr *)&to, tolen) < 0)
		return ckpt_err_errno(e, -errno, "sending it the peer's segment");
	return 0;
}

/* Loopback delivers at once, but from a softirq: wait for the state the segment makes. */
static int wait_state(int fd, uint32_t want, const char *seg, struct ckpt_error *e)
{
	struct tcp_info ti = {0};

	for (int tries = 0; tries < 1000; tries++) {
		struct timespec ts = {0, 1000000};
		socklen_t sl = sizeof(ti);

		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &sl) == 0 && ti.tcpi_state == want)
			return 0;
		nanosleep(&ts, NULL);
	}
	return ckpt_err(e, -ETIMEDOUT, "the injected %s left it in state %u, not %u", seg,
			ti.tcpi_state, want);
}

/*
 * Our FIN, with shutdown in repair mode: counted as sent (TCP_SEND_QUEUE, no
 * packet) unless it had not been sent; then it stays queued behind the data
 * (the lock drops what the kernel tries to send now).
 */
static int our_fin(int fd, bool sent, struct ckpt_error *e)
{
	if (sent && inet_set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) < 0)
		return ckpt_err_errno(e, -errno, "TCP_REPAIR_QUEUE");
	if (shutdown(fd, SHUT_WR) < 0)
		return ckpt_err_errno(e, -errno, "shutdown (its FIN)");
	if (inet_set_int(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE) < 0)
		return ckpt_err_errno(e, -errno, "TCP_REPAIR_QUEUE");
	return 0;
}

/*
 * A half-closed connection, in repair mode and held by the lock, its queues
 * written (as CRIU's soccr): the data it had not sent yet written normally
 * (repair mode briefly off; the lock keeps it unsent), then the FINs in the
 * order they came: ours with shutdown (our_fin), the peer's as a FIN from
 * the peer (inject): FIN_WAIT1: ours; FIN_WAIT2: ours, and the peer's ACK of
 * it; CLOSE_WAIT: the peer's; LAST_ACK: the peer's, then ours; CLOSING: ours,
 * then the peer's. A receive side the program shut down is shut down again.
 */
static int restore_fins(struct isk *u, struct ckpt_error *e)
{
	const InetSkEntry *ie = u->ie;
	uint32_t our = inet_state_has(ie, ISTF_OUR_FIN), peer = inet_state_has(ie, ISTF_PEER_FIN);
	uint32_t rcv_nxt = ie->rcv_seq - peer, snd_una = ie->snd_seq - our - ie->send_queue.len;
	size_t sent = ie->send_queue.len - ie->unsent;
	bool ours_first =
	    inet_state_has(ie, ISTF(IST_FIN_WAIT1) | ISTF(IST_FIN_WAIT2) | ISTF(IST_CLOSING));
	/* rcv_wup below the injected segments: their timestamp is not kept */
	uint32_t wup = (int32_t)(ie->rcv_wup - (rcv_nxt - 1)) > 0 ? rcv_nxt - 1 : ie->rcv_wup;
	struct tcp_repair_window w = {.snd_wl1 = ie->snd_wl1,
				      .snd_wnd = ie->snd_wnd,
				      .max_window = ie->max_window,
				      .rcv_wnd = ie->rcv_wnd + (ie->rcv_wup - wup),
				      .rcv_wup = wup};
	int r;

	if (our && ie->unsent) {
		if (inet_set_int(u->fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF) < 0)
			return ckpt_err_errno(e, -errno, "leaving repair mode");
		r = write_queue(u->fd, -1, ie->send_queue.data + sent, ie->unsent);
		if (r < 0)
			return ckpt_err_errno(e, r, "writing the %u bytes it had not sent yet",
					      ie->unsent);
		if (inet_set_int(u->fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON) < 0)
			return ckpt_err_errno(e, -errno, "TCP_REPAIR");
	}
	if (setsockopt(u->fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) < 0)
		return ckpt_err_errno(e, -errno, "TCP_REPAIR_WINDOW");
	if (ours_first) {
		r = our_fin(u->fd, !(ie->has_fin_unsent && ie->fin_unsent), e);
		if (r < 0)
			return r;
	}
	if (peer) {
		r = inject(ie, 0x11 /* FIN|ACK */, rcv_nxt, snd_una, e);
		if (r >= 0)
			r = wait_state(u->fd, ours_first ? IST_CLOSING : IST_CLOSE_WAIT, "FIN", e);
		if (r < 0)
			return r;
	}
	if (ie->state == IST_LAST_ACK) {
		r = our_fin(u->fd, !(ie->has_fin_unsent && ie->fin_unsent), e);
		if (r < 0)
			return r;
	}
	if (ie->state == IST_FIN_WAIT2) {
		r = inject(ie, 0x10 /* ACK */, rcv_nxt, ie->snd_seq, e);
		if (r >= 0)
			r = wait_state(u->fd, IST_FIN_WAIT2, "ACK of its FIN", e);
		if (r < 0)
			return r;
	}
	if ((ie->shutdown & 1) && !peer && shutdown(u->fd, SHUT_RD) < 0)
		return ckpt_err_errno(e, -errno, "shutdown (receive side)");
	return 0;
}

/* An established connection, left in repair mode (tcp_repair_off finishes it). */
int tcp_make_repaired(struct isk *u, struct ckpt_error *e)
{
	const InetSkEntry *ie = u->ie;
	size_t sent = ie->send_queue.len - ie->unsent;
	/* the FINs come later (restore_fins): sequence numbers without them */
	uint32_t our_fin = inet_state_has(ie, ISTF_OUR_FIN),
		 peer_fin = inet_state_has(ie, ISTF_PEER_FIN);
	struct tcp_repair_window w = {.snd_wl1 = ie->snd_wl1,
				      .snd_wnd = ie->snd_wnd,
				      .max_window = ie->max_window,
				      .rcv_wnd = ie->rcv_wnd,
				      .rcv_wup = ie->rcv_wup};
	char what[PATH_MAX + 160];
	struct sockaddr_storage ss;
	socklen_t len;
	uint64_t saved;
	int r;

	inet_entry_describe(u->fe, what, sizeof(what));
	u->fd = inet_new_sock(ie);
	if (u->fd < 0)
		return ckpt_err_errno(e, -errno, "%s: socket", what);
	/* NET_ADMIN raised for these calls only (caps.h) */
	saved = caps_raise(CAPS_BIT(CAP_NET_ADMIN));
	r = inet_set_int(u->fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON);
	caps_restore(saved);
	if (r < 0)
		return ckpt_err_errno(e, -errno, "%s: TCP_REPAIR (needs CAP_NET_ADMIN)", what);
	/* the queues must fit at once: buffers at least as large as they were, and as the data */
	saved = caps_raise(CAPS_BIT(CAP_NET_ADMIN));
	r = set_queue_buf(u->fd, SO_SNDBUFFORCE, SO_SNDBUF, ie->sndbuf, ie->send_queue.len) < 0 ||
		    set_queue_buf(u->fd, SO_RCVBUFFORCE, SO_RCVBUF, ie->rcvbuf,
				  ie->recv_queue.len) < 0
		? -1
		: 0;
	caps_restore(saved);
	if (r < 0)
		return ckpt_err_errno(e, -errno, "%s: buffer sizes for its queues", what);
	if (inet_set_int(u->fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE) < 0 ||
	    inet_set_int(u->fd, IPPROTO_TCP, TCP_QUEUE_SEQ,
			 (int)(ie->snd_seq - our_fin - (uint32_t)ie->send_queue.len)) < 0 ||
	    inet_set_int(u->fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE) < 0 ||
	    inet_set_int(u->fd, IPPROTO_TCP, TCP_QUEUE_SEQ,
			 (int)(ie->rcv_seq - peer_fin - (uint32_t)ie->recv_queue.len)) < 0)
		return ckpt_err_errno(e, -errno, "%s: sequence numbers (TCP_QUEUE_SEQ)", what);
	if (ie->family == AF_INET6 && ie->has_v6only &&
	    inet_set_int(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, ie->v6only) < 0)
		return ckpt_err_errno(e, -errno, "%s: IPV6_V6ONLY", what);
	r = inet_opts_set(u->fd, ie, OPT_BEFORE_BIND, e);
	if (r < 0)
		return ckpt_err_wrap(e, "%s", what);
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
	if (ie->state != IST_ESTABLISHED) {
		r = restore_fins(u, e);
		if (r < 0)
			return ckpt_err_wrap(e, "%s", what);
	}
	/* last: the FINs' segments moved it, and the dumped values now fit rcv_nxt */
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
int tcp_make_reset(struct isk *u, struct ckpt_error *e)
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

/*
 * A half-closed connection's unsent data and FIN, queued in repair mode
 * (restore_fins): out now, as the kernel would send them had the program
 * just written them (TCP_CORK off pushes the queue); not while the program
 * corked it (its TCP_CORK comes back with the other options).
 */
static int push_unsent(struct isk *u, struct ckpt_error *e)
{
	const InetSkEntry *ie = u->ie;
	char what[PATH_MAX + 160];

	for (size_t i = 0; i < ie->n_opts; i++)
		if (ie->opts[i]->level == IPPROTO_TCP && ie->opts[i]->name == TCP_CORK &&
		    ie->opts[i]->has_value && ie->opts[i]->value)
			return 0;
	if (inet_set_int(u->fd, IPPROTO_TCP, TCP_CORK, 0) < 0)
		return ckpt_err_errno(e, -errno, "%s: sending what it had queued (TCP_CORK)",
				      inet_entry_describe(u->fe, what, sizeof(what)));
	return 0;
}

/* Out of repair mode, then what was never sent goes out as ordinary data. */
int tcp_repair_off(struct isk *u, struct ckpt_error *e)
{
	const InetSkEntry *ie = u->ie;
	size_t sent = ie->send_queue.len - ie->unsent;
	char what[PATH_MAX + 160];
	uint64_t saved;
	int r;

	saved = caps_raise(CAPS_BIT(CAP_NET_ADMIN));
	r = inet_set_int(u->fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF);
	caps_restore(saved);
	if (r < 0)
		return ckpt_err_errno(e, -errno, "%s: leaving repair mode",
				      inet_entry_describe(u->fe, what, sizeof(what)));
	if (inet_state_has(ie, ISTF_OUR_FIN))
		return push_unsent(u, e);
	r = write_queue(u->fd, -1, ie->send_queue.data + sent, ie->unsent);
	if (r < 0)
		return ckpt_err_errno(e, r, "%s: sending the %u bytes it had not sent yet",
				      inet_entry_describe(u->fe, what, sizeof(what)), ie->unsent);
	return 0;
}

/* The names of the lock tables of the half-closed connections, once each. */
int tcp_lock_pass_ours(struct istate *st, struct ckpt_error *e)
{
	for (size_t i = 0; i < st->n; i++) {
		const InetSkEntry *ie = st->s[i].ie;
		bool seen = false;
		int r;

		if (!ie->lock_table || !inet_is_repaired(ie) || ie->state == IST_ESTABLISHED)
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = st->s[k].ie->lock_table && inet_is_repaired(st->s[k].ie) &&
			       st->s[k].ie->state != IST_ESTABLISHED &&
			       !strcmp(st->s[k].ie->lock_table, ie->lock_table);
		if (seen)
			continue;
		r = netlock_pass_mark(ie->lock_table, INJECT_MARK, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Every lock table named by the images, deleted once (connections are back). */
int tcp_unlock_all(struct istate *st, struct ckpt_error *e)
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
