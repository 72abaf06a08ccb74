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
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
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

/*
 * libnftables is loaded when a lock is made or deleted, not linked: it and
 * the five libraries it needs are 31 areas of every process that links
 * them, and each of the restorer's tasks is a fork of the restorer, whose
 * areas every fork copies (docs/restore.md, "What a fork hands down").
 * Kept loaded once loaded (RTLD_NODELETE): its functions are looked up at
 * each call, and no state of ours outlives the call.
 */
#define NFT_SONAME "libnftables.so.1"

struct nft_lib {
	void *handle;
	typeof(&nft_ctx_new) ctx_new;
	typeof(&nft_ctx_free) ctx_free;
	typeof(&nft_ctx_buffer_output) buffer_output;
	typeof(&nft_ctx_buffer_error) buffer_error;
	typeof(&nft_run_cmd_from_buffer) run_cmd;
	typeof(&nft_ctx_get_error_buffer) error_buffer;
};

static void nft_lib_close(struct nft_lib *l)
{
	if (l->handle)
		dlclose(l->handle);
}

static int nft_lib_open(struct nft_lib *l, char *err, size_t elen)
{
	static const struct {
		const char *name;
		size_t off;
	} syms[] = {
	    {"nft_ctx_new", offsetof(struct nft_lib, ctx_new)},
	    {"nft_ctx_free", offsetof(struct nft_lib, ctx_free)},
	    {"nft_ctx_buffer_output", offsetof(struct nft_lib, buffer_output)},
	    {"nft_ctx_buffer_error", offsetof(struct nft_lib, buffer_error)},
	    {"nft_run_cmd_from_buffer", offsetof(struct nft_lib, run_cmd)},
	    {"nft_ctx_get_error_buffer", offsetof(struct nft_lib, error_buffer)},
	};

	l->handle = dlopen(NFT_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!l->handle) {
		snprintf(err, elen, "cannot load %s (Debian package libnftables1): %s", NFT_SONAME,
			 dlerror());
		return -ENOENT;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *f = dlsym(l->handle, syms[i].name);

		if (!f) {
			snprintf(err, elen, "%s has no %s", NFT_SONAME, syms[i].name);
			return -ENOENT;
		}
		memcpy((char *)l + syms[i].off, &f, sizeof(f));
	}
	return 0;
}

/* Run commands; the error text (nft's) into err. */
static int run_nft_raised(const char *cmds, char *err, size_t elen)
{
	struct nft_lib lib __attribute__((cleanup(nft_lib_close))) = {0};
	struct nft_ctx *ctx;
	const char *msg;
	int r;

	err[0] = '\0';
	r = nft_lib_open(&lib, err, elen);
	if (r < 0)
		return r;
	ctx = lib.ctx_new(NFT_CTX_DEFAULT);
	if (!ctx) {
		snprintf(err, elen, "cannot make a libnftables context");
		return -ENOMEM;
	}
	lib.buffer_output(ctx);
	lib.buffer_error(ctx);
	r = lib.run_cmd(ctx, cmds) == 0 ? 0 : -EIO;
	if (r < 0) {
		msg = lib.error_buffer(ctx);
		snprintf(err, elen, "%s", msg && msg[0] ? msg : "unknown error");
		err[strcspn(err, "\n")] = '\0';
	}
	lib.ctx_free(ctx);
	return r;
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
