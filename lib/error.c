/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include <errno.h>

#include "error.h"

int ckpt_err(struct ckpt_error *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (code >= 0)
		code = -EIO;
	if (!e)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

int ckpt_err_errno(struct ckpt_error *e, int code, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (code >= 0)
		code = -EIO;
	if (!e)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(-code));
	return code;
}

int ckpt_err_wrap(struct ckpt_error *e, const char *fmt, ...)
{
	char ctx[CKPT_ERROR_MAX], old[CKPT_ERROR_MAX];
	va_list ap;

	if (!e)
		return -EIO;
	if (e->code >= 0)
		e->code = -EIO;
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	/* truncation of an over-long message is fine */
	size_t n = strnlen(ctx, sizeof(e->msg) - 3);
	memcpy(e->msg, ctx, n);
	memcpy(e->msg + n, ": ", 2);
	n += 2;
	size_t rest = strnlen(old, sizeof(e->msg) - n - 1);
	memcpy(e->msg + n, old, rest);
	e->msg[n + rest] = '\0';
	return e->code;
}

void ckpt_err_clear(struct ckpt_error *e)
{
	if (!e)
		return;
	e->code = 0;
	e->msg[0] = '\0';
}
