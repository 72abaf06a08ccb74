/* SPDX-License-Identifier: MIT */
/*
 * Pipes and FIFOs (two kinds, one file: they share everything but how the
 * pipe is found again). One FileEntry per open file description: a read
 * end, a write end, or an O_RDWR one; fds sharing a description (dup, fork)
 * share the entry (dump/dump_fds.c, kcmp). PipeEntry names the pipe by
 * its inode, so that all the ends of one pipe are made from one pipe.
 *
 * Dump. The bytes buffered in the pipe are copied without being consumed:
 * tee(2) from our copy of a read end (pidfd_getfd) duplicates the pipe's
 * buffers into a temporary pipe of the same capacity, which we drain. The
 * running program loses nothing, whether the dump succeeds, fails or
 * leaves it running. A FIFO held only for writing is reopened for reading
 * through /proc/PID/fd/N to do the same. Once every fd of the tree is
 * dumped (dump_done), the data is kept on one entry per pipe, and a pipe
 * with an end outside the tree is refused: its other end would be cut off
 * at restore (see docs/fd-kinds.md, "Pipes and FIFOs").
 *
 * Restore. The restorer process opens each pipe once (open_shared, state
 * kept per restore in struct fd_open_ctx): pipe2(), F_SETPIPE_SZ, the data
 * written back before any task exists; every description is then a dup of
 * the pipe's own end or a reopen of it through /proc/self/fd (a second
 * description of the same end), with its flags (F_SETFL). A FIFO is opened
 * O_RDWR|O_NONBLOCK first (never blocks, keeps a reader and a writer while
 * the others are opened), recreated with its mode and owner if it is gone.
 * Ends that no entry names are closed at the end of the files stage.
 */
#define LOG_PREFIX "kind pipe: "

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"
#include "proc.h"

/*
 * Far above what a pipe can hold without CAP_SYS_RESOURCE (pipe-max-size,
 * 1 MiB by default); one FileEntry is one image record (64 MiB at most).
 */
#define PIPE_DATA_MAX (16u << 20)
#define PIPE_PAGE 4096u

static const char *end_name(PipeEnd end)
{
	switch (end) {
	case PIPE_END__PIPE_READ:
		return "read end";
	case PIPE_END__PIPE_WRITE:
		return "write end";
	default:
		return "read-write end";
	}
}

static bool is_pipe_type(FileType type)
{
	return type == FILE_TYPE__FILE_PIPE;
}

/* "pipe:[123]" or "FIFO /tmp/x", for messages. */
static const char *obj_name(const FileEntry *fe, char *buf, size_t len)
{
	if (is_pipe_type(fe->type))
		snprintf(buf, len, "%s", fe->path ? fe->path : "pipe");
	else
		snprintf(buf, len, "FIFO %s", fe->path ? fe->path : "?");
	return buf;
}

/* ---- dump --------------------------------------------------------------------- */

static bool pipe_matches(const struct fd_probe *p)
{
	return S_ISFIFO(p->st.st_mode) && !strncmp(p->link, "pipe:[", 6);
}

/* A FIFO opened by its path: named, or removed since ("PATH (deleted)"). */
static bool fifo_matches(const struct fd_probe *p)
{
	return S_ISFIFO(p->st.st_mode) && p->link[0] == '/';
}

static bool pipe_describe(const struct fd_probe *p, char *buf, size_t len)
{
	return fdk_describe_as(!strncmp(p->link, "pipe:[", 6), "pipe", buf, len);
}

static bool fifo_describe(const struct fd_probe *p, char *buf, size_t len)
{
	if (!S_ISFIFO(p->st.st_mode) || p->link[0] != '/')
		return false;
	snprintf(buf, len, "FIFO %s", p->link);
	return true;
}

/*
 * Copy the bytes buffered in the pipe behind rfd (open for reading) without
 * consuming them: tee duplicates the pipe's buffers (all in one call: the
 * temporary pipe has as many slots as the pipe) and we drain the copy.
 */
