/* SPDX-License-Identifier: MIT */
/*
 * Unix sockets: stream, datagram and seqpacket. One FileEntry per socket
 * (a socket has one open file description; fds sharing it share the entry).
 *
 * Dump. The kernel's view of the socket comes from sock_diag (UNIX_DIAG,
 * lib/sockdiag.c): type, state, peer inode, bound name, pending
 * connections, shutdown, backlog; the options from getsockopt on our
 * pidfd_getfd copy; the receive queue is read with MSG_PEEK stepping
 * SO_PEEK_OFF from 0 (the socket's own peek offset is put back), so the
 * running program loses nothing whether the dump succeeds, fails or leaves
 * it running. Once every fd is dumped (dump_done) every peer must be in the
 * tree: a socket connected to a process outside it is refused naming both
 * ends; a connected socket whose peer was closed (the JVM's preclose
 * socketpair end) is marked peer_closed; a client whose connection is not
 * yet accepted is tied to its listener (pending_on).
 *
 * Restore. Everything is made by the restorer process on the first
 * open_shared call, with every entry at hand (fd_open_ctx.all), in an order
 * that lets names be reused: stale socket files unlinked; connected pairs
 * (socketpair() for unnamed ends; for named ones a temporary listener bound
 * to the acceptor's name, connect, accept, so that getsockname/getpeername
 * answer as before); lone, bound and listening sockets; clients of pending
 * connections connected to their listener in accept order; datagram
 * sockets connected to named peers; options; the saved queues sent from
 * the peer (or a temporary end); shutdown; temporary ends closed.
 * See docs/fd-kinds.md, "Unix sockets".
 */
#define LOG_PREFIX "kind unix: "

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "kread.h"
#include "log.h"
#include "proc.h"
#include "sockdiag.h"
#include "sockopt.h"

/* kernel socket states (include/net/tcp_states.h) */
#define UST_ESTABLISHED 1
#define UST_CLOSE 7
#define UST_LISTEN 10
/* SO_PASSPIDFD (Linux 6.5), newer than these headers */
#define UNIX_SO_PASSPIDFD 76
/* sk_shutdown bits */
#define USK_RCV_SHUTDOWN 1
#define USK_SEND_SHUTDOWN 2

/* what one checkpoint saves of one socket's receive queue */
#define QUEUE_MAX (16u << 20)
/* SCM_MAX_FD: the most fds one message carries */
#define UNIX_MSG_MAX_FDS 253
/* PID_MAX_LIMIT */
#define UNIX_PID_MAX (4 * 1024 * 1024)
/* a datagram is at most about the sender's buffer (wmem_max, SO_SNDBUFFORCE) */
#define PEEK_BUF (8u << 20)
#define NAME_MAX_LEN sizeof(((struct sockaddr_un *)0)->sun_path)
/* room for a directory and a name (bind_dir + a relative name) */
#define LOCATION_MAX (PATH_MAX + NAME_MAX_LEN + 2)

static const char *type_name(uint32_t type)
{
	switch (type) {
	case SOCK_STREAM:
		return "stream";
	case SOCK_DGRAM:
		return "datagram";
	case SOCK_SEQPACKET:
		return "seqpacket";
	default:
		return "unknown-type";
	}
}

/* "/run/x.sock", "@abstract" (NULs shown as @), or "unnamed" */
static const char *name_str(const uint8_t *name, size_t len, char *buf, size_t blen)
{
	size_t o = 0;

	if (!len) {
		snprintf(buf, blen, "unnamed");
		return buf;
	}
	/* a path as the kernel reports it may end with its NUL */
	if (name[0])
		len = strnlen((const char *)name, len);
	for (size_t i = 0; i < len && o + 1 < blen; i++)
		buf[o++] = name[i] ? (char)name[i] : '@';
	buf[o] = '\0';
	return buf;
}

static const char *entry_name(const UnixSkEntry *ue, char *buf, size_t blen)
{
	return name_str(ue->has_name ? ue->name.data : NULL, ue->has_name ? ue->name.len : 0, buf,
			blen);
}

/* "unix stream socket socket:[123] (/run/x.sock)" */
static const char *describe(const FileEntry *fe, char *buf, size_t blen)
{
	char n[NAME_MAX_LEN + 1];

	snprintf(buf, blen, "unix %s socket %s (%s)", type_name(fe->unix_sk->type), fe->path,
		 entry_name(fe->unix_sk, n, sizeof(n)));
	return buf;
}

static bool is_path_name(const UnixSkEntry *ue)
{
	return ue->has_name && ue->name.len && ue->name.data[0];
}

/* Is name (a path without its NUL, or an abstract name) the name of ue? */
static bool has_this_name(const UnixSkEntry *ue, const ProtobufCBinaryData *name)
{
	return ue->has_name && ue->name.len == name->len &&
	       !memcmp(ue->name.data, name->data, name->len);
}

/* ---- dump --------------------------------------------------------------------- */

static bool unix_matches(const struct fd_probe *p)
{
	int domain = -1;
	socklen_t sl = sizeof(domain);

	return S_ISSOCK(p->st.st_mode) && p->local_fd >= 0 &&
	       getsockopt(p->local_fd, SOL_SOCKET, SO_DOMAIN, &domain, &sl) == 0 &&
	       domain == AF_UNIX;
}

static bool unix_describe(const struct fd_probe *p, char *buf, size_t len)
{
	return fdk_describe_as(fdk_probe_sock_domain(p) == AF_UNIX, "unix socket", buf, len);
}

static int get_int(int fd, int opt, int *ret)
{
	socklen_t sl = sizeof(*ret);

	return getsockopt(fd, SOL_SOCKET, opt, ret, &sl);
}

static int dump_options(int fd, UnixSkEntry *ue, struct ckpt_error *e)
{
	int snd = 0, rcv = 0, cred = 0, sec = 0, peek = -1, inl = 0, pidfd = 0;

	if (get_int(fd, SO_SNDBUF, &snd) < 0 || get_int(fd, SO_RCVBUF, &rcv) < 0 ||
	    get_int(fd, SO_PASSCRED, &cred) < 0 || get_int(fd, SO_PEEK_OFF, &peek) < 0 ||
	    get_int(fd, SO_OOBINLINE, &inl) < 0 ||
	    sockopt_get_timeo(fd, SO_RCVTIMEO, &ue->rcvtimeo_us) < 0 ||
	    sockopt_get_timeo(fd, SO_SNDTIMEO, &ue->sndtimeo_us) < 0)
		return ckpt_err_errno(e, -errno, "reading its options (getsockopt)");
	/* SO_PASSSEC exists only with an LSM that labels sockets; SO_PASSPIDFD since 6.5 */
	if (get_int(fd, SO_PASSSEC, &sec) < 0)
		sec = 0;
	if (get_int(fd, UNIX_SO_PASSPIDFD, &pidfd) < 0)
		pidfd = 0;
	if (pidfd)
		ue->has_passpidfd = ue->passpidfd = true;
	ue->has_sndbuf = ue->has_rcvbuf = ue->has_passcred = ue->has_passsec = true;
	ue->has_rcvtimeo_us = ue->has_sndtimeo_us = ue->has_peek_off = true;
	ue->sndbuf = (uint32_t)snd;
	ue->rcvbuf = (uint32_t)rcv;
	ue->passcred = cred != 0;
	ue->passsec = sec != 0;
	ue->peek_off = peek;
	if (inl)
		ue->has_oobinline = ue->oobinline = true;
	return 0;
}

/* What came with one peeked message or run of bytes. */
struct peeked {
	int *fds; /* copies MSG_PEEK installed in the dump: closed or handed over */
	size_t nfds;
	bool cred;
	struct ucred uc;
	struct sockaddr_un from; /* the sender's name, as recvfrom gives it */
	socklen_t fromlen;
};

static void peeked_close(struct peeked *pk)
{
	for (size_t i = 0; i < pk->nfds; i++)
		if (pk->fds[i] >= 0)
			close(pk->fds[i]);
	free(pk->fds);
	*pk = (struct peeked){0};
}

/*
 * The control messages of a peeked message: the fds in flight (copies the
 * peek installed in our process) and the credentials. Every fd copy ends
 * in pk (closed by peeked_close), even on error.
 */
static int take_cmsgs(struct msghdr *mh, struct peeked *pk, struct ckpt_error *e)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_RIGHTS) {
			size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int *v = realloc(pk->fds, (pk->nfds + n + 1) * sizeof(int));

			if (!v) {
				for (size_t i = 0; i < n; i++)
					close(((int *)CMSG_DATA(c))[i]);
				return ckpt_err(e, -ENOMEM, "out of memory");
			}
			pk->fds = v;
			memcpy(pk->fds + pk->nfds, CMSG_DATA(c), n * sizeof(int));
			pk->nfds += n;
		} else if (c->cmsg_type == SCM_CREDENTIALS &&
			   c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
			memcpy(&pk->uc, CMSG_DATA(c), sizeof(pk->uc));
			pk->cred = true;
		}
#ifdef SCM_PIDFD
		else if (c->cmsg_type == SCM_PIDFD)
			close(*(int *)CMSG_DATA(c));
#endif
	}
	if (mh->msg_flags & MSG_CTRUNC)
		return ckpt_err(e, -EOPNOTSUPP,
				"a queued message carries more control data (file descriptors "
				"in flight) than can be read");
	return 0;
}

/* The overflow uid/gid: what a message without credentials shows for them. */
static uint32_t overflow_id(const char *file)
{
	_cleanup_free_ char *text = NULL;
	struct ckpt_error tmp = {0};

	if (proc_read_file(file, &text, NULL, &tmp) < 0)
		return 65534;
	return (uint32_t)strtoul(text, NULL, 10);
}

/*
 * One message (or stream run) saved with what came with it: its fds handed
 * to the dump engine (files of the tree, their ids written later), its
 * credentials (pid 0: none attached, which the kernel shows as the overflow
 * ids).
 */
static int add_msg(const struct fd_probe *p, UnixSkEntry *ue, const uint8_t *data, size_t len,
		   struct peeked *pk, const uint32_t overflow[2], struct ckpt_error *e)
{
	UnixSkMsg **v, *m;

	if (ue->n_msgs >= (1u << 20))
		return ckpt_err(e, -EFBIG, "its queue holds more than %u messages", 1u << 20);
	v = realloc(ue->msgs, (ue->n_msgs + 1) * sizeof(*v));
	if (!v)
		return ckpt_err(e, -ENOMEM, "out of memory for its queue");
	ue->msgs = v;
	m = malloc(sizeof(*m));
	if (!m)
		return ckpt_err(e, -ENOMEM, "out of memory for its queue");
	unix_sk_msg__init(m);
	ue->msgs[ue->n_msgs++] = m; /* freed with the entry from now on */
	m->data.data = malloc(len ? len : 1);
	if (!m->data.data)
		return ckpt_err(e, -ENOMEM, "out of memory for its queue");
	memcpy(m->data.data, data, len);
	m->data.len = len;
	m->has_data = true;
	/* a datagram's sender, when it had a name (checked in unix_dump_done) */
	if (ue->type == SOCK_DGRAM && pk->fromlen > offsetof(struct sockaddr_un, sun_path) &&
	    pk->fromlen <= sizeof(pk->from)) {
		size_t nl = pk->fromlen - offsetof(struct sockaddr_un, sun_path);

		if (pk->from.sun_path[0])
			nl = strnlen(pk->from.sun_path, nl);
		m->sender.data = malloc(nl ? nl : 1);
		if (!m->sender.data)
			return ckpt_err(e, -ENOMEM, "out of memory for its queue");
		memcpy(m->sender.data, pk->from.sun_path, nl);
		m->sender.len = nl;
		m->has_sender = nl > 0;
	}
	if (pk->cred && pk->uc.pid) {
		m->has_cred_pid = m->has_cred_uid = m->has_cred_gid = true;
		m->cred_pid = pk->uc.pid;
		m->cred_uid = pk->uc.uid;
		m->cred_gid = pk->uc.gid;
	} else if (pk->cred && (pk->uc.uid != overflow[0] || pk->uc.gid != overflow[1])) {
		return ckpt_err(e, -EOPNOTSUPP,
				"a queued message carries the credentials of uid %u gid %u from a "
				"process of another pid namespace (pid 0): they cannot be given "
				"back; not supported",
				pk->uc.uid, pk->uc.gid);
	}
	if (!pk->nfds)
		return 0;
	if (!p->inflight)
		return ckpt_err(e, -EOPNOTSUPP,
				"its receive queue holds file descriptors in flight (SCM_RIGHTS); "
				"not supported here");
	m->fds = calloc(pk->nfds, sizeof(*m->fds));
	if (!m->fds)
		return ckpt_err(e, -ENOMEM, "out of memory for its queue");
	m->n_fds = pk->nfds;
	for (size_t i = 0; i < pk->nfds; i++) {
		int fd = pk->fds[i], r;

		pk->fds[i] = -1; /* the engine's now */
		r = p->inflight->add(p->inflight, fd, &m->fds[i], e);
		if (r < 0)
			return ckpt_err_wrap(e, "queued message %zu", ue->n_msgs);
	}
	return 0;
}

