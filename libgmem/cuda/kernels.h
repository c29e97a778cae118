/* SPDX-License-Identifier: MIT */
/*
 * kernels.h - the GPU side of the VRAM mirror: the page fingerprint pass and
 * the gather of scattered pages into one contiguous buffer (kernels.cu).
 * Launchers are asynchronous on @stream and return a cudaError_t as int.
 */
#ifndef GMEM_CUDA_KERNELS_H
#define GMEM_CUDA_KERNELS_H

#include <stdint.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Page sizes must be multiples of this: one warp reads 16 bytes a lane. */
#define KERNEL_PAGE_ALIGN 512U

/*
 * Hashes each of @nr_pages pages of @page_size bytes at @base into @fp
 * (one uint64_t per page, updated in place) and sets bit i of @changed (an
 * array of uint64_t words, zeroed by the caller) when page i's hash
 * differs from what @fp held.
 */
int kernel_fingerprint(const void *base, uint64_t nr_pages,
		       uint32_t page_size, uint64_t *fp, uint64_t *changed,
		       cudaStream_t stream);

/* Copies page @idx[k] of @base to @dst + k * @page_size, k < @n. */
int kernel_gather(const void *base, uint32_t page_size, const uint32_t *idx,
		  uint64_t n, void *dst, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif
