/* SPDX-License-Identifier: MIT */
/*
 * Netlink sockets (NETLINK_ROUTE, NETLINK_KOBJECT_UEVENT...): bound or not,
 * with nothing queued. One FileEntry per socket.
 *
 * Dump. Type and protocol from getsockopt on our pidfd_getfd copy, the
 * bound port id and the connected destination from getsockname and
 * sock_diag (NETLINK_DIAG, lib/sockdiag.c), which also says how many bytes
 * wait to be read and whether a dump reply is in progress: a socket with
 * either is refused (the kernel's messages cannot be put back). The
 * multicast groups come from NETLINK_LIST_MEMBERSHIPS, the NETLINK_* flags
 * and the buffer sizes from getsockopt. Nothing is read from the socket.
 *
 * Restore. socket(), options, bind() to the saved port id (the restore
 * fails if another socket has it) and first 32 groups, the other groups
 * joined with NETLINK_ADD_MEMBERSHIP, connect() to the saved destination.
 *
 * Only protocols whose per-socket kernel state is what is saved here are
 * accepted: others keep state tied to the port id that the kernel drops
 * when the dumped program is killed (nfnetlink queue and log bindings,
 * generic netlink families' registrations, the audit daemon's, the proc
 * connector's listeners) and that no getsockopt shows.
 * See docs/fd-kinds.md, "Netlink sockets".
 */
#define LOG_PREFIX "kind netlink: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/netlink_diag.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"
#include "sockdiag.h"
#include "sockopt.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* at most 32 * 64 groups: more than any protocol has (NETLINK_ROUTE: 36) */
#define GROUP_WORDS_MAX 64

static const struct {
	int protocol;
	const char *name;
	bool supported; /* its per-socket kernel state is what we save */
} protocols[] = {
    {NETLINK_ROUTE, "NETLINK_ROUTE", true},
    {NETLINK_USERSOCK, "NETLINK_USERSOCK", true},
    {NETLINK_SOCK_DIAG, "NETLINK_SOCK_DIAG", true},
    {NETLINK_NFLOG, "NETLINK_NFLOG", false},
    {NETLINK_XFRM, "NETLINK_XFRM", true},
    {NETLINK_SELINUX, "NETLINK_SELINUX", true},
    {NETLINK_ISCSI, "NETLINK_ISCSI", false},
    {NETLINK_AUDIT, "NETLINK_AUDIT", false},
    {NETLINK_FIB_LOOKUP, "NETLINK_FIB_LOOKUP", true},
    {NETLINK_CONNECTOR, "NETLINK_CONNECTOR", false},
    {NETLINK_NETFILTER, "NETLINK_NETFILTER", false},
    {NETLINK_KOBJECT_UEVENT, "NETLINK_KOBJECT_UEVENT", true},
    {NETLINK_GENERIC, "NETLINK_GENERIC", false},
    {NETLINK_SCSITRANSPORT, "NETLINK_SCSITRANSPORT", false},
    {NETLINK_RDMA, "NETLINK_RDMA", false},
    {NETLINK_CRYPTO, "NETLINK_CRYPTO", false},
};

static const char *proto_name(uint32_t protocol, char *buf, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(protocols); i++)
		if ((uint32_t)protocols[i].protocol == protocol)
			return protocols[i].name;
	snprintf(buf, len, "protocol %u", protocol);
	return buf;
}

static bool proto_supported(uint32_t protocol)
{
	for (size_t i = 0; i < ARRAY_SIZE(protocols); i++)
		if ((uint32_t)protocols[i].protocol == protocol)
			return protocols[i].supported;
	return false;
}

/* The NETLINK_* socket options kept, with where each goes in the entry. */
#define NL_FLAG(opt, field)                                                                        \
	{                                                                                          \
		opt, #opt, offsetof(NetlinkSkEntry, has_##field), offsetof(NetlinkSkEntry, field)  \
	}
