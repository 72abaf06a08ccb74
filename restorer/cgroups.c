/* SPDX-License-Identifier: MIT */
/*
 * Cgroups: every task and thread goes back to the cgroup it was dumped in,
 * in every hierarchy (v1 ones and the v2 one; ThreadCore.cgroups).
 *
 * Stage verify (cgroups_check, from checks_machine): each saved (hierarchy,
 * path) is found on this machine through /proc/self/mountinfo (hierarchies
 * by their controllers, never by id); a cgroup or hierarchy that is not
 * here refuses the restore before anything is created, but for a hierarchy
 * that is not mounted here when we are in the very cgroup the tasks go to
 * (they are made in it: nothing to write; a container with only the v2
 * hierarchy mounted, on a host that also has systemd's named v1 one, where
 * /proc/PID/cgroup names both). With
 * --cgroups=caller, the root task's cgroup in each hierarchy stands for the
 * caller's current one (ours, or that of --caller-pid: ckptd's client), the
 * cgroups below it for cgroups below the caller's, made in stage cgroups;
 * a task outside the root's subtree is refused.
 *
 * Stage cgroups (cgroups_restore): P writes each tid that is not where it
 * must be into `tasks` (v1: per thread), each pid into `cgroup.procs` (v2:
 * the whole process) and then each thread of a threaded subtree that is
 * elsewhere into `cgroup.threads`, with the caller's own rights: the stage
 * raises no capability (stages.c), so a cgroup file the caller may not write
 * is an error naming it, never a move the caller could not make alone.
 */
#define LOG_PREFIX "cgroups: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "log.h"
#include "proc.h"
#include "restore.h"

/* More hierarchies than any kernel has controllers, with room for named ones. */
#define CGROUPS_PER_THREAD_MAX 64

struct rcgroup {
	const char *controllers; /* image's ("" v2) */
	const char *saved;	 /* image's path */
	pid_t pid, tid;		 /* first thread in it, for messages */
	char *target;		 /* the path after restore, as our /proc/self/cgroup shows it */
	char *dir;		 /* its directory here (NULL: not mounted, we are in it) */
	bool missing;		 /* --cgroups=caller: made in stage cgroups */
};

static const char *hname(const char *controllers)
{
	return controllers[0] ? controllers : "v2";
}

/* ---- stage verify: the fields ------------------------------------------------------ */

int cgroups_validate_thread(const char *file, size_t idx, const ThreadCore *th,
			    struct ckpt_error *e)
{
	if (th->n_cgroups > CGROUPS_PER_THREAD_MAX)
		return ckpt_err(e, -EINVAL, "%s: field threads[%zu].cgroups: %zu entries, at most %d",
				file, idx, th->n_cgroups, CGROUPS_PER_THREAD_MAX);
	for (size_t i = 0; i < th->n_cgroups; i++) {
		const CgroupMember *m = th->cgroups[i];
		const char *why = cgroup_controllers_invalid(m->controllers);

		if (why)
			return ckpt_err(e, -EINVAL,
					"%s: field threads[%zu].cgroups[%zu].controllers: %s", file,
					idx, i, why);
		why = cgroup_path_invalid(m->path);
		if (why)
			return ckpt_err(e, -EINVAL, "%s: field threads[%zu].cgroups[%zu].path: %s",
					file, idx, i, why);
		for (size_t j = 0; j < i; j++)
			if (cgroup_controllers_equal(th->cgroups[j]->controllers, m->controllers))
				return ckpt_err(e, -EINVAL,
						"%s: field threads[%zu].cgroups[%zu]: hierarchy %s "
						"twice",
						file, idx, i, hname(m->controllers));
	}
	return 0;
}

/* ---- stage verify: this machine ---------------------------------------------------- */

static ThreadCore *thread_core(const struct rtask *t, size_t i)
{
	return i ? t->threads[i - 1].core : t->thread;
}

static const CgroupMember *member_of(const ThreadCore *th, const char *controllers)
{
	for (size_t i = 0; i < th->n_cgroups; i++)
		if (cgroup_controllers_equal(th->cgroups[i]->controllers, controllers))
			return th->cgroups[i];
	return NULL;
}

