/* SPDX-License-Identifier: MIT */
/*
 * Freezing the tree: every task is seized (PTRACE_SEIZE + PTRACE_INTERRUPT)
 * before its children are listed, so the walk sees a stable tree; a second
 * walk confirms that no task appeared meanwhile (a child subreaper in the
 * tree can adopt orphans). What the dump can't handle yet is refused here,
 * on the frozen task, with the pid and the reason.
 */
#define LOG_PREFIX "dump: "

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "dump_internal.h"
#include "fault.h"
#include "page_pipes.h"
#include "log.h"

#define PF_KTHREAD 0x00200000

/* "/dev/pts/3", "/dev/tty2", or the device numbers */
static void tty_name(int tty_nr, char *buf, size_t len)
{
	unsigned major = ((unsigned)tty_nr >> 8) & 0xfff;
	unsigned minor = ((unsigned)tty_nr & 0xff) | (((unsigned)tty_nr >> 12) & 0xfff00);

	if (major >= 136 && major <= 143)
		snprintf(buf, len, "/dev/pts/%u", (major - 136) * 256 + minor);
	else if (major == 4 && minor < 64)
		snprintf(buf, len, "/dev/tty%u", minor);
	else if (major == 4)
		snprintf(buf, len, "/dev/ttyS%u", minor - 64);
	else if (major == 5 && minor == 1)
		snprintf(buf, len, "/dev/console");
	else
		snprintf(buf, len, "terminal device %u:%u", major, minor);
}

/* The root must not be init, the dumping process, or one of its ancestors
 * (freezing our own ancestor would deadlock or kill us). */
static int check_root(struct dump_ctx *c, pid_t root, struct ckpt_error *e)
{
	pid_t p = c->self;

	if (root <= 0)
		return ckpt_err(e, -EINVAL, "invalid pid %d", root);
	if (root == 1)
		return ckpt_err(e, -EINVAL, "pid 1 (init) can't be dumped");
	if (root == c->self)
		return ckpt_err(e, -EINVAL, "pid %d is the dumping process itself", root);
	while (p > 1) {
		struct proc_stat st;

		if (proc_parse_stat(p, &st, e) < 0)
			return ckpt_err_wrap(e, "checking the ancestors of the dumping process");
		p = st.ppid;
		if (p == root)
			return ckpt_err(e, -EINVAL,
					"pid %d is an ancestor of the dumping process (pid %d); a "
					"process can't dump the tree it runs in",
					root, c->self);
	}
	return 0;
}

/* inode of /proc/PID/ns/NAME; 0 without time namespaces in this kernel */
static int ns_ino(pid_t pid, const char *name, uint64_t *ret, struct ckpt_error *e)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	*ret = 0;
	if (stat(path, &st) == 0) {
		*ret = (uint64_t)st.st_ino;
		return 0;
	}
	if (errno == ENOENT && access("/proc/self/ns/time", F_OK) < 0)
		return 0;
	return ckpt_err_errno(e, -errno, "stat %s", path);
}

/*
 * The tree's time namespace: every task in the root's, none with another
 * one made for its children (unshare(CLONE_NEWTIME)), so that one pair of
 * offsets tells the tree's clocks (a restore makes one time namespace).
 */
static int check_time_ns(struct dump_ctx *c, pid_t pid, struct ckpt_error *e)
{
	uint64_t own, kids;
	int r = ns_ino(pid, "time", &own, e);

	if (r >= 0)
		r = ns_ino(pid, "time_for_children", &kids, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d", pid);
	if (own != kids)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d made a time namespace for its children "
				"(unshare(CLONE_NEWTIME)) that it is not in itself; not supported",
				pid);
	if (pid == c->opts->pid) {
		int64_t tm, tb, sm, sb;

		c->time_ns_ino = own;
		r = ckpt_timens_offsets(pid, &tm, &tb, e);
		if (r >= 0)
			r = ckpt_timens_offsets(0, &sm, &sb, e);
		if (r < 0)
			return ckpt_err_wrap(e, "pid %d: time namespace offsets", pid);
		c->tree_mono_delta = tm - sm;
		c->tree_boot_delta = tb - sb;
		return 0;
	}
	if (own != c->time_ns_ino)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d is in another time namespace than the root (pid %d); a tree "
				"spread over time namespaces is not supported",
				pid, c->opts->pid);
	return 0;
}

