/* SPDX-License-Identifier: MIT */
/*
 * sock_diag through libnl-3: a SOCK_DIAG_BY_FAMILY request built with
 * nlmsg_alloc_simple + nlmsg_append, sent with nl_send_auto, the replies
 * read by nl_recvmsgs with our callbacks and parsed with nlmsg_parse
 * (nla_parse). libnl has no unix_diag helper, so the request and the
 * attributes are the kernel's (linux/unix_diag.h).
 */
#define LOG_PREFIX "sockdiag: "

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/netlink_diag.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "cleanup.h"
#include "log.h"
#include "sockdiag.h"

#define UDIAG_SHOW_ALL                                                                             \
	(UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN)
/* a unix socket has at most a listen backlog of pending connections */
#define ICONS_MAX (1u << 20)

void unix_diag_info_release(struct unix_diag_info *u)
{
	if (!u)
		return;
	free(u->icons);
	u->icons = NULL;
	u->nicons = 0;
}

static struct nla_policy unix_policy[UNIX_DIAG_MAX + 1] = {
    [UNIX_DIAG_NAME] = {.type = NLA_UNSPEC},
    [UNIX_DIAG_VFS] = {.type = NLA_UNSPEC, .minlen = sizeof(struct unix_diag_vfs)},
    [UNIX_DIAG_PEER] = {.type = NLA_U32},
    [UNIX_DIAG_ICONS] = {.type = NLA_UNSPEC},
    [UNIX_DIAG_RQLEN] = {.type = NLA_UNSPEC, .minlen = sizeof(struct unix_diag_rqlen)},
    [UNIX_DIAG_SHUTDOWN] = {.type = NLA_U8},
};

int sockdiag_unix_parse(const struct nlmsghdr *nlh, struct unix_diag_info *ret,
			struct ckpt_error *e)
{
	struct nlattr *tb[UNIX_DIAG_MAX + 1];
	const struct unix_diag_msg *m;
	struct unix_diag_info u = {0};
	int r;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return ckpt_err(e, -EBADMSG, "unix_diag reply of %u bytes is too short",
				nlh->nlmsg_len);
	m = nlmsg_data(nlh);
	if (m->udiag_family != AF_UNIX)
		return ckpt_err(e, -EBADMSG, "unix_diag reply for family %u", m->udiag_family);
	r = nlmsg_parse((struct nlmsghdr *)nlh, sizeof(*m), tb, UNIX_DIAG_MAX, unix_policy);
	if (r < 0)
		return ckpt_err(e, -EBADMSG, "unix_diag reply for inode %u: bad attributes (%s)",
				m->udiag_ino, nl_geterror(r));
	u.ino = m->udiag_ino;
	u.type = m->udiag_type;
	u.state = m->udiag_state;
	if (tb[UNIX_DIAG_NAME]) {
		size_t n = (size_t)nla_len(tb[UNIX_DIAG_NAME]);

		if (n > sizeof(u.name))
			return ckpt_err(e, -EBADMSG, "unix socket inode %u: name of %zu bytes",
					u.ino, n);
		memcpy(u.name, nla_data(tb[UNIX_DIAG_NAME]), n);
		u.name_len = n;
	}
	if (tb[UNIX_DIAG_VFS]) {
		const struct unix_diag_vfs *v = nla_data(tb[UNIX_DIAG_VFS]);

		u.has_vfs = true;
		u.vfs_ino = v->udiag_vfs_ino;
		u.vfs_dev = v->udiag_vfs_dev;
	}
	if (tb[UNIX_DIAG_PEER]) {
		u.has_peer = true;
		u.peer = nla_get_u32(tb[UNIX_DIAG_PEER]);
	}
	if (tb[UNIX_DIAG_RQLEN]) {
		const struct unix_diag_rqlen *q = nla_data(tb[UNIX_DIAG_RQLEN]);

		u.has_rqlen = true;
		u.rqueue = q->udiag_rqueue;
		u.wqueue = q->udiag_wqueue;
	}
	if (tb[UNIX_DIAG_SHUTDOWN])
		u.shutdown = nla_get_u8(tb[UNIX_DIAG_SHUTDOWN]);
	if (tb[UNIX_DIAG_ICONS]) {
		size_t n = (size_t)nla_len(tb[UNIX_DIAG_ICONS]) / sizeof(uint32_t);

		if (n > ICONS_MAX)
			return ckpt_err(e, -EBADMSG,
					"unix socket inode %u: %zu pending connections", u.ino, n);
		if (n) {
			u.icons = malloc(n * sizeof(uint32_t));
			if (!u.icons)
				return ckpt_err(e, -ENOMEM, "out of memory");
			memcpy(u.icons, nla_data(tb[UNIX_DIAG_ICONS]), n * sizeof(uint32_t));
			u.nicons = n;
		}
	}
	*ret = u;
	return 0;
}

