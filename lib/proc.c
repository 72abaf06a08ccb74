/* SPDX-License-Identifier: MIT */
/*
 * /proc parsers. Each parser works on the text of the file (so unit tests can
 * feed fixtures) and reports errors as "SOURCE: line N: what", where SOURCE
 * is the /proc path when the text was read from a live process.
 */
#define LOG_PREFIX "proc: "

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <stddef.h>
#include <sys/resource.h>
#include <unistd.h>

#include "caps.h"
#include "cleanup.h"
#include "fault.h"
#include "log.h"
#include "proc.h"

/* /proc files are read whole; refuse anything absurd rather than eat memory. */
#define PROC_FILE_MAX (1ULL << 30)
#define SMAPS_READ_CHUNK 1024 /* read_file: under two records of smaps */

/* ---- helpers ----------------------------------------------------------------- */

static int parse_err(struct ckpt_error *e, const char *src, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int parse_err(struct ckpt_error *e, const char *src, unsigned line, const char *fmt, ...)
{
	char msg[CKPT_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line)
		return ckpt_err(e, -EINVAL, "%s: line %u: %s", src, line, msg);
	return ckpt_err(e, -EINVAL, "%s: %s", src, msg);
}

/* Iterates over the lines of a mutable copy of the text, NUL-terminating each. */
struct line_iter {
	char *p;
	unsigned no;
};

static char *next_line(struct line_iter *it)
{
	char *l = it->p, *nl;

	if (!l || !*l)
		return NULL;
	nl = strchr(l, '\n');
	if (nl) {
		*nl = '\0';
		it->p = nl + 1;
	} else {
		it->p = l + strlen(l);
	}
	it->no++;
	return l;
}

static char *skip_spaces(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return (char *)s;
}

/* Parse one unsigned number (whole token up to whitespace or end); 0 or -EINVAL. */
static int parse_u64_tok(const char *s, int base, uint64_t *ret, const char **ret_end)
{
	char *end;
	unsigned long long v;

	s = skip_spaces(s);
	if (!isxdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || end == s || (*end && !isspace((unsigned char)*end)))
		return -EINVAL;
	*ret = v;
	if (ret_end)
		*ret_end = end;
	return 0;
}

static int parse_s64_tok(const char *s, int64_t *ret, const char **ret_end)
{
	char *end;
	long long v;

	s = skip_spaces(s);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || (*end && !isspace((unsigned char)*end)))
		return -EINVAL;
	*ret = v;
	if (ret_end)
		*ret_end = end;
	return 0;
}

