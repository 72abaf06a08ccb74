/* SPDX-License-Identifier: MIT */
/*
 * The dump engine: seize -> collect -> write -> kill or resume. Run by
 * ckptd's workers, and in process by ckptctl (as root, when no ckptd
 * answers). A failed dump leaves the tree running exactly as it was.
 */
#pragma once

#include <stdbool.h>
#include <signal.h>
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
	/* ckptd: write into this open, empty directory instead of creating dir
	 * (dir then only names it in messages); see img_dir_create_at() */
	bool use_dir_fd;
	int dir_fd;
	/* ckptd: when set to non-zero (from a signal handler), the dump stops at
	 * the next step and rolls back; the tree is left running */
	volatile sig_atomic_t *cancel;
	/* --shell-job: the tree is a job of the user's terminal (a pty whose
	 * master is outside the tree): its fds on it are saved as "external"
	 * instead of refused (dump/dump_tty.c) */
	bool shell_job;
	/* --external: resources outside the tree the user accepts to lose the
	 * other end of ("unix:INODE": a unix socket connected outside) */
	const char *const *external;
	size_t n_external;
	/* --tcp-close: established TCP connections are not held (no lock, no
	 * repair mode) and come back closed, as after a reset */
	bool tcp_close;
	/* ckptd for a non-root caller: every operation on the image directory
	 * (create, seal, publish, check, remove) runs with an empty effective
	 * capability set, under the file ids the caller set (fsuid); the
	 * capabilities stay raised only for the work on the tree itself */
	bool images_unprivileged;
	/* ckptd for a non-root caller, whose own restore runs without
	 * capabilities: what it could not set again (a real-time policy or
	 * I/O class, a nice value below the task's RLIMIT_NICE) is refused */
	bool caller_unprivileged;
	/* --check-only: seize, collect and run every refusal check, then
	 * resume the tree untouched; nothing is committed (the directory
	 * only holds what collecting wrote, removed again) */
	bool check_only;
	/* --save-tmpfs-files: regular files the tree has open, maps or runs
	 * (executables) on tmpfs (/tmp, /dev/shm, /run) are saved with their
	 * content, and recreated by the restore if they are gone (ckptctl
	 * preserve: a reboot empties them) */
	bool save_tmpfs_files;
	/* ckptctl preserve: every task and thread in the root's cgroup or
	 * below it, in every hierarchy (the restore after a reboot places the
	 * tree under ckptd's cgroups, --cgroups=caller, which maps only the
	 * root's subtree); else refused, naming the thread and cgroup */
	bool cgroups_under_root;
	/* --pre-dump: memory only (no fds), the tree left running, write
	 * tracking armed for a later dump with parent (docs/incremental.md) */
	bool pre_dump;
	/* --parent: the parent checkpoint, as a path relative to the new
	 * directory (recorded in the inventory); opened through parent_fd with
	 * use_parent_fd (ckptctl in process), else relative to dir_fd (ckptd) */
	const char *parent;
	bool use_parent_fd;
	int parent_fd;
	/* ckptd for a non-root caller: the parent is used only if this
	 * accepts it (its mac.img: sealed by ckptd for the caller) */
	int (*check_parent)(void *arg, int parent_fd, struct ckpt_error *e);
	void *check_parent_arg;
};

struct dump_result {
	unsigned ntasks;
	uint64_t pages_bytes;  /* memory written */
	uint64_t images_bytes; /* all image files */
	double frozen_seconds; /* from the first seize to the SIGKILLs sent / the resume */
	double total_seconds;
	/* incremental dumps: pages saved, pages left to the parent */
	uint64_t pages_saved, pages_unchanged;
};

int dump_tree(const struct dump_opts *opts, struct dump_result *ret, struct ckpt_error *e);
