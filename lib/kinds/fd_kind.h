/* SPDX-License-Identifier: MIT */
/*
 * Kinds of file descriptor: one source file per kind in lib/kinds/, holding
 * both its dump and its restore side and exporting one ops table; the
 * registry (lib/kinds/registry.c) lists them all. An fd no kind matches
 * makes the dump fail with a message naming the pid, the fd and what it is.
 */
#pragma once

#include <limits.h>
#include <stddef.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "error.h"
#include "proc.h"
#include "files.pb-c.h"

/*
 * The dump engine's hand for files in flight (SCM_RIGHTS in a unix socket's
 * queue): fd is a copy the dump holds (a MSG_PEEK installed it; the engine
 * takes it over, closed whatever happens). The engine dumps it as an open
 * file description of the tree once every task's fds are dumped (the same
 * description as a task's fd when kcmp says so) and writes its files.img id
 * to *ret_id then: ret_id must stay valid until the dump ends.
 */
struct fd_inflight_sink {
	int (*add)(struct fd_inflight_sink *s, int fd, uint32_t *ret_id, struct ckpt_error *e);
};

/* What the dumper knows about one fd of a task before choosing its kind. */
struct fd_probe {
	pid_t pid;
	int fd;
	int local_fd;	     /* our own copy (pidfd_getfd), -1 if none */
	struct stat st;	     /* fstat of local_fd */
	char link[PATH_MAX]; /* readlink /proc/PID/fd/FD */
	struct proc_fdinfo info;
	char *fdinfo; /* the text info was read from (its lock lines: dump_fd_locks) */
	/* set by the engine: its open file description's address
	 * (kread_task_files), 0 where the dump compares them with kcmp */
	uint64_t file_addr;
	/* set by the engine: where files in flight found by the kind go (NULL: refused) */
	struct fd_inflight_sink *inflight;
	/* a file in flight: pid and fd are the dump's own copy, not a task's */
	bool in_flight;
	/*
	 * Set by the engine for dump: the dump's kernel reader (lib/kread.h),
	 * NULL until a kind first needs one (kread_unix_queue opens it), freed
	 * by the engine. NULL: none kept (each use opens its own).
	 */
	struct kread **kread;
	/*
	 * Set by the engine for a task's fd: run one syscall with register
	 * arguments only in the task's main thread (frozen; a remote-syscall
	 * session of its own), its raw result (maybe -errno) in *ret. For what
	 * the kernel answers only to the task itself. NULL when not available.
	 */
	int (*remote)(const struct fd_probe *p, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		      uint64_t a4, long *ret, struct ckpt_error *e);
};

/* One open file description of the tree as the dump saw it (for dump_done). */
struct fd_dump_item {
	FileEntry *fe;
	pid_t pid; /* the first fd that showed it (in flight only: the socket whose queue holds it) */
	int fd;
};

/* Everything dump_done may look at once every fd of every task is dumped. */
struct fd_dump_view {
	struct fd_dump_item *items; /* every FileEntry made from an fd (no mappings) */
	size_t n;
	const pid_t *pids; /* the tasks of the tree */
	size_t npids;
	pid_t self; /* the dumping process: its copies of the fds are not outside holders */
	/* resources outside the tree the user declared external ("unix:INODE") */
	const char *const *external;
	size_t n_external;
	/* --tcp-close: established TCP connections are saved to come back reset */
	bool tcp_close;
};

/*
 * State a kind keeps between its open calls of one restore, for objects made
 * together (both ends of a pipe come from one pipe() call): the restorer
 * gives each kind one, zeroed, for the whole files stage.
 */
struct fd_open_ctx {
	void *priv; /* the kind's own, NULL at first */
	/* every FileEntry of the restore (for kinds that build objects together) */
	const FileEntry *const *all;
	size_t nall;
	/*
	 * Call made_path(owner, path) for a file system object the open made
	 * (a FIFO made again because it was gone): the restorer removes it if
	 * the restore fails. NULL when nobody asks.
	 */
	void (*made_path)(void *owner, const char *path);
	void *owner;
	/*
	 * The restorer's open file description of files.img entry id (made now
	 * if not yet: files in flight are sent in SCM_RIGHTS messages by the
	 * kind that fills a socket's queue). The restorer keeps it; NULL when
	 * nobody asks.
	 */
	int (*file_fd)(void *owner, uint32_t id, int *ret_fd, struct ckpt_error *e);
};

