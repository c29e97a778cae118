// SPDX-License-Identifier: MIT
/*
 * region.c - creating, describing and destroying regions: the VA range, its
 * backing (memfd, adopted fd or anonymous memory), the second mapping used to
 * fill the page cache, the region's userfaultfd and its page-state bitmaps.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compat.h"
#include "internal.h"
#include "region/engine.h"
#include "syscall.h"

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21 << 26)
#endif
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif

static bool resv_is_zero(const uint64_t *resv, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (resv[i])
			return false;
	return true;
}

static int params_check(const struct gmem_region_params *p, uint32_t *ps)
{
	*ps = p->page_size ? p->page_size : GMEM_PAGE_4K;
	if (!resv_is_zero(p->resv, ARRAY_SIZE(p->resv)) || p->resv0)
		return -EINVAL;
	if (*ps != GMEM_PAGE_4K && *ps != GMEM_PAGE_2M)
		return -EINVAL;
	if (!p->nr_pages || p->nr_pages > UINT64_MAX / *ps ||
	    p->nr_pages * *ps > (uint64_t)SIZE_MAX / 2)
		return -EINVAL;
	if (p->flags & GMEM_REGION_THP && *ps != GMEM_PAGE_4K)
		return -EINVAL;
	if (p->backing > GMEM_BACKING_FD ||
	    p->flags & ~(GMEM_REGION_MISSING | GMEM_REGION_THP) ||
	    p->dirty_backend > GMEM_DIRTY_SOFT_DIRTY)
		return -EINVAL;
	if (p->backing == GMEM_BACKING_FD && (p->fd < 0 || p->fd_off % *ps))
		return -EINVAL;
	return 0;
}

/* The backing fd: a new memfd, or a dup of the caller's, checked long enough. */
static int backing_open(struct gmem_region *r, const struct gmem_region_params *p)
{
	struct stat st;
	int ret;

	if (p->backing == GMEM_BACKING_ANON) {
		r->fd = -1;
		return 0;
	}
	if (p->backing == GMEM_BACKING_FD) {
		r->fd = sys_ret(fcntl(p->fd, F_DUPFD_CLOEXEC, 0));
		if (r->fd < 0)
			return r->fd;
		r->fd_off = p->fd_off;
		ret = sys_ret(fstat(r->fd, &st));
		if (ret < 0)
			return ret;
		return (uint64_t)st.st_size < r->fd_off + r->size ? -EINVAL : 0;
	}
	r->fd = sys_memfd_create(p->name ? p->name : "gmem",
				 MFD_CLOEXEC | (r->page_size == GMEM_PAGE_2M ?
						MFD_HUGETLB | MFD_HUGE_2MB : 0));
	if (r->fd < 0)
		return r->fd;
	return sys_ret(ftruncate(r->fd, r->size));
}

static int region_map(struct gmem_region *r)
{
	int huge = r->page_size == GMEM_PAGE_2M ? MAP_HUGETLB | MAP_HUGE_2MB : 0;
	void *p = NULL;
	int ret;

	if (r->fd < 0) {
		/* Huge pages are reserved here, so that too few of them
		 * fail now rather than SIGBUS (or a fault that never
		 * resolves) later. */
		ret = sys_mmap(NULL, r->size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS |
			       (huge ? huge : MAP_NORESERVE), -1, 0, &p);
		if (ret < 0)
			return ret == -ENOMEM && huge ? -ENOSPC : ret;
		r->addr = p;
		r->uva = (uint64_t)(uintptr_t)p;
		return 0;
	}
	ret = sys_mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
		       r->fd_off, &p);
	if (ret < 0)
		return ret == -ENOMEM && r->page_size == GMEM_PAGE_2M ? -ENOSPC : ret;
	r->addr = p;
	r->uva = (uint64_t)(uintptr_t)p;
	/* The alias: same pages, never registered with userfaultfd, so the
	 * pager can fill the page cache without faulting. */
	ret = sys_mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
		       r->fd_off, &p);
	if (ret < 0)
		return ret;
	r->alias = p;
	return 0;
}