static struct rcgroup *rcg_find(const struct restore_ctx *ctx, const CgroupMember *m)
{
	for (size_t i = 0; i < ctx->ncgroups; i++)
		if (!strcmp(ctx->cgroups[i].saved, m->path) &&
		    cgroup_controllers_equal(ctx->cgroups[i].controllers, m->controllers))
			return &ctx->cgroups[i];
	return NULL;
}

static int rcg_add(struct restore_ctx *ctx, const CgroupMember *m, pid_t pid, pid_t tid)
{
	struct rcgroup *n;

	if (rcg_find(ctx, m))
		return 0;
	n = realloc(ctx->cgroups, (ctx->ncgroups + 1) * sizeof(*n));
	if (!n)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	ctx->cgroups = n;
	n = &ctx->cgroups[ctx->ncgroups++];
	memset(n, 0, sizeof(*n));
	n->controllers = m->controllers;
	n->saved = m->path;
	n->pid = pid;
	n->tid = tid;
	return 0;
}

/* --cgroups=caller: where the root's subtree goes in each hierarchy. */
static int caller_target(struct restore_ctx *ctx, const struct cgroup_list *caller,
			 struct rcgroup *g)
{
	const CgroupMember *root = member_of(ctx->root->thread, g->controllers);
	const struct cgroup_line *c = cgroup_list_find(caller, g->controllers);
	const char *rel, *why;

	if (!root)
		return ckpt_err(&ctx->err, -EOPNOTSUPP,
				"pid %d: cgroup hierarchy %s: the root task %d was in none of "
				"its cgroups, so --cgroups=caller has nothing to map it to",
				g->pid, hname(g->controllers), ctx->root->pid);
	if (!cgroup_path_below(g->saved, root->path))
		return ckpt_err(&ctx->err, -EOPNOTSUPP,
				"pid %d (thread %d): cgroup %s:/%s is outside the root task's "
				"cgroup /%s; --cgroups=caller places only the root's subtree",
				g->pid, g->tid, hname(g->controllers), g->saved, root->path);
	if (!c)
		return ckpt_err(&ctx->err, -EOPNOTSUPP,
				"cgroup hierarchy %s: the caller%s is in none of its cgroups "
				"(--cgroups=caller)",
				hname(g->controllers), ctx->opts->caller_pid ? " process" : "");
	rel = g->saved + strlen(root->path);
	while (*rel == '/')
		rel++;
	if (asprintf(&g->target, "%s%s%s", c->path, c->path[0] && rel[0] ? "/" : "", rel) < 0)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	why = cgroup_path_invalid(g->target);
	if (why)
		return ckpt_err(&ctx->err, -EOPNOTSUPP,
				"pid %d: cgroup %s:/%s under the caller's /%s: %s", g->pid,
				hname(g->controllers), g->saved, c->path, why);
	return 0;
}

/* A frozen cgroup would stop the tasks the next stages drive by ptrace. */
static int check_not_frozen(struct restore_ctx *ctx, const struct rcgroup *g)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	struct ckpt_error ignore = {0};
	bool frozen;

	if (asprintf(&path, "%s/%s", g->dir, g->controllers[0] ? "freezer.state" : "cgroup.freeze") <
	    0)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	if (proc_read_file(path, &text, NULL, &ignore) < 0)
		return 0; /* not a freezer hierarchy, or the root cgroup */
	frozen = g->controllers[0] ? strncmp(text, "THAWED", 6) != 0 : text[0] == '1';
	if (frozen)
		return ckpt_err(&ctx->err, -EBUSY,
				"pid %d: cgroup %s:/%s is frozen (%s); thaw it before restoring",
				g->pid, hname(g->controllers), g->target, path);
	return 0;
}

/*
 * --cgroups=caller makes plain directories: a process whose threads were in
 * different v2 cgroups (a threaded subtree, cgroup.type "threaded") is
 * refused rather than restored with its threads together.
 */
