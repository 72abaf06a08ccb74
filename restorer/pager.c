/* SPDX-License-Identifier: MIT */
/*
 * --lazy: the tree runs before its private anonymous memory is in.
 *
 *   - stage tree: P makes a socket pair; stage fds: each task, still
 *     running the restorer's code, makes its userfaultfd (it serves the mm
 *     of its maker), sends it to P (SCM_RIGHTS) and closes it;
 *   - stage memory: the areas that can be lazy (private anonymous,
 *     writable, not locked, not kept copy-on-write from a parent, not
 *     wiped or dropped at fork, not sealed, not the stack) are mapped and
 *     registered in MISSING mode instead of being filled;
 *   - stage pager: P forks the pager, which closes everything of the tree
 *     it inherited, leaves P's session and keeps only the userfaultfds,
 *     a pidfd of each task and the image directory. It answers each fault
 *     first (UFFDIO_COPY of that page from the images, UFFDIO_ZEROPAGE
 *     where nothing was saved), copies the rest in the background in runs
 *     of PREFETCH_PAGES, follows fork, mremap, munmap and madvise(DONTNEED)
 *     (never serving an address from the image once its content went),
 *     and exits when every page is in;
 *   - the pager's own child, the watcher, holds a copy of every userfaultfd
 *     (so that while it lives no fault of the tree is ever answered with a
 *     zero page by the kernel: a userfaultfd whose last file reference goes
 *     leaves its areas as plain anonymous memory) and kills the tree if the
 *     pager goes away before saying it is done. The pager kills the tree
 *     itself if it fails or if the watcher dies.
 *
 * docs/lazy.md has the design and the failure modes.
 */
#define LOG_PREFIX "pager: "

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/userfaultfd.h>

#include "cleanup.h"
#include "clock.h"
#include "crc32c.h"
#include "fault.h"
#include "log.h"
#include "mm_cow.h"
#include "restore.h"
#include "rpc.h"
#include "thp.h"

#define UFFD_FEATURES                                                                              \
	(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |          \
	 UFFD_FEATURE_EVENT_UNMAP)
/* Background copies: this many pages at a time (the buffer, one huge page),
 * then the faults again; 256 took twice as long in all for 2 GiB here. */
#define PREFETCH_PAGES 512
/* A fault is answered with this many pages from it on (those still to be
 * copied), and the background copy goes on after them: a program reading
 * its memory in order would otherwise fault on every page ahead of it. */
#define FAULT_AROUND_PAGES 32
#define MSGS_AT_ONCE 64
#define PAGER_LATE_SECONDS 5

/* ---- restorer side -------------------------------------------------------------------- */

int lazy_setup(struct restore_ctx *ctx)
{
	int sp[2], r;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "socketpair for the userfaultfds");
	/* at numbers no task uses (fds.c): the tasks' close_range drops P's end */
	ctx->uffd_rd = sp[0];
	ctx->uffd_wr = sp[1];
	r = fd_spare(ctx, &ctx->uffd_rd, "the userfaultfd socket");
	if (r >= 0)
		r = fd_spare(ctx, &ctx->uffd_wr, "the userfaultfd socket");
	return r;
}

/* Send len bytes of data and, unless fd is -1, fd in SCM_RIGHTS: 0 or -errno. */
static int send_with_fd(int sock, const void *data, size_t len, int fd)
{
	ssize_t n = rpc_sendmsg_fd(sock, data, len, fd);

	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

int lazy_task_uffd(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e)
{
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURES};
	int32_t pid = t->pid;
	int fd, r = 0;

	/* not UFFD_USER_MODE_ONLY: a fault inside a system call (read() into
	 * a missing page) must wait for the page like any other, not fail
	 * with EFAULT; that takes CAP_SYS_PTRACE here (raised by the caller)
	 * unless vm.unprivileged_userfaultfd is 1 */
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "userfaultfd() for --lazy%s",
				      errno == EPERM ? " (needs CAP_SYS_PTRACE or "
						       "vm.unprivileged_userfaultfd=1)"
						     : "");
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		r = ckpt_err_errno(e, -errno,
				   "UFFDIO_API with the fork, remap, remove and unmap "
				   "events (--lazy)");
	else if ((api.features & UFFD_FEATURES) != UFFD_FEATURES)
		r = ckpt_err(e, -ENOTSUP,
			     "this kernel's userfaultfd lacks the events --lazy needs");
	if (r >= 0) {
		r = send_with_fd(ctx->uffd_wr, &pid, sizeof(pid), fd);
		if (r < 0)
			r = ckpt_err_errno(e, r, "sending the userfaultfd to the restorer");
	}
	close(fd);
	return r;
}

int lazy_receive_all(struct restore_ctx *ctx)
{
	for (size_t n = 0; n < ctx->ntasks; n++) {
		int32_t pid = 0;
		struct iovec iov = {.iov_base = &pid, .iov_len = sizeof(pid)};
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = u.buf,
				    .msg_controllen = sizeof(u.buf)};
		struct cmsghdr *c;
		struct rtask *t;
		ssize_t k;
		int fd = -1;

		/* every task sent it before it reported its setup done */
		k = recvmsg(ctx->uffd_rd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (k < 0)
			return ckpt_err_errno(&ctx->err, -errno,
					      "receiving the userfaultfd of a task (%zu of %zu)",
					      n + 1, ctx->ntasks);
		c = CMSG_FIRSTHDR(&mh);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
		t = k == sizeof(pid) ? task_by_pid(ctx, pid) : NULL;
		if (!t || fd < 0 || t->uffd >= 0) {
			if (fd >= 0)
				close(fd);
			return ckpt_err(
			    &ctx->err, -EPROTO,
			    "a bad userfaultfd message (pid %d) on the restorer's socket", pid);
		}
		t->uffd = fd;
	}
	return 0;
}

