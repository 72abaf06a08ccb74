/* SPDX-License-Identifier: MIT */
/*
 * Per-task state other than memory and fds: registers and xstate, signal
 * mask, pending signals, rseq (ptrace), sigactions, securebits, dumpable,
 * child subreaper, THP disable and brk (remote syscalls, in one session),
 * creds, rlimits, cwd... (/proc). Per thread also: its own creds, seccomp
 * mode, personality (/proc/PID/task/TID), securebits, parent-death signal
 * and timer slack (a remote-syscall session in the thread), scheduling and
 * affinity (dump_sched.c), seccomp filters (dump_seccomp.c).
 * Also the process tree image and its session/group checks.
 */
#define LOG_PREFIX "dump: "

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/keyctl.h>
#include <linux/mempolicy.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "cpuset.h"
#include "dump_internal.h"
#include "fault.h"
#include "kread.h"
#include "log.h"
#include "prctl_compat.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

#define NSIG_MAX 64
#define SIGINFO_SIZE 128
/* __USER_CS on x86-64; 32-bit code runs with 0x23 */
#define USER_CS_64 0x33

/* struct sigaction as the kernel's rt_sigaction sees it on x86-64 */
struct kernel_sigaction {
	uint64_t handler, flags, restorer, mask;
};

static void *zalloc(size_t n, struct ckpt_error *e)
{
	void *p = calloc(1, n);

	if (!p)
		ckpt_err(e, -ENOMEM, "out of memory");
	return p;
}

char *dump_strdup(const char *s, struct ckpt_error *e)
{
	char *d = strdup(s);

	if (!d)
		ckpt_err(e, -ENOMEM, "out of memory");
	return d;
}

static UserRegs *regs_to_proto(const struct user_regs_struct *r, struct ckpt_error *e)
{
	UserRegs *u = zalloc(sizeof(*u), e);

	if (!u)
		return NULL;
	user_regs__init(u);
	u->r15 = r->r15;
	u->r14 = r->r14;
	u->r13 = r->r13;
	u->r12 = r->r12;
	u->rbp = r->rbp;
	u->rbx = r->rbx;
	u->r11 = r->r11;
	u->r10 = r->r10;
	u->r9 = r->r9;
	u->r8 = r->r8;
	u->rax = r->rax;
	u->rcx = r->rcx;
	u->rdx = r->rdx;
	u->rsi = r->rsi;
	u->rdi = r->rdi;
	u->orig_rax = r->orig_rax;
	u->rip = r->rip;
	u->cs = r->cs;
	u->eflags = r->eflags;
	u->rsp = r->rsp;
	u->ss = r->ss;
	u->fs_base = r->fs_base;
	u->gs_base = r->gs_base;
	u->ds = r->ds;
	u->es = r->es;
	u->fs = r->fs;
	u->gs = r->gs;
	return u;
}

/* siginfo_t records as repeated bytes */
static int siginfos_to_proto(const siginfo_t *si, size_t n, ProtobufCBinaryData **ret,
			     size_t *ret_n, struct ckpt_error *e)
{
	ProtobufCBinaryData *b;

	*ret = NULL;
	*ret_n = 0;
	if (!n)
		return 0;
	b = calloc(n, sizeof(*b));
	if (!b)
		return ckpt_err(e, -ENOMEM, "out of memory");
	*ret = b;
	for (size_t i = 0; i < n; i++) {
		b[i].data = malloc(SIGINFO_SIZE);
		if (!b[i].data)
			return ckpt_err(e, -ENOMEM, "out of memory");
		memcpy(b[i].data, &si[i], SIGINFO_SIZE);
		b[i].len = SIGINFO_SIZE;
		*ret_n = i + 1;
	}
	return 0;
}

/* Registers, xstate, blocked mask, rseq and own pending signals of a thread:
 * all through ptrace, before any remote syscall changes the mask. */
static int dump_thread(pid_t tid, ThreadCore **ret, struct ckpt_error *e)
{
	struct user_regs_struct regs;
	struct rseq_config rseq;
	bool registered = false;
	_cleanup_free_ siginfo_t *si = NULL;
	size_t nsi = 0;
	ThreadCore *tc;
	void *xs = NULL;
	size_t xlen = 0;
	int r;

	tc = zalloc(sizeof(*tc), e);
	if (!tc)
		return -ENOMEM;
	thread_core__init(tc);
	*ret = tc; /* freed by the caller with the whole core */
	tc->tid = tid;
	r = ptrace_get_regs(tid, &regs, e);
	if (r < 0)
		return r;
	if (regs.cs != USER_CS_64)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d runs 32-bit code (cs 0x%llx); 32-bit processes are not "
				"supported yet",
				tid, (unsigned long long)regs.cs);
	tc->regs = regs_to_proto(&regs, e);
	if (!tc->regs)
		return -ENOMEM;
	r = ptrace_get_xstate(tid, &xs, &xlen, e);
	if (r < 0)
		return r;
	tc->xstate.data = xs;
	tc->xstate.len = xlen;
	r = ptrace_get_sigmask(tid, &tc->blocked, e);
	if (r < 0)
		return r;
	r = ptrace_get_rseq(tid, &rseq, &registered, e);
	if (r < 0)
		return r;
	if (registered) {
		tc->rseq = zalloc(sizeof(*tc->rseq), e);
		if (!tc->rseq)
			return -ENOMEM;
		rseq_config__init(tc->rseq);
		tc->rseq->abi_pointer = rseq.abi_pointer;
		tc->rseq->abi_size = rseq.abi_size;
		tc->rseq->signature = rseq.signature;
		tc->rseq->has_flags = true;
		tc->rseq->flags = rseq.flags;
	}
	r = ptrace_peek_siginfo(tid, false, &si, &nsi, e);
	if (r < 0)
		return r;
	return siginfos_to_proto(si, nsi, &tc->pending, &tc->n_pending, e);
}

/* get_robust_list works on another thread of a process we may ptrace. */
static int dump_robust_list(pid_t tid, ThreadCore *tc, struct ckpt_error *e)
{
	void *head = NULL;
	size_t len = 0;

	if (syscall(SYS_get_robust_list, tid, &head, &len) < 0)
		return ckpt_err_errno(e, -errno, "thread %d: get_robust_list", tid);
	tc->has_robust_list = true;
	tc->robust_list = (uint64_t)(uintptr_t)head;
	tc->has_robust_list_len = true;
	tc->robust_list_len = len;
	return 0;
}

/*
 * Where the thread sessions put what they read, in their process's
 * scratch: a slot of THREAD_OUT_SLOT bytes each for THREAD_LANES threads
 * whose batches run at the same time.
 */
#define THREAD_OUT_OFF (NSIG_MAX * sizeof(struct kernel_sigaction) + 64)
#define THREAD_LANES 8 /* (of the 16 lanes of a table: RSYS_LANE_BYTES) */
#define THREAD_OUT_SLOT 256
#define THREAD_CALLS 15
#define THREAD_OPT0 10 /* the speculation controls and the memory policy: may fail */
#define MPOL_WORDS 16  /* node masks of up to 1024 nodes (x86-64's MAX_NUMNODES) */

