/* SPDX-License-Identifier: MIT */
/*
 * The restorer's own verdict on a checkpoint directory, for the dump: the
 * stages verify and plan of a restore (every image read and every field
 * checked, the images checked against this machine, the restore order
 * built), nothing created. A dump never calls good what its restore would
 * refuse.
 */
#pragma once

#include "error.h"

/* dir: a path ("/proc/self/fd/N" for a directory fd). 0 or the restore's error. */
int restore_check_images(const char *dir, struct ckpt_error *e);
