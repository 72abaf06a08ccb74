/* SPDX-License-Identifier: MIT */
/*
 * tmpfsmap DATA LOG READY: a program meant to be run from a tmpfs (its
 * executable and its text mapped from there) that maps a data file of a
 * tmpfs (/dev/shm) privately and read-only shared, and keeps it open.
 *   DATA  made with NPAGES pages, page i filled with 'a' + i, then opened
 *         read-only as fd 10 and mapped from it twice: MAP_PRIVATE
 *         read-write, pages 1 and 3 written (private copies: page 1 all
 *         'X', page 3 a counter then 'C's), and MAP_SHARED read-only
 * Every 50 ms it checks every byte: the private pages not written still
 * read the file, the written ones their own data (page 3's counter is the
 * iteration number, incremented each time), the shared mapping and pread
 * on fd 10 read the file (never changed by the private writes); it logs
 * "iter N ok" or "FAIL ..." and exits 1.
 * When LOG.exec exists it removes it, forks and execs its own executable
 * (the path /proc/self/exe shows, which must not have changed since the
 * start) as "EXE probe LOG": the child logs "probe ok EXE" and exits 0,
 * the parent logs "exec ok" or "FAIL exec ...".
 */
#include <limits.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "wl.h"

#define PG 4096
#define NPAGES 8
#define DATA_FD 10

static char exe[PATH_MAX];

static char file_byte(int page)
{
	return (char)('a' + page);
}

static int check_private(const char *priv, uint64_t iter, char *fail, size_t len)
{
	for (int p = 0; p < NPAGES; p++) {
		for (int i = 0; i < PG; i++) {
			char want = file_byte(p), got = priv[p * PG + i];

			if (p == 1)
				want = 'X';
			if (p == 3 && i < 8)
				continue;
			if (p == 3)
				want = 'C';
			if (got != want) {
				snprintf(fail, len, "private mapping: page %d byte %d is %#x, not %#x",
					 p, i, (unsigned char)got, (unsigned char)want);
				return -1;
			}
		}
	}
	if (*(const uint64_t *)(priv + 3 * PG) != iter) {
		snprintf(fail, len, "private page 3 counter %llu, iteration %llu",
			 (unsigned long long)*(const uint64_t *)(priv + 3 * PG),
			 (unsigned long long)iter);
		return -1;
	}
	return 0;
}

static int check_file(const char *what, const char *buf, int page, char *fail, size_t len)
{
	for (int i = 0; i < PG; i++)
		if (buf[i] != file_byte(page)) {
			snprintf(fail, len, "%s: page %d byte %d is %#x, not %#x", what, page, i,
				 (unsigned char)buf[i], (unsigned char)file_byte(page));
			return -1;
		}
	return 0;
}

static void run_exec(int log, const char *log_path)
{
	char now[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", now, sizeof(now) - 1);
	int status;
	pid_t child;

	if (n < 0) {
		wl_log(log, "FAIL exec: readlink /proc/self/exe: %s", strerror(errno));
		return;
	}
	now[n] = '\0';
	if (strcmp(now, exe)) {
		wl_log(log, "FAIL exec: /proc/self/exe is %s, was %s", now, exe);
		return;
	}
	child = fork();
	if (child < 0) {
		wl_log(log, "FAIL exec: fork: %s", strerror(errno));
		return;
	}
	if (child == 0) {
		/* the log fd is O_CLOEXEC: the probe appends by its path */
		execl(exe, exe, "probe", log_path, (char *)NULL);
		wl_log(log, "FAIL exec of %s: %s", exe, strerror(errno));
		_exit(3);
	}
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
		wl_log(log, "FAIL exec: the probe ended with status %#x", status);
	else
		wl_log(log, "exec ok");
}

int main(int argc, char **argv)
{
	char path[PATH_MAX + 16], fail[256] = "", page[PG];
	char *priv, *shared;
	ssize_t n;
	int log, fd;

	if (argc == 3 && !strcmp(argv[1], "probe")) {
		/* the exec'ed copy: says it ran, and from where */
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n < 0 ? 0 : n] = '\0';
		wl_log(wl_open_log(argv[2]), "probe ok %s", exe);
		return 0;
	}
	if (argc < 4)
		wl_die("usage: tmpfsmap DATA LOG READY");
	wl_close_inherited();
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		wl_die("readlink /proc/self/exe: %s", strerror(errno));
	exe[n] = '\0';
	log = wl_open_log(argv[2]);
	fd = open(argv[1], O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		wl_die("%s: %s", argv[1], strerror(errno));
	for (int p = 0; p < NPAGES; p++) {
		memset(page, file_byte(p), sizeof(page));
		if (wl_write_all(fd, page, sizeof(page)) < 0)
			wl_die("write %s: %s", argv[1], strerror(errno));
	}
	close(fd);
	/* read-only from now on: no writer of the file is left */
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, DATA_FD) < 0)
		wl_die("reopen %s: %s", argv[1], strerror(errno));
	close(fd);
	priv = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, DATA_FD, 0);
	shared = mmap(NULL, NPAGES * PG, PROT_READ, MAP_SHARED, DATA_FD, 0);
	if (priv == MAP_FAILED || shared == MAP_FAILED)
		wl_die("mmap %s: %s", argv[1], strerror(errno));
	memset(priv + PG, 'X', PG);
	memset(priv + 3 * PG, 'C', PG);
	*(uint64_t *)(priv + 3 * PG) = 0;
	wl_log(log, "exe %s", exe);
	for (uint64_t iter = 0;; iter++) {
		if (check_private(priv, iter, fail, sizeof(fail)) < 0)
			goto out;
		for (int p = 0; p < NPAGES; p++) {
			if (check_file("shared mapping", shared + p * PG, p, fail, sizeof(fail)) < 0)
				goto out;
			if (pread(DATA_FD, page, PG, (off_t)p * PG) != PG) {
				snprintf(fail, sizeof(fail), "pread of fd %d: %s", DATA_FD,
					 strerror(errno));
				goto out;
			}
			if (check_file("pread", page, p, fail, sizeof(fail)) < 0)
				goto out;
		}
		(*(uint64_t *)(priv + 3 * PG))++;
		wl_log(log, "iter %llu ok", (unsigned long long)iter);
		if (iter == 0)
			wl_ready(argv[3]);
		snprintf(path, sizeof(path), "%s.exec", argv[2]);
		if (unlink(path) == 0)
			run_exec(log, argv[2]);
		wl_sleep(0.05);
	}
out:
	wl_log(log, "FAIL %s", fail);
	return 1;
}
