/* SPDX-License-Identifier: MIT */
/*
 * --new-pidns: the tree is restored into a new pid namespace, in which every
 * task has its saved pid although the same pids may be taken outside.
 *
 * ckpt-restore (O, in the caller's namespaces) makes one child I with
 * clone3(CLONE_NEWPID | CLONE_NEWNS): I is PID 1 of the new pid namespace,
 * in a mount namespace of its own in which every mount is private and a
 * fresh proc (of the new pid namespace) covers /proc, so that /proc/self
 * and /proc/PID of the restored tasks are their own. I runs the whole
 * restore (every stage of stages.c, unchanged: inside the namespace the
 * saved pids are the real ones, /proc and ptrace see them), and sends the
 * outcome to O over a pipe. O prints it, with the root's pid as the caller
 * sees it (its NSpid) and as the tree sees it.
 *
 * Once the tree runs, I stays as the namespace's init: it execs
 * `ckpt-restore --ns-init` (fresh memory, no fd of the restore, comm
 * "ckpt-nsinit") and reaps orphans until no other process is left in the
 * namespace (kill(-1, 0) fails with ESRCH), then exits. The restored root
 * is I's child (its getppid() is 1); I itself is reparented, when O exits,
 * to the caller's nearest child subreaper or init, as a plain restore's root
 * is. I is never part of the job: a later dump starts at the root. The
 * init keeps no capability.
 *
 * Failure: I rolls back as usual (it is the tree's parent and reaper) and
 * exits; the kernel kills whatever is left in a namespace whose init died.
 * If O dies (even SIGKILL) before the outcome is sent, I dies with it
 * (parent-death signal) and the namespace with I. A cancel (SIGTERM/SIGINT
 * to O) is passed on to I, which rolls back.
 */
#define LOG_PREFIX "pidns: "

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "proc.h"
#include "restore.h"

/* The ns init checks this often for a namespace left with no child of its own. */
#define NSINIT_IDLE_MS 100

/* I (inside) -> O: the outcome of the restore. */
struct ns_outcome {
	int code;
	pid_t root_pid;
	uint64_t ntasks;
	char stage[32];
	char msg[CKPT_ERROR_MAX];
};

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* The private /proc of the new namespace, in a mount namespace of I's own. */
static int ns_mount_proc(struct ckpt_error *e)
{
	uint64_t saved = caps_raise(CAPS_BIT(CAP_SYS_ADMIN));
	int r = 0;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		r = ckpt_err_errno(e, -errno,
				   "making every mount private (MS_REC|MS_PRIVATE on /)");
	else if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		r = ckpt_err_errno(e, -errno, "mounting the new pid namespace's proc on /proc");
	caps_restore(saved);
	return r;
}

static void become_init(void)
{
	char *argv[] = {"ckpt-restore", "--ns-init", NULL};
	char *envp[] = {NULL};
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	/* nothing of the caller's (its stdout pipe would never see EOF) */
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
	}
	syscall(SYS_close_range, 3, ~0U, 0);
	/* pin no directory of the caller's (it could not be unmounted) */
	if (chdir("/") < 0)
		_exit(1);
	execve("/proc/self/exe", argv, envp);
	/* no exec: the same loop, in this process */
	_exit(pidns_init_main());
}

static __attribute__((noreturn)) void ns_child(struct restore_ctx *ctx, int wr)
{
	struct ns_outcome out;
	ssize_t n;
	int r;

	/* O gone: nobody would know the tree exists; dies with it (and it with us) */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	ctx->in_ns_init = true;
	r = ns_mount_proc(&ctx->err);
	if (r >= 0)
		r = restore_run(ctx);
	memset(&out, 0, sizeof(out));
	out.code = r < 0 ? (ctx->err.code ? ctx->err.code : -EIO) : 0;
	out.root_pid = ctx->root ? ctx->root->pid : 0;
	out.ntasks = ctx->ntasks;
	snprintf(out.stage, sizeof(out.stage), "%s", ctx->stage ? ctx->stage : "");
	snprintf(out.msg, sizeof(out.msg), "%s", r < 0 ? ctx->err.msg : "");
	if (r >= 0)
		prctl(PR_SET_PDEATHSIG, 0);
	do
		n = write(wr, &out, sizeof(out));
	while (n < 0 && errno == EINTR);
	/* failed: the tree is rolled back already; our exit ends the namespace.
	 * Committed, we keep the namespace even when the restorer outside is
	 * gone (the commit record tells its parent the tree runs) */
	if (r < 0)
		_exit(1);
	restore_ctx_free(ctx);
	become_init();
	_exit(1);
}

