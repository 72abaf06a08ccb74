/* SPDX-License-Identifier: MIT */
/*
 * Private to lib/image*.c: the state of an image file being written or read
 * and of a checkpoint directory being written. Callers see only the opaque
 * types of image.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/utsname.h>

#include "error.h"
#include "image.h"
#include "inventory.pb-c.h"

/* Longest image file name ("pagemap-2147483647.img" is 22). */
#define IMG_NAME_MAX 64

/* What img_close_write() records for the inventory. */
struct img_record {
	char name[IMG_NAME_MAX];
	uint64_t size;
	uint32_t crc;
};

struct img_reservation {
	enum img_kind kind;
	int pid;
	unsigned part; /* of a pages image (image.h, parts) */
	int fd;
	uint64_t len; /* file bytes allocated */
	char name[IMG_NAME_MAX];
};

struct img_dir {
	char *path;	/* final path, without trailing slashes */
	char *tmp_path; /* "<path>.tmp.XXXXXX" */
	char *parent;	/* directory holding both, fsynced after the rename */
	int dirfd;	/* the temporary directory (the final one after commit) */
	bool committed;
	bool sealed; /* inventory.img written (img_dir_seal), maybe not published yet */
	bool in_place; /* img_dir_create_at: images go straight into dirfd, no rename */
	unsigned open_writers;
	/* storage given ahead (img_reserve), until the image is created */
	struct img_reservation *res;
	size_t nres;
	struct img_record *recs;
	size_t nrecs, cap;
	/* Storage behind Inventory.images and the defaults img_dir_commit() fills. */
	ImageSum *sums;
	ImageSum **sum_ptrs;
	char tool_version[32];
	char kernel_release[sizeof(((struct utsname *)0)->release)];
	char hostname[sizeof(((struct utsname *)0)->nodename)];
};

struct img {
	int fd;
	enum img_kind kind;
	int pid;
	char name[IMG_NAME_MAX];
	bool writing;
	bool record;	     /* write: report to the directory on close (not the inventory) */
	bool write_looked;   /* write: fault step image-write looked up (write_fault) */
	struct img_dir *dir; /* write only */
	uint64_t off;	     /* write: bytes accepted so far; read: offset of the next record */
	uint64_t size;	     /* read: file size at open */
	uint32_t crc;	     /* write: running CRC32C of everything accepted */
	uint64_t reserved;   /* write: file bytes given ahead (img_reserve), 0 if none */
	unsigned part, nparts; /* pages: this file is part `part` of `nparts` (image.h) */
	unsigned char *buf;  /* write buffer / read-ahead buffer */
	size_t buf_len;	     /* write: bytes pending; read: valid bytes */
	uint64_t buf_off;    /* read: file offset of buf[0] */
	ProtobufCAllocator *alloc; /* read: what messages are unpacked with */
};

/* --- shared by the image I/O (image.c) and the directory (image_dir.c) ----- */

/* Returns bytes read (short only at end of file) or negative errno. */
ssize_t img_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* Close and free an image without reporting it to its directory. NULL-safe. */
void img_free(struct img *img);
/* img_create(), and record = false for inventory.img (not listed in itself). */
int img_create_internal(struct img_dir *d, enum img_kind kind, int pid, bool record,
			struct img **ret, struct ckpt_error *e);
/* Note the size and checksum of a closed image for the inventory. */
int img_dir_add_record(struct img_dir *d, const struct img *img, struct ckpt_error *e);
