/* SPDX-License-Identifier: MIT */
/*
 * Restore order is data. Every object to create is a node that names the
 * nodes it needs first: a task its parent (and its session leader), a
 * process group its leader, a member's join its group, an fd its task and
 * its file. A topological sort (Kahn) gives the order, rejecting cycles;
 * --plan prints it. The stages follow it: files are opened in plan order,
 * each parent forks its children in plan order, groups are made in a round
 * before the joins.
 *
 * Sessions and groups whose leader is outside the tree (the shell that
 * started the root) cannot be recreated: the root becomes the leader of a
 * new session and group, and tasks that shared the root's outside
 * session/group get the root's instead.
 */
#define LOG_PREFIX "plan: "

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "restore.h"

static int node_add(struct plan *p, enum plan_kind kind, int a, int b, size_t *ret)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct plan_node *n = realloc(p->nodes, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->nodes = n;
		p->cap = cap;
	}
	p->nodes[p->n] = (struct plan_node){.kind = kind, .a = a, .b = b};
	*ret = p->n++;
	return 0;
}

static int dep_add(struct plan *p, size_t node, size_t dep)
{
	struct plan_node *n = &p->nodes[node];

	if (n->n_deps == n->cap_deps) {
		size_t cap = n->cap_deps ? n->cap_deps * 2 : 4;
		size_t *d = realloc(n->deps, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		n->deps = d;
		n->cap_deps = cap;
	}
	n->deps[n->n_deps++] = dep;
	return 0;
}

void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->nodes[i].deps);
	free(p->nodes);
	free(p->order);
	free(p->lost_groups);
	memset(p, 0, sizeof(*p));
}

/* ---- sessions and groups ---------------------------------------------------- */

static int map_session(struct restore_ctx *ctx, struct rtask *t)
{
	pid_t saved = t->pst->sid, root_saved = ctx->root->pst->sid;
	pid_t shell = tty_shell_session(ctx);

	if (shell && (t == ctx->root || saved == root_saved)) {
		/* --shell-job: the root's session is the caller's, whatever it was */
		t->sid = shell;
		t->setsid_leader = false;
	} else if (t == ctx->root || saved == t->pid) {
		/* The root always starts a new session: its own, or in place of
		 * the outside one it was in. */
		t->sid = t->pid;
		t->setsid_leader = true;
	} else if (task_by_pid(ctx, saved)) {
		t->sid = saved;
	} else if (saved == root_saved) {
		t->sid = ctx->root->pid;
	} else {
		return ckpt_err(&ctx->err, -EOPNOTSUPP,
				"pid %d: session %d has no leader in the tree and is not the "
				"root's session; not supported",
				t->pid, saved);
	}
	return 0;
}

static int map_group(struct restore_ctx *ctx, struct rtask *t)
{
	pid_t saved = t->pst->pgid, root_saved = ctx->root->pst->pgid;

	if (t == ctx->root || saved == t->pid)
		t->pgid = t->pid;
	else if (task_by_pid(ctx, saved) || zombie_by_pid(ctx, saved))
		t->pgid = saved; /* led by a task, or by a zombie made before the joins */
	else if (saved == root_saved)
		t->pgid = ctx->root->pid;
	else
		t->pgid = saved; /* its leader gone: made again (lost_group_add) */
	return 0;
}

static const struct lost_group *lost_group_of(const struct restore_ctx *ctx, pid_t pgid)
{
	for (size_t i = 0; i < ctx->plan.nlost_groups; i++)
		if (ctx->plan.lost_groups[i].pgid == pgid)
			return &ctx->plan.lost_groups[i];
	return NULL;
}

/*
 * t is in a group whose leader is no task or zombie of the tree (the dump
 * saw it gone): its parent, in its session, makes it for the members.
 */
static int lost_group_add(struct restore_ctx *ctx, struct rtask *t)
{
	const struct lost_group *g = lost_group_of(ctx, t->pgid);
	struct lost_group *n;

	if (g && g->maker->sid != t->sid)
		return ckpt_err(&ctx->err, -EINVAL,
				"process group %d has members in sessions %d and %d", t->pgid,
				g->maker->sid, t->sid);
	if (!g) {
		n = realloc(ctx->plan.lost_groups, (ctx->plan.nlost_groups + 1) * sizeof(*n));
		if (!n)
			return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
		ctx->plan.lost_groups = n;
		/* (t is not the root: the root leads a group of its own) */
		n[ctx->plan.nlost_groups++] = (struct lost_group){t->pgid, t->parent};
	}
	t->group_leader = false;
	t->joins_group = true;
	return 0;
}

