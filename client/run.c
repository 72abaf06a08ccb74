/* SPDX-License-Identifier: MIT */
/*
 * ckptctl run: a batch job's wrapper (docs/slurm.md). Restores the job from
 * DIR if DIR holds a complete checkpoint, else starts it; stays in the
 * foreground for its life and exits with its status; on a checkpoint signal
 * dumps it into DIR.new, swaps that for DIR and exits with --exit-code (the
 * scheduler requeues the job, and the next run restores it).
 *
 * Who waits for the job (docs/slurm.md, "Who waits for a restored job"): a
 * started job is our child. A job restored in process is the child of
 * ckpt-restore, our child, and comes to us when ckpt-restore exits because
 * we are a child subreaper. A job restored through ckptd is the child of
 * ckptd's restorer and goes to ckptd's subreaper: no request can make it
 * ours (a process is only ever reparented to an ancestor). We hold a
 * pidfd on it and read its exit status with PIDFD_GET_INFO (PIDFD_INFO_EXIT,
 * Linux 6.15), which the kernel keeps for a pidfd holder once the task has
 * been reaped by whoever reaps it.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "ckptctl.h"
#include "dump.h"
#include "error.h"
#include "image.h"
#include "pstree.pb-c.h"
#include "restorer_io.h"
#include "run.h"

/* PIDFD_GET_INFO (include/uapi/linux/pidfd.h of Linux 6.13+; not in Debian 12's headers) */
struct run_pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
};
#define RUN_PIDFD_GET_INFO _IOWR(0xFF, 11, struct run_pidfd_info)
#define RUN_PIDFD_INFO_EXIT (1ULL << 3)
/* After the pidfd says the job exited: how long its reaper may take (PID 1 here: ~1 s). */
#define EXIT_INFO_WAIT_SECONDS 10.0
/* After a killing checkpoint: reap the tree's tasks that came to us. */
#define REAP_WAIT_SECONDS 5.0

/* Signals passed on to the job when they are not checkpoint signals. */
static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGCONT};

/*
 * Incremental checkpoints with --interval (docs/slurm.md): DIR.pre<N>,
 * pre-dumps, each with the one before as parent, at most CHAIN_MAX of them;
 * then a new chain starts with a full pre-dump. After PRE_DUMP_FAILURES
 * pre-dumps in a row failed (no write tracking in this kernel...), full
 * checkpoints only.
 */
#define CHAIN_MAX 8
#define PRE_DUMP_FAILURES 2

struct run {
	const struct run_opts *o;
	struct cli_common c; /* what the requests to ckptd see: no progress output */
	bool use_daemon;
	char *newdir, *olddir;
	/* this run's chain of pre-dumps: DIR.pre<pre_first..pre_last>; 0: none yet */
	unsigned pre_first, pre_last, pre_next;
	unsigned pre_failures;
	pid_t root;
	int pidfd;
	bool child; /* root is our child: waitpid gives its status */
	bool checkpointed; /* we exit because the job is checkpointed (not because it ended) */
};

/* --- events: one line each on stderr -------------------------------------------------- */

static void now_iso(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * event(r, NAME, JSONFIELDS, FMT, ...): text "ckptctl run: TIME NAME MESSAGE";
 * with --json {"time":..,"event":NAME,"message":MESSAGE,JSONFIELDS}.
 */
__attribute__((format(printf, 4, 5))) static void
event(const struct run *r, const char *name, const char *json_fields, const char *fmt, ...)
{
	char when[32], msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	now_iso(when, sizeof(when));
	if (r->o->json) {
		fprintf(stderr, "{\"time\":\"%s\",\"event\":\"%s\",\"message\":", when, name);
		img_json_string(stderr, msg);
		fprintf(stderr, "%s%s}\n", json_fields && *json_fields ? "," : "",
			json_fields ? json_fields : "");
	} else {
		fprintf(stderr, "ckptctl run: %s %s %s\n", when, name, msg);
	}
	fflush(stderr);
}

/* --- the checkpoint directory ---------------------------------------------------------- */

/* Is path a complete checkpoint? (err: why not, if it exists at all) */
static bool is_checkpoint(const char *path, char *err, size_t errlen)
{
	struct ckpt_error e = {0};
	Inventory *inv = NULL;
	int dfd = -1;

	if (err)
		err[0] = '\0';
	if (img_dir_open_verified_flags(path, IMG_VERIFY_PAGES_BY_SIZE, &dfd, &inv, &e) < 0) {
		if (err && access(path, F_OK) == 0)
			snprintf(err, errlen, "%s", e.msg);
		return false;
	}
	close(dfd);
	inventory__free_unpacked(inv, NULL);
	return true;
}

/* Is path a directory with something in it? */
static bool dir_nonempty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool any = false;

	if (!d)
		return false;
	while (!any && (de = readdir(d)))
		any = strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return any;
}

