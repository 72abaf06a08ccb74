/* SPDX-License-Identifier: MIT */
/*
 * ckptctl show DIR [IMAGE]: the images of a checkpoint as one JSON document
 * (the counterpart of CRIU's crit). It does not verify the directory first:
 * it is the tool for looking at a damaged one, so every file is printed on
 * its own and a file that fails to parse becomes {"file":..,"error":..}.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "ckptctl.h"
#include "image.h"

struct show_entry {
	char *name;
	int group; /* 0 shared, 1 per task, 2 unknown kind */
	int kind;
	int pid;
	const char *error; /* set for files listed in the inventory but absent */
};

struct show_list {
	struct show_entry *v;
	size_t n, cap;
};

static void usage_show(FILE *out)
{
	fprintf(out,
		"usage: ckptctl show DIR [IMAGE] [-v]\n"
		"\n"
		"Print the images of the checkpoint DIR as one JSON document:\n"
		"{\"dir\": DIR, \"images\": [...]}, inventory first, then pstree, files, then\n"
		"each task's images in pid order. With IMAGE (\"core-123.img\"), print only\n"
		"that image's object. A file that cannot be parsed is printed as\n"
		"{\"file\": NAME, \"error\": MESSAGE} and makes the exit status 1.\n");
}

static void show_list_free(struct show_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
}

static int show_list_add(struct show_list *l, const char *name, const char *error)
{
	struct show_entry *e;
	enum img_kind kind;
	int pid;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct show_entry *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	e = &l->v[l->n];
	memset(e, 0, sizeof(*e));
	e->name = strdup(name);
	if (!e->name)
		return -ENOMEM;
	e->error = error;
	if (img_kind_from_name(name, &kind, &pid) == 0) {
		e->group = img_kind_desc(kind)->per_task ? 1 : 0;
		e->kind = kind;
		e->pid = pid;
	} else {
		e->group = 2;
	}
	l->n++;
	return 0;
}

static bool show_list_has(const struct show_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].name, name))
			return true;
	return false;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct show_entry *x = a, *y = b;

	if (x->group != y->group)
		return x->group - y->group;
	if (x->group == 1 && x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->group != 2 && x->kind != y->kind)
		return x->kind - y->kind;
	return strcmp(x->name, y->name);
}

/* Every *.img file of the directory. */
static int list_images(int dirfd, struct show_list *l)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int fd = dup(dirfd);

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((errno = 0, de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len > 4 && !strcmp(de->d_name + len - 4, ".img") &&
		    show_list_add(l, de->d_name, NULL) < 0)
			return -ENOMEM;
	}
	return -errno;
}

/* Images the inventory lists but the directory lacks. */
static int add_missing_listed(int dirfd, struct show_list *l)
{
	_cleanup_img_ struct img *img = NULL;
	struct ckpt_error e = {0};
	ProtobufCMessage *m = NULL;
	Inventory *inv;
	int r = 0;

	if (img_open(dirfd, IMG_INVENTORY, 0, &img, &e) < 0 || img_read_one(img, &m, &e) < 0)
		return 0; /* the inventory's own entry reports that */
	inv = (Inventory *)m;
	for (size_t i = 0; i < inv->n_images && r == 0; i++) {
		const char *name = inv->images[i]->name;

		if (!strchr(name, '/') && !show_list_has(l, name))
			r = show_list_add(l, name, "listed in the inventory but missing");
	}
	inventory__free_unpacked(inv, NULL);
	return r;
}

/* Print text with every line after the first indented, so it nests. */
static void print_indented(const char *text, size_t len, int indent)
{
	for (size_t i = 0; i < len; i++) {
		putchar(text[i]);
		if (text[i] == '\n')
			printf("%*s", indent, "");
	}
}

static void print_error_object(const char *name, const char *msg, int indent)
{
	enum img_kind kind;

	printf("{\n%*s  \"file\": ", indent, "");
	img_json_string(stdout, name);
	if (img_kind_from_name(name, &kind, NULL) == 0) {
		printf(",\n%*s  \"kind\": ", indent, "");
		img_json_string(stdout, img_kind_desc(kind)->name);
	}
	printf(",\n%*s  \"error\": ", indent, "");
	img_json_string(stdout, msg);
	printf("\n%*s}", indent, "");
}

