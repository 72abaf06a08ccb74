/* SPDX-License-Identifier: MIT */
/*
 * Shared memory objects: anonymous MAP_SHARED memory, memfds, System V
 * segments, files mapped MAP_SHARED and writable, deleted files still mapped,
 * and with --save-tmpfs-files every file of a tmpfs the tree maps, has open
 * or runs (its executable).
 * Each is identified by the (dev, ino) of what the area maps (stat of
 * /proc/PID/map_files/A-B), so that every area and fd of the tree that shows
 * the same inode refers to ONE object: a FILE_SHMEM entry of files.img with
 * a ShmemEntry. Its content (every kind but a file on a disk file system,
 * whose page cache the file itself holds) is read later, while the tree is
 * still frozen, by dump_mm.c: appended after the pages of the task that
 * first showed it (the object's "owner").
 */
#define LOG_PREFIX "dump shmem: "

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "dump_internal.h"
#include "fault.h"
#include "kinds/fd_kind.h"
#include "log.h"
#include "proc.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif
#define SYSFS_MAGIC 0x62656572
#define PROC_SUPER_MAGIC 0x9fa0
#define DEBUGFS_MAGIC 0x64626720
#define HUGETLBFS_MAGIC 0x958458f6
#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif
#define SHM_DEST_BIT 01000

/* What an area or fd shows, before the inode is looked at. */
struct shmem_src {
	ShmemKind kind;
	pid_t pid;
	const char *src;  /* path to open to read it */
	const char *name; /* the /proc name without " (deleted)" */
};

/* A new entry at the end of files.img for a shared memory object. */
static struct dump_file *new_entry(struct dump_ctx *c, struct ckpt_error *e)
{
	struct dump_file *f = dump_file_new(c, e);

	if (!f)
		return NULL;
	/* not an fd's description: never matched by (dev, ino) for fds */
	f->mapping = true;
	f->fd = -1;
	return f;
}

static struct dump_shmem *find(struct dump_ctx *c, uint64_t dev, uint64_t ino, bool sysv)
{
	for (size_t i = 0; i < c->nshmem; i++)
		if (c->shmem[i].dev == dev && c->shmem[i].ino == ino && c->shmem[i].sysv == sysv)
			return &c->shmem[i];
	return NULL;
}

/* The line of /proc/sysvipc/shm for segment id. */
static int sysv_info(int id, ShmemEntry *se, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	char *line, *save = NULL;
	int r;

	r = proc_read_file("/proc/sysvipc/shm", &text, NULL, e);
	if (r < 0)
		return r;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int key, shmid, cpid, lpid;
		unsigned mode, uid, gid;
		unsigned long long size, nattch;

		if (sscanf(line, "%d %d %o %llu %d %d %llu %u %u", &key, &shmid, &mode, &size,
			   &cpid, &lpid, &nattch, &uid, &gid) != 9 ||
		    shmid != id)
			continue;
		se->has_sysv_id = se->has_sysv_key = se->has_sysv_mode = true;
		se->sysv_id = shmid;
		se->sysv_key = key;
		se->sysv_mode = mode & 0777;
		se->has_sysv_cpid = true;
		se->sysv_cpid = cpid;
		se->has_sysv_removed = true;
		se->sysv_removed = (mode & SHM_DEST_BIT) != 0;
		se->has_uid = se->has_gid = true;
		se->uid = uid;
		se->gid = gid;
		se->size = size;
		return 0;
	}
	return ckpt_err(e, -ENOENT, "System V segment %d is not in /proc/sysvipc/shm", id);
}

/* its seals come later, from the object opened (dump_shmem_open_late) */
static int fill_memfd(const char *name, ShmemEntry *se, struct ckpt_error *e)
{
	MemfdEntry *m = calloc(1, sizeof(*m));

	if (!m)
		return ckpt_err(e, -ENOMEM, "out of memory");
	memfd_entry__init(m);
	se->memfd = m;
	m->name = dump_strdup(name, e);
	return m->name ? 0 : -ENOMEM;
}

/*
 * Fill the entry of a new object from its inode, only stat'ed: an open
 * (the seals of a memfd, the content sum of a file) is what inotify
 * reports, and waits until the tree's fds are dumped
 * (dump_shmem_open_late).
 */
