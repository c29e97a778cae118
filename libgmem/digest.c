// SPDX-License-Identifier: MIT
/*
 * digest.c - per-page digests (XXH3-64, seed 0) of a region's contents, the
 * completion check of a migration: both ends hash every page and compare.
 * Reads through the alias mapping where there is one, so hashing never
 * raises a userfaultfd fault.
 */
#include <xxhash.h>

#include "internal.h"

int gmem_region_digest(const struct gmem_region *r, uint64_t pgoff,
		       uint64_t nr_pages, uint64_t *out)
{
	const uint8_t *base;

	if (!r || !out || !range_ok(r, pgoff, nr_pages))
		return -EINVAL;
	base = r->alias ? r->alias : r->addr;
	if (!base) /* an external region: no view of its pages here */
		return -EOPNOTSUPP;
	/* Anonymous memory has no second mapping: a missing page would
	 * fault (and wait for a source) instead of reading as zeros. */
	if (!r->alias && (r->flags & GMEM_REGION_MISSING))
		for (uint64_t i = 0; i < nr_pages; i++)
			if (!bitmap_test(&r->present, pgoff + i))
				return -EAGAIN;
	for (uint64_t i = 0; i < nr_pages; i++)
		out[i] = XXH3_64bits(base + ((pgoff + i) << r->page_shift),
				     r->page_size);
	return 0;
}