/* Can area i of t be filled by the pager? */
static bool area_can_be_lazy(const struct rtask *t, size_t i)
{
	static const char *const eager_flags[] = {"lo", "lf", "wf", "dc", "sl", "ht", "gd"};
	const Vma *v = t->mm->vmas[i];

	if (v->kind != VMA_KIND__VMA_ANON_PRIVATE && v->kind != VMA_KIND__VMA_HEAP)
		return false;
	/* shared copy-on-write with a parent or a child (docs/cow.md) */
	if (t->kept && t->kept[i])
		return false;
	if (!(v->prot & PROT_WRITE) || (v->flags & MAP_GROWSDOWN))
		return false;
	for (size_t k = 0; v->vmflags && k < ARRAY_SIZE(eager_flags); k++)
		if (vma_vmflag(v, eager_flags[k]))
			return false;
	return true;
}

int lazy_plan_task(struct restore_ctx *ctx, struct rtask *t)
{
	size_t j = 0;

	t->lazy = calloc(t->mm->n_vmas + 1, sizeof(*t->lazy));
	if (!t->lazy)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	/* areas with saved data only (one of holes gains nothing), both lists sorted */
	for (size_t k = 0; k < t->n_pagemap; k++) {
		const PagemapEntry *pe = t->pagemap[k];
		uint64_t end = pe->vaddr + (uint64_t)pe->nr_pages * RST_PAGE_SIZE;

		if (pe->has_inherited && pe->inherited)
			continue;
		while (j < t->mm->n_vmas && t->mm->vmas[j]->end <= pe->vaddr)
			j++;
		for (size_t i = j; i < t->mm->n_vmas && t->mm->vmas[i]->start < end; i++)
			t->lazy[i] = true;
	}
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		t->lazy[i] = t->lazy[i] && area_can_be_lazy(t, i);
	return 0;
}

int lazy_register_task(struct restore_ctx *ctx, struct rtask *t)
{
	int r = t->uffd < 0 ? ckpt_err(&ctx->err, -EPROTO, "pid %d: no userfaultfd", t->pid)
			    : lazy_plan_task(ctx, t);

	for (size_t i = 0; r >= 0 && i < t->mm->n_vmas; i++) {
		const Vma *v = t->mm->vmas[i];
		struct uffdio_register reg = {
		    .range = {.start = v->start, .len = v->end - v->start},
		    .mode = UFFDIO_REGISTER_MODE_MISSING,
		};

		if (!t->lazy[i])
			continue;
		if (ioctl(t->uffd, UFFDIO_REGISTER, &reg) < 0)
			r = ckpt_err_errno(&ctx->err, -errno,
					   "pid %d: UFFDIO_REGISTER of area %#" PRIx64 "-%#" PRIx64,
					   t->pid, v->start, v->end);
	}
	return r;
}

bool lazy_range(const struct rtask *t, uint64_t addr, uint64_t *end)
{
	size_t lo = 0, hi = t->mm->n_vmas;

	*end = UINT64_MAX;
	if (!t->lazy)
		return false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->mm->vmas[mid]->end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == t->mm->n_vmas)
		return false;
	if (t->mm->vmas[lo]->start > addr) {
		*end = t->mm->vmas[lo]->start;
		return false;
	}
	*end = t->mm->vmas[lo]->end;
	return t->lazy[lo];
}

/* ---- the pages images' checksums (deferred by --lazy) ------------------------------------- */

/* One pages image of the inventory, checksummed a chunk at a time. */
struct sum_check {
	const ImageSum *s;
	int fd; /* opened by P: the images may be gone once it returns (ckptd) */
	uint64_t off;
	uint32_t crc;
};

#define SUM_CHUNK (1u << 20)

static bool is_pages_image(const char *name)
{
	return !strncmp(name, "pages-", 6);
}

