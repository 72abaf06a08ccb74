/* SPDX-License-Identifier: MIT */
/*
 * fidelity MODE LOG READY [ARGS...]
 *
 * Small programs that check their own state after a restore (docs/fidelity.md);
 * each logs "ok N" every 500 ms while its state is what it set up, and
 * "bad WHAT: ..." on any difference.
 *
 *   stop    forks two children that each move to a process group of their
 *           own and are stopped by SIGTSTP (each logs "tick N" every 100 ms
 *           while it runs). The parent collects the first one's stop with
 *           waitpid(WUNTRACED) ("child PID stopped SIG") and only looks at
 *           the second one's with waitid(WNOWAIT), leaving the report to be
 *           collected ("child2 PID stopped SIG pending"). Then it logs what
 *           waitpid(WUNTRACED | WCONTINUED | WNOHANG) reports of the first
 *           ("stopped SIG", "continued", "exited ...") and, once READY.go
 *           exists, of the second ("stopped2 SIG", "continued2"), and
 *           "ok N sigchld M" every 500 ms, M the SIGCHLDs it got.
 *           With nocldstop, its SIGCHLD handler has SA_NOCLDSTOP: the stops
 *           send it no SIGCHLD (M stays 0).
 *   attr [setlogin]  sets its oom_score_adj to 345 and forks a child that
 *           sets its own to 678 (with setlogin, the child also sets its audit
 *           login uid to 1234, which draws a new session id); both check
 *           their oom_score_adj, loginuid and sessionid every 100 ms.
 *   madv [guard]  maps one area per madvise/mlock/mseal state a process can
 *           set (logs "area NAME ADDR FLAGS" with its smaps VmFlags) and checks
 *           every 100 ms that VmFlags and the content are the same; with
 *           guard, also an area with a guard page (MADV_GUARD_INSTALL).
 *   memfd PROG  copies the program PROG into a memfd it keeps open (read-write)
 *           and every 100 ms forks a child that fexecve()s it; logs "bad
 *           exec: ..." when the exec fails or the child does not exit 0.
 *   sigio WHAT  a pipe whose read end has O_ASYNC, a SIGIO owner or a signal set
 *           (WHAT: async, own, sig; outside: owned by its parent process;
 *           tty: a pty master with O_ASYNC and its owner taken away);
 *           logs "ok N" while they stay as set.
 *   clonefiles  clone(CLONE_FILES) a child process sharing its fd table; the
 *           child opens /dev/null, the parent checks it sees that fd, and
 *           both log "ok" every 500 ms. Once READY.open exists the child
 *           opens /dev/zero ("child opened FD") and the parent finds it in
 *           its table ("main sees FD"); once READY.close exists the parent
 *           closes it ("main closed FD") and the child sees it gone ("child
 *           sees FD closed"). clonefiles chain: the child also makes a
 *           grandchild in the table ("ok grandchild N"). clonefiles fs: a
 *           child sharing cwd, root and umask (CLONE_FS) instead: once
 *           READY.open exists it does chdir("/") and umask(027) ("child
 *           chdir"), and the parent sees both ("main sees cwd / umask 027").
 *           What the dump refuses ("ok main N"): clonefiles siblings (two
 *           children share a table their parent left), thread (a thread
 *           unshared its fd table).
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "wl.h"

static int logfd;

/* ---- stop ------------------------------------------------------------------------------------ */

static volatile sig_atomic_t sigchlds;

static void on_sigchld(int sig)
{
	(void)sig;
	sigchlds++;
}

/* A child in a process group of its own, ticking; stopped by SIGTSTP. */
static pid_t stopped_kid(void)
{
	pid_t kid = fork();

	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid == 0) {
		setpgid(0, 0);
		for (long n = 1;; n++) {
			wl_log(logfd, "tick %ld", n);
			wl_sleep(0.1);
		}
	}
	/* both sides, so that the group exists before the signal is sent */
	setpgid(kid, kid);
	if (kill(kid, SIGTSTP) < 0)
		wl_die("kill: %s", strerror(errno));
	return kid;
}