/* One request and its replies. */
struct diag_call {
	struct ckpt_error *e;
	int err;     /* from the kernel's NLMSG_ERROR, or from parsing / cb */
	bool filled; /* err came with e filled (parsing, cb) */
	/* exact lookup: the one reply */
	struct unix_diag_info *one;
	bool got;
	/* dump: called for each */
	sockdiag_unix_cb cb;
	void *arg;
	/* INET_DIAG: each reply handed over as is */
	int (*raw)(const struct nlmsghdr *nlh, struct diag_call *c);
	uint32_t want_ino;
	struct inet_diag_info *inet;
	struct netlink_diag_info *nl;
};

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct diag_call *c = arg;
	struct unix_diag_info u;
	int r;

	if (c->raw) {
		r = c->raw(nlmsg_hdr(msg), c);
		if (r < 0) {
			c->err = r;
			c->filled = true;
			return NL_STOP;
		}
		return NL_OK;
	}
	r = sockdiag_unix_parse(nlmsg_hdr(msg), &u, c->e);
	if (r < 0) {
		c->err = r;
		c->filled = true;
		return NL_STOP;
	}
	if (c->one) {
		unix_diag_info_release(c->one);
		*c->one = u;
		c->got = true;
		return NL_OK;
	}
	r = c->cb(&u, c->arg);
	unix_diag_info_release(&u);
	if (r < 0) {
		c->err = r;
		c->filled = true;
		return NL_STOP;
	}
	return NL_OK;
}

static int on_error(struct sockaddr_nl *nla, struct nlmsgerr *err, void *arg)
{
	struct diag_call *c = arg;

	(void)nla;
	c->err = err->error < 0 ? err->error : -EIO;
	return NL_STOP;
}

static void nl_sock_freep(struct nl_sock **s)
{
	if (*s)
		nl_socket_free(*s);
}

static void nl_cb_putp(struct nl_cb **cb)
{
	if (*cb)
		nl_cb_put(*cb);
}

static void nlmsg_freep(struct nl_msg **m)
{
	if (*m)
		nlmsg_free(*m);
}

static int sd_call(const void *req, size_t req_len, uint16_t flags, struct diag_call *c,
		   const char *what)
{
	struct nl_sock *sk __attribute__((cleanup(nl_sock_freep))) = nl_socket_alloc();
	struct nl_cb *cb __attribute__((cleanup(nl_cb_putp))) = nl_cb_alloc(NL_CB_DEFAULT);
	struct nl_msg *msg __attribute__((cleanup(nlmsg_freep))) = NULL;
	struct ckpt_error *e = c->e;
	int r;

	if (!sk || !cb)
		return ckpt_err(e, -ENOMEM, "out of memory for a netlink socket");
	r = nl_connect(sk, NETLINK_SOCK_DIAG);
	if (r < 0)
		return ckpt_err(e, -EIO, "sock_diag: cannot open a NETLINK_SOCK_DIAG socket (%s)",
				nl_geterror(r));
	/* a lookup answers with its reply or an error, never an ack */
	nl_socket_disable_auto_ack(sk);
	msg = nlmsg_alloc_simple(SOCK_DIAG_BY_FAMILY, flags);
	if (!msg)
		return ckpt_err(e, -ENOMEM, "out of memory for a netlink message");
	r = nlmsg_append(msg, (void *)req, req_len, NLMSG_ALIGNTO);
	if (r < 0)
		return ckpt_err(e, -ENOMEM, "sock_diag request: %s", nl_geterror(r));
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, c);
	nl_cb_err(cb, NL_CB_CUSTOM, on_error, c);
	r = nl_send_auto(sk, msg);
	if (r < 0)
		return ckpt_err(e, -EIO, "sock_diag: sending %s: %s", what, nl_geterror(r));
	r = nl_recvmsgs(sk, cb);
	if (c->err < 0) {
		/* the parser or cb filled e already; the kernel's errors did not */
		if (!c->filled)
			return ckpt_err_errno(e, c->err, "sock_diag: %s", what);
		return c->err;
	}
	if (r < 0)
		return ckpt_err(e, -EIO, "sock_diag: reading the replies to %s: %s", what,
				nl_geterror(r));
	return 0;
}

