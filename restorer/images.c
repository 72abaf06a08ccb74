/* SPDX-License-Identifier: MIT */
/*
 * Load every image of a checkpoint into memory and validate every field
 * before use. The inventory's checksums only prove the files are the ones
 * the dumper wrote; the content is still checked here (pids, fd numbers,
 * file ids, address ranges, counts), so that a bad image is an error naming
 * the file and the field, never a crash or a half-restored tree.
 */
#define LOG_PREFIX "images: "
/* the kernel's default threads-max is about 190,000 on these machines; a
 * bound for forged images (the checks below are O(n log n)) */
#define PSTREE_MAX_THREADS 65536

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "cleanup.h"
#include "log.h"
#include "mm_cow.h"
#include "proc.h"
#include "restore.h"
#include "kinds/iouring.h"

/* Generous bounds for counts that the kernel bounds anyway. */
#define MAX_AUXV_WORDS 128
#define MAX_GROUPS 65536
#define MAX_VMAS 1000000

static int read_pid_max(pid_t *ret, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	long v;
	int r;

	r = proc_read_file("/proc/sys/kernel/pid_max", &text, NULL, e);
	if (r < 0)
		return r;
	v = strtol(text, NULL, 10);
	if (v < 2 || v > (1L << 22))
		return ckpt_err(e, -EINVAL, "/proc/sys/kernel/pid_max: bad value '%s'", text);
	*ret = (pid_t)v;
	return 0;
}

static int pid_check(struct restore_ctx *ctx, const char *file, const char *field, long pid)
{
	if (pid < 1 || pid >= ctx->pid_max)
		return ckpt_err(&ctx->err, -EINVAL, "%s: %s %ld is out of range 1..%d (pid_max)",
				file, field, pid, ctx->pid_max - 1);
	return 0;
}

/*
 * Read every message of an image into a growing array of pointers (from
 * malloc), each message unpacked with alloc (NULL: malloc).
 */
static int read_all(int dirfd, enum img_kind kind, pid_t pid, size_t max, ProtobufCAllocator *alloc,
		    void ***ret, size_t *ret_n, struct ckpt_error *e);

int images_read_all(int dirfd, enum img_kind kind, pid_t pid, size_t max, void ***ret,
		    size_t *ret_n, struct ckpt_error *e)
{
	return read_all(dirfd, kind, pid, max, NULL, ret, ret_n, e);
}

