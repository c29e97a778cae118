// SPDX-License-Identifier: MIT
/*
 * bitmap.c - range operations and searches over struct bitmap, a word at a
 * time. Callers serialise range updates that may race with each other.
 */
#include <errno.h>
#include <stdlib.h>

#include "bitmap.h"

int bitmap_init(struct bitmap *b, uint64_t nbits, bool set)
{
	uint64_t nwords = (nbits + 63) / 64;

	b->nbits = nbits;
	b->words = calloc(nwords ? nwords : 1, sizeof(*b->words));
	if (!b->words)
		return -ENOMEM;
	if (set)
		bitmap_set_range(b, 0, nbits);
	return 0;
}

void bitmap_free(struct bitmap *b)
{
	free(b->words);
	b->words = NULL;
	b->nbits = 0;
}

/* Mask of bits [lo, hi) within one word, 0 <= lo < hi <= 64. */
static uint64_t word_mask(unsigned int lo, unsigned int hi)
{
	uint64_t m = hi == 64 ? ~0ULL : (1ULL << hi) - 1;

	return m & ~((1ULL << lo) - 1);
}

static void range_apply(struct bitmap *b, uint64_t first, uint64_t n, bool set)
{
	uint64_t i = first, end = first + n;

	while (i < end) {
		unsigned int lo = i % 64;
		unsigned int hi = end - (i - lo) >= 64 ? 64 : end - (i - lo);
		uint64_t m = word_mask(lo, hi);

		if (set)
			__atomic_fetch_or(&b->words[i / 64], m, __ATOMIC_RELEASE);
		else
			__atomic_fetch_and(&b->words[i / 64], ~m,
					   __ATOMIC_RELEASE);
		i += hi - lo;
	}
}

void bitmap_set_range(struct bitmap *b, uint64_t first, uint64_t n)
{
	range_apply(b, first, n, true);
}

void bitmap_clear_range(struct bitmap *b, uint64_t first, uint64_t n)
{
	range_apply(b, first, n, false);
}

static uint64_t next_bit(const struct bitmap *b, uint64_t from, bool want)
{
	uint64_t nwords = (b->nbits + 63) / 64;
	uint64_t i = from / 64;
	uint64_t w;

	if (from >= b->nbits)
		return b->nbits;
	w = __atomic_load_n(&b->words[i], __ATOMIC_ACQUIRE);
	if (!want)
		w = ~w;
	w &= ~0ULL << (from % 64);
	while (!w) {
		if (++i >= nwords)
			return b->nbits;
		w = __atomic_load_n(&b->words[i], __ATOMIC_ACQUIRE);
		if (!want)
			w = ~w;
	}
	i = i * 64 + __builtin_ctzll(w);
	return i < b->nbits ? i : b->nbits;
}

uint64_t bitmap_next_set(const struct bitmap *b, uint64_t from)
{
	return next_bit(b, from, true);
}

uint64_t bitmap_next_clear(const struct bitmap *b, uint64_t from)
{
	return next_bit(b, from, false);
}

uint64_t bitmap_count(const struct bitmap *b)
{
	uint64_t nwords = (b->nbits + 63) / 64, n = 0;

	for (uint64_t i = 0; i < nwords; i++) {
		uint64_t w = __atomic_load_n(&b->words[i], __ATOMIC_ACQUIRE);

		if (i == nwords - 1 && b->nbits % 64)
			w &= (1ULL << (b->nbits % 64)) - 1;
		n += __builtin_popcountll(w);
	}
	return n;
}

void bitmap_or(struct bitmap *dst, const struct bitmap *src)
{
	for (uint64_t i = 0; i < (dst->nbits + 63) / 64; i++)
		__atomic_fetch_or(&dst->words[i], src->words[i],
				  __ATOMIC_RELEASE);
}
