/* SPDX-License-Identifier: MIT */
/*
 * Directories opened by path (opendir, O_PATH handles, *at() anchors). The
 * position is the getdents cookie of the filesystem; it is restored with
 * lseek, which the same filesystem understands.
 */
#define LOG_PREFIX "kind dir: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"

static bool dir_matches(const struct fd_probe *p)
{
	return S_ISDIR(p->st.st_mode) && fdk_link_is_path(p->link);
}

static bool dir_describe(const struct fd_probe *p, char *buf, size_t len)
{
	if (!S_ISDIR(p->st.st_mode) || !fdk_link_is_named_file(p->link))
		return false;
	snprintf(buf, len, "directory %s", p->link);
	return true;
}

static int dir_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("dir-dump", e);

	if (r < 0)
		return r;
	/* No ident: a directory's size and mtime change with every entry added. */
	return fdk_dump_common(p, FILE_TYPE__FILE_DIR, fe, e);
}

static int dir_verify(const FileEntry *fe, struct ckpt_error *e)
{
	struct stat st;
	int r;

	r = ckpt_fault_inject("dir-verify", e);
	if (r < 0)
		return r;
	r = fdk_check_entry(fe, FILE_TYPE__FILE_DIR, e);
	if (r < 0)
		return r;
	if (stat(fe->path, &st) < 0)
		return ckpt_err_errno(e, -errno, "directory %s", fe->path);
	if (!S_ISDIR(st.st_mode))
		return ckpt_err(e, -ENOTDIR, "%s is no longer a directory (mode 0%o)", fe->path,
				(unsigned)st.st_mode);
	return 0;
}

static int dir_open(const FileEntry *fe, int *ret_fd, struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	int r;

	r = ckpt_fault_inject("dir-open", e);
	if (r < 0)
		return r;
	r = fdk_check_entry(fe, FILE_TYPE__FILE_DIR, e);
	if (r < 0)
		return r;
	r = fdk_reopen(fe, O_DIRECTORY, &fd, e);
	if (r < 0)
		return r;
	if (!(fe->flags & O_PATH)) {
		r = fdk_seek(fd, fe, "directory", e);
		if (r < 0)
			return r;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

const struct fd_kind fd_kind_dir = {
    .name = "directory",
    .matches = dir_matches,
    .describe = dir_describe,
    .dump = dir_dump,
    .verify = dir_verify,
    .open = dir_open,
};
