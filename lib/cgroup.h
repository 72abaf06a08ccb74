/* SPDX-License-Identifier: MIT */
/*
 * Cgroups: /proc/PID/task/TID/cgroup lines, the cgroup mounts of
 * /proc/self/mountinfo, and the checks a saved cgroup path must pass.
 *
 * A hierarchy is named by its controllers as /proc/PID/cgroup lists them
 * ("cpu,cpuacct", "name=systemd"; "" for the v2 hierarchy, the "0::" line),
 * never by its id: ids are given in mount order and differ across boots.
 * Paths are relative to the hierarchy's root as the reader's cgroup
 * namespace shows it, without the leading '/': "" is the root, "a/b".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Longest saved cgroup path (the kernel's PATH_MAX). */
#define CGROUP_PATH_MAX 4095
/* Longest controllers field ("cpu,cpuacct", "name=systemd"). */
#define CGROUP_CONTROLLERS_MAX 255

struct cgroup_line {
	uint32_t id;	   /* hierarchy id (0: v2) */
	char *controllers; /* "" for v2 */
	char *path;	   /* without the leading '/' */
};

struct cgroup_list {
	struct cgroup_line *v;
	size_t n;
};

/* Parse /proc/PID/cgroup text. A path the reader's namespace cannot name
 * ("/../x": the task's cgroup is outside our cgroup namespace's root) is
 * kept as given, and cgroup_path_invalid refuses it. */
int cgroup_parse_text(const char *text, struct cgroup_list *ret, struct ckpt_error *e);
/* Read and parse a /proc/.../cgroup file. */
int cgroup_parse_file(const char *path, struct cgroup_list *ret, struct ckpt_error *e);
void cgroup_list_free(struct cgroup_list *l);
/* The line of hierarchy `controllers` (as sets: "cpuacct,cpu" == "cpu,cpuacct"), or NULL. */
const struct cgroup_line *cgroup_list_find(const struct cgroup_list *l, const char *controllers);

/* NULL when path is a normalized relative cgroup path ("" or "a/b": no
 * leading or trailing '/', no empty, "." or ".." component, no newline, at
 * most CGROUP_PATH_MAX bytes), else why not. */
const char *cgroup_path_invalid(const char *path);
/* NULL when c is "" or comma-separated controller names / "name=X", else why not. */
const char *cgroup_controllers_invalid(const char *c);
/* The same controllers, in any order. */
bool cgroup_controllers_equal(const char *a, const char *b);
/* path is base or below it (base "" is the root: everything is below). */
bool cgroup_path_below(const char *path, const char *base);

/* A cgroup file system mounted here. */
struct cgroup_mount {
	bool v2;
	char *controllers; /* v1: the mount's controller options joined by ','; "" for v2 */
	char *root;	   /* the hierarchy's directory mounted, without leading '/' */
	char *dir;	   /* mount point */
};

struct cgroup_mounts {
	struct cgroup_mount *v;
	size_t n;
};

/* From /proc/self/mountinfo text and /proc/cgroups text (the controller
 * names, to tell a mount's controller options from its other options). */
int cgroup_mounts_parse_text(const char *mountinfo, const char *proc_cgroups,
			     struct cgroup_mounts *ret, struct ckpt_error *e);
int cgroup_mounts_read(struct cgroup_mounts *ret, struct ckpt_error *e);
void cgroup_mounts_free(struct cgroup_mounts *m);
/* Is hierarchy `controllers` mounted here at all? */
bool cgroup_mounts_have(const struct cgroup_mounts *m, const char *controllers);
/* The directory of cgroup `path` of hierarchy `controllers` (malloc'ed),
 * through the first mount of that hierarchy whose root holds it; -ENOENT
 * with the error saying so when none does. */
int cgroup_dir(const struct cgroup_mounts *m, const char *controllers, const char *path,
	       char **ret, struct ckpt_error *e);