/*
 * Remove a checkpoint directory we made (DIR.new or DIR.old): its images
 * (inventory.img first), the logs ckptd writes, then the directory. Anything
 * else in it is not ours: it stays, and so does the directory.
 */
static int remove_checkpoint_dir(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	img_dir_remove_images(fd);
	unlinkat(fd, "dump.log", 0);
	unlinkat(fd, "restore.log", 0);
	return rmdir(path) < 0 ? -errno : 0;
}

/*
 * The new checkpoint DIR.new becomes DIR in one step (RENAME_EXCHANGE: DIR
 * is a complete checkpoint at every moment), then the old one is removed.
 * Where the filesystem cannot exchange (NFS), DIR goes to DIR.old first and
 * a run that finds no DIR takes DIR.new, else DIR.old (run_recover_dir).
 */
static int publish_checkpoint(struct run *r, char *err, size_t errlen)
{
	const char *dir = r->o->dir;
	int k;

	if (syscall(SYS_renameat2, AT_FDCWD, r->newdir, AT_FDCWD, dir, RENAME_EXCHANGE) == 0) {
		k = remove_checkpoint_dir(r->newdir);
		if (k < 0)
			event(r, "warning", NULL,
			      "cannot remove the previous checkpoint, now %s: %s", r->newdir,
			      strerror(-k));
		return 0;
	}
	if (errno == ENOENT && access(dir, F_OK) < 0) {
		if (rename(r->newdir, dir) == 0)
			return 0;
		return snprintf(err, errlen, "cannot rename %s to %s: %m", r->newdir, dir), -1;
	}
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return snprintf(err, errlen, "cannot exchange %s and %s: %m", r->newdir, dir), -1;
	/* no exchange here: DIR -> DIR.old, DIR.new -> DIR */
	remove_checkpoint_dir(r->olddir);
	if (rename(dir, r->olddir) < 0)
		return snprintf(err, errlen, "cannot rename %s to %s: %m", dir, r->olddir), -1;
	if (rename(r->newdir, dir) < 0)
		return snprintf(err, errlen, "cannot rename %s to %s: %m", r->newdir, dir), -1;
	k = remove_checkpoint_dir(r->olddir);
	if (k < 0)
		event(r, "warning", NULL, "cannot remove the previous checkpoint, now %s: %s",
		      r->olddir, strerror(-k));
	return 0;
}

/* --- incremental checkpoints ------------------------------------------------------------ */

static char *pre_path(const struct run *r, unsigned n)
{
	char *p = NULL;

	return asprintf(&p, "%s.pre%u", r->o->dir, n) < 0 ? NULL : p;
}

/*
 * DIR.pre<N> beside DIR: calls fn for each (with N), in no order. Its
 * parent directory and base name come from DIR as given.
 */
static void for_each_pre(struct run *r, void (*fn)(struct run *r, unsigned n))
{
	_cleanup_free_ char *copy = strdup(r->o->dir);
	char *slash, prefix[NAME_MAX + 8];
	const char *parent = ".", *base;
	struct dirent *de;
	DIR *d;

	if (!copy)
		return;
	while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
		copy[strlen(copy) - 1] = '\0';
	slash = strrchr(copy, '/');
	if (slash) {
		*slash = '\0';
		parent = slash == copy ? "/" : copy;
		base = slash + 1;
	} else {
		base = copy;
	}
	snprintf(prefix, sizeof(prefix), "%s.pre", base);
	d = opendir(parent);
	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t pl = strlen(prefix);
		char *end;
		unsigned long n;

		if (strncmp(de->d_name, prefix, pl) || !isdigit((unsigned char)de->d_name[pl]))
			continue;
		n = strtoul(de->d_name + pl, &end, 10);
		if (*end || !n || n > UINT_MAX / 2)
			continue;
		fn(r, (unsigned)n);
	}
	closedir(d);
}

static void note_pre(struct run *r, unsigned n)
{
	if (n >= r->pre_next)
		r->pre_next = n + 1;
}

/* A pre-dump that this run's chain does not use (DIR no longer refers to it). */
static void remove_pre_unless_chain(struct run *r, unsigned n)
{
	_cleanup_free_ char *p = NULL;
	int k;

	if (r->pre_first && n >= r->pre_first && n <= r->pre_last)
		return;
	p = pre_path(r, n);
	if (p && (k = remove_checkpoint_dir(p)) < 0)
		event(r, "warning", NULL, "cannot remove the earlier pre-dump %s: %s", p,
		      strerror(-k));
}

/* The dump d, in process or through ckptd: 0, or -1 with the reason in err. */
static int run_dump(struct run *r, const struct dump_opts *d, unsigned *ntasks, uint64_t *bytes,
		    char *err, size_t errlen)
{
	struct ckpt_error e = {0};
	int k, sock;

	if (r->use_daemon) {
		struct daemon_result res = {0};

		k = cli_daemon_connect(&r->c, "run", &sock);
		if (k <= 0)
			return snprintf(err, errlen, "ckptd does not answer"), -1;
		k = daemon_dump_quiet(sock, d, &r->c, &res, &e);
		*ntasks = res.ntasks;
		*bytes = res.bytes;
	} else {
		struct dump_result res = {0};

		k = dump_tree(d, &res, &e);
		*ntasks = res.ntasks;
		*bytes = res.pages_bytes;
	}
	if (k < 0)
		return snprintf(err, errlen, "%s", e.msg), -1;
	return 0;
}