/* Peek len bytes (at most) at the socket's peek offset; fds and credentials into pk. */
static ssize_t peek_one(int fd, uint8_t *buf, size_t len, struct msghdr *mh, struct peeked *pk,
			struct ckpt_error *e)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(256)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	ssize_t n;
	int r;

	*mh = (struct msghdr){.msg_name = &pk->from,
			      .msg_namelen = sizeof(pk->from),
			      .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf)};
	n = recvmsg(fd, mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	pk->fromlen = mh->msg_namelen;
	r = take_cmsgs(mh, pk, e);
	mh->msg_control = NULL; /* ctl is gone once we return */
	mh->msg_iov = NULL;
	return r < 0 ? r : n;
}

/*
 * Every queued message, peeked from offset 0 on, SO_PEEK_OFF advancing,
 * with SO_PASSCRED set (the caller puts it back) so that credentials come
 * with each: a stream peek then also stops where the sender changes. A
 * stream peek stops after the first skb carrying fds: each run saved is
 * what a reader with a large buffer gets in one read (bytes of earlier
 * sends without fds, then the send with the fds), restored as one send.
 * Where that run began as several sends, a read ending exactly before the
 * fds' send gets the fds too after restore: a MSG_PEEK walks on to the next
 * skb with fds whatever its size, so where that send began cannot be seen
 * without consuming the queue (docs/fd-kinds.md).
 */
static int peek_all(const struct fd_probe *p, int fd, UnixSkEntry *ue, uint8_t *buf,
		    struct ckpt_error *e)
{
	bool stream = ue->type == SOCK_STREAM;
	const uint32_t overflow[2] = {overflow_id("/proc/sys/kernel/overflowuid"),
				      overflow_id("/proc/sys/kernel/overflowgid")};
	size_t total = 0;
	int r = 0;

	for (;;) {
		struct peeked pk = {0};
		struct msghdr mh;
		ssize_t n = peek_one(fd, buf, PEEK_BUF, &mh, &pk, e);

		if (n == -EAGAIN || n == -ENOTCONN) {
			peeked_close(&pk);
			break;
		}
		if (n < 0) {
			peeked_close(&pk);
			if (n == -EOPNOTSUPP || n == -ENOMEM)
				return (int)n;
			return ckpt_err_errno(e, (int)n, "peeking at its queue (%zu bytes read)",
					      total);
		}
		if (mh.msg_flags & MSG_TRUNC)
			r = ckpt_err(e, -EMSGSIZE, "a queued message is larger than %u bytes",
				     PEEK_BUF);
		/* end of stream; or a shut down socket that answers 0 when empty */
		else if (n == 0 && (stream || (ue->shutdown & USK_RCV_SHUTDOWN))) {
			peeked_close(&pk);
			break;
		} else if (total + (size_t)n > QUEUE_MAX)
			r = ckpt_err(e, -EFBIG,
				     "its queue holds more than the %u bytes a checkpoint saves",
				     QUEUE_MAX);
		if (r >= 0)
			r = add_msg(p, ue, buf, (size_t)n, &pk, overflow, e);
		peeked_close(&pk);
		if (r < 0)
			return r;
		total += (size_t)n;
	}
	return 0;
}

/* add_msg's overflow ids for a message made up here (its credentials, if any, have a pid) */
static const uint32_t no_overflow[2] = {0, 0};

/*
 * A stream run ending with a send that carried fds: where did that send
 * begin? Runs are what peek_all saw; q, the skbs of the queue, comes from
 * the kernel reader (lib/kread.c). A run whose fds' skb starts after the
 * run's first byte is cut in two there: the bytes before it (earlier sends,
 * no fds) and the send with the fds, each restored as its own send, so a
 * read ending before the fds' send still gets no fds.
 */
static int split_fd_runs(UnixSkEntry *ue, const struct kread_queue *q, struct ckpt_error *e)
{
	size_t pos = 0, skb = 0, skb_end = 0;

	for (size_t i = 0; i < ue->n_msgs; pos += ue->msgs[i++]->data.len) {
		UnixSkMsg *m = ue->msgs[i], *plain;
		size_t end = pos + m->data.len, cut;
		struct peeked pk;
		int r;

		/* the skbs up to the one this run ends with */
		while (skb < q->n && skb_end + q->skbs[skb].len < end)
			skb_end += q->skbs[skb++].len;
		if (!m->n_fds)
			continue;
		if (skb == q->n || skb_end + q->skbs[skb].len != end || !q->skbs[skb].fds ||
		    skb_end < pos)
			return ckpt_err(e, -EIO,
					"the files in flight at bytes %zu-%zu of its queue are not "
					"where the kernel reader finds their send",
					pos, end);
		if (skb_end == pos)
			continue;
		/* bytes [pos, skb_end) came before the send with the fds: a message of their own */
		cut = skb_end - pos;
		pk = (struct peeked){
		    .cred = m->has_cred_pid,
		    .uc = {.pid = m->cred_pid, .uid = m->cred_uid, .gid = m->cred_gid}};
		r = add_msg(NULL, ue, m->data.data, cut, &pk, no_overflow, e);
		if (r < 0)
			return r;
		plain = ue->msgs[--ue->n_msgs];
		memmove(m->data.data, m->data.data + cut, m->data.len - cut);
		m->data.len -= cut;
		memmove(&ue->msgs[i + 1], &ue->msgs[i], (ue->n_msgs - i) * sizeof(*ue->msgs));
		ue->msgs[i] = plain;
		ue->n_msgs++;
		pos += cut;
		i++; /* m, now at i: its bytes start at pos */
	}
	return 0;
}

/* The byte at offset at of the saved stream put in (peek_all skipped it). */
static int insert_byte(UnixSkEntry *ue, size_t at, uint8_t byte, struct ckpt_error *e)
{
	size_t pos = 0;

	for (size_t i = 0; i < ue->n_msgs; pos += ue->msgs[i++]->data.len) {
		UnixSkMsg *m = ue->msgs[i];
		uint8_t *d;

		if (at > pos + m->data.len || (at == pos + m->data.len && i + 1 < ue->n_msgs))
			continue;
		d = realloc(m->data.data, m->data.len + 1);
		if (!d)
			return ckpt_err(e, -ENOMEM, "out of memory for its queue");
		memmove(d + (at - pos) + 1, d + (at - pos), m->data.len - (at - pos));
		d[at - pos] = byte;
		m->data.data = d;
		m->data.len++;
		return 0;
	}
	if (at != pos)
		return ckpt_err(e, -EIO, "its out-of-band byte lies beyond its queue");
	/* the queue holds nothing else */
	return add_msg(NULL, ue, &byte, 1, &(struct peeked){0}, no_overflow, e);
}

/*
 * What a stream peek does not show, from the kernel reader: where a send
 * with fds began (split_fd_runs); the pending out-of-band byte, which a
 * read stops before and only recv(MSG_OOB) takes (a peek shows it in line,
 * or not at all when it is the first byte); and the marks of out-of-band
 * bytes already taken (empty skbs a read stops at). Asked whenever the
 * queue holds anything, or SIOCATMARK says a mark is at its head. Without
 * a kernel reader (no BTF, no CAP_BPF) a queue with fds or an out-of-band
 * byte is refused, and a taken mark goes unseen (docs/fidelity.md).
 */
static int dump_stream_marks(const struct fd_probe *p, UnixSkEntry *ue, struct ckpt_error *e)
{
	_cleanup_(kread_queue_release) struct kread_queue q = {0};
	size_t total = 0, skb_total = 0, oob_at = 0, ntaken = 0;
	bool fds = false, oob = false, mark = false;
	uint8_t oob_byte = 0;
	int atmark = 0, r;

	for (size_t i = 0; i < ue->n_msgs; i++) {
		fds = fds || ue->msgs[i]->n_fds;
		total += ue->msgs[i]->data.len;
	}
	/* MSG_OOB | MSG_PEEK: the pending byte, left pending (EINVAL: none, or in line) */
	if (recv(p->local_fd, &oob_byte, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) == 1)
		oob = true;
	if (ioctl(p->local_fd, SIOCATMARK, &atmark) < 0)
		return ckpt_err_errno(e, -errno, "SIOCATMARK");
	if (!total && !atmark && !oob)
		return 0;
	r = kread_unix_queue(p->kread, p->local_fd, (uint64_t)p->st.st_ino, &q, e);
	if (r < 0 && !fds && !oob && !ue->oobinline && !atmark) {
		pr_debug("pid %d fd %d: no kernel reader (%s): taken out-of-band marks unseen\n",
			 p->pid, p->fd, e->msg);
		ckpt_err_clear(e);
		return 0;
	}
	if (r < 0)
		return ckpt_err_wrap(e, "its queue holds %s, and where %s cannot be seen",
				     fds ? "files in flight (SCM_RIGHTS)" : "an out-of-band mark",
				     fds ? "the send carrying them began" : "it lies");
	for (size_t i = 0; i < q.n; i++) {
		if (q.skbs[i].oob && q.skbs[i].len) {
			if (q.skbs[i].fds || q.skbs[i].len != 1)
				return ckpt_err(
				    e, -EOPNOTSUPP, "%s",
				    "its out-of-band byte came with fds; not supported");
			oob_at = skb_total;
			mark = true;
		} else if (!q.skbs[i].len) {
			ntaken++;
		}
		skb_total += q.skbs[i].len;
	}
	if (mark && oob && total + 1 == skb_total) {
		r = insert_byte(ue, oob_at, oob_byte, e);
		if (r < 0)
			return r;
		total++;
	}
	if (skb_total != total)
		return ckpt_err(e, -EIO, "its queue holds %zu bytes, %zu were read", skb_total,
				total);
	if (mark) {
		const char *why = "its out-of-band byte is not where the kernel reader finds it";
		size_t pos = 0;

		for (size_t i = 0; i < ue->n_msgs; pos += ue->msgs[i++]->data.len)
			if (oob && oob_at >= pos && oob_at < pos + ue->msgs[i]->data.len &&
			    ue->msgs[i]->data.data[oob_at - pos] != oob_byte)
				return ckpt_err(e, -EIO, "%s", why);
		ue->has_oob_at = true;
		ue->oob_at = (uint32_t)oob_at;
	}
	if (ntaken) {
		ue->oob_taken = calloc(ntaken, sizeof(*ue->oob_taken));
		if (!ue->oob_taken)
			return ckpt_err(e, -ENOMEM, "out of memory");
		skb_total = 0;
		for (size_t i = 0; i < q.n; i++) {
			if (!q.skbs[i].len)
				ue->oob_taken[ue->n_oob_taken++] = (uint32_t)skb_total;
			skb_total += q.skbs[i].len;
		}
	}
	return split_fd_runs(ue, &q, e);
}

/*
 * The receive queue without consuming it. The tree is frozen: nobody else
 * reads meanwhile. The socket's own SO_PEEK_OFF and SO_PASSCRED are put back
 * whatever happens.
 */
static int dump_queue(const struct fd_probe *p, UnixSkEntry *ue, uint32_t inq,
		      struct ckpt_error *e)
{
	_cleanup_free_ uint8_t *buf = NULL;
	int fd = p->local_fd, zero = 0, one = 1, old = ue->peek_off, cred = ue->passcred, r;
	size_t total = 0;

