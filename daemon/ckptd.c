// SPDX-License-Identifier: MIT
/*
 * ckptd: the checkpoint service. Takes its listening socket from systemd
 * (socket activation) or binds --socket PATH, drops the capabilities it
 * does not need, tells systemd it is ready and serves (server.c) until
 * SIGTERM. Logs go to stderr (the journal under systemd). See docs/daemon.md.
 */
#define LOG_PREFIX "ckptd: "

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "mac.h"
#include "restorer_io.h"
#include "rpc.h"
#include "server.h"
#include "worker.h"

#define SD_LISTEN_FDS_START 3
#define STATE_DIR_DEFAULT "/var/lib/ckpt"

/* What the dump engine, the workers and ckpt-restore need (docs/daemon.md). */
static const cap_value_t kept_caps[] = {
    CAP_SYS_PTRACE,   CAP_SYS_ADMIN,	      CAP_SETUID, CAP_SETGID, CAP_SETPCAP,    CAP_CHOWN,
    CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,    CAP_FOWNER, CAP_KILL,   CAP_SYS_CHROOT, CAP_SETFCAP,
    CAP_NET_ADMIN,    CAP_CHECKPOINT_RESTORE, CAP_SYS_TIME,
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: ckptd [--socket PATH] [--restorer PATH] [--max-jobs N]\n"
		"             [--max-jobs-per-user N] [--max-restore-bytes N]\n"
		"             [--max-images N] [--mac-key PATH] [--idle-timeout SECS] [-v]\n"
		"\n"
		"The ckpt checkpoint service. Uses the socket systemd passes (socket\n"
		"activation), else binds PATH (default %s).\n"
		"\n"
		"  -s, --socket PATH     bind this unix socket (mode 0666; parent made 0755)\n"
		"      --restorer PATH   ckpt-restore to run (default: $CKPT_RESTORE, the one\n"
		"                        next to ckptd, else %s/ckpt-restore)\n"
		"      --max-jobs N      dumps and restores running at once (default 16)\n"
		"      --max-jobs-per-user N\n"
		"                        of them for one non-root user (default %u)\n"
		"      --max-restore-bytes N\n"
		"                        images a non-root restore may declare and have\n"
		"                        copied, in bytes (default %llu)\n"
		"      --max-images N    images a non-root restore may list (default %u)\n"
		"      --mac-key PATH    root's key sealing the checkpoints it writes (mac.img;\n"
		"                        default %s, created 0600 if missing)\n"
		"      --idle-timeout S  close a silent connection after S seconds (default 10)\n"
		"      --state-dir PATH  where `ckptctl preserve` keeps its registry and the\n"
		"                        preserved jobs' images (default $CKPT_STATE_DIR, else\n"
		"                        %s; created 0700)\n"
		"  -v, --verbose         more log output (-vv: debug)\n",
		CKPT_SOCKET_DEFAULT, CKPT_LIBEXECDIR, SERVER_JOBS_PER_USER_DEFAULT,
		SERVER_RESTORE_BYTES_DEFAULT, SERVER_IMAGES_DEFAULT, MAC_KEY_DEFAULT,
		STATE_DIR_DEFAULT);
}

/*
 * Does the restorer take this option? `ckpt-restore --help` lists every
 * option it has; --restore-all passes --new-pidns and --continue-clocks
 * only to a restorer that lists them (docs/preserve.md).
 */
static void restorer_options(const char *restorer, struct server_opts *o)
{
	char buf[16384];
	size_t n = 0;
	int p[2], status;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, STDIN_FILENO);
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		execl(restorer, "ckpt-restore", "--help", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (pid > 0 && n + 1 < sizeof(buf)) {
		ssize_t k = read(p[0], buf + n, sizeof(buf) - 1 - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += k;
	}
	buf[n] = '\0';
	close(p[0]);
	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	o->restorer_new_pidns = strstr(buf, "--new-pidns") != NULL;
	o->restorer_continue_clocks = strstr(buf, "--continue-clocks") != NULL;
	pr_info("restorer: --new-pidns %s, --continue-clocks %s",
		o->restorer_new_pidns ? "supported" : "not supported (taken pids fail a restore)",
		o->restorer_continue_clocks ? "supported" : "not supported (clocks jump at boot)");
}

static int mkdir_parents(const char *path);

/* STATE_DIR, made (0700) if missing, opened; -1 and a warning if impossible. */
static int open_state_dir(const char *path)
{
	int fd;

	if (mkdir_parents(path) < 0 || (mkdir(path, 0700) < 0 && errno != EEXIST)) {
		pr_warn("cannot create the state directory %s: %m; preserve is unavailable", path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		pr_warn("cannot open the state directory %s: %m; preserve is unavailable", path);
	return fd;
}

/* sd_listen_fds(): exactly one socket, fd 3, meant for us. */
static int systemd_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int fd = SD_LISTEN_FDS_START;

	if (!pid || !fds || atol(pid) != (long)getpid())
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (atoi(fds) != 1) {
		pr_err("systemd passed %s sockets; ckptd wants exactly one", fds);
		return -2;
	}
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		pr_err("socket from systemd (fd %d): %m", fd);
		return -2;
	}
	return fd;
}

static int mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	p = strrchr(buf, '/');
	if (!p || p == buf)
		return 0;
	*p = '\0';
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int bind_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		pr_err("socket path %s is too long", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	r = mkdir_parents(path);
	if (r < 0) {
		pr_err("cannot create the directory of %s: %s", path, strerror(-r));
		return -1;
	}
	/* a stale socket of an earlier run; anything else is left alone */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		pr_err("socket: %m");
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		pr_err("cannot bind %s: %m", path);
		return -1;
	}
	/* any user may connect: what they may do is decided per request */
	if (chmod(path, 0666) < 0 || listen(fd, 128) < 0) {
		pr_err("cannot listen on %s: %m", path);
		return -1;
	}
	return TAKE_FD(fd);
}

