// SPDX-License-Identifier: MIT
/*
 * ckptctl in daemon mode: dump, restore and ps as requests to ckptd over
 * its unix socket (lib/rpc.h). The image directory is opened here, with the
 * caller's own rights, and passed as an fd; the daemon decides from our
 * credentials what we may do. Output matches the in-process commands.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "ckptctl.h"
#include "dump.h"
#include "image.h"
#include "restorer_io.h"
#include "rpc.h"

int cli_daemon_connect(const struct cli_common *c, const char *cmd, int *ret_fd)
{
	const char *env = getenv("CKPT_SOCKET");
	const char *path = c->socket ? c->socket : env && *env ? env : CKPT_SOCKET_DEFAULT;
	bool explicit = c->socket || (env && *env);
	struct ckpt_error e = {0};

	if (rpc_connect(path, ret_fd, &e) == 0)
		return 1;
	if (!explicit && geteuid() == 0)
		return 0; /* trying ckpt needs no service: run the engine here */
	fprintf(stderr, "ckptctl %s: %s%s\n", cmd, e.msg,
		explicit ? "" : " (only root can run dump and restore without ckptd)");
	if (c->json) {
		printf("{\"status\":\"error\",\"error\":");
		img_json_string(stdout, e.msg);
		printf("}\n");
	}
	return -1;
}

static void print_error_json(const char *msg)
{
	printf("{\"status\":\"error\",\"error\":");
	img_json_string(stdout, msg);
	printf("}\n");
}

static void show_progress(const Progress *p, const struct cli_common *c, bool bar, const char *what)
{
	char size[32];

	if (c->json) {
		printf("{\"progress\":{\"job_id\":%llu,\"bytes\":%llu,\"tasks_done\":%u,"
		       "\"tasks_total\":%u}}\n",
		       (unsigned long long)p->job_id, (unsigned long long)p->bytes, p->tasks_done,
		       p->tasks_total);
		fflush(stdout);
	} else if (bar) {
		fprintf(stderr, "\r%s: %u/%u tasks, %s of memory   ", what, p->tasks_done,
			p->tasks_total, format_bytes(p->bytes, size, sizeof(size)));
		fflush(stderr);
	}
}

/*
 * ckptd went away without an answer: wait until its worker let go of the
 * directory and tell the truth from what is there (rpc_settle_lost()): a
 * complete checkpoint, or a restore whose commit record (commit_fd, our
 * memfd, written by ckpt-restore before the tree ran) says committed,
 * becomes an answer of our own.
 */
static int settle_lost(int dir_fd, int commit_fd, RpcType type, Response **ret,
		       struct ckpt_error *e)
{
	int r = rpc_settle_lost(dir_fd, commit_fd, type, RPC_SETTLE_TIMEOUT, ret, e);

	if (r == 0)
		fprintf(stderr, "ckptctl: ckptd went away, but the %s\n",
			type == RPC_TYPE__RPC_RESTORE ? "restore was committed: the tree runs"
						      : "checkpoint was complete");
	return r;
}

/* Send req with dir_fd (and commit_fd), show progress, return the final response. */
static int transact(int sock, const Request *req, int dir_fd, int commit_fd,
		    const struct cli_common *c, bool bar, Response **ret, struct ckpt_error *e)
{
	const char *what = req->type == RPC_TYPE__RPC_RESTORE ? "restoring" : "dumping";
	int fds[2] = {dir_fd, commit_fd};
	int r = rpc_send_fds(sock, &req->base, fds, 2, e);

	if (r < 0)
		return r;
	for (;;) {
		Response *resp = NULL;

		r = rpc_recv_response(sock, &resp, NULL, e);
		if (r == -ECONNRESET && dir_fd >= 0)
			return settle_lost(dir_fd, commit_fd, req->type, ret, e);
		if (r < 0)
			return r == -ECONNRESET ? ckpt_err(e, r,
							   "ckptd closed the connection "
							   "without an answer")
						: r;
		if (!resp->progress) {
			*ret = resp;
			return 0;
		}
		show_progress(resp->progress, c, bar, what);
		rpc_response_free(resp);
	}
}

