/* SPDX-License-Identifier: MIT */
/*
 * File descriptors. Every open file description of the tree is created ONCE,
 * by the restorer process P, before anything is forked (stage files), at its
 * own number or a spare one (layout below). Every task is
 * forked from P (directly or through its parent), so it inherits all of
 * them: a description shared by several tasks after fork or dup is the same
 * description in each of them (same offset, same flags), without passing
 * fds around. Each task then dup3()s the objects it uses to their saved
 * numbers and closes everything else (stage fds).
 *
 * Processes sharing one fd table (a child made with clone3(CLONE_FILES),
 * pstree files_of) install it once: each opens its own pages image and
 * does what needs P's fds, says so in the control page, and the table's
 * first process (files_top) waits for them, installs the fds and closes
 * the rest for all of them.
 *
 * Layout of P's fds. A tree may hold nearly every number RLIMIT_NOFILE
 * allows (19,000 fds under a hard limit of 20,000, the highest ones used),
 * and without CAP_SYS_RESOURCE nobody may raise it: P has no room "above"
 * the tree. So an object every task that has it holds at one number N
 * (direct_nr) is made by P right at N: the tasks inherit it where it
 * belongs. Every other fd of P that a task inherits and uses (objects held
 * at several numbers, the image directory, the status pipe, the read-only
 * fds of mapped files and executables, kept by the tasks that map them
 * until stage memory has used them) lives at a "spare" number: one no task
 * has (fd_taken). In a task, dup3() to a task's own number then only ever
 * replaces what that task does not use, and close_others() the rest.
 */
#define LOG_PREFIX "fds: "

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "log.h"
#include "restore.h"

static bool fd_is_spare(const struct restore_ctx *ctx, int nr)
{
	return nr >= 3 && !(nr <= ctx->max_saved_fd && ctx->fd_taken[nr]);
}

static bool fd_free_in_p(int nr)
{
	return fcntl(nr, F_GETFD) < 0 && errno == EBADF;
}

/* The lowest spare number not open in P, or an error naming what needs it. */
static int fd_spare_find(struct restore_ctx *ctx, const char *what, int *ret)
{
	for (int nr = ctx->fd_spare_next < 3 ? 3 : ctx->fd_spare_next;
	     (uint64_t)nr < ctx->nofile_max && nr < INT_MAX; nr++) {
		if (fd_is_spare(ctx, nr) && fd_free_in_p(nr)) {
			ctx->fd_spare_next = nr + 1;
			*ret = nr;
			return 0;
		}
	}
	return ckpt_err(&ctx->err, -EMFILE,
			"no fd number left for %s: the tree's fds take %d of the %llu numbers "
			"RLIMIT_NOFILE allows, and the restorer keeps its own (objects, images, "
			"mapped files) in the others",
			what, ctx->max_saved_fd + 1, (unsigned long long)ctx->nofile_max);
}

/* Move one of P's fds (that tasks inherit) to a spare number. */
int fd_spare(struct restore_ctx *ctx, int *fd, const char *what)
{
	int nr = -1, r;

	if (*fd < 0 || fd_is_spare(ctx, *fd))
		return 0;
	r = fd_spare_find(ctx, what, &nr);
	if (r < 0)
		return r;
	if (dup3(*fd, nr, O_CLOEXEC) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "moving the fd of %s to fd %d", what, nr);
	close(*fd);
	*fd = nr;
	return 0;
}

/*
 * Which numbers the tasks use, and which objects P makes right at their number: one held by every
 * task that has it at the same single number, no other object claiming it.
 */
