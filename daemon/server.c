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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
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
#include "image.h"
#include "fault.h"
#include "log.h"
#include "proc.h"
#include "preserve.h"
#include "restorer_io.h"
#include "rpc.h"
#include "server.h"
#include "worker.h"

#define CONNS_DEFAULT 64
#define JOBS_DEFAULT 16
#define IDLE_TIMEOUT_DEFAULT 10
#define JOB_SLOTS 128 /* running and recent jobs kept for `ckptctl ps` */
#define SEND_TIMEOUT_MS 500

struct conn;

/* Why a job runs: a client's dump or restore, or a step of ckptctl preserve. */
enum job_role {
	JOB_ROLE_CLIENT = 0,
	JOB_ROLE_PRESERVE_CHECK,   /* registration: the dump's checks, tree untouched */
	JOB_ROLE_PRESERVE_DUMP,	   /* --dump-all: one registered tree */
	JOB_ROLE_PRESERVE_RESTORE, /* --restore-all: one saved tree */
};

struct job {
	uint64_t id; /* 0: free slot */
	RpcType type;
	JobState state;
	pid_t pid; /* dumped root, or restored root */
	uid_t uid;
	pid_t worker;	   /* 0 once reaped */
	pid_t worker_pid;  /* the same, kept */
	int report_fd;	   /* read end of the worker's pipe, -1 when closed */
	struct conn *conn; /* who waits for the answer; NULL if gone */
	dev_t dev;	   /* restore: the image directory, for "busy" */
	ino_t ino;
	int dir_fd;		   /* the directory the client sent, -1 once settled */
	int log_fd;		   /* dump: the engine's log (memfd shared with the worker) */
	/* restore: ckpt-restore's commit record (memfd shared with the worker,
	 * lib/restorer_io.h): the outcome when the worker dies without one */
	int commit_fd;
	/* the worker died without a result while its ckpt-restore may still
	 * run (it holds the report pipe): settled at the pipe's end */
	bool awaiting_restorer;
	int lost_wstatus;
	/* dump: the child settling the directory of a worker that died
	 * without a result (caller_settle_dump_start), 0 when none; its wait
	 * status once reaped (settled) */
	pid_t settler;
	bool settled;
	int settle_wstatus;
	struct auth_caller caller; /* who asked: what is left is settled as them */
	bool want_progress, cancelled, has_result;
	int status;
	uint64_t bytes, images_bytes;
	unsigned tasks_done, tasks_total;
	double t_start, seconds;
	uint64_t started_unix_ms;
	char error[1024];
	/* ckptctl preserve */
	enum job_role role;
	uint64_t preserve_id;		/* dump/restore steps: the registration */
	double deadline;		/* dump step: cancelled past it (monotonic s) */
	unsigned long long start_ticks; /* check: the root's start time */
	char name[PRESERVE_NAME_MAX + 1];
	/* restore --lazy: the pager and its start time (running while both match) */
	pid_t pager_pid;
	unsigned long long pager_start_ticks;
};

struct conn {
	int fd; /* -1: free slot */
	struct auth_caller caller;
	double t_last; /* accept or last answer: for the idle timeout */
	struct job *job;
	bool batch; /* waits for the answer of a --dump-all / --restore-all */
};

/* A --dump-all or --restore-all in progress (one at a time). */
struct batch {
	bool active;
	PreserveOp op;
	struct conn *conn;
	uint64_t ids[PRESERVE_ENTRIES_MAX];
	size_t n, next;
	unsigned running, failed, parallel, deadline_s;
	double t_start;
};

struct server {
	const struct server_opts *o;
	int listen_fd, sig_fd;
	struct conn *conns;
	size_t nconns;
	struct job jobs[JOB_SLOTS];
	uint64_t next_id;
	bool stopping;
	/* ckptctl preserve (preserve.c of lib: the file) */
	PreserveRegistry *reg; /* NULL: no state directory */
	int preserved_fd;      /* STATE_DIR/preserved */
	struct batch batch;
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
	if (j->pager_pid > 0) {
		ji->has_pager_pid = true;
		ji->pager_pid = j->pager_pid;
		ji->has_pager_running = true;
		ji->pager_running = proc_start_ticks(j->pager_pid) == j->pager_start_ticks;
	}
}

/* --- connections ---------------------------------------------------------- */

static void conn_close(struct conn *c)
{
	if (c->fd < 0)
		return;
	if (c->job)
		c->job->conn = NULL;
	c->job = NULL;
	c->batch = false;
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
		if (!c->job && !c->batch && (!oldest || c->t_last < oldest->t_last))
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
	if (j->commit_fd >= 0)
		close(j->commit_fd);
	j->dir_fd = j->log_fd = j->commit_fd = -1;
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
	if (s->preserved_fd >= 0)
		close(s->preserved_fd);
	if (s->o->state_fd >= 0)
		close(s->o->state_fd);
	for (size_t i = 0; i < s->nconns; i++)
		if (s->conns[i].fd >= 0)
			close(s->conns[i].fd);
	for (size_t i = 0; i < JOB_SLOTS; i++) {
		if (s->jobs[i].id && s->jobs[i].report_fd >= 0)
			close(s->jobs[i].report_fd);
		if (s->jobs[i].id && s->jobs[i].state == JOB_STATE__JOB_RUNNING &&
		    (s->jobs[i].worker || s->jobs[i].awaiting_restorer || s->jobs[i].settler))
			job_close_fds(&s->jobs[i]);
	}
}

