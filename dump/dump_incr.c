/* SPDX-License-Identifier: MIT */
/*
 * Incremental dumps without soft-dirty (docs/incremental.md).
 *
 * A --pre-dump arms write tracking in every task: a userfaultfd made in the
 * task by a remote syscall (UFFD_USER_MODE_ONLY, so unprivileged tasks may
 * have one too), taken with pidfd_getfd and closed in the task again, set to
 * UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED and registered in
 * write-protect mode over every private area with pages; PAGEMAP_SCAN with
 * PM_SCAN_WP_MATCHING then write-protects the pages present, and the kernel
 * clears the bit of each page the task writes afterwards, without a fault
 * reaching anyone. The registration lives as long as some reference to the
 * userfaultfd does: a holder process of ckpt's own ("ckpt-holder") keeps
 * them, with a memfd holding the state of the checkpoint they belong to: a
 * random token (also in that checkpoint's inventory) and, per task, the
 * frame number of every page that checkpoint has (saved or in its parent).
 *
 * A later dump --parent DIR finds the holder from DIR's inventory (pid,
 * start time, name, owner, token). A page of a task is then recorded
 * "in_parent" (no data) only if it is present, in an area registered with
 * the tracking, not written since, not the zero page, and its frame is the
 * frame DIR recorded at that address. Anything else is saved: new tasks,
 * new or moved areas (mremap moves write-protected entries, but never to the
 * frame the parent had at the new address), pages dropped and read again
 * (the zero page, or a new frame), a holder gone or carrying another token
 * (full save, said in the log). The frames never leave ckpt's own memory
 * (they are physical addresses): they stay in the holder's memfd.
 *
 * Holes never get write-protect markers (only present or swapped pages are
 * matched when arming): a marker would look like a swapped page to the
 * page scan of the next dump.
 */
#define LOG_PREFIX "dump: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caps.h"
#include "cleanup.h"
#include "crc32c.h"
#include "dump_internal.h"
#include "clock.h"
#include "dump_incr.h"
#include "fault.h"
#include "image.h"
#include "log.h"
#include "mm_cow.h"
#include "pagemap_scan.h"
#include "thp.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define FEAT_WP_UNPOPULATED (1ULL << 13)
#define FEAT_WP_ASYNC (1ULL << 15)

#define PG_SIZE 4096UL
#define PM_PRESENT (1ULL << 63)
#define PM_PFN_MASK ((1ULL << 55) - 1)
#define PM_WORDS 65536
/* a frame of the parent's table no longer the page's (check_frames) */
#define FRAME_STALE UINT64_MAX

#define SCAN_VEC 512
#define SCAN_ALL_END 0x7ffffffff000ULL /* the top of 4-level paging's user space */
#define RESERVE_MARGIN (2ULL << 20)
#define PRECOPY_MAX (256ULL << 20) /* the most the copy before the freeze holds */
#define WORDS_SPLIT_MIN 16384 /* pages: read_words reads more in two halves at once */

#define HOLDER_MAGIC 0x31444c4854504b43ULL /* "CKPTHLD1" */
#define HOLDER_NAME "ckpt-holder"
#define TOKEN_LEN 16

/* The holder's memfd: header, one entry per task, then the runs and frames. */
struct holder_hdr {
	uint64_t magic;
	uint8_t token[TOKEN_LEN]; /* zeroed once a dump has started re-arming */
	uint32_t ntasks;
	uint32_t pad;
};

struct holder_task {
	int32_t pid;
	int32_t uffd; /* fd number in the holder */
	uint64_t start_time;
	uint64_t nruns, npages;
	uint64_t runs_off, pfns_off; /* byte offsets in the memfd */
};

struct pfn_run {
	uint64_t vaddr, nr;
};

/* The frames of one task's pages in a checkpoint (the parent's, or ours). */
struct pfn_table {
	struct pfn_run *runs;
	size_t nruns, runs_cap;
	uint64_t *pfns;
	size_t npages, pfns_cap;
};

struct incr_task {
	pid_t pid;
	uint64_t start_time;
	/* from the parent's holder (NULL runs: no valid tracking for this task) */
	struct pfn_table parent;
	bool tracked;
	int parent_uffd_slot; /* in the old holder, -1 if none */
	/* pages written since the parent, protected again and copied before
	 * the freeze (dump_incr_precopy): their frames then; the first
	 * pre_ncopied of them are at pre_base of the copy, in this order */
	struct pfn_table pre;
	uint64_t pre_base, pre_ncopied;
	/* the parent's frames were compared with the task's before the freeze
	 * (check_frames): those that differed are FRAME_STALE in parent, and
	 * the freeze reads no frame */
	bool frames_checked;
	/* this dump */
	struct pfn_table mine;
	bool in_dump; /* a task of this dump (not only of the parent's) */
	int uffd; /* ours, -1 if none */
	int pidfd;
	uint64_t saved, unchanged;
	uint64_t from_copy; /* of the pages saved: taken from the copy before the freeze */
};

struct incr {
	int parent_fd;
	uint32_t parent_inv_crc;
	bool tracking_valid;
	/* the parent's holder */
	int old_holder_pidfd, old_memfd;
	/* ours (pre-dump) */
	pid_t holder_pid;
	uint64_t holder_start;
	int holder_pidfd;
	uint8_t token[TOKEN_LEN];
	struct incr_task *tasks;
	size_t ntasks;
	/* the copy made before the freeze (dump_incr_precopy) */
	char *pre_buf;
	/* the checksum of each page of the copy (crc32c(0, page, 4096)) */
	uint32_t *pre_crc;
	uint64_t pre_len; /* bytes used of PRECOPY_MAX mapped */
	bool pre_done;	  /* made for every task (else not to be carried over) */
};

static void table_free(struct pfn_table *p)
{
	free(p->runs);
	free(p->pfns);
	memset(p, 0, sizeof(*p));
}

static int table_add(struct pfn_table *p, uint64_t vaddr, uint64_t pfn, struct ckpt_error *e)
{
	struct pfn_run *last = p->nruns ? &p->runs[p->nruns - 1] : NULL;

	if (p->npages == p->pfns_cap) {
		size_t cap = p->pfns_cap ? 2 * p->pfns_cap : 4096;
		uint64_t *g = realloc(p->pfns, cap * sizeof(*g));

		if (!g)
			return ckpt_err(e, -ENOMEM, "out of memory");
		p->pfns = g;
		p->pfns_cap = cap;
	}
	p->pfns[p->npages++] = pfn;
	if (last && last->vaddr + last->nr * PG_SIZE == vaddr) {
		last->nr++;
		return 0;
	}
	if (p->nruns == p->runs_cap) {
		size_t cap = p->runs_cap ? 2 * p->runs_cap : 256;
		struct pfn_run *g = realloc(p->runs, cap * sizeof(*g));

		if (!g)
			return ckpt_err(e, -ENOMEM, "out of memory");
		p->runs = g;
		p->runs_cap = cap;
	}
	p->runs[p->nruns++] = (struct pfn_run){vaddr, 1};
	return 0;
}

/*
 * The parent's frames from vaddr on, as far as its run of pages goes (*n of
 * them; 0 if it had no page at vaddr). Addresses asked in increasing order:
 * *cur, *base (index of the run's first frame) move on.
 */
