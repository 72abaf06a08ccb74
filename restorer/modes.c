/* SPDX-License-Identifier: MIT */
/*
 * Modes the kernel keeps for a thread or an area of a program, each set
 * with a call of its own and read back by the program (dump: thread_calls
 * and dump_remote in dump/dump_task.c, dump/dump_numa.c, dump/dump_sud.c):
 *
 *   per thread, queued in its batch of stage procstate: the TSC mode
 *   (PR_SET_TSC), the machine-check kill policy (PR_MCE_KILL), CPUID
 *   faulting (ARCH_SET_CPUID), the NUMA memory policy (set_mempolicy), the
 *   speculation controls the thread chose (PR_SET_SPECULATION_CTRL); a
 *   thread inherits them from the one that made it, in the end from the
 *   restorer, so each saved one is set whatever it is;
 *   per area, queued in the process's batch of stage procstate: its NUMA
 *   policy (mbind);
 *   per thread, by the restorer at stage resume after the thread's last
 *   remote call: syscall user dispatch.
 *
 * The verifier's checks of the same fields are here too.
 */
#define LOG_PREFIX "modes: "

#include <errno.h>
#include <inttypes.h>
#include <linux/mempolicy.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "prctl_compat.h"
#include "restore.h"

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

int modes_validate_mempolicy(const MemPolicy *p, const char *f, const char *field, size_t i,
			     struct ckpt_error *e)
{
	uint32_t mode = p->mode & ~(uint32_t)MPOL_MODE_FLAGS_ALL;

	/* MPOL_PREFERRED without nodes is the old spelling of MPOL_LOCAL */
	if (mode >= 1 && mode <= MPOL_WEIGHTED_INTERLEAVE_ && p->n_nodes <= 16 &&
	    !(p->mode & MPOL_F_STATIC_NODES && p->mode & MPOL_F_RELATIVE_NODES) &&
	    (mode == MPOL_LOCAL || mode == MPOL_PREFERRED || p->n_nodes))
		return 0;
	return ckpt_err(e, -EINVAL,
			"%s: field %s[%zu].mempolicy: mode %#x with %zu words of nodes is not a "
			"memory policy",
			f, field, i, p->mode, p->n_nodes);
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

int modes_validate_thread(const char *f, size_t i, const ThreadCore *tc, struct ckpt_error *e)
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
	if (tc->mempolicy && modes_validate_mempolicy(tc->mempolicy, f, "threads", i, e) < 0)
		return e->code;
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
int modes_queue_thread(struct rtask *t, const ThreadCore *tc, struct ckpt_error *e)
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

/*
 * Syscall user dispatch, from the restorer by ptrace once the thread made
 * its last remote call (stage resume): on, it would turn the restorer's
 * calls into SIGSYS (dump/dump_sud.c).
 */
int modes_thread_sud(pid_t tid, const ThreadCore *tc, struct ckpt_error *e)
{
	struct ckpt_sud c;

	if (!tc->sud)
		return 0;
	c = (struct ckpt_sud){tc->sud->mode, tc->sud->selector, tc->sud->offset, tc->sud->len};
	return ptrace_set_sud(tid, &c, e);
}

/*
 * The NUMA policy of each area that had one (mbind, in the task). Their
 * masks go to the scratch with the batch, one after the other; when the
 * scratch is full, what is queued is made first. mbind moves no page
 * (no MPOL_MF_MOVE): where the restorer put them, they stay.
 */
int modes_queue_areas(struct rtask *t, struct ckpt_error *e)
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
