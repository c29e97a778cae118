/* SPDX-License-Identifier: MIT */
/*
 * engine.h - the region's fault engine, for the parts that install pages or
 * read faults: the userfaultfd boundary, exactly-once installation, page
 * sources and the handler threads.
 */
#ifndef GMEM_REGION_ENGINE_H
#define GMEM_REGION_ENGINE_H

#include "internal.h"

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
/* UFFDIO_POISON over [off, off + len), skipping pages mapped already;
 * returns bytes poisoned (>= 0) or -errno (-EINVAL/-ENOTTY: a kernel
 * before 6.6). */
int64_t uffd_poison(struct gmem_region *r, uint64_t off, uint64_t len);
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
/* Poisons every page not present: a thread that waits on one, or touches
 * one later, gets SIGBUS. Returns pages poisoned or -errno. */
int64_t region_poison_missing(struct gmem_region *r);
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

/* --- page-source.c ------------------------------------------------------ */
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

/* --- blocktime.c: how long each faulting thread waited ------------------ */
/* Sets the counters up if the userfaultfd names threads (idempotent; with
 * r->lock held, before a source attaches): 0 or -ENOMEM. */
int blocktime_init(struct gmem_region *r);
void blocktime_free(struct gmem_region *r);
/* A handler read a fault of thread @tid on @pgoff at @now (ns). */
void blocktime_fault(struct gmem_region *r, uint32_t tid, uint64_t pgoff,
		     uint64_t now);
/* Pages [@pgoff, +@nr) are present now: the waits on them end. */
void blocktime_end(struct gmem_region *r, uint64_t pgoff, uint64_t nr);

/* --- attach.c ------------------------------------------------------------ */
/* Checks attach parameters (@p may be NULL): 0 with the thread count and
 * fault-around they ask for (defaults 1 and 16), or -EINVAL. The one place
 * their limits (GMEM_MAX_THREADS, GMEM_MAX_FAULT_AROUND) are enforced. */
int fault_params_check(const struct gmem_fault_params *p,
		       unsigned int *threads, unsigned int *fa);

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

#endif /* GMEM_REGION_ENGINE_H */