static int peek_data(int rfd, int size, ProtobufCBinaryData *ret, struct ckpt_error *e)
{
	_cleanup_close_ int tr = -1, tw = -1;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t off = 0;
	ssize_t got;
	int n = 0, tp[2];

	ret->data = NULL;
	ret->len = 0;
	if (ioctl(rfd, FIONREAD, &n) < 0)
		return ckpt_err_errno(e, -errno, "FIONREAD");
	if (n <= 0)
		return 0;
	if ((unsigned)n > PIPE_DATA_MAX)
		return ckpt_err(e, -EFBIG, "it holds %d bytes, more than the %u a checkpoint saves",
				n, PIPE_DATA_MAX);
	if (pipe2(tp, O_CLOEXEC | O_NONBLOCK) < 0)
		return ckpt_err_errno(e, -errno, "pipe2 for a temporary copy");
	tr = tp[0];
	tw = tp[1];
	if (fcntl(tw, F_SETPIPE_SZ, size) < 0)
		return ckpt_err_errno(e, -errno, "a temporary pipe of %d bytes (F_SETPIPE_SZ)",
				      size);
	got = tee(rfd, tw, (size_t)n, SPLICE_F_NONBLOCK);
	if (got < 0)
		return ckpt_err_errno(e, -errno, "copying its %d buffered bytes (tee)", n);
	if (got != n)
		return ckpt_err(e, -EAGAIN, "tee copied %zd of its %d buffered bytes", got, n);
	buf = malloc((size_t)n);
	if (!buf)
		return ckpt_err(e, -ENOMEM, "out of memory for %d bytes", n);
	while (off < (size_t)n) {
		ssize_t k = read(tr, buf + off, (size_t)n - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return ckpt_err_errno(e, k < 0 ? -errno : -EIO,
					      "reading the temporary copy (%zu of %d bytes)", off,
					      n);
		off += (size_t)k;
	}
	ret->data = TAKE_PTR(buf);
	ret->len = (size_t)n;
	return 0;
}

/* Is the other end of a pipe open anywhere? (poll on our copy of this end) */
static bool peer_closed(int fd, PipeEnd end)
{
	struct pollfd pfd = {.fd = fd, .events = end == PIPE_END__PIPE_READ ? POLLIN : POLLOUT};

	if (end == PIPE_END__PIPE_RDWR || poll(&pfd, 1, 0) < 0)
		return false;
	/* a write end sees POLLERR without readers, a read end POLLHUP without writers */
	return (pfd.revents & (end == PIPE_END__PIPE_READ ? POLLHUP : POLLERR)) != 0;
}

static int pipe_dump_common(const struct fd_probe *p, FileType type, FileEntry *fe,
			    struct ckpt_error *e)
{
	char path[64], what[PATH_MAX + 16];
	_cleanup_close_ int own = -1;
	uint32_t acc = p->info.flags & O_ACCMODE;
	PipeEntry *pe;
	int size, rfd = -1, r;

	snprintf(what, sizeof(what), "%s%s", is_pipe_type(type) ? "" : "FIFO ", p->link);
	if (p->local_fd < 0)
		return ckpt_err(e, -EPERM,
				"%s: no copy of the descriptor (pidfd_getfd refused): its buffered "
				"data cannot be read",
				what);
	if (p->info.flags & O_PATH)
		return ckpt_err(e, -EOPNOTSUPP, "%s is open with O_PATH; not supported", what);
	if (p->info.flags & O_DIRECT)
		return ckpt_err(e, -EOPNOTSUPP, "%s is in packet mode (O_DIRECT); not supported",
				what);
	size = fcntl(p->local_fd, F_GETPIPE_SZ);
	if (size <= 0)
		return ckpt_err_errno(e, -errno, "%s: F_GETPIPE_SZ", what);
	r = fdk_dump_common(p, type, fe, e);
	if (r < 0)
		return r;
	pe = malloc(sizeof(*pe));
	if (!pe)
		return ckpt_err(e, -ENOMEM, "%s: out of memory", what);
	pipe_entry__init(pe);
	fe->pipe = pe; /* freed with the entry from now on */
	pe->pipe_id = p->st.st_ino;
	pe->has_dev = true;
	pe->dev = p->st.st_dev;
	pe->size = (uint32_t)size;
	pe->end = acc == O_RDONLY   ? PIPE_END__PIPE_READ
		  : acc == O_WRONLY ? PIPE_END__PIPE_WRITE
				    : PIPE_END__PIPE_RDWR;
	if (!is_pipe_type(type)) {
		fe->has_uid = fe->has_gid = true;
		fe->uid = p->st.st_uid;
		fe->gid = p->st.st_gid;
		/* removed since it was opened: made again at restore under no name */
		if (fdk_link_is_deleted(p->link)) {
			if (p->st.st_nlink > 0)
				return ckpt_err(e, -EOPNOTSUPP,
						"%s was removed but has %lu other hard link(s): "
						"not supported",
						what, (unsigned long)p->st.st_nlink);
			fe->path[strlen(fe->path) - strlen(DELETED_SUFFIX)] = '\0';
			fe->has_deleted = fe->deleted = true;
		}
	} else if (peer_closed(p->local_fd, pe->end)) {
		pe->has_peer_closed = true;
		pe->peer_closed = true;
	}
	if (pe->end != PIPE_END__PIPE_WRITE) {
		rfd = p->local_fd;
	} else if (!is_pipe_type(type)) {
		/* a FIFO held only for writing: a reader of our own, just to tee */
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", p->pid, p->fd);
		own = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (own < 0)
			return ckpt_err_errno(e, -errno, "%s: opening %s to read its data", what,
					      path);
		rfd = own;
	}
	/* (a pipe's write end: the data is copied through the pipe's read end) */
	if (rfd >= 0) {
		r = peek_data(rfd, size, &pe->data, e);
		if (r < 0)
			return ckpt_err_wrap(e, "%s", what);
		pe->has_data = pe->data.len > 0;
	}
	pr_debug("pid %d fd %d: %s %s, %d bytes, %zu buffered\n", p->pid, p->fd, what,
		 end_name(pe->end), size, pe->data.len);
	return 0;
}

static int pipe_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("pipe-dump", e);

	return r < 0 ? r : pipe_dump_common(p, FILE_TYPE__FILE_PIPE, fe, e);
}

