/* SPDX-License-Identifier: MIT */
/*
 * Memory: the layout of the address space (mm-PID.img, mapped files in
 * files.img) and which pages exist (the runs of pagemap-PID.img). Pages are
 * selected with /proc/PID/pagemap: present or swapped in anonymous areas,
 * and in private file mappings only the pages the task has written
 * (anonymous copies) or that were swapped; pages shared copy-on-write with
 * the parent or a sibling are recorded as such. Copying them into the pages
 * image is dump_pages.c's.
 */
#define LOG_PREFIX "dump: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "dump_internal.h"
#include "fault.h"
#include "kinds/fd_kind.h"
#include "log.h"
#include "mm_cow.h"
#include "pagemap.pb-c.h"
#include "pagemap_scan.h"

#define PG_SIZE 4096UL
#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PM_FILE (1ULL << 61)
#define PM_EXCLUSIVE (1ULL << 56) /* mapped by this process alone: shared with no sibling */
/* pagemap words read per pread (512 KiB) */
#define PM_CHUNK 65536
/* one pagemap entry never covers more than this many pages */
#define RUN_MAX (1u << 30)

/* ---- layout ----------------------------------------------------------- */

static int refuse_area(pid_t pid, const struct proc_vma *v, const char *what, struct ckpt_error *e)
{
	return ckpt_err(e, -EOPNOTSUPP,
			"pid %d: area %" PRIx64 "-%" PRIx64 " (%s) is not supported yet", pid,
			v->start, v->end, what);
}

/* Shared anonymous memory is backed by "/dev/zero (deleted)" (or named). */
static bool anon_shared(const struct proc_vma *v)
{
	const char *p = v->path;

	return v->shared && (!p[0] || (v->deleted && !strcmp(p, "/dev/zero")) ||
			     !strncmp(p, "[anon_shmem:", 12));
}

/* The kind of an area, or a refusal that names it. */
static int classify_vma(pid_t pid, const struct proc_vma *v, VmaKind *ret, struct ckpt_error *e)
{
	static const struct {
		const char *name;
		VmaKind kind;
	} special[] = {
	    {"[heap]", VMA_KIND__VMA_HEAP},
	    {"[stack]", VMA_KIND__VMA_STACK},
	    {"[vdso]", VMA_KIND__VMA_VDSO},
	    {"[vvar]", VMA_KIND__VMA_VVAR},
	    {"[vvar_vclock]", VMA_KIND__VMA_VVAR_VCLOCK},
	    {"[vsyscall]", VMA_KIND__VMA_VSYSCALL},
	};
	char what[PATH_MAX + 64];
	const char *p = v->path;

	if (proc_vma_has_flag(v, "ht")) {
		snprintf(what, sizeof(what), "hugetlbfs huge pages %s", p);
		return refuse_area(pid, v, what, e);
	}
	if (!strncmp(p, "/SYSV", 5) && v->deleted) {
		if (!v->shared)
			return refuse_area(pid, v, "private mapping of System V shared memory", e);
		*ret = VMA_KIND__VMA_SYSV_SHM;
		return 0;
	}
	/* memfds, shared anonymous memory, deleted files: objects of dump_shmem.c */
	if (!strncmp(p, "/memfd:", 7) || anon_shared(v) || (p[0] == '/' && v->deleted)) {
		*ret = v->shared ? VMA_KIND__VMA_SHMEM_SHARED : VMA_KIND__VMA_SHMEM_PRIVATE;
		return 0;
	}
	if (v->shared && p[0] == '/' && !proc_vma_has_flag(v, "mw")) {
		/* Shared, but the file was opened read-only ("mw" unset): it can
		 * never be written through this mapping and holds nothing but the
		 * file, so it is restored as the same shared mapping of the file
		 * with no pages saved (glibc maps gconv-modules.cache like that in
		 * every program). */
		*ret = VMA_KIND__VMA_FILE_SHARED_RO;
		return 0;
	}
	if (v->shared && p[0] == '/') {
		/* writable shared file mapping: one object per file */
		*ret = VMA_KIND__VMA_SHMEM_SHARED;
		return 0;
	}
	if (v->shared && !strcmp(p, "anon_inode:[io_uring]")) {
		/* rings and SQEs of an io_uring instance (lib/kinds/iouring.c) */
		if (v->pgoff >= 0x20000000ULL) /* IORING_OFF_PBUF_RING, other regions */
			return refuse_area(pid, v,
					   "MAP_SHARED mapping of an io_uring provided-buffer "
					   "ring or other region",
					   e);
		*ret = VMA_KIND__VMA_IOURING;
		return 0;
	}
	if (v->shared) {
		snprintf(what, sizeof(what), "MAP_SHARED mapping of %s", p);
		return refuse_area(pid, v, what, e);
	}
	for (size_t i = 0; i < ARRAY_SIZE(special); i++) {
		if (!strcmp(p, special[i].name)) {
			*ret = special[i].kind;
			return 0;
		}
	}
	/* "[anon:name]": anonymous memory named with PR_SET_VMA_ANON_NAME */
	if (!p[0] || !strncmp(p, "[anon:", 6)) {
		*ret = VMA_KIND__VMA_ANON_PRIVATE;
		return 0;
	}
	if (p[0] == '/') {
		*ret = VMA_KIND__VMA_FILE_PRIVATE;
		return 0;
	}
	snprintf(what, sizeof(what), "unknown mapping %s", p);
	return refuse_area(pid, v, what, e);
}

/* A private file mapping: the file through map_files (the very file mapped,
 * whatever happened to the path since), recorded once in files.img. Only
 * stat'ed: an open is what inotify reports (dump_watched.c). */
