/* SPDX-License-Identifier: MIT */
/*
 * delmap DIR: deleted files that are still mapped.
 *   DIR/shared.bin  mapped MAP_SHARED by the parent and its child, then
 *                   unlinked; they ping-pong a pair of counters in it
 *   DIR/priv.bin    mapped MAP_PRIVATE, its first page written (a private
 *                   copy), then unlinked; the second page is the file's
 *   DIR/both.bin    open as fd 10 (position 100) AND mapped MAP_SHARED, then
 *                   unlinked; each iteration writes a number through the fd
 *                   and reads it back through the mapping (one file)
 * Every 50 ms the parent checks all of it and logs "iter N ok C" (C: the
 * child's counter) to DIR/log.txt, or "FAIL ..." and exits. The files are
 * created in DIR/files, which is empty once they are unlinked.
 */
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "wl.h"

#define PG 4096
#define BOTH_FD 10
#define BOTH_POS 100

struct pp {
	volatile uint64_t p, c;
};

static char *make(const char *dir, const char *name, int prot_flags, int keep_fd)
{
	char path[4000], page[PG];
	int fd;
	char *m;

	snprintf(path, sizeof(path), "%s/files/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		wl_die("%s: %s", path, strerror(errno));
	for (int i = 0; i < 4; i++) {
		memset(page, 'a' + i, sizeof(page));
		if (wl_write_all(fd, page, sizeof(page)) < 0)
			wl_die("write %s: %s", path, strerror(errno));
	}
	m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, prot_flags, fd, 0);
	if (m == MAP_FAILED)
		wl_die("mmap %s: %s", path, strerror(errno));
	if (unlink(path) < 0)
		wl_die("unlink %s: %s", path, strerror(errno));
	if (keep_fd >= 0) {
		if (dup2(fd, keep_fd) < 0 || lseek(keep_fd, BOTH_POS, SEEK_SET) != BOTH_POS)
			wl_die("dup2/lseek: %s", strerror(errno));
	}
	close(fd);
	return m;
}

int main(int argc, char **argv)
{
	char path[4000], fail[256] = "";
	struct pp *shared;
	char *priv, *both;
	int log;
	pid_t child;

	if (argc < 2)
		wl_die("usage: delmap DIR");
	wl_close_inherited();
	snprintf(path, sizeof(path), "%s/log.txt", argv[1]);
	log = wl_open_log(path);
	shared = (struct pp *)make(argv[1], "shared.bin", MAP_SHARED, -1);
	priv = make(argv[1], "priv.bin", MAP_PRIVATE, -1);
	memset(priv, 'P', PG);
	both = make(argv[1], "both.bin", MAP_SHARED, BOTH_FD);
	shared->p = shared->c = 0;
	child = fork();
	if (child < 0)
		wl_die("fork: %s", strerror(errno));
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;) {
			if (shared->c < shared->p)
				shared->c++;
			wl_sleep(0.02);
		}
	}
	for (uint64_t iter = 0;; iter++) {
		char num[32];
		int n;

		if (shared->p == shared->c)
			shared->p++;
		if (priv[0] != 'P' || priv[PG - 1] != 'P' || priv[PG] != 'b' || priv[3 * PG] != 'd')
			snprintf(fail, sizeof(fail), "priv.bin mapping: %c %c %c", priv[0],
				 priv[PG], priv[3 * PG]);
		n = snprintf(num, sizeof(num), "n%08lu", (unsigned long)iter);
		if (pwrite(BOTH_FD, num, (size_t)n, 2 * PG) != n || memcmp(both + 2 * PG, num, n))
			snprintf(fail, sizeof(fail),
				 "both.bin: fd write of %s not seen in the mapping", num);
		if (lseek(BOTH_FD, 0, SEEK_CUR) != BOTH_POS)
			snprintf(fail, sizeof(fail), "both.bin: fd position %lld",
				 (long long)lseek(BOTH_FD, 0, SEEK_CUR));
		if (both[0] != 'a' || both[3 * PG] != 'd' || ((char *)shared)[PG] != 'b')
			snprintf(fail, sizeof(fail), "content of both.bin or shared.bin changed");
		if (fail[0]) {
			wl_log(log, "FAIL %lu %s", (unsigned long)iter, fail);
			kill(child, SIGKILL);
			return 1;
		}
		wl_log(log, "iter %lu ok %lu", (unsigned long)iter, (unsigned long)shared->c);
		if (iter == 0) {
			snprintf(path, sizeof(path), "%s/ready", argv[1]);
			wl_ready(path);
		}
		wl_sleep(0.05);
	}
}
