/* SPDX-License-Identifier: MIT */
/*
 * Event fd kinds (lib/kinds/eventfd.c, signalfd.c, timerfd.c, epoll.c,
 * inotify.c): fds of this very process are probed and dumped, the entries
 * verified and opened again, and the new fds' fdinfo compared with the
 * old ones'. Plus the refusals and forged entries.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cleanup.h"
#include "proc.h"
#include "kinds/fd_kind.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

static int self_pidfd(void)
{
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

	ck_assert_int_ge(fd, 0);
	return fd;
}

/* Probe fd of ourselves and dump it; returns the dump's result. */
static int dump_fd(int fd, FileEntry *fe, const struct fd_kind **ret, struct ckpt_error *e)
{
	_cleanup_close_ int pidfd = self_pidfd();
	struct fd_probe p;
	int r;

	ck_assert_msg(fd_probe_fill(pidfd, getpid(), fd, &p, e) == 0, "%s", e->msg);
	*ret = fd_kind_find(&p);
	ck_assert_ptr_nonnull(*ret);
	file_entry__init(fe);
	fe->id = 3;
	r = (*ret)->dump(&p, fe, e);
	fd_probe_release(&p);
	return r;
}

/* Dump fd, pack and unpack the entry, verify and open it: the new fd. */
static int roundtrip(int fd, FileEntry **ret_fe)
{
	const struct fd_kind *k;
	struct ckpt_error e = {};
	FileEntry fe;
	size_t len;
	_cleanup_free_ uint8_t *buf = NULL;
	FileEntry *back;
	int nfd = -1;

	ck_assert_msg(dump_fd(fd, &fe, &k, &e) == 0, "%s", e.msg);
	len = file_entry__get_packed_size(&fe);
	buf = malloc(len);
	ck_assert_uint_eq(file_entry__pack(&fe, buf), len);
	file_entry_free_fields(&fe);
	back = file_entry__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(back);
	ck_assert_ptr_eq(fd_kind_for_file(back), k);
	ck_assert_msg(k->verify(back, &e) == 0, "%s", e.msg);
	ck_assert_msg(k->open(back, O_CLOEXEC, &nfd, &e) == 0, "%s", e.msg);
	ck_assert_int_ge(nfd, 0);
	ck_assert_int_ne(fcntl(nfd, F_GETFD) & FD_CLOEXEC, 0);
	*ret_fe = back;
	return nfd;
}

/* fdinfo of one of our fds, without its first lines (pos, flags, mnt_id, ino). */
static char *fdinfo_tail(int fd)
{
	struct ckpt_error e = {};
	char path[64], *text = NULL, *s;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	ck_assert_int_eq(proc_read_file(path, &text, NULL, &e), 0);
	s = strstr(text, "ino:");
	ck_assert_ptr_nonnull(s);
	s = strchr(s, '\n') + 1;
	memmove(text, s, strlen(s) + 1);
	return text;
}

static int fl(int fd)
{
	return fcntl(fd, F_GETFL) & O_NONBLOCK;
}

START_TEST(test_eventfd)
{
	_cleanup_close_ int a = eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC);
	_cleanup_close_ int b = eventfd(0, EFD_CLOEXEC), na = -1, nb = -1;
	uint64_t big = UINT64_C(0xfffffffffffffff0), v;
	FileEntry *fa, *fb;

	ck_assert_int_eq(write(b, &big, sizeof(big)), 8);
	na = roundtrip(a, &fa);
	nb = roundtrip(b, &fb);
	ck_assert(fa->eventfd->semaphore);
	ck_assert_uint_eq(fa->eventfd->count, 5);
	ck_assert_int_eq(fl(na), O_NONBLOCK);
	ck_assert_int_eq(fl(nb), 0);
	ck_assert_int_eq(read(na, &v, 8), 8);
	ck_assert_uint_eq(v, 1); /* semaphore */
	ck_assert_int_eq(read(nb, &v, 8), 8);
	ck_assert_uint_eq(v, big);
	/* forged: ~0 cannot be an eventfd counter */
	fb->eventfd->count = ~UINT64_C(0);
	{
		struct ckpt_error e = {};

		ck_assert_int_eq(fd_kind_for_file(fb)->verify(fb, &e), -EINVAL);
	}
	file_entry__free_unpacked(fa, NULL);
	file_entry__free_unpacked(fb, NULL);
}
END_TEST

