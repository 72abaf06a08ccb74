/* SPDX-License-Identifier: MIT */
/*
 * Stage procstate: personality, prctl state and scheduling, the last
 * per-task state before resume.
 *
 *   per thread, by a remote call in that thread: personality (it is per
 *   thread; set here, after stage memory, because READ_IMPLIES_EXEC would
 *   add PROT_EXEC to every mapping made after it), the timer slack, and for
 *   threads other than the main one the parent-death signal (the main
 *   thread's is set at resume, where the restorer's own safety signal is
 *   replaced: procstate_pdeathsig());
 *   the TSC mode, the machine-check kill policy, CPUID faulting and the
 *   speculation controls the thread chose (all inherited by a thread from
 *   the one that made it, so each is set, not only where it differs from
 *   the restorer's);
 *   per process: PR_SET_CHILD_SUBREAPER, PR_SET_THP_DISABLE, PR_SET_MDWE,
 *   PR_SET_MEMORY_MERGE, mlockall(MCL_FUTURE) last (the coredump_filter
 *   is the task's own at its setup, task.c);
 *   per thread, from the restorer: policy, nice, affinity (sched.c), last.
 *
 * The parent-death signal and the credentials: any change of credentials
 * clears it in the kernel, which is why this comes after stage creds.
 */
#define LOG_PREFIX "procstate: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <inttypes.h>
#include <linux/mempolicy.h>
#include <signal.h>
#include <string.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "log.h"
#include "prctl_compat.h"
#include "proc.h"
#include "restore.h"

#define AUDIT_UNSET 4294967295U

/* ---- per-thread modes: TSC, machine-check kill, CPUID, speculation, NUMA -------- */

#define MPOL_WEIGHTED_INTERLEAVE_ 6 /* (Linux 6.9; not in Debian 12's headers) */
#define MPOL_MODE_FLAGS_ALL (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING)

static const struct {
	const char *name;
	unsigned long which; /* PR_SPEC_* */
} spec_controls[] = {
    {"store bypass", PR_SPEC_STORE_BYPASS},
    {"indirect branch", PR_SPEC_INDIRECT_BRANCH},
    {"L1D flush", PR_SPEC_L1D_FLUSH},
};

bool procstate_mempolicy_valid(const MemPolicy *p)
{
	uint32_t mode = p->mode & ~(uint32_t)MPOL_MODE_FLAGS_ALL;

	/* MPOL_PREFERRED without nodes is the old spelling of MPOL_LOCAL */
	return mode >= 1 && mode <= MPOL_WEIGHTED_INTERLEAVE_ && p->n_nodes <= 16 &&
	       !(p->mode & MPOL_F_STATIC_NODES && p->mode & MPOL_F_RELATIVE_NODES) &&
	       (mode == MPOL_LOCAL || mode == MPOL_PREFERRED || p->n_nodes);
}

static void spec_saved(const ThreadCore *tc, bool has[3], uint32_t v[3])
{
	has[0] = tc->has_spec_store_bypass;
	v[0] = tc->spec_store_bypass;
	has[1] = tc->has_spec_indirect_branch;
	v[1] = tc->spec_indirect_branch;
	has[2] = tc->has_spec_l1d_flush;
	v[2] = tc->spec_l1d_flush;
}

/* A state the task chose: PR_SPEC_PRCTL and exactly one of the four. */
static bool spec_valid(uint32_t v)
{
	uint32_t s = v & ~(uint32_t)PR_SPEC_PRCTL;

	return (v & PR_SPEC_PRCTL) && (s == PR_SPEC_ENABLE || s == PR_SPEC_DISABLE ||
				       s == PR_SPEC_FORCE_DISABLE || s == PR_SPEC_DISABLE_NOEXEC);
}

