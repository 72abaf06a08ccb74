/* SPDX-License-Identifier: MIT */
/*
 * locks DIR LOG READY
 *
 * Holds every kind of file lock a process can hold, on files in DIR:
 *   flock.f   flock(LOCK_EX), the description shared with a forked child
 *   posix.f   POSIX write lock on bytes 0-99, read lock on 200-EOF (parent),
 *             POSIX write lock on bytes 100-149 (child)
 *   ofd.f     OFD write lock on bytes 10-19, OFD read lock on 30-EOF
 *   shared.f  flock(LOCK_SH) through a second description
 *   lease.f   a read lease (O_RDONLY)
 * then logs "locked <child pid>", creates READY and counts "tick N" in
 * memory every 100 ms (the child counts "child N"). A lease break would
 * send SIGIO: logged as "lease break".
 */
#include <signal.h>
#include <sys/file.h>

#include "wl.h"

static int log_fd;

static int open_file(const char *dir, const char *name, int flags)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, flags | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		wl_die("locks: open %s: %s", path, strerror(errno));
	return fd;
}

static void lock_range(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};

	if (fcntl(fd, cmd, &fl) < 0)
		wl_die("locks: fcntl lock %ld+%ld: %s", (long)start, (long)len, strerror(errno));
}

static void on_sigio(int sig)
{
	(void)sig;
	wl_log(log_fd, "lease break");
}

int main(int argc, char **argv)
{
	unsigned long n = 0;
	int flock_fd, posix_fd, ofd_fd, shared_fd, lease_fd;
	pid_t child;

	if (argc != 4)
		wl_die("usage: locks DIR LOG READY");
	wl_close_inherited();
	log_fd = wl_open_log(argv[2]);
	signal(SIGIO, on_sigio);
	flock_fd = open_file(argv[1], "flock.f", O_RDWR);
	posix_fd = open_file(argv[1], "posix.f", O_RDWR);
	ofd_fd = open_file(argv[1], "ofd.f", O_RDWR);
	shared_fd = open_file(argv[1], "shared.f", O_RDONLY);
	if (flock(flock_fd, LOCK_EX | LOCK_NB) < 0 || flock(shared_fd, LOCK_SH | LOCK_NB) < 0)
		wl_die("locks: flock: %s", strerror(errno));
	lock_range(ofd_fd, F_OFD_SETLK, F_WRLCK, 10, 10);
	lock_range(ofd_fd, F_OFD_SETLK, F_RDLCK, 30, 0);
	child = fork();
	if (child < 0)
		wl_die("locks: fork: %s", strerror(errno));
	if (child == 0) {
		lock_range(posix_fd, F_SETLK, F_WRLCK, 100, 50);
		for (;;) {
			wl_log(log_fd, "child %lu", ++n);
			wl_sleep(0.1);
		}
	}
	lock_range(posix_fd, F_SETLK, F_WRLCK, 0, 100);
	lock_range(posix_fd, F_SETLK, F_RDLCK, 200, 0);
	lease_fd = open_file(argv[1], "lease.f", O_RDONLY);
	if (fcntl(lease_fd, F_SETLEASE, F_RDLCK) < 0)
		wl_die("locks: F_SETLEASE: %s", strerror(errno));
	wl_sleep(0.2); /* the child's lock */
	wl_log(log_fd, "locked %d", child);
	wl_ready(argv[3]);
	for (;;) {
		wl_log(log_fd, "tick %lu", ++n);
		wl_sleep(0.1);
	}
}