static int check_not_threaded(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		const struct rtask *t = &ctx->tasks[i];
		const CgroupMember *main_v2 = member_of(t->thread, "");

		for (size_t k = 1; main_v2 && k <= t->n_threads; k++) {
			const CgroupMember *v2 = member_of(thread_core(t, k), "");

			if (v2 && strcmp(v2->path, main_v2->path))
				return ckpt_err(&ctx->err, -EOPNOTSUPP,
						"pid %d: thread %d is in v2 cgroup /%s, the process "
						"in /%s: --cgroups=caller does not make threaded "
						"subtrees (restore without it)",
						t->pid, thread_core(t, k)->tid, v2->path,
						main_v2->path);
		}
	}
	return 0;
}

int cgroups_check(struct restore_ctx *ctx)
{
	struct cgroup_mounts mounts = {0};
	struct cgroup_list caller = {0}, self = {0};
	bool by_caller = ctx->opts->cgroups == RESTORE_CGROUPS_CALLER;
	int r = 0;

	for (size_t i = 0; r >= 0 && i < ctx->ntasks; i++) {
		const struct rtask *t = &ctx->tasks[i];

		for (size_t k = 0; r >= 0 && k <= t->n_threads; k++) {
			const ThreadCore *th = thread_core(t, k);

			for (size_t j = 0; r >= 0 && j < th->n_cgroups; j++)
				r = rcg_add(ctx, th->cgroups[j], t->pid, th->tid);
		}
	}
	if (r < 0 || !ctx->ncgroups)
		return r;
	r = cgroup_mounts_read(&mounts, &ctx->err);
	if (r >= 0)
		r = cgroup_parse_file("/proc/self/cgroup", &self, &ctx->err);
	if (r >= 0 && by_caller) {
		char path[64] = "/proc/self/cgroup";

		if (ctx->opts->caller_cgroup_path)
			snprintf(path, sizeof(path), "%s", ctx->opts->caller_cgroup_path);
		else if (ctx->opts->caller_pid)
			snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)ctx->opts->caller_pid);
		r = cgroup_parse_file(path, &caller, &ctx->err);
	}
	for (size_t i = 0; r >= 0 && i < ctx->ncgroups; i++) {
		struct rcgroup *g = &ctx->cgroups[i];
		struct stat st;

		if (by_caller)
			r = caller_target(ctx, &caller, g);
		else if (!(g->target = strdup(g->saved)))
			r = ckpt_err(&ctx->err, -ENOMEM, "out of memory");
		if (r < 0)
			break;
		if (!cgroup_mounts_have(&mounts, g->controllers)) {
			const struct cgroup_line *us = cgroup_list_find(&self, g->controllers);

			if (us && !strcmp(us->path, g->target)) {
				pr_info("hierarchy %s is not mounted here; its tasks are made in "
					"/%s, where we are",
					hname(g->controllers), g->target);
				continue;
			}
		}
		r = cgroup_dir(&mounts, g->controllers, g->target, &g->dir, &ctx->err);
		if (r < 0) {
			ckpt_err_wrap(&ctx->err, "pid %d (thread %d)", g->pid, g->tid);
			break;
		}
		if (stat(g->dir, &st) == 0 && S_ISDIR(st.st_mode)) {
			r = check_not_frozen(ctx, g);
		} else if (by_caller) {
			g->missing = true;
		} else {
			r = ckpt_err(&ctx->err, -ENOENT,
				     "pid %d (thread %d): cgroup %s:/%s does not exist here (%s); "
				     "restore with --cgroups=caller to place the tree under the "
				     "restorer's own cgroups",
				     g->pid, g->tid, hname(g->controllers), g->saved, g->dir);
		}
	}
	if (r >= 0 && by_caller)
		r = check_not_threaded(ctx);
	cgroup_mounts_free(&mounts);
	cgroup_list_free(&caller);
	cgroup_list_free(&self);
	return r;
}

/* ---- stage cgroups ---------------------------------------------------------------- */

/* mkdir dir and the parents it lacks, each removed again if the restore fails. */
static int make_dir(struct restore_ctx *ctx, const char *dir, int depth)
{
	_cleanup_free_ char *parent = strdup(dir);
	struct stat st;
	char *slash;
	int r;

	if (!parent)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	if (stat(dir, &st) == 0)
		return 0;
	slash = strrchr(parent, '/');
	if (!slash || slash == parent || depth > 512)
		return ckpt_err(&ctx->err, -ENOENT, "cannot make cgroup %s: no parent", dir);
	*slash = '\0';
	r = make_dir(ctx, parent, depth + 1);
	if (r < 0)
		return r;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return ckpt_err_errno(&ctx->err, -errno, "cannot make cgroup %s", dir);
	pr_info("made cgroup %s", dir);
	return restore_undo_rmdir(ctx, dir);
}