static int describe(struct dump_ctx *c, struct dump_file *f, const struct stat *st,
		    const struct shmem_src *s, struct ckpt_error *e)
{
	FileEntry *fe = f->fe;
	ShmemEntry *se = calloc(1, sizeof(*se));
	char path[PATH_MAX + 32];
	struct statfs sfs;
	int r = 0;

	if (!se)
		return ckpt_err(e, -ENOMEM, "out of memory");
	shmem_entry__init(se);
	fe->shmem = se;
	fe->type = FILE_TYPE__FILE_SHMEM;
	fe->has_mapping_only = fe->mapping_only = true;
	fe->has_mode = true;
	fe->mode = st->st_mode;
	se->kind = s->kind;
	se->size = (uint64_t)st->st_size;
	se->has_uid = se->has_gid = true;
	se->uid = st->st_uid;
	se->gid = st->st_gid;
	se->has_content_saved = true;
	se->content_saved = true;
	switch (s->kind) {
	case SHMEM_KIND__SHMEM_ANON:
		snprintf(path, sizeof(path), "/dev/zero (shared anonymous memory)");
		break;
	case SHMEM_KIND__SHMEM_SYSV:
		snprintf(path, sizeof(path), "%s", s->name);
		r = sysv_info((int)st->st_ino, se, e);
		break;
	case SHMEM_KIND__SHMEM_MEMFD:
		snprintf(path, sizeof(path), "%s", s->name);
		r = fill_memfd(s->name + 7, se, e);
		break;
	case SHMEM_KIND__SHMEM_DELETED:
		/* where it was: the restore recreates it unnamed in that directory */
		snprintf(path, sizeof(path), "%s", s->name);
		break;
	case SHMEM_KIND__SHMEM_FILE:
		snprintf(path, sizeof(path), "%s", s->name);
		if (statfs(s->src, &sfs) < 0)
			return ckpt_err_errno(e, -errno, "statfs of %s", s->name);
		/* regular files there are windows on kernel or device memory */
		if (sfs.f_type == SYSFS_MAGIC || sfs.f_type == PROC_SUPER_MAGIC ||
		    sfs.f_type == DEBUGFS_MAGIC || sfs.f_type == HUGETLBFS_MAGIC)
			return ckpt_err(e, -EOPNOTSUPP,
					"MAP_SHARED mapping of %s (a sysfs, proc, debugfs or "
					"hugetlbfs file) is not supported",
					s->name);
		se->has_tmpfs = true;
		se->tmpfs = sfs.f_type == TMPFS_MAGIC;
		/* on a disk file system the file itself holds the data */
		se->content_saved = se->tmpfs;
		fe->ident = calloc(1, sizeof(*fe->ident));
		if (!fe->ident)
			return ckpt_err(e, -ENOMEM, "out of memory");
		file_ident__init(fe->ident);
		file_ident_of_stat(st, fe->ident);
		break;
	default:
		return ckpt_err(e, -EINVAL, "%s: unknown shared memory kind %d", s->name, s->kind);
	}
	if (r < 0)
		return r;
	fe->path = dump_strdup(path, e);
	return fe->path ? 0 : -ENOMEM;
}

/*
 * A mapping that /proc calls deleted whose inode still has a name: glibc's
 * sem_open makes "sem.XXXXXX", maps it, then links it as "sem.NAME" and
 * removes the first name. The new name is looked for in the same
 * directory; found, the object is that file; else it is refused (a name
 * elsewhere could not be given back).
 */
static int find_link(const char *deleted_path, const struct stat *st, char *ret, size_t len,
		     struct ckpt_error *e)
{
	_cleanup_closedir_ DIR *d = NULL;
	char dir[PATH_MAX];
	const char *slash = strrchr(deleted_path, '/');
	struct dirent *de;
	struct stat cst;

