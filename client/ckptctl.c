/* SPDX-License-Identifier: MIT */
/*
 * ckptctl, the command line: parses arguments, calls the library or the
 * restorer, prints and decides the exit status (the library does neither).
 * This file holds main, the shared helpers and `dump`; restore.c, show.c and
 * check.c hold the other subcommands.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckptctl.h"
#include "cleanup.h"
#include "dump.h"
#include "error.h"
#include "image.h"
#include "log.h"
#include "rpc.h"

static void usage_main(FILE *out)
{
	fprintf(out,
		"usage: ckptctl [-v] [--socket PATH] COMMAND [ARGS]\n"
		"\n"
		"Checkpoint and restore Linux process trees.\n"
		"\n"
		"commands:\n"
		"  dump PID -D DIR [--leave-running] [--shell-job] [--tcp-close] [--json]\n"
		"                 checkpoint the tree rooted at PID into DIR (must not exist or\n"
		"                 be empty); the tree is killed unless --leave-running\n"
		"  restore DIR [--shell-job] [--cgroups=exact|caller] [--new-pidns]\n"
		"              [--continue-clocks] [--json]\n"
		"                 recreate the tree saved in DIR (runs ckpt-restore)\n"
		"  show DIR [IMAGE]\n"
		"                 print the images of DIR (or one of them) as JSON\n"
		"  check [--json]\n"
		"                 probe the kernel features ckpt needs\n"
		"  ps [--json]    list the jobs of ckptd (running and recent)\n"
		"  cancel JOB     cancel a running dump or restore of ckptd\n"
		"  preserve PID [--name NAME] | --list | --cancel ID | --dump-all | --restore-all\n"
		"                 keep a job across a reboot (through ckptd)\n"
		"  run --dir DIR [--signal SIG]... [--exit-code N] [--interval S] -- CMD...\n"
		"                 run CMD as a batch job checkpointed into DIR on SIG, restored\n"
		"                 from DIR when it holds a checkpoint (docs/slurm.md)\n"
		"\n"
		"options:\n"
		"  -v, --verbose  more log output on stderr (-vv: debug)\n"
		"  -S, --socket PATH\n"
		"                 talk to ckptd at PATH (default $CKPT_SOCKET, else\n"
		"                 " CKPT_SOCKET_DEFAULT "); dump and restore run in process\n"
		"                 when no ckptd answers at the default path and we are root\n"
		"  -h, --help     this help; `ckptctl COMMAND --help` for a command\n"
		"  -V, --version  print the version\n");
}

/* --- helpers shared by the subcommands ------------------------------------ */

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ckptctl%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'ckptctl %s%s--help' for more information.\n", cmd ? cmd : "",
		cmd ? " " : "");
	return EXIT_USAGE;
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
	       struct cli_common *c, void (*usage)(FILE *), int *ret_exit)
{
	int opt;

	opterr = 0; /* our own messages, naming the subcommand */
	for (;;) {
		opt = getopt_long(argc, argv, shortopts, longopts, NULL);
		switch (opt) {
		case 'v':
			c->verbose++;
			continue;
		case 'J':
			c->json = true;
			continue;
		case 'h':
			usage(stdout);
			*ret_exit = 0;
			return -2;
		case ':':
			*ret_exit = cli_usage_error(argv[0], "option '%s' needs an argument",
						    argv[optind - 1]);
			return -2;
		case '?':
			if (optopt)
				*ret_exit =
				    cli_usage_error(argv[0], "unknown option '-%c'", optopt);
			else
				*ret_exit = cli_usage_error(argv[0], "unknown option '%s'",
							    argv[optind - 1]);
			return -2;
		default:
			return opt;
		}
	}
}

