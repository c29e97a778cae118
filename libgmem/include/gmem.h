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
 * (0.x) structures may still change between releases. Only gmem_* symbols
 * are exported, all under GMEM_1 (libgmem.map). From 1.0 on, a release adds
 * functions under a new node (GMEM_1.1, ...), grows structs only into their
 * resv fields and never changes what an existing symbol does; an
 * incompatible change bumps the soname (libgmem.so.1). Link with
 * `pkg-config --libs gmem`; gmem(3) is an overview of the API.
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
#define GMEM_FEAT_POISON          (1ULL << 13) /* UFFDIO_POISON (6.6+): a failed post-copy's missing pages raise SIGBUS */

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
/*
 * GMEM_REGION_THP: back a region of 4 KiB pages with transparent huge pages
 *   where hugetlbfs pages are not reserved: MADV_HUGEPAGE on its mappings
 *   (Documentation/admin-guide/mm/transhuge.rst), and fd-backed pages are
 *   filled through the second mapping so that shmem allocates 2 MiB folios.
 *   Needs THP enabled for the backing (/sys/kernel/mm/transparent_hugepage/
 *   enabled for anonymous memory, shmem_enabled for memfds: "always",
 *   "madvise"/"advise" or "within_size"). userfaultfd works on 4 KiB ptes
 *   there: UFFDIO_COPY and UFFDIO_CONTINUE install 4 KiB ptes, so faults,
 *   installs and dirty pages stay 4 KiB (see gmem_dirty_granularity()) and
 *   a page installed by the fault engine is mapped with 4 KiB ptes even when
 *   its page-cache folio is 2 MiB; khugepaged may collapse a fully
 *   installed 2 MiB range later (anonymous memory, no write-protect
 *   tracking). Only for page_size 4 KiB.
 */
#define GMEM_REGION_THP (1U << 1)

/* Page sizes a region may have. 2 MiB needs reserved huge pages
 * (vm.nr_hugepages) and uses hugetlbfs (MFD_HUGETLB / MAP_HUGETLB): reserve
 * N of them with `sysctl vm.nr_hugepages=N` (root), or use GMEM_REGION_THP
 * with 4 KiB pages where none are reserved. */
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
 *         dirty backend, non-zero resv, an fd too short, or GMEM_REGION_THP
 *         with 2 MiB pages; -ENOMEM;
 *         -EPERM/-ENOSYS when no userfaultfd can be opened (see
 *         gmem_features()); -EOPNOTSUPP when the kernel lacks a mode the
 *         region needs (MINOR faults on shmem for a MISSING fd-backed region)
 *         or GMEM_REGION_THP when THP is "never" for the backing;
 *         -ENOSPC for 2 MiB pages when too few huge pages are free
 *         (size / 2 MiB are needed: `sysctl vm.nr_hugepages=N` reserves N).
 */
int gmem_region_create(const struct gmem_region_params *p,
		       struct gmem_region **out);

/**
 * gmem_region_prealloc - Allocate an fd-backed region's memory now.
 * @r: a GMEM_REGION_MISSING region backed by a memfd or an adopted fd
 *     (created, adopted or imported), before gmem_region_attach().
 *
 * MADV_POPULATE_WRITE (Linux 5.14) over the region's second, unregistered
 * mapping of its fd: every page-cache page the region will need is
 * allocated, zeroed and mapped there now (2 MiB folios for a
 * GMEM_REGION_THP region, reserved huge pages for 2 MiB pages). The
 * region's own mapping is untouched, so every page still faults (MINOR
 * instead of MISSING) and still comes from its page source. Installing a
 * page later is then a copy into memory already there, by any number of
 * threads at once, instead of a folio allocated and inserted under the
 * mapping's locks by pwrite(2), which holds the inode's lock for writing:
 * that is what bounds a post-copy push on fast links. Call it on a
 * migration's destination before connecting, so that the cost (the whole
 * region's memory at once, plus its page tables: 2 MiB per GiB; about
 * 0.6-2.8 s per GiB on a 2-core VM) falls before the source freezes the
 * workload, not in post-copy. Pages already in the cache (pre-copied ones)
 * keep their bytes.
 * Context: any thread; serialised with attach/detach by the region's lock.
 * Return: 0; -EINVAL NULL @r, an anonymous or external region, or one
 *         without GMEM_REGION_MISSING, or a kernel without
 *         MADV_POPULATE_WRITE; -EBUSY the fault engine runs; -ENOMEM
 *         memory (or the memfd's size limit) ran out: the pages allocated
 *         stay, installs still work; -EINTR a signal came.
 */
int gmem_region_prealloc(struct gmem_region *r);

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
 * gmem_region_fill_gate - Let the region's bytes be written after the switchover.
 * @r: region created in this process (not imported).
 *
 * For an owner that writes the region only once the workload has paused
 * (a GPU job copying its VRAM into the region by DMA while the destination
 * already runs), so that the freeze need not wait for that copy. Creates
 * the region's fill watermark (a byte offset, in a one-page memfd that
 * gmem_region_export() sends with the region) and sets it to 0: a page
 * server serves, pushes or digests a page only once the watermark has
 * passed its end, and fails (-ETIMEDOUT, "stopped writing") when the mark
 * does not rise for 10 s while pages wait. Over RDMA one-sided reads the
 * source waits for the whole region before the switchover (reads bypass
 * its CPU). Call it again to start over at 0 (a new migration).
 * Context: any thread, before gmem_region_export(); not concurrently with
 *          gmem_region_fill_set() on @r.
 * Return: 0; -EINVAL imported region or NULL; a negative errno of
 *         memfd_create(2)/mmap(2).
 */
int gmem_region_fill_gate(struct gmem_region *r);

/**
 * gmem_region_fill_set - Raise the fill watermark.
 * @r:     region with a fill gate.
 * @bytes: the region's bytes [0, @bytes) are written and may go; at most
 *         gmem_region_size(), which releases the whole region.
 *
 * Writes before the call are visible to the page server's reads after it
 * (a release store). Lowering the mark is allowed only while no page
 * server reads the region.
 * Context: any thread; one writer at a time.
 * Return: 0; -EINVAL no gate, imported region, or @bytes past the end.
 */
int gmem_region_fill_set(struct gmem_region *r, uint64_t bytes);

/* The fill watermark in bytes: gmem_region_size() without a gate.
 * Context: any thread; thread-safe. */
uint64_t gmem_region_filled(const struct gmem_region *r);

/**
 * gmem_region_import - Receive a region exported by another process.
 * @sock: connected AF_UNIX socket.
 * @out:  receives a region that maps the same memory here; its faults and
 *        dirty log are the owner's, served from this process.
 *
 * Context: any thread.
 * Return: 0; -EPROTO malformed or truncated message, missing fds;
 *         -ECONNRESET peer closed; -ENOMEM; a negative errno of mmap(2);
 *         for a GMEM_REGION_THP region, those of its MADV_HUGEPAGE here
 *         (-EOPNOTSUPP THP off for shmem).
 */
int gmem_region_import(int sock, struct gmem_region **out);

/*
 * External handler mode. A VMM that keeps its own guest memory mapping
 * registers it with its own userfaultfd (UFFDIO_REGISTER_MODE_MISSING) and
 * hands the userfaultfd and a list of mappings to a page-fault handler, as
 * Firecracker does for its external handler (the list travels as JSON with
 * the fd by SCM_RIGHTS; gmem-pager --uffd-handler receives it). Each
 * mapping says where a range of the guest memory image lives in the VMM.
 * The field names are Firecracker's GuestRegionUffdMapping.
 */
#define GMEM_UFFD_MAX_MAPPINGS 64

struct gmem_uffd_mapping {
	uint64_t base_host_virt_addr; /* start in the VMM; page aligned */
	uint64_t size;                /* bytes; multiple of page_size, > 0 */
	uint64_t offset;              /* byte offset in the image; aligned */
	uint64_t page_size;           /* bytes: GMEM_PAGE_4K or GMEM_PAGE_2M,
				       * the same for every mapping */
};

