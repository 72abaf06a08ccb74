/* SPDX-License-Identifier: MIT */
/*
 * The dump engine: seize -> collect -> fds -> memory -> write -> commit ->
 * kill or resume. The image directory is created (as a temporary sibling)
 * before anything is frozen, so a bad target path costs the tree nothing.
 * Any failure before the end detaches every task, which resumes exactly as
 * it was, and removes the temporary directory. See docs/dump.md.
 */
#define LOG_PREFIX "dump: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "caps.h"
#include "cleanup.h"
#include "clock.h"
#include "dump_internal.h"
#include "dump_incr.h"
#include "page_writer.h"
#include "restore_check.h"
#include "fault.h"
#include "kread.h"
#include "log.h"
#include "page_pipes.h"
#include "thp.h"

/* a zombie makes the seize fail with -EBUSY; so many tries over ~1 s */
#define SEIZE_ATTEMPTS 10
#define WARM_HEAP_BYTES (32u << 20)
/* whole dumps tried when a signal arrives while one is being committed */
#define LATE_SIGNAL_ATTEMPTS 4
/*
 * How long a dump lets the tree run, between tries, for what its own
 * progress clears (-EAGAIN: a connection it has not accepted yet), and the
 * longest pause between two tries.
 */
#define TRANSIENT_WAIT_SECONDS 2.0
#define TRANSIENT_PAUSE_MAX_US 200000

struct dump_task *dump_find_task(struct dump_ctx *c, pid_t pid)
{
	for (size_t i = 0; i < c->ntasks; i++) {
		if (c->tasks[i].pid == pid)
			return &c->tasks[i];
	}
	return NULL;
}

/* Name the pid in the error unless the message already starts with it. */
static int with_pid(struct ckpt_error *e, pid_t pid)
{
	char prefix[32];

	snprintf(prefix, sizeof(prefix), "pid %d", pid);
	if (!strncmp(e->msg, prefix, strlen(prefix)) &&
	    (e->msg[strlen(prefix)] == ':' || e->msg[strlen(prefix)] == ' '))
		return e->code;
	return ckpt_err_wrap(e, "%s", prefix);
}

uint64_t dump_images_enter(const struct dump_ctx *c)
{
	uint64_t saved = caps_effective();

	if (c->opts->images_unprivileged)
		caps_lower_all();
	return saved;
}

int dump_img_create(struct dump_ctx *c, enum img_kind kind, int pid, struct img **ret,
		    struct ckpt_error *e)
{
	uint64_t saved = dump_images_enter(c);
	int r = img_create(c->dir, kind, pid, ret, e);

	caps_restore(saved);
	return r;
}

int dump_pages_create(struct dump_ctx *c, int pid, unsigned part, unsigned nparts, struct img **ret,
		      struct ckpt_error *e)
{
	uint64_t saved = dump_images_enter(c);
	int r = img_create_pages_part(c->dir, pid, part, nparts, ret, e);

	caps_restore(saved);
	return r;
}

int dump_write_one(struct dump_ctx *c, enum img_kind kind, int pid, const ProtobufCMessage *msg,
		   struct ckpt_error *e)
{
	_cleanup_img_ struct img *img = NULL;
	int r;

	r = dump_img_create(c, kind, pid, &img, e);
	if (r < 0)
		return r;
	r = img_write_msg(img, msg, e);
	if (r < 0)
		return r;
	return img_close_write(TAKE_PTR(img), e);
}

static int write_fds(struct dump_ctx *c, const struct dump_task *t, struct ckpt_error *e)
{
	_cleanup_img_ struct img *img = NULL;
	int r;

	r = dump_img_create(c, IMG_FDS, t->pid, &img, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < t->nfds; i++) {
		r = img_write_msg(img, &t->fds[i]->base, e);
		if (r < 0)
			return r;
	}
	return img_close_write(TAKE_PTR(img), e);
}

