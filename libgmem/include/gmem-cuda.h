/* SPDX-License-Identifier: MIT */
/*
 * gmem-cuda.h - the CUDA part of libgmem (libgmem-cuda.so, configure
 * --with-cuda): mirrors a device allocation (VRAM) into a gmem region so
 * that the region's migration carries it, and restores VRAM from a region.
 *
 * Why a mirror: without HMM a GPU cannot fault on host pages
 * (cudaDevAttrPageableMemoryAccess = 0 on the H100 hosts gmem targets) and
 * cudaHostRegister() refuses a userfaultfd-registered range, so the VRAM
 * image is copied into the region. Pre-copy finds what changed by
 * fingerprinting every page on the GPU (one 64-bit hash per page, a pass at
 * HBM bandwidth, no driver cooperation) and copies only those pages. The
 * copies go device -> pinned staging -> region through the CPU, so the
 * region's dirty log (page tables: userfaultfd write-protect or soft-dirty)
 * sees them and gmem-migrate sends exactly them.
 *
 * Conventions are gmem.h's: 0 or a count on success, a negative errno on
 * failure; "off"/"len" are bytes, "nr_pages" counts region pages.
 */
#ifndef GMEM_CUDA_H
#define GMEM_CUDA_H

#include <stdint.h>

#include <gmem.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gmem_cuda;

struct gmem_cuda_params {
	uint32_t staging_mib; /* pinned staging per buffer (two of them, and
			       * two device gather buffers of the same size);
			       * 0 = 32 MiB; rounded down to whole pages */
	uint32_t resv0;       /* must be zero */
	uint64_t resv[4];     /* must be zero */
};

/* What one gmem_cuda_sync() or gmem_cuda_restore() did. Times are
 * CLOCK_MONOTONIC nanoseconds measured on the host, launches included. */
struct gmem_cuda_stats {
	uint64_t nr_pages;       /* pages of the attached range */
	uint64_t changed_pages;  /* sync: fingerprint differs from the last */
	uint64_t copied_pages;   /* pages written into the region (sync) or
				  * into VRAM (restore) */
	uint64_t dead_pages;     /* sync: owed but hinted dead, not copied */
	uint64_t fingerprint_ns; /* the GPU fingerprint pass */
	uint64_t copy_ns;        /* gather, device-to-host, region writes (sync);
				  * region reads, host-to-device (restore) */
	uint64_t total_ns;
	uint64_t resv[4];
};

/**
 * gmem_cuda_attach - Mirror a device allocation into a region.
 * @r:      region from gmem_region_create() (or gmem_region_import()) of
 *          this process; its page size is the mirror's page size.
 * @off:    byte offset into @r; multiple of the region's page size.
 * @dptr:   device pointer from cudaMalloc() (or a caching allocator's
 *          segment), 16-byte aligned, on the caller's current device.
 * @len:    bytes; > 0, multiple of the region's page size (at least 512
 *          bytes); @off + @len <= gmem_region_size(@r); at most 2^32 pages.
 * @p:      parameters, or NULL for the defaults.
 * @out:    receives the mirror.
 *
 * Allocates per-page fingerprints and gather buffers on the device, pinned
 * staging on the host (cudaHostAlloc), and marks every page as owed to the
 * region: the first gmem_cuda_sync() copies them all. Copies no data: a
 * destination attaches before its region's pages have arrived and calls
 * gmem_cuda_restore().
 * Context: any thread; the mirror then belongs to the caller, who must not
 * call it from two threads at once. Keep @r and @dptr until
 * gmem_cuda_detach().
 * Return: 0; -EINVAL misaligned or out-of-range @off/@len, @dptr not device
 *         memory of the current device, non-zero resv; -ENODEV no CUDA
 *         device or driver; -ENOMEM host or device memory; -EIO another
 *         CUDA error.
 */
