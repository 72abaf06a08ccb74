/* SPDX-License-Identifier: MIT */
/*
 * Memory contents: the pages dump_mm.c found (the task's runs) copied into
 * pagemap-PID.img and pages-PID.img, in pagemap order, then the content of
 * the shared memory objects the task owns. Copied with batched
 * process_vm_readv into small buffers, checksummed and written by a writer
 * thread (page_writer.c), or by lanes side by side into parts of the pages
 * image; with --leave-running moved into pipes instead (page_pipes.c).
 */
#define LOG_PREFIX "dump: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "crc32c.h"
#include "dump_incr.h"
#include "dump_internal.h"
#include "fault.h"
#include "kinds/fd_kind.h"
#include "log.h"
#include "mm_cow.h"
#include "page_pipes.h"
#include "page_writer.h"
#include "pagemap.pb-c.h"

#define PG_SIZE 4096UL
/* remote ranges per process_vm_readv */
#define IOV_BATCH 1024
/* --leave-running: bytes queued per flush into the pipes (one vmsplice
 * each, a remote syscall: few and large) */
#define PAGE_PIPE_FLUSH (64u << 20)
/* trees larger than this close their page images right away */
#define OPEN_PAGES_MAX 256

/* Copies queued ranges of the task into a buffer of the writer, which
 * writes it to the pages image while the next one is filled. */
struct page_copy {
	struct dump_ctx *c;
	pid_t pid;
	struct page_writer own_writer;
	struct page_writer *writer; /* &own_writer, or the pipes' */
	struct page_pipes *pipes;   /* --leave-running: ranges go into pipes */
	size_t flush_bytes;	    /* queue at most this much per flush */
	struct iovec remote[IOV_BATCH];
	/* per range: where the bytes are in our own memory (a copy made before
	 * the freeze), or NULL to read them from the task */
	const char *local[IOV_BATCH];
	const uint32_t *local_crc[IOV_BATCH]; /* and their pages' checksums */
	/* an inline writer's pieces to write (copy_flush), with the
	 * checksums of their pages where known (else NULL) */
	struct iovec out[IOV_BATCH];
	const uint32_t *out_crc[IOV_BATCH];
	size_t n;      /* queued ranges */
	size_t bytes;  /* queued bytes (at most one buffer) */
	double t_read; /* seconds, for the debug log */
	/* the task's data offset this copy starts at, and the bytes it took
	 * since (copied, or queued into pipes) */
	uint64_t data_base, copied;
};

/*
 * Append [p, p + len) (its pages' checksums at crcs, or NULL) to the
 * pieces of pc->out[0..n), joined to the last if it follows it, checksums
 * and all: the new n.
 */
static size_t out_add(struct page_copy *pc, size_t n, const char *p, size_t len,
		      const uint32_t *crcs)
{
	if (n) {
		struct iovec *last = &pc->out[n - 1];
		const uint32_t *lc = pc->out_crc[n - 1];

		if ((const char *)last->iov_base + last->iov_len == p &&
		    (crcs ? lc && lc + last->iov_len / PG_SIZE == crcs : !lc)) {
			last->iov_len += len;
			return n;
		}
	}
	pc->out[n] = (struct iovec){.iov_base = (void *)p, .iov_len = len};
	pc->out_crc[n] = crcs;
	return n + 1;
}

