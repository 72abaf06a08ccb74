/* SPDX-License-Identifier: MIT */
/*
 * procstate LOG READY ORPHAN
 * procstate notif LOG READY
 *
 * Process and thread state that ckpt must keep, set differently per thread:
 *
 *   main  (root of the tree) personality ADDR_NO_RANDOMIZE|READ_IMPLIES_EXEC,
 *         child subreaper, THP disabled, securebits KEEP_CAPS, timer slack
 *         123456 ns, nice 5, seccomp filter A (uname fails with EMLINK),
 *         installed before the threads are made, so they share it;
 *   t1    drops CAP_NET_RAW (capset), raises CAP_NET_BIND_SERVICE as an
 *         ambient capability, drops CAP_MKNOD from its bounding set, sets
 *         no_new_privs, timer slack 200000 ns, SCHED_BATCH nice 10 with
 *         SCHED_RESET_ON_FORK, I/O priority class idle;
 *   t2    adds filter B on top of A (uname fails with ETXTBSY: of two filters
 *         returning the same action, the newest wins), securebits
 *         KEEP_CAPS|NO_SETUID_FIXUP, affinity CPU 0, SCHED_IDLE, I/O
 *         priority best-effort level 2;
 *   child a process with parent-death signal SIGUSR1, a thread "c1" with
 *         parent-death signal SIGUSR2 and a thread "strict" in seccomp strict
 *         mode (SCHED_IDLE, on CPU 1 when there is one, spinning); it forks a grandchild, then
 * exits once the file ORPHAN exists; the grandchild waits to be adopted by main (the subreaper),
 *         logs "adopted PID by PPID" and exits, and main logs "reaped PID".
 *
 * Every thread (but "strict") reads its whole state back every 100 ms
 * (personality, no_new_privs, capabilities, securebits, parent-death signal,
 * timer slack, policy, nice and SCHED_RESET_ON_FORK, I/O priority, affinity, and how uname fails as
 * the filters say while sysinfo and getpid work) and logs "bad NAME: FIELD was X now Y" on any
 * difference with what it read right after its setup, and "ok NAME N" every 500 ms. Main also
 * checks the subreaper and THP bits and that a page mapped read-only before READ_IMPLIES_EXEC is
 * still not executable.
 *
 * "notif": a filter that hands getpriority to a user-space supervisor
 * (SECCOMP_RET_USER_NOTIF; its listener fd is closed, so the call fails
 * with ENOSYS), which ckpt refuses; logs "ok N" every 100 ms while
 * getpriority still fails that way and getpid works.
 */
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "wl.h"

#define ERR_A EMLINK
#define ERR_B ETXTBSY

static int logfd;
static const char *orphan_path;
static void *ro_page;

struct kernel_sched_attr {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

struct state {
	long pers, nnp, secbits, pdeathsig, slack, subreaper, thp;
	uint32_t cap_eff[2], cap_prm[2], cap_inh[2];
	long bnd_mknod, amb_bind;
	long policy, nice, sched_flags;
	long cpus;
	long uname_err, sysinfo_err, getpid_ok;
	long ro_exec;
	long ioprio;
};

static long rd_sched(long *nice, long *flags)
{
	struct kernel_sched_attr a;

	memset(&a, 0, sizeof(a));
	if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) < 0)
		return -errno;
	*nice = a.sched_nice;
	*flags = (long)a.sched_flags;
	return a.sched_policy;
}

static void set_sched(uint32_t policy, int nice, uint64_t flags)
{
	struct kernel_sched_attr a = {
	    .size = sizeof(a), .sched_policy = policy, .sched_flags = flags, .sched_nice = nice};

	if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
		wl_die("sched_setattr(%u, %d): %s", policy, nice, strerror(errno));
}

/* the thread's I/O priority (what ionice sets) */
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_BE 2
#define IOPRIO_CLASS_IDLE 3
static void set_ioprio(int class, int level)
{
	if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, class << 13 | level) < 0)
		wl_die("ioprio_set(%d, %d): %s", class, level, strerror(errno));
}

/* the permissions of ro_page in /proc/self/maps contain x */
static long ro_page_exec(void)
{
	char buf[65536], want[32];
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ssize_t n, off = 0;
	char *p;

	if (fd < 0)
		return -1;
	while (off < (ssize_t)sizeof(buf) - 1 &&
	       (n = read(fd, buf + off, sizeof(buf) - 1 - off)) > 0)
		off += n;
	close(fd);
	buf[off] = '\0';
	snprintf(want, sizeof(want), "%lx-", (unsigned long)ro_page);
	p = strstr(buf, want);
	if (!p || !(p = strchr(p, ' ')))
		return -1;
	return p[3] == 'x';
}

