/* SPDX-License-Identifier: MIT */
/*
 * ckptctl check: the kernel features ckpt needs, each probed for real on this
 * kernel (never by comparing version numbers): a child is forked and seized
 * for the ptrace probes, clone3 really creates a child with a chosen pid when
 * we may, and so on. Prints a table (or JSON); exit 1 if a required feature
 * is missing.
 */
#include <cpuid.h>
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "ckptctl.h"
#include "image.h"
#include "netlock.h"
#include "pagemap_scan.h"

#define NOTE_MAX 160

/* The layout of struct clone_args (linux/sched.h) up to set_tid_size. */
struct probe_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};

/* State shared by the probes: one seized child serves all ptrace probes. */
struct probe_ctx {
	pid_t child;	 /* forked, PTRACE_SEIZEd and interrupted; 0 if that failed */
	int pipe_rd;	 /* a pipe the child inherited, for pidfd_getfd and kcmp */
	int pidfd;	 /* pidfd of the child, -1 if pidfd_open failed */
	uint64_t marker; /* a value the child has a copy of, for process_vm_readv */
	char child_err[NOTE_MAX];
};

struct probe {
	const char *name;
	bool required;
	/* 1 present, 0 absent; note says what was seen */
	int (*fn)(struct probe_ctx *ctx, char *note, size_t len);
};

static void usage_check(FILE *out)
{
	fprintf(out, "usage: ckptctl check [--json] [-v]\n"
		     "\n"
		     "Probe the kernel features ckpt needs, each for real on this kernel, and\n"
		     "print one line per feature: name, ok / missing (required) / absent\n"
		     "(optional), and what was seen. Exit status 1 if a required one is missing.\n"
		     "\n"
		     "      --json     one JSON object {\"status\":..,\"features\":[...]}\n");
}

static int fail_errno(char *note, size_t len, const char *what)
{
	snprintf(note, len, "%s: %s", what, strerror(errno));
	return 0;
}

/* --- the seized child ----------------------------------------------------------- */

static int probe_ptrace_seize(struct probe_ctx *ctx, char *note, size_t len)
{
	int fds[2], status;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return fail_errno(note, len, "pipe");
	ctx->pipe_rd = fds[0];
	pid = fork();
	if (pid < 0)
		return fail_errno(note, len, "fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	close(fds[1]);
	ctx->child = pid;
	if (ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_EXITKILL) < 0) {
		snprintf(ctx->child_err, sizeof(ctx->child_err), "PTRACE_SEIZE: %s",
			 strerror(errno));
		snprintf(note, len, "%s", ctx->child_err);
		return 0;
	}
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0 || waitpid(pid, &status, __WALL) != pid) {
		snprintf(ctx->child_err, sizeof(ctx->child_err), "PTRACE_INTERRUPT: %s",
			 strerror(errno));
		snprintf(note, len, "%s", ctx->child_err);
		return 0;
	}
	if (!WIFSTOPPED(status) || (status >> 16) != PTRACE_EVENT_STOP) {
		snprintf(ctx->child_err, sizeof(ctx->child_err),
			 "child not in a PTRACE_EVENT_STOP (status 0x%x)", status);
		snprintf(note, len, "%s", ctx->child_err);
		return 0;
	}
	ctx->pidfd = syscall(SYS_pidfd_open, pid, 0);
	snprintf(note, len, "seized and interrupted child %d", pid);
	return 1;
}

static bool need_child(struct probe_ctx *ctx, char *note, size_t len)
{
	if (ctx->child > 0 && !ctx->child_err[0])
		return true;
	snprintf(note, len, "not probed: no seized child (%s)",
		 ctx->child_err[0] ? ctx->child_err : "fork failed");
	return false;
}

static void child_release(struct probe_ctx *ctx)
{
	if (ctx->child > 0) {
		kill(ctx->child, SIGKILL);
		while (waitpid(ctx->child, NULL, __WALL) < 0 && errno == EINTR)
			;
	}
	if (ctx->pidfd >= 0)
		close(ctx->pidfd);
	if (ctx->pipe_rd >= 0)
		close(ctx->pipe_rd);
}