static void dump_ctx_free(struct dump_ctx *c)
{
	for (size_t i = 0; i < c->ntasks; i++) {
		struct dump_task *t = &c->tasks[i];

		if (t->core)
			core_entry__free_unpacked(t->core, NULL);
		if (t->mm)
			mm_entry__free_unpacked(t->mm, NULL);
		for (size_t k = 0; k < t->nfds; k++)
			fd_entry__free_unpacked(t->fds[k], NULL);
		free(t->fds);
		free(t->runs);
		free(t->clean);
		dump_sib_free(t);
		free(t->threads);
		free(t->sud);
		dump_area_mempolicies_free(t);
		if (t->pidfd >= 0)
			close(t->pidfd);
		if (t->pipes) {
			page_pipes_free(t->pipes);
			free(t->pipes);
		}
		/* not committed: closing just discards them */
		img_close(t->pagemap_img);
		img_close(t->pages_img);
		for (size_t k = 0; k < ARRAY_SIZE(t->pages_parts); k++)
			img_close(t->pages_parts[k]);
	}
	free(c->tasks);
	free(c->zombies);
	dump_inflight_free(c);
	for (size_t i = 0; i < c->nfiles; i++) {
		file_entry__free_unpacked(c->files[i].fe, NULL);
		free(c->files[i].sum_src);
	}
	free(c->files);
	free(c->by_desc);
	dump_shmem_free(c);
	dump_incr_free(c);
	if (c->ring)
		page_ring_fini(c->ring);
	free(c->ring);
	dump_prefetch_free(c);
	dump_watched_reset(c);
	dump_kstate_prepare_join(c);
	kread_free(c->kread);
	c->kread = NULL;
	if (c->dir) {
		/* (an uncommitted temporary directory is removed) */
		uint64_t saved = dump_images_enter(c);

		img_dir_free(c->dir);
		caps_restore(saved);
	}
}

static void progress(struct dump_ctx *c)
{
	c->tasks_done++;
	if (c->opts->progress)
		c->opts->progress(c->opts->progress_arg, c->pages_bytes, c->tasks_done,
				  (unsigned)c->ntasks);
}

/*
 * Between the steps of a dump: a cancelled dump (ckptd, client gone) fails
 * like an injected fault, so that the usual rollback resumes the tree.
 */
static int dump_step(const struct dump_ctx *c, const char *step, struct ckpt_error *e)
{
	if (c->opts->cancel && *c->opts->cancel)
		return ckpt_err(e, -ECANCELED, "dump cancelled before step %s", step);
	return ckpt_fault_inject(step, e);
}

/* Core and memory layout of every task, then the fds: all of it before the
 * first page is copied, so that an unsupported resource fails fast. */
static int collect(struct dump_ctx *c, struct ckpt_error *e)
{
	int r;

	/* a pre-dump saves memory only: sessions and fds are the final dump's */
	r = c->opts->pre_dump ? 0 : dump_check_sessions(c, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < c->ntasks; i++) {
		double t0 = ckpt_monotonic_seconds();

		/* before dump_task_core's calls in the task change its areas */
		dump_prefetch_layout_check(c, &c->tasks[i]);
		r = dump_task_core(c, &c->tasks[i], e);
		if (r < 0)
			return with_pid(e, c->tasks[i].pid);
		r = dump_task_mm(c, &c->tasks[i], e);
		if (r < 0)
			return with_pid(e, c->tasks[i].pid);
		pr_debug("pid %d: core and mm collected in %.1f ms", c->tasks[i].pid,
			 (ckpt_monotonic_seconds() - t0) * 1e3);
	}
	if (c->opts->cgroups_under_root) {
		r = dump_check_cgroups_under_root(c, e);
		if (r < 0)
			return r;
	}
	r = dump_step(c, "dump-collect", e);
	if (r >= 0 && c->opts->pre_dump)
		return dump_step(c, "dump-fds", e);
	if (r >= 0)
		r = dump_check_fd_tables(c, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < c->ntasks; i++) {
		r = dump_task_fds(c, &c->tasks[i], e);
		if (r < 0)
			return with_pid(e, c->tasks[i].pid);
	}
	r = dump_inflight_files(c, e);
	if (r < 0)
		return r;
	r = dump_link_iouring_maps(c, e);
	if (r < 0)
		return r;
	/* memfd fds and deleted files both open and mapped: one shmem object */
	r = dump_shmem_link_fds(c, e);
	if (r < 0)
		return r;
	r = dump_fds_done(c, e);
	if (r < 0)
		return r;
	/* the mapped files' sums, now that the tree's watches are known */
	r = dump_mapped_sums(c, e);
	if (r < 0)
		return r;
	/* and the shared memory objects' (the same watches known) */
	r = dump_shmem_open_late(c, e);
	if (r < 0)
		return r;
	r = dump_ttys(c, e);
	if (r < 0)
		return r;
	return dump_step(c, "dump-fds", e);
}

