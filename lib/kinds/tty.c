/* SPDX-License-Identifier: MIT */
/*
 * Terminals: Unix98 ptys. One kind for the three ways a task holds one:
 *   - a master (/dev/ptmx or /dev/pts/ptmx, 5:2): index from TIOCGPTN;
 *   - a slave (/dev/pts/N, majors 136-143): index from the device number;
 *   - /dev/tty (5:0), which stands for the controlling terminal: the real
 *     device from TIOCGDEV, only when that is a pty slave.
 * Saved: role, index, termios (TCGETS2), window size, lock and packet mode
 * of a master, exclusive mode; through a master also the session and the
 * foreground group of its slave. Whether a slave is driven by a master of
 * the tree, or is the user's terminal (external, --shell-job), is decided
 * by the dump engine once every fd of the tree is known (dump/dump_tty.c).
 *
 * Restore (driven by restorer/tty.c, see tty.h): a master is a new pty,
 * with the saved index when that one is free; its slaves are opened from it
 * with TIOCGPTPEER; external entries are new descriptions of the restoring
 * caller's terminal. Data queued in a pty at dump time is not saved.
 * Other terminals (virtual consoles, serial lines, /dev/console) are not
 * handled: the dump refuses them ("terminal /dev/tty1").
 */
#define LOG_PREFIX "kind tty: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"
#include "tty.h"

#define TTY_NCCS 19
#define PTY_SLAVE_MAJOR_FIRST 136
#define PTY_SLAVE_MAJOR_LAST 143
/* Unix98 ptys: 8 majors of 256 minors (the kernel's default maximum is 4096). */
#define PTY_INDEX_MAX ((PTY_SLAVE_MAJOR_LAST - PTY_SLAVE_MAJOR_FIRST + 1) * 256)
/* How many extra masters we hold at most while looking for a saved index. */
#define PTY_INDEX_TRIES 256

/* The kernel's struct termios2 (glibc's struct termios is another layout). */
struct tty_termios2 {
	uint32_t c_iflag, c_oflag, c_cflag, c_lflag;
	uint8_t c_line;
	uint8_t c_cc[TTY_NCCS];
	uint32_t c_ispeed, c_ospeed;
};
#define TTY_TCGETS2 _IOR('T', 0x2A, struct tty_termios2)
#define TTY_TCSETS2 _IOW('T', 0x2B, struct tty_termios2)

static bool is_slave_major(unsigned maj)
{
	return maj >= PTY_SLAVE_MAJOR_FIRST && maj <= PTY_SLAVE_MAJOR_LAST;
}

static uint32_t slave_index(dev_t rdev)
{
	return (major(rdev) - PTY_SLAVE_MAJOR_FIRST) * 256 + minor(rdev);
}

static bool is_ptmx(dev_t rdev)
{
	return major(rdev) == 5 && minor(rdev) == 2;
}

static bool is_dev_tty(dev_t rdev)
{
	return major(rdev) == 5 && minor(rdev) == 0;
}

/* /dev/tty: the device it stands for, 0 if unknown. */
static dev_t ctty_real_dev(int fd)
{
	unsigned int dev = 0;

	if (fd < 0 || ioctl(fd, TIOCGDEV, &dev) < 0)
		return 0;
	return (dev_t)dev;
}

static bool tty_matches(const struct fd_probe *p)
{
	dev_t rdev = p->st.st_rdev;

	/* the ioctls need our own copy of the description */
	if (!S_ISCHR(p->st.st_mode) || p->local_fd < 0 || !fdk_link_is_path(p->link))
		return false;
	if (is_slave_major(major(rdev)) || is_ptmx(rdev))
		return true;
	return is_dev_tty(rdev) && is_slave_major(major(ctty_real_dev(p->local_fd)));
}

bool tty_is_terminal_major(unsigned maj)
{
	return maj == 4 || maj == 5 || is_slave_major(maj);
}

