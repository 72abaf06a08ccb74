/* SPDX-License-Identifier: MIT */
/*
 * io_uring instances (docs/fd-kinds.md, "io_uring"). Saved only when no
 * request is in flight: every submitted SQE has its CQE (SQ head == CQ
 * tail), nothing armed in the poll list, no overflowed CQE. The dump reads
 * the setup the kernel lets it see (fdinfo; probes on its own copy of the
 * fd that change nothing: a single issuer, deferred task work and IOPOLL
 * answer differently), the indices and the whole SQE, SQ index and CQE
 * arrays (through its own read-only mapping of the rings), the registered
 * files (fdinfo paths, matched to the task's fds), buffers and eventfd.
 *
 * The restore makes the ring in the task itself (open_in_task:
 * io_uring_setup there, so the task is its submitter), brings the kernel's
 * own counters (cached_sq_head, cached_cq_tail) to the saved indices by
 * submitting and reaping NOPs (bounded: IOURING_ADVANCE_MAX), writes the
 * arrays and indices back and checks its fdinfo against the dump; files
 * and eventfd are registered once the task's fds are at their numbers
 * (install), the mappings made at their addresses and the buffers
 * registered in stage memory (restorer/mem.c).
 */
#define LOG_PREFIX "kind io_uring: "

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/io_uring.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "iouring.h"
#include "kread.h"
#include "log.h"

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#define IOU_PG 4096UL
#define IOU_PAGE_ALIGN(x) (((x) + IOU_PG - 1) & ~(IOU_PG - 1))

static bool iouring_matches(const struct fd_probe *p)
{
	return !strcmp(p->link, "anon_inode:[io_uring]");
}

static bool iouring_describe(const struct fd_probe *p, char *buf, size_t len)
{
	return fdk_describe_as(iouring_matches(p), "io_uring instance", buf, len);
}

static long sys_setup(unsigned entries, struct io_uring_params *p)
{
	return syscall(__NR_io_uring_setup, entries, p);
}

static long sys_enter(int fd, unsigned to_submit, unsigned min, unsigned flags, void *arg,
		      size_t argsz)
{
	return syscall(__NR_io_uring_enter, fd, to_submit, min, flags, arg, argsz);
}

static long sys_register(int fd, unsigned op, void *arg, unsigned n)
{
	return syscall(__NR_io_uring_register, fd, op, arg, n);
}

/* ---- layout ------------------------------------------------------------------------ */

struct ring_layout {
	struct io_uring_params p;
	size_t rings_len, sqes_len, sqe_size, cqe_size;
};

/* The offsets the kernel gives a ring of this geometry: from a scratch ring of ours. */
static int ring_layout(unsigned sq, unsigned cq, uint32_t flags, struct ring_layout *l,
		       struct ckpt_error *e)
{
	int fd;

	memset(l, 0, sizeof(*l));
	/* the layout does not depend on who issues, nor on IOPOLL; the index array may go */
	l->p.flags =
	    (flags & (IORING_SETUP_SQE128 | IORING_SETUP_CQE32 | IOURING_SETUP_NO_SQARRAY_)) |
	    IORING_SETUP_CQSIZE;
	l->p.cq_entries = cq;
	fd = (int)sys_setup(sq, &l->p);
	if (fd < 0)
		return ckpt_err_errno(
		    e, -errno, "io_uring_setup(%u, cq %u) for the layout of its rings", sq, cq);
	close(fd);
	l->sqe_size = flags & IORING_SETUP_SQE128 ? 128 : 64;
	l->cqe_size = flags & IORING_SETUP_CQE32 ? 32 : 16;
	/* a ring without an index array ends with its CQEs */
	l->rings_len =
	    flags & IOURING_SETUP_NO_SQARRAY_ ? 0 : l->p.sq_off.array + sq * sizeof(uint32_t);
	if (l->p.cq_off.cqes + cq * l->cqe_size > l->rings_len)
		l->rings_len = l->p.cq_off.cqes + cq * l->cqe_size;
	l->sqes_len = sq * l->sqe_size;
	return 0;
}

static uint32_t ring_u32(const void *rings, uint32_t off)
{
	uint32_t v;

	memcpy(&v, (const char *)rings + off, sizeof(v));
	return v;
}

static void ring_set_u32(void *rings, uint32_t off, uint32_t v)
{
	__atomic_store_n((uint32_t *)((char *)rings + off), v, __ATOMIC_RELEASE);
}

/* ---- fdinfo ------------------------------------------------------------------------ */

struct iou_info {
	uint64_t sq_head, sq_tail, cached_sq_head, cq_head, cq_tail, cached_cq_tail;
	int64_t sq_thread;
	const char *files, *bufs; /* the lines after "UserFiles:" / "UserBufs:" */
	size_t npoll, noverflow;
	char poll_ops[128];
	bool personalities;
};

static bool info_i64(const char *text, const char *key, int64_t *ret)
{
	uint64_t v;

	if (!fdk_fdinfo_u64(text, key, 10, &v)) {
		const char *s = strstr(text, key);

		if (s && !strncmp(s + strlen(key), "\t-1", 3)) {
			*ret = -1;
			return true;
		}
		return false;
	}
	*ret = (int64_t)v;
	return true;
}