struct thread_out {
	stack_t ss;
	uint64_t tid_addr;
	int pdeathsig;
	char name[16]; /* TASK_COMM_LEN, NUL-terminated by the kernel */
	int tsc;
	int mpol_mode;
	uint64_t mpol_nodes[MPOL_WORDS];
};

/* A thread's session while its batch runs with those of other threads. */
struct thread_session {
	struct rsys rs;
	struct rsys_op ops[THREAD_CALLS];
	bool open, running;
};

static const char *const thread_call_names[THREAD_CALLS] = {"sigaltstack",
							    "prctl(PR_GET_TID_ADDRESS)",
							    "prctl(PR_GET_PDEATHSIG)",
							    "prctl(PR_GET_SECUREBITS)",
							    "prctl(PR_GET_TIMERSLACK)",
							    "prctl(PR_GET_NAME)",
							    "personality",
							    "prctl(PR_GET_TSC)",
							    "prctl(PR_MCE_KILL_GET)",
							    "arch_prctl(ARCH_GET_CPUID)",
							    "prctl(PR_GET_SPECULATION_CTRL)",
							    "prctl(PR_GET_SPECULATION_CTRL)",
							    "prctl(PR_GET_SPECULATION_CTRL)",
							    "get_mempolicy",
							    "keyctl(KEYCTL_GET_KEYRING_ID)"};

/*
 * sigaltstack, the tid address, the parent-death signal, securebits, the
 * timer slack, the name, the personality, the TSC mode, the machine-check
 * kill policy, CPUID faulting, the speculation controls and the NUMA
 * memory policy are per thread and the thread itself can tell them all:
 * one batch of remote syscalls in that thread, whose output goes to at. The name and the
 * personality are also in /proc/PID/task/TID (comm, personality), but two files per thread cost six
 * system calls here against two more slots of the batch.
 */
static void thread_calls(struct rsys_op *ops, uint64_t at)
{
	const struct rsys_op calls[THREAD_CALLS] = {
	    {__NR_sigaltstack, {0, at}, 0},
	    {__NR_prctl, {PR_GET_TID_ADDRESS, at + offsetof(struct thread_out, tid_addr)}, 0},
	    {__NR_prctl, {PR_GET_PDEATHSIG, at + offsetof(struct thread_out, pdeathsig)}, 0},
	    {__NR_prctl, {PR_GET_SECUREBITS}, 0},
	    {__NR_prctl, {PR_GET_TIMERSLACK}, 0},
	    {__NR_prctl, {PR_GET_NAME, at + offsetof(struct thread_out, name)}, 0},
	    /* 0xffffffff: only asks (returns the persona, sets nothing) */
	    {__NR_personality, {0xffffffffu}, 0},
	    {__NR_prctl, {PR_GET_TSC, at + offsetof(struct thread_out, tsc)}, 0},
	    {__NR_prctl, {PR_MCE_KILL_GET}, 0},
	    {__NR_arch_prctl, {ARCH_GET_CPUID}, 0},
	    /* last (THREAD_OPT0): they alone may fail (a kernel or machine without) */
	    {__NR_prctl, {PR_GET_SPECULATION_CTRL, PR_SPEC_STORE_BYPASS}, 0},
	    {__NR_prctl, {PR_GET_SPECULATION_CTRL, PR_SPEC_INDIRECT_BRANCH}, 0},
	    {__NR_prctl, {PR_GET_SPECULATION_CTRL, PR_SPEC_L1D_FLUSH}, 0},
	    /* maxnode: the kernel reads one bit less (and wants at least nr_node_ids) */
	    {__NR_get_mempolicy,
	     {at + offsetof(struct thread_out, mpol_mode),
	      at + offsetof(struct thread_out, mpol_nodes), MPOL_WORDS * 64 + 1, 0, 0},
	     0},
	    /* its thread keyring (ENOKEY: none; dump_keyring_thread). Never
	     * its session keyring: asking would install one (dump_keyring.c) */
	    {__NR_keyctl,
	     {KEYCTL_GET_KEYRING_ID, (uint64_t)(int64_t)KEY_SPEC_THREAD_KEYRING, 0},
	     0},
	};

	_Static_assert(sizeof(struct thread_out) <= THREAD_OUT_SLOT, "a thread's output fits");
	memcpy(ops, calls, sizeof(calls));
}

static int thread_fill(pid_t pid, ThreadCore *tc, const struct rsys_op *ops, struct thread_out *out,
		       struct ckpt_error *e)
{
	uint32_t *spec[3] = {&tc->spec_store_bypass, &tc->spec_indirect_branch,
			     &tc->spec_l1d_flush};
	protobuf_c_boolean *has_spec[3] = {&tc->has_spec_store_bypass,
					   &tc->has_spec_indirect_branch, &tc->has_spec_l1d_flush};
	size_t bad = rsys_op_failed(ops, THREAD_OPT0);
	int r;

	if (bad < THREAD_OPT0)
		return ckpt_err_errno(e, (int)ops[bad].ret, "thread %d: remote %s", tc->tid,
				      thread_call_names[bad]);
	tc->has_ss_sp = tc->has_ss_flags = tc->has_ss_size = true;
	tc->ss_sp = (uint64_t)(uintptr_t)out->ss.ss_sp;
	tc->ss_flags = (uint32_t)out->ss.ss_flags;
	tc->ss_size = out->ss.ss_size;
	tc->has_clear_child_tid = true;
	tc->clear_child_tid = out->tid_addr;
	tc->has_pdeathsig = true;
	tc->pdeathsig = (uint32_t)out->pdeathsig;
	tc->has_timerslack_ns = true;
	tc->timerslack_ns = (uint64_t)ops[4].ret;
	out->name[sizeof(out->name) - 1] = '\0';
	tc->comm = strdup(out->name);
	if (!tc->comm)
		return ckpt_err(e, -ENOMEM, "out of memory");
	/* the main thread's is the process's (CoreEntry.personality) */
	if (tc->tid != pid) {
		tc->has_personality = true;
		tc->personality = (uint32_t)ops[6].ret;
	}
	/* the main thread's are CoreEntry.creds, read in the process session */
	if (tc->creds) {
		tc->creds->has_securebits = true;
		tc->creds->securebits = (uint32_t)ops[3].ret;
	}
	tc->has_tsc_mode = true;
	tc->tsc_mode = (uint32_t)out->tsc;
	tc->has_mce_kill = true;
	tc->mce_kill = (uint32_t)ops[8].ret;
	tc->has_cpuid = true;
	tc->cpuid = (uint32_t)ops[9].ret;
	/* only what the task chose (PR_SPEC_PRCTL): the rest is the machine's */
	for (size_t i = 0; i < 3; i++) {
		long v = ops[THREAD_OPT0 + i].ret;

		*has_spec[i] = v > 0 && (v & PR_SPEC_PRCTL);
		*spec[i] = *has_spec[i] ? (uint32_t)v : 0;
	}
	/* ENOSYS: a kernel without NUMA, where every thread has the default */
	if (ops[THREAD_OPT0 + 3].ret < 0 && ops[THREAD_OPT0 + 3].ret != -ENOSYS)
		return ckpt_err_errno(e, (int)ops[THREAD_OPT0 + 3].ret, "thread %d: remote %s",
				      tc->tid, thread_call_names[THREAD_OPT0 + 3]);
	r = 0;
	if (ops[THREAD_OPT0 + 3].ret == 0 && out->mpol_mode != MPOL_DEFAULT)
		r = mempolicy_to_proto(out->mpol_mode, out->mpol_nodes, MPOL_WORDS, &tc->mempolicy,
				       e);
	return r;
}