/*
 * Keep only kept_caps in the permitted and effective sets. The bounding set
 * stays: ckpt-restore, executed as root for a root caller, must be able to
 * give a restored root task every capability its image records. For other
 * callers the worker drops the bounding set before it executes the
 * restorer (worker.c).
 */
static int drop_capabilities(void)
{
	cap_t caps = cap_init();
	int r = 0;

	if (!caps)
		return -ENOMEM;
	if (cap_set_flag(caps, CAP_PERMITTED, ARRAY_SIZE(kept_caps), kept_caps, CAP_SET) < 0 ||
	    cap_set_flag(caps, CAP_EFFECTIVE, ARRAY_SIZE(kept_caps), kept_caps, CAP_SET) < 0 ||
	    cap_set_proc(caps) < 0) {
		r = -errno;
		pr_warn("cannot drop capabilities: %m");
	}
	cap_free(caps);
	return r;
}

/* sd_notify("READY=1") by hand: one datagram to $NOTIFY_SOCKET. */
static void notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	static const char msg[] = "READY=1\nSTATUS=Serving";
	socklen_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path));
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0)
		pr_warn("sd_notify to %s: %m", path);
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"restorer", required_argument, NULL, 'r'},
	    {"max-jobs", required_argument, NULL, 'j'},
	    {"idle-timeout", required_argument, NULL, 't'},
	    {"max-jobs-per-user", required_argument, NULL, 'u'},
	    {"max-restore-bytes", required_argument, NULL, 'b'},
	    {"max-images", required_argument, NULL, 'i'},
	    {"mac-key", required_argument, NULL, 'k'},
	    {"state-dir", required_argument, NULL, 'd'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct server_opts o = {0};
	struct ckpt_error e = {0};
	_cleanup_free_ char *restorer = NULL;
	const char *sock_path = NULL, *restorer_opt = NULL, *mac_key_path = MAC_KEY_DEFAULT;
	const char *state_dir = getenv("CKPT_STATE_DIR");
	static uint8_t mac_key[MAC_KEY_LEN];
	int c, verbose = 0, fd, r;

	while ((c = getopt_long(argc, argv, "s:vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock_path = optarg;
			break;
		case 'r':
			restorer_opt = optarg;
			break;
		case 'j':
			o.max_jobs = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 't':
			o.idle_timeout = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'u':
			o.max_jobs_per_user = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			o.max_restore_bytes = strtoull(optarg, NULL, 10);
			break;
		case 'i':
			o.max_images = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			mac_key_path = optarg;
			break;
		case 'd':
			state_dir = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ckptd %s\n", CKPT_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	ckpt_log_set_level(verbose >= 2 ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	restorer = restorer_find(restorer_opt, CKPT_LIBEXECDIR, false, &(bool){false});
	if (!restorer)
		return 1;
	if (mac_key_load(mac_key_path, mac_key, &e) < 0) {
		pr_err("%s", e.msg);
		return 1;
	}
	o.mac_key = mac_key;
	if (!state_dir || !*state_dir)
		state_dir = STATE_DIR_DEFAULT;
	o.state_dir = state_dir;
	o.state_fd = open_state_dir(state_dir);
	restorer_options(restorer, &o);
	/* what workers killed together with an earlier ckptd left */
	worker_snapshots_sweep(0);
	fd = systemd_socket();
	if (fd == -2)
		return 1;
	if (fd < 0) {
		if (!sock_path)
			sock_path = CKPT_SOCKET_DEFAULT;
		fd = bind_socket(sock_path);
		if (fd < 0)
			return 1;
	} else {
		sock_path = NULL;
	}
	if (drop_capabilities() < 0)
		pr_warn("running with more capabilities than needed");
	o.listen_fd = fd;
	o.restorer = restorer;
	pr_info("ckptd %s ready (%s%s), restorer %s", CKPT_VERSION,
		sock_path ? "socket " : "socket from systemd", sock_path ? sock_path : "",
		restorer);
	notify_ready();
	r = server_run(&o, &e);
	if (r < 0) {
		pr_err("%s", e.msg);
		return 1;
	}
	close(fd);
	return 0;
}
