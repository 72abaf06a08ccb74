/* SPDX-License-Identifier: MIT */
/*
 * Who may do what (docs/daemon.md): root may dump and restore anything.
 * Another user may dump only trees whose every task has that user's real,
 * effective and saved uid and gid, supplementary groups the caller has, and
 * no capabilities; and may restore only images whose every task says the
 * same. The checks return -EPERM with a message naming the pid (or image)
 * and the reason.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define AUTH_GROUPS_MAX 256

/* The caller, from SO_PEERCRED and SO_PEERGROUPS. */
struct auth_caller {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[AUTH_GROUPS_MAX];
	size_t ngroups;
};

/* Fill c from a connected unix socket. */
int auth_from_socket(int sock, struct auth_caller *c, struct ckpt_error *e);

static inline bool auth_is_root(const struct auth_caller *c)
{
	return c->uid == 0;
}

/* Before seizing: walk the live tree rooted at pid (every thread). */
int auth_check_dump(const struct auth_caller *c, pid_t pid, struct ckpt_error *e);

/* The images in the (verified) checkpoint directory dirfd: every core-PID.img
 * listed in pstree.img. */
int auth_check_images(const struct auth_caller *c, int dirfd, struct ckpt_error *e);