/**
 * gmem_region_adopt_uffd - A region of another process's memory, served
 *                          through that process's userfaultfd.
 * @uffd:    the VMM's userfaultfd, API handshake done and every mapping
 *           registered with UFFDIO_REGISTER_MODE_MISSING (dup'ed; the
 *           caller keeps its own). Set to O_NONBLOCK (a flag of the shared
 *           file description).
 * @maps:    @nr_maps mappings; no two share an address or an image page.
 * @nr_maps: 1..GMEM_UFFD_MAX_MAPPINGS.
 * @out:     receives a GMEM_REGION_MISSING region whose page i is byte
 *           i * page_size of the image, wherever a mapping holds it; image
 *           pages no mapping holds start present.
 *
 * Attach a page source (gmem_region_attach()) to serve the VMM's faults:
 * the engine resolves them with UFFDIO_COPY into the VMM's address space
 * (on anonymous memory and on shmem alike), split at mapping ends. The
 * region has no view in this process: gmem_region_addr() is NULL and
 * gmem_region_digest() fails; a remote source therefore needs a list that
 * covers every page of the image. The dirty log needs the VMM's pagemap
 * too (gmem_region_adopt_pagemap()); its backend follows the features the
 * VMM enabled on @uffd (read from its fdinfo): WP_ASYNC, else WP_SYNC, and
 * the mappings need UFFD_FEATURE_WP_HUGETLBFS_SHMEM and
 * UFFD_FEATURE_WP_UNPOPULATED (registered here, from this process). When the VMM exits, its faults
 * stop; installs then fail with -ESRCH (counted in gmem_fault_stats.errors).
 *
 * Context: any thread.
 * Return: 0; -EINVAL empty, too long, misaligned, overlapping or
 *         overflowing list, mixed or unsupported page sizes, NULL @out;
 *         -EBADF @uffd is not an open userfaultfd; -ENOMEM.
 */
int gmem_region_adopt_uffd(int uffd, const struct gmem_uffd_mapping *maps,
			   uint32_t nr_maps, struct gmem_region **out);

/**
 * gmem_region_adopt_pagemap - Give a region of another process that
 *                             process's page tables, for its dirty log.
 * @r:          a region from gmem_region_adopt_uffd().
 * @pagemap_fd: /proc/PID/pagemap of the process whose userfaultfd @r
 *              adopted, opened by that process or one allowed to read it
 *              (dup'ed; the caller keeps its own). That it is the same
 *              process is the caller's word: the fd cannot tell.
 *
 * Afterwards gmem_dirty_start() on @r reads the VMM's writes with
 * PAGEMAP_SCAN (WP_ASYNC backend) through this fd, range by range of the
 * mapping list. Call before gmem_dirty_start().
 * Context: any thread.
 * Return: 0; -EINVAL @r NULL or not from gmem_region_adopt_uffd();
 *         -EBADF @pagemap_fd is not an open /proc/PID/pagemap; -EBUSY @r
 *         has one already; -EMFILE (from dup).
 */
int gmem_region_adopt_pagemap(struct gmem_region *r, int pagemap_fd);

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
 * Return: 0, or a negative errno: the run is left missing and counted in
 *         gmem_fault_stats.errors; the faulting thread keeps waiting until
 *         the page is installed later (another fault's run, or
 *         gmem_region_fill()) or the owner's userfaultfd is closed (the
 *         range is then unregistered and the page reads as zeros).
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

/* The largest values the parameter structures below accept (programs check
 * their options against them before they call the library). */
#define GMEM_MAX_THREADS 64U      /* nr_threads: fault handler threads */
#define GMEM_MAX_FAULT_AROUND 512U /* fault_around: a power of two */
#define GMEM_MAX_BULK 8U          /* nr_bulk: bulk connections */

struct gmem_fault_params {
	uint32_t nr_threads;   /* handler threads, 1..GMEM_MAX_THREADS;
				* 0 = 1 */
	uint32_t fault_around; /* pages installed per fault, a power of two,
				* 1..GMEM_MAX_FAULT_AROUND; 0 = 16. The window is aligned to
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
 *         -EBUSY a source is already attached; -ENOMEM (also: a handler's
 *         staging buffer could not be mapped, or its NUMA policy set: an
 *         error of mbind(2)); -EAGAIN thread creation failed.
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
	uint64_t errors;          /* faults the source failed to fill, and
				   * handler threads that stopped on a
				   * userfaultfd error */
	uint64_t poisoned;        /* pages poisoned when their remote source
				   * failed after the resume (SIGBUS for a
				   * thread that touches one) */
	uint64_t resv[3];
};

/** gmem_region_fault_stats - Copy the engine's counters.
 * Context: any thread; counters are read one by one (not a snapshot).
 * Return: 0. */
int gmem_region_fault_stats(const struct gmem_region *r,
			    struct gmem_fault_stats *out);

/* How long one thread of the workload waited on the region's faults. */
struct gmem_thread_blocktime {
	uint32_t tid;    /* the faulting thread's id (gettid(2) in its own
			  * pid namespace) */
	uint32_t faults; /* waits ended */
	uint64_t ns;     /* sum of its waits: from the handler's read of the
			  * fault to the install (or wake) that ended it */
	uint64_t max_ns; /* its longest wait */
};

/**
 * gmem_region_blocktime - Per-thread time blocked on faults (blocktime).
 * @r:   region.
 * @out: receives up to @max threads, the one that waited longest (@ns)
 *       first; may be NULL when @max is 0.
 *
 * Counts every fault a handler thread read since the first
 * gmem_region_attach() (or sync write-protect dirty log) of @r, by the
 * faulting thread the kernel names (UFFD_FEATURE_THREAD_ID). A wait still
 * going on is not counted yet. On the destination of a migration, every
 * fault comes after the switchover: the time post-copy cost the workload.
 * Context: any thread; a snapshot under the counters' lock.
 * Return: threads that waited at least once (may exceed @max); -EINVAL @r
 *         NULL, or @out NULL with @max > 0; -EOPNOTSUPP the region's
 *         userfaultfd names no threads (an adopted one opened without
 *         UFFD_FEATURE_THREAD_ID); -ENOMEM.
 */
int64_t gmem_region_blocktime(const struct gmem_region *r,
			      struct gmem_thread_blocktime *out, uint64_t max);

/* ------------------------------------------------------------------------ */
/* Dirty log                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * The dirty log reports which pages of a region were written since the
 * previous collect (an epoch), from the kernel's page tables: no driver or
 * writer cooperation. Backends (enum gmem_dirty_backend):
 *
 * WP_ASYNC   userfaultfd write-protect in UFFD_FEATURE_WP_ASYNC mode with
 *            WP_UNPOPULATED, read and re-armed by PAGEMAP_SCAN
 *            (PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, PAGE_IS_WRITTEN)
 *            in one page-table walk; the kernel resolves each first write
 *            itself (Linux 6.7+). Exact: a write lands either before the walk
 *            passes its page (this collect) or after (the next one).
 * WP_SYNC    UFFDIO_REGISTER_MODE_WP faults; the fault engine's threads record
 *            the page and un-protect it (one fault round trip per page per
 *            epoch; Linux 5.7+, shmem 5.19+). Exact as WP_ASYNC. Pages a page
 *            source installs while tracking count as written.
 * SOFT_DIRTY clear_refs 4 and pagemap bit 55 (CONFIG_MEM_SOFT_DIRTY).
 *            clear_refs acts on the owner's whole process and cannot be
 *            atomic with the read: a write racing with gmem_dirty_collect()
 *            can be lost, so it is exact only while writers are paused across
 *            the collect (the frozen final round). False positives: pages
 *            the kernel re-maps (THP split, mremap, VMA merges) and pages
 *            installed by a page source.
 *
 * Which writers each backend sees: every backend reads the page tables of
 * the process that owns the region (the creator; for a region from
 * gmem_region_import(), the exporter), so it sees every write through the
 * region's own mapping by any thread of that process, and writes the kernel
 * makes through it on that process's behalf (read(2) into the region, a
 * device fault through kmod-shim), which fault the page writable. No backend
 * sees writes through another mapping of the same memory: another process's
 * mmap of the memfd, the region's fill alias, write(2) to the memfd, or DMA
 * into pages pinned before the epoch. Cover other processes as peers: one
 * creates a region on the fd (GMEM_BACKING_FD) and exports it
 * (gmem_region_export()); the tracker imports it and links it with
 * gmem_dirty_add_peer(); collect then merges its writes. Pages installed by
 * the fault engine are reported as written by every backend (their pte is
 * new and writable).
 *
 * The kernel forgets that a page was written if its pte is zapped before the
 * collect (MADV_DONTNEED, hole punch, shmem swap-out): do not discard pages
 * of a tracked region.
 */

struct gmem_dirty_params {
	uint32_t backend;  /* enum gmem_dirty_backend; AUTO = the region's */
	uint32_t flags;    /* none yet: 0 */
	uint64_t pgoff;    /* first page tracked */
	uint64_t nr_pages; /* pages tracked; 0 = from @pgoff to the end */
	uint64_t resv[4];  /* must be zero */
};

