/* SPDX-License-Identifier: MIT */
/*
 * signalfd. All it holds is the set of signals it reads ("sigmask:" in
 * fdinfo); the signals themselves are pending on the task or the process
 * and come back with the task's signal state. The restorer makes a new one
 * with signalfd4(-1, mask) (the raw syscall: glibc's sigset helpers refuse
 * the signals it reserves, which a program may still have in the mask).
 */
#define LOG_PREFIX "kind signalfd: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"

static bool signalfd_matches(const struct fd_probe *p)
{
	return !strcmp(p->link, "anon_inode:[signalfd]");
}

static bool signalfd_describe(const struct fd_probe *p, char *buf, size_t len)
{
	return fdk_describe_as(signalfd_matches(p), "signalfd", buf, len);
}

static int signalfd_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	SignalfdEntry *sf;
	uint64_t mask = 0;
	int r;

	r = ckpt_fault_inject("signalfd-dump", e);
	if (r < 0)
		return r;
	r = fdk_read_fdinfo(p, &text, e);
	if (r < 0)
		return r;
	if (!fdk_fdinfo_u64(text, "sigmask:", 16, &mask))
		return ckpt_err(e, -EINVAL, "signalfd: no sigmask line in its fdinfo");
	r = fdk_dump_common(p, FILE_TYPE__FILE_SIGNALFD, fe, e);
	if (r < 0)
		return r;
	sf = calloc(1, sizeof(*sf));
	if (!sf)
		return ckpt_err(e, -ENOMEM, "out of memory");
	signalfd_entry__init(sf);
	fe->signalfd = sf;
	sf->sigmask = mask;
	pr_debug("pid %d fd %d: signalfd mask %#" PRIx64 "\n", p->pid, p->fd, mask);
	return 0;
}

static int signalfd_check(const FileEntry *fe, struct ckpt_error *e)
{
	if (fe->type != FILE_TYPE__FILE_SIGNALFD || !fe->signalfd)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: not a signalfd entry", fe->id);
	return 0;
}

static int signalfd_verify(const FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("signalfd-verify", e);

	return r < 0 ? r : signalfd_check(fe, e);
}

static int signalfd_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	uint64_t mask;
	_cleanup_close_ int fd = -1;
	int r;

	r = ckpt_fault_inject("signalfd-open", e);
	if (r >= 0)
		r = signalfd_check(fe, e);
	if (r < 0)
		return r;
	mask = fe->signalfd->sigmask;
	/* the kernel's sigset: 64 bits, bit N-1 for signal N */
	fd = (int)syscall(SYS_signalfd4, -1, &mask, sizeof(mask),
			  fd_flags & O_CLOEXEC ? SFD_CLOEXEC : 0);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "signalfd4 with mask %#" PRIx64, mask);
	r = fdk_set_nonblock(fd, fe, e);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

const struct fd_kind fd_kind_signalfd = {
    .name = "signalfd",
    .in_flight = true,
    .matches = signalfd_matches,
    .describe = signalfd_describe,
    .entry_field = offsetof(FileEntry, signalfd),
    .path = FD_PATH_ANON_INODE,
    .dump = signalfd_dump,
    .verify = signalfd_verify,
    .open = signalfd_open,
};
