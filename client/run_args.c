/* SPDX-License-Identifier: MIT */
/* ckptctl run: option parsing (no side effects; tests/unit/check_run.c). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "run.h"

static const struct {
	const char *name;
	int sig;
} signal_names[] = {
    {"HUP", SIGHUP},	 {"INT", SIGINT},   {"QUIT", SIGQUIT},	   {"USR1", SIGUSR1},
    {"USR2", SIGUSR2},	 {"ALRM", SIGALRM}, {"TERM", SIGTERM},	   {"CONT", SIGCONT},
    {"TSTP", SIGTSTP},	 {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},	   {"URG", SIGURG},
    {"XCPU", SIGXCPU},	 {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH}, {"PWR", SIGPWR},
};

/* A number 0..max, nothing else. */
static bool parse_uint(const char *s, long max, long *ret)
{
	char *end;
	long v;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*ret = v;
	return true;
}

/* Signals that cannot be caught, or that would break the job's control. */
static bool catchable(int sig)
{
	return sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD && sig != SIGSEGV &&
	       sig != SIGBUS && sig != SIGILL && sig != SIGFPE && sig != SIGABRT &&
	       sig != SIGTRAP && sig != SIGSYS && sig != SIGPIPE;
}

int run_parse_signal(const char *s)
{
	long v;

	if (!s || !*s)
		return -1;
	if (parse_uint(s, 64, &v))
		return v >= 1 && v <= SIGRTMAX && catchable((int)v) ? (int)v : -1;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	if (!strncasecmp(s, "RTMIN", 5)) {
		if (!s[5])
			return SIGRTMIN;
		if (s[5] == '+' && parse_uint(s + 6, 64, &v) && SIGRTMIN + v <= SIGRTMAX)
			return SIGRTMIN + (int)v;
		return -1;
	}
	for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
		if (!strcasecmp(s, signal_names[i].name))
			return signal_names[i].sig;
	return -1;
}

int run_parse_args(int argc, char **argv, struct run_opts *o, char *err, size_t errlen)
{
	static const struct option longopts[] = {
	    {"dir", required_argument, NULL, 'D'},
	    {"signal", required_argument, NULL, 's'},
	    {"exit-code", required_argument, NULL, 'x'},
	    {"interval", required_argument, NULL, 'i'},
	    {"json", no_argument, NULL, 'J'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	long v;
	int opt, sig;

	memset(o, 0, sizeof(*o));
	o->exit_code = RUN_DEFAULT_EXIT_CODE;
	optind = 1;
	opterr = 0;
	/* "+": stop at the first non-option, the command and its own options */
	while ((opt = getopt_long(argc, argv, "+:D:s:x:i:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'D':
			if (!*optarg)
				return snprintf(err, errlen, "--dir needs a directory"), -1;
			if (strlen(optarg) >= sizeof(o->dir_buf))
				return snprintf(err, errlen, "--dir: path too long"), -1;
			snprintf(o->dir_buf, sizeof(o->dir_buf), "%s", optarg);
			for (size_t n = strlen(o->dir_buf); n > 1 && o->dir_buf[n - 1] == '/'; n--)
				o->dir_buf[n - 1] = '\0';
			if (!strcmp(o->dir_buf, "/"))
				return snprintf(err, errlen, "--dir /: the checkpoint needs a directory of its own"), -1;
			o->dir = o->dir_buf;
			break;
		case 's':
			sig = run_parse_signal(optarg);
			if (sig < 0)
				return snprintf(err, errlen,
						"'%s' is not a signal that can be caught", optarg),
				       -1;
			if (o->n_signals == RUN_MAX_SIGNALS)
				return snprintf(err, errlen, "too many --signal"), -1;
			o->signals[o->n_signals++] = sig;
			break;
		case 'x':
			if (!parse_uint(optarg, 255, &v))
				return snprintf(err, errlen, "--exit-code: '%s' is not 0..255",
						optarg),
				       -1;
			o->exit_code = (int)v;
			break;
		case 'i':
			if (!parse_uint(optarg, 30L * 24 * 3600, &v) || v == 0)
				return snprintf(err, errlen,
						"--interval: '%s' is not a number of seconds "
						"(1..2592000)",
						optarg),
				       -1;
			o->interval = (unsigned)v;
			break;
		case 'J':
			o->json = true;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			return 1;
		case ':':
			return snprintf(err, errlen, "option '%s' needs an argument",
					argv[optind - 1]),
			       -1;
		default:
			if (optopt)
				return snprintf(err, errlen, "unknown option '-%c'", optopt), -1;
			return snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]), -1;
		}
	}
	if (!o->dir)
		return snprintf(err, errlen, "missing --dir DIR (where the checkpoint is kept)"),
		       -1;
	if (optind >= argc)
		return snprintf(err, errlen, "missing the command to run (after --)"), -1;
	o->cmd = argv + optind;
	if (o->n_signals == 0) {
		o->signals[o->n_signals++] = SIGUSR1;
		o->signals[o->n_signals++] = SIGTERM;
	}
	return 0;
}
