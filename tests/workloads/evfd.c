/* SPDX-License-Identifier: MIT */
/*
 * evfd LOG READY DIR [stale|fork]
 *
 * Every kind of event fd in one epoll loop (epoll_wait), each checked by
 * the program itself, so that a restore that loses or changes any of them
 * shows up as "bad" in the log:
 *   - eventfd "ec" (counter, non-blocking): each timer expiration read adds
 *     1 to it; whatever is read from it must add up to what was written;
 *   - eventfd "es" (EFD_SEMAPHORE, blocking), started at 8: read once every
 *     10 ticks, each read must give 1, and once empty it must stay empty;
 *   - signalfd (SIGUSR1 blocked, read through it): logs "signal N pid P";
 *   - timerfd "tp": CLOCK_MONOTONIC every 100 ms (the ticks go on);
 *   - timerfd "t1": CLOCK_MONOTONIC one-shot in 1000 s, relative: logged as
 *     "oneshot MS" (milliseconds left), never growing, never firing;
 *   - timerfd "ta": CLOCK_REALTIME, TFD_TIMER_ABSTIME, at a fixed wall time
 *     2000 s ahead: its expiration (now + time left) must stay the same;
 *   - inotify watching DIR/a (then removed: a gap in the wds), DIR/b and
 *     DIR: each file created in DIR is logged "inotify wd W name N".
 * Each registration is changed with EPOLL_CTL_MOD from time to time by the
 * program's own fd numbers (fails if the registration is gone), with data
 * words that must come back unchanged.
 * Every 5 ticks: "ok N ticks T ec R/W sem S sig G oneshot MS bad B".
 * With "stale", an extra eventfd is registered, dup'ed and closed: its
 * registration stays (the file lives on) under an fd number no longer open,
 * which a dump must refuse. With "fork", a child holds every fd too (the
 * epoll instance is shared by two tasks) and just waits.
 */
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

#include "wl.h"

enum { D_EC = 0x1001, D_ES, D_SIG, D_TP, D_T1, D_TA, D_IN };

struct st {
	int log, ep, ec, es, sfd, tp, t1, ta, in;
	uint64_t ticks, ec_w, ec_r, sem_left, sigs, lines, bad;
	int64_t oneshot_ms, ta_abs_ms;
	int wd_b, wd_dir;
};

static int64_t ts_ms(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

static void bad(struct st *s, const char *what)
{
	s->bad++;
	wl_log(s->log, "bad %s: %s", what, strerror(errno));
}

static void reg(struct st *s, int op, int fd, uint64_t data, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.u64 = data};

	if (epoll_ctl(s->ep, op, fd, &e) < 0)
		bad(s, "epoll_ctl");
}

