/* SPDX-License-Identifier: MIT */
/*
 * Directories opened by path (opendir, O_PATH handles, *at() anchors). The
 * position is the getdents cookie of the filesystem; it is restored with
 * lseek, which the same filesystem understands.
 *
 * A directory removed while open (rmdir: it was empty, and stays empty) is
 * made again where it was (its name, else a free sibling name) with its
 * mode and owner, opened with the saved flags and removed again. The
 * descriptions of one removed directory (same device and inode, in the
 * entry's ident) are opened from the one directory made for them.
 */
#define LOG_PREFIX "kind dir: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"

static bool dir_is_deleted(const struct fd_probe *p)
{
	return p->link[0] == '/' && fdk_link_is_deleted(p->link) && p->st.st_nlink == 0;
}

static bool dir_matches(const struct fd_probe *p)
{
	return S_ISDIR(p->st.st_mode) && (fdk_link_is_path(p->link) || dir_is_deleted(p));
}

static bool dir_describe(const struct fd_probe *p, char *buf, size_t len)
{
	if (!S_ISDIR(p->st.st_mode) || !fdk_link_is_named_file(p->link))
		return false;
	snprintf(buf, len, "directory %s", p->link);
	return true;
}

static int dir_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	int r = ckpt_fault_inject("dir-dump", e);

	if (r < 0)
		return r;
	/* No ident: a directory's size and mtime change with every entry added. */
	r = fdk_dump_common(p, FILE_TYPE__FILE_DIR, fe, e);
	if (r < 0 || !dir_is_deleted(p))
		return r;
	/* removed: where it was, who owned it, and which one it is (ident) */
	fe->path[strlen(fe->path) - strlen(DELETED_SUFFIX)] = '\0';
	fe->has_deleted = fe->deleted = true;
	fe->has_uid = fe->has_gid = true;
	fe->uid = p->st.st_uid;
	fe->gid = p->st.st_gid;
	fe->ident = calloc(1, sizeof(*fe->ident));
	if (!fe->ident)
		return ckpt_err(e, -ENOMEM, "out of memory");
	file_ident__init(fe->ident);
	fe->ident->has_dev = fe->ident->has_ino = true;
	fe->ident->dev = p->st.st_dev;
	fe->ident->ino = p->st.st_ino;
	return 0;
}

static bool entry_deleted(const FileEntry *fe)
{
	return fe->has_deleted && fe->deleted;
}

static int dir_verify(const FileEntry *fe, struct ckpt_error *e)
{
	struct stat st;
	int r;

	r = ckpt_fault_inject("dir-verify", e);
	if (r < 0)
		return r;
	r = fdk_check_entry(fe, FILE_TYPE__FILE_DIR, e);
	if (r < 0)
		return r;
	if (entry_deleted(fe)) {
		char dir[PATH_MAX];
		const char *slash = strrchr(fe->path, '/');

		if (!fe->ident || !fe->ident->has_dev || !fe->ident->has_ino)
			return ckpt_err(e, -EINVAL,
					"files.img: entry %u: removed directory %s: no ident",
					fe->id, fe->path);
		snprintf(dir, sizeof(dir), "%.*s",
			 slash && slash != fe->path ? (int)(slash - fe->path) : 1, fe->path);
		if (stat(dir, &st) < 0)
			return ckpt_err_errno(e, -errno, "removed directory %s is made again in %s",
					      fe->path, dir);
		if (!S_ISDIR(st.st_mode))
			return ckpt_err(e, -ENOTDIR,
					"removed directory %s is made again in %s, no longer a "
					"directory",
					fe->path, dir);
		return 0;
	}
	if (stat(fe->path, &st) < 0)
		return ckpt_err_errno(e, -errno, "directory %s", fe->path);
	if (!S_ISDIR(st.st_mode))
		return ckpt_err(e, -ENOTDIR, "%s is no longer a directory (mode 0%o)", fe->path,
				(unsigned)st.st_mode);
	return 0;
}

