/* SPDX-License-Identifier: MIT */
/*
 * Kinds of file descriptor: one source file per kind in lib/kinds/, holding
 * both its dump and its restore side and exporting one ops table; the
 * registry (lib/kinds/registry.c) lists them all. An fd no kind matches
 * makes the dump fail with a message naming the pid, the fd and what it is.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "error.h"
#include "proc.h"
#include "files.pb-c.h"

/* What the dumper knows about one fd of a task before choosing its kind. */
struct fd_probe {
	pid_t pid;
	int fd;
	int local_fd;	     /* our own copy (pidfd_getfd), -1 if none */
	struct stat st;	     /* fstat of local_fd */
	char link[PATH_MAX]; /* readlink /proc/PID/fd/FD */
	struct proc_fdinfo info;
};

struct fd_kind {
	const char *name; /* "regular file", "directory", "character device" */
	FdKind kind;	  /* table the objects go to (FdEntry.kind) */
	bool (*matches)(const struct fd_probe *p);
	/*
	 * Describe the open file description into fe (fe->id is set by the
	 * caller, fe was file_entry__init'ed). Strings and sub-messages put
	 * into fe are malloc'ed: file_entry_free_fields() frees them (or
	 * file_entry__free_unpacked(fe, NULL) for a malloc'ed fe).
	 */
	int (*dump)(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e);
	/* Restore, before anything is created: can the object be recreated? */
	int (*verify)(const FileEntry *fe, struct ckpt_error *e);
	/* Restore: create the open file description in the restorer (flags, position). */
	int (*open)(const FileEntry *fe, int *ret_fd, struct ckpt_error *e);
};

/* The kind that handles this fd, or NULL (then fd_probe_describe says what it is). */
const struct fd_kind *fd_kind_find(const struct fd_probe *p);
/* The kind that restores a FileEntry of this type. */
const struct fd_kind *fd_kind_for_file(const FileEntry *fe);
/* Human name of what an fd is ("pipe", "unix socket", "eventfd", "tty /dev/pts/3"...). */
const char *fd_probe_describe(const struct fd_probe *p, char *buf, size_t len);
/* Fill a probe for fd of pid (pidfd for pidfd_getfd). */
int fd_probe_fill(int pidfd, pid_t pid, int fd, struct fd_probe *ret, struct ckpt_error *e);
void fd_probe_release(struct fd_probe *p);
/* Free the fields a kind's dump allocated (path, ident); fe itself is not freed. */
void file_entry_free_fields(FileEntry *fe);

/* File identity, to detect a file changed since the dump. */
int file_ident_fill(int fd, bool with_content, FileIdent *ret, struct ckpt_error *e);
/*
 * Check an opened file against its saved identity: size and mtime equal, or
 * (when the content checksum was saved) the same content. "what" names the
 * file in the error ("mapped file /usr/lib/libc.so.6").
 */
int file_ident_check(int fd, const FileIdent *id, const char *what, struct ckpt_error *e);
