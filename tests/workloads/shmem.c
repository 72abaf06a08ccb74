/* SPDX-License-Identifier: MIT */
/*
 * shmem DIR: a parent and its child sharing memory every way a program can:
 * anonymous MAP_SHARED memory, a memfd (mapped, and held as fd 20 with
 * seals and a file position), a System V segment, a POSIX shm object in
 * /dev/shm (shm_open), a file on disk (DIR/disk.bin) and a POSIX semaphore
 * (sem_open: /dev/shm/sem.NAME).
 * Each object holds a ping-pong pair of counters: the parent advances "p"
 * when the child has caught up, the child advances "c" when it is behind,
 * so they keep moving only while both see the same memory. The semaphore
 * is posted by the parent and waited for by the child.
 *
 * The parent also holds a 64 GiB MAP_NORESERVE area with a few pages
 * written, and four small areas with madvise state (MADV_DONTFORK,
 * MADV_WIPEONFORK, MADV_HUGEPAGE, MADV_NOHUGEPAGE); their addresses go to
 * DIR/areas. Every 50 ms the parent checks all of it (memfd name, seals and
 * position, the SysV segment by its saved id, the area patterns) and logs
 * "iter N ok ANON MEMFD SYSV SHM DISK SEM child PID" (the child's counters)
 * to DIR/log.txt,
 * or "FAIL ..." and exits.
 */
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "wl.h"

#define MEMFD_FD 20
#define MEMFD_NAME "ckpt-shm-test"
#define MEMFD_POS 1234
#define MEMFD_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)
#define SYSV_SIZE 10000
#define BIG_SIZE (64ULL << 30)
#define NOBJ 5
#define PG 4096

struct pp {
	volatile uint64_t p, c;
};

struct state {
	struct pp *obj[NOBJ]; /* anon, memfd, sysv, /dev/shm, DIR/disk.bin */
	sem_t *sem;
	int shmid;
	char *big;
	char *adv[4];
	int log;
	char failure[256];
};

static const char *const obj_names[NOBJ] = {"anon", "memfd", "sysv", "shm", "disk"};

static void fail(struct state *s, const char *fmt, ...)
{
	va_list ap;

	if (s->failure[0])
		return;
	va_start(ap, fmt);
	vsnprintf(s->failure, sizeof(s->failure), fmt, ap);
	va_end(ap);
}

static char pattern(uint64_t i)
{
	return (char)('A' + i % 23);
}

static void *map_fd(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	return p;
}

static void setup(struct state *s, const char *dir)
{
	char name[64], path[4000];
	int fd;

	s->obj[0] = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s->obj[0] == MAP_FAILED)
		wl_die("mmap anon shared: %s", strerror(errno));

	fd = memfd_create(MEMFD_NAME, MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, 64 << 10) < 0)
		wl_die("memfd: %s", strerror(errno));
	s->obj[1] = map_fd(fd, 64 << 10);
	memset((char *)s->obj[1] + 8192, 'M', 100);
	if (fcntl(fd, F_ADD_SEALS, MEMFD_SEALS) < 0 || dup2(fd, MEMFD_FD) < 0 ||
	    lseek(MEMFD_FD, MEMFD_POS, SEEK_SET) != MEMFD_POS)
		wl_die("memfd seals/dup/lseek: %s", strerror(errno));
	close(fd);

	s->shmid = shmget(IPC_PRIVATE, SYSV_SIZE, IPC_CREAT | 0600);
	if (s->shmid < 0)
		wl_die("shmget: %s", strerror(errno));
	s->obj[2] = shmat(s->shmid, NULL, 0);
	if (s->obj[2] == (void *)-1)
		wl_die("shmat: %s", strerror(errno));

	snprintf(name, sizeof(name), "/ckpt-shm-test-%d", getpid());
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, 8192) < 0)
		wl_die("shm_open %s: %s", name, strerror(errno));
	s->obj[3] = map_fd(fd, 8192);
	close(fd);

	snprintf(path, sizeof(path), "%s/disk.bin", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, 8192) < 0)
		wl_die("%s: %s", path, strerror(errno));
	s->obj[4] = map_fd(fd, 8192);
	close(fd);

	snprintf(name, sizeof(name), "/ckpt-sem-test-%d", getpid());
	s->sem = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
	if (s->sem == SEM_FAILED)
		wl_die("sem_open %s: %s", name, strerror(errno));

	s->big = mmap(NULL, BIG_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->big == MAP_FAILED)
		wl_die("mmap 64 GiB: %s", strerror(errno));
	for (uint64_t i = 0; i < 8; i++)
		s->big[i * (BIG_SIZE / 8) + 100] = pattern(i);

	static const int advice[4] = {MADV_DONTFORK, MADV_WIPEONFORK, MADV_HUGEPAGE,
				      MADV_NOHUGEPAGE};
	for (int i = 0; i < 4; i++) {
		/* 4 MiB each (2 MiB aligned inside) so that the areas stay apart */
		s->adv[i] =
		    mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (s->adv[i] == MAP_FAILED || madvise(s->adv[i], 4 << 20, advice[i]) < 0)
			wl_die("madvise %d: %s", i, strerror(errno));
		s->adv[i][0] = pattern((uint64_t)i);
	}
	snprintf(path, sizeof(path), "%s/areas", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	wl_log(fd, "big %lx\ndontfork %lx\nwipeonfork %lx\nhugepage %lx\nnohugepage %lx\nshmid %d",
	       (unsigned long)s->big, (unsigned long)s->adv[0], (unsigned long)s->adv[1],
	       (unsigned long)s->adv[2], (unsigned long)s->adv[3], s->shmid);
	close(fd);
}