static int read_all(int dirfd, enum img_kind kind, pid_t pid, size_t max, ProtobufCAllocator *alloc,
		    void ***ret, size_t *ret_n, struct ckpt_error *e)
{
	_cleanup_img_ struct img *img = NULL;
	void **v = NULL;
	size_t n = 0, cap = 0;
	int r;

	r = img_open(dirfd, kind, pid, &img, e);
	if (r < 0)
		return r;
	img_set_allocator(img, alloc);
	for (;;) {
		ProtobufCMessage *m = NULL;

		r = img_read_msg(img, &m, e);
		if (r <= 0)
			break;
		if (n == max) {
			protobuf_c_message_free_unpacked(m, alloc);
			r = ckpt_err(e, -E2BIG, "%s: more than %zu records", img_name(img), max);
			break;
		}
		if (n == cap) {
			void **nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (!nv) {
				protobuf_c_message_free_unpacked(m, alloc);
				r = ckpt_err(e, -ENOMEM, "%s: out of memory", img_name(img));
				break;
			}
			v = nv;
		}
		v[n++] = m;
	}
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			protobuf_c_message_free_unpacked(v[i], alloc);
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int read_one(int dirfd, enum img_kind kind, pid_t pid, ProtobufCAllocator *alloc, void **ret,
		    struct ckpt_error *e)
{
	_cleanup_img_ struct img *img = NULL;
	int r;

	r = img_open(dirfd, kind, pid, &img, e);
	if (r < 0)
		return r;
	img_set_allocator(img, alloc);
	return img_read_one(img, (ProtobufCMessage **)ret, e);
}

/* ---- files.img -------------------------------------------------------------- */

static int cmp_file(const void *a, const void *b)
{
	const struct rfile *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int rtask_fd_of_file(const struct rtask *t, uint32_t id)
{
	int fd = -1;

	for (size_t i = 0; i < t->n_fds; i++)
		if (t->fds[i]->id == id && (fd < 0 || (int)t->fds[i]->fd < fd))
			fd = (int)t->fds[i]->fd;
	return fd;
}

struct rfile *file_by_id(const struct restore_ctx *ctx, uint32_t id)
{
	size_t lo = 0, hi = ctx->nfiles;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uint32_t v = ctx->files[mid].id;

		if (v == id)
			return &ctx->files[mid];
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * The type must be one a kind restores (the kind says what its path holds),
 * or FILE_SHMEM: a shared memory object, no fd kind (restorer/shmem.c makes
 * it; its path is absolute: "/memfd:NAME", "/SYSV00000000", the deleted file).
 */
static int validate_file(const FileEntry *fe, struct ckpt_error *e)
{
	const struct fd_kind *k = fd_kind_for_file(fe);
	enum fd_kind_path path;

	if (k)
		path = k->path;
	else if (fe->type == FILE_TYPE__FILE_SHMEM)
		path = FD_PATH_ABSOLUTE;
	else
		return ckpt_err(e, -EINVAL, "files.img: file id %u: field type: unknown value %d",
				fe->id, fe->type);
	if (path == FD_PATH_ANON_INODE) {
		if (!fe->path || strncmp(fe->path, "anon_inode:", 11) || strlen(fe->path) >= 64)
			return ckpt_err(e, -EINVAL,
					"files.img: file id %u: field path: not an anon_inode link",
					fe->id);
		return 0;
	}
	/* a pipe's or socket's path is its /proc link: "pipe:[INODE]", "socket:[INODE]" */
	if (!fe->path || (fe->path[0] != '/' && path != FD_PATH_PROC_LINK) ||
	    strlen(fe->path) >= PATH_MAX)
		return ckpt_err(e, -EINVAL,
				"files.img: file id %u: field path: not an absolute path shorter "
				"than PATH_MAX",
				fe->id);
	return 0;
}

/* Room for images unpacked: what a checkpoint of many small processes takes
 * is about 3 times the bytes of the files; files.img of 9,000 fds of
 * /dev/null 10 times (a FileEntry is 312 bytes, 32 in the file). A full
 * arena only makes the forks copy more (arena.h); untouched pages cost
 * nothing. */
#define ARENA_PER_IMAGE_BYTE 8
#define ARENA_PER_FILES_BYTE 16
#define ARENA_BASE (1u << 20)

/* The bytes of the images pred picks, as the inventory lists them. */
static uint64_t images_bytes(const struct restore_ctx *ctx, bool (*pred)(const char *name))
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < ctx->inv->n_images; i++)
		if (pred(ctx->inv->images[i]->name))
			bytes += ctx->inv->images[i]->size;
	return bytes;
}

static size_t arena_bytes(uint64_t image_bytes, unsigned per_byte, uint64_t extra)
{
	uint64_t bytes = image_bytes * per_byte + extra + ARENA_BASE;

	/* (the inventory's sizes are the files' own, checked; a bound anyway) */
	return bytes < (1ULL << 36) ? (size_t)bytes : (size_t)1 << 36;
}

static bool files_image(const char *name)
{
	enum img_kind kind;
	int pid;

	return img_kind_from_name(name, &kind, &pid) == 0 && kind == IMG_FILES;
}

/*
 * files.img, into an arena of its own: 10,000 open files are 10,000
 * messages, whose mallocs and frees one by one cost a restore of
 * 10,000 fds more than its opens (bench/criu.sh, 9,000 fds).
 */
static int load_files(struct restore_ctx *ctx)
{
	struct ckpt_error *e = &ctx->err;
	ProtobufCAllocator *a = &ctx->files_arena.pb;
	void **msgs = NULL;
	size_t n = 0;
	int r;

	/* plan_only: no fork follows (the dump's own check, in its freeze) */
	r = arena_init(&ctx->files_arena,
		       arena_bytes(images_bytes(ctx, files_image), ARENA_PER_FILES_BYTE, 0),
		       !ctx->opts->plan_only, e);
	if (r < 0)
		return r;
	r = read_all(ctx->dirfd, IMG_FILES, 0, 1u << 20, a, &msgs, &n, e);
	if (r < 0)
		return r;
	ctx->files = calloc(n ? n : 1, sizeof(*ctx->files));
	if (!ctx->files) {
		for (size_t i = 0; i < n; i++)
			protobuf_c_message_free_unpacked(msgs[i], a);
		free(msgs);
		return ckpt_err(e, -ENOMEM, "files.img: out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		ctx->files[i].fe = msgs[i];
		ctx->files[i].id = ctx->files[i].fe->id;
		ctx->files[i].obj_fd = -1;
		ctx->files[i].map_fd = -1;
		ctx->files[i].direct_nr = -1;
	}
	ctx->nfiles = n;
	free(msgs);
	qsort(ctx->files, n, sizeof(*ctx->files), cmp_file);
	for (size_t i = 0; i < n; i++) {
		FileEntry *fe = ctx->files[i].fe;

		if (i && ctx->files[i - 1].fe->id == fe->id)
			return ckpt_err(e, -EINVAL, "files.img: field id: %u appears twice",
					fe->id);
		r = validate_file(fe, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- pstree.img ------------------------------------------------------------- */

static int cmp_task_pid(const void *a, const void *b)
{
	const struct rtask *x = *(struct rtask *const *)a, *y = *(struct rtask *const *)b;

	return x->pid - y->pid;
}

const PstreeEntry *zombie_by_pid(const struct restore_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->nzombies; i++)
		if (ctx->zombies[i]->pid == pid)
			return ctx->zombies[i];
	return NULL;
}

struct rtask *task_by_pid(const struct restore_ctx *ctx, pid_t pid)
{
	size_t lo = 0, hi = ctx->ntasks;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		pid_t v = ctx->by_pid[mid]->pid;

		if (v == pid)
			return ctx->by_pid[mid];
		if (v < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int cmp_tid(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

/* No tid twice in one process: sorted, not compared pairwise (10,000 threads). */
static int threads_unique(struct restore_ctx *ctx, const PstreeEntry *p)
{
	_cleanup_free_ int32_t *tids = NULL;

	if (p->n_threads < 2)
		return 0;
	tids = malloc(p->n_threads * sizeof(*tids));
	if (!tids)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	memcpy(tids, p->threads, p->n_threads * sizeof(*tids));
	qsort(tids, p->n_threads, sizeof(*tids), cmp_tid);
	for (size_t i = 1; i < p->n_threads; i++)
		if (tids[i] == tids[i - 1])
			return ckpt_err(&ctx->err, -EINVAL,
					"pstree.img: pid %d: field threads: tid %d appears twice",
					p->pid, tids[i]);
	return 0;
}

static int validate_pstree_entry(struct restore_ctx *ctx, const PstreeEntry *p)
{
	struct ckpt_error *e = &ctx->err;
	char field[64];
	int r;

	r = pid_check(ctx, "pstree.img", "field pid", p->pid);
	if (r < 0)
		return r;
	snprintf(field, sizeof(field), "pid %d: field pgid", p->pid);
	r = pid_check(ctx, "pstree.img", field, p->pgid);
	if (r < 0)
		return r;
	snprintf(field, sizeof(field), "pid %d: field sid", p->pid);
	r = pid_check(ctx, "pstree.img", field, p->sid);
	if (r < 0)
		return r;
	if (p->ppid != 0) {
		snprintf(field, sizeof(field), "pid %d: field ppid", p->pid);
		r = pid_check(ctx, "pstree.img", field, p->ppid);
		if (r < 0)
			return r;
	}
	if (p->n_threads > PSTREE_MAX_THREADS)
		return ckpt_err(e, -EINVAL,
				"pstree.img: pid %d: field threads: %zu threads (max %d)", p->pid,
				p->n_threads, PSTREE_MAX_THREADS);
	if (p->n_threads >= 1 && p->threads[0] != p->pid)
		return ckpt_err(e, -EINVAL, "pstree.img: pid %d: field threads: %d is not the pid",
				p->pid, p->threads[0]);
	for (size_t i = 1; i < p->n_threads; i++) {
		snprintf(field, sizeof(field), "pid %d: field threads[%zu]", p->pid, i);
		r = pid_check(ctx, "pstree.img", field, p->threads[i]);
		if (r < 0)
			return r;
	}
	return threads_unique(ctx, p);
}

/*
 * The group and session a zombie joins before it exits (task.c
 * zombie_clone): its parent's, its own group in its parent's session, its
 * own session, or another group of its parent's session led by a live task
 * (the same rule as the dump's, dump_check_sessions). Live tasks of its
 * session may be in the group it leads (they join it once it is a zombie);
 * none in a session it leads.
 */
static bool zombie_group_ok(const struct restore_ctx *ctx, const PstreeEntry *z,
			    const struct rtask *p)
{
	const struct rtask *leader = task_by_pid(ctx, z->pgid);

	if (z->sid != p->pst->sid && z->sid != z->pid)
		return false;
	for (size_t k = 0; k < ctx->ntasks; k++) {
		const PstreeEntry *m = ctx->tasks[k].pst;

		if (m->sid == z->pid ||
		    (m->pgid == z->pid &&
		     (z->pgid != z->pid || z->sid != p->pst->sid || m->sid != z->sid)))
			return false;
	}
	if (z->pgid == z->pid)
		return true;
	return z->sid == p->pst->sid && leader && leader->pst->pgid == z->pgid &&
	       leader->pst->sid == z->sid;
}

static int load_pstree(struct restore_ctx *ctx)
{
	struct ckpt_error *e = &ctx->err;
	void **msgs = NULL;
	size_t n = 0;
	int r;

	r = read_all(ctx->dirfd, IMG_PSTREE, 0, (size_t)ctx->pid_max, NULL, &msgs, &n, e);
	if (r < 0)
		return r;
	ctx->tasks = calloc(n ? n : 1, sizeof(*ctx->tasks));
	ctx->by_pid = calloc(n ? n : 1, sizeof(*ctx->by_pid));
	ctx->zombies = calloc(n ? n : 1, sizeof(*ctx->zombies));
	if (!ctx->tasks || !ctx->by_pid || !ctx->zombies) {
		for (size_t i = 0; i < n; i++)
			protobuf_c_message_free_unpacked(msgs[i], NULL);
		free(msgs);
		return ckpt_err(e, -ENOMEM, "pstree.img: out of memory");
	}
	for (size_t i = 0, k = 0; i < n; i++) {
		PstreeEntry *pe = msgs[i];
		struct rtask *t = &ctx->tasks[k];

		if (pe->has_zombie_status) {
			ctx->zombies[ctx->nzombies++] = pe;
			continue;
		}
		t->pst = pe;
		t->uffd = -1;
		t->pid = t->pst->pid;
		t->ppid = t->pst->ppid;
		ctx->by_pid[k++] = t;
	}
	n -= ctx->nzombies;
	ctx->ntasks = n;
	free(msgs);
	if (n == 0)
		return ckpt_err(e, -EINVAL, "pstree.img: no task");
	for (size_t i = 0; i < n; i++) {
		r = validate_pstree_entry(ctx, ctx->tasks[i].pst);
		if (r < 0)
			return r;
	}
	qsort(ctx->by_pid, n, sizeof(*ctx->by_pid), cmp_task_pid);
	for (size_t i = 1; i < n; i++)
		if (ctx->by_pid[i]->pid == ctx->by_pid[i - 1]->pid)
			return ckpt_err(e, -EINVAL, "pstree.img: field pid: %d appears twice",
					ctx->by_pid[i]->pid);
	return 0;
}

/* Exactly one root (ppid 0, the inventory's root_pid); every ppid in the tree. */
static int link_tree(struct restore_ctx *ctx)
{
	struct ckpt_error *e = &ctx->err;

	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		if (t->ppid == 0) {
			if (ctx->root)
				return ckpt_err(e, -EINVAL,
						"pstree.img: pids %d and %d both have ppid 0; a "
						"tree has one root",
						ctx->root->pid, t->pid);
			if (t->pid != ctx->inv->root_pid)
				return ckpt_err(e, -EINVAL,
						"pstree.img: pid %d has ppid 0 but inventory.img "
						"says the root is pid %d",
						t->pid, ctx->inv->root_pid);
			ctx->root = t;
			continue;
		}
		t->parent = task_by_pid(ctx, t->ppid);
		if (!t->parent)
			return ckpt_err(
			    e, -EINVAL,
			    "pstree.img: pid %d: field ppid: %d is not a task of the tree", t->pid,
			    t->ppid);
		if (t->parent == t)
			return ckpt_err(e, -EINVAL, "pstree.img: pid %d is its own parent", t->pid);
	}
	if (!ctx->root)
		return ckpt_err(e, -EINVAL, "pstree.img: no task with ppid 0 (root pid %d)",
				ctx->inv->root_pid);
	for (size_t i = 0; i < ctx->nzombies; i++) {
		const PstreeEntry *z = ctx->zombies[i];
		const struct rtask *p = task_by_pid(ctx, z->ppid);
		int r = validate_pstree_entry(ctx, z);

		if (r < 0)
			return r;
		if (!p || task_by_pid(ctx, z->pid) || z->n_threads > 1 ||
		    !zombie_group_ok(ctx, z, p) || z->zombie_status > 0xffff ||
		    (z->zombie_comm && strlen(z->zombie_comm) > 15))
			return ckpt_err(e, -EINVAL,
					"pstree.img: zombie pid %d: parent %d, group %d, session "
					"%d, status %#x, or name: not a zombie child of a task "
					"that can join its group and session again",
					z->pid, z->ppid, z->pgid, z->sid, z->zombie_status);
	}
	if (ctx->inv->has_ntasks && ctx->inv->ntasks != ctx->ntasks)
		return ckpt_err(e, -EINVAL,
				"inventory.img: field ntasks: %u, but pstree.img lists %zu tasks",
				ctx->inv->ntasks, ctx->ntasks);
	return 0;
}

/*
 * Fd tables shared by processes (files_of: made with clone3(CLONE_FILES)
 * by the parent): the task that installs each (files_top, the first
 * process of the chain) and the number of each task in its table.
 */
static int link_files_tables(struct restore_ctx *ctx)
{
	_cleanup_free_ size_t *count = calloc(ctx->ntasks + 1, sizeof(*count));

	if (!count)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i], *top = t;
		size_t steps = 0;

		if (t->pst->has_files_of && (!t->parent || t->pst->files_of != t->ppid))
			return ckpt_err(&ctx->err, -EINVAL,
					"pstree.img: pid %d: field files_of: %d is not its parent "
					"(%d): only a parent's fd table can be shared",
					t->pid, t->pst->files_of, t->ppid);
		if (t->pst->has_fs_of && (!t->parent || t->pst->fs_of != t->ppid))
			return ckpt_err(
			    &ctx->err, -EINVAL,
			    "pstree.img: pid %d: field fs_of: %d is not its parent (%d): "
			    "only a parent's cwd, root and umask can be shared",
			    t->pid, t->pst->fs_of, t->ppid);
		while (top->pst->has_files_of && top->parent && steps++ <= ctx->ntasks)
			top = top->parent;
		if (steps > ctx->ntasks)
			return ckpt_err(&ctx->err, -EINVAL,
					"pstree.img: pid %d: field files_of: a loop of parents",
					t->pid);
		t->files_top = top;
	}
	/* the top first in its table (slot 0), then the others in pstree order */
	for (size_t i = 0; i < ctx->ntasks; i++)
		if (ctx->tasks[i].files_top == &ctx->tasks[i])
			count[i] = 1;
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];
		size_t *c = &count[t->files_top - ctx->tasks];

		if (t->files_top == t)
			continue;
		t->files_slot = (*c)++;
	}
	/* each table's tasks listed at its top: no task looks through all of them */
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		if (t->files_top != t)
			continue;
		t->table = calloc(count[i], sizeof(*t->table));
		if (!t->table)
			return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
		t->n_table = count[i];
	}
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		t->files_top->table[t->files_slot] = t;
		t->files_top->table_last = t;
	}
	return 0;
}

