/* SPDX-License-Identifier: MIT */
/*
 * userstate LOG READY
 *
 * State an ordinary user's program can set for itself and that a restore
 * run for that user must give back with the restorer's capabilities raised
 * only around the calls that need them (docs/security.md): a seccomp filter
 * (installed under no_new_privs: uname fails with EMLINK), a locked page
 * (mlock), oom_score_adj 321 and a second thread. Both threads check their
 * state every 100 ms and log "bad WHAT" on any difference; the main thread
 * logs "ok N" every 500 ms with N counting on.
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/utsname.h>

#include "wl.h"

static int log_fd;
static unsigned char *locked;

/* The filter: uname fails with EMLINK, everything else is allowed. */
static void install_filter(void)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_uname, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EMLINK),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		wl_die("no_new_privs: %s", strerror(errno));
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		wl_die("seccomp: %s", strerror(errno));
}

static long vm_locked_kb(void)
{
	char buf[4096], *p;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "VmLck:");
	return p ? strtol(p + 6, NULL, 10) : -1;
}

static int oom_score_adj(void)
{
	char buf[32] = "";
	int fd = open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	return n > 0 ? atoi(buf) : -1;
}

/* Everything as set up; logs "bad WHAT" for what is not. */
static int check(const char *who)
{
	struct utsname u;
	int bad = 0;

	errno = 0;
	if (uname(&u) == 0 || errno != EMLINK)
		wl_log(log_fd, "bad %s: uname: %s", who, strerror(errno)), bad++;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		wl_log(log_fd, "bad %s: no_new_privs", who), bad++;
	if (vm_locked_kb() < 4)
		wl_log(log_fd, "bad %s: VmLck %ld kB", who, vm_locked_kb()), bad++;
	if (oom_score_adj() != 321)
		wl_log(log_fd, "bad %s: oom_score_adj %d", who, oom_score_adj()), bad++;
	if (locked[0] != 0x5a || locked[4095] != 0xa5)
		wl_log(log_fd, "bad %s: locked page content", who), bad++;
	return bad;
}

static void *thread_main(void *arg)
{
	(void)arg;
	for (;;) {
		check("thread");
		wl_sleep(0.1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th;
	int fd;

	if (argc != 3)
		wl_die("usage: userstate LOG READY");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	locked = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (locked == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	locked[0] = 0x5a;
	locked[4095] = 0xa5;
	if (mlock(locked, 4096) < 0)
		wl_die("mlock: %s", strerror(errno));
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "321", 3) != 3)
		wl_die("oom_score_adj: %s", strerror(errno));
	close(fd);
	install_filter();
	if (check("main"))
		wl_die("state not as set up");
	if (pthread_create(&th, NULL, thread_main, NULL))
		wl_die("pthread_create");
	wl_log(log_fd, "start");
	wl_ready(argv[2]);
	for (unsigned long n = 1;; n++) {
		for (int i = 0; i < 5; i++) {
			check("main");
			wl_sleep(0.1);
		}
		wl_log(log_fd, "ok %lu", n);
	}
}
