/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target "preserve": ckptd's registry of preserved jobs
 * (lib/preserve.c, preserve_parse()), the file ckptd reads at start. Any
 * input must give an error or a registry whose every entry passes the
 * checks; an accepted one must pack and parse again to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "preserve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PreserveRegistry *reg = NULL, *again = NULL;
	struct ckpt_error e = {0};
	uint8_t *buf = NULL;
	size_t len = 0;

	if (preserve_parse(data, size, &reg, &e) < 0)
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