/* What waitpid(WUNTRACED | WCONTINUED | WNOHANG) reports of kid, logged with suffix. */
static void report(pid_t kid, const char *suffix)
{
	int st = 0;
	pid_t p = waitpid(kid, &st, WUNTRACED | WCONTINUED | WNOHANG);

	if (p == kid && WIFSTOPPED(st))
		wl_log(logfd, "stopped%s %d", suffix, WSTOPSIG(st));
	else if (p == kid && WIFCONTINUED(st))
		wl_log(logfd, "continued%s", suffix);
	else if (p == kid)
		wl_log(logfd, "exited%s %#x", suffix, st);
}

static void stop_main(const char *ready, bool nocldstop)
{
	struct sigaction sa = {.sa_handler = on_sigchld,
			       .sa_flags = SA_RESTART | (nocldstop ? SA_NOCLDSTOP : 0)};
	char go[4096];
	siginfo_t si = {0};
	pid_t kid, kid2;
	int st;

	snprintf(go, sizeof(go), "%s.go", ready);
	sigaction(SIGCHLD, &sa, NULL);
	kid = stopped_kid();
	if (waitpid(kid, &st, WUNTRACED) != kid || !WIFSTOPPED(st))
		wl_die("waitpid: child not stopped (status %#x)", st);
	wl_log(logfd, "child %d stopped %d", kid, WSTOPSIG(st));
	kid2 = stopped_kid();
	/* seen, not collected: the report stays for a later waitpid */
	if (waitid(P_PID, (id_t)kid2, &si, WSTOPPED | WNOWAIT) < 0 || si.si_code != CLD_STOPPED)
		wl_die("waitid: child not stopped (code %d)", si.si_code);
	wl_log(logfd, "child2 %d stopped %d pending", kid2, si.si_status);
	/* both SIGCHLDs in before READY */
	while (!nocldstop && sigchlds < 2)
		wl_sleep(0.01);
	wl_ready(ready);
	for (long n = 1;; n++) {
		report(kid, "");
		if (access(go, F_OK) == 0)
			report(kid2, "2");
		if (n % 5 == 0)
			wl_log(logfd, "ok %ld sigchld %d", n / 5, (int)sigchlds);
		wl_sleep(0.1);
	}
}

/* ---- attr ------------------------------------------------------------------------------------ */

static long read_num(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

static void write_str(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, v, strlen(v)) != (ssize_t)strlen(v))
		wl_die("write %s to %s: %s", v, path, strerror(errno));
	close(fd);
}

static void attr_watch(const char *name)
{
	long oom = read_num("/proc/self/oom_score_adj");
	long uid = read_num("/proc/self/loginuid"), sid = read_num("/proc/self/sessionid");

	wl_log(logfd, "start %s pid %d oom %ld loginuid %ld sessionid %ld", name, getpid(), oom,
	       uid, sid);
	for (long n = 1;; n++) {
		long o = read_num("/proc/self/oom_score_adj");
		long u = read_num("/proc/self/loginuid"), s = read_num("/proc/self/sessionid");

		if (o != oom)
			wl_log(logfd, "bad %s: oom_score_adj was %ld now %ld", name, oom, o);
		if (u != uid || s != sid)
			wl_log(logfd, "bad %s: loginuid/sessionid were %ld/%ld now %ld/%ld", name,
			       uid, sid, u, s);
		if (n % 5 == 0)
			wl_log(logfd, "ok %s %ld", name, n / 5);
		wl_sleep(0.1);
	}
}

static void attr_main(const char *ready, bool setlogin)
{
	pid_t kid;

	write_str("/proc/self/oom_score_adj", "345");
	kid = fork();
	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid == 0) {
		write_str("/proc/self/oom_score_adj", "678");
		if (setlogin)
			write_str("/proc/self/loginuid", "1234");
		attr_watch("child");
	}
	wl_ready(ready);
	attr_watch("main");
}

/* ---- madv ------------------------------------------------------------------------------------ */

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#define AREA_PAGES 4
#define PG 4096UL

enum { ADV_MLOCK = -1, ADV_MLOCK_ONFAULT = -2, ADV_MSEAL = -3 };

