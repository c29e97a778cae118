/* SPDX-License-Identifier: MIT */
/*
 * sort.h - the qsort(3) comparison of 64-bit counts, page indexes and
 * durations, for the library and the benchmarks alike (self-contained).
 */
#ifndef GMEM_SORT_H
#define GMEM_SORT_H

#include <stdint.h>

static inline int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#endif
