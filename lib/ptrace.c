/* SPDX-License-Identifier: MIT */
/*
 * ptrace helpers and remote system calls (contract in ptrace.h).
 *
 * Signals that race with the seize. After PTRACE_SEIZE, a signal may be
 * dequeued (signal-delivery stop) before our PTRACE_INTERRUPT trap is
 * reported. A dequeued signal cannot be put back, and suppressing it would
 * lose it. We hand it back with PTRACE_CONT(sig): the kernel then does
 * exactly what it would have done without us (sets up the handler frame,
 * ignores it, starts a group stop, or kills the task), and because our
 * interrupt trap is still pending, the task traps into PTRACE_EVENT_STOP in
 * the same pass through get_signal(), before it executes a single user
 * instruction. The frozen state is then "about to run the handler", which is
 * as consistent as any other point. A stop signal leaves the task in a group
 * stop, which is reported as *ret_stop_sig.
 */
#define LOG_PREFIX "ptrace: "

#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "cleanup.h"
#include "fault.h"
#include "log.h"
#include "proc.h"
#include "ptrace.h"

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

/* Kernel-internal restart codes, visible in rax at a stop inside a syscall. */
#define ERESTARTSYS 512
#define ERESTARTNOINTR 513
#define ERESTARTNOHAND 514
#define ERESTART_RESTARTBLOCK 516
#define NR_RESTART_SYSCALL 219

#define SYSCALL_STOP_SIG (SIGTRAP | 0x80)

/* Our own copy of the kernel ABI struct (glibc's name varies by version). */
struct ptrace_rseq_conf {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};

struct ptrace_peeksiginfo {
	uint64_t off;
	uint32_t flags;
	int32_t nr;
};

static bool is_group_stop_sig(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

/*
 * State letter of the thread, or 0 if unreadable. From task/TID/stat: the
 * thread's own line; /proc/TID/stat is its whole process's, whose CPU
 * times the kernel sums over every thread (10,000 threads seized one by
 * one made that quadratic).
 */
static char proc_state(pid_t tid)
{
	char path[64], buf[512];
	_cleanup_close_ int fd = -1;
	ssize_t n;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", tid, tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may contain spaces and parentheses: the state follows the last ')' */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	return p[2];
}

/* Is tid a process (not a thread) whose parent we are? */
static bool our_child(pid_t tid)
{
	struct proc_status st;
	struct ckpt_error e = {0};

	return proc_parse_status(tid, &st, &e) == 0 && st.ppid == getpid() && st.tgid == tid;
}

/*
 * waitpid(tid, __WALL | flags) for a stop of a task we trace, except that
 * the end of a process we are also the parent of is only seen, not
 * collected (its status in *status all the same): that parent's own wait
 * (ckptctl run's for its job) must still get it. Collecting it here lost
 * the exit of a job that ended while a checkpoint seized it: ckptctl run
 * never saw its end and checkpointed a job long gone (test_run).
 */
static pid_t wait_tracee(pid_t tid, int *status, int flags)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)tid, &si, WEXITED | WSTOPPED | __WALL | WNOWAIT | flags) < 0)
		return -1;
	if (!si.si_pid)
		return 0; /* WNOHANG: nothing yet */
	if ((si.si_code == CLD_EXITED || si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) &&
	    our_child(tid)) {
		if (si.si_code == CLD_EXITED)
			*status = (si.si_status & 0xff) << 8;
		else
			*status = (si.si_status & 0x7f) | (si.si_code == CLD_DUMPED ? 0x80 : 0);
		return tid;
	}
	return waitpid(tid, status, __WALL | flags);
}