static int fifo_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("fifo-dump", e);

	return r < 0 ? r : pipe_dump_common(p, FILE_TYPE__FILE_FIFO, fe, e);
}

static bool in_tree(const struct fd_dump_view *v, pid_t pid)
{
	if (pid == v->self)
		return true;
	for (size_t i = 0; i < v->npids; i++)
		if (v->pids[i] == pid)
			return true;
	return false;
}

/* Does /proc/PID/fd/NAME (its link is link) refer to fe's pipe? */
static bool fd_is_obj(int fddir, const char *name, const char *link, const FileEntry *fe)
{
	size_t n = strlen(fe->path);
	struct stat st;

	if (strncmp(link, fe->path, n) ||
	    strcmp(link + n, fe->has_deleted && fe->deleted ? DELETED_SUFFIX : ""))
		return false;
	if (is_pipe_type(fe->type))
		return true;
	/* a FIFO: same path, and the same inode */
	return fstatat(fddir, name, &st, 0) == 0 && S_ISFIFO(st.st_mode) &&
	       st.st_ino == fe->pipe->pipe_id && (!fe->pipe->has_dev || st.st_dev == fe->pipe->dev);
}

/*
 * The first process outside the tree that has fe's pipe open (by its
 * /proc/PID/fd links), or 0. Only asked when something is wrong (an end
 * missing, a FIFO), to name the holder in the error: a scan of every fd of
 * the machine is not free.
 */
static pid_t find_outside_holder(const struct fd_dump_view *v, const FileEntry *fe, int *ret_fd)
{
	_cleanup_closedir_ DIR *proc = opendir("/proc");
	struct dirent *de;

	while (proc && (de = readdir(proc))) {
		_cleanup_closedir_ DIR *fds = NULL;
		struct dirent *fde;
		char path[64];
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid <= 0 || in_tree(v, pid))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
		fds = opendir(path);
		while (fds && (fde = readdir(fds))) {
			char link[PATH_MAX];
			ssize_t n;

			if (fde->d_name[0] == '.')
				continue;
			n = readlinkat(dirfd(fds), fde->d_name, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (fd_is_obj(dirfd(fds), fde->d_name, link, fe)) {
				*ret_fd = atoi(fde->d_name);
				return pid;
			}
		}
	}
	return 0;
}

static int refuse_outside(const struct fd_dump_view *v, const struct fd_dump_item *it,
			  const char *what, struct ckpt_error *e)
{
	char name[PATH_MAX + 16], comm[64] = "?", holder[128] = "a process outside the tree";
	int hfd = -1;
	pid_t h = find_outside_holder(v, it->fe, &hfd);

	if (h > 0) {
		struct ckpt_error tmp = {0};
		_cleanup_free_ char *text = NULL;
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)h);
		if (proc_read_file(path, &text, NULL, &tmp) >= 0) {
			snprintf(comm, sizeof(comm), "%s", text);
			comm[strcspn(comm, "\n")] = '\0';
		}
		snprintf(holder, sizeof(holder), "pid %d (%s) fd %d, outside the tree", (int)h,
			 comm, hfd);
	}
	return ckpt_err(e, -EOPNOTSUPP,
			"pid %d: fd %d: %s: %s is held by %s; pipes to processes outside the "
			"tree are not supported",
			it->pid, it->fd, obj_name(it->fe, name, sizeof(name)), what, holder);
}