static const uint64_t *table_span(const struct pfn_table *p, uint64_t vaddr, size_t *cur,
				  size_t *base, uint64_t *n)
{
	uint64_t i;

	while (*cur < p->nruns && p->runs[*cur].vaddr + p->runs[*cur].nr * PG_SIZE <= vaddr) {
		*base += p->runs[*cur].nr;
		(*cur)++;
	}
	*n = 0;
	if (*cur >= p->nruns || p->runs[*cur].vaddr > vaddr)
		return NULL;
	i = (vaddr - p->runs[*cur].vaddr) / PG_SIZE;
	*n = p->runs[*cur].nr - i;
	return &p->pfns[*base + i];
}

/* After table_span found nothing at vaddr: the address of the table's next
 * page above it, or UINT64_MAX. */
static uint64_t table_next(const struct pfn_table *p, size_t cur)
{
	return cur < p->nruns ? p->runs[cur].vaddr : UINT64_MAX;
}

struct words_half {
	int fd;
	uint64_t *w;
	size_t len;
	off_t off;
	ssize_t got;
	int err;
};

static void *words_half_main(void *arg)
{
	struct words_half *h = arg;

	h->got = pread(h->fd, h->w, h->len, h->off);
	h->err = errno;
	return NULL;
}

/*
 * The pagemap words of n pages from addr: 0, or -errno (-EIO if short). A
 * large read is made in two halves at once, on two CPUs: the kernel's walk
 * of the page tables for it is most of the classification's time in the
 * freeze (14 of 23 ms for 2 GiB), and the frozen tree uses no CPU.
 */
static int read_words(int pmfd, uint64_t *w, uint64_t addr, uint64_t n)
{
	uint64_t first = n >= WORDS_SPLIT_MIN ? n / 2 : n;
	struct words_half h = {.fd = pmfd,
			       .w = w + first,
			       .len = (n - first) * 8,
			       .off = (off_t)((addr / PG_SIZE + first) * 8)};
	pthread_t th;
	bool split = first < n && pthread_create(&th, NULL, words_half_main, &h) == 0;
	ssize_t got;
	int err;

	if (!split)
		first = n;
	got = pread(pmfd, w, first * 8, (off_t)(addr / PG_SIZE * 8));
	err = errno;
	if (split) {
		pthread_join(th, NULL);
		if (h.got != (ssize_t)h.len)
			return h.got < 0 ? -h.err : -EIO;
	}
	if (got != (ssize_t)(first * 8))
		return got < 0 ? -err : -EIO;
	return 0;
}

/* Can the page (its pagemap word, its scan_clean mark) be the parent's? */
static inline bool maybe_ref(uint64_t word, uint8_t clean)
{
	return clean && (word & PM_PRESENT) && (word & PM_PFN_MASK);
}

/*
 * The same in the freeze of a task whose frames were checked before it
 * (it->frames_checked, w not read): its scan_clean mark alone.
 */
static inline bool may_ref(const struct incr_task *it, const uint64_t *w, const uint8_t *clean,
			   uint64_t k)
{
	return it->frames_checked ? clean[k] != 0 : maybe_ref(w[k], clean[k]);
}

/* ... and its frame the one the parent recorded (pfn: the table's) */
static inline bool same_frame(const struct incr_task *it, const uint64_t *w, uint64_t k,
			      uint64_t pfn)
{
	return it->frames_checked ? pfn != FRAME_STALE : (w[k] & PM_PFN_MASK) == pfn;
}

static struct incr_task *incr_task(struct incr *in, pid_t pid)
{
	for (size_t i = 0; i < in->ntasks; i++)
		if (in->tasks[i].pid == pid)
			return &in->tasks[i];
	return NULL;
}

static int task_start_time(pid_t pid, uint64_t *ret, char *comm, size_t comm_len, uid_t *uid)
{
	struct ckpt_error tmp = {0};
	struct proc_stat st;
	struct proc_status ps;

	if (proc_parse_stat(pid, &st, &tmp) < 0)
		return -ESRCH;
	*ret = st.start_time;
	if (comm) {
		char path[64];
		_cleanup_close_ int fd = -1;
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		n = fd >= 0 ? read(fd, comm, comm_len - 1) : -1;
		if (n < 0)
			return -ESRCH;
		comm[n] = 0;
		comm[strcspn(comm, "\n")] = 0;
	}
	if (uid) {
		if (proc_parse_status(pid, &ps, &tmp) < 0)
			return -ESRCH;
		*uid = ps.uid[1];
	}
	return 0;
}

const char *dump_incr_precopy_data(const struct dump_ctx *c, uint64_t off)
{
	return c->incr->pre_buf + off;
}

const uint32_t *dump_incr_precopy_crcs(const struct dump_ctx *c, uint64_t off)
{
	return c->incr->pre_crc + off / PG_SIZE;
}

int incr_inventory_crc(int dirfd, uint32_t *ret, struct ckpt_error *e)
{
	return img_dir_inventory_crc(dirfd, ret, e);
}

