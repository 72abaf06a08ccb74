/* SPDX-License-Identifier: MIT */
/*
 * Private to the dump engine (every file of dump/): the context of
 * one dump and the steps dump.c runs in order.
 *
 *   seize_tree        seize.c      freeze every task, refuse what we can't dump
 *   dump_task_core    dump_task.c  registers, signals, creds... (remote syscalls)
 *   dump_task_mm      dump_mm.c    layout of the address space, mapped files
 *   dump_task_fds     dump_fds.c   open file descriptors
 *   dump_task_scan    dump_mm.c    which pages to save, which the parent shares
 *   dump_task_pages   dump_pages.c page contents, streamed to pages-PID.img
 *   write + commit    dump.c
 *   finish            seize.c      kill the tree, or detach and resume it
 */
#pragma once

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "dump.h"
#include "error.h"
#include "image.h"
#include "proc.h"
#include "ptrace.h"
#include "core.pb-c.h"
#include "files.pb-c.h"
#include "flock.pb-c.h"
#include "mm.pb-c.h"
#include "pstree.pb-c.h"

/* One task of the tree (a process; its main thread has tid == pid). */
struct page_pipes;
struct incr;

/* A run of pages to save (dump_task_scan): data, or inherited from the parent. */
struct page_run {
	uint64_t vaddr;
	uint32_t nr;
	bool inherited;
	bool in_parent; /* unchanged since the parent checkpoint (dump_incr.c) */
	/* inherited: 0 from the parent's page now, else the page this sibling
	 * saved, which the parent held when it forked both (docs/cow.md) */
	pid_t sibling;
	/* saved from the copy made before the freeze (dump_incr_precopy), at
	 * this offset of it, not read from the task */
	bool precopied;
	uint64_t pre_off;
};

struct sib_table;

/* A thread whose syscall user dispatch the dump switched off (dump_sud.c). */
struct dump_sud {
	pid_t tid;
	struct ckpt_sud cfg;
};

/* An area with a NUMA policy of its own (dump_numa.c). */
struct area_mpol {
	uint64_t start;
	MemPolicy *pol; /* NULL once given to its Vma */
};

struct dump_task {
	pid_t pid;
	/* the other threads, each seized (in a ptrace stop) while listed here */
	pid_t *threads;
	size_t nthreads;
	pid_t ppid; /* parent inside the tree, 0 for the root */
	/* its fd table is its parent's (clone with CLONE_FILES): the parent, else 0 */
	pid_t files_of;
	/* its fd table is shared with another process of the tree */
	bool files_shared;
	/* its cwd, root and umask are its parent's (clone with CLONE_FS): the parent, else 0 */
	pid_t fs_of;
	pid_t pgid, sid;
	int tty_nr; /* controlling terminal (/proc/PID/stat), 0 if none */
	/* its session keyring's serial (0: none of its own), from the kernel
	 * reader (dump_kstate.c): keyring_known false without one */
	uint32_t session_keyring;
	bool keyring_known;
	/* a thread in another one (its serial; dump_keyring tells whether
	 * both are the user's session keyring, which is no difference) */
	pid_t keyring_other_tid;
	uint32_t keyring_other;
	bool seized;
	int stop_sig;	  /* the signal of the group stop it was in before we seized it, or 0 */
	int pidfd;	  /* for pidfd_getfd, -1 until opened */
	struct rsys rsys; /* remote syscall session, when rsys_open */
	bool rsys_open;
	uint64_t brk; /* read by a remote brk(0) in dump_task_core */
	/* threads whose syscall user dispatch is off while seized, to put back */
	struct dump_sud *sud;
	size_t nsud;
	/* areas with a NUMA policy of their own, in address order (dump_numa.c) */
	struct area_mpol *mpols;
	size_t nmpols;

