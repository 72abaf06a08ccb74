/* SPDX-License-Identifier: MIT */
/*
 * inotify. fdinfo lists the watches: "inotify wd:W ino:I sdev:D mask:M
 * ignored_mask:0 fhandle-bytes:N fhandle-type:T f_handle:HEX". A watch is
 * made again by path, so the dump turns each watched inode into a path:
 * open_by_handle_at (CAP_DAC_READ_SEARCH) on a mount of that device, then
 * the /proc/self/fd link of what it opened, checked to be the same inode.
 * An inode with no path (deleted, or outside our root) is refused.
 *
 * The watch descriptor numbers matter to the program (events carry them,
 * inotify_rm_watch takes them). A new instance hands them out increasingly
 * from 1, so the restorer adds the watches in wd order and fills each gap
 * with a dummy watch on "/" removed at once (removal queues an IN_IGNORED
 * event, read off before the real watch is added). The next wd the
 * program gets after restore follows its highest watch, which may be lower
 * than before if its highest ones were removed.
 *
 * Events queued and not read yet cannot be saved (reading them takes them
 * from the program; no call queues one): an instance with events is a
 * state the program clears itself, so the dump lets it read them and tries
 * again (-EAGAIN), and refuses after its wait. A killing dump looks again
 * before the kill (inotify_dump_recheck): events that came while the tree
 * was frozen withdraw the checkpoint, and the program reads them. Events
 * after the kill are the world's, as for any stopped program.
 */
#define LOG_PREFIX "kind inotify: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"
#include "proc.h"

#define FHANDLE_MAX 128
/* watch descriptors filled with dummies, at most, for one instance */
#define INOTIFY_GAPS_MAX 65536
#define INOTIFY_WATCHES_MAX 65536

struct watch_line {
	int wd;
	unsigned long ino;
	unsigned int sdev, mask, hbytes;
	int htype;
	unsigned char handle[FHANDLE_MAX];
};

static bool inotify_matches(const struct fd_probe *p)
{
	return !strcmp(p->link, "anon_inode:inotify");
}

static bool inotify_describe(const struct fd_probe *p, char *buf, size_t len)
{
	return fdk_describe_as(inotify_matches(p), "inotify", buf, len);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_line(const char *s, struct watch_line *w, struct ckpt_error *e)
{
	int n = 0;

	if (sscanf(s,
		   "inotify wd:%d ino:%lx sdev:%x mask:%x ignored_mask:%*x fhandle-bytes:%x "
		   "fhandle-type:%x f_handle:%n",
		   &w->wd, &w->ino, &w->sdev, &w->mask, &w->hbytes, &w->htype, &n) != 6 ||
	    !n)
		return ckpt_err(e, -EINVAL, "inotify: cannot parse fdinfo line \"%.80s\"", s);
	if (w->hbytes > FHANDLE_MAX)
		return ckpt_err(e, -EINVAL, "inotify: wd %d: file handle of %u bytes", w->wd,
				w->hbytes);
	s += n;
	for (unsigned i = 0; i < w->hbytes; i++) {
		int hi = hexval(s[2 * i]), lo = hi < 0 ? -1 : hexval(s[2 * i + 1]);

		if (lo < 0)
			return ckpt_err(e, -EINVAL, "inotify: wd %d: bad file handle", w->wd);
		w->handle[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* "\040" escapes of mountinfo */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++, d++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
			*d = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*d = *s;
		}
	}
	*d = '\0';
}

/* The path fd was opened by, if it still leads to the watched inode. */
static bool path_of(int fd, const struct watch_line *w, char *path, size_t len)
{
	char link[64];
	struct stat st;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, len - 1);
	if (n <= 0)
		return false;
	path[n] = '\0';
	return path[0] == '/' && stat(path, &st) == 0 && st.st_ino == w->ino &&
	       major(st.st_dev) == w->sdev >> 20 && minor(st.st_dev) == (w->sdev & 0xfffff);
}

/*
 * A path of the watched inode: opened by its handle through each mount of
 * its device in turn (a bind mount of a subdirectory may not reach it)
 * until one gives a path that leads back to it. path holds what the last
 * try found (for the error); false if none did.
 */
static bool find_path(const struct watch_line *w, const char *mountinfo, char *path, size_t len)
{
	unsigned maj = w->sdev >> 20, min = w->sdev & 0xfffff;
	char want[32];
	_cleanup_free_ struct file_handle *fh = malloc(sizeof(*fh) + FHANDLE_MAX);

	snprintf(path, len, "?");
	if (!fh)
		return false;
	fh->handle_bytes = w->hbytes;
	fh->handle_type = w->htype;
	memcpy(fh->f_handle, w->handle, w->hbytes);
	snprintf(want, sizeof(want), "%u:%u", maj, min);
	for (const char *l = mountinfo; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		char devs[32], mnt[PATH_MAX];
		_cleanup_close_ int mfd = -1, fd = -1;

		if (sscanf(l, "%*d %*d %31s %*s %4095s", devs, mnt) != 2 || strcmp(devs, want))
			continue;
		unescape(mnt);
		mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* not O_PATH: EBADF */
		if (mfd < 0)
			continue;
		fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
		if (fd < 0) {
			pr_debug("wd %d: open_by_handle_at on %s: %s\n", w->wd, mnt,
				 strerror(errno));
			continue;
		}
		if (path_of(fd, w, path, len))
			return true;
	}
	return false;
}

