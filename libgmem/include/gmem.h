/* SPDX-License-Identifier: MIT */
/*
 * gmem.h - the public API of libgmem: regions of guest VRAM backed by a
 * user-space pager (userfaultfd), their dirty log, page servers and the
 * migration engine. The only header users include.
 *
 * Conventions (as liburing's):
 * - Functions returning int return 0 or a count >= 0 on success and a
 *   negative errno (-EINVAL, ...) on failure; errno is not used.
 * - "len", "size" and "off" are bytes; "nr_pages" and "pgoff" count pages of
 *   the region's page size; "*_ns" are nanoseconds, "*_ms" milliseconds.
 * - Param structs have "resv" fields that must be zero (-EINVAL otherwise),
 *   so later versions can grow them.
 * - libgmem never prints, never exits and never raises signals.
 *
 * API stability: the GMEM_1 symbol version is stable from 1.0; until then
 * (0.x) structures may still change between releases.
 */
#ifndef GMEM_H
#define GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Kernel features                                                           */
/* ------------------------------------------------------------------------ */

/*
 * Feature bits, probed once from the running kernel (not from the headers
 * gmem was built with). The UFFD_* ones are userfaultfd(2) API features
 * (Documentation/admin-guide/mm/userfaultfd.rst).
 */
#define GMEM_FEAT_DEV_USERFAULTFD (1ULL << 0)  /* /dev/userfaultfd opens (5.11+) */
#define GMEM_FEAT_MISSING_SHMEM   (1ULL << 1)  /* MISSING faults on shmem */
#define GMEM_FEAT_MINOR_SHMEM     (1ULL << 2)  /* MINOR faults + UFFDIO_CONTINUE on shmem (5.14+) */
#define GMEM_FEAT_MISSING_HUGETLB (1ULL << 3)  /* MISSING faults on hugetlbfs */
#define GMEM_FEAT_MINOR_HUGETLB   (1ULL << 4)  /* MINOR faults on hugetlbfs (5.13+) */
#define GMEM_FEAT_WP              (1ULL << 5)  /* write-protect faults, anonymous (5.7+) */
#define GMEM_FEAT_WP_SHMEM        (1ULL << 6)  /* write-protect on shmem/hugetlbfs (5.19+) */
#define GMEM_FEAT_WP_UNPOPULATED  (1ULL << 7)  /* WP markers on unpopulated ptes (6.4+) */
#define GMEM_FEAT_WP_ASYNC        (1ULL << 8)  /* kernel resolves WP faults itself (6.7+) */
#define GMEM_FEAT_PAGEMAP_SCAN    (1ULL << 9)  /* PAGEMAP_SCAN ioctl on /proc/PID/pagemap (6.7+) */
#define GMEM_FEAT_MOVE            (1ULL << 10) /* UFFDIO_MOVE (6.8+) */
#define GMEM_FEAT_SOFT_DIRTY      (1ULL << 11) /* clear_refs 4 + pagemap bit 55 */
#define GMEM_FEAT_HUGETLB_2M      (1ULL << 12) /* 2 MiB huge pages reserved (nr_hugepages > 0) */

/**
 * gmem_features - Probe what the running kernel offers to gmem.
 * @out: receives a mask of GMEM_FEAT_* bits.
 *
 * Opens a userfaultfd (through /dev/userfaultfd, else the userfaultfd(2)
 * syscall) and asks UFFDIO_API for its features; tries PAGEMAP_SCAN on
 * /proc/self/pagemap; reads /proc/sys/vm/nr_hugepages. The first call
 * probes; later calls return the cached result.
 *
 * Context: any thread; thread-safe.
 * Return: 0; -EPERM when no userfaultfd can be opened (no access to
 *         /dev/userfaultfd and vm.unprivileged_userfaultfd = 0 without
 *         CAP_SYS_PTRACE); -ENOSYS when the kernel has no userfaultfd.
 */
int gmem_features(uint64_t *out);

/**
 * gmem_features_report - Describe the probed features in words.
 * @buf: receives a NUL-terminated, multi-line text ("name: yes|no" lines).
 * @len: bytes available in @buf.
 *
 * Context: any thread; thread-safe.
 * Return: bytes the full text needs, without the NUL, as snprintf(3) (the
 *         text is cut when that is >= @len); or an error of gmem_features().
 */
