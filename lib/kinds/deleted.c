/* SPDX-License-Identifier: MIT */
/*
 * Regular files deleted but still open. Nothing on disk keeps their content.
 * Every deleted file is a shared memory object of the dump
 * (dump/dump_shmem.c, SHMEM_DELETED): its content is saved once there, in
 * the pages image (holes kept, any size), and the entry of each open file
 * description only names it (shmem_id). The restorer recreates the object
 * unnamed (O_TMPFILE) in its original directory, so nothing appears in the
 * file system, and reopens it for each description through /proc/self/fd
 * with the saved flags and position (restorer/shmem.c): two descriptions of
 * one deleted file stay two descriptions of one file. The /proc link reads
 * "DIR/#INODE (deleted)" instead of the old name.
 *
 * Images of earlier versions hold the content in the entry itself
 * (content, ident.content_crc32c): deleted_open still restores those.
 */
#define LOG_PREFIX "kind deleted: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"

#define DELETED_CHUNK (1u << 20)

static bool deleted_matches(const struct fd_probe *p)
{
	/* memfds and SysV segments are unlinked too, but are not files of a directory */
	return S_ISREG(p->st.st_mode) && p->st.st_nlink == 0 && p->link[0] == '/' &&
	       fdk_link_is_deleted(p->link) && strncmp(p->link, "/memfd:", 7) &&
	       strncmp(p->link, "/SYSV", 5);
}

/*
 * Every deleted file but a memfd's (memfd.c) and a socket's (an O_PATH fd of
 * a socket file is described as a socket), handled or not (a directory, a
 * file with other hard links).
 */
static bool deleted_describe(const struct fd_probe *p, char *buf, size_t len)
{
	const char *link = p->link;

	if (link[0] != '/' || !fdk_link_is_deleted(link) || !strncmp(link, "/memfd:", 7) ||
	    S_ISSOCK(p->st.st_mode))
		return false;
	snprintf(buf, len, "deleted %s %.*s", S_ISDIR(p->st.st_mode) ? "directory" : "file",
		 (int)(strlen(link) - strlen(DELETED_SUFFIX)), link);
	return true;
}

/*
 * Size, mtime, device and inode, from the probe's stat: nothing opened (an
 * open of a file of a directory the tree watches is an event its program
 * would see, in the freeze, before its inotify queue is saved). The
 * content is saved by the shared memory object the dump makes of every
 * deleted file (dump/dump_shmem.c), opened once the fds are dumped.
 */
static int fill_ident(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	FileIdent *id = calloc(1, sizeof(*id));

	if (!id)
		return ckpt_err(e, -ENOMEM, "out of memory");
	file_ident_of_stat(&p->st, id);
	free(fe->ident);
	fe->ident = id;
	return 0;
}

static int deleted_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	int r;

	r = ckpt_fault_inject("deleted-dump", e);
	if (r < 0)
		return r;
	r = fdk_dump_common(p, FILE_TYPE__FILE_REG, fe, e);
	if (r < 0)
		return r;
	/* The path is where the file was: the restore recreates it in that directory. */
	fe->path[strlen(fe->path) - strlen(DELETED_SUFFIX)] = '\0';
	fe->has_deleted = true;
	fe->deleted = true;
	fe->has_uid = fe->has_gid = true;
	fe->uid = p->st.st_uid;
	fe->gid = p->st.st_gid;
	r = fill_ident(p, fe, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d fd %d: deleted file %s", p->pid, p->fd, fe->path);
	return 0;
}

/* The directory part of path ("/" for "/x"), into buf. */
static const char *dir_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash && slash != path ? (size_t)(slash - path) : 1;

	snprintf(buf, len, "%.*s", (int)n, path);
	return buf;
}

static int deleted_verify(const FileEntry *fe, struct ckpt_error *e)
{
	char dir[PATH_MAX];
	struct stat st;
	uint32_t crc;
	int r;

	r = ckpt_fault_inject("deleted-verify", e);
	if (r < 0)
		return r;
	r = fdk_check_entry(fe, FILE_TYPE__FILE_REG, e);
	if (r < 0)
		return r;
	if (fe->has_shmem_id)
		return 0; /* the object holds the content, and checks it */
	if (!fe->has_content || !fe->ident || !fe->ident->has_content_crc32c)
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u: deleted file %s has no saved content or "
				"no content checksum",
				fe->id, fe->path);
	if (fe->content.len != fe->ident->size)
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u: deleted file %s: content is %zu bytes, "
				"ident.size says %llu",
				fe->id, fe->path, fe->content.len,
				(unsigned long long)fe->ident->size);
	crc = crc32c(0, fe->content.data, fe->content.len);
	if (crc != fe->ident->content_crc32c)
		return ckpt_err(e, -EBADMSG,
				"files.img: entry %u: deleted file %s: saved content is corrupt "
				"(CRC32C %08x, ident.content_crc32c %08x)",
				fe->id, fe->path, crc, fe->ident->content_crc32c);
	if (fe->has_pos && fe->pos > (uint64_t)INT64_MAX)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: position %llu out of range",
				fe->id, (unsigned long long)fe->pos);
	dir_of(fe->path, dir, sizeof(dir));
	if (stat(dir, &st) < 0)
		return ckpt_err_errno(e, -errno, "deleted file %s is recreated in its directory %s",
				      fe->path, dir);
	if (!S_ISDIR(st.st_mode))
		return ckpt_err(e, -ENOTDIR,
				"deleted file %s is recreated in its directory, but %s is no "
				"longer a directory",
				fe->path, dir);
	return 0;
}