/**
 * gmem_dirty_start - Start logging the writes to a region (and its peers).
 * @r: region (not a peer of another region).
 * @p: backend and page range, or NULL for the whole region and AUTO.
 *
 * A region's userfaultfd features are fixed by gmem_region_create():
 * AUTO picks what @r was created for (params.dirty_backend; AUTO there means
 * WP_ASYNC when the kernel has it, else WP_SYNC, else SOFT_DIRTY). WP_ASYNC
 * needs a region created with AUTO or WP_ASYNC on a kernel with it; WP_SYNC a
 * region created with WP_SYNC (an async userfaultfd never delivers WP
 * faults); SOFT_DIRTY works on any region. Peers linked with
 * gmem_dirty_add_peer() start too, over the same range, with the same
 * backend (AUTO: each its own). WP backends add UFFDIO_REGISTER_MODE_WP to
 * the region's registration (its MISSING/MINOR modes stay) and write-protect
 * the range, unpopulated pages included; WP_SYNC also takes the fault
 * engine's reader threads (gmem_region_attach()'s, or one of its own).
 * Writes before the call returns may or may not be reported.
 *
 * Context: any thread but a fault handler; serialised with the region's
 *          other calls by its lock.
 * Return: 0; -EINVAL bad @p (non-zero resv or flags, unknown backend, range
 *         outside the region), or a backend the region was not created for
 *         (also for a peer); -EBUSY already tracking, or @r is a peer;
 *         -EOPNOTSUPP the kernel lacks the backend (no PAGEMAP_SCAN, no WP on
 *         shmem or on unpopulated anonymous pages, no soft-dirty), or @r
 *         is from gmem_region_adopt_uffd() without the VMM's pagemap
 *         (gmem_region_adopt_pagemap()); -ENOMEM; a negative errno of
 *         UFFDIO_REGISTER/UFFDIO_WRITEPROTECT/clear_refs.
 */
int gmem_dirty_start(struct gmem_region *r, const struct gmem_dirty_params *p);

/* A run of dirty pages: [pgoff, pgoff + nr_pages). */
struct gmem_dirty_run {
	uint64_t pgoff;
	uint64_t nr_pages;
};

/* gmem_dirty_result.flags: @runs was too short (see gmem_dirty_collect). */
#define GMEM_DIRTY_RUNS_FULL (1U << 0)

struct gmem_dirty_result {
	/* in: where to report; at least one of @bitmap and @runs */
	uint64_t *bitmap; /* NULL, or gmem_dirty_bitmap_words() words: bit
			   * i % 64 of word i / 64 = page i of the region */
	struct gmem_dirty_run *runs; /* NULL, or @max_runs entries */
	uint64_t max_runs;
	/* out */
	uint64_t nr_runs;  /* entries of @runs filled, ascending */
	uint64_t nr_pages; /* dirty pages reported (the return value) */
	uint64_t epoch;    /* this collect's number: 1, 2, ... since start */
	uint64_t scan_ns;  /* time in the kernel scan + re-arm, all peers */
	uint32_t flags;    /* GMEM_DIRTY_RUNS_FULL */
	uint32_t resv0;    /* must be zero */
	uint64_t resv[4];  /* must be zero */
};

/**
 * gmem_dirty_collect - Report the pages written since the last collect and
 *                      re-arm them, atomically.
 * @r:   region being tracked (gmem_dirty_start()).
 * @res: output buffers in, results out.
 *
 * Harvests the region's backend and then each peer's, merges them and
 * reports every dirty page once: into @res->bitmap (all of them; it is
 * overwritten) and, in ascending runs, into @res->runs while they last
 * (GMEM_DIRTY_RUNS_FULL when they ran out). Without a bitmap, pages that
 * did not fit in @res->runs stay pending and are reported by the next
 * collect: nothing is ever dropped. Re-arming is atomic per page (WP
 * backends): a write completed before this call starts is reported by it; a
 * write made during the call is reported by it or by the next one. The
 * bitmap format is gmem_server_send_pages()'s.
 *
 * Context: any thread but a fault handler; serialised with the region's
 *          other calls. Each collect is one epoch.
 * Return: pages reported (>= 0); -EINVAL @res malformed (no buffer,
 *         @max_runs 0 with @runs, non-zero resv) or @r not tracking
 *         (collect without start); -EBUSY @r is a peer (collect its
 *         leader); a negative errno of PAGEMAP_SCAN, UFFDIO_WRITEPROTECT,
 *         pread(2) or clear_refs (what was harvested stays pending).
 */
int64_t gmem_dirty_collect(struct gmem_region *r, struct gmem_dirty_result *res);

/**
 * gmem_dirty_stop - Stop logging; un-protect the range; drop what is pending.
 * @r: region being tracked, and with it its peers.
 *
 * Context: any thread but a fault handler.
 * Return: 0; -EINVAL not tracking; -EBUSY @r is a peer; the first negative
 *         errno of the teardown (which goes on after an error).
 */
int gmem_dirty_stop(struct gmem_region *r);

/**
 * gmem_dirty_add_peer - Merge another process's writes into @r's dirty log.
 * @r:    the tracking region (a leader): not tracking yet, not a peer.
 * @peer: a region from gmem_region_import() that maps the same memory in
 *        the writer process: the same file (same device and inode) at the
 *        same offset, the same page size and page count. The writer creates
 *        it with GMEM_BACKING_FD on the memfd and must not run its own fault
 *        engine on it while WP_SYNC tracks it (the engine here reads its
 *        userfaultfd).
 *
 * gmem_dirty_start() on @r then arms @peer too and gmem_dirty_collect() on
 * @r merges its dirty pages. @peer stays owned by the caller; destroying it
 * unlinks it (gmem_region_destroy()); destroying @r unlinks every peer.
 * Context: any thread; not concurrently with calls on @peer.
 * Return: 0; -EINVAL NULL, @r == @peer, not the same memory or not
 *         fd-backed; -EBUSY @r is tracking or is a peer, or @peer is
 *         tracking, a leader or already linked; -ENOMEM.
 */
int gmem_dirty_add_peer(struct gmem_region *r, struct gmem_region *peer);

/**
 * gmem_dirty_remove_peer - Unlink a peer; stops tracking it if needed.
 * @r:    the leader.
 * @peer: a region linked by gmem_dirty_add_peer(); its writes since the last
 *        collect are not reported.
 * Context: any thread.
 * Return: 0; -EINVAL NULL; -ENOENT not a peer of @r; a negative errno of
 *         its backend's stop.
 */
int gmem_dirty_remove_peer(struct gmem_region *r, struct gmem_region *peer);

/**
 * gmem_dirty_backend - The backend a tracking region runs.
 * @r: region.
 * Context: any thread.
 * Return: enum gmem_dirty_backend (> 0); -EINVAL not tracking.
 */
int gmem_dirty_backend(const struct gmem_region *r);

/** gmem_dirty_backend_name - "auto", "wp-async", "wp-sync", "soft-dirty",
 * or "unknown". Context: any thread. */
const char *gmem_dirty_backend_name(enum gmem_dirty_backend b);

/**
 * gmem_dirty_granularity - The unit, in bytes, in which writes to @r are
 *                          reported by its dirty log.
 * @r: region; tracking or not (then: the backend gmem_dirty_start() with
 *     AUTO would pick).
 *
 * 4096 for regions of 4 KiB pages, THP ones included: write-protection is
 * per pte; the kernel splits an anonymous 2 MiB mapping into ptes on its
 * first write while it is write-protected, and maps shmem with ptes while
 * write-protect is armed (WP_ASYNC, WP_SYNC). 2 MiB (a run of
 * 512 pages is reported) for a GMEM_REGION_THP region with SOFT_DIRTY,
 * whose soft-dirty bit a 2 MiB mapping keeps in its one PMD; and for
 * hugetlbfs regions (2 MiB pages), whose huge pages the kernel never maps
 * with smaller ptes: every backend reports a whole 2 MiB page.
 * Context: any thread.
 * Return: bytes (4096 or 2097152).
 */
uint32_t gmem_dirty_granularity(const struct gmem_region *r);

/** gmem_dirty_bitmap_words - uint64_t words a dirty bitmap of @r needs:
 * (nr_pages + 63) / 64. Context: any thread. */
uint64_t gmem_dirty_bitmap_words(const struct gmem_region *r);

/* ------------------------------------------------------------------------ */
/* Page server and remote source (post-copy paging over a transport)        */
/* ------------------------------------------------------------------------ */

