/* SPDX-License-Identifier: MIT */
/*
 * ckptctl restore: runs the restorer binary `ckpt-restore --json DIR`, passes
 * its stderr through, reads the one JSON line it prints on stdout and reports
 * it. The restorer is a separate binary because the tree it creates must not
 * inherit anything from a long-lived process (and later the daemon runs it).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "ckptctl.h"
#include "restorer_io.h"
#include "image.h"
#include "proc.h"
#include "pstree.pb-c.h"

/* The restorer prints one short line; anything much longer is not it. */
#define RESTORER_OUT_MAX (64 << 10)
/* PID 1 reaps orphans about once a second: wait that long for dumped pids. */
#define ZOMBIE_WAIT_SECONDS 2.0
/* The restorer's --progress-fd: its progress lines come through a pipe. */
#define PROGRESS_FD 3
/* --shell-job: the restorer's --tty-fd, our terminal. */
#define TTY_FD 4
/*
 * --json shows progress lines only for a restore of at least this much
 * memory (as the dump does): a small tree is restored in a blink, and its
 * --json output stays the one result object.
 */
#define PROGRESS_JSON_MIN_BYTES (64ULL << 20)

/*
 * Ctrl-C or SIGTERM while the restorer runs: it is told to cancel (it rolls
 * back by itself). A signal handler can reach nothing but a global.
 */
static volatile sig_atomic_t restore_interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	restore_interrupted = 1;
}

static void usage_restore(FILE *out)
{
	fprintf(out,
		"usage: ckptctl restore DIR [--shell-job] [--cgroups=exact|caller] [--new-pidns]\n"
		"                           [--continue-clocks] [--lazy] [--json] [-v]\n"
		"\n"
		"Recreate the process tree saved in DIR, with the same pids, and resume it.\n"
		"Runs ckpt-restore: $CKPT_RESTORE if set, else the one next to ckptctl, else\n"
		"%s/ckpt-restore, else the first in $PATH.\n"
		"\n"
		"Progress shows as a bar on a terminal; Ctrl-C cancels the restore (it rolls\n"
		"back: no task of the tree is left).\n"
		"\n"
		"      --shell-job\n"
		"                 restore a job dumped with --shell-job onto this terminal, as\n"
		"                 its foreground job; stay in the foreground until it exits\n"
		"                 (exit status: the job's), then take the terminal back\n"
		"      --new-pidns\n"
		"                 restore into a new pid namespace in which every task has\n"
		"                 its saved pid, even if those pids are taken here (a small\n"
		"                 init of ckpt's is its pid 1); also a new mount namespace\n"
		"                 with that namespace's /proc. --json adds root_pid_ns\n"
		"      --continue-clocks\n"
		"                 restore into a new time namespace in which CLOCK_MONOTONIC\n"
		"                 and CLOCK_BOOTTIME go on from their values at the dump\n"
		"      --lazy     return as soon as the tree runs: its private anonymous memory\n"
		"                 comes in on demand and in the background, served by a pager\n"
		"                 process that exits when every page is in (--json: pager_pid;\n"
		"                 keep DIR until it is gone). If the pager dies first, the\n"
		"                 tree is killed (docs/lazy.md)\n"
		"      --cgroups=exact\n"
		"                 every task and thread back in the cgroups it was dumped in\n"
		"                 (the default); the restore is refused if one is gone\n"
		"      --cgroups=caller\n"
		"                 the dumped root's cgroup in each hierarchy is this command's\n"
		"                 current one; the cgroups below it are made below it (made by\n"
		"                 you: they need your rights); a task outside the root's\n"
		"                 subtree is refused\n"
		"      --json     print progress lines {\"progress\":{...}}, then the restorer's\n"
		"                 JSON result, on stdout\n"
		"  -v, --verbose  more log output on stderr (-vv: debug)\n",
		CKPT_LIBEXECDIR);
}

/* --- finding and running the restorer ------------------------------------------ */

/*
 * The restorer dies with us: ckptctl killed (even SIGKILL) means nobody can
 * report what it made, so it gets SIGTERM and rolls back (a restore past
 * its last stage too: it kills the tree it resumed). posix_spawn cannot set
 * a parent-death signal: fork, and the exec error comes back through a pipe.
 */
