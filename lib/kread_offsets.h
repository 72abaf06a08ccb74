/* SPDX-License-Identifier: MIT */
/*
 * What the kernel reader (lib/kread.c) takes from this kernel's BTF: the
 * offsets its programs read at and the ids of the iterators they attach
 * to, and the cache that keeps them for the boot (lib/kread_cache.c).
 * Internal to the reader and its tests.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* Offsets of what every program reads to find its file, from this kernel's BTF. */
struct file_offsets {
	uint32_t f_inode, private_data, i_ino;
};

/* ... and what the unix queue program reads */
struct unix_offsets {
	struct file_offsets file;
	uint32_t socket_sk, rq_next, rq_qlen, oob_skb;
	uint32_t skb_next, skb_len, skb_cb, cb_fp, cb_consumed;
};

/* ... and what the io_uring program reads */
struct iouring_offsets {
	uint32_t flags, ev_fd, ev_ctx, ev_async, bl_xa_head, task_io_uring, registered_rings;
	uint32_t napi_track; /* UINT32_MAX: a kernel without NAPI busy polling */
};

/* ... and what the task program reads */
struct task_offsets {
	uint32_t signal, group_exit_code, flags;
};

/* ... and what the multicast program reads */
struct mcast_offsets {
	uint32_t mc_list, pinet6, ipv6_mc_list, mc_index, mc_addr;
	/* ip_mc_socklist: next_rcu, multi (ip_mreqn), sfmode, sflist */
	uint32_t m4_next, m4_multi, m4_sfmode, m4_sflist;
	/* ipv6_mc_socklist: addr, ifindex, sfmode, next, sflist */
	uint32_t m6_addr, m6_ifindex, m6_sfmode, m6_next, m6_sflist;
};

/* An inet socket's state no call reads back (UINT32_MAX: not in this kernel). */
struct inet_offsets {
	uint32_t urg_data, urg_seq, copied_seq, rcv_nxt; /* tcp_sock */
	uint32_t reuseport_cb, reuseport_prog;		 /* sock, sock_reuseport */
	uint32_t fl_list, ac_list;			 /* inet_sock, ipv6_pinfo */
};

/* ... and what the Landlock programs read */
struct cred_offsets {
	uint32_t task_cred, task_pid;
	uint32_t security; /* UINT32_MAX: a kernel without LSM blobs (no Landlock) */
	/* cred.session_keyring, key.serial (UINT32_MAX: a kernel without keys) */
	uint32_t session_keyring, key_serial;
};

/* ... and what the address space program reads (mm_seq UINT32_MAX: no count) */
struct mm_offsets {
	uint32_t task_mm; /* task_struct.mm */
	uint32_t mm_seq;  /* mm_struct.mm_lock_seq (its sequence) */
};

/* ... and the System V semaphore undo list (UINT32_MAX: no SysV IPC) */
struct sem_offsets {
	uint32_t undo_list; /* task_struct.sysvsem.undo_list */
	uint32_t list_proc; /* sem_undo_list.list_proc (its next first) */
};

/* ... and what the areas program reads (vm_policy UINT32_MAX: no NUMA;
 * iter_vma_btf_id 0: no task_vma iterator) */
struct vma_offsets {
	uint32_t vm_start, vm_policy, vm_file, vm_ops;
};

/* Everything kread_open finds in the BTF: fixed for a boot. */
struct kread_offsets {
	uint32_t iter_btf_id;	   /* bpf_iter_task_file */
	uint32_t iter_task_btf_id; /* bpf_iter_task */
	struct mcast_offsets mc;
	struct inet_offsets inet;
	struct task_offsets task;
	struct unix_offsets usk;
	struct iouring_offsets iou; /* iou.flags UINT32_MAX: no io_uring in this kernel */
	struct cred_offsets cred;
	struct sem_offsets sem;
	struct mm_offsets mm;
	uint32_t iter_vma_btf_id; /* bpf_iter_task_vma */
	struct vma_offsets vma;
};

struct kread;
/* The offsets a reader was opened with (for tests). */
const struct kread_offsets *kread_offsets_of(const struct kread *kr);

/*
 * The cache: one file per build of the program (named by its GNU build id)
 * in dir (KREAD_CACHE_DIR), holding the offsets with what they were found
 * for: the boot (its boot_id), the size of the kernel's BTF, the build id
 * and this layout's size and version, and a CRC32C of all of it. Used only
 * by root, only if dir and file belong to root and nobody else may write
 * them; anything else, damaged or not found, is a miss and the BTF is read.
 */
#define KREAD_CACHE_DIR "/run/ckpt"

/* What a cache file must have been written for. */
struct kread_cache_key {
	char boot_id[40];     /* /proc/sys/kernel/random/boot_id, NUL-padded */
	uint64_t btf_size;    /* /sys/kernel/btf/vmlinux */
	uint8_t build_id[20]; /* this program's (NT_GNU_BUILD_ID), zero-padded */
	uint32_t build_id_len;
};

/* This boot's and this program's key. -ENOENT: no build id (no cache). */
int kread_cache_key_now(struct kread_cache_key *ret, struct ckpt_error *e);
/* The cache file of key in dir, into path (PATH_MAX). */
void kread_cache_path(const char *dir, const struct kread_cache_key *key, char *path, size_t len);
/* 0: ret holds the offsets written for key; < 0: a miss, why in e. */
int kread_cache_load(const char *dir, const struct kread_cache_key *key, struct kread_offsets *ret,
		     struct ckpt_error *e);
/* Written whole or not at all (a file renamed into place). */
int kread_cache_store(const char *dir, const struct kread_cache_key *key,
		      const struct kread_offsets *o, struct ckpt_error *e);
