/* SPDX-License-Identifier: MIT */
/*
 * Open file descriptors (fds-PID.img) and the table of open file
 * descriptions and mapped files they refer to (files.img). Each fd is
 * probed (lib/kinds: link, our own copy via pidfd_getfd, stat, fdinfo) and
 * handed to the kind that matches it; an fd no kind handles fails the dump
 * naming the pid, the fd and what it is. Two fds share one FileEntry when
 * they share one open file description (after fork or dup): kcmp(KCMP_FILE)
 * decides, asked only for fds whose device and inode already match.
 */
#define LOG_PREFIX "dump: "

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "dump_internal.h"
#include "kinds/fd_kind.h"
#include "kread.h"
#include "log.h"
#include "proc.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#define KCMP_FILE 0
#define KCMP_FILES 2

#define KCMP_FS 3

static int kcmp_same(pid_t a, pid_t b, int type, const char *what, struct ckpt_error *e)
{
	long r = syscall(SYS_kcmp, a, b, type, 0, 0);

	if (r < 0)
		return ckpt_err_errno(e, -errno, "pid %d: comparing its %s with pid %d's (kcmp)", a,
				      what, b);
	return r == 0;
}

/*
 * A thread made with CLONE_THREAD shares its process's fd table and
 * fs_struct unless it left them with unshare(): the restorer makes every
 * thread sharing both (restorer/threads.c), so a thread with its own is
 * refused.
 */
static int check_threads_tables(const struct dump_task *t, struct ckpt_error *e)
{
	for (size_t k = 0; k < t->nthreads; k++) {
		int files = kcmp_same(t->pid, t->threads[k], KCMP_FILES, "fd table", e);
		int fs =
		    files < 0 ? files : kcmp_same(t->pid, t->threads[k], KCMP_FS, "fs_struct", e);

		if (fs < 0)
			return fs;
		if (!files || !fs)
			return ckpt_err(e, -EOPNOTSUPP,
					"pid %d: thread %d has %s of its own (unshare(%s)); not "
					"supported: it would be restored sharing its process's",
					t->pid, t->threads[k],
					!files ? "an fd table"
					       : "a cwd, root and umask (fs_struct)",
					!files ? "CLONE_FILES" : "CLONE_FS");
	}
	return 0;
}

/*
 * Processes that share one fd table (clone(CLONE_FILES) without
 * CLONE_THREAD), or one cwd, root and umask (CLONE_FS), are restored
 * sharing them when each shares with its parent: the restorer makes the
 * child with clone3(CLONE_FILES / CLONE_FS) from its parent (a chain of
 * them, or several children of one parent, share one). Shared otherwise
 * (between siblings whose parent has its own, or with a process that is
 * not the parent, after unshare or a re-parenting): refused, naming both
 * pids.
 */
static int share_with_parent(struct dump_ctx *c, struct dump_task *t, int type, pid_t with,
			     pid_t *ret, struct ckpt_error *e)
{
	const struct dump_task *p = dump_find_task(c, t->ppid);
	const char *what = type == KCMP_FILES ? "file descriptor table" : "cwd, root and umask";
	int r;

	*ret = 0;
	if (!with)
		return 0;
	/* tasks come parents first: the parent is among the earlier ones */
	r = p ? kcmp_same(p->pid, t->pid, type, what, e) : 0;
	if (r < 0)
		return r;
	if (!r)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d shares its %s with pid %d, but not with its parent %d "
				"(clone with %s, then the parent left it or died); not "
				"supported: only what a parent shares with its children can be "
				"made again",
				t->pid, what, with, t->ppid,
				type == KCMP_FILES ? "CLONE_FILES" : "CLONE_FS");
	*ret = p->pid;
	return 0;
}

/*
 * The first task of each fd table (or fs_struct) seen so far, sorted in
 * kcmp's order of the kernel objects (kcmp gives 0 the same, 1 less, 2
 * greater): finding a task's table among them is a binary search, so a
 * tree of 10,000 processes costs 10,000 * log2 kcmp calls, not 50 million.
 */
struct table_set {
	size_t *first; /* positions in c->tasks */
	size_t n;
};

