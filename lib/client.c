/* SPDX-License-Identifier: MIT */
/*
 * libckpt, the public client API (include/ckpt/ckpt.h): one connection to
 * ckptd per call, one request, progress reports, one final answer. Built
 * into libckpt.so (only the ckpt_* functions are exported) and into
 * ckpt-core, so that ckptctl and the unit tests can use it too.
 */
#define LOG_PREFIX "client: "

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/ckpt.h"
#include "cleanup.h"
#include "log.h"
#include "rpc.h"

_Static_assert(CKPT_ERROR_LEN == CKPT_ERROR_MAX, "ckpt_result.error holds a ckpt_error message");
_Static_assert((int)CKPT_JOB_DUMP == RPC_TYPE__RPC_DUMP, "job types are RpcType values");
_Static_assert((int)CKPT_JOB_RESTORE == RPC_TYPE__RPC_RESTORE, "job types are RpcType values");
_Static_assert((int)CKPT_JOB_CANCELLED == JOB_STATE__JOB_CANCELLED, "job states are JobState");

struct call {
	const char *socket;
	Request *req;
	int fd; /* image directory or -1; the caller keeps it */
	int commit_fd; /* restore: its commit record (a memfd) or -1 */
	ckpt_progress_fn progress;
	void *progress_data;
};

static const char *socket_path(const char *s)
{
	const char *env;

	if (s && *s)
		return s;
	env = secure_getenv("CKPT_SOCKET");
	return env && *env ? env : CKPT_SOCKET_DEFAULT;
}

static int result_fail(struct ckpt_result *res, const struct ckpt_error *e)
{
	res->status = e->code < 0 ? e->code : -EIO;
	snprintf(res->error, sizeof(res->error), "%s", e->msg);
	return res->status;
}

static void report_progress(const struct call *c, const Progress *p)
{
	struct ckpt_progress cp = {
	    .job_id = p->job_id,
	    .bytes = p->bytes,
	    .tasks_done = p->tasks_done,
	    .tasks_total = p->tasks_total,
	};

	if (c->progress)
		c->progress(&cp, c->progress_data);
}

/* Read responses until the final one (the one without a progress field). */
static int wait_final(int sock, const struct call *c, Response **ret, struct ckpt_error *e)
{
	for (;;) {
		_cleanup_(rpc_response_freep) Response *resp = NULL;
		int r = rpc_recv_response(sock, &resp, NULL, e);

		if (r == -ECONNRESET)
			return ckpt_err(e, -ECONNRESET,
					"ckptd closed the connection before answering the %s "
					"request (see its log)",
					rpc_type_name(c->req->type));
		if (r < 0)
			return ckpt_err_wrap(e, "waiting for ckptd's answer");
		if (resp->version != RPC_PROTOCOL_VERSION)
			return ckpt_err(e, -EPROTONOSUPPORT,
					"ckptd answered with protocol version %u, this libckpt "
					"speaks version %d",
					resp->version, RPC_PROTOCOL_VERSION);
		if (!resp->progress) {
			*ret = TAKE_PTR(resp);
			return 0;
		}
		report_progress(c, resp->progress);
	}
}

/*
 * Send c->req to ckptd and wait for its final answer. A refusal or failure
 * reported by the daemon (status < 0) becomes the error, with its message.
 */
static int call_daemon(const struct call *c, Response **ret, struct ckpt_error *e)
{
	_cleanup_(rpc_response_freep) Response *resp = NULL;
	_cleanup_close_ int sock = -1;
	const char *path = socket_path(c->socket);
	int r;

	r = rpc_connect(path, &sock, e);
	if (r < 0)
		return r;
	c->req->version = RPC_PROTOCOL_VERSION;
	c->req->has_want_progress = c->progress != NULL;
	c->req->want_progress = c->progress != NULL;
	r = rpc_send_fds(sock, &c->req->base, (int[2]){c->fd, c->commit_fd}, 2, e);
	if (r < 0)
		return ckpt_err_wrap(e, "ckptd at %s", path);
	r = wait_final(sock, c, &resp, e);
	/* ckptd went away: what is in the directory (a dump) or the commit
	 * record (a restore) says what happened, once its worker let go */
	if (r == -ECONNRESET && c->fd >= 0)
		r = rpc_settle_lost(c->fd, c->commit_fd, c->req->type, RPC_SETTLE_TIMEOUT, &resp,
				    e);
	if (r < 0)
		return r;
	if (resp->status < 0)
		return ckpt_err(e, resp->status, "%s",
				resp->error && *resp->error ? resp->error
							    : strerror(-resp->status));
	*ret = TAKE_PTR(resp);
	return 0;
}

static void fill_result(struct ckpt_result *res, const Response *resp)
{
	const JobInfo *j = resp->job;

	res->status = 0;
	res->error[0] = 0;
	if (j) {
		res->job_id = j->job_id;
		res->pid = j->has_pid ? j->pid : res->pid;
		res->bytes = j->bytes;
		res->ntasks = j->tasks_total;
		res->seconds = j->seconds;
		res->pager_pid = j->has_pager_pid ? j->pager_pid : 0;
	}
	if (resp->has_ntasks)
		res->ntasks = resp->ntasks;
	if (resp->has_images_bytes)
		res->bytes = resp->images_bytes;
}