/* Lines of a section that start with whitespace, after "KEY\n" ("PollList:\n"). */
static size_t section_lines(const char *text, const char *key, char *ops, size_t opslen)
{
	const char *s = strstr(text, key);
	size_t n = 0;

	if (ops && opslen)
		ops[0] = 0;
	if (!s)
		return 0;
	s = strchr(s, '\n');
	while (s && (s[1] == ' ' || s[1] == '\t')) {
		const char *end = strchr(s + 1, '\n');

		if (ops && strlen(ops) + 24 < opslen) {
			const char *op = strstr(s + 1, "op=");

			if (op && (!end || op < end))
				snprintf(ops + strlen(ops), opslen - strlen(ops), "%s%.*s",
					 n ? ", " : "", (int)strcspn(op, ","), op);
		}
		n++;
		s = end;
	}
	return n;
}

static int parse_info(const char *text, struct iou_info *i, struct ckpt_error *e)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
	    {"SqHead:", offsetof(struct iou_info, sq_head)},
	    {"SqTail:", offsetof(struct iou_info, sq_tail)},
	    {"CachedSqHead:", offsetof(struct iou_info, cached_sq_head)},
	    {"CqHead:", offsetof(struct iou_info, cq_head)},
	    {"CqTail:", offsetof(struct iou_info, cq_tail)},
	    {"CachedCqTail:", offsetof(struct iou_info, cached_cq_tail)},
	};

	memset(i, 0, sizeof(*i));
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		if (!fdk_fdinfo_u64(text, keys[k].key, 10, (uint64_t *)((char *)i + keys[k].off)))
			return ckpt_err(e, -EINVAL, "io_uring: no %s line in its fdinfo",
					keys[k].key);
	if (!info_i64(text, "SqThread:", &i->sq_thread))
		i->sq_thread = -1;
	i->files = strstr(text, "UserFiles:");
	i->bufs = strstr(text, "UserBufs:");
	i->npoll = section_lines(text, "PollList:", i->poll_ops, sizeof(i->poll_ops));
	i->noverflow = section_lines(text, "CqOverflowList:", NULL, 0);
	i->personalities = strstr(text, "Personalities:") != NULL;
	return 0;
}

static int read_info(pid_t pid, int fd, char **text, struct iou_info *i, struct ckpt_error *e)
{
	char path[64];
	int r;

	free(*text);
	*text = NULL;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	else
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	r = proc_read_file(path, text, NULL, e);
	return r < 0 ? r : parse_info(*text, i, e);
}

/* ---- dump -------------------------------------------------------------------------- */

/*
 * What the kernel answers our copy of the fd: a ring made disabled and
 * not enabled yet, restrictions (neither can be made again). The flags
 * themselves come from the kernel reader (kernel_view). None of these calls
 * changes the ring: an enter that submits nothing and waits for nothing, a
 * probe of the opcodes (EEXIST: a single issuer answers its submitter only).
 */
static int probe_refusals(const struct fd_probe *p, struct ckpt_error *e)
{
	_cleanup_free_ struct io_uring_probe *pr =
	    calloc(1, sizeof(*pr) + 256 * sizeof(struct io_uring_probe_op));

	if (!pr)
		return ckpt_err(e, -ENOMEM, "out of memory");
	if (sys_enter(p->local_fd, 0, 0, 0, NULL, 0) < 0 && errno == EBADFD)
		return ckpt_err(e, -EOPNOTSUPP,
				"io_uring instance made disabled (IORING_SETUP_R_DISABLED) and not "
				"enabled yet: not supported");
	if (sys_register(p->local_fd, IORING_REGISTER_PROBE, pr, 256) < 0 && errno != EEXIST) {
		if (errno == EACCES)
			return ckpt_err(e, -EOPNOTSUPP,
					"io_uring instance with restrictions "
					"(IORING_REGISTER_RESTRICTIONS): they cannot be read back; "
					"not supported");
		return ckpt_err_errno(e, -errno, "io_uring: IORING_REGISTER_PROBE");
	}
	return 0;
}

/*
 * What the kernel reader shows of the ring: all the setup flags (some,
 * SUBMIT_ALL, COOP_TASKRUN, NO_SQARRAY..., no call answers differently
 * for), the registered eventfd's mode, provided buffers and the task's
 * registered ring fds. The sizes (CQSIZE, CLAMP) are saved as they came
 * out; what the restore cannot make again is refused by name.
 */
