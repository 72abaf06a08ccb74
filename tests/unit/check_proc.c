/* SPDX-License-Identifier: MIT */
/*
 * /proc parsers: fixtures captured on this machine (tests/data/proc/), hand
 * made tricky and malformed inputs, and live reads of this process and of a
 * forked child.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "proc.h"
#include "thp.h"

#define FIXTURE(name) CKPT_TEST_DATA "/proc/" name

/* (noinline: inlined, gcc -O2 takes what it returns for a pointer to its
 * local and warns of a dangling pointer in the callers) */
static __attribute__((noinline)) char *load(const char *name)
{
	struct ckpt_error e = {};
	char *text = NULL;
	int r = proc_read_file(name, &text, NULL, &e);

	ck_assert_msg(r == 0, "loading %s: %s", name, e.msg);
	return text;
}

static const struct proc_vma *find_vma(const struct proc_vma_list *l, const char *path)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].path, path))
			return &l->v[i];
	return NULL;
}

/* ---- maps / smaps ------------------------------------------------------------ */

static const struct {
	const char *file;
	size_t n;
	bool vmflags;
} maps_fixtures[] = {
    {FIXTURE("maps-sleep.txt"), 37, false},
    {FIXTURE("smaps-sleep.txt"), 37, true},
    {FIXTURE("smaps-python-tricky.txt"), 113, true},
    {FIXTURE("maps-tricky.txt"), 15, false},
};

START_TEST(test_maps_fixture_counts)
{
	_cleanup_free_ char *text = load(maps_fixtures[_i].file);
	struct proc_vma_list l = {};
	struct ckpt_error e = {};

	ck_assert_int_eq(proc_parse_maps_text(text, &l, &e), 0);
	ck_assert_uint_eq(l.n, maps_fixtures[_i].n);
	for (size_t i = 0; i < l.n; i++) {
		ck_assert(l.v[i].start < l.v[i].end);
		ck_assert(l.v[i].has_vmflags == maps_fixtures[_i].vmflags);
		if (i)
			ck_assert(l.v[i - 1].end <= l.v[i].start);
	}
	proc_vma_list_free(&l);
}
END_TEST

START_TEST(test_maps_sleep)
{
	_cleanup_free_ char *maps = load(FIXTURE("maps-sleep.txt"));
	_cleanup_free_ char *smaps = load(FIXTURE("smaps-sleep.txt"));
	struct proc_vma_list m = {}, s = {};
	struct ckpt_error e = {};
	const struct proc_vma *v;

	ck_assert_int_eq(proc_parse_maps_text(maps, &m, &e), 0);
	ck_assert_int_eq(proc_parse_maps_text(smaps, &s, &e), 0);
	ck_assert_uint_eq(m.n, s.n);
	for (size_t i = 0; i < m.n; i++) {
		ck_assert_uint_eq(m.v[i].start, s.v[i].start);
		ck_assert_uint_eq(m.v[i].end, s.v[i].end);
		ck_assert_str_eq(m.v[i].path, s.v[i].path);
	}

	v = &m.v[0];
	ck_assert_uint_eq(v->start, 0x5578bdf49000ULL);
	ck_assert_uint_eq(v->end, 0x5578bdf4b000ULL);
	ck_assert_uint_eq(v->prot, PROT_READ);
	ck_assert(!v->shared);
	ck_assert_uint_eq(v->dev_major, 0xfe);
	ck_assert_uint_eq(v->dev_minor, 0);
	ck_assert_uint_eq(v->ino, 248056);
	ck_assert_str_eq(v->path, "/usr/bin/sleep");
	ck_assert_uint_eq(m.v[1].prot, PROT_READ | PROT_EXEC);
	ck_assert_uint_eq(m.v[1].pgoff, 0x2000);
	ck_assert_uint_eq(m.v[4].prot, PROT_READ | PROT_WRITE);

	/* anonymous area: the kernel pads the empty path with a space */
	ck_assert_str_eq(m.v[14].path, "");
	ck_assert_uint_eq(m.v[14].ino, 0);

	v = find_vma(&s, "[heap]");
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v->vmflags, "rd wr mr mw me ac");
	ck_assert(proc_vma_has_flag(v, "ac"));
	ck_assert(proc_vma_has_flag(v, "rd"));
	ck_assert(!proc_vma_has_flag(v, "a"));
	ck_assert(!proc_vma_has_flag(v, "gd"));

	v = find_vma(&s, "[vvar_vclock]");
	ck_assert_ptr_nonnull(v);
	ck_assert(proc_vma_has_flag(v, "io"));
	ck_assert(proc_vma_has_flag(v, "pf"));
	ck_assert_ptr_nonnull(find_vma(&s, "[vvar]"));
	ck_assert_ptr_nonnull(find_vma(&s, "[vdso]"));
	ck_assert_ptr_nonnull(find_vma(&s, "[stack]"));
	v = find_vma(&s, "[vsyscall]");
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(v->start, 0xffffffffff600000ULL);
	ck_assert_uint_eq(v->prot, PROT_EXEC);

	/* a MAP_SHARED file mapping */
	v = find_vma(&s, "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache");
	ck_assert_ptr_nonnull(v);
	ck_assert(v->shared);
	proc_vma_list_free(&m);
	proc_vma_list_free(&s);
}
END_TEST

START_TEST(test_smaps_python_tricky)
{
	_cleanup_free_ char *text = load(FIXTURE("smaps-python-tricky.txt"));
	struct proc_vma_list l = {};
	struct ckpt_error e = {};
	const struct proc_vma *v;

	ck_assert_int_eq(proc_parse_maps_text(text, &l, &e), 0);
	v = find_vma(&l, "/memfd:my memfd");
	ck_assert_ptr_nonnull(v);
	ck_assert(v->deleted);
	ck_assert(v->shared);
	ck_assert_str_eq(v->vmflags, "rd wr sh mr mw me ms");
	ck_assert(proc_vma_has_flag(v, "sh"));

	v = find_vma(&l, "/tmp/pk dir with spaces/a file.bin");
	ck_assert_ptr_nonnull(v);
	ck_assert(!v->deleted);
	ck_assert_uint_eq(v->ino, 10952789);

	v = find_vma(&l, "/dev/zero");
	ck_assert_ptr_nonnull(v);
	ck_assert(v->deleted);
	ck_assert_uint_eq(v->dev_major, 0);
	ck_assert_uint_eq(v->dev_minor, 1);

	v = find_vma(&l, "/tmp/pk_deleted.bin");
	ck_assert_ptr_nonnull(v);
	ck_assert(v->deleted);
	ck_assert_int_eq(v->pkey, 0);
	proc_vma_list_free(&l);
}
END_TEST

