/* SPDX-License-Identifier: MIT */
/*
 * Syscall user dispatch (prctl PR_SET_SYSCALL_USER_DISPATCH): a thread
 * with it on gets SIGSYS for every system call made outside its allowed
 * range while the byte at its selector says "block", as an emulator such
 * as Wine sets it while foreign code runs. The dump's remote system calls
 * run in the thread's own context from code outside that range, so with
 * the selector on "block" the first of them would raise SIGSYS and kill
 * the program (a failed dump must leave it untouched).
 *
 * So once a task is frozen (seize.c) each thread's configuration is read
 * (PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG) and, where on, switched off
 * for the dump; unseize_tree puts it back before the thread is let go,
 * whether the dump succeeded, failed, or left the tree running. The
 * configuration is saved as ThreadCore.sud; the restorer sets it again
 * after its last remote call in the thread. The selector byte itself is
 * memory and comes back with it.
 */
#define LOG_PREFIX "dump sud: "

#include <errno.h>
#include <stdlib.h>

#include "dump_internal.h"
#include "fault.h"
#include "log.h"

static int suspend_one(struct dump_task *t, pid_t tid, struct ckpt_error *e)
{
	static const struct ckpt_sud off = {0};
	struct ckpt_sud cfg;
	struct dump_sud *n;
	int r = ptrace_get_sud(tid, &cfg, e);

	if (r < 0 || cfg.mode == 0)
		return r;
	n = realloc(t->sud, (t->nsud + 1) * sizeof(*n));
	if (!n)
		return ckpt_err(e, -ENOMEM, "out of memory");
	t->sud = n;
	/* listed before the switch: what is listed is put back whatever follows */
	t->sud[t->nsud++] = (struct dump_sud){tid, cfg};
	r = ptrace_set_sud(tid, &off, e);
	if (r >= 0 && ckpt_fault("sud-suspend-fail"))
		r = ckpt_err(e, -EIO,
			     "thread %d: injected failure after its dispatch was suspended", tid);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: suspending the syscall user dispatch of thread %d",
				     t->pid, tid);
	return 0;
}

int dump_sud_suspend(struct dump_task *t, struct ckpt_error *e)
{
	int r = suspend_one(t, t->pid, e);

	for (size_t i = 0; r >= 0 && i < t->nthreads; i++)
		r = suspend_one(t, t->threads[i], e);
	return r;
}

int dump_sud_resume(struct dump_task *t, struct ckpt_error *e)
{
	int ret = 0;

	for (size_t i = 0; i < t->nsud; i++) {
		struct ckpt_error tmp = {0};
		int r = ptrace_set_sud(t->sud[i].tid, &t->sud[i].cfg, &tmp);

		if (r < 0 && ret == 0) {
			ret = r;
			if (e)
				*e = tmp;
		}
	}
	free(t->sud);
	t->sud = NULL;
	t->nsud = 0;
	return ret;
}

int dump_thread_sud(const struct dump_task *t, ThreadCore *tc, struct ckpt_error *e)
{
	for (size_t i = 0; i < t->nsud; i++) {
		const struct ckpt_sud *c = &t->sud[i].cfg;
		SyscallUserDispatch *s;

		if (t->sud[i].tid != tc->tid)
			continue;
		s = calloc(1, sizeof(*s));
		if (!s)
			return ckpt_err(e, -ENOMEM, "out of memory");
		syscall_user_dispatch__init(s);
		s->mode = c->mode;
		s->selector = c->selector;
		s->offset = c->offset;
		s->len = c->len;
		tc->sud = s;
		return 0;
	}
	return 0;
}
