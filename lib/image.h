/* SPDX-License-Identifier: MIT */
/*
 * Image files (image.c). Every image starts with the same 16-byte header
 * (magic, format version, kind, reserved), then either length-prefixed
 * protobuf messages (u32 little-endian length + packed message) or, for
 * pages images, raw page data starting at offset IMG_PAGES_DATA_OFFSET.
 * protobuf-c stays behind img_write_msg() / img_read_msg(): call sites never
 * pack or unpack by hand.
 *
 * A checkpoint directory (image_dir.c) is written under a temporary name next
 * to its final path; img_dir_commit() writes inventory.img last (size and
 * CRC32C of every image), fsyncs and renames it into place. Readers never
 * trust an image: img_dir_open_verified() checks the inventory and every
 * image's size and checksum before anything is created.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <protobuf-c/protobuf-c.h>

#include "error.h"
#include "files.pb-c.h"
#include "inventory.pb-c.h"

#define IMG_FORMAT_VERSION 1
#define IMG_HEADER_SIZE 16
#define IMG_PAGES_DATA_OFFSET 4096
/* No single message may be larger than this (images never trust lengths). */
#define IMG_MSG_MAX (64u << 20)

enum img_kind {
	IMG_INVENTORY,
	IMG_PSTREE,
	IMG_CORE,    /* per task */
	IMG_MM,	     /* per task */
	IMG_PAGEMAP, /* per task */
	IMG_PAGES,   /* per task, raw page data */
	IMG_FILES,
	IMG_FDS, /* per task */
	IMG__COUNT,
};

struct img_kind_desc {
	enum img_kind kind;
	const char *name;     /* "core" */
	const char *file_fmt; /* "core-%d.img" or "files.img" */
	uint32_t magic;
	bool per_task;
	/* message type of every record, NULL for raw pages */
	const ProtobufCMessageDescriptor *msg_desc;
};

/* The one table of kinds, indexed by enum img_kind. */
const struct img_kind_desc *img_kind_desc(enum img_kind kind);
/* Find the kind of a file name ("core-12.img" -> IMG_CORE, pid 12). */
int img_kind_from_name(const char *name, enum img_kind *ret_kind, int *ret_pid);
/* Build the file name of an image ("core-12.img"); pid ignored for shared kinds. */
void img_file_name(enum img_kind kind, int pid, char *buf, size_t len);

struct img_dir;
struct img;

/*
 * Digest of a task's fd table, PstreeEntry.fds_crc32c: the CRC32C of fd,
 * id and cloexec of each entry as little-endian u32, in the order given
 * (the dump and the restorer both pass fd order).
 */
uint32_t img_fds_digest(FdEntry *const *fds, size_t n);

/* --- writing ------------------------------------------------------------ */

/*
 * Start a checkpoint directory at path: the images go to a temporary sibling
 * ("path.tmp.XXXXXX"). path must not exist or be an empty directory.
 */
int img_dir_create(const char *path, struct img_dir **ret, struct ckpt_error *e);
/*
 * Same, but write the images straight into the open, empty directory dirfd
 * (not consumed; what names it in messages): for ckptd, which gets the
 * directory as an fd and never resolves the client's path. There is no
 * rename: inventory.img, written last by img_dir_commit(), is what makes the
 * directory a checkpoint; img_dir_free() before the commit empties it.
 */
int img_dir_create_at(int dirfd, const char *what, struct img_dir **ret, struct ckpt_error *e);
int img_dir_fd(const struct img_dir *d);
/* Write inventory.img last (fills inv->images), fsync everything, rename into place. */
int img_dir_commit(struct img_dir *d, Inventory *inv, struct ckpt_error *e);
/*
 * The two halves of img_dir_commit, for a caller that checks the sealed
 * directory (through img_dir_fd) before it is published: seal writes
 * inventory.img and syncs (in place, that commits: the directory is valid
 * from then on); publish renames the temporary directory into place.
 * img_dir_free() of a sealed, unpublished temporary directory removes it.
 */
int img_dir_seal(struct img_dir *d, Inventory *inv, struct ckpt_error *e);
int img_dir_publish(struct img_dir *d, struct ckpt_error *e);
/*
 * Remove the images (*.img) of the directory dirfd, inventory.img first so
 * that it stops being a checkpoint at once: a dump that did not complete.
 */
