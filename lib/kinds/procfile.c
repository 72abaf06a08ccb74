/* SPDX-License-Identifier: MIT */
/*
 * Files of a process in /proc (/proc/PID/stat, /proc/self/status as the
 * link resolves it, /proc/PID/task/TID/...): procfs files whose path names
 * a pid. The process they name is usually one of the tree, which exists
 * again only once the tree is forked, so each task opens its own at stage
 * fds (open_in_task) by path, with the saved flags, and seeks to the saved
 * position. A procfs file has no size (st_size 0): what a read returns is
 * the kernel's at the time of the read, after restore as before. Other
 * procfs files (/proc/meminfo, /proc/sys/...) are regular files (reg.c).
 */
#define LOG_PREFIX "kind procfile: "

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

/* "/proc/<digits>/<more>", without "." or ".." components. */
static bool pid_path(const char *path)
{
	const char *p = path + strlen("/proc/");

	if (strncmp(path, "/proc/", 6) || *p < '1' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p != '/' || !p[1])
		return false;
	return !strstr(p, "/./") && !strstr(p, "/../") && strcmp(p + strlen(p) - 2, "/.") &&
	       strcmp(p + strlen(p) - 3, "/..");
}

static bool on_procfs(const struct fd_probe *p)
{
	struct statfs sfs;

	if (p->local_fd >= 0)
		return fstatfs(p->local_fd, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
	return statfs(p->link, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
}

static bool procfile_matches(const struct fd_probe *p)
{
	return S_ISREG(p->st.st_mode) && pid_path(p->link) && on_procfs(p);
}

static bool procfile_describe(const struct fd_probe *p, char *buf, size_t len)
{
	if (!procfile_matches(p))
		return false;
	snprintf(buf, len, "proc file %s", p->link);
	return true;
}

static int procfile_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("procfile-dump", e);

	return r < 0 ? r : fdk_dump_common(p, FILE_TYPE__FILE_PROC, fe, e);
}

static int procfile_check(const FileEntry *fe, struct ckpt_error *e)
{
	int r = fdk_check_entry(fe, FILE_TYPE__FILE_PROC, e);

	if (r >= 0 && !pid_path(fe->path))
		r = ckpt_err(e, -EINVAL,
			     "files.img: entry %u: %s is not a file of a process in /proc", fe->id,
			     fe->path);
	return r;
}

static int procfile_verify(const FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("procfile-verify", e);

	/* nothing to look at yet: the process it names is restored with the tree */
	return r < 0 ? r : procfile_check(fe, e);
}

static int procfile_open_in_task(const FileEntry *fe, pid_t pid, int *ret_fd, struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	struct statfs sfs;
	int r;

	r = ckpt_fault_inject("procfile-open", e);
	if (r >= 0)
		r = procfile_check(fe, e);
	if (r >= 0)
		r = fdk_reopen(fe, O_CLOEXEC, &fd, e);
	if (r >= 0 && (fstatfs(fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC))
		r = ckpt_err(e, -ESTALE, "pid %d: %s is not on procfs", pid, fe->path);
	if (r >= 0)
		r = fdk_seek(fd, fe, "proc file", e);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

const struct fd_kind fd_kind_procfile = {
    .name = "proc file",
    .matches = procfile_matches,
    .describe = procfile_describe,
    .dump = procfile_dump,
    .verify = procfile_verify,
    .open_in_task = procfile_open_in_task,
};