/*
 * The group t is in once forked: its nearest ancestor's that leads a
 * session (setsid before it forks); groups are made and joined only after
 * every fork (task.c). 0 if none: P's group, not the tree's (or a loop of
 * parents, which the plan refuses).
 */
static pid_t pgid_at_fork(const struct restore_ctx *ctx, const struct rtask *t)
{
	size_t steps = 0;

	for (const struct rtask *p = t->parent; p && steps++ < ctx->ntasks; p = p->parent)
		if (p->setsid_leader)
			return p->pid;
	return 0;
}

/* What can be rebuilt with setsid() and setpgid() from inside the tasks. */
static int check_sessions(struct restore_ctx *ctx, struct rtask *t)
{
	struct ckpt_error *e = &ctx->err;
	struct rtask *leader;

	if (t->setsid_leader && t->pgid != t->pid)
		return ckpt_err(e, -EINVAL, "pid %d leads session %d but is in process group %d",
				t->pid, t->sid, t->pgid);
	if (!t->setsid_leader && t->parent && t->sid != t->parent->sid)
		return ckpt_err(
		    e, -EOPNOTSUPP,
		    "pid %d: session %d cannot be recreated: its parent %d is in session "
		    "%d and only the parent's session can be inherited",
		    t->pid, t->sid, t->parent->pid, t->parent->sid);
	leader = task_by_pid(ctx, t->pgid);
	if (!leader) {
		/* a zombie's group: made in its parent's session (images.c) */
		const PstreeEntry *z = zombie_by_pid(ctx, t->pgid);
		const struct rtask *zp = z ? task_by_pid(ctx, z->ppid) : NULL;

		if (!z)
			return lost_group_add(ctx, t);
		if (!zp || zp->sid != t->sid)
			return ckpt_err(e, -EINVAL,
					"pid %d: process group %d is led by no task of the "
					"session %d",
					t->pid, t->pgid, t->sid);
		t->group_leader = false;
		t->joins_group = true;
		return 0;
	}
	if (leader->pgid != leader->pid)
		return ckpt_err(e, -EOPNOTSUPP,
				"process group %d: its leader pid %d moved to group %d; not "
				"supported",
				t->pgid, leader->pid, leader->pgid);
	if (leader->sid != t->sid)
		return ckpt_err(e, -EINVAL,
				"pid %d: process group %d belongs to session %d, not the task's "
				"session %d",
				t->pid, t->pgid, leader->sid, t->sid);
	t->group_leader = t->pgid == t->pid && !t->setsid_leader;
	t->joins_group = t->pgid != t->pid;
	t->fork_pgid = pgid_at_fork(ctx, t);
	return 0;
}

/* ---- nodes -------------------------------------------------------------------- */

struct node_index {
	size_t *task;  /* by tasks[] index */
	size_t *group; /* by tasks[] index of the leader, SIZE_MAX if none */
	size_t *file;  /* by files[] index, SIZE_MAX if not an object */
};

static size_t task_idx(const struct restore_ctx *ctx, const struct rtask *t)
{
	return (size_t)(t - ctx->tasks);
}

