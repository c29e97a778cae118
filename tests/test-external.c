// SPDX-License-Identifier: MIT
/*
 * test-external.c - gmem_region_adopt_uffd(): a mapping list is checked
 * before anything is installed, and faults on a mapping registered with a
 * userfaultfd the caller opened are served at the image offsets the list
 * gives, split at mapping ends. (Another process's userfaultfd:
 * tests/uffd-handler.sh.)
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helpers.h"

#define PS 4096UL

/* A userfaultfd as a VMM opens it, or a skip. */
static int vmm_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd;

	require_uffd();
	fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

		cr_assert_geq(dev, 0);
		fd = ioctl(dev, _IO(0xAA, 0x00), O_CLOEXEC);
		close(dev);
	}
	cr_assert_geq(fd, 0);
	cr_assert_eq(ioctl(fd, UFFDIO_API, &api), 0);
	return fd;
}

Test(external, bad_lists_rejected)
{
	int uffd = vmm_uffd(), fds[2];
	struct gmem_uffd_mapping m[2] = {
		{ 1UL << 30, 16 * PS, 0, PS },
		{ 2UL << 30, 16 * PS, 16 * PS, PS },
	};
	struct gmem_region *r = NULL;

	cr_assert_eq(pipe(fds), 0);
	cr_expect_eq(gmem_region_adopt_uffd(fds[0], m, 2, &r), -EBADF,
		     "a pipe is not a userfaultfd");
	cr_expect_eq(gmem_region_adopt_uffd(uffd, m, 0, &r), -EINVAL);
	cr_expect_eq(gmem_region_adopt_uffd(uffd, m, GMEM_UFFD_MAX_MAPPINGS + 1,
					    &r), -EINVAL);
	cr_expect_eq(gmem_region_adopt_uffd(uffd, m, 2, NULL), -EINVAL);
	m[1].page_size = GMEM_PAGE_2M;
	cr_expect_eq(gmem_region_adopt_uffd(uffd, m, 2, &r), -EINVAL,
		     "mixed page sizes");
	m[1].page_size = PS;
	m[1].offset = 8 * PS;
	cr_expect_eq(gmem_region_adopt_uffd(uffd, m, 2, &r), -EINVAL,
		     "two mappings of one image page");
	m[1].offset = 16 * PS;
	m[1].base_host_virt_addr = m[0].base_host_virt_addr + PS;
	cr_expect_eq(gmem_region_adopt_uffd(uffd, m, 2, &r), -EINVAL,
		     "two mappings of one address");
	m[1].base_host_virt_addr = 2UL << 30;
	m[1].size = UINT64_MAX - PS + 1;
	cr_expect_eq(gmem_region_adopt_uffd(uffd, m, 2, &r), -EINVAL,
		     "offset + size overflows");
	m[1].size = 16 * PS + 1;
	cr_expect_eq(gmem_region_adopt_uffd(uffd, m, 2, &r), -EINVAL,
		     "size not a multiple of the page size");
	cr_expect_null(r, "nothing created");
	close(fds[0]);
	close(fds[1]);
	close(uffd);
}

static int fill_pattern(void *ctx, uint64_t pgoff, uint64_t nr, void *dst)
{
	pattern_fill(dst, 5, pgoff, nr, PS);
	return 0;
}

Test(external, faults_served_at_image_offsets)
{
	int uffd = vmm_uffd();
	uint8_t *a = mmap(NULL, 40 * PS, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)a, .len = 40 * PS },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	/* Two mappings in one VMA, their image ranges swapped: the
	 * fault-around run of image pages 16..31 is split at 24, where the
	 * second mapping ends; image pages 0..7 are in no mapping. */
	struct gmem_uffd_mapping m[2] = {
		{ (uintptr_t)a, 24 * PS, 24 * PS, PS },
		{ (uintptr_t)a + 24 * PS, 16 * PS, 8 * PS, PS },
	};
	struct gmem_region *r;
	struct gmem_source *src;

	cr_assert_neq(a, MAP_FAILED);
	cr_assert_eq(ioctl(uffd, UFFDIO_REGISTER, &reg), 0);
	cr_assert_eq(gmem_region_adopt_uffd(uffd, m, 2, &r), 0);
	cr_expect_eq(gmem_region_nr_pages(r), 48, "the image ends at 48");
	cr_expect_eq(gmem_region_nr_present(r), 8, "image pages 0-7");
	cr_expect_null(gmem_region_addr(r), "no view of the VMM's pages");
	cr_expect_eq(gmem_dirty_start(r, NULL), -EOPNOTSUPP);
	cr_assert_eq(gmem_source_callback(fill_pattern, NULL, &src), 0);
	cr_assert_eq(gmem_region_attach(r, src, NULL), 0);
	for (uint64_t i = 0; i < 40; i++)
		cr_expect(pattern_check(a + i * PS, 5, i < 24 ? 24 + i : i - 16,
					PS), "VMM page %lu", (unsigned long)i);
	gmem_region_detach(r);
	cr_expect_eq(gmem_region_nr_present(r), 48);
	gmem_region_destroy(r);
	gmem_source_destroy(src);
	munmap(a, 40 * PS);
	close(uffd);
}
