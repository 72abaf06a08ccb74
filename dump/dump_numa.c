/* SPDX-License-Identifier: MIT */
/*
 * The NUMA memory policy of each area (mbind; libnuma's numa_alloc_onnode,
 * a JVM with -XX:+UseNUMA). The kernel shows it in /proc/PID/numa_maps,
 * whose page walk of the whole address space would cost the freeze as much
 * as smaps again (about 6 ms per GiB), and to the task itself:
 * get_mempolicy(MPOL_F_ADDR) answers an area's own policy, MPOL_DEFAULT for
 * an area without one (never the thread's). So, in the process's session
 * while it is open: the areas that may have a policy, one get_mempolicy
 * per area in batches, each mode into the scratch; the few with a policy
 * asked again for their node mask. Which areas may have one the kernel
 * reader tells (kread_task_areas: a vm_policy, a file or operations of
 * their own, whose get_policy shared memory's policy comes from): 20,000
 * anonymous areas cost one program run instead of 58 ms of calls. Without
 * it, or with more such areas than it can list, every area of
 * /proc/PID/maps is asked (3-5 us per area here), in the freeze. The session's own pages are
 * skipped; an area of the program merged with them has no policy (the kernel merges only areas with
 * equal policies, and ours have none), so whatever start smaps shows for it later, none is missed.
 * dump_mm gives each Vma its policy (dump_area_mempolicy).
 */
#define LOG_PREFIX "dump numa: "

#include <errno.h>
#include <linux/mempolicy.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "cleanup.h"
#include "dump_internal.h"
#include "kread.h"
#include "log.h"

#define MPOL_WORDS 16	    /* node masks of up to 1024 nodes */
#define MODES_PER_BATCH 512 /* 4 bytes of scratch each */
#define MASKS_PER_BATCH 16  /* a mode and a mask each, MASK_SLOT bytes */
#define MASK_SLOT (8 + MPOL_WORDS * 8)
#define USER_SPACE_END 0x7ffffffff000ULL /* x86-64, 4-level page tables */

/* The modes of areas v[0..n) (start addresses) into modes[]. */
static int ask_modes(struct dump_task *t, const uint64_t *starts, size_t n, int *modes,
		     struct ckpt_error *e)
{
	struct rsys_op ops[MODES_PER_BATCH];
	int r;

	for (size_t i = 0; i < n; i++)
		ops[i] = (struct rsys_op){
		    __NR_get_mempolicy, {t->rsys.scratch + 4 * i, 0, 0, starts[i], MPOL_F_ADDR}, 0};
	r = rsys_batch(&t->rsys, ops, n, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (ops[i].ret < 0)
			return ckpt_err_errno(e, (int)ops[i].ret,
					      "pid %d: remote get_mempolicy(MPOL_F_ADDR) of the "
					      "area at %#lx",
					      t->pid, (unsigned long)starts[i]);
	return remote_read(t->pid, t->rsys.scratch, modes, n * sizeof(*modes), e);
}

/* The policies of the areas at starts[0..n), each known to have one. */
static int ask_masks(struct dump_task *t, const uint64_t *starts, size_t n, struct ckpt_error *e)
{
	struct rsys_op ops[MASKS_PER_BATCH];
	unsigned char out[MASKS_PER_BATCH * MASK_SLOT];
	int r;

	for (size_t i = 0; i < n; i++) {
		uint64_t at = t->rsys.scratch + i * MASK_SLOT;

		ops[i] = (struct rsys_op){__NR_get_mempolicy,
					  {at, at + 8, MPOL_WORDS * 64 + 1, starts[i], MPOL_F_ADDR},
					  0};
	}
	r = rsys_batch(&t->rsys, ops, n, e);
	if (r < 0)
		return r;
	r = remote_read(t->pid, t->rsys.scratch, out, n * MASK_SLOT, e);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		uint64_t nodes[MPOL_WORDS];
		int mode;

		if (ops[i].ret < 0)
			return ckpt_err_errno(e, (int)ops[i].ret,
					      "pid %d: remote get_mempolicy of the area at %#lx",
					      t->pid, (unsigned long)starts[i]);
		memcpy(&mode, out + i * MASK_SLOT, sizeof(mode));
		memcpy(nodes, out + i * MASK_SLOT + 8, sizeof(nodes));
		t->mpols[t->nmpols].start = starts[i];
		r = mempolicy_to_proto(mode, nodes, MPOL_WORDS, &t->mpols[t->nmpols].pol, e);
		if (r >= 0)
			t->nmpols++;
	}
	return r;
}