/* ProtectionKey (CPUs with memory protection keys): 0 unless pkey_mprotect set one. */
START_TEST(test_smaps_pkey)
{
	static const char text[] = "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n"
				   "Rss:                   4 kB\n"
				   "ProtectionKey:         3\n"
				   "VmFlags: rd wr mr mw me ac\n"
				   "7f0000001000-7f0000002000 rw-p 00000000 00:00 0 \n"
				   "ProtectionKey:         0\n"
				   "VmFlags: rd wr mr mw me ac\n";
	struct proc_vma_list l = {};
	struct ckpt_error e = {};

	ck_assert_msg(proc_parse_maps_text(text, &l, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_int_eq(l.v[0].pkey, 3);
	ck_assert_int_eq(l.v[1].pkey, 0);
	proc_vma_list_free(&l);
	ck_assert_int_lt(
	    proc_parse_maps_text("1000-2000 r--p 0 00:00 0\nProtectionKey: x\n", &l, &e), 0);
	ck_assert_msg(strstr(e.msg, "bad ProtectionKey"), "%s", e.msg);
}
END_TEST

/* Every line of maps-tricky.txt, in order. */
static const struct {
	const char *path;
	bool deleted;
	bool shared;
	uint32_t prot;
} tricky_expect[] = {
    {"/opt/my app/bin/a) b (x)", false, false, PROT_READ | PROT_EXEC},
    {"/opt/my app/bin/a) b (x)", false, false, PROT_READ | PROT_WRITE},
    {"[heap]", false, false, PROT_READ | PROT_WRITE},
    {"/SYSV00000000", true, true, PROT_READ | PROT_WRITE},
    {"/dev/zero", true, true, PROT_READ | PROT_WRITE},
    {"/memfd:name with  spaces", true, true, PROT_READ | PROT_WRITE},
    {"/tmp/gone file", true, false, PROT_READ},
    {"/tmp/new\nline", false, false, PROT_READ},
    {"", false, false, 0},
    {"", false, false, PROT_READ | PROT_WRITE},
    {"[vvar]", false, false, PROT_READ},
    {"[vvar_vclock]", false, false, PROT_READ},
    {"[vdso]", false, false, PROT_READ | PROT_EXEC},
    {"[stack]", false, false, PROT_READ | PROT_WRITE},
    {"[vsyscall]", false, false, PROT_EXEC},
};

START_TEST(test_maps_tricky)
{
	_cleanup_free_ char *text = load(FIXTURE("maps-tricky.txt"));
	struct proc_vma_list l = {};
	struct ckpt_error e = {};

	ck_assert_int_eq(proc_parse_maps_text(text, &l, &e), 0);
	ck_assert_uint_eq(l.n, ARRAY_SIZE(tricky_expect));
	for (size_t i = 0; i < l.n; i++) {
		ck_assert_str_eq(l.v[i].path, tricky_expect[i].path);
		ck_assert_msg(l.v[i].deleted == tricky_expect[i].deleted, "line %zu", i + 1);
		ck_assert_msg(l.v[i].shared == tricky_expect[i].shared, "line %zu", i + 1);
		ck_assert_uint_eq(l.v[i].prot, tricky_expect[i].prot);
	}
	ck_assert_uint_eq(l.v[1].pgoff, 0x1000);
	ck_assert_uint_eq(l.v[3].ino, 32769);
	proc_vma_list_free(&l);
}
END_TEST

static const struct {
	const char *text;
	const char *err; /* expected substring of the error */
} maps_bad[] = {
    {"55d0-", "maps: line 1: malformed mapping line"},
    {"1000-2000 r--p 00000000 00:00", "line 1: malformed mapping line"},
    {"1000-2000 r--p 0000", "line 1: malformed"},
    {"hello world\n", "line 1: malformed"},
    {"2000-1000 r--p 00000000 00:00 0\n", "line 1: bad address range 2000-1000"},
    {"1000-2000 rwzp 00000000 00:00 0\n", "bad permissions \"rwzp\""},
    {"1000-2000 r--pp 00000000 00:00 0\n", "line 1: malformed"},
    {"1000-2000 r--p 00000000 00:00 0x\n", "line 1: malformed"},
    {"Rss: 4 kB\n1000-2000 r--p 00000000 00:00 0\n", "line 1: \"Rss: 4 kB\" before any mapping"},
    {"1000-2000 r--p 00000000 00:00 0\nVmFlags: rd\n3000-x r--p 0 00:00 0\n", "line 3: malformed"},
};

START_TEST(test_maps_malformed)
{
	struct proc_vma_list l = {.n = 77};
	struct ckpt_error e = {};
	int r = proc_parse_maps_text(maps_bad[_i].text, &l, &e);

	ck_assert_int_eq(r, -EINVAL);
	ck_assert_int_eq(e.code, -EINVAL);
	ck_assert_msg(strstr(e.msg, maps_bad[_i].err), "got \"%s\", want \"%s\"", e.msg,
		      maps_bad[_i].err);
	/* untouched on failure */
	ck_assert_uint_eq(l.n, 77);
}
END_TEST

START_TEST(test_maps_empty)
{
	struct proc_vma_list l = {};
	struct ckpt_error e = {};

	ck_assert_int_eq(proc_parse_maps_text("", &l, &e), 0);
	ck_assert_uint_eq(l.n, 0);
	proc_vma_list_free(&l);
}
END_TEST

/* ---- stat ------------------------------------------------------------------------ */

START_TEST(test_stat_sleep)
{
	_cleanup_free_ char *text = load(FIXTURE("stat-sleep.txt"));
	struct ckpt_error e = {};
	struct proc_stat st;

	ck_assert_int_eq(proc_parse_stat_text(text, &st, &e), 0);
	ck_assert_int_eq(st.pid, 5438);
	ck_assert_str_eq(st.comm, "sleep");
	ck_assert_int_eq(st.state, 'S');
	ck_assert_int_eq(st.ppid, 5434);
	ck_assert_int_eq(st.pgrp, 5434);
	ck_assert_int_eq(st.session, 2914);
	ck_assert_int_eq(st.tty_nr, 0);
	ck_assert_uint_eq(st.flags, 4194304);
	ck_assert_int_eq(st.num_threads, 1);
	ck_assert_uint_eq(st.start_time, 93864);
	ck_assert_uint_eq(st.start_code, 93977071366144ULL);
	ck_assert_uint_eq(st.end_code, 93977071384073ULL);
	ck_assert_uint_eq(st.start_stack, 140722412680160ULL);
	ck_assert_int_eq(st.exit_signal, 17);
	ck_assert_uint_eq(st.start_data, 93977071398160ULL);
	ck_assert_uint_eq(st.end_data, 93977071399424ULL);
	ck_assert_uint_eq(st.start_brk, 93977427505152ULL);
	ck_assert_uint_eq(st.arg_start, 140722412685943ULL);
	ck_assert_uint_eq(st.arg_end, 140722412685953ULL);
	ck_assert_uint_eq(st.env_start, 140722412685953ULL);
	ck_assert_uint_eq(st.env_end, 140722412687337ULL);
	ck_assert_int_eq(st.exit_code, 0);
}
END_TEST

START_TEST(test_stat_tricky_comm)
{
	_cleanup_free_ char *text = load(FIXTURE("stat-tricky-comm.txt"));
	struct ckpt_error e = {};
	struct proc_stat st;

	ck_assert_int_eq(proc_parse_stat_text(text, &st, &e), 0);
	ck_assert_int_eq(st.pid, 4242);
	ck_assert_str_eq(st.comm, "a) b");
	ck_assert_int_eq(st.state, 'R');
	ck_assert_int_eq(st.ppid, 1);
	ck_assert_int_eq(st.tty_nr, 34816);
	ck_assert_uint_eq(st.flags, 4194560);
	ck_assert_int_eq(st.num_threads, 3);
	ck_assert_uint_eq(st.start_time, 777);
	ck_assert_uint_eq(st.start_code, 4096);
	ck_assert_uint_eq(st.end_code, 8192);
	ck_assert_int_eq(st.exit_signal, 17);
	ck_assert_uint_eq(st.start_data, 12288);
	ck_assert_uint_eq(st.env_end, 140000000300ULL);
	ck_assert_int_eq(st.exit_code, 256);
}
END_TEST

static const struct {
	const char *text;
	const char *err;
} stat_bad[] = {
    {"", "stat: no \"(comm)\" field"},
    {"12 sleep S 1", "no \"(comm)\""},
    {"12 (sleep) S 1 12 12 0 -1 4194304 1 2 3 4 5 6 7 8 20 0 1 0 99",
     "truncated: 22 fields, expected 52"},
    {"12 (sleep)", "missing field 3"},
    {"x12 (sleep) S 1", "bad pid field"},
    {"12 (sleep) S 1 12 12 0 -1 zz 1 2", "bad field 9"},
    {"12 (sleep) SS 1", "bad field 3"},
};

START_TEST(test_stat_malformed)
{
	struct ckpt_error e = {};
	struct proc_stat st = {.pid = 99};

	ck_assert_int_eq(proc_parse_stat_text(stat_bad[_i].text, &st, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, stat_bad[_i].err), "got \"%s\", want \"%s\"", e.msg,
		      stat_bad[_i].err);
	ck_assert_int_eq(st.pid, 99);
}
END_TEST

/* ---- status ---------------------------------------------------------------------- */

START_TEST(test_status_sleep)
{
	_cleanup_free_ char *text = load(FIXTURE("status-sleep.txt"));
	struct ckpt_error e = {};
	struct proc_status st;

	ck_assert_int_eq(proc_parse_status_text(text, &st, &e), 0);
	ck_assert_str_eq(st.name, "sleep");
	ck_assert_int_eq(st.state, 'S');
	ck_assert_uint_eq(st.umask, 022);
	ck_assert_int_eq(st.tgid, 5438);
	ck_assert_int_eq(st.pid, 5438);
	ck_assert_int_eq(st.ppid, 5434);
	ck_assert_int_eq(st.tracer_pid, 0);
	for (int i = 0; i < 4; i++) {
		ck_assert_uint_eq(st.uid[i], 0);
		ck_assert_uint_eq(st.gid[i], 0);
	}
	ck_assert_uint_eq(st.ngroups, 0);
	ck_assert_int_eq(st.nspid_levels, 1);
	ck_assert_int_eq(st.threads, 1);
	ck_assert_uint_eq(st.sig_pnd, 0);
	ck_assert_uint_eq(st.sig_ign, 6);
	ck_assert_uint_eq(st.cap_prm, 0x1fffeffffffULL);
	ck_assert_uint_eq(st.cap_eff, 0x1fffeffffffULL);
	ck_assert_uint_eq(st.cap_bnd, 0x1fffeffffffULL);
	ck_assert_uint_eq(st.cap_amb, 0);
	ck_assert_int_eq(st.no_new_privs, 0);
	ck_assert_int_eq(st.seccomp, 0);
	ck_assert(st.has_umask);
	ck_assert(st.has_vm_lck);
	ck_assert_uint_eq(st.vm_lck_kb, 0);
}
END_TEST

/* A zombie has no fs_struct: no Umask line. */
START_TEST(test_status_zombie)
{
	_cleanup_free_ char *text = load(FIXTURE("status-zombie.txt"));
	struct ckpt_error e = {};
	struct proc_status st;

	ck_assert_int_eq(proc_parse_status_text(text, &st, &e), 0);
	ck_assert_int_eq(st.state, 'Z');
	ck_assert(!st.has_umask);
	ck_assert_uint_eq(st.umask, 0);
	ck_assert_uint_eq(st.cap_eff, 0x1fffeffffffULL);
}
END_TEST

static const char status_min[] = "Name:\tmy prog\n"
				 "Umask:\t0077\n"
				 "State:\tt (tracing stop)\n"
				 "Tgid:\t100\n"
				 "Pid:\t101\n"
				 "PPid:\t1\n"
				 "TracerPid:\t55\n"
				 "Uid:\t1000\t1001\t1002\t1003\n"
				 "Gid:\t2000\t2001\t2002\t2003\n"
				 "Groups:\t4 24 27 \n"
				 "NSpid:\t101\t7\t1\n"
				 "Threads:\t2\n"
				 "SigPnd:\t0000000000000100\n"
				 "ShdPnd:\t0000000000004000\n"
				 "SigBlk:\t0000000000010000\n"
				 "SigIgn:\t0000000000001000\n"
				 "SigCgt:\t0000000180000000\n"
				 "CapInh:\t0000000000000000\n"
				 "CapPrm:\t0000000000000000\n"
				 "CapEff:\t0000000000000000\n"
				 "CapBnd:\t000001ffffffffff\n"
				 "CapAmb:\t0000000000000000\n"
				 "NoNewPrivs:\t1\n"
				 "Seccomp:\t2\n"
				 "VmLck:\t     132 kB\n";

START_TEST(test_status_fields)
{
	struct ckpt_error e = {};
	struct proc_status st;

	ck_assert_int_eq(proc_parse_status_text(status_min, &st, &e), 0);
	ck_assert_str_eq(st.name, "my prog");
	ck_assert_uint_eq(st.umask, 077);
	ck_assert_int_eq(st.state, 't');
	ck_assert_int_eq(st.tgid, 100);
	ck_assert_int_eq(st.pid, 101);
	ck_assert_int_eq(st.tracer_pid, 55);
	ck_assert_uint_eq(st.uid[0], 1000);
	ck_assert_uint_eq(st.uid[3], 1003);
	ck_assert_uint_eq(st.gid[1], 2001);
	ck_assert_uint_eq(st.ngroups, 3);
	ck_assert_uint_eq(st.groups[0], 4);
	ck_assert_uint_eq(st.groups[2], 27);
	ck_assert_int_eq(st.nspid_levels, 3);
	ck_assert_int_eq(st.threads, 2);
	ck_assert_uint_eq(st.sig_pnd, 0x100);
	ck_assert_uint_eq(st.shd_pnd, 0x4000);
	ck_assert_uint_eq(st.sig_blk, 0x10000);
	ck_assert_uint_eq(st.sig_ign, 0x1000);
	ck_assert_uint_eq(st.sig_cgt, 0x180000000ULL);
	ck_assert_uint_eq(st.cap_bnd, 0x1ffffffffffULL);
	ck_assert_int_eq(st.no_new_privs, 1);
	ck_assert_int_eq(st.seccomp, 2);
	ck_assert(st.has_vm_lck);
	ck_assert_uint_eq(st.vm_lck_kb, 132);
	ck_assert(!st.shstk);
}
END_TEST

/* x86_Thread_features: a shadow stack on or not (a feature only locked is not one). */
START_TEST(test_status_shstk)
{
	static const char *const lines[] = {
	    "x86_Thread_features:\tshstk wrss", "x86_Thread_features:\twrss shstk",
	    "x86_Thread_features:\t", "x86_Thread_features_locked:\tshstk"};
	static const bool want[] = {true, true, false, false};
	struct ckpt_error e = {};
	struct proc_status st;

	for (size_t i = 0; i < 4; i++) {
		_cleanup_free_ char *more = malloc(sizeof(status_min) + strlen(lines[i]) + 2);

		sprintf(more, "%s%s\n", status_min, lines[i]);
		ck_assert_msg(proc_parse_status_text(more, &st, &e) == 0, "%s", e.msg);
		ck_assert_msg(st.shstk == want[i], "%s", lines[i]);
	}
}
END_TEST

/* Replace the line starting with key in status_min by repl (NULL: drop it). */
static char *status_with(const char *key, const char *repl)
{
	char *out = malloc(sizeof(status_min) + (repl ? strlen(repl) : 0) + 2);
	const char *p = status_min;
	char *o = out;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = (size_t)(nl - p) + 1;

		if (!strncmp(p, key, strlen(key))) {
			if (repl)
				o += sprintf(o, "%s\n", repl);
		} else {
			memcpy(o, p, len);
			o += len;
		}
		p += len;
	}
	*o = '\0';
	return out;
}

static const struct {
	const char *key;
	const char *repl;
	const char *err;
} status_bad[] = {
    {"Uid:", "Uid:\t1000\t1000\tx\t1000", "status: line 8: bad Uid"},
    {"Uid:", "Uid:\t1000\t1000\t1000", "status: line 8: bad Uid"},
    {"Gid:", "Gid:\t-1\t0\t0\t0", "line 9: bad Gid"},
    {"Pid:", NULL, "status: no Pid field"},
    {"Uid:", NULL, "no Uid field"},
    {"Umask:", "Umask:\t0999", "line 2: bad Umask"},
    {"SigBlk:", "SigBlk:\tzz", "line 15: bad SigBlk"},
    {"Tgid:", "Tgid:\t99999999999", "line 4: bad Tgid"},
    {"Groups:", "Groups:\t1 2 abc", "line 10: bad Groups"},
    {"Threads:", "Threads", "line 12: no \"key:\""},
    {"NSpid:", "NSpid:\t", "line 11: bad NSpid"},
    {"VmLck:", "VmLck:\t132 MB", "line 25: bad VmLck"},
    {"VmLck:", "VmLck:\t kB", "line 25: bad VmLck"},
};

START_TEST(test_status_malformed)
{
	_cleanup_free_ char *text = status_with(status_bad[_i].key, status_bad[_i].repl);
	struct ckpt_error e = {};
	struct proc_status st;

	ck_assert_int_eq(proc_parse_status_text(text, &st, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, status_bad[_i].err), "got \"%s\", want \"%s\"", e.msg,
		      status_bad[_i].err);
}
END_TEST

/* /proc/PID/autogroup */
START_TEST(test_autogroup)
{
	static const struct {
		const char *text;
		int ret, nice;
	} cases[] = {
	    {"/autogroup-21790 nice 0\n", 0, 0},
	    {"/autogroup-5 nice -20\n", 0, -20},
	    {"/autogroup-5 nice 19", 0, 19},
	    {"/autogroup-5 nice 20\n", -EINVAL, 0},
	    {"/autogroup-x nice 1\n", -EINVAL, 0},
	    {"/autogroup-5 nice 3 extra\n", -EINVAL, 0},
	    {"", -EINVAL, 0},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct ckpt_error e = {};
		int nice = 99;

		ck_assert_int_eq(proc_parse_autogroup_text(cases[i].text, &nice, &e), cases[i].ret);
		if (!cases[i].ret)
			ck_assert_int_eq(nice, cases[i].nice);
		else
			ck_assert_msg(strstr(e.msg, "autogroup"), "%zu: %s", i, e.msg);
	}
}
END_TEST

START_TEST(test_status_groups_limit)
{
	char line[4096] = "Groups:";
	size_t len = strlen(line);
	struct ckpt_error e = {};
	struct proc_status st;

	for (int i = 0; i < 256; i++)
		len += (size_t)sprintf(line + len, " %d", 1000 + i);
	{
		_cleanup_free_ char *text = status_with("Groups:", line);

		ck_assert_int_eq(proc_parse_status_text(text, &st, &e), 0);
		ck_assert_uint_eq(st.ngroups, 256);
		ck_assert_uint_eq(st.groups[255], 1255);
	}
	sprintf(line + len, " 77");
	{
		_cleanup_free_ char *text = status_with("Groups:", line);

		ck_assert_int_eq(proc_parse_status_text(text, &st, &e), -EINVAL);
		ck_assert_str_eq(e.msg, "status: line 10: more than 256 Groups");
	}
}
END_TEST

/* ---- fdinfo ---------------------------------------------------------------------- */

START_TEST(test_fdinfo)
{
	_cleanup_free_ char *text = load(FIXTURE("fdinfo-sleep-1.txt"));
	struct ckpt_error e = {};
	struct proc_fdinfo fi;

	ck_assert_int_eq(proc_parse_fdinfo_text(text, &fi, &e), 0);
	ck_assert_uint_eq(fi.pos, 41);
	ck_assert_uint_eq(fi.flags, 0100001);
	ck_assert_int_eq(fi.mnt_id, 27);
	ck_assert_uint_eq(fi.ino, 10952757);

	/* kind-specific lines are skipped */
	ck_assert_int_eq(proc_parse_fdinfo_text("pos:\t0\nflags:\t02004002\nmnt_id:\t16\n"
						"ino:\t1057\neventfd-count:  5\n"
						"eventfd-id: 1\n",
						&fi, &e),
			 0);
	ck_assert_uint_eq(fi.flags, 02004002);
	ck_assert_uint_eq(fi.ino, 1057);
	/* mnt_id and ino are optional */
	ck_assert_int_eq(proc_parse_fdinfo_text("pos:\t7\nflags:\t0\n", &fi, &e), 0);
	ck_assert_int_eq(fi.mnt_id, -1);
	ck_assert_uint_eq(fi.pos, 7);
}
END_TEST

static const struct {
	const char *text;
	const char *err;
} fdinfo_bad[] = {
    {"pos:\t0\n", "fdinfo: no flags field"},
    {"flags:\t0\n", "fdinfo: no pos field"},
    {"pos:\t0\nflags:\t09\n", "fdinfo: line 2: bad flags"},
    {"pos:\t-1\nflags:\t0\n", "fdinfo: line 1: bad pos"},
    {"pos:\t0\nflags:\t0\nmnt_id:\tx\n", "line 3: bad mnt_id"},
};

START_TEST(test_fdinfo_malformed)
{
	struct ckpt_error e = {};
	struct proc_fdinfo fi;

	ck_assert_int_eq(proc_parse_fdinfo_text(fdinfo_bad[_i].text, &fi, &e), -EINVAL);
	ck_assert_msg(strstr(e.msg, fdinfo_bad[_i].err), "got \"%s\", want \"%s\"", e.msg,
		      fdinfo_bad[_i].err);
}
END_TEST

/* "lock:" lines of fdinfo, as lock_get_status() prints them */
static const struct {
	const char *line;
	enum proc_lock_kind kind;
	bool write, breaking, to_eof;
	uint64_t start, end;
} lock_lines[] = {
    {"lock:\t1: POSIX  ADVISORY  WRITE 4242 08:01:1234 0 99\n", PROC_LOCK_POSIX, true, false,
     false, 0, 99},
    {"lock:\t2: POSIX  ADVISORY  READ 4242 08:01:1234 200 EOF\n", PROC_LOCK_POSIX, false, false,
     true, 200, 0},
    {"lock:\t1: OFDLCK ADVISORY  WRITE -1 00:2d:77 10 19\n", PROC_LOCK_OFD, true, false, false,
     10, 19},
    {"lock:\t1: FLOCK  ADVISORY  WRITE 4242 00:2d:78 0 EOF\n", PROC_LOCK_FLOCK, true, false,
     true, 0, 0},
    {"lock:\t1: LEASE  ACTIVE    READ 4242 00:2d:79 0 EOF\n", PROC_LOCK_LEASE, false, false,
     true, 0, 0},
    {"lock:\t1: LEASE  BREAKING  READ 4242 00:2d:79 0 EOF\n", PROC_LOCK_LEASE, false, true, true,
     0, 0},
    {"lock:\t1: DELEG  ACTIVE    READ 4242 00:2d:79 0 EOF\n", PROC_LOCK_OTHER, false, false,
     true, 0, 0},
    {"lock:\t1: LEASE  BREAKING  UNLCK 4242 00:2d:79 0 EOF\n", PROC_LOCK_OTHER, false, true,
     true, 0, 0},
};

START_TEST(test_fdinfo_locks)
{
	_cleanup_free_ char *text = NULL;
	struct proc_lock_list l = {0};
	struct ckpt_error e = {};

	ck_assert_int_ge(asprintf(&text, "pos:\t0\nflags:\t02\nmnt_id:\t16\nino:\t5\n%s",
				  lock_lines[_i].line),
			 0);
	ck_assert_int_eq(proc_parse_fdinfo_locks_text(text, &l, &e), 0);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_int_eq(l.v[0].kind, lock_lines[_i].kind);
	ck_assert_int_eq(l.v[0].write, lock_lines[_i].write);
	ck_assert_int_eq(l.v[0].lease_breaking, lock_lines[_i].breaking);
	ck_assert_int_eq(l.v[0].to_eof, lock_lines[_i].to_eof);
	ck_assert_uint_eq(l.v[0].start, lock_lines[_i].start);
	ck_assert_uint_eq(l.v[0].end, lock_lines[_i].end);
	proc_lock_list_free(&l);
}
END_TEST

START_TEST(test_fdinfo_locks_bad)
{
	static const char *const bad[] = {
	    "lock:\t1: POSIX  ADVISORY  WRITE 1 08:01:1 9 3\n", /* end before start */
	    "lock:\t1: POSIX  ADVISORY  WRITE 1 08:01:1 x EOF\n",
	    "lock:\t1: POSIX\n",
	};
	struct proc_lock_list l = {0};
	struct ckpt_error e = {};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ck_assert_int_eq(proc_parse_fdinfo_locks_text(bad[i], &l, &e), -EINVAL);
		ck_assert_msg(strstr(e.msg, "line 1: bad lock line"), "%s", e.msg);
	}
	/* no lock lines: an empty list */
	ck_assert_int_eq(proc_parse_fdinfo_locks_text("pos:\t0\nflags:\t0\n", &l, &e), 0);
	ck_assert_uint_eq(l.n, 0);
}
END_TEST

