/* SPDX-License-Identifier: MIT */
/*
 * What an fd of a task is, before a kind is chosen: the /proc link, our own
 * copy of the open file description (pidfd_getfd), its stat and fdinfo; and
 * a human description for the error when no kind handles it: the kinds
 * describe their own sort of fd (struct fd_kind.describe), this file what no
 * kind is about (other sockets, other anonymous inodes, namespaces, block
 * devices...).
 */
#define LOG_PREFIX "fd probe: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <netinet/in.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

int fd_probe_fill(int pidfd, pid_t pid, int fd, struct fd_probe *ret, struct ckpt_error *e)
{
	struct fd_probe p = {.pid = pid, .fd = fd, .local_fd = -1};
	_cleanup_close_ int local = -1;
	char name[32];
	int r;

	r = ckpt_fault_inject("fd-probe", e);
	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "fd/%d", fd);
	r = proc_readlink(pid, name, p.link, sizeof(p.link), e);
	if (r < 0)
		return r;

	if (pidfd >= 0)
		local = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (local >= 0) {
		if (fstat(local, &p.st) < 0)
			return ckpt_err_errno(e, -errno, "pid %d: fd %d: cannot stat %s", (int)pid,
					      fd, p.link);
	} else {
		char path[64];

		/* No copy (no pidfd, or not allowed): the magic link still stats. */
		pr_debug("pid %d fd %d: pidfd_getfd: %s\n", (int)pid, fd, strerror(errno));
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
		if (stat(path, &p.st) < 0)
			return ckpt_err_errno(e, -errno, "cannot stat %s (%s)", path, p.link);
	}
	r = proc_read_fdinfo(pid, fd, &p.info, &p.fdinfo, e);
	if (r < 0)
		return r;
	p.local_fd = TAKE_FD(local);
	*ret = p;
	return 0;
}

void fd_probe_release(struct fd_probe *p)
{
	if (!p)
		return;
	if (p->local_fd >= 0) {
		close(p->local_fd);
		p->local_fd = -1;
	}
	free(p->fdinfo);
	p->fdinfo = NULL;
}

/* anon_inode:NAME -> what a user calls it (event fds: their kinds say) */
static const struct {
	const char *anon;
	const char *what;
} anon_names[] = {
    {"[fanotify]", "fanotify"},	    {"[io_uring]", "io_uring"}, {"[userfaultfd]", "userfaultfd"},
    {"[perf_event]", "perf event"}, {"bpf-map", "BPF map"},	{"bpf-prog", "BPF program"},
    {"bpf_link", "BPF link"},
};

static const char *const ns_names[] = {
    "net",
    "mnt",
    "pid",
    "uts",
    "ipc",
    "user",
    "cgroup",
    "time",
    "pid_for_children",
    "time_for_children",
};

/* Sockets of no kind (unix.c, inet.c, netlink.c say theirs). */
static void describe_socket(const struct fd_probe *p, char *buf, size_t len)
{
	int domain = -1, type = -1, proto = -1;
	socklen_t sl = sizeof(int);
	const char *v6;

	/* Our copy of the socket answers SOL_SOCKET queries (sock_diag comes later). */
	if (p->local_fd < 0 || getsockopt(p->local_fd, SOL_SOCKET, SO_DOMAIN, &domain, &sl) < 0) {
		snprintf(buf, len, "socket (inode %llu)", (unsigned long long)p->st.st_ino);
		return;
	}
	sl = sizeof(int);
	getsockopt(p->local_fd, SOL_SOCKET, SO_TYPE, &type, &sl);
	sl = sizeof(int);
	getsockopt(p->local_fd, SOL_SOCKET, SO_PROTOCOL, &proto, &sl);
	v6 = domain == AF_INET6 ? "v6" : "";
	switch (domain) {
	case AF_INET:
	case AF_INET6:
		if (type == SOCK_RAW)
			snprintf(buf, len, "raw IP%s socket", v6);
		else
			snprintf(buf, len, "IP%s socket (protocol %d)", v6, proto);
		return;
	case AF_PACKET:
		snprintf(buf, len, "packet socket");
		return;
	default:
		snprintf(buf, len, "socket (family %d, inode %llu)", domain,
			 (unsigned long long)p->st.st_ino);
	}
}

/* "anon_inode:..." links; false if the link is something else */
static bool describe_anon(const char *link, char *buf, size_t len)
{
	static const char prefix[] = "anon_inode:";

	if (strncmp(link, prefix, strlen(prefix)))
		return false;
	link += strlen(prefix);
	for (size_t i = 0; i < ARRAY_SIZE(anon_names); i++)
		if (!strcmp(link, anon_names[i].anon)) {
			snprintf(buf, len, "%s", anon_names[i].what);
			return true;
		}
	snprintf(buf, len, "anonymous inode %s", link);
	return true;
}

/* "net:[4026531840]" -> "net namespace"; false if the link is not a namespace */
static bool describe_ns(const char *link, char *buf, size_t len)
{
	const char *br = strstr(link, ":[");

	if (!br)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(ns_names); i++)
		if (strlen(ns_names[i]) == (size_t)(br - link) &&
		    !strncmp(link, ns_names[i], (size_t)(br - link))) {
			snprintf(buf, len, "%s namespace", ns_names[i]);
			return true;
		}
	return false;
}

/* Files of no kind (the kinds say theirs: regular files, directories, memfds...). */
static void describe_path(const struct fd_probe *p, char *buf, size_t len)
{
	const struct stat *st = &p->st;
	const char *link = p->link;

	if (S_ISBLK(st->st_mode)) {
		snprintf(buf, len, "block device %u:%u %s", major(st->st_rdev), minor(st->st_rdev),
			 link);
	} else {
		snprintf(buf, len, "file %s (mode 0%o)", link, (unsigned)st->st_mode);
	}
}

const char *fd_probe_describe(const struct fd_probe *p, char *buf, size_t len)
{
	if (!len)
		return buf;
	/* what a kind knows its sort of fd as, handled or not */
	if (fd_kinds_describe(p, buf, len))
		return buf;
	if (!strncmp(p->link, "socket:[", 8) || S_ISSOCK(p->st.st_mode))
		describe_socket(p, buf, len);
	else if (describe_anon(p->link, buf, len) || describe_ns(p->link, buf, len))
		;
	else if (p->link[0] == '/')
		describe_path(p, buf, len);
	else
		snprintf(buf, len, "special file %s", p->link);
	return buf;
}