/* *ret_with: the first earlier task sharing task j's object of this type, or 0. */
static int table_set_find_or_add(struct dump_ctx *c, struct table_set *s, size_t j, int type,
				 const char *what, pid_t *ret_with, struct ckpt_error *e)
{
	size_t lo = 0, hi = s->n;
	pid_t pid = c->tasks[j].pid;

	*ret_with = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		pid_t other = c->tasks[s->first[mid]].pid;
		long r = syscall(SYS_kcmp, pid, other, type, 0, 0);

		if (r < 0 || r > 2)
			return ckpt_err_errno(e, r < 0 ? -errno : -EIO,
					      "pid %d: comparing its %s with pid %d's (kcmp)", pid,
					      what, other);
		if (r == 0) {
			*ret_with = other;
			return 0;
		}
		if (r == 1)
			hi = mid;
		else
			lo = mid + 1;
	}
	memmove(&s->first[lo + 1], &s->first[lo], (s->n - lo) * sizeof(*s->first));
	s->first[lo] = j;
	s->n++;
	return 0;
}

int dump_check_fd_tables(struct dump_ctx *c, struct ckpt_error *e)
{
	_cleanup_free_ size_t *fs_first = calloc(c->ntasks + 1, sizeof(size_t));
	_cleanup_free_ size_t *files_first = calloc(c->ntasks + 1, sizeof(size_t));
	struct table_set fs_set = {.first = fs_first}, files_set = {.first = files_first};

	if (!fs_first || !files_first)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < c->ntasks; i++) {
		int r = check_threads_tables(&c->tasks[i], e);

		if (r < 0)
			return r;
	}
	for (size_t j = 0; j < c->ntasks; j++) {
		struct dump_task *t = &c->tasks[j];
		pid_t files_with = 0, fs_with = 0;
		int r;

		r = table_set_find_or_add(c, &fs_set, j, KCMP_FS, "fs_struct", &fs_with, e);
		if (r >= 0)
			r = table_set_find_or_add(c, &files_set, j, KCMP_FILES, "fd table",
						  &files_with, e);
		if (r >= 0)
			r = share_with_parent(c, t, KCMP_FILES, files_with, &t->files_of, e);
		if (r >= 0)
			r = share_with_parent(c, t, KCMP_FS, fs_with, &t->fs_of, e);
		if (r < 0)
			return r;
		if (t->files_of)
			t->files_shared = dump_find_task(c, t->files_of)->files_shared = true;
	}
	return 0;
}

struct dump_file *dump_file_new(struct dump_ctx *c, struct ckpt_error *e)
{
	struct dump_file *f;

	if (c->nfiles == c->files_cap) {
		size_t cap = c->files_cap ? c->files_cap * 2 : 64;
		struct dump_file *n = realloc(c->files, cap * sizeof(*n));

		if (!n) {
			ckpt_err(e, -ENOMEM, "out of memory for the file table");
			return NULL;
		}
		c->files = n;
		c->files_cap = cap;
	}
	f = &c->files[c->nfiles];
	memset(f, 0, sizeof(*f));
	f->fe = calloc(1, sizeof(*f->fe));
	if (!f->fe) {
		ckpt_err(e, -ENOMEM, "out of memory for the file table");
		return NULL;
	}
	file_entry__init(f->fe);
	/* ids are 1-based positions in files.img */
	f->fe->id = (uint32_t)c->nfiles + 1;
	c->nfiles++;
	return f;
}

int dump_file_add_mapping(struct dump_ctx *c, const char *src, const struct stat *st,
			  const char *path, uint32_t *ret_id, struct ckpt_error *e)
{
	struct dump_file *f;

	for (size_t i = 0; i < c->nfiles; i++) {
		f = &c->files[i];
		/* not a shared memory object of the same file (dump_shmem.c: a
		 * MAP_SHARED writable area of it): a private area maps the file
		 * itself (it failed the dump's own check when the shared area lay
		 * lower and was seen first) */
		if (f->mapping && f->dev == st->st_dev && f->ino == st->st_ino &&
		    f->fe->type != FILE_TYPE__FILE_SHMEM) {
			*ret_id = f->fe->id;
			return 0;
		}
	}
	f = dump_file_new(c, e);
	if (!f)
		return -ENOMEM;
	f->mapping = true;
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->pid = 0;
	f->fd = -1;
	f->fe->type = FILE_TYPE__FILE_REG;
	f->fe->has_mapping_only = true;
	f->fe->mapping_only = true;
	f->fe->has_mode = true;
	f->fe->mode = st->st_mode;
	f->fe->path = dump_strdup(path, e);
	if (!f->fe->path)
		return -ENOMEM;
	f->fe->ident = calloc(1, sizeof(*f->fe->ident));
	if (!f->fe->ident)
		return ckpt_err(e, -ENOMEM, "out of memory");
	file_ident_of_stat(st, f->fe->ident);
	/* the content sum, which lets a restore accept a library touched but
	 * unchanged, is taken once the tree's watches are known */
	if (!c->opts->pre_dump && !(f->sum_src = strdup(src)))
		return ckpt_err(e, -ENOMEM, "out of memory");
	*ret_id = f->fe->id;
	return 0;
}

