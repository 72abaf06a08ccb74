/* SPDX-License-Identifier: MIT */
/*
 * The tree's session keyring (CoreEntry.keyring; dump/dump_keyring.c).
 * Every task is forked from the restorer and so starts in the restorer's
 * session keyring, which for a restore through ckptd is ckptd's own: a
 * caller's program would possess it, and with it the keys ckptd and
 * every other caller's restored program hold there. So the restorer keeps
 * its session keyring for the tree only when it is the one the tree was
 * dumped in (and, for a caller other than root, only when that is the
 * caller's own user session keyring: the restorer then has none of its
 * own). Otherwise, in stage pids, before the first fork, it joins a new
 * session keyring owned by the tree's user (its fs ids set to the root
 * task's for the call) and links into it what the tree's keyring linked:
 * the user's session keyring when the tree had none of its own (the kernel
 * fell back to it), or the user's keyring (as pam_keyinit links it); and
 * adds the "user" keys the dumped one held (systemd's invocation_id in a
 * service's keyring), each with its description, payload, owner and
 * permissions (another serial: no call chooses one).
 */
#define LOG_PREFIX "restore keyring: "

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/keyctl.h>

#include "log.h"
#include "restore.h"

static long keyctl(int op, unsigned long a, unsigned long b, unsigned long c)
{
	return syscall(SYS_keyctl, op, a, b, c, 0);
}

int keyring_validate(struct restore_ctx *ctx, const char *f, const CoreEntry *c)
{
	const SessionKeyring *kr = c->keyring;

	if (!kr)
		return 0;
	if (!kr->serial || kr->serial > INT32_MAX)
		return ckpt_err(&ctx->err, -EINVAL, "%s: field keyring.serial: %u is not a serial",
				f, kr->serial);
	if (kr->user_session && (kr->has_user_keyring || kr->has_keys))
		return ckpt_err(
		    &ctx->err, -EINVAL,
		    "%s: field keyring: the user's session keyring with links of its own", f);
	if (kr->has_user_keyring && (!kr->user_keyring || kr->user_keyring > INT32_MAX))
		return ckpt_err(&ctx->err, -EINVAL,
				"%s: field keyring.user_keyring: %u is not a serial", f,
				kr->user_keyring);
	for (size_t i = 0; i < kr->n_key; i++) {
		const SessionKey *k = kr->key[i];

		if (!k->description[0] || strlen(k->description) >= 4096 || k->payload.len > 32767)
			return ckpt_err(&ctx->err, -EINVAL,
					"%s: field keyring.key[%zu]: not a user key's description "
					"and payload",
					f, i);
	}
	return 0;
}

int keyring_check(struct restore_ctx *ctx)
{
	const SessionKeyring *kr = ctx->root->core->keyring;
	long own, own_user_session;

	for (size_t i = 0; i < ctx->ntasks; i++) {
		const SessionKeyring *k = ctx->tasks[i].core->keyring;

		if (!k != !kr || (k && k->serial != kr->serial))
			return ckpt_err(&ctx->err, -EINVAL,
					"pid %d: in another session keyring than the root pid %d",
					ctx->tasks[i].pid, ctx->root->pid);
	}
	if (!kr)
		return 0;
	own = keyctl(KEYCTL_GET_KEYRING_ID, (unsigned long)KEY_SPEC_SESSION_KEYRING, 0, 0);
	own_user_session =
	    keyctl(KEYCTL_GET_KEYRING_ID, (unsigned long)KEY_SPEC_USER_SESSION_KEYRING, 0, 0);
	if (own < 0)
		return ckpt_err_errno(&ctx->err, -errno, "our own session keyring");
	/* ours is the tree's: kept, unless a caller's restore would keep
	 * ckptd's (only the caller's own user session keyring is theirs) */
	if ((uint32_t)own == kr->serial && (getuid() == 0 || own == own_user_session)) {
		pr_debug("the tree stays in our session keyring %ld", own);
		return 0;
	}
	if ((kr->has_keys ? kr->keys : 0) != kr->n_key)
		return ckpt_err(&ctx->err, -EINVAL,
				"pid %d: its session keyring (serial %u) held %u key%s, %zu saved",
				ctx->root->pid, kr->serial, kr->has_keys ? kr->keys : 0,
				kr->keys == 1 ? "" : "s", kr->n_key);
	ctx->new_keyring = true;
	return 0;
}

