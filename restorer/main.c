/* SPDX-License-Identifier: MIT */
/*
 * ckpt-restore [--json] [--plan] [-v] DIR
 *
 * Turns a checkpoint directory back into a running process tree. This file
 * only parses arguments and prints the outcome; the work is the list of
 * stages in stages.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "restore.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: ckpt-restore [--json] [--plan] [-v] DIR\n"
		     "  --json   print the outcome as one JSON line on stdout\n"
		     "  --plan   verify the images, print the restore plan and exit\n"
		     "  -v       more log output on stderr (-vv: debug)\n");
}

static void print_result(const struct restore_ctx *ctx, int r, double seconds)
{
	const struct restore_opts *o = ctx->opts;

	if (r == 0 && o->json) {
		printf("{\"status\":\"ok\",\"root_pid\":%d,\"tasks\":%zu,\"seconds\":%.3f}\n",
		       ctx->root ? ctx->root->pid : 0, ctx->ntasks, seconds);
	} else if (r == 0) {
		printf("restored root pid %d (%zu task%s) in %.2f s\n",
		       ctx->root ? ctx->root->pid : 0, ctx->ntasks, ctx->ntasks == 1 ? "" : "s",
		       seconds);
	} else if (o->json) {
		printf("{\"status\":\"error\",\"error\":");
		img_json_string(stdout, ctx->err.msg);
		printf(",\"stage\":");
		img_json_string(stdout, ctx->stage ? ctx->stage : "");
		printf("}\n");
	}
	if (r < 0)
		fprintf(stderr, "ckpt-restore: %s\n", ctx->err.msg);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"plan", no_argument, NULL, 'p'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct restore_opts opts = {0};
	struct restore_ctx ctx;
	double t0;
	int c, r;

	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			opts.json = true;
			break;
		case 'p':
			opts.plan_only = true;
			break;
		case 'v':
			opts.verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	opts.dir = argv[optind];
	ckpt_log_set_level(opts.verbose >= 2 ? LOG_LVL_DEBUG
			   : opts.verbose    ? LOG_LVL_INFO
					     : LOG_LVL_WARN);

	t0 = now_seconds();
	restore_ctx_init(&ctx, &opts);
	r = restore_run(&ctx);
	if (r == 0 && opts.plan_only)
		plan_print(&ctx, stdout);
	else
		print_result(&ctx, r, now_seconds() - t0);
	restore_ctx_free(&ctx);
	return r < 0 ? 1 : 0;
}
