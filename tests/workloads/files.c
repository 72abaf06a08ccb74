/* SPDX-License-Identifier: MIT */
/*
 * files DIR
 *
 * Holds many kinds of file descriptors at fixed numbers and checks every
 * 50 ms that each still behaves as before (position, flags, target):
 *   fd 1   stdout, redirected by the caller to a file: "s <n>" lines
 *   fd 10  DIR/input.txt O_RDONLY, read one 12-byte line per iteration
 *   fd 11  DIR/out.txt O_WRONLY|O_TRUNC, "w <n>" lines written alternately
 *   fd 100 through fd 11 and its dup fd 100 (one shared file description)
 *   fd 12  DIR/append.txt O_WRONLY|O_APPEND, "a <n>" lines (the test appends
 *          lines of its own while the program is dumped)
 *   fd 13  DIR/input.txt O_RDONLY|O_CLOEXEC, position parked at 100
 *   fd 14  DIR/input.txt O_RDONLY (no FD_CLOEXEC), position parked at 7
 *   fd 15  DIR (O_DIRECTORY)
 *   fd 16  /dev/null O_RDWR, fd 17 /dev/zero, fd 18 /dev/urandom
 *   fd 19  /proc/self/stat (the link says /proc/PID/stat), position parked at
 *          20: still on procfs, about this process (its pid first)
 *   fd 20  /proc/meminfo, position parked at 10 ("MemTotal:" first)
 * Logs "iter <n> ok" or "FAIL <n> <what>" to DIR/log.txt and creates
 * DIR/ready (holding its pid) after the first iteration.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#include "wl.h"

#define LINE_LEN 12 /* "line 000000\n" */
#define INPUT_LINES 100000
#define OUT_LINE_LEN 9 /* "w 000000\n" */

struct files {
	const char *dir;
	int log;
	dev_t dir_dev;
	ino_t dir_ino;
	unsigned long iter;
	char failure[256];
};

static void fail(struct files *f, const char *fmt, ...)
{
	va_list ap;

	if (f->failure[0])
		return; /* keep the first */
	va_start(ap, fmt);
	vsnprintf(f->failure, sizeof(f->failure), fmt, ap);
	va_end(ap);
}

static void place(int fd, int target)
{
	if (fd < 0)
		wl_die("open for fd %d: %s", target, strerror(errno));
	if (fd != target) {
		if (dup2(fd, target) < 0)
			wl_die("dup2 %d: %s", target, strerror(errno));
		close(fd);
	}
}

static int open_in(struct files *f, const char *name, int flags)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	return open(path, flags, 0644);
}

static void make_input(struct files *f)
{
	int fd = open_in(f, "input.txt", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
	static char buf[INPUT_LINES * LINE_LEN + 1];
	size_t len = 0;

	if (fd < 0)
		wl_die("create input.txt: %s", strerror(errno));
	for (int i = 0; i < INPUT_LINES; i++)
		len += snprintf(buf + len, sizeof(buf) - len, "line %06d\n", i);
	if (wl_write_all(fd, buf, len) < 0)
		wl_die("write input.txt: %s", strerror(errno));
	close(fd);
}

static void setup(struct files *f)
{
	struct stat st;

	make_input(f);
	place(open_in(f, "input.txt", O_RDONLY), 10);
	place(open_in(f, "out.txt", O_WRONLY | O_CREAT | O_TRUNC), 11);
	if (dup2(11, 100) < 0)
		wl_die("dup2 100: %s", strerror(errno));
	place(open_in(f, "append.txt", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND), 12);
	place(open_in(f, "input.txt", O_RDONLY | O_CLOEXEC), 13);
	/* dup2 clears FD_CLOEXEC: set it again on the final number. */
	fcntl(13, F_SETFD, FD_CLOEXEC);
	lseek(13, 100, SEEK_SET);
	place(open_in(f, "input.txt", O_RDONLY), 14);
	lseek(14, 7, SEEK_SET);
	place(open(f->dir, O_RDONLY | O_DIRECTORY), 15);
	place(open("/dev/null", O_RDWR), 16);
	place(open("/dev/zero", O_RDONLY), 17);
	place(open("/dev/urandom", O_RDONLY), 18);
	place(open("/proc/self/stat", O_RDONLY), 19);
	lseek(19, 20, SEEK_SET);
	place(open("/proc/meminfo", O_RDONLY), 20);
	lseek(20, 10, SEEK_SET);
	if (fstat(15, &st) < 0)
		wl_die("fstat dir: %s", strerror(errno));
	f->dir_dev = st.st_dev;
	f->dir_ino = st.st_ino;
}

static void check_flags(struct files *f, int fd, int want_acc, bool append, int want_fd_flags)
{
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);

	if (fl < 0 || fdfl < 0) {
		fail(f, "fd %d: fcntl: %s", fd, strerror(errno));
		return;
	}
	if ((fl & O_ACCMODE) != want_acc)
		fail(f, "fd %d: access mode %#o, want %#o", fd, fl & O_ACCMODE, want_acc);
	if (!!(fl & O_APPEND) != append)
		fail(f, "fd %d: O_APPEND is %s", fd, append ? "missing" : "set");
	if (fdfl != want_fd_flags)
		fail(f, "fd %d: FD flags %#x, want %#x", fd, fdfl, want_fd_flags);
}

