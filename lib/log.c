/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* The only mutable globals besides parsed options: the log level and sink. */
static int log_level = LOG_LVL_WARN;
static int log_fd = -1;

void ckpt_log_set_level(int level)
{
	log_level = level;
}

int ckpt_log_get_level(void)
{
	return log_level;
}

void ckpt_log_set_fd(int fd)
{
	log_fd = fd;
}

void ckpt_log(int level, const char *fmt, ...)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	char line[2048];
	struct timespec ts;
	va_list ap;
	int n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	n = snprintf(line, sizeof(line), "(%5ld.%06ld) %d %s: ", (long)ts.tv_sec, ts.tv_nsec / 1000,
		     (int)getpid(), names[level & 3]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (log_fd >= 0)
		dprintf(log_fd, "%s\n", line);
	else
		fprintf(stderr, "%s\n", line);
}