int cli_relative_path(const char *dir, const char *target, char *out, size_t len)
{
	char d[PATH_MAX], t[PATH_MAX], up[PATH_MAX], *slash, *base;
	size_t common = 0, n = 0;
	int w;

	if (strlen(dir) >= sizeof(up))
		return -ENAMETOOLONG;
	strcpy(up, dir);
	while (strlen(up) > 1 && up[strlen(up) - 1] == '/')
		up[strlen(up) - 1] = 0;
	slash = strrchr(up, '/');
	base = slash ? slash + 1 : up;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return -EINVAL;
	if (slash == up)
		strcpy(d, "/");
	else if (!realpath(slash ? (*slash = 0, up) : ".", d))
		return -errno;
	if (!realpath(target, t))
		return -errno;
	if (strlen(d) + strlen(base) + 2 >= sizeof(d))
		return -ENAMETOOLONG;
	if (strcmp(d, "/"))
		strcat(d, "/");
	strcat(d, base);
	/* the longest common prefix of whole components */
	for (size_t i = 0;; i++) {
		if ((d[i] == '/' || !d[i]) && (t[i] == '/' || !t[i]))
			common = i;
		if (!d[i] || !t[i] || d[i] != t[i])
			break;
	}
	if (!strcmp(d, t))
		return -EINVAL;
	out[0] = 0;
	/* one ".." per component of d below the common prefix */
	for (const char *p = d + common; *p; p++)
		if (*p == '/') {
			w = snprintf(out + n, len - n, "%s..", n ? "/" : "");
			if (w < 0 || (size_t)w >= len - n)
				return -ENAMETOOLONG;
			n += (size_t)w;
		}
	if (t[common]) {
		w = snprintf(out + n, len - n, "%s%s", n ? "/" : "", t + common + 1);
		if (w < 0 || (size_t)w >= len - n)
			return -ENAMETOOLONG;
	}
	return 0;
}

void cli_set_verbosity(int verbose)
{
	int level = LOG_LVL_WARN + verbose;

	ckpt_log_set_level(level > LOG_LVL_DEBUG ? LOG_LVL_DEBUG : level);
}

const char *format_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

bool parse_pid_arg(const char *s, int *ret)
{
	char *end;
	long v;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0 || v > INT_MAX)
		return false;
	*ret = (int)v;
	return true;
}

/* --- dump ------------------------------------------------------------------ */

static void usage_dump(FILE *out)
{
	fprintf(out,
		"usage: ckptctl dump PID -D DIR [--leave-running] [--shell-job]\n"
		"                    [--pre-dump] [--parent PDIR]\n"
		"                    [--external unix:INODE]... [--tcp-close] [--json] [-v]\n"
		"\n"
		"Checkpoint the process tree rooted at PID into DIR. DIR must not exist or be\n"
		"an empty directory; it appears only when the checkpoint is complete.\n"
		"\n"
		"  -D, --dir DIR        image directory\n"
		"  -R, --leave-running  resume the tree afterwards (default: kill it)\n"
		"      --shell-job      the tree is a job of a terminal (script, tmux, ssh): save\n"
		"                       that terminal as the job's terminal instead of refusing\n"
		"                       it; restore it with `ckptctl restore --shell-job`\n"
		"      --external unix:INODE\n"
		"                       a unix socket of the tree connected to a process outside\n"
		"                       it (INODE: either end's, as in `ss -xp`) is saved instead\n"
		"                       of refused; after restore its peer is gone (stream:\n"
		"                       EOF; datagram: connected again to the peer's name)\n"
		"      --tcp-close      established TCP connections are not held for the restore:\n"
		"                       their peers see them closed, and after restore the\n"
		"                       program sees them reset (default: held, and restored)\n"
		"      --save-tmpfs-files\n"
		"                       files the tree has open, maps or runs on tmpfs (/tmp,\n"
		"                       /dev/shm, /run) are saved with their content; the\n"
		"                       restore recreates a missing one and refuses one that\n"
		"                       changed\n"
		"      --pre-dump       save the memory only, leave the tree running and track\n"
		"                       its writes, for a later dump with --parent DIR\n"
		"      --parent PDIR    incremental: save only the pages written since the\n"
		"                       checkpoint PDIR (a --pre-dump), the others refer to it;\n"
		"                       restore reads through the chain (PDIR must stay)\n"
		"      --check-only     seize, collect and run every check, then resume the tree\n"
		"                       untouched: nothing is written (-D optional; in process)\n"
		"      --json           print the result as one JSON object on stdout, after\n"
		"                       progress lines {\"progress\":{...}} (from 64 MiB on)\n"
		"  -v, --verbose        more log output on stderr (-vv: debug)\n");
}

/* Progress on a terminal only: it is a single rewritten line. */
static void dump_progress(void *arg, uint64_t bytes, unsigned done, unsigned total)
{
	char size[32];

	(void)arg;
	fprintf(stderr, "\rdumping: %u/%u tasks, %s of memory   ", done, total,
		format_bytes(bytes, size, sizeof(size)));
	fflush(stderr);
}