	snprintf(dir, sizeof(dir), "%.*s",
		 slash && slash != deleted_path ? (int)(slash - deleted_path) : 1, deleted_path);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		if (fstatat(dirfd(d), de->d_name, &cst, AT_SYMLINK_NOFOLLOW) < 0 ||
		    cst.st_dev != st->st_dev || cst.st_ino != st->st_ino)
			continue;
		if ((size_t)snprintf(ret, len, "%s/%s", strcmp(dir, "/") ? dir : "", de->d_name) >=
		    len)
			break;
		return 0;
	}
	return ckpt_err(e, -EOPNOTSUPP,
			"%s was renamed or unlinked but its inode still has %lu other name(s) "
			"outside %s; not supported",
			deleted_path, (unsigned long)st->st_nlink, dir);
}

/* The object of the inode at s->src (found or added); *ret its file id. */
static int lookup_or_add(struct dump_ctx *c, const struct shmem_src *s, uint32_t *ret,
			 struct ckpt_error *e)
{
	bool sysv = s->kind == SHMEM_KIND__SHMEM_SYSV;
	char linked[PATH_MAX];
	struct dump_shmem *ds;
	struct dump_file *f;
	struct stat st;
	int r;

	r = ckpt_fault_inject("shmem-dump", e);
	if (r < 0)
		return r;
	/* (through the /proc link: the very object, and no open) */
	if (stat(s->src, &st) < 0)
		return ckpt_err_errno(e, -errno, "stat of %s (%s)", s->src, s->name);
	if (!S_ISREG(st.st_mode))
		return ckpt_err(e, -EOPNOTSUPP,
				"MAP_SHARED mapping of device or special file %s is not supported",
				s->name);
	if (s->kind == SHMEM_KIND__SHMEM_DELETED && st.st_nlink > 0) {
		struct shmem_src named = *s;

		r = find_link(s->name, &st, linked, sizeof(linked), e);
		if (r < 0)
			return r;
		named.kind = SHMEM_KIND__SHMEM_FILE;
		named.name = linked;
		return lookup_or_add(c, &named, ret, e);
	}
	ds = find(c, st.st_dev, st.st_ino, sysv);
	if (ds) {
		*ret = c->files[ds->file_idx].fe->id;
		return 0;
	}
	if (c->nshmem == c->shmem_cap) {
		size_t cap = c->shmem_cap ? c->shmem_cap * 2 : 16;
		struct dump_shmem *n = realloc(c->shmem, cap * sizeof(*n));

		if (!n)
			return ckpt_err(e, -ENOMEM, "out of memory");
		c->shmem = n;
		c->shmem_cap = cap;
	}
	f = new_entry(c, e);
	if (!f)
		return -ENOMEM;
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	ds = &c->shmem[c->nshmem++];
	memset(ds, 0, sizeof(*ds));
	ds->file_idx = c->nfiles - 1;
	ds->dev = st.st_dev;
	ds->ino = st.st_ino;
	ds->sysv = sysv;
	ds->owner = s->pid;
	snprintf(ds->src, sizeof(ds->src), "%s", s->src);
	r = describe(c, f, &st, s, e);
	if (r < 0)
		return ckpt_err_wrap(e, "%s", s->name);
	pr_debug("object %u: %s, %" PRIu64 " bytes, content from %s", f->fe->id, f->fe->path,
		 f->fe->shmem->size, ds->src);
	*ret = f->fe->id;
	return 0;
}

static bool is_anon_shared(const struct proc_vma *v)
{
	const char *p = v->path;

	return v->shared && (!p[0] || (v->deleted && !strcmp(p, "/dev/zero")) ||
			     !strncmp(p, "[anon_shmem:", 12));
}

static struct dump_shmem *find_id(struct dump_ctx *c, uint32_t id)
{
	for (size_t i = 0; i < c->nshmem; i++)
		if (c->files[c->shmem[i].file_idx].fe->id == id)
			return &c->shmem[i];
	return NULL;
}

/*
 * A file object mapped MAP_SHARED both by an area that may write it and by
 * one that may not (a tmpfs file mapped shared from a read-only fd, with
 * --save-tmpfs-files): the restore maps every area of an object from one
 * fd, which would let the second one be made writable (mprotect) where it
 * could not be. Refused.
 */