int ptrace_wait_stop(pid_t tid, int *ret_status, struct ckpt_error *e)
{
	int status;
	pid_t r;

	do
		r = wait_tracee(tid, &status, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return ckpt_err_errno(e, -errno, "pid %d: waiting for a ptrace stop", tid);
	if (WIFEXITED(status))
		return ckpt_err(e, -ESRCH, "pid %d exited (status %d) while it was frozen", tid,
				WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return ckpt_err(e, -ESRCH, "pid %d was killed by signal %d while it was frozen",
				tid, WTERMSIG(status));
	if (!WIFSTOPPED(status))
		return ckpt_err(e, -EIO, "pid %d: unexpected wait status 0x%x", tid, status);
	*ret_status = status;
	return 0;
}

/*
 * Like ptrace_wait_stop, but gives up after SEIZE_TIMEOUT_MS: a task in an
 * uninterruptible sleep (a vfork parent waiting for its child, a hung NFS
 * read) traps only when it wakes up, and a dump must not hang on it. It is
 * left attached then: the kernel detaches it when this process exits, and
 * PTRACE_DETACH is impossible until it stops.
 */
#define SEIZE_TIMEOUT_MS 5000

static int wait_stop_timeout(pid_t tid, int *ret_status, struct ckpt_error *e)
{
	long waited_us = 0, step_us = 10;

	for (;;) {
		int status;
		pid_t r = wait_tracee(tid, &status, WNOHANG);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ckpt_err_errno(e, -errno, "pid %d: waiting for a ptrace stop", tid);
		if (r == tid) {
			if (WIFEXITED(status) || WIFSIGNALED(status))
				return ckpt_err(e, -ESRCH,
						"pid %d exited while it was being seized", tid);
			*ret_status = status;
			return 0;
		}
		if (waited_us >= SEIZE_TIMEOUT_MS * 1000L)
			return ckpt_err(
			    e, -ETIMEDOUT, "pid %d did not stop within %d s (state %c%s)", tid,
			    SEIZE_TIMEOUT_MS / 1000, proc_state(tid) ?: '?',
			    proc_state(tid) == 'D' ? ": in an uninterruptible sleep" : "");
		usleep(step_us);
		waited_us += step_us;
		if (step_us < 10000)
			step_us *= 2;
	}
}

/* Is a signal pending for thread tid (its own or its process's) that mask lets through? */
static int signal_deliverable(pid_t tid, uint64_t mask, struct ckpt_error *e)
{
	struct proc_status st;
	int r = proc_parse_status(tid, &st, e);

	if (r < 0)
		return ckpt_err_wrap(e, "thread %d: its pending signals", tid);
	/* bit n-1 is signal n in both the masks of status and ours */
	return ((st.sig_pnd | st.shd_pnd) & ~mask) != 0;
}

/*
 * System calls that return -EINTR, not a restart code, as soon as any signal
 * is pending, even one without a handler: our PTRACE_INTERRUPT makes them
 * fail where nothing else would have (epoll_wait, io_uring_enter's wait,
 * semop, sigtimedwait, AIO's getevents, and socket calls on a socket with
 * SO_RCVTIMEO / SO_SNDTIMEO: sock_intr_errno()). read/write and their
 * vector forms only when the fd is a socket: elsewhere -EINTR is a
 * driver's own answer.
 */
static bool eintr_on_any_signal(pid_t tid, const struct user_regs_struct *regs)
{
	char path[64], target[32];
	ssize_t n;

	switch ((long)regs->orig_rax) {
	case __NR_epoll_wait:
	case __NR_epoll_pwait:
	case __NR_epoll_pwait2:
	case __NR_io_uring_enter:
	case __NR_io_getevents:
	case __NR_io_pgetevents:
	case __NR_semop:
	case __NR_semtimedop:
	case __NR_rt_sigtimedwait:
	case __NR_accept:
	case __NR_accept4:
	case __NR_connect:
	case __NR_recvfrom:
	case __NR_recvmsg:
	case __NR_recvmmsg:
	case __NR_sendto:
	case __NR_sendmsg:
	case __NR_sendmmsg:
		return true;
	case __NR_read:
	case __NR_write:
	case __NR_readv:
	case __NR_writev:
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", tid, (int)regs->rdi);
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			return false;
		target[n] = '\0';
		return !strncmp(target, "socket:", 7);
	default:
		return false;
	}
}

/*
 * The freeze must not be seen: a thread our interrupt took out of one of the
 * calls above, with no other signal pending that its mask lets through, is
 * given -ERESTARTNOHAND instead of -EINTR. From there the kernel's own rules
 * apply wherever it resumes: the call restarts, unless a signal with a
 * handler arrives first (then EINTR, as without us). A signal that is pending
 * caused the EINTR itself, and it stays.
 */
static int undo_freeze_eintr(pid_t tid, struct user_regs_struct *regs, struct ckpt_error *e)
{
	uint64_t mask;
	int r;

	if ((long)regs->orig_rax < 0 || (long)regs->rax != -EINTR || !eintr_on_any_signal(tid, regs))
		return 0;
	r = ptrace_get_sigmask(tid, &mask, e);
	if (r >= 0)
		r = signal_deliverable(tid, mask, e);
	if (r != 0)
		return r < 0 ? r : 0;
	pr_debug("pid %d: syscall %ld interrupted by the freeze will restart", tid,
		 (long)regs->orig_rax);
	regs->rax = (uint64_t)-ERESTARTNOHAND;
	return 1;
}

/*
 * A thread frozen inside a restartable-sequence critical section is moved
 * to the section's abort handler, as the kernel does to a thread preempted
 * there (rseq_ip_fixup): its rseq_cs is cleared and rip set to abort_ip.
 * Left alone, the first remote syscall would return it to user mode at our
 * syscall instruction, outside the section, and the kernel would only clear
 * rseq_cs: the thread would then carry on in the middle of the section after
 * the freeze (maybe on another cpu), which the section's code relies on
 * never happening. Not inside a section, or inside a system call (no
 * section makes one), nothing changes; a section whose abort handler lacks
 * the signature is left for the kernel to deal with (it kills the thread).
 */
static int abort_rseq_section(pid_t tid, struct user_regs_struct *regs, struct ckpt_error *e)
{
	struct rseq_config conf;
	bool registered;
	uint64_t cs_ptr = 0, cs[4], zero = 0;
	uint32_t sig = 0;
	int r;

	if ((long)regs->orig_rax >= 0)
		return 0;
	/* a kernel without PTRACE_GET_RSEQ_CONFIGURATION (before 5.13): nothing to see */
	if (ptrace_get_rseq(tid, &conf, &registered, NULL) < 0 || !registered)
		return 0;
	/* struct rseq: rseq_cs at offset 8; struct rseq_cs: version and flags,
	 * start_ip, post_commit_offset, abort_ip */
	if (remote_read(tid, conf.abi_pointer + 8, &cs_ptr, sizeof(cs_ptr), NULL) < 0 || !cs_ptr)
		return 0;
	if (remote_read(tid, cs_ptr, cs, sizeof(cs), NULL) < 0)
		return 0;
	if (regs->rip < cs[1] || regs->rip - cs[1] >= cs[2])
		return 0;
	if (cs[3] < 4 || remote_read(tid, cs[3] - 4, &sig, sizeof(sig), NULL) < 0 ||
	    sig != conf.signature)
		return 0;
	r = remote_write(tid, conf.abi_pointer + 8, &zero, sizeof(zero), e);
	if (r < 0)
		return ckpt_err_wrap(e, "thread %d: clearing its rseq critical section", tid);
	pr_debug("pid %d: frozen in an rseq critical section at 0x%llx: to its abort handler "
		 "0x%" PRIx64,
		 tid, (unsigned long long)regs->rip, cs[3]);
	regs->rip = cs[3];
	return 1;
}

/* What the freeze must not change (above): the thread's registers, once. */
static int settle_frozen_thread(pid_t tid, bool was_stopped, struct ckpt_error *e)
{
	struct user_regs_struct regs;
	int r, changed = 0;

	r = ptrace_get_regs(tid, &regs, e);
	if (r < 0)
		return r;
	/* a stop signal's EINTR is the kernel's own (it stays after SIGCONT) */
	if (!was_stopped) {
		r = undo_freeze_eintr(tid, &regs, e);
		if (r < 0)
			return r;
		changed |= r;
	}
	r = abort_rseq_section(tid, &regs, e);
	if (r < 0)
		return r;
	changed |= r;
	return changed ? ptrace_set_regs(tid, &regs, e) : 0;
}

int ptrace_seize_stop(pid_t tid, int *ret_stop_sig, struct ckpt_error *e)
{
	return ptrace_seize_stop_state(tid, proc_state(tid), ret_stop_sig, e);
}

int ptrace_seize_stop_state(pid_t tid, char state, int *ret_stop_sig, struct ckpt_error *e)
{
	int r = ptrace_seize_begin(tid, e);

	return r < 0 ? r : ptrace_seize_end(tid, state, ret_stop_sig, e);
}

int ptrace_seize_begin(pid_t tid, struct ckpt_error *e)
{
	int r;

	if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)(long)PTRACE_O_TRACESYSGOOD) < 0) {
		r = -errno;
		if (r == -EPERM)
			return ckpt_err(
			    e, r,
			    "cannot seize pid %d: operation not permitted (is it already "
			    "traced, e.g. by a debugger, or exiting?)",
			    tid);
		return ckpt_err_errno(e, r, "cannot seize pid %d", tid);
	}
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0) {
		r = ckpt_err_errno(e, -errno, "pid %d: PTRACE_INTERRUPT", tid);
		ptrace(PTRACE_DETACH, tid, NULL, NULL);
		return r;
	}
	return 0;
}

int ptrace_seize_end(pid_t tid, char state, int *ret_stop_sig, struct ckpt_error *e)
{
	bool was_stopped = state == 'T';
	int status = 0, stop_sig = 0, r;

	for (;;) {
		r = wait_stop_timeout(tid, &status, e);
		if (r < 0)
			return r;
		if (status >> 16 == PTRACE_EVENT_STOP) {
			/* interrupt trap (SIGTRAP) or group-stop trap (the stop signal) */
			if (is_group_stop_sig(WSTOPSIG(status))) {
				was_stopped = true;
				stop_sig = WSTOPSIG(status);
			}
			break;
		}
		if (status >> 16 == 0 && WSTOPSIG(status) != SYSCALL_STOP_SIG) {
			/* signal-delivery stop that raced with the interrupt: see top */
			pr_debug("pid %d: signal %d arrived during seize, handing it back", tid,
				 WSTOPSIG(status));
			r = ptrace(PTRACE_CONT, tid, NULL, (void *)(long)WSTOPSIG(status));
		} else {
			r = ptrace(PTRACE_CONT, tid, NULL, NULL);
		}
		if (r < 0) {
			r = ckpt_err_errno(e, -errno, "pid %d: PTRACE_CONT during seize", tid);
			ptrace(PTRACE_DETACH, tid, NULL, NULL);
			return r;
		}
	}
	/* state T without a group-stop trap: not seen, but a stop all the same */
	if (was_stopped && !stop_sig)
		stop_sig = SIGSTOP;
	r = settle_frozen_thread(tid, was_stopped, e);
	if (r < 0) {
		ptrace(PTRACE_DETACH, tid, NULL, NULL);
		return r;
	}
	if (ret_stop_sig)
		*ret_stop_sig = stop_sig;
	pr_debug("pid %d seized%s (%d)", tid, was_stopped ? " (was stopped)" : "", stop_sig);
	return 0;
}

