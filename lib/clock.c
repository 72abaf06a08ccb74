/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "proc.h"

double ckpt_monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t ckpt_clock_ns(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts) < 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * /proc/PID/timens_offsets: "monotonic SECS NSECS" and "boottime SECS NSECS"
 * (NSECS always in [0, 1e9)). It shows the time namespace of PID's
 * children, which is its own unless it unshared one (the callers check).
 * No such file (a kernel without time namespaces): no offsets.
 */
int ckpt_timens_offsets(pid_t pid, int64_t *mono, int64_t *boot, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	char path[64], *save = NULL;
	size_t len;
	int r;

	*mono = *boot = 0;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/timens_offsets", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/timens_offsets");
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	r = proc_read_file(path, &text, &len, e);
	if (r < 0)
		return r;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[16];
		long long sec;
		long nsec;

		if (sscanf(line, "%15s %lld %ld", name, &sec, &nsec) != 3 || nsec < 0 ||
		    nsec >= 1000000000)
			return ckpt_err(e, -EINVAL, "%s: cannot parse '%s'", path, line);
		if (!strcmp(name, "monotonic") || !strcmp(name, "1"))
			*mono = (int64_t)sec * 1000000000 + nsec;
		else if (!strcmp(name, "boottime") || !strcmp(name, "7"))
			*boot = (int64_t)sec * 1000000000 + nsec;
	}
	return 0;
}