/* ---- core-PID.img ------------------------------------------------------------ */

static int validate_thread(struct restore_ctx *ctx, const char *file, size_t idx, ThreadCore *th)
{
	struct ckpt_error *e = &ctx->err;
	char f[192];
	int r;

	/* the messages below say "threads[0]": name the right one */
	snprintf(f, sizeof(f), "%s (thread %zu, tid %d)", file, idx, th->tid);

	if (!th->regs)
		return ckpt_err(e, -EINVAL, "%s: field threads[0].regs: missing", f);
	if (ctx->inv->has_xstate_size && th->xstate.len != ctx->inv->xstate_size)
		return ckpt_err(e, -EINVAL,
				"%s: field threads[0].xstate: %zu bytes, inventory says %u", f,
				th->xstate.len, ctx->inv->xstate_size);
	if (th->xstate.len < 576)
		return ckpt_err(e, -EINVAL,
				"%s: field threads[0].xstate: %zu bytes, shorter than an XSAVE "
				"header",
				f, th->xstate.len);
	for (size_t i = 0; i < th->n_pending; i++)
		if (th->pending[i].len != sizeof(siginfo_t))
			return ckpt_err(e, -EINVAL,
					"%s: field threads[0].pending[%zu]: %zu bytes, not a "
					"siginfo (%zu)",
					f, i, th->pending[i].len, sizeof(siginfo_t));
	for (size_t i = 0; i < th->n_pending; i++) {
		const siginfo_t *si = (const siginfo_t *)th->pending[i].data;

		if (si->si_signo < 1 || si->si_signo > 64)
			return ckpt_err(e, -EINVAL,
					"%s: field threads[%zu].pending[%zu]: signal %d is out of "
					"range",
					file, idx, i, si->si_signo);
	}
	if (th->comm && strlen(th->comm) > 15)
		return ckpt_err(e, -EINVAL, "%s: field threads[%zu].comm: longer than 15 bytes",
				file, idx);
	r = cgroups_validate_thread(file, idx, th, e);
	if (r < 0)
		return r;
	if (th->has_ss_flags && !(th->ss_flags & SS_DISABLE) &&
	    (th->ss_sp >= RST_TASK_SIZE || th->ss_size > RST_TASK_SIZE))
		return ckpt_err(e, -EINVAL,
				"%s: field threads[%zu].ss_sp: %#" PRIx64 " is not a "
				"user address",
				file, idx, th->ss_sp);
	if (th->rseq && (th->rseq->abi_pointer % 32 || th->rseq->abi_pointer == 0 ||
			 th->rseq->abi_pointer >= RST_TASK_SIZE || th->rseq->abi_size < 32 ||
			 th->rseq->abi_size > 1024))
		return ckpt_err(e, -EINVAL,
				"%s: field threads[0].rseq: area %#" PRIx64 " size %u is not a "
				"valid rseq registration",
				f, th->rseq->abi_pointer, th->rseq->abi_size);
	return 0;
}

