// SPDX-License-Identifier: MIT
/*
 * test-huge.c - huge pages: THP regions (MADV_HUGEPAGE) get 2 MiB pages and
 * still fault, install and log writes per 4 KiB page; hugetlbfs regions log
 * writes per 2 MiB page; too few reserved huge pages fail at creation.
 * Tests needing a THP mode or reserved pages the machine lacks skip, saying
 * which setting enables them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "helpers.h"

#define HUGE (2UL << 20)
#define SEED 0x7e57ULL

/* The bracketed word of a THP setting, as the library reads it. */
static bool thp_on(const char *name)
{
	char path[128], buf[128];
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/%s", name);
	f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f) || strstr(buf, "[inherit]")) {
		if (f)
			fclose(f);
		snprintf(path, sizeof(path),
			 "/sys/kernel/mm/transparent_hugepage/%s", name);
		f = fopen(path, "r");
		if (!f || !fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
	}
	if (f)
		fclose(f);
	return buf[0] && !strstr(buf, "[never]") && !strstr(buf, "[deny]");
}

/* Skips unless THP is on for anonymous memory or, with @shmem, memfds. */
static void require_thp(bool shmem)
{
	if (!thp_on(shmem ? "shmem_enabled" : "enabled"))
		cr_skip_test("THP is off for %s (echo %s > "
			     "/sys/kernel/mm/transparent_hugepage/%s)",
			     shmem ? "shmem" : "anonymous memory",
			     shmem ? "advise" : "madvise",
			     shmem ? "shmem_enabled" : "enabled");
}

/* A field (kB) of the /proc/self/smaps entry that maps @addr. */
static long smaps_kb(const void *addr, const char *field)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	bool in = false;
	long kb = -1;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		/* A field name never reads as "hex-hex". */
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in = lo <= (uintptr_t)addr && (uintptr_t)addr < hi;
			continue;
		}
		if (in && !strncmp(line, field, strlen(field)) &&
		    line[strlen(field)] == ':')
			kb = strtol(line + strlen(field) + 1, NULL, 10);
	}
	fclose(f);
	return kb;
}

static int pattern_src(void *ctx, uint64_t pgoff, uint64_t nr, void *dst)
{
	pattern_fill(dst, SEED, pgoff, nr, 4096);
	return 0;
}

Test(huge, thp_anon_region_gets_huge_pages, .timeout = 20)
{
	struct gmem_region *r;
	uint8_t *p;

	require_uffd();
	require_thp(false);
	r = region_new(2048, GMEM_PAGE_4K, GMEM_BACKING_ANON, GMEM_REGION_THP);
	p = gmem_region_addr(r);
	memset(p, 1, gmem_region_size(r));
	cr_expect_gt(smaps_kb(p, "AnonHugePages"), 0,
		     "a touched 8 MiB THP region holds huge pages");
	gmem_region_destroy(r);
}

/* Written pages of a THP-backed region are reported one 4 KiB page each:
 * the kernel splits (anonymous) or drops (shmem) the 2 MiB mapping when it
 * write-protects it. */
static void check_thp_dirty(uint32_t backing, const char *pmd_field)
{
	struct gmem_region_params rp = {
		.nr_pages = 2048, .backing = backing,
		.flags = GMEM_REGION_THP,
		.dirty_backend = GMEM_DIRTY_WP_ASYNC,
	};
	struct gmem_dirty_run runs[8];
	struct gmem_dirty_result res = { .runs = runs, .max_runs = 8 };
	struct gmem_region *r;
	uint8_t *p;

	require_features(GMEM_FEAT_WP_ASYNC | GMEM_FEAT_PAGEMAP_SCAN,
			 "no WP_ASYNC + PAGEMAP_SCAN (Linux 6.7+)");
	require_thp(backing == GMEM_BACKING_MEMFD);
	cr_assert_eq(gmem_region_create(&rp, &r), 0);
	p = gmem_region_addr(r);
	memset(p, 1, gmem_region_size(r));
	cr_assert_gt(smaps_kb(p, pmd_field), 0, "mapped with 2 MiB PMDs");
	cr_assert_eq(gmem_dirty_start(r, NULL), 0);
	cr_expect_eq(gmem_dirty_granularity(r), 4096);
	p[5 * 4096 + 7] = 2;
	p[1000 * 4096] = 2;
	cr_assert_eq(gmem_dirty_collect(r, &res), 2);
	cr_expect_eq(runs[0].pgoff, 5);
	cr_expect_eq(runs[0].nr_pages, 1);
	cr_expect_eq(runs[1].pgoff, 1000);
	cr_expect_eq(runs[1].nr_pages, 1);
	cr_expect_eq(gmem_dirty_stop(r), 0);
	gmem_region_destroy(r);
}