static int probe_rseq_config(struct probe_ctx *ctx, char *note, size_t len)
{
	struct __ptrace_rseq_configuration conf = {0};
	long r;

	if (!need_child(ctx, note, len))
		return 0;
	r = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, ctx->child, sizeof(conf), &conf);
	if (r < 0)
		return fail_errno(note, len, "PTRACE_GET_RSEQ_CONFIGURATION");
	if (conf.rseq_abi_pointer)
		snprintf(note, len,
			 "child's rseq area at 0x%" PRIx64 " (%u bytes, registered by libc)",
			 (uint64_t)conf.rseq_abi_pointer, conf.rseq_abi_size);
	else
		snprintf(note, len, "works; the child has no rseq registered");
	return 1;
}

static int probe_xstate_regset(struct probe_ctx *ctx, char *note, size_t len)
{
	_cleanup_free_ char *buf = NULL;
	struct iovec iov;

	if (!need_child(ctx, note, len))
		return 0;
	buf = calloc(1, 64 << 10);
	if (!buf)
		return fail_errno(note, len, "calloc");
	iov = (struct iovec){buf, 64 << 10};
	if (ptrace(PTRACE_GETREGSET, ctx->child, NT_X86_XSTATE, &iov) < 0)
		return fail_errno(note, len, "PTRACE_GETREGSET NT_X86_XSTATE");
	snprintf(note, len, "%zu bytes of XSAVE state", iov.iov_len);
	return 1;
}

static int probe_process_vm_readv(struct probe_ctx *ctx, char *note, size_t len)
{
	uint64_t got = 0;
	struct iovec local = {&got, sizeof(got)}, remote = {&ctx->marker, sizeof(got)};

	if (!need_child(ctx, note, len))
		return 0;
	if (process_vm_readv(ctx->child, &local, 1, &remote, 1, 0) != sizeof(got))
		return fail_errno(note, len, "process_vm_readv");
	if (got != ctx->marker) {
		snprintf(note, len, "read a wrong value from the child");
		return 0;
	}
	snprintf(note, len, "read the child's memory");
	return 1;
}

static int probe_pidfd_open(struct probe_ctx *ctx, char *note, size_t len)
{
	int fd;

	if (ctx->pidfd >= 0) {
		snprintf(note, len, "pidfd of the child");
		return 1;
	}
	fd = syscall(SYS_pidfd_open, getpid(), 0);
	if (fd < 0)
		return fail_errno(note, len, "pidfd_open");
	close(fd);
	snprintf(note, len, "pidfd of ckptctl itself");
	return 1;
}

static int probe_pidfd_getfd(struct probe_ctx *ctx, char *note, size_t len)
{
	struct stat a, b;
	int fd;

	if (!need_child(ctx, note, len))
		return 0;
	if (ctx->pidfd < 0) {
		snprintf(note, len, "not probed: no pidfd");
		return 0;
	}
	fd = syscall(SYS_pidfd_getfd, ctx->pidfd, ctx->pipe_rd, 0);
	if (fd < 0)
		return fail_errno(note, len, "pidfd_getfd");
	fstat(fd, &a);
	fstat(ctx->pipe_rd, &b);
	close(fd);
	snprintf(note, len, "copied fd %d of the child%s", ctx->pipe_rd,
		 a.st_ino == b.st_ino ? "" : " (but got another file?)");
	return a.st_ino == b.st_ino;
}

static int probe_kcmp(struct probe_ctx *ctx, char *note, size_t len)
{
	long r;

	if (!need_child(ctx, note, len))
		return 0;
	r = syscall(SYS_kcmp, getpid(), ctx->child, KCMP_FILE, ctx->pipe_rd, ctx->pipe_rd);
	if (r < 0)
		return fail_errno(note, len, "kcmp(KCMP_FILE)");
	if (r != 0) {
		snprintf(note, len, "kcmp says an inherited fd is another file (%ld)", r);
		return 0;
	}
	snprintf(note, len, "KCMP_FILE matched a file shared with the child");
	return 1;
}

