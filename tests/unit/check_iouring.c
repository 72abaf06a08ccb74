/* SPDX-License-Identifier: MIT */
/*
 * io_uring instances (lib/kinds/iouring.c): a ring of this very process
 * (raw syscalls) with NOPs gone through it, a CQE not reaped, an SQE
 * prepared and not submitted, a registered file and eventfd is dumped, the
 * entry packed, verified and made again (open_in_task, install): the new
 * ring's indices and arrays are the old one's. Plus the refusals (a request
 * in flight, a completion skipped) and forged entries.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "proc.h"
#include "kinds/fd_kind.h"
#include "kinds/file_util.h"
#include "kinds/iouring.h"

struct ring {
	int fd;
	struct io_uring_params p;
	char *rings;
	struct io_uring_sqe *sqes;
	size_t rings_len;
};

static void ring_make(struct ring *r, unsigned entries)
{
	memset(r, 0, sizeof(*r));
	r->fd = (int)syscall(__NR_io_uring_setup, entries, &r->p);
	ck_assert_int_ge(r->fd, 0);
	r->rings_len = r->p.sq_off.array + r->p.sq_entries * 4;
	r->rings =
	    mmap(NULL, r->rings_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, IORING_OFF_SQ_RING);
	r->sqes = mmap(NULL, r->p.sq_entries * 64, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
		       IORING_OFF_SQES);
	ck_assert_ptr_ne(r->rings, MAP_FAILED);
	ck_assert_ptr_ne(r->sqes, MAP_FAILED);
}

static uint32_t *word(struct ring *r, uint32_t off)
{
	return (uint32_t *)(r->rings + off);
}

/* Queue one SQE (not submitted): opcode, fd, user_data. */
static void ring_prep(struct ring *r, uint8_t op, int fd, uint64_t data, void *buf, unsigned len)
{
	uint32_t tail = *word(r, r->p.sq_off.tail), idx = tail & (r->p.sq_entries - 1);
	struct io_uring_sqe *s = &r->sqes[idx];

	memset(s, 0, sizeof(*s));
	s->opcode = op;
	s->fd = fd;
	s->user_data = data;
	s->addr = (uint64_t)(uintptr_t)buf;
	s->len = len;
	word(r, r->p.sq_off.array)[idx] = idx;
	__atomic_store_n(word(r, r->p.sq_off.tail), tail + 1, __ATOMIC_RELEASE);
}

static void ring_submit(struct ring *r, unsigned n)
{
	ck_assert_int_eq(syscall(__NR_io_uring_enter, r->fd, n, n, IORING_ENTER_GETEVENTS, NULL, 0),
			 n);
}

static int dump_ring(int fd, FileEntry **ret, struct ckpt_error *e)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	const struct fd_kind *k;
	struct fd_probe p;
	FileEntry fe;
	uint8_t *buf;
	size_t len;
	int r;

	ck_assert_msg(fd_probe_fill(pidfd, getpid(), fd, &p, e) == 0, "%s", e->msg);
	k = fd_kind_find(&p);
	ck_assert_ptr_nonnull(k);
	ck_assert_str_eq(k->name, "io_uring instance");
	file_entry__init(&fe);
	fe.id = 7;
	r = k->dump(&p, &fe, e);
	fd_probe_release(&p);
	if (r < 0) {
		file_entry_free_fields(&fe);
		return r;
	}
	len = file_entry__get_packed_size(&fe);
	buf = malloc(len);
	ck_assert_uint_eq(file_entry__pack(&fe, buf), len);
	file_entry_free_fields(&fe);
	*ret = file_entry__unpack(NULL, len, buf);
	free(buf);
	ck_assert_ptr_nonnull(*ret);
	ck_assert_ptr_eq(fd_kind_for_file(*ret), k);
	return 0;
}

static uint64_t info(int fd, const char *key)
{
	char path[64], *text = NULL;
	struct ckpt_error e = {};
	uint64_t v = ~0ULL;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	ck_assert_int_eq(proc_read_file(path, &text, NULL, &e), 0);
	ck_assert_msg(fdk_fdinfo_u64(text, key, 10, &v), "%s: %s", key, text);
	free(text);
	return v;
}