/*
 * A thread left in the syscall-exit stop of a remote syscall with the
 * registers of a system call it was interrupted in: see
 * regs_prepare_resume(). In its original stop (PTRACE_INTERRUPT, inside
 * the kernel's signal path) nothing is needed: the kernel restarts or
 * interrupts the call itself once the thread runs.
 */
static int prepare_detach(pid_t tid, struct ckpt_error *e)
{
	struct user_regs_struct regs, fixed;
	siginfo_t si;
	uint64_t mask;
	int r;

	if (ptrace(PTRACE_GETSIGINFO, tid, NULL, &si) < 0 || si.si_code != (SIGTRAP | 0x80))
		return 0;
	r = ptrace_get_regs(tid, &regs, e);
	if (r < 0)
		return r;
	r = ptrace_get_sigmask(tid, &mask, e);
	if (r < 0)
		return r;
	fixed = regs;
	r = regs_prepare_resume(tid, &fixed, mask, true, e);
	if (r < 0)
		return r;
	if (!memcmp(&fixed, &regs, sizeof(regs)))
		return 0;
	return ptrace_set_regs(tid, &fixed, e);
}

int ptrace_detach(pid_t tid, int stop_sig, struct ckpt_error *e)
{
	int r;

	/* Queued while the task is in a ptrace stop, the stop signal is dequeued
	 * right after the detach and puts the task in a group stop with it. */
	if (stop_sig && kill(tid, stop_sig) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: queuing signal %d before detach", tid,
				      stop_sig);
	r = prepare_detach(tid, e);
	if (r < 0)
		return r;
	if (ptrace(PTRACE_DETACH, tid, NULL, NULL) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: PTRACE_DETACH", tid);
	return 0;
}

/*
 * PTRACE_O_SUSPEND_SECCOMP: while we trace tid, its seccomp filters (or
 * strict mode) do not apply, so remote syscalls are never blocked by them.
 * Needs CAP_SYS_ADMIN and a tracer not under seccomp itself; the kernel
 * clears it at detach.
 */
int ptrace_suspend_seccomp(pid_t tid, struct ckpt_error *e)
{
	long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_SUSPEND_SECCOMP;
	/* (a restorer of a non-root caller raises it for this call only) */
	uint64_t saved = caps_raise(CAPS_BIT(CAP_SYS_ADMIN));
	long r = ptrace(PTRACE_SETOPTIONS, tid, NULL, (void *)opts);

	caps_restore(saved);
	if (r < 0)
		return ckpt_err_errno(
		    e, -errno,
		    "pid %d runs under seccomp: suspending its filters while it "
		    "is traced (PTRACE_O_SUSPEND_SECCOMP, needs CAP_SYS_ADMIN and "
		    "no seccomp filter on ckpt itself)",
		    tid);
	return 0;
}

#ifndef PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG
#define PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG 0x4210
#define PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG 0x4211
#endif

int ptrace_get_sud(pid_t tid, struct ckpt_sud *ret, struct ckpt_error *e)
{
	memset(ret, 0, sizeof(*ret));
	if (ptrace(PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG, tid, (void *)sizeof(*ret), ret) == 0)
		return 0;
	/* EIO: a request this kernel does not have */
	if (errno == EIO)
		return 0;
	return ckpt_err_errno(e, -errno, "thread %d: PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG", tid);
}

int ptrace_set_sud(pid_t tid, const struct ckpt_sud *sud, struct ckpt_error *e)
{
	struct ckpt_sud c = *sud;

	if (ptrace(PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG, tid, (void *)sizeof(c), &c) == 0)
		return 0;
	return ckpt_err_errno(e, -errno,
			      "thread %d: syscall user dispatch mode %" PRIu64 " selector %#" PRIx64
			      " range %#" PRIx64 "+%#" PRIx64
			      " (PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG)",
			      tid, c.mode, c.selector, c.offset, c.len);
}

int ptrace_get_seccomp_filter(pid_t tid, unsigned idx, void **ret, size_t *ret_ninsn,
			      uint64_t *ret_flags, struct ckpt_error *e)
{
	struct {
		uint64_t filter_off;
		uint64_t flags;
	} md = {.filter_off = idx};
	_cleanup_free_ void *buf = NULL;
	long n, n2;

	n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)(long)idx, NULL);
	if (n < 0 && errno == ENOENT)
		return 0;
	if (n < 0)
		return ckpt_err_errno(e, -errno, "pid %d: reading seccomp filter %u", tid, idx);
	buf = calloc(n ? (size_t)n : 1, 8);
	if (!buf)
		return ckpt_err(e, -ENOMEM, "out of memory");
	n2 = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)(long)idx, buf);
	if (n2 < 0)
		return ckpt_err_errno(e, -errno, "pid %d: reading seccomp filter %u", tid, idx);
	if (n2 != n)
		return ckpt_err(e, -EIO, "pid %d: seccomp filter %u changed size while read", tid,
				idx);
	if (ptrace(PTRACE_SECCOMP_GET_METADATA, tid, (void *)sizeof(md), &md) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: reading seccomp filter %u metadata", tid,
				      idx);
	*ret = TAKE_PTR(buf);
	*ret_ninsn = (size_t)n;
	*ret_flags = md.flags;
	return 1;
}

/* ---- registers and per-thread state --------------------------------------- */

int ptrace_get_regs(pid_t tid, struct user_regs_struct *ret, struct ckpt_error *e)
{
	struct user_regs_struct regs;
	struct iovec iov = {.iov_base = &regs, .iov_len = sizeof(regs)};

	if (ptrace(PTRACE_GETREGSET, tid, (void *)(long)NT_PRSTATUS, &iov) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: reading registers", tid);
	if (iov.iov_len != sizeof(regs))
		return ckpt_err(e, -EIO, "pid %d: registers of unexpected size %zu", tid,
				iov.iov_len);
	*ret = regs;
	return 0;
}

int ptrace_set_regs(pid_t tid, const struct user_regs_struct *regs, struct ckpt_error *e)
{
	struct iovec iov = {.iov_base = (void *)regs, .iov_len = sizeof(*regs)};

	if (ptrace(PTRACE_SETREGSET, tid, (void *)(long)NT_PRSTATUS, &iov) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: setting registers", tid);
	return 0;
}

int ptrace_get_xstate(pid_t tid, void **ret, size_t *ret_len, struct ckpt_error *e)
{
	/* Larger than any XSAVE area (AMX included); the kernel tells the size. */
	const size_t max = 64 * 1024;
	_cleanup_free_ void *buf = calloc(1, max);
	struct iovec iov;
	void *shrunk;

	if (!buf)
		return ckpt_err(e, -ENOMEM, "pid %d: out of memory for xstate", tid);
	iov.iov_base = buf;
	iov.iov_len = max;
	if (ptrace(PTRACE_GETREGSET, tid, (void *)(long)NT_X86_XSTATE, &iov) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: reading xstate (NT_X86_XSTATE)", tid);
	shrunk = realloc(buf, iov.iov_len ? iov.iov_len : 1);
	if (shrunk)
		buf = shrunk;
	*ret_len = iov.iov_len;
	*ret = TAKE_PTR(buf);
	return 0;
}

int ptrace_set_xstate(pid_t tid, const void *buf, size_t len, struct ckpt_error *e)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	if (ptrace(PTRACE_SETREGSET, tid, (void *)(long)NT_X86_XSTATE, &iov) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: setting xstate (%zu bytes)", tid, len);
	return 0;
}

int ptrace_get_sigmask(pid_t tid, uint64_t *ret, struct ckpt_error *e)
{
	uint64_t mask;

	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(mask), &mask) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: reading the signal mask", tid);
	*ret = mask;
	return 0;
}

int ptrace_set_sigmask(pid_t tid, uint64_t mask, struct ckpt_error *e)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(mask), &mask) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: setting the signal mask", tid);
	return 0;
}