/* threads[0] is the main thread; the tids are those of pstree.img, in order. */
static int validate_threads(struct restore_ctx *ctx, const char *f, struct rtask *t)
{
	struct ckpt_error *e = &ctx->err;
	const CoreEntry *c = t->core;
	size_t want = t->pst->n_threads ? t->pst->n_threads : 1;
	int r;

	if (c->n_threads != want)
		return ckpt_err(e, -EINVAL, "%s: field threads: %zu threads, pstree.img lists %zu",
				f, c->n_threads, want);
	for (size_t i = 0; i < c->n_threads; i++) {
		pid_t tid = t->pst->n_threads ? t->pst->threads[i] : t->pid;

		if (c->threads[i]->tid != tid)
			return ckpt_err(e, -EINVAL,
					"%s: field threads[%zu].tid: %d, pstree.img says %d", f, i,
					c->threads[i]->tid, tid);
		r = validate_thread(ctx, f, i, c->threads[i]);
		if (r < 0)
			return r;
	}
	t->thread = c->threads[0];
	if (c->n_threads > 1) {
		t->threads = calloc(c->n_threads - 1, sizeof(*t->threads));
		if (!t->threads)
			return ckpt_err(e, -ENOMEM, "out of memory");
		t->n_threads = c->n_threads - 1;
		for (size_t i = 1; i < c->n_threads; i++) {
			t->threads[i - 1].tid = c->threads[i]->tid;
			t->threads[i - 1].core = c->threads[i];
		}
	}
	return 0;
}

static int validate_sigactions(struct restore_ctx *ctx, const char *f, const CoreEntry *c)
{
	uint64_t seen = 0;

	for (size_t i = 0; i < c->n_sigactions; i++) {
		uint32_t sig = c->sigactions[i]->sig;

		if (sig < 1 || sig > 64)
			return ckpt_err(&ctx->err, -EINVAL,
					"%s: field sigactions[%zu].sig: %u is out of range 1..64",
					f, i, sig);
		if (seen & (1ULL << (sig - 1)))
			return ckpt_err(&ctx->err, -EINVAL,
					"%s: field sigactions[%zu].sig: signal %u appears twice", f,
					i, sig);
		seen |= 1ULL << (sig - 1);
	}
	return 0;
}

static int validate_siginfos(struct restore_ctx *ctx, const char *f, const CoreEntry *c)
{
	for (size_t i = 0; i < c->n_shared_pending; i++) {
		const siginfo_t *si = (const siginfo_t *)c->shared_pending[i].data;

		if (c->shared_pending[i].len != sizeof(siginfo_t))
			return ckpt_err(&ctx->err, -EINVAL,
					"%s: field shared_pending[%zu]: %zu bytes, not a siginfo",
					f, i, c->shared_pending[i].len);
		if (si->si_signo < 1 || si->si_signo > 64)
			return ckpt_err(&ctx->err, -EINVAL,
					"%s: field shared_pending[%zu]: signal %d is out of range",
					f, i, si->si_signo);
	}
	for (size_t i = 0; i < c->threads[0]->n_pending; i++) {
		const siginfo_t *si = (const siginfo_t *)c->threads[0]->pending[i].data;

		if (si->si_signo < 1 || si->si_signo > 64)
			return ckpt_err(&ctx->err, -EINVAL,
					"%s: field threads[0].pending[%zu]: signal %d is out of "
					"range",
					f, i, si->si_signo);
	}
	return 0;
}

static int validate_creds(struct restore_ctx *ctx, const char *f, const Creds *cr)
{
	if (!cr)
		return ckpt_err(&ctx->err, -EINVAL, "%s: field creds: missing", f);
	if (cr->n_groups > MAX_GROUPS)
		return ckpt_err(&ctx->err, -EINVAL, "%s: field creds.groups: %zu groups (max %d)",
				f, cr->n_groups, MAX_GROUPS);
	return 0;
}

static int validate_core(struct restore_ctx *ctx, struct rtask *t)
{
	struct ckpt_error *e = &ctx->err;
	const CoreEntry *c = t->core;
	char f[64];
	int r;

	snprintf(f, sizeof(f), "core-%d.img", t->pid);
	if (c->pid != t->pid)
		return ckpt_err(e, -EINVAL, "%s: field pid: %d, expected %d", f, c->pid, t->pid);
	r = validate_threads(ctx, f, t);
	if (r < 0)
		return r;
	if (!c->comm || strlen(c->comm) > 15)
		return ckpt_err(e, -EINVAL, "%s: field comm: missing or longer than 15 bytes", f);
	if (c->umask > 0777)
		return ckpt_err(e, -EINVAL, "%s: field umask: %#o is not a mode", f, c->umask);
	if (c->has_exit_signal && c->exit_signal > 64)
		return ckpt_err(e, -EINVAL, "%s: field exit_signal: %u is out of range", f,
				c->exit_signal);
	for (size_t i = 0; i < c->n_rlimits; i++)
		if (c->rlimits[i]->resource >= RLIM_NLIMITS ||
		    c->rlimits[i]->cur > c->rlimits[i]->max)
			return ckpt_err(e, -EINVAL,
					"%s: field rlimits[%zu]: resource %u cur %" PRIu64
					" max %" PRIu64 " is not a valid limit",
					f, i, c->rlimits[i]->resource, c->rlimits[i]->cur,
					c->rlimits[i]->max);
	if (!c->cwd || c->cwd[0] != '/' || !c->root || c->root[0] != '/')
		return ckpt_err(e, -EINVAL, "%s: field cwd/root: not an absolute path", f);
	if (c->has_dumpable && c->dumpable > 2)
		return ckpt_err(e, -EINVAL, "%s: field dumpable: %u is out of range 0..2", f,
				c->dumpable);
	/* PR_MDWE_NO_INHERIT only with PR_MDWE_REFUSE_EXEC_GAIN, as the kernel takes them */
	if (c->has_mdwe && c->mdwe != 0 && c->mdwe != 1 && c->mdwe != 3)
		return ckpt_err(e, -EINVAL, "%s: field mdwe: %#x is not 0, 1 or 3", f, c->mdwe);
	r = validate_creds(ctx, f, c->creds);
	if (r >= 0)
		r = keyring_validate(ctx, f, c);
	if (r >= 0)
		r = ldt_validate(ctx, f, c);
	if (r < 0)
		return r;
	r = validate_sigactions(ctx, f, c);
	if (r < 0)
		return r;
	r = timers_validate(ctx, f, c);
	if (r < 0)
		return r;
	r = procstate_validate(ctx, f, c);
	if (r < 0)
		return r;
	return validate_siginfos(ctx, f, c);
}