static int vma_file(struct dump_ctx *c, pid_t pid, const struct proc_vma *v, Vma *vma,
		    struct ckpt_error *e)
{
	char path[128];
	struct stat st;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, v->start,
		 v->end);
	if (stat(path, &st) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: area %" PRIx64 "-%" PRIx64 ": stat of %s",
				      pid, v->start, v->end, v->path);
	if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 5)) {
		/* a private /dev/zero mapping is plain anonymous memory */
		vma->kind = VMA_KIND__VMA_ANON_PRIVATE;
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		char what[PATH_MAX + 64];

		snprintf(what, sizeof(what), "mapping of device or special file %s", v->path);
		return refuse_area(pid, v, what, e);
	}
	if (c->opts->save_tmpfs_files) {
		bool tmpfs;

		r = dump_on_tmpfs(path, &tmpfs, e);
		if (r < 0)
			return ckpt_err_wrap(e, "pid %d: mapped file %s", pid, v->path);
		if (tmpfs) {
			/* a reboot removes it: saved with its content, one file
			 * object for every mapping, fd and exe link of it
			 * (dump_shmem.c), mapped from it privately or shared */
			vma->kind = vma->kind == VMA_KIND__VMA_FILE_SHARED_RO
					? VMA_KIND__VMA_SHMEM_SHARED
					: VMA_KIND__VMA_SHMEM_PRIVATE;
			return dump_shmem_vma(c, pid, v, vma, e);
		}
	}
	r = dump_file_add_mapping(c, path, &st, v->path, &vma->file_id, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: area %" PRIx64 "-%" PRIx64, pid, v->start, v->end);
	vma->has_file_id = true;
	vma->has_pgoff = true;
	vma->pgoff = v->pgoff;
	return 0;
}

static int dump_vma(struct dump_ctx *c, pid_t pid, const struct proc_vma *v, Vma **ret,
		    struct ckpt_error *e)
{
	Vma *vma = calloc(1, sizeof(*vma));
	VmaKind kind;
	int r;

	if (!vma)
		return ckpt_err(e, -ENOMEM, "out of memory");
	vma__init(vma);
	*ret = vma;
	r = classify_vma(pid, v, &kind, e);
	if (r < 0)
		return r;
	/* its missing pages are not in the task but in someone's images: a
	 * lazy restore's pager still at work (docs/lazy.md), or a program's
	 * own userfaultfd; pagemap would show them as holes */
	if (proc_vma_has_flag(v, "um"))
		return refuse_area(
		    pid, v,
		    "registered with a userfaultfd in missing mode: a restore --lazy "
		    "whose pager is still bringing its pages in, or the program's own "
		    "userfaultfd",
		    e);
	/* the keys a process allocated (pkey_alloc) and the rights its
	 * threads gave each (PKRU) go with them: not saved yet */
	if (v->pkey) {
		char why[128];

		snprintf(why, sizeof(why),
			 "memory protection key %d (pkey_mprotect): the keys of a process are "
			 "not saved; not supported yet",
			 v->pkey);
		return refuse_area(pid, v, why, e);
	}
	vma->start = v->start;
	vma->end = v->end;
	vma->prot = v->prot;
	vma->kind = kind;
	vma->flags = v->shared ? MAP_SHARED : MAP_PRIVATE;
	if (proc_vma_has_flag(v, "gd"))
		vma->flags |= MAP_GROWSDOWN;
	if (proc_vma_has_flag(v, "nr"))
		vma->flags |= MAP_NORESERVE;
	if (v->has_vmflags) {
		vma->vmflags = dump_strdup(v->vmflags, e);
		if (!vma->vmflags)
			return -ENOMEM;
	}
	if (kind == VMA_KIND__VMA_IOURING) {
		/* the ring's content is its fd's (files.img); file_id: dump_link_iouring_maps */
		vma->has_pgoff = vma->has_ring_ino = true;
		vma->pgoff = v->pgoff;
		vma->ring_ino = v->ino;
		return 0;
	}
	if (kind == VMA_KIND__VMA_FILE_PRIVATE || kind == VMA_KIND__VMA_FILE_SHARED_RO)
		return vma_file(c, pid, v, vma, e);
	if (kind == VMA_KIND__VMA_SHMEM_SHARED || kind == VMA_KIND__VMA_SHMEM_PRIVATE ||
	    kind == VMA_KIND__VMA_SYSV_SHM)
		return dump_shmem_vma(c, pid, v, vma, e);
	return 0;
}

/*
 * shmat() maps a whole segment: restore attaches at the first area (offset 0)
 * and only changes the protection of the others, so the areas of one
 * attachment must follow each other and cover the whole segment.
 */
static int check_sysv(struct dump_ctx *c, pid_t pid, MmEntry *mm, struct ckpt_error *e)
{
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Vma *v = mm->vmas[i], *prev = i ? mm->vmas[i - 1] : NULL;
		uint64_t size, span = v->end - v->start;
		size_t j = i + 1;

		if (v->kind != VMA_KIND__VMA_SYSV_SHM)
			continue;
		if (v->pgoff) {
			if (prev && prev->kind == v->kind && prev->file_id == v->file_id &&
			    prev->end == v->start &&
			    prev->pgoff + (prev->end - prev->start) == v->pgoff)
				continue;
			return ckpt_err(e, -EOPNOTSUPP,
					"pid %d: area %" PRIx64 "-%" PRIx64
					": System V segment attached only in part (from offset "
					"%#" PRIx64 "); not supported",
					pid, v->start, v->end, v->pgoff);
		}
		for (; j < mm->n_vmas && mm->vmas[j]->kind == v->kind &&
		       mm->vmas[j]->file_id == v->file_id &&
		       mm->vmas[j]->start == v->start + span && mm->vmas[j]->pgoff == span;
		     j++)
			span += mm->vmas[j]->end - mm->vmas[j]->start;
		size = 0;
		for (size_t k = 0; k < c->nfiles; k++)
			if (c->files[k].fe->id == v->file_id && c->files[k].fe->shmem)
				size = c->files[k].fe->shmem->size;
		if (span != ((size + PG_SIZE - 1) & ~(PG_SIZE - 1)))
			return ckpt_err(e, -EOPNOTSUPP,
					"pid %d: area %" PRIx64 "-%" PRIx64
					": System V segment of %" PRIu64
					" bytes attached only in part; not supported",
					pid, v->start, v->start + span, size);
	}
	return 0;
}

