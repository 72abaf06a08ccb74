/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target "dir": a whole checkpoint directory through the restorer's
 * verifier. The input is a container of image files (fuzz_common.h), written
 * into a scratch directory on tmpfs with the inventory's sizes and CRC32C
 * recomputed, then restore_check_images() runs the stages verify and plan on
 * it, as a dump does before publishing and a restore does before creating
 * anything: every image read, every field and cross-reference checked, the
 * restore order built. Any crash, leak, UBSan report, hang or leaked fd is a
 * bug in that code.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "restore_check.h"

static struct fuzz_dir dir;
/* CKPT_FUZZ_VERBOSE=1: print the verifier's verdict (to check that seeds pass) */
static bool verbose;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_dir_init(&dir, "dir");
	verbose = getenv("CKPT_FUZZ_VERBOSE") != NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_file files[FUZZ_MAX_FILES];
	const struct fuzz_file *inv = NULL;
	struct ckpt_error e = {0};
	size_t n;

	fuzz_dir_clean(&dir);
	n = fuzz_container_parse(data, size, files, FUZZ_MAX_FILES);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(files[i].name, "inventory.img"))
			inv = &files[i];
		else
			fuzz_write_image(&dir, files[i].name, files[i].data, files[i].len);
	}
	fuzz_write_inventory(&dir, inv ? inv->data : NULL, inv ? inv->len : 0);
	/* every byte checked: the pages too (an attacker's images) */
	if (restore_check_images(dir.path, false, &e) < 0 && verbose)
		fprintf(stderr, "restore_check_images: %s\n", e.msg);
	else if (verbose)
		fprintf(stderr, "restore_check_images: ok\n");
	fuzz_fd_check(dir.fd_mark);
	return 0;
}