static int kernel_view(const struct fd_probe *p, uint32_t *flags, struct kread_iouring *ki,
		       struct ckpt_error *e)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} refused[] = {
	    {IORING_SETUP_SQPOLL, "SQPOLL"},
	    {IORING_SETUP_SQ_AFF, "SQ_AFF"},
	    {IORING_SETUP_ATTACH_WQ, "ATTACH_WQ"},
	    {IORING_SETUP_R_DISABLED, "R_DISABLED"},
	    {1u << 14, "NO_MMAP"},
	    {1u << 15, "REGISTERED_FD_ONLY"},
	};
	uint32_t k;
	int r;

	r = kread_iouring(p->kread, p->pid, p->fd, (uint64_t)p->st.st_ino, ki, e);
	if (r < 0)
		return ckpt_err_wrap(e, "io_uring instance: what no system call shows of it (setup "
					"flags, provided buffers) cannot be read");
	k = ki->flags & ~(IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (k & refused[i].bit)
			return ckpt_err(e, -EOPNOTSUPP, "%s%s: not supported",
					"io_uring instance set up with IORING_SETUP_",
					refused[i].name);
	if (k & ~IOURING_FLAGS_KNOWN)
		return ckpt_err(e, -EOPNOTSUPP, "%s %#x not known here: not supported",
				"io_uring instance with setup flags", k & ~IOURING_FLAGS_KNOWN);
	if (ki->provided_buffers)
		return ckpt_err(
		    e, -EOPNOTSUPP, "%s",
		    "io_uring instance with provided buffers (IORING_OP_PROVIDE_BUFFERS "
		    "or IORING_REGISTER_PBUF_RING): not supported");
	if (ki->napi)
		return ckpt_err(e, -EOPNOTSUPP, "%s",
				"io_uring instance with NAPI busy polling (IORING_REGISTER_NAPI): "
				"not supported");
	if (ki->registered_rings)
		return ckpt_err(e, -EOPNOTSUPP,
				"its task registered %u io_uring fd(s) (IORING_REGISTER_RING_FDS): "
				"not supported",
				ki->registered_rings);
	*flags = k;
	return 0;
}

/* The task's fds whose /proc link is link, and whether they are one description. */
static int task_fd_by_link(pid_t pid, const char *link, int *ret_fd, struct ckpt_error *e)
{
	char path[64], buf[PATH_MAX];
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int found = -1;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return ckpt_err_errno(e, -errno, "opening %s", path);
	while ((de = readdir(d))) {
		char name[400];
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		snprintf(name, sizeof(name), "%s/%s", path, de->d_name);
		n = readlink(name, buf, sizeof(buf) - 1);
		if (n < 0)
			continue;
		buf[n] = 0;
		if (strcmp(buf, link))
			continue;
		if (found < 0 || syscall(SYS_kcmp, pid, pid, KCMP_FILE, found, fd) == 0) {
			if (found < 0 || fd < found)
				found = fd;
			continue;
		}
		return ckpt_err(e, -EOPNOTSUPP,
				"it has %s registered, which the task has open as two different "
				"descriptions (fds %d and %d): the kernel does not show which one; "
				"not supported",
				link, found, fd);
	}
	*ret_fd = found;
	return 0;
}

/* fdinfo escapes space, tab, newline and backslash in paths as \ooo */
static void unescape_octal(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = 0;
}

static int dump_files(const struct fd_probe *p, const char *sect, IoUringEntry *ie,
		      struct ckpt_error *e)
{
	uint64_t n = 0;
	const char *s;

	if (!sect || sscanf(sect, "UserFiles:\t%" SCNu64, &n) != 1)
		return 0;
	if (n > IOURING_FILES_MAX)
		return ckpt_err(e, -EOPNOTSUPP,
				"io_uring: %" PRIu64 " registered files (at most %d)", n,
				IOURING_FILES_MAX);
	ie->files = calloc(n + 1, sizeof(*ie->files));
	if (!ie->files)
		return ckpt_err(e, -ENOMEM, "out of memory");
	s = strchr(sect, '\n');
	for (uint64_t i = 0; i < n; i++) {
		char link[PATH_MAX];
		unsigned idx;
		int fd = -1, r, len = 0;

		if (!s || sscanf(s + 1, " %u: %n", &idx, &len) != 1 || idx != i || !len)
			return ckpt_err(e, -EOPNOTSUPP,
					"io_uring: registered file %" PRIu64
					" not listed in its fdinfo (busy ring?)",
					i);
		snprintf(link, sizeof(link), "%.*s", (int)strcspn(s + 1 + len, "\n"), s + 1 + len);
		unescape_octal(link);
		s = strchr(s + 1, '\n');
		if (strcmp(link, "<none>")) {
			r = task_fd_by_link(p->pid, link, &fd, e);
			if (r < 0)
				return ckpt_err_wrap(e, "io_uring: registered file %" PRIu64, i);
			if (fd < 0)
				return ckpt_err(e, -EOPNOTSUPP,
						"io_uring: registered file %" PRIu64
						" (%s) is not open as an fd of the task: the "
						"kernel gives no other way to it; not supported",
						i, link);
		}
		ie->files[ie->n_files++] = fd;
	}
	return 0;
}

static int dump_bufs(const char *sect, IoUringEntry *ie, struct ckpt_error *e)
{
	uint64_t n = 0;
	const char *s;

	if (!sect || sscanf(sect, "UserBufs:\t%" SCNu64, &n) != 1)
		return 0;
	if (n > IOURING_BUFS_MAX)
		return ckpt_err(e, -EOPNOTSUPP,
				"io_uring: %" PRIu64 " registered buffers (at most %d)", n,
				IOURING_BUFS_MAX);
	ie->bufs = calloc(n + 1, sizeof(*ie->bufs));
	if (!ie->bufs)
		return ckpt_err(e, -ENOMEM, "out of memory");
	s = strchr(sect, '\n');
	for (uint64_t i = 0; i < n; i++) {
		unsigned idx, len;
		uint64_t addr;
		IoUringBuf *b;

		if (!s || sscanf(s + 1, " %u: 0x%" SCNx64 "/%u", &idx, &addr, &len) != 3 ||
		    idx != i)
			return ckpt_err(e, -EOPNOTSUPP,
					"io_uring: registered buffer %" PRIu64
					" is not a plain user buffer in its fdinfo (an empty slot, "
					"or a kernel buffer): not supported",
					i);
		s = strchr(s + 1, '\n');
		b = calloc(1, sizeof(*b));
		if (!b)
			return ckpt_err(e, -ENOMEM, "out of memory");
		io_uring_buf__init(b);
		b->addr = addr;
		b->len = len;
		ie->bufs[ie->n_bufs++] = b;
	}
	return 0;
}