/* The entries of one pipe: items[first] and those after it with the same pipe. */
static bool same_obj(const FileEntry *a, const FileEntry *b)
{
	return a->type == b->type && a->pipe && b->pipe && a->pipe->pipe_id == b->pipe->pipe_id &&
	       a->pipe->dev == b->pipe->dev;
}

static void drop_data(PipeEntry *pe)
{
	free(pe->data.data);
	pe->data.data = NULL;
	pe->data.len = 0;
	pe->has_data = false;
}

/*
 * One pipe, whose first entry in the view is items[first]: keep its data
 * on one entry, and refuse ends held outside the tree.
 */
static int check_one(const struct fd_dump_view *v, size_t first, struct ckpt_error *e)
{
	const FileEntry *fe0 = v->items[first].fe;
	bool reader = false, writer = false, closed = true, kept = false;

	for (size_t i = first; i < v->n; i++) {
		PipeEntry *pe = v->items[i].fe->pipe;

		if (!same_obj(fe0, v->items[i].fe))
			continue;
		reader |= pe->end != PIPE_END__PIPE_WRITE;
		writer |= pe->end != PIPE_END__PIPE_READ;
		closed &= pe->has_peer_closed && pe->peer_closed;
		if (pe->has_data && kept)
			drop_data(pe); /* the same bytes, seen through another description */
		kept |= pe->has_data;
	}
	if (!is_pipe_type(fe0->type)) {
		/* A FIFO open elsewhere would keep its buffer (and get ours again). */
		int hfd = -1;

		if (find_outside_holder(v, fe0, &hfd) > 0)
			return refuse_outside(v, &v->items[first], "it", e);
		return 0;
	}
	/* Both ends in the tree, or the missing one closed everywhere: exact. */
	if ((reader && writer) || closed)
		return 0;
	return refuse_outside(v, &v->items[first], reader ? "its write end" : "its read end", e);
}

static int dump_done_type(const struct fd_dump_view *v, FileType type, struct ckpt_error *e)
{
	for (size_t i = 0; i < v->n; i++) {
		const FileEntry *fe = v->items[i].fe;
		bool seen = false;
		int r;

		if (fe->type != type || !fe->pipe)
			continue;
		for (size_t k = 0; k < i && !seen; k++)
			seen = same_obj(fe, v->items[k].fe);
		if (seen)
			continue;
		r = check_one(v, i, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int pipe_dump_done(const struct fd_dump_view *v, struct ckpt_error *e)
{
	return dump_done_type(v, FILE_TYPE__FILE_PIPE, e);
}

static int fifo_dump_done(const struct fd_dump_view *v, struct ckpt_error *e)
{
	return dump_done_type(v, FILE_TYPE__FILE_FIFO, e);
}

/* ---- restore ------------------------------------------------------------------- */

static int read_pipe_max(uint32_t *ret, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	long v;
	int r;

	r = proc_read_file("/proc/sys/fs/pipe-max-size", &text, NULL, e);
	if (r < 0)
		return r;
	v = strtol(text, NULL, 10);
	*ret = v > 0 && v < (1L << 31) ? (uint32_t)v : 1u << 20;
	return 0;
}

/* Images are not trusted: what every pipe or FIFO entry must satisfy. */
static int check_pipe_entry(const FileEntry *fe, FileType type, struct ckpt_error *e)
{
	const PipeEntry *pe = fe->pipe;
	char name[PATH_MAX + 16];
	uint32_t max = 0;
	int r;

	if (!is_pipe_type(type)) {
		r = fdk_check_entry(fe, type, e);
		if (r < 0)
			return r;
	} else if (fe->type != type || !fe->path || strncmp(fe->path, "pipe:[", 6)) {
		return ckpt_err(e, -EINVAL, "files.img: entry %u: not a pipe entry (type %d)",
				fe->id, (int)fe->type);
	}
	obj_name(fe, name, sizeof(name));
	if (!pe)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field pipe: missing", fe->id,
				name);
	if (pe->end != PIPE_END__PIPE_READ && pe->end != PIPE_END__PIPE_WRITE &&
	    pe->end != PIPE_END__PIPE_RDWR)
		return ckpt_err(e, -EINVAL, "files.img: entry %u (%s): field pipe.end: %d", fe->id,
				name, (int)pe->end);
	if (pe->size < PIPE_PAGE || pe->size % PIPE_PAGE)
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u (%s): field pipe.size: %u is not a number of "
				"pages",
				fe->id, name, pe->size);
	if (pe->has_data && pe->data.len > pe->size)
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u (%s): field pipe.data: %zu bytes, more than "
				"its size %u",
				fe->id, name, pe->data.len, pe->size);
	r = read_pipe_max(&max, e);
	if (r < 0)
		return r;
	/* Above pipe-max-size F_SETPIPE_SZ needs CAP_SYS_RESOURCE, which we lack. */
	if (pe->size > max && pe->size > 65536)
		return ckpt_err(e, -EPERM,
				"%s had a capacity of %u bytes, more than this machine allows "
				"(/proc/sys/fs/pipe-max-size is %u)",
				name, pe->size, max);
	return 0;
}

