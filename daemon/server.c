// SPDX-License-Identifier: MIT
/*
 * The ckptd main loop: one poll() over the listening socket, a signalfd
 * (SIGCHLD, SIGTERM, SIGINT), every open connection and the report pipe of
 * every running worker. Nothing here blocks on a client: connections are
 * non-blocking, a silent one is closed after idle_timeout, and when the
 * connection table is full the oldest idle connection makes room, so a
 * flood of connections cannot lock out a real request.
 */
#define LOG_PREFIX "ckptd: "

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5; not in Debian 12's headers */
#endif
#include "auth.h"
#include "caller_fs.h"
#include "cleanup.h"
#include "clock.h"
#include "log.h"
#include "rpc.h"
#include "server.h"
#include "worker.h"

#define CONNS_DEFAULT 64
#define JOBS_DEFAULT 16
#define IDLE_TIMEOUT_DEFAULT 10
#define JOB_SLOTS 128 /* running and recent jobs kept for `ckptctl ps` */
#define SEND_TIMEOUT_MS 500

struct conn;

struct job {
	uint64_t id; /* 0: free slot */
	RpcType type;
	JobState state;
	pid_t pid; /* dumped root, or restored root */
	uid_t uid;
	pid_t worker;	   /* 0 once reaped */
	int report_fd;	   /* read end of the worker's pipe, -1 when closed */
	struct conn *conn; /* who waits for the answer; NULL if gone */
	dev_t dev;	   /* restore: the image directory, for "busy" */
	ino_t ino;
	int dir_fd;		   /* the directory the client sent, -1 once settled */
	int log_fd;		   /* dump: the engine's log (memfd shared with the worker) */
	struct auth_caller caller; /* who asked: what is left is settled as them */
	bool want_progress, cancelled, has_result;
	int status;
	uint64_t bytes, images_bytes;
	unsigned tasks_done, tasks_total;
	double t_start, seconds;
	uint64_t started_unix_ms;
	char error[1024];
};

struct conn {
	int fd; /* -1: free slot */
	struct auth_caller caller;
	double t_last; /* accept or last answer: for the idle timeout */
	struct job *job;
};

struct server {
	const struct server_opts *o;
	int listen_fd, sig_fd;
	struct conn *conns;
	size_t nconns;
	struct job jobs[JOB_SLOTS];
	uint64_t next_id;
	bool stopping;
};

static uint64_t now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- sending ---------------------------------------------------------------- */

/* The final answer: wait a bounded time for room if the client reads slowly. */
static void send_final(struct conn *c, const Response *resp)
{
	struct ckpt_error e = {0};
	int r = rpc_send(c->fd, &resp->base, -1, &e);

	if (r == -EAGAIN) {
		struct pollfd p = {.fd = c->fd, .events = POLLOUT};

		if (poll(&p, 1, SEND_TIMEOUT_MS) == 1)
			r = rpc_send(c->fd, &resp->base, -1, &e);
	}
	if (r < 0) {
		/* a client that does not read its answers is hung up on; the
		 * loop closes the connection when poll reports it */
		pr_debug("answer to pid %d not sent: %s", (int)c->caller.pid, e.msg);
		shutdown(c->fd, SHUT_RDWR);
	}
}

static void send_error(struct conn *c, int status, const char *msg)
{
	Response resp = RESPONSE__INIT;

	resp.version = RPC_PROTOCOL_VERSION;
	resp.status = status;
	resp.error = (char *)msg;
	send_final(c, &resp);
}