/* Every terminal, pty or not (/dev/tty1, /dev/ttyS0, /dev/console). */
static bool tty_describe(const struct fd_probe *p, char *buf, size_t len)
{
	if (!S_ISCHR(p->st.st_mode) || !fdk_link_is_named_file(p->link) ||
	    !tty_is_terminal_major(major(p->st.st_rdev)))
		return false;
	snprintf(buf, len, "terminal %s", p->link);
	return true;
}

bool tty_entry_is(const FileEntry *fe)
{
	return fe && fe->type == FILE_TYPE__FILE_TTY && fe->tty;
}

const char *tty_entry_name(const FileEntry *fe, char *buf, size_t len)
{
	const TtyEntry *t = fe->tty;

	if (!t)
		snprintf(buf, len, "%s", fe->path ? fe->path : "terminal");
	else if (t->role == TTY_ROLE__TTY_MASTER)
		snprintf(buf, len, "pty master of /dev/pts/%u", t->index);
	else if (t->role == TTY_ROLE__TTY_CTTY)
		snprintf(buf, len, "/dev/tty (/dev/pts/%u)", t->index);
	else
		snprintf(buf, len, "/dev/pts/%u", t->index);
	return buf;
}

/* ---- dump ------------------------------------------------------------------- */

static void free_tty(TtyEntry *t)
{
	if (!t)
		return;
	if (t->termios)
		free(t->termios->cc.data);
	free(t->termios);
	free(t->winsize);
	free(t);
}

static int dump_termios(int fd, TtyEntry *t, const char *what, struct ckpt_error *e)
{
	struct tty_termios2 k;
	struct winsize ws;

	if (ioctl(fd, TTY_TCGETS2, &k) < 0)
		return ckpt_err_errno(e, -errno, "%s: TCGETS2", what);
	t->termios = calloc(1, sizeof(*t->termios));
	if (!t->termios)
		return ckpt_err(e, -ENOMEM, "out of memory");
	tty_termios__init(t->termios);
	t->termios->iflag = k.c_iflag;
	t->termios->oflag = k.c_oflag;
	t->termios->cflag = k.c_cflag;
	t->termios->lflag = k.c_lflag;
	t->termios->line = k.c_line;
	t->termios->cc.data = malloc(TTY_NCCS);
	if (!t->termios->cc.data)
		return ckpt_err(e, -ENOMEM, "out of memory");
	memcpy(t->termios->cc.data, k.c_cc, TTY_NCCS);
	t->termios->cc.len = TTY_NCCS;
	t->termios->has_ispeed = t->termios->has_ospeed = true;
	t->termios->ispeed = k.c_ispeed;
	t->termios->ospeed = k.c_ospeed;
	if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
		return ckpt_err_errno(e, -errno, "%s: TIOCGWINSZ", what);
	t->winsize = calloc(1, sizeof(*t->winsize));
	if (!t->winsize)
		return ckpt_err(e, -ENOMEM, "out of memory");
	tty_winsize__init(t->winsize);
	t->winsize->rows = ws.ws_row;
	t->winsize->cols = ws.ws_col;
	t->winsize->has_xpixel = t->winsize->has_ypixel = true;
	t->winsize->xpixel = ws.ws_xpixel;
	t->winsize->ypixel = ws.ws_ypixel;
	return 0;
}

/* What only a master tells: lock, packet mode, the slave's session and foreground. */
static int dump_master(int fd, TtyEntry *t, const char *what, struct ckpt_error *e)
{
	int v = 0;
	pid_t pid = 0;

	if (ioctl(fd, TIOCGPTN, &v) < 0)
		return ckpt_err_errno(e, -errno, "%s: TIOCGPTN", what);
	t->index = (uint32_t)v;
	if (ioctl(fd, TIOCGPTLCK, &v) < 0)
		return ckpt_err_errno(e, -errno, "%s: TIOCGPTLCK", what);
	t->has_locked = true;
	t->locked = v != 0;
	if (ioctl(fd, TIOCGPKT, &v) < 0)
		return ckpt_err_errno(e, -errno, "%s: TIOCGPKT", what);
	t->has_packet = true;
	t->packet = v != 0;
	/* through the master these name the slave's session (ENOTTY: none) */
	t->has_session = true;
	t->session = ioctl(fd, TIOCGSID, &pid) == 0 ? pid : 0;
	pid = 0;
	t->has_fg_pgrp = true;
	t->fg_pgrp = ioctl(fd, TIOCGPGRP, &pid) == 0 ? pid : 0;
	return 0;
}

