/* SPDX-License-Identifier: MIT */
/*
 * /proc parsers. Every parser has a variant that takes the text itself, so
 * that unit tests feed it fixtures; the pid variants read /proc/PID/...
 * All return 0 or a negative errno with the error naming the file and line.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* ---- /proc/PID/maps and /proc/PID/smaps ---------------------------------- */

struct proc_vma {
	uint64_t start, end;
	uint32_t prot;	/* PROT_READ|PROT_WRITE|PROT_EXEC */
	bool shared;	/* 's' in the perms column */
	uint64_t pgoff; /* bytes */
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	/* "" for anonymous, "[heap]", "/usr/lib/..", " (deleted)" removed; owned
	 * by the list (a few bytes each: 20,000 areas of a 4 KiB array each
	 * were 80 MiB of fresh memory to fault in) */
	char *path;
	bool deleted;	 /* path ended in " (deleted)" (suffix removed from path) */
	/* from smaps only (has_vmflags false for maps) */
	bool has_vmflags;
	char vmflags[128]; /* "rd wr mr mw me ac sd" */
	int pkey;	   /* ProtectionKey (CPUs with memory protection keys), else 0 */
};

struct proc_vma_list {
	struct proc_vma *v;
	size_t n, cap;
};

/* Parse maps or smaps text (smaps: VmFlags are filled, other keys ignored). */
int proc_parse_maps_text(const char *text, struct proc_vma_list *ret, struct ckpt_error *e);
/* Read /proc/PID/maps (pid 0: our own). */
int proc_parse_maps(pid_t pid, struct proc_vma_list *ret, struct ckpt_error *e);
/* The areas of maps with a path ('/' in the line: files, deleted or not),
 * the others skipped unparsed: the prefetch's mapped files */
int proc_parse_maps_files(pid_t pid, struct proc_vma_list *ret, struct ckpt_error *e);
/* Read /proc/PID/smaps. */
int proc_parse_smaps(pid_t pid, struct proc_vma_list *ret, struct ckpt_error *e);
void proc_vma_list_free(struct proc_vma_list *l);
/* true if the two-letter flag (e.g. "gd") is in vma->vmflags */
bool proc_vma_has_flag(const struct proc_vma *vma, const char *flag);

/* ---- /proc/PID/stat -------------------------------------------------------- */

struct proc_stat {
	pid_t pid;
	char comm[64];
	char state;
	pid_t ppid, pgrp, session;
	int tty_nr;
	uint64_t flags;
	int64_t num_threads;
	uint64_t start_time;
	int exit_signal;
	/* fields 45..51, shown to a reader that may ptrace the task */
	uint64_t start_data, end_data, start_brk, arg_start, arg_end, env_start, env_end;
	int exit_code;
	/* fields 26..28 */
	uint64_t start_code, end_code, start_stack;
};

int proc_parse_stat_text(const char *text, struct proc_stat *ret, struct ckpt_error *e);
int proc_parse_stat(pid_t pid, struct proc_stat *ret, struct ckpt_error *e);
/* pid is a zombie or dead task (state Z or X), waiting to be reaped; false
 * when it is gone or running. No fault injection: a plain probe. */
bool proc_pid_is_zombie(pid_t pid);

/* ---- /proc/PID/status ------------------------------------------------------ */

struct proc_status {
	char name[64];
	char state;
	uint32_t umask;
	pid_t tgid, pid, ppid, tracer_pid;
	uint32_t uid[4], gid[4]; /* real, effective, saved, fs */
	uint32_t groups[256];
	size_t ngroups;
	int threads;
	uint64_t sig_pnd, shd_pnd, sig_blk, sig_ign, sig_cgt;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs;
	int seccomp;
	/* NSpid: more than one value means the task is in a nested pid namespace */
	int nspid_levels;
	/* false when the file has no Umask line (zombies: no fs_struct); umask is 0 then */
	bool has_umask;
	/* VmLck: memory locked in the process (mm->locked_vm), KiB; absent
	 * (has_vm_lck false) in a task without memory */
	uint64_t vm_lck_kb;
	bool has_vm_lck;
	/* x86_Thread_features holds "shstk": a user shadow stack is on (CPUs
	 * with CET, kernels with CONFIG_X86_USER_SHADOW_STACK) */
	bool shstk;
};

int proc_parse_status_text(const char *text, struct proc_status *ret, struct ckpt_error *e);
int proc_parse_status(pid_t pid, struct proc_status *ret, struct ckpt_error *e);

/* ---- /proc/PID/fdinfo/FD ----------------------------------------------------- */

struct proc_fdinfo {
	uint64_t pos;
	uint32_t flags; /* octal in the file; includes O_CLOEXEC when set on the fd */
	int mnt_id;
	uint64_t ino;
};

int proc_parse_fdinfo_text(const char *text, struct proc_fdinfo *ret, struct ckpt_error *e);
int proc_parse_fdinfo(pid_t pid, int fd, struct proc_fdinfo *ret, struct ckpt_error *e);
/* The same, the text read kept in *ret_text (the caller frees it): its lock
 * lines are parsed from it (proc_fdinfo_locks) without reading it again. */