static int add_nodes(struct restore_ctx *ctx, struct node_index *ix)
{
	struct plan *p = &ctx->plan;
	size_t n;
	int r = 0;

	for (size_t i = 0; r >= 0 && i < ctx->nfiles; i++) {
		ix->file[i] = SIZE_MAX;
		if (ctx->files[i].used_by_fd || ctx->files[i].used_by_map || ctx->files[i].in_flight)
			r = node_add(p, PLAN_FILE, (int)ctx->files[i].fe->id, 0, &ix->file[i]);
	}
	for (size_t i = 0; r >= 0 && i < ctx->ntasks; i++)
		r = node_add(p, PLAN_TASK, ctx->tasks[i].pid, 0, &ix->task[i]);
	for (size_t i = 0; r >= 0 && i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		ix->group[i] = SIZE_MAX;
		if (t->pgid != t->pid)
			continue;
		r = node_add(p, PLAN_GROUP, t->pid, 0, &ix->group[i]);
		if (r >= 0)
			r = dep_add(p, ix->group[i], ix->task[i]);
	}
	for (size_t i = 0; r >= 0 && i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		if (t->parent)
			r = dep_add(p, ix->task[i], ix->task[task_idx(ctx, t->parent)]);
		if (r >= 0 && t->sid != t->pid && t->parent && t->sid != t->parent->pid &&
		    task_by_pid(ctx, t->sid))
			r = dep_add(p, ix->task[i],
				    ix->task[task_idx(ctx, task_by_pid(ctx, t->sid))]);
		if (r < 0 || !t->joins_group)
			continue;
		r = node_add(p, PLAN_JOIN, t->pid, t->pgid, &n);
		if (r >= 0)
			r = dep_add(p, n, ix->task[i]);
		if (r >= 0 && task_by_pid(ctx, t->pgid))
			r = dep_add(p, n, ix->group[task_idx(ctx, task_by_pid(ctx, t->pgid))]);
		else if (r >= 0 && zombie_by_pid(ctx, t->pgid)) /* made by the zombie's parent */
			r = dep_add(p, n,
				    ix->task[task_idx(
					ctx, task_by_pid(ctx, zombie_by_pid(ctx, t->pgid)->ppid))]);
		else if (r >= 0) /* a group whose leader was gone: made by its maker */
			r = dep_add(p, n,
				    ix->task[task_idx(ctx, lost_group_of(ctx, t->pgid)->maker)]);
	}
	for (size_t i = 0; r >= 0 && i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		for (size_t j = 0; r >= 0 && j < t->n_fds; j++) {
			struct rfile *f = file_by_id(ctx, t->fds[j]->id);

			r = node_add(p, PLAN_FD, t->pid, (int)t->fds[j]->fd, &n);
			if (r >= 0)
				r = dep_add(p, n, ix->task[i]);
			if (r >= 0)
				r = dep_add(p, n, ix->file[f - ctx->files]);
		}
	}
	return r < 0 ? ckpt_err(&ctx->err, r, "out of memory building the plan") : 0;
}

/* ---- sort ------------------------------------------------------------------------ */

static void node_name(const struct restore_ctx *ctx, const struct plan_node *n, char *buf,
		      size_t len)
{
	static const char *names[] = {"file", "task", "group", "join", "fd"};

	if (n->kind == PLAN_JOIN || n->kind == PLAN_FD)
		snprintf(buf, len, "%s %d:%d", names[n->kind], n->a, n->b);
	else
		snprintf(buf, len, "%s %d", names[n->kind], n->a);
	(void)ctx;
}

/* Name a cycle among the nodes that could not be sorted. */
static int cycle_error(struct restore_ctx *ctx, const size_t *indeg)
{
	const struct plan *p = &ctx->plan;
	_cleanup_free_ unsigned *seen = calloc(p->n, sizeof(*seen));
	char msg[512] = "", name[64];
	size_t cur = 0, start;
	unsigned step = 1;

	while (cur < p->n && indeg[cur] == 0)
		cur++;
	if (!seen || cur == p->n)
		return ckpt_err(&ctx->err, -ELOOP, "dependency cycle in the restore plan");
	/* Follow unsorted deps until a node repeats: that node is on a cycle. */
	while (!seen[cur]) {
		seen[cur] = step++;
		for (size_t i = 0; i < p->nodes[cur].n_deps; i++)
			if (indeg[p->nodes[cur].deps[i]]) {
				cur = p->nodes[cur].deps[i];
				break;
			}
	}
	start = cur;
	do {
		size_t l = strlen(msg);

		node_name(ctx, &p->nodes[cur], name, sizeof(name));
		snprintf(msg + l, sizeof(msg) - l, "%s needs ", name);
		for (size_t i = 0; i < p->nodes[cur].n_deps; i++)
			if (indeg[p->nodes[cur].deps[i]]) {
				cur = p->nodes[cur].deps[i];
				break;
			}
	} while (cur != start && strlen(msg) < sizeof(msg) - 80);
	node_name(ctx, &p->nodes[start], name, sizeof(name));
	return ckpt_err(&ctx->err, -ELOOP, "dependency cycle in the restore plan: %s%s", msg, name);
}

