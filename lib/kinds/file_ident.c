/* SPDX-License-Identifier: MIT */
/*
 * File identity: size and mtime (plus dev and inode, for information), and
 * for mapped files and executables a CRC32C of the content, so that a file
 * touched but not changed (same bytes, new mtime) is still accepted.
 */
#define LOG_PREFIX "file ident: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "fault.h"
#include "fd_kind.h"
#include "log.h"

/* Checksumming reads the whole file: past this size it costs more than it saves. */
#define IDENT_CRC_MAX_SIZE (256ULL << 20)
/* below malloc's mmap threshold: the buffer comes from the heap, already
 * faulted in, not as fresh memory for every file */
#define IDENT_CHUNK (64u << 10)
/* a sum taken before the freeze is kept only for a file whose ctime was
 * older than this: any later change gives it a later ctime (file_sum) */
#define SUM_SETTLED_NS 1000000000ULL

static uint64_t mtime_ns(const struct stat *st)
{
	return (uint64_t)st->st_mtim.tv_sec * 1000000000ULL + (uint64_t)st->st_mtim.tv_nsec;
}

/* CRC32C of the first size bytes, read with pread so the file position stays. */
static int content_crc(int fd, uint64_t size, uint32_t *ret, struct ckpt_error *e)
{
	_cleanup_free_ char *buf = malloc(IDENT_CHUNK);
	uint64_t off = 0;
	uint32_t crc = 0;

	if (!buf)
		return ckpt_err(e, -ENOMEM, "out of memory for a %u-byte buffer", IDENT_CHUNK);
	while (off < size) {
		size_t want = size - off < IDENT_CHUNK ? (size_t)(size - off) : IDENT_CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ckpt_err_errno(e, -errno, "cannot read at offset %llu",
					      (unsigned long long)off);
		}
		if (n == 0)
			return ckpt_err(e, -EAGAIN, "file shrank to %llu bytes while being read",
					(unsigned long long)off);
		crc = crc32c(crc, buf, (size_t)n);
		off += (uint64_t)n;
	}
	*ret = crc;
	return 0;
}

static uint64_t ctime_ns(const struct stat *st)
{
	return (uint64_t)st->st_ctim.tv_sec * 1000000000ULL + (uint64_t)st->st_ctim.tv_nsec;
}

static void sum_of_stat(const struct stat *st, struct file_sum *s)
{
	*s = (struct file_sum){.dev = st->st_dev,
			       .ino = st->st_ino,
			       .size = (uint64_t)st->st_size,
			       .mtime_ns = mtime_ns(st),
			       .ctime_ns = ctime_ns(st)};
}

static bool same_identity(const struct file_sum *a, const struct file_sum *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

int file_open_noatime(const char *path, int flags)
{
	int fd = open(path, flags);

	if (fd < 0 && errno == EPERM && (flags & O_NOATIME)) {
		pr_debug("%s: O_NOATIME not allowed, opening without it\n", path);
		fd = open(path, flags & ~O_NOATIME);
	}
	return fd;
}

int file_open_regular(const char *path, int flags, struct stat *st)
{
	_cleanup_close_ int fd = file_open_noatime(path, flags | O_NONBLOCK | O_NOCTTY);
	int fl;

	if (fd < 0 || fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return -EBADMSG;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, (fl & ~O_NONBLOCK) | (flags & O_NONBLOCK)) < 0)
		return -errno;
	return TAKE_FD(fd);
}

struct file_made file_made_of(int fd, const char *path)
{
	struct statx sx;
	int flags = fd >= 0 ? AT_EMPTY_PATH : AT_SYMLINK_NOFOLLOW;

	if (statx(fd >= 0 ? fd : AT_FDCWD, fd >= 0 ? "" : path, flags,
		  STATX_TYPE | STATX_INO | STATX_BTIME, &sx) < 0 ||
	    (sx.stx_mask & (STATX_TYPE | STATX_INO)) != (STATX_TYPE | STATX_INO))
		return (struct file_made){0};
	return (struct file_made){
	    .known = true,
	    .dev_major = sx.stx_dev_major,
	    .dev_minor = sx.stx_dev_minor,
	    .ino = sx.stx_ino,
	    .type = sx.stx_mode & S_IFMT,
	    .has_btime = sx.stx_mask & STATX_BTIME,
	    .btime = sx.stx_btime,
	};
}

bool file_made_same(const struct file_made *a, const struct file_made *b)
{
	if (!a->known || !b->known || a->dev_major != b->dev_major ||
	    a->dev_minor != b->dev_minor || a->ino != b->ino || a->type != b->type)
		return false;
	return !a->has_btime || !b->has_btime ||
	       (a->btime.tv_sec == b->btime.tv_sec && a->btime.tv_nsec == b->btime.tv_nsec);
}

bool file_made_at(const char *path, const struct file_made *made)
{
	struct file_made now = file_made_of(-1, path);

	return file_made_same(&now, made);
}

int file_made_open(const char *path, int flags, mode_t type, const struct file_made *made)
{
	_cleanup_close_ int fd = -1;
	struct file_made now;

	if (made->type != type)
		return -ESTALE;
	fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP || errno == ENOENT || errno == ENOTDIR ? -ESTALE : -errno;
	now = file_made_of(fd, NULL);
	if (!file_made_same(&now, made))
		return -ESTALE;
	return TAKE_FD(fd);
}