/*
 * A page server (struct gmem_server) serves one region, page by page, to one
 * destination (struct gmem_remote) over TCP (io_uring), with the protocol of
 * libgmem/wire/PROTOCOL.md: one control connection that carries urgent requests and
 * their pages (so they never queue behind bulk data) and 1..8 bulk
 * connections for pre-copy pages and the background push.
 *
 * A migration runs, in this order (QEMU's post-copy, with optional pre-copy
 * rounds before the switchover):
 *   server                               destination
 *   gmem_server_listen/_accept     <->   gmem_remote_connect
 *   gmem_server_send_pages (0..n)   ->   gmem_remote_precopy (receives them
 *   gmem_server_send_state          ->     into the page cache until STATE)
 *                                        gmem_remote_source + region attach
 *   gmem_server_push_first (0..16)   (the working set, to push first)
 *   gmem_server_serve              <->   faults: urgent requests; every page
 *     (urgent replies first, then          not yet valid: background push
 *      the push: working set first,
 *      the rest in address order)        gmem_remote_wait: all present, per-
 *     returns after the digest check  <-    page digests compared, DONE
 * A plain page server (gmem-pager) calls gmem_server_serve() right after
 * accepting: it sends an empty state itself.
 */
struct gmem_server;
struct gmem_remote;

/* Counters of either end. Server: pages sent; destination: pages received
 * and, for urgent/pushed, installed by this source. */
struct gmem_remote_stats {
	uint64_t urgent_pages;  /* installed from answers to urgent requests */
	uint64_t pushed_pages;  /* installed from the background push */
	uint64_t precopy_pages; /* pre-copy pages (a page sent twice counts 2) */
	uint64_t local_pages;   /* destination: valid pre-copy pages installed
				 * with no network (UFFDIO_CONTINUE only) */
	uint64_t dropped_pages; /* arrived for a page already claimed */
	uint64_t requests;      /* urgent requests (REQ frames) */
	uint64_t bytes;         /* payload bytes of page frames */
	uint64_t mismatches;    /* pages whose digests differed at completion */
	uint64_t recoveries;    /* post-copy pauses recovered from (new
				 * connection sets taken back) */
	uint64_t paused_ns;     /* time spent paused, recovered or not */
	uint64_t prefetched_pages; /* installed from fault-around answers: the
				    * pages around a fault, asked for as a hint
				    * and sent on the fault-around connection */
	uint64_t hot_pages;     /* server: pushed pages of the working set
				 * (gmem_server_push_first()), pushed before
				 * the rest; also counted in @pushed_pages */
	uint64_t resv[4];
};

/**
 * gmem_server_listen - Listen for a destination of a region.
 * @r:    region to serve: its pages are read through its own mapping (the
 *        importer's for a region from gmem_region_import()), never faulted:
 *        every page must be present (a region without GMEM_REGION_MISSING,
 *        or an fd-backed one, whose missing pages read as zeros).
 * @addr: "host:port", "[v6addr]:port" or "*:port"; port 0 picks a free port
 *        (see gmem_server_port()).
 * @out:  receives the server. @r must outlive it.
 *
 * Context: any thread. The server is then driven by one thread at a time.
 * Return: 0; -EINVAL bad address or region; -EHOSTUNREACH unknown host;
 *         -EADDRINUSE; -ENOMEM; a negative errno of socket(2)/bind(2).
 */
int gmem_server_listen(struct gmem_region *r, const char *addr,
		       struct gmem_server **out);

/** gmem_server_port - The TCP port the server listens on (host order). */
uint16_t gmem_server_port(const struct gmem_server *s);

/**
 * gmem_server_accept - Accept the destination's connections.
 * @s:       server from gmem_server_listen().
 * @wait_ms: how long to wait for the control connection, then for each bulk
 *           connection; -1 = forever.
 *
 * Accepts the control connection, checks its HELLO (protocol version,
 * checksums), answers with the region's geometry and a session id, then
 * accepts as many bulk connections as the destination announced, each of
 * which must name the session. The listening socket is closed afterwards.
 * With a key (gmem_server_set_key()) every connection must also pass the
 * AUTH exchange before anything else moves on it. A peer that fails it, or
 * sends a malformed or foreign HELLO, is dropped and the wait goes on until
 * @wait_ms is over, so a stranger cannot end a migration by connecting
 * first; only then is that refusal returned.
 * Context: the server's thread.
 * Return: 0; -ETIMEDOUT nobody came; -EPROTO only peers with a malformed or
 *         foreign HELLO came (see gmem_server_error()); -EACCES only peers
 *         with another key or none came; -EALREADY already accepted;
 *         -ENOMEM.
 */
int gmem_server_accept(struct gmem_server *s, int wait_ms);

/**
 * gmem_server_set_key - Require a pre-shared key, and encrypt with it.
 * @s:   server from gmem_server_listen(), not yet accepted.
 * @key: the key's bytes (any bytes; copied, wiped at destroy).
 * @len: 16..256 bytes.
 *
 * After HELLO, each connection then runs the AUTH exchange of
 * libgmem/wire/PROTOCOL.md: an HMAC-SHA256 challenge each way (libsodium) over
 * random nonces, the session and the connection's role, so a peer without
 * the key can neither take pages nor send any, and a recorded exchange
 * cannot be replayed. Every frame after it, both ways on every TCP
 * connection, is then encrypted and authenticated (AES-256-GCM where both
 * CPUs have AES-NI, else XChaCha20-Poly1305; keys derived per connection
 * and direction from the key and the exchange's fresh nonces): pages
 * cannot be read or changed on the path, and a frame changed, replayed,
 * reordered or cut fails its connection with -EBADMSG and installs
 * nothing, which post-copy recovery takes as a broken link (this server
 * keeps every page). A destination that does not encrypt is refused
 * (-EACCES). Frame headers (type, page offsets, lengths) stay readable;
 * RDMA reads (gmem_server_offer_rdma()) are not encrypted.
 * Without a key any destination is served, in the clear.
 * Context: the server's thread.
 * Return: 0; -EINVAL @key NULL or @len out of range; -EALREADY accepted
 *         already; -ENOSYS libsodium failed to initialise.
 */
int gmem_server_set_key(struct gmem_server *s, const void *key, size_t len);

/**
 * gmem_server_set_recover - Wait for a destination that lost its link.
 * @s:          server from gmem_server_listen(), not yet accepted.
 * @recover_ms: how long gmem_server_serve() waits, after a connection of
 *              the session fails (reset, end of stream, failed send,
 *              @wait_ms of silence), for the same destination to come back
 *              with a new connection set; 0 = never wait (fail at once, the
 *              default); -1 = forever.
 *
 * Post-copy recovery, after QEMU's postcopy-recover: the listening socket
 * stays open after gmem_server_accept(). When the link breaks after the
 * switchover, the server stops its pushers, closes every connection, keeps
 * every page, and accepts a connection set whose control HELLO resumes this
 * session (libgmem/wire/PROTOCOL.md, PROTO_FEAT_RESUME; with a key it must pass
 * AUTH as before); any other destination is refused and the wait goes on.
 * The push then starts over from the destination's new NEED. A destination
 * that reconnects while the old connections still look alive ends them too.
 * Context: the server's thread.
 * Return: 0; -EINVAL @recover_ms < -1; -EALREADY accepted already.
 */
int gmem_server_set_recover(struct gmem_server *s, int recover_ms);

/**
 * gmem_server_send_pages - Send a set of pages now (a pre-copy round).
 * @s:        server with an accepted destination, before
 *            gmem_server_send_state().
 * @bitmap:   bit i (word i / 64, bit i % 64) set = send page i; the format
 *            of the dirty log's collect.
 * @nr_pages: bits in @bitmap; <= the region's page count.
 *
 * Copies each run of pages into a registered buffer (so a page written
 * meanwhile is sent whole, as it was at copy time), checksums it and sends
 * it over the bulk connections. The workload may keep running: a page it
 * writes afterwards must be sent again or marked stale at switchover.
 * Context: the server's thread; returns once every page is handed to the
 *          kernel (the destination may still be receiving).
 * Return: pages sent (>= 0); -EINVAL bad arguments; -EALREADY state already
 *         sent; -ENOTCONN no destination; -ECONNRESET/-EPROTO the
 *         destination went away or misbehaved.
 */
int64_t gmem_server_send_pages(struct gmem_server *s, const uint64_t *bitmap,
			       uint64_t nr_pages);

/**
 * gmem_server_send_state - Switchover: send the device state and stale map.
 * @s:        server, pre-copy done.
 * @blob:     opaque device state (may be NULL when @len is 0).
 * @len:      bytes of @blob, <= 65536.
 * @stale:    bitmap of pages sent in pre-copy that changed since (they are
 *            fetched again); NULL = none.
 * @nr_pages: bits in @stale; <= the region's page count.
 *
 * Ends the pre-copy phase: the destination's gmem_remote_precopy() returns
 * once it has this and every pre-copy page sent before it.
 * Context: the server's thread.
 * Return: 0; -EINVAL @len or @nr_pages too large; -EALREADY sent already;
 *         -ENOTCONN; -ECONNRESET.
 */
int gmem_server_send_state(struct gmem_server *s, const void *blob,
			   size_t len, const uint64_t *stale,
			   uint64_t nr_pages);

