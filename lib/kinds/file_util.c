/* SPDX-License-Identifier: MIT */
/* Helpers shared by the path-based kinds (reg, dir, chr). */
#define LOG_PREFIX "kinds: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "file_util.h"
#include "log.h"
#include "proc.h"

bool fdk_link_is_deleted(const char *link)
{
	size_t len = strlen(link), slen = strlen(DELETED_SUFFIX);

	return len > slen && !strcmp(link + len - slen, DELETED_SUFFIX);
}

bool fdk_link_is_path(const char *link)
{
	return link[0] == '/' && !fdk_link_is_deleted(link);
}

bool fdk_link_is_named_file(const char *link)
{
	return fdk_link_is_path(link) && strncmp(link, "/memfd:", 7);
}

bool fdk_describe_as(bool is, const char *what, char *buf, size_t len)
{
	if (is)
		snprintf(buf, len, "%s", what);
	return is;
}

int fdk_probe_sock_domain(const struct fd_probe *p)
{
	int domain = -1;
	socklen_t sl = sizeof(domain);

	if (strncmp(p->link, "socket:[", 8) && !S_ISSOCK(p->st.st_mode))
		return -1;
	if (p->local_fd < 0 || getsockopt(p->local_fd, SOL_SOCKET, SO_DOMAIN, &domain, &sl) < 0)
		return -1;
	return domain;
}

/*
 * f_flags as fdinfo shows them also carry kernel-internal bits (__FMODE_EXEC,
 * O_LARGEFILE set by the kernel itself, creation flags that did their work
 * at open time): keep only what describes the open file description.
 */
#define FDK_RESTORED_FLAGS                                                                         \
	(O_ACCMODE | O_APPEND | O_NONBLOCK | O_NOATIME | O_DIRECT | O_SYNC | O_DSYNC |             \
	 O_LARGEFILE | O_PATH | O_NOFOLLOW | O_DIRECTORY | O_NOCTTY)

uint32_t fdk_open_flags(uint32_t saved)
{
	return saved & FDK_RESTORED_FLAGS;
}

void file_entry_free_fields(FileEntry *fe)
{
	if (!fe)
		return;
	free(fe->path);
	fe->path = NULL;
	free(fe->ident);
	fe->ident = NULL;
	free(fe->link_target);
	fe->link_target = NULL;
	free(fe->sigio);
	fe->sigio = NULL;
	/* each kind's sub-message (pipe, unix_sk, eventfd...) */
	fd_kinds_free_entry_fields(fe);
	free(fe->content.data);
	fe->content.data = NULL;
	fe->content.len = 0;
	fe->has_content = false;
}

int fdk_dump_common(const struct fd_probe *p, FileType type, FileEntry *fe, struct ckpt_error *e)
{
	char *path = strdup(p->link);

	if (!path)
		return ckpt_err(e, -ENOMEM, "%s: out of memory", p->link);
	free(fe->path);
	fe->path = path;
	fe->type = type;
	/* O_CLOEXEC belongs to the fd, not the description: FdEntry.cloexec has it. */
	fe->has_flags = true;
	fe->flags = p->info.flags & ~(uint32_t)O_CLOEXEC;
	fe->has_pos = true;
	fe->pos = p->info.pos;
	fe->has_mode = true;
	fe->mode = p->st.st_mode;
	return 0;
}

static const char *file_type_name(FileType type)
{
	switch (type) {
	case FILE_TYPE__FILE_REG:
		return "regular file";
	case FILE_TYPE__FILE_DIR:
		return "directory";
	case FILE_TYPE__FILE_CHR:
		return "character device";
	case FILE_TYPE__FILE_SYMLINK:
		return "symbolic link";
	default:
		return "file";
	}
}

int fdk_check_entry(const FileEntry *fe, FileType type, struct ckpt_error *e)
{
	if (fe->type != type)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: type %d is not a %s", fe->id,
				(int)fe->type, file_type_name(type));
	if (!fe->path || fe->path[0] != '/')
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u: %s path \"%.64s\" is not absolute", fe->id,
				file_type_name(type), fe->path ? fe->path : "");
	if (strlen(fe->path) >= PATH_MAX)
		return ckpt_err(e, -ENAMETOOLONG, "files.img: entry %u: path longer than %d bytes",
				fe->id, PATH_MAX - 1);
	if (fe->has_flags && (fe->flags & ~FDK_RESTORED_FLAGS))
		pr_debug("entry %u: flags 0%o: not restoring 0%o\n", fe->id, fe->flags,
			 fe->flags & ~FDK_RESTORED_FLAGS);
	return 0;
}