void img_dir_remove_images(int dirfd);
/*
 * Open the image file name of directory dirfd for reading, only if it is a
 * regular file, and so that nothing else can hold the caller up or act on
 * the open: not through a symlink, without waiting for a FIFO's writer
 * (O_NONBLOCK, cleared once the file is known to be regular), no terminal
 * made the controlling one. The fd (st filled), -errno of the open or the
 * fstat, or -EBADMSG for a file of another type.
 */
int img_open_file(int dirfd, const char *name, struct stat *st);
/* CRC32C of the bytes of dirfd's inventory.img (how a child names its parent). */
int img_dir_inventory_crc(int dirfd, uint32_t *ret, struct ckpt_error *e);
/* Remove the temporary directory (if not committed) and free. NULL-safe. */
void img_dir_free(struct img_dir *d);

/*
 * Give the image KIND of PID its storage ahead: the file is created now and
 * BYTES of data beyond its header written as zeros, so that writing it
 * later does not wait for fresh memory or blocks (a dump writes its pages
 * while the tree is frozen). img_create of it takes the file and overwrites
 * it from the start; img_close_write cuts what was not overwritten;
 * img_dir_seal removes a reserved image never created. Best effort: where
 * the file system has no room for it now, nothing is reserved and 0 is
 * returned (the writes find out later what they find out anyway).
 */
int img_reserve(struct img_dir *d, enum img_kind kind, int pid, uint64_t bytes,
		struct ckpt_error *e);
/*
 * A task's page data may be split into parts, written side by side:
 * pages-PID.img (part 0), pages-PID-1.img, ... pages-PID-<n-1>.img, each a
 * pages image of its own (header page, data, listed in the inventory with
 * its size and checksum); the task's data is their concatenation, in part
 * order. Every part's header says which part it is and of how many
 * (IMG_PAGES_PARTS_MAX at most); a pages image written whole is part 0 of 1.
 */
#define IMG_PAGES_PARTS_MAX 16
void img_pages_part_name(int pid, unsigned part, char *buf, size_t len);
int img_create_pages_part(struct img_dir *d, int pid, unsigned part, unsigned nparts,
			  struct img **ret, struct ckpt_error *e);
/* The same for part PART of the pages image of PID (parts: below). */
int img_reserve_pages_part(struct img_dir *d, int pid, unsigned part, uint64_t bytes,
			   struct ckpt_error *e);
/* How many images (parts of a pages image) of KIND and PID have storage
 * from img_reserve() not taken yet? */
unsigned img_reserved(const struct img_dir *d, enum img_kind kind, int pid);
/* Create an image in the directory and write its header. */
int img_create(struct img_dir *d, enum img_kind kind, int pid, struct img **ret,
	       struct ckpt_error *e);
int img_write_msg(struct img *img, const ProtobufCMessage *msg, struct ckpt_error *e);
/*
 * Raw page data (IMG_PAGES only): appended at the current data offset, which
 * is always page aligned; len must be a multiple of the page size.
 */
int img_write_pages(struct img *img, const void *buf, size_t len, struct ckpt_error *e);
/*
 * The same for a caller that checksummed buf itself: crc is
 * crc32c(img_crc(img), buf, len), what img_write_pages() would compute. The
 * dump checksums each buffer on the thread that filled it, while the data is
 * still in its cache, and writes it on another.
 */
int img_write_pages_summed(struct img *img, const void *buf, size_t len, uint32_t crc,
			   struct ckpt_error *e);
/* The same from n pieces in order, in one writev where it can (iov is
 * consumed: its entries are advanced as they are written). */
int img_writev_pages_summed(struct img *img, struct iovec *iov, size_t n, uint32_t crc,
			    struct ckpt_error *e);
/* The running CRC32C of everything written to the image so far. */
uint32_t img_crc(const struct img *img);
/* Flush, fsync and record size and checksum in the directory; frees img. */
int img_close_write(struct img *img, struct ckpt_error *e);

/* --- reading ------------------------------------------------------------ */

/*
 * Open a checkpoint directory: read inventory.img, check the format version
 * and that every listed image exists with the recorded size and CRC32C, and
 * that no image the restorer needs is missing. On success *ret_inv is the
 * unpacked inventory (free with inventory__free_unpacked) and *ret_dirfd an
 * O_DIRECTORY fd.
 */
int img_dir_open_verified(const char *path, int *ret_dirfd, Inventory **ret_inv,
			  struct ckpt_error *e);