static int validate_modes(const char *f, size_t i, const ThreadCore *tc, struct ckpt_error *e)
{
	bool has[3];
	uint32_t v[3];

	if (tc->has_tsc_mode && tc->tsc_mode != PR_TSC_ENABLE && tc->tsc_mode != PR_TSC_SIGSEGV)
		return ckpt_err(e, -EINVAL, "%s: field threads[%zu].tsc_mode: %u is not 1 or 2", f,
				i, tc->tsc_mode);
	if (tc->has_mce_kill && tc->mce_kill > PR_MCE_KILL_DEFAULT)
		return ckpt_err(e, -EINVAL,
				"%s: field threads[%zu].mce_kill: %u is out of range 0..2", f, i,
				tc->mce_kill);
	if (tc->has_cpuid && tc->cpuid > 1)
		return ckpt_err(e, -EINVAL, "%s: field threads[%zu].cpuid: %u is not 0 or 1", f, i,
				tc->cpuid);
	/* 1 dispatch except for the range, 2 only for it (Linux 6.18) */
	if (tc->sud &&
	    (tc->sud->mode < 1 || tc->sud->mode > 2 || tc->sud->selector >= RST_TASK_SIZE ||
	     tc->sud->offset + tc->sud->len < tc->sud->offset))
		return ckpt_err(e, -EINVAL,
				"%s: field threads[%zu].sud: mode %" PRIu64 " selector %#" PRIx64
				" range %#" PRIx64 "+%#" PRIx64 " is not a syscall user dispatch "
				"configuration",
				f, i, tc->sud->mode, tc->sud->selector, tc->sud->offset,
				tc->sud->len);
	if (tc->mempolicy && !procstate_mempolicy_valid(tc->mempolicy))
		return ckpt_err(
		    e, -EINVAL,
		    "%s: field threads[%zu].mempolicy: mode %#x with %zu words of nodes "
		    "is not a memory policy",
		    f, i, tc->mempolicy->mode, tc->mempolicy->n_nodes);
	spec_saved(tc, has, v);
	for (size_t k = 0; k < 3; k++)
		if (has[k] && !spec_valid(v[k]))
			return ckpt_err(e, -EINVAL,
					"%s: field threads[%zu] speculation control %s: %#x is not "
					"a state a task chooses (PR_SPEC_PRCTL and one of enable, "
					"disable, force-disable, disable-noexec)",
					f, i, spec_controls[k].name, v[k]);
	return 0;
}

/*
 * Queued in the thread's batch. Each thread inherited the restorer's modes
 * through its parent, so every saved one is set, whatever it is (in the
 * batch a call costs a few microseconds); only CPUID faulting, which a
 * machine without it refuses even to switch off, is set only when on.
 */
