/* SPDX-License-Identifier: MIT */
/*
 * rcall: one remote syscall in a task (lib/ptrace.h rsys_call) whose failure,
 * of the call itself or a -errno result, becomes an error naming the call.
 * rqueue/rflush: the same calls queued and made as one batch (rsys_batch).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "fault.h"
#include "restore.h"

#define RQ_WHAT 256

/* Grown as calls are queued, freed once they are made (rsys_batch makes
 * them in runs of a batch table's worth). */
struct rqueue {
	struct rsys_op *ops;
	char (*what)[RQ_WHAT]; /* "" for a call that may fail */
	size_t n, cap;
	struct rsys_write *w; /* rqueue_write: each buf a copy of ours */
	size_t nw, wcap;
	bool running; /* rflush_start started it */
};

static struct rqueue *rq_get(struct rtask *t, struct ckpt_error *e)
{
	if (!t->rq) {
		t->rq = calloc(1, sizeof(*t->rq));
		if (!t->rq)
			ckpt_err(e, -ENOMEM, "out of memory");
	}
	return t->rq;
}

int rcall(struct rtask *t, struct ckpt_error *e, long nr, const uint64_t a[6], long *ret,
	  const char *fmt, ...)
{
	char what[256];
	va_list ap;
	long res = 0;
	int r;

	/* in order: what was queued first */
	r = rflush(t, e);
	if (r < 0)
		return r;
	r = rsys_call(&t->rsys, nr, a[0], a[1], a[2], a[3], a[4], a[5], &res, e);
	if (r >= 0 && !(res < 0 && res > -4096)) {
		if (ret)
			*ret = res;
		return 0;
	}
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (r < 0)
		return ckpt_err_wrap(e, "pid %d: %s", t->pid, what);
	return ckpt_err_errno(e, (int)res, "pid %d: %s", t->pid, what);
}

/* Queue a call; fmt NULL: one that may fail. */
static int rq_add(struct rtask *t, struct ckpt_error *e, long nr, const uint64_t a[6],
		  const char *fmt, va_list *ap)
{
	struct rqueue *q = rq_get(t, e);

	if (!q)
		return -ENOMEM;
	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 32;
		struct rsys_op *ops = realloc(q->ops, cap * sizeof(*ops));
		char(*what)[RQ_WHAT];

		if (!ops)
			return ckpt_err(e, -ENOMEM, "out of memory");
		q->ops = ops;
		what = realloc(q->what, cap * sizeof(*what));
		if (!what)
			return ckpt_err(e, -ENOMEM, "out of memory");
		q->what = what;
		q->cap = cap;
	}
	q->ops[q->n] = (struct rsys_op){.nr = nr, .a = {a[0], a[1], a[2], a[3], a[4], a[5]}};
	q->what[q->n][0] = '\0';
	if (fmt)
		vsnprintf(q->what[q->n], RQ_WHAT, fmt, *ap);
	q->n++;
	return 0;
}

int rqueue(struct rtask *t, struct ckpt_error *e, long nr, const uint64_t a[6], const char *fmt,
	   ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = rq_add(t, e, nr, a, fmt, &ap);
	va_end(ap);
	return r;
}

int rqueue_may_fail(struct rtask *t, struct ckpt_error *e, long nr, const uint64_t a[6])
{
	return rq_add(t, e, nr, a, NULL, NULL);
}

int rqueue_write(struct rtask *t, struct ckpt_error *e, uint64_t addr, const void *buf, size_t len)
{
	struct rqueue *q = rq_get(t, e);
	void *copy;

	if (!q)
		return -ENOMEM;
	if (q->nw == q->wcap) {
		size_t cap = q->wcap ? 2 * q->wcap : 8;
		struct rsys_write *w = realloc(q->w, cap * sizeof(*w));

		if (!w)
			return ckpt_err(e, -ENOMEM, "out of memory");
		q->w = w;
		q->wcap = cap;
	}
	copy = malloc(len ? len : 1);
	if (!copy)
		return ckpt_err(e, -ENOMEM, "out of memory");
	memcpy(copy, buf, len);
	q->w[q->nw++] = (struct rsys_write){addr, copy, len};
	return 0;
}

/* a queued call the kernel refuses: the first mmap asks for 0 bytes */
static void rq_fault(struct rqueue *q)
{
	for (size_t i = 0; i < q->n && ckpt_fault("rqueue-einval"); i++)
		if (q->ops[i].nr == __NR_mmap) {
			q->ops[i].a[1] = 0;
			break;
		}
}

/* After the batch (r: how it went): the first queued call that failed, and the queue dropped. */
static int rq_done(struct rtask *t, struct ckpt_error *e, int r)
{
	struct rqueue *q = t->rq;

	if (r < 0) {
		r = ckpt_err_wrap(e, "pid %d: %zu remote calls (the first: %s)", t->pid, q->n,
				  q->what[0][0] ? q->what[0] : "one that may fail");
		rqueue_drop(t);
		return r;
	}
	for (size_t i = 0; i < q->n; i++) {
		long res = q->ops[i].ret;

		if (q->what[i][0] && res < 0 && res > -4096) {
			r = ckpt_err_errno(e, (int)res, "pid %d: %s", t->pid, q->what[i]);
			break;
		}
	}
	rqueue_drop(t);
	return r;
}

