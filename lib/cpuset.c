/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "cpuset: "

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cleanup.h"
#include "cpuset.h"
#include "proc.h"

int cpu_list_parse(const char *s, cpu_set_t *ret)
{
	CPU_ZERO(ret);
	while (*s && *s != '\n') {
		char *end;
		unsigned long a = strtoul(s, &end, 10), b = a;

		if (end == s)
			return -EINVAL;
		if (*end == '-') {
			s = end + 1;
			b = strtoul(s, &end, 10);
			if (end == s || b < a)
				return -EINVAL;
		}
		for (unsigned long c = a; c <= b && c < CPU_SETSIZE; c++)
			CPU_SET(c, ret);
		if (*end != ',' && *end != '\n' && *end)
			return -EINVAL;
		s = *end == ',' ? end + 1 : end;
	}
	return 0;
}

void cpu_list_format(const cpu_set_t *set, char *buf, size_t len)
{
	size_t off = 0;

	if (!len)
		return;
	buf[0] = '\0';
	for (int c = 0; c < CPU_SETSIZE; c++) {
		int end = c;
		int n;

		if (!CPU_ISSET(c, set))
			continue;
		while (end + 1 < CPU_SETSIZE && CPU_ISSET(end + 1, set))
			end++;
		if (end == c)
			n = snprintf(buf + off, len - off, "%s%d", off ? "," : "", c);
		else
			n = snprintf(buf + off, len - off, "%s%d-%d", off ? "," : "", c, end);
		if (n < 0 || (size_t)n >= len - off)
			return;
		off += (size_t)n;
		c = end;
	}
	if (!off)
		snprintf(buf, len, "none");
}

int cpus_online(cpu_set_t *ret, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	int r;

	r = proc_read_file("/sys/devices/system/cpu/online", &text, NULL, e);
	if (r < 0)
		return r;
	if (cpu_list_parse(text, ret) < 0)
		return ckpt_err(e, -EIO, "/sys/devices/system/cpu/online: unexpected '%s'", text);
	return 0;
}