static void exec_restorer(const char *path, bool search, char **args, pid_t parent, int err_fd)
{
	sigset_t none;
	int err;

	/* `ckptctl run` blocks the signals it takes through a signalfd */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent) {
		err = ECANCELED;
	} else {
		if (search)
			execvp(path, args);
		else
			execv(path, args);
		err = errno;
	}
	if (write(err_fd, &err, sizeof(err)) < 0)
		_exit(127);
	_exit(127);
}

static int spawn_restorer(const char *path, bool search, const char *dir, int verbose, int out_fd,
			  int progress_fd, int tty_fd, int commit_fd, const char *cgroups,
			  const char *const *extra, pid_t *ret_pid)
{
	char *args[28], fdarg[16], ttyarg[16], cgarg[32], commitarg[16], parentarg[16];
	pid_t parent = getpid(), pid;
	int n = 0, err = 0, errp[2];
	ssize_t k;

	args[n++] = (char *)path;
	args[n++] = "--json";
	if (verbose >= 1)
		args[n++] = "-v";
	if (verbose >= 2)
		args[n++] = "-v";
	snprintf(fdarg, sizeof(fdarg), "%d", PROGRESS_FD);
	args[n++] = "--progress-fd";
	args[n++] = fdarg;
	if (tty_fd >= 0) {
		snprintf(ttyarg, sizeof(ttyarg), "%d", TTY_FD);
		args[n++] = "--shell-job";
		args[n++] = "--tty-fd";
		args[n++] = ttyarg;
	}
	for (; extra && *extra; extra++)
		args[n++] = (char *)*extra;
	if (cgroups) {
		snprintf(cgarg, sizeof(cgarg), "--cgroups=%s", cgroups);
		args[n++] = cgarg;
	}
	/* the truth when it dies without its answer (commit_open) */
	snprintf(commitarg, sizeof(commitarg), "%d", commit_fd);
	args[n++] = "--commit-fd";
	args[n++] = commitarg;
	snprintf(parentarg, sizeof(parentarg), "%d", (int)parent);
	args[n++] = "--parent-pid";
	args[n++] = parentarg;
	args[n++] = "--";
	args[n++] = (char *)dir;
	args[n] = NULL;
	if (pipe2(errp, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		err = errno;
		close(errp[0]);
		close(errp[1]);
		return -err;
	}
	if (pid == 0) {
		/* dup2 clears close-on-exec: the restorer gets its own fd 3 */
		if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(progress_fd, PROGRESS_FD) < 0 ||
		    (tty_fd >= 0 && dup2(tty_fd, TTY_FD) < 0) || fcntl(commit_fd, F_SETFD, 0) < 0)
			_exit(127);
		exec_restorer(path, search, args, parent, errp[1]);
	}
	close(errp[1]);
	do
		k = read(errp[0], &err, sizeof(err));
	while (k < 0 && errno == EINTR);
	close(errp[0]);
	if (k == sizeof(err)) {
		/* the exec failed: the child is done */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -err;
	}
	*ret_pid = pid;
	return 0;
}

/* What the restorer sends while it runs: its progress lines, shown as they come. */
struct progress_view {
	struct line_reader in; /* the progress pipe */
	bool json, bar;
};

static void show_restore_progress(void *arg, const char *line)
{
	const struct progress_view *v = arg;
	struct restorer_progress p;
	char done[32], total[32];

	if (!restorer_progress_parse(line, &p))
		return; /* not one of its lines: nothing to show */
	if (v->json) {
		if (p.bytes_total < PROGRESS_JSON_MIN_BYTES)
			return;
		/* same shape as through ckptd: {"progress":{...}} */
		printf("{\"progress\":%s}\n", line);
		fflush(stdout);
		return;
	}
	if (!v->bar)
		return;
	fprintf(stderr, "\rrestoring: %-8s %u/%u tasks, %s of %s memory   ", p.stage, p.tasks_done,
		p.tasks_total, format_bytes(p.bytes, done, sizeof(done)),
		format_bytes(p.bytes_total, total, sizeof(total)));
	fflush(stderr);
}

/* Read what is in the progress pipe; show every complete line. */
static void read_progress(struct progress_view *v)
{
	while (line_reader_read(&v->in, show_restore_progress, v) > 0)
		;
}

/*
 * Collect the restorer's stdout until it exits. Not until EOF: if a restored
 * task ever inherited the pipe, EOF would never come; the pidfd says when the
 * restorer itself is gone. Progress lines are shown meanwhile; an interrupt
 * is passed on to the restorer as SIGTERM, once.
 */
