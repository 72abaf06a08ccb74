/* SPDX-License-Identifier: MIT */
/*
 * Image files (lib/image.c, lib/image_dir.c): CRC32C, the kind table,
 * write/read round trips of every kind, pages images, inventory commit and
 * verification, and for every kind that a corrupted or truncated file is
 * refused with an error naming it. Each test runs in its own temporary
 * directory (CK_FORK), unprivileged.
 *
 * CKPT_WRITE_GOLDEN=DIR makes test_golden write the golden directory instead
 * of checking it (tests/data/images/v1 was made that way).
 */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "image.h"

#include "core.pb-c.h"
#include "files.pb-c.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"

#define PG 4096
#define SAMPLE_PAGES 8
#define MAX_MSGS 4

/* --- fixture: a fresh temporary directory per test ------------------------- */

/*
 * The parent makes one base directory (unchecked fixture) and removes it at
 * the end, because a failed check ends the forked test without its teardown.
 */
static char base_dir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void base_setup(void)
{
	strcpy(base_dir, "/tmp/check_image.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base_dir));
}

static void base_teardown(void)
{
	nftw(base_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
	char dir[96];

	unsetenv("CKPT_FAULT"); /* only test_fault_steps sets it */
	snprintf(dir, sizeof(dir), "%s/XXXXXX", base_dir);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chdir(dir), 0);
}

/* --- sample messages --------------------------------------------------------- */

/* Every message of one task, with storage for what they point to. */
struct task_sample {
	int pid, ppid;
	PstreeEntry pstree;
	int32_t threads[2];

	CoreEntry core;
	UserRegs regs;
	ThreadCore th[2], *thp[2];
	RseqConfig rseq;
	Creds creds;
	uint32_t groups[3];
	Rlimit rl[2], *rlp[2];
	SigAction sa, *sap[1];
	unsigned char siginfo[128], xstate[512];
	ProtobufCBinaryData pending[1], shared_pending[2];

	MmEntry mm;
	Vma vma[3], *vmap[3];
	uint64_t auxv[6];

	PagemapEntry pm[3];
	FdEntry fd[3];
};

struct sample {
	int ntasks;
	struct task_sample t[2];
	FileEntry file[2];
	FileIdent ident;
};

static void sample_core(struct task_sample *t)
{
	CoreEntry *c = &t->core;

	core_entry__init(c);
	c->pid = t->pid;
	c->comm = "sle\"ep\n\x01";
	c->has_personality = true;
	c->personality = 0x0400000;
	c->umask = 022;
	c->has_stopped = true;
	c->stopped = false;
	c->cwd = "/tmp/w\xc3\xa9rk \xff";
	c->root = "/";
	creds__init(&t->creds);
	t->creds.uid = t->creds.euid = t->creds.suid = t->creds.fsuid = 1000;
	t->creds.gid = t->creds.egid = t->creds.sgid = t->creds.fsgid = 100;
	t->groups[0] = 4, t->groups[1] = 24, t->groups[2] = 27;
	t->creds.n_groups = 3;
	t->creds.groups = t->groups;
	t->creds.cap_bnd = 0x1ffffffffffull;
	t->creds.has_no_new_privs = true;
	t->creds.no_new_privs = true;
	c->creds = &t->creds;
	for (int i = 0; i < 2; i++) {
		rlimit__init(&t->rl[i]);
		t->rl[i].resource = 7 - i;
		t->rl[i].cur = 1024 << i;
		t->rl[i].max = ~0ull;
		t->rlp[i] = &t->rl[i];
	}
	c->n_rlimits = 2;
	c->rlimits = t->rlp;
	sig_action__init(&t->sa);
	t->sa.sig = 15;
	t->sa.handler = 0x401234;
	t->sa.flags = 0x04000000;
	t->sa.restorer = 0x7f0000001000ull;
	t->sa.mask = 1ull << 9;
	t->sap[0] = &t->sa;
	c->n_sigactions = 1;
	c->sigactions = t->sap;
	for (size_t i = 0; i < sizeof(t->siginfo); i++)
		t->siginfo[i] = i * 3 + t->pid;
	for (size_t i = 0; i < sizeof(t->xstate); i++)
		t->xstate[i] = i ^ 0x5a;
	t->pending[0] = (ProtobufCBinaryData){sizeof(t->siginfo), t->siginfo};
	t->shared_pending[0] = t->pending[0];
	t->shared_pending[1] = (ProtobufCBinaryData){4, t->siginfo + 8};
	c->n_shared_pending = 2;
	c->shared_pending = t->shared_pending;
	user_regs__init(&t->regs);
	t->regs.rip = 0x7fffdeadbeefull;
	t->regs.rax = (uint64_t)-512;
	t->regs.orig_rax = 230;
	t->regs.rsp = 0x7ffc00000000ull;
	t->regs.eflags = 0x246;
	rseq_config__init(&t->rseq);
	t->rseq.abi_pointer = 0x7f00000020e0ull;
	t->rseq.abi_size = 32;
	t->rseq.signature = 0x53053053;
	for (int i = 0; i < 2; i++) {
		thread_core__init(&t->th[i]);
		t->th[i].tid = t->pid + i;
		t->th[i].regs = &t->regs;
		t->th[i].xstate = (ProtobufCBinaryData){sizeof(t->xstate), t->xstate};
		t->th[i].blocked = 0x10000 << i;
		t->thp[i] = &t->th[i];
	}
	t->th[0].rseq = &t->rseq;
	t->th[1].n_pending = 1;
	t->th[1].pending = t->pending;
	c->n_threads = 2;
	c->threads = t->thp;
}

static void sample_mm(struct task_sample *t)
{
	MmEntry *m = &t->mm;
	static const VmaKind kinds[3] = {VMA_KIND__VMA_FILE_PRIVATE, VMA_KIND__VMA_HEAP,
					 VMA_KIND__VMA_VDSO};

	mm_entry__init(m);
	m->start_code = 0x400000;
	m->end_code = 0x401000;
	m->start_brk = 0x1000000;
	m->brk = 0x1021000;
	m->start_stack = 0x7ffc00001000ull;
	m->arg_start = 0x7ffc00002000ull;
	m->env_end = ~0ull;
	for (int i = 0; i < 6; i++)
		t->auxv[i] = i * 1000 + t->pid;
	m->n_auxv = 6;
	m->auxv = t->auxv;
	m->has_exe_file_id = true;
	m->exe_file_id = 1;
	for (int i = 0; i < 3; i++) {
		vma__init(&t->vma[i]);
		t->vma[i].start = 0x400000 + i * 0x100000;
		t->vma[i].end = t->vma[i].start + 0x3000;
		t->vma[i].prot = 5;
		t->vma[i].flags = 2;
		t->vma[i].kind = kinds[i];
		t->vmap[i] = &t->vma[i];
	}
	t->vma[0].has_pgoff = true;
	t->vma[0].pgoff = 0x2000;
	t->vma[0].has_file_id = true;
	t->vma[0].file_id = 1;
	t->vma[1].vmflags = "rd wr mr mw me ac";
	m->n_vmas = 3;
	m->vmas = t->vmap;
}

static void sample_task(struct task_sample *t, int pid, int ppid)
{
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->ppid = ppid;
	pstree_entry__init(&t->pstree);
	t->pstree.pid = pid;
	t->pstree.ppid = ppid;
	t->pstree.pgid = t->pstree.sid = ppid ? ppid : pid;
	t->threads[0] = pid;
	t->threads[1] = pid + 1;
	t->pstree.n_threads = 2;
	t->pstree.threads = t->threads;
	sample_core(t);
	sample_mm(t);
	for (int i = 0; i < 3; i++) {
		pagemap_entry__init(&t->pm[i]);
		t->pm[i].vaddr = 0x400000ull + i * 0x100000;
		t->pm[i].nr_pages = i + 1;
		fd_entry__init(&t->fd[i]);
		t->fd[i].fd = i * 7;
		t->fd[i].kind = FD_KIND__FD_FILE;
		t->fd[i].id = i % 2 + 1;
		t->fd[i].has_cloexec = i == 1;
		t->fd[i].cloexec = i == 1;
	}
}

static void sample_init(struct sample *s, int ntasks)
{
	memset(s, 0, sizeof(*s));
	s->ntasks = ntasks;
	sample_task(&s->t[0], 100, 0);
	sample_task(&s->t[1], 205, 100);
	file_ident__init(&s->ident);
	s->ident.size = 123456;
	s->ident.mtime_ns = 1700000000123456789ull;
	s->ident.has_content_crc32c = true;
	s->ident.content_crc32c = 0xdeadbeef;
	for (int i = 0; i < 2; i++) {
		file_entry__init(&s->file[i]);
		s->file[i].id = i + 1;
		s->file[i].type = i ? FILE_TYPE__FILE_CHR : FILE_TYPE__FILE_REG;
		s->file[i].path = i ? "/dev/null" : "/usr/bin/sleep";
		s->file[i].has_flags = true;
		s->file[i].flags = 02;
		s->file[i].has_pos = true;
		s->file[i].pos = 4096 * i;
	}
	s->file[0].ident = &s->ident;
	s->file[0].has_mapping_only = true;
	s->file[0].mapping_only = true;
}

/* The records of one image of the sample; returns their count. */
static size_t sample_msgs(struct sample *s, enum img_kind kind, int task,
			  const ProtobufCMessage **out)
{
	struct task_sample *t = &s->t[task];
	size_t n = 0;

	switch (kind) {
	case IMG_PSTREE:
		for (int i = 0; i < s->ntasks; i++)
			out[n++] = &s->t[i].pstree.base;
		break;
	case IMG_CORE:
		out[n++] = &t->core.base;
		break;
	case IMG_MM:
		out[n++] = &t->mm.base;
		break;
	case IMG_PAGEMAP:
		for (int i = 0; i < 3; i++)
			out[n++] = &t->pm[i].base;
		break;
	case IMG_FILES:
		out[n++] = &s->file[0].base;
		out[n++] = &s->file[1].base;
		break;
	case IMG_FDS:
		for (int i = 0; i < 3; i++)
			out[n++] = &t->fd[i].base;
		break;
	default:
		break;
	}
	return n;
}

static void fill_page(unsigned char *p, int pid, size_t pageno)
{
	for (size_t i = 0; i < PG; i++)
		p[i] = (unsigned char)(pid + pageno * 31 + i * 7);
}

static void write_msgs(struct img_dir *d, enum img_kind kind, int pid,
		       const ProtobufCMessage **msgs, size_t n)
{
	struct ckpt_error e = {0};
	struct img *img = NULL;

	ck_assert_int_eq(img_create(d, kind, pid, &img, &e), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(img_write_msg(img, msgs[i], &e) == 0, "%s", e.msg);
	ck_assert_msg(img_close_write(img, &e) == 0, "%s", e.msg);
}

static void write_pages(struct img_dir *d, int pid, size_t npages)
{
	struct ckpt_error e = {0};
	struct img *img = NULL;
	_cleanup_free_ unsigned char *buf = malloc(npages * PG);

	for (size_t i = 0; i < npages; i++)
		fill_page(buf + i * PG, pid, i);
	ck_assert_int_eq(img_create(d, IMG_PAGES, pid, &img, &e), 0);
	/* in two calls: data is appended page aligned */
	ck_assert_msg(img_write_pages(img, buf, PG, &e) == 0, "%s", e.msg);
	ck_assert_msg(img_write_pages(img, buf + PG, (npages - 1) * PG, &e) == 0, "%s", e.msg);
	ck_assert_msg(img_close_write(img, &e) == 0, "%s", e.msg);
}

/* Write the whole sample as a committed checkpoint at path. */
static void write_sample_dir(struct sample *s, const char *path, size_t npages)
{
	const ProtobufCMessage *msgs[MAX_MSGS];
	static const enum img_kind task_kinds[] = {IMG_CORE, IMG_MM, IMG_PAGEMAP, IMG_FDS};
	Inventory inv = INVENTORY__INIT;
	struct ckpt_error e = {0};
	struct img_dir *d = NULL;

	ck_assert_msg(img_dir_create(path, &d, &e) == 0, "%s", e.msg);
	write_msgs(d, IMG_PSTREE, 0, msgs, sample_msgs(s, IMG_PSTREE, 0, msgs));
	write_msgs(d, IMG_FILES, 0, msgs, sample_msgs(s, IMG_FILES, 0, msgs));
	for (int i = 0; i < s->ntasks; i++) {
		for (size_t k = 0; k < ARRAY_SIZE(task_kinds); k++)
			write_msgs(d, task_kinds[k], s->t[i].pid, msgs,
				   sample_msgs(s, task_kinds[k], i, msgs));
		write_pages(d, s->t[i].pid, npages);
	}
	inv.root_pid = s->t[0].pid;
	inv.has_ntasks = true;
	inv.ntasks = s->ntasks;
	ck_assert_msg(img_dir_commit(d, &inv, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(inv.n_images, 2 + 5 * s->ntasks);
	img_dir_free(d);
}

static void assert_msg_equal(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	size_t la = protobuf_c_message_get_packed_size(a);
	size_t lb = protobuf_c_message_get_packed_size(b);
	_cleanup_free_ uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);

	ck_assert_ptr_eq(a->descriptor, b->descriptor);
	ck_assert_uint_eq(la, lb);
	protobuf_c_message_pack(a, pa);
	protobuf_c_message_pack(b, pb);
	ck_assert_msg(memcmp(pa, pb, la) == 0, "%s differs after the round trip",
		      a->descriptor->name);
}

/* Read every record of an image and compare with the expected messages. */
static void check_msgs(int dirfd, enum img_kind kind, int pid, const ProtobufCMessage **want,
		       size_t n)
{
	struct ckpt_error e = {0};
	_cleanup_img_ struct img *img = NULL;
	ProtobufCMessage *m;

	ck_assert_msg(img_open(dirfd, kind, pid, &img, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(img_get_kind(img), kind);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(img_read_msg(img, &m, &e) == 1, "%s", e.msg);
		assert_msg_equal(want[i], m);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	ck_assert_int_eq(img_read_msg(img, &m, &e), 0);
	ck_assert_ptr_null(m);
	/* still at a clean end */
	ck_assert_int_eq(img_read_msg(img, &m, &e), 0);
}

static void check_pages(int dirfd, int pid, size_t npages)
{
	struct ckpt_error e = {0};
	_cleanup_img_ struct img *img = NULL;
	unsigned char got[PG], want[PG];

	ck_assert_msg(img_open(dirfd, IMG_PAGES, pid, &img, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(img_pages_data_size(img), npages * PG);
	for (size_t i = 0; i < npages; i++) {
		fill_page(want, pid, i);
		ck_assert_int_eq(pread(img_fd(img), got, PG, IMG_PAGES_DATA_OFFSET + i * PG), PG);
		ck_assert_msg(memcmp(got, want, PG) == 0, "page %zu differs", i);
	}
	ck_assert_int_eq(pread(img_fd(img), got, PG, IMG_PAGES_DATA_OFFSET + npages * PG), 0);
}

/* Check that the whole sample reads back from dirfd. */
static void check_sample_dir(struct sample *s, int dirfd, size_t npages)
{
	const ProtobufCMessage *msgs[MAX_MSGS];
	static const enum img_kind task_kinds[] = {IMG_CORE, IMG_MM, IMG_PAGEMAP, IMG_FDS};

	check_msgs(dirfd, IMG_PSTREE, 0, msgs, sample_msgs(s, IMG_PSTREE, 0, msgs));
	check_msgs(dirfd, IMG_FILES, 0, msgs, sample_msgs(s, IMG_FILES, 0, msgs));
	for (int i = 0; i < s->ntasks; i++) {
		for (size_t k = 0; k < ARRAY_SIZE(task_kinds); k++)
			check_msgs(dirfd, task_kinds[k], s->t[i].pid, msgs,
				   sample_msgs(s, task_kinds[k], i, msgs));
		check_pages(dirfd, s->t[i].pid, npages);
	}
}

/* --- file surgery ---------------------------------------------------------- */

static size_t file_size(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

static void patch(const char *path, size_t off, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, data, len, off), (ssize_t)len);
	close(fd);
}

static void patch_le32(const char *path, size_t off, uint32_t v)
{
	unsigned char b[4] = {v, v >> 8, v >> 16, v >> 24};

	patch(path, off, b, 4);
}

static void flip_byte(const char *path, size_t off)
{
	unsigned char b;
	int fd = open(path, O_RDWR);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, off), 1);
	b ^= 0x55;
	ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void file_crc(const char *path, uint64_t *size, uint32_t *crc)
{
	size_t n = file_size(path);
	_cleanup_free_ unsigned char *buf = malloc(n + 1);
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, n), (ssize_t)n);
	close(fd);
	*size = n;
	*crc = crc32c(0, buf, n);
}

/* Write inventory.img by hand: header, one record. */
static void write_inventory(const char *dir, const Inventory *inv)
{
	size_t len = inventory__get_packed_size(inv);
	_cleanup_free_ unsigned char *buf = malloc(IMG_HEADER_SIZE + 4 + len);
	const struct img_kind_desc *kd = img_kind_desc(IMG_INVENTORY);
	uint32_t words[5] = {kd->magic, IMG_FORMAT_VERSION, IMG_INVENTORY, 0, len};
	char path[256];

	memcpy(buf, words, sizeof(words)); /* x86: little endian */
	inventory__pack(inv, buf + sizeof(words));
	snprintf(path, sizeof(path), "%s/inventory.img", dir);
	write_file(path, buf, sizeof(words) + len);
}

static Inventory *read_inventory(const char *dir)
{
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	_cleanup_img_ struct img *img = NULL;
	struct ckpt_error e = {0};
	ProtobufCMessage *m = NULL;

	ck_assert_msg(img_open(dirfd, IMG_INVENTORY, 0, &img, &e) == 0, "%s", e.msg);
	ck_assert_msg(img_read_one(img, &m, &e) == 0, "%s", e.msg);
	return (Inventory *)m;
}

/* Recompute every size and checksum of the inventory, as a forger would. */
static void fix_inventory(const char *dir)
{
	Inventory *inv = read_inventory(dir);
	char path[256];

	for (size_t i = 0; i < inv->n_images; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, inv->images[i]->name);
		file_crc(path, &inv->images[i]->size, &inv->images[i]->crc32c);
	}
	write_inventory(dir, inv);
	inventory__free_unpacked(inv, NULL);
}

static int verify_dir(const char *dir, struct ckpt_error *e)
{
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	Inventory *inv = NULL;
	int r;

	ck_assert_int_ge(dirfd, 0);
	r = img_dir_verify_fd(dirfd, dir, &inv, e);
	if (r == 0)
		inventory__free_unpacked(inv, NULL);
	return r;
}

/* Open an image by name and read all of it, as the restorer would. */
static int read_all(const char *dir, const char *name, struct ckpt_error *e)
{
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	_cleanup_img_ struct img *img = NULL;
	ProtobufCMessage *m;
	int r;

	r = img_open_name(dirfd, name, &img, e);
	if (r < 0 || img_get_kind(img) == IMG_PAGES)
		return r;
	while ((r = img_read_msg(img, &m, e)) == 1)
		protobuf_c_message_free_unpacked(m, NULL);
	return r;
}

/*
 * After a forged inventory, verification passes for the images it only
 * checksums, and fails naming the file for the three it also reads: the
 * inventory, pstree.img and a pages image (its header says its parts).
 */
#define expect_verify(dir, kind, needle)                                                           \
	do {                                                                                       \
		struct ckpt_error ve = {0};                                                        \
		int vr = verify_dir(dir, &ve);                                                     \
                                                                                                   \
		if ((kind) == IMG_INVENTORY || (kind) == IMG_PSTREE || (kind) == IMG_PAGES) {      \
			ck_assert_int_lt(vr, 0);                                                   \
			assert_err_has(&ve, corrupt_files[kind], needle);                          \
		} else {                                                                           \
			ck_assert_msg(vr == 0, "%s", ve.msg);                                      \
		}                                                                                  \
	} while (0)

#define assert_err_has(e, a, b)                                                                    \
	do {                                                                                       \
		ck_assert_msg((e)->code < 0, "no error code set");                                 \
		ck_assert_msg(strstr((e)->msg, a) && strstr((e)->msg, b),                          \
			      "error \"%s\" should mention \"%s\" and \"%s\"", (e)->msg, a, b);    \
	} while (0)

/* --- CRC32C ------------------------------------------------------------------ */

static uint32_t crc32c_bitwise(uint32_t crc, const unsigned char *p, size_t n)
{
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return ~crc;
}

START_TEST(test_crc32c_vectors)
{
	unsigned char buf[32];

	ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283);
	ck_assert_uint_eq(crc32c_table(0, "123456789", 9), 0xE3069283);
	ck_assert_uint_eq(crc32c(0, "", 0), 0);
	/* RFC 3720 B.4 */
	memset(buf, 0, sizeof(buf));
	ck_assert_uint_eq(crc32c(0, buf, 32), 0x8A9136AA);
	memset(buf, 0xff, sizeof(buf));
	ck_assert_uint_eq(crc32c(0, buf, 32), 0x62A8AB43);
	for (int i = 0; i < 32; i++)
		buf[i] = i;
	ck_assert_uint_eq(crc32c(0, buf, 32), 0x46DD794E);
	for (int i = 0; i < 32; i++)
		buf[i] = 31 - i;
	ck_assert_uint_eq(crc32c(0, buf, 32), 0x113FDB5C);
	/* chaining */
	ck_assert_uint_eq(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283);
}
END_TEST

START_TEST(test_crc32c_paths_agree)
{
	/* lengths around the three-lane block (3 x 4096), the folding path's
	 * steps (64 and 256 bytes) and its threshold (512), odd alignments */
	static const size_t lens[] = {0,     1,	    7,	   8,	  9,	 63,	255,   256,
				      257,   511,   512,   513,	  575,	 576,	577,   639,
				      767,   768,   1023,  1024,  1087,	 4095,	4096,  4097,
				      12287, 12288, 12289, 12295, 24576, 40000, 65536, 100003};
	size_t max = 100003 + 16;
	_cleanup_free_ unsigned char *buf = malloc(max);
	unsigned seed = 12345;

	for (size_t i = 0; i < max; i++) {
		seed = seed * 1103515245 + 12345;
		buf[i] = seed >> 16;
	}
	for (size_t l = 0; l < ARRAY_SIZE(lens); l++) {
		for (size_t off = 0; off < 9; off++) {
			uint32_t want = crc32c_bitwise(0, buf + off, lens[l]);
			size_t cut = lens[l] / 3;

			ck_assert_uint_eq(crc32c(0, buf + off, lens[l]), want);
			ck_assert_uint_eq(crc32c(0x9e3779b9, buf + off, lens[l]),
					  crc32c_bitwise(0x9e3779b9, buf + off, lens[l]));
			ck_assert_uint_eq(crc32c_table(0, buf + off, lens[l]), want);
			ck_assert_uint_eq(crc32c_sse42(0, buf + off, lens[l]), want);
			ck_assert_uint_eq(
			    crc32c(crc32c(0, buf + off, cut), buf + off + cut, lens[l] - cut),
			    want);
		}
	}
	/* the folding path is the one under test where the CPU has it */
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("vpclmulqdq"))
		ck_assert_str_eq(crc32c_impl(), "vpclmulqdq");
}
END_TEST