static const struct {
	int opt;
	const char *name;
	size_t has, val;
} nl_flags[] = {
    NL_FLAG(NETLINK_PKTINFO, pktinfo),
    NL_FLAG(NETLINK_BROADCAST_ERROR, broadcast_error),
    NL_FLAG(NETLINK_NO_ENOBUFS, no_enobufs),
    NL_FLAG(NETLINK_LISTEN_ALL_NSID, listen_all_nsid),
    NL_FLAG(NETLINK_CAP_ACK, cap_ack),
    NL_FLAG(NETLINK_EXT_ACK, ext_ack),
    NL_FLAG(NETLINK_GET_STRICT_CHK, get_strict_chk),
};

static protobuf_c_boolean *flag_has(NetlinkSkEntry *ne, size_t i)
{
	return (protobuf_c_boolean *)((char *)ne + nl_flags[i].has);
}

static protobuf_c_boolean *flag_val(NetlinkSkEntry *ne, size_t i)
{
	return (protobuf_c_boolean *)((char *)ne + nl_flags[i].val);
}

/* "NETLINK_ROUTE socket socket:[123] (port 812)" */
static const char *describe(const FileEntry *fe, char *buf, size_t len)
{
	const NetlinkSkEntry *ne = fe->netlink_sk;
	char pn[32];

	snprintf(buf, len, "netlink socket %s (%s, port id %u)", fe->path,
		 proto_name(ne->protocol, pn, sizeof(pn)), ne->has_portid ? ne->portid : 0);
	return buf;
}

/* ---- dump --------------------------------------------------------------------- */

static bool netlink_matches(const struct fd_probe *p)
{
	return S_ISSOCK(p->st.st_mode) && fdk_probe_sock_domain(p) == AF_NETLINK;
}

static bool netlink_describe(const struct fd_probe *p, char *buf, size_t len)
{
	return fdk_describe_as(netlink_matches(p), "netlink socket", buf, len);
}

static int get_int(int fd, int level, int opt, int *ret)
{
	socklen_t sl = sizeof(*ret);

	*ret = 0;
	return getsockopt(fd, level, opt, ret, &sl);
}

static int dump_groups(int fd, NetlinkSkEntry *ne, struct ckpt_error *e)
{
	uint32_t words[GROUP_WORDS_MAX] = {0};
	socklen_t len = sizeof(words);
	size_t n;

	if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, words, &len) < 0)
		return ckpt_err_errno(e, -errno, "its groups (NETLINK_LIST_MEMBERSHIPS)");
	if (len > sizeof(words))
		return ckpt_err(e, -EOPNOTSUPP, "it has %u bytes of group bits; not supported",
				(unsigned)len);
	n = len / sizeof(uint32_t);
	while (n && !words[n - 1])
		n--;
	if (!n)
		return 0;
	ne->groups = calloc(n, sizeof(*ne->groups));
	if (!ne->groups)
		return ckpt_err(e, -ENOMEM, "out of memory");
	memcpy(ne->groups, words, n * sizeof(uint32_t));
	ne->n_groups = n;
	return 0;
}

static int dump_options(int fd, NetlinkSkEntry *ne, struct ckpt_error *e)
{
	int snd, rcv, cred, filter = 0;
	socklen_t flen = 0;

	if (get_int(fd, SOL_SOCKET, SO_SNDBUF, &snd) < 0 ||
	    get_int(fd, SOL_SOCKET, SO_RCVBUF, &rcv) < 0 ||
	    get_int(fd, SOL_SOCKET, SO_PASSCRED, &cred) < 0 ||
	    sockopt_get_timeo(fd, SO_RCVTIMEO, &ne->rcvtimeo_us) < 0 ||
	    sockopt_get_timeo(fd, SO_SNDTIMEO, &ne->sndtimeo_us) < 0)
		return ckpt_err_errno(e, -errno, "reading its options (getsockopt)");
	ne->has_sndbuf = ne->has_rcvbuf = ne->has_passcred = true;
	ne->has_rcvtimeo_us = ne->has_sndtimeo_us = true;
	ne->sndbuf = (uint32_t)snd;
	ne->rcvbuf = (uint32_t)rcv;
	ne->passcred = cred != 0;
	for (size_t i = 0; i < ARRAY_SIZE(nl_flags); i++) {
		int v;

		if (get_int(fd, SOL_NETLINK, nl_flags[i].opt, &v) < 0)
			return ckpt_err_errno(e, -errno, "reading %s", nl_flags[i].name);
		*flag_has(ne, i) = true;
		*flag_val(ne, i) = v != 0;
	}
	/* with a zero length, SO_GET_FILTER answers the number of BPF instructions */
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &flen) == 0)
		filter = (int)flen;
	if (filter)
		return ckpt_err(e, -EOPNOTSUPP,
				"a socket filter (SO_ATTACH_FILTER, %d instructions) is attached; "
				"not supported",
				filter);
	return 0;
}

