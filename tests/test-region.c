// SPDX-License-Identifier: MIT
/*
 * test-region.c - region lifecycle, every bad argument, sharing a memfd
 * region with a second process, adopting an fd, exporting a region to
 * another process, the feature probe and 2 MiB pages.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(region, .init = require_uffd);

static int create(struct gmem_region_params p)
{
	struct gmem_region *r = NULL;
	int ret = gmem_region_create(&p, &r);

	gmem_region_destroy(r);
	return ret;
}

Test(region, create_rejects_bad_arguments, .timeout = 10)
{
	struct gmem_region *r;

	cr_assert_eq(gmem_region_create(NULL, &r), -EINVAL);
	cr_expect_eq(create((struct gmem_region_params){ .nr_pages = 0 }),
		     -EINVAL, "zero size");
	cr_expect_eq(create((struct gmem_region_params){ .nr_pages = 1,
							  .page_size = 8192 }),
		     -EINVAL, "8 KiB pages");
	cr_expect_eq(create((struct gmem_region_params){ .nr_pages = 1,
							  .page_size = 65536 }),
		     -EINVAL, "64 KiB pages on this architecture");
	cr_expect_eq(create((struct gmem_region_params){
			     .nr_pages = UINT64_MAX / 4096 + 1 }),
		     -EINVAL, "size overflow");
	cr_expect_eq(create((struct gmem_region_params){ .nr_pages = 1,
							  .backing = 7 }),
		     -EINVAL, "unknown backing");
	cr_expect_eq(create((struct gmem_region_params){ .nr_pages = 1,
							  .flags = 1U << 9 }),
		     -EINVAL, "unknown flag");
	cr_expect_eq(create((struct gmem_region_params){ .nr_pages = 1,
							  .dirty_backend = 9 }),
		     -EINVAL, "unknown dirty backend");
	cr_expect_eq(create((struct gmem_region_params){ .nr_pages = 1,
							  .resv = { 0, 1 } }),
		     -EINVAL, "non-zero resv");
}

Test(region, adopt_rejects_bad_fd_and_offsets, .timeout = 10)
{
	int fd = memfd_create("t", 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 8 * 4096), 0);
	cr_expect_eq(create((struct gmem_region_params){
			     .nr_pages = 1, .backing = GMEM_BACKING_FD,
			     .fd = -1 }),
		     -EINVAL, "negative fd");
	cr_expect_eq(create((struct gmem_region_params){
			     .nr_pages = 1, .backing = GMEM_BACKING_FD,
			     .fd = fd, .fd_off = 100 }),
		     -EINVAL, "unaligned offset");
	cr_expect_eq(create((struct gmem_region_params){
			     .nr_pages = 8, .backing = GMEM_BACKING_FD,
			     .fd = fd, .fd_off = 4096 }),
		     -EINVAL, "fd shorter than offset + size");
	cr_expect_eq(create((struct gmem_region_params){
			     .nr_pages = 1, .backing = GMEM_BACKING_FD,
			     .fd = 1000 }),
		     -EBADF, "closed fd");
	close(fd);
}

Test(region, memfd_lifecycle_and_accessors, .timeout = 10)
{
	struct gmem_region *r = region_new(64, 0, GMEM_BACKING_MEMFD, 0);
	uint8_t *p = gmem_region_addr(r);

	cr_assert_not_null(p);
	cr_expect_eq(gmem_region_size(r), 64 * 4096);
	cr_expect_eq(gmem_region_page_size(r), 4096);
	cr_expect_eq(gmem_region_nr_pages(r), 64);
	cr_expect_geq(gmem_region_fd(r), 0);
	cr_expect_eq(gmem_region_nr_present(r), 64, "ordinary memory");
	cr_expect(gmem_page_present(r, 63));
	cr_expect_not(gmem_page_present(r, 64), "out of range");
	memset(p, 0xab, gmem_region_size(r));
	cr_expect_eq(p[64 * 4096 - 1], 0xab);
	gmem_region_destroy(r);
	gmem_region_destroy(NULL);
}

Test(region, anon_region_has_no_fd, .timeout = 10)
{
	struct gmem_region *r = region_new(16, 0, GMEM_BACKING_ANON, 0);
	struct gmem_region *missing =
		region_new(16, 0, GMEM_BACKING_ANON, GMEM_REGION_MISSING);

	cr_expect_eq(gmem_region_fd(r), -EBADF);
	cr_expect_eq(gmem_region_nr_present(missing), 0);
	cr_expect_eq(gmem_region_export(r, 0), -EINVAL);
	gmem_region_destroy(r);
	gmem_region_destroy(missing);
}

Test(region, second_process_sees_same_bytes, .timeout = 20)
{
	struct gmem_region *r = region_new(256, 0, GMEM_BACKING_MEMFD, 0);
	int fd = gmem_region_fd(r), status;
	pid_t pid;

	pattern_fill(gmem_region_addr(r), 7, 0, 256, 4096);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* A peer (the hypervisor) maps the memfd on its own. */
		uint8_t *q = mmap(NULL, 256 * 4096, PROT_READ | PROT_WRITE,
				  MAP_SHARED, fd, 0);

		if (q == MAP_FAILED)
			_exit(2);
		for (uint64_t i = 0; i < 256; i++)
			if (!pattern_check(q + i * 4096, 7, i, 4096))
				_exit(3);
		memset(q + 5 * 4096, 0x5a, 4096);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "child saw other bytes (status %d)", status);
	cr_expect_eq(((uint8_t *)gmem_region_addr(r))[5 * 4096 + 9], 0x5a,
		     "the child's write is visible here");
	gmem_region_destroy(r);
}