static void job_info(const struct job *j, JobInfo *ji)
{
	job_info__init(ji);
	ji->job_id = j->id;
	ji->type = j->type;
	ji->state = j->state;
	ji->has_pid = j->pid > 0;
	ji->pid = j->pid;
	ji->has_uid = true;
	ji->uid = j->uid;
	ji->has_bytes = true;
	ji->bytes = j->bytes;
	ji->has_tasks_done = true;
	ji->tasks_done = j->tasks_done;
	ji->has_tasks_total = true;
	ji->tasks_total = j->tasks_total;
	ji->has_seconds = true;
	ji->seconds =
	    j->state == JOB_STATE__JOB_RUNNING ? ckpt_monotonic_seconds() - j->t_start : j->seconds;
	ji->has_started_unix_ms = true;
	ji->started_unix_ms = j->started_unix_ms;
	if (j->error[0])
		ji->error = (char *)j->error;
}

/* --- connections ---------------------------------------------------------- */

static void conn_close(struct conn *c)
{
	if (c->fd < 0)
		return;
	if (c->job)
		c->job->conn = NULL;
	c->job = NULL;
	close(c->fd);
	c->fd = -1;
}

/* A free slot; if none, the connection idle the longest (no job) is closed. */
static struct conn *conn_slot(struct server *s)
{
	struct conn *oldest = NULL;

	for (size_t i = 0; i < s->nconns; i++) {
		struct conn *c = &s->conns[i];

		if (c->fd < 0)
			return c;
		if (!c->job && (!oldest || c->t_last < oldest->t_last))
			oldest = c;
	}
	if (oldest) {
		pr_debug("connection table full: closing the idle connection of pid %d",
			 (int)oldest->caller.pid);
		conn_close(oldest);
	}
	return oldest;
}

static void accept_all(struct server *s)
{
	for (;;) {
		struct ckpt_error e = {0};
		struct conn *c;
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				pr_warn("accept: %m");
			return;
		}
		c = conn_slot(s);
		if (!c) {
			/* every connection waits for a job: refuse, do not queue */
			Response resp = RESPONSE__INIT;

			resp.version = RPC_PROTOCOL_VERSION;
			resp.status = -EAGAIN;
			resp.error = "ckptd is busy: too many connections with jobs running";
			rpc_send(fd, &resp.base, -1, &e);
			close(fd);
			continue;
		}
		if (auth_from_socket(fd, &c->caller, &e) < 0) {
			pr_warn("%s", e.msg);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->job = NULL;
		c->t_last = ckpt_monotonic_seconds();
	}
}

/* --- jobs ------------------------------------------------------------------- */

static unsigned running_jobs(const struct server *s)
{
	unsigned n = 0;

	for (size_t i = 0; i < JOB_SLOTS; i++)
		n += s->jobs[i].id && s->jobs[i].state == JOB_STATE__JOB_RUNNING;
	return n;
}

static unsigned running_jobs_of(const struct server *s, uid_t uid)
{
	unsigned n = 0;

	for (size_t i = 0; i < JOB_SLOTS; i++)
		n += s->jobs[i].id && s->jobs[i].state == JOB_STATE__JOB_RUNNING &&
		     s->jobs[i].uid == uid;
	return n;
}

static void job_close_fds(struct job *j)
{
	if (j->dir_fd >= 0)
		close(j->dir_fd);
	if (j->log_fd >= 0)
		close(j->log_fd);
	j->dir_fd = j->log_fd = -1;
}

/* A free slot, else the oldest finished job's. */
static struct job *job_slot(struct server *s)
{
	struct job *oldest = NULL;

	for (size_t i = 0; i < JOB_SLOTS; i++) {
		struct job *j = &s->jobs[i];

		if (!j->id)
			return j;
		if (j->state != JOB_STATE__JOB_RUNNING && (!oldest || j->id < oldest->id))
			oldest = j;
	}
	return oldest;
}

static struct job *job_find(struct server *s, uint64_t id)
{
	for (size_t i = 0; i < JOB_SLOTS; i++)
		if (s->jobs[i].id && s->jobs[i].id == id)
			return &s->jobs[i];
	return NULL;
}

