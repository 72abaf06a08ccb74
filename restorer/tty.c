/* SPDX-License-Identifier: MIT */
/*
 * Terminals in the restorer (the objects come from lib/kinds/tty.c).
 *
 * Stage files: P makes every pty of the tree before anything is forked, as
 * for every other object: a new master per saved master (the saved index
 * when it is free), each slave description opened from its master
 * (TIOCGPTPEER), termios and window size put back, then lock and exclusive
 * modes. Entries of the user's terminal (external, dumped with
 * --shell-job) become new descriptions of the terminal given with
 * --tty-fd, and its saved termios is put back (a job that had set raw mode
 * expects it). For a session of the tree whose controlling terminal is a
 * pty of the tree, P keeps one more slave description: the session leader
 * takes it as its controlling terminal right after setsid() (before it
 * forks, so its children inherit it) and gives the terminal its saved
 * foreground group once every group exists.
 *
 * --shell-job: the root does not start a session; it makes its own process
 * group inside ours (the caller's), and at the end of stage fds P makes that
 * group the terminal's foreground job (with SIGTTOU blocked: P is then in
 * the background). A rollback gives the terminal back.
 */
#define LOG_PREFIX "tty: "

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "restore.h"
#include "kinds/tty.h"

static bool is_external(const FileEntry *fe)
{
	return fe->tty->has_external && fe->tty->external;
}

/* One of P's fds, moved to a spare number (as every object of P is: fds.c). */
static int move_high(struct restore_ctx *ctx, int *fd)
{
	return fd_spare(ctx, fd, "a terminal");
}

static struct rfile *find_master(struct restore_ctx *ctx, uint32_t index)
{
	for (size_t i = 0; i < ctx->nfiles; i++) {
		struct rfile *f = &ctx->files[i];

		if (tty_entry_is(f->fe) && f->fe->tty->role == TTY_ROLE__TTY_MASTER &&
		    f->fe->tty->index == index && f->obj_fd >= 0)
			return f;
	}
	return NULL;
}

pid_t tty_shell_session(const struct restore_ctx *ctx)
{
	return ctx->opts->shell_job ? getsid(0) : 0;
}

/* --shell-job: the terminal must be ours (our session's controlling terminal). */
static int check_shell_tty(struct restore_ctx *ctx)
{
	int fd = ctx->opts->tty_fd;
	pid_t sid;

	if (fd < 0 || !isatty(fd))
		return ckpt_err(&ctx->err, -ENOTTY,
				"--shell-job needs the terminal to restore onto (--tty-fd)");
	sid = tcgetsid(fd);
	if (sid < 0 || sid != getsid(0))
		return ckpt_err(&ctx->err, -ENOTTY,
				"--shell-job: the terminal (fd %d) is not the controlling terminal "
				"of the restore's session",
				fd);
	return 0;
}

/* termios of the caller's terminal, from the first external entry that has one */
static int set_shell_termios(struct restore_ctx *ctx, const FileEntry *fe)
{
	sigset_t ttou, old;
	int r;

	/* we are in the foreground still; block SIGTTOU all the same */
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	if (tcgetattr(ctx->opts->tty_fd, &ctx->shell_old_termios) == 0)
		ctx->shell_termios_set = true;
	r = tty_apply_termios(fe, ctx->opts->tty_fd, &ctx->err);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}

static int open_one(struct restore_ctx *ctx, struct rfile *f, bool *termios_done)
{
	const TtyEntry *t = f->fe->tty;
	char name[64];
	struct rfile *m;
	uint32_t idx;
	int r;

	if (t->role == TTY_ROLE__TTY_MASTER) {
		r = tty_open_master(f->fe, &f->obj_fd, &idx, &ctx->err);
		if (r >= 0 && idx != t->index)
			pr_info("pty /dev/pts/%u is in use here: restored as /dev/pts/%u", t->index,
				idx);
	} else if (is_external(f->fe)) {
		if (!ctx->opts->shell_job)
			return ckpt_err(&ctx->err, -EOPNOTSUPP,
					"%s is the terminal of a job dumped with --shell-job; "
					"restore it with --shell-job (ckptctl restore --shell-job) "
					"from a terminal",
					tty_entry_name(f->fe, name, sizeof(name)));
		r = tty_open_external(f->fe, ctx->opts->tty_fd, &f->obj_fd, &ctx->err);
		if (r >= 0 && !*termios_done && t->termios) {
			r = set_shell_termios(ctx, f->fe);
			*termios_done = true;
		}
	} else {
		m = find_master(ctx, t->index);
		if (!m)
			return ckpt_err(&ctx->err, -EINVAL,
					"files.img: entry %u: %s has no master in the images "
					"and is not marked external",
					f->fe->id, tty_entry_name(f->fe, name, sizeof(name)));
		r = tty_open_peer(f->fe, m->obj_fd, &f->obj_fd, &ctx->err);
	}
	if (r >= 0)
		r = move_high(ctx, &f->obj_fd);
	return r;
}

