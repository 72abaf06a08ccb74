/* SPDX-License-Identifier: MIT */
/*
 * An io_uring workload (test_iouring): iouring LOG READY DIR MODE
 *
 * MODE "run" or "defer" (IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN): one
 * ring of 8 entries with a registered file (DIR/data), a registered buffer
 * and a registered eventfd. Each round writes a block with WRITE_FIXED
 * (registered file and buffer), reads it back with a plain READ into
 * another buffer, adds two NOPs and the NOP prepared (not submitted) at the
 * end of the previous round; it reaps every CQE but the last one, which it
 * reaps at the start of the next round. It checks everything itself: each
 * result, user_data, the data read, that the registered buffer still holds
 * the last round's block, at least one eventfd signal per round, and
 * that the kernel's ring indices are the ones it counted ("bad ..." lines
 * otherwise). A line "ok N sq S cq C" per round, then 50 ms of sleep with
 * an SQE prepared in the ring and a CQE not reaped.
 *
 * MODE "flags" (IORING_SETUP_SUBMIT_ALL | COOP_TASKRUN | TASKRUN_FLAG, which
 * no system call shows): as "run", and each round also submits a batch of
 * an SQE that fails at submission (a bad opcode) and a NOP, which
 * SUBMIT_ALL submits whole ("bad submitted past a failing SQE" otherwise),
 * and reaps both (-EINVAL, 0): 8 SQEs a round.
 *
 * MODE "evasync": as "run", with another eventfd opened before the ring's
 * (no call shows which one is registered), and the ring's registered with
 * IORING_REGISTER_EVENTFD_ASYNC, which no system call shows: the eventfd is
 * signalled only for completions from async context. Instead of the
 * once-a-round signal it checks each round that a NOP completed inline
 * leaves the eventfd at 0 and one forced async (IOSQE_ASYNC) signals it:
 * 8 SQEs a round.
 *
 * MODE "regring" (its ring fd registered, IORING_REGISTER_RING_FDS) and
 * "pbuf" (a provided buffer ring, IORING_REGISTER_PBUF_RING): the same
 * ring, then "ok N" lines from a plain loop (refused).
 *
 * MODE "block": the same ring, then a read of an empty pipe submitted
 * (in flight for ever), then "ok N" lines from a plain loop.
 */
#include <liburing.h>
#include <stdint.h>
#include <sys/eventfd.h>

#include "wl.h"

#define BS 4096
#define NBLK 16
#define PER_ROUND 5 /* the prepared NOP, write, read, two NOPs */

static int logfd;
static unsigned bad;

static void say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	wl_write_all(logfd, buf, (size_t)n);
}

static void check(bool ok, const char *what, long a, long b)
{
	if (!ok) {
		bad++;
		say("bad %s: %ld, expected %ld\n", what, a, b);
	}
}

static uint64_t tag(unsigned round, unsigned k)
{
	return ((uint64_t)round << 8) | k;
}

static void fill(char *buf, unsigned round)
{
	for (unsigned i = 0; i < BS; i++)
		buf[i] = (char)(round * 7 + i);
}

/*
 * SUBMIT_ALL: a batch goes on past an SQE that fails at submission. Both
 * CQEs reaped; the CQ is empty before and after.
 */
static void submit_all(struct io_uring *ring, unsigned round, uint64_t *submitted, uint64_t *posted)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int r;

	io_uring_prep_nop(sqe);
	sqe->opcode = 0xfe; /* no such operation: fails at submission */
	sqe->user_data = tag(round, 7);
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_nop(sqe);
	sqe->user_data = tag(round, 8);
	r = io_uring_submit_and_wait(ring, 2);
	check(r == 2, "submitted past a failing SQE (SUBMIT_ALL)", r, 2);
	*submitted += 2;
	for (int i = 0; i < 2; i++) {
		unsigned k;

		r = io_uring_wait_cqe(ring, &cqe);
		if (r < 0) {
			check(false, "wait_cqe (SUBMIT_ALL)", r, 0);
			return;
		}
		k = cqe->user_data & 0xff;
		check(cqe->user_data >> 8 == round && (k == 7 || k == 8), "user_data (SUBMIT_ALL)",
		      (long)cqe->user_data, (long)tag(round, 7));
		check(cqe->res == (k == 7 ? -EINVAL : 0), "res (SUBMIT_ALL)", cqe->res,
		      k == 7 ? -EINVAL : 0);
		io_uring_cqe_seen(ring, cqe);
		(*posted)++;
	}
}

