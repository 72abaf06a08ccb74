/* SPDX-License-Identifier: MIT */
/*
 * nftables through libnftables (nft's own library: the same command language
 * as `nft -f`, no PATH dependency). One table per dump, named by the dump
 * (ckpt_PID_TIME), so that concurrent dumps and restores never touch each
 * other's rules; a whole table is created and deleted in one transaction.
 * See docs/dump.md, "The network lock".
 */
#define LOG_PREFIX "netlock: "

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <nftables/libnftables.h>

#include "caps.h"
#include "cleanup.h"
#include "fault.h"
#include "log.h"
#include "netlock.h"

bool netlock_name_ok(const char *table)
{
	size_t n = table ? strlen(table) : 0;

	/* only tables of ours: an image must not name the system's own */
	if (n <= 5 || n > 64 || strncmp(table, "ckpt_", 5))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(table[i] == '_' || (table[i] >= 'a' && table[i] <= 'z') ||
		      (table[i] >= 'A' && table[i] <= 'Z') || (table[i] >= '0' && table[i] <= '9')))
			return false;
	return true;
}

static void nft_ctx_freep(struct nft_ctx **c)
{
	if (*c)
		nft_ctx_free(*c);
}

/* Run commands; the error text (nft's) into err. */
static int run_nft_raised(const char *cmds, char *err, size_t elen)
{
	struct nft_ctx *ctx __attribute__((cleanup(nft_ctx_freep))) = nft_ctx_new(NFT_CTX_DEFAULT);
	const char *msg;

	err[0] = '\0';
	if (!ctx) {
		snprintf(err, elen, "cannot make a libnftables context");
		return -ENOMEM;
	}
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	if (nft_run_cmd_from_buffer(ctx, cmds) == 0)
		return 0;
	msg = nft_ctx_get_error_buffer(ctx);
	snprintf(err, elen, "%s", msg && msg[0] ? msg : "unknown error");
	err[strcspn(err, "\n")] = '\0';
	return -EIO;
}

/*
 * nftables needs CAP_NET_ADMIN, when its netlink socket is made and when it
 * sends: raised for this call only (caps.h).
 */
static int run_nft(const char *cmds, char *err, size_t elen)
{
	uint64_t saved = caps_raise(CAPS_BIT(CAP_NET_ADMIN));
	int r = run_nft_raised(cmds, err, elen);

	caps_restore(saved);
	return r;
}

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -EINVAL;
		if (*buf && *len + (size_t)n < *cap) {
			*len += (size_t)n;
			return 0;
		}
		size_t nc = (*cap + (size_t)n + 1) * 2;
		char *b = realloc(*buf, nc);

		if (!b)
			return -ENOMEM;
		*buf = b;
		*cap = nc;
	}
}

static int add_rule(char **buf, size_t *len, size_t *cap, const char *table, const char *chain,
		    const struct netlock_conn *c, bool in)
{
	const char *ipk = c->family == AF_INET6 ? "ip6" : "ip";
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];

	inet_ntop(c->family, c->src, s, sizeof(s));
	inet_ntop(c->family, c->dst, d, sizeof(d));
	/* in: from the peer to us; out: from us to the peer */
	if (in)
		return append(buf, len, cap,
			      "add rule inet %s %s %s saddr %s tcp sport %u %s daddr %s tcp dport "
			      "%u drop\n",
			      table, chain, ipk, d, c->dport, ipk, s, c->sport);
	return append(
	    buf, len, cap,
	    "add rule inet %s %s %s saddr %s tcp sport %u %s daddr %s tcp dport %u drop\n", table,
	    chain, ipk, s, c->sport, ipk, d, c->dport);
}

int netlock_lock(const char *table, const struct netlock_conn *c, size_t n, struct ckpt_error *e)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;
	char err[512];
	int r;

	if (!netlock_name_ok(table))
		return ckpt_err(e, -EINVAL, "network lock: bad table name");
	r = ckpt_fault_inject("tcp-lock", e);
	if (r < 0)
		return r;
	/* before conntrack and everything else; policy accept for the rest */
	r = append(&buf, &len, &cap,
		   "add table inet %s\n"
		   "add chain inet %s in { type filter hook input priority -400; policy accept; }\n"
		   "add chain inet %s out { type filter hook output priority -400; policy accept; "
		   "}\n",
		   table, table, table);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		r = add_rule(&buf, &len, &cap, table, "in", &c[i], true);
		if (r >= 0)
			r = add_rule(&buf, &len, &cap, table, "out", &c[i], false);
	}
	if (r < 0)
		return ckpt_err(e, r, "network lock: out of memory");
	r = run_nft(buf, err, sizeof(err));
	if (r < 0)
		return ckpt_err(e, r,
				"network lock: cannot create the nftables table inet %s that "
				"holds the TCP connections during the checkpoint: %s",
				table, err);
	pr_debug("locked %zu connections in table inet %s\n", n, table);
	return 0;
}

int netlock_pass_mark(const char *table, uint32_t mark, struct ckpt_error *e)
{
	char cmd[256], err[512];
	int r;

	if (!netlock_name_ok(table))
		return ckpt_err(e, -EINVAL, "network lock: bad table name");
	/* insert: ahead of the rules that drop */
	snprintf(cmd, sizeof(cmd),
		 "insert rule inet %s in meta mark 0x%x accept\n"
		 "insert rule inet %s out meta mark 0x%x accept\n",
		 table, mark, table, mark);
	r = run_nft(cmd, err, sizeof(err));
	if (r < 0)
		return ckpt_err(e, r,
				"network lock: letting the restore's own packets through the "
				"nftables table inet %s: %s",
				table, err);
	pr_debug("table inet %s passes mark 0x%x\n", table, mark);
	return 0;
}

int netlock_unlock(const char *table, struct ckpt_error *e)
{
	char cmd[128], err[512];
	int r;

	if (!netlock_name_ok(table))
		return ckpt_err(e, -EINVAL, "network lock: bad table name");
	snprintf(cmd, sizeof(cmd), "list table inet %s\n", table);
	if (run_nft(cmd, err, sizeof(err)) < 0) {
		pr_debug("table inet %s is gone already (%s)\n", table, err);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "delete table inet %s\n", table);
	r = run_nft(cmd, err, sizeof(err));
	if (r < 0)
		return ckpt_err(e, r, "network lock: deleting the nftables table inet %s: %s",
				table, err);
	pr_debug("unlocked table inet %s\n", table);
	return 0;
}
