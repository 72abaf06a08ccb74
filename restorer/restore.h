/* SPDX-License-Identifier: MIT */
/*
 * ckpt-restore: shared types of the restorer. One struct restore_ctx is
 * passed everywhere (no global state); one struct rtask per task of the
 * tree, one struct rfile per object of files.img. The stages are listed in
 * stages.c; docs/restore.md explains the mechanism.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <termios.h>

#include "arena.h"
#include "caps.h"
#include "error.h"
#include "image.h"
#include "ptrace.h"
#include "kinds/fd_kind.h"
#include "core.pb-c.h"
#include "files.pb-c.h"
#include "flock.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"

#define RST_PAGE_SIZE 4096ULL
/* User address space limit of x86-64 with 4-level paging (TASK_SIZE_MAX). */
#define RST_TASK_SIZE 0x7ffffffff000ULL
#define RST_VSYSCALL_ADDR 0xffffffffff600000ULL
/* Gadget: one r-x page with "syscall; int3...", then scratch pages (rw-). */
/*
 * The gadget: a code page (syscall at 0, then int3s, the batch code of
 * rsys_batch at GADGET_BATCH_CODE), a scratch page, the batch table, then
 * RST_LANES lanes of two pages, a table (63 calls and the done flag) and a
 * scratch page each: the threads whose batches run at the same time
 * (threads_batch_each) each use a lane of their own.
 */
#define GADGET_BATCH_CODE 64
#define GADGET_SCRATCH_SIZE RST_PAGE_SIZE
#define GADGET_TABLE (2 * RST_PAGE_SIZE)
#define GADGET_LANES (GADGET_TABLE + RSYS_BATCH_TABLE)
#define RST_LANES 8
#define GADGET_LANE_SIZE (2 * RST_PAGE_SIZE)
/* a lane's table: one lane of lib/ptrace.h's size */
_Static_assert(RST_PAGE_SIZE == RSYS_LANE_BYTES, "a gadget lane's table is one page");
#define GADGET_SIZE (GADGET_LANES + RST_LANES * GADGET_LANE_SIZE)
/* How long P waits for the tasks to reach a phase before giving up. */
#define RST_PHASE_TIMEOUT_MS 30000
/* clone3 with set_tid, /proc/self/map_files, shm_next_id: either suffices */
#define RESTORE_CAPS_CR (CAPS_BIT(CAP_CHECKPOINT_RESTORE) | CAPS_BIT(CAP_SYS_ADMIN))

/* --cgroups: where the tasks go (cgroups.c) */
enum restore_cgroups {
	RESTORE_CGROUPS_EXACT = 0, /* the saved cgroups, which must exist */
	RESTORE_CGROUPS_CALLER,	   /* the root's subtree under the caller's cgroups */
};

struct restore_opts {
	const char *dir;
	bool json;
	bool plan_only;
	/* with plan_only, for the dump's own check (restore_check_images): the
	 * images alone, not whether this machine could take them now (the
	 * tree being dumped still holds its addresses, pids and paths) */
	bool images_only;
	/* the caller (the dump, plan_only) has just written the pages images and
	 * checksummed the bytes it wrote: their size is checked, not re-read */
	bool pages_sums_known;
	int verbose;
	int progress_fd;	       /* --progress-fd: JSON lines, or -1 */
	volatile sig_atomic_t *cancel; /* set by SIGTERM/SIGINT: fail with "cancelled" */
	/* --shell-job: the root joins our session as the terminal's foreground
	 * job; tty_fd is that terminal (--tty-fd), external terminals become it */
	bool shell_job;
	int tty_fd;
	/* --new-pidns: the restore runs as PID 1 of a new pid namespace (and a
	 * new mount namespace with its own /proc), every task at its saved pid
	 * there (pidns.c) */
	bool new_pidns;
	/* --continue-clocks: the tree runs in a new time namespace whose
	 * CLOCK_MONOTONIC and CLOCK_BOOTTIME go on from the dump (clocks.c) */
	bool continue_clocks;
	enum restore_cgroups cgroups;
	/* --caller-pid: with RESTORE_CGROUPS_CALLER, whose cgroups (ckptd's
	 * client); 0: ours */
	pid_t caller_pid;
	/* caller_pid's cgroup file, opened while the caller lived
	 * (--caller-cgroup-fd, ckptd) or, with --new-pidns, before the new pid
	 * namespace hides its pid ("/proc/self/fd/N"), read instead */
	const char *caller_cgroup_path;
	int caller_cgroup_fd; /* --caller-cgroup-fd (ckptd), or -1 */
	/* --lazy: the tree runs before its private anonymous memory is in; a
	 * pager process serves it through userfaultfd (pager.c, docs/lazy.md) */
	bool lazy;
	/*
	 * Run by ckptd's worker or ckptctl (docs/security.md, the truth
	 * contract): --commit-fd, memfds for the commit record
	 * (lib/restorer_io.h), written at the commit point before any task
	 * runs; --parent-pid, the program that reports our outcome (gone:
	 * cancel, also when it died before our parent-death signal was set);
	 * --client-fd, ckptd's connection to its client (hung up: cancel);
	 * --hold-fd, kept open until we exit so that ckptd sees the end of a
	 * worker's restore only once we are gone. No task inherits them.
	 */
	int commit_fds[2];
	size_t n_commit_fds;
	pid_t parent_pid;
	int client_fd;
	int hold_fd;
};

/* The fds of struct restore_opts, none given: -1, never 0 (stdin). */
#define RESTORE_OPTS_NO_FDS                                                                        \
	.progress_fd = -1, .tty_fd = -1, .commit_fds = {-1, -1}, .client_fd = -1, .hold_fd = -1,   \
	.caller_cgroup_fd = -1