int proc_read_fdinfo(pid_t pid, int fd, struct proc_fdinfo *ret, char **ret_text,
		     struct ckpt_error *e);

/*
 * The file locks an fd's open file description holds ("lock:" lines of
 * fdinfo): flock locks, OFD locks and leases of that description, and the
 * POSIX locks the task took through it.
 */
enum proc_lock_kind {
	PROC_LOCK_POSIX = 1,
	PROC_LOCK_FLOCK,
	PROC_LOCK_OFD,
	PROC_LOCK_LEASE,
	/* listed, but nothing a process holds that ckpt can take again */
	PROC_LOCK_OTHER,
};

struct proc_lock {
	enum proc_lock_kind kind;
	bool write;	     /* WRITE (exclusive), else READ (shared) */
	bool lease_breaking; /* a lease being broken (BREAKING/BREAKER) */
	uint64_t start, end; /* bytes start..end, POSIX and OFD only */
	bool to_eof;	     /* end is "EOF": the lock grows with the file */
	char what[16];	     /* the kind as listed ("POSIX", "DELEG"...) */
};

struct proc_lock_list {
	struct proc_lock *v;
	size_t n;
};

void proc_lock_list_free(struct proc_lock_list *l);
int proc_parse_fdinfo_locks_text(const char *text, struct proc_lock_list *ret,
				 struct ckpt_error *e);
int proc_parse_fdinfo_locks(pid_t pid, int fd, struct proc_lock_list *ret, struct ckpt_error *e);
/* The lock lines of text, what proc_read_fdinfo read of pid's fd. */
int proc_fdinfo_locks(pid_t pid, int fd, const char *text, struct proc_lock_list *ret,
		      struct ckpt_error *e);

/* ---- /proc/PID/limits -------------------------------------------------------- */

struct proc_rlimit {
	uint64_t cur, max; /* RLIM_INFINITY (~0) for "unlimited" */
};

/* RLIMIT_NLIMITS (16) entries, indexed by RLIMIT_* */
int proc_parse_limits_text(const char *text, struct proc_rlimit ret[16], struct ckpt_error *e);
int proc_parse_limits(pid_t pid, struct proc_rlimit ret[16], struct ckpt_error *e);

/* ---- misc -------------------------------------------------------------------- */

/* Read a whole (small) /proc file into a malloc'ed NUL-terminated buffer. */
int proc_read_file(const char *path, char **ret, size_t *ret_len, struct ckpt_error *e);
/*
 * The same for a /proc file of a task we trace, opened with CAP_SYS_PTRACE
 * raised for the open only (proc_open_tracee).
 */
int proc_read_tracee_file(const char *path, char **ret, size_t *ret_len, struct ckpt_error *e);
/*
 * open(2) of a /proc file of a task we trace. A restorer run for a non-root
 * caller keeps its capabilities in the permitted set only (lib/caps.h):
 * its own tasks hold them in theirs, so the access check needs
 * CAP_SYS_PTRACE in our effective set: raised for this open only.
 */
int proc_open_tracee(const char *path, int flags);
/* A /proc file holding one decimal number ("/proc/12/oom_score_adj"). */
int proc_read_number(const char *path, int64_t *ret, struct ckpt_error *e);
/* The same, one hexadecimal number ("/proc/12/coredump_filter") */
int proc_read_hex(const char *path, int64_t *ret, struct ckpt_error *e);
/* The nice value of a process's autogroup ("/autogroup-17 nice 5");
 * -ENOENT without CONFIG_SCHED_AUTOGROUP */
int proc_parse_autogroup_text(const char *text, int *ret_nice, struct ckpt_error *e);
int proc_read_autogroup_nice(pid_t pid, int *ret_nice, struct ckpt_error *e);
/* /proc/PID/auxv as pairs of u64; *ret_n is the number of u64 words */
int proc_read_auxv(pid_t pid, uint64_t **ret, size_t *ret_n, struct ckpt_error *e);
/* All task ids of a process (/proc/PID/task; not its io_uring workers, kernel
 * threads that never stop for ptrace) and all children of a thread
 * (/proc/PID/task/TID/children). Arrays are malloc'ed. */
int proc_list_tasks(pid_t pid, pid_t **ret, size_t *ret_n, struct ckpt_error *e);
/* The same with the io_uring workers: no /proc/PID/task/TID/stat read per
 * thread (a caller that knows most threads already checks the new ones
 * with proc_tid_state). */
int proc_list_tids(pid_t pid, pid_t **ret, size_t *ret_n, struct ckpt_error *e);
/* State letter of a thread (task/TID/stat), 0 if unreadable; whether it is
 * an io_uring worker */
char proc_tid_state(pid_t pid, pid_t tid, bool *ret_io_worker);
int proc_list_children(pid_t pid, pid_t tid, pid_t **ret, size_t *ret_n, struct ckpt_error *e);
/* readlink of /proc/PID/<name> ("cwd", "root", "exe", "fd/3") */
int proc_readlink(pid_t pid, const char *name, char *buf, size_t len, struct ckpt_error *e);