static void check_pos(struct files *f, int fd, off_t want)
{
	off_t pos = lseek(fd, 0, SEEK_CUR);

	if (pos != want)
		fail(f, "fd %d: position %lld, want %lld", fd, (long long)pos, (long long)want);
}

static void step_read(struct files *f)
{
	char buf[LINE_LEN + 1] = {0}, want[LINE_LEN + 1];

	snprintf(want, sizeof(want), "line %06lu\n", f->iter % INPUT_LINES);
	if (f->iter % INPUT_LINES == 0)
		lseek(10, 0, SEEK_SET);
	check_pos(f, 10, (off_t)(f->iter % INPUT_LINES) * LINE_LEN);
	if (read(10, buf, LINE_LEN) != LINE_LEN || memcmp(buf, want, LINE_LEN))
		fail(f, "fd 10: read '%.11s', want '%.11s'", buf, want);
}

static void step_write(struct files *f)
{
	char line[32];
	int wfd = f->iter % 2 ? 100 : 11;
	struct stat st;

	/* fds 11 and 100 share one offset: each write must land after the other. */
	check_pos(f, wfd, (off_t)f->iter * OUT_LINE_LEN);
	snprintf(line, sizeof(line), "w %06lu\n", f->iter);
	if (wl_write_all(wfd, line, OUT_LINE_LEN) < 0)
		fail(f, "fd %d: write: %s", wfd, strerror(errno));
	if (fstat(11, &st) < 0 || st.st_size != (off_t)(f->iter + 1) * OUT_LINE_LEN)
		fail(f, "out.txt: size %lld, want %lld", (long long)st.st_size,
		     (long long)(f->iter + 1) * OUT_LINE_LEN);

	snprintf(line, sizeof(line), "a %06lu\n", f->iter);
	if (wl_write_all(12, line, strlen(line)) < 0)
		fail(f, "fd 12: write: %s", strerror(errno));
	if (fstat(12, &st) < 0 || lseek(12, 0, SEEK_CUR) != st.st_size)
		fail(f, "fd 12: append position is not the end of the file");

	snprintf(line, sizeof(line), "s %06lu\n", f->iter);
	if (wl_write_all(1, line, strlen(line)) < 0)
		fail(f, "fd 1: write: %s", strerror(errno));
}

/* fds 19 and 20: procfs files at their positions, read from the start by pread */
static void check_proc(struct files *f)
{
	char buf[64] = {0}, want[32];
	struct statfs sfs;

	check_pos(f, 19, 20);
	check_pos(f, 20, 10);
	snprintf(want, sizeof(want), "%d (files)", (int)getpid());
	if (fstatfs(19, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC ||
	    pread(19, buf, sizeof(buf) - 1, 0) <= 0 || strncmp(buf, want, strlen(want)))
		fail(f, "fd 19: not this process's /proc stat: '%.20s'", buf);
	memset(buf, 0, sizeof(buf));
	if (pread(20, buf, sizeof(buf) - 1, 0) <= 0 || strncmp(buf, "MemTotal:", 9))
		fail(f, "fd 20: not /proc/meminfo: '%.20s'", buf);
}

static void step_misc(struct files *f)
{
	char buf[64];
	struct stat st;

	check_flags(f, 10, O_RDONLY, false, 0);
	check_flags(f, 11, O_WRONLY, false, 0);
	check_flags(f, 12, O_WRONLY, true, 0);
	check_flags(f, 13, O_RDONLY, false, FD_CLOEXEC);
	check_flags(f, 14, O_RDONLY, false, 0);
	check_flags(f, 16, O_RDWR, false, 0);
	check_pos(f, 13, 100);
	check_pos(f, 14, 7);
	if (fstat(15, &st) < 0 || st.st_dev != f->dir_dev || st.st_ino != f->dir_ino)
		fail(f, "fd 15: not the same directory any more");
	if (faccessat(15, "input.txt", R_OK, 0) < 0)
		fail(f, "fd 15: input.txt not found relative to the dir fd");
	if (write(16, "x", 1) != 1 || read(16, buf, sizeof(buf)) != 0)
		fail(f, "fd 16: /dev/null misbehaves");
	memset(buf, 0xff, sizeof(buf));
	if (read(17, buf, sizeof(buf)) != sizeof(buf) || buf[0] || memcmp(buf, buf + 1, 63))
		fail(f, "fd 17: /dev/zero did not read zeros");
	if (read(18, buf, 16) != 16)
		fail(f, "fd 18: /dev/urandom read failed");
	if (fstat(18, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 9))
		fail(f, "fd 18: not /dev/urandom");
	if (fstat(17, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 5))
		fail(f, "fd 17: not /dev/zero");
	check_proc(f);
}

int main(int argc, char **argv)
{
	struct files f = {0};
	char path[4096];

	if (argc != 2)
		wl_die("usage: files DIR");
	wl_close_inherited();
	f.dir = argv[1];
	snprintf(path, sizeof(path), "%s/log.txt", f.dir);
	f.log = wl_open_log(path);
	setup(&f);

	for (;; f.iter++) {
		f.failure[0] = '\0';
		step_read(&f);
		step_write(&f);
		step_misc(&f);
		if (f.failure[0])
			wl_log(f.log, "FAIL %lu %s", f.iter, f.failure);
		else
			wl_log(f.log, "iter %lu ok", f.iter);
		if (f.iter == 0) {
			snprintf(path, sizeof(path), "%s/ready", f.dir);
			wl_ready(path);
		}
		wl_sleep(0.05);
	}
}
