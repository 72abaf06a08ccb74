/* SPDX-License-Identifier: MIT */
/*
 * Cgroups: parsers of /proc/PID/cgroup and of the cgroup mounts of
 * /proc/self/mountinfo, and the checks of saved cgroup paths (cgroup.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "cleanup.h"
#include "proc.h"

void cgroup_list_free(struct cgroup_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].controllers);
		free(l->v[i].path);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int cgroup_parse_text(const char *text, struct cgroup_list *ret, struct ckpt_error *e)
{
	struct cgroup_list l = {0};
	size_t lineno = 0;

	for (const char *s = text; *s;) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		_cleanup_free_ char *line = strndup(s, len);
		char *c1, *c2, *end;
		struct cgroup_line *n;
		unsigned long id;

		lineno++;
		s += len + (nl ? 1 : 0);
		if (!line) {
			cgroup_list_free(&l);
			return ckpt_err(e, -ENOMEM, "out of memory");
		}
		if (!len)
			continue;
		c1 = strchr(line, ':');
		c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2 || c2[1] != '/') {
			cgroup_list_free(&l);
			return ckpt_err(e, -EINVAL, "line %zu: not 'id:controllers:/path'", lineno);
		}
		*c1 = *c2 = '\0';
		errno = 0;
		id = strtoul(line, &end, 10);
		if (errno || *end || end == line || id > UINT32_MAX) {
			cgroup_list_free(&l);
			return ckpt_err(e, -EINVAL, "line %zu: hierarchy id '%s'", lineno, line);
		}
		n = realloc(l.v, (l.n + 1) * sizeof(*n));
		if (!n) {
			cgroup_list_free(&l);
			return ckpt_err(e, -ENOMEM, "out of memory");
		}
		l.v = n;
		n = &l.v[l.n];
		n->id = (uint32_t)id;
		n->controllers = strdup(c1 + 1);
		/* "/" is the root: "" */
		n->path = strdup(c2 + 2);
		l.n++;
		if (!n->controllers || !n->path) {
			cgroup_list_free(&l);
			return ckpt_err(e, -ENOMEM, "out of memory");
		}
	}
	*ret = l;
	return 0;
}

int cgroup_parse_file(const char *path, struct cgroup_list *ret, struct ckpt_error *e)
{
	_cleanup_free_ char *text = NULL;
	int r = proc_read_file(path, &text, NULL, e);

	if (r < 0)
		return r;
	r = cgroup_parse_text(text, ret, e);
	return r < 0 ? ckpt_err_wrap(e, "%s", path) : 0;
}

/* Is token tok (len bytes) one of the comma-separated tokens of list? */
static bool has_token(const char *list, const char *tok, size_t len)
{
	for (const char *s = list; *s;) {
		size_t l = strcspn(s, ",");

		if (l == len && !strncmp(s, tok, len))
			return true;
		s += l + (s[l] ? 1 : 0);
	}
	return false;
}

/* Every token of a is in b. */
static bool tokens_in(const char *a, const char *b)
{
	for (const char *s = a; *s;) {
		size_t l = strcspn(s, ",");

		if (l && !has_token(b, s, l))
			return false;
		s += l + (s[l] ? 1 : 0);
	}
	return true;
}

bool cgroup_controllers_equal(const char *a, const char *b)
{
	return tokens_in(a, b) && tokens_in(b, a);
}

const struct cgroup_line *cgroup_list_find(const struct cgroup_list *l, const char *controllers)
{
	for (size_t i = 0; i < l->n; i++) {
		bool v2 = !l->v[i].controllers[0];

		if (v2 != !controllers[0])
			continue;
		/* a v2 line has id 0; a v1 line of hierarchy without controllers
		 * cannot exist (it has at least a name=) */
		if (v2 || cgroup_controllers_equal(l->v[i].controllers, controllers))
			return &l->v[i];
	}
	return NULL;
}

const char *cgroup_path_invalid(const char *path)
{
	size_t len = strlen(path);

	if (len > CGROUP_PATH_MAX)
		return "longer than 4095 bytes";
	if (!len)
		return NULL;
	if (path[0] == '/')
		return "not relative (starts with '/')";
	if (strchr(path, '\n'))
		return "holds a newline";
	for (const char *s = path;;) {
		size_t l = strcspn(s, "/");

		if (!l)
			return "has an empty component";
		if ((l == 1 && s[0] == '.') || (l == 2 && s[0] == '.' && s[1] == '.'))
			return "has a '.' or '..' component";
		if (!s[l])
			return NULL;
		s += l + 1;
	}
}

const char *cgroup_controllers_invalid(const char *c)
{
	size_t len = strlen(c);

	if (len > CGROUP_CONTROLLERS_MAX)
		return "longer than 255 bytes";
	if (!len)
		return NULL;
	for (const char *s = c;;) {
		size_t l = strcspn(s, ",");

		if (!l)
			return "has an empty controller name";
		for (size_t i = 0; i < l; i++) {
			char ch = s[i];

			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.' ||
			      ch == '='))
				return "has a character that is not in a controller name";
		}
		if (!s[l])
			return NULL;
		s += l + 1;
	}
}

bool cgroup_path_below(const char *path, const char *base)
{
	size_t bl = strlen(base);

	if (!bl)
		return true;
	return !strncmp(path, base, bl) && (path[bl] == '\0' || path[bl] == '/');
}

/* ---- mounts -------------------------------------------------------------------- */

void cgroup_mounts_free(struct cgroup_mounts *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].controllers);
		free(m->v[i].root);
		free(m->v[i].dir);
	}
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

