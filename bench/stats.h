/* SPDX-License-Identifier: MIT */
/*
 * stats.h - what every benchmark needs: a monotonic clock, latency samples
 * with percentiles, and one JSON line per measurement (json-c).
 */
#ifndef GMEM_BENCH_STATS_H
#define GMEM_BENCH_STATS_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

uint64_t bench_now_ns(void);

struct samples {
	uint64_t *v;
	size_t n, cap;
};

int samples_add(struct samples *s, uint64_t v);
/* The @pct-th percentile (0..100) of the samples (sorts them); 0 if none. */
uint64_t samples_pct(struct samples *s, double pct);
void samples_free(struct samples *s);

/* Prints @o as one line on stdout and releases it. */
void bench_emit(json_object *o);

#endif