/*
 * --parent for a dump into dir: the relative path recorded in its inventory
 * (rel), and for a dump in process the parent's fd (*fd). -1 with err.
 */
static int set_parent(struct run *r, struct dump_opts *d, const char *dir, const char *parent,
		      char *rel, size_t rlen, int *fd, char *err, size_t errlen)
{
	int k = cli_relative_path(dir, parent, rel, rlen);

	if (k < 0)
		return snprintf(err, errlen, "parent checkpoint %s: %s", parent, strerror(-k)), -1;
	d->parent = rel;
	if (!r->use_daemon) {
		*fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (*fd < 0)
			return snprintf(err, errlen, "cannot open %s: %m", parent), -1;
		d->use_parent_fd = true;
		d->parent_fd = *fd;
	}
	return 0;
}

/*
 * A pre-dump of the job into DIR.pre<next>, with the chain's last as parent
 * (a new chain after CHAIN_MAX): the memory while the job runs, and write
 * tracking armed, so that the checkpoint right after saves only what the job
 * writes in between. Returns the new pre-dump's path, or NULL (the
 * checkpoint is then a full one; logged).
 */
static char *pre_dump(struct run *r)
{
	bool chain = r->pre_first && r->pre_last - r->pre_first + 1 < CHAIN_MAX;
	_cleanup_free_ char *path = pre_path(r, r->pre_next), *parent = NULL;
	_cleanup_close_ int parent_fd = -1;
	struct dump_opts d = {0};
	char err[2048] = "", rel[PATH_MAX];
	double t0 = ckpt_monotonic_seconds();
	unsigned ntasks = 0;
	uint64_t bytes = 0;
	int k;

	if (!path || (chain && !(parent = pre_path(r, r->pre_last))))
		return NULL;
	k = remove_checkpoint_dir(path);
	if (k < 0) {
		snprintf(err, sizeof(err), "cannot remove the leftover %s: %s", path, strerror(-k));
		goto fail;
	}
	d.pid = r->root;
	d.dir = path;
	d.pre_dump = true;
	d.leave_running = true;
	if (parent && set_parent(r, &d, path, parent, rel, sizeof(rel), &parent_fd, err,
				 sizeof(err)) < 0)
		goto fail;
	if (run_dump(r, &d, &ntasks, &bytes, err, sizeof(err)) < 0)
		goto fail;
	if (!chain)
		r->pre_first = r->pre_next;
	r->pre_last = r->pre_next++;
	r->pre_failures = 0;
	char fields[512], size[32];

	snprintf(fields, sizeof(fields),
		 "\"pid\":%d,\"generation\":%u,\"incremental\":%s,\"bytes\":%llu,\"seconds\":%.3f",
		 r->root, r->pre_last, parent ? "true" : "false", (unsigned long long)bytes,
		 ckpt_monotonic_seconds() - t0);
	event(r, "pre-dumped", fields, "pid %d: %s of memory%s into %s in %.2f s", r->root,
	      format_bytes(bytes, size, sizeof(size)), parent ? " written since the last one" : "",
	      path, ckpt_monotonic_seconds() - t0);
	return TAKE_PTR(path);
fail:
	remove_checkpoint_dir(path);
	r->pre_failures++;
	event(r, "warning", NULL, "pid %d: pre-dump into %s failed: %s; a full checkpoint%s",
	      r->root, path, err,
	      r->pre_failures >= PRE_DUMP_FAILURES ? " (and only full ones from now on)" : "");
	return NULL;
}

/*
 * Before anything: what an earlier run left. DIR not a checkpoint but DIR.new
 * (killed between its dump and the rename) or DIR.old (killed between the two
 * renames where there is no exchange) is: that becomes DIR. A stale DIR.new
 * or DIR.old beside a complete DIR is removed.
 */
static void recover_dir(struct run *r)
{
	const char *dir = r->o->dir;

	if (!is_checkpoint(dir, NULL, 0) && !dir_nonempty(dir)) {
		const char *cand = is_checkpoint(r->newdir, NULL, 0)   ? r->newdir
				   : is_checkpoint(r->olddir, NULL, 0) ? r->olddir
								       : NULL;

		if (cand) {
			rmdir(dir); /* empty or absent */
			if (rename(cand, dir) == 0)
				event(r, "recovered", NULL,
				      "%s was left by an interrupted checkpoint: it is now %s",
				      cand, dir);
		}
	}
	/* leftovers go only beside a complete DIR: never the last complete checkpoint */
	for (int i = 0; i < 2; i++) {
		const char *left = i ? r->olddir : r->newdir;

		if (access(left, F_OK) < 0)
			continue;
		if (!is_checkpoint(dir, NULL, 0))
			event(r, "warning", NULL,
			      "%s is left from an earlier run and %s is no "
			      "complete checkpoint: both are left as they are",
			      left, dir);
		else if (remove_checkpoint_dir(left) < 0)
			event(r, "warning", NULL, "cannot remove the leftover %s: %m", left);
	}
}