/* "\040" escapes of mountinfo */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++, d++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
			*d = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*d = *s;
		}
	}
	*d = '\0';
}

/* Is tok (len bytes) a controller name of /proc/cgroups? */
static bool is_controller(const char *proc_cgroups, const char *tok, size_t len)
{
	for (const char *s = proc_cgroups; *s;) {
		size_t l = strcspn(s, "\t \n");

		if (s[0] != '#' && l == len && !strncmp(s, tok, len))
			return true;
		s = strchr(s, '\n');
		if (!s)
			break;
		s++;
	}
	return false;
}

/* The controller options of a v1 mount's super options, joined by ','. */
static char *controller_opts(const char *superopts, const char *proc_cgroups)
{
	size_t cap = strlen(superopts) + 1, n = 0;
	char *out = calloc(1, cap);

	if (!out)
		return NULL;
	for (const char *s = superopts; *s;) {
		size_t l = strcspn(s, ",");

		if ((l > 5 && !strncmp(s, "name=", 5)) || is_controller(proc_cgroups, s, l)) {
			if (n)
				out[n++] = ',';
			memcpy(out + n, s, l);
			n += l;
		}
		s += l + (s[l] ? 1 : 0);
	}
	return out;
}

int cgroup_mounts_parse_text(const char *mountinfo, const char *proc_cgroups,
			     struct cgroup_mounts *ret, struct ckpt_error *e)
{
	struct cgroup_mounts m = {0};

	for (const char *s = mountinfo; *s;) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		_cleanup_free_ char *line = strndup(s, len);
		char *f[6] = {0}, *sep, *save = NULL, *fstype, *superopts;
		struct cgroup_mount *n;
		size_t nf = 0;
		bool v2;

		s += len + (nl ? 1 : 0);
		if (!line) {
			cgroup_mounts_free(&m);
			return ckpt_err(e, -ENOMEM, "out of memory");
		}
		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		for (char *t = strtok_r(line, " ", &save); t && nf < 6; t = strtok_r(NULL, " ", &save))
			f[nf++] = t;
		save = NULL;
		fstype = strtok_r(sep + 3, " ", &save);
		if (fstype)
			strtok_r(NULL, " ", &save); /* source */
		superopts = fstype ? strtok_r(NULL, " ", &save) : NULL;
		if (nf < 5 || !fstype || !superopts)
			continue;
		v2 = !strcmp(fstype, "cgroup2");
		if (!v2 && strcmp(fstype, "cgroup"))
			continue;
		unescape(f[3]);
		unescape(f[4]);
		/* a root outside our cgroup namespace ("/.."): nothing reachable by name */
		if (f[3][0] != '/' || cgroup_path_invalid(f[3] + 1))
			continue;
		n = realloc(m.v, (m.n + 1) * sizeof(*n));
		if (!n) {
			cgroup_mounts_free(&m);
			return ckpt_err(e, -ENOMEM, "out of memory");
		}
		m.v = n;
		n = &m.v[m.n++];
		n->v2 = v2;
		n->controllers = v2 ? strdup("") : controller_opts(superopts, proc_cgroups);
		n->root = strdup(f[3] + 1);
		n->dir = strdup(f[4]);
		if (!n->controllers || !n->root || !n->dir) {
			cgroup_mounts_free(&m);
			return ckpt_err(e, -ENOMEM, "out of memory");
		}
		/* a v1 mount of nothing we can name */
		if (!v2 && !n->controllers[0]) {
			free(n->controllers);
			free(n->root);
			free(n->dir);
			m.n--;
		}
	}
	*ret = m;
	return 0;
}

int cgroup_mounts_read(struct cgroup_mounts *ret, struct ckpt_error *e)
{
	_cleanup_free_ char *mi = NULL, *pc = NULL;
	int r = proc_read_file("/proc/self/mountinfo", &mi, NULL, e);

	if (r >= 0)
		r = proc_read_file("/proc/cgroups", &pc, NULL, e);
	if (r < 0)
		return r;
	return cgroup_mounts_parse_text(mi, pc, ret, e);
}

static bool mount_is(const struct cgroup_mount *mt, const char *controllers)
{
	if (!controllers[0])
		return mt->v2;
	return !mt->v2 && cgroup_controllers_equal(mt->controllers, controllers);
}

bool cgroup_mounts_have(const struct cgroup_mounts *m, const char *controllers)
{
	for (size_t i = 0; i < m->n; i++)
		if (mount_is(&m->v[i], controllers))
			return true;
	return false;
}

int cgroup_dir(const struct cgroup_mounts *m, const char *controllers, const char *path,
	       char **ret, struct ckpt_error *e)
{
	const char *name = controllers[0] ? controllers : "v2";
	bool any = false;

	for (size_t i = 0; i < m->n; i++) {
		const struct cgroup_mount *mt = &m->v[i];
		const char *rel;

		if (!mount_is(mt, controllers))
			continue;
		any = true;
		if (!cgroup_path_below(path, mt->root))
			continue;
		rel = path + strlen(mt->root);
		while (*rel == '/')
			rel++;
		if (asprintf(ret, "%s%s%s", mt->dir, *rel ? "/" : "", rel) < 0)
			return ckpt_err(e, -ENOMEM, "out of memory");
		return 0;
	}
	if (!any)
		return ckpt_err(e, -ENOENT,
				"cgroup hierarchy %s is not mounted here (/proc/self/mountinfo)",
				name);
	return ckpt_err(e, -ENOENT,
			"cgroup %s:/%s is outside every mount of its hierarchy here "
			"(/proc/self/mountinfo)",
			name, path);
}
