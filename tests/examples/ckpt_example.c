/* SPDX-License-Identifier: MIT */
/*
 * A job scheduler's use of libckpt, in small: dump or restore a tree through
 * ckptd, list its jobs. Uses only the public header (pkg-config ckpt).
 *
 *   ckpt-example [--socket PATH] [--progress] dump PID DIR [--leave-running]
 *   ckpt-example [--socket PATH] [--progress] restore DIR [--lazy]
 *   ckpt-example [--socket PATH] status | version | cancel JOB
 *
 * On success prints one line of key=value pairs (for scripts) and exits 0;
 * on failure prints "ckpt-example: <error>" on stderr and exits 1.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ckpt/ckpt.h>

static void on_progress(const struct ckpt_progress *p, void *data)
{
	const char *what = data;

	fprintf(stderr, "%s: job %" PRIu64 ": %u/%u tasks, %" PRIu64 " bytes\n", what, p->job_id,
		p->tasks_done, p->tasks_total, p->bytes);
}

static void print_result(const char *what, const struct ckpt_result *r)
{
	printf("%s status=%d pid=%d ntasks=%u bytes=%" PRIu64 " seconds=%.3f job=%" PRIu64
	       " pager=%d\n",
	       what, r->status, r->pid, r->ntasks, r->bytes, r->seconds, r->job_id, r->pager_pid);
}

static int usage(void)
{
	fprintf(stderr,
		"usage: ckpt-example [--socket PATH] [--progress] "
		"dump PID DIR [--leave-running] | restore DIR [--lazy] | status | version | "
		"cancel JOB\n");
	return 2;
}

static int fail(const struct ckpt_result *r)
{
	fprintf(stderr, "ckpt-example: %s\n", r->error);
	return 1;
}

static int do_status(const char *socket)
{
	struct ckpt_result r;
	struct ckpt_job *jobs;
	size_t n;

	if (ckpt_job_status(socket, &jobs, &n, &r) < 0)
		return fail(&r);
	for (size_t i = 0; i < n; i++)
		printf("job=%" PRIu64 " type=%s state=%s pid=%d uid=%u bytes=%" PRIu64
		       " tasks=%u/%u pager=%d pager_running=%d error=%s\n",
		       jobs[i].job_id, ckpt_job_type_name(jobs[i].type),
		       ckpt_job_state_name(jobs[i].state), jobs[i].pid, jobs[i].uid, jobs[i].bytes,
		       jobs[i].tasks_done, jobs[i].tasks_total, jobs[i].pager_pid,
		       jobs[i].pager_running, jobs[i].error ? jobs[i].error : "");
	ckpt_jobs_free(jobs, n);
	return 0;
}

int main(int argc, char **argv)
{
	const char *socket = NULL;
	int progress = 0, i = 1;
	struct ckpt_result r;

	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--socket") && i + 1 < argc)
			socket = argv[++i];
		else if (!strcmp(argv[i], "--progress"))
			progress = 1;
		else
			return usage();
	}
	if (i >= argc)
		return usage();
	if (!strcmp(argv[i], "dump") && (argc - i == 3 || argc - i == 4)) {
		struct ckpt_dump_opts o = {
		    .pid = atoi(argv[i + 1]),
		    .dir = argv[i + 2],
		    .leave_running = argc - i == 4 && !strcmp(argv[i + 3], "--leave-running"),
		    .socket = socket,
		    .progress = progress ? on_progress : NULL,
		    .progress_data = "dump",
		};

		if (argc - i == 4 && !o.leave_running)
			return usage();
		if (ckpt_dump(&o, &r) < 0)
			return fail(&r);
		print_result("dump", &r);
		return 0;
	}
	if (!strcmp(argv[i], "restore") &&
	    (argc - i == 2 || (argc - i == 3 && !strcmp(argv[i + 2], "--lazy")))) {
		struct ckpt_restore_opts o = {
		    .dir = argv[i + 1],
		    .socket = socket,
		    .progress = progress ? on_progress : NULL,
		    .progress_data = "restore",
		    .lazy = argc - i == 3,
		};

		if (ckpt_restore(&o, &r) < 0)
			return fail(&r);
		print_result("restore", &r);
		return 0;
	}
	if (!strcmp(argv[i], "status") && argc - i == 1)
		return do_status(socket);
	if (!strcmp(argv[i], "cancel") && argc - i == 2) {
		if (ckpt_cancel(socket, strtoull(argv[i + 1], NULL, 10), &r) < 0)
			return fail(&r);
		print_result("cancel", &r);
		return 0;
	}
	if (!strcmp(argv[i], "version") && argc - i == 1) {
		char v[128];

		if (ckpt_daemon_version(socket, v, sizeof(v), &r) < 0)
			return fail(&r);
		printf("version=%s\n", v);
		return 0;
	}
	return usage();
}