START_TEST(test_roundtrip)
{
	static const char *keys[] = {"SqHead:", "SqTail:",	 "CachedSqHead:", "CqHead:",
				     "CqTail:", "CachedCqTail:", "UserFiles:"};
	char tmpl[] = "/tmp/check_iouring.XXXXXX";
	const struct fd_kind *k;
	struct ckpt_error e = {};
	struct ring r, n;
	FileEntry *fe = NULL;
	int file = mkstemp(tmpl), ev = eventfd(0, EFD_CLOEXEC), nfd = -1;
	char *text = NULL, path[64];

	ck_assert_int_ge(file, 0);
	unlink(tmpl);
	ring_make(&r, 8);
	ck_assert_int_eq(syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_FILES, &file, 1), 0);
	ck_assert_int_eq(syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_EVENTFD, &ev, 1), 0);
	/* 21 NOPs through it, all reaped but the last; one more prepared */
	for (unsigned i = 0; i < 21; i++) {
		ring_prep(&r, IORING_OP_NOP, -1, 100 + i, NULL, 0);
		ring_submit(&r, 1);
		if (i < 20)
			(*word(&r, r.p.cq_off.head))++;
	}
	ring_prep(&r, IORING_OP_NOP, -1, 4242, NULL, 0);

	ck_assert_msg(dump_ring(r.fd, &fe, &e) == 0, "%s", e.msg);
	k = fd_kind_for_file(fe);
	ck_assert_uint_eq(fe->io_uring->sq_head, 21);
	ck_assert_uint_eq(fe->io_uring->sq_tail, 22);
	ck_assert_uint_eq(fe->io_uring->cq_head, 20);
	ck_assert_uint_eq(fe->io_uring->cq_tail, 21);
	ck_assert_int_eq(fe->io_uring->setup_flags, 0);
	ck_assert_uint_eq(fe->io_uring->n_files, 1);
	ck_assert_int_eq(fe->io_uring->files[0], file);
	ck_assert_int_eq(fe->io_uring->eventfd, ev);
	ck_assert_msg(k->verify(fe, &e) == 0, "%s", e.msg);
	ck_assert_msg(k->open_in_task(fe, getpid(), &nfd, &e) == 0, "%s", e.msg);
	ck_assert_msg(k->install(fe, nfd, getpid(), &e) == 0, "%s", e.msg);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		ck_assert_uint_eq(info(nfd, keys[i]), info(r.fd, keys[i]));
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", nfd);
	ck_assert_int_eq(proc_read_file(path, &text, NULL, &e), 0);
	ck_assert_msg(strstr(text, "user_data:120, res:0") && strstr(text, "user_data:4242"),
		      "the CQE not reaped and the SQE prepared: %s", text);
	free(text);
	/* an eventfd is registered on the new ring (EBUSY) */
	ck_assert_int_eq(syscall(__NR_io_uring_register, nfd, IORING_REGISTER_EVENTFD, NULL, 1),
			 -1);
	ck_assert_int_eq(errno, EBUSY);
	/* the new ring goes on: the prepared SQE, then the next */
	n = r;
	n.fd = nfd;
	n.rings =
	    mmap(NULL, r.rings_len, PROT_READ | PROT_WRITE, MAP_SHARED, nfd, IORING_OFF_SQ_RING);
	n.sqes = mmap(NULL, 8 * 64, PROT_READ | PROT_WRITE, MAP_SHARED, nfd, IORING_OFF_SQES);
	ck_assert_ptr_ne(n.rings, MAP_FAILED);
	ring_submit(&n, 1);
	ck_assert_uint_eq(*word(&n, n.p.sq_off.head), 22);
	ck_assert_uint_eq(*word(&n, n.p.cq_off.tail), 22);
	file_entry__free_unpacked(fe, NULL);
}
END_TEST

START_TEST(test_inflight)
{
	struct ckpt_error e = {};
	FileEntry *fe = NULL;
	char buf[16];
	int pfd[2];
	struct ring r;

	ring_make(&r, 4);
	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	ring_prep(&r, IORING_OP_READ, pfd[0], 1, buf, sizeof(buf));
	ck_assert_int_eq(syscall(__NR_io_uring_enter, r.fd, 1, 0, 0, NULL, 0), 1);
	ck_assert_int_eq(dump_ring(r.fd, &fe, &e), -EBUSY);
	ck_assert_msg(strstr(e.msg, "1 request(s) in flight") && strstr(e.msg, "op=22"), "%s",
		      e.msg);
}
END_TEST

/* a request completed without a CQE cannot be told from one in flight: refused */
START_TEST(test_skip_success)
{
	struct ckpt_error e = {};
	FileEntry *fe = NULL;
	struct ring r;

	ring_make(&r, 4);
	ring_prep(&r, IORING_OP_NOP, -1, 1, NULL, 0);
	r.sqes[0].flags = IOSQE_CQE_SKIP_SUCCESS;
	ck_assert_int_eq(syscall(__NR_io_uring_enter, r.fd, 1, 0, 0, NULL, 0), 1);
	ck_assert_uint_eq(*word(&r, r.p.sq_off.head), 1);
	ck_assert_uint_eq(*word(&r, r.p.cq_off.tail), 0);
	ck_assert_int_eq(dump_ring(r.fd, &fe, &e), -EBUSY);
	ck_assert_msg(strstr(e.msg, "1 request(s) submitted and 0 completion(s)"), "%s", e.msg);
}
END_TEST

START_TEST(test_forged)
{
	struct ckpt_error e = {};
	FileEntry *fe = NULL;
	struct ring r;

	ring_make(&r, 4);
	ck_assert_msg(dump_ring(r.fd, &fe, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(iouring_check(fe, &e), 0);
#define FORGE(field, value)                                                                        \
	do {                                                                                       \
		typeof(fe->io_uring->field) old = fe->io_uring->field;                             \
		fe->io_uring->field = value;                                                       \
		ck_assert_int_eq(iouring_check(fe, &e), -EINVAL);                                  \
		fe->io_uring->field = old;                                                         \
	} while (0)
	FORGE(sq_entries, 3);
	FORGE(sq_entries, 65536);
	FORGE(cq_entries, 2);
	FORGE(setup_flags, 1u << 1); /* SQPOLL */
	FORGE(sq_head, 5);	     /* not the CQ tail */
	FORGE(sq_tail, 100);
	FORGE(cqes.len, 3);
	FORGE(sqes.len, 64);
	fe->io_uring->cq_tail = fe->io_uring->sq_head = IOURING_ADVANCE_MAX + 1;
	fe->io_uring->cq_head = fe->io_uring->sq_tail = IOURING_ADVANCE_MAX + 1;
	ck_assert_int_eq(iouring_check(fe, &e), -EINVAL);
	file_entry__free_unpacked(fe, NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("iouring");
	TCase *tc = tcase_create("iouring");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_inflight);
	tcase_add_test(tc, test_skip_success);
	tcase_add_test(tc, test_forged);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
