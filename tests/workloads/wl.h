/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the e2e workloads (header only: each workload is
 * one self-contained executable). Workloads log with plain write(2) on an
 * O_APPEND fd so that what is in the file at dump time is exactly what the
 * program has done (no stdio buffer in memory that would be written twice
 * or lost), and announce readiness by atomically creating a file that
 * holds their pid.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline void wl_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* Close everything but stdio: a workload must hold no inherited pipe. */
static inline void wl_close_inherited(void)
{
	syscall(SYS_close_range, 3, ~0U, 0);
}

static inline int wl_open_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0)
		wl_die("open %s: %s", path, strerror(errno));
	return fd;
}

/* Write all of buf, retrying on EINTR and short writes. */
static inline int wl_write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

/* Async-signal-safe as long as the caller's format is (no %f / locale). */
__attribute__((format(printf, 2, 3))) static inline void wl_log(int fd, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	wl_write_all(fd, buf, n);
}

/* Create path holding "<pid>\n" atomically (tmp + rename). */
static inline void wl_ready(const char *path)
{
	char tmp[4200], buf[32];
	int fd, n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		wl_die("open %s: %s", tmp, strerror(errno));
	n = snprintf(buf, sizeof(buf), "%d\n", getpid());
	if (wl_write_all(fd, buf, n) < 0)
		wl_die("write %s: %s", tmp, strerror(errno));
	close(fd);
	if (rename(tmp, path) < 0)
		wl_die("rename %s: %s", path, strerror(errno));
}

static inline double wl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Sleep for secs with nanosleep, retrying on EINTR. A restore may make an
 * interrupted nanosleep return EINTR without filling rem (the kernel's
 * restart block is gone), so the remaining time comes from the clock.
 * Returns how many times nanosleep was interrupted.
 */
static inline int wl_sleep(double secs)
{
	double deadline = wl_now() + secs;
	int interrupted = 0;

	for (;;) {
		double left = deadline - wl_now();
		struct timespec ts;

		if (left <= 0)
			return interrupted;
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - ts.tv_sec) * 1e9);
		if (nanosleep(&ts, NULL) == 0)
			return interrupted;
		if (errno != EINTR)
			wl_die("nanosleep: %s", strerror(errno));
		interrupted++;
	}
}

static inline int wl_file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}