static int probe_children(struct probe_ctx *ctx, char *note, size_t len)
{
	char path[64], buf[4096], want[16];
	ssize_t n;
	int fd;

	if (ctx->child <= 0) {
		snprintf(note, len, "not probed: no child");
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", getpid(), getpid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail_errno(note, len, path);
	n = read(fd, buf, sizeof(buf) - 2);
	close(fd);
	if (n < 0)
		return fail_errno(note, len, path);
	buf[n] = ' ';
	buf[n + 1] = '\0';
	snprintf(want, sizeof(want), "%d ", ctx->child);
	if (!strstr(buf, want)) {
		snprintf(note, len, "the child is not listed in %s", path);
		return 0;
	}
	snprintf(note, len, "lists the child");
	return 1;
}

/* --- probes without the child -------------------------------------------------- */

static long clone3_raw(struct probe_clone_args *args)
{
	return syscall(SYS_clone3, args, sizeof(*args));
}

/* A pid nobody uses, from the top of the range down (best effort). */
static pid_t free_pid_candidate(int skip)
{
	char path[32];
	long pid_max = 32768;
	FILE *f = fopen("/proc/sys/kernel/pid_max", "re");

	if (f) {
		if (fscanf(f, "%ld", &pid_max) != 1)
			pid_max = 32768;
		fclose(f);
	}
	for (pid_t p = pid_max - 1; p > 300; p--) {
		snprintf(path, sizeof(path), "/proc/%d", p);
		if (access(path, F_OK) < 0 && skip-- == 0)
			return p;
	}
	return 0;
}

static int probe_clone3_set_tid(struct probe_ctx *ctx, char *note, size_t len)
{
	struct probe_clone_args args = {.exit_signal = SIGCHLD, .set_tid_size = 1};
	long r;

	/* set_tid NULL with a size: EINVAL where set_tid exists, E2BIG/ENOSYS before */
	r = clone3_raw(&args);
	if (r >= 0) {
		if (r == 0)
			_exit(0);
		waitpid(r, NULL, 0);
		snprintf(note, len, "clone3 accepted an invalid set_tid");
		return 0;
	}
	if (errno != EINVAL)
		return fail_errno(note, len, "clone3 with set_tid");
	/* for real: a child at a pid of our choosing */
	for (int attempt = 0; attempt < 5; attempt++) {
		pid_t want = free_pid_candidate(attempt);
		int64_t tid = want;

		if (!want)
			break;
		args.set_tid = (uintptr_t)&tid;
		r = clone3_raw(&args);
		if (r == 0)
			syscall(SYS_exit_group, 0); /* the child: nothing else to do */
		if (r > 0) {
			waitpid(r, NULL, 0);
			snprintf(note, len, "created a child with pid %d as asked", want);
			return r == want;
		}
		if (errno == EPERM) {
			snprintf(note, len,
				 "set_tid exists but needs CAP_CHECKPOINT_RESTORE (run as root)");
			return 0;
		}
		if (errno != EEXIST)
			return fail_errno(note, len, "clone3 with set_tid");
	}
	snprintf(note, len, "set_tid exists (no free pid found to try it)");
	return 1;
}

/* A file-backed mapping of ours, looked up through map_files. */
static int probe_map_files(struct probe_ctx *ctx, char *note, size_t len)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/maps", "re");
	char line[512], path[128], target[512];
	unsigned long start, end;

	if (!f)
		return fail_errno(note, len, "/proc/self/maps");
	while (fgets(line, sizeof(line), f)) {
		ssize_t n;

		if (!strchr(line, '/') || sscanf(line, "%lx-%lx", &start, &end) != 2)
			continue;
		snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", start, end);
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			return fail_errno(note, len, path);
		target[n] = '\0';
		snprintf(note, len, "%.100s", target);
		return 1;
	}
	snprintf(note, len, "no file mapping found to look up");
	return 0;
}

static int probe_pagemap(struct probe_ctx *ctx, char *note, size_t len)
{
	volatile char page_touch = 1;
	uintptr_t addr = (uintptr_t)&page_touch;
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return fail_errno(note, len, "/proc/self/pagemap");
	n = pread(fd, &entry, sizeof(entry), (addr / getpagesize()) * sizeof(entry));
	close(fd);
	if (n != sizeof(entry))
		return fail_errno(note, len, "read /proc/self/pagemap");
	if (!(entry >> 63)) {
		snprintf(note, len, "a touched stack page is not reported present");
		return 0;
	}
	snprintf(note, len, "present bit of a stack page set");
	return 1;
}

static int probe_pr_set_mm_map(struct probe_ctx *ctx, char *note, size_t len)
{
	unsigned int size = 0;

	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, (unsigned long)&size, 0, 0) < 0)
		return fail_errno(note, len, "prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE)");
	snprintf(note, len, "struct prctl_mm_map is %u bytes", size);
	return size > 0;
}

