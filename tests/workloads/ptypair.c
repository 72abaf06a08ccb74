/* SPDX-License-Identifier: MIT */
/*
 * ptypair LOG READY
 *
 * Opens a pty pair itself (posix_openpt, grantpt, unlockpt), puts the slave
 * in raw mode with a 40x132 window, and forks a child that starts a session
 * with the slave as its controlling terminal (opened by name, so the child
 * holds its own description of it) and answers each "ping N" line it reads
 * on the slave with
 *   "pong N rows=R cols=C raw=0|1 ctty=0|1 fg=0|1"
 * (raw: ICANON, ECHO and OPOST off; ctty: the terminal's session is ours;
 * fg: our group is its foreground group). The parent keeps the master and
 * its own slave description, sends a ping every 50 ms, and logs each answer
 * as "got pong N ..." in LOG (a line the dump cut in half, or a ping lost
 * in the pty at dump time, shows as "timeout N": data queued in a pty is
 * not saved). READY holds the parent's pid once the first answer came.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "wl.h"

static void child(const char *name)
{
	char buf[256], out[200];
	size_t len = 0;
	int fd;

	if (setsid() < 0)
		wl_die("setsid: %s", strerror(errno));
	/* a session leader without a terminal: this open makes it ours */
	fd = open(name, O_RDWR);
	if (fd < 0)
		wl_die("open %s: %s", name, strerror(errno));
	dup2(fd, 0);
	dup2(fd, 1);
	if (fd > 1)
		close(fd);
	for (;;) {
		ssize_t r = read(0, buf + len, sizeof(buf) - 1 - len);
		char *nl;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(3);
		len += r;
		buf[len] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			struct termios t;
			struct winsize ws = {0};
			unsigned long n = 0;
			int raw = 0;

			*nl = '\0';
			if (tcgetattr(0, &t) == 0)
				raw = !(t.c_lflag & (ICANON | ECHO)) && !(t.c_oflag & OPOST);
			ioctl(0, TIOCGWINSZ, &ws);
			if (sscanf(buf, "ping %lu", &n) == 1) {
				int m =
				    snprintf(out, sizeof(out),
					     "pong %lu rows=%u cols=%u raw=%d ctty=%d fg=%d\n", n,
					     ws.ws_row, ws.ws_col, raw, tcgetsid(0) == getpid(),
					     tcgetpgrp(0) == getpgrp());
				wl_write_all(1, out, m);
			}
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len + 1);
		}
		if (len >= sizeof(buf) - 1)
			len = 0;
	}
}

int main(int argc, char **argv)
{
	struct winsize ws = {.ws_row = 40, .ws_col = 132};
	char buf[512], name[64];
	unsigned long n = 0;
	size_t len = 0;
	struct termios t;
	int m, s, log_fd, ready = 0;
	pid_t pid;

	if (argc != 3)
		wl_die("usage: ptypair LOG READY");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)))
		wl_die("pty: %s", strerror(errno));
	s = open(name, O_RDWR | O_NOCTTY);
	if (s < 0 || tcgetattr(s, &t) < 0)
		wl_die("open %s: %s", name, strerror(errno));
	cfmakeraw(&t);
	if (tcsetattr(s, TCSANOW, &t) < 0 || ioctl(s, TIOCSWINSZ, &ws) < 0)
		wl_die("raw mode / window size on %s: %s", name, strerror(errno));
	pid = fork();
	if (pid < 0)
		wl_die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(m);
		close(s);
		close(log_fd);
		child(name);
	}
	wl_log(log_fd, "pty %s child %d", name, (int)pid);
	for (;;) {
		struct pollfd p = {m, POLLIN, 0};
		double deadline;
		int got = 0;

		len = 0;
		snprintf(buf, sizeof(buf), "ping %lu\n", ++n);
		wl_write_all(m, buf, strlen(buf));
		deadline = wl_now() + 2;
		while (!got && wl_now() < deadline) {
			ssize_t r;
			char *nl;

			if (poll(&p, 1, 100) <= 0)
				continue;
			r = read(m, buf + len, sizeof(buf) - 1 - len);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				wl_die("read of the master: %s", r ? strerror(errno) : "EOF");
			len += r;
			buf[len] = '\0';
			nl = strchr(buf, '\n');
			if (nl) {
				*nl = '\0';
				wl_log(log_fd, "got %s", buf);
				got = 1;
			}
			if (len >= sizeof(buf) - 1)
				len = 0;
		}
		if (!got)
			wl_log(log_fd, "timeout %lu", n);
		if (got && !ready++)
			wl_ready(argv[2]);
		wl_sleep(0.05);
	}
}
