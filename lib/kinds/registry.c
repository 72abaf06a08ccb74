/* SPDX-License-Identifier: MIT */
/*
 * The one list of fd kinds: the dump, the restorer's check of files.img,
 * file_entry_free_fields and fd_probe_describe ask it. Adding a kind: write
 * lib/kinds/<kind>.c exporting one const struct fd_kind, declare it here and
 * add it to the table (docs/fd-kinds.md, "Adding a kind").
 */
#include <stddef.h>

#include "cleanup.h"
#include "fd_kind.h"
#include "file_util.h"

extern const struct fd_kind fd_kind_procfile;
extern const struct fd_kind fd_kind_reg;
extern const struct fd_kind fd_kind_dir;
extern const struct fd_kind fd_kind_chr;
extern const struct fd_kind fd_kind_deleted;
extern const struct fd_kind fd_kind_memfd;
extern const struct fd_kind fd_kind_tty;
extern const struct fd_kind fd_kind_pipe;
extern const struct fd_kind fd_kind_fifo;
extern const struct fd_kind fd_kind_unix;
extern const struct fd_kind fd_kind_inet;
extern const struct fd_kind fd_kind_eventfd;
extern const struct fd_kind fd_kind_signalfd;
extern const struct fd_kind fd_kind_timerfd;
extern const struct fd_kind fd_kind_epoll;
extern const struct fd_kind fd_kind_inotify;
extern const struct fd_kind fd_kind_pidfd;
extern const struct fd_kind fd_kind_netlink;
extern const struct fd_kind fd_kind_symlink;
extern const struct fd_kind fd_kind_iouring;
extern const struct fd_kind fd_kind_mqueue;

static const struct {
	const struct fd_kind *kind;
	/* FileEntry.type it restores, 0 for kinds with tables of their own */
	FileType file_type;
} fd_kinds[] = {
    /* before reg: its files are regular files too */
    {&fd_kind_procfile, FILE_TYPE__FILE_PROC},
    /* before reg and deleted: a queue's fd is a regular file whose link is
     * its name, "(deleted)" once unlinked */
    {&fd_kind_mqueue, FILE_TYPE__FILE_MQUEUE},
    {&fd_kind_reg, FILE_TYPE__FILE_REG},
    {&fd_kind_dir, FILE_TYPE__FILE_DIR},
    {&fd_kind_chr, FILE_TYPE__FILE_CHR},
    {&fd_kind_tty, FILE_TYPE__FILE_TTY},
    {&fd_kind_pipe, FILE_TYPE__FILE_PIPE},
    {&fd_kind_fifo, FILE_TYPE__FILE_FIFO},
    {&fd_kind_memfd, FILE_TYPE__FILE_MEMFD},
    {&fd_kind_unix, FILE_TYPE__FILE_UNIX_SK},
    {&fd_kind_inet, FILE_TYPE__FILE_INET_SK},
    {&fd_kind_eventfd, FILE_TYPE__FILE_EVENTFD},
    {&fd_kind_signalfd, FILE_TYPE__FILE_SIGNALFD},
    {&fd_kind_timerfd, FILE_TYPE__FILE_TIMERFD},
    {&fd_kind_epoll, FILE_TYPE__FILE_EPOLL},
    {&fd_kind_inotify, FILE_TYPE__FILE_INOTIFY},
    {&fd_kind_pidfd, FILE_TYPE__FILE_PIDFD},
    {&fd_kind_netlink, FILE_TYPE__FILE_NETLINK_SK},
    {&fd_kind_symlink, FILE_TYPE__FILE_SYMLINK},
    {&fd_kind_iouring, FILE_TYPE__FILE_IOURING},
    /* FILE_REG entries with deleted set: chosen by fd_kind_for_file */
    {&fd_kind_deleted, 0},
};

const struct fd_kind *fd_kind_find(const struct fd_probe *p)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++)
		if (fd_kinds[i].kind->matches(p))
			return fd_kinds[i].kind;
	return NULL;
}

const struct fd_kind *fd_kind_for_file(const FileEntry *fe)
{
	if (fe->type == FILE_TYPE__FILE_REG && fe->has_deleted && fe->deleted)
		return &fd_kind_deleted;
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++)
		if (fd_kinds[i].file_type && fd_kinds[i].file_type == fe->type)
			return fd_kinds[i].kind;
	return NULL;
}

const struct fd_kind *fd_kind_nth(size_t i)
{
	return i < ARRAY_SIZE(fd_kinds) ? fd_kinds[i].kind : NULL;
}

bool fd_kinds_describe(const struct fd_probe *p, char *buf, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++)
		if (fd_kinds[i].kind->describe && fd_kinds[i].kind->describe(p, buf, len))
			return true;
	return false;
}

void fd_kinds_free_entry_fields(FileEntry *fe)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++) {
		size_t off = fd_kinds[i].kind->entry_field;
		ProtobufCMessage **m;

		if (!off)
			continue;
		/* two kinds may share a field (pipes and FIFOs: pipe): freed once */
		m = (ProtobufCMessage **)((char *)fe + off);
		if (*m)
			protobuf_c_message_free_unpacked(*m, NULL);
		*m = NULL;
	}
}

int fd_kinds_dump_done(const struct fd_dump_view *v, struct ckpt_error *e)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++) {
		const struct fd_kind *k = fd_kinds[i].kind;
		int r;

		if (!k->dump_done)
			continue;
		r = k->dump_done(v, e);
		if (r < 0)
			return r;
	}
	return 0;
}

int fd_kinds_dump_recheck(const struct fd_dump_view *v, struct ckpt_error *e)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++) {
		const struct fd_kind *k = fd_kinds[i].kind;
		int r;

		if (!k->dump_recheck)
			continue;
		r = k->dump_recheck(v, e);
		if (r < 0)
			return r;
	}
	return 0;
}

void fd_kinds_dump_undo(const struct fd_dump_view *v)
{
	for (size_t i = 0; i < ARRAY_SIZE(fd_kinds); i++)
		if (fd_kinds[i].kind->dump_undo)
			fd_kinds[i].kind->dump_undo(v);
}
