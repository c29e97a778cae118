// SPDX-License-Identifier: MIT
/*
 * numa.c - NUMA placement with libnuma: a region's pages (both of its
 * mappings), the fault handlers' staging buffers and the handler threads go
 * to one node, the node of the GPU that uses the region. numa-stub.c stands
 * in when libgmem is built without libnuma. Finding a PCI device's node is
 * pci.c's.
 */
#include <numa.h>
#include <numaif.h>

#include "internal.h"

int gmem_numa_nodes(void)
{
	if (numa_available() < 0)
		return -ENOSYS;
	return numa_num_configured_nodes();
}

/* A node this process may allocate on: one with memory, in its cpuset. */
static bool node_usable(int node)
{
	struct bitmask *mems;
	bool ok;

	if (node > numa_max_node())
		return false;
	mems = numa_get_mems_allowed();
	ok = mems && numa_bitmask_isbitset(mems, node);
	numa_bitmask_free(mems);
	return ok;
}

/*
 * MPOL_PREFERRED, not MPOL_BIND: a full node must not fail a fault (the
 * faulting thread would wait forever); pages spill to another node instead.
 * MPOL_MF_MOVE also moves the pages already there that only this process
 * maps. Node -1 restores the default policy. shmem keeps the policy per
 * file (the page cache filled by write(2) follows it too); hugetlbfs and
 * anonymous memory per mapping, hence both mappings of a region.
 */
int place_on_node(const struct gmem_region *r, void *addr, uint64_t len)
{
	struct bitmask *nodes;
	long ret;

	if (r->numa_node < 0) {
		ret = mbind(addr, len, MPOL_DEFAULT, NULL, 0, 0);
		return ret < 0 ? -errno : 0;
	}
	nodes = numa_allocate_nodemask();
	if (!nodes)
		return -ENOMEM;
	numa_bitmask_setbit(nodes, r->numa_node);
	ret = mbind(addr, len, MPOL_PREFERRED, nodes->maskp, nodes->size + 1,
		    MPOL_MF_MOVE);
	numa_bitmask_free(nodes);
	return ret < 0 ? -errno : 0;
}

void run_near_node(const struct gmem_region *r)
{
	/* Only a hint: a thread that cannot move still serves faults. */
	if (r->numa_node >= 0)
		numa_run_on_node(r->numa_node);
}

/* The region's mappings in this process: an adopted region has none. */
static int place_views(const struct gmem_region *r)
{
	int ret = 0;

	if (r->addr)
		ret = place_on_node(r, r->addr, r->size);
	if (!ret && r->alias && r->alias != r->addr)
		ret = place_on_node(r, r->alias, r->size);
	return ret;
}

int gmem_region_set_numa_node(struct gmem_region *r, int node)
{
	int old, ret;

	if (!r || node < -1)
		return -EINVAL;
	if (numa_available() < 0)
		return -ENOSYS;
	if (node >= 0 && !node_usable(node))
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	if (r->engine) {
		ret = -EBUSY;
		goto out;
	}
	old = r->numa_node;
	r->numa_node = node;
	ret = place_views(r);
	if (ret < 0) {
		/* Put both mappings back as they were. */
		r->numa_node = old;
		place_views(r);
	}
out:
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int gmem_region_numa_node(const struct gmem_region *r)
{
	return r->numa_node;
}
