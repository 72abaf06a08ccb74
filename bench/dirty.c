/* SPDX-License-Identifier: MIT */
/*
 * dirty MIB PCT_PER_S READY: MIB MiB of anonymous memory, filled, then
 * PCT_PER_S percent of its pages written every second (in 10 steps of
 * 100 ms, pseudo-random pages). READY gets the pid once filled. The
 * incremental row of bench/run.sh: the final dump's freeze after a
 * --pre-dump one second earlier.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
	double pct = argc > 2 ? atof(argv[2]) : 1.0;
	size_t len = mib << 20, pages = len / 4096;
	size_t per_step = (size_t)(pages * pct / 100.0 / 10.0);
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t s = 88172645463325252ULL;
	struct timespec step = {0, 100 * 1000 * 1000};
	char tmp[4096];
	FILE *f;

	if (p == MAP_FAILED || argc < 4)
		return 2;
	/* nothing inherited (a pipe of the shell would make the dump refuse it) */
	syscall(SYS_close_range, 3, ~0U, 0);
	for (size_t i = 0; i < len; i += 8) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		memcpy(p + i, &s, 8);
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
	f = fopen(tmp, "w");
	if (!f)
		return 2;
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	rename(tmp, argv[3]);
	for (;;) {
		for (size_t k = 0; k < per_step; k++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			p[(s % pages) * 4096 + (s >> 52)] ^= 1;
		}
		nanosleep(&step, NULL);
	}
}
