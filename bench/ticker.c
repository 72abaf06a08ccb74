/* SPDX-License-Identifier: MIT */
/*
 * ticker MIB READY GAPS: MIB MiB of pseudo-random anonymous memory, then a
 * wake-up every millisecond; each wake-up that comes more than 5 ms after
 * the one before appends "gap <microseconds>" to GAPS. READY gets the pid
 * once the memory is filled. What a checkpoint tool's freeze costs the
 * program, as the program sees it, whatever the tool reports: the longest
 * gap while a --leave-running dump ran is its freeze. bench/criu.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0, len = mib << 20;
	struct timespec tick = {0, 1000 * 1000};
	uint64_t s = 88172645463325252ULL, *p;
	double last;
	FILE *f;

	if (argc < 4 || !mib) {
		fprintf(stderr, "usage: ticker MIB READY GAPS\n");
		return 2;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < len / sizeof(*p); i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		p[i] = s;
	}
	f = fopen(argv[2], "w");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f))
		return 1;
	last = now();
	for (;;) {
		double t;

		nanosleep(&tick, NULL);
		t = now();
		if (t - last > 0.005) {
			f = fopen(argv[3], "a");
			if (f) {
				fprintf(f, "gap %.0f\n", (t - last) * 1e6);
				fclose(f);
			}
		}
		last = t;
	}
}