/* --- the job's cgroups ----------------------------------------------------------------- */

/*
 * Where the cgroup hierarchy of a /proc/self/cgroup line ("ID:CONTROLLERS:PATH")
 * is mounted, from /proc/self/mountinfo: the mount point and its root.
 */
static bool cgroup_mount(const char *controllers, char *mnt, size_t mlen, char *root, size_t rlen)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	bool v2 = !*controllers;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char mroot[PATH_MAX], mpoint[PATH_MAX], fstype[64], opts[1024];
		char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %4095s %4095s", mroot, mpoint) != 2 ||
		    sscanf(sep + 3, "%63s %*s %1023s", fstype, opts) != 2)
			continue;
		if (v2 ? strcmp(fstype, "cgroup2") : strcmp(fstype, "cgroup"))
			continue;
		if (!v2) {
			/* every controller of the line among the mount's options */
			char want[256], *save = NULL;
			bool all = true;

			snprintf(want, sizeof(want), "%s", controllers);
			for (char *t = strtok_r(want, ",", &save); t && all;
			     t = strtok_r(NULL, ",", &save)) {
				char o2[1100];

				snprintf(o2, sizeof(o2), ",%s,", opts);
				char needle[300];

				snprintf(needle, sizeof(needle), ",%s,", t);
				all = strstr(o2, needle) != NULL;
			}
			if (!all)
				continue;
		}
		snprintf(mnt, mlen, "%s", mpoint);
		snprintf(root, rlen, "%s", mroot);
		return true;
	}
	return false;
}

/* The restored pids (processes, not threads) from DIR's pstree.img. */
static size_t restored_pids(const char *dir, pid_t *pids, size_t cap)
{
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_img_ struct img *img = NULL;
	struct ckpt_error e = {0};
	ProtobufCMessage *m;
	size_t n = 0;

	if (dirfd < 0 || img_open(dirfd, IMG_PSTREE, 0, &img, &e) < 0)
		return 0;
	while (img_read_msg(img, &m, &e) == 1) {
		if (n < cap)
			pids[n++] = ((PstreeEntry *)m)->pid;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return n;
}

/*
 * A job restored through ckptd runs in ckptd's cgroups: move its processes
 * into ours, hierarchy by hierarchy (v1 and v2), where we may. Cgroup v2 lets
 * only a writer of the common ancestor's cgroup.procs move a process, so an
 * ordinary user cannot take tasks out of ckptd's cgroup; v1 asks for write
 * access to the target's cgroup.procs and the same uid. What fails is logged.
 */
static void move_to_own_cgroups(struct run *r)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
	_cleanup_free_ char *theirs = NULL;
	pid_t pids[4096];
	size_t n = restored_pids(r->o->dir, pids, sizeof(pids) / sizeof(pids[0])), tlen = 0;
	char line[4096], tpath[64];
	unsigned moved = 0;

	if (!f || n == 0)
		return;
	/* the root's cgroups: a hierarchy where it is in ours already needs nothing */
	snprintf(tpath, sizeof(tpath), "/proc/%d/cgroup", r->root);
	{
		_cleanup_fclose_ FILE *tf = fopen(tpath, "re");
		FILE *m = open_memstream(&theirs, &tlen);

		if (tf && m)
			while (fgets(line, sizeof(line), tf))
				fputs(line, m);
		if (m)
			fclose(m);
	}
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		char mnt[PATH_MAX], root[PATH_MAX], path[PATH_MAX * 2 + 32];
		const char *rel;
		_cleanup_close_ int fd = -1;

		if (!c2 || (theirs && strstr(theirs, line)))
			continue;
		*c2 = '\0';
		c2[strcspn(c2 + 1, "\n") + 1] = '\0';
		rel = c2 + 1;
		if (!cgroup_mount(c1 + 1, mnt, sizeof(mnt), root, sizeof(root)))
			continue;
		if (strcmp(root, "/") && !strncmp(rel, root, strlen(root)))
			rel += strlen(root);
		while (*rel == '/')
			rel++;
		snprintf(path, sizeof(path), "%s/%s%scgroup.procs", mnt, rel, *rel ? "/" : "");
		fd = open(path, O_WRONLY | O_CLOEXEC);
		for (size_t i = 0; i < n; i++) {
			char num[16];
			int len = snprintf(num, sizeof(num), "%d", pids[i]);

			if (fd >= 0 && write(fd, num, len) == len) {
				moved += i + 1 == n;
				continue;
			}
			event(r, "cgroup", NULL,
			      "cannot move the restored pid %d into our cgroup %s: %m; the job "
			      "stays in ckptd's cgroup of that hierarchy",
			      pids[i], path);
			break; /* one line per hierarchy */
		}
	}
	if (moved)
		event(r, "cgroup", NULL,
		      "the restored processes moved into our cgroups (%u hierarch%s)", moved,
		      moved == 1 ? "y" : "ies");
}