START_TEST(test_signalfd)
{
	uint64_t raw = (1ULL << (SIGUSR1 - 1)) | (1ULL << 31) | (1ULL << 40);
	_cleanup_close_ int s =
	    (int)syscall(SYS_signalfd4, -1, &raw, 8, SFD_CLOEXEC | SFD_NONBLOCK);
	_cleanup_close_ int ns = -1;
	_cleanup_free_ char *before = NULL, *after = NULL;
	FileEntry *fe;

	ck_assert_int_ge(s, 0);
	ns = roundtrip(s, &fe);
	ck_assert_uint_eq(fe->signalfd->sigmask, raw);
	before = fdinfo_tail(s);
	after = fdinfo_tail(ns);
	ck_assert_str_eq(before, after);
	ck_assert_int_eq(fl(ns), O_NONBLOCK);
	file_entry__free_unpacked(fe, NULL);
}
END_TEST

START_TEST(test_timerfd)
{
	_cleanup_close_ int p = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	_cleanup_close_ int o = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC);
	_cleanup_close_ int a = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC);
	_cleanup_close_ int np = -1, no = -1, na = -1;
	struct itimerspec its = {.it_value = {0, 50000000}, .it_interval = {0, 50000000}}, cur;
	struct timespec now;
	uint64_t ticks = 3, v;
	FileEntry *fp, *fo, *fa;

	ck_assert_int_eq(timerfd_settime(p, 0, &its, NULL), 0);
	ck_assert_int_eq(ioctl(p, TFD_IOC_SET_TICKS, &ticks), 0);
	its = (struct itimerspec){.it_value = {1000, 0}};
	ck_assert_int_eq(timerfd_settime(o, 0, &its, NULL), 0);
	clock_gettime(CLOCK_REALTIME, &now);
	its = (struct itimerspec){.it_value = {now.tv_sec + 5000, 0}};
	ck_assert_int_eq(timerfd_settime(a, TFD_TIMER_ABSTIME, &its, NULL), 0);

	np = roundtrip(p, &fp);
	no = roundtrip(o, &fo);
	na = roundtrip(a, &fa);
	ck_assert_uint_eq(fp->timerfd->ticks, 3);
	ck_assert_uint_eq(fp->timerfd->interval_ns, 50000000);
	ck_assert_int_eq(read(np, &v, 8), 8);
	ck_assert_uint_ge(v, 3);
	ck_assert_int_eq(fl(np), O_NONBLOCK);
	ck_assert_int_eq(timerfd_gettime(no, &cur), 0);
	ck_assert_int_ge(cur.it_value.tv_sec, 998);
	ck_assert_int_le(cur.it_value.tv_sec, 1000);
	ck_assert_uint_eq(fo->timerfd->clockid, CLOCK_BOOTTIME);
	ck_assert(fa->timerfd->has_abs_value_ns);
	ck_assert_int_eq(timerfd_gettime(na, &cur), 0);
	clock_gettime(CLOCK_REALTIME, &now);
	/* the same wall-clock expiration, to the second */
	ck_assert_int_le(llabs((long long)(now.tv_sec + cur.it_value.tv_sec) - its.it_value.tv_sec),
			 1);
	file_entry__free_unpacked(fp, NULL);
	file_entry__free_unpacked(fo, NULL);
	file_entry__free_unpacked(fa, NULL);
}
END_TEST

START_TEST(test_epoll)
{
	_cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC), ev = eventfd(1, EFD_CLOEXEC);
	_cleanup_close_ int ev2 = eventfd(0, EFD_CLOEXEC), nep = -1, x = -1, y = -1;
	struct epoll_event e1 = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 0x55};
	struct epoll_event e2 = {.events = EPOLLIN | EPOLLET, .data.u64 = 0x1234567890ULL}, got;
	_cleanup_free_ char *before = NULL, *after = NULL;
	const struct fd_kind *k;
	struct ckpt_error e = {};
	FileEntry *fe, fe2;

	ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e1), 0);
	ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, ev2, &e2), 0);
	ck_assert_int_eq(epoll_wait(ep, &got, 1, 0), 1); /* fires the one-shot item */
	ck_assert_uint_eq(got.data.u64, 0x55);
	nep = roundtrip(ep, &fe);
	ck_assert_uint_eq(fe->epoll->n_targets, 2);
	ck_assert_uint_eq(fe->epoll->owner_pid, (uint32_t)getpid());
	/* not the owner: nothing registered */
	ck_assert_int_eq(fd_kind_for_file(fe)->install(fe, nep, getpid() + 1, &e), 0);
	ck_assert_int_eq(epoll_wait(nep, &got, 1, 0), 0);
	ck_assert_msg(fd_kind_for_file(fe)->install(fe, nep, getpid(), &e) == 0, "%s", e.msg);
	before = fdinfo_tail(ep);
	after = fdinfo_tail(nep);
	ck_assert_str_eq(before, after);
	ck_assert_int_eq(epoll_wait(nep, &got, 1, 0), 0); /* still disarmed */
	ck_assert_int_eq(epoll_ctl(nep, EPOLL_CTL_MOD, ev, &e1), 0);
	ck_assert_int_eq(epoll_wait(nep, &got, 1, 0), 1);
	ck_assert_uint_eq(got.data.u64, 0x55);
	file_entry__free_unpacked(fe, NULL);

	/* a registration whose fd was closed, the file kept under another number */
	x = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, x, &e2), 0);
	y = dup(x);
	close(x);
	ck_assert_int_eq(dump_fd(ep, &fe2, &k, &e), -EOPNOTSUPP);
	ck_assert_msg(strstr(e.msg, "closed") != NULL, "%s", e.msg);
	file_entry_free_fields(&fe2);
	/* the number now names another file */
	x = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_eq(dump_fd(ep, &fe2, &k, &e), -EOPNOTSUPP);
	ck_assert_msg(strstr(e.msg, "another file") != NULL, "%s", e.msg);
	file_entry_free_fields(&fe2);
}
END_TEST

