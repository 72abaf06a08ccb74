/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the restore planner (restorer/plan.c): trees and files
 * as images_load() leaves them in a restore_ctx, given as tables, then
 * plan_build() and plan_print() themselves. Checked: the sorted order
 * (parents before children whatever the pstree order, files before
 * everything, group leaders before the members' joins (for a group led by
 * a zombie: its parent, which makes it), fds after their task and file,
 * ties in insertion order), that every node comes after
 * what it needs, the sessions and groups the tasks get (leaders outside
 * the tree mapped to the root), the errors for cycles and for sessions and
 * groups that cannot be rebuilt, the children each parent forks, and the
 * printed plan.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "restore.h"

#define MAX_TASKS 8
#define MAX_FILES 8
#define MAX_FDS 8

/* How a task is rebuilt (plan_build sets exactly one of the three). */
enum role {
	ROLE_ANY,    /* not checked */
	ROLE_SETSID, /* setsid() before forking its children */
	ROLE_GROUP,  /* setpgid(0, 0) in the first group round */
	ROLE_JOIN,   /* setpgid(0, pgid) in the second */
};

struct t_task {
	pid_t pid, ppid, sid, pgid; /* as saved in pstree.img */
	pid_t want_sid, want_pgid;  /* after plan_build (0: not checked) */
	enum role role;
};

struct t_file {
	uint32_t id;
	FileType type;
	const char *path; /* NULL ends the table */
	bool by_fd, by_map;
};

struct t_fd {
	pid_t pid; /* 0 ends the table */
	uint32_t fd, id;
	bool cloexec;
};

/* A zombie child (pstree.img entry with zombie_status). */
struct t_zombie {
	pid_t pid, ppid, sid, pgid; /* 0 ends the table */
};

struct plan_case {
	const char *name;
	struct t_task tasks[MAX_TASKS]; /* pstree order; the root has ppid 0 */
	struct t_zombie zombies[2];
	struct t_file files[MAX_FILES]; /* sorted by id */
	struct t_fd fds[MAX_FDS];	/* by task, then fd number */
	int err;			/* plan_build() */
	const char *want;		/* the order, or the error message */
};

/* ---- a restore_ctx as images_load() leaves it ------------------------------------ */

struct fixture {
	struct restore_opts opts;
	struct restore_ctx ctx;
	struct rtask tasks[MAX_TASKS];
	struct rtask *by_pid[MAX_TASKS];
	PstreeEntry pst[MAX_TASKS];
	PstreeEntry zpst[2];
	PstreeEntry *zombies[2];
	CoreEntry core[MAX_TASKS];
	MmEntry mm[MAX_TASKS];
	struct rfile files[MAX_FILES];
	FileEntry fe[MAX_FILES];
	FdEntry fde[MAX_FDS];
	FdEntry *fdp[MAX_FDS];
};