/* ---- limits ---------------------------------------------------------------------- */

START_TEST(test_limits)
{
	_cleanup_free_ char *text = load(FIXTURE("limits-sleep.txt"));
	struct proc_rlimit lim[16];
	struct ckpt_error e = {};

	ck_assert_int_eq(proc_parse_limits_text(text, lim, &e), 0);
	ck_assert_uint_eq(lim[RLIMIT_CPU].cur, RLIM_INFINITY);
	ck_assert_uint_eq(lim[RLIMIT_CPU].max, RLIM_INFINITY);
	ck_assert_uint_eq(lim[RLIMIT_STACK].cur, 8388608);
	ck_assert_uint_eq(lim[RLIMIT_STACK].max, RLIM_INFINITY);
	ck_assert_uint_eq(lim[RLIMIT_CORE].cur, 0);
	ck_assert_uint_eq(lim[RLIMIT_NOFILE].cur, 20000);
	ck_assert_uint_eq(lim[RLIMIT_NOFILE].max, 20000);
	ck_assert_uint_eq(lim[RLIMIT_MSGQUEUE].cur, 819200);
	ck_assert_uint_eq(lim[RLIMIT_NICE].cur, 0);
	ck_assert_uint_eq(lim[RLIMIT_RTTIME].max, RLIM_INFINITY);
}
END_TEST

