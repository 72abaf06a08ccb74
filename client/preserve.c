// SPDX-License-Identifier: MIT
/*
 * ckptctl preserve: jobs that survive a reboot (docs/preserve.md). Every
 * operation is a request to ckptd, which keeps the registry: there is no
 * in-process mode.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "ckptctl.h"
#include "image.h"
#include "preserve.h"
#include "rpc.h"

static void usage_preserve(FILE *out)
{
	fprintf(out,
		"usage: ckptctl preserve PID [--name NAME] [--json]\n"
		"       ckptctl preserve --list [--json]\n"
		"       ckptctl preserve --cancel ID\n"
		"       ckptctl preserve --dump-all [--deadline SECS] [--parallel N] [--json]\n"
		"       ckptctl preserve --restore-all [--json]\n"
		"\n"
		"Keep the tree rooted at PID across the next reboot: ckptd checks now that it\n"
		"can be dumped (what cannot is refused, with the reason), dumps it at\n"
		"shutdown and restores it at boot (ckpt-preserve.service runs --dump-all and\n"
		"--restore-all). Prints the registration's id.\n"
		"\n"
		"  -n, --name NAME   a name for the registration (shown by --list)\n"
		"  -l, --list        the registrations (yours; root: all) with their state\n"
		"                    and the result of their last dump or restore\n"
		"  -c, --cancel ID   remove a registration (and its saved images)\n"
		"      --dump-all    (root) dump every registered tree, several at once, each\n"
		"                    within --deadline SECS (default 900), and kill it; a tree\n"
		"                    that cannot be dumped runs on and is reported\n"
		"      --restore-all (root) restore every saved job, in registration order,\n"
		"                    as its owner; a failed one keeps its images\n"
		"      --json        print the result as JSON\n");
}

static void print_entries(const Response *resp, bool json)
{
	if (json) {
		printf("{\"status\":\"%s\"", resp->status < 0 ? "error" : "ok");
		if (resp->error) {
			printf(",\"error\":");
			img_json_string(stdout, resp->error);
		}
		if (resp->has_preserve_id)
			printf(",\"id\":%llu", (unsigned long long)resp->preserve_id);
		printf(",\"preserved\":[");
		for (size_t i = 0; i < resp->n_preserved; i++) {
			const PreserveEntry *pe = resp->preserved[i];

			printf("%s{\"id\":%llu,\"name\":", i ? "," : "",
			       (unsigned long long)pe->id);
			img_json_string(stdout, pe->name ? pe->name : "");
			printf(",\"pid\":%d,\"uid\":%u,\"state\":\"%s\",\"last_result\":", pe->pid,
			       pe->uid, preserve_state_name(pe->state));
			img_json_string(stdout, pe->last_result ? pe->last_result : "");
			printf("}");
		}
		printf("]}\n");
		return;
	}
	if (!resp->n_preserved)
		return;
	printf("%6s  %-16s %7s %6s  %-10s  %s\n", "ID", "NAME", "PID", "UID", "STATE", "RESULT");
	for (size_t i = 0; i < resp->n_preserved; i++) {
		const PreserveEntry *pe = resp->preserved[i];

		printf("%6llu  %-16s %7d %6u  %-10s  %s\n", (unsigned long long)pe->id,
		       pe->name && *pe->name ? pe->name : "-", pe->pid, pe->uid,
		       preserve_state_name(pe->state), pe->last_result ? pe->last_result : "");
	}
}

static bool parse_u64(const char *s, unsigned long long *ret)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*ret = strtoull(s, &end, 10);
	return !errno && !*end;
}

int cmd_preserve(int argc, char **argv, struct cli_common *c)
{
	static const struct option longopts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"list", no_argument, NULL, 'l'},
	    {"cancel", required_argument, NULL, 'c'},
	    {"dump-all", no_argument, NULL, 'D'},
	    {"restore-all", no_argument, NULL, 'R'},
	    {"deadline", required_argument, NULL, 't'},
	    {"parallel", required_argument, NULL, 'p'},
	    {"json", no_argument, NULL, 'J'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	_cleanup_(rpc_response_freep) Response *resp = NULL;
	_cleanup_close_ int sock = -1;
	Request req = REQUEST__INIT;
	PreserveRequest pr = PRESERVE_REQUEST__INIT;
	struct ckpt_error e = {0};
	struct cli_common explicit = *c;
	unsigned long long v;
	int opt, ex, r, nops = 0;

	pr.op = PRESERVE_OP__PRESERVE_OP_REGISTER;
	while ((opt = cli_getopt(argc, argv, ":n:lc:vh", longopts, c, usage_preserve, &ex)) != -1) {
		switch (opt) {
		case -2:
			return ex;
		case 'n':
			pr.name = optarg;
			if (preserve_name_check(optarg, &e) < 0)
				return cli_usage_error("preserve", "--name: %s", e.msg);
			break;
		case 'l':
			pr.op = PRESERVE_OP__PRESERVE_OP_LIST;
			nops++;
			break;
		case 'c':
			if (!parse_u64(optarg, &v) || v == 0)
				return cli_usage_error("preserve", "'%s' is not a registration id",
						       optarg);
			pr.op = PRESERVE_OP__PRESERVE_OP_CANCEL;
			pr.has_id = true;
			pr.id = v;
			nops++;
			break;
		case 'D':
			pr.op = PRESERVE_OP__PRESERVE_OP_DUMP_ALL;
			nops++;
			break;
		case 'R':
			pr.op = PRESERVE_OP__PRESERVE_OP_RESTORE_ALL;
			nops++;
			break;
		case 't':
		case 'p':
			if (!parse_u64(optarg, &v) || v == 0 || v > 86400)
				return cli_usage_error("preserve", "'%s' is not a positive number",
						       optarg);
			if (opt == 't') {
				pr.has_deadline_s = true;
				pr.deadline_s = (uint32_t)v;
			} else {
				pr.has_parallel = true;
				pr.parallel = (uint32_t)v;
			}
			break;
		}
	}
	if (nops > 1)
		return cli_usage_error("preserve",
				       "--list, --cancel, --dump-all and --restore-all exclude "
				       "each other");
	if (pr.op == PRESERVE_OP__PRESERVE_OP_REGISTER) {
		if (optind >= argc)
			return cli_usage_error("preserve", "missing PID");
		if (!parse_pid_arg(argv[optind], &pr.pid))
			return cli_usage_error("preserve", "'%s' is not a pid", argv[optind]);
		pr.has_pid = true;
		optind++;
	}
	if (optind < argc)
		return cli_usage_error("preserve", "unexpected argument '%s'", argv[optind]);
	cli_set_verbosity(c->verbose);
	explicit.json = c->json;
	/* the registry lives in ckptd: no in-process mode */
	if (!explicit.socket && !(getenv("CKPT_SOCKET") && *getenv("CKPT_SOCKET")))
		explicit.socket = CKPT_SOCKET_DEFAULT;
	r = cli_daemon_connect(&explicit, "preserve", &sock);
	if (r <= 0)
		return 1;
	req.version = RPC_PROTOCOL_VERSION;
	req.type = RPC_TYPE__RPC_PRESERVE;
	req.preserve = &pr;
	r = rpc_send(sock, &req.base, -1, &e);
	while (r == 0) {
		r = rpc_recv_response(sock, &resp, NULL, &e);
		if (r == 0 && resp->progress) {
			rpc_response_free(resp);
			resp = NULL;
			continue;
		}
		break;
	}
	if (r < 0) {
		if (r == -ECONNRESET)
			ckpt_err(&e, r, "ckptd closed the connection without an answer");
		fprintf(stderr, "ckptctl preserve: %s\n", e.msg);
		if (c->json) {
			printf("{\"status\":\"error\",\"error\":");
			img_json_string(stdout, e.msg);
			printf("}\n");
		}
		return 1;
	}
	if (resp->status < 0)
		fprintf(stderr, "ckptctl preserve: %s\n", resp->error ? resp->error : "failed");
	switch (pr.op) {
	case PRESERVE_OP__PRESERVE_OP_REGISTER:
		if (c->json)
			print_entries(resp, true);
		else if (resp->status == 0)
			printf("%llu\n", (unsigned long long)resp->preserve_id);
		break;
	case PRESERVE_OP__PRESERVE_OP_CANCEL:
		if (c->json)
			print_entries(resp, true);
		else if (resp->status == 0)
			printf("registration %llu cancelled\n", (unsigned long long)pr.id);
		break;
	default:
		print_entries(resp, c->json);
	}
	return resp->status < 0 ? 1 : 0;
}
