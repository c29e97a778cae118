/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what every part of libgmem needs: the region structure, its
 * address translation, counters and the clock. The fault engine's own
 * interfaces are in region/engine.h. Never installed.
 */
#ifndef GMEM_INTERNAL_H
#define GMEM_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "bitmap.h"
#include "gmem.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_FAULT_AROUND GMEM_MAX_FAULT_AROUND

struct fault_engine;
struct blocktime;
struct dirty_log;

/* A mapping of an external region (gmem_region_adopt_uffd()): @nr_pages
 * pages of the image from @pgoff on live at @uva in the owner's mm. */
struct region_map {
	uint64_t uva;
	uint64_t pgoff;
	uint64_t nr_pages;
};

/*
 * Page states. A page is MISSING until one installer wins its bit in
 * @claimed (atomic test-and-set), fills it and installs it with UFFDIO_COPY or
 * UFFDIO_CONTINUE; only then is its bit in @present set. Regions without
 * GMEM_REGION_MISSING start with both maps full.
 */
struct gmem_region {
	uint64_t uva;          /* base in the owner's mm: uffd/pagemap address */
	uint8_t *addr;         /* this process's view: == uva in the owner */
	uint8_t *alias;        /* unregistered mapping of the fd used to fill the
				* page cache; == addr when imported; NULL anon */
	uint64_t size;
	uint64_t nr_pages;
	uint32_t page_size;
	unsigned int page_shift;
	uint32_t backing;
	uint32_t flags;
	uint32_t dirty_backend; /* as asked at creation (may be AUTO) */
	int fd;
	uint64_t fd_off;
	int uffd;
	uint64_t uffd_features; /* UFFD_FEATURE_* enabled on @uffd */
	uint64_t reg_mode;      /* UFFDIO_REGISTER_MODE_* currently registered */
	int pagemap_fd;         /* owner's /proc/PID/pagemap, or -1 */
	int clear_refs_fd;      /* owner's /proc/PID/clear_refs, or -1 */
	int fill_fd;            /* the fill gate's memfd (region/fill.c), or -1 */
	uint64_t *fill;         /* its watermark, bytes; NULL: no gate */
	bool imported;
	bool alias_populated;  /* gmem_region_prealloc(): installs copy into it */
	int numa_node;          /* node of pages, staging and handlers; -1 any */
	/* External regions only: where the image's pages live in the owner's
	 * mm (page index = offset in the image); NULL means one range at
	 * @uva. Such a region has no view here (@addr and @alias NULL). */
	struct region_map *maps;
	uint32_t nr_maps;

	struct bitmap claimed;
	struct bitmap present;

	pthread_mutex_t lock;  /* attach/detach, registration, dirty start/stop */
	struct gmem_source *source;
	struct fault_engine *engine;
	struct blocktime *blocktime; /* per-thread fault waits (blocktime.c);
				      * NULL without UFFD_FEATURE_THREAD_ID */
	unsigned int engine_users;  /* enum engine_user mask */
	unsigned int nr_threads;    /* handler threads (attach params) */
	unsigned int fault_around;  /* pages per resolve (attach params) */
	struct dirty_log *dirty;
	/* Called by the fault engine for a write-protect fault (sync dirty
	 * backend); NULL otherwise. */
	void (*wp_fault)(struct gmem_region *r, uint64_t pgoff);
	/* Set by the dirty log while tracking; gmem_region_destroy() calls it
	 * to stop tracking before anything else goes. */
	void (*dirty_release)(struct gmem_region *r);
	/* The sync write-protect dirty log must see every page installed while
	 * it runs (UFFDIO_COPY/CONTINUE map a writable pte, so the next write
	 * would not fault): install_commit() holds @wp_lock for reading around
	 * the ioctl and calls @dirty_installed; the log's collect holds it for
	 * writing while it harvests and re-protects. */
	pthread_rwlock_t wp_lock;
	void (*dirty_installed)(struct gmem_region *r, uint64_t pgoff,
				uint64_t nr);
	struct bitmap pending;      /* faults read while no source was attached */
	/* XXH3-64 of each page as it was installed, kept while a migration
	 * must confirm its pages (region_record_digests()): the workload may
	 * rewrite a page right after its install, so the completion check
	 * compares these, never the page's current bytes. NULL otherwise. */
	uint64_t *installed_digests;

	struct {
		uint64_t faults, faults_present, pages_installed, installs,
			eexist, resolve_ns, errors, poisoned;
	} stats; /* updated with __atomic_fetch_add */
};

static inline void stat_add(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

/* A snapshot of counters that other threads stat_add() to: every field of
 * struct gmem_remote_stats is a uint64_t, loaded one by one, each with
 * acquire: what a counter's writer did before a release add is seen. */
static inline void remote_stats_load(struct gmem_remote_stats *out,
				     const struct gmem_remote_stats *in)
{
	const uint64_t *i = (const uint64_t *)in;
	uint64_t *o = (uint64_t *)out;

	for (size_t k = 0; k < sizeof(*out) / 8; k++)
		o[k] = __atomic_load_n(&i[k], __ATOMIC_ACQUIRE);
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* The fill gate (region/fill.c; gmem_region_filled() reads it): maps
 * r->fill_fd's watermark with @prot; frees both (destroy). */
int region_fill_map(struct gmem_region *r, int prot);
void region_fill_free(struct gmem_region *r);

static inline bool range_ok(const struct gmem_region *r, uint64_t pgoff,
			    uint64_t nr)
{
	return pgoff < r->nr_pages && nr <= r->nr_pages - pgoff;
}

/* --- region.c: addresses of a region of another process (external.c) -- */
uint64_t region_map_uva(const struct gmem_region *r, uint64_t off,
			uint64_t *len);
bool region_map_pgoff(const struct gmem_region *r, uint64_t addr,
		      uint64_t *pgoff);

/* The owner's address of byte @off of the region; *len is clipped to the
 * bytes that follow it contiguously there (0: no mapping holds @off). */
static inline uint64_t region_uva(const struct gmem_region *r, uint64_t off,
				  uint64_t *len)
{
	return r->maps ? region_map_uva(r, off, len) : r->uva + off;
}

/* The page that holds the owner's address @addr; false if none does. */
static inline bool region_pgoff(const struct gmem_region *r, uint64_t addr,
				uint64_t *pgoff)
{
	if (r->maps)
		return region_map_pgoff(r, addr, pgoff);
	if (addr < r->uva || addr >= r->uva + r->size)
		return false;
	*pgoff = (addr - r->uva) >> r->page_shift;
	return true;
}

#endif /* GMEM_INTERNAL_H */