/*
 * What FileEntry.path holds for a kind: the restorer checks files.img
 * against it before anything else reads the entries.
 */
enum fd_kind_path {
	/* an absolute path shorter than PATH_MAX (files opened by path) */
	FD_PATH_ABSOLUTE = 0,
	/* the /proc link of an object without a path, "pipe:[INODE]", "socket:[INODE]" */
	FD_PATH_PROC_LINK,
	/* "anon_inode:[eventfd]"...: starts with "anon_inode:", shorter than 64 */
	FD_PATH_ANON_INODE,
};

struct fd_kind {
	const char *name; /* "regular file", "directory", "character device" */
	/*
	 * Its open file descriptions may be in flight (SCM_RIGHTS in a unix
	 * socket's queue, held by no task): dumped from the dump's own copy,
	 * made by the restorer like any other before the queue is filled.
	 */
	bool in_flight;
	/*
	 * Restore: opened after every other kind's objects, and after their
	 * open_done: an object that sees what the restorer does to files (an
	 * inotify watch) must not see the restorer make the others (a FIFO's
	 * helper opened, written and closed).
	 */
	bool open_late;
	bool (*matches)(const struct fd_probe *p);
	/*
	 * Optional. Say what the fd is ("pipe", "regular file /etc/hosts")
	 * when it is of this kind's sort, restorable or not (a character
	 * device the kind does not handle, a deleted directory): for the
	 * message of fd_probe_describe. False if the fd is not of this sort.
	 * The sorts of two kinds must not overlap (else the first kind of
	 * the registry wins).
	 */
	bool (*describe)(const struct fd_probe *p, char *buf, size_t len);
	/*
	 * offsetof(FileEntry, <field>) of the kind's own sub-message (pipe,
	 * unix_sk...), 0 if it has none: file_entry_free_fields() frees it.
	 */
	size_t entry_field;
	enum fd_kind_path path; /* what FileEntry.path holds */
	/*
	 * Describe the open file description into fe (fe->id is set by the
	 * caller, fe was file_entry__init'ed). Strings and sub-messages put
	 * into fe are malloc'ed: file_entry_free_fields() frees them, the
	 * kind's sub-message through entry_field (or
	 * file_entry__free_unpacked(fe, NULL) for a malloc'ed fe).
	 * -EAGAIN (here and from dump_done) says the state is one the tree's
	 * own progress clears (a connection it has not accepted yet): the
	 * engine resumes the tree, lets it run a moment and dumps again, for
	 * up to 2 s, before the dump fails with this error.
	 */
	int (*dump)(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e);
	/* Restore, before anything is created: can the object be recreated? */
	int (*verify)(const FileEntry *fe, struct ckpt_error *e);
	/*
	 * Optional. b's verify would ask the machine only what a's asked and
	 * pass if a's did (the same path, nothing b needs that a did not): a
	 * restore verifies b by a's success, one stat of /dev/null for 9,000
	 * of its fds. The open checks each object anyway.
	 */
	bool (*verify_same)(const FileEntry *a, const FileEntry *b);
	/*
	 * Restore: create the open file description in the restorer (flags,
	 * position), its fd close-on-exec exactly when fd_flags has O_CLOEXEC:
	 * the restorer makes an object right at the number the tasks' fds have,
	 * with their flag, and no task then sets it with an fcntl of its own
	 * (restorer/fds.c). NULL for kinds that only have open_shared: every
	 * kind has one of the two.
	 */
	int (*open)(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e);
	/*
	 * Optional. Dump: called once after every fd of the tree was dumped,
	 * for what spans several fds (the two ends of a pipe, data saved
	 * once); may change the entries of its kind. An error fails the dump.
	 */
	int (*dump_done)(const struct fd_dump_view *v, struct ckpt_error *e);
	/*
	 * Optional. Restore: used instead of open when set, with the kind's
	 * state of this restore (objects made together: a pipe's two ends).
	 */
	int (*open_shared)(struct fd_open_ctx *ctx, const FileEntry *fe, int *ret_fd,
			   struct ckpt_error *e);
	/* Optional. End of the files stage (success or not): release ctx->priv. */
	void (*open_done)(struct fd_open_ctx *ctx);
	/*
	 * Optional. Restore, INSIDE task pid once all its fds are at their
	 * numbers (before the others are closed): what needs the task's own fd
	 * numbers (epoll registrations). fd is the task's lowest fd for fe;
	 * called once per entry and task, in fd order.
	 */
	int (*install)(const FileEntry *fe, int fd, pid_t pid, struct ckpt_error *e);
	/*
	 * Optional, instead of open and open_shared: the object can only be
	 * made once the tree exists (a pidfd of one of its tasks), so each task
	 * makes it itself, INSIDE task pid in stage fds, once per entry (its
	 * other fds of the entry are dups of the first). Entries of such a kind
	 * are never shared by two tasks (the dump refuses that).
	 */
	int (*open_in_task)(const FileEntry *fe, pid_t pid, int *ret_fd, struct ckpt_error *e);
	/*
	 * Optional. Dump: the tree is about to be resumed (a failed dump, or
	 * --leave-running once everything is copied; the tasks are still
	 * frozen): undo what dump or dump_done changed in the live objects
	 * (TCP repair mode, the network lock). May be called more than once.
	 */
	void (*dump_undo)(const struct fd_dump_view *v);
	/*
	 * Optional. Dump, the tree to be killed: the checkpoint is committed
	 * and the tasks still frozen. -EAGAIN when a live object changed
	 * since it was saved without the tree's doing (a connection a
	 * listener got): the checkpoint is withdrawn, the tree resumed and
	 * the dump tried again.
	 */
	int (*dump_recheck)(const struct fd_dump_view *v, struct ckpt_error *e);
};

