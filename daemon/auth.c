// SPDX-License-Identifier: MIT
/*
 * Authorization of ckptd requests from the caller's credentials. The same
 * rule is applied to live tasks (/proc/PID/status, before anything is
 * seized) and to images (the Creds of every core-PID.img, so that an image
 * edited to say uid 0 is refused).
 */
#define LOG_PREFIX "auth: "

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>

#include "auth.h"
#include "cleanup.h"
#include "image.h"
#include "log.h"
#include "proc.h"
#include "core.pb-c.h"
#include "pstree.pb-c.h"

/* A tree larger than this is refused for non-root callers (bounded work). */
#define AUTH_TASKS_MAX 4096

int auth_from_socket(int sock, struct auth_caller *c, struct ckpt_error *e)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	memset(c, 0, sizeof(*c));
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return ckpt_err_errno(e, -errno, "cannot read the caller's credentials");
	c->pid = cr.pid;
	c->uid = cr.uid;
	c->gid = cr.gid;
	len = sizeof(c->groups);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, c->groups, &len) < 0)
		return ckpt_err_errno(e, -errno, "cannot read the caller's groups");
	c->ngroups = len / sizeof(gid_t);
	return 0;
}

static bool caller_has_group(const struct auth_caller *c, gid_t g)
{
	if (g == c->gid)
		return true;
	for (size_t i = 0; i < c->ngroups; i++)
		if (c->groups[i] == g)
			return true;
	return false;
}

/* The ids and capabilities of one task, from /proc or from an image. */
struct auth_task {
	uint32_t uid[3], gid[3]; /* real, effective, saved */
	const uint32_t *groups;
	size_t ngroups;
	uint64_t cap_inh, cap_prm, cap_eff, cap_amb;
};

/* "pid 812" or "image core-812.img" */
static int check_task(const struct auth_caller *c, const struct auth_task *t, const char *who,
		      struct ckpt_error *e)
{
	static const char *const kind[] = {"real", "effective", "saved"};

	for (int i = 0; i < 3; i++) {
		if (t->uid[i] != c->uid)
			return ckpt_err(e, -EPERM,
					"%s: %s uid is %u, not yours (%u): only root may "
					"checkpoint or restore another user's processes",
					who, kind[i], t->uid[i], c->uid);
		if (t->gid[i] != c->gid)
			return ckpt_err(e, -EPERM,
					"%s: %s gid is %u, not your gid (%u): only root may "
					"checkpoint or restore it",
					who, kind[i], t->gid[i], c->gid);
	}
	for (size_t i = 0; i < t->ngroups; i++)
		if (!caller_has_group(c, t->groups[i]))
			return ckpt_err(e, -EPERM,
					"%s: has supplementary group %u, which you do not have",
					who, t->groups[i]);
	if (t->cap_inh || t->cap_prm || t->cap_eff || t->cap_amb)
		return ckpt_err(e, -EPERM,
				"%s: has capabilities (permitted %#llx, effective %#llx, "
				"inheritable %#llx, ambient %#llx): only root may checkpoint or "
				"restore privileged processes",
				who, (unsigned long long)t->cap_prm, (unsigned long long)t->cap_eff,
				(unsigned long long)t->cap_inh, (unsigned long long)t->cap_amb);
	return 0;
}

/*
 * A process of the caller's that is not dumpable (PR_SET_DUMPABLE 0, or it
 * executed a set-id or unreadable program): the kernel gives its /proc
 * files to root and keeps its owner from ptrace, so the caller could not
 * read it alone; nor does ckptd for them.
 */
static int check_dumpable(const struct auth_caller *c, pid_t tid, const char *who,
			  struct ckpt_error *e)
{
	char path[48];
	struct stat st;