/* --- starting, restoring, checkpointing ---------------------------------------------- */

/* Start the command as our child, in its own session (so that its tree is whole). */
static int start_job(struct run *r, const struct sigaction *orig)
{
	int errp[2], err = 0;
	ssize_t k;
	pid_t pid;

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
		sigset_t none;

		/* the dispositions we were started with (SIG_IGN stays ignored) */
		for (int sig = 1; sig < NSIG; sig++)
			if (orig[sig].sa_handler == SIG_IGN)
				sigaction(sig, &orig[sig], NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setsid();
		execvp(r->o->cmd[0], r->o->cmd);
		err = errno;
		if (write(errp[1], &err, sizeof(err)) < 0)
			_exit(127);
		_exit(127);
	}
	close(errp[1]);
	do
		k = read(errp[0], &err, sizeof(err));
	while (k < 0 && errno == EINTR);
	close(errp[0]);
	if (k == sizeof(err)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -err;
	}
	r->root = pid;
	r->child = true;
	return 0;
}

/* Is pid our child (alive or a zombie)? */
static bool is_our_child(pid_t pid)
{
	siginfo_t si = {0};

	return waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* Has the job's root exited (its status not collected yet)? */
static bool job_exited(const struct run *r)
{
	struct pollfd p = {.fd = r->pidfd, .events = POLLIN};
	siginfo_t si = {0};

	if (r->child)
		return waitid(P_PID, r->root, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		       si.si_pid == r->root;
	return r->pidfd >= 0 && poll(&p, 1, 0) > 0;
}

/* Now, in clock ticks since boot: what /proc/PID/stat's start time counts. */
static unsigned long long boot_ticks_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (unsigned long long)ts.tv_sec * (unsigned long long)sysconf(_SC_CLK_TCK) +
	       (unsigned long long)ts.tv_nsec /
		   (1000000000ULL / (unsigned long long)sysconf(_SC_CLK_TCK));
}

static int restore_job(struct run *r)
{
	struct ckpt_error e = {0};
	char err[1024] = "", fields[256];
	long tasks = 0;
	double seconds = 0;
	/* a tick of slack: the start time is rounded down */
	unsigned long long since = boot_ticks_now() - 1;
	int k, sock, watch_err;

	if (r->use_daemon) {
		struct daemon_result res = {0};

		k = cli_daemon_connect(&r->c, "run", &sock);
		if (k <= 0)
			return -1;
		wait_for_zombie_pids(r->o->dir);
		k = daemon_restore_quiet(sock, r->o->dir, "caller", &r->c, false, false, false,
					 &res, &e);
		if (k < 0)
			snprintf(err, sizeof(err), "%s", e.msg);
		r->root = res.pid;
		tasks = res.ntasks;
		seconds = res.seconds;
	} else {
		k = restore_in_process(r->o->dir, r->o->verbose, "caller", &r->root, &tasks,
				       &seconds, err, sizeof(err));
	}
	if (k < 0 || r->root <= 0) {
		event(r, "restore_failed", NULL, "from %s: %s", r->o->dir,
		      err[0] ? err : "no root pid");
		return -1;
	}
	r->pidfd = (int)syscall(SYS_pidfd_open, r->root, 0);
	watch_err = r->pidfd < 0 ? errno : 0;
	r->child = is_our_child(r->root);
	/* the pidfd is the restored root's only if that pid was not reused since */
	if (r->pidfd >= 0 && !r->child) {
		unsigned long long t = proc_start_ticks(r->root); /* 0: gone already */

		if (t != 0 && t < since) {
			close(r->pidfd);
			r->pidfd = -1;
			watch_err = ESRCH;
		}
	}
	snprintf(fields, sizeof(fields), "\"pid\":%d,\"tasks\":%ld,\"seconds\":%.3f,\"via\":\"%s\"",
		 r->root, tasks, seconds, r->use_daemon ? "ckptd" : "in-process");
	event(r, "restored", fields, "pid %d (%ld task%s) from %s in %.2f s%s", r->root, tasks,
	      tasks == 1 ? "" : "s", r->o->dir, seconds, r->use_daemon ? " through ckptd" : "");
	if (r->pidfd < 0 && !r->child) {
		event(r, "error", NULL, "pid %d: cannot watch the restored job: %s", r->root,
		      strerror(watch_err));
		return -1;
	}
	if (!r->child)
		move_to_own_cgroups(r);
	return 0;
}

/*
 * Checkpoint the job into DIR.new, then make it DIR. 0 when DIR is the new
 * checkpoint. An interval checkpoint is incremental where it can be: a
 * pre-dump first (pre_dump()), then this dump with it as parent, which saves
 * only the pages written since and freezes the job for that long. A killing
 * one uses the chain as it is (no pre-dump: the job is about to stop, and
 * the whole of its memory would be written twice).
 */
static int checkpoint(struct run *r, bool leave_running, const char *why)
{
	struct dump_opts d = {0};
	char err[2048] = "", fields[512], rel[PATH_MAX];
	double t0 = ckpt_monotonic_seconds();
	_cleanup_free_ char *parent = NULL;
	_cleanup_close_ int parent_fd = -1;
	unsigned ntasks = 0;
	uint64_t bytes = 0;
	int k;

	snprintf(fields, sizeof(fields), "\"pid\":%d,\"reason\":\"%s\",\"leave_running\":%s",
		 r->root, why, leave_running ? "true" : "false");
	event(r, "checkpointing", fields, "pid %d into %s (%s%s)", r->root, r->o->dir, why,
	      leave_running ? ", left running" : "");
	k = remove_checkpoint_dir(r->newdir);
	if (k < 0) {
		snprintf(err, sizeof(err), "cannot remove the leftover %s: %s", r->newdir,
			 strerror(-k));
		goto fail;
	}
	if (r->o->interval && r->pre_failures < PRE_DUMP_FAILURES) {
		if (leave_running)
			parent = pre_dump(r);
		else if (r->pre_last)
			parent = pre_path(r, r->pre_last);
	}
	d.pid = r->root;
	d.dir = r->newdir;
	d.leave_running = leave_running;
	if (parent && set_parent(r, &d, r->newdir, parent, rel, sizeof(rel), &parent_fd, err,
				 sizeof(err)) < 0)
		goto fail;
	if (run_dump(r, &d, &ntasks, &bytes, err, sizeof(err)) < 0)
		goto fail;
	if (publish_checkpoint(r, err, sizeof(err)) < 0)
		goto fail;
	/* DIR refers to this run's chain only, if to any: the others go */
	for_each_pre(r, remove_pre_unless_chain);
	snprintf(fields, sizeof(fields),
		 "\"pid\":%d,\"tasks\":%u,\"bytes\":%llu,\"seconds\":%.3f,\"incremental\":%s",
		 r->root, ntasks, (unsigned long long)bytes, ckpt_monotonic_seconds() - t0,
		 parent ? "true" : "false");
	event(r, "checkpointed", fields, "pid %d (%u task%s) into %s in %.2f s%s%s", r->root,
	      ntasks, ntasks == 1 ? "" : "s", r->o->dir, ckpt_monotonic_seconds() - t0,
	      parent ? ", incremental on " : "", parent ? parent : "");
	return 0;
fail:
	remove_checkpoint_dir(r->newdir);
	snprintf(fields, sizeof(fields), "\"pid\":%d", r->root);
	/* the job may have ended by itself meanwhile: no dump can follow it
	 * there, and it does not run on (its end is logged next) */
	if (job_exited(r)) {
		event(r, "checkpoint_failed", fields, "pid %d ended during the checkpoint (%s)",
		      r->root, err);
		return -1;
	}
	/* the dump refused: the job runs on (exact or refused), and so do we */
	event(r, "checkpoint_failed", fields, "pid %d: %s; the job runs on", r->root, err);
	return -1;
}

/*
 * The job ended by itself (code: its exit status, 128+N for a signal). Done
 * (0): its checkpoint is of no more use, and a next run with the same DIR
 * must start the job afresh, not replay its end: DIR and the pre-dumps go.
 * Otherwise DIR keeps the last checkpoint (a next run restores it, from
 * before whatever went wrong), said in the log. Without a checkpoint in
 * DIR, no pre-dump is of use either.
 */
static void job_ended(struct run *r, int code)
{
	const char *dir = r->o->dir;
	bool kept = is_checkpoint(dir, NULL, 0);

	if (kept && code == 0) {
		int k = remove_checkpoint_dir(dir);

		if (k < 0)
			event(r, "warning", NULL, "cannot remove the checkpoint %s of the ended job: %s",
			      dir, strerror(-k));
		else
			event(r, "removed", NULL,
			      "%s: the job ended with status 0, its checkpoint is of no more use",
			      dir);
		kept = k < 0;
	} else if (kept) {
		event(r, "kept", NULL,
		      "%s keeps the job's last checkpoint (it ended with status %d): a next run "
		      "restores it; remove it to start the job afresh",
		      dir, code);
	}
	/* a DIR kept may refer to pre-dumps of an earlier run: each checkpoint
	 * of this one removed those it no longer needed */
	if (!kept) {
		r->pre_first = r->pre_last = 0;
		for_each_pre(r, remove_pre_unless_chain);
	}
}

/* --- waiting --------------------------------------------------------------------------- */

static int status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

static void log_exit(const struct run *r, int status)
{
	char fields[128];

	snprintf(fields, sizeof(fields), "\"pid\":%d,\"exit_code\":%d%s%d", r->root,
		 status_code(status), WIFSIGNALED(status) ? ",\"signal\":" : ",\"status\":",
		 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		event(r, "exited", fields, "pid %d: killed by signal %d", r->root,
		      WTERMSIG(status));
	else
		event(r, "exited", fields, "pid %d: status %d", r->root, WEXITSTATUS(status));
}

/*
 * The job (not our child) has exited: its status once its reaper has reaped
 * it. -1 if the kernel cannot tell (older than 6.15).
 */
static int pidfd_exit_status(struct run *r, int *ret_status)
{
	double deadline = ckpt_monotonic_seconds() + EXIT_INFO_WAIT_SECONDS;

	for (;;) {
		struct run_pidfd_info info = {.mask = RUN_PIDFD_INFO_EXIT};
		int rc = ioctl(r->pidfd, RUN_PIDFD_GET_INFO, &info);

		if (rc < 0 && errno != ESRCH) {
			event(r, "error", NULL,
			      "pid %d exited, but its exit status cannot be read (PIDFD_GET_INFO: "
			      "%m; Linux 6.15 or later is needed)",
			      r->root);
			return -1;
		}
		/* ESRCH: gone, its exit not recorded yet; the mask is then still
		 * our request, not the kernel's answer (it was taken for an exit
		 * status 0: a job that ended with 3 reported 0, its checkpoint
		 * removed) */
		if (rc == 0 && (info.mask & RUN_PIDFD_INFO_EXIT)) {
			*ret_status = info.exit_code;
			return 0;
		}
		if (ckpt_monotonic_seconds() > deadline) {
			event(r, "error", NULL,
			      "pid %d exited, but was not reaped within %.0f s: its exit status is "
			      "unknown",
			      r->root, EXIT_INFO_WAIT_SECONDS);
			return -1;
		}
		usleep(20000);
	}
}

/* Reap what came to us; *ret_status and true when the root was among it. */
static bool reap(struct run *r, int *ret_status)
{
	bool root_done = false;
	int status;
	pid_t p;

	while ((p = waitpid(-1, &status, WNOHANG)) > 0)
		if (p == r->root) {
			*ret_status = status;
			root_done = true;
		}
	return root_done;
}

/* After a killing checkpoint: reap the root and the tasks that came to us. */
static void reap_after_kill(struct run *r)
{
	double deadline = ckpt_monotonic_seconds() + REAP_WAIT_SECONDS;
	int status;

	while (ckpt_monotonic_seconds() < deadline) {
		pid_t p = waitpid(-1, &status, WNOHANG);

		if (p < 0)
			return; /* ECHILD: nothing left */
		if (p == 0)
			usleep(10000);
	}
}

static bool is_checkpoint_signal(const struct run_opts *o, int sig)
{
	for (int i = 0; i < o->n_signals; i++)
		if (o->signals[i] == sig)
			return true;
	return false;
}

static int wait_job(struct run *r, int sfd)
{
	_cleanup_close_ int tfd = -1;
	int status;

	if (r->o->interval) {
		struct itimerspec its = {{r->o->interval, 0}, {r->o->interval, 0}};

		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0) {
			event(r, "error", NULL, "timerfd: %m");
			return 1;
		}
	}
	for (;;) {
		struct pollfd pfd[3] = {
		    {sfd, POLLIN, 0}, {r->child ? -1 : r->pidfd, POLLIN, 0}, {tfd, POLLIN, 0}};
		struct signalfd_siginfo si;

		if (reap(r, &status)) {
			log_exit(r, status);
			return status_code(status);
		}
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			event(r, "error", NULL, "poll: %m");
			return 1;
		}
		if (pfd[1].revents) {
			if (pidfd_exit_status(r, &status) < 0)
				return 1;
			log_exit(r, status);
			return status_code(status);
		}
		if (pfd[2].revents & POLLIN) {
			uint64_t ticks;

			if (read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks))
				checkpoint(r, true, "interval");
		}
		if (!(pfd[0].revents & POLLIN) || read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGCHLD)
			continue;
		if (is_checkpoint_signal(r->o, (int)si.ssi_signo)) {
			char fields[64];

			snprintf(fields, sizeof(fields), "\"signal\":%u", si.ssi_signo);
			event(r, "signal", fields, "%u (%s) from pid %u", si.ssi_signo,
			      strsignal((int)si.ssi_signo), si.ssi_pid);
			if (checkpoint(r, false, "signal") == 0) {
				reap_after_kill(r);
				snprintf(fields, sizeof(fields), "\"exit_code\":%d",
					 r->o->exit_code);
				event(r, "exiting", fields,
				      "with %d: the job is checkpointed, to be run again",
				      r->o->exit_code);
				r->checkpointed = true;
				return r->o->exit_code;
			}
			continue;
		}
		/* anything else we catch is the job's */
		kill(r->root, (int)si.ssi_signo);
	}
}