static int read_current(struct restore_ctx *ctx, pid_t pid, pid_t tid, struct cgroup_list *ret)
{
	char path[96];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", pid, tid);
	return cgroup_parse_file(path, ret, &ctx->err);
}

static int write_id(struct restore_ctx *ctx, const struct rcgroup *g, const char *file, pid_t id)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	char buf[16];
	int n;

	if (!g->dir)
		return ckpt_err(&ctx->err, -ENOENT,
				"cannot move it into cgroup %s:/%s: the hierarchy is not mounted here",
				hname(g->controllers), g->target);
	if (asprintf(&path, "%s/%s", g->dir, file) < 0)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	n = snprintf(buf, sizeof(buf), "%d", (int)id);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		return ckpt_err_errno(&ctx->err, -errno, "cannot move it into cgroup %s:/%s: %s",
				      hname(g->controllers), g->target, path);
	pr_debug("%d -> %s", (int)id, path);
	return 0;
}

/*
 * id into cgroup m (resolved by stage verify) through file, unless cur (the
 * thread's cgroups now) says it is there already: a task made in the very
 * cgroup it belongs to costs no write, and needs no right on it.
 */
static int move(struct restore_ctx *ctx, const struct cgroup_list *cur, const CgroupMember *m,
		const char *file, pid_t id)
{
	const struct rcgroup *g = rcg_find(ctx, m);
	const struct cgroup_line *c = cgroup_list_find(cur, m->controllers);

	if (!g || !g->target)
		return ckpt_err(&ctx->err, -EINVAL, "cgroup %s:/%s not resolved by stage verify",
				hname(m->controllers), m->path);
	if (c && !strcmp(c->path, g->target))
		return 0;
	return write_id(ctx, g, file, id);
}

static int restore_task(struct restore_ctx *ctx, struct rtask *t)
{
	const CgroupMember *main_v2 = member_of(t->thread, "");
	int r;

	/* v2 first: the whole process, then the threads of a threaded subtree */
	if (main_v2) {
		struct cgroup_list cur = {0};

		r = read_current(ctx, t->pid, t->pid, &cur);
		if (r >= 0)
			r = move(ctx, &cur, main_v2, "cgroup.procs", t->pid);
		cgroup_list_free(&cur);
		if (r < 0)
			return ckpt_err_wrap(&ctx->err, "pid %d", t->pid);
	}
	for (size_t k = 0; k <= t->n_threads; k++) {
		const ThreadCore *th = thread_core(t, k);
		struct cgroup_list cur = {0};

		r = read_current(ctx, t->pid, th->tid, &cur);
		for (size_t j = 0; r >= 0 && j < th->n_cgroups; j++) {
			const CgroupMember *m = th->cgroups[j];
			bool v2 = !m->controllers[0];

			if (!v2 || k > 0)
				r = move(ctx, &cur, m, v2 ? "cgroup.threads" : "tasks", th->tid);
		}
		cgroup_list_free(&cur);
		if (r < 0)
			return ckpt_err_wrap(&ctx->err, "pid %d: thread %d", t->pid, th->tid);
	}
	return 0;
}

int cgroups_restore(struct restore_ctx *ctx)
{
	int r;

	for (size_t i = 0; i < ctx->ncgroups; i++) {
		if (!ctx->cgroups[i].missing)
			continue;
		r = make_dir(ctx, ctx->cgroups[i].dir, 0);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < ctx->ntasks; i++) {
		r = restore_task(ctx, &ctx->tasks[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

void cgroups_free(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ncgroups; i++) {
		free(ctx->cgroups[i].target);
		free(ctx->cgroups[i].dir);
	}
	free(ctx->cgroups);
	ctx->cgroups = NULL;
	ctx->ncgroups = 0;
}
