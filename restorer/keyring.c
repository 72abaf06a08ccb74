/* SPDX-License-Identifier: MIT */
/*
 * The tree's session keyring (CoreEntry.keyring; dump/dump_keyring.c).
 * Every task is forked from the restorer and so starts in the restorer's
 * session keyring, which for a restore through ckptd is ckptd's own when
 * it has one (a service's private keyring): a caller's program would
 * possess it, and with it the keys ckptd and every other caller's restored
 * program hold there. So, in stage pids, before the first fork:
 *
 * - a tree that had no session keyring of its own (the kernel fell back to
 *   each task's user's session keyring) keeps the restorer's lack of one,
 *   where it has none too; otherwise it gets a new one linking its user's
 *   session keyring (refused for a tree of several users: they would share
 *   it);
 * - a tree in a keyring of its own keeps the restorer's where that is the
 *   one dumped and the caller is root; otherwise it gets a new one, linking
 *   its user's keyring where the dumped one did (as pam_keyinit does) and
 *   holding the "user" keys the dumped one held (systemd's invocation_id in
 *   a service's keyring), each with its description, payload, owner and
 *   permissions; serials are new (no call chooses one);
 * - images without the field (no kernel reader at dump): as before, the
 *   restorer's, except that a caller other than root never gets one the
 *   restorer has of its own.
 *
 * The new keyring belongs to the tree's user: the restorer takes the root
 * task's real and fs ids around the calls. The restorer never asks the
 * kernel for its own session keyring: such a lookup installs the user's
 * session keyring as one of its own, which every task would inherit (a
 * child of another user possessing root's). A child of ours asks instead
 * and reports.
 */
#define LOG_PREFIX "restore keyring: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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
	if (kr->serial > INT32_MAX || (kr->serial == 0) != kr->user_session)
		return ckpt_err(&ctx->err, -EINVAL, "%s: field keyring.serial: %u %s", f,
				kr->serial,
				kr->user_session ? "for none of its own" : "is not a serial");
	if (kr->user_session && (kr->has_user_keyring || kr->has_keys || kr->n_key))
		return ckpt_err(&ctx->err, -EINVAL,
				"%s: field keyring: links in the user's session keyring", f);
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

/*
 * Our own session keyring's serial (*ret_own) and whether we have one (else
 * the kernel falls back to our user's session keyring), asked by a child,
 * whose lookup installs one in it alone; as user uid where we are root: a
 * user's session keyring a lookup once installed in us as our own (which
 * our children of another user would inherit) is then told from none.
 */
static int probe_own(uid_t uid, long *ret_own, bool *ret_has, struct ckpt_error *e)
{
	long v[2] = {0, 0};
	int fds[2], st;
	pid_t kid;
	ssize_t n;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return ckpt_err_errno(e, -errno, "a pipe");
	kid = fork();
	if (kid == 0) {
		if (getuid() == 0 && uid != 0 && setresuid(uid, uid, uid) < 0)
			_exit(1);
		v[0] = keyctl(KEYCTL_GET_KEYRING_ID, (unsigned long)KEY_SPEC_SESSION_KEYRING, 0, 0);
		v[1] = keyctl(KEYCTL_GET_KEYRING_ID, (unsigned long)KEY_SPEC_USER_SESSION_KEYRING,
			      0, 0);
		_exit(write(fds[1], v, sizeof(v)) == sizeof(v) ? 0 : 1);
	}
	close(fds[1]);
	if (kid < 0) {
		close(fds[0]);
		return ckpt_err_errno(e, -errno, "fork");
	}
	n = read(fds[0], v, sizeof(v));
	close(fds[0]);
	while (waitpid(kid, &st, 0) < 0 && errno == EINTR)
		;
	if (n != sizeof(v) || v[0] <= 0 || v[1] <= 0)
		return ckpt_err(e, -EIO, "asking for our session keyring: %ld, %ld", v[0], v[1]);
	*ret_own = v[0];
	*ret_has = v[0] != v[1];
	return 0;
}