static const struct {
	const char *name;
	int advice;
} madv_areas[] = {
    {"dontfork", MADV_DONTFORK},
    {"dontdump", MADV_DONTDUMP},
    {"wipeonfork", MADV_WIPEONFORK},
    {"hugepage", MADV_HUGEPAGE},
    {"nohugepage", MADV_NOHUGEPAGE},
    {"mergeable", MADV_MERGEABLE},
    {"random", MADV_RANDOM},
    {"sequential", MADV_SEQUENTIAL},
    {"mlock", ADV_MLOCK},
    {"mlock_onfault", ADV_MLOCK_ONFAULT},
    {"mseal", ADV_MSEAL},
    {"guard", MADV_GUARD_INSTALL},
};
#define N_MADV (sizeof(madv_areas) / sizeof(madv_areas[0]))

/* VmFlags of the smaps area starting at addr, "" if none. */
static void vmflags_of(const char *smaps, void *addr, char *out, size_t len)
{
	char want[32];
	const char *p, *f, *nl;

	out[0] = '\0';
	snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
	for (p = smaps; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, want, strlen(want)))
			break;
	if (!p || !*p || !(f = strstr(p, "VmFlags:")))
		return;
	f += 8;
	while (*f == ' ')
		f++;
	nl = strchr(f, '\n');
	snprintf(out, len, "%.*s", nl ? (int)(nl - f) : (int)strlen(f), f);
}

static char *read_smaps(void)
{
	static char buf[1 << 20];
	int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
	ssize_t n, off = 0;

	if (fd < 0)
		wl_die("open smaps: %s", strerror(errno));
	while (off < (ssize_t)sizeof(buf) - 1 &&
	       (n = read(fd, buf + off, sizeof(buf) - 1 - off)) > 0)
		off += n;
	close(fd);
	buf[off] = '\0';
	return buf;
}

