/* SPDX-License-Identifier: MIT */
/*
 * Incremental dumps (dump_incr.c, docs/incremental.md): the parent
 * checkpoint and its write tracking, which pages changed, arming the
 * tracking again (--pre-dump) and the holder process that keeps it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "inventory.pb-c.h"

struct dump_ctx;
struct dump_task;
struct ckpt_error;

/* Before the freeze: open and check the parent, take its holder's state. */
int dump_incr_open(struct dump_ctx *c, struct ckpt_error *e);
/* Frozen, after dump_task_scan: runs unchanged since the parent become in_parent. */
int dump_incr_reserve(struct dump_ctx *c, struct ckpt_error *e);
int dump_incr_precopy(struct dump_ctx *c, struct ckpt_error *e);
/* The bytes at off of the copy dump_incr_precopy made (page_run.pre_off). */
const char *dump_incr_precopy_data(const struct dump_ctx *c, uint64_t off);
/* The checksums of its pages from off on (crc32c(0, page, 4096) each). */
const uint32_t *dump_incr_precopy_crcs(const struct dump_ctx *c, uint64_t off);
int dump_incr_classify(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e);
/* Frozen, --pre-dump: register and write-protect the task's private areas. */
int dump_incr_arm(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e);
/* --pre-dump, before the commit: start the holder with the new state. */
int dump_incr_hold(struct dump_ctx *c, struct ckpt_error *e);
/* The inventory fields (tr: storage for the tracking record). */
int dump_incr_inventory(struct dump_ctx *c, Inventory *inv, IncrTracking *tr,
			struct ckpt_error *e);
/* After the commit (ok) or a failure: stop the holder that is no longer needed. */
void dump_incr_finish(struct dump_ctx *c, bool ok);
/* Before the dump tries again: what the next try keeps (see dump_incr.c). */
struct incr *dump_incr_keep(struct dump_ctx *c);
void dump_incr_free(struct dump_ctx *c);
/* CRC32C of dirfd's inventory.img. */
int incr_inventory_crc(int dirfd, uint32_t *ret, struct ckpt_error *e);