static int dump_exe(struct dump_ctx *c, pid_t pid, MmEntry *mm, struct ckpt_error *e)
{
	char path[64], link[PATH_MAX];
	struct stat st;
	size_t l;
	int r;

	r = proc_readlink(pid, "exe", link, sizeof(link), e);
	if (r < 0)
		return r;
	l = strlen(link);
	if (l > 10 && !strcmp(link + l - 10, " (deleted)"))
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: its executable %s was deleted; not supported yet", pid,
				link);
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	/* stat'ed, not opened (as a mapped file: vma_file) */
	if (stat(path, &st) < 0)
		return ckpt_err_errno(e, -errno, "pid %d: stat of its executable %s", pid, link);
	if (c->opts->save_tmpfs_files) {
		bool tmpfs;

		r = dump_on_tmpfs(path, &tmpfs, e);
		if (r < 0)
			return ckpt_err_wrap(e, "pid %d: executable %s", pid, link);
		/* a program run from a tmpfs: the file object of its text */
		if (tmpfs) {
			r = dump_shmem_exe(c, pid, path, link, &mm->exe_file_id, e);
			if (r < 0)
				return r;
			mm->has_exe_file_id = true;
			return 0;
		}
	}
	r = dump_file_add_mapping(c, path, &st, link, &mm->exe_file_id, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: executable", pid);
	mm->has_exe_file_id = true;
	return 0;
}

/*
 * Each mapping of an io_uring instance names the ring's entry of files.img,
 * which the task must hold as an fd: the restore maps the ring from it.
 */
int dump_link_iouring_maps(struct dump_ctx *c, struct ckpt_error *e)
{
	for (size_t i = 0; i < c->ntasks; i++) {
		struct dump_task *t = &c->tasks[i];

		for (size_t j = 0; t->mm && j < t->mm->n_vmas; j++) {
			Vma *v = t->mm->vmas[j];

			if (v->kind != VMA_KIND__VMA_IOURING)
				continue;
			for (size_t k = 0; k < t->nfds && !v->has_file_id; k++)
				for (size_t f = 0; f < c->nfiles; f++) {
					const FileEntry *fe = c->files[f].fe;

					if (fe->id == t->fds[k]->id && fe->io_uring &&
					    fe->io_uring->ino == v->ring_ino) {
						v->has_file_id = true;
						v->file_id = fe->id;
						break;
					}
				}
			if (!v->has_file_id)
				return ckpt_err(e, -EOPNOTSUPP,
						"pid %d: area %" PRIx64 "-%" PRIx64
						" (MAP_SHARED mapping of anon_inode:[io_uring]): the "
						"task does not hold that ring as an fd; not supported",
						t->pid, v->start, v->end);
		}
	}
	return 0;
}