static int fd_layout_init(struct restore_ctx *ctx)
{
	size_t n = (size_t)(ctx->max_saved_fd + 1);
	_cleanup_free_ int *claim = NULL;
	struct rlimit rl;

	/* Only the soft limit: no hard limit is ever raised (no CAP_SYS_RESOURCE). */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "getrlimit(RLIMIT_NOFILE)");
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return ckpt_err_errno(&ctx->err, -errno, "setrlimit(RLIMIT_NOFILE)");
	ctx->fd_taken = calloc(n + 1, sizeof(*ctx->fd_taken));
	claim = calloc(n + 1, sizeof(*claim));
	if (!ctx->fd_taken || !claim)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < ctx->ntasks; i++) {
		const struct rtask *t = &ctx->tasks[i];

		for (size_t k = 0; k < t->n_fds; k++) {
			struct rfile *f = file_by_id(ctx, t->fds[k]->id);
			int nr = (int)t->fds[k]->fd;

			ctx->fd_taken[nr] = true;
			/* (terminals are made in pairs by tty.c, at spare numbers) */
			if (f->direct_nr == -1 && !f->in_flight &&
			    !(f->kind && f->kind->open_in_task)) {
				f->direct_nr = nr;
				f->direct_cloexec = t->fds[k]->cloexec;
			} else if (f->direct_nr != nr)
				f->direct_nr = -2; /* held at two numbers, or not for P to make */
		}
	}
	for (size_t i = 0; i < ctx->nfiles; i++) {
		struct rfile *f = &ctx->files[i];

		if (f->direct_nr < 0)
			f->direct_nr = -1;
		else if (claim[f->direct_nr])
			f->direct_nr = -1; /* the number is another object's */
		else
			claim[f->direct_nr] = (int)i + 1;
	}
	return 0;
}

/* The state of a kind whose objects are made together (open_shared), for one restore. */
struct kind_open {
	const struct fd_kind *kind;
	struct fd_open_ctx ctx;
};

/* Stage files: every entry, and the kinds' states (ctx->fopen while it runs). */
struct files_open {
	const FileEntry **all;
	size_t nall;
	struct kind_open *ko; /* at most one per kind */
	size_t nko;
};

static int file_fd_cb(void *owner, uint32_t id, int *ret_fd, struct ckpt_error *e);

static int open_object(struct restore_ctx *ctx, struct rfile *f, struct ckpt_error *e)
{
	struct files_open *fo = ctx->fopen;
	struct kind_open *ko = fo->ko;
	size_t i;

	if (!f->kind->open_shared) {
		/* with the flag of the fds at its number (else a spare one: any) */
		int fd_flags = f->direct_nr >= 0 && !f->direct_cloexec ? 0 : O_CLOEXEC;
		int r = f->kind->open(f->fe, fd_flags, &f->obj_fd, e);

		f->obj_flag_known = r >= 0;
		f->obj_cloexec = fd_flags != 0;
		return r;
	}
	for (i = 0; i < fo->nko && ko[i].kind != f->kind; i++)
		;
	if (i == fo->nko) {
		ko[i] = (struct kind_open){.kind = f->kind};
		/* every entry, for kinds that make their objects all at once (unix sockets) */
		ko[i].ctx.all = fo->all;
		ko[i].ctx.nall = fo->nall;
		ko[i].ctx.made_path = restore_undo_made_path;
		ko[i].ctx.owner = ctx;
		ko[i].ctx.file_fd = file_fd_cb;
		fo->nko++;
	}
	return f->kind->open_shared(&ko[i].ctx, f->fe, &f->obj_fd, e);
}

/* One entry's open file description, made by P at its number or a spare one. */
static int open_one(struct restore_ctx *ctx, struct rfile *f)
{
	int r;

	if (f->fe->has_shmem_id)
		r = shmem_open_fd(ctx, f);
	else
		r = open_object(ctx, f, &ctx->err);
	if (r < 0)
		return ckpt_err_wrap(&ctx->err, "file id %u (%s)", f->fe->id, f->fe->path);
	/* mostly made right at its number already: it was the lowest free one */
	if (f->direct_nr >= 0 && f->obj_fd != f->direct_nr) {
		/* to its number if that is free in P (else the lowest free one above) */
		int nr =
		    fcntl(f->obj_fd, f->direct_cloexec ? F_DUPFD_CLOEXEC : F_DUPFD, f->direct_nr);

		if (nr < 0)
			return ckpt_err_errno(&ctx->err, -errno, "file id %u (%s): dup to fd %d",
					      f->fe->id, f->fe->path, f->direct_nr);
		if (nr == f->direct_nr) {
			close(f->obj_fd);
			f->obj_fd = nr;
			f->obj_flag_known = true;
			f->obj_cloexec = f->direct_cloexec;
		} else {
			close(nr);
		}
	}
	if (f->obj_fd != f->direct_nr)
		r = fd_spare(ctx, &f->obj_fd, f->fe->path);
	pr_debug("file %u %s: fd %d", f->fe->id, f->fe->path, f->obj_fd);
	return r;
}

