/* SPDX-License-Identifier: MIT */
/*
 * Stage creds: resource limits and credentials, by remote syscalls, after
 * everything that needs privilege or room (mapping memory, PR_SET_MM_MAP,
 * set_tid for the children). Limits are set here and not in the task
 * itself because a lowered RLIMIT_AS/RLIMIT_DATA/RLIMIT_NOFILE would make
 * the memory stage fail.
 *
 * Credentials, in an order where each step still has the capability it
 * needs: securebits NO_SETUID_FIXUP (changing uids leaves the capability
 * sets alone), bounding set drops, groups, gids, uids, fs ids; capset with
 * CAP_SETPCAP kept; ambient caps; the saved securebits (needs CAP_SETPCAP);
 * the final capset (a pure reduction); no_new_privs; dumpable last (setuid
 * resets it).
 *
 * All of this is per thread in the kernel (a thread may have dropped a
 * capability, set no_new_privs or other securebits on its own): each thread
 * gets its own saved credentials (ThreadCore.creds, the process's when the
 * image has none), by remote calls made in that thread.
 */
#define LOG_PREFIX "creds: "

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/securebits.h>

#include "cleanup.h"
#include "log.h"
#include "proc.h"
#include "restore.h"

static int restore_rlimits(struct restore_ctx *ctx, struct rtask *t)
{
	const CoreEntry *c = t->core;

	for (size_t i = 0; i < c->n_rlimits; i++) {
		const Rlimit *rl = c->rlimits[i];
		struct rlimit cur, want;
		int r;

		/* the task's own (inherited from us: our ids let us read it); one
		 * already as saved is not set again (most are: half the system
		 * calls of this stage in a tree of processes) */
		if (prlimit(t->pid, (int)rl->resource, NULL, &cur) < 0 &&
		    getrlimit((int)rl->resource, &cur) < 0)
			return ckpt_err_errno(&ctx->err, -errno, "getrlimit(%u)", rl->resource);
		/* never raise a hard limit: we lack CAP_SYS_RESOURCE */
		want.rlim_max = rl->max < cur.rlim_max ? rl->max : cur.rlim_max;
		want.rlim_cur = rl->cur < want.rlim_max ? rl->cur : want.rlim_max;
		if (want.rlim_max != rl->max)
			pr_info("pid %d: rlimit %u: hard limit %" PRIu64 " lowered to ours (%llu)",
				t->pid, rl->resource, rl->max, (unsigned long long)cur.rlim_max);
		if (want.rlim_cur == cur.rlim_cur && want.rlim_max == cur.rlim_max)
			continue;
		/* From here: the task still has our ids (forked from us), so the
		 * kernel lets us set its limits without a remote call (16 per
		 * task, each several ptrace stops: most of this stage's time in a
		 * tree of 1,000 processes); remotely if not. */
		if (prlimit(t->pid, (int)rl->resource, &want, NULL) == 0)
			continue;
		if (errno != EPERM)
			return ckpt_err_errno(&ctx->err, -errno,
					      "pid %d: prlimit(resource %u, cur %" PRIu64
					      ", max %" PRIu64 ")",
					      t->pid, rl->resource, (uint64_t)want.rlim_cur,
					      (uint64_t)want.rlim_max);
		r = remote_write(t->pid, t->rsys.scratch, &want, sizeof(want), &ctx->err);
		if (r >= 0)
			r = rcall(t, &ctx->err, __NR_prlimit64,
				  RARGS(0, rl->resource, t->rsys.scratch, 0), NULL,
				  "prlimit64(resource %u, cur %" PRIu64 ", max %" PRIu64 ")",
				  rl->resource, (uint64_t)want.rlim_cur, (uint64_t)want.rlim_max);
		if (r < 0)
			return r;
	}
	return 0;
}