static int probe_rseq(struct probe_ctx *ctx, char *note, size_t len)
{
	/* an invalid registration: EINVAL where rseq exists */
	if (syscall(SYS_rseq, NULL, 0, 0, 0) == 0 || errno != EINVAL)
		return fail_errno(note, len, "rseq");
	snprintf(note, len, "rseq syscall present");
	return 1;
}

/* The vDSO areas of this kernel, by name and size in pages. */
static int probe_vdso(struct probe_ctx *ctx, char *note, size_t len)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/maps", "re");
	static const char *const names[] = {"[vvar]", "[vvar_vclock]", "[vdso]"};
	char line[512];
	size_t off = 0;
	bool vdso = false;

	if (!f)
		return fail_errno(note, len, "/proc/self/maps");
	note[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;

		if (sscanf(line, "%lx-%lx", &start, &end) != 2)
			continue;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			size_t l = strlen(names[i]);
			char *p = strstr(line, names[i]);

			if (!p || (p[l] != '\n' && p[l] != '\0'))
				continue;
			vdso |= i == 2;
			if (off < len)
				off += snprintf(note + off, len - off, "%s%s %lu page%s",
						off ? ", " : "", names[i], (end - start) / 4096,
						end - start == 4096 ? "" : "s");
		}
	}
	if (!vdso)
		snprintf(note, len, "no [vdso] mapping");
	return vdso;
}

static int probe_xcr0(struct probe_ctx *ctx, char *note, size_t len)
{
	static const char *const bits[] = {"x87",    "sse",	  "avx",      "bndregs", "bndcsr",
					   "opmask", "zmm_hi256", "hi16_zmm", "pt",	 "pkru"};
	unsigned int eax, ebx, ecx, edx, lo, hi;
	uint64_t xcr0;
	size_t off;

	if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) {
		snprintf(note, len, "the CPU or kernel does not enable XSAVE (no OSXSAVE)");
		return 0;
	}
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	xcr0 = (uint64_t)hi << 32 | lo;
	off = snprintf(note, len, "XCR0 0x%" PRIx64 ":", xcr0);
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]) && off < len; i++)
		if (xcr0 & (1ull << i))
			off += snprintf(note + off, len - off, " %s", bits[i]);
	if (xcr0 & (3ull << 17) && off < len)
		snprintf(note + off, len - off, " amx");
	return 1;
}

static int probe_cap_sys_resource(struct probe_ctx *ctx, char *note, size_t len)
{
	cap_t caps = cap_get_proc();
	cap_flag_value_t v = CAP_CLEAR;

	if (caps) {
		cap_get_flag(caps, CAP_SYS_RESOURCE, CAP_EFFECTIVE, &v);
		cap_free(caps);
	}
	snprintf(note, len,
		 "%s; not required (limits are read from /proc, mm fields set "
		 "with PR_SET_MM_MAP)",
		 v == CAP_SET ? "present" : "absent");
	return v == CAP_SET;
}

/* Established TCP connections are restored in repair mode (CAP_NET_ADMIN). */
static int probe_tcp_repair(struct probe_ctx *ctx, char *note, size_t len)
{
	_cleanup_close_ int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int on = 1;

	(void)ctx;
	if (s < 0 || setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) < 0)
		return fail_errno(note, len,
				  "TCP_REPAIR (established TCP connections are refused)");
	snprintf(note, len, "established TCP connections can be checkpointed");
	return 1;
}

/* The network lock of TCP connections: an nftables table of our own (lib/netlock.c). */
static int probe_nftables(struct probe_ctx *ctx, char *note, size_t len)
{
	struct ckpt_error e = {0};
	char table[64];

	(void)ctx;
	snprintf(table, sizeof(table), "ckpt_check_%d", (int)getpid());
	if (netlock_lock(table, NULL, 0, &e) < 0) {
		snprintf(note, len, "%s", e.msg);
		return 0;
	}
	netlock_unlock(table, &e);
	snprintf(note, len, "TCP connections can be locked during a checkpoint");
	return 1;
}