/*
 * Whether an eventfd is registered: registering one from a NULL address
 * fails with EBUSY when one is, EFAULT when none is, and changes nothing.
 * A single issuer answers its submitter only: then the task's main thread
 * asks (EEXIST there: its submitter is another thread). Which eventfd: the
 * task's fd whose eventfd context the ring holds (the kernel reader).
 */
static int dump_eventfd(const struct fd_probe *p, uint32_t flags, const struct kread_iouring *ki,
			IoUringEntry *ie, struct ckpt_error *e)
{
	char path[64], link[64];
	ssize_t l;
	long res;
	int fd = -1, r;

	ie->has_eventfd = true;
	ie->eventfd = -1;
	if (flags & IORING_SETUP_SINGLE_ISSUER) {
		if (!p->remote)
			return ckpt_err(e, -EOPNOTSUPP,
					"io_uring instance with a single issuer: no way to ask its "
					"submitter task");
		r = p->remote(p, __NR_io_uring_register, (uint64_t)p->fd, IORING_REGISTER_EVENTFD,
			      0, 1, &res, e);
		if (r < 0)
			return ckpt_err_wrap(e, "io_uring: asking the task whether an eventfd is "
						"registered");
	} else {
		res = sys_register(p->local_fd, IORING_REGISTER_EVENTFD, NULL, 1) < 0 ? -errno : 0;
	}
	if (res == -EEXIST)
		return ckpt_err(e, -EOPNOTSUPP,
				"io_uring instance with a single issuer "
				"(IORING_SETUP_SINGLE_ISSUER) that is not the task's main thread: "
				"the restore makes it in the main thread; not supported");
	if ((res == -EBUSY) != ki->eventfd && (res == -EFAULT || res == -EBUSY))
		return ckpt_err(e, -EIO, "io_uring: an eventfd registered says the %s, not the %s",
				ki->eventfd ? "kernel reader" : "probe",
				ki->eventfd ? "probe" : "kernel reader");
	if (res == -EFAULT)
		return 0;
	if (res != -EBUSY)
		return ckpt_err(e, res < 0 ? (int)res : -EIO,
				"io_uring: IORING_REGISTER_EVENTFD probe answered %ld", res);
	ie->has_eventfd_async = ki->eventfd_async;
	ie->eventfd_async = ki->eventfd_async;
	/* which one: the task's eventfd whose context the ring holds */
	r = kread_fd_by_private(p->kread, p->pid, ki->eventfd_ctx, &fd, e);
	if (r == -ENOENT)
		return ckpt_err(e, -EOPNOTSUPP,
				"io_uring instance with an eventfd registered that the task no "
				"longer holds as an fd: not supported");
	if (r < 0)
		return ckpt_err_wrap(e, "io_uring: finding its registered eventfd");
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", p->pid, fd);
	l = readlink(path, link, sizeof(link) - 1);
	if (l < 0 || (link[l] = '\0', strcmp(link, "anon_inode:[eventfd]")))
		return ckpt_err(e, -EIO, "io_uring: its eventfd is fd %d, which is no eventfd", fd);
	ie->eventfd = fd;
	return 0;
}

/* The task's mappings of the ring: their lengths tell the SQE and CQE sizes. */
static int task_ring_maps(pid_t pid, uint64_t ino, uint64_t *rings_len, uint64_t *sqes_len,
			  struct ckpt_error *e)
{
	struct proc_vma_list vl = {0};
	int r;

	*rings_len = *sqes_len = 0;
	r = proc_parse_maps(pid, &vl, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < vl.n; i++) {
		const struct proc_vma *v = &vl.v[i];
		uint64_t end;

		if (v->ino != ino || strcmp(v->path, "anon_inode:[io_uring]"))
			continue;
		end = v->pgoff + (v->end - v->start);
		if (v->pgoff >= IORING_OFF_SQES) {
			if (end - IORING_OFF_SQES > *sqes_len)
				*sqes_len = end - IORING_OFF_SQES;
		} else if (v->pgoff >= IORING_OFF_CQ_RING) {
			if (end - IORING_OFF_CQ_RING > *rings_len)
				*rings_len = end - IORING_OFF_CQ_RING;
		} else if (end > *rings_len) {
			*rings_len = end;
		}
	}
	proc_vma_list_free(&vl);
	return 0;
}

static int copy_region(int fd, uint64_t off, size_t len, ProtobufCBinaryData *ret,
		       struct ckpt_error *e)
{
	void *m = mmap(NULL, IOU_PAGE_ALIGN(len), PROT_READ, MAP_SHARED, fd, (off_t)off);