static int write_content(int fd, const FileEntry *fe, struct ckpt_error *e)
{
	size_t off = 0;

	while (off < fe->content.len) {
		size_t want = fe->content.len - off;
		ssize_t n = pwrite(fd, fe->content.data + off,
				   want < DELETED_CHUNK ? want : DELETED_CHUNK, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ckpt_err_errno(e, n < 0 ? -errno : -EIO,
					      "cannot write the content of deleted file %s at "
					      "offset %zu",
					      fe->path, off);
		off += (size_t)n;
	}
	return 0;
}

/* An unnamed file in the original directory, holding the saved content and mode. */
static int create_unnamed(const FileEntry *fe, int *ret_fd, struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	char dir[PATH_MAX];
	int r;

	dir_of(fe->path, dir, sizeof(dir));
	/* Not /tmp as a fallback: the file would then live on another file system. */
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return ckpt_err_errno(e, -errno,
				      "cannot recreate deleted file %s as an unnamed file "
				      "(O_TMPFILE) in %s",
				      fe->path, dir);
	r = write_content(fd, fe, e);
	if (r < 0)
		return r;
	/* before fchmod: a change of owner clears the set-id bits */
	if ((fe->has_uid || fe->has_gid) &&
	    fchown(fd, fe->has_uid ? fe->uid : (uid_t)-1, fe->has_gid ? fe->gid : (gid_t)-1) < 0)
		return ckpt_err_errno(e, -errno, "cannot give deleted file %s to uid %d gid %d",
				      fe->path, fe->has_uid ? (int)fe->uid : -1,
				      fe->has_gid ? (int)fe->gid : -1);
	if (fe->has_mode && fchmod(fd, (mode_t)(fe->mode & 07777)) < 0)
		return ckpt_err_errno(e, -errno, "cannot set mode 0%o of deleted file %s",
				      fe->mode & 07777, fe->path);
	if (fe->ident) {
		struct timespec ts[2] = {
		    {.tv_nsec = UTIME_OMIT},
		    {.tv_sec = (time_t)(fe->ident->mtime_ns / 1000000000ULL),
		     .tv_nsec = (long)(fe->ident->mtime_ns % 1000000000ULL)},
		};

		/* cosmetic: the program may fstat it */
		if (futimens(fd, ts) < 0)
			pr_debug("%s: cannot restore mtime: %s\n", fe->path, strerror(errno));
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int deleted_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	_cleanup_close_ int tmp = -1;
	_cleanup_close_ int fd = -1;
	uint32_t flags;
	char self[64];
	int r;

	r = ckpt_fault_inject("deleted-open", e);
	if (r < 0)
		return r;
	r = deleted_verify(fe, e);
	if (r < 0)
		return r;
	r = create_unnamed(fe, &tmp, e);
	if (r < 0)
		return r;
	/*
	 * Reopen with the saved flags so the description is what the program had
	 * (O_RDONLY, O_APPEND...). O_DIRECTORY (set with O_TMPFILE by a program
	 * that made the file that way) and O_NOFOLLOW (the magic link is a link)
	 * would make the reopen fail.
	 */
	flags = fdk_open_flags(fe->has_flags ? fe->flags : O_RDONLY);
	flags &= ~(uint32_t)(O_DIRECTORY | O_NOFOLLOW);
	snprintf(self, sizeof(self), "/proc/self/fd/%d", tmp);
	fd = file_open_noatime(self, (int)flags | (fd_flags & O_CLOEXEC));
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot reopen deleted file %s (flags 0%o)",
				      fe->path, flags);
	if (!(flags & O_PATH)) {
		r = fdk_seek(fd, fe, "deleted file", e);
		if (r < 0)
			return r;
	}
	pr_debug("%s: recreated unnamed, %zu bytes\n", fe->path, fe->content.len);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

const struct fd_kind fd_kind_deleted = {
    .name = "deleted file",
    .in_flight = true,
    .matches = deleted_matches,
    .describe = deleted_describe,
    .dump = deleted_dump,
    .verify = deleted_verify,
    .open = deleted_open,
};