	CoreEntry *core;
	MmEntry *mm;
	FdEntry **fds;
	size_t nfds;
	uint64_t pages_bytes;
	struct page_run *runs; /* dump_task_scan, in address order */
	size_t nruns, runs_cap;
	/* a parent, while its children are scanned: their own pages' frames */
	struct sib_table *sib;
	/* written while frozen, closed (fsync) by dump_close_pages() later */
	struct img *pagemap_img, *pages_img;
	/* the further parts of its pages image, written side by side (dump_pages.c) */
	struct img *pages_parts[IMG_PAGES_PARTS_MAX - 1];
	/* --leave-running: the pages wait in pipes until dump_close_pages() */
	struct page_pipes *pipes;
	uint64_t incr_saved, incr_unchanged; /* pages, incremental dumps */
	/*
	 * Incremental dumps: the spans of the runs' pages that the scan's own
	 * walk found clean (pmscan_is_clean), in address order, merged;
	 * clean_known if its walk asked for those categories everywhere, so
	 * that dump_incr_classify walks the page tables no second time.
	 */
	struct clean_span {
		uint64_t start, end;
	} * clean;
	size_t nclean, clean_cap;
	bool clean_known;
};

/* One entry of files.img; fds or mappings that share it point at it by id. */
struct dump_file {
	FileEntry *fe;
	uint64_t dev, ino;
	/* mapping_only entries are shared by (dev, ino); fd entries only when
	 * kcmp says the open file description is the same as (pid, fd)'s */
	bool mapping;
	pid_t pid;
	int fd;
	uint64_t addr; /* its open file description's address (DESC_BY_ADDRESS) */
	/* a file in flight (pid is ours, fd our copy, closed with the ctx):
	 * the task and socket whose queue holds it, for messages and shmem */
	pid_t holder_pid;
	int holder_fd;
	/* a mapped file (or the executable) whose content sum is still to be
	 * taken, once the tree's watches are known: the /proc link to open
	 * (dump_watched.c, dump_mapped_sums), else NULL */
	char *sum_src;
};

/* A file in flight found in a socket's queue, dumped once every task's fds are. */
struct dump_inflight {
	int fd;		 /* our copy (closed once dumped or with the ctx) */
	uint32_t *slot;	 /* where its files.img id goes (in the socket's entry) */
	pid_t pid;	 /* the task holding the socket, and its fd */
	int sockfd;
};

/*
 * One shared memory object of the tree (dump_shmem.c): a FILE_SHMEM entry of
 * files.img, found by the (dev, ino) of what the areas or fds point at.
 */
struct dump_shmem {
	size_t file_idx; /* its entry: files[file_idx] */
	uint64_t dev, ino;
	bool sysv;    /* SysV inode numbers are shmids: never equal to another's */
	pid_t owner;  /* its content goes after this task's pages */
	/* a file mapped MAP_SHARED: by some area that may write it ("mw"),
	 * by some that may not (a tmpfs file, --save-tmpfs-files) */
	bool shared_rw, shared_ro;
	char src[96]; /* /proc/PID/map_files/A-B or /proc/PID/fd/N: read while frozen */
};

/* A zombie child of a task: recreated at restore, nothing else to dump. */
struct dump_zombie {
	pid_t pid, ppid, pgid, sid;
	int status; /* raw wait status */
	char comm[16];
};

struct file_sum; /* fd_kind.h */

/* Whether this kernel runs Landlock, asked once a dump (dump_kstate.c) */
enum dump_landlock {
	DUMP_LANDLOCK_UNASKED,
	DUMP_LANDLOCK_OFF,
	DUMP_LANDLOCK_ON,
};

struct dump_ctx {
	const struct dump_opts *opts;
	pid_t self; /* our own pid: never part of the tree */
	int self_nspid_levels;

	struct dump_task *tasks; /* tasks[0] is the root, parents before children */
	size_t ntasks, tasks_cap;
	struct dump_zombie *zombies; /* not in tasks: never seized */
	size_t nzombies;

	struct dump_file *files;
	size_t nfiles, files_cap;
	/* the positions in files of the fd entries (not mapping ones), sorted
	 * by (dev, ino) and then by the order of open file descriptions
	 * desc_order says: find_shared is a binary search, not a comparison
	 * with every file */
	size_t *by_desc;
	size_t nby_desc, by_desc_cap;
	/* the order of descriptions, set by the first task's fds: their
	 * addresses (kread_task_files, one program run a task), else kcmp's
	 * (a call per comparison) where the kernel reader cannot tell them */
	enum { DESC_UNDECIDED, DESC_BY_ADDRESS, DESC_BY_KCMP } desc_order;
	/* the kernel reader could not tell which areas may have a NUMA policy
	 * (dump_numa.c): each is asked (logged once) */
	bool areas_unseen;

