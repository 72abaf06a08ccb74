/* SPDX-License-Identifier: MIT */
/*
 * The restorer's verdict on whole checkpoint directories
 * (restore_check_images(): stages verify and plan, nothing created), on the
 * checkpoints of the fuzz corpus (tests/fuzz/corpus/dir: real dumps, written
 * out by the fuzz harness's own code, tests/fuzz/fuzz_common.c, with the
 * inventory's sums recomputed) and on what the fuzzer found wrong with it,
 * one test per finding (docs/testing.md, "Fuzzing"). Run under ASan + UBSan
 * in build-asan/, where undefined behaviour aborts the test.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "files.pb-c.h"
#include "fuzz_common.h"
#include "image.h"
#include "inventory.pb-c.h"
#include "kinds/fd_kind.h"
#include "mm.pb-c.h"
#include "pstree.pb-c.h"
#include "restore_check.h"

#define CORPUS CKPT_FUZZ_CORPUS "/dir/"

static const char *const seeds[] = {"sleeper", "pipeline", "evfd", "unixsk"};

struct checkpoint {
	uint8_t *data;
	struct fuzz_file files[FUZZ_MAX_FILES];
	size_t n;
};

static void load(struct checkpoint *c, const char *name)
{
	char path[512];
	FILE *f;
	long len;

	snprintf(path, sizeof(path), CORPUS "%s", name);
	f = fopen(path, "rb");
	ck_assert_msg(f, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	ck_assert_int_gt(len, 0);
	rewind(f);
	c->data = malloc(len);
	ck_assert_ptr_nonnull(c->data);
	ck_assert_uint_eq(fread(c->data, 1, len, f), (size_t)len);
	fclose(f);
	c->n = fuzz_container_parse(c->data, len, c->files, FUZZ_MAX_FILES);
	ck_assert_uint_gt(c->n, 0);
}

/*
 * Write c into d, the file named like `replace` (if any) replaced by
 * data/len, and return the verdict.
 */
static int check(struct fuzz_dir *d, const struct checkpoint *c, const char *replace,
		 const uint8_t *data, size_t len, struct ckpt_error *e)
{
	const struct fuzz_file *inv = NULL;
	bool replaced = false;

	fuzz_dir_clean(d);
	for (size_t i = 0; i < c->n; i++) {
		if (!strcmp(c->files[i].name, "inventory.img")) {
			inv = &c->files[i];
		} else if (replace && !strcmp(c->files[i].name, replace)) {
			ck_assert(fuzz_write_image(d, replace, data, len));
			replaced = true;
		} else {
			ck_assert(fuzz_write_image(d, c->files[i].name, c->files[i].data,
						   c->files[i].len));
		}
	}
	ck_assert_msg(!replace || replaced, "%s is not in the checkpoint", replace);
	ck_assert_ptr_nonnull(inv);
	fuzz_write_inventory(d, inv->data, inv->len);
	return restore_check_images(d->path, false, e);
}

/* One scratch directory per process (fuzz_dir_init removes it at exit). */
static struct fuzz_dir *scratch(void)
{
	static struct fuzz_dir d;
	static bool made;

	if (!made)
		fuzz_dir_init(&d, "check");
	made = true;
	return &d;
}

static const char *first_of_kind(const struct checkpoint *c, enum img_kind kind)
{
	for (size_t i = 0; i < c->n; i++) {
		enum img_kind k;

		if (img_kind_from_name(c->files[i].name, &k, NULL) == 0 && k == kind)
			return c->files[i].name;
	}
	ck_abort_msg("no image of kind %d", (int)kind);
	return NULL;
}

/* Every seed of the fuzz corpus is a good checkpoint (else regenerate: mkcorpus.py). */
START_TEST(test_seed_passes)
{
	struct checkpoint c;
	struct ckpt_error e = {0};

	load(&c, seeds[_i]);
	ck_assert_msg(check(scratch(), &c, NULL, NULL, 0, &e) == 0, "%s: %s", seeds[_i], e.msg);
	free(c.data);
}
END_TEST

/*
 * Fuzz finding: a task without any fd (an fds image of only its header)
 * made validate_fds() qsort() a NULL array (undefined behaviour, reported by
 * UBSan). A task may well have closed every fd: that is a good checkpoint.
 */