static int cmp_task_pid(const void *a, const void *b)
{
	const struct rtask *x = *(struct rtask *const *)a, *y = *(struct rtask *const *)b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

static void fixture_init(struct fixture *fx, const struct plan_case *c)
{
	struct restore_ctx *ctx = &fx->ctx;
	size_t nfd = 0;

	memset(fx, 0, sizeof(*fx));
	fx->opts = (struct restore_opts){RESTORE_OPTS_NO_FDS, .dir = "/img"};
	restore_ctx_init(ctx, &fx->opts);
	ctx->tasks = fx->tasks;
	ctx->by_pid = fx->by_pid;
	ctx->files = fx->files;
	for (size_t i = 0; i < MAX_FILES && c->files[i].path; i++) {
		const struct t_file *tf = &c->files[i];
		struct rfile *f = &fx->files[i];

		file_entry__init(&fx->fe[i]);
		fx->fe[i].id = tf->id;
		fx->fe[i].type = tf->type;
		fx->fe[i].path = (char *)tf->path;
		*f = (struct rfile){.fe = &fx->fe[i], .id = tf->id, .obj_fd = -1, .map_fd = -1};
		f->used_by_fd = tf->by_fd;
		f->used_by_map = tf->by_map;
		if (tf->by_fd)
			f->kind = fd_kind_for_file(f->fe);
		ck_assert(i == 0 || tf->id > c->files[i - 1].id);
		ctx->nfiles++;
	}
	for (size_t i = 0; i < MAX_TASKS && c->tasks[i].pid; i++) {
		const struct t_task *tt = &c->tasks[i];
		struct rtask *t = &fx->tasks[i];

		pstree_entry__init(&fx->pst[i]);
		fx->pst[i].pid = tt->pid;
		fx->pst[i].ppid = tt->ppid;
		fx->pst[i].sid = tt->sid;
		fx->pst[i].pgid = tt->pgid;
		core_entry__init(&fx->core[i]);
		fx->core[i].comm = tt->ppid ? "worker" : "init";
		mm_entry__init(&fx->mm[i]);
		fx->mm[i].n_vmas = 10 + i;
		t->pid = tt->pid;
		t->ppid = tt->ppid;
		t->pst = &fx->pst[i];
		t->core = &fx->core[i];
		t->mm = &fx->mm[i];
		t->pages_bytes = (uint64_t)(i + 1) << 20;
		t->fds = &fx->fdp[nfd];
		for (size_t k = 0; k < MAX_FDS && c->fds[k].pid; k++) {
			if (c->fds[k].pid != tt->pid)
				continue;
			fd_entry__init(&fx->fde[nfd]);
			fx->fde[nfd].fd = c->fds[k].fd;
			fx->fde[nfd].kind = FD_KIND__FD_FILE;
			fx->fde[nfd].id = c->fds[k].id;
			fx->fde[nfd].has_cloexec = true;
			fx->fde[nfd].cloexec = c->fds[k].cloexec;
			fx->fdp[nfd] = &fx->fde[nfd];
			nfd++;
			t->n_fds++;
		}
		fx->by_pid[i] = t;
		ctx->ntasks++;
	}
	ctx->zombies = fx->zombies;
	for (size_t i = 0; i < 2 && c->zombies[i].pid; i++) {
		pstree_entry__init(&fx->zpst[i]);
		fx->zpst[i].pid = c->zombies[i].pid;
		fx->zpst[i].ppid = c->zombies[i].ppid;
		fx->zpst[i].sid = c->zombies[i].sid;
		fx->zpst[i].pgid = c->zombies[i].pgid;
		fx->zpst[i].has_zombie_status = true;
		fx->zombies[i] = &fx->zpst[i];
		ctx->nzombies++;
	}
	qsort(fx->by_pid, ctx->ntasks, sizeof(*fx->by_pid), cmp_task_pid);
	/* as link_tree() does */
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &fx->tasks[i];

		if (t->ppid == 0) {
			ck_assert_ptr_null(ctx->root);
			ctx->root = t;
			continue;
		}
		t->parent = task_by_pid(ctx, t->ppid);
		ck_assert_ptr_nonnull(t->parent);
	}
	ck_assert_ptr_nonnull(ctx->root);
}

/* What the fixture does not own: the plan and the children lists. */
static void fixture_free(struct fixture *fx)
{
	for (size_t i = 0; i < fx->ctx.ntasks; i++)
		free(fx->tasks[i].children);
	plan_free(&fx->ctx.plan);
}

/* The plan as "task 100, group 100, ..." (the names of plan.c's messages). */
static void order_string(const struct plan *p, char *buf, size_t len)
{
	static const char *names[] = {"file", "task", "group", "join", "fd"};
	size_t at = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->n && at < len; i++) {
		const struct plan_node *n = &p->nodes[p->order[i]];

		if (n->kind == PLAN_JOIN || n->kind == PLAN_FD)
			at += (size_t)snprintf(buf + at, len - at, "%s%s %d:%d", i ? ", " : "",
					       names[n->kind], n->a, n->b);
		else
			at += (size_t)snprintf(buf + at, len - at, "%s%s %d", i ? ", " : "",
					       names[n->kind], n->a);
	}
	ck_assert_uint_lt(at, len);
}