/* ---- mm-PID.img ----------------------------------------------------------------- */

static int vdso_part(const char *f, struct vdso_layout *l, const Vma *v, struct ckpt_error *e)
{
	uint64_t *start, *len;

	switch (v->kind) {
	case VMA_KIND__VMA_VVAR:
		start = &l->vvar, len = &l->vvar_len;
		break;
	case VMA_KIND__VMA_VVAR_VCLOCK:
		start = &l->vclock, len = &l->vclock_len;
		break;
	default:
		start = &l->vdso, len = &l->vdso_len;
		break;
	}
	if (*len)
		return ckpt_err(
		    e, -EINVAL, "%s: field vmas: two areas of kind %s", f,
		    protobuf_c_enum_descriptor_get_value(&vma_kind__descriptor, v->kind)->name);
	*start = v->start;
	*len = v->end - v->start;
	l->present = true;
	return 0;
}

static int validate_vma(struct restore_ctx *ctx, struct rtask *t, const char *f, size_t i,
			uint64_t prev_end)
{
	struct ckpt_error *e = &ctx->err;
	const Vma *v = t->mm->vmas[i];
	const uint32_t known = MAP_PRIVATE | MAP_SHARED | MAP_GROWSDOWN | MAP_NORESERVE;

	if (v->start % RST_PAGE_SIZE || v->end % RST_PAGE_SIZE || v->start >= v->end)
		return ckpt_err(e, -EINVAL,
				"%s: field vmas[%zu]: %#" PRIx64 "-%#" PRIx64
				" is not a page aligned range",
				f, i, v->start, v->end);
	if (v->start < prev_end)
		return ckpt_err(e, -EINVAL,
				"%s: field vmas[%zu]: %#" PRIx64 "-%#" PRIx64
				" overlaps or is out of order",
				f, i, v->start, v->end);
	if (v->kind == VMA_KIND__VMA_VSYSCALL) {
		if (v->start != RST_VSYSCALL_ADDR)
			return ckpt_err(e, -EINVAL,
					"%s: field vmas[%zu]: [vsyscall] at %#" PRIx64
					", expected %#llx",
					f, i, v->start, RST_VSYSCALL_ADDR);
		return 0;
	}
	if (v->end > RST_TASK_SIZE)
		return ckpt_err(e, -EINVAL,
				"%s: field vmas[%zu]: %#" PRIx64 "-%#" PRIx64
				" is above the user address space",
				f, i, v->start, v->end);
	if (v->mempolicy && modes_validate_mempolicy(v->mempolicy, f, "vmas", i, e) < 0)
		return e->code;
	if (v->prot & ~(uint32_t)(PROT_READ | PROT_WRITE | PROT_EXEC))
		return ckpt_err(e, -EINVAL, "%s: field vmas[%zu].prot: unknown bits %#x", f, i,
				v->prot);
	if (v->kind == VMA_KIND__VMA_FILE_SHARED_RO) {
		if (v->flags != MAP_SHARED || v->prot & PROT_WRITE)
			return ckpt_err(e, -EINVAL,
					"%s: field vmas[%zu]: flags %#x prot %#x: a shared file "
					"mapping must be MAP_SHARED and read-only",
					f, i, v->flags, v->prot);
	} else if (v->kind == VMA_KIND__VMA_SHMEM_SHARED || v->kind == VMA_KIND__VMA_SYSV_SHM ||
		   v->kind == VMA_KIND__VMA_IOURING) {
		if (v->flags & ~known || !(v->flags & MAP_SHARED) || v->flags & MAP_PRIVATE)
			return ckpt_err(e, -EINVAL,
					"%s: field vmas[%zu].flags: %#x (a shared memory area is "
					"MAP_SHARED)",
					f, i, v->flags);
	} else if (v->flags & ~known || v->flags & MAP_SHARED || !(v->flags & MAP_PRIVATE)) {
		return ckpt_err(e, -EINVAL,
				"%s: field vmas[%zu].flags: %#x (only private mappings are "
				"supported)",
				f, i, v->flags);
	}
	switch (v->kind) {
	case VMA_KIND__VMA_ANON_PRIVATE:
	case VMA_KIND__VMA_HEAP:
	case VMA_KIND__VMA_STACK:
		return 0;
	case VMA_KIND__VMA_FILE_PRIVATE:
	case VMA_KIND__VMA_FILE_SHARED_RO: {
		struct rfile *rf = v->has_file_id ? file_by_id(ctx, v->file_id) : NULL;

		if (!rf)
			return ckpt_err(e, -EINVAL,
					"%s: field vmas[%zu].file_id: %s file id %u is not in "
					"files.img",
					f, i, v->has_file_id ? "" : "missing;", v->file_id);
		if (v->pgoff % RST_PAGE_SIZE)
			return ckpt_err(e, -EINVAL,
					"%s: field vmas[%zu].pgoff: %#" PRIx64
					" is not page aligned",
					f, i, v->pgoff);
		if (rf->fe->type != FILE_TYPE__FILE_REG)
			return ckpt_err(
			    e, -EINVAL,
			    "%s: field vmas[%zu].file_id: file %u (%s) is not a regular "
			    "file",
			    f, i, v->file_id, rf->fe->path);
		rf->used_by_map = true;
		return 0;
	}
	case VMA_KIND__VMA_SHMEM_SHARED:
	case VMA_KIND__VMA_SHMEM_PRIVATE:
	case VMA_KIND__VMA_SYSV_SHM: {
		struct rfile *rf = v->has_file_id ? file_by_id(ctx, v->file_id) : NULL;
		bool sysv = rf && rf->fe->type == FILE_TYPE__FILE_SHMEM && rf->fe->shmem &&
			    rf->fe->shmem->kind == SHMEM_KIND__SHMEM_SYSV;

		if (!rf || rf->fe->type != FILE_TYPE__FILE_SHMEM || !rf->fe->shmem ||
		    sysv != (v->kind == VMA_KIND__VMA_SYSV_SHM) || v->pgoff % RST_PAGE_SIZE)
			return ckpt_err(e, -EINVAL,
					"%s: field vmas[%zu].file_id: %u is not a %s shared "
					"memory object of files.img (or pgoff %#" PRIx64
					" is not page aligned)",
					f, i, v->file_id, sysv ? "non-SysV" : "matching", v->pgoff);
		rf->shmem_used = true;
		/* (images without vmflags: as it was, writable) */
		if (v->kind == VMA_KIND__VMA_SHMEM_SHARED && (!v->vmflags || vma_vmflag(v, "mw")))
			rf->shmem_map_rw = true;
		return 0;
	}
	case VMA_KIND__VMA_IOURING: {
		struct rfile *rf = v->has_file_id ? file_by_id(ctx, v->file_id) : NULL;

		if (!rf || rf->fe->type != FILE_TYPE__FILE_IOURING || !rf->fe->io_uring ||
		    v->pgoff % RST_PAGE_SIZE || v->pgoff >= IOURING_OFF_END ||
		    v->end - v->start > IOURING_OFF_END)
			return ckpt_err(e, -EINVAL,
					"%s: field vmas[%zu].file_id: %u is not an io_uring "
					"instance of files.img (or pgoff %#" PRIx64 " is not a ring "
					"offset)",
					f, i, v->file_id, v->pgoff);
		return 0;
	}
	case VMA_KIND__VMA_VDSO:
	case VMA_KIND__VMA_VVAR:
	case VMA_KIND__VMA_VVAR_VCLOCK:
		return vdso_part(f, &t->vdso, v, e);
	default:
		return ckpt_err(e, -EINVAL, "%s: field vmas[%zu].kind: unknown value %d", f, i,
				v->kind);
	}
}