/*
 * Every thread's batch (thread_calls), in sessions that borrow the process
 * session's pages (proc: still open). THREAD_LANES threads' batches run at
 * the same time, each with a slice of the process's batch table and an
 * output slot of its own: all started, then each stopped, then each
 * finished, so that the threads' runs overlap ours instead of taking turns
 * with it. After a failure, what was started is still finished and closed.
 */
static int dump_threads_remote(pid_t pid, const struct rsys *proc, CoreEntry *core,
			       struct ckpt_error *e)
{
	struct ckpt_error tmp = {0};
	int r = 0;

	for (size_t base = 0; r >= 0 && base < core->n_threads; base += THREAD_LANES) {
		size_t n =
		    core->n_threads - base < THREAD_LANES ? core->n_threads - base : THREAD_LANES;
		struct thread_session s[THREAD_LANES];
		unsigned char outs[THREAD_LANES * THREAD_OUT_SLOT];
		size_t opened = 0;

		memset(s, 0, sizeof(s));
		for (size_t k = 0; r >= 0 && k < n; k++) {
			pid_t tid = core->threads[base + k]->tid;

			r = rsys_init(&s[k].rs, tid, proc->poked ? 0 : proc->syscall_ip, e);
			if (r < 0) {
				r = ckpt_err_wrap(e, "thread %d", tid);
				break;
			}
			s[k].open = true;
			opened = k + 1;
			rsys_borrow_lane(&s[k].rs, proc, (unsigned)k);
			thread_calls(s[k].ops,
				     proc->scratch + THREAD_OUT_OFF + k * THREAD_OUT_SLOT);
			r = rsys_batch_start(&s[k].rs, s[k].ops, THREAD_CALLS, NULL, 0, e);
			s[k].running = r > 0;
			if (r == 0) /* not to be started (no batch pages): made now */
				r = rsys_batch(&s[k].rs, s[k].ops, THREAD_CALLS, e);
		}
		for (size_t k = 0; k < opened; k++) {
			int r2 = s[k].running ? rsys_batch_stop(&s[k].rs, r < 0 ? &tmp : e) : 0;

			if (r2 < 0 && r >= 0)
				r = r2;
		}
		for (size_t k = 0; k < opened; k++) {
			int r2 = s[k].running ? rsys_batch_finish(&s[k].rs, s[k].ops, THREAD_CALLS,
								  r < 0 ? &tmp : e)
					      : 0;

			if (r2 < 0 && r >= 0)
				r = r2;
		}
		/* every field of an output is written by a call of its batch, or it failed */
		if (r >= 0)
			r = remote_read(pid, proc->scratch + THREAD_OUT_OFF, outs,
					n * THREAD_OUT_SLOT, e);
		for (size_t k = 0; k < opened; k++) {
			int r2 = rsys_fini(&s[k].rs, r < 0 ? &tmp : e);

			if (r2 < 0 && r >= 0)
				r = r2;
		}
		for (size_t k = 0; r >= 0 && k < n; k++) {
			struct thread_out out;

			memcpy(&out, outs + k * THREAD_OUT_SLOT, sizeof(out));
			r = thread_fill(pid, core->threads[base + k], s[k].ops, &out, e);
			if (r >= 0)
				r = dump_keyring_thread(pid, core->threads[base + k]->tid,
							s[k].ops[THREAD_OPT0 + 4].ret, e);
		}
	}
	return r;
}

/*
 * Which signals need a remote rt_sigaction: those with a handler or ignored
 * (SigCgt, SigIgn), and SIGCHLD whose SA_NOCLDSTOP/SA_NOCLDWAIT act even
 * with SIG_DFL. For the others, SIG_DFL with zero flags and mask is exact:
 * flags and mask take effect only once a handler is installed, which
 * replaces them. Every remote call costs two context switches each way.
 */
static bool sigaction_needed(const struct proc_status *st, int sig)
{
	uint64_t bit = 1ULL << (sig - 1);

	return sig == SIGCHLD || (st->sig_cgt & bit) || (st->sig_ign & bit);
}

/*
 * The process's remote-syscall session, the batch pages with its scratch
 * in one mapping. It stays open (t->rsys_open) for the threads' sessions,
 * which borrow its pages (dump_core closes it).
 */
static int dump_session_open(struct dump_task *t, struct ckpt_error *e)
{
	int r = rsys_init(&t->rsys, t->pid, 0, e);

	if (r < 0)
		return r;
	t->rsys_open = true;
	return rsys_pages(&t->rsys, THREAD_OUT_OFF + THREAD_LANES * THREAD_OUT_SLOT, e);
}

/*
 * mlockall(MCL_FUTURE), which locks every area mapped later (with
 * MCL_ONFAULT: as its pages are touched), leaves no trace the kernel shows
 * but its effect: the session's pages, mapped since vm_lck_before was read,
 * were counted in VmLck. Then a page mapped and asked at once (mincore)
 * tells MCL_ONFAULT: without it the kernel faulted the page in at mmap.
 * Three more remote calls, only in a process that locks new memory.
 */