START_TEST(test_inotify)
{
	char dir[64], a[96], b[96];
	_cleanup_close_ int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK), nin = -1;
	_cleanup_free_ char *before = NULL, *after = NULL;
	const struct fd_kind *k;
	struct ckpt_error e = {};
	int wa, wb, wd;
	FileEntry *fe, fe2;

	snprintf(dir, sizeof(dir), "/tmp/check-evfd-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	ck_assert_int_eq(mkdir(a, 0755), 0);
	ck_assert_int_eq(mkdir(b, 0755), 0);
	wa = inotify_add_watch(in, a, IN_CREATE);
	wb = inotify_add_watch(in, b, IN_CREATE | IN_DELETE);
	ck_assert_int_eq(inotify_rm_watch(in, wa), 0);
	wd = inotify_add_watch(in, dir, IN_MODIFY | IN_ONLYDIR);
	ck_assert_int_eq(wb, 2);
	ck_assert_int_eq(wd, 3);
	/* the IN_IGNORED of wd 1, not read yet: the program's to read first */
	{
		char ev[256];
		FileEntry q;

		ck_assert_int_eq(dump_fd(in, &q, &k, &e), -EAGAIN);
		ck_assert_msg(
		    strstr(e.msg, "inotify instance: it has 16 bytes of events not read yet"), "%s",
		    e.msg);
		file_entry_free_fields(&q);
		ck_assert_int_eq(read(in, ev, sizeof(ev)), 16);
		e = (struct ckpt_error){0};
	}
	nin = roundtrip(in, &fe);
	ck_assert_uint_eq(fe->inotify->n_watches, 2);
	ck_assert_str_eq(fe->inotify->watches[0]->path, b);
	ck_assert_str_eq(fe->inotify->watches[1]->path, dir);
	ck_assert(!fe->inotify->has_queued_bytes);
	before = fdinfo_tail(in);
	after = fdinfo_tail(nin);
	ck_assert_str_eq(before, after);
	/* nothing queued by the placeholders */
	{
		char buf[256];

		ck_assert_int_eq(read(nin, buf, sizeof(buf)), -1);
		ck_assert_int_eq(errno, EAGAIN);
	}
	/* forged: watches out of wd order */
	fe->inotify->watches[1]->wd = 1;
	ck_assert_int_eq(fd_kind_for_file(fe)->verify(fe, &e), -EINVAL);
	file_entry__free_unpacked(fe, NULL);

	/* a watched directory that is gone but still watched through an open fd */
	{
		_cleanup_close_ int keep = open(b, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		ck_assert_int_ge(keep, 0);

		ck_assert_int_eq(rmdir(b), 0);
		ck_assert_int_eq(dump_fd(in, &fe2, &k, &e), -EOPNOTSUPP);
		ck_assert_msg(strstr(e.msg, "watch 2") && strstr(e.msg, "no path"), "%s", e.msg);
		file_entry_free_fields(&fe2);
	}
	rmdir(a);
	rmdir(dir);
}
END_TEST

static Suite *evfd_suite(void)
{
	Suite *s = suite_create("evfd");
	TCase *tc = tcase_create("kinds");

	tcase_add_test(tc, test_eventfd);
	tcase_add_test(tc, test_signalfd);
	tcase_add_test(tc, test_timerfd);
	tcase_add_test(tc, test_epoll);
	tcase_add_test(tc, test_inotify);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(evfd_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