static int thread_modes(struct rtask *t, const ThreadCore *tc, struct ckpt_error *e)
{
	bool has[3];
	uint32_t v[3];
	int r = 0;

	if (tc->has_tsc_mode)
		r = rqueue(t, e, __NR_prctl, RARGS(PR_SET_TSC, tc->tsc_mode),
			   "thread %d: its TSC mode: prctl(PR_SET_TSC, %u)", tc->tid, tc->tsc_mode);
	if (r >= 0 && tc->has_mce_kill && tc->mce_kill == PR_MCE_KILL_DEFAULT)
		r = rqueue(t, e, __NR_prctl, RARGS(PR_MCE_KILL, PR_MCE_KILL_CLEAR, 0, 0, 0),
			   "thread %d: prctl(PR_MCE_KILL, PR_MCE_KILL_CLEAR)", tc->tid);
	else if (r >= 0 && tc->has_mce_kill)
		r = rqueue(t, e, __NR_prctl,
			   RARGS(PR_MCE_KILL, PR_MCE_KILL_SET, tc->mce_kill, 0, 0),
			   "thread %d: its machine-check kill policy: prctl(PR_MCE_KILL, "
			   "PR_MCE_KILL_SET, %u)",
			   tc->tid, tc->mce_kill);
	if (r >= 0 && tc->has_cpuid && !tc->cpuid)
		r = rqueue(t, e, __NR_arch_prctl, RARGS(ARCH_SET_CPUID, 0),
			   "thread %d: CPUID faulting: arch_prctl(ARCH_SET_CPUID, 0) (ENODEV: "
			   "this CPU has none)",
			   tc->tid);
	/* the node mask in the thread's scratch, written with the batch;
	 * maxnode one more than its bits (the kernel reads one less) */
	if (r >= 0 && tc->mempolicy) {
		const MemPolicy *p = tc->mempolicy;
		size_t len = p->n_nodes * sizeof(uint64_t);

		if (len)
			r = rqueue_write(t, e, t->rsys.scratch, p->nodes, len);
		if (r >= 0)
			r = rqueue(
			    t, e, __NR_set_mempolicy,
			    RARGS(p->mode, len ? t->rsys.scratch : 0, len ? len * 8 + 1 : 0),
			    "thread %d: its NUMA memory policy: set_mempolicy(%#x, %zu nodes "
			    "words)",
			    tc->tid, p->mode, p->n_nodes);
	}
	spec_saved(tc, has, v);
	for (size_t k = 0; r >= 0 && k < 3; k++)
		if (has[k])
			r = rqueue(t, e, __NR_prctl,
				   RARGS(PR_SET_SPECULATION_CTRL, spec_controls[k].which,
					 v[k] & ~(uint32_t)PR_SPEC_PRCTL, 0, 0),
				   "thread %d: speculation control %s: "
				   "prctl(PR_SET_SPECULATION_CTRL, %lu, %#x) (ENXIO: this machine "
				   "does not let a task choose it; EPERM: force-disabled already)",
				   tc->tid, spec_controls[k].name, spec_controls[k].which,
				   v[k] & ~(uint32_t)PR_SPEC_PRCTL);
	return r;
}

int procstate_validate(struct restore_ctx *ctx, const char *f, const CoreEntry *c)
{
	struct ckpt_error *e = &ctx->err;
	int r;

	if (c->has_oom_score_adj && (c->oom_score_adj < -1000 || c->oom_score_adj > 1000))
		return ckpt_err(e, -EINVAL,
				"%s: field oom_score_adj: %d is out of range -1000..1000", f,
				c->oom_score_adj);
	if (c->has_stop_signal && c->stop_signal != SIGSTOP && c->stop_signal != SIGTSTP &&
	    c->stop_signal != SIGTTIN && c->stop_signal != SIGTTOU)
		return ckpt_err(e, -EINVAL, "%s: field stop_signal: %u is not a stop signal", f,
				c->stop_signal);
	if (c->has_mlockall && c->mlockall != 0 && c->mlockall != MCL_FUTURE &&
	    c->mlockall != (MCL_FUTURE | MCL_ONFAULT))
		return ckpt_err(
		    e, -EINVAL,
		    "%s: field mlockall: %#x is not 0, MCL_FUTURE or MCL_FUTURE|MCL_ONFAULT", f,
		    c->mlockall);
	/* MMF_DUMP_FILTER_BITS: 9 */
	if (c->has_coredump_filter && c->coredump_filter > 0x1ff)
		return ckpt_err(e, -EINVAL, "%s: field coredump_filter: %#x has bits above 0x1ff",
				f, c->coredump_filter);
	if (c->has_stop_collected && c->stop_collected && !(c->has_stopped && c->stopped))
		return ckpt_err(e, -EINVAL, "%s: field stop_collected: set for a task not stopped",
				f);
	for (size_t i = 0; i < c->n_threads; i++) {
		const ThreadCore *tc = c->threads[i];

		if (tc->has_pdeathsig && tc->pdeathsig > 64)
			return ckpt_err(
			    e, -EINVAL,
			    "%s: field threads[%zu].pdeathsig: %u is out of range 0..64", f, i,
			    tc->pdeathsig);
		if (tc->creds && tc->creds->n_groups > 65536)
			return ckpt_err(e, -EINVAL,
					"%s: field threads[%zu].creds.groups: %zu groups", f, i,
					tc->creds->n_groups);
		if (i == 0 && tc->creds)
			return ckpt_err(e, -EINVAL,
					"%s: field threads[0].creds: the main thread's credentials "
					"are field creds",
					f);
		r = sched_validate(ctx, f, i, tc);
		if (r < 0)
			return r;
		r = validate_modes(f, i, tc, e);
		if (r < 0)
			return r;
	}
	return seccomp_validate(ctx, f, c);
}