static void collect_output(int rfd, pid_t pid, struct progress_view *v, char *buf, size_t cap,
			   size_t *ret_len)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0);
	bool exited = false, forwarded = false;
	size_t len = 0;

	for (;;) {
		struct pollfd pfd[3] = {
		    {rfd, POLLIN, 0}, {pidfd, POLLIN, 0}, {v->in.fd, POLLIN, 0}};
		char chunk[4096];
		ssize_t n;

		if (restore_interrupted && !forwarded) {
			kill(pid, SIGTERM);
			forwarded = true;
		}
		if (!exited && poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[2].revents)
			read_progress(v);
		if (!exited && pidfd >= 0 && (pfd[1].revents & POLLIN)) {
			/* gone: take what is in the pipes without waiting for EOF */
			exited = true;
			fcntl(rfd, F_SETFL, O_NONBLOCK);
			read_progress(v);
		}
		if (!exited && !(pfd[0].revents))
			continue;
		n = read(rfd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		/* keep draining past cap so the restorer never blocks on a full pipe */
		if ((size_t)n > cap - 1 - len)
			n = cap - 1 - len;
		memcpy(buf + len, chunk, n);
		len += n;
	}
	if (pidfd >= 0)
		close(pidfd);
	buf[len] = '\0';
	*ret_len = len;
}

/* --- the restorer's JSON line ---------------------------------------------------- */

struct restore_result {
	char status[16];
	char error[1024];
	long root_pid;
	long tasks;
	double seconds;
	bool have_pid;
	long pager_pid;
};

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	return p;
}

/* Decode a JSON string at p into out (truncated to cap); returns the end or NULL. */
static const char *parse_json_string(const char *p, char *out, size_t cap)
{
	size_t n = 0;

	if (*p++ != '"')
		return NULL;
	for (; *p && *p != '"'; p++) {
		char ch = *p;

		if (ch == '\\') {
			p++;
			switch (*p) {
			case 'n':
				ch = '\n';
				break;
			case 't':
				ch = '\t';
				break;
			case 'r':
				ch = '\r';
				break;
			case 'u': {
				char hex[5] = {0};
				long v;

				for (int i = 0; i < 4 && p[1 + i]; i++)
					hex[i] = p[1 + i];
				if (strspn(hex, "0123456789abcdefABCDEF") != 4)
					return NULL;
				v = strtol(hex, NULL, 16);
				/* \u00XX: a control char or a raw byte escaped by img_json_string()
				 */
				ch = v > 0 && v < 0x100 ? (char)v : '?';
				p += 4;
				break;
			}
			case '\0':
				return NULL;
			default:
				ch = *p;
			}
		}
		if (n + 1 < cap)
			out[n++] = ch;
	}
	if (*p != '"')
		return NULL;
	if (cap)
		out[n] = '\0';
	return p + 1;
}

/* Parse the flat object {"status":..,"root_pid":..,...}; unknown keys are skipped. */
static bool parse_restore_json(const char *line, struct restore_result *res)
{
	const char *p = skip_ws(line);
	char key[64], sval[1024];

	memset(res, 0, sizeof(*res));
	if (*p++ != '{')
		return false;
	p = skip_ws(p);
	while (*p && *p != '}') {
		char *end;
		double num = 0;
		bool is_num = false;

		p = parse_json_string(p, key, sizeof(key));
		if (!p)
			return false;
		p = skip_ws(p);
		if (*p++ != ':')
			return false;
		p = skip_ws(p);
		sval[0] = '\0';
		if (*p == '"') {
			p = parse_json_string(p, sval, sizeof(sval));
			if (!p)
				return false;
		} else {
			num = strtod(p, &end);
			if (end == p) {
				/* true / false / null */
				end = (char *)p + strspn(p, "truefalsn");
				if (end == p)
					return false;
			} else {
				is_num = true;
			}
			p = end;
		}
		if (!strcmp(key, "status"))
			snprintf(res->status, sizeof(res->status), "%s", sval);
		else if (!strcmp(key, "error"))
			snprintf(res->error, sizeof(res->error), "%s", sval);
		else if (!strcmp(key, "root_pid") && is_num)
			res->root_pid = (long)num, res->have_pid = true;
		else if (!strcmp(key, "tasks") && is_num)
			res->tasks = (long)num;
		else if (!strcmp(key, "seconds") && is_num)
			res->seconds = num;
		else if (!strcmp(key, "pager_pid") && is_num)
			res->pager_pid = (long)num;
		p = skip_ws(p);
		if (*p == ',')
			p = skip_ws(p + 1);
		else if (*p != '}')
			return false;
	}
	return *p == '}' && res->status[0];
}

