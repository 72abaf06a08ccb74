/* SPDX-License-Identifier: MIT */
/*
 * pipeline: numbered records through pipes and a FIFO, for test_pipes.sh.
 *
 *   pipeline tree LOG READY
 *       The root forks producer | filter | consumer itself: pipe A (default
 *       size, O_NONBLOCK at both ends: producer and filter poll) and pipe B
 *       (F_SETPIPE_SZ 256 KiB, blocking; the consumer's end is FD_CLOEXEC).
 *       The consumer is slow, so both pipes stay full. The root holds
 *       nothing and sleeps. READY holds the root's pid.
 *   pipeline fifo PATH LOG READY
 *       The root makes the FIFO PATH (mode 0640) and keeps it open O_RDWR;
 *       a writer child opens it O_WRONLY and writes records, a reader child
 *       opens it O_RDONLY and consumes them slowly (logging like consumer).
 *   pipeline producer | pipeline filter | pipeline consumer LOG READY
 *       The same roles on stdin/stdout (a shell makes the pipes); READY
 *       holds the consumer's parent's pid (the shell).
 *
 * Records: the producer writes "P%014lu\n" (16 bytes) for 0, 1, 2...; the
 * filter turns each into "F%014lu %015lu\n" (32 bytes: the number and a
 * hash of it); the consumer checks that each number is the next one and
 * the hash right, and logs "ok N CSUM" every 100 records (N records so far,
 * CSUM a running checksum of their bytes), or "FAIL ..." once and stops
 * checking. Each role also checks, every 100 records, that its pipe end
 * still has the flags and size it was given (logged as FAIL by the
 * consumer through its own checks, by the others on stderr + exit 3, which
 * stalls the pipeline). Every role logs "buffered N" from FIONREAD of its
 * input in its first lines, so the test can see the pipes hold data.
 */
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "wl.h"

#define REC_IN 16
#define REC_OUT 32
#define B_SIZE (256 * 1024)

static uint64_t hash(uint64_t n)
{
	n ^= n >> 33;
	n *= 0xff51afd7ed558ccdULL;
	n ^= n >> 33;
	return n % 1000000000000000ULL;
}

static void check_fd(int fd, int want_nonblock, int want_size, int want_cloexec, const char *who)
{
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);

	if (fl < 0 || !!(fl & O_NONBLOCK) != want_nonblock)
		wl_die("%s: fd %d: O_NONBLOCK is %d, want %d", who, fd,
		       fl >= 0 && (fl & O_NONBLOCK), want_nonblock);
	if (want_size && fcntl(fd, F_GETPIPE_SZ) != want_size)
		wl_die("%s: fd %d: pipe size %d, want %d", who, fd, fcntl(fd, F_GETPIPE_SZ),
		       want_size);
	if (want_cloexec >= 0 && (fdfl < 0 || !!(fdfl & FD_CLOEXEC) != want_cloexec))
		wl_die("%s: fd %d: FD_CLOEXEC is %d, want %d", who, fd, fdfl >= 0 && (fdfl & 1),
		       want_cloexec);
}

static void wait_fd(int fd, short ev)
{
	struct pollfd p = {.fd = fd, .events = ev};

	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
}

/* Write all of buf, waiting with poll on a non-blocking fd. */
static void put(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EAGAIN) {
			wait_fd(fd, POLLOUT);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			wl_die("write: %s", n < 0 ? strerror(errno) : "0");
		buf += n;
		len -= n;
	}
}

/* Read exactly len bytes (0 at a clean EOF), waiting with poll on a non-blocking fd. */
static int get(int fd, char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = read(fd, buf + off, len - off);

		if (n < 0 && errno == EAGAIN) {
			wait_fd(fd, POLLIN);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			wl_die("read: %s", strerror(errno));
		if (n == 0) {
			if (off)
				wl_die("EOF inside a record");
			return 0;
		}
		off += n;
	}
	return 1;
}

static void producer(int out, int nonblock)
{
	char rec[REC_IN + 1];

	for (uint64_t n = 0;; n++) {
		if (n % 100 == 0)
			check_fd(out, nonblock, 0, -1, "producer");
		snprintf(rec, sizeof(rec), "P%014llu\n", (unsigned long long)n);
		put(out, rec, REC_IN);
	}
}

static void filter(int in, int out, int nonblock_in)
{
	char rec[REC_IN + 1], o[REC_OUT + 1];

	for (uint64_t k = 0;; k++) {
		unsigned long long n;

		if (k % 100 == 0)
			check_fd(in, nonblock_in, 0, -1, "filter");
		if (!get(in, rec, REC_IN))
			exit(0);
		rec[REC_IN] = '\0';
		if (sscanf(rec, "P%14llu", &n) != 1)
			wl_die("filter: bad record '%.15s'", rec);
		snprintf(o, sizeof(o), "F%014llu %015llu\n", n, (unsigned long long)hash(n));
		put(out, o, REC_OUT);
	}
}

static void write_ready(const char *path, pid_t pid)
{
	char tmp[4200], buf[32];
	int fd, n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		wl_die("open %s: %s", tmp, strerror(errno));
	n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	wl_write_all(fd, buf, n);
	close(fd);
	if (rename(tmp, path) < 0)
		wl_die("rename %s: %s", path, strerror(errno));
}