/* One image as JSON at the given indent; 0 or -1 when it failed. */
static int show_one(int dirfd, const char *dir, const struct show_entry *ent, int indent)
{
	struct ckpt_error e = {0};
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	FILE *mem;
	int r;

	if (ent->error) {
		fprintf(stderr, "ckptctl: show: %s: %s: %s\n", dir, ent->name, ent->error);
		print_error_object(ent->name, ent->error, indent);
		return -1;
	}
	mem = open_memstream(&text, &len);
	if (!mem)
		return -1;
	r = img_file_to_json(mem, dirfd, ent->name, &e);
	fclose(mem);
	if (r < 0) {
		if (r == -ENOENT && !strcmp(ent->name, "inventory.img"))
			snprintf(e.msg, sizeof(e.msg),
				 "inventory.img: missing: not a checkpoint directory (or an "
				 "unfinished one)");
		fprintf(stderr, "ckptctl: show: %s: %s\n", dir, e.msg);
		print_error_object(ent->name, e.msg, indent);
		return -1;
	}
	print_indented(text, len, indent);
	return 0;
}

static int show_all(int dirfd, const char *dir)
{
	struct show_list l = {0};
	bool failed = false;
	int r;

	r = list_images(dirfd, &l);
	if (r >= 0 && !show_list_has(&l, "inventory.img"))
		r = show_list_add(&l, "inventory.img", NULL); /* reported as missing */
	if (r >= 0)
		r = add_missing_listed(dirfd, &l);
	if (r < 0) {
		fprintf(stderr, "ckptctl: show: cannot list %s: %s\n", dir, strerror(-r));
		show_list_free(&l);
		return 1;
	}
	qsort(l.v, l.n, sizeof(*l.v), cmp_entry);
	printf("{\n  \"dir\": ");
	img_json_string(stdout, dir);
	printf(",\n  \"images\": [");
	for (size_t i = 0; i < l.n; i++) {
		printf(i ? ",\n    " : "\n    ");
		if (show_one(dirfd, dir, &l.v[i], 4) < 0)
			failed = true;
	}
	printf(l.n ? "\n  ]\n}\n" : "]\n}\n");
	show_list_free(&l);
	return failed ? 1 : 0;
}

static int show_bad_image_name(const char *image)
{
	char names[512];
	size_t off = 0;

	/* the names come from the kind table, so new kinds show up here */
	for (int k = 0; k < IMG__COUNT && off < sizeof(names); k++) {
		const struct img_kind_desc *d = img_kind_desc(k);

		off += snprintf(names + off, sizeof(names) - off, "%s%s%s", k ? ", " : "", d->name,
				d->per_task ? "-PID.img" : ".img");
	}
	return cli_usage_error("show", "'%s' is not an image name (%s)", image, names);
}

int cmd_show(int argc, char **argv, struct cli_common *c)
{
	static const struct option longopts[] = {
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	_cleanup_close_ int dirfd = -1;
	const char *dir, *image = NULL;
	int opt, ex, r;

	while ((opt = cli_getopt(argc, argv, ":vh", longopts, c, usage_show, &ex)) != -1)
		if (opt == -2)
			return ex;
	if (optind >= argc)
		return cli_usage_error("show", "missing DIR");
	dir = argv[optind];
	if (optind + 1 < argc)
		image = argv[optind + 1];
	if (optind + 2 < argc)
		return cli_usage_error("show", "unexpected argument '%s'", argv[optind + 2]);
	if (image && (strchr(image, '/') || img_kind_from_name(image, NULL, NULL) < 0))
		return show_bad_image_name(image);
	cli_set_verbosity(c->verbose);

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, "ckptctl: show: cannot open checkpoint directory %s: %m\n", dir);
		return 1;
	}
	if (!image) {
		r = show_all(dirfd, dir);
		fflush(stdout);
		return r;
	}
	r = show_one(dirfd, dir, &(struct show_entry){.name = (char *)image}, 0);
	putchar('\n');
	fflush(stdout);
	return r < 0 ? 1 : 0;
}