	/* the files of /proc/PID, not the directory itself (which keeps the euid) */
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)tid);
	if (stat(path, &st) < 0)
		return ckpt_err_errno(e, -errno, "%s: %s", who, path);
	if (st.st_uid != c->uid)
		return ckpt_err(e, -EPERM,
				"%s is not dumpable (prctl(PR_SET_DUMPABLE, 0), or it executed a "
				"set-id or unreadable program): the kernel keeps its state even "
				"from its owner, so only root may checkpoint it",
				who);
	return 0;
}

static int check_live_task(const struct auth_caller *c, pid_t tid, struct ckpt_error *e)
{
	struct proc_status st;
	struct auth_task t = {0};
	uint32_t groups[256];
	char who[48];
	int r;

	snprintf(who, sizeof(who), "pid %d", (int)tid);
	r = proc_parse_status(tid, &st, e);
	if (r < 0)
		return ckpt_err_wrap(e, "%s", who);
	/* the ids first: another user's process is refused as such */
	r = st.uid[0] == c->uid && st.uid[1] == c->uid ? check_dumpable(c, tid, who, e) : 0;
	if (r < 0)
		return r;
	for (int i = 0; i < 3; i++) {
		t.uid[i] = st.uid[i];
		t.gid[i] = st.gid[i];
	}
	for (size_t i = 0; i < st.ngroups && i < ARRAY_SIZE(groups); i++)
		groups[i] = st.groups[i];
	t.groups = groups;
	t.ngroups = st.ngroups < ARRAY_SIZE(groups) ? st.ngroups : ARRAY_SIZE(groups);
	t.cap_inh = st.cap_inh;
	t.cap_prm = st.cap_prm;
	t.cap_eff = st.cap_eff;
	t.cap_amb = st.cap_amb;
	return check_task(c, &t, who, e);
}

/* Append the children of every thread of pid to the queue. */
static int queue_children(pid_t pid, pid_t **q, size_t *n, size_t *cap, struct ckpt_error *e)
{
	_cleanup_free_ pid_t *tids = NULL;
	size_t ntids = 0;
	int r;

	r = proc_list_tasks(pid, &tids, &ntids, e);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ntids; i++) {
		_cleanup_free_ pid_t *kids = NULL;
		size_t nkids = 0;

		r = proc_list_children(pid, tids[i], &kids, &nkids, e);
		if (r < 0)
			return r;
		for (size_t k = 0; k < nkids; k++) {
			if (*n >= AUTH_TASKS_MAX)
				return ckpt_err(e, -E2BIG,
						"the tree has more than %d processes: only root "
						"may checkpoint it",
						AUTH_TASKS_MAX);
			if (*n == *cap) {
				pid_t *p = realloc(*q, (*cap * 2) * sizeof(pid_t));

				if (!p)
					return ckpt_err(e, -ENOMEM, "out of memory");
				*q = p;
				*cap *= 2;
			}
			(*q)[(*n)++] = kids[k];
		}
	}
	return 0;
}

/* Every thread of one process. */
static int check_live_process(const struct auth_caller *c, pid_t pid, struct ckpt_error *e)
{
	_cleanup_free_ pid_t *tids = NULL;
	size_t ntids = 0;
	int r;

	r = proc_list_tasks(pid, &tids, &ntids, e);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d", (int)pid);
	for (size_t i = 0; i < ntids; i++) {
		r = check_live_task(c, tids[i], e);
		if (r < 0)
			return r;
	}
	return 0;
}

int auth_check_dump(const struct auth_caller *c, pid_t pid, struct ckpt_error *e)
{
	_cleanup_free_ pid_t *q = NULL;
	size_t n = 0, cap = 64;
	int r;

	if (auth_is_root(c))
		return 0;
	q = malloc(cap * sizeof(pid_t));
	if (!q)
		return ckpt_err(e, -ENOMEM, "out of memory");
	q[n++] = pid;
	/* breadth first; the queue only grows, so every process is seen once */
	for (size_t i = 0; i < n; i++) {
		r = check_live_process(c, q[i], e);
		if (r < 0)
			return r;
		r = queue_children(q[i], &q, &n, &cap, e);
		if (r < 0)
			return ckpt_err_wrap(e, "pid %d", (int)q[i]);
	}
	pr_debug("uid %u may dump the %zu processes of tree %d", c->uid, n, (int)pid);
	return 0;
}

