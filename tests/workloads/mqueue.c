/* SPDX-License-Identifier: MIT */
/*
 * mqueue LOG READY NAME [notify]   the program
 * mqueue send NAME TEXT            a client: one message into NAME
 * mqueue unlink NAME               mq_unlink
 *
 * The program makes the POSIX message queue NAME (at most 8 messages of
 * 128 bytes), opens it O_RDWR | O_NONBLOCK and sends "one" (priority 1)
 * and "two" (priority 5) into it; with "notify" it also registers for a
 * notification (mq_notify, SIGUSR2). Every 100 ms it checks its queue's
 * attributes (logs "bad: ..." when they differ from the first), and on
 * each SIGUSR1 takes one message and logs "got TEXT PRIO" ("got none" when
 * the queue is empty); "ok N" every 500 ms, first "start PID".
 */
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>

#include "wl.h"

static volatile sig_atomic_t take;

static void on_usr1(int sig)
{
	(void)sig;
	take = 1;
}

static int client(int argc, char **argv)
{
	mqd_t q;

	if (!strcmp(argv[1], "unlink") && argc == 3)
		return mq_unlink(argv[2]) < 0 ? (perror("mq_unlink"), 1) : 0;
	if (strcmp(argv[1], "send") || argc != 4)
		wl_die("usage: mqueue send NAME TEXT | mqueue unlink NAME");
	q = mq_open(argv[2], O_WRONLY | O_NONBLOCK);
	if (q < 0 || mq_send(q, argv[3], strlen(argv[3]), 0) < 0) {
		perror(argv[2]);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct mq_attr want = {.mq_maxmsg = 8, .mq_msgsize = 128}, first, now;
	struct sigaction sa = {.sa_handler = on_usr1};
	int log_fd;
	mqd_t q;

	if (argc >= 3 && (!strcmp(argv[1], "send") || !strcmp(argv[1], "unlink")))
		return client(argc, argv);
	if (argc != 4 && !(argc == 5 && !strcmp(argv[4], "notify")))
		wl_die("usage: mqueue LOG READY NAME [notify]");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	q = mq_open(argv[3], O_RDWR | O_NONBLOCK | O_CREAT | O_EXCL, 0600, &want);
	if (q < 0)
		wl_die("mq_open %s: %s", argv[3], strerror(errno));
	if (mq_send(q, "one", 3, 1) < 0 || mq_send(q, "two", 3, 5) < 0)
		wl_die("mq_send: %s", strerror(errno));
	if (argc == 5) {
		struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2};

		signal(SIGUSR2, SIG_IGN);
		if (mq_notify(q, &ev) < 0)
			wl_die("mq_notify: %s", strerror(errno));
	}
	sigaction(SIGUSR1, &sa, NULL);
	mq_getattr(q, &first);
	wl_log(log_fd, "start %d", (int)getpid());
	wl_ready(argv[2]);
	for (unsigned long k = 0;; k++) {
		struct timespec ts = {0, 100 * 1000 * 1000};

		if (mq_getattr(q, &now) < 0)
			wl_log(log_fd, "bad: mq_getattr: %s", strerror(errno));
		else if (now.mq_flags != first.mq_flags || now.mq_maxmsg != first.mq_maxmsg ||
			 now.mq_msgsize != first.mq_msgsize)
			wl_log(log_fd, "bad: flags %#lx maxmsg %ld msgsize %ld, was %#lx %ld %ld",
			       now.mq_flags, now.mq_maxmsg, now.mq_msgsize, first.mq_flags,
			       first.mq_maxmsg, first.mq_msgsize);
		if (take) {
			char buf[128 + 1];
			unsigned prio = 0;
			ssize_t n;

			take = 0;
			n = mq_receive(q, buf, sizeof(buf) - 1, &prio);
			if (n < 0 && errno == EAGAIN)
				wl_log(log_fd, "got none");
			else if (n < 0)
				wl_log(log_fd, "bad: mq_receive: %s", strerror(errno));
			else
				wl_log(log_fd, "got %.*s %u", (int)n, buf, prio);
		}
		if (k % 5 == 0)
			wl_log(log_fd, "ok %lu", k / 5 + 1);
		nanosleep(&ts, NULL);
	}
	return 0;
}
