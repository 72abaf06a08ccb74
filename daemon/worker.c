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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "dump.h"
#include "fault.h"
#include "image.h"
#include "log.h"
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

static void report_result(const struct worker_args *a, int status, pid_t pid, unsigned ntasks,
			  uint64_t bytes, uint64_t images_bytes, const char *error)
{
	struct worker_msg m = {.kind = WORKER_RESULT,
			       .status = status,
			       .pid = pid,
			       .tasks_done = ntasks,
			       .tasks_total = ntasks,
			       .bytes = bytes,
			       .images_bytes = images_bytes};

	if (error)
		snprintf(m.error, sizeof(m.error), "%s", error);
	report(a, &m);
}

/*
 * Create name in the image directory for the caller: an existing entry
 * (maybe a symlink or a hard link planted there) is removed first and the
 * new file is created exclusively, then given to the caller.
 */
static int create_owned(const struct worker_args *a, const char *name)
{
	int fd;

	if (unlinkat(a->dir_fd, name, 0) < 0 && errno != ENOENT)
		return -errno;
	fd = openat(a->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fchown(fd, a->caller->uid, a->caller->gid) < 0)
		pr_debug("cannot give %s to uid %u: %m", name, a->caller->uid);
	return fd;
}

/* The images belong to root as written: hand them to a non-root caller. */
static void give_images_to_caller(const struct worker_args *a)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	int fd;

	if (auth_is_root(a->caller))
		return;
	fd = openat(a->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return;
	}
	while ((de = readdir(dir)))
		if (de->d_type == DT_REG && fchownat(a->dir_fd, de->d_name, a->caller->uid,
						     a->caller->gid, AT_SYMLINK_NOFOLLOW) < 0)
			pr_debug("cannot give %s to uid %u: %m", de->d_name, a->caller->uid);
}

/* A checkpoint that must not stay: remove the inventory first, then the rest. */
static void remove_images(const struct worker_args *a)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	int fd;

	unlinkat(a->dir_fd, "inventory.img", 0);
	fd = openat(a->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return;
	}
	while ((de = readdir(dir)))
		if (de->d_type == DT_REG && strstr(de->d_name, ".img"))
			unlinkat(a->dir_fd, de->d_name, 0);
}

