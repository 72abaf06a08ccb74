/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the terminal kind (lib/kinds/tty.c): a pty pair of the test
 * process is probed and dumped (index, termios, window size, lock, packet
 * mode), then recreated as a new pair from the entries with the same
 * settings; forged entries are refused; /dev/tty stands for a pty.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "kinds/fd_kind.h"
#include "kinds/tty.h"

static int self_pidfd(void)
{
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);

	ck_assert_int_ge(fd, 0);
	return fd;
}

/* Probe fd of ourselves and dump it with the kind that matches. */
static void dump_fd(int fd, FileEntry *fe)
{
	_cleanup_close_ int pidfd = self_pidfd();
	const struct fd_kind *k;
	struct ckpt_error e = {};
	struct fd_probe p;

	ck_assert_msg(fd_probe_fill(pidfd, getpid(), fd, &p, &e) == 0, "%s", e.msg);
	k = fd_kind_find(&p);
	ck_assert_ptr_nonnull(k);
	ck_assert_str_eq(k->name, "terminal");
	file_entry__init(fe);
	ck_assert_msg(k->dump(&p, fe, &e) == 0, "%s", e.msg);
	fd_probe_release(&p);
	ck_assert_int_eq(fe->type, FILE_TYPE__FILE_TTY);
	ck_assert_ptr_nonnull(fe->tty);
	ck_assert_msg(k->verify(fe, &e) == 0, "%s", e.msg);
	ck_assert_ptr_eq(fd_kind_for_file(fe), k);
}

static void free_entry(FileEntry *fe)
{
	FileEntry *copy = malloc(sizeof(*copy));

	*copy = *fe;
	file_entry__free_unpacked(copy, NULL);
}