/*
 * The areas whose policy the task is asked for, into *ret: where the kernel
 * reader tells, only those that may have one (a policy, a file or
 * operations of their own: kread_task_areas); else every area of maps.
 */
static int areas_to_ask(struct dump_ctx *c, struct dump_task *t, uint64_t **ret, size_t *ret_n,
			struct ckpt_error *e)
{
	_cleanup_free_ struct kread_area *ka = NULL;
	struct proc_vma_list vl = {0};
	struct ckpt_error why = {0};
	uint64_t *starts;
	size_t nka = 0, n = 0;
	int r;

	if (kread_task_areas(&c->kread, t->pid, &ka, &nka, &why) == 0) {
		starts = calloc(nka ? nka : 1, sizeof(*starts));
		if (!starts)
			return ckpt_err(e, -ENOMEM, "out of memory");
		for (size_t i = 0; i < nka; i++)
			if (ka[i].has && ka[i].start < USER_SPACE_END &&
			    !rsys_owns(&t->rsys, ka[i].start, ka[i].start + 1))
				starts[n++] = ka[i].start;
		*ret = starts;
		*ret_n = n;
		return 0;
	}
	if (!c->areas_unseen)
		pr_debug("each area's policy asked of its task (%s)", why.msg);
	c->areas_unseen = true;
	r = proc_parse_maps(t->pid, &vl, e);
	if (r < 0)
		return r;
	starts = calloc(vl.n ? vl.n : 1, sizeof(*starts));
	if (!starts) {
		proc_vma_list_free(&vl);
		return ckpt_err(e, -ENOMEM, "out of memory");
	}
	/* not [vsyscall], above the user address space: no vma of the task */
	for (size_t i = 0; i < vl.n; i++)
		if (!rsys_owns(&t->rsys, vl.v[i].start, vl.v[i].end) &&
		    vl.v[i].end <= USER_SPACE_END)
			starts[n++] = vl.v[i].start;
	proc_vma_list_free(&vl);
	*ret = starts;
	*ret_n = n;
	return 0;
}

int dump_area_mempolicies(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e)
{
	_cleanup_free_ uint64_t *starts = NULL;
	_cleanup_free_ int *modes = NULL;
	size_t n = 0, nwith = 0;
	int r;

	r = areas_to_ask(c, t, &starts, &n, e);
	if (r < 0)
		return r;
	modes = calloc(n ? n : 1, sizeof(*modes));
	if (!modes)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; r >= 0 && i < n; i += MODES_PER_BATCH)
		r = ask_modes(t, starts + i, n - i < MODES_PER_BATCH ? n - i : MODES_PER_BATCH,
			      modes + i, e);
	if (r < 0)
		return r;
	/* the areas with a policy of their own, first in starts[] */
	for (size_t i = 0; i < n; i++)
		if (modes[i] != MPOL_DEFAULT)
			starts[nwith++] = starts[i];
	if (!nwith)
		return 0;
	t->mpols = calloc(nwith, sizeof(*t->mpols));
	if (!t->mpols)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; r >= 0 && i < nwith; i += MASKS_PER_BATCH)
		r = ask_masks(t, starts + i,
			      nwith - i < MASKS_PER_BATCH ? nwith - i : MASKS_PER_BATCH, e);
	return r;
}

MemPolicy *dump_area_mempolicy(struct dump_task *t, uint64_t start)
{
	/* in address order, as maps and smaps list them */
	size_t lo = 0, hi = t->nmpols;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->mpols[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->nmpols && t->mpols[lo].start == start) {
		MemPolicy *p = t->mpols[lo].pol;

		t->mpols[lo].pol = NULL; /* the Vma's now */
		return p;
	}
	return NULL;
}

void dump_area_mempolicies_free(struct dump_task *t)
{
	for (size_t i = 0; i < t->nmpols; i++)
		if (t->mpols[i].pol)
			mem_policy__free_unpacked(t->mpols[i].pol, NULL);
	free(t->mpols);
	t->mpols = NULL;
	t->nmpols = 0;
}