	/* an unconnected stream or seqpacket socket has no queue to read */
	if (ue->type != SOCK_DGRAM && ue->state != UST_ESTABLISHED)
		return 0;
	buf = malloc(PEEK_BUF);
	if (!buf)
		return ckpt_err(e, -ENOMEM, "out of memory");
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return ckpt_err_errno(e, -errno, "SO_PEEK_OFF to read its queue");
	r = setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0
		? ckpt_err_errno(e, -errno, "SO_PASSCRED to read its queue's credentials")
		: peek_all(p, fd, ue, buf, e);
	/* a failure here, with the queue read: the peek offset must still come back */
	if (r >= 0)
		r = ckpt_fault_inject("unix-queue", e);
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &cred, sizeof(cred)) < 0 && r >= 0)
		r = ckpt_err_errno(e, -errno, "putting its SO_PASSCRED %d back", cred);
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &old, sizeof(old)) < 0 && r >= 0)
		r = ckpt_err_errno(e, -errno, "putting its SO_PEEK_OFF %d back", old);
	if (r < 0)
		return r;
	if (ue->type == SOCK_STREAM) {
		r = dump_stream_marks(p, ue, e);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < ue->n_msgs; i++)
		total += ue->msgs[i]->data.len;
	/* stream and seqpacket: sock_diag counts the bytes queued; both must agree */
	if (ue->type != SOCK_DGRAM && total != inq)
		return ckpt_err(e, -EIO, "read %zu bytes of its queue, the kernel counts %u", total,
				inq);
	return 0;
}

/* Is st the socket file of u (UNIX_DIAG_VFS: its inode and the kernel's dev_t)? */
static bool is_sock_file(const struct unix_diag_info *u, const struct stat *st)
{
	return S_ISSOCK(st->st_mode) && u->has_vfs && st->st_ino == u->vfs_ino &&
	       major(st->st_dev) == (u->vfs_dev >> 20) &&
	       minor(st->st_dev) == (u->vfs_dev & 0xfffff);
}

/* dir + "/" + name into buf; false if it does not fit. */
static bool join_path(char *buf, size_t len, const char *dir, const char *name)
{
	size_t dl = strlen(dir);

	return (size_t)snprintf(buf, len, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/",
				name) < len;
}

/* u's socket file among the entries of directory dir: its path into ret. */
static bool find_in_dir(const struct unix_diag_info *u, const char *dir, char *ret, size_t len,
			struct stat *ret_st)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		struct stat st;

		if (de->d_type != DT_SOCK && de->d_type != DT_UNKNOWN)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !is_sock_file(u, &st) || !join_path(ret, len, dir, de->d_name))
			continue;
		*ret_st = st;
		return true;
	}
	return false;
}

/*
 * The socket file of a path name, wherever it is now: where bind made it
 * (the name, or the task's working directory + a relative name), else,
 * renamed, in the directory of the name, the task's working directory or /
 * (UNIX_DIAG_VFS gives its inode and device). Its path into ret_path.
 */
static bool find_sock_file(const struct unix_diag_info *u, const char *bindloc, const char *cwd,
			   char *ret_path, size_t len, struct stat *ret_st)
{
	_cleanup_free_ char *dir = strdup(bindloc);
	const char *dirs[3];

	if (stat(bindloc, ret_st) == 0 && is_sock_file(u, ret_st)) {
		snprintf(ret_path, len, "%s", bindloc);
		return true;
	}
	if (!dir)
		return false;
	dirs[0] = dirname(dir);
	dirs[1] = cwd;
	dirs[2] = "/";
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if ((i > 0 && !strcmp(dirs[i], dirs[0])) || (i > 1 && !strcmp(dirs[i], dirs[1])))
			continue;
		if (find_in_dir(u, dirs[i], ret_path, len, ret_st))
			return true;
	}
	return false;
}

static int dump_name(const struct fd_probe *p, const struct unix_diag_info *u, UnixSkEntry *ue,
		     struct ckpt_error *e)
{
	char n[NAME_MAX_LEN + 1], cwd[PATH_MAX], bindloc[LOCATION_MAX], found[LOCATION_MAX];
	_cleanup_free_ char *bdir = NULL;
	struct stat st;
	bool rel;
	int r;

	/* a path is saved without the NUL the kernel counts in its length */
	size_t len = u->name_len && u->name[0] ? strnlen(u->name, u->name_len) : u->name_len;

	if (!len)
		return 0;
	ue->name.data = malloc(len);
	if (!ue->name.data)
		return ckpt_err(e, -ENOMEM, "out of memory");
	memcpy(ue->name.data, u->name, len);
	ue->name.len = len;
	ue->has_name = true;
	if (!u->name[0])
		return 0; /* abstract */
	name_str((const uint8_t *)u->name, len, n, sizeof(n));
	rel = n[0] != '/';
	/* in flight: no task's working directory to resolve a relative name from */
	if (rel && p->in_flight)
		return ckpt_err(e, -EOPNOTSUPP,
				"it is in flight (SCM_RIGHTS) and bound to the relative path %s: "
				"cannot tell where it was bound; not supported",
				n);
	r = proc_readlink(p->pid, "cwd", cwd, sizeof(cwd), e);
	if (r < 0)
		return ckpt_err_wrap(e, "its task's working directory");
	if (rel && !join_path(bindloc, sizeof(bindloc), cwd, n))
		return ckpt_err(e, -ENAMETOOLONG, "its relative name %s from %s is too long", n,
				cwd);
	if (!rel)
		snprintf(bindloc, sizeof(bindloc), "%s", n);
	if (!find_sock_file(u, bindloc, cwd, found, sizeof(found), &st)) {
		if (rel)
			return ckpt_err(
			    e, -EOPNOTSUPP,
			    "it is bound to the relative path %s and its socket file is "
			    "neither at %s nor in %s or /: cannot tell where to bind it "
			    "again; not supported",
			    n, bindloc, cwd);
		/* the program removed its socket file after bind (or it was replaced) */
		ue->has_name_unlinked = ue->name_unlinked = true;
		return 0;
	}
	if (strlen(found) >= PATH_MAX)
		return ckpt_err(e, -ENAMETOOLONG, "its socket file's path %s is too long", found);
	if (rel) {
		/* renamed elsewhere: bound there (a name without '/' only) */
		if (strcmp(found, bindloc)) {
			char *slash = strrchr(found, '/');

			if (strchr(n, '/'))
				return ckpt_err(
				    e, -EOPNOTSUPP,
				    "it is bound to the relative path %s, its socket "
				    "file is now %s: cannot tell where it was bound; not "
				    "supported",
				    n, found);
			bdir = strndup(found, slash == found ? 1 : (size_t)(slash - found));
			if (!bdir || !join_path(bindloc, sizeof(bindloc), bdir, n))
				return ckpt_err(e, -ENOMEM, "out of memory");
		}
		ue->bind_dir = bdir ? TAKE_PTR(bdir) : strdup(cwd);
		if (!ue->bind_dir)
			return ckpt_err(e, -ENOMEM, "out of memory");
	}
	if (strcmp(found, bindloc)) {
		ue->current_path = strdup(found);
		if (!ue->current_path)
			return ckpt_err(e, -ENOMEM, "out of memory");
	}
	ue->has_name_mode = ue->has_name_uid = ue->has_name_gid = true;
	ue->name_mode = st.st_mode & 07777;
	ue->name_uid = st.st_uid;
	ue->name_gid = st.st_gid;
	return 0;
}

static int unix_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	struct unix_diag_info u = {0};
	UnixSkEntry *ue;
	int r;

	r = ckpt_fault_inject("unix-dump", e);
	if (r < 0)
		return r;
	r = fdk_dump_common(p, FILE_TYPE__FILE_UNIX_SK, fe, e);
	if (r < 0)
		return r;
	fe->has_pos = false;
	ue = malloc(sizeof(*ue));
	if (!ue)
		return ckpt_err(e, -ENOMEM, "out of memory");
	unix_sk_entry__init(ue);
	fe->unix_sk = ue; /* freed with the entry from now on */
	r = sockdiag_unix_get((uint32_t)p->st.st_ino, &u, e);
	if (r == -ENOENT)
		return ckpt_err(e, r,
				"unix socket %s: sock_diag does not know it (a socket of another "
				"network namespace?); not supported",
				p->link);
	if (r < 0)
		return ckpt_err_wrap(e, "unix socket %s", p->link);
	ue->inode = u.ino;
	ue->type = u.type;
	ue->state = u.state;
	ue->has_shutdown = true;
	ue->shutdown = u.shutdown;
	ue->has_peer = u.has_peer;
	ue->peer = u.peer;
	if (u.state == UST_LISTEN) {
		ue->has_backlog = true;
		ue->backlog = u.wqueue;
		ue->icons = calloc(u.nicons + 1, sizeof(*ue->icons));
		if (!ue->icons) {
			unix_diag_info_release(&u);
			return ckpt_err(e, -ENOMEM, "out of memory");
		}
		for (size_t i = 0; i < u.nicons; i++)
			ue->icons[i] = u.icons[i];
		ue->n_icons = u.nicons;
	} else {
		ue->has_wqueue = true;
		ue->wqueue = u.wqueue;
	}
	if (u.type != SOCK_STREAM && u.type != SOCK_DGRAM && u.type != SOCK_SEQPACKET)
		r = ckpt_err(e, -EOPNOTSUPP, "unix socket of type %u is not supported", u.type);
	if (r >= 0)
		r = dump_name(p, &u, ue, e);
	if (r >= 0)
		r = dump_options(p->local_fd, ue, e);
	if (r >= 0 && u.state != UST_LISTEN)
		r = dump_queue(p, ue, u.rqueue, e);
	unix_diag_info_release(&u);
	if (r < 0) {
		char what[PATH_MAX + 64];

		return ckpt_err_wrap(e, "%s", describe(fe, what, sizeof(what)));
	}
	pr_debug("pid %d fd %d: %s state %u peer %llu, %zu queued\n", p->pid, p->fd, p->link,
		 ue->state, (unsigned long long)ue->peer, ue->n_msgs);
	return 0;
}

static UnixSkEntry *find_inode(const struct fd_dump_view *v, uint64_t ino, size_t *ret_i)
{
	for (size_t i = 0; i < v->n; i++) {
		UnixSkEntry *ue = v->items[i].fe->unix_sk;

		if (v->items[i].fe->type == FILE_TYPE__FILE_UNIX_SK && ue && ue->inode == ino) {
			if (ret_i)
				*ret_i = i;
			return ue;
		}
	}
	return NULL;
}

/* "pid 12 (journald) fd 3" for the first process holding socket:[ino], or "" */
static void find_holder(uint64_t ino, char *buf, size_t blen)
{
	_cleanup_closedir_ DIR *proc = opendir("/proc");
	char want[64];
	struct dirent *de;

	buf[0] = '\0';
	snprintf(want, sizeof(want), "socket:[%llu]", (unsigned long long)ino);
	while (proc && (de = readdir(proc))) {
		_cleanup_closedir_ DIR *fds = NULL;
		struct dirent *fde;
		char path[64];
		int pid = atoi(de->d_name);

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		fds = opendir(path);
		while (fds && (fde = readdir(fds))) {
			char link[128], comm[64] = "?";
			ssize_t n = readlinkat(dirfd(fds), fde->d_name, link, sizeof(link) - 1);
			struct ckpt_error tmp = {0};
			_cleanup_free_ char *text = NULL;

			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strcmp(link, want))
				continue;
			snprintf(path, sizeof(path), "/proc/%d/comm", pid);
			if (proc_read_file(path, &text, NULL, &tmp) >= 0) {
				snprintf(comm, sizeof(comm), "%s", text);
				comm[strcspn(comm, "\n")] = '\0';
			}
			snprintf(buf, blen, " held by pid %d (%.32s) fd %d", pid, comm,
				 atoi(fde->d_name));
			return;
		}
	}
}

static int refuse_outside(const struct fd_dump_item *it, uint64_t peer, const char *peer_what,
			  struct ckpt_error *e)
{
	char what[PATH_MAX + 64], pn[NAME_MAX_LEN + 1] = "unnamed", holder[160] = "";
	struct unix_diag_info u = {0};
	struct ckpt_error tmp = {0};

