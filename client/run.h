/* SPDX-License-Identifier: MIT */
/*
 * ckptctl run: its options (run_args.c, parsed without side effects so that
 * the unit tests can call the parser) and the command (run.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define RUN_MAX_SIGNALS 16
#define RUN_DEFAULT_EXIT_CODE 85 /* HTCondor's "checkpointed, run me again" */

struct run_opts {
	const char *dir; /* without trailing slashes (DIR.new, DIR.pre1 beside it) */
	char dir_buf[4096];
	int signals[RUN_MAX_SIGNALS]; /* checkpoint, then exit with exit_code */
	int n_signals;		      /* 0 after parsing: SIGUSR1 and SIGTERM */
	int exit_code;
	unsigned interval; /* seconds; 0: no periodic checkpoint */
	bool json;
	int verbose;
	char **cmd; /* NULL-terminated, at least one word */
};

/* "USR1", "SIGUSR1", "usr1", "10", "RTMIN+2": the signal number, or -1. */
int run_parse_signal(const char *s);
/*
 * Parse `run` and its arguments (argv[0] is "run"). Returns 0 with *o
 * filled, 1 for --help, -1 with a message in err for a usage error.
 */
int run_parse_args(int argc, char **argv, struct run_opts *o, char *err, size_t errlen);