static int tty_dump_entry(const struct fd_probe *p, TtyEntry *t, struct ckpt_error *e)
{
	int fd = p->local_fd, v = 0;
	dev_t rdev = p->st.st_rdev;
	int r;

	if (is_ptmx(rdev)) {
		t->role = TTY_ROLE__TTY_MASTER;
		r = dump_master(fd, t, p->link, e);
		if (r < 0)
			return r;
	} else if (is_dev_tty(rdev)) {
		t->role = TTY_ROLE__TTY_CTTY;
		t->index = slave_index(ctty_real_dev(fd));
	} else {
		t->role = TTY_ROLE__TTY_SLAVE;
		t->index = slave_index(rdev);
	}
	if (ioctl(fd, TIOCGEXCL, &v) < 0)
		return ckpt_err_errno(e, -errno, "%s: TIOCGEXCL", p->link);
	t->has_exclusive = true;
	t->exclusive = v != 0;
	return dump_termios(fd, t, p->link, e);
}

static int tty_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	TtyEntry *t;
	int r = ckpt_fault_inject("tty-dump", e);

	if (r < 0)
		return r;
	r = fdk_dump_common(p, FILE_TYPE__FILE_TTY, fe, e);
	if (r < 0)
		return r;
	fe->has_pos = false;
	fe->has_rdev = true;
	fe->rdev = p->st.st_rdev;
	t = calloc(1, sizeof(*t));
	if (!t)
		return ckpt_err(e, -ENOMEM, "out of memory");
	tty_entry__init(t);
	r = tty_dump_entry(p, t, e);
	if (r < 0) {
		free_tty(t);
		return r;
	}
	fe->tty = t;
	return 0;
}

/* ---- restore ---------------------------------------------------------------- */

static int tty_check_entry(const FileEntry *fe, struct ckpt_error *e)
{
	const TtyEntry *t = fe->tty;
	int r = fdk_check_entry(fe, FILE_TYPE__FILE_TTY, e);

	if (r < 0)
		return r;
	if (!t)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: terminal %s without field tty",
				fe->id, fe->path);
	if (t->role != TTY_ROLE__TTY_MASTER && t->role != TTY_ROLE__TTY_SLAVE &&
	    t->role != TTY_ROLE__TTY_CTTY)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: field tty.role: unknown value %d",
				fe->id, (int)t->role);
	if (t->index >= PTY_INDEX_MAX)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: field tty.index: %u out of range",
				fe->id, t->index);
	if (t->termios && t->termios->cc.len != TTY_NCCS)
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u: field tty.termios.cc: %zu bytes, not %d",
				fe->id, t->termios->cc.len, TTY_NCCS);
	if (t->role == TTY_ROLE__TTY_MASTER && t->has_external && t->external)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: a pty master cannot be external",
				fe->id);
	return 0;
}

static int tty_verify(const FileEntry *fe, struct ckpt_error *e)
{
	struct stat st;
	int r = ckpt_fault_inject("tty-verify", e);

	if (r >= 0)
		r = tty_check_entry(fe, e);
	if (r < 0)
		return r;
	if (fe->tty->role != TTY_ROLE__TTY_MASTER)
		return 0;
	if (stat("/dev/ptmx", &st) < 0)
		return ckpt_err_errno(e, -errno, "pty master: /dev/ptmx");
	if (!S_ISCHR(st.st_mode) || !is_ptmx(st.st_rdev))
		return ckpt_err(e, -ENODEV, "pty master: /dev/ptmx is not the pty multiplexer 5:2");
	return 0;
}