	if (m == MAP_FAILED)
		return ckpt_err_errno(e, -errno, "io_uring: mapping %zu bytes at offset %#" PRIx64,
				      len, off);
	ret->data = malloc(len ? len : 1);
	if (!ret->data) {
		munmap(m, IOU_PAGE_ALIGN(len));
		return ckpt_err(e, -ENOMEM, "out of memory");
	}
	memcpy(ret->data, m, len);
	ret->len = len;
	munmap(m, IOU_PAGE_ALIGN(len));
	return 0;
}

/*
 * Wait (bounded) for the requests submitted and not completed yet: with
 * the tree frozen, only completions the kernel makes by itself land.
 */
static int wait_quiet(const struct fd_probe *p, char **text, struct iou_info *in,
		      struct ckpt_error *e)
{
	double waited = 0;
	int r;

	for (;;) {
		r = read_info(p->pid, p->fd, text, in, e);
		if (r < 0)
			return r;
		if (in->npoll || in->noverflow || (uint32_t)in->sq_head == (uint32_t)in->cq_tail ||
		    waited >= IOURING_WAIT_S)
			return 0;
		nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
		waited += 0.02;
	}
}

static int iouring_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	struct kread_iouring ki;
	struct ring_layout l;
	struct iou_info in;
	IoUringEntry *ie;
	uint32_t flags = 0, sq, cq, cached_sq, cached_cq, inflight;
	uint64_t map_rings = 0, map_sqes = 0;
	bool no_array = false;
	void *hdr;
	int r;

	r = ckpt_fault_inject("iouring-dump", e);
	if (r < 0)
		return r;
	if (p->local_fd < 0)
		return ckpt_err(e, -EPERM, "io_uring instance: no copy of it (pidfd_getfd)");
	r = wait_quiet(p, &text, &in, e);
	if (r < 0)
		return r;
	if (in.sq_thread >= 0)
		return ckpt_err(e, -EOPNOTSUPP,
				"io_uring instance with a polling thread (IORING_SETUP_SQPOLL, "
				"thread %" PRId64 "): its idle time and CPU are not shown; not "
				"supported",
				in.sq_thread);
	if (in.npoll)
		return ckpt_err(
		    e, -EBUSY,
		    "io_uring instance with %zu request(s) in flight waiting for their "
		    "file (%s; e.g. a read of an empty pipe): they cannot be made again",
		    in.npoll, in.poll_ops);
	if (in.noverflow)
		return ckpt_err(e, -EBUSY,
				"io_uring instance with %zu completion(s) overflowed from its CQ "
				"ring: they cannot be put back",
				in.noverflow);
	if (in.personalities)
		return ckpt_err(e, -EOPNOTSUPP,
				"io_uring instance with registered personalities: not supported");
	r = probe_refusals(p, e);
	if (r >= 0)
		r = kernel_view(p, &flags, &ki, e);
	if (r < 0)
		return r;
	/* the geometry: from the ring header, read through our own mapping */
	hdr = mmap(NULL, IOU_PG, PROT_READ, MAP_SHARED, p->local_fd, IORING_OFF_SQ_RING);
	if (hdr == MAP_FAILED)
		return ckpt_err_errno(e, -errno,
				      "io_uring: mapping its rings (a ring in the program's own "
				      "memory, IORING_SETUP_NO_MMAP, is not supported)");
	r = ring_layout(1, 2, 0, &l, e);
	if (r >= 0) {
		sq = ring_u32(hdr, l.p.sq_off.ring_entries);
		cq = ring_u32(hdr, l.p.cq_off.ring_entries);
	}
	munmap(hdr, IOU_PG);
	if (r < 0)
		return r;
	if (!sq || sq > IOURING_SQ_MAX || sq & (sq - 1) || !cq || cq > IOURING_CQ_MAX ||
	    cq & (cq - 1) || cq < sq)
		return ckpt_err(e, -EINVAL, "io_uring: ring entries sq %u cq %u not understood", sq,
				cq);
	/* the program maps at most the sizes the kernel told it */
	r = task_ring_maps(p->pid, p->st.st_ino, &map_rings, &map_sqes, e);
	if (r >= 0)
		r = ring_layout(sq, cq, flags, &l, e);
	if (r < 0)
		return r;
	if (map_rings > IOU_PAGE_ALIGN(l.rings_len) || map_sqes > IOU_PAGE_ALIGN(l.sqes_len))
		return ckpt_err(e, -EOPNOTSUPP,
				"io_uring: its mappings (rings %" PRIu64 ", SQEs %" PRIu64
				" bytes) are larger than a ring of %u/%u entries: layout not "
				"understood",
				map_rings, map_sqes, sq, cq);

	r = fdk_dump_common(p, FILE_TYPE__FILE_IOURING, fe, e);
	if (r < 0)
		return r;
	ie = calloc(1, sizeof(*ie));
	if (!ie)
		return ckpt_err(e, -ENOMEM, "out of memory");
	io_uring_entry__init(ie);
	fe->io_uring = ie;
	ie->ino = p->st.st_ino;
	ie->sq_entries = sq;
	ie->cq_entries = cq;
	ie->setup_flags = flags;
	/* a ring without an index array (NO_SQARRAY) ends with its CQEs */
	no_array = flags & IOURING_SETUP_NO_SQARRAY_;
	r = copy_region(p->local_fd, IORING_OFF_SQ_RING, l.rings_len, &ie->cqes, e);
	if (r < 0)
		return r;
	/* the header and the SQ index array, from the copy of the rings */
	hdr = ie->cqes.data;
	ie->sq_head = ring_u32(hdr, l.p.sq_off.head);
	ie->sq_tail = ring_u32(hdr, l.p.sq_off.tail);
	ie->cq_head = ring_u32(hdr, l.p.cq_off.head);
	ie->cq_tail = ring_u32(hdr, l.p.cq_off.tail);
	ie->has_cq_flags = ie->has_sq_dropped = ie->has_cq_overflow = true;
	ie->cq_flags = ring_u32(hdr, l.p.cq_off.flags);
	ie->sq_dropped = ring_u32(hdr, l.p.sq_off.dropped);
	ie->cq_overflow = ring_u32(hdr, l.p.cq_off.overflow);
	ie->sq_array.len = (size_t)sq * sizeof(uint32_t);
	ie->sq_array.data = malloc(ie->sq_array.len);
	if (!ie->sq_array.data)
		return ckpt_err(e, -ENOMEM, "out of memory");
	/*
	 * The index array as the program left it; a ring without one
	 * (NO_SQARRAY: the kernel reads SQE i for slot i) saves the identity.
	 */
	if (!no_array)
		memcpy(ie->sq_array.data, (char *)hdr + l.p.sq_off.array, ie->sq_array.len);
	for (uint32_t i = 0; no_array && i < sq; i++)
		((uint32_t *)ie->sq_array.data)[i] = i;
	memmove(hdr, (char *)hdr + l.p.cq_off.cqes, (size_t)cq * l.cqe_size);
	ie->cqes.len = (size_t)cq * l.cqe_size;
	r = copy_region(p->local_fd, IORING_OFF_SQES, l.sqes_len, &ie->sqes, e);
	if (r < 0)
		return r;

	cached_sq = (uint32_t)in.cached_sq_head;
	cached_cq = (uint32_t)in.cached_cq_tail;
	if (cached_sq != ie->sq_head || cached_cq != ie->cq_tail)
		return ckpt_err(
		    e, -EBUSY,
		    "io_uring: the kernel's own indices (SQ head %u, CQ tail %u) are not "
		    "the ring's (%u, %u) yet: a submission or completion in progress",
		    cached_sq, cached_cq, ie->sq_head, ie->cq_tail);
	inflight = ie->sq_head - ie->cq_tail;
	if (inflight)
		return ckpt_err(e, -EBUSY,
				"io_uring instance: %u request(s) submitted and %u completion(s) "
				"posted (SQ head %u, CQ tail %u) after waiting %.0f s: requests in "
				"flight (or completed without a CQE, IOSQE_CQE_SKIP_SUCCESS; or "
				"multishot) cannot be made again",
				ie->sq_head, ie->cq_tail, ie->sq_head, ie->cq_tail, IOURING_WAIT_S);
	if (ie->sq_head > IOURING_ADVANCE_MAX)
		return ckpt_err(
		    e, -EOPNOTSUPP,
		    "io_uring instance: %u requests went through it; its kernel indices "
		    "are brought back by replaying as many NOPs, at most %u",
		    ie->sq_head, IOURING_ADVANCE_MAX);
	if (ie->sq_tail - ie->sq_head > sq || ie->cq_tail - ie->cq_head > cq)
		return ckpt_err(e, -EINVAL, "io_uring: ring indices not understood");
	r = dump_files(p, in.files, ie, e);
	if (r >= 0)
		r = dump_bufs(in.bufs, ie, e);
	if (r >= 0)
		r = dump_eventfd(p, flags, &ki, ie, e);
	if (r < 0)
		return r;
	pr_debug("pid %d fd %d: io_uring sq %u cq %u flags %#x SQ %u-%u CQ %u-%u, %zu files, %zu "
		 "buffers, eventfd %d\n",
		 p->pid, p->fd, sq, cq, flags, ie->sq_head, ie->sq_tail, ie->cq_head, ie->cq_tail,
		 ie->n_files, ie->n_bufs, ie->eventfd);
	return 0;
}

