/* SPDX-License-Identifier: MIT */
/*
 * The dump engine: seize -> collect -> write -> kill or resume. Used in
 * process by ckptctl today and by ckptd later. A failed dump leaves the tree
 * running exactly as it was.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

struct dump_opts {
	pid_t pid;	    /* root of the tree */
	const char *dir;    /* image directory (created; must not exist or be empty) */
	bool leave_running; /* resume the tree afterwards instead of killing it */
	/* progress callback (may be NULL): bytes of memory written, tasks done */
	void (*progress)(void *arg, uint64_t bytes, unsigned tasks_done, unsigned tasks_total);
	void *progress_arg;
};

struct dump_result {
	unsigned ntasks;
	uint64_t pages_bytes;  /* memory written */
	uint64_t images_bytes; /* all image files */
	double freeze_seconds; /* from first seize to kill/resume */
	double total_seconds;
};

int dump_tree(const struct dump_opts *opts, struct dump_result *ret, struct ckpt_error *e);
