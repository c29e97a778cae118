// SPDX-License-Identifier: MIT
/*
 * prealloc.c - allocating a destination region's memory ahead of a
 * migration. Installing a page into an fd-backed region writes it into the
 * page cache and maps it with UFFDIO_CONTINUE. When the page is not there
 * yet, shmem allocates, zeroes and inserts a folio first; and pwrite(2), the
 * way to fill the cache without faulting on the alias mapping page by page,
 * holds the inode's lock for writing, so the push's receive threads take
 * turns. MADV_POPULATE_WRITE on the alias (Linux 5.14) allocates every page
 * and maps it there before the source freezes the workload: post-copy then
 * only copies.
 */
#include <sys/mman.h>

#include "internal.h"
#include "syscall.h"

int gmem_region_prealloc(struct gmem_region *r)
{
	int ret = 0;

	if (!r || !r->alias || !(r->flags & GMEM_REGION_MISSING))
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	/* Installs read the flag without the lock: set before any runs. */
	if (r->engine)
		ret = -EBUSY;
	else
		ret = sys_ret(madvise(r->alias, r->size, MADV_POPULATE_WRITE));
	if (ret == 0)
		__atomic_store_n(&r->alias_populated, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->lock);
	return ret;
}