int rflush(struct rtask *t, struct ckpt_error *e)
{
	struct rqueue *q = t->rq;
	int r = 0;

	if (!q || (!q->n && !q->nw))
		return 0;
	if (q->running)
		return rq_done(t, e, rsys_batch_finish(&t->rsys, q->ops, q->n, e));
	if (!q->n) {
		/* memory only (a call made right away follows): written as it was queued */
		for (size_t i = 0; r >= 0 && i < q->nw; i++)
			r = remote_write(t->pid, q->w[i].addr, q->w[i].buf, q->w[i].len, e);
		rqueue_drop(t);
		return r;
	}
	rq_fault(q);
	return rq_done(t, e, rsys_batch_with(&t->rsys, q->ops, q->n, q->w, q->nw, e));
}

int rflush_start(struct rtask *t, struct ckpt_error *e)
{
	struct rqueue *q = t->rq;
	int r;

	if (!q || !q->n)
		return rflush(t, e);
	rq_fault(q);
	r = rsys_batch_start(&t->rsys, q->ops, q->n, q->w, q->nw, e);
	if (r == 0)
		return rflush(t, e);
	if (r < 0)
		return rq_done(t, e, r);
	q->running = true;
	return 1;
}

int rflush_stop(struct rtask *t, struct ckpt_error *e)
{
	return t->rq && t->rq->running ? rsys_batch_stop(&t->rsys, e) : 0;
}

int rqueue_end(struct rtask *t, struct ckpt_error *e, int r)
{
	if (r < 0) {
		rqueue_drop(t);
		return r;
	}
	return rflush(t, e);
}

void rqueue_drop(struct rtask *t)
{
	if (!t->rq)
		return;
	free(t->rq->ops);
	free(t->rq->what);
	for (size_t i = 0; i < t->rq->nw; i++)
		free((void *)t->rq->w[i].buf);
	free(t->rq->w);
	free(t->rq);
	t->rq = NULL;
}

/* ---- the batches of several tasks at once ----------------------------------------------- */

/*
 * Tasks sharing an fd table are one group's at most once: a call of one
 * (an mmap of a file's fd, say) must not meet the close of the same fd by
 * the other running at the same time.
 */
static size_t group_size(const struct restore_ctx *ctx, size_t base)
{
	size_t n = 0;

	while (n < RST_TASK_GROUP && base + n < ctx->ntasks) {
		const struct rtask *t = &ctx->tasks[base + n];

		for (size_t k = 0; k < n; k++)
			if (ctx->tasks[base + k].files_top == t->files_top)
				return n;
		n++;
	}
	return n;
}

/* One step for tasks base..base+n-1: every batch started, then each
 * stopped, then each finished; after a failure the batches started are
 * still stopped and finished, and no task after it is started. */
static int group_step(struct restore_ctx *ctx, size_t base, size_t n, task_step step)
{
	bool running[RST_TASK_GROUP] = {false};
	struct ckpt_error tmp = {0};
	size_t started = 0;
	int r = 0;

	for (size_t k = 0; r >= 0 && k < n; k++) {
		struct rtask *t = &ctx->tasks[base + k];

		r = step(ctx, t);
		/* the third task's batch fails, those around it run on */
		if (r >= 0 && k == 2 && ckpt_fault("rqueue-task-einval"))
			r = rqueue(t, &ctx->err, __NR_prctl, RARGS(PR_SET_PDEATHSIG, 1000),
				   "prctl(PR_SET_PDEATHSIG, 1000)");
		r = r < 0 ? rqueue_end(t, &ctx->err, r) : rflush_start(t, &ctx->err);
		running[k] = r > 0;
		started = k + 1;
	}
	for (size_t k = 0; k < started; k++) {
		int r2 =
		    running[k] ? rflush_stop(&ctx->tasks[base + k], r < 0 ? &tmp : &ctx->err) : 0;

		if (r2 < 0 && r >= 0)
			r = r2;
	}
	for (size_t k = 0; k < started; k++) {
		int r2 = running[k] ? rflush(&ctx->tasks[base + k], r < 0 ? &tmp : &ctx->err) : 0;

		if (r2 < 0 && r >= 0)
			r = r2;
	}
	return r < 0 ? r : 0;
}

int tasks_batch_each(struct restore_ctx *ctx, const task_step *steps, size_t nsteps,
		     task_step after)
{
	int r = 0;

	for (size_t base = 0, n; r >= 0 && base < ctx->ntasks; base += n) {
		n = group_size(ctx, base);
		r = restore_check_cancel(ctx);
		for (size_t s = 0; r >= 0 && s < nsteps; s++)
			r = group_step(ctx, base, n, steps[s]);
		for (size_t k = 0; r >= 0 && after && k < n; k++)
			r = after(ctx, &ctx->tasks[base + k]);
	}
	return r;
}
