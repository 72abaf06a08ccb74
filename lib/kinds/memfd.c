/* SPDX-License-Identifier: MIT */
/*
 * memfd fds. The fd is an open file description of a shmem inode that may
 * also be mapped, by this task or others: its content, name and seals are
 * saved ONCE, in the shared memory object of that inode (dump/dump_shmem.c,
 * a FILE_SHMEM entry of files.img that FileEntry.shmem_id names). This kind
 * saves what belongs to the description: flags and position (and the name
 * and seals again, for `ckptctl show`). The restorer creates the object
 * (memfd_create with the same name, content, seals last), then reopens it
 * through /proc/self/fd with the saved flags and seeks (restorer/shmem.c).
 */
#define LOG_PREFIX "kind memfd: "

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "file_util.h"
#include "log.h"

#define HUGETLBFS_MAGIC 0x958458f6
#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#endif

static bool memfd_matches(const struct fd_probe *p)
{
	return S_ISREG(p->st.st_mode) && !strncmp(p->link, "/memfd:", 7);
}

/* "memfd NAME", also for a memfd no kind could handle */
static bool memfd_describe(const struct fd_probe *p, char *buf, size_t len)
{
	size_t n;

	if (strncmp(p->link, "/memfd:", 7))
		return false;
	n = strlen(p->link + 7);
	if (fdk_link_is_deleted(p->link))
		n -= strlen(DELETED_SUFFIX);
	snprintf(buf, len, "memfd %.*s", (int)n, p->link + 7);
	return true;
}

static int memfd_dump(const struct fd_probe *p, FileEntry *fe, struct ckpt_error *e)
{
	struct statfs sfs;
	MemfdEntry *m;
	int r, seals;

	r = ckpt_fault_inject("memfd-dump", e);
	if (r < 0)
		return r;
	if (p->local_fd >= 0 && fstatfs(p->local_fd, &sfs) == 0 && sfs.f_type == HUGETLBFS_MAGIC)
		return ckpt_err(e, -EOPNOTSUPP,
				"pid %d fd %d: %s is a hugetlbfs memfd (huge "
				"pages); not supported",
				p->pid, p->fd, p->link);
	r = fdk_dump_common(p, FILE_TYPE__FILE_MEMFD, fe, e);
	if (r < 0)
		return r;
	if (fdk_link_is_deleted(fe->path))
		fe->path[strlen(fe->path) - strlen(DELETED_SUFFIX)] = '\0';
	m = calloc(1, sizeof(*m));
	if (!m)
		return ckpt_err(e, -ENOMEM, "out of memory");
	memfd_entry__init(m);
	fe->memfd = m;
	m->name = strdup(fe->path + 7);
	if (!m->name)
		return ckpt_err(e, -ENOMEM, "out of memory");
	seals = p->local_fd >= 0 ? fcntl(p->local_fd, F_GET_SEALS) : -1;
	if (seals >= 0) {
		m->has_seals = true;
		m->seals = (uint32_t)seals;
	}
	pr_debug("pid %d fd %d: memfd %s, seals %#x", p->pid, p->fd, m->name, m->seals);
	return 0;
}

static int memfd_verify(const FileEntry *fe, struct ckpt_error *e)
{
	int r;

	r = ckpt_fault_inject("memfd-verify", e);
	if (r < 0)
		return r;
	r = fdk_check_entry(fe, FILE_TYPE__FILE_MEMFD, e);
	if (r < 0)
		return r;
	if (!fe->has_shmem_id)
		return ckpt_err(e, -EINVAL,
				"files.img: entry %u: memfd %s has no shared memory object "
				"(field shmem_id)",
				fe->id, fe->path);
	return 0;
}

/* Never called: the restorer reopens the object (restorer/shmem.c). */
static int memfd_open(const FileEntry *fe, int fd_flags, int *ret_fd, struct ckpt_error *e)
{
	(void)fd_flags;
	(void)ret_fd;
	return ckpt_err(e, -EINVAL, "memfd %s: no shared memory object to reopen", fe->path);
}

const struct fd_kind fd_kind_memfd = {
    .name = "memfd",
    .in_flight = true,
    .matches = memfd_matches,
    .describe = memfd_describe,
    .entry_field = offsetof(FileEntry, memfd),
    .dump = memfd_dump,
    .verify = memfd_verify,
    .open = memfd_open,
};
