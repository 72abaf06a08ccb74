/* SPDX-License-Identifier: MIT */
/*
 * What only the kernel reader sees of a task (lib/kread.h,
 * kread_task_state: one iterator run per process over its threads), and
 * what of it a restore could not give back, refused with the tree left
 * running (exact or refused):
 *
 * - Landlock. A thread confined by landlock_restrict_self holds a domain:
 *   a stack of rulesets whose rules name inodes and ports, kept in its
 *   credentials. No call reads one back, and a domain can only be made by
 *   the thread it confines: a restore would run the thread unconfined.
 *   Asked only where the kernel runs Landlock. Without a reader, a
 *   process with a thread that has no_new_privs set is refused (an
 *   unprivileged thread can confine itself only with it); a thread that
 *   had CAP_SYS_ADMIN when it was confined cannot be told (logged once a
 *   dump).
 * - System V semaphore adjustments (semop with SEM_UNDO): the kernel
 *   applies them when the process exits, so the kill of a dump releases
 *   what the process held (a semaphore used as a lock), and no call can
 *   give a process adjustments without making the operations again.
 *   Without a reader they cannot be told (logged once a dump).
 */
#define LOG_PREFIX "dump kstate: "

#include <errno.h>
#include <pthread.h>
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

static void *prepare_main(void *arg)
{
	struct dump_ctx *c = arg;
	struct ckpt_error e = {0};

	if (kread_task_prepare(&c->kread, c->landlock == DUMP_LANDLOCK_ON, &e) < 0)
		pr_debug("%s", e.msg); /* each process's check meets it again */
	/* and the programs that list a task's areas and fds (dump_numa.c,
	 * dump_fds.c): 3.5 ms of a 256 MiB dump's freeze were their loading */
	else if (kread_lists_prepare(&c->kread, &e) < 0)
		pr_debug("%s", e.msg);
	return NULL;
}

void dump_kstate_prepare_start(struct dump_ctx *c)
{
	struct ckpt_error e = {0};

	landlock_on(c);
	/* about 7 ms (the BTF, the calibration, the program), alongside the
	 * dump's own steps before the freeze; made here if no thread can be */
	if (pthread_create(&c->kstate_prep, NULL, prepare_main, c) == 0) {
		c->kstate_prep_running = true;
		return;
	}
	if (kread_task_prepare(&c->kread, c->landlock == DUMP_LANDLOCK_ON, &e) < 0)
		pr_debug("%s", e.msg);
}

void dump_kstate_prepare_join(struct dump_ctx *c)
{
	if (!c->kstate_prep_running)
		return;
	pthread_join(c->kstate_prep, NULL);
	c->kstate_prep_running = false;
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

int dump_kstate_check(struct dump_ctx *c, struct dump_task *t, struct ckpt_error *e)
{
	bool landlock = landlock_on(c);
	struct kread_task_state ks;
	int r;

	r = kread_task_state(&c->kread, t->pid, landlock, &ks, e);
	if (r < 0) {
		struct ckpt_error why = *e;

		ckpt_err_clear(e);
		if (landlock && check_no_new_privs(t, &why, e) < 0)
			return e->code;
		if (!c->kstate_unseen)
			pr_warn("the kernel reader cannot tell (%s): %sSystem V semaphore "
				"adjustments (SEM_UNDO) would be lost, and the session "
				"keyring is not saved",
				why.msg,
				landlock ? "a thread confined by Landlock while it had "
					   "CAP_SYS_ADMIN, "
					 : "");
		c->kstate_unseen = true;
		return 0;
	}
	t->keyring_known = ks.keyring_known;
	t->session_keyring = ks.session_keyring;
	t->keyring_other_tid = ks.keyring_other_tid;
	t->keyring_other = ks.keyring_other;
	if (ks.sem_undo)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d has System V semaphore adjustments to undo at its exit "
				"(semop with SEM_UNDO): the kill of a dump would apply them, "
				"releasing what it holds, and its restore could not have them "
				"again; not supported",
				t->pid);
	if (!ks.confined)
		return 0;
	/* the kernel numbers threads as the initial pid namespace does */
	if (c->self_nspid_levels == 1)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: thread %d is confined by Landlock "
				"(landlock_restrict_self): its domain cannot be read back or "
				"made again from outside, so a restore would run it unconfined",
				t->pid, ks.first_confined);
	return ckpt_err(e, -EOPNOTSUPP,
			"pid %d: %u of its %u threads are confined by Landlock "
			"(landlock_restrict_self): a domain cannot be read back or made again "
			"from outside, so a restore would run them unconfined",
			t->pid, ks.confined, ks.threads);
}
