/* SPDX-License-Identifier: MIT */
/*
 * ckptd's seal on the checkpoints it writes (mac.c): mac.img holds
 * HMAC-SHA256(key, "ckpt-mac-1" | uid | inventory.img | every image the
 * inventory lists, in its order), in hex. The key is root's alone
 * (--mac-key, default /var/lib/ckpt/mac.key, made 0600 if missing). A
 * restore for a non-root caller needs privileges (clone3 with set_tid for
 * its pids, TCP_REPAIR and the network lock, System V ids): ckptd grants
 * them only to images that it wrote for that same caller, unchanged.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define MAC_KEY_LEN 32
#define MAC_FILE "mac.img"
#define MAC_KEY_DEFAULT "/var/lib/ckpt/mac.key"

/* Read the key at path; create it (and its directory, 0700) if missing. */
int mac_key_load(const char *path, uint8_t key[MAC_KEY_LEN], struct ckpt_error *e);
/* The MAC of the checkpoint in dirfd (inventory.img and what it lists) for uid. */
int mac_compute(const uint8_t key[MAC_KEY_LEN], uid_t uid, int dirfd, uint8_t out[32],
		struct ckpt_error *e);
/* Write mac.img into the directory fd (created as the caller, caller_fs.c). */
int mac_seal(const uint8_t key[MAC_KEY_LEN], uid_t uid, int img_dirfd, int out_fd,
	     struct ckpt_error *e);
/*
 * 0 if mac_dirfd holds a mac.img (a regular file of uid's) matching the
 * checkpoint in img_dirfd (the private copy a restore works on), else
 * -EPERM with a message saying why.
 */
int mac_check(const uint8_t key[MAC_KEY_LEN], uid_t uid, int img_dirfd, int mac_dirfd,
	      struct ckpt_error *e);