/*
 * struct fd_open_ctx.file_fd: a file in flight, made now if its turn in the
 * plan has not come yet (the unix sockets' queues are filled when the first
 * of them is made).
 */
static int file_fd_cb(void *owner, uint32_t id, int *ret_fd, struct ckpt_error *e)
{
	struct restore_ctx *ctx = owner;
	struct rfile *f = file_by_id(ctx, id);
	int r;

	if (!f || !f->in_flight || !f->kind || f->kind->open_in_task)
		return ckpt_err(e, -EINVAL, "file id %u is not a file in flight", id);
	if (f->obj_fd < 0) {
		r = open_one(ctx, f);
		if (r < 0)
			return r;
	}
	*ret_fd = f->obj_fd;
	return 0;
}

/*
 * One deleted cwd: an empty directory made where it was (its name, else a
 * free sibling name), given its mode and owner, opened, and removed again,
 * so that the tasks that had it (fchdir in stage fds) have an empty deleted
 * directory of that mode and owner as their cwd, one for all of them.
 */
static int deleted_cwd_make(struct restore_ctx *ctx, const CoreEntry *c, int *ret_fd)
{
	int r = dir_make_removed(c->cwd, "deleted cwd", c->cwd_uid, c->cwd_gid,
				 (int)(c->cwd_mode & 07777), ret_fd, &ctx->err);

	return r < 0 ? r : fd_spare(ctx, ret_fd, c->cwd);
}

int deleted_cwds_create(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		const CoreEntry *c = ctx->tasks[i].core;
		struct deleted_cwd *n;
		bool have = false;
		int fd = -1, r;

		if (!c->has_cwd_deleted || !c->cwd_deleted)
			continue;
		for (size_t k = 0; k < ctx->n_deleted_cwds && !have; k++)
			have = ctx->deleted_cwds[k].dev == c->cwd_dev &&
			       ctx->deleted_cwds[k].ino == c->cwd_ino;
		if (have)
			continue;
		r = deleted_cwd_make(ctx, c, &fd);
		if (r < 0)
			return ckpt_err_wrap(&ctx->err, "pid %d", ctx->tasks[i].pid);
		n = realloc(ctx->deleted_cwds, (ctx->n_deleted_cwds + 1) * sizeof(*n));
		if (!n) {
			close(fd);
			return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
		}
		ctx->deleted_cwds = n;
		n[ctx->n_deleted_cwds++] = (struct deleted_cwd){c->cwd_dev, c->cwd_ino, fd};
	}
	return 0;
}

int deleted_cwd_enter(const struct restore_ctx *ctx, const CoreEntry *c, struct ckpt_error *e)
{
	for (size_t k = 0; k < ctx->n_deleted_cwds; k++)
		if (ctx->deleted_cwds[k].dev == c->cwd_dev &&
		    ctx->deleted_cwds[k].ino == c->cwd_ino) {
			if (fchdir(ctx->deleted_cwds[k].fd) < 0)
				return ckpt_err_errno(e, -errno, "fchdir to the deleted cwd %s",
						      c->cwd);
			return 0;
		}
	return ckpt_err(e, -ENOENT, "the deleted cwd %s was not made", c->cwd);
}

/*
 * A cwd on a tmpfs (saved with --save-tmpfs-files: a preserved job) that a
 * reboot emptied: made again, empty, with its mode and owner, before the
 * tmpfs files that may live in it; with the caller's rights (ckpt-restore
 * of a non-root caller has no file capability). Its parent must exist.
 */
