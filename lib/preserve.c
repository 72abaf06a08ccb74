// SPDX-License-Identifier: MIT
/*
 * The registry file of preserved jobs (preserve.h): format, parser, atomic
 * save.
 */
#define LOG_PREFIX "preserve: "

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "log.h"
#include "preserve.h"

#define HDR_LEN (8 + 4 + 4)

const char *preserve_state_name(int state)
{
	switch (state) {
	case PRESERVE_STATE__PRESERVE_REGISTERED:
		return "registered";
	case PRESERVE_STATE__PRESERVE_SAVED:
		return "saved";
	case PRESERVE_STATE__PRESERVE_FAILED:
		return "failed";
	}
	return "unknown";
}

int preserve_name_check(const char *name, struct ckpt_error *e)
{
	size_t n = strlen(name);

	if (n == 0 || n > PRESERVE_NAME_MAX)
		return ckpt_err(e, -EINVAL, "name of %zu bytes: it must have 1 to %d", n,
				PRESERVE_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		if (name[i] < 0x20 || name[i] > 0x7e || name[i] == '/')
			return ckpt_err(e, -EINVAL,
					"name: byte %zu (0x%02x) is not printable ASCII or is '/'",
					i, (unsigned char)name[i]);
	return 0;
}

int preserve_entry_check(const PreserveEntry *pe, struct ckpt_error *e)
{
	int r;

	if (pe->id == 0)
		return ckpt_err(e, -EBADMSG, "entry: field id is 0");
	if (pe->pid <= 0)
		return ckpt_err(e, -EBADMSG, "entry %llu: field pid %d is not a pid",
				(unsigned long long)pe->id, pe->pid);
	if (pe->state != PRESERVE_STATE__PRESERVE_REGISTERED &&
	    pe->state != PRESERVE_STATE__PRESERVE_SAVED &&
	    pe->state != PRESERVE_STATE__PRESERVE_FAILED)
		return ckpt_err(e, -EBADMSG, "entry %llu: field state %d is not a state",
				(unsigned long long)pe->id, (int)pe->state);
	if (pe->name) {
		r = preserve_name_check(pe->name, e);
		if (r < 0) {
			ckpt_err_wrap(e, "entry %llu", (unsigned long long)pe->id);
			e->code = -EBADMSG;
			return -EBADMSG;
		}
	}
	if (pe->last_result && strlen(pe->last_result) > PRESERVE_RESULT_MAX)
		return ckpt_err(e, -EBADMSG, "entry %llu: field last_result is over %d bytes",
				(unsigned long long)pe->id, PRESERVE_RESULT_MAX);
	if (pe->n_groups > PRESERVE_GROUPS_MAX)
		return ckpt_err(e, -EBADMSG, "entry %llu: %zu groups, more than %d",
				(unsigned long long)pe->id, pe->n_groups, PRESERVE_GROUPS_MAX);
	return 0;
}

/*
 * Fields this version does not know (a newer ckptd's) are dropped: they
 * would be written back as they came, and protobuf-c keeps even a tag it
 * could not encode again the same way (an overlong varint), which would
 * make the next save unreadable (found by the fuzz target).
 */
static void drop_unknown(ProtobufCMessage *m)
{
	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		free(m->unknown_fields[i].data);
	free(m->unknown_fields);
	m->unknown_fields = NULL;
	m->n_unknown_fields = 0;
}

int preserve_parse(const uint8_t *buf, size_t len, PreserveRegistry **ret, struct ckpt_error *e)
{
	PreserveRegistry *reg;
	uint32_t mlen, crc;
	int r = 0;

	if (len > PRESERVE_FILE_MAX)
		return ckpt_err(e, -EFBIG, "registry of %zu bytes is over the %u-byte limit", len,
				PRESERVE_FILE_MAX);
	if (len < HDR_LEN)
		return ckpt_err(e, -EBADMSG, "registry of %zu bytes is shorter than its header",
				len);
	if (memcmp(buf, PRESERVE_MAGIC, 8))
		return ckpt_err(e, -EBADMSG, "registry: bad magic (not a ckpt registry file)");
	memcpy(&mlen, buf + 8, 4);
	memcpy(&crc, buf + 12, 4);
	mlen = le32toh(mlen);
	crc = le32toh(crc);
	if (mlen != len - HDR_LEN)
		return ckpt_err(
		    e, -EBADMSG,
		    "registry: header says %u bytes of message, %zu follow (truncated?)", mlen,
		    len - HDR_LEN);
	if (crc32c(0, buf + HDR_LEN, mlen) != crc)
		return ckpt_err(e, -EBADMSG, "registry: checksum mismatch (corrupt)");
	reg = preserve_registry__unpack(NULL, mlen, buf + HDR_LEN);
	if (!reg)
		return ckpt_err(e, -EBADMSG, "registry: the message does not unpack");
	drop_unknown(&reg->base);
	for (size_t i = 0; i < reg->n_entries; i++)
		drop_unknown(&reg->entries[i]->base);
	if (reg->version != PRESERVE_VERSION)
		r = ckpt_err(e, -EBADMSG, "registry: version %u, this ckptd reads version %d",
			     reg->version, PRESERVE_VERSION);
	else if (reg->n_entries > PRESERVE_ENTRIES_MAX)
		r = ckpt_err(e, -EBADMSG, "registry: %zu entries, more than %d", reg->n_entries,
			     PRESERVE_ENTRIES_MAX);
	for (size_t i = 0; r == 0 && i < reg->n_entries; i++) {
		const PreserveEntry *pe = reg->entries[i];

		r = preserve_entry_check(pe, e);
		if (r == 0 && pe->id >= reg->next_id)
			r = ckpt_err(e, -EBADMSG, "registry: entry %llu: id not below next_id %llu",
				     (unsigned long long)pe->id, (unsigned long long)reg->next_id);
		for (size_t k = 0; r == 0 && k < i; k++)
			if (reg->entries[k]->id == pe->id)
				r = ckpt_err(e, -EBADMSG, "registry: id %llu appears twice",
					     (unsigned long long)pe->id);
		if (r < 0 && strncmp(e->msg, "registry", 8))
			ckpt_err_wrap(e, "registry");
	}
	if (r < 0) {
		preserve_registry__free_unpacked(reg, NULL);
		return r;
	}
	*ret = reg;
	return 0;
}

int preserve_pack(const PreserveRegistry *reg, uint8_t **ret, size_t *ret_len, struct ckpt_error *e)
{
	size_t mlen = preserve_registry__get_packed_size(reg);
	uint8_t *buf;
	uint32_t v;

	if (mlen + HDR_LEN > PRESERVE_FILE_MAX)
		return ckpt_err(e, -EFBIG, "registry would be over %u bytes", PRESERVE_FILE_MAX);
	buf = malloc(mlen + HDR_LEN);
	if (!buf)
		return ckpt_err(e, -ENOMEM, "out of memory");
	memcpy(buf, PRESERVE_MAGIC, 8);
	preserve_registry__pack(reg, buf + HDR_LEN);
	v = htole32((uint32_t)mlen);
	memcpy(buf + 8, &v, 4);
	v = htole32(crc32c(0, buf + HDR_LEN, mlen));
	memcpy(buf + 12, &v, 4);
	*ret = buf;
	*ret_len = mlen + HDR_LEN;
	return 0;
}

void preserve_registry_free(PreserveRegistry *reg)
{
	if (reg)
		preserve_registry__free_unpacked(reg, NULL);
}

int preserve_load(int dirfd, PreserveRegistry **ret, struct ckpt_error *e)
{
	_cleanup_close_ int fd =
	    openat(dirfd, PRESERVE_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	_cleanup_free_ uint8_t *buf = NULL;
	struct stat st;
	size_t got = 0;

	if (fd < 0 && errno == ENOENT) {
		PreserveRegistry *reg = malloc(sizeof(*reg));

		if (!reg)
			return ckpt_err(e, -ENOMEM, "out of memory");
		preserve_registry__init(reg);
		reg->version = PRESERVE_VERSION;
		reg->next_id = 1;
		*ret = reg;
		return 0;
	}
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot open the registry");
	if (fstat(fd, &st) < 0)
		return ckpt_err_errno(e, -errno, "cannot stat the registry");
	if (!S_ISREG(st.st_mode))
		return ckpt_err(e, -EBADMSG, "the registry is not a regular file");
	if (st.st_size > PRESERVE_FILE_MAX)
		return ckpt_err(e, -EFBIG, "the registry is over %u bytes", PRESERVE_FILE_MAX);
	buf = malloc(st.st_size ? st.st_size : 1);
	if (!buf)
		return ckpt_err(e, -ENOMEM, "out of memory");
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ckpt_err_errno(e, -errno, "cannot read the registry");
		if (n == 0)
			break;
		got += n;
	}
	return preserve_parse(buf, got, ret, e);
}

int preserve_save(int dirfd, const PreserveRegistry *reg, struct ckpt_error *e)
{
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_close_ int fd = -1;
	size_t len = 0, done = 0;
	int r;

	r = preserve_pack(reg, &buf, &len, e);
	if (r < 0)
		return r;
	unlinkat(dirfd, PRESERVE_FILE ".tmp", 0);
	fd = openat(dirfd, PRESERVE_FILE ".tmp",
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ckpt_err_errno(e, -errno, "cannot create the registry");
	while (done < len) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ckpt_err_errno(e, n < 0 ? -errno : -EIO,
					      "cannot write the registry");
		done += n;
	}
	if (fsync(fd) < 0)
		return ckpt_err_errno(e, -errno, "cannot fsync the registry");
	if (renameat(dirfd, PRESERVE_FILE ".tmp", dirfd, PRESERVE_FILE) < 0)
		return ckpt_err_errno(e, -errno, "cannot rename the registry into place");
	fsync(dirfd);
	return 0;
}
