/* SPDX-License-Identifier: MIT */
/*
 * ttyecho READY
 *
 * A terminal job: run on a terminal (stdin, stdout), it turns the
 * terminal's ECHO off (canonical mode stays on), then echoes each line it
 * reads with a counter and the state it sees:
 *   "state pid=P pgrp=G fg=F sid=S echo=E icanon=I"   once at start
 *   "echo N: TEXT | pid=P pgrp=G fg=F sid=S echo=E icanon=I"   per line
 * fg is the terminal's foreground group (tcgetpgrp), so a job that is the
 * foreground job shows fg == pgrp. At end of file it prints "eof" through
 * an fd of /dev/tty it opened at start (its controlling terminal) and
 * exits 0. READY is created (holding the pid) once the terminal is set up.
 */
#include <errno.h>
#include <termios.h>

#include "wl.h"

static void state(char *buf, size_t len)
{
	struct termios t;
	int echo = -1, icanon = -1;

	if (tcgetattr(STDIN_FILENO, &t) == 0) {
		echo = !!(t.c_lflag & ECHO);
		icanon = !!(t.c_lflag & ICANON);
	}
	snprintf(buf, len, "pid=%d pgrp=%d fg=%d sid=%d echo=%d icanon=%d", (int)getpid(),
		 (int)getpgrp(), (int)tcgetpgrp(STDIN_FILENO), (int)getsid(0), echo, icanon);
}

int main(int argc, char **argv)
{
	char line[512], st[160];
	unsigned long n = 0;
	struct termios t;
	int ctty;

	if (argc != 2)
		wl_die("usage: ttyecho READY");
	wl_close_inherited();
	if (!isatty(STDIN_FILENO))
		wl_die("ttyecho: stdin is not a terminal");
	ctty = open("/dev/tty", O_WRONLY | O_CLOEXEC);
	if (ctty < 0)
		wl_die("ttyecho: open /dev/tty: %s", strerror(errno));
	if (tcgetattr(STDIN_FILENO, &t) < 0)
		wl_die("tcgetattr: %s", strerror(errno));
	t.c_lflag &= ~(tcflag_t)ECHO;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0)
		wl_die("tcsetattr: %s", strerror(errno));
	state(st, sizeof(st));
	wl_log(STDOUT_FILENO, "state %s", st);
	wl_ready(argv[1]);
	for (;;) {
		ssize_t r = read(STDIN_FILENO, line, sizeof(line) - 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			wl_die("ttyecho: read: %s", strerror(errno));
		if (r == 0) {
			wl_log(ctty, "eof");
			return 0;
		}
		line[r] = '\0';
		line[strcspn(line, "\r\n")] = '\0';
		state(st, sizeof(st));
		wl_log(STDOUT_FILENO, "echo %lu: %s | %s", ++n, line, st);
	}
}