/*
 * The order of by_desc: (dev, ino), then an order of the open file
 * descriptions: their addresses (DESC_BY_ADDRESS), else the kernel's
 * (kcmp KCMP_FILE: 0 the same, 1 less, 2 greater; a consistent order of
 * the objects, so a sorted array can be searched).
 * Returns <0 (error), or 0/1/2 as kcmp.
 */
static int desc_cmp(const struct dump_ctx *c, const struct fd_probe *p, const struct dump_file *f,
		    struct ckpt_error *e)
{
	long r;

	if (p->st.st_dev != f->dev)
		return p->st.st_dev < f->dev ? 1 : 2;
	if (p->st.st_ino != f->ino)
		return p->st.st_ino < f->ino ? 1 : 2;
	if (c->desc_order == DESC_BY_ADDRESS) {
		if (!p->file_addr || !f->addr)
			return ckpt_err(e, -EIO,
					"pid %d: fd %d: the kernel reader did not show its open "
					"file description",
					p->pid, p->fd);
		return p->file_addr == f->addr ? 0 : p->file_addr < f->addr ? 1 : 2;
	}
	r = syscall(SYS_kcmp, p->pid, f->pid, KCMP_FILE, p->fd, f->fd);
	if (r < 0)
		return ckpt_err_errno(e, -errno, "pid %d: fd %d: comparing with pid %d fd %d (kcmp)",
				      p->pid, p->fd, f->pid, f->fd);
	if (r > 2)
		return ckpt_err(e, -EIO, "pid %d: fd %d: kcmp gives no order with pid %d fd %d",
				p->pid, p->fd, f->pid, f->fd);
	return (int)r;
}

/*
 * The entry of an open file description already seen in the tree (its id,
 * else 0), and where in by_desc it is or would go: O(log n) comparisons
 * (without the kernel reader, kcmp calls), so 19,000 descriptions of one
 * file cost seconds less than comparing each with all.
 */
static int find_shared_at(struct dump_ctx *c, const struct fd_probe *p, uint32_t *ret_id,
			  size_t *ret_pos, struct ckpt_error *e)
{
	size_t lo = 0, hi = c->nby_desc;

	*ret_id = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct dump_file *f = &c->files[c->by_desc[mid]];
		int r = desc_cmp(c, p, f, e);

		if (r < 0)
			return r;
		if (r == 0) {
			*ret_id = f->fe->id;
			*ret_pos = mid;
			return 0;
		}
		if (r == 1)
			hi = mid;
		else
			lo = mid + 1;
	}
	*ret_pos = lo;
	return 0;
}

static int find_shared(struct dump_ctx *c, const struct fd_probe *p, uint32_t *ret_id,
		       struct ckpt_error *e)
{
	size_t pos;

	return find_shared_at(c, p, ret_id, &pos, e);
}

/* Files[idx] (an fd entry) goes at pos of by_desc. */
static int by_desc_insert(struct dump_ctx *c, size_t pos, size_t idx, struct ckpt_error *e)
{
	if (c->nby_desc == c->by_desc_cap) {
		size_t cap = c->by_desc_cap ? c->by_desc_cap * 2 : 64;
		size_t *n = realloc(c->by_desc, cap * sizeof(*n));

		if (!n)
			return ckpt_err(e, -ENOMEM, "out of memory for the file table");
		c->by_desc = n;
		c->by_desc_cap = cap;
	}
	memmove(&c->by_desc[pos + 1], &c->by_desc[pos], (c->nby_desc - pos) * sizeof(size_t));
	c->by_desc[pos] = idx;
	c->nby_desc++;
	return 0;
}

static int fd_context(struct ckpt_error *e, pid_t pid, int fd)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "pid %d: fd %d", pid, fd);
	if (!strncmp(e->msg, prefix, strlen(prefix)))
		return e->code;
	return ckpt_err_wrap(e, "%s", prefix);
}

static const char *owner_type_name(uint32_t type)
{
	return type == F_OWNER_TID ? "thread" : type == F_OWNER_PGRP ? "process group" : "process";
}

/*
 * Signal-driven I/O: O_ASYNC, the owner (F_SETOWN, F_SETOWN_EX) and the
 * signal (F_SETSIG) of the open file description, read on our own copy of
 * the fd (the same description: fcntl reads what the task's fd has). The
 * owner is checked against the tree once every task is dumped
 * (check_sigio_owners).
 */