static int copy_flush(struct page_copy *pc, struct ckpt_error *e)
{
	struct iovec local = {.iov_len = pc->bytes};
	bool gather = pc->writer->inline_write;
	size_t nout = 0;
	double t0, t1;
	char *buf;
	ssize_t got;
	int r;

	if (!pc->n)
		return 0;
	if (pc->pipes) {
		/* copies made before the freeze are a killing dump's only */
		for (size_t i = 0; i < pc->n; i++)
			if (pc->local[i])
				return ckpt_err(e, -EINVAL,
						"pid %d: pages copied before the "
						"freeze cannot go into pipes",
						pc->pid);
		r = page_pipes_add(pc->pipes, pc->remote, pc->n, e);
		if (r < 0)
			return r;
		pc->copied += pc->bytes;
		pc->n = 0;
		pc->bytes = 0;
		return 0;
	}
	r = page_writer_buf_len(pc->writer, pc->bytes, &buf, e);
	if (r < 0)
		return r;
	t0 = ckpt_monotonic_seconds();
	/*
	 * Consecutive ranges of the task in one call. Our own copies are
	 * copied into the buffer, or, for an inline writer (lanes), written
	 * from where they are: the buffer and they are the pieces of one
	 * writev, in order.
	 */
	for (size_t i = 0, k; i < pc->n; i = k) {
		size_t len = 0;

		if (pc->local[i] && gather) {
			nout = out_add(pc, nout, pc->local[i], pc->remote[i].iov_len,
				       pc->local_crc[i]);
			k = i + 1;
			continue;
		}
		if (pc->local[i]) {
			memcpy(buf, pc->local[i], pc->remote[i].iov_len);
			buf += pc->remote[i].iov_len;
			k = i + 1;
			continue;
		}
		for (k = i; k < pc->n && !pc->local[k]; k++)
			len += pc->remote[k].iov_len;
		local = (struct iovec){.iov_base = buf, .iov_len = len};
		got = process_vm_readv(pc->pid, &local, 1, pc->remote + i, k - i, 0);
		if (got != (ssize_t)len) {
			/* an area the task can't read (PROT_NONE...) or a fault: take
			 * the ranges one by one, remote_read falls back to
			 * /proc/PID/mem */
			char *dst = buf;

			for (size_t j = i; j < k; j++) {
				r = remote_read(pc->pid, (uintptr_t)pc->remote[j].iov_base, dst,
						pc->remote[j].iov_len, e);
				if (r < 0)
					return r;
				dst += pc->remote[j].iov_len;
			}
		}
		if (gather)
			nout = out_add(pc, nout, buf, len, NULL);
		buf += len;
	}
	t1 = ckpt_monotonic_seconds();
	r = gather ? page_writer_writev(pc->writer, pc->out, pc->out_crc, nout, e)
		   : page_writer_submit(pc->writer, pc->bytes, e);
	if (r < 0)
		return r;
	pc->t_read += t1 - t0;
	pc->copied += pc->bytes;
	pc->n = 0;
	pc->bytes = 0;
	return 0;
}

/* Queue [addr, addr + len) of the task; src: its bytes in our own memory
 * (read from there, not from the task), or NULL; src_crc: their pages'
 * checksums, or NULL. */
