/* SPDX-License-Identifier: MIT */
/*
 * deleted DIR [map]
 *
 * Holds files it deleted itself and keeps using them, checking every 100 ms
 * that they still hold exactly what it wrote (it keeps its own copy in
 * memory, which a restore brings back too):
 *   fd 10  DIR/data.bin O_RDWR, mode 0640, 16 KiB to start with; one 8-byte
 *          record "d<n>\n" is written per iteration at the shared position,
 *          alternately through fd 10 and its dup fd 11 (one description);
 *          starting at 16 KiB, the position wraps to 0 at 32 KiB (the
 *          marker at the start of the file stays for 200 s)
 *   fd 12  DIR/append.bin O_RDWR|O_APPEND: "a<n>\n" appended per iteration
 *          (after a seek to 0, which O_APPEND must ignore)
 *   fd 13  DIR/wronly.bin O_WRONLY: "w<n>\n" written per iteration
 * All three are unlinked before the first iteration. Every iteration checks
 * the whole content of data.bin and append.bin (pread), the positions, the
 * sizes, st_nlink == 0 and the modes, then logs "iter <n> ok <checksum of
 * data.bin>" or "FAIL <n> <what>" to DIR/log.txt. DIR/ready holds the pid
 * after the first iteration. With "map", data.bin is also mapped
 * MAP_PRIVATE (a deleted mapped file, which the dump refuses).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "wl.h"

#define REC 8
#define DATA_START (16u << 10)
#define DATA_MAX (32u << 10)
#define APPEND_MAX (1u << 20)
#define MARKER "DELETED-CONTENT-MARKER-0123456789\n"

struct wl {
	int log;
	unsigned long iter;
	char data[DATA_MAX];
	size_t data_size;
	off_t data_pos;
	char append[APPEND_MAX];
	size_t append_size;
	off_t wronly_pos;
	char failure[256];
	char buf[APPEND_MAX];
};

static void fail(struct wl *w, const char *fmt, ...)
{
	va_list ap;

	if (w->failure[0])
		return;
	va_start(ap, fmt);
	vsnprintf(w->failure, sizeof(w->failure), fmt, ap);
	va_end(ap);
}

static void place(int fd, int target)
{
	if (fd < 0)
		wl_die("open for fd %d: %s", target, strerror(errno));
	if (fd != target) {
		if (dup2(fd, target) < 0)
			wl_die("dup2 %d: %s", target, strerror(errno));
		close(fd);
	}
}

static void make_deleted(const char *dir, const char *name, int flags, int target, mode_t mode,
			 const char *content, size_t len)
{
	char path[4000];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || wl_write_all(fd, content, len) < 0)
		wl_die("%s: %s", path, strerror(errno));
	close(fd);
	place(open(path, flags), target);
	if (fchmod(target, mode) < 0 || unlink(path) < 0)
		wl_die("%s: %s", path, strerror(errno));
}

static uint32_t fnv(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ (uint8_t)*p++) * 16777619u;
	return h;
}

static void check_fd(struct wl *w, int fd, mode_t mode, off_t size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return fail(w, "fstat fd %d: %s", fd, strerror(errno));
	if (!S_ISREG(st.st_mode) || (st.st_mode & 07777) != mode)
		return fail(w, "fd %d mode 0%o, want 0%o", fd, st.st_mode, mode);
	if (st.st_nlink != 0)
		return fail(w, "fd %d has %lu links, want 0", fd, (unsigned long)st.st_nlink);
	if (st.st_size != size)
		return fail(w, "fd %d size %lld, want %lld", fd, (long long)st.st_size,
			    (long long)size);
}

static void check_content(struct wl *w, int fd, const char *want, size_t len)
{
	ssize_t n = pread(fd, w->buf, len + 1, 0);

	if (n != (ssize_t)len)
		return fail(w, "fd %d: read %zd bytes, want %zu", fd, n, len);
	if (memcmp(w->buf, want, len))
		return fail(w, "fd %d: content differs", fd);
}

static void iteration(struct wl *w)
{
	char rec[REC + 1];
	int fd = (w->iter & 1) ? 11 : 10;
	off_t pos;

	/* data.bin: write at the shared position, through either fd */
	if (w->data_pos + REC > (off_t)DATA_MAX) {
		if (lseek(10, 0, SEEK_SET) != 0)
			return fail(w, "lseek fd 10: %s", strerror(errno));
		w->data_pos = 0;
	}
	snprintf(rec, sizeof(rec), "d%06lu\n", w->iter % 1000000);
	if (write(fd, rec, REC) != REC)
		return fail(w, "write fd %d: %s", fd, strerror(errno));
	memcpy(w->data + w->data_pos, rec, REC);
	w->data_pos += REC;
	if ((size_t)w->data_pos > w->data_size)
		w->data_size = (size_t)w->data_pos;
	pos = lseek(fd == 10 ? 11 : 10, 0, SEEK_CUR);
	if (pos != w->data_pos)
		return fail(w, "data.bin position %lld, want %lld", (long long)pos,
			    (long long)w->data_pos);
	check_fd(w, 10, 0640, (off_t)w->data_size);
	check_content(w, 10, w->data, w->data_size);

	/* append.bin: O_APPEND ignores the seek */
	snprintf(rec, sizeof(rec), "a%06lu\n", w->iter % 1000000);
	if (w->append_size + REC > APPEND_MAX)
		return fail(w, "append.bin full");
	if (lseek(12, 0, SEEK_SET) != 0 || write(12, rec, REC) != REC)
		return fail(w, "append fd 12: %s", strerror(errno));
	memcpy(w->append + w->append_size, rec, REC);
	w->append_size += REC;
	pos = lseek(12, 0, SEEK_CUR);
	if (pos != (off_t)w->append_size)
		return fail(w, "append.bin position %lld, want %zu", (long long)pos,
			    w->append_size);
	check_fd(w, 12, 0600, (off_t)w->append_size);
	check_content(w, 12, w->append, w->append_size);

	/* wronly.bin: nothing to read back, position and size must follow */
	snprintf(rec, sizeof(rec), "w%06lu\n", w->iter % 1000000);
	if (write(13, rec, REC) != REC)
		return fail(w, "write fd 13: %s", strerror(errno));
	w->wronly_pos += REC;
	pos = lseek(13, 0, SEEK_CUR);
	if (pos != w->wronly_pos)
		return fail(w, "wronly.bin position %lld, want %lld", (long long)pos,
			    (long long)w->wronly_pos);
	check_fd(w, 13, 0644, w->wronly_pos);
}