static int dump_memory(struct dump_ctx *c, struct ckpt_error *e)
{
	int r;

	/* every task's pages found (and sharing with parents seen) before any is read */
	for (size_t i = 0; i < c->ntasks; i++) {
		r = dump_task_scan(c, &c->tasks[i], e);
		if (r < 0)
			return with_pid(e, c->tasks[i].pid);
	}
	for (size_t i = 0; i < c->ntasks; i++)
		dump_sib_free(&c->tasks[i]);
	/* incremental: what changed since the parent, then tracking armed
	 * again (still frozen: the pages saved are the pages protected) */
	for (size_t i = 0; i < c->ntasks; i++) {
		r = dump_incr_classify(c, &c->tasks[i], e);
		if (r >= 0)
			r = dump_incr_arm(c, &c->tasks[i], e);
		if (r < 0)
			return with_pid(e, c->tasks[i].pid);
	}
	for (size_t i = 0; i < c->ntasks; i++) {
		r = dump_task_pages(c, &c->tasks[i], e);
		if (r < 0)
			return with_pid(e, c->tasks[i].pid);
		/* after the first task, so that a rollback has pages to remove */
		if (i == 0) {
			r = dump_step(c, "dump-memory", e);
			if (r < 0)
				return r;
		}
		progress(c);
		if (c->opts->cancel && *c->opts->cancel)
			return ckpt_err(e, -ECANCELED, "dump cancelled while copying memory");
	}
	return 0;
}

static int write_images(struct dump_ctx *c, struct ckpt_error *e)
{
	int r;

	for (size_t i = 0; i < c->ntasks; i++) {
		struct dump_task *t = &c->tasks[i];

		r = dump_close_pages(t, e);
		if (r < 0)
			return r;
		if (t->seized) {
			/* to be killed: what was sent while its memory was copied too */
			bool changed = false;

			r = dump_task_signals_refresh(t, true, &changed, e);
			if (r < 0)
				return r;
			if (changed)
				pr_debug("pid %d: signals arrived during the dump: saved", t->pid);
		}
		r = dump_write_one(c, IMG_CORE, t->pid, &t->core->base, e);
		if (r < 0)
			return r;
		r = dump_write_one(c, IMG_MM, t->pid, &t->mm->base, e);
		if (r < 0)
			return r;
		r = write_fds(c, t, e);
		if (r < 0)
			return r;
	}
	r = dump_write_files(c, e);
	if (r < 0)
		return r;
	return dump_step(c, "dump-write", e);
}

static void remove_committed(struct dump_ctx *c);

/*
 * The restorer's own verifier on what was written, before it is published:
 * a dump never calls good a checkpoint its restore would refuse. A failure
 * here is a failure of the dump (the tree left running).
 */