/* Take the parent's holder: its state, if it still is the parent's. */
static int attach_holder(struct incr *in, const IncrTracking *tr, const char **why)
{
	struct holder_hdr h;
	uint64_t start = 0;
	char comm[32];
	uid_t uid = 0;
	struct holder_task *ht = NULL;
	int hfd;

	*why = NULL;
	if (tr->token.len != TOKEN_LEN || tr->holder_pid <= 0) {
		*why = "the parent's tracking record is malformed";
		return 0;
	}
	if (task_start_time(tr->holder_pid, &start, comm, sizeof(comm), &uid) < 0 ||
	    start != tr->holder_start || strcmp(comm, HOLDER_NAME) || uid != geteuid()) {
		*why = "its holder process is gone";
		return 0;
	}
	in->old_holder_pidfd = (int)syscall(SYS_pidfd_open, tr->holder_pid, 0);
	if (in->old_holder_pidfd < 0) {
		*why = "its holder process is gone";
		return 0;
	}
	/* the pid may have been reused between the checks and pidfd_open */
	if (task_start_time(tr->holder_pid, &start, NULL, 0, NULL) < 0 ||
	    start != tr->holder_start) {
		*why = "its holder process is gone";
		return 0;
	}
	hfd = (int)syscall(SYS_pidfd_getfd, in->old_holder_pidfd, 3, 0);
	if (hfd < 0) {
		*why = "its holder's state cannot be read";
		return 0;
	}
	in->old_memfd = hfd;
	if (pread(hfd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.magic != HOLDER_MAGIC) {
		*why = "its holder's state is not ckpt's";
		return 0;
	}
	if (memcmp(h.token, tr->token.data, TOKEN_LEN)) {
		*why = "another dump used the tracking since (a newer pre-dump, or a failed dump)";
		return 0;
	}
	if (h.ntasks > 1u << 22) {
		*why = "its holder's state is not ckpt's";
		return 0;
	}
	ht = calloc(h.ntasks ? h.ntasks : 1, sizeof(*ht));
	in->tasks = calloc(h.ntasks ? h.ntasks : 1, sizeof(*in->tasks));
	if (!ht || !in->tasks ||
	    pread(hfd, ht, h.ntasks * sizeof(*ht), sizeof(h)) != (ssize_t)(h.ntasks * sizeof(*ht))) {
		free(ht);
		*why = "its holder's state cannot be read";
		return 0;
	}
	for (uint32_t i = 0; i < h.ntasks; i++) {
		struct incr_task *it = &in->tasks[in->ntasks];
		struct pfn_table *p = &it->parent;

		it->uffd = -1;
		it->pidfd = -1;
		if (ht[i].nruns > 1u << 26 || ht[i].npages > 1ULL << 34)
			continue;
		p->runs = malloc((ht[i].nruns ? ht[i].nruns : 1) * sizeof(*p->runs));
		p->pfns = malloc((ht[i].npages ? ht[i].npages : 1) * sizeof(*p->pfns));
		if (!p->runs || !p->pfns ||
		    pread(hfd, p->runs, ht[i].nruns * sizeof(*p->runs), (off_t)ht[i].runs_off) !=
			(ssize_t)(ht[i].nruns * sizeof(*p->runs)) ||
		    pread(hfd, p->pfns, ht[i].npages * sizeof(*p->pfns), (off_t)ht[i].pfns_off) !=
			(ssize_t)(ht[i].npages * sizeof(*p->pfns))) {
			table_free(p);
			continue;
		}
		p->nruns = p->runs_cap = ht[i].nruns;
		p->npages = p->pfns_cap = ht[i].npages;
		it->pid = ht[i].pid;
		it->start_time = ht[i].start_time;
		it->parent_uffd_slot = ht[i].uffd;
		it->tracked = true;
		in->ntasks++;
	}
	free(ht);
	in->tracking_valid = true;
	return 0;
}

int dump_incr_open(struct dump_ctx *c, struct ckpt_error *e)
{
	const struct dump_opts *o = c->opts;
	struct incr *in;
	Inventory *inv = NULL;
	const char *why = NULL;
	char what[PATH_MAX + 32];
	uint64_t saved;
	int r;

	if (!o->parent && !o->pre_dump)
		return 0;
	in = calloc(1, sizeof(*in));
	if (!in)
		return ckpt_err(e, -ENOMEM, "out of memory");
	in->parent_fd = in->old_holder_pidfd = in->old_memfd = in->holder_pidfd = -1;
	c->incr = in;
	if (!o->parent)
		return 0;
	/* every error below names it once, this way */
	snprintf(what, sizeof(what), "parent checkpoint %s", o->parent);
	saved = dump_images_enter(c);
	if (o->use_parent_fd)
		in->parent_fd = fcntl(o->parent_fd, F_DUPFD_CLOEXEC, 3);
	else if (o->use_dir_fd)
		in->parent_fd =
		    openat(o->dir_fd, o->parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	else
		errno = EINVAL;
	r = in->parent_fd < 0 ? ckpt_err_errno(e, -errno, "cannot open %s", what) : 0;
	/* (the verifier's errors start with the name it is given) */
	if (r >= 0)
		r = img_dir_verify_fd_flags(in->parent_fd, what, IMG_VERIFY_PAGES_BY_SIZE, &inv, e);
	if (r >= 0 && incr_inventory_crc(in->parent_fd, &in->parent_inv_crc, e) < 0)
		r = ckpt_err_wrap(e, "%s", what);
	caps_restore(saved);
	if (r >= 0 && o->check_parent && o->check_parent(o->check_parent_arg, in->parent_fd, e) < 0)
		r = ckpt_err_wrap(e, "%s", what);
	if (r < 0) {
		if (inv)
			inventory__free_unpacked(inv, NULL);
		return r;
	}
	if (inv->root_pid != o->pid) {
		r = ckpt_err(e, -EINVAL,
			     "parent checkpoint %s is a checkpoint of pid %d, not of pid %d",
			     o->parent, inv->root_pid, o->pid);
		inventory__free_unpacked(inv, NULL);
		return r;
	}
	if (!inv->tracking)
		why = "it left no write tracking (only a --pre-dump arms it)";
	else
		attach_holder(in, inv->tracking, &why);
	inventory__free_unpacked(inv, NULL);
	if (why)
		pr_info("parent checkpoint %s: write tracking lost (%s): every page is saved again",
			o->parent, why);
	return 0;
}

/* ---- storage ahead ------------------------------------------------------------ */

/* The pagemap of a task the parent tracked, if it still runs (the same
 * task, not a pid reused), or -1: before the freeze, a task gone meanwhile
 * is the dump's to find (and say) if it matters. */
static int tracked_pagemap(const struct incr_task *it)
{
	uint64_t start = 0;
	char path[64];

	if (!it->tracked || task_start_time(it->pid, &start, NULL, 0, NULL) < 0 ||
	    start != it->start_time)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", it->pid);
	return open(path, O_RDONLY | O_CLOEXEC);
}

static void consume_parent(struct incr *in)
{
	static const uint8_t zero[TOKEN_LEN];

	/* before the first page is protected again: if this dump fails, the
	 * parent's tracking is no longer what the parent saw */
	if (in->old_memfd >= 0 && in->tracking_valid)
		(void)!pwrite(in->old_memfd, zero, TOKEN_LEN, offsetof(struct holder_hdr, token));
}

/*
 * One region the WP scan reported (protected again): its frames into the
 * task's pre table, and as much of it as still fits into the copy, in
 * order (the first pre_ncopied pages of the table are the copied ones).
 */
static int precopy_region(struct incr *in, struct incr_task *it, int pmfd, uint64_t s, uint64_t end,
			  uint64_t *w, struct ckpt_error *e)
{
	while (s < end) {
		uint64_t n = (end - s) / PG_SIZE < PM_WORDS ? (end - s) / PG_SIZE : PM_WORDS;
		bool copying = it->pre_ncopied == it->pre.npages;
		ssize_t got = pread(pmfd, w, n * 8, (off_t)(s / PG_SIZE * 8));
		uint64_t fit;

		if (got != (ssize_t)(n * 8))
			return ckpt_err_errno(e, got < 0 ? -errno : -EIO,
					      "pid %d: reading its pagemap at %" PRIx64, it->pid,
					      s);
		for (uint64_t j = 0; j < n; j++) {
			int r = table_add(&it->pre, s + j * PG_SIZE,
					  (w[j] & PM_PRESENT) ? (w[j] & PM_PFN_MASK) : 0, e);

			if (r < 0)
				return r;
		}
		fit = (PRECOPY_MAX - in->pre_len) / PG_SIZE;
		if (copying && fit) {
			uint64_t len = (n < fit ? n : fit) * PG_SIZE;
			struct iovec local = {.iov_base = in->pre_buf + in->pre_len,
					      .iov_len = len};
			struct iovec remote = {.iov_base = (void *)(uintptr_t)s, .iov_len = len};

			/* short: unmapped meanwhile, say; the rest is read in the freeze */
			got = process_vm_readv(it->pid, &local, 1, &remote, 1, 0);
			if (got > 0) {
				uint64_t pg = (uint64_t)got / PG_SIZE;
				const char *v = in->pre_buf + in->pre_len;

				/* each page checksummed here, while the tree runs: the
				 * freeze writes it without reading it again
				 * (crc32c_extend_page); and so read once from user mode,
				 * whose first access of each page is what costs on these
				 * VMs (~6 us a page), not the kernel's writing of it */
				for (uint64_t q = 0; q < pg; q++)
					in->pre_crc[in->pre_len / PG_SIZE + q] =
					    crc32c(0, v + q * PG_SIZE, PG_SIZE);
				in->pre_len += pg * PG_SIZE;
				it->pre_ncopied += pg;
			}
		}
		s += n * PG_SIZE;
	}
	return 0;
}

/*
 * The parent's frames against the task's, before the freeze: each one that
 * is not the frame of a present page at its address now becomes
 * FRAME_STALE (never the parent's page again in this dump), and the freeze
 * reads no frame of this task (docs/incremental.md, "Which pages refer to
 * the parent"): reading them all, 4 MiB of pagemap for 2 GiB, was the
 * largest part of a final dump's freeze. Done again by each try of the dump.
 */
static int check_frames(struct incr_task *it, int pmfd, uint64_t *w, struct ckpt_error *e)
{
	size_t base = 0;

	for (size_t i = 0; i < it->parent.nruns; i++) {
		const struct pfn_run *run = &it->parent.runs[i];

		for (uint64_t off = 0; off < run->nr; off += PM_WORDS) {
			uint64_t n = run->nr - off < PM_WORDS ? run->nr - off : PM_WORDS;
			uint64_t addr = run->vaddr + off * PG_SIZE;
			uint64_t *pfn = &it->parent.pfns[base + off];
			int r = read_words(pmfd, w, addr, n);

			if (r < 0)
				return ckpt_err_errno(
				    e, r, "pid %d: reading its pagemap at %" PRIx64, it->pid, addr);
			for (uint64_t j = 0; j < n; j++)
				if (!maybe_ref(w[j], 1) || (w[j] & PM_PFN_MASK) != pfn[j])
					pfn[j] = FRAME_STALE;
		}
		base += run->nr;
	}
	it->frames_checked = true;
	return 0;
}

/* check_frames for every task the parent tracked that still runs. */
static int check_all_frames(struct incr *in, uint64_t *w, struct ckpt_error *e)
{
	double t0 = ckpt_monotonic_seconds();
	uint64_t pages = 0;

	for (size_t i = 0; i < in->ntasks; i++) {
		struct incr_task *it = &in->tasks[i];
		_cleanup_close_ int pmfd = tracked_pagemap(it);
		int r;

		if (pmfd < 0)
			continue;
		r = check_frames(it, pmfd, w, e);
		if (r < 0)
			return r;
		pages += it->parent.npages;
	}
	pr_debug("frames of %" PRIu64 " pages of the parent checked before the freeze in %.1f ms",
		 pages, (ckpt_monotonic_seconds() - t0) * 1e3);
	return 0;
}

/*
 * A killing dump against a parent writes the pages written since while the
 * tree is frozen, into new image files: memory the host may not have backed
 * yet, where a write runs at the first-touch rate (docs/architecture.md)
 * rather than at the copy rate. So, before the freeze, each tracked task's
 * pages image is given the storage it will need (img_reserve): as much as
 * dump_incr_precopy (run first) found written since the parent, plus a
 * margin for what the task writes until it is frozen, in as many parts as
 * the freeze will write side by side (dump_pages_lanes: one per CPU from
 * 8 MiB on). Only an estimate: a new task gets nothing, a shortfall is
 * written the slow way.
 */
int dump_incr_reserve(struct dump_ctx *c, struct ckpt_error *e)
{
	struct incr *in = c->incr;
	uint64_t total = 0;

	if (!in || !in->pre_done)
		return 0;
	for (size_t i = 0; i < in->ntasks; i++) {
		const struct incr_task *it = &in->tasks[i];
		uint64_t bytes = it->pre.npages * PG_SIZE, saved;
		unsigned n;
		int r = 0;

		if (!bytes)
			continue;
		bytes += bytes / 8 + RESERVE_MARGIN;
		/* in parts, written side by side in the freeze (dump_pages.c, lanes) */
		n = dump_pages_lanes(bytes, true);
		saved = dump_images_enter(c);
		/* the parts up to the first the file system had no room for */
		for (unsigned k = 0;
		     r >= 0 && k < n && img_reserved(c->dir, IMG_PAGES, it->pid) == k; k++)
			r = img_reserve_pages_part(c->dir, it->pid, k, bytes / n + RESERVE_MARGIN,
						   e);
		caps_restore(saved);
		if (r < 0)
			return r;
		total += bytes;
	}
	if (total)
		pr_debug("%" PRIu64 " KiB of pages images reserved before the freeze", total >> 10);
	return 0;
}

/*
 * Copy, before the freeze, what the tracked tasks wrote since the parent, so
 * that the freeze reads only what they write after (docs/incremental.md,
 * "Copy before the freeze"). Per task, in one PAGEMAP_SCAN: the pages
 * present, written and in an area tracked are reported and protected again
 * (PM_SCAN_WP_MATCHING); their frames are read from pagemap, then the pages
 * with process_vm_readv into one buffer for the dump (PRECOPY_MAX at most:
 * past it, pages are protected and recorded but not copied, and read in the
 * freeze). In the freeze, such a page comes from the copy only if it was
 * not written since and has the same frame; anything else is read then.
 * The parent's tracking is no longer what it saw once a page is protected
 * again: it is consumed first, so that a dump that fails now leaves the
 * next one on the same parent to save everything. Killing dumps only (a
 * dump that leaves the tree running has nothing to gain: its pages are
 * written after the freeze).
 */
int dump_incr_precopy(struct dump_ctx *c, struct ckpt_error *e)
{
	struct incr *in = c->incr;
	struct pmscan_region *vec = NULL;
	_cleanup_free_ uint64_t *w = NULL;
	uint64_t copied = 0, pages = 0;
	int r = 0;

	if (!in || !in->tracking_valid || c->opts->leave_running || !c->opts->parent)
		return 0;
	w = malloc(PM_WORDS * sizeof(*w));
	if (!w)
		return ckpt_err(e, -ENOMEM, "out of memory for the copy before the freeze");
	/* the copy, made by the try before (dump_incr_keep), is still good; the
	 * frames are checked again */
	if (in->pre_done)
		return check_all_frames(in, w, e);
	/* in huge pages: a first access of each 4 KiB page would cost (lib/thp.h) */
	in->pre_buf = thp_map(PRECOPY_MAX);
	in->pre_crc = malloc(PRECOPY_MAX / PG_SIZE * sizeof(*in->pre_crc));
	vec = calloc(SCAN_VEC, sizeof(*vec));
	if (!in->pre_buf || !in->pre_crc || !vec || !w) {
		free(vec);
		return ckpt_err(e, -ENOMEM, "out of memory for the copy before the freeze");
	}
	consume_parent(in);
	for (size_t i = 0; r >= 0 && i < in->ntasks; i++) {
		struct incr_task *it = &in->tasks[i];
		_cleanup_close_ int pmfd = -1;
		struct pmscan_arg arg = {
		    .size = sizeof(arg),
		    .flags = PMSCAN_WP_MATCHING,
		    .start = 0,
		    .end = SCAN_ALL_END,
		    .vec = (uint64_t)(uintptr_t)vec,
		    .vec_len = SCAN_VEC,
		    .category_mask = PMSCAN_IS_WRITTEN | PMSCAN_IS_WPALLOWED | PMSCAN_IS_PRESENT,
		    .return_mask = PMSCAN_IS_WRITTEN,
		};

		pmfd = tracked_pagemap(it);
		if (pmfd < 0)
			continue;
		it->pre_base = in->pre_len;
		for (;;) {
			long k = ioctl(pmfd, PMSCAN_IOCTL, &arg);
			uint64_t next;

			if (k < 0) {
				r = ckpt_err_errno(
				    e, -errno,
				    "pid %d: PAGEMAP_SCAN (protecting again) at %" PRIx64, it->pid,
				    arg.start);
				break;
			}
			for (long q = 0; r >= 0 && q < k; q++)
				r = precopy_region(in, it, pmfd, vec[q].start, vec[q].end, w, e);
			if (r < 0 || k < SCAN_VEC)
				break;
			next = vec[k - 1].end > arg.walk_end ? vec[k - 1].end : arg.walk_end;
			if (next <= arg.start) {
				r = ckpt_err(e, -EIO,
					     "pid %d: PAGEMAP_SCAN made no progress at %" PRIx64,
					     it->pid, arg.start);
				break;
			}
			arg.start = next;
		}
		copied += it->pre_ncopied;
		pages += it->pre.npages;
	}
	free(vec);
	in->pre_done = r >= 0;
	if (r >= 0 && pages)
		pr_debug("%" PRIu64 " pages written since the parent protected again before the "
			 "freeze, %" PRIu64 " of them copied",
			 pages, copied);
	if (r >= 0)
		r = check_all_frames(in, w, e);
	return r;
}

/* ---- which pages changed -------------------------------------------------- */

/* Categories of pages [addr, addr + n pages): clean[i] for the pages present,
 * write-protected (not written since), in a tracked area, not the zero page
 * (pmscan_is_clean). A walk of the page tables: see clean_from_scan. */
static int scan_clean(int pmfd, pid_t pid, uint64_t addr, uint64_t n, uint8_t *clean,
		      struct ckpt_error *e)
{
	struct pmscan_region vec[SCAN_VEC];
	struct pmscan_arg arg = {
	    .size = sizeof(arg),
	    .start = addr,
	    .end = addr + n * PG_SIZE,
	    .vec = (uint64_t)(uintptr_t)vec,
	    .vec_len = SCAN_VEC,
	    .category_anyof_mask = PMSCAN_IS_PRESENT | PMSCAN_IS_SWAPPED,
	    .return_mask = PMSCAN_CLEAN_MASK,
	};

	memset(clean, 0, n);
	while (arg.start < arg.end) {
		long k = ioctl(pmfd, PMSCAN_IOCTL, &arg);
		uint64_t next = arg.start;

		if (k < 0)
			return ckpt_err_errno(e, -errno, "pid %d: PAGEMAP_SCAN at %" PRIx64, pid,
					      arg.start);
		for (long i = 0; i < k; i++) {
			uint64_t s = vec[i].start < next ? next : vec[i].start;
			uint64_t t = vec[i].end > arg.end ? arg.end : vec[i].end;
			if (s >= t)
				continue;
			next = t;
			if (pmscan_is_clean(vec[i].categories))
				memset(clean + (s - addr) / PG_SIZE, 1, (t - s) / PG_SIZE);
		}
		if (k < SCAN_VEC)
			break;
		if (arg.walk_end > next)
			next = arg.walk_end;
		if (next <= arg.start)
			return ckpt_err(e, -EIO, "pid %d: PAGEMAP_SCAN made no progress at %" PRIx64,
					pid, arg.start);
		arg.start = next;
	}
	return 0;
}

/*
 * The same from the spans dump_task_scan's walk found clean (the tree is
 * frozen: nothing changed since), without walking the page tables again:
 * for 2 GiB that walk was 3-4 ms of the final dump's freeze.
 */
static void clean_from_scan(const struct dump_task *t, uint64_t addr, uint64_t n, uint8_t *clean)
{
	uint64_t end = addr + n * PG_SIZE;
	size_t lo = 0, hi = t->nclean;

	memset(clean, 0, n);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->clean[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < t->nclean && t->clean[i].start < end; i++) {
		uint64_t s = t->clean[i].start > addr ? t->clean[i].start : addr;
		uint64_t e = t->clean[i].end < end ? t->clean[i].end : end;

		if (s < e)
			memset(clean + (s - addr) / PG_SIZE, 1, (e - s) / PG_SIZE);
	}
}

struct split {
	struct page_run *runs;
	size_t n, cap;
};

#define NO_PRE UINT64_MAX

/* pre_off: where the pages are in the copy made before the freeze, or NO_PRE */
static int split_add(struct split *s, uint64_t vaddr, uint64_t nr, bool inh, bool in_parent,
		     pid_t sibling, uint64_t pre_off, struct ckpt_error *e)
{
	struct page_run *last = s->n ? &s->runs[s->n - 1] : NULL;
	bool pre = pre_off != NO_PRE;

	/* inherited runs stay as the scan cut them: one parent window each (dump_mm.c) */
	if (last && !inh && !last->inherited && last->in_parent == in_parent &&
	    last->precopied == pre &&
	    (!pre || last->pre_off + (uint64_t)last->nr * PG_SIZE == pre_off) &&
	    last->vaddr + (uint64_t)last->nr * PG_SIZE == vaddr && last->nr + nr < (1u << 30)) {
		last->nr += (uint32_t)nr;
		return 0;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		struct page_run *g = realloc(s->runs, cap * sizeof(*g));

		if (!g)
			return ckpt_err(e, -ENOMEM, "out of memory");
		s->runs = g;
		s->cap = cap;
	}
	s->runs[s->n++] = (struct page_run){.vaddr = vaddr,
					    .nr = (uint32_t)nr,
					    .inherited = inh,
					    .in_parent = in_parent,
					    .sibling = sibling,
					    .precopied = pre,
					    .pre_off = pre ? pre_off : 0};
	return 0;
}

/* A page copied before the freeze: is that copy still its content? Yes if
 * not written since (protected again then), the same frame, and copied. */
static inline bool from_copy(const struct incr_task *it, const uint64_t *w, const uint8_t *clean,
			     uint64_t k, uint64_t pfn_then, uint64_t idx)
{
	if (it->frames_checked)
		return clean[k] && idx < it->pre_ncopied;
	return maybe_ref(w[k], clean[k]) && (w[k] & PM_PFN_MASK) == pfn_then &&
	       idx < it->pre_ncopied;
}

/*
 * n pages from one that the copy before the freeze has (their frames then:
 * pp; idx: the first one's index in the task's table): how many of them,
 * from the first, go alike, all from that copy or all read now. *pre_off:
 * where in the copy, or NO_PRE.
 */
static uint64_t classify_pre(const struct incr_task *it, const uint64_t *w, const uint8_t *clean,
			     const uint64_t *pp, uint64_t idx, uint64_t n, uint64_t *pre_off)
{
	bool use = from_copy(it, w, clean, 0, pp[0], idx);
	uint64_t k = 1;

	while (k < n && from_copy(it, w, clean, k, pp[k], idx + k) == use)
		k++;
	*pre_off = use ? it->pre_base + idx * PG_SIZE : NO_PRE;
	return k;
}

int dump_incr_classify(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e)
{
	struct incr *in = c->incr;
	struct incr_task *it;
	_cleanup_free_ uint64_t *w = NULL;
	_cleanup_free_ uint8_t *clean = NULL;
	_cleanup_close_ int pmfd = -1;
	struct split s = {0};
	size_t cur = 0, base = 0, pcur = 0, pbase = 0;
	uint64_t pre_next = UINT64_MAX;
	uint64_t start = 0;
	bool tracked, frames;
	char path[64];
	int r = 0;

	if (!in)
		return 0;
	task_start_time(t->pid, &start, NULL, 0, NULL);
	it = in->tracking_valid ? incr_task(in, t->pid) : NULL;
	if (it && it->start_time != start) {
		pr_info("pid %d: not the task the parent checkpoint tracked: every page saved",
			t->pid);
		table_free(&it->parent);
		table_free(&it->pre);
		it->tracked = false;
		it->frames_checked = false;
	}
	if (!it) {
		struct incr_task *g = realloc(in->tasks, (in->ntasks + 1) * sizeof(*g));

		if (!g)
			return ckpt_err(e, -ENOMEM, "out of memory");
		in->tasks = g;
		it = &in->tasks[in->ntasks++];
		*it = (struct incr_task){.pid = t->pid, .parent_uffd_slot = -1};
		if (in->tracking_valid)
			pr_info("pid %d: not tracked since the parent checkpoint (a new task): "
				"every page saved",
				t->pid);
	}
	it->start_time = start;
	it->in_dump = true;
	it->uffd = -1;
	it->pidfd = -1;
	tracked = it->tracked && c->opts->parent;
	/* the frames: a pre-dump records them, and a task tracked but not
	 * checked before the freeze is compared with them; else none is read */
	frames = c->opts->pre_dump || (tracked && !it->frames_checked);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", t->pid);
	pmfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pmfd < 0)
		return ckpt_err_errno(e, -errno, "opening %s", path);
	w = malloc(PM_WORDS * sizeof(*w));
	clean = malloc(PM_WORDS);
	if (!w || !clean)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; r >= 0 && i < t->nruns; i++) {
		const struct page_run *run = &t->runs[i];

		if (run->inherited) {
			r = split_add(&s, run->vaddr, run->nr, true, false, run->sibling, NO_PRE,
				      e);
			continue;
		}
		for (uint64_t off = 0; r >= 0 && off < run->nr; off += PM_WORDS) {
			uint64_t n = run->nr - off < PM_WORDS ? run->nr - off : PM_WORDS;
			uint64_t addr = run->vaddr + off * PG_SIZE;
			r = frames ? read_words(pmfd, w, addr, n) : 0;
			if (r < 0) {
				r = ckpt_err_errno(e, r, "reading %s at %" PRIx64, path, addr);
				break;
			}
			if (tracked && t->clean_known)
				clean_from_scan(t, addr, n, clean);
			else if (tracked)
				r = scan_clean(pmfd, t->pid, addr, n, clean, e);
			for (uint64_t j = 0, k; r >= 0 && j < n; j = k) {
				uint64_t va = addr + j * PG_SIZE;
				bool ref = false;

				/* written since the parent, copied before the freeze */
				if (tracked && it->pre.npages) {
					uint64_t avail, pre_off = NO_PRE;
					const uint64_t *pp =
					    table_span(&it->pre, va, &pcur, &pbase, &avail);

					if (pp) {
						k = classify_pre(it, w + j, clean + j, pp,
								 (uint64_t)(pp - it->pre.pfns),
								 avail < n - j ? avail : n - j,
								 &pre_off);
						it->saved += k;
						if (pre_off != NO_PRE)
							it->from_copy += k;
						r = split_add(&s, va, k, false, false, 0, pre_off,
							      e);
						k += j;
						continue;
					}
					pre_next = table_next(&it->pre, pcur);
				}
				/* a stretch of pages the parent has, frame for frame
				 * (up to the next page copied before the freeze: those
				 * were written since, whatever their frame) */
				k = j;
				if (tracked && may_ref(it, w, clean, j)) {
					uint64_t avail;
					const uint64_t *pp =
					    table_span(&it->parent, va, &cur, &base, &avail);
					uint64_t lim = j + (avail < n - j ? avail : n - j);

					if (pre_next != UINT64_MAX &&
					    lim > j + (pre_next - va) / PG_SIZE)
						lim = j + (pre_next - va) / PG_SIZE;
					while (k < lim && may_ref(it, w, clean, k) &&
					       same_frame(it, w, k, pp[k - j]))
						k++;
					ref = k > j;
				}
				/* else a stretch of pages saved (each one that might be
				 * the parent's starts the next stretch) */
				if (!ref)
					for (k = j + 1;
					     k < n && !(tracked && may_ref(it, w, clean, k)); k++)
						;
				if (ref)
					it->unchanged += k - j;
				else
					it->saved += k - j;
				r = split_add(&s, va, k - j, false, ref, 0, NO_PRE, e);
				for (uint64_t i = j; r >= 0 && c->opts->pre_dump && i < k; i++)
					r = table_add(
					    &it->mine, addr + i * PG_SIZE,
					    (w[i] & PM_PRESENT) ? (w[i] & PM_PFN_MASK) : 0, e);
			}
		}
	}
	if (r < 0) {
		free(s.runs);
		return r;
	}
	free(t->runs);
	t->runs = s.runs;
	t->nruns = s.n;
	t->runs_cap = s.cap;
	if (c->opts->parent)
		pr_info("pid %d: %" PRIu64 " pages saved (%" PRIu64
			" of them from the copy made before the freeze), %" PRIu64
			" unchanged since the parent checkpoint",
			t->pid, it->saved, it->from_copy, it->unchanged);
	t->incr_saved = it->saved;
	t->incr_unchanged = it->unchanged;
	return 0;
}