/* What a job is started for: the request's fields, or a preserve step's. */
struct job_req {
	RpcType type; /* RPC_DUMP, RPC_RESTORE, or RPC_PRESERVE (a check) */
	enum job_role role;
	const struct auth_caller *caller;
	pid_t pid;	       /* dump: root of the tree */
	int dir_fd;	       /* -1 for a check */
	const struct stat *st; /* of dir_fd */
	bool want_progress;
	int client_commit_fd; /* a client's restore: RestoreRequest.commit_fd's */
	struct worker_args a; /* the options of the worker */
};

static int job_launch(struct server *s, struct conn *c, const struct job_req *jr, struct job **ret,
		      struct ckpt_error *e)
{
	struct worker_args a = jr->a;
	struct job *j;
	int p[2];
	pid_t pid;

	j = job_slot(s);
	if (!j || running_jobs(s) >= s->o->max_jobs)
		return ckpt_err(e, -EAGAIN, "ckptd is busy: %u jobs are running; try again later",
				running_jobs(s));
	if (!auth_is_root(jr->caller) && c &&
	    running_jobs_of(s, jr->caller->uid) >= s->o->max_jobs_per_user)
		return ckpt_err(e, -EAGAIN,
				"you (uid %u) already have %u jobs running, the most ckptd runs "
				"for one user (--max-jobs-per-user); wait for one to end",
				jr->caller->uid, running_jobs_of(s, jr->caller->uid));
	if (pipe2(p, O_CLOEXEC) < 0)
		return ckpt_err_errno(e, -errno, "cannot create the worker's pipe");
	memset(j, 0, sizeof(*j));
	j->dir_fd = jr->dir_fd >= 0 ? fcntl(jr->dir_fd, F_DUPFD_CLOEXEC, 3) : -1;
	j->log_fd = jr->type == RPC_TYPE__RPC_DUMP ? memfd_create("dump.log", MFD_CLOEXEC) : -1;
	j->commit_fd =
	    jr->type == RPC_TYPE__RPC_RESTORE ? memfd_create("ckpt-commit", MFD_CLOEXEC) : -1;
	j->caller = *jr->caller;
	j->id = ++s->next_id;
	j->type = jr->type;
	j->role = jr->role;
	j->state = JOB_STATE__JOB_RUNNING;
	j->uid = jr->caller->uid;
	j->pid = jr->pid;
	if (jr->st) {
		j->dev = jr->st->st_dev;
		j->ino = jr->st->st_ino;
	}
	j->want_progress = jr->want_progress;
	j->t_start = ckpt_monotonic_seconds();
	j->started_unix_ms = now_unix_ms();
	j->report_fd = -1;

	a.job_id = j->id;
	a.caller = &j->caller;
	a.dir_fd = jr->dir_fd;
	a.report_fd = p[1];
	a.pid = j->pid;
	/* a restore for a client: a pidfd of it (join_caller_cgroups) */
	a.caller_pidfd = -1;
	if (c && jr->type == RPC_TYPE__RPC_RESTORE) {
		socklen_t len = sizeof(a.caller_pidfd);

		if (getsockopt(c->fd, SOL_SOCKET, SO_PEERPIDFD, &a.caller_pidfd, &len) < 0)
			a.caller_pidfd = -1;
		else
			fcntl(a.caller_pidfd, F_SETFD, FD_CLOEXEC);
	}
	a.client_fd = c && jr->type == RPC_TYPE__RPC_RESTORE ? fcntl(c->fd, F_DUPFD_CLOEXEC, 3) : -1;
	a.restorer = s->o->restorer;
	a.ckptd_pid = getpid();
	a.log_fd = j->log_fd;
	a.commit_fd = j->commit_fd;
	a.caller_cgroup_fd = -1;
	a.client_commit_fd = c && jr->role == JOB_ROLE_CLIENT && jr->type == RPC_TYPE__RPC_RESTORE
				 ? jr->client_commit_fd
				 : -1;
	a.limits.max_restore_bytes = s->o->max_restore_bytes;
	a.limits.max_images = s->o->max_images;
	a.mac_key = s->o->mac_key;
	pid = fork();
	if (pid != 0 && a.caller_pidfd >= 0)
		close(a.caller_pidfd); /* the worker's now */
	if (pid != 0 && a.client_fd >= 0)
		close(a.client_fd); /* the worker's now */
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
		_exit(jr->type == RPC_TYPE__RPC_RESTORE ? worker_restore(&a) : worker_dump(&a));
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	j->report_fd = p[0];
	j->worker = j->worker_pid = pid;
	j->conn = c;
	if (c)
		c->job = j;
	pr_info("job %llu: %s%s%.0d for uid %u (pid %d), worker %d", (unsigned long long)j->id,
		rpc_type_name(j->type), j->pid ? " of pid " : "", j->pid, jr->caller->uid,
		(int)jr->caller->pid, (int)pid);
	if (ret)
		*ret = j;
	return 0;
}