/* The directory must not exist or be empty, as in process; we create it. */
static int open_dump_dir(const char *dir, bool *ret_created)
{
	int fd;

	*ret_created = false;
	/* 0700: the images hold the tree's memory, secrets included */
	if (mkdir(dir, 0700) == 0)
		*ret_created = true;
	else if (errno != EEXIST)
		return -errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;

		if (*ret_created)
			rmdir(dir);
		return r;
	}
	return fd;
}

/*
 * The dump request itself, nothing printed: the result in *ret (ntasks,
 * bytes, seconds), or the error in e. The directory is created here (0700)
 * and removed again if ckptd refused before writing into it.
 */
int daemon_dump_quiet(int sock, const struct dump_opts *o, const struct cli_common *c,
		      struct daemon_result *ret, struct ckpt_error *e)
{
	_cleanup_(rpc_response_freep) Response *resp = NULL;
	_cleanup_close_ int s = sock, dir_fd = -1;
	Request req = REQUEST__INIT;
	DumpRequest dr = DUMP_REQUEST__INIT;
	bool created = false, bar = !c->json && isatty(STDERR_FILENO) && c->verbose == 0;
	int r;

	dir_fd = open_dump_dir(o->dir, &created);
	if (dir_fd < 0) {
		r = ckpt_err_errno(e, dir_fd, "cannot create or open %s", o->dir);
		goto fail;
	}
	dr.pid = o->pid;
	dr.has_leave_running = true;
	dr.leave_running = o->leave_running;
	dr.has_shell_job = o->shell_job;
	dr.shell_job = o->shell_job;
	dr.n_external = o->n_external;
	dr.external = (char **)o->external;
	dr.has_tcp_close = o->tcp_close;
	dr.tcp_close = o->tcp_close;
	dr.has_pre_dump = o->pre_dump;
	dr.pre_dump = o->pre_dump;
	dr.parent = (char *)o->parent;
	req.version = RPC_PROTOCOL_VERSION;
	req.type = RPC_TYPE__RPC_DUMP;
	req.dump = &dr;
	req.has_want_progress = true;
	req.want_progress = bar || c->json;
	r = transact(s, &req, dir_fd, -1, c, bar, &resp, e);
	if (bar)
		fprintf(stderr, "\r\033[K");
	if (r == 0 && resp->status < 0)
		r = ckpt_err(e, resp->status, "%s", resp->error ? resp->error : "ckptd failed");
	if (r < 0)
		goto fail;
	ret->ntasks = resp->ntasks;
	ret->pid = resp->job ? resp->job->pid : 0;
	ret->bytes = resp->job ? resp->job->bytes : 0;
	ret->images_bytes = resp->images_bytes;
	ret->seconds = resp->job ? resp->job->seconds : 0.0;
	ret->job_id = resp->job ? resp->job->job_id : 0;
	return 0;
fail:
	/* refused before the worker ran: nothing in it, remove what we made */
	if (created && rmdir(o->dir) < 0 && errno == ENOTEMPTY && dir_fd >= 0 &&
	    faccessat(dir_fd, "dump.log", F_OK, 0) == 0)
		fprintf(stderr, "ckptctl: the log of the failed dump is %s/dump.log\n", o->dir);
	return r;
}

