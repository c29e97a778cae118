// SPDX-License-Identifier: MIT
/*
 * test-cuda.c - the VRAM mirror (libgmem-cuda): argument checks, pre-copy
 * passes that copy exactly the changed pages, liveness hints, SYNC_ALL and
 * restore. Needs a CUDA device; skips with the reason where there is none.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <gmem-cuda.h>

#include "helpers.h"

#define PS 4096U
#define NR 600 /* more than one 1 MiB staging buffer (256 pages) */

static void require_gpu(void)
{
	int n = 0;
	cudaError_t e;

	require_uffd();
	e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess || n == 0)
		cr_skip_test("no CUDA device: %s",
			     e ? cudaGetErrorString(e) : "0 devices");
}

TestSuite(cuda, .init = require_gpu, .timeout = 60.0);

struct fixture {
	struct gmem_region *r;
	uint8_t *d;
	uint8_t *host;
	struct gmem_cuda *c;
};

/* A region and a device buffer of NR pages, the device holding pattern 1,
 * mirrored with 1 MiB staging buffers. */
static void setup(struct fixture *f)
{
	struct gmem_cuda_params p = { .staging_mib = 1 };

	f->r = region_new(NR, PS, GMEM_BACKING_MEMFD, 0);
	f->host = malloc((size_t)NR * PS);
	cr_assert(f->host);
	cr_assert_eq(cudaMalloc((void **)&f->d, (size_t)NR * PS), cudaSuccess);
	pattern_fill(f->host, 1, 0, NR, PS);
	cr_assert_eq(cudaMemcpy(f->d, f->host, (size_t)NR * PS,
				cudaMemcpyHostToDevice), cudaSuccess);
	cr_assert_eq(gmem_cuda_attach(f->r, 0, f->d, (uint64_t)NR * PS, &p,
				      &f->c), 0);
}

static void teardown(struct fixture *f)
{
	gmem_cuda_detach(f->c);
	cudaFree(f->d);
	free(f->host);
	gmem_region_destroy(f->r);
}

/* Writes pattern @seed into device page @pg, as a workload would. */
static void write_page(struct fixture *f, uint64_t pg, uint64_t seed)
{
	pattern_fill(f->host, seed, pg, 1, PS);
	cr_assert_eq(cudaMemcpy(f->d + pg * PS, f->host, PS,
				cudaMemcpyHostToDevice), cudaSuccess);
}

static int region_page_is(struct fixture *f, uint64_t pg, uint64_t seed)
{
	return pattern_check((uint8_t *)gmem_region_addr(f->r) + pg * PS, seed,
			     pg, PS);
}

Test(cuda, attach_rejects_bad_arguments)
{
	struct gmem_region *r = region_new(16, PS, GMEM_BACKING_MEMFD, 0);
	struct gmem_cuda_params bad = { .resv0 = 1 };
	struct gmem_cuda *c = NULL;
	void *host = malloc(16 * PS);
	uint8_t *d;

	cr_assert_eq(cudaMalloc((void **)&d, 16 * PS), cudaSuccess);
	cr_expect_eq(gmem_cuda_attach(r, 0, d, 0, NULL, &c), -EINVAL);
	cr_expect_eq(gmem_cuda_attach(r, 0, d, PS + 1, NULL, &c), -EINVAL);
	cr_expect_eq(gmem_cuda_attach(r, 100, d, PS, NULL, &c), -EINVAL);
	cr_expect_eq(gmem_cuda_attach(r, PS, d, 16 * PS, NULL, &c), -EINVAL);
	cr_expect_eq(gmem_cuda_attach(r, 0, d + 8, PS, NULL, &c), -EINVAL);
	cr_expect_eq(gmem_cuda_attach(r, 0, host, PS, NULL, &c), -EINVAL);
	cr_expect_eq(gmem_cuda_attach(r, 0, d, PS, &bad, &c), -EINVAL);
	cr_expect_null(c, "a failed attach leaves *out alone");
	cr_assert_eq(gmem_cuda_attach(r, PS, d, 15 * PS, NULL, &c), 0);
	cr_expect_eq(gmem_cuda_hint(c, 1, PS, GMEM_CUDA_DEAD), -EINVAL);
	cr_expect_eq(gmem_cuda_hint(c, 0, 16 * PS, GMEM_CUDA_DEAD), -EINVAL);
	cr_expect_eq(gmem_cuda_hint(c, 0, PS, 7), -EINVAL);
	cr_expect_eq(gmem_cuda_sync(c, 1U << 5, NULL), -EINVAL);
	cr_expect_eq(gmem_cuda_sync(c, 0, NULL), 15, "rejected calls lose nothing");
	gmem_cuda_detach(c);
	cudaFree(d);
	free(host);
	gmem_region_destroy(r);
}

