// SPDX-License-Identifier: MIT
/*
 * ckptd workers. A dump runs dump_tree() right here, writing straight into
 * the directory fd the client sent (the daemon never resolves the client's
 * path); a restore runs ckpt-restore --dir-fd on it. Both log into a file
 * of the image directory (dump.log, restore.log) owned by the caller.
 */
#define LOG_PREFIX "worker: "

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <poll.h>
#include <sys/capability.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caller_fs.h"
#include "cgroup.h"
#include "cleanup.h"
#include "clock.h"
#include "dump.h"
#include "fault.h"
#include "mac.h"
#include "caps.h"
#include "image.h"
#include "log.h"
#include "proc.h"
#include "restorer_io.h"
#include "worker.h"
#include "pstree.pb-c.h"

/*
 * Set by SIGTERM (the client went away, or RPC_CANCEL): the one mutable
 * global here, because a signal handler can reach nothing else.
 */
static volatile sig_atomic_t worker_cancelled;

static void on_sigterm(int sig)
{
	(void)sig;
	worker_cancelled = 1;
}

static void report(const struct worker_args *a, const struct worker_msg *m)
{
	ssize_t n;

	do
		n = write(a->report_fd, m, sizeof(*m));
	while (n < 0 && errno == EINTR);
}

static void report_result_pager(const struct worker_args *a, int status, pid_t pid, unsigned ntasks,
				uint64_t bytes, uint64_t images_bytes, const char *error,
				pid_t pager)
{
	struct worker_msg m = {.kind = WORKER_RESULT,
			       .status = status,
			       .pid = pid,
			       .tasks_done = ntasks,
			       .tasks_total = ntasks,
			       .bytes = bytes,
			       .images_bytes = images_bytes,
			       .pager_pid = pager,
			       .pager_start_ticks = pager > 0 ? proc_start_ticks(pager) : 0};

	if (error)
		snprintf(m.error, sizeof(m.error), "%s", error);
	report(a, &m);
}

static void report_result(const struct worker_args *a, int status, pid_t pid, unsigned ntasks,
			  uint64_t bytes, uint64_t images_bytes, const char *error)
{
	report_result_pager(a, status, pid, ntasks, bytes, images_bytes, error, 0);
}

/*
 * The worker dies with ckptd: SIGTERM, which cancels (a dump rolls back, a
 * restore's ckpt-restore rolls back). Set first thing after the fork; if
 * ckptd is already gone, cancel at once.
 */
static void die_with_ckptd(const struct worker_args *a)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != a->ckptd_pid)
		worker_cancelled = 1;
}

/*
 * Hold the image directory for the job (a lock on an open file description
 * of our own): a client that lost ckptd waits for it before it looks at
 * the directory, and two jobs never write one directory.
 */
