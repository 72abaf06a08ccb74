/* SPDX-License-Identifier: MIT */
/*
 * Keyrings (keyrings(7)). Every task has a session keyring of its own
 * (made by pam_keyinit at login, by systemd for a service, by
 * KEYCTL_JOIN_SESSION_KEYRING) or none, and then the kernel falls back to
 * its user's session keyring (_uid_ses.UID); a process keyring and a
 * thread keyring only when it asked for them. Keys are kernel objects with
 * serials no call can choose, and a keyring of a process or thread dies
 * with it.
 *
 * The dump must not ask a task for its session keyring: the kernel answers
 * a lookup of one it has not by installing its user's session keyring as
 * one of its own, which its children would inherit (a worker that becomes
 * another user would then possess root's). So the kernel reader tells
 * each thread's (dump_kstate.c: t->session_keyring, 0 for none), and only a
 * keyring the task has is read in it: its links (KEYCTL_READ), then each
 * link described and, for "user" keys, read (the root task possesses
 * them): SessionKeyring with the keys' description, payload, owner and
 * permissions (systemd's invocation_id in every service's keyring), and
 * whether it linked its user's keyring. Refused: process and thread
 * keyrings (asked without creating one), a thread in another session
 * keyring than its process, a tree in several (but tasks of several users
 * falling back to each one's), keys of other types (a nested keyring, a
 * logon key: not readable). A restore that does not run in the tree's
 * keyring gives it a new one with those keys (restorer/keyring.c).
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

/* The area mapped in the task for the list and one key at a time. */
#define KEY_DESC_MAX 4096
#define KEY_PAYLOAD_MAX 32767 /* a "user" key's (user_preparse) */
#define KEY_AREA (KEY_DESC_MAX + KEY_PAYLOAD_MAX + 1)

/* A remote keyctl into the area; its result's length in *ret (checked against max). */
static int rkeyctl(struct dump_task *t, int op, uint32_t key, uint64_t area, size_t max, long *ret,
		   struct ckpt_error *e)
{
	int r = rsys_call(&t->rsys, __NR_keyctl, (uint64_t)op, key, area, max, 0, 0, ret, e);

	if (r >= 0 && *ret < 0)
		r = ckpt_err_errno(e, (int)*ret, "remote keyctl(%s)",
				   op == KEYCTL_READ ? "KEYCTL_READ" : "KEYCTL_DESCRIBE");
	return r;
}

/* One link of the session keyring, described (and read, a "user" key) by the task. */
static int read_link(struct dump_task *t, const struct proc_status *st, uint32_t serial,
		     uint64_t area, SessionKeyring *kr, struct ckpt_error *e)
{
	_cleanup_free_ char *desc = calloc(1, KEY_DESC_MAX + 1);
	_cleanup_free_ uint8_t *payload = NULL;
	char type[32], name[KEY_DESC_MAX], user_kr[32];
	unsigned uid, gid, perm;
	SessionKey *k, **n;
	long len, plen = 0;
	int r, pos = 0;

	if (!desc)
		return ckpt_err(e, -ENOMEM, "out of memory");
	r = rkeyctl(t, KEYCTL_DESCRIBE, serial, area, KEY_DESC_MAX, &len, e);
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
	/* its user's keyring, as pam_keyinit links it */
	snprintf(user_kr, sizeof(user_kr), "_uid.%u", st->uid[0]);
	if (!strcmp(type, "keyring") && !strcmp(name, user_kr)) {
		kr->has_user_keyring = true;
		kr->user_keyring = serial;
		return 0;
	}
	if (strcmp(type, "user"))
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: its session keyring holds a %s \"%s\" (key %u): only keys "
				"of type \"user\" can be read back and made again; not supported",
				t->pid, !strcmp(type, "keyring") ? "keyring" : type, name, serial);
	payload = malloc(KEY_PAYLOAD_MAX);
	if (!payload)
		return ckpt_err(e, -ENOMEM, "out of memory");
	r = rkeyctl(t, KEYCTL_READ, serial, area, KEY_PAYLOAD_MAX, &plen, e);
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
	kr->has_keys = true;
	kr->keys = (uint32_t)kr->n_key;
	k->description = strdup(name);
	k->payload.data = TAKE_PTR(payload);
	k->payload.len = (size_t)plen;
	k->perm = perm;
	k->uid = uid;
	k->gid = gid;
	return k->description ? 0 : ckpt_err(e, -ENOMEM, "out of memory");
}

/* The links of the session keyring the task has, through an area mapped in it. */
static int read_keyring(struct dump_task *t, const struct proc_status *st, SessionKeyring *kr,
			struct ckpt_error *e)
{
	uint32_t list[DUMP_KEYRING_LIST];
	uint64_t area;
	long len;
	int r, r2;