int keyring_check(struct restore_ctx *ctx)
{
	const SessionKeyring *kr = ctx->root->core->keyring;
	const Creds *cr = ctx->root->core->creds;
	bool root = getuid() == 0, has_own = false, several = false;
	uid_t as = getuid();
	long own = 0;
	int r;

	for (size_t i = 0; i < ctx->ntasks; i++) {
		const SessionKeyring *k = ctx->tasks[i].core->keyring;

		if (!k != !kr || (k && k->serial != kr->serial))
			return ckpt_err(&ctx->err, -EINVAL,
					"pid %d: in another session keyring than the root pid %d",
					ctx->tasks[i].pid, ctx->root->pid);
		/* without one of their own, each fell back to its own user's */
		if (k && k->user_session && ctx->tasks[i].core->creds->uid != cr->uid)
			several = true;
		/* asked as a user of the tree other than ours, if any */
		if (ctx->tasks[i].core->creds->uid != getuid())
			as = ctx->tasks[i].core->creds->uid;
	}
	r = probe_own(as, &own, &has_own, &ctx->err);
	if (r < 0)
		return r;
	if (!kr) {
		/* saved by no dump: ours, but never one of ours for a caller */
		ctx->new_keyring = !root && has_own;
		return 0;
	}
	if (kr->user_session ? !has_own : root && has_own && own == (long)kr->serial) {
		pr_debug("the tree keeps our session keyring (%ld%s)", own,
			 has_own ? "" : ", our user's");
		return 0;
	}
	if (kr->user_session && several)
		return ckpt_err(&ctx->err, -EOPNOTSUPP,
				"pid %d: the tree's tasks of several users had no session keyring "
				"of their own (each used its user's), and this restore runs in "
				"one (ours: %ld), which they would all share: restore from a "
				"process without one, as ckptd.service is",
				ctx->root->pid, own);
	if ((kr->has_keys ? kr->keys : 0) != kr->n_key)
		return ckpt_err(&ctx->err, -EINVAL,
				"pid %d: its session keyring (serial %u) held %u key%s, %zu saved",
				ctx->root->pid, kr->serial, kr->has_keys ? kr->keys : 0,
				kr->keys == 1 ? "" : "s", kr->n_key);
	ctx->new_keyring = true;
	return 0;
}

/* The "user" keys of the dumped keyring, into ours (the tree's user's). */
static int add_keys(struct restore_ctx *ctx, const SessionKeyring *kr, const Creds *cr)
{
	for (size_t i = 0; i < kr->n_key; i++) {
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
			return ckpt_err_errno(&ctx->err, -errno,
					      "the key \"%s\" of its session keyring (owner %u:%u, "
					      "permissions %#x)",
					      k->description, k->uid, k->gid, k->perm);
	}
	return 0;
}

int keyring_enter(struct restore_ctx *ctx)
{
	const SessionKeyring *kr = ctx->root->core->keyring;
	const Creds *cr = ctx->root->core->creds;
	uid_t ruid = getuid(), fsuid;
	gid_t rgid = getgid(), fsgid;
	const char *what = "";
	long id, link = 0;
	int r = 0;

	if (!ctx->new_keyring)
		return 0;
	/*
	 * Owned by the tree's user, as one it made itself: the kernel gives a
	 * new session keyring our real ids, looks a user's keyrings up by our
	 * real uid and checks a link with our fs ids. Root takes the tree's for
	 * those calls (its effective ids stay 0, and with them its
	 * capabilities); a caller other than root has its own, which are the
	 * tree's (anything else is refused before).
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
	/* what the dumped one linked of its user's (a user session keyring:
	 * what the kernel fell back to; images without the field: the same) */
	if (r >= 0 && (!kr || kr->user_session)) {
		what = "its user's session keyring";
		link = keyctl(KEYCTL_GET_KEYRING_ID, (unsigned long)KEY_SPEC_USER_SESSION_KEYRING,
			      0, 0);
	} else if (r >= 0 && kr->has_user_keyring) {
		what = "its user's keyring";
		link = keyctl(KEYCTL_GET_KEYRING_ID, (unsigned long)KEY_SPEC_USER_KEYRING, 0, 0);
	}
	if (r >= 0 && link &&
	    (link < 0 || keyctl(KEYCTL_LINK, (unsigned long)link,
				(unsigned long)KEY_SPEC_SESSION_KEYRING, 0) < 0))
		r = ckpt_err_errno(&ctx->err, -errno, "linking %s into it", what);
	if (r >= 0 && kr)
		r = add_keys(ctx, kr, cr);
	if (r >= 0)
		pr_debug("the tree's new session keyring %ld%s%s, %zu keys", id,
			 link ? ", linking " : "", what, kr ? kr->n_key : 0);
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