START_TEST(test_limits_malformed)
{
	_cleanup_free_ char *text = load(FIXTURE("limits-sleep.txt"));
	struct proc_rlimit lim[16] = {};
	struct ckpt_error e = {};
	char *p;

	/* "Max processes 96364 96364": make the hard limit bad */
	p = strstr(text, "Max processes");
	ck_assert_ptr_nonnull(p);
	p = strstr(p, "96364");
	p = strstr(p + 5, "96364");
	memcpy(p, "9x364", 5);
	ck_assert_int_eq(proc_parse_limits_text(text, lim, &e), -EINVAL);
	ck_assert_str_eq(e.msg, "limits: line 8: bad value of \"Max processes\"");
	ck_assert_uint_eq(lim[0].cur, 0);

	ck_assert_int_eq(proc_parse_limits_text("Limit      Soft Limit  Hard Limit  Units\n"
						"Max cpu time  unlimited  unlimited  seconds\n",
						lim, &e),
			 -EINVAL);
	ck_assert_str_eq(e.msg, "limits: no \"Max file size\" row");
}
END_TEST

/* ---- live processes ----------------------------------------------------------------- */

START_TEST(test_live_self)
{
	struct ckpt_error e = {};
	struct proc_stat st;
	struct proc_status ss;
	struct proc_vma_list l = {};
	struct proc_rlimit lim[16];
	struct rlimit rl;
	char exe[4096], exe2[4096];
	ssize_t n;

	ck_assert_int_eq(proc_parse_stat(getpid(), &st, &e), 0);
	ck_assert_int_eq(st.pid, getpid());
	ck_assert_int_eq(st.ppid, getppid());
	ck_assert_int_eq(st.state, 'R');
	ck_assert_int_eq(st.num_threads, 1);

	ck_assert_int_eq(proc_parse_status(getpid(), &ss, &e), 0);
	ck_assert_int_eq(ss.pid, getpid());
	ck_assert_int_eq(ss.tgid, getpid());
	ck_assert_uint_eq(ss.uid[0], getuid());
	ck_assert_uint_eq(ss.gid[1], getegid());

	ck_assert_int_eq(proc_parse_smaps(getpid(), &l, &e), 0);
	ck_assert_ptr_nonnull(find_vma(&l, "[stack]"));
	ck_assert_ptr_nonnull(find_vma(&l, "[vdso]"));
	for (size_t i = 0; i < l.n; i++)
		ck_assert(l.v[i].has_vmflags);
	/* the area holding our code is executable */
	bool found = false;
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].start <= (uintptr_t)find_vma && (uintptr_t)find_vma < l.v[i].end) {
			ck_assert(l.v[i].prot & PROT_EXEC);
			found = true;
		}
	ck_assert(found);
	proc_vma_list_free(&l);

	/* maps: the areas without VmFlags; pid 0 reads our own */
	for (int k = 0; k < 2; k++) {
		ck_assert_int_eq(proc_parse_maps(k ? getpid() : 0, &l, &e), 0);
		ck_assert_ptr_nonnull(find_vma(&l, "[stack]"));
		found = false;
		for (size_t i = 0; i < l.n; i++) {
			ck_assert(!l.v[i].has_vmflags);
			if (l.v[i].start <= (uintptr_t)find_vma && (uintptr_t)find_vma < l.v[i].end)
				found = l.v[i].prot & PROT_EXEC;
		}
		ck_assert(found);
		proc_vma_list_free(&l);
	}
	ck_assert_int_eq(proc_parse_maps(INT32_MAX, &l, &e), -ENOENT);
	ck_assert_msg(strstr(e.msg, "/proc/2147483647/maps"), "%s", e.msg);

	ck_assert_int_eq(proc_parse_limits(getpid(), lim, &e), 0);
	getrlimit(RLIMIT_NOFILE, &rl);
	ck_assert_uint_eq(lim[RLIMIT_NOFILE].cur, rl.rlim_cur);
	ck_assert_uint_eq(lim[RLIMIT_NOFILE].max, rl.rlim_max);

	ck_assert_int_eq(proc_readlink(getpid(), "exe", exe, sizeof(exe), &e), 0);
	n = readlink("/proc/self/exe", exe2, sizeof(exe2) - 1);
	ck_assert(n > 0);
	exe2[n] = '\0';
	ck_assert_str_eq(exe, exe2);
	ck_assert_int_eq(proc_readlink(getpid(), "exe", exe, 4, &e), -ENAMETOOLONG);
	ck_assert(strstr(e.msg, "/exe: link longer than 3 bytes"));
}
END_TEST

