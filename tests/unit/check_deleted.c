/* SPDX-License-Identifier: MIT */
/*
 * The "deleted file" fd kind (lib/kinds/deleted.c): deleted files still open
 * are dumped with their content and recreated unnamed in their directory.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "kinds/fd_kind.h"

static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check-deleted-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_tmpdir(void)
{
	if (tmpdir[0])
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Entries of tmpdir (besides . and ..). */
static int count_entries(void)
{
	_cleanup_closedir_ DIR *d = opendir(tmpdir);
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	return n;
}

/* A file holding content, opened with flags, then unlinked; its path in buf. */
static int make_deleted(const char *name, const char *content, int flags, char *buf, size_t len)
{
	int fd;

	snprintf(buf, len, "%s/%s", tmpdir, name);
	fd = open(buf, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	fd = open(buf, flags | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(unlink(buf), 0);
	return fd;
}

/*
 * The content the way images of earlier versions hold it, in the entry
 * (the dump now saves it in the shared memory object of the file,
 * dump/dump_shmem.c): read through fd, as those dumps did.
 */
static void give_content(int fd, FileEntry *fe)
{
	struct stat st;
	char self[64];
	int rfd;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	rfd = open(self, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(rfd, 0);
	ck_assert_int_eq(fstat(rfd, &st), 0);
	fe->content.data = malloc(st.st_size ? st.st_size : 1);
	ck_assert_ptr_nonnull(fe->content.data);
	ck_assert_int_eq(pread(rfd, fe->content.data, st.st_size, 0), st.st_size);
	close(rfd);
	fe->content.len = st.st_size;
	fe->has_content = true;
	fe->ident->has_content_crc32c = true;
	fe->ident->content_crc32c = crc32c(0, fe->content.data, fe->content.len);
}

/* Probe and dump fd of ourselves (the kind alone: ident, no content). */
static int dump_ident(int fd, FileEntry *fe, const struct fd_kind **ret, struct ckpt_error *e)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	struct fd_probe p;
	int r;

	ck_assert_int_ge(pidfd, 0);
	ck_assert_msg(fd_probe_fill(pidfd, getpid(), fd, &p, e) == 0, "%s", e->msg);
	*ret = fd_kind_find(&p);
	ck_assert_ptr_nonnull(*ret);
	ck_assert_str_eq((*ret)->name, "deleted file");
	file_entry__init(fe);
	fe->id = 5;
	r = (*ret)->dump(&p, fe, e);
	fd_probe_release(&p);
	if (r == 0) {
		ck_assert(!fe->has_content && !fe->content.data);
		ck_assert_ptr_nonnull(fe->ident);
		ck_assert(!fe->ident->has_content_crc32c);
	}
	return r;
}

/* The same, with the content in the entry as an earlier version's image has it. */
static int dump_fd(int fd, FileEntry *fe, const struct fd_kind **ret, struct ckpt_error *e)
{
	int r = dump_ident(fd, fe, ret, e);

	if (r == 0)
		give_content(fd, fe);
	return r;
}

static const char content[] = "hello, deleted world\n0123456789\n";

START_TEST(test_roundtrip)
{
	_cleanup_close_ int fd = -1, nfd = -1;
	const struct fd_kind *k;
	struct ckpt_error e = {};
	FileEntry fe, *back;
	char path[256], link[512], self[64], buf[128];
	size_t len;
	struct stat st;

	make_tmpdir();
	fd = make_deleted("gone file.bin", content, O_RDWR | O_APPEND, path, sizeof(path));
	ck_assert_int_eq(lseek(fd, 7, SEEK_SET), 7);
	ck_assert_int_eq(fchown(fd, 1234, 5678), 0);
	ck_assert_msg(dump_fd(fd, &fe, &k, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(fe.path, path);
	ck_assert(fe.has_deleted && fe.deleted);
	ck_assert(fe.has_content);
	ck_assert_uint_eq(fe.content.len, strlen(content));
	ck_assert(!memcmp(fe.content.data, content, strlen(content)));
	ck_assert(fe.ident && fe.ident->has_content_crc32c);
	ck_assert_uint_eq(fe.ident->content_crc32c, crc32c(0, content, strlen(content)));
	ck_assert_uint_eq(fe.pos, 7);
	ck_assert(fe.flags & O_APPEND);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 7); /* pread: the position stayed */

	/* through the image format and back */
	len = file_entry__get_packed_size(&fe);
	_cleanup_free_ uint8_t *packed = malloc(len);
	ck_assert_uint_eq(file_entry__pack(&fe, packed), len);
	back = file_entry__unpack(NULL, len, packed);
	ck_assert_ptr_nonnull(back);
	ck_assert_ptr_eq(fd_kind_for_file(back), k);

	ck_assert_msg(k->verify(back, &e) == 0, "%s", e.msg);
	ck_assert_msg(k->open(back, O_CLOEXEC, &nfd, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(count_entries(), 0);
	ck_assert_int_eq(fcntl(nfd, F_GETFL) & (O_ACCMODE | O_APPEND), O_RDWR | O_APPEND);
	ck_assert(fcntl(nfd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(lseek(nfd, 0, SEEK_CUR), 7);
	ck_assert_int_eq(fstat(nfd, &st), 0);
	ck_assert_uint_eq(st.st_nlink, 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	ck_assert_uint_eq(st.st_uid, 1234);
	ck_assert_uint_eq(st.st_gid, 5678);
	ck_assert_int_eq(pread(nfd, buf, sizeof(buf), 0), (ssize_t)strlen(content));
	ck_assert(!memcmp(buf, content, strlen(content)));
	snprintf(self, sizeof(self), "/proc/self/fd/%d", nfd);
	ck_assert_int_gt(readlink(self, link, sizeof(link) - 1), 0);
	ck_assert_msg(!strncmp(link, tmpdir, strlen(tmpdir)) && strstr(link, "/#") &&
			  strstr(link, " (deleted)"),
		      "link %s", link);

	/* a restored deleted file dumps again (its link is now DIR/#N (deleted)) */
	FileEntry fe2;
	const struct fd_kind *k2;
	ck_assert_msg(dump_ident(nfd, &fe2, &k2, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(fe2.ident->size, strlen(content));
	file_entry_free_fields(&fe2);
	ck_assert(!fe2.has_content && !fe2.content.data);

	file_entry__free_unpacked(back, NULL);
	file_entry_free_fields(&fe);
	remove_tmpdir();
}
END_TEST

/* Write-only and O_PATH descriptions: the content is read through /proc. */
START_TEST(test_unreadable_descriptions)
{
	static const int flags[] = {O_WRONLY, O_PATH};
	const struct fd_kind *k;
	struct ckpt_error e = {};
	char path[256];

	make_tmpdir();
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		_cleanup_close_ int fd = -1, nfd = -1;
		FileEntry fe;

		fd = make_deleted("wo", content, flags[i], path, sizeof(path));
		ck_assert_msg(dump_fd(fd, &fe, &k, &e) == 0, "%s", e.msg);
		ck_assert_uint_eq(fe.content.len, strlen(content));
		ck_assert_msg(k->open(&fe, O_CLOEXEC, &nfd, &e) == 0, "%s", e.msg);
		ck_assert_int_eq(fcntl(nfd, F_GETFL) & (O_ACCMODE | O_PATH), flags[i]);
		file_entry_free_fields(&fe);
	}
	ck_assert_int_eq(count_entries(), 0);
	remove_tmpdir();
}
END_TEST

/* A file the program made with O_TMPFILE itself ("DIR/#N (deleted)"). */
START_TEST(test_program_tmpfile)
{
	_cleanup_close_ int fd = -1, nfd = -1;
	const struct fd_kind *k;
	struct ckpt_error e = {};
	FileEntry fe;
	char buf[64];

	make_tmpdir();
	fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "abc", 3), 3);
	ck_assert_msg(dump_fd(fd, &fe, &k, &e) == 0, "%s", e.msg);
	ck_assert_msg(k->open(&fe, O_CLOEXEC, &nfd, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(lseek(nfd, 0, SEEK_CUR), 3);
	ck_assert_int_eq(pread(nfd, buf, sizeof(buf), 0), 3);
	ck_assert_int_eq(write(nfd, "d", 1), 1);
	file_entry_free_fields(&fe);
	ck_assert_int_eq(count_entries(), 0);
	remove_tmpdir();
}
END_TEST

/*
 * Two descriptions of one deleted inode, and one bigger than an image
 * record: the kind saves what identifies them; their content goes to the
 * file's shared memory object (test_deleted_big: one file, two descriptions).
 */
START_TEST(test_two_descriptions_and_big)
{
	_cleanup_close_ int fd = -1, other = -1, big = -1;
	const struct fd_kind *k;
	struct ckpt_error e = {};
	char path[256], self[64];
	FileEntry fe;

	make_tmpdir();
	fd = make_deleted("twice", content, O_RDWR, path, sizeof(path));
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	other = open(self, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(other, 0);
	ck_assert_msg(dump_ident(fd, &fe, &k, &e) == 0, "%s", e.msg);
	ck_assert_str_eq(fe.path, path);
	ck_assert_uint_eq(fe.ident->size, strlen(content));
	file_entry_free_fields(&fe);
	ck_assert_msg(dump_ident(other, &fe, &k, &e) == 0, "%s", e.msg);
	file_entry_free_fields(&fe);

	big = make_deleted("big", content, O_RDWR, path, sizeof(path));
	ck_assert_int_eq(ftruncate(big, 49 << 20), 0); /* sparse: cheap */
	ck_assert_msg(dump_ident(big, &fe, &k, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(fe.ident->size, 49 << 20);
	file_entry_free_fields(&fe);
	remove_tmpdir();
}
END_TEST

/* Images are not trusted: content, checksum, size and directory are checked. */
START_TEST(test_verify_refuses)
{
	_cleanup_close_ int fd = -1, nfd = -1;
	const struct fd_kind *k;
	struct ckpt_error e = {};
	char path[256], dir[300];
	FileEntry fe;

	make_tmpdir();
	snprintf(dir, sizeof(dir), "%s/sub", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	fd = make_deleted("sub/x", content, O_RDWR, path, sizeof(path));
	ck_assert_msg(dump_fd(fd, &fe, &k, &e) == 0, "%s", e.msg);

	fe.content.data[3] ^= 1;
	ck_assert_int_eq(k->verify(&fe, &e), -EBADMSG);
	ck_assert_msg(strstr(e.msg, path) && strstr(e.msg, "corrupt"), "%s", e.msg);
	ck_assert_int_eq(k->open(&fe, O_CLOEXEC, &nfd, &e), -EBADMSG);
	ck_assert_int_eq(nfd, -1);
	fe.content.data[3] ^= 1;

	fe.content.len--;
	ck_assert_int_eq(k->verify(&fe, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "ident.size"), "%s", e.msg);
	fe.content.len++;

	fe.has_content = false;
	ck_assert_int_eq(k->verify(&fe, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, "no saved content"), "%s", e.msg);
	fe.has_content = true;

	ck_assert_int_eq(rmdir(dir), 0);
	ck_assert_int_eq(k->verify(&fe, &e), -ENOENT);
	ck_assert_msg(strstr(e.msg, dir) && strstr(e.msg, "directory"), "%s", e.msg);
	ck_assert_int_eq(k->open(&fe, O_CLOEXEC, &nfd, &e), -ENOENT);

	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_msg(k->open(&fe, O_CLOEXEC, &nfd, &e) == 0, "%s", e.msg);
	file_entry_free_fields(&fe);
	remove_tmpdir();
}
END_TEST

START_TEST(test_faults)
{
	_cleanup_close_ int fd = -1, nfd = -1;
	const struct fd_kind *k;
	struct ckpt_error e = {};
	char path[256];
	FileEntry fe;

	make_tmpdir();
	fd = make_deleted("f", content, O_RDWR, path, sizeof(path));
	setenv("CKPT_FAULT", "deleted-dump", 1);
	ck_assert_int_eq(dump_fd(fd, &fe, &k, &e), -EIO);
	file_entry_free_fields(&fe);
	unsetenv("CKPT_FAULT");
	ck_assert_msg(dump_fd(fd, &fe, &k, &e) == 0, "%s", e.msg);
	setenv("CKPT_FAULT", "deleted-verify", 1);
	ck_assert_int_eq(k->verify(&fe, &e), -EIO);
	ck_assert(strstr(e.msg, "deleted-verify"));
	setenv("CKPT_FAULT", "deleted-open", 1);
	ck_assert_int_eq(k->open(&fe, O_CLOEXEC, &nfd, &e), -EIO);
	ck_assert(strstr(e.msg, "deleted-open"));
	unsetenv("CKPT_FAULT");
	file_entry_free_fields(&fe);
	remove_tmpdir();
}
END_TEST

static Suite *deleted_suite(void)
{
	Suite *s = suite_create("deleted");
	TCase *tc = tcase_create("deleted");

	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_unreadable_descriptions);
	tcase_add_test(tc, test_program_tmpfile);
	tcase_add_test(tc, test_two_descriptions_and_big);
	tcase_add_test(tc, test_verify_refuses);
	tcase_add_test(tc, test_faults);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(deleted_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
