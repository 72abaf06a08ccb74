/* SPDX-License-Identifier: MIT */
/*
 * What a restore made outside its own processes — a tmpfs file or FIFO made
 * again because it was gone, a System V segment recreated with its saved id
 * — is recorded here as it is made, and removed again if the restore fails
 * (restore_run, after the tree is killed): a failed restore leaves the
 * machine as it found it. A restore that succeeds keeps them: they are the
 * program's now.
 */
#define LOG_PREFIX "undo: "

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <unistd.h>

#include "log.h"
#include "restore.h"

enum undo_kind {
	UNDO_UNLINK,
	UNDO_SHM_RMID,
	UNDO_RMDIR,
};

struct restore_undo {
	enum undo_kind kind;
	char *path;	       /* UNDO_UNLINK, UNDO_RMDIR */
	struct file_made made; /* UNDO_UNLINK, UNDO_RMDIR */
	int shmid;	       /* UNDO_SHM_RMID */
};

static struct restore_undo *undo_new(struct restore_ctx *ctx)
{
	struct restore_undo *n = realloc(ctx->undo, (ctx->nundo + 1) * sizeof(*n));

	if (!n)
		return NULL;
	ctx->undo = n;
	n = &ctx->undo[ctx->nundo++];
	memset(n, 0, sizeof(*n));
	return n;
}

int restore_undo_unlink(struct restore_ctx *ctx, const char *path, int made_fd)
{
	struct restore_undo *u = undo_new(ctx);
	char *p = strdup(path);

	if (!u || !p) {
		free(p);
		if (u)
			ctx->nundo--;
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	}
	u->kind = UNDO_UNLINK;
	u->path = p;
	u->made = file_made_of(made_fd, path);
	return 0;
}

/*
 * Whether path still names what the restore made: one put there since (the
 * directory may be writable by others) is not the restore's to remove.
 */
static bool undo_still_ours(const struct restore_undo *u)
{
	struct file_made now = file_made_of(-1, u->path);

	if (!u->made.known || !now.known)
		return true; /* not known, or gone: the removal says which */
	if (file_made_same(&now, &u->made))
		return true;
	pr_warn("rollback: %s is no longer what the restore made (replaced since): left as it is",
		u->path);
	return false;
}

/* A directory made by the restore (rmdir: its tasks are reaped by then). */
int restore_undo_rmdir(struct restore_ctx *ctx, const char *path)
{
	int r = restore_undo_unlink(ctx, path, -1);

	if (r >= 0)
		ctx->undo[ctx->nundo - 1].kind = UNDO_RMDIR;
	return r;
}

int restore_undo_shm(struct restore_ctx *ctx, int shmid)
{
	struct restore_undo *u = undo_new(ctx);

	if (!u)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	u->kind = UNDO_SHM_RMID;
	u->shmid = shmid;
	return 0;
}

void restore_undo_made_path(void *owner, const char *path)
{
	struct restore_ctx *ctx = owner;

	/* out of memory here only means a leftover on failure; say so */
	if (restore_undo_unlink(ctx, path, -1) < 0)
		pr_warn("cannot remember %s to remove it if the restore fails", path);
}

void restore_undo_run(struct restore_ctx *ctx)
{
	/* newest first */
	for (size_t i = ctx->nundo; i-- > 0;) {
		struct restore_undo *u = &ctx->undo[i];

		switch (u->kind) {
		case UNDO_UNLINK:
			if (!undo_still_ours(u))
				break;
			if (unlink(u->path) < 0 && errno != ENOENT)
				pr_warn("rollback: cannot remove %s: %m", u->path);
			else
				pr_info("rollback: removed %s", u->path);
			break;
		case UNDO_RMDIR:
			if (!undo_still_ours(u))
				break;
			if (rmdir(u->path) < 0 && errno != ENOENT)
				pr_warn("rollback: cannot remove directory %s: %m", u->path);
			else
				pr_info("rollback: removed directory %s", u->path);
			break;
		case UNDO_SHM_RMID:
			if (shmctl(u->shmid, IPC_RMID, NULL) < 0 && errno != EINVAL &&
			    errno != EIDRM)
				pr_warn("rollback: cannot remove System V segment %d: %m",
					u->shmid);
			else
				pr_info("rollback: removed System V segment %d", u->shmid);
			break;
		}
	}
	restore_undo_free(ctx);
}

void restore_undo_free(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nundo; i++)
		free(ctx->undo[i].path);
	free(ctx->undo);
	ctx->undo = NULL;
	ctx->nundo = 0;
}