	struct dump_inflight *inflight;
	size_t ninflight, inflight_cap;
	int self_pidfd; /* pidfd of our own process, for probing files in flight, or -1 */
	struct kread *kread; /* the kernel reader, once a kind needed it (fd_probe.kread) */
	enum dump_landlock landlock; /* whether this kernel runs Landlock (dump_kstate.c) */
	bool kstate_unseen;	     /* the kernel reader could not tell a task's state (logged) */
	/* the thread opening the kernel reader before the freeze (dump_kstate.c) */
	pthread_t kstate_prep;
	bool kstate_prep_running;
	/* the tree's session keyring, the first task's (dump_keyring.c; 0: none yet) */
	uint32_t keyring_serial;
	pid_t keyring_pid;
	cpu_set_t online;    /* the CPUs online, once cpus_online read them (online_read) */
	bool online_read;

	struct dump_shmem *shmem;
	size_t nshmem, shmem_cap;

	struct img_dir *dir;

	uint64_t pages_bytes;
	unsigned tasks_done;
	double t_start, t_frozen;
	/* the tree's time namespace (the root's; every task must share it):
	 * inode of /proc/PID/ns/time (0: none) and its offsets minus ours */
	uint64_t time_ns_ino;
	int64_t tree_mono_delta, tree_boot_delta;
	/* the tree's CLOCK_MONOTONIC and CLOCK_BOOTTIME at the freeze (ns) */
	int64_t frozen_mono_ns, frozen_boot_ns;
	bool late_signal; /* the dump failed: a signal came during the commit */
	struct incr *incr; /* --parent / --pre-dump (dump_incr.c), or NULL */
	/* the buffers of the page writers that write while the tree is frozen
	 * (one task at a time; page_writer.h), NULL until the dump maps it */
	struct page_ring *ring;
	/* content checksums of mapped files taken before the freeze
	 * (dump_prefetch.c), used while their identity holds */
	struct file_sum *sums;
	size_t nsums, sums_cap;
	/* the areas of the large tasks, read before the freeze
	 * (dump_prefetch.c), used if nothing changed them since */
	struct dump_layout *layouts;
	size_t nlayouts, layouts_cap;
	/* the files and directories the tree's inotify watches see a read of
	 * (dump_watched.c): before the freeze, then from its dumped fds */
	struct dump_watch *watched;
	size_t nwatched, watched_cap;
};

struct dump_task *dump_find_task(struct dump_ctx *c, pid_t pid);

/* dump_pidns.c: a root in a pid namespace below ours is dumped from inside
 * it (*handled set; the outcome returned), else nothing is done. */
int dump_tree_pidns(const struct dump_opts *opts, struct dump_result *ret, struct ckpt_error *e,
		    bool *handled);

/*
 * Around every operation on the image directory: with
 * opts->images_unprivileged the effective capability set is emptied (and
 * given back by caps_restore(saved)); else nothing changes.
 */
uint64_t dump_images_enter(const struct dump_ctx *c);
/* img_create() between dump_images_enter() and caps_restore() */
int dump_img_create(struct dump_ctx *c, enum img_kind kind, int pid, struct img **ret,
		    struct ckpt_error *e);
/* Part `part` of nparts of pid's pages image (image.h), like dump_img_create. */
int dump_pages_create(struct dump_ctx *c, int pid, unsigned part, unsigned nparts, struct img **ret,
		      struct ckpt_error *e);

/* seize.c */
int seize_tree(struct dump_ctx *c, struct ckpt_error *e);
/* Close open remote-syscall sessions and detach every seized task (resume). */
int unseize_tree(struct dump_ctx *c, struct ckpt_error *e);
/* SIGKILL every task, leaves first, and reap the tracing stops. */
/* SIGKILL every seized task and reap its death report (as the tracer, which
 * hands it over to its real parent). Returns when the last SIGKILL was sent
 * (ckpt_monotonic_seconds): the end of the freeze; the kernel's freeing of
 * the tasks' memory comes after, inside the reaping. */
