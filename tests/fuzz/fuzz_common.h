/* SPDX-License-Identifier: MIT */
/*
 * Shared by the libFuzzer harnesses of tests/fuzz/ (docs/testing.md,
 * "Fuzzing"): a scratch checkpoint directory on tmpfs emptied before every
 * run, the container format that packs several image files into one fuzz
 * input, and the inventory whose sizes and CRC32C the harness recomputes.
 *
 * Container (what tests/fuzz/mkcorpus.py writes), entries back to back:
 *
 *   u8 name length (1..63) | name | u32 LE data length | data
 *
 * A name that is not an image name (img_kind_from_name: "core-12.img") is
 * skipped, so the fuzzer can never write outside the scratch directory; a
 * length past the end is cut to what is left. Two kinds of data are not the
 * file as is:
 *
 * - inventory.img: the 16-byte header then the packed Inventory without its
 *   length prefix. The harness lists every file it wrote in images[] with
 *   its real size and CRC32C (entries naming files not written are kept as
 *   they are) and writes header + length + message. Anyone can recompute a
 *   CRC32C: the checks behind the checksums are what is fuzzed. Data that
 *   does not unpack is written as is.
 * - pages-PID.img: the 16-byte header, a u32 LE count of zero pages
 *   (modulo FUZZ_FILE_PAGES + 1, at most FUZZ_MAX_PAGES in all), then
 *   bytes appended after them; the file is the header padded to 4096 bytes,
 *   the pages, then the extra bytes (the page data itself is never
 *   interpreted before a restore maps it, so the corpus keeps no memory).
 *   Shorter data is written as is.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FUZZ_MAX_FILES 64
/* zero pages of one pages image: the count modulo this + 1 (1 MiB) */
#define FUZZ_FILE_PAGES 256
/* ... and of all pages images of one input together (2 MiB) */
#define FUZZ_MAX_PAGES 512

struct fuzz_file {
	char name[64];
	const uint8_t *data;
	size_t len;
};

struct fuzz_sum {
	char name[64];
	uint64_t size;
	uint32_t crc;
};

struct fuzz_dir {
	char path[128];
	int dirfd;
	struct fuzz_sum sums[FUZZ_MAX_FILES + 1];
	size_t nsums;
	unsigned pages_left;
	int fd_mark; /* fuzz_fd_mark() at the start of the run */
};

/* Make the scratch directory /dev/shm/ckpt-fuzz-TAG-PID.XXXXXX (removed at exit). */
void fuzz_dir_init(struct fuzz_dir *d, const char *tag);
/* Remove every file of the previous run; take the fd mark of this one. */
void fuzz_dir_clean(struct fuzz_dir *d);
/*
 * The lowest free fd, taken at the start of a run (not once at init:
 * libFuzzer's symbolizer opens pipes between runs), and the check at its
 * end: abort (reported by libFuzzer as a crash) if the run left an fd open.
 */
int fuzz_fd_mark(void);
void fuzz_fd_check(int mark);

/* Split a container into files[] (at most max); returns how many. */
size_t fuzz_container_parse(const uint8_t *data, size_t len, struct fuzz_file *files, size_t max);

/*
 * Write one image (pages images expanded, see above) and note its sum.
 * inventory.img is not written here: see fuzz_write_inventory. Returns false
 * for a name that is not an image name (nothing written).
 */
bool fuzz_write_image(struct fuzz_dir *d, const char *name, const uint8_t *data, size_t len);
/* Write any file of an image name (inventory.img too) as is and note its sum. */
bool fuzz_write_raw(struct fuzz_dir *d, const char *name, const uint8_t *data, size_t len);
/* Write inventory.img from header + packed Inventory (NULL: a default one) with the sums fixed. */
void fuzz_write_inventory(struct fuzz_dir *d, const uint8_t *data, size_t len);