/* The dump directory must be new or empty: never mix two checkpoints. */
static int check_empty_dir(int dirfd, const char *dir, struct ckpt_error *e)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		return ckpt_err_errno(e, -errno, "image directory %s: dup", dir);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return ckpt_err_errno(e, -errno, "image directory %s: reading", dir);
	}
	while ((errno = 0, de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			return ckpt_err(e, -ENOTEMPTY,
					"image directory %s is not empty (holds '%s'); give a new "
					"or empty directory",
					dir, de->d_name);
	if (errno)
		return ckpt_err_errno(e, -errno, "image directory %s: reading", dir);
	return 0;
}

/* *ret_created tells whether the directory was made here (and so may go). */
static int open_dump_dir(const char *dir, int *ret_fd, bool *ret_created, struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	bool created = true;
	int r;

	/* 0700: the images hold the tree's memory, secrets included */
	if (mkdir(dir, 0700) < 0) {
		if (errno != EEXIST)
			return ckpt_err_errno(e, -errno, "creating image directory %s", dir);
		created = false;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "opening image directory %s", dir);
	r = check_empty_dir(fd, dir, e);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	*ret_created = created;
	return 0;
}

int ckpt_dump(const struct ckpt_dump_opts *opts, struct ckpt_result *res)
{
	_cleanup_(rpc_response_freep) Response *resp = NULL;
	struct ckpt_result dummy;
	struct ckpt_error e = {};
	Request req = REQUEST__INIT;
	DumpRequest dump = DUMP_REQUEST__INIT;
	_cleanup_close_ int dirfd = -1;
	struct call c = {.req = &req, .commit_fd = -1};
	bool created = false;
	int r;

	res = res ? res : &dummy;
	memset(res, 0, sizeof(*res));
	if (!opts || opts->pid <= 0 || !opts->dir || !*opts->dir) {
		ckpt_err(&e, -EINVAL, "dump: give a pid > 0 (got %d) and an image directory",
			 opts ? opts->pid : 0);
		return result_fail(res, &e);
	}
	res->pid = opts->pid;
	r = open_dump_dir(opts->dir, &dirfd, &created, &e);
	if (r < 0)
		return result_fail(res, &e);
	req.type = RPC_TYPE__RPC_DUMP;
	dump.pid = opts->pid;
	dump.has_leave_running = true;
	dump.leave_running = opts->leave_running != 0;
	dump.has_shell_job = opts->shell_job != 0;
	dump.shell_job = opts->shell_job != 0;
	dump.n_external = opts->external ? opts->n_external : 0;
	dump.external = (char **)opts->external;
	dump.has_tcp_close = opts->tcp_close != 0;
	dump.tcp_close = opts->tcp_close != 0;
	dump.has_pre_dump = opts->pre_dump != 0;
	dump.pre_dump = opts->pre_dump != 0;
	dump.parent = (char *)opts->parent;
	req.dump = &dump;
	c.socket = opts->socket;
	c.fd = dirfd;
	c.progress = opts->progress;
	c.progress_data = opts->progress_data;
	r = call_daemon(&c, &resp, &e);
	if (r < 0) {
		/* a directory made for nothing goes; one holding ckptd's log stays */
		if (created)
			rmdir(opts->dir);
		return result_fail(res, &e);
	}
	fill_result(res, resp);
	return 0;
}

int ckpt_restore(const struct ckpt_restore_opts *opts, struct ckpt_result *res)
{
	_cleanup_(rpc_response_freep) Response *resp = NULL;
	struct ckpt_result dummy;
	struct ckpt_error e = {};
	Request req = REQUEST__INIT;
	RestoreRequest restore = RESTORE_REQUEST__INIT;
	_cleanup_close_ int dirfd = -1, commit_fd = -1;
	struct call c = {.req = &req, .commit_fd = -1};
	int r;

	res = res ? res : &dummy;
	memset(res, 0, sizeof(*res));
	if (!opts || !opts->dir || !*opts->dir) {
		ckpt_err(&e, -EINVAL, "restore: give an image directory");
		return result_fail(res, &e);
	}
	commit_fd = memfd_create("ckpt-commit", MFD_CLOEXEC);
	if (commit_fd < 0) {
		ckpt_err_errno(&e, -errno, "memfd for the restore's commit record");
		return result_fail(res, &e);
	}
	dirfd = open(opts->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		ckpt_err_errno(&e, -errno, "opening image directory %s", opts->dir);
		return result_fail(res, &e);
	}
	req.type = RPC_TYPE__RPC_RESTORE;
	restore.has_shell_job = opts->shell_job != 0;
	restore.shell_job = opts->shell_job != 0;
	restore.has_new_pidns = opts->new_pidns != 0;
	restore.new_pidns = opts->new_pidns != 0;
	restore.has_continue_clocks = opts->continue_clocks != 0;
	restore.continue_clocks = opts->continue_clocks != 0;
	restore.has_lazy = opts->lazy != 0;
	restore.lazy = opts->lazy != 0;
	restore.cgroups = (char *)opts->cgroups;
	restore.has_commit_fd = restore.commit_fd = true;
	req.restore = &restore;
	c.socket = opts->socket;
	c.fd = dirfd;
	c.commit_fd = commit_fd;
	c.progress = opts->progress;
	c.progress_data = opts->progress_data;
	r = call_daemon(&c, &resp, &e);
	if (r < 0)
		return result_fail(res, &e);
	fill_result(res, resp);
	return 0;
}

static int job_from_info(struct ckpt_job *j, const JobInfo *ji)
{
	*j = (struct ckpt_job){
	    .job_id = ji->job_id,
	    .type = ji->type,
	    .state = ji->state,
	    .pid = ji->pid,
	    .uid = ji->uid,
	    .bytes = ji->bytes,
	    .tasks_done = ji->tasks_done,
	    .tasks_total = ji->tasks_total,
	    .seconds = ji->seconds,
	    .started_unix_ms = ji->started_unix_ms,
	    .pager_pid = ji->has_pager_pid ? ji->pager_pid : 0,
	    .pager_running = ji->has_pager_running && ji->pager_running,
	};
	if (ji->error) {
		j->error = strdup(ji->error);
		if (!j->error)
			return -ENOMEM;
	}
	return 0;
}

void ckpt_jobs_free(struct ckpt_job *jobs, size_t n)
{
	if (!jobs)
		return;
	for (size_t i = 0; i < n; i++)
		free(jobs[i].error);
	free(jobs);
}

int ckpt_job_status(const char *socket, struct ckpt_job **ret_jobs, size_t *ret_n,
		    struct ckpt_result *res)
{
	_cleanup_(rpc_response_freep) Response *resp = NULL;
	struct ckpt_job *jobs = NULL;
	struct ckpt_result dummy;
	struct ckpt_error e = {};
	Request req = REQUEST__INIT;
	struct call c = {.socket = socket, .req = &req, .fd = -1, .commit_fd = -1};
	int r;

	res = res ? res : &dummy;
	memset(res, 0, sizeof(*res));
	req.type = RPC_TYPE__RPC_STATUS;
	r = call_daemon(&c, &resp, &e);
	if (r < 0)
		return result_fail(res, &e);
	if (resp->n_jobs) {
		jobs = calloc(resp->n_jobs, sizeof(*jobs));
		if (!jobs) {
			ckpt_err(&e, -ENOMEM, "out of memory for %zu jobs", resp->n_jobs);
			return result_fail(res, &e);
		}
	}
	for (size_t i = 0; i < resp->n_jobs; i++) {
		if (job_from_info(&jobs[i], resp->jobs[i]) < 0) {
			ckpt_jobs_free(jobs, i + 1);
			ckpt_err(&e, -ENOMEM, "out of memory for job errors");
			return result_fail(res, &e);
		}
	}
	*ret_jobs = jobs;
	*ret_n = resp->n_jobs;
	return 0;
}

int ckpt_cancel(const char *socket, uint64_t job_id, struct ckpt_result *res)
{
	_cleanup_(rpc_response_freep) Response *resp = NULL;
	struct ckpt_result dummy;
	struct ckpt_error e = {};
	Request req = REQUEST__INIT;
	CancelRequest cancel = CANCEL_REQUEST__INIT;
	struct call c = {.socket = socket, .req = &req, .fd = -1, .commit_fd = -1};
	int r;

	res = res ? res : &dummy;
	memset(res, 0, sizeof(*res));
	res->job_id = job_id;
	req.type = RPC_TYPE__RPC_CANCEL;
	cancel.job_id = job_id;
	req.cancel = &cancel;
	r = call_daemon(&c, &resp, &e);
	if (r < 0)
		return result_fail(res, &e);
	fill_result(res, resp);
	return 0;
}

int ckpt_daemon_version(const char *socket, char *buf, size_t len, struct ckpt_result *res)
{
	_cleanup_(rpc_response_freep) Response *resp = NULL;
	struct ckpt_result dummy;
	struct ckpt_error e = {};
	Request req = REQUEST__INIT;
	struct call c = {.socket = socket, .req = &req, .fd = -1, .commit_fd = -1};
	int r;

	res = res ? res : &dummy;
	memset(res, 0, sizeof(*res));
	req.type = RPC_TYPE__RPC_VERSION;
	r = call_daemon(&c, &resp, &e);
	if (r < 0)
		return result_fail(res, &e);
	if (buf && len)
		snprintf(buf, len, "%s", resp->daemon_version ? resp->daemon_version : "");
	return 0;
}

const char *ckpt_job_type_name(int type)
{
	return rpc_type_name(type);
}

const char *ckpt_job_state_name(int state)
{
	return rpc_job_state_name(state);
}