static void read_state(struct state *s, int main_thread)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	struct utsname u;
	struct sysinfo si;
	cpu_set_t cs;
	int sig = 0;

	memset(s, 0, sizeof(*s));
	s->pers = personality(0xffffffff);
	s->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	s->secbits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
	s->pdeathsig = sig;
	s->slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	if (syscall(SYS_capget, &h, d) == 0) {
		for (int i = 0; i < 2; i++) {
			s->cap_eff[i] = d[i].effective;
			s->cap_prm[i] = d[i].permitted;
			s->cap_inh[i] = d[i].inheritable;
		}
	}
	s->bnd_mknod = prctl(PR_CAPBSET_READ, CAP_MKNOD, 0, 0, 0);
	s->amb_bind = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0);
	s->policy = rd_sched(&s->nice, &s->sched_flags);
	s->ioprio = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0);
	CPU_ZERO(&cs);
	sched_getaffinity(0, sizeof(cs), &cs);
	s->cpus = 0;
	for (int c = 0; c < 64; c++)
		if (CPU_ISSET(c, &cs))
			s->cpus |= 1L << c;
	s->uname_err = uname(&u) < 0 ? errno : 0;
	s->sysinfo_err = sysinfo(&si) < 0 ? errno : 0;
	s->getpid_ok = syscall(SYS_getpid) == getpid();
	if (main_thread) {
		sig = 0;
		prctl(PR_GET_CHILD_SUBREAPER, &sig, 0, 0, 0);
		s->subreaper = sig;
		s->thp = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
		s->ro_exec = ro_page_exec();
	}
}

#define CMP(f)                                                                                     \
	do {                                                                                       \
		if (a->f != b->f) {                                                                \
			wl_log(logfd, "bad %s: " #f " was %ld now %ld", name, (long)a->f,          \
			       (long)b->f);                                                        \
			bad++;                                                                     \
		}                                                                                  \
	} while (0)

static int compare(const char *name, const struct state *a, const struct state *b)
{
	int bad = 0;

	CMP(pers);
	CMP(nnp);
	CMP(secbits);
	CMP(pdeathsig);
	CMP(slack);
	CMP(subreaper);
	CMP(thp);
	CMP(cap_eff[0]);
	CMP(cap_eff[1]);
	CMP(cap_prm[0]);
	CMP(cap_prm[1]);
	CMP(cap_inh[0]);
	CMP(cap_inh[1]);
	CMP(bnd_mknod);
	CMP(amb_bind);
	CMP(policy);
	CMP(nice);
	CMP(sched_flags);
	CMP(cpus);
	CMP(uname_err);
	CMP(sysinfo_err);
	CMP(getpid_ok);
	CMP(ro_exec);
	CMP(ioprio);
	return bad;
}

/* Check the state every 100 ms against the one after setup, forever. */
static void watch(const char *name, int main_thread)
{
	struct state first, now;
	long n = 0;

	read_state(&first, main_thread);
	wl_log(logfd,
	       "start %s tid %ld pers %#lx secbits %#lx slack %ld policy %ld nice %ld "
	       "ioprio %ld uname %ld sysinfo %ld",
	       name, (long)syscall(SYS_gettid), first.pers, first.secbits, first.slack,
	       first.policy, first.nice, first.ioprio, first.uname_err, first.sysinfo_err);
	for (;;) {
		wl_sleep(0.1);
		read_state(&now, main_thread);
		compare(name, &first, &now);
		if (++n % 5 == 0)
			wl_log(logfd, "ok %s %ld", name, n / 5);
		if (main_thread) {
			int st;
			pid_t p;

			while ((p = waitpid(-1, &st, WNOHANG)) > 0)
				wl_log(logfd, "reaped %d", p);
		}
	}
}

/* Fail one syscall with err; allow everything else (x86-64 only). */
static void install_filter(int nr, int err)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};

	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		wl_die("seccomp filter for syscall %d: %s", nr, strerror(errno));
}

static void pin(int cpu)
{
	cpu_set_t cs;

	CPU_ZERO(&cs);
	CPU_SET(cpu, &cs);
	if (sched_setaffinity(0, sizeof(cs), &cs) < 0)
		wl_die("sched_setaffinity(%d): %s", cpu, strerror(errno));
}

static pthread_barrier_t setup_done;

static void *t1_main(void *arg)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	(void)arg;
	prctl(PR_SET_NAME, "t1", 0, 0, 0);
	/* capset on this thread only (the raw syscall, not libcap) */
	if (syscall(SYS_capget, &h, d) < 0)
		wl_die("capget: %s", strerror(errno));
	d[CAP_NET_RAW / 32].effective &= ~(1U << (CAP_NET_RAW % 32));
	d[CAP_NET_RAW / 32].permitted &= ~(1U << (CAP_NET_RAW % 32));
	d[CAP_NET_BIND_SERVICE / 32].inheritable |= 1U << (CAP_NET_BIND_SERVICE % 32);
	if (syscall(SYS_capset, &h, d) < 0)
		wl_die("capset: %s", strerror(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) < 0)
		wl_die("ambient raise: %s", strerror(errno));
	if (prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0) < 0)
		wl_die("PR_CAPBSET_DROP: %s", strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_TIMERSLACK, 200000, 0, 0, 0) < 0)
		wl_die("prctl: %s", strerror(errno));
	set_sched(SCHED_BATCH, 10, SCHED_FLAG_RESET_ON_FORK);
	set_ioprio(IOPRIO_CLASS_IDLE, 0);
	pthread_barrier_wait(&setup_done);
	watch("t1", 0);
	return NULL;
}