	if (peer && sockdiag_unix_get((uint32_t)peer, &u, &tmp) == 0) {
		name_str((const uint8_t *)u.name, u.name_len, pn, sizeof(pn));
		unix_diag_info_release(&u);
	}
	if (peer)
		find_holder(peer, holder, sizeof(holder));
	return ckpt_err(e, -EOPNOTSUPP,
			"pid %d: fd %d: %s is connected to %s socket:[%llu] (%s)%s, outside the "
			"tree; unix sockets connected to processes outside the tree are not "
			"supported (`ckptctl dump --external unix:%llu` saves it, its peer gone "
			"after restore)",
			it->pid, it->fd, describe(it->fe, what, sizeof(what)), peer_what,
			(unsigned long long)peer, pn, holder,
			(unsigned long long)it->fe->unix_sk->inode);
}

/* A listener (outside the tree) with ino among its pending connections. */
struct find_listener {
	uint32_t ino;
	uint32_t found;
	char name[NAME_MAX_LEN + 1];
};

static int find_listener_cb(const struct unix_diag_info *u, void *arg)
{
	struct find_listener *f = arg;

	for (size_t i = 0; i < u->nicons && !f->found; i++)
		if (u->icons[i] == f->ino) {
			f->found = u->ino;
			name_str((const uint8_t *)u->name, u->name_len, f->name, sizeof(f->name));
		}
	return 0;
}

static int refuse_pending_outside(const struct fd_dump_item *it, struct ckpt_error *e)
{
	struct find_listener f = {.ino = (uint32_t)it->fe->unix_sk->inode};
	char what[PATH_MAX + 64], holder[160] = "";
	struct ckpt_error tmp = {0};

	sockdiag_unix_dump(1u << UST_LISTEN, find_listener_cb, &f, &tmp);
	if (f.found)
		find_holder(f.found, holder, sizeof(holder));
	/* the listener's program may accept it while the dump waits (fd_kind.h) */
	return ckpt_err(e, -EAGAIN,
			"pid %d: fd %d: %s has a connection not yet accepted by the listening "
			"socket:[%u] (%s)%s, outside the tree (the dump waits for it to be "
			"accepted)",
			it->pid, it->fd, describe(it->fe, what, sizeof(what)), f.found,
			f.found ? f.name : "unknown", holder);
}

/*
 * Pending connections of the listeners of the tree: each client must be in
 * it. One from outside, or whose client was closed, can only be accepted:
 * the program does so while the dump waits (-EAGAIN, fd_kind.h).
 */
static int tie_pending(const struct fd_dump_view *v, struct ckpt_error *e)
{
	for (size_t i = 0; i < v->n; i++) {
		const FileEntry *fe = v->items[i].fe;
		char what[PATH_MAX + 64];

		if (fe->type != FILE_TYPE__FILE_UNIX_SK || !fe->unix_sk)
			continue;
		for (size_t k = 0; k < fe->unix_sk->n_icons; k++) {
			UnixSkEntry *c = find_inode(v, fe->unix_sk->icons[k], NULL);

			if (!c && !fe->unix_sk->icons[k])
				return ckpt_err(
				    e, -EAGAIN,
				    "pid %d: fd %d: %s has a pending connection (not yet "
				    "accepted) whose client was closed (the dump lets the program "
				    "accept it first)",
				    v->items[i].pid, v->items[i].fd,
				    describe(fe, what, sizeof(what)));
			if (!c)
				return ckpt_err(
				    e, -EAGAIN,
				    "pid %d: fd %d: %s has a pending connection (not yet accepted) "
				    "from socket:[%llu]%s, outside the tree (the dump lets the "
				    "program accept it first)",
				    v->items[i].pid, v->items[i].fd,
				    describe(fe, what, sizeof(what)),
				    (unsigned long long)fe->unix_sk->icons[k], "");
			c->has_pending_on = true;
			c->pending_on = fe->unix_sk->inode;
		}
	}
	return 0;
}

/* Is "unix:INODE" among the --external resources? Marks it used. */
static bool is_external(const struct fd_dump_view *v, bool *used, uint64_t ino)
{
	char want[32];
	bool found = false;

	snprintf(want, sizeof(want), "unix:%llu", (unsigned long long)ino);
	for (size_t i = 0; ino && i < v->n_external; i++)
		if (!strcmp(v->external[i], want)) {
			used[i] = true;
			found = true;
		}
	return found;
}

/* A socket connected outside the tree that the user declared external. */
static int mark_external(const struct fd_dump_item *it, const char *peer_name, size_t len,
			 struct ckpt_error *e)
{
	UnixSkEntry *ue = it->fe->unix_sk;
	char what[PATH_MAX + 64];

	if (len && peer_name[0])
		len = strnlen(peer_name, len);
	if (ue->type == SOCK_DGRAM && !ue->has_name && ue->n_msgs)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: fd %d: %s: an external datagram socket without a name "
				"cannot get its %zu queued messages back; not supported",
				it->pid, it->fd, describe(it->fe, what, sizeof(what)), ue->n_msgs);
	ue->has_external = ue->external = true;
	if (len && ue->type == SOCK_DGRAM) {
		ue->peer_name.data = malloc(len);
		if (!ue->peer_name.data)
			return ckpt_err(e, -ENOMEM, "out of memory");
		memcpy(ue->peer_name.data, peer_name, len);
		ue->peer_name.len = len;
		ue->has_peer_name = true;
	}
	pr_debug("pid %d fd %d: %s connected outside the tree, declared external\n", it->pid,
		 it->fd, it->fe->path);
	return 0;
}

static int check_peer(const struct fd_dump_view *v, const struct fd_dump_item *it, bool *used,
		      struct ckpt_error *e)
{
	UnixSkEntry *ue = it->fe->unix_sk, *peer;
	char what[PATH_MAX + 64];

	if (ue->has_pending_on) {
		/* the bytes wait in the kernel's socket of the connection, which
		 * only accept() reaches, and an accepted connection cannot be put
		 * back in the listener's queue: the dump waits for the accept */
		if (ue->has_wqueue && ue->wqueue)
			return ckpt_err(e, -EAGAIN,
					"pid %d: fd %d: %s sent data on a connection not yet "
					"accepted (%u bytes of buffers; the dump lets the program "
					"accept it first)",
					it->pid, it->fd, describe(it->fe, what, sizeof(what)),
					ue->wqueue);
		return 0;
	}
	if (!ue->has_peer)
		return 0;
	if (ue->peer) {
		bool ext_self = false, ext_peer = false;

		peer = find_inode(v, ue->peer, NULL);
		if (!peer) { /* both looked up: each marks its --external entry used */
			ext_self = is_external(v, used, ue->inode);
			ext_peer = is_external(v, used, ue->peer);
		}
		if (ext_self || ext_peer) {
			struct unix_diag_info u = {0};
			struct ckpt_error tmp = {0};
			int r;

			sockdiag_unix_get((uint32_t)ue->peer, &u, &tmp);
			r = mark_external(it, u.name, u.name_len, e);
			unix_diag_info_release(&u);
			return r;
		}
		if (!peer)
			return refuse_outside(it, ue->peer, "unix socket", e);
		/* a datagram socket connected one way must be able to connect again by name */
		if (ue->type == SOCK_DGRAM && peer->peer != ue->inode && !peer->has_name)
			return ckpt_err(
			    e, -EOPNOTSUPP,
			    "pid %d: fd %d: %s is connected to the unnamed socket:[%llu] "
			    "that is not connected back; not supported",
			    it->pid, it->fd, describe(it->fe, what, sizeof(what)),
			    (unsigned long long)ue->peer);
		return 0;
	}
	/*
	 * Peer 0: the peer has no inode any more. A closed peer shut this end
	 * down both ways; a connection still waiting in the accept queue of a
	 * listener (outside the tree: those inside were tied above) did not.
	 */
	if (ue->type != SOCK_DGRAM && ue->state == UST_ESTABLISHED &&
	    (ue->shutdown & (USK_RCV_SHUTDOWN | USK_SEND_SHUTDOWN)) !=
		(USK_RCV_SHUTDOWN | USK_SEND_SHUTDOWN)) {
		if (is_external(v, used, ue->inode))
			return mark_external(it, NULL, 0, e);
		return refuse_pending_outside(it, e);
	}
	ue->has_peer_closed = true;
	ue->peer_closed = true;
	return 0;
}

/*
 * The senders of the datagrams queued at it: a receiver sees the name a
 * sender has (recvfrom, and replies to it). The restore sends each from the
 * socket of the tree with that name, or from a socket it binds to that
 * abstract name for the time of the send; a socket connected both ways only
 * takes messages from its peer.
 */
static int check_senders(const struct fd_dump_view *v, const struct fd_dump_item *it,
			 struct ckpt_error *e)
{
	UnixSkEntry *ue = it->fe->unix_sk;
	const UnixSkEntry *peer = ue->has_peer && ue->peer ? find_inode(v, ue->peer, NULL) : NULL;
	bool paired = peer && peer->has_peer && peer->peer == ue->inode;
	char what[PATH_MAX + 64], n[NAME_MAX_LEN + 1];
	const ProtobufCBinaryData *last = NULL; /* the sender looked for before */
	bool in_tree = false;

	for (size_t i = 0; i < ue->n_msgs; i++) {
		const ProtobufCBinaryData *s = &ue->msgs[i]->sender;
		const char *why = NULL;

		if (!ue->msgs[i]->has_sender)
			continue;
		if (!last || last->len != s->len || memcmp(last->data, s->data, s->len)) {
			in_tree = false;
			for (size_t k = 0; k < v->n && !in_tree; k++)
				in_tree = v->items[k].fe->type == FILE_TYPE__FILE_UNIX_SK &&
					  v->items[k].fe->unix_sk &&
					  has_this_name(v->items[k].fe->unix_sk, s);
			last = s;
		}
		if (paired && !has_this_name(peer, s))
			why = "not its peer, the one socket it is connected to both ways";
		else if (!paired && (ue->has_peer_closed || !ue->has_name))
			why = "and it cannot be sent to by name";
		else if (!paired && !in_tree && s->data[0])
			why = "a socket outside the tree or closed, whose name is not free to "
			      "send from";
		if (why)
			return ckpt_err(e, -EOPNOTSUPP,
					"pid %d: fd %d: %s: queued message %zu came from %s, %s: "
					"the receiver would see another sender; not supported",
					it->pid, it->fd, describe(it->fe, what, sizeof(what)),
					i + 1, name_str(s->data, s->len, n, sizeof(n)), why);
	}
	return 0;
}

static int unix_dump_done(const struct fd_dump_view *v, struct ckpt_error *e)
{
	_cleanup_free_ bool *used = calloc(v->n_external + 1, sizeof(*used));
	int r;

	if (!used)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < v->n_external; i++) {
		const char *x = v->external[i];
		char *end;

		if (strncmp(x, "unix:", 5) || !x[5] || (strtoull(x + 5, &end, 10), *end))
			return ckpt_err(e, -EINVAL,
					"--external %s: not understood (unix:INODE is the one form "
					"known)",
					x);
	}
	r = tie_pending(v, e);
	for (size_t i = 0; r >= 0 && i < v->n; i++)
		if (v->items[i].fe->type == FILE_TYPE__FILE_UNIX_SK && v->items[i].fe->unix_sk) {
			r = check_peer(v, &v->items[i], used, e);
			if (r >= 0)
				r = check_senders(v, &v->items[i], e);
		}
	for (size_t i = 0; r >= 0 && i < v->n_external; i++)
		if (!used[i])
			r = ckpt_err(e, -ENOENT,
				     "--external %s: no socket of the tree is connected outside it "
				     "through that inode",
				     v->external[i]);
	return r;
}

/* ---- restore: checks ------------------------------------------------------------ */

static bool abs_path_ok(const char *p)
{
	return p[0] == '/' && strlen(p) < PATH_MAX;
}

/* Where bind makes a path name's socket file: the name, or bind_dir + the relative name. */
static const char *bind_location(const UnixSkEntry *ue, char *buf, size_t len)
{
	char n[NAME_MAX_LEN + 1];

	name_str(ue->name.data, ue->name.len, n, sizeof(n));
	if (n[0] == '/' || !ue->bind_dir)
		snprintf(buf, len, "%s", n);
	else
		join_path(buf, len, ue->bind_dir, n);
	return buf;
}

/* Where its socket file is once made: renamed to current_path, or where bind made it. */
static const char *file_location(const UnixSkEntry *ue, char *buf, size_t len)
{
	if (ue->current_path) {
		snprintf(buf, len, "%s", ue->current_path);
		return buf;
	}
	return bind_location(ue, buf, len);
}