int tty_apply_termios(const FileEntry *fe, int fd, struct ckpt_error *e)
{
	const TtyTermios *s = fe->tty ? fe->tty->termios : NULL;
	struct tty_termios2 k = {0};

	if (!s)
		return 0;
	k.c_iflag = s->iflag;
	k.c_oflag = s->oflag;
	k.c_cflag = s->cflag;
	k.c_lflag = s->lflag;
	k.c_line = (uint8_t)s->line;
	memcpy(k.c_cc, s->cc.data, TTY_NCCS);
	k.c_ispeed = s->has_ispeed ? s->ispeed : 0;
	k.c_ospeed = s->has_ospeed ? s->ospeed : 0;
	if (ioctl(fd, TTY_TCSETS2, &k) < 0)
		return ckpt_err_errno(e, -errno, "restoring the termios of /dev/pts/%u (TCSETS2)",
				      fe->tty->index);
	return 0;
}

static int apply_master_state(const FileEntry *fe, int fd, struct ckpt_error *e)
{
	const TtyEntry *t = fe->tty;
	int v = 0;

	if (ioctl(fd, TIOCSPTLCK, &v) < 0)
		return ckpt_err_errno(e, -errno, "unlocking the new pty (TIOCSPTLCK)");
	if (t->winsize) {
		struct winsize ws = {
		    .ws_row = (unsigned short)t->winsize->rows,
		    .ws_col = (unsigned short)t->winsize->cols,
		    .ws_xpixel = (unsigned short)t->winsize->xpixel,
		    .ws_ypixel = (unsigned short)t->winsize->ypixel,
		};

		if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
			return ckpt_err_errno(e, -errno, "restoring the window size (TIOCSWINSZ)");
	}
	v = t->has_packet && t->packet;
	if (v && ioctl(fd, TIOCPKT, &v) < 0)
		return ckpt_err_errno(e, -errno, "restoring packet mode (TIOCPKT)");
	/* through the master, TCSETS2 sets the slave's termios */
	return tty_apply_termios(fe, fd, e);
}

static int ptmx_open(const FileEntry *fe, int *ret_fd, uint32_t *ret_index, struct ckpt_error *e)
{
	uint32_t flags = fdk_open_flags(fe->has_flags ? fe->flags : O_RDWR);
	int fd, idx = -1;

	flags = (flags & ~(uint32_t)(O_ACCMODE | O_PATH | O_DIRECTORY | O_NOFOLLOW)) | O_RDWR;
	fd = open("/dev/ptmx", (int)(flags | O_NOCTTY | O_CLOEXEC));
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open /dev/ptmx");
	if (ioctl(fd, TIOCGPTN, &idx) < 0) {
		int r = ckpt_err_errno(e, -errno, "TIOCGPTN on a new pty");

		close(fd);
		return r;
	}
	*ret_fd = fd;
	*ret_index = (uint32_t)idx;
	return 0;
}

/*
 * The kernel hands out the lowest free index: open masters until the saved
 * one comes (hold the others meanwhile), or a higher one shows it is taken;
 * then keep the first (lowest free) one and say so at debug level. Programs
 * that printed their /dev/pts/N then see another N (docs/fd-kinds.md).
 */
