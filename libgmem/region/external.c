// SPDX-License-Identifier: MIT
/*
 * external.c - regions whose memory and userfaultfd belong to another
 * process (a VMM), described by a mapping list as Firecracker hands its
 * page-fault handler: each mapping is a range of the VMM's address space
 * that holds a range of the guest memory image. Page indexes of such a
 * region are offsets in the image (region.c translates them to the VMM's
 * addresses). Receiving the list is the caller's business. With the
 * owner's pagemap fd (gmem_region_adopt_pagemap()) the dirty log reads the
 * owner's page tables, mapping by mapping.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "internal.h"
#include "region/engine.h"
#include "syscall.h"

/* A valid list: 1..GMEM_UFFD_MAX_MAPPINGS mappings of one supported page
 * size, aligned, non-empty, without overflow; *end_out is the image size. */
static int maps_check(const struct gmem_uffd_mapping *m, uint32_t n,
		      uint64_t *end_out)
{
	uint64_t ps, end = 0;

	if (!m || !n || n > GMEM_UFFD_MAX_MAPPINGS)
		return -EINVAL;
	ps = m[0].page_size;
	if (ps != GMEM_PAGE_4K && ps != GMEM_PAGE_2M)
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		if (m[i].page_size != ps || !m[i].size || m[i].size % ps ||
		    m[i].base_host_virt_addr % ps || m[i].offset % ps ||
		    m[i].size > UINT64_MAX - m[i].offset ||
		    m[i].size > UINT64_MAX - m[i].base_host_virt_addr)
			return -EINVAL;
		if (m[i].offset + m[i].size > end)
			end = m[i].offset + m[i].size;
	}
	*end_out = end;
	return 0;
}

static bool ranges_overlap(uint64_t a, uint64_t b, uint64_t len_a,
			   uint64_t len_b)
{
	return a < b + len_b && b < a + len_a;
}

/* No two mappings share an address of the VMM or a page of the image. */
static bool maps_disjoint(const struct gmem_uffd_mapping *m, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = i + 1; j < n; j++)
			if (ranges_overlap(m[i].base_host_virt_addr,
					   m[j].base_host_virt_addr,
					   m[i].size, m[j].size) ||
			    ranges_overlap(m[i].offset, m[j].offset,
					   m[i].size, m[j].size))
				return false;
	return true;
}

/* A userfaultfd is an anonymous inode of that name: nothing else may pass. */
static bool fd_is_userfaultfd(int fd)
{
	char path[32], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[userfaultfd]") == 0;
}

/* The features the owner enabled on its userfaultfd, which UFFDIO_API
 * cannot ask again: the kernel shows them in the fd's fdinfo
 * ("API:\t<api>:<features>:<ioctls>"). 0 when that cannot be read: then
 * only the dirty log is missing. */
static uint64_t uffd_fdinfo_features(int fd)
{
	unsigned long long api, ioctls;
	unsigned int feat = 0;
	char path[40], line[128];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "API:\t%llx:%x:%llx", &api, &feat, &ioctls) == 3)
			break;
	fclose(f);
	/* Bit 31 is the kernel's own UFFD_FEATURE_INITIALIZED. */
	return feat & ~(1U << 31);
}

/* Image pages no mapping holds can never fault: they start present. */
static void mark_uncovered(struct gmem_region *r,
			   const struct gmem_uffd_mapping *m, uint32_t n)
{
	bitmap_set_range(&r->claimed, 0, r->nr_pages);
	bitmap_set_range(&r->present, 0, r->nr_pages);
	for (uint32_t i = 0; i < n; i++) {
		bitmap_clear_range(&r->claimed, m[i].offset >> r->page_shift,
				   m[i].size >> r->page_shift);
		bitmap_clear_range(&r->present, m[i].offset >> r->page_shift,
				   m[i].size >> r->page_shift);
	}
}

int gmem_region_adopt_uffd(int uffd, const struct gmem_uffd_mapping *maps,
			   uint32_t nr_maps, struct gmem_region **out)
{
	struct gmem_region *r;
	uint64_t end;
	int ret;

	if (!out)
		return -EINVAL;
	ret = maps_check(maps, nr_maps, &end);
	if (ret < 0)
		return ret;
	if (!maps_disjoint(maps, nr_maps))
		return -EINVAL;
	if (!fd_is_userfaultfd(uffd))
		return -EBADF;
	ret = region_alloc(&r, end / maps[0].page_size, maps[0].page_size,
			   GMEM_REGION_MISSING);
	if (ret < 0)
		return ret;
	r->imported = true; /* never unmapped or exported from here */
	r->reg_mode = UFFDIO_REGISTER_MODE_MISSING;
	r->uffd_features = uffd_fdinfo_features(uffd);
	r->maps = calloc(nr_maps, sizeof(*r->maps));
	r->uffd = sys_ret(fcntl(uffd, F_DUPFD_CLOEXEC, 0));
	ret = !r->maps ? -ENOMEM : r->uffd < 0 ? r->uffd : 0;
	/* The handler threads poll and then read: a blocking read would
	 * stall a thread that lost the batch to another. The flag is on the
	 * shared file description, which the VMM never reads. */
	if (!ret)
		ret = sys_ret(fcntl(r->uffd, F_SETFL, O_NONBLOCK));
	if (ret < 0) {
		gmem_region_destroy(r);
		return ret;
	}
	for (uint32_t i = 0; i < nr_maps; i++)
		r->maps[i] = (struct region_map){
			.uva = maps[i].base_host_virt_addr,
			.pgoff = maps[i].offset >> r->page_shift,
			.nr_pages = maps[i].size >> r->page_shift,
		};
	r->nr_maps = nr_maps;
	r->uva = r->maps[0].uva;
	mark_uncovered(r, maps, nr_maps);
	*out = r;
	return 0;
}

/* /proc/PID/pagemap, opened by anyone (the owner opens /proc/self/...). */
static bool fd_is_pagemap(int fd)
{
	char path[32], target[64], tail[16];
	unsigned int pid;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return sscanf(target, "/proc/%u/%15s", &pid, tail) == 2 &&
	       strcmp(tail, "pagemap") == 0;
}

int gmem_region_adopt_pagemap(struct gmem_region *r, int pagemap_fd)
{
	int ret;

	if (!r || !r->maps)
		return -EINVAL;
	if (!fd_is_pagemap(pagemap_fd))
		return -EBADF;
	pthread_mutex_lock(&r->lock);
	if (r->pagemap_fd >= 0) {
		ret = -EBUSY;
	} else {
		ret = sys_ret(fcntl(pagemap_fd, F_DUPFD_CLOEXEC, 0));
		if (ret >= 0)
			r->pagemap_fd = ret;
	}
	pthread_mutex_unlock(&r->lock);
	return ret < 0 ? ret : 0;
}