int daemon_dump(int sock, const struct dump_opts *o, const struct cli_common *c)
{
	struct daemon_result res = {0};
	struct ckpt_error e = {0};
	char size[32];

	if (daemon_dump_quiet(sock, o, c, &res, &e) < 0) {
		fprintf(stderr, "ckptctl: dump of pid %d failed: %s\n", o->pid, e.msg);
		if (c->json) {
			printf("{\"status\":\"error\",\"pid\":%d,\"error\":", o->pid);
			img_json_string(stdout, e.msg);
			printf("}\n");
		}
		return 1;
	}
	if (c->json) {
		printf("{\"status\":\"ok\",\"pid\":%d,\"dir\":", o->pid);
		img_json_string(stdout, o->dir);
		printf(",\"tasks\":%u,\"pages_bytes\":%llu,\"images_bytes\":%llu,"
		       "\"seconds\":%.3f,\"job_id\":%llu}\n",
		       res.ntasks, (unsigned long long)res.bytes,
		       (unsigned long long)res.images_bytes, res.seconds,
		       (unsigned long long)res.job_id);
		return 0;
	}
	printf("dumped %u task%s, %s of memory to %s in %.2f s%s (ckptd job %llu)\n", res.ntasks,
	       res.ntasks == 1 ? "" : "s", format_bytes(res.bytes, size, sizeof(size)), o->dir,
	       res.seconds, o->leave_running ? " (left running)" : "",
	       (unsigned long long)res.job_id);
	return 0;
}

int daemon_restore_quiet(int sock, const char *dir, const char *cgroups, const struct cli_common *c,
			 bool new_pidns, bool continue_clocks, bool lazy, struct daemon_result *ret,
			 struct ckpt_error *e)
{
	_cleanup_(rpc_response_freep) Response *resp = NULL;
	_cleanup_close_ int s = sock, dir_fd = -1, commit_fd = -1;
	Request req = REQUEST__INIT;
	RestoreRequest rr = RESTORE_REQUEST__INIT;
	bool bar = !c->json && isatty(STDERR_FILENO) && c->verbose == 0;
	int r;

	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open %s", dir);
	/* where ckpt-restore writes that it committed: the truth when ckptd
	 * goes away before it answers (settle_lost) */
	commit_fd = memfd_create("ckpt-commit", MFD_CLOEXEC);
	if (commit_fd < 0)
		return ckpt_err_errno(e, -errno, "memfd_create for the commit record");
	rr.has_commit_fd = rr.commit_fd = true;
	req.version = RPC_PROTOCOL_VERSION;
	req.type = RPC_TYPE__RPC_RESTORE;
	rr.cgroups = (char *)cgroups;
	req.restore = &rr;
	rr.has_new_pidns = new_pidns;
	rr.new_pidns = new_pidns;
	rr.has_continue_clocks = continue_clocks;
	rr.continue_clocks = continue_clocks;
	rr.has_lazy = lazy;
	rr.lazy = lazy;
	req.has_want_progress = true;
	req.want_progress = bar || c->json;
	r = transact(s, &req, dir_fd, commit_fd, c, bar, &resp, e);
	if (bar)
		fprintf(stderr, "\r\033[K");
	if (r == 0 && resp->status < 0)
		r = ckpt_err(e, resp->status, "%s", resp->error ? resp->error : "ckptd failed");
	if (r < 0)
		return r;
	ret->ntasks = resp->ntasks;
	ret->pid = resp->job ? resp->job->pid : 0;
	ret->bytes = resp->job ? resp->job->bytes : 0;
	ret->images_bytes = 0;
	ret->seconds = resp->job ? resp->job->seconds : 0.0;
	ret->job_id = resp->job ? resp->job->job_id : 0;
	ret->pager_pid = resp->job && resp->job->has_pager_pid ? resp->job->pager_pid : 0;
	return 0;
}

