// SPDX-License-Identifier: MIT
/*
 * kernels.cu - fingerprint and gather kernels of the VRAM mirror. One warp
 * per page, 16-byte loads that a warp issues for 512 contiguous bytes at a
 * time, so both run at HBM bandwidth; no host logic here.
 */
#include "kernels.h"

#define WARPS_PER_BLOCK 8
#define FULL_MASK 0xffffffffU

/*
 * A bijective 64-bit mix (the xorshift-multiply steps of splitmix64's
 * finaliser). Each 8-byte word is mixed with its position and the results
 * are summed: a change of one word always changes the sum, since the mix
 * of a fixed position is a bijection; several changed words collide with
 * probability about 2^-64.
 */
__device__ static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x7fb5d329728ea185ULL;
	x ^= x >> 27;
	x *= 0x81dadef4bc2dd44dULL;
	return x ^ (x >> 33);
}

__device__ static inline uint64_t word_term(uint64_t w, uint64_t pos)
{
	return mix64(w ^ (pos * 0x9e3779b97f4a7c15ULL));
}

__global__ void fingerprint_pages(const uint4 *base, uint64_t nr_pages,
				  uint32_t vecs_per_page, uint64_t *fp,
				  unsigned long long *changed)
{
	unsigned int lane = threadIdx.x % 32;
	uint64_t warp = ((uint64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
	uint64_t nr_warps = (uint64_t)gridDim.x * blockDim.x / 32;

	for (uint64_t page = warp; page < nr_pages; page += nr_warps) {
		const uint4 *p = base + page * vecs_per_page;
		uint64_t sum = 0;

		for (uint32_t v = lane; v < vecs_per_page; v += 32) {
			uint4 x = __ldcs(p + v); /* read once: do not keep */
			uint64_t lo = ((uint64_t)x.y << 32) | x.x;
			uint64_t hi = ((uint64_t)x.w << 32) | x.z;

			sum += word_term(lo, 2 * v) + word_term(hi, 2 * v + 1);
		}
		for (int d = 16; d; d /= 2)
			sum += __shfl_xor_sync(FULL_MASK, sum, d);
		if (lane == 0) {
			uint64_t h = mix64(sum);

			if (fp[page] != h) {
				fp[page] = h;
				atomicOr(&changed[page / 64], 1ULL << (page % 64));
			}
		}
	}
}

__global__ void gather_pages(const uint4 *base, uint32_t vecs_per_page,
			     const uint32_t *idx, uint64_t n, uint4 *dst)
{
	unsigned int lane = threadIdx.x % 32;
	uint64_t warp = ((uint64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
	uint64_t nr_warps = (uint64_t)gridDim.x * blockDim.x / 32;

	for (uint64_t k = warp; k < n; k += nr_warps) {
		const uint4 *s = base + (uint64_t)idx[k] * vecs_per_page;
		uint4 *d = dst + k * vecs_per_page;

		for (uint32_t v = lane; v < vecs_per_page; v += 32)
			d[v] = s[v];
	}
}

/* Enough warps to fill any current GPU, one page each at a time. */
static unsigned int grid_for(uint64_t nr_pages)
{
	uint64_t blocks = (nr_pages + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;

	return blocks < 65536 ? (unsigned int)blocks : 65536;
}

extern "C" int kernel_fingerprint(const void *base, uint64_t nr_pages,
				  uint32_t page_size, uint64_t *fp,
				  uint64_t *changed, cudaStream_t stream)
{
	if (!nr_pages)
		return cudaSuccess;
	fingerprint_pages<<<grid_for(nr_pages), WARPS_PER_BLOCK * 32, 0,
			    stream>>>((const uint4 *)base, nr_pages,
				      page_size / 16, fp,
				      (unsigned long long *)changed);
	return cudaGetLastError();
}

extern "C" int kernel_gather(const void *base, uint32_t page_size,
			     const uint32_t *idx, uint64_t n, void *dst,
			     cudaStream_t stream)
{
	if (!n)
		return cudaSuccess;
	gather_pages<<<grid_for(n), WARPS_PER_BLOCK * 32, 0, stream>>>(
		(const uint4 *)base, page_size / 16, idx, n, (uint4 *)dst);
	return cudaGetLastError();
}
