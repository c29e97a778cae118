// SPDX-License-Identifier: MIT
/*
 * dirty.c - the dirty log's public API: choosing a backend (WP_ASYNC,
 * WP_SYNC, SOFT_DIRTY), starting and stopping it on a region and its peers
 * (other processes' mappings of the same memfd), and collect, which merges
 * what every backend harvested into one bitmap and a list of runs per epoch.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compat.h"
#include "dirty/dirty.h"

static const struct dirty_ops *const backend_ops[] = {
	[GMEM_DIRTY_WP_ASYNC] = &dirty_async_ops,
	[GMEM_DIRTY_WP_SYNC] = &dirty_sync_ops,
	[GMEM_DIRTY_SOFT_DIRTY] = &dirty_softdirty_ops,
};

static const char *const backend_names[] = {
	[GMEM_DIRTY_AUTO] = "auto",
	[GMEM_DIRTY_WP_ASYNC] = "wp-async",
	[GMEM_DIRTY_WP_SYNC] = "wp-sync",
	[GMEM_DIRTY_SOFT_DIRTY] = "soft-dirty",
};

const char *gmem_dirty_backend_name(enum gmem_dirty_backend b)
{
	return (unsigned int)b < ARRAY_SIZE(backend_names) ? backend_names[b]
							   : "unknown";
}

/*
 * What AUTO means for @r: the backend its userfaultfd was set up for at
 * creation. A region asked for AUTO on a kernel without WP_ASYNC falls back
 * to sync WP faults, then to soft-dirty.
 */
static enum gmem_dirty_backend region_backend(const struct gmem_region *r)
{
	uint64_t feat = 0;

	if (r->uffd_features & UFFD_FEATURE_WP_ASYNC)
		return GMEM_DIRTY_WP_ASYNC;
	if (r->dirty_backend != GMEM_DIRTY_AUTO)
		return r->dirty_backend;
	if (r->uffd_features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)
		return GMEM_DIRTY_WP_SYNC;
	if (gmem_features(&feat) == 0 && feat & GMEM_FEAT_SOFT_DIRTY)
		return GMEM_DIRTY_SOFT_DIRTY;
	return GMEM_DIRTY_WP_SYNC; /* start says -EOPNOTSUPP */
}

/* The backend @want resolves to on @r, or -EINVAL for one its userfaultfd
 * was not set up for (soft-dirty needs no userfaultfd: any region). */
static int backend_pick(const struct gmem_region *r, uint32_t want,
			const struct dirty_ops **ops)
{
	enum gmem_dirty_backend own = region_backend(r);

	if (want == GMEM_DIRTY_AUTO)
		want = own;
	if (want >= ARRAY_SIZE(backend_ops))
		return -EINVAL;
	if (want != own && want != GMEM_DIRTY_SOFT_DIRTY)
		return -EINVAL;
	*ops = backend_ops[want];
	return 0;
}

static void log_free(struct gmem_region *r)
{
	free(r->dirty->peers);
	bitmap_free(&r->dirty->pending);
	free(r->dirty);
	r->dirty = NULL;
	r->dirty_release = NULL;
}

/* gmem_region_destroy() hook. A leader stops tracking and unlinks its
 * peers; a peer unlinks itself from its leader. */
static void dirty_release(struct gmem_region *r)
{
	struct gmem_region *leader = r->dirty->leader;

	if (leader) {
		gmem_dirty_remove_peer(leader, r);
		return;
	}
	gmem_dirty_stop(r);
	pthread_mutex_lock(&r->lock);
	while (r->dirty->nr_peers)
		log_free(r->dirty->peers[--r->dirty->nr_peers]);
	log_free(r);
	pthread_mutex_unlock(&r->lock);
}

static int log_get(struct gmem_region *r)
{
	if (r->dirty)
		return 0;
	r->dirty = calloc(1, sizeof(*r->dirty));
	if (!r->dirty)
		return -ENOMEM;
	r->dirty_release = dirty_release;
	return 0;
}

/* Starts @ops on one region (the leader's lock held; a peer's taken). */
static int track_start(struct gmem_region *r, const struct dirty_ops *ops,
		       uint64_t pgoff, uint64_t nr)
{
	struct dirty_log *d = r->dirty;
	int ret;

	d->pgoff = pgoff;
	d->nr_pages = nr;
	ret = ops->start(r, d);
	if (ret == 0)
		d->ops = ops;
	return ret;
}

static int track_stop(struct gmem_region *r)
{
	struct dirty_log *d = r->dirty;
	int ret = 0;

	if (d->ops)
		ret = d->ops->stop(r, d);
	d->ops = NULL;
	return ret;
}

