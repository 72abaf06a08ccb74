/* SPDX-License-Identifier: MIT */
/*
 * The body of a ckptd worker: one process per dump or restore, forked by
 * server.c. It reports progress and its result to the main process as
 * fixed-size messages on a pipe (each one write, atomic: < PIPE_BUF) and
 * writes dump.log / restore.log into the image directory.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth.h"

enum worker_msg_kind { WORKER_PROGRESS = 1, WORKER_RESULT = 2 };

struct worker_msg {
	uint32_t kind;
	int32_t status; /* result: 0 or negative errno */
	int32_t pid;	/* result: dumped root, or restored root */
	uint32_t tasks_done, tasks_total;
	uint64_t bytes;	       /* memory written (dump) */
	uint64_t images_bytes; /* size of the checkpoint */
	char error[1024];
	int32_t pager_pid; /* restore --lazy: the pager, 0 if none */
	uint64_t pager_start_ticks;
};

/* What a restore for a non-root caller may make the service copy. */
struct worker_limits {
	uint64_t max_restore_bytes; /* sum of the sizes the inventory declares */
	unsigned max_images;	    /* images the inventory lists */
};

struct worker_args {
	uint64_t job_id;
	const struct auth_caller *caller;
	int dir_fd;    /* the image directory the client sent */
	int report_fd; /* write end of the pipe to the main process */
	pid_t pid;     /* dump: root of the tree */
	bool leave_running;
	bool shell_job; /* dump: --shell-job */
	/* dump: --external (the request's strings, alive in the forked worker) */
	char **external;
	size_t n_external;
	bool tcp_close;	      /* dump: --tcp-close */
	bool pre_dump;	      /* dump: --pre-dump */
	const char *parent;   /* dump: --parent, relative to dir_fd (the request's) */
	bool new_pidns;	      /* restore: --new-pidns */
	bool continue_clocks; /* restore: --continue-clocks */
	bool lazy;	      /* restore: --lazy (a pager brings the memory in) */
	bool cgroups_caller;  /* restore: --cgroups=caller, caller->pid's cgroups (ours if 0) */
	/* restore: a pidfd of the client that connected (SO_PEERPIDFD), or -1:
	 * caller->pid is that process only while this says it lives */
	int caller_pidfd;
	/* restore for a client: a dup of its connection, or -1: ckpt-restore
	 * looks at it (--client-fd) last thing before its commit point, so a
	 * client killed just before the answer is not left with a tree that
	 * nobody reported (ckptd's SIGTERM comes when its loop gets to it) */
	int client_fd;
	/* dump: seize, collect, check, resume: nothing is written (preserve
	 * registration); the worker makes and removes a scratch directory */
	bool check_only;
	bool save_tmpfs; /* dump: --save-tmpfs-files (preserve) */
	/* restore (ckptctl preserve --restore-all): pass --new-pidns when a pid
	 * of the tree is taken (only set when the restorer has it) */
	bool new_pidns_if_taken;
	const char *restorer; /* restore: path of ckpt-restore */
	pid_t ckptd_pid;      /* the main process: the worker dies with it */
	int log_fd;	      /* dump: memfd for the engine's log, shared with ckptd */
	/* restore: ckpt-restore's commit record (lib/restorer_io.h), a memfd
	 * shared with ckptd, which reads it when we die without a result; and
	 * the client's own (RestoreRequest.commit_fd), or -1 */
	int commit_fd;
	int client_commit_fd;
	struct worker_limits limits;
	const uint8_t *mac_key; /* mac.h: seal dumps, check non-root restores */
	/* set in the worker */
	bool has_log;	    /* restore: restore.log exists */
	bool use_new_pidns; /* restore: a pid of the tree is taken (new_pidns_if_taken) */
	pid_t worker_pid;   /* restore: parent of ckpt-restore */
	/* restore --cgroups=caller: the client's /proc/PID/cgroup, opened
	 * while it lived (open_caller_cgroup), or -1 */
	int caller_cgroup_fd;
};

/* Run in the forked worker; returns the exit status for _exit(). */
int worker_dump(const struct worker_args *a);
int worker_restore(const struct worker_args *a);
/* Remove the copies of images (worker.c) that worker made, or with 0 those
 * of every worker that no longer runs: what a worker killed left. */
void worker_snapshots_sweep(pid_t worker);