double kill_tree(struct dump_ctx *c);
int dump_check_sessions(struct dump_ctx *c, struct ckpt_error *e);

/* dump_task.c */
int dump_task_core(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e);
int dump_write_pstree(struct dump_ctx *c, struct ckpt_error *e);
/*
 * Signals sent to a frozen task stay pending: read every thread's queue and
 * the process's again (t still frozen) and, with update, replace what
 * dump_task_core saw. *ret_changed: something arrived since.
 */
int dump_task_signals_refresh(struct dump_task *t, bool update, bool *ret_changed,
			      struct ckpt_error *e);

/* dump_timers.c: itimers and POSIX timers, in t's open remote-syscall
 * session (scratch of at least 128 bytes) */
int dump_timers(struct dump_task *t, CoreEntry *core, struct ckpt_error *e);

/* dump_sud.c: syscall user dispatch switched off in every thread of a
 * frozen task (before any remote call), put back before it is let go
 * (unseize_tree: whatever the outcome), saved as ThreadCore.sud */
int dump_sud_suspend(struct dump_task *t, struct ckpt_error *e);
int dump_sud_resume(struct dump_task *t, struct ckpt_error *e);
int dump_thread_sud(const struct dump_task *t, ThreadCore *tc, struct ckpt_error *e);

/* dump_keyring.c: what the process's batch answered for its process
 * keyring and the session keyring the kernel reader found
 * (t->session_keyring) made CoreEntry.keyring, the keys read in the root
 * task (st: its status); each thread's thread keyring (its batch); what a
 * restore could not give back, refused */
#define DUMP_KEYRING_LIST 64
int dump_keyring(struct dump_task *t, const struct proc_status *st, CoreEntry *core,
		 long process_keyring, struct ckpt_error *e);
int dump_keyring_thread(pid_t pid, pid_t tid, long thread_keyring, struct ckpt_error *e);
int dump_keyring_check(struct dump_ctx *c, const struct dump_task *t, const CoreEntry *core,
		       struct ckpt_error *e);

/* dump_ldt.c: the process's LDT (probe: what the batch's modify_ldt(0) of
 * 8 bytes answered), in its open session */
int dump_ldt(struct dump_task *t, long probe, CoreEntry *core, struct ckpt_error *e);

/* dump_kstate.c: the kernel reader made ready to read the tasks' state by
 * a thread of its own while the dump prepares (a hint: nothing fails),
 * joined before the freeze (and by dump_ctx_free: any time, more than
 * once); then refuses t (frozen, every thread seized) when a thread of it
 * is confined by Landlock or it has System V semaphore adjustments
 * (SEM_UNDO) */
void dump_kstate_prepare_start(struct dump_ctx *c);
void dump_kstate_prepare_join(struct dump_ctx *c);
int dump_kstate_check(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e);

/* dump_numa.c: the NUMA policy of each area, asked in t's open process
 * session; dump_area_mempolicy hands the one of the area at start (or
 * NULL) over to its Vma */
int dump_area_mempolicies(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e);
MemPolicy *dump_area_mempolicy(struct dump_task *t, uint64_t start);
void dump_area_mempolicies_free(struct dump_task *t);

/* dump_seccomp.c: the seccomp filters of every thread in filter mode
 * (ThreadCore.seccomp_mode set), frozen and traced */
int dump_seccomp(struct dump_task *t, CoreEntry *core, struct ckpt_error *e);
/* dump_sched.c: scheduling policy/nice and CPU affinity of one thread;
 * online: the CPUs online (cpus_online), read once for all the threads */
int dump_thread_sched(pid_t tid, const cpu_set_t *online, ThreadCore *tc, struct ckpt_error *e);
/* For a non-root caller: refuses the scheduling state of a thread its own
 * restore, without capabilities, could not set again (core: threads and
 * rlimits dumped) */
