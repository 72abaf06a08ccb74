/* SPDX-License-Identifier: MIT */
/*
 * Seccomp filters of a process, per thread. Every thread in filter mode has
 * a chain of filters; PTRACE_SECCOMP_GET_FILTER reads them from the frozen
 * thread, index 0 the oldest (the kernel counts back from the newest:
 * get_nth_filter()), the order they were installed in, which matters: of
 * two filters returning the same action, the newest one's data wins. The kernel shares a chain
 * between the threads that inherited it or got it with SECCOMP_FILTER_FLAG_TSYNC; it does not tell
 * whether two filters are one object, so filters are saved as a tree keyed by content: one
 * CoreEntry.seccomp_filters node per (program, flags, previous node), and ThreadCore.seccomp_filter
 * names the thread's newest node. Threads with equal chains thus point at the same node, and the
 * restorer installs what they share once (TSYNC).
 *
 * The filters do not get in the way of the dump: every thread under seccomp
 * is traced with PTRACE_O_SUSPEND_SECCOMP (seize.c).
 */
#define LOG_PREFIX "dump seccomp: "

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "dump_internal.h"
#include "log.h"

/* BPF_MAXINSNS per filter; the kernel allows 32768 instructions per chain */
#define SECCOMP_INSNS_MAX 4096
#define SECCOMP_CHAIN_MAX 8192

/* A filter that hands syscalls to a user-space supervisor: the listener fd
 * lives elsewhere and can't be recreated with the filter. */
static bool returns_user_notif(const struct sock_filter *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].code == (BPF_RET | BPF_K) &&
		    (f[i].k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF)
			return true;
	return false;
}

/* Index + 1 of the node (prog, flags, prev), added if new. */
static int filter_node(CoreEntry *core, void *prog, size_t ninsn, uint64_t flags, uint32_t prev,
		       uint32_t *ret, struct ckpt_error *e)
{
	SeccompFilter **n, *f;

	for (size_t i = 0; i < core->n_seccomp_filters; i++) {
		f = core->seccomp_filters[i];
		if (f->prev == prev && f->flags == flags && f->prog.len == ninsn * 8 &&
		    !memcmp(f->prog.data, prog, ninsn * 8)) {
			free(prog);
			*ret = (uint32_t)i + 1;
			return 0;
		}
	}
	n = realloc(core->seccomp_filters, (core->n_seccomp_filters + 1) * sizeof(*n));
	if (!n) {
		free(prog);
		return ckpt_err(e, -ENOMEM, "out of memory");
	}
	core->seccomp_filters = n;
	f = calloc(1, sizeof(*f));
	if (!f) {
		free(prog);
		return ckpt_err(e, -ENOMEM, "out of memory");
	}
	seccomp_filter__init(f);
	f->prog.data = prog;
	f->prog.len = ninsn * 8;
	f->has_flags = true;
	f->flags = flags;
	f->has_prev = true;
	f->prev = prev;
	n[core->n_seccomp_filters++] = f;
	*ret = (uint32_t)core->n_seccomp_filters;
	return 0;
}

struct chain_item {
	void *prog;
	size_t ninsn;
	uint64_t flags;
};

static void chain_free(struct chain_item *c, size_t n)
{
	while (n)
		free(c[--n].prog);
	free(c);
}

/* The chain of a thread, oldest first, as PTRACE_SECCOMP_GET_FILTER numbers it. */
static int read_chain(pid_t pid, pid_t tid, struct chain_item **ret, size_t *ret_n,
		      struct ckpt_error *e)
{
	struct chain_item *c = NULL;
	size_t n = 0;
	int r = 0;

	for (;;) {
		struct chain_item it = {0}, *nc;

		if (n >= SECCOMP_CHAIN_MAX) {
			r = ckpt_err(e, -E2BIG, "pid %d: thread %d: more than %d seccomp filters",
				     pid, tid, SECCOMP_CHAIN_MAX);
			break;
		}
		r = ptrace_get_seccomp_filter(tid, (unsigned)n, &it.prog, &it.ninsn, &it.flags, e);
		if (r <= 0)
			break;
		nc = realloc(c, (n + 1) * sizeof(*c));
		if (!nc) {
			free(it.prog);
			r = ckpt_err(e, -ENOMEM, "out of memory");
			break;
		}
		c = nc;
		c[n++] = it;
		if (it.ninsn == 0 || it.ninsn > SECCOMP_INSNS_MAX) {
			r = ckpt_err(e, -EOPNOTSUPP,
				     "pid %d: thread %d: seccomp filter %zu has %zu instructions",
				     pid, tid, n - 1, it.ninsn);
			break;
		}
		if (returns_user_notif(it.prog, it.ninsn)) {
			r = ckpt_err(
			    e, -EOPNOTSUPP,
			    "pid %d: thread %d: seccomp filter %zu hands syscalls to a "
			    "user-space supervisor (SECCOMP_RET_USER_NOTIF); not supported",
			    pid, tid, n - 1);
			break;
		}
	}
	if (r >= 0 && n == 0)
		r = ckpt_err(e, -EIO, "pid %d: thread %d: in seccomp filter mode without a filter",
			     pid, tid);
	if (r < 0) {
		chain_free(c, n);
		return r;
	}
	*ret = c;
	*ret_n = n;
	return 0;
}

static int dump_thread_filters(pid_t pid, ThreadCore *tc, CoreEntry *core, struct ckpt_error *e)
{
	struct chain_item *c = NULL;
	size_t n = 0;
	uint32_t prev = 0;
	int r;

	r = read_chain(pid, tc->tid, &c, &n, e);
	if (r < 0)
		return r;
	/* each node's prev is the one installed before it */
	for (size_t i = 0; i < n; i++) {
		r = filter_node(core, c[i].prog, c[i].ninsn, c[i].flags, prev, &prev, e);
		c[i].prog = NULL; /* taken or freed by filter_node */
		if (r < 0)
			break;
	}
	chain_free(c, n);
	if (r < 0)
		return r;
	tc->has_seccomp_filter = true;
	tc->seccomp_filter = prev;
	return 0;
}

int dump_seccomp(struct dump_task *t, CoreEntry *core, struct ckpt_error *e)
{
	for (size_t i = 0; i < core->n_threads; i++) {
		ThreadCore *tc = core->threads[i];

		if (tc->seccomp_mode != SECCOMP_MODE_FILTER)
			continue;
		int r = dump_thread_filters(t->pid, tc, core, e);

		if (r < 0)
			return r;
		pr_debug("pid %d: thread %d: seccomp chain ends at filter %u", t->pid, tc->tid,
			 tc->seccomp_filter);
	}
	return 0;
}