/* "pid N is already being dumped (job J)" */
static const struct job *job_busy(const struct server *s, RpcType type, pid_t pid,
				  const struct stat *st)
{
	for (size_t i = 0; i < JOB_SLOTS; i++) {
		const struct job *j = &s->jobs[i];

		if (!j->id || j->state != JOB_STATE__JOB_RUNNING)
			continue;
		if (type == RPC_TYPE__RPC_DUMP && j->pid == pid)
			return j;
		if (type == RPC_TYPE__RPC_RESTORE && j->type == RPC_TYPE__RPC_RESTORE &&
		    j->dev == st->st_dev && j->ino == st->st_ino)
			return j;
	}
	return NULL;
}

/* In the forked worker: keep only what the job needs. */
static void worker_close_inherited(struct server *s)
{
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	close(s->listen_fd);
	close(s->sig_fd);
	for (size_t i = 0; i < s->nconns; i++)
		if (s->conns[i].fd >= 0)
			close(s->conns[i].fd);
	for (size_t i = 0; i < JOB_SLOTS; i++) {
		if (s->jobs[i].id && s->jobs[i].report_fd >= 0)
			close(s->jobs[i].report_fd);
		if (s->jobs[i].id && s->jobs[i].state == JOB_STATE__JOB_RUNNING &&
		    s->jobs[i].worker)
			job_close_fds(&s->jobs[i]);
	}
}