/* ---- restore ----------------------------------------------------------------------- */

int iouring_check(const FileEntry *fe, struct ckpt_error *e)
{
	const IoUringEntry *ie = fe->io_uring;
	size_t sqe_size, cqe_size;

	if (fe->type != FILE_TYPE__FILE_IOURING || !ie)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: not an io_uring entry", fe->id);
	if (!ie->sq_entries || ie->sq_entries > IOURING_SQ_MAX ||
	    ie->sq_entries & (ie->sq_entries - 1) || !ie->cq_entries ||
	    ie->cq_entries > IOURING_CQ_MAX || ie->cq_entries & (ie->cq_entries - 1) ||
	    ie->cq_entries < ie->sq_entries)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: io_uring entries sq %u cq %u",
				fe->id, ie->sq_entries, ie->cq_entries);
	if (ie->setup_flags & ~IOURING_FLAGS_KNOWN)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: io_uring setup_flags %#x", fe->id,
				ie->setup_flags);
	sqe_size = ie->setup_flags & IORING_SETUP_SQE128 ? 128 : 64;
	cqe_size = ie->setup_flags & IORING_SETUP_CQE32 ? 32 : 16;
	if (ie->sqes.len != ie->sq_entries * sqe_size ||
	    ie->cqes.len != ie->cq_entries * cqe_size ||
	    ie->sq_array.len != ie->sq_entries * sizeof(uint32_t))
		return ckpt_err(e, -EINVAL, "files.img: entry %u: io_uring arrays of wrong sizes",
				fe->id);
	if (ie->sq_head != ie->cq_tail || ie->sq_head > IOURING_ADVANCE_MAX ||
	    ie->sq_tail - ie->sq_head > ie->sq_entries ||
	    ie->cq_tail - ie->cq_head > ie->cq_entries)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: io_uring indices", fe->id);
	if (ie->n_files > IOURING_FILES_MAX || ie->n_bufs > IOURING_BUFS_MAX)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: io_uring registrations", fe->id);
	for (size_t i = 0; i < ie->n_files; i++)
		if (ie->files[i] < -1)
			return ckpt_err(e, -EINVAL, "files.img: entry %u: io_uring files[%zu]",
					fe->id, i);
	for (size_t i = 0; i < ie->n_bufs; i++)
		if (!ie->bufs[i]->len || ie->bufs[i]->len > (1u << 30) ||
		    ie->bufs[i]->addr + ie->bufs[i]->len < ie->bufs[i]->addr)
			return ckpt_err(e, -EINVAL, "files.img: entry %u: io_uring bufs[%zu]",
					fe->id, i);
	return 0;
}

