/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "pages: "

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "clock.h"
#include "crc32c.h"
#include "log.h"
#include "page_writer.h"
#include "thp.h"

/* the pages whose checksums page_writer_writev is given */
#define PG_SIZE 4096UL

/* The buffer of the k-th submission: round robin, or always the first
 * where submit writes it itself (inline: the others are never touched) */
static size_t slot(const struct page_writer *w, uint64_t k)
{
	return w->inline_write ? 0 : (size_t)(k % PAGE_WRITER_NBUF);
}

static char *buf_of(struct page_writer *w, uint64_t k)
{
	return w->ring->bufs + slot(w, k) * (size_t)PAGE_WRITER_BUF;
}

int page_ring_init(struct page_ring *r, bool populate, struct ckpt_error *e)
{
	size_t len = (size_t)PAGE_WRITER_NBUF * PAGE_WRITER_BUF;

	memset(r, 0, sizeof(*r));
	/* in huge pages: the data passes through each byte of the ring, and
	 * 4 KiB pages would cost a first access each (lib/thp.h) */
	r->bufs = thp_map(len);
	if (!r->bufs)
		return ckpt_err_errno(e, -errno, "allocating %zu KiB of page buffers", len >> 10);
	if (populate && madvise(r->bufs, len, MADV_POPULATE_WRITE) == 0) {
		volatile char *v = r->bufs;

		/* and touched from user mode: on these VMs the first access of
		 * a page from user mode costs apart from the kernel's (~6 us) */
		for (size_t i = 0; i < len; i += 4096)
			v[i] = 0;
		for (size_t k = 0; k < PAGE_WRITER_NBUF; k++)
			r->populated[k] = PAGE_WRITER_BUF;
	}
	return 0;
}

void page_ring_fini(struct page_ring *r)
{
	thp_unmap(r->bufs, (size_t)PAGE_WRITER_NBUF * PAGE_WRITER_BUF);
	memset(r, 0, sizeof(*r));
}

static void *writer_main(void *arg)
{
	struct page_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->written == w->submitted && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->written == w->submitted)
			break;
		uint64_t k = w->written;
		size_t len = w->jobs[k % PAGE_WRITER_NBUF].len;
		uint32_t crc = w->jobs[k % PAGE_WRITER_NBUF].crc;
		bool failed = w->err < 0;

		pthread_mutex_unlock(&w->lock);
		double t0 = ckpt_monotonic_seconds();
		struct ckpt_error e = {0};
		/* after a failure the rest is dropped: the dump fails anyway */
		int r = failed ? 0 : img_write_pages_summed(w->img, buf_of(w, k), len, crc, &e);

		pthread_mutex_lock(&w->lock);
		w->t_write += ckpt_monotonic_seconds() - t0;
		if (r < 0 && !w->err) {
			w->err = r;
			w->e = e;
		}
		w->written++;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Start a writer; with a thread of its own unless inline_write. */
static int start(struct page_writer *w, struct img *img, struct page_ring *ring, bool inline_write,
		 struct ckpt_error *e)
{
	int r;

