// SPDX-License-Identifier: MIT
/*
 * restore.c - the destination's half of the VRAM mirror: stream the region
 * into VRAM through pinned staging, then take the fingerprints that the
 * next pre-copy pass compares with.
 */
#include <string.h>

#include "mirror.h"

/* Reads chunk @i of the region into staging buffer @b (faulting in pages
 * that have not arrived) and queues its copy to the device. */
static cudaError_t load_chunk(struct gmem_cuda *c, uint64_t i, int b)
{
	uint64_t first = i * c->stage_pages, cnt = c->nr_pages - first;
	size_t off;
	cudaError_t e;

	if (cnt > c->stage_pages)
		cnt = c->stage_pages;
	off = first * c->page_size;
	/* The buffer's previous copy (chunk i - 2) must be done. */
	e = i >= 2 ? cudaEventSynchronize(c->done[b]) : cudaSuccess;
	if (e)
		return e;
	memcpy(c->h_stage[b], c->region_base + off, cnt * c->page_size);
	e = cudaMemcpyAsync(c->dptr + off, c->h_stage[b], cnt * c->page_size,
			    cudaMemcpyHostToDevice, c->stream);
	return e ? e : cudaEventRecord(c->done[b], c->stream);
}

int64_t gmem_cuda_restore(struct gmem_cuda *c, struct gmem_cuda_stats *st)
{
	struct gmem_cuda_stats s = { .nr_pages = c->nr_pages };
	uint64_t nchunks = (c->nr_pages + c->stage_pages - 1) / c->stage_pages;
	uint64_t t0 = mirror_now_ns(), t1 = t0, i;
	cudaError_t e = cudaSuccess;
	int prev, ret;

	prev = mirror_enter(c);
	if (prev < 0)
		return prev;
	for (i = 0; i < nchunks && !e; i++)
		e = load_chunk(c, i, i & 1);
	if (!e)
		e = cudaStreamSynchronize(c->stream);
	ret = mirror_errno(e);
	if (!ret) {
		t1 = mirror_now_ns();
		s.copied_pages = c->nr_pages;
		/* VRAM now equals the region: nothing is owed, and this pass
		 * is the baseline of the next sync. */
		ret = mirror_fingerprint(c);
		if (!ret)
			bitmap_clear_range(&c->owed, 0, c->nr_pages);
	} else {
		cudaStreamSynchronize(c->stream);
	}
	s.copy_ns = t1 - t0;
	s.total_ns = mirror_now_ns() - t0;
	s.fingerprint_ns = ret ? 0 : s.total_ns - s.copy_ns;
	if (st)
		*st = s;
	mirror_leave(prev);
	return ret ? ret : (int64_t)s.copied_pages;
}