/* A pty of the tree that is the controlling terminal of a session of the tree (tty.c). */
struct rtty_ctty {
	pid_t sid;     /* its session leader: TIOCSCTTY after setsid */
	pid_t fg_pgrp; /* foreground group to give it, 0 if none */
	int fd;	       /* a slave description of P's, inherited by the leader */
};

/* One object of files.img. */
struct rfile {
	FileEntry *fe;
	uint32_t id;		    /* fe->id, here for file_by_id's search */
	const struct fd_kind *kind; /* for objects used by fds */
	bool used_by_fd;	    /* some FdEntry names it */
	/* sent with a message queued in a unix socket (SCM_RIGHTS): made in
	 * stage files like the fds' objects, closed by P once sent */
	bool in_flight;
	bool used_by_map;	    /* some vma or an exe link names it */
	int obj_fd;		    /* the open file description fds are made from, or -1 */
	/* the number every fd of it has in every task that has it, where P
	 * makes it (no dup, no number of P's own: a tree may hold nearly all
	 * the numbers RLIMIT_NOFILE allows); -1 none, or not one number */
	int direct_nr;
	bool direct_cloexec; /* the FD_CLOEXEC of the fds at direct_nr (the first one's) */
	/* P knows obj_fd's FD_CLOEXEC (obj_cloexec): made by a kind's open or
	 * dup'ed to its number by P. A task's fd there that has that flag is
	 * left as it is inherited: no fcntl per fd (9,000 fds: 10 ms). */
	bool obj_flag_known;
	bool obj_cloexec;
	int map_fd;		    /* read-only fd for mmap / exe_fd (verified identity), or -1 */
	/* FILE_SHMEM: some vma, fd or exe link needs the object; map_fd is
	 * then its fd, made by shmem.c (none for SysV segments): read-write,
	 * but for a file object (SHMEM_FILE) only if shmem_map_rw */
	bool shmem_used;
	/* some area maps the object MAP_SHARED and may write it ("mw") */
	bool shmem_map_rw;
	/* SHMEM_MEMFD: map_fd's own description (memfd_create's) is also the
	 * description of some fd of the tree (shmem_open_fd) */
	bool memfd_desc_taken;
};

/* The kernel's special mappings, as saved or as this kernel lays them out. */
struct vdso_layout {
	bool present;
	uint64_t vvar, vvar_len;     /* [vvar] */
	uint64_t vclock, vclock_len; /* [vvar_vclock] (0 len if absent) */
	uint64_t vdso, vdso_len;     /* [vdso] */
};

struct rqueue;

/* A thread of a task other than its main thread (core->threads[1...]). */
struct rthread {
	pid_t tid;
	ThreadCore *core;
	bool seized;
	struct rsys rsys;
	struct rqueue *rq; /* its calls queued (swapped in with rsys) */
};

/* cow.c */
struct cow_range {
	uint64_t start, end;
};

/*
 * A parent holds, from before it forks children[first] to after it forks
 * children[last], the pages src (one of those children) saved at
 * [start, end): those children share them (docs/cow.md, siblings).
 */
struct cow_stage {
	uint64_t start, end;
	struct rtask *src;
	size_t first, last;
	bool orphan; /* the parent has no area there: it maps one like src's for the time */
};

struct rtask {
	pid_t pid, ppid;
	/* pgid and sid as they will be after restore (plan.c maps the ones
	 * whose leader is outside the tree to the root) */
	pid_t pgid, sid;
	bool setsid_leader; /* calls setsid() before forking its children */
	bool group_leader;  /* setpgid(0, 0) in the first group round */
	bool joins_group;   /* setpgid(0, pgid) in the second group round */
	pid_t fork_pgid;    /* its group once forked (plan.c pgid_at_fork; 0: P's) */

	PstreeEntry *pst;
	/* core, mm, pagemap and fds are unpacked into ctx->arena: the task's
	 * own at [arena_lo, arena_hi), its subtree's up to arena_sub_hi */
	size_t arena_lo, arena_hi, arena_sub_hi;
	CoreEntry *core;
	ThreadCore *thread;	 /* the main thread (tid == pid) */
	struct rthread *threads; /* the other threads, in image order */
	size_t n_threads;
	MmEntry *mm;
	PagemapEntry **pagemap;
	size_t n_pagemap;
	/* where the in_parent pages are (chain.c), in address order */
	struct chain_run *psrc;
	size_t n_psrc;
	FdEntry **fds;
	size_t n_fds;
	uint64_t pages_bytes; /* data size of pages-PID.img */
	/* per pagemap entry: its data offset in pages-PID.img (inherited
	 * entries: none, the offset of the next) -- mem_page_source() */
	uint64_t *pagemap_off;
	struct vdso_layout vdso;
	/* per area of mm: shared copy-on-write with the parent or a child, put
	 * in place by the task before it forks (cow.c); NULL before stage pids */
	bool *kept;
	size_t n_kept;
	/* (cow.c, stage pids) the ranges where the task keeps the pages it was
	 * forked with: inherited from the parent or a sibling, or its own pages
	 * its parent held for it (stages) */
	struct cow_range *held;
	size_t n_held;
	/* per pagemap entry inherited from a sibling: handed down by the parent
	 * (else copied from the sibling's saved pages) */
	bool *sib_ok;
	/* the siblings whose images it reads before it forks (cow.c: it copies
	 * their pages, or its parent held their pages for it): a fork must hand
	 * them down (task.c) */
	struct rtask **sib_reads;
	size_t n_sib_reads;
	/* a parent: pages it holds while it forks some of its children */
	struct cow_stage *stages;
	size_t n_stages;
	size_t child_idx; /* its index in parent->children: the order it is forked in */

