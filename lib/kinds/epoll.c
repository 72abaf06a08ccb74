/* SPDX-License-Identifier: MIT */
/*
 * epoll. An epoll instance is a set of registrations, each keyed by the
 * target FILE and the fd NUMBER it was added with (EPOLL_CTL_ADD): the
 * program later names it by that number (EPOLL_CTL_MOD/DEL). fdinfo lists
 * them ("tfd: N events: X data: Y ..."); the dump checks with
 * kcmp(KCMP_EPOLL_TFD) that fd N of the task is still the registered file,
 * and refuses a registration whose fd was closed (the kernel keeps the item
 * while the file lives elsewhere: no fd number could name it again) or now
 * names another file.
 *
 * Restore. The restorer makes an empty instance (epoll_create1) with the
 * other files; the registrations are made INSIDE the task they were checked
 * against (EpollEntry.owner_pid, the first task showing the instance) once
 * its fds are at their numbers (hook install, restorer/fds.c): that task
 * adds every target with its saved events and data. Other tasks sharing the
 * instance share its registrations. Flags are kept as they were: EPOLLET,
 * EPOLLONESHOT (a fired one-shot item, "events" without any event bit,
 * stays disarmed: add_disarmed), EPOLLEXCLUSIVE, EPOLLWAKEUP. An
 * edge-triggered item whose target was ready reports that readiness once
 * more after restore (a new edge: the add itself).
 */
#define LOG_PREFIX "kind epoll: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"

#define KCMP_EPOLL_TFD 7
/* far more than a sane program registers; one FileEntry is one image record */
#define EPOLL_TARGETS_MAX 65536

struct kcmp_epoll_slot {
	uint32_t efd, tfd, toff;
};

static bool epoll_matches(const struct fd_probe *p)
{
	return !strcmp(p->link, "anon_inode:[eventpoll]");
}

static bool epoll_describe(const struct fd_probe *p, char *buf, size_t len)
{
	return fdk_describe_as(epoll_matches(p), "epoll", buf, len);
}

static int add_target(EpollEntry *ep, uint32_t tfd, uint32_t events, uint64_t data,
		      struct ckpt_error *e)
{
	EpollTarget **n, *t;

	if (ep->n_targets >= EPOLL_TARGETS_MAX)
		return ckpt_err(e, -E2BIG, "epoll: more than %d registrations", EPOLL_TARGETS_MAX);
	n = realloc(ep->targets, (ep->n_targets + 1) * sizeof(*n));
	if (!n)
		return ckpt_err(e, -ENOMEM, "out of memory");
	ep->targets = n;
	t = malloc(sizeof(*t));
	if (!t)
		return ckpt_err(e, -ENOMEM, "out of memory");
	epoll_target__init(t);
	t->tfd = tfd;
	t->events = events;
	t->data = data;
	ep->targets[ep->n_targets++] = t;
	return 0;
}

/* Is fd tfd of the task the file registered as tfd in its epoll at p->fd? */
static int check_target(const struct fd_probe *p, const EpollEntry *ep, uint32_t tfd,
			struct ckpt_error *e)
{
	struct kcmp_epoll_slot slot = {.efd = (uint32_t)p->fd, .tfd = tfd, .toff = 0};
	long r;

	for (size_t i = 0; i < ep->n_targets; i++)
		if (ep->targets[i]->tfd == tfd)
			return ckpt_err(e, -EOPNOTSUPP,
					"epoll: two files are registered as fd %u (one was closed "
					"and the number reused); not supported",
					tfd);
	r = syscall(SYS_kcmp, p->pid, p->pid, KCMP_EPOLL_TFD, (unsigned long)tfd,
		    (unsigned long)&slot);
	if (r == 0)
		return 0;
	if (r < 0 && errno == EBADF)
		return ckpt_err(e, -EOPNOTSUPP,
				"epoll: it watches a file registered as fd %u, which the task has "
				"closed since (the file is still open elsewhere); not supported",
				tfd);
	if (r < 0)
		return ckpt_err_errno(e, -errno, "epoll: comparing registered fd %u (kcmp)", tfd);
	return ckpt_err(e, -EOPNOTSUPP,
			"epoll: fd %u is registered, but the task's fd %u is now another file "
			"(the registered one was closed); not supported",
			tfd, tfd);
}

