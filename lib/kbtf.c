/* SPDX-License-Identifier: MIT */
/*
 * BTF of the running kernel: the blob is mapped (Linux 6.16+: the kernel's
 * own pages, nothing copied) or else read whole, every type record is
 * indexed by id, and the few lookups the kernel reader needs walk that
 * index. Only what is needed is understood: the record sizes of every kind
 * (to step over them), members of structs and unions, and function names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/btf.h>

#include "cleanup.h"
#include "kbtf.h"
#include "thp.h"

#define KBTF_MAX_SIZE (256u << 20)
/* the depth of nested anonymous structs and unions looked through */
#define KBTF_MAX_NEST 8

struct kbtf {
	uint8_t *data;
	size_t len;
	bool mapped; /* data is a mapping of the file (else malloc'ed) */
	const char *strs;
	uint32_t strs_len;
	const struct btf_type **types; /* by id; types[0] is void (NULL) */
	uint32_t n;
	size_t types_len; /* bytes mapped for types (thp_map) */
};

void kbtf_free(struct kbtf *b)
{
	if (!b)
		return;
	if (b->types)
		thp_unmap(b->types, b->types_len);
	if (b->mapped)
		munmap(b->data, b->len);
	else
		free(b->data);
	free(b);
}

static int read_all(const char *path, uint8_t **ret, size_t *ret_len, struct ckpt_error *e)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (fd < 0)
		return ckpt_err_errno(e, -errno, "%s", path);
	for (;;) {
		ssize_t n;

		if (len == cap) {
			uint8_t *nb;

			if (cap >= KBTF_MAX_SIZE)
				return ckpt_err(e, -EFBIG, "%s is larger than %u bytes", path,
						KBTF_MAX_SIZE);
			cap = cap ? cap * 2 : (8u << 20);
			nb = realloc(buf, cap);
			if (!nb)
				return ckpt_err(e, -ENOMEM, "out of memory reading %s", path);
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ckpt_err_errno(e, -errno, "reading %s", path);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

/* The file mapped read-only, where the kernel allows it (sysfs BTF: 6.16+). */
static int map_all(const char *path, struct kbtf *b)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	void *p;

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > KBTF_MAX_SIZE)
		return -1;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	b->data = p;
	b->len = (size_t)st.st_size;
	b->mapped = true;
	return 0;
}

/* Bytes that follow the struct btf_type of t; -1 for a kind not known here. */
static long extra_size(const struct btf_type *t)
{
	uint32_t vlen = BTF_INFO_VLEN(t->info);

	switch (BTF_INFO_KIND(t->info)) {
	case BTF_KIND_INT:
	case BTF_KIND_VAR:
	case BTF_KIND_DECL_TAG:
		return 4;
	case BTF_KIND_ARRAY:
		return sizeof(struct btf_array);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		return (long)vlen * (long)sizeof(struct btf_member);
	case BTF_KIND_ENUM:
		return (long)vlen * (long)sizeof(struct btf_enum);
	case BTF_KIND_FUNC_PROTO:
		return (long)vlen * (long)sizeof(struct btf_param);
	case BTF_KIND_DATASEC:
		return (long)vlen * (long)sizeof(struct btf_var_secinfo);
	case BTF_KIND_ENUM64:
		return (long)vlen * 12;
	case BTF_KIND_PTR:
	case BTF_KIND_FWD:
	case BTF_KIND_TYPEDEF:
	case BTF_KIND_VOLATILE:
	case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT:
	case BTF_KIND_FUNC:
	case BTF_KIND_FLOAT:
	case BTF_KIND_TYPE_TAG:
		return 0;
	default:
		return -1;
	}
}

