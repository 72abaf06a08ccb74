/* SPDX-License-Identifier: MIT */
/*
 * Incremental checkpoints (docs/incremental.md): a checkpoint made with
 * --parent names its parent (inventory: a path relative to itself and the
 * CRC32C of the parent's inventory.img); its pagemap entries marked
 * in_parent have no data of their own: the bytes are the parent's at the
 * same address of the same pid, saved there or in_parent again.
 *
 * Stage verify: every checkpoint of the chain is opened and verified like
 * the one restored (every image's size and checksum), must be the one the
 * child was dumped against (inventory CRC32C) and of the same tree, and
 * every in_parent page must be found, as data, in one of them. What is
 * kept afterwards: one directory fd per level (moved above fd_base with the
 * image directory, fds.c) and, per task, where each in_parent run lies
 * (t->psrc). The pages images of the parents are opened where they are
 * read (by P in stage memory, by the task itself for the areas it puts in
 * place before forking, cow.c), and closed again.
 */
#define LOG_PREFIX "restore: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "restore.h"

/* more levels than anyone dumps; also stops a chain that loops */
#define CHAIN_MAX 256

/* The pagemap of one task in one parent checkpoint, with data offsets. */
struct level_task {
	PagemapEntry **pm;
	size_t n;
	uint64_t *off; /* data offset of each entry (entries with data) */
};

struct chain_cache {
	pid_t pid;
	struct level_task *lt; /* one per level, loaded on demand */
	bool *loaded;
};

static const char *level_name(const struct restore_ctx *ctx, size_t level)
{
	return ctx->chain[level].name;
}

static int load_level_task(struct restore_ctx *ctx, size_t level, pid_t pid,
			   struct level_task *lt)
{
	struct ckpt_error *e = &ctx->err;
	_cleanup_img_pages_ struct img_pages *pages = NULL;
	uint64_t off = 0, prev_end = 0, size;
	int r;

	r = chain_open_pages(ctx, level, pid, &pages, e);
	if (r < 0)
		return r;
	size = img_pages_size(pages);
	r = images_read_all(ctx->chain[level].dirfd, IMG_PAGEMAP, pid, SIZE_MAX,
			    (void ***)&lt->pm, &lt->n, e);
	if (r < 0)
		return ckpt_err_wrap(e, "parent checkpoint %s", level_name(ctx, level));
	lt->off = calloc(lt->n ? lt->n : 1, sizeof(*lt->off));
	if (!lt->off)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < lt->n; i++) {
		const PagemapEntry *p = lt->pm[i];
		uint64_t end = p->vaddr + (uint64_t)p->nr_pages * RST_PAGE_SIZE;
		bool nodata = (p->has_inherited && p->inherited) ||
			      (p->has_in_parent && p->in_parent);

		if (p->vaddr % RST_PAGE_SIZE || !p->nr_pages || p->vaddr < prev_end ||
		    end > RST_TASK_SIZE || (!nodata && (uint64_t)p->nr_pages * RST_PAGE_SIZE >
							    size - off))
			return ckpt_err(e, -EINVAL,
					"parent checkpoint %s: pagemap-%d.img: entry %zu: %u pages "
					"at %#" PRIx64
					" are unaligned, out of order or beyond its pages-%d.img",
					level_name(ctx, level), pid, i, p->nr_pages, p->vaddr, pid);
		lt->off[i] = off;
		if (!nodata)
			off += (uint64_t)p->nr_pages * RST_PAGE_SIZE;
		prev_end = end;
	}
	return 0;
}

static int level_task(struct restore_ctx *ctx, struct chain_cache *cc, size_t level,
		      struct level_task **ret)
{
	if (!cc->loaded[level]) {
		int r = load_level_task(ctx, level, cc->pid, &cc->lt[level]);

		if (r < 0)
			return r;
		cc->loaded[level] = true;
	}
	*ret = &cc->lt[level];
	return 0;
}

static int add_src(struct rtask *t, size_t *cap, uint64_t vaddr, uint64_t len, size_t level,
		   uint64_t off, struct ckpt_error *e)
{
	struct chain_run *last = t->n_psrc ? &t->psrc[t->n_psrc - 1] : NULL;

	if (last && last->level == level && last->vaddr + last->len == vaddr &&
	    last->off + last->len == off) {
		last->len += len;
		return 0;
	}
	if (t->n_psrc == *cap) {
		size_t c = *cap ? 2 * *cap : 64;
		struct chain_run *g = realloc(t->psrc, c * sizeof(*g));

		if (!g)
			return ckpt_err(e, -ENOMEM, "out of memory");
		t->psrc = g;
		*cap = c;
	}
	t->psrc[t->n_psrc++] = (struct chain_run){vaddr, len, level, off};
	return 0;
}

