/* SPDX-License-Identifier: MIT */
/*
 * dirty.h - the dirty log's per-region state and the interface of its
 * backends (dirty-async.c, dirty-sync.c, dirty-softdirty.c). dirty.c holds
 * the public API, backend selection and peers. Never installed.
 */
#ifndef GMEM_DIRTY_H
#define GMEM_DIRTY_H

#include "internal.h"

struct page_region;

/*
 * A backend. Every op is called with the region's r->lock held; @d is
 * r->dirty. start() arms [d->pgoff, d->pgoff + d->nr_pages); collect() sets
 * in @out the pages of that range written since start() or the previous
 * collect() and re-arms them, so that a write the kernel has not reported yet
 * is reported by a later collect() (never lost); stop() disarms and returns
 * the first error, going on after one.
 */
struct dirty_ops {
	enum gmem_dirty_backend backend;
	int (*start)(struct gmem_region *r, struct dirty_log *d);
	int (*collect)(struct gmem_region *r, struct dirty_log *d,
		       struct bitmap *out);
	int (*stop)(struct gmem_region *r, struct dirty_log *d);
};

/*
 * One per region that is tracked or linked as a peer. A leader (a region
 * gmem_dirty_start() was called on) owns @pending and @peers; a peer has
 * @leader set and is armed, collected and stopped only through its leader.
 */
struct dirty_log {
	const struct dirty_ops *ops;   /* NULL while not tracking */
	uint64_t pgoff, nr_pages;      /* tracked range */
	void *priv;                    /* the backend's state */
	struct gmem_region *leader;    /* peers: the region that collects us */
	struct gmem_region **peers;    /* leaders: linked peer regions */
	unsigned int nr_peers;
	struct bitmap pending;         /* leaders: harvested, not reported */
	uint64_t epoch;                /* leaders: collects done */
};

extern const struct dirty_ops dirty_async_ops;
extern const struct dirty_ops dirty_sync_ops;
extern const struct dirty_ops dirty_softdirty_ops;

/*
 * PAGEMAP_SCAN over pages [pgoff, pgoff + nr) of @r through the owner's
 * pagemap fd: sets in @out every page whose categories match @cat, with
 * PM_SCAN_* @flags (PM_SCAN_WP_MATCHING write-protects what it reports, in
 * the same page-table walk). @vec is scratch of @vec_len entries.
 * Returns 0 or -errno.
 */
int dirty_pagemap_scan(struct gmem_region *r, uint64_t pgoff, uint64_t nr,
		       uint64_t flags, uint64_t cat, struct page_region *vec,
		       uint64_t vec_len, struct bitmap *out);

/*
 * dirty_wp_arm() adds UFFDIO_REGISTER_MODE_WP to the region's registration
 * (keeping MISSING/MINOR) and write-protects the tracked range; -EOPNOTSUPP
 * when the region's userfaultfd lacks the features for that memory.
 * dirty_wp_disarm() un-protects the range (waking WP-fault waiters) and
 * removes the WP mode. Both in dirty-async.c, shared with dirty-sync.c.
 */
int dirty_wp_arm(struct gmem_region *r, struct dirty_log *d);
int dirty_wp_disarm(struct gmem_region *r, struct dirty_log *d);

#endif /* GMEM_DIRTY_H */