static int iouring_verify(const FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("iouring-verify", e);

	return r < 0 ? r : iouring_check(fe, e);
}

struct live_ring {
	int fd;
	void *rings, *sqes;
	struct ring_layout l;
};

static void live_ring_unmap(struct live_ring *lr)
{
	if (lr->rings && lr->rings != MAP_FAILED)
		munmap(lr->rings, IOU_PAGE_ALIGN(lr->l.rings_len));
	if (lr->sqes && lr->sqes != MAP_FAILED)
		munmap(lr->sqes, IOU_PAGE_ALIGN(lr->l.sqes_len));
	lr->rings = lr->sqes = NULL;
}

/*
 * The kernel keeps its own SQ head and CQ tail: the only way to move them
 * is to submit and complete requests. NOPs, each with its CQE reaped at
 * once, a batch at a time.
 */
static int advance(struct live_ring *lr, const IoUringEntry *ie, struct ckpt_error *e)
{
	const struct io_uring_params *p = &lr->l.p;
	uint32_t left = ie->sq_head, batch = ie->sq_entries, tail = 0;
	uint32_t *array = (uint32_t *)((char *)lr->rings + p->sq_off.array);

	memset(lr->sqes, 0, lr->l.sqes_len); /* IORING_OP_NOP is 0 */
	for (uint32_t i = 0; i < ie->sq_entries; i++)
		array[i] = i;
	while (left) {
		uint32_t n = left < batch ? left : batch;
		long got;

		tail += n;
		ring_set_u32(lr->rings, p->sq_off.tail, tail);
		got = sys_enter(lr->fd, n, 0, 0, NULL, 0);
		if (got != (long)n)
			return ckpt_err_errno(e, got < 0 ? -errno : -EIO,
					      "io_uring: submitting %u NOPs (%ld went in) to bring "
					      "its indices to %u",
					      n, got, ie->sq_head);
		ring_set_u32(lr->rings, p->cq_off.head,
			     __atomic_load_n((uint32_t *)((char *)lr->rings + p->cq_off.tail),
					     __ATOMIC_ACQUIRE));
		left -= n;
	}
	return 0;
}

static int check_live(int fd, const IoUringEntry *ie, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	struct iou_info in;
	int r;

	r = read_info(0, fd, &text, &in, e);
	if (r < 0)
		return r;
	if ((uint32_t)in.sq_head != ie->sq_head || (uint32_t)in.cached_sq_head != ie->sq_head ||
	    (uint32_t)in.sq_tail != ie->sq_tail || (uint32_t)in.cq_head != ie->cq_head ||
	    (uint32_t)in.cq_tail != ie->cq_tail || (uint32_t)in.cached_cq_tail != ie->cq_tail)
		return ckpt_err(
		    e, -EIO,
		    "io_uring: made again with SQ %" PRIu64 "-%" PRIu64 " (kernel %" PRIu64
		    ") CQ %" PRIu64 "-%" PRIu64 " (kernel %" PRIu64 "), saved SQ %u-%u CQ %u-%u",
		    in.sq_head, in.sq_tail, in.cached_sq_head, in.cq_head, in.cq_tail,
		    in.cached_cq_tail, ie->sq_head, ie->sq_tail, ie->cq_head, ie->cq_tail);
	return 0;
}