static int validate_mm(struct restore_ctx *ctx, struct rtask *t)
{
	struct ckpt_error *e = &ctx->err;
	const MmEntry *mm = t->mm;
	uint64_t prev_end = 0;
	char f[64];
	int r;

	snprintf(f, sizeof(f), "mm-%d.img", t->pid);
	if (mm->n_vmas > MAX_VMAS)
		return ckpt_err(e, -E2BIG, "%s: field vmas: %zu areas", f, mm->n_vmas);
	for (size_t i = 0; i < mm->n_vmas; i++) {
		r = validate_vma(ctx, t, f, i, prev_end);
		if (r < 0)
			return r;
		prev_end = mm->vmas[i]->end;
	}
	if (t->vdso.present && !t->vdso.vdso_len)
		return ckpt_err(e, -EINVAL, "%s: field vmas: [vvar] without [vdso]", f);
	if (mm->n_auxv % 2 || mm->n_auxv > MAX_AUXV_WORDS)
		return ckpt_err(e, -EINVAL, "%s: field auxv: %zu words (must be pairs, at most %d)",
				f, mm->n_auxv, MAX_AUXV_WORDS);
	if (mm->start_code > mm->end_code || mm->start_data > mm->end_data ||
	    mm->start_brk > mm->brk || mm->arg_start > mm->arg_end || mm->env_start > mm->env_end ||
	    mm->end_code >= RST_TASK_SIZE || mm->end_data >= RST_TASK_SIZE ||
	    mm->brk >= RST_TASK_SIZE || mm->start_stack >= RST_TASK_SIZE ||
	    mm->arg_end >= RST_TASK_SIZE || mm->env_end >= RST_TASK_SIZE)
		return ckpt_err(e, -EINVAL,
				"%s: fields start_code..env_end: ranges out of order or above the "
				"user address space",
				f);
	if (mm->has_exe_file_id) {
		struct rfile *rf = file_by_id(ctx, mm->exe_file_id);
		/* a program run from a tmpfs, saved with its content (shmem.c) */
		bool obj = rf && rf->fe->type == FILE_TYPE__FILE_SHMEM && rf->fe->shmem &&
			   rf->fe->shmem->kind == SHMEM_KIND__SHMEM_FILE && rf->fe->shmem->tmpfs;

		if (!rf || (rf->fe->type != FILE_TYPE__FILE_REG && !obj))
			return ckpt_err(e, -EINVAL,
					"%s: field exe_file_id: %u is not a regular file or a "
					"tmpfs file object of files.img",
					f, mm->exe_file_id);
		if (obj)
			rf->shmem_used = true;
		else
			rf->used_by_map = true;
	}
	return 0;
}

/* ---- pagemap-PID.img and pages-PID.img ------------------------------------------ */

/* Is every page of [s, e) inside areas we map (not the kernel's special ones)? */
static bool range_in_vmas(const MmEntry *mm, size_t *idx, uint64_t s, uint64_t e)
{
	size_t i = *idx;

	while (i < mm->n_vmas && mm->vmas[i]->end <= s)
		i++;
	*idx = i;
	while (s < e) {
		const Vma *v = i < mm->n_vmas ? mm->vmas[i] : NULL;

		if (!v || v->start > s || v->kind == VMA_KIND__VMA_VDSO ||
		    v->kind == VMA_KIND__VMA_VVAR || v->kind == VMA_KIND__VMA_VVAR_VCLOCK ||
		    v->kind == VMA_KIND__VMA_VSYSCALL || v->kind == VMA_KIND__VMA_FILE_SHARED_RO ||
		    v->kind == VMA_KIND__VMA_SHMEM_SHARED || v->kind == VMA_KIND__VMA_SYSV_SHM ||
		    v->kind == VMA_KIND__VMA_IOURING)
			return false;
		s = v->end;
		i++;
	}
	return true;
}

static int validate_pagemap(struct restore_ctx *ctx, struct rtask *t)
{
	struct ckpt_error *e = &ctx->err;
	uint64_t total = 0, prev_end = 0, limit = t->pages_bytes / RST_PAGE_SIZE;
	uint64_t shm = shmem_task_bytes(ctx, t->pid) / RST_PAGE_SIZE;
	size_t idx = 0;

	/* the content of shared memory objects follows the pagemap's pages */
	if (shm > limit)
		return ckpt_err(e, -EINVAL,
				"pages-%d.img: %" PRIu64 " pages, fewer than the %" PRIu64
				" pages of shared memory objects files.img puts there",
				t->pid, limit, shm);
	limit -= shm;

	t->pagemap_off = calloc(t->n_pagemap + 1, sizeof(*t->pagemap_off));
	if (!t->pagemap_off)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < t->n_pagemap; i++) {
		const PagemapEntry *p = t->pagemap[i];
		uint64_t end = p->vaddr + (uint64_t)p->nr_pages * RST_PAGE_SIZE;
		/* inherited pages have no data here (cow.c checks them against the parent) */
		bool inh = p->has_inherited && p->inherited;
		/* nor pages unchanged since the parent checkpoint (chain.c checks them) */
		bool nodata = inh || (p->has_in_parent && p->in_parent);

		t->pagemap_off[i] = total * RST_PAGE_SIZE;

		if (p->vaddr % RST_PAGE_SIZE || p->nr_pages == 0 ||
		    (!nodata && p->nr_pages > limit - total) || p->vaddr < prev_end ||
		    p->vaddr >= RST_TASK_SIZE || end > RST_TASK_SIZE)
			return ckpt_err(e, -EINVAL,
					"pagemap-%d.img: entry %zu: %u pages at %#" PRIx64
					" are unaligned, out of order or beyond the %" PRIu64
					" pages of pages-%d.img",
					t->pid, i, p->nr_pages, p->vaddr, limit, t->pid);
		if (!range_in_vmas(t->mm, &idx, p->vaddr, end))
			return ckpt_err(e, -EINVAL,
					"pagemap-%d.img: entry %zu: pages %#" PRIx64 "-%#" PRIx64
					" are not inside a restorable area of mm-%d.img",
					t->pid, i, p->vaddr, end, t->pid);
		if (inh && !t->parent)
			return ckpt_err(e, -EINVAL,
					"pagemap-%d.img: entry %zu: pages %#" PRIx64 "-%#" PRIx64
					" inherited from a parent, but pid %d is the root",
					t->pid, i, p->vaddr, end, t->pid);
		if (p->has_sibling && (!inh || !p->sibling))
			return ckpt_err(e, -EINVAL,
					"pagemap-%d.img: entry %zu: pages %#" PRIx64 "-%#" PRIx64
					" from sibling %u, but not inherited",
					t->pid, i, p->vaddr, end, p->sibling);
		if (inh && p->has_in_parent && p->in_parent)
			return ckpt_err(e, -EINVAL,
					"pagemap-%d.img: entry %zu: pages both inherited and in_parent",
					t->pid, i);
		if (!nodata)
			total += p->nr_pages;
		prev_end = end;
	}
	if (total != limit)
		return ckpt_err(e, -EINVAL,
				"pagemap-%d.img: %" PRIu64
				" pages listed but pages-%d.img holds %" PRIu64 " pages",
				t->pid, total, t->pid, limit);
	return 0;
}