static int tmpfs_cwds_create(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		const CoreEntry *c = ctx->tasks[i].core;
		_cleanup_close_ int fd = -1;
		struct file_made made;
		struct stat st;
		int r;

		if (!c || !c->has_cwd_tmpfs || !c->cwd_tmpfs ||
		    (c->has_cwd_deleted && c->cwd_deleted))
			continue;
		if (stat(c->cwd, &st) == 0 || errno != ENOENT)
			continue; /* there (or not ours to make): the task's chdir decides */
		if (!c->has_cwd_mode || !c->has_cwd_uid || !c->has_cwd_gid)
			return ckpt_err(&ctx->err, -EINVAL,
					"core-%d.img: cwd_tmpfs without cwd_mode/uid/gid", c->pid);
		if (mkdir(c->cwd, 0700) < 0)
			return ckpt_err_errno(&ctx->err, -errno,
					      "pid %d: cannot make its cwd %s (on a tmpfs) again",
					      c->pid, c->cwd);
		made = file_made_of(-1, c->cwd);
		if (restore_undo_rmdir(ctx, c->cwd) < 0)
			return -ENOMEM;
		/* (a test swaps the path here: CKPT_PAUSE=cwd-remade) */
		r = ckpt_fault_inject("cwd-remade", &ctx->err);
		if (r < 0)
			return r;
		/* owner and mode through an fd of what was made: not a symlink
		 * put at the path since (a tmpfs such as /tmp is shared) */
		fd = file_made_open(c->cwd, O_PATH | O_DIRECTORY, S_IFDIR, &made);
		if (fd == -ESTALE)
			return ckpt_err(&ctx->err, -EINVAL,
					"pid %d: its cwd %s made again was replaced before its "
					"owner and mode were set",
					c->pid, c->cwd);
		r = fd < 0
			? fd
			: fd_set_owner_mode(fd, c->cwd_uid, c->cwd_gid, (int)(c->cwd_mode & 07777));
		if (r < 0)
			return ckpt_err_errno(
			    &ctx->err, r, "pid %d: cwd %s made again: owner %u:%u, mode 0%o",
			    c->pid, c->cwd, c->cwd_uid, c->cwd_gid, c->cwd_mode & 07777);
		pr_info("made the cwd %s (on a tmpfs) of pid %d again", c->cwd, c->pid);
	}
	return 0;
}

int files_open_all(struct restore_ctx *ctx)
{
	/* at most one per kind; nfiles + 1 is plenty */
	_cleanup_free_ struct kind_open *ko = calloc(ctx->nfiles + 1, sizeof(*ko));
	_cleanup_free_ const FileEntry **all = calloc(ctx->nfiles + 1, sizeof(*all));
	struct files_open fo = {.all = all, .nall = ctx->nfiles, .ko = ko};
	int r;

	if (!ko || !all)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < ctx->nfiles; i++)
		all[i] = ctx->files[i].fe;

	r = fd_layout_init(ctx);
	if (r < 0)
		return r;
	r = fd_spare(ctx, &ctx->dirfd, "the image directory");
	/* the parent checkpoints too (chain.c): read by tasks in stage tree (cow.c) */
	for (size_t i = 0; r >= 0 && i < ctx->n_chain; i++)
		r = fd_spare(ctx, &ctx->chain[i].dirfd, ctx->chain[i].name);
	for (size_t i = 0; r >= 0 && i < ctx->nfiles; i++)
		r = fd_spare(ctx, &ctx->files[i].map_fd, ctx->files[i].fe->path);
	/* terminals are made in pairs (a slave from its master): tty.c */
	if (r >= 0)
		r = tty_files_open(ctx);
	/* cwds on a tmpfs: before the tmpfs files that may be in them */
	if (r >= 0)
		r = tmpfs_cwds_create(ctx);
	/* shared memory objects, before the memfd and deleted-file fds made from them */
	if (r >= 0)
		r = shmem_create_all(ctx);
	if (r >= 0)
		r = deleted_cwds_create(ctx);
	ctx->fopen = &fo;
	/* the kinds that see what is done to files last (open_late: inotify),
	 * once the others' helpers are closed */
	for (int late = 0, done = 0; late < 2; late++) {
		for (size_t i = 0; r >= 0 && i < ctx->plan.n; i++) {
			const struct plan_node *n = &ctx->plan.nodes[ctx->plan.order[i]];
			struct rfile *f;

			if (n->kind != PLAN_FILE)
				continue;
			f = file_by_id(ctx, (uint32_t)n->a);
			if (!(f->used_by_fd || f->in_flight) || f->obj_fd >= 0)
				continue;
			/* made by the task itself once the tree exists (a pidfd) */
			if (f->kind && (f->kind->open_in_task || f->kind->open_late != (late == 1)))
				continue;
			r = open_one(ctx, f);
		}
		/* before anything is forked: no task inherits the kinds' own fds */
		for (; (size_t)done < fo.nko; done++)
			if (ko[done].kind->open_done)
				ko[done].kind->open_done(&ko[done].ctx);
	}
	ctx->fopen = NULL;
	/* sent in their messages: only the queues hold them now */
	for (size_t i = 0; i < ctx->nfiles; i++)
		if (ctx->files[i].in_flight && !ctx->files[i].used_by_fd)
			closep(&ctx->files[i].obj_fd);
	return r;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