static int index_types(struct kbtf *b, const char *path, struct ckpt_error *e)
{
	const struct btf_header *h = (const struct btf_header *)b->data;
	const uint8_t *types, *p, *end;

	if (b->len < sizeof(*h) || h->magic != BTF_MAGIC || h->hdr_len < sizeof(*h) ||
	    h->hdr_len > b->len)
		return ckpt_err(e, -EINVAL, "%s is not BTF (magic %#x)", path,
				b->len >= 2 ? h->magic : 0);
	if ((uint64_t)h->hdr_len + h->type_off + h->type_len > b->len ||
	    (uint64_t)h->hdr_len + h->str_off + h->str_len > b->len || h->str_len == 0)
		return ckpt_err(e, -EINVAL, "%s: sections beyond its %zu bytes", path, b->len);
	b->strs = (const char *)b->data + h->hdr_len + h->str_off;
	b->strs_len = h->str_len;
	if (b->strs[b->strs_len - 1] != '\0')
		return ckpt_err(e, -EINVAL, "%s: string section not terminated", path);
	types = b->data + h->hdr_len + h->type_off;
	end = types + h->type_len;
	/*
	 * One slot per type at most every sizeof(struct btf_type) bytes, in
	 * huge pages: the vmlinux BTF's 150,000 types filled 1.2 MB of fresh
	 * memory 4 KiB at a time (and copied it twice growing), about 3 ms
	 * here (thp.h)
	 */
	b->types_len = ((size_t)h->type_len / sizeof(struct btf_type) + 2) * sizeof(*b->types);
	b->types = thp_map(b->types_len);
	if (!b->types) {
		b->types_len = 0;
		return ckpt_err(e, -ENOMEM, "out of memory indexing %s", path);
	}
	b->types[0] = NULL;
	b->n = 1; /* id 0 is void */
	for (p = types; p < end;) {
		const struct btf_type *t = (const struct btf_type *)p;
		long extra;

		if ((size_t)(end - p) < sizeof(*t))
			return ckpt_err(e, -EINVAL, "%s: type %u cut short", path, b->n);
		extra = extra_size(t);
		if (extra < 0)
			return ckpt_err(e, -EINVAL, "%s: type %u has kind %u, not known here", path,
					b->n, BTF_INFO_KIND(t->info));
		if ((size_t)(end - p) < sizeof(*t) + (size_t)extra)
			return ckpt_err(e, -EINVAL, "%s: type %u cut short", path, b->n);
		b->types[b->n++] = t;
		p += sizeof(*t) + (size_t)extra;
	}
	return 0;
}

int kbtf_load(const char *path, struct kbtf **ret, struct ckpt_error *e)
{
	_cleanup_(kbtf_freep) struct kbtf *b = calloc(1, sizeof(*b));
	int r;

	if (!path)
		path = "/sys/kernel/btf/vmlinux";
	if (!b)
		return ckpt_err(e, -ENOMEM, "out of memory");
	/* about 10 ms less than reading 5 MiB into fresh memory here */
	if (map_all(path, b) < 0)
		r = read_all(path, &b->data, &b->len, e);
	else
		r = 0;
	if (r < 0)
		return r == -ENOENT ? ckpt_err(e, r, "this kernel has no BTF (%s)", path) : r;
	r = index_types(b, path, e);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(b);
	return 0;
}

static const char *name_of(const struct kbtf *b, const struct btf_type *t)
{
	return t->name_off < b->strs_len ? b->strs + t->name_off : "";
}

static const struct btf_type *type_at(const struct kbtf *b, uint32_t id)
{
	return id && id < b->n ? b->types[id] : NULL;
}

/* t with typedefs and qualifiers looked through (NULL: void or a bad id). */
static const struct btf_type *resolve(const struct kbtf *b, const struct btf_type *t)
{
	for (int i = 0; t && i < 32; i++) {
		switch (BTF_INFO_KIND(t->info)) {
		case BTF_KIND_TYPEDEF:
		case BTF_KIND_VOLATILE:
		case BTF_KIND_CONST:
		case BTF_KIND_RESTRICT:
		case BTF_KIND_TYPE_TAG:
			t = type_at(b, t->type);
			break;
		default:
			return t;
		}
	}
	return NULL;
}

/* The size in bytes of a value of type t (0: not known). */
static uint32_t size_of(const struct kbtf *b, const struct btf_type *t)
{
	t = resolve(b, t);
	if (!t)
		return 0;
	switch (BTF_INFO_KIND(t->info)) {
	case BTF_KIND_PTR:
		return sizeof(void *);
	case BTF_KIND_ARRAY: {
		const struct btf_array *a = (const struct btf_array *)(t + 1);
		uint64_t s = (uint64_t)size_of(b, type_at(b, a->type)) * a->nelems;

		return s > UINT32_MAX ? 0 : (uint32_t)s;
	}
	case BTF_KIND_INT:
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
	case BTF_KIND_ENUM:
	case BTF_KIND_ENUM64:
	case BTF_KIND_FLOAT:
		return t->size;
	default:
		return 0;
	}
}