	/*
	 * The fd table: files_top is the task that installs it, itself unless
	 * it shares its parent's (pst->files_of: made with clone3(CLONE_FILES));
	 * files_slot numbers the tasks of one table (0 for the top).
	 */
	struct rtask *files_top;
	size_t files_slot;
	/* a top: the tasks of its table by files_slot (itself first) and the
	 * last of them in pstree order; NULL in the others (images.c) */
	struct rtask **table;
	size_t n_table;
	struct rtask *table_last;

	/* --lazy (pager.c): P's copy of the task's userfaultfd, -1 if none;
	 * per area of mm: registered with it, its pages left to the pager */
	int uffd;
	bool *lazy;

	struct rtask *parent;
	struct rtask **children; /* in plan order */
	size_t n_children;

	uint64_t gadget;   /* the gadget (code page, then scratch), same for all tasks */
	uint64_t vdso_tmp; /* free spot to move the vDSO through if ranges overlap */

	/* restorer side (P) */
	bool created;  /* the task said hello: it exists and is ours */
	bool ready;    /* reached the current phase */
	bool seized;   /* ptrace-attached by P */
	bool finished; /* final registers set, only the detach is left */
	struct rsys rsys;
	struct rqueue *rq; /* remote syscalls queued (rcall.c), NULL if none */
};

enum plan_kind {
	PLAN_FILE,  /* a = file id: opened by P before anything is forked */
	PLAN_TASK,  /* a = pid: forked by its parent with its pid */
	PLAN_GROUP, /* a = pgid: the leader makes its process group */
	PLAN_JOIN,  /* a = pid, b = pgid: a member enters the group */
	PLAN_FD,    /* a = pid, b = fd number: installed from a file object */
};

struct plan_node {
	enum plan_kind kind;
	int a, b;
	size_t *deps; /* indices of the nodes this one needs first */
	size_t n_deps, cap_deps;
};

/*
 * A process group whose leader was gone at dump (reaped; its members live):
 * made again by a helper process with the group's pid that maker, a task of
 * the group's session, forks before the members join and reaps after
 * (task.c lost_groups_make, lost_groups_reap).
 */
struct lost_group {
	pid_t pgid;
	struct rtask *maker;
};

struct plan {
	struct plan_node *nodes;
	size_t n, cap;
	size_t *order; /* topological order: indices into nodes */
	/* groups whose leader was gone at dump, made by helpers (plan_build) */
	struct lost_group *lost_groups;
	size_t nlost_groups;
};

/* Shared page between P and every task (MAP_SHARED): the phase futex. */
struct restore_ctl {
	uint32_t phase;
	/* per task (index in ctx->tasks): a task sharing another's fd table
	 * is done with P's fds (stage fds), the table's top may close them */
	uint32_t fds_ready[];
};
/* Bytes of the mapping of struct restore_ctl for n tasks. */
#define RESTORE_CTL_SIZE(n)                                                                        \
	((sizeof(struct restore_ctl) + (n) * sizeof(uint32_t) + RST_PAGE_SIZE - 1) /               \
	 RST_PAGE_SIZE * RST_PAGE_SIZE)

struct restore_ctx {
	const struct restore_opts *opts;
	struct ckpt_error err;
	const char *stage; /* name of the running stage */

	int dirfd;
	Inventory *inv;
	/* incremental: the parent checkpoints, nearest first (chain.c) */
	struct chain_level *chain;
	size_t n_chain;
	struct rtask *tasks; /* pstree order: parents before children */
	size_t ntasks;
	struct arena arena;    /* the tasks' images (images.c load_tasks) */
	struct rtask **by_pid; /* sorted by pid, for lookups */
	struct rtask *root;
	/* zombie children (pstree entries with zombie_status): no rtask, each
	 * forked by its parent task and exiting at once (task.c) */
	PstreeEntry **zombies;
	size_t nzombies;
	struct rfile *files; /* sorted by id */
	size_t nfiles;
	/* files.img unpacked: every task needs it, so every fork inherits it
	 * whole; freed at once, not message by message (images.c load_files) */
	struct arena files_arena;
	struct plan plan;

	bool new_keyring; /* the tree gets a new session keyring (keyring.c) */

	/* facts about this machine */
	pid_t pid_max;
	uint64_t nofile_max; /* our hard RLIMIT_NOFILE */
	uint64_t xcr0;
	uint32_t xstate_size;
	struct vdso_layout vdso; /* this kernel's */

	/* file descriptor layout (see fds.c) */
	int max_saved_fd; /* highest fd number of any task */
	/* fd_taken[n] (n <= max_saved_fd): some task has fd n. P's own fds
	 * that tasks inherit live at "spare" numbers, none of those
	 * (fd_spare, fds.c) */
	bool *fd_taken;
	int fd_spare_next; /* where fd_spare looks first */
	/* deleted cwds made again by P (fds.c), one per (dev, ino) saved */
	struct deleted_cwd {
		uint64_t dev, ino;
		int fd; /* O_PATH of the (removed) directory, inherited by the tasks */
	} * deleted_cwds;
	size_t n_deleted_cwds;
	/* what pages pass through on their way into a task: P's in stage
	 * memory (mem.c), a task's own in stage tree (cow.c) */
	char *page_buf;
	/* stage files only: the kinds' state of objects made together (fds.c) */
	struct files_open *fopen;