static void child_loop(struct state *s)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		for (int i = 0; i < NOBJ; i++)
			if (s->obj[i]->c < s->obj[i]->p)
				s->obj[i]->c++;
		while (sem_trywait(s->sem) == 0)
			s->obj[0][1].c++; /* semaphore count, seen by the parent */
		wl_sleep(0.02);
	}
}

static void check(struct state *s)
{
	char link[256];
	struct shmid_ds ds;
	ssize_t n;
	int seals;

	n = readlink("/proc/self/fd/20", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	if (strcmp(link, "/memfd:" MEMFD_NAME " (deleted)"))
		fail(s, "fd 20 is '%s'", link);
	seals = fcntl(MEMFD_FD, F_GET_SEALS);
	if (seals != MEMFD_SEALS)
		fail(s, "memfd seals %#x, want %#x", seals, MEMFD_SEALS);
	if (lseek(MEMFD_FD, 0, SEEK_CUR) != MEMFD_POS)
		fail(s, "memfd position %lld", (long long)lseek(MEMFD_FD, 0, SEEK_CUR));
	if (pread(MEMFD_FD, link, 4, 8192) != 4 || memcmp(link, "MMMM", 4))
		fail(s, "memfd content at 8192 is not MMMM (read through the fd)");
	if (shmctl(s->shmid, IPC_STAT, &ds) < 0)
		fail(s, "IPC_STAT of shmid %d: %s", s->shmid, strerror(errno));
	else if (ds.shm_segsz != SYSV_SIZE || ds.shm_nattch != 2)
		fail(s, "shmid %d: %zu bytes, nattch %lu", s->shmid, (size_t)ds.shm_segsz,
		     (unsigned long)ds.shm_nattch);
	for (uint64_t i = 0; i < 8; i++)
		if (s->big[i * (BIG_SIZE / 8) + 100] != pattern(i))
			fail(s, "64 GiB area: page %lu lost its content", (unsigned long)i);
	for (int i = 0; i < 4; i++)
		if (s->adv[i][0] != pattern((uint64_t)i))
			fail(s, "madvise area %d lost its content", i);
}

int main(int argc, char **argv)
{
	static struct state s;
	uint64_t sem_posted = 0;
	char path[4000];
	pid_t child;

	if (argc < 2)
		wl_die("usage: shmem DIR");
	wl_close_inherited();
	snprintf(path, sizeof(path), "%s/log.txt", argv[1]);
	s.log = wl_open_log(path);
	setup(&s, argv[1]);
	child = fork();
	if (child < 0)
		wl_die("fork: %s", strerror(errno));
	if (child == 0)
		child_loop(&s);
	for (uint64_t iter = 0;; iter++) {
		for (int i = 0; i < NOBJ; i++)
			if (s.obj[i]->p == s.obj[i]->c)
				s.obj[i]->p++;
			else if (s.obj[i]->p != s.obj[i]->c + 1)
				fail(&s, "%s counters p %lu c %lu", obj_names[i],
				     (unsigned long)s.obj[i]->p, (unsigned long)s.obj[i]->c);
		if (s.obj[0][1].c + 10 > sem_posted && sem_post(s.sem) == 0)
			sem_posted++;
		check(&s);
		if (s.failure[0]) {
			wl_log(s.log, "FAIL %lu %s", (unsigned long)iter, s.failure);
			kill(child, SIGKILL);
			return 1;
		}
		wl_log(s.log, "iter %lu ok %lu %lu %lu %lu %lu %lu child %d", (unsigned long)iter,
		       (unsigned long)s.obj[0]->c, (unsigned long)s.obj[1]->c,
		       (unsigned long)s.obj[2]->c, (unsigned long)s.obj[3]->c,
		       (unsigned long)s.obj[4]->c, (unsigned long)s.obj[0][1].c, child);
		if (iter == 0) {
			snprintf(path, sizeof(path), "%s/ready", argv[1]);
			wl_ready(path);
		}
		wl_sleep(0.05);
	}
}