START_TEST(test_task_without_fds)
{
	struct checkpoint c;
	struct ckpt_error e = {0};
	uint8_t header[IMG_HEADER_SIZE];
	const char *fds;

	load(&c, "sleeper");
	fds = first_of_kind(&c, IMG_FDS);
	for (size_t i = 0; i < c.n; i++)
		if (!strcmp(c.files[i].name, fds))
			memcpy(header, c.files[i].data, sizeof(header));
	ck_assert_msg(check(scratch(), &c, fds, header, sizeof(header), &e) == 0, "%s", e.msg);
	free(c.data);
}
END_TEST

/*
 * The image named like `name` of c with each record passed through
 * change(msg, index) (descriptor desc): a new image in *ret (malloc'ed),
 * as the dump would have written it.
 */
static ShmemEntry forged_shmem;

static size_t rewrite(const struct checkpoint *c, const char *name,
		      const ProtobufCMessageDescriptor *desc,
		      bool (*change)(ProtobufCMessage *m, size_t k), uint8_t **ret)
{
	const struct fuzz_file *f = NULL;
	size_t off = IMG_HEADER_SIZE, n = IMG_HEADER_SIZE, k = 0;
	bool changed = false;
	uint8_t *out;

	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->files[i].name, name))
			f = &c->files[i];
	ck_assert_ptr_nonnull(f);
	out = malloc(f->len * 2 + 4096);
	ck_assert_ptr_nonnull(out);
	memcpy(out, f->data, IMG_HEADER_SIZE);
	while (off + 4 <= f->len) {
		uint32_t len;
		ProtobufCMessage *m;
		size_t packed;

		memcpy(&len, f->data + off, 4);
		off += 4;
		ck_assert_uint_le(off + len, f->len);
		m = protobuf_c_message_unpack(desc, NULL, len, f->data + off);
		ck_assert_ptr_nonnull(m);
		off += len;
		changed |= change(m, k++);
		packed = protobuf_c_message_get_packed_size(m);
		ck_assert_uint_le(n + 4 + packed, f->len * 2 + 4096);
		len = (uint32_t)packed;
		memcpy(out + n, &len, 4);
		protobuf_c_message_pack(m, out + n + 4);
		n += 4 + packed;
		/* sub-messages added by change() are static: detach them before freeing */
		if (desc == &file_entry__descriptor)
			((FileEntry *)m)->sigio = NULL;
		if (desc == &file_entry__descriptor && ((FileEntry *)m)->shmem == &forged_shmem)
			((FileEntry *)m)->shmem = NULL;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	ck_assert_msg(changed, "%s: no record to change", name);
	*ret = out;
	return n;
}

static FileSigio forged_sigio;

/* The first pipe entry gets forged_sigio. */
static bool add_sigio(ProtobufCMessage *m, size_t k)
{
	FileEntry *fe = (FileEntry *)m;
	static bool done;

	if (!k)
		done = false;
	if (done || fe->type != FILE_TYPE__FILE_PIPE)
		return false;
	fe->sigio = &forged_sigio;
	done = true;
	return true;
}

/* An owner that is not a task of the tree, a signal past 64, an owner type
 * F_SETOWN_EX does not know: each refused by the verifier, naming the field. */
START_TEST(test_forged_sigio)
{
	static const struct {
		uint32_t type;
		int32_t owner;
		uint32_t sig;
		const char *want;
	} cases[] = {
	    {1, 1, 0, "field sigio.owner: process 1 is not one of the tree"},
	    {2, 1, 0, "field sigio.owner: process group 1 is not one of the tree"},
	    {7, 0, 0, "field sigio.owner: type 7"},
	    {0, 0, 65, "field sigio.sig: 65 is not a signal"},
	};
	struct checkpoint c;
	struct ckpt_error e = {0};
	uint8_t *img;
	size_t len;

	load(&c, "pipeline");
	file_sigio__init(&forged_sigio);
	forged_sigio.has_async = forged_sigio.async = true;
	forged_sigio.has_owner_type = forged_sigio.has_owner = true;
	forged_sigio.owner_type = cases[_i].type;
	forged_sigio.owner = cases[_i].owner;
	forged_sigio.has_sig = cases[_i].sig != 0;
	forged_sigio.sig = cases[_i].sig;
	len = rewrite(&c, "files.img", &file_entry__descriptor, add_sigio, &img);
	ck_assert_int_lt(check(scratch(), &c, "files.img", img, len, &e), 0);
	ck_assert_msg(strstr(e.msg, cases[_i].want), "case %d: %s", _i, e.msg);
	free(img);
	free(c.data);
}
END_TEST

