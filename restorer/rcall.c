/* SPDX-License-Identifier: MIT */
/*
 * rcall: one remote syscall in a task (lib/ptrace.h rsys_call) whose failure,
 * of the call itself or a -errno result, becomes an error naming the call.
 */
#include <stdarg.h>
#include <stdio.h>

#include "restore.h"

int rcall(struct rtask *t, struct ckpt_error *e, long nr, const uint64_t a[6], long *ret,
	  const char *fmt, ...)
{
	char what[256];
	va_list ap;
	long res = 0;
	int r;

	r = rsys_call(&t->rsys, nr, a[0], a[1], a[2], a[3], a[4], a[5], &res, e);
	if (r >= 0 && !(res < 0 && res > -4096)) {
		if (ret)
			*ret = res;
		return 0;
	}
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: %s", t->pid, what);
	return ckpt_err_errno(e, (int)res, "pid %d: %s", t->pid, what);
}
