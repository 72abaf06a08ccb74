/* SPDX-License-Identifier: MIT */
/*
 * A task's pages moved into pipes while it is frozen (vmsplice in the task,
 * no copy), made copy-on-write before it resumes, written to its pages
 * image afterwards (page_pipes.c, docs/dump.md "Leave running").
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "error.h"
#include "page_writer.h"

struct dump_task;

/* ranges per vmsplice (IOV_MAX) */
#define PIPE_IOV_MAX 1024
/*
 * What a task's pipes hold at most: 4 GiB of pages (the pages are the
 * task's own; the kernel's pipe slots cost 1% of that), in at most 4096
 * pipes, one fd each (the dumper raises its RLIMIT_NOFILE soft limit to
 * the hard one, and uses half of it at most). Beyond that the pipes are
 * written out while the task is still frozen and filled again: the freeze
 * gets longer, the memory stays bounded.
 */
#define PAGE_PIPES_MAX 4096
/* pipes made, filled and closed per round of batched remote syscalls */
#define PAGE_PIPES_ROUND 256
#define PAGE_PIPES_BYTES_MAX (4ull << 30)

struct page_pipes {
	struct dump_task *t;
	struct page_writer writer; /* writes the pipes' pages to the image */
	bool suspend_seccomp;	   /* the task was traced with PTRACE_O_SUSPEND_SECCOMP */
	int pidfd;
	unsigned pipe_size; /* bytes we may make a pipe hold */
	int *pipes;	    /* read ends, filled in order */
	size_t npipes, max_pipes;
	struct iovec *pend; /* ranges added, not in a pipe yet */
	size_t npend, pend_cap;
	uint64_t pend_bytes;
	/* the task's fds of the round being made, closed again if it fails */
	int task_fds[2 * PAGE_PIPES_ROUND];
	size_t ntask_fds;
	uint64_t bytes;
	uint64_t drained; /* bytes already written out while frozen (pipes full) */
};

/* Open a remote-syscall session on the frozen task and start the writer. */
int page_pipes_start(struct page_pipes *pp, struct dump_task *t, struct img *pages,
		     struct ckpt_error *e);
/* Move these ranges of the task (in order) into the pipes, in rounds of
 * batched remote syscalls (a round as soon as there is a round's worth). */
int page_pipes_add(struct page_pipes *pp, struct iovec *iov, size_t n, struct ckpt_error *e);
/* Every range added: the last round, make the pages copy-on-write, close
 * the session. The task may be resumed then. */
int page_pipes_seal(struct page_pipes *pp, struct ckpt_error *e);
/* After the resume: write the pipes to the pages image, stop the writer. */
int page_pipes_write(struct page_pipes *pp, struct ckpt_error *e);
/* A failure while the task's session is open: close the pipe ends the
 * task holds (before the session is closed). */
void page_pipes_abort(struct page_pipes *pp);
/* page_pipes_abort, stop the writer, close the pipes. */
void page_pipes_free(struct page_pipes *pp);
