// SPDX-License-Identifier: MIT
/*
 * test-cuda.c - the VRAM mirror (libgmem-cuda): argument checks, pre-copy
 * passes that copy exactly the changed pages, liveness hints, SYNC_ALL and
 * restore. Needs a CUDA device: where the runtime cannot run (no device, a
 * driver older than the runtime) the whole binary is skipped (exit 77) with
 * the runtime's reason.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cuda_runtime.h>
#include <gmem-cuda.h>

#include "helpers.h"

#define PS 4096U
#define NR 600 /* more than one 1 MiB staging buffer (256 pages) */

TestSuite(cuda, .init = require_uffd, .timeout = 60.0);

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

/*
 * Whether the CUDA runtime finds a device, asked in a child: a runtime
 * initialised here would be unusable in the forked test processes.
 * Return: 0 usable; otherwise non-zero with the reason in @why.
 */
static int cuda_unusable(char *why, size_t len)
{
	ssize_t got = 0;
	int fds[2], st = 0;
	pid_t pid;

	if (pipe(fds) || (pid = fork()) < 0) {
		snprintf(why, len, "pipe or fork: %s", strerror(errno));
		return -1;
	}
	if (!pid) {
		cudaError_t e;
		int n = 0;

		close(fds[0]);
		e = cudaGetDeviceCount(&n);
		if (e == cudaSuccess && n)
			_exit(0);
		dprintf(fds[1], "%s", e != cudaSuccess ? cudaGetErrorString(e) :
							 "no CUDA device");
		_exit(1);
	}
	close(fds[1]);
	if (len)
		got = read(fds[0], why, len - 1);
	close(fds[0]);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
		snprintf(why, len, "the CUDA probe died (status %#x)", st);
		return -1;
	}
	why[got > 0 ? got : 0] = '\0';
	return WEXITSTATUS(st);
}

int main(int argc, char *argv[])
{
	struct criterion_test_set *tests;
	char why[512];
	int ok = 1;

	if (cuda_unusable(why, sizeof(why))) {
		printf("SKIP: the CUDA runtime cannot run here: %s\n", why);
		return 77;
	}
	tests = criterion_initialize();
	/* 0: an option such as --help that ends the run at once. */
	if (criterion_handle_args(argc, argv, true))
		ok = criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return ok ? 0 : 1;
}