static int dump_sigio(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	struct f_owner_ex owner = {0};
	bool async = (p->info.flags & O_ASYNC) != 0;
	int sig;

	/* (an O_PATH fd has no owner nor signal: fcntl says EBADF) */
	if (p->info.flags & O_PATH)
		return 0;
	if (p->local_fd < 0) {
		if (async)
			return ckpt_err(e, -EOPNOTSUPP,
					"pid %d: fd %d: signal-driven I/O (O_ASYNC) is set, but "
					"without a copy of the fd (pidfd_getfd) its owner and "
					"signal cannot be read",
					p->pid, p->fd);
		return 0;
	}
	if (fcntl(p->local_fd, F_GETOWN_EX, &owner) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: fd %d: F_GETOWN_EX", p->pid, p->fd);
	sig = fcntl(p->local_fd, F_GETSIG);
	if (sig < 0)
		return ckpt_err_errno(e, -errno, "pid %d: fd %d: F_GETSIG", p->pid, p->fd);
	/* A dnotify watch (fcntl F_NOTIFY) belongs to the description and the
	 * fd table; no interface shows it, nor sets one for another process,
	 * and a restored fd would silently have none. Setting one makes the
	 * caller the description's owner: an owned directory is refused. */
	if (S_ISDIR(p->st.st_mode) && owner.pid)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: fd %d: a directory with an owner (%s %d), as a dnotify "
				"watch (fcntl F_NOTIFY) leaves it: a dnotify watch cannot be "
				"read or set from outside the program, and would be lost",
				p->pid, p->fd, owner_type_name((uint32_t)owner.type), owner.pid);
	if (!async && !owner.pid && !sig)
		return 0;
	fe->sigio = calloc(1, sizeof(*fe->sigio));
	if (!fe->sigio)
		return ckpt_err(e, -ENOMEM, "out of memory");
	file_sigio__init(fe->sigio);
	fe->sigio->has_async = fe->sigio->async = async;
	if (owner.pid) {
		fe->sigio->has_owner_type = fe->sigio->has_owner = true;
		fe->sigio->owner_type = (uint32_t)owner.type;
		fe->sigio->owner = owner.pid;
	}
	if (sig) {
		fe->sigio->has_sig = true;
		fe->sigio->sig = (uint32_t)sig;
	}
	return 0;
}

/* A tid of the tree (the main thread's or another's). */
static bool tree_has_tid(struct dump_ctx *c, pid_t tid)
{
	for (size_t i = 0; i < c->ntasks; i++) {
		if (c->tasks[i].pid == tid)
			return true;
		for (size_t k = 0; k < c->tasks[i].nthreads; k++)
			if (c->tasks[i].threads[k] == tid)
				return true;
	}
	return false;
}

/*
 * The owner of signal-driven I/O comes back only if it is a thread,
 * process or process group of the tree, restored with the same id (a
 * group led by a task of the tree). With F_SETSIG the signal carries the
 * fd number O_ASYNC was set through (si_fd), which no interface shows: it
 * is restored through the description's fd number, so a description held
 * under several numbers is refused.
 */
static int check_sigio_owners(struct dump_ctx *c, struct ckpt_error *e)
{
	for (size_t i = 0; i < c->nfiles; i++) {
		const struct dump_file *f = &c->files[i];
		const FileSigio *s = f->fe->sigio;
		const struct dump_task *leader;
		bool ok;

		if (f->mapping || !s)
			continue;
		if (s->has_owner && s->owner) {
			if (s->owner_type == F_OWNER_PGRP) {
				leader = dump_find_task(c, s->owner);
				ok = leader && leader->pgid == s->owner;
			} else {
				ok = s->owner > 0 && tree_has_tid(c, s->owner);
			}
			if (!ok)
				return ckpt_err(
				    e, -EOPNOTSUPP,
				    "pid %d: fd %d: its SIGIO owner (F_SETOWN %s %d) is "
				    "not a %s of the tree (outside it, or gone): signals "
				    "for it could not reach it after restore",
				    f->pid, f->fd, owner_type_name(s->owner_type), s->owner,
				    owner_type_name(s->owner_type));
		}
		if (!(s->async && s->sig))
			continue;
		for (size_t ti = 0; ti < c->ntasks; ti++) {
			const struct dump_task *t = &c->tasks[ti];

			for (size_t k = 0; k < t->nfds; k++)
				if (t->fds[k]->id == f->fe->id && (int)t->fds[k]->fd != f->fd)
					return ckpt_err(
					    e, -EOPNOTSUPP,
					    "pid %d: fd %d: signal-driven I/O with F_SETSIG %u on "
					    "a "
					    "description also held as pid %d fd %u: the fd number "
					    "its signals carry (si_fd) is not known; not supported",
					    f->pid, f->fd, s->sig, t->pid, t->fds[k]->fd);
		}
	}
	return 0;
}

