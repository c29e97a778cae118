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
#include <unistd.h>
#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
/* The AVX2/AVX-512 code picked at run time: the same digests, and about
 * twice the speed of the SSE2 build that XXH3_64bits() is in Debian's
 * libxxhash; every page installed is hashed once. */
#define page_hash XXH3_64bits_dispatch
#else
#define page_hash XXH3_64bits
#endif

#include "internal.h"
#include "region/engine.h"
#include "probes.h"
#include "syscall.h"

/* Staging buffers hold at most this many bytes (a 2 MiB page at least). */
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

/* Puts @data into the page cache without mapping it anywhere: writing
 * through the alias instead would take one page fault per 4 KiB page.
 * hugetlbfs has no write(2), and one fault per 2 MiB page is cheap; a THP
 * region's page cache gets 2 MiB folios only from a fault through its
 * MADV_HUGEPAGE alias (write(2) allocates them only with shmem_enabled
 * always or within_size), one fault per 2 MiB as well. */
int install_cache_write(struct gmem_region *r, uint64_t off, uint64_t len,
			const uint8_t *data)
{
	uint64_t done = 0;

	/* pwrite(2) takes the inode's lock for writing, so writers of one
	 * memfd take turns; a copy through the alias only faults, and not at
	 * all where gmem_region_prealloc() populated it. */
	if (r->page_size == GMEM_PAGE_2M || r->flags & GMEM_REGION_THP ||
	    __atomic_load_n(&r->alias_populated, __ATOMIC_ACQUIRE)) {
		memcpy(r->alias + off, data, len);
		return 0;
	}
	while (done < len) {
		ssize_t n = pwrite(r->fd, data + done, len - done,
				   r->fd_off + off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += n;
	}
	return 0;
}

int region_record_digests(struct gmem_region *r)
{
	uint64_t *d, *none = NULL;

	if (__atomic_load_n(&r->installed_digests, __ATOMIC_ACQUIRE))
		return 0;
	d = calloc(r->nr_pages, sizeof(*d));
	if (!d)
		return -ENOMEM;
	/* Another caller may race to set it: keep the first. */
	if (!__atomic_compare_exchange_n(&r->installed_digests, &none, d, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		free(d);
	return 0;
}

/* Hashes the pages' bytes as they are about to be mapped; the page cache
 * copy is read through the alias when the caller wrote it there. */
static void record_digests(struct gmem_region *r, uint64_t pgoff, uint64_t nr,
			   const uint8_t *data)
{
	uint64_t *d = __atomic_load_n(&r->installed_digests, __ATOMIC_ACQUIRE);
	const uint8_t *p = data ? data : r->alias + (pgoff << r->page_shift);

	if (!d)
		return;
	for (uint64_t i = 0; i < nr; i++)
		d[pgoff + i] = page_hash(p + (i << r->page_shift),
					 r->page_size);
}

int install_commit(struct gmem_region *r, uint64_t pgoff, uint64_t nr,
		   const void *data)
{
	uint64_t off = pgoff << r->page_shift, len = nr << r->page_shift;
	uint64_t eexist = 0;
	int ret = 0;

	record_digests(r, pgoff, nr, data);
	if (r->alias && data)
		ret = install_cache_write(r, off, len, data);
	pthread_rwlock_rdlock(&r->wp_lock);
	if (!ret)
		ret = uffd_install(r, off, len, r->alias ? NULL : data, &eexist);
	if (ret == 0 && r->dirty_installed)
		r->dirty_installed(r, pgoff, nr);
	pthread_rwlock_unlock(&r->wp_lock);
	GMEM_PROBE(install, pgoff, nr, ret);
	if (ret < 0) {
		install_unclaim(r, pgoff, nr);
		return ret;
	}
	bitmap_set_range(&r->present, pgoff, nr);
	blocktime_end(r, pgoff, nr);
	stat_add(&r->stats.pages_installed, nr);
	stat_add(&r->stats.installs, 1);
	if (eexist)
		stat_add(&r->stats.eexist, eexist);
	return 0;
}

int staging_init(struct staging *st, const struct gmem_region *r,
		 uint64_t nr_pages)
{
	uint64_t max = STAGING_MAX_BYTES >> r->page_shift;
	int ret;

	st->nr_pages = nr_pages < max ? nr_pages : max ? max : 1;
	st->len = st->nr_pages << r->page_shift;
	/* A mapping of its own, so that its memory policy (the region's
	 * NUMA node) covers nothing else. */
	ret = sys_mmap(NULL, st->len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &st->buf);
	if (ret < 0) {
		st->buf = NULL;
		return ret;
	}
	ret = place_on_node(r, st->buf, st->len);
	if (ret < 0)
		staging_free(st);
	return ret;
}

void staging_free(struct staging *st)
{
	if (st->buf)
		munmap(st->buf, st->len);
	st->buf = NULL;
}

int64_t install_range(struct gmem_region *r, uint64_t pgoff, uint64_t nr,
		      fill_run_fn fill, void *ctx, struct staging *st)
{
	struct staging tmp = {};
	uint64_t end = pgoff + nr, done = 0;
	int ret = 0;

	if (!st) {
		ret = staging_init(&tmp, r, nr);
		if (ret < 0)
			return ret;
		st = &tmp;
	}
	while (pgoff < end) {
		uint64_t n = install_claim(r, &pgoff, end, st->nr_pages);

		if (!n)
			break;
		ret = fill(ctx, pgoff, n, st->buf);
		if (ret < 0) {
			install_unclaim(r, pgoff, n);
			break;
		}
		ret = install_commit(r, pgoff, n, st->buf);
		if (ret < 0)
			break;
		done += n;
		pgoff += n;
	}
	staging_free(&tmp);
	return ret < 0 ? ret : (int64_t)done;
}

/*
 * Poisons every page still missing (UFFDIO_POISON, Linux 6.6; after QEMU's
 * failed post-copy, which leaves the guest unable to run on, but without
 * a thread left waiting). Each page is claimed first so that no installer
 * maps it after; a page claimed by an installer still at work is poisoned
 * too, and that installer's later UFFDIO_COPY/CONTINUE replaces the marker
 * (the kernel takes a marker for an empty entry), so it ends with its
 * bytes. Returns the pages poisoned, or -errno from the first that could
 * not be (a kernel without UFFDIO_POISON: -EINVAL or -ENOTTY).
 */
int64_t region_poison_missing(struct gmem_region *r)
{
	uint64_t p = 0, total = 0;
	int64_t ret = 0;

	pthread_rwlock_rdlock(&r->wp_lock);
	while ((p = bitmap_next_clear(&r->present, p)) < r->nr_pages) {
		uint64_t end = bitmap_next_set(&r->present, p), q = p, n;

		if (end > r->nr_pages)
			end = r->nr_pages;
		while ((n = install_claim(r, &q, end, end - q)))
			q += n;
		ret = uffd_poison(r, p << r->page_shift,
				  (end - p) << r->page_shift);
		if (ret < 0)
			break;
		total += (uint64_t)ret >> r->page_shift;
		p = end;
	}
	pthread_rwlock_unlock(&r->wp_lock);
	if (total)
		stat_add(&r->stats.poisoned, total);
	return ret < 0 ? ret : (int64_t)total;
}