static int check_images(struct dump_ctx *c, struct ckpt_error *e)
{
	uint64_t saved;
	char dir[32];
	int r;

	snprintf(dir, sizeof(dir), "/proc/self/fd/%d", img_dir_fd(c->dir));
	/* the pages images' checksums were computed here from the bytes written */
	saved = dump_images_enter(c);
	r = restore_check_images(dir, true, e);
	caps_restore(saved);
	if (r < 0)
		return ckpt_err_wrap(e, "the restore would refuse these images");
	return dump_step(c, "dump-check", e);
}

static int commit(struct dump_ctx *c, uint64_t *ret_bytes, struct ckpt_error *e)
{
	Inventory inv = INVENTORY__INIT;
	IncrTracking tr = INCR_TRACKING__INIT;
	uint64_t xcr0 = 0, bytes = 0, saved;
	uint32_t xsize = 0;
	int r;

	r = dump_step(c, "dump-commit", e);
	if (r < 0)
		return r;
	inv.format_version = IMG_FORMAT_VERSION;
	inv.root_pid = c->opts->pid;
	inv.tool_version = CKPT_VERSION;
	inv.has_ntasks = true;
	inv.ntasks = (uint32_t)c->ntasks;
	if (c->frozen_mono_ns > 0 && c->frozen_boot_ns > 0) {
		inv.has_frozen_monotonic_ns = true;
		inv.frozen_monotonic_ns = (uint64_t)c->frozen_mono_ns;
		inv.has_frozen_boottime_ns = true;
		inv.frozen_boottime_ns = (uint64_t)c->frozen_boot_ns;
	}
	if (cpu_xfeatures(&xcr0, &xsize) == 0) {
		inv.has_xfeatures = true;
		inv.xfeatures = xcr0;
		inv.has_xstate_size = true;
		inv.xstate_size = xsize;
	}
	r = dump_incr_inventory(c, &inv, &tr, e);
	if (r < 0)
		return r;
	/* kernel release, hostname and creation time: filled by img_dir_seal */
	saved = dump_images_enter(c);
	r = img_dir_seal(c->dir, &inv, e);
	caps_restore(saved);
	if (r < 0)
		return r;
	/* a pre-dump is no checkpoint to restore: only its images were verified */
	r = c->opts->pre_dump ? 0 : check_images(c, e);
	if (r < 0) {
		/* in place, the directory is valid once sealed: withdraw it
		 * (a temporary directory goes with img_dir_free) */
		if (c->opts->use_dir_fd)
			remove_committed(c);
		return r;
	}
	saved = dump_images_enter(c);
	r = img_dir_publish(c->dir, e);
	caps_restore(saved);
	if (r < 0)
		return r;
	for (size_t i = 0; i < inv.n_images; i++)
		bytes += inv.images[i]->size;
	*ret_bytes = bytes;
	return 0;
}

/* A failure after the commit: the checkpoint must not look valid. */
static void remove_committed(struct dump_ctx *c)
{
	uint64_t saved = dump_images_enter(c);

	/* inventory.img first, then every image (shared memory, tty... too) */
	img_dir_remove_images(img_dir_fd(c->dir));
	if (!c->opts->use_dir_fd && rmdir(c->opts->dir) < 0)
		pr_debug("cannot remove %s: %m", c->opts->dir);
	caps_restore(saved);
}

/*
 * The last look before the kill: a signal that arrived after the core
 * images were written would die with the tree. The checkpoint is then
 * withdrawn and the dump fails with the tree left running (the signal is
 * delivered): nothing is lost, and a second dump will see it.
 */
static int check_no_new_signals(struct dump_ctx *c, struct ckpt_error *e)
{
	for (size_t i = 0; i < c->ntasks; i++) {
		bool changed = false;
		int r = dump_task_signals_refresh(&c->tasks[i], false, &changed, e);

		if (r < 0)
			return r;
		if (changed) {
			c->late_signal = true;
			return ckpt_err(e, -EAGAIN,
					"pid %d: a signal arrived while the checkpoint was being "
					"committed; it is withdrawn and the tree left running (the "
					"signal is delivered): dump again",
					c->tasks[i].pid);
		}
	}
	/* a connection a listener of the tree got since it was saved (-EAGAIN) */
	return dump_fds_recheck(c, e);
}