START_TEST(test_live_fdinfo)
{
	struct ckpt_error e = {};
	struct proc_fdinfo fi;
	_cleanup_close_ int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	char buf[8];

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), sizeof(buf));
	ck_assert_int_eq(proc_parse_fdinfo(getpid(), fd, &fi, &e), 0);
	ck_assert_uint_eq(fi.pos, 8);
	ck_assert_uint_eq(fi.flags & (O_CLOEXEC | O_NONBLOCK | O_ACCMODE),
			  O_CLOEXEC | O_NONBLOCK | O_RDONLY);
	ck_assert_int_ge(fi.mnt_id, 0);

	ck_assert_int_eq(proc_parse_fdinfo(getpid(), 9999, &fi, &e), -ENOENT);
	ck_assert_msg(strstr(e.msg, "/fdinfo/9999"), "%s", e.msg);
}
END_TEST

START_TEST(test_live_auxv)
{
	_cleanup_free_ uint64_t *auxv = NULL;
	struct ckpt_error e = {};
	size_t n;
	bool pagesz = false;

	ck_assert_int_eq(proc_read_auxv(getpid(), &auxv, &n, &e), 0);
	ck_assert(n >= 4 && n % 2 == 0);
	for (size_t i = 0; i < n; i += 2) {
		if (auxv[i] == AT_PAGESZ) {
			ck_assert_uint_eq(auxv[i + 1], (uint64_t)getpagesize());
			pagesz = true;
		}
		if (auxv[i] == AT_ENTRY)
			ck_assert_uint_eq(auxv[i + 1], getauxval(AT_ENTRY));
	}
	ck_assert(pagesz);
	ck_assert_uint_eq(auxv[n - 2], AT_NULL);
}
END_TEST

