/* SPDX-License-Identifier: MIT */
/*
 * ckpt-restore [--json] [--plan] [-v] [--progress-fd N] [--cgroups=MODE] DIR
 * ckpt-restore [--json] [--plan] [-v] [--progress-fd N] [--cgroups=MODE] --dir-fd N
 *   (and --new-pidns, pidns.c; --continue-clocks, clocks.c)
 *
 * Turns a checkpoint directory back into a running process tree. This file
 * only parses arguments and prints the outcome; the work is the list of
 * stages in stages.c. SIGTERM and SIGINT cancel the restore: the flag is
 * checked between stages and steps, and the normal rollback runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fault.h"
#include "log.h"
#include "restore.h"

/* Set by SIGTERM/SIGINT: a signal handler can reach nothing but a global. */
static volatile sig_atomic_t cancel_requested;

static void on_cancel(int sig)
{
	(void)sig;
	cancel_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: ckpt-restore [--json] [--plan] [-v] [--progress-fd N] [--shell-job "
		"[--tty-fd N]]\n"
		"                    [--cgroups=exact|caller [--caller-pid N]]\n"
		"                    [--new-pidns] [--continue-clocks] [--lazy]\n"
		"                    DIR | --dir-fd N\n"
		"  --dir-fd N  restore from the directory open as fd N (ckptd)\n"
		"  --shell-job  the root joins our session as the foreground job of our terminal,\n"
		"               which also stands for the terminal the job was dumped on\n"
		"  --tty-fd N   that terminal (default: stdin if a terminal, else /dev/tty)\n"
		"  --cgroups=exact   every task and thread back in its saved cgroups, which\n"
		"                    must exist (the default)\n"
		"  --cgroups=caller  the root's cgroup in each hierarchy is our current one (or\n"
		"                    --caller-pid's); the cgroups below it are made below ours\n"
		"  --caller-pid N    with --cgroups=caller: the cgroups of process N (ckptd)\n"
		"  --caller-cgroup-fd N  its /proc/N/cgroup, opened by ckptd while it lived\n"
		"  --new-pidns  restore into a new pid namespace where every task has its\n"
		"               saved pid (with a small init of ours as its pid 1)\n"
		"  --continue-clocks  in a new time namespace: CLOCK_MONOTONIC and\n"
		"               CLOCK_BOOTTIME go on from their values at the dump\n"
		"  --lazy   return once the tree runs; a pager process (pager_pid in --json)\n"
		"           brings its private anonymous memory in on demand, then exits\n"
		"  --progress-fd N  write one JSON progress line per step to fd N\n"
		"  --commit-fd N    a memfd (up to two) for the commit record, written before\n"
		"                   the tree runs (for the program reporting our outcome)\n"
		"  --parent-pid N   that program: cancel if it is not our parent (gone)\n"
		"  --client-fd N    cancel if this socket hangs up (ckptd's client)\n"
		"  --hold-fd N      keep fd N open until we exit (ckptd's worker)\n"
		"  --json   print the outcome as one JSON line on stdout\n"
		"  --plan   verify the images, print the restore plan and exit\n"
		"  -v       more log output on stderr (-vv: debug)\n");
}

/*
 * root_pid is the root as the caller sees it; with --new-pidns the tree has
 * its saved pids in its own namespace: root_pid_ns is the root's there.
 */
static void print_result(const struct restore_ctx *ctx, const struct pidns_result *ns, int r,
			 double seconds)
{
	const struct restore_opts *o = ctx->opts;
	pid_t root = ns ? ns->root_host_pid : ctx->root ? ctx->root->pid : 0;
	size_t ntasks = ns ? (size_t)ns->ntasks : ctx->ntasks;

	if (r == 0 && o->json) {
		printf("{\"status\":\"ok\",\"root_pid\":%d,", root);
		if (ns)
			printf("\"root_pid_ns\":%d,\"ns_init_pid\":%d,", ns->root_pid,
			       ns->init_pid);
		if (ctx->pager_pid)
			printf("\"pager_pid\":%d,", ctx->pager_pid);
		printf("\"tasks\":%zu,\"seconds\":%.3f}\n", ntasks, seconds);
	} else if (r == 0 && ns) {
		printf("restored root pid %d (pid %d in its new pid namespace, whose init is "
		       "pid %d; %zu task%s) in %.2f s\n",
		       root, ns->root_pid, ns->init_pid, ntasks, ntasks == 1 ? "" : "s", seconds);
	} else if (r == 0) {
		printf("restored root pid %d (%zu task%s) in %.2f s\n", root, ntasks,
		       ntasks == 1 ? "" : "s", seconds);
		if (ctx->pager_pid)
			printf("its memory comes in lazily: pager pid %d (keep the images until "
			       "it exits)\n",
			       ctx->pager_pid);
	} else if (o->json) {
		printf("{\"status\":\"error\",\"error\":");
		img_json_string(stdout, ctx->err.msg);
		printf(",\"stage\":");
		img_json_string(stdout, ctx->stage ? ctx->stage : "");
		printf("}\n");
	}
	if (r < 0)
		fprintf(stderr, "ckpt-restore: %s\n", ctx->err.msg);
	fflush(stdout);
}