/* The last line of out that parses as the restorer's result (copied to ret_line). */
static bool find_result_line(char *out, struct restore_result *res, const char **ret_line)
{
	bool found = false;
	char *save = NULL;

	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct restore_result r;

		if (parse_restore_json(line, &r)) {
			*res = r;
			*ret_line = line;
			found = true;
		}
	}
	return found;
}

/* --- waiting for the dumped pids ------------------------------------------------- */

/*
 * A tree killed by `ckptctl dump` keeps its pids as zombies until PID 1 reaps
 * them (up to ~1.5 s here): wait for those before the restorer asks for the
 * same pids. Best effort; a damaged pstree.img is the restorer's to report.
 */
void wait_for_zombie_pids(const char *dir)
{
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_img_ struct img *img = NULL;
	struct ckpt_error e = {0};
	ProtobufCMessage *m;
	double deadline = ckpt_monotonic_seconds() + ZOMBIE_WAIT_SECONDS;

	if (dirfd < 0 || img_open(dirfd, IMG_PSTREE, 0, &img, &e) < 0)
		return;
	while (img_read_msg(img, &m, &e) == 1) {
		PstreeEntry *pe = (PstreeEntry *)m;

		while (ckpt_monotonic_seconds() < deadline) {
			bool any = proc_pid_is_zombie(pe->pid);

			for (size_t i = 0; i < pe->n_threads && !any; i++)
				any = proc_pid_is_zombie(pe->threads[i]);
			if (!any)
				break;
			usleep(20000);
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

/* --- --shell-job ---------------------------------------------------------------------- */

/*
 * Like a shell running a job: the restored root is the terminal's foreground
 * job (ckpt-restore does that) and we stay until it exits, then take the
 * terminal back with the termios it had. We are a child subreaper, so the
 * root comes to us when the restorer exits and we reap it.
 */
struct shell_job {
	bool on;
	int tty_fd;
	bool have_termios;
	struct termios termios;
};

static int shell_job_prepare(struct shell_job *j, const struct cli_common *c)
{
	const char *msg = NULL;

	if (geteuid() != 0)
		msg = "--shell-job needs root: the job is made inside this terminal's session, "
		      "which ckptd cannot do";
	else if (isatty(STDIN_FILENO))
		j->tty_fd = STDIN_FILENO;
	else if ((j->tty_fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) < 0)
		msg = "--shell-job needs a terminal (stdin is none and there is no /dev/tty)";
	if (!msg && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		msg = "--shell-job: prctl(PR_SET_CHILD_SUBREAPER) failed";
	if (msg) {
		fprintf(stderr, "ckptctl restore: %s\n", msg);
		if (c->json) {
			printf("{\"status\":\"error\",\"error\":");
			img_json_string(stdout, msg);
			printf("}\n");
		}
		return -1;
	}
	j->have_termios = tcgetattr(j->tty_fd, &j->termios) == 0;
	return 0;
}

/* Wait for the job: our child (we are its subreaper), else through a pidfd. */
static int shell_job_wait(pid_t root)
{
	int status = 0;

	for (;;) {
		pid_t p = waitpid(root, &status, WUNTRACED);

		if (p == root)
			break;
		if (p < 0 && errno == EINTR)
			continue;
		if (p < 0) {
			int pidfd = (int)syscall(SYS_pidfd_open, root, 0);
			struct pollfd pfd = {pidfd, POLLIN, 0};

			while (pidfd >= 0 && poll(&pfd, 1, -1) < 0 && errno == EINTR)
				;
			if (pidfd >= 0)
				close(pidfd);
			return 0;
		}
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	fprintf(stderr,
		"ckptctl: pid %d stopped (signal %d); it is left stopped, kill -CONT %d "
		"resumes it\n",
		(int)root, WSTOPSIG(status), (int)root);
	return 128 + WSTOPSIG(status);
}

static int shell_job_finish(struct shell_job *j, pid_t root, int r)
{
	sigset_t ttou, old;

	if (root > 0)
		r = shell_job_wait(root);
	/* we are in the background until tcsetpgrp: no SIGTTOU for it */
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	if (tcgetpgrp(j->tty_fd) != getpgrp() && tcsetpgrp(j->tty_fd, getpgrp()) < 0)
		fprintf(stderr, "ckptctl: cannot take the terminal back: %m\n");
	if (j->have_termios)
		tcsetattr(j->tty_fd, TCSADRAIN, &j->termios);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}

/*
 * ckpt-restore failed without rolling back (killed, say, after its tasks
 * stopped dying with it): what it made of the tree must not run.
 */
static void kill_unreported(const char *dir, unsigned long long since)
{
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dirfd >= 0)
		restored_tasks_kill(dirfd, since);
}

/*
 * The commit record ckpt-restore writes before its tree runs
 * (lib/restorer_io.h): read when it dies without its answer, which then
 * is that the tree runs. A memfd above the fds spawn_restorer places.
 */
static int commit_open(void)
{
	int fd = memfd_create("ckpt-commit", MFD_CLOEXEC), high;

	if (fd < 0)
		return -errno;
	high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	close(fd);
	return high < 0 ? -errno : high;
}

/*
 * ckpt-restore ended without its answer (killed) after its commit point,
 * which its commit record says: the tree runs. *ret as if it had answered.
 */
static bool committed_result(int commit_fd, struct restore_result *ret)
{
	struct restore_commit cr;

	if (!restore_commit_read(commit_fd, &cr))
		return false;
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->status, sizeof(ret->status), "ok");
	ret->root_pid = cr.new_pidns ? 0 : cr.root_pid;
	ret->tasks = cr.ntasks;
	ret->have_pid = true;
	return true;
}

/* --- the command --------------------------------------------------------------------- */

static int report(const char *dir, int status, char *out, int commit_fd, bool json, pid_t *ret_root)
{
	struct restore_result res = {0};
	const char *line = NULL;
	bool parsed = find_result_line(out, &res, &line);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;

	if (!(parsed && code == 0 && !strcmp(res.status, "ok") && res.have_pid) &&
	    committed_result(commit_fd, &res)) {
		*ret_root = (pid_t)res.root_pid;
		fprintf(stderr,
			"ckptctl: ckpt-restore ended without its answer (%s %d), after it "
			"committed: the tree runs\n",
			WIFSIGNALED(status) ? "signal" : "exit status",
			WIFSIGNALED(status) ? WTERMSIG(status) : code);
		if (json)
			printf("{\"status\":\"ok\",\"root_pid\":%ld,\"tasks\":%ld}\n", res.root_pid,
			       res.tasks);
		else
			printf("restored pid %ld (%ld task%s)\n", res.root_pid, res.tasks,
			       res.tasks == 1 ? "" : "s");
		return 0;
	}

	if (WIFSIGNALED(status))
		snprintf(res.error, sizeof(res.error), "ckpt-restore was killed by signal %d",
			 WTERMSIG(status));
	if (parsed && code == 0 && !strcmp(res.status, "ok") && res.have_pid) {
		*ret_root = (pid_t)res.root_pid;
		if (json)
			printf("%s\n", line);
		else
			printf("restored pid %ld (%ld task%s) in %.2f s\n", res.root_pid, res.tasks,
			       res.tasks == 1 ? "" : "s", res.seconds);
		if (!json && res.pager_pid)
			printf("its memory comes in lazily: pager pid %ld (keep %s until it "
			       "exits)\n",
			       res.pager_pid, dir);
		return 0;
	}
	/* a failure line of the restorer is passed on as is; anything else is ours */
	bool pass_line = parsed && !WIFSIGNALED(status) && !strcmp(res.status, "error");

	if (!parsed && !WIFSIGNALED(status))
		snprintf(res.error, sizeof(res.error),
			 "ckpt-restore exited with status %d without a result", code);
	else if (!res.error[0])
		snprintf(res.error, sizeof(res.error),
			 "ckpt-restore reported status '%s' and exited with status %d", res.status,
			 code);
	fprintf(stderr, "ckptctl: restore from %s failed: %s\n", dir, res.error);
	if (json && pass_line) {
		printf("%s\n", line);
	} else if (json) {
		printf("{\"status\":\"error\",\"error\":");
		img_json_string(stdout, res.error);
		printf("}\n");
	}
	return code ? code : 1;
}

int restore_in_process(const char *dir, int verbose, const char *cgroups, pid_t *ret_root,
		       long *ret_tasks, double *ret_seconds, char *err, size_t errlen)
{
	_cleanup_free_ char *path = NULL, *out = NULL;
	struct progress_view view = {.in = {.fd = -1}};
	struct restore_result res = {0};
	const char *line = NULL;
	int r, status, pipefd[2], progfd[2];
	_cleanup_close_ int commit_fd = -1;
	unsigned long long since;
	bool search;
	size_t len;
	pid_t pid = 0;

	path = restorer_find(NULL, CKPT_LIBEXECDIR, true, &search);
	out = malloc(RESTORER_OUT_MAX);
	if (!path || !out) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	wait_for_zombie_pids(dir);
	commit_fd = commit_open();
	if (commit_fd < 0)
		return snprintf(err, errlen, "memfd for the commit record: %s",
				strerror(-commit_fd)),
		       commit_fd;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return snprintf(err, errlen, "pipe: %m"), -EMFILE;
	if (pipe2(progfd, O_CLOEXEC) < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return snprintf(err, errlen, "pipe: %m"), -EMFILE;
	}
	fcntl(progfd[0], F_SETFL, O_NONBLOCK);
	view.in.fd = progfd[0];
	fflush(stdout);
	r = spawn_restorer(path, search, dir, verbose, pipefd[1], progfd[1], -1, commit_fd, cgroups,
			   NULL, &pid);
	close(pipefd[1]);
	close(progfd[1]);
	if (r < 0) {
		close(pipefd[0]);
		close(progfd[0]);
		snprintf(err, errlen, "cannot run %s: %s", path, strerror(-r));
		return r;
	}
	since = proc_start_ticks(pid);
	collect_output(pipefd[0], pid, &view, out, RESTORER_OUT_MAX, &len);
	close(pipefd[0]);
	close(progfd[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(err, errlen, "waiting for ckpt-restore: %m");
			kill_unreported(dir, since);
			return -ECHILD;
		}
	}
	if ((find_result_line(out, &res, &line) && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	     !strcmp(res.status, "ok") && res.have_pid) ||
	    committed_result(commit_fd, &res)) {
		*ret_root = (pid_t)res.root_pid;
		*ret_tasks = res.tasks;
		*ret_seconds = res.seconds;
		return 0;
	}
	if (WIFSIGNALED(status))
		snprintf(err, errlen, "ckpt-restore was killed by signal %d", WTERMSIG(status));
	else if (res.error[0])
		snprintf(err, errlen, "%s", res.error);
	else
		snprintf(err, errlen, "ckpt-restore exited with status %d without a result",
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	kill_unreported(dir, since);
	return -EIO;
}

int cmd_restore(int argc, char **argv, struct cli_common *c)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'J'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"shell-job", no_argument, NULL, 'j'},
	    {"new-pidns", no_argument, NULL, 'N'},
	    {"continue-clocks", no_argument, NULL, 'C'},
	    {"cgroups", required_argument, NULL, 'g'},
	    {"lazy", no_argument, NULL, 'L'},
	    {NULL, 0, NULL, 0},
	};
	_cleanup_free_ char *path = NULL, *out = NULL;
	bool new_pidns = false, continue_clocks = false, lazy = false;
	const char *extra[4] = {NULL, NULL, NULL, NULL};
	size_t nextra = 0;
	const char *cgroups = NULL;
	struct shell_job job = {.tty_fd = -1};
	pid_t root = 0;
	struct sigaction sa = {.sa_handler = on_interrupt}, old_int, old_term;
	struct progress_view view = {.in = {.fd = -1}};
	int opt, ex, status, r, pipefd[2], progfd[2];
	_cleanup_close_ int commit_fd = -1;
	unsigned long long since;
	bool search;
	size_t len;
	pid_t pid = 0;
	const char *dir;

	while ((opt = cli_getopt(argc, argv, ":vh", longopts, c, usage_restore, &ex)) != -1) {
		if (opt == -2)
			return ex;
		if (opt == 'j')
			job.on = true;
		if (opt == 'N')
			new_pidns = true;
		if (opt == 'C')
			continue_clocks = true;
		if (opt == 'L')
			lazy = true;
		if (opt == 'g') {
			if (strcmp(optarg, "exact") && strcmp(optarg, "caller"))
				return cli_usage_error("restore",
						       "--cgroups %s: not 'exact' or 'caller'",
						       optarg);
			cgroups = optarg;
		}
	}
	if (job.on && new_pidns)
		return cli_usage_error("restore",
				       "--shell-job and --new-pidns cannot go together (a job of "
				       "this terminal's session cannot be made in a new pid "
				       "namespace)");
	if (lazy && new_pidns)
		return cli_usage_error("restore",
				       "--lazy and --new-pidns cannot go together yet (the "
				       "pager would run inside the tree's pid namespace)");
	if (new_pidns)
		extra[nextra++] = "--new-pidns";
	if (lazy)
		extra[nextra++] = "--lazy";
	if (continue_clocks)
		extra[nextra++] = "--continue-clocks";
	if (optind >= argc)
		return cli_usage_error("restore", "missing DIR");
	if (optind + 1 < argc)
		return cli_usage_error("restore", "unexpected argument '%s'", argv[optind + 1]);
	dir = argv[optind];
	cli_set_verbosity(c->verbose);

	/* a shell job must be made inside our session: never through ckptd */
	if (job.on)
		r = shell_job_prepare(&job, c);
	else
		r = cli_daemon_connect(c, "restore", &ex);
	if (r < 0)
		return 1;
	if (r > 0) {
		wait_for_zombie_pids(dir);
		return daemon_restore(ex, dir, cgroups, c, new_pidns, continue_clocks, lazy);
	}
	path = restorer_find(NULL, CKPT_LIBEXECDIR, true, &search);
	out = malloc(RESTORER_OUT_MAX);
	if (!path || !out) {
		fprintf(stderr, "ckptctl: out of memory\n");
		return 1;
	}
	wait_for_zombie_pids(dir);
	commit_fd = commit_open();
	if (commit_fd < 0) {
		fprintf(stderr, "ckptctl: memfd for the commit record: %s\n", strerror(-commit_fd));
		return 1;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0 || pipe2(progfd, O_CLOEXEC) < 0) {
		fprintf(stderr, "ckptctl: pipe: %m\n");
		return 1;
	}
	fcntl(progfd[0], F_SETFL, O_NONBLOCK);
	view.in.fd = progfd[0];
	view.json = c->json;
	view.bar = !c->json && isatty(STDERR_FILENO) && c->verbose == 0;
	fflush(stdout);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	r = spawn_restorer(path, search, dir, c->verbose, pipefd[1], progfd[1], job.tty_fd,
			   commit_fd, cgroups, extra, &pid);
	close(pipefd[1]);
	close(progfd[1]);
	if (r < 0) {
		char msg[PATH_MAX + 256];

		close(pipefd[0]);
		close(progfd[0]);
		snprintf(msg, sizeof(msg), "cannot run %s: %s%s", path, strerror(-r),
			 search ? " (not next to ckptctl, not in " CKPT_LIBEXECDIR
				  ", not in $PATH; set CKPT_RESTORE)"
				: "");
		fprintf(stderr, "ckptctl: %s\n", msg);
		if (c->json) {
			printf("{\"status\":\"error\",\"error\":");
			img_json_string(stdout, msg);
			printf("}\n");
		}
		return 1;
	}
	since = proc_start_ticks(pid);
	collect_output(pipefd[0], pid, &view, out, RESTORER_OUT_MAX, &len);
	close(pipefd[0]);
	if (view.in.fd >= 0)
		close(view.in.fd);
	if (view.bar)
		fprintf(stderr, "\r\033[K");
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "ckptctl: waiting for ckpt-restore: %m\n");
			return 1;
		}
		if (restore_interrupted)
			kill(pid, SIGTERM);
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	r = report(dir, status, out, commit_fd, c->json, &root);
	if (r != 0 && new_pidns) {
		/* the tree has other pids out here: its namespace's init goes */
		const char *p = strstr(out, "\"ns_init_pid\":");

		if (p)
			restored_nsinit_kill((pid_t)atol(p + 14), since);
	} else if (r != 0) {
		kill_unreported(dir, since);
	}
	if (job.on)
		r = shell_job_finish(&job, r == 0 ? root : 0, r);
	return r;
}