/* restore --lazy: a userfaultfd that serves kernel-mode faults too, with the events it follows. */
static int probe_userfaultfd(struct probe_ctx *ctx, char *note, size_t len)
{
	const uint64_t need = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
			      UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP;
	struct uffdio_api api = {.api = UFFD_API, .features = need};
	_cleanup_close_ int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	(void)ctx;
	if (fd < 0)
		return fail_errno(note, len, "userfaultfd (restore --lazy is refused)");
	if (ioctl(fd, UFFDIO_API, &api) < 0 || (api.features & need) != need) {
		snprintf(note, len,
			 "no fork, remap, remove and unmap events (restore --lazy is refused)");
		return 0;
	}
	snprintf(note, len, "restore --lazy works (docs/lazy.md)");
	return 1;
}

/*
 * Write tracking of incremental dumps (dump/dump_incr.c): a userfaultfd in
 * asynchronous write-protect mode over a page of ours, PAGEMAP_SCAN that
 * protects it, a write, and PAGEMAP_SCAN that must see it written.
 */
static long chk_scan(int pm, char *p, bool wp, uint64_t *cat)
{
	struct pmscan_region v[4];
	struct pmscan_arg a = {.size = sizeof(a),
			       .flags = wp ? PMSCAN_WP_MATCHING : 0,
			       .start = (uint64_t)(uintptr_t)p,
			       .end = (uint64_t)(uintptr_t)p + 4096,
			       .vec = (uint64_t)(uintptr_t)v,
			       .vec_len = 4,
			       .category_mask = wp ? PMSCAN_IS_WRITTEN : 0,
			       .category_anyof_mask = PMSCAN_IS_PRESENT | PMSCAN_IS_SWAPPED,
			       .return_mask =
				   PMSCAN_IS_WPALLOWED | PMSCAN_IS_WRITTEN | PMSCAN_IS_PRESENT};
	long n = ioctl(pm, PMSCAN_IOCTL, &a);

	*cat = n > 0 ? v[0].categories : 0;
	return n;
}

static int probe_write_tracking(struct probe_ctx *ctx, char *note, size_t len)
{
	struct uffdio_api api = {.api = UFFD_API, .features = (1ULL << 15) | (1ULL << 13)};
	struct uffdio_register reg = {.mode = UFFDIO_REGISTER_MODE_WP};
	_cleanup_close_ int uffd = -1, pm = -1;
	uint64_t cat = 0;
	char *p;
	int ok = 0;

	(void)ctx;
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | 1 /* USER_MODE_ONLY */);
	if (uffd < 0)
		return fail_errno(note, len, "userfaultfd (incremental dumps unavailable)");
	if (ioctl(uffd, UFFDIO_API, &api) < 0)
		return fail_errno(note, len,
				  "UFFD_FEATURE_WP_ASYNC (Linux 6.7+; incremental dumps unavailable)");
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pm < 0 || p == MAP_FAILED)
		return fail_errno(note, len, "pagemap");
	p[0] = 1;
	reg.range.start = (uint64_t)(uintptr_t)p;
	reg.range.len = 4096;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
		snprintf(note, len, "UFFDIO_REGISTER in write-protect mode: %s", strerror(errno));
	else if (chk_scan(pm, p, true, &cat) < 0)
		snprintf(note, len, "PAGEMAP_SCAN with PM_SCAN_WP_MATCHING: %s", strerror(errno));
	else if (chk_scan(pm, p, false, &cat) < 1 || (cat & PMSCAN_IS_WRITTEN))
		snprintf(note, len, "PAGEMAP_SCAN: the page is not write-protected after arming");
	else if ((p[0] = 2, chk_scan(pm, p, false, &cat)) < 1 || !(cat & PMSCAN_IS_WRITTEN))
		snprintf(note, len, "PAGEMAP_SCAN: a write is not seen");
	else {
		snprintf(note, len,
			 "userfaultfd WP_ASYNC + PAGEMAP_SCAN: --pre-dump / --parent available");
		ok = 1;
	}
	munmap(p, 4096);
	return ok;
}

