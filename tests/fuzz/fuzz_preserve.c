/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target "preserve": ckptd's registry of preserved jobs
 * (lib/preserve.c, preserve_parse()), the file ckptd reads at start. Any
 * input must give an error or a registry whose every entry passes the
 * checks; an accepted one must pack and parse again. The first byte picks
 * the mode: even, the rest is the file as is (header and checksum
 * included); odd, the rest is the message, given a valid header and
 * CRC32C here, so that the checks past the checksum are reached (a forger
 * who knows the format).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "preserve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PreserveRegistry *reg = NULL, *again = NULL;
	struct ckpt_error e = {0};
	uint8_t *buf = NULL;
	size_t len = 0;

	uint8_t *framed = NULL;
	int r;

	if (!size)
		return 0;
	if (data[0] & 1) {
		uint32_t v;

		framed = malloc(size - 1 + 16);
		if (!framed)
			return 0;
		memcpy(framed, PRESERVE_MAGIC, 8);
		v = (uint32_t)(size - 1);
		memcpy(framed + 8, &v, 4);
		v = crc32c(0, data + 1, size - 1);
		memcpy(framed + 12, &v, 4);
		memcpy(framed + 16, data + 1, size - 1);
		r = preserve_parse(framed, size - 1 + 16, &reg, &e);
	} else {
		r = preserve_parse(data + 1, size - 1, &reg, &e);
	}
	free(framed);
	if (r < 0)
		return 0;
	for (size_t i = 0; i < reg->n_entries; i++)
		if (preserve_entry_check(reg->entries[i], &e) < 0)
			abort();
	if (preserve_pack(reg, &buf, &len, &e) < 0 || preserve_parse(buf, len, &again, &e) < 0)
		abort();
	if (again->n_entries != reg->n_entries || again->next_id != reg->next_id)
		abort();
	free(buf);
	preserve_registry_free(again);
	preserve_registry_free(reg);
	return 0;
}