static bool is_aggregate(const struct btf_type *t)
{
	return t && (BTF_INFO_KIND(t->info) == BTF_KIND_STRUCT ||
		     BTF_INFO_KIND(t->info) == BTF_KIND_UNION);
}

/*
 * Member name of aggregate t, looking through anonymous members: its bit
 * offset from t's start into *ret_bits, the member itself into *ret.
 */
static bool find_member(const struct kbtf *b, const struct btf_type *t, const char *name,
			size_t name_len, int depth, uint64_t *ret_bits,
			const struct btf_member **ret, bool *ret_bitfield)
{
	const struct btf_member *m = (const struct btf_member *)(t + 1);
	bool kflag = BTF_INFO_KFLAG(t->info);

	for (uint32_t i = 0; i < BTF_INFO_VLEN(t->info); i++, m++) {
		uint32_t bits = kflag ? BTF_MEMBER_BIT_OFFSET(m->offset) : m->offset;
		const char *mn = m->name_off < b->strs_len ? b->strs + m->name_off : "";
		const struct btf_type *mt;
		uint64_t inner;

		if (*mn) {
			if (strlen(mn) == name_len && !memcmp(mn, name, name_len)) {
				*ret_bits = bits;
				*ret = m;
				*ret_bitfield = kflag && BTF_MEMBER_BITFIELD_SIZE(m->offset);
				return true;
			}
			continue;
		}
		mt = resolve(b, type_at(b, m->type));
		if (depth < KBTF_MAX_NEST && is_aggregate(mt) &&
		    find_member(b, mt, name, name_len, depth + 1, &inner, ret, ret_bitfield)) {
			*ret_bits = bits + inner;
			return true;
		}
	}
	return false;
}

static const struct btf_type *find_named(const struct kbtf *b, unsigned kind, const char *name,
					 uint32_t *ret_id)
{
	for (uint32_t id = 1; id < b->n; id++) {
		const struct btf_type *t = b->types[id];

		if (BTF_INFO_KIND(t->info) == kind && !strcmp(name_of(b, t), name)) {
			if (ret_id)
				*ret_id = id;
			return t;
		}
	}
	return NULL;
}

int kbtf_member(const struct kbtf *b, const char *sname, const char *path, uint32_t *ret_off,
		uint32_t *ret_size, struct ckpt_error *e)
{
	const struct btf_type *t = find_named(b, BTF_KIND_STRUCT, sname, NULL);
	const struct btf_member *m = NULL;
	uint64_t bits = 0;
	bool bitfield = false;

	if (!t)
		return ckpt_err(e, -ENOENT, "this kernel's BTF has no struct %s", sname);
	for (const char *p = path; *p;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		uint64_t inner;

		if (!is_aggregate(t) || !find_member(b, t, p, len, 0, &inner, &m, &bitfield))
			return ckpt_err(e, -ENOENT, "this kernel's struct %s has no member %s",
					sname, path);
		bits += inner;
		t = resolve(b, type_at(b, m->type));
		p = dot ? dot + 1 : p + len;
	}
	if (!m)
		return ckpt_err(e, -EINVAL, "struct %s: no member named", sname);
	if (bits % 8 || bitfield)
		return ckpt_err(e, -EINVAL, "struct %s: member %s is a bit field", sname, path);
	if (ret_off)
		*ret_off = (uint32_t)(bits / 8);
	if (ret_size)
		*ret_size = size_of(b, t);
	return 0;
}

int kbtf_func_id(const struct kbtf *b, const char *name, uint32_t *ret_id, struct ckpt_error *e)
{
	if (!find_named(b, BTF_KIND_FUNC, name, ret_id))
		return ckpt_err(e, -ENOENT, "this kernel's BTF has no function %s", name);
	return 0;
}