static int pipe_verify(const FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("pipe-verify", e);

	return r < 0 ? r : check_pipe_entry(fe, FILE_TYPE__FILE_PIPE, e);
}

static bool is_deleted(const FileEntry *fe)
{
	return fe->has_deleted && fe->deleted;
}

/* The directory of a removed FIFO: where it is made again for a moment (dir into buf). */
static const char *dir_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash && slash != path ? (size_t)(slash - path) : 1;

	snprintf(buf, len, "%.*s", (int)n, path);
	return buf;
}

static int check_deleted_dir(const FileEntry *fe, struct ckpt_error *e)
{
	char dir[PATH_MAX];
	struct stat st;

	dir_of(fe->path, dir, sizeof(dir));
	if (stat(dir, &st) < 0)
		return ckpt_err_errno(e, -errno, "removed FIFO %s is made again in its directory %s",
				      fe->path, dir);
	if (!S_ISDIR(st.st_mode))
		return ckpt_err(e, -ENOTDIR,
				"removed FIFO %s is made again in its directory %s: not a directory",
				fe->path, dir);
	if (access(dir, W_OK | X_OK) < 0)
		return ckpt_err_errno(e, -errno,
				      "removed FIFO %s is made again in its directory %s, which we "
				      "cannot write",
				      fe->path, dir);
	return 0;
}

/* The FIFO is there, or can be made again: its directory exists. */
static int fifo_verify(const FileEntry *fe, struct ckpt_error *e)
{
	_cleanup_free_ char *dir = NULL;
	struct stat st;
	int r;

	r = ckpt_fault_inject("fifo-verify", e);
	if (r < 0)
		return r;
	r = check_pipe_entry(fe, FILE_TYPE__FILE_FIFO, e);
	if (r < 0)
		return r;
	if (is_deleted(fe))
		return check_deleted_dir(fe, e);
	if (lstat(fe->path, &st) == 0) {
		if (!S_ISFIFO(st.st_mode))
			return ckpt_err(e, -EEXIST, "FIFO %s is now something else (mode 0%o)",
					fe->path, (unsigned)st.st_mode);
		return 0;
	}
	if (errno != ENOENT)
		return ckpt_err_errno(e, -errno, "FIFO %s", fe->path);
	dir = strdup(fe->path);
	if (!dir)
		return ckpt_err(e, -ENOMEM, "out of memory");
	if (stat(dirname(dir), &st) < 0 || !S_ISDIR(st.st_mode))
		return ckpt_err(e, -ENOENT,
				"FIFO %s is gone and cannot be made again: no directory %s",
				fe->path, dir);
	return 0;
}

/* One pipe being restored: our own fds on it, until open_done. */
struct pipe_obj {
	FileType type;
	uint64_t dev, ino;
	int rd, wr; /* a pipe's two ends (the first descriptions); a FIFO's O_RDWR helper in rd */
	bool rd_given, wr_given; /* the first description of that end went to an entry */
	bool data_done;
	bool deleted; /* a removed FIFO: descriptions are reopened through rd */
	struct pipe_obj *next;
};

static void pipe_open_done(struct fd_open_ctx *ctx)
{
	struct pipe_obj *o = ctx->priv;

	while (o) {
		struct pipe_obj *next = o->next;

		if (o->rd >= 0)
			close(o->rd);
		if (o->wr >= 0)
			close(o->wr);
		free(o);
		o = next;
	}
	ctx->priv = NULL;
}