static void *idle_thread(void *arg)
{
	pause();
	return arg;
}

START_TEST(test_live_tasks)
{
	_cleanup_free_ pid_t *tids = NULL;
	struct ckpt_error e = {};
	pthread_t th;
	size_t n;

	ck_assert_int_eq(proc_list_tasks(getpid(), &tids, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(tids[0], getpid());
	free(TAKE_PTR(tids));

	ck_assert_int_eq(pthread_create(&th, NULL, idle_thread, NULL), 0);
	ck_assert_int_eq(proc_list_tasks(getpid(), &tids, &n, &e), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(tids[0], getpid());
	ck_assert_int_gt(tids[1], getpid());
	/* the thread is never joined: the forked test process just exits */
}
END_TEST

START_TEST(test_live_child)
{
	_cleanup_free_ pid_t *kids = NULL;
	struct ckpt_error e = {};
	struct proc_stat st;
	struct proc_status ss;
	size_t n;
	pid_t child;

	ck_assert_int_eq(proc_list_children(getpid(), getpid(), &kids, &n, &e), 0);
	ck_assert_ptr_nonnull(kids);
	ck_assert_uint_eq(n, 0);
	free(TAKE_PTR(kids));

	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	ck_assert_int_eq(proc_list_children(getpid(), getpid(), &kids, &n, &e), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(kids[0], child);
	ck_assert_int_eq(proc_parse_stat(child, &st, &e), 0);
	ck_assert_int_eq(st.pid, child);
	ck_assert_int_eq(st.ppid, getpid());
	ck_assert_int_eq(proc_parse_status(child, &ss, &e), 0);
	ck_assert_int_eq(ss.ppid, getpid());

	kill(child, SIGKILL);
	ck_assert_int_eq(waitpid(child, NULL, 0), child);

	/* gone: errors name the file */
	ck_assert_int_eq(proc_parse_stat(child, &st, &e), -ENOENT);
	ck_assert_msg(strstr(e.msg, "/stat"), "%s", e.msg);
	ck_assert_int_lt(proc_list_tasks(child, &kids, &n, &e), 0);
}
END_TEST

/* smaps of a process with thousands of areas is megabytes: read it whole. */
START_TEST(test_live_large_smaps)
{
	struct proc_vma_list l = {};
	struct ckpt_error e = {};
	const size_t areas = 4000;
	long pg = getpagesize();
	char *base;

	base = mmap(NULL, areas * 2 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(base, MAP_FAILED);
	/* alternate protections so the areas cannot merge */
	for (size_t i = 0; i < areas * 2; i += 2)
		ck_assert_int_eq(mprotect(base + i * pg, pg, PROT_READ), 0);
	ck_assert_int_eq(proc_parse_smaps(getpid(), &l, &e), 0);
	ck_assert_uint_ge(l.n, areas * 2);
	size_t inside = 0;
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].start >= (uintptr_t)base &&
		    l.v[i].end <= (uintptr_t)base + areas * 2 * pg) {
			ck_assert_uint_eq(l.v[i].end - l.v[i].start, (uint64_t)pg);
			ck_assert_uint_eq(l.v[i].prot, inside % 2 ? 0 : PROT_READ);
			inside++;
		}
	ck_assert_uint_eq(inside, areas * 2);
	proc_vma_list_free(&l);
}
END_TEST

/* The area of ours that holds addr, from smaps (NULL if none). */
static const struct proc_vma *area_of(const struct proc_vma_list *l, uintptr_t addr)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].start <= addr && addr < l->v[i].end)
			return &l->v[i];
	return NULL;
}

