/* SPDX-License-Identifier: MIT */
/*
 * What the programs that run ckpt-restore (ckptctl, ckptd) share: where
 * the binary is, and its progress lines (--progress-fd: one JSON object a
 * line, {"bytes":B,"bytes_total":T,"tasks_done":D,"tasks_total":N,
 * "stage":"memory"}).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Path of ckpt-restore (malloc'd, NULL when out of memory): explicit if
 * given, else $CKPT_RESTORE, else next to the running program, else
 * libexec_dir/ckpt-restore if executable. Past that, with path_search the
 * bare name "ckpt-restore" (*ret_search true: look it up in PATH), without
 * it libexec_dir/ckpt-restore anyway (its exec error names it).
 */
char *restorer_find(const char *explicit_path, const char *libexec_dir, bool path_search,
		    bool *ret_search);

struct restorer_progress {
	uint64_t bytes, bytes_total;
	unsigned tasks_done, tasks_total;
	char stage[32];
};

/* Parse one progress line; false if it is not one. */
bool restorer_progress_parse(const char *line, struct restorer_progress *ret);

/* Splits what comes from a pipe into lines (an overlong line is cut). */
struct line_reader {
	int fd; /* -1 once at EOF (closed) */
	char line[512];
	size_t len;
};

/*
 * One read(2): calls cb for every complete line. Returns 1 when data came,
 * 0 when there was none now (EAGAIN, EINTR), -1 at EOF or error (fd closed).
 */
int line_reader_read(struct line_reader *r, void (*cb)(void *arg, const char *line), void *arg);

/* Field 22 of /proc/PID/stat (clock ticks after boot); 0 if unknown. */
unsigned long long proc_start_ticks(pid_t pid);

/*
 * Undo a restore nobody can be told about, or that ckpt-restore did not
 * finish (killed): every task of pstree.img (in dirfd) started at or after
 * `since` (proc_start_ticks() of ckpt-restore) gets SIGKILL. Older
 * processes with those pids are not the restore's.
 */
void restored_tasks_kill(int dirfd, unsigned long long since);
/*
 * The same for a restore --new-pidns: its tree has other pids out here, and
 * the saved ones may belong to anyone. init (ns_init_pid of the restorer's
 * JSON line) gets SIGKILL, which ends its namespace, if it is a ckpt-nsinit
 * started at or after `since`.
 */
void restored_nsinit_kill(pid_t init, unsigned long long since);

/*
 * The commit record of a restore (ckpt-restore --commit-fd, a memfd of the
 * program that runs it, of ckptd, or of ckptd's client): ckpt-restore
 * writes "committed" into it at its commit point, once every task is
 * complete and its last cancel check passed, before the first task runs;
 * from then on the restore is never rolled back (a failure later, when
 * every task could not be let go, writes "rolled back" after the
 * rollback). Whoever outlives a killed ckpt-restore, worker or ckptd reads
 * it once ckpt-restore is gone: the tree runs exactly when it says
 * committed. One fixed-size line at offset 0, so that a rewrite replaces
 * it whole.
 */
struct restore_commit {
	pid_t root_pid; /* the root, in the restorer's pid namespace */
	unsigned ntasks;
	bool new_pidns; /* root_pid is the pid inside a new pid namespace */
};

/* Write the record (committed, or rolled back when c is NULL); -errno. */
int restore_commit_write(int fd, const struct restore_commit *c);
/* true when fd holds a committed record (then *ret is filled, if given). */
bool restore_commit_read(int fd, struct restore_commit *ret);