static int dir_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	int r;

	r = ckpt_fault_inject("dir-open", e);
	if (r < 0)
		return r;
	r = fdk_check_entry(fe, FILE_TYPE__FILE_DIR, e);
	if (r < 0)
		return r;
	r = fdk_reopen(fe, O_DIRECTORY | (uint32_t)(fd_flags & O_CLOEXEC), &fd, e);
	if (r < 0)
		return r;
	if (!(fe->flags & O_PATH)) {
		r = fdk_seek(fd, fe, "directory", e);
		if (r < 0)
			return r;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int dir_make_removed(const char *path, const char *what, uid_t uid, gid_t gid, int mode,
		     int *ret_fd, struct ckpt_error *e)
{
	char name[PATH_MAX];
	_cleanup_close_ int fd = -1;
	struct file_made made;
	int r;

	if (snprintf(name, sizeof(name), "%s", path) >= (int)sizeof(name) - 16)
		return ckpt_err(e, -ENAMETOOLONG, "%s %s: name too long", what, path);
	if (mkdir(name, 0700) < 0) {
		if (errno != EEXIST)
			return ckpt_err_errno(e, -errno, "cannot make the %s %s again", what, path);
		snprintf(name, sizeof(name), "%s.ckpt-XXXXXX", path);
		if (!mkdtemp(name))
			return ckpt_err_errno(e, -errno, "cannot make the %s %s again", what, path);
	}
	made = file_made_of(-1, name);
	/* (a test swaps the name here: CKPT_PAUSE=dir-remade) */
	r = ckpt_fault_inject("dir-remade", e);
	/*
	 * Owner and mode through an O_PATH fd of the directory just made, once
	 * it is known to be it: its parent may be writable by others, and
	 * chmod by name would follow a symlink put there since.
	 */
	if (r >= 0)
		fd = file_made_open(name, O_PATH | O_DIRECTORY, S_IFDIR, &made);
	if (r >= 0 && fd == -ESTALE)
		r = ckpt_err(e, -EINVAL,
			     "the %s %s made again as %s was replaced before its owner and "
			     "mode were set",
			     what, path, name);
	else if (r >= 0 && fd < 0)
		r = ckpt_err_errno(e, fd, "opening %s", name);
	else if (r >= 0 && (r = fd_set_owner_mode(fd, uid, gid, mode)) < 0)
		r = ckpt_err_errno(e, r, "the %s %s made again: owner %d:%d, mode 0%o", what, path,
				   (int)uid, (int)gid, mode);
	/* gone again at once; what someone else put at the name is theirs */
	if (file_made_at(name, &made) && rmdir(name) < 0 && r >= 0)
		r = ckpt_err_errno(e, -errno, "removing %s again", name);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* The removed directories made in this restore, by device and inode. */
struct removed_dirs {
	struct {
		uint64_t dev, ino;
		int fd;
	} * v;
	size_t n;
};

static int dir_open_shared(struct fd_open_ctx *ctx, const FileEntry *fe, int *ret_fd,
			   struct ckpt_error *e)
{
	struct removed_dirs *rd = ctx->priv;
	_cleanup_close_ int fd = -1;
	int base = -1, r;
	char self[64];

	if (!entry_deleted(fe))
		return dir_open(fe, O_CLOEXEC, ret_fd, e);
	r = ckpt_fault_inject("dir-open", e);
	if (r >= 0)
		r = dir_verify(fe, e);
	if (r < 0)
		return r;
	if (!rd) {
		rd = calloc(1, sizeof(*rd));
		if (!rd)
			return ckpt_err(e, -ENOMEM, "out of memory");
		ctx->priv = rd;
	}
	for (size_t i = 0; i < rd->n && base < 0; i++)
		if (rd->v[i].dev == fe->ident->dev && rd->v[i].ino == fe->ident->ino)
			base = rd->v[i].fd;
	if (base < 0) {
		void *n = realloc(rd->v, (rd->n + 1) * sizeof(*rd->v));

		if (!n)
			return ckpt_err(e, -ENOMEM, "out of memory");
		rd->v = n;
		r = dir_make_removed(fe->path, "removed directory",
				     fe->has_uid ? fe->uid : (uid_t)-1,
				     fe->has_gid ? fe->gid : (gid_t)-1,
				     fe->has_mode ? (int)(fe->mode & 07777) : -1, &base, e);
		if (r < 0)
			return r;
		rd->v[rd->n].dev = fe->ident->dev;
		rd->v[rd->n].ino = fe->ident->ino;
		rd->v[rd->n++].fd = base;
	}
	/* this description, with its flags, from the one directory */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", base);
	fd = open(self, (int)(fdk_open_flags(fe->flags) | O_DIRECTORY | O_CLOEXEC));
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "reopening removed directory %s (flags 0%o)",
				      fe->path, fe->flags);
	if (!(fe->flags & O_PATH)) {
		r = fdk_seek(fd, fe, "removed directory", e);
		if (r < 0)
			return r;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static void dir_open_done(struct fd_open_ctx *ctx)
{
	struct removed_dirs *rd = ctx->priv;

	if (!rd)
		return;
	for (size_t i = 0; i < rd->n; i++)
		close(rd->v[i].fd);
	free(rd->v);
	free(rd);
	ctx->priv = NULL;
}

const struct fd_kind fd_kind_dir = {
    .name = "directory",
    .in_flight = true,
    .matches = dir_matches,
    .describe = dir_describe,
    .dump = dir_dump,
    .verify = dir_verify,
    .open = dir_open,
    .open_shared = dir_open_shared,
    .open_done = dir_open_done,
};
