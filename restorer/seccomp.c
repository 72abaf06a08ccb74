/* SPDX-License-Identifier: MIT */
/*
 * Stage seccomp: the seccomp filters (and strict mode) of every thread.
 *
 * Where: after memory, before creds. Installing a filter needs
 * CAP_SYS_ADMIN or no_new_privs in the installing thread, and a program
 * that installed its filter as root and dropped its capabilities afterwards
 * (what service managers do) has neither in its saved state; so the filters
 * go in while the task still holds the restorer's privileges. From then on
 * every thread of the task is traced with PTRACE_O_SUSPEND_SECCOMP, so the
 * filters cannot block any remote call of the later stages (credentials,
 * signals, the final munmap of the gadget): for the program itself they
 * are the last thing restored, in force from its first instruction.
 *
 * Sharing: the dump saves the filters as a tree (core.proto SeccompFilter,
 * a node per program and previous node), each thread naming its newest
 * node. The longest chain prefix that every thread of the task has (same
 * nodes) is installed once by the main thread with SECCOMP_FILTER_FLAG_TSYNC
 * (the other threads have no filter yet, so they all take it), and the rest
 * of each thread's chain by that thread itself, oldest first. Threads that
 * shared a chain thus share it again; a suffix shared by some threads only
 * is installed once per thread (same programs, separate kernel objects:
 * nothing a program can observe).
 */
#define LOG_PREFIX "seccomp: "

#include <errno.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "cleanup.h"
#include "log.h"
#include "restore.h"

#define SECCOMP_INSNS_MAX 4096
/* struct sock_fprog, then the program, in a scratch area of the task */
#define FPROG_HDR 16

int seccomp_validate(struct restore_ctx *ctx, const char *f, const CoreEntry *c)
{
	struct ckpt_error *e = &ctx->err;

	for (size_t i = 0; i < c->n_seccomp_filters; i++) {
		const SeccompFilter *sf = c->seccomp_filters[i];

		if (sf->prog.len % 8 || sf->prog.len == 0 || sf->prog.len > SECCOMP_INSNS_MAX * 8)
			return ckpt_err(e, -EINVAL,
					"%s: field seccomp_filters[%zu].prog: %zu bytes is not a "
					"classic BPF program of 1..%d instructions",
					f, i, sf->prog.len, SECCOMP_INSNS_MAX);
		/* a filter's prev comes before it: chains end, no cycles */
		if (sf->has_prev && sf->prev > i)
			return ckpt_err(e, -EINVAL,
					"%s: field seccomp_filters[%zu].prev: %u does not name an "
					"earlier filter",
					f, i, sf->prev);
		if (sf->has_flags && (sf->flags & ~(uint64_t)SECCOMP_FILTER_FLAG_LOG))
			return ckpt_err(e, -EINVAL,
					"%s: field seccomp_filters[%zu].flags: %#" PRIx64
					" has flags other than SECCOMP_FILTER_FLAG_LOG",
					f, i, sf->flags);
	}
	for (size_t i = 0; i < c->n_threads; i++) {
		const ThreadCore *tc = c->threads[i];
		uint32_t mode = tc->has_seccomp_mode ? tc->seccomp_mode : 0;

		if (mode > SECCOMP_MODE_FILTER)
			return ckpt_err(
			    e, -EINVAL,
			    "%s: field threads[%zu].seccomp_mode: %u is out of range 0..2", f, i,
			    mode);
		if (mode == SECCOMP_MODE_FILTER &&
		    (!tc->has_seccomp_filter || tc->seccomp_filter == 0 ||
		     tc->seccomp_filter > c->n_seccomp_filters))
			return ckpt_err(
			    e, -EINVAL,
			    "%s: field threads[%zu].seccomp_filter: filter mode without "
			    "a valid filter",
			    f, i);
		if (mode != SECCOMP_MODE_FILTER && tc->has_seccomp_filter && tc->seccomp_filter)
			return ckpt_err(
			    e, -EINVAL,
			    "%s: field threads[%zu].seccomp_filter: set in seccomp mode %u", f, i,
			    mode);
	}
	return 0;
}

/* One thread of the task: its session (in t->rsys while it is worked on) and chain. */
struct sc_thread {
	struct rthread *th; /* NULL for the main thread */
	const ThreadCore *tc;
	uint32_t *chain; /* node indices (0-based), oldest first */
	size_t n;
};

static int chain_of(const CoreEntry *c, const ThreadCore *tc, struct sc_thread *st,
		    struct ckpt_error *e)
{
	size_t n = 0;

	if (!tc->has_seccomp_mode || tc->seccomp_mode != SECCOMP_MODE_FILTER)
		return 0;
	for (uint32_t k = tc->seccomp_filter; k; k = c->seccomp_filters[k - 1]->prev)
		n++;
	st->chain = calloc(n, sizeof(*st->chain));
	if (!st->chain)
		return ckpt_err(e, -ENOMEM, "out of memory");
	st->n = n;
	for (uint32_t k = tc->seccomp_filter; k; k = c->seccomp_filters[k - 1]->prev)
		st->chain[--n] = k - 1;
	return 0;
}

/* How many leading filters every thread's chain has in common. */
static size_t common_prefix(const struct sc_thread *st, size_t n)
{
	size_t len = st[0].n;

	for (size_t i = 1; i < n; i++) {
		size_t k = 0;

		while (k < len && k < st[i].n && st[i].chain[k] == st[0].chain[k])
			k++;
		len = k;
	}
	return len;
}

