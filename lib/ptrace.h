/* SPDX-License-Identifier: MIT */
/*
 * ptrace helpers and remote system calls.
 *
 * A remote syscall runs one system call inside a stopped tracee: the caller
 * names an address of a `syscall` instruction (0f 05) in the tracee (at dump:
 * found in the [vdso], else poked over the current instruction and put back;
 * at restore: the restorer's gadget page), the registers are set for the
 * call, the task is resumed with PTRACE_SYSCALL to the syscall-entry and then
 * the syscall-exit stop, and rax is read. The task is left in that
 * syscall-exit stop, so a caller may set final registers there (this is how
 * the restorer unmaps its gadget as the very last call). While a session is
 * open, every signal is blocked in the task (PTRACE_SETSIGMASK), so nothing
 * is delivered between calls; rsys_fini() puts the registers and mask back.
 *
 * All tracees are attached with PTRACE_SEIZE and PTRACE_O_TRACESYSGOOD.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>
#include <signal.h>

#include "error.h"

/* Seize a thread and bring it into a ptrace stop (PTRACE_INTERRUPT, waited for).
 * *ret_stop_sig is the signal of the group stop it was in before (state 'T':
 * SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU, as its group-stop trap reports it),
 * 0 if it was not stopped. A system call that the interrupt made fail with
 * EINTR although it would not have returned (epoll_wait, io_uring_enter,
 * semop, sigtimedwait, socket calls with a timeout...) is set to restart, as
 * if it had been interrupted by a signal without a handler. */
int ptrace_seize_stop(pid_t tid, int *ret_stop_sig, struct ckpt_error *e);
/* The same for a caller that has just read the thread's state letter
 * (proc_tid_state; 'T': stopped): not read again. */
int ptrace_seize_stop_state(pid_t tid, char state, int *ret_stop_sig, struct ckpt_error *e);
/*
 * ptrace_seize_stop_state in two steps, for many threads at once: begin
 * (PTRACE_SEIZE and PTRACE_INTERRUPT; nothing is left attached when it
 * fails) for each, then end (its stop waited for, and settled) for each:
 * the threads trap while P seizes the next ones instead of P sleeping
 * until each has. A thread begun must be ended, also after a failure.
 */
int ptrace_seize_begin(pid_t tid, struct ckpt_error *e);
int ptrace_seize_end(pid_t tid, char state, int *ret_stop_sig, struct ckpt_error *e);
/* Wait for the next ptrace stop of tid; returns the raw wait status. */
int ptrace_wait_stop(pid_t tid, int *ret_status, struct ckpt_error *e);
/*
 * Detach, resuming the task (with the stop signal stop_sig queued first if
 * it is not 0: the task enters a group stop with that signal). A
 * thread in a syscall-exit stop has its registers prepared first
 * (regs_prepare_resume): an interrupted system call restarts, or returns
 * EINTR where a signal now pending makes the kernel decide so.
 */
int ptrace_detach(pid_t tid, int stop_sig, struct ckpt_error *e);

/* PTRACE_O_SUSPEND_SECCOMP on a seized thread (needs CAP_SYS_ADMIN). */
int ptrace_suspend_seccomp(pid_t tid, struct ckpt_error *e);

/*
 * Syscall user dispatch (prctl PR_SET_SYSCALL_USER_DISPATCH) of a stopped
 * tracee, as struct ptrace_sud_config (Linux 6.3+). ptrace_get_sud gives
 * mode 0 (off) on a kernel that cannot tell: none could be set there.
 */
struct ckpt_sud {
	uint64_t mode, selector, offset, len;
};
int ptrace_get_sud(pid_t tid, struct ckpt_sud *ret, struct ckpt_error *e);
int ptrace_set_sud(pid_t tid, const struct ckpt_sud *sud, struct ckpt_error *e);
/*
 * Seccomp filter idx of a stopped thread (0 = the most recent):
 * PTRACE_SECCOMP_GET_FILTER and _GET_METADATA. Returns 1 and fills *ret
 * (malloc'ed, 8 bytes per instruction), *ret_ninsn and *ret_flags; 0 when the
 * chain has fewer filters.
 */
int ptrace_get_seccomp_filter(pid_t tid, unsigned idx, void **ret, size_t *ret_ninsn,
			      uint64_t *ret_flags, struct ckpt_error *e);

int ptrace_get_regs(pid_t tid, struct user_regs_struct *ret, struct ckpt_error *e);
int ptrace_set_regs(pid_t tid, const struct user_regs_struct *regs, struct ckpt_error *e);
/* NT_X86_XSTATE: *ret is malloc'ed, *ret_len its size */
int ptrace_get_xstate(pid_t tid, void **ret, size_t *ret_len, struct ckpt_error *e);
int ptrace_set_xstate(pid_t tid, const void *buf, size_t len, struct ckpt_error *e);
int ptrace_get_sigmask(pid_t tid, uint64_t *ret, struct ckpt_error *e);
int ptrace_set_sigmask(pid_t tid, uint64_t mask, struct ckpt_error *e);

