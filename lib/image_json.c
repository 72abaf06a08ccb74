/* SPDX-License-Identifier: MIT */
/*
 * JSON of images for `ckptctl show`: a generic printer that walks the
 * protobuf-c descriptors (every scalar type, enums by name, bytes as hex,
 * nested and repeated fields, optional fields only when present), so a new
 * field or kind needs no code here. The output format is in docs/images.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "image.h"

/* --- JSON ------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * A JSON string. Bytes that are not valid UTF-8 (paths may hold any byte) are
 * printed as \u00XX, i.e. read as Latin-1, so that the output stays valid JSON.
 */
void img_json_string(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str);

	fputc('"', out);
	while (n) {
		size_t l = utf8_seq_len(s, n);

		if (l == 1 && *s == '"')
			fputs("\\\"", out);
		else if (l == 1 && *s == '\\')
			fputs("\\\\", out);
		else if (l == 1 && *s == '\n')
			fputs("\\n", out);
		else if (l == 1 && *s == '\t')
			fputs("\\t", out);
		else if (l == 1 && *s == '\r')
			fputs("\\r", out);
		else if (l == 0 || *s < 0x20 || *s == 0x7f)
			fprintf(out, "\\u%04x", *s);
		else
			fwrite(s, 1, l, out);
		if (!l)
			l = 1;
		s += l;
		n -= l;
	}
	fputc('"', out);
}

static void json_newline(FILE *out, int indent)
{
	if (indent < 0) {
		fputc(' ', out);
		return;
	}
	fprintf(out, "\n%*s", indent, "");
}

static size_t field_elem_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default: /* 32-bit integers, float, enum */
		return 4;
	}
}

static void json_double(FILE *out, double v)
{
	if (isfinite(v))
		fprintf(out, "%.17g", v);
	else
		fputs("null", out);
}

static void json_value(FILE *out, const ProtobufCFieldDescriptor *f, const void *p, int indent)
{
	const ProtobufCEnumValue *ev;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(out, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(out, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(out, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(out, "%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		json_double(out, *(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		json_double(out, *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)p ? "true" : "false", out);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		ev = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
		if (ev)
			img_json_string(out, ev->name);
		else
			fprintf(out, "%d", *(const int *)p);
		break;
	case PROTOBUF_C_TYPE_STRING:
		if (*(char *const *)p)
			img_json_string(out, *(char *const *)p);
		else
			fputs("null", out);
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;

		fputc('"', out);
		for (size_t i = 0; i < b->len; i++)
			fprintf(out, "%02x", b->data[i]);
		fputc('"', out);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		if (*(ProtobufCMessage *const *)p)
			img_msg_to_json(out, *(ProtobufCMessage *const *)p, indent);
		else
			fputs("null", out);
		break;
	}
}

/* Is an optional (or proto3 plain) field present in msg? */
static bool field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	const char *base = (const char *)msg;

	if (f->label == PROTOBUF_C_LABEL_REQUIRED)
		return true;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
	if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(void *const *)(base + f->offset) != NULL;
	if (f->label == PROTOBUF_C_LABEL_NONE)
		return true;
	return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
}

static void json_repeated(FILE *out, const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
			  int indent)
{
	const char *base = (const char *)msg;
	size_t n = *(const size_t *)(base + f->quantifier_offset);
	const char *arr = *(const char *const *)(base + f->offset);
	size_t sz = field_elem_size(f->type);
	/* arrays of messages one element per line, arrays of scalars on one line */
	bool multiline = f->type == PROTOBUF_C_TYPE_MESSAGE && indent >= 0;
	int inner = indent >= 0 ? indent + 2 : -1;

	fputc('[', out);
	for (size_t i = 0; i < n && arr; i++) {
		if (i)
			fputc(',', out);
		if (multiline)
			json_newline(out, inner);
		else if (i)
			fputc(' ', out);
		json_value(out, f, arr + i * sz, inner);
	}
	if (multiline && n)
		json_newline(out, indent);
	fputc(']', out);
}

void img_msg_to_json(FILE *out, const ProtobufCMessage *msg, int indent)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	int inner = indent >= 0 ? indent + 2 : -1;
	bool first = true;

	fputc('{', out);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->label != PROTOBUF_C_LABEL_REPEATED && !field_present(msg, f))
			continue;
		if (!first)
			fputc(',', out);
		first = false;
		json_newline(out, inner);
		img_json_string(out, f->name);
		fputs(": ", out);
		if (f->label == PROTOBUF_C_LABEL_REPEATED)
			json_repeated(out, msg, f, inner);
		else
			json_value(out, f, (const char *)msg + f->offset, inner);
	}
	if (!first) {
		if (indent >= 0)
			json_newline(out, indent);
		else
			fputc(' ', out);
	}
	fputc('}', out);
}

static int file_to_json(FILE *out, int dirfd, const char *name, struct ckpt_error *e)
{
	_cleanup_img_ struct img *img = NULL;
	const struct img_kind_desc *kd;
	bool first = true;
	int r;

	r = img_open_name(dirfd, name, &img, e);
	if (r < 0)
		return r;
	kd = img_kind_desc(img_get_kind(img));
	fputs("{\n  \"file\": ", out);
	img_json_string(out, name);
	fputs(",\n  \"kind\": ", out);
	img_json_string(out, kd->name);
	if (!kd->msg_desc) {
		fprintf(out, ",\n  \"data_bytes\": %" PRIu64 "\n}", img_pages_data_size(img));
		return 0;
	}
	fputs(",\n  \"entries\": [", out);
	for (;;) {
		ProtobufCMessage *m;

		r = img_read_msg(img, &m, e);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		fputs(first ? "\n    " : ",\n    ", out);
		first = false;
		img_msg_to_json(out, m, 4);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	fputs(first ? "]\n}" : "\n  ]\n}", out);
	return 0;
}

int img_file_to_json(FILE *out, int dirfd, const char *name, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	FILE *mem;
	int r;

	/* Print into memory first: a file that fails halfway prints nothing. */
	mem = open_memstream(&text, &len);
	if (!mem)
		return ckpt_err(e, -ENOMEM, "out of memory");
	r = file_to_json(mem, dirfd, name, e);
	if (fclose(mem) != 0 && r >= 0)
		r = ckpt_err(e, -ENOMEM, "%s: out of memory printing JSON", name);
	if (r < 0)
		return r;
	if (fwrite(text, 1, len, out) != len)
		return ckpt_err_errno(e, -EIO, "%s: cannot write JSON", name);
	return 0;
}
