/* SPDX-License-Identifier: MIT */
/*
 * The kernel reader: what no system call shows about a file the dump holds
 * open, read by a BPF iterator program (task_file, over the dumper's own
 * fds) that the dumper builds for this kernel from its BTF (lib/kbtf.h) and
 * runs once. The program only reads; it never changes the file. Needs
 * CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) and a kernel with BTF and BPF
 * iterators (5.8+; the per-task filter, 6.1+). Library code: negative errno
 * and a filled struct ckpt_error.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* The most skbs of one queue the reader reports (read KREAD_CHUNK at a time). */
#define KREAD_MAX_SKBS 65536
#define KREAD_CHUNK 64
#define KREAD_FIRST_CHUNK 4

/* One skb of a socket's receive queue, head first. */
struct kread_skb {
	uint32_t len; /* bytes not read yet (skb->len less what a reader consumed) */
	bool fds;     /* carries files in flight (SCM_RIGHTS) */
	bool oob;     /* the pending out-of-band byte (unix_sock.oob_skb) */
};

struct kread_queue {
	struct kread_skb *skbs;
	size_t n;
	bool oob; /* an out-of-band byte is pending (unix_sock.oob_skb) */
};

void kread_queue_release(struct kread_queue *q);

/* What the reader knows of this kernel (from its BTF), kept between reads. */
struct kread;
int kread_open(struct kread **ret, struct ckpt_error *e);
/* The same with the offsets kept in cache_dir (kread_open: /run/ckpt; NULL:
 * none), as root only (lib/kread_offsets.h). */
int kread_open_at(const char *cache_dir, struct kread **ret, struct ckpt_error *e);
void kread_free(struct kread *kr);
static inline void kread_freep(struct kread **kr)
{
	kread_free(*kr);
}

/*
 * The skbs of the receive queue of the unix socket our fd refers to (ino:
 * its inode, checked by the program). slot: a reader kept by the caller,
 * opened here on first use (NULL: one for this call only). The tree must be
 * frozen: the queue is read KREAD_CHUNK skbs a program, and a queue that
 * changes between them is an error. -E2BIG: more than KREAD_MAX_SKBS.
 */
int kread_unix_queue(struct kread **slot, int fd, uint64_t ino, struct kread_queue *ret,
		     struct ckpt_error *e);

/* The ring fds a task may register (IO_RINGFD_REG_MAX). */
#define KREAD_IOURING_RINGS 16

/* What the kernel keeps of an io_uring instance that no call shows. */
struct kread_iouring {
	uint32_t flags;		   /* IORING_SETUP_* (io_ring_ctx.flags), all of them */
	bool eventfd;		   /* an eventfd is registered */
	bool eventfd_async;	   /* ... with IORING_REGISTER_EVENTFD_ASYNC */
	bool provided_buffers;	   /* buffer lists provided (PROVIDE_BUFFERS, PBUF_RING) */
	bool napi;		   /* NAPI busy polling registered (IORING_REGISTER_NAPI) */
	unsigned registered_rings; /* ring fds the task registered (REGISTER_RING_FDS) */
	uint64_t eventfd_ctx;	   /* the registered eventfd's context (kread_fd_by_private) */
};

/*
 * The io_uring instance of task pid's fd (ino: its inode), found by a
 * program run over that task's fds (pid in our pid namespace).
 */
int kread_iouring(struct kread **slot, pid_t pid, int fd, uint64_t ino, struct kread_iouring *ret,
		  struct ckpt_error *e);

/*
 * Task pid (a thread group leader, in our pid namespace) is in a completed
 * group stop whose report its parent has collected already
 * (waitpid(WUNTRACED) cleared signal->group_exit_code): *ret.
 */
int kread_stop_collected(struct kread **slot, pid_t pid, bool *ret, struct ckpt_error *e);

/*
 * The lowest fd of task pid (in our pid namespace) whose file's
 * private_data is priv (a kernel address another program read, such as
 * kread_iouring's eventfd_ctx). -ENOENT: none.
 */
int kread_fd_by_private(struct kread **slot, pid_t pid, uint64_t priv, int *ret_fd,
			struct ckpt_error *e);

/*
 * Every fd of thread tid's fd table (in our pid namespace), in fd order,
 * with the address of its open file description: equal for two fds (of any
 * processes) that share one, different otherwise, as long as both
 * descriptions stay open (a frozen tree's, or held by the caller). One
 * program run for the whole table, where kcmp(KCMP_FILE) costs a call per
 * pair compared. Needs CAP_PERFMON (the address leaves the kernel).
 */
struct kread_file {
	int fd;
	uint64_t file;
};
int kread_task_files(struct kread **slot, pid_t tid, struct kread_file **ret, size_t *ret_n,
		     struct ckpt_error *e);

/*
 * The areas of process pid (in our pid namespace) that have something of
 * their own, in address order: a NUMA policy (vm_policy), a file,
 * operations (where a policy may come from instead: shared memory's). An
 * area not listed has none of them, so the default policy, which
 * get_mempolicy(MPOL_F_ADDR) would answer: one program run for every
 * area, where asking the task costs a remote call per area. -EOPNOTSUPP:
 * a kernel without NUMA or the task_vma iterator; -E2BIG: more such areas
 * than one read of the iterator holds (about 2,000).
 */
#define KREAD_AREA_POLICY 1
#define KREAD_AREA_FILE 2
#define KREAD_AREA_OPS 4
/* a field could not be read: it may have any of them (the dump asks) */
#define KREAD_AREA_UNREAD 8
struct kread_area {
	uint64_t start;
	uint32_t has; /* KREAD_AREA_* */
};
int kread_task_areas(struct kread **slot, pid_t pid, struct kread_area **ret, size_t *ret_n,
		     struct ckpt_error *e);
