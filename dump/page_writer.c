/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "pages: "

#include <errno.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "page_writer.h"

static void *writer_main(void *arg)
{
	struct page_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->job && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!w->job)
			break;
		const void *buf = w->job;
		size_t len = w->job_len;

		pthread_mutex_unlock(&w->lock);
		double t0 = ckpt_monotonic_seconds();
		struct ckpt_error e = {0};
		int r = img_write_pages(w->img, buf, len, &e);

		pthread_mutex_lock(&w->lock);
		w->t_write += ckpt_monotonic_seconds() - t0;
		if (r < 0 && !w->err) {
			w->err = r;
			w->e = e;
		}
		w->job = NULL;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int page_writer_start(struct page_writer *w, struct img *img, struct ckpt_error *e)
{
	int r;

	memset(w, 0, sizeof(*w));
	w->img = img;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	r = pthread_create(&w->thread, NULL, writer_main, w);
	if (r)
		return ckpt_err_errno(e, -r, "starting the page writer thread");
	w->started = true;
	return 0;
}

/* Called with the lock held: wait for the thread to be idle. */
static int wait_idle(struct page_writer *w, struct ckpt_error *e)
{
	while (w->job)
		pthread_cond_wait(&w->cond, &w->lock);
	if (w->err && e) {
		*e = w->e;
		return w->err;
	}
	return w->err;
}

int page_writer_submit(struct page_writer *w, const void *buf, size_t len, struct ckpt_error *e)
{
	int r;

	if (!w->started)
		return img_write_pages(w->img, buf, len, e);
	pthread_mutex_lock(&w->lock);
	r = wait_idle(w, e);
	if (r >= 0) {
		w->job = buf;
		w->job_len = len;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return r;
}

int page_writer_drain(struct page_writer *w, struct ckpt_error *e)
{
	int r;

	if (!w->started)
		return 0;
	pthread_mutex_lock(&w->lock);
	r = wait_idle(w, e);
	pthread_mutex_unlock(&w->lock);
	return r;
}

int page_writer_stop(struct page_writer *w, struct ckpt_error *e)
{
	int r;

	if (!w->started)
		return 0;
	pthread_mutex_lock(&w->lock);
	r = wait_idle(w, e);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	w->started = false;
	pr_debug("%.3f s writing page data", w->t_write);
	return r;
}
