/* SPDX-License-Identifier: MIT */
/*
 * A writer thread for page data. The dumper fills small buffers (from the
 * task with process_vm_readv, from a pipe, from a shared memory object),
 * checksums each while it is still in its cache, and queues it; the thread
 * writes the queued buffers to the pages image in order. The buffers are
 * few and small (they stay in cache, and the dumper's memory does not grow
 * with the task), and used round robin: buffer k is handed out again only
 * once the thread has written it, so a checksum always covers exactly the
 * bytes written (the dump's own check relies on that: docs/images.md).
 * Or without a thread (page_writer_start_inline): the dump's lanes read and
 * write on one CPU each (dump_pages.c).
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "image.h"

/* bytes per buffer, and buffers in the ring */
#define PAGE_WRITER_BUF (1u << 20)
#define PAGE_WRITER_NBUF 4

/*
 * The buffers: PAGE_WRITER_NBUF of PAGE_WRITER_BUF bytes. A writer maps its
 * own, or is given a ring to use while it runs: a dump keeps one for the
 * writers of all its tasks (one at a time), faulted in before the tree is
 * frozen, so that no task's copy pays for fresh memory (first touch).
 */
struct page_ring {
	char *bufs;
	/* bytes of each buffer faulted in so far (on first use: a small
	 * task's pages fault in a few KiB, not the whole ring) */
	size_t populated[PAGE_WRITER_NBUF];
};

/* Map a ring; with populate, fault all of it in now. */
int page_ring_init(struct page_ring *r, bool populate, struct ckpt_error *e);
/* Unmap it (safe on a ring never mapped). */
void page_ring_fini(struct page_ring *r);

struct page_writer {
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct img *img;	/* the pages image, written only by the thread */
	struct page_ring *ring; /* &own_ring, or the caller's */
	struct page_ring own_ring;
	struct {
		size_t len;
		uint32_t crc; /* the image's checksum once this buffer is written */
	} jobs[PAGE_WRITER_NBUF];
	uint64_t submitted, written; /* buffer k is bufs[k % PAGE_WRITER_NBUF] */
	uint32_t crc;		     /* the image's checksum after the last submitted buffer */
	bool stop;
	bool inline_write; /* no thread: submit writes (page_writer_start_inline) */
	int err; /* first write error, reported by the next call */
	struct ckpt_error e;
	double t_write, t_wait; /* seconds writing, seconds the dumper waited */
};

/* ring: the buffers to use (the caller's, not used by another writer until
 * this one is stopped), or NULL to map its own. */
int page_writer_start(struct page_writer *w, struct img *img, struct page_ring *ring,
		      struct ckpt_error *e);
/*
 * The same without a thread: page_writer_submit() writes the buffer itself
 * before it returns. For a writer whose caller has a CPU of its own to
 * fill and write on (the dump's lanes: as many as CPUs, each reading,
 * checksumming and writing its part; a thread more each would only take
 * turns with them).
 */
int page_writer_start_inline(struct page_writer *w, struct img *img, struct page_ring *ring,
			     struct ckpt_error *e);
/* The next buffer to fill (PAGE_WRITER_BUF bytes): waits until it is written. */
int page_writer_buf(struct page_writer *w, char **ret, struct ckpt_error *e);
/* The same, for at most len bytes (only those are faulted in, if new). */
int page_writer_buf_len(struct page_writer *w, size_t len, char **ret, struct ckpt_error *e);
/* Queue the buffer page_writer_buf() returned, filled with len bytes. */
int page_writer_submit(struct page_writer *w, size_t len, struct ckpt_error *e);
/*
 * Inline writers only: checksum and write the pieces iov[0..n) in order, in
 * one writev (iov is consumed), straight from where they are: the page
 * buffer (filled up to where page_writer_buf_len said) and the caller's own
 * memory (pages a dump copied before its freeze, dump_incr_precopy), which
 * is then not copied into the buffer first. crcs[i], if crcs and it are not
 * NULL: the checksums of piece i's pages (crc32c(0, page, 4096) each,
 * computed when the pages were copied), which are then not read again.
 */
int page_writer_writev(struct page_writer *w, struct iovec *iov, const uint32_t *const *crcs,
		       size_t n, struct ckpt_error *e);
/* Wait until everything queued is written, stop and join the thread, free
 * its own buffers (safe on a writer that never started; e may be NULL). */
int page_writer_stop(struct page_writer *w, struct ckpt_error *e);
