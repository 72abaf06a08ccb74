/* SPDX-License-Identifier: MIT */
/*
 * Regular files opened by path. The description is reopened by its path with
 * the saved flags and position; a file that shrank below the saved position
 * is refused (the program would read past the end it knew), one that grew
 * is fine; a procfs file has no size (its reads are the kernel's of the
 * moment), so only its position counts. Deleted-but-open files are
 * deleted.c's, files of a process in /proc procfile.c's.
 */
#define LOG_PREFIX "kind reg: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"

static bool reg_matches(const struct fd_probe *p)
{
	/* Namespace files and new-style anon inodes are S_IFREG too: want a real path. */
	return S_ISREG(p->st.st_mode) && fdk_link_is_path(p->link);
}

static bool reg_describe(const struct fd_probe *p, char *buf, size_t len)
{
	if (!S_ISREG(p->st.st_mode) || !fdk_link_is_named_file(p->link))
		return false;
	snprintf(buf, len, "regular file %s", p->link);
	return true;
}

static int reg_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	FileIdent *id;
	int r;

	r = ckpt_fault_inject("file-dump", e);
	if (r < 0)
		return r;
	id = malloc(sizeof(*id));
	if (!id)
		return ckpt_err(e, -ENOMEM, "%s: out of memory", p->link);
	file_ident__init(id);
	/* No content checksum for fds: the position check is what matters. */
	if (p->local_fd >= 0) {
		r = file_ident_fill(p->local_fd, false, id, e);
		if (r < 0) {
			free(id);
			return ckpt_err_wrap(e, "regular file %s", p->link);
		}
	} else {
		id->size = (uint64_t)p->st.st_size;
		id->mtime_ns = (uint64_t)p->st.st_mtim.tv_sec * 1000000000ULL +
			       (uint64_t)p->st.st_mtim.tv_nsec;
		id->has_dev = id->has_ino = true;
		id->dev = p->st.st_dev;
		id->ino = p->st.st_ino;
	}
	r = fdk_dump_common(p, FILE_TYPE__FILE_REG, fe, e);
	if (r < 0) {
		free(id);
		return r;
	}
	free(fe->ident);
	fe->ident = id;
	return 0;
}

/* sfs: the file system's statfs (procfs files show no size) */
static int reg_check_stat(const FileEntry *fe, const struct stat *st, const struct statfs *sfs,
			  struct ckpt_error *e)
{
	uint64_t pos = fe->has_pos ? fe->pos : 0;

	if (!S_ISREG(st->st_mode))
		return ckpt_err(e, -EINVAL, "file %s is no longer a regular file (mode 0%o)",
				fe->path, (unsigned)st->st_mode);
	if ((uint64_t)st->st_size < pos && sfs->f_type != PROC_SUPER_MAGIC)
		return ckpt_err(e, -ESTALE,
				"file %s is now %llu bytes, shorter than the saved position %llu",
				fe->path, (unsigned long long)st->st_size, (unsigned long long)pos);
	return 0;
}

static int reg_verify(const FileEntry *fe, struct ckpt_error *e)
{
	struct statfs sfs;
	struct stat st;
	int r;

	r = ckpt_fault_inject("file-verify", e);
	if (r < 0)
		return r;
	r = fdk_check_entry(fe, FILE_TYPE__FILE_REG, e);
	if (r < 0)
		return r;
	/* saved with its content (a tmpfs file, --save-tmpfs-files): the
	 * object checks the file, or recreates it (restorer/shmem.c) */
	if (fe->has_shmem_id)
		return 0;
	if (stat(fe->path, &st) < 0 || statfs(fe->path, &sfs) < 0)
		return ckpt_err_errno(e, -errno, "file %s", fe->path);
	return reg_check_stat(fe, &st, &sfs, e);
}

/* A position no further than a's: a's check of the size covers it. */
static bool reg_verify_same(const FileEntry *a, const FileEntry *b)
{
	return a->type == b->type && !a->has_shmem_id && !b->has_shmem_id && a->path && b->path &&
	       (b->has_pos ? b->pos : 0) <= (a->has_pos ? a->pos : 0) && !strcmp(a->path, b->path);
}

static int reg_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	struct statfs sfs;
	struct stat st;
	uint32_t extra;
	int r;

	r = ckpt_fault_inject("file-open", e);
	if (r < 0)
		return r;
	r = fdk_check_entry(fe, FILE_TYPE__FILE_REG, e);
	if (r < 0)
		return r;
	/*
	 * O_NONBLOCK and O_NOCTTY for the open only: a FIFO or a terminal put
	 * at the path since the verify is then refused below, not waited on
	 * for a writer or made our controlling terminal (O_PATH opens nothing).
	 */
	extra = (uint32_t)(fd_flags & O_CLOEXEC);
	if (!(fe->flags & O_PATH))
		extra |= O_NONBLOCK | O_NOCTTY;
	r = fdk_reopen(fe, extra, &fd, e);
	if (r < 0)
		return r;
	/* What was opened is what counts (the path may have changed since verify). */
	if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0)
		return ckpt_err_errno(e, -errno, "cannot stat %s", fe->path);
	r = reg_check_stat(fe, &st, &sfs, e);
	if (r < 0)
		return r;
	if (extra & O_NONBLOCK) {
		r = fdk_set_nonblock(fd, fe, e);
		if (r < 0)
			return r;
	}
	if (!(fe->flags & O_PATH)) {
		r = fdk_seek(fd, fe, "file", e);
		if (r < 0)
			return r;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

const struct fd_kind fd_kind_reg = {
    .name = "regular file",
    .in_flight = true,
    .matches = reg_matches,
    .describe = reg_describe,
    .dump = reg_dump,
    .verify = reg_verify,
    .verify_same = reg_verify_same,
    .open = reg_open,
};
