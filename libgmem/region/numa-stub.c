// SPDX-License-Identifier: MIT
/*
 * numa-stub.c - NUMA placement when libgmem is built without libnuma
 * (configure --without-numa): every region keeps the default policy.
 */
#include "internal.h"

int gmem_numa_nodes(void)
{
	return -EOPNOTSUPP;
}

int place_on_node(const struct gmem_region *r, void *addr, uint64_t len)
{
	return 0;
}

void run_near_node(const struct gmem_region *r)
{
}

int gmem_region_set_numa_node(struct gmem_region *r, int node)
{
	if (!r || node < -1)
		return -EINVAL;
	return node == -1 ? 0 : -EOPNOTSUPP;
}

int gmem_region_numa_node(const struct gmem_region *r)
{
	return -1;
}