/* Every node exactly once, each after every node it needs. */
static void check_topological(const struct plan *p)
{
	_cleanup_free_ size_t *pos = calloc(p->n + 1, sizeof(*pos));

	ck_assert_ptr_nonnull(pos);
	for (size_t i = 0; i < p->n; i++) {
		ck_assert_uint_lt(p->order[i], p->n);
		ck_assert_uint_eq(pos[p->order[i]], 0);
		pos[p->order[i]] = i + 1;
	}
	for (size_t i = 0; i < p->n; i++)
		for (size_t j = 0; j < p->nodes[i].n_deps; j++)
			ck_assert_uint_lt(pos[p->nodes[i].deps[j]], pos[i]);
}

/* ---- the table ------------------------------------------------------------------- */

static const struct plan_case cases[] = {
    {
	.name = "one task: its group after it",
	.tasks = {{100, 0, 100, 100, 100, 100, ROLE_SETSID}},
	.want = "task 100, group 100",
    },
    {
	/* pstree order is not trusted: the sort puts the parent first */
	.name = "child listed before its parent",
	.tasks = {{101, 100, 100, 100, 100, 100, ROLE_JOIN},
		  {100, 0, 100, 100, 100, 100, ROLE_SETSID}},
	.want = "task 100, task 101, group 100, join 101:100",
    },
    {
	.name = "three generations listed backwards",
	.tasks = {{102, 101, 100, 100, 100, 100, ROLE_JOIN},
		  {101, 100, 100, 100, 100, 100, ROLE_JOIN},
		  {100, 0, 100, 100, 100, 100, ROLE_SETSID}},
	.want = "task 100, task 101, group 100, task 102, join 101:100, join 102:100",
    },
    {
	/* nothing between siblings: insertion (pstree) order is kept */
	.name = "independent siblings keep their order",
	.tasks = {{100, 0, 100, 100, 100, 100, ROLE_SETSID},
		  {103, 100, 100, 103, 100, 103, ROLE_GROUP},
		  {101, 100, 100, 101, 100, 101, ROLE_GROUP},
		  {102, 100, 100, 102, 100, 102, ROLE_GROUP}},
	.want = "task 100, task 103, task 101, task 102, group 100, group 103, group 101, "
		"group 102",
    },
    {
	/*
	 * The shell's session 50 and group 50 are outside the tree: the root
	 * makes its own and whoever shared them gets the root's. 101 leads a
	 * group that 102 joins; 103 makes a session that its child 104 and
	 * grandchild 105 inherit (105 also needs its session leader 103).
	 */
	.name = "sessions and groups, leaders outside the tree",
	.tasks = {{100, 0, 50, 50, 100, 100, ROLE_SETSID},
		  {101, 100, 50, 101, 100, 101, ROLE_GROUP},
		  {102, 100, 50, 101, 100, 101, ROLE_JOIN},
		  {103, 100, 103, 103, 103, 103, ROLE_SETSID},
		  {104, 103, 103, 103, 103, 103, ROLE_JOIN},
		  {105, 104, 103, 103, 103, 103, ROLE_JOIN}},
	.want = "task 100, task 101, task 102, task 103, group 100, group 101, task 104, "
		"group 103, join 102:101, task 105, join 104:103, join 105:103",
    },
    {
	/*
	 * Both ends of a pipe (and the shared end 101 inherited) are opened by
	 * P before anything is forked; a file only mapped is opened too, one
	 * nobody uses is not in the plan; each fd comes after its task and
	 * its file.
	 */
	.name = "files first, fds after their task and file",
	.tasks = {{100, 0, 100, 100, 100, 100, ROLE_SETSID},
		  {101, 100, 100, 100, 100, 100, ROLE_JOIN}},
	.files = {{1, FILE_TYPE__FILE_PIPE, "pipe:[777]", true, false},
		  {2, FILE_TYPE__FILE_PIPE, "pipe:[777]", true, false},
		  {3, FILE_TYPE__FILE_REG, "/usr/lib/libc.so.6", false, true},
		  {4, FILE_TYPE__FILE_REG, "/unused", false, false},
		  {5, FILE_TYPE__FILE_REG, "/var/log/app.log", true, true}},
	.fds = {{100, 3, 1, false}, {100, 4, 2, true}, {100, 7, 5, false}, {101, 0, 2, false}},
	.want = "file 1, file 2, file 3, file 5, task 100, task 101, group 100, fd 100:3, "
		"fd 100:4, fd 100:7, fd 101:0, join 101:100",
    },
    {
	.name = "cycle of two parents",
	.tasks = {{100, 0, 100, 100, 0, 0, ROLE_ANY},
		  {101, 102, 100, 100, 0, 0, ROLE_ANY},
		  {102, 101, 100, 100, 0, 0, ROLE_ANY}},
	.err = -ELOOP,
	.want = "dependency cycle in the restore plan: task 101 needs task 102 needs task 101",
    },
    {
	/* the message names the cycle, not 104 that only hangs off it */
	.name = "cycle of three parents, a task hanging off it",
	.tasks = {{100, 0, 100, 100, 0, 0, ROLE_ANY},
		  {104, 101, 100, 100, 0, 0, ROLE_ANY},
		  {101, 103, 100, 100, 0, 0, ROLE_ANY},
		  {102, 101, 100, 100, 0, 0, ROLE_ANY},
		  {103, 102, 100, 100, 0, 0, ROLE_ANY},
		  {105, 100, 100, 100, 0, 0, ROLE_ANY}},
	.err = -ELOOP,
	.want = "dependency cycle in the restore plan: task 101 needs task 103 needs task 102 "
		"needs task 101",
    },
    {
	.name = "session leader missing",
	.tasks = {{100, 0, 50, 50, 0, 0, ROLE_ANY}, {101, 100, 60, 50, 0, 0, ROLE_ANY}},
	.err = -EOPNOTSUPP,
	.want = "pid 101: session 60 has no leader in the tree and is not the root's session; "
		"not supported",
    },
    {
	/* its leader reaped (the dump saw no process of that pid): made again
	 * by a helper the member's parent forks */
	.name = "group leader gone",
	.tasks = {{100, 0, 50, 50, 0, 0, ROLE_ANY}, {101, 100, 50, 70, 100, 70, ROLE_JOIN}},
	.want = "task 100, task 101, group 100, join 101:70",
    },
    {
	.name = "group leader gone, members in two sessions",
	.tasks = {{100, 0, 100, 100, 0, 0, ROLE_ANY},
		  {101, 100, 100, 70, 0, 0, ROLE_ANY},
		  {102, 100, 102, 102, 0, 0, ROLE_ANY},
		  {103, 102, 102, 70, 0, 0, ROLE_ANY}},
	.err = -EINVAL,
	.want = "process group 70 has members in sessions 100 and 102",
    },
    {
	.name = "session not inherited from the parent",
	.tasks = {{100, 0, 100, 100, 0, 0, ROLE_ANY},
		  {101, 100, 101, 101, 0, 0, ROLE_ANY},
		  {102, 101, 100, 100, 0, 0, ROLE_ANY}},
	.err = -EOPNOTSUPP,
	.want = "pid 102: session 100 cannot be recreated: its parent 101 is in session 101 and "
		"only the parent's session can be inherited",
    },
    {
	.name = "group leader moved to another group",
	.tasks = {{100, 0, 100, 100, 0, 0, ROLE_ANY},
		  {101, 100, 100, 102, 0, 0, ROLE_ANY},
		  {102, 100, 100, 100, 0, 0, ROLE_ANY}},
	.err = -EOPNOTSUPP,
	.want = "process group 102: its leader pid 102 moved to group 100; not supported",
    },
    {
	.name = "session leader in another group",
	.tasks = {{100, 0, 100, 100, 0, 0, ROLE_ANY}, {101, 100, 101, 100, 0, 0, ROLE_ANY}},
	.err = -EINVAL,
	.want = "pid 101 leads session 101 but is in process group 100",
    },
    {
	/* a pipeline whose first process exited: the zombie leads the group */
	.name = "group led by a zombie",
	.tasks = {{100, 0, 100, 100, 100, 100, ROLE_SETSID},
		  {102, 100, 100, 101, 100, 101, ROLE_JOIN}},
	.zombies = {{101, 100, 100, 101}},
	.want = "task 100, task 102, group 100, join 102:101",
    },
    {
	.name = "group led by a zombie of another session",
	.tasks = {{100, 0, 100, 100, 0, 0, ROLE_ANY},
		  {102, 100, 102, 102, 0, 0, ROLE_ANY},
		  {103, 102, 102, 101, 0, 0, ROLE_ANY}},
	.zombies = {{101, 100, 100, 101}},
	.err = -EINVAL,
	.want = "pid 103: process group 101 is led by no task of the session 102",
    },
    {
	.name = "group of another session",
	.tasks = {{100, 0, 100, 100, 0, 0, ROLE_ANY},
		  {101, 100, 101, 101, 0, 0, ROLE_ANY},
		  {102, 100, 100, 101, 0, 0, ROLE_ANY}},
	.err = -EINVAL,
	.want = "pid 102: process group 101 belongs to session 101, not the task's session 100",
    },
};