/**
 * gmem_server_push_first - Name pages the background push sends first.
 * @s:        server, before gmem_server_serve().
 * @bitmap:   bit i (word i / 64, bit i % 64) set = page i; the dirty log's
 *            format (typically the pages written in one epoch); copied.
 * @nr_pages: bits in @bitmap; <= the region's page count.
 *
 * Each call adds a tier after those of earlier calls: the push sends the
 * needed pages of the first tier, in address order, then those of the
 * next, and only then the other needed pages, in address order. So a
 * destination that resumed the workload finds its working set in place
 * sooner. Only the order changes: every needed page is still sent, and
 * urgent requests still go before the push.
 * Context: the server's thread.
 * Return: 0; -EINVAL @bitmap NULL or @nr_pages too large; -ENOSPC 16
 *         tiers already; -EALREADY the push is running; -ENOMEM.
 */
int gmem_server_push_first(struct gmem_server *s, const uint64_t *bitmap,
			   uint64_t nr_pages);

/**
 * gmem_server_serve - Serve post-copy until the destination completes.
 * @s:       server with an accepted destination.
 * @wait_ms: gives up after this long without any frame from the
 *           destination; -1 = never.
 *
 * Sends an empty state first if gmem_server_send_state() was not called.
 * Then answers urgent requests on the control connection, always before
 * the background push, which streams every page the destination said it
 * needs over the bulk connections: the tiers of gmem_server_push_first()
 * first, then the rest in address order. Returns when the
 * destination reports completion (after comparing per-page digests, which
 * this side computes on request); the source may drop its copy only then.
 * Context: the server's thread.
 * With gmem_server_set_recover(), a broken link pauses instead of failing
 * (stats.recoveries, stats.paused_ns count the pauses).
 * Context: the server's thread.
 * Return: 0 destination complete, digests equal; -EIO digests differed
 *         (count in stats.mismatches); -ECONNRESET destination vanished;
 *         -EPROTO malformed frame (gmem_server_error() says which);
 *         -EBADMSG with a key, a frame failed authentication (changed,
 *         replayed, cut on the path; a broken link to recovery);
 *         -ETIMEDOUT destination silent, or it did not come back within the
 *         recovery time ("destination did not come back within N ms"; every
 *         page is kept); -ENOTCONN.
 */
int gmem_server_serve(struct gmem_server *s, int wait_ms);

/**
 * gmem_server_offer_rdma - Offer the destination one-sided RDMA reads.
 * @s:    server from gmem_server_listen(), before gmem_server_accept().
 * @addr: the "host:port" given to gmem_server_listen(); host must be the
 *        address of an RDMA device's interface (not "*"): rdma_cm finds the
 *        device by it. The port is gmem_server_port() (rdma_cm has its own
 *        port space).
 *
 * Listens with librdmacm on the same address, checks that the device's
 * port is active and registers the whole region (pinned) for remote read
 * with libibverbs; the key and address go to a destination that asks for
 * RDMA (GMEM_REMOTE_RDMA) in the server's HELLO, and the destination then
 * reads every page itself with RDMA READs: this server sends no pages and
 * only answers the digest check. A destination that does not ask gets TCP.
 * Context: the server's thread.
 * Return: 0; -EINVAL bad address, already offered or accepted;
 *         -EOPNOTSUPP built without libibverbs/librdmacm; -ENODEV no RDMA
 *         device (serves the address); -ENETDOWN the device's port is not
 *         active; -EHOSTUNREACH unknown host; a negative errno of
 *         rdma_bind_addr(3)/ibv_reg_mr(3) (-ENOMEM or -EPERM: RLIMIT_MEMLOCK).
 *         gmem_server_error() names the device and the failed operation.
 */
int gmem_server_offer_rdma(struct gmem_server *s, const char *addr);

/**
 * gmem_server_transport - What the server moves pages with: "tcp", or
 * "rdma DEVICE port N" once RDMA is offered (with " (offered; destination
 * uses tcp)" when an accepted destination did not take it). Valid until the
 * next call on @s. Context: the server's thread.
 */
const char *gmem_server_transport(const struct gmem_server *s);

/**
 * gmem_rdma_devices - RDMA devices on this host (libibverbs'
 * ibv_get_device_list(3)).
 * Context: any thread.
 * Return: devices (>= 0); -EOPNOTSUPP built without libibverbs/librdmacm.
 */
int gmem_rdma_devices(void);

/** gmem_server_stats - Copy the server's counters. Return: 0. */
int gmem_server_stats(const struct gmem_server *s,
		      struct gmem_remote_stats *out);

/** gmem_server_error - Text of the last error ("" if none); valid until
 * the next call on @s. */
const char *gmem_server_error(const struct gmem_server *s);

/** gmem_server_destroy - Close every connection and free the server.
 * @s: server, or NULL. */
void gmem_server_destroy(struct gmem_server *s);

/*
 * Remote flags.
 * GMEM_REMOTE_ON_DEMAND: no background push: pages come only when faulted
 *   (or valid from pre-copy). gmem_remote_wait() then completes only once
 *   every page was touched; meant for lazy restores and for measuring the
 *   remote fault path alone.
 */
#define GMEM_REMOTE_ON_DEMAND (1U << 0)
/*
 * GMEM_REMOTE_RDMA: pages come by one-sided RDMA READs (libibverbs RC queue
 *   pairs set up with librdmacm at the server's address and port) of the
 *   region the server registered (gmem_server_offer_rdma()): one queue pair
 *   for urgent reads of faulted runs, one for the background push, a
 *   pipeline of 256 KiB reads in address order. Fd-backed regions are read
 *   straight into their page cache and resolved with UFFDIO_CONTINUE;
 *   anonymous ones through registered staging buffers and UFFDIO_COPY.
 *   Pins the whole destination region (fd-backed) while connected. The
 *   control connection (state, digests, DONE) stays TCP.
 */
#define GMEM_REMOTE_RDMA (1U << 1)

struct gmem_remote_params {
	uint32_t nr_bulk;    /* bulk connections, 1..GMEM_MAX_BULK; 0 = 1 */
	uint32_t flags;      /* GMEM_REMOTE_* */
	int32_t connect_ms;  /* connect + handshake limit; 0 = 10000 ms,
			      * -1 = forever; refused connects are retried */
	uint32_t key_len;    /* bytes of @key, 16..256; 0 = no key */
	const void *key;     /* pre-shared key: the server must prove it
			      * (AUTH), and every frame is encrypted with
			      * it (gmem_server_set_key()); copied */
	int32_t recover_ms;  /* post-copy recovery (gmem_remote_recover()):
			      * how long to try to reconnect after a broken
			      * link; 0 = never (fail at once); -1 = forever */
	/* The region the pages are for, where it exists already (a
	 * migration's destination): a server of another page size or page
	 * count is refused at its first HELLO (-EINVAL, both geometries in
	 * gmem_remote_error()), before any other connection opens, so that
	 * it sees the session fail before it began. 0 and 0: any. */
	uint32_t expect_page_size; /* bytes */
	uint64_t expect_nr_pages;
	uint64_t resv[1];    /* must be zero */
};

/**
 * gmem_remote_connect - Connect to a page server.
 * @addr: "host:port" of gmem_server_listen()/gmem-pager.
 * @p:    parameters, or NULL for the defaults.
 * @out:  receives the remote end.
 *
 * Opens the control connection and the bulk ones, exchanges HELLO and
 * learns the served region's geometry (gmem_remote_page_size(),
 * gmem_remote_nr_pages()), so that a matching region can be created.
 * Over TCP, where the server agrees (libgmem/wire/PROTOCOL.md, feature bit 5), one
 * more connection carries the pages of each fault-around run other than
 * the faulting page, so that an urgent answer never waits behind them
 * (counted in gmem_remote_stats.prefetched_pages). Both ends of the
 * control connection set SO_PRIORITY TC_PRIO_INTERACTIVE (socket(7),
 * tc-prio(8)): urgent requests and answers leave the host's priority
 * queueing ahead of the push.
 * With a key, every connection also runs the AUTH exchange and a server that
 * cannot prove the same key (or offers no AUTH, or does not encrypt) is
 * refused before any page moves; every frame after it is encrypted and
 * authenticated as gmem_server_set_key() describes, and a frame that fails
 * fails its connection with -EBADMSG (a broken link: with @recover_ms the
 * session pauses and reconnects, else it fails) and installs nothing.
 * On failure *@out is NULL when the arguments are refused or the local
 * set-up fails (-EINVAL, -ENOMEM, an io_uring error); once connecting has
 * begun it is the failed remote end, kept so that gmem_remote_error() can
 * say why (the server's refusal, the bad HELLO, the RDMA device and
 * operation): destroy it with gmem_remote_destroy() (NULL is fine too).
 * Context: any thread.
 * Return: 0; -EINVAL bad address, unknown flag, non-zero resv,
 *         nr_bulk > GMEM_MAX_BULK, key_len out of range, only one of
 *         expect_page_size and expect_nr_pages, or a server of another
 *         geometry than they say (its remote end kept, as below);
 *         -ENOSYS libsodium failed to initialise (with a key);
 *         -ECONNREFUSED/-ETIMEDOUT/-EHOSTUNREACH; -EPROTO bad HELLO; -EACCES authentication failed
 *         either way (gmem_remote_error() says which); -ENOMEM.
 *         With GMEM_REMOTE_RDMA also: -EPROTONOSUPPORT the server offers no
 *         RDMA; -EOPNOTSUPP built without it; -ENODEV no RDMA device;
 *         -ENETDOWN port not active; gmem_remote_error() names the device
 *         and the failed operation. Once connected, a read that completes
 *         in error (peer gone: QP flushed) fails the session with -EIO or
 *         -ECONNRESET and installs nothing of it.
 */
