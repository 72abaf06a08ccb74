/* SPDX-License-Identifier: MIT */
/*
 * threads LOG READY [NPROC]: NPROC processes (default 1; the first forks the
 * others) with 8 threads each besides the main thread, over a structure
 * shared under a mutex with an invariant (total == sum of the parts):
 *   w0..w2  update their own part under the mutex, then sleep 50 ms
 *   cond    blocked in pthread_cond_wait, woken by sig every 200 ms
 *   sig     nanosleep(100 ms), then broadcasts the condition and holds the
 *           mutex for 100 ms (the others block in pthread_mutex_lock)
 *   sleep   long nanosleep (1 s) and poll() with no fds (700 ms), in turn
 *   busy    a busy loop that checks its sigaltstack and robust list, and
 *           that a SIGUSR2 queued to it alone (blocked there) stays pending
 *   join    creates a short-lived thread and blocks in pthread_join
 * Every line is "PID NAME TID SEQ ...": SEQ is a per-thread (TLS) counter
 * that must go up by one per line; a broken invariant or per-thread state
 * logs a line with BAD. "start PID NAME TID" lines name each thread once.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>

#include "wl.h"

#define NWORK 3

static int logfd;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long part[NWORK], total, gen;
static pthread_t busy_thread;
static volatile int usr2_sent;
static __thread long seq;
static __thread const char *tname;

__attribute__((format(printf, 1, 2))) static void tlog(const char *fmt, ...)
{
	char buf[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	wl_log(logfd, "%d %s %ld %ld %s", getpid(), tname, (long)gettid(), ++seq, buf);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void check_invariant(void)
{
	long sum = 0;

	for (int i = 0; i < NWORK; i++)
		sum += part[i];
	if (sum != total)
		tlog("BAD invariant sum %ld total %ld", sum, total);
}

static void start(const char *name)
{
	tname = name;
	pthread_setname_np(pthread_self(), name);
	wl_log(logfd, "start %d %s %ld", getpid(), name, (long)gettid());
}

static void *worker(void *arg)
{
	long i = (long)arg;
	char name[8];

	snprintf(name, sizeof(name), "w%ld", i);
	start(name);
	for (long n = 1;; n++) {
		pthread_mutex_lock(&mu);
		part[i]++;
		total++;
		check_invariant();
		pthread_mutex_unlock(&mu);
		if (n % 10 == 0)
			tlog("part %ld", part[i]);
		sleep_ms(50);
	}
	return NULL;
}

static void *cond_waiter(void *arg)
{
	long seen = 0;

	(void)arg;
	start("cond");
	for (;;) {
		pthread_mutex_lock(&mu);
		while (gen == seen)
			pthread_cond_wait(&cv, &mu);
		seen = gen;
		check_invariant();
		pthread_mutex_unlock(&mu);
		tlog("gen %ld", seen);
	}
	return NULL;
}

static void *signaler(void *arg)
{
	(void)arg;
	start("sig");
	for (;;) {
		sleep_ms(100);
		pthread_mutex_lock(&mu);
		gen++;
		pthread_cond_broadcast(&cv);
		/* held for a while: the others block in the mutex (futex) meanwhile */
		sleep_ms(100);
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

static void *sleeper(void *arg)
{
	(void)arg;
	start("sleep");
	for (;;) {
		wl_sleep(1.0);
		tlog("slept");
		poll(NULL, 0, 700);
		tlog("polled");
	}
	return NULL;
}

static void *busy(void *arg)
{
	static char altstack[65536];
	stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)}, cur;
	void *head0, *head;
	size_t len;
	double next;

	sigset_t usr2, pend;

	(void)arg;
	start("busy");
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, NULL);
	if (sigaltstack(&ss, NULL) < 0)
		wl_die("sigaltstack: %s", strerror(errno));
	syscall(SYS_get_robust_list, 0, &head0, &len);
	next = wl_now() + 0.5;
	for (volatile unsigned long spin = 0;; spin++) {
		if (spin % (1UL << 20))
			continue;
		if (wl_now() < next)
			continue;
		next += 0.5;
		sigaltstack(NULL, &cur);
		syscall(SYS_get_robust_list, 0, &head, &len);
		if (cur.ss_sp != altstack || cur.ss_size != sizeof(altstack) || cur.ss_flags)
			tlog("BAD sigaltstack %p %zu %d", cur.ss_sp, cur.ss_size, cur.ss_flags);
		else if (head != head0)
			tlog("BAD robust list %p, was %p", head, head0);
		else if (usr2_sent && (sigpending(&pend) < 0 || !sigismember(&pend, SIGUSR2)))
			tlog("BAD SIGUSR2 is no longer pending");
		else
			tlog("spin");
	}
	return NULL;
}

static void *short_lived(void *arg)
{
	sleep_ms(300);
	return arg;
}

static void *joiner(void *arg)
{
	(void)arg;
	start("join");
	for (long k = 1;; k++) {
		pthread_t t;
		void *ret = NULL;

		if (pthread_create(&t, NULL, short_lived, (void *)k) != 0)
			wl_die("pthread_create");
		pthread_join(t, &ret);
		if ((long)ret != k)
			tlog("BAD join returned %ld, expected %ld", (long)ret, k);
		else
			tlog("joined %ld", k);
	}
	return NULL;
}

static void run(void)
{
	pthread_t t;

	for (long i = 0; i < NWORK; i++)
		pthread_create(&t, NULL, worker, (void *)i);
	pthread_create(&t, NULL, cond_waiter, NULL);
	pthread_create(&t, NULL, signaler, NULL);
	pthread_create(&t, NULL, sleeper, NULL);
	pthread_create(&busy_thread, NULL, busy, NULL);
	pthread_create(&t, NULL, joiner, NULL);
}

int main(int argc, char **argv)
{
	int nproc = argc > 3 ? atoi(argv[3]) : 1;
	pid_t root = getpid();

	if (argc < 3)
		wl_die("usage: threads LOG READY [NPROC]");
	wl_close_inherited();
	logfd = wl_open_log(argv[1]);
	for (int i = 1; i < nproc; i++) {
		pid_t p = fork();

		if (p < 0)
			wl_die("fork: %s", strerror(errno));
		if (p == 0)
			break;
	}
	start("main");
	run();
	sleep_ms(300);
	/* pending on the busy thread only (it blocks SIGUSR2 since it started) */
	if (pthread_sigqueue(busy_thread, SIGUSR2, (union sigval){.sival_int = 42}) != 0)
		wl_die("pthread_sigqueue failed");
	usr2_sent = 1;
	if (getpid() == root)
		wl_ready(argv[2]);
	for (long n = 1;; n++) {
		pthread_mutex_lock(&mu);
		check_invariant();
		pthread_mutex_unlock(&mu);
		if (n % 5 == 0)
			tlog("total %ld", total);
		sleep_ms(100);
	}
}