static int job_start(struct server *s, struct conn *c, const Request *req, int dir_fd,
		     const struct stat *st, struct ckpt_error *e)
{
	struct worker_args a = {0};
	struct job *j;
	int p[2];
	pid_t pid;

	j = job_slot(s);
	if (!j || running_jobs(s) >= s->o->max_jobs)
		return ckpt_err(e, -EAGAIN, "ckptd is busy: %u jobs are running; try again later",
				running_jobs(s));
	if (!auth_is_root(&c->caller) &&
	    running_jobs_of(s, c->caller.uid) >= s->o->max_jobs_per_user)
		return ckpt_err(e, -EAGAIN,
				"you (uid %u) already have %u jobs running, the most ckptd runs "
				"for one user (--max-jobs-per-user); wait for one to end",
				c->caller.uid, running_jobs_of(s, c->caller.uid));
	if (pipe2(p, O_CLOEXEC) < 0)
		return ckpt_err_errno(e, -errno, "cannot create the worker's pipe");
	memset(j, 0, sizeof(*j));
	j->dir_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
	j->log_fd = req->type == RPC_TYPE__RPC_DUMP ? memfd_create("dump.log", MFD_CLOEXEC) : -1;
	j->caller = c->caller;
	j->id = ++s->next_id;
	j->type = req->type;
	j->state = JOB_STATE__JOB_RUNNING;
	j->uid = c->caller.uid;
	j->pid = req->type == RPC_TYPE__RPC_DUMP ? req->dump->pid : 0;
	j->dev = st->st_dev;
	j->ino = st->st_ino;
	j->want_progress = req->has_want_progress && req->want_progress;
	j->t_start = ckpt_monotonic_seconds();
	j->started_unix_ms = now_unix_ms();
	j->report_fd = -1;

	a.job_id = j->id;
	a.caller = &c->caller;
	a.dir_fd = dir_fd;
	a.report_fd = p[1];
	a.pid = j->pid;
	a.leave_running = req->type == RPC_TYPE__RPC_DUMP && req->dump->has_leave_running &&
			  req->dump->leave_running;
	a.shell_job =
	    req->type == RPC_TYPE__RPC_DUMP && req->dump->has_shell_job && req->dump->shell_job;
	if (req->type == RPC_TYPE__RPC_DUMP) {
		a.external = req->dump->external;
		a.n_external = req->dump->n_external;
		a.tcp_close = req->dump->has_tcp_close && req->dump->tcp_close;
	}
	/* --cgroups=caller: the client's cgroups, found by ckpt-restore from its pid */
	a.cgroups_caller = req->type == RPC_TYPE__RPC_RESTORE && req->restore->cgroups &&
			   !strcmp(req->restore->cgroups, "caller");
	a.caller_pidfd = -1;
	if (req->type == RPC_TYPE__RPC_RESTORE) {
		socklen_t len = sizeof(a.caller_pidfd);

		if (getsockopt(c->fd, SOL_SOCKET, SO_PEERPIDFD, &a.caller_pidfd, &len) < 0)
			a.caller_pidfd = -1;
		else
			fcntl(a.caller_pidfd, F_SETFD, FD_CLOEXEC);
	}
	a.restorer = s->o->restorer;
	a.ckptd_pid = getpid();
	a.log_fd = j->log_fd;
	a.limits.max_restore_bytes = s->o->max_restore_bytes;
	a.limits.max_images = s->o->max_images;
	a.mac_key = s->o->mac_key;
	pid = fork();
	if (pid != 0 && a.caller_pidfd >= 0)
		close(a.caller_pidfd); /* the worker's now */
	if (pid < 0) {
		int r = ckpt_err_errno(e, -errno, "cannot fork a worker");

		close(p[0]);
		close(p[1]);
		job_close_fds(j);
		j->id = 0;
		return r;
	}
	if (pid == 0) {
		close(p[0]);
		worker_close_inherited(s);
		_exit(req->type == RPC_TYPE__RPC_DUMP ? worker_dump(&a) : worker_restore(&a));
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	j->report_fd = p[0];
	j->worker = pid;
	j->conn = c;
	c->job = j;
	pr_info("job %llu: %s%s%.0d for uid %u (pid %d), worker %d", (unsigned long long)j->id,
		rpc_type_name(j->type), j->pid ? " of pid " : "", j->pid, c->caller.uid,
		(int)c->caller.pid, (int)pid);
	return 0;
}

static void job_progress(struct job *j, const struct worker_msg *m)
{
	Response resp = RESPONSE__INIT;
	Progress pr = PROGRESS__INIT;
	struct ckpt_error e = {0};

	j->bytes = m->bytes;
	j->tasks_done = m->tasks_done;
	j->tasks_total = m->tasks_total;
	if (!j->want_progress || !j->conn)
		return;
	pr.job_id = j->id;
	pr.has_bytes = pr.has_tasks_done = pr.has_tasks_total = true;
	pr.bytes = m->bytes;
	pr.tasks_done = m->tasks_done;
	pr.tasks_total = m->tasks_total;
	resp.version = RPC_PROTOCOL_VERSION;
	resp.progress = &pr;
	/* never wait for a slow reader: a progress message may be dropped */
	rpc_send(j->conn->fd, &resp.base, -1, &e);
}

static void job_read_reports(struct job *j)
{
	struct worker_msg m;
	ssize_t n;

	while (j->report_fd >= 0) {
		n = read(j->report_fd, &m, sizeof(m));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n != (ssize_t)sizeof(m)) {
			/* EOF (the worker is gone) or a short message: stop reading */
			close(j->report_fd);
			j->report_fd = -1;
			return;
		}
		m.error[sizeof(m.error) - 1] = '\0';
		if (m.kind == WORKER_PROGRESS) {
			job_progress(j, &m);
		} else if (m.kind == WORKER_RESULT) {
			j->has_result = true;
			j->status = m.status;
			if (m.pid > 0)
				j->pid = m.pid;
			j->bytes = m.bytes;
			j->images_bytes = m.images_bytes;
			j->tasks_done = m.tasks_done;
			j->tasks_total = m.tasks_total;
			snprintf(j->error, sizeof(j->error), "%s", m.error);
		}
	}
}

/*
 * The worker died without a result (killed). A dump's tree was resumed by
 * the kernel (its tracer died) unless the checkpoint was already complete:
 * so, as the caller, a checkpoint that verifies is the result, anything
 * else is removed and the dump failed; dump.log gets what the engine
 * logged. A restore's ckpt-restore got SIGTERM and rolled back.
 */
