/* SPDX-License-Identifier: MIT */
/*
 * internal.h - the region structure and the interfaces between libgmem's
 * modules (uffd, install, fault engine, sources, dirty log). Never installed.
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
			eexist, resolve_ns, errors;
	} stats; /* updated with __atomic_fetch_add */
};

static inline void stat_add(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

/* A snapshot of counters that other threads stat_add() to: every field of
 * struct gmem_remote_stats is a uint64_t, loaded one by one. */
static inline void remote_stats_load(struct gmem_remote_stats *out,
				     const struct gmem_remote_stats *in)
{
	const uint64_t *i = (const uint64_t *)in;
	uint64_t *o = (uint64_t *)out;

	for (size_t k = 0; k < sizeof(*out) / 8; k++)
		o[k] = __atomic_load_n(&i[k], __ATOMIC_RELAXED);
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static inline bool range_ok(const struct gmem_region *r, uint64_t pgoff,
			    uint64_t nr)
{
	return pgoff < r->nr_pages && nr <= r->nr_pages - pgoff;
}

/* --- region.c ------------------------------------------------------------ */
/* A zeroed region of @nr_pages pages, its bitmaps full unless
 * GMEM_REGION_MISSING is in @flags; fds -1, nothing mapped yet. */
int region_alloc(struct gmem_region **out, uint64_t nr_pages,
		 uint32_t page_size, uint32_t flags);

/* --- thp.c --------------------------------------------------------------- */
/* MADV_HUGEPAGE on the region's mappings: -EOPNOTSUPP when the kernel's THP
 * settings refuse 2 MiB folios for its backing, or -errno of madvise(2). */
int region_thp_setup(struct gmem_region *r);

/* --- numa.c (numa-stub.c without libnuma) -------------------------------- */
/* Sets the memory policy of [addr, addr + len) (one of @r's mappings or a
 * staging buffer) to prefer r->numa_node; the default policy at -1.
 * Returns 0 or -errno of mbind(2). */
int place_on_node(const struct gmem_region *r, void *addr, uint64_t len);
/* Moves the calling thread onto the CPUs of r->numa_node (if not -1). */
void run_near_node(const struct gmem_region *r);

/* --- external.c: regions of another process's mappings ----------------- */
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

/* --- uffd.c: the userfaultfd boundary ------------------------------------ */
int uffd_open(uint64_t want_features, uint64_t *got_features);
int uffd_probe_features(uint64_t *features);
int uffd_register(struct gmem_region *r, uint64_t mode);
int uffd_unregister(struct gmem_region *r);
/* Install [off, off+len) of the region: UFFDIO_CONTINUE (fd-backed, page
 * cache already filled) or UFFDIO_COPY from @src (anonymous). Retries
 * -EAGAIN; -EEXIST pages are skipped and counted in *eexist. */
int uffd_install(struct gmem_region *r, uint64_t off, uint64_t len,
		 const void *src, uint64_t *eexist);
int uffd_wake(struct gmem_region *r, uint64_t off, uint64_t len);
int uffd_writeprotect(struct gmem_region *r, uint64_t off, uint64_t len,
		      bool protect);

/* --- install.c: exactly-once installation -------------------------------- */
/*
 * Fills a page run: writes nr pages of bytes at @dst (a staging buffer).
 * Returns 0 or -errno.
 */
typedef int (*fill_run_fn)(void *ctx, uint64_t pgoff, uint64_t nr, void *dst);

/* A reusable staging buffer: fault handlers keep one each, so the fill path
 * touches no fresh memory (every new page costs a fault of its own). */
struct staging {
	void *buf;
	uint64_t nr_pages;
	uint64_t len; /* bytes mapped at @buf */
};
int staging_init(struct staging *st, const struct gmem_region *r,
		 uint64_t nr_pages);
void staging_free(struct staging *st);

/* Claims every unclaimed page of the range and, run by run, fills it into
 * @st (NULL: a temporary buffer) and installs it. Returns pages installed
 * (>= 0) or the first error. */
int64_t install_range(struct gmem_region *r, uint64_t pgoff, uint64_t nr,
		      fill_run_fn fill, void *ctx, struct staging *st);
/*
 * The steps of install_range(), for a receive path. install_claim() skips claimed
 * pages from *pgoff on, then claims up to @max unclaimed pages in a row,
 * below @end; it sets *pgoff to the run's first page and returns its length
 * (0: none left). The claimer then calls install_commit() with the pages'
 * bytes in @data (fd-backed: written to the page cache with pwrite(2), which
 * maps nothing, then UFFDIO_CONTINUE; anonymous: UFFDIO_COPY from @data), or
 * @data NULL when it already wrote them through r->alias (fd-backed only);
 * or install_unclaim() if it cannot fill them.
 */
uint64_t install_claim(struct gmem_region *r, uint64_t *pgoff, uint64_t end,
		       uint64_t max);
/* Starts recording r->installed_digests (idempotent): 0 or -ENOMEM. */
int region_record_digests(struct gmem_region *r);
int install_commit(struct gmem_region *r, uint64_t pgoff, uint64_t nr,
		   const void *data);
void install_unclaim(struct gmem_region *r, uint64_t pgoff, uint64_t nr);
/* Writes @len bytes at byte offset @off of an fd-backed region into its page
 * cache without mapping them (install_commit's first step); also used to
 * land pre-copy pages that are not installed yet. Returns 0 or -errno. */
int install_cache_write(struct gmem_region *r, uint64_t off, uint64_t len,
			const uint8_t *data);

/* --- source.c ------------------------------------------------------------ */
struct source_ops {
	/* Synchronous fill (fill_run_fn); NULL for sources that only deliver
	 * asynchronously, through install_claim()/install_commit(). */
	int (*fill)(struct gmem_source *s, uint64_t pgoff, uint64_t nr,
		    void *dst);
	/* Asynchronous sources: pages are wanted urgently (a fault on page
	 * @fault, inside the run, or SOURCE_NO_FAULT for a fill nobody waits
	 * on). The source installs them later; may be NULL. */
	int (*request)(struct gmem_source *s, uint64_t fault, uint64_t pgoff,
		       uint64_t nr);
	int (*attach)(struct gmem_source *s, struct gmem_region *r);
	void (*detach)(struct gmem_source *s);
	void (*destroy)(struct gmem_source *s);
};

struct gmem_source {
	const struct source_ops *ops;
	struct gmem_region *region; /* while attached */
	void *priv;
};

int source_new(const struct source_ops *ops, void *priv,
	       struct gmem_source **out);
#define SOURCE_NO_FAULT UINT64_MAX
/* Resolves a page run from the attached source: sync fill through @st +
 * install, or an urgent request to an asynchronous source, for a fault on
 * page @fault of the run (SOURCE_NO_FAULT: a fill). */
int64_t source_resolve(struct gmem_region *r, uint64_t fault, uint64_t pgoff,
		       uint64_t nr, struct staging *st);

/* --- fault.c: uffd reader threads ---------------------------------------- */
/*
 * The reader threads run while anyone needs the region's fault events: an
 * attached source (missing/minor faults) or the sync write-protect dirty
 * backend (WP faults, passed to r->wp_fault). Called with r->lock held.
 * get() starts the threads for the first user (or restarts them when
 * r->nr_threads changed); put() joins them after the last.
 */
enum engine_user {
	ENGINE_USER_SOURCE = 1 << 0,
	ENGINE_USER_WP = 1 << 1,
};
int fault_engine_get(struct gmem_region *r, unsigned int user);
void fault_engine_put(struct gmem_region *r, unsigned int user);

#endif /* GMEM_INTERNAL_H */
