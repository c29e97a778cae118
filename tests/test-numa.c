// SPDX-License-Identifier: MIT
/*
 * test-numa.c - NUMA placement: a region's pages, its handlers' staging
 * buffers and handler threads land on the node asked for (checked with
 * get_mempolicy/move_pages and the threads' CPU masks), bad nodes are
 * refused, and a PCI device's node is read from a fake sysfs tree and the
 * real one. On a one-node machine the pages are on node 0 whatever the
 * policy, so the policy itself is checked too.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define NR_PAGES 64

static void require_numa(void)
{
	int n = gmem_numa_nodes();

	require_uffd();
	if (n < 0)
		cr_skip_test("no NUMA: %s", strerror(-n));
	if (n == 1)
		cr_log_info("one NUMA node: pages are on node 0 whatever the "
			    "policy; the policy itself is checked");
}

/* The highest node this process may allocate on: on a two-node machine,
 * not the default one. */
static int target_node(void)
{
	struct bitmask *mems = numa_get_mems_allowed();
	int node = -1;

	for (int i = 0; i <= numa_max_node(); i++)
		if (numa_bitmask_isbitset(mems, i))
			node = i;
	numa_bitmask_free(mems);
	cr_assert_geq(node, 0);
	return node;
}

/* The policy of the mapping at @addr: its mode, and whether @node is its
 * only node. */
static int policy_at(void *addr, int node, bool *only_node)
{
	struct bitmask *nodes = numa_allocate_nodemask();
	int mode = -1;

	cr_assert_eq(get_mempolicy(&mode, nodes->maskp, nodes->size + 1, addr,
				   MPOL_F_ADDR), 0, "get_mempolicy: %m");
	*only_node = numa_bitmask_weight(nodes) == 1 &&
		     numa_bitmask_isbitset(nodes, node);
	numa_bitmask_free(nodes);
	return mode;
}

/* How many of @nr pages from @addr are on @node (move_pages query). */
static unsigned int pages_on_node(uint8_t *addr, unsigned int nr, int node)
{
	void *pages[NR_PAGES];
	int status[NR_PAGES];
	unsigned int on = 0;

	cr_assert_leq(nr, NR_PAGES);
	for (unsigned int i = 0; i < nr; i++)
		pages[i] = addr + i * 4096UL;
	cr_assert_eq(move_pages(0, nr, pages, NULL, status, 0), 0,
		     "move_pages: %m");
	for (unsigned int i = 0; i < nr; i++)
		on += status[i] == node;
	return on;
}

struct probe {
	int node;
	int staging_mode;
	bool staging_only_node;
	unsigned int staging_on_node;
	bool cpus_of_node;
};

/* A zero source that, on the handler thread, looks at where it runs and
 * where its staging buffer (@dst) is. */
static int probing_fill(void *ctx, uint64_t pgoff, uint64_t nr, void *dst)
{
	struct probe *p = ctx;
	struct bitmask *cpus = numa_allocate_cpumask();
	cpu_set_t set;
	bool same = true;

	memset(dst, 0, nr * 4096);
	p->staging_mode = policy_at(dst, p->node, &p->staging_only_node);
	p->staging_on_node = pages_on_node(dst, nr, p->node);
	numa_node_to_cpus(p->node, cpus);
	sched_getaffinity(0, sizeof(set), &set);
	for (int c = 0; c < CPU_SETSIZE && c < (int)numa_num_possible_cpus(); c++)
		same &= !!CPU_ISSET(c, &set) == numa_bitmask_isbitset(cpus, c);
	p->cpus_of_node = same;
	numa_bitmask_free(cpus);
	return 0;
}

static void check_placement(uint32_t backing)
{
	struct gmem_fault_params fp = { .fault_around = NR_PAGES };
	struct probe probe = { .node = target_node() };
	struct gmem_region *r;
	struct gmem_source *src;
	bool only;
	uint8_t *p;

	require_numa();
	r = region_new(NR_PAGES, GMEM_PAGE_4K, backing, GMEM_REGION_MISSING);
	cr_assert_eq(gmem_region_set_numa_node(r, probe.node), 0);
	cr_expect_eq(gmem_region_numa_node(r), probe.node);
	p = gmem_region_addr(r);
	cr_expect_eq(policy_at(p, probe.node, &only), MPOL_PREFERRED);
	cr_expect(only, "the region's policy names node %d only", probe.node);
	cr_assert_eq(gmem_source_callback(probing_fill, &probe, &src), 0);
	cr_assert_eq(gmem_region_attach(r, src, &fp), 0);
	for (unsigned int i = 0; i < NR_PAGES; i++)
		cr_assert_eq(p[i * 4096UL], 0);
	cr_expect_eq(pages_on_node(p, NR_PAGES, probe.node), NR_PAGES);
	cr_expect_eq(probe.staging_mode, MPOL_PREFERRED);
	cr_expect(probe.staging_only_node);
	cr_expect_eq(probe.staging_on_node, NR_PAGES);
	cr_expect(probe.cpus_of_node,
		  "the handler runs on the CPUs of node %d", probe.node);
	gmem_region_destroy(r);
	gmem_source_destroy(src);
}

Test(numa, anon_pages_staging_and_handler_on_node, .timeout = 20)
{
	check_placement(GMEM_BACKING_ANON);
}

Test(numa, memfd_pages_staging_and_handler_on_node, .timeout = 20)
{
	check_placement(GMEM_BACKING_MEMFD);
}