START_TEST(test_plan)
{
	const struct plan_case *c = &cases[_i];
	struct fixture fx;
	char order[1024];
	int r;

	fixture_init(&fx, c);
	r = plan_build(&fx.ctx);
	ck_assert_msg(r == c->err, "%s: plan_build returned %d (%s), expected %d", c->name, r,
		      fx.ctx.err.msg, c->err);
	if (c->err) {
		ck_assert_int_eq(fx.ctx.err.code, c->err);
		ck_assert_msg(!strcmp(fx.ctx.err.msg, c->want), "%s: error\n  %s\nexpected\n  %s",
			      c->name, fx.ctx.err.msg, c->want);
		fixture_free(&fx);
		return;
	}
	order_string(&fx.ctx.plan, order, sizeof(order));
	ck_assert_msg(!strcmp(order, c->want), "%s: order\n  %s\nexpected\n  %s", c->name, order,
		      c->want);
	check_topological(&fx.ctx.plan);
	for (size_t i = 0; i < fx.ctx.ntasks; i++) {
		const struct t_task *tt = &c->tasks[i];
		const struct rtask *t = &fx.tasks[i];

		if (tt->want_sid)
			ck_assert_int_eq(t->sid, tt->want_sid);
		if (tt->want_pgid)
			ck_assert_int_eq(t->pgid, tt->want_pgid);
		if (tt->role == ROLE_ANY)
			continue;
		ck_assert_msg(t->setsid_leader == (tt->role == ROLE_SETSID) &&
				  t->group_leader == (tt->role == ROLE_GROUP) &&
				  t->joins_group == (tt->role == ROLE_JOIN),
			      "%s: pid %d: setsid %d group leader %d joins %d, expected role %d",
			      c->name, t->pid, t->setsid_leader, t->group_leader, t->joins_group,
			      tt->role);
	}
	fixture_free(&fx);
}
END_TEST