static int dump_mlock_future(struct dump_task *t, uint64_t vm_lck_before,
			     const struct proc_status *st, CoreEntry *core, struct ckpt_error *e)
{
	uint64_t addr;
	long ret;
	unsigned char vec = 0;
	int r, r2;

	core->has_mlockall = true;
	core->mlockall = 0;
	if (!st->has_vm_lck || st->vm_lck_kb <= vm_lck_before)
		return 0;
	r = rsys_area_map(&t->rsys, 4096, PROT_READ, &addr, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: a page", t->pid);
	r = rsys_call(&t->rsys, __NR_mincore, addr, 4096, t->rsys.scratch, 0, 0, 0, &ret, e);
	if (r >= 0 && ret < 0)
		r = ckpt_err_errno(e, (int)ret, "pid %d: remote mincore", t->pid);
	if (r >= 0)
		r = remote_read(t->pid, t->rsys.scratch, &vec, 1, e);
	r2 = rsys_area_unmap(&t->rsys, addr, 4096, r < 0, e);
	if (r < 0 || r2 < 0)
		return r < 0 ? r : r2;
	core->mlockall = MCL_FUTURE | (vec & 1 ? 0 : MCL_ONFAULT);
	return 0;
}

/*
 * What only the task itself can tell, in the process's session (open):
 * most of it in one batch (rsys_batch).
 */
static int dump_remote(struct dump_task *t, const struct proc_status *st, CoreEntry *core,
		       struct ckpt_error *e)
{
	/* what the batch writes, in the scratch: one read */
	struct {
		struct kernel_sigaction ksa[NSIG_MAX];
		int subreaper, pad;
		uint64_t xcomp;
		uint64_t ldt0;			  /* the first LDT entry (dump_ldt) */
	} out;
	struct kernel_sigaction *ksa = out.ksa;
	struct rsys_op ops[NSIG_MAX + 11];
	const char *names[NSIG_MAX + 11];
	size_t n = 0, nops = 0, k_sec, k_dump, k_sub, k_thp, k_brk, k_mdwe, k_ksm, k_xcomp, k_fh,
	       k_key, k_ldt, bad;
	uint64_t sub_at = t->rsys.scratch + offsetof(typeof(out), subreaper);
	uint64_t xcomp_at = t->rsys.scratch + offsetof(typeof(out), xcomp);
	uint64_t ldt_at = t->rsys.scratch + offsetof(typeof(out), ldt0);
	int r;

	_Static_assert(sizeof(out) <= THREAD_OUT_OFF, "the thread slots follow the output");
	memset(&out, 0, sizeof(out));
	r = remote_write(t->pid, t->rsys.scratch, ksa, sizeof(out.ksa), e);
	if (r < 0)
		return r;
	for (int sig = 1; sig <= NSIG_MAX; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP || !sigaction_needed(st, sig))
			continue;
		names[nops] = "rt_sigaction";
		ops[nops++] = (struct rsys_op){
		    __NR_rt_sigaction, {sig, 0, t->rsys.scratch + (sig - 1) * sizeof(ksa[0]), 8}, 0};
	}
	names[k_sec = nops] = "prctl(PR_GET_SECUREBITS)";
	ops[nops++] = (struct rsys_op){__NR_prctl, {PR_GET_SECUREBITS}, 0};
	names[k_dump = nops] = "prctl(PR_GET_DUMPABLE)";
	ops[nops++] = (struct rsys_op){__NR_prctl, {PR_GET_DUMPABLE}, 0};
	names[k_sub = nops] = "prctl(PR_GET_CHILD_SUBREAPER)";
	ops[nops++] = (struct rsys_op){__NR_prctl, {PR_GET_CHILD_SUBREAPER, sub_at}, 0};
	names[k_thp = nops] = "prctl(PR_GET_THP_DISABLE)";
	ops[nops++] = (struct rsys_op){__NR_prctl, {PR_GET_THP_DISABLE}, 0};
	names[k_brk = nops] = "brk";
	ops[nops++] = (struct rsys_op){__NR_brk, {0}, 0};
	/* last: they alone may fail (EINVAL: a kernel before 6.3, 6.4 or
	 * 5.16, or without KSM, which has none) */
	names[k_mdwe = nops] = "prctl(PR_GET_MDWE)";
	ops[nops++] = (struct rsys_op){__NR_prctl, {PR_GET_MDWE}, 0};
	names[k_ksm = nops] = "prctl(PR_GET_MEMORY_MERGE)";
	ops[nops++] = (struct rsys_op){__NR_prctl, {PR_GET_MEMORY_MERGE}, 0};
	/* the xstate features the process may use, with those it asked for
	 * (ARCH_REQ_XCOMP_PERM: AMX tiles) */
	names[k_xcomp = nops] = "arch_prctl(ARCH_GET_XCOMP_PERM)";
	ops[nops++] = (struct rsys_op){__NR_arch_prctl, {ARCH_GET_XCOMP_PERM, xcomp_at}, 0};
	/* the size of its private futex hash (EINVAL: a kernel before 6.16) */
	names[k_fh = nops] = "prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS)";
	ops[nops++] = (struct rsys_op){__NR_prctl, {PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS}, 0};
	/* its process keyring (create 0: ENOKEY where it has none, nothing
	 * made; told apart by dump_keyring) */
	names[k_key = nops] = "keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING)";
	ops[nops++] = (struct rsys_op){
	    __NR_keyctl,
	    {KEYCTL_GET_KEYRING_ID, (uint64_t)(int64_t)KEY_SPEC_PROCESS_KEYRING, 0},
	    0};
	/* whether it has an LDT (dump_ldt: ENOSYS without modify_ldt) */
	names[k_ldt = nops] = "modify_ldt(0)";
	ops[nops++] = (struct rsys_op){__NR_modify_ldt, {0, ldt_at, 8}, 0};
	r = rsys_batch(&t->rsys, ops, nops, e);
	if (r < 0)
		return r;
	bad = rsys_op_failed(ops, k_mdwe);
	if (bad == k_mdwe) {
		bad = k_key;
		for (size_t k = k_mdwe; k < k_key && bad == k_key; k++)
			if (ops[k].ret < 0 && ops[k].ret != -EINVAL)
				bad = k;
	}
	if (bad < k_key)
		return ckpt_err_errno(e, (int)ops[bad].ret, "remote %s in pid %d%s", names[bad],
				      t->pid, bad < k_sec ? " (signal actions)" : "");
	r = remote_read(t->pid, t->rsys.scratch, &out, sizeof(out), e);
	if (r < 0)
		return r;
	core->sigactions = calloc(NSIG_MAX, sizeof(*core->sigactions));
	if (!core->sigactions)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (int sig = 1; sig <= NSIG_MAX; sig++) {
		SigAction *sa;

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		sa = zalloc(sizeof(*sa), e);
		if (!sa)
			return -ENOMEM;
		sig_action__init(sa);
		sa->sig = sig;
		sa->handler = ksa[sig - 1].handler;
		sa->flags = ksa[sig - 1].flags;
		sa->restorer = ksa[sig - 1].restorer;
		sa->mask = ksa[sig - 1].mask;
		core->sigactions[n++] = sa;
		core->n_sigactions = n;
	}
	core->creds->has_securebits = true;
	core->creds->securebits = (uint32_t)ops[k_sec].ret;
	core->has_dumpable = true;
	core->dumpable = (uint32_t)ops[k_dump].ret;
	core->has_child_subreaper = true;
	core->child_subreaper = out.subreaper != 0;
	core->has_thp_disable = true;
	core->thp_disable = ops[k_thp].ret != 0;
	core->has_mdwe = ops[k_mdwe].ret >= 0;
	core->mdwe = ops[k_mdwe].ret >= 0 ? (uint32_t)ops[k_mdwe].ret : 0;
	core->has_memory_merge = ops[k_ksm].ret >= 0;
	core->memory_merge = ops[k_ksm].ret > 0;
	/* 0 in a process of one thread is one with no private hash yet, most
	 * likely (the kernel makes it with the first thread): left unset, as
	 * the restored process's is */
	core->has_futex_hash_slots = ops[k_fh].ret > 0 || (ops[k_fh].ret == 0 && t->nthreads);
	core->futex_hash_slots = core->has_futex_hash_slots ? (uint32_t)ops[k_fh].ret : 0;
	core->has_xcomp_perm = ops[k_xcomp].ret == 0;
	core->xcomp_perm = ops[k_xcomp].ret == 0 ? out.xcomp : 0;
	t->brk = (uint64_t)ops[k_brk].ret;
	r = dump_keyring(t, st, core, ops[k_key].ret, e);
	if (r >= 0)
		r = dump_ldt(t, ops[k_ldt].ret, core, e);
	if (r < 0)
		return r;
	return dump_timers(t, core, e);
}

