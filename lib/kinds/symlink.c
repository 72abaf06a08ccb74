/* SPDX-License-Identifier: MIT */
/*
 * Symbolic links opened themselves (O_PATH | O_NOFOLLOW): the handle names
 * the link, not its target (fstat says S_IFLNK, readlinkat(fd, "") reads
 * the target). Saved by path with the target it held; reopened the same way
 * at restore after checking the path is still a symbolic link to the same
 * target.
 */
#define LOG_PREFIX "kind symlink: "

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"

static bool symlink_matches(const struct fd_probe *p)
{
	return S_ISLNK(p->st.st_mode) && fdk_link_is_path(p->link);
}

static bool symlink_describe(const struct fd_probe *p, char *buf, size_t len)
{
	if (!S_ISLNK(p->st.st_mode))
		return false;
	snprintf(buf, len, "symbolic link %s", p->link);
	return true;
}

static int symlink_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	char target[PATH_MAX];
	ssize_t n;
	int r;

	r = ckpt_fault_inject("symlink-dump", e);
	if (r < 0)
		return r;
	if (p->local_fd < 0)
		return ckpt_err(e, -EBADF, "symbolic link %s: no copy of the fd to read it",
				p->link);
	n = readlinkat(p->local_fd, "", target, sizeof(target) - 1);
	if (n < 0)
		return ckpt_err_errno(e, -errno, "symbolic link %s: readlink", p->link);
	target[n] = '\0';
	r = fdk_dump_common(p, FILE_TYPE__FILE_SYMLINK, fe, e);
	if (r < 0)
		return r;
	fe->link_target = strdup(target);
	if (!fe->link_target)
		return ckpt_err(e, -ENOMEM, "out of memory");
	return 0;
}

/* The path is still a symbolic link to the same target. */
static int symlink_check(const FileEntry *fe, struct ckpt_error *e)
{
	char target[PATH_MAX];
	ssize_t n;
	int r;

	r = fdk_check_entry(fe, FILE_TYPE__FILE_SYMLINK, e);
	if (r < 0)
		return r;
	if (!fe->link_target)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: symbolic link without its target",
				fe->id);
	n = readlink(fe->path, target, sizeof(target) - 1);
	if (n < 0)
		return ckpt_err_errno(e, -errno, "symbolic link %s", fe->path);
	target[n] = '\0';
	if (strcmp(target, fe->link_target))
		return ckpt_err(e, -ESTALE,
				"symbolic link %s now points to %s, not %s as when it was dumped",
				fe->path, target, fe->link_target);
	return 0;
}

static int symlink_verify(const FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("symlink-verify", e);

	return r < 0 ? r : symlink_check(fe, e);
}

static int symlink_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	struct stat st;
	int fd, r;

	r = ckpt_fault_inject("symlink-open", e);
	if (r >= 0)
		r = symlink_check(fe, e);
	if (r < 0)
		return r;
	fd = open(fe->path, O_PATH | O_NOFOLLOW | (fd_flags & O_CLOEXEC));
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open symbolic link %s", fe->path);
	if (fstat(fd, &st) < 0 || !S_ISLNK(st.st_mode)) {
		close(fd);
		return ckpt_err(e, -ESTALE, "%s is no longer a symbolic link", fe->path);
	}
	*ret_fd = fd;
	return 0;
}

const struct fd_kind fd_kind_symlink = {
    .name = "symbolic link",
    .in_flight = true,
    .matches = symlink_matches,
    .describe = symlink_describe,
    .dump = symlink_dump,
    .verify = symlink_verify,
    .open = symlink_open,
};