	/* tree control */
	int status_rd, status_wr; /* status pipe (packet mode) */
	/* --lazy: each task sends its userfaultfd to P over this socket pair */
	int uffd_rd, uffd_wr;
	pid_t pager_pid; /* --lazy: the pager, once started (stage pager) */
	struct restore_ctl *ctl;
	bool subreaper;
	bool tree_started; /* rollback must kill and reap */
	double last_msg;   /* when P last heard from a task (tree.c) */
	/* the restorer's own layout took addresses the tree needs (cow.c),
	 * nothing was created yet: running again may place it elsewhere */
	bool layout_collision;
	/* the commit record says committed: nothing is rolled back any more
	 * but a failure to let the tasks go (stages.c restore_commit) */
	bool committed;
	/* the stages run in the init of a new pid namespace (pidns.c): its
	 * parent, ckpt-restore outside, passes cancels on */
	bool in_ns_init;
	/* run for a non-root caller: our capabilities and those of the tasks
	 * we make are in the permitted set only, raised around the calls that
	 * need them (lib/caps.h; rtask_caps for a task's remote calls) */
	bool caps_lowered;
	int cap_last; /* /proc/sys/kernel/cap_last_cap once read (creds.c), 0 before */

	double t_start;

	/* progress (--progress-fd): bytes_total set by stage verify, the rest counted by ctx.c */
	uint64_t bytes_done, bytes_total; /* pages read into the tasks / in the images */
	uint64_t bytes_tasks_done;	  /* pages of the tasks whose memory is complete */
	size_t tasks_done;		  /* tasks whose memory is complete */

	/* terminals (tty.c) */
	struct rtty_ctty *cttys;
	size_t ncttys;
	pid_t shell_old_fg; /* --shell-job: the terminal's foreground group before */
	bool shell_fg_set;  /* we made the root the foreground job: undo on rollback */
	struct termios shell_old_termios; /* the terminal's, before the job's were set */
	bool shell_termios_set;		  /* undo on rollback */

	/* every (hierarchy, saved path) of the images, resolved in stage verify (cgroups.c) */
	struct rcgroup *cgroups;
	size_t ncgroups;

	/* what the restore made outside its processes, removed if it fails (undo.c) */
	struct restore_undo *undo;
	size_t nundo;
};

/* ---- stages.c: the stage table and its runner ---------------------------- */
int restore_run(struct restore_ctx *ctx);

/* ---- clocks.c: --continue-clocks ----------------------------------------- */
/* Stage verify: the dump-time clock readings of inventory.img. */
int clocks_validate(struct restore_ctx *ctx);
/* Stage clocks: the tree's time namespace, before any task exists. */
int clocks_enter(struct restore_ctx *ctx);

/* ---- pidns.c: --new-pidns ----------------------------------------------- */
struct pidns_result {
	pid_t init_pid;	     /* the namespace's init, as we see it */
	pid_t root_pid;	     /* the root in the new namespace (its saved pid) */
	pid_t root_host_pid; /* the same task as we (the caller) see it */
	uint64_t ntasks;
	char stage[32];
};
/* Run every stage as PID 1 of a new pid (and mount) namespace; that process
 * stays as the namespace's init if the restore succeeds. */
int pidns_restore(struct restore_ctx *ctx, struct pidns_result *res);
/* ckpt-restore --ns-init: reap until the namespace is empty; exit status. */
int pidns_init_main(void);

/* ---- ctx.c: the restore context, progress, cancel ------------------------ */
void restore_ctx_init(struct restore_ctx *ctx, const struct restore_opts *opts);
void restore_ctx_free(struct restore_ctx *ctx);
/* Bytes of ctx->page_buf. */
#define RST_PAGE_BUF_BYTES (8ULL << 20)
/* ctx->page_buf, mapped on first use, in huge pages: the data passes through
 * each byte of it, and a 4 KiB page costs a first access each (lib/thp.h). */
int restore_page_buf(struct restore_ctx *ctx, char **ret, struct ckpt_error *e);
/* Unmap ctx->page_buf (if mapped). */
void restore_page_buf_free(struct restore_ctx *ctx);
/* One JSON progress line on opts->progress_fd (if any); never blocks. */
void restore_progress(struct restore_ctx *ctx);
/* Stage memory: len more bytes of pages are in a task; one line. */
void restore_progress_pages(struct restore_ctx *ctx, uint64_t len);
/* Stage memory: the memory of task t is complete; one line. */
void restore_progress_task_done(struct restore_ctx *ctx, const struct rtask *t);
/* -ECANCELED with the error "cancelled" once SIGTERM/SIGINT came, the
 * --parent-pid program is gone or the --client-fd client hung up; else 0. */
int restore_check_cancel(struct restore_ctx *ctx);
/*
 * With caps_lowered, the effective set of the thread of t that remote
 * calls run in: raised to its permitted set (raise) or emptied, by a remote
 * capset, around the few remote calls that need the restorer's privileges
 * (PR_SET_MM_MAP, seccomp filters, mlock, credentials). A no-op otherwise
 * (root: the tasks keep a full effective set until creds). creds.c.
 */
int rtask_caps(struct restore_ctx *ctx, struct rtask *t, bool raise);
/* The same capset queued (rqueue), its arguments in scratch slot 1-3 (each
 * 64 bytes from the scratch's start); RTASK_CAPS_SCRATCH bytes are the
 * slots', the rest of the scratch page is free for the calls around it. */
#define RTASK_CAPS_SCRATCH 256
int rtask_caps_queue(struct restore_ctx *ctx, struct rtask *t, bool raise, unsigned slot);
/* In a child of the restorer (a task): close the fds of --commit-fd,
 * --client-fd, --hold-fd and --caller-cgroup-fd, the restorer's alone. */