static void *t2_main(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "t2", 0, 0, 0);
	/* newer than A: its errno wins for uname (the order of a chain matters) */
	install_filter(SYS_uname, ERR_B);
	if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_NO_SETUID_FIXUP, 0, 0, 0) < 0)
		wl_die("PR_SET_SECUREBITS: %s", strerror(errno));
	pin(0);
	set_ioprio(IOPRIO_CLASS_BE, 2);
	set_sched(SCHED_IDLE, 0, 0);
	pthread_barrier_wait(&setup_done);
	watch("t2", 0);
	return NULL;
}

static volatile long strict_tid;

static void *strict_main(void *arg)
{
	volatile unsigned long spins = 0;

	(void)arg;
	strict_tid = syscall(SYS_gettid);
	prctl(PR_SET_NAME, "strict", 0, 0, 0);
	set_sched(SCHED_IDLE, 0, 0);
	if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
		pin(1);
	pthread_barrier_wait(&setup_done);
	/* from here on only read, write, exit and sigreturn are allowed */
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) < 0)
		_exit(3);
	for (;;) {
		spins++;
		__builtin_ia32_pause();
	}
	return NULL;
}

static void *c1_main(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "c1", 0, 0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGUSR2) < 0)
		wl_die("PR_SET_PDEATHSIG: %s", strerror(errno));
	pthread_barrier_wait(&setup_done);
	watch("c1", 0);
	return NULL;
}

/* Waits until its parent exits; logs who adopted it (main, the subreaper,
 * if all is well) and exits, so that it is never left behind. */
static void grandchild(pid_t parent)
{
	prctl(PR_SET_NAME, "grandchild", 0, 0, 0);
	setpriority(PRIO_PROCESS, 0, 2);
	while (getppid() == parent)
		wl_sleep(0.05);
	wl_log(logfd, "adopted %d by %d", getpid(), getppid());
	_exit(0);
}

static void child(void)
{
	pthread_t th;
	pid_t kid;

	prctl(PR_SET_NAME, "child", 0, 0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGUSR1) < 0)
		wl_die("PR_SET_PDEATHSIG: %s", strerror(errno));
	pthread_barrier_init(&setup_done, NULL, 3);
	if (pthread_create(&th, NULL, strict_main, NULL) ||
	    pthread_create(&th, NULL, c1_main, NULL))
		wl_die("pthread_create");
	pthread_barrier_wait(&setup_done);
	kid = fork();
	if (kid == 0)
		grandchild(getppid());
	wl_log(logfd, "child ready: strict %ld grandchild %d", (long)strict_tid, kid);
	for (;;) {
		int sig = 0;

		prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
		if (sig != SIGUSR1)
			wl_log(logfd, "bad child: pdeathsig was %d now %d", SIGUSR1, sig);
		if (wl_file_exists(orphan_path)) {
			wl_log(logfd, "child exits");
			_exit(0);
		}
		wl_sleep(0.1);
	}
}

static void notif_main(const char *log, const char *ready)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpriority, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	long fd;

	logfd = wl_open_log(log);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		wl_die("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (fd < 0)
		wl_die("seccomp: %s", strerror(errno));
	close((int)fd);
	wl_ready(ready);
	for (long n = 1;; n++) {
		errno = 0;
		if (getpriority(PRIO_PROCESS, 0) != -1 || errno != ENOSYS ||
		    syscall(SYS_getpid) != getpid())
			wl_log(logfd, "bad %ld: getpriority errno %d", n, errno);
		else
			wl_log(logfd, "ok %ld", n);
		wl_sleep(0.1);
	}
}

int main(int argc, char **argv)
{
	pthread_t t1, t2;
	pid_t kid;

	wl_close_inherited();
	if (argc == 4 && !strcmp(argv[1], "notif"))
		notif_main(argv[2], argv[3]);
	if (argc != 4)
		wl_die("usage: procstate LOG READY ORPHAN | procstate notif LOG READY");
	logfd = wl_open_log(argv[1]);
	orphan_path = argv[3];
	/* mapped read-only before READ_IMPLIES_EXEC: must stay without x */
	ro_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ro_page == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	kid = fork();
	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid == 0)
		child();
	prctl(PR_SET_NAME, "procstate", 0, 0, 0);
	if (personality(ADDR_NO_RANDOMIZE | READ_IMPLIES_EXEC) < 0)
		wl_die("personality: %s", strerror(errno));
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS, 0, 0, 0) < 0 ||
	    prctl(PR_SET_TIMERSLACK, 123456, 0, 0, 0) < 0)
		wl_die("prctl: %s", strerror(errno));
	set_sched(SCHED_OTHER, 5, 0);
	install_filter(SYS_uname, ERR_A);
	pthread_barrier_init(&setup_done, NULL, 3);
	if (pthread_create(&t1, NULL, t1_main, NULL) || pthread_create(&t2, NULL, t2_main, NULL))
		wl_die("pthread_create");
	pthread_barrier_wait(&setup_done);
	wl_log(logfd, "child %d", kid);
	wl_ready(argv[2]);
	watch("main", 1);
	return 0;
}