/* Sessions of the tree whose controlling terminal is a pty of the tree. */
static int open_cttys(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nfiles; i++) {
		struct rfile *f = &ctx->files[i];
		struct rtask *leader;
		struct rtty_ctty *c;
		int fd = -1, r;

		if (!tty_entry_is(f->fe) || f->obj_fd < 0 ||
		    f->fe->tty->role != TTY_ROLE__TTY_MASTER || f->fe->tty->session <= 0)
			continue;
		leader = task_by_pid(ctx, f->fe->tty->session);
		if (!leader || !leader->setsid_leader || leader->sid != leader->pid)
			continue; /* a session outside the tree: nobody to give it to */
		c = realloc(ctx->cttys, (ctx->ncttys + 1) * sizeof(*c));
		if (!c)
			return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
		ctx->cttys = c;
		fd = ioctl(f->obj_fd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			return ckpt_err_errno(&ctx->err, -errno,
					      "opening the controlling terminal of session %d "
					      "(TIOCGPTPEER)",
					      leader->pid);
		r = move_high(ctx, &fd);
		if (r < 0) {
			close(fd);
			return r;
		}
		c[ctx->ncttys++] = (struct rtty_ctty){
		    .sid = leader->pid,
		    .fg_pgrp = f->fe->tty->has_fg_pgrp ? f->fe->tty->fg_pgrp : 0,
		    .fd = fd,
		};
	}
	return 0;
}

int tty_files_open(struct restore_ctx *ctx)
{
	bool termios_done = false;
	int r = 0;

	if (ctx->opts->shell_job) {
		r = check_shell_tty(ctx);
		if (r < 0)
			return r;
	}
	/* masters first: slaves are opened from them */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < ctx->nfiles; i++) {
			struct rfile *f = &ctx->files[i];
			bool master;

			if (!f->used_by_fd || !tty_entry_is(f->fe) || f->obj_fd >= 0)
				continue;
			master = f->fe->tty->role == TTY_ROLE__TTY_MASTER;
			if (master != (pass == 0))
				continue;
			r = open_one(ctx, f, &termios_done);
			if (r < 0)
				return ckpt_err_wrap(&ctx->err, "file id %u (%s)", f->fe->id,
						     f->fe->path);
		}
	}
	r = open_cttys(ctx);
	for (size_t i = 0; r >= 0 && i < ctx->nfiles; i++) {
		struct rfile *f = &ctx->files[i];

		if (tty_entry_is(f->fe) && f->obj_fd >= 0 && !is_external(f->fe))
			r = tty_finish(f->fe, f->obj_fd, &ctx->err);
	}
	return r;
}

static struct rtty_ctty *ctty_of(struct restore_ctx *ctx, pid_t sid)
{
	for (size_t i = 0; i < ctx->ncttys; i++)
		if (ctx->cttys[i].sid == sid)
			return &ctx->cttys[i];
	return NULL;
}

int tty_task_session(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e)
{
	struct rtty_ctty *c = ctty_of(ctx, t->pid);

	if (!c || !t->setsid_leader)
		return 0;
	if (ioctl(c->fd, TIOCSCTTY, 0) < 0)
		return ckpt_err_errno(e, -errno, "taking its controlling terminal (TIOCSCTTY)");
	return 0;
}

int tty_task_foreground(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e)
{
	struct rtty_ctty *c = ctty_of(ctx, t->pid);
	struct rtask *g;

	if (!c || !t->setsid_leader || c->fg_pgrp <= 0)
		return 0;
	g = task_by_pid(ctx, c->fg_pgrp);
	if (!g || g->pgid != g->pid || g->sid != t->pid)
		return 0; /* the group is gone (its leader was not dumped) */
	/* every signal is blocked here, SIGTTOU too */
	if (tcsetpgrp(c->fd, c->fg_pgrp) < 0)
		return ckpt_err_errno(e, -errno, "making group %d the foreground of its terminal",
				      c->fg_pgrp);
	return 0;
}

int tty_shell_foreground(struct restore_ctx *ctx)
{
	int fd = ctx->opts->tty_fd;
	sigset_t ttou, old;
	int r = 0;

	if (!ctx->opts->shell_job)
		return 0;
	/* P becomes a background process of the terminal: no SIGTTOU for that */
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	ctx->shell_old_fg = tcgetpgrp(fd);
	if (tcsetpgrp(fd, ctx->root->pid) < 0)
		r = ckpt_err_errno(&ctx->err, -errno,
				   "making pid %d the foreground job of the terminal (tcsetpgrp)",
				   ctx->root->pid);
	else
		ctx->shell_fg_set = true;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return r;
}

void tty_shell_rollback(struct restore_ctx *ctx)
{
	sigset_t ttou, old;

	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	if (ctx->shell_fg_set && ctx->shell_old_fg > 0 &&
	    tcsetpgrp(ctx->opts->tty_fd, ctx->shell_old_fg) < 0)
		pr_warn("cannot give the terminal back to group %d: %m", ctx->shell_old_fg);
	/* the job's settings were put on the terminal in stage files */
	if (ctx->shell_termios_set &&
	    tcsetattr(ctx->opts->tty_fd, TCSADRAIN, &ctx->shell_old_termios) < 0)
		pr_warn("cannot give the terminal its settings back: %m");
	sigprocmask(SIG_SETMASK, &old, NULL);
	ctx->shell_fg_set = false;
	ctx->shell_termios_set = false;
}

void tty_free(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ncttys; i++)
		closep(&ctx->cttys[i].fd);
	free(ctx->cttys);
	ctx->cttys = NULL;
	ctx->ncttys = 0;
}
