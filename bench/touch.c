/* SPDX-License-Identifier: MIT */
/*
 * touch MIB: the memory rates that bound a dump and a restore on this
 * machine. Prints "first_touch <MiB/s>" (memset into freshly mmapped
 * anonymous memory: one page fault per 4 KiB page), "mapped <MiB/s>"
 * (memset into the same, now present, pages) and "memcpy <MiB/s>" (memcpy
 * between two buffers of MIB MiB whose pages are present: what capturing a
 * task's memory into RAM would cost at best). Built and run by bench/run.sh.
 * "touch back MIB", "touch exited PID": see back() and exited() below.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * touch back MIB: fault in MIB MiB in one call and give it back. The host
 * backs this VM's memory when it is first touched and takes back what the
 * VM has left free for a while (free page reporting), so the next
 * allocations meet memory it must back again, at random; right after
 * this, the next MIB MiB allocated (a dd's, a dump's) are memory the host
 * has backed, the same for both.
 */
static int back(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	if (madvise(p, len, MADV_POPULATE_WRITE) < 0)
		memset(p, 1, len);
	munmap(p, len);
	return 0;
}

/*
 * touch exited PID: return once process PID has exited (up to 60 s; 1 if
 * not). Through a pidfd: no polling loop that forks a sleep every few ms
 * (each fork costs several ms of CPU here, against the process timed), and
 * the exit itself, not the reaping of the zombie an orphan leaves.
 */
static int exited(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (fd < 0)
		return errno == ESRCH ? 0 : 1;
	return poll(&p, 1, 60000) == 1 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[1], "back"))
		return back(strtoul(argv[2], NULL, 10) << 20);
	if (argc > 2 && !strcmp(argv[1], "exited"))
		return exited((pid_t)strtol(argv[2], NULL, 10));

	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
	size_t len = mib << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double t0, t1, t2, t3, t4;

	if (p == MAP_FAILED || q == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	t0 = now();
	memset(p, 1, len);
	t1 = now();
	memset(p, 2, len);
	t2 = now();
	memset(q, 3, len); /* q made present, not timed */
	t3 = now();
	memcpy(q, p, len);
	t4 = now();
	printf("first_touch %.0f\nmapped %.0f\nmemcpy %.0f\n", mib / (t1 - t0), mib / (t2 - t1),
	       mib / (t4 - t3));
	return p[len - 1] == 2 && q[len - 1] == 2 ? 0 : 1;
}
