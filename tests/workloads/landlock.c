/* SPDX-License-Identifier: MIT */
/*
 * landlock LOG READY MODE DIR
 *
 * A program confined by Landlock (landlock_restrict_self), as a sandboxed
 * service or plugin host is. Its domain handles creating regular files and
 * allows it beneath DIR/allowed only. Two threads, main and worker:
 *
 *   process  main confines itself before it starts worker: both confined;
 *   thread   worker confines itself, main does not (the domain is per
 *            thread);
 *   none     neither is confined.
 *
 * Every 100 ms each thread tries to create a file in DIR/denied (removed
 * again when it could) and logs "bad NAME: ..." when the outcome differs
 * from its first, "ok NAME N" every 500 ms; "start NAME TID confined|free"
 * first. A restore that dropped the domain shows as "bad NAME: created".
 */
#include <linux/landlock.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "wl.h"

static int log_fd;
static const char *dir;
static pthread_barrier_t setup_done;

static void confine(void)
{
	struct landlock_ruleset_attr attr = {.handled_access_fs = LANDLOCK_ACCESS_FS_MAKE_REG};
	struct landlock_path_beneath_attr beneath = {.allowed_access = LANDLOCK_ACCESS_FS_MAKE_REG};
	char path[4096];
	int fd;

	fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (fd < 0)
		wl_die("landlock_create_ruleset: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/allowed", dir);
	beneath.parent_fd = open(path, O_PATH | O_CLOEXEC);
	if (beneath.parent_fd < 0)
		wl_die("%s: %s", path, strerror(errno));
	if (syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH, &beneath, 0) < 0)
		wl_die("landlock_add_rule: %s", strerror(errno));
	close(beneath.parent_fd);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		wl_die("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	if (syscall(SYS_landlock_restrict_self, fd, 0) < 0)
		wl_die("landlock_restrict_self: %s", strerror(errno));
	close(fd);
}

/* 1: creating a file in DIR/denied was refused, 0: it worked (and it is gone again) */
static int denied(const char *name)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/denied/%s.%ld", dir, name, (long)syscall(SYS_gettid));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno == EACCES ? 1 : -errno;
	close(fd);
	unlink(path);
	return 0;
}

static void nap(void)
{
	struct timespec ts = {0, 100 * 1000 * 1000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void run(const char *name, const char *ready)
{
	int first = denied(name);

	if (first < 0)
		wl_die("%s: creating in %s/denied: %s", name, dir, strerror(-first));
	wl_log(log_fd, "start %s %ld %s", name, (long)syscall(SYS_gettid),
	       first ? "confined" : "free");
	if (ready)
		wl_ready(ready);
	for (unsigned long n = 0;; n++) {
		int now = denied(name);

		if (now != first)
			wl_log(log_fd, "bad %s: %s", name,
			       now == 0	  ? "created"
			       : now == 1 ? "refused"
					  : strerror(-now));
		if (n % 5 == 0)
			wl_log(log_fd, "ok %s %lu", name, n / 5 + 1);
		nap();
	}
}

static void *worker_main(void *arg)
{
	if (arg)
		confine();
	pthread_barrier_wait(&setup_done);
	run("worker", NULL);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t worker;
	bool process, thread;

	if (argc != 5)
		wl_die("usage: landlock LOG READY process|thread|none DIR");
	wl_close_inherited();
	log_fd = wl_open_log(argv[1]);
	dir = argv[4];
	process = !strcmp(argv[3], "process");
	thread = !strcmp(argv[3], "thread");
	if (!process && !thread && strcmp(argv[3], "none"))
		wl_die("mode %s: not process, thread or none", argv[3]);
	if (process)
		confine();
	pthread_barrier_init(&setup_done, NULL, 2);
	if (pthread_create(&worker, NULL, worker_main, thread ? (void *)1 : NULL))
		wl_die("pthread_create");
	pthread_barrier_wait(&setup_done);
	run("main", argv[2]);
	return 0;
}
