/* SPDX-License-Identifier: MIT */
/*
 * manyfds N FILE LOG READY
 *
 * Holds N file descriptors, each its own open file description: FILE
 * opened N-8 times read-only at offsets 0, 1, 2, ... (fd k at offset
 * k % 4096, so every description differs), plus 4 pipes (a byte round
 * trip each). Uses the highest numbers the soft RLIMIT_NOFILE allows for
 * the first of them (the last fd is limit - 1), so a restorer that needs
 * fd numbers of its own above the tree's finds none. Every 100 ms checks
 * every fd (same inode, its own offset, the pipes' round trip) and logs
 * "ok <n>" or "FAIL <n> <what>"; READY holds the pid after the first.
 */
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "wl.h"

int main(int argc, char **argv)
{
	struct rlimit rl;
	struct stat st0;
	int n, log_fd, pipes[4][2];
	int top;

	if (argc != 5)
		wl_die("usage: manyfds N FILE LOG READY");
	wl_close_inherited();
	n = atoi(argv[1]);
	log_fd = wl_open_log(argv[3]);
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    (rlim_t)n + 16 > rl.rlim_cur)
		wl_die("manyfds: RLIMIT_NOFILE %llu is too low for %d fds",
		       (unsigned long long)rl.rlim_cur, n);
	top = (int)rl.rlim_cur - 1;
	for (int i = 0; i < 4; i++)
		if (pipe(pipes[i]) < 0)
			wl_die("pipe: %s", strerror(errno));
	/* the files from the top down: fd top, top-1, ..., top-(n-9) */
	for (int k = 0; k < n - 8; k++) {
		int fd = open(argv[2], O_RDONLY), want = top - k;

		if (fd < 0)
			wl_die("open %s (fd %d of %d): %s", argv[2], k, n, strerror(errno));
		if (fd != want && (dup2(fd, want) < 0 || close(fd) < 0))
			wl_die("dup2 to %d: %s", want, strerror(errno));
		if (lseek(want, k % 4096, SEEK_SET) < 0)
			wl_die("lseek: %s", strerror(errno));
	}
	if (fstat(top, &st0) < 0)
		wl_die("fstat: %s", strerror(errno));
	for (unsigned long it = 1;; it++) {
		for (int k = 0; k < n - 8; k++) {
			struct stat st;
			int fd = top - k;
			off_t off = lseek(fd, 0, SEEK_CUR);

			if (fstat(fd, &st) < 0 || st.st_ino != st0.st_ino || st.st_dev != st0.st_dev) {
				wl_log(log_fd, "FAIL %lu fd %d is not %s", it, fd, argv[2]);
				return 1;
			}
			if (off != k % 4096) {
				wl_log(log_fd, "FAIL %lu fd %d at offset %lld, not %d", it, fd,
				       (long long)off, k % 4096);
				return 1;
			}
		}
		for (int i = 0; i < 4; i++) {
			char c = (char)it, d = 0;

			if (write(pipes[i][1], &c, 1) != 1 || read(pipes[i][0], &d, 1) != 1 || c != d) {
				wl_log(log_fd, "FAIL %lu pipe %d round trip", it, i);
				return 1;
			}
		}
		wl_log(log_fd, "ok %lu", it);
		if (it == 1)
			wl_ready(argv[4]);
		usleep(100000);
	}
}