static int zombie_err(pid_t pid, const struct proc_stat *st, struct ckpt_error *e)
{
	_cleanup_free_ pid_t *tids = NULL;
	struct ckpt_error tmp = {0};
	size_t ntids = 0;

	/* A 'Z' main thread with live threads left: it called pthread_exit. */
	if (proc_list_tasks(pid, &tids, &ntids, &tmp) == 0 && ntids > 1)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: its main thread has exited (pthread_exit) while %zu other "
				"threads run; not supported yet",
				pid, ntids - 1);
	return ckpt_err(e, -EBUSY,
			"pid %d is a zombie (it exited and its parent pid %d has not reaped it "
			"yet); zombies are not supported yet",
			pid, st->ppid);
}

/*
 * A zombie child of a task of the tree: nothing to freeze or dump but its
 * pid and wait status (it can't change any more); the restorer recreates
 * it as a child that exits at once with that status.
 */
static int add_zombie(struct dump_ctx *c, const struct proc_stat *st, pid_t ppid,
		      struct ckpt_error *e)
{
	struct dump_zombie *n = realloc(c->zombies, (c->nzombies + 1) * sizeof(*n));

	if (!n)
		return ckpt_err(e, -ENOMEM, "out of memory for the zombie list");
	c->zombies = n;
	n[c->nzombies++] = (struct dump_zombie){.pid = st->pid,
						.ppid = ppid,
						.pgid = st->pgrp,
						.sid = st->session,
						.status = st->exit_code};
	snprintf(n[c->nzombies - 1].comm, sizeof(n->comm), "%.15s", st->comm);
	pr_debug("pid %d: zombie child of pid %d, wait status %#x", st->pid, ppid, st->exit_code);
	return 1;
}

static bool is_zombie(const struct dump_ctx *c, pid_t pid)
{
	for (size_t i = 0; i < c->nzombies; i++)
		if (c->zombies[i].pid == pid)
			return true;
	return false;
}

/* What we refuse, checked on the frozen task. */
static int check_task(struct dump_ctx *c, pid_t pid, const struct proc_stat *st,
		      struct ckpt_error *e)
{
	struct proc_status status;
	char tty[64];

	if (proc_parse_status(pid, &status, e) < 0)
		return ckpt_err_wrap(e, "pid %d", pid);
	if (status.nspid_levels > c->self_nspid_levels)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d is in a pid namespace below its root's (it or an ancestor "
				"made one): a tree spread over pid namespaces is not supported",
				pid);
	if (pid != c->opts->pid && check_time_ns(c, pid, e) < 0)
		return e->code;
	/* its filters must not block the remote syscalls of the dump */
	if (status.seccomp != 0 && ptrace_suspend_seccomp(pid, e) < 0)
		return e->code;
	/* a pty as controlling terminal is checked with the fds (dump_tty.c) */
	if (st->tty_nr != 0 && !dump_tty_nr_is_pty(st->tty_nr)) {
		tty_name(st->tty_nr, tty, sizeof(tty));
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d is attached to terminal %s; terminal jobs are not "
				"supported yet (use setsid/nohup)",
				pid, tty);
	}
	return 0;
}

static struct dump_task *new_task(struct dump_ctx *c, struct ckpt_error *e)
{
	struct dump_task *t;

	if (c->ntasks == c->tasks_cap) {
		size_t cap = c->tasks_cap ? c->tasks_cap * 2 : 16;
		struct dump_task *n = realloc(c->tasks, cap * sizeof(*n));

		if (!n) {
			ckpt_err(e, -ENOMEM, "out of memory for the task list");
			return NULL;
		}
		c->tasks = n;
		c->tasks_cap = cap;
	}
	t = &c->tasks[c->ntasks];
	memset(t, 0, sizeof(*t));
	t->pidfd = -1;
	return t;
}

static bool proc_exists(pid_t pid)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/%d", pid);
	return access(path, F_OK) == 0;
}

static bool proc_tid_exists(pid_t pid, pid_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task/%d", pid, tid);
	return access(path, F_OK) == 0;
}