/* The address of a socket file by its path (absolute). */
static int path_addr(const char *path, struct sockaddr_un *sa, socklen_t *ret_len)
{
	size_t n = strlen(path);

	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n);
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	return 0;
}

/*
 * Is a stream's out-of-band byte (oob_at) in a saved send without fds? (It
 * is an skb of its own, never one with fds.)
 */
static bool oob_msg(const UnixSkEntry *ue)
{
	size_t pos = 0;

	if (ue->type != SOCK_STREAM || !ue->has_oob_at)
		return false;
	for (size_t i = 0; i < ue->n_msgs; pos += ue->msgs[i++]->data.len) {
		if (ue->oob_at < pos + ue->msgs[i]->data.len)
			return !ue->msgs[i]->n_fds;
	}
	return false;
}

/* Taken out-of-band marks: in order, in the stream, none inside a send with fds. */
static bool taken_ok(const UnixSkEntry *ue, size_t total)
{
	if (ue->type != SOCK_STREAM || ue->n_oob_taken > (1u << 20))
		return false;
	for (size_t k = 0; k < ue->n_oob_taken; k++) {
		size_t t = ue->oob_taken[k], pos = 0;

		if (t > total || (k && t < ue->oob_taken[k - 1]) ||
		    (ue->has_oob_at && t > ue->oob_at))
			return false;
		for (size_t i = 0; i < ue->n_msgs; pos += ue->msgs[i++]->data.len)
			if (ue->msgs[i]->n_fds && t > pos && t < pos + ue->msgs[i]->data.len)
				return false;
	}
	return true;
}

static int check_entry(const FileEntry *fe, struct ckpt_error *e)
{
	const UnixSkEntry *ue = fe->unix_sk;
	size_t total = 0;

	if (fe->type != FILE_TYPE__FILE_UNIX_SK || !fe->path || strncmp(fe->path, "socket:[", 8))
		return ckpt_err(e, -EINVAL, "files.img: entry %u: not a unix socket entry", fe->id);
	if (!ue)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field unix_sk: missing",
				fe->id, fe->path);
	if (ue->type != SOCK_STREAM && ue->type != SOCK_DGRAM && ue->type != SOCK_SEQPACKET)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field unix_sk.type: %u",
				fe->id, fe->path, ue->type);
	if (ue->state != UST_ESTABLISHED && ue->state != UST_CLOSE && ue->state != UST_LISTEN)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field unix_sk.state: %u",
				fe->id, fe->path, ue->state);
	if (ue->has_name && (!ue->name.len || ue->name.len > NAME_MAX_LEN ||
			     (ue->name.data[0] && memchr(ue->name.data, 0, ue->name.len)) ||
			     (ue->name.data[0] && ue->name.data[0] != '/' && !ue->bind_dir)))
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field unix_sk.name: bad",
				fe->id, fe->path);
	/* a relative name's directory; the file's path after a rename */
	if (ue->bind_dir &&
	    (!is_path_name(ue) || ue->name.data[0] == '/' || !abs_path_ok(ue->bind_dir)))
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field unix_sk.bind_dir: bad",
				fe->id, fe->path);
	if (ue->current_path && (!is_path_name(ue) || !abs_path_ok(ue->current_path)))
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u (%s): field unix_sk.current_path: bad", fe->id,
				fe->path);
	if (ue->n_queue && ue->n_msgs)
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u (%s): fields unix_sk.queue and unix_sk.msgs: "
				"both set (one holds the queue)",
				fe->id, fe->path);
	for (size_t i = 0; i < ue->n_queue; i++)
		total += ue->queue[i].len;
	for (size_t i = 0; i < ue->n_msgs; i++) {
		const UnixSkMsg *m = ue->msgs[i];

		total += m->data.len;
		if (m->n_fds > UNIX_MSG_MAX_FDS || (m->n_fds && !m->data.len && ue->type == SOCK_STREAM))
			return ckpt_err(e, -EINVAL,
					"files.img: entry %u (%s): field unix_sk.msgs[%zu].fds: %zu "
					"files%s",
					fe->id, fe->path, i, m->n_fds,
					m->n_fds > UNIX_MSG_MAX_FDS ? ", more than a message carries"
								   : " with no byte of a stream");
		if (m->has_cred_pid != m->has_cred_uid || m->has_cred_pid != m->has_cred_gid ||
		    (m->has_cred_pid && (m->cred_pid <= 0 || m->cred_pid > UNIX_PID_MAX)))
			return ckpt_err(e, -EINVAL,
					"files.img: entry %u (%s): field unix_sk.msgs[%zu].cred_pid: "
					"bad credentials",
					fe->id, fe->path, i);
		if (m->has_sender &&
		    (ue->type != SOCK_DGRAM || !m->sender.len || m->sender.len > NAME_MAX_LEN ||
		     (m->sender.data[0] && memchr(m->sender.data, 0, m->sender.len))))
			return ckpt_err(
			    e, -EINVAL,
			    "files.img: entry %u (%s): field unix_sk.msgs[%zu].sender: bad", fe->id,
			    fe->path, i);
	}
	if (total > QUEUE_MAX || (ue->type != SOCK_STREAM && ue->n_queue > 65536) ||
	    ue->n_msgs > (1u << 20))
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u (%s): field unix_sk.queue: too big", fe->id,
				fe->path);
	if (ue->type == SOCK_STREAM && ue->n_queue > 1)
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u (%s): field unix_sk.queue: a stream has one",
				fe->id, fe->path);
	if (ue->has_backlog && ue->backlog > 1u << 20)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field unix_sk.backlog: %u",
				fe->id, fe->path, ue->backlog);
	if (ue->has_oob_at && !oob_msg(ue))
		return ckpt_err(
		    e, -EINVAL,
		    "files.img: entry %u (%s): field unix_sk.oob_at: %u is not a byte of "
		    "its stream's saved sends without fds",
		    fe->id, fe->path, ue->oob_at);
	if (ue->n_oob_taken && !taken_ok(ue, total))
		return ckpt_err(
		    e, -EINVAL,
		    "files.img: entry %u (%s): field unix_sk.oob_taken: not offsets of "
		    "its stream in order, before oob_at, between its saved sends with fds",
		    fe->id, fe->path);
	return 0;
}

static socklen_t make_addr(const UnixSkEntry *ue, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, ue->name.data, ue->name.len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + ue->name.len);
}

/*
 * A path of a socket file: free, or a stale socket file nobody listens on
 * (the killed program's; removed when unlink is true). Anything else refuses.
 */
static int check_path_at(const FileEntry *fe, const char *path, bool unlink_stale,
			 struct ckpt_error *e)
{
	const UnixSkEntry *ue = fe->unix_sk;
	char what[PATH_MAX + 64];
	_cleanup_close_ int probe = -1;
	struct sockaddr_un sa;
	socklen_t len;
	struct stat st;

	if (lstat(path, &st) < 0) {
		_cleanup_free_ char *dir = strdup(path);

		if (errno != ENOENT)
			return ckpt_err_errno(e, -errno, "%s: its socket file %s",
					      describe(fe, what, sizeof(what)), path);
		if (!dir)
			return ckpt_err(e, -ENOMEM, "out of memory");
		if (stat(dirname(dir), &st) < 0 || !S_ISDIR(st.st_mode))
			return ckpt_err(e, -ENOENT, "%s: no directory %s to bind it in",
					describe(fe, what, sizeof(what)), dir);
		return 0;
	}
	if (!S_ISSOCK(st.st_mode))
		return ckpt_err(e, -EEXIST, "%s: %s is now something else (mode 0%o)",
				describe(fe, what, sizeof(what)), path, (unsigned)st.st_mode);
	if (path_addr(path, &sa, &len) < 0)
		return ckpt_err(e, -ENAMETOOLONG, "%s: its socket file's path %s is too long",
				describe(fe, what, sizeof(what)), path);
	probe = socket(AF_UNIX, (int)ue->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (probe < 0)
		return ckpt_err_errno(e, -errno, "socket");
	if (connect(probe, (struct sockaddr *)&sa, len) == 0 || errno != ECONNREFUSED)
		return ckpt_err(e, -EADDRINUSE,
				"%s: %s is in use by another socket (a process is bound to it)",
				describe(fe, what, sizeof(what)), path);
	if (unlink_stale && unlink(path) < 0 && errno != ENOENT)
		return ckpt_err_errno(e, -errno, "%s: removing the stale socket file %s",
				      describe(fe, what, sizeof(what)), path);
	return 0;
}

/* Where bind makes the file and, renamed, where it goes: both free or stale. */
static int check_path(const FileEntry *fe, bool unlink_stale, struct ckpt_error *e)
{
	char path[LOCATION_MAX];
	int r;

	r = check_path_at(fe, bind_location(fe->unix_sk, path, sizeof(path)), unlink_stale, e);
	if (r >= 0 && fe->unix_sk->current_path)
		r = check_path_at(fe, fe->unix_sk->current_path, unlink_stale, e);
	return r;
}

/* An abstract name must be free: bind a probe to it. */
static int check_abstract(const FileEntry *fe, struct ckpt_error *e)
{
	char what[PATH_MAX + 64];
	_cleanup_close_ int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa;
	socklen_t len = make_addr(fe->unix_sk, &sa);

	if (probe < 0)
		return ckpt_err_errno(e, -errno, "socket");
	if (bind(probe, (struct sockaddr *)&sa, len) < 0)
		return ckpt_err_errno(e, -errno, "%s: its abstract name is taken",
				      describe(fe, what, sizeof(what)));
	return 0;
}

/* An external datagram socket's peer, bound to a path: it must be there to connect to. */
static int check_external_peer(const FileEntry *fe, struct ckpt_error *e)
{
	const UnixSkEntry *ue = fe->unix_sk;
	char what[PATH_MAX + 64], path[NAME_MAX_LEN + 1];
	struct stat st;

	if (!ue->has_external || !ue->external || !ue->has_peer_name || !ue->peer_name.len)
		return 0;
	if (ue->peer_name.len > NAME_MAX_LEN)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: field unix_sk.peer_name: bad",
				fe->id);
	if (!ue->peer_name.data[0])
		return 0; /* abstract: found or not when connecting */
	name_str(ue->peer_name.data, ue->peer_name.len, path, sizeof(path));
	if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return ckpt_err(e, -ENOENT, "%s: its external peer %s is not a socket here",
				describe(fe, what, sizeof(what)), path);
	return 0;
}

static int unix_verify(const FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("unix-verify", e);

	if (r >= 0)
		r = check_entry(fe, e);
	if (r >= 0)
		r = check_external_peer(fe, e);
	if (r < 0 || !fe->unix_sk->has_name)
		return r;
	return is_path_name(fe->unix_sk) ? check_path(fe, false, e) : check_abstract(fe, e);
}

/* ---- restore: making the sockets ------------------------------------------------ */

struct usk {
	const FileEntry *fe;
	const UnixSkEntry *ue;
	int fd;
	int tmp; /* the other end of a peer that was closed, closed once the queue is in */
	bool paired;
};

/* A process made to hold a pid that a queued message's credentials name. */
struct pid_holder {
	pid_t pid;
	int wr; /* closing it lets the holder exit */
};

struct ustate {
	struct usk *s;
	size_t n;
	struct fd_open_ctx *octx; /* for the files in flight (octx->file_fd) */
	struct pid_holder *holders;
	size_t nholders;
};

/* Let every pid holder exit, and reap it: its pid is free again for the tree. */
static void release_holders(struct ustate *st)
{
	for (size_t i = 0; i < st->nholders; i++)
		close(st->holders[i].wr);
	for (size_t i = 0; i < st->nholders; i++)
		while (waitpid(st->holders[i].pid, NULL, __WALL) < 0 && errno == EINTR)
			;
	free(st->holders);
	st->holders = NULL;
	st->nholders = 0;
}

/*
 * SCM_CREDENTIALS names its pid by number, and the kernel wants a process
 * with that pid at send time (the receiver sees the number even after that
 * process is gone, as for a sender that exited before the dump). A pid of
 * the tree does not exist yet in stage files: a process is made with it
 * (clone3 with set_tid), waits until the queues are filled, and is reaped
 * before the tree is made.
 */