/* Resume the tree after a failure; a problem doing so is added to e. */
static void rollback(struct dump_ctx *c, struct ckpt_error *e)
{
	struct ckpt_error tmp = {0};

	/* TCP connections out of repair mode, unlocked: they carry on */
	dump_fds_undo(c);
	if (unseize_tree(c, &tmp) < 0) {
		size_t n = strlen(e->msg);

		snprintf(e->msg + n, sizeof(e->msg) - n, " (and resuming the tree failed: %s)",
			 tmp.msg);
	}
}

/*
 * A zombie in the tree is usually a child that just exited and that its
 * (now frozen) parent was about to reap: a shell loop running `sleep` shows
 * one every few hundred ms. Resume, give the parent a moment, and try again.
 */
static int seize_with_retries(struct dump_ctx *c, struct ckpt_error *e)
{
	for (int attempt = 1;; attempt++) {
		int r = seize_tree(c, e);

		if (r != -EBUSY || attempt == SEIZE_ATTEMPTS)
			return r;
		pr_debug("attempt %d: %s; retrying", attempt, e->msg);
		rollback(c, e);
		c->ntasks = 0;
		c->t_frozen = 0;
		usleep(20000 * attempt);
	}
}

/*
 * Whether work is moved out of the freeze to before it (the warm heap, the
 * areas read ahead: dump_prefetch.c): where the tree runs on after the
 * freeze (--leave-running), and where the freeze is what an incremental
 * dump is for (--parent). A killing dump without a parent is measured by
 * its whole time, which moving work does not shorten.
 */
static bool short_freeze(const struct dump_ctx *c)
{
	return c->opts->leave_running || c->opts->parent;
}

/*
 * The dumper's own memory, faulted in while the tree still runs. A dump
 * allocates as it goes (layouts, runs of pages, the images its own check
 * reads back), and on these machines each first touch of a fresh page
 * costs 15-20 us (docs/architecture.md): about a thousand of them, 15 ms,
 * in the freeze of an incremental dump of 2 GiB. Allocations of up to
 * WARM_HEAP_BYTES are kept on the heap and its top is not given back, so
 * that what was touched here is reused. Only where the freeze is meant to
 * be short (--leave-running, --parent): it costs the touch of that much
 * memory first. This process is a dump's own (ckptctl's, or a ckptd
 * worker's), so the allocator settings are its own too.
 */
static void warm_heap(void)
{
	size_t len = WARM_HEAP_BYTES / 2;
	volatile char *p;

	mallopt(M_MMAP_THRESHOLD, WARM_HEAP_BYTES);
	mallopt(M_TRIM_THRESHOLD, 2 * WARM_HEAP_BYTES);
	p = malloc(len);
	if (!p)
		return;
	/* fresh heap: in huge pages, each 4 KiB page would cost a first access
	 * here (lib/thp.h) */
	thp_advise((void *)p, len);
	/* a store per page (a memset before free may be optimized away) */
	for (size_t i = 0; i < len; i += 4096)
		p[i] = 0;
	free((void *)p);
}

/*
 * With leave_running, the tree is resumed as soon as everything is copied
 * (pages are in the pages images already, the rest is in memory), so it is
 * frozen only as long as needed; writing and committing come after. When the
 * tree is to be killed, it is killed only once the checkpoint is committed.
 */