/* A task that says it shares the fd table (or cwd) of a task that is not its parent. */
static bool files_of_self(ProtobufCMessage *m, size_t k)
{
	PstreeEntry *pe = (PstreeEntry *)m;

	if (!pe->ppid || pe->has_zombie_status || k == 0)
		return false;
	pe->has_files_of = true;
	pe->files_of = pe->pid;
	return true;
}

static bool fs_of_self(ProtobufCMessage *m, size_t k)
{
	PstreeEntry *pe = (PstreeEntry *)m;

	if (!pe->ppid || pe->has_zombie_status || k == 0)
		return false;
	pe->has_fs_of = true;
	pe->fs_of = pe->pid;
	return true;
}

START_TEST(test_forged_files_of)
{
	struct checkpoint c;
	struct ckpt_error e = {0};
	uint8_t *img;
	size_t len;

	load(&c, "pipeline");
	len = rewrite(&c, "pstree.img", &pstree_entry__descriptor, _i ? fs_of_self : files_of_self,
		      &img);
	ck_assert_int_lt(check(scratch(), &c, "pstree.img", img, len, &e), 0);
	ck_assert_msg(strstr(e.msg, _i ? "field fs_of" : "field files_of"), "%s", e.msg);
	free(img);
	free(c.data);
}
END_TEST

/* The root given threads [pid, pid + 1, pid + 1]. */
static bool tid_twice(ProtobufCMessage *m, size_t k)
{
	PstreeEntry *pe = (PstreeEntry *)m;
	int32_t *t = malloc(3 * sizeof(*t));

	if (k != 0 || !t) {
		free(t);
		return false;
	}
	t[0] = pe->pid;
	t[1] = t[2] = pe->pid + 1;
	free(pe->threads);
	pe->threads = t;
	pe->n_threads = 3;
	return true;
}

/* A tid twice in one process is refused (found by sorting: 10,000 threads). */
START_TEST(test_forged_tid_twice)
{
	struct checkpoint c;
	struct ckpt_error e = {0};
	uint8_t *img;
	size_t len;

	load(&c, "sleeper");
	len = rewrite(&c, "pstree.img", &pstree_entry__descriptor, tid_twice, &img);
	ck_assert_int_lt(check(scratch(), &c, "pstree.img", img, len, &e), 0);
	ck_assert_msg(strstr(e.msg, "appears twice"), "%s", e.msg);
	free(img);
	free(c.data);
}
END_TEST

/*
 * The third task made a zombie (no core image is read for it) in a group
 * that no task leads: it cannot join it again at restore (setpgid() would
 * fail), so the check refuses it (images.c zombie_group_ok).
 */
static bool zombie_lost(ProtobufCMessage *m, size_t k)
{
	PstreeEntry *pe = (PstreeEntry *)m;

	if (k != 2)
		return false;
	pe->has_zombie_status = true;
	pe->zombie_status = 0;
	pe->pgid = 32000; /* no task has this pid */
	return true;
}

START_TEST(test_forged_zombie_group)
{
	struct checkpoint c;
	struct ckpt_error e = {0};
	uint8_t *img;
	size_t len;

	load(&c, "pipeline");
	len = rewrite(&c, "pstree.img", &pstree_entry__descriptor, zombie_lost, &img);
	ck_assert_int_lt(check(scratch(), &c, "pstree.img", img, len, &e), 0);
	ck_assert_msg(strstr(e.msg, "not a zombie child of a task that can join its group"), "%s",
		      e.msg);
	free(img);
	free(c.data);
}
END_TEST

/* ---- forged queues of unix sockets (msgs: fds in flight, credentials) ---- */

enum forge {
	FORGE_GOOD,	 /* a regular file in flight: a good checkpoint */
	FORGE_NO_FILE,	 /* an fd id that files.img does not hold */
	FORGE_MAPPING,	 /* the id of a mapped file (no open file description) */
	FORGE_TOO_MANY,	 /* more fds than one message carries */
	FORGE_CRED_PID,	 /* credentials of pid 0 */
	FORGE_BOTH,	 /* queue and msgs both set */
};

