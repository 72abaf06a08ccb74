/* SPDX-License-Identifier: MIT */
/*
 * The images against this machine: CPU xstate features, the kernel's vDSO
 * layout, the files the tasks had open or mapped, and (stage pids) whether
 * every pid of the tree is free. All of it before anything is created.
 */
#define LOG_PREFIX "checks: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "proc.h"
#include "restore.h"

/* Offset of xstate_bv in the XSAVE header of an NT_X86_XSTATE area. */
#define XSAVE_HDR_OFFSET 512
#define PID_ZOMBIE_WAIT_MS 5000
#define PID_POLL_MS 20

static int check_xstate(struct restore_ctx *ctx)
{
	struct ckpt_error *e = &ctx->err;
	const Inventory *inv = ctx->inv;
	uint64_t lacking;

	if (cpu_xfeatures(&ctx->xcr0, &ctx->xstate_size) < 0)
		return ckpt_err(e, -ENOTSUP, "cannot read this CPU's xstate features (XCR0)");
	if (inv->has_xfeatures && (lacking = inv->xfeatures & ~ctx->xcr0))
		return ckpt_err(e, -ENOTSUP,
				"image was made on a CPU with xstate features %#" PRIx64
				" this CPU lacks (%#" PRIx64 ")",
				inv->xfeatures, lacking);
	if (inv->has_xstate_size && inv->xstate_size != ctx->xstate_size)
		return ckpt_err(e, -ENOTSUP,
				"image has a %u byte xstate area, this CPU's is %u bytes "
				"(inventory.img field xstate_size)",
				inv->xstate_size, ctx->xstate_size);
	for (size_t i = 0; i < ctx->ntasks; i++) {
		const ThreadCore *th = ctx->tasks[i].thread;
		uint64_t bv;

		if (th->xstate.len != ctx->xstate_size)
			return ckpt_err(e, -ENOTSUP,
					"core-%d.img: field threads[0].xstate: %zu bytes, this "
					"CPU's xstate area is %u bytes",
					ctx->tasks[i].pid, th->xstate.len, ctx->xstate_size);
		memcpy(&bv, th->xstate.data + XSAVE_HDR_OFFSET, sizeof(bv));
		if ((lacking = bv & ~ctx->xcr0))
			return ckpt_err(e, -ENOTSUP,
					"core-%d.img: image was made on a CPU with xstate features "
					"%#" PRIx64 " this CPU lacks (%#" PRIx64 ")",
					ctx->tasks[i].pid, bv, lacking);
	}
	return 0;
}

int vdso_layout_self(struct vdso_layout *ret, struct ckpt_error *e)
{
	struct proc_vma_list l = {0};
	struct vdso_layout v = {0};
	int r;

	r = proc_parse_maps(0, &l, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < l.n; i++) {
		const struct proc_vma *m = &l.v[i];

		if (!strcmp(m->path, "[vvar]"))
			v.vvar = m->start, v.vvar_len = m->end - m->start;
		else if (!strcmp(m->path, "[vvar_vclock]"))
			v.vclock = m->start, v.vclock_len = m->end - m->start;
		else if (!strcmp(m->path, "[vdso]"))
			v.vdso = m->start, v.vdso_len = m->end - m->start;
	}
	proc_vma_list_free(&l);
	v.present = v.vdso_len != 0;
	*ret = v;
	return 0;
}

/* The vDSO code finds its data pages at fixed offsets: sizes and relative
 * layout must be this kernel's, or the moved vDSO would read garbage. */
static int check_vdso(struct restore_ctx *ctx, const struct rtask *t)
{
	const struct vdso_layout *s = &t->vdso, *k = &ctx->vdso;

	if (!s->present)
		return 0;
	if (!k->present)
		return ckpt_err(&ctx->err, -ENOTSUP,
				"pid %d had a [vdso] but this kernel maps none", t->pid);
	if (s->vvar_len != k->vvar_len || s->vclock_len != k->vclock_len ||
	    s->vdso_len != k->vdso_len || (s->vvar_len && s->vdso - s->vvar != k->vdso - k->vvar) ||
	    (s->vclock_len && s->vdso - s->vclock != k->vdso - k->vclock))
		return ckpt_err(&ctx->err, -ENOTSUP,
				"pid %d: saved vDSO layout ([vvar] %#" PRIx64
				" [vvar_vclock] %#" PRIx64 " [vdso] %#" PRIx64
				" bytes) differs from this kernel's (%#" PRIx64 " %#" PRIx64
				" %#" PRIx64 "); images from another kernel are not "
				"supported yet",
				t->pid, s->vvar_len, s->vclock_len, s->vdso_len, k->vvar_len,
				k->vclock_len, k->vdso_len);
	return 0;
}

/*
 * Open a mapped file or executable read-only and check it is the dumped one.
 * O_NOATIME where we may: neither the check's read nor the task's mmap of
 * it (file_accessed) gives the file a new access time, which the program
 * may look at (test_atime); the flag is the description's, and nothing
 * shows a mapping's.
 */
static int open_mapped_file(struct restore_ctx *ctx, struct rfile *f)
{
	struct ckpt_error *e = &ctx->err;
	_cleanup_close_ int fd = -1;
	struct stat st;
	char what[PATH_MAX + 32];
	int r;

	/* a FIFO put at the path is refused, not waited on for a writer */
	fd = file_open_regular(f->fe->path, O_RDONLY | O_CLOEXEC | O_NOATIME, &st);
	if (fd == -EBADMSG)
		return ckpt_err(e, -EINVAL, "mapped file %s (file id %u) is not a regular file",
				f->fe->path, f->fe->id);
	if (fd < 0)
		return ckpt_err_errno(e, fd, "mapped file %s (file id %u)", f->fe->path, f->fe->id);
	if (f->fe->ident) {
		snprintf(what, sizeof(what), "mapped file %s", f->fe->path);
		r = file_ident_check(fd, f->fe->ident, what, e);
		if (r < 0)
			return r;
	}
	f->map_fd = TAKE_FD(fd);
	return 0;
}