/* The credentials of one thread, from its status (securebits come later). */
static int creds_from_status(const struct proc_status *st, Creds **ret, struct ckpt_error *e)
{
	Creds *cr = zalloc(sizeof(*cr), e);

	if (!cr)
		return -ENOMEM;
	creds__init(cr);
	*ret = cr;
	cr->uid = st->uid[0];
	cr->euid = st->uid[1];
	cr->suid = st->uid[2];
	cr->fsuid = st->uid[3];
	cr->gid = st->gid[0];
	cr->egid = st->gid[1];
	cr->sgid = st->gid[2];
	cr->fsgid = st->gid[3];
	if (st->ngroups) {
		cr->groups = calloc(st->ngroups, sizeof(*cr->groups));
		if (!cr->groups)
			return ckpt_err(e, -ENOMEM, "out of memory");
		memcpy(cr->groups, st->groups, st->ngroups * sizeof(*cr->groups));
		cr->n_groups = st->ngroups;
	}
	cr->cap_inh = st->cap_inh;
	cr->cap_prm = st->cap_prm;
	cr->cap_eff = st->cap_eff;
	cr->cap_bnd = st->cap_bnd;
	cr->has_cap_amb = true;
	cr->cap_amb = st->cap_amb;
	cr->has_no_new_privs = true;
	cr->no_new_privs = st->no_new_privs != 0;
	return 0;
}

static int dump_creds(const struct proc_status *st, CoreEntry *core, struct ckpt_error *e)
{
	return creds_from_status(st, &core->creds, e);
}

/*
 * What /proc tells of one thread: its seccomp mode, and for threads other
 * than the main one (whose values are the process's in CoreEntry) its own
 * credentials: both are per thread in the kernel (the personality too:
 * dump_thread_remote). A thread with seccomp filters has them suspended
 * while traced, before its remote session: read here, with every thread
 * frozen, the mode is also the one another thread may have given it
 * (SECCOMP_FILTER_FLAG_TSYNC) while the others were being seized. For the
 * main thread, *ret_vm_lck gets the process's VmLck (KiB) before its
 * session maps anything (dump_mlock_future).
 */
static int dump_thread_status(pid_t pid, pid_t tid, ThreadCore *tc, uint64_t *ret_vm_lck,
			      struct ckpt_error *e)
{
	struct proc_status st;
	int r;

	r = proc_parse_status(tid, &st, e);
	if (r < 0)
		return r;
	if (tid == pid)
		*ret_vm_lck = st.vm_lck_kb;
	/* its return addresses on a stack of their own the restore does not make */
	if (st.shstk)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: thread %d has a shadow stack (x86 CET, ARCH_SHSTK_ENABLE: "
				"glibc turns it on for programs built with it); not supported yet",
				pid, tid);
	if (st.seccomp != 0 && ptrace_suspend_seccomp(tid, e) < 0)
		return e->code;
	tc->has_seccomp_mode = true;
	tc->seccomp_mode = (uint32_t)st.seccomp;
	if (tid == pid)
		return 0;
	return creds_from_status(&st, &tc->creds, e);
}

static int dump_rlimits(pid_t pid, CoreEntry *core, struct ckpt_error *e)
{
	struct proc_rlimit lim[16];
	int r;

	/* /proc/PID/limits, not prlimit: that needs CAP_SYS_RESOURCE here */
	r = proc_parse_limits(pid, lim, e);
	if (r < 0)
		return r;
	core->rlimits = calloc(16, sizeof(*core->rlimits));
	if (!core->rlimits)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (unsigned i = 0; i < 16; i++) {
		Rlimit *rl = zalloc(sizeof(*rl), e);

		if (!rl)
			return -ENOMEM;
		rlimit__init(rl);
		rl->resource = i;
		rl->cur = lim[i].cur;
		rl->max = lim[i].max;
		core->rlimits[core->n_rlimits++] = rl;
	}
	return 0;
}

/* comm and personality: small text files */
static int dump_comm_personality(pid_t pid, CoreEntry *core, struct ckpt_error *e)
{
	char path[64];
	_cleanup_free_ char *comm = NULL, *pers = NULL;
	size_t len;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	r = proc_read_file(path, &comm, &len, e);
	if (r < 0)
		return r;
	comm[strcspn(comm, "\n")] = '\0';
	core->comm = TAKE_PTR(comm);
	snprintf(path, sizeof(path), "/proc/%d/personality", pid);
	r = proc_read_file(path, &pers, &len, e);
	if (r < 0)
		return r;
	core->has_personality = true;
	core->personality = (uint32_t)strtoul(pers, NULL, 16);
	return 0;
}

static int dump_path_link(pid_t pid, const char *name, char **ret, struct ckpt_error *e)
{
	char buf[4096];
	size_t l;
	int r;

	r = proc_readlink(pid, name, buf, sizeof(buf), e);
	if (r < 0)
		return r;
	l = strlen(buf);
	if (l > 10 && !strcmp(buf + l - 10, " (deleted)")) {
		buf[l - 10] = '\0';
		return ckpt_err(e, -EOPNOTSUPP, "its %s %s was deleted; not supported yet", name,
				buf);
	}
	*ret = dump_strdup(buf, e);
	return *ret ? 0 : -ENOMEM;
}

/*
 * The cwd; a deleted one (an empty directory: rmdir needs it empty) is made
 * again at restore from what identifies it, so that tasks sharing it still
 * share one.
 */
static int dump_cwd(pid_t pid, CoreEntry *core, bool save_tmpfs, struct ckpt_error *e)
{
	char buf[4096], path[64];
	struct stat st;
	size_t l;
	int r;

	r = proc_readlink(pid, "cwd", buf, sizeof(buf), e);
	if (r < 0)
		return r;
	l = strlen(buf);
	if (l > 10 && !strcmp(buf + l - 10, " (deleted)")) {
		snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
		if (stat(path, &st) < 0)
			return ckpt_err_errno(e, -errno, "pid %d: stat of its deleted cwd", pid);
		if (st.st_nlink > 0)
			return ckpt_err(
			    e, -EOPNOTSUPP,
			    "pid %d: its cwd %s is named \"(deleted)\" but still linked", pid, buf);
		buf[l - 10] = '\0';
		core->has_cwd_deleted = core->cwd_deleted = true;
		core->has_cwd_dev = core->has_cwd_ino = true;
		core->cwd_dev = st.st_dev;
		core->cwd_ino = st.st_ino;
		core->has_cwd_mode = core->has_cwd_uid = core->has_cwd_gid = true;
		core->cwd_mode = st.st_mode & 07777;
		core->cwd_uid = st.st_uid;
		core->cwd_gid = st.st_gid;
	} else if (save_tmpfs) {
		struct statfs sfs;

		/* a reboot empties it: made again at restore if it is gone */
		snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
		if (statfs(path, &sfs) < 0 || stat(path, &st) < 0)
			return ckpt_err_errno(e, -errno, "pid %d: stat of its cwd %s", pid, buf);
		if (sfs.f_type == TMPFS_MAGIC) {
			core->has_cwd_tmpfs = core->cwd_tmpfs = true;
			core->has_cwd_mode = core->has_cwd_uid = core->has_cwd_gid = true;
			core->cwd_mode = st.st_mode & 07777;
			core->cwd_uid = st.st_uid;
			core->cwd_gid = st.st_gid;
		}
	}
	core->cwd = dump_strdup(buf, e);
	return core->cwd ? 0 : -ENOMEM;
}

