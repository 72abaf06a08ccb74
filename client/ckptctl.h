/* SPDX-License-Identifier: MIT */
/*
 * ckptctl: one function per subcommand (ckptctl.c: main, dump; restore.c,
 * show.c, check.c) and the few helpers they share. Subcommands return the
 * process exit status: 0 success, 1 failure, 2 usage error.
 */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define EXIT_USAGE 2

/* Options every subcommand accepts. */
struct cli_common {
	bool json;
	int verbose;
	const char *socket; /* --socket PATH (else $CKPT_SOCKET, else the default) */
};

struct dump_opts;

int cmd_dump(int argc, char **argv, struct cli_common *c);
int cmd_restore(int argc, char **argv, struct cli_common *c);
int cmd_show(int argc, char **argv, struct cli_common *c);
int cmd_check(int argc, char **argv, struct cli_common *c);
int cmd_ps(int argc, char **argv, struct cli_common *c);
int cmd_cancel(int argc, char **argv, struct cli_common *c);
int cmd_preserve(int argc, char **argv, struct cli_common *c);

/*
 * Daemon mode (daemon.c). cli_daemon_connect: 1 and *ret_fd when ckptd
 * answers at --socket / $CKPT_SOCKET / the default path; 0 when it does not
 * and the command should run in process (root, no socket named explicitly);
 * -1 after printing why neither is possible.
 */
int cli_daemon_connect(const struct cli_common *c, const char *cmd, int *ret_fd);
int daemon_dump(int sock, const struct dump_opts *o, const struct cli_common *c);
/* cgroups: NULL, "exact" or "caller" (ckptctl restore --cgroups) */
int daemon_restore(int sock, const char *dir, const char *cgroups, const struct cli_common *c,
		   bool new_pidns, bool continue_clocks, bool lazy);
/* The same requests with nothing printed (sock is consumed): for `run`. */
struct ckpt_error;
struct daemon_result {
	unsigned ntasks;
	int pid; /* restore: the restored root */
	uint64_t bytes, images_bytes;
	double seconds;
	unsigned long long job_id;
	int pager_pid; /* restore --lazy */
};
int daemon_dump_quiet(int sock, const struct dump_opts *o, const struct cli_common *c,
		      struct daemon_result *ret, struct ckpt_error *e);
int daemon_restore_quiet(int sock, const char *dir, const char *cgroups, const struct cli_common *c,
			 bool new_pidns, bool continue_clocks, bool lazy, struct daemon_result *ret,
			 struct ckpt_error *e);
/*
 * Restore dir in process (root): run ckpt-restore as our child, nothing
 * printed but its log; *ret_root is the restored root (which becomes our
 * child when ckpt-restore exits if we are a child subreaper).
 */
int restore_in_process(const char *dir, int verbose, const char *cgroups, pid_t *ret_root,
		       long *ret_tasks, double *ret_seconds, char *err, size_t errlen);
int cmd_run(int argc, char **argv, struct cli_common *c);
/* Wait (briefly) until the pids saved in dir are no longer zombies. */
void wait_for_zombie_pids(const char *dir);

/*
 * getopt_long over a subcommand's argv (argv[0] is the subcommand name), with
 * -v/--verbose, -h/--help and (if json_ok) --json handled here. Returns the
 * option for the caller to handle, -1 at the end, or -2 after printing a
 * usage error / help (then *ret_exit is the exit status).
 */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
	       struct cli_common *c, void (*usage)(FILE *), int *ret_exit);
/* Print "ckptctl CMD: message" and the hint to --help; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Apply -v: warnings by default, -v info, -vv debug. */
void cli_set_verbosity(int verbose);
/* "256.0 MiB" */
const char *format_bytes(uint64_t bytes, char *buf, size_t len);
/*
 * The path of the existing directory target as seen from dir (which need
 * not exist yet: its parent must), e.g. "../pre1"; 0 or -errno.
 */
int cli_relative_path(const char *dir, const char *target, char *out, size_t len);
/* Parse a pid: decimal, 1..INT_MAX. */
bool parse_pid_arg(const char *s, int *ret);