/* Port id, destination and queue from sock_diag (a socket never bound is not listed). */
static int dump_state(const struct fd_probe *p, NetlinkSkEntry *ne, struct ckpt_error *e)
{
	struct sockaddr_nl sa = {0};
	socklen_t sl = sizeof(sa);
	struct netlink_diag_info d;
	int r;

	if (getsockname(p->local_fd, (struct sockaddr *)&sa, &sl) < 0)
		return ckpt_err_errno(e, -errno, "getsockname");
	ne->has_portid = true;
	ne->portid = sa.nl_pid;
	r = sockdiag_netlink_find((int)ne->protocol, (uint32_t)ne->inode, &d, e);
	if (r == -ENOENT && !sa.nl_pid && !ne->n_groups)
		return 0; /* never bound: nothing can be queued for it either */
	if (r == -ENOENT)
		return ckpt_err(e, r,
				"sock_diag does not know it (a socket of another network "
				"namespace?); not supported");
	if (r < 0)
		return r;
	if (d.rmem_alloc)
		return ckpt_err(e, -EOPNOTSUPP,
				"messages are queued for reading on it (%u bytes): the kernel's "
				"messages cannot be put back; not supported",
				d.rmem_alloc);
	if (d.flags & NDIAG_FLAG_CB_RUNNING)
		return ckpt_err(e, -EOPNOTSUPP,
				"the kernel is in the middle of a dump reply to it (more messages "
				"to come); not supported");
	if (d.state == NETLINK_CONNECTED) {
		ne->has_connected = ne->connected = true;
		ne->has_dst_portid = ne->has_dst_group = true;
		ne->dst_portid = d.dst_portid;
		ne->dst_group = d.dst_group;
	}
	return 0;
}

static int netlink_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	int type = 0, protocol = -1, r;
	char pn[32], what[PATH_MAX + 64];
	NetlinkSkEntry *ne;

	r = ckpt_fault_inject("netlink-dump", e);
	if (r < 0)
		return r;
	if (p->local_fd < 0)
		return ckpt_err(e, -EOPNOTSUPP, "netlink socket %s: no copy of it (pidfd_getfd)",
				p->link);
	if (get_int(p->local_fd, SOL_SOCKET, SO_TYPE, &type) < 0 ||
	    get_int(p->local_fd, SOL_SOCKET, SO_PROTOCOL, &protocol) < 0)
		return ckpt_err_errno(e, -errno, "netlink socket %s: SO_TYPE, SO_PROTOCOL",
				      p->link);
	r = fdk_dump_common(p, FILE_TYPE__FILE_NETLINK_SK, fe, e);
	if (r < 0)
		return r;
	fe->has_pos = false;
	ne = malloc(sizeof(*ne));
	if (!ne)
		return ckpt_err(e, -ENOMEM, "out of memory");
	netlink_sk_entry__init(ne);
	fe->netlink_sk = ne; /* freed with the entry from now on */
	ne->inode = p->st.st_ino;
	ne->type = (uint32_t)type;
	ne->protocol = (uint32_t)protocol;
	if (!proto_supported(ne->protocol))
		r = ckpt_err(e, -EOPNOTSUPP,
			     "%s sockets are not supported: the kernel keeps state for them "
			     "(registrations, bindings tied to the port id) that ckpt cannot "
			     "read or make again",
			     proto_name(ne->protocol, pn, sizeof(pn)));
	else if (type != SOCK_RAW && type != SOCK_DGRAM)
		r = ckpt_err(e, -EOPNOTSUPP, "socket type %d is not supported", type);
	if (r >= 0)
		r = dump_groups(p->local_fd, ne, e);
	if (r >= 0)
		r = dump_state(p, ne, e);
	if (r >= 0)
		r = dump_options(p->local_fd, ne, e);
	if (r < 0)
		return ckpt_err_wrap(e, "%s", describe(fe, what, sizeof(what)));
	pr_debug("pid %d fd %d: %s protocol %u port id %u, %zu group words\n", p->pid, p->fd,
		 p->link, ne->protocol, ne->portid, ne->n_groups);
	return 0;
}

