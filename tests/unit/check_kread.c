/* SPDX-License-Identifier: MIT */
/*
 * The kernel's BTF (lib/kbtf.c) and the kernel reader (lib/kread.c): member
 * offsets through nested and anonymous structs, bit fields and missing
 * names refused, damaged BTF files refused by name; the reader's view of
 * socketpair queues this process fills (plain sends, a send with fds, an
 * out-of-band byte pending and taken, partly read skbs, a queue longer than
 * one program's chunk), and a wrong inode; io_uring rings: setup flags,
 * also those no call shows, an async eventfd, a provided buffer ring, a
 * ring fd registered by the thread; an inet socket's urgent mark (pending,
 * taken, passed), reuseport program and IPv6 flow labels; the Landlock
 * domains of a process's threads (none, one thread's, every thread's); the
 * count of a process's address space changes; the offsets kept for the
 * boot; the open file descriptions of an fd table; the areas that may
 * have a NUMA policy.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/io_uring.h>
#include <linux/landlock.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/sem.h>

#include "cleanup.h"
#include "kbtf.h"
#include "kread.h"
#include "kread_offsets.h"

START_TEST(test_btf_members)
{
	_cleanup_(kbtf_freep) struct kbtf *b = NULL;
	struct ckpt_error e = {0};
	uint32_t off, size, q_off, qlen_off, id;

	ck_assert_msg(kbtf_load(NULL, &b, &e) == 0, "%s", e.msg);
	/* a nested path is the sum of its steps */
	ck_assert_int_eq(kbtf_member(b, "sock", "sk_receive_queue", &q_off, &size, &e), 0);
	ck_assert_uint_eq(size, 24);
	ck_assert_int_eq(kbtf_member(b, "sk_buff_head", "qlen", &qlen_off, &size, &e), 0);
	ck_assert_uint_eq(size, 4);
	ck_assert_int_eq(kbtf_member(b, "sock", "sk_receive_queue.qlen", &off, &size, &e), 0);
	ck_assert_uint_eq(off, q_off + qlen_off);
	/* sk_buff.next lies in an anonymous struct in an anonymous union */
	ck_assert_int_eq(kbtf_member(b, "sk_buff", "next", &off, &size, &e), 0);
	ck_assert_uint_eq(off, 0);
	ck_assert_uint_eq(size, 8);
	ck_assert_int_eq(kbtf_member(b, "sk_buff", "cb", &off, &size, &e), 0);
	ck_assert_uint_eq(size, 48);
	ck_assert_int_eq(kbtf_func_id(b, "bpf_iter_task_file", &id, &e), 0);
	ck_assert_uint_gt(id, 0);
	/* refusals name what is missing */
	ck_assert_int_eq(kbtf_member(b, "sk_buff", "no_such_member", &off, &size, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "no_such_member"));
	ck_assert_int_eq(kbtf_member(b, "no_such_struct_x", "a", &off, &size, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "no_such_struct_x"));
	ck_assert_int_eq(kbtf_func_id(b, "no_such_function_x", &id, &e), -ENOENT);
	/* sk_buff.cloned is a one-bit field */
	ck_assert_int_eq(kbtf_member(b, "sk_buff", "cloned", &off, &size, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "bit field"));
}
END_TEST