static int parse_targets(const struct fd_probe *p, const char *text, EpollEntry *ep,
			 struct ckpt_error *e)
{
	for (const char *s = strstr(text, "tfd:"); s; s = strstr(s + 1, "tfd:")) {
		unsigned int tfd, events;
		unsigned long long data;
		int r;

		if (s != text && s[-1] != '\n')
			continue;
		if (sscanf(s, "tfd: %u events: %x data: %llx", &tfd, &events, &data) != 3)
			return ckpt_err(e, -EINVAL, "epoll: cannot parse fdinfo line \"%.60s\"", s);
		r = check_target(p, ep, tfd, e);
		if (r < 0)
			return r;
		r = add_target(ep, tfd, events, data, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int epoll_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	EpollEntry *ep;
	int r;

	r = ckpt_fault_inject("epoll-dump", e);
	if (r < 0)
		return r;
	r = fdk_read_fdinfo(p, &text, e);
	if (r < 0)
		return r;
	r = fdk_dump_common(p, FILE_TYPE__FILE_EPOLL, fe, e);
	if (r < 0)
		return r;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return ckpt_err(e, -ENOMEM, "out of memory");
	epoll_entry__init(ep);
	fe->epoll = ep;
	ep->owner_pid = (uint32_t)p->pid;
	r = parse_targets(p, text, ep, e);
	if (r < 0)
		return r;
	pr_debug("pid %d fd %d: epoll, %zu registrations\n", p->pid, p->fd, ep->n_targets);
	return 0;
}

static int epoll_check(const FileEntry *fe, struct ckpt_error *e)
{
	const EpollEntry *ep = fe->epoll;

	if (fe->type != FILE_TYPE__FILE_EPOLL || !ep)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: not an epoll entry", fe->id);
	if (ep->n_targets > EPOLL_TARGETS_MAX)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: %zu epoll registrations", fe->id,
				ep->n_targets);
	for (size_t i = 0; i < ep->n_targets; i++)
		if (ep->targets[i]->tfd > INT32_MAX)
			return ckpt_err(e, -EINVAL,
					"files.img: entry %u: field epoll.targets[%zu].tfd: %u",
					fe->id, i, ep->targets[i]->tfd);
	return 0;
}

static int epoll_verify(const FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("epoll-verify", e);

	return r < 0 ? r : epoll_check(fe, e);
}

/* An empty instance; install fills it inside the owner task. */
static int epoll_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	int r;

	r = ckpt_fault_inject("epoll-open", e);
	if (r >= 0)
		r = epoll_check(fe, e);
	if (r < 0)
		return r;
	fd = epoll_create1(fd_flags & O_CLOEXEC ? EPOLL_CLOEXEC : 0);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "epoll_create1");
	r = fdk_set_nonblock(fd, fe, e);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* The flag bits of an event mask: what a fired EPOLLONESHOT item keeps. */
#define EPOLL_FLAG_BITS (EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE)
/* Every readiness bit: an item with these is ready if its target is ready at all. */
#define EPOLL_ALL_EVENTS                                                                           \
	(EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND |   \
	 EPOLLMSG | EPOLLRDHUP | EPOLLERR | EPOLLHUP)

static bool disarmed(const EpollTarget *t)
{
	return (t->events & EPOLLONESHOT) && !(t->events & ~(uint32_t)EPOLL_FLAG_BITS);
}

static int add_one(int fd, const EpollTarget *t, uint32_t events, struct ckpt_error *e)
{
	struct epoll_event ev = {.events = events, .data.u64 = t->data};

	if (epoll_ctl(fd, EPOLL_CTL_ADD, (int)t->tfd, &ev) < 0)
		return ckpt_err_errno(e, -errno, "epoll at fd %d: registering fd %u (events %#x)",
				      fd, t->tfd, t->events);
	return 0;
}

/*
 * Fired EPOLLONESHOT items, before any other: EPOLL_CTL_ADD always adds
 * EPOLLERR|EPOLLHUP, so an item added with no event would still fire on a
 * hangup. One whose target is ready now is added with every event and made
 * to fire here (epoll_wait), which leaves it disarmed exactly as it was;
 * one whose target is not ready keeps EPOLLERR|EPOLLHUP (documented).
 */
static int add_disarmed(int fd, const EpollEntry *ep, struct ckpt_error *e)
{
	bool any = false;
	int r;

	for (size_t i = 0; i < ep->n_targets; i++) {
		const EpollTarget *t = ep->targets[i];
		struct pollfd p = {.fd = (int)t->tfd, .events = POLLIN | POLLOUT | POLLPRI};
		bool ready;

		if (!disarmed(t))
			continue;
		ready = poll(&p, 1, 0) > 0 && !(p.revents & POLLNVAL);
		r = add_one(fd, t, ready ? t->events | EPOLL_ALL_EVENTS : t->events, e);
		if (r < 0)
			return r;
		any |= ready;
	}
	for (int n = 0; any && n < EPOLL_TARGETS_MAX;) {
		struct epoll_event evs[64];
		int k = epoll_wait(fd, evs, 64, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return ckpt_err_errno(e, -errno, "epoll at fd %d: disarming one-shot items",
					      fd);
		if (k == 0)
			break;
		n += k;
	}
	return 0;
}

static int epoll_install(const FileEntry *fe, int fd, pid_t pid, struct ckpt_error *e)
{
	const EpollEntry *ep = fe->epoll;
	int r;

	if (ep->owner_pid != (uint32_t)pid)
		return 0; /* shared: the owner task fills it */
	r = ckpt_fault_inject("epoll-install", e);
	if (r >= 0)
		r = add_disarmed(fd, ep, e);
	for (size_t i = 0; r >= 0 && i < ep->n_targets; i++)
		if (!disarmed(ep->targets[i]))
			r = add_one(fd, ep->targets[i], ep->targets[i]->events, e);
	if (r < 0)
		return r;
	pr_debug("pid %d: epoll at fd %d: %zu registrations\n", (int)pid, fd, ep->n_targets);
	return 0;
}

const struct fd_kind fd_kind_epoll = {
    .name = "epoll",
    .matches = epoll_matches,
    .describe = epoll_describe,
    .entry_field = offsetof(FileEntry, epoll),
    .path = FD_PATH_ANON_INODE,
    .dump = epoll_dump,
    .verify = epoll_verify,
    .open = epoll_open,
    .install = epoll_install,
};