static void job_settle_lost(struct job *j, int wstatus)
{
	char why[64];
	bool logged = false;
	int kept = 0;

	if (WIFSIGNALED(wstatus))
		snprintf(why, sizeof(why), "was killed by signal %d", WTERMSIG(wstatus));
	else
		snprintf(why, sizeof(why), "exited without a result");
	if (j->type == RPC_TYPE__RPC_DUMP && j->dir_fd >= 0)
		kept = caller_settle_dump(&j->caller, j->dir_fd, j->log_fd, &logged);
	if (kept == 1) {
		j->status = 0;
		pr_info("job %llu: the worker %s after the checkpoint was complete",
			(unsigned long long)j->id, why);
		return;
	}
	j->status = -EIO;
	snprintf(j->error, sizeof(j->error), "the worker of job %llu %s%s%s",
		 (unsigned long long)j->id, why,
		 j->type == RPC_TYPE__RPC_DUMP ? ": nothing was checkpointed, the program runs on"
					       : "",
		 logged ? " (see dump.log)" : "");
}

/* The worker was reaped: record the outcome and answer the client. */
static void job_finish(struct job *j, int wstatus)
{
	Response resp = RESPONSE__INIT;
	JobInfo ji;

	job_read_reports(j);
	if (j->report_fd >= 0) {
		close(j->report_fd);
		j->report_fd = -1;
	}
	j->worker = 0;
	j->seconds = ckpt_monotonic_seconds() - j->t_start;
	if (!j->has_result)
		job_settle_lost(j, wstatus);
	job_close_fds(j);
	if (j->status == 0)
		j->state = JOB_STATE__JOB_DONE;
	else if (j->status == -ECANCELED || (j->cancelled && j->status < 0))
		j->state = JOB_STATE__JOB_CANCELLED;
	else
		j->state = JOB_STATE__JOB_FAILED;
	pr_info("job %llu: %s %s in %.2f s%s%s", (unsigned long long)j->id, rpc_type_name(j->type),
		rpc_job_state_name(j->state), j->seconds, j->error[0] ? ": " : "", j->error);
	if (!j->conn)
		return;
	job_info(j, &ji);
	resp.version = RPC_PROTOCOL_VERSION;
	resp.status = j->status;
	resp.error = j->error[0] ? j->error : NULL;
	resp.job = &ji;
	resp.has_ntasks = true;
	resp.ntasks = j->tasks_done;
	resp.has_images_bytes = j->type == RPC_TYPE__RPC_DUMP;
	resp.images_bytes = j->images_bytes;
	send_final(j->conn, &resp);
	j->conn->job = NULL;
	j->conn->t_last = ckpt_monotonic_seconds();
	j->conn = NULL;
}

static void job_cancel(struct job *j, const char *why)
{
	if (j->state != JOB_STATE__JOB_RUNNING || !j->worker || j->cancelled)
		return;
	pr_info("job %llu: cancelling (%s)", (unsigned long long)j->id, why);
	j->cancelled = true;
	/* a dump rolls back and resumes the tree; a restore's worker passes
	 * SIGTERM on to ckpt-restore, which kills and reaps what it made */
	kill(j->worker, SIGTERM);
}

static void reap_workers(struct server *s)
{
	int wstatus;
	pid_t pid;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
		for (size_t i = 0; i < JOB_SLOTS; i++) {
			if (s->jobs[i].id && s->jobs[i].worker == pid) {
				job_finish(&s->jobs[i], wstatus);
				break;
			}
		}
	}
}

/* --- requests --------------------------------------------------------------- */

static void answer_version(struct conn *c)
{
	static char *features[] = {"dump",     "restore",	"status",	"cancel",
				   "progress", "leave-running", "peercred-auth", "cgroups-caller"};
	Response resp = RESPONSE__INIT;

	resp.version = RPC_PROTOCOL_VERSION;
	resp.daemon_version = CKPT_VERSION;
	resp.n_features = ARRAY_SIZE(features);
	resp.features = features;
	send_final(c, &resp);
}

