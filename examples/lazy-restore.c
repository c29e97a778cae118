// SPDX-License-Identifier: MIT
/*
 * lazy-restore.c - the smallest use of libgmem: a region whose pages are
 * all missing, filled from a snapshot file on first touch. The program
 * writes a 64 MiB snapshot, maps a region over it, reads a few pages (each
 * read faults, and a handler thread installs the page and its fault-around
 * run from the file), then checks every page against the snapshot.
 *
 *   lazy-restore
 *
 * Exits 0 when every page equals the snapshot, 77 when this machine has no
 * usable userfaultfd.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gmem.h>

#define NR_PAGES 16384UL /* 64 MiB of 4 KiB pages */

static int snapshot(void)
{
	char path[] = "/tmp/gmem-snapshot-XXXXXX";
	uint64_t page[GMEM_PAGE_4K / 8];
	int fd = mkstemp(path);

	if (fd < 0)
		return -errno;
	unlink(path);
	for (uint64_t i = 0; i < NR_PAGES; i++) {
		for (size_t w = 0; w < GMEM_PAGE_4K / 8; w++)
			page[w] = i * 0x9e3779b97f4a7c15ULL + w;
		if (write(fd, page, sizeof(page)) != sizeof(page))
			return -EIO;
	}
	return fd;
}

int main(void)
{
	struct gmem_region_params p = { .nr_pages = NR_PAGES,
					.flags = GMEM_REGION_MISSING };
	struct gmem_fault_stats st;
	struct gmem_region *r;
	struct gmem_source *src;
	uint64_t bad = 0;
	const uint64_t *mem;
	int fd = snapshot(), ret;

	if (fd < 0) {
		fprintf(stderr, "lazy-restore: snapshot: %s\n", strerror(-fd));
		return 1;
	}
	ret = gmem_region_create(&p, &r);       /* memfd, every page missing */
	if (ret < 0) {
		fprintf(stderr, "lazy-restore: region: %s\n", strerror(-ret));
		return ret == -EPERM || ret == -ENOSYS ? 77 : 1;
	}
	ret = gmem_source_file(fd, 0, &src);    /* pages come from the file */
	if (!ret)
		ret = gmem_region_attach(r, src, NULL); /* 1 thread, 16 a fault */
	if (ret < 0) {
		fprintf(stderr, "lazy-restore: attach: %s\n", strerror(-ret));
		return 1;
	}
	mem = gmem_region_addr(r);
	printf("page 100 word 0: %#jx, present pages: %ju\n",
	       (uintmax_t)mem[100 * 512], (uintmax_t)gmem_region_nr_present(r));
	for (uint64_t i = 0; i < NR_PAGES; i++) /* faults in every page */
		bad += mem[i * 512 + 7] != i * 0x9e3779b97f4a7c15ULL + 7;
	gmem_region_detach(r);                  /* the counters are final */
	gmem_region_fault_stats(r, &st);
	printf("%ju faults, %ju pages installed, %ju pages differ\n",
	       (uintmax_t)st.faults, (uintmax_t)st.pages_installed,
	       (uintmax_t)bad);
	gmem_region_destroy(r);
	gmem_source_destroy(src);
	close(fd);
	return bad ? 1 : 0;
}
