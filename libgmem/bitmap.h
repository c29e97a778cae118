/* SPDX-License-Identifier: MIT */
/*
 * bitmap.h - compact per-page state bits shared by the fault engine, the
 * dirty log and the page sources. Single-bit updates are atomic; range
 * helpers are not atomic as a whole.
 */
#ifndef GMEM_BITMAP_H
#define GMEM_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

struct bitmap {
	uint64_t nbits;
	uint64_t *words;
};

int bitmap_init(struct bitmap *b, uint64_t nbits, bool set);
void bitmap_free(struct bitmap *b);

static inline bool bitmap_test(const struct bitmap *b, uint64_t i)
{
	uint64_t w = __atomic_load_n(&b->words[i / 64], __ATOMIC_ACQUIRE);

	return (w >> (i % 64)) & 1;
}

/* Sets bit i; returns its previous value. The caller that sees false owns
 * whatever the bit stands for (a page claim). */
static inline bool bitmap_test_and_set(struct bitmap *b, uint64_t i)
{
	uint64_t mask = 1ULL << (i % 64);

	return __atomic_fetch_or(&b->words[i / 64], mask, __ATOMIC_ACQ_REL) &
	       mask;
}

static inline void bitmap_set(struct bitmap *b, uint64_t i)
{
	__atomic_fetch_or(&b->words[i / 64], 1ULL << (i % 64),
			  __ATOMIC_RELEASE);
}

static inline void bitmap_clear(struct bitmap *b, uint64_t i)
{
	__atomic_fetch_and(&b->words[i / 64], ~(1ULL << (i % 64)),
			   __ATOMIC_RELEASE);
}

void bitmap_set_range(struct bitmap *b, uint64_t first, uint64_t n);
void bitmap_clear_range(struct bitmap *b, uint64_t first, uint64_t n);
/* Index of the first set (or clear) bit at or after @from; nbits if none. */
uint64_t bitmap_next_set(const struct bitmap *b, uint64_t from);
uint64_t bitmap_next_clear(const struct bitmap *b, uint64_t from);
uint64_t bitmap_count(const struct bitmap *b);
/* @dst |= @src, both of @dst->nbits bits. */
void bitmap_or(struct bitmap *dst, const struct bitmap *src);

#endif /* GMEM_BITMAP_H */