static void madv_main(const char *ready, bool guard)
{
	size_t n = guard ? N_MADV : N_MADV - 1;
	char *base, *areas[N_MADV], flags[N_MADV][128], now[128];

	/* one reservation, each area with a gap after it: no two areas merge */
	base =
	    mmap(NULL, N_MADV * 2 * AREA_PAGES * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	for (size_t i = 0; i < n; i++) {
		char *a = base + i * 2 * AREA_PAGES * PG;
		int adv = madv_areas[i].advice, r;

		if (mprotect(a, AREA_PAGES * PG, PROT_READ | PROT_WRITE) < 0)
			wl_die("mprotect: %s", strerror(errno));
		/* pages 0 and 2 written; with MLOCK_ONFAULT page 1 stays absent */
		a[0] = (char)('A' + i);
		a[2 * PG] = (char)('a' + i);
		if (adv == ADV_MLOCK)
			r = mlock(a, AREA_PAGES * PG);
		else if (adv == ADV_MLOCK_ONFAULT)
			r = (int)syscall(SYS_mlock2, a, AREA_PAGES * PG, 1 /* MLOCK_ONFAULT */);
		else if (adv == ADV_MSEAL)
			r = (int)syscall(462 /* mseal */, a, AREA_PAGES * PG, 0);
		else if (adv == MADV_GUARD_INSTALL)
			r = madvise(a + 3 * PG, PG, adv);
		else
			r = madvise(a, AREA_PAGES * PG, adv);
		if (r < 0)
			wl_die("%s: %s", madv_areas[i].name, strerror(errno));
		areas[i] = a;
	}
	{
		char *sm = read_smaps();

		for (size_t i = 0; i < n; i++) {
			vmflags_of(sm, areas[i], flags[i], sizeof(flags[i]));
			wl_log(logfd, "area %s %p %s", madv_areas[i].name, (void *)areas[i],
			       flags[i]);
		}
	}
	wl_ready(ready);
	for (long k = 1;; k++) {
		char *sm = read_smaps();

		for (size_t i = 0; i < n; i++) {
			vmflags_of(sm, areas[i], now, sizeof(now));
			if (strcmp(now, flags[i]))
				wl_log(logfd, "bad %s: VmFlags were '%s' now '%s'",
				       madv_areas[i].name, flags[i], now);
			if (areas[i][0] != (char)('A' + i) || areas[i][2 * PG] != (char)('a' + i))
				wl_log(logfd, "bad %s: content changed", madv_areas[i].name);
		}
		if (k % 5 == 0)
			wl_log(logfd, "ok %ld", k / 5);
		wl_sleep(0.1);
	}
}

/* ---- memfd ----------------------------------------------------------------------------------- */

static void memfd_main(const char *ready, const char *prog)
{
	char buf[65536];
	int src = open(prog, O_RDONLY | O_CLOEXEC);
	int fd = (int)syscall(SYS_memfd_create, "prog", 0);
	ssize_t n;

	if (src < 0 || fd < 0)
		wl_die("open %s / memfd_create: %s", prog, strerror(errno));
	while ((n = read(src, buf, sizeof(buf))) > 0)
		if (wl_write_all(fd, buf, (size_t)n) < 0)
			wl_die("write memfd: %s", strerror(errno));
	close(src);
	wl_log(logfd, "memfd fd %d", fd);
	wl_ready(ready);
	for (long k = 1;; k++) {
		int p[2], st, err = 0;
		pid_t kid;

		/* the child reports a failed exec through a pipe (CLOEXEC: EOF on success) */
		if (pipe2(p, O_CLOEXEC) < 0)
			wl_die("pipe2: %s", strerror(errno));
		kid = fork();
		if (kid == 0) {
			char *argv[] = {"prog", NULL}, *envp[] = {NULL};

			close(p[0]);
			syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
			err = errno;
			if (write(p[1], &err, sizeof(err)) < 0)
				_exit(3);
			_exit(2);
		}
		close(p[1]);
		if (read(p[0], &err, sizeof(err)) != sizeof(err))
			err = 0;
		close(p[0]);
		waitpid(kid, &st, 0);
		if (err)
			wl_log(logfd, "bad exec: %s", strerror(err));
		else if (!WIFEXITED(st) || WEXITSTATUS(st))
			wl_log(logfd, "bad exec: status %#x", st);
		if (k % 5 == 0)
			wl_log(logfd, "ok %ld", k / 5);
		wl_sleep(0.1);
	}
}

/* ---- sigio ---------------------------------------------------------------------------------- */

static void sigio_main(const char *ready, const char *what)
{
	bool outside = !strcmp(what, "outside");
	struct f_owner_ex want = {F_OWNER_PID, outside ? getppid() : getpid()}, got;
	int p[2], fl;

	if (!strcmp(what, "tty")) {
		/* a pty master: setting O_ASYNC makes us its owner (no owner yet);
		 * then the owner is taken away again: O_ASYNC without owner */
		p[0] = posix_openpt(O_RDWR | O_NOCTTY);
		if (p[0] < 0 || grantpt(p[0]) < 0 || unlockpt(p[0]) < 0)
			wl_die("pty: %s", strerror(errno));
		p[1] = open(ptsname(p[0]), O_RDWR | O_NOCTTY);
		if (p[1] < 0 || fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK) < 0 ||
		    fcntl(p[0], F_GETOWN) != getpid() || fcntl(p[0], F_SETOWN, 0) < 0)
			wl_die("pty O_ASYNC: %s", strerror(errno));
		want.pid = 0;
		what = "async";
	} else if (pipe(p) < 0) {
		wl_die("pipe: %s", strerror(errno));
	}
	if (!strcmp(what, "async") && want.pid == 0)
		fl = 0;
	else if (!strcmp(what, "async"))
		fl = fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK);
	else if (!strcmp(what, "own") || outside)
		fl = fcntl(p[0], F_SETOWN_EX, &want);
	else
		fl = fcntl(p[0], F_SETSIG, SIGUSR1);
	if (fl < 0)
		wl_die("fcntl %s: %s", what, strerror(errno));
	wl_ready(ready);
	for (long k = 1;; k++) {
		memset(&got, 0, sizeof(got));
		fcntl(p[0], F_GETOWN_EX, &got);
		if (!strcmp(what, "async") && !(fcntl(p[0], F_GETFL) & O_ASYNC))
			wl_log(logfd, "bad: O_ASYNC is gone");
		if (!strcmp(what, "async") && got.pid)
			wl_log(logfd, "bad: owner %d, there was none", got.pid);
		if ((!strcmp(what, "own") || outside) && got.pid != want.pid)
			wl_log(logfd, "bad: owner was %d now %d", want.pid, got.pid);
		if (!strcmp(what, "sig") && fcntl(p[0], F_GETSIG) != SIGUSR1)
			wl_log(logfd, "bad: F_GETSIG is %d", fcntl(p[0], F_GETSIG));
		if (k % 5 == 0)
			wl_log(logfd, "ok %ld", k / 5);
		wl_sleep(0.1);
	}
}