static int watch_path(const struct watch_line *w, const char *mountinfo, char **ret,
		      struct ckpt_error *e)
{
	char path[PATH_MAX];

	if (!find_path(w, mountinfo, path, sizeof(path)))
		return ckpt_err(e, -EOPNOTSUPP,
				"inotify: watch %d on inode %lu of device %u:%u (%s): the watched "
				"file has no path to watch it by again (deleted or out of reach); "
				"not supported",
				w->wd, w->ino, w->sdev >> 20, w->sdev & 0xfffff, path);
	*ret = strdup(path);
	return *ret ? 0 : ckpt_err(e, -ENOMEM, "out of memory");
}

static int add_watch(InotifyEntry *in, const struct watch_line *w, const char *mountinfo,
		     struct ckpt_error *e)
{
	InotifyWatch **n, *iw;

	if (in->n_watches >= INOTIFY_WATCHES_MAX)
		return ckpt_err(e, -E2BIG, "inotify: more than %d watches", INOTIFY_WATCHES_MAX);
	n = realloc(in->watches, (in->n_watches + 1) * sizeof(*n));
	if (!n)
		return ckpt_err(e, -ENOMEM, "out of memory");
	in->watches = n;
	iw = calloc(1, sizeof(*iw));
	if (!iw)
		return ckpt_err(e, -ENOMEM, "out of memory");
	inotify_watch__init(iw);
	in->watches[in->n_watches++] = iw;
	iw->wd = w->wd;
	iw->mask = w->mask;
	iw->has_ino = iw->has_dev = true;
	iw->ino = w->ino;
	iw->dev = makedev(w->sdev >> 20, w->sdev & 0xfffff);
	return watch_path(w, mountinfo, &iw->path, e);
}

static int cmp_watch(const void *a, const void *b)
{
	const InotifyWatch *x = *(InotifyWatch *const *)a, *y = *(InotifyWatch *const *)b;

	return x->wd < y->wd ? -1 : x->wd > y->wd;
}

static int inotify_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL, *mountinfo = NULL;
	InotifyEntry *in;
	int r, queued = 0;

	r = ckpt_fault_inject("inotify-dump", e);
	if (r < 0)
		return r;
	r = fdk_read_fdinfo(p, &text, e);
	if (r < 0)
		return r;
	r = proc_read_file("/proc/self/mountinfo", &mountinfo, NULL, e);
	if (r < 0)
		return r;
	r = fdk_dump_common(p, FILE_TYPE__FILE_INOTIFY, fe, e);
	if (r < 0)
		return r;
	in = calloc(1, sizeof(*in));
	if (!in)
		return ckpt_err(e, -ENOMEM, "out of memory");
	inotify_entry__init(in);
	fe->inotify = in;
	for (const char *s = strstr(text, "inotify wd:"); s; s = strstr(s + 1, "inotify wd:")) {
		struct watch_line w;

		r = parse_line(s, &w, e);
		if (r >= 0)
			r = add_watch(in, &w, mountinfo, e);
		if (r < 0)
			return r;
	}
	if (in->n_watches)
		qsort(in->watches, in->n_watches, sizeof(*in->watches), cmp_watch);
	if (p->local_fd < 0)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: fd %d: inotify instance: without a copy of the fd "
				"(pidfd_getfd) its events not read yet cannot be counted",
				p->pid, p->fd);
	if (ioctl(p->local_fd, FIONREAD, &queued) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: fd %d: inotify instance: FIONREAD",
				      p->pid, p->fd);
	if (queued > 0)
		return ckpt_err(e, -EAGAIN,
				"pid %d: fd %d: inotify instance: it has %d bytes of events not "
				"read yet (the dump lets the program read them first)",
				p->pid, p->fd, queued);
	pr_debug("pid %d fd %d: inotify, %zu watches\n", p->pid, p->fd, in->n_watches);
	return 0;
}