int dump_sched_check_unprivileged(const CoreEntry *core, struct ckpt_error *e);
/* A memory policy (get_mempolicy: mode with flags, words of node mask) as
 * saved, the mask without its trailing empty words */
int mempolicy_to_proto(int mode, const uint64_t *nodes, size_t words, MemPolicy **ret,
		       struct ckpt_error *e);
/* dump_cgroup.c: the thread's cgroup in every hierarchy; refuses another
 * cgroup namespace than the dumper's */
int dump_thread_cgroups(pid_t pid, pid_t tid, ThreadCore *tc, struct ckpt_error *e);
/* dump_cgroup.c, opts->cgroups_under_root: every thread's cgroups at or
 * below the root's (the cores are collected) */
int dump_check_cgroups_under_root(struct dump_ctx *c, struct ckpt_error *e);

/* dump_mm.c */
int dump_task_mm(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e);
/* Tie each io_uring mapping to the ring fd the task holds (after the fds). */
int dump_link_iouring_maps(struct dump_ctx *c, struct ckpt_error *e);
/* Which pages to save and which are the parent's (before any task's pages are read). */
int dump_task_scan(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e);
/* The frames a parent kept for its children's scans (dump_task_scan). */
void dump_sib_free(struct dump_task *t);

/* dump_pages.c */
int dump_task_pages(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e);
/* Lanes (parts of the pages image written side by side) for a task with
 * data_bytes of page data: one per CPU from LANE_MIN_BYTES on (with
 * reserved: into storage given ahead, from LANE_MIN_RESERVED on). */
unsigned dump_pages_lanes(uint64_t data_bytes, bool reserved);
/* Close (fsync, checksum) the page images of a task left open by dump_task_pages. */
int dump_close_pages(struct dump_task *t, struct ckpt_error *e);

/* dump_shmem.c: shared memory objects */
/* Classify and record a shared memory area (MAP_SHARED, memfd, SysV, deleted file). */
int dump_shmem_vma(struct dump_ctx *c, pid_t pid, const struct proc_vma *v, Vma *vma,
		   struct ckpt_error *e);
/* Is the file open as fd on a tmpfs (what a reboot empties)? */
int dump_on_tmpfs(const char *path, bool *ret, struct ckpt_error *e);
/* --save-tmpfs-files: the executable of pid, on a tmpfs (src: /proc/PID/exe,
 * name: its path), is the file object of that file: *ret_id its id. */
int dump_shmem_exe(struct dump_ctx *c, pid_t pid, const char *src, const char *name,
		   uint32_t *ret_id, struct ckpt_error *e);
/* After every fd: memfd fds get their object, deleted files also mapped share theirs. */
int dump_shmem_link_fds(struct dump_ctx *c, struct ckpt_error *e);
/*
 * Once the fds are dumped (the tree's inotify watches and queued events
 * saved): each object opened for what only an fd tells (a memfd's seals, a
 * file's content sum). An object whose content is saved and that the tree
 * watches refuses the dump (the program would see the reads); a watched
 * file of a disk file system keeps no sum.
 */
int dump_shmem_open_late(struct dump_ctx *c, struct ckpt_error *e);
void dump_shmem_free(struct dump_ctx *c);

/* dump_fds.c */
int dump_task_fds(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e);
/*
 * Once every task's fds are dumped: the files in flight found in unix
 * socket queues (and in theirs), each the entry of a task's fd when kcmp
 * says it is the same open file description, else one of its own.
 */
int dump_inflight_files(struct dump_ctx *c, struct ckpt_error *e);
/* Close our copies of the files in flight. */
void dump_inflight_free(struct dump_ctx *c);
/*
 * Processes of the tree sharing one fd table (CLONE_FILES) or fs_struct
 * (CLONE_FS): each must share it with its parent (files_of, fs_of); other
 * layouts and a thread with a table or fs_struct of its own are refused.
 */