static int check_image_creds(const struct auth_caller *c, const Creds *cr, const char *who,
			     struct ckpt_error *e)
{
	struct auth_task t = {0};
	int r;

	t.uid[0] = cr->uid;
	t.uid[1] = cr->euid;
	t.uid[2] = cr->suid;
	t.gid[0] = cr->gid;
	t.gid[1] = cr->egid;
	t.gid[2] = cr->sgid;
	t.groups = cr->groups;
	t.ngroups = cr->n_groups;
	t.cap_inh = cr->cap_inh;
	t.cap_prm = cr->cap_prm;
	t.cap_eff = cr->cap_eff;
	t.cap_amb = cr->has_cap_amb ? cr->cap_amb : 0;
	r = check_task(c, &t, who, e);
	/* the fs ids are restored too: they must be the caller's as well */
	if (r == 0 && (cr->fsuid != c->uid || cr->fsgid != c->gid))
		r = ckpt_err(e, -EPERM, "%s: filesystem uid/gid %u/%u are not yours (%u/%u)", who,
			     cr->fsuid, cr->fsgid, c->uid, c->gid);
	return r;
}

static int check_image_task(const struct auth_caller *c, int dirfd, pid_t pid, struct ckpt_error *e)
{
	_cleanup_img_ struct img *img = NULL;
	CoreEntry *core = NULL;
	char who[96];
	int r;

	snprintf(who, sizeof(who), "image core-%d.img", (int)pid);
	r = img_open(dirfd, IMG_CORE, pid, &img, e);
	if (r < 0)
		return r;
	r = img_read_one(img, (ProtobufCMessage **)&core, e);
	if (r < 0)
		return r;
	if (!core->creds) {
		protobuf_c_message_free_unpacked(&core->base, NULL);
		return ckpt_err(e, -EPERM, "%s: no credentials recorded", who);
	}
	r = check_image_creds(c, core->creds, who, e);
	/* each thread gets its own saved credentials: every one is checked */
	for (size_t i = 0; r == 0 && i < core->n_threads; i++) {
		if (!core->threads[i]->creds)
			continue;
		snprintf(who, sizeof(who), "image core-%d.img thread %d", (int)pid,
			 core->threads[i]->tid);
		r = check_image_creds(c, core->threads[i]->creds, who, e);
	}
	protobuf_c_message_free_unpacked(&core->base, NULL);
	return r;
}

int auth_check_images(const struct auth_caller *c, int dirfd, struct ckpt_error *e)
{
	_cleanup_img_ struct img *img = NULL;
	size_t n = 0;
	int r;

	if (auth_is_root(c))
		return 0;
	r = img_open(dirfd, IMG_PSTREE, 0, &img, e);
	if (r < 0)
		return r;
	for (;;) {
		PstreeEntry *pe = NULL;

		r = img_read_msg(img, (ProtobufCMessage **)&pe, e);
		if (r <= 0)
			break;
		if (++n > AUTH_TASKS_MAX) {
			protobuf_c_message_free_unpacked(&pe->base, NULL);
			return ckpt_err(e, -E2BIG, "pstree.img lists more than %d processes",
					AUTH_TASKS_MAX);
		}
		/* a zombie has no image: its parent (checked) forks it and it
		 * exits at once */
		r = pe->has_zombie_status ? 0 : check_image_task(c, dirfd, pe->pid, e);
		protobuf_c_message_free_unpacked(&pe->base, NULL);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (n == 0)
		return ckpt_err(e, -EINVAL, "pstree.img lists no process");
	pr_debug("uid %u may restore the %zu processes of the images", c->uid, n);
	return 0;
}