/* ---- clonefiles ------------------------------------------------------------------------------ */

static volatile int shared_fd = -1;
static char cf_open[4200], cf_close[4200];

/* The lowest fd of this process's table that is path, or -1 (waits up to 2 s). */
static int find_fd(const char *path)
{
	for (int i = 0; i < 100; i++) {
		for (int fd = 3; fd < 64; fd++) {
			char l[64] = "", p[64];

			snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
			if (readlink(p, l, sizeof(l) - 1) > 0 && !strcmp(l, path))
				return fd;
		}
		wl_sleep(0.02);
	}
	return -1;
}

static int loop_child(void *arg)
{
	for (long k = 1;; k++) {
		if (k % 5 == 0)
			wl_log(logfd, "ok %s %ld", (const char *)arg, k / 5);
		wl_sleep(0.1);
	}
	return 0;
}

static void *unshare_thread(void *arg)
{
	(void)arg;
	if (unshare(CLONE_FILES) < 0)
		wl_die("unshare(CLONE_FILES): %s", strerror(errno));
	for (;;)
		pause();
	return NULL;
}

static int clonefiles_child(void *arg)
{
	static char stack2[256 * 1024];
	int zero = -1;
	bool closed = false;

	shared_fd = open("/dev/null", O_RDONLY);
	/* chain: a grandchild in the same table */
	if (arg &&
	    clone(loop_child, stack2 + sizeof(stack2), CLONE_FILES | SIGCHLD, "grandchild") < 0)
		wl_die("clone: %s", strerror(errno));
	for (long k = 1;; k++) {
		/* the test asks: open a file here, the parent must see it */
		if (zero < 0 && wl_file_exists(cf_open)) {
			zero = open("/dev/zero", O_RDONLY);
			wl_log(logfd, "child opened %d", zero);
		}
		/* the parent closed it: gone from our table too */
		if (zero >= 0 && !closed && wl_file_exists(cf_close)) {
			for (int i = 0; i < 100 && fcntl(zero, F_GETFD) >= 0; i++)
				wl_sleep(0.02);
			if (fcntl(zero, F_GETFD) >= 0)
				wl_log(logfd,
				       "bad child: fd %d still open after the parent closed it",
				       zero);
			else
				wl_log(logfd, "child sees %d closed", zero);
			closed = true;
		}
		if (k % 5 == 0)
			wl_log(logfd, "ok child %ld", k / 5);
		wl_sleep(0.1);
	}
	return 0;
}

/* What the dump refuses: two children sharing a table their parent left,
 * a thread with its own table. */
static void clonefiles_refused(const char *ready, const char *how)
{
	static char st1[256 * 1024], st2[256 * 1024];
	pthread_t th;

	if (!strcmp(how, "siblings")) {
		if (clone(loop_child, st1 + sizeof(st1), CLONE_FILES | SIGCHLD, "child") < 0 ||
		    clone(loop_child, st2 + sizeof(st2), CLONE_FILES | SIGCHLD, "child") < 0 ||
		    unshare(CLONE_FILES) < 0)
			wl_die("siblings: %s", strerror(errno));
	} else if (!strcmp(how, "thread")) {
		if (pthread_create(&th, NULL, unshare_thread, NULL))
			wl_die("pthread_create");
		wl_sleep(0.1);
	} else {
		wl_die("clonefiles: unknown variant %s", how);
	}
	wl_ready(ready);
	loop_child("main");
}

/* CLONE_FS: the child changes cwd and umask when asked, the parent sees it. */
static int fs_child(void *arg)
{
	bool done = false;

	(void)arg;
	for (long k = 1;; k++) {
		if (!done && wl_file_exists(cf_open)) {
			if (chdir("/") < 0)
				wl_log(logfd, "bad child: chdir: %s", strerror(errno));
			umask(027);
			wl_log(logfd, "child chdir");
			done = true;
		}
		if (k % 5 == 0)
			wl_log(logfd, "ok child %ld", k / 5);
		wl_sleep(0.1);
	}
	return 0;
}

