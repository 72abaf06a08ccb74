/* SPDX-License-Identifier: MIT */
/*
 * Terminals seen by the whole tree. A pty slave (or /dev/tty standing for
 * one) whose master no task of the tree holds is driven from outside: it
 * is the user's terminal (script, tmux, ssh). Such a tree is a shell job:
 * without --shell-job the dump refuses it, naming the pid, the fd and the
 * terminal; with it the entries are marked external and the restore puts
 * the terminal it runs on in their place (restorer/tty.c).
 */
#define LOG_PREFIX "dump: "

#include <errno.h>

#include "dump_internal.h"
#include "kinds/tty.h"
#include "log.h"

static bool master_in_tree(const struct dump_ctx *c, uint32_t index)
{
	for (size_t i = 0; i < c->nfiles; i++) {
		const FileEntry *fe = c->files[i].fe;

		if (!c->files[i].mapping && tty_entry_is(fe) &&
		    fe->tty->role == TTY_ROLE__TTY_MASTER && fe->tty->index == index)
			return true;
	}
	return false;
}

bool dump_tty_nr_is_pty(int tty_nr)
{
	unsigned maj = ((unsigned)tty_nr >> 8) & 0xfff;

	return maj >= 136 && maj <= 143;
}

static uint32_t tty_nr_index(int tty_nr)
{
	unsigned maj = ((unsigned)tty_nr >> 8) & 0xfff;
	unsigned min = ((unsigned)tty_nr & 0xff) | (((unsigned)tty_nr >> 12) & 0xfff00);

	return (maj - 136) * 256 + min;
}

/*
 * Controlling terminals. One of a pty of the tree is given back to its
 * session leader at restore, so the session must be led from inside the
 * tree. The user's terminal (external) can only be the one of the root's
 * session: that session becomes the restoring caller's (--shell-job).
 */
static int check_cttys(struct dump_ctx *c, struct ckpt_error *e)
{
	const struct dump_task *root = &c->tasks[0];

	for (size_t i = 0; i < c->ntasks; i++) {
		const struct dump_task *t = &c->tasks[i];
		uint32_t index;

		if (!t->tty_nr)
			continue;
		index = tty_nr_index(t->tty_nr);
		if (master_in_tree(c, index)) {
			if (!dump_find_task(c, t->sid))
				return ckpt_err(
				    e, -EOPNOTSUPP,
				    "pid %d: its controlling terminal /dev/pts/%u is a pty "
				    "of the tree, but its session %d is led from outside "
				    "the tree; not supported",
				    t->pid, index, t->sid);
			continue;
		}
		if (!c->opts->shell_job)
			return ckpt_err(
			    e, -EOPNOTSUPP,
			    "pid %d: its controlling terminal /dev/pts/%u is driven from "
			    "outside the tree; run with --shell-job to checkpoint a job "
			    "of that terminal",
			    t->pid, index);
		if (t->sid != root->sid)
			return ckpt_err(e, -EOPNOTSUPP,
					"pid %d: session %d has the user's terminal /dev/pts/%u as "
					"controlling terminal but is not the root's session %d; "
					"not supported",
					t->pid, t->sid, index, root->sid);
	}
	return 0;
}

int dump_ttys(struct dump_ctx *c, struct ckpt_error *e)
{
	for (size_t i = 0; i < c->nfiles; i++) {
		const struct dump_file *f = &c->files[i];
		TtyEntry *t = f->fe->tty;
		char name[64];

		if (f->mapping || !tty_entry_is(f->fe) || t->role == TTY_ROLE__TTY_MASTER ||
		    master_in_tree(c, t->index))
			continue;
		if (!c->opts->shell_job)
			return ckpt_err(e, -EOPNOTSUPP,
					"pid %d: fd %d: %s is a terminal driven from outside the "
					"tree (its pty master is not in the tree); run with "
					"--shell-job to checkpoint a job of that terminal",
					f->pid, f->fd, tty_entry_name(f->fe, name, sizeof(name)));
		t->has_external = true;
		t->external = true;
		pr_debug("pid %d fd %d: %s is the job's terminal (external)\n", f->pid, f->fd,
			 tty_entry_name(f->fe, name, sizeof(name)));
	}
	return check_cttys(c, e);
}