/*
 * The root's parent is outside the checkpoint: until it exits, the restorer
 * is the root's parent, and its exit would fire a parent-death signal of any
 * thread of the root at once. Those are left unset, with a warning.
 */
static uint32_t thread_pdeathsig(struct restore_ctx *ctx, const struct rtask *t,
				 const ThreadCore *tc)
{
	uint32_t sig = tc->has_pdeathsig ? tc->pdeathsig : 0;

	if (sig && t == ctx->root) {
		pr_warn("pid %d: thread %d: its parent-death signal %u (PR_SET_PDEATHSIG) is not "
			"restored: the parent of the root is not part of the checkpoint",
			t->pid, tc->tid, sig);
		return 0;
	}
	return sig;
}

uint32_t procstate_pdeathsig(struct restore_ctx *ctx, const struct rtask *t)
{
	return thread_pdeathsig(ctx, t, t->thread);
}

/* The thread whose session is t->rsys. */
static int thread_state(struct restore_ctx *ctx, struct rtask *t, const ThreadCore *tc, bool main)
{
	struct ckpt_error *e = &ctx->err;
	const CoreEntry *c = t->core;
	/* a thread without its own (older images) has the process's */
	bool own = !main && tc->has_personality;
	bool has_pers = own || c->has_personality;
	uint32_t pers = own ? tc->personality : c->personality;
	uint32_t sig;
	int r = 0;

	if (has_pers)
		r = rqueue(t, e, __NR_personality, RARGS(pers), "thread %d: personality(%#x)",
			   tc->tid, pers);
	/* 0 is the slack of a real-time thread: it gets it with its policy */
	if (r >= 0 && tc->has_timerslack_ns && tc->timerslack_ns)
		r = rqueue(t, e, __NR_prctl, RARGS(PR_SET_TIMERSLACK, tc->timerslack_ns),
			   "thread %d: prctl(PR_SET_TIMERSLACK, %" PRIu64 ")", tc->tid,
			   tc->timerslack_ns);
	if (r >= 0)
		r = thread_modes(t, tc, e);
	if (r >= 0 && !main && (sig = thread_pdeathsig(ctx, t, tc)))
		r = rqueue(t, e, __NR_prctl, RARGS(PR_SET_PDEATHSIG, sig),
			   "thread %d: prctl(PR_SET_PDEATHSIG, %u)", tc->tid, sig);
	return r;
}

/*
 * Syscall user dispatch, from the restorer by ptrace once the thread made
 * its last remote call (stage resume): on, it would turn the restorer's
 * calls into SIGSYS (dump/dump_sud.c).
 */
int procstate_thread_sud(pid_t tid, const ThreadCore *tc, struct ckpt_error *e)
{
	struct ckpt_sud c;

	if (!tc->sud)
		return 0;
	c = (struct ckpt_sud){tc->sud->mode, tc->sud->selector, tc->sud->offset, tc->sud->len};
	return ptrace_set_sud(tid, &c, e);
}

/* ---- audit login uid and session id ----------------------------------------------- */

static int audit_ids_self(uint32_t *uid, uint32_t *sid, struct ckpt_error *e)
{
	int64_t u, s;
	int r = proc_read_number("/proc/self/loginuid", &u, e);

	if (r >= 0)
		r = proc_read_number("/proc/self/sessionid", &s, e);
	if (r < 0)
		return r;
	*uid = (uint32_t)u;
	*sid = (uint32_t)s;
	return 0;
}

/*
 * Stage pids. A task inherits the audit ids of its parent, in the end the
 * restorer's. Writing /proc/self/loginuid is the only way to change them:
 * clearing it (4294967295) also clears the session id, which is exact;
 * setting a uid draws a new session id from a counter that only grows, so
 * a set login uid comes back exactly only in the session it was dumped
 * from. Anything else is refused before anything is created.
 */