static uint32_t get_le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * files.img of c with the first unix socket entry's queue replaced by one
 * forged message; returns the new image (malloc'ed), its length in *ret_len.
 */
static uint8_t *forge_files(const struct checkpoint *c, enum forge how, size_t *ret_len)
{
	const struct fuzz_file *ff = NULL;
	FileEntry *fes[4096];
	size_t n = 0, off = IMG_HEADER_SIZE, len = IMG_HEADER_SIZE;
	uint32_t reg_id = 0, map_id = 0, fds[300];
	UnixSkMsg msg = UNIX_SK_MSG__INIT, *msgs[1] = {&msg};
	static ProtobufCBinaryData q = {1, (uint8_t *)"q"};
	FileEntry *target = NULL;
	ProtobufCBinaryData *oq;
	size_t onq;
	uint8_t *out;

	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->files[i].name, "files.img"))
			ff = &c->files[i];
	ck_assert_ptr_nonnull(ff);
	while (off + 4 <= ff->len) {
		uint32_t l = get_le32(ff->data + off);

		ck_assert(n < 4096 && off + 4 + l <= ff->len);
		fes[n] = file_entry__unpack(NULL, l, ff->data + off + 4);
		ck_assert_ptr_nonnull(fes[n]);
		if (fes[n]->type == FILE_TYPE__FILE_UNIX_SK && !target)
			target = fes[n];
		if (fes[n]->type == FILE_TYPE__FILE_REG && !fes[n]->mapping_only &&
		    !fes[n]->deleted)
			reg_id = fes[n]->id;
		if (fes[n]->has_mapping_only && fes[n]->mapping_only)
			map_id = fes[n]->id;
		off += 4 + l;
		n++;
	}
	ck_assert(target && reg_id && map_id);
	msg.has_data = true;
	msg.data.data = (uint8_t *)"x";
	msg.data.len = 1;
	for (size_t i = 0; i < 300; i++)
		fds[i] = reg_id;
	msg.fds = fds;
	msg.n_fds = 1;
	if (how == FORGE_NO_FILE)
		fds[0] = 999999;
	if (how == FORGE_MAPPING)
		fds[0] = map_id;
	if (how == FORGE_TOO_MANY)
		msg.n_fds = 254;
	if (how == FORGE_CRED_PID) {
		msg.n_fds = 0;
		msg.has_cred_pid = msg.has_cred_uid = msg.has_cred_gid = true;
	}
	oq = target->unix_sk->queue;
	onq = target->unix_sk->n_queue;
	target->unix_sk->queue = how == FORGE_BOTH ? &q : NULL;
	target->unix_sk->n_queue = how == FORGE_BOTH;
	target->unix_sk->msgs = msgs;
	target->unix_sk->n_msgs = 1;
	for (size_t i = 0; i < n; i++)
		len += 4 + protobuf_c_message_get_packed_size(&fes[i]->base);
	out = malloc(len);
	ck_assert_ptr_nonnull(out);
	memcpy(out, ff->data, IMG_HEADER_SIZE);
	off = IMG_HEADER_SIZE;
	for (size_t i = 0; i < n; i++) {
		uint32_t l = (uint32_t)protobuf_c_message_get_packed_size(&fes[i]->base);

		out[off] = l & 0xff;
		out[off + 1] = (l >> 8) & 0xff;
		out[off + 2] = (l >> 16) & 0xff;
		out[off + 3] = l >> 24;
		protobuf_c_message_pack(&fes[i]->base, out + off + 4);
		off += 4 + l;
	}
	/* the forged fields are not ours to free */
	target->unix_sk->msgs = NULL;
	target->unix_sk->n_msgs = 0;
	target->unix_sk->queue = oq;
	target->unix_sk->n_queue = onq;
	for (size_t i = 0; i < n; i++)
		file_entry__free_unpacked(fes[i], NULL);
	*ret_len = len;
	return out;
}

/* Case i's result: accepted (field NULL), or refused naming field. */
static void assert_outcome(size_t i, int r, const struct ckpt_error *e, const char *field)
{
	if (!field)
		ck_assert_msg(r == 0, "case %zu: refused: %s", i, e->msg);
	else
		ck_assert_msg(r < 0 && strstr(e->msg, field),
			      "case %zu: expected a refusal naming %s, got %d: %s", i, field, r,
			      e->msg);
}