static int set_size(int fd, const FileEntry *fe, struct ckpt_error *e)
{
	char name[PATH_MAX + 16];
	int r = fcntl(fd, F_SETPIPE_SZ, (int)fe->pipe->size);

	if (r < 0)
		return ckpt_err_errno(e, -errno, "%s: F_SETPIPE_SZ %u",
				      obj_name(fe, name, sizeof(name)), fe->pipe->size);
	if ((uint32_t)r != fe->pipe->size)
		return ckpt_err(e, -EINVAL, "%s: F_SETPIPE_SZ %u gave %d bytes",
				obj_name(fe, name, sizeof(name)), fe->pipe->size, r);
	return 0;
}

/*
 * A FIFO that is gone is made again with its saved mode and owner (and
 * reported to the restorer, which removes it if the restore fails).
 */
static int fifo_prepare(struct fd_open_ctx *ctx, const FileEntry *fe, struct ckpt_error *e)
{
	mode_t mode = fe->has_mode ? (mode_t)(fe->mode & 07777) : 0600;
	_cleanup_close_ int fd = -1;
	struct file_made made;
	int r;

	if (mknod(fe->path, S_IFIFO | mode, 0) < 0) {
		if (errno == EEXIST)
			return 0;
		return ckpt_err_errno(e, -errno, "making FIFO %s again", fe->path);
	}
	made = file_made_of(-1, fe->path);
	if (ctx->made_path)
		ctx->made_path(ctx->owner, fe->path);
	/* (a test swaps the path here: CKPT_PAUSE=fifo-remade) */
	r = ckpt_fault_inject("fifo-remade", e);
	if (r < 0)
		return r;
	/*
	 * mknod applied our umask. The mode and owner are set through an fd of
	 * the node just made (O_RDWR never waits), not by path, once it is
	 * known to be that node: a symlink, another file's hard link or a FIFO
	 * of someone else's put there since, in a directory others may write,
	 * would have them instead.
	 */
	fd = file_made_open(fe->path, O_RDWR | O_NONBLOCK | O_NOCTTY, S_IFIFO, &made);
	if (fd == -ESTALE)
		return ckpt_err(
		    e, -EINVAL,
		    "FIFO %s made again was replaced before its mode and owner were set", fe->path);
	if (fd < 0)
		return ckpt_err_errno(e, fd, "FIFO %s made again: opening it", fe->path);
	r = fd_set_owner_mode(fd, fe->has_uid && fe->has_gid ? fe->uid : (uid_t)-1,
			      fe->has_uid && fe->has_gid ? fe->gid : (gid_t)-1, (int)mode);
	if (r < 0)
		return ckpt_err_errno(e, r, "FIFO %s made again: setting mode 0%o, owner %u:%u",
				      fe->path, (unsigned)mode, fe->uid, fe->gid);
	pr_debug("FIFO %s made again (mode 0%o)\n", fe->path, (unsigned)mode);
	return 0;
}

/*
 * A removed FIFO: made at a fresh name in its directory with its saved mode
 * and owner, opened O_RDWR|O_NONBLOCK (our helper: every description is
 * reopened through it), and removed at once. Its /proc link then reads
 * "DIR/.ckpt-fifo-XXXXXX (deleted)".
 */