static int hold_pid(struct ustate *st, pid_t pid, struct ckpt_error *e)
{
	struct clone_args ca = {.exit_signal = SIGCHLD};
	struct pid_holder *h;
	uint64_t saved;
	int p[2];
	long c;

	if (kill(pid, 0) == 0 || errno != ESRCH)
		return 0; /* there: its number is what the receiver sees */
	for (size_t i = 0; i < st->nholders; i++)
		if (st->holders[i].pid == pid)
			return 0;
	h = realloc(st->holders, (st->nholders + 1) * sizeof(*h));
	if (!h)
		return ckpt_err(e, -ENOMEM, "out of memory");
	st->holders = h;
	if (pipe2(p, O_CLOEXEC) < 0)
		return ckpt_err_errno(e, -errno, "pipe2");
	ca.set_tid = (uint64_t)(uintptr_t)&pid;
	ca.set_tid_size = 1;
	/* a restore run for a user by ckptd holds its capabilities in the permitted set */
	saved = caps_raise(CAPS_BIT(CAP_CHECKPOINT_RESTORE) | CAPS_BIT(CAP_SYS_ADMIN));
	c = syscall(SYS_clone3, &ca, sizeof(ca));
	caps_restore(saved); /* in the child too */
	if (c == 0) {
		char b;

		/* hold nothing of the restorer's (sockets, pipe ends) but our pipe */
		if (p[0] > 0)
			syscall(SYS_close_range, 0, p[0] - 1, 0);
		syscall(SYS_close_range, p[0] + 1, ~0U, 0);
		while (read(p[0], &b, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(p[0]);
	if (c < 0) {
		int r = -errno;

		close(p[1]);
		return ckpt_err_errno(e, r,
				      "pid %d, the sender named by a queued message's credentials, "
				      "cannot be made to send them (clone3 with set_tid)",
				      pid);
	}
	st->holders[st->nholders++] = (struct pid_holder){.pid = (pid_t)c, .wr = p[1]};
	return 0;
}

static void unix_open_done(struct fd_open_ctx *ctx)
{
	struct ustate *st = ctx->priv;

	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++) {
		if (st->s[i].fd >= 0)
			close(st->s[i].fd);
		if (st->s[i].tmp >= 0)
			close(st->s[i].tmp);
	}
	release_holders(st);
	free(st->s);
	free(st);
	ctx->priv = NULL;
}

static struct usk *by_inode(struct ustate *st, uint64_t ino)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->s[i].ue->inode == ino)
			return &st->s[i];
	return NULL;
}

static struct usk *by_id(struct ustate *st, uint32_t id)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->s[i].fe->id == id)
			return &st->s[i];
	return NULL;
}

static int new_sock(const struct usk *u, struct ckpt_error *e)
{
	char what[PATH_MAX + 64];
	int fd = socket(AF_UNIX, (int)u->ue->type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return ckpt_err_errno(e, -errno, "%s: socket", describe(u->fe, what, sizeof(what)));
	return fd;
}

/*
 * bind to the saved name; a relative one from its directory (bind_dir), so
 * that getsockname answers the same relative name. The restorer has one
 * thread: its working directory is put back at once.
 */
static int bind_name(int fd, const UnixSkEntry *ue)
{
	_cleanup_close_ int here = -1;
	struct sockaddr_un sa;
	socklen_t len = make_addr(ue, &sa);
	int r;

	if (!ue->bind_dir || !is_path_name(ue) || ue->name.data[0] == '/')
		return bind(fd, (struct sockaddr *)&sa, len) < 0 ? -errno : 0;
	here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (here < 0)
		return -errno;
	if (chdir(ue->bind_dir) < 0)
		return -errno;
	r = bind(fd, (struct sockaddr *)&sa, len) < 0 ? -errno : 0;
	if (fchdir(here) < 0 && r == 0)
		r = -errno;
	return r;
}

static int do_bind(int fd, const struct usk *u, struct ckpt_error *e)
{
	char what[PATH_MAX + 64], path[LOCATION_MAX];
	const UnixSkEntry *ue = u->ue;
	_cleanup_close_ int file = -1;
	struct file_made made;
	int r = bind_name(fd, ue);

	if (r < 0)
		return ckpt_err_errno(e, r, "%s: bind", describe(u->fe, what, sizeof(what)));
	if (!is_path_name(ue))
		return 0;
	bind_location(ue, path, sizeof(path));
	/*
	 * The socket file just made, in a directory others may write: what is
	 * removed, renamed or given a mode and owner below must be it, not a
	 * symlink or another file put at its path since (checked through an
	 * O_PATH fd: chmod by path would follow a symlink).
	 */
	made = file_made_of(-1, path);
	/* (a test swaps the path here: CKPT_PAUSE=unix-bound) */
	r = ckpt_fault_inject("unix-bound", e);
	if (r < 0)
		return r;
	if (made.type != S_IFSOCK || !file_made_at(path, &made))
		return ckpt_err(e, -EINVAL,
				"%s: its socket file %s was replaced by another file right after "
				"the bind",
				describe(u->fe, what, sizeof(what)), path);
	if (ue->has_name_unlinked && ue->name_unlinked) {
		if (unlink(path) < 0)
			return ckpt_err_errno(e, -errno, "%s: removing %s again",
					      describe(u->fe, what, sizeof(what)), path);
		return 0;
	}
	/* renamed after bind: renamed again (over the stale file left there) */
	if (ue->current_path) {
		if (rename(path, ue->current_path) < 0)
			return ckpt_err_errno(e, -errno, "%s: renaming its socket file %s to %s",
					      describe(u->fe, what, sizeof(what)), path,
					      ue->current_path);
		snprintf(path, sizeof(path), "%s", ue->current_path);
	}
	if (!ue->has_name_mode)
		return 0;
	file = file_made_open(path, O_PATH, S_IFSOCK, &made);
	if (file == -ESTALE)
		return ckpt_err(e, -EINVAL,
				"%s: its socket file %s was replaced by another file right after "
				"the bind",
				describe(u->fe, what, sizeof(what)), path);
	r = file < 0 ? file
		     : fd_set_owner_mode(file, ue->name_uid, ue->name_gid, (int)ue->name_mode);
	if (r < 0)
		return ckpt_err_errno(e, r, "%s: mode 0%o, owner %u:%u of %s",
				      describe(u->fe, what, sizeof(what)), ue->name_mode,
				      ue->name_uid, ue->name_gid, path);
	return 0;
}

/* An address that reaches a named socket: its abstract name or its file's path now. */
static int reach_addr(const struct usk *u, struct sockaddr_un *sa, socklen_t *ret_len,
		      struct ckpt_error *e)
{
	char path[LOCATION_MAX], what[PATH_MAX + 64];

	if (!is_path_name(u->ue) || (!u->ue->bind_dir && !u->ue->current_path)) {
		*ret_len = make_addr(u->ue, sa);
		return 0;
	}
	if (path_addr(file_location(u->ue, path, sizeof(path)), sa, ret_len) < 0)
		return ckpt_err(e, -ENAMETOOLONG, "%s: its socket file's path %s is too long",
				describe(u->fe, what, sizeof(what)), path);
	return 0;
}

/*
 * A connected pair (b NULL: a's peer was closed, its end kept in a->tmp).
 * Unnamed: socketpair. Named: a temporary listener bound to the acceptor's
 * name, the other end connects, the accepted socket has the name (as an
 * accepted socket has its listener's) and the other end sees it as peer.
 */
static int make_pair(struct usk *a, struct usk *b, struct ckpt_error *e)
{
	struct usk *acc = a, *con = b;
	_cleanup_close_ int t = -1, c = -1;
	char what[PATH_MAX + 64], loc[LOCATION_MAX];
	struct sockaddr_un sa;
	socklen_t len;
	int sv[2], s, r;

	if (!a->ue->has_name && !(b && b->ue->has_name)) {
		if (socketpair(AF_UNIX, (int)a->ue->type | SOCK_CLOEXEC, 0, sv) < 0)
			return ckpt_err_errno(e, -errno, "%s: socketpair",
					      describe(a->fe, what, sizeof(what)));
		a->fd = sv[0];
		*(b ? &b->fd : &a->tmp) = sv[1];
		return 0;
	}
	if (!a->ue->has_name) {
		acc = b;
		con = a;
	}
	t = new_sock(acc, e);
	if (t < 0)
		return t;
	r = bind_name(t, acc->ue);
	if (r >= 0 && listen(t, 1) < 0)
		r = -errno;
	if (r < 0)
		return ckpt_err_errno(e, r, "%s: a temporary listener on its name",
				      describe(acc->fe, what, sizeof(what)));
	/* reached where bind made it (a relative name: from bind_dir) */
	if (is_path_name(acc->ue)) {
		r = path_addr(bind_location(acc->ue, loc, sizeof(loc)), &sa, &len);
		if (r < 0)
			return ckpt_err(e, r, "%s: its socket file's path %s is too long",
					describe(acc->fe, what, sizeof(what)), loc);
	} else {
		len = make_addr(acc->ue, &sa);
	}
	c = new_sock(acc, e);
	if (c < 0)
		return c;
	if (con && con->ue->has_name) {
		r = do_bind(c, con, e);
		if (r < 0)
			return r;
	}
	if (connect(c, (struct sockaddr *)&sa, len) < 0)
		return ckpt_err_errno(e, -errno, "%s: connecting its peer",
				      describe(acc->fe, what, sizeof(what)));
	s = accept4(t, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		return ckpt_err_errno(e, -errno, "%s: accept",
				      describe(acc->fe, what, sizeof(what)));
	acc->fd = s;
	*(con ? &con->fd : &acc->tmp) = TAKE_FD(c);
	close(TAKE_FD(t));
	if (is_path_name(acc->ue))
		unlink(sa.sun_path);
	return 0;
}

/* Pairs: stream/seqpacket connections and unnamed datagram pairs, in the tree or peer closed. */
static int make_pairs(struct ustate *st, struct ckpt_error *e)
{
	for (size_t i = 0; i < st->n; i++) {
		struct usk *a = &st->s[i], *b = NULL;
		const UnixSkEntry *ue = a->ue;
		int r;

		if (a->paired || ue->has_pending_on)
			continue;
		if (ue->has_external && ue->external) {
			if (ue->type == SOCK_DGRAM)
				continue; /* made alone, connected to the peer's name later */
		} else if (ue->has_peer_closed && ue->peer_closed) {
			if (ue->type == SOCK_DGRAM && ue->has_name)
				continue; /* made alone: a named datagram socket, unconnected */
		} else if (ue->has_peer && ue->peer) {
			b = by_inode(st, ue->peer);
			if (!b || b->paired)
				return ckpt_err(e, -EINVAL,
						"files.img: entry %u (%s): its peer socket:[%llu] "
						"is not in the images",
						a->fe->id, a->fe->path,
						(unsigned long long)ue->peer);
			if (ue->type == SOCK_DGRAM &&
			    (b->ue->peer != ue->inode || ue->has_name || b->ue->has_name))
				continue; /* connected by name later */
			if (b->ue->type != ue->type || b == a)
				return ckpt_err(
				    e, -EINVAL,
				    "files.img: entry %u: peer of another type, or itself",
				    a->fe->id);
		} else {
			continue;
		}
		r = make_pair(a, b, e);
		if (r < 0)
			return r;
		a->paired = true;
		if (b)
			b->paired = true;
	}
	return 0;
}

/* Lone sockets: unconnected, bound, listening, named datagram sockets. */
static int make_lone(struct ustate *st, struct ckpt_error *e)
{
	for (size_t i = 0; i < st->n; i++) {
		struct usk *u = &st->s[i];
		char what[PATH_MAX + 64];
		int r;

		if (u->paired || u->ue->has_pending_on)
			continue;
		u->fd = new_sock(u, e);
		if (u->fd < 0)
			return u->fd;
		if (u->ue->has_name) {
			r = do_bind(u->fd, u, e);
			if (r < 0)
				return r;
		}
		if (u->ue->state == UST_LISTEN &&
		    listen(u->fd, u->ue->has_backlog ? (int)u->ue->backlog : 128) < 0)
			return ckpt_err_errno(e, -errno, "%s: listen",
					      describe(u->fe, what, sizeof(what)));
	}
	return 0;
}

static int connect_to(int fd, const struct usk *to, const struct usk *u, struct ckpt_error *e)
{
	char what[PATH_MAX + 64], n[NAME_MAX_LEN + 1];
	struct sockaddr_un sa;
	socklen_t len;

	if (!to->ue->has_name)
		return ckpt_err(e, -EINVAL, "%s: its peer %s has no name to connect to",
				describe(u->fe, what, sizeof(what)), to->fe->path);
	if (reach_addr(to, &sa, &len, e) < 0)
		return -ENAMETOOLONG;
	if (connect(fd, (struct sockaddr *)&sa, len) < 0)
		return ckpt_err_errno(e, -errno, "%s: connecting to %s",
				      describe(u->fe, what, sizeof(what)),
				      entry_name(to->ue, n, sizeof(n)));
	return 0;
}

/* Clients of pending connections, in the accept order of their listener. */
static int make_pending(struct ustate *st, struct ckpt_error *e)
{
	for (size_t i = 0; i < st->n; i++) {
		struct usk *l = &st->s[i];

		for (size_t k = 0; k < l->ue->n_icons; k++) {
			struct usk *c = by_inode(st, l->ue->icons[k]);
			int r;

			if (!c || !c->ue->has_pending_on || c->ue->pending_on != l->ue->inode ||
			    c->fd >= 0)
				return ckpt_err(e, -EINVAL,
						"files.img: entry %u (%s): pending connection "
						"socket:[%llu] is not in the images",
						l->fe->id, l->fe->path,
						(unsigned long long)l->ue->icons[k]);
			c->fd = new_sock(c, e);
			if (c->fd < 0)
				return c->fd;
			if (c->ue->has_name) {
				r = do_bind(c->fd, c, e);
				if (r < 0)
					return r;
			}
			r = connect_to(c->fd, l, c, e);
			if (r < 0)
				return r;
			c->paired = true;
		}
	}
	for (size_t i = 0; i < st->n; i++)
		if (st->s[i].fd < 0)
			return ckpt_err(e, -EINVAL,
					"files.img: entry %u (%s): pending on a listener "
					"not in the images",
					st->s[i].fe->id, st->s[i].fe->path);
	return 0;
}

/* An external datagram socket: connected again to its peer's name, if it had one. */
static int connect_external(const struct usk *u, struct ckpt_error *e)
{
	const UnixSkEntry *ue = u->ue;
	char what[PATH_MAX + 64], n[NAME_MAX_LEN + 1];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (!ue->has_peer_name || !ue->peer_name.len)
		return 0;
	if (ue->peer_name.len > NAME_MAX_LEN)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: field unix_sk.peer_name: bad",
				u->fe->id);
	memcpy(sa.sun_path, ue->peer_name.data, ue->peer_name.len);
	if (connect(u->fd, (struct sockaddr *)&sa,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + ue->peer_name.len)) < 0)
		return ckpt_err_errno(
		    e, -errno, "%s: connecting again to its external peer %s",
		    describe(u->fe, what, sizeof(what)),
		    name_str(ue->peer_name.data, ue->peer_name.len, n, sizeof(n)));
	return 0;
}

