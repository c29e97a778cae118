// SPDX-License-Identifier: MIT
/*
 * lazy-restore.c - the smallest use of libgmem: a region whose pages are
 * all missing, filled from a snapshot file on first touch. The program
 * writes a 64 MiB snapshot, maps a region of as many missing pages and
 * reads every page: a read of a missing page faults, and a handler thread
 * installs the page and its fault-around run from the file. Each page is
 * checked against the snapshot.
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
		if (write(fd, page, sizeof(page)) != sizeof(page)) {
			close(fd);
			return -EIO;
		}
	}
	return fd;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "lazy-restore: %s: %s\n", what, strerror(-err));
	return err == -EPERM || err == -ENOSYS ? 77 : 1;
}

int main(void)
{
	struct gmem_region_params p = { .nr_pages = NR_PAGES,
					.flags = GMEM_REGION_MISSING };
	struct gmem_fault_stats st;
	struct gmem_region *r;
	struct gmem_source *src;
	const uint64_t *mem;
	uint64_t bad = 0;
	int fd, ret;

	fd = snapshot();                        /* a file of NR_PAGES pages */
	if (fd < 0)
		return fail("snapshot", fd);
	ret = gmem_region_create(&p, &r);       /* memfd, every page missing */
	if (ret < 0)
		return fail("region", ret);
	ret = gmem_source_file(fd, 0, &src);    /* pages come from the file */
	if (ret < 0)
		return fail("source", ret);
	ret = gmem_region_attach(r, src, NULL); /* 1 thread, 16 pages a fault */
	if (ret < 0)
		return fail("attach", ret);

	mem = gmem_region_addr(r);
	for (uint64_t i = 0; i < NR_PAGES; i++) /* each new run faults */
		bad += mem[i * 512 + 7] != i * 0x9e3779b97f4a7c15ULL + 7;

	gmem_region_detach(r);                  /* joins the handler threads */
	gmem_region_fault_stats(r, &st);
	printf("%ju faults, %ju pages installed, %ju pages differ\n",
	       (uintmax_t)st.faults, (uintmax_t)st.pages_installed,
	       (uintmax_t)bad);
	gmem_region_destroy(r);
	gmem_source_destroy(src);
	close(fd);
	return bad ? 1 : 0;
}