int sockdiag_unix_get(uint32_t ino, struct unix_diag_info *ret, struct ckpt_error *e)
{
	struct unix_diag_req req = {
	    .sdiag_family = AF_UNIX,
	    .udiag_ino = ino,
	    .udiag_show = UDIAG_SHOW_ALL,
	    .udiag_cookie = {~0U, ~0U}, /* INET_DIAG_NOCOOKIE: any socket with that inode */
	};
	struct diag_call c = {.e = e, .one = ret};
	char what[64];
	int r;

	memset(ret, 0, sizeof(*ret));
	snprintf(what, sizeof(what), "unix socket inode %u", ino);
	r = sd_call(&req, sizeof(req), NLM_F_REQUEST, &c, what);
	if (r < 0)
		return r;
	if (!c.got)
		return ckpt_err(e, -ENOENT, "sock_diag: no reply for %s", what);
	pr_debug("unix inode %u: type %u state %u peer %u name %zu bytes, %zu pending\n", ino,
		 ret->type, ret->state, ret->peer, ret->name_len, ret->nicons);
	return 0;
}

int sockdiag_unix_dump(uint32_t states, sockdiag_unix_cb cb, void *arg, struct ckpt_error *e)
{
	struct unix_diag_req req = {
	    .sdiag_family = AF_UNIX,
	    .udiag_states = states,
	    .udiag_show = UDIAG_SHOW_ALL,
	};
	struct diag_call c = {.e = e, .cb = cb, .arg = arg};

	return sd_call(&req, sizeof(req), NLM_F_REQUEST | NLM_F_DUMP, &c, "listing unix sockets");
}

/* ---- INET_DIAG -------------------------------------------------------------------- */

static struct nla_policy inet_policy[INET_DIAG_MAX + 1] = {
    [INET_DIAG_SHUTDOWN] = {.type = NLA_U8},
};

static int inet_one(const struct nlmsghdr *nlh, struct diag_call *c)
{
	struct nlattr *tb[INET_DIAG_MAX + 1];
	const struct inet_diag_msg *m;
	struct inet_diag_info *i = c->inet;
	int r;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return ckpt_err(c->e, -EBADMSG, "inet_diag reply of %u bytes is too short",
				nlh->nlmsg_len);
	m = nlmsg_data(nlh);
	if (m->idiag_inode != c->want_ino || c->got)
		return 0;
	r = nlmsg_parse((struct nlmsghdr *)nlh, sizeof(*m), tb, INET_DIAG_MAX, inet_policy);
	if (r < 0)
		return ckpt_err(c->e, -EBADMSG, "inet_diag reply for inode %u: bad attributes (%s)",
				m->idiag_inode, nl_geterror(r));
	memset(i, 0, sizeof(*i));
	i->ino = m->idiag_inode;
	i->family = m->idiag_family;
	i->state = m->idiag_state;
	i->rqueue = m->idiag_rqueue;
	i->wqueue = m->idiag_wqueue;
	i->sport = ntohs(m->id.idiag_sport);
	i->dport = ntohs(m->id.idiag_dport);
	if (tb[INET_DIAG_SHUTDOWN])
		i->shutdown = nla_get_u8(tb[INET_DIAG_SHUTDOWN]);
	i->md5sig = tb[INET_DIAG_MD5SIG] != NULL;
	c->got = true;
	return 0;
}

int sockdiag_inet_find(int family, int protocol, uint32_t ino, struct inet_diag_info *ret,
		       struct ckpt_error *e)
{
	struct inet_diag_req_v2 req = {
	    .sdiag_family = (uint8_t)family,
	    .sdiag_protocol = (uint8_t)protocol,
	    .idiag_states = ~0u,
	    /* INET_DIAG_INFO: the kernel adds TCP's aux attributes (MD5SIG) only with it */
	    .idiag_ext = 1 << (INET_DIAG_SHUTDOWN - 1) | 1 << (INET_DIAG_INFO - 1),
	};
	struct diag_call c = {.e = e, .raw = inet_one, .want_ino = ino, .inet = ret};
	const char *pname = protocol == IPPROTO_TCP	  ? "TCP"
			    : protocol == IPPROTO_UDPLITE ? "UDP-Lite"
							  : "UDP";
	char what[80];
	int r;

