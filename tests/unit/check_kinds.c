/* SPDX-License-Identifier: MIT */
/*
 * fd kinds: probe fds of this very process (pidfd_getfd on ourselves), dump
 * them into FileEntry, then verify and reopen from the entry and compare
 * flags and positions. Also file identity and the descriptions of fds that
 * no kind handles.
 */
#include <check.h>
#include <linux/netlink.h>
#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <mqueue.h>
#include <unistd.h>

#include "cleanup.h"
#include "kinds/fd_kind.h"

static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check-kinds-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void remove_tmpdir(void)
{
	if (tmpdir[0])
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int self_pidfd(void)
{
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

	ck_assert_int_ge(fd, 0);
	return fd;
}

/* A file of size bytes in tmpdir; returns its path in buf. */
static void make_file(const char *name, size_t size, char *buf, size_t len)
{
	_cleanup_close_ int fd = -1;
	char data[4096];

	snprintf(buf, len, "%s/%s", tmpdir, name);
	fd = open(buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	memset(data, 'a', sizeof(data));
	for (size_t off = 0; off < size;) {
		size_t n = size - off < sizeof(data) ? size - off : sizeof(data);

		ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
		off += n;
	}
}

/* Probe fd of ourselves and dump it with the kind that matches. */
static const struct fd_kind *probe_and_dump(int fd, FileEntry *fe, struct fd_probe *p)
{
	_cleanup_close_ int pidfd = self_pidfd();
	struct ckpt_error e = {};
	const struct fd_kind *k;

	ck_assert_msg(fd_probe_fill(pidfd, getpid(), fd, p, &e) == 0, "%s", e.msg);
	ck_assert_int_ge(p->local_fd, 0);
	k = fd_kind_find(p);
	ck_assert_ptr_nonnull(k);
	file_entry__init(fe);
	fe->id = 7;
	ck_assert_msg(k->dump(p, fe, &e) == 0, "%s", e.msg);
	ck_assert_ptr_eq(fd_kind_for_file(fe), k);
	return k;
}

/* The entry survives a protobuf round trip (all required fields set). */
static void assert_packs(const FileEntry *fe)
{
	size_t len = file_entry__get_packed_size(fe);
	_cleanup_free_ uint8_t *buf = malloc(len);
	FileEntry *back;

	ck_assert_uint_eq(file_entry__pack(fe, buf), len);
	back = file_entry__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(back);
	ck_assert_str_eq(back->path, fe->path);
	ck_assert_uint_eq(back->flags, fe->flags);
	ck_assert_uint_eq(back->pos, fe->pos);
	file_entry__free_unpacked(back, NULL);
}

static off_t cur_pos(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

/* ---- regular files --------------------------------------------------------------- */

START_TEST(test_reg_append_roundtrip)
{
	_cleanup_close_ int fd = -1, nfd = -1;
	FileEntry fe;
	struct fd_probe p;
	struct ckpt_error e = {};
	const struct fd_kind *k;
	char path[256];
	int fl;

	make_tmpdir();
	make_file("data with space.bin", 100, path, sizeof(path));
	fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(lseek(fd, 42, SEEK_SET), 42);

	k = probe_and_dump(fd, &fe, &p);
	ck_assert_str_eq(k->name, "regular file");
	ck_assert_str_eq(p.link, path);
	ck_assert_uint_eq(p.info.pos, 42);
	ck_assert(p.info.flags & O_CLOEXEC);
	ck_assert_int_eq(fe.type, FILE_TYPE__FILE_REG);
	ck_assert_uint_eq(fe.id, 7);
	ck_assert_str_eq(fe.path, path);
	ck_assert(fe.has_flags && fe.has_pos && fe.has_mode);
	ck_assert_uint_eq(fe.flags & O_ACCMODE, O_RDWR);
	ck_assert(fe.flags & O_APPEND);
	ck_assert(!(fe.flags & O_CLOEXEC));
	ck_assert_uint_eq(fe.pos, 42);
	ck_assert(S_ISREG(fe.mode));
	ck_assert_ptr_nonnull(fe.ident);
	ck_assert_uint_eq(fe.ident->size, 100);
	ck_assert(fe.ident->has_dev && fe.ident->has_ino);
	ck_assert(!fe.ident->has_content_crc32c);
	assert_packs(&fe);
	fd_probe_release(&p);
	ck_assert_int_eq(p.local_fd, -1);

	ck_assert_msg(k->verify(&fe, &e) == 0, "%s", e.msg);
	ck_assert_msg(k->open(&fe, O_CLOEXEC, &nfd, &e) == 0, "%s", e.msg);
	fl = fcntl(nfd, F_GETFL);
	ck_assert_int_eq(fl & O_ACCMODE, O_RDWR);
	ck_assert(fl & O_APPEND);
	ck_assert_int_eq(cur_pos(nfd), 42);
	ck_assert(fcntl(nfd, F_GETFD) & FD_CLOEXEC);

	/* a file that grew is fine */
	ck_assert_int_eq(write(fd, "more", 4), 4);
	ck_assert_int_eq(k->verify(&fe, &e), 0);
	file_entry_free_fields(&fe);
	remove_tmpdir();
}
END_TEST

/* Flags that must come back as they were. */
static const struct {
	int flags;
	int check; /* bits compared after reopening */
} reg_flags[] = {
    {O_RDONLY, O_ACCMODE},
    {O_WRONLY, O_ACCMODE},
    {O_RDWR | O_APPEND, O_ACCMODE | O_APPEND},
    {O_RDONLY | O_NONBLOCK, O_ACCMODE | O_NONBLOCK},
    {O_WRONLY | O_SYNC, O_ACCMODE | O_SYNC},
    {O_RDWR | O_DSYNC, O_ACCMODE | O_SYNC},
    {O_RDONLY | O_NOATIME, O_ACCMODE | O_NOATIME},
    {O_RDWR | O_DIRECT, O_ACCMODE | O_DIRECT},
    {O_PATH, O_PATH},
    /* creation flags did their work at open time: reopening must not truncate */
    {O_RDWR | O_CREAT | O_TRUNC, O_ACCMODE},
};

START_TEST(test_reg_flags)
{
	_cleanup_close_ int fd = -1, nfd = -1;
	FileEntry fe;
	struct fd_probe p;
	struct ckpt_error e = {};
	const struct fd_kind *k;
	char path[256];
	struct stat st;

	make_tmpdir();
	make_file("f", 8192, path, sizeof(path));
	fd = open(path, reg_flags[_i].flags | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	if (reg_flags[_i].flags & O_TRUNC)
		ck_assert_int_eq(write(fd, "abcdef", 6), 6);
	k = probe_and_dump(fd, &fe, &p);
	fd_probe_release(&p);
	ck_assert_msg(k->open(&fe, O_CLOEXEC, &nfd, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(fcntl(nfd, F_GETFL) & reg_flags[_i].check,
			 fcntl(fd, F_GETFL) & reg_flags[_i].check);
	if (!(reg_flags[_i].flags & O_PATH))
		ck_assert_int_eq(cur_pos(nfd), cur_pos(fd));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, reg_flags[_i].flags & O_TRUNC ? 6 : 8192);
	file_entry_free_fields(&fe);
	remove_tmpdir();
}
END_TEST

START_TEST(test_reg_shrunk_refused)
{
	_cleanup_close_ int fd = -1;
	FileEntry fe;
	struct fd_probe p;
	struct ckpt_error e = {};
	const struct fd_kind *k;
	char path[256], want[512];
	int nfd = -1;

	make_tmpdir();
	make_file("log", 1000, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(lseek(fd, 900, SEEK_SET), 900);
	k = probe_and_dump(fd, &fe, &p);
	fd_probe_release(&p);

	/* as it was: opened at its position, with the flags it had (the open's
	 * own O_NONBLOCK, below, cleared again) */
	ck_assert_int_eq(k->open(&fe, O_CLOEXEC, &nfd, &e), 0);
	ck_assert_int_eq(lseek(nfd, 0, SEEK_CUR), 900);
	ck_assert_int_eq(fcntl(nfd, F_GETFL) & (O_NONBLOCK | O_ACCMODE), O_RDONLY);
	close(nfd);
	nfd = -1;

	ck_assert_int_eq(truncate(path, 10), 0);
	snprintf(want, sizeof(want), "file %s is now 10 bytes, shorter than the saved position 900",
		 path);
	ck_assert_int_eq(k->verify(&fe, &e), -ESTALE);
	ck_assert_str_eq(e.msg, want);
	ck_assert_int_eq(k->open(&fe, O_CLOEXEC, &nfd, &e), -ESTALE);
	ck_assert_str_eq(e.msg, want);
	ck_assert_int_eq(nfd, -1);

	/* gone altogether */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(k->verify(&fe, &e), -ENOENT);
	snprintf(want, sizeof(want), "file %s: No such file or directory", path);
	ck_assert_str_eq(e.msg, want);
	ck_assert_int_eq(k->open(&fe, O_CLOEXEC, &nfd, &e), -ENOENT);
	ck_assert(strstr(e.msg, path));

	/* replaced by a directory */
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(k->verify(&fe, &e), -EINVAL);
	ck_assert(strstr(e.msg, "is no longer a regular file"));

	/* replaced by a FIFO after the verify (a race made deterministic):
	 * the open refuses it at once instead of waiting for a writer */
	ck_assert_int_eq(rmdir(path), 0);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	alarm(10);
	ck_assert_int_eq(k->open(&fe, O_CLOEXEC, &nfd, &e), -EINVAL);
	alarm(0);
	ck_assert(strstr(e.msg, "is no longer a regular file"));
	ck_assert_int_eq(nfd, -1);
	file_entry_free_fields(&fe);
	remove_tmpdir();
}
END_TEST

START_TEST(test_reg_without_pidfd)
{
	_cleanup_close_ int fd = -1;
	struct ckpt_error e = {};
	struct fd_probe p;
	FileEntry fe = FILE_ENTRY__INIT;
	const struct fd_kind *k;
	char path[256];

	make_tmpdir();
	make_file("f", 123, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	/* no pidfd: the probe falls back to stat of the magic link */
	ck_assert_int_eq(fd_probe_fill(-1, getpid(), fd, &p, &e), 0);
	ck_assert_int_eq(p.local_fd, -1);
	ck_assert_int_eq(p.st.st_size, 123);
	k = fd_kind_find(&p);
	ck_assert_ptr_nonnull(k);
	ck_assert_int_eq(k->dump(&p, &fe, &e), 0);
	ck_assert_uint_eq(fe.ident->size, 123);
	fd_probe_release(&p);
	file_entry_free_fields(&fe);
	ck_assert_ptr_null(fe.path);
	remove_tmpdir();
}
END_TEST

START_TEST(test_probe_errors)
{
	_cleanup_close_ int pidfd = self_pidfd();
	struct fd_probe p = {.fd = 1234};
	struct ckpt_error e = {};
	char want[128];

	ck_assert_int_eq(fd_probe_fill(pidfd, getpid(), 999, &p, &e), -ENOENT);
	snprintf(want, sizeof(want), "/proc/%d/fd/999", getpid());
	ck_assert_msg(strstr(e.msg, want), "%s", e.msg);
	ck_assert_int_eq(p.fd, 1234);

	setenv("CKPT_FAULT", "fd-probe", 1);
	ck_assert_int_eq(fd_probe_fill(pidfd, getpid(), 0, &p, &e), -EIO);
	unsetenv("CKPT_FAULT");
}
END_TEST

/* ---- directories and devices ------------------------------------------------------- */

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Name of the next entry getdents returns from fd. */
static void next_dirent(int fd, char *name, size_t len)
{
	char buf[512];
	long n = syscall(SYS_getdents64, fd, buf, sizeof(buf));
	struct linux_dirent64 *d = (struct linux_dirent64 *)buf;

	ck_assert_int_gt(n, 0);
	ck_assert_uint_lt(strlen(d->d_name), len);
	memcpy(name, d->d_name, strlen(d->d_name) + 1);
}

START_TEST(test_dir_roundtrip)
{
	_cleanup_close_ int fd = -1, nfd = -1;
	FileEntry fe;
	struct fd_probe p;
	struct ckpt_error e = {};
	const struct fd_kind *k;
	char path[256], a[256], b[256];
	char small[64];
	long n;

	make_tmpdir();
	for (int i = 0; i < 40; i++) {
		snprintf(a, sizeof(a), "entry-%02d-with-a-long-name", i);
		make_file(a, 0, path, sizeof(path));
	}
	fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	/* read a single entry to move the position off 0 */
	n = syscall(SYS_getdents64, fd, small, sizeof(small));
	ck_assert_int_gt(n, 0);
	ck_assert_int_ne(cur_pos(fd), 0);

	k = probe_and_dump(fd, &fe, &p);
	fd_probe_release(&p);
	ck_assert_str_eq(k->name, "directory");
	ck_assert_int_eq(fe.type, FILE_TYPE__FILE_DIR);
	ck_assert_str_eq(fe.path, tmpdir);
	ck_assert(fe.flags & O_DIRECTORY);
	ck_assert_uint_eq(fe.pos, (uint64_t)cur_pos(fd));
	assert_packs(&fe);

	ck_assert_msg(k->verify(&fe, &e) == 0, "%s", e.msg);
	ck_assert_msg(k->open(&fe, O_CLOEXEC, &nfd, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(cur_pos(nfd), cur_pos(fd));
	next_dirent(fd, a, sizeof(a));
	next_dirent(nfd, b, sizeof(b));
	ck_assert_str_eq(a, b);
	ck_assert(fcntl(nfd, F_GETFD) & FD_CLOEXEC);
	file_entry_free_fields(&fe);
	remove_tmpdir();
}
END_TEST

START_TEST(test_dir_replaced)
{
	FileEntry fe = FILE_ENTRY__INIT;
	struct ckpt_error e = {};
	const struct fd_kind *k;
	char path[256];

	make_tmpdir();
	make_file("notadir", 3, path, sizeof(path));
	fe.type = FILE_TYPE__FILE_DIR;
	fe.path = path;
	k = fd_kind_for_file(&fe);
	ck_assert_ptr_nonnull(k);
	ck_assert_int_eq(k->verify(&fe, &e), -ENOTDIR);
	ck_assert(strstr(e.msg, "is no longer a directory"));
	remove_tmpdir();
}
END_TEST

static const struct {
	const char *path;
	int flags;
	unsigned major, minor;
} chr_devs[] = {
    {"/dev/null", O_RDWR, 1, 3},      {"/dev/zero", O_RDONLY, 1, 5},
    {"/dev/full", O_WRONLY, 1, 7},    {"/dev/random", O_RDONLY | O_NONBLOCK, 1, 8},
    {"/dev/urandom", O_RDONLY, 1, 9},
};

START_TEST(test_chr_roundtrip)
{
	_cleanup_close_ int fd = open(chr_devs[_i].path, chr_devs[_i].flags | O_CLOEXEC);
	_cleanup_close_ int nfd = -1, fifo_fd = -1;
	FileEntry fe;
	struct fd_probe p;
	struct ckpt_error e = {};
	const struct fd_kind *k;
	struct stat st;

	ck_assert_int_ge(fd, 0);
	k = probe_and_dump(fd, &fe, &p);
	fd_probe_release(&p);
	ck_assert_str_eq(k->name, "character device");
	ck_assert_int_eq(fe.type, FILE_TYPE__FILE_CHR);
	ck_assert(fe.has_rdev);
	ck_assert_uint_eq(fe.rdev, makedev(chr_devs[_i].major, chr_devs[_i].minor));
	assert_packs(&fe);
	ck_assert_msg(k->verify(&fe, &e) == 0, "%s", e.msg);
	ck_assert_msg(k->open(&fe, O_CLOEXEC, &nfd, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(fstat(nfd, &st), 0);
	ck_assert_uint_eq(st.st_rdev, fe.rdev);
	ck_assert_int_eq(fcntl(nfd, F_GETFL) & (O_ACCMODE | O_NONBLOCK),
			 chr_devs[_i].flags & (O_ACCMODE | O_NONBLOCK));

	/* a FIFO at the path by the time it is opened (a race made
	 * deterministic): refused at once, not waited on for a writer */
	make_tmpdir();
	free(fe.path);
	ck_assert_int_gt(asprintf(&fe.path, "%s/dev", tmpdir), 0);
	ck_assert_int_eq(mkfifo(fe.path, 0600), 0);
	alarm(10);
	ck_assert_int_lt(k->open(&fe, O_CLOEXEC, &fifo_fd, &e), 0);
	alarm(0);
	ck_assert_int_eq(fifo_fd, -1);
	file_entry_free_fields(&fe);
	remove_tmpdir();
}
END_TEST

/* A POSIX message queue: dumped, opened again by name; another queue of the
 * name, or none, refused; an unlinked one refused at dump. */
START_TEST(test_mqueue_roundtrip)
{
	struct mq_attr attr = {.mq_maxmsg = 4, .mq_msgsize = 32};
	_cleanup_close_ int nfd = -1, again = -1;
	struct ckpt_error e = {};
	const struct fd_kind *k;
	struct fd_probe p;
	struct stat a, b;
	char name[64];
	FileEntry fe;
	int q;

	snprintf(name, sizeof(name), "/ckpt-check-%d", (int)getpid());
	mq_unlink(name);
	q = mq_open(name, O_RDWR | O_NONBLOCK | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
	ck_assert_int_ge(q, 0);
	ck_assert_int_eq(mq_send(q, "x", 1, 0), 0);
	k = probe_and_dump(q, &fe, &p);
	fd_probe_release(&p);
	ck_assert_str_eq(k->name, "POSIX message queue");
	ck_assert_int_eq(fe.type, FILE_TYPE__FILE_MQUEUE);
	ck_assert_str_eq(fe.path, name);
	ck_assert_uint_eq(fe.mqueue->maxmsg, 4);
	ck_assert_uint_eq(fe.mqueue->msgsize, 32);
	assert_packs(&fe);
	ck_assert_msg(k->verify(&fe, &e) == 0, "%s", e.msg);
	ck_assert_msg(k->open(&fe, O_CLOEXEC, &nfd, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(fstat(nfd, &a), 0);
	ck_assert_int_eq(fstat(q, &b), 0);
	ck_assert_uint_eq(a.st_ino, b.st_ino);
	ck_assert_int_eq(fcntl(nfd, F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDWR | O_NONBLOCK);
	/* another queue under the name */
	ck_assert_int_eq(mq_unlink(name), 0);
	again = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
	ck_assert_int_ge(again, 0);
	ck_assert_int_eq(k->verify(&fe, &e), -ESTALE);
	ck_assert_msg(strstr(e.msg, "is not the one dumped"), "%s", e.msg);
	/* none */
	ck_assert_int_eq(mq_unlink(name), 0);
	ck_assert_int_eq(k->verify(&fe, &e), -ENOENT);
	ck_assert_msg(strstr(e.msg, "no queue has that name"), "%s", e.msg);
	file_entry_free_fields(&fe);
	/* the first one, unlinked: refused at dump */
	{
		_cleanup_close_ int pidfd = self_pidfd();

		ck_assert_msg(fd_probe_fill(pidfd, getpid(), q, &p, &e) == 0, "%s", e.msg);
		ck_assert_ptr_eq(fd_kind_find(&p), k);
		file_entry__init(&fe);
		ck_assert_int_eq(k->dump(&p, &fe, &e), -EOPNOTSUPP);
		ck_assert_msg(strstr(e.msg, "was unlinked"), "%s", e.msg);
		fd_probe_release(&p);
		file_entry_free_fields(&fe);
	}
	close(q);
}
END_TEST

/* Entries a forged or stale image could hold. */
static const struct {
	FileType type;
	const char *path;
	bool has_rdev;
	uint64_t rdev;
	int err;
	const char *msg;
} bad_entries[] = {
    {FILE_TYPE__FILE_REG, "etc/passwd", false, 0, -EINVAL, "path \"etc/passwd\" is not absolute"},
    {FILE_TYPE__FILE_DIR, "", false, 0, -EINVAL, "is not absolute"},
    {FILE_TYPE__FILE_CHR, "/dev/null", true, 0x805 /* 8:5, a disk */, -EINVAL,
     "character device 8:5 (/dev/null) is not supported"},
    {FILE_TYPE__FILE_CHR, "/dev/null", false, 0, -EINVAL, "without rdev"},
    {FILE_TYPE__FILE_CHR, "/dev/null", true, 0x105, -ENODEV,
     "character device /dev/null is now 1:3, was 1:5"},
    {FILE_TYPE__FILE_CHR, "/dev/no-such-device", true, 0x103, -ENOENT,
     "character device /dev/no-such-device: No such file or directory"},
};

START_TEST(test_bad_entries)
{
	FileEntry fe = FILE_ENTRY__INIT;
	struct ckpt_error e = {};
	const struct fd_kind *k;
	int fd = -1;

	fe.id = 3;
	fe.type = bad_entries[_i].type;
	fe.path = (char *)bad_entries[_i].path;
	fe.has_rdev = bad_entries[_i].has_rdev;
	fe.rdev = bad_entries[_i].rdev;
	k = fd_kind_for_file(&fe);
	ck_assert_ptr_nonnull(k);
	ck_assert_int_eq(k->verify(&fe, &e), bad_entries[_i].err);
	ck_assert_msg(strstr(e.msg, bad_entries[_i].msg), "got \"%s\"", e.msg);
	ck_assert_int_eq(k->open(&fe, O_CLOEXEC, &fd, &e), bad_entries[_i].err);
	ck_assert_int_eq(fd, -1);
}
END_TEST

/* Every kind of the registry can be found, dumped, checked and restored. */
START_TEST(test_registry_complete)
{
	const struct fd_kind *k;
	size_t i;

	for (i = 0; (k = fd_kind_nth(i)); i++) {
		ck_assert_msg(k->name && k->name[0], "kind %zu has no name", i);
		ck_assert_msg(k->matches, "%s: no matches", k->name);
		ck_assert_msg(k->dump, "%s: no dump", k->name);
		ck_assert_msg(k->verify, "%s: no verify", k->name);
		ck_assert_msg(k->open || k->open_shared || k->open_in_task,
			      "%s: none of open, open_shared, open_in_task", k->name);
	}
	ck_assert_uint_gt(i, 0);
}
END_TEST

START_TEST(test_kind_for_file)
{
	FileEntry fe = FILE_ENTRY__INIT;

	fe.type = FILE_TYPE__FILE_REG;
	ck_assert_str_eq(fd_kind_for_file(&fe)->name, "regular file");
	fe.type = FILE_TYPE__FILE_DIR;
	ck_assert_str_eq(fd_kind_for_file(&fe)->name, "directory");
	fe.type = FILE_TYPE__FILE_CHR;
	ck_assert_str_eq(fd_kind_for_file(&fe)->name, "character device");
	fe.type = (FileType)99;
	ck_assert_ptr_null(fd_kind_for_file(&fe));
}
END_TEST

START_TEST(test_fault_open)
{
	FileEntry fe = FILE_ENTRY__INIT;
	struct ckpt_error e = {};
	int fd = -1;

	fe.type = FILE_TYPE__FILE_REG;
	fe.path = (char *)"/etc/hostname";
	setenv("CKPT_FAULT", "file-open", 1);
	ck_assert_int_eq(fd_kind_for_file(&fe)->open(&fe, O_CLOEXEC, &fd, &e), -EIO);
	ck_assert(strstr(e.msg, "file-open"));
	unsetenv("CKPT_FAULT");
	ck_assert_int_eq(fd_kind_for_file(&fe)->open(&fe, O_CLOEXEC, &fd, &e), 0);
	close(fd);
}
END_TEST

/* ---- file identity ----------------------------------------------------------------- */

static void set_mtime(int fd, time_t sec)
{
	struct timespec ts[2] = {{sec, 0}, {sec, 123456789}};

	ck_assert_int_eq(futimens(fd, ts), 0);
}

START_TEST(test_ident_content)
{
	_cleanup_close_ int fd = -1;
	struct ckpt_error e = {};
	FileIdent id, plain;
	char path[256];

	make_tmpdir();
	make_file("lib.so", 3 * 1024 * 1024 + 17, path, sizeof(path));
	fd = open(path, O_RDWR | O_CLOEXEC);
	set_mtime(fd, 1700000000);
	ck_assert_int_eq(lseek(fd, 5, SEEK_SET), 5);
	ck_assert_int_eq(file_ident_fill(fd, true, &id, &e), 0);
	ck_assert_int_eq(file_ident_fill(fd, false, &plain, &e), 0);
	ck_assert_int_eq(cur_pos(fd), 5);
	ck_assert(id.has_content_crc32c);
	ck_assert(!plain.has_content_crc32c);
	ck_assert_uint_eq(id.size, 3 * 1024 * 1024 + 17);
	ck_assert_uint_eq(id.mtime_ns, 1700000000ULL * 1000000000ULL + 123456789);
	ck_assert_int_eq(file_ident_check(fd, &id, "mapped file", &e), 0);

	/* touched: same bytes, new mtime -> accepted with a checksum, refused without */
	set_mtime(fd, 1800000000);
	ck_assert_int_eq(file_ident_check(fd, &id, "mapped file lib.so", &e), 0);
	ck_assert_int_eq(file_ident_check(fd, &plain, "mapped file lib.so", &e), -ESTALE);
	ck_assert_str_eq(e.msg, "mapped file lib.so changed since the dump (size 3145745 -> "
				"3145745, mtime 2023-11-14 22:13:20.123456789 UTC -> "
				"2027-01-15 08:00:00.123456789 UTC)");

	/* one byte changed in the last chunk, same size */
	ck_assert_int_eq(pwrite(fd, "b", 1, 3 * 1024 * 1024 + 3), 1);
	ck_assert_int_eq(file_ident_check(fd, &id, "mapped file lib.so", &e), -ESTALE);
	ck_assert_msg(strstr(e.msg, "mapped file lib.so changed since the dump (size 3145745 -> "
				    "3145745, mtime 2023-11-14 22:13:20.123456789 UTC -> "),
		      "%s", e.msg);
	ck_assert(strstr(e.msg, ", different content)"));

	/* size changed */
	ck_assert_int_eq(ftruncate(fd, 100), 0);
	ck_assert_int_eq(file_ident_check(fd, &id, "executable /bin/x", &e), -ESTALE);
	ck_assert(strstr(e.msg, "executable /bin/x changed since the dump (size 3145745 -> 100,"));
	remove_tmpdir();
}
END_TEST

START_TEST(test_ident_empty_and_fault)
{
	_cleanup_close_ int fd = -1;
	struct ckpt_error e = {};
	FileIdent id;
	char path[256];

	make_tmpdir();
	make_file("empty", 0, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(file_ident_fill(fd, true, &id, &e), 0);
	ck_assert(id.has_content_crc32c);
	ck_assert_uint_eq(id.content_crc32c, 0);
	ck_assert_uint_eq(id.size, 0);

	setenv("CKPT_FAULT", "file-ident", 1);
	ck_assert_int_eq(file_ident_fill(fd, true, &id, &e), -EIO);
	unsetenv("CKPT_FAULT");
	ck_assert_int_eq(file_ident_fill(-1, false, &id, &e), -EBADF);
	remove_tmpdir();
}
END_TEST

/*
 * What a restore made at a path (file_made_of) against what is there later:
 * the same file by path and by fd; not a symlink, another file's hard
 * link, or a file made after a removal (which may get the freed inode
 * number: the birth time tells them apart); file_made_open refuses those,
 * and fd_set_owner_mode works on an O_PATH fd (never by path).
 */
START_TEST(test_file_made)
{
	_cleanup_close_ int fd = -1, opath = -1;
	struct file_made made, now;
	char path[256], other[256];
	struct stat st;

	make_tmpdir();
	snprintf(path, sizeof(path), "%s/f", tmpdir);
	snprintf(other, sizeof(other), "%s/other", tmpdir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	made = file_made_of(-1, path);
	ck_assert(made.known);
	ck_assert_uint_eq(made.type, S_IFIFO);
	fd = file_made_open(path, O_RDWR | O_NONBLOCK, S_IFIFO, &made);
	ck_assert_int_ge(fd, 0);
	now = file_made_of(fd, NULL);
	ck_assert(file_made_same(&now, &made));

	/* the mode and owner through an O_PATH fd */
	opath = file_made_open(path, O_PATH, S_IFIFO, &made);
	ck_assert_int_ge(opath, 0);
	ck_assert_int_eq(fd_set_owner_mode(opath, (uid_t)-1, (gid_t)-1, 0604), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0604);

	/* a symlink there instead (to a FIFO: the type alone would pass) */
	ck_assert_int_eq(mkfifo(other, 0600), 0);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(symlink(other, path), 0);
	now = file_made_of(-1, path);
	ck_assert(!file_made_same(&now, &made));
	ck_assert_int_eq(file_made_open(path, O_RDWR | O_NONBLOCK, S_IFIFO, &made), -ESTALE);
	/* a hard link of another FIFO */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(link(other, path), 0);
	ck_assert_int_eq(file_made_open(path, O_RDWR | O_NONBLOCK, S_IFIFO, &made), -ESTALE);
	/* nothing there */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(file_made_open(path, O_RDWR | O_NONBLOCK, S_IFIFO, &made), -ESTALE);
	now = file_made_of(-1, path);
	ck_assert(!now.known);
	ck_assert(!file_made_same(&now, &made));

	/* a FIFO made at the path after the first was removed and closed: a
	 * new file, whatever inode number it got */
	close(fd);
	close(opath);
	fd = opath = -1;
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	now = file_made_of(-1, path);
	ck_assert(now.known);
	if (now.ino == made.ino)
		ck_assert_msg(now.has_btime, "inode number reused and no birth time to tell");
	ck_assert(!file_made_same(&now, &made));
	ck_assert_int_eq(file_made_open(path, O_RDWR | O_NONBLOCK, S_IFIFO, &made), -ESTALE);
	remove_tmpdir();
}
END_TEST

/* A sum taken before the freeze (dump_prefetch.c) holds only while the
 * file's identity, its ctime included, is what it was. */
START_TEST(test_ident_sum_taken_before)
{
	_cleanup_close_ int fd = -1;
	struct ckpt_error e = {};
	struct file_sum s, forged;
	FileIdent id, fresh;
	struct stat st;
	char path[256];
	int p[2];

	make_tmpdir();
	make_file("lib.so", 200003, path, sizeof(path));
	fd = open(path, O_RDWR | O_CLOEXEC);
	/* just written: a change within the same timestamp tick could keep
	 * its ctime, so no sum is taken */
	ck_assert_int_eq(file_sum_take(fd, &s, &e), 1);
	usleep(1100 * 1000);
	ck_assert_int_eq(file_sum_take(fd, &s, &e), 0);
	ck_assert_int_eq(file_ident_fill(fd, true, &fresh, &e), 0);
	ck_assert_uint_eq(s.crc, fresh.content_crc32c);
	ck_assert_uint_eq(s.size, 200003);

	/* the same identity: the sum is taken, the file is not read again
	 * (a forged sum shows which) */
	forged = s;
	forged.crc = s.crc ^ 1;
	ck_assert_int_eq(file_ident_fill_known(fd, &forged, 1, &id, &e), 0);
	ck_assert(id.has_content_crc32c);
	ck_assert_uint_eq(id.content_crc32c, s.crc ^ 1);
	ck_assert_uint_eq(id.size, 200003);
	ck_assert_uint_eq(id.mtime_ns, s.mtime_ns);
	ck_assert(id.has_ino && id.ino == s.ino);

	/* a byte changed, the size and the mtime put back: only the ctime
	 * tells, and the file is read */
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(pwrite(fd, "b", 1, 100), 1);
	ck_assert_int_eq(futimens(fd, (struct timespec[2]){st.st_atim, st.st_mtim}), 0);
	ck_assert_int_eq(file_ident_fill(fd, true, &fresh, &e), 0);
	ck_assert_uint_ne(fresh.content_crc32c, s.crc);
	ck_assert_int_eq(file_ident_fill_known(fd, &forged, 1, &id, &e), 0);
	ck_assert_uint_eq(id.content_crc32c, fresh.content_crc32c);
	ck_assert_uint_eq(id.mtime_ns, s.mtime_ns);

	/* not a regular file: nothing taken */
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(file_sum_take(p[0], &s, &e), 1);
	close(p[0]);
	close(p[1]);
	remove_tmpdir();
}
END_TEST

/* ---- descriptions of what no kind handles ------------------------------------------ */

static void describe(int fd, bool matched, const char *want)
{
	_cleanup_close_ int pidfd = self_pidfd();
	struct ckpt_error e = {};
	struct fd_probe p;
	char buf[512];

	ck_assert_int_ge(fd, 0);
	ck_assert_msg(fd_probe_fill(pidfd, getpid(), fd, &p, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(fd_probe_describe(&p, buf, sizeof(buf)), want);
	ck_assert_msg((fd_kind_find(&p) != NULL) == matched, "%s", want);
	fd_probe_release(&p);
}

START_TEST(test_describe)
{
	int pfd[2], sv[2], tcp, tcp6, udp;
	sigset_t mask;
	char path[256], want[600];

	make_tmpdir();
	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	describe(pfd[0], true, "pipe");
	describe(pfd[1], true, "pipe");
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	describe(sv[0], true, "unix socket"); /* lib/kinds/unix.c */
	/* TCP and UDP sockets are handled (lib/kinds/inet.c), netlink sockets too (netlink.c) */
	tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	describe(tcp, true, "TCP socket");
	tcp6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	describe(tcp6, true, "TCPv6 socket");
	udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	describe(udp, true, "UDP socket");
	describe(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), true,
		 "netlink socket");
	/* event fds are handled (lib/kinds/eventfd.c, epoll.c, signalfd.c, timerfd.c, inotify.c) */
	describe(eventfd(0, EFD_CLOEXEC), true, "eventfd");
	describe(epoll_create1(EPOLL_CLOEXEC), true, "epoll");
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	describe(signalfd(-1, &mask, SFD_CLOEXEC), true, "signalfd");
	describe(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC), true, "timerfd");
	describe(inotify_init1(IN_CLOEXEC), true, "inotify");
	describe((int)syscall(SYS_pidfd_open, getpid(), 0), true, "pidfd"); /* a kind now */
	/* memfds are handled (lib/kinds/memfd.c, with their shared memory object) */
	describe((int)syscall(SYS_memfd_create, "my buf", 0), true, "memfd my buf");
	describe(open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), false, "net namespace");
	/* pty masters and slaves are handled (lib/kinds/tty.c) */
	describe(open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC), true, "terminal /dev/ptmx");
	/* only where it exists and we may open it */
	int tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (tun >= 0)
		describe(tun, false, "character device 10:200 /dev/net/tun");

	make_file("kept file", 10, path, sizeof(path));
	snprintf(want, sizeof(want), "regular file %s", path);
	describe(open(path, O_RDONLY | O_CLOEXEC), true, want);
	snprintf(want, sizeof(want), "directory %s", tmpdir);
	describe(open(tmpdir, O_RDONLY | O_CLOEXEC), true, want);
	describe(open("/dev/null", O_RDONLY | O_CLOEXEC), true, "character device 1:3 /dev/null");

	/* deleted files still open are handled (lib/kinds/deleted.c) */
	make_file("gone", 10, path, sizeof(path));
	int gone = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(unlink(path), 0);
	snprintf(want, sizeof(want), "deleted file %s", path);
	describe(gone, true, want);

	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	snprintf(want, sizeof(want), "FIFO %s", path);
	describe(open(path, O_RDWR | O_CLOEXEC), true, want);
	remove_tmpdir();
}
END_TEST

START_TEST(test_describe_without_copy)
{
	struct ckpt_error e = {};
	struct fd_probe p;
	int sv[2];
	char buf[128], want[128];

	/* without a pidfd there is no copy to ask the socket family */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(fd_probe_fill(-1, getpid(), sv[0], &p, &e), 0);
	snprintf(want, sizeof(want), "socket (inode %llu)", (unsigned long long)p.st.st_ino);
	ck_assert_str_eq(fd_probe_describe(&p, buf, sizeof(buf)), want);
	/* a short buffer is cut, not overrun */
	ck_assert_str_eq(fd_probe_describe(&p, buf, 5), "sock");
	fd_probe_release(&p);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* ---- pipes and FIFOs (lib/kinds/pipe.c) ------------------------------------------- */

static const char pipe_text[] = "buffered in the pipe at dump time, byte for byte\n";

static void dump_done_ok(FileEntry **fes, size_t n, pid_t self)
{
	struct fd_dump_item items[4];
	pid_t pids[1] = {getpid()};
	struct fd_dump_view v = {.items = items, .n = n, .pids = pids, .npids = 1, .self = self};
	struct ckpt_error e = {};

	for (size_t i = 0; i < n; i++)
		items[i] = (struct fd_dump_item){fes[i], getpid(), 100 + (int)i};
	ck_assert_msg(fd_kinds_dump_done(&v, &e) == 0, "%s", e.msg);
}

static int open_entry(struct fd_open_ctx *ctx, const FileEntry *fe)
{
	const struct fd_kind *k = fd_kind_for_file(fe);
	struct ckpt_error e = {};
	int fd = -1;

	ck_assert_ptr_nonnull(k->open_shared);
	ck_assert_msg(k->verify(fe, &e) == 0, "%s", e.msg);
	ck_assert_msg(k->open_shared(ctx, fe, &fd, &e) == 0, "%s", e.msg);
	ck_assert_int_ge(fd, 0);
	return fd;
}

START_TEST(test_pipe_roundtrip)
{
	_cleanup_close_ int nr = -1, nw = -1;
	struct fd_probe pr, pw;
	FileEntry fr, fw;
	FileEntry *fes[2] = {&fr, &fw};
	struct fd_open_ctx ctx = {};
	int pf[2], avail = 0;
	char buf[256] = "";

	ck_assert_int_eq(pipe2(pf, O_CLOEXEC), 0);
	ck_assert_int_eq(fcntl(pf[1], F_SETPIPE_SZ, 131072), 131072);
	ck_assert_int_eq(fcntl(pf[1], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(write(pf[1], pipe_text, strlen(pipe_text)), (ssize_t)strlen(pipe_text));
	ck_assert_str_eq(probe_and_dump(pf[0], &fr, &pr)->name, "pipe");
	probe_and_dump(pf[1], &fw, &pw);
	fd_probe_release(&pr);
	fd_probe_release(&pw);
	/* nothing was consumed */
	ck_assert_int_eq(ioctl(pf[0], FIONREAD, &avail), 0);
	ck_assert_int_eq(avail, (int)strlen(pipe_text));
	ck_assert_int_eq(fr.type, FILE_TYPE__FILE_PIPE);
	ck_assert_ptr_nonnull(fr.pipe);
	ck_assert_int_eq(fr.pipe->end, PIPE_END__PIPE_READ);
	ck_assert_int_eq(fw.pipe->end, PIPE_END__PIPE_WRITE);
	ck_assert_uint_eq(fr.pipe->pipe_id, fw.pipe->pipe_id);
	ck_assert_uint_eq(fr.pipe->size, 131072);
	ck_assert(fr.pipe->has_data && !fw.pipe->has_data);
	ck_assert_mem_eq(fr.pipe->data.data, pipe_text, strlen(pipe_text));
	ck_assert(fw.flags & O_NONBLOCK);
	assert_packs(&fr);
	dump_done_ok(fes, 2, 0);
	close(pf[0]);
	close(pf[1]);

	nw = open_entry(&ctx, &fw);
	nr = open_entry(&ctx, &fr);
	fd_kind_for_file(&fr)->open_done(&ctx);
	ck_assert_ptr_null(ctx.priv);
	ck_assert_int_eq(fcntl(nr, F_GETPIPE_SZ), 131072);
	ck_assert(fcntl(nw, F_GETFL) & O_NONBLOCK);
	ck_assert(!(fcntl(nr, F_GETFL) & O_NONBLOCK));
	ck_assert_int_eq(fcntl(nr, F_GETFL) & O_ACCMODE, O_RDONLY);
	ck_assert_int_eq(fcntl(nw, F_GETFL) & O_ACCMODE, O_WRONLY);
	ck_assert_int_eq(read(nr, buf, sizeof(buf)), (ssize_t)strlen(pipe_text));
	ck_assert_str_eq(buf, pipe_text);
	/* one pipe: what goes in one end comes out of the other */
	ck_assert_int_eq(write(nw, "z", 1), 1);
	ck_assert_int_eq(read(nr, buf, 1), 1);
	ck_assert_int_eq(buf[0], 'z');
	file_entry_free_fields(&fr);
	file_entry_free_fields(&fw);
}
END_TEST

/* Only the write end in the "tree": refused while a reader lives elsewhere. */
START_TEST(test_pipe_other_end_outside)
{
	_cleanup_close_ int nw = -1;
	struct fd_probe pw;
	FileEntry fw;
	FileEntry *fes[1] = {&fw};
	struct fd_dump_item items[1];
	pid_t pids[1] = {1};
	struct fd_dump_view v = {.items = items, .n = 1, .pids = pids, .npids = 1};
	struct fd_open_ctx ctx = {};
	struct ckpt_error e = {};
	char want[64];
	int pf[2];

	ck_assert_int_eq(pipe2(pf, O_CLOEXEC), 0);
	probe_and_dump(pf[1], &fw, &pw);
	fd_probe_release(&pw);
	ck_assert(!fw.pipe->has_peer_closed);
	items[0] = (struct fd_dump_item){&fw, 1234, 6};
	/* we (not in pids) hold the read end */
	ck_assert_int_eq(fd_kinds_dump_done(&v, &e), -EOPNOTSUPP);
	snprintf(want, sizeof(want), "pid %d (", (int)getpid());
	ck_assert_msg(strstr(e.msg, "pid 1234: fd 6: pipe:[") && strstr(e.msg, "read end") &&
			  strstr(e.msg, want),
		      "%s", e.msg);
	file_entry_free_fields(&fw);

	/* the reader gone: a pipe nobody reads is restored as such */
	close(pf[0]);
	probe_and_dump(pf[1], &fw, &pw);
	fd_probe_release(&pw);
	ck_assert(fw.pipe->has_peer_closed && fw.pipe->peer_closed);
	dump_done_ok(fes, 1, 0);
	close(pf[1]);
	nw = open_entry(&ctx, &fw);
	fd_kind_for_file(&fw)->open_done(&ctx);
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(write(nw, "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	file_entry_free_fields(&fw);
}
END_TEST

/* Only the read end, its writer gone: the data, then end of file. */
START_TEST(test_pipe_writer_gone)
{
	_cleanup_close_ int nr = -1;
	struct fd_probe pr;
	FileEntry fr;
	FileEntry *fes[1] = {&fr};
	struct fd_open_ctx ctx = {};
	char buf[256] = "";
	int pf[2];

	ck_assert_int_eq(pipe2(pf, O_CLOEXEC), 0);
	ck_assert_int_eq(write(pf[1], pipe_text, strlen(pipe_text)), (ssize_t)strlen(pipe_text));
	close(pf[1]);
	probe_and_dump(pf[0], &fr, &pr);
	fd_probe_release(&pr);
	ck_assert(fr.pipe->has_peer_closed && fr.pipe->peer_closed);
	ck_assert(fr.pipe->has_data);
	dump_done_ok(fes, 1, 0);
	close(pf[0]);
	nr = open_entry(&ctx, &fr);
	fd_kind_for_file(&fr)->open_done(&ctx);
	ck_assert_int_eq(read(nr, buf, sizeof(buf)), (ssize_t)strlen(pipe_text));
	ck_assert_str_eq(buf, pipe_text);
	ck_assert_int_eq(read(nr, buf, sizeof(buf)), 0);
	file_entry_free_fields(&fr);
}
END_TEST

START_TEST(test_fifo_roundtrip)
{
	_cleanup_close_ int rw = -1, w = -1, nrw = -1, nw = -1;
	struct fd_probe p1, p2;
	FileEntry frw, fw;
	FileEntry *fes[2] = {&fw, &frw};
	struct fd_open_ctx ctx = {};
	char path[256], buf[256] = "";
	struct stat st;

	make_tmpdir();
	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	ck_assert_int_eq(mkfifo(path, 0640), 0);
	ck_assert_int_eq(chmod(path, 0640), 0);
	rw = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	w = open(path, O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(rw, 0);
	ck_assert_int_ge(w, 0);
	ck_assert_int_eq(write(w, pipe_text, strlen(pipe_text)), (ssize_t)strlen(pipe_text));
	/* the write-only one is read through a reader of our own */
	ck_assert_str_eq(probe_and_dump(w, &fw, &p1)->name, "FIFO");
	probe_and_dump(rw, &frw, &p2);
	fd_probe_release(&p1);
	fd_probe_release(&p2);
	ck_assert(fw.pipe->has_data && frw.pipe->has_data);
	ck_assert_str_eq(fw.path, path);
	dump_done_ok(fes, 2, 0);
	/* saved once */
	ck_assert(fw.pipe->has_data && !frw.pipe->has_data);
	ck_assert_mem_eq(fw.pipe->data.data, pipe_text, strlen(pipe_text));
	close(TAKE_FD(rw));
	close(TAKE_FD(w));

	/* gone since the dump: made again with its mode */
	ck_assert_int_eq(unlink(path), 0);
	nw = open_entry(&ctx, &fw);
	nrw = open_entry(&ctx, &frw);
	fd_kind_for_file(&fw)->open_done(&ctx);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISFIFO(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(fcntl(nrw, F_GETFL) & O_ACCMODE, O_RDWR);
	ck_assert(fcntl(nrw, F_GETFL) & O_NONBLOCK);
	ck_assert(!(fcntl(nw, F_GETFL) & O_NONBLOCK));
	ck_assert_int_eq(read(nrw, buf, sizeof(buf)), (ssize_t)strlen(pipe_text));
	ck_assert_str_eq(buf, pipe_text);
	file_entry_free_fields(&fw);
	file_entry_free_fields(&frw);
	remove_tmpdir();
}
END_TEST

START_TEST(test_pipe_bad_entries)
{
	_cleanup_close_ int pfd0 = -1;
	struct fd_probe p;
	FileEntry fe;
	struct ckpt_error e = {};
	int pf[2];
	uint32_t size;

	ck_assert_int_eq(pipe2(pf, O_CLOEXEC), 0);
	pfd0 = pf[0];
	probe_and_dump(pf[1], &fe, &p);
	fd_probe_release(&p);
	close(pf[1]);
	size = fe.pipe->size;
	fe.pipe->size = 4095;
	ck_assert_int_eq(fd_kind_for_file(&fe)->verify(&fe, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "pipe.size"), "%s", e.msg);
	fe.pipe->size = 1u << 30;
	ck_assert_int_eq(fd_kind_for_file(&fe)->verify(&fe, &e), -EPERM);
	ck_assert_msg(strstr(e.msg, "pipe-max-size"), "%s", e.msg);
	fe.pipe->size = size;
	fe.pipe->end = 9;
	ck_assert_int_eq(fd_kind_for_file(&fe)->verify(&fe, &e), -EINVAL);
	fe.pipe->end = PIPE_END__PIPE_WRITE;
	setenv("CKPT_FAULT", "pipe-verify", 1);
	ck_assert_int_eq(fd_kind_for_file(&fe)->verify(&fe, &e), -EIO);
	unsetenv("CKPT_FAULT");
	file_entry_free_fields(&fe);
}
END_TEST

/* A NETLINK_ROUTE socket: port id, groups (past 32 too), options; nothing read from it. */
START_TEST(test_netlink_roundtrip)
{
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1 /* RTMGRP_LINK */};
	struct sockaddr_nl got = {0};
	socklen_t sl = sizeof(sa);
	struct ckpt_error e = {};
	_cleanup_close_ int n = -1;
	int s, one = 1, v = 0, g33 = 33;
	uint32_t groups[4] = {0};
	struct fd_probe p;
	FileEntry fe;

	s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(setsockopt(s, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g33, sizeof(g33)), 0);
	ck_assert_int_eq(setsockopt(s, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one)), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	ck_assert_str_eq(probe_and_dump(s, &fe, &p)->name, "netlink socket");
	fd_probe_release(&p);
	ck_assert_int_eq(fe.type, FILE_TYPE__FILE_NETLINK_SK);
	ck_assert_uint_eq(fe.netlink_sk->protocol, NETLINK_ROUTE);
	ck_assert_uint_eq(fe.netlink_sk->portid, sa.nl_pid);
	ck_assert_uint_eq(fe.netlink_sk->n_groups, 2);
	ck_assert_uint_eq(fe.netlink_sk->groups[0], 1);
	ck_assert_uint_eq(fe.netlink_sk->groups[1], 1);
	ck_assert(fe.netlink_sk->ext_ack && !fe.netlink_sk->pktinfo);
	assert_packs(&fe);
	close(s); /* its port id is free again */

	ck_assert_msg(fd_kind_for_file(&fe)->verify(&fe, &e) == 0, "%s", e.msg);
	ck_assert_msg(fd_kind_for_file(&fe)->open(&fe, O_CLOEXEC, &n, &e) == 0, "%s", e.msg);
	sl = sizeof(got);
	ck_assert_int_eq(getsockname(n, (struct sockaddr *)&got, &sl), 0);
	ck_assert_uint_eq(got.nl_pid, sa.nl_pid);
	ck_assert_uint_eq(got.nl_groups, 1);
	sl = sizeof(groups);
	ck_assert_int_eq(getsockopt(n, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &sl), 0);
	ck_assert_uint_eq(groups[1], 1);
	sl = sizeof(v);
	ck_assert_int_eq(getsockopt(n, SOL_NETLINK, NETLINK_EXT_ACK, &v, &sl), 0);
	ck_assert_int_eq(v, 1);
	ck_assert(fcntl(n, F_GETFL) & O_NONBLOCK);
	file_entry_free_fields(&fe);
}
END_TEST

static Suite *kinds_suite(void)
{
	Suite *s = suite_create("kinds");
	TCase *tc;

	tc = tcase_create("reg");
	tcase_add_test(tc, test_reg_append_roundtrip);
	tcase_add_loop_test(tc, test_reg_flags, 0, ARRAY_SIZE(reg_flags));
	tcase_add_test(tc, test_reg_shrunk_refused);
	tcase_add_test(tc, test_reg_without_pidfd);
	tcase_add_test(tc, test_probe_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("dir-chr");
	tcase_add_test(tc, test_dir_roundtrip);
	tcase_add_test(tc, test_dir_replaced);
	tcase_add_loop_test(tc, test_chr_roundtrip, 0, ARRAY_SIZE(chr_devs));
	tcase_add_loop_test(tc, test_bad_entries, 0, ARRAY_SIZE(bad_entries));
	tcase_add_test(tc, test_registry_complete);
	tcase_add_test(tc, test_kind_for_file);
	tcase_add_test(tc, test_fault_open);
	suite_add_tcase(s, tc);

	tc = tcase_create("pipe");
	tcase_add_test(tc, test_pipe_roundtrip);
	tcase_add_test(tc, test_pipe_other_end_outside);
	tcase_add_test(tc, test_pipe_writer_gone);
	tcase_add_test(tc, test_fifo_roundtrip);
	tcase_add_test(tc, test_pipe_bad_entries);
	suite_add_tcase(s, tc);

	tc = tcase_create("ident");
	tcase_add_test(tc, test_ident_content);
	tcase_add_test(tc, test_ident_empty_and_fault);
	tcase_add_test(tc, test_ident_sum_taken_before);
	tcase_add_test(tc, test_file_made);
	suite_add_tcase(s, tc);

	tc = tcase_create("describe");
	tcase_add_test(tc, test_describe);
	tcase_add_test(tc, test_mqueue_roundtrip);
	tcase_add_test(tc, test_describe_without_copy);
	suite_add_tcase(s, tc);

	tc = tcase_create("netlink");
	tcase_add_test(tc, test_netlink_roundtrip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(kinds_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
