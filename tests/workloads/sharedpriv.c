/* SPDX-License-Identifier: MIT */
/*
 * sharedpriv FILE LOG READY
 *
 * Maps FILE (4 pages, made here) twice: MAP_SHARED and writable at a lower
 * address, MAP_PRIVATE at a higher one. Writes page 0 of the private
 * mapping (its own copy) and, every iteration, a counter into page 1 of the
 * shared one; checks every 100 ms that the private mapping's page 0 is its
 * own copy, that its untouched page 1 shows what the shared mapping wrote
 * (the same file), and that the file says the same. Logs "ok <n>" or
 * "FAIL <n> <what>"; READY holds the pid after the first.
 */
#include <sys/mman.h>

#include "wl.h"

#define PG 4096UL

int main(int argc, char **argv)
{
	char *sh, *pv, buf[64];
	unsigned long it;
	int fd, log_fd;

	if (argc != 4)
		wl_die("usage: sharedpriv FILE LOG READY");
	wl_close_inherited();
	log_fd = wl_open_log(argv[2]);
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, 4 * PG) < 0)
		wl_die("%s: %s", argv[1], strerror(errno));
	sh = mmap((void *)0x200000000UL, 4 * PG, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
	pv = mmap((void *)0x300000000UL, 4 * PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);
	if (sh == MAP_FAILED || pv == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	close(fd);
	memset(sh, 'f', 4 * PG);
	memset(pv, 'p', PG); /* page 0: the private copy */
	for (it = 1;; it++) {
		int n = snprintf(buf, sizeof(buf), "counter %lu", it);
		char fbuf[64];
		int rfd;

		memcpy(sh + PG, buf, (size_t)n + 1);
		for (unsigned long i = 0; i < PG; i++)
			if (pv[i] != 'p') {
				wl_log(log_fd, "FAIL %lu private page 0 byte %lu is %d", it, i, pv[i]);
				return 1;
			}
		if (strcmp(pv + PG, buf) || sh[0] != 'f' || sh[2 * PG] != 'f') {
			wl_log(log_fd, "FAIL %lu private page 1 '%.20s', want '%s'", it, pv + PG, buf);
			return 1;
		}
		rfd = open(argv[1], O_RDONLY | O_CLOEXEC);
		if (rfd < 0 || pread(rfd, fbuf, (size_t)n + 1, PG) != n + 1 || strcmp(fbuf, buf)) {
			wl_log(log_fd, "FAIL %lu the file does not say '%s'", it, buf);
			return 1;
		}
		close(rfd);
		wl_log(log_fd, "ok %lu", it);
		if (it == 1)
			wl_ready(argv[3]);
		usleep(100000);
	}
}
