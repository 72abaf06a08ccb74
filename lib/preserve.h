/* SPDX-License-Identifier: MIT */
/*
 * ckptd's registry of jobs preserved across a reboot (proto/preserve.proto,
 * docs/preserve.md): the file format and its parser. The file is root's,
 * but it is read as untrusted input all the same: a forged or truncated
 * file is refused with an error naming the field, never half used.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "preserve.pb-c.h"

#define PRESERVE_MAGIC "CKPTPRS1"
#define PRESERVE_VERSION 1
#define PRESERVE_FILE "registry"
/* limits of what the parser accepts */
#define PRESERVE_FILE_MAX (1u << 20)
#define PRESERVE_ENTRIES_MAX 1024
#define PRESERVE_NAME_MAX 64
#define PRESERVE_RESULT_MAX 1024
#define PRESERVE_GROUPS_MAX 256

/*
 * Check one entry (also what a registration request must satisfy): id
 * non-zero, pid > 0, a known state, a name of at most PRESERVE_NAME_MAX
 * printable bytes without '/', a result of at most PRESERVE_RESULT_MAX
 * bytes, at most PRESERVE_GROUPS_MAX groups.
 */
int preserve_entry_check(const PreserveEntry *pe, struct ckpt_error *e);
/* A name given by a user: printable ASCII, 1..PRESERVE_NAME_MAX, no '/'. */
int preserve_name_check(const char *name, struct ckpt_error *e);

/*
 * Parse a registry file's bytes: magic, length, CRC32C, message, then every
 * entry (preserve_entry_check), ids unique and below next_id, at most
 * PRESERVE_ENTRIES_MAX. *ret is freed with preserve_registry__free_unpacked.
 */
int preserve_parse(const uint8_t *buf, size_t len, PreserveRegistry **ret, struct ckpt_error *e);

/* The file's bytes for reg (malloc'd). */
int preserve_pack(const PreserveRegistry *reg, uint8_t **ret, size_t *ret_len,
		  struct ckpt_error *e);

/*
 * Read dirfd/registry: a missing file gives an empty registry (*ret
 * allocated all the same, free with preserve_registry_free). A file that
 * is not a regular file, larger than PRESERVE_FILE_MAX or does not parse
 * is an error.
 */
int preserve_load(int dirfd, PreserveRegistry **ret, struct ckpt_error *e);
/* Write it atomically: registry.tmp (0600), fsync, rename, fsync of dirfd. */
int preserve_save(int dirfd, const PreserveRegistry *reg, struct ckpt_error *e);

/* Free a registry from preserve_parse/preserve_load or built by hand with
 * malloc'd entries (preserve_registry__free_unpacked semantics). */
void preserve_registry_free(PreserveRegistry *reg);

const char *preserve_state_name(int state);