static int peer_start(struct gmem_region *peer, uint32_t want, uint64_t pgoff,
		      uint64_t nr)
{
	const struct dirty_ops *ops;
	int ret;

	pthread_mutex_lock(&peer->lock);
	ret = backend_pick(peer, want, &ops);
	if (ret == 0)
		ret = track_start(peer, ops, pgoff, nr);
	pthread_mutex_unlock(&peer->lock);
	return ret;
}

static int peer_stop(struct gmem_region *peer)
{
	int ret;

	pthread_mutex_lock(&peer->lock);
	ret = track_stop(peer);
	pthread_mutex_unlock(&peer->lock);
	return ret;
}

/* Stops the leader's peers and itself; returns the first error. */
static int stop_all(struct gmem_region *r)
{
	struct dirty_log *d = r->dirty;
	int ret = 0, err;

	for (unsigned int i = 0; i < d->nr_peers; i++) {
		err = peer_stop(d->peers[i]);
		ret = ret ? ret : err;
	}
	err = track_stop(r);
	bitmap_free(&d->pending);
	return ret ? ret : err;
}

static int params_range(const struct gmem_region *r,
			const struct gmem_dirty_params *p, uint64_t *pgoff,
			uint64_t *nr)
{
	*pgoff = 0;
	*nr = r->nr_pages;
	if (!p)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(p->resv); i++)
		if (p->resv[i])
			return -EINVAL;
	if (p->flags || p->backend > GMEM_DIRTY_SOFT_DIRTY)
		return -EINVAL;
	*pgoff = p->pgoff;
	*nr = p->nr_pages ? p->nr_pages : r->nr_pages - p->pgoff;
	return p->pgoff < r->nr_pages && range_ok(r, *pgoff, *nr) ? 0 : -EINVAL;
}

static int start_all(struct gmem_region *r, uint32_t want, uint64_t pgoff,
		     uint64_t nr)
{
	struct dirty_log *d = r->dirty;
	const struct dirty_ops *ops;
	int ret = backend_pick(r, want, &ops);

	if (ret < 0)
		return ret;
	if (bitmap_init(&d->pending, r->nr_pages, false))
		return -ENOMEM;
	d->epoch = 0;
	ret = track_start(r, ops, pgoff, nr);
	for (unsigned int i = 0; ret == 0 && i < d->nr_peers; i++)
		ret = peer_start(d->peers[i], want, pgoff, nr);
	if (ret < 0)
		stop_all(r);
	return ret;
}