/* ---- restore ------------------------------------------------------------------ */

static int check_entry(const FileEntry *fe, struct ckpt_error *e)
{
	const NetlinkSkEntry *ne = fe->netlink_sk;
	char pn[32];

	if (fe->type != FILE_TYPE__FILE_NETLINK_SK || !fe->path || strncmp(fe->path, "socket:[", 8))
		return ckpt_err(e, -EINVAL, "files.img: entry %u: not a netlink socket entry",
				fe->id);
	if (!ne)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field netlink_sk: missing",
				fe->id, fe->path);
	if (ne->type != SOCK_RAW && ne->type != SOCK_DGRAM)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field netlink_sk.type: %u",
				fe->id, fe->path, ne->type);
	if (!proto_supported(ne->protocol))
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u (%s): field netlink_sk.protocol: %s", fe->id,
				fe->path, proto_name(ne->protocol, pn, sizeof(pn)));
	if (ne->n_groups > GROUP_WORDS_MAX)
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u (%s): field netlink_sk.groups: %zu words",
				fe->id, fe->path, ne->n_groups);
	return 0;
}

static int new_sock(const FileEntry *fe, int fd_flags, struct ckpt_error *e)
{
	const NetlinkSkEntry *ne = fe->netlink_sk;
	char what[PATH_MAX + 64];
	int fd = socket(AF_NETLINK, (int)ne->type | (fd_flags & O_CLOEXEC ? SOCK_CLOEXEC : 0),
			(int)ne->protocol);

	if (fd < 0)
		return ckpt_err_errno(e, -errno, "%s: socket", describe(fe, what, sizeof(what)));
	return fd;
}

static int do_bind(int fd, const FileEntry *fe, struct ckpt_error *e)
{
	const NetlinkSkEntry *ne = fe->netlink_sk;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK,
				 .nl_pid = ne->has_portid ? ne->portid : 0,
				 .nl_groups = ne->n_groups ? ne->groups[0] : 0};
	char what[PATH_MAX + 64];

	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return ckpt_err_errno(e, -errno,
				      errno == EADDRINUSE ? "%s: its port id is taken by another "
							    "netlink socket"
							  : "%s: bind",
				      describe(fe, what, sizeof(what)));
	return 0;
}

/* The saved port id must be free: bind a probe to it (closed at once). */
static int netlink_verify(const FileEntry *fe, struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	char what[PATH_MAX + 64];
	int r;

	r = ckpt_fault_inject("netlink-verify", e);
	if (r >= 0)
		r = check_entry(fe, e);
	if (r < 0)
		return r;
	fd = new_sock(fe, O_CLOEXEC, e);
	if (fd < 0)
		return fd;
	if (!fe->netlink_sk->has_portid || !fe->netlink_sk->portid)
		return 0;
	sa.nl_pid = fe->netlink_sk->portid;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return ckpt_err_errno(e, -errno,
				      errno == EADDRINUSE ? "%s: its port id is taken by another "
							    "netlink socket"
							  : "%s: bind",
				      describe(fe, what, sizeof(what)));
	return 0;
}

static int set_int(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v));
}

/* Buffer sizes: the kernel doubles what it is given; FORCE passes wmem_max. */
static int set_buf(int fd, int force, int plain, uint32_t saved)
{
	int v = (int)(saved / 2);

	if (set_int(fd, SOL_SOCKET, force, v) == 0)
		return 0;
	return set_int(fd, SOL_SOCKET, plain, v);
}