/* One NOP, flags on its SQE: reaped; the eventfd's count after (0: none). */
static uint64_t nop_signals(struct io_uring *ring, int efd, uint64_t data, unsigned sqe_flags)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	uint64_t n = 0;
	int r;

	io_uring_prep_nop(sqe);
	sqe->flags |= sqe_flags;
	sqe->user_data = data;
	r = io_uring_submit_and_wait(ring, 1);
	check(r == 1, "submitted (EVENTFD_ASYNC)", r, 1);
	r = io_uring_wait_cqe(ring, &cqe);
	check(r == 0 && cqe->user_data == data, "NOP's CQE (EVENTFD_ASYNC)",
	      r ? r : (long)cqe->user_data, (long)data);
	if (!r)
		io_uring_cqe_seen(ring, cqe);
	if (read(efd, &n, sizeof(n)) != sizeof(n))
		n = 0;
	return n;
}

/*
 * EVENTFD_ASYNC: an inline completion does not signal the eventfd, an
 * async one (IOSQE_ASYNC, run by a worker) does. The CQ is empty before and
 * after; what the round's I/O signalled is drained first.
 */
static void eventfd_async(struct io_uring *ring, int efd, unsigned round, uint64_t *submitted,
			  uint64_t *posted)
{
	uint64_t n;

	if (read(efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		check(false, "eventfd read", errno, 0);
	n = nop_signals(ring, efd, tag(round, 7), 0);
	check(n == 0, "eventfd signalled by an inline completion (EVENTFD_ASYNC)", (long)n, 0);
	n = nop_signals(ring, efd, tag(round, 8), IOSQE_ASYNC);
	check(n >= 1, "eventfd not signalled by an async completion (EVENTFD_ASYNC)", (long)n, 1);
	*submitted += 2;
	*posted += 2;
}

int main(int argc, char **argv)
{
	static char wbuf[BS] __attribute__((aligned(4096))), rbuf[BS], path[4096];
	struct io_uring ring;
	struct io_uring_params p = {0};
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	struct iovec iov = {wbuf, BS};
	uint64_t posted = 0, submitted = 0, evcount;
	unsigned round;
	int data, efd, r, readyfd;

	if (argc != 5)
		wl_die("usage: iouring LOG READY DIR run|defer|flags|evasync|regring|pbuf|block");
	wl_close_inherited();
	logfd = wl_open_log(argv[1]);
	if (!strcmp(argv[4], "defer"))
		p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	if (!strcmp(argv[4], "flags"))
		p.flags =
		    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
	r = io_uring_queue_init_params(8, &ring, &p);
	if (r < 0)
		wl_die("io_uring_queue_init: %s", strerror(-r));
	snprintf(path, sizeof(path), "%s/data", argv[3]);
	data = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	/* evasync: another eventfd first, never registered (the dump must tell them apart) */
	if (!strcmp(argv[4], "evasync") && eventfd(0, EFD_CLOEXEC) < 0)
		wl_die("eventfd: %s", strerror(errno));
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (data < 0 || efd < 0)
		wl_die("open/eventfd: %s", strerror(errno));
	if ((r = io_uring_register_files(&ring, &data, 1)) < 0 ||
	    (r = io_uring_register_buffers(&ring, &iov, 1)) < 0 ||
	    (r = (!strcmp(argv[4], "evasync") ? io_uring_register_eventfd_async
					      : io_uring_register_eventfd)(&ring, efd)) < 0)
		wl_die("io_uring_register: %s", strerror(-r));
	if (!strcmp(argv[4], "regring") && (r = io_uring_register_ring_fd(&ring)) != 1)
		wl_die("io_uring_register_ring_fd: %d", r);
	if (!strcmp(argv[4], "pbuf")) {
		static char bufring[4096] __attribute__((aligned(4096)));
		struct io_uring_buf_reg reg = {
		    .ring_addr = (uintptr_t)bufring, .ring_entries = 8, .bgid = 1};

		if ((r = io_uring_register_buf_ring(&ring, &reg, 0)) < 0)
			wl_die("io_uring_register_buf_ring: %s", strerror(-r));
	}

	if (!strcmp(argv[4], "block")) {
		int pfd[2];

		if (pipe2(pfd, O_CLOEXEC) < 0)
			wl_die("pipe: %s", strerror(errno));
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_read(sqe, pfd[0], rbuf, 10, 0);
		sqe->user_data = 4242;
		io_uring_submit(&ring);
	}
	snprintf(path, sizeof(path), "%s.tmp", argv[2]);
	readyfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	dprintf(readyfd, "%d\n", getpid());
	close(readyfd);
	rename(path, argv[2]);
	if (!strcmp(argv[4], "block") || !strcmp(argv[4], "regring") || !strcmp(argv[4], "pbuf")) {
		for (round = 1;; round++) {
			say("ok %u\n", round);
			usleep(50000);
		}
	}

	/* the NOP each round leaves prepared for the next */
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_nop(sqe);
	sqe->user_data = tag(1, 0);
	for (round = 1;; round++) {
		unsigned blk = round % NBLK, got = 0;
		bool seen[PER_ROUND] = {0};

		/* the registered buffer still holds the last round's block */
		if (round > 1) {
			fill(rbuf, round - 1);
			check(!memcmp(rbuf, wbuf, BS), "registered buffer kept", wbuf[0], rbuf[0]);
		}
		fill(wbuf, round);
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_write_fixed(sqe, 0, wbuf, BS, (uint64_t)blk * BS, 0);
		sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_LINK;
		sqe->user_data = tag(round, 1);
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_read(sqe, data, rbuf, BS, (uint64_t)blk * BS);
		sqe->user_data = tag(round, 2);
		for (unsigned k = 3; k < PER_ROUND; k++) {
			sqe = io_uring_get_sqe(&ring);
			io_uring_prep_nop(sqe);
			sqe->user_data = tag(round, k);
		}
		r = io_uring_submit(&ring);
		check(r == PER_ROUND, "submitted", r, PER_ROUND);
		submitted += PER_ROUND;
		check(*ring.sq.khead == (uint32_t)submitted, "kernel sq head", *ring.sq.khead,
		      (long)(uint32_t)submitted);
		/* the CQE left from the last round first, then this round's but one */
		if (round > 1) {
			r = io_uring_peek_cqe(&ring, &cqe);
			check(r == 0 && cqe->user_data == tag(round - 1, 9), "kept CQE",
			      r ? r : (long)cqe->user_data, (long)tag(round - 1, 9));
			if (!r)
				io_uring_cqe_seen(&ring, cqe);
		}
		while (got < PER_ROUND) {
			unsigned k;

			r = io_uring_wait_cqe(&ring, &cqe);
			if (r < 0) {
				check(false, "wait_cqe", r, 0);
				break;
			}
			k = cqe->user_data & 0xff;
			check(cqe->user_data >> 8 == round && k < PER_ROUND && !seen[k],
			      "user_data", (long)cqe->user_data, (long)tag(round, k));
			if (k < PER_ROUND)
				seen[k] = true;
			check(cqe->res == (k == 1 || k == 2 ? BS : 0), "res", cqe->res,
			      k == 1 || k == 2 ? BS : 0);
			io_uring_cqe_seen(&ring, cqe);
			got++;
		}
		posted += PER_ROUND;
		check(!memcmp(rbuf, wbuf, BS), "data read back", rbuf[0], wbuf[0]);
		if (!strcmp(argv[4], "flags"))
			submit_all(&ring, round, &submitted, &posted);
		if (!strcmp(argv[4], "evasync"))
			eventfd_async(&ring, efd, round, &submitted, &posted);
		/* one more NOP whose CQE stays in the ring over the sleep */
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_nop(sqe);
		sqe->user_data = tag(round, 9);
		io_uring_submit_and_wait(&ring, 1);
		submitted++;
		posted++;
		evcount = 0;
		if (read(efd, &evcount, sizeof(evcount)) != sizeof(evcount))
			evcount = 0;
		/* signalled once per batch of CQEs posted, at least once a round */
		if (strcmp(argv[4], "evasync"))
			check(evcount >= 1, "eventfd count", (long)evcount, 1);
		check(*ring.cq.ktail == (uint32_t)posted, "kernel cq tail", *ring.cq.ktail,
		      (long)(uint32_t)posted);
		say("ok %u sq %u cq %u bad %u\n", round, *ring.sq.khead, *ring.cq.ktail, bad);
		/* prepared, not submitted: only the SQE array holds it */
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_nop(sqe);
		sqe->user_data = tag(round + 1, 0);
		usleep(50000);
	}
}