static bool task_has_thread(const struct dump_task *t, pid_t tid)
{
	if (tid == t->pid)
		return true;
	for (size_t i = 0; i < t->nthreads; i++)
		if (t->threads[i] == tid)
			return true;
	return false;
}

/*
 * Seize every other thread of a process whose main thread is frozen. The
 * threads still running may create more threads meanwhile: list again until
 * a pass finds nothing new (a thread that exited since it was listed is
 * simply not part of the process any more).
 */
static int seize_threads(struct dump_task *t, struct ckpt_error *e)
{
	unsigned found;

	do {
		_cleanup_free_ pid_t *tids = NULL, *begun = NULL;
		_cleanup_free_ char *states = NULL;
		struct ckpt_error tmp = {0};
		size_t ntids = 0, nbegun = 0;
		pid_t *n;
		int r = 0;

		found = 0;
		/* the io_uring workers are told apart among the new ones only: a
		 * second pass over 10,000 known threads reads no stat file */
		if (proc_list_tids(t->pid, &tids, &ntids, e) < 0)
			return ckpt_err_wrap(e, "pid %d: listing threads", t->pid);
		begun = calloc(ntids, sizeof(*begun));
		states = calloc(ntids, 1);
		n = realloc(t->threads, (t->nthreads + ntids) * sizeof(*n));
		if (n)
			t->threads = n;
		if (!begun || !states || !n)
			return ckpt_err(e, -ENOMEM, "out of memory for the thread list");
		/*
		 * Every new thread seized and interrupted, then each stop waited
		 * for (ptrace_seize_begin): they trap while we seize the next
		 * ones. One stat read each: an io_uring worker is not seized, and
		 * its state is the one ptrace_seize_stop would read.
		 */
		for (size_t i = 0; r >= 0 && i < ntids; i++) {
			bool worker;
			char state;

			if (task_has_thread(t, tids[i]))
				continue;
			state = proc_tid_state(t->pid, tids[i], &worker);
			if (worker)
				continue;
			r = ptrace_seize_begin(tids[i], e);
			if (r == -ESRCH && !proc_tid_exists(t->pid, tids[i])) {
				r = 0;
				continue;
			}
			if (r < 0) {
				r = ckpt_err_wrap(e, "pid %d: thread %d", t->pid, tids[i]);
				break;
			}
			states[nbegun] = state;
			begun[nbegun++] = tids[i];
		}
		for (size_t i = 0; i < nbegun; i++) {
			int r2 = ptrace_seize_end(begun[i], states[i], NULL, r < 0 ? &tmp : e);

			if (r2 == -ESRCH && !proc_tid_exists(t->pid, begun[i]))
				continue;
			if (r2 < 0) {
				if (r >= 0)
					r = ckpt_err_wrap(e, "pid %d: thread %d", t->pid, begun[i]);
				continue;
			}
			/* its seccomp filters are suspended once every thread is
			 * frozen (dump_thread_status), before its remote session */
			t->threads[t->nthreads++] = begun[i];
			found++;
		}
		if (r < 0)
			return r;
	} while (found);
	if (t->nthreads)
		pr_debug("pid %d: %zu more threads seized", t->pid, t->nthreads);
	return 0;
}