static int run(struct dump_ctx *c, struct dump_result *res, struct ckpt_error *e)
{
	bool resumed = false;
	uint64_t saved;
	int r;

	dump_kstate_prepare_start(c);
	saved = dump_images_enter(c);
	if (c->opts->use_dir_fd)
		r = img_dir_create_at(c->opts->dir_fd, c->opts->dir, &c->dir, e);
	else
		r = img_dir_create(c->opts->dir, &c->dir, e);
	caps_restore(saved);
	if (r < 0)
		return r;
	/* a try after a failed one may carry the parent over (dump_incr_keep) */
	r = c->incr ? 0 : dump_incr_open(c, e);
	if (r >= 0)
		r = dump_incr_precopy(c, e);
	if (r >= 0)
		r = dump_incr_reserve(c, e);
	if (r >= 0)
		dump_prefetch_sums(c);
	if (r >= 0 && short_freeze(c))
		warm_heap();
	/* the page buffers too; faulted in while the tree runs where the pages
	 * are written while it is frozen and the freeze is meant to be short
	 * (a killing dump with --parent: a plain killing dump gains nothing,
	 * its ring is faulted in by its first megabytes anyway) */
	if (r >= 0 && !(c->ring = calloc(1, sizeof(*c->ring))))
		r = ckpt_err(e, -ENOMEM, "out of memory");
	if (r >= 0)
		r = page_ring_init(c->ring, !c->opts->leave_running && c->opts->parent, e);
	dump_kstate_prepare_join(c);
	/* after the join: it needs the kernel reader. Where the freeze is
	 * meant to be short: a killing dump without a parent reads them in
	 * its freeze instead, in the same time */
	if (r >= 0 && short_freeze(c))
		dump_prefetch_layouts(c);
	/* the tree still runs: a test acts here (test_incr_cases, test_madvise) */
	if (r >= 0)
		r = dump_step(c, "dump-reserve", e);
	if (r < 0)
		return r;
	r = seize_with_retries(c, e);
	if (r >= 0)
		r = dump_step(c, "dump-seize", e);
	if (r >= 0)
		r = collect(c, e);
	if (r >= 0 && c->opts->check_only) {
		/* everything that can refuse has run: resume, keep nothing */
		dump_fds_undo(c);
		r = unseize_tree(c, e);
		if (r < 0)
			ckpt_err_wrap(e, "resuming the tree");
		res->frozen_seconds = ckpt_monotonic_seconds() - c->t_frozen;
		return r;
	}
	if (r >= 0)
		r = dump_memory(c, e);
	/* while frozen: the threads are listed until the tree is resumed */
	if (r >= 0)
		r = dump_write_pstree(c, e);
	if (r >= 0 && c->opts->leave_running) {
		r = dump_step(c, "dump-finish", e);
		if (r >= 0) {
			dump_fds_undo(c);
			r = unseize_tree(c, e);
			if (r < 0)
				ckpt_err_wrap(e, "resuming the tree");
			resumed = true;
			res->frozen_seconds = ckpt_monotonic_seconds() - c->t_frozen;
		}
	}
	if (r >= 0)
		r = write_images(c, e);
	if (r >= 0)
		r = dump_incr_hold(c, e);
	if (r >= 0)
		r = commit(c, &res->images_bytes, e);
	if (r >= 0 && !resumed) {
		r = dump_step(c, "dump-finish", e);
		if (r >= 0)
			r = check_no_new_signals(c, e);
		if (r < 0)
			remove_committed(c);
	}
	dump_incr_finish(c, r >= 0);
	if (r < 0) {
		if (!resumed)
			rollback(c, e);
		return r;
	}
	if (!resumed)
		res->frozen_seconds = kill_tree(c) - c->t_frozen;
	return 0;
}

static void dump_ctx_init(struct dump_ctx *c, const struct dump_opts *opts, double t_start)
{
	*c =
	    (struct dump_ctx){.opts = opts, .self = getpid(), .self_pidfd = -1, .t_start = t_start};
}