int tty_open_master(const FileEntry *fe, int *ret_fd, uint32_t *ret_index, struct ckpt_error *e)
{
	int held[PTY_INDEX_TRIES], nheld = 0, fd = -1, r;
	uint32_t want = fe->tty->index, idx = 0;

	r = ckpt_fault_inject("tty-open", e);
	if (r >= 0)
		r = tty_check_entry(fe, e);
	if (r >= 0 && fe->tty->role != TTY_ROLE__TTY_MASTER)
		r = ckpt_err(e, -EINVAL, "files.img: entry %u: not a pty master", fe->id);
	while (r >= 0 && nheld < PTY_INDEX_TRIES) {
		r = ptmx_open(fe, &fd, &idx, e);
		if (r < 0)
			break;
		if (idx == want)
			break;
		held[nheld++] = fd;
		fd = -1;
		if (idx > want)
			break;
	}
	if (r >= 0 && fd < 0 && nheld) {
		/* the saved index is taken: the lowest free one will do */
		fd = held[0];
		held[0] = -1;
		pr_debug("pty /dev/pts/%u is taken here; restored as another pty\n", want);
	}
	for (int i = 0; i < nheld; i++)
		if (held[i] >= 0)
			close(held[i]);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	if (ioctl(fd, TIOCGPTN, &idx) < 0)
		r = ckpt_err_errno(e, -errno, "TIOCGPTN on a new pty");
	else
		r = apply_master_state(fe, fd, e);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	*ret_index = idx;
	return 0;
}

static uint32_t peer_flags(const FileEntry *fe)
{
	uint32_t flags = fdk_open_flags(fe->has_flags ? fe->flags : O_RDWR);

	/* a terminal is never reopened as a controlling terminal by accident */
	return (flags & ~(uint32_t)(O_PATH | O_DIRECTORY | O_NOFOLLOW)) | O_NOCTTY | O_CLOEXEC;
}

int tty_open_peer(const FileEntry *fe, int master_fd, int *ret_fd, struct ckpt_error *e)
{
	int fd, r = ckpt_fault_inject("tty-open", e);

	if (r >= 0)
		r = tty_check_entry(fe, e);
	if (r < 0)
		return r;
	fd = ioctl(master_fd, TIOCGPTPEER, (int)peer_flags(fe));
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "opening the slave of a new pty (TIOCGPTPEER)");
	*ret_fd = fd;
	return 0;
}

int tty_open_external(const FileEntry *fe, int tty_fd, int *ret_fd, struct ckpt_error *e)
{
	char path[64];
	int fd, r = ckpt_fault_inject("tty-open", e);

	if (r >= 0)
		r = tty_check_entry(fe, e);
	if (r < 0)
		return r;
	/* a new description of the caller's terminal: its own flags, not the caller's */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", tty_fd);
	fd = open(path, (int)peer_flags(fe));
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "reopening the terminal (fd %d) for %s", tty_fd,
				      fe->path);
	*ret_fd = fd;
	return 0;
}

int tty_finish(const FileEntry *fe, int fd, struct ckpt_error *e)
{
	const TtyEntry *t = fe->tty;
	int v = 1;

	if (t->has_exclusive && t->exclusive && ioctl(fd, TIOCEXCL) < 0)
		return ckpt_err_errno(e, -errno, "%s: TIOCEXCL", fe->path);
	if (t->role == TTY_ROLE__TTY_MASTER && t->has_locked && t->locked &&
	    ioctl(fd, TIOCSPTLCK, &v) < 0)
		return ckpt_err_errno(e, -errno, "locking the pty again (TIOCSPTLCK)");
	return 0;
}

/* Slaves and external terminals are made by restorer/tty.c, not one by one. */
static int tty_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	uint32_t idx;
	int r;

	if (fe->tty && fe->tty->role == TTY_ROLE__TTY_MASTER) {
		r = tty_open_master(fe, &fd, &idx, e);
		if (r >= 0)
			r = fdk_set_fd_flags(fd, fd_flags, fe, e);
		if (r >= 0)
			*ret_fd = TAKE_FD(fd);
		return r;
	}
	return ckpt_err(e, -EINVAL, "files.img: entry %u: terminal %s is opened with its pty",
			fe->id, fe->path);
}

const struct fd_kind fd_kind_tty = {
    .name = "terminal",
    .matches = tty_matches,
    .describe = tty_describe,
    .entry_field = offsetof(FileEntry, tty),
    .dump = tty_dump,
    .verify = tty_verify,
    .open = tty_open,
};