int ptrace_get_rseq(pid_t tid, struct rseq_config *ret, bool *ret_registered, struct ckpt_error *e)
{
	struct ptrace_rseq_conf conf = {0};
	long r;

	r = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof(conf), &conf);
	if (r < 0)
		return ckpt_err_errno(e, -errno, "pid %d: reading the rseq configuration", tid);
	ret->abi_pointer = conf.rseq_abi_pointer;
	ret->abi_size = conf.rseq_abi_size;
	ret->signature = conf.signature;
	ret->flags = conf.flags;
	*ret_registered = conf.rseq_abi_pointer != 0;
	return 0;
}

int ptrace_peek_siginfo(pid_t tid, bool shared, siginfo_t **ret, size_t *ret_n,
			struct ckpt_error *e)
{
	const int batch = 32;
	_cleanup_free_ siginfo_t *all = NULL;
	size_t n = 0;

	for (;;) {
		struct ptrace_peeksiginfo args = {
		    .off = n,
		    .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0,
		    .nr = batch,
		};
		siginfo_t *grown = realloc(all, (n + batch) * sizeof(*all));
		long got;

		if (!grown)
			return ckpt_err(e, -ENOMEM, "pid %d: out of memory for pending signals",
					tid);
		all = grown;
		got = ptrace(PTRACE_PEEKSIGINFO, tid, &args, all + n);
		if (got < 0)
			return ckpt_err_errno(e, -errno, "pid %d: reading %s pending signals", tid,
					      shared ? "process-wide" : "thread");
		if (got == 0)
			break;
		n += got;
	}
	*ret_n = n;
	*ret = TAKE_PTR(all);
	return 0;
}

int cpu_xfeatures(uint64_t *ret_xcr0, uint32_t *ret_xstate_size)
{
	unsigned int a, b, c, d;
	uint32_t lo, hi;

	/* CPUID.1:ECX.OSXSAVE[bit 27]: the OS enabled XSAVE and xgetbv works */
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))
		return -EOPNOTSUPP;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	__cpuid_count(0xd, 0, a, b, c, d);
	*ret_xcr0 = ((uint64_t)hi << 32) | lo;
	/* EBX: size of the XSAVE area for the features enabled in XCR0 */
	*ret_xstate_size = b;
	return 0;
}

void regs_fixup_interrupted_syscall(struct user_regs_struct *regs, bool same_task)
{
	long orig = (long)regs->orig_rax;
	long rax = (long)regs->rax;

	if (orig < 0)
		return;
	switch (rax) {
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
	case -ERESTARTNOHAND:
		regs->rax = regs->orig_rax;
		regs->rip -= 2;
		break;
	case -ERESTART_RESTARTBLOCK:
		if (same_task) {
			regs->rax = NR_RESTART_SYSCALL;
			regs->rip -= 2;
		} else {
			regs->rax = (uint64_t)-EINTR;
		}
		break;
	default:
		break;
	}
	regs->orig_rax = (uint64_t)-1;
}

int regs_prepare_resume(pid_t tid, struct user_regs_struct *regs, uint64_t mask, bool same_task,
			struct ckpt_error *e)
{
	int r;

	if ((long)regs->orig_rax < 0)
		return 0;
	/*
	 * A new task has no restart block of the call: left raw, the kernel's
	 * own path would run restart_syscall with whatever block the task has.
	 * -EINTR, always (a handler then runs and the call returns EINTR).
	 */
	if (!same_task && (long)regs->rax == -ERESTART_RESTARTBLOCK) {
		regs_fixup_interrupted_syscall(regs, false);
		return 0;
	}
	r = signal_deliverable(tid, mask, e);
	if (r != 0)
		return r < 0 ? r : 0;
	regs_fixup_interrupted_syscall(regs, same_task);
	return 0;
}

/* ---- remote memory -------------------------------------------------------- */