int main(int argc, char **argv)
{
	static struct wl w;
	char path[4000];
	bool map = argc > 2 && !strcmp(argv[2], "map");
	void *m = NULL;

	if (argc < 2)
		wl_die("usage: deleted DIR [map]");
	wl_close_inherited();
	snprintf(path, sizeof(path), "%s/log.txt", argv[1]);
	w.log = wl_open_log(path);

	for (size_t i = 0; i < DATA_START; i++)
		w.data[i] = (char)('a' + i % 26);
	memcpy(w.data, MARKER, strlen(MARKER));
	w.data_size = DATA_START;
	if (map) {
		/* mapped before the unlink, by name */
		snprintf(path, sizeof(path), "%s/data.bin", argv[1]);
		int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
		if (fd < 0 || wl_write_all(fd, w.data, w.data_size) < 0)
			wl_die("%s: %s", path, strerror(errno));
		m = mmap(NULL, DATA_START, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED)
			wl_die("mmap: %s", strerror(errno));
		close(fd);
	}
	make_deleted(argv[1], "data.bin", O_RDWR, 10, 0640, w.data, w.data_size);
	if (dup2(10, 11) < 0)
		wl_die("dup2: %s", strerror(errno));
	/* write after the start content: the marker stays for a few minutes */
	w.data_pos = DATA_START;
	if (lseek(10, w.data_pos, SEEK_SET) != w.data_pos)
		wl_die("lseek: %s", strerror(errno));
	memcpy(w.append, "append start\n", 13);
	w.append_size = 13;
	make_deleted(argv[1], "append.bin", O_RDWR | O_APPEND, 12, 0600, w.append, w.append_size);
	make_deleted(argv[1], "wronly.bin", O_WRONLY, 13, 0644, "", 0);

	for (;; w.iter++) {
		iteration(&w);
		if (m && memcmp(m, MARKER, strlen(MARKER)))
			fail(&w, "mapping of data.bin changed");
		if (w.failure[0]) {
			wl_log(w.log, "FAIL %lu %s", w.iter, w.failure);
			return 1;
		}
		wl_log(w.log, "iter %lu ok %08x", w.iter, fnv(w.data, w.data_size));
		if (w.iter == 0) {
			snprintf(path, sizeof(path), "%s/ready", argv[1]);
			wl_ready(path);
		}
		wl_sleep(0.1);
	}
}