/* A page checksummed ahead extends any running checksum as if read again. */
START_TEST(test_crc32c_extend_page)
{
	_cleanup_free_ unsigned char *buf = malloc(5 * 4096);
	uint32_t crc = 0, want;

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < 5 * 4096; i++)
		buf[i] = (unsigned char)(i * 2654435761u >> 13);
	want = crc32c(0, buf, 5 * 4096);
	for (int p = 0; p < 5; p++)
		crc = crc32c_extend_page(crc, crc32c(0, buf + p * 4096, 4096));
	ck_assert_uint_eq(crc, want);
	/* after bytes that are not whole pages, and from a page of zeros */
	crc = crc32c_extend_page(crc32c(0, "123456789", 9), crc32c(0, buf, 4096));
	ck_assert_uint_eq(crc, crc32c(crc32c(0, "123456789", 9), buf, 4096));
	memset(buf, 0, 4096);
	ck_assert_uint_eq(crc32c_extend_page(0xdeadbeef, crc32c(0, buf, 4096)),
			  crc32c(0xdeadbeef, buf, 4096));
}
END_TEST

/* --- kind table and names ------------------------------------------------------ */

START_TEST(test_kind_table)
{
	static const struct {
		const char *name;
		enum img_kind kind;
		int pid;
	} good[] = {
	    {"inventory.img", IMG_INVENTORY, 0},
	    {"pstree.img", IMG_PSTREE, 0},
	    {"core-12.img", IMG_CORE, 12},
	    {"mm-1.img", IMG_MM, 1},
	    {"pagemap-32768.img", IMG_PAGEMAP, 32768},
	    {"pages-7.img", IMG_PAGES, 7},
	    {"files.img", IMG_FILES, 0},
	    {"fds-2147483647.img", IMG_FDS, 2147483647},
	};
	static const char *const bad[] = {
	    "core-0.img",
	    "core-012.img",
	    "core-.img",
	    "core-1.imgx",
	    "core--1.img",
	    "core-+1.img",
	    "core-2147483648.img",
	    "core-1",
	    "core.img",
	    "pstree-1.img",
	    "inventory",
	    "x.img",
	    "",
	    "pages-1a.img",
	    "Core-1.img",
	    "../core-1.img",
	};
	char buf[64];
	enum img_kind kind;
	int pid;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		ck_assert_msg(img_kind_from_name(good[i].name, &kind, &pid) == 0, "%s",
			      good[i].name);
		ck_assert_int_eq(kind, good[i].kind);
		ck_assert_int_eq(pid, good[i].pid);
		img_file_name(kind, pid, buf, sizeof(buf));
		ck_assert_str_eq(buf, good[i].name);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		ck_assert_msg(img_kind_from_name(bad[i], &kind, &pid) < 0, "%s accepted", bad[i]);
	for (int k = 0; k < IMG__COUNT; k++) {
		const struct img_kind_desc *d = img_kind_desc(k);

		ck_assert_ptr_nonnull(d);
		ck_assert_int_eq(d->kind, k);
		ck_assert_int_eq(d->msg_desc == NULL, k == IMG_PAGES);
		for (int j = 0; j < k; j++)
			ck_assert_uint_ne(d->magic, img_kind_desc(j)->magic);
	}
	ck_assert_ptr_null(img_kind_desc(IMG__COUNT));
	ck_assert_ptr_null(img_kind_desc(-1));
}
END_TEST