/* ---- arming the tracking (pre-dump) ----------------------------------------- */

static int remote_uffd(struct dump_task *t, int pidfd, int *ret, struct ckpt_error *e)
{
	struct rsys rs;
	struct ckpt_error tmp = {0};
	bool own = !t->rsys_open;
	long fd = -1, res;
	int r, r2 = 0;

	if (own) {
		r = rsys_init(&rs, t->pid, 0, e);
		if (r < 0)
			return r;
	} else {
		rs = t->rsys;
	}
	r = rsys_call(&rs, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY, 0, 0,
		      0, 0, 0, &fd, e);
	if (r >= 0 && fd < 0)
		r = ckpt_err_errno(e, (int)fd,
				   "pid %d: remote userfaultfd() for write tracking (needs "
				   "CONFIG_USERFAULTFD)",
				   t->pid);
	if (r >= 0) {
		*ret = (int)syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
		if (*ret < 0)
			r = ckpt_err_errno(e, -errno, "pid %d: pidfd_getfd of its userfaultfd",
					   t->pid);
		/* the program never sees it: closed in the task again */
		rsys_call(&rs, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &res, &tmp);
	}
	if (own)
		r2 = rsys_fini(&rs, r < 0 ? &tmp : e);
	else
		t->rsys = rs;
	return r < 0 ? r : r2;
}

