/* SPDX-License-Identifier: MIT */
/*
 * Keyrings (keyrings(7)). Every task has a session keyring, its own (made
 * by pam_keyinit at login, or by KEYCTL_JOIN_SESSION_KEYRING) or, without
 * one, its user's session keyring (_uid_ses.UID), which the kernel falls
 * back to; a process keyring and a thread keyring only when it asked for
 * them. Keys are kernel objects with serials no call can choose, and a
 * keyring of a process or thread dies with it: so the dump saves which
 * session keyring the tree is in and what it holds (SessionKeyring), and
 * refuses what a restore could not give back: process and thread
 * keyrings, a thread in another session keyring than its process, a tree
 * in several, and keys in the tree's own keyring where the restore would
 * not run in that keyring (restorer/keyring.c: it then gives the tree a
 * new one). The questions are remote keyctl calls in each thread's batch.
 */
#define LOG_PREFIX "dump keyring: "

#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/keyctl.h>

#include "dump_internal.h"
#include "log.h"

/* the order of dump_keyring_calls */
enum { K_SESSION, K_USER_SESSION, K_USER, K_PROCESS, K_LIST };

size_t dump_keyring_calls(struct rsys_op *ops, const char **names, uint64_t list_at)
{
	static const int32_t specs[] = {KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_SESSION_KEYRING,
					KEY_SPEC_USER_KEYRING, KEY_SPEC_PROCESS_KEYRING};
	static const char *const spec_names[] = {
	    "keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING)",
	    "keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_SESSION_KEYRING)",
	    "keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING)",
	    "keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING)"};

	_Static_assert(K_LIST + 1 == DUMP_KEYRING_CALLS, "one call each");
	/* create 0: asks, makes nothing (but the user's keyrings, made on
	 * first use by the kernel itself) */
	for (size_t i = 0; i < K_LIST; i++) {
		ops[i] = (struct rsys_op){
		    __NR_keyctl, {KEYCTL_GET_KEYRING_ID, (uint64_t)(int64_t)specs[i], 0}, 0};
		names[i] = spec_names[i];
	}
	/* the serials linked in the session keyring (the call returns the
	 * size of the whole list, which may be more than it wrote) */
	ops[K_LIST] = (struct rsys_op){__NR_keyctl,
				       {KEYCTL_READ, (uint64_t)(int64_t)KEY_SPEC_SESSION_KEYRING,
					list_at, DUMP_KEYRING_LIST * sizeof(uint32_t)},
				       0};
	names[K_LIST] = "keyctl(KEYCTL_READ, KEY_SPEC_SESSION_KEYRING)";
	return DUMP_KEYRING_CALLS;
}

int dump_keyring(struct dump_task *t, CoreEntry *core, const long *rets, const uint32_t *list,
		 struct ckpt_error *e)
{
	SessionKeyring *kr;
	size_t n;

	/* a kernel without keys (CONFIG_KEYS): nothing to save */
	if (rets[K_SESSION] == -ENOSYS)
		return 0;
	/* the list is asked of a keyring of its own only (below) */
	for (size_t i = 0; i < K_LIST; i++)
		if (rets[i] < 0 && !(i == K_PROCESS && rets[i] == -ENOKEY))
			return ckpt_err_errno(e, (int)rets[i], "pid %d: remote keyctl (%s keyring)",
					      t->pid,
					      i == K_SESSION	    ? "session"
					      : i == K_USER_SESSION ? "user session"
					      : i == K_USER	    ? "user"
								    : "process");
	if (rets[K_PROCESS] > 0)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d has a process keyring (serial %ld, "
				"KEY_SPEC_PROCESS_KEYRING): it dies with the process and its keys "
				"cannot be made again with their serials; not supported",
				t->pid, rets[K_PROCESS]);
	kr = calloc(1, sizeof(*kr));
	if (!kr)
		return ckpt_err(e, -ENOMEM, "out of memory");
	session_keyring__init(kr);
	core->keyring = kr;
	kr->serial = (uint32_t)rets[K_SESSION];
	kr->user_session = rets[K_SESSION] == rets[K_USER_SESSION];
	if (kr->user_session)
		return 0; /* the user's: it outlives the tree, a restore links it */
	if (rets[K_LIST] < 0)
		return ckpt_err_errno(e, (int)rets[K_LIST],
				      "pid %d: remote keyctl (the keys of its session keyring)",
				      t->pid);
	n = (size_t)rets[K_LIST] / sizeof(uint32_t);
	for (size_t i = 0; i < n; i++) {
		if (i < DUMP_KEYRING_LIST && list[i] == (uint32_t)rets[K_USER]) {
			kr->has_user_keyring = true;
			kr->user_keyring = list[i];
			continue;
		}
		kr->has_keys = true;
		kr->keys++;
	}
	return 0;
}

int dump_keyring_thread(pid_t pid, const CoreEntry *core, pid_t tid, long thread_keyring,
			long session, struct ckpt_error *e)
{
	if (!core->keyring)
		return 0;
	if (thread_keyring > 0)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: thread %d has a thread keyring (serial %ld, "
				"KEY_SPEC_THREAD_KEYRING): it dies with the thread and its keys "
				"cannot be made again with their serials; not supported",
				pid, tid, thread_keyring);
	if (thread_keyring < 0 && thread_keyring != -ENOKEY)
		return ckpt_err_errno(e, (int)thread_keyring,
				      "pid %d: thread %d: remote keyctl (thread keyring)", pid,
				      tid);
	if (session < 0)
		return ckpt_err_errno(e, (int)session,
				      "pid %d: thread %d: remote keyctl (session keyring)", pid,
				      tid);
	if ((uint32_t)session != core->keyring->serial)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: thread %d is in session keyring %ld, its process in %u "
				"(KEYCTL_JOIN_SESSION_KEYRING in one thread): not supported",
				pid, tid, session, core->keyring->serial);
	return 0;
}

int dump_keyring_check(struct dump_ctx *c, const struct dump_task *t, const CoreEntry *core,
		       struct ckpt_error *e)
{
	const SessionKeyring *kr = core->keyring;
	long own;

	if (!kr)
		return 0;
	if (!c->keyring_serial) {
		c->keyring_serial = kr->serial;
		c->keyring_pid = t->pid;
	} else if (kr->serial != c->keyring_serial) {
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d is in session keyring %u, pid %d in %u: a restore gives "
				"the tree one session keyring; a tree in several is not supported",
				t->pid, kr->serial, c->keyring_pid, c->keyring_serial);
	}
	if (!kr->keys)
		return 0;
	/* the restore keeps a keyring with keys only where it runs in it:
	 * from here (our own), and never for a non-root caller (ckptd's is
	 * not the caller's) */
	own = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
	if (!c->opts->caller_unprivileged && own == (long)kr->serial)
		return 0;
	return ckpt_err(e, -EOPNOTSUPP,
			"pid %d: its session keyring (serial %u) holds %u key%s, and a restore "
			"%s runs in another session keyring: keys cannot be moved into a new "
			"one with their serials (dump and restore from within that session)",
			t->pid, kr->serial, kr->keys, kr->keys == 1 ? "" : "s",
			c->opts->caller_unprivileged ? "through ckptd" : "from here");
}