/* Pages [s, end) of t are those of checkpoint `level`: find their data. */
static int resolve(struct restore_ctx *ctx, struct chain_cache *cc, struct rtask *t, size_t *cap,
		   size_t level, uint64_t s, uint64_t end)
{
	struct ckpt_error *e = &ctx->err;
	struct level_task *lt;
	size_t lo = 0, hi;
	int r;

	if (level >= ctx->n_chain)
		return ckpt_err(e, -EINVAL,
				"pid %d: pages %#" PRIx64 "-%#" PRIx64
				" are marked unchanged since a parent checkpoint, but %s has no "
				"parent",
				t->pid, s, end,
				level ? level_name(ctx, level - 1) : "this checkpoint");
	r = level_task(ctx, cc, level, &lt);
	if (r < 0)
		return r;
	hi = lt->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const PagemapEntry *p = lt->pm[mid];

		if (p->vaddr + (uint64_t)p->nr_pages * RST_PAGE_SIZE <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; s < end; i++) {
		const PagemapEntry *p = i < lt->n ? lt->pm[i] : NULL;
		uint64_t pe, stop;

		if (!p || p->vaddr > s)
			return ckpt_err(e, -EINVAL,
					"pid %d: pages %#" PRIx64 "-%#" PRIx64
					" are marked unchanged since the parent checkpoint %s, which "
					"has no such pages",
					t->pid, s, end, level_name(ctx, level));
		pe = p->vaddr + (uint64_t)p->nr_pages * RST_PAGE_SIZE;
		stop = pe < end ? pe : end;
		if (p->has_in_parent && p->in_parent)
			r = resolve(ctx, cc, t, cap, level + 1, s, stop);
		else if (p->has_inherited && p->inherited)
			r = ckpt_err(e, -EINVAL,
				     "pid %d: pages %#" PRIx64 "-%#" PRIx64
				     " are marked unchanged since the parent checkpoint %s, where "
				     "they are inherited from a parent task",
				     t->pid, s, stop, level_name(ctx, level));
		else
			r = add_src(t, cap, s, stop - s, level, lt->off[i] + (s - p->vaddr), e);
		if (r < 0)
			return r;
		s = stop;
	}
	return 0;
}

