// SPDX-License-Identifier: MIT
/*
 * sync.c - a pre-copy pass of the VRAM mirror: fingerprint every page on
 * the GPU, choose the pages the region lacks, gather them on the device and
 * copy them through pinned staging into the region. Double buffered: the
 * CPU writes one chunk into the region while the next is copied off the
 * device.
 */
#include <errno.h>
#include <string.h>

#include "kernels.h"
#include "mirror.h"

/*
 * Turns the pass's changed bits into the list of pages to copy, in region
 * order: changed or owed (or every page with SYNC_ALL), minus dead pages.
 * Changed dead pages become owed, so that they are copied once live again.
 * Return: pages listed; *@nr_changed and *@nr_dead count for the stats.
 */
static uint64_t select_pages(struct gmem_cuda *c, unsigned int flags,
			     uint64_t *nr_changed, uint64_t *nr_dead)
{
	uint64_t nwords = (c->nr_pages + 63) / 64, n = 0, w;

	*nr_changed = *nr_dead = 0;
	for (w = 0; w < nwords; w++) {
		uint64_t valid = w == nwords - 1 && c->nr_pages % 64 ?
					 (1ULL << (c->nr_pages % 64)) - 1 : ~0ULL;
		uint64_t ch = c->changed.words[w];
		uint64_t owed = c->owed.words[w] | ch;
		uint64_t want = flags & GMEM_CUDA_SYNC_ALL ? valid : owed;
		uint64_t copy = want & ~c->dead.words[w];

		*nr_changed += __builtin_popcountll(ch);
		*nr_dead += __builtin_popcountll(want & c->dead.words[w]);
		c->owed.words[w] = owed & ~copy;
		while (copy) {
			c->idx[n++] = w * 64 + __builtin_ctzll(copy);
			copy &= copy - 1;
		}
	}
	return n;
}

/* Writes @n staged pages (pages @idx, in order) into the region, one
 * memcpy per run of consecutive pages. */
static void scatter(struct gmem_cuda *c, const uint32_t *idx, uint64_t n,
		    const uint8_t *stage)
{
	uint64_t k = 0;

	while (k < n) {
		uint64_t run = 1;

		while (k + run < n && idx[k + run] == idx[k] + run)
			run++;
		memcpy(c->region_base + (uint64_t)idx[k] * c->page_size,
		       stage + k * c->page_size, run * c->page_size);
		k += run;
	}
}

static cudaError_t stage_chunk(struct gmem_cuda *c, uint64_t first,
			       uint64_t cnt, int b)
{
	cudaError_t e = kernel_gather(c->dptr, c->page_size, c->d_idx + first,
				      cnt, c->d_gather[b], c->stream);

	if (!e)
		e = cudaMemcpyAsync(c->h_stage[b], c->d_gather[b],
				    cnt * c->page_size, cudaMemcpyDeviceToHost,
				    c->stream);
	if (!e)
		e = cudaEventRecord(c->done[b], c->stream);
	return e;
}

static int copy_pages(struct gmem_cuda *c, uint64_t n)
{
	uint64_t sp = c->stage_pages, nchunks = (n + sp - 1) / sp, i;
	cudaError_t e = cudaMemcpyAsync(c->d_idx, c->idx, n * sizeof(*c->idx),
					cudaMemcpyHostToDevice, c->stream);

	for (i = 0; i <= nchunks && !e; i++) {
		if (i < nchunks)
			e = stage_chunk(c, i * sp, n - i * sp < sp ? n - i * sp : sp,
					i & 1);
		if (!e && i > 0) {
			uint64_t first = (i - 1) * sp;
			uint64_t cnt = n - first < sp ? n - first : sp;

			e = cudaEventSynchronize(c->done[(i - 1) & 1]);
			if (!e)
				scatter(c, c->idx + first, cnt,
					c->h_stage[(i - 1) & 1]);
		}
	}
	if (e)
		cudaStreamSynchronize(c->stream);
	return mirror_errno(e);
}

int64_t gmem_cuda_sync(struct gmem_cuda *c, unsigned int flags,
		       struct gmem_cuda_stats *st)
{
	struct gmem_cuda_stats s = { .nr_pages = c->nr_pages };
	uint64_t t0 = mirror_now_ns(), t1, n;
	int prev, ret;

	if (flags & ~GMEM_CUDA_SYNC_ALL)
		return -EINVAL;
	prev = mirror_enter(c);
	if (prev < 0)
		return prev;
	ret = mirror_fingerprint(c);
	t1 = mirror_now_ns();
	if (ret)
		goto out;
	n = select_pages(c, flags, &s.changed_pages, &s.dead_pages);
	ret = copy_pages(c, n);
	if (ret) {
		/* The listed pages may not all have arrived: owe them again. */
		for (uint64_t k = 0; k < n; k++)
			bitmap_set(&c->owed, c->idx[k]);
		goto out;
	}
	s.copied_pages = n;
out:
	s.fingerprint_ns = t1 - t0;
	s.total_ns = mirror_now_ns() - t0;
	s.copy_ns = s.total_ns - s.fingerprint_ns;
	if (st)
		*st = s;
	mirror_leave(prev);
	return ret ? ret : (int64_t)s.copied_pages;
}