/* --- round trips ------------------------------------------------------------------ */

/* Loop test over the record kinds: write, commit, verify, read back. */
START_TEST(test_roundtrip_kind)
{
	static const enum img_kind kinds[] = {IMG_PSTREE,  IMG_CORE,  IMG_MM,
					      IMG_PAGEMAP, IMG_FILES, IMG_FDS};
	enum img_kind kind = kinds[_i];
	const ProtobufCMessage *msgs[MAX_MSGS];
	_cleanup_free_ struct sample *s = malloc(sizeof(*s));
	struct ckpt_error e = {0};
	struct img_dir *d = NULL;
	Inventory inv = INVENTORY__INIT;
	_cleanup_close_ int dirfd = -1;
	size_t n;

	sample_init(s, 2);
	n = sample_msgs(s, kind, 1, msgs);
	ck_assert_uint_gt(n, 0);
	ck_assert_int_eq(img_dir_create("ckpt", &d, &e), 0);
	write_msgs(d, kind, s->t[1].pid, msgs, n);
	ck_assert_msg(img_dir_commit(d, &inv, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(inv.n_images, 1);
	img_dir_free(d);
	dirfd = open("ckpt", O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dirfd, 0);
	check_msgs(dirfd, kind, s->t[1].pid, msgs, n);
}
END_TEST

START_TEST(test_read_one)
{
	const ProtobufCMessage *msgs[MAX_MSGS];
	_cleanup_free_ struct sample *s = malloc(sizeof(*s));
	struct ckpt_error e = {0};
	struct img_dir *d = NULL;
	Inventory inv = INVENTORY__INIT;
	_cleanup_close_ int dirfd = -1;
	struct img *img = NULL;
	ProtobufCMessage *m = NULL;

	sample_init(s, 1);
	ck_assert_int_eq(img_dir_create("ckpt", &d, &e), 0);
	write_msgs(d, IMG_CORE, 100, msgs, sample_msgs(s, IMG_CORE, 0, msgs));
	write_msgs(d, IMG_FDS, 100, msgs, sample_msgs(s, IMG_FDS, 0, msgs));
	write_msgs(d, IMG_MM, 100, msgs, 0);
	ck_assert_int_eq(img_dir_commit(d, &inv, &e), 0);
	img_dir_free(d);
	dirfd = open("ckpt", O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(img_open(dirfd, IMG_CORE, 100, &img, &e), 0);
	ck_assert_int_eq(img_read_one(img, &m, &e), 0);
	assert_msg_equal(&s->t[0].core.base, m);
	protobuf_c_message_free_unpacked(m, NULL);
	img_close(img);
	ck_assert_int_eq(img_open(dirfd, IMG_FDS, 100, &img, &e), 0);
	ck_assert_int_lt(img_read_one(img, &m, &e), 0);
	assert_err_has(&e, "fds-100.img", "more than one");
	img_close(img);
	ck_assert_int_eq(img_open(dirfd, IMG_MM, 100, &img, &e), 0);
	ck_assert_int_lt(img_read_one(img, &m, &e), 0);
	assert_err_has(&e, "mm-100.img", "no record");
	img_close(img);
}
END_TEST

START_TEST(test_pages_roundtrip)
{
	struct ckpt_error e = {0};
	struct img_dir *d = NULL;
	struct img *img = NULL;
	Inventory inv = INVENTORY__INIT;
	PagemapEntry pm = PAGEMAP_ENTRY__INIT;
	unsigned char page[PG] = {0};
	_cleanup_close_ int dirfd = -1;
	ProtobufCMessage *m;

	ck_assert_int_eq(img_dir_create("ckpt", &d, &e), 0);
	write_pages(d, 42, SAMPLE_PAGES);
	/* misuse is refused */
	ck_assert_int_eq(img_create(d, IMG_PAGES, 43, &img, &e), 0);
	ck_assert_int_lt(img_write_pages(img, page, 100, &e), 0);
	assert_err_has(&e, "pages-43.img", "multiple");
	ck_assert_int_lt(img_write_msg(img, &pm.base, &e), 0);
	assert_err_has(&e, "pages-43.img", "no messages");
	ck_assert_uint_eq(img_pages_data_size(img), 0);
	ck_assert_int_eq(img_write_pages(img, page, PG, &e), 0);
	ck_assert_uint_eq(img_pages_data_size(img), PG);
	ck_assert_int_eq(img_close_write(img, &e), 0);
	ck_assert_int_eq(img_dir_commit(d, &inv, &e), 0);
	img_dir_free(d);

	ck_assert_uint_eq(file_size("ckpt/pages-42.img"),
			  IMG_PAGES_DATA_OFFSET + SAMPLE_PAGES * PG);
	dirfd = open("ckpt", O_RDONLY | O_DIRECTORY);
	check_pages(dirfd, 42, SAMPLE_PAGES);
	ck_assert_int_eq(img_open(dirfd, IMG_PAGES, 43, &img, &e), 0);
	ck_assert_uint_eq(img_pages_data_size(img), PG);
	ck_assert_int_lt(img_read_msg(img, &m, &e), 0);
	assert_err_has(&e, "pages-43.img", "no records");
	img_close(img);
}
END_TEST

/*
 * A pages image in parts: 3 pages, none, 2 pages, 1 page. Read back at
 * every offset and length, reads across part boundaries included, as one
 * run of data; names and headers say which part is which.
 */
START_TEST(test_pages_parts)
{
	static const unsigned npages[] = {3, 0, 2, 1};
	enum { N = 4, TOTAL = 6 };
	struct ckpt_error e = {0};
	struct img_dir *d = NULL;
	_cleanup_img_pages_ struct img_pages *p = NULL;
	Inventory inv = INVENTORY__INIT;
	unsigned char page[PG], all[TOTAL * PG], got[TOTAL * PG];
	_cleanup_close_ int dirfd = -1;
	struct img *img = NULL;
	enum img_kind kind;
	unsigned at = 0;
	int pid, fds[IMG_PAGES_PARTS_MAX];

	ck_assert_int_eq(img_dir_create("ckpt", &d, &e), 0);
	for (unsigned k = 0; k < N; k++) {
		ck_assert_int_eq(img_create_pages_part(d, 42, k, N, &img, &e), 0);
		for (unsigned i = 0; i < npages[k]; i++, at++) {
			memset(page, 'a' + at, PG);
			page[7] = (unsigned char)k;
			memcpy(all + at * PG, page, PG);
			ck_assert_int_eq(img_write_pages(img, page, PG, &e), 0);
		}
		ck_assert_int_eq(img_close_write(img, &e), 0);
	}
	ck_assert_int_lt(img_create_pages_part(d, 43, 4, 4, &img, &e), 0);
	ck_assert_int_lt(img_create_pages_part(d, 43, 0, IMG_PAGES_PARTS_MAX + 1, &img, &e), 0);
	ck_assert_int_eq(img_dir_commit(d, &inv, &e), 0);
	img_dir_free(d);

	ck_assert_uint_eq(file_size("ckpt/pages-42-2.img"), IMG_PAGES_DATA_OFFSET + 2 * PG);
	ck_assert_int_eq(img_kind_from_name("pages-42-3.img", &kind, &pid), 0);
	ck_assert_int_eq(kind, IMG_PAGES);
	ck_assert_int_eq(pid, 42);
	ck_assert_int_lt(img_kind_from_name("pages-42-16.img", &kind, &pid), 0);
	ck_assert_int_lt(img_kind_from_name("pages-42-03.img", &kind, &pid), 0);
	ck_assert_int_lt(img_kind_from_name("core-42-1.img", &kind, &pid), 0);
	dirfd = open("ckpt", O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(img_open_name(dirfd, "pages-42-2.img", &img, &e), 0);
	ck_assert_uint_eq(img_pages_nparts(img), N);
	ck_assert_uint_eq(img_pages_data_size(img), 2 * PG);
	img_close(img);

	ck_assert_int_eq(img_pages_open(dirfd, 42, &p, &e), 0);
	ck_assert_uint_eq(img_pages_size(p), TOTAL * PG);
	ck_assert_str_eq(img_pages_name(p), "pages-42.img");
	ck_assert_uint_eq(img_pages_fds(p, fds), N);
	for (unsigned off = 0; off <= TOTAL * PG; off += PG / 2)
		for (unsigned len = 0; off + len <= TOTAL * PG; len += PG / 2) {
			memset(got, 0, sizeof(got));
			ck_assert_int_eq(img_pages_read(p, got, len, off, &e), 0);
			ck_assert_mem_eq(got, all + off, len);
		}
	ck_assert_int_lt(img_pages_read(p, got, PG, 6 * PG - 1, &e), 0);
	assert_err_has(&e, "pages-42.img", "past its 24576 bytes");
	img_pages_close(TAKE_PTR(p));

	/* a part that is not where its name says, or is missing */
	ck_assert_int_eq(rename("ckpt/pages-42-2.img", "ckpt/pages-42-1.img"), 0);
	ck_assert_int_lt(img_pages_open(dirfd, 42, &p, &e), 0);
	assert_err_has(&e, "pages-42-1.img", "header says part 2, the name 1");
	ck_assert_int_lt(img_pages_open(dirfd, 43, &p, &e), 0);
	assert_err_has(&e, "pages-43.img", "cannot open");
}
END_TEST

/* Every record kind refuses a message of another type. */
START_TEST(test_write_wrong_type)
{
	struct ckpt_error e = {0};
	struct img_dir *d = NULL;
	struct img *img = NULL;
	PagemapEntry pm = PAGEMAP_ENTRY__INIT;

	ck_assert_int_eq(img_dir_create("ckpt", &d, &e), 0);
	ck_assert_int_eq(img_create(d, IMG_CORE, 5, &img, &e), 0);
	ck_assert_int_lt(img_write_msg(img, &pm.base, &e), 0);
	assert_err_has(&e, "core-5.img", "PagemapEntry");
	ck_assert_int_eq(img_close_write(img, &e), 0);
	/* the same image twice */
	ck_assert_int_lt(img_create(d, IMG_CORE, 5, &img, &e), 0);
	assert_err_has(&e, "core-5.img", "exists");
	ck_assert_int_lt(img_create(d, IMG_INVENTORY, 0, &img, &e), 0);
	ck_assert_int_lt(img_create(d, IMG_MM, 0, &img, &e), 0);
	assert_err_has(&e, "mm", "pid 0");
	img_dir_free(d);
}
END_TEST

/* --- directories: create, commit, free --------------------------------------------- */

static int count_entries(const char *path, const char *prefix)
{
	_cleanup_closedir_ DIR *dir = opendir(path);
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(dir);
	while ((de = readdir(dir)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)))
			n++;
	return n;
}

/*
 * Storage reserved ahead (img_reserve): the image created later takes the
 * file and ends at what was written, shorter or longer than reserved; one
 * never created is gone at the commit, and the directory verifies.
 */
START_TEST(test_reserve)
{
	struct ckpt_error e = {0};
	struct img_dir *d = NULL;
	struct img *img = NULL;
	Inventory inv = INVENTORY__INIT;
	unsigned char page[PG] = {0};
	_cleanup_close_ int dirfd = -1;
	struct stat st;

	ck_assert_int_eq(img_dir_create("ckpt", &d, &e), 0);
	ck_assert_msg(img_reserve(d, IMG_PAGES, 42, 4 * SAMPLE_PAGES * PG, &e) == 0, "%s", e.msg);
	ck_assert_msg(img_reserve(d, IMG_PAGES, 43, 4 * PG, &e) == 0, "%s", e.msg);
	ck_assert_msg(img_reserve(d, IMG_PAGES, 44, PG, &e) == 0, "%s", e.msg);
	/* the storage is there, written, before the image is */
	ck_assert_int_eq(fstatat(img_dir_fd(d), "pages-43.img", &st, 0), 0);
	ck_assert_uint_eq(st.st_size, IMG_PAGES_DATA_OFFSET + 4 * PG);
	ck_assert_int_lt(img_reserve(d, IMG_PAGES, 42, PG, &e), 0);
	assert_err_has(&e, "pages-42.img", "cannot create");
	ck_assert_int_lt(img_reserve(d, IMG_PAGES, 0, PG, &e), 0);
	assert_err_has(&e, "invalid pid", "0");
	/* less than reserved, and more */
	write_pages(d, 42, SAMPLE_PAGES);
	write_pages(d, 44, SAMPLE_PAGES);
	ck_assert_int_eq(img_create(d, IMG_PAGES, 45, &img, &e), 0);
	ck_assert_int_eq(img_write_pages(img, page, PG, &e), 0);
	ck_assert_int_eq(img_close_write(img, &e), 0);
	ck_assert_msg(img_dir_commit(d, &inv, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(inv.n_images, 3);
	for (size_t i = 0; i < inv.n_images; i++) {
		char path[128];

		snprintf(path, sizeof(path), "ckpt/%s", inv.images[i]->name);
		ck_assert_uint_eq(file_size(path), inv.images[i]->size);
	}
	img_dir_free(d);

	ck_assert_uint_eq(file_size("ckpt/pages-42.img"),
			  IMG_PAGES_DATA_OFFSET + SAMPLE_PAGES * PG);
	ck_assert_uint_eq(file_size("ckpt/pages-44.img"),
			  IMG_PAGES_DATA_OFFSET + SAMPLE_PAGES * PG);
	ck_assert_int_eq(access("ckpt/pages-43.img", F_OK), -1);
	dirfd = open("ckpt", O_RDONLY | O_DIRECTORY);
	check_pages(dirfd, 42, SAMPLE_PAGES);
	check_pages(dirfd, 44, SAMPLE_PAGES);

	/* a directory never committed goes, reservations and all */
	ck_assert_int_eq(img_dir_create("ckpt2", &d, &e), 0);
	ck_assert_int_eq(img_reserve(d, IMG_PAGES, 42, PG, &e), 0);
	img_dir_free(d);
	ck_assert_int_eq(count_entries(".", "ckpt2"), 0);
}
END_TEST

/*
 * Parts of a pages image reserved ahead (a final dump's lanes): each part
 * created takes its own file; a part reserved and never created is gone at
 * the commit; there is no part 16.
 */
START_TEST(test_reserve_parts)
{
	struct ckpt_error e = {0};
	struct img_dir *d = NULL;
	struct img *img = NULL;
	Inventory inv = INVENTORY__INIT;
	unsigned char page[PG];
	_cleanup_img_pages_ struct img_pages *p = NULL;
	_cleanup_close_ int dirfd = -1;
	struct stat st;

	ck_assert_int_eq(img_dir_create("ckpt", &d, &e), 0);
	for (unsigned k = 0; k < 3; k++)
		ck_assert_msg(img_reserve_pages_part(d, 46, k, 8 * PG, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(img_reserved(d, IMG_PAGES, 46), 3);
	ck_assert_uint_eq(img_reserved(d, IMG_PAGES, 47), 0);
	ck_assert_int_eq(fstatat(img_dir_fd(d), "pages-46-2.img", &st, 0), 0);
	ck_assert_uint_eq(st.st_size, IMG_PAGES_DATA_OFFSET + 8 * PG);
	ck_assert_int_lt(img_reserve_pages_part(d, 46, 1, PG, &e), 0);
	assert_err_has(&e, "pages-46-1.img", "cannot create");
	ck_assert_int_lt(img_reserve_pages_part(d, 46, IMG_PAGES_PARTS_MAX, PG, &e), 0);
	assert_err_has(&e, "pid 46", "no part 16");
	/* two parts written (the reservation's first two), the third never */
	for (unsigned k = 0; k < 2; k++) {
		ck_assert_int_eq(img_create_pages_part(d, 46, k, 2, &img, &e), 0);
		ck_assert_uint_eq(img_reserved(d, IMG_PAGES, 46), 2 - k);
		for (unsigned i = 0; i < 3 + 7 * k; i++) {
			memset(page, 'a' + (int)(k * 10 + i), PG);
			ck_assert_int_eq(img_write_pages(img, page, PG, &e), 0);
		}
		ck_assert_int_eq(img_close_write(img, &e), 0);
	}
	ck_assert_msg(img_dir_commit(d, &inv, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(inv.n_images, 2);
	img_dir_free(d);
	/* shorter and longer than reserved, the third removed */
	ck_assert_uint_eq(file_size("ckpt/pages-46.img"), IMG_PAGES_DATA_OFFSET + 3 * PG);
	ck_assert_uint_eq(file_size("ckpt/pages-46-1.img"), IMG_PAGES_DATA_OFFSET + 10 * PG);
	ck_assert_int_eq(access("ckpt/pages-46-2.img", F_OK), -1);
	dirfd = open("ckpt", O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(img_pages_open(dirfd, 46, &p, &e), 0);
	ck_assert_uint_eq(img_pages_size(p), 13 * PG);
	ck_assert_int_eq(img_pages_read(p, page, PG, 12 * PG, &e), 0);
	ck_assert_int_eq(page[0], 'a' + 19); /* part 1's last page */
}
END_TEST

/*
 * Page data written from pieces (img_writev_pages_summed, the dump's lanes
 * writing pages copied before the freeze from where they are): more pieces
 * than one writev takes, of different lengths, read back in order with the
 * checksum the caller computed.
 */
START_TEST(test_writev_pages)
{
	enum { PIECES = 1500 };
	struct ckpt_error e = {0};
	struct img_dir *d = NULL;
	struct img *img = NULL;
	Inventory inv = INVENTORY__INIT;
	_cleanup_free_ unsigned char *data = malloc(2 * PIECES * PG);
	_cleanup_free_ struct iovec *iov = calloc(PIECES, sizeof(*iov));
	_cleanup_close_ int dirfd = -1;
	_cleanup_img_ struct img *rd = NULL;
	unsigned char got[2 * PG];
	size_t at = 0;
	uint32_t crc;

	ck_assert_ptr_nonnull(data);
	ck_assert_ptr_nonnull(iov);
	ck_assert_int_eq(img_dir_create("ckpt", &d, &e), 0);
	ck_assert_int_eq(img_create(d, IMG_PAGES, 48, &img, &e), 0);
	crc = img_crc(img);
	for (size_t i = 0; i < PIECES; i++) {
		size_t len = (1 + i % 2) * PG;

		for (size_t b = 0; b < len; b++)
			data[at + b] = (unsigned char)(i * 7 + b / PG);
		iov[i] = (struct iovec){.iov_base = data + at, .iov_len = len};
		crc = crc32c(crc, data + at, len);
		at += len;
	}
	ck_assert_msg(img_writev_pages_summed(img, iov, PIECES, crc, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(img_crc(img), crc);
	/* a piece that is not whole pages is refused, nothing written */
	iov[0] = (struct iovec){.iov_base = data, .iov_len = PG / 2};
	ck_assert_int_lt(img_writev_pages_summed(img, iov, 1, crc, &e), 0);
	assert_err_has(&e, "pages-48.img", "not a multiple");
	ck_assert_int_eq(img_close_write(img, &e), 0);
	ck_assert_msg(img_dir_commit(d, &inv, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(inv.n_images, 1);
	ck_assert_uint_eq(inv.images[0]->crc32c, crc);
	img_dir_free(d);

	dirfd = open("ckpt", O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(img_open(dirfd, IMG_PAGES, 48, &rd, &e), 0);
	ck_assert_uint_eq(img_pages_data_size(rd), at);
	for (size_t off = 0; off < at; off += 2 * PG) {
		size_t n = at - off < 2 * PG ? at - off : 2 * PG;

		ck_assert_int_eq(pread(img_fd(rd), got, n, IMG_PAGES_DATA_OFFSET + off),
				 (ssize_t)n);
		ck_assert_mem_eq(got, data + off, n);
	}
	/* the checksum recorded is that of the file's bytes, header and all */
	{
		_cleanup_free_ unsigned char *all = malloc(IMG_PAGES_DATA_OFFSET + at);

		ck_assert_ptr_nonnull(all);
		ck_assert_int_eq(pread(img_fd(rd), all, IMG_PAGES_DATA_OFFSET + at, 0),
				 (ssize_t)(IMG_PAGES_DATA_OFFSET + at));
		ck_assert_uint_eq(crc32c(0, all, IMG_PAGES_DATA_OFFSET + at), crc);
	}
}
END_TEST

START_TEST(test_commit_verify)
{
	_cleanup_free_ struct sample *s = malloc(sizeof(*s));
	struct ckpt_error e = {0};
	Inventory *inv = NULL;
	int dirfd = -1;
	struct stat st;

	sample_init(s, 2);
	write_sample_dir(s, "ckpt", SAMPLE_PAGES);
	ck_assert_int_eq(count_entries(".", "ckpt.tmp."), 0);
	ck_assert_int_eq(stat("ckpt", &st), 0);
	ck_assert_msg(img_dir_open_verified("ckpt", &dirfd, &inv, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(inv->format_version, IMG_FORMAT_VERSION);
	ck_assert_int_eq(inv->root_pid, 100);
	ck_assert_uint_eq(inv->ntasks, 2);
	ck_assert_ptr_nonnull(inv->kernel_release);
	ck_assert_ptr_nonnull(inv->tool_version);
	ck_assert(inv->has_created_unix_ns);
	ck_assert_uint_eq(inv->n_images, 12);
	for (size_t i = 0; i < inv->n_images; i++) {
		char path[128];

		snprintf(path, sizeof(path), "ckpt/%s", inv->images[i]->name);
		ck_assert_uint_eq(file_size(path), inv->images[i]->size);
	}
	check_sample_dir(s, dirfd, SAMPLE_PAGES);
	inventory__free_unpacked(inv, NULL);
	close(dirfd);
	/* unknown files (logs) are ignored */
	write_file("ckpt/dump.log", "hello", 5);
	ck_assert_msg(verify_dir("ckpt", &e) == 0, "%s", e.msg);
}
END_TEST

START_TEST(test_dir_create_rules)
{
	struct ckpt_error e = {0};
	struct img_dir *d = NULL;
	struct img *img = NULL;
	Inventory inv = INVENTORY__INIT;

	/* a non-empty directory */
	ck_assert_int_eq(mkdir("full", 0700), 0);
	write_file("full/x", "x", 1);
	ck_assert_int_eq(img_dir_create("full", &d, &e), -ENOTEMPTY);
	assert_err_has(&e, "full", "not empty");
	/* a file */
	write_file("file", "x", 1);
	ck_assert_int_lt(img_dir_create("file", &d, &e), 0);
	assert_err_has(&e, "file", "not a directory");
	ck_assert_int_lt(img_dir_create("", &d, &e), 0);
	ck_assert_int_lt(img_dir_create("nonexistent/sub", &d, &e), 0);
	/* an empty directory is replaced, a trailing slash is fine */
	ck_assert_int_eq(mkdir("empty", 0700), 0);
	ck_assert_msg(img_dir_create("empty/", &d, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(count_entries(".", "empty.tmp."), 1);
	/* commit refuses while an image is open */
	ck_assert_int_eq(img_create(d, IMG_PSTREE, 0, &img, &e), 0);
	ck_assert_int_eq(img_dir_commit(d, &inv, &e), -EBUSY);
	assert_err_has(&e, "empty", "still open");
	ck_assert_int_eq(img_close_write(img, &e), 0);
	ck_assert_msg(img_dir_commit(d, &inv, &e) == 0, "%s", e.msg);
	ck_assert_int_lt(img_dir_commit(d, &inv, &e), 0);
	img_dir_free(d);
	ck_assert_int_eq(count_entries(".", "empty.tmp."), 0);
	ck_assert_int_eq(count_entries("empty", "inventory.img"), 1);
	ck_assert_int_eq(count_entries("empty", "pstree.img"), 1);
	/* a directory that is never committed leaves nothing behind */
	ck_assert_int_eq(img_dir_create("aborted", &d, &e), 0);
	ck_assert_int_eq(img_create(d, IMG_CORE, 1, &img, &e), 0);
	ck_assert_int_eq(img_close_write(img, &e), 0);
	ck_assert_int_eq(img_create(d, IMG_MM, 1, &img, &e), 0);
	img_close(img); /* abandoned mid-way */
	img_dir_free(d);
	ck_assert_int_eq(count_entries(".", "aborted"), 0);
	/* a target that appears before the commit */
	ck_assert_int_eq(img_dir_create("late", &d, &e), 0);
	ck_assert_int_eq(mkdir("late", 0700), 0);
	write_file("late/x", "x", 1);
	ck_assert_int_lt(img_dir_commit(d, &inv, &e), 0);
	assert_err_has(&e, "late", "not an empty directory");
	img_dir_free(d);
	ck_assert_int_eq(count_entries(".", "late.tmp"), 0);
	img_dir_free(NULL);
}
END_TEST

START_TEST(test_verify_inventory_rules)
{
	_cleanup_free_ struct sample *s = malloc(sizeof(*s));
	struct ckpt_error e = {0};
	Inventory *inv;
	char *saved;

	sample_init(s, 2);
	write_sample_dir(s, "ckpt", 2);
	ck_assert_int_lt(verify_dir(".", &e), 0);
	assert_err_has(&e, "inventory.img", "not a checkpoint");

	inv = read_inventory("ckpt");
	inv->root_pid = 7;
	write_inventory("ckpt", inv);
	ck_assert_int_lt(verify_dir("ckpt", &e), 0);
	assert_err_has(&e, "root_pid 7", "pstree.img");
	inv->root_pid = 100;
	inv->format_version = 2;
	write_inventory("ckpt", inv);
	ck_assert_int_lt(verify_dir("ckpt", &e), 0);
	assert_err_has(&e, "inventory.img", "format_version 2");
	inv->format_version = IMG_FORMAT_VERSION;
	write_inventory("ckpt", inv);
	ck_assert_msg(verify_dir("ckpt", &e) == 0, "%s", e.msg);

	saved = inv->images[3]->name;
	inv->images[3]->name = "../etc/passwd";
	write_inventory("ckpt", inv);
	ck_assert_int_lt(verify_dir("ckpt", &e), 0);
	assert_err_has(&e, "../etc/passwd", "not a plain file name");
	inv->images[3]->name = inv->images[4]->name;
	write_inventory("ckpt", inv);
	ck_assert_int_lt(verify_dir("ckpt", &e), 0);
	assert_err_has(&e, inv->images[4]->name, "listed twice");
	inv->images[3]->name = "core-999.img";
	write_inventory("ckpt", inv);
	ck_assert_int_lt(verify_dir("ckpt", &e), 0);
	assert_err_has(&e, "core-999.img", "cannot be opened");
	inv->images[3]->name = saved;

	/* pstree.img left out: refused before any checksum is read */
	for (size_t i = 0; i < inv->n_images; i++) {
		if (!strcmp(inv->images[i]->name, "pstree.img")) {
			saved = inv->images[i]->name;
			inv->images[i]->name = "pstree.imgx";
			write_inventory("ckpt", inv);
			inv->images[i]->name = saved;
		}
	}
	ck_assert_int_lt(verify_dir("ckpt", &e), 0);
	assert_err_has(&e, "pstree.img", "is not listed");

	/* a per-task image left out of the inventory */
	for (size_t i = 0; i < inv->n_images; i++) {
		if (!strcmp(inv->images[i]->name, "fds-205.img")) {
			protobuf_c_message_free_unpacked(&inv->images[i]->base, NULL);
			inv->images[i] = inv->images[--inv->n_images];
			break;
		}
	}
	write_inventory("ckpt", inv);
	ck_assert_int_lt(verify_dir("ckpt", &e), 0);
	assert_err_has(&e, "pid 205", "fds-205.img is missing");
	inventory__free_unpacked(inv, NULL);
}
END_TEST

/* Each fault injection step of the image layer fails cleanly and leaves nothing. */
START_TEST(test_fault_steps)
{
	static const char *const steps[] = {"image-dir-create", "image-create", "image-write",
					    "image-close",	"image-commit", "image-verify"};
	_cleanup_free_ struct sample *s = malloc(sizeof(*s));
	const ProtobufCMessage *msgs[MAX_MSGS];
	unsigned char page[PG] = {0};
	Inventory inv = INVENTORY__INIT;
	struct ckpt_error e = {0};
	struct img_dir *d = NULL;
	struct img *img = NULL;
	int r;

	sample_init(s, 1);
	write_sample_dir(s, "good", 1);
	setenv("CKPT_FAULT", steps[_i], 1);
	r = img_dir_create("ckpt", &d, &e);
	if (r == 0)
		r = img_create(d, IMG_PAGES, 100, &img, &e);
	if (r == 0) {
		r = img_write_pages(img, page, PG, &e);
		if (r == 0)
			r = img_close_write(img, &e);
		else
			img_close(img);
	}
	if (r == 0) {
		r = img_create(d, IMG_PSTREE, 0, &img, &e);
		if (r == 0) {
			sample_msgs(s, IMG_PSTREE, 0, msgs);
			r = img_write_msg(img, msgs[0], &e);
			if (r == 0)
				r = img_close_write(img, &e);
			else
				img_close(img);
		}
	}
	if (r == 0)
		r = img_dir_commit(d, &inv, &e);
	img_dir_free(d);
	if (r == 0) {
		/* only the verification step is left */
		ck_assert_str_eq(steps[_i], "image-verify");
		r = verify_dir("good", &e);
	} else {
		ck_assert_int_eq(count_entries(".", "ckpt"), 0);
	}
	ck_assert_int_eq(r, -EIO);
	assert_err_has(&e, steps[_i], "injected fault");
}
END_TEST

/*
 * image-write is looked up at each image's first write: an image that
 * wrote before the step was set writes on, one opened after fails at its
 * first record, and again at its next (a failed lookup is not remembered).
 */
START_TEST(test_fault_write_per_image)
{
	_cleanup_free_ struct sample *s = malloc(sizeof(*s));
	const ProtobufCMessage *msgs[MAX_MSGS];
	struct ckpt_error e = {0};
	struct img_dir *d = NULL;
	struct img *a = NULL, *b = NULL;

	sample_init(s, 1);
	sample_msgs(s, IMG_PSTREE, 0, msgs);
	unsetenv("CKPT_FAULT");
	ck_assert_int_eq(img_dir_create("ckpt", &d, &e), 0);
	ck_assert_int_eq(img_create(d, IMG_PSTREE, 0, &a, &e), 0);
	ck_assert_int_eq(img_write_msg(a, msgs[0], &e), 0);
	setenv("CKPT_FAULT", "image-write", 1);
	ck_assert_int_eq(img_write_msg(a, msgs[0], &e), 0);
	ck_assert_int_eq(img_create(d, IMG_CORE, 100, &b, &e), 0);
	sample_msgs(s, IMG_CORE, 0, msgs);
	ck_assert_int_eq(img_write_msg(b, msgs[0], &e), -EIO);
	assert_err_has(&e, "image-write", "injected fault");
	ck_assert_int_eq(img_write_msg(b, msgs[0], &e), -EIO);
	unsetenv("CKPT_FAULT");
	ck_assert_int_eq(img_write_msg(b, msgs[0], &e), 0);
	img_close(a);
	img_close(b);
	img_dir_free(d);
	ck_assert_int_eq(count_entries(".", "ckpt"), 0);
}
END_TEST

/*
 * A FIFO where an image or the inventory is expected is refused at once,
 * not waited on for a writer that never comes; so is a symlink to an
 * endless file as the inventory whose checksum a child dump records.
 * (alarm: a wait fails the test in seconds, not at the case's timeout.)
 */
START_TEST(test_not_regular_images)
{
	static const char *const names[] = {"core-205.img", "inventory.img"};
	_cleanup_free_ struct sample *s = malloc(sizeof(*s));
	struct ckpt_error e = {0};
	char dir[64], path[128];
	uint32_t crc;

	alarm(10);
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(dir, sizeof(dir), "ckpt-fifo-%zu", i);
		sample_init(s, 2);
		write_sample_dir(s, dir, 1);
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		ck_assert_int_eq(unlink(path), 0);
		ck_assert_int_eq(mkfifo(path, 0600), 0);
		ck_assert_int_lt(verify_dir(dir, &e), 0);
		assert_err_has(&e, names[i], "not a regular file");
		if (!strcmp(names[i], "inventory.img")) {
			_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY);

			ck_assert_int_lt(img_dir_inventory_crc(fd, &crc, &e), 0);
			assert_err_has(&e, "inventory.img", "not a regular file");
			ck_assert_int_eq(unlink(path), 0);
			ck_assert_int_eq(symlink("/dev/zero", path), 0);
			ck_assert_int_lt(img_dir_inventory_crc(fd, &crc, &e), 0);
			assert_err_has(&e, "inventory.img", "cannot open");
		}
	}
	alarm(0);
}
END_TEST

/* --- corruption, for every kind -------------------------------------------------- */

/* The file of each kind in the sample directory. */
static const char *const corrupt_files[IMG__COUNT] = {
    [IMG_INVENTORY] = "inventory.img", [IMG_PSTREE] = "pstree.img",
    [IMG_CORE] = "core-205.img",       [IMG_MM] = "mm-205.img",
    [IMG_PAGEMAP] = "pagemap-205.img", [IMG_PAGES] = "pages-205.img",
    [IMG_FILES] = "files.img",	       [IMG_FDS] = "fds-205.img",
};

static const char *fresh_dir(int kind, const char *what)
{
	static char dir[64];
	_cleanup_free_ struct sample *s = malloc(sizeof(*s));

	snprintf(dir, sizeof(dir), "ckpt-%d-%s", kind, what);
	sample_init(s, 2);
	write_sample_dir(s, dir, 3);
	return dir;
}

static const char *kind_path(const char *dir, int kind)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, corrupt_files[kind]);
	return path;
}

/* A flipped byte in the middle: the checksum catches it. */
START_TEST(test_corrupt_flip)
{
	const char *name = corrupt_files[_i], *dir, *path;
	struct ckpt_error e = {0};

	if (_i == IMG_INVENTORY)
		return; /* its own crc is not in itself: see test_corrupt_record */
	dir = fresh_dir(_i, "flip");
	path = kind_path(dir, _i);
	flip_byte(path, file_size(path) / 2 + 1);
	ck_assert_int_lt(verify_dir(dir, &e), 0);
	assert_err_has(&e, name, "checksum mismatch");
}
END_TEST

/* Truncated files: the recorded size catches it; the reader too. */
START_TEST(test_corrupt_truncate)
{
	const char *name = corrupt_files[_i], *dir, *path;
	struct ckpt_error e = {0};
	size_t size;

	dir = fresh_dir(_i, "trunc");
	path = kind_path(dir, _i);
	size = file_size(path);
	ck_assert_int_eq(truncate(path, _i == IMG_PAGES ? size - PG : size - 1), 0);
	ck_assert_int_lt(verify_dir(dir, &e), 0);
	if (_i == IMG_INVENTORY)
		assert_err_has(&e, name, "runs past the end");
	else
		assert_err_has(&e, name, "size is");

	/* with a forged inventory the reader still refuses the cut record */
	if (_i != IMG_INVENTORY && _i != IMG_PAGES) {
		fix_inventory(dir);
		ck_assert_int_lt(read_all(dir, name, &e), 0);
		assert_err_has(&e, name, "runs past the end");
	}
	/* shorter than the header */
	ck_assert_int_eq(truncate(path, 10), 0);
	ck_assert_int_lt(read_all(dir, name, &e), 0);
	assert_err_has(&e, name, "too short");
	ck_assert_int_lt(verify_dir(dir, &e), 0);
	assert_err_has(&e, name, _i == IMG_INVENTORY ? "too short" : "size is");
}
END_TEST

/* Header damage with an inventory whose checksums match: the header check catches it. */
START_TEST(test_corrupt_header)
{
	const char *name = corrupt_files[_i], *dir, *path;
	const char *other = _i == IMG_CORE ? "mm-205.img" : "core-205.img";
	struct ckpt_error e = {0};
	char src[128];

	dir = fresh_dir(_i, "hdr");
	path = kind_path(dir, _i);
	patch_le32(path, 0, 0x12345678);
	if (_i != IMG_INVENTORY)
		fix_inventory(dir);
	ck_assert_int_lt(read_all(dir, name, &e), 0);
	assert_err_has(&e, name, "bad magic");
	expect_verify(dir, _i, "bad magic");

	/* another kind's file under this name */
	snprintf(src, sizeof(src), "%s/%s", dir, other);
	{
		size_t n = file_size(src);
		_cleanup_free_ char *buf = malloc(n);
		int fd = open(src, O_RDONLY);

		ck_assert_int_eq(read(fd, buf, n), (ssize_t)n);
		close(fd);
		write_file(path, buf, n);
	}
	if (_i != IMG_INVENTORY)
		fix_inventory(dir);
	ck_assert_int_lt(read_all(dir, name, &e), 0);
	assert_err_has(&e, name, "magic is that of a");

	/* a future format version, a wrong kind field, a reserved field */
	dir = fresh_dir(_i, "ver");
	path = kind_path(dir, _i);
	patch_le32(path, 4, IMG_FORMAT_VERSION + 1);
	if (_i != IMG_INVENTORY)
		fix_inventory(dir);
	ck_assert_int_lt(read_all(dir, name, &e), 0);
	assert_err_has(&e, name, "format version");
	patch_le32(path, 4, IMG_FORMAT_VERSION);
	patch_le32(path, 8, (_i + 1) % IMG__COUNT);
	if (_i != IMG_INVENTORY)
		fix_inventory(dir);
	ck_assert_int_lt(read_all(dir, name, &e), 0);
	assert_err_has(&e, name, "header kind");
	patch_le32(path, 8, _i);
	patch_le32(path, 12, 1);
	if (_i != IMG_INVENTORY)
		fix_inventory(dir);
	ck_assert_int_lt(read_all(dir, name, &e), 0);
	/* a pages image's word 12 says which part of how many it is (image.h) */
	assert_err_has(&e, name, _i == IMG_PAGES ? "part 1 of 1" : "reserved");
	if (_i == IMG_PAGES) {
		patch_le32(path, 12, 16u << 16);
		fix_inventory(dir);
		ck_assert_int_lt(read_all(dir, name, &e), 0);
		assert_err_has(&e, name, "part 0 of 17 (at most 16 parts)");
		/* part 0 of 2: the second part must be listed */
		patch_le32(path, 12, 1u << 16);
		fix_inventory(dir);
		ck_assert_int_eq(read_all(dir, name, &e), 0);
		ck_assert_int_lt(verify_dir(dir, &e), 0);
		assert_err_has(&e, "pages-205-1.img is missing", "says its data has 2 parts");
	}
}
END_TEST

/* Record damage with matching checksums: huge length, length past EOF, garbage. */
START_TEST(test_corrupt_record)
{
	const char *name = corrupt_files[_i], *dir, *path;
	struct ckpt_error e = {0};
	unsigned char junk[64];
	size_t size;

	if (_i == IMG_PAGES) {
		/* raw pages: a data size that is not whole pages */
		dir = fresh_dir(_i, "rec");
		path = kind_path(dir, _i);
		ck_assert_int_eq(truncate(path, file_size(path) - 100), 0);
		fix_inventory(dir);
		ck_assert_int_lt(read_all(dir, name, &e), 0);
		assert_err_has(&e, name, "not a multiple");
		ck_assert_int_eq(truncate(path, 2000), 0);
		fix_inventory(dir);
		ck_assert_int_lt(read_all(dir, name, &e), 0);
		assert_err_has(&e, name, "header page");
		return;
	}
	dir = fresh_dir(_i, "rec");
	path = kind_path(dir, _i);
	size = file_size(path);
	patch_le32(path, IMG_HEADER_SIZE, 0xffffffff);
	if (_i != IMG_INVENTORY)
		fix_inventory(dir);
	ck_assert_int_lt(read_all(dir, name, &e), 0);
	assert_err_has(&e, name, "record at offset 16: length 4294967295 exceeds limit");
	expect_verify(dir, _i, "exceeds limit");

	/* below the limit but past the end of the file */
	patch_le32(path, IMG_HEADER_SIZE, size);
	if (_i != IMG_INVENTORY)
		fix_inventory(dir);
	ck_assert_int_lt(read_all(dir, name, &e), 0);
	assert_err_has(&e, name, "runs past the end");

	/* the first record's bytes replaced by garbage of the same length */
	dir = fresh_dir(_i, "garbage");
	path = kind_path(dir, _i);
	memset(junk, 0xff, sizeof(junk));
	patch(path, IMG_HEADER_SIZE + 4, junk, 12);
	if (_i != IMG_INVENTORY)
		fix_inventory(dir);
	ck_assert_int_lt(read_all(dir, name, &e), 0);
	assert_err_has(&e, name, "cannot unpack");
	expect_verify(dir, _i, "cannot unpack");

	/* trailing bytes after the last record */
	dir = fresh_dir(_i, "tail");
	path = kind_path(dir, _i);
	patch(path, file_size(path), "\x01\x00", 2);
	if (_i != IMG_INVENTORY)
		fix_inventory(dir);
	ck_assert_int_lt(read_all(dir, name, &e), 0);
	assert_err_has(&e, name, "truncated length");
}
END_TEST

/* --- JSON ------------------------------------------------------------------------- */

/* A strict JSON syntax check: returns the end of one value or NULL. */
static const char *json_skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *json_check_value(const char *p);

static const char *json_check_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
						return NULL;
				p += 4;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
		p++;
	}
	return p + 1;
}

static const char *json_check_list(const char *p, char close, bool object)
{
	p = json_skip_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (object) {
			p = json_check_string(json_skip_ws(p));
			if (!p)
				return NULL;
			p = json_skip_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		p = json_check_value(p);
		if (!p)
			return NULL;
		p = json_skip_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *json_check_value(const char *p)
{
	char *end;

	p = json_skip_ws(p);
	if (*p == '{')
		return json_check_list(p, '}', true);
	if (*p == '[')
		return json_check_list(p, ']', false);
	if (*p == '"')
		return json_check_string(p);
	if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	if (*p != '-' && (*p < '0' || *p > '9'))
		return NULL;
	strtod(p, &end);
	return end > p ? end : NULL;
}

static void assert_json(const char *text)
{
	const char *end = json_check_value(text);

	ck_assert_msg(end && !*json_skip_ws(end), "invalid JSON: %s", text);
}

static char *msg_json(const ProtobufCMessage *m, int indent)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	img_msg_to_json(f, m, indent);
	fclose(f);
	assert_json(text);
	return text;
}

START_TEST(test_json_msg)
{
	_cleanup_free_ struct sample *s = malloc(sizeof(*s));
	_cleanup_free_ char *pretty = NULL, *compact = NULL, *file = NULL, *mm = NULL;

	sample_init(s, 1);
	pretty = msg_json(&s->t[0].core.base, 0);
	compact = msg_json(&s->t[0].core.base, -1);
	ck_assert_ptr_null(strchr(compact, '\n'));
	ck_assert_ptr_nonnull(strstr(pretty, "\n  \"pid\": 100,"));
	ck_assert_ptr_nonnull(strstr(pretty, "\"comm\": \"sle\\\"ep\\n\\u0001\""));
	/* valid UTF-8 kept, an invalid byte as \u00XX */
	ck_assert_ptr_nonnull(strstr(pretty, "\"cwd\": \"/tmp/w\xc3\xa9rk \\u00ff\""));
	ck_assert_ptr_nonnull(strstr(pretty, "\"groups\": [4, 24, 27]"));
	ck_assert_ptr_nonnull(strstr(pretty, "\"max\": 18446744073709551615"));
	ck_assert_ptr_nonnull(strstr(pretty, "\"rax\": 18446744073709551104"));
	ck_assert_ptr_nonnull(strstr(pretty, "\"no_new_privs\": true"));
	ck_assert_ptr_nonnull(strstr(pretty, "\"stopped\": false"));
	ck_assert_ptr_nonnull(strstr(pretty, "\"xstate\": \"5a5b585"));
	ck_assert_ptr_nonnull(strstr(pretty, "\"shared_pending\": [\""));
	/* optional fields only when present */
	ck_assert_ptr_null(strstr(pretty, "exit_signal"));
	ck_assert_ptr_null(strstr(pretty, "cap_amb"));
	ck_assert_ptr_nonnull(strstr(compact, "\"personality\": 4194304"));
	ck_assert_ptr_null(strstr(compact, "\"dumpable\""));

	file = msg_json(&s->file[0].base, 2);
	ck_assert_ptr_nonnull(strstr(file, "\"type\": \"FILE_REG\""));
	ck_assert_ptr_nonnull(strstr(file, "\"ident\": {"));
	ck_assert_ptr_nonnull(strstr(file, "\"content_crc32c\": 3735928559"));
	ck_assert_ptr_null(strstr(file, "\"dev\""));
	mm = msg_json(&s->t[0].mm.base, 0);
	ck_assert_ptr_nonnull(strstr(mm, "\"kind\": \"VMA_HEAP\""));
	ck_assert_ptr_nonnull(strstr(mm, "\"vmflags\": \"rd wr mr mw me ac\""));
	ck_assert_ptr_nonnull(strstr(mm, "\"vmas\": [\n    {\n"));
}
END_TEST

static char *file_json(int dirfd, const char *name, int *ret, struct ckpt_error *e)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	*ret = img_file_to_json(f, dirfd, name, e);
	fclose(f);
	return text;
}

START_TEST(test_json_file)
{
	_cleanup_free_ struct sample *s = malloc(sizeof(*s));
	_cleanup_close_ int dirfd = -1;
	struct ckpt_error e = {0};
	int r;

	sample_init(s, 2);
	write_sample_dir(s, "ckpt", 3);
	dirfd = open("ckpt", O_RDONLY | O_DIRECTORY);
	for (int k = 0; k < IMG__COUNT; k++) {
		_cleanup_free_ char *text = file_json(dirfd, corrupt_files[k], &r, &e);
		char want[128];

		ck_assert_msg(r == 0, "%s", e.msg);
		assert_json(text);
		snprintf(want, sizeof(want), "{\n  \"file\": \"%s\",\n  \"kind\": \"%s\",\n",
			 corrupt_files[k], img_kind_desc(k)->name);
		ck_assert_msg(!strncmp(text, want, strlen(want)), "%s", text);
		if (k == IMG_PAGES)
			ck_assert_ptr_nonnull(strstr(text, "\"data_bytes\": 12288\n}"));
		else
			ck_assert_ptr_nonnull(strstr(text, "\"entries\": [\n    {"));
	}
	/* a damaged file prints nothing and fails naming it */
	{
		_cleanup_free_ char *text = NULL;

		patch_le32("ckpt/pagemap-100.img", IMG_HEADER_SIZE, 1000000);
		text = file_json(dirfd, "pagemap-100.img", &r, &e);
		ck_assert_int_lt(r, 0);
		ck_assert_str_eq(text, "");
		assert_err_has(&e, "pagemap-100.img", "offset 16");
	}
	{
		_cleanup_free_ char *text = file_json(dirfd, "notes.txt", &r, &e);

		ck_assert_int_lt(r, 0);
		ck_assert_str_eq(text, "");
		assert_err_has(&e, "notes.txt", "not the name");
	}
}
END_TEST

/* --- golden images: the on-disk format stays readable -------------------------------- */

START_TEST(test_golden)
{
	const char *regen = getenv("CKPT_WRITE_GOLDEN");
	_cleanup_free_ struct sample *s = malloc(sizeof(*s));
	struct ckpt_error e = {0};
	Inventory *inv = NULL;
	int dirfd = -1;

	sample_init(s, 2);
	if (regen && *regen) {
		write_sample_dir(s, regen, 2);
		return;
	}
	ck_assert_msg(img_dir_open_verified(CKPT_TEST_DATA "/images/v1", &dirfd, &inv, &e) == 0,
		      "%s", e.msg);
	ck_assert_int_eq(inv->root_pid, 100);
	ck_assert_uint_eq(inv->n_images, 12);
	check_sample_dir(s, dirfd, 2);
	inventory__free_unpacked(inv, NULL);
	close(dirfd);
}
END_TEST

static Suite *image_suite(void)
{
	Suite *s = suite_create("image");
	TCase *tc = tcase_create("image");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crc32c_vectors);
	tcase_add_test(tc, test_crc32c_paths_agree);
	tcase_add_test(tc, test_kind_table);
	tcase_add_loop_test(tc, test_roundtrip_kind, 0, 6);
	tcase_add_test(tc, test_read_one);
	tcase_add_test(tc, test_pages_roundtrip);
	tcase_add_test(tc, test_pages_parts);
	tcase_add_test(tc, test_reserve);
	tcase_add_test(tc, test_reserve_parts);
	tcase_add_test(tc, test_crc32c_extend_page);
	tcase_add_test(tc, test_writev_pages);
	tcase_add_test(tc, test_write_wrong_type);
	tcase_add_test(tc, test_commit_verify);
	tcase_add_test(tc, test_dir_create_rules);
	tcase_add_test(tc, test_verify_inventory_rules);
	tcase_add_loop_test(tc, test_fault_steps, 0, 6);
	tcase_add_test(tc, test_fault_write_per_image);
	tcase_add_test(tc, test_not_regular_images);
	tcase_add_loop_test(tc, test_corrupt_flip, 0, IMG__COUNT);
	tcase_add_loop_test(tc, test_corrupt_truncate, 0, IMG__COUNT);
	tcase_add_loop_test(tc, test_corrupt_header, 0, IMG__COUNT);
	tcase_add_loop_test(tc, test_corrupt_record, 0, IMG__COUNT);
	tcase_add_test(tc, test_json_msg);
	tcase_add_test(tc, test_json_file);
	tcase_add_test(tc, test_golden);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(image_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