int gmem_remote_connect(const char *addr, const struct gmem_remote_params *p,
			struct gmem_remote **out);

/** gmem_remote_transport - "tcp", or "rdma DEVICE port N" (GMEM_REMOTE_RDMA).
 * Valid while @rm lives. Context: any thread. */
const char *gmem_remote_transport(const struct gmem_remote *rm);

/* Geometry of the served region, from the server's HELLO. */
uint32_t gmem_remote_page_size(const struct gmem_remote *rm);
uint64_t gmem_remote_nr_pages(const struct gmem_remote *rm);

/**
 * gmem_remote_precopy - Receive pre-copy pages until the switchover state.
 * @rm:      remote end from gmem_remote_connect().
 * @r:       destination region: same page size and count as the server's,
 *           created with GMEM_REGION_MISSING, no source attached.
 * @wait_ms: limit for the whole phase; -1 = none.
 *
 * Writes each pre-copy page into @r's page cache (fd-backed regions)
 * without installing it: the workload is paused, a page may come several
 * times and the last copy wins. Returns once the device state has come with
 * every pre-copy page sent before it. Pages received and not stale are then
 * valid: a fault on one installs it with no network. A region of another
 * process (gmem_region_adopt_uffd()) has no page cache here: its pre-copy
 * pages are installed as they come (UFFDIO_COPY), each page once, as
 * stop-and-copy sends them; a page sent again fails the session. Must be
 * called once, before gmem_remote_source(); with a plain page server it
 * returns at once.
 * Context: any thread.
 * Return: pre-copy pages received (>= 0); -EINVAL geometry mismatch;
 *         -EOPNOTSUPP pre-copy pages for an anonymous region, or a page
 *         sent twice to another process's region; -ETIMEDOUT;
 *         -ECONNRESET; -EPROTO.
 */
int64_t gmem_remote_precopy(struct gmem_remote *rm, struct gmem_region *r,
			    int wait_ms);

/**
 * gmem_remote_state - Copy the device state received at switchover.
 * @buf: receives min(@len, state length) bytes; may be NULL if @len is 0.
 * Return: the state's length (>= 0); -EAGAIN before gmem_remote_precopy().
 */
int gmem_remote_state(const struct gmem_remote *rm, void *buf, size_t len);

/**
 * gmem_remote_source - The page source that pages the region in remotely.
 * @rm:  remote end, after gmem_remote_precopy().
 * @out: receives a source to pass to gmem_region_attach() with the region
 *       given to gmem_remote_precopy(); destroy it before @rm.
 *
 * Once attached, a fault on a valid page installs it at once; a fault on
 * any other page sends an urgent request for the fault-around run (pages
 * already claimed or requested are left out) from the handler thread,
 * without waiting. A receive thread installs arriving pages exactly once
 * (a page that was claimed meanwhile is dropped), while the server pushes
 * every page not valid in address order. Fd-backed regions are filled
 * through the page cache and UFFDIO_CONTINUE, anonymous ones with
 * UFFDIO_COPY straight from the receive buffer.
 * When the session fails after this (no recover_ms, or none within it),
 * the pages still missing can no longer come: each is poisoned
 * (UFFDIO_POISON, Linux 6.6+, GMEM_FEAT_POISON; counted in
 * gmem_fault_stats.poisoned), so a thread that waits on one, or touches
 * one later, gets SIGBUS instead of waiting for ever; pages that came keep
 * their bytes. Without UFFDIO_POISON those threads keep waiting.
 * Return: 0; -EINVAL no gmem_remote_precopy() yet; -EBUSY source exists;
 *         -ENOMEM.
 */
int gmem_remote_source(struct gmem_remote *rm, struct gmem_source **out);

/**
 * gmem_remote_wait - Wait until every page is present and verified.
 * @rm:      remote end whose source is attached.
 * @wait_ms: limit; -1 = none.
 *
 * When every page of the region is present, asks the server for its
 * per-page digests (XXH3-64), compares them with gmem_region_digest() of
 * the local pages, and reports the result (DONE), after which the server
 * may release its copy.
 * Context: any thread.
 * Return: 0 complete and equal; -EIO pages differ (gmem_remote_mismatches());
 *         -ETIMEDOUT; -ECONNRESET server vanished; -EPROTO malformed frame
 *         (gmem_remote_error()); -EBADMSG with a key, a frame failed
 *         authentication (nothing of it installed); -ETIMEDOUT also when the server did not
 *         come back within recover_ms. Pages installed before an error stay.
 */
int gmem_remote_wait(struct gmem_remote *rm, int wait_ms);

/**
 * gmem_remote_recover - Reconnect to another address after a broken link.
 * @rm:   remote end connected with a non-zero recover_ms.
 * @addr: "host:port" of the same page server (session), e.g. reachable by
 *        another route; at most 255 bytes; copied.
 *
 * Post-copy recovery, after QEMU's postcopy-recover: when a connection
 * fails (reset, end of stream, failed send) during post-copy or the digest
 * check, the session pauses instead of failing. Faulting threads keep
 * waiting (their pages are remembered, not failed); frames half-received
 * are dropped; the receive thread stops the bulk threads and reconnects,
 * with a backoff of 50 ms doubling to 1 s, until recover_ms has passed:
 * new control and bulk connections whose HELLO resumes the session (and
 * AUTH, with a key), then NEED for every page neither present nor valid
 * and urgent requests for every page requested and not present. Pages that
 * come twice are dropped by the install claim; the digest check is
 * unchanged. This call changes where the next attempt goes (by default the
 * address given to gmem_remote_connect()); it never waits.
 * Context: any thread.
 * Return: 0; -EINVAL @addr NULL or too long; -EOPNOTSUPP recover_ms was 0;
 *         -ESHUTDOWN the session has ended (done or failed).
 */
int gmem_remote_recover(struct gmem_remote *rm, const char *addr);

/** gmem_remote_mismatches - Copy up to @max indexes of pages whose digests
 * differed. Return: how many differed in all (>= 0). */
int64_t gmem_remote_mismatches(const struct gmem_remote *rm, uint64_t *pgoffs,
			       uint64_t max);

/** gmem_remote_stats - Copy the destination's counters.
 * Context: any thread; counters are read one by one. Return: 0. */
int gmem_remote_stats(const struct gmem_remote *rm,
		      struct gmem_remote_stats *out);

/**
 * gmem_remote_latencies - Copy urgent-request service times.
 * @ns:  receives up to @max samples, oldest first: nanoseconds from an
 *       urgent request's send to the install of its last page (the first
 *       2^20 requests are kept). With fault-around, a fault asks for its
 *       own page alone, first, and for the rest of its run after it: only
 *       the faulting page's request is timed.
 * Context: any thread.
 * Return: samples copied (>= 0).
 */
int64_t gmem_remote_latencies(const struct gmem_remote *rm, uint64_t *ns,
			      uint64_t max);

/** gmem_remote_error - Text of the last error ("" if none). */
const char *gmem_remote_error(const struct gmem_remote *rm);

/** gmem_remote_destroy - Close the connections and free @rm (or NULL).
 * Its source must be detached and destroyed first. */
void gmem_remote_destroy(struct gmem_remote *rm);

/**
 * gmem_region_digest - Per-page digests of a region's contents.
 * @r:        region.
 * @pgoff:    first page.
 * @nr_pages: pages; @pgoff + @nr_pages <= gmem_region_nr_pages(@r).
 * @out:      receives @nr_pages XXH3-64 digests (seed 0) of whole pages.
 *
 * Reads through the region's second mapping where it has one (fd-backed:
 * missing pages read as whatever the page cache holds, zeros at first), so
 * it never raises a fault.
 * Context: any thread; pages written meanwhile hash as either version.
 * Return: 0; -EINVAL range out of bounds; -EAGAIN a page of an anonymous
 *         GMEM_REGION_MISSING region is not present (reading it would fault);
 *         -EOPNOTSUPP a region from gmem_region_adopt_uffd() (no view here).
 */