int daemon_restore(int sock, const char *dir, const char *cgroups, const struct cli_common *c,
		   bool new_pidns, bool continue_clocks, bool lazy)
{
	struct daemon_result res = {0};
	struct ckpt_error e = {0};

	if (daemon_restore_quiet(sock, dir, cgroups, c, new_pidns, continue_clocks, lazy, &res,
				 &e) < 0) {
		fprintf(stderr, "ckptctl: restore from %s failed: %s\n", dir, e.msg);
		if (c->json)
			print_error_json(e.msg);
		return 1;
	}
	if (c->json && res.pager_pid)
		printf("{\"status\":\"ok\",\"root_pid\":%d,\"tasks\":%u,\"seconds\":%.3f,"
		       "\"job_id\":%llu,\"pager_pid\":%d}\n",
		       res.pid, res.ntasks, res.seconds, (unsigned long long)res.job_id,
		       res.pager_pid);
	else if (c->json)
		printf("{\"status\":\"ok\",\"root_pid\":%d,\"tasks\":%u,\"seconds\":%.3f,"
		       "\"job_id\":%llu}\n",
		       res.pid, res.ntasks, res.seconds, (unsigned long long)res.job_id);
	else
		printf("restored pid %d (%u task%s) in %.2f s\n", res.pid, res.ntasks,
		       res.ntasks == 1 ? "" : "s", res.seconds);
	if (!c->json && res.pager_pid)
		printf("its memory comes in lazily: pager pid %d (ckptd job %llu; keep %s until "
		       "ckptctl ps shows it done)\n",
		       res.pager_pid, (unsigned long long)res.job_id, dir);
	return 0;
}

/* --- ps ------------------------------------------------------------------------------ */

static void usage_ps(FILE *out)
{
	fprintf(out, "usage: ckptctl ps [--json] [-v]\n"
		     "\n"
		     "List the jobs of ckptd: those running and the recent ones, with state,\n"
		     "size and duration (root sees every user's jobs, others their own).\n"
		     "\n"
		     "      --json     one JSON object per job on stdout\n");
}

static void ps_print(const JobInfo *j, bool json)
{
	char size[32], when[32] = "-";
	time_t t = (time_t)(j->started_unix_ms / 1000);
	struct tm tm;

	if (json) {
		printf("{\"job_id\":%llu,\"type\":\"%s\",\"state\":\"%s\",\"pid\":%d,\"uid\":%u,"
		       "\"bytes\":%llu,\"tasks_done\":%u,\"tasks_total\":%u,\"seconds\":%.3f,"
		       "\"started_unix_ms\":%llu,\"error\":",
		       (unsigned long long)j->job_id, rpc_type_name(j->type),
		       rpc_job_state_name(j->state), j->pid, j->uid, (unsigned long long)j->bytes,
		       j->tasks_done, j->tasks_total, j->seconds,
		       (unsigned long long)j->started_unix_ms);
		if (j->error)
			img_json_string(stdout, j->error);
		else
			printf("null");
		if (j->has_pager_pid)
			printf(",\"pager_pid\":%d,\"pager_running\":%s", j->pager_pid,
			       j->pager_running ? "true" : "false");
		printf("}\n");
		return;
	}
	if (localtime_r(&t, &tm))
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
	printf("%6llu  %-8s %-10s %7d %6u %5u/%-5u %10s %8.2f  %s%s%s",
	       (unsigned long long)j->job_id, rpc_type_name(j->type), rpc_job_state_name(j->state),
	       j->pid, j->uid, j->tasks_done, j->tasks_total,
	       format_bytes(j->bytes, size, sizeof(size)), j->seconds, when, j->error ? "  " : "",
	       j->error ? j->error : "");
	/* restore --lazy: the images must stay until the pager is done */
	if (j->has_pager_pid)
		printf("  pager %d %s", j->pager_pid,
		       j->pager_running ? "running (images in use)" : "done");
	printf("\n");
}

