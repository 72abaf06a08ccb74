/* SPDX-License-Identifier: MIT */
/*
 * Terminals (lib/kinds/tty.c): the restore side needs more than the one
 * open() of a kind, because a pty slave is made from its master
 * (TIOCGPTPEER) and the user's terminal of a shell job comes from the
 * restore's caller. The restorer (restorer/tty.c) calls these in order:
 * masters, then their slaves, then tty_finish.
 */
#pragma once

#include "fd_kind.h"

/* A character device major of terminals: 4 (consoles, serial lines), 5, 136-143 (pty slaves). */
bool tty_is_terminal_major(unsigned maj);
/* Is this FileEntry a terminal (FILE_TTY with a TtyEntry)? */
bool tty_entry_is(const FileEntry *fe);
/* Printable name of the entry: "/dev/pts/3", "pty master of /dev/pts/3". */
const char *tty_entry_name(const FileEntry *fe, char *buf, size_t len);
/*
 * Open a new pty master for a TTY_MASTER entry, with the saved index when it
 * is free (else the lowest free one: *ret_index says which), unlocked (so
 * that its slaves can be opened), with the saved termios, window size and
 * packet mode. The lock and exclusive modes come last (tty_finish).
 */
int tty_open_master(const FileEntry *fe, int *ret_fd, uint32_t *ret_index, struct ckpt_error *e);
/* A new open file description of the slave of master_fd (slave or /dev/tty entry). */
int tty_open_peer(const FileEntry *fe, int master_fd, int *ret_fd, struct ckpt_error *e);
/* A new open file description of the terminal open as tty_fd (an external entry). */
int tty_open_external(const FileEntry *fe, int tty_fd, int *ret_fd, struct ckpt_error *e);
/* Put the saved termios of fe on the terminal fd refers to. */
int tty_apply_termios(const FileEntry *fe, int fd, struct ckpt_error *e);
/* Lock and exclusive modes, once every description of the pty exists. */
int tty_finish(const FileEntry *fe, int fd, struct ckpt_error *e);