	memset(ret, 0, sizeof(*ret));
	snprintf(what, sizeof(what), "listing %s sockets (inode %u)", pname, ino);
	r = sd_call(&req, sizeof(req), NLM_F_REQUEST | NLM_F_DUMP, &c, what);
	if (r < 0)
		return r;
	if (!c.got)
		return ckpt_err(e, -ENOENT, "sock_diag: no %s socket with inode %u", pname, ino);
	pr_debug("inet inode %u: family %u state %u rq %u wq %u shutdown %u\n", ino, ret->family,
		 ret->state, ret->rqueue, ret->wqueue, ret->shutdown);
	return 0;
}

/* ---- NETLINK_DIAG ----------------------------------------------------------------- */

static struct nla_policy netlink_policy[NETLINK_DIAG_MAX + 1] = {
    [NETLINK_DIAG_MEMINFO] = {.type = NLA_UNSPEC,
			      .minlen = (SK_MEMINFO_RMEM_ALLOC + 1) * sizeof(uint32_t)},
    [NETLINK_DIAG_FLAGS] = {.type = NLA_U32},
};

static int netlink_one(const struct nlmsghdr *nlh, struct diag_call *c)
{
	struct nlattr *tb[NETLINK_DIAG_MAX + 1];
	const struct netlink_diag_msg *m;
	struct netlink_diag_info *i = c->nl;
	int r;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return ckpt_err(c->e, -EBADMSG, "netlink_diag reply of %u bytes is too short",
				nlh->nlmsg_len);
	m = nlmsg_data(nlh);
	if (m->ndiag_ino != c->want_ino || c->got)
		return 0;
	r = nlmsg_parse((struct nlmsghdr *)nlh, sizeof(*m), tb, NETLINK_DIAG_MAX, netlink_policy);
	if (r < 0)
		return ckpt_err(c->e, -EBADMSG,
				"netlink_diag reply for inode %u: bad attributes (%s)",
				m->ndiag_ino, nl_geterror(r));
	memset(i, 0, sizeof(*i));
	i->ino = m->ndiag_ino;
	i->type = m->ndiag_type;
	i->protocol = m->ndiag_protocol;
	i->state = m->ndiag_state;
	i->portid = m->ndiag_portid;
	i->dst_portid = m->ndiag_dst_portid;
	i->dst_group = m->ndiag_dst_group;
	if (tb[NETLINK_DIAG_MEMINFO])
		i->rmem_alloc =
		    ((const uint32_t *)nla_data(tb[NETLINK_DIAG_MEMINFO]))[SK_MEMINFO_RMEM_ALLOC];
	if (tb[NETLINK_DIAG_FLAGS])
		i->flags = nla_get_u32(tb[NETLINK_DIAG_FLAGS]);
	c->got = true;
	return 0;
}

int sockdiag_netlink_find(int protocol, uint32_t ino, struct netlink_diag_info *ret,
			  struct ckpt_error *e)
{
	struct netlink_diag_req req = {
	    .sdiag_family = AF_NETLINK,
	    .sdiag_protocol = (uint8_t)protocol,
	    .ndiag_show = NDIAG_SHOW_MEMINFO | NDIAG_SHOW_FLAGS,
	};
	struct diag_call c = {.e = e, .raw = netlink_one, .want_ino = ino, .nl = ret};
	char what[80];
	int r;

	memset(ret, 0, sizeof(*ret));
	snprintf(what, sizeof(what), "listing netlink sockets of protocol %d (inode %u)", protocol,
		 ino);
	r = sd_call(&req, sizeof(req), NLM_F_REQUEST | NLM_F_DUMP, &c, what);
	if (r < 0)
		return r;
	if (!c.got)
		return ckpt_err(e, -ENOENT, "sock_diag: no netlink socket with inode %u", ino);
	pr_debug("netlink inode %u: protocol %u portid %u state %u rmem %u flags %#x\n", ino,
		 ret->protocol, ret->portid, ret->state, ret->rmem_alloc, ret->flags);
	return 0;
}