/* --progress-fd N: an open fd, made non-blocking and close-on-exec. */
static int parse_progress_fd(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > INT_MAX || fcntl((int)v, F_GETFD) < 0) {
		fprintf(stderr, "ckpt-restore: --progress-fd %s is not an open fd\n", s);
		return -1;
	}
	/* the restore must never wait for a slow reader of its progress */
	fcntl((int)v, F_SETFL, fcntl((int)v, F_GETFL) | O_NONBLOCK);
	fcntl((int)v, F_SETFD, FD_CLOEXEC);
	return (int)v;
}

static void setup_signals(void)
{
	struct sigaction sa = {.sa_handler = on_cancel, .sa_flags = SA_RESTART};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* a progress reader that went away is not an error */
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Our parent (ckptctl, ckptd's worker) reports the outcome: its death
	 * cancels. Set here too, not only before the exec: executing us as
	 * root from a capability-trimmed worker raises the permitted set,
	 * which clears a parent-death signal set before.
	 */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/* --dir-fd N: an open directory, made close-on-exec so no task inherits it. */
static int parse_dir_fd(const char *s)
{
	struct stat st;
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > INT_MAX || fstat((int)v, &st) < 0 ||
	    !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "ckpt-restore: --dir-fd %s is not an open directory\n", s);
		return -1;
	}
	fcntl((int)v, F_SETFD, FD_CLOEXEC);
	return (int)v;
}

/* --commit-fd, --client-fd, --hold-fd N: an open fd, made close-on-exec. */
static int parse_control_fd(const char *opt, const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 3 || v > INT_MAX || fcntl((int)v, F_GETFD) < 0) {
		fprintf(stderr, "ckpt-restore: %s %s is not an open fd\n", opt, s);
		return -1;
	}
	fcntl((int)v, F_SETFD, FD_CLOEXEC);
	return (int)v;
}

/* --caller-pid N: a process that exists. */
static pid_t parse_pid(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > INT_MAX ||
	    (kill((pid_t)v, 0) < 0 && errno == ESRCH)) {
		fprintf(stderr, "ckpt-restore: --caller-pid %s is not a running process\n", s);
		return -1;
	}
	return (pid_t)v;
}

/* --tty-fd N: an open terminal (the caller's, for --shell-job). */
static int parse_tty_fd(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > INT_MAX || !isatty((int)v)) {
		fprintf(stderr, "ckpt-restore: --tty-fd %s is not an open terminal\n", s);
		return -1;
	}
	return (int)v;
}

/*
 * The restorer's own mappings (libraries, stack, heap: placed at random by
 * the kernel) took addresses of memory the tree shares copy-on-write
 * (cow.c), before anything was created: run again, which places them
 * elsewhere, a few times at most. Returns only if it cannot.
 */
static void keep_fds(const struct restore_opts *o, int dir_fd, int flags)
{
	int fds[] = {dir_fd,	   o->progress_fd, o->commit_fds[0],	o->commit_fds[1],
		     o->client_fd, o->hold_fd,	   o->caller_cgroup_fd, o->tty_fd};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			fcntl(fds[i], F_SETFD, flags);
}