START_TEST(test_unix_msgs_forged)
{
	static const struct {
		enum forge how;
		const char *field; /* NULL: accepted */
	} cases[] = {
	    {FORGE_GOOD, NULL},
	    {FORGE_NO_FILE, "unix_sk.msgs[0].fds[0]"},
	    {FORGE_MAPPING, "unix_sk.msgs[0].fds[0]"},
	    {FORGE_TOO_MANY, "unix_sk.msgs[0].fds"},
	    {FORGE_CRED_PID, "unix_sk.msgs[0].cred_pid"},
	    {FORGE_BOTH, "unix_sk.queue and unix_sk.msgs"},
	};
	struct checkpoint c;

	load(&c, "unixsk");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ckpt_error e = {0};
		size_t len;
		uint8_t *img = forge_files(&c, cases[i].how, &len);
		int r = check(scratch(), &c, "files.img", img, len, &e);

		assert_outcome(i, r, &e, cases[i].field);
		free(img);
	}
	free(c.data);
}
END_TEST

/* The unix kind's verify of one socket entry holding ue. */
static int unix_entry_verify(UnixSkEntry *ue, struct ckpt_error *e)
{
	FileEntry fe = FILE_ENTRY__INIT;
	const struct fd_kind *k;

	fe.id = 3;
	fe.type = FILE_TYPE__FILE_UNIX_SK;
	fe.path = "socket:[4242]";
	fe.unix_sk = ue;
	k = fd_kind_for_file(&fe);
	ck_assert_ptr_nonnull(k);
	ck_assert_ptr_nonnull(k->verify);
	return k->verify(&fe, e);
}

/*
 * A stream socket's out-of-band marks (oob_at, oob_taken) as the unix
 * kind's verify sees them: the saved queue "ab" (no fds), "cd" (with fds).
 */
START_TEST(test_unix_oob_forged)
{
	static const struct {
		uint32_t type;
		int oob_at; /* -1: none */
		uint32_t taken[2];
		size_t ntaken;
		const char *field; /* NULL: accepted */
	} cases[] = {
	    {SOCK_STREAM, 1, {0, 1}, 2, NULL},
	    {SOCK_STREAM, -1, {2, 4}, 2, NULL},
	    {SOCK_STREAM, 2, {0}, 0, "unix_sk.oob_at"},	      /* in the send with fds */
	    {SOCK_STREAM, 4, {0}, 0, "unix_sk.oob_at"},	      /* past the queue */
	    {SOCK_DGRAM, 0, {0}, 0, "unix_sk.oob_at"},	      /* not a stream */
	    {SOCK_STREAM, 1, {1, 0}, 2, "unix_sk.oob_taken"}, /* out of order */
	    {SOCK_STREAM, 0, {1}, 1, "unix_sk.oob_taken"},    /* after the pending byte */
	    {SOCK_STREAM, -1, {3}, 1, "unix_sk.oob_taken"},   /* inside the send with fds */
	    {SOCK_STREAM, -1, {5}, 1, "unix_sk.oob_taken"},   /* past the queue */
	};
	uint32_t fds[1] = {7};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		UnixSkMsg m0 = UNIX_SK_MSG__INIT, m1 = UNIX_SK_MSG__INIT, *msgs[2] = {&m0, &m1};
		UnixSkEntry ue = UNIX_SK_ENTRY__INIT;
		uint32_t taken[2] = {cases[i].taken[0], cases[i].taken[1]};
		struct ckpt_error e = {0};

		m0.has_data = m1.has_data = true;
		m0.data = (ProtobufCBinaryData){2, (uint8_t *)"ab"};
		m1.data = (ProtobufCBinaryData){2, (uint8_t *)"cd"};
		m1.fds = fds;
		m1.n_fds = 1;
		ue.type = cases[i].type;
		ue.state = 1; /* TCP_ESTABLISHED */
		ue.msgs = msgs;
		ue.n_msgs = 2;
		ue.has_oob_at = cases[i].oob_at >= 0;
		ue.oob_at = cases[i].oob_at >= 0 ? (uint32_t)cases[i].oob_at : 0;
		ue.oob_taken = taken;
		ue.n_oob_taken = cases[i].ntaken;
		assert_outcome(i, unix_entry_verify(&ue, &e), &e, cases[i].field);
	}
}
END_TEST

