/* SPDX-License-Identifier: MIT */
/*
 * lib/ptrace.c against real children: a busy loop, a child in nanosleep, a
 * child blocked in read, a stopped child, a child without a vdso. Each is
 * seized, made to run remote syscalls, detached, and must carry on exactly as
 * if nothing happened.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "ptrace.h"

/* Shared between the test and its child. */
struct shared {
	volatile uint64_t counter;
	volatile uint64_t counter2;
	volatile uint64_t addr;
	volatile int ready;
};

static struct shared *sh;

static struct shared *shared_new(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	memset(p, 0, 4096);
	return p;
}

static void wait_ready(void)
{
	for (int i = 0; i < 5000 && !sh->ready; i++)
		usleep(1000);
	ck_assert_int_eq(sh->ready, 1);
}

static pid_t fork_child(void (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* never outlive a failed test */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fn(arg);
		_exit(0);
	}
	return pid;
}

static int child_exit_status(pid_t pid)
{
	int status;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child status 0x%x", status);
	return WEXITSTATUS(status);
}

static void seize_ok(pid_t pid, int *stop_sig)
{
	struct ckpt_error e = {0};

	ck_assert_msg(ptrace_seize_stop(pid, stop_sig, &e) == 0, "%s", e.msg);
}

/* Remote getpid, a scratch page written and read back, and the session closed. */
static void remote_session(pid_t pid)
{
	struct ckpt_error e = {0};
	struct rsys r;
	char out[4096], in[4096];
	long res = 0;

	ck_assert_msg(rsys_init(&r, pid, 0, &e) == 0, "%s", e.msg);
	ck_assert_msg(rsys_call(&r, __NR_getpid, 0, 0, 0, 0, 0, 0, &res, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(res, pid);
	ck_assert_msg(rsys_call(&r, __NR_getppid, 0, 0, 0, 0, 0, 0, &res, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(res, getpid());
	ck_assert_msg(rsys_scratch(&r, 100, &e) == 0, "%s", e.msg);
	ck_assert_uint_ne(r.scratch, 0);
	ck_assert_uint_eq(r.scratch_len, 4096);
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 7);
	ck_assert_msg(remote_write(pid, r.scratch, out, sizeof(out), &e) == 0, "%s", e.msg);
	memset(in, 0, sizeof(in));
	ck_assert_msg(remote_read(pid, r.scratch, in, sizeof(in), &e) == 0, "%s", e.msg);
	ck_assert(memcmp(in, out, sizeof(in)) == 0);
	/* a failing syscall reports -errno */
	ck_assert_msg(rsys_call(&r, __NR_close, 12345, 0, 0, 0, 0, 0, &res, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(res, -EBADF);
	ck_assert_msg(rsys_fini(&r, &e) == 0, "%s", e.msg);
}

/* ---- regs_fixup_interrupted_syscall ---------------------------------------------------- */

static const struct {
	long orig_rax, rax;
	bool same_task;
	long want_rax;
	long rip_delta;
} fixups[] = {
    {0, -512, false, 0, -2},	{0, -513, true, 0, -2},	   {7, -514, false, 7, -2},
    {230, -516, true, 219, -2}, {230, -516, false, -4, 0}, {0, 5, true, 5, 0},
    {-1, -512, true, -512, 0},	{35, -4, false, -4, 0},
};

START_TEST(test_regs_fixup)
{
	struct user_regs_struct regs = {0};

	regs.orig_rax = (uint64_t)fixups[_i].orig_rax;
	regs.rax = (uint64_t)fixups[_i].rax;
	regs.rip = 0x1000;
	regs_fixup_interrupted_syscall(&regs, fixups[_i].same_task);
	ck_assert_int_eq((long)regs.rax, fixups[_i].want_rax);
	ck_assert_int_eq((long)regs.rip, 0x1000 + fixups[_i].rip_delta);
	ck_assert_int_eq((long)regs.orig_rax, -1);
}
END_TEST

START_TEST(test_cpu_xfeatures)
{
	uint64_t xcr0 = 0;
	uint32_t size = 0;

	ck_assert_int_eq(cpu_xfeatures(&xcr0, &size), 0);
	ck_assert(xcr0 & 3); /* x87 and SSE are always on */
	ck_assert_uint_ge(size, 576);
}
END_TEST

/* ---- a busy loop ---------------------------------------------------------------------- */

static void loop_child(void *arg)
{
	sh->ready = 1;
	for (;;)
		sh->counter++;
}

START_TEST(test_loop)
{
	struct ckpt_error e = {0};
	struct user_regs_struct before, after;
	void *xs = NULL;
	size_t xlen = 0;
	int stopped = -1;
	uint64_t c;
	pid_t pid;

	sh = shared_new();
	pid = fork_child(loop_child, NULL);
	wait_ready();
	seize_ok(pid, &stopped);
	ck_assert_int_eq(stopped, 0);
	ck_assert_msg(ptrace_get_regs(pid, &before, &e) == 0, "%s", e.msg);
	ck_assert_msg(ptrace_get_xstate(pid, &xs, &xlen, &e) == 0, "%s", e.msg);
	ck_assert_uint_ge(xlen, 576);
	ck_assert_msg(ptrace_set_xstate(pid, xs, xlen, &e) == 0, "%s", e.msg);
	free(xs);
	c = sh->counter;
	usleep(20000);
	ck_assert_uint_eq(sh->counter, c); /* frozen */
	remote_session(pid);
	ck_assert_msg(ptrace_get_regs(pid, &after, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(after.rip, before.rip);
	ck_assert_uint_eq(after.rsp, before.rsp);
	ck_assert_msg(ptrace_detach(pid, 0, &e) == 0, "%s", e.msg);
	for (int i = 0; i < 200 && sh->counter == c; i++) /* a busy machine: up to 2 s */
		usleep(10000);
	ck_assert_uint_gt(sh->counter, c);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
END_TEST

/* ---- nanosleep: interrupted with -ERESTART_RESTARTBLOCK, must finish its sleep -------- */

static void sleep_child(void *arg)
{
	struct timespec t0, t1, req = {.tv_sec = 1};

	clock_gettime(CLOCK_MONOTONIC, &t0);
	sh->ready = 1;
	if (nanosleep(&req, NULL) != 0)
		_exit(1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) < 1000000000L)
		_exit(2);
	_exit(0);
}

START_TEST(test_nanosleep)
{
	struct ckpt_error e = {0};
	struct user_regs_struct regs;
	pid_t pid;

	sh = shared_new();
	pid = fork_child(sleep_child, NULL);
	wait_ready();
	usleep(200000);
	seize_ok(pid, NULL);
	ck_assert_msg(ptrace_get_regs(pid, &regs, &e) == 0, "%s", e.msg);
	ck_assert_int_eq((long)regs.orig_rax, __NR_clock_nanosleep);
	ck_assert_int_eq((long)regs.rax, -516);
	remote_session(pid);
	ck_assert_msg(ptrace_detach(pid, 0, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(child_exit_status(pid), 0);
}
END_TEST

/* ---- read on a pipe: interrupted with -ERESTARTSYS, must still get the data ----------- */

static void read_child(void *arg)
{
	int fd = *(int *)arg;
	char buf[16] = {0};

	sh->ready = 1;
	if (read(fd, buf, 5) != 5)
		_exit(1);
	_exit(memcmp(buf, "hello", 5) ? 2 : 0);
}

START_TEST(test_read)
{
	struct ckpt_error e = {0};
	struct user_regs_struct regs;
	int p[2];
	pid_t pid;

	sh = shared_new();
	ck_assert_int_eq(pipe(p), 0);
	pid = fork_child(read_child, &p[0]);
	wait_ready();
	usleep(100000);
	seize_ok(pid, NULL);
	ck_assert_msg(ptrace_get_regs(pid, &regs, &e) == 0, "%s", e.msg);
	ck_assert_int_eq((long)regs.orig_rax, __NR_read);
	ck_assert_int_eq((long)regs.rax, -512);
	remote_session(pid);
	ck_assert_msg(ptrace_detach(pid, 0, &e) == 0, "%s", e.msg);
	usleep(50000);
	ck_assert_int_eq(write(p[1], "hello", 5), 5);
	ck_assert_int_eq(child_exit_status(pid), 0);
}
END_TEST

/* ---- a stopped child stays stopped ------------------------------------------------- */

static char state_of(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	p = strrchr(buf, ')');
	return p ? p[2] : 0;
}

static void stop_child(void *arg)
{
	sh->ready = 1;
	raise(SIGSTOP);
	sh->counter = 42;
	_exit(0);
}

START_TEST(test_stopped)
{
	struct ckpt_error e = {0};
	int stopped = 0;
	int status;
	pid_t pid;

	sh = shared_new();
	pid = fork_child(stop_child, NULL);
	ck_assert_int_eq(waitpid(pid, &status, WUNTRACED), pid);
	ck_assert(WIFSTOPPED(status));
	seize_ok(pid, &stopped);
	ck_assert_int_eq(stopped, SIGSTOP);
	remote_session(pid);
	ck_assert_msg(ptrace_detach(pid, _i == 1 ? SIGSTOP : 0, &e) == 0, "%s", e.msg);
	usleep(50000);
	ck_assert_int_eq(state_of(pid), 'T');
	ck_assert_uint_eq(sh->counter, 0);
	kill(pid, SIGCONT);
	ck_assert_int_eq(child_exit_status(pid), 0);
	ck_assert_uint_eq(sh->counter, 42);
}
END_TEST

/* ---- no vdso: the syscall instruction is poked over the code and put back --------- */

static void novdso_child(void *arg)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long s, e;

	while (f && fgets(line, sizeof(line), f)) {
		if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &s, &e) == 2)
			syscall(__NR_munmap, s, e - s);
	}
	sh->ready = 1;
	for (;;)
		sh->counter++;
}

START_TEST(test_poke)
{
	struct ckpt_error e = {0};
	struct rsys r;
	long res = 0;
	uint64_t c;
	pid_t pid;

	sh = shared_new();
	pid = fork_child(novdso_child, NULL);
	wait_ready();
	usleep(10000);
	seize_ok(pid, NULL);
	ck_assert_msg(rsys_init(&r, pid, 0, &e) == 0, "%s", e.msg);
	ck_assert(r.poked);
	ck_assert_msg(rsys_call(&r, __NR_getpid, 0, 0, 0, 0, 0, 0, &res, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(res, pid);
	ck_assert_msg(rsys_fini(&r, &e) == 0, "%s", e.msg);
	c = sh->counter;
	ck_assert_msg(ptrace_detach(pid, 0, &e) == 0, "%s", e.msg);
	/* running again: it counts (give a busy machine up to 2 s to schedule it) */
	for (int i = 0; i < 200 && sh->counter == c; i++)
		usleep(10000);
	ck_assert_uint_gt(sh->counter, c);
	ck_assert_int_eq(state_of(pid), 'R');
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
END_TEST

/* ---- pending signals, mask, rseq, memory the task cannot access ------------------- */

static void sig_child(void *arg)
{
	sigset_t s;
	unsigned char *p;

	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	sigaddset(&s, SIGRTMIN + 1);
	sigprocmask(SIG_BLOCK, &s, NULL);
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(p, 0xab, 8192);
	mprotect(p, 8192, PROT_NONE);
	sh->addr = (uintptr_t)p;
	sh->ready = 1;
	for (;;)
		pause();
}

START_TEST(test_signals_and_memory)
{
	struct ckpt_error e = {0};
	struct rseq_config rc;
	bool registered = false;
	siginfo_t *si = NULL;
	size_t n = 0;
	uint64_t mask = 0;
	unsigned char buf[8192], pat[100];
	union sigval v;
	pid_t pid;

	sh = shared_new();
	pid = fork_child(sig_child, NULL);
	wait_ready();
	v.sival_int = 11;
	ck_assert_int_eq(sigqueue(pid, SIGRTMIN + 1, v), 0);
	v.sival_int = 22;
	ck_assert_int_eq(sigqueue(pid, SIGRTMIN + 1, v), 0);
	ck_assert_int_eq(syscall(__NR_tgkill, pid, pid, SIGUSR2), 0);
	usleep(20000);
	seize_ok(pid, NULL);

	ck_assert_msg(ptrace_peek_siginfo(pid, true, &si, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(si[0].si_signo, SIGRTMIN + 1);
	ck_assert_int_eq(si[0].si_value.sival_int, 11);
	ck_assert_int_eq(si[1].si_value.sival_int, 22);
	free(si);
	ck_assert_msg(ptrace_peek_siginfo(pid, false, &si, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(si[0].si_signo, SIGUSR2);
	free(si);

	ck_assert_msg(ptrace_get_sigmask(pid, &mask, &e) == 0, "%s", e.msg);
	ck_assert(mask & (1ULL << (SIGUSR2 - 1)));
	ck_assert(mask & (1ULL << (SIGRTMIN + 1 - 1)));

	ck_assert_msg(ptrace_get_rseq(pid, &rc, &registered, &e) == 0, "%s", e.msg);
	if (registered) {
		ck_assert_uint_ge(rc.abi_size, 20);
		ck_assert_uint_eq(rc.signature, 0x53053053);
	}

	ck_assert_msg(remote_read(pid, sh->addr, buf, sizeof(buf), &e) == 0, "%s", e.msg);
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_uint_eq(buf[i], 0xab);
	memset(pat, 0x5c, sizeof(pat));
	ck_assert_msg(remote_write(pid, sh->addr + 4000, pat, sizeof(pat), &e) == 0, "%s", e.msg);
	ck_assert_msg(remote_read(pid, sh->addr, buf, sizeof(buf), &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(buf[3999], 0xab);
	ck_assert_uint_eq(buf[4000], 0x5c);
	ck_assert_uint_eq(buf[4099], 0x5c);
	ck_assert_uint_eq(buf[4100], 0xab);
	/* nothing is mapped at address 4096 */
	ck_assert_int_lt(remote_read(pid, 4096, buf, 16, &e), 0);
	ck_assert(strstr(e.msg, "0x1000") != NULL);

	remote_session(pid);
	/* the session did not change what is pending or blocked */
	ck_assert_msg(ptrace_peek_siginfo(pid, true, &si, &n, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(n, 2);
	free(si);
	ck_assert_msg(ptrace_get_sigmask(pid, &mask, &e) == 0, "%s", e.msg);
	ck_assert(mask & (1ULL << (SIGUSR2 - 1)));
	ck_assert(!(mask & (1ULL << (SIGUSR1 - 1))));
	ck_assert_msg(ptrace_detach(pid, 0, &e) == 0, "%s", e.msg);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
END_TEST

/* ---- signals racing with the seize are neither lost nor run during the freeze -------- */

static void rt_handler(int sig)
{
	sh->addr++;
}

static void handler_child(void *arg)
{
	signal(SIGRTMIN, rt_handler);
	sh->ready = 1;
	for (;;)
		sh->counter++;
}

static void flood_child(void *arg)
{
	pid_t target = *(pid_t *)arg;
	union sigval v = {0};

	while (sh->counter2 < 20000) {
		if (sigqueue(target, SIGRTMIN, v) == 0)
			sh->counter2++;
		else if (errno != EAGAIN)
			_exit(1);
	}
	_exit(0);
}

START_TEST(test_signal_race)
{
	struct ckpt_error e = {0};
	uint64_t c, h;
	pid_t pid, flooder;

	sh = shared_new();
	pid = fork_child(handler_child, NULL);
	wait_ready();
	flooder = fork_child(flood_child, &pid);
	for (int i = 0; i < 300; i++) {
		seize_ok(pid, NULL);
		c = sh->counter;
		h = sh->addr;
		remote_session(pid);
		ck_assert_uint_eq(sh->counter, c);
		ck_assert_uint_eq(sh->addr, h);
		ck_assert_msg(ptrace_detach(pid, 0, &e) == 0, "%s", e.msg);
	}
	ck_assert_int_eq(child_exit_status(flooder), 0);
	for (int i = 0; i < 2000 && sh->addr != sh->counter2; i++)
		usleep(1000);
	ck_assert_uint_eq(sh->addr, sh->counter2);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
END_TEST

START_TEST(test_seize_errors)
{
	struct ckpt_error e = {0};
	pid_t pid;

	sh = shared_new();
	pid = fork_child(loop_child, NULL);
	wait_ready();
	seize_ok(pid, NULL);
	/* a second seize of a traced task fails with a message naming it */
	ck_assert_int_lt(ptrace_seize_stop(pid, NULL, &e), 0);
	ck_assert(strstr(e.msg, "pid") != NULL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, __WALL);
	/* the task is gone: errors, no crash */
	struct rsys r;
	ck_assert_int_lt(rsys_init(&r, pid, 0, &e), 0);
}
END_TEST

static Suite *ptrace_suite(void)
{
	Suite *s = suite_create("ptrace");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_regs_fixup, 0, sizeof(fixups) / sizeof(fixups[0]));
	tcase_add_test(tc, test_cpu_xfeatures);
	tcase_add_test(tc, test_loop);
	tcase_add_test(tc, test_nanosleep);
	tcase_add_test(tc, test_read);
	tcase_add_loop_test(tc, test_stopped, 0, 2);
	tcase_add_test(tc, test_poke);
	tcase_add_test(tc, test_signals_and_memory);
	tcase_add_test(tc, test_signal_race);
	tcase_add_test(tc, test_seize_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ptrace_suite());
	int failed;

	if (getenv("CKPT_TEST_DEBUG"))
		ckpt_log_set_level(LOG_LVL_DEBUG);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