static int load_pages_size(struct restore_ctx *ctx, struct rtask *t)
{
	_cleanup_img_pages_ struct img_pages *pages = NULL;
	int r;

	r = img_pages_open(ctx->dirfd, t->pid, &pages, &ctx->err);
	if (r < 0)
		return r;
	t->pages_bytes = img_pages_size(pages);
	if (t->pages_bytes % RST_PAGE_SIZE)
		return ckpt_err(&ctx->err, -EINVAL,
				"pages-%d.img: data size %" PRIu64 " is not a multiple of the page "
				"size",
				t->pid, t->pages_bytes);
	return 0;
}

/* ---- fds-PID.img --------------------------------------------------------------------- */

static int cmp_fd(const void *a, const void *b)
{
	const FdEntry *x = *(FdEntry *const *)a, *y = *(FdEntry *const *)b;

	return x->fd < y->fd ? -1 : x->fd > y->fd;
}

static int validate_fds(struct restore_ctx *ctx, struct rtask *t)
{
	struct ckpt_error *e = &ctx->err;

	/* a task without fds has an empty fds image: t->fds is NULL, not for qsort */
	if (t->n_fds)
		qsort(t->fds, t->n_fds, sizeof(*t->fds), cmp_fd);
	for (size_t i = 0; i < t->n_fds; i++) {
		const FdEntry *fd = t->fds[i];
		struct rfile *rf;

		if (fd->fd >= ctx->nofile_max || fd->fd > INT_MAX / 2)
			return ckpt_err(e, -EINVAL,
					"fds-%d.img: fd %u: not below RLIMIT_NOFILE (%" PRIu64 ")",
					t->pid, fd->fd, ctx->nofile_max);
		if (i && t->fds[i - 1]->fd == fd->fd)
			return ckpt_err(e, -EINVAL, "fds-%d.img: fd %u appears twice", t->pid,
					fd->fd);
		if (fd->kind != FD_KIND__FD_FILE)
			return ckpt_err(e, -EOPNOTSUPP,
					"fds-%d.img: fd %u: kind %d is not supported", t->pid,
					fd->fd, fd->kind);
		rf = file_by_id(ctx, fd->id);
		if (!rf)
			return ckpt_err(e, -EINVAL,
					"fds-%d.img: fd %u: file id %u is not in files.img", t->pid,
					fd->fd, fd->id);
		if (!rf->used_by_fd) {
			rf->kind = fd_kind_for_file(rf->fe);
			if (!rf->kind)
				return ckpt_err(e, -EOPNOTSUPP,
						"fds-%d.img: fd %u: file %u (%s): no kind restores "
						"type %d",
						t->pid, fd->fd, fd->id, rf->fe->path, rf->fe->type);
		}
		rf->used_by_fd = true;
		if ((int)fd->fd > ctx->max_saved_fd)
			ctx->max_saved_fd = (int)fd->fd;
	}
	return 0;
}

/*
 * Files in flight: the ids a unix socket's queued messages carry
 * (SCM_RIGHTS) name entries of files.img of a kind that may travel so, or
 * descriptions a task holds too (not of a kind each task makes for itself),
 * made by the restorer in stage files like the fds' objects.
 */
static int mark_in_flight(struct restore_ctx *ctx)
{
	struct ckpt_error *e = &ctx->err;

	for (size_t i = 0; i < ctx->nfiles; i++) {
		const FileEntry *fe = ctx->files[i].fe;

		if (fe->type != FILE_TYPE__FILE_UNIX_SK || !fe->unix_sk)
			continue;
		if (fe->unix_sk->n_msgs && fe->unix_sk->n_queue)
			return ckpt_err(e, -EINVAL,
					"files.img: entry %u (%s): fields unix_sk.queue and "
					"unix_sk.msgs: both set (one holds the queue)",
					fe->id, fe->path);
		for (size_t m = 0; m < fe->unix_sk->n_msgs; m++) {
			const UnixSkMsg *msg = fe->unix_sk->msgs[m];

			/* SCM_MAX_FD; PID_MAX_LIMIT */
			if (msg->n_fds > 253)
				return ckpt_err(e, -EINVAL,
						"files.img: entry %u (%s): field "
						"unix_sk.msgs[%zu].fds: %zu files, more than a "
						"message carries",
						fe->id, fe->path, m, msg->n_fds);
			if (msg->has_cred_pid != msg->has_cred_uid ||
			    msg->has_cred_pid != msg->has_cred_gid ||
			    (msg->has_cred_pid && (msg->cred_pid <= 0 || msg->cred_pid > 4194304)))
				return ckpt_err(e, -EINVAL,
						"files.img: entry %u (%s): field "
						"unix_sk.msgs[%zu].cred_pid: bad credentials",
						fe->id, fe->path, m);
			for (size_t k = 0; k < msg->n_fds; k++) {
				struct rfile *rf = file_by_id(ctx, msg->fds[k]);

				const struct fd_kind *kd =
				    rf ? (rf->kind ? rf->kind : fd_kind_for_file(rf->fe)) : NULL;

				/* a kind that may travel so, or a task's own description */
				if (!kd || kd->open_in_task || (!kd->in_flight && !rf->used_by_fd) ||
				    (rf->fe->has_mapping_only && rf->fe->mapping_only))
					return ckpt_err(e, -EINVAL,
							"files.img: entry %u (%s): field "
							"unix_sk.msgs[%zu].fds[%zu]: file id %u is not "
							"a file of files.img that can be in flight",
							fe->id, fe->path, m, k, msg->fds[k]);
				rf->kind = fd_kind_for_file(rf->fe);
				rf->in_flight = true;
			}
		}
	}
	return 0;
}

/* An io_uring mapping is made from the ring's fd in the task: it must hold one. */
static int validate_iouring_maps(struct restore_ctx *ctx, struct rtask *t)
{
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const Vma *v = t->mm->vmas[i];

		if (v->kind == VMA_KIND__VMA_IOURING && rtask_fd_of_file(t, v->file_id) < 0)
			return ckpt_err(&ctx->err, -EINVAL,
					"mm-%d.img: field vmas[%zu].file_id: io_uring %u is not an "
					"fd of the task (fds-%d.img)",
					t->pid, i, v->file_id, t->pid);
	}
	return 0;
}