void restore_close_control_fds(const struct restore_opts *o);

/* ---- undo.c: objects made outside the tree, removed if the restore fails - */
/* A file the restore made at path (made_fd: an fd of it, or -1 to look at
 * path now): unlinked if the restore fails and path is still that file. */
int restore_undo_unlink(struct restore_ctx *ctx, const char *path, int made_fd);
int restore_undo_shm(struct restore_ctx *ctx, int shmid);
/* A directory made by the restore (a cgroup of --cgroups=caller, a cwd on
 * tmpfs): removed if the restore fails. */
int restore_undo_rmdir(struct restore_ctx *ctx, const char *path);
/* For fd_open_ctx.made_path (owner: the restore_ctx). */
void restore_undo_made_path(void *owner, const char *path);
void restore_undo_run(struct restore_ctx *ctx);
void restore_undo_free(struct restore_ctx *ctx);

/* ---- images.c: load and validate every image --------------------------- */
/* images.c: every record of an image (max records at most) */
int images_read_all(int dirfd, enum img_kind kind, pid_t pid, size_t max, void ***ret,
		    size_t *ret_n, struct ckpt_error *e);

/*
 * chain.c: incremental checkpoints (docs/incremental.md). chain_load (stage
 * verify) refuses a pre-dump, opens and verifies every parent checkpoint
 * (relative path and inventory CRC32C recorded by the child) and finds,
 * for every in_parent run of a task, the checkpoint and data offset that
 * hold its bytes.
 */
struct chain_run {
	uint64_t vaddr, len;
	size_t level; /* index in ctx->chain */
	uint64_t off; /* data offset in that checkpoint's pages-PID.img */
};
struct chain_level {
	int dirfd;
	char *name; /* for messages: the path as recorded, from the first checkpoint */
	Inventory *inv;
};
int chain_load(struct restore_ctx *ctx);
/*
 * The one place that says where a page's bytes come from: for the in_parent
 * page at vaddr of t, the checkpoint (*level, in ctx->chain), the data
 * offset in its pages-PID.img and how many bytes follow there (*avail).
 */
int chain_page_src(struct restore_ctx *ctx, const struct rtask *t, uint64_t vaddr,
		   size_t *level, uint64_t *off, uint64_t *avail, struct ckpt_error *e);
/* Open pages-PID.img (all its parts) of that checkpoint; the caller closes it. */
int chain_open_pages(struct restore_ctx *ctx, size_t level, pid_t pid, struct img_pages **ret,
		     struct ckpt_error *e);
int images_load(struct restore_ctx *ctx);
struct rtask *task_by_pid(const struct restore_ctx *ctx, pid_t pid);
/* The zombie (pstree.img entry with zombie_status) whose pid is pid, or NULL. */
const PstreeEntry *zombie_by_pid(const struct restore_ctx *ctx, pid_t pid);
struct rfile *file_by_id(const struct restore_ctx *ctx, uint32_t id);
/* The task's lowest fd number on files.img entry id, -1 if none. */
int rtask_fd_of_file(const struct rtask *t, uint32_t id);

/* ---- consistency.c: what must agree across images (fd tables, pipes, unix peers) */
int consistency_check(struct restore_ctx *ctx);

/* ---- checks.c: the images against this machine --------------------------- */
int checks_machine(struct restore_ctx *ctx);
int vdso_layout_self(struct vdso_layout *ret, struct ckpt_error *e);
int checks_pids_free(struct restore_ctx *ctx);

/* ---- cgroups.c: the cgroups of every task and thread --------------------------- */
/* Stage verify: the fields of threads[idx].cgroups. */
int cgroups_validate_thread(const char *file, size_t idx, const ThreadCore *th,
			    struct ckpt_error *e);
/* Stage verify (machine checks): every saved cgroup found here (or, with
 * --cgroups=caller, mapped under the caller's), before anything is made. */
int cgroups_check(struct restore_ctx *ctx);
/* Stage cgroups: make the missing ones (caller), move every task and thread. */
int cgroups_restore(struct restore_ctx *ctx);
void cgroups_free(struct restore_ctx *ctx);

/* ---- plan.c ---------------------------------------------------------------- */
int plan_build(struct restore_ctx *ctx);
/* Stage pids: refuse stops that could not be made again (orphaned groups). */
int plan_check_stops(struct restore_ctx *ctx);
/* The signal a task saved as stopped is stopped with again, 0 if none. */
int plan_stop_signal(const struct rtask *t);
void plan_print(const struct restore_ctx *ctx, FILE *out);
void plan_free(struct plan *p);

/* ---- fds.c ------------------------------------------------------------------ */
/* Deleted cwds made again (stage files) and entered by a task (stage fds). */
int deleted_cwds_create(struct restore_ctx *ctx);
int deleted_cwd_enter(const struct restore_ctx *ctx, const CoreEntry *c, struct ckpt_error *e);
int files_open_all(struct restore_ctx *ctx);
/* P closes every object and mapped file it made (a few close_range calls, not one close each). */
void files_close(struct restore_ctx *ctx);
/* Move one of P's fds that tasks inherit to a number no task uses (fds.c). */
int fd_spare(struct restore_ctx *ctx, int *fd, const char *what);
/* In a task: install its fds and close everything else (once per shared fd table). */
int task_install_fds(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e);
/* No task after t (stage order) uses t's fd table: t closes the restorer's fds in it. */
bool fds_table_last(const struct rtask *t);