/* path: the first len bytes of the kernel's BTF, with byte at flip changed (-1: none). */
static void write_cut(const char *path, size_t len, long flip)
{
	_cleanup_close_ int in = open("/sys/kernel/btf/vmlinux", O_RDONLY);
	_cleanup_close_ int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	_cleanup_free_ char *buf = malloc(len);
	size_t got = 0;

	ck_assert_int_ge(in, 0);
	ck_assert_int_ge(out, 0);
	ck_assert_ptr_nonnull(buf);
	while (got < len) {
		ssize_t n = read(in, buf + got, len - got);

		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	if (flip >= 0)
		buf[flip] ^= 0x55;
	ck_assert_int_eq(write(out, buf, len), (ssize_t)len);
}

START_TEST(test_btf_damaged)
{
	char dir[] = "/tmp/check_kread.XXXXXX", path[64];
	struct kbtf *b = NULL;
	struct ckpt_error e = {0};

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/btf", dir);
	/* the header only: its sections lie beyond the file */
	write_cut(path, 24, -1);
	ck_assert_int_eq(kbtf_load(path, &b, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, path));
	/* a bad magic */
	write_cut(path, 4096, 0);
	ck_assert_int_eq(kbtf_load(path, &b, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "not BTF"));
	unlink(path);
	ck_assert_int_eq(kbtf_load(path, &b, &e), -ENOENT);
	ck_assert_ptr_null(b);
	rmdir(dir);
}
END_TEST

static void send_fd(int s, const char *data, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov = {.iov_base = (void *)data, .iov_len = strlen(data)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *h;

	mh.msg_control = c.buf;
	mh.msg_controllen = sizeof(c.buf);
	h = CMSG_FIRSTHDR(&mh);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	ck_assert_int_eq(sendmsg(s, &mh, 0), (ssize_t)strlen(data));
}

static struct kread_queue read_queue(struct kread **kr, int fd)
{
	struct kread_queue q = {0};
	struct ckpt_error e = {0};
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_msg(kread_unix_queue(kr, fd, st.st_ino, &q, &e) == 0, "%s", e.msg);
	return q;
}

START_TEST(test_unix_queue)
{
	_cleanup_(kread_freep) struct kread *kr = NULL;
	struct kread_queue q;
	struct ckpt_error e = {0};
	struct stat st;
	int sv[2];
	char buf[8];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* an empty queue */
	q = read_queue(&kr, sv[1]);
	ck_assert_uint_eq(q.n, 0);
	ck_assert(!q.oob);
	kread_queue_release(&q);
	ck_assert_int_eq(send(sv[0], "abc", 3, 0), 3);
	send_fd(sv[0], "de", 0);
	ck_assert_int_eq(send(sv[0], "x", 1, MSG_OOB), 1);
	ck_assert_int_eq(send(sv[0], "yz", 2, 0), 2);
	/* two bytes of "abc" read: one left in that skb */
	ck_assert_int_eq(read(sv[1], buf, 2), 2);
	q = read_queue(&kr, sv[1]);
	ck_assert_uint_eq(q.n, 4);
	ck_assert(q.oob);
	ck_assert_uint_eq(q.skbs[0].len, 1);
	ck_assert(!q.skbs[0].fds && !q.skbs[0].oob);
	ck_assert_uint_eq(q.skbs[1].len, 2);
	ck_assert(q.skbs[1].fds && !q.skbs[1].oob);
	ck_assert_uint_eq(q.skbs[2].len, 1);
	ck_assert(!q.skbs[2].fds && q.skbs[2].oob);
	ck_assert_uint_eq(q.skbs[3].len, 2);
	kread_queue_release(&q);
	/* the out-of-band byte taken: its skb stays, empty, no longer the mark */
	ck_assert_int_eq(recv(sv[1], buf, 1, MSG_OOB), 1);
	q = read_queue(&kr, sv[1]);
	ck_assert_uint_eq(q.n, 4);
	ck_assert(!q.oob);
	ck_assert_uint_eq(q.skbs[2].len, 0);
	ck_assert(!q.skbs[2].oob);
	kread_queue_release(&q);
	/* another socket's inode: not found */
	ck_assert_int_eq(fstat(sv[0], &st), 0);
	ck_assert_int_eq(kread_unix_queue(&kr, sv[1], st.st_ino, &q, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "not found"));
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* More skbs than one program reads: several programs, one queue, in order. */
START_TEST(test_unix_queue_chunks)
{
	const int n = 3 * KREAD_CHUNK + 5;
	struct kread_queue q;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	for (int i = 0; i < n; i++) {
		char b[8];
		int len = 1 + i % 5;

		memset(b, 'a', sizeof(b));
		ck_assert_int_eq(send(sv[0], b, len, MSG_DONTWAIT), len);
	}
	/* no kept reader: opened for this call only */
	q = read_queue(NULL, sv[1]);
	ck_assert_uint_eq(q.n, (size_t)n);
	for (int i = 0; i < n; i++)
		ck_assert_uint_eq(q.skbs[i].len, (uint32_t)(1 + i % 5));
	kread_queue_release(&q);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* A ring set up with flags; its fd. */
static int ring(uint32_t flags)
{
	struct io_uring_params p = {.flags = flags};

	return (int)syscall(__NR_io_uring_setup, 4, &p);
}

static int uring_register(int fd, unsigned op, void *arg, unsigned n)
{
	return (int)syscall(__NR_io_uring_register, fd, op, arg, n);
}

static struct kread_iouring read_ring(struct kread **kr, int fd)
{
	struct kread_iouring ki;
	struct ckpt_error e = {0};
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_msg(kread_iouring(kr, gettid(), fd, st.st_ino, &ki, &e) == 0, "%s", e.msg);
	return ki;
}

START_TEST(test_iouring)
{
	_cleanup_(kread_freep) struct kread *kr = NULL;
	const uint32_t no_sqarray = 1u << 16;
	const uint32_t want[] = {
	    0,
	    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQE32,
	    IORING_SETUP_SQE128 | no_sqarray,
	};
	struct ckpt_error e = {0};
	struct kread_iouring ki;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		_cleanup_close_ int fd = ring(want[i]);

		ck_assert_msg(fd >= 0, "io_uring_setup(%#x): %s", want[i], strerror(errno));
		ki = read_ring(&kr, fd);
		ck_assert_uint_eq(ki.flags, want[i]);
		ck_assert(!ki.eventfd && !ki.eventfd_async && !ki.provided_buffers && !ki.napi);
		ck_assert_uint_eq(ki.registered_rings, 0);
	}
	{
		_cleanup_close_ int fd = ring(0), efd = eventfd(0, EFD_CLOEXEC);
		struct io_uring_rsrc_update up = {.offset = -1U, .data = (uint64_t)fd};
		struct io_uring_buf_reg reg = {.ring_entries = 1, .bgid = 3};
		void *mem =
		    mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		ck_assert(fd >= 0 && efd >= 0 && mem != MAP_FAILED);
		_cleanup_close_ int decoy = eventfd(0, EFD_CLOEXEC);
		int found = -1;

		/* an async eventfd, found among two by its context */
		ck_assert_int_eq(uring_register(fd, IORING_REGISTER_EVENTFD_ASYNC, &efd, 1), 0);
		ki = read_ring(&kr, fd);
		ck_assert(ki.eventfd && ki.eventfd_async && ki.eventfd_ctx);
		ck_assert_int_ge(decoy, 0);
		ck_assert_msg(kread_fd_by_private(&kr, gettid(), ki.eventfd_ctx, &found, &e) == 0,
			      "%s", e.msg);
		ck_assert_int_eq(found, efd);
		ck_assert_int_eq(kread_fd_by_private(&kr, gettid(), 12345, &found, &e), -ENOENT);
		ck_assert_int_eq(uring_register(fd, IORING_UNREGISTER_EVENTFD, NULL, 0), 0);
		ck_assert_int_eq(uring_register(fd, IORING_REGISTER_EVENTFD, &efd, 1), 0);
		ki = read_ring(&kr, fd);
		ck_assert(ki.eventfd && !ki.eventfd_async);
		/* a provided buffer ring */
		reg.ring_addr = (uint64_t)(uintptr_t)mem;
		ck_assert_int_eq(uring_register(fd, IORING_REGISTER_PBUF_RING, &reg, 1), 0);
		ki = read_ring(&kr, fd);
		ck_assert(ki.provided_buffers);
		/* the ring's fd registered by this thread */
		ck_assert_int_eq(uring_register(fd, IORING_REGISTER_RING_FDS, &up, 1), 1);
		ki = read_ring(&kr, fd);
		ck_assert_uint_eq(ki.registered_rings, 1);
		up.data = 0; /* unregistered by the index the kernel gave (up.offset) */
		ck_assert_int_eq(uring_register(fd, IORING_UNREGISTER_RING_FDS, &up, 1), 1);
		ki = read_ring(&kr, fd);
		ck_assert_uint_eq(ki.registered_rings, 0);
		/* NAPI busy polling (IORING_REGISTER_NAPI, 27; not in these headers) */
		{
			struct {
				uint32_t busy_poll_to;
				uint8_t prefer_busy_poll, pad[3];
				uint64_t resv;
			} napi = {.busy_poll_to = 50};

			ck_assert(!ki.napi);
			ck_assert_int_eq(uring_register(fd, 27, &napi, 1), 0);
			ki = read_ring(&kr, fd);
			ck_assert(ki.napi);
		}
		munmap(mem, 4096);
	}
	/* not an io_uring fd of that inode */
	{
		_cleanup_close_ int fd = ring(0);

		ck_assert_int_eq(kread_iouring(&kr, gettid(), fd, 1, &ki, &e), -ENOENT);
	}
}
END_TEST

/* Collected or not: what the parent's wait did to a stopped child's report. */
START_TEST(test_stop_collected)
{
	_cleanup_(kread_freep) struct kread *kr = NULL;
	struct ckpt_error e = {0};
	siginfo_t si = {0};
	bool collected = true;
	pid_t kid = fork();
	int st;

	ck_assert_int_ge(kid, 0);
	if (kid == 0) {
		raise(SIGTSTP);
		_exit(0);
	}
	/* running or stopped with the report not collected: not collected */
	ck_assert_int_eq(waitid(P_PID, (id_t)kid, &si, WSTOPPED | WNOWAIT), 0);
	ck_assert_int_eq(si.si_code, CLD_STOPPED);
	ck_assert_msg(kread_stop_collected(&kr, kid, &collected, &e) == 0, "%s", e.msg);
	ck_assert(!collected);
	ck_assert_int_eq(waitpid(kid, &st, WUNTRACED), kid);
	ck_assert(WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP);
	ck_assert_int_eq(kread_stop_collected(&kr, kid, &collected, &e), 0);
	ck_assert(collected);
	/* continued: no longer stopped */
	ck_assert_int_eq(kill(kid, SIGCONT), 0);
	ck_assert_int_eq(waitpid(kid, &st, 0), kid);
	/* gone */
	ck_assert_int_lt(kread_stop_collected(&kr, kid, &collected, &e), 0);
	ck_assert_int_eq(kread_stop_collected(&kr, getpid(), &collected, &e), 0);
	ck_assert(!collected);
}
END_TEST

/* A thread of ours confined by Landlock (only the calling thread is). */
static int confine_self(void)
{
	struct landlock_ruleset_attr attr = {.handled_access_fs = LANDLOCK_ACCESS_FS_MAKE_FIFO};
	int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	int r;

	if (fd < 0)
		return -errno;
	r = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
		    syscall(SYS_landlock_restrict_self, fd, 0) == 0
		? 0
		: -errno;
	close(fd);
	return r;
}

static int landlock_pipe[2], landlock_go[2];

static void *landlock_thread(void *arg)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);

	(void)arg;
	if (confine_self() < 0)
		tid = -1;
	if (write(landlock_pipe[1], &tid, sizeof(tid)) != sizeof(tid))
		_exit(3);
	pause();
	return NULL;
}

/* Landlock's word of a cred's blob, from words read past the blob's end too:
 * a neighbour's memory that changed like a domain was taken for a second
 * candidate, and the calibration failed (about one dump in 90). */
START_TEST(test_landlock_word)
{
	const uint64_t k1 = 0xffff88816d7cede0ull, k2 = 0xffff88816d7ce720ull;
	uint64_t self[24] = {0}, a[24] = {0}, b[24] = {0};

	/* nothing that changes: none */
	ck_assert_int_eq(kread_landlock_word(self, a, b, 24), -1);
	a[0] = k1;
	b[0] = k2;
	ck_assert_int_eq(kread_landlock_word(self, a, b, 24), 0);
	/* past the blob: a neighbour's pointers, NULL when ours was read */
	a[22] = 0xffff8881313e4ea0ull;
	b[22] = 0xffff8881313e46c0ull;
	ck_assert_int_eq(kread_landlock_word(self, a, b, 24), 0);
	/* set in the unconfined thread, the same in both, or no kernel address */
	self[0] = k1;
	ck_assert_int_eq(kread_landlock_word(self, a, b, 22), -1);
	self[0] = 0;
	b[0] = k1;
	ck_assert_int_eq(kread_landlock_word(self, a, b, 22), -1);
	b[0] = 0x7f0000001000ull;
	ck_assert_int_eq(kread_landlock_word(self, a, b, 22), -1);
}
END_TEST

START_TEST(test_landlock)
{
	_cleanup_(kread_freep) struct kread *kr = NULL;
	struct kread_task_state ll;
	struct ckpt_error e = {0};
	pid_t kid, tid;
	char c = 1;

	ck_assert_int_eq(pipe(landlock_pipe), 0);
	ck_assert_int_eq(pipe(landlock_go), 0);
	kid = fork();
	ck_assert_int_ge(kid, 0);
	if (kid == 0) {
		pthread_t th;
		pid_t self = getpid();

		/* first unconfined, one thread confined, then both */
		if (read(landlock_go[0], &c, 1) != 1 ||
		    pthread_create(&th, NULL, landlock_thread, NULL) != 0)
			_exit(2);
		if (read(landlock_go[0], &c, 1) != 1)
			_exit(2);
		if (confine_self() < 0)
			self = -1;
		if (write(landlock_pipe[1], &self, sizeof(self)) != sizeof(self))
			_exit(3);
		pause();
		_exit(0);
	}
	ck_assert_msg(kread_task_state(&kr, kid, true, &ll, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(ll.threads, 1);
	ck_assert_uint_eq(ll.confined, 0);
	ck_assert_int_eq(write(landlock_go[1], &c, 1), 1);
	ck_assert_int_eq(read(landlock_pipe[0], &tid, sizeof(tid)), sizeof(tid));
	ck_assert_int_gt(tid, 0);
	ck_assert_msg(kread_task_state(&kr, kid, true, &ll, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(ll.threads, 2);
	ck_assert_uint_eq(ll.confined, 1);
	ck_assert_int_eq(ll.first_confined, tid);
	ck_assert_int_eq(write(landlock_go[1], &c, 1), 1);
	ck_assert_int_eq(read(landlock_pipe[0], &tid, sizeof(tid)), sizeof(tid));
	ck_assert_int_eq(tid, kid);
	ck_assert_msg(kread_task_state(&kr, kid, true, &ll, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(ll.confined, 2);
	ck_assert_int_eq(ll.first_confined, kid);
	/* ourselves: the calibration's thread confined itself and is gone */
	ck_assert_msg(kread_task_state(&kr, getpid(), true, &ll, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(ll.threads, 1);
	ck_assert_uint_eq(ll.confined, 0);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	/* gone */
	ck_assert_int_lt(kread_task_state(&kr, kid, true, &ll, &e), 0);
}
END_TEST

/* System V semaphore adjustments (SEM_UNDO): none, then one after a semop with it. */
START_TEST(test_sem_undo)
{
	_cleanup_(kread_freep) struct kread *kr = NULL;
	struct sembuf take = {.sem_num = 0, .sem_op = -1, .sem_flg = SEM_UNDO | IPC_NOWAIT};
	struct kread_task_state ks;
	struct ckpt_error e = {0};
	int id = semget(IPC_PRIVATE, 1, 0600);
	int sync[2];
	pid_t kid;
	char c = 0;

	ck_assert_int_ge(id, 0);
	ck_assert_int_eq(semctl(id, 0, SETVAL, 1), 0);
	ck_assert_int_eq(pipe(sync), 0);
	kid = fork();
	ck_assert_int_ge(kid, 0);
	if (kid == 0) {
		if (read(sync[0], &c, 1) != 1 || semop(id, &take, 1) < 0)
			_exit(2);
		if (write(sync[1], &c, 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	ck_assert_msg(kread_task_state(&kr, kid, false, &ks, &e) == 0, "%s", e.msg);
	ck_assert(ks.sem_undo_known);
	ck_assert(!ks.sem_undo);
	ck_assert_uint_eq(ks.confined, 0);
	ck_assert_int_eq(write(sync[1], &c, 1), 1);
	/* its answer, then the semaphore taken */
	for (int i = 0; i < 200 && semctl(id, 0, GETVAL) != 0; i++)
		usleep(10000);
	ck_assert_int_eq(semctl(id, 0, GETVAL), 0);
	ck_assert_msg(kread_task_state(&kr, kid, false, &ks, &e) == 0, "%s", e.msg);
	ck_assert(ks.sem_undo);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	/* its exit gave the semaphore back: what a killing dump would do */
	ck_assert_int_eq(semctl(id, 0, GETVAL), 1);
	semctl(id, 0, IPC_RMID);
}
END_TEST

/*
 * A child's count of address space changes: the same while it only reads,
 * writes and drops pages (no area changes), more once an area's flags or
 * protection change; the same mm throughout. A kernel thread has none.
 */
START_TEST(test_mm_seq)
{
	_cleanup_(kread_freep) struct kread *kr = NULL;
	struct kread_mm_seq a, b;
	struct ckpt_error e = {0};
	const size_t len = 64 * 4096;
	char *area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int go[2], done[2];
	pid_t kid;
	char c;

	ck_assert_ptr_ne(area, MAP_FAILED);
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(done), 0);
	kid = fork();
	ck_assert_int_ge(kid, 0);
	if (kid == 0) {
		/* one step a byte: 'w' write and drop pages, 'f' a flag, 'p' mprotect */
		close(go[1]);
		while (read(go[0], &c, 1) == 1) {
			if (c == 'w') {
				memset(area, 1, len);
				madvise(area, len / 2, MADV_DONTNEED);
				c = area[0] == 0 ? 'w' : 'x';
			} else if (c == 'f') {
				c = madvise(area, len, MADV_DONTDUMP) == 0 ? c : 'x';
			} else if (c == 'p') {
				c = mprotect(area, len, PROT_READ) == 0 ? c : 'x';
			}
			if (write(done[1], &c, 1) != 1)
				_exit(3);
		}
		_exit(0);
	}
	ck_assert_msg(kread_mm_seq(&kr, kid, &a, &e) == 0, "%s", e.msg);
	ck_assert_uint_ne(a.mm, 0);
	ck_assert_msg(kread_mm_seq(&kr, kid, &b, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(b.mm, a.mm);
	ck_assert_uint_eq(b.seq, a.seq);
	for (const char *step = "wfp"; *step; step++) {
		ck_assert_int_eq(write(go[1], step, 1), 1);
		ck_assert_int_eq(read(done[0], &c, 1), 1);
		ck_assert_int_eq(c, *step);
		ck_assert_msg(kread_mm_seq(&kr, kid, &b, &e) == 0, "%s", e.msg);
		ck_assert_uint_eq(b.mm, a.mm);
		if (*step == 'w')
			ck_assert_uint_eq(b.seq, a.seq); /* pages only, under the read lock */
		else
			ck_assert_uint_ne(b.seq, a.seq);
		a = b;
	}
	close(go[1]);
	ck_assert_int_eq(waitpid(kid, NULL, 0), kid);
	/* gone: nothing to read; kthreadd: no address space */
	ck_assert_int_eq(kread_mm_seq(&kr, kid, &b, &e), -ENOENT);
	ckpt_err_clear(&e);
	ck_assert_int_eq(kread_mm_seq(&kr, 2, &b, &e), -ESRCH);
	ck_assert_ptr_nonnull(strstr(e.msg, "pid 2 has no address space"));
	munmap(area, len);
}
END_TEST

/* Multicast groups joined, IPv4 and IPv6; none on a fresh socket. */
START_TEST(test_inet_mcast)
{
	_cleanup_(kread_freep) struct kread *kr = NULL;
	_cleanup_close_ int s4 = socket(AF_INET, SOCK_DGRAM, 0),
			    s6 = socket(AF_INET6, SOCK_DGRAM, 0);
	struct ip_mreqn m4 = {.imr_ifindex = 1};
	struct ipv6_mreq m6 = {.ipv6mr_interface = 1};
	struct ckpt_error e = {0};
	struct kread_inet_mc mc;
	struct stat st;

	ck_assert(s4 >= 0 && s6 >= 0);
	ck_assert_int_eq(fstat(s4, &st), 0);
	ck_assert_msg(kread_inet_mcast(&kr, s4, st.st_ino, &mc, &e) == 0, "%s", e.msg);
	ck_assert(!mc.joined && !mc.mc_index && !mc.mc_addr);
	ck_assert_int_eq(inet_pton(AF_INET, "239.1.2.3", &m4.imr_multiaddr), 1);
	ck_assert_int_eq(setsockopt(s4, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m4, sizeof(m4)), 0);
	ck_assert_int_eq(setsockopt(s4, IPPROTO_IP, IP_MULTICAST_IF, &m4, sizeof(m4)), 0);
	ck_assert_int_eq(kread_inet_mcast(&kr, s4, st.st_ino, &mc, &e), 0);
	ck_assert(mc.joined);
	ck_assert_int_eq(mc.mc_index, 1);
	ck_assert_int_eq(fstat(s6, &st), 0);
	ck_assert_int_eq(kread_inet_mcast(&kr, s6, st.st_ino, &mc, &e), 0);
	ck_assert(!mc.joined);
	ck_assert_int_eq(inet_pton(AF_INET6, "ff02::1234", &m6.ipv6mr_multiaddr), 1);
	ck_assert_int_eq(setsockopt(s6, IPPROTO_IPV6, IPV6_JOIN_GROUP, &m6, sizeof(m6)), 0);
	ck_assert_int_eq(kread_inet_mcast(&kr, s6, st.st_ino, &mc, &e), 0);
	ck_assert(mc.joined);
	/* the lists: an IPv4 group on the IPv6 socket too, newest first */
	{
		_cleanup_free_ struct kread_mcast *v = NULL;
		struct in_addr g;
		size_t n = 0;

		ck_assert_int_eq(setsockopt(s6, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m4, sizeof(m4)), 0);
		ck_assert_msg(kread_inet_mcast_list(&kr, s6, st.st_ino, &v, &n, &e) == 0, "%s",
			      e.msg);
		ck_assert_uint_eq(n, 2);
		ck_assert_int_eq(v[0].family, 4);
		memcpy(&g, v[0].group, 4);
		ck_assert_uint_eq(g.s_addr, m4.imr_multiaddr.s_addr);
		ck_assert_int_eq(v[0].ifindex, 1);
		ck_assert(!v[0].filtered);
		ck_assert_int_eq(v[1].family, 6);
		ck_assert(!memcmp(v[1].group, &m6.ipv6mr_multiaddr, 16));
		ck_assert_int_eq(v[1].ifindex, 1);
	}
}
END_TEST

/* A loopback TCP connection: *c the client, *a the accepted end. */
static void tcp_pair(int *c, int *a)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	_cleanup_close_ int l = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert(l >= 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	*c = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(*c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*a = accept(l, NULL, NULL);
	ck_assert(*a >= 0);
}

static struct kread_inet_state inet_state(struct kread **kr, int fd, bool tcp)
{
	struct kread_inet_state ks;
	struct ckpt_error e = {0};
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_msg(kread_inet_state(kr, fd, st.st_ino, tcp, &ks, &e) == 0, "%s", e.msg);
	return ks;
}

START_TEST(test_inet_state)
{
	_cleanup_(kread_freep) struct kread *kr = NULL;
	_cleanup_close_ int c = -1, a = -1, u6 = socket(AF_INET6, SOCK_DGRAM, 0),
			    r = socket(AF_INET, SOCK_STREAM, 0);
	struct kread_inet_state ks;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sock_filter ret0 = BPF_STMT(BPF_RET | BPF_K, 0);
	struct sock_fprog fp = {1, &ret0};
	struct {
		struct in6_addr dst;
		uint32_t label;
		uint8_t action, share;
		uint16_t flags, expires, linger;
		uint32_t pad;
	} fl = {.dst = IN6ADDR_LOOPBACK_INIT, .share = 1, .flags = 1};
	char buf[8];
	int one = 1;

	tcp_pair(&c, &a);
	ks = inet_state(&kr, a, true);
	ck_assert(!ks.urgent && !ks.reuseport_prog && !ks.flowlabels && !ks.anycast);
	/* "ab", urgent "!", "cd": pending, then taken (reads still stop at it), then passed */
	ck_assert_int_eq(send(c, "ab", 2, 0), 2);
	ck_assert_int_eq(send(c, "!", 1, MSG_OOB), 1);
	ck_assert_int_eq(send(c, "cd", 2, 0), 2);
	usleep(100000);
	ks = inet_state(&kr, a, true);
	ck_assert(ks.urgent);
	ck_assert_uint_eq(ks.urg_offset, 2);
	ck_assert_int_eq(recv(a, buf, 1, MSG_OOB), 1);
	ck_assert(inet_state(&kr, a, true).urgent);
	ck_assert_int_eq(recv(a, buf, sizeof(buf), 0), 2);
	ck_assert(inet_state(&kr, a, true).urgent);
	ck_assert_int_eq(recv(a, buf, sizeof(buf), 0), 2);
	ck_assert(!inet_state(&kr, a, true).urgent);
	/* a reuseport group's program */
	ck_assert_int_eq(setsockopt(r, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	ck_assert_int_eq(bind(r, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(r, 1), 0);
	ck_assert(!inet_state(&kr, r, true).reuseport_prog);
	ck_assert_int_eq(setsockopt(r, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fp, sizeof(fp)), 0);
	ck_assert(inet_state(&kr, r, true).reuseport_prog);
	/* an IPv6 flow label leased (IPV6_FL_A_GET, IPV6_FL_S_EXCL, IPV6_FL_F_CREATE);
	 * a label of its own per run: an exclusive one outlives its socket
	 * for 6 s, and a run within them failed with EEXIST */
	fl.label = htonl(0x10000u | ((uint32_t)getpid() & 0xffffu));
	ck_assert(u6 >= 0);
	ck_assert(!inet_state(&kr, u6, false).flowlabels);
	ck_assert_int_eq(setsockopt(u6, IPPROTO_IPV6, 32, &fl, sizeof(fl)), 0);
	ks = inet_state(&kr, u6, false);
	ck_assert(ks.flowlabels && !ks.urgent);
}
END_TEST

/*
 * The offsets kept for the boot (lib/kread_cache.c): the first open reads
 * the BTF and keeps them, the next reads the file (what it holds is what
 * the reader then uses); a file for another boot, damaged, cut short,
 * writable by others or not root's, or in a directory others may write,
 * is not used.
 */
static void expect_miss(const char *dir, const struct kread_cache_key *key, int code,
			const char *what)
{
	struct kread_offsets o;
	struct ckpt_error e = {0};

	ck_assert_int_eq(kread_cache_load(dir, key, &o, &e), code);
	ck_assert_msg(strstr(e.msg, what), "%s: not about %s", e.msg, what);
}

START_TEST(test_offsets_cache)
{
	_cleanup_(kread_freep) struct kread *plain = NULL, *first = NULL, *kept = NULL,
					    *again = NULL;
	char dir[] = "/tmp/check_kread.XXXXXX", path[PATH_MAX];
	struct kread_cache_key key, other;
	struct kread_offsets o, changed;
	struct ckpt_error e = {0};
	struct stat st;
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_msg(kread_cache_key_now(&key, &e) == 0, "%s", e.msg);
	kread_cache_path(dir, &key, path, sizeof(path));
	ck_assert_msg(kread_open_at(NULL, &plain, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(stat(path, &st), -1);
	/* the first open keeps what it read; the same offsets */
	ck_assert_msg(kread_open_at(dir, &first, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_mem_eq(kread_offsets_of(first), kread_offsets_of(plain), sizeof(o));
	ck_assert_msg(kread_cache_load(dir, &key, &o, &e) == 0, "%s", e.msg);
	ck_assert_mem_eq(&o, kread_offsets_of(plain), sizeof(o));
	/* the next open takes the file's (here changed on purpose), not the BTF's */
	changed = o;
	changed.mm.task_mm += 8;
	ck_assert_msg(kread_cache_store(dir, &key, &changed, &e) == 0, "%s", e.msg);
	ck_assert_msg(kread_open_at(dir, &kept, &e) == 0, "%s", e.msg);
	ck_assert_mem_eq(kread_offsets_of(kept), &changed, sizeof(o));
	/* another boot's (or kernel's, or build's) file: read again and replaced */
	other = key;
	other.boot_id[0] = other.boot_id[0] == 'a' ? 'b' : 'a';
	ck_assert_msg(kread_cache_store(dir, &other, &changed, &e) == 0, "%s", e.msg);
	expect_miss(dir, &key, -ESTALE, "another boot");
	ck_assert_msg(kread_open_at(dir, &again, &e) == 0, "%s", e.msg);
	ck_assert_mem_eq(kread_offsets_of(again), kread_offsets_of(plain), sizeof(o));
	ck_assert_int_eq(kread_cache_load(dir, &key, &o, &e), 0);
	/* damaged: a byte changed; cut short */
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "\x5a", 1, 60), 1);
	expect_miss(dir, &key, -EBADMSG, "damaged");
	ck_assert_int_eq(ftruncate(fd, 100), 0);
	expect_miss(dir, &key, -EINVAL, "100 bytes");
	close(fd);
	ck_assert_int_eq(kread_cache_store(dir, &key, &o, &e), 0);
	/* writable by others, not root's, in a directory others may write */
	ck_assert_int_eq(chmod(path, 0620), 0);
	expect_miss(dir, &key, -EPERM, "only root may write it");
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(chown(path, 65534, 65534), 0);
	expect_miss(dir, &key, -EPERM, "belongs to uid 65534");
	ck_assert_int_eq(chown(path, 0, 0), 0);
	ck_assert_int_eq(kread_cache_load(dir, &key, &o, &e), 0);
	ck_assert_int_eq(chmod(dir, 01777), 0);
	expect_miss(dir, &key, -EPERM, dir);
	ck_assert_int_ne(kread_cache_store(dir, &key, &o, &e), 0);
	ck_assert_int_eq(chmod(dir, 0700), 0);
	/* not there */
	ck_assert_int_eq(unlink(path), 0);
	expect_miss(dir, &key, -ENOENT, path);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/*
 * The fds of a table and their descriptions' addresses: a dup and a
 * forked child's copy share one, two opens of one file do not; every fd
 * is listed, in order.
 */
/* fd is in the list of n files. */
static bool lists_fd(const struct kread_file *v, size_t n, int fd)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].fd == fd)
			return true;
	return false;
}

/* One reader for two tasks, one after the other and back (its program is
 * loaded once and run over each: kread.c load_once). */
START_TEST(test_task_files)
{
	_cleanup_(kread_freep) struct kread *kr = NULL;
	_cleanup_free_ struct kread_file *mine = NULL, *kids = NULL, *again = NULL;
	int a = open("/dev/null", O_RDONLY), b = dup(a), c = open("/dev/null", O_RDONLY);
	uint64_t fa = 0, fb = 0, fc = 0, kid_a = 0;
	size_t n = 0, nk = 0, n2 = 0, listed = 0;
	struct ckpt_error e = {0};
	struct dirent *de;
	char path[64];
	DIR *d;
	int go[2], ready[2];
	pid_t kid;
	char x;

	ck_assert_int_ge(c, 0);
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(ready), 0);
	kid = fork();
	ck_assert_int_ge(kid, 0);
	if (kid == 0) {
		close(go[1]);
		/* an fd only the child has */
		if (dup2(go[0], 900) != 900 || write(ready[1], "r", 1) != 1 ||
		    read(go[0], &x, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	ck_assert_int_eq(read(ready[0], &x, 1), 1);
	close(ready[0]);
	ck_assert_msg(kread_task_files(&kr, (pid_t)syscall(SYS_gettid), &mine, &n, &e) == 0, "%s",
		      e.msg);
	for (size_t i = 0; i < n; i++) {
		ck_assert(i == 0 || mine[i].fd > mine[i - 1].fd);
		ck_assert_uint_ne(mine[i].file, 0);
		fa = mine[i].fd == a ? mine[i].file : fa;
		fb = mine[i].fd == b ? mine[i].file : fb;
		fc = mine[i].fd == c ? mine[i].file : fc;
	}
	ck_assert_uint_ne(fa, 0);
	ck_assert_uint_eq(fa, fb);
	ck_assert_uint_ne(fa, fc);
	ck_assert_msg(kread_task_files(&kr, kid, &kids, &nk, &e) == 0, "%s", e.msg);
	for (size_t i = 0; i < nk; i++)
		kid_a = kids[i].fd == a ? kids[i].file : kid_a;
	ck_assert_uint_eq(kid_a, fa);
	ck_assert(lists_fd(kids, nk, 900));
	ck_assert(!lists_fd(mine, n, 900));
	ck_assert_msg(kread_task_files(&kr, (pid_t)syscall(SYS_gettid), &again, &n2, &e) == 0, "%s",
		      e.msg);
	ck_assert(!lists_fd(again, n2, 900));
	ck_assert(lists_fd(again, n2, c));
	/* (ours change while the reader runs: its own fds) */
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)kid);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		listed += de->d_name[0] != '.';
	closedir(d);
	ck_assert_uint_eq(listed, nk);
	close(go[1]);
	ck_assert_int_eq(waitpid(kid, NULL, 0), kid);
	close(a);
	close(b);
	close(c);
}
END_TEST

/*
 * The areas with something of their own: one bound to a node (mbind), a
 * file mapping; not a plain anonymous area. More of them than one read of
 * the iterator holds: -E2BIG, at once (Linux 6.18's task_vma iterator
 * repeats itself once resumed).
 */
static uint32_t area_has(const struct kread_area *v, size_t n, const void *at)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].start == (uint64_t)(uintptr_t)at)
			return v[i].has;
	return 0;
}

START_TEST(test_task_areas)
{
	_cleanup_(kread_freep) struct kread *kr = NULL;
	_cleanup_free_ struct kread_area *v = NULL;
	_cleanup_close_ int fd = open("/proc/self/exe", O_RDONLY);
	unsigned long node0 = 1;
	struct ckpt_error e = {0};
	char *bound, *plain, *file, *many[3000];
	size_t n = 0;

	ck_assert_int_ge(fd, 0);
	bound = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(bound, MAP_FAILED);
	/* three areas: plain, bound, plain (a policy splits them) */
	plain = bound + 2 * 4096;
	bound += 4096;
	ck_assert_int_eq(syscall(SYS_mbind, bound, 4096, 2 /* MPOL_BIND */, &node0, 64, 0), 0);
	file = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	ck_assert_ptr_ne(file, MAP_FAILED);
	ck_assert_msg(kread_task_areas(&kr, getpid(), &v, &n, &e) == 0, "%s", e.msg);
	for (size_t i = 1; i < n; i++)
		ck_assert_uint_gt(v[i].start, v[i - 1].start);
	ck_assert_uint_eq(area_has(v, n, bound), KREAD_AREA_POLICY);
	ck_assert_uint_eq(area_has(v, n, plain), 0);
	ck_assert_uint_eq(area_has(v, n, file) & KREAD_AREA_FILE, KREAD_AREA_FILE);
	free(v);
	v = NULL;
	/* the same page of a file, 3,000 times: not merged, each listed */
	for (size_t i = 0; i < 3000; i++) {
		many[i] = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
		ck_assert_ptr_ne(many[i], MAP_FAILED);
	}
	ck_assert_int_eq(kread_task_areas(&kr, getpid(), &v, &n, &e), -E2BIG);
	ck_assert_ptr_nonnull(strstr(e.msg, "one read"));
	for (size_t i = 0; i < 3000; i++)
		munmap(many[i], 4096);
	/* a field the program could not read: the area is listed as such, even
	 * a plain one (its policy is then asked of the task, not taken for none) */
	kread_free(TAKE_PTR(kr));
	setenv("CKPT_FAULT", "kread-areas-unread", 1);
	ck_assert_msg(kread_task_areas(&kr, getpid(), &v, &n, &e) == 0, "%s", e.msg);
	unsetenv("CKPT_FAULT");
	ck_assert_uint_eq(area_has(v, n, plain), KREAD_AREA_UNREAD);
	ck_assert_uint_eq(area_has(v, n, bound) & KREAD_AREA_UNREAD, KREAD_AREA_UNREAD);
	munmap(bound - 4096, 3 * 4096);
	munmap(file, 4096);
}
END_TEST

static Suite *kread_suite(void)
{
	Suite *s = suite_create("kread");
	TCase *tc = tcase_create("kread");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_btf_members);
	tcase_add_test(tc, test_btf_damaged);
	tcase_add_test(tc, test_unix_queue);
	tcase_add_test(tc, test_unix_queue_chunks);
	tcase_add_test(tc, test_iouring);
	tcase_add_test(tc, test_stop_collected);
	tcase_add_test(tc, test_landlock_word);
	tcase_add_test(tc, test_landlock);
	tcase_add_test(tc, test_sem_undo);
	tcase_add_test(tc, test_mm_seq);
	tcase_add_test(tc, test_inet_mcast);
	tcase_add_test(tc, test_inet_state);
	tcase_add_test(tc, test_offsets_cache);
	tcase_add_test(tc, test_task_files);
	tcase_add_test(tc, test_task_areas);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(kread_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
