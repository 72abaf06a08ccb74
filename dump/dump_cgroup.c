/* SPDX-License-Identifier: MIT */
/*
 * The cgroups of a thread, in every hierarchy (v1 ones and the v2 one):
 * /proc/PID/task/TID/cgroup, one line per hierarchy. v1 membership is per
 * thread (`tasks`), and so is v2's inside a threaded subtree, so every
 * thread is saved, not only the process.
 *
 * The paths are relative to the hierarchy's root as the dumper's cgroup
 * namespace shows it (no mount path goes into the image: the restorer
 * finds the mounts in its own /proc/self/mountinfo). A thread in another
 * cgroup namespace than the dumper's sees, and may have been written by,
 * paths relative to another root: it is refused, as is a path the
 * dumper's namespace cannot name ("/../x").
 */
#define LOG_PREFIX "dump cgroup: "

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup.h"
#include "cleanup.h"
#include "dump_internal.h"

static int check_cgroupns(pid_t pid, pid_t tid, struct ckpt_error *e)
{
	struct stat self, st;
	char path[96];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/ns/cgroup", pid, tid);
	if (stat("/proc/self/ns/cgroup", &self) < 0)
		return ckpt_err_errno(e, -errno, "cannot stat /proc/self/ns/cgroup");
	if (stat(path, &st) < 0)
		return ckpt_err_errno(e, -errno, "cannot stat %s", path);
	if (st.st_ino != self.st_ino || st.st_dev != self.st_dev)
		return ckpt_err(e, -EOPNOTSUPP,
				"thread %d is in cgroup namespace %lu, the dumper in %lu: cgroup "
				"namespaces are not supported (its cgroup paths are relative to a "
				"root the restore could not know)",
				tid, (unsigned long)st.st_ino, (unsigned long)self.st_ino);
	return 0;
}

int dump_thread_cgroups(pid_t pid, pid_t tid, ThreadCore *tc, struct ckpt_error *e)
{
	struct cgroup_list l = {0};
	char path[96];
	int r;

	r = check_cgroupns(pid, tid, e);
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", pid, tid);
	r = cgroup_parse_file(path, &l, e);
	if (r < 0)
		return r;
	tc->cgroups = calloc(l.n ? l.n : 1, sizeof(*tc->cgroups));
	if (!tc->cgroups) {
		cgroup_list_free(&l);
		return ckpt_err(e, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < l.n; i++) {
		struct cgroup_line *cl = &l.v[i];
		const char *why = cgroup_controllers_invalid(cl->controllers);
		CgroupMember *m;

		if (!why && cl->id != 0 && !cl->controllers[0])
			why = "a v1 hierarchy without controllers or name";
		if (why) {
			r = ckpt_err(e, -EOPNOTSUPP, "thread %d: cgroup hierarchy %u '%s': %s", tid,
				     cl->id, cl->controllers, why);
			break;
		}
		why = cgroup_path_invalid(cl->path);
		if (why) {
			r = ckpt_err(e, -EOPNOTSUPP,
				     "thread %d: cgroup %s:/%s: %s (outside the dumper's cgroup "
				     "namespace, or a name the restore could not make again)",
				     tid, cl->controllers[0] ? cl->controllers : "v2", cl->path, why);
			break;
		}
		m = calloc(1, sizeof(*m));
		if (!m) {
			r = ckpt_err(e, -ENOMEM, "out of memory");
			break;
		}
		cgroup_member__init(m);
		m->controllers = TAKE_PTR(cl->controllers);
		m->path = TAKE_PTR(cl->path);
		m->has_hierarchy_id = true;
		m->hierarchy_id = cl->id;
		tc->cgroups[tc->n_cgroups++] = m;
	}
	cgroup_list_free(&l);
	return r;
}

static const CgroupMember *member_of(const ThreadCore *th, const char *controllers)
{
	for (size_t i = 0; i < th->n_cgroups; i++)
		if (cgroup_controllers_equal(th->cgroups[i]->controllers, controllers))
			return th->cgroups[i];
	return NULL;
}

int dump_check_cgroups_under_root(struct dump_ctx *c, struct ckpt_error *e)
{
	const ThreadCore *root = c->ntasks ? c->tasks[0].core->threads[0] : NULL;

	for (size_t i = 0; root && i < c->ntasks; i++) {
		const CoreEntry *core = c->tasks[i].core;

		for (size_t k = 0; k < core->n_threads; k++) {
			const ThreadCore *th = core->threads[k];

			for (size_t j = 0; j < th->n_cgroups; j++) {
				const CgroupMember *m = th->cgroups[j];
				const CgroupMember *r = member_of(root, m->controllers);

				if (r && cgroup_path_below(m->path, r->path))
					continue;
				return ckpt_err(e, -EOPNOTSUPP,
						"pid %d (thread %d): cgroup %s:/%s is outside the root "
						"task's cgroup /%s: a preserved tree is restored under "
						"ckptd's cgroups (--cgroups=caller), which takes only "
						"the root's subtree",
						c->tasks[i].pid, th->tid,
						m->controllers[0] ? m->controllers : "v2", m->path,
						r ? r->path : "(none)");
			}
		}
	}
	return 0;
}