/* ---- tty.c: terminals --------------------------------------------------------- */
/* Stage files: every terminal object (pty pairs, the caller's terminal). */
int tty_files_open(struct restore_ctx *ctx);
/* --shell-job: the session the root joins (ours), else 0. */
pid_t tty_shell_session(const struct restore_ctx *ctx);
/* In a task, right after setsid(): take back its controlling terminal. */
int tty_task_session(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e);
/* In a task, once every group exists: the foreground group of its terminal. */
int tty_task_foreground(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e);
/* P, end of stage fds: the root becomes the terminal's foreground job. */
int tty_shell_foreground(struct restore_ctx *ctx);
/* P, rollback: give the terminal back to its foreground group. */
void tty_shell_rollback(struct restore_ctx *ctx);
void tty_free(struct restore_ctx *ctx);

/* ---- shmem.c: shared memory objects (FILE_SHMEM entries) ------------------------ */
/* Bytes of pages-PID.img that hold objects' content (after the pagemap's pages). */
uint64_t shmem_task_bytes(const struct restore_ctx *ctx, pid_t pid);
/* Stage verify, once every image is loaded: objects, content bounds, files, SysV ids. */
int shmem_verify(struct restore_ctx *ctx);
/* Stage files: create every object once, in P, kept at a high fd (map_fd). */
int shmem_create_all(struct restore_ctx *ctx);
/* Stage files: the description of a memfd / deleted-file fd, from its object. */
int shmem_open_fd(struct restore_ctx *ctx, struct rfile *f);
/* Stage memory: attach a System V area in the task (shmat SHM_REMAP). */
int shmem_attach_sysv(struct restore_ctx *ctx, struct rtask *t, size_t vma_idx);

/* ---- tree.c (P side) -------------------------------------------------------- */
int tree_create(struct restore_ctx *ctx);
int tree_setup_tasks(struct restore_ctx *ctx);
void tree_rollback(struct restore_ctx *ctx);

/* ---- task.c (inside each new task), and the messages it sends P ----------------- */
pid_t task_clone(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e);
/* In a task: tell P it is still busy (P's wait for a phase starts again). */
void task_busy(struct restore_ctx *ctx, struct rtask *t);
enum task_msg_kind {
	MSG_HELLO = 1, /* the task exists */
	MSG_PHASE,     /* reached / finished a phase (arg: phase) */
	MSG_ERROR,     /* text says what failed; the task exits */
	MSG_BUSY,      /* still working on the phase (a long step): P waits on */
};
enum task_phase {
	PHASE_FORKED = 1, /* children forked, sessions made */
	PHASE_GROUPS,	  /* round 1: group leaders made their groups */
	PHASE_JOIN,	  /* round 2: members joined their groups */
	PHASE_SETUP,	  /* fds, cwd, sigactions... installed, gadget mapped */
};
/* Does t take part in phase? The others wait for their next one, and P does
 * not wait for them (a phase most tasks have nothing to do in is short). */
bool task_in_phase(const struct rtask *t, int phase);
struct task_msg {
	int32_t pid;
	int32_t kind;
	int32_t arg;
	int32_t err;
	char text[CKPT_ERROR_MAX];
};