static void swap_in(struct rtask *t, struct sc_thread *st)
{
	if (st->th)
		threads_swap_rsys(t, st->th);
}

static int install(struct restore_ctx *ctx, struct rtask *t, pid_t tid, uint64_t area,
		   const SeccompFilter *sf, uint32_t idx, bool tsync)
{
	struct ckpt_error *e = &ctx->err;
	struct {
		uint16_t len;
		uint16_t pad[3];
		uint64_t filter;
	} fprog = {.len = (uint16_t)(sf->prog.len / 8), .filter = area + FPROG_HDR};
	uint64_t flags = (sf->has_flags ? sf->flags : 0) | (tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0);
	long res = 0;
	int r;

	/* Where the machine lets a task choose its speculation controls, a
	 * filter without SPEC_ALLOW may force them off; the dump saved them as
	 * they were (and the program's own filter had its part in that):
	 * stage procstate sets them exactly, the filter must not change them */
	if (t->thread->has_spec_store_bypass || t->thread->has_spec_indirect_branch)
		flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;

	r = remote_write(t->pid, area, &fprog, sizeof(fprog), e);
	if (r >= 0)
		r = remote_write(t->pid, area + FPROG_HDR, sf->prog.data, sf->prog.len, e);
	/* CAP_SYS_ADMIN (no_new_privs comes at creds), for this call only */
	if (r >= 0)
		r = rtask_caps(ctx, t, true);
	if (r >= 0)
		r = rcall(t, e, __NR_seccomp, RARGS(SECCOMP_SET_MODE_FILTER, flags, area), &res,
			  "thread %d: seccomp(SECCOMP_SET_MODE_FILTER, filter %u, %zu "
			  "instructions%s)",
			  tid, idx, sf->prog.len / 8, tsync ? ", TSYNC" : "");
	if (r >= 0)
		r = rtask_caps(ctx, t, false);
	/* TSYNC: a positive result is the thread that could not take the filter */
	if (r >= 0 && res > 0)
		r = ckpt_err(e, -EBUSY,
			     "pid %d: seccomp filter %u: thread %ld could not share it (TSYNC)",
			     t->pid, idx, res);
	return r;
}

static int restore_threads(struct restore_ctx *ctx, struct rtask *t, struct sc_thread *st, size_t n,
			   uint64_t area)
{
	const CoreEntry *c = t->core;
	size_t shared = n > 1 ? common_prefix(st, n) : 0;
	int r = 0;

	/* the main thread (st[0]) gives the shared prefix to every thread */
	for (size_t k = 0; r >= 0 && k < shared; k++)
		r = install(ctx, t, t->pid, area, c->seccomp_filters[st[0].chain[k]],
			    st[0].chain[k], true);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		pid_t tid = st[i].tc->tid;

		swap_in(t, &st[i]);
		for (size_t k = shared; r >= 0 && k < st[i].n; k++)
			r = install(ctx, t, tid, area, c->seccomp_filters[st[i].chain[k]],
				    st[i].chain[k], false);
		if (r >= 0 && st[i].tc->has_seccomp_mode &&
		    st[i].tc->seccomp_mode == SECCOMP_MODE_STRICT)
			r = rcall(t, &ctx->err, __NR_prctl,
				  RARGS(PR_SET_SECCOMP, SECCOMP_MODE_STRICT), NULL,
				  "thread %d: prctl(PR_SET_SECCOMP, strict)", tid);
		swap_in(t, &st[i]);
	}
	return r;
}

static int task_seccomp(struct restore_ctx *ctx, struct rtask *t, struct sc_thread *st, size_t n)
{
	struct ckpt_error *e = &ctx->err;
	size_t len = 0;
	long area = 0;
	int r = 0;

	for (size_t i = 0; i < t->core->n_seccomp_filters; i++)
		if (t->core->seccomp_filters[i]->prog.len > len)
			len = t->core->seccomp_filters[i]->prog.len;
	/* before the first filter: no remote call must ever meet one */
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = ptrace_suspend_seccomp(st[i].tc->tid, e);
	if (r >= 0 && len)
		r = rcall(t, e, __NR_mmap,
			  RARGS(0, FPROG_HDR + len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0),
			  &area, "mmap of %zu bytes for the seccomp filters", FPROG_HDR + len);
	if (r >= 0)
		r = restore_threads(ctx, t, st, n, (uint64_t)area);
	if (area && r >= 0)
		r = rcall(t, e, __NR_munmap, RARGS((uint64_t)area, FPROG_HDR + len), NULL,
			  "munmap of the seccomp filters' scratch area");
	return r;
}

int seccomp_restore_task(struct restore_ctx *ctx, struct rtask *t)
{
	size_t n = 1 + t->n_threads;
	_cleanup_free_ struct sc_thread *st = calloc(n, sizeof(*st));
	bool any = false;
	int r = 0;

	if (!st)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	st[0].tc = t->thread;
	for (size_t i = 1; i < n; i++) {
		st[i].th = &t->threads[i - 1];
		st[i].tc = t->threads[i - 1].core;
	}
	for (size_t i = 0; r >= 0 && i < n; i++) {
		any |= st[i].tc->has_seccomp_mode && st[i].tc->seccomp_mode != 0;
		r = chain_of(t->core, st[i].tc, &st[i], &ctx->err);
	}
	if (r >= 0 && any)
		r = task_seccomp(ctx, t, st, n);
	for (size_t i = 0; i < n; i++)
		free(st[i].chain);
	return r;
}