/* The kind that handles this fd, or NULL (then fd_probe_describe says what it is). */
const struct fd_kind *fd_kind_find(const struct fd_probe *p);
/* The kind that restores a FileEntry of this type. */
const struct fd_kind *fd_kind_for_file(const FileEntry *fe);
/* The i-th kind of the registry, NULL past the last (to check them all). */
const struct fd_kind *fd_kind_nth(size_t i);
/* Call every kind's dump_done (dump side, once all fds are dumped). */
int fd_kinds_dump_done(const struct fd_dump_view *v, struct ckpt_error *e);
/* Call every kind's dump_recheck (the tree is about to be killed). */
int fd_kinds_dump_recheck(const struct fd_dump_view *v, struct ckpt_error *e);
/* Call every kind's dump_undo (the tree is about to be resumed). */
void fd_kinds_dump_undo(const struct fd_dump_view *v);
/* Human name of what an fd is ("pipe", "unix socket", "eventfd", "tty /dev/pts/3"...). */
const char *fd_probe_describe(const struct fd_probe *p, char *buf, size_t len);
/* Fill a probe for fd of pid (pidfd for pidfd_getfd); fd_probe_release
 * closes its copy and frees its fdinfo text. */
int fd_probe_fill(int pidfd, pid_t pid, int fd, struct fd_probe *ret, struct ckpt_error *e);
void fd_probe_release(struct fd_probe *p);
/* Free the fields a kind's dump allocated (path, ident); fe itself is not freed. */
void file_entry_free_fields(FileEntry *fe);

/* File identity, to detect a file changed since the dump. */
int file_ident_fill(int fd, bool with_content, FileIdent *ret, struct ckpt_error *e);
/* The identity of what st describes, without a content sum. */
void file_ident_of_stat(const struct stat *st, FileIdent *ret);
/*
 * A content checksum taken before the tree is frozen, and the identity it
 * belongs to. Any change of a file's content through write, truncate or a
 * mapping that updates times sets its ctime to the current time, so while
 * the identity is unchanged the sum holds, provided the ctime was already
 * older than the coarsest timestamp granularity when the sum was taken.
 */