/* userfaultfd features this region asks for, from what the kernel has. */
static int uffd_features_wanted(const struct gmem_region *r, uint64_t kfeat,
				uint64_t *want)
{
	uint64_t f = UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM |
		     UFFD_FEATURE_MISSING_HUGETLBFS |
		     UFFD_FEATURE_MINOR_HUGETLBFS |
		     UFFD_FEATURE_PAGEFAULT_FLAG_WP |
		     UFFD_FEATURE_WP_HUGETLBFS_SHMEM |
		     UFFD_FEATURE_WP_UNPOPULATED |
		     UFFD_FEATURE_THREAD_ID; /* blocktime.c */
	bool async_ok = (kfeat & UFFD_FEATURE_WP_ASYNC) != 0;

	if (r->dirty_backend == GMEM_DIRTY_WP_ASYNC && !async_ok)
		return -EOPNOTSUPP;
	if (async_ok && (r->dirty_backend == GMEM_DIRTY_AUTO ||
			 r->dirty_backend == GMEM_DIRTY_WP_ASYNC))
		f |= UFFD_FEATURE_WP_ASYNC;
	*want = f & kfeat;
	return 0;
}

/* Opens the region's userfaultfd and, for GMEM_REGION_MISSING, registers
 * the range: MISSING for anonymous memory, MISSING|MINOR for an fd (pages
 * absent from the page cache raise MISSING, cached but unmapped ones MINOR;
 * both resolve with UFFDIO_CONTINUE once the alias filled the cache). */
static int region_uffd_setup(struct gmem_region *r)
{
	uint64_t kfeat = 0, want, mode = UFFDIO_REGISTER_MODE_MISSING;
	uint64_t minor = r->page_size == GMEM_PAGE_2M ?
				 UFFD_FEATURE_MINOR_HUGETLBFS :
				 UFFD_FEATURE_MINOR_SHMEM;
	int ret = uffd_probe_features(&kfeat);

	if (ret < 0)
		return ret;
	ret = uffd_features_wanted(r, kfeat, &want);
	if (ret < 0)
		return ret;
	r->uffd = uffd_open(want, &r->uffd_features);
	if (r->uffd < 0)
		return r->uffd;
	if (!(r->flags & GMEM_REGION_MISSING))
		return 0;
	if (r->alias) {
		if (!(r->uffd_features & minor))
			return -EOPNOTSUPP;
		mode |= UFFDIO_REGISTER_MODE_MINOR;
	}
	return uffd_register(r, mode);
}

/* The owner's /proc files, which an importer uses to read the dirty log. */
static void region_open_proc(struct gmem_region *r)
{
	r->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	r->clear_refs_fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
}

/* Writer-preferring, so a dirty-log collect is not starved by a stream of
 * installs and write-protect faults (glibc prefers readers by default). */
static void region_wp_lock_init(struct gmem_region *r)
{
	pthread_rwlockattr_t attr;

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&r->wp_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
}