static int uffd_api(pid_t pid, int uffd, struct ckpt_error *e)
{
	struct uffdio_api api = {.api = UFFD_API, .features = FEAT_WP_ASYNC | FEAT_WP_UNPOPULATED};

	/* "incr-no-wp-async": as on a kernel without it (tests) */
	if (ckpt_fault("incr-no-wp-async"))
		errno = EINVAL;
	if (ckpt_fault("incr-no-wp-async") || ioctl(uffd, UFFDIO_API, &api) < 0)
		return ckpt_err_errno(e, -errno,
				      "pid %d: write tracking needs userfaultfd's asynchronous "
				      "write-protect mode (UFFD_FEATURE_WP_ASYNC, Linux 6.7+), which "
				      "this kernel refused; soft-dirty is not used by ckpt",
				      pid);
	return 0;
}

/* Write-protect the present pages of [s, e): written bits start again from here. */
static int wp_range(int pmfd, pid_t pid, uint64_t s, uint64_t end, struct ckpt_error *e)
{
	struct pmscan_region vec[SCAN_VEC];
	struct pmscan_arg arg = {
	    .size = sizeof(arg),
	    .flags = PMSCAN_WP_MATCHING,
	    .start = s,
	    .end = end,
	    .vec = (uint64_t)(uintptr_t)vec,
	    .vec_len = SCAN_VEC,
	    .category_mask = PMSCAN_IS_WRITTEN,
	    .category_anyof_mask = PMSCAN_IS_PRESENT | PMSCAN_IS_SWAPPED,
	    .return_mask = PMSCAN_IS_WRITTEN,
	};

	while (arg.start < arg.end) {
		long k = ioctl(pmfd, PMSCAN_IOCTL, &arg);

		if (k < 0)
			return ckpt_err_errno(e, -errno,
					      "pid %d: PAGEMAP_SCAN (write-protect) at %" PRIx64, pid,
					      arg.start);
		if (k < SCAN_VEC || arg.walk_end >= arg.end)
			break;
		if (arg.walk_end <= arg.start)
			return ckpt_err(e, -EIO, "pid %d: PAGEMAP_SCAN made no progress at %" PRIx64,
					pid, arg.start);
		arg.start = arg.walk_end;
	}
	return 0;
}