/* --- the command ------------------------------------------------------------------------ */

static void usage_run(FILE *out)
{
	fprintf(out,
		"usage: ckptctl run --dir DIR [--signal SIG]... [--exit-code N]\n"
		"                   [--interval SECONDS] [--json] [-v] -- CMD [ARGS...]\n"
		"\n"
		"Run CMD as a checkpointable batch job (docs/slurm.md). If DIR holds a complete\n"
		"checkpoint, restore it instead of starting CMD. Stay in the foreground until the\n"
		"job exits and exit with its status (a signal N: 128+N). On SIG, checkpoint the\n"
		"job into DIR (the previous checkpoint is replaced only once the new one is\n"
		"complete) and exit with N, for the scheduler to run the job again.\n"
		"\n"
		"  -D, --dir DIR          where the checkpoint is kept (DIR.new while written)\n"
		"  -s, --signal SIG       checkpoint on SIG (USR1, SIGUSR1, 10, RTMIN+1...);\n"
		"                         repeatable; default USR1 and TERM\n"
		"  -x, --exit-code N      exit status after a checkpoint on a signal (default 85)\n"
		"  -i, --interval SECONDS also checkpoint every SECONDS, leaving the job running\n"
		"                         (incremental: pre-dumps DIR.pre<N> kept beside DIR)\n"
		"      --json             the events on stderr as JSON lines\n"
		"  -v, --verbose          more log output on stderr (-vv: debug)\n"
		"\n"
		"Through ckptd when it answers (as `dump` and `restore`); root without ckptd runs\n"
		"the dump and the restorer in process. Other signals (HUP, INT, QUIT, TERM, USR1,\n"
		"USR2, CONT) are passed on to the job. One line per event on stderr.\n");
}