static int check_shared_modes(struct dump_ctx *c, pid_t pid, const struct proc_vma *v,
			      uint32_t id, struct ckpt_error *e)
{
	struct dump_shmem *ds = find_id(c, id);
	bool rw = proc_vma_has_flag(v, "mw");

	if (!ds)
		return 0;
	if (rw)
		ds->shared_rw = true;
	else
		ds->shared_ro = true;
	if (ds->shared_rw && ds->shared_ro)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: area %" PRIx64 "-%" PRIx64
				": %s is mapped MAP_SHARED both from a read-write fd and from "
				"a read-only one in the tree; not supported with "
				"--save-tmpfs-files",
				pid, v->start, v->end, v->path);
	return 0;
}

int dump_shmem_vma(struct dump_ctx *c, pid_t pid, const struct proc_vma *v, Vma *vma,
		   struct ckpt_error *e)
{
	char src[96];
	struct shmem_src s = {.pid = pid, .src = src, .name = v->path};
	int r;

	snprintf(src, sizeof(src), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, v->start,
		 v->end);
	if (vma->kind == VMA_KIND__VMA_SYSV_SHM)
		s.kind = SHMEM_KIND__SHMEM_SYSV;
	else if (!strncmp(v->path, "/memfd:", 7))
		s.kind = SHMEM_KIND__SHMEM_MEMFD;
	else if (is_anon_shared(v))
		s.kind = SHMEM_KIND__SHMEM_ANON;
	else if (v->deleted)
		s.kind = SHMEM_KIND__SHMEM_DELETED;
	else
		s.kind = SHMEM_KIND__SHMEM_FILE;
	r = lookup_or_add(c, &s, &vma->file_id, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: area %" PRIx64 "-%" PRIx64, pid, v->start, v->end);
	if (s.kind == SHMEM_KIND__SHMEM_FILE && v->shared) {
		r = check_shared_modes(c, pid, v, vma->file_id, e);
		if (r < 0)
			return r;
	}
	vma->has_file_id = true;
	vma->has_pgoff = true;
	vma->pgoff = v->pgoff;
	return 0;
}

int dump_on_tmpfs(const char *path, bool *ret, struct ckpt_error *e)
{
	struct statfs sfs;

	if (statfs(path, &sfs) < 0)
		return ckpt_err_errno(e, -errno, "statfs of %s", path);
	*ret = sfs.f_type == TMPFS_MAGIC;
	return 0;
}

/*
 * --save-tmpfs-files: a program run from a tmpfs. Its executable is the
 * file object of that file, the one its text mappings (private mappings of
 * a tmpfs file, dump_mm.c) and any fd of it name: saved once, made again by
 * the restore if gone, and the exe link set to it (restorer/mem.c).
 */
int dump_shmem_exe(struct dump_ctx *c, pid_t pid, const char *src, const char *name,
		   uint32_t *ret_id, struct ckpt_error *e)
{
	struct shmem_src s = {.kind = SHMEM_KIND__SHMEM_FILE, .pid = pid, .src = src, .name = name};
	const FileEntry *fe;
	int r;

	r = lookup_or_add(c, &s, ret_id, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: executable", pid);
	fe = c->files[*ret_id - 1].fe;
	if (!fe->shmem || fe->shmem->kind != SHMEM_KIND__SHMEM_FILE || !fe->shmem->tmpfs)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: its executable %s is also %s, not a file of a tmpfs",
				pid, name, fe->path);
	pr_debug("pid %d: executable %s on a tmpfs: object %u", pid, name, *ret_id);
	return 0;
}

/* The object of a memfd fd (added if no area maps it). */
static int link_memfd(struct dump_ctx *c, size_t i, struct ckpt_error *e)
{
	struct dump_file *f = &c->files[i];
	char src[96], name[PATH_MAX];
	struct shmem_src s = {
	    .kind = SHMEM_KIND__SHMEM_MEMFD, .pid = f->holder_pid ? f->holder_pid : f->pid, .src = src, .name = name};
	uint32_t id;
	int r;

	snprintf(src, sizeof(src), "/proc/%d/fd/%d", f->pid, f->fd);
	/* the fd's path is "/memfd:NAME (deleted)", kept as the kind saved it */
	snprintf(name, sizeof(name), "%s", f->fe->path);
	if (strlen(name) > strlen(" (deleted)") &&
	    !strcmp(name + strlen(name) - strlen(" (deleted)"), " (deleted)"))
		name[strlen(name) - strlen(" (deleted)")] = '\0';
	r = lookup_or_add(c, &s, &id, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: fd %d", s.pid, f->fd);
	/* lookup_or_add may have moved c->files */
	f = &c->files[i];
	f->fe->has_shmem_id = true;
	f->fe->shmem_id = id;
	return 0;
}

/*
 * A deleted file open but not mapped: a shared memory object too, so that
 * its content is saved like the others (in the pages image, holes kept,
 * whatever its size) and every open file description of it is a reopen of
 * the one recreated file (two descriptions stay two, on one inode).
 */
static int link_deleted(struct dump_ctx *c, size_t i, struct ckpt_error *e)
{
	struct dump_file *f = &c->files[i];
	char src[96];
	struct shmem_src s = {
	    .kind = SHMEM_KIND__SHMEM_DELETED, .pid = f->holder_pid ? f->holder_pid : f->pid, .src = src, .name = f->fe->path};
	uint32_t id;
	int r;

	snprintf(src, sizeof(src), "/proc/%d/fd/%d", f->pid, f->fd);
	r = lookup_or_add(c, &s, &id, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: fd %d", s.pid, f->fd);
	/* lookup_or_add may have moved c->files */
	f = &c->files[i];
	f->fe->has_shmem_id = true;
	f->fe->shmem_id = id;
	pr_debug("%s: open, deleted: object %u", f->fe->path, id);
	return 0;
}

/*
 * --save-tmpfs-files: a regular file open on tmpfs (/tmp, /dev/shm, /run)
 * becomes a shared memory object of kind file, as a MAP_SHARED mapping of
 * a tmpfs file already is: its content, owner, mode and mtime are saved,
 * the restore recreates it if it is gone and refuses it if it is there
 * with other content (restorer/shmem.c), and the fd is reopened from it.
 */
static int link_tmpfs(struct dump_ctx *c, size_t i, struct ckpt_error *e)
{
	struct dump_file *f = &c->files[i];
	struct dump_shmem *ds = find(c, f->dev, f->ino, false);
	char src[96];
	struct shmem_src s = {
	    .kind = SHMEM_KIND__SHMEM_FILE, .pid = f->pid, .src = src, .name = f->fe->path};
	struct statfs sfs;
	uint32_t id;
	int r;

	snprintf(src, sizeof(src), "/proc/%d/fd/%d", f->pid, f->fd);
	if (statfs(src, &sfs) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: fd %d: statfs of %s", f->pid, f->fd,
				      f->fe->path);
	if (sfs.f_type != TMPFS_MAGIC)
		return 0;
	if (ds) {
		/* also mapped: one object (a MAP_SHARED one is a file object) */
		FileEntry *oe = c->files[ds->file_idx].fe;

		if (!oe->shmem || oe->shmem->kind != SHMEM_KIND__SHMEM_FILE)
			return 0;
		id = oe->id;
	} else {
		r = lookup_or_add(c, &s, &id, e);
		if (r < 0)
			return ckpt_err_wrap(e, "pid %d: fd %d", s.pid, f->fd);
		/* lookup_or_add may have moved c->files */
		f = &c->files[i];
	}
	f->fe->has_shmem_id = true;
	f->fe->shmem_id = id;
	pr_debug("%s: open on tmpfs: saved with its content (object %u)", f->fe->path, id);
	return 0;
}

int dump_shmem_link_fds(struct dump_ctx *c, struct ckpt_error *e)
{
	size_t n = c->nfiles;

	for (size_t i = 0; i < n; i++) {
		struct dump_file *f = &c->files[i];
		struct dump_shmem *ds;
		FileEntry *fe = f->fe;

		if (f->mapping)
			continue;
		if (fe->type == FILE_TYPE__FILE_MEMFD) {
			int r = link_memfd(c, i, e);

			if (r < 0)
				return r;
			continue;
		}
		if (fe->type == FILE_TYPE__FILE_REG && !(fe->has_deleted && fe->deleted) &&
		    c->opts->save_tmpfs_files && !(fe->flags & O_PATH)) {
			int r = link_tmpfs(c, i, e);

			if (r < 0)
				return r;
			continue;
		}
		if (fe->type != FILE_TYPE__FILE_REG || !fe->has_deleted || !fe->deleted)
			continue;
		ds = find(c, f->dev, f->ino, false);
		if (!ds) {
			/* open only: an object of its own, like a mapped one */
			int r = link_deleted(c, i, e);

			if (r < 0)
				return r;
			continue;
		}
		/* open and mapped: one file, its content saved once in the object */
		fe->has_shmem_id = true;
		fe->shmem_id = c->files[ds->file_idx].fe->id;
		free(fe->content.data);
		fe->content.data = NULL;
		fe->content.len = 0;
		fe->has_content = false;
		if (fe->ident)
			fe->ident->has_content_crc32c = false;
		pr_debug("%s: open and mapped, one object (%u)", fe->path, fe->shmem_id);
	}
	return 0;
}

/*
 * The refusal of an object whose content the dump would be seen reading:
 * a --leave-running dump's program would read those events when it runs
 * on, and a killing dump's queue of events, saved before, is checked again
 * when the checkpoint is committed (fd-kinds.md, inotify): the events of
 * the dump's own reads would withdraw it, try after try. Reading the
 * object through the task's own mapping instead would need no open; not
 * done yet.
 */
static int refuse_watched(const struct dump_shmem *ds, const FileEntry *fe, struct ckpt_error *e)
{
	return ckpt_err(e, -EOPNOTSUPP,
			"pid %d: shared memory object %s: the tree watches it or its directory "
			"with inotify for opens and reads, and its content is saved by reading "
			"it: the program would see the dump's reads",
			(int)ds->owner, fe->path);
}

/* The rest of one object's entry, from the object opened. */
static int open_late(struct dump_ctx *c, struct dump_shmem *ds, struct ckpt_error *e)
{
	FileEntry *fe = c->files[ds->file_idx].fe;
	ShmemEntry *se = fe->shmem;
	struct stat st = {.st_dev = (dev_t)ds->dev, .st_ino = (ino_t)ds->ino};
	_cleanup_close_ int fd = -1;
	bool watched;
	int seals;

	/* a file: its watches and its directory's; a deleted one, the
	 * directory it was in (its events still go there); else the inode's */
	if (se->kind == SHMEM_KIND__SHMEM_FILE)
		watched = dump_file_watched(c, &st, fe->path);
	else
		watched = dump_inode_watched(c, ds->dev, ds->ino) ||
			  (se->kind == SHMEM_KIND__SHMEM_DELETED && dump_dir_watched(c, fe->path));

	if (watched && se->content_saved)
		return refuse_watched(ds, fe, e);
	if (watched && !se->content_saved) {
		/* a file of a disk file system: its identity without a sum */
		pr_debug("%s: watched by the tree (inotify): identity without a content sum",
			 fe->path);
		return 0;
	}
	fd = file_open_noatime(ds->src, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOATIME);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "opening %s (%s)", ds->src, fe->path);
	if (se->memfd) {
		seals = fcntl(fd, F_GET_SEALS);
		if (seals < 0)
			return ckpt_err_errno(e, -errno, "memfd %s: F_GET_SEALS", fe->path);
		se->memfd->has_seals = true;
		se->memfd->seals = (uint32_t)seals;
	}
	if (!fe->ident)
		return 0;
	return file_ident_sum_check(fd, c->sums, c->nsums, fe->ident, fe->path, e);
}

int dump_shmem_open_late(struct dump_ctx *c, struct ckpt_error *e)
{
	/* a pre-dump's objects are never restored: nothing opened */
	if (c->opts->pre_dump)
		return 0;
	for (size_t i = 0; i < c->nshmem; i++) {
		int r = open_late(c, &c->shmem[i], e);

		if (r < 0)
			return r;
	}
	return 0;
}

void dump_shmem_free(struct dump_ctx *c)
{
	free(c->shmem);
	c->shmem = NULL;
	c->nshmem = c->shmem_cap = 0;
}
