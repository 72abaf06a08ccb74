/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "image.h"
#include "restorer_io.h"
#include "pstree.pb-c.h"

static bool is_executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *restorer_find(const char *explicit_path, const char *libexec_dir, bool path_search,
		    bool *ret_search)
{
	const char *env = getenv("CKPT_RESTORE");
	char self[PATH_MAX], *slash, *p = NULL;
	ssize_t n;

	*ret_search = false;
	if (explicit_path)
		return strdup(explicit_path);
	if (env && *env)
		return strdup(env);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if (asprintf(&p, "%s/ckpt-restore", self) < 0)
				return NULL;
			if (is_executable(p))
				return p;
			free(p);
		}
	}
	if (asprintf(&p, "%s/ckpt-restore", libexec_dir) < 0)
		return NULL;
	if (is_executable(p) || !path_search)
		return p;
	free(p);
	*ret_search = true;
	return strdup("ckpt-restore");
}

/* The number after "key": (0 if absent); *found says whether it was there. */
static uint64_t json_u64(const char *json, const char *key, bool *found)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	if (found)
		*found = p != NULL;
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

bool restorer_progress_parse(const char *line, struct restorer_progress *ret)
{
	size_t len = strlen(line);
	const char *stage;
	bool has_bytes;

	memset(ret, 0, sizeof(*ret));
	if (len < 2 || line[0] != '{' || line[len - 1] != '}')
		return false;
	ret->bytes = json_u64(line, "bytes", &has_bytes);
	if (!has_bytes)
		return false;
	ret->bytes_total = json_u64(line, "bytes_total", NULL);
	ret->tasks_done = (unsigned)json_u64(line, "tasks_done", NULL);
	ret->tasks_total = (unsigned)json_u64(line, "tasks_total", NULL);
	stage = strstr(line, "\"stage\":\"");
	if (stage)
		sscanf(stage + 9, "%31[a-z]", ret->stage);
	return true;
}

int line_reader_read(struct line_reader *r, void (*cb)(void *arg, const char *line), void *arg)
{
	char chunk[4096];
	ssize_t n;

	if (r->fd < 0)
		return -1;
	n = read(r->fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close(r->fd);
		r->fd = -1;
		return -1;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (chunk[i] != '\n') {
			if (r->len + 1 < sizeof(r->line))
				r->line[r->len++] = chunk[i];
			continue;
		}
		r->line[r->len] = '\0';
		cb(arg, r->line);
		r->len = 0;
	}
	return 1;
}

unsigned long long proc_start_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	_cleanup_close_ int fd = -1;
	unsigned long long v = 0;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p && sscanf(p + 2,
			"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
			"%*d %*d %llu",
			&v) != 1)
		v = 0;
	return v;
}

void restored_nsinit_kill(pid_t init, unsigned long long since)
{
	char path[64], comm[32] = "";
	_cleanup_close_ int fd = -1;
	ssize_t n;

	if (init <= 1 || !since || proc_start_ticks(init) < since)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)init);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (n = read(fd, comm, sizeof(comm) - 1)) <= 0)
		return;
	comm[n] = '\0';
	if (!strcmp(comm, "ckpt-nsinit\n"))
		kill(init, SIGKILL);
}

void restored_tasks_kill(int dirfd, unsigned long long since)
{
	_cleanup_img_ struct img *img = NULL;
	struct ckpt_error e = {0};
	ProtobufCMessage *m;

	if (!since || img_open(dirfd, IMG_PSTREE, 0, &img, &e) < 0)
		return;
	while (img_read_msg(img, &m, &e) == 1) {
		pid_t pid = ((PstreeEntry *)m)->pid;

		if (pid > 0 && proc_start_ticks(pid) >= since)
			kill(pid, SIGKILL);
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

#define COMMIT_RECORD_LEN 64

int restore_commit_write(int fd, const struct restore_commit *c)
{
	char rec[COMMIT_RECORD_LEN];
	int n;

	if (c)
		n = snprintf(rec, sizeof(rec), "committed root %d tasks %u pidns %d",
			     (int)c->root_pid, c->ntasks, c->new_pidns ? 1 : 0);
	else
		n = snprintf(rec, sizeof(rec), "rolled back");
	/* padded with spaces to the fixed size, one newline at the end */
	errno = 0;
	memset(rec + n, ' ', sizeof(rec) - (size_t)n);
	rec[sizeof(rec) - 1] = '\n';
	if (pwrite(fd, rec, sizeof(rec), 0) != (ssize_t)sizeof(rec))
		return errno ? -errno : -EIO;
	return 0;
}

bool restore_commit_read(int fd, struct restore_commit *ret)
{
	char rec[COMMIT_RECORD_LEN + 1];
	struct restore_commit c = {0};
	int root, pidns;
	ssize_t n;

	if (fd < 0)
		return false;
	n = pread(fd, rec, COMMIT_RECORD_LEN, 0);
	if (n != COMMIT_RECORD_LEN)
		return false;
	rec[n] = '\0';
	if (sscanf(rec, "committed root %d tasks %u pidns %d", &root, &c.ntasks, &pidns) != 3)
		return false;
	c.root_pid = root;
	c.new_pidns = pidns != 0;
	if (ret)
		*ret = c;
	return true;
}