static int seize_one(struct dump_ctx *c, pid_t pid, pid_t ppid, struct ckpt_error *e)
{
	struct proc_stat st;
	struct dump_task *t;
	int r;

	if (pid == c->self)
		return ckpt_err(e, -EINVAL, "pid %d is the dumping process itself", pid);
	if (proc_parse_stat(pid, &st, e) < 0) {
		if (e->code == -ENOENT)
			return ckpt_err(e, -ESRCH, "no process with pid %d", pid);
		return ckpt_err_wrap(e, "pid %d", pid);
	}
	if (st.state == 'Z' && ppid && st.num_threads <= 1)
		return add_zombie(c, &st, ppid, e);
	if (st.state == 'Z' || st.state == 'X')
		return zombie_err(pid, &st, e);
	if (st.flags & PF_KTHREAD)
		return ckpt_err(e, -EINVAL, "pid %d is a kernel thread", pid);
	t = new_task(c, e);
	if (!t)
		return -ENOMEM;
	t->pid = pid;
	t->ppid = ppid;
	r = ptrace_seize_begin(pid, e);
	if (r >= 0) {
		/* seized, its stop not waited for yet: a test acts here (test_run
		 * ends the task; an injected failure detaches it with the rest) */
		int f = ckpt_fault_inject("dump-seizing", e);
		struct ckpt_error tmp = {0};

		r = ptrace_seize_end(pid, st.state, &t->stop_sig, f < 0 ? &tmp : e);
		if (r >= 0 && f < 0) {
			t->seized = true;
			c->ntasks++;
			return f;
		}
	}
	if (r < 0) {
		struct ckpt_error tmp = {0};

		if (proc_parse_stat(pid, &st, &tmp) == 0 && st.state == 'Z')
			return zombie_err(pid, &st, e);
		return r;
	}
	t->seized = true;
	c->ntasks++;
	if (!c->t_frozen) {
		c->t_frozen = ckpt_monotonic_seconds();
		/* as the tree sees them: --continue-clocks goes on from here */
		c->frozen_mono_ns = ckpt_clock_ns(CLOCK_MONOTONIC) + c->tree_mono_delta;
		c->frozen_boot_ns = ckpt_clock_ns(CLOCK_BOOTTIME) + c->tree_boot_delta;
	}
	r = seize_threads(t, e);
	if (r < 0)
		return r;

	/* the task is frozen now: what we read next can't change under us */
	if (proc_parse_stat(pid, &st, e) < 0)
		return ckpt_err_wrap(e, "pid %d", pid);
	r = check_task(c, pid, &st, e);
	if (r >= 0)
		r = dump_kstate_check(c, t, e);
	if (r < 0)
		return r;
	/* before any remote call: it would raise SIGSYS */
	r = dump_sud_suspend(t, e);
	if (r < 0)
		return r;
	t->pgid = st.pgrp;
	t->sid = st.session;
	t->tty_nr = st.tty_nr;
	pr_debug("seized pid %d (parent %d)%s", pid, ppid, t->stop_sig ? ", stopped" : "");
	return 0;
}

/*
 * The children of every thread of tasks[i]: the kernel lists a child under
 * the thread that forked it (/proc/PID/task/TID/children), so a process whose
 * worker thread forks has children the main thread's list does not show.
 */
static int list_children(const struct dump_task *t, pid_t **ret, size_t *ret_n,
			 struct ckpt_error *e)
{
	_cleanup_free_ pid_t *all = NULL;
	size_t nall = 0;

	for (size_t k = 0; k <= t->nthreads; k++) {
		pid_t tid = k ? t->threads[k - 1] : t->pid;
		_cleanup_free_ pid_t *kids = NULL;
		size_t nkids = 0;
		pid_t *n;
		int r;

		r = proc_list_children(t->pid, tid, &kids, &nkids, e);
		if (r < 0)
			return ckpt_err_wrap(e, "pid %d: listing the children of thread %d", t->pid,
					     tid);
		if (!nkids)
			continue;
		n = realloc(all, (nall + nkids) * sizeof(*n));
		if (!n)
			return ckpt_err(e, -ENOMEM, "out of memory for the children of pid %d",
					t->pid);
		all = n;
		memcpy(all + nall, kids, nkids * sizeof(*kids));
		nall += nkids;
	}
	*ret = TAKE_PTR(all);
	*ret_n = nall;
	return 0;
}

/* Seize the children of tasks[i] that are not known yet; *ret_found counts them. */
static int seize_children(struct dump_ctx *c, size_t i, unsigned *ret_found, struct ckpt_error *e)
{
	_cleanup_free_ pid_t *kids = NULL;
	pid_t pid = c->tasks[i].pid;
	size_t nkids = 0;
	int r;

	/* listed before seizing: seize_one may move c->tasks */
	r = list_children(&c->tasks[i], &kids, &nkids, e);
	if (r < 0)
		return r;
	for (size_t k = 0; k < nkids; k++) {
		if (dump_find_task(c, kids[k]) || is_zombie(c, kids[k]))
			continue;
		r = seize_one(c, kids[k], pid, e);
		if (r == 1)
			continue; /* a zombie, recorded */
		if (r == -ESRCH && !proc_exists(kids[k])) {
			/* exited and reaped (SIGCHLD ignored) since it was listed */
			pr_debug("pid %d is gone, not part of the tree any more", kids[k]);
			continue;
		}
		if (r < 0)
			return r;
		(*ret_found)++;
	}
	return 0;
}