/* The engine's side of struct fd_inflight_sink: files in flight go to c->inflight. */
struct inflight_sink {
	struct fd_inflight_sink base;
	struct dump_ctx *c;
	pid_t pid; /* the task holding the socket whose queue is read, and its fd */
	int sockfd;
};

static int inflight_add(struct fd_inflight_sink *s, int fd, uint32_t *ret_id,
			struct ckpt_error *e)
{
	struct inflight_sink *is = (struct inflight_sink *)s;
	struct dump_ctx *c = is->c;

	if (c->ninflight == c->inflight_cap) {
		size_t cap = c->inflight_cap ? c->inflight_cap * 2 : 16;
		struct dump_inflight *n = realloc(c->inflight, cap * sizeof(*n));

		if (!n) {
			close(fd);
			return ckpt_err(e, -ENOMEM, "out of memory");
		}
		c->inflight = n;
		c->inflight_cap = cap;
	}
	*ret_id = 0;
	c->inflight[c->ninflight++] =
	    (struct dump_inflight){.fd = fd, .slot = ret_id, .pid = is->pid, .sockfd = is->sockfd};
	return 0;
}

/*
 * The entry of the open file description p (a task's fd, or a file in
 * flight: p->in_flight, holder given), made by its kind unless kcmp finds it
 * already dumped. *ret_new: the entry made, NULL if it was found.
 */
static int dump_description(struct dump_ctx *c, const struct fd_kind *kind, struct fd_probe *p,
			    pid_t holder_pid, int holder_fd, uint32_t *ret_id, FileEntry **ret_new,
			    struct ckpt_error *e)
{
	struct inflight_sink sink = {
	    .base.add = inflight_add, .c = c, .pid = p->in_flight ? holder_pid : p->pid,
	    .sockfd = p->in_flight ? holder_fd : p->fd};
	struct dump_file *f;
	FileEntry *fe;
	size_t pos = 0;
	uint32_t id = 0;
	int r;

	*ret_new = NULL;
	r = find_shared_at(c, p, &id, &pos, e);
	if (r < 0 || id) {
		*ret_id = id;
		return r;
	}
	f = dump_file_new(c, e);
	if (!f)
		return -ENOMEM;
	r = by_desc_insert(c, pos, (size_t)(f - c->files), e);
	if (r < 0)
		return r;
	f->dev = p->st.st_dev;
	f->ino = p->st.st_ino;
	f->pid = p->pid;
	f->fd = p->fd;
	f->addr = p->file_addr;
	if (p->in_flight) {
		f->holder_pid = holder_pid;
		f->holder_fd = holder_fd;
	}
	fe = f->fe;
	id = fe->id;
	p->inflight = &sink.base;
	p->kread = &c->kread;
	/* the kind may add files in flight: c->files may move, fe does not */
	r = kind->dump(p, fe, e);
	p->inflight = NULL;
	p->kread = NULL;
	/* dump may have reset the entry: the id is ours */
	fe->id = id;
	*ret_id = id;
	*ret_new = fe;
	if (r >= 0)
		r = dump_sigio(p, fe, e);
	return r;
}

/*
 * The open file descriptions of thread tid's fds and their addresses, for
 * desc_cmp. The first call decides the dump's order: by address if the
 * kernel reader can list them, else by kcmp (and then nothing is listed).
 */
static int file_addrs(struct dump_ctx *c, pid_t tid, struct kread_file **ret, size_t *ret_n,
		      struct ckpt_error *e)
{
	struct ckpt_error why = {0};

	if (c->desc_order == DESC_BY_KCMP)
		return 0;
	if (kread_task_files(&c->kread, tid, ret, ret_n, &why) == 0) {
		c->desc_order = DESC_BY_ADDRESS;
		return 0;
	}
	if (c->desc_order == DESC_BY_ADDRESS) {
		*e = why;
		return e->code;
	}
	pr_debug("open file descriptions compared with kcmp (%s)", why.msg);
	c->desc_order = DESC_BY_KCMP;
	return 0;
}

