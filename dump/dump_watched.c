/* SPDX-License-Identifier: MIT */
/*
 * The files the tree watches, and the content sums of the files it maps.
 *
 * A mapped file's identity carries a CRC32C of its content (file_ident.c),
 * so that a restore accepts a file touched but unchanged. Taking it means
 * opening and reading the file, and an open, a read and a close are what
 * inotify reports: a program watching a file it maps, or that file's
 * directory, for IN_OPEN, IN_ACCESS or IN_CLOSE_NOWRITE would see opens it
 * never made, and a dump finding those events queued in the freeze lets
 * the program read them and tries again (fd-kinds.md, inotify), which met
 * the same events on every try and was refused after 2 s.
 *
 * So in the freeze a mapped file (and the executable) is only stat'ed
 * through its /proc link, which no watch sees; its sum is filled in once
 * the tree's fds are dumped (dump_mapped_sums), when every inotify watch of
 * the tree is known: from the sums taken before the freeze
 * (dump_prefetch.c, which looks at the watches the same way, through
 * /proc), else read then, unless the tree watches the file or its
 * directory for those events. Such a file keeps no sum: its restore asks
 * for the same size and mtime, refusing a file merely touched, never
 * accepting a changed one. A pre-dump dumps no fd and its checkpoint is
 * never the one restored (docs/incremental.md): its files get no sum.
 */
#define LOG_PREFIX "dump: "

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cleanup.h"
#include "dump_internal.h"
#include "kinds/fd_kind.h"
#include "kinds/file_util.h"
#include "log.h"
#include "proc.h"

/* what opening, reading and closing a file reports */
#define SEEN_BY_READ (IN_ACCESS | IN_OPEN | IN_CLOSE_NOWRITE)
/* a task with more fds is not looked at before the freeze (a readlink
 * each); its tree's sums are then all taken in the freeze */
#define PREFETCH_FDS_MAX 4096

struct dump_watch {
	uint64_t dev, ino;
};

static int watch_add(struct dump_ctx *c, uint64_t dev, uint64_t ino)
{
	if (c->nwatched == c->watched_cap) {
		size_t cap = c->watched_cap ? 2 * c->watched_cap : 16;
		struct dump_watch *g = realloc(c->watched, cap * sizeof(*g));

		if (!g)
			return -ENOMEM;
		c->watched = g;
		c->watched_cap = cap;
	}
	c->watched[c->nwatched++] = (struct dump_watch){dev, ino};
	return 0;
}

void dump_watched_reset(struct dump_ctx *c)
{
	free(c->watched);
	c->watched = NULL;
	c->nwatched = c->watched_cap = 0;
}

/* The watches of inotify instance fd of pid that see a read, from fdinfo. */
static int watches_of_fd(struct dump_ctx *c, pid_t pid, const char *fd)
{
	_cleanup_free_ char *text = NULL;
	struct ckpt_error e = {0};
	char path[320];

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid, fd);
	if (proc_read_file(path, &text, NULL, &e) < 0)
		return e.code;
	for (char *s = text; s && *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : NULL) {
		unsigned long ino;
		unsigned sdev, mask;

		if (sscanf(s, "inotify wd:%*d ino:%lx sdev:%x mask:%x", &ino, &sdev, &mask) == 3 &&
		    (mask & SEEN_BY_READ) &&
		    watch_add(c, makedev(sdev >> 20, sdev & 0xfffff), ino) < 0)
			return -ENOMEM;
	}
	return 0;
}

/*
 * Does fd of pid (a directory) have an owner? A dnotify watch (fcntl
 * F_NOTIFY) makes its process the owner, and no interface shows the watch
 * itself or its events: a read of any file in that directory may signal
 * the program (DN_ACCESS). The dump refuses such an fd (dump_fds.c); until
 * then nothing may read a file for a sum, or the program of a refused dump
 * gets signals for reads it never made (test_dnotify). Unknown is owned.
 */
static bool dir_owned(pid_t pid, const char *fd)
{
	struct f_owner_ex owner = {0};
	struct ckpt_error e = {0};
	_cleanup_close_ int local = fdk_grab_fd(pid, atoi(fd), &e);

	return local < 0 || fcntl(local, F_GETOWN_EX, &owner) < 0 || owner.pid != 0;
}

