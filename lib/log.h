/* SPDX-License-Identifier: MIT */
/*
 * Logging. Library code logs at debug only; the daemon, the restorer and
 * ckptctl decide what to print. Each file defines LOG_PREFIX before
 * including this header, e.g. #define LOG_PREFIX "image: ".
 */
#pragma once

#include <stdarg.h>

enum ckpt_log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };

#ifndef LOG_PREFIX
#define LOG_PREFIX ""
#endif

void ckpt_log_set_level(int level);
int ckpt_log_get_level(void);
/* Also copy every message (any level up to the set one) to this fd, or -1. */
void ckpt_log_set_fd(int fd);
void ckpt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pr_err(fmt, ...) ckpt_log(LOG_LVL_ERROR, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...) ckpt_log(LOG_LVL_WARN, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...) ckpt_log(LOG_LVL_INFO, LOG_PREFIX fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...) ckpt_log(LOG_LVL_DEBUG, LOG_PREFIX fmt, ##__VA_ARGS__)
