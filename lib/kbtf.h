/* SPDX-License-Identifier: MIT */
/*
 * The running kernel's own type information (BTF, /sys/kernel/btf/vmlinux):
 * where a member of a kernel struct lies on this kernel, and the id of a
 * kernel function. For the kernel reader (lib/kread.c), whose programs read
 * what no system call shows, at offsets that change with every kernel
 * build. Library code: negative errno and a filled struct ckpt_error.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct kbtf;

/* Read and index path (NULL: /sys/kernel/btf/vmlinux). -ENOENT: none. */
int kbtf_load(const char *path, struct kbtf **ret, struct ckpt_error *e);
void kbtf_free(struct kbtf *b);
static inline void kbtf_freep(struct kbtf **b)
{
	kbtf_free(*b);
}

/*
 * Byte offset and size of a member of struct sname: path is "a.b.c" through
 * nested structs and unions (anonymous ones are looked through, as C does).
 * A bit field, a missing struct or member is an error naming it.
 */
int kbtf_member(const struct kbtf *b, const char *sname, const char *path, uint32_t *ret_off,
		uint32_t *ret_size, struct ckpt_error *e);

/* The type id of kernel function name (for a program's attach_btf_id). */
int kbtf_func_id(const struct kbtf *b, const char *name, uint32_t *ret_id, struct ckpt_error *e);