/* Each parent forks its children in plan order, which is pstree order among siblings. */
START_TEST(test_children)
{
	struct fixture fx;
	const struct rtask *root, *t103;

	fixture_init(&fx, &cases[4]); /* sessions and groups */
	ck_assert_int_eq(plan_build(&fx.ctx), 0);
	root = task_by_pid(&fx.ctx, 100);
	ck_assert_uint_eq(root->n_children, 3);
	ck_assert_int_eq(root->children[0]->pid, 101);
	ck_assert_int_eq(root->children[1]->pid, 102);
	ck_assert_int_eq(root->children[2]->pid, 103);
	t103 = task_by_pid(&fx.ctx, 103);
	ck_assert_uint_eq(t103->n_children, 1);
	ck_assert_int_eq(t103->children[0]->pid, 104);
	ck_assert_uint_eq(task_by_pid(&fx.ctx, 104)->n_children, 1);
	ck_assert_int_eq(task_by_pid(&fx.ctx, 104)->children[0]->pid, 105);
	ck_assert_uint_eq(task_by_pid(&fx.ctx, 105)->n_children, 0);
	fixture_free(&fx);

	fixture_init(&fx, &cases[3]); /* independent siblings: 103 listed first */
	ck_assert_int_eq(plan_build(&fx.ctx), 0);
	root = task_by_pid(&fx.ctx, 100);
	ck_assert_uint_eq(root->n_children, 3);
	ck_assert_int_eq(root->children[0]->pid, 103);
	ck_assert_int_eq(root->children[1]->pid, 101);
	ck_assert_int_eq(root->children[2]->pid, 102);
	fixture_free(&fx);
}
END_TEST

