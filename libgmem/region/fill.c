// SPDX-License-Identifier: MIT
/*
 * fill.c - the fill gate: a watermark the region's owner raises while it
 * writes the region's bytes after the switchover (a GPU job copying VRAM
 * into it once the destination runs), so that the freeze need not wait for
 * that copy. The watermark lives in a page of its own memfd, exported with
 * the region, so that the page server of another process reads it.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "syscall.h"

int region_fill_map(struct gmem_region *r, int prot)
{
	void *p = NULL;
	int ret = sys_mmap(NULL, sizeof(uint64_t), prot, MAP_SHARED,
			   r->fill_fd, 0, &p);

	if (ret == 0)
		r->fill = p;
	return ret;
}

void region_fill_free(struct gmem_region *r)
{
	if (r->fill)
		munmap((void *)r->fill, sizeof(uint64_t));
	if (r->fill_fd >= 0)
		close(r->fill_fd);
}

int gmem_region_fill_gate(struct gmem_region *r)
{
	int ret;

	if (!r || r->imported)
		return -EINVAL;
	if (!r->fill) {
		ret = sys_memfd_create("gmem-fill", MFD_CLOEXEC);
		if (ret < 0)
			return ret;
		r->fill_fd = ret;
		ret = sys_ret(ftruncate(r->fill_fd, sizeof(uint64_t)));
		if (ret == 0)
			ret = region_fill_map(r, PROT_READ | PROT_WRITE);
		if (ret < 0) {
			region_fill_free(r);
			r->fill_fd = -1;
			r->fill = NULL;
			return ret;
		}
	}
	__atomic_store_n(r->fill, 0, __ATOMIC_RELEASE);
	return 0;
}

int gmem_region_fill_set(struct gmem_region *r, uint64_t bytes)
{
	if (!r || r->imported || !r->fill || bytes > r->size)
		return -EINVAL;
	/* Release: the bytes below the mark are written before it rises. */
	__atomic_store_n(r->fill, bytes, __ATOMIC_RELEASE);
	return 0;
}

uint64_t gmem_region_filled(const struct gmem_region *r)
{
	uint64_t v;

	if (!r->fill)
		return r->size;
	v = __atomic_load_n(r->fill, __ATOMIC_ACQUIRE);
	return v < r->size ? v : r->size;
}