struct file_sum {
	uint64_t dev, ino, size, mtime_ns, ctime_ns;
	uint32_t crc;
};
/*
 * open(path, flags), and again without O_NOATIME where flags ask for it and
 * the kernel does not allow it to us (a file we neither own nor have
 * CAP_FOWNER for). The dump's reads of a file the tree maps, for its sum
 * or its pages, ask for it: they leave its access time alone, which the
 * program may look at (test_atime); a reopen asks for it where the program
 * had it.
 */
int file_open_noatime(const char *path, int flags);
/*
 * file_open_noatime of a file that must be a regular one, so that nothing
 * else put at the path holds the caller up: opened O_NONBLOCK and
 * O_NOCTTY (a FIFO does not wait for a writer), its type checked, then
 * O_NONBLOCK taken off again unless flags ask for it. The fd (st filled),
 * -errno of the open, fstat or fcntl, or -EBADMSG for another type.
 */
int file_open_regular(const char *path, int flags, struct stat *st);
/*
 * Which file a path or an fd names: device, inode, type and, where the file
 * system keeps it, birth time. A restore that makes a file in a directory
 * others may write compares what it opens, or removes, with what it made:
 * an inode number freed by a removal is given to the next file made there,
 * so device and inode alone would take a replacement for the original.
 */
struct file_made {
	bool known;
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	uint16_t type; /* S_IFMT bits */
	bool has_btime;
	struct statx_timestamp btime;
};
/* Of fd (fd >= 0) or of path itself, not a symlink's target; known false
 * when it cannot be looked at (gone). */
struct file_made file_made_of(int fd, const char *path);
bool file_made_same(const struct file_made *a, const struct file_made *b);
/* Whether path (itself, not a symlink's target) still names made. */
bool file_made_at(const char *path, const struct file_made *made);
/*
 * Open again what was just made at path, a file of type (S_IFIFO, S_IFDIR...)
 * (made: file_made_of right after making it), O_NOFOLLOW|O_CLOEXEC added to
 * flags: the fd, -ESTALE when the path names something else now (a symlink,
 * another file, nothing) or made was already not of that type, or -errno
 * of the open.
 */
int file_made_open(const char *path, int flags, mode_t type, const struct file_made *made);
/* Owner (-1: unchanged) then mode (-1: unchanged) of what fd names, O_PATH
 * fds too: never by path, which could have been replaced since. -errno. */
int fd_set_owner_mode(int fd, uid_t uid, gid_t gid, int mode);
/*
 * A removed directory made again (a directory fd's, or a cwd's): at path,
 * or at PATH.ckpt-XXXXXX when path is taken, with that owner and mode (-1:
 * left), and removed again at once: an O_PATH fd of it in *ret_fd (its
 * /proc link reads "PATH (deleted)"). what names it in errors.
 */
int dir_make_removed(const char *path, const char *what, uid_t uid, gid_t gid, int mode,
		     int *ret_fd, struct ckpt_error *e);
/*
 * The content sum of fd (known[n]: sums taken before the freeze) into id,
 * whose identity was taken in the freeze from a stat: the frozen tree
 * still maps or holds the file, so another identity now is someone else's
 * change, -EAGAIN ("what changed while the tree was dumped").
 */
int file_ident_sum_check(int fd, const struct file_sum *known, size_t n, FileIdent *id,
			 const char *what, struct ckpt_error *e);
/* Take the sum of fd's content now: 0 (*ret filled), 1 (not taken: not a
 * regular file, too large to checksum, changed within the last second or
 * while it was read), or <0. */
int file_sum_take(int fd, struct file_sum *ret, struct ckpt_error *e);
/* file_ident_fill(fd, true, ...), the content checksum taken from the sum in
 * known[n] of the same identity if there is one (not read again). */
int file_ident_fill_known(int fd, const struct file_sum *known, size_t n, FileIdent *ret,
			  struct ckpt_error *e);
/*
 * Check an opened file against its saved identity: size and mtime equal, or
 * (when the content checksum was saved) the same content. "what" names the
 * file in the error ("mapped file /usr/lib/libc.so.6").
 */
int file_ident_check(int fd, const FileIdent *id, const char *what, struct ckpt_error *e);
