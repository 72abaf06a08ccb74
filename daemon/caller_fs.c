// SPDX-License-Identifier: MIT
/*
 * File operations as the caller (caller_fs.h). Each one forks a child that
 * drops to the caller's uid, gid and groups with no capability left, does
 * the operation and sends back its result and at most one fd over a
 * socketpair. The kernel's own permission checks under those credentials
 * decide; the daemon never compares mode bits itself.
 */
#define LOG_PREFIX "caller: "

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caller_fs.h"
#include "caps.h"
#include "cleanup.h"
#include "image.h"
#include "fault.h"
#include "log.h"

/* In the child: exactly the caller, no capability (root stays root). */
static int become_caller(const struct auth_caller *c)
{
	cap_t none;
	int r = 0;

	if (auth_is_root(c))
		return 0;
	/* (the parent may hold them in its permitted set only: a dump worker
	 * after the engine) */
	caps_raise(CAPS_BIT(CAP_SETUID) | CAPS_BIT(CAP_SETGID));
	if (prctl(PR_SET_KEEPCAPS, 0) < 0 || setgroups(c->ngroups, c->groups) < 0 ||
	    setresgid(c->gid, c->gid, c->gid) < 0 || setresuid(c->uid, c->uid, c->uid) < 0)
		return -errno;
	none = cap_init();
	if (!none || cap_set_proc(none) < 0)
		r = -errno;
	cap_free(none);
	return r;
}

static void send_result(int sock, int r, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = &r, .iov_len = sizeof(r)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (fd >= 0) {
		struct cmsghdr *cm;

		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	(void)sendmsg(sock, &mh, MSG_NOSIGNAL);
}

static int recv_result(int sock, int *ret_fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	int r = -EIO;
	struct iovec iov = {.iov_base = &r, .iov_len = sizeof(r)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;
	ssize_t n;

	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n != sizeof(r))
		return -EIO;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		if (ret_fd)
			memcpy(ret_fd, CMSG_DATA(cm), sizeof(int));
		else
			close(*(int *)CMSG_DATA(cm));
	}
	return r;
}

struct caller_op {
	int dirfd;
	const char *name;
	enum caller_dir_need need;
	int log_fd;
};

typedef int (*caller_fn)(const struct caller_op *op, int *ret_fd);

