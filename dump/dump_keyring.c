/* SPDX-License-Identifier: MIT */
/*
 * Keyrings (keyrings(7)). Every task has a session keyring, its own (made
 * by pam_keyinit at login, or by KEYCTL_JOIN_SESSION_KEYRING) or, without
 * one, its user's session keyring (_uid_ses.UID), which the kernel falls
 * back to; a process keyring and a thread keyring only when it asked for
 * them. Keys are kernel objects with serials no call can choose, and a
 * keyring of a process or thread dies with it: so the dump saves which
 * session keyring the tree is in and what it holds (SessionKeyring: the
 * "user" keys of its own keyring with their description, payload,
 * permissions and owner, read by the root task, which possesses them, as
 * systemd's invocation_id in every service's keyring), and refuses what a
 * restore could not give back: process and thread keyrings, a thread in
 * another session keyring than its process, a tree in several, keys of
 * other types (a nested keyring, a logon key: not readable). A restore
 * that does not run in the tree's keyring gives it a new one with those
 * keys (restorer/keyring.c; new serials). The questions are remote keyctl
 * calls in each thread's batch.
 */
#define LOG_PREFIX "dump keyring: "

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/keyctl.h>

#include "cleanup.h"
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
	/* the tree's keyring is one (dump_keyring_check): its keys are read
	 * in the root (ppid 0), refused there when not "user" keys */
	return t->ppid ? 0 : dump_keyring_keys(t, core, list, n, e);
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
	return 0;
}

/* The scratch area mapped in the task for one key at a time. */
#define KEY_DESC_MAX 4096
#define KEY_PAYLOAD_MAX 32767 /* a "user" key's (user_preparse) */

/* One key of the session keyring, described and read by the task (it possesses it). */
static int read_key(struct dump_task *t, uint32_t serial, uint64_t area, SessionKeyring *kr,
		    struct ckpt_error *e)
{
	_cleanup_free_ char *desc = calloc(1, KEY_DESC_MAX + 1);
	_cleanup_free_ uint8_t *payload = NULL;
	char type[32], name[KEY_DESC_MAX];
	unsigned uid, gid, perm;
	SessionKey *k, **n;
	long len, plen;
	int r, pos = 0;

	if (!desc)
		return ckpt_err(e, -ENOMEM, "out of memory");
	r = rsys_call(&t->rsys, __NR_keyctl, KEYCTL_DESCRIBE, serial, area, KEY_DESC_MAX, 0, 0,
		      &len, e);
	if (r >= 0 && len < 0)
		r = ckpt_err_errno(e, (int)len, "remote keyctl(KEYCTL_DESCRIBE)");
	if (r >= 0 && (len < 1 || len > KEY_DESC_MAX))
		r = ckpt_err(e, -EIO, "a description of %ld bytes", len);
	if (r >= 0)
		r = remote_read(t->pid, area, desc, (size_t)len, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: key %u of its session keyring", t->pid, serial);
	/* type;uid;gid;perm;description (the description may hold ';') */
	if (sscanf(desc, "%31[^;];%u;%u;%x;%n", type, &uid, &gid, &perm, &pos) != 4 || !pos)
		return ckpt_err(e, -EIO, "pid %d: key %u: description \"%.60s\"", t->pid, serial,
				desc);
	snprintf(name, sizeof(name), "%s", desc + pos);
	if (strcmp(type, "user"))
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: its session keyring holds a %s \"%s\" (key %u): only keys "
				"of type \"user\" can be read back and made again; not supported",
				t->pid, !strcmp(type, "keyring") ? "keyring" : type, name, serial);
	payload = malloc(KEY_PAYLOAD_MAX);
	if (!payload)
		return ckpt_err(e, -ENOMEM, "out of memory");
	r = rsys_call(&t->rsys, __NR_keyctl, KEYCTL_READ, serial, area, KEY_PAYLOAD_MAX, 0, 0,
		      &plen, e);
	if (r >= 0 && plen < 0)
		r = ckpt_err_errno(e, (int)plen,
				   "remote keyctl(KEYCTL_READ): the program cannot read it");
	if (r >= 0 && plen > KEY_PAYLOAD_MAX)
		r = ckpt_err(e, -EIO, "a payload of %ld bytes", plen);
	if (r >= 0 && plen)
		r = remote_read(t->pid, area, payload, (size_t)plen, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: key \"%s\" (%u) of its session keyring", t->pid,
				     name, serial);
	n = realloc(kr->key, (kr->n_key + 1) * sizeof(*n));
	if (!n)
		return ckpt_err(e, -ENOMEM, "out of memory");
	kr->key = n;
	k = calloc(1, sizeof(*k));
	if (!k)
		return ckpt_err(e, -ENOMEM, "out of memory");
	session_key__init(k);
	kr->key[kr->n_key++] = k;
	k->description = strdup(name);
	k->payload.data = TAKE_PTR(payload);
	k->payload.len = (size_t)plen;
	k->perm = perm;
	k->uid = uid;
	k->gid = gid;
	return k->description ? 0 : ckpt_err(e, -ENOMEM, "out of memory");
}

int dump_keyring_keys(struct dump_task *t, CoreEntry *core, const uint32_t *list, size_t n,
		      struct ckpt_error *e)
{
	SessionKeyring *kr = core->keyring;
	struct ckpt_error tmp = {0};
	size_t len = KEY_DESC_MAX + KEY_PAYLOAD_MAX + 1;
	long area, ret;
	int r = 0, r2;

	if (!kr || !kr->keys)
		return 0;
	if (n > DUMP_KEYRING_LIST)
		return ckpt_err(e, -E2BIG, "pid %d: its session keyring holds more than %d keys",
				t->pid, DUMP_KEYRING_LIST);
	r = rsys_call(&t->rsys, __NR_mmap, 0, len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &area, e);
	if (r >= 0 && area < 0 && area > -4096)
		r = ckpt_err_errno(e, (int)area, "remote mmap");
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: an area for its keys", t->pid);
	for (size_t i = 0; r >= 0 && i < n; i++)
		if (!kr->has_user_keyring || list[i] != kr->user_keyring)
			r = read_key(t, list[i], (uint64_t)area, kr, e);
	r2 = rsys_call(&t->rsys, __NR_munmap, (uint64_t)area, len, 0, 0, 0, 0, &ret,
		       r < 0 ? &tmp : e);
	return r < 0 ? r : r2;
}