/* Datagram sockets connected to a named peer. */
static int connect_dgrams(struct ustate *st, struct ckpt_error *e)
{
	for (size_t i = 0; i < st->n; i++) {
		struct usk *u = &st->s[i], *to;
		int r;

		if (u->ue->type != SOCK_DGRAM || u->paired || !u->ue->has_peer || !u->ue->peer)
			continue;
		if (u->ue->has_external && u->ue->external) {
			r = connect_external(u, e);
			if (r < 0)
				return r;
			continue;
		}
		to = by_inode(st, u->ue->peer);
		if (!to)
			return ckpt_err(e, -EINVAL, "files.img: entry %u: peer not in the images",
					u->fe->id);
		r = connect_to(u->fd, to, u, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int set_int(int fd, int opt, int v)
{
	return setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v));
}

/* Buffer sizes: the kernel doubles what it is given; FORCE passes wmem_max. */
static int set_buf(int fd, int force, int plain, uint32_t saved)
{
	int v = (int)(saved / 2);

	if (set_int(fd, force, v) == 0)
		return 0;
	return set_int(fd, plain, v);
}

/*
 * SO_PASSCRED only once the queues are in (queues_in): with it on either
 * end the kernel would give the messages that had no credentials ours.
 */
static int set_options(const struct usk *u, bool queues_in, struct ckpt_error *e)
{
	const UnixSkEntry *ue = u->ue;
	char what[PATH_MAX + 64];
	int fd = u->fd;

	if ((ue->has_sndbuf && set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, ue->sndbuf) < 0) ||
	    (ue->has_rcvbuf && set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, ue->rcvbuf) < 0) ||
	    (queues_in && ue->has_passcred && set_int(fd, SO_PASSCRED, ue->passcred) < 0) ||
	    (ue->has_rcvtimeo_us && sockopt_set_timeo(fd, SO_RCVTIMEO, ue->rcvtimeo_us) < 0) ||
	    (ue->has_sndtimeo_us && sockopt_set_timeo(fd, SO_SNDTIMEO, ue->sndtimeo_us) < 0))
		return ckpt_err_errno(e, -errno, "%s: setting its options",
				      describe(u->fe, what, sizeof(what)));
	/* like SO_PASSCRED: with it on, the messages sent back would carry our pid */
	if (queues_in && ue->has_passpidfd && set_int(fd, UNIX_SO_PASSPIDFD, ue->passpidfd) < 0)
		return ckpt_err_errno(e, -errno, "%s: SO_PASSPIDFD",
				      describe(u->fe, what, sizeof(what)));
	/* after the queues: the restore takes out-of-band bytes back (send_marked) */
	if (queues_in && ue->has_oobinline && set_int(fd, SO_OOBINLINE, ue->oobinline) < 0)
		return ckpt_err_errno(e, -errno, "%s: SO_OOBINLINE",
				      describe(u->fe, what, sizeof(what)));
	if (ue->has_passsec && ue->passsec && set_int(fd, SO_PASSSEC, 1) < 0)
		return ckpt_err_errno(e, -errno, "%s: SO_PASSSEC",
				      describe(u->fe, what, sizeof(what)));
	return 0;
}

/* One saved message: its bytes and, in images since msgs, what came with it (else NULL). */
struct qmsg {
	const ProtobufCBinaryData *data;
	const UnixSkMsg *m;
};

static size_t queue_len(const UnixSkEntry *ue)
{
	return ue->n_msgs ? ue->n_msgs : ue->n_queue;
}

static struct qmsg queue_at(const UnixSkEntry *ue, size_t i)
{
	if (ue->n_msgs)
		return (struct qmsg){&ue->msgs[i]->data, ue->msgs[i]};
	return (struct qmsg){&ue->queue[i], NULL};
}

/* The restorer's fd of a file in flight: a unix socket of ours, or any other file. */
static int inflight_fd(struct ustate *st, uint32_t id, int *ret, struct ckpt_error *e)
{
	struct usk *u = by_id(st, id);

	if (u) {
		*ret = u->fd;
		return 0;
	}
	if (!st->octx->file_fd)
		return ckpt_err(e, -EOPNOTSUPP, "file id %u in flight: no way to open it here", id);
	return st->octx->file_fd(st->octx->owner, id, ret, e);
}

/*
 * Send one saved message with its fds (SCM_RIGHTS) and credentials
 * (SCM_CREDENTIALS, when it had some). A stream run is one sendmsg: its
 * fds attach to its first skb, and a run carrying fds is at most one skb of
 * the original sender (our send buffer is larger), so they attach to the
 * same bytes.
 */
static int send_msg(struct ustate *st, int fd, const struct sockaddr_un *to, socklen_t tolen,
		    struct qmsg q, bool stream, int flags, struct ckpt_error *e)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * UNIX_MSG_MAX_FDS) + CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctl;
	const ProtobufCBinaryData *d = q.data;
	size_t off = 0, clen = 0;
	struct cmsghdr *c;

	memset(&ctl, 0, sizeof(ctl));
	c = (struct cmsghdr *)ctl.buf;
	if (q.m && q.m->n_fds) {
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * q.m->n_fds);
		for (size_t i = 0; i < q.m->n_fds; i++) {
			int f = -1, r = inflight_fd(st, q.m->fds[i], &f, e);

			if (r < 0)
				return r;
			if (f < 0)
				return ckpt_err(e, -EINVAL, "file id %u in flight was not made",
						q.m->fds[i]);
			memcpy(CMSG_DATA(c) + i * sizeof(int), &f, sizeof(int));
		}
		clen += CMSG_SPACE(sizeof(int) * q.m->n_fds);
		c = (struct cmsghdr *)(ctl.buf + clen);
	}
	if (q.m && q.m->has_cred_pid) {
		struct ucred uc = {.pid = q.m->cred_pid, .uid = q.m->cred_uid, .gid = q.m->cred_gid};

		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(uc));
		memcpy(CMSG_DATA(c), &uc, sizeof(uc));
		clen += CMSG_SPACE(sizeof(uc));
	}
	do {
		struct iovec iov = {.iov_base = d->data + off, .iov_len = d->len - off};
		struct msghdr mh = {.msg_name = (void *)to,
				    .msg_namelen = tolen,
				    .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = clen ? ctl.buf : NULL,
				    .msg_controllen = clen};
		uint64_t saved = 0;
		ssize_t n;

		/*
		 * Another process's pid needs CAP_SYS_ADMIN (raised: a restore run
		 * for a user holds it in the permitted set only). CAP_SETUID and
		 * CAP_SETGID are not raised: the kernel takes a uid and gid that
		 * are not ours only from root's restore.
		 */
		if (q.m && q.m->has_cred_pid)
			saved = caps_raise(CAPS_BIT(CAP_SYS_ADMIN));
		n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL | flags);
		if (q.m && q.m->has_cred_pid)
			caps_restore(saved);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EPERM && q.m && q.m->has_cred_pid)
			return ckpt_err(e, -EPERM,
					"its credentials (pid %d, uid %u, gid %u) are not ours to "
					"give: only a restore as root gives back another user's",
					q.m->cred_pid, q.m->cred_uid, q.m->cred_gid);
		if (n < 0)
			return ckpt_err_errno(e, -errno, "sendmsg");
		if (!stream && (size_t)n != d->len)
			return ckpt_err(e, -EMSGSIZE, "sendmsg sent %zd of %zu bytes", n, d->len);
		/* fds and credentials go with the first skb: a run with fds must fit in it */
		if (stream && (size_t)n != d->len && q.m && q.m->n_fds)
			return ckpt_err(e, -EMSGSIZE,
					"sendmsg sent %zd of the %zu bytes its fds came with", n,
					d->len);
		off += (size_t)n;
	} while (off < d->len);
	return 0;
}

/*
 * One saved stream send, its first byte at offset pos of the queue, with
 * the out-of-band marks that fall in it (up to its end): its bytes in parts
 * between them; for a mark already taken (*ti indexes oob_taken), a byte
 * sent with MSG_OOB and taken at once with recv(MSG_OOB) by r, which leaves
 * the empty skb a read stops at; for the pending byte (oob_at), that byte
 * sent with MSG_OOB. A send with fds is never cut (check_entry).
 */
static int send_marked(struct ustate *st, const struct usk *r, int from, struct qmsg q, size_t pos,
		       size_t *ti, struct ckpt_error *e)
{
	const UnixSkEntry *ue = r->ue;
	size_t len = q.data->len, done = 0;

	for (;;) {
		size_t next = len;
		bool taken = false, oob = false;
		ProtobufCBinaryData part;
		uint8_t b;
		int rr;

		if (*ti < ue->n_oob_taken && ue->oob_taken[*ti] <= pos + len) {
			next = ue->oob_taken[*ti] - pos;
			taken = true;
		}
		if (ue->has_oob_at && ue->oob_at >= pos + done && ue->oob_at < pos + len &&
		    ue->oob_at - pos < next) {
			next = ue->oob_at - pos;
			taken = false;
			oob = true;
		}
		if (next > done) {
			part = (ProtobufCBinaryData){next - done, q.data->data + done};
			rr = send_msg(st, from, NULL, 0, (struct qmsg){&part, q.m}, true, 0, e);
			if (rr < 0)
				return rr;
		}
		done = next;
		if (!taken && !oob)
			return 0;
		b = oob ? q.data->data[next] : 0;
		part = (ProtobufCBinaryData){1, &b};
		/* with the send's credentials, never its fds */
		rr = send_msg(st, from, NULL, 0,
			      (struct qmsg){&part, q.m && !q.m->n_fds ? q.m : NULL}, true, MSG_OOB,
			      e);
		if (rr < 0)
			return ckpt_err_wrap(e, "an out-of-band byte");
		if (oob) {
			done++;
			continue;
		}
		if (recv(r->fd, &b, 1, MSG_OOB | MSG_DONTWAIT) != 1)
			return ckpt_err_errno(e, -errno, "taking back out-of-band byte %zu",
					      *ti + 1);
		(*ti)++;
	}
}

