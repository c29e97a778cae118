/* SPDX-License-Identifier: MIT */
/*
 * helpers.h - shared test helpers: regions with asserts, skips for what the
 * machine lacks, deterministic page patterns.
 */
#ifndef GMEM_TESTS_HELPERS_H
#define GMEM_TESTS_HELPERS_H

#include <stdint.h>

#include <gmem.h>

/* Skips the running test when no userfaultfd can be opened. */
void require_uffd(void);
/* Skips the running test unless every bit of @feat is available. */
void require_features(uint64_t feat, const char *why);

/* gmem_region_create() that asserts success. */
struct gmem_region *region_new(uint64_t nr_pages, uint32_t page_size,
			       uint32_t backing, uint32_t flags);

/* The 64-bit word at @word of page @pgoff in pattern @seed. */
static inline uint64_t pattern_word(uint64_t seed, uint64_t pgoff,
				    uint64_t word)
{
	uint64_t x = seed ^ (pgoff * 0x9E3779B97F4A7C15ULL) ^ (word << 32);

	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ULL;
	return x ^ (x >> 29);
}

/* Fills @nr_pages pages at @dst with pattern @seed, from page @pgoff. */
void pattern_fill(void *dst, uint64_t seed, uint64_t pgoff, uint64_t nr_pages,
		  uint32_t page_size);
/* Whether the page at @p holds pattern @seed for page @pgoff. */
int pattern_check(const void *p, uint64_t seed, uint64_t pgoff,
		  uint32_t page_size);

#endif