static void clonefs_main(const char *ready)
{
	static char stack[256 * 1024];
	char start[4096], cwd[4096];
	mode_t um = umask(022);
	bool seen = false;
	pid_t kid;

	umask(um);
	if (!getcwd(start, sizeof(start)))
		wl_die("getcwd: %s", strerror(errno));
	kid = clone(fs_child, stack + sizeof(stack), CLONE_FS | SIGCHLD, NULL);
	if (kid < 0)
		wl_die("clone(CLONE_FS): %s", strerror(errno));
	wl_log(logfd, "child %d", kid);
	wl_ready(ready);
	for (long k = 1;; k++) {
		mode_t m = umask(0);

		umask(m);
		if (!getcwd(cwd, sizeof(cwd)))
			snprintf(cwd, sizeof(cwd), "?");
		if (!seen && !strcmp(cwd, "/") && m == 027) {
			wl_log(logfd, "main sees cwd / umask 027");
			seen = true;
		} else if (!seen && (strcmp(cwd, start) || m != um) && !wl_file_exists(cf_open)) {
			wl_log(logfd, "bad main: cwd %s umask %o, was %s %o", cwd, m, start, um);
		}
		if (k % 5 == 0)
			wl_log(logfd, "ok main %ld", k / 5);
		wl_sleep(0.1);
	}
}

static void clonefiles_main(const char *ready, const char *how)
{
	static char stack[256 * 1024];
	pid_t kid;
	int fd, zero = -1;
	bool closed = false;

	snprintf(cf_open, sizeof(cf_open), "%s.open", ready);
	snprintf(cf_close, sizeof(cf_close), "%s.close", ready);
	if (how && !strcmp(how, "fs"))
		clonefs_main(ready);
	if (how && strcmp(how, "chain"))
		clonefiles_refused(ready, how);
	kid = clone(clonefiles_child, stack + sizeof(stack), CLONE_FILES | SIGCHLD, (void *)how);
	if (kid < 0)
		wl_die("clone: %s", strerror(errno));
	/* not shared memory: the child's fd number is found in our own table */
	fd = find_fd("/dev/null");
	if (fd < 0)
		wl_die("the child's fd is not in the shared table");
	wl_log(logfd, "child %d fd %d", kid, fd);
	wl_ready(ready);
	for (long k = 1;; k++) {
		if (fcntl(fd, F_GETFD) < 0)
			wl_log(logfd, "bad main: fd %d is gone", fd);
		if (zero < 0 && wl_file_exists(cf_open)) {
			zero = find_fd("/dev/zero");
			if (zero < 0)
				wl_log(logfd,
				       "bad main: the file the child opened is not in our table");
			else
				wl_log(logfd, "main sees %d", zero);
		}
		if (zero >= 0 && !closed && wl_file_exists(cf_close)) {
			close(zero);
			wl_log(logfd, "main closed %d", zero);
			closed = true;
		}
		if (k % 5 == 0)
			wl_log(logfd, "ok main %ld", k / 5);
		wl_sleep(0.1);
	}
}

int main(int argc, char **argv)
{
	wl_close_inherited();
	if (argc < 4)
		wl_die("usage: fidelity MODE LOG READY [ARGS...]");
	logfd = wl_open_log(argv[2]);
	if (!strcmp(argv[1], "stop"))
		stop_main(argv[3], argc > 4 && !strcmp(argv[4], "nocldstop"));
	if (!strcmp(argv[1], "memfd") && argc > 4)
		memfd_main(argv[3], argv[4]);
	if (!strcmp(argv[1], "sigio") && argc > 4)
		sigio_main(argv[3], argv[4]);
	if (!strcmp(argv[1], "clonefiles"))
		clonefiles_main(argv[3], argc > 4 ? argv[4] : NULL);
	if (!strcmp(argv[1], "madv"))
		madv_main(argv[3], argc > 4 && !strcmp(argv[4], "guard"));
	if (!strcmp(argv[1], "attr"))
		attr_main(argv[3], argc > 4 && !strcmp(argv[4], "setlogin"));
	wl_die("fidelity: unknown mode %s", argv[1]);
	return 2;
}
