/* SPDX-License-Identifier: MIT */
/*
 * taskmodes LOG READY
 *
 * Per-thread and per-process modes a program sets with prctl and can
 * watch itself, none of them visible in /proc:
 *
 *   main  PR_SET_TSC PR_TSC_SIGSEGV (rdtsc raises SIGSEGV), machine-check
 *         kill policy early (PR_MCE_KILL_EARLY), NUMA memory policy
 *         MPOL_BIND to node 0 (set_mempolicy, what numactl --membind does);
 *   late  a second thread, made after those calls (it inherited them),
 *         then back to rdtsc allowed, the late policy, MPOL_PREFERRED
 *         node 0 with MPOL_F_STATIC_NODES;
 *   plain a third thread, made before them: TSC allowed, the default
 *         policies;
 *   and PR_SET_MEMORY_MERGE (KSM for the whole process) where the kernel
 *   has it.
 *
 * Every 100 ms each thread reads its TSC mode and policy, tries rdtsc
 * (faults or runs), reads the process's memory-merge flag, CPUID faulting
 * and the speculation controls, and logs "bad NAME: ..." when any differs
 * from what it saw right after its setup; "ok NAME N" every 500 ms. The
 * first line of each, "start NAME TID tsc T mce M rdtsc R merge K cpuid C
 * spec S I L mpol P N xcomp X", says what it is (X: the xstate features the
 * process may use, ARCH_GET_XCOMP_PERM). No clock_gettime: with PR_TSC_SIGSEGV the
 * vDSO's rdtsc would fault too; nanosleep is a real system call.
 */
#include <linux/mempolicy.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "wl.h"

#ifndef PR_GET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif
#define ARCH_GET_CPUID_ 0x1011

static int log_fd;
static pthread_barrier_t setup_done;

struct modes {
	int tsc;
	long mce, merge, cpuid, spec[3];
	int mpol;
	unsigned long mpol_nodes[16];
	unsigned long xcomp; /* ARCH_GET_XCOMP_PERM: the xstate features it may use */
	int rdtsc; /* 1 ran, 0 faulted */
};

static __thread sigjmp_buf rdtsc_jmp;
static __thread volatile int in_rdtsc;

static void on_segv(int sig)
{
	if (!in_rdtsc) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
	siglongjmp(rdtsc_jmp, 1);
}

static int try_rdtsc(void)
{
	unsigned lo, hi;

	if (sigsetjmp(rdtsc_jmp, 1)) {
		in_rdtsc = 0;
		return 0;
	}
	in_rdtsc = 1;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	in_rdtsc = 0;
	return 1;
}

static void observe(struct modes *m)
{
	memset(m, 0, sizeof(*m));
	if (prctl(PR_GET_TSC, &m->tsc, 0, 0, 0) < 0)
		wl_die("PR_GET_TSC: %s", strerror(errno));
	m->mce = prctl(PR_MCE_KILL_GET, 0, 0, 0, 0);
	m->merge = prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0);
	m->cpuid = syscall(SYS_arch_prctl, ARCH_GET_CPUID_, 0);
	for (int k = 0; k < 3; k++)
		m->spec[k] = prctl(PR_GET_SPECULATION_CTRL, k, 0, 0, 0);
	m->rdtsc = try_rdtsc();
	if (syscall(SYS_get_mempolicy, &m->mpol, m->mpol_nodes, 16 * 64 + 1, 0, 0) < 0)
		m->mpol = -errno;
	if (syscall(SYS_arch_prctl, 0x1022 /* ARCH_GET_XCOMP_PERM */, &m->xcomp) < 0)
		m->xcomp = 0;
}

static void set_mpol(int mode, unsigned long nodes)
{
	if (syscall(SYS_set_mempolicy, mode, &nodes, 65) < 0)
		wl_die("set_mempolicy(%#x): %s", mode, strerror(errno));
}

static void nap(void)
{
	struct timespec ts = {0, 100 * 1000 * 1000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void run(const char *name, const char *ready)
{
	struct modes m0, m;

	observe(&m0);
	wl_log(log_fd,
	       "start %s %ld tsc %d mce %ld rdtsc %d merge %ld cpuid %ld spec %ld %ld %ld mpol "
	       "%#x %#lx xcomp %#lx",
	       name, (long)syscall(SYS_gettid), m0.tsc, m0.mce, m0.rdtsc, m0.merge, m0.cpuid,
	       m0.spec[0], m0.spec[1], m0.spec[2], m0.mpol, m0.mpol_nodes[0], m0.xcomp);
	if (ready)
		wl_ready(ready);
	for (unsigned long n = 0;; n++) {
		observe(&m);
		if (memcmp(&m, &m0, sizeof(m)))
			wl_log(
			    log_fd,
			    "bad %s: tsc %d -> %d, mce %ld -> %ld, rdtsc %d -> %d, merge %ld -> "
			    "%ld, cpuid %ld -> %ld, spec %ld %ld %ld -> %ld %ld %ld, mpol %#x %#lx "
			    "-> %#x %#lx, xcomp %#lx -> %#lx",
			    name, m0.tsc, m.tsc, m0.mce, m.mce, m0.rdtsc, m.rdtsc, m0.merge,
			    m.merge, m0.cpuid, m.cpuid, m0.spec[0], m0.spec[1], m0.spec[2],
			    m.spec[0], m.spec[1], m.spec[2], m0.mpol, m0.mpol_nodes[0], m.mpol,
			    m.mpol_nodes[0], m0.xcomp, m.xcomp);
		if (n % 5 == 0)
			wl_log(log_fd, "ok %s %lu", name, n / 5 + 1);
		nap();
	}
}

static void *plain_main(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&setup_done);
	run("plain", NULL);
	return NULL;
}

static void *late_main(void *arg)
{
	(void)arg;
	if (prctl(PR_SET_TSC, PR_TSC_ENABLE, 0, 0, 0) < 0 ||
	    prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_LATE, 0, 0) < 0)
		wl_die("late: prctl: %s", strerror(errno));
	set_mpol(MPOL_PREFERRED | MPOL_F_STATIC_NODES, 1);
	pthread_barrier_wait(&setup_done);
	run("late", NULL);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t plain, late;

	if (argc != 3)
		wl_die("usage: taskmodes LOG READY");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	signal(SIGSEGV, on_segv);
	pthread_barrier_init(&setup_done, NULL, 3);
	if (pthread_create(&plain, NULL, plain_main, NULL))
		wl_die("pthread_create");
	if (prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0) < 0 ||
	    prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0) < 0)
		wl_die("main: prctl: %s", strerror(errno));
	set_mpol(MPOL_BIND, 1);
	/* EINVAL: a kernel without KSM or before 6.4; the threads log merge -1 */
	prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0);
	if (pthread_create(&late, NULL, late_main, NULL))
		wl_die("pthread_create");
	pthread_barrier_wait(&setup_done);
	run("main", argv[2]);
	return 0;
}
