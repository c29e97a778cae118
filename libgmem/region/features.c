// SPDX-License-Identifier: MIT
/*
 * features.c - probes once what the running kernel offers (userfaultfd API
 * features, PAGEMAP_SCAN, soft-dirty, reserved huge pages) and reports it.
 * The probe never trusts the build headers: they may be older than the kernel.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "compat.h"
#include "internal.h"
#include "region/engine.h"
#include "syscall.h"

struct probe {
	pthread_once_t once;
	int ret;
	uint64_t feat;
};

/* The probe's result is a process-wide fact of the kernel; computing it once
 * (pthread_once) is the only shared state of the library. */
static struct probe probe = { .once = PTHREAD_ONCE_INIT };

static const struct {
	uint64_t uffd;
	uint64_t gmem;
} uffd_map[] = {
	{ UFFD_FEATURE_MISSING_SHMEM, GMEM_FEAT_MISSING_SHMEM },
	{ UFFD_FEATURE_MINOR_SHMEM, GMEM_FEAT_MINOR_SHMEM },
	{ UFFD_FEATURE_MISSING_HUGETLBFS, GMEM_FEAT_MISSING_HUGETLB },
	{ UFFD_FEATURE_MINOR_HUGETLBFS, GMEM_FEAT_MINOR_HUGETLB },
	{ UFFD_FEATURE_PAGEFAULT_FLAG_WP, GMEM_FEAT_WP },
	{ UFFD_FEATURE_WP_HUGETLBFS_SHMEM, GMEM_FEAT_WP_SHMEM },
	{ UFFD_FEATURE_WP_UNPOPULATED, GMEM_FEAT_WP_UNPOPULATED },
	{ UFFD_FEATURE_WP_ASYNC, GMEM_FEAT_WP_ASYNC },
	{ UFFD_FEATURE_MOVE, GMEM_FEAT_MOVE },
	{ UFFD_FEATURE_POISON, GMEM_FEAT_POISON },
};

/* PAGEMAP_SCAN over an empty range: ENOTTY on kernels without it. */
static bool have_pagemap_scan(void)
{
	struct pm_scan_arg arg = { .size = sizeof(arg) };
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return false;
	ret = sys_ioctl(fd, PAGEMAP_SCAN, &arg);
	close(fd);
	return ret >= 0;
}

/* A page just written in a new mapping reads soft-dirty (pagemap bit 55)
 * only with CONFIG_MEM_SOFT_DIRTY; clear_refs accepts 4 either way, and
 * writing it would reset the soft-dirty state of the whole process. */
static bool have_soft_dirty(void)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t ent = 0;
	void *p = NULL;
	bool ok = false;

	if (fd < 0)
		return false;
	if (sys_mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, &p) == 0) {
		*(volatile char *)p = 1;
		ok = pread(fd, &ent, sizeof(ent),
			   (uintptr_t)p / 4096 * sizeof(ent)) == sizeof(ent) &&
		     (ent >> 55 & 1);
		munmap(p, 4096);
	}
	close(fd);
	return ok;
}

static bool have_hugepages_2m(void)
{
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
			"re");
	unsigned long n = 0;

	if (!f)
		return false;
	if (fscanf(f, "%lu", &n) != 1)
		n = 0;
	fclose(f);
	return n > 0;
}

static void probe_once(void)
{
	uint64_t uf = 0;

	probe.ret = uffd_probe_features(&uf);
	if (probe.ret < 0)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(uffd_map); i++)
		if (uf & uffd_map[i].uffd)
			probe.feat |= uffd_map[i].gmem;
	if (uf & (1ULL << 63))
		probe.feat |= GMEM_FEAT_DEV_USERFAULTFD;
	if (have_pagemap_scan())
		probe.feat |= GMEM_FEAT_PAGEMAP_SCAN;
	if (have_soft_dirty())
		probe.feat |= GMEM_FEAT_SOFT_DIRTY;
	if (have_hugepages_2m())
		probe.feat |= GMEM_FEAT_HUGETLB_2M;
}

int gmem_features(uint64_t *out)
{
	pthread_once(&probe.once, probe_once);
	if (probe.ret < 0)
		return probe.ret;
	*out = probe.feat;
	return 0;
}

static const struct {
	uint64_t bit;
	const char *name;
} feat_names[] = {
	{ GMEM_FEAT_DEV_USERFAULTFD, "dev_userfaultfd" },
	{ GMEM_FEAT_MISSING_SHMEM, "missing_shmem" },
	{ GMEM_FEAT_MINOR_SHMEM, "minor_shmem" },
	{ GMEM_FEAT_MISSING_HUGETLB, "missing_hugetlbfs" },
	{ GMEM_FEAT_MINOR_HUGETLB, "minor_hugetlbfs" },
	{ GMEM_FEAT_WP, "wp" },
	{ GMEM_FEAT_WP_SHMEM, "wp_shmem" },
	{ GMEM_FEAT_WP_UNPOPULATED, "wp_unpopulated" },
	{ GMEM_FEAT_WP_ASYNC, "wp_async" },
	{ GMEM_FEAT_PAGEMAP_SCAN, "pagemap_scan" },
	{ GMEM_FEAT_MOVE, "uffdio_move" },
	{ GMEM_FEAT_SOFT_DIRTY, "soft_dirty" },
	{ GMEM_FEAT_HUGETLB_2M, "hugetlb_2m_reserved" },
	{ GMEM_FEAT_POISON, "uffdio_poison" },
};

int gmem_features_report(char *buf, size_t len)
{
	uint64_t feat;
	size_t need = 0;
	int ret = gmem_features(&feat);

	if (ret < 0)
		return ret;
	for (size_t i = 0; i < ARRAY_SIZE(feat_names); i++) {
		int n = snprintf(buf && need < len ? buf + need : NULL,
				 buf && need < len ? len - need : 0,
				 "%s: %s\n", feat_names[i].name,
				 feat & feat_names[i].bit ? "yes" : "no");

		need += n;
	}
	return (int)need;
}
