/* SPDX-License-Identifier: MIT */
/*
 * floor.h - the bare userfaultfd set-up the benchmarks compare gmem with:
 * a raw userfaultfd and a MISSING-registered mapping, nothing of libgmem.
 */
#ifndef GMEM_BENCH_FLOOR_H
#define GMEM_BENCH_FLOOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct floor_map {
	int uffd;     /* O_NONBLOCK; resolve with UFFDIO_COPY */
	int memfd;    /* -1 for anonymous memory */
	uint8_t *base;
	size_t len;
};

/* Maps @len bytes (anonymous, or a memfd when @shmem) registered MISSING
 * with a new userfaultfd. Returns 0 or -errno. */
int floor_map(struct floor_map *m, size_t len, bool shmem);
void floor_unmap(struct floor_map *m);

#endif