int dump_check_fd_tables(struct dump_ctx *c, struct ckpt_error *e);
/* Once every task's fds are dumped: the kinds' checks across fds (both ends of a pipe). */
int dump_fds_done(struct dump_ctx *c, struct ckpt_error *e);
/* Before the tree is resumed (failed dump, --leave-running): the kinds' dump_undo. */
void dump_fds_undo(struct dump_ctx *c);
/*
 * The last look before the tree is killed (kinds' dump_recheck): -EAGAIN
 * when the live objects changed since they were saved (a connection came
 * to a listener), so that the checkpoint is withdrawn and the dump tried
 * again.
 */
int dump_fds_recheck(struct dump_ctx *c, struct ckpt_error *e);
/* A new, zeroed entry at the end of files.img (its id: its 1-based position). */
struct dump_file *dump_file_new(struct dump_ctx *c, struct ckpt_error *e);
/* dump_prefetch.c: the content checksums of the files the tree maps, taken
 * while it runs (a hint: nothing fails); the large tasks found on the way. */
void dump_prefetch_sums(struct dump_ctx *c);
/* ... then the areas of those (smaps), the tree still running, just before
 * the freeze (a hint too) */
void dump_prefetch_layouts(struct dump_ctx *c);
/* In the freeze, before the dump's own calls change t's areas: whether
 * its areas are still those read before the freeze. */
void dump_prefetch_layout_check(struct dump_ctx *c, struct dump_task *t);
/* The areas of t as smaps shows them (*vl): from before the freeze if
 * dump_prefetch_layout_check found them unchanged, else read now. */
int dump_layout(struct dump_ctx *c, struct dump_task *t, struct proc_vma_list *vl,
		struct ckpt_error *e);
/* What the two above kept. */
void dump_prefetch_free(struct dump_ctx *c);
/*
 * Add (or find) the mapping_only entry of the file st describes, reached by
 * the /proc link src and mapped by path; *ret_id its id. Its content sum is
 * taken later (dump_mapped_sums): nothing is opened here.
 */
int dump_file_add_mapping(struct dump_ctx *c, const char *src, const struct stat *st,
			  const char *path, uint32_t *ret_id, struct ckpt_error *e);

/* dump_watched.c: the inotify watches of pid that see a read of a file
 * (before the freeze); false if they could not all be looked at */
bool dump_watched_scan(struct dump_ctx *c, pid_t pid);
void dump_watched_reset(struct dump_ctx *c);
/* Would opening and reading the file st describes, mapped by path, be
 * seen by a watch of the tree (the file's or its directory's)? */
bool dump_file_watched(const struct dump_ctx *c, const struct stat *st, const char *path);
/* ... by a watch of the tree on that inode itself? */
bool dump_inode_watched(const struct dump_ctx *c, uint64_t dev, uint64_t ino);
/* ... by a watch of the tree on the directory of path (gone: watched)? */
bool dump_dir_watched(const struct dump_ctx *c, const char *path);
/* Once the fds are dumped: the content sums of the mapped files, but of
 * those the tree watches (and none in a pre-dump). */
int dump_mapped_sums(struct dump_ctx *c, struct ckpt_error *e);
int dump_write_files(struct dump_ctx *c, struct ckpt_error *e);

/* dump_locks.c: the file locks of fd (new_fe: its entry if this fd made it, else NULL) */
int dump_fd_locks(struct dump_task *t, int fd, const char *fdinfo, FdEntry *fde, FileEntry *new_fe,
		  struct ckpt_error *e);

/* dump_tty.c: once every fd is dumped, mark the terminals whose master is
 * outside the tree as external (refused without opts->shell_job) */
int dump_ttys(struct dump_ctx *c, struct ckpt_error *e);
/* Is this tty_nr (/proc/PID/stat) a Unix98 pty slave? */
bool dump_tty_nr_is_pty(int tty_nr);

/* Write one message as the only record of a new per-task (or shared) image. */
int dump_write_one(struct dump_ctx *c, enum img_kind kind, int pid, const ProtobufCMessage *msg,
		   struct ckpt_error *e);

/* strdup that reports failure through e; protobuf strings must be malloc'ed so
 * that protobuf_c_message_free_unpacked() can free hand-built messages. */
char *dump_strdup(const char *s, struct ckpt_error *e);