int region_alloc(struct gmem_region **out, uint64_t nr_pages,
		 uint32_t page_size, uint32_t flags)
{
	struct gmem_region *r = calloc(1, sizeof(*r));
	bool missing = flags & GMEM_REGION_MISSING;

	if (!r)
		return -ENOMEM;
	r->nr_pages = nr_pages;
	r->page_size = page_size;
	r->page_shift = __builtin_ctz(page_size);
	r->size = nr_pages * page_size;
	r->flags = flags;
	r->fd = r->uffd = r->pagemap_fd = r->clear_refs_fd = r->fill_fd = -1;
	r->numa_node = -1;
	pthread_mutex_init(&r->lock, NULL);
	region_wp_lock_init(r);
	if (bitmap_init(&r->claimed, nr_pages, !missing) ||
	    bitmap_init(&r->present, nr_pages, !missing) ||
	    bitmap_init(&r->pending, nr_pages, false)) {
		gmem_region_destroy(r);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

int gmem_region_create(const struct gmem_region_params *p,
		       struct gmem_region **out)
{
	struct gmem_region *r;
	uint32_t ps;
	int ret;

	if (!p || !out)
		return -EINVAL;
	ret = params_check(p, &ps);
	if (ret < 0)
		return ret;
	ret = region_alloc(&r, p->nr_pages, ps, p->flags);
	if (ret < 0)
		return ret;
	r->backing = p->backing;
	r->dirty_backend = p->dirty_backend;
	ret = backing_open(r, p);
	if (!ret)
		ret = region_map(r);
	if (!ret && r->flags & GMEM_REGION_THP)
		ret = region_thp_setup(r);
	if (!ret)
		ret = region_uffd_setup(r);
	if (ret < 0) {
		gmem_region_destroy(r);
		return ret;
	}
	region_open_proc(r);
	*out = r;
	return 0;
}

static void close_fd(int fd)
{
	if (fd >= 0)
		close(fd);
}

void gmem_region_destroy(struct gmem_region *r)
{
	if (!r)
		return;
	if (r->dirty_release)
		r->dirty_release(r);
	if (r->source)
		gmem_region_detach(r);
	pthread_mutex_lock(&r->lock);
	fault_engine_put(r, ~0U);
	pthread_mutex_unlock(&r->lock);
	if (r->alias && r->alias != r->addr)
		munmap(r->alias, r->size);
	if (r->addr) /* an importer's own mapping too, never the owner's */
		munmap(r->addr, r->size);
	close_fd(r->uffd);
	close_fd(r->fd);
	close_fd(r->pagemap_fd);
	close_fd(r->clear_refs_fd);
	region_fill_free(r);
	bitmap_free(&r->claimed);
	bitmap_free(&r->present);
	bitmap_free(&r->pending);
	free(r->installed_digests);
	blocktime_free(r);
	free(r->maps);
	pthread_mutex_destroy(&r->lock);
	pthread_rwlock_destroy(&r->wp_lock);
	free(r);
}

void *gmem_region_addr(const struct gmem_region *r)
{
	return r->addr;
}

uint64_t gmem_region_size(const struct gmem_region *r)
{
	return r->size;
}

uint32_t gmem_region_page_size(const struct gmem_region *r)
{
	return r->page_size;
}

uint64_t gmem_region_nr_pages(const struct gmem_region *r)
{
	return r->nr_pages;
}

int gmem_region_fd(const struct gmem_region *r)
{
	return r->fd >= 0 ? r->fd : -EBADF;
}

uint64_t gmem_region_fd_off(const struct gmem_region *r)
{
	return r->fd_off;
}

bool gmem_page_present(const struct gmem_region *r, uint64_t pgoff)
{
	return pgoff < r->nr_pages && bitmap_test(&r->present, pgoff);
}

uint64_t gmem_region_nr_present(const struct gmem_region *r)
{
	return bitmap_count(&r->present);
}

/* A region of another process (external.c) is a list of mappings: the
 * owner's address of a page, and back, by a walk of at most
 * GMEM_UFFD_MAX_MAPPINGS entries on every fault. */
uint64_t region_map_uva(const struct gmem_region *r, uint64_t off,
			uint64_t *len)
{
	uint64_t pgoff = off >> r->page_shift;

	for (uint32_t i = 0; i < r->nr_maps; i++) {
		const struct region_map *m = &r->maps[i];
		uint64_t end = (m->pgoff + m->nr_pages) << r->page_shift;

		if (pgoff < m->pgoff || pgoff >= m->pgoff + m->nr_pages)
			continue;
		if (*len > end - off)
			*len = end - off;
		return m->uva + off - (m->pgoff << r->page_shift);
	}
	/* Uncovered pages start present and are never installed. */
	*len = 0;
	return 0;
}

bool region_map_pgoff(const struct gmem_region *r, uint64_t addr,
		      uint64_t *pgoff)
{
	for (uint32_t i = 0; i < r->nr_maps; i++) {
		const struct region_map *m = &r->maps[i];

		if (addr >= m->uva &&
		    addr - m->uva < m->nr_pages << r->page_shift) {
			*pgoff = m->pgoff + ((addr - m->uva) >> r->page_shift);
			return true;
		}
	}
	return false;
}