/*
 * The objects sit mostly at the tree's own numbers, side by side: one
 * close_range per run of them (9,000 closes were 11 ms of a restore).
 */
void files_close(struct restore_ctx *ctx)
{
	_cleanup_free_ int *fds = malloc(2 * ctx->nfiles * sizeof(int) + 1);
	size_t n = 0;

	for (size_t i = 0; i < ctx->nfiles; i++) {
		struct rfile *f = &ctx->files[i];

		if (fds && f->obj_fd >= 0)
			fds[n++] = f->obj_fd;
		if (fds && f->map_fd >= 0)
			fds[n++] = f->map_fd;
		if (!fds) { /* one by one, then */
			closep(&f->obj_fd);
			closep(&f->map_fd);
		}
		f->obj_fd = f->map_fd = -1;
	}
	qsort(fds, n, sizeof(int), cmp_int);
	for (size_t i = 0, k; i < n; i = k) {
		for (k = i + 1; k < n && fds[k] <= fds[k - 1] + 1; k++)
			;
		close_range((unsigned int)fds[i], (unsigned int)fds[k - 1], 0);
	}
}

/* ---- inside a task -------------------------------------------------------------- */

/* Close every fd that is not in keep[] (sorted). */
static int close_others(const int *keep, size_t n, struct ckpt_error *e)
{
	unsigned int lo = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned int k = (unsigned int)keep[i];

		if (k < lo) /* a duplicate */
			continue;
		if (k > lo && close_range(lo, k - 1, 0) < 0)
			return ckpt_err_errno(e, -errno, "close_range(%u, %u)", lo, k - 1);
		lo = k + 1;
	}
	if (close_range(lo, ~0U, 0) < 0)
		return ckpt_err_errno(e, -errno, "close_range(%u, ~0)", lo);
	return 0;
}

/*
 * The kinds' install hooks (epoll registrations), once every fd of the task
 * is at its number: once per object, with its lowest fd (t->fds is sorted).
 */
static int run_install_hooks(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e)
{
	for (size_t i = 0; i < t->n_fds; i++) {
		const FdEntry *fd = t->fds[i];
		const struct rfile *f = file_by_id(ctx, fd->id);
		bool seen = false;
		int r;

		if (!f->kind || !f->kind->install)
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = t->fds[k]->id == fd->id;
		if (seen)
			continue;
		r = f->kind->install(f->fe, (int)fd->fd, t->pid, e);
		if (r < 0)
			return ckpt_err_wrap(e, "fd %u (%s)", fd->fd, f->fe->path);
	}
	return 0;
}

/* One of the task's fds before t->fds[i] (already in place) is number nr. */
static bool task_has_fd_nr(const struct rtask *t, size_t i, int nr)
{
	for (size_t k = 0; k < i; k++)
		if ((int)t->fds[k]->fd == nr)
			return true;
	return false;
}

/*
 * The object of t->fds[i] for a kind that makes it in the task: an earlier
 * fd of the task on the same entry is dup'ed (*ret_fd is that fd), else the
 * kind makes it now (*ret_fd is new: the caller closes it once dup'ed).
 */
static int open_in_task(struct rtask *t, size_t i, const struct rfile *f, int *ret_fd,
			struct ckpt_error *e)
{
	int r;

	for (size_t k = 0; k < i; k++)
		if (t->fds[k]->id == t->fds[i]->id) {
			*ret_fd = (int)t->fds[k]->fd;
			return 0;
		}
	r = f->kind->open_in_task(f->fe, t->pid, ret_fd, e);
	if (r < 0)
		return ckpt_err_wrap(e, "fd %u (%s)", t->fds[i]->fd, f->fe->path);
	return 0;
}

/* P made the object right at fd's number with fd's FD_CLOEXEC: the inherited fd is the fd. */
static bool made_as_is(const struct rfile *f, int obj_fd, const FdEntry *fd)
{
	return obj_fd == f->obj_fd && obj_fd == (int)fd->fd && f->obj_flag_known &&
	       f->obj_cloexec == fd->cloexec;
}

