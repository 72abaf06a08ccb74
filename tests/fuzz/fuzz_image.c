/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target "image": one image file through the record reader, the JSON
 * printer and the restorer's checks of its kind. The first input byte picks
 * the kind (modulo the number of kinds), the rest is the file: header and
 * length-prefixed records as on disk (pages images in the compact form of
 * fuzz_common.h). The file is
 *
 * 1. read the way the restorer and the directory verifier read it:
 *    img_open() (header), then img_read_one() for the one-record kinds
 *    (inventory, core, mm) or img_read_msg() to the end;
 * 2. printed by img_file_to_json() (what `ckptctl show` prints);
 * 3. put in place of the image of its kind in a real checkpoint (the
 *    template, tests/fuzz/corpus/dir/sleeper: a dump of the sleeper
 *    workload) with the inventory's sums recomputed, and the whole
 *    directory checked by restore_check_images(): each kind's records
 *    validated as the restorer validates them, with valid neighbours.
 *
 * An inventory.img input that is header + one record gets its sums fixed
 * the same way; anything else is written as is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "image.h"
#include "restore_check.h"

#ifndef CKPT_FUZZ_TEMPLATE
#error "CKPT_FUZZ_TEMPLATE: the container file of the template checkpoint"
#endif

static struct fuzz_dir dir;
/* CKPT_FUZZ_VERBOSE=1: print the verifier's verdict (to check that seeds pass) */
static bool verbose;
static FILE *devnull;
static uint8_t *template_data;
static struct fuzz_file template[FUZZ_MAX_FILES];
static size_t ntemplate;

static void load_template(void)
{
	FILE *f = fopen(CKPT_FUZZ_TEMPLATE, "rb");
	long len;

	if (!f || fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) < 0 ||
	    !(template_data = malloc(len)) || fread(template_data, 1, len, f) != (size_t)len) {
		fprintf(stderr, "fuzz_image: cannot read the template %s\n", CKPT_FUZZ_TEMPLATE);
		abort();
	}
	fclose(f);
	ntemplate = fuzz_container_parse(template_data, len, template, FUZZ_MAX_FILES);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	devnull = fopen("/dev/null", "we");
	if (!devnull)
		abort();
	load_template();
	fuzz_dir_init(&dir, "image");
	verbose = getenv("CKPT_FUZZ_VERBOSE") != NULL;
	return 0;
}

/* The template's file of this kind (per-task kinds: of its first task). */
static void name_of_kind(enum img_kind kind, char *buf, size_t len)
{
	for (size_t i = 0; i < ntemplate; i++) {
		enum img_kind k;

		if (img_kind_from_name(template[i].name, &k, NULL) == 0 && k == kind) {
			snprintf(buf, len, "%s", template[i].name);
			return;
		}
	}
	img_file_name(kind, 1, buf, len);
}

static void read_image(const char *name)
{
	struct ckpt_error e = {0};
	struct img *img = NULL;
	ProtobufCMessage *m;

	if (img_open_name(dir.dirfd, name, &img, &e) == 0) {
		switch (img_get_kind(img)) {
		case IMG_PAGES:
			(void)img_pages_data_size(img);
			break;
		case IMG_INVENTORY:
		case IMG_CORE:
		case IMG_MM:
			if (img_read_one(img, &m, &e) == 0)
				protobuf_c_message_free_unpacked(m, NULL);
			break;
		default:
			while (img_read_msg(img, &m, &e) > 0)
				protobuf_c_message_free_unpacked(m, NULL);
		}
		img_close(img);
	}
	(void)img_file_to_json(devnull, dir.dirfd, name, &e);
}

/* inventory.img as on disk -> the container's header + message, if it is one record */
static void write_inventory_from_file(const uint8_t *data, size_t len)
{
	uint8_t *buf;

	if (len < IMG_HEADER_SIZE + 4 ||
	    (data[16] | (uint32_t)data[17] << 8 | (uint32_t)data[18] << 16 |
	     (uint32_t)data[19] << 24) != len - IMG_HEADER_SIZE - 4)
		return; /* left as written */
	buf = malloc(len - 4);
	if (!buf)
		abort();
	memcpy(buf, data, IMG_HEADER_SIZE);
	memcpy(buf + IMG_HEADER_SIZE, data + IMG_HEADER_SIZE + 4, len - IMG_HEADER_SIZE - 4);
	fuzz_write_inventory(&dir, buf, len - 4);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct fuzz_file *template_inv = NULL;
	struct ckpt_error e = {0};
	enum img_kind kind;
	char name[64];

	if (size < 1)
		return 0;
	kind = data[0] % IMG__COUNT;
	name_of_kind(kind, name, sizeof(name));
	fuzz_dir_clean(&dir);
	for (size_t i = 0; i < ntemplate; i++) {
		if (!strcmp(template[i].name, "inventory.img"))
			template_inv = &template[i];
		else if (strcmp(template[i].name, name))
			fuzz_write_image(&dir, template[i].name, template[i].data, template[i].len);
	}
	if (kind == IMG_INVENTORY)
		fuzz_write_raw(&dir, name, data + 1, size - 1);
	else
		fuzz_write_image(&dir, name, data + 1, size - 1);
	read_image(name);
	if (kind == IMG_INVENTORY)
		write_inventory_from_file(data + 1, size - 1);
	else
		fuzz_write_inventory(&dir, template_inv ? template_inv->data : NULL,
				     template_inv ? template_inv->len : 0);
	if (restore_check_images(dir.path, false, &e) < 0 && verbose)
		fprintf(stderr, "restore_check_images: %s\n", e.msg);
	else if (verbose)
		fprintf(stderr, "restore_check_images: ok\n");
	fuzz_fd_check(dir.fd_mark);
	return 0;
}