/* Killing dump, last look: events came since the instance was saved. */
static int inotify_dump_recheck(const struct fd_dump_view *v, struct ckpt_error *e)
{
	for (size_t i = 0; i < v->n; i++) {
		_cleanup_close_ int fd = -1;
		int queued = 0;

		if (v->items[i].fe->type != FILE_TYPE__FILE_INOTIFY)
			continue;
		fd = fdk_grab_fd(v->items[i].pid, v->items[i].fd, e);
		if (fd < 0)
			return fd;
		if (ioctl(fd, FIONREAD, &queued) < 0)
			return ckpt_err_errno(e, -errno,
					      "pid %d: fd %d: inotify instance: FIONREAD",
					      v->items[i].pid, v->items[i].fd);
		if (queued > 0)
			return ckpt_err(e, -EAGAIN,
					"pid %d: fd %d: inotify instance: events came while the "
					"checkpoint was committed; it is withdrawn and the tree "
					"left running",
					v->items[i].pid, v->items[i].fd);
	}
	return 0;
}

static int inotify_check(const FileEntry *fe, struct ckpt_error *e)
{
	const InotifyEntry *in = fe->inotify;

	if (fe->type != FILE_TYPE__FILE_INOTIFY || !in)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: not an inotify entry", fe->id);
	if (in->n_watches > INOTIFY_WATCHES_MAX)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: %zu inotify watches", fe->id,
				in->n_watches);
	for (size_t i = 0; i < in->n_watches; i++) {
		const InotifyWatch *w = in->watches[i];

		if (w->wd < 1 || (i && w->wd <= in->watches[i - 1]->wd) ||
		    w->wd - (int32_t)i > INOTIFY_GAPS_MAX)
			return ckpt_err(e, -EINVAL,
					"files.img: entry %u: field inotify.watches[%zu].wd: %d",
					fe->id, i, w->wd);
		if (!w->path || w->path[0] != '/' || strlen(w->path) >= PATH_MAX)
			return ckpt_err(e, -EINVAL,
					"files.img: entry %u: field inotify.watches[%zu].path",
					fe->id, i);
	}
	return 0;
}

static int inotify_verify(const FileEntry *fe, struct ckpt_error *e)
{
	struct stat st;
	int r;

	r = ckpt_fault_inject("inotify-verify", e);
	if (r >= 0)
		r = inotify_check(fe, e);
	for (size_t i = 0; r >= 0 && i < fe->inotify->n_watches; i++)
		if (stat(fe->inotify->watches[i]->path, &st) < 0)
			r = ckpt_err_errno(e, -errno, "inotify watch %d: %s",
					   fe->inotify->watches[i]->wd,
					   fe->inotify->watches[i]->path);
	return r;
}

/* Read off the queued events (IN_IGNORED of the dummy watches). */
static void drain(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* Dummy watches (added and removed) until the next wd handed out is wd. */
static int fill_gap(int fd, int *next, int wd, struct ckpt_error *e)
{
	bool any = false;

	while (*next < wd) {
		int d = inotify_add_watch(fd, "/", IN_DELETE_SELF);

		if (d < 0)
			return ckpt_err_errno(e, -errno, "inotify: a placeholder watch for wd %d",
					      *next);
		if (inotify_rm_watch(fd, d) < 0)
			return ckpt_err_errno(e, -errno, "inotify: removing placeholder wd %d", d);
		if (d != *next)
			return ckpt_err(e, -EINVAL, "inotify: placeholder got wd %d, expected %d",
					d, *next);
		(*next)++;
		any = true;
	}
	if (any)
		drain(fd);
	return 0;
}

static int inotify_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	const InotifyEntry *in = fe->inotify;
	_cleanup_close_ int fd = -1;
	int r, next = 1;

	r = ckpt_fault_inject("inotify-open", e);
	if (r >= 0)
		r = inotify_check(fe, e);
	if (r < 0)
		return r;
	fd = inotify_init1((fd_flags & O_CLOEXEC ? IN_CLOEXEC : 0) | IN_NONBLOCK);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "inotify_init1");
	for (size_t i = 0; i < in->n_watches; i++) {
		const InotifyWatch *w = in->watches[i];
		int wd;

		r = fill_gap(fd, &next, w->wd, e);
		if (r < 0)
			return r;
		wd = inotify_add_watch(fd, w->path, w->mask);
		if (wd < 0)
			return ckpt_err_errno(e, -errno, "inotify: watching %s (wd %d, mask %#x)",
					      w->path, w->wd, w->mask);
		if (wd != w->wd)
			return ckpt_err(e, -EINVAL, "inotify: watching %s gave wd %d instead of %d",
					w->path, wd, w->wd);
		next = wd + 1;
	}
	r = fdk_set_nonblock(fd, fe, e);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

const struct fd_kind fd_kind_inotify = {
    .name = "inotify",
    /* its watches would see the restorer open, write and close the others */
    .open_late = true,
    .matches = inotify_matches,
    .describe = inotify_describe,
    .entry_field = offsetof(FileEntry, inotify),
    .path = FD_PATH_ANON_INODE,
    .dump = inotify_dump,
    .verify = inotify_verify,
    .open = inotify_open,
    .dump_recheck = inotify_dump_recheck,
};