static int job_start(struct server *s, struct conn *c, const Request *req, int dir_fd,
		     int commit_fd, const struct stat *st, struct ckpt_error *e)
{
	struct job_req jr = {.type = req->type,
			     .caller = &c->caller,
			     .dir_fd = dir_fd,
			     .client_commit_fd = commit_fd,
			     .st = st,
			     .want_progress = req->has_want_progress && req->want_progress};

	if (req->type == RPC_TYPE__RPC_DUMP) {
		jr.pid = req->dump->pid;
		jr.a.leave_running = req->dump->has_leave_running && req->dump->leave_running;
		jr.a.shell_job = req->dump->has_shell_job && req->dump->shell_job;
		jr.a.external = req->dump->external;
		jr.a.n_external = req->dump->n_external;
		jr.a.tcp_close = req->dump->has_tcp_close && req->dump->tcp_close;
		jr.a.pre_dump = req->dump->has_pre_dump && req->dump->pre_dump;
		jr.a.parent = req->dump->parent;
	}
	/* --cgroups=caller: the client's cgroups, found by ckpt-restore from its pid */
	jr.a.cgroups_caller = req->type == RPC_TYPE__RPC_RESTORE && req->restore->cgroups &&
			      !strcmp(req->restore->cgroups, "caller");
	if (req->type == RPC_TYPE__RPC_RESTORE) {
		jr.a.new_pidns = req->restore->has_new_pidns && req->restore->new_pidns;
		jr.a.continue_clocks =
		    req->restore->has_continue_clocks && req->restore->continue_clocks;
		jr.a.lazy = req->restore->has_lazy && req->restore->lazy;
	}
	return job_launch(s, c, &jr, NULL, e);
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
			j->pager_pid = m.pager_pid;
			j->pager_start_ticks = m.pager_start_ticks;
			snprintf(j->error, sizeof(j->error), "%s", m.error);
		}
	}
}

/*
 * The worker died without a result (killed). A dump's tree was resumed by
 * the kernel (its tracer died) unless the checkpoint was already complete:
 * so, as the caller, a checkpoint that verifies is the result, anything
 * else is removed and the dump failed; dump.log gets what the engine
 * logged. A restore's ckpt-restore got SIGTERM and is gone now (it held
 * the report pipe): it rolled back, unless its commit record says it had
 * committed, and then the tree runs.
 */
