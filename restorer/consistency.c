/* SPDX-License-Identifier: MIT */
/*
 * Stage verify, once every image is loaded and each field checked on its
 * own: what must agree ACROSS records and images. Each image can be valid
 * and its checksum right while the whole describes a tree the dump never
 * saw: an fds image that lost a record restores a task without that fd;
 * a pipe end whose dev was changed becomes a pipe of its own, and the
 * other end a pipe nobody writes to. Every check here holds for what the
 * dump writes (it runs this verifier on its own images, restore_check_images)
 * and names the file and field it refuses.
 */
#define LOG_PREFIX "consistency: "

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "cleanup.h"
#include "log.h"
#include "restore.h"

#define UST_ESTABLISHED 1
#define UST_LISTEN 10

/* fds-PID.img holds exactly the fd table the dump recorded in pstree.img. */
static int check_fd_tables(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		const struct rtask *t = &ctx->tasks[i];
		const PstreeEntry *p = t->pst;

		if (p->has_nr_fds && p->nr_fds != t->n_fds)
			return ckpt_err(&ctx->err, -EINVAL,
					"fds-%d.img: %zu fd records, but pstree.img (pid %d, field "
					"nr_fds) says the task had %u: records were lost or added",
					t->pid, t->n_fds, t->pid, p->nr_fds);
		/* t->fds is sorted by fd (validate_fds), the dump's order */
		if (p->has_fds_crc32c && img_fds_digest(t->fds, t->n_fds) != p->fds_crc32c)
			return ckpt_err(
			    &ctx->err, -EINVAL,
			    "fds-%d.img: its records (fd, file id, cloexec) do not match "
			    "pstree.img (pid %d, field fds_crc32c %#x): the fd table was "
			    "changed",
			    t->pid, t->pid, p->fds_crc32c);
	}
	return 0;
}

/*
 * A process sharing its parent's fd table (files_of) lists the same fds as
 * the parent (one table, installed once), and no POSIX lock: the dump
 * refuses them there (which sharer took one is not known).
 */
static int check_shared_tables(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		const struct rtask *t = &ctx->tasks[i], *p = t->parent;
		const CoreEntry *a = t->core, *b = p ? p->core : NULL;

		/* one cwd, root and umask: the parent sets them for both */
		if (t->pst->has_fs_of &&
		    (strcmp(a->cwd, b->cwd) || strcmp(a->root, b->root) || a->umask != b->umask ||
		     a->has_cwd_deleted != b->has_cwd_deleted || a->cwd_deleted != b->cwd_deleted ||
		     a->cwd_dev != b->cwd_dev || a->cwd_ino != b->cwd_ino))
			return ckpt_err(
			    &ctx->err, -EINVAL,
			    "core-%d.img: fields cwd, root, umask: not as in core-%d.img, "
			    "but pstree.img (field fs_of) says the two share them",
			    t->pid, p->pid);
		if (!t->pst->has_files_of)
			continue;
		for (size_t k = 0; k < t->n_fds || k < p->n_fds; k++) {
			const FdEntry *a = k < t->n_fds ? t->fds[k] : NULL;
			const FdEntry *b = k < p->n_fds ? p->fds[k] : NULL;

			if (!a || !b || a->fd != b->fd || a->id != b->id ||
			    a->cloexec != b->cloexec)
				return ckpt_err(
				    &ctx->err, -EINVAL,
				    "fds-%d.img: fd %d: not as in fds-%d.img (fd %d), "
				    "but pstree.img (field files_of) says the two share "
				    "one fd table",
				    t->pid, a ? (int)a->fd : -1, p->pid, b ? (int)b->fd : -1);
			if (a->n_posix_locks || b->n_posix_locks)
				return ckpt_err(
				    &ctx->err, -EINVAL,
				    "fds-%d.img: fd %u: field posix_locks: a POSIX lock "
				    "in an fd table shared with pid %d",
				    a->n_posix_locks ? t->pid : p->pid, a->fd,
				    a->n_posix_locks ? p->pid : t->pid);
		}
	}
	return 0;
}

/* ---- pipes ---------------------------------------------------------------------- */

static bool is_pipe(const FileEntry *fe)
{
	return fe->type == FILE_TYPE__FILE_PIPE && fe->pipe;
}

