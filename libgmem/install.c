// SPDX-License-Identifier: MIT
/*
 * install.c - installs pages exactly once. Every installer (fault handler,
 * prefetch, a receive path) first wins a page's claim bit, then fills the
 * page and maps it with UFFDIO_CONTINUE (fd-backed: the page cache was filled
 * through the alias mapping) or UFFDIO_COPY (anonymous: from a staging
 * buffer). Losers drop their copy: the winner's install wakes the waiters.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Anonymous regions fill a staging buffer of at most this many bytes. */
#define STAGING_MAX_BYTES (4U << 20)

uint64_t install_claim(struct gmem_region *r, uint64_t *pgoff, uint64_t end,
		       uint64_t max)
{
	uint64_t p = *pgoff, start, n = 1;

	while (p < end && bitmap_test_and_set(&r->claimed, p))
		p++;
	if (p >= end) {
		*pgoff = end;
		return 0;
	}
	start = p++;
	/* A failed test-and-set leaves the bit as it was: the page that ends
	 * the run stays with whoever holds it. */
	while (p < end && n < max && !bitmap_test_and_set(&r->claimed, p)) {
		n++;
		p++;
	}
	*pgoff = start;
	return n;
}

void install_unclaim(struct gmem_region *r, uint64_t pgoff, uint64_t nr)
{
	bitmap_clear_range(&r->claimed, pgoff, nr);
}

int install_commit(struct gmem_region *r, uint64_t pgoff, uint64_t nr,
		   const void *staging)
{
	uint64_t eexist = 0;
	int ret;

	pthread_rwlock_rdlock(&r->wp_lock);
	ret = uffd_install(r, pgoff << r->page_shift, nr << r->page_shift,
			   staging, &eexist);
	if (ret == 0 && r->dirty_installed)
		r->dirty_installed(r, pgoff, nr);
	pthread_rwlock_unlock(&r->wp_lock);
	if (ret < 0) {
		install_unclaim(r, pgoff, nr);
		return ret;
	}
	bitmap_set_range(&r->present, pgoff, nr);
	stat_add(&r->stats.pages_installed, nr);
	stat_add(&r->stats.installs, 1);
	if (eexist)
		stat_add(&r->stats.eexist, eexist);
	return 0;
}

static uint64_t run_max_pages(const struct gmem_region *r)
{
	uint64_t max = r->alias ? MAX_FAULT_AROUND
				: STAGING_MAX_BYTES >> r->page_shift;

	return max ? max : 1;
}

int64_t install_range(struct gmem_region *r, uint64_t pgoff, uint64_t nr,
		      fill_run_fn fill, void *ctx)
{
	uint64_t end = pgoff + nr, max = run_max_pages(r), done = 0;
	void *staging = NULL;
	int ret = 0;

	if (!r->alias) {
		staging = aligned_alloc(r->page_size, max << r->page_shift);
		if (!staging)
			return -ENOMEM;
	}
	while (pgoff < end) {
		uint64_t n = install_claim(r, &pgoff, end, max);
		void *dst;

		if (!n)
			break;
		dst = r->alias ? r->alias + (pgoff << r->page_shift) : staging;
		ret = fill(ctx, pgoff, n, dst);
		if (ret < 0) {
			install_unclaim(r, pgoff, n);
			break;
		}
		ret = install_commit(r, pgoff, n, staging);
		if (ret < 0)
			break;
		done += n;
		pgoff += n;
	}
	free(staging);
	return ret < 0 ? ret : (int64_t)done;
}

struct data_ctx {
	const uint8_t *data;
	uint64_t first;
	unsigned int page_shift;
};

static int fill_from_data(void *ctx, uint64_t pgoff, uint64_t nr, void *dst)
{
	struct data_ctx *d = ctx;

	memcpy(dst, d->data + ((pgoff - d->first) << d->page_shift),
	       nr << d->page_shift);
	return 0;
}

int64_t install_data(struct gmem_region *r, uint64_t pgoff, uint64_t nr,
		     const void *data)
{
	struct data_ctx d = {
		.data = data, .first = pgoff, .page_shift = r->page_shift,
	};

	if (!range_ok(r, pgoff, nr))
		return -EINVAL;
	return install_range(r, pgoff, nr, fill_from_data, &d);
}