int fdk_reopen(const FileEntry *fe, uint32_t extra, int *ret_fd, struct ckpt_error *e)
{
	uint32_t flags = fdk_open_flags(fe->has_flags ? fe->flags : O_RDONLY) | extra;
	int fd;

	/* O_NOATIME needs ownership of the file or CAP_FOWNER; the rest matters more. */
	fd = file_open_noatime(fe->path, (int)flags);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open %s %s (flags 0%o)",
				      file_type_name(fe->type), fe->path, flags);
	*ret_fd = fd;
	return 0;
}

int fdk_seek(int fd, const FileEntry *fe, const char *what, struct ckpt_error *e)
{
	uint64_t pos = fe->has_pos ? fe->pos : 0;
	off_t r;

	if (pos > (uint64_t)INT64_MAX)
		return ckpt_err(e, -EINVAL, "files.img: entry %u: position %llu out of range",
				fe->id, (unsigned long long)pos);
	r = lseek(fd, (off_t)pos, SEEK_SET);
	/* Some files cannot seek at all; at position 0 that loses nothing. */
	if (r < 0 && pos == 0 && (errno == EINVAL || errno == ESPIPE))
		return 0;
	if (r < 0)
		return ckpt_err_errno(e, -errno, "cannot seek %s %s to %llu", what, fe->path,
				      (unsigned long long)pos);
	if ((uint64_t)r != pos)
		return ckpt_err(e, -EIO, "seeking %s %s to %llu landed at %lld", what, fe->path,
				(unsigned long long)pos, (long long)r);
	return 0;
}

int fdk_read_fdinfo(const struct fd_probe *p, char **ret, struct ckpt_error *e)
{
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)p->pid, p->fd);
	r = proc_read_file(path, ret, NULL, e);
	return r < 0 ? ckpt_err_wrap(e, "%s (%s)", path, p->link) : 0;
}

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

int fdk_grab_fd(pid_t pid, int fd, struct ckpt_error *e)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int r;

	if (pidfd < 0)
		return ckpt_err_errno(e, -errno, "pid %d: pidfd_open", pid);
	r = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (r < 0)
		return ckpt_err_errno(e, -errno, "pid %d: fd %d: pidfd_getfd", pid, fd);
	return r;
}

int fdk_set_nonblock(int fd, const FileEntry *fe, struct ckpt_error *e)
{
	int nb = (int)((fe->has_flags ? fe->flags : 0) & O_NONBLOCK);
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, (fl & ~O_NONBLOCK) | nb) < 0)
		return ckpt_err_errno(e, -errno, "%s: setting O_NONBLOCK (F_SETFL)", fe->path);
	return 0;
}

int fdk_set_fd_flags(int fd, int fd_flags, const FileEntry *fe, struct ckpt_error *e)
{
	if (!(fd_flags & O_CLOEXEC) && fcntl(fd, F_SETFD, 0) < 0)
		return ckpt_err_errno(e, -errno, "%s: clearing FD_CLOEXEC", fe->path);
	return 0;
}

bool fdk_fdinfo_u64(const char *text, const char *key, int base, uint64_t *ret)
{
	const char *s = strstr(text, key);
	char *end;

	while (s && s != text && s[-1] != '\n')
		s = strstr(s + 1, key);
	if (!s)
		return false;
	errno = 0;
	*ret = strtoull(s + strlen(key), &end, base);
	return !errno && end != s + strlen(key);
}

int fdk_batch_open(struct fd_open_ctx *ctx, const struct fdk_batch *b, const FileEntry *fe,
		   int *ret_fd, struct ckpt_error *e)
{
	char what[PATH_MAX + 160];
	int r, fd;

	r = b->check(fe, e);
	if (r < 0)
		return r;
	if (!ctx->priv) {
		r = b->build(ctx, e);
		if (r < 0)
			return r;
	}
	fd = b->fd_of(ctx->priv, fe);
	if (fd < 0)
		return ckpt_err(e, -EINVAL, "%s: not made (a restore of this entry failed before)",
				b->describe(fe, what, sizeof(what)));
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "%s: dup", b->describe(fe, what, sizeof(what)));
	*ret_fd = fd;
	return 0;
}