static bool siginfos_equal(const ProtobufCBinaryData *a, size_t na, const siginfo_t *si, size_t n)
{
	if (na != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (a[i].len != SIGINFO_SIZE || memcmp(a[i].data, &si[i], SIGINFO_SIZE))
			return false;
	return true;
}

static void siginfos_free(ProtobufCBinaryData *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(b[i].data);
	free(b);
}

/* One pending queue (a thread's own, or shared) read again; replaced if update. */
static int refresh_queue(pid_t tid, bool shared, ProtobufCBinaryData **q, size_t *nq, bool update,
			 bool *changed, struct ckpt_error *e)
{
	_cleanup_free_ siginfo_t *si = NULL;
	ProtobufCBinaryData *b = NULL;
	size_t nsi = 0, nb = 0;
	int r;

	r = ptrace_peek_siginfo(tid, shared, &si, &nsi, e);
	if (r < 0)
		return r;
	if (siginfos_equal(*q, *nq, si, nsi))
		return 0;
	*changed = true;
	if (!update)
		return 0;
	r = siginfos_to_proto(si, nsi, &b, &nb, e);
	if (r < 0) {
		siginfos_free(b, nb);
		return r;
	}
	siginfos_free(*q, *nq);
	*q = b;
	*nq = nb;
	return 0;
}

int dump_task_signals_refresh(struct dump_task *t, bool update, bool *ret_changed,
			      struct ckpt_error *e)
{
	CoreEntry *core = t->core;
	bool changed = false;
	int r;

	for (size_t i = 0; i < core->n_threads; i++) {
		ThreadCore *tc = core->threads[i];

		r = refresh_queue(tc->tid, false, &tc->pending, &tc->n_pending, update, &changed,
				  e);
		if (r < 0)
			return ckpt_err_wrap(e, "pid %d: thread %d: pending signals", t->pid,
					     tc->tid);
	}
	r = refresh_queue(t->pid, true, &core->shared_pending, &core->n_shared_pending, update,
			  &changed, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: pending signals", t->pid);
	*ret_changed = changed;
	return 0;
}

/* /proc/PID/oom_score_adj: per process (the signal struct). */
static int dump_oom_coredump(pid_t pid, CoreEntry *core, struct ckpt_error *e)
{
	char path[64];
	int64_t v;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", pid);
	r = proc_read_number(path, &v, e);
	if (r < 0)
		return r;
	core->has_oom_score_adj = true;
	core->oom_score_adj = (int32_t)v;
	/* which memory a core dump of it holds (MMF_DUMP_*), inherited by its children */
	snprintf(path, sizeof(path), "/proc/%d/coredump_filter", pid);
	r = proc_read_hex(path, &v, e);
	if (r < 0)
		return r;
	core->has_coredump_filter = true;
	core->coredump_filter = (uint32_t)v;
	return 0;
}

/*
 * The nice value of the scheduling group of its session (autogroup), for
 * the root and the session leaders: the restore makes their sessions anew,
 * each with a new autogroup of nice 0, which the others join.
 */
static int dump_autogroup(pid_t pid, CoreEntry *core, struct ckpt_error *e)
{
	struct ckpt_error tmp = {0};
	int nice, r = proc_read_autogroup_nice(pid, &nice, &tmp);

	if (r == -ENOENT) /* a kernel without autogroups */
		return 0;
	if (r < 0) {
		*e = tmp;
		return r;
	}
	core->has_autogroup_nice = true;
	core->autogroup_nice = nice;
	return 0;
}

static int read_audit(pid_t pid, pid_t tid, const char *name, uint32_t *ret, struct ckpt_error *e)
{
	char path[96];
	int64_t v;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", pid, tid, name);
	r = proc_read_number(path, &v, e);
	if (r < 0)
		return r;
	*ret = (uint32_t)v;
	return 0;
}

/*
 * The audit login uid and session id. The kernel keeps them per thread, but
 * a thread can only set its own through /proc/self/loginuid and new threads
 * inherit them: the restorer sets them in the task before it makes its
 * threads, so threads that differ are refused.
 */
static int dump_audit_ids(struct dump_task *t, CoreEntry *core, struct ckpt_error *e)
{
	uint32_t uid, sid;
	int r;

	for (size_t i = 0; i < core->n_threads; i++) {
		pid_t tid = core->threads[i]->tid;

		r = read_audit(t->pid, tid, "loginuid", &uid, e);
		if (r >= 0)
			r = read_audit(t->pid, tid, "sessionid", &sid, e);
		if (r < 0)
			return r;
		if (!i) {
			core->has_loginuid = core->has_sessionid = true;
			core->loginuid = uid;
			core->sessionid = sid;
		} else if (uid != core->loginuid || sid != core->sessionid) {
			return ckpt_err(e, -EOPNOTSUPP,
					"thread %d has audit login uid %u and session %u, the main "
					"thread %u and %u; per-thread audit ids are not supported",
					tid, uid, sid, core->loginuid, core->sessionid);
		}
	}
	return 0;
}

/*
 * A stopped task whose parent in the tree already collected the stop
 * (waitpid(WUNTRACED)): only the kernel reader shows it. Without one, the
 * stop is reported to the parent once more after restore (logged).
 */
static int dump_stop_collected(struct dump_ctx *c, struct dump_task *t, CoreEntry *core,
			       struct ckpt_error *e)
{
	bool collected = false;
	int r;

	if (t == &c->tasks[0])
		return 0; /* its parent is not restored */
	r = kread_stop_collected(&c->kread, t->pid, &collected, e);
	if (r < 0) {
		pr_debug("pid %d: stopped; whether its parent collected the stop is not known "
			 "(%s)\n",
			 t->pid, e->msg);
		ckpt_err_clear(e);
		return 0;
	}
	core->has_stop_collected = collected;
	core->stop_collected = collected;
	return 0;
}

static int dump_core(struct dump_ctx *c, struct dump_task *t, CoreEntry *core, struct ckpt_error *e)
{
	_cleanup_free_ siginfo_t *si = NULL;
	struct proc_status status;
	struct proc_stat st;
	uint64_t vm_lck = 0;
	size_t nsi = 0;
	int r;

	core->pid = t->pid;
	core->has_stopped = true;
	core->stopped = t->stop_sig != 0;
	if (t->stop_sig) {
		core->has_stop_signal = true;
		core->stop_signal = (uint32_t)t->stop_sig;
		r = dump_stop_collected(c, t, core, e);
		if (r < 0)
			return r;
	}
	/* once per dump, not per task or thread */
	if (!c->online_read) {
		r = cpus_online(&c->online, e);
		if (r < 0)
			return r;
		c->online_read = true;
	}
	/* the main thread first, then the others in the order they were seized */
	core->threads = calloc(1 + t->nthreads, sizeof(*core->threads));
	if (!core->threads)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i <= t->nthreads; i++) {
		pid_t tid = i ? t->threads[i - 1] : t->pid;

		core->n_threads = i + 1;
		r = dump_thread(tid, &core->threads[i], e);
		if (r < 0)
			return i ? ckpt_err_wrap(e, "thread %d", tid) : r;
		r = dump_robust_list(tid, core->threads[i], e);
		if (r >= 0)
			r = dump_thread_status(t->pid, tid, core->threads[i], &vm_lck, e);
		if (r >= 0)
			r = dump_thread_sud(t, core->threads[i], e);
		if (r >= 0)
			r = dump_thread_sched(tid, &c->online, core->threads[i], e);
		if (r >= 0)
			r = dump_thread_cgroups(t->pid, tid, core->threads[i], e);
		if (r < 0)
			return r;
	}
	r = dump_seccomp(t, core, e);
	if (r < 0)
		return r;
	r = ptrace_peek_siginfo(t->pid, true, &si, &nsi, e);
	if (r < 0)
		return r;
	r = siginfos_to_proto(si, nsi, &core->shared_pending, &core->n_shared_pending, e);
	if (r < 0)
		return r;

	/* the session's pages first: the status read after them tells
	 * whether the process locks new memory (dump_mlock_future) */
	r = dump_session_open(t, e);
	if (r < 0)
		return r;
	r = proc_parse_status(t->pid, &status, e);
	if (r < 0)
		return r;
	core->umask = status.umask;
	r = dump_creds(&status, core, e);
	if (r >= 0)
		r = dump_mlock_future(t, vm_lck, &status, core, e);
	if (r >= 0)
		r = dump_remote(t, &status, core, e);
	/*
	 * The process session stays open for the threads' sessions: its
	 * syscall instruction in the [vdso] serves every thread (one mm), found
	 * once, not by reading the maps once per thread, which made 10,000
	 * threads (20,000 areas) quadratic (poked: each thread pokes one at its
	 * own ip), and they borrow its scratch and batch pages.
	 */
	if (r >= 0)
		r = dump_threads_remote(t->pid, &t->rsys, core, e);
	if (r >= 0)
		r = dump_area_mempolicies(c, t, e);
	/* closed here, so that the scratch and batch pages are gone before smaps is read */
	if (t->rsys_open) {
		struct ckpt_error tmp = {0};
		int r2;

		t->rsys_open = false;
		r2 = rsys_fini(&t->rsys, r < 0 ? &tmp : e);
		if (r >= 0)
			r = r2;
	}
	if (r < 0)
		return r;
	r = proc_parse_stat(t->pid, &st, e);
	if (r < 0)
		return r;
	core->has_exit_signal = true;
	core->exit_signal = (uint32_t)st.exit_signal;
	r = dump_comm_personality(t->pid, core, e);
	if (r < 0)
		return r;
	r = dump_oom_coredump(t->pid, core, e);
	if (r >= 0 && (t == &c->tasks[0] || t->sid == t->pid))
		r = dump_autogroup(t->pid, core, e);
	if (r >= 0)
		r = dump_audit_ids(t, core, e);
	if (r < 0)
		return r;
	r = dump_rlimits(t->pid, core, e);
	if (r >= 0 && c->opts->caller_unprivileged)
		r = dump_sched_check_unprivileged(core, e);
	if (r >= 0)
		r = dump_keyring_check(c, t, core, e);
	if (r < 0)
		return r;
	r = dump_cwd(t->pid, core, c->opts->save_tmpfs_files, e);
	if (r < 0)
		return r;
	return dump_path_link(t->pid, "root", &core->root, e);
}

int dump_task_core(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e)
{
	CoreEntry *core = zalloc(sizeof(*core), e);

	if (!core)
		return -ENOMEM;
	core_entry__init(core);
	t->core = core;
	return dump_core(c, t, core, e); /* the caller names the pid */
}

/* ---- process tree -------------------------------------------------------- */

/*
 * The restorer rebuilds sessions top-down: a task either leads its session
 * (setsid) or inherits its parent's. The root's session may lie outside the
 * tree (the restorer then makes the root a session leader). Process groups
 * must be led by a task of the tree, or be the root's group.
 */
/* The group and session a task will be in after restore (restorer/plan.c):
 * what is led from outside the tree becomes the root's; -1 is the caller's
 * session, which a --shell-job root joins. */
static pid_t restored_pgid(struct dump_ctx *c, const struct dump_task *t)
{
	if (t == &c->tasks[0] || t->pgid == t->pid || dump_find_task(c, t->pgid))
		return t == &c->tasks[0] ? t->pid : t->pgid;
	return c->tasks[0].pid;
}

static pid_t restored_sid(struct dump_ctx *c, const struct dump_task *t)
{
	const struct dump_task *root = &c->tasks[0];

	if (c->opts->shell_job && (t == root || t->sid == root->sid))
		return -1;
	if (t == root || t->sid == t->pid || dump_find_task(c, t->sid))
		return t == root ? t->pid : t->sid;
	return root->pid;
}

/* After restore, no member of group pgid has its parent in another group of
 * its session: the kernel discards SIGTSTP, SIGTTIN and SIGTTOU there. A
 * --shell-job root's parent is the restorer, in the caller's session. */
static bool restored_group_orphaned(struct dump_ctx *c, pid_t pgid)
{
	for (size_t i = 0; i < c->ntasks; i++) {
		const struct dump_task *m = &c->tasks[i], *p;

		if (restored_pgid(c, m) != pgid)
			continue;
		if (i == 0) {
			if (c->opts->shell_job)
				return false;
			continue;
		}
		p = dump_find_task(c, m->ppid);
		if (p && restored_pgid(c, p) != pgid && restored_sid(c, p) == restored_sid(c, m))
			return false;
	}
	return true;
}

/*
 * A task stopped by a signal other than SIGSTOP is stopped again with that
 * signal at restore; the kernel only lets it stop a task whose group is not
 * orphaned. The root's group is orphaned after restore unless it is restored
 * as a shell job: its parent is outside.
 */
static int check_stops(struct dump_ctx *c, struct ckpt_error *e)
{
	for (size_t i = 0; i < c->ntasks; i++) {
		const struct dump_task *t = &c->tasks[i];
		pid_t pgid = restored_pgid(c, t);

		if (!t->stop_sig || t->stop_sig == SIGSTOP || !restored_group_orphaned(c, pgid))
			continue;
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d is stopped by SIG%s; after restore its process group %d "
				"has no parent in its session (an orphaned group, where the "
				"kernel discards SIG%s), so it could not be stopped by it again: "
				"dump it as a shell job (--shell-job) or continue it (kill -CONT) "
				"first",
				t->pid, sigabbrev_np(t->stop_sig), pgid, sigabbrev_np(t->stop_sig));
	}
	return 0;
}