static int dump_mm(struct dump_ctx *c, struct dump_task *t, MmEntry *mm, struct ckpt_error *e)
{
	struct proc_vma_list vl = {0};
	struct proc_stat st;
	uint64_t *auxv = NULL;
	size_t nauxv = 0;
	int r;

	r = proc_parse_stat(t->pid, &st, e);
	if (r < 0)
		return r;
	mm->start_code = st.start_code;
	mm->end_code = st.end_code;
	mm->start_data = st.start_data;
	mm->end_data = st.end_data;
	mm->start_brk = st.start_brk;
	mm->brk = t->brk;
	mm->start_stack = st.start_stack;
	mm->arg_start = st.arg_start;
	mm->arg_end = st.arg_end;
	mm->env_start = st.env_start;
	mm->env_end = st.env_end;
	r = proc_read_auxv(t->pid, &auxv, &nauxv, e);
	if (r < 0)
		return r;
	mm->auxv = auxv;
	mm->n_auxv = nauxv;
	r = dump_exe(c, t->pid, mm, e);
	if (r < 0)
		return r;

	r = dump_layout(c, t, &vl, e);
	if (r < 0)
		return r;
	mm->vmas = calloc(vl.n ? vl.n : 1, sizeof(*mm->vmas));
	if (!mm->vmas) {
		proc_vma_list_free(&vl);
		return ckpt_err(e, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < vl.n; i++) {
		r = dump_vma(c, t->pid, &vl.v[i], &mm->vmas[i], e);
		mm->n_vmas = i + 1;
		if (r < 0)
			break;
		mm->vmas[i]->mempolicy = dump_area_mempolicy(t, mm->vmas[i]->start);
	}
	proc_vma_list_free(&vl);
	if (r < 0)
		return r;
	return check_sysv(c, t->pid, mm, e);
}

int dump_task_mm(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e)
{
	MmEntry *mm = calloc(1, sizeof(*mm));

	if (!mm)
		return ckpt_err(e, -ENOMEM, "out of memory");
	mm_entry__init(mm);
	t->mm = mm;
	return dump_mm(c, t, mm, e); /* the caller names the pid */
}

/* ---- pages -------------------------------------------------------------- */

/* A run of pages to save, recorded in the task (written by dump_pages). */
static int emit_run(struct dump_task *t, uint64_t vaddr, uint64_t nr, bool inherited, pid_t sib,
		    struct ckpt_error *e)
{
	if (t->nruns == t->runs_cap) {
		size_t cap = t->runs_cap ? 2 * t->runs_cap : 256;
		struct page_run *g = realloc(t->runs, cap * sizeof(*g));

		if (!g)
			return ckpt_err(e, -ENOMEM, "out of memory");
		t->runs = g;
		t->runs_cap = cap;
	}
	t->runs[t->nruns++] = (struct page_run){
	    .vaddr = vaddr, .nr = (uint32_t)nr, .inherited = inherited, .sibling = sib};
	return 0;
}

/*
 * Copy-on-write sharing with the parent (docs/cow.md). A page of the task
 * whose physical frame is the frame the parent maps at the same address,
 * in an area of the parent that the task's area can be a fork of
 * (vma_cow_compatible), is the parent's page shared since a fork: it is
 * recorded as inherited and its data is not written again. Frame numbers
 * are read from both pagemaps (root only: otherwise they read 0, and no
 * page is taken for inherited), only for the pages PAGEMAP_SCAN found.
 */
struct cow_src {
	struct dump_ctx *c;
	int pmfd;  /* the task's pagemap */
	int ppmfd; /* the parent's, -1 without a parent in the tree */
	const struct dump_task *parent;
	struct sib_table *sib; /* the parent's: its children's own pages so far */
	uint64_t *wc, *wp;     /* PM_CHUNK words each */
	pid_t *cls;	       /* PM_CHUNK: each page's kind (run_add_cow) */
	uint64_t inherited;    /* pages recorded as inherited, for the log */
	uint64_t from_sibling; /* ... of them from a sibling's */
	pid_t ok_pid;	       /* sib_area_ok's last answer */
	uint64_t ok_start, ok_end;
};

/*
 * Pages shared only between siblings: a parent that rewrote (or dropped) a
 * page after forking some children leaves them sharing the old page among
 * themselves. The children of one parent are scanned in the order it forked
 * them (the kernel lists children in fork order); the parent's table holds,
 * per address of its compatible areas, the frame of the last child that had
 * a page of its own there. A later child with the same frame shares it: its
 * page is recorded as inherited from that sibling, which saves the data.
 * The restore has the parent hold that data while it forks both.
 */
struct sib_slot {
	uint64_t page; /* address / PG_SIZE + 1; 0: empty */
	uint64_t pfn;
	pid_t pid;
};

struct sib_table {
	struct sib_slot *v;
	size_t cap, n; /* cap: a power of 2 */
};

void dump_sib_free(struct dump_task *t)
{
	if (t->sib)
		free(t->sib->v);
	free(t->sib);
	t->sib = NULL;
}

static struct sib_slot *sib_slot(struct sib_table *tb, uint64_t page)
{
	size_t i = (size_t)((page * 0x9e3779b97f4a7c15ULL) >> 20) & (tb->cap - 1);

	while (tb->v[i].page && tb->v[i].page != page)
		i = (i + 1) & (tb->cap - 1);
	return &tb->v[i];
}

static int sib_grow(struct sib_table *tb, struct ckpt_error *e)
{
	struct sib_table g = {.cap = tb->cap ? 2 * tb->cap : 4096};

	g.v = calloc(g.cap, sizeof(*g.v));
	if (!g.v)
		return ckpt_err(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < tb->cap; i++)
		if (tb->v[i].page)
			*sib_slot(&g, tb->v[i].page) = tb->v[i];
	g.n = tb->n;
	free(tb->v);
	*tb = g;
	return 0;
}

/*
 * The task's own page at addr, frame pfn: the sibling whose saved page it
 * is (0 if none; then it is the one later siblings may share).
 */
static int sib_match(struct sib_table *tb, uint64_t addr, uint64_t pfn, pid_t pid, pid_t *ret,
		     struct ckpt_error *e)
{
	struct sib_slot *s;

	*ret = 0;
	if (2 * (tb->n + 1) > tb->cap) {
		int r = sib_grow(tb, e);

		if (r < 0)
			return r;
	}
	s = sib_slot(tb, addr / PG_SIZE + 1);
	if (s->page && s->pfn == pfn) {
		*ret = s->pid;
		return 0;
	}
	if (!s->page)
		tb->n++;
	*s = (struct sib_slot){addr / PG_SIZE + 1, pfn, pid};
	return 0;
}

#define PM_PFN_MASK ((1ULL << 55) - 1)

/*
 * A part of the task's area that the parent has in an area it can be a fork
 * of; or (orphan) a part where the parent has no area at all any more: pages
 * there can still be shared with siblings.
 */
struct cow_win {
	uint64_t start, end;
	bool parent_file; /* the parent's area is file-backed: its file pages are not its own */
	bool orphan;
};

/* Consecutive pages to save, merged into runs of at most RUN_MAX pages. */
struct run_acc {
	struct dump_task *t;
	uint64_t start, len; /* the run being built (len 0: none) */
	bool inh;	     /* ... of inherited pages */
	pid_t sib;	     /* ... from this sibling's (0: the parent's) */
	struct cow_src *cow;
	const Vma *vma;	     /* the task's area being scanned */
	struct cow_win *win; /* parts of the area the parent has compatibly, or not at all */
	size_t nwin;
};

static int run_add_kind(struct run_acc *a, uint64_t addr, uint64_t npages, bool inh, pid_t sib,
			struct ckpt_error *e)
{
	while (npages) {
		uint64_t n;
		int r;

		if (a->len && (a->start + a->len * PG_SIZE != addr || a->len == RUN_MAX ||
			       a->inh != inh || a->sib != sib)) {
			r = emit_run(a->t, a->start, a->len, a->inh, a->sib, e);
			if (r < 0)
				return r;
			a->len = 0;
		}
		if (!a->len) {
			a->start = addr;
			a->inh = inh;
			a->sib = sib;
		}
		n = npages < RUN_MAX - a->len ? npages : RUN_MAX - a->len;
		a->len += n;
		addr += n * PG_SIZE;
		npages -= n;
	}
	return 0;
}

static int run_flush(struct run_acc *a, struct ckpt_error *e)
{
	int r = a->len ? emit_run(a->t, a->start, a->len, a->inh, a->sib, e) : 0;

	a->len = 0;
	return r;
}

static int read_words(int fd, pid_t pid, uint64_t *w, uint64_t addr, uint64_t n,
		      struct ckpt_error *e)
{
	ssize_t got = pread(fd, w, n * 8, (off_t)(addr / PG_SIZE * 8));

	if (got != (ssize_t)(n * 8))
		return ckpt_err_errno(e, got < 0 ? -errno : -EIO,
				      "reading /proc/%d/pagemap at %" PRIx64, pid, addr);
	return 0;
}

/*
 * Where the parent has no area: is the area sibling pid has at addr one the
 * task's can share pages with (the same kind of private mapping)? The last
 * answer is kept: pages come in address order.
 */
static bool sib_area_ok(struct cow_src *cs, const Vma *vma, pid_t pid, uint64_t addr)
{
	const struct dump_task *sib;

	if (cs->ok_pid == pid && addr >= cs->ok_start && addr < cs->ok_end)
		return true;
	sib = dump_find_task(cs->c, pid);
	for (size_t i = 0; sib && sib->mm && i < sib->mm->n_vmas; i++) {
		const Vma *v = sib->mm->vmas[i];

		if (v->start <= addr && addr < v->end && vma_cow_compatible(vma, v)) {
			cs->ok_pid = pid;
			cs->ok_start = v->start > vma->start ? v->start : vma->start;
			cs->ok_end = v->end < vma->end ? v->end : vma->end;
			return true;
		}
	}
	return false;
}

/* Pages [addr, addr + npages) inside a window: inherited or the task's own. */
static int run_add_cow(struct run_acc *a, const struct cow_win *w, uint64_t addr, uint64_t npages,
		       struct ckpt_error *e)
{
	struct cow_src *cs = a->cow;

	while (npages) {
		uint64_t n = npages < PM_CHUNK ? npages : PM_CHUNK, i = 0;
		int r;

		r = read_words(cs->pmfd, a->t->pid, cs->wc, addr, n, e);
		if (r >= 0 && !w->orphan)
			r = read_words(cs->ppmfd, cs->parent->pid, cs->wp, addr, n, e);
		else if (r >= 0)
			memset(cs->wp, 0, n * sizeof(*cs->wp)); /* no parent page */
		if (r < 0)
			return r;
		/* each page once (the sibling table learns from it): -1 the
		 * parent's page, 0 the task's own, else the sibling's pid */
		for (uint64_t j = 0; j < n; j++) {
			uint64_t c = cs->wc[j], p = cs->wp[j], pfn = c & PM_PFN_MASK;

			cs->cls[j] = 0;
			if ((c & PM_PRESENT) && (p & PM_PRESENT) && pfn &&
			    pfn == (p & PM_PFN_MASK) && !(w->parent_file && (p & PM_FILE)))
				cs->cls[j] = -1;
			else if ((c & PM_PRESENT) && pfn && !(c & (PM_FILE | PM_EXCLUSIVE)) &&
				 cs->sib)
				r = sib_match(cs->sib, addr + j * PG_SIZE, pfn, a->t->pid,
					      &cs->cls[j], e);
			if (r < 0)
				return r;
			/* where the parent has no area, the sibling's must be like ours */
			if (w->orphan && cs->cls[j] > 0 &&
			    !sib_area_ok(cs, a->vma, cs->cls[j], addr + j * PG_SIZE))
				cs->cls[j] = 0;
		}
		while (i < n) {
			uint64_t j = i + 1;
			pid_t k = cs->cls[i];

			while (j < n && cs->cls[j] == k)
				j++;
			r = run_add_kind(a, addr + i * PG_SIZE, j - i, k != 0, k > 0 ? k : 0, e);
			if (r < 0)
				return r;
			if (k)
				cs->inherited += j - i;
			if (k > 0)
				cs->from_sibling += j - i;
			i = j;
		}
		addr += n * PG_SIZE;
		npages -= n;
	}
	return 0;
}

/* Pages to save found present or swapped: split by the parent's windows. */
static int run_add(struct run_acc *a, uint64_t addr, uint64_t npages, struct ckpt_error *e)
{
	uint64_t end = addr + npages * PG_SIZE;

	for (size_t k = 0; k < a->nwin && addr < end; k++) {
		const struct cow_win *w = &a->win[k];
		uint64_t s = addr > w->start ? addr : w->start, t = end < w->end ? end : w->end;
		int r;

		if (s >= t)
			continue;
		if (s > addr) {
			r = run_add_kind(a, addr, (s - addr) / PG_SIZE, false, 0, e);
			if (r < 0)
				return r;
		}
		/* no inherited run across windows: the restore reads one window per entry */
		if (a->len && a->inh && (r = run_flush(a, e)) < 0)
			return r;
		r = run_add_cow(a, w, s, (t - s) / PG_SIZE, e);
		if (r >= 0 && a->len && a->inh)
			r = run_flush(a, e);
		if (r < 0)
			return r;
		addr = t;
	}
	return addr < end ? run_add_kind(a, addr, (end - addr) / PG_SIZE, false, 0, e) : 0;
}

/*
 * Which pages of an area are saved: anonymous memory (present or swapped);
 * in private file mappings only the pages the task wrote (anonymous copies),
 * not the page cache pages it merely mapped.
 */
static bool page_kept(bool file, bool present, bool swapped, bool file_page)
{
	return file ? (present && !file_page) || swapped : present || swapped;
}

#define PM_SCAN_VEC 1024

/*
 * What one PAGEMAP_SCAN walk found over a run of consecutive anonymous
 * areas (scan_group): a task with 20,000 small areas made 20,000 ioctls,
 * 46 ms here; one walk over all of them takes a few. Each area then takes
 * its part (scan_vma_pages). Regions in address order.
 */
struct pm_group {
	uint64_t start, end; /* the areas' span; end 0: no group */
	struct pmscan_region *v;
	size_t n, cap;
	bool unavailable; /* the ioctl is not there: no more groups */
};

/* fewer areas in a row are each walked on their own */
#define PM_GROUP_MIN 8
/* a walk of this span or more is made in two halves at once */
#define WALK_SPLIT (512ULL << 20)

static void pm_group_release(struct pm_group *g)
{
	free(g->v);
}

/* A private mapping of a file: its pages are the file's until written. */
static bool private_file(const Vma *vma)
{
	return vma->kind == VMA_KIND__VMA_FILE_PRIVATE || vma->kind == VMA_KIND__VMA_SHMEM_PRIVATE;
}

/* Areas of one walk: anonymous (no file page to tell apart), no guard pages. */
static bool groupable(const Vma *vma)
{
	return vma_kind_has_pages(vma->kind) && !private_file(vma) && !vma_vmflag(vma, "gu");
}

/*
 * One PAGEMAP_SCAN walk of pid's [start, end): the regions of the
 * categories in anyof (with those of ret_mask told), each handed to fn
 * clipped to the range and never a page twice. 0 when done, 1 when the
 * ioctl is not there (older kernels: read pagemap instead; a test says
 * so with CKPT_FAULT=pagemap-scan). The kernel walks the page tables and
 * hands back only runs of pages that exist: a sparse area of many TiB
 * (MAP_NORESERVE heaps, sanitizer shadow memory) costs what it holds, not
 * what it spans.
 */
static int pmscan_walk(pid_t pid, int pmfd, uint64_t start, uint64_t end, uint64_t anyof,
		       uint64_t ret_mask,
		       int (*fn)(void *arg, const struct pmscan_region *rg, struct ckpt_error *e),
		       void *arg, struct ckpt_error *e)
{
	struct pmscan_region vec[PM_SCAN_VEC];
	struct pmscan_arg a = {
	    .size = sizeof(a),
	    .start = start,
	    .end = end,
	    .vec = (uint64_t)(uintptr_t)vec,
	    .vec_len = PM_SCAN_VEC,
	    .category_anyof_mask = anyof,
	    .return_mask = ret_mask,
	};

	if (ckpt_fault("pagemap-scan"))
		return 1;
	while (a.start < end) {
		long n = ioctl(pmfd, PMSCAN_IOCTL, &a);
		uint64_t next = a.start;

		if (n < 0 && (errno == ENOTTY || errno == EINVAL) && a.start == start)
			return 1;
		if (n < 0)
			return ckpt_err_errno(e, -errno,
					      "pid %d: PAGEMAP_SCAN of /proc/%d/pagemap at %" PRIx64,
					      pid, pid, a.start);
		for (long i = 0; i < n; i++) {
			struct pmscan_region rg = vec[i];
			int r;

			/* never a page twice, never outside the range (see below) */
			if (rg.start < next)
				rg.start = next;
			if (rg.end > end)
				rg.end = end;
			if (rg.start >= rg.end)
				continue;
			next = rg.end;
			r = fn(arg, &rg, e);
			if (r < 0)
				return r;
		}
		/*
		 * A result shorter than the vector means the walk reached the end.
		 * Only a full vector is continued, from past the last region
		 * returned: the kernel walks in chunks and reports walk_end of
		 * the last chunk that filled its own buffer, which can lie below
		 * regions of a later chunk it returned in the same call (seen on
		 * 6.18 with 513..1023 regions left); starting again from
		 * walk_end would save those pages twice.
		 */
		if (n < PM_SCAN_VEC)
			break;
		if (a.walk_end > next)
			next = a.walk_end;
		if (next <= a.start)
			return ckpt_err(e, -EIO, "pid %d: PAGEMAP_SCAN made no progress at %" PRIx64,
					pid, a.start);
		a.start = next;
	}
	return 0;
}

static int group_add(void *arg, const struct pmscan_region *rg, struct ckpt_error *e)
{
	struct pm_group *g = arg;

	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 1024;
		struct pmscan_region *nv = realloc(g->v, cap * sizeof(*nv));

		if (!nv)
			return ckpt_err(e, -ENOMEM, "out of memory");
		g->v = nv;
		g->cap = cap;
	}
	g->v[g->n++] = *rg;
	return 0;
}