/* The address of fd's description in files (sorted by fd), 0 if not there. */
static uint64_t file_addr(const struct kread_file *files, size_t n, int fd)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (files[mid].fd == fd)
			return files[mid].file;
		if (files[mid].fd < fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* fd_probe.remote: one syscall in the task's main thread, a session of its own. */
static int probe_remote(const struct fd_probe *p, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
			uint64_t a4, long *ret, struct ckpt_error *e)
{
	struct ckpt_error tmp = {0};
	struct rsys rs = {0};
	int r, r2;

	r = rsys_init(&rs, p->pid, 0, e);
	if (r < 0)
		return r;
	r = rsys_call(&rs, nr, a1, a2, a3, a4, 0, 0, ret, e);
	r2 = rsys_fini(&rs, r < 0 ? &tmp : e);
	return r < 0 ? r : r2;
}

static int dump_one_fd(struct dump_ctx *c, struct dump_task *t, int fd, uint64_t addr,
		       FdEntry **ret, struct ckpt_error *e)
{
	struct fd_probe p;
	const struct fd_kind *kind;
	FileEntry *new_fe = NULL;
	uint32_t id = 0;
	FdEntry *fde;
	int r;

	r = fd_probe_fill(t->pidfd, t->pid, fd, &p, e);
	if (r < 0)
		return fd_context(e, t->pid, fd);
	p.remote = probe_remote;
	p.file_addr = addr;
	kind = fd_kind_find(&p);
	if (!kind) {
		char what[PATH_MAX + 64];

		fd_probe_describe(&p, what, sizeof(what));
		fd_probe_release(&p);
		return ckpt_err(e, -EOPNOTSUPP, "pid %d: fd %d: %s is not supported yet", t->pid,
				fd, what);
	}
	r = dump_description(c, kind, &p, 0, -1, &id, &new_fe, e);
	if (r < 0) {
		fd_probe_release(&p);
		return fd_context(e, t->pid, fd);
	}
	fde = calloc(1, sizeof(*fde));
	if (!fde) {
		fd_probe_release(&p);
		return ckpt_err(e, -ENOMEM, "out of memory");
	}
	fd_entry__init(fde);
	fde->fd = fd;
	/* every kind's objects are in files.img (FdKind has no other table yet) */
	fde->kind = FD_KIND__FD_FILE;
	fde->id = id;
	fde->has_cloexec = true;
	fde->cloexec = (p.info.flags & O_CLOEXEC) != 0;
	/* the locks as the probe read them, the tree frozen */
	r = dump_fd_locks(t, fd, p.fdinfo, fde, new_fe, e);
	fd_probe_release(&p);
	if (r < 0) {
		fd_entry__free_unpacked(fde, NULL);
		return r;
	}
	*ret = fde;
	return 0;
}

/* A description in flight only (no task holds it) must hold no lock: nobody could take it again. */
static int check_inflight_locks(struct dump_ctx *c, const struct fd_probe *p, const char *what,
				struct ckpt_error *e)
{
	_cleanup_(proc_lock_list_free) struct proc_lock_list locks = {0};
	int r = proc_fdinfo_locks(c->self, p->fd, p->fdinfo, &locks, e);

	if (r < 0)
		return r;
	if (locks.n)
		return ckpt_err(e, -EOPNOTSUPP, "%s holds a file lock (%s); not supported", what,
				locks.v[0].what);
	return 0;
}

/* One file in flight: our copy probed, dumped or found among the tree's. */
static int dump_one_inflight(struct dump_ctx *c, size_t i, struct ckpt_error *e)
{
	struct dump_inflight in = c->inflight[i];
	char what[PATH_MAX + 64];
	const struct fd_kind *kind;
	FileEntry *new_fe = NULL;
	struct fd_probe p;
	uint32_t id = 0;
	int r;

	if (c->self_pidfd < 0) {
		c->self_pidfd = (int)syscall(SYS_pidfd_open, c->self, 0);
		if (c->self_pidfd < 0)
			return ckpt_err_errno(e, -errno, "pidfd_open of our own process");
	}
	r = fd_probe_fill(c->self_pidfd, c->self, in.fd, &p, e);
	if (r < 0)
		return r;
	p.in_flight = true;
	if (c->desc_order == DESC_BY_ADDRESS) {
		/* our copy: its address among our own fds */
		_cleanup_free_ struct kread_file *files = NULL;
		size_t nfiles = 0;

		r = kread_task_files(&c->kread, (pid_t)syscall(SYS_gettid), &files, &nfiles, e);
		if (r < 0) {
			fd_probe_release(&p);
			return r;
		}
		p.file_addr = file_addr(files, nfiles, in.fd);
	}
	fd_probe_describe(&p, what, sizeof(what));
	kind = fd_kind_find(&p);
	/*
	 * A description a task holds too is that task's entry, made at restore
	 * like any (but a kind each task makes for itself, too late for the
	 * queues); one only in flight needs a kind that may travel so.
	 */
	r = find_shared(c, &p, &id, e);
	if (r >= 0 && (!kind || (id ? kind->open_in_task != NULL : !kind->in_flight)))
		r = ckpt_err(e, -EOPNOTSUPP, "a file in flight (SCM_RIGHTS) in its queue is %s: %s",
			     what,
			     !kind  ? "not supported yet"
			     : id   ? "not supported in flight"
				    : "not supported in flight when no task holds it too");
	if (r >= 0 && !id)
		r = dump_description(c, kind, &p, in.pid, in.sockfd, &id, &new_fe, e);
	if (r >= 0 && new_fe)
		r = check_inflight_locks(c, &p, what, e);
	fd_probe_release(&p);
	if (r < 0 && strstr(e->msg, "in flight"))
		return r;
	if (r < 0)
		return ckpt_err_wrap(e, "%s in flight (SCM_RIGHTS) in its queue", what);
	/* dump_description may have moved c->inflight */
	*c->inflight[i].slot = id;
	if (!new_fe) {
		/* the description of an fd of the tree: our copy is not needed */
		close(c->inflight[i].fd);
	}
	/* else our copy stays open (the entry's fd) until the ctx goes: kcmp compares with it */
	c->inflight[i].fd = -1;
	pr_debug("pid %d fd %d: %s in flight: file %u%s", in.pid, in.sockfd, what, id,
		 new_fe ? "" : " (open in the tree too)");
	return 0;
}

int dump_inflight_files(struct dump_ctx *c, struct ckpt_error *e)
{
	/* dumping one may find more (a unix socket in flight with a queue of its own) */
	for (size_t i = 0; i < c->ninflight; i++) {
		pid_t pid = c->inflight[i].pid;
		int sockfd = c->inflight[i].sockfd;
		int r = dump_one_inflight(c, i, e);

		if (r < 0) {
			char prefix[64];

			snprintf(prefix, sizeof(prefix), "pid %d: fd %d", pid, sockfd);
			if (!strncmp(e->msg, prefix, strlen(prefix)))
				return r;
			return ckpt_err_wrap(e, "pid %d: fd %d", pid, sockfd);
		}
	}
	return 0;
}

void dump_inflight_free(struct dump_ctx *c)
{
	for (size_t i = 0; i < c->ninflight; i++)
		if (c->inflight[i].fd >= 0)
			close(c->inflight[i].fd);
	free(c->inflight);
	c->inflight = NULL;
	c->ninflight = 0;
	for (size_t i = 0; i < c->nfiles; i++)
		if (c->files[i].holder_pid && c->files[i].fd >= 0) {
			close(c->files[i].fd);
			c->files[i].fd = -1;
		}
	if (c->self_pidfd >= 0)
		close(c->self_pidfd);
	c->self_pidfd = -1;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The fd numbers of a (frozen) task, ascending. */
static int list_fds(pid_t pid, int **ret, size_t *ret_n, struct ckpt_error *e)
{
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_free_ int *fds = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return ckpt_err_errno(e, -errno, "pid %d: listing %s", pid, path);
	while ((de = readdir(d))) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);

		if (de->d_name[0] == '.' || *end || fd < 0 || fd > INT32_MAX)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			int *g = realloc(fds, nc * sizeof(*g));

			if (!g)
				return ckpt_err(e, -ENOMEM, "out of memory");
			fds = g;
			cap = nc;
		}
		fds[n++] = (int)fd;
	}
	if (n)
		qsort(fds, n, sizeof(*fds), cmp_int);
	*ret = TAKE_PTR(fds);
	*ret_n = n;
	return 0;
}

