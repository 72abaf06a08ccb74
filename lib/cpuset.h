/* SPDX-License-Identifier: MIT */
/*
 * CPU sets as the kernel lists them ("0-3,6"), for saving and restoring CPU
 * affinity.
 */
#pragma once

#include <sched.h>
#include <stddef.h>

#include "error.h"

/* Parse a CPU list ("0-3,6\n"); -EINVAL if it is not one. */
int cpu_list_parse(const char *s, cpu_set_t *ret);
/* Format a set as a CPU list into buf (truncated to len, always terminated). */
void cpu_list_format(const cpu_set_t *set, char *buf, size_t len);
/* The CPUs online now (/sys/devices/system/cpu/online). */
int cpus_online(cpu_set_t *ret, struct ckpt_error *e);