/* The upper half of a walk split in two (pmscan_walk_split), on its own thread. */
struct half_walk {
	pid_t pid;
	int pmfd;
	uint64_t start, end, anyof, ret_mask;
	struct pm_group regions;
	int r;
	struct ckpt_error e;
};

static void *half_walk_main(void *arg)
{
	struct half_walk *h = arg;

	h->r = pmscan_walk(h->pid, h->pmfd, h->start, h->end, h->anyof, h->ret_mask, group_add,
			   &h->regions, &h->e);
	return NULL;
}

/*
 * pmscan_walk, for a span of WALK_SPLIT or more in two halves at once: the
 * upper one on a thread of its own into a vector, handed to fn after the
 * lower half's regions, in order. The walk of the page tables is the
 * kernel's, 3-4 ms per 2 GiB here, and in the freeze the tree leaves both
 * CPUs to the dump. CKPT_FAULT=walk-split: every span of two pages or more
 * (tests, on small programs).
 */
static int pmscan_walk_split(pid_t pid, int pmfd, uint64_t start, uint64_t end, uint64_t anyof,
			     uint64_t ret_mask,
			     int (*fn)(void *arg, const struct pmscan_region *rg,
				       struct ckpt_error *e),
			     void *arg, struct ckpt_error *e)
{
	struct half_walk h = {
	    .pid = pid, .pmfd = pmfd, .end = end, .anyof = anyof, .ret_mask = ret_mask};
	uint64_t min = ckpt_fault("walk-split") ? 2 * PG_SIZE : WALK_SPLIT;
	pthread_t th;
	bool split;
	int r;

	h.start = end - start >= min ? start + (end - start) / 2 / PG_SIZE * PG_SIZE : end;
	split = h.start < end && pthread_create(&th, NULL, half_walk_main, &h) == 0;
	r = pmscan_walk(pid, pmfd, start, split ? h.start : end, anyof, ret_mask, fn, arg, e);
	if (split)
		pthread_join(th, NULL);
	if (split && r == 0 && h.r != 0) {
		if (h.r < 0)
			*e = h.e;
		r = h.r;
	}
	for (size_t i = 0; split && r == 0 && i < h.regions.n; i++)
		r = fn(arg, &h.regions.v[i], e);
	free(h.regions.v);
	return r;
}