	memset(w, 0, sizeof(*w));
	w->img = img;
	w->crc = img_crc(img);
	w->ring = ring;
	w->inline_write = inline_write;
	if (!ring) {
		/* faulted in as used, a buffer's length at once (page_writer_buf_len) */
		r = page_ring_init(&w->own_ring, false, e);
		if (r < 0)
			return r;
		w->ring = &w->own_ring;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	r = inline_write ? 0 : pthread_create(&w->thread, NULL, writer_main, w);
	if (r) {
		page_ring_fini(&w->own_ring);
		w->ring = NULL;
		return ckpt_err_errno(e, -r, "starting the page writer thread");
	}
	w->started = true;
	return 0;
}

int page_writer_start(struct page_writer *w, struct img *img, struct page_ring *ring,
		      struct ckpt_error *e)
{
	return start(w, img, ring, false, e);
}

int page_writer_start_inline(struct page_writer *w, struct img *img, struct page_ring *ring,
			     struct ckpt_error *e)
{
	return start(w, img, ring, true, e);
}

/* Called with the lock held. */
static int report(struct page_writer *w, struct ckpt_error *e)
{
	if (w->err < 0 && e)
		*e = w->e;
	return w->err;
}

int page_writer_buf(struct page_writer *w, char **ret, struct ckpt_error *e)
{
	return page_writer_buf_len(w, PAGE_WRITER_BUF, ret, e);
}

int page_writer_buf_len(struct page_writer *w, size_t len, char **ret, struct ckpt_error *e)
{
	double t0 = ckpt_monotonic_seconds();
	size_t k = slot(w, w->submitted);
	int r;

	pthread_mutex_lock(&w->lock);
	while (w->submitted - w->written >= PAGE_WRITER_NBUF)
		pthread_cond_wait(&w->cond, &w->lock);
	r = report(w, e);
	w->t_wait += ckpt_monotonic_seconds() - t0;
	pthread_mutex_unlock(&w->lock);
	if (r < 0)
		return r;
	*ret = buf_of(w, w->submitted);
	/* in one call: cheaper than first-touch faults page by page (the
	 * copy would fault them anyway if this fails) */
	len = (len + 4095) & ~(size_t)4095;
	if (len > PAGE_WRITER_BUF)
		len = PAGE_WRITER_BUF;
	if (len > w->ring->populated[k]) {
		madvise(*ret + w->ring->populated[k], len - w->ring->populated[k],
			MADV_POPULATE_WRITE);
		w->ring->populated[k] = len;
	}
	return 0;
}

/* An inline writer's write of the pieces iov[0..n), w->crc their checksum with the image's. */
static int write_now(struct page_writer *w, struct iovec *iov, size_t n, struct ckpt_error *e)
{
	double t0 = ckpt_monotonic_seconds();
	int r = w->err < 0 ? w->err : img_writev_pages_summed(w->img, iov, n, w->crc, e);

	w->t_write += ckpt_monotonic_seconds() - t0;
	if (r < 0 && !w->err) {
		w->err = r;
		w->e = *e;
	}
	w->submitted++;
	w->written++;
	return r;
}

int page_writer_submit(struct page_writer *w, size_t len, struct ckpt_error *e)
{
	uint64_t k = w->submitted;
	int r;

	/* here, on the thread that filled the buffer: the data is in its cache */
	w->crc = crc32c(w->crc, buf_of(w, k), len);
	if (w->inline_write)
		return write_now(w, &(struct iovec){.iov_base = buf_of(w, k), .iov_len = len}, 1,
				 e);
	pthread_mutex_lock(&w->lock);
	r = report(w, e);
	if (r >= 0) {
		w->jobs[k % PAGE_WRITER_NBUF].len = len;
		w->jobs[k % PAGE_WRITER_NBUF].crc = w->crc;
		w->submitted++;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return r;
}

int page_writer_writev(struct page_writer *w, struct iovec *iov, const uint32_t *const *crcs,
		       size_t n, struct ckpt_error *e)
{
	if (!w->inline_write)
		return ckpt_err(e, -EINVAL,
				"page writer: pieces are written by an inline writer only");
	for (size_t i = 0; i < n; i++) {
		if (!crcs || !crcs[i]) {
			w->crc = crc32c(w->crc, iov[i].iov_base, iov[i].iov_len);
			continue;
		}
		for (size_t p = 0; p < iov[i].iov_len / PG_SIZE; p++)
			w->crc = crc32c_extend_page(w->crc, crcs[i][p]);
	}
	return write_now(w, iov, n, e);
}

int page_writer_stop(struct page_writer *w, struct ckpt_error *e)
{
	int r;

	if (!w->started)
		return 0;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (!w->inline_write)
		pthread_join(w->thread, NULL);
	r = report(w, e);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	page_ring_fini(&w->own_ring);
	w->ring = NULL;
	w->started = false;
	pr_debug("%.3f s writing page data, %.3f s waiting for a buffer", w->t_write, w->t_wait);
	return r;
}