/*
 * Load the programs of kread_task_areas and kread_task_files now (each is
 * loaded once per reader, a verifier run of ~1.7 ms): before a freeze, on
 * a thread of its own, to keep them out of it. Where one cannot be loaded,
 * the call that needs it finds out again and says why.
 */
int kread_lists_prepare(struct kread **slot, struct ckpt_error *e);

/* What the kernel keeps of an inet socket that no call reads back. */
struct kread_inet_state {
	/* TCP: an urgent mark not read past yet (tcp_sock.urg_data), at this
	 * offset in the unread bytes: SIOCATMARK, and where reads stop */
	bool urgent;
	uint32_t urg_offset;
	bool reuseport_prog; /* SO_ATTACH_REUSEPORT_CBPF/EBPF on its group */
	bool flowlabels;     /* IPv6 flow labels leased (IPV6_FLOWLABEL_MGR) */
	bool anycast;	     /* IPv6 anycast addresses joined (IPV6_JOIN_ANYCAST) */
};

/* The inet socket our fd refers to (ino: its inode); tcp: a TCP socket. */
int kread_inet_state(struct kread **slot, int fd, uint64_t ino, bool tcp,
		     struct kread_inet_state *ret, struct ckpt_error *e);

/* What the kernel keeps of an inet socket's multicast use that no call shows. */
struct kread_inet_mc {
	bool joined;	  /* groups joined (IP_ADD_MEMBERSHIP, IPV6_JOIN_GROUP...) */
	int mc_index;	  /* IP_MULTICAST_IF's interface index (getsockopt gives the address) */
	uint32_t mc_addr; /* ... and its address (network order) */
};

/* The inet socket our fd refers to (ino: its inode). */
int kread_inet_mcast(struct kread **slot, int fd, uint64_t ino, struct kread_inet_mc *ret,
		     struct ckpt_error *e);

/* The most groups of one family a socket's list is read for (IP_MAX_MEMBERSHIPS is 20). */
#define KREAD_MCAST_MAX 64

/* One multicast group a socket joined, newest first (the kernel's list order). */
struct kread_mcast {
	int family;	   /* 4 or 6 */
	uint8_t group[16]; /* IPv4: the first 4 bytes (network order) */
	int ifindex;
	uint32_t address; /* IPv4: imr_address (network order) */
	bool filtered;	  /* a source filter (sfmode INCLUDE or a source list) */
};

/* Every group the inet socket our fd refers to (ino) joined. -E2BIG: too many. */
int kread_inet_mcast_list(struct kread **slot, int fd, uint64_t ino, struct kread_mcast **ret,
			  size_t *ret_n, struct ckpt_error *e);

/* What only the kernel shows of a process's threads. */
struct kread_task_state {
	unsigned threads;     /* the threads the kernel iterated */
	unsigned confined;    /* ... of them in a Landlock domain (when asked) */
	pid_t first_confined; /* the first, as the kernel numbers it (init pid namespace) */
	/* System V semaphore adjustments to undo at exit (semop SEM_UNDO):
	 * an undo list with an entry; sem_undo_known: this kernel has them */
	bool sem_undo, sem_undo_known;
	/* the serial of the main thread's session keyring (0: none of its own,
	 * the kernel falls back to its user's), a thread in another one (its
	 * tid, as the kernel numbers it; 0: none); keyring_known: this kernel
	 * has keys. Read without a lookup, which would install one */
	uint32_t session_keyring, keyring_other;
	pid_t keyring_other_tid;
	bool keyring_known;
};

/*
 * The state of the threads of process pid (in our pid namespace), one
 * program run over them. With landlock, their Landlock domains too: the
 * first such call finds where this kernel keeps a thread's domain (a
 * thread of ours confines itself; it ends with the call); a kernel whose
 * layout does not show it is an error, kept for the reader's life.
 */
int kread_task_state(struct kread **slot, pid_t pid, bool landlock, struct kread_task_state *ret,
		     struct ckpt_error *e);
/* The same first steps without a process: before a freeze, to keep them out of it. */
int kread_task_prepare(struct kread **slot, bool landlock, struct ckpt_error *e);
/*
 * Which of n words of a cred's security blob is the Landlock domain, from
 * the blob of an unconfined thread (self) and of one confined once (a) and
 * twice (b): the first word NULL in self and a different kernel address in
 * a and b; -1 if none. The words read may run past the blob's end (its size
 * is set at boot and shown nowhere) into a neighbour's memory, which can
 * look the same (one dump in about 90 here); Landlock's word is in the
 * blob, so before any of those.
 */
int kread_landlock_word(const uint64_t *self, const uint64_t *a, const uint64_t *b, size_t n);

/*
 * Which address space task pid (in our pid namespace) has, and how many
 * times it was locked for writing so far: every change of its areas (map,
 * unmap, mprotect, madvise that sets a flag, mlock, userfaultfd
 * registration) takes that lock. Two reads with the same mm and seq: no
 * area changed between them, nor any area's flags (a change under way at
 * the first ends before the second, and counts). A
 * kernel address, compared only, never saved. -EOPNOTSUPP: this kernel
 * keeps no count (without per-VMA locks, Linux 6.4+).
 */
struct kread_mm_seq {
	uint64_t mm;
	uint32_t seq;
};

int kread_mm_seq(struct kread **slot, pid_t pid, struct kread_mm_seq *ret, struct ckpt_error *e);
