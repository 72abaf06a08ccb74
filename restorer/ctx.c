/* SPDX-License-Identifier: MIT */
/*
 * The restore context: its lifetime (init, free), the progress lines of
 * --progress-fd and the cancel check (SIGTERM, SIGINT) the stages poll.
 */
#define LOG_PREFIX "restore: "

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "log.h"
#include "restore.h"
#include "thp.h"

void restore_progress(struct restore_ctx *ctx)
{
	char line[256];
	int n;

	if (ctx->opts->progress_fd < 0)
		return;
	n = snprintf(line, sizeof(line),
		     "{\"bytes\":%" PRIu64 ",\"bytes_total\":%" PRIu64
		     ",\"tasks_done\":%zu,\"tasks_total\":%zu,\"stage\":\"%s\"}\n",
		     ctx->bytes_done, ctx->bytes_total, ctx->tasks_done, ctx->ntasks,
		     ctx->stage ? ctx->stage : "");
	/* The fd is non-blocking: a line the reader has no room for (or no
	 * reader at all, EPIPE) is dropped rather than stalling the restore. */
	if (write(ctx->opts->progress_fd, line, (size_t)n) < 0)
		pr_debug("progress line dropped: %m");
}

void restore_progress_pages(struct restore_ctx *ctx, uint64_t len)
{
	ctx->bytes_done += len;
	restore_progress(ctx);
}

void restore_progress_task_done(struct restore_ctx *ctx, const struct rtask *t)
{
	/* exact after each task, whatever restore_progress_pages() counted on
	 * the way (not shared memory) */
	ctx->bytes_tasks_done += t->pages_bytes;
	ctx->bytes_done = ctx->bytes_tasks_done;
	ctx->tasks_done++;
	restore_progress(ctx);
}

int restore_page_buf(struct restore_ctx *ctx, char **ret, struct ckpt_error *e)
{
	if (!ctx->page_buf && !(ctx->page_buf = thp_map(RST_PAGE_BUF_BYTES)))
		return ckpt_err_errno(e, -errno, "allocating %llu MiB for the pages",
				      RST_PAGE_BUF_BYTES >> 20);
	*ret = ctx->page_buf;
	return 0;
}

void restore_page_buf_free(struct restore_ctx *ctx)
{
	thp_unmap(ctx->page_buf, RST_PAGE_BUF_BYTES);
	ctx->page_buf = NULL;
}

int restore_check_cancel(struct restore_ctx *ctx)
{
	const struct restore_opts *o = ctx->opts;
	struct pollfd p = {.fd = o->client_fd, .events = POLLIN};

	if (o->cancel && *o->cancel)
		return ckpt_err(&ctx->err, -ECANCELED, "cancelled (SIGTERM or SIGINT)");
	/* (the init of a new pid namespace sees no parent: 0; the restorer
	 * outside passes cancels on) */
	if (o->parent_pid && !ctx->in_ns_init && getppid() != o->parent_pid)
		return ckpt_err(&ctx->err, -ECANCELED,
				"cancelled: the program that ran ckpt-restore (pid %d) is gone",
				(int)o->parent_pid);
	/* POLLHUP only: a client that shut down its writing side still reads */
	if (o->client_fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)))
		return ckpt_err(&ctx->err, -ECANCELED, "cancelled: ckptd's client went away");
	return 0;
}

void restore_close_control_fds(const struct restore_opts *o)
{
	for (size_t i = 0; i < o->n_commit_fds; i++)
		close(o->commit_fds[i]);
	if (o->client_fd >= 0)
		close(o->client_fd);
	if (o->hold_fd >= 0)
		close(o->hold_fd);
	if (o->caller_cgroup_fd >= 0)
		close(o->caller_cgroup_fd);
}

void restore_ctx_init(struct restore_ctx *ctx, const struct restore_opts *opts)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->opts = opts;
	ctx->dirfd = -1;
	ctx->status_rd = -1;
	ctx->status_wr = -1;
	ctx->uffd_rd = -1;
	ctx->uffd_wr = -1;
	ctx->t_start = ckpt_monotonic_seconds();
	ctx->caps_lowered = getuid() != 0; /* as main.c: caps_lower_all */
}

static void task_free(struct rtask *t, struct arena *arena)
{
	ProtobufCAllocator *a = arena->base ? &arena->pb : NULL;

	if (t->pst)
		protobuf_c_message_free_unpacked(&t->pst->base, NULL);
	/* (only what did not fit in the arena is freed one by one) */
	if (!arena_holds_all(arena)) {
		if (t->core)
			protobuf_c_message_free_unpacked(&t->core->base, a);
		if (t->mm)
			protobuf_c_message_free_unpacked(&t->mm->base, a);
		for (size_t i = 0; i < t->n_pagemap; i++)
			protobuf_c_message_free_unpacked(&t->pagemap[i]->base, a);
		for (size_t i = 0; i < t->n_fds; i++)
			protobuf_c_message_free_unpacked(&t->fds[i]->base, a);
	}
	rqueue_drop(t);
	free(t->pagemap);
	free(t->table);
	free(t->psrc);
	free(t->fds);
	free(t->threads);
	free(t->children);
	free(t->kept);
	free(t->held);
	free(t->sib_ok);
	free(t->sib_reads);
	free(t->stages);
	free(t->pagemap_off);
	free(t->lazy);
	closep(&t->uffd);
}

void restore_ctx_free(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++)
		task_free(&ctx->tasks[i], &ctx->arena);
	arena_fini(&ctx->arena);
	free(ctx->tasks);
	free(ctx->by_pid);
	for (size_t i = 0; i < ctx->nzombies; i++)
		protobuf_c_message_free_unpacked(&ctx->zombies[i]->base, NULL);
	free(ctx->zombies);
	files_close(ctx);
	for (size_t i = 0; i < ctx->nfiles && !arena_holds_all(&ctx->files_arena); i++)
		if (ctx->files[i].fe)
			protobuf_c_message_free_unpacked(&ctx->files[i].fe->base,
							 &ctx->files_arena.pb);
	arena_fini(&ctx->files_arena);
	free(ctx->files);
	for (size_t i = 0; i < ctx->n_deleted_cwds; i++)
		closep(&ctx->deleted_cwds[i].fd);
	free(ctx->deleted_cwds);
	tty_free(ctx);
	cgroups_free(ctx);
	restore_undo_free(ctx);
	plan_free(&ctx->plan);
	if (ctx->inv)
		inventory__free_unpacked(ctx->inv, NULL);
	for (size_t i = 0; i < ctx->n_chain; i++) {
		closep(&ctx->chain[i].dirfd);
		free(ctx->chain[i].name);
		if (ctx->chain[i].inv)
			inventory__free_unpacked(ctx->chain[i].inv, NULL);
	}
	free(ctx->chain);
	restore_page_buf_free(ctx);
	free(ctx->fd_taken);
	closep(&ctx->dirfd);
	closep(&ctx->status_rd);
	closep(&ctx->status_wr);
	closep(&ctx->uffd_rd);
	closep(&ctx->uffd_wr);
	if (ctx->ctl)
		munmap(ctx->ctl, RESTORE_CTL_SIZE(ctx->ntasks));
	memset(ctx, 0, sizeof(*ctx));
}