/* read once per restore, not once per thread */
static int cap_last(struct restore_ctx *ctx, int *ret)
{
	_cleanup_free_ char *text = NULL;
	int r;

	if (ctx->cap_last) {
		*ret = ctx->cap_last;
		return 0;
	}
	r = proc_read_file("/proc/sys/kernel/cap_last_cap", &text, NULL, &ctx->err);
	if (r < 0)
		return r;
	*ret = atoi(text);
	if (*ret < 0 || *ret > 63)
		return ckpt_err(&ctx->err, -EINVAL, "/proc/sys/kernel/cap_last_cap: bad value");
	ctx->cap_last = *ret;
	return 0;
}

/*
 * The capset arguments of one queue of calls each have their own slot in
 * the scratch page (the calls run together, later); slot 0 is rtask_caps'
 * (a call of its own). The supplementary groups follow the slots.
 */
#define CAPSET_SLOT 64
#define GROUPS_OFF (4 * CAPSET_SLOT)
_Static_assert(GROUPS_OFF == RTASK_CAPS_SCRATCH, "the slots end where restore.h says");

static int capset_call(struct restore_ctx *ctx, struct rtask *t, unsigned slot, bool queue,
		       uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct {
		struct __user_cap_header_struct hdr;
		struct __user_cap_data_struct data[2];
	} c = {
	    .hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0},
	    .data = {{(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
		     {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)}},
	};
	uint64_t a = t->rsys.scratch + slot * CAPSET_SLOT;
	int r;

	_Static_assert(sizeof(c) <= CAPSET_SLOT, "capset arguments fit a slot");
	r = queue ? rqueue_write(t, &ctx->err, a, &c, sizeof(c))
		  : remote_write(t->pid, a, &c, sizeof(c), &ctx->err);
	if (r < 0)
		return r;
	if (queue)
		return rqueue(t, &ctx->err, __NR_capset, RARGS(a, a + sizeof(c.hdr)),
			      "capset(effective %#" PRIx64 ", permitted %#" PRIx64
			      ", inheritable %#" PRIx64 ")",
			      eff, prm, inh);
	return rcall(t, &ctx->err, __NR_capset, RARGS(a, a + sizeof(c.hdr)), NULL,
		     "capset(effective %#" PRIx64 ", permitted %#" PRIx64 ", inheritable %#" PRIx64
		     ")",
		     eff, prm, inh);
}

/* rtask_caps, as a call of its own (slot 0) or queued in a slot. */
static int task_caps(struct restore_ctx *ctx, struct rtask *t, bool raise, unsigned slot,
		     bool queue)
{
	uint64_t prm = caps_permitted();

	if (!ctx->caps_lowered)
		return 0;
	return capset_call(ctx, t, slot, queue, raise ? prm : 0, prm, caps_inheritable());
}

int rtask_caps(struct restore_ctx *ctx, struct rtask *t, bool raise)
{
	return task_caps(ctx, t, raise, 0, false);
}

int rtask_caps_queue(struct restore_ctx *ctx, struct rtask *t, bool raise, unsigned slot)
{
	if (slot < 1 || slot > 3)
		return ckpt_err(&ctx->err, -EINVAL, "capset slot %u", slot);
	return task_caps(ctx, t, raise, slot, true);
}

static int restore_ids(struct restore_ctx *ctx, struct rtask *t, const Creds *cr)
{
	struct ckpt_error *e = &ctx->err;
	size_t glen = cr->n_groups * sizeof(uint32_t);
	uint64_t groups = t->rsys.scratch + GROUPS_OFF;
	int r;

	if (glen > t->rsys.scratch_len - GROUPS_OFF)
		return ckpt_err(e, -E2BIG,
				"pid %d: %zu supplementary groups do not fit the scratch "
				"page",
				t->pid, cr->n_groups);
	r = glen ? rqueue_write(t, e, groups, cr->groups, glen) : 0;
	if (r >= 0)
		r = rqueue(t, e, __NR_setgroups, RARGS(cr->n_groups, groups),
			   "setgroups(%zu groups)", cr->n_groups);
	if (r >= 0)
		r = rqueue(t, e, __NR_setresgid, RARGS(cr->gid, cr->egid, cr->sgid),
			   "setresgid(%u, %u, %u)", cr->gid, cr->egid, cr->sgid);
	if (r >= 0)
		r = rqueue(t, e, __NR_setresuid, RARGS(cr->uid, cr->euid, cr->suid),
			   "setresuid(%u, %u, %u)", cr->uid, cr->euid, cr->suid);
	/* setfs[ug]id return the previous id, never an error code */
	if (r >= 0)
		r = rqueue(t, e, __NR_setfsgid, RARGS(cr->fsgid), "setfsgid(%u)", cr->fsgid);
	if (r >= 0)
		r = rqueue(t, e, __NR_setfsuid, RARGS(cr->fsuid), "setfsuid(%u)", cr->fsuid);
	return r;
}

