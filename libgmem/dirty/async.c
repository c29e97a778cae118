// SPDX-License-Identifier: MIT
/*
 * async.c - the WP_ASYNC dirty backend (Linux 6.7+): the range is
 * write-protected with userfaultfd in UFFD_FEATURE_WP_ASYNC mode, so the
 * kernel itself clears a page's uffd-wp bit on its first write (no fault
 * message, no round trip), and PAGEMAP_SCAN reports the written pages and
 * write-protects them again in one page-table walk. Also the write-protect
 * arming shared with the sync backend, and the PAGEMAP_SCAN loop.
 */
#include <stdlib.h>

#include "compat.h"
#include "dirty/dirty.h"
#include "region/engine.h"
#include "syscall.h"

/* PAGEMAP_SCAN output entries per ioctl: each is one run of written pages,
 * so 1% of 1 GiB dirty at random (~2600 runs) takes one call. */
#define SCAN_VEC_LEN 4096

/* One contiguous range of the owner's mm, [uva, end), holding pages from
 * @pgoff on. */
static int scan_range(struct gmem_region *r, uint64_t uva, uint64_t end,
		      uint64_t pgoff, uint64_t flags, uint64_t cat,
		      struct page_region *vec, uint64_t vec_len,
		      struct bitmap *out)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = flags,
		.start = uva,
		.end = end,
		.vec = (uint64_t)(uintptr_t)vec,
		.vec_len = vec_len,
		.category_mask = cat,
		.return_mask = cat,
	};

	while (arg.start < end) {
		int n = sys_ioctl(r->pagemap_fd, PAGEMAP_SCAN, &arg);

		if (n < 0)
			return n;
		for (int i = 0; i < n; i++)
			bitmap_set_range(out,
				pgoff + ((vec[i].start - uva) >> r->page_shift),
				(vec[i].end - vec[i].start) >> r->page_shift);
		/* With PM_SCAN_WP_MATCHING a full @vec stops the walk right
		 * after the last page reported, which alone was re-protected:
		 * the next call goes on from there. */
		if (arg.walk_end <= arg.start)
			return -EIO;
		arg.start = arg.walk_end;
	}
	return 0;
}

/* Range by range of the owner's mm: an external region's pages may live in
 * several mappings, and those no mapping holds are never written. */
int dirty_pagemap_scan(struct gmem_region *r, uint64_t pgoff, uint64_t nr,
		       uint64_t flags, uint64_t cat, struct page_region *vec,
		       uint64_t vec_len, struct bitmap *out)
{
	uint64_t off = pgoff << r->page_shift;
	uint64_t stop = (pgoff + nr) << r->page_shift;

	while (off < stop) {
		uint64_t len = stop - off, uva = region_uva(r, off, &len);
		int ret;

		if (!len) {
			off += r->page_size;
			continue;
		}
		ret = scan_range(r, uva, uva + len, off >> r->page_shift,
				 flags, cat, vec, vec_len, out);
		if (ret < 0)
			return ret;
		off += len;
	}
	return 0;
}

/* userfaultfd features write-protecting every page of @r needs: shmem and
 * hugetlbfs leave a uffd-wp marker on never-touched pages by themselves;
 * anonymous memory needs WP_UNPOPULATED for that; another process's
 * mappings (external regions) may be either. */
static uint64_t wp_features_needed(const struct gmem_region *r)
{
	uint64_t f = UFFD_FEATURE_PAGEFAULT_FLAG_WP;

	if (r->alias || r->maps || r->page_size != GMEM_PAGE_4K)
		f |= UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	if (!r->alias)
		f |= UFFD_FEATURE_WP_UNPOPULATED;
	return f;
}

/* Re-registers @r with its other modes and without WP; unregisters when no
 * mode is left. */
static int wp_unregister(struct gmem_region *r)
{
	uint64_t mode = r->reg_mode & ~(uint64_t)UFFDIO_REGISTER_MODE_WP;

	if (mode == r->reg_mode)
		return 0;
	return mode ? uffd_register(r, mode) : uffd_unregister(r);
}

/* Adds WP to the region's registration (keeping MISSING/MINOR: a
 * re-registration replaces the modes) and write-protects the range. */
int dirty_wp_arm(struct gmem_region *r, struct dirty_log *d)
{
	uint64_t need = wp_features_needed(r);
	int ret;

	if ((r->uffd_features & need) != need)
		return -EOPNOTSUPP;
	ret = uffd_register(r, r->reg_mode | UFFDIO_REGISTER_MODE_WP);
	if (ret < 0)
		return ret;
	ret = uffd_writeprotect(r, d->pgoff << r->page_shift,
				d->nr_pages << r->page_shift, true);
	if (ret < 0)
		wp_unregister(r);
	return ret;
}

/* Un-protects the range (which also drops the uffd-wp markers and wakes
 * any thread waiting on a WP fault), then the WP registration. */
int dirty_wp_disarm(struct gmem_region *r, struct dirty_log *d)
{
	int ret = uffd_writeprotect(r, d->pgoff << r->page_shift,
				    d->nr_pages << r->page_shift, false);
	int ret2 = wp_unregister(r);

	return ret < 0 ? ret : ret2;
}

static int async_start(struct gmem_region *r, struct dirty_log *d)
{
	uint64_t feat = 0;
	struct page_region *vec;
	int ret;

	if (!(r->uffd_features & UFFD_FEATURE_WP_ASYNC))
		return -EINVAL;
	ret = gmem_features(&feat);
	if (ret < 0)
		return ret;
	if (!(feat & GMEM_FEAT_PAGEMAP_SCAN) || r->pagemap_fd < 0)
		return -EOPNOTSUPP;
	vec = calloc(SCAN_VEC_LEN, sizeof(*vec));
	if (!vec)
		return -ENOMEM;
	ret = dirty_wp_arm(r, d);
	if (ret < 0) {
		free(vec);
		return ret;
	}
	d->priv = vec;
	return 0;
}

/* Written = the uffd-wp bit is clear (the kernel cleared it on the first
 * write); PM_SCAN_WP_MATCHING sets it again under the page-table lock, so a
 * write either lands before the walk passes its page (reported now) or
 * after (faults, reported next time). PM_SCAN_CHECK_WPASYNC makes the
 * kernel refuse (-EPERM) a range not registered in async mode. */
static int async_collect(struct gmem_region *r, struct dirty_log *d,
			 struct bitmap *out)
{
	return dirty_pagemap_scan(r, d->pgoff, d->nr_pages,
				  PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
				  PAGE_IS_WRITTEN, d->priv, SCAN_VEC_LEN, out);
}

static int async_stop(struct gmem_region *r, struct dirty_log *d)
{
	int ret = dirty_wp_disarm(r, d);

	free(d->priv);
	d->priv = NULL;
	return ret;
}

const struct dirty_ops dirty_async_ops = {
	.backend = GMEM_DIRTY_WP_ASYNC,
	.start = async_start,
	.collect = async_collect,
	.stop = async_stop,
};