/*
 * The pages [s, e) of a run, of one region of a walk: clean ones noted for
 * dump_incr_classify when the walk asked for their categories.
 */
static int clean_note(struct dump_task *t, uint64_t s, uint64_t end, uint64_t categories,
		      struct ckpt_error *e)
{
	struct clean_span *last = t->nclean ? &t->clean[t->nclean - 1] : NULL;

	if (!t->clean_known || !pmscan_is_clean(categories))
		return 0;
	if (last && last->end == s) {
		last->end = end;
		return 0;
	}
	if (t->nclean == t->clean_cap) {
		size_t cap = t->clean_cap ? 2 * t->clean_cap : 256;
		struct clean_span *g = realloc(t->clean, cap * sizeof(*g));

		if (!g)
			return ckpt_err(e, -ENOMEM, "out of memory");
		t->clean = g;
		t->clean_cap = cap;
	}
	t->clean[t->nclean++] = (struct clean_span){s, end};
	return 0;
}

/* Walk [start, end) into g (with the categories in clean_mask told too).
 * 0, 1 when the ioctl is not there. */
static int scan_group(pid_t pid, int pmfd, uint64_t start, uint64_t end, uint64_t clean_mask,
		      struct pm_group *g, struct ckpt_error *e)
{
	int r;

	g->n = 0;
	g->start = g->end = 0;
	r = pmscan_walk_split(pid, pmfd, start, end, PMSCAN_IS_PRESENT | PMSCAN_IS_SWAPPED,
			      PMSCAN_IS_PRESENT | PMSCAN_IS_SWAPPED | clean_mask, group_add, g, e);
	if (r != 0)
		return r;
	g->start = start;
	g->end = end;
	pr_debug("pid %d: areas %" PRIx64 "-%" PRIx64 " walked in one PAGEMAP_SCAN: %zu regions", pid,
		 start, end, g->n);
	return 0;
}

