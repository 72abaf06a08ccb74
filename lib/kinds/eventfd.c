/* SPDX-License-Identifier: MIT */
/*
 * eventfd. fdinfo shows the counter ("eventfd-count:", hex) and, on 6.x,
 * "eventfd-semaphore:"; both are saved without reading the eventfd, so the
 * running program loses nothing. The restorer makes a new eventfd with the
 * same EFD_SEMAPHORE flag and writes the counter into it; O_NONBLOCK is set
 * with F_SETFL (O_CLOEXEC is per fd).
 */
#define LOG_PREFIX "kind eventfd: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"

/* The kernel refuses a counter of ~0 (write(2) of 0xffffffffffffffff). */
#define EVENTFD_MAX UINT64_C(0xfffffffffffffffe)

static bool eventfd_matches(const struct fd_probe *p)
{
	return !strcmp(p->link, "anon_inode:[eventfd]");
}

static bool eventfd_describe(const struct fd_probe *p, char *buf, size_t len)
{
	return fdk_describe_as(eventfd_matches(p), "eventfd", buf, len);
}

static int eventfd_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	uint64_t count = 0, sem = 0;
	EventfdEntry *ev;
	int r;

	r = ckpt_fault_inject("eventfd-dump", e);
	if (r < 0)
		return r;
	r = fdk_read_fdinfo(p, &text, e);
	if (r < 0)
		return r;
	if (!fdk_fdinfo_u64(text, "eventfd-count:", 16, &count))
		return ckpt_err(e, -EINVAL, "eventfd: no eventfd-count line in its fdinfo");
	/* before 6.x only the flags tell (EFD_SEMAPHORE is not an open flag there) */
	if (!fdk_fdinfo_u64(text, "eventfd-semaphore:", 10, &sem))
		sem = (p->info.flags & EFD_SEMAPHORE) != 0;
	r = fdk_dump_common(p, FILE_TYPE__FILE_EVENTFD, fe, e);
	if (r < 0)
		return r;
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return ckpt_err(e, -ENOMEM, "out of memory");
	eventfd_entry__init(ev);
	fe->eventfd = ev;
	ev->count = count;
	ev->has_semaphore = true;
	ev->semaphore = sem != 0;
	pr_debug("pid %d fd %d: eventfd count %" PRIu64 "%s\n", p->pid, p->fd, count,
		 sem ? " (semaphore)" : "");
	return 0;
}

static int eventfd_check(const FileEntry *fe, struct ckpt_error *e)
{
	if (fe->type != FILE_TYPE__FILE_EVENTFD || !fe->eventfd)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: not an eventfd entry", fe->id);
	if (fe->eventfd->count > EVENTFD_MAX)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: field eventfd.count: %" PRIu64,
				fe->id, fe->eventfd->count);
	return 0;
}

static int eventfd_verify(const FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("eventfd-verify", e);

	return r < 0 ? r : eventfd_check(fe, e);
}

static int eventfd_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	const EventfdEntry *ev = fe->eventfd;
	_cleanup_close_ int fd = -1;
	int r;

	r = ckpt_fault_inject("eventfd-open", e);
	if (r >= 0)
		r = eventfd_check(fe, e);
	if (r < 0)
		return r;
	/* non-blocking while we fill it; the saved flags are set last */
	fd = eventfd(0, (fd_flags & O_CLOEXEC ? EFD_CLOEXEC : 0) | EFD_NONBLOCK |
			    (ev->semaphore ? EFD_SEMAPHORE : 0));
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "eventfd");
	if (ev->count && write(fd, &ev->count, sizeof(ev->count)) != sizeof(ev->count))
		return ckpt_err_errno(e, -errno, "eventfd: writing its counter %" PRIu64,
				      ev->count);
	r = fdk_set_nonblock(fd, fe, e);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

const struct fd_kind fd_kind_eventfd = {
    .name = "eventfd",
    .in_flight = true,
    .matches = eventfd_matches,
    .describe = eventfd_describe,
    .entry_field = offsetof(FileEntry, eventfd),
    .path = FD_PATH_ANON_INODE,
    .dump = eventfd_dump,
    .verify = eventfd_verify,
    .open = eventfd_open,
};