static void setup(struct st *s, const char *dir)
{
	struct itimerspec its = {.it_interval = {0, 100000000}, .it_value = {0, 100000000}};
	struct timespec now;
	char path[4200];
	sigset_t m;

	s->ec = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->es = eventfd(8, EFD_SEMAPHORE | EFD_CLOEXEC);
	s->sem_left = 8;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	sigprocmask(SIG_BLOCK, &m, NULL);
	s->sfd = signalfd(-1, &m, SFD_NONBLOCK | SFD_CLOEXEC);
	s->tp = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	s->t1 = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	s->ta = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	s->in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	if (s->ec < 0 || s->es < 0 || s->sfd < 0 || s->tp < 0 || s->t1 < 0 || s->ta < 0 ||
	    s->in < 0 || s->ep < 0)
		wl_die("setup: %s", strerror(errno));
	if (timerfd_settime(s->tp, 0, &its, NULL) < 0)
		wl_die("timerfd_settime: %s", strerror(errno));
	its = (struct itimerspec){.it_value = {1000, 0}};
	if (timerfd_settime(s->t1, 0, &its, NULL) < 0)
		wl_die("timerfd_settime: %s", strerror(errno));
	clock_gettime(CLOCK_REALTIME, &now);
	its = (struct itimerspec){.it_value = {now.tv_sec + 2000, 0}};
	s->ta_abs_ms = ts_ms(&its.it_value);
	if (timerfd_settime(s->ta, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		wl_die("timerfd_settime: %s", strerror(errno));
	/* a watch added and removed: a gap in the watch descriptors */
	snprintf(path, sizeof(path), "%s/a", dir);
	mkdir(path, 0755);
	int wa = inotify_add_watch(s->in, path, IN_CREATE);
	snprintf(path, sizeof(path), "%s/b", dir);
	mkdir(path, 0755);
	s->wd_b = inotify_add_watch(s->in, path, IN_CREATE | IN_DELETE);
	if (wa < 0 || s->wd_b < 0 || inotify_rm_watch(s->in, wa) < 0)
		wl_die("inotify: %s", strerror(errno));
	s->wd_dir = inotify_add_watch(s->in, dir, IN_CREATE | IN_ONLYDIR);
	if (s->wd_dir < 0)
		wl_die("inotify: %s", strerror(errno));
	reg(s, EPOLL_CTL_ADD, s->ec, D_EC, EPOLLIN);
	reg(s, EPOLL_CTL_ADD, s->es, D_ES, EPOLLIN | EPOLLONESHOT);
	reg(s, EPOLL_CTL_ADD, s->sfd, D_SIG, EPOLLIN);
	reg(s, EPOLL_CTL_ADD, s->tp, D_TP, EPOLLIN);
	reg(s, EPOLL_CTL_ADD, s->t1, D_T1, EPOLLIN);
	reg(s, EPOLL_CTL_ADD, s->ta, D_TA, EPOLLIN);
	reg(s, EPOLL_CTL_ADD, s->in, D_IN, EPOLLIN | EPOLLET);
	wl_log(s->log, "watches %d %d", s->wd_b, s->wd_dir);
}

static void on_tick(struct st *s)
{
	uint64_t n, one = 1;

	if (read(s->tp, &n, sizeof(n)) != sizeof(n)) {
		if (errno != EAGAIN)
			bad(s, "read tp");
		return;
	}
	s->ticks += n;
	if (write(s->ec, &one, sizeof(one)) != sizeof(one))
		bad(s, "write ec");
	s->ec_w++;
	/* the semaphore: re-armed (ONESHOT) every 10 ticks, read when it fires */
	if (s->ticks / 10 != (s->ticks - n) / 10)
		reg(s, EPOLL_CTL_MOD, s->es, D_ES, EPOLLIN | EPOLLONESHOT);
}

static void on_sem(struct st *s)
{
	uint64_t v;

	if (!s->sem_left) {
		struct pollfd p = {.fd = s->es, .events = POLLIN};

		if (poll(&p, 1, 0) != 0)
			bad(s, "semaphore readable when empty");
		return;
	}
	if (read(s->es, &v, sizeof(v)) != sizeof(v) || v != 1)
		bad(s, "semaphore read");
	s->sem_left--;
}

static void on_inotify(struct st *s)
{
	char buf[4096] __attribute__((aligned(8)));
	ssize_t n;

	while ((n = read(s->in, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			wl_log(s->log, "inotify wd %d mask %#x name %s", ev->wd, ev->mask,
			       ev->len ? ev->name : "-");
			if (!(ev->mask & IN_IGNORED) && ev->wd != s->wd_b && ev->wd != s->wd_dir)
				bad(s, "inotify wd");
			p += sizeof(*ev) + ev->len;
		}
}

static void check_timers(struct st *s)
{
	struct itimerspec cur;
	struct timespec now;
	int64_t ms, abs;

	if (timerfd_gettime(s->t1, &cur) < 0)
		bad(s, "timerfd_gettime t1");
	ms = ts_ms(&cur.it_value);
	if (ms <= 0 || ms > s->oneshot_ms || ms < 900000 || cur.it_interval.tv_sec)
		bad(s, "oneshot time left");
	s->oneshot_ms = ms;
	if (timerfd_gettime(s->ta, &cur) < 0)
		bad(s, "timerfd_gettime ta");
	clock_gettime(CLOCK_REALTIME, &now);
	abs = ts_ms(&now) + ts_ms(&cur.it_value);
	if (abs < s->ta_abs_ms - 100 || abs > s->ta_abs_ms + 100) {
		errno = 0;
		wl_log(s->log, "abs timer off by %lld ms", (long long)(abs - s->ta_abs_ms));
		bad(s, "absolute timer moved");
	}
	/* the registrations answer to the program's own fd numbers */
	reg(s, EPOLL_CTL_MOD, s->tp, D_TP, EPOLLIN);
	reg(s, EPOLL_CTL_MOD, s->t1, D_T1, EPOLLIN);
}

int main(int argc, char **argv)
{
	struct st s = {.oneshot_ms = INT64_MAX};
	uint64_t last = 0;

	if (argc != 4 && argc != 5)
		wl_die("usage: evfd LOG READY DIR [stale|fork]");
	wl_close_inherited();
	s.log = wl_open_log(argv[1]);
	setup(&s, argv[3]);
	if (argc == 5 && !strcmp(argv[4], "fork")) {
		pid_t c = fork();

		if (c < 0)
			wl_die("fork: %s", strerror(errno));
		if (c == 0)
			for (;;)
				pause();
		wl_log(s.log, "child %d", (int)c);
	} else if (argc == 5) {
		int x = eventfd(0, EFD_CLOEXEC), y;

		reg(&s, EPOLL_CTL_ADD, x, 0x2000, EPOLLIN);
		y = dup(x);
		close(x);
		wl_log(s.log, "stale %d kept as %d", x, y);
	}
	wl_ready(argv[2]);
	for (;;) {
		struct epoll_event evs[8];
		int n = epoll_wait(s.ep, evs, 8, 1000);

		if (n < 0 && errno != EINTR)
			bad(&s, "epoll_wait");
		for (int i = 0; i < n; i++) {
			struct signalfd_siginfo si;
			uint64_t v;

			switch (evs[i].data.u64) {
			case D_TP:
				on_tick(&s);
				break;
			case D_EC:
				if (read(s.ec, &v, sizeof(v)) == sizeof(v))
					s.ec_r += v;
				if (s.ec_r != s.ec_w)
					bad(&s, "eventfd count");
				break;
			case D_ES:
				on_sem(&s);
				break;
			case D_SIG:
				while (read(s.sfd, &si, sizeof(si)) == sizeof(si)) {
					s.sigs++;
					wl_log(s.log, "signal %llu signo %u pid %u",
					       (unsigned long long)s.sigs, si.ssi_signo,
					       si.ssi_pid);
				}
				break;
			case D_IN:
				on_inotify(&s);
				break;
			default:
				errno = 0;
				bad(&s, "epoll data (or a timer that must not fire)");
			}
		}
		if (s.ticks / 5 != last) {
			last = s.ticks / 5;
			check_timers(&s);
			wl_log(s.log,
			       "ok %llu ticks %llu ec %llu/%llu sem %llu sig %llu oneshot %lld bad "
			       "%llu",
			       (unsigned long long)++s.lines, (unsigned long long)s.ticks,
			       (unsigned long long)s.ec_r, (unsigned long long)s.ec_w,
			       (unsigned long long)s.sem_left, (unsigned long long)s.sigs,
			       (long long)s.oneshot_ms, (unsigned long long)s.bad);
		}
	}
}
