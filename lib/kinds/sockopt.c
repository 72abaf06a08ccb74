/* SPDX-License-Identifier: MIT */
/* Socket option helpers shared by the socket kinds (unix.c, inet.c). */
#include <sys/socket.h>
#include <sys/time.h>

#include "sockopt.h"

int sockopt_get_timeo(int fd, int opt, uint64_t *ret)
{
	struct timeval tv = {0};
	socklen_t sl = sizeof(tv);

	if (getsockopt(fd, SOL_SOCKET, opt, &tv, &sl) < 0)
		return -1;
	*ret = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	return 0;
}

int sockopt_set_timeo(int fd, int opt, uint64_t us)
{
	struct timeval tv = {.tv_sec = (time_t)(us / 1000000u), .tv_usec = (long)(us % 1000000u)};

	return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}