Test(cuda, sync_copies_every_page_then_only_changed_ones)
{
	struct gmem_cuda_stats st;
	struct fixture f;

	setup(&f);
	cr_assert_eq(gmem_cuda_sync(f.c, 0, &st), NR);
	cr_expect_eq(st.nr_pages, NR);
	for (uint64_t pg = 0; pg < NR; pg++)
		cr_assert(region_page_is(&f, pg, 1), "page %lu", pg);
	cr_expect_eq(gmem_cuda_sync(f.c, 0, &st), 0);
	cr_expect_eq(st.changed_pages, 0);
	write_page(&f, 3, 2);
	write_page(&f, 300, 2);
	write_page(&f, 301, 2);
	write_page(&f, NR - 1, 2);
	cr_expect_eq(gmem_cuda_sync(f.c, 0, &st), 4);
	cr_expect_eq(st.changed_pages, 4);
	for (uint64_t pg = 0; pg < NR; pg++) {
		bool w = pg == 3 || pg == 300 || pg == 301 || pg == NR - 1;

		cr_assert(region_page_is(&f, pg, w ? 2 : 1), "page %lu", pg);
	}
	teardown(&f);
}

Test(cuda, one_changed_word_is_seen)
{
	uint64_t word = 0x1234;
	struct fixture f;

	setup(&f);
	cr_assert_eq(gmem_cuda_sync(f.c, 0, NULL), NR);
	cr_assert_eq(cudaMemcpy(f.d + 77 * PS + 2040, &word, sizeof(word),
				cudaMemcpyHostToDevice), cudaSuccess);
	cr_expect_eq(gmem_cuda_sync(f.c, 0, NULL), 1);
	cr_expect_eq(memcmp((uint8_t *)gmem_region_addr(f.r) + 77 * PS + 2040,
			    &word, sizeof(word)), 0);
	teardown(&f);
}

Test(cuda, dead_pages_are_skipped_until_live_again)
{
	struct gmem_cuda_stats st;
	struct fixture f;

	setup(&f);
	cr_assert_eq(gmem_cuda_sync(f.c, 0, NULL), NR);
	cr_assert_eq(gmem_cuda_hint(f.c, 8 * PS, 8 * PS, GMEM_CUDA_DEAD), 8);
	write_page(&f, 9, 3);
	write_page(&f, 20, 3);
	cr_expect_eq(gmem_cuda_sync(f.c, 0, &st), 1);
	cr_expect_eq(st.dead_pages, 1);
	cr_expect(region_page_is(&f, 9, 1), "a dead page keeps its old copy");
	cr_expect(region_page_is(&f, 20, 3));
	cr_expect_eq(gmem_cuda_sync(f.c, GMEM_CUDA_SYNC_ALL, NULL), NR - 8);
	cr_assert_eq(gmem_cuda_hint(f.c, 8 * PS, 8 * PS, GMEM_CUDA_LIVE), 8);
	cr_expect_eq(gmem_cuda_sync(f.c, 0, NULL), 1,
		     "the page written while dead is owed");
	cr_expect(region_page_is(&f, 9, 3));
	teardown(&f);
}

Test(cuda, restore_fills_vram_from_the_region)
{
	struct gmem_cuda_stats st;
	struct fixture f;

	setup(&f);
	pattern_fill(gmem_region_addr(f.r), 5, 0, NR, PS);
	cr_assert_eq(gmem_cuda_restore(f.c, &st), NR);
	cr_assert_eq(cudaMemcpy(f.host, f.d, (size_t)NR * PS,
				cudaMemcpyDeviceToHost), cudaSuccess);
	for (uint64_t pg = 0; pg < NR; pg++)
		cr_assert(pattern_check(f.host + pg * PS, 5, pg, PS), "page %lu",
			  pg);
	cr_expect_eq(gmem_cuda_sync(f.c, 0, NULL), 0,
		     "after a restore VRAM and region agree");
	teardown(&f);
}