/* lib/thp.c: aligned, sized as asked, huge pages asked for where whole. */
START_TEST(test_thp_map)
{
	struct proc_vma_list l = {};
	struct ckpt_error e = {};
	size_t len = THP_SIZE + THP_SIZE / 2 + 5;
	char *p = thp_map(len);
	const struct proc_vma *a;

	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq((uintptr_t)p % THP_SIZE, 0);
	memset(p, 0x5a, len);
	ck_assert_int_eq(proc_parse_smaps(getpid(), &l, &e), 0);
	/* the whole huge page asks for huge pages, the half one after it not */
	a = area_of(&l, (uintptr_t)p);
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->start, (uintptr_t)p);
	ck_assert_uint_eq(a->end, (uintptr_t)p + THP_SIZE);
	ck_assert(proc_vma_has_flag(a, "hg"));
	a = area_of(&l, (uintptr_t)p + THP_SIZE);
	ck_assert_ptr_nonnull(a);
	ck_assert(!proc_vma_has_flag(a, "hg"));
	/* nothing mapped past the pages asked for: the rest was given back */
	ck_assert_uint_eq(a->end, ((uintptr_t)p + len + 4095) & ~(uintptr_t)4095);
	proc_vma_list_free(&l);
	thp_unmap(p, len);
	ck_assert_int_eq(proc_parse_smaps(getpid(), &l, &e), 0);
	ck_assert_ptr_null(area_of(&l, (uintptr_t)p));
	ck_assert_ptr_null(area_of(&l, (uintptr_t)p + THP_SIZE));
	proc_vma_list_free(&l);
	thp_unmap(NULL, len); /* nothing */
}
END_TEST