/*
 * The entry each kind verified last (for the kinds with verify_same), in
 * files order: a tree's many fds of one file are mostly side by side.
 */
struct verified {
	const struct fd_kind *kind;
	const FileEntry *fe;
};

static bool verified_already(struct verified *last, size_t n, const struct rfile *f)
{
	for (size_t k = 0; k < n && f->kind->verify_same; k++) {
		if (last[k].kind == f->kind || !last[k].kind) {
			bool same = last[k].kind && f->kind->verify_same(last[k].fe, f->fe);

			last[k] = (struct verified){f->kind, f->fe};
			return same;
		}
	}
	return false;
}

static int check_files(struct restore_ctx *ctx)
{
	struct verified last[8] = {0};

	for (size_t i = 0; i < ctx->nfiles; i++) {
		struct rfile *f = &ctx->files[i];
		int r;

		if ((f->used_by_fd || f->in_flight) && f->kind->verify &&
		    !verified_already(last, ARRAY_SIZE(last), f)) {
			r = f->kind->verify(f->fe, &ctx->err);
			if (r < 0)
				return ckpt_err_wrap(&ctx->err, "file id %u", f->fe->id);
		}
		if (f->used_by_map) {
			r = open_mapped_file(ctx, f);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int checks_machine(struct restore_ctx *ctx)
{
	int r;

	r = check_xstate(ctx);
	if (r < 0)
		return r;
	r = vdso_layout_self(&ctx->vdso, &ctx->err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ctx->ntasks; i++) {
		r = check_vdso(ctx, &ctx->tasks[i]);
		if (r < 0)
			return r;
	}
	r = check_files(ctx);
	if (r < 0)
		return r;
	return cgroups_check(ctx);
}

/* ---- stage pids ---------------------------------------------------------------- */

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* A pid taken outside: --new-pidns would give the tree its pids anyway. */
#define NEW_PIDNS_HINT                                                                             \
	"; restore with --new-pidns to give the tree its saved pids in a new pid namespace"

static int pid_in_use(struct restore_ctx *ctx, pid_t pid)
{
	struct proc_status st;
	struct ckpt_error ignore = {0};

	if (proc_parse_status(pid, &st, &ignore) < 0)
		return ckpt_err(&ctx->err, -EBUSY, "pid %d is in use" NEW_PIDNS_HINT, pid);
	if (st.tgid != pid)
		return ckpt_err(&ctx->err, -EBUSY,
				"pid %d is in use by a thread of process %d ('%s', state %c, uid "
				"%u)" NEW_PIDNS_HINT,
				pid, st.tgid, st.name, st.state, st.uid[0]);
	return ckpt_err(&ctx->err, -EBUSY,
			"pid %d is in use by '%s' (state %c, parent %d, uid %u)" NEW_PIDNS_HINT,
			pid, st.name, st.state, st.ppid, st.uid[0]);
}

/* 1: in use, 2: a zombie (will go away once reaped), 0: free */
static int pid_state(pid_t pid)
{
	struct ckpt_error ignore = {0};
	struct proc_stat st;
	char path[32];

	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (access(path, F_OK) < 0)
		return 0;
	if (proc_parse_stat(pid, &st, &ignore) < 0)
		return access(path, F_OK) < 0 ? 0 : 1;
	return st.state == 'Z' || st.state == 'X' ? 2 : 1;
}

/* The zombies' pids, and those of the groups whose leader was gone (plan.c). */
static int zombie_pids_free(struct restore_ctx *ctx, int *waited)
{
	for (size_t i = 0; i < ctx->nzombies + ctx->plan.nlost_groups; i++) {
		pid_t pid = i < ctx->nzombies ? ctx->zombies[i]->pid
					      : ctx->plan.lost_groups[i - ctx->nzombies].pgid;
		int s;

		while ((s = pid_state(pid)) == 2 && *waited < PID_ZOMBIE_WAIT_MS) {
			sleep_ms(PID_POLL_MS);
			*waited += PID_POLL_MS;
		}
		if (s != 0)
			return pid_in_use(ctx, pid);
	}
	return 0;
}

int checks_pids_free(struct restore_ctx *ctx)
{
	int waited = 0;

	for (size_t i = 0; i < ctx->ntasks; i++) {
		const struct rtask *t = &ctx->tasks[i];

		for (size_t k = 0; k <= t->n_threads; k++) {
			pid_t pid = k ? t->threads[k - 1].tid : t->pid;
			int s;

			if (pid == 1)
				return ckpt_err(&ctx->err, -EINVAL,
						"pid 1 cannot be restored (%s)",
						ctx->opts->new_pidns
						    ? "it is the new pid namespace's init"
						    : "a pid namespace's init is not restored");
			/* A tree killed by a dump stays zombie until init reaps it (~1 s). */
			while ((s = pid_state(pid)) == 2 && waited < PID_ZOMBIE_WAIT_MS) {
				sleep_ms(PID_POLL_MS);
				waited += PID_POLL_MS;
			}
			if (s != 0)
				return pid_in_use(ctx, pid);
		}
	}
	return zombie_pids_free(ctx, &waited);
}