Test(huge, thp_anon_dirty_log_is_4k_inside_huge_pages, .timeout = 20)
{
	check_thp_dirty(GMEM_BACKING_ANON, "AnonHugePages");
}

Test(huge, thp_memfd_dirty_log_is_4k_inside_huge_pages, .timeout = 20)
{
	check_thp_dirty(GMEM_BACKING_MEMFD, "ShmemPmdMapped");
}

/* A MISSING memfd THP region: faults install the right bytes, and the page
 * cache behind it is made of 2 MiB folios (a fresh mapping of the memfd
 * maps them with PMDs). */
Test(huge, thp_memfd_region_faults_into_huge_folios, .timeout = 30)
{
	struct gmem_fault_params fp = { .fault_around = 512 };
	struct gmem_region *r;
	struct gmem_source *src;
	uint8_t *p, *view;
	uint64_t size;

	require_features(GMEM_FEAT_MINOR_SHMEM, "no MINOR faults on shmem");
	require_thp(true);
	r = region_new(2048, GMEM_PAGE_4K, GMEM_BACKING_MEMFD,
		       GMEM_REGION_MISSING | GMEM_REGION_THP);
	size = gmem_region_size(r);
	cr_assert_eq(gmem_source_callback(pattern_src, NULL, &src), 0);
	cr_assert_eq(gmem_region_attach(r, src, &fp), 0);
	p = gmem_region_addr(r);
	for (uint64_t i = 0; i < 2048; i += 97)
		cr_assert(pattern_check(p + i * 4096, SEED, i, 4096), "page %lu",
			  (unsigned long)i);
	gmem_region_fill(r, 0, 2048);
	view = mmap(NULL, size, PROT_READ, MAP_SHARED, gmem_region_fd(r), 0);
	cr_assert_neq(view, MAP_FAILED);
	madvise(view, size, MADV_HUGEPAGE);
	for (uint64_t off = 0; off < size; off += 4096)
		(void)*(volatile uint8_t *)(view + off);
	cr_expect_gt(smaps_kb(view, "ShmemPmdMapped"), 0,
		     "the memfd's page cache holds 2 MiB folios");
	munmap(view, size);
	gmem_region_destroy(r);
	gmem_source_destroy(src);
}

Test(huge, thp_takes_4k_pages_only, .timeout = 10)
{
	struct gmem_region_params rp = { .nr_pages = 1, .page_size = GMEM_PAGE_2M,
					 .flags = GMEM_REGION_THP };
	struct gmem_region *r = NULL;

	require_uffd();
	cr_expect_eq(gmem_region_create(&rp, &r), -EINVAL);
	cr_expect_null(r);
}

Test(huge, hugetlb_dirty_granularity_is_2m, .timeout = 10)
{
	struct gmem_region *r;

	require_features(GMEM_FEAT_HUGETLB_2M, "no 2 MiB huge pages reserved "
			 "(sysctl vm.nr_hugepages=16)");
	r = region_new(1, GMEM_PAGE_2M, GMEM_BACKING_MEMFD, 0);
	cr_expect_eq(gmem_dirty_granularity(r), GMEM_PAGE_2M);
	gmem_region_destroy(r);
	r = region_new(1, GMEM_PAGE_4K, GMEM_BACKING_MEMFD, 0);
	cr_expect_eq(gmem_dirty_granularity(r), 4096);
	gmem_region_destroy(r);
}

static long hugepages(const char *what)
{
	char path[128];
	long n = -1;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/kernel/mm/hugepages/hugepages-2048kB/%s", what);
	f = fopen(path, "r");
	if (f && fscanf(f, "%ld", &n) != 1)
		n = -1;
	if (f)
		fclose(f);
	return n;
}

/* More 2 MiB pages than are reserved fail at creation with -ENOSPC, for
 * both backings, instead of a SIGBUS or an unresolvable fault later. */
Test(huge, too_few_huge_pages_is_enospc, .timeout = 10)
{
	long total = hugepages("nr_hugepages");
	uint32_t backings[] = { GMEM_BACKING_MEMFD, GMEM_BACKING_ANON };

	require_uffd();
	if (total < 0)
		cr_skip_test("no 2 MiB hugetlbfs pool in this kernel");
	if (hugepages("nr_overcommit_hugepages") != 0)
		cr_skip_test("vm.nr_overcommit_hugepages > 0: the kernel may "
			     "allocate beyond the reserve");
	for (int i = 0; i < 2; i++) {
		struct gmem_region_params rp = {
			.nr_pages = total + 1, .page_size = GMEM_PAGE_2M,
			.backing = backings[i], .flags = GMEM_REGION_MISSING,
		};
		struct gmem_region *r = NULL;

		cr_expect_eq(gmem_region_create(&rp, &r), -ENOSPC,
			     "backing %u, %ld pages reserved", backings[i], total);
		cr_expect_null(r);
	}
}