Test(numa, nodes_match_sysfs, .timeout = 10)
{
	DIR *d = opendir("/sys/devices/system/node");
	struct dirent *e;
	int n = 0;

	require_numa();
	cr_assert_not_null(d);
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, "node", 4) &&
		     e->d_name[4] >= '0' && e->d_name[4] <= '9';
	closedir(d);
	cr_expect_eq(gmem_numa_nodes(), n);
}

Test(numa, bad_node_is_refused_and_changes_nothing, .timeout = 10)
{
	struct gmem_region *r;
	bool only;

	require_numa();
	r = region_new(NR_PAGES, GMEM_PAGE_4K, GMEM_BACKING_MEMFD, 0);
	cr_expect_eq(gmem_region_set_numa_node(r, numa_max_node() + 1), -EINVAL);
	cr_expect_eq(gmem_region_set_numa_node(r, -2), -EINVAL);
	cr_expect_eq(gmem_region_set_numa_node(NULL, 0), -EINVAL);
	cr_expect_eq(gmem_region_numa_node(r), -1);
	cr_expect_eq(policy_at(gmem_region_addr(r), 0, &only), MPOL_DEFAULT);
	gmem_region_destroy(r);
}

Test(numa, minus_one_restores_default_policy, .timeout = 10)
{
	struct gmem_region *r;
	bool only;

	require_numa();
	r = region_new(NR_PAGES, GMEM_PAGE_4K, GMEM_BACKING_ANON, 0);
	cr_assert_eq(gmem_region_set_numa_node(r, target_node()), 0);
	cr_assert_eq(gmem_region_set_numa_node(r, -1), 0);
	cr_expect_eq(gmem_region_numa_node(r), -1);
	cr_expect_eq(policy_at(gmem_region_addr(r), 0, &only), MPOL_DEFAULT);
	gmem_region_destroy(r);
}

Test(numa, set_while_attached_is_busy, .timeout = 10)
{
	struct gmem_region *r;
	struct gmem_source *src;

	require_numa();
	r = region_new(NR_PAGES, GMEM_PAGE_4K, GMEM_BACKING_ANON,
		       GMEM_REGION_MISSING);
	cr_assert_eq(gmem_source_zero(&src), 0);
	cr_assert_eq(gmem_region_attach(r, src, NULL), 0);
	cr_expect_eq(gmem_region_set_numa_node(r, 0), -EBUSY);
	cr_expect_eq(gmem_region_numa_node(r), -1);
	gmem_region_destroy(r);
	gmem_source_destroy(src);
}

/* --- the node of a PCI device ------------------------------------------- */

static void fake_device(const char *root, const char *addr, const char *node)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s", root, addr);
	cr_assert_eq(mkdir(path, 0755), 0, "mkdir %s: %m", path);
	strcat(path, "/numa_node");
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(node, f);
	fclose(f);
}

Test(pci, node_from_fake_sysfs, .timeout = 10)
{
	char root[] = "/tmp/gmem-sysfs.XXXXXX", cmd[256], dir[300];

	cr_assert_not_null(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/bus", root);
	cr_assert_eq(mkdir(dir, 0755), 0);
	strcat(dir, "/pci");
	cr_assert_eq(mkdir(dir, 0755), 0);
	strcat(dir, "/devices");
	cr_assert_eq(mkdir(dir, 0755), 0);
	fake_device(root, "0000:65:00.0", "1\n");
	fake_device(root, "0001:17:00.1", "0\n");
	fake_device(root, "0000:00:02.0", "-1\n");
	fake_device(root, "0000:00:03.0", "one\n");

	cr_expect_eq(gmem_numa_node_of_pci(root, "0000:65:00.0"), 1);
	cr_expect_eq(gmem_numa_node_of_pci(root, "65:00.0"), 1);
	cr_expect_eq(gmem_numa_node_of_pci(root, "0001:17:00.1"), 0);
	cr_expect_eq(gmem_numa_node_of_pci(root, "0000:00:02.0"), -ENODATA);
	cr_expect_eq(gmem_numa_node_of_pci(root, "0000:00:03.0"), -EIO);
	cr_expect_eq(gmem_numa_node_of_pci(root, "0000:66:00.0"), -ENOENT);
	cr_expect_eq(gmem_numa_node_of_pci(root, "0000:65:00.8"), -EINVAL);
	cr_expect_eq(gmem_numa_node_of_pci(root, "../../../etc"), -EINVAL);
	cr_expect_eq(gmem_numa_node_of_pci(root, "0000:65:00.0/"), -EINVAL);
	cr_expect_eq(gmem_numa_node_of_pci(root, ""), -EINVAL);
	cr_expect_eq(gmem_numa_node_of_pci(root, NULL), -EINVAL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	cr_assert_eq(system(cmd), 0);
}

/* Every real device: the node its sysfs file gives, or -ENODATA for -1. */
Test(pci, node_of_real_devices, .timeout = 10)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	int seen = 0;

	if (!d)
		cr_skip_test("no /sys/bus/pci/devices here");
	while ((e = readdir(d))) {
		char path[512];
		FILE *f;
		int want;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/numa_node",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		cr_assert_eq(fscanf(f, "%d", &want), 1);
		fclose(f);
		cr_expect_eq(gmem_numa_node_of_pci(NULL, e->d_name),
			     want < 0 ? -ENODATA : want, "%s", e->d_name);
		seen++;
	}
	closedir(d);
	if (!seen)
		cr_skip_test("no PCI device with a numa_node file");
}