/* A pty pair: raw slave, 33x77, packet mode on the master. */
static void make_pair(int *m, int *s, uint32_t *index)
{
	struct winsize ws = {.ws_row = 33, .ws_col = 77};
	struct termios t;
	int n = 0, one = 1;

	*m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(*m, 0);
	ck_assert_int_eq(unlockpt(*m), 0);
	ck_assert_int_eq(ioctl(*m, TIOCGPTN, &n), 0);
	*index = (uint32_t)n;
	*s = ioctl(*m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(*s, 0);
	ck_assert_int_eq(tcgetattr(*s, &t), 0);
	cfmakeraw(&t);
	t.c_cc[VMIN] = 3;
	ck_assert_int_eq(tcsetattr(*s, TCSANOW, &t), 0);
	ck_assert_int_eq(ioctl(*s, TIOCSWINSZ, &ws), 0);
	ck_assert_int_eq(ioctl(*m, TIOCPKT, &one), 0);
}

START_TEST(test_pair_roundtrip)
{
	_cleanup_close_ int m = -1, s = -1, nm = -1, ns = -1;
	struct termios a, b;
	struct winsize ws;
	struct ckpt_error e = {};
	FileEntry mfe, sfe;
	uint32_t index, nindex;
	int v = 0;
	char buf[16];

	make_pair(&m, &s, &index);
	dump_fd(m, &mfe);
	dump_fd(s, &sfe);
	ck_assert_int_eq(mfe.tty->role, TTY_ROLE__TTY_MASTER);
	ck_assert_int_eq(sfe.tty->role, TTY_ROLE__TTY_SLAVE);
	ck_assert_uint_eq(mfe.tty->index, index);
	ck_assert_uint_eq(sfe.tty->index, index);
	ck_assert(mfe.tty->packet);
	ck_assert(!mfe.tty->locked);
	ck_assert_uint_eq(mfe.tty->winsize->rows, 33);
	ck_assert_uint_eq(sfe.tty->winsize->cols, 77);
	ck_assert_uint_eq(mfe.tty->termios->cc.len, 19);
	ck_assert_str_eq(tty_entry_name(&sfe, buf, sizeof(buf)), sfe.path);

	/* the saved index is ours still: the new pty gets another one */
	ck_assert_msg(tty_open_master(&mfe, &nm, &nindex, &e) == 0, "%s", e.msg);
	ck_assert_uint_ne(nindex, index);
	ck_assert_msg(tty_open_peer(&sfe, nm, &ns, &e) == 0, "%s", e.msg);
	ck_assert_msg(tty_finish(&mfe, nm, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(tcgetattr(s, &a), 0);
	ck_assert_int_eq(tcgetattr(ns, &b), 0);
	ck_assert_int_eq(a.c_lflag, b.c_lflag);
	ck_assert_int_eq(a.c_iflag, b.c_iflag);
	ck_assert_int_eq(a.c_oflag, b.c_oflag);
	ck_assert_int_eq(b.c_cc[VMIN], 3);
	ck_assert_int_eq(ioctl(ns, TIOCGWINSZ, &ws), 0);
	ck_assert_int_eq(ws.ws_row, 33);
	ck_assert_int_eq(ws.ws_col, 77);
	ck_assert_int_eq(ioctl(nm, TIOCGPKT, &v), 0);
	ck_assert_int_eq(v, 1);
	/* the new pair works: raw slave, packet master (a 0 byte first) */
	ck_assert_int_eq(write(ns, "hi!", 3), 3);
	/* control packets (one byte, not TIOCPKT_DATA) may come first */
	for (int i = 0; i < 5; i++) {
		ck_assert_int_ge(read(nm, buf, sizeof(buf)), 1);
		if (buf[0] == TIOCPKT_DATA)
			break;
	}
	ck_assert_int_eq(buf[0], TIOCPKT_DATA);
	ck_assert_int_eq(memcmp(buf + 1, "hi!", 3), 0);

	/* the index comes back once it is free */
	close(ns);
	ns = -1;
	close(nm);
	nm = -1;
	close(s);
	s = -1;
	close(m);
	m = -1;
	ck_assert_msg(tty_open_master(&mfe, &nm, &nindex, &e) == 0, "%s", e.msg);
	ck_assert_uint_eq(nindex, index);
	free_entry(&mfe);
	free_entry(&sfe);
}
END_TEST

START_TEST(test_locked)
{
	_cleanup_close_ int m = -1, nm = -1, ns = -1;
	struct ckpt_error e = {};
	FileEntry mfe;
	uint32_t idx;
	int v = 0;

	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(m, 0);
	dump_fd(m, &mfe);
	ck_assert(mfe.tty->locked);
	ck_assert_msg(tty_open_master(&mfe, &nm, &idx, &e) == 0, "%s", e.msg);
	ck_assert_msg(tty_open_peer(&mfe, nm, &ns, &e) == 0, "%s", e.msg);
	ck_assert_msg(tty_finish(&mfe, nm, &e) == 0, "%s", e.msg);
	ck_assert_int_eq(ioctl(nm, TIOCGPTLCK, &v), 0);
	ck_assert_int_eq(v, 1);
	free_entry(&mfe);
}
END_TEST

START_TEST(test_forged)
{
	_cleanup_close_ int m = -1, s = -1, nm = -1;
	const struct fd_kind *k;
	struct ckpt_error e = {};
	FileEntry fe;
	uint32_t index;

	make_pair(&m, &s, &index);
	dump_fd(s, &fe);
	k = fd_kind_for_file(&fe);
	/* a slave alone is made with its master, never by open */
	ck_assert_int_eq(k->open(&fe, O_CLOEXEC, &nm, &e), -EINVAL);
	fe.tty->index = 1 << 20;
	ck_assert_int_eq(k->verify(&fe, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "tty.index"));
	fe.tty->index = index;
	fe.tty->termios->cc.len = 5;
	ck_assert_int_eq(k->verify(&fe, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "tty.termios.cc"));
	fe.tty->termios->cc.len = 19;
	fe.tty->role = 9;
	ck_assert_int_eq(k->verify(&fe, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "tty.role"));
	fe.tty->role = TTY_ROLE__TTY_SLAVE;
	setenv("CKPT_FAULT", "tty-verify", 1);
	ck_assert_int_eq(k->verify(&fe, &e), -EIO);
	unsetenv("CKPT_FAULT");
	free_entry(&fe);
}
END_TEST

/* /dev/tty in a child with the slave as controlling terminal: role ctty. */
START_TEST(test_dev_tty)
{
	_cleanup_close_ int m = -1, s = -1;
	uint32_t index;
	int p[2], status;
	pid_t pid;
	char r = 0;

	make_pair(&m, &s, &index);
	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		FileEntry fe;
		int fd;

		setsid();
		if (ioctl(s, TIOCSCTTY, 0) < 0)
			_exit(2);
		fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			_exit(3);
		dump_fd(fd, &fe);
		r = fe.tty->role == TTY_ROLE__TTY_CTTY && fe.tty->index == index ? 'y' : 'n';
		(void)!write(p[1], &r, 1);
		_exit(0);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &r, 1), 1);
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(r, 'y');
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tty");
	TCase *tc = tcase_create("pty");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_pair_roundtrip);
	tcase_add_test(tc, test_locked);
	tcase_add_test(tc, test_forged);
	tcase_add_test(tc, test_dev_tty);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