/* ---- rcall.c: remote syscalls --------------------------------------------- */
/* Remote syscall in task t; a failed call (or -errno result) is an error naming it. */
#define RARGS(...) ((const uint64_t[6]){__VA_ARGS__})
int rcall(struct rtask *t, struct ckpt_error *e, long nr, const uint64_t a[6], long *ret,
	  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/*
 * Queue a remote syscall of t instead: the queue runs as one batch
 * (rsys_batch: one resume of the task per 1,023 calls instead of two ptrace
 * stops per call) at rflush and before any rcall. Only calls that cannot
 * block, whose arguments are registers or scratch slots of their own. rflush fails naming the first
 * queued call that failed, as rcall would have; the calls after it ran all the same (the failed
 * restore kills the task). rqueue_may_fail: a -errno result is no failure.
 */
int rqueue(struct rtask *t, struct ckpt_error *e, long nr, const uint64_t a[6], const char *fmt,
	   ...) __attribute__((format(printf, 5, 6)));
int rqueue_may_fail(struct rtask *t, struct ckpt_error *e, long nr, const uint64_t a[6]);
/*
 * Queue len bytes (copied) to be written at addr in t before the queued
 * calls run: in the same process_vm_writev as the batch's table
 * (rsys_batch_with), not one system call of P's each. The arguments of
 * the calls queued (a scratch slot of their own each, as for rqueue).
 */
int rqueue_write(struct rtask *t, struct ckpt_error *e, uint64_t addr, const void *buf, size_t len);
int rflush(struct rtask *t, struct ckpt_error *e);
/*
 * rflush in steps, for threads whose batches run at the same time (each in
 * a lane of its own: threads_batch_each): start returns 1 when the queue
 * runs as one batch, 0 when it was made already (empty, or longer than the
 * lane's table: rflush); then rflush_stop, then rflush (which finishes it).
 */
int rflush_start(struct rtask *t, struct ckpt_error *e);
int rflush_stop(struct rtask *t, struct ckpt_error *e);
/* Forget the queue (the task is being killed). */
void rqueue_drop(struct rtask *t);
/*
 * A stage's steps for every task of the tree, in order: each step queues
 * the task's calls (and may make some right away, rcall), made as one batch
 * when it returns; then after() (NULL: none), which may make calls right
 * away, once the task's last batch is made. The batches of up to RST_TASK_GROUP tasks run at the
 * same time (each task has a gadget of its own): P starts them all, then stops each, then finishes
 * each, then the group's next step, so that the tasks' runs and their wake-ups across the CPUs
 * overlap instead of taking turns with P (as threads_batch_each does for the threads of one task).
 * Tasks sharing an fd table are never in one group. Checks for a cancel before each group. On
 * failure the batches started are still finished and no task after the failed one is started.
 */
#define RST_TASK_GROUP 8
typedef int (*task_step)(struct restore_ctx *ctx, struct rtask *t);
int tasks_batch_each(struct restore_ctx *ctx, const task_step *steps, size_t nsteps,
		     task_step after);
/* The end of a function that queued: rflush, or after a failure r (< 0)
 * forget the queue, which no later call may run in another session. */
int rqueue_end(struct rtask *t, struct ckpt_error *e, int r);

/* ---- cow.c: memory shared copy-on-write with the parent ---------------------- */
/* Stage verify: inherited pages in compatible areas of the child and the parent,
 * saved by the parent. */
int cow_verify(struct restore_ctx *ctx);
/* The kept areas of every task (t->kept, t->n_kept). */
int cow_plan(struct restore_ctx *ctx);
/* Stage pids: cow_plan, then the kept areas' address ranges reserved in P. */
int cow_plan_reserve(struct restore_ctx *ctx);
/* In a task, before it forks its children: its kept areas with its content. */
int cow_task_premap(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e);
/* In a task, around forking children[idx]: the pages it holds for them
 * (before), then its own again (after). */
int cow_task_fork(struct restore_ctx *ctx, struct rtask *t, size_t idx, bool before,
		  struct ckpt_error *e);
/* Set (to the attempt number) when the restorer runs itself again after a
 * collision of its own layout with the tree's shared memory (main.c). */
#define RESTORE_ATTEMPT_ENV "CKPT_RESTORE_ATTEMPT"
#define RESTORE_ATTEMPTS_MAX 4
/* Is addr in a kept area of t? *end: where that answer stops holding. */
bool cow_kept_range(const struct rtask *t, uint64_t addr, uint64_t *end);

/* ---- mem.c: remote memory restore ------------------------------------------- */
/*
 * Where the saved bytes of the page of t at address va are: the task's
 * pages image (owned by the caller's src) and the data offset there; the
 * run of data that follows in the same place ends at *run_end. -ENOENT: no data saved for it (a
 * hole, or a page inherited from the parent). Every reader of page data (stage memory, the pager)
 * goes through here.
 */
struct page_src {
	const struct restore_ctx *ctx;
	const struct rtask *t;
	struct img_pages *pages; /* pages-PID.img and its parts, opened on first use */
};
int mem_page_source(struct page_src *src, uint64_t va, const struct img_pages **pages,
		    uint64_t *off, uint64_t *run_end, struct ckpt_error *e);
/* Open what src reads from now (before the images may go away: ckptd's
 * copy of a non-root caller's images is removed once the restore returns). */
int mem_page_src_open(struct page_src *src, struct ckpt_error *e);
void mem_page_src_close(struct page_src *src);
int mem_seize_all(struct restore_ctx *ctx);
int mem_restore_all(struct restore_ctx *ctx);
int gadget_choose(struct restore_ctx *ctx);

/* ---- pager.c: --lazy ---------------------------------------------------------- */
/* Stage tree: the socket pair the tasks send their userfaultfd over. */
int lazy_setup(struct restore_ctx *ctx);
/* In a task (stage fds, caps raised): its userfaultfd, sent to P, closed. */
int lazy_task_uffd(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *e);
/* Stage memory: P takes every task's userfaultfd. */
int lazy_receive_all(struct restore_ctx *ctx);
/* Stage memory: which areas of t the pager fills (t->lazy), registered. */
int lazy_plan_task(struct restore_ctx *ctx, struct rtask *t);
int lazy_register_task(struct restore_ctx *ctx, struct rtask *t);
/* Is addr in a lazy area of t? *end: where that answer stops holding. */
bool lazy_range(const struct rtask *t, uint64_t addr, uint64_t *end);
/* Stage pager: start the pager (its own process, away from the tree). */
int pager_start(struct restore_ctx *ctx);

/* ---- creds.c ------------------------------------------------------------------ */
/* Resource limits (made), then the main thread's credentials (queued). */
int creds_queue_task(struct restore_ctx *ctx, struct rtask *t);
/* Credentials cr in the thread whose session is t->rsys, queued: nothing
 * is made until rflush. */
int creds_queue_thread(struct restore_ctx *ctx, struct rtask *t, const Creds *cr);

/* ---- locks.c: file locks (stage verify, stage locks) ---------------------------- */
/* Every saved lock well formed (kind where it belongs, byte range). */
int locks_verify(struct restore_ctx *ctx);
/* The task's POSIX locks, and the locks of the descriptions not in taken[] yet. */
int locks_restore_task(struct restore_ctx *ctx, struct rtask *t, bool *taken);

/* ---- sigio.c: signal-driven I/O of the descriptions (stage verify, stage sigio) ---- */
int sigio_verify(struct restore_ctx *ctx);
int sigio_restore(struct restore_ctx *ctx);

/* ---- ldt.c: the process's LDT ---------------------------------------------------- */
int ldt_validate(struct restore_ctx *ctx, const char *f, const CoreEntry *c);
/* Queued in its batch of stage procstate, with the scratch to itself. */
int ldt_queue(struct rtask *t, struct ckpt_error *e);

/* ---- keyring.c: the tree's session keyring ---------------------------------------- */
int keyring_validate(struct restore_ctx *ctx, const char *f, const CoreEntry *c);
/* Stage pids: whether the tree keeps our session keyring (ctx->new_keyring) */
int keyring_check(struct restore_ctx *ctx);
/* ... and, where not, a new one joined before the first fork */
int keyring_enter(struct restore_ctx *ctx);

/* ---- seccomp.c: stage seccomp -------------------------------------------------- */
int seccomp_validate(struct restore_ctx *ctx, const char *f, const CoreEntry *c);
int seccomp_restore_task(struct restore_ctx *ctx, struct rtask *t);

/* ---- procstate.c: stage procstate ------------------------------------------------ */
/* Per-thread creds, pdeathsig, sched, affinity and the seccomp filters of core-PID.img. */
int procstate_validate(struct restore_ctx *ctx, const char *f, const CoreEntry *c);
/* personality, timer slack, pdeathsig of the other threads (made), the
 * process's prctls, LDT, mlockall (queued); after them oom_score_adj and
 * sched, from the restorer. */
int procstate_queue_task(struct restore_ctx *ctx, struct rtask *t);
int procstate_after_task(struct restore_ctx *ctx, struct rtask *t);
/* Stage pids: audit login uid and session id the tasks can be given. */
int procstate_check_audit(struct restore_ctx *ctx);
/* In a task, before its children and threads: its audit login uid. */
int procstate_task_audit(struct rtask *t, struct ckpt_error *e);
/* in a task that made its session: its autogroup's nice */
int procstate_task_autogroup(struct rtask *t, struct ckpt_error *e);
/* The parent-death signal the main thread gets at resume (0 for the root, warned). */
uint32_t procstate_pdeathsig(struct restore_ctx *ctx, const struct rtask *t);
/* modes.c: per-thread and per-area modes (TSC, machine-check kill, CPUID,
 * speculation controls, NUMA policies, syscall user dispatch): the
 * verifier's check of a thread's and of a memory policy (a thread's or an
 * area's), the calls queued for a thread and for the areas of a task, and the
 * thread's syscall user dispatch after its last remote call */
int modes_validate_thread(const char *f, size_t i, const ThreadCore *tc, struct ckpt_error *e);
/* "F: field FIELD[I].mempolicy: ..." unless p is a policy any kernel could give */
int modes_validate_mempolicy(const MemPolicy *p, const char *f, const char *field, size_t i,
			     struct ckpt_error *e);
int modes_queue_thread(struct rtask *t, const ThreadCore *tc, struct ckpt_error *e);
int modes_queue_areas(struct rtask *t, struct ckpt_error *e);
int modes_thread_sud(pid_t tid, const ThreadCore *tc, struct ckpt_error *e);

/* ---- sched.c: scheduling, in stage procstate -------------------------------------- */
int sched_validate(struct restore_ctx *ctx, const char *f, size_t idx, const ThreadCore *tc);
/* Policy, nice and affinity of every thread, from the restorer. */
int sched_restore_task(struct restore_ctx *ctx, struct rtask *t);

/* ---- signals.c: rseq, pending signals, final registers, resume ----------------- */
/* rseq (queued), pending signals, timers, the other threads' state */
int signals_queue_task(struct restore_ctx *ctx, struct rtask *t);
/* Stage resume, each task not finished yet: its parent-death signal
 * (queued), then its other threads' and its own final state, the gadget
 * unmapped by its last remote call. */
int resume_queue_task(struct restore_ctx *ctx, struct rtask *t);
int resume_finish_task(struct restore_ctx *ctx, struct rtask *t);
/* Stopped tasks with a parent in the tree: stopped first, seen by the parent as before. */
int resume_stopped_children(struct restore_ctx *ctx);
int resume_all(struct restore_ctx *ctx);
void regs_from_image(const UserRegs *s, struct user_regs_struct *d);
/* Queue one saved siginfo on thread tid of t (t->rsys must be a session in tid). */
int signals_queue_thread(struct restore_ctx *ctx, struct rtask *t, pid_t tid,
			 const ProtobufCBinaryData *si);

/* ---- timers.c: itimers and POSIX timers (in the signals stage) ---------------- */
int timers_validate(struct restore_ctx *ctx, const char *f, const CoreEntry *c);
int timers_restore_task(struct restore_ctx *ctx, struct rtask *t);

/* ---- threads.c: the other threads of a task ------------------------------------- */
/* In the task: clone3 every other thread with its tid, parked in pause(). */
int threads_create(struct rtask *t, struct ckpt_error *e);
/* P: seize the other threads and open a remote-syscall session in each. */
int threads_seize(struct restore_ctx *ctx, struct rtask *t);
/* Credentials of each other thread (they are per thread in the kernel). */
int threads_creds(struct restore_ctx *ctx, struct rtask *t);
/* sigaltstack, robust list, tid address (every thread), rseq and pending
 * (others): the other threads' made, the main thread's queued. */
int threads_queue_state(struct restore_ctx *ctx, struct rtask *t);
/* Final registers, xstate and mask of the other threads. */
int threads_resume_prepare(struct restore_ctx *ctx, struct rtask *t);
int threads_detach(struct restore_ctx *ctx, struct rtask *t);
/* Swap the thread's session and queue into t->rsys, t->rq (and back: call twice). */
void threads_swap_rsys(struct rtask *t, struct rthread *th);
/*
 * For each other thread of t, its session swapped in: queue() queues its
 * calls (rqueue), made as one batch, then after() (NULL: none) may make
 * calls right away; RST_LANES threads' batches run at the same time, each
 * in a lane of the gadget. On failure, *ret_failed (if not NULL) is the
 * thread whose step failed.
 */
typedef int (*thread_step)(struct restore_ctx *ctx, struct rtask *t, struct rthread *th);
int threads_batch_each(struct restore_ctx *ctx, struct rtask *t, thread_step queue,
		       thread_step after, pid_t *ret_failed);