/*
 * --json: one line per step, the shape ckptd's progress has through ckptctl,
 * once the dump has written PROGRESS_JSON_MIN_BYTES: a small tree is dumped
 * in a blink, and its --json output stays the one result object.
 */
#define PROGRESS_JSON_MIN_BYTES (64ULL << 20)

static void dump_progress_json(void *arg, uint64_t bytes, unsigned done, unsigned total)
{
	(void)arg;
	if (bytes < PROGRESS_JSON_MIN_BYTES)
		return;
	printf("{\"progress\":{\"bytes\":%llu,\"tasks_done\":%u,\"tasks_total\":%u}}\n",
	       (unsigned long long)bytes, done, total);
	fflush(stdout);
}

static void dump_print_result(const struct dump_opts *o, const struct dump_result *res, int r,
			      const struct ckpt_error *err, bool json)
{
	char size[32];

	if (r < 0) {
		fprintf(stderr, "ckptctl: dump of pid %d failed: %s\n", o->pid, err->msg);
		if (json) {
			printf("{\"status\":\"error\",\"pid\":%d,\"error\":", o->pid);
			img_json_string(stdout, err->msg);
			printf("}\n");
		}
		return;
	}
	if (json) {
		printf("{\"status\":\"ok\",\"pid\":%d,\"dir\":", o->pid);
		img_json_string(stdout, o->dir);
		printf(",\"tasks\":%u,\"pages_bytes\":%llu,\"images_bytes\":%llu,"
		       "\"frozen_seconds\":%.3f,\"seconds\":%.3f",
		       res->ntasks, (unsigned long long)res->pages_bytes,
		       (unsigned long long)res->images_bytes, res->frozen_seconds,
		       res->total_seconds);
		if (o->parent)
			printf(",\"pages_saved\":%llu,\"pages_unchanged\":%llu",
			       (unsigned long long)res->pages_saved,
			       (unsigned long long)res->pages_unchanged);
		if (o->pre_dump)
			printf(",\"pre_dump\":true");
		printf("}\n");
		return;
	}
	if (o->parent)
		printf("incremental: %llu pages saved, %llu unchanged since %s\n",
		       (unsigned long long)res->pages_saved,
		       (unsigned long long)res->pages_unchanged, o->parent);
	printf("dumped %u task%s, %s of memory to %s in %.2f s (frozen %.3f s%s)\n", res->ntasks,
	       res->ntasks == 1 ? "" : "s", format_bytes(res->pages_bytes, size, sizeof(size)),
	       o->dir, res->total_seconds, res->frozen_seconds,
	       o->leave_running ? ", left running" : "");
}