/* want_size 0: not checked; cloexec -1: not checked */
static void consumer(int in, const char *logp, const char *ready, pid_t ready_pid, int want_size,
		     int cloexec)
{
	int log_fd = wl_open_log(logp), failed = 0;
	uint32_t csum = 0;
	char rec[REC_OUT + 1];

	for (uint64_t n = 0;; n++) {
		unsigned long long got, h;
		int avail = 0;

		if (n % 100 == 0 && n) {
			if (!failed)
				wl_log(log_fd, "ok %llu %08x", (unsigned long long)n, csum);
			check_fd(in, 0, want_size, cloexec, "consumer");
		}
		if (n < 400 && n % 100 == 0) {
			ioctl(in, FIONREAD, &avail);
			wl_log(log_fd, "buffered %d", avail);
		}
		if (n == 300 && ready)
			write_ready(ready, ready_pid);
		if (!get(in, rec, REC_OUT)) {
			wl_log(log_fd, "FAIL EOF after %llu records", (unsigned long long)n);
			exit(1);
		}
		rec[REC_OUT] = '\0';
		if (!failed &&
		    (sscanf(rec, "F%14llu %15llu", &got, &h) != 2 || got != n || h != hash(n))) {
			wl_log(log_fd, "FAIL record %llu: got '%.31s'", (unsigned long long)n, rec);
			failed = 1;
		}
		for (int i = 0; i < REC_OUT; i++)
			csum = csum * 31 + (unsigned char)rec[i];
		/* about 4000 records/s: far slower than the producer, so the pipes stay full */
		if (n % 10 == 9)
			wl_sleep(0.002);
	}
}

static pid_t spawn(void)
{
	pid_t p = fork();

	if (p < 0)
		wl_die("fork: %s", strerror(errno));
	return p;
}

static void root_wait(void)
{
	/* nothing to do but be the parent; a dead child ends the workload */
	for (;;) {
		int st;
		pid_t p = wait(&st);

		if (p > 0)
			wl_die("child %d exited (status %#x)", (int)p, st);
		if (p < 0 && errno != EINTR)
			exit(0);
	}
}

static void move_to(int fd, int to)
{
	if (fd != to) {
		if (dup2(fd, to) < 0)
			wl_die("dup2: %s", strerror(errno));
		close(fd);
	}
}

static void run_tree(const char *logp, const char *ready)
{
	int a[2], b[2];

	if (pipe2(a, O_NONBLOCK) < 0 || pipe(b) < 0)
		wl_die("pipe: %s", strerror(errno));
	if (fcntl(b[1], F_SETPIPE_SZ, B_SIZE) != B_SIZE)
		wl_die("F_SETPIPE_SZ: %s", strerror(errno));
	if (!spawn()) {
		close(a[0]), close(b[0]), close(b[1]);
		move_to(a[1], 5);
		producer(5, 1);
	}
	if (!spawn()) {
		close(a[1]), close(b[0]);
		move_to(a[0], 5);
		move_to(b[1], 6);
		filter(5, 6, 1);
	}
	if (!spawn()) {
		close(a[0]), close(a[1]), close(b[1]);
		move_to(b[0], 7);
		fcntl(7, F_SETFD, FD_CLOEXEC);
		consumer(7, logp, ready, getppid(), B_SIZE, 1);
	}
	close(a[0]), close(a[1]), close(b[0]), close(b[1]);
	root_wait();
}

static void run_fifo(const char *path, const char *logp, const char *ready)
{
	int rw;

	unlink(path);
	if (mkfifo(path, 0640) < 0 || chmod(path, 0640) < 0)
		wl_die("mkfifo %s: %s", path, strerror(errno));
	rw = open(path, O_RDWR);
	if (rw < 0)
		wl_die("open %s O_RDWR: %s", path, strerror(errno));
	move_to(rw, 9);
	if (!spawn()) {
		int fd = open(path, O_WRONLY);

		if (fd < 0)
			wl_die("open %s O_WRONLY: %s", path, strerror(errno));
		move_to(fd, 5);
		/* records of the filter's format straight away: the reader checks them */
		for (uint64_t n = 0;; n++) {
			char o[REC_OUT + 1];

			snprintf(o, sizeof(o), "F%014llu %015llu\n", (unsigned long long)n,
				 (unsigned long long)hash(n));
			put(5, o, REC_OUT);
		}
	}
	if (!spawn()) {
		int fd = open(path, O_RDONLY);

		if (fd < 0)
			wl_die("open %s O_RDONLY: %s", path, strerror(errno));
		move_to(fd, 5);
		consumer(5, logp, ready, getppid(), 0, 0);
	}
	root_wait();
}

int main(int argc, char **argv)
{
	if (argc < 2)
		wl_die("usage: pipeline tree LOG READY | fifo PATH LOG READY | producer | filter | "
		       "consumer LOG READY");
	wl_close_inherited();
	signal(SIGPIPE, SIG_DFL);
	if (!strcmp(argv[1], "tree") && argc == 4)
		run_tree(argv[2], argv[3]);
	else if (!strcmp(argv[1], "fifo") && argc == 5)
		run_fifo(argv[2], argv[3], argv[4]);
	else if (!strcmp(argv[1], "producer"))
		producer(1, 0);
	else if (!strcmp(argv[1], "filter"))
		filter(0, 1, 0);
	else if (!strcmp(argv[1], "consumer") && argc == 4)
		consumer(0, argv[2], argv[3], getppid(), 0, -1);
	wl_die("pipeline: bad arguments");
}