int procstate_check_audit(struct restore_ctx *ctx)
{
	uint32_t uid, sid;
	int r = audit_ids_self(&uid, &sid, &ctx->err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < ctx->ntasks; i++) {
		const CoreEntry *c = ctx->tasks[i].core;

		if (!c->has_loginuid || !c->has_sessionid)
			continue;
		if (c->loginuid == uid && c->sessionid == sid)
			continue;
		if (c->loginuid == AUDIT_UNSET && c->sessionid == AUDIT_UNSET)
			continue;
		return ckpt_err(&ctx->err, -EOPNOTSUPP,
				"pid %d: its audit login uid %u and session id %u cannot be given "
				"back: the kernel draws a new session id whenever a login uid is "
				"set; restore it from that login session (the restorer has login "
				"uid %u, session %u)",
				ctx->tasks[i].pid, c->loginuid, c->sessionid, uid, sid);
	}
	return 0;
}

/* In the task, before it forks its children and makes its threads (they inherit them). */
int procstate_task_audit(struct rtask *t, struct ckpt_error *e)
{
	const CoreEntry *c = t->core;
	uint32_t uid, sid;
	int fd, r;

	if (!c->has_loginuid || !c->has_sessionid)
		return 0;
	r = audit_ids_self(&uid, &sid, e);
	if (r < 0 || (uid == c->loginuid && sid == c->sessionid))
		return r;
	/* stage pids allowed nothing else */
	if (c->loginuid != AUDIT_UNSET)
		return ckpt_err(e, -EINVAL, "audit login uid %u: not the restorer's", c->loginuid);
	fd = open("/proc/self/loginuid", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "opening /proc/self/loginuid");
	r = write(fd, "4294967295", 10) == 10 ? 0 : -errno;
	close(fd);
	if (r < 0)
		return ckpt_err_errno(e, r,
				      "clearing its audit login uid (/proc/self/loginuid; needs "
				      "CAP_AUDIT_CONTROL and audit login uids not immutable)");
	return 0;
}

/* ---- oom_score_adj ---------------------------------------------------------------------- */

/* From P, like a process would write its own: only the value a task inherited
 * can be lowered again without CAP_SYS_RESOURCE (oom_score_adj_min). */
static int restore_oom_score_adj(struct rtask *t, struct ckpt_error *e)
{
	char path[64], buf[16];
	int64_t now;
	int fd, n, r;

	if (!t->core->has_oom_score_adj)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", t->pid);
	r = proc_read_number(path, &now, e);
	if (r < 0 || now == t->core->oom_score_adj)
		return r;
	fd = proc_open_tracee(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "opening %s", path);
	n = snprintf(buf, sizeof(buf), "%d", t->core->oom_score_adj);
	r = write(fd, buf, (size_t)n) == n ? 0 : -errno;
	close(fd);
	if (r == -EACCES)
		return ckpt_err(e, r,
				"oom_score_adj %d cannot be set: lower than the restorer's %" PRId64
				", which needs CAP_SYS_RESOURCE",
				t->core->oom_score_adj, now);
	if (r < 0)
		return ckpt_err_errno(e, r, "setting oom_score_adj %d", t->core->oom_score_adj);
	return 0;
}

/*
 * The NUMA policy of each area that had one (mbind, in the task). Their
 * masks go to the scratch with the batch, one after the other; when the
 * scratch is full, what is queued is made first. mbind moves no page
 * (no MPOL_MF_MOVE): where the restorer put them, they stay.
 */