static int toposort(struct restore_ctx *ctx)
{
	struct plan *p = &ctx->plan;
	_cleanup_free_ size_t *indeg = calloc(p->n + 1, sizeof(size_t));
	_cleanup_free_ size_t *nrev = calloc(p->n + 1, sizeof(size_t));
	_cleanup_free_ size_t *rev_start = calloc(p->n + 1, sizeof(size_t));
	_cleanup_free_ size_t *rev = NULL;
	size_t total = 0, head = 0, tail = 0;

	p->order = calloc(p->n + 1, sizeof(size_t));
	if (!indeg || !nrev || !rev_start || !p->order)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory sorting the plan");
	/* reverse edges (dep -> dependents) in one flat array */
	for (size_t i = 0; i < p->n; i++) {
		indeg[i] = p->nodes[i].n_deps;
		for (size_t j = 0; j < p->nodes[i].n_deps; j++)
			nrev[p->nodes[i].deps[j]]++;
		total += p->nodes[i].n_deps;
	}
	rev = calloc(total + 1, sizeof(size_t));
	if (!rev)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory sorting the plan");
	for (size_t i = 1; i <= p->n; i++)
		rev_start[i] = rev_start[i - 1] + nrev[i - 1];
	memset(nrev, 0, (p->n + 1) * sizeof(size_t));
	for (size_t i = 0; i < p->n; i++)
		for (size_t j = 0; j < p->nodes[i].n_deps; j++) {
			size_t d = p->nodes[i].deps[j];

			rev[rev_start[d] + nrev[d]++] = i;
		}
	/* Kahn: order[] doubles as the queue; ties keep insertion order. */
	for (size_t i = 0; i < p->n; i++)
		if (indeg[i] == 0)
			p->order[tail++] = i;
	while (head < tail) {
		size_t cur = p->order[head++];

		for (size_t j = 0; j < nrev[cur]; j++) {
			size_t d = rev[rev_start[cur] + j];

			if (--indeg[d] == 0)
				p->order[tail++] = d;
		}
	}
	if (tail != p->n)
		return cycle_error(ctx, indeg);
	return 0;
}

/* Children of each task in plan order: the order parents fork them in. */
static int order_children(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		if (t->parent)
			t->parent->n_children++;
	}
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		t->children = calloc(t->n_children + 1, sizeof(*t->children));
		if (!t->children)
			return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
		t->n_children = 0;
	}
	for (size_t i = 0; i < ctx->plan.n; i++) {
		const struct plan_node *n = &ctx->plan.nodes[ctx->plan.order[i]];
		struct rtask *t;

		if (n->kind != PLAN_TASK)
			continue;
		t = task_by_pid(ctx, n->a);
		if (t->parent)
			t->parent->children[t->parent->n_children++] = t;
	}
	return 0;
}

int plan_build(struct restore_ctx *ctx)
{
	struct node_index ix = {0};
	int r = 0;

	for (size_t i = 0; r >= 0 && i < ctx->ntasks; i++) {
		r = map_session(ctx, &ctx->tasks[i]);
		if (r >= 0)
			r = map_group(ctx, &ctx->tasks[i]);
	}
	for (size_t i = 0; r >= 0 && i < ctx->ntasks; i++)
		r = check_sessions(ctx, &ctx->tasks[i]);
	if (r < 0)
		return r;
	ix.task = calloc(ctx->ntasks + 1, sizeof(size_t));
	ix.group = calloc(ctx->ntasks + 1, sizeof(size_t));
	ix.file = calloc(ctx->nfiles + 1, sizeof(size_t));
	if (!ix.task || !ix.group || !ix.file)
		r = ckpt_err(&ctx->err, -ENOMEM, "out of memory building the plan");
	if (r >= 0)
		r = add_nodes(ctx, &ix);
	free(ix.task);
	free(ix.group);
	free(ix.file);
	if (r >= 0)
		r = toposort(ctx);
	if (r >= 0)
		r = order_children(ctx);
	if (r >= 0)
		pr_debug("%zu objects sorted", ctx->plan.n);
	return r;
}

/* ---- stopped tasks ------------------------------------------------------------------- */

/* The signal a task saved as stopped is stopped with again at resume, 0 if none. */
int plan_stop_signal(const struct rtask *t)
{
	if (!t->core->has_stopped || !t->core->stopped)
		return 0;
	return t->core->has_stop_signal ? (int)t->core->stop_signal : SIGSTOP;
}