static int lock_dir(int dirfd, int *ret_fd, struct ckpt_error *e)
{
	_cleanup_close_ int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open the image directory");
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return ckpt_err_errno(e, -EBUSY, "the image directory is in use by another job");
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/*
 * For the dump engine of a non-root caller: every file access is judged
 * under the caller's fs ids and groups. setfsuid() to a non-zero id makes
 * the kernel clear the file-system capabilities (DAC_OVERRIDE,
 * DAC_READ_SEARCH, FOWNER, CHOWN, FSETID) from the effective set, so the
 * images are created as the caller, where the caller may create them.
 */
static int act_as_caller_on_files(const struct auth_caller *c)
{
	if (auth_is_root(c))
		return 0;
	if (setgroups(c->ngroups, c->groups) < 0)
		return -errno;
	setfsgid(c->gid);
	setfsuid(c->uid);
	if ((gid_t)setfsgid(-1) != c->gid || (uid_t)setfsuid(-1) != c->uid)
		return -EPERM;
	return 0;
}

/* Copy what the dump logged (a memfd) into dump.log. */
static void save_log(const struct worker_args *a, int dirfd, int memfd, const char *name)
{
	_cleanup_close_ int fd = -1;
	struct ckpt_error e = {0};
	char buf[65536];
	off_t off = 0;
	ssize_t n;

	if (caller_create_file(a->caller, dirfd, name, &fd, &e) < 0) {
		pr_debug("%s", e.msg);
		return;
	}
	while ((n = pread(memfd, buf, sizeof(buf), off)) > 0) {
		if (write(fd, buf, n) != n)
			return;
		off += n;
	}
}

static void dump_progress(void *arg, uint64_t bytes, unsigned done, unsigned total)
{
	const struct worker_args *a = arg;
	struct worker_msg m = {
	    .kind = WORKER_PROGRESS, .bytes = bytes, .tasks_done = done, .tasks_total = total};

	report(a, &m);
}

/*
 * mac.img: ckptd's seal that it wrote these images for this caller (mac.h);
 * what later grants a non-root restore its privileges. A dump that cannot
 * seal its images fails.
 */
static int seal_images(const struct worker_args *a, int dfd, struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	int r;

	r = caller_create_file(a->caller, dfd, MAC_FILE, &fd, e);
	if (r >= 0)
		r = mac_seal(a->mac_key, a->caller->uid, dfd, fd, e);
	if (r < 0) {
		ckpt_err_wrap(e, "sealing the checkpoint (" MAC_FILE ")");
		img_dir_remove_images(dfd);
		unlinkat(dfd, MAC_FILE, 0);
	}
	return r;
}

/* --parent for a non-root caller: a checkpoint ckptd sealed for this caller. */
static int check_parent_sealed(void *arg, int parent_fd, struct ckpt_error *e)
{
	const struct worker_args *a = arg;
	int r = mac_check(a->mac_key, a->caller->uid, parent_fd, parent_fd, e);

	return r < 0 ? ckpt_err_wrap(e, "parent checkpoint %s", a->parent) : 0;
}

int worker_dump(const struct worker_args *a)
{
	struct sigaction sa = {.sa_handler = on_sigterm, .sa_flags = SA_RESTART};
	struct dump_result res = {0};
	struct ckpt_error err = {0};
	struct dump_opts o = {0};
	_cleanup_close_ int dfd = -1, lock_fd = -1, scratch_fd = -1;
	char what[64], scratch[] = "/tmp/ckptd-check.XXXXXX";
	struct worker_args b = *a;
	int r = 0;

	sigaction(SIGTERM, &sa, NULL);
	die_with_ckptd(a);
	/* a check writes nothing that stays: a scratch directory of the
	 * caller's, emptied by the engine and removed here */
	if (a->check_only) {
		if (!mkdtemp(scratch) ||
		    (scratch_fd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
		    fchown(scratch_fd, a->caller->uid, a->caller->gid) < 0)
			r = ckpt_err_errno(&err, -errno, "cannot make a scratch directory");
		b.dir_fd = scratch_fd;
		a = &b;
	}
	/* the log goes to a memfd ckptd shares: it saves it if we die */
	if (a->log_fd >= 0) {
		ckpt_log_set_fd(a->log_fd);
		ckpt_log_set_level(LOG_LVL_DEBUG);
	}
	pr_info("job %llu: dump of pid %d for uid %u (pid %d)%s", (unsigned long long)a->job_id,
		(int)a->pid, a->caller->uid, (int)a->caller->pid,
		a->leave_running ? ", leave running" : "");
	snprintf(what, sizeof(what), "the image directory of job %llu",
		 (unsigned long long)a->job_id);
	/* before anything is seized: the caller must be able to write there */
	if (r == 0)
		r = caller_open_dir(a->caller, a->dir_fd, CALLER_DIR_WRITE, &dfd, &err);
	if (r == 0)
		r = lock_dir(dfd, &lock_fd, &err);
	if (r == 0)
		r = ckpt_fault_inject("ckptd-worker", &err);
	if (r == 0 && act_as_caller_on_files(a->caller) < 0)
		r = ckpt_err_errno(&err, -errno, "cannot take the file ids of uid %u",
				   a->caller->uid);
	if (r == 0 && worker_cancelled)
		r = ckpt_err(&err, -ECANCELED, "dump cancelled before it started");
	o.pid = a->pid;
	o.dir = what;
	o.use_dir_fd = true;
	o.dir_fd = dfd;
	o.leave_running = a->leave_running;
	o.shell_job = a->shell_job;
	o.external = (const char *const *)a->external;
	o.n_external = a->n_external;
	o.tcp_close = a->tcp_close;
	o.pre_dump = a->pre_dump;
	o.parent = a->parent;
	if (a->parent && !auth_is_root(a->caller)) {
		/* the parent's inventory names a holder process: ours only */
		o.check_parent = check_parent_sealed;
		o.check_parent_arg = (void *)a;
	}
	o.images_unprivileged = !auth_is_root(a->caller);
	o.caller_unprivileged = !auth_is_root(a->caller);
	o.check_only = a->check_only;
	o.save_tmpfs_files = a->save_tmpfs;
	o.cgroups_under_root = a->save_tmpfs; /* (preserve: restored by --cgroups=caller) */
	o.progress = dump_progress;
	o.progress_arg = (void *)a;
	o.cancel = &worker_cancelled;
	if (r == 0)
		r = dump_tree(&o, &res, &err);
	/*
	 * What is left (checking, sealing and removing the caller's images,
	 * dump.log) touches only the caller's directory: with no capability.
	 */
	if (!auth_is_root(a->caller) && caps_lower_all() < 0 && r == 0)
		r = ckpt_err_errno(&err, -errno, "cannot drop the capabilities");
	/*
	 * The tree was checked before it was seized; the images say what the
	 * tasks were at the freeze. A task that gained privileges in between
	 * (a setuid exec) must not end up in the caller's hands.
	 */
	if (r == 0 && a->check_only) {
		if (scratch_fd >= 0 && rmdir(scratch) < 0)
			pr_warn("cannot remove %s: %m", scratch);
		pr_info("job %llu: pid %d passed the dump's checks (nothing written)",
			(unsigned long long)a->job_id, (int)a->pid);
		report_result(a, 0, a->pid, res.ntasks, 0, 0, NULL);
		return 0;
	}
	if (r < 0 && a->check_only) {
		if (scratch_fd >= 0)
			rmdir(scratch);
		report_result(a, r, a->pid, 0, 0, 0, err.msg);
		return 1;
	}
	if (r == 0 && !auth_is_root(a->caller)) {
		r = auth_check_images(a->caller, dfd, &err);
		if (r < 0) {
			ckpt_err_wrap(&err, "the tree changed credentials while it was dumped");
			img_dir_remove_images(dfd);
		}
	}
	if (r == 0)
		r = seal_images(a, dfd, &err);
	if (r < 0)
		pr_err("job %llu: dump of pid %d failed: %s", (unsigned long long)a->job_id,
		       (int)a->pid, err.msg);
	else
		pr_info("job %llu: dumped %u tasks, %llu bytes of memory",
			(unsigned long long)a->job_id, res.ntasks,
			(unsigned long long)res.pages_bytes);
	ckpt_fault_inject("ckptd-dump-done", NULL);
	if (a->log_fd >= 0 && dfd >= 0)
		save_log(a, dfd, a->log_fd, "dump.log");
	report_result(a, r, a->pid, res.ntasks, res.pages_bytes, res.images_bytes,
		      r < 0 ? err.msg : NULL);
	return r < 0 ? 1 : 0;
}

/* --- restore -------------------------------------------------------------- */

/* The value of "key": in ckpt-restore's JSON line (numbers only). */
static long long json_number(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* The string value of "error": with JSON escapes undone (enough for messages). */
static void json_error(const char *json, char *buf, size_t len)
{
	const char *p = strstr(json, "\"error\":\"");
	size_t n = 0;

	buf[0] = '\0';
	if (!p)
		return;
	for (p += 9; *p && *p != '"' && n + 1 < len; p++) {
		if (*p == '\\' && p[1])
			p++;
		buf[n++] = *p;
	}
	buf[n] = '\0';
}

/*
 * For a non-root caller the images record no capability (auth.c checked):
 * the restorer gets none beyond what it needs to recreate such a tree, so
 * nothing it restores can have more.
 */
static int drop_bounding_set(void)
{
	static const int keep[] = {CAP_SYS_ADMIN,
				   CAP_SYS_PTRACE,
				   CAP_SETUID,
				   CAP_SETGID,
				   CAP_SETPCAP,
				   CAP_KILL,
				   CAP_CHECKPOINT_RESTORE,
				   CAP_DAC_OVERRIDE,
				   CAP_DAC_READ_SEARCH,
				   CAP_FOWNER,
				   CAP_CHOWN,
				   CAP_NET_ADMIN,
				   CAP_SYS_TIME};

	for (int c = 0; c <= CAP_LAST_CAP; c++) {
		bool k = false;

		for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
			k |= keep[i] == c;
		if (!k && prctl(PR_CAPBSET_READ, c) == 1 && prctl(PR_CAPBSET_DROP, c) < 0)
			return -errno;
	}
	return 0;
}

/*
 * For a non-root caller, ckpt-restore runs as the caller (uid, gid,
 * groups), keeping as ambient capabilities only what recreating the tree
 * needs: every file a restored task reopens is opened with the caller's
 * rights, so an image cannot name a file the caller could not open.
 */
static int become_caller(const struct worker_args *a)
{
	/*
	 * NET_ADMIN: TCP connections restored in repair mode, their lock
	 * deleted. SYS_TIME: --continue-clocks writes the offsets of the job's
	 * own new time namespace (raised around that write only; a user can
	 * do the same in a user namespace of their own).
	 */
	static const cap_value_t keep[] = {CAP_SYS_ADMIN,  CAP_CHECKPOINT_RESTORE,
					   CAP_SYS_PTRACE, CAP_SETUID,
					   CAP_SETGID,	   CAP_SETPCAP,
					   CAP_KILL,	   CAP_NET_ADMIN,
					   CAP_SYS_TIME};
	const struct auth_caller *c = a->caller;
	cap_t caps;
	int r = 0;

	if (prctl(PR_SET_KEEPCAPS, 1) < 0 || setgroups(c->ngroups, c->groups) < 0 ||
	    setresgid(c->gid, c->gid, c->gid) < 0 || setresuid(c->uid, c->uid, c->uid) < 0)
		return -errno;
	caps = cap_init();
	if (!caps)
		return -ENOMEM;
	if (cap_set_flag(caps, CAP_PERMITTED, ARRAY_SIZE(keep), keep, CAP_SET) < 0 ||
	    cap_set_flag(caps, CAP_EFFECTIVE, ARRAY_SIZE(keep), keep, CAP_SET) < 0 ||
	    cap_set_flag(caps, CAP_INHERITABLE, ARRAY_SIZE(keep), keep, CAP_SET) < 0 ||
	    cap_set_proc(caps) < 0)
		r = -errno;
	cap_free(caps);
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(keep); i++)
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, keep[i], 0, 0) < 0)
			r = -errno;
	return r;
}