static int cmp_pipe(const void *a, const void *b)
{
	const FileEntry *x = *(const FileEntry *const *)a, *y = *(const FileEntry *const *)b;

	if (x->pipe->pipe_id != y->pipe->pipe_id)
		return x->pipe->pipe_id < y->pipe->pipe_id ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * One anonymous pipe: the n entries with its pipe_id (lowest id first).
 * They share dev, path and size, at most one holds the data, and both
 * ends are there unless the missing one was closed everywhere
 * (peer_closed on every entry, which the dump records only then).
 */
static int check_one_pipe(struct restore_ctx *ctx, const FileEntry *const *v, size_t n)
{
	const FileEntry *fe0 = v[0], *data = NULL, *any = NULL;
	const PipeEntry *p0 = fe0->pipe;
	bool reader = false, writer = false, closed = true;
	char path[64];

	snprintf(path, sizeof(path), "pipe:[%" PRIu64 "]", p0->pipe_id);
	for (size_t i = 0; i < n; i++) {
		const FileEntry *fe = v[i];
		const PipeEntry *pe = fe->pipe;

		if (pe->has_dev != p0->has_dev || pe->dev != p0->dev)
			return ckpt_err(&ctx->err, -EINVAL,
					"files.img: entry %u: field pipe.dev: %#" PRIx64
					", but entry %u of the same pipe (pipe_id %" PRIu64
					") has %#" PRIx64 ": the ends of a pipe share id and dev",
					fe->id, pe->dev, fe0->id, p0->pipe_id, p0->dev);
		if (strcmp(fe->path, path))
			return ckpt_err(&ctx->err, -EINVAL,
					"files.img: entry %u: field path: %s, but its field "
					"pipe.pipe_id says %s",
					fe->id, fe->path, path);
		if (pe->size != p0->size)
			return ckpt_err(&ctx->err, -EINVAL,
					"files.img: entry %u (%s): field pipe.size: %u, but entry "
					"%u of the same pipe says %u",
					fe->id, path, pe->size, fe0->id, p0->size);
		if (pe->has_data && pe->data.len) {
			if (data)
				return ckpt_err(&ctx->err, -EINVAL,
						"files.img: entries %u and %u (%s): field "
						"pipe.data: both hold the pipe's data (one does)",
						data->id, fe->id, path);
			data = fe;
		}
		reader |= pe->end == PIPE_END__PIPE_READ;
		writer |= pe->end == PIPE_END__PIPE_WRITE;
		closed &= pe->has_peer_closed && pe->peer_closed;
		if (!any)
			any = fe;
	}
	if ((reader && writer) || closed)
		return 0;
	return ckpt_err(&ctx->err, -EINVAL,
			"files.img: entry %u (%s): the pipe has a %s end but no %s end, and "
			"field pipe.peer_closed does not say it was closed",
			any->id, path, reader ? "read" : "write", reader ? "write" : "read");
}

static int check_pipes(struct restore_ctx *ctx)
{
	_cleanup_free_ const FileEntry **v = calloc(ctx->nfiles + 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < ctx->nfiles; i++)
		if (is_pipe(ctx->files[i].fe))
			v[n++] = ctx->files[i].fe;
	qsort(v, n, sizeof(*v), cmp_pipe);
	for (size_t i = 0, k; i < n; i = k) {
		int r;

		for (k = i + 1; k < n && v[k]->pipe->pipe_id == v[i]->pipe->pipe_id; k++)
			;
		r = check_one_pipe(ctx, v + i, k - i);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- unix sockets ------------------------------------------------------------------ */

static bool is_unix(const FileEntry *fe)
{
	return fe->type == FILE_TYPE__FILE_UNIX_SK && fe->unix_sk;
}

/* The unix socket entries, sorted by inode. */
struct unix_index {
	const FileEntry **v;
	size_t n;
};

static int cmp_unix(const void *a, const void *b)
{
	const FileEntry *x = *(const FileEntry *const *)a, *y = *(const FileEntry *const *)b;

	return x->unix_sk->inode < y->unix_sk->inode ? -1 : x->unix_sk->inode > y->unix_sk->inode;
}

static const FileEntry *unix_by_inode(const struct unix_index *ix, uint64_t ino)
{
	size_t lo = 0, hi = ix->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uint64_t v = ix->v[mid]->unix_sk->inode;

		if (v == ino)
			return ix->v[mid];
		if (v < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool listed(const UnixSkEntry *l, uint64_t ino)
{
	for (size_t k = 0; k < l->n_icons; k++)
		if (l->icons[k] == ino)
			return true;
	return false;
}

/*
 * A connected stream or seqpacket socket and its peer name each other; a
 * client waiting in a listener's queue and that listener name each other.
 */
static int check_one_unix(struct restore_ctx *ctx, const struct unix_index *ix, const FileEntry *fe)
{
	const UnixSkEntry *u = fe->unix_sk;
	const FileEntry *pf;

	if (u->has_pending_on) {
		pf = unix_by_inode(ix, u->pending_on);
		if (!pf || pf->unix_sk->state != UST_LISTEN || !listed(pf->unix_sk, u->inode))
			return ckpt_err(&ctx->err, -EINVAL,
					"files.img: entry %u (%s): field unix_sk.pending_on: "
					"socket:[%" PRIu64 "] is not a listener of the images "
					"with this connection in its queue (field icons)",
					fe->id, fe->path, u->pending_on);
	}
	for (size_t k = 0; k < u->n_icons; k++) {
		pf = unix_by_inode(ix, u->icons[k]);
		if (!pf || !pf->unix_sk->has_pending_on || pf->unix_sk->pending_on != u->inode)
			return ckpt_err(&ctx->err, -EINVAL,
					"files.img: entry %u (%s): field unix_sk.icons[%zu]: "
					"socket:[%" PRIu64 "] is not a client of the images "
					"pending on it (field pending_on)",
					fe->id, fe->path, k, u->icons[k]);
	}
	if (u->has_pending_on || !u->has_peer || !u->peer || (u->has_external && u->external))
		return 0;
	pf = unix_by_inode(ix, u->peer);
	if (!pf || pf == fe || pf->unix_sk->type != u->type)
		return ckpt_err(&ctx->err, -EINVAL,
				"files.img: entry %u (%s): field unix_sk.peer: socket:[%" PRIu64
				"] is not another socket of its type in files.img",
				fe->id, fe->path, u->peer);
	/* a datagram socket may be connected one way; a connection is two ends */
	if (u->type != SOCK_DGRAM && pf->unix_sk->peer != u->inode)
		return ckpt_err(&ctx->err, -EINVAL,
				"files.img: entry %u (%s): field unix_sk.peer: its peer, entry %u "
				"(%s), names socket:[%" PRIu64 "] as its own peer",
				fe->id, fe->path, pf->id, pf->path, pf->unix_sk->peer);
	return 0;
}

static int check_unix(struct restore_ctx *ctx)
{
	_cleanup_free_ const FileEntry **v = calloc(ctx->nfiles + 1, sizeof(*v));
	struct unix_index ix = {.v = v};

	if (!ix.v)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < ctx->nfiles; i++)
		if (is_unix(ctx->files[i].fe))
			ix.v[ix.n++] = ctx->files[i].fe;
	qsort(ix.v, ix.n, sizeof(*ix.v), cmp_unix);
	for (size_t i = 1; i < ix.n; i++)
		if (ix.v[i]->unix_sk->inode == ix.v[i - 1]->unix_sk->inode)
			return ckpt_err(&ctx->err, -EINVAL,
					"files.img: entries %u and %u: field unix_sk.inode: both "
					"%" PRIu64,
					ix.v[i - 1]->id, ix.v[i]->id, ix.v[i]->unix_sk->inode);
	for (size_t i = 0; i < ix.n; i++) {
		int r = check_one_unix(ctx, &ix, ix.v[i]);

		if (r < 0)
			return r;
	}
	return 0;
}

int consistency_check(struct restore_ctx *ctx)
{
	int r = check_fd_tables(ctx);

	if (r >= 0)
		r = check_shared_tables(ctx);
	if (r >= 0)
		r = check_pipes(ctx);
	if (r >= 0)
		r = check_unix(ctx);
	return r;
}