int cmd_dump(int argc, char **argv, struct cli_common *c)
{
	static const struct option longopts[] = {
	    {"dir", required_argument, NULL, 'D'},
	    {"leave-running", no_argument, NULL, 'R'},
	    {"json", no_argument, NULL, 'J'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"shell-job", no_argument, NULL, 'j'},
	    {"external", required_argument, NULL, 'E'},
	    {"tcp-close", no_argument, NULL, 'T'},
	    {"save-tmpfs-files", no_argument, NULL, 'F'},
	    {"check-only", no_argument, NULL, 'C'},
	    {"pre-dump", no_argument, NULL, 'P'},
	    {"parent", required_argument, NULL, 'A'},
	    {NULL, 0, NULL, 0},
	};
	static const char *external[64];
	char scratch[] = "/tmp/ckptctl-check.XXXXXX";
	struct dump_opts o = {0};
	struct dump_result res = {0};
	struct ckpt_error err = {0};
	const char *parent = NULL;
	char rel[PATH_MAX];
	_cleanup_close_ int parent_fd = -1;
	bool progress;
	int opt, ex, r;

	/* GNU getopt permutes: "dump PID -D DIR" and "dump -D DIR PID" both work */
	while ((opt = cli_getopt(argc, argv, ":D:Rvh", longopts, c, usage_dump, &ex)) != -1) {
		if (opt == -2)
			return ex;
		if (opt == 'D')
			o.dir = optarg;
		else if (opt == 'R')
			o.leave_running = true;
		else if (opt == 'j')
			o.shell_job = true;
		else if (opt == 'T')
			o.tcp_close = true;
		else if (opt == 'F')
			o.save_tmpfs_files = true;
		else if (opt == 'C')
			o.check_only = true;
		else if (opt == 'P')
			o.pre_dump = true;
		else if (opt == 'A')
			parent = optarg;
		else if (opt == 'E' && o.n_external == sizeof(external) / sizeof(external[0]))
			return cli_usage_error("dump", "too many --external");
		else if (opt == 'E')
			external[o.n_external++] = optarg;
	}
	o.external = external;
	if (optind >= argc)
		return cli_usage_error("dump", "missing PID");
	if (!parse_pid_arg(argv[optind], &o.pid))
		return cli_usage_error("dump", "'%s' is not a pid", argv[optind]);
	if (optind + 1 < argc)
		return cli_usage_error("dump", "unexpected argument '%s'", argv[optind + 1]);
	if (o.check_only && !o.dir) {
		/* nothing stays: a scratch directory the engine empties */
		if (!mkdtemp(scratch)) {
			fprintf(stderr, "ckptctl dump: cannot create %s: %m\n", scratch);
			return 1;
		}
		o.dir = scratch;
	}
	if (!o.dir)
		return cli_usage_error("dump", "missing -D DIR (where to write the images)");
	if (o.pre_dump && o.check_only)
		return cli_usage_error("dump", "--pre-dump and --check-only do not go together");
	if (o.pre_dump)
		o.leave_running = true;
	if (parent) {
		/* recorded relative to the new directory: the chain can move as a whole */
		r = cli_relative_path(o.dir, parent, rel, sizeof(rel));
		if (r < 0) {
			fprintf(stderr, "ckptctl dump: parent checkpoint %s: %s\n", parent,
				strerror(-r));
			return 1;
		}
		parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (parent_fd < 0) {
			fprintf(stderr, "ckptctl dump: cannot open parent checkpoint %s: %m\n", parent);
			return 1;
		}
		o.parent = rel;
		o.use_parent_fd = true;
		o.parent_fd = parent_fd;
	}
	cli_set_verbosity(c->verbose);
	if (o.check_only) {
		/* in process only: ckptd runs checks for `ckptctl preserve` */
		r = dump_tree(&o, &res, &err);
		if (o.dir == scratch)
			rmdir(scratch);
		if (r < 0) {
			fprintf(stderr, "ckptctl: pid %d cannot be dumped: %s\n", o.pid, err.msg);
			return 1;
		}
		printf("pid %d: %u task(s) pass the dump's checks; left running untouched\n", o.pid,
		       res.ntasks);
		return 0;
	}

	r = cli_daemon_connect(c, "dump", &ex);
	if (r < 0)
		return 1;
	if (r > 0)
		return daemon_dump(ex, &o, c);
	progress = !c->json && isatty(STDERR_FILENO) && c->verbose == 0;
	if (progress)
		o.progress = dump_progress;
	else if (c->json)
		o.progress = dump_progress_json;
	r = dump_tree(&o, &res, &err);
	if (progress)
		fprintf(stderr, "\r\033[K");
	dump_print_result(&o, &res, r, &err, c->json);
	return r < 0 ? 1 : 0;
}

/* --- main -------------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv, struct cli_common *c);
} commands[] = {
    {"dump", cmd_dump},	    {"restore", cmd_restore}, {"show", cmd_show},
    {"check", cmd_check},   {"ps", cmd_ps},	      {"cancel", cmd_cancel},
    {"preserve", cmd_preserve}, {"run", cmd_run},
};

int main(int argc, char **argv)
{
	struct cli_common c = {0};
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage_main(stdout);
			return 0;
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("ckptctl %s\n", CKPT_VERSION);
			return 0;
		} else if (!strcmp(a, "--socket") || !strcmp(a, "-S")) {
			if (++i >= argc)
				return cli_usage_error(NULL, "option '%s' needs an argument", a);
			c.socket = argv[i];
		} else if (!strncmp(a, "--socket=", 9)) {
			c.socket = a + 9;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			c.verbose++;
		} else if (strspn(a + 1, "v") == strlen(a + 1) && a[1]) {
			c.verbose += strlen(a + 1);
		} else {
			return cli_usage_error(NULL, "unknown option '%s'", a);
		}
	}
	if (i >= argc) {
		usage_main(stderr);
		return EXIT_USAGE;
	}
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
		if (!strcmp(argv[i], commands[k].name)) {
			optind = 1;
			return commands[k].fn(argc - i, argv + i, &c);
		}
	}
	return cli_usage_error(
	    NULL, "unknown command '%s' (dump, restore, show, check, ps, cancel, preserve, run)",
	    argv[i]);
}
