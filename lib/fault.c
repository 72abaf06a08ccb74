/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"

bool ckpt_fault(const char *step)
{
	const char *spec = getenv("CKPT_FAULT");
	size_t len = strlen(step);

	while (spec && *spec) {
		const char *end = strchrnul(spec, ',');

		if ((size_t)(end - spec) == len && !strncmp(spec, step, len))
			return true;
		spec = *end ? end + 1 : end;
	}
	return false;
}

/* CKPT_PAUSE=step:path[,step:path...]: the path of step, or false. */
static bool pause_path(const char *step, char *path, size_t size)
{
	const char *spec = getenv("CKPT_PAUSE");
	size_t len = strlen(step);

	while (spec && *spec) {
		const char *end = strchrnul(spec, ',');

		if (!strncmp(spec, step, len) && spec[len] == ':' && spec + len + 1 < end &&
		    (size_t)(end - spec - len - 1) < size) {
			memcpy(path, spec + len + 1, (size_t)(end - spec - len - 1));
			path[end - spec - len - 1] = '\0';
			return true;
		}
		spec = *end ? end + 1 : end;
	}
	return false;
}

static void fault_pause(const char *step)
{
	char path[PATH_MAX], flag[PATH_MAX + 8];
	int fd;

	if (!pause_path(step, path, sizeof(path)))
		return;
	if (snprintf(flag, sizeof(flag), "%s.paused", path) >= (int)sizeof(flag))
		return;
	fd = open(flag, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 12000 && access(path, F_OK) < 0; i++)
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
}

int ckpt_fault_inject(const char *step, struct ckpt_error *e)
{
	fault_pause(step);
	if (!ckpt_fault(step))
		return 0;
	return ckpt_err(e, -EIO, "injected fault at step '%s' (CKPT_FAULT)", step);
}