int dump_incr_arm(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e)
{
	struct incr *in = c->incr;
	struct incr_task *it = in ? incr_task(in, t->pid) : NULL;
	_cleanup_close_ int pmfd = -1;
	char path[64];
	size_t areas = 0;
	int r;

	if (!in || !c->opts->pre_dump || !it)
		return 0;
	consume_parent(in);
	it->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
	if (it->pidfd < 0)
		return ckpt_err_errno(e, -errno, "pid %d: pidfd_open", t->pid);
	if (it->tracked && it->parent_uffd_slot >= 0 && in->old_holder_pidfd >= 0)
		it->uffd = (int)syscall(SYS_pidfd_getfd, in->old_holder_pidfd,
					it->parent_uffd_slot, 0);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", t->pid);
	pmfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pmfd < 0)
		return ckpt_err_errno(e, -errno, "opening %s", path);
again:
	if (it->uffd < 0) {
		r = remote_uffd(t, it->pidfd, &it->uffd, e);
		if (r >= 0)
			r = uffd_api(t->pid, it->uffd, e);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const Vma *v = t->mm->vmas[i];
		struct uffdio_register reg = {
		    .range = {.start = v->start, .len = v->end - v->start},
		    .mode = UFFDIO_REGISTER_MODE_WP,
		};

		if (!vma_kind_has_pages(v->kind) || !(v->flags & MAP_PRIVATE))
			continue;
		if (ioctl(it->uffd, UFFDIO_REGISTER, &reg) == 0) {
			r = wp_range(pmfd, t->pid, v->start, v->end, e);
			if (r < 0)
				return r;
			areas++;
			continue;
		}
		if (!areas && it->parent_uffd_slot >= 0) {
			/* the task called exec since: that userfaultfd belongs to
			 * the address space it left (its registration fails with
			 * ENOMEM on 6.18: the old mm is gone); a new one */
			pr_info("pid %d: a new address space since the parent checkpoint "
				"(exec): tracked anew",
				t->pid);
			close(it->uffd);
			it->uffd = -1;
			it->parent_uffd_slot = -1;
			goto again;
		}
		pr_info("pid %d: area %" PRIx64 "-%" PRIx64
			" cannot be tracked (%s): saved in full by the next dump",
			t->pid, v->start, v->end, strerror(errno));
	}
	pr_debug("pid %d: write tracking armed over %zu areas", t->pid, areas);
	return 0;
}

