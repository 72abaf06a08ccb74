/* SPDX-License-Identifier: MIT */
/*
 * The restorer's own verdict on a checkpoint directory, for the dump: the
 * stages verify and plan of a restore (every image read, every field and
 * every cross-reference checked, the restore order built), nothing created.
 * A dump never calls good images its restore would refuse. What depends on
 * the machine at restore time (files still there and unchanged, addresses
 * and pids free: the tree being dumped holds them) is left to the restore.
 */
#pragma once

#include <stdbool.h>

#include "error.h"

/*
 * dir: a path ("/proc/self/fd/N" for a directory fd). 0 or the restore's
 * error. pages_sums_known: the caller wrote the pages images and computed
 * their checksums from the bytes it wrote; their size is checked and their
 * bytes are not read back (docs/images.md, "The dump's own check").
 */
int restore_check_images(const char *dir, bool pages_sums_known, struct ckpt_error *e);