int gmem_cuda_attach(struct gmem_region *r, uint64_t off, void *dptr,
		     uint64_t len, const struct gmem_cuda_params *p,
		     struct gmem_cuda **out);

/* gmem_cuda_sync flags. GMEM_CUDA_SYNC_ALL: copy every live page whatever
 * its fingerprint says (stop-and-copy through the same path; the
 * fingerprints are still updated). */
#define GMEM_CUDA_SYNC_ALL (1U << 0)

/**
 * gmem_cuda_sync - One pre-copy pass: copy the pages that changed.
 * @c:     mirror from gmem_cuda_attach().
 * @flags: GMEM_CUDA_SYNC_* mask.
 * @st:    receives what the pass did, or NULL.
 *
 * Fingerprints every page on the GPU, compares each with the previous
 * pass, and copies into the region the pages that changed, plus those still
 * owed (never copied since attach, or changed while hinted dead and hinted
 * live since), leaving out pages hinted dead. Runs on its own blocking
 * stream, so it is ordered after work queued on the legacy default stream;
 * the caller orders it after work on other streams (a step boundary: for
 * PyTorch, torch.cuda.synchronize()). A page written while the pass runs
 * may reach the region in either version and is then copied again by the
 * next pass. The call returns once every copied page is in the region.
 * Context: the mirror's thread; blocks for the pass.
 * Return: pages copied (>= 0); -EINVAL unknown flag; -ENOMEM; -EIO a CUDA
 *         error (pages copied before it stay in the region).
 */
int64_t gmem_cuda_sync(struct gmem_cuda *c, unsigned int flags,
		       struct gmem_cuda_stats *st);

/**
 * gmem_cuda_restore - Copy the region's pages into VRAM (the destination).
 * @c:  mirror from gmem_cuda_attach().
 * @st: receives what the restore did, or NULL.
 *
 * Reads the region in address order through pinned staging (double
 * buffered: the CPU fills one buffer while the other one is copied to the
 * device asynchronously), so on a destination whose pages are still
 * arriving each read faults its page in through the region's page source
 * and the device copy streams behind. Then fingerprints VRAM, so that the
 * next gmem_cuda_sync() copies only what changes after the restore.
 * Context: the mirror's thread; returns once VRAM holds every page.
 * Return: pages copied (>= 0); -ENOMEM; -EIO a CUDA error.
 */
int64_t gmem_cuda_restore(struct gmem_cuda *c, struct gmem_cuda_stats *st);

/* Liveness, for gmem_cuda_hint(). */
enum gmem_cuda_liveness {
	/* The content is dead (a caching allocator's free block, activations
	 * at a step boundary): gmem_cuda_sync() does not copy the range, so
	 * the region, and a destination, may hold an older version. */
	GMEM_CUDA_DEAD = 0,
	/* Live again (the default): the pages written while dead are owed
	 * and the next gmem_cuda_sync() copies them. */
	GMEM_CUDA_LIVE = 1,
};

/**
 * gmem_cuda_hint - Say whether a range's content matters (as
 * virtio-balloon's free-page hinting does for guest RAM).
 * @c:   mirror.
 * @off: byte offset into the device allocation; multiple of the page size.
 * @len: bytes; multiple of the page size; @off + @len <= the attached len.
 * @how: enum gmem_cuda_liveness.
 *
 * Off unless called: every page starts live.
 * Context: the mirror's thread.
 * Return: pages hinted (>= 0); -EINVAL misaligned or out of range, unknown
 *         @how.
 */
int64_t gmem_cuda_hint(struct gmem_cuda *c, uint64_t off, uint64_t len,
		       unsigned int how);

/**
 * gmem_cuda_detach - Free the mirror's buffers (or NULL: no-op). The region
 * and the device allocation stay as they are.
 * Context: the mirror's thread.
 */
void gmem_cuda_detach(struct gmem_cuda *c);

#ifdef __cplusplus
}
#endif
#endif /* GMEM_CUDA_H */