int gmem_region_digest(const struct gmem_region *r, uint64_t pgoff,
		       uint64_t nr_pages, uint64_t *out);

/* ------------------------------------------------------------------------ */
/* Live migration                                                            */
/* ------------------------------------------------------------------------ */

/*
 * The migration engine moves a live workload's region from this host (the
 * source) to another (the destination) over the page server protocol:
 *
 *   POSTCOPY       freeze, send the device state only, resume at the
 *                  destination at once; pages follow on demand (urgent
 *                  requests) and in the background (push). The freeze does
 *                  not depend on the region's size.
 *   PRECOPY        iterative rounds from the dirty log (QEMU's pre-copy):
 *                  send everything, then what was written meanwhile, until
 *                  the rest fits the target downtime at the measured rate
 *                  or the round limit is reached (not converged: the rest
 *                  is sent during the freeze, or the migration is cancelled
 *                  with GMEM_MIGRATE_ABORT_UNCONVERGED); then freeze and
 *                  send the last dirty pages.
 *   HYBRID         a bounded number of pre-copy rounds, then post-copy: only
 *                  the pages written since they were sent are fetched again.
 *   STOP_AND_COPY  freeze, send every page, resume.
 *   AUTO           pre-copy while it converges, post-copy as soon as it
 *                  cannot: after each round, the rest fitting the target
 *                  downtime freezes as PRECOPY; a round that did not at
 *                  least halve the pages owed (the workload writes at more
 *                  than half the link's rate), or the round limit, switches
 *                  to post-copy as HYBRID does. The full pass is judged
 *                  after each 1/16 of the region (16 MiB at least), and
 *                  ends there on a switch: the pages not sent yet come by
 *                  post-copy. For a workload whose write rate is unknown.
 * Completion compares a digest of every page on both sides (gmem_remote_wait)
 * before the source may release its copy.
 */
enum gmem_migrate_mode {
	GMEM_MIGRATE_POSTCOPY = 0,
	GMEM_MIGRATE_PRECOPY = 1,
	GMEM_MIGRATE_HYBRID = 2,
	GMEM_MIGRATE_STOP_AND_COPY = 3,
	GMEM_MIGRATE_AUTO = 4,
};

/* Why AUTO ended pre-copy (gmem_migrate_stats.switch_reason). */
enum gmem_migrate_switch {
	GMEM_SWITCH_NONE = 0,           /* not AUTO, or not switched yet */
	GMEM_SWITCH_CONVERGED = 1,      /* the rest fit: froze as PRECOPY */
	GMEM_SWITCH_NOT_CONVERGING = 2, /* a round did not halve the pages
					 * owed: post-copy, as HYBRID */
	GMEM_SWITCH_ROUND_LIMIT = 3,    /* max_rounds ran out before the
					 * rest fit: post-copy, as HYBRID */
};

/* Phases, in order, as reported to the progress callback. */
enum gmem_migrate_phase {
	GMEM_PHASE_SETUP = 0,
	GMEM_PHASE_PRECOPY = 1,
	GMEM_PHASE_SWITCHOVER = 2, /* the freeze: workload paused */
	GMEM_PHASE_POSTCOPY = 3,
	GMEM_PHASE_COMPLETE = 4,
	/* Post-copy paused: the link broke and the engine is reconnecting
	 * (QEMU's postcopy-paused); @round is the pause's number, 1-based,
	 * and @eta_ns the time left before it gives up (0: no limit). Then
	 * POSTCOPY again, or an error. */
	GMEM_PHASE_PAUSED = 5,
};

/* gmem_migrate_params.flags */
#define GMEM_MIGRATE_ABORT_UNCONVERGED (1U << 0) /* PRECOPY: cancel instead
						  * of forcing the switchover */
#define GMEM_MIGRATE_RDMA (1U << 1) /* post-copy pages by RDMA READ: the
				     * source offers it
				     * (gmem_server_offer_rdma(), -ENODEV &c.
				     * when it cannot), the destination uses
				     * GMEM_REMOTE_RDMA; both sides set it */
#define GMEM_MIGRATE_PUSH_ADDRESS (1U << 2) /* source: push the post-copy
					     * pages in address order only,
					     * not the working set first */

struct gmem_migrate_params {
	uint32_t mode;        /* enum gmem_migrate_mode */
	uint32_t flags;       /* GMEM_MIGRATE_* */
	uint32_t max_rounds;  /* pre-copy rounds after the first full pass;
			       * 0 = 30 (PRECOPY, AUTO) or 2 (HYBRID) */
	uint32_t downtime_ms; /* PRECOPY, AUTO target freeze; 0 = 300 ms */
	uint32_t nr_bulk;     /* bulk connections, 1..GMEM_MAX_BULK; 0 = 2,
			       * or 4 with @key (encryption costs a core
			       * per connection on each side) */
	uint32_t nr_threads;  /* destination fault handlers; 0 = 2 */
	uint32_t fault_around;/* destination pages per urgent request; 0 = 16 */
	int32_t wait_ms;      /* give up on a silent peer after this; 0 =
			       * 30000 ms, -1 = never */
	const void *key;      /* pre-shared key, both sides: peers must prove
			       * it and every frame is encrypted with it
			       * (gmem_server_set_key()); NULL = none */
	uint32_t key_len;     /* bytes of @key, 16..256 */
	int32_t recover_ms;   /* post-copy recovery, both sides: how long a
			       * broken link may pause the migration while
			       * the destination reconnects
			       * (gmem_remote_recover(),
			       * gmem_server_set_recover()); 0 = never (fail
			       * at once); -1 = forever */
	uint32_t hot_epoch_ms;/* POSTCOPY source: how long the dirty log
			       * watches the running workload just before
			       * the pause, to learn its working set, which
			       * the push sends first (about one step of
			       * it); 0 = 200 ms, at most 60000; unused with
			       * GMEM_MIGRATE_PUSH_ADDRESS */
	uint32_t resv0;       /* must be zero */
	uint64_t resv[1];     /* must be zero */
};

struct gmem_migrate_progress {
	uint32_t phase;       /* enum gmem_migrate_phase */
	uint32_t round;       /* pre-copy round, 1-based; 0 outside pre-copy */
	uint64_t pages_done;  /* pages sent (source) or present (destination) */
	uint64_t pages_total; /* pages of this phase */
	uint64_t elapsed_ns;  /* since the migration started */
	uint64_t bytes_per_s; /* recent rate; 0 if unknown */
	uint64_t eta_ns;      /* to the end of this phase at that rate; 0 if
			       * unknown */
};

/* Callbacks into the workload's owner (a hypervisor's monitor). */
struct gmem_migrate_ops {
	/* Source: stop the workload at a clean point and write its device
	 * state (at most *len bytes, set *len). Return 0 or -errno. */
	int (*pause)(void *ctx, void *state, size_t *len);
	/* Destination: restart the workload from @state. Return 0/-errno.
	 * Source, optional: called with @state NULL and @len 0 to restart
	 * the paused workload here when the migration fails before any of
	 * the freeze went out (-EMSGSIZE); its result is not used. */
	int (*resume)(void *ctx, const void *state, size_t len);
	/* Both, optional: called at phase changes and about every 250 ms
	 * while the engine waits, from the engine's threads but never two
	 * calls at once. */
	void (*progress)(void *ctx, const struct gmem_migrate_progress *p);
	/* Both, optional: called once, before the engine returns an error
	 * of the page server or the connection, with its reason in words
	 * (gmem_server_error()/gmem_remote_error(): a checksum mismatch, a
	 * silent peer, a failed authentication). */
	void (*failed)(void *ctx, const char *why);
};

/* What a migration did. A destination copies the source's pre-copy
 * figures from the switchover message. Times are CLOCK_MONOTONIC ns. */
