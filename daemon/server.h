/* SPDX-License-Identifier: MIT */
/*
 * The ckptd service loop: accepts connections on the listening socket, reads
 * one request at a time per connection, answers version/status/cancel
 * itself and runs every dump or restore in a worker process of its own (a
 * crash stays in the worker; two dumps of different trees run at once). The
 * jobs table (running and recent jobs) lives in the main process.
 */
#pragma once

#include <stdbool.h>

#include "error.h"

struct server_opts {
	int listen_fd;		    /* bound, listening SOCK_SEQPACKET unix socket */
	const char *restorer;	    /* path of ckpt-restore */
	unsigned max_conns;	    /* open connections (0: default) */
	unsigned max_jobs;	    /* jobs running at once (0: default) */
	unsigned idle_timeout;	    /* seconds a connection may stay silent (0: default) */
	unsigned max_jobs_per_user; /* jobs of one non-root user at once (0: default) */
	unsigned long long max_restore_bytes; /* images a non-root restore copies (0: default) */
	unsigned max_images;		      /* images a non-root restore lists (0: default) */
	const uint8_t *mac_key;		      /* MAC_KEY_LEN bytes (mac.h) */
	/* ckptctl preserve: the registry and the preserved images live here
	 * (--state-dir, default /var/lib/ckpt); -1: preserve is unavailable */
	int state_fd;
	const char *state_dir; /* for messages */
	/* what the restorer supports (ckpt-restore --help lists it) */
	bool restorer_new_pidns, restorer_continue_clocks;
};

#define SERVER_JOBS_PER_USER_DEFAULT 4
#define SERVER_RESTORE_BYTES_DEFAULT (64ull << 30)
#define SERVER_IMAGES_DEFAULT 100000

/* Serve until SIGTERM or SIGINT; then cancel running dumps, wait for the
 * workers and return 0. A negative errno only when it cannot start. */
int server_run(const struct server_opts *o, struct ckpt_error *e);