/* PTRACE_GET_RSEQ_CONFIGURATION; *ret_registered false when none */
struct rseq_config {
	uint64_t abi_pointer;
	uint32_t abi_size, signature, flags;
};
int ptrace_get_rseq(pid_t tid, struct rseq_config *ret, bool *ret_registered, struct ckpt_error *e);

/* Pending signals (siginfo_t, 128 bytes each), without dequeuing them.
 * shared: the process-wide queue, else the thread's own. *ret malloc'ed. */
int ptrace_peek_siginfo(pid_t tid, bool shared, siginfo_t **ret, size_t *ret_n,
			struct ckpt_error *e);

/* XCR0 and the xstate size of this CPU (CPUID 0xD / xgetbv). */
int cpu_xfeatures(uint64_t *ret_xcr0, uint32_t *ret_xstate_size);

/*
 * Registers as the task must see them when it resumes somewhere else (a new
 * task after restore, or the same task after remote syscalls): a syscall
 * interrupted by the freeze (orig_rax >= 0 and rax one of the kernel's
 * restart codes) is made to restart (-ERESTARTSYS, -ERESTARTNOINTR,
 * -ERESTARTNOHAND: rax = orig_rax, rip -= 2), or for -ERESTART_RESTARTBLOCK
 * either to call restart_syscall (same_task: the kernel's restart block is
 * still there) or to return -EINTR (new task). orig_rax is set to -1 so the
 * kernel does not apply its own restart logic again.
 */
void regs_fixup_interrupted_syscall(struct user_regs_struct *regs, bool same_task);
/*
 * Final registers of a thread about to be resumed from a syscall-exit stop
 * (after remote syscalls) with signal mask `mask`. When a signal is pending
 * for it (its own or its process's) that the mask lets through, regs stay as
 * saved: the thread resumes through the kernel's signal path, which applies
 * the kernel's own restart rules (EINTR for a handler without SA_RESTART,
 * for pause(), for -ERESTART_RESTARTBLOCK...). Otherwise nothing would run
 * that path, and regs_fixup_interrupted_syscall() restarts the call. A new
 * task (!same_task) interrupted with -ERESTART_RESTARTBLOCK always gets
 * -EINTR: the kernel's restart block of the call is not there.
 */
int regs_prepare_resume(pid_t tid, struct user_regs_struct *regs, uint64_t mask, bool same_task,
			struct ckpt_error *e);

/* ---- remote syscalls ------------------------------------------------------ */

struct rsys {
	pid_t tid;
	uint64_t syscall_ip;	       /* address of a 0f 05 in the task */
	bool poked;		       /* we wrote 0f 05 over original bytes */
	long poke_orig;		       /* original word at syscall_ip */
	struct user_regs_struct saved; /* registers when the session opened */
	uint64_t saved_mask;	       /* signal mask when the session opened */
	uint64_t scratch;	       /* remote scratch page(s), 0 if none */
	size_t scratch_len;
	/* rsys_batch: a code page (r-x) and 16 table pages (rw-) in the task, 0 if
	 * none; -1 once the task refused them (batches then run call by call) */
	int64_t batch;
	uint64_t batch_table; /* 0: the page after the code page */
	size_t batch_room;    /* calls per run of that table (its done flag after them), 0: 1023 */
	bool borrowed;	      /* scratch and batch pages are another session's (or the caller's) */
	bool joint; /* the scratch follows the batch pages in their mapping (rsys_pages) */
	/* a batch between rsys_batch_start and rsys_batch_finish */
	enum { RSYS_IDLE, RSYS_RUNNING, RSYS_INTERRUPTED, RSYS_STOPPED } run_phase;
	size_t run_n;
	long run_first;
	uint64_t run_table, run_flag;
	uint64_t (*run_slots)[8];
	bool run_done;
	int run_rc;
};

/* One system call of a batch: its number and arguments, and its raw result. */
struct rsys_op {
	long nr;
	uint64_t a[6];
	long ret;
};

/*
 * Open a session on a seized, stopped thread. syscall_ip 0: find a syscall
 * instruction in the task's [vdso], else poke one over the current rip.
 */
int rsys_init(struct rsys *r, pid_t tid, uint64_t syscall_ip, struct ckpt_error *e);
/*
 * Run one syscall. Returns 0 when the call was made (its raw result, maybe
 * -errno, in *ret), negative when ptrace failed (task died...). The task is
 * left in its syscall-exit stop.
 */
int rsys_call(struct rsys *r, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
	      uint64_t a5, uint64_t a6, long *ret, struct ckpt_error *e);
/* Map len bytes of anonymous RW scratch memory in the task (r->scratch). */
int rsys_scratch(struct rsys *r, size_t len, struct ckpt_error *e);
/*
 * An area of len bytes of anonymous memory (prot) mapped in the task for one
 * question, besides the scratch (*ret: its address), and unmapped again:
 * rsys_area_unmap reports into e unless an earlier step failed (failed:
 * the error already in e stays, the unmap's is dropped).
 */