/*
 * The sender name of a queued datagram (UnixSkMsg.sender) as the unix
 * kind's verify sees it: a path or an abstract name on a datagram socket
 * are accepted; empty, too long, a path with a NUL inside or a sender on a
 * stream are refused naming the field.
 */
START_TEST(test_unix_sender_forged)
{
	static const struct {
		uint32_t type;
		const char *name;
		size_t len;
		bool ok;
	} cases[] = {
	    {SOCK_DGRAM, "/run/x.sock", 11, true},
	    {SOCK_DGRAM, "\0abstract", 9, true},
	    {SOCK_DGRAM, "", 0, false},
	    {SOCK_DGRAM, "/run/x\0y", 8, false},
	    {SOCK_DGRAM, NULL, 200, false},
	    {SOCK_STREAM, "/run/x.sock", 11, false},
	};
	static uint8_t longname[200];

	memset(longname, 'a', sizeof(longname));
	longname[0] = '/';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		UnixSkMsg m = UNIX_SK_MSG__INIT, *msgs[1] = {&m};
		UnixSkEntry ue = UNIX_SK_ENTRY__INIT;
		struct ckpt_error e = {0};

		m.has_data = m.has_sender = true;
		m.data = (ProtobufCBinaryData){2, (uint8_t *)"hi"};
		m.sender = (ProtobufCBinaryData){
		    cases[i].len, cases[i].name ? (uint8_t *)cases[i].name : longname};
		ue.type = cases[i].type;
		ue.state = cases[i].type == SOCK_DGRAM ? 7 : 1; /* TCP_CLOSE, TCP_ESTABLISHED */
		ue.has_name = cases[i].type == SOCK_DGRAM;
		ue.name = (ProtobufCBinaryData){6, (uint8_t *)"/srv.s"};
		ue.msgs = msgs;
		ue.n_msgs = 1;
		assert_outcome(i, unix_entry_verify(&ue, &e), &e,
			       cases[i].ok ? NULL : "msgs[0].sender");
	}
}
END_TEST

/*
 * The dump-time clock readings of --continue-clocks (inventory.img
 * frozen_monotonic_ns, frozen_boottime_ns): only one of them, boot time
 * below monotonic time, a value past what a time namespace takes: each
 * refused naming the field; both, consistent: accepted.
 */
START_TEST(test_forged_clocks)
{
	static const char *const want[] = {"only one of them", "is below", "out of range", NULL};
	struct checkpoint c;
	struct ckpt_error e = {0};
	struct fuzz_file *f = NULL;
	Inventory *inv;
	uint8_t *buf;
	size_t len;
	int r;

	load(&c, "sleeper");
	for (size_t i = 0; i < c.n; i++)
		if (!strcmp(c.files[i].name, "inventory.img"))
			f = &c.files[i];
	ck_assert_ptr_nonnull(f);
	inv = inventory__unpack(NULL, f->len - IMG_HEADER_SIZE, f->data + IMG_HEADER_SIZE);
	ck_assert_ptr_nonnull(inv);
	inv->has_frozen_monotonic_ns = true;
	inv->frozen_monotonic_ns = 5000000000ULL;
	inv->has_frozen_boottime_ns = _i != 0;
	inv->frozen_boottime_ns = _i == 1 ? 1000000000ULL : 6000000000ULL;
	if (_i == 2)
		inv->frozen_monotonic_ns = inv->frozen_boottime_ns = 1ULL << 63;
	len = IMG_HEADER_SIZE + inventory__get_packed_size(inv);
	buf = malloc(len);
	ck_assert_ptr_nonnull(buf);
	memcpy(buf, f->data, IMG_HEADER_SIZE);
	inventory__pack(inv, buf + IMG_HEADER_SIZE);
	inventory__free_unpacked(inv, NULL);
	f->data = buf; /* c.data still owns the original bytes */
	f->len = len;
	r = check(scratch(), &c, NULL, NULL, 0, &e);
	if (want[_i]) {
		ck_assert_int_lt(r, 0);
		ck_assert_msg(strstr(e.msg, "frozen_") && strstr(e.msg, want[_i]), "%s", e.msg);
	} else {
		ck_assert_msg(r == 0, "%s", e.msg);
	}
	free(buf);
	free(c.data);
}
END_TEST