static int iouring_open_in_task(const FileEntry *fe, pid_t pid, int *ret_fd, struct ckpt_error *e)
{
	const IoUringEntry *ie = fe->io_uring;
	struct live_ring lr = {.fd = -1};
	const struct io_uring_params *p;
	uint32_t *array;
	int r;

	r = ckpt_fault_inject("iouring-open", e);
	if (r >= 0)
		r = iouring_check(fe, e);
	if (r >= 0)
		r = ring_layout(ie->sq_entries, ie->cq_entries, ie->setup_flags, &lr.l, e);
	if (r < 0)
		return r;
	lr.l.p.flags = ie->setup_flags | IORING_SETUP_CQSIZE;
	lr.l.p.cq_entries = ie->cq_entries;
	lr.fd = (int)sys_setup(ie->sq_entries, &lr.l.p);
	if (lr.fd < 0)
		return ckpt_err_errno(e, -errno, "pid %d: io_uring_setup(%u, flags %#x, cq %u)",
				      pid, ie->sq_entries, ie->setup_flags | IORING_SETUP_CQSIZE,
				      ie->cq_entries);
	p = &lr.l.p;
	if (p->sq_entries != ie->sq_entries || p->cq_entries != ie->cq_entries) {
		r = ckpt_err(e, -EIO, "io_uring_setup gave %u/%u entries, saved %u/%u",
			     p->sq_entries, p->cq_entries, ie->sq_entries, ie->cq_entries);
		goto out;
	}
	lr.rings = mmap(NULL, IOU_PAGE_ALIGN(lr.l.rings_len), PROT_READ | PROT_WRITE, MAP_SHARED,
			lr.fd, IORING_OFF_SQ_RING);
	lr.sqes = mmap(NULL, IOU_PAGE_ALIGN(lr.l.sqes_len), PROT_READ | PROT_WRITE, MAP_SHARED,
		       lr.fd, IORING_OFF_SQES);
	if (lr.rings == MAP_FAILED || lr.sqes == MAP_FAILED) {
		r = ckpt_err_errno(e, -errno, "io_uring: mapping its rings");
		goto out;
	}
	r = advance(&lr, ie, e);
	if (r < 0)
		goto out;
	/* the arrays as the program left them, then the indices it owns */
	memcpy(lr.sqes, ie->sqes.data, ie->sqes.len);
	memcpy((char *)lr.rings + p->cq_off.cqes, ie->cqes.data, ie->cqes.len);
	if (!(ie->setup_flags & IOURING_SETUP_NO_SQARRAY_)) {
		array = (uint32_t *)((char *)lr.rings + p->sq_off.array);
		memcpy(array, ie->sq_array.data, ie->sq_array.len);
		/* slots never written: identity */
		for (uint32_t i = 0; i < ie->sq_entries; i++)
			if (array[i] >= ie->sq_entries)
				array[i] = i;
	}
	ring_set_u32(lr.rings, p->cq_off.flags, ie->cq_flags);
	ring_set_u32(lr.rings, p->sq_off.dropped, ie->sq_dropped);
	ring_set_u32(lr.rings, p->cq_off.overflow, ie->cq_overflow);
	ring_set_u32(lr.rings, p->cq_off.head, ie->cq_head);
	ring_set_u32(lr.rings, p->sq_off.tail, ie->sq_tail);
	r = check_live(lr.fd, ie, e);
	if (r < 0)
		goto out;
	pr_debug("pid %d: io_uring %u/%u made, SQ %u-%u CQ %u-%u\n", pid, ie->sq_entries,
		 ie->cq_entries, ie->sq_head, ie->sq_tail, ie->cq_head, ie->cq_tail);
	*ret_fd = lr.fd;
	lr.fd = -1;
out:
	live_ring_unmap(&lr);
	if (lr.fd >= 0)
		close(lr.fd);
	return r;
}

/* Inside the task, its fds at their numbers: registered files and eventfd. */
static int iouring_install(const FileEntry *fe, int fd, pid_t pid, struct ckpt_error *e)
{
	const IoUringEntry *ie = fe->io_uring;
	int r;

	r = ckpt_fault_inject("iouring-install", e);
	if (r < 0)
		return r;
	if (ie->n_files) {
		_cleanup_free_ int32_t *fds = calloc(ie->n_files, sizeof(int32_t));

		if (!fds)
			return ckpt_err(e, -ENOMEM, "out of memory");
		for (size_t i = 0; i < ie->n_files; i++)
			fds[i] = ie->files[i];
		if (sys_register(fd, IORING_REGISTER_FILES, fds, (unsigned)ie->n_files) < 0)
			return ckpt_err_errno(e, -errno,
					      "pid %d: io_uring: registering its %zu files", pid,
					      ie->n_files);
	}
	if (ie->has_eventfd && ie->eventfd >= 0) {
		int32_t ev = ie->eventfd;

		if (sys_register(fd,
				 ie->eventfd_async ? IORING_REGISTER_EVENTFD_ASYNC
						   : IORING_REGISTER_EVENTFD,
				 &ev, 1) < 0)
			return ckpt_err_errno(e, -errno, "pid %d: io_uring: registering eventfd %d",
					      pid, ev);
	}
	return 0;
}

const struct fd_kind fd_kind_iouring = {
    .name = "io_uring instance",
    .matches = iouring_matches,
    .describe = iouring_describe,
    .entry_field = offsetof(FileEntry, io_uring),
    .path = FD_PATH_ANON_INODE,
    .dump = iouring_dump,
    .verify = iouring_verify,
    .install = iouring_install,
    .open_in_task = iouring_open_in_task,
};