/* thp_advise of an unaligned range: only its aligned middle. */
START_TEST(test_thp_advise)
{
	struct proc_vma_list l = {};
	struct ckpt_error e = {};
	char *m =
	    mmap(NULL, 8 * THP_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *start;
	const struct proc_vma *a;

	ck_assert_ptr_ne(m, MAP_FAILED);
	/* from 4 KiB past an aligned address to 4 KiB short of another */
	start =
	    (char *)(((uintptr_t)m + THP_SIZE - 1) & ~(uintptr_t)(THP_SIZE - 1)) + THP_SIZE - 4096;
	thp_advise(start, 2 * THP_SIZE);
	ck_assert_int_eq(proc_parse_smaps(getpid(), &l, &e), 0);
	a = area_of(&l, (uintptr_t)start + 4096);
	ck_assert_ptr_nonnull(a);
	ck_assert(proc_vma_has_flag(a, "hg"));
	ck_assert_uint_eq(a->start, (uintptr_t)start + 4096);
	ck_assert_uint_eq(a->end, (uintptr_t)start + 4096 + THP_SIZE);
	a = area_of(&l, (uintptr_t)start);
	ck_assert_ptr_nonnull(a);
	ck_assert(!proc_vma_has_flag(a, "hg"));
	proc_vma_list_free(&l);
	munmap(m, 8 * THP_SIZE);
}
END_TEST

START_TEST(test_read_file_errors)
{
	struct ckpt_error e = {};
	char *text = NULL;
	size_t len = 0;

	ck_assert_int_eq(proc_read_file("/proc/nonexistent/status", &text, &len, &e), -ENOENT);
	ck_assert_str_eq(e.msg, "cannot open /proc/nonexistent/status: No such file or directory");
	ck_assert_ptr_null(text);

	/* binary content and the length are handed back */
	ck_assert_int_eq(proc_read_file("/proc/self/cmdline", &text, &len, &e), 0);
	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(text[len], '\0');
	free(text);
}
END_TEST

START_TEST(test_fault_injection)
{
	struct ckpt_error e = {};
	struct proc_stat st;

	setenv("CKPT_FAULT", "proc-stat", 1);
	ck_assert_int_eq(proc_parse_stat(getpid(), &st, &e), -EIO);
	ck_assert(strstr(e.msg, "proc-stat"));
	unsetenv("CKPT_FAULT");
	ck_assert_int_eq(proc_parse_stat(getpid(), &st, &e), 0);
}
END_TEST

static Suite *proc_suite(void)
{
	Suite *s = suite_create("proc");
	TCase *tc;

	tc = tcase_create("maps");
	tcase_add_loop_test(tc, test_maps_fixture_counts, 0, ARRAY_SIZE(maps_fixtures));
	tcase_add_test(tc, test_maps_sleep);
	tcase_add_test(tc, test_smaps_python_tricky);
	tcase_add_test(tc, test_smaps_pkey);
	tcase_add_test(tc, test_status_shstk);
	tcase_add_test(tc, test_maps_tricky);
	tcase_add_loop_test(tc, test_maps_malformed, 0, ARRAY_SIZE(maps_bad));
	tcase_add_test(tc, test_maps_empty);
	suite_add_tcase(s, tc);

	tc = tcase_create("stat");
	tcase_add_test(tc, test_stat_sleep);
	tcase_add_test(tc, test_stat_tricky_comm);
	tcase_add_loop_test(tc, test_stat_malformed, 0, ARRAY_SIZE(stat_bad));
	suite_add_tcase(s, tc);

	tc = tcase_create("status");
	tcase_add_test(tc, test_status_sleep);
	tcase_add_test(tc, test_status_zombie);
	tcase_add_test(tc, test_autogroup);
	tcase_add_test(tc, test_status_fields);
	tcase_add_loop_test(tc, test_status_malformed, 0, ARRAY_SIZE(status_bad));
	tcase_add_test(tc, test_status_groups_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("fdinfo-limits");
	tcase_add_test(tc, test_fdinfo);
	tcase_add_loop_test(tc, test_fdinfo_malformed, 0, ARRAY_SIZE(fdinfo_bad));
	tcase_add_loop_test(tc, test_fdinfo_locks, 0, ARRAY_SIZE(lock_lines));
	tcase_add_test(tc, test_fdinfo_locks_bad);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_limits_malformed);
	suite_add_tcase(s, tc);

	tc = tcase_create("live");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_live_self);
	tcase_add_test(tc, test_live_fdinfo);
	tcase_add_test(tc, test_thp_map);
	tcase_add_test(tc, test_thp_advise);
	tcase_add_test(tc, test_live_auxv);
	tcase_add_test(tc, test_live_tasks);
	tcase_add_test(tc, test_live_child);
	tcase_add_test(tc, test_live_large_smaps);
	tcase_add_test(tc, test_read_file_errors);
	tcase_add_test(tc, test_fault_injection);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(proc_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