/* The executable's areas name its file as an object (VMA_SHMEM_PRIVATE). */
static uint32_t exe_id;

static bool exe_areas_to_object(ProtobufCMessage *m, size_t k)
{
	MmEntry *mm = (MmEntry *)m;
	bool changed = false;

	if (!mm->has_exe_file_id)
		return false;
	exe_id = mm->exe_file_id;
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->kind == VMA_KIND__VMA_FILE_PRIVATE &&
		    mm->vmas[i]->file_id == exe_id) {
			mm->vmas[i]->kind = VMA_KIND__VMA_SHMEM_PRIVATE;
			changed = true;
		}
	return changed;
}

static bool exe_to_object(ProtobufCMessage *m, size_t k)
{
	FileEntry *fe = (FileEntry *)m;

	if (fe->id != exe_id || fe->shmem)
		return false;
	fe->type = FILE_TYPE__FILE_SHMEM;
	fe->shmem = &forged_shmem;
	return true;
}

/*
 * exe_file_id names a shared memory object only when it is a file of a
 * tmpfs (a program run from /tmp, --save-tmpfs-files): anonymous memory or
 * a file object of a disk file system is refused naming the field; a tmpfs
 * file object passes that check (and is refused later here, for the
 * content the forged object lacks).
 */
START_TEST(test_forged_exe)
{
	static const struct {
		ShmemKind kind;
		bool tmpfs;
		const char *want;
	} cases[] = {
	    {SHMEM_KIND__SHMEM_ANON, false, "field exe_file_id"},
	    {SHMEM_KIND__SHMEM_FILE, false, "field exe_file_id"},
	    {SHMEM_KIND__SHMEM_FILE, true, "pages_pid/pages_off/content_crc32c: missing"},
	};
	struct checkpoint c;
	struct ckpt_error e = {0};
	const char *mm_name;
	uint8_t *mm_img, *files_img;
	size_t mm_len, files_len;

	load(&c, "sleeper");
	mm_name = first_of_kind(&c, IMG_MM);
	shmem_entry__init(&forged_shmem);
	forged_shmem.kind = cases[_i].kind;
	forged_shmem.size = 4096;
	forged_shmem.has_tmpfs = true;
	forged_shmem.tmpfs = cases[_i].tmpfs;
	forged_shmem.has_content_saved = true;
	forged_shmem.content_saved = cases[_i].tmpfs || cases[_i].kind == SHMEM_KIND__SHMEM_ANON;
	mm_len = rewrite(&c, mm_name, &mm_entry__descriptor, exe_areas_to_object, &mm_img);
	files_len = rewrite(&c, "files.img", &file_entry__descriptor, exe_to_object, &files_img);
	for (size_t i = 0; i < c.n; i++) {
		/* c.data still owns the original bytes */
		if (!strcmp(c.files[i].name, mm_name)) {
			c.files[i].data = mm_img;
			c.files[i].len = mm_len;
		} else if (!strcmp(c.files[i].name, "files.img")) {
			c.files[i].data = files_img;
			c.files[i].len = files_len;
		}
	}
	ck_assert_int_lt(check(scratch(), &c, NULL, NULL, 0, &e), 0);
	ck_assert_msg(strstr(e.msg, cases[_i].want), "case %d: %s", _i, e.msg);
	free(mm_img);
	free(files_img);
	free(c.data);
}
END_TEST

static Suite *verify_suite(void)
{
	Suite *s = suite_create("verify");
	TCase *tc = tcase_create("verify");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_seed_passes, 0, sizeof(seeds) / sizeof(seeds[0]));
	tcase_add_test(tc, test_task_without_fds);
	tcase_add_loop_test(tc, test_forged_sigio, 0, 4);
	tcase_add_loop_test(tc, test_forged_files_of, 0, 2);
	tcase_add_test(tc, test_forged_tid_twice);
	tcase_add_loop_test(tc, test_forged_clocks, 0, 4);
	tcase_add_test(tc, test_forged_zombie_group);
	tcase_add_test(tc, test_unix_msgs_forged);
	tcase_add_test(tc, test_unix_oob_forged);
	tcase_add_test(tc, test_unix_sender_forged);
	tcase_add_loop_test(tc, test_forged_exe, 0, 3);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(verify_suite());
	int failed;

	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