int rsys_area_map(struct rsys *r, size_t len, int prot, uint64_t *ret, struct ckpt_error *e);
int rsys_area_unmap(struct rsys *r, uint64_t addr, size_t len, bool failed, struct ckpt_error *e);
/*
 * The same, and the pages of batches (rsys_batch) with it in one mapping:
 * two remote calls instead of three, and one munmap at rsys_fini instead
 * of two. The scratch cannot grow afterwards (rsys_scratch refuses more).
 */
int rsys_pages(struct rsys *r, size_t len, struct ckpt_error *e);
/*
 * Run n system calls in a row in the task, each result in ops[i].ret: in
 * one resume of the task rather than two ptrace stops per call. A few
 * instructions of ours, copied into a code page mapped in the task once
 * per session (PROT_READ|PROT_EXEC, written through /proc/PID/mem), load
 * each call from a table page, make it, store the result, and spin once the
 * table is done; we see the done flag and stop the task with
 * PTRACE_INTERRUPT (no signal is involved, so no handler or mask of the
 * task changes). Where the task refuses the pages (PR_SET_MDWE...), the
 * calls are made one by one with rsys_call. The calls must not block.
 * Returns 0 when every call was made (results may be -errno).
 */
int rsys_batch(struct rsys *r, struct rsys_op *ops, size_t n, struct ckpt_error *e);
/*
 * rsys_batch in three steps, for batches in several threads at once (each
 * session with a table and scratch of its own: rsys_batch_at, batch_room):
 * start them all, then stop each (its done flag seen, PTRACE_INTERRUPT
 * sent), then finish each (its interrupt stop waited for, results in ops).
 * rsys_batch_start returns 1 when the batch runs, 0 when it was not started
 * (no batch pages, more calls than the table holds: the caller makes them
 * with rsys_batch), negative on failure (nothing runs then). A started
 * batch must be finished, also after a failure elsewhere (rsys_batch_finish
 * then returns the failure of its own stop, if any).
 */
struct rsys_write;
int rsys_batch_start(struct rsys *r, struct rsys_op *ops, size_t n, const struct rsys_write *w,
		     size_t nw, struct ckpt_error *e);
int rsys_batch_stop(struct rsys *r, struct ckpt_error *e);
int rsys_batch_finish(struct rsys *r, struct rsys_op *ops, size_t n, struct ckpt_error *e);

/* Memory to write into the task before a batch runs (its calls' arguments). */
struct rsys_write {
	uint64_t addr;
	const void *buf;
	size_t len;
};
/* rsys_batch, the nw writes made first, in the system call that writes the
 * table (one process_vm_writev where the task lets us). */
int rsys_batch_with(struct rsys *r, struct rsys_op *ops, size_t n, const struct rsys_write *w,
		    size_t nw, struct ckpt_error *e);

/* The table of a batch: 1023 calls and the done flag. */
#define RSYS_BATCH_TABLE (16 * 4096UL)
/* A lane: a slice of a table for one of several batches at once, 63 calls
 * and its done flag. */
#define RSYS_LANE_BYTES 4096UL
#define RSYS_LANE_CALLS (RSYS_LANE_BYTES / 64 - 1)
/* The code rsys_batch runs in the task, for a caller that maps it itself. */
const unsigned char *rsys_batch_code(size_t *ret_len);
/*
 * Batches of this session run the code the caller put at code (r-x) with
 * the table at table (RSYS_BATCH_TABLE bytes, rw-), both in the task and
 * left there by rsys_fini (the restorer's gadget).
 */
void rsys_batch_at(struct rsys *r, uint64_t code, uint64_t table);

/* The first of n ops whose result is -errno, n if none (after rsys_batch). */
static inline size_t rsys_op_failed(const struct rsys_op *ops, size_t n)
{
	size_t i = 0;

	while (i < n && !(ops[i].ret < 0 && ops[i].ret > -4096))
		i++;
	return i;
}
/*
 * A session on another thread of the same process uses owner's scratch and
 * batch pages (one address space): no pages of its own to map and unmap.
 * owner's session must stay open meanwhile.
 */
void rsys_borrow(struct rsys *r, const struct rsys *owner);
/* Whether start..end lies in the pages the session mapped in the task
 * (scratch, batch pages), not the task's own. */
bool rsys_owns(const struct rsys *r, uint64_t start, uint64_t end);
/* The same, the batches of r in lane k of owner's table (k <
 * RSYS_BATCH_TABLE / RSYS_LANE_BYTES): for batches of several threads at
 * once (rsys_batch_start). */
void rsys_borrow_lane(struct rsys *r, const struct rsys *owner, unsigned k);
/* Close the session: unmap scratch and batch pages (unless borrowed), put
 * back poked bytes, registers (as saved: see ptrace_detach) and mask. */
int rsys_fini(struct rsys *r, struct ckpt_error *e);

/* Copy memory to/from a task: process_vm_{read,write}v, falling back to
 * /proc/PID/mem for areas the task itself cannot read or write. */
int remote_read(pid_t pid, uint64_t addr, void *buf, size_t len, struct ckpt_error *e);
int remote_write(pid_t pid, uint64_t addr, const void *buf, size_t len, struct ckpt_error *e);