/* ---- the holder -------------------------------------------------------------- */

static int build_state(struct incr *in, int *ret, struct ckpt_error *e)
{
	_cleanup_close_ int fd = memfd_create("ckpt-tracking", MFD_CLOEXEC);
	struct holder_hdr h = {.magic = HOLDER_MAGIC, .ntasks = (uint32_t)in->ntasks};
	uint64_t off = sizeof(h) + in->ntasks * sizeof(struct holder_task);

	if (fd < 0)
		return ckpt_err_errno(e, -errno, "memfd_create for the tracking state");
	memcpy(h.token, in->token, TOKEN_LEN);
	for (size_t i = 0; i < in->ntasks; i++) {
		struct incr_task *it = &in->tasks[i];
		struct holder_task ht = {
		    .pid = it->pid,
		    .uffd = it->uffd >= 0 ? 4 + 2 * (int32_t)i : -1,
		    .start_time = it->start_time,
		    .nruns = it->mine.nruns,
		    .npages = it->mine.npages,
		};
		size_t rl = it->mine.nruns * sizeof(struct pfn_run), pl = it->mine.npages * 8;

		ht.runs_off = off;
		ht.pfns_off = off + rl;
		if (pwrite(fd, &ht, sizeof(ht), (off_t)(sizeof(h) + i * sizeof(ht))) !=
			(ssize_t)sizeof(ht) ||
		    (rl && pwrite(fd, it->mine.runs, rl, (off_t)off) != (ssize_t)rl) ||
		    (pl && pwrite(fd, it->mine.pfns, pl, (off_t)(off + rl)) != (ssize_t)pl))
			return ckpt_err_errno(e, -errno, "writing the tracking state");
		off += rl + pl;
	}
	if (pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return ckpt_err_errno(e, -errno, "writing the tracking state");
	*ret = TAKE_FD(fd);
	return 0;
}

/* The holder: keeps fds 3 (state), 4 + 2i (uffd of task i), 5 + 2i (its
 * pidfd), and exits once every task is gone (or on SIGTERM). */
static _Noreturn void holder_main(size_t n)
{
	/* no malloc: forked from a process that may have other threads */
	struct pollfd *p = mmap(NULL, (n ? n : 1) * sizeof(*p), PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t left = n;

	prctl(PR_SET_NAME, HOLDER_NAME);
	if (p == MAP_FAILED)
		_exit(1);
	for (size_t i = 0; i < n; i++)
		p[i] = (struct pollfd){.fd = 5 + 2 * (int)i, .events = POLLIN};
	while (left) {
		if (poll(p, n, -1) < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (p[i].fd >= 0 && p[i].revents) {
				close(p[i].fd);
				close(p[i].fd - 1);
				p[i].fd = -1;
				left--;
			}
		}
	}
	_exit(0);
}

int dump_incr_hold(struct dump_ctx *c, struct ckpt_error *e)
{
	struct incr *in = c->incr;
	_cleanup_close_ int state = -1;
	int pfd[2], sig[2] = {-1, -1};
	pid_t child;
	int r;

	if (!in || !c->opts->pre_dump)
		return 0;
	/* only the tasks of this dump: those of the parent's that are gone go */
	size_t k = 0;

	for (size_t i = 0; i < in->ntasks; i++) {
		struct incr_task *it = &in->tasks[i];

		if (!it->in_dump || it->pidfd < 0) {
			table_free(&it->parent);
			table_free(&it->mine);
			if (it->uffd >= 0)
				close(it->uffd);
			if (it->pidfd >= 0)
				close(it->pidfd);
			continue;
		}
		in->tasks[k++] = *it;
	}
	in->ntasks = k;
	if (getrandom(in->token, TOKEN_LEN, 0) != TOKEN_LEN)
		return ckpt_err_errno(e, -errno, "getrandom");
	r = build_state(in, &state, e);
	if (r < 0)
		return r;
	/* in the memfd now: the holder should not carry a copy in its heap */
	for (size_t i = 0; i < in->ntasks; i++) {
		table_free(&in->tasks[i].mine);
		table_free(&in->tasks[i].parent);
	}
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return ckpt_err_errno(e, -errno, "pipe2");
	child = fork();
	if (child < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return ckpt_err_errno(e, -errno, "fork of the tracking holder");
	}
	if (child == 0) {
		/* a grandchild of ours, orphaned at once: never a child to reap */
		int hi = state + 1, devnull;
		pid_t g;

		/* above every fd kept and above their final numbers */
		for (size_t i = 0; i < in->ntasks; i++) {
			if (in->tasks[i].uffd >= hi)
				hi = in->tasks[i].uffd + 1;
			if (in->tasks[i].pidfd >= hi)
				hi = in->tasks[i].pidfd + 1;
		}
		if (hi < 4 + 2 * (int)in->ntasks)
			hi = 4 + 2 * (int)in->ntasks;

		setsid();
		g = fork();
		if (g != 0)
			_exit(g < 0);
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		g = getpid();
		(void)!write(pfd[1], &g, sizeof(g));
		/* copies of what we keep above hi, everything else below closed,
		 * then the copies numbered from 3 (no malloc here: see holder_main) */
		int *kept = mmap(NULL, (2 + 2 * in->ntasks) * sizeof(int), PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (kept == MAP_FAILED || (kept[0] = fcntl(state, F_DUPFD, hi)) < 0)
			_exit(1);
		for (size_t i = 0; i < in->ntasks; i++) {
			int u = in->tasks[i].uffd >= 0 ? in->tasks[i].uffd : in->tasks[i].pidfd;

			kept[1 + 2 * i] = fcntl(u, F_DUPFD, hi);
			kept[2 + 2 * i] = fcntl(in->tasks[i].pidfd, F_DUPFD, hi);
			if (kept[1 + 2 * i] < 0 || kept[2 + 2 * i] < 0)
				_exit(1);
		}
		devnull = open("/dev/null", O_RDWR);
		for (int f = 0; f < 3 && devnull >= 0; f++)
			dup2(devnull, f);
		syscall(SYS_close_range, 3, (unsigned)hi - 1, 0);
		for (int k = 0; k < 1 + 2 * (int)in->ntasks; k++)
			if (dup2(kept[k], 3 + k) < 0)
				_exit(1);
		syscall(SYS_close_range, 3 + 1 + 2 * (unsigned)in->ntasks, ~0U, 0);
		if (chdir("/") < 0)
			_exit(1);
		holder_main(in->ntasks);
	}
	close(pfd[1]);
	waitpid(child, NULL, 0);
	r = (int)read(pfd[0], &in->holder_pid, sizeof(in->holder_pid));
	close(pfd[0]);
	(void)sig;
	if (r != (int)sizeof(in->holder_pid) || in->holder_pid <= 0)
		return ckpt_err(e, -EIO, "the tracking holder did not start");
	in->holder_pidfd = (int)syscall(SYS_pidfd_open, in->holder_pid, 0);
	if (in->holder_pidfd < 0 ||
	    task_start_time(in->holder_pid, &in->holder_start, NULL, 0, NULL) < 0)
		return ckpt_err(e, -EIO, "the tracking holder %d died", in->holder_pid);
	pr_debug("tracking holder %d started", in->holder_pid);
	return 0;
}

int dump_incr_inventory(struct dump_ctx *c, Inventory *inv, IncrTracking *tr,
			struct ckpt_error *e)
{
	struct incr *in = c->incr;

	(void)e;
	if (c->opts->pre_dump) {
		inv->has_pre_dump = true;
		inv->pre_dump = true;
	}
	if (!in)
		return 0;
	if (c->opts->parent) {
		inv->parent = (char *)c->opts->parent;
		inv->has_parent_inventory_crc32c = true;
		inv->parent_inventory_crc32c = in->parent_inv_crc;
	}
	if (in->holder_pid > 0) {
		tr->holder_pid = in->holder_pid;
		tr->holder_start = in->holder_start;
		tr->token.data = in->token;
		tr->token.len = TOKEN_LEN;
		inv->tracking = tr;
	}
	return 0;
}

static void stop_holder(int pidfd)
{
	if (pidfd >= 0)
		syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0);
}

void dump_incr_finish(struct dump_ctx *c, bool ok)
{
	struct incr *in = c->incr;

	if (!in)
		return;
	/*
	 * A pre-dump handed the parent's tracking over to its own holder. Any
	 * other dump only read it: a tree left running keeps it for a later
	 * --pre-dump with the same parent (ckptctl run --interval), and a
	 * killed one ends it anyway (the holder exits with the tasks).
	 */
	if (ok && in->tracking_valid && c->opts->pre_dump)
		stop_holder(in->old_holder_pidfd);
	else if (!ok)
		stop_holder(in->holder_pidfd);
}

/*
 * The dump tries again (dump_tree: the try failed with what the program
 * clears itself, the tree resumed): a try that copied before the freeze
 * used up the parent's tracking, so the next one cannot open the parent
 * again as if nothing had happened (it would find the tracking gone and
 * save every page). It goes on from what this one knew instead: the
 * parent's frames and this copy, whose pages count as written since the
 * parent; what the tree wrote meanwhile is unprotected, so read in the
 * next freeze. Everything of this try alone is reset. Returns c's incr,
 * detached, or NULL if there is nothing to carry over.
 */
struct incr *dump_incr_keep(struct dump_ctx *c)
{
	struct incr *in = c->incr;

	/* a copy cut short by an error may miss pages it protected again */
	if (!in || !in->pre_done)
		return NULL;
	for (size_t i = 0; i < in->ntasks; i++) {
		struct incr_task *it = &in->tasks[i];

		it->in_dump = false;
		it->saved = it->unchanged = it->from_copy = 0;
		table_free(&it->mine);
		if (it->uffd >= 0)
			close(it->uffd);
		if (it->pidfd >= 0)
			close(it->pidfd);
		it->uffd = it->pidfd = -1;
	}
	c->incr = NULL;
	return in;
}

void dump_incr_free(struct dump_ctx *c)
{
	struct incr *in = c->incr;

	if (!in)
		return;
	for (size_t i = 0; i < in->ntasks; i++) {
		table_free(&in->tasks[i].parent);
		table_free(&in->tasks[i].mine);
		table_free(&in->tasks[i].pre);
		if (in->tasks[i].uffd >= 0)
			close(in->tasks[i].uffd);
		if (in->tasks[i].pidfd >= 0)
			close(in->tasks[i].pidfd);
	}
	free(in->tasks);
	thp_unmap(in->pre_buf, PRECOPY_MAX);
	free(in->pre_crc);
	if (in->parent_fd >= 0)
		close(in->parent_fd);
	if (in->old_holder_pidfd >= 0)
		close(in->old_holder_pidfd);
	if (in->old_memfd >= 0)
		close(in->old_memfd);
	if (in->holder_pidfd >= 0)
		close(in->holder_pidfd);
	free(in);
	c->incr = NULL;
}