bool dump_watched_scan(struct dump_ctx *c, pid_t pid)
{
	_cleanup_(closedirp) DIR *d = NULL;
	char path[320], link[64];
	struct dirent *de;
	struct stat st;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return false;
	/* counted first: a task with too many is given up before any readlink */
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && ++n > PREFETCH_FDS_MAX)
			return false;
	rewinddir(d);
	while ((de = readdir(d))) {
		ssize_t k;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)pid, de->d_name);
		k = readlink(path, link, sizeof(link) - 1);
		if (k <= 0)
			continue;
		link[k] = '\0';
		if (!strcmp(link, "anon_inode:inotify") && watches_of_fd(c, pid, de->d_name) < 0)
			return false;
		/* a fanotify group sees any open and read of what it marks (its
		 * marks are not read here); the dump refuses it (probe.c) */
		if (!strcmp(link, "anon_inode:[fanotify]"))
			return false;
		/* (stat follows the link to the directory itself) */
		if (link[0] == '/' && stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
		    dir_owned(pid, de->d_name))
			return false;
	}
	return true;
}

bool dump_inode_watched(const struct dump_ctx *c, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < c->nwatched; i++)
		if (c->watched[i].dev == dev && c->watched[i].ino == ino)
			return true;
	return false;
}

bool dump_file_watched(const struct dump_ctx *c, const struct stat *st, const char *path)
{
	struct stat pst;

	if (!c->nwatched)
		return false;
	if (dump_inode_watched(c, st->st_dev, st->st_ino))
		return true;
	/* its directory: the one of the path the task mapped it by, if that
	 * path still leads to it; else not known, so watched */
	if (!path || stat(path, &pst) < 0 || pst.st_dev != st->st_dev || pst.st_ino != st->st_ino)
		return true;
	return dump_dir_watched(c, path);
}

bool dump_dir_watched(const struct dump_ctx *c, const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	struct stat st;
	size_t dlen;

	if (!c->nwatched)
		return false;
	if (!slash || (size_t)(slash - path) >= sizeof(dir))
		return true;
	dlen = slash == path ? 1 : (size_t)(slash - path); /* "/x": "/" */
	memcpy(dir, path, dlen);
	dir[dlen] = '\0';
	return stat(dir, &st) < 0 || dump_inode_watched(c, st.st_dev, st.st_ino);
}

/* The watches of the tree's inotify instances, from its dumped fds. */
static int watches_of_files(struct dump_ctx *c)
{
	dump_watched_reset(c);
	for (size_t i = 0; i < c->nfiles; i++) {
		const FileEntry *fe = c->files[i].fe;

		if (fe->type != FILE_TYPE__FILE_INOTIFY || !fe->inotify)
			continue;
		for (size_t k = 0; k < fe->inotify->n_watches; k++) {
			const InotifyWatch *w = fe->inotify->watches[k];

			if ((w->mask & SEEN_BY_READ) && watch_add(c, w->dev, w->ino) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/* The sum of one mapped file whose identity was taken in the freeze. */
static int mapped_sum(struct dump_ctx *c, struct dump_file *f, struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	struct stat st = {0};
	char what[PATH_MAX + 16];

	st.st_dev = (dev_t)f->dev;
	st.st_ino = (ino_t)f->ino;
	if (dump_file_watched(c, &st, f->fe->path)) {
		pr_debug("%s: watched by the tree (inotify): identity without a content sum",
			 f->fe->path);
		return 0;
	}
	fd =
	    file_open_noatime(f->sum_src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOATIME);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "mapped file %s: opening %s", f->fe->path,
				      f->sum_src);
	snprintf(what, sizeof(what), "mapped file %s", f->fe->path);
	return file_ident_sum_check(fd, c->sums, c->nsums, f->fe->ident, what, e);
}

int dump_mapped_sums(struct dump_ctx *c, struct ckpt_error *e)
{
	int r;

	if (c->opts->pre_dump)
		return 0;
	r = watches_of_files(c);
	if (r < 0)
		return ckpt_err(e, r, "out of memory");
	for (size_t i = 0; i < c->nfiles; i++) {
		struct dump_file *f = &c->files[i];

		if (!f->sum_src)
			continue;
		r = mapped_sum(c, f, e);
		if (r < 0)
			return r;
		free(f->sum_src);
		f->sum_src = NULL;
	}
	return 0;
}
