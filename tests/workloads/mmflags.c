/* SPDX-License-Identifier: MIT */
/*
 * mmflags LOG READY
 *
 * Per-process memory settings that leave no trace in the areas that exist
 * (smaps), only in what happens next. A tree of three processes:
 *
 *   main    mlockall(MCL_CURRENT | MCL_FUTURE): an area it maps later is
 *           locked and faulted in at once; coredump_filter 0x7f;
 *   onfault (a child) mlockall(MCL_FUTURE | MCL_ONFAULT): locked, faulted
 *           in only when touched; coredump_filter 0x23;
 *   plain   (a child) nothing: neither locked nor faulted in; the default
 *           coredump_filter.
 *
 * Each also holds two areas mapped by main before it forks, a private and
 * a shared one, whose NUMA policies (mbind) it reads with
 * get_mempolicy(MPOL_F_ADDR): the shared one interleaved on node 0 with
 * MPOL_F_STATIC_NODES (set by main before the forks: one policy of the
 * shared memory, which all three see); the private one bound to node 0 by
 * main, preferring node 0 in onfault, the default in plain (each set its
 * own after the fork).
 *
 * Every 100 ms each maps a fresh area of 16 pages, touches none, and sees
 * how much VmLck grew and how many of its pages are resident (mincore),
 * unmaps it, and reads its own coredump_filter and the policies of its two
 * areas; "bad NAME: ..." when any differs from what it saw right after its
 * setup, "ok NAME N" every 500 ms; first "start NAME PID locked L resident
 * R filter F mpol P MASK S MASK".
 */
#include <linux/mempolicy.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "wl.h"

#define AREA (16 * 4096)

static int log_fd;

struct seen {
	long locked_kb;	      /* how much VmLck grew with the new area */
	int resident;	      /* of its pages, untouched */
	unsigned long filter; /* /proc/self/coredump_filter */
	int pol[2];	      /* of the private and the shared area */
	unsigned long nodes[2];
};

static char *areas[2]; /* private, shared: 4 pages each */

static void area_policy(int k, int mode, unsigned long nodes)
{
	if (syscall(SYS_mbind, areas[k], 4 * 4096, mode, &nodes, 65, 0) < 0)
		wl_die("mbind(%#x): %s", mode, strerror(errno));
}

static long vm_lck_kb(void)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	const char *p;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		wl_die("/proc/self/status: %s", strerror(errno));
	buf[n] = '\0';
	p = strstr(buf, "\nVmLck:");
	if (!p)
		wl_die("no VmLck in /proc/self/status");
	return strtol(p + 7, NULL, 10);
}

static unsigned long coredump_filter(void)
{
	char buf[32];
	int fd = open("/proc/self/coredump_filter", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		wl_die("/proc/self/coredump_filter: %s", strerror(errno));
	buf[n] = '\0';
	return strtoul(buf, NULL, 16);
}

static void set_filter(const char *hex)
{
	int fd = open("/proc/self/coredump_filter", O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write(fd, hex, strlen(hex)) < 0)
		wl_die("coredump_filter %s: %s", hex, strerror(errno));
	close(fd);
}

static void observe(struct seen *s)
{
	unsigned char vec[AREA / 4096];
	long before = vm_lck_kb();
	void *p = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	s->locked_kb = vm_lck_kb() - before;
	if (mincore(p, AREA, vec) < 0)
		wl_die("mincore: %s", strerror(errno));
	s->resident = 0;
	for (size_t i = 0; i < sizeof(vec); i++)
		s->resident += vec[i] & 1;
	munmap(p, AREA);
	s->filter = coredump_filter();
	for (int k = 0; k < 2; k++) {
		unsigned long nodes[16] = {0};

		if (syscall(SYS_get_mempolicy, &s->pol[k], nodes, 16 * 64 + 1, areas[k],
			    MPOL_F_ADDR) < 0)
			s->pol[k] = -errno;
		s->nodes[k] = nodes[0];
	}
}

static void run(const char *name, const char *ready)
{
	struct seen s0, s;

	observe(&s0);
	wl_log(log_fd, "start %s %d locked %ld resident %d filter %#lx mpol %#x %#lx %#x %#lx",
	       name, getpid(), s0.locked_kb, s0.resident, s0.filter, s0.pol[0], s0.nodes[0],
	       s0.pol[1], s0.nodes[1]);
	if (ready)
		wl_ready(ready);
	for (unsigned long n = 0;; n++) {
		observe(&s);
		if (memcmp(&s, &s0, sizeof(s)))
			wl_log(
			    log_fd,
			    "bad %s: locked %ld -> %ld kB, resident %d -> %d, filter %#lx -> %#lx, "
			    "mpol %#x %#lx %#x %#lx -> %#x %#lx %#x %#lx",
			    name, s0.locked_kb, s.locked_kb, s0.resident, s.resident, s0.filter,
			    s.filter, s0.pol[0], s0.nodes[0], s0.pol[1], s0.nodes[1], s.pol[0],
			    s.nodes[0], s.pol[1], s.nodes[1]);
		if (n % 5 == 0)
			wl_log(log_fd, "ok %s %lu", name, n / 5 + 1);
		wl_sleep(0.1);
	}
}

static void spawn(const char *name, int flags, const char *filter)
{
	pid_t pid = fork();

	if (pid < 0)
		wl_die("fork: %s", strerror(errno));
	if (pid)
		return;
	if (flags && mlockall(flags) < 0)
		wl_die("%s: mlockall: %s", name, strerror(errno));
	if (filter)
		set_filter(filter);
	if (flags)
		area_policy(0, MPOL_PREFERRED, 1);
	run(name, NULL);
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		wl_die("usage: mmflags LOG READY");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	areas[0] = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	areas[1] = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (areas[0] == MAP_FAILED || areas[1] == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	memset(areas[0], 1, 4 * 4096);
	area_policy(1, MPOL_INTERLEAVE | MPOL_F_STATIC_NODES, 1);
	spawn("onfault", MCL_FUTURE | MCL_ONFAULT, "0x23");
	spawn("plain", 0, NULL);
	if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
		wl_die("main: mlockall: %s", strerror(errno));
	set_filter("0x7f");
	area_policy(0, MPOL_BIND, 1);
	run("main", argv[2]);
	return 0;
}