/* Copy what the dump logged (a memfd) into dump.log. */
static void save_log(const struct worker_args *a, int memfd, const char *name)
{
	_cleanup_close_ int fd = create_owned(a, name);
	char buf[65536];
	off_t off = 0;
	ssize_t n;

	if (fd < 0) {
		pr_debug("cannot create %s in the image directory: %s", name, strerror(-fd));
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

int worker_dump(const struct worker_args *a)
{
	struct sigaction sa = {.sa_handler = on_sigterm, .sa_flags = SA_RESTART};
	struct dump_result res = {0};
	struct ckpt_error err = {0};
	struct dump_opts o = {0};
	_cleanup_close_ int memfd = -1;
	char what[64];
	int r;

	sigaction(SIGTERM, &sa, NULL);
	memfd = memfd_create("dump.log", MFD_CLOEXEC);
	if (memfd >= 0) {
		ckpt_log_set_fd(memfd);
		ckpt_log_set_level(LOG_LVL_DEBUG);
	}
	pr_info("job %llu: dump of pid %d for uid %u (pid %d)%s", (unsigned long long)a->job_id,
		(int)a->pid, a->caller->uid, (int)a->caller->pid,
		a->leave_running ? ", leave running" : "");
	snprintf(what, sizeof(what), "the image directory of job %llu",
		 (unsigned long long)a->job_id);
	o.pid = a->pid;
	o.dir = what;
	o.use_dir_fd = true;
	o.dir_fd = a->dir_fd;
	o.leave_running = a->leave_running;
	o.shell_job = a->shell_job;
	o.external = (const char *const *)a->external;
	o.n_external = a->n_external;
	o.tcp_close = a->tcp_close;
	o.progress = dump_progress;
	o.progress_arg = (void *)a;
	o.cancel = &worker_cancelled;
	r = ckpt_fault_inject("ckptd-worker", &err);
	if (r == 0)
		r = dump_tree(&o, &res, &err);
	/*
	 * The tree was checked before it was seized; the images say what the
	 * tasks were at the freeze. A task that gained privileges in between
	 * (a setuid exec) must not end up in the caller's hands.
	 */
	if (r == 0 && !auth_is_root(a->caller)) {
		r = auth_check_images(a->caller, a->dir_fd, &err);
		if (r < 0) {
			ckpt_err_wrap(&err, "the tree changed credentials while it was dumped");
			remove_images(a);
		}
	}
	if (r == 0)
		give_images_to_caller(a);
	if (r < 0)
		pr_err("job %llu: dump of pid %d failed: %s", (unsigned long long)a->job_id,
		       (int)a->pid, err.msg);
	else
		pr_info("job %llu: dumped %u tasks, %llu bytes of memory",
			(unsigned long long)a->job_id, res.ntasks,
			(unsigned long long)res.pages_bytes);
	if (memfd >= 0)
		save_log(a, memfd, "dump.log");
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
				   CAP_NET_ADMIN};

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
	/* NET_ADMIN: TCP connections restored in repair mode, their lock deleted */
	static const cap_value_t keep[] = {CAP_SYS_ADMIN,  CAP_CHECKPOINT_RESTORE,
					   CAP_SYS_PTRACE, CAP_SETUID,
					   CAP_SETGID,	   CAP_SETPCAP,
					   CAP_KILL,	   CAP_NET_ADMIN};
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

static void exec_restorer(const struct worker_args *a, int out_fd, int log_fd, int progress_fd)
{
	char fdarg[16], progarg[16];
	char *argv[] = {"ckpt-restore", "--json",	 "-v",	  "--dir-fd",
			fdarg,		"--progress-fd", progarg, NULL};
	/* opened while still root: the caller may have no way into the
	 * directory ckpt-restore lives in (a build tree in a private dir),
	 * only the right to execute the file itself */
	int exe = open(a->restorer, O_PATH | O_CLOEXEC);

	snprintf(fdarg, sizeof(fdarg), "%d", a->dir_fd);
	snprintf(progarg, sizeof(progarg), "%d", progress_fd);
	if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0)
		_exit(127);
	if (fcntl(a->dir_fd, F_SETFD, 0) < 0 || fcntl(progress_fd, F_SETFD, 0) < 0)
		_exit(127);
	if (!auth_is_root(a->caller) && (drop_bounding_set() < 0 || become_caller(a) < 0)) {
		dprintf(log_fd, "ckptd: cannot drop privileges for ckpt-restore: %m\n");
		_exit(127);
	}
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
			struct ckpt_error *e)
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
	watch_restorer(a, pid, rd, &pr, out, len);
	if (pr.fd >= 0)
		close(pr.fd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return ckpt_err(e, -ENOEXEC, "cannot run the restorer %s (see restore.log)",
				a->restorer);
	if (WIFSIGNALED(status))
		return ckpt_err(e, -EIO, "ckpt-restore was killed by signal %d (see restore.log)",
				WTERMSIG(status));
	return 0;
}

/* Where a non-root caller's images are copied before they are checked. */
#define SNAPSHOT_TEMPLATE "/tmp/ckptd-restore.XXXXXX"
#define SNAPSHOT_FILES_MAX 100000
/* PID 1 reaps orphans about once a second */
#define ZOMBIE_WAIT_SECONDS 2.0

static int copy_file(int in, int out)
{
	char buf[65536];
	ssize_t n;

	for (;;) {
		n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return -errno;
		break;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			return -EIO;
	return n < 0 ? -errno : 0;
}

/* Copy one regular file name (a *.img) of the caller's directory into dfd. */
static int snapshot_one(const struct worker_args *a, int dfd, const char *name,
			struct ckpt_error *e)
{
	_cleanup_close_ int in = -1, out = -1;
	struct stat st;
	int r;

	in = openat(a->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (in < 0)
		return ckpt_err_errno(e, -errno, "cannot open %s", name);
	if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode))
		return ckpt_err(e, -EINVAL, "%s is not a regular file", name);
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	/* readable by ckpt-restore running as the caller, whatever ckptd's umask */
	if (out < 0 || fchmod(out, 0644) < 0)
		return ckpt_err_errno(e, -errno, "cannot create the copy of %s", name);
	r = copy_file(in, out);
	if (r < 0)
		return ckpt_err_errno(e, r, "cannot copy %s", name);
	return 0;
}

static void snapshot_remove(const char *path, int dfd)
{
	_cleanup_closedir_ DIR *dir = NULL;
	struct dirent *de;
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0 && !(dir = fdopendir(fd)))
		close(fd);
	while (dir && (de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dfd, de->d_name, 0);
	if (rmdir(path) < 0)
		pr_debug("cannot remove %s: %m", path);
}

/*
 * The caller owns its image directory and could swap an image between our
 * checks and the restorer reading it (or write through an fd it kept open).
 * So for a non-root caller the images are copied into a directory only root
 * can write, and that copy is verified, checked and restored.
 */
static int snapshot_images(const struct worker_args *a, char *path, int *ret_fd,
			   struct ckpt_error *e)
{
	_cleanup_closedir_ DIR *dir = NULL;
	_cleanup_close_ int dfd = -1;
	struct dirent *de;
	size_t n = 0;
	int fd, r = 0;

	if (!mkdtemp(path))
		return ckpt_err_errno(e, -errno, "cannot create %s for a copy of the images", path);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* readable (ckpt-restore runs as the caller), writable by root only */
	if (dfd < 0 || fchmod(dfd, 0755) < 0) {
		r = ckpt_err_errno(e, -errno, "cannot open %s", path);
		rmdir(path);
		return r;
	}
	fd = openat(a->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		r = ckpt_err_errno(e, -errno, "cannot read the image directory");
		if (fd >= 0)
			close(fd);
	}
	while (r == 0 && (de = readdir(dir))) {
		size_t len = strlen(de->d_name);

		if (len < 5 || strcmp(de->d_name + len - 4, ".img"))
			continue;
		if (++n > SNAPSHOT_FILES_MAX)
			r = ckpt_err(e, -E2BIG, "the image directory has too many files");
		else
			r = snapshot_one(a, dfd, de->d_name, e);
	}
	if (r < 0) {
		snapshot_remove(path, dfd);
		return r;
	}
	*ret_fd = TAKE_FD(dfd);
	return 0;
}

static bool pid_is_zombie(pid_t pid)
{
	char path[64], buf[512], *paren;
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
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
			if (ckpt_monotonic_seconds() > deadline || !pid_is_zombie(pe->pid))
				break;
			usleep(20000);
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

int worker_restore(const struct worker_args *a)
{
	struct sigaction sa = {.sa_handler = on_sigterm, .sa_flags = SA_RESTART};
	_cleanup_close_ int log_fd = -1, snap_fd = -1;
	struct worker_args b = *a;
	struct ckpt_error err = {0};
	Inventory *inv = NULL;
	char out[4096], msg[CKPT_ERROR_MAX], snap[] = SNAPSHOT_TEMPLATE;
	long long pid = 0, ntasks = 0;
	int r = 0;

	/* SIGTERM (RPC_CANCEL, the client gone) is passed on to ckpt-restore,
	 * which rolls back: no task of the tree is left */
	sigaction(SIGTERM, &sa, NULL);
	log_fd = create_owned(a, "restore.log");
	if (log_fd < 0)
		log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (!auth_is_root(a->caller)) {
		r = snapshot_images(a, snap, &snap_fd, &err);
		b.dir_fd = snap_fd;
	}
	if (r == 0)
		r = img_dir_verify_fd(b.dir_fd, "the image directory", &inv, &err);
	if (r == 0) {
		inventory__free_unpacked(inv, NULL);
		r = auth_check_images(a->caller, b.dir_fd, &err);
	}
	if (r == 0)
		r = ckpt_fault_inject("ckptd-worker", &err);
	if (r == 0)
		wait_for_zombie_pids(b.dir_fd);
	if (r == 0 && worker_cancelled)
		r = ckpt_err(&err, -ECANCELED, "restore cancelled before ckpt-restore ran");
	if (r == 0)
		r = run_restorer(&b, log_fd, out, sizeof(out), &err);
	if (snap_fd >= 0)
		snapshot_remove(snap, snap_fd);
	if (r == 0 && strstr(out, "\"status\":\"ok\"")) {
		pid = json_number(out, "root_pid");
		ntasks = json_number(out, "tasks");
	} else if (r == 0) {
		json_error(out, msg, sizeof(msg));
		r = ckpt_err(&err, worker_cancelled ? -ECANCELED : -EIO, "%s",
			     msg[0] ? msg : "ckpt-restore failed (see restore.log)");
	}
	if (r < 0)
		dprintf(log_fd, "ckptd: job %llu: restore failed: %s\n",
			(unsigned long long)a->job_id, err.msg);
	report_result(a, r, pid > 0 ? (pid_t)pid : 0, ntasks > 0 ? (unsigned)ntasks : 0, 0, 0,
		      r < 0 ? err.msg : NULL);
	return r < 0 ? 1 : 0;
}