/*
 * ckpt-restore runs in the client's cgroups, not ckptd's: the tasks it makes
 * start there, so a restore into the cgroups the client is in moves nothing,
 * and a move elsewhere asks exactly what the client would need itself (v2:
 * write access to the common ancestor's cgroup.procs; from ckptd's own
 * cgroup under systemd that ancestor is the root cgroup, which no user may
 * write). Done as root, for this process only, before it becomes the
 * caller: a process of the caller's where the caller already has one. A
 * failure is only logged: the restore then starts in ckptd's cgroups and
 * each move it needs is checked as usual.
 */
static void join_caller_cgroups(const struct worker_args *a, int log_fd)
{
	struct cgroup_mounts mounts = {0};
	struct cgroup_list l = {0};
	struct ckpt_error e = {0};
	char path[64];

	if (a->caller->pid <= 0)
		return;
	ckpt_fault_inject("ckptd-join-cgroups", NULL);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)a->caller->pid);
	if (cgroup_parse_file(path, &l, &e) < 0 || cgroup_mounts_read(&mounts, &e) < 0) {
		dprintf(log_fd, "ckptd: warning: cannot find the client's cgroups: %s\n", e.msg);
		goto out;
	}
	/*
	 * The pid is the client's only while the client lives: one that exited
	 * after its request may have left its pid to another user's process,
	 * whose cgroups were read. Alive now, it was alive when they were read.
	 */
	if (a->caller_pidfd < 0 || syscall(SYS_pidfd_send_signal, a->caller_pidfd, 0, NULL, 0) < 0) {
		dprintf(log_fd, "ckptd: warning: the client (pid %d) is gone: not joining the cgroups "
				"its pid now has\n",
			(int)a->caller->pid);
		goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		_cleanup_free_ char *dir = NULL, *file = NULL;
		_cleanup_close_ int fd = -1;

		if (cgroup_path_invalid(l.v[i].path) ||
		    !cgroup_mounts_have(&mounts, l.v[i].controllers) ||
		    cgroup_dir(&mounts, l.v[i].controllers, l.v[i].path, &dir, &e) < 0 ||
		    asprintf(&file, "%s/cgroup.procs", dir) < 0)
			continue;
		fd = open(file, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			dprintf(log_fd, "ckptd: warning: cannot join the client's cgroup %s: %m\n",
				file);
	}
out:
	cgroup_list_free(&l);
	cgroup_mounts_free(&mounts);
}

/*
 * A pid of pstree.img belongs to a live process (zombies were waited for);
 * with only > 0, that pid: is it one of the checkpoint's?
 */