/* Root sees every job; another user only their own. */
static void answer_status(struct server *s, struct conn *c)
{
	Response resp = RESPONSE__INIT;
	JobInfo infos[JOB_SLOTS], *ptrs[JOB_SLOTS];
	size_t n = 0;

	for (uint64_t id = 1; id <= s->next_id && n < JOB_SLOTS; id++) {
		struct job *j = job_find(s, id);

		if (!j || (!auth_is_root(&c->caller) && j->uid != c->caller.uid))
			continue;
		job_info(j, &infos[n]);
		ptrs[n] = &infos[n];
		n++;
	}
	resp.version = RPC_PROTOCOL_VERSION;
	resp.n_jobs = n;
	resp.jobs = ptrs;
	send_final(c, &resp);
}

static void answer_cancel(struct server *s, struct conn *c, uint64_t id)
{
	Response resp = RESPONSE__INIT;
	struct job *j = job_find(s, id);
	char msg[128];
	JobInfo ji;

	if (!j || (!auth_is_root(&c->caller) && j->uid != c->caller.uid)) {
		snprintf(msg, sizeof(msg), "no job %llu (of yours)", (unsigned long long)id);
		send_error(c, -ESRCH, msg);
		return;
	}
	if (j->state != JOB_STATE__JOB_RUNNING) {
		snprintf(msg, sizeof(msg), "job %llu is not running (%s)", (unsigned long long)id,
			 rpc_job_state_name(j->state));
		send_error(c, -EALREADY, msg);
		return;
	}
	job_cancel(j, "RPC_CANCEL");
	job_info(j, &ji);
	resp.version = RPC_PROTOCOL_VERSION;
	resp.job = &ji;
	send_final(c, &resp);
}

static void handle_job_request(struct server *s, struct conn *c, const Request *req, int dir_fd)
{
	struct ckpt_error e = {0};
	const struct job *busy;
	struct stat st;
	int r;

	if (s->stopping) {
		send_error(c, -ESHUTDOWN, "ckptd is shutting down");
		return;
	}
	if (fstat(dir_fd, &st) < 0) {
		send_error(c, -errno, "cannot stat the image directory");
		return;
	}
	busy = job_busy(s, req->type, req->type == RPC_TYPE__RPC_DUMP ? req->dump->pid : 0, &st);
	if (busy) {
		char msg[160];

		if (req->type == RPC_TYPE__RPC_DUMP)
			snprintf(msg, sizeof(msg), "pid %d is already being dumped (job %llu)",
				 req->dump->pid, (unsigned long long)busy->id);
		else
			snprintf(msg, sizeof(msg),
				 "this image directory is already being restored (job %llu)",
				 (unsigned long long)busy->id);
		send_error(c, -EBUSY, msg);
		return;
	}
	if (req->type == RPC_TYPE__RPC_RESTORE && req->restore->has_shell_job &&
	    req->restore->shell_job) {
		send_error(c, -EOPNOTSUPP,
			   "a --shell-job restore cannot run through ckptd: the restored job "
			   "must be made inside your terminal's session; run `ckptctl restore "
			   "--shell-job` as root, without ckptd");
		return;
	}
	if (req->type == RPC_TYPE__RPC_RESTORE && req->restore->cgroups &&
	    strcmp(req->restore->cgroups, "exact") && strcmp(req->restore->cgroups, "caller")) {
		send_error(c, -EINVAL, "restore: cgroups must be \"exact\" or \"caller\"");
		return;
	}
	if (req->type == RPC_TYPE__RPC_RESTORE && req->restore->cgroups &&
	    !strcmp(req->restore->cgroups, "caller") && c->caller.pid <= 0) {
		send_error(c, -EOPNOTSUPP,
			   "restore --cgroups=caller: your pid is not visible to ckptd (another "
			   "pid namespace), so neither are your cgroups");
		return;
	}
	/* before anything is seized: the live tree must be the caller's */
	if (req->type == RPC_TYPE__RPC_DUMP) {
		r = auth_check_dump(&c->caller, req->dump->pid, &e);
		if (r < 0) {
			pr_info("uid %u (pid %d) refused: %s", c->caller.uid, (int)c->caller.pid,
				e.msg);
			send_error(c, r, e.msg);
			return;
		}
	}
	r = job_start(s, c, req, dir_fd, &st, &e);
	if (r < 0)
		send_error(c, r, e.msg);
}