static int fifo_make_deleted(const FileEntry *fe, int *ret_fd, struct ckpt_error *e)
{
	mode_t mode = fe->has_mode ? (mode_t)(fe->mode & 07777) : 0600;
	char dir[PATH_MAX], name[PATH_MAX + 32];
	_cleanup_close_ int fd = -1;
	struct file_made made;
	int r = 0;

	dir_of(fe->path, dir, sizeof(dir));
	for (unsigned i = 0;; i++) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		snprintf(name, sizeof(name), "%s/.ckpt-fifo-%d-%lx", strcmp(dir, "/") ? dir : "",
			 (int)getpid(), (unsigned long)(ts.tv_nsec ^ (long)i * 7919));
		if (mknod(name, S_IFIFO | 0600, 0) == 0) {
			made = file_made_of(-1, name);
			break;
		}
		if (errno != EEXIST || i >= 100)
			return ckpt_err_errno(e, -errno,
					      "removed FIFO %s: making it again in %s", fe->path,
					      dir);
	}
	/* (a test swaps the name here: CKPT_PAUSE=fifo-made) */
	r = ckpt_fault_inject("fifo-made", e);
	/*
	 * The directory may be writable by others: what is opened must be the
	 * FIFO just made, not a symlink, another file's hard link or a FIFO of
	 * someone else's put at the name since (its mode and owner are about
	 * to be set).
	 */
	if (r >= 0)
		fd = file_made_open(name, O_RDWR | O_NONBLOCK | O_NOCTTY, S_IFIFO, &made);
	if (r >= 0 && fd == -ESTALE)
		r = ckpt_err(e, -EINVAL, "removed FIFO %s: %s is not the FIFO made", fe->path,
			     name);
	else if (r >= 0 && fd < 0)
		r = ckpt_err_errno(e, fd, "removed FIFO %s: opening %s", fe->path, name);
	if (r >= 0 && (r = fd_set_owner_mode(fd, fe->has_uid && fe->has_gid ? fe->uid : (uid_t)-1,
					     fe->has_uid && fe->has_gid ? fe->gid : (gid_t)-1,
					     (int)mode)) < 0)
		r = ckpt_err_errno(e, r,
				   "removed FIFO %s made again: setting mode 0%o, owner %u:%u",
				   fe->path, (unsigned)mode, fe->uid, fe->gid);
	/* gone again at once; what someone else put at the name is theirs */
	if (file_made_at(name, &made) && unlink(name) < 0 && r >= 0)
		r = ckpt_err_errno(e, -errno, "removed FIFO %s: removing %s again", fe->path,
				   name);
	if (r < 0)
		return r;
	pr_debug("removed FIFO %s made again as %s, removed (mode 0%o)\n", fe->path, name,
		 (unsigned)mode);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int obj_create(struct fd_open_ctx *ctx, struct pipe_obj *o, const FileEntry *fe,
		      struct ckpt_error *e)
{
	struct stat st;
	int n = 0, fds[2], r;

	if (is_pipe_type(fe->type)) {
		if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
			return ckpt_err_errno(e, -errno, "%s: pipe2", fe->path);
		o->rd = fds[0];
		o->wr = fds[1];
		return set_size(o->rd, fe, e);
	}
	if (is_deleted(fe)) {
		o->deleted = true;
		r = fifo_make_deleted(fe, &o->rd, e);
		if (r < 0)
			return r;
		return set_size(o->rd, fe, e);
	}
	r = fifo_prepare(ctx, fe, e);
	if (r < 0)
		return r;
	/* O_RDWR never blocks, and keeps both sides open while the others are opened. */
	o->rd = open(fe->path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (o->rd < 0)
		return ckpt_err_errno(e, -errno, "cannot open FIFO %s", fe->path);
	if (fstat(o->rd, &st) < 0 || !S_ISFIFO(st.st_mode))
		return ckpt_err(e, -EINVAL, "%s is not a FIFO any more", fe->path);
	if (ioctl(o->rd, FIONREAD, &n) == 0 && n > 0)
		return ckpt_err(e, -EBUSY,
				"FIFO %s already holds %d bytes: another process has it open; "
				"restoring its saved data would duplicate them",
				fe->path, n);
	return set_size(o->rd, fe, e);
}

/* The bytes saved at dump, through a write description of our own (non-blocking). */
static int obj_write_data(struct pipe_obj *o, const FileEntry *fe, struct ckpt_error *e)
{
	const ProtobufCBinaryData *d = &fe->pipe->data;
	_cleanup_close_ int own = -1;
	char name[PATH_MAX + 16], path[64];
	ssize_t n;
	int wfd = o->rd;

	if (o->data_done)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: %s: data saved twice", fe->id,
				obj_name(fe, name, sizeof(name)));
	if (is_pipe_type(fe->type)) {
		/* o->wr may already be an entry's description with its own flags */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", o->rd);
		own = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (own < 0)
			return ckpt_err_errno(e, -errno, "%s: opening a write end", fe->path);
		wfd = own;
	}
	n = write(wfd, d->data, d->len);
	if (n < 0)
		return ckpt_err_errno(e, -errno, "%s: writing its %zu saved bytes",
				      obj_name(fe, name, sizeof(name)), d->len);
	if ((size_t)n != d->len)
		return ckpt_err(e, -ENOSPC, "%s: only %zd of its %zu saved bytes fit in %u",
				obj_name(fe, name, sizeof(name)), n, d->len, fe->pipe->size);
	o->data_done = true;
	return 0;
}