static bool saved_pid_taken(int dir_fd, pid_t only)
{
	_cleanup_img_ struct img *img = NULL;
	struct ckpt_error e = {0};
	ProtobufCMessage *m;
	bool taken = false;

	if (img_open(dir_fd, IMG_PSTREE, 0, &img, &e) < 0)
		return false;
	while (!taken && img_read_msg(img, &m, &e) == 1) {
		PstreeEntry *pe = (PstreeEntry *)m;

		for (size_t i = 0; i < pe->n_threads && !taken; i++)
			taken = pe->threads[i] > 0 &&
				(only > 0 ? pe->threads[i] == only : kill(pe->threads[i], 0) == 0);
		taken |= pe->pid > 0 &&
			 (only > 0 ? pe->pid == only : kill(pe->pid, 0) == 0 || errno == EPERM);
		if (taken && only <= 0)
			pr_info("pid %d of the checkpoint is taken: restoring with --new-pidns",
				pe->pid);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return taken;
}

/*
 * --cgroups=caller for a client: its /proc/PID/cgroup, opened while the
 * client lives (its pidfd says so after the open), so that ckpt-restore
 * reads the client's cgroups and not those of a process that got its pid
 * later (a read after the client exited fails). A client already gone
 * fails the restore: whose cgroups would "caller" be?
 */
static int open_caller_cgroup(const struct worker_args *a, int *ret_fd, struct ckpt_error *e)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)a->caller->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && a->caller_pidfd >= 0 &&
	    syscall(SYS_pidfd_send_signal, a->caller_pidfd, 0, NULL, 0) == 0) {
		*ret_fd = fd;
		return 0;
	}
	if (fd >= 0)
		close(fd);
	return ckpt_err(e, -ESRCH,
			"--cgroups=caller: you (pid %d, who connected) are gone, so your cgroups "
			"are unknown; connect from the process whose cgroups the tree should join",
			(int)a->caller->pid);
}

static void exec_restorer(const struct worker_args *a, int out_fd, int log_fd, int progress_fd)
{
	char fdarg[16], progarg[16], pidarg[16], commitarg[2][16], parentarg[16], clientarg[16],
	    holdarg[16], cgarg[16];
	int cg_fd = a->caller_cgroup_fd;
	char *argv[32] = {"ckpt-restore", "--json",	   "-v",    "--dir-fd",
			  fdarg,	  "--progress-fd", progarg, NULL};
	size_t argc = 7;
	int commit_fds[2] = {a->commit_fd, a->client_commit_fd};
	/* opened while still root: the caller may have no way into the
	 * directory ckpt-restore lives in (a build tree in a private dir),
	 * only the right to execute the file itself */
	int exe = open(a->restorer, O_PATH | O_CLOEXEC);

	snprintf(fdarg, sizeof(fdarg), "%d", a->dir_fd);
	snprintf(progarg, sizeof(progarg), "%d", progress_fd);
	if (a->cgroups_caller)
		argv[argc++] = "--cgroups=caller";
	/* the client waits for our answer: its pid is its own meanwhile; a
	 * preserved tree's restore has no client (pid 0): ckptd's cgroups,
	 * where this process is, stand for the caller's */
	/* and ckpt-restore reads them from the file open_caller_cgroup opened */
	if (cg_fd >= 0) {
		snprintf(pidarg, sizeof(pidarg), "%d", (int)a->caller->pid);
		snprintf(cgarg, sizeof(cgarg), "%d", cg_fd);
		argv[argc++] = "--caller-pid";
		argv[argc++] = pidarg;
		argv[argc++] = "--caller-cgroup-fd";
		argv[argc++] = cgarg;
	}
	/* asked for (ckptctl restore --new-pidns), or by ckptctl preserve
	 * --restore-all (only set when the restorer has them), a pid of the
	 * tree being taken: checked before the fork, and now for this very
	 * process, which a fresh pid space (a boot) may have given one of the
	 * tree's pids (the worker's run_restorer sees the same) */
	if (a->new_pidns || a->use_new_pidns ||
	    (a->new_pidns_if_taken && saved_pid_taken(a->dir_fd, getpid())))
		argv[argc++] = "--new-pidns";
	if (a->continue_clocks)
		argv[argc++] = "--continue-clocks";
	if (a->lazy)
		argv[argc++] = "--lazy";
	/*
	 * The truth contract (docs/security.md): the commit records (ours,
	 * which ckptd reads if we die, and the client's), ourselves as the
	 * parent that reports the outcome, the client's connection, and the
	 * report pipe, held until ckpt-restore is gone: ckptd settles a
	 * restore whose worker died only once its ckpt-restore has ended too.
	 */
	for (size_t i = 0; i < 2; i++) {
		if (commit_fds[i] < 0)
			continue;
		snprintf(commitarg[i], sizeof(commitarg[i]), "%d", commit_fds[i]);
		argv[argc++] = "--commit-fd";
		argv[argc++] = commitarg[i];
	}
	snprintf(parentarg, sizeof(parentarg), "%d", (int)a->worker_pid);
	argv[argc++] = "--parent-pid";
	argv[argc++] = parentarg;
	if (a->client_fd >= 0) {
		snprintf(clientarg, sizeof(clientarg), "%d", a->client_fd);
		argv[argc++] = "--client-fd";
		argv[argc++] = clientarg;
	}
	snprintf(holdarg, sizeof(holdarg), "%d", a->report_fd);
	argv[argc++] = "--hold-fd";
	argv[argc++] = holdarg;
	argv[argc] = NULL;
	if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0)
		_exit(127);
	/* the fds of the arguments above survive the exec */
	int keep[] = {a->dir_fd,    progress_fd,  commit_fds[0], commit_fds[1],
		      a->client_fd, a->report_fd, cg_fd};

	for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
		if (keep[i] >= 0 && fcntl(keep[i], F_SETFD, 0) < 0)
			_exit(127);
	join_caller_cgroups(a, log_fd);
	if (!auth_is_root(a->caller) && (drop_bounding_set() < 0 || become_caller(a) < 0)) {
		dprintf(log_fd, "ckptd: cannot drop privileges for ckpt-restore: %m\n");
		_exit(127);
	}
	/* the worker's death (SIGKILL) cancels the restore: it rolls back */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != a->worker_pid)
		_exit(127);
	if (exe >= 0)
		syscall(SYS_execveat, exe, "", argv, environ, AT_EMPTY_PATH);
	dprintf(log_fd, "ckptd: cannot run %s: %m\n", a->restorer);
	_exit(127);
}