static int proc_mem_io(pid_t pid, uint64_t addr, void *buf, size_t len, bool write,
		       struct ckpt_error *e)
{
	char path[64];
	_cleanup_close_ int fd = -1;
	size_t done = 0;

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = proc_open_tracee(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "pid %d: opening %s", pid, path);
	while (done < len) {
		ssize_t n;

		if (write)
			n = pwrite(fd, (char *)buf + done, len - done, (off_t)(addr + done));
		else
			n = pread(fd, (char *)buf + done, len - done, (off_t)(addr + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ckpt_err_errno(e, n < 0 ? -errno : -EIO,
					      "pid %d: %s memory at 0x%" PRIx64 " (%zu bytes)", pid,
					      write ? "writing" : "reading", addr + done,
					      len - done);
		done += n;
	}
	return 0;
}

static int remote_io(pid_t pid, uint64_t addr, void *buf, size_t len, bool write,
		     struct ckpt_error *e)
{
	size_t done = 0;

	while (done < len) {
		struct iovec local = {.iov_base = (char *)buf + done, .iov_len = len - done};
		struct iovec remote = {.iov_base = (void *)(uintptr_t)(addr + done),
				       .iov_len = len - done};
		ssize_t n;

		if (write)
			n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
		else
			n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
		if (n > 0) {
			done += n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ESRCH)
			return ckpt_err(e, -ESRCH, "pid %d is gone", pid);
		/* EFAULT, or a page the task cannot access (PROT_NONE, read-only for
		 * writes): /proc/PID/mem accesses it with FOLL_FORCE. */
		return proc_mem_io(pid, addr + done, (char *)buf + done, len - done, write, e);
	}
	return 0;
}

/*
 * Several ranges in one system call when the task lets us (the common
 * case): process_vm_readv/writev go through the iovecs in order. Anything
 * short of the whole, each again one by one (remote_io: /proc/PID/mem where
 * the task's pages refuse).
 */
#define RIOV_MAX 32

struct riov {
	uint64_t addr;
	void *buf;
	size_t len;
};

static int remote_iov(pid_t pid, const struct riov *v, size_t n, bool write, struct ckpt_error *e)
{
	struct iovec local[RIOV_MAX], remote[RIOV_MAX];
	size_t total = 0;
	ssize_t got = -1;
	int r;

	if (n <= RIOV_MAX) {
		for (size_t i = 0; i < n; i++) {
			local[i] = (struct iovec){v[i].buf, v[i].len};
			remote[i] = (struct iovec){(void *)(uintptr_t)v[i].addr, v[i].len};
			total += v[i].len;
		}
		if (write)
			got = process_vm_writev(pid, local, n, remote, n, 0);
		else
			got = process_vm_readv(pid, local, n, remote, n, 0);
		if (got == (ssize_t)total)
			return 0;
	}
	for (size_t i = 0; i < n; i++) {
		r = remote_io(pid, v[i].addr, v[i].buf, v[i].len, write, e);
		if (r < 0)
			return r;
	}
	return 0;
}

int remote_read(pid_t pid, uint64_t addr, void *buf, size_t len, struct ckpt_error *e)
{
	return remote_io(pid, addr, buf, len, false, e);
}

int remote_write(pid_t pid, uint64_t addr, const void *buf, size_t len, struct ckpt_error *e)
{
	return remote_io(pid, addr, (void *)buf, len, true, e);
}

/* ---- remote syscalls ------------------------------------------------------ */

/* Address of a 0f 05 pair inside the task's [vdso], 0 when there is none. */
static int find_vdso_syscall(pid_t tid, uint64_t *ret, struct ckpt_error *e)
{
	char path[64], line[512];
	int fd;
	_cleanup_fclose_ FILE *f = NULL;
	uint64_t start = 0, end = 0;
	_cleanup_free_ unsigned char *buf = NULL;

	*ret = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", tid);
	fd = proc_open_tracee(path, O_RDONLY | O_CLOEXEC);
	f = fd >= 0 ? fdopen(fd, "re") : NULL;
	if (!f && fd >= 0)
		close(fd);
	if (!f)
		return ckpt_err_errno(e, -errno, "pid %d: opening %s", tid, path);
	while (fgets(line, sizeof(line), f)) {
		size_t l = strlen(line);

		if (l && line[l - 1] == '\n')
			line[--l] = '\0';
		if (l >= 6 && !strcmp(line + l - 6, "[vdso]") &&
		    sscanf(line, "%" SCNx64 "-%" SCNx64, &start, &end) == 2)
			break;
		start = end = 0;
	}
	if (!start || end <= start || end - start > (1u << 20))
		return 0;
	buf = malloc(end - start);
	if (!buf)
		return ckpt_err(e, -ENOMEM, "pid %d: out of memory reading the vdso", tid);
	if (remote_read(tid, start, buf, end - start, e) < 0)
		return ckpt_err_wrap(e, "pid %d: reading [vdso]", tid);
	/* Any 0f 05 pair will do, even across instruction boundaries: the task
	 * stops at syscall exit, before executing anything after it. */
	for (uint64_t i = 0; i + 1 < end - start; i++) {
		if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
			*ret = start + i;
			return 0;
		}
	}
	return 0;
}

static int poke_syscall(struct rsys *r, struct ckpt_error *e)
{
	uint64_t ip = r->saved.rip;
	long word, patched;

	errno = 0;
	word = ptrace(PTRACE_PEEKTEXT, r->tid, (void *)(uintptr_t)ip, NULL);
	if (word == -1 && errno)
		return ckpt_err_errno(e, -errno, "pid %d: reading code at 0x%" PRIx64, r->tid, ip);
	patched = (word & ~0xffffL) | 0x050f;
	if (ptrace(PTRACE_POKETEXT, r->tid, (void *)(uintptr_t)ip, (void *)patched) < 0)
		return ckpt_err_errno(
		    e, -errno, "pid %d: writing a syscall instruction at 0x%" PRIx64, r->tid, ip);
	r->poked = true;
	r->poke_orig = word;
	r->syscall_ip = ip;
	return 0;
}

static int unpoke_syscall(struct rsys *r, struct ckpt_error *e)
{
	if (!r->poked)
		return 0;
	if (ptrace(PTRACE_POKETEXT, r->tid, (void *)(uintptr_t)r->syscall_ip,
		   (void *)r->poke_orig) < 0)
		return ckpt_err_errno(e, -errno,
				      "pid %d: restoring the code at 0x%" PRIx64
				      " (the task's text is corrupted)",
				      r->tid, r->syscall_ip);
	r->poked = false;
	return 0;
}

int rsys_init(struct rsys *r, pid_t tid, uint64_t syscall_ip, struct ckpt_error *e)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->tid = tid;
	ret = ptrace_get_regs(tid, &r->saved, e);
	if (ret < 0)
		return ret;
	ret = ptrace_get_sigmask(tid, &r->saved_mask, e);
	if (ret < 0)
		return ret;
	r->syscall_ip = syscall_ip;
	if (!r->syscall_ip) {
		ret = find_vdso_syscall(tid, &r->syscall_ip, e);
		if (ret < 0)
			return ret;
	}
	if (!r->syscall_ip) {
		ret = poke_syscall(r, e);
		if (ret < 0)
			return ret;
	}
	/* Nothing may be delivered between our calls (SIGKILL/SIGSTOP excepted). */
	ret = ptrace_set_sigmask(tid, ~0ULL, e);
	if (ret < 0) {
		unpoke_syscall(r, NULL);
		return ret;
	}
	pr_debug("pid %d: remote syscalls via 0x%" PRIx64 "%s", tid, r->syscall_ip,
		 r->poked ? " (poked)" : "");
	return 0;
}