/* The zombie of the tree whose pid is pid, or NULL. */
static const struct dump_zombie *find_zombie(const struct dump_ctx *c, pid_t pid)
{
	for (size_t i = 0; i < c->nzombies; i++)
		if (c->zombies[i].pid == pid)
			return &c->zombies[i];
	return NULL;
}

/*
 * Task t is in a process group whose leader is neither a task nor a zombie
 * of the tree. When that leader is gone (reaped: a pipeline whose first
 * process exited and was waited for) and every member is in the tree, the
 * restore makes the group again with a helper of that pid (restorer
 * task.c). A leader alive outside the tree, or a member outside it, keeps
 * the group out of reach.
 */
static int check_lost_group(struct dump_ctx *c, const struct dump_task *t, struct ckpt_error *e)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct ckpt_error ignore = {0};
	struct proc_stat st;
	struct dirent *de;
	char path[32];

	/* once per group: an earlier member was looked at already */
	for (const struct dump_task *o = c->tasks; o < t; o++)
		if (o->pgid == t->pgid)
			return 0;
	snprintf(path, sizeof(path), "/proc/%d", t->pgid);
	if (access(path, F_OK) == 0)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: its process group %d is led by pid %d, outside the tree; "
				"not supported",
				t->pid, t->pgid, t->pgid);
	d = opendir("/proc");
	if (!d)
		return ckpt_err_errno(e, -errno, "cannot list /proc");
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || dump_find_task(c, (pid_t)pid) ||
		    proc_parse_stat((pid_t)pid, &st, &ignore) < 0 || st.pgrp != t->pgid)
			continue;
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: its process group %d (whose leader has exited) has pid "
				"%ld (%s) outside the tree; not supported",
				t->pid, t->pgid, pid, st.comm);
	}
	pr_debug("pid %d: process group %d, its leader gone: made again at restore", t->pid,
		 t->pgid);
	return 0;
}

