/* SPDX-License-Identifier: MIT */
/*
 * The local descriptor table (modify_ldt), which emulators (Wine, DOSEMU)
 * and 16- and 32-bit code fill with segments and load into segment
 * registers: a thread holding such a selector faults at once where the
 * entry is missing. The process's batch asks modify_ldt(0) for 8 bytes
 * (it answers 0 without an LDT, the count asked with one: nothing tells
 * its length); only then is the whole table read, 64 KiB through an area
 * mapped in the task for it, and the entries that are set saved
 * (CoreEntry.ldt). The restore sets them again (restorer/modes.c).
 */
#define LOG_PREFIX "dump ldt: "

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <asm/ldt.h>

#include "cleanup.h"
#include "dump_internal.h"
#include "log.h"

int dump_ldt(struct dump_task *t, long probe, CoreEntry *core, struct ckpt_error *e)
{
	_cleanup_free_ uint64_t *table = NULL;
	size_t len = LDT_ENTRIES * LDT_ENTRY_SIZE, n = 0;
	uint64_t addr;
	long got;
	int r, r2;

	/* 0: no LDT; ENOSYS: a kernel without modify_ldt, which has none */
	if (probe == 0 || probe == -ENOSYS)
		return 0;
	if (probe < 0)
		return ckpt_err_errno(e, (int)probe, "pid %d: remote modify_ldt(0)", t->pid);
	table = malloc(len);
	if (!table)
		return ckpt_err(e, -ENOMEM, "out of memory");
	r = rsys_area_map(&t->rsys, len, PROT_READ | PROT_WRITE, &addr, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: an area for its LDT", t->pid);
	r = rsys_call(&t->rsys, __NR_modify_ldt, 0, addr, len, 0, 0, 0, &got, e);
	if (r >= 0 && got < 0)
		r = ckpt_err_errno(e, (int)got, "pid %d: remote modify_ldt(0)", t->pid);
	if (r >= 0)
		r = remote_read(t->pid, addr, table, len, e);
	/* the area goes whatever happened */
	r2 = rsys_area_unmap(&t->rsys, addr, len, r < 0, e);
	if (r < 0)
		return r;
	if (r2 < 0)
		return r2;
	for (size_t i = 0; i < LDT_ENTRIES; i++)
		n += table[i] != 0;
	core->ldt = calloc(n, sizeof(*core->ldt));
	if (n && !core->ldt)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < LDT_ENTRIES; i++) {
		LdtEntry *le;

		if (!table[i])
			continue;
		le = calloc(1, sizeof(*le));
		if (!le)
			return ckpt_err(e, -ENOMEM, "out of memory");
		ldt_entry__init(le);
		le->index = (uint32_t)i;
		le->desc = table[i];
		core->ldt[core->n_ldt++] = le;
	}
	pr_debug("pid %d: %zu LDT entries", t->pid, n);
	return 0;
}