/* Open, verify and append the parent of checkpoint cur (fd, inventory, name). */
static int open_parent(struct restore_ctx *ctx, int cur_fd, const Inventory *cur_inv,
		       const char *cur_name)
{
	struct ckpt_error *e = &ctx->err;
	const char *rel = cur_inv->parent;
	struct chain_level *g, *lv;
	_cleanup_close_ int fd = -1;
	char name[PATH_MAX + 64];
	uint32_t crc = 0;
	int r;

	if (!rel[0] || rel[0] == '/' || strlen(rel) >= PATH_MAX)
		return ckpt_err(e, -EINVAL, "%s: inventory.img: field parent \"%.64s\" is not a "
				"relative path",
				cur_name, rel);
	if (ctx->n_chain == CHAIN_MAX)
		return ckpt_err(e, -ELOOP, "%s: more than %d parent checkpoints", cur_name,
				CHAIN_MAX);
	snprintf(name, sizeof(name), "%s/%s", cur_name, rel);
	fd = openat(cur_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_errno(e, -errno,
				      "the parent checkpoint %s of %s is missing (cannot open it)",
				      name, cur_name);
	if (!cur_inv->has_parent_inventory_crc32c)
		return ckpt_err(e, -EINVAL,
				"%s: inventory.img: field parent_inventory_crc32c is missing",
				cur_name);
	r = img_dir_inventory_crc(fd, &crc, e);
	if (r < 0)
		return ckpt_err_wrap(e, "the parent checkpoint %s of %s", name, cur_name);
	if (crc != cur_inv->parent_inventory_crc32c)
		return ckpt_err(e, -EINVAL,
				"the parent checkpoint %s of %s is not the one it was dumped "
				"against (its inventory.img changed: crc32c %08x, recorded %08x)",
				name, cur_name, crc, cur_inv->parent_inventory_crc32c);
	g = realloc(ctx->chain, (ctx->n_chain + 1) * sizeof(*g));
	if (!g)
		return ckpt_err(e, -ENOMEM, "out of memory");
	ctx->chain = g;
	lv = &ctx->chain[ctx->n_chain];
	*lv = (struct chain_level){.dirfd = -1};
	lv->name = strdup(name);
	if (!lv->name)
		return ckpt_err(e, -ENOMEM, "out of memory");
	ctx->n_chain++;
	/* the dump's own check: the parents were verified when they were made
	 * and are only read by a restore, which reads every byte */
	r = img_dir_verify_fd_flags(fd, name,
				    ctx->opts->pages_sums_known ? IMG_VERIFY_PAGES_BY_SIZE : 0,
				    &lv->inv, e);
	if (r < 0)
		return ckpt_err_wrap(e, "the parent checkpoint of %s", cur_name);
	if (lv->inv->root_pid != ctx->inv->root_pid)
		return ckpt_err(e, -EINVAL,
				"the parent checkpoint %s is a checkpoint of pid %d, not of pid %d",
				name, lv->inv->root_pid, ctx->inv->root_pid);
	lv->dirfd = TAKE_FD(fd);
	return 0;
}

int chain_load(struct restore_ctx *ctx)
{
	struct ckpt_error *e = &ctx->err;
	int r = 0;

	if (ctx->inv->has_pre_dump && ctx->inv->pre_dump)
		return ckpt_err(e, -EINVAL,
				"%s is a pre-dump (memory only): restore the dump made with "
				"--parent on top of it",
				ctx->opts->dir);
	for (int fd = ctx->dirfd; r >= 0;) {
		const Inventory *inv = ctx->n_chain ? ctx->chain[ctx->n_chain - 1].inv : ctx->inv;
		const char *name = ctx->n_chain ? ctx->chain[ctx->n_chain - 1].name : ctx->opts->dir;

		if (!inv->parent)
			break;
		r = open_parent(ctx, fd, inv, name);
		if (r >= 0)
			fd = ctx->chain[ctx->n_chain - 1].dirfd;
	}
	if (r < 0)
		return r;
	/* the pager reads this directory's pages images only (mem_page_source) */
	if (ctx->n_chain && ctx->opts->lazy)
		return ckpt_err(e, -EOPNOTSUPP,
				"%s is an incremental checkpoint (its parent is %s): --lazy restores "
				"of those are not supported yet; restore it without --lazy",
				ctx->opts->dir, ctx->chain[0].name);
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];
		struct chain_cache cc = {.pid = t->pid};
		size_t cap = 0;

		for (size_t k = 0; k < t->n_pagemap && !ctx->n_chain; k++)
			if (t->pagemap[k]->has_in_parent && t->pagemap[k]->in_parent)
				return ckpt_err(e, -EINVAL,
						"pagemap-%d.img: entry %zu: pages in_parent, but "
						"the checkpoint has no parent",
						t->pid, k);
		if (!ctx->n_chain)
			continue;
		cc.lt = calloc(ctx->n_chain, sizeof(*cc.lt));
		cc.loaded = calloc(ctx->n_chain, sizeof(*cc.loaded));
		if (!cc.lt || !cc.loaded)
			r = ckpt_err(e, -ENOMEM, "out of memory");
		for (size_t k = 0; r >= 0 && k < t->n_pagemap; k++) {
			const PagemapEntry *p = t->pagemap[k];

			if (p->has_in_parent && p->in_parent)
				r = resolve(ctx, &cc, t, &cap, 0, p->vaddr,
					    p->vaddr + (uint64_t)p->nr_pages * RST_PAGE_SIZE);
		}
		for (size_t l = 0; cc.lt && l < ctx->n_chain; l++) {
			for (size_t k = 0; k < cc.lt[l].n; k++)
				pagemap_entry__free_unpacked(cc.lt[l].pm[k], NULL);
			free(cc.lt[l].pm);
			free(cc.lt[l].off);
		}
		free(cc.lt);
		free(cc.loaded);
		if (r < 0)
			return r;
	}
	if (ctx->n_chain)
		pr_debug("%zu parent checkpoints, nearest %s", ctx->n_chain, level_name(ctx, 0));
	return 0;
}

int chain_page_src(struct restore_ctx *ctx, const struct rtask *t, uint64_t vaddr,
		   size_t *level, uint64_t *off, uint64_t *avail, struct ckpt_error *e)
{
	size_t lo = 0, hi = t->n_psrc;

	(void)ctx;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->psrc[mid].vaddr + t->psrc[mid].len <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= t->n_psrc || t->psrc[lo].vaddr > vaddr)
		return ckpt_err(e, -EINVAL, "pid %d: no data for the page at %#" PRIx64, t->pid,
				vaddr);
	*level = t->psrc[lo].level;
	*off = t->psrc[lo].off + (vaddr - t->psrc[lo].vaddr);
	*avail = t->psrc[lo].len - (vaddr - t->psrc[lo].vaddr);
	return 0;
}

int chain_open_pages(struct restore_ctx *ctx, size_t level, pid_t pid, struct img_pages **ret,
		     struct ckpt_error *e)
{
	int r = img_pages_open(ctx->chain[level].dirfd, pid, ret, e);

	if (r < 0)
		return ckpt_err_wrap(e, "parent checkpoint %s", level_name(ctx, level));
	return 0;
}