static int restore_caps(struct restore_ctx *ctx, struct rtask *t, const Creds *cr)
{
	struct ckpt_error *e = &ctx->err;
	const uint64_t setpcap = 1ULL << CAP_SETPCAP;
	uint32_t secbits = cr->has_securebits ? cr->securebits : 0;
	int r;

	r = capset_call(ctx, t, 2, true, cr->cap_prm | setpcap, cr->cap_prm | setpcap, cr->cap_inh);
	for (int cap = 0; r >= 0 && cap < 64; cap++)
		if (cr->has_cap_amb && cr->cap_amb & (1ULL << cap))
			r = rqueue(t, e, __NR_prctl,
				   RARGS(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap),
				   "raising ambient capability %d", cap);
	if (r >= 0)
		r = rqueue(t, e, __NR_prctl, RARGS(PR_SET_SECUREBITS, secbits),
			   "prctl(PR_SET_SECUREBITS, %#x)", secbits);
	if (r >= 0)
		r = capset_call(ctx, t, 3, true, cr->cap_eff, cr->cap_prm, cr->cap_inh);
	return r;
}

/* Queued for one batch of remote calls (each capset and the groups in a
 * scratch slot of their own), in the order the header says. */
int creds_queue_thread(struct restore_ctx *ctx, struct rtask *t, const Creds *cr)
{
	struct ckpt_error *e = &ctx->err;
	int last, r;

	r = cap_last(ctx, &last);
	/* what the calls below need (CAP_SETPCAP, CAP_SETUID, CAP_SETGID);
	 * the last capset sets the saved sets */
	if (r >= 0)
		r = task_caps(ctx, t, true, 1, true);
	if (r >= 0)
		r = rqueue(t, e, __NR_prctl, RARGS(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP),
			   "prctl(PR_SET_SECUREBITS, NO_SETUID_FIXUP)");
	for (int cap = 0; r >= 0 && cap <= last; cap++)
		if (!(cr->cap_bnd & (1ULL << cap)))
			r = rqueue(t, e, __NR_prctl, RARGS(PR_CAPBSET_DROP, cap),
				   "dropping capability %d from the bounding set", cap);
	if (r >= 0)
		r = restore_ids(ctx, t, cr);
	if (r >= 0)
		r = restore_caps(ctx, t, cr);
	if (r >= 0 && cr->has_no_new_privs && cr->no_new_privs)
		r = rqueue(t, e, __NR_prctl, RARGS(PR_SET_NO_NEW_PRIVS, 1),
			   "prctl(PR_SET_NO_NEW_PRIVS)");
	/* 2 (suid_dumpable "root") cannot be set with prctl; the kernel chose it */
	if (r >= 0 && t->core->has_dumpable && t->core->dumpable < 2)
		r = rqueue(t, e, __NR_prctl, RARGS(PR_SET_DUMPABLE, t->core->dumpable),
			   "prctl(PR_SET_DUMPABLE, %u)", t->core->dumpable);
	return r;
}

int creds_queue_task(struct restore_ctx *ctx, struct rtask *t)
{
	int r = restore_rlimits(ctx, t);

	return r < 0 ? r : creds_queue_thread(ctx, t, t->core->creds);
}