/* Our child in the namespace whose innermost pid is ns_pid (NSpid's last field). */
static pid_t host_pid_of(pid_t init, pid_t ns_pid)
{
	_cleanup_free_ pid_t *kids = NULL;
	struct ckpt_error ignore = {0};
	size_t nkids = 0;

	if (proc_list_children(init, init, &kids, &nkids, &ignore) < 0)
		return 0;
	for (size_t i = 0; i < nkids; i++) {
		_cleanup_free_ char *text = NULL;
		char path[64], *line, *last;
		size_t len;

		snprintf(path, sizeof(path), "/proc/%d/status", kids[i]);
		if (proc_read_file(path, &text, &len, &ignore) < 0)
			continue;
		line = strstr(text, "\nNSpid:");
		if (!line)
			continue;
		line[strcspn(line + 1, "\n") + 1] = '\0';
		last = strrchr(line, '\t');
		last = last ? last : strrchr(line, ' ');
		if (last && atoi(last + 1) == ns_pid)
			return kids[i];
	}
	return 0;
}

int pidns_restore(struct restore_ctx *ctx, struct pidns_result *res)
{
	struct clone_args args = {.flags = CLONE_NEWPID | CLONE_NEWNS, .exit_signal = SIGCHLD};
	struct ns_outcome out;
	bool forwarded = false;
	size_t got = 0;
	uint64_t saved;
	int p[2], status;
	long pid;

	memset(res, 0, sizeof(*res));
	if (pipe2(p, O_CLOEXEC) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "pipe2");
	saved = caps_raise(CAPS_BIT(CAP_SYS_ADMIN));
	pid = syscall(SYS_clone3, &args, sizeof(args));
	caps_restore(saved); /* in the child too */
	if (pid < 0) {
		int err = -errno;

		close(p[0]);
		close(p[1]);
		return ckpt_err_errno(&ctx->err, err,
				      "--new-pidns: clone3(CLONE_NEWPID|CLONE_NEWNS) (needs "
				      "CAP_SYS_ADMIN)");
	}
	if (pid == 0) {
		close(p[0]);
		ns_child(ctx, p[1]);
	}
	close(p[1]);
	res->init_pid = (pid_t)pid;
	while (got < sizeof(out)) {
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		ssize_t n;

		if (!forwarded && ctx->opts->cancel && *ctx->opts->cancel) {
			kill((pid_t)pid, SIGTERM); /* I rolls back */
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
	if (got == sizeof(out) && out.code == 0) {
		res->root_pid = out.root_pid;
		res->ntasks = out.ntasks;
		res->root_host_pid = host_pid_of((pid_t)pid, out.root_pid);
		snprintf(res->stage, sizeof(res->stage), "%s", out.stage);
		if (!res->root_host_pid)
			pr_warn("the restored root (pid %d in its namespace) has no pid out here: "
				"it exited already?",
				out.root_pid);
		return 0;
	}
	/* I exits once it has rolled back; the kernel empties the namespace */
	while (waitpid((pid_t)pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got == sizeof(out)) {
		snprintf(res->stage, sizeof(res->stage), "%s", out.stage);
		ctx->stage = res->stage;
		ctx->err.code = out.code;
		snprintf(ctx->err.msg, sizeof(ctx->err.msg), "%s", out.msg);
		return out.code;
	}
	return ckpt_err(
	    &ctx->err, -EIO,
	    "--new-pidns: the namespace's init (pid %ld) died without an outcome (%s %d)", pid,
	    WIFSIGNALED(status) ? "signal" : "exit status",
	    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/*
 * ckpt-restore --ns-init: PID 1 of a restored tree's namespace. Reaps every
 * child (orphans come to it) and exits when nobody else is left. Signals:
 * from inside the namespace only those with a handler reach PID 1 (none
 * has one); from outside, SIGKILL ends the namespace.
 */
int pidns_init_main(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct none_caps[2];
	sigset_t none;

	prctl(PR_SET_NAME, "ckpt-nsinit");
	prctl(PR_SET_PDEATHSIG, 0);
	/* it only waits: no capability (ckptd runs a user's restorer with some
	 * as ambient ones), so the job's owner has nothing to gain from it */
	memset(none_caps, 0, sizeof(none_caps));
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capset, &hdr, none_caps) < 0)
		return 1;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	for (;;) {
		pid_t c = waitpid(-1, NULL, __WALL);

		if (c > 0 || errno == EINTR)
			continue;
		/* no child: a process that joined with setns may still be there */
		if (kill(-1, 0) < 0 && errno == ESRCH)
			return 0;
		sleep_ms(NSINIT_IDLE_MS);
	}
}