	r = rsys_area_map(&t->rsys, KEY_AREA, PROT_READ | PROT_WRITE, &area, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: an area for its keys", t->pid);
	r = rkeyctl(t, KEYCTL_READ, kr->serial, area, sizeof(list), &len, e);
	if (r >= 0 && (size_t)len > sizeof(list))
		r = ckpt_err(e, -E2BIG, "pid %d: its session keyring holds more than %d keys",
			     t->pid, DUMP_KEYRING_LIST);
	if (r >= 0 && len)
		r = remote_read(t->pid, area, list, (size_t)len, e);
	for (size_t i = 0; r >= 0 && i < (size_t)len / sizeof(uint32_t); i++)
		r = read_link(t, st, list[i], area, kr, e);
	r2 = rsys_area_unmap(&t->rsys, area, KEY_AREA, r < 0, e);
	return r < 0 ? ckpt_err_wrap(e, "pid %d: its session keyring %u", t->pid, kr->serial) : r2;
}

/*
 * Whether keyring serial (0: none) is the user's session keyring: none, or
 * the user's (_uid_ses.UID, which the kernel installs as the task's own at
 * its first lookup of its session keyring: the same to the program).
 * Described by the task, in its scratch.
 */
static int user_session(struct dump_task *t, const struct proc_status *st, uint32_t serial,
			bool *ret, struct ckpt_error *e)
{
	char desc[257], want[48];
	const char *name;
	long len;
	int r;

	*ret = !serial;
	if (!serial)
		return 0;
	r = rkeyctl(t, KEYCTL_DESCRIBE, serial, t->rsys.scratch, sizeof(desc) - 1, &len, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: its session keyring %u", t->pid, serial);
	if (len < 1 || len >= (long)sizeof(desc))
		return 0; /* longer than any user's */
	r = remote_read(t->pid, t->rsys.scratch, desc, (size_t)len, e);
	if (r < 0)
		return r;
	desc[len] = '\0';
	name = strrchr(desc, ';');
	snprintf(want, sizeof(want), "_uid_ses.%u", st->uid[0]);
	*ret = !strncmp(desc, "keyring;", 8) && name && !strcmp(name + 1, want);
	return 0;
}

int dump_keyring(struct dump_task *t, const struct proc_status *st, CoreEntry *core,
		 long process_keyring, struct ckpt_error *e)
{
	SessionKeyring *kr;
	bool mine, other;
	int r;

	if (process_keyring > 0)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d has a process keyring (serial %ld, "
				"KEY_SPEC_PROCESS_KEYRING): it dies with the process and its keys "
				"cannot be made again with their serials; not supported",
				t->pid, process_keyring);
	if (process_keyring < 0 && process_keyring != -ENOKEY && process_keyring != -ENOSYS)
		return ckpt_err_errno(e, (int)process_keyring,
				      "pid %d: remote keyctl (process keyring)", t->pid);
	/* without a kernel reader (or keys), nothing tells (dump_kstate.c) */
	if (!t->keyring_known)
		return 0;
	r = user_session(t, st, t->session_keyring, &mine, e);
	if (r >= 0 && t->keyring_other_tid)
		r = user_session(t, st, t->keyring_other, &other, e);
	if (r < 0)
		return r;
	/* threads differ only where a lookup installed their user's in one */
	if (t->keyring_other_tid && !(mine && other))
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: thread %d is in another session keyring than its main "
				"thread (KEYCTL_JOIN_SESSION_KEYRING in one thread): not supported",
				t->pid, t->keyring_other_tid);
	kr = calloc(1, sizeof(*kr));
	if (!kr)
		return ckpt_err(e, -ENOMEM, "out of memory");
	session_keyring__init(kr);
	core->keyring = kr;
	/* the user's: no serial (each task falls back to its own user's) */
	kr->user_session = mine;
	kr->serial = mine ? 0 : t->session_keyring;
	/* the tree's keyring is one (dump_keyring_check): read in the root */
	if (kr->user_session || t->ppid)
		return 0;
	return read_keyring(t, st, kr, e);
}

int dump_keyring_thread(pid_t pid, pid_t tid, long thread_keyring, struct ckpt_error *e)
{
	if (thread_keyring > 0)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d: thread %d has a thread keyring (serial %ld, "
				"KEY_SPEC_THREAD_KEYRING): it dies with the thread and its keys "
				"cannot be made again with their serials; not supported",
				pid, tid, thread_keyring);
	if (thread_keyring < 0 && thread_keyring != -ENOKEY && thread_keyring != -ENOSYS)
		return ckpt_err_errno(e, (int)thread_keyring,
				      "pid %d: thread %d: remote keyctl (thread keyring)", pid,
				      tid);
	return 0;
}

int dump_keyring_check(struct dump_ctx *c, const struct dump_task *t, const CoreEntry *core,
		       struct ckpt_error *e)
{
	const SessionKeyring *kr = core->keyring;

	if (!kr)
		return 0;
	if (!c->keyring_pid) {
		c->keyring_serial = kr->serial;
		c->keyring_pid = t->pid;
	} else if (kr->serial != c->keyring_serial) {
		/* (without one of their own, each falls back to its own user's,
		 * whatever the user: a daemon and its workers) */
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d is in session keyring %u, pid %d in %u: a restore gives "
				"the tree one session keyring; a tree in several is not supported",
				t->pid, kr->serial, c->keyring_pid, c->keyring_serial);
	}
	return 0;
}