int cmd_run(int argc, char **argv, struct cli_common *c)
{
	_cleanup_free_ char *newdir = NULL, *olddir = NULL;
	struct run_opts o;
	struct run r = {.o = &o, .pidfd = -1};
	static struct sigaction orig[NSIG];
	char err[512], why[1024];
	sigset_t mask;
	_cleanup_close_ int sfd = -1;
	int k, sock = -1, code;

	k = run_parse_args(argc, argv, &o, err, sizeof(err));
	if (k == 1) {
		usage_run(stdout);
		return 0;
	}
	if (k < 0)
		return cli_usage_error("run", "%s", err);
	o.json = o.json || c->json;
	o.verbose += c->verbose;
	cli_set_verbosity(o.verbose);
	r.c = *c;
	r.c.json = false;
	r.c.verbose = 1; /* no progress bar: events only */
	if (asprintf(&newdir, "%s.new", o.dir) < 0 || asprintf(&olddir, "%s.old", o.dir) < 0)
		return 1;
	r.newdir = newdir;
	r.olddir = olddir;

	k = cli_daemon_connect(&r.c, "run", &sock);
	if (k < 0)
		return 1;
	r.use_daemon = k > 0;
	if (sock >= 0 && k > 0)
		close(sock); /* one connection per request */

	/* the signals we act on come through a signalfd, from now on */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&mask, forwarded[i]);
	for (int i = 0; i < o.n_signals; i++)
		sigaddset(&mask, o.signals[i]);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	/*
	 * An ignored signal is dropped even when blocked: a shell starts a
	 * background command with SIGINT and SIGQUIT ignored. We take them all
	 * (the started job gets its ignored ones back, start_job).
	 */
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction dfl = {.sa_handler = SIG_DFL};

		if (sigismember(&mask, sig) == 1 && sigaction(sig, NULL, &orig[sig]) == 0 &&
		    orig[sig].sa_handler == SIG_IGN)
			sigaction(sig, &dfl, NULL);
	}
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		fprintf(stderr, "ckptctl run: signalfd / PR_SET_CHILD_SUBREAPER: %m\n");
		return 1;
	}

	recover_dir(&r);
	/* pre-dumps of earlier runs may be DIR's parents: new numbers for ours */
	r.pre_next = 1;
	for_each_pre(&r, note_pre);
	if (is_checkpoint(o.dir, why, sizeof(why))) {
		if (restore_job(&r) < 0)
			return 1;
	} else {
		if (dir_nonempty(o.dir))
			event(&r, "warning", NULL,
			      "%s is not a complete checkpoint (%s): starting %s", o.dir,
			      why[0] ? why : "?", o.cmd[0]);
		k = start_job(&r, orig);
		if (k < 0) {
			event(&r, "error", NULL, "cannot run %s: %s", o.cmd[0], strerror(-k));
			return k == -ENOENT ? 127 : 126;
		}
		char fields[64];

		snprintf(fields, sizeof(fields), "\"pid\":%d", r.root);
		event(&r, "started", fields, "pid %d: %s", r.root, o.cmd[0]);
	}
	code = wait_job(&r, sfd);
	if (r.pidfd >= 0)
		close(r.pidfd);
	if (!r.checkpointed)
		job_ended(&r, code);
	return code;
}