/* --plan: one line per step, in plan order. */
START_TEST(test_print)
{
	static const char want[] =
	    "restore plan for /img: 2 tasks, 5 files, 12 steps (root pid 100)\n"
	    "    1  file 1  pipe:[777]  pipe\n"
	    "    2  file 2  pipe:[777]  pipe\n"
	    "    3  file 3  /usr/lib/libc.so.6  mapped\n"
	    "    4  file 5  /var/log/app.log  regular file, mapped\n"
	    "    5  task 100  'init'  parent 0  session 100 (setsid)  group 100  10 areas, "
	    "1024 KiB of pages, 3 fds\n"
	    "    6  task 101  'worker'  parent 100  session 100  group 100  11 areas, "
	    "2048 KiB of pages, 1 fds\n"
	    "    7  group 100  made by its leader\n"
	    "    8  fd 100:3 -> file 1 pipe:[777]\n"
	    "    9  fd 100:4 -> file 2 pipe:[777]  (cloexec)\n"
	    "   10  fd 100:7 -> file 5 /var/log/app.log\n"
	    "   11  fd 101:0 -> file 2 pipe:[777]\n"
	    "   12  join 101 -> group 100\n";
	static const char want_outside[] =
	    "    1  task 100  'init'  parent 0  session 100 (setsid)  group 100  (saved session "
	    "50 group 50: leader outside the tree)  10 areas, 1024 KiB of pages, 0 fds\n";
	struct fixture fx;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	FILE *out;

	fixture_init(&fx, &cases[5]); /* files first */
	ck_assert_int_eq(plan_build(&fx.ctx), 0);
	out = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(out);
	plan_print(&fx.ctx, out);
	ck_assert_int_eq(fclose(out), 0);
	ck_assert_str_eq(text, want);
	fixture_free(&fx);
	free(text);
	text = NULL;

	fixture_init(&fx, &cases[4]); /* the shell's session and group */
	ck_assert_int_eq(plan_build(&fx.ctx), 0);
	out = open_memstream(&text, &len);
	ck_assert_ptr_nonnull(out);
	plan_print(&fx.ctx, out);
	ck_assert_int_eq(fclose(out), 0);
	ck_assert_ptr_nonnull(strstr(text, want_outside));
	fixture_free(&fx);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("plan");
	TCase *tc = tcase_create("plan");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_plan, 0, ARRAY_SIZE(cases));
	tcase_add_test(tc, test_children);
	tcase_add_test(tc, test_print);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
