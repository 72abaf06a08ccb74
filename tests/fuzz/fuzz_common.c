/* SPDX-License-Identifier: MIT */
/* Scratch directory, container and inventory of the fuzz harnesses: fuzz_common.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "fuzz_common.h"
#include "image.h"
#include "log.h"

static struct fuzz_dir *dir_at_exit;

static void die(const char *what)
{
	fprintf(stderr, "fuzz harness: %s: %s\n", what, strerror(errno));
	abort();
}

static void remove_at_exit(void)
{
	if (!dir_at_exit)
		return;
	fuzz_dir_clean(dir_at_exit);
	/* the files of a run interrupted by a signal are not in sums[] */
	DIR *dir = fdopendir(dup(dir_at_exit->dirfd));
	struct dirent *de;

	while (dir && (de = readdir(dir)))
		if (de->d_name[0] != '.')
			unlinkat(dir_at_exit->dirfd, de->d_name, 0);
	if (dir)
		closedir(dir);
	rmdir(dir_at_exit->path);
}

int fuzz_fd_mark(void)
{
	int fd = dup(0);

	if (fd < 0)
		die("dup");
	close(fd);
	return fd;
}

void fuzz_dir_init(struct fuzz_dir *d, const char *tag)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->path, sizeof(d->path), "/dev/shm/ckpt-fuzz-%s-%d.XXXXXX", tag, (int)getpid());
	if (!mkdtemp(d->path))
		die("mkdtemp in /dev/shm");
	d->dirfd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dirfd < 0)
		die(d->path);
	dir_at_exit = d;
	atexit(remove_at_exit);
	/* the restorer's own messages: the harness looks at return values only */
	ckpt_log_set_level(-1);
}

void fuzz_dir_clean(struct fuzz_dir *d)
{
	for (size_t i = 0; i < d->nsums; i++)
		unlinkat(d->dirfd, d->sums[i].name, 0);
	d->nsums = 0;
	d->pages_left = FUZZ_MAX_PAGES;
	d->fd_mark = fuzz_fd_mark();
}

void fuzz_fd_check(int mark)
{
	int fd = fuzz_fd_mark();

	if (fd != mark) {
		char link[64], target[256] = "";

		snprintf(link, sizeof(link), "/proc/self/fd/%d", mark);
		if (readlink(link, target, sizeof(target) - 1) < 0)
			snprintf(target, sizeof(target), "?");
		fprintf(stderr, "fuzz harness: fd leak: fd %d (%s) is still open after the run\n",
			mark, target);
		abort();
	}
}

static uint32_t get_le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

size_t fuzz_container_parse(const uint8_t *data, size_t len, struct fuzz_file *files, size_t max)
{
	size_t pos = 0, n = 0;

	while (n < max && pos < len) {
		size_t nl = data[pos++], dl;

		if (nl == 0 || nl >= sizeof(files[n].name) || nl > len - pos)
			break;
		memcpy(files[n].name, data + pos, nl);
		files[n].name[nl] = '\0';
		pos += nl;
		if (len - pos < 4)
			break;
		dl = get_le32(data + pos);
		pos += 4;
		if (dl > len - pos)
			dl = len - pos;
		files[n].data = data + pos;
		files[n].len = dl;
		pos += dl;
		if (strlen(files[n].name) == nl) /* no NUL inside */
			n++;
	}
	return n;
}

static struct fuzz_sum *sum_slot(struct fuzz_dir *d, const char *name)
{
	for (size_t i = 0; i < d->nsums; i++)
		if (!strcmp(d->sums[i].name, name))
			return &d->sums[i];
	if (d->nsums == FUZZ_MAX_FILES)
		return NULL;
	snprintf(d->sums[d->nsums].name, sizeof(d->sums[0].name), "%s", name);
	return &d->sums[d->nsums++];
}

static void write_file(struct fuzz_dir *d, struct fuzz_sum *s, const uint8_t *data, size_t len)
{
	int fd =
	    openat(d->dirfd, s->name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	size_t done = 0;

	if (fd < 0)
		die(s->name);
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);

		if (n <= 0)
			die("write to tmpfs");
		done += n;
	}
	close(fd);
	s->size = len;
	s->crc = crc32c(0, data, len);
}

/*
 * pages-PID.img from header + page count + extra bytes (fuzz_common.h): a
 * sparse file (tmpfs reads its holes as zeros at no cost), summed with a
 * zero page.
 */
