/* SPDX-License-Identifier: MIT */
/*
 * The process's LDT (CoreEntry.ldt; dump/dump_ldt.c): each saved entry set
 * again with modify_ldt(0x11) by the task itself, queued in its batch of
 * stage procstate, before stage resume loads the threads' segment
 * registers, which may hold LDT selectors. The descriptors are the
 * kernel's own encoding of what modify_ldt was given (fill_ldt): the
 * verifier takes each apart into a struct user_desc and refuses one that
 * does not encode back to the same 8 bytes.
 */
#define LOG_PREFIX "ldt: "

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <asm/ldt.h>

#include "restore.h"

/* modify_ldt's "write, new mode" */
#define LDT_WRITE 0x11

/* desc, an LDT descriptor modify_ldt read back, as the call that set it. */
static void ldt_user_desc(uint32_t index, uint64_t desc, struct user_desc *u)
{
	uint32_t lo = (uint32_t)desc, hi = (uint32_t)(desc >> 32);
	unsigned type = (hi >> 8) & 0xf;

	memset(u, 0, sizeof(*u));
	u->entry_number = index;
	u->base_addr = (lo >> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000u);
	u->limit = (lo & 0xffff) | (hi & 0xf0000);
	u->seg_32bit = (hi >> 22) & 1;
	u->contents = (type >> 2) & 3;
	u->read_exec_only = !((type >> 1) & 1);
	u->limit_in_pages = (hi >> 23) & 1;
	u->seg_not_present = !((hi >> 15) & 1);
	u->useable = (hi >> 20) & 1;
	u->lm = (hi >> 21) & 1;
}

/* What the kernel writes for u (arch/x86/include/asm/desc.h, fill_ldt). */
static uint64_t ldt_encode(const struct user_desc *u)
{
	uint32_t type = ((u->read_exec_only ^ 1u) << 1) | (u->contents << 2) | 1u;
	uint32_t lo = (u->limit & 0xffff) | ((u->base_addr & 0xffff) << 16);
	uint32_t hi = ((u->base_addr >> 16) & 0xff) | (type << 8) | (1u << 12) /* S */ |
		      (3u << 13) /* DPL 3 */ | ((u->seg_not_present ^ 1u) << 15) |
		      (u->limit & 0xf0000) | (u->useable << 20) | (u->lm << 21) |
		      (u->seg_32bit << 22) | (u->limit_in_pages << 23) |
		      (u->base_addr & 0xff000000u);

	return (uint64_t)hi << 32 | lo;
}

int ldt_validate(struct restore_ctx *ctx, const char *f, const CoreEntry *c)
{
	for (size_t i = 0; i < c->n_ldt; i++) {
		const LdtEntry *le = c->ldt[i];
		struct user_desc u;

		if (le->index >= LDT_ENTRIES || (i && le->index <= c->ldt[i - 1]->index))
			return ckpt_err(&ctx->err, -EINVAL,
					"%s: field ldt[%zu].index: %u is not below %d and after "
					"the entry before",
					f, i, le->index, LDT_ENTRIES);
		ldt_user_desc(le->index, le->desc, &u);
		if (ldt_encode(&u) != le->desc)
			return ckpt_err(&ctx->err, -EINVAL,
					"%s: field ldt[%zu].desc: %#llx is not a descriptor "
					"modify_ldt makes",
					f, i, (unsigned long long)le->desc);
	}
	return 0;
}

int ldt_queue(struct rtask *t, struct ckpt_error *e)
{
	const CoreEntry *c = t->core;
	size_t at = 0;
	int r = 0;

	/* the scratch is ours from its start: what is queued before goes first */
	if (c->n_ldt)
		r = rflush(t, e);
	for (size_t i = 0; r >= 0 && i < c->n_ldt; i++) {
		struct user_desc u;

		ldt_user_desc(c->ldt[i]->index, c->ldt[i]->desc, &u);
		if (at + sizeof(u) > t->rsys.scratch_len) {
			r = rflush(t, e);
			at = 0;
		}
		if (r >= 0)
			r = rqueue_write(t, e, t->rsys.scratch + at, &u, sizeof(u));
		if (r >= 0)
			r = rqueue(t, e, __NR_modify_ldt,
				   RARGS(LDT_WRITE, t->rsys.scratch + at, sizeof(u)),
				   "LDT entry %u (base %#x, limit %#x): modify_ldt(%#x)",
				   u.entry_number, u.base_addr, u.limit, LDT_WRITE);
		at += sizeof(u);
	}
	return r;
}