static int copy_range(struct page_copy *pc, uint64_t addr, uint64_t len, const char *src,
		      const uint32_t *src_crc, struct ckpt_error *e)
{
	while (len) {
		uint64_t room = pc->flush_bytes - pc->bytes;
		uint64_t n = len < room ? len : room;
		int r;

		pc->remote[pc->n].iov_base = (void *)(uintptr_t)addr;
		pc->remote[pc->n].iov_len = n;
		pc->local[pc->n] = src;
		pc->local_crc[pc->n] = src_crc;
		pc->n++;
		pc->bytes += n;
		addr += n;
		len -= n;
		if (src)
			src += n;
		if (src_crc)
			src_crc += n / PG_SIZE;
		if (pc->n == IOV_BATCH || pc->bytes == pc->flush_bytes) {
			r = copy_flush(pc, e);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* One run of the object: read with pread into the free buffer, then written. */
static int shmem_copy_run(struct page_copy *pc, int fd, uint64_t off, uint64_t len, uint32_t *crc,
			  const char *name, struct ckpt_error *e)
{
	while (len) {
		size_t n = len < PAGE_WRITER_BUF ? (size_t)len : PAGE_WRITER_BUF, got = 0;
		char *buf;
		int r;

		r = page_writer_buf_len(pc->writer, n, &buf, e);
		if (r < 0)
			return r;
		while (got < n) {
			ssize_t k = pread(fd, buf + got, n - got, (off_t)(off + got));

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return ckpt_err_errno(e, -errno, "reading %s at offset %" PRIu64,
						      name, off + got);
			if (k == 0)
				break; /* the page that holds the end of the object */
			got += (size_t)k;
		}
		memset(buf + got, 0, n - got);
		*crc = crc32c(*crc, buf, n);
		r = page_writer_submit(pc->writer, n, e);
		if (r < 0)
			return r;
		pc->copied += n;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * The data of the object (not its holes: lseek SEEK_DATA/SEEK_HOLE), read
 * from the object itself, so pages no area of the task maps are not missed.
 */
static int shmem_copy(struct page_copy *pc, struct dump_shmem *ds, uint64_t data_off,
		      struct ckpt_error *e)
{
	FileEntry *fe = pc->c->files[ds->file_idx].fe;
	ShmemEntry *se = fe->shmem;
	uint64_t end = (se->size + PG_SIZE - 1) & ~(PG_SIZE - 1), pos = 0;
	_cleanup_close_ int fd = -1;
	uint32_t crc = 0;
	int r;

	fd = file_open_noatime(ds->src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOATIME);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "opening %s to read %s", ds->src, fe->path);
	se->has_pages_pid = se->has_pages_off = true;
	se->pages_pid = (uint32_t)pc->pid;
	se->pages_off = data_off;
	while (pos < end) {
		off_t d = lseek(fd, (off_t)pos, SEEK_DATA), h;
		ShmemRun *run, **runs;

		if (d < 0 && errno == ENXIO)
			break;
		if (d < 0)
			return ckpt_err_errno(e, -errno, "%s: lseek(SEEK_DATA)", fe->path);
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			return ckpt_err_errno(e, -errno, "%s: lseek(SEEK_HOLE)", fe->path);
		d = (off_t)((uint64_t)d & ~(PG_SIZE - 1));
		h = (off_t)(((uint64_t)h + PG_SIZE - 1) & ~(PG_SIZE - 1));
		if ((uint64_t)h > end)
			h = (off_t)end;
		if (h <= d)
			break;
		run = calloc(1, sizeof(*run));
		runs = realloc(se->runs, (se->n_runs + 1) * sizeof(*runs));
		if (!run || !runs) {
			free(run);
			if (runs)
				se->runs = runs;
			return ckpt_err(e, -ENOMEM, "out of memory");
		}
		shmem_run__init(run);
		run->offset = (uint64_t)d;
		run->len = (uint64_t)(h - d);
		se->runs = runs;
		se->runs[se->n_runs++] = run;
		r = shmem_copy_run(pc, fd, run->offset, run->len, &crc, fe->path, e);
		if (r < 0)
			return r;
		pos = (uint64_t)h;
	}
	se->has_content_crc32c = true;
	se->content_crc32c = crc;
	pr_debug("pid %d: %s: %zu runs saved", pc->pid, fe->path, se->n_runs);
	return 0;
}

/* After the task's own pages (pc copied the last of them): the objects it showed first. */
static int shmem_copy_owned(struct page_copy *pc, struct ckpt_error *e)
{
	for (size_t i = 0; i < pc->c->nshmem; i++) {
		struct dump_shmem *ds = &pc->c->shmem[i];
		const ShmemEntry *se = pc->c->files[ds->file_idx].fe->shmem;
		int r;

		if (ds->owner != pc->pid || !se->content_saved)
			continue;
		r = copy_flush(pc, e);
		if (r >= 0)
			r = shmem_copy(pc, ds, pc->data_base + pc->copied, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * --leave-running: can the task's pages wait in pipes while it runs? Only
 * if every page to save is readable by the task (vmsplice runs in it) and
 * made copy-on-write by a fork (not in MADV_DONTFORK or MADV_WIPEONFORK
 * areas), and if it owns no shared memory with content (shared pages are
 * not made copy-on-write: they are written while it is frozen), nor an
 * io_uring instance with registered buffers (their pages are pinned: a fork
 * does not make them copy-on-write, and the ring writes them in place).
 */
static bool can_use_pipes(const struct dump_ctx *c, const struct dump_task *t)
{
	if (!c->opts->leave_running || ckpt_fault("page-pipes"))
		return false;
	for (size_t i = 0; i < t->nfds; i++)
		for (size_t k = 0; k < c->nfiles; k++)
			if (c->files[k].fe->id == t->fds[i]->id && c->files[k].fe->io_uring &&
			    c->files[k].fe->io_uring->n_bufs)
				return false;
	for (size_t i = 0; i < c->nshmem && !c->opts->pre_dump; i++)
		if (c->shmem[i].owner == t->pid &&
		    c->files[c->shmem[i].file_idx].fe->shmem->content_saved)
			return false;
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const Vma *v = t->mm->vmas[i];

		if (!vma_kind_has_pages(v->kind))
			continue;
		if (!(v->prot & PROT_READ) || vma_vmflag(v, "dc") || vma_vmflag(v, "wf"))
			return false;
	}
	return true;
}

/*
 * Lanes. One writer fills a tmpfs file at about the rate one CPU copies
 * (the file's lock is held while the data is copied in), so a task with
 * LANE_MIN_BYTES of page data or more has it copied and written in parts
 * side by side, one lane per part on as many CPUs (at most LANES_MAX): a
 * lane reads its share of the task's pages (process_vm_readv), checksums it
 * and writes it into the lane's part of the pages image itself (image.h:
 * the task's data is the parts' concatenation); pages copied before the
 * freeze (dump_incr_precopy) are written from that copy, not copied into
 * the lane's buffer first. The first lane runs on the dumper's thread;
 * each other on a thread of its own. Pages that wait in pipes
 * (--leave-running) take one lane.
 *
 * Below LANE_MIN_BYTES the threads and files cost about what they save (a
 * full dump of 32 MiB took as long with two lanes as with one). Storage
 * reserved ahead (dump_incr_reserve: a final dump's pages, written in its
 * freeze) takes lanes from LANE_MIN_RESERVED: its writes are memory copies
 * only, which two CPUs halve (the bench's final dump of 30 MiB: 7 -> 5 ms).
 */
#define LANE_MIN_BYTES (64ULL << 20)
#define LANE_MIN_RESERVED (8ULL << 20)
#define LANES_MAX 4

struct lane {
	struct page_copy pc;
	const struct dump_task *t;
	uint64_t to; /* the lane copies data bytes [pc.data_base, to) of the task */
	struct img *img;
	pthread_t thread;
	bool started;
	int r;
	struct ckpt_error e;
};

unsigned dump_pages_lanes(uint64_t data_bytes, bool reserved)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (ckpt_fault("pages-lanes"))
		return LANES_MAX;
	if (data_bytes < (reserved ? LANE_MIN_RESERVED : LANE_MIN_BYTES) || cpus < 2)
		return 1;
	return cpus > LANES_MAX ? LANES_MAX : (unsigned)cpus;
}

/*
 * How many lanes for the task's data_bytes of page data: one for pipes; as
 * many as parts have storage reserved (dump_incr_reserve: a killing dump
 * with --parent, written while frozen into memory given ahead); else
 * dump_pages_lanes.
 */
static unsigned lanes_for(const struct dump_ctx *c, const struct dump_task *t, uint64_t data_bytes)
{
	unsigned reserved = img_reserved(c->dir, IMG_PAGES, t->pid);

	if (t->pipes)
		return 1;
	return reserved ? reserved : dump_pages_lanes(data_bytes, false);
}

/* Data bytes the task's runs save (not inherited, not in a parent). */
static uint64_t runs_data_bytes(const struct dump_task *t)
{
	uint64_t n = 0;

	for (size_t i = 0; i < t->nruns; i++)
		if (!t->runs[i].inherited && !t->runs[i].in_parent)
			n += (uint64_t)t->runs[i].nr * PG_SIZE;
	return n;
}

/* Copy the task's data bytes [l->pc.data_base, l->to), in run order. */
static int lane_copy(struct lane *l, struct ckpt_error *e)
{
	struct page_copy *pc = &l->pc;
	uint64_t at = 0, from = pc->data_base;
	int r = 0;

	for (size_t i = 0; r >= 0 && i < l->t->nruns && at < l->to; i++) {
		const struct page_run *run = &l->t->runs[i];
		uint64_t len = (uint64_t)run->nr * PG_SIZE, lo, hi;
		const char *pre;

		if (run->inherited || run->in_parent)
			continue;
		lo = from > at ? from : at;
		hi = l->to < at + len ? l->to : at + len;
		if (lo < hi && run->precopied) {
			pre = dump_incr_precopy_data(pc->c, run->pre_off);
			r = copy_range(
			    pc, run->vaddr + (lo - at), hi - lo, pre + (lo - at),
			    dump_incr_precopy_crcs(pc->c, run->pre_off) + (lo - at) / PG_SIZE, e);
		} else if (lo < hi) {
			r = copy_range(pc, run->vaddr + (lo - at), hi - lo, NULL, NULL, e);
		}
		at += len;
	}
	if (r >= 0)
		r = copy_flush(pc, e);
	return r;
}

static void *lane_main(void *arg)
{
	struct lane *l = arg;

	l->r = lane_copy(l, &l->e);
	return NULL;
}

static int dump_pages(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e)
{
	_cleanup_img_ struct img *pagemap = NULL, *pages = NULL;
	_cleanup_free_ struct lane *lanes = NULL;
	uint64_t data = runs_data_bytes(t);
	struct page_copy *pc;
	unsigned n;
	int r;

	if (can_use_pipes(c, t)) {
		t->pipes = calloc(1, sizeof(*t->pipes));
		if (!t->pipes)
			return ckpt_err(e, -ENOMEM, "out of memory");
	}
	n = lanes_for(c, t, data);
	lanes = calloc(n, sizeof(*lanes));
	if (!lanes)
		return ckpt_err(e, -ENOMEM, "out of memory");
	r = dump_img_create(c, IMG_PAGEMAP, t->pid, &pagemap, e);
	for (unsigned k = 0; r >= 0 && k < n; k++) {
		struct lane *l = &lanes[k];

		l->t = t;
		l->pc.c = c;
		l->pc.pid = t->pid;
		l->pc.writer = &l->pc.own_writer;
		l->pc.flush_bytes = PAGE_WRITER_BUF;
		/* page-aligned shares; the last lane takes the rest */
		l->pc.data_base = data / n / PG_SIZE * PG_SIZE * k;
		l->to = k + 1 < n ? data / n / PG_SIZE * PG_SIZE * (k + 1) : data;
		r = dump_pages_create(c, t->pid, k, n, k ? &l->img : &pages, e);
	}
	if (r < 0)
		goto out;
	pc = &lanes[n - 1].pc; /* the one that copies the last bytes, then shared memory */
	if (t->pipes) {
		r = page_pipes_start(t->pipes, t, pages, e);
		pc->pipes = t->pipes;
		pc->writer = &t->pipes->writer;
		pc->flush_bytes = PAGE_PIPE_FLUSH;
	}
	/* the first lane writes through the dump's ring, faulted in once */
	for (unsigned k = 0; r >= 0 && !t->pipes && k < n; k++)
		r = (n > 1 ? page_writer_start_inline : page_writer_start)(
		    lanes[k].pc.writer, k ? lanes[k].img : pages, k ? NULL : c->ring, e);
	/* the pagemap: a run's entry, its data (none if inherited or in a parent) next */
	for (size_t i = 0; r >= 0 && i < t->nruns; i++) {
		const struct page_run *run = &t->runs[i];
		PagemapEntry pe = PAGEMAP_ENTRY__INIT;

		pe.vaddr = run->vaddr;
		pe.nr_pages = run->nr;
		if (run->inherited)
			pe.has_inherited = pe.inherited = true;
		if (run->sibling) {
			pe.has_sibling = true;
			pe.sibling = (uint32_t)run->sibling;
		}
		if (run->in_parent)
			pe.has_in_parent = pe.in_parent = true;
		r = img_write_msg(pagemap, &pe.base, e);
	}
	for (unsigned k = 1; r >= 0 && k < n; k++) {
		int err = pthread_create(&lanes[k].thread, NULL, lane_main, &lanes[k]);

		if (err)
			r = ckpt_err_errno(e, -err, "pid %d: starting a page copy thread", t->pid);
		lanes[k].started = !err;
	}
	if (r >= 0)
		r = lane_copy(&lanes[0], e);
	for (unsigned k = 1; k < n; k++) {
		if (!lanes[k].started)
			continue;
		pthread_join(lanes[k].thread, NULL);
		if (r >= 0 && lanes[k].r < 0) {
			*e = lanes[k].e;
			r = lanes[k].r;
		}
	}
	/* a pre-dump saves no shared memory: every dump saves it in full */
	if (r >= 0 && !pc->pipes && !c->opts->pre_dump)
		r = shmem_copy_owned(pc, e);
	if (r >= 0 && pc->pipes)
		r = page_pipes_seal(pc->pipes, e);
	/* the threads must be gone before the images are closed, error or not
	 * (the pipes' writer goes on until the pipes are written) */
	for (unsigned k = 0; k < n && !t->pipes; k++) {
		int r2 = page_writer_stop(lanes[k].pc.writer, r < 0 ? NULL : e);

		if (r >= 0 && r2 < 0)
			r = r2;
	}
	if (r < 0)
		goto out;
	t->pages_bytes = 0;
	for (unsigned k = 0; k < n; k++)
		t->pages_bytes += lanes[k].pc.copied;
	c->pages_bytes += t->pages_bytes;
	pr_debug("pid %d: %" PRIu64
		 " bytes of pages%s in %u part%s: %.3f s reading, %.3f s writing",
		 t->pid, t->pages_bytes, pc->pipes ? " moved into pipes" : "", n, n > 1 ? "s" : "",
		 lanes[0].pc.t_read, lanes[0].pc.writer->t_write);
	t->pagemap_img = TAKE_PTR(pagemap);
	t->pages_img = TAKE_PTR(pages);
	for (unsigned k = 1; k < n; k++)
		t->pages_parts[k - 1] = TAKE_PTR(lanes[k].img);
	/* closing fsyncs: keep that out of the freeze when the tree is to be
	 * resumed, but don't hold two fds per task for huge trees */
	if (!t->pipes && (!c->opts->leave_running || c->ntasks > OPEN_PAGES_MAX))
		return dump_close_pages(t, e);
	return 0;
out:
	for (unsigned k = 1; k < n; k++)
		img_close(lanes[k].img);
	return r;
}

int dump_close_pages(struct dump_task *t, struct ckpt_error *e)
{
	int r = 0;

	if (t->pipes) {
		/* the task runs again: its pages wait in the pipes */
		r = page_pipes_write(t->pipes, e);
		page_pipes_free(t->pipes);
		free(t->pipes);
		t->pipes = NULL;
		if (r < 0)
			return r;
	}
	if (t->pagemap_img)
		r = img_close_write(TAKE_PTR(t->pagemap_img), e);
	if (r >= 0 && t->pages_img)
		r = img_close_write(TAKE_PTR(t->pages_img), e);
	for (size_t k = 0; r >= 0 && k < ARRAY_SIZE(t->pages_parts) && t->pages_parts[k]; k++)
		r = img_close_write(TAKE_PTR(t->pages_parts[k]), e);
	return r;
}

int dump_task_pages(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e)
{
	return dump_pages(c, t, e); /* the caller names the pid */
}