int dump_check_sessions(struct dump_ctx *c, struct ckpt_error *e)
{
	const struct dump_task *root = &c->tasks[0];

	for (size_t i = 0; i < c->nzombies; i++) {
		const struct dump_zombie *z = &c->zombies[i];
		const struct dump_task *p = dump_find_task(c, z->ppid);
		bool group_ok = false;

		/*
		 * The zombie is made again by its parent and moves itself before
		 * it exits: into its parent's group, a group of its own, a session
		 * of its own, or another group of its parent's session whose
		 * leader is a live task of the tree. Live tasks may be members of
		 * the group it leads in its parent's session: they join it once
		 * it is a zombie (setpgid finds a group by any process still in
		 * it, a zombie too, until it is reaped). A session it leads with
		 * live members cannot be made (its members descend from it).
		 */
		for (size_t k = 0; p && k < c->ntasks && !group_ok; k++)
			group_ok = c->tasks[k].pid == z->pgid && c->tasks[k].pgid == z->pgid &&
				   c->tasks[k].sid == p->sid;
		if (p && z->pgid == z->pid)
			group_ok = z->sid == p->sid || z->sid == z->pid;
		for (size_t k = 0; k < c->ntasks && group_ok; k++)
			if ((c->tasks[k].pgid == z->pid && z->sid != p->sid) ||
			    c->tasks[k].sid == z->pid)
				group_ok = false;
		if (!p || !group_ok || (z->sid != p->sid && z->sid != z->pid))
			return ckpt_err(e, -EOPNOTSUPP,
					"pid %d is a zombie in process group %d, session %d, which "
					"it cannot join again before it exits (its parent is pid "
					"%d); not supported",
					z->pid, z->pgid, z->sid, z->ppid);
	}

	for (size_t i = 1; i < c->ntasks; i++) {
		const struct dump_task *t = &c->tasks[i];
		const struct dump_task *p = dump_find_task(c, t->ppid);

		if (t->sid != t->pid && (!p || p->sid != t->sid))
			return ckpt_err(e, -EOPNOTSUPP,
					"pid %d: session layout not supported (its session %d is "
					"neither its own nor its parent's session %d)",
					t->pid, t->sid, p ? p->sid : 0);
		if (t->pgid != root->pgid && !dump_find_task(c, t->pgid) &&
		    !find_zombie(c, t->pgid) && check_lost_group(c, t, e) < 0)
			return e->code;
	}
	return check_stops(c, e);
}

int dump_write_pstree(struct dump_ctx *c, struct ckpt_error *e)
{
	_cleanup_img_ struct img *img = NULL;
	int r;

	r = dump_img_create(c, IMG_PSTREE, 0, &img, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < c->ntasks; i++) {
		const struct dump_task *t = &c->tasks[i];
		const CoreEntry *core = t->core;
		PstreeEntry pe = PSTREE_ENTRY__INIT;
		_cleanup_free_ int32_t *tids = NULL;

		/*
		 * The threads the core saved, not t->threads: a --leave-running
		 * dump has detached them (and emptied that list) by now.
		 */
		if (!core || !core->n_threads || core->threads[0]->tid != t->pid)
			return ckpt_err(e, -EINVAL, "pid %d: no core to write the pstree from",
					t->pid);
		tids = calloc(core->n_threads, sizeof(*tids));
		if (!tids)
			return ckpt_err(e, -ENOMEM, "out of memory");
		for (size_t k = 0; k < core->n_threads; k++)
			tids[k] = core->threads[k]->tid;
		pe.pid = t->pid;
		pe.ppid = t->ppid;
		pe.pgid = t->pgid;
		pe.sid = t->sid;
		pe.n_threads = core->n_threads;
		pe.threads = tids;
		if (t->files_of) {
			pe.has_files_of = true;
			pe.files_of = t->files_of;
		}
		if (t->fs_of) {
			pe.has_fs_of = true;
			pe.fs_of = t->fs_of;
		}
		/* what fds-PID.img must hold (t->fds is in fd order) */
		pe.has_nr_fds = pe.has_fds_crc32c = true;
		pe.nr_fds = (uint32_t)t->nfds;
		pe.fds_crc32c = img_fds_digest(t->fds, t->nfds);
		r = img_write_msg(img, &pe.base, e);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < c->nzombies; i++) {
		const struct dump_zombie *z = &c->zombies[i];
		PstreeEntry pe = PSTREE_ENTRY__INIT;

		pe.pid = z->pid;
		pe.ppid = z->ppid;
		pe.pgid = z->pgid;
		pe.sid = z->sid;
		pe.has_zombie_status = true;
		pe.zombie_status = (uint32_t)z->status;
		pe.zombie_comm = (char *)z->comm;
		r = img_write_msg(img, &pe.base, e);
		if (r < 0)
			return r;
	}
	r = img_close_write(TAKE_PTR(img), e);
	return r;
}
