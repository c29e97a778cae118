// SPDX-License-Identifier: MIT
/*
 * sync.c - the WP_SYNC dirty backend: the range is write-protected with
 * userfaultfd (UFFDIO_REGISTER_MODE_WP, without WP_ASYNC), every first write
 * to a page raises a fault that the fault engine's reader threads hand to
 * sync_wp_fault(), which records the page and un-protects it (waking the
 * writer). Collect re-protects the recorded pages. One fault round trip per
 * page per epoch: the fallback for kernels without WP_ASYNC (5.7 .. 6.6).
 */
#include <stdlib.h>

#include "compat.h"
#include "dirty/dirty.h"
#include "region/engine.h"

struct sync_log {
	struct bitmap written; /* pages written or installed since collect */
	struct bitmap harvest; /* collect's scratch */
};

/* UFFDIO_WRITEPROTECT, retried while the mm is changing (-EAGAIN). */
static int writeprotect(struct gmem_region *r, uint64_t pgoff, uint64_t nr,
			bool protect)
{
	int ret;

	do {
		ret = uffd_writeprotect(r, pgoff << r->page_shift,
					nr << r->page_shift, protect);
	} while (ret == -EAGAIN);
	return ret;
}

/*
 * Fault engine thread. The page is recorded before it is un-protected, and
 * both happen under wp_lock held for reading, while collect holds it for
 * writing: so collect never takes a page whose un-protect is still to come
 * (which would leave it writable and unrecorded for the next epoch).
 */
static void sync_wp_fault(struct gmem_region *r, uint64_t pgoff)
{
	struct sync_log *s = r->dirty->priv;

	pthread_rwlock_rdlock(&r->wp_lock);
	bitmap_set(&s->written, pgoff);
	/* On failure the writer sleeps on until stop un-protects the range;
	 * the page is recorded either way. */
	writeprotect(r, pgoff, 1, false);
	pthread_rwlock_unlock(&r->wp_lock);
}

/* install_commit(), wp_lock held for reading: UFFDIO_COPY/CONTINUE mapped
 * the pages writable, so they count as written and collect protects them. */
static void sync_installed(struct gmem_region *r, uint64_t pgoff, uint64_t nr)
{
	struct dirty_log *d = r->dirty;
	struct sync_log *s = d->priv;
	uint64_t lo = pgoff > d->pgoff ? pgoff : d->pgoff;
	uint64_t hi = pgoff + nr < d->pgoff + d->nr_pages ?
			      pgoff + nr : d->pgoff + d->nr_pages;

	if (lo < hi)
		bitmap_set_range(&s->written, lo, hi - lo);
}

static void sync_free(struct sync_log *s)
{
	bitmap_free(&s->written);
	bitmap_free(&s->harvest);
	free(s);
}

static int sync_start(struct gmem_region *r, struct dirty_log *d)
{
	struct sync_log *s;
	int ret;

	/* With WP_ASYNC on the uffd the kernel resolves every WP fault. */
	if (r->uffd_features & UFFD_FEATURE_WP_ASYNC)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s || bitmap_init(&s->written, r->nr_pages, false) ||
	    bitmap_init(&s->harvest, r->nr_pages, false)) {
		if (s)
			sync_free(s);
		return -ENOMEM;
	}
	d->priv = s;
	/* Hooks first: a WP fault read before they are visible would be
	 * dropped and its writer never woken. */
	pthread_rwlock_wrlock(&r->wp_lock);
	r->wp_fault = sync_wp_fault;
	r->dirty_installed = sync_installed;
	ret = dirty_wp_arm(r, d);
	if (ret < 0)
		r->dirty_installed = NULL;
	pthread_rwlock_unlock(&r->wp_lock);
	if (ret == 0)
		ret = fault_engine_get(r, ENGINE_USER_WP);
	if (ret < 0) {
		if (r->dirty_installed) {
			pthread_rwlock_wrlock(&r->wp_lock);
			dirty_wp_disarm(r, d);
			r->dirty_installed = NULL;
			pthread_rwlock_unlock(&r->wp_lock);
		}
		fault_engine_put(r, ENGINE_USER_WP);
		r->wp_fault = NULL;
		sync_free(s);
		d->priv = NULL;
	}
	return ret;
}

/* Moves the recorded pages to @s->harvest, word by word. */
static void harvest(struct sync_log *s, uint64_t first, uint64_t end)
{
	for (uint64_t w = first / 64; w < (end + 63) / 64; w++)
		s->harvest.words[w] = __atomic_exchange_n(&s->written.words[w],
							  0, __ATOMIC_ACQ_REL);
}

/*
 * Under wp_lock for writing no handler is between "record" and
 * "un-protect": every recorded page is writable and every other page of the
 * range is still protected. Re-protecting the recorded ones re-arms the
 * range. A run that cannot be re-protected is recorded again, so it is
 * reported until it can be.
 */
static int sync_collect(struct gmem_region *r, struct dirty_log *d,
			struct bitmap *out)
{
	struct sync_log *s = d->priv;
	uint64_t end = d->pgoff + d->nr_pages, p, q;
	int ret = 0, err;

	pthread_rwlock_wrlock(&r->wp_lock);
	harvest(s, d->pgoff, end);
	for (p = bitmap_next_set(&s->harvest, d->pgoff); p < end;
	     p = bitmap_next_set(&s->harvest, q)) {
		q = bitmap_next_clear(&s->harvest, p);
		q = q < end ? q : end;
		bitmap_clear_range(&s->harvest, p, q - p);
		bitmap_set_range(out, p, q - p);
		err = writeprotect(r, p, q - p, true);
		if (err < 0) {
			bitmap_set_range(&s->written, p, q - p);
			ret = ret ? ret : err;
		}
	}
	pthread_rwlock_unlock(&r->wp_lock);
	return ret;
}

static int sync_stop(struct gmem_region *r, struct dirty_log *d)
{
	int ret;

	pthread_rwlock_wrlock(&r->wp_lock);
	ret = dirty_wp_disarm(r, d);
	r->dirty_installed = NULL;
	pthread_rwlock_unlock(&r->wp_lock);
	/* Readers that still hold a WP message find no handler: their
	 * writers were woken by the un-protect. put() joins every reader
	 * before the log's memory goes. */
	r->wp_fault = NULL;
	fault_engine_put(r, ENGINE_USER_WP);
	sync_free(d->priv);
	d->priv = NULL;
	return ret;
}

const struct dirty_ops dirty_sync_ops = {
	.backend = GMEM_DIRTY_WP_SYNC,
	.start = sync_start,
	.collect = sync_collect,
	.stop = sync_stop,
};
