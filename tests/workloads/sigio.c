/* SPDX-License-Identifier: MIT */
/*
 * sigio LOG READY
 *
 * Signal-driven I/O, checked by the program itself (test_sigio):
 *   - a pipe, a UDP socket (127.0.0.1) and a pty master with O_ASYNC, owned
 *     by a thread that is not the main one (F_SETOWN_EX F_OWNER_TID) and
 *     F_SETSIG SIGRTMIN+1: each signal must reach that thread, with that
 *     number and the fd it was set on in si_fd;
 *   - a pipe with O_ASYNC owned by the process group (F_SETOWN -pgrp, plain
 *     SIGIO): both the process and a child in its group get SIGIO.
 * Logs "setup PID worker TID pipe RD WR sock FD PORT grp RD WR child PID
 * pty MASTER SLAVE", then "got pipe|sock|pty N", "grp main N", "grp child N" for each signal, "ok
 * N" every 500 ms while fcntl still shows the state it set, and "bad ..."
 * on any difference. The test writes into the pipes and the pty slave
 * through /proc/PID/fd/N and sends datagrams to PORT.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "wl.h"

#define NEV 1024

struct ev {
	int signo, fd, code;
	pid_t tid;
};

static int logfd;
static struct ev evs[NEV];
static atomic_int nev;
static atomic_int nsigio;
static atomic_int worker_tid;

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	int i = atomic_fetch_add(&nev, 1);

	(void)uc;
	if (i < NEV)
		evs[i] = (struct ev){sig, si->si_fd, si->si_code, (pid_t)syscall(SYS_gettid)};
}

static void on_sigio(int sig)
{
	(void)sig;
	atomic_fetch_add(&nsigio, 1);
}

static void *worker(void *arg)
{
	(void)arg;
	atomic_store(&worker_tid, (int)syscall(SYS_gettid));
	for (;;)
		pause();
	return NULL;
}

static void set_async(int fd, const struct f_owner_ex *own, int sig, const char *what)
{
	if ((own && fcntl(fd, F_SETOWN_EX, own) < 0) || (sig && fcntl(fd, F_SETSIG, sig) < 0) ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC | O_NONBLOCK) < 0)
		wl_die("fcntl on %s: %s", what, strerror(errno));
}

/* The state set on fd is still there. */
static void check_fd(int fd, int type, int owner, int sig, const char *what)
{
	struct f_owner_ex got = {0};
	int fl = fcntl(fd, F_GETFL), s = fcntl(fd, F_GETSIG);

	if (fcntl(fd, F_GETOWN_EX, &got) < 0 || (int)got.type != type || got.pid != owner)
		wl_log(logfd, "bad %s: owner type %d id %d, set %d %d", what, got.type, got.pid,
		       type, owner);
	if (fl < 0 || !(fl & O_ASYNC))
		wl_log(logfd, "bad %s: O_ASYNC is gone (flags 0%o)", what, fl);
	if (s != sig)
		wl_log(logfd, "bad %s: F_GETSIG %d, set %d", what, s, sig);
}

static void drain(int fd)
{
	char buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static void child_main(void)
{
	int seen = 0;

	signal(SIGIO, on_sigio);
	for (long k = 1;; k++) {
		int n = atomic_load(&nsigio);

		for (; seen < n; seen++)
			wl_log(logfd, "grp child %d", seen + 1);
		wl_sleep(0.05);
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_sigaction = on_rt, .sa_flags = SA_SIGINFO | SA_RESTART};
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int pa[2], pg[2], sk, sig = SIGRTMIN + 1, seen_ev = 0, seen_io = 0, npipe = 0, nsock = 0;
	int ptm, pts, npty = 0;
	struct f_owner_ex own;
	pthread_t th;
	pid_t kid;

	wl_close_inherited();
	if (argc < 3)
		wl_die("usage: sigio LOG READY");
	logfd = wl_open_log(argv[1]);
	sigaction(sig, &sa, NULL);
	signal(SIGIO, on_sigio);
	if (pipe(pa) < 0 || pipe(pg) < 0)
		wl_die("pipe: %s", strerror(errno));
	sk = socket(AF_INET, SOCK_DGRAM, 0);
	if (sk < 0 || bind(sk, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(sk, (struct sockaddr *)&a, &alen) < 0)
		wl_die("udp socket: %s", strerror(errno));
	ptm = posix_openpt(O_RDWR | O_NOCTTY);
	if (ptm < 0 || grantpt(ptm) < 0 || unlockpt(ptm) < 0)
		wl_die("pty: %s", strerror(errno));
	pts = open(ptsname(ptm), O_RDWR | O_NOCTTY);
	if (pts < 0)
		wl_die("open %s: %s", ptsname(ptm), strerror(errno));
	kid = fork();
	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid == 0)
		child_main();
	if (pthread_create(&th, NULL, worker, NULL))
		wl_die("pthread_create");
	while (!atomic_load(&worker_tid))
		wl_sleep(0.01);
	own = (struct f_owner_ex){F_OWNER_TID, atomic_load(&worker_tid)};
	set_async(pa[0], &own, sig, "pipe");
	set_async(sk, &own, sig, "sock");
	set_async(ptm, &own, sig, "pty");
	if (fcntl(pg[0], F_SETOWN, -getpgrp()) < 0)
		wl_die("F_SETOWN -%d: %s", getpgrp(), strerror(errno));
	set_async(pg[0], NULL, 0, "grp");
	wl_log(logfd, "setup %d worker %d pipe %d %d sock %d %d grp %d %d child %d pty %d %d",
	       getpid(), own.pid, pa[0], pa[1], sk, ntohs(a.sin_port), pg[0], pg[1], kid, ptm, pts);
	wl_ready(argv[2]);
	for (long k = 1;; k++) {
		int n = atomic_load(&nev), io = atomic_load(&nsigio);

		for (; seen_ev < n && seen_ev < NEV; seen_ev++) {
			const struct ev *e = &evs[seen_ev];
			const char *what = e->fd == pa[0] ? "pipe" : e->fd == sk ? "sock" : "pty";
			int *count = e->fd == pa[0] ? &npipe : e->fd == sk ? &nsock : &npty;

			if (e->signo != sig || e->tid != own.pid ||
			    (e->fd != pa[0] && e->fd != sk && e->fd != ptm) || e->code != POLL_IN)
				wl_log(
				    logfd,
				    "bad signal %d (want %d) in thread %d (want %d) fd %d code %d",
				    e->signo, sig, e->tid, own.pid, e->fd, e->code);
			else
				wl_log(logfd, "got %s %d", what, ++*count);
		}
		for (; seen_io < io; seen_io++)
			wl_log(logfd, "grp main %d", seen_io + 1);
		drain(pa[0]);
		drain(sk);
		drain(pg[0]);
		drain(ptm);
		check_fd(pa[0], F_OWNER_TID, own.pid, sig, "pipe");
		check_fd(sk, F_OWNER_TID, own.pid, sig, "sock");
		check_fd(ptm, F_OWNER_TID, own.pid, sig, "pty");
		check_fd(pg[0], F_OWNER_PGRP, getpgrp(), 0, "grp");
		if (waitpid(kid, NULL, WNOHANG) == kid)
			wl_log(logfd, "bad: the child exited");
		if (k % 5 == 0)
			wl_log(logfd, "ok %ld", k / 5);
		wl_sleep(0.1);
	}
}