int dump_task_fds(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e)
{
	_cleanup_free_ struct kread_file *files = NULL;
	_cleanup_free_ int *fds = NULL;
	size_t n = 0, nfiles = 0;
	int r;

	if (t->pidfd < 0) {
		t->pidfd = (int)syscall(SYS_pidfd_open, t->pid, 0);
		if (t->pidfd < 0)
			return ckpt_err_errno(e, -errno, "pid %d: pidfd_open", t->pid);
	}
	r = list_fds(t->pid, &fds, &n, e);
	if (r >= 0)
		r = file_addrs(c, t->pid, &files, &nfiles, e);
	if (r < 0)
		return r;
	t->fds = calloc(n ? n : 1, sizeof(*t->fds));
	if (!t->fds)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		uint64_t addr = 0;

		if (c->desc_order == DESC_BY_ADDRESS)
			addr = file_addr(files, nfiles, fds[i]);
		r = dump_one_fd(c, t, fds[i], addr, &t->fds[t->nfds], e);
		if (r < 0)
			return r;
		t->nfds++;
	}
	return 0;
}

/* The view of every fd's entry the kinds' dump_done and dump_undo get. */
static int fill_view(struct dump_ctx *c, struct fd_dump_view *v)
{
	struct fd_dump_item *items = calloc(c->nfiles + 1, sizeof(*items));
	pid_t *pids = calloc(c->ntasks + 1, sizeof(*pids));

	*v = (struct fd_dump_view){.items = items,
				   .pids = pids,
				   .self = c->self,
				   .external = c->opts->external,
				   .n_external = c->opts->n_external,
				   .tcp_close = c->opts->tcp_close};
	if (!items || !pids) {
		free(items);
		free(pids);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c->nfiles; i++) {
		const struct dump_file *f = &c->files[i];

		if (f->mapping || f->fd < 0)
			continue;
		/* a file in flight: named by the task and socket whose queue holds it */
		items[v->n++] = (struct fd_dump_item){f->fe, f->holder_pid ? f->holder_pid : f->pid,
						      f->holder_pid ? f->holder_fd : f->fd};
	}
	for (size_t i = 0; i < c->ntasks; i++)
		pids[v->npids++] = c->tasks[i].pid;
	return 0;
}