int fd_set_owner_mode(int fd, uid_t uid, gid_t gid, int mode)
{
	char self[64];

	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchownat(fd, "", uid, gid, AT_EMPTY_PATH) < 0)
		return -errno;
	if (mode < 0)
		return 0;
	/* (fchmod refuses O_PATH fds; the magic link names the inode itself) */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	return chmod(self, (mode_t)mode) < 0 ? -errno : 0;
}

int file_sum_take(int fd, struct file_sum *ret, struct ckpt_error *e)
{
	struct file_sum before, after;
	struct timespec now;
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return ckpt_err_errno(e, -errno, "cannot stat fd %d", fd);
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > IDENT_CRC_MAX_SIZE)
		return 1;
	sum_of_stat(&st, &before);
	clock_gettime(CLOCK_REALTIME, &now);
	if (before.ctime_ns + SUM_SETTLED_NS >
	    (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec)
		return 1;
	r = content_crc(fd, before.size, &before.crc, e);
	if (r == -EAGAIN)
		return 1;
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return ckpt_err_errno(e, -errno, "cannot stat fd %d", fd);
	sum_of_stat(&st, &after);
	if (!same_identity(&before, &after))
		return 1;
	*ret = before;
	return 0;
}

void file_ident_of_stat(const struct stat *st, FileIdent *ret)
{
	FileIdent id = FILE_IDENT__INIT;

	id.size = (uint64_t)st->st_size;
	id.mtime_ns = mtime_ns(st);
	id.has_dev = true;
	id.dev = st->st_dev;
	id.has_ino = true;
	id.ino = st->st_ino;
	*ret = id;
}

/* The identity of fd; its content's sum from known[n] when one of the same
 * identity is there, else read now (with_content). */
static int ident_fill(int fd, bool with_content, const struct file_sum *known, size_t n,
		      FileIdent *ret, struct ckpt_error *e)
{
	FileIdent id;
	struct file_sum now;
	struct stat st;
	int r;

	r = ckpt_fault_inject("file-ident", e);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return ckpt_err_errno(e, -errno, "cannot stat fd %d", fd);
	sum_of_stat(&st, &now);
	file_ident_of_stat(&st, &id);
	if (with_content && S_ISREG(st.st_mode) && id.size <= IDENT_CRC_MAX_SIZE) {
		size_t i = 0;

		while (i < n && !same_identity(&known[i], &now))
			i++;
		if (i < n) {
			id.content_crc32c = known[i].crc;
		} else {
			r = content_crc(fd, id.size, &id.content_crc32c, e);
			if (r < 0)
				return r;
		}
		id.has_content_crc32c = true;
	}
	*ret = id;
	return 0;
}

int file_ident_fill_known(int fd, const struct file_sum *known, size_t n, FileIdent *ret,
			  struct ckpt_error *e)
{
	return ident_fill(fd, true, known, n, ret, e);
}

int file_ident_fill(int fd, bool with_content, FileIdent *ret, struct ckpt_error *e)
{
	return ident_fill(fd, with_content, NULL, 0, ret, e);
}

int file_ident_sum_check(int fd, const struct file_sum *known, size_t n, FileIdent *id,
			 const char *what, struct ckpt_error *e)
{
	FileIdent now = FILE_IDENT__INIT;
	int r = file_ident_fill_known(fd, known, n, &now, e);

	if (r < 0)
		return ckpt_err_wrap(e, "%s", what);
	if (now.dev != id->dev || now.ino != id->ino || now.size != id->size ||
	    now.mtime_ns != id->mtime_ns)
		return ckpt_err(e, -EAGAIN, "%s changed while the tree was dumped", what);
	id->has_content_crc32c = now.has_content_crc32c;
	id->content_crc32c = now.content_crc32c;
	return 0;
}

static void format_ns(uint64_t ns, char *buf, size_t len)
{
	time_t sec = (time_t)(ns / 1000000000ULL);
	struct tm tm;

	if (!gmtime_r(&sec, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm)) {
		snprintf(buf, len, "%llu ns", (unsigned long long)ns);
		return;
	}
	size_t n = strlen(buf);
	snprintf(buf + n, len - n, ".%09u UTC", (unsigned)(ns % 1000000000ULL));
}

int file_ident_check(int fd, const FileIdent *id, const char *what, struct ckpt_error *e)
{
	char was[64], now[64];
	const char *why = "";
	struct stat st;
	uint64_t size, mtime;
	int r;

	r = ckpt_fault_inject("file-ident-check", e);
	if (r < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return ckpt_err_errno(e, -errno, "cannot stat %s", what);
	size = (uint64_t)st.st_size;
	mtime = mtime_ns(&st);
	if (size == id->size && mtime == id->mtime_ns)
		return 0;
	/* Touched or copied without -p: the same bytes are still the same file. */
	if (id->has_content_crc32c && size == id->size && S_ISREG(st.st_mode)) {
		uint32_t crc;

		r = content_crc(fd, size, &crc, e);
		if (r < 0)
			return ckpt_err_wrap(e, "%s", what);
		if (crc == id->content_crc32c) {
			pr_debug("%s: mtime changed, content did not\n", what);
			return 0;
		}
		why = ", different content";
	}
	format_ns(id->mtime_ns, was, sizeof(was));
	format_ns(mtime, now, sizeof(now));
	return ckpt_err(e, -ESTALE,
			"%s changed since the dump (size %llu -> %llu, mtime %s -> %s%s)", what,
			(unsigned long long)id->size, (unsigned long long)size, was, now, why);
}