/* Value that must fit an int (pids, counts). */
static int parse_int_tok(const char *s, int *ret)
{
	int64_t v;

	if (parse_s64_tok(s, &v, NULL) < 0 || v < INT32_MIN || v > INT32_MAX)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

/* ---- reading files ------------------------------------------------------------ */

/* CAP_SYS_PTRACE for the access check of our own tasks' files (proc.h). */
int proc_open_tracee(const char *path, int flags)
{
	uint64_t saved = caps_raise(CAPS_BIT(CAP_SYS_PTRACE));
	int fd = open(path, flags);

	caps_restore(saved);
	return fd;
}

/*
 * chunk: the most to ask of each read() (0: as much as fits). For a seq_file
 * such as smaps: the kernel formats records into a 4 KiB buffer until the
 * read is satisfied, and drops the record that overflows the buffer, to
 * format it again for the next read: for smaps, walking that area's page
 * tables again. Asking for less than two records' worth per read() never
 * overflows it: smaps of a task with 2 GiB in one area took 21 ms read in
 * 64 KiB, 10 ms in 1 KiB reads.
 */
static int read_file(const char *path, bool tracee, size_t chunk, char **ret, size_t *ret_len,
		     struct ckpt_error *e)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t cap = 4096, len = 0;

	fd = tracee ? proc_open_tracee(path, O_RDONLY | O_CLOEXEC)
		    : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open %s", path);
	buf = malloc(cap);
	if (!buf)
		return ckpt_err(e, -ENOMEM, "%s: out of memory", path);
	/* /proc files report size 0 and can be megabytes: grow until EOF. */
	for (;;) {
		ssize_t n;

		if (cap - len < 2) {
			char *nb;

			if (cap >= PROC_FILE_MAX)
				return ckpt_err(e, -EFBIG, "%s: larger than %llu bytes", path,
						PROC_FILE_MAX);
			nb = realloc(buf, cap * 2);
			if (!nb)
				return ckpt_err(e, -ENOMEM, "%s: out of memory", path);
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, chunk && chunk < cap - len - 1 ? chunk : cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ckpt_err_errno(e, -errno, "cannot read %s", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int proc_read_file(const char *path, char **ret, size_t *ret_len, struct ckpt_error *e)
{
	return read_file(path, false, 0, ret, ret_len, e);
}

int proc_read_tracee_file(const char *path, char **ret, size_t *ret_len, struct ckpt_error *e)
{
	return read_file(path, true, 0, ret, ret_len, e);
}

static int read_number(const char *path, int base, int64_t *ret, struct ckpt_error *e)
{
	_cleanup_free_ char *buf = NULL;
	long long v;
	char *end;
	int r;

	r = proc_read_file(path, &buf, NULL, e);
	if (r < 0)
		return r;
	errno = 0;
	v = strtoll(buf, &end, base);
	if (errno || end == buf || (*end && *end != '\n'))
		return ckpt_err(e, -EINVAL, "%s: not a number: %.32s", path, buf);
	*ret = v;
	return 0;
}

int proc_read_number(const char *path, int64_t *ret, struct ckpt_error *e)
{
	return read_number(path, 10, ret, e);
}

int proc_read_hex(const char *path, int64_t *ret, struct ckpt_error *e)
{
	return read_number(path, 16, ret, e);
}

int proc_parse_autogroup_text(const char *text, int *ret_nice, struct ckpt_error *e)
{
	unsigned long id;
	int nice, n = 0;

	if (sscanf(text, "/autogroup-%lu nice %d%n", &id, &nice, &n) != 2 ||
	    (text[n] && text[n] != '\n') || nice < -20 || nice > 19)
		return ckpt_err(e, -EINVAL, "autogroup: not \"/autogroup-N nice V\": %.48s", text);
	*ret_nice = nice;
	return 0;
}

int proc_read_autogroup_nice(pid_t pid, int *ret_nice, struct ckpt_error *e)
{
	_cleanup_free_ char *buf = NULL;
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/autogroup", pid);
	r = proc_read_file(path, &buf, NULL, e);
	if (r < 0)
		return r;
	r = proc_parse_autogroup_text(buf, ret_nice, e);
	return r < 0 ? ckpt_err_wrap(e, "%s", path) : 0;
}

static int read_pid_file(pid_t pid, const char *name, char *src, size_t srclen, char **ret,
			 struct ckpt_error *e)
{
	snprintf(src, srclen, "/proc/%d/%s", (int)pid, name);
	return proc_read_file(src, ret, NULL, e);
}

/* ---- maps / smaps ---------------------------------------------------------------- */

static const char deleted_suffix[] = " (deleted)";

void proc_vma_list_free(struct proc_vma_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

static struct proc_vma *vma_list_add(struct proc_vma_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct proc_vma *nv = realloc(l->v, cap * sizeof(*nv));

		if (!nv)
			return NULL;
		l->v = nv;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return &l->v[l->n++];
}

/*
 * The kernel escapes '\n' in map paths as "\012" (and nothing else, not even
 * a backslash), so undo just that. src: len bytes.
 */
static char *copy_map_path(const char *src, size_t len)
{
	char *dst = malloc(len + 1);
	const char *end = src + len;
	size_t o = 0;

	if (!dst)
		return NULL;
	while (src < end) {
		if (end - src >= 4 && !strncmp(src, "\\012", 4)) {
			dst[o++] = '\n';
			src += 4;
		} else {
			dst[o++] = *src++;
		}
	}
	dst[o] = '\0';
	return dst;
}

static int parse_vma_line(char *line, const char *src, unsigned no, struct proc_vma *v,
			  struct ckpt_error *e)
{
	unsigned long long start, end, pgoff, ino;
	unsigned maj, min;
	char perms[5];
	int n = -1;
	size_t plen;
	const char *path;

	if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu%n", &start, &end, perms, &pgoff, &maj, &min,
		   &ino, &n) != 7 ||
	    n < 0)
		return parse_err(e, src, no, "malformed mapping line \"%.80s\"", line);
	if (line[n] && line[n] != ' ' && line[n] != '\t')
		return parse_err(e, src, no, "malformed mapping line \"%.80s\"", line);
	if (start >= end)
		return parse_err(e, src, no, "bad address range %llx-%llx", start, end);
	if (strlen(perms) != 4 || !strchr("r-", perms[0]) || !strchr("w-", perms[1]) ||
	    !strchr("x-", perms[2]) || !strchr("sp", perms[3]))
		return parse_err(e, src, no, "bad permissions \"%s\" of mapping %llx-%llx", perms,
				 start, end);

	v->start = start;
	v->end = end;
	v->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	v->shared = perms[3] == 's';
	v->pgoff = pgoff;
	v->dev_major = maj;
	v->dev_minor = min;
	v->ino = ino;

	/* The path is the rest of the line after the padding; it may hold spaces. */
	path = skip_spaces(line + n);
	plen = strlen(path);
	if (plen >= PATH_MAX)
		return parse_err(e, src, no, "path of mapping %llx-%llx too long", start, end);
	if (plen > strlen(deleted_suffix) &&
	    !strcmp(path + plen - strlen(deleted_suffix), deleted_suffix)) {
		v->deleted = true;
		plen -= strlen(deleted_suffix);
	}
	v->path = copy_map_path(path, plen);
	if (!v->path)
		return ckpt_err(e, -ENOMEM, "%s: out of memory", src);
	return 0;
}

/* An smaps key line: its first token ends with ':' ("Rss:", "VmFlags:"). */
static bool is_key_line(const char *line)
{
	const char *sp = strpbrk(line, " \t");
	size_t toklen = sp ? (size_t)(sp - line) : strlen(line);

	return toklen > 0 && line[toklen - 1] == ':';
}

static int parse_vmflags(char *value, const char *src, unsigned no, struct proc_vma *v,
			 struct ckpt_error *e)
{
	char *s = skip_spaces(value);
	size_t len = strlen(s);

	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (len >= sizeof(v->vmflags))
		return parse_err(e, src, no, "VmFlags too long");
	memcpy(v->vmflags, s, len);
	v->vmflags[len] = '\0';
	v->has_vmflags = true;
	return 0;
}

/* One line of maps or smaps into l (line numbered no, for errors). */
static int parse_maps_line(struct proc_vma_list *l, char *line, const char *src, unsigned no,
			   struct ckpt_error *e)
{
	struct proc_vma *v;

	if (!*line)
		return 0;
	if (is_key_line(line)) {
		if (!l->n)
			return parse_err(e, src, no, "\"%.40s\" before any mapping", line);
		if (!strncmp(line, "VmFlags:", 8))
			return parse_vmflags(line + 8, src, no, &l->v[l->n - 1], e);
		if (!strncmp(line, "ProtectionKey:", 14)) {
			char *end;
			long k = strtol(line + 14, &end, 10);

			if (end == line + 14 || *end || k < 0 || k > 15)
				return parse_err(e, src, no, "bad ProtectionKey \"%.40s\"", line);
			l->v[l->n - 1].pkey = (int)k;
		}
		return 0;
	}
	v = vma_list_add(l);
	if (!v)
		return ckpt_err(e, -ENOMEM, "%s: out of memory", src);
	return parse_vma_line(line, src, no, v, e);
}

static int parse_maps(const char *text, const char *src, struct proc_vma_list *ret,
		      struct ckpt_error *e)
{
	_cleanup_free_ char *copy = strdup(text);
	struct proc_vma_list l = {};
	struct line_iter it;
	char *line;
	int r;

	if (!copy)
		return ckpt_err(e, -ENOMEM, "%s: out of memory", src);
	it = (struct line_iter){.p = copy};
	while ((line = next_line(&it))) {
		r = parse_maps_line(&l, line, src, it.no, e);
		if (r < 0) {
			proc_vma_list_free(&l);
			return r;
		}
	}
	*ret = l;
	return 0;
}

/*
 * maps or smaps parsed as it is read, line by line, in a buffer of
 * MAPS_BUF bytes whatever the file's size (chunk: read_file's). smaps of
 * 20,000 areas is 14 MB: read whole (a buffer doubled up to 16 MB), then
 * copied and parsed, it cost about 0.1 s here, most of it the first touch
 * of that much fresh memory (docs/architecture.md, "Fresh memory").
 */
#define MAPS_BUF (64 * 1024) /* a line: a path of PATH_MAX, each byte maybe "\012" */
static int parse_maps_file(const char *src, size_t chunk, bool files_only,
			   struct proc_vma_list *ret, struct ckpt_error *e)
{
	_cleanup_close_ int fd = open(src, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = malloc(MAPS_BUF);
	struct proc_vma_list l = {};
	size_t len = 0;
	unsigned no = 0;
	int r = 0;

	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open %s", src);
	if (!buf)
		return ckpt_err(e, -ENOMEM, "%s: out of memory", src);
	for (;;) {
		size_t want = MAPS_BUF - 1 - len;
		char *start = buf, *nl;
		ssize_t n;

		if (!want) {
			r = parse_err(e, src, no + 1, "line longer than %d bytes", MAPS_BUF - 1);
			break;
		}
		n = read(fd, buf + len, chunk && chunk < want ? chunk : want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = ckpt_err_errno(e, -errno, "cannot read %s", src);
			break;
		}
		if (n == 0) {
			buf[len] = '\0';
			if (len && (!files_only || memchr(buf, '/', len)))
				r = parse_maps_line(&l, buf, src, ++no, e);
			break;
		}
		len += (size_t)n;
		while (r >= 0 && (nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
			*nl = '\0';
			++no;
			/* (an area of no file has no path: no '/') */
			if (!files_only || memchr(start, '/', (size_t)(nl - start)))
				r = parse_maps_line(&l, start, src, no, e);
			start = nl + 1;
		}
		if (r < 0)
			break;
		len -= (size_t)(start - buf);
		memmove(buf, start, len);
	}
	if (r < 0) {
		proc_vma_list_free(&l);
		return r;
	}
	*ret = l;
	return 0;
}

int proc_parse_maps_text(const char *text, struct proc_vma_list *ret, struct ckpt_error *e)
{
	return parse_maps(text, "maps", ret, e);
}

int proc_parse_maps(pid_t pid, struct proc_vma_list *ret, struct ckpt_error *e)
{
	char src[64];

	if (pid)
		snprintf(src, sizeof(src), "/proc/%d/maps", (int)pid);
	else
		snprintf(src, sizeof(src), "/proc/self/maps");
	return parse_maps_file(src, 0, false, ret, e);
}

int proc_parse_maps_files(pid_t pid, struct proc_vma_list *ret, struct ckpt_error *e)
{
	char src[64];

	snprintf(src, sizeof(src), "/proc/%d/maps", (int)pid);
	return parse_maps_file(src, 0, true, ret, e);
}

int proc_parse_smaps(pid_t pid, struct proc_vma_list *ret, struct ckpt_error *e)
{
	char src[64];
	int r;

	r = ckpt_fault_inject("proc-smaps", e);
	if (r < 0)
		return r;
	snprintf(src, sizeof(src), "/proc/%d/smaps", (int)pid);
	return parse_maps_file(src, SMAPS_READ_CHUNK, false, ret, e);
}

bool proc_vma_has_flag(const struct proc_vma *vma, const char *flag)
{
	size_t flen = strlen(flag);
	const char *s = vma->vmflags;

	while (*s) {
		const char *end;

		s = skip_spaces(s);
		end = s;
		while (*end && *end != ' ' && *end != '\t')
			end++;
		if ((size_t)(end - s) == flen && !strncmp(s, flag, flen))
			return true;
		s = end;
	}
	return false;
}

/* ---- stat ------------------------------------------------------------------------ */

/* proc(5) numbers the fields from 1; the last one we know is exit_code (52). */
#define STAT_FIELDS 52

static int parse_stat(const char *text, const char *src, struct proc_stat *ret,
		      struct ckpt_error *e)
{
	uint64_t f[STAT_FIELDS + 1] = {};
	struct proc_stat st = {};
	const char *lp, *rp, *s;
	int64_t pid;
	size_t clen;
	int i;

	/* comm may hold spaces and ')': it ends at the LAST ')' of the line. */
	lp = strchr(text, '(');
	rp = strrchr(text, ')');
	if (!lp || !rp || rp < lp)
		return parse_err(e, src, 0, "no \"(comm)\" field");
	if (parse_s64_tok(text, &pid, &s) < 0 || s != lp - 1 || pid <= 0 || pid > INT32_MAX)
		return parse_err(e, src, 0, "bad pid field");
	st.pid = (pid_t)pid;
	clen = (size_t)(rp - lp - 1);
	if (clen >= sizeof(st.comm))
		clen = sizeof(st.comm) - 1;
	memcpy(st.comm, lp + 1, clen);
	st.comm[clen] = '\0';

	s = skip_spaces(rp + 1);
	if (!*s || isspace((unsigned char)*s))
		return parse_err(e, src, 0, "missing field 3 (state)");
	st.state = *s++;
	if (*s && !isspace((unsigned char)*s))
		return parse_err(e, src, 0, "bad field 3 (state)");
	for (i = 4; i <= STAT_FIELDS; i++) {
		int64_t sv;

		s = skip_spaces(s);
		if (!*s || *s == '\n')
			return parse_err(e, src, 0, "truncated: %d fields, expected %d", i - 1,
					 STAT_FIELDS);
		/* A few fields are signed (priority, nice, tty_nr); keep their bits. */
		if (*s == '-') {
			if (parse_s64_tok(s, &sv, &s) < 0)
				return parse_err(e, src, 0, "bad field %d", i);
			f[i] = (uint64_t)sv;
		} else if (parse_u64_tok(s, 10, &f[i], &s) < 0) {
			return parse_err(e, src, 0, "bad field %d", i);
		}
	}
	st.ppid = (pid_t)f[4];
	st.pgrp = (pid_t)f[5];
	st.session = (pid_t)f[6];
	st.tty_nr = (int)f[7];
	st.flags = f[9];
	st.num_threads = (int64_t)f[20];
	st.start_time = f[22];
	st.start_code = f[26];
	st.end_code = f[27];
	st.start_stack = f[28];
	st.exit_signal = (int)f[38];
	st.start_data = f[45];
	st.end_data = f[46];
	st.start_brk = f[47];
	st.arg_start = f[48];
	st.arg_end = f[49];
	st.env_start = f[50];
	st.env_end = f[51];
	st.exit_code = (int)f[52];
	*ret = st;
	return 0;
}

int proc_parse_stat_text(const char *text, struct proc_stat *ret, struct ckpt_error *e)
{
	return parse_stat(text, "stat", ret, e);
}

int proc_parse_stat(pid_t pid, struct proc_stat *ret, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	char src[64];
	int r;

	r = ckpt_fault_inject("proc-stat", e);
	if (r < 0)
		return r;
	r = read_pid_file(pid, "stat", src, sizeof(src), &text, e);
	if (r < 0)
		return r;
	return parse_stat(text, src, ret, e);
}

bool proc_pid_is_zombie(pid_t pid)
{
	char path[64], buf[512], *paren;
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

/* ---- status ---------------------------------------------------------------------- */

enum status_seen {
	SEEN_NAME = 1 << 0,
	SEEN_STATE = 1 << 1,
	SEEN_TGID = 1 << 2,
	SEEN_PID = 1 << 3,
	SEEN_PPID = 1 << 4,
	SEEN_UID = 1 << 5,
	SEEN_GID = 1 << 6,
	SEEN_CAPS = 1 << 8,
	SEEN_SIGS = 1 << 9,
};

static int parse_id4(const char *v, uint32_t out[4])
{
	for (int i = 0; i < 4; i++) {
		uint64_t x;

		if (parse_u64_tok(v, 10, &x, &v) < 0 || x > UINT32_MAX)
			return -EINVAL;
		out[i] = (uint32_t)x;
	}
	return *skip_spaces(v) ? -EINVAL : 0;
}

static int parse_groups(const char *v, struct proc_status *st)
{
	size_t n = 0;

	v = skip_spaces(v);
	while (*v) {
		uint64_t x;

		if (n == ARRAY_SIZE(st->groups))
			return -E2BIG;
		if (parse_u64_tok(v, 10, &x, &v) < 0 || x > UINT32_MAX)
			return -EINVAL;
		st->groups[n++] = (uint32_t)x;
		v = skip_spaces(v);
	}
	st->ngroups = n;
	return 0;
}

static int count_tokens(const char *v)
{
	int n = 0;

	for (;;) {
		v = skip_spaces(v);
		if (!*v)
			return n;
		n++;
		while (*v && *v != ' ' && *v != '\t')
			v++;
	}
}

/* Hex masks (signals, capabilities) and where they go. */
struct status_mask {
	const char *key;
	size_t off;
	unsigned seen;
};

static const struct status_mask status_masks[] = {
    {"SigPnd", offsetof(struct proc_status, sig_pnd), SEEN_SIGS},
    {"ShdPnd", offsetof(struct proc_status, shd_pnd), 0},
    {"SigBlk", offsetof(struct proc_status, sig_blk), 0},
    {"SigIgn", offsetof(struct proc_status, sig_ign), 0},
    {"SigCgt", offsetof(struct proc_status, sig_cgt), 0},
    {"CapInh", offsetof(struct proc_status, cap_inh), 0},
    {"CapPrm", offsetof(struct proc_status, cap_prm), 0},
    {"CapEff", offsetof(struct proc_status, cap_eff), SEEN_CAPS},
    {"CapBnd", offsetof(struct proc_status, cap_bnd), 0},
    {"CapAmb", offsetof(struct proc_status, cap_amb), 0},
};

/* Integer fields that must fit an int. */
struct status_int {
	const char *key;
	size_t off;
	unsigned seen;
};

static const struct status_int status_ints[] = {
    {"Tgid", offsetof(struct proc_status, tgid), SEEN_TGID},
    {"Pid", offsetof(struct proc_status, pid), SEEN_PID},
    {"PPid", offsetof(struct proc_status, ppid), SEEN_PPID},
    {"TracerPid", offsetof(struct proc_status, tracer_pid), 0},
    {"Threads", offsetof(struct proc_status, threads), 0},
    {"NoNewPrivs", offsetof(struct proc_status, no_new_privs), 0},
    {"Seccomp", offsetof(struct proc_status, seccomp), 0},
};

/* 1 if handled, 0 if not one of the table keys, negative on a bad value. */
static int status_table_field(const char *key, const char *val, struct proc_status *st,
			      unsigned *seen)
{
	for (size_t i = 0; i < ARRAY_SIZE(status_masks); i++) {
		uint64_t x;

		if (strcmp(key, status_masks[i].key))
			continue;
		if (parse_u64_tok(val, 16, &x, &val) < 0 || *skip_spaces(val))
			return -EINVAL;
		memcpy((char *)st + status_masks[i].off, &x, sizeof(x));
		*seen |= status_masks[i].seen;
		return 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(status_ints); i++) {
		int x;

		if (strcmp(key, status_ints[i].key))
			continue;
		if (parse_int_tok(val, &x) < 0)
			return -EINVAL;
		memcpy((char *)st + status_ints[i].off, &x, sizeof(x));
		*seen |= status_ints[i].seen;
		return 1;
	}
	return 0;
}

static int status_field(const char *key, const char *val, struct proc_status *st, unsigned *seen)
{
	int r = status_table_field(key, val, st, seen);

	if (r)
		return r < 0 ? r : 0;
	if (!strcmp(key, "Name")) {
		/* The name may hold spaces; only the single tab after the colon is ours. */
		if (*val == '\t')
			val++;
		snprintf(st->name, sizeof(st->name), "%s", val);
		*seen |= SEEN_NAME;
	} else if (!strcmp(key, "State")) {
		val = skip_spaces(val);
		if (!*val)
			return -EINVAL;
		st->state = *val;
		*seen |= SEEN_STATE;
	} else if (!strcmp(key, "VmLck")) {
		uint64_t x;

		val = skip_spaces(val);
		if (parse_u64_tok(val, 10, &x, &val) < 0 || strcmp(skip_spaces(val), "kB"))
			return -EINVAL;
		st->vm_lck_kb = x;
		st->has_vm_lck = true;
	} else if (!strcmp(key, "Umask")) {
		uint64_t x;

		if (parse_u64_tok(val, 8, &x, &val) < 0 || x > 0777 || *skip_spaces(val))
			return -EINVAL;
		st->umask = (uint32_t)x;
		st->has_umask = true;
	} else if (!strcmp(key, "Uid")) {
		if (parse_id4(val, st->uid) < 0)
			return -EINVAL;
		*seen |= SEEN_UID;
	} else if (!strcmp(key, "Gid")) {
		if (parse_id4(val, st->gid) < 0)
			return -EINVAL;
		*seen |= SEEN_GID;
	} else if (!strcmp(key, "Groups")) {
		return parse_groups(val, st);
	} else if (!strcmp(key, "x86_Thread_features")) {
		char buf[128];

		snprintf(buf, sizeof(buf), " %s ", val);
		for (char *c = buf; *c; c++)
			if (*c == '\t')
				*c = ' ';
		st->shstk = strstr(buf, " shstk ") != NULL;
	} else if (!strcmp(key, "NSpid")) {
		st->nspid_levels = count_tokens(val);
		if (st->nspid_levels < 1)
			return -EINVAL;
	}
	return 0;
}

static const struct {
	unsigned bit;
	const char *key;
} status_required[] = {
    {SEEN_NAME, "Name"}, {SEEN_STATE, "State"}, {SEEN_TGID, "Tgid"},
    {SEEN_PID, "Pid"},	 {SEEN_PPID, "PPid"},	{SEEN_UID, "Uid"},
    {SEEN_GID, "Gid"},	 {SEEN_CAPS, "CapEff"}, {SEEN_SIGS, "SigPnd"},
};

static int parse_status(const char *text, const char *src, struct proc_status *ret,
			struct ckpt_error *e)
{
	_cleanup_free_ char *copy = strdup(text);
	struct proc_status st = {.nspid_levels = 1};
	struct line_iter it;
	unsigned seen = 0;
	char *line;

	if (!copy)
		return ckpt_err(e, -ENOMEM, "%s: out of memory", src);
	it = (struct line_iter){.p = copy};
	while ((line = next_line(&it))) {
		char *colon = strchr(line, ':');
		int r;

		if (!*line)
			continue;
		if (!colon)
			return parse_err(e, src, it.no, "no \"key:\" in \"%.40s\"", line);
		*colon = '\0';
		r = status_field(line, colon + 1, &st, &seen);
		if (r == -E2BIG)
			return parse_err(e, src, it.no, "more than %zu Groups",
					 ARRAY_SIZE(st.groups));
		if (r < 0)
			return parse_err(e, src, it.no, "bad %s", line);
	}
	for (size_t i = 0; i < ARRAY_SIZE(status_required); i++)
		if (!(seen & status_required[i].bit))
			return parse_err(e, src, 0, "no %s field", status_required[i].key);
	*ret = st;
	return 0;
}

int proc_parse_status_text(const char *text, struct proc_status *ret, struct ckpt_error *e)
{
	return parse_status(text, "status", ret, e);
}

int proc_parse_status(pid_t pid, struct proc_status *ret, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	char src[64];
	int r;

	r = ckpt_fault_inject("proc-status", e);
	if (r < 0)
		return r;
	r = read_pid_file(pid, "status", src, sizeof(src), &text, e);
	if (r < 0)
		return r;
	return parse_status(text, src, ret, e);
}

/* ---- fdinfo ---------------------------------------------------------------------- */

static int parse_fdinfo(const char *text, const char *src, struct proc_fdinfo *ret,
			struct ckpt_error *e)
{
	_cleanup_free_ char *copy = strdup(text);
	struct proc_fdinfo fi = {.mnt_id = -1};
	bool have_pos = false, have_flags = false;
	struct line_iter it;
	char *line;

	if (!copy)
		return ckpt_err(e, -ENOMEM, "%s: out of memory", src);
	it = (struct line_iter){.p = copy};
	while ((line = next_line(&it))) {
		uint64_t x;
		const char *end;

		/* Kind-specific lines (eventfd-count, tfd, inotify...) are not ours. */
		if (!strncmp(line, "pos:", 4)) {
			if (parse_u64_tok(line + 4, 10, &fi.pos, &end) < 0 || *skip_spaces(end))
				return parse_err(e, src, it.no, "bad pos");
			have_pos = true;
		} else if (!strncmp(line, "flags:", 6)) {
			if (parse_u64_tok(line + 6, 8, &x, &end) < 0 || x > UINT32_MAX ||
			    *skip_spaces(end))
				return parse_err(e, src, it.no, "bad flags");
			fi.flags = (uint32_t)x;
			have_flags = true;
		} else if (!strncmp(line, "mnt_id:", 7)) {
			if (parse_int_tok(line + 7, &fi.mnt_id) < 0)
				return parse_err(e, src, it.no, "bad mnt_id");
		} else if (!strncmp(line, "ino:", 4)) {
			if (parse_u64_tok(line + 4, 10, &fi.ino, &end) < 0 || *skip_spaces(end))
				return parse_err(e, src, it.no, "bad ino");
		}
	}
	if (!have_pos)
		return parse_err(e, src, 0, "no pos field");
	if (!have_flags)
		return parse_err(e, src, 0, "no flags field");
	*ret = fi;
	return 0;
}

int proc_parse_fdinfo_text(const char *text, struct proc_fdinfo *ret, struct ckpt_error *e)
{
	return parse_fdinfo(text, "fdinfo", ret, e);
}

/* /proc/PID/fdinfo/FD into *ret (malloc'ed); src names it for messages. */
static int read_fdinfo(pid_t pid, int fd, char src[64], char **ret, struct ckpt_error *e)
{
	char name[32];

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	return read_pid_file(pid, name, src, 64, ret, e);
}

int proc_parse_fdinfo(pid_t pid, int fd, struct proc_fdinfo *ret, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	char src[64];
	int r = read_fdinfo(pid, fd, src, &text, e);

	return r < 0 ? r : parse_fdinfo(text, src, ret, e);
}

int proc_read_fdinfo(pid_t pid, int fd, struct proc_fdinfo *ret, char **ret_text,
		     struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	char src[64];
	int r = read_fdinfo(pid, fd, src, &text, e);

	if (r >= 0)
		r = parse_fdinfo(text, src, ret, e);
	if (r >= 0)
		*ret_text = TAKE_PTR(text);
	return r;
}

void proc_lock_list_free(struct proc_lock_list *l)
{
	if (!l)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/*
 * "lock:\t1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF", as the kernel's
 * lock_get_status() prints it: an id, the kind (POSIX, OFDLCK, FLOCK,
 * LEASE, DELEG, ACCESS...) and its mode (ADVISORY, or for leases ACTIVE,
 * BREAKING, BREAKER), the type, the pid, the device and inode, the range.
 */
static int parse_lock(const char *line, struct proc_lock *ret)
{
	char id[24], kind[16], mode[16], type[16], pid[24], inode[64], start[24], end[24];
	struct proc_lock l = {0};
	const char *tok_end;

	if (sscanf(line, "%23s %15s %15s %15s %23s %63s %23s %23s", id, kind, mode, type, pid,
		   inode, start, end) != 8)
		return -EINVAL;
	snprintf(l.what, sizeof(l.what), "%s", kind);
	if (!strcmp(kind, "POSIX"))
		l.kind = PROC_LOCK_POSIX;
	else if (!strcmp(kind, "OFDLCK"))
		l.kind = PROC_LOCK_OFD;
	else if (!strcmp(kind, "FLOCK"))
		l.kind = PROC_LOCK_FLOCK;
	else if (!strcmp(kind, "LEASE"))
		l.kind = PROC_LOCK_LEASE;
	else
		l.kind = PROC_LOCK_OTHER;
	if (!strcmp(type, "WRITE"))
		l.write = true;
	else if (strcmp(type, "READ"))
		l.kind = PROC_LOCK_OTHER; /* UNLCK: a lease given up, being broken */
	l.lease_breaking = !strcmp(kind, "LEASE") && strcmp(mode, "ACTIVE");
	if (parse_u64_tok(start, 10, &l.start, &tok_end) < 0 || *tok_end)
		return -EINVAL;
	if (!strcmp(end, "EOF"))
		l.to_eof = true;
	else if (parse_u64_tok(end, 10, &l.end, &tok_end) < 0 || *tok_end || l.end < l.start)
		return -EINVAL;
	*ret = l;
	return 0;
}

static int parse_fdinfo_locks(const char *text, const char *src, struct proc_lock_list *ret,
			      struct ckpt_error *e)
{
	_cleanup_free_ char *copy = strdup(text);
	struct proc_lock_list l = {0};
	struct line_iter it;
	char *line;

	if (!copy)
		return ckpt_err(e, -ENOMEM, "%s: out of memory", src);
	it = (struct line_iter){.p = copy};
	while ((line = next_line(&it))) {
		struct proc_lock *v;

		if (strncmp(line, "lock:", 5))
			continue;
		v = realloc(l.v, (l.n + 1) * sizeof(*v));
		if (!v) {
			proc_lock_list_free(&l);
			return ckpt_err(e, -ENOMEM, "%s: out of memory", src);
		}
		l.v = v;
		if (parse_lock(line + 5, &l.v[l.n]) < 0) {
			proc_lock_list_free(&l);
			return parse_err(e, src, it.no, "bad lock line");
		}
		l.n++;
	}
	*ret = l;
	return 0;
}

int proc_parse_fdinfo_locks_text(const char *text, struct proc_lock_list *ret, struct ckpt_error *e)
{
	return parse_fdinfo_locks(text, "fdinfo", ret, e);
}

int proc_parse_fdinfo_locks(pid_t pid, int fd, struct proc_lock_list *ret, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	char src[64];
	int r = read_fdinfo(pid, fd, src, &text, e);

	return r < 0 ? r : parse_fdinfo_locks(text, src, ret, e);
}

int proc_fdinfo_locks(pid_t pid, int fd, const char *text, struct proc_lock_list *ret,
		      struct ckpt_error *e)
{
	char src[64];

	snprintf(src, sizeof(src), "/proc/%d/fdinfo/%d", (int)pid, fd);
	return parse_fdinfo_locks(text, src, ret, e);
}

/* ---- limits ---------------------------------------------------------------------- */

/* Row names of /proc/PID/limits, indexed by RLIMIT_*. */
static const char *const limit_names[] = {
    [RLIMIT_CPU] = "Max cpu time",
    [RLIMIT_FSIZE] = "Max file size",
    [RLIMIT_DATA] = "Max data size",
    [RLIMIT_STACK] = "Max stack size",
    [RLIMIT_CORE] = "Max core file size",
    [RLIMIT_RSS] = "Max resident set",
    [RLIMIT_NPROC] = "Max processes",
    [RLIMIT_NOFILE] = "Max open files",
    [RLIMIT_MEMLOCK] = "Max locked memory",
    [RLIMIT_AS] = "Max address space",
    [RLIMIT_LOCKS] = "Max file locks",
    [RLIMIT_SIGPENDING] = "Max pending signals",
    [RLIMIT_MSGQUEUE] = "Max msgqueue size",
    [RLIMIT_NICE] = "Max nice priority",
    [RLIMIT_RTPRIO] = "Max realtime priority",
    [RLIMIT_RTTIME] = "Max realtime timeout",
};
_Static_assert(ARRAY_SIZE(limit_names) == 16, "RLIMIT_NLIMITS is 16 in proc.h");

static int parse_limit_value(const char *s, const char **end, uint64_t *ret)
{
	s = skip_spaces(s);
	if (!strncmp(s, "unlimited", 9) && (!s[9] || isspace((unsigned char)s[9]))) {
		*ret = RLIM_INFINITY;
		*end = s + 9;
		return 0;
	}
	return parse_u64_tok(s, 10, ret, end);
}

static int parse_limits(const char *text, const char *src, struct proc_rlimit ret[16],
			struct ckpt_error *e)
{
	_cleanup_free_ char *copy = strdup(text);
	struct proc_rlimit lim[16] = {};
	unsigned seen = 0;
	struct line_iter it;
	char *line;

	if (!copy)
		return ckpt_err(e, -ENOMEM, "%s: out of memory", src);
	it = (struct line_iter){.p = copy};
	while ((line = next_line(&it))) {
		size_t i, nlen = 0;
		const char *v;

		if (!*line || !strncmp(line, "Limit ", 6))
			continue;
		for (i = 0; i < ARRAY_SIZE(limit_names); i++) {
			nlen = strlen(limit_names[i]);
			if (!strncmp(line, limit_names[i], nlen) && line[nlen] == ' ')
				break;
		}
		if (i == ARRAY_SIZE(limit_names)) {
			/* A limit a newer kernel added: not ours to restore. */
			pr_debug("%s: line %u: unknown limit \"%.40s\"\n", src, it.no, line);
			continue;
		}
		if (parse_limit_value(line + nlen, &v, &lim[i].cur) < 0 ||
		    parse_limit_value(v, &v, &lim[i].max) < 0)
			return parse_err(e, src, it.no, "bad value of \"%s\"", limit_names[i]);
		seen |= 1u << i;
	}
	for (size_t i = 0; i < ARRAY_SIZE(limit_names); i++)
		if (!(seen & (1u << i)))
			return parse_err(e, src, 0, "no \"%s\" row", limit_names[i]);
	memcpy(ret, lim, sizeof(lim));
	return 0;
}

int proc_parse_limits_text(const char *text, struct proc_rlimit ret[16], struct ckpt_error *e)
{
	return parse_limits(text, "limits", ret, e);
}

int proc_parse_limits(pid_t pid, struct proc_rlimit ret[16], struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	char src[64];
	int r;

	r = read_pid_file(pid, "limits", src, sizeof(src), &text, e);
	if (r < 0)
		return r;
	return parse_limits(text, src, ret, e);
}

/* ---- misc ------------------------------------------------------------------------ */

int proc_read_auxv(pid_t pid, uint64_t **ret, size_t *ret_n, struct ckpt_error *e)
{
	char *buf = NULL;
	char src[64];
	size_t len;
	int r;

	snprintf(src, sizeof(src), "/proc/%d/auxv", (int)pid);
	r = proc_read_file(src, &buf, &len, e);
	if (r < 0)
		return r;
	if (len % (2 * sizeof(uint64_t))) {
		free(buf);
		return ckpt_err(e, -EINVAL, "%s: %zu bytes, not a whole number of pairs", src, len);
	}
	/* malloc'ed buffers are aligned for any type */
	*ret = (uint64_t *)(void *)buf;
	*ret_n = len / sizeof(uint64_t);
	return 0;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

static int pid_array_add(pid_t **arr, size_t *n, size_t *cap, pid_t v)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		pid_t *na = realloc(*arr, nc * sizeof(pid_t));

		if (!na)
			return -ENOMEM;
		*arr = na;
		*cap = nc;
	}
	(*arr)[(*n)++] = v;
	return 0;
}

/*
 * An io_uring worker (iou-wrk-TID, iou-sqp-TID): a kernel thread of the
 * process (PF_IO_WORKER in /proc/PID/task/TID/stat's flags) that never
 * stops for ptrace and holds no state of the program: the kernel makes
 * new ones when the ring needs them.
 */
#define PF_IO_WORKER_FLAG 0x10u

char proc_tid_state(pid_t pid, pid_t tid, bool *ret_io_worker)
{
	char path[96], buf[1024];
	const char *s;
	unsigned long flags;
	char state;
	ssize_t n;
	int fd;

	*ret_io_worker = false;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	s = strrchr(buf, ')');
	/* state ppid pgrp session tty_nr tpgid flags */
	if (!s || sscanf(s + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
		return 0;
	*ret_io_worker = flags & PF_IO_WORKER_FLAG;
	return state;
}

static int list_tids(pid_t pid, bool workers, pid_t **ret, size_t *ret_n, struct ckpt_error *e)
{
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_free_ pid_t *arr = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return ckpt_err_errno(e, -errno, "cannot open %s", path);
	errno = 0;
	while ((de = readdir(d))) {
		int tid;

		if (de->d_name[0] == '.')
			continue;
		if (parse_int_tok(de->d_name, &tid) < 0 || tid <= 0)
			return ckpt_err(e, -EINVAL, "%s: unexpected entry \"%s\"", path,
					de->d_name);
		if (!workers && tid != pid) {
			bool worker;

			proc_tid_state(pid, tid, &worker);
			if (worker)
				continue;
		}
		if (pid_array_add(&arr, &n, &cap, tid) < 0)
			return ckpt_err(e, -ENOMEM, "%s: out of memory", path);
		errno = 0;
	}
	if (errno)
		return ckpt_err_errno(e, -errno, "cannot read %s", path);
	if (!n)
		return ckpt_err(e, -ESRCH, "%s: no tasks (process %d exited?)", path, (int)pid);
	qsort(arr, n, sizeof(pid_t), cmp_pid);
	*ret = TAKE_PTR(arr);
	*ret_n = n;
	return 0;
}

int proc_list_tasks(pid_t pid, pid_t **ret, size_t *ret_n, struct ckpt_error *e)
{
	return list_tids(pid, false, ret, ret_n, e);
}

int proc_list_tids(pid_t pid, pid_t **ret, size_t *ret_n, struct ckpt_error *e)
{
	return list_tids(pid, true, ret, ret_n, e);
}

int proc_list_children(pid_t pid, pid_t tid, pid_t **ret, size_t *ret_n, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ pid_t *arr = NULL;
	size_t n = 0, cap = 0;
	const char *s;
	char path[96];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)tid);
	r = proc_read_file(path, &text, NULL, e);
	if (r < 0)
		return r;
	/* Always hand back an allocation, even for no children. */
	arr = malloc(sizeof(pid_t));
	if (!arr)
		return ckpt_err(e, -ENOMEM, "%s: out of memory", path);
	cap = 1;
	for (s = text;;) {
		uint64_t v;

		s = skip_spaces(s);
		while (*s == '\n')
			s = skip_spaces(s + 1);
		if (!*s)
			break;
		if (parse_u64_tok(s, 10, &v, &s) < 0 || v == 0 || v > INT32_MAX)
			return ckpt_err(e, -EINVAL, "%s: bad pid near \"%.20s\"", path, s);
		if (pid_array_add(&arr, &n, &cap, (pid_t)v) < 0)
			return ckpt_err(e, -ENOMEM, "%s: out of memory", path);
	}
	*ret = TAKE_PTR(arr);
	*ret_n = n;
	return 0;
}

int proc_readlink(pid_t pid, const char *name, char *buf, size_t len, struct ckpt_error *e)
{
	char path[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	if (len == 0)
		return ckpt_err(e, -EINVAL, "%s: no room for the link", path);
	n = readlink(path, buf, len);
	if (n < 0)
		return ckpt_err_errno(e, -errno, "cannot read link %s", path);
	if ((size_t)n >= len)
		return ckpt_err(e, -ENAMETOOLONG, "%s: link longer than %zu bytes", path, len - 1);
	buf[n] = '\0';
	return 0;
}
