/* SPDX-License-Identifier: MIT */
/*
 * A writer thread for page data: while it writes one buffer to the pages
 * image (copy into tmpfs/page cache plus the image checksum), the dumper
 * fills the other one from the task with process_vm_readv. On two cores this
 * overlaps the two copies instead of adding them up.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "image.h"

struct page_writer {
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct img *img; /* the pages image, written only by the thread */
	const void *job; /* buffer being (or to be) written, NULL when idle */
	size_t job_len;
	bool stop;
	int err; /* first write error, reported by submit/drain */
	struct ckpt_error e;
	double t_write; /* seconds spent writing, for the debug log */
};

int page_writer_start(struct page_writer *w, struct img *img, struct ckpt_error *e);
/* Queue buf for writing; waits until the previous buffer is written, so
 * the caller may reuse that one. Returns the first write error, if any. */
int page_writer_submit(struct page_writer *w, const void *buf, size_t len, struct ckpt_error *e);
/* Wait until everything submitted is written. */
int page_writer_drain(struct page_writer *w, struct ckpt_error *e);
/* Drain and join the thread (safe on a writer that never started). */
int page_writer_stop(struct page_writer *w, struct ckpt_error *e);