static void handle_request(struct server *s, struct conn *c)
{
	_cleanup_(rpc_request_freep) Request *req = NULL;
	_cleanup_close_ int dir_fd = -1;
	struct ckpt_error e = {0};
	int r;

	r = rpc_recv_request(c->fd, &req, &dir_fd, &e);
	if (r == -EAGAIN || r == -EINTR)
		return;
	if (r == -ECONNRESET) {
		conn_close(c);
		return;
	}
	if (r == 0)
		r = rpc_validate_request(req, dir_fd, &e);
	if (r < 0) {
		/* answer, then hang up: the stream cannot be trusted any more */
		pr_debug("bad request from pid %d: %s", (int)c->caller.pid, e.msg);
		send_error(c, r, e.msg);
		conn_close(c);
		return;
	}
	c->t_last = ckpt_monotonic_seconds();
	switch (req->type) {
	case RPC_TYPE__RPC_VERSION:
		answer_version(c);
		break;
	case RPC_TYPE__RPC_STATUS:
		answer_status(s, c);
		break;
	case RPC_TYPE__RPC_CANCEL:
		answer_cancel(s, c, req->cancel->job_id);
		break;
	case RPC_TYPE__RPC_DUMP:
	case RPC_TYPE__RPC_RESTORE:
		handle_job_request(s, c, req, dir_fd);
		break;
	default:
		send_error(c, -EINVAL, "unknown request type");
	}
}

/* A connection with a job running: only its end matters (it cancels a dump). */
static void watch_job_conn(struct server *s, struct conn *c, short revents)
{
	char buf[256];
	ssize_t n;

	if (revents & POLLIN) {
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
			return; /* nothing else is expected now: dropped */
	}
	job_cancel(c->job, "the client disconnected");
	conn_close(c);
}

/* --- the loop ----------------------------------------------------------------- */

static bool handle_signals(struct server *s)
{
	struct signalfd_siginfo si;
	bool child = false;

	while (read(s->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			child = true;
		} else if (!s->stopping) {
			pr_info("signal %u: stopping (cancelling running dumps)", si.ssi_signo);
			s->stopping = true;
			/* running restores finish (or roll back) by themselves */
			for (size_t i = 0; i < JOB_SLOTS; i++)
				if (s->jobs[i].id && s->jobs[i].type == RPC_TYPE__RPC_DUMP)
					job_cancel(&s->jobs[i], "ckptd is stopping");
		}
	}
	return child;
}

static void close_idle(struct server *s)
{
	double now = ckpt_monotonic_seconds();

	for (size_t i = 0; i < s->nconns; i++) {
		struct conn *c = &s->conns[i];

		if (c->fd >= 0 && !c->job && now - c->t_last > s->o->idle_timeout) {
			pr_debug("closing the idle connection of pid %d", (int)c->caller.pid);
			conn_close(c);
		}
	}
}

/* Fill pfd: [0] signals, [1] listener, then connections (up to
 * *ret_conns_end), then reports. */