static int set_options(int fd, const FileEntry *fe, struct ckpt_error *e)
{
	NetlinkSkEntry *ne = fe->netlink_sk;
	char what[PATH_MAX + 64];

	describe(fe, what, sizeof(what));
	if ((ne->has_sndbuf && set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, ne->sndbuf) < 0) ||
	    (ne->has_rcvbuf && set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, ne->rcvbuf) < 0) ||
	    (ne->has_passcred && set_int(fd, SOL_SOCKET, SO_PASSCRED, ne->passcred) < 0) ||
	    (ne->has_rcvtimeo_us && sockopt_set_timeo(fd, SO_RCVTIMEO, ne->rcvtimeo_us) < 0) ||
	    (ne->has_sndtimeo_us && sockopt_set_timeo(fd, SO_SNDTIMEO, ne->sndtimeo_us) < 0))
		return ckpt_err_errno(e, -errno, "%s: setting its options", what);
	for (size_t i = 0; i < ARRAY_SIZE(nl_flags); i++)
		if (*flag_has(ne, i) && *flag_val(ne, i) &&
		    set_int(fd, SOL_NETLINK, nl_flags[i].opt, 1) < 0)
			return ckpt_err_errno(e, -errno, "%s: %s", what, nl_flags[i].name);
	return 0;
}

/* The groups from word first on (bind() took the first 32 when first is 1). */
static int join_groups(int fd, const FileEntry *fe, size_t first, struct ckpt_error *e)
{
	const NetlinkSkEntry *ne = fe->netlink_sk;
	char what[PATH_MAX + 64];

	for (size_t w = first; w < ne->n_groups; w++)
		for (unsigned b = 0; b < 32; b++) {
			int g = (int)(w * 32 + b + 1);

			if (!(ne->groups[w] & (1u << b)))
				continue;
			if (set_int(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g) < 0)
				return ckpt_err_errno(e, -errno, "%s: joining group %d",
						      describe(fe, what, sizeof(what)), g);
		}
	return 0;
}

static int do_connect(int fd, const FileEntry *fe, struct ckpt_error *e)
{
	const NetlinkSkEntry *ne = fe->netlink_sk;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	char what[PATH_MAX + 64];

	if (!ne->has_connected || !ne->connected)
		return 0;
	sa.nl_pid = ne->dst_portid;
	/* connect takes a group mask; the kernel keeps the lowest group of it */
	sa.nl_groups = ne->dst_group && ne->dst_group <= 32 ? 1u << (ne->dst_group - 1) : 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return ckpt_err_errno(e, -errno, "%s: connect to port id %u, group %u",
				      describe(fe, what, sizeof(what)), ne->dst_portid,
				      ne->dst_group);
	return 0;
}

static int netlink_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	const NetlinkSkEntry *ne;
	_cleanup_close_ int fd = -1;
	int r;

	r = ckpt_fault_inject("netlink-open", e);
	if (r >= 0)
		r = check_entry(fe, e);
	if (r < 0)
		return r;
	ne = fe->netlink_sk;
	fd = new_sock(fe, fd_flags, e);
	if (fd < 0)
		return fd;
	r = set_options(fd, fe, e);
	/* bound: bind(); never bound (no port id) but in groups: joined without binding */
	if (r >= 0 && ne->has_portid && ne->portid)
		r = do_bind(fd, fe, e);
	if (r >= 0)
		r = join_groups(fd, fe, ne->has_portid && ne->portid ? 1 : 0, e);
	if (r >= 0)
		r = do_connect(fd, fe, e);
	if (r >= 0)
		r = fdk_set_nonblock(fd, fe, e);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

const struct fd_kind fd_kind_netlink = {
    .name = "netlink socket",
    .matches = netlink_matches,
    .describe = netlink_describe,
    .entry_field = offsetof(FileEntry, netlink_sk),
    .path = FD_PATH_PROC_LINK,
    .dump = netlink_dump,
    .verify = netlink_verify,
    .open = netlink_open,
};
