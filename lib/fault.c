/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

bool ckpt_fault(const char *step)
{
	const char *spec = getenv("CKPT_FAULT");
	size_t len = strlen(step);

	while (spec && *spec) {
		const char *end = strchrnul(spec, ',');

		if ((size_t)(end - spec) == len && !strncmp(spec, step, len))
			return true;
		spec = *end ? end + 1 : end;
	}
	return false;
}

int ckpt_fault_inject(const char *step, struct ckpt_error *e)
{
	if (!ckpt_fault(step))
		return 0;
	return ckpt_err(e, -EIO, "injected fault at step '%s' (CKPT_FAULT)", step);
}