static int sums_open(struct restore_ctx *ctx, struct sum_check **ret, size_t *ret_n)
{
	struct sum_check *v = calloc(ctx->inv->n_images + 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	*ret = v;
	for (size_t i = 0; i < ctx->inv->n_images; i++) {
		const ImageSum *s = ctx->inv->images[i];
		struct stat st;

		if (!is_pages_image(s->name))
			continue;
		v[n] = (struct sum_check){.s = s, .fd = img_open_file(ctx->dirfd, s->name, &st)};
		if (v[n].fd < 0) {
			int err = v[n].fd;

			*ret_n = n;
			if (err == -EBADMSG)
				return ckpt_err(&ctx->err, err, "%s: not a regular file", s->name);
			return ckpt_err_errno(&ctx->err, err, "opening %s", s->name);
		}
		n++;
	}
	*ret_n = n;
	return 0;
}

/* One chunk of the next image not done; 0 when all are done (*more false). */
static int sums_step(struct restore_ctx *ctx, struct sum_check *v, size_t n, char *buf, bool *more)
{
	*more = false;
	for (size_t i = 0; i < n; i++) {
		struct sum_check *c = &v[i];
		size_t want;
		ssize_t k;

		if (c->fd < 0)
			continue;
		*more = true;
		want = c->s->size - c->off < SUM_CHUNK ? c->s->size - c->off : SUM_CHUNK;
		if (want) {
			k = pread(c->fd, buf, want, (off_t)c->off);
			if (k < 0 && errno == EINTR)
				return 0;
			if (k != (ssize_t)want)
				return ckpt_err_errno(&ctx->err, k < 0 ? -errno : -EBADMSG,
						      "%s: short read at offset %" PRIu64,
						      c->s->name, c->off);
			c->crc = crc32c(c->crc, buf, want);
			c->off += want;
		}
		if (c->off == c->s->size) {
			closep(&c->fd);
			c->fd = -1;
			if (c->crc != c->s->crc32c)
				return ckpt_err(&ctx->err, -EBADMSG,
						"%s: checksum mismatch (crc32c %08x, the inventory "
						"recorded %08x): the image is corrupted",
						c->s->name, c->crc, c->s->crc32c);
		}
		return 0;
	}
	return 0;
}

static void sums_close(struct sum_check *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		closep(&v[i].fd);
	free(v);
}

/* ---- the pager ------------------------------------------------------------------------------ */

/* Pages of one mm at cur that hold, until served, the saved pages at src. */
struct seg {
	uint64_t cur, src, npages, left;
	uint8_t *pend; /* per page: still to be copied from the images */
};

/* One userfaultfd: one mm (a restored task, or a child one of them forked). */
struct pfd {
	int fd;
	size_t task; /* whose saved pages (index in ctx->tasks) */
	struct seg *segs;
	size_t nsegs, cap;
	uint64_t left;
	size_t cur_seg; /* where the background copy goes on */
	uint64_t cur_page;
	uint64_t *retry; /* faults to answer again (the mm was changing) */
	size_t nretry, cap_retry;
};

struct pager {
	struct restore_ctx *ctx;
	struct page_src *srcs; /* per task of ctx */
	struct pfd *pfds;
	size_t n, cap;
	int watch;		/* socket to the watcher */
	int *pidfds;		/* per task of ctx */
	char *buf;		/* PREFETCH_PAGES pages */
	struct sum_check *sums; /* the pages images still to checksum */
	size_t nsums;
	uint64_t copied, zeroed, faults;
};

static uint64_t seg_end(const struct seg *s)
{
	return s->cur + s->npages * RST_PAGE_SIZE;
}

static int add_seg(struct pfd *pf, const struct seg *s)
{
	if (pf->nsegs == pf->cap) {
		size_t cap = pf->cap ? 2 * pf->cap : 16;
		struct seg *v = realloc(pf->segs, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		pf->segs = v;
		pf->cap = cap;
	}
	pf->segs[pf->nsegs++] = *s;
	pf->left += s->left;
	return 0;
}

/* The pages of [a, b) will never be served from the images again. */
static void forget_range(struct pfd *pf, uint64_t a, uint64_t b)
{
	for (size_t i = 0; i < pf->nsegs; i++) {
		struct seg *s = &pf->segs[i];
		uint64_t lo = a > s->cur ? a : s->cur, hi = b < seg_end(s) ? b : seg_end(s);

		for (uint64_t p = lo; s->left && p < hi; p += RST_PAGE_SIZE) {
			uint64_t k = (p - s->cur) / RST_PAGE_SIZE;

			if (s->pend[k]) {
				s->pend[k] = 0;
				s->left--;
				pf->left--;
			}
		}
	}
}

/* mremap moved [from, from+len) to to: the pending pages go with it. */
static int move_range(struct pfd *pf, uint64_t from, uint64_t to, uint64_t len)
{
	size_t n0 = pf->nsegs;
	struct seg *moved = calloc(n0 + 1, sizeof(*moved));
	size_t nm = 0;
	int r = 0;

	if (!moved)
		return -ENOMEM;
	for (size_t i = 0; i < n0; i++) {
		const struct seg *s = &pf->segs[i];
		uint64_t lo = from > s->cur ? from : s->cur;
		uint64_t hi = from + len < seg_end(s) ? from + len : seg_end(s);
		struct seg m;

		if (lo >= hi || !s->left)
			continue;
		m.npages = (hi - lo) / RST_PAGE_SIZE;
		m.cur = to + (lo - from);
		m.src = s->src + (lo - s->cur);
		m.pend = malloc(m.npages);
		if (!m.pend) {
			r = -ENOMEM;
			break;
		}
		memcpy(m.pend, s->pend + (lo - s->cur) / RST_PAGE_SIZE, m.npages);
		m.left = 0;
		for (uint64_t k = 0; k < m.npages; k++)
			m.left += m.pend[k];
		moved[nm++] = m;
	}
	forget_range(pf, from, from + len);
	forget_range(pf, to, to + len);
	for (size_t i = 0; i < nm; i++) {
		if (r >= 0 && moved[i].left)
			r = add_seg(pf, &moved[i]);
		else
			free(moved[i].pend);
	}
	free(moved);
	return r;
}

/* Kill the tree: every task we know and every descendant of theirs, stopped first. */
static void collect_descendants(pid_t pid, pid_t **v, size_t *n, size_t *cap, int depth)
{
	char path[64];
	DIR *d;
	struct dirent *de;

	if (depth > 64)
		return;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char cp[320], buf[4096];
		ssize_t k;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(cp, sizeof(cp), "/proc/%d/task/%s/children", pid, de->d_name);
		fd = open(cp, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		k = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (k <= 0)
			continue;
		buf[k] = '\0';
		for (char *p = buf, *tok; (tok = strtok_r(p, " \n", &p));) {
			pid_t c = (pid_t)atoi(tok);
			bool seen = false;

			for (size_t i = 0; i < *n; i++)
				seen |= (*v)[i] == c;
			if (seen || c <= 0)
				continue;
			if (*n == *cap) {
				size_t nc = *cap ? 2 * *cap : 64;
				pid_t *nv = realloc(*v, nc * sizeof(*nv));

				if (!nv)
					continue;
				*v = nv;
				*cap = nc;
			}
			(*v)[(*n)++] = c;
			kill(c, SIGSTOP);
			collect_descendants(c, v, n, cap, depth + 1);
		}
	}
	closedir(d);
}

static void kill_tree(struct restore_ctx *ctx, const int *pidfds)
{
	pid_t *v = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < ctx->ntasks; i++)
		if (pidfds[i] >= 0)
			syscall(SYS_pidfd_send_signal, pidfds[i], SIGSTOP, NULL, 0);
	/* twice: a child forked while we walked is found by the second walk */
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < ctx->ntasks; i++)
			if (pidfds[i] >= 0)
				collect_descendants(ctx->tasks[i].pid, &v, &n, &cap, 0);
	for (size_t i = 0; i < ctx->ntasks; i++)
		if (pidfds[i] >= 0)
			syscall(SYS_pidfd_send_signal, pidfds[i], SIGKILL, NULL, 0);
	for (size_t i = 0; i < n; i++)
		kill(v[i], SIGKILL);
	free(v);
}