struct gmem_migrate_stats {
	uint32_t mode;            /* the mode that ran: AUTO becomes PRECOPY
				   * or HYBRID when it switches (AUTO until
				   * then) */
	uint32_t rounds;          /* pre-copy rounds run (full pass included);
				   * AUTO switched after the last */
	uint32_t converged;       /* PRECOPY: 1 if the rest fit the downtime */
	uint32_t switch_reason;   /* enum gmem_migrate_switch: AUTO's */
	uint64_t precopy_pages;   /* pages sent while the workload ran */
	uint64_t freeze_pages;    /* pages sent while it was paused */
	uint64_t stale_pages;     /* pre-copied pages written again (HYBRID) */
	uint64_t expected_downtime_ms; /* PRECOPY, AUTO: last estimate */
	uint64_t start_ns;        /* source: migration start */
	uint64_t pause_ns;        /* source: workload paused */
	uint64_t state_sent_ns;   /* source: switchover message sent */
	uint64_t resume_ns;       /* destination: workload resumed */
	uint64_t complete_ns;     /* both: digests compared */
	uint64_t link_bytes_per_s;/* source: pre-copy send rate */
	struct gmem_remote_stats pages; /* this end's page counters */
	uint64_t fault_p50_ns;    /* destination: urgent request service */
	uint64_t fault_p99_ns;
	/* Destination: the workload's threads blocked on faults after the
	 * resume (gmem_region_blocktime()), summed over threads; the thread
	 * that waited longest, and how long in all. */
	uint64_t blocked_ns;
	uint64_t blocked_max_ns;
	uint32_t blocked_threads; /* threads that waited at least once */
	uint32_t blocked_max_tid;
	uint32_t nr_bulk;         /* destination: bulk connections used */
	uint32_t resv0;
	uint64_t resv[4];
};

/**
 * gmem_migrate_source - Migrate a region away: the source side.
 * @r:      region to migrate (typically imported from the workload's process
 *          with gmem_region_import(), fd-backed; every page present).
 * @listen: "host:port" to listen on for the destination.
 * @p:      parameters.
 * @ops:    callbacks; pause is required.
 * @ctx:    passed to the callbacks.
 * @st:     receives the statistics (also filled on failure, as far as got).
 *
 * Waits for the destination, runs the pre-copy rounds of @p->mode (the
 * dirty log of @r, gmem_dirty_start(), AUTO backend), pauses the workload,
 * sends the rest and the device state, then serves post-copy until the
 * destination has confirmed every page by digest. The post-copy push sends
 * the workload's working set first (gmem_server_push_first()): the pages
 * the dirty log saw written in the last two epochs before the pause, the
 * latest first (HYBRID: the stale pages; POSTCOPY: one epoch of
 * @p->hot_epoch_ms watched just before the pause, when @r has a dirty
 * log), then the rest in address order; GMEM_MIGRATE_PUSH_ADDRESS keeps
 * address order alone.
 * Context: blocks the calling thread for the whole migration.
 * Return: 0; -EINVAL bad params; -ETIMEDOUT destination silent;
 *         -ECANCELED PRECOPY did not converge and ABORT_UNCONVERGED was set
 *         (the workload was never paused and runs on here); -ECONNRESET destination gone
 *         (after the switchover the workload stays paused here, its pages
 *         intact, and must not be resumed on both sides); -EACCES the
 *         destination failed authentication (before any page moved; the
 *         workload was never paused); -EMSGSIZE the pause callback's
 *         device state is over 65440 bytes (64 KiB less the engine's
 *         header): the failed callback names the sizes, the destination
 *         is told, and the resume callback, if set, restarts the workload
 *         here; -EIO digests differed; an error of the pause callback or
 *         the dirty log.
 */
int gmem_migrate_source(struct gmem_region *r, const char *listen,
			const struct gmem_migrate_params *p,
			const struct gmem_migrate_ops *ops, void *ctx,
			struct gmem_migrate_stats *st);

/**
 * gmem_migrate_dest - Migrate a region in: the destination side.
 * @r:       region of the same geometry as the source's, created with
 *           GMEM_REGION_MISSING (typically imported from the paused
 *           destination workload), fd-backed for pre-copy modes.
 * @connect: "host:port" of the source's gmem_migrate_source().
 * @p:       parameters (mode is the source's; nr_bulk, nr_threads,
 *           fault_around and wait_ms apply here).
 * @ops:     callbacks; resume is required.
 * @ctx:     passed to the callbacks.
 * @st:      receives the statistics.
 *
 * Receives pre-copy pages into the page cache, then the device state;
 * attaches the remote page source and resumes the workload at once; waits
 * until every page is present and verified by digest.
 * Context: blocks the calling thread for the whole migration.
 * Return: 0; -EINVAL geometry mismatch or bad params; -ECONNREFUSED,
 *         -ETIMEDOUT, also a source silent for @p->wait_ms (nothing
 *         came while the state, pages or digests were awaited; a
 *         post-copy pause for recovery counts against recover_ms
 *         instead); -ECONNRESET source gone (before the switchover the
 *         workload was never resumed here); -ECONNABORTED the source gave
 *         up and said why (the failed callback has its words: a device
 *         state too large); -EACCES the source failed
 *         authentication or needs a key this side lacks (nothing moved);
 *         -EIO digests differed; an error of the resume callback.
 */
int gmem_migrate_dest(struct gmem_region *r, const char *connect,
		      const struct gmem_migrate_params *p,
		      const struct gmem_migrate_ops *ops, void *ctx,
		      struct gmem_migrate_stats *st);

/** gmem_migrate_mode_name - "postcopy", "precopy", "hybrid",
 * "stop-and-copy", "auto", or NULL for an unknown mode. */
const char *gmem_migrate_mode_name(enum gmem_migrate_mode m);

/* ------------------------------------------------------------------------ */
/* NUMA placement                                                            */
/* ------------------------------------------------------------------------ */

/*
 * A GPU reaches host memory on its own NUMA node fastest: place the region
 * (its pages, the fault handlers' staging buffers) and the handler threads
 * on the GPU's node, from gmem_numa_node_of_pci(). Uses libnuma's mbind(2)
 * and numa_run_on_node() (Documentation/admin-guide/mm/numa_memory_policy.rst).
 * On a machine with one node every page is on node 0 anyway: placement
 * succeeds and changes nothing (gmem_numa_nodes() says 1).
 */

/**
 * gmem_numa_nodes - The number of NUMA nodes of this machine.
 * Context: any thread.
 * Return: nodes (>= 1; 1 = a single-node machine, where placement has no
 *         effect); -ENOSYS the kernel has no NUMA memory policy;
 *         -EOPNOTSUPP libgmem was built without libnuma.
 */
int gmem_numa_nodes(void);

/**
 * gmem_numa_node_of_pci - The NUMA node a PCI device (a GPU) hangs off.
 * @sysfs: where sysfs is mounted; NULL = "/sys".
 * @addr:  PCI address as lspci -D prints it, "DDDD:BB:DD.F" (hex), or
 *         "BB:DD.F" in domain 0000.
 *
 * Reads @sysfs/bus/pci/devices/@addr/numa_node
 * (Documentation/ABI/testing/sysfs-bus-pci). Needs no libnuma.
 * Context: any thread.
 * Return: the node (>= 0); -EINVAL malformed @addr; -ENOENT no such device;
 *         -ENODATA the device has no node (numa_node is -1: single-node
 *         machines and most VMs; use node 0 or none); -EIO unreadable
 *         contents; a negative errno of open(2)/read(2).
 */
int gmem_numa_node_of_pci(const char *sysfs, const char *addr);

/**
 * gmem_region_set_numa_node - Place a region's memory and handlers on a node.
 * @r:    region; before gmem_region_attach() and gmem_dirty_start() (the
 *        handler threads take the node when they start).
 * @node: node, 0..gmem_numa_nodes() - 1, with memory this process may use
 *        (its cpuset's); -1 = no placement (the default policy again).
 *
 * Sets MPOL_PREFERRED for @node on both of the region's mappings with
 * mbind(2) and MPOL_MF_MOVE: pages allocated from then on (faults, installs,
 * page-cache fills) go to @node while it has free memory, elsewhere after
 * (MPOL_BIND would fail a fault, leaving its thread waiting); pages already
 * there that only this process maps move. shmem keeps the policy per file,
 * so another process's faults on the memfd follow it too. The fault
 * handlers' staging buffers are allocated on @node and the handler threads
 * run on its CPUs (numa_run_on_node()). A region from
 * gmem_region_adopt_uffd() has no mapping here: only its staging buffers
 * and handler threads are placed (the owner places its own memory).
 * Context: any thread; serialised with attach/detach by the region's lock.
 * Return: 0; -EINVAL NULL @r, @node < -1, or a node that does not exist,
 *         has no memory or is outside the cpuset (nothing changed);
 *         -EBUSY the fault engine runs; -ENOSYS no NUMA in the kernel;
 *         -EOPNOTSUPP built without libnuma (@node -1 is then accepted);
 *         a negative errno of mbind(2) (the old policy is restored).
 */
int gmem_region_set_numa_node(struct gmem_region *r, int node);

/** gmem_region_numa_node - The node set by gmem_region_set_numa_node(), or
 * -1. Context: any thread. */
int gmem_region_numa_node(const struct gmem_region *r);

#ifdef __cplusplus
}
#endif
#endif /* GMEM_H */