static size_t build_poll(struct server *s, struct pollfd *pfd, void **who, size_t *ret_conns_end)
{
	size_t n = 0;

	pfd[n] = (struct pollfd){.fd = s->sig_fd, .events = POLLIN};
	who[n++] = NULL;
	pfd[n] = (struct pollfd){.fd = s->stopping ? -1 : s->listen_fd, .events = POLLIN};
	who[n++] = NULL;
	for (size_t i = 0; i < s->nconns; i++) {
		if (s->conns[i].fd < 0)
			continue;
		pfd[n] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
		who[n++] = &s->conns[i];
	}
	*ret_conns_end = n;
	for (size_t i = 0; i < JOB_SLOTS; i++) {
		if (!s->jobs[i].id || s->jobs[i].report_fd < 0)
			continue;
		pfd[n] = (struct pollfd){.fd = s->jobs[i].report_fd, .events = POLLIN};
		who[n++] = &s->jobs[i];
	}
	return n;
}

static void loop_once(struct server *s, struct pollfd *pfd, void **who)
{
	size_t nconn_end, n = build_poll(s, pfd, who, &nconn_end);

	if (poll(pfd, n, 1000) < 0) {
		if (errno != EINTR)
			pr_warn("poll: %m");
		return;
	}
	if (pfd[0].revents && handle_signals(s))
		reap_workers(s);
	for (size_t i = nconn_end; i < n; i++)
		if (pfd[i].revents)
			job_read_reports(who[i]);
	for (size_t i = 2; i < nconn_end; i++) {
		struct conn *c = who[i];

		if (!pfd[i].revents || c->fd != pfd[i].fd)
			continue;
		if (c->job)
			watch_job_conn(s, c, pfd[i].revents);
		else if (pfd[i].revents & POLLIN)
			handle_request(s, c);
		else
			conn_close(c);
	}
	if (pfd[1].revents)
		accept_all(s);
	close_idle(s);
}

int server_run(const struct server_opts *opts, struct ckpt_error *e)
{
	struct server_opts o = *opts;
	_cleanup_free_ struct pollfd *pfd = NULL;
	_cleanup_free_ void **who = NULL;
	_cleanup_free_ struct conn *conns = NULL;
	struct server s = {0};
	sigset_t mask;
	size_t max;

	if (!o.max_conns)
		o.max_conns = CONNS_DEFAULT;
	if (!o.max_jobs)
		o.max_jobs = JOBS_DEFAULT;
	if (!o.idle_timeout)
		o.idle_timeout = IDLE_TIMEOUT_DEFAULT;
	if (!o.max_jobs_per_user)
		o.max_jobs_per_user = SERVER_JOBS_PER_USER_DEFAULT;
	if (!o.max_restore_bytes)
		o.max_restore_bytes = SERVER_RESTORE_BYTES_DEFAULT;
	if (!o.max_images)
		o.max_images = SERVER_IMAGES_DEFAULT;
	s.o = &o;
	s.listen_fd = o.listen_fd;
	max = 2 + o.max_conns + JOB_SLOTS;
	conns = calloc(o.max_conns, sizeof(*conns));
	pfd = calloc(max, sizeof(*pfd));
	who = calloc(max, sizeof(*who));
	if (!conns || !pfd || !who)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < o.max_conns; i++)
		conns[i].fd = -1;
	s.conns = conns;
	s.nconns = o.max_conns;
	for (size_t i = 0; i < JOB_SLOTS; i++)
		s.jobs[i].report_fd = s.jobs[i].dir_fd = s.jobs[i].log_fd = -1;
	if (fcntl(s.listen_fd, F_SETFL, fcntl(s.listen_fd, F_GETFL) | O_NONBLOCK) < 0)
		return ckpt_err_errno(e, -errno, "cannot make the listening socket non-blocking");
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	s.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s.sig_fd < 0)
		return ckpt_err_errno(e, -errno, "signalfd");
	while (!s.stopping || running_jobs(&s) > 0)
		loop_once(&s, pfd, who);
	for (size_t i = 0; i < s.nconns; i++)
		conn_close(&s.conns[i]);
	close(s.sig_fd);
	pr_info("stopped");
	return 0;
}