/* Resume to the next stop, passing sig; then wait for it. */
static int resume_and_wait(struct rsys *r, int sig, int *status, struct ckpt_error *e)
{
	if (ptrace(PTRACE_SYSCALL, r->tid, NULL, (void *)(long)sig) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: PTRACE_SYSCALL", r->tid);
	return ptrace_wait_stop(r->tid, status, e);
}

int rsys_call(struct rsys *r, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
	      uint64_t a5, uint64_t a6, long *ret, struct ckpt_error *e)
{
	struct user_regs_struct regs = r->saved;
	bool entered = false;
	int status, sig = 0, rc;

	regs.rax = nr;
	regs.rdi = a1;
	regs.rsi = a2;
	regs.rdx = a3;
	regs.r10 = a4;
	regs.r8 = a5;
	regs.r9 = a6;
	regs.rip = r->syscall_ip;
	/* not in a syscall: the kernel's restart logic must leave rip alone */
	regs.orig_rax = (uint64_t)-1;
	rc = ptrace_set_regs(r->tid, &regs, e);
	if (rc < 0)
		return rc;
	for (;;) {
		rc = resume_and_wait(r, sig, &status, e);
		if (rc < 0)
			return ckpt_err_wrap(e, "remote syscall %ld", nr);
		sig = 0;
		if (WSTOPSIG(status) == SYSCALL_STOP_SIG && status >> 16 == 0) {
			if (!entered) {
				entered = true;
				continue;
			}
			rc = ptrace_get_regs(r->tid, &regs, e);
			if (rc < 0)
				return rc;
			*ret = (long)regs.rax;
			return 0;
		}
		if (status >> 16)
			continue; /* a group-stop or a left-over interrupt trap */
		if (WSTOPSIG(status) == SIGSTOP) {
			/* the only signal that the all-ones mask lets through: deliver it,
			 * the task enters a group stop (reported as an event stop) */
			sig = SIGSTOP;
			continue;
		}
		/* a fault caused by our own registers (bad syscall_ip...): drop it */
		return ckpt_err(e, -EFAULT,
				"pid %d: remote syscall %ld stopped with signal %d at 0x%" PRIx64,
				r->tid, nr, WSTOPSIG(status), (uint64_t)regs.rip);
	}
}

int rsys_area_map(struct rsys *r, size_t len, int prot, uint64_t *ret, struct ckpt_error *e)
{
	long addr;
	int rc = rsys_call(r, __NR_mmap, 0, len, (uint64_t)prot, MAP_PRIVATE | MAP_ANONYMOUS,
			   (uint64_t)-1, 0, &addr, e);

	if (rc < 0)
		return rc;
	if (addr < 0 && addr > -4096)
		return ckpt_err_errno(e, (int)addr, "remote mmap of %zu bytes", len);
	*ret = (uint64_t)addr;
	return 0;
}

int rsys_area_unmap(struct rsys *r, uint64_t addr, size_t len, bool failed, struct ckpt_error *e)
{
	struct ckpt_error tmp = {0};
	long res;
	int rc = rsys_call(r, __NR_munmap, addr, len, 0, 0, 0, 0, &res, failed ? &tmp : e);

	if (rc >= 0 && res < 0 && !failed)
		rc = ckpt_err_errno(e, (int)res, "remote munmap");
	return rc;
}

int rsys_scratch(struct rsys *r, size_t len, struct ckpt_error *e)
{
	long addr;
	int rc;

	len = (len + 4095) & ~(size_t)4095;
	if (r->scratch && r->scratch_len >= len)
		return 0;
	if (r->borrowed || r->joint)
		return ckpt_err(e, -EINVAL, "pid %d: %zu bytes of scratch asked of a %s %zu",
				r->tid, len, r->borrowed ? "borrowed" : "fixed", r->scratch_len);
	if (r->scratch) {
		long res;

		rc = rsys_call(r, __NR_munmap, r->scratch, r->scratch_len, 0, 0, 0, 0, &res, e);
		if (rc < 0)
			return rc;
		r->scratch = 0;
		r->scratch_len = 0;
	}
	rc = rsys_call(r, __NR_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       (uint64_t)-1, 0, &addr, e);
	if (rc < 0)
		return rc;
	if (addr < 0 && addr > -4096)
		return ckpt_err_errno(e, (int)addr, "pid %d: remote mmap of %zu scratch bytes",
				      r->tid, len);
	r->scratch = (uint64_t)addr;
	r->scratch_len = len;
	return 0;
}

/* Keep the first error: later steps of the teardown still run. */
static void keep_first(int *ret, int rc, struct ckpt_error *e, const struct ckpt_error *tmp)
{
	if (rc >= 0 || *ret < 0)
		return;
	*ret = rc;
	if (e)
		*e = *tmp;
}

/* ---- batches ---------------------------------------------------------------- */

/*
 * The code run by rsys_batch, copied into the task (never run here).
 * rbx: the table (64 bytes per call: nr, six arguments, result), r12: the
 * number of calls, r13: the done flag. The kernel keeps rbx, r12 and r13
 * across syscall (it clobbers rax, rcx and r11 only). Done, the task sleeps
 * in pause() (its signals are blocked for the session, its seccomp filters
 * suspended while traced) until we interrupt it: a task that spun there
 * held a CPU while we, or whoever we wait on, needed it (2 CPUs, thousands
 * of tasks restored: a tenth of the restore's samples were that spin).
 */
__asm__(".pushsection .rodata\n"
	".globl ckpt_rsys_blob\n"
	".globl ckpt_rsys_blob_end\n"
	"ckpt_rsys_blob:\n"
	"1:	test %r12, %r12\n"
	"	jz 2f\n"
	"	mov 0(%rbx), %rax\n"
	"	mov 8(%rbx), %rdi\n"
	"	mov 16(%rbx), %rsi\n"
	"	mov 24(%rbx), %rdx\n"
	"	mov 32(%rbx), %r10\n"
	"	mov 40(%rbx), %r8\n"
	"	mov 48(%rbx), %r9\n"
	"	syscall\n"
	"	mov %rax, 56(%rbx)\n"
	"	add $64, %rbx\n"
	"	dec %r12\n"
	"	jmp 1b\n"
	"2:	movq $1, (%r13)\n"
	"3:	mov $34, %eax\n" /* __NR_pause */
	"	syscall\n"
	"	jmp 3b\n"
	"ckpt_rsys_blob_end:\n"
	".popsection\n");
extern const unsigned char ckpt_rsys_blob[], ckpt_rsys_blob_end[];

#define BATCH_PAGE 4096UL
/* the table: 16 pages after the code page, 1023 calls per run */
#define BATCH_TABLE RSYS_BATCH_TABLE
#define BATCH_MAP (BATCH_PAGE + BATCH_TABLE)
#define BATCH_SLOT 64UL
/* the last slot of the table holds the done flag */
#define BATCH_MAX (BATCH_TABLE / BATCH_SLOT - 1)
#define BATCH_TIMEOUT_US 10000000L

void rsys_borrow(struct rsys *r, const struct rsys *owner)
{
	r->scratch = owner->scratch;
	r->scratch_len = owner->scratch_len;
	r->batch = owner->batch;
	r->batch_table = owner->batch_table;
	r->batch_room = owner->batch_room;
	r->borrowed = true;
}

void rsys_borrow_lane(struct rsys *r, const struct rsys *owner, unsigned k)
{
	rsys_borrow(r, owner);
	if (owner->batch <= 0)
		return; /* no batch pages: call by call anyway */
	r->batch_table =
	    (owner->batch_table ? owner->batch_table : (uint64_t)owner->batch + BATCH_PAGE) +
	    k * RSYS_LANE_BYTES;
	r->batch_room = RSYS_LANE_CALLS;
}

const unsigned char *rsys_batch_code(size_t *ret_len)
{
	*ret_len = (size_t)(ckpt_rsys_blob_end - ckpt_rsys_blob);
	return ckpt_rsys_blob;
}

void rsys_batch_at(struct rsys *r, uint64_t code, uint64_t table)
{
	r->batch = (int64_t)code;
	r->batch_table = table;
	r->borrowed = true;
}

/*
 * The code page (r-x), the table and extra bytes after it (rw-) in one
 * mapping: r->batch, or -1 when the task refuses them (then nothing is
 * left mapped).
 */
static int map_batch(struct rsys *r, size_t extra, struct ckpt_error *e)
{
	struct ckpt_error tmp = {0};
	long addr, res;
	int rc;

	/* r-x from the start (PR_SET_MDWE refuses to add x later), then the
	 * rest made writable */
	rc = rsys_call(r, __NR_mmap, 0, BATCH_MAP + extra, PROT_READ | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &addr, e);
	if (rc < 0)
		return rc;
	if (addr < 0 && addr > -4096) {
		pr_debug("pid %d: no code page for batches (%s): call by call", r->tid,
			 strerror((int)-addr));
		r->batch = -1;
		return 0;
	}
	rc = rsys_call(r, __NR_mprotect, (uint64_t)addr + BATCH_PAGE, BATCH_TABLE + extra,
		       PROT_READ | PROT_WRITE, 0, 0, 0, &res, e);
	if (rc >= 0 && res == 0)
		rc = remote_write(r->tid, (uint64_t)addr, ckpt_rsys_blob,
				  (size_t)(ckpt_rsys_blob_end - ckpt_rsys_blob), &tmp);
	if (rc < 0 || res != 0) {
		if (rc >= 0)
			pr_debug("pid %d: no table page for batches (%s): call by call", r->tid,
				 strerror((int)-res));
		else
			pr_debug("pid %d: writing the batch code: %s: call by call", r->tid,
				 tmp.msg);
		rc = rsys_call(r, __NR_munmap, (uint64_t)addr, BATCH_MAP + extra, 0, 0, 0, 0, &res,
			       e);
		if (rc < 0)
			return rc;
		r->batch = -1;
		return 0;
	}
	r->batch = addr;
	return 0;
}

/* The code and table pages, mapped once per session; -1 when the task refuses them. */
static int batch_pages(struct rsys *r, struct ckpt_error *e)
{
	/* the caller's pages (rsys_batch_at): call by call all the same */
	if (r->batch > 0 && r->batch_table && ckpt_fault("rsys-no-batch"))
		r->batch = -1;
	if (r->batch)
		return 0;
	/* pages of our own would outlive a borrowed session (its fini unmaps none) */
	if (r->borrowed || ckpt_fault("rsys-no-batch")) {
		r->batch = -1;
		return 0;
	}
	return map_batch(r, 0, e);
}

bool rsys_owns(const struct rsys *r, uint64_t start, uint64_t end)
{
	if (r->borrowed)
		return false;
	if (r->scratch && start >= r->scratch && end <= r->scratch + r->scratch_len)
		return true;
	return r->batch > 0 && start >= (uint64_t)r->batch && end <= (uint64_t)r->batch + BATCH_MAP;
}

int rsys_pages(struct rsys *r, size_t len, struct ckpt_error *e)
{
	int rc;

	len = (len + 4095) & ~(size_t)4095;
	if (r->scratch || r->batch || r->borrowed || ckpt_fault("rsys-no-batch"))
		return rsys_scratch(r, len, e);
	rc = map_batch(r, len, e);
	if (rc < 0)
		return rc;
	if (r->batch < 0) /* refused: the scratch alone, batches call by call */
		return rsys_scratch(r, len, e);
	r->scratch = (uint64_t)r->batch + BATCH_MAP;
	r->scratch_len = len;
	r->joint = true;
	return 0;
}

/*
 * A stop while the batch runs: SIGSTOP is handed on (as rsys_call does), a
 * group stop resumed. Once we interrupted it (ret_interrupted), any event
 * stop is the one we wait for: the interrupt trap, or the group stop a
 * stopped task reports in its place.
 */
static int batch_handle_stop(struct rsys *r, int status, bool *ret_interrupted,
			     struct ckpt_error *e)
{
	int sig = 0;

	if (status >> 16 == PTRACE_EVENT_STOP && ret_interrupted) {
		*ret_interrupted = true;
		return 0;
	}
	if (status >> 16 == 0 && WSTOPSIG(status) == SIGSTOP)
		sig = SIGSTOP;
	else if (status >> 16 == 0)
		return ckpt_err(e, -EFAULT, "pid %d: batch of remote syscalls stopped with signal %d",
				r->tid, WSTOPSIG(status));
	if (ptrace(PTRACE_CONT, r->tid, NULL, (void *)(long)sig) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: PTRACE_CONT", r->tid);
	return 0;
}

/* Calls per run of r's table: the whole table's, or the caller's slice (rsys_batch_at). */
static size_t batch_room(const struct rsys *r)
{
	return r->batch_room ? r->batch_room : BATCH_MAX;
}

/*
 * A batch in three steps, so that a caller can have batches run in several
 * threads at once (rsys_batch_start): start (the table written, the task
 * resumed into our code), stop (its done flag seen, PTRACE_INTERRUPT sent),
 * finish (the interrupt stop waited for, the results read). r->run_* keep
 * what the next step needs.
 */
static int batch_start(struct rsys *r, struct rsys_op *ops, size_t n, const struct rsys_write *w,
		       size_t nw, struct ckpt_error *e)
{
	uint64_t table = r->batch_table ? r->batch_table : (uint64_t)r->batch + BATCH_PAGE;
	uint64_t flag = table + batch_room(r) * BATCH_SLOT;
	uint64_t(*slots)[8] = calloc(n, sizeof(*slots));
	uint64_t done = 0;
	struct user_regs_struct regs = r->saved;
	int rc;

	if (!slots)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		slots[i][0] = (uint64_t)ops[i].nr;
		memcpy(&slots[i][1], ops[i].a, sizeof(ops[i].a));
		slots[i][7] = 0;
	}
	/* the caller's memory, the table and the flag: one system call */
	_cleanup_free_ struct riov *v = calloc(nw + 2, sizeof(*v));

	if (!v) {
		free(slots);
		return ckpt_err(e, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < nw; i++)
		v[i] = (struct riov){w[i].addr, (void *)w[i].buf, w[i].len};
	v[nw] = (struct riov){table, slots, n * BATCH_SLOT};
	v[nw + 1] = (struct riov){flag, &done, sizeof(done)};
	rc = remote_iov(r->tid, v, nw + 2, true, e);
	regs.rip = (uint64_t)r->batch;
	regs.rbx = table;
	regs.r12 = n;
	regs.r13 = flag;
	/* not in a syscall: the kernel's restart logic must leave rip alone */
	regs.orig_rax = (uint64_t)-1;
	if (rc >= 0)
		rc = ptrace_set_regs(r->tid, &regs, e);
	if (rc >= 0 && ptrace(PTRACE_CONT, r->tid, NULL, NULL) < 0)
		rc = ckpt_err_errno(e, -errno, "pid %d: PTRACE_CONT", r->tid);
	if (rc < 0) {
		free(slots);
		return rc;
	}
	/* the task runs our code now: whatever happens, it is stopped again */
	r->run_slots = slots;
	r->run_n = n;
	r->run_first = ops[0].nr;
	r->run_table = table;
	r->run_flag = flag;
	r->run_done = false;
	r->run_rc = 0;
	r->run_phase = RSYS_RUNNING;
	return 0;
}

static int batch_stop(struct rsys *r, struct ckpt_error *e)
{
	size_t bytes = r->run_n * BATCH_SLOT;
	uint64_t done = 0;
	long waited = 0;
	int status, rc = 0;

	if (r->run_phase != RSYS_RUNNING)
		return r->run_rc;
	for (long step = 0; rc >= 0; step++) {
		pid_t w = wait_tracee(r->tid, &status, WNOHANG);

		if (w < 0 && errno != EINTR) {
			rc = ckpt_err_errno(e, -errno, "pid %d: waiting for a batch", r->tid);
		} else if (w > 0) {
			if (!WIFSTOPPED(status))
				rc = ckpt_err(e, -ESRCH, "pid %d exited while it was frozen",
					      r->tid);
			else
				rc = batch_handle_stop(r, status, NULL, e);
			if (rc < 0) {
				/* gone, or it sits in that stop */
				r->run_phase = RSYS_STOPPED;
				r->run_rc = rc;
				return rc;
			}
			waited += 100; /* a task that stops again and again still times out */
		} else {
			/* the flag first: once it is set, the results read after it
			 * in the same call are final (the task wrote them before);
			 * a long batch, polled many times, reads them once at the end */
			struct riov v[2] = {{r->run_flag, &done, sizeof(done)},
					    {r->run_table, r->run_slots, bytes}};

			rc = remote_iov(r->tid, v, bytes <= BATCH_PAGE ? 2 : 1, false, e);
			if (rc < 0 || done || waited >= BATCH_TIMEOUT_US)
				break;
			if (step < 64) {
				sched_yield();
			} else {
				usleep(100);
				waited += 100;
			}
		}
	}
	r->run_done = done != 0;
	r->run_rc = rc;
	if (ptrace(PTRACE_INTERRUPT, r->tid, NULL, NULL) < 0) {
		r->run_phase = RSYS_STOPPED;
		if (rc >= 0)
			r->run_rc = ckpt_err_errno(e, -errno, "pid %d: PTRACE_INTERRUPT", r->tid);
		return r->run_rc;
	}
	r->run_phase = RSYS_INTERRUPTED;
	return rc;
}

static int batch_finish(struct rsys *r, struct rsys_op *ops, size_t n, struct ckpt_error *e)
{
	_cleanup_free_ uint64_t(*slots)[8] = r->run_slots;
	bool interrupted = false;
	int status, rc = r->run_rc;

	r->run_slots = NULL;
	if (r->run_phase == RSYS_RUNNING)
		rc = batch_stop(r, e);
	while (r->run_phase == RSYS_INTERRUPTED && !interrupted) {
		struct ckpt_error tmp = {0};
		int rs = ptrace_wait_stop(r->tid, &status, rc < 0 ? &tmp : e);

		if (rs >= 0)
			rs = batch_handle_stop(r, status, &interrupted, rc < 0 ? &tmp : e);
		if (rs < 0) {
			rc = rc < 0 ? rc : rs;
			break;
		}
	}
	r->run_phase = RSYS_IDLE;
	r->run_n = 0;
	if (rc < 0)
		return rc;
	if (!r->run_done)
		return ckpt_err(
		    e, -ETIMEDOUT,
		    "pid %d: a batch of %zu remote syscalls (the first %ld) did not finish "
		    "within %ld s",
		    r->tid, n, r->run_first, BATCH_TIMEOUT_US / 1000000);
	if (n * BATCH_SLOT > BATCH_PAGE) {
		rc = remote_read(r->tid, r->run_table, slots, n * BATCH_SLOT, e);
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < n; i++)
		ops[i].ret = (long)slots[i][7];
	return 0;
}

static int batch_run(struct rsys *r, struct rsys_op *ops, size_t n, const struct rsys_write *w,
		     size_t nw, struct ckpt_error *e)
{
	int rc = batch_start(r, ops, n, w, nw, e);

	if (rc < 0)
		return rc;
	rc = batch_stop(r, e);
	if (rc < 0) {
		struct ckpt_error tmp = {0};

		batch_finish(r, ops, n, &tmp);
		return rc;
	}
	return batch_finish(r, ops, n, e);
}

int rsys_batch_start(struct rsys *r, struct rsys_op *ops, size_t n, const struct rsys_write *w,
		     size_t nw, struct ckpt_error *e)
{
	int rc = batch_pages(r, e);

	if (rc < 0)
		return rc;
	if (r->batch <= 0 || !n || n > batch_room(r))
		return 0;
	rc = batch_start(r, ops, n, w, nw, e);
	return rc < 0 ? ckpt_err_wrap(e, "batch of remote syscalls") : 1;
}

int rsys_batch_stop(struct rsys *r, struct ckpt_error *e)
{
	return r->run_phase == RSYS_RUNNING ? batch_stop(r, e) : 0;
}

int rsys_batch_finish(struct rsys *r, struct rsys_op *ops, size_t n, struct ckpt_error *e)
{
	int rc;

	if (r->run_phase == RSYS_IDLE)
		return 0;
	rc = batch_finish(r, ops, n, e);
	return rc < 0 ? ckpt_err_wrap(e, "batch of remote syscalls") : 0;
}

int rsys_batch(struct rsys *r, struct rsys_op *ops, size_t n, struct ckpt_error *e)
{
	return rsys_batch_with(r, ops, n, NULL, 0, e);
}

int rsys_batch_with(struct rsys *r, struct rsys_op *ops, size_t n, const struct rsys_write *w,
		    size_t nw, struct ckpt_error *e)
{
	int rc = batch_pages(r, e);

	if (rc < 0)
		return rc;
	/* call by call: the memory first, as a batch's first run writes it */
	for (size_t i = 0; r->batch <= 0 && i < nw; i++) {
		rc = remote_write(r->tid, w[i].addr, w[i].buf, w[i].len, e);
		if (rc < 0)
			return ckpt_err_wrap(e, "batch of remote syscalls");
	}
	for (size_t i = 0; i < n;) {
		size_t k = n - i < batch_room(r) ? n - i : batch_room(r);

		if (r->batch > 0) {
			rc = batch_run(r, ops + i, k, i ? NULL : w, i ? 0 : nw, e);
		} else {
			for (size_t j = i; j < i + k && rc >= 0; j++)
				rc = rsys_call(r, ops[j].nr, ops[j].a[0], ops[j].a[1], ops[j].a[2],
					       ops[j].a[3], ops[j].a[4], ops[j].a[5], &ops[j].ret, e);
		}
		if (rc < 0)
			return ckpt_err_wrap(e, "batch of remote syscalls");
		i += k;
	}
	return 0;
}

int rsys_fini(struct rsys *r, struct ckpt_error *e)
{
	struct ckpt_error tmp = {0};
	struct user_regs_struct regs;
	int ret = 0, rc;

	if (r->borrowed) {
		/* another session's pages: it unmaps them */
		r->scratch = 0;
		r->scratch_len = 0;
		r->batch = 0;
		r->batch_table = 0;
	}
	if (r->batch > 0) {
		long res = 0;
		/* rsys_pages: the scratch after them, one mapping */
		size_t len = BATCH_MAP + (r->joint ? r->scratch_len : 0);

		if (r->joint) {
			r->scratch = 0;
			r->scratch_len = 0;
			r->joint = false;
		}
		rc = rsys_call(r, __NR_munmap, (uint64_t)r->batch, len, 0, 0, 0, 0, &res, &tmp);
		if (rc >= 0 && res < 0)
			rc = ckpt_err_errno(&tmp, (int)res, "pid %d: remote munmap of batch pages",
					    r->tid);
		keep_first(&ret, rc, e, &tmp);
	}
	r->batch = 0;
	if (r->scratch) {
		long res = 0;

		rc = rsys_call(r, __NR_munmap, r->scratch, r->scratch_len, 0, 0, 0, 0, &res, &tmp);
		if (rc >= 0 && res < 0)
			rc = ckpt_err_errno(&tmp, (int)res, "pid %d: remote munmap of scratch",
					    r->tid);
		keep_first(&ret, rc, e, &tmp);
		r->scratch = 0;
		r->scratch_len = 0;
	}
	keep_first(&ret, unpoke_syscall(r, &tmp), e, &tmp);
	/*
	 * The registers as they were, even those of an interrupted system call:
	 * the thread stays in the syscall-exit stop of our last call until it
	 * is detached (ptrace_detach decides then how the call goes on), or
	 * until another session saves them again.
	 */
	regs = r->saved;
	keep_first(&ret, ptrace_set_regs(r->tid, &regs, &tmp), e, &tmp);
	keep_first(&ret, ptrace_set_sigmask(r->tid, r->saved_mask, &tmp), e, &tmp);
	return ret;
}