/*
 * Objects each task makes for itself at restore (open_in_task: a pidfd)
 * cannot be one description shared by two tasks (inherited across fork).
 */
/* The first process of the fd table t uses (t itself unless it shares its parent's). */
static const struct dump_task *table_top(struct dump_ctx *c, const struct dump_task *t)
{
	while (t->files_of) {
		const struct dump_task *p = dump_find_task(c, t->files_of);

		if (!p)
			break;
		t = p;
	}
	return t;
}

static int check_not_shared(struct dump_ctx *c, struct ckpt_error *e)
{
	for (size_t i = 0; i < c->nfiles; i++) {
		const FileEntry *fe = c->files[i].fe;
		const struct fd_kind *k = fd_kind_for_file(fe);
		const struct dump_task *first = NULL;

		if (!k || !k->open_in_task)
			continue;
		for (size_t ti = 0; ti < c->ntasks; ti++) {
			const struct dump_task *t = &c->tasks[ti];

			for (size_t f = 0; f < t->nfds; f++) {
				if (t->fds[f]->id != fe->id)
					continue;
				/* one fd table shared by two processes is one holder */
				if (first && table_top(c, first) != table_top(c, t))
					return ckpt_err(e, -EOPNOTSUPP,
							"pid %d: fd %u: one %s shared with pid %d "
							"(inherited across fork): not supported",
							t->pid, t->fds[f]->fd, k->name, first->pid);
				first = t;
			}
		}
	}
	return 0;
}

int dump_fds_done(struct dump_ctx *c, struct ckpt_error *e)
{
	struct fd_dump_view v;
	int r;

	r = check_not_shared(c, e);
	if (r >= 0)
		r = check_sigio_owners(c, e);
	if (r < 0)
		return r;
	if (fill_view(c, &v) < 0)
		return ckpt_err(e, -ENOMEM, "out of memory");
	r = fd_kinds_dump_done(&v, e);
	free(v.items);
	free((void *)v.pids);
	return r;
}

void dump_fds_undo(struct dump_ctx *c)
{
	struct fd_dump_view v;

	if (fill_view(c, &v) < 0)
		return;
	fd_kinds_dump_undo(&v);
	free(v.items);
	free((void *)v.pids);
}

int dump_fds_recheck(struct dump_ctx *c, struct ckpt_error *e)
{
	struct fd_dump_view v;
	int r;

	if (fill_view(c, &v) < 0)
		return ckpt_err(e, -ENOMEM, "out of memory");
	r = fd_kinds_dump_recheck(&v, e);
	free(v.items);
	free((void *)v.pids);
	return r;
}

int dump_write_files(struct dump_ctx *c, struct ckpt_error *e)
{
	_cleanup_img_ struct img *img = NULL;
	int r;

	r = dump_img_create(c, IMG_FILES, 0, &img, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < c->nfiles; i++) {
		r = img_write_msg(img, &c->files[i].fe->base, e);
		if (r < 0)
			return r;
	}
	return img_close_write(TAKE_PTR(img), e);
}