/* No member of group pgid has its parent in another group of its session:
 * the kernel discards SIGTSTP, SIGTTIN and SIGTTOU sent to it. The root's
 * parent is the restorer, in the root's session only with --shell-job. */
static bool group_orphaned(const struct restore_ctx *ctx, pid_t pgid)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		const struct rtask *m = &ctx->tasks[i];

		if (m->pgid != pgid)
			continue;
		if (!m->parent) {
			if (tty_shell_session(ctx))
				return false;
			continue;
		}
		if (m->parent->pgid != pgid && m->parent->sid == m->sid)
			return false;
	}
	return true;
}

/*
 * Stage pids: a task stopped by SIGTSTP, SIGTTIN or SIGTTOU can only be
 * stopped by it again in a group that is not orphaned. Checked here, not in
 * plan_build, because the dump runs the plan without knowing whether the
 * restore will be a shell job (the dump refuses the usual case itself).
 */
int plan_check_stops(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		const struct rtask *t = &ctx->tasks[i];
		int sig = plan_stop_signal(t);

		if (!sig || sig == SIGSTOP || !group_orphaned(ctx, t->pgid))
			continue;
		return ckpt_err(&ctx->err, -EOPNOTSUPP,
				"pid %d was stopped by SIG%s; restored, its process group %d has "
				"no parent in its session (an orphaned group, where the kernel "
				"discards SIG%s), so it could not be stopped by it again: restore "
				"it as a shell job (--shell-job)",
				t->pid, sigabbrev_np(sig), t->pgid, sigabbrev_np(sig));
	}
	return 0;
}

/* ---- --plan ------------------------------------------------------------------------ */

static void print_task(const struct restore_ctx *ctx, FILE *out, const struct rtask *t)
{
	fprintf(out, "task %d  '%s'  parent %d  session %d%s  group %d", t->pid, t->core->comm,
		t->parent ? t->parent->pid : 0, t->sid, t->setsid_leader ? " (setsid)" : "",
		t->pgid);
	if (t->pst->sid != t->sid || t->pst->pgid != t->pgid)
		fprintf(out, "  (saved session %d group %d: leader outside the tree)", t->pst->sid,
			t->pst->pgid);
	fprintf(out, "  %zu areas, %" PRIu64 " KiB of pages, %zu fds\n", t->mm->n_vmas,
		t->pages_bytes / 1024, t->n_fds);
	(void)ctx;
}

static void print_fd(const struct restore_ctx *ctx, FILE *out, const struct rtask *t, int fd)
{
	for (size_t i = 0; i < t->n_fds; i++) {
		const FdEntry *fe = t->fds[i];

		if ((int)fe->fd != fd)
			continue;
		fprintf(out, "fd %d:%d -> file %u %s%s\n", t->pid, fd, fe->id,
			file_by_id(ctx, fe->id)->fe->path, fe->cloexec ? "  (cloexec)" : "");
	}
}

void plan_print(const struct restore_ctx *ctx, FILE *out)
{
	const struct plan *p = &ctx->plan;

	fprintf(out, "restore plan for %s: %zu tasks, %zu files, %zu steps (root pid %d)\n",
		ctx->opts->dir, ctx->ntasks, ctx->nfiles, p->n, ctx->root->pid);
	for (size_t i = 0; i < p->n; i++) {
		const struct plan_node *n = &p->nodes[p->order[i]];
		const struct rfile *f;

		fprintf(out, "%5zu  ", i + 1);
		switch (n->kind) {
		case PLAN_FILE:
			f = file_by_id(ctx, (uint32_t)n->a);
			fprintf(out, "file %d  %s  %s%s%s\n", n->a, f->fe->path,
				f->used_by_fd || f->in_flight ? f->kind->name : "",
				f->used_by_map ? (f->used_by_fd ? ", mapped" : "mapped") : "",
				f->in_flight ? ", in flight" : "");
			break;
		case PLAN_TASK:
			print_task(ctx, out, task_by_pid(ctx, n->a));
			break;
		case PLAN_GROUP:
			fprintf(out, "group %d  made by its leader\n", n->a);
			break;
		case PLAN_JOIN:
			fprintf(out, "join %d -> group %d\n", n->a, n->b);
			break;
		case PLAN_FD:
			print_fd(ctx, out, task_by_pid(ctx, n->a), n->b);
			break;
		}
	}
}
