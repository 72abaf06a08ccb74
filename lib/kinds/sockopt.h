/* SPDX-License-Identifier: MIT */
/* Socket option helpers shared by the socket kinds (unix.c, inet.c). Private to lib/kinds/. */
#pragma once

#include <stdint.h>

/* SO_RCVTIMEO / SO_SNDTIMEO in microseconds; -1 with errno set on failure. */
int sockopt_get_timeo(int fd, int opt, uint64_t *ret);
int sockopt_set_timeo(int fd, int opt, uint64_t us);
