/* SPDX-License-Identifier: MIT */
/*
 * trace.h - load a GPU dirty-page trace (.trace.gz, format in the traces'
 * README) into compact run arrays, optionally scaled down by 1/N.
 * Parsing only: replaying the trace is bench/replay.c's job.
 */
#ifndef GMEM_BENCH_TRACE_H
#define GMEM_BENCH_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* A run of consecutive pages written in one step, in scaled page numbers. */
struct trace_run {
	uint64_t first;
	uint64_t nr_pages;
};

struct trace_step {
	uint64_t dur_ns;    /* compute time since the previous observation */
	uint64_t run_idx;   /* first run in trace.runs */
	uint64_t nr_runs;
	uint64_t nr_pages;  /* scaled pages written in this step */
};

/* The smallest scale, 1/TRACE_MAX_SCALE. */
#define TRACE_MAX_SCALE (1U << 20)

/*
 * Scale rule: trace page p is kept iff p % scale == 0 and becomes page
 * p / scale, so a run p+n keeps the multiples of @scale in [p, p+n) as one
 * run. The dirty fraction and the step times stay those of the trace.
 */
struct trace {
	char name[64];          /* file name without directory and .trace.gz */
	uint64_t total_pages;   /* as in the file (unscaled) */
	uint32_t page_size;     /* bytes, as in the file */
	uint32_t scale;         /* N of 1/N; 1 = full size */
	uint64_t nr_pages;      /* scaled image: ceil(total_pages / scale) */
	uint32_t nr_segments;
	uint32_t nr_steps;      /* steps 0..nr_steps-1; step 0 = initial image */
	struct trace_step *steps;
	struct trace_run *runs;
	uint64_t nr_runs;
};

/**
 * trace_load - Read a whole trace file at a scale.
 * @path:   gzip'd (or plain) trace file.
 * @scale:  keep 1 page in @scale (>= 1).
 * @out:    receives the trace; free with trace_free().
 * @err:    receives a one-line message naming the file and the bad line on
 *          failure ("PATH:LINE: what is wrong").
 * @errlen: bytes in @err.
 *
 * Checks that steps are numbered 0, 1, 2, ..., segments are contiguous and
 * add up to total_pages, every range lies within total_pages, step 0 has
 * dur_ns 0, there is at least one step after step 0, and total_pages is the
 * last line.
 * Return: 0; -ENOENT/-EACCES/... the file cannot be opened; -EINVAL a bad
 *         line or a bad @scale; -ENODATA truncated file (no total_pages
 *         line, or a gzip stream cut short); -ENOMEM.
 */
int trace_load(const char *path, uint32_t scale, struct trace **out,
	       char *err, size_t errlen);

/** trace_free - Release a trace from trace_load(); NULL is a no-op. */
void trace_free(struct trace *t);

/**
 * trace_parse_scale - Parse "1/N" or "N" into N.
 * Return: 0 and *@out = N (1..TRACE_MAX_SCALE); -EINVAL otherwise.
 */
int trace_parse_scale(const char *s, uint32_t *out);

/**
 * trace_page_at - The scaled page written at position @pos of step @s.
 * @pos: < t->steps[@s].nr_pages. Linear in the step's runs: for sequential
 *       access walk the runs directly.
 */
uint64_t trace_page_at(const struct trace *t, uint32_t s, uint64_t pos);

#endif /* GMEM_BENCH_TRACE_H */