/*
 * After a failed try (the tree resumed): is it worth another? -EAGAIN is
 * what the tree's own progress may clear. A signal that came while the
 * checkpoint was committed: the tree has it now, so a new dump sees it (a
 * program whose timers fire every few ms would otherwise fail a dump now
 * and then). A connection not yet accepted: the program accepts it if let
 * run. waited: the pauses between the tries so far.
 */
static bool try_again(const struct dump_ctx *c, int r, int attempt, double waited,
		      const struct ckpt_error *e)
{
	if (r != -EAGAIN || (c->opts->cancel && *c->opts->cancel))
		return false;
	if (c->late_signal ? attempt >= LATE_SIGNAL_ATTEMPTS : waited >= TRANSIENT_WAIT_SECONDS)
		return false;
	pr_info("attempt %d: %s", attempt, e->msg);
	return true;
}

/* The pause after try attempt, the tree running; returns its length (s). */
static double pause_before_try(int attempt)
{
	unsigned pause = 10000u << (attempt < 5 ? attempt - 1 : 4);

	if (pause > TRANSIENT_PAUSE_MAX_US)
		pause = TRANSIENT_PAUSE_MAX_US;
	usleep(pause);
	return pause / 1e6;
}

int dump_tree(const struct dump_opts *opts_in, struct dump_result *ret, struct ckpt_error *e)
{
	struct dump_opts o = opts_in ? *opts_in : (struct dump_opts){0};
	const struct dump_opts *opts = opts_in ? &o : NULL;
	struct dump_result res = {0};
	struct dump_ctx c = {0};
	struct incr *keep;
	double waited = 0;
	bool inside_pidns;
	int attempt, r;

	if (!opts || opts->pid <= 0 || !opts->dir || !opts->dir[0] ||
	    (opts->use_dir_fd && opts->dir_fd < 0))
		return ckpt_err(e, -EINVAL, "dump needs a pid and an image directory");
	/* a pre-dump never stops the tree */
	if (o.pre_dump)
		o.leave_running = true;
	if (o.pre_dump && o.check_only)
		return ckpt_err(e, -EINVAL, "--pre-dump and --check-only do not go together");
	r = dump_tree_pidns(opts, ret, e, &inside_pidns);
	if (r < 0 || inside_pidns)
		return r;
	dump_ctx_init(&c, opts, ckpt_monotonic_seconds());
	for (attempt = 1;; attempt++) {
		r = run(&c, &res, e);
		if (!try_again(&c, r, attempt, waited, e))
			break;
		/* the failed try's temporary directory goes before the pause:
		 * a dumper killed meanwhile leaves nothing behind */
		keep = dump_incr_keep(&c);
		dump_ctx_free(&c);
		dump_ctx_init(&c, opts, c.t_start);
		c.incr = keep;
		res = (struct dump_result){0};
		waited += pause_before_try(attempt);
		/* the tree runs: a test acts here, or a fault fails the dump */
		r = dump_step(&c, "dump-retry", e);
		if (r < 0)
			break;
		*e = (struct ckpt_error){0};
	}
	if (r == -EAGAIN && !c.late_signal && attempt > 1) {
		size_t n = strlen(e->msg);

		snprintf(e->msg + n, sizeof(e->msg) - n,
			 " (still so after %d tries over %.1f s, the tree running between them)",
			 attempt, waited);
	}
	if (r >= 0) {
		res.ntasks = (unsigned)c.ntasks;
		res.pages_bytes = c.pages_bytes;
		for (size_t i = 0; i < c.ntasks; i++) {
			res.pages_saved += c.tasks[i].incr_saved;
			res.pages_unchanged += c.tasks[i].incr_unchanged;
		}
		res.total_seconds = ckpt_monotonic_seconds() - c.t_start;
		pr_debug("dumped %u tasks, %" PRIu64 " bytes of memory in %.3f s (frozen %.3f s)",
			 res.ntasks, res.pages_bytes, res.total_seconds, res.frozen_seconds);
		if (ret)
			*ret = res;
	}
	dump_ctx_free(&c);
	return r;
}