/* Soft-dirty bits (CONFIG_MEM_SOFT_DIRTY): reported only, ckpt does not use them. */
static int probe_soft_dirty(struct probe_ctx *ctx, char *note, size_t len)
{
	_cleanup_close_ int cr = -1, pm = -1;
	volatile char *p;
	uint64_t w = 0;

	(void)ctx;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return fail_errno(note, len, "mmap");
	p[0] = 1;
	cr = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (cr < 0 || pm < 0 || write(cr, "4", 1) != 1) {
		munmap((void *)p, 4096);
		return fail_errno(note, len, "clear_refs");
	}
	p[0] = 2;
	if (pread(pm, &w, 8, (off_t)((uintptr_t)p / 4096 * 8)) != 8)
		w = 0;
	munmap((void *)p, 4096);
	snprintf(note, len, "%s", (w >> 55) & 1 ? "present (not used by ckpt: write tracking uses userfaultfd)"
					       : "not in this kernel (not needed: write tracking uses userfaultfd)");
	return (w >> 55) & 1 ? 1 : 0;
}

static const struct probe probes[] = {
    {"ptrace PTRACE_SEIZE", true, probe_ptrace_seize},
    {"PTRACE_GET_RSEQ_CONFIGURATION", true, probe_rseq_config},
    {"PTRACE_GETREGSET NT_X86_XSTATE", true, probe_xstate_regset},
    {"process_vm_readv", true, probe_process_vm_readv},
    {"pidfd_open", true, probe_pidfd_open},
    {"pidfd_getfd", true, probe_pidfd_getfd},
    {"kcmp KCMP_FILE", true, probe_kcmp},
    {"/proc/PID/task/TID/children", true, probe_children},
    {"clone3 set_tid", true, probe_clone3_set_tid},
    {"/proc/PID/map_files", true, probe_map_files},
    {"/proc/PID/pagemap", true, probe_pagemap},
    {"prctl PR_SET_MM_MAP", true, probe_pr_set_mm_map},
    {"rseq", true, probe_rseq},
    {"vdso layout", false, probe_vdso},
    {"xstate (XCR0)", true, probe_xcr0},
    {"CAP_SYS_RESOURCE", false, probe_cap_sys_resource},
    {"TCP_REPAIR", false, probe_tcp_repair},
    {"nftables (TCP lock)", false, probe_nftables},
    {"userfaultfd (lazy restore)", false, probe_userfaultfd},
    {"write tracking (incremental dumps)", false, probe_write_tracking},
    {"soft-dirty", false, probe_soft_dirty},
};

#define NPROBES (sizeof(probes) / sizeof(probes[0]))

static const char *status_word(const struct probe *p, int ok)
{
	if (ok)
		return p->required ? "ok" : "present";
	return p->required ? "missing" : "absent";
}

int cmd_check(int argc, char **argv, struct cli_common *c)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'J'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct probe_ctx ctx = {.pipe_rd = -1, .pidfd = -1, .marker = 0x636b7074636865ull};
	char notes[NPROBES][NOTE_MAX];
	int ok[NPROBES], missing = 0, opt, ex;

	while ((opt = cli_getopt(argc, argv, ":vh", longopts, c, usage_check, &ex)) != -1)
		if (opt == -2)
			return ex;
	if (optind < argc)
		return cli_usage_error("check", "unexpected argument '%s'", argv[optind]);
	cli_set_verbosity(c->verbose);

	for (size_t i = 0; i < NPROBES; i++) {
		notes[i][0] = '\0';
		ok[i] = probes[i].fn(&ctx, notes[i], sizeof(notes[i]));
		if (!ok[i] && probes[i].required)
			missing++;
	}
	child_release(&ctx);

	if (c->json) {
		printf("{\"status\":\"%s\",\"missing\":%d,\"features\":[",
		       missing ? "missing" : "ok", missing);
		for (size_t i = 0; i < NPROBES; i++) {
			printf("%s{\"name\":", i ? "," : "");
			img_json_string(stdout, probes[i].name);
			printf(",\"required\":%s,\"ok\":%s,\"status\":\"%s\",\"note\":",
			       probes[i].required ? "true" : "false", ok[i] ? "true" : "false",
			       status_word(&probes[i], ok[i]));
			img_json_string(stdout, notes[i]);
			printf("}");
		}
		printf("]}\n");
	} else {
		printf("%-32s %-8s %s\n", "FEATURE", "STATUS", "NOTE");
		for (size_t i = 0; i < NPROBES; i++)
			printf("%-32s %-8s %s\n", probes[i].name, status_word(&probes[i], ok[i]),
			       notes[i]);
		if (missing)
			printf("\n%d required feature%s missing: ckpt cannot work here\n", missing,
			       missing == 1 ? "" : "s");
		else
			printf("\nall required features are present\n");
	}
	return missing ? 1 : 0;
}