/* Same for an already opened directory fd (not consumed). */
int img_dir_verify_fd(int dirfd, const char *what, Inventory **ret_inv, struct ckpt_error *e);
/*
 * Flags of the _flags variants. IMG_VERIFY_PAGES_BY_SIZE: check the size of
 * pages images but do not read them back for their checksum. Only for the
 * process that has just written them and computed those checksums from the
 * very bytes it wrote (the dump's own check, docs/images.md); a restore
 * reads every byte.
 */
#define IMG_VERIFY_PAGES_BY_SIZE 1u
int img_dir_open_verified_flags(const char *path, unsigned flags, int *ret_dirfd,
				Inventory **ret_inv, struct ckpt_error *e);
int img_dir_verify_fd_flags(int dirfd, const char *what, unsigned flags, Inventory **ret_inv,
			    struct ckpt_error *e);

/* Open an image for reading and check its header (magic, version, kind). */
int img_open(int dirfd, enum img_kind kind, int pid, struct img **ret, struct ckpt_error *e);
/* Open part `part` of pid's pages image (checks the header says so). */
int img_open_pages_part(int dirfd, int pid, unsigned part, struct img **ret, struct ckpt_error *e);
/* Of a pages image: how many parts its task's data has (its header). */
unsigned img_pages_nparts(const struct img *img);
/* Open by file name, kind taken from the name. */
int img_open_name(int dirfd, const char *name, struct img **ret, struct ckpt_error *e);
/*
 * Read the next message. Returns 1 with *ret set, 0 at a clean end of file
 * (*ret NULL), negative on a truncated or corrupted record (the error names
 * the file and the offset). Free with protobuf_c_message_free_unpacked(),
 * with the allocator it was read with.
 */
int img_read_msg(struct img *img, ProtobufCMessage **ret, struct ckpt_error *e);
/* Read exactly one message (error if the file has none or more than one). */
int img_read_one(struct img *img, ProtobufCMessage **ret, struct ckpt_error *e);
/* Unpack the messages read from now on with a (NULL: malloc, the default). */
void img_set_allocator(struct img *img, ProtobufCAllocator *a);
/* The open fd and file name of an image, and (pages) the data size in bytes. */
int img_fd(const struct img *img);
const char *img_name(const struct img *img);
enum img_kind img_get_kind(const struct img *img);
uint64_t img_pages_data_size(const struct img *img);
void img_close(struct img *img);

static inline void img_closep(struct img **p)
{
	if (*p)
		img_close(*p);
}
static inline void img_dir_freep(struct img_dir **p)
{
	if (*p)
		img_dir_free(*p);
}
#define _cleanup_img_ __attribute__((cleanup(img_closep)))

/*
 * Reading a task's page data wherever its parts are (image_pages.c): the
 * data offset is the one of the concatenation; a read that spans two parts
 * reads from both. Opened parts are checked (header, page-aligned data);
 * their checksums are the inventory's business (img_dir_verify_fd).
 */
struct img_pages;
int img_pages_open(int dirfd, int pid, struct img_pages **ret, struct ckpt_error *e);
/* Bytes of page data in all parts. */
uint64_t img_pages_size(const struct img_pages *p);
/* "pages-PID.img", for messages. */
const char *img_pages_name(const struct img_pages *p);
/* Read exactly len bytes at data offset off (errors name the part and offset). */
int img_pages_read(const struct img_pages *p, void *buf, size_t len, uint64_t off,
		   struct ckpt_error *e);
/* Its open fds (one per part) into fds[IMG_PAGES_PARTS_MAX]; returns how many. */
unsigned img_pages_fds(const struct img_pages *p, int *fds);
void img_pages_close(struct img_pages *p);
static inline void img_pages_closep(struct img_pages **p)
{
	if (*p)
		img_pages_close(*p);
}
#define _cleanup_img_pages_ __attribute__((cleanup(img_pages_closep)))
#define _cleanup_img_dir_ __attribute__((cleanup(img_dir_freep)))

/* --- JSON ------------------------------------------------------------------ */

/*
 * Print s as a JSON string (quoted, escaped; bytes that are not valid UTF-8
 * become \u00XX so the output is always valid JSON).
 */
void img_json_string(FILE *out, const char *s);
/* Print one message as JSON (generic, from its descriptor). */
void img_msg_to_json(FILE *out, const ProtobufCMessage *msg, int indent);
/* Print a whole image file as JSON: {"file":..,"kind":..,"entries":[...]} */
int img_file_to_json(FILE *out, int dirfd, const char *name, struct ckpt_error *e);
