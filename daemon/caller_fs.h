/* SPDX-License-Identifier: MIT */
/*
 * File operations done for a caller with exactly the caller's credentials:
 * each runs in a short-lived child of the worker that took the caller's
 * uid, gid and groups (real, effective, saved, fs) and holds no capability,
 * so the kernel decides what the caller may open, create or remove, and an
 * fd is passed back. Nothing here reads mode bits to guess.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "error.h"

/* What the caller must be able to do in the image directory. */
enum caller_dir_need {
	CALLER_DIR_READ,  /* restore: list and read the images */
	CALLER_DIR_WRITE, /* dump: create the images */
};

/*
 * Open the directory behind dir_fd (O_PATH fds included) again as the
 * caller, O_RDONLY | O_DIRECTORY: a directory the caller cannot search or
 * read is refused with -EACCES naming what is missing. *ret_fd is a new
 * open file description.
 */
int caller_open_dir(const struct auth_caller *c, int dir_fd, enum caller_dir_need need, int *ret_fd,
		    struct ckpt_error *e);

/* Create name in dirfd as the caller (an existing entry of that name is
 * removed first, with the caller's rights), O_EXCL | O_NOFOLLOW, mode 0600. */
int caller_create_file(const struct auth_caller *c, int dirfd, const char *name, int *ret_fd,
		       struct ckpt_error *e);

/* Open name in dirfd for reading as the caller: O_NONBLOCK | O_NOFOLLOW and
 * only a regular file (a FIFO or a device is refused, never waited on). */
/* Open the directory dirfd/name (a relative path: "../pre1") as the caller, for reading. */
int caller_open_subdir(const struct auth_caller *c, int dirfd, const char *name, int *ret_fd,
		       struct ckpt_error *e);
int caller_open_file(const struct auth_caller *c, int dirfd, const char *name, int *ret_fd,
		     struct ckpt_error *e);

/*
 * After a dump whose worker died without a result, in a child as the
 * caller (its pid, or -errno): a checkpoint in dirfd that verifies stays;
 * anything else is removed, inventory.img first. log_fd (or -1) is copied
 * to dump.log. The caller of this reaps the child (ckptd's loop: a
 * directory on a hanging file system stalls nobody else) and reads its
 * wait status with caller_settle_dump_result(): 1 kept, 0 removed, -EIO
 * (the child failed); *ret_log tells whether dump.log was written.
 */
pid_t caller_settle_dump_start(const struct auth_caller *c, int dirfd, int log_fd);
int caller_settle_dump_result(int wstatus, bool *ret_log);