static int load_task(struct restore_ctx *ctx, struct rtask *t)
{
	struct ckpt_error *e = &ctx->err;
	ProtobufCAllocator *a = &ctx->arena.pb;
	int r;

	r = read_one(ctx->dirfd, IMG_CORE, t->pid, a, (void **)&t->core, e);
	if (r >= 0)
		r = validate_core(ctx, t);
	if (r >= 0)
		r = read_one(ctx->dirfd, IMG_MM, t->pid, a, (void **)&t->mm, e);
	if (r >= 0)
		r = validate_mm(ctx, t);
	if (r >= 0)
		r = load_pages_size(ctx, t);
	if (r >= 0)
		r = read_all(ctx->dirfd, IMG_PAGEMAP, t->pid, SIZE_MAX, a, (void ***)&t->pagemap,
			     &t->n_pagemap, e);
	if (r >= 0)
		r = validate_pagemap(ctx, t);
	if (r >= 0)
		r = read_all(ctx->dirfd, IMG_FDS, t->pid, ctx->nofile_max, a, (void ***)&t->fds,
			     &t->n_fds, e);
	if (r >= 0)
		r = validate_fds(ctx, t);
	if (r >= 0)
		r = validate_iouring_maps(ctx, t);
	return r;
}

/* One of the images load_task unpacks into the arena? */
static bool task_image(const char *name)
{
	enum img_kind kind;
	int pid;

	return img_kind_from_name(name, &kind, &pid) == 0 &&
	       (kind == IMG_CORE || kind == IMG_MM || kind == IMG_PAGEMAP || kind == IMG_FDS);
}

static size_t arena_size(const struct restore_ctx *ctx)
{
	return arena_bytes(images_bytes(ctx, task_image), ARENA_PER_IMAGE_BYTE,
			   (uint64_t)ctx->ntasks * 4096);
}

/*
 * Every task's images, unpacked into the arena in depth-first order from
 * the root: a task's descendants come right after it, so the images of its
 * subtree are one range, [arena_lo, arena_sub_hi), which a fork hands down
 * or leaves out in one call (task.c, "What a fork hands down"). Tasks the
 * root does not reach (a loop of parents, refused by the plan) come last.
 */
static int load_tasks(struct restore_ctx *ctx)
{
	size_t n = ctx->ntasks, top = 0, m = 0;
	_cleanup_free_ size_t *first = calloc(n + 2, sizeof(size_t));
	_cleanup_free_ size_t *kids = calloc(n + 1, sizeof(size_t));
	_cleanup_free_ size_t *order = calloc(n + 1, sizeof(size_t));
	_cleanup_free_ size_t *stack = calloc(n + 1, sizeof(size_t));
	_cleanup_free_ bool *seen = calloc(n + 1, sizeof(bool));
	int r;

	if (!first || !kids || !order || !stack || !seen)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	/* plan_only: no fork follows (the dump's own check, in its freeze) */
	r = arena_init(&ctx->arena, arena_size(ctx), !ctx->opts->plan_only, &ctx->err);
	if (r < 0)
		return r;
	/* the children of task i: kids[first[i] .. first[i + 1]) */
	for (size_t i = 0; i < n; i++)
		if (ctx->tasks[i].parent)
			first[ctx->tasks[i].parent - ctx->tasks + 2]++;
	for (size_t i = 2; i < n + 2; i++)
		first[i] += first[i - 1];
	for (size_t i = 0; i < n; i++)
		if (ctx->tasks[i].parent)
			kids[first[ctx->tasks[i].parent - ctx->tasks + 1]++] = i;
	stack[top++] = (size_t)(ctx->root - ctx->tasks);
	while (top) {
		size_t i = stack[--top];

		order[m++] = i;
		seen[i] = true;
		for (size_t k = first[i + 1]; k > first[i]; k--)
			stack[top++] = kids[k - 1];
	}
	for (size_t i = 0; i < n; i++)
		if (!seen[i])
			order[m++] = i;
	for (size_t k = 0; k < n; k++) {
		struct rtask *t = &ctx->tasks[order[k]];

		t->arena_lo = arena_page_break(&ctx->arena);
		r = load_task(ctx, t);
		if (r < 0)
			return r;
		t->arena_hi = t->arena_sub_hi = arena_page_break(&ctx->arena);
	}
	for (size_t k = n; k-- > 0;) {
		struct rtask *t = &ctx->tasks[order[k]];

		if (seen[order[k]] && t->parent && t->arena_sub_hi > t->parent->arena_sub_hi)
			t->parent->arena_sub_hi = t->arena_sub_hi;
	}
	pr_debug("images of %zu tasks: %zu KiB at %p-%p, %zu KiB more past its end (malloc)", n,
		 ctx->arena.used >> 10, (void *)ctx->arena.base,
		 (void *)(ctx->arena.base + ctx->arena.size), ctx->arena.spilled >> 10);
	return 0;
}

int images_load(struct restore_ctx *ctx)
{
	struct ckpt_error *e = &ctx->err;
	struct rlimit rl;
	int r;

	r = read_pid_max(&ctx->pid_max, e);
	if (r < 0)
		return r;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return ckpt_err_errno(e, -errno, "getrlimit(RLIMIT_NOFILE)");
	ctx->nofile_max = rl.rlim_max;
	/* --lazy: the pages images' checksums are checked by the pager (or at
	 * stage pager if there is none), not before the tree runs (lazy.md) */
	r = img_dir_open_verified_flags(ctx->opts->dir,
					ctx->opts->pages_sums_known ||
						(ctx->opts->lazy && !ctx->opts->plan_only)
					    ? IMG_VERIFY_PAGES_BY_SIZE
					    : 0,
					&ctx->dirfd, &ctx->inv, e);
	if (r < 0)
		return r;
	if (ctx->inv->format_version != IMG_FORMAT_VERSION)
		return ckpt_err(e, -EINVAL, "inventory.img: field format_version: %u, expected %d",
				ctx->inv->format_version, IMG_FORMAT_VERSION);
	r = pid_check(ctx, "inventory.img", "field root_pid", ctx->inv->root_pid);
	if (r >= 0)
		r = clocks_validate(ctx);
	if (r < 0)
		return r;
	r = load_files(ctx);
	if (r < 0)
		return r;
	r = load_pstree(ctx);
	if (r < 0)
		return r;
	r = link_tree(ctx);
	if (r < 0)
		return r;
	r = link_files_tables(ctx);
	if (r < 0)
		return r;
	ctx->max_saved_fd = -1;
	r = load_tasks(ctx);
	if (r < 0)
		return r;
	/* incremental: the parent checkpoints and where in_parent pages are */
	r = chain_load(ctx);
	if (r < 0)
		return r;
	r = mark_in_flight(ctx);
	if (r < 0)
		return r;
	r = shmem_verify(ctx);
	if (r < 0)
		return r;
	r = cow_verify(ctx);
	if (r < 0)
		return r;
	r = consistency_check(ctx);
	if (r < 0)
		return r;
	r = sigio_verify(ctx);
	if (r < 0)
		return r;
	pr_debug("%zu tasks, %zu files, highest fd %d", ctx->ntasks, ctx->nfiles,
		 ctx->max_saved_fd);
	return 0;
}
