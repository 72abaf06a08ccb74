/* SPDX-License-Identifier: MIT */
/*
 * Reading a task's page data across the parts of its pages image
 * (image.h): the parts are opened together, each checked like any pages
 * image (header, page-aligned data), and a read at a data offset of the
 * concatenation is served from the part or parts that hold it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cleanup.h"
#include "image.h"
#include "image_internal.h"

struct img_pages {
	unsigned n;
	int fd[IMG_PAGES_PARTS_MAX];
	uint64_t end[IMG_PAGES_PARTS_MAX]; /* data offset right after part k */
	char part_name[IMG_PAGES_PARTS_MAX][IMG_NAME_MAX];
};

int img_pages_open(int dirfd, int pid, struct img_pages **ret, struct ckpt_error *e)
{
	_cleanup_(img_pages_closep) struct img_pages *p = calloc(1, sizeof(*p));
	uint64_t at = 0;

	if (!p)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (unsigned k = 0; k < IMG_PAGES_PARTS_MAX; k++)
		p->fd[k] = -1;
	p->n = 1;
	for (unsigned k = 0; k < p->n; k++) {
		_cleanup_img_ struct img *img = NULL;
		int r = img_open_pages_part(dirfd, pid, k, &img, e);

		if (r < 0)
			return r;
		if (k == 0)
			p->n = img_pages_nparts(img);
		else if (img_pages_nparts(img) != p->n)
			return ckpt_err(e, -EBADMSG,
					"%s: header says %u parts, pages-%d.img says %u",
					img_name(img), img_pages_nparts(img), pid, p->n);
		at += img_pages_data_size(img);
		p->end[k] = at;
		snprintf(p->part_name[k], sizeof(p->part_name[k]), "%s", img_name(img));
		p->fd[k] = TAKE_FD(img->fd);
	}
	*ret = TAKE_PTR(p);
	return 0;
}

uint64_t img_pages_size(const struct img_pages *p)
{
	return p->end[p->n - 1];
}

const char *img_pages_name(const struct img_pages *p)
{
	return p->part_name[0];
}

int img_pages_read(const struct img_pages *p, void *buf, size_t len, uint64_t off,
		   struct ckpt_error *e)
{
	char *out = buf;
	unsigned k = 0;

	if (off > img_pages_size(p) || len > img_pages_size(p) - off)
		return ckpt_err(e, -EBADMSG,
				"%s: %zu bytes at data offset %" PRIu64 " are past its %" PRIu64
				" bytes of data",
				img_pages_name(p), len, off, img_pages_size(p));
	while (len) {
		uint64_t start, in_part;
		ssize_t n;

		while (off >= p->end[k])
			k++;
		start = k ? p->end[k - 1] : 0;
		in_part = p->end[k] - off < len ? p->end[k] - off : len;
		n = img_pread_full(p->fd[k], out, (size_t)in_part,
				   IMG_PAGES_DATA_OFFSET + (off - start));
		if (n != (ssize_t)in_part)
			return ckpt_err_errno(e, n < 0 ? (int)n : -EIO,
					      "%s: reading %" PRIu64
					      " bytes at data offset %" PRIu64,
					      p->part_name[k], in_part, off - start);
		out += in_part;
		off += in_part;
		len -= (size_t)in_part;
	}
	return 0;
}

unsigned img_pages_fds(const struct img_pages *p, int *fds)
{
	for (unsigned k = 0; k < p->n; k++)
		fds[k] = p->fd[k];
	return p->n;
}

void img_pages_close(struct img_pages *p)
{
	if (!p)
		return;
	for (unsigned k = 0; k < IMG_PAGES_PARTS_MAX; k++)
		if (p->fd[k] >= 0)
			close(p->fd[k]);
	free(p);
}