/*
 * The watcher: holds a reference to every userfaultfd (the pager's, by
 * fork; the ones of forked children, sent by the pager) until the pager
 * says it is done; if the pager goes first, kills the tree.
 */
static __attribute__((noreturn)) void watcher_main(struct restore_ctx *ctx, int sock,
						   const int *pidfds)
{
	prctl(PR_SET_NAME, "ckpt-pager-w");
	for (;;) {
		char c = 0;
		struct iovec iov = {.iov_base = &c, .iov_len = 1};
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = u.buf,
				    .msg_controllen = sizeof(u.buf)};
		ssize_t k = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

		if (k < 0 && errno == EINTR)
			continue;
		if (k == 1 && c == 'D')
			_exit(0);
		if (k == 1 && c == 'F')
			continue; /* a forked child's userfaultfd: kept, never read */
		/* the pager is gone without being done (or failed) */
		kill_tree(ctx, pidfds);
		_exit(1);
	}
}

static int send_watcher(struct pager *pg, char c, int fd)
{
	return send_with_fd(pg->watch, &c, 1, fd);
}

static int add_pfd(struct pager *pg, int fd, size_t task, struct pfd **ret)
{
	if (pg->n == pg->cap) {
		size_t cap = pg->cap ? 2 * pg->cap : 8;
		struct pfd *v = realloc(pg->pfds, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		pg->pfds = v;
		pg->cap = cap;
	}
	*ret = &pg->pfds[pg->n++];
	memset(*ret, 0, sizeof(**ret));
	(*ret)->fd = fd;
	(*ret)->task = task;
	return 0;
}

/* The pending pages of a restored task: its pagemap's data in its lazy areas. */
static int pfd_init_task(struct pager *pg, struct pfd *pf, const struct rtask *t)
{
	for (size_t i = 0; i < t->n_pagemap; i++) {
		const PagemapEntry *pe = t->pagemap[i];
		uint64_t va = pe->vaddr, end = va + (uint64_t)pe->nr_pages * RST_PAGE_SIZE;

		if (pe->has_inherited && pe->inherited)
			continue;
		while (va < end) {
			uint64_t stop;
			bool lazy = lazy_range(t, va, &stop);
			struct seg s;

			if (stop > end)
				stop = end;
			if (lazy) {
				s.cur = s.src = va;
				s.npages = s.left = (stop - va) / RST_PAGE_SIZE;
				s.pend = malloc(s.npages);
				if (!s.pend || add_seg(pf, &s) < 0) {
					free(s.pend);
					return ckpt_err(&pg->ctx->err, -ENOMEM, "out of memory");
				}
				memset(s.pend, 1, s.npages);
			}
			va = stop;
		}
	}
	return 0;
}

/* A forked child: what its parent still had pending at the fork. */
static int pfd_fork(struct pager *pg, size_t parent, int fd)
{
	struct pfd *pf;
	int r = add_pfd(pg, fd, pg->pfds[parent].task, &pf);

	if (r < 0)
		return ckpt_err(&pg->ctx->err, r, "out of memory");
	for (size_t i = 0; i < pg->pfds[parent].nsegs; i++) {
		struct seg s = pg->pfds[parent].segs[i];

		if (!s.left)
			continue;
		s.pend = malloc(s.npages);
		if (!s.pend || add_seg(pf, &s) < 0) {
			free(s.pend);
			return ckpt_err(&pg->ctx->err, -ENOMEM, "out of memory");
		}
		memcpy(s.pend, pg->pfds[parent].segs[i].pend, s.npages);
	}
	/* the watcher keeps it too: if we die, its faults wait to be killed */
	r = send_watcher(pg, 'F', fd);
	if (r < 0)
		return ckpt_err_errno(&pg->ctx->err, r, "passing a forked child's userfaultfd on");
	return 0;
}

static void pfd_drop(struct pfd *pf)
{
	for (size_t i = 0; i < pf->nsegs; i++)
		free(pf->segs[i].pend);
	free(pf->segs);
	free(pf->retry);
	pf->segs = NULL;
	pf->retry = NULL;
	pf->nsegs = pf->cap = pf->nretry = pf->cap_retry = 0;
	pf->left = 0;
	closep(&pf->fd);
	pf->fd = -1; /* (closep leaves the number) */
}

/* The segment and page of cur address a still pending, if any. */
static struct seg *find_pending(struct pfd *pf, uint64_t a, uint64_t *idx)
{
	for (size_t i = pf->nsegs; i-- > 0;) {
		struct seg *s = &pf->segs[i];

		if (s->left && a >= s->cur && a < seg_end(s) &&
		    s->pend[(a - s->cur) / RST_PAGE_SIZE]) {
			*idx = (a - s->cur) / RST_PAGE_SIZE;
			return s;
		}
	}
	return NULL;
}

static void mark_done(struct pfd *pf, struct seg *s, uint64_t idx, uint64_t n)
{
	for (uint64_t k = idx; k < idx + n && k < s->npages; k++)
		if (s->pend[k]) {
			s->pend[k] = 0;
			s->left--;
			pf->left--;
		}
}

/*
 * Copy pages idx..idx+n of s (all pending) from the images into the mm.
 * 0 when done (pages that were there already count as done), -EAGAIN when
 * the mm is changing (events to read first), -ESRCH when it is gone.
 */
static int copy_pages(struct pager *pg, struct pfd *pf, struct seg *s, uint64_t idx, uint64_t n)
{
	struct ckpt_error *e = &pg->ctx->err;
	const struct img_pages *pages;
	uint64_t off, run_end, len;
	int r;

	r = mem_page_source(&pg->srcs[pf->task], s->src + idx * RST_PAGE_SIZE, &pages, &off,
			    &run_end, e);
	if (r == -ENOENT) {
		/* never happens for a segment made from the pagemap */
		mark_done(pf, s, idx, 1);
		return 0;
	}
	if (r < 0)
		return r;
	len = n * RST_PAGE_SIZE;
	if (s->src + idx * RST_PAGE_SIZE + len > run_end)
		len = run_end - (s->src + idx * RST_PAGE_SIZE);
	r = img_pages_read(pages, pg->buf, (size_t)len, off, e);
	if (r < 0)
		return r;
	for (uint64_t done = 0; done < len;) {
		struct uffdio_copy uc = {.dst = s->cur + idx * RST_PAGE_SIZE + done,
					 .src = (uint64_t)(uintptr_t)(pg->buf + done),
					 .len = len - done};

		if (ioctl(pf->fd, UFFDIO_COPY, &uc) == 0) {
			mark_done(pf, s, idx + done / RST_PAGE_SIZE, (len - done) / RST_PAGE_SIZE);
			pg->copied += len - done;
			break;
		}
		if (uc.copy > 0) {
			/* partial: the rest may follow */
			mark_done(pf, s, idx + done / RST_PAGE_SIZE,
				  (uint64_t)uc.copy / RST_PAGE_SIZE);
			pg->copied += (uint64_t)uc.copy;
			done += (uint64_t)uc.copy;
			continue;
		}
		if (errno == EEXIST) {
			/* in already (served meanwhile): skip that page */
			mark_done(pf, s, idx + done / RST_PAGE_SIZE, 1);
			done += RST_PAGE_SIZE;
			continue;
		}
		if (errno == EAGAIN)
			return -EAGAIN;
		if (errno == ESRCH)
			return -ESRCH;
		if (errno == ENOENT || errno == EINVAL) {
			/* no registered area there any more */
			mark_done(pf, s, idx + done / RST_PAGE_SIZE, (len - done) / RST_PAGE_SIZE);
			break;
		}
		return ckpt_err_errno(
		    e, -errno, "pid %d: UFFDIO_COPY of %" PRIu64 " bytes at %#llx",
		    pg->ctx->tasks[pf->task].pid, len - done, (unsigned long long)uc.dst);
	}
	return 0;
}

/* Answer a fault at page a: its saved page, else a zero page. */
static int serve_fault(struct pager *pg, struct pfd *pf, uint64_t a)
{
	uint64_t idx;
	struct seg *s = find_pending(pf, a, &idx);
	int r;

	pg->faults++;
	if (s) {
		uint64_t b = idx + 1;

		while (b < s->npages && b - idx < FAULT_AROUND_PAGES && s->pend[b])
			b++;
		r = copy_pages(pg, pf, s, idx, b - idx);
		if (r >= 0) {
			pf->cur_seg = (size_t)(s - pf->segs);
			pf->cur_page = b;
		}
		return r;
	}
	/* nothing saved there, or its content went (DONTNEED, unmap) */
	struct uffdio_zeropage z = {.range = {.start = a, .len = RST_PAGE_SIZE}};

	if (ioctl(pf->fd, UFFDIO_ZEROPAGE, &z) == 0) {
		pg->zeroed++;
		return 0;
	}
	r = -errno;
	if (r == -EEXIST || r == -ENOENT || r == -EINVAL) {
		struct uffdio_range w = {.start = a, .len = RST_PAGE_SIZE};

		ioctl(pf->fd, UFFDIO_WAKE, &w);
		return 0;
	}
	if (r == -EAGAIN || r == -ESRCH)
		return r;
	return ckpt_err_errno(&pg->ctx->err, r, "pid %d: UFFDIO_ZEROPAGE at %#" PRIx64,
			      pg->ctx->tasks[pf->task].pid, a);
}

static int defer_fault(struct pfd *pf, uint64_t a)
{
	if (pf->nretry == pf->cap_retry) {
		size_t cap = pf->cap_retry ? 2 * pf->cap_retry : 16;
		uint64_t *v = realloc(pf->retry, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		pf->retry = v;
		pf->cap_retry = cap;
	}
	pf->retry[pf->nretry++] = a;
	return 0;
}

/* Read and handle what the kernel queued on pfd i: faults and events. */
static int drain(struct pager *pg, size_t i)
{
	struct uffd_msg msgs[MSGS_AT_ONCE];
	int r = 0;

	for (;;) {
		struct pfd *pf = &pg->pfds[i];
		ssize_t k;

		if (pf->fd < 0)
			return 0;
		/* faults deferred while the mm was changing: again, first */
		for (size_t j = 0; r >= 0 && j < pf->nretry;) {
			r = serve_fault(pg, pf, pf->retry[j]);
			if (r == -EAGAIN) {
				r = 0;
				break;
			}
			pf->retry[j] = pf->retry[--pf->nretry];
		}
		if (r == -ESRCH) {
			pfd_drop(pf);
			return 0;
		}
		if (r < 0)
			return r;
		k = read(pf->fd, msgs, sizeof(msgs));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			return 0;
		if (k < 0)
			return ckpt_err_errno(&pg->ctx->err, -errno,
					      "reading a userfaultfd of pid %d's tree",
					      pg->ctx->tasks[pf->task].pid);
		for (size_t m = 0; r >= 0 && m < (size_t)k / sizeof(msgs[0]); m++) {
			const struct uffd_msg *msg = &msgs[m];

			pf = &pg->pfds[i];
			switch (msg->event) {
			case UFFD_EVENT_PAGEFAULT: {
				uint64_t a = msg->arg.pagefault.address & ~(RST_PAGE_SIZE - 1);

				r = serve_fault(pg, pf, a);
				if (r == -EAGAIN)
					r = defer_fault(pf, a);
				/* the background copy goes on from here */
				if (r >= 0)
					for (size_t s = 0; s < pf->nsegs; s++)
						if (a >= pf->segs[s].cur &&
						    a < seg_end(&pf->segs[s])) {
							pf->cur_seg = s;
							pf->cur_page =
							    (a - pf->segs[s].cur) / RST_PAGE_SIZE;
						}
				break;
			}
			case UFFD_EVENT_FORK:
				r = pfd_fork(pg, i, (int)msg->arg.fork.ufd);
				break;
			case UFFD_EVENT_REMAP:
				r = move_range(pf, msg->arg.remap.from, msg->arg.remap.to,
					       msg->arg.remap.len);
				break;
			case UFFD_EVENT_REMOVE:
			case UFFD_EVENT_UNMAP:
				forget_range(pf, msg->arg.remove.start, msg->arg.remove.end);
				break;
			default:
				break;
			}
		}
		if (r == -ESRCH) {
			pfd_drop(&pg->pfds[i]);
			return 0;
		}
		if (r < 0)
			return r;
	}
}

/* Drop the userfaultfds with nothing left; false when none is left at all. */
static bool any_left(struct pager *pg)
{
	bool more = false;

	for (size_t i = 0; i < pg->n; i++) {
		struct pfd *pf = &pg->pfds[i];

		/* its areas become plain memory: what was not saved reads as zeros */
		if (pf->fd >= 0 && !pf->left && !pf->nretry)
			pfd_drop(pf);
		more |= pf->fd >= 0;
	}
	return more;
}

/* One run of background copies. */
static int prefetch(struct pager *pg)
{
	for (size_t i = 0; i < pg->n; i++) {
		struct pfd *pf = &pg->pfds[i];

		if (pf->fd < 0 || !pf->left)
			continue;
		for (size_t tries = 0; tries <= pf->nsegs; tries++) {
			struct seg *s;
			uint64_t a, b;
			int r;

			if (pf->cur_seg >= pf->nsegs)
				pf->cur_seg = 0, pf->cur_page = 0;
			s = &pf->segs[pf->cur_seg];
			a = pf->cur_page;
			while (a < s->npages && !s->pend[a])
				a++;
			if (!s->left || a >= s->npages) {
				pf->cur_seg++;
				pf->cur_page = 0;
				continue;
			}
			b = a;
			while (b < s->npages && b - a < PREFETCH_PAGES && s->pend[b])
				b++;
			r = copy_pages(pg, pf, s, a, b - a);
			if (r == -ESRCH) {
				pfd_drop(pf);
				return 0;
			}
			if (r == -EAGAIN)
				return 0; /* events first */
			if (r < 0)
				return r;
			pf->cur_page = b;
			return 0;
		}
		/* left says pending but the walk found none: recount */
		pf->left = 0;
		for (size_t s = 0; s < pf->nsegs; s++)
			pf->left += pf->segs[s].left;
	}
	return 0;
}

/* Close every fd but keep[] (n of them). */
static void close_all_but(const int *keep, size_t n)
{
	unsigned int lo = 0;

	for (;;) {
		unsigned int next = ~0U;

		for (size_t i = 0; i < n; i++)
			if (keep[i] >= 0 && (unsigned int)keep[i] >= lo &&
			    (unsigned int)keep[i] < next)
				next = (unsigned int)keep[i];
		if (next > lo)
			syscall(SYS_close_range, lo, next == ~0U ? ~0U : next - 1, 0);
		if (next == ~0U)
			return;
		lo = next + 1;
	}
}

/* Not root (ckptd's non-root caller): no capability at all from here on. */
static int drop_privileges(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {{0}};

	if (getuid() == 0 && geteuid() == 0)
		return 0;
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	for (int c = 0; c <= CAP_LAST_CAP; c++)
		prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, c, 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

static __attribute__((noreturn)) void pager_main(struct restore_ctx *ctx, int *pidfds,
						 struct page_src *srcs, struct sum_check *sums,
						 size_t nsums)
{
	struct pager pg = {
	    .ctx = ctx, .pidfds = pidfds, .watch = -1, .srcs = srcs, .sums = sums, .nsums = nsums};
	size_t nkeep = 0;
	int *keep = calloc((2 + IMG_PAGES_PARTS_MAX) * ctx->ntasks + nsums + 8, sizeof(int));
	int ws[2] = {-1, -1}, devnull, r = 0;
	double t0 = ckpt_monotonic_seconds();
	struct stat st;
	pid_t watcher;
	sigset_t none;

	/* out of P's session and group: a signal meant for the restore's
	 * caller (Ctrl-C) does not reach us */
	setsid();
	prctl(PR_SET_NAME, "ckpt-pager");
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* stdin and stdout are the caller's (a pipe it reads to its end);
	 * stderr stays if it is a log file (ckptd's restore.log) or a
	 * terminal (why a tree was killed must be said somewhere) */
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull >= 0) {
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
		if (fstat(STDERR_FILENO, &st) < 0 ||
		    (!S_ISREG(st.st_mode) && !isatty(STDERR_FILENO)))
			dup2(devnull, STDERR_FILENO);
	}
	/* nothing of the tree's (pipe ends, sockets, files) stays open here */
	if (!keep)
		_exit(1);
	keep[nkeep++] = STDIN_FILENO;
	keep[nkeep++] = STDOUT_FILENO;
	keep[nkeep++] = STDERR_FILENO;
	keep[nkeep++] = ctx->dirfd;
	for (size_t i = 0; i < ctx->ntasks; i++) {
		keep[nkeep++] = ctx->tasks[i].uffd;
		keep[nkeep++] = pidfds[i];
		if (srcs[i].pages)
			nkeep += img_pages_fds(srcs[i].pages, keep + nkeep);
	}
	for (size_t i = 0; i < nsums; i++)
		keep[nkeep++] = sums[i].fd;
	close_all_but(keep, nkeep);
	free(keep);
	if (drop_privileges() < 0) {
		pr_warn("cannot drop the capabilities: %m");
		kill_tree(ctx, pidfds);
		_exit(1);
	}
	/* one huge page: UFFDIO_COPY reads the buffer through our addresses,
	 * and in 4 KiB pages that read cost a fault again and again here
	 * (60% of the pager's time in copy_from_user; lib/thp.h) */
	_Static_assert(PREFETCH_PAGES * RST_PAGE_SIZE <= THP_SIZE, "the buffer is one huge page");
	pg.buf = thp_map(THP_SIZE);
	if (pg.buf)
		memset(pg.buf, 0, THP_SIZE);
	if (!pg.buf || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ws) < 0) {
		pr_warn("cannot start: %m");
		kill_tree(ctx, pidfds);
		_exit(1);
	}
	watcher = fork();
	if (watcher < 0) {
		pr_warn("cannot fork the watcher: %m");
		kill_tree(ctx, pidfds);
		_exit(1);
	}
	if (watcher == 0) {
		close(ws[0]);
		watcher_main(ctx, ws[1], pidfds);
	}
	close(ws[1]);
	pg.watch = ws[0];
	for (size_t i = 0; r >= 0 && i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];
		struct pfd *pf;

		if (t->uffd < 0)
			continue;
		r = add_pfd(&pg, t->uffd, i, &pf);
		if (r >= 0)
			r = pfd_init_task(&pg, pf, t);
		t->uffd = -1; /* the pfd owns it */
	}
	/* CKPT_FAULT=pager-late-prefetch (tests): faults and events only for
	 * the first PAGER_LATE_SECONDS, so the program acts on missing pages */
	double prefetch_from = ckpt_fault("pager-late-prefetch") ? t0 + PAGER_LATE_SECONDS : 0;

	bool summing = true;

	while (r >= 0 && (any_left(&pg) || summing)) {
		bool no_prefetch = prefetch_from && ckpt_monotonic_seconds() < prefetch_from;
		struct pollfd *p = calloc(pg.n + 1, sizeof(*p));
		bool retry = false;

		if (!p) {
			r = ckpt_err(&ctx->err, -ENOMEM, "out of memory");
			break;
		}
		for (size_t i = 0; i < pg.n; i++) {
			p[i] = (struct pollfd){.fd = pg.pfds[i].fd, .events = POLLIN};
			retry |= pg.pfds[i].nretry != 0;
		}
		p[pg.n] = (struct pollfd){.fd = pg.watch, .events = POLLIN};
		/* faults first: never wait while pages are left to copy */
		r = poll(p, pg.n + 1, no_prefetch && !retry && !summing ? 100 : 0);
		if (r < 0 && errno == EINTR)
			r = 0;
		if (r >= 0 && p[pg.n].revents) {
			free(p);
			r = ckpt_err(&ctx->err, -EPIPE, "the watcher is gone");
			break;
		}
		r = 0;
		/* (a fork event adds userfaultfds: polled from the next round on) */
		for (size_t i = 0, n = pg.n; r >= 0 && i < n; i++)
			if (p[i].revents || pg.pfds[i].nretry)
				r = drain(&pg, i);
		free(p);
		/* the checksums, a chunk between the faults, as the copies are */
		if (r >= 0 && summing)
			r = sums_step(ctx, pg.sums, pg.nsums, pg.buf, &summing);
		if (r >= 0 && !no_prefetch)
			r = prefetch(&pg);
	}
	if (r < 0) {
		pr_warn("%s; killing the tree (its pages cannot come in)", ctx->err.msg);
		kill_tree(ctx, pidfds);
		_exit(1);
	}
	/* every page is in: the areas become plain memory again */
	for (size_t i = 0; i < pg.n; i++)
		pfd_drop(&pg.pfds[i]);
	send_watcher(&pg, 'D', -1);
	pr_info("done: %" PRIu64 " MiB copied, %" PRIu64 " faults (%" PRIu64
		" zero pages) in %.3f s",
		pg.copied >> 20, pg.faults, pg.zeroed, ckpt_monotonic_seconds() - t0);
	_exit(0);
}

int pager_start(struct restore_ctx *ctx)
{
	_cleanup_free_ int *pidfds = NULL;
	_cleanup_free_ struct page_src *srcs = NULL;
	struct sum_check *sums = NULL;
	size_t nsums = 0;
	bool any = false;
	int r = 0;
	pid_t pid;

	if (!ctx->opts->lazy)
		return 0;
	r = sums_open(ctx, &sums, &nsums);
	if (r < 0) {
		sums_close(sums, nsums);
		return r;
	}
	pidfds = calloc(ctx->ntasks + 1, sizeof(int));
	srcs = calloc(ctx->ntasks + 1, sizeof(*srcs));
	if (!pidfds || !srcs)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < ctx->ntasks; i++) {
		srcs[i] = (struct page_src){.ctx = ctx, .t = &ctx->tasks[i]};
		pidfds[i] = -1;
	}
	for (size_t i = 0; r >= 0 && i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];
		bool lazy = false;

		pidfds[i] = (int)syscall(SYS_pidfd_open, t->pid, 0);
		if (pidfds[i] < 0) {
			r = ckpt_err_errno(&ctx->err, -errno, "pid %d: pidfd_open", t->pid);
			break;
		}
		fcntl(pidfds[i], F_SETFD, FD_CLOEXEC);
		for (size_t k = 0; t->lazy && k < t->mm->n_vmas; k++)
			lazy |= t->lazy[k];
		/* opened now: the images may be gone once we return (ckptd) */
		if (lazy)
			r = mem_page_src_open(&srcs[i], &ctx->err);
		any |= lazy;
	}
	if (r >= 0 && any) {
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		if (pid < 0)
			r = ckpt_err_errno(&ctx->err, -errno, "fork of the pager");
		if (pid == 0)
			pager_main(ctx, pidfds, srcs, sums, nsums);
		if (pid > 0) {
			ctx->pager_pid = pid;
			pr_info("pager pid %d", pid);
		}
	}
	/* no pager (nothing lazy): the checksums the verify left out, now */
	if (r >= 0 && !any) {
		char *buf = malloc(SUM_CHUNK);
		bool more = true;

		if (!buf)
			r = ckpt_err(&ctx->err, -ENOMEM, "out of memory");
		while (r >= 0 && more)
			r = sums_step(ctx, sums, nsums, buf, &more);
		free(buf);
	}
	sums_close(sums, nsums);
	for (size_t i = 0; i < ctx->ntasks; i++) {
		mem_page_src_close(&srcs[i]);
		closep(&pidfds[i]);
		closep(&ctx->tasks[i].uffd);
		ctx->tasks[i].uffd = -1;
	}
	return r;
}