/* The fill gate travels with an export: the importer (a page server) reads
 * the owner's mark as it rises; only the owner may set it. */
Test(region, fill_gate_travels_with_export, .timeout = 10)
{
	struct gmem_region *r = region_new(64, 0, GMEM_BACKING_MEMFD, 0);
	struct gmem_region *in = NULL, *plain = NULL;
	int sv[2];

	cr_expect_eq(gmem_region_filled(r), 64 * 4096, "no gate: all written");
	cr_expect_eq(gmem_region_fill_set(r, 4096), -EINVAL, "no gate yet");
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(gmem_region_export(r, sv[0]), 0);
	cr_assert_eq(gmem_region_import(sv[1], &plain), 0);
	cr_expect_eq(gmem_region_filled(plain), 64 * 4096);

	cr_assert_eq(gmem_region_fill_gate(r), 0);
	cr_expect_eq(gmem_region_filled(r), 0);
	cr_assert_eq(gmem_region_export(r, sv[0]), 0);
	cr_assert_eq(gmem_region_import(sv[1], &in), 0);
	cr_expect_eq(gmem_region_filled(in), 0);
	cr_expect_eq(gmem_region_fill_set(r, 8 * 4096), 0);
	cr_expect_eq(gmem_region_filled(in), 8 * 4096, "the owner's mark");
	cr_expect_eq(gmem_region_fill_set(in, 4096), -EINVAL, "importer");
	cr_expect_eq(gmem_region_fill_gate(in), -EINVAL, "importer");
	cr_expect_eq(gmem_region_fill_set(r, 64 * 4096 + 1), -EINVAL);
	cr_expect_eq(gmem_region_filled(in), 8 * 4096, "left as it was");
	cr_expect_eq(gmem_region_fill_gate(r), 0, "starts over");
	cr_expect_eq(gmem_region_filled(in), 0);
	cr_expect_eq(gmem_region_filled(plain), 64 * 4096,
		     "an export before the gate has none");
	gmem_region_destroy(in);
	gmem_region_destroy(plain);
	gmem_region_destroy(r);
	close(sv[0]);
	close(sv[1]);
}

Test(region, adopted_fd_keeps_its_content, .timeout = 10)
{
	int fd = memfd_create("vmm-guest-vram", MFD_CLOEXEC);
	uint8_t *buf = malloc(32 * 4096);
	struct gmem_region_params p = {
		.nr_pages = 16, .backing = GMEM_BACKING_FD, .fd = fd,
		.fd_off = 16 * 4096,
	};
	struct gmem_region *r;

	cr_assert_geq(fd, 0);
	pattern_fill(buf, 3, 0, 32, 4096);
	cr_assert_eq(pwrite(fd, buf, 32 * 4096, 0), 32 * 4096);
	cr_assert_eq(gmem_region_create(&p, &r), 0);
	close(fd); /* the region holds its own reference */
	for (uint64_t i = 0; i < 16; i++)
		cr_expect(pattern_check((uint8_t *)gmem_region_addr(r) + i * 4096,
					3, 16 + i, 4096),
			  "page %lu", (unsigned long)i);
	gmem_region_destroy(r);
	free(buf);
}

Test(region, features_report_wp_async_and_minor_shmem, .timeout = 10)
{
	struct utsname u;
	unsigned int major = 0, minor = 0;
	uint64_t feat = 0;
	char text[1024];
	int n;

	cr_assert_eq(gmem_features(&feat), 0);
	n = gmem_features_report(text, sizeof(text));
	cr_assert_gt(n, 0);
	cr_assert_lt((size_t)n, sizeof(text));
	cr_expect_not_null(strstr(text, "minor_shmem: "));
	uname(&u);
	sscanf(u.release, "%u.%u", &major, &minor);
	if (major < 6 || (major == 6 && minor < 7))
		cr_skip_test("kernel %s predates WP_ASYNC/PAGEMAP_SCAN (6.7)",
			     u.release);
	cr_expect(feat & GMEM_FEAT_WP_ASYNC, "%s", text);
	cr_expect(feat & GMEM_FEAT_MINOR_SHMEM, "%s", text);
	cr_expect(feat & GMEM_FEAT_PAGEMAP_SCAN, "%s", text);
	cr_expect_not_null(strstr(text, "wp_async: yes"));
}

Test(region, huge_2m_region, .timeout = 20)
{
	struct gmem_region *r;
	uint8_t *p;

	require_features(GMEM_FEAT_HUGETLB_2M,
			 "no 2 MiB huge pages reserved "
			 "(echo 16 > /proc/sys/vm/nr_hugepages)");
	r = region_new(2, GMEM_PAGE_2M, GMEM_BACKING_MEMFD, 0);
	p = gmem_region_addr(r);
	cr_expect_eq(gmem_region_size(r), 4U << 20);
	memset(p, 0x11, 4U << 20);
	cr_expect_eq(p[(4U << 20) - 1], 0x11);
	gmem_region_destroy(r);
}