/*
 * The socket a datagram for r with a named sender is sent from (check_senders
 * at dump): r's peer if r is connected both ways; else the socket of the
 * restore with that name, or one bound to that abstract name for the time of
 * the send (*tmp, closed by the caller: the message keeps its sender's name).
 */
static int sender_fd(struct ustate *st, const struct usk *r, const struct usk *peer,
		     const UnixSkMsg *m, int *fd, int *tmp, struct ckpt_error *e)
{
	char n[NAME_MAX_LEN + 1];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	name_str(m->sender.data, m->sender.len, n, sizeof(n));
	if (peer && r->paired) {
		if (!has_this_name(peer->ue, &m->sender))
			return ckpt_err(e, -EINVAL, "it came from %s, not from its peer", n);
		return 0; /* *fd: the peer already */
	}
	if (r->tmp >= 0)
		return ckpt_err(e, -EINVAL, "it came from %s, but its peer was closed", n);
	for (size_t i = 0; i < st->n; i++)
		if (st->s[i].fd >= 0 && has_this_name(st->s[i].ue, &m->sender)) {
			*fd = st->s[i].fd;
			/* its options are set again once the queues are in */
			set_buf(*fd, SO_SNDBUFFORCE, SO_SNDBUF, 2 * (QUEUE_MAX + (1u << 20)));
			return 0;
		}
	if (m->sender.data[0])
		return ckpt_err(e, -EINVAL,
				"it came from %s, which no socket of the checkpoint has", n);
	*tmp = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (*tmp < 0)
		return ckpt_err_errno(e, -errno, "socket");
	memcpy(sa.sun_path, m->sender.data, m->sender.len);
	if (bind(*tmp, (struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + m->sender.len)) < 0)
		return ckpt_err_errno(e, -errno, "binding a socket to %s, the name it came from%s",
				      n, errno == EADDRINUSE ? ", now in use" : "");
	*fd = *tmp;
	return 0;
}

/* R's saved queue, sent from its peer, its temporary end, or an unnamed socket to its name. */
static int fill_queue(struct ustate *st, struct usk *r, struct ckpt_error *e)
{
	const UnixSkEntry *ue = r->ue;
	struct usk *peer = ue->has_peer && ue->peer ? by_inode(st, ue->peer) : NULL;
	_cleanup_close_ int own = -1;
	char what[PATH_MAX + 64];
	struct sockaddr_un sa, *to = NULL;
	socklen_t tolen = 0;
	size_t n = queue_len(ue);
	int from = -1;

	/*
	 * Datagram sockets are connected to named peers only after this (a
	 * connected one takes messages from its peer only), so a temporary
	 * socket can send to a named one.
	 */
	if (r->tmp >= 0)
		from = r->tmp;
	else if (peer && r->paired)
		from = peer->fd;
	else if (ue->type == SOCK_DGRAM && ue->has_name) {
		own = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (own < 0)
			return ckpt_err_errno(e, -errno, "socket");
		from = own;
		if (reach_addr(r, &sa, &tolen, e) < 0)
			return -ENAMETOOLONG;
		to = &sa;
	}
	if (from < 0)
		return ckpt_err(e, -EINVAL, "%s: no way to put its %zu queued messages back",
				describe(r->fe, what, sizeof(what)), n);
	/* the sender's buffer must take the whole queue at once (options set again after) */
	set_buf(from, SO_SNDBUFFORCE, SO_SNDBUF, 2 * (QUEUE_MAX + (1u << 20)));
	for (size_t i = 0, pos = 0, ti = 0; i < n || ti < ue->n_oob_taken;
	     pos += queue_at(ue, i++).data->len) {
		/* a stream's marks go with the sends (and the marks after the last, with none) */
		const ProtobufCBinaryData none = {0, NULL};
		const UnixSkMsg *m = i < n ? queue_at(ue, i).m : NULL;
		_cleanup_close_ int tmp = -1;
		int mfrom = from;
		int rr = m && m->has_sender ? sender_fd(st, r, peer, m, &mfrom, &tmp, e) : 0;

		if (rr >= 0)
			rr = ue->type == SOCK_STREAM && (ue->has_oob_at || ue->n_oob_taken)
				 ? send_marked(st, r, from,
					       i < n ? queue_at(ue, i) : (struct qmsg){&none, NULL},
					       pos, &ti, e)
				 : send_msg(st, mfrom, to, tolen, queue_at(ue, i),
					    ue->type == SOCK_STREAM, 0, e);

		if (rr < 0)
			return ckpt_err_wrap(e, "%s: putting back queued message %zu of %zu",
					     describe(r->fe, what, sizeof(what)), i + 1, n);
		if (i >= n)
			break;
	}
	return 0;
}

/* Every pid the queues' credentials name exists (or is held) before they are sent. */
static int hold_cred_pids(struct ustate *st, struct ckpt_error *e)
{
	for (size_t i = 0; i < st->n; i++) {
		const UnixSkEntry *ue = st->s[i].ue;

		for (size_t k = 0; k < ue->n_msgs; k++) {
			int r;

			if (!ue->msgs[k]->has_cred_pid)
				continue;
			r = hold_pid(st, ue->msgs[k]->cred_pid, e);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* After the queues: shutdown, temporary ends closed, peek offset, flags. */
static int finish(struct usk *u, struct ckpt_error *e)
{
	const UnixSkEntry *ue = u->ue;
	uint32_t sh = ue->has_shutdown ? ue->shutdown : 0;
	char what[PATH_MAX + 64];
	int fl;

	describe(u->fe, what, sizeof(what));
	if (u->tmp >= 0) {
		/* the closed peer: this end is shut down both ways, as it was */
		close(u->tmp);
		u->tmp = -1;
	} else if (sh && ue->state != UST_LISTEN) {
		int how = sh == (USK_RCV_SHUTDOWN | USK_SEND_SHUTDOWN) ? SHUT_RDWR
			  : sh & USK_RCV_SHUTDOWN		       ? SHUT_RD
								       : SHUT_WR;

		if (shutdown(u->fd, how) < 0 && errno != ENOTCONN)
			return ckpt_err_errno(e, -errno, "%s: shutdown", what);
	}
	if (ue->has_peek_off && ue->peek_off >= 0 && set_int(u->fd, SO_PEEK_OFF, ue->peek_off) < 0)
		return ckpt_err_errno(e, -errno, "%s: SO_PEEK_OFF %d", what, ue->peek_off);
	fl = fcntl(u->fd, F_GETFL);
	if (fl < 0 ||
	    fcntl(u->fd, F_SETFL, (fl & ~O_NONBLOCK) | (int)(u->fe->flags & O_NONBLOCK)) < 0)
		return ckpt_err_errno(e, -errno, "%s: flags 0%o", what, u->fe->flags);
	return 0;
}

static int collect(struct fd_open_ctx *ctx, struct ustate *st, struct ckpt_error *e)
{
	st->s = calloc(ctx->nall + 1, sizeof(*st->s));
	if (!st->s)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < ctx->nall; i++) {
		const FileEntry *fe = ctx->all[i];
		int r;

		if (fe->type != FILE_TYPE__FILE_UNIX_SK)
			continue;
		r = check_entry(fe, e);
		if (r < 0)
			return r;
		if (by_inode(st, fe->unix_sk->inode))
			return ckpt_err(e, -EINVAL, "files.img: entry %u: socket:[%llu] twice",
					fe->id, (unsigned long long)fe->unix_sk->inode);
		st->s[st->n++] = (struct usk){.fe = fe, .ue = fe->unix_sk, .fd = -1, .tmp = -1};
	}
	return 0;
}

/* Every unix socket of the tree, in the order that lets names be reused. */
static int build_all(struct ustate *st, struct ckpt_error *e)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < st->n; i++)
		if (is_path_name(st->s[i].ue))
			r = check_path(st->s[i].fe, true, e);
	if (r >= 0)
		r = make_pairs(st, e);
	if (r >= 0)
		r = make_lone(st, e);
	if (r >= 0)
		r = make_pending(st, e);
	for (size_t i = 0; r >= 0 && i < st->n; i++)
		r = set_options(&st->s[i], false, e);
	if (r >= 0)
		r = hold_cred_pids(st, e);
	for (size_t i = 0; r >= 0 && i < st->n; i++)
		if (queue_len(st->s[i].ue) || st->s[i].ue->n_oob_taken)
			r = fill_queue(st, &st->s[i], e);
	/* the pids of the tree must be free again for stage tree */
	release_holders(st);
	/* after the queues: connecting a datagram socket again would purge its queue */
	if (r >= 0)
		r = connect_dgrams(st, e);
	/* the senders' buffers were raised for the queues */
	for (size_t i = 0; r >= 0 && i < st->n; i++)
		r = set_options(&st->s[i], true, e);
	for (size_t i = 0; r >= 0 && i < st->n; i++)
		r = finish(&st->s[i], e);
	return r;
}

/* The first open: every unix socket of the restore, made together. */
static int build(struct fd_open_ctx *ctx, struct ckpt_error *e)
{
	struct ustate *st = calloc(1, sizeof(*st));
	int r;

	if (!st)
		return ckpt_err(e, -ENOMEM, "out of memory");
	ctx->priv = st; /* freed by open_done, whatever happens next */
	st->octx = ctx;
	r = collect(ctx, st, e);
	return r < 0 ? r : build_all(st, e);
}

static int fd_of(void *priv, const FileEntry *fe)
{
	struct usk *u = by_inode(priv, fe->unix_sk->inode);

	return u ? u->fd : -1;
}

static const struct fdk_batch unix_batch = {
    .check = check_entry,
    .build = build,
    .fd_of = fd_of,
    .describe = describe,
};

static int unix_open_shared(struct fd_open_ctx *ctx, const FileEntry *fe, int *ret_fd,
			    struct ckpt_error *e)
{
	int r = ckpt_fault_inject("unix-open", e);

	return r < 0 ? r : fdk_batch_open(ctx, &unix_batch, fe, ret_fd, e);
}

/*
 * Killing dump, last look: a listener of the tree got a connection since it
 * was saved (each is in icons: the saved clients plus new ones).
 */
static int unix_dump_recheck(const struct fd_dump_view *v, struct ckpt_error *e)
{
	for (size_t i = 0; i < v->n; i++) {
		const FileEntry *fe = v->items[i].fe;
		struct unix_diag_info u = {0};
		char what[PATH_MAX + 64];
		size_t now;
		int r;

		if (fe->type != FILE_TYPE__FILE_UNIX_SK || !fe->unix_sk ||
		    fe->unix_sk->state != UST_LISTEN)
			continue;
		r = sockdiag_unix_get((uint32_t)fe->unix_sk->inode, &u, e);
		now = u.nicons;
		unix_diag_info_release(&u);
		if (r >= 0 && now != fe->unix_sk->n_icons)
			r = ckpt_err(e, -EAGAIN,
				     "a connection came while the checkpoint was committed; it "
				     "is withdrawn and the tree left running");
		if (r < 0)
			return ckpt_err_wrap(e, "pid %d: fd %d: %s", v->items[i].pid,
					     v->items[i].fd, describe(fe, what, sizeof(what)));
	}
	return 0;
}

const struct fd_kind fd_kind_unix = {
    .name = "unix socket",
    .in_flight = true,
    .matches = unix_matches,
    .describe = unix_describe,
    .entry_field = offsetof(FileEntry, unix_sk),
    .path = FD_PATH_PROC_LINK,
    .dump = unix_dump,
    .verify = unix_verify,
    .dump_done = unix_dump_done,
    .open_shared = unix_open_shared,
    .dump_recheck = unix_dump_recheck,
    .open_done = unix_open_done,
};