int seize_tree(struct dump_ctx *c, struct ckpt_error *e)
{
	struct proc_status self;
	unsigned found;
	int r;

	if (proc_parse_status(c->self, &self, e) < 0)
		return ckpt_err_wrap(e, "reading our own status");
	c->self_nspid_levels = self.nspid_levels;
	r = check_root(c, c->opts->pid, e);
	if (r >= 0)
		r = check_time_ns(c, c->opts->pid, e);
	if (r < 0)
		return r;
	r = seize_one(c, c->opts->pid, 0, e);
	if (r < 0)
		return r;
	/* The first pass seizes everything (the list grows while we walk it);
	 * repeat until a pass finds nothing new. */
	do {
		found = 0;
		for (size_t i = 0; i < c->ntasks; i++) {
			r = seize_children(c, i, &found, e);
			if (r < 0)
				return r;
		}
	} while (found);
	pr_debug("tree of pid %d: %zu tasks frozen", c->opts->pid, c->ntasks);
	return 0;
}

int unseize_tree(struct dump_ctx *c, struct ckpt_error *e)
{
	struct ckpt_error tmp = {0};
	int ret = 0;

	for (size_t i = 0; i < c->ntasks; i++) {
		struct dump_task *t = &c->tasks[i];
		int r = 0;

		if (t->rsys_open) {
			/* the pipe ends a failed round left in the task */
			if (t->pipes)
				page_pipes_abort(t->pipes);
			r = rsys_fini(&t->rsys, &tmp);
			t->rsys_open = false;
		}
		/* while every thread is still in its ptrace stop */
		if (t->nsud) {
			int r2 = dump_sud_resume(t, r < 0 ? NULL : &tmp);

			if (r >= 0)
				r = r2;
		}
		if (t->seized) {
			/* A task that was in a group stop stays in it: the kernel
			 * re-enters the group stop at detach (SIGNAL_STOP_STOPPED). */
			int r2 = ptrace_detach(t->pid, 0, r < 0 ? NULL : &tmp);

			if (r >= 0)
				r = r2;
			t->seized = false;
		}
		for (size_t k = 0; k < t->nthreads; k++) {
			int r2 = ptrace_detach(t->threads[k], 0, r < 0 ? NULL : &tmp);

			if (r >= 0)
				r = r2;
		}
		free(t->threads);
		t->threads = NULL;
		t->nthreads = 0;
		if (r < 0 && ret == 0) {
			ret = r;
			if (e)
				*e = tmp;
		}
	}
	return ret;
}

static void reap_traced(pid_t tid)
{
	int status;

	for (;;) {
		pid_t r = waitpid(tid, &status, __WALL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || WIFEXITED(status) || WIFSIGNALED(status))
			break;
	}
}

double kill_tree(struct dump_ctx *c)
{
	double killed;

	/* leaves first, so that no parent sees a child die before it does */
	for (size_t i = c->ntasks; i-- > 0;) {
		if (c->tasks[i].seized)
			kill(c->tasks[i].pid, SIGKILL);
	}
	killed = ckpt_monotonic_seconds();
	for (size_t i = c->ntasks; i-- > 0;) {
		struct dump_task *t = &c->tasks[i];

		if (!t->seized)
			continue;
		/* as the tracer we see the death first; reaping that report hands
		 * the task over to its real parent. The other threads first: a
		 * traced thread stays a zombie until its tracer reaps it, and the
		 * main thread's death is reported only once they are all gone. */
		for (size_t k = 0; k < t->nthreads; k++)
			reap_traced(t->threads[k]);
		reap_traced(t->pid);
		free(t->threads);
		t->threads = NULL;
		t->nthreads = 0;
		t->seized = false;
		t->rsys_open = false;
	}
	return killed;
}