/* The restorer's progress lines, passed on to the main process as they come. */
static void forward_progress_line(void *arg, const char *line)
{
	const struct worker_args *a = arg;
	struct worker_msg m = {.kind = WORKER_PROGRESS};
	struct restorer_progress p;

	if (!restorer_progress_parse(line, &p))
		return; /* not a progress line */
	m.bytes = p.bytes;
	m.tasks_done = p.tasks_done;
	m.tasks_total = p.tasks_total;
	report(a, &m);
}

/*
 * Read the restorer's stdout until EOF, forwarding its progress meanwhile.
 * A cancel (SIGTERM to this worker) is passed on to the restorer, which
 * rolls back by itself; the short poll timeout covers a signal that comes
 * just before poll().
 */
static void watch_restorer(const struct worker_args *a, pid_t pid, int rd, struct line_reader *pr,
			   char *out, size_t len)
{
	bool forwarded = false;
	size_t n = 0;
	ssize_t k;

	fcntl(rd, F_SETFL, O_NONBLOCK);
	for (;;) {
		struct pollfd p[2] = {{rd, POLLIN, 0}, {pr->fd, POLLIN, 0}};

		if (worker_cancelled && !forwarded) {
			kill(pid, SIGTERM);
			forwarded = true;
		}
		if (poll(p, 2, 200) <= 0)
			continue;
		if (p[1].revents)
			line_reader_read(pr, forward_progress_line, (void *)a);
		if (!p[0].revents)
			continue;
		k = n + 1 < len ? read(rd, out + n, len - 1 - n) : read(rd, (char[256]){0}, 256);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			break;
		if (n + 1 < len)
			n += k;
	}
	while (pr->fd >= 0) {
		struct pollfd p = {pr->fd, POLLIN, 0};

		/* what the restorer wrote before it exited; never wait long */
		if (poll(&p, 1, 100) <= 0)
			break;
		line_reader_read(pr, forward_progress_line, (void *)a);
	}
	out[n] = '\0';
}

/* Run ckpt-restore and read its one JSON line into out. */
static int run_restorer(const struct worker_args *a, int log_fd, char *out, size_t len,
			unsigned long long *ret_start, struct ckpt_error *e)
{
	_cleanup_close_ int rd = -1;
	struct line_reader pr = {.fd = -1};
	int p[2], q[2], status, r;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return ckpt_err_errno(e, -errno, "pipe");
	rd = p[0];
	if (pipe2(q, O_CLOEXEC) < 0) {
		close(p[1]);
		return ckpt_err_errno(e, -errno, "pipe");
	}
	pr.fd = q[0];
	fcntl(pr.fd, F_SETFL, O_NONBLOCK);
	((struct worker_args *)a)->worker_pid = getpid();
	pid = fork();
	if (pid < 0) {
		r = ckpt_err_errno(e, -errno, "cannot fork ckpt-restore");
		close(p[1]);
		close(q[0]);
		close(q[1]);
		return r;
	}
	if (pid == 0)
		exec_restorer(a, p[1], log_fd, q[1]);
	close(p[1]);
	close(q[1]);
	/* as exec_restorer decided: a failed restore then kills the new
	 * namespace's init, not the tree's pids in ours */
	if (a->new_pidns_if_taken && !a->use_new_pidns && saved_pid_taken(a->dir_fd, pid)) {
		pr_info("ckpt-restore got pid %d of the checkpoint: restoring with --new-pidns",
			(int)pid);
		((struct worker_args *)a)->use_new_pidns = true;
	}
	*ret_start = proc_start_ticks(pid);
	watch_restorer(a, pid, rd, &pr, out, len);
	if (pr.fd >= 0)
		close(pr.fd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return ckpt_err(e, -ENOEXEC, "cannot run the restorer %s%s", a->restorer,
				a->has_log ? " (see restore.log)" : "");
	if (WIFSIGNALED(status))
		return ckpt_err(e, -EIO, "ckpt-restore was killed by signal %d%s", WTERMSIG(status),
				a->has_log ? " (see restore.log)" : "");
	return 0;
}

/*
 * Where a non-root caller's images are copied before they are checked: a
 * directory of root's in /tmp named after the worker that made it, so that
 * ckptd removes what a worker killed before its own cleanup left
 * (worker_snapshots_sweep).
 */
#define SNAPSHOT_DIR "/tmp"
#define SNAPSHOT_PREFIX "ckptd-restore."
/* the inventory itself: names and sums of the images, never large */
#define SNAPSHOT_INVENTORY_MAX (16u << 20)
/* PID 1 reaps orphans about once a second */
#define ZOMBIE_WAIT_SECONDS 2.0

/* Copy exactly size bytes of in (a regular file) into out. */
static int copy_exact(int in, int out, uint64_t size)
{
	char buf[65536];
	uint64_t done = 0;
	ssize_t n;

	while (done < size) {
		size_t want = size - done > (1u << 30) ? (1u << 30) : size - done;

		n = copy_file_range(in, NULL, out, NULL, want, 0);
		if (n > 0) {
			done += n;
			continue;
		}
		if (n == 0)
			return -EBADMSG; /* shorter than it said */
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return -errno;
		break;
	}
	while (done < size) {
		size_t want = size - done < sizeof(buf) ? size - done : sizeof(buf);

		n = read(in, buf, want);
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EBADMSG;
		if (write(out, buf, n) != n)
			return -EIO;
		done += n;
	}
	return 0;
}

/*
 * Copy one image of the caller's directory, opened as the caller (a regular
 * file, never a FIFO), into dfd: exactly the size the inventory declares.
 * The copy is root's, readable by the caller's group only (ckpt-restore runs
 * as the caller and reaches it only through the directory fd it is given).
 */
static int snapshot_one(const struct worker_args *a, int src, int dfd, const char *name,
			uint64_t size, struct ckpt_error *e)
{
	_cleanup_close_ int in = -1, out = -1;
	struct stat st;
	int r;

	r = caller_open_file(a->caller, src, name, &in, e);
	if (r < 0)
		return r;
	if (fstat(in, &st) < 0)
		return ckpt_err_errno(e, -errno, "%s: cannot stat", name);
	if ((uint64_t)st.st_size != size)
		return ckpt_err(e, -EBADMSG,
				"%s: size is %llu bytes, the inventory declares %llu (truncated "
				"or modified)",
				name, (unsigned long long)st.st_size, (unsigned long long)size);
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0 || fchown(out, 0, a->caller->gid) < 0 || fchmod(out, 0640) < 0)
		return ckpt_err_errno(e, -errno, "cannot create the copy of %s", name);
	r = copy_exact(in, out, size);
	if (r < 0)
		return ckpt_err_errno(e, r, "cannot copy %s", name);
	return 0;
}

