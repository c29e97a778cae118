/* SPDX-License-Identifier: MIT */
/*
 * floor.h - the bare userfaultfd handler the benchmarks compare gmem with:
 * a raw userfaultfd, a MISSING-registered mapping and one thread resolving
 * each fault with UFFDIO_COPY from memory, nothing of libgmem.
 */
#ifndef GMEM_BENCH_FLOOR_H
#define GMEM_BENCH_FLOOR_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct floor_map {
	int uffd;     /* O_NONBLOCK */
	int memfd;    /* -1 for anonymous memory */
	uint8_t *base;
	size_t len;
	const uint8_t *src; /* copied from, repeated every src_len bytes */
	size_t src_len;
	unsigned int fa;    /* pages per UFFDIO_COPY, aligned to that size */
	bool stop; /* atomic */
	pthread_t tid;
	bool running;
};

/*
 * Maps @len bytes (anonymous, or a memfd when @shmem) registered MISSING
 * with a new userfaultfd, and starts the handler: a fault is resolved with
 * the aligned run of @fa pages, copied from @src (a multiple of @fa pages
 * long, repeated over the mapping). Returns 0 or -errno.
 */
int floor_map(struct floor_map *m, size_t len, bool shmem, const uint8_t *src,
	      size_t src_len, unsigned int fa);
/* Stops the handler and unmaps. */
void floor_unmap(struct floor_map *m);

#endif
