/* SPDX-License-Identifier: MIT */
/*
 * libckpt: checkpoint and restore process trees through the ckptd service.
 *
 * A job scheduler (or any program) links -lckpt (pkg-config ckpt) and calls
 * ckpt_dump() / ckpt_restore(); each call connects to ckptd, sends one
 * request with the image directory as an open fd, waits for the answer and
 * fills a struct ckpt_result. Calls are synchronous and thread-safe (each
 * uses its own connection); the library keeps no state, never prints and
 * never exits.
 *
 * The socket: opts->socket if set, else $CKPT_SOCKET, else
 * /run/ckpt/ckptd.sock.
 *
 * Every function returns 0 or a negative errno, the same value as
 * result->status, and on failure result->error says what went wrong in a
 * way a user can act on ("pid 812: fd 5: io_uring instance is not
 * supported", "ckptd is not running at /run/ckpt/ckptd.sock ...").
 */
#ifndef CKPT_CKPT_H
#define CKPT_CKPT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_ERROR_LEN 1024

/* Progress of a running job, reported while ckpt_dump / ckpt_restore wait. */
struct ckpt_progress {
	uint64_t job_id;
	uint64_t bytes; /* memory written (dump) or read (restore) so far */
	unsigned tasks_done;
	unsigned tasks_total;
};

typedef void (*ckpt_progress_fn)(const struct ckpt_progress *progress, void *data);

struct ckpt_dump_opts {
	int pid;		   /* root of the tree to dump */
	const char *dir;	   /* image directory: created (0700), or existing and empty */
	int leave_running;	   /* nonzero: resume the tree after the dump, else kill it */
	const char *socket;	   /* NULL: $CKPT_SOCKET or the default */
	ckpt_progress_fn progress; /* NULL or called for each progress report */
	void *progress_data;
	/*
	 * Appended in 0.1 (pre-1.0: the struct grows at its end only).
	 * nonzero: the tree is a job of the user's terminal (a pty whose
	 * master is outside the tree); saved as such instead of refused.
	 */
	int shell_job;
	/*
	 * Appended in 0.1 (pre-1.0). Resources outside the tree to save
	 * instead of refusing them, like `ckptctl dump --external`:
	 * "unix:INODE" (a unix socket of the tree connected to a process
	 * outside it; after restore its peer is gone). NULL or n_external
	 * strings.
	 */
	const char *const *external;
	size_t n_external;
	/*
	 * Appended in 0.1 (pre-1.0). nonzero: established TCP connections
	 * are not held for restore (`ckptctl dump --tcp-close`): the peers see
	 * them closed, and after restore the program sees them reset.
	 */
	int tcp_close;
	/*
	 * Appended in 0.1 (pre-1.0). Incremental dumps (docs/incremental.md):
	 * pre_dump nonzero saves the memory only, leaves the tree running and
	 * arms write tracking; parent (NULL: none) is the checkpoint to build
	 * on, as a path relative to dir (e.g. "../pre1"): only the pages
	 * written since it are saved.
	 */
	int pre_dump;
	const char *parent;
};

struct ckpt_restore_opts {
	const char *dir;    /* image directory written by ckpt_dump */
	const char *socket; /* NULL: $CKPT_SOCKET or the default */
	ckpt_progress_fn progress;
	void *progress_data;
	/*
	 * Appended in 0.1 (pre-1.0). nonzero: restore a --shell-job dump as
	 * the foreground job of the terminal tty_fd. ckptd refuses it (the job
	 * must be made inside the caller's session): ckpt_restore then fails
	 * with -EOPNOTSUPP; run `ckptctl restore --shell-job` as root instead.
	 */
	int shell_job;
	int tty_fd;
	/*
	 * Appended in 0.1 (pre-1.0). NULL or "exact": every task back in the
	 * cgroups it was dumped in (the restore fails if one is gone);
	 * "caller": the dumped root's cgroup in each hierarchy is the calling
	 * process's current one, the cgroups below it are made below it
	 * (`ckptctl restore --cgroups=caller`).
	 */
	const char *cgroups;
	/*
	 * Appended in 0.1 (pre-1.0). new_pidns: restore into a new pid
	 * namespace where every task has its saved pid (the result's pid is
	 * the root as the caller sees it). continue_clocks: in a new time
	 * namespace where CLOCK_MONOTONIC and CLOCK_BOOTTIME go on from the dump.
	 */
	int new_pidns;
	int continue_clocks;
	/*
	 * Appended in 0.1 (pre-1.0). lazy: return once the tree runs; a pager
	 * brings its memory in (result->pager_pid; keep dir until it is gone,
	 * ckpt_job_status says when: docs/lazy.md).
	 */
	int lazy;
};

struct ckpt_result {
	int status;		    /* 0 or -errno */
	char error[CKPT_ERROR_LEN]; /* empty on success */
	int pid;		    /* dumped root, or restored root (same pid) */
	unsigned ntasks;	    /* tasks (threads included) dumped or restored */
	uint64_t bytes;		    /* bytes of images written or read */
	double seconds;		    /* time the daemon spent on the job */
	uint64_t job_id;	    /* the daemon's id of the job, 0 if none was made */
	int pager_pid;		    /* restore with opts->lazy: the pager (appended in 0.1) */
};

/* Dump the tree rooted at opts->pid into opts->dir. */
int ckpt_dump(const struct ckpt_dump_opts *opts, struct ckpt_result *result);
/* Restore the tree in opts->dir; result->pid is its root. */
int ckpt_restore(const struct ckpt_restore_opts *opts, struct ckpt_result *result);

enum ckpt_job_type {
	CKPT_JOB_DUMP = 2,
	CKPT_JOB_RESTORE = 3,
};

enum ckpt_job_state {
	CKPT_JOB_RUNNING = 1,
	CKPT_JOB_DONE = 2,
	CKPT_JOB_FAILED = 3,
	CKPT_JOB_CANCELLED = 4,
};

struct ckpt_job {
	uint64_t job_id;
	int type;  /* enum ckpt_job_type */
	int state; /* enum ckpt_job_state */
	int pid;
	unsigned uid; /* who asked */
	uint64_t bytes;
	unsigned tasks_done;
	unsigned tasks_total;
	double seconds;
	uint64_t started_unix_ms;
	char *error; /* NULL, or why the job failed */
	/* a lazy restore's pager, 0 if none; whether it still runs (0.1) */
	int pager_pid;
	int pager_running;
};

/*
 * The jobs ckptd is running and has recently finished (those of the caller
 * only, unless the caller is root). On success *jobs is an array of *n jobs
 * to free with ckpt_jobs_free (NULL when *n is 0).
 */
int ckpt_job_status(const char *socket, struct ckpt_job **jobs, size_t *n,
		    struct ckpt_result *result);
void ckpt_jobs_free(struct ckpt_job *jobs, size_t n);

/* Ask ckptd to cancel a running job. */
int ckpt_cancel(const char *socket, uint64_t job_id, struct ckpt_result *result);

/* The daemon's version string ("0.1.0") into buf. */
int ckpt_daemon_version(const char *socket, char *buf, size_t len, struct ckpt_result *result);

/* "dump", "restore", "running", "done", ... for printing. */
const char *ckpt_job_type_name(int type);
const char *ckpt_job_state_name(int state);

#ifdef __cplusplus
}
#endif

#endif /* CKPT_CKPT_H */