bool fds_table_last(const struct rtask *t)
{
	return t->files_top->table_last == t;
}

/* What a task of t's table keeps open past stage fds: its mapped files. */
static size_t keep_task_fds(struct restore_ctx *ctx, const struct rtask *t, int *keep)
{
	size_t n = 0;

	/* Mapped files stay open until stage memory has mapped them. */
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		if (t->mm->vmas[i]->kind == VMA_KIND__VMA_FILE_PRIVATE ||
		    t->mm->vmas[i]->kind == VMA_KIND__VMA_FILE_SHARED_RO ||
		    t->mm->vmas[i]->kind == VMA_KIND__VMA_SHMEM_SHARED ||
		    t->mm->vmas[i]->kind == VMA_KIND__VMA_SHMEM_PRIVATE)
			keep[n++] = file_by_id(ctx, t->mm->vmas[i]->file_id)->map_fd;
	if (t->mm->has_exe_file_id)
		keep[n++] = file_by_id(ctx, t->mm->exe_file_id)->map_fd;
	return n;
}

/* The other tasks of t's fd table are done with P's fds (they said so in ctl). */
static void wait_table_sharers(struct restore_ctx *ctx, const struct rtask *t)
{
	for (size_t k = 1; k < t->n_table; k++) {
		uint32_t *w = &ctx->ctl->fds_ready[t->table[k] - ctx->tasks];

		/* a sharer that fails makes P kill the tree, us included */
		while (!__atomic_load_n(w, __ATOMIC_ACQUIRE)) {
			struct timespec ts = {1, 0};

			syscall(SYS_futex, w, FUTEX_WAIT, 0, &ts, NULL, 0);
		}
	}
}

int task_install_fds(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e)
{
	size_t n = 0, cap = t->n_fds + 4;
	_cleanup_free_ int *keep = NULL;
	int r;

	if (t->files_top != t) {
		/* the table's top installs the fds and closes P's for us */
		uint32_t *w = &ctx->ctl->fds_ready[t - ctx->tasks];

		__atomic_store_n(w, 1, __ATOMIC_RELEASE);
		syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
		return 0;
	}
	for (size_t k = 0; k < t->n_table; k++)
		cap += t->table[k]->mm->n_vmas + 1; /* mapped files, the executable */
	keep = calloc(cap, sizeof(int));
	if (!keep)
		return ckpt_err(e, -ENOMEM, "out of memory");
	wait_table_sharers(ctx, t);
	for (size_t i = 0; i < t->n_fds; i++) {
		const FdEntry *fd = t->fds[i];
		const struct rfile *f = file_by_id(ctx, fd->id);
		int obj_fd = f->obj_fd;

		if (f->kind && f->kind->open_in_task) {
			r = open_in_task(t, i, f, &obj_fd, e);
			if (r < 0)
				return r;
		}
		if (made_as_is(f, obj_fd, fd))
			r = 0;
		else if (obj_fd == (int)fd->fd) /* made right at its number */
			r = fcntl(obj_fd, F_SETFD, fd->cloexec ? FD_CLOEXEC : 0);
		else
			r = dup3(obj_fd, (int)fd->fd, fd->cloexec ? O_CLOEXEC : 0);
		if (obj_fd != f->obj_fd && obj_fd != (int)fd->fd && !task_has_fd_nr(t, i, obj_fd))
			close(obj_fd);
		if (r < 0)
			return ckpt_err_errno(e, -errno, "fd %u: dup3 of file %u (%s)", fd->fd,
					      fd->id, f->fe->path);
		keep[n++] = (int)fd->fd;
	}
	r = run_install_hooks(ctx, t, e);
	if (r < 0)
		return r;
	keep[n++] = ctx->status_wr;
	if (ctx->uffd_wr >= 0)
		keep[n++] = ctx->uffd_wr; /* --lazy: the task sends its userfaultfd */
	/* ours, and those of the tasks sharing the table */
	for (size_t k = 0; k < t->n_table; k++)
		n += keep_task_fds(ctx, t->table[k], keep + n);
	qsort(keep, n, sizeof(int), cmp_int);
	return close_others(keep, n, e);
}
