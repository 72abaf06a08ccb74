/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the kinds that reopen a file by its path (regular files,
 * directories, character devices). Private to lib/kinds/.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "fd_kind.h"

#define DELETED_SUFFIX " (deleted)"

/* The /proc link ends in " (deleted)": the file has no name any more. */
bool fdk_link_is_deleted(const char *link);
/* The link is an absolute path that still exists (not "pipe:[..]", not deleted). */
bool fdk_link_is_path(const char *link);
/*
 * For describe: the link is the path of a file that has a name (absolute,
 * not deleted, not a memfd's "/memfd:NAME": memfd.c describes those).
 */
bool fdk_link_is_named_file(const char *link);
/* For describe: when is, write what into buf and say true. */
bool fdk_describe_as(bool is, const char *what, char *buf, size_t len);
/*
 * For describe: SO_DOMAIN of a socket fd (the link "socket:[INODE]" or
 * S_ISSOCK) through our copy; -1 if not a socket, no copy, or unknown.
 */
int fdk_probe_sock_domain(const struct fd_probe *p);
/* Ask every kind's describe in registry order (fd_probe_describe does first). */
bool fd_kinds_describe(const struct fd_probe *p, char *buf, size_t len);
/* The open(2) flags worth restoring (access mode, O_APPEND, O_NONBLOCK...). */
uint32_t fdk_open_flags(uint32_t saved);
/*
 * Fill the fields every path-based kind saves: type, path, flags (without
 * O_CLOEXEC), pos, mode. Everything is malloc'ed, so that
 * file_entry__free_unpacked(fe, NULL) or file_entry_free_fields() frees it.
 */
int fdk_dump_common(const struct fd_probe *p, FileType type, FileEntry *fe, struct ckpt_error *e);
/* Images are not trusted: the saved path must be absolute, sane and of type. */
int fdk_check_entry(const FileEntry *fe, FileType type, struct ckpt_error *e);
/*
 * open(path, saved flags | extra) without creating or truncating anything
 * (extra: O_CLOEXEC if the fd is to have it); O_NOATIME is dropped where
 * the kernel does not allow it to us.
 */
int fdk_reopen(const FileEntry *fe, uint32_t extra, int *ret_fd, struct ckpt_error *e);
/* lseek to the saved position; "what" names the file in the error. */
int fdk_seek(int fd, const FileEntry *fe, const char *what, struct ckpt_error *e);
/* The whole /proc/PID/fdinfo/FD text of the probed fd (event fds: kind lines), malloc'ed. */
int fdk_read_fdinfo(const struct fd_probe *p, char **ret, struct ckpt_error *e);
/* Our own copy of fd of pid (pidfd_getfd; the task frozen), or -errno. */
int fdk_grab_fd(pid_t pid, int fd, struct ckpt_error *e);
/* Set or clear O_NONBLOCK on fd as the entry's saved flags say. */
int fdk_set_nonblock(int fd, const FileEntry *fe, struct ckpt_error *e);
/* An fd made close-on-exec given the flag fd_flags asks for (fd_kind.open). */
int fdk_set_fd_flags(int fd, int fd_flags, const FileEntry *fe, struct ckpt_error *e);
/* Free the sub-message of every kind (struct fd_kind.entry_field) set in fe. */
void fd_kinds_free_entry_fields(FileEntry *fe);
/* The number after "key" at the start of a line of fdinfo text, in base; false if none. */
bool fdk_fdinfo_u64(const char *text, const char *key, int base, uint64_t *ret);

/*
 * Kinds whose objects are made all together at the first open_shared call
 * (sockets: both ends of a connection, a listener before its clients).
 */
struct fdk_batch {
	int (*check)(const FileEntry *fe, struct ckpt_error *e);
	/* Make every object of the kind; set ctx->priv first (open_done frees it). */
	int (*build)(struct fd_open_ctx *ctx, struct ckpt_error *e);
	/* The fd build made for fe, -1 if none. */
	int (*fd_of)(void *priv, const FileEntry *fe);
	const char *(*describe)(const FileEntry *fe, char *buf, size_t len);
};

/* open_shared of such a kind: the first call builds, each returns a dup of fe's object. */
int fdk_batch_open(struct fd_open_ctx *ctx, const struct fdk_batch *b, const FileEntry *fe,
		   int *ret_fd, struct ckpt_error *e);