int gmem_dirty_start(struct gmem_region *r, const struct gmem_dirty_params *p)
{
	uint64_t pgoff, nr;
	int ret;

	if (!r)
		return -EINVAL;
	ret = params_range(r, p, &pgoff, &nr);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&r->lock);
	ret = log_get(r);
	if (ret == 0 && (r->dirty->ops || r->dirty->leader))
		ret = -EBUSY;
	if (ret == 0)
		ret = start_all(r, p ? p->backend : GMEM_DIRTY_AUTO, pgoff, nr);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int gmem_dirty_stop(struct gmem_region *r)
{
	int ret;

	if (!r)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	if (!r->dirty || !r->dirty->ops)
		ret = -EINVAL;
	else if (r->dirty->leader)
		ret = -EBUSY;
	else
		ret = stop_all(r);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int gmem_dirty_backend(const struct gmem_region *r)
{
	const struct dirty_log *d = r ? r->dirty : NULL;

	return d && d->ops ? (int)d->ops->backend : -EINVAL;
}

uint64_t gmem_dirty_bitmap_words(const struct gmem_region *r)
{
	return (r->nr_pages + 63) / 64;
}

/*
 * Moves the pending pages to @res: all of them into the bitmap when there
 * is one, and run by run into @res->runs while they last. Without a bitmap,
 * pages past the last run that fits stay pending for the next collect.
 */
static uint64_t report(struct gmem_region *r, struct dirty_log *d,
		       struct gmem_dirty_result *res)
{
	struct bitmap out = { .nbits = r->nr_pages, .words = res->bitmap };
	uint64_t end = d->pgoff + d->nr_pages, p, q, n = 0;

	if (res->bitmap)
		memset(res->bitmap, 0, gmem_dirty_bitmap_words(r) * 8);
	for (p = bitmap_next_set(&d->pending, d->pgoff); p < end;
	     p = bitmap_next_set(&d->pending, q)) {
		q = bitmap_next_clear(&d->pending, p);
		q = q < end ? q : end;
		if (res->runs && res->nr_runs < res->max_runs) {
			res->runs[res->nr_runs].pgoff = p;
			res->runs[res->nr_runs++].nr_pages = q - p;
		} else if (res->runs) {
			res->flags |= GMEM_DIRTY_RUNS_FULL;
			if (!res->bitmap)
				break;
		}
		if (res->bitmap)
			bitmap_set_range(&out, p, q - p);
		bitmap_clear_range(&d->pending, p, q - p);
		n += q - p;
	}
	return n;
}

static int result_check(const struct gmem_dirty_result *res)
{
	for (size_t i = 0; i < ARRAY_SIZE(res->resv); i++)
		if (res->resv[i])
			return -EINVAL;
	if (res->resv0 || (!res->bitmap && !res->runs) ||
	    (res->runs && !res->max_runs))
		return -EINVAL;
	return 0;
}

/* Harvests the leader and its peers into @d->pending. A backend error
 * leaves what was harvested pending: reported by the next collect. */
static int harvest_all(struct gmem_region *r, struct dirty_log *d)
{
	int ret = d->ops->collect(r, d, &d->pending);

	for (unsigned int i = 0; ret == 0 && i < d->nr_peers; i++) {
		struct gmem_region *peer = d->peers[i];

		pthread_mutex_lock(&peer->lock);
		ret = peer->dirty->ops->collect(peer, peer->dirty, &d->pending);
		pthread_mutex_unlock(&peer->lock);
	}
	return ret;
}

int64_t gmem_dirty_collect(struct gmem_region *r, struct gmem_dirty_result *res)
{
	struct dirty_log *d;
	uint64_t t0;
	int64_t ret;

	if (!r || !res || result_check(res))
		return -EINVAL;
	res->nr_runs = res->nr_pages = res->scan_ns = 0;
	res->flags = 0;
	pthread_mutex_lock(&r->lock);
	d = r->dirty;
	if (!d || !d->ops) {
		ret = -EINVAL;
		goto out;
	}
	if (d->leader) {
		ret = -EBUSY;
		goto out;
	}
	t0 = now_ns();
	ret = harvest_all(r, d);
	res->scan_ns = now_ns() - t0;
	if (ret < 0)
		goto out;
	res->epoch = ++d->epoch;
	ret = res->nr_pages = report(r, d, res);
out:
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* Same pages: the same file at the same offset, the same geometry. */
static bool same_memory(const struct gmem_region *a,
			const struct gmem_region *b)
{
	struct stat sa, sb;

	if (!a->alias || !b->alias || a->nr_pages != b->nr_pages ||
	    a->page_size != b->page_size || a->fd_off != b->fd_off)
		return false;
	if (fstat(a->fd, &sa) || fstat(b->fd, &sb))
		return false;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int peer_link(struct gmem_region *r, struct gmem_region *peer)
{
	struct dirty_log *d = r->dirty;
	struct gmem_region **v;

	v = realloc(d->peers, (d->nr_peers + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	d->peers = v;
	pthread_mutex_lock(&peer->lock);
	if (peer->dirty && (peer->dirty->ops || peer->dirty->leader ||
			    peer->dirty->nr_peers)) {
		pthread_mutex_unlock(&peer->lock);
		return -EBUSY; /* tracking, a leader or someone's peer */
	}
	if (log_get(peer) < 0) {
		pthread_mutex_unlock(&peer->lock);
		return -ENOMEM;
	}
	peer->dirty->leader = r;
	d->peers[d->nr_peers++] = peer;
	pthread_mutex_unlock(&peer->lock);
	return 0;
}

int gmem_dirty_add_peer(struct gmem_region *r, struct gmem_region *peer)
{
	int ret;

	if (!r || !peer || r == peer || !same_memory(r, peer))
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	ret = log_get(r);
	if (ret == 0 && (r->dirty->ops || r->dirty->leader))
		ret = -EBUSY;
	if (ret == 0)
		ret = peer_link(r, peer);
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int gmem_dirty_remove_peer(struct gmem_region *r, struct gmem_region *peer)
{
	struct dirty_log *d;
	int ret = -ENOENT;

	if (!r || !peer)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	d = r->dirty;
	for (unsigned int i = 0; d && i < d->nr_peers; i++) {
		if (d->peers[i] != peer)
			continue;
		ret = peer_stop(peer);
		pthread_mutex_lock(&peer->lock);
		log_free(peer);
		pthread_mutex_unlock(&peer->lock);
		d->peers[i] = d->peers[--d->nr_peers];
		break;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

uint32_t gmem_dirty_granularity(const struct gmem_region *r)
{
	enum gmem_dirty_backend b = r->dirty && r->dirty->ops ?
					    r->dirty->ops->backend :
					    region_backend(r);

	if (r->page_size == GMEM_PAGE_2M ||
	    (r->flags & GMEM_REGION_THP && b == GMEM_DIRTY_SOFT_DIRTY))
		return GMEM_PAGE_2M;
	return GMEM_PAGE_4K;
}