int cmd_ps(int argc, char **argv, struct cli_common *c)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'J'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	_cleanup_(rpc_response_freep) Response *resp = NULL;
	_cleanup_close_ int sock = -1;
	Request req = REQUEST__INIT;
	struct ckpt_error e = {0};
	struct cli_common explicit = *c;
	int opt, ex, r;

	while ((opt = cli_getopt(argc, argv, ":vh", longopts, c, usage_ps, &ex)) != -1)
		if (opt == -2)
			return ex;
	if (optind < argc)
		return cli_usage_error("ps", "unexpected argument '%s'", argv[optind]);
	explicit.json = c->json;
	/* there is no in-process ps: the jobs live in the daemon */
	if (!explicit.socket && !(getenv("CKPT_SOCKET") && *getenv("CKPT_SOCKET")))
		explicit.socket = CKPT_SOCKET_DEFAULT;
	r = cli_daemon_connect(&explicit, "ps", &sock);
	if (r <= 0)
		return 1;
	req.version = RPC_PROTOCOL_VERSION;
	req.type = RPC_TYPE__RPC_STATUS;
	r = transact(sock, &req, -1, -1, c, false, &resp, &e);
	if (r == 0 && resp->status < 0)
		r = ckpt_err(&e, resp->status, "%s", resp->error ? resp->error : "ckptd failed");
	if (r < 0) {
		fprintf(stderr, "ckptctl ps: %s\n", e.msg);
		if (c->json)
			print_error_json(e.msg);
		return 1;
	}
	if (!c->json)
		printf("%6s  %-8s %-10s %7s %6s %11s %10s %8s  %s\n", "JOB", "TYPE", "STATE", "PID",
		       "UID", "TASKS", "MEMORY", "SECONDS", "STARTED");
	for (size_t i = 0; i < resp->n_jobs; i++)
		ps_print(resp->jobs[i], c->json);
	return 0;
}

/* --- cancel ---------------------------------------------------------------------------- */

static void usage_cancel(FILE *out)
{
	fprintf(out, "usage: ckptctl cancel JOB [--json] [-v]\n"
		     "\n"
		     "Cancel a running dump or restore of ckptd (JOB as `ckptctl ps` shows it).\n"
		     "A dump rolls back and the tree keeps running as it was; a restore rolls\n"
		     "back and no task of the tree is left. The images are untouched.\n");
}

int cmd_cancel(int argc, char **argv, struct cli_common *c)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'J'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	_cleanup_(rpc_response_freep) Response *resp = NULL;
	_cleanup_close_ int sock = -1;
	Request req = REQUEST__INIT;
	CancelRequest cr = CANCEL_REQUEST__INIT;
	struct ckpt_error e = {0};
	struct cli_common explicit = *c;
	unsigned long long id;
	char *end;
	int opt, ex, r;

	while ((opt = cli_getopt(argc, argv, ":vh", longopts, c, usage_cancel, &ex)) != -1)
		if (opt == -2)
			return ex;
	if (optind >= argc)
		return cli_usage_error("cancel", "missing JOB");
	errno = 0;
	id = strtoull(argv[optind], &end, 10);
	if (errno || *end || id == 0 || argv[optind][0] == '-')
		return cli_usage_error("cancel", "'%s' is not a job number", argv[optind]);
	if (optind + 1 < argc)
		return cli_usage_error("cancel", "unexpected argument '%s'", argv[optind + 1]);
	explicit.json = c->json;
	if (!explicit.socket && !(getenv("CKPT_SOCKET") && *getenv("CKPT_SOCKET")))
		explicit.socket = CKPT_SOCKET_DEFAULT;
	r = cli_daemon_connect(&explicit, "cancel", &sock);
	if (r <= 0)
		return 1;
	cr.job_id = id;
	req.version = RPC_PROTOCOL_VERSION;
	req.type = RPC_TYPE__RPC_CANCEL;
	req.cancel = &cr;
	r = transact(sock, &req, -1, -1, c, false, &resp, &e);
	if (r == 0 && resp->status < 0)
		r = ckpt_err(&e, resp->status, "%s", resp->error ? resp->error : "ckptd failed");
	if (r < 0) {
		fprintf(stderr, "ckptctl cancel: %s\n", e.msg);
		if (c->json)
			print_error_json(e.msg);
		return 1;
	}
	if (c->json)
		printf("{\"status\":\"ok\",\"job_id\":%llu}\n", id);
	else
		printf("job %llu: cancel requested\n", id);
	return 0;
}