/* This entry's open file description, with its access mode and flags. */
static int obj_describe(struct pipe_obj *o, const FileEntry *fe, int *ret_fd, struct ckpt_error *e)
{
	static const int acc[] = {[PIPE_END__PIPE_READ] = O_RDONLY,
				  [PIPE_END__PIPE_WRITE] = O_WRONLY,
				  [PIPE_END__PIPE_RDWR] = O_RDWR};
	PipeEnd end = fe->pipe->end;
	char name[PATH_MAX + 16], path[64];
	_cleanup_close_ int fd = -1;
	int fl;

	if (is_pipe_type(fe->type) && end == PIPE_END__PIPE_READ && !o->rd_given) {
		fd = fcntl(o->rd, F_DUPFD_CLOEXEC, 0);
		o->rd_given = true;
	} else if (is_pipe_type(fe->type) && end == PIPE_END__PIPE_WRITE && !o->wr_given) {
		fd = fcntl(o->wr, F_DUPFD_CLOEXEC, 0);
		o->wr_given = true;
	} else if (is_pipe_type(fe->type) || o->deleted) {
		/* another description of the same pipe; a removed FIFO's, through our helper */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", o->rd);
		fd = open(path, acc[end] | O_NONBLOCK | O_CLOEXEC);
	} else {
		/* never blocks: our O_RDWR helper is a reader and a writer */
		fd = open(fe->path, acc[end] | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	}
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "%s: opening its %s",
				      obj_name(fe, name, sizeof(name)), end_name(end));
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, (fl & ~O_NONBLOCK) | (int)(fe->flags & O_NONBLOCK)) < 0)
		return ckpt_err_errno(e, -errno, "%s: setting flags 0%o of its %s",
				      obj_name(fe, name, sizeof(name)), fe->flags, end_name(end));
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int open_common(struct fd_open_ctx *ctx, const FileEntry *fe, FileType type, int *ret_fd,
		       struct ckpt_error *e)
{
	struct pipe_obj *o;
	int r;

	r = check_pipe_entry(fe, type, e);
	if (r < 0)
		return r;
	for (o = ctx->priv; o; o = o->next)
		if (o->type == fe->type && o->ino == fe->pipe->pipe_id && o->dev == fe->pipe->dev)
			break;
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o)
			return ckpt_err(e, -ENOMEM, "out of memory");
		o->type = fe->type;
		o->ino = fe->pipe->pipe_id;
		o->dev = fe->pipe->dev;
		o->rd = o->wr = -1;
		o->next = ctx->priv;
		ctx->priv = o; /* freed by open_done, whatever happens next */
		r = obj_create(ctx, o, fe, e);
		if (r < 0)
			return r;
	}
	if (fe->pipe->has_data && fe->pipe->data.len) {
		r = obj_write_data(o, fe, e);
		if (r < 0)
			return r;
	}
	return obj_describe(o, fe, ret_fd, e);
}

static int pipe_open_shared(struct fd_open_ctx *ctx, const FileEntry *fe, int *ret_fd,
			    struct ckpt_error *e)
{
	int r = ckpt_fault_inject("pipe-open", e);

	return r < 0 ? r : open_common(ctx, fe, FILE_TYPE__FILE_PIPE, ret_fd, e);
}

static int fifo_open_shared(struct fd_open_ctx *ctx, const FileEntry *fe, int *ret_fd,
			    struct ckpt_error *e)
{
	int r = ckpt_fault_inject("fifo-open", e);

	return r < 0 ? r : open_common(ctx, fe, FILE_TYPE__FILE_FIFO, ret_fd, e);
}

const struct fd_kind fd_kind_pipe = {
    .name = "pipe",
    .in_flight = true,
    .matches = pipe_matches,
    .describe = pipe_describe,
    .entry_field = offsetof(FileEntry, pipe),
    .path = FD_PATH_PROC_LINK,
    .dump = pipe_dump,
    .verify = pipe_verify,
    .dump_done = pipe_dump_done,
    .open_shared = pipe_open_shared,
    .open_done = pipe_open_done,
};

const struct fd_kind fd_kind_fifo = {
    .name = "FIFO",
    .in_flight = true,
    .matches = fifo_matches,
    .describe = fifo_describe,
    .entry_field = offsetof(FileEntry, pipe),
    .dump = fifo_dump,
    .verify = fifo_verify,
    .dump_done = fifo_dump_done,
    .open_shared = fifo_open_shared,
    .open_done = pipe_open_done,
};
