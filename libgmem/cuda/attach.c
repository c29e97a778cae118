// SPDX-License-Identifier: MIT
/*
 * attach.c - attaching a device allocation to a region as its VRAM mirror,
 * liveness hints, detaching, and the helpers the passes share. The passes
 * themselves are in sync.c and restore.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "kernels.h"
#include "mirror.h"

#define DEFAULT_STAGING_MIB 32

int mirror_errno(cudaError_t e)
{
	switch (e) {
	case cudaSuccess:
		return 0;
	case cudaErrorMemoryAllocation:
		return -ENOMEM;
	case cudaErrorNoDevice:
	case cudaErrorInsufficientDriver:
	case cudaErrorInvalidDevice:
		return -ENODEV;
	default:
		return -EIO;
	}
}

int mirror_enter(const struct gmem_cuda *c)
{
	int prev, ret = mirror_errno(cudaGetDevice(&prev));

	if (!ret && prev != c->device)
		ret = mirror_errno(cudaSetDevice(c->device));
	return ret ? ret : prev;
}

void mirror_leave(int prev)
{
	int cur;

	if (cudaGetDevice(&cur) == cudaSuccess && cur != prev)
		cudaSetDevice(prev);
}

uint64_t mirror_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int mirror_fingerprint(struct gmem_cuda *c)
{
	size_t bytes = (c->nr_pages + 63) / 64 * sizeof(uint64_t);
	cudaError_t e = cudaMemsetAsync(c->d_changed, 0, bytes, c->stream);

	if (!e)
		e = kernel_fingerprint(c->dptr, c->nr_pages, c->page_size,
				       c->d_fp, c->d_changed, c->stream);
	if (!e)
		e = cudaMemcpyAsync(c->changed.words, c->d_changed, bytes,
				    cudaMemcpyDeviceToHost, c->stream);
	if (!e)
		e = cudaStreamSynchronize(c->stream);
	return mirror_errno(e);
}

/* The device pointer must be device memory of the current device. */
static int check_dptr(const void *dptr, int *device)
{
	struct cudaPointerAttributes a;
	cudaError_t e = cudaGetDevice(device);

	if (e)
		return mirror_errno(e);
	e = cudaPointerGetAttributes(&a, dptr);
	if (e == cudaErrorInvalidValue) {
		cudaGetLastError();
		return -EINVAL;
	}
	if (e)
		return mirror_errno(e);
	if (a.type != cudaMemoryTypeDevice || a.device != *device ||
	    (uintptr_t)dptr % 16)
		return -EINVAL;
	return 0;
}

static int check_args(const struct gmem_region *r, uint64_t off, uint64_t len,
		      const struct gmem_cuda_params *p)
{
	uint32_t ps = gmem_region_page_size(r);

	if (p && (p->resv0 || p->resv[0] || p->resv[1] || p->resv[2] ||
		  p->resv[3]))
		return -EINVAL;
	if (ps % KERNEL_PAGE_ALIGN || !len || off % ps || len % ps ||
	    off > gmem_region_size(r) || len > gmem_region_size(r) - off ||
	    len / ps > UINT32_MAX)
		return -EINVAL;
	return 0;
}

static int alloc_buffers(struct gmem_cuda *c)
{
	size_t stage = c->stage_pages * c->page_size;
	size_t nwords = (c->nr_pages + 63) / 64;
	cudaError_t e;
	int ret, i;

	ret = bitmap_init(&c->changed, c->nr_pages, false);
	if (!ret)
		ret = bitmap_init(&c->owed, c->nr_pages, true);
	if (!ret)
		ret = bitmap_init(&c->dead, c->nr_pages, false);
	if (ret)
		return ret;
	e = cudaStreamCreate(&c->stream);
	for (i = 0; i < 2 && !e; i++) {
		e = cudaEventCreateWithFlags(&c->done[i],
					     cudaEventDisableTiming);
		if (!e)
			e = cudaMalloc((void **)&c->d_gather[i], stage);
		if (!e)
			e = cudaHostAlloc((void **)&c->h_stage[i], stage,
					  cudaHostAllocDefault);
	}
	if (!e)
		e = cudaMalloc((void **)&c->d_fp, c->nr_pages * sizeof(uint64_t));
	if (!e)
		e = cudaMemset(c->d_fp, 0, c->nr_pages * sizeof(uint64_t));
	if (!e)
		e = cudaMalloc((void **)&c->d_changed, nwords * sizeof(uint64_t));
	if (!e)
		e = cudaMalloc((void **)&c->d_idx, c->nr_pages * sizeof(uint32_t));
	if (!e)
		e = cudaHostAlloc((void **)&c->idx,
				  c->nr_pages * sizeof(uint32_t),
				  cudaHostAllocDefault);
	return mirror_errno(e);
}

int gmem_cuda_attach(struct gmem_region *r, uint64_t off, void *dptr,
		     uint64_t len, const struct gmem_cuda_params *p,
		     struct gmem_cuda **out)
{
	uint32_t mib = p && p->staging_mib ? p->staging_mib : DEFAULT_STAGING_MIB;
	struct gmem_cuda *c;
	int ret = check_args(r, off, len, p);

	if (ret)
		return ret;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ret = check_dptr(dptr, &c->device);
	if (ret) {
		free(c);
		return ret;
	}
	c->r = r;
	c->page_size = gmem_region_page_size(r);
	c->region_base = (uint8_t *)gmem_region_addr(r) + off;
	c->dptr = dptr;
	c->nr_pages = len / c->page_size;
	c->stage_pages = ((uint64_t)mib << 20) / c->page_size;
	if (!c->stage_pages)
		c->stage_pages = 1;
	ret = alloc_buffers(c);
	if (ret) {
		gmem_cuda_detach(c);
		return ret;
	}
	*out = c;
	return 0;
}

int64_t gmem_cuda_hint(struct gmem_cuda *c, uint64_t off, uint64_t len,
		       unsigned int how)
{
	uint64_t first = off / c->page_size, n = len / c->page_size;

	if (off % c->page_size || len % c->page_size ||
	    first > c->nr_pages || n > c->nr_pages - first ||
	    how > GMEM_CUDA_LIVE)
		return -EINVAL;
	/* Pages written while dead are already owed (sync.c): going live
	 * needs no copy here. */
	if (how == GMEM_CUDA_DEAD)
		bitmap_set_range(&c->dead, first, n);
	else
		bitmap_clear_range(&c->dead, first, n);
	return n;
}

void gmem_cuda_detach(struct gmem_cuda *c)
{
	int prev, i;

	if (!c)
		return;
	prev = mirror_enter(c);
	if (c->stream)
		cudaStreamSynchronize(c->stream);
	for (i = 0; i < 2; i++) {
		if (c->done[i])
			cudaEventDestroy(c->done[i]);
		cudaFree(c->d_gather[i]);
		cudaFreeHost(c->h_stage[i]);
	}
	cudaFree(c->d_fp);
	cudaFree(c->d_changed);
	cudaFree(c->d_idx);
	cudaFreeHost(c->idx);
	if (c->stream)
		cudaStreamDestroy(c->stream);
	bitmap_free(&c->changed);
	bitmap_free(&c->owed);
	bitmap_free(&c->dead);
	if (prev >= 0)
		mirror_leave(prev);
	free(c);
}
