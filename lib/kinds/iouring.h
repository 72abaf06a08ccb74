/* SPDX-License-Identifier: MIT */
/* io_uring instances (lib/kinds/iouring.c): limits shared with the restorer. */
#pragma once

#include "files.pb-c.h"
#include "error.h"

/* the kernel's own limits (IORING_MAX_ENTRIES, IORING_MAX_CQ_ENTRIES) */
#define IOURING_SQ_MAX 32768
#define IOURING_CQ_MAX 65536
#define IOURING_FILES_MAX 65536
#define IOURING_BUFS_MAX 16384
/* NOPs the restore may submit to bring the kernel's indices back (~1-2 s) */
#define IOURING_ADVANCE_MAX (1u << 24)
/* how long a dump waits for submitted requests to complete (tree frozen) */
#define IOURING_WAIT_S 2.0
/* IORING_SETUP_ flags the restore passes as saved (the dump reads them with
 * the kernel reader): IOPOLL, SUBMIT_ALL, COOP_TASKRUN, TASKRUN_FLAG, SQE128,
 * CQE32, SINGLE_ISSUER, DEFER_TASKRUN, NO_SQARRAY, HYBRID_IOPOLL */
#define IOURING_SETUP_NO_SQARRAY_ (1u << 16)
#define IOURING_SETUP_HYBRID_IOPOLL_ (1u << 17)
#define IOURING_FLAGS_KNOWN                                                                        \
	((1u << 0) | (1u << 7) | (1u << 8) | (1u << 9) | (1u << 10) | (1u << 11) | (1u << 12) |    \
	 (1u << 13) | IOURING_SETUP_NO_SQARRAY_ | IOURING_SETUP_HYBRID_IOPOLL_)
/* mmap offsets of the regions of a ring */
#define IOURING_OFF_END 0x20000000ULL

/* An entry of files.img is a sound io_uring entry. */
int iouring_check(const FileEntry *fe, struct ckpt_error *e);
