/* SPDX-License-Identifier: MIT */
/*
 * The stateless character devices of the mem driver (/dev/null, /dev/zero,
 * /dev/full, /dev/random, /dev/urandom): reopened by path after checking the
 * path is still the same device. Terminals and every other device carry
 * state of their own and are other kinds' business.
 */
#define LOG_PREFIX "kind chr: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"
#include "tty.h"

static const struct {
	unsigned major, minor;
} chr_devices[] = {
    {1, 3}, /* null */
    {1, 5}, /* zero */
    {1, 7}, /* full */
    {1, 8}, /* random */
    {1, 9}, /* urandom */
};

static bool chr_supported(dev_t rdev)
{
	for (size_t i = 0; i < ARRAY_SIZE(chr_devices); i++)
		if (major(rdev) == chr_devices[i].major && minor(rdev) == chr_devices[i].minor)
			return true;
	return false;
}

static bool chr_matches(const struct fd_probe *p)
{
	return S_ISCHR(p->st.st_mode) && chr_supported(p->st.st_rdev) && fdk_link_is_path(p->link);
}

/* Terminals are tty.c's to describe. */
static bool chr_describe(const struct fd_probe *p, char *buf, size_t len)
{
	dev_t rdev = p->st.st_rdev;

	if (!S_ISCHR(p->st.st_mode) || !fdk_link_is_named_file(p->link) ||
	    tty_is_terminal_major(major(rdev)))
		return false;
	snprintf(buf, len, "character device %u:%u %s", major(rdev), minor(rdev), p->link);
	return true;
}

static int chr_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("chr-dump", e);

	if (r < 0)
		return r;
	r = fdk_dump_common(p, FILE_TYPE__FILE_CHR, fe, e);
	if (r < 0)
		return r;
	fe->has_rdev = true;
	fe->rdev = p->st.st_rdev;
	return 0;
}

static int chr_check_stat(const FileEntry *fe, const struct stat *st, struct ckpt_error *e)
{
	dev_t want = (dev_t)fe->rdev;

	if (!S_ISCHR(st->st_mode))
		return ckpt_err(e, -ENODEV, "%s is no longer a character device (mode 0%o)",
				fe->path, (unsigned)st->st_mode);
	if (st->st_rdev != want)
		return ckpt_err(e, -ENODEV, "character device %s is now %u:%u, was %u:%u", fe->path,
				major(st->st_rdev), minor(st->st_rdev), major(want), minor(want));
	return 0;
}

/* Images are not trusted: never open a device outside the list by a saved path. */
static int chr_check_entry(const FileEntry *fe, struct ckpt_error *e)
{
	int r = fdk_check_entry(fe, FILE_TYPE__FILE_CHR, e);

	if (r < 0)
		return r;
	if (!fe->has_rdev)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: character device %s without rdev",
				fe->id, fe->path);
	if (!chr_supported((dev_t)fe->rdev))
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u: character device %u:%u (%s) is not supported",
				fe->id, major((dev_t)fe->rdev), minor((dev_t)fe->rdev), fe->path);
	return 0;
}

static int chr_verify(const FileEntry *fe, struct ckpt_error *e)
{
	struct stat st;
	int r;

	r = ckpt_fault_inject("chr-verify", e);
	if (r < 0)
		return r;
	r = chr_check_entry(fe, e);
	if (r < 0)
		return r;
	if (stat(fe->path, &st) < 0)
		return ckpt_err_errno(e, -errno, "character device %s", fe->path);
	return chr_check_stat(fe, &st, e);
}

static bool chr_verify_same(const FileEntry *a, const FileEntry *b)
{
	return a->type == b->type && a->has_rdev && b->has_rdev && a->rdev == b->rdev && a->path &&
	       b->path && !strcmp(a->path, b->path);
}

static int chr_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	r = ckpt_fault_inject("chr-open", e);
	if (r < 0)
		return r;
	r = chr_check_entry(fe, e);
	if (r < 0)
		return r;
	/*
	 * O_NOCTTY: never let a reopened device become a controlling terminal.
	 * O_NONBLOCK until it is known to be the device (these ignore it): a
	 * FIFO put at the path is refused, not waited on for a writer.
	 */
	r = fdk_reopen(fe, O_NOCTTY | O_NONBLOCK | (uint32_t)(fd_flags & O_CLOEXEC), &fd, e);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return ckpt_err_errno(e, -errno, "cannot stat %s", fe->path);
	r = chr_check_stat(fe, &st, e);
	if (r < 0)
		return r;
	r = fdk_set_nonblock(fd, fe, e);
	if (r < 0)
		return r;
	/* These devices have no position worth keeping (lseek on them is a no-op). */
	*ret_fd = TAKE_FD(fd);
	return 0;
}

const struct fd_kind fd_kind_chr = {
    .name = "character device",
    .in_flight = true,
    .matches = chr_matches,
    .describe = chr_describe,
    .dump = chr_dump,
    .verify = chr_verify,
    .verify_same = chr_verify_same,
    .open = chr_open,
};