/* The regions of g within vma (inside g's span), as scan_vma_pages adds them. */
static int group_vma_pages(struct run_acc *a, const struct pm_group *g, const Vma *vma,
			   struct ckpt_error *e)
{
	size_t lo = 0, hi = g->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g->v[mid].end <= vma->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < g->n && g->v[i].start < vma->end; i++) {
		uint64_t s = g->v[i].start > vma->start ? g->v[i].start : vma->start;
		uint64_t end = g->v[i].end < vma->end ? g->v[i].end : vma->end;
		int r;

		if (s >= end)
			continue;
		r = run_add(a, s, (end - s) / PG_SIZE, e);
		if (r >= 0)
			r = clean_note(a->t, s, end, g->v[i].categories, e);
		if (r < 0)
			return r;
	}
	return 0;
}

struct vma_walk {
	struct run_acc *a;
	const Vma *vma;
	bool file;
};

static int vma_region(void *arg, const struct pmscan_region *rg, struct ckpt_error *e)
{
	struct vma_walk *w = arg;
	uint64_t c = rg->categories;
	int r;

	if (c & PMSCAN_IS_GUARD)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: area %" PRIx64 "-%" PRIx64 ": guard pages at %" PRIx64
				"-%" PRIx64 " (MADV_GUARD_INSTALL) are not supported yet",
				w->a->t->pid, w->vma->start, w->vma->end, rg->start, rg->end);
	if (!page_kept(w->file, c & PMSCAN_IS_PRESENT, c & PMSCAN_IS_SWAPPED, c & PMSCAN_IS_FILE))
		return 0;
	r = run_add(w->a, rg->start, (rg->end - rg->start) / PG_SIZE, e);
	return r < 0 ? r : clean_note(w->a->t, rg->start, rg->end, c, e);
}

/* The pages of one area (pmscan_walk). 0 when done, 1 when the ioctl is not there. */
static int scan_vma_pages(struct run_acc *a, int pmfd, const Vma *vma, bool file,
			  struct ckpt_error *e)
{
	struct vma_walk w = {.a = a, .vma = vma, .file = file};
	/* IS_FILE only where page_kept asks: the kernel looks up each present
	 * page's struct page for it, which made the scan of 2 GiB of
	 * anonymous memory 4x slower (12 ms against 3 here) */
	uint64_t anyof = PMSCAN_IS_PRESENT | PMSCAN_IS_SWAPPED,
		 ret_mask = PMSCAN_IS_PRESENT | PMSCAN_IS_SWAPPED | (file ? PMSCAN_IS_FILE : 0) |
			    (a->t->clean_known ? PMSCAN_CLEAN_MASK : 0);

	/* "gu": guard regions (MADV_GUARD_INSTALL) may have been installed */
	if (vma_vmflag(vma, "gu")) {
		anyof |= PMSCAN_IS_GUARD;
		ret_mask |= PMSCAN_IS_GUARD;
	}
	return pmscan_walk_split(a->t->pid, pmfd, vma->start, vma->end, anyof, ret_mask, vma_region,
				 &w, e);
}

/* The same from pagemap words, 8 bytes read per page of the area. */
static int read_vma_pages(struct run_acc *a, int pmfd, const Vma *vma, bool file, uint64_t *pm,
			  struct ckpt_error *e)
{
	uint64_t npages = (vma->end - vma->start) / PG_SIZE;