static void run_again(char **argv, const struct restore_opts *o, int dir_fd, struct ckpt_error *e)
{
	const char *s = getenv(RESTORE_ATTEMPT_ENV);
	int attempt = s ? atoi(s) : 0;
	char buf[16];

	if (attempt + 1 >= RESTORE_ATTEMPTS_MAX) {
		size_t n = strlen(e->msg);

		snprintf(e->msg + n, sizeof(e->msg) - n, " (after %d attempts)", attempt + 1);
		return;
	}
	pr_info("%s; running again", e->msg);
	snprintf(buf, sizeof(buf), "%d", attempt + 1);
	setenv(RESTORE_ATTEMPT_ENV, buf, 1);
	/* Nothing else crosses the exec: the objects P makes at the tree's
	 * numbers have the tree's FD_CLOEXEC (fds.c), and a collision comes
	 * before they are made, but an fd of ours left open would sit at a
	 * number the next run needs. The fds of our arguments must survive. */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	keep_fds(o, dir_fd, 0);
	execv("/proc/self/exe", argv);
	keep_fds(o, dir_fd, FD_CLOEXEC);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"plan", no_argument, NULL, 'p'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"dir-fd", required_argument, NULL, 'd'},
	    {"progress-fd", required_argument, NULL, 'P'},
	    {"shell-job", no_argument, NULL, 's'},
	    {"tty-fd", required_argument, NULL, 't'},
	    {"new-pidns", no_argument, NULL, 'N'},
	    {"continue-clocks", no_argument, NULL, 'K'},
	    {"cgroups", required_argument, NULL, 'c'},
	    {"caller-pid", required_argument, NULL, 'C'},
	    {"lazy", no_argument, NULL, 'L'},
	    {"commit-fd", required_argument, NULL, 'F'},
	    {"parent-pid", required_argument, NULL, 'R'},
	    {"client-fd", required_argument, NULL, 'S'},
	    {"hold-fd", required_argument, NULL, 'H'},
	    {"caller-cgroup-fd", required_argument, NULL, 'G'},
	    {NULL, 0, NULL, 0},
	};
	struct restore_opts opts = {RESTORE_OPTS_NO_FDS, .cancel = &cancel_requested};
	struct restore_ctx ctx;
	struct pidns_result ns;
	char fd_path[32], caller_cgroup[32];
	int c, r, dir_fd = -1;
	double t0;

	/* PID 1 of a namespace made by --new-pidns, once its tree runs (pidns.c) */
	if (argc == 2 && !strcmp(argv[1], "--ns-init") && getpid() == 1)
		return pidns_init_main();
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			opts.json = true;
			break;
		case 'p':
			opts.plan_only = true;
			break;
		case 'v':
			opts.verbose++;
			break;
		case 'd':
			dir_fd = parse_dir_fd(optarg);
			if (dir_fd < 0)
				return 2;
			break;
		case 'P':
			opts.progress_fd = parse_progress_fd(optarg);
			if (opts.progress_fd < 0)
				return 2;
			break;
		case 's':
			opts.shell_job = true;
			break;
		case 't':
			opts.tty_fd = parse_tty_fd(optarg);
			if (opts.tty_fd < 0)
				return 2;
			break;
		case 'N':
			opts.new_pidns = true;
			break;
		case 'K':
			opts.continue_clocks = true;
			break;
		case 'L':
			opts.lazy = true;
			break;
		case 'F':
			if (opts.n_commit_fds == 2) {
				fprintf(stderr, "ckpt-restore: at most two --commit-fd\n");
				return 2;
			}
			opts.commit_fds[opts.n_commit_fds] =
			    parse_control_fd("--commit-fd", optarg);
			if (opts.commit_fds[opts.n_commit_fds++] < 0)
				return 2;
			break;
		case 'R':
			opts.parent_pid = atoi(optarg);
			if (opts.parent_pid <= 0) {
				fprintf(stderr, "ckpt-restore: --parent-pid %s is not a pid\n",
					optarg);
				return 2;
			}
			break;
		case 'S':
			opts.client_fd = parse_control_fd("--client-fd", optarg);
			if (opts.client_fd < 0)
				return 2;
			break;
		case 'H':
			opts.hold_fd = parse_control_fd("--hold-fd", optarg);
			if (opts.hold_fd < 0)
				return 2;
			break;
		case 'G':
			opts.caller_cgroup_fd = parse_control_fd("--caller-cgroup-fd", optarg);
			if (opts.caller_cgroup_fd < 0)
				return 2;
			snprintf(caller_cgroup, sizeof(caller_cgroup), "/proc/self/fd/%d",
				 opts.caller_cgroup_fd);
			opts.caller_cgroup_path = caller_cgroup;
			break;
		case 'c':
			if (!strcmp(optarg, "exact")) {
				opts.cgroups = RESTORE_CGROUPS_EXACT;
			} else if (!strcmp(optarg, "caller")) {
				opts.cgroups = RESTORE_CGROUPS_CALLER;
			} else {
				fprintf(stderr,
					"ckpt-restore: --cgroups %s: not 'exact' or 'caller'\n",
					optarg);
				return 2;
			}
			break;
		case 'C':
			opts.caller_pid = parse_pid(optarg);
			if (opts.caller_pid <= 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - (dir_fd < 0 ? 1 : 0)) {
		usage(stderr);
		return 2;
	}
	if (opts.shell_job && opts.new_pidns) {
		fprintf(stderr, "ckpt-restore: --shell-job and --new-pidns cannot go together: a "
				"job of the terminal's session cannot be made inside a new pid "
				"namespace\n");
		return 2;
	}
	if (opts.lazy && opts.new_pidns) {
		fprintf(stderr, "ckpt-restore: --lazy and --new-pidns cannot go together yet: the "
				"pager would run inside the tree's pid namespace\n");
		return 2;
	}
	if ((opts.caller_pid || opts.caller_cgroup_fd >= 0) &&
	    opts.cgroups != RESTORE_CGROUPS_CALLER) {
		fprintf(
		    stderr,
		    "ckpt-restore: --caller-pid and --caller-cgroup-fd need --cgroups=caller\n");
		return 2;
	}
	if (opts.shell_job && opts.tty_fd < 0)
		opts.tty_fd =
		    isatty(STDIN_FILENO) ? STDIN_FILENO : open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (dir_fd >= 0) {
		/* read through our own fd table only: no path of the caller's */
		snprintf(fd_path, sizeof(fd_path), "/proc/self/fd/%d", dir_fd);
		opts.dir = fd_path;
	} else {
		opts.dir = argv[optind];
	}
	ckpt_log_set_level(opts.verbose >= 2 ? LOG_LVL_DEBUG
			   : opts.verbose    ? LOG_LVL_INFO
					     : LOG_LVL_WARN);

	/*
	 * Not root: ckptd runs us as its caller with a few capabilities
	 * (daemon/worker.c). They stay in the permitted set only, so that
	 * every file, socket address and directory of the images is opened
	 * with exactly the caller's rights; the stages raise them around the
	 * calls that need them (stages.c, caps.h).
	 */
	if (getuid() != 0 && caps_lower_all() < 0) {
		fprintf(stderr, "ckpt-restore: cannot clear the effective capability set: %m\n");
		return 1;
	}
	/* a pause only: tests kill our parent here, before our parent-death
	 * signal is set */
	ckpt_fault_inject("restorer-started", NULL);
	setup_signals();
	/* our parent died before that: cancelled (as its SIGTERM would) */
	if (opts.parent_pid && getppid() != opts.parent_pid)
		cancel_requested = 1;
	t0 = ckpt_monotonic_seconds();
	restore_ctx_init(&ctx, &opts);
	if (opts.new_pidns && opts.caller_pid && !opts.caller_cgroup_path) {
		/* its pid means nothing inside the new pid namespace */
		char p[64];
		int fd;

		snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)opts.caller_pid);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "ckpt-restore: --caller-pid %d: %s: %m\n", (int)opts.caller_pid, p);
			return 1;
		}
		snprintf(caller_cgroup, sizeof(caller_cgroup), "/proc/self/fd/%d", fd);
		opts.caller_cgroup_path = caller_cgroup;
	}
	if (opts.new_pidns && !opts.plan_only)
		r = pidns_restore(&ctx, &ns);
	else
		r = restore_run(&ctx);
	/* (with --new-pidns the stages run in the namespace's init: a layout
	 * collision there fails the restore, it does not run again) */
	if (r < 0 && ctx.layout_collision)
		run_again(argv, &opts, dir_fd, &ctx.err);
	if (r == 0 && opts.plan_only)
		plan_print(&ctx, stdout);
	else
		print_result(&ctx, opts.new_pidns && !opts.plan_only ? &ns : NULL, r,
			     ckpt_monotonic_seconds() - t0);
	restore_ctx_free(&ctx);
	return r < 0 ? 1 : 0;
}
