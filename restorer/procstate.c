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
 *   the thread's modes (modes.c: TSC, machine-check kill, CPUID,
 *   speculation controls, NUMA policy);
 *   per process: PR_SET_CHILD_SUBREAPER, PR_SET_THP_DISABLE, PR_SET_MDWE,
 *   PR_SET_MEMORY_MERGE, the areas' NUMA policies (modes.c), the AMX
 *   permission, mlockall(MCL_FUTURE) last (the coredump_filter is the
 *   task's own at its setup, task.c);
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
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "log.h"
#include "prctl_compat.h"
#include "proc.h"
#include "restore.h"

#define AUDIT_UNSET 4294967295U

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
	if (c->has_autogroup_nice && (c->autogroup_nice < -20 || c->autogroup_nice > 19))
		return ckpt_err(e, -EINVAL, "%s: field autogroup_nice: %d is out of range -20..19",
				f, c->autogroup_nice);
	if (c->has_futex_hash_slots && ((c->futex_hash_slots & (c->futex_hash_slots - 1)) ||
					c->futex_hash_slots > FUTEX_HASH_SLOTS_MAX))
		return ckpt_err(e, -EINVAL,
				"%s: field futex_hash_slots: %u is not 0 or a power of two up "
				"to %u",
				f, c->futex_hash_slots, FUTEX_HASH_SLOTS_MAX);
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
		r = modes_validate_thread(f, i, tc, e);
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
		r = modes_queue_thread(t, tc, e);
	if (r >= 0 && !main && (sig = thread_pdeathsig(ctx, t, tc)))
		r = rqueue(t, e, __NR_prctl, RARGS(PR_SET_PDEATHSIG, sig),
			   "thread %d: prctl(PR_SET_PDEATHSIG, %u)", tc->tid, sig);
	return r;
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

/*
 * In a task that made its session (and with it a new autogroup of nice 0),
 * before it forks its children (they join it): the saved nice, with the
 * task's own effective set (P's: empty for a non-root caller, whose
 * negative value the dump refused; nothing is raised for it). The kernel
 * lets a process without CAP_SYS_ADMIN change an autogroup's nice once per
 * 100 ms, whoever changed one last: asked again for up to a second.
 */
int procstate_task_autogroup(struct rtask *t, struct ckpt_error *e)
{
	const CoreEntry *c = t->core;
	char buf[16];
	int n, r = -EAGAIN;

	if (!t->setsid_leader || !c->has_autogroup_nice || !c->autogroup_nice)
		return 0;
	n = snprintf(buf, sizeof(buf), "%d", c->autogroup_nice);
	for (int tries = 0; r == -EAGAIN && tries < 100; tries++) {
		int fd = open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC);

		r = fd < 0 ? -errno : write(fd, buf, (size_t)n) == n ? 0 : -errno;
		if (fd >= 0)
			close(fd);
		if (r == -EAGAIN)
			usleep(10000);
	}
	if (r < 0)
		return ckpt_err_errno(
		    e, r, "setting its autogroup's nice value %d (/proc/self/autogroup)",
		    c->autogroup_nice);
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

static int other_thread_state(struct restore_ctx *ctx, struct rtask *t, struct rthread *th)
{
	return thread_state(ctx, t, th->core, false);
}

int procstate_queue_task(struct restore_ctx *ctx, struct rtask *t)
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
	/* its threads exist (stage fds): the kernel gave it its default hash
	 * with the first of them, which this replaces */
	if (r >= 0 && c->has_futex_hash_slots)
		r = rqueue(t, e, __NR_prctl,
			   RARGS(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, c->futex_hash_slots, 0, 0),
			   "prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, %u)",
			   c->futex_hash_slots);
	if (r >= 0)
		r = modes_queue_areas(t, e);
	/* before stage resume loads segment registers that may select them */
	if (r >= 0)
		r = ldt_queue(t, e);
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
	return r;
}

int procstate_after_task(struct restore_ctx *ctx, struct rtask *t)
{
	int r = restore_oom_score_adj(t, &ctx->err);

	return r < 0 ? r : sched_restore_task(ctx, t);
}