static void remove_all(int dfd)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0 && !(dir = fdopendir(fd)))
		close(fd);
	while (dir && (de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dfd, de->d_name, 0);
}

/* The copy ("i") and those of its parents (incremental checkpoints) in top. */
static void snapshot_empty(int top)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	int fd;

	fd = top >= 0 ? openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (fd >= 0 && !(dir = fdopendir(fd)))
		close(fd);
	while (dir && (de = readdir(dir))) {
		_cleanup_close_ int sub = -1;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		sub = openat(top, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0)
			remove_all(sub);
		unlinkat(top, de->d_name, AT_REMOVEDIR);
	}
}

static void snapshot_remove(const char *path, int dfd)
{
	_cleanup_close_ int top = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	remove_all(dfd);
	snapshot_empty(top);
	if (rmdir(path) < 0)
		pr_debug("cannot remove %s: %m", path);
}

/* "ckptd-restore.PID.XXXXXX": the worker's pid, or 0 for another name. */
static pid_t snapshot_worker(const char *name)
{
	char *end;
	long v;

	if (strncmp(name, SNAPSHOT_PREFIX, strlen(SNAPSHOT_PREFIX)))
		return 0;
	name += strlen(SNAPSHOT_PREFIX);
	errno = 0;
	v = strtol(name, &end, 10);
	if (errno || end == name || *end != '.' || v <= 0 || v > INT32_MAX)
		return 0;
	return (pid_t)v;
}