/* Run fn as the caller in a child; its result (>= 0 or -errno) and fd. */
static int run_as_caller(const struct auth_caller *c, caller_fn fn, const struct caller_op *op,
			 int *ret_fd)
{
	int sv[2], status, r, fd = -1;
	pid_t pid;

	if (ret_fd)
		*ret_fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	if (pid == 0) {
		close(sv[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		r = become_caller(c);
		if (r == 0)
			r = fn(op, &fd);
		send_result(sv[1], r, fd);
		_exit(0);
	}
	close(sv[1]);
	r = recv_result(sv[0], ret_fd ? &fd : NULL);
	close(sv[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r < 0 && fd >= 0) {
		close(fd);
		fd = -1;
	}
	if (ret_fd)
		*ret_fd = fd;
	return r;
}

static int op_open_dir(const struct caller_op *op, int *ret_fd)
{
	/* "." is looked up in the directory: the kernel checks search (x)
	 * permission, then read for O_RDONLY; an O_PATH fd gives nothing more */
	int fd = openat(op->dirfd, ".", O_RDONLY | O_DIRECTORY | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (op->need == CALLER_DIR_WRITE && faccessat(fd, ".", W_OK | X_OK, 0) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int caller_open_dir(const struct auth_caller *c, int dir_fd, enum caller_dir_need need, int *ret_fd,
		    struct ckpt_error *e)
{
	struct caller_op op = {.dirfd = dir_fd, .need = need};
	int r = run_as_caller(c, op_open_dir, &op, ret_fd);

	if (r == -EACCES || r == -EPERM || r == -EROFS)
		return ckpt_err_errno(e, r,
				      "you (uid %u) may not %s the image directory you sent; "
				      "give a directory you can %s",
				      c->uid, need == CALLER_DIR_WRITE ? "write into" : "read",
				      need == CALLER_DIR_WRITE ? "create files in"
							       : "list and read");
	if (r < 0)
		return ckpt_err_errno(e, r, "cannot open the image directory as uid %u", c->uid);
	return 0;
}

static int op_create(const struct caller_op *op, int *ret_fd)
{
	int fd;

	if (unlinkat(op->dirfd, op->name, 0) < 0 && errno != ENOENT)
		return -errno;
	fd =
	    openat(op->dirfd, op->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

int caller_create_file(const struct auth_caller *c, int dirfd, const char *name, int *ret_fd,
		       struct ckpt_error *e)
{
	struct caller_op op = {.dirfd = dirfd, .name = name};
	int r = run_as_caller(c, op_create, &op, ret_fd);

	if (r < 0)
		return ckpt_err_errno(e, r, "cannot create %s in the image directory as uid %u",
				      name, c->uid);
	return 0;
}

static int op_open(const struct caller_op *op, int *ret_fd)
{
	int fd =
	    openat(op->dirfd, op->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EBADMSG;
	}
	*ret_fd = fd;
	return 0;
}

static int op_open_subdir(const struct caller_op *op, int *ret_fd)
{
	int fd = openat(op->dirfd, op->name, O_RDONLY | O_DIRECTORY | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

int caller_open_subdir(const struct auth_caller *c, int dirfd, const char *name, int *ret_fd,
		       struct ckpt_error *e)
{
	struct caller_op op = {.dirfd = dirfd, .name = name};
	int r = run_as_caller(c, op_open_subdir, &op, ret_fd);

	if (r < 0)
		return ckpt_err_errno(e, r, "cannot open the directory %s as uid %u", name, c->uid);
	return 0;
}

int caller_open_file(const struct auth_caller *c, int dirfd, const char *name, int *ret_fd,
		     struct ckpt_error *e)
{
	struct caller_op op = {.dirfd = dirfd, .name = name};
	int r = run_as_caller(c, op_open, &op, ret_fd);

	if (r == -EBADMSG)
		return ckpt_err(e, r, "%s: not a regular file", name);
	if (r < 0)
		return ckpt_err_errno(e, r, "cannot open %s as uid %u", name, c->uid);
	return 0;
}

static int op_settle(const struct caller_op *op, int *ret_fd)
{
	struct ckpt_error e = {0};
	Inventory *inv = NULL;
	int kept = 0, logged = 0;
	int fd = -1;

	(void)ret_fd;
	if (img_dir_verify_fd(op->dirfd, "the image directory", &inv, &e) == 0) {
		inventory__free_unpacked(inv, NULL);
		kept = 1;
	} else {
		img_dir_remove_images(op->dirfd);
	}
	if (op->log_fd >= 0 &&
	    op_create(&(struct caller_op){.dirfd = op->dirfd, .name = "dump.log"}, &fd) == 0) {
		char buf[65536];
		off_t off = 0;
		ssize_t n;

		while ((n = pread(op->log_fd, buf, sizeof(buf), off)) > 0 && write(fd, buf, n) == n)
			off += n;
		dprintf(fd, "ckptd: the worker died before it reported; the checkpoint %s\n",
			kept ? "is complete" : "was incomplete and its images were removed");
		close(fd);
		logged = 1;
	}
	return kept | logged << 1;
}

pid_t caller_settle_dump_start(const struct auth_caller *c, int dirfd, int log_fd)
{
	struct caller_op op = {.dirfd = dirfd, .log_fd = log_fd};
	pid_t pid = fork();
	int r;

	if (pid != 0)
		return pid < 0 ? -errno : pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	r = become_caller(c);
	/* a pause only (tests: ckptd answers others meanwhile) */
	ckpt_fault_inject("ckptd-settle", NULL);
	if (r == 0)
		r = op_settle(&op, NULL);
	_exit(r < 0 ? 255 : r);
}

int caller_settle_dump_result(int wstatus, bool *ret_log)
{
	int st = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 255;

	*ret_log = st != 255 && (st & 2);
	return st == 255 ? -EIO : (st & 1);
}