	for (uint64_t off = 0; off < npages; off += PM_CHUNK) {
		uint64_t n = npages - off < PM_CHUNK ? npages - off : PM_CHUNK;
		uint64_t first = vma->start / PG_SIZE + off;
		ssize_t got = pread(pmfd, pm, n * 8, (off_t)(first * 8));

		if (got != (ssize_t)(n * 8))
			return ckpt_err_errno(e, got < 0 ? -errno : -EIO,
					      "pid %d: reading /proc/%d/pagemap at %" PRIx64,
					      a->t->pid, a->t->pid, first * PG_SIZE);
		for (uint64_t i = 0, j; i < n; i = j) {
			int r;

			/* consecutive pages kept, one run_add (which may read the words again) */
			for (j = i; j < n && page_kept(file, pm[j] & PM_PRESENT, pm[j] & PM_SWAP,
						       pm[j] & PM_FILE);
			     j++)
				;
			if (j == i) {
				j++;
				continue;
			}
			r = run_add(a, (first + i) * PG_SIZE, j - i, e);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* The parts of the area the parent has in an area it can be a fork of. */
static int add_win(struct cow_win **v, size_t *n, const struct cow_win *w, struct ckpt_error *e)
{
	struct cow_win *g = realloc(*v, (*n + 1) * sizeof(**v));

	if (!g)
		return ckpt_err(e, -ENOMEM, "out of memory");
	*v = g;
	g[(*n)++] = *w;
	return 0;
}

/*
 * The parts of the area the parent has in an area it can be a fork of, and
 * those where it has no area at all (orphan: shared with siblings only).
 */
static int cow_windows(struct cow_src *cs, const Vma *vma, struct cow_win **ret, size_t *ret_n,
		       struct ckpt_error *e)
{
	const MmEntry *pmm = cs && cs->ppmfd >= 0 ? cs->parent->mm : NULL;
	_cleanup_free_ struct cow_win *v = NULL;
	uint64_t at = vma->start; /* parts before it are placed */
	size_t n = 0;
	int r = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!pmm || !vma_kind_has_pages(vma->kind) || !(vma->flags & MAP_PRIVATE))
		return 0;
	for (size_t i = 0; r >= 0 && i <= pmm->n_vmas && at < vma->end; i++) {
		const Vma *p = i < pmm->n_vmas ? pmm->vmas[i] : NULL;
		uint64_t ps = p ? p->start : vma->end, pe = p ? p->end : vma->end;

		if (pe <= at)
			continue;
		if (ps > at)
			r = add_win(
			    &v, &n,
			    &(struct cow_win){at, ps < vma->end ? ps : vma->end, false, true}, e);
		if (r >= 0 && p && ps < vma->end && vma_cow_compatible(vma, p))
			r = add_win(&v, &n,
				    &(struct cow_win){
					.start = ps > vma->start ? ps : vma->start,
					.end = pe < vma->end ? pe : vma->end,
					.parent_file = private_file(p),
				    },
				    e);
		at = pe;
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

static int scan_vma(struct dump_task *t, int pmfd, const Vma *vma, uint64_t *pm, struct cow_src *cs,
		    const struct pm_group *g, struct ckpt_error *e)
{
	bool file = private_file(vma);
	_cleanup_free_ struct cow_win *win = NULL;
	struct run_acc a = {.t = t, .cow = cs, .vma = vma};
	int r;

	r = cow_windows(cs, vma, &win, &a.nwin, e);
	if (r < 0)
		return r;
	a.win = win;
	if (g->end && vma->start >= g->start && vma->end <= g->end)
		r = group_vma_pages(&a, g, vma, e);
	else
		r = scan_vma_pages(&a, pmfd, vma, file, e);
	if (r > 0) {
		/* no categories: dump_incr_classify asks for them itself */
		t->clean_known = false;
		r = read_vma_pages(&a, pmfd, vma, file, pm, e);
	}
	if (r < 0)
		return r;
	return run_flush(&a, e);
}

/* ---- content of shared memory objects --------------------------------------------- */

/*
 * Which pages of the task are saved, and which of them it shares with its
 * parent (t->runs). For every task before any page of any task is copied:
 * reading a page with process_vm_readv pins it, and pinning an anonymous
 * page shared copy-on-write makes the kernel give the task a copy of its
 * own (so a parent read first would no longer share anything).
 */
int dump_task_scan(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e)
{
	_cleanup_free_ uint64_t *pm = NULL;
	_cleanup_close_ int pmfd = -1, ppmfd = -1;
	_cleanup_free_ uint64_t *cow_words = NULL;
	_cleanup_free_ pid_t *cls = NULL;
	struct cow_src cs = {.ppmfd = -1};
	_cleanup_(pm_group_release) struct pm_group g = {0};
	char path[64];
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", t->pid);
	pmfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pmfd < 0)
		return ckpt_err_errno(e, -errno, "opening %s", path);
	pm = malloc(PM_CHUNK * sizeof(*pm));
	if (!pm)
		return ckpt_err(e, -ENOMEM, "out of memory");
	/* the parent (frozen too, its layout collected): pages shared since a fork */
	cs.parent = t->ppid ? dump_find_task(c, t->ppid) : NULL;
	if (cs.parent && cs.parent->mm) {
		struct dump_task *pt = dump_find_task(c, t->ppid);

		if (!pt->sib && !(pt->sib = calloc(1, sizeof(*pt->sib))))
			return ckpt_err(e, -ENOMEM, "out of memory");
		cs.sib = pt->sib;
		snprintf(path, sizeof(path), "/proc/%d/pagemap", cs.parent->pid);
		ppmfd = open(path, O_RDONLY | O_CLOEXEC);
		if (ppmfd < 0)
			return ckpt_err_errno(e, -errno, "opening %s", path);
		cow_words = malloc(2 * PM_CHUNK * sizeof(*cow_words));
		cls = malloc(PM_CHUNK * sizeof(*cls));
		if (!cow_words || !cls)
			return ckpt_err(e, -ENOMEM, "out of memory");
		cs.cls = cls;
		cs.c = c;
		cs.pmfd = pmfd;
		cs.ppmfd = ppmfd;
		cs.wc = cow_words;
		cs.wp = cow_words + PM_CHUNK;
	}
	t->nruns = 0;
	/* an incremental dump classifies the pages by categories this walk can tell */
	t->nclean = 0;
	t->clean_known = c->incr && c->opts->parent;
	for (size_t i = 0; r >= 0 && i < t->mm->n_vmas; i++) {
		const Vma *vma = t->mm->vmas[i];
		size_t k = i;

		/* a run of anonymous areas not walked yet: one walk for them all */
		while (!g.unavailable && !(g.end && vma->start < g.end) && k < t->mm->n_vmas &&
		       groupable(t->mm->vmas[k]))
			k++;
		if (k - i >= PM_GROUP_MIN) {
			r = scan_group(t->pid, pmfd, vma->start, t->mm->vmas[k - 1]->end,
				       t->clean_known ? PMSCAN_CLEAN_MASK : 0, &g, e);
			/* no PAGEMAP_SCAN: each area on its own, pagemap read */
			g.unavailable = r > 0;
			r = r > 0 ? 0 : r;
		}
		/* errors name the pid and the address already */
		if (r >= 0 && vma_kind_has_pages(vma->kind))
			r = scan_vma(t, pmfd, vma, pm, &cs, &g, e);
	}
	if (r >= 0)
		pr_debug("pid %d: %zu runs of pages, %" PRIu64
			 " pages inherited from its parent (%" PRIu64 " of them as a sibling's)",
			 t->pid, t->nruns, cs.inherited, cs.from_sibling);
	return r;
}