void worker_snapshots_sweep(pid_t worker)
{
	_cleanup_closedir_ DIR *dir = opendir(SNAPSHOT_DIR);
	struct dirent *de;

	while (dir && (de = readdir(dir))) {
		pid_t pid = snapshot_worker(de->d_name);
		_cleanup_close_ int top = -1;
		struct stat st;

		if (!pid || (worker ? pid != worker : kill(pid, 0) == 0 || errno != ESRCH))
			continue;
		/* root's own directory only: /tmp is sticky, so nobody else can
		 * have made it, nor move or replace it */
		top =
		    openat(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (top < 0 || fstat(top, &st) < 0 || st.st_uid != 0)
			continue;
		snapshot_empty(top);
		if (unlinkat(dirfd(dir), de->d_name, AT_REMOVEDIR) < 0)
			pr_warn("cannot remove %s/%s, left by worker %d: %m", SNAPSHOT_DIR,
				de->d_name, pid);
		else
			pr_info("removed %s/%s, the copy of images left by worker %d", SNAPSHOT_DIR,
				de->d_name, pid);
	}
}

static bool plain_name(const char *n)
{
	return n && *n && !strchr(n, '/') && strcmp(n, ".") && strcmp(n, "..") &&
	       strcmp(n, "inventory.img") && strlen(n) < 256;
}

/* The images the copied inventory lists, within the service's limits. */
static int snapshot_listed(const struct worker_args *a, int src, int dfd, struct ckpt_error *e)
{
	_cleanup_img_ struct img *img = NULL;
	Inventory *inv = NULL;
	uint64_t total = 0;
	int r;

	r = img_open(dfd, IMG_INVENTORY, 0, &img, e);
	if (r == 0)
		r = img_read_one(img, (ProtobufCMessage **)&inv, e);
	if (r < 0)
		return ckpt_err_wrap(e, "inventory.img");
	if (inv->n_images > a->limits.max_images)
		r = ckpt_err(e, -E2BIG,
			     "inventory.img lists %zu images, more than ckptd allows (%u, "
			     "--max-images)",
			     inv->n_images, a->limits.max_images);
	for (size_t i = 0; r == 0 && i < inv->n_images; i++) {
		if (!plain_name(inv->images[i]->name))
			r = ckpt_err(e, -EBADMSG, "inventory.img: images[%zu] is not a plain name",
				     i);
		else if ((total += inv->images[i]->size) > a->limits.max_restore_bytes)
			r = ckpt_err(e, -EFBIG,
				     "the images declare more than %llu bytes, ckptd's limit for "
				     "a restore (--max-restore-bytes)",
				     (unsigned long long)a->limits.max_restore_bytes);
	}
	for (size_t i = 0; r == 0 && i < inv->n_images; i++)
		r = snapshot_one(a, src, dfd, inv->images[i]->name, inv->images[i]->size, e);
	inventory__free_unpacked(inv, NULL);
	return r;
}

/*
 * The caller owns its image directory and could swap an image between our
 * checks and the restorer reading it (or write through an fd it kept open).
 * So for a non-root caller the images the inventory lists are opened as the
 * caller and copied, within the declared sizes, into PATH/i: PATH is root's
 * (0700), so nobody reaches the copy by name; i (0750) and its files (0640)
 * belong to root and the caller's group, so ckpt-restore, running as the
 * caller, reads them through the fd it is given and cannot change them.
 */
/* Copy the checkpoint the caller has in src into top/name (made here). */
static int snapshot_dir(const struct worker_args *a, int src, int top, const char *name,
			int *ret_fd, struct ckpt_error *e)
{
	_cleanup_close_ int dfd = -1, in = -1, out = -1;
	struct stat st;
	int r;

	if (mkdirat(top, name, 0700) < 0 ||
	    (dfd = openat(top, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fchown(dfd, 0, a->caller->gid) < 0 || fchmod(dfd, 0750) < 0)
		return ckpt_err_errno(e, -errno, "cannot set up a copy of the images");
	r = caller_open_file(a->caller, src, "inventory.img", &in, e);
	if (r == 0 && (fstat(in, &st) < 0 || st.st_size > SNAPSHOT_INVENTORY_MAX))
		r = ckpt_err(e, -EFBIG, "inventory.img is larger than %u bytes",
			     SNAPSHOT_INVENTORY_MAX);
	if (r == 0 &&
	    (out = openat(dfd, "inventory.img",
			  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
		r = ckpt_err_errno(e, -errno, "cannot create the copy of inventory.img");
	if (r == 0 && (fchown(out, 0, a->caller->gid) < 0 || fchmod(out, 0640) < 0))
		r = ckpt_err_errno(e, -errno, "cannot create the copy of inventory.img");
	if (r == 0 && (r = copy_exact(in, out, st.st_size)) < 0)
		r = ckpt_err_errno(e, r, "cannot copy inventory.img");
	if (r == 0)
		r = snapshot_listed(a, src, dfd, e);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(dfd);
	return 0;
}

static int snapshot_images(const struct worker_args *a, int src, char *path, int *ret_fd,
			   struct ckpt_error *e)
{
	_cleanup_close_ int top = -1, dfd = -1;
	int r;

	if (!mkdtemp(path))
		return ckpt_err_errno(e, -errno, "cannot create %s for a copy of the images", path);
	top = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top < 0 || fchmod(top, 0700) < 0) {
		r = ckpt_err_errno(e, -errno, "cannot set up %s", path);
		snapshot_remove(path, -1);
		return r;
	}
	r = snapshot_dir(a, src, top, "i", &dfd, e);
	if (r < 0) {
		snapshot_remove(path, dfd);
		return r;
	}
	*ret_fd = TAKE_FD(dfd);
	return 0;
}

/*
 * The parents of an incremental checkpoint (docs/incremental.md), for a
 * non-root caller: each must be a sibling of its child ("../NAME", what
 * ckptctl records for sibling directories), is opened as the caller from
 * the caller's directory, copied next to the copy of its child (top/NAME,
 * where ckpt-restore finds it from the copy: top becomes searchable by the
 * caller's group) and must carry ckptd's seal for the caller, like the
 * checkpoint itself.
 */
static int snapshot_parents(const struct worker_args *a, int caller_dfd, const char *path,
			    int snap_fd, struct ckpt_error *e)
{
	_cleanup_close_ int top = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int cur_caller = caller_dfd, cur_snap = snap_fd;
	int owned_caller = -1, owned_snap = -1;
	int r = 0;

	if (top < 0)
		return ckpt_err_errno(e, -errno, "cannot open %s", path);
	for (int depth = 0; r == 0; depth++) {
		_cleanup_img_ struct img *img = NULL;
		Inventory *inv = NULL;
		int pfd = -1, sfd = -1;
		char name[256];

		r = img_open(cur_snap, IMG_INVENTORY, 0, &img, e);
		if (r == 0)
			r = img_read_one(img, (ProtobufCMessage **)&inv, e);
		if (r < 0)
			break;
		if (!inv->parent) {
			inventory__free_unpacked(inv, NULL);
			break;
		}
		if (strncmp(inv->parent, "../", 3) || !plain_name(inv->parent + 3) ||
		    strlen(inv->parent + 3) >= sizeof(name) || !strcmp(inv->parent + 3, "i") ||
		    depth >= 64) {
			r = ckpt_err(e, -EOPNOTSUPP,
				     "parent checkpoint %.64s: ckptd restores an incremental "
				     "checkpoint for you only when each parent is a directory next "
				     "to its child",
				     inv->parent);
			inventory__free_unpacked(inv, NULL);
			break;
		}
		snprintf(name, sizeof(name), "%s", inv->parent + 3);
		r = caller_open_subdir(a->caller, cur_caller, inv->parent, &pfd, e);
		inventory__free_unpacked(inv, NULL);
		if (r == 0)
			r = snapshot_dir(a, pfd, top, name, &sfd, e);
		if (r == 0)
			r = mac_check(a->mac_key, a->caller->uid, sfd, pfd, e);
		if (r == 0)
			r = auth_check_images(a->caller, sfd, e);
		if (r < 0)
			ckpt_err_wrap(e, "parent checkpoint %s", name);
		if (owned_caller >= 0)
			close(owned_caller);
		if (owned_snap >= 0)
			close(owned_snap);
		cur_caller = owned_caller = pfd;
		cur_snap = owned_snap = sfd;
	}
	if (owned_caller >= 0)
		close(owned_caller);
	if (owned_snap >= 0)
		close(owned_snap);
	if (r == 0 && (fchown(top, 0, a->caller->gid) < 0 || fchmod(top, 0710) < 0))
		r = ckpt_err_errno(e, -errno, "cannot set up %s", path);
	return r;
}

/*
 * A tree killed by a dump keeps its pids as zombies until PID 1 reaps them
 * (up to ~1.5 s here): a restore right after the dump waits for them, for
 * every client (libckpt users too), not only ckptctl.
 */
static void wait_for_zombie_pids(int dir_fd)
{
	_cleanup_img_ struct img *img = NULL;
	struct ckpt_error e = {0};
	ProtobufCMessage *m;
	double deadline = ckpt_monotonic_seconds() + ZOMBIE_WAIT_SECONDS;

	if (img_open(dir_fd, IMG_PSTREE, 0, &img, &e) < 0)
		return;
	while (img_read_msg(img, &m, &e) == 1) {
		PstreeEntry *pe = (PstreeEntry *)m;

		for (;;) {
			if (ckpt_monotonic_seconds() > deadline || !proc_pid_is_zombie(pe->pid))
				break;
			usleep(20000);
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

int worker_restore(const struct worker_args *a)
{
	struct sigaction sa = {.sa_handler = on_sigterm, .sa_flags = SA_RESTART};
	_cleanup_close_ int log_fd = -1, snap_fd = -1, dfd = -1, lock_fd = -1;
	struct worker_args b = *a;
	struct ckpt_error err = {0}, lerr = {0};
	Inventory *inv = NULL;
	char out[4096], msg[CKPT_ERROR_MAX], snap[64];
	long long pid = 0, ntasks = 0, pager = 0;
	struct restore_commit cr;
	unsigned long long started = 0;
	bool ran = false;
	int r;

	snprintf(snap, sizeof(snap), "%s/%s%d.XXXXXX", SNAPSHOT_DIR, SNAPSHOT_PREFIX, getpid());
	b.caller_cgroup_fd = -1;
	/* SIGTERM (RPC_CANCEL, the client gone, ckptd gone) is passed on to
	 * ckpt-restore, which rolls back: no task of the tree is left */
	sigaction(SIGTERM, &sa, NULL);
	die_with_ckptd(a);
	/* first: may the caller read this directory at all? */
	r = caller_open_dir(a->caller, a->dir_fd, CALLER_DIR_READ, &dfd, &err);
	if (r == 0)
		r = lock_dir(dfd, &lock_fd, &err);
	if (r == 0 && caller_create_file(a->caller, dfd, "restore.log", &log_fd, &lerr) == 0)
		b.has_log = true;
	else if (r == 0)
		pr_debug("no restore.log: %s", lerr.msg);
	if (log_fd < 0)
		log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	b.dir_fd = dfd;
	if (r == 0)
		r = ckpt_fault_inject("ckptd-restore-start", &err);
	if (r == 0 && !auth_is_root(a->caller)) {
		r = snapshot_images(&b, dfd, snap, &snap_fd, &err);
		b.dir_fd = snap_fd;
	}
	if (r == 0)
		r = img_dir_verify_fd(b.dir_fd, "the image directory", &inv, &err);
	/* an incremental checkpoint: its parents copied and checked too */
	if (r == 0 && inv->parent && !auth_is_root(a->caller)) {
		r = snapshot_parents(a, dfd, snap, snap_fd, &err);
		if (r < 0)
			inventory__free_unpacked(inv, NULL);
	}
	if (r == 0) {
		inventory__free_unpacked(inv, NULL);
		r = auth_check_images(a->caller, b.dir_fd, &err);
	}
	/* clone3 with set_tid, TCP repair, System V ids: for images we sealed only */
	if (r == 0 && !auth_is_root(a->caller))
		r = mac_check(a->mac_key, a->caller->uid, b.dir_fd, dfd, &err);
	if (r == 0)
		r = ckpt_fault_inject("ckptd-worker", &err);
	if (r == 0 && a->cgroups_caller && a->caller->pid > 0)
		r = open_caller_cgroup(a, &b.caller_cgroup_fd, &err);
	if (r == 0)
		wait_for_zombie_pids(b.dir_fd);
	if (r == 0 && a->new_pidns_if_taken)
		b.use_new_pidns = saved_pid_taken(b.dir_fd, 0);
	if (r == 0 && worker_cancelled)
		r = ckpt_err(&err, -ECANCELED, "restore cancelled before ckpt-restore ran");
	if (r == 0) {
		r = run_restorer(&b, log_fd, out, sizeof(out), &started, &err);
		ran = true;
	}
	if (r == 0 && strstr(out, "\"status\":\"ok\"")) {
		pid = json_number(out, "root_pid");
		ntasks = json_number(out, "tasks");
		pager = a->lazy ? json_number(out, "pager_pid") : 0;
	} else if (ran && restore_commit_read(a->commit_fd, &cr)) {
		/* ckpt-restore died after its commit point (killed): the tree
		 * runs, let go by the kernel if not by ckpt-restore */
		pr_info("ckpt-restore ended without its answer after the commit: the tree runs");
		memset(&err, 0, sizeof(err));
		r = 0;
		pid = cr.new_pidns ? 0 : cr.root_pid;
		ntasks = cr.ntasks;
	} else if (r == 0) {
		json_error(out, msg, sizeof(msg));
		r = ckpt_err(&err, worker_cancelled ? -ECANCELED : -EIO, "%s",
			     msg[0] ? msg
				    : (b.has_log ? "ckpt-restore failed (see restore.log)"
						 : "ckpt-restore failed"));
	}
	/*
	 * Past the commit point nothing is undone: a cancel (the client gone,
	 * RPC_CANCEL, ckptd gone) came too late. ckpt-restore looked at each
	 * of them last thing before it committed; whoever is left to tell
	 * reads the commit record (ckptd's client its own, when ckptd is gone).
	 */
	ckpt_fault_inject("ckptd-restore-done", NULL);
	if (r < 0 && ran && (a->new_pidns || b.use_new_pidns))
		restored_nsinit_kill((pid_t)json_number(out, "ns_init_pid"), started);
	else if (r < 0 && ran)
		restored_tasks_kill(b.dir_fd, started);
	if (snap_fd >= 0)
		snapshot_remove(snap, snap_fd);
	if (b.caller_cgroup_fd >= 0)
		close(b.caller_cgroup_fd);
	if (r < 0)
		dprintf(log_fd, "ckptd: job %llu: restore failed: %s\n",
			(unsigned long long)a->job_id, err.msg);
	report_result_pager(a, r, pid > 0 ? (pid_t)pid : 0, ntasks > 0 ? (unsigned)ntasks : 0, 0, 0,
			    r < 0 ? err.msg : NULL, r == 0 && pager > 0 ? (pid_t)pager : 0);
	return r < 0 ? 1 : 0;
}
