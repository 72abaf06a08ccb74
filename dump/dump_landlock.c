/* SPDX-License-Identifier: MIT */
/*
 * Landlock. A thread confined by landlock_restrict_self holds a domain: a
 * stack of rulesets whose rules name inodes and ports, kept in its
 * credentials. No call reads one back, and a domain can only be made by
 * the thread it confines: a restore would run the thread unconfined. So a
 * dump refuses every process with a confined thread, naming it, and leaves
 * the tree running (exact or refused).
 *
 * Only the kernel reader sees a domain (lib/kread.h, kread_landlock: one
 * iterator run per process over its threads' credentials). Without a
 * reader, a process whose main thread has no_new_privs set is refused: an
 * unprivileged thread can confine itself only with it. A thread that had
 * CAP_SYS_ADMIN when it was confined cannot be told without the reader:
 * logged once a dump.
 */
#define LOG_PREFIX "dump landlock: "

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/landlock.h>

#include "dump_internal.h"
#include "kread.h"
#include "log.h"

/* Whether this kernel runs Landlock: once a dump. */
static bool landlock_on(struct dump_ctx *c)
{
	long abi;

	if (c->landlock == DUMP_LANDLOCK_UNASKED) {
		abi =
		    syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
		c->landlock = abi > 0 ? DUMP_LANDLOCK_ON : DUMP_LANDLOCK_OFF;
		if (abi > 0)
			pr_debug("this kernel runs Landlock (ABI %ld)", abi);
	}
	return c->landlock != DUMP_LANDLOCK_OFF;
}

void dump_landlock_prepare(struct dump_ctx *c)
{
	struct ckpt_error e = {0};

	if (landlock_on(c) && kread_landlock_prepare(&c->kread, &e) < 0)
		pr_debug("%s", e.msg); /* each process's check meets it again */
}

/*
 * Without a reader: a thread with no_new_privs set may have confined itself
 * (an unprivileged thread can only with it), so its process is refused.
 */
static int check_no_new_privs(const struct dump_task *t, const struct ckpt_error *why,
			      struct ckpt_error *e)
{
	for (size_t i = 0; i <= t->nthreads; i++) {
		pid_t tid = i ? t->threads[i - 1] : t->pid;
		struct proc_status st;

		if (proc_parse_status(tid, &st, e) < 0)
			return ckpt_err_wrap(e, "pid %d: thread %d", t->pid, tid);
		if (st.no_new_privs)
			return ckpt_err(e, -EOPNOTSUPP,
					"pid %d: thread %d has no_new_privs set and may be "
					"confined by Landlock, which only the kernel reader can "
					"tell: %s",
					t->pid, tid, why->msg);
	}
	return 0;
}

int dump_landlock_check(struct dump_ctx *c, const struct dump_task *t, struct ckpt_error *e)
{
	struct kread_landlock ll;
	int r;

	if (!landlock_on(c))
		return 0;
	r = kread_landlock(&c->kread, t->pid, &ll, e);
	if (r < 0) {
		struct ckpt_error why = *e;

		ckpt_err_clear(e);
		if (check_no_new_privs(t, &why, e) < 0)
			return e->code;
		if (c->landlock != DUMP_LANDLOCK_UNSEEN)
			pr_warn("whether a thread is confined by Landlock cannot be told (%s): "
				"one that had CAP_SYS_ADMIN when it was confined would be "
				"restored unconfined",
				why.msg);
		c->landlock = DUMP_LANDLOCK_UNSEEN;
		return 0;
	}
	if (!ll.confined)
		return 0;
	/* the kernel numbers threads as the initial pid namespace does */
	if (c->self_nspid_levels == 1)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: thread %d is confined by Landlock "
				"(landlock_restrict_self): its domain cannot be read back or "
				"made again from outside, so a restore would run it unconfined",
				t->pid, ll.first);
	return ckpt_err(e, -EOPNOTSUPP,
			"pid %d: %u of its %u threads are confined by Landlock "
			"(landlock_restrict_self): a domain cannot be read back or made again "
			"from outside, so a restore would run them unconfined",
			t->pid, ll.confined, ll.threads);
}