int gmem_features_report(char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Regions                                                                   */
/* ------------------------------------------------------------------------ */

struct gmem_region;

/*
 * Dirty-log backends (see the dirty log section below). A region's
 * userfaultfd features are fixed when it is created, so the backend a region
 * will use is chosen then: params.dirty_backend.
 */
enum gmem_dirty_backend {
	GMEM_DIRTY_AUTO = 0,       /* the best the kernel offers, in this order: */
	GMEM_DIRTY_WP_ASYNC = 1,   /* UFFD_FEATURE_WP_ASYNC + PAGEMAP_SCAN (6.7+) */
	GMEM_DIRTY_WP_SYNC = 2,    /* UFFDIO_REGISTER_MODE_WP faults, resolved by gmem */
	GMEM_DIRTY_SOFT_DIRTY = 3, /* clear_refs 4 + pagemap bit 55 */
};

/* How a region's memory is backed. */
enum gmem_backing {
	/* A new memfd (memfd_create(2)): shared, other processes map it
	 * through gmem_region_fd(). Faults resolve by filling the page cache
	 * through a second mapping and UFFDIO_CONTINUE (no extra copy). */
	GMEM_BACKING_MEMFD = 0,
	/* Anonymous private memory: this process only. Faults resolve with
	 * UFFDIO_COPY from a staging buffer. */
	GMEM_BACKING_ANON = 1,
	/* An existing shmem or hugetlbfs fd given in params.fd (a hypervisor's
	 * guest-memory memfd), from params.fd_off; behaves as MEMFD. The
	 * region dups the fd; the caller keeps its own. */
	GMEM_BACKING_FD = 2,
};

/*
 * Region flags.
 * GMEM_REGION_MISSING: every page starts MISSING: the range is registered
 *   with userfaultfd (MISSING mode, plus MINOR for fd-backed regions) and
 *   each first touch faults until a page source is attached with
 *   gmem_region_attach(). Without it the region is ordinary memory whose
 *   pages are all PRESENT.
 */
#define GMEM_REGION_MISSING (1U << 0)

/* Page sizes a region may have. 2 MiB needs reserved huge pages
 * (vm.nr_hugepages) and uses hugetlbfs (MFD_HUGETLB / MAP_HUGETLB). */
#define GMEM_PAGE_4K (4096U)
#define GMEM_PAGE_2M (2U << 20)

struct gmem_region_params {
	uint64_t nr_pages;    /* > 0; nr_pages * page_size must not overflow */
	uint32_t page_size;   /* GMEM_PAGE_4K (0 means 4K) or GMEM_PAGE_2M */
	uint32_t backing;     /* enum gmem_backing */
	uint32_t flags;       /* GMEM_REGION_* */
	int32_t fd;           /* GMEM_BACKING_FD only, else ignored */
	uint64_t fd_off;      /* GMEM_BACKING_FD: byte offset, page aligned */
	const char *name;     /* memfd name (debugging); NULL = "gmem" */
	uint32_t dirty_backend; /* enum gmem_dirty_backend: which dirty log the
				 * region's userfaultfd is set up for; 0 = auto */
	uint32_t resv0;
	uint64_t resv[4];     /* must be zero */
};

/**
 * gmem_region_create - Map a new region of guest memory.
 * @p:   parameters; see struct gmem_region_params.
 * @out: receives the region.
 *
 * Maps nr_pages * page_size bytes in one VA range (MAP_SHARED of the memfd,
 * or MAP_PRIVATE|MAP_ANONYMOUS) and opens the region's userfaultfd, whose
 * features are fixed here: all fault modes the backing supports, plus
 * UFFD_FEATURE_WP_ASYNC when @p->dirty_backend asks for it (or is auto and
 * the kernel has it). For GMEM_BACKING_FD the fd must be at least
 * fd_off + size bytes long.
 *
 * Context: any thread.
 * Return: 0; -EINVAL for a zero or overflowing size, a page size other than
 *         4 KiB or 2 MiB, an unaligned fd_off, an unknown backing, flag or
 *         dirty backend, non-zero resv, or an fd too short; -ENOMEM;
 *         -EPERM/-ENOSYS when no userfaultfd can be opened (see
 *         gmem_features()); -EOPNOTSUPP when the kernel lacks a mode the
 *         region needs (MINOR faults on shmem for a MISSING fd-backed region);
 *         -ENOSPC for 2 MiB pages when too few huge pages are reserved.
 */
int gmem_region_create(const struct gmem_region_params *p,
		       struct gmem_region **out);

/**
 * gmem_region_destroy - Unmap a region and release everything it holds.
 * @r: region, or NULL (no-op).
 *
 * Stops the fault engine (gmem_region_detach()) and the dirty log first.
 * Threads blocked in a fault on the region are woken with SIGBUS semantics
 * only if they touch it again after this; do not destroy a region that is
 * still in use. A region from gmem_region_import() is not unmapped in the
 * owner's process.
 *
 * Context: any thread but a fault handler; not concurrently with other calls
 *          on @r.
 */
void gmem_region_destroy(struct gmem_region *r);

/* Accessors. Context: any thread; thread-safe. */
/* Where this process reads and writes the region: the base address for the
 * owner, the importer's own mapping for a region from gmem_region_import(). */
void *gmem_region_addr(const struct gmem_region *r);
uint64_t gmem_region_size(const struct gmem_region *r);     /* bytes */
uint32_t gmem_region_page_size(const struct gmem_region *r); /* bytes */
uint64_t gmem_region_nr_pages(const struct gmem_region *r);
/* The backing fd (memfd/adopted fd), still owned by the region; -EBADF for
 * anonymous regions. Other processes may mmap it MAP_SHARED at offset
 * gmem_region_fd_off(). */
int gmem_region_fd(const struct gmem_region *r);
uint64_t gmem_region_fd_off(const struct gmem_region *r);

/**
 * gmem_region_export - Hand a region to another process (a pager).
 * @r:    region created in this process (not itself imported), fd-backed.
 * @sock: connected AF_UNIX socket.
 *
 * Sends the region's description (base address, sizes, flags) and, with
 * SCM_RIGHTS, its memfd, userfaultfd and this process's /proc/self/pagemap
 * and /proc/self/clear_refs. userfaultfd and pagemap ioctls act on the mm
 * that opened them, so the receiver can resolve this process's faults and
 * read its dirty log (the model of Firecracker's external page-fault
 * handler). Export before a source is attached or tracking starts: page
 * states are not sent.
 * Context: any thread.
 * Return: 0; -EINVAL anonymous or imported region; a negative errno of
 *         sendmsg(2) (-EPIPE peer gone).
 */
int gmem_region_export(const struct gmem_region *r, int sock);

/**
 * gmem_region_import - Receive a region exported by another process.
 * @sock: connected AF_UNIX socket.
 * @out:  receives a region that maps the same memory here; its faults and
 *        dirty log are the owner's, served from this process.
 *
 * Context: any thread.
 * Return: 0; -EPROTO malformed or truncated message, missing fds;
 *         -ECONNRESET peer closed; -ENOMEM; a negative errno of mmap(2).
 */
int gmem_region_import(int sock, struct gmem_region **out);

/**
 * gmem_page_present - Whether a page is PRESENT (installed) in the region.
 * @r:     region.
 * @pgoff: page index, < gmem_region_nr_pages(@r).
 *
 * Context: any thread; a lock-free read of the page-state bitmap, which the
 *          fault engine updates right after each install: a thread woken
 *          from its fault may run before its page reads as present.
 *          gmem_region_detach() joins the handlers, after which the
 *          bitmap is final.
 * Return: true when present; false when missing or @pgoff is out of range.
 */
bool gmem_page_present(const struct gmem_region *r, uint64_t pgoff);

/** gmem_region_nr_present - Number of PRESENT pages. Context: any thread. */
uint64_t gmem_region_nr_present(const struct gmem_region *r);

/* ------------------------------------------------------------------------ */
/* Page sources: where a MISSING page comes from                            */
/* ------------------------------------------------------------------------ */

struct gmem_source;

/**
 * gmem_fill_fn - A caller's page source.
 * @ctx:      the callback's context pointer.
 * @pgoff:    first page index to fill.
 * @nr_pages: pages to fill (>= 1, within the region).
 * @dst:      nr_pages * page_size bytes, page aligned, to fill completely.
 *
 * Called from fault-handler threads, possibly several at once for
 * disjoint ranges. Must not touch the region itself (its pages may be
 * missing: that would deadlock the handler).
 * Return: 0, or a negative errno that fails the fault (the faulting thread
 *         then gets SIGBUS if the region is destroyed; see gmem_region_detach).
 */
typedef int (*gmem_fill_fn)(void *ctx, uint64_t pgoff, uint64_t nr_pages,
			    void *dst);

/** gmem_source_zero - A source of zero-filled pages.
 * Return: 0; -ENOMEM. */
int gmem_source_zero(struct gmem_source **out);

/**
 * gmem_source_file - A source that reads pages from a file or snapshot.
 * @fd:  open file descriptor (dup'ed; the caller keeps its own).
 * @off: byte offset of page 0 in the file; multiple of 4096.
 * @out: receives the source.
 *
 * Reads with pread(2) straight into the page (for fd-backed regions, into
 * the page cache through the region's second mapping). Pages beyond the end
 * of the file read as zeros.
 * Return: 0; -EBADF bad fd; -EINVAL unaligned @off; -ENOMEM.
 */
int gmem_source_file(int fd, uint64_t off, struct gmem_source **out);

/** gmem_source_callback - A source that calls @fn to fill pages.
 * Return: 0; -EINVAL when @fn is NULL; -ENOMEM. */
int gmem_source_callback(gmem_fill_fn fn, void *ctx, struct gmem_source **out);

/**
 * gmem_source_destroy - Release a source.
 * @s: source, or NULL. Must not be attached to a region any more.
 */
void gmem_source_destroy(struct gmem_source *s);

/* ------------------------------------------------------------------------ */
/* The fault engine                                                          */
/* ------------------------------------------------------------------------ */

struct gmem_fault_params {
	uint32_t nr_threads;   /* handler threads, 1..64; 0 = 1 */
	uint32_t fault_around; /* pages installed per fault, a power of two,
				* 1..512; 0 = 16. The window is aligned to
				* its size and clipped to the region; pages of
				* it already present are skipped. */
	uint32_t flags;        /* none yet: 0 */
	uint32_t resv0;
	uint64_t resv[4];      /* must be zero */
};

/**
 * gmem_region_attach - Serve the region's faults from a page source.
 * @r:   region created with GMEM_REGION_MISSING.
 * @src: page source; stays owned by the caller and must outlive the
 *       attachment.
 * @p:   engine parameters, or NULL for the defaults.
 *
 * Starts @p->nr_threads handler threads that read fault events from the
 * region's userfaultfd in batches (up to 64 messages a read), align them to
 * the page size, sort and de-duplicate them, and resolve each with a
 * fault-around run from @src: fd-backed regions fill the page cache through
 * a second mapping and UFFDIO_CONTINUE; anonymous ones use UFFDIO_COPY.
 * Every page is installed exactly once (an atomic claim bit per page);
 * a fault on a page that is already present (-EEXIST) only wakes the waiter.
 *
 * Context: any thread; not concurrently with detach/destroy on @r.
 * Return: 0; -EINVAL region without GMEM_REGION_MISSING, bad params;
 *         -EBUSY a source is already attached; -ENOMEM; -EAGAIN thread
 *         creation failed.
 */
int gmem_region_attach(struct gmem_region *r, struct gmem_source *src,
		       const struct gmem_fault_params *p);

/**
 * gmem_region_detach - Stop serving faults and join the handler threads.
 * @r: region.
 *
 * Pages stay as they are. Threads that fault on a missing page afterwards
 * wait until a source is attached again.
 * Context: any thread but a handler.
 * Return: 0; -ENOENT when no source is attached.
 */
int gmem_region_detach(struct gmem_region *r);

/**
 * gmem_region_fill - Install pages now from the attached source (prefetch).
 * @r:        region with a source attached.
 * @pgoff:    first page.
 * @nr_pages: pages; @pgoff + @nr_pages <= gmem_region_nr_pages(@r).
 *
 * Installs every page of the range that is not yet present, in the calling
 * thread, in runs of up to 512 pages, waking any thread waiting on them.
 * Context: any thread; thread-safe with the handlers (claims are atomic).
 * Return: pages installed by this call (>= 0); -EINVAL range out of bounds;
 *         -ENOENT no source attached; a negative errno of the source.
 */
int64_t gmem_region_fill(struct gmem_region *r, uint64_t pgoff,
			 uint64_t nr_pages);

struct gmem_fault_stats {
	uint64_t faults;          /* fault events read from the userfaultfd */
	uint64_t faults_present;  /* ...that found their page already present */
	uint64_t pages_installed; /* pages installed (by faults or fills) */
	uint64_t installs;        /* UFFDIO_COPY/CONTINUE calls that installed */
	uint64_t eexist;          /* installs the kernel answered -EEXIST */
	uint64_t resolve_ns;      /* handler time spent resolving faults */
	uint64_t errors;          /* faults the source failed to fill */
	uint64_t resv[4];
};

/** gmem_region_fault_stats - Copy the engine's counters.
 * Context: any thread; counters are read one by one (not a snapshot).
 * Return: 0. */
int gmem_region_fault_stats(const struct gmem_region *r,
			    struct gmem_fault_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* GMEM_H */
