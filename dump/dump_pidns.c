/* SPDX-License-Identifier: MIT */
/*
 * A tree in a pid namespace below ours (a job restored with --new-pidns):
 * the pids its tasks see are not the ones we see, and the images must hold
 * theirs. So the dump runs inside that namespace, where the pids are the
 * real ones, like the restore does (docs/preserve-namespaces.md): we enter
 * the root's pid namespace for our children (setns(CLONE_NEWPID)), fork
 * one child D (then go back to our own), and D makes a mount namespace of
 * its own (a private copy of ours: the same paths) with a proc of the new
 * pid namespace over /proc, and runs the whole dump engine there on the
 * root's inner pid. D reports the outcome over a pipe. D is no task of the
 * tree (its parent is outside the namespace); the namespace's init (pid 1)
 * is not either: a dump starts at the root.
 */
#define LOG_PREFIX "dump: "

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "dump_internal.h"
#include "log.h"

struct pidns_outcome {
	int r;
	struct dump_result res;
	struct ckpt_error e;
};

/* NSpid of pid: the number of levels and the innermost pid. */
static int nspid(pid_t pid, int *levels, pid_t *inner, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	char path[64], *line, *tok, *save = NULL;
	size_t len;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	r = proc_read_file(path, &text, &len, e);
	if (r < 0)
		return r;
	*levels = 1;
	*inner = pid;
	line = strstr(text, "\nNSpid:");
	if (!line)
		return 0;
	line += 7;
	line[strcspn(line, "\n")] = '\0';
	*levels = 0;
	for (tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		(*levels)++;
		*inner = (pid_t)atoi(tok);
	}
	return 0;
}

/* In D: our own /proc of the namespace we are in, then the dump. */
static __attribute__((noreturn)) void dump_inside(const struct dump_opts *opts, pid_t inner, int wr)
{
	struct pidns_outcome out = {0};
	struct dump_opts o = *opts;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	o.pid = inner;
	if (unshare(CLONE_NEWNS) < 0)
		out.r = ckpt_err_errno(&out.e, -errno, "unshare(CLONE_NEWNS)");
	else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		out.r = ckpt_err_errno(&out.e, -errno, "making our mounts private");
	else if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		out.r = ckpt_err_errno(&out.e, -errno, "mounting the tree's pid namespace's proc");
	else
		out.r = dump_tree(&o, &out.res, &out.e);
	if (write(wr, &out, sizeof(out)) != (ssize_t)sizeof(out))
		_exit(2);
	_exit(out.r < 0 ? 1 : 0);
}

int dump_tree_pidns(const struct dump_opts *opts, struct dump_result *ret, struct ckpt_error *e,
		    bool *handled)
{
	_cleanup_close_ int own = -1, theirs = -1;
	struct pidns_outcome out;
	int self_levels, root_levels, r, p[2], status;
	pid_t self_inner, inner, pid;
	bool forwarded = false;
	size_t got = 0;
	char path[64];

	*handled = false;
	r = nspid(getpid(), &self_levels, &self_inner, e);
	if (r >= 0)
		r = nspid(opts->pid, &root_levels, &inner, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d", opts->pid);
	if (root_levels <= self_levels)
		return 0;
	*handled = true;
	pr_info("pid %d is pid %d of a pid namespace below ours: dumping from inside it", opts->pid,
		inner);
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", opts->pid);
	own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	theirs = open(path, O_RDONLY | O_CLOEXEC);
	if (own < 0 || theirs < 0)
		return ckpt_err_errno(e, -errno, "pid %d: opening its pid namespace", opts->pid);
	if (pipe2(p, O_CLOEXEC) < 0)
		return ckpt_err_errno(e, -errno, "pipe2");
	if (setns(theirs, CLONE_NEWPID) < 0) {
		r = ckpt_err_errno(e, -errno, "pid %d: entering its pid namespace (setns)",
				   opts->pid);
		close(p[0]);
		close(p[1]);
		return r;
	}
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		dump_inside(opts, inner, p[1]);
	}
	r = -errno;
	/* back to ours for any later child of this process */
	if (setns(own, CLONE_NEWPID) < 0)
		pr_warn("cannot go back to our own pid namespace: %m");
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return ckpt_err_errno(e, r, "pid %d: fork into its pid namespace", opts->pid);
	}
	while (got < sizeof(out)) {
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		ssize_t n;

		if (!forwarded && opts->cancel && *opts->cancel) {
			kill(pid, SIGTERM); /* its handler is ours: it cancels */
			forwarded = true;
		}
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(p[0], (char *)&out + got, sizeof(out) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got != sizeof(out))
		return ckpt_err(e, -EIO,
				"the dump inside pid %d's pid namespace died without an outcome",
				opts->pid);
	if (out.r < 0) {
		*e = out.e;
		return out.r;
	}
	if (ret)
		*ret = out.res;
	return 0;
}