static void job_settle_lost(struct job *j, int wstatus)
{
	struct restore_commit cr;
	char why[64];
	bool logged = false;
	int kept = 0;

	if (WIFSIGNALED(wstatus))
		snprintf(why, sizeof(why), "was killed by signal %d", WTERMSIG(wstatus));
	else
		snprintf(why, sizeof(why), "exited without a result");
	if (j->type == RPC_TYPE__RPC_DUMP && j->settled)
		kept = caller_settle_dump_result(j->settle_wstatus, &logged);
	if (j->type == RPC_TYPE__RPC_RESTORE && restore_commit_read(j->commit_fd, &cr)) {
		j->status = 0;
		j->pid = cr.new_pidns ? 0 : cr.root_pid;
		j->tasks_done = cr.ntasks;
		pr_info("job %llu: the worker %s after the restore was committed: the tree runs",
			(unsigned long long)j->id, why);
		return;
	}
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
static void preserve_check_done(struct server *s, struct job *j);
static void preserve_step_done(struct server *s, struct job *j);

static void job_finish(struct server *s, struct job *j, int wstatus)
{
	Response resp = RESPONSE__INIT;
	JobInfo ji;

	job_read_reports(j);
	j->worker = 0;
	/* its ckpt-restore may still be deciding: wait for it (the pipe's end) */
	if (!j->has_result && j->type == RPC_TYPE__RPC_RESTORE && j->report_fd >= 0) {
		j->awaiting_restorer = true;
		j->lost_wstatus = wstatus;
		return;
	}
	j->awaiting_restorer = false;
	/* a dump's directory is settled as the caller by a child of ours,
	 * reaped by our loop like a worker (a hanging file system stalls
	 * nobody else) */
	if (!j->has_result && j->type == RPC_TYPE__RPC_DUMP && j->dir_fd >= 0 && !j->settled &&
	    !j->settler) {
		pid_t p = caller_settle_dump_start(&j->caller, j->dir_fd, j->log_fd);

		if (p > 0) {
			j->settler = p;
			j->lost_wstatus = wstatus;
			return;
		}
		pr_warn("job %llu: cannot settle the dump's directory: %s",
			(unsigned long long)j->id, strerror((int)-p));
	}
	if (j->report_fd >= 0) {
		close(j->report_fd);
		j->report_fd = -1;
	}
	/* a restore's worker killed before it removed its copy of the images
	 * (its ckpt-restore, which reads the copy, is done: the pipe's end) */
	if (j->type == RPC_TYPE__RPC_RESTORE && WIFSIGNALED(wstatus))
		worker_snapshots_sweep(j->worker_pid);
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
	if (j->role == JOB_ROLE_PRESERVE_CHECK) {
		preserve_check_done(s, j);
		return;
	}
	if (j->role != JOB_ROLE_CLIENT) {
		preserve_step_done(s, j);
		return;
	}
	if (!j->conn)
		return;
	/* a pause only (tests kill ckptd here: its client reads the outcome
	 * of a restore from its commit record, of a dump from the directory) */
	ckpt_fault_inject("ckptd-answer", NULL);
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

/* --- ckptctl preserve (docs/preserve.md) ------------------------------------ */

/* registrations one non-root user may hold: the registry is shared */
#define PRESERVE_PER_USER_MAX 64
/* --dump-all: seconds each dump may take unless the request says */
#define PRESERVE_DEADLINE_DEFAULT 900

/* The registered tree still runs: its root has the same start time (a pid
 * reused by another process has another) and is not a zombie. */
static bool tree_alive(const PreserveEntry *pe)
{
	return proc_start_ticks(pe->pid) == pe->start_ticks && !proc_pid_is_zombie(pe->pid);
}

/* A dump or restore of this registration is running. */
static bool preserve_busy(const struct server *s, uint64_t id)
{
	for (size_t i = 0; i < JOB_SLOTS; i++)
		if (s->jobs[i].id && s->jobs[i].state == JOB_STATE__JOB_RUNNING &&
		    s->jobs[i].preserve_id == id)
			return true;
	return false;
}

static PreserveEntry *reg_find(struct server *s, uint64_t id, size_t *ret_idx)
{
	for (size_t i = 0; s->reg && i < s->reg->n_entries; i++) {
		if (s->reg->entries[i]->id == id) {
			if (ret_idx)
				*ret_idx = i;
			return s->reg->entries[i];
		}
	}
	return NULL;
}

static void reg_save(struct server *s)
{
	struct ckpt_error e = {0};

	if (preserve_save(s->o->state_fd, s->reg, &e) < 0)
		pr_err("%s/%s: %s", s->o->state_dir, PRESERVE_FILE, e.msg);
}

static void set_result(PreserveEntry *pe, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_result(PreserveEntry *pe, const char *fmt, ...)
{
	char buf[PRESERVE_RESULT_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	free(pe->last_result);
	pe->last_result = strdup(buf);
	pe->has_changed_unix_ms = true;
	pe->changed_unix_ms = now_unix_ms();
}

/* STATE_DIR/preserved/ID and what is in it (the images are the owner's
 * files in root's 0700 directory). */
static void remove_saved(struct server *s, uint64_t id)
{
	char name[32];
	int fd;

	snprintf(name, sizeof(name), "%llu", (unsigned long long)id);
	fd = openat(s->preserved_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		img_dir_remove_images(fd);
		/* logs and anything else the jobs left */
		DIR *d = fdopendir(fd);
		struct dirent *de;

		while (d && (de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				unlinkat(dirfd(d), de->d_name, 0);
		if (d)
			closedir(d);
		else
			close(fd);
	}
	if (unlinkat(s->preserved_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		pr_warn("cannot remove %s/preserved/%s: %m", s->o->state_dir, name);
}

static void reg_remove(struct server *s, size_t idx)
{
	preserve_entry__free_unpacked(s->reg->entries[idx], NULL);
	memmove(&s->reg->entries[idx], &s->reg->entries[idx + 1],
		(s->reg->n_entries - idx - 1) * sizeof(s->reg->entries[0]));
	s->reg->n_entries--;
}

/* Registered trees that exited are dropped (saved ones were killed on purpose). */
static void reg_prune(struct server *s)
{
	bool changed = false;

	for (size_t i = 0; s->reg && i < s->reg->n_entries;) {
		PreserveEntry *pe = s->reg->entries[i];

		if (pe->state != PRESERVE_STATE__PRESERVE_REGISTERED || preserve_busy(s, pe->id) ||
		    tree_alive(pe)) {
			i++;
			continue;
		}
		pr_info("preserve %llu: pid %d exited: registration dropped",
			(unsigned long long)pe->id, pe->pid);
		reg_remove(s, i);
		changed = true;
	}
	if (changed)
		reg_save(s);
}

static void entry_caller(const PreserveEntry *pe, struct auth_caller *c)
{
	memset(c, 0, sizeof(*c));
	c->uid = pe->uid;
	c->gid = pe->gid;
	c->ngroups = pe->n_groups < AUTH_GROUPS_MAX ? pe->n_groups : AUTH_GROUPS_MAX;
	for (size_t i = 0; i < c->ngroups; i++)
		c->groups[i] = pe->groups[i];
}

static bool may_see(const struct conn *c, const PreserveEntry *pe)
{
	return auth_is_root(&c->caller) || pe->uid == c->caller.uid;
}

/* The answer of every preserve request: the entries the caller may see
 * (only those of ids[] when given), without their groups, as many as fit
 * in one frame (the error then says how many more there are). */
static void preserve_answer(struct server *s, struct conn *c, int status, const char *error,
			    const uint64_t *ids, size_t nids, uint64_t new_id)
{
	Response resp = RESPONSE__INIT;
	size_t n = 0, more = 0, max = s->reg ? s->reg->n_entries : 0;
	_cleanup_free_ PreserveEntry **list = calloc(max ? max : 1, sizeof(*list));
	_cleanup_free_ PreserveEntry *copies = calloc(max ? max : 1, sizeof(*copies));
	char msg[CKPT_ERROR_MAX];
	size_t room = RPC_FRAME_MAX - 2048; /* the rest of the answer, the error */

	if (!list || !copies) {
		send_error(c, -ENOMEM, "out of memory");
		return;
	}
	for (size_t i = 0; i < max; i++) {
		PreserveEntry *pe = s->reg->entries[i];
		bool want = !ids;
		size_t sz;

		for (size_t k = 0; ids && k < nids; k++)
			want |= ids[k] == pe->id;
		if (!want || !may_see(c, pe))
			continue;
		copies[n] = *pe;
		copies[n].n_groups = 0;
		copies[n].groups = NULL;
		sz = preserve_entry__get_packed_size(&copies[n]) + 8;
		if (sz > room) {
			more++;
			continue;
		}
		room -= sz;
		list[n] = &copies[n];
		n++;
	}
	if (more) {
		snprintf(msg, sizeof(msg),
			 "%s%s%zu more registration(s) not shown (one answer is at most %d "
			 "bytes)",
			 error ? error : "", error ? "; " : "", more, RPC_FRAME_MAX);
		error = msg;
	}
	resp.version = RPC_PROTOCOL_VERSION;
	resp.status = status;
	resp.error = (char *)error;
	resp.n_preserved = n;
	resp.preserved = list;
	resp.has_preserve_id = new_id != 0;
	resp.preserve_id = new_id;
	send_final(c, &resp);
}

static int preserve_register(struct server *s, struct conn *c, const PreserveRequest *pr,
			     struct ckpt_error *e)
{
	struct job_req jr = {.type = RPC_TYPE__RPC_PRESERVE,
			     .role = JOB_ROLE_PRESERVE_CHECK,
			     .caller = &c->caller,
			     .pid = pr->pid,
			     .dir_fd = -1};
	unsigned long long ticks;
	unsigned mine = 0;
	struct job *j;
	int r;

	if (pr->name && preserve_name_check(pr->name, e) < 0)
		return e->code;
	reg_prune(s);
	for (size_t i = 0; i < s->reg->n_entries; i++) {
		const PreserveEntry *pe = s->reg->entries[i];

		mine += pe->uid == c->caller.uid;
		if (pe->pid == pr->pid && pe->state == PRESERVE_STATE__PRESERVE_REGISTERED &&
		    tree_alive(pe))
			return ckpt_err(e, -EEXIST, "pid %d is already registered (id %llu)",
					pr->pid, (unsigned long long)pe->id);
	}
	if (s->reg->n_entries >= PRESERVE_ENTRIES_MAX ||
	    (!auth_is_root(&c->caller) && mine >= PRESERVE_PER_USER_MAX))
		return ckpt_err(e, -ENOSPC, "too many registrations (at most %d, %d per user)",
				PRESERVE_ENTRIES_MAX, PRESERVE_PER_USER_MAX);
	if (job_busy(s, RPC_TYPE__RPC_DUMP, pr->pid, NULL))
		return ckpt_err(e, -EBUSY, "pid %d is being dumped", pr->pid);
	/* the same authorization as a dump, before anything is seized */
	r = auth_check_dump(&c->caller, pr->pid, e);
	if (r < 0)
		return r;
	ticks = proc_start_ticks(pr->pid);
	if (!ticks)
		return ckpt_err(e, -ESRCH, "pid %d: no such process", pr->pid);
	/* what --dump-all will do, without writing anything */
	jr.a.check_only = true;
	jr.a.leave_running = true;
	jr.a.tcp_close = true;
	jr.a.save_tmpfs = true;
	r = job_launch(s, c, &jr, &j, e);
	if (r < 0)
		return r;
	j->start_ticks = ticks;
	snprintf(j->name, sizeof(j->name), "%s", pr->name ? pr->name : "");
	return 0;
}

/* The check of a registration ended. */
static void preserve_check_done(struct server *s, struct job *j)
{
	struct conn *c = j->conn;
	PreserveEntry *pe;
	char msg[CKPT_ERROR_MAX + 64];
	PreserveEntry **grown;

	if (!c)
		return;
	c->job = NULL;
	c->t_last = ckpt_monotonic_seconds();
	j->conn = NULL;
	if (j->status < 0) {
		snprintf(msg, sizeof(msg), "pid %d cannot be preserved: %s", (int)j->pid, j->error);
		send_error(c, j->status, msg);
		return;
	}
	if (proc_start_ticks(j->pid) != j->start_ticks) {
		snprintf(msg, sizeof(msg), "pid %d exited while it was checked", (int)j->pid);
		send_error(c, -ESRCH, msg);
		return;
	}
	pe = calloc(1, sizeof(*pe));
	grown = realloc(s->reg->entries, (s->reg->n_entries + 1) * sizeof(*grown));
	if (grown)
		s->reg->entries = grown;
	if (!pe || !grown) {
		free(pe);
		send_error(c, -ENOMEM, "out of memory");
		return;
	}
	preserve_entry__init(pe);
	pe->id = s->reg->next_id++;
	pe->name = j->name[0] ? strdup(j->name) : NULL;
	pe->pid = j->pid;
	pe->start_ticks = j->start_ticks;
	pe->uid = j->caller.uid;
	pe->gid = j->caller.gid;
	pe->groups = calloc(j->caller.ngroups ? j->caller.ngroups : 1, sizeof(uint32_t));
	if (pe->groups) {
		pe->n_groups = j->caller.ngroups;
		for (size_t i = 0; i < pe->n_groups; i++)
			pe->groups[i] = j->caller.groups[i];
	}
	pe->state = PRESERVE_STATE__PRESERVE_REGISTERED;
	pe->has_registered_unix_ms = true;
	pe->registered_unix_ms = now_unix_ms();
	set_result(pe, "registered; checked in %.2f s", j->seconds);
	s->reg->entries[s->reg->n_entries++] = pe;
	reg_save(s);
	pr_info("preserve %llu: pid %d of uid %u registered%s%s", (unsigned long long)pe->id,
		pe->pid, pe->uid, pe->name ? " as " : "", pe->name ? pe->name : "");
	preserve_answer(s, c, 0, NULL, &pe->id, 1, pe->id);
}

static void preserve_cancel(struct server *s, struct conn *c, uint64_t id)
{
	char msg[160];
	size_t idx;
	PreserveEntry *pe = reg_find(s, id, &idx);

	if (!pe || !may_see(c, pe)) {
		snprintf(msg, sizeof(msg), "no registration %llu (of yours)",
			 (unsigned long long)id);
		send_error(c, -ESRCH, msg);
		return;
	}
	if (preserve_busy(s, id)) {
		snprintf(msg, sizeof(msg), "registration %llu is being dumped or restored",
			 (unsigned long long)id);
		send_error(c, -EBUSY, msg);
		return;
	}
	if (pe->state != PRESERVE_STATE__PRESERVE_REGISTERED)
		remove_saved(s, id);
	pr_info("preserve %llu: cancelled by uid %u", (unsigned long long)id, c->caller.uid);
	reg_remove(s, idx);
	reg_save(s);
	preserve_answer(s, c, 0, NULL, &id, 0, 0);
}

static void batch_step(struct server *s);

/* --dump-all: one registered tree into STATE_DIR/preserved/ID, as its owner. */
static int batch_start_dump(struct server *s, PreserveEntry *pe, struct ckpt_error *e)
{
	struct auth_caller owner;
	struct job_req jr = {.type = RPC_TYPE__RPC_DUMP, .role = JOB_ROLE_PRESERVE_DUMP};
	_cleanup_close_ int dfd = -1;
	struct stat st;
	char name[32];
	struct job *j;
	int r;

	entry_caller(pe, &owner);
	/* the tree is checked again: it may have changed since it registered */
	r = auth_check_dump(&owner, pe->pid, e);
	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "%llu", (unsigned long long)pe->id);
	remove_saved(s, pe->id);
	/* the owner's directory in root's 0700 one: the dump writes as the
	 * owner, and nobody else (the owner neither) reaches it by path */
	if (mkdirat(s->preserved_fd, name, 0700) < 0)
		return ckpt_err_errno(e, -errno, "cannot create %s/preserved/%s", s->o->state_dir,
				      name);
	dfd = openat(s->preserved_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || fchown(dfd, pe->uid, pe->gid) < 0 || fstat(dfd, &st) < 0)
		return ckpt_err_errno(e, -errno, "cannot set up %s/preserved/%s", s->o->state_dir,
				      name);
	jr.caller = &owner;
	jr.pid = pe->pid;
	jr.dir_fd = dfd;
	jr.st = &st;
	jr.a.tcp_close = true;
	jr.a.save_tmpfs = true;
	r = job_launch(s, NULL, &jr, &j, e);
	if (r < 0) {
		remove_saved(s, pe->id);
		return r;
	}
	j->preserve_id = pe->id;
	j->deadline = ckpt_monotonic_seconds() + s->batch.deadline_s;
	return 0;
}

/* --restore-all: one saved tree, as its owner, through the usual restore. */
static int batch_start_restore(struct server *s, PreserveEntry *pe, struct ckpt_error *e)
{
	struct auth_caller owner;
	struct job_req jr = {.type = RPC_TYPE__RPC_RESTORE, .role = JOB_ROLE_PRESERVE_RESTORE};
	_cleanup_close_ int dfd = -1;
	struct stat st;
	char name[32];
	struct job *j;
	int r;

	entry_caller(pe, &owner);
	snprintf(name, sizeof(name), "%llu", (unsigned long long)pe->id);
	dfd = openat(s->preserved_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || fstat(dfd, &st) < 0)
		return ckpt_err_errno(e, -errno, "cannot open %s/preserved/%s", s->o->state_dir,
				      name);
	jr.caller = &owner;
	jr.dir_fd = dfd;
	jr.st = &st;
	jr.a.new_pidns_if_taken = s->o->restorer_new_pidns;
	jr.a.continue_clocks = s->o->restorer_continue_clocks;
	/* the cgroups the tree was dumped in are gone after a reboot (under
	 * systemd, a unit's cgroup goes when the unit stops: the dump's kill
	 * stopped it): the tree is placed in ckptd's own, as --cgroups=caller
	 * does for a client's (docs/preserve.md) */
	jr.a.cgroups_caller = true;
	r = job_launch(s, NULL, &jr, &j, e);
	if (r < 0)
		return r;
	j->preserve_id = pe->id;
	return 0;
}

static void batch_finish(struct server *s)
{
	struct batch *b = &s->batch;
	struct conn *c = b->conn;
	char msg[128];
	bool dump = b->op == PRESERVE_OP__PRESERVE_OP_DUMP_ALL;

	pr_info("preserve: %s: %zu job(s), %u failed, in %.2f s", dump ? "dump-all" : "restore-all",
		b->n, b->failed, ckpt_monotonic_seconds() - b->t_start);
	b->active = false;
	b->conn = NULL;
	if (!c || c->fd < 0 || !c->batch)
		return;
	c->batch = false;
	c->t_last = ckpt_monotonic_seconds();
	snprintf(msg, sizeof(msg), "%u of %zu %s failed (see each one's result)", b->failed, b->n,
		 dump ? "dumps" : "restores");
	preserve_answer(s, c, b->failed ? -EIO : 0, b->failed ? msg : NULL, b->ids, b->n, 0);
}

/* Start what the batch's concurrency allows; finish it when all is done. */
static void batch_step(struct server *s)
{
	struct batch *b = &s->batch;

	while (b->active && b->running < b->parallel && b->next < b->n && !s->stopping) {
		struct ckpt_error e = {0};
		size_t idx;
		PreserveEntry *pe = reg_find(s, b->ids[b->next++], &idx);
		int r;

		if (!pe)
			continue; /* cancelled meanwhile */
		if (b->op == PRESERVE_OP__PRESERVE_OP_DUMP_ALL) {
			if (!tree_alive(pe)) {
				pr_info("preserve %llu: pid %d exited: registration dropped",
					(unsigned long long)pe->id, pe->pid);
				reg_remove(s, idx);
				reg_save(s);
				continue;
			}
			r = batch_start_dump(s, pe, &e);
		} else {
			r = batch_start_restore(s, pe, &e);
		}
		if (r == 0) {
			b->running++;
			continue;
		}
		b->failed++;
		if (b->op == PRESERVE_OP__PRESERVE_OP_DUMP_ALL) {
			set_result(pe, "not dumped, the tree runs on: %s", e.msg);
		} else {
			pe->state = PRESERVE_STATE__PRESERVE_FAILED;
			set_result(pe, "restore failed: %s", e.msg);
		}
		pr_warn("preserve %llu: %s", (unsigned long long)pe->id, pe->last_result);
		reg_save(s);
	}
	if (b->active && b->running == 0 && (b->next >= b->n || s->stopping))
		batch_finish(s);
}

/* A dump or restore of the batch ended. */
static void preserve_step_done(struct server *s, struct job *j)
{
	PreserveEntry *pe = reg_find(s, j->preserve_id, NULL);
	bool dump = j->role == JOB_ROLE_PRESERVE_DUMP;

	if (s->batch.running)
		s->batch.running--;
	if (j->status < 0)
		s->batch.failed++;
	if (!pe) {
		batch_step(s);
		return;
	}
	if (dump && j->status == 0) {
		pe->state = PRESERVE_STATE__PRESERVE_SAVED;
		set_result(pe, "saved: %u task(s), %llu bytes of memory, in %.2f s", j->tasks_done,
			   (unsigned long long)j->bytes, j->seconds);
	} else if (dump) {
		remove_saved(s, pe->id);
		set_result(pe, "not dumped, the tree runs on: %s%s",
			   j->cancelled ? "deadline passed: " : "", j->error);
	} else if (j->status == 0) {
		remove_saved(s, pe->id);
		pe->state = PRESERVE_STATE__PRESERVE_REGISTERED;
		pe->pid = j->pid;
		pe->start_ticks = proc_start_ticks(j->pid);
		set_result(pe, "restored as pid %d: %u task(s), in %.2f s", (int)j->pid,
			   j->tasks_done, j->seconds);
	} else {
		pe->state = PRESERVE_STATE__PRESERVE_FAILED;
		set_result(pe, "restore failed (images kept): %s", j->error);
	}
	if (j->status < 0)
		pr_warn("preserve %llu: %s", (unsigned long long)pe->id, pe->last_result);
	else
		pr_info("preserve %llu: %s", (unsigned long long)pe->id, pe->last_result);
	reg_save(s);
	batch_step(s);
}

static void preserve_batch(struct server *s, struct conn *c, const PreserveRequest *pr)
{
	struct batch *b = &s->batch;
	bool dump = pr->op == PRESERVE_OP__PRESERVE_OP_DUMP_ALL;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (!auth_is_root(&c->caller)) {
		send_error(c, -EPERM,
			   dump ? "only root may run --dump-all"
				: "only root may run --restore-all");
		return;
	}
	if (b->active) {
		send_error(c, -EBUSY, "a --dump-all or --restore-all is already running");
		return;
	}
	reg_prune(s);
	memset(b, 0, sizeof(*b));
	b->op = pr->op;
	for (size_t i = 0; i < s->reg->n_entries && b->n < PRESERVE_ENTRIES_MAX; i++) {
		const PreserveEntry *pe = s->reg->entries[i];

		if (dump ? pe->state == PRESERVE_STATE__PRESERVE_REGISTERED
			 : pe->state != PRESERVE_STATE__PRESERVE_REGISTERED)
			b->ids[b->n++] = pe->id;
	}
	/* restores one after the other, in registration order; dumps at once,
	 * as many as there are CPUs (the dump of a tree is mostly one core) */
	b->parallel = dump ? (pr->has_parallel && pr->parallel ? pr->parallel
							       : (unsigned)(ncpu > 0 ? ncpu : 1))
			   : 1;
	if (b->parallel > s->o->max_jobs)
		b->parallel = s->o->max_jobs;
	b->deadline_s =
	    pr->has_deadline_s && pr->deadline_s ? pr->deadline_s : PRESERVE_DEADLINE_DEFAULT;
	b->active = true;
	b->conn = c;
	b->t_start = ckpt_monotonic_seconds();
	c->batch = true;
	pr_info("preserve: %s of %zu job(s) for uid %u (pid %d)", dump ? "dump-all" : "restore-all",
		b->n, c->caller.uid, (int)c->caller.pid);
	batch_step(s);
}

static void answer_preserve(struct server *s, struct conn *c, const PreserveRequest *pr)
{
	struct ckpt_error e = {0};
	int r;

	if (!s->reg) {
		send_error(c, -EOPNOTSUPP,
			   "ckptd runs without a state directory (--state-dir): preserve is "
			   "unavailable");
		return;
	}
	switch (pr->op) {
	case PRESERVE_OP__PRESERVE_OP_REGISTER:
		if (s->stopping) {
			send_error(c, -ESHUTDOWN, "ckptd is shutting down");
			return;
		}
		r = preserve_register(s, c, pr, &e);
		if (r < 0) {
			pr_info("uid %u (pid %d): preserve of pid %d refused: %s", c->caller.uid,
				(int)c->caller.pid, pr->pid, e.msg);
			send_error(c, r, e.msg);
		}
		return;
	case PRESERVE_OP__PRESERVE_OP_LIST:
		reg_prune(s);
		preserve_answer(s, c, 0, NULL, NULL, 0, 0);
		return;
	case PRESERVE_OP__PRESERVE_OP_CANCEL:
		preserve_cancel(s, c, pr->id);
		return;
	case PRESERVE_OP__PRESERVE_OP_DUMP_ALL:
	case PRESERVE_OP__PRESERVE_OP_RESTORE_ALL:
		if (s->stopping) {
			send_error(c, -ESHUTDOWN, "ckptd is shutting down");
			return;
		}
		preserve_batch(s, c, pr);
		return;
	default:
		send_error(c, -EINVAL, "unknown preserve operation");
	}
}

/* A batch's dump past its deadline is cancelled: it rolls back, the tree runs on. */
static void preserve_deadlines(struct server *s)
{
	double now = ckpt_monotonic_seconds();

	for (size_t i = 0; i < JOB_SLOTS; i++) {
		struct job *j = &s->jobs[i];

		if (j->id && j->role == JOB_ROLE_PRESERVE_DUMP &&
		    j->state == JOB_STATE__JOB_RUNNING && j->deadline && now > j->deadline)
			job_cancel(j, "its preserve deadline passed");
	}
}

/*
 * The state directory: STATE_DIR (root 0700) with the registry file and
 * preserved/ (root 0700), made if missing. A registry that does not parse
 * is kept aside (registry.bad) and ckptd starts with an empty one, saying so.
 */
static int preserve_open(struct server *s, struct ckpt_error *e)
{
	struct ckpt_error le = {0};
	int r;

	if (s->o->state_fd < 0)
		return 0;
	if (fchmod(s->o->state_fd, 0700) < 0)
		return ckpt_err_errno(e, -errno, "%s: chmod 0700", s->o->state_dir);
	if (mkdirat(s->o->state_fd, "preserved", 0700) < 0 && errno != EEXIST)
		return ckpt_err_errno(e, -errno, "cannot create %s/preserved", s->o->state_dir);
	s->preserved_fd =
	    openat(s->o->state_fd, "preserved", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->preserved_fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open %s/preserved", s->o->state_dir);
	fchown(s->preserved_fd, 0, 0);
	fchmod(s->preserved_fd, 0700);
	r = preserve_load(s->o->state_fd, &s->reg, &le);
	if (r < 0) {
		pr_err("%s: %s: set aside as %s.bad, starting with no registration",
		       s->o->state_dir, le.msg, PRESERVE_FILE);
		renameat(s->o->state_fd, PRESERVE_FILE, s->o->state_fd, PRESERVE_FILE ".bad");
		r = preserve_load(s->o->state_fd, &s->reg, e);
		if (r < 0)
			return r;
	}
	pr_info("preserve: %zu registration(s) in %s", s->reg->n_entries, s->o->state_dir);
	return 0;
}

static void reap_workers(struct server *s)
{
	int wstatus;
	pid_t pid;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
		for (size_t i = 0; i < JOB_SLOTS; i++) {
			struct job *j = &s->jobs[i];

			if (j->id && j->worker == pid) {
				job_finish(s, j, wstatus);
				break;
			}
			if (j->id && j->settler == pid) {
				j->settler = 0;
				j->settled = true;
				j->settle_wstatus = wstatus;
				job_finish(s, j, j->lost_wstatus);
				break;
			}
		}
	}
}

/* --- requests --------------------------------------------------------------- */

static void answer_version(struct conn *c)
{
	static char *features[] = {"dump",     "restore",	"status",	 "cancel",
				   "progress", "leave-running", "peercred-auth", "cgroups-caller",
				   "preserve", "lazy-restore",	"incremental",	 "commit-fd"};
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

static void handle_job_request(struct server *s, struct conn *c, const Request *req, int dir_fd,
			       int commit_fd)
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
	r = job_start(s, c, req, dir_fd, commit_fd, &st, &e);
	if (r < 0)
		send_error(c, r, e.msg);
}

static void handle_request(struct server *s, struct conn *c)
{
	_cleanup_(rpc_request_freep) Request *req = NULL;
	_cleanup_close_ int dir_fd = -1, commit_fd = -1;
	struct ckpt_error e = {0};
	int r;

	r = rpc_recv_request(c->fd, &req, &dir_fd, &commit_fd, &e);
	if (r == -EAGAIN || r == -EINTR)
		return;
	if (r == -ECONNRESET) {
		conn_close(c);
		return;
	}
	if (r == 0)
		r = rpc_validate_request(req, dir_fd, commit_fd, &e);
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
		handle_job_request(s, c, req, dir_fd, commit_fd);
		break;
	case RPC_TYPE__RPC_PRESERVE:
		answer_preserve(s, c, req->preserve);
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

/* A --dump-all / --restore-all goes on when its client leaves (shutdown
 * must not depend on it); only the answer is lost. */
static void watch_batch_conn(struct server *s, struct conn *c, short revents)
{
	char buf[256];
	ssize_t n;

	if (revents & POLLIN) {
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
			return;
	}
	if (s->batch.conn == c)
		s->batch.conn = NULL;
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

		if (c->fd >= 0 && !c->job && !c->batch && now - c->t_last > s->o->idle_timeout) {
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
	for (size_t i = nconn_end; i < n; i++) {
		struct job *j = who[i];

		if (!pfd[i].revents)
			continue;
		job_read_reports(j);
		/* a dead worker's ckpt-restore is gone too */
		if (j->awaiting_restorer && j->report_fd < 0)
			job_finish(s, j, j->lost_wstatus);
	}
	for (size_t i = 2; i < nconn_end; i++) {
		struct conn *c = who[i];

		if (!pfd[i].revents || c->fd != pfd[i].fd)
			continue;
		if (c->job)
			watch_job_conn(s, c, pfd[i].revents);
		else if (c->batch)
			watch_batch_conn(s, c, pfd[i].revents);
		else if (pfd[i].revents & POLLIN)
			handle_request(s, c);
		else
			conn_close(c);
	}
	if (pfd[1].revents)
		accept_all(s);
	close_idle(s);
	preserve_deadlines(s);
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
		s.jobs[i].report_fd = s.jobs[i].dir_fd = s.jobs[i].log_fd = s.jobs[i].commit_fd =
		    -1;
	s.preserved_fd = -1;
	if (preserve_open(&s, e) < 0)
		return ckpt_err_wrap(e, "state directory %s", o.state_dir);
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
	if (s.preserved_fd >= 0)
		close(s.preserved_fd);
	preserve_registry_free(s.reg);
	pr_info("stopped");
	return 0;
}