static void write_pages(struct fuzz_dir *d, struct fuzz_sum *s, const uint8_t *data, size_t len)
{
	static const uint8_t zero[4096];
	uint32_t pages = get_le32(data + IMG_HEADER_SIZE) % (FUZZ_FILE_PAGES + 1);
	size_t extra = len - IMG_HEADER_SIZE - 4;
	off_t data_end;
	uint32_t crc;
	int fd;

	if (pages > d->pages_left)
		pages = d->pages_left;
	d->pages_left -= pages;
	data_end = IMG_PAGES_DATA_OFFSET + (off_t)pages * 4096;
	fd = openat(d->dirfd, s->name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		die(s->name);
	if (pwrite(fd, data, IMG_HEADER_SIZE, 0) != IMG_HEADER_SIZE ||
	    ftruncate(fd, data_end) < 0 ||
	    pwrite(fd, data + IMG_HEADER_SIZE + 4, extra, data_end) != (ssize_t)extra)
		die("write to tmpfs");
	close(fd);
	crc = crc32c(0, data, IMG_HEADER_SIZE);
	crc = crc32c(crc, zero, IMG_PAGES_DATA_OFFSET - IMG_HEADER_SIZE);
	for (uint32_t i = 0; i < pages; i++)
		crc = crc32c(crc, zero, sizeof(zero));
	s->crc = crc32c(crc, data + IMG_HEADER_SIZE + 4, extra);
	s->size = data_end + extra;
}

bool fuzz_write_image(struct fuzz_dir *d, const char *name, const uint8_t *data, size_t len)
{
	enum img_kind kind;
	struct fuzz_sum *s;

	if (img_kind_from_name(name, &kind, NULL) < 0 || kind == IMG_INVENTORY)
		return false;
	s = sum_slot(d, name);
	if (!s)
		return false;
	if (kind == IMG_PAGES && len >= IMG_HEADER_SIZE + 4)
		write_pages(d, s, data, len);
	else
		write_file(d, s, data, len);
	return true;
}

bool fuzz_write_raw(struct fuzz_dir *d, const char *name, const uint8_t *data, size_t len)
{
	struct fuzz_sum *s;

	if (img_kind_from_name(name, NULL, NULL) < 0 || !(s = sum_slot(d, name)))
		return false;
	write_file(d, s, data, len);
	return true;
}

void fuzz_write_inventory(struct fuzz_dir *d, const uint8_t *data, size_t len)
{
	static const uint8_t default_header[IMG_HEADER_SIZE] = {'C', 'K', 'I', 'V', 1};
	Inventory def = INVENTORY__INIT, *inv = &def, *unpacked = NULL;
	struct fuzz_sum *s = sum_slot(d, "inventory.img");
	ImageSum sums[2 * FUZZ_MAX_FILES], *ptrs[2 * FUZZ_MAX_FILES], **orig;
	size_t n = 0, orig_n, packed_len;
	uint8_t *buf;

	if (!s) {
		/* inventory.img must be removed by the next clean: take the last slot */
		s = &d->sums[d->nsums++];
		snprintf(s->name, sizeof(s->name), "inventory.img");
	}
	if (!data) {
		def.format_version = IMG_FORMAT_VERSION;
		def.root_pid = 1;
		data = default_header;
		len = IMG_HEADER_SIZE;
	} else {
		if (len < IMG_HEADER_SIZE ||
		    !(unpacked =
			  inventory__unpack(NULL, len - IMG_HEADER_SIZE, data + IMG_HEADER_SIZE))) {
			write_file(d, s, data, len);
			return;
		}
		inv = unpacked;
	}
	/* the listed files that exist get their real sums; then every other written file */
	for (size_t i = 0; i < inv->n_images && n < FUZZ_MAX_FILES; i++) {
		image_sum__init(&sums[n]);
		sums[n].name = inv->images[i]->name;
		sums[n].size = inv->images[i]->size;
		sums[n].crc32c = inv->images[i]->crc32c;
		for (size_t k = 0; k < d->nsums; k++)
			if (&d->sums[k] != s && !strcmp(d->sums[k].name, sums[n].name)) {
				sums[n].size = d->sums[k].size;
				sums[n].crc32c = d->sums[k].crc;
			}
		ptrs[n] = &sums[n];
		n++;
	}
	for (size_t k = 0; k < d->nsums; k++) {
		bool listed = &d->sums[k] == s;

		for (size_t i = 0; i < inv->n_images && !listed; i++)
			listed = !strcmp(d->sums[k].name, inv->images[i]->name);
		if (listed)
			continue;
		image_sum__init(&sums[n]);
		sums[n].name = d->sums[k].name;
		sums[n].size = d->sums[k].size;
		sums[n].crc32c = d->sums[k].crc;
		ptrs[n] = &sums[n];
		n++;
	}
	orig = inv->images;
	orig_n = inv->n_images;
	inv->images = ptrs;
	inv->n_images = n;
	packed_len = inventory__get_packed_size(inv);
	buf = malloc(IMG_HEADER_SIZE + 4 + packed_len);
	if (!buf)
		die("malloc");
	memcpy(buf, data, IMG_HEADER_SIZE);
	put_le32(buf + IMG_HEADER_SIZE, (uint32_t)packed_len);
	inventory__pack(inv, buf + IMG_HEADER_SIZE + 4);
	inv->images = orig;
	inv->n_images = orig_n;
	write_file(d, s, buf, IMG_HEADER_SIZE + 4 + packed_len);
	free(buf);
	if (unpacked)
		inventory__free_unpacked(unpacked, NULL);
}