static int area_policies(struct rtask *t, struct ckpt_error *e)
{
	size_t at = 0;
	int r = 0;

	for (size_t i = 0; r >= 0 && i < t->mm->n_vmas; i++) {
		const Vma *v = t->mm->vmas[i];
		const MemPolicy *p = v->mempolicy;
		size_t len;

		if (!p)
			continue;
		len = p->n_nodes * sizeof(uint64_t);
		if (at + len > t->rsys.scratch_len) {
			r = rflush(t, e);
			at = 0;
		}
		if (r >= 0 && len)
			r = rqueue_write(t, e, t->rsys.scratch + at, p->nodes, len);
		if (r >= 0)
			r = rqueue(t, e, __NR_mbind,
				   RARGS(v->start, v->end - v->start, p->mode,
					 len ? t->rsys.scratch + at : 0, len ? len * 8 + 1 : 0, 0),
				   "the NUMA policy of the area at %#" PRIx64 "-%#" PRIx64
				   ": mbind(%#x, %zu words of nodes)",
				   v->start, v->end, p->mode, p->n_nodes);
		at += len;
	}
	return r;
}

static int other_thread_state(struct restore_ctx *ctx, struct rtask *t, struct rthread *th)
{
	return thread_state(ctx, t, th->core, false);
}

int procstate_restore_task(struct restore_ctx *ctx, struct rtask *t)
{
	struct ckpt_error *e = &ctx->err;
	const CoreEntry *c = t->core;
	/* each thread's calls queued and made in its own session */
	int r = threads_batch_each(ctx, t, other_thread_state, NULL, NULL);

	if (r >= 0)
		r = thread_state(ctx, t, t->thread, true);
	if (r >= 0 && c->has_child_subreaper && c->child_subreaper)
		r = rqueue(t, e, __NR_prctl, RARGS(PR_SET_CHILD_SUBREAPER, 1),
			   "prctl(PR_SET_CHILD_SUBREAPER)");
	/* also 0: the flag is inherited through fork, the restorer may have it */
	if (r >= 0 && c->has_thp_disable)
		r = rqueue(t, e, __NR_prctl, RARGS(PR_SET_THP_DISABLE, c->thp_disable, 0, 0, 0),
			   "prctl(PR_SET_THP_DISABLE, %d)", c->thp_disable);
	/* memory-deny-write-execute: for good once set, so after every area
	 * is in place with its protection (stage memory) and the task's
	 * children were forked (they do not inherit ours, they have their own) */
	if (r >= 0 && c->has_mdwe && c->mdwe)
		r = rqueue(t, e, __NR_prctl, RARGS(PR_SET_MDWE, c->mdwe, 0, 0, 0),
			   "prctl(PR_SET_MDWE, %#x)", c->mdwe);
	/* KSM for every area, present and future; 0 is what the restorer's
	 * children have (a kernel without KSM refuses even that) */
	if (r >= 0 && c->has_memory_merge && c->memory_merge)
		r = rqueue(t, e, __NR_prctl, RARGS(PR_SET_MEMORY_MERGE, 1, 0, 0, 0),
			   "prctl(PR_SET_MEMORY_MERGE, 1)");
	if (r >= 0)
		r = area_policies(t, e);
	/* before stage resume sets the threads' xstate, which may hold it; the
	 * other features are static: every process has those this CPU has */
	if (r >= 0 && c->has_xcomp_perm && c->xcomp_perm & 1ULL << XFEATURE_XTILEDATA)
		r = rqueue(t, e, __NR_arch_prctl, RARGS(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA),
			   "AMX tile data the process was allowed: "
			   "arch_prctl(ARCH_REQ_XCOMP_PERM, %d) (EOPNOTSUPP: this CPU has none)",
			   XFEATURE_XTILEDATA);
	/* the lock of areas mapped from now on (those there have their own,
	 * stage memory): last, or the restorer's own calls would map locked */
	if (r >= 0 && c->has_mlockall && c->mlockall)
		r = rqueue(t, e, __NR_mlockall, RARGS(c->mlockall), "mlockall(%#x)", c->mlockall);
	r = rqueue_end(t, e, r);
	if (r >= 0)
		r = restore_oom_score_adj(t, e);
	if (r >= 0)
		r = sched_restore_task(ctx, t);
	return r;
}