/* key (a serial) is a keyring described as name (its user's keyrings: _uid.UID...). */
static bool keyring_named(uint32_t key, const char *name)
{
	char desc[256];
	const char *p;
	long n = keyctl(KEYCTL_DESCRIBE, key, (unsigned long)desc, sizeof(desc));

	if (n <= 0 || (size_t)n > sizeof(desc))
		return false;
	desc[sizeof(desc) - 1] = '\0';
	/* type;uid;gid;perm;description */
	p = strrchr(desc, ';');
	return !strncmp(desc, "keyring;", 8) && p && !strcmp(p + 1, name);
}

int keyring_enter(struct restore_ctx *ctx)
{
	const SessionKeyring *kr = ctx->root->core->keyring;
	const Creds *cr = ctx->root->core->creds;
	uid_t ruid = getuid(), fsuid;
	gid_t rgid = getgid(), fsgid;
	uint32_t link = 0;
	char name[32];
	long id;
	int r = 0;

	if (!ctx->new_keyring)
		return 0;
	/*
	 * Owned by the tree's user, as one it made itself: the kernel gives a
	 * new session keyring our real ids, and checks a link with our fs
	 * ids. Root takes the tree's for the two calls (its effective ids stay
	 * 0, and with them its capabilities); a caller other than root has
	 * its own, which are the tree's (anything else is refused before).
	 */
	if (ruid == 0 && (setresgid(cr->gid, (gid_t)-1, (gid_t)-1) < 0 ||
			  setresuid(cr->uid, (uid_t)-1, (uid_t)-1) < 0)) {
		r = ckpt_err_errno(&ctx->err, -errno, "taking uid %u and gid %u for a new keyring",
				   cr->uid, cr->gid);
		goto out;
	}
	fsgid = (gid_t)setfsgid(cr->gid);
	fsuid = (uid_t)setfsuid(cr->uid);
	id = keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0);
	if (id < 0)
		r = ckpt_err_errno(&ctx->err, -errno, "joining a new session keyring");
	if (r >= 0 && kr->user_session) {
		link = kr->serial;
		snprintf(name, sizeof(name), "_uid_ses.%u", cr->uid);
	} else if (r >= 0 && kr->has_user_keyring) {
		link = kr->user_keyring;
		snprintf(name, sizeof(name), "_uid.%u", cr->uid);
	}
	/* one that is gone was freed with everything its user had (so
	 * empty): the kernel makes a new one when the user asks */
	if (link && keyring_named(link, name) &&
	    keyctl(KEYCTL_LINK, link, (unsigned long)KEY_SPEC_SESSION_KEYRING, 0) < 0)
		r = ckpt_err_errno(&ctx->err, -errno, "linking keyring %u (%s) into it", link,
				   name);
	for (size_t i = 0; r >= 0 && i < kr->n_key; i++) {
		const SessionKey *k = kr->key[i];
		long kid = syscall(SYS_add_key, "user", k->description, k->payload.data,
				   k->payload.len, KEY_SPEC_SESSION_KEYRING);

		/* ours, the tree's user's: another owner only as root */
		if (kid >= 0 && (k->uid != cr->uid || k->gid != cr->gid) &&
		    keyctl(KEYCTL_CHOWN, (unsigned long)kid, k->uid, k->gid) < 0)
			kid = -1;
		if (kid >= 0 && keyctl(KEYCTL_SETPERM, (unsigned long)kid, k->perm, 0) < 0)
			kid = -1;
		if (kid < 0)
			r = ckpt_err_errno(&ctx->err, -errno,
					   "the key \"%s\" of its session keyring (owner %u:%u, "
					   "permissions %#x)",
					   k->description, k->uid, k->gid, k->perm);
	}
	if (r >= 0)
		pr_debug("the tree's new session keyring %ld%s%s, %zu keys", id,
			 link ? ", linking " : "", link ? name : "", kr->n_key);
	setfsuid(fsuid);
	setfsgid(fsgid);
out:
	if (ruid == 0 &&
	    (setresuid(ruid, (uid_t)-1, (uid_t)-1) < 0 ||
	     setresgid(rgid, (gid_t)-1, (gid_t)-1) < 0) &&
	    r >= 0)
		r = ckpt_err_errno(&ctx->err, -errno, "taking our own ids back");
	return r;
}
