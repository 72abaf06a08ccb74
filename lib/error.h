/* SPDX-License-Identifier: MIT */
/*
 * Errors that carry a message a user can act on. Library code returns a
 * negative errno and fills a struct ckpt_error; context is prepended as the
 * error travels up ("pid 812: fd 5: io_uring instance is not supported").
 */
#pragma once

#include <stdarg.h>

#define CKPT_ERROR_MAX 1024

struct ckpt_error {
	int code; /* negative errno, 0 when no error was set */
	char msg[CKPT_ERROR_MAX];
};

/* Set the error (overwriting any earlier one); returns code (negative). */
int ckpt_err(struct ckpt_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like ckpt_err, with ": strerror(-code)" appended. */
int ckpt_err_errno(struct ckpt_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepend context "ctx: " to the message; returns e->code (or -EIO if unset). */
int ckpt_err_wrap(struct ckpt_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ckpt_err_clear(struct ckpt_error *e);
