// SPDX-License-Identifier: MIT
/*
 * dirty-bench.c - the dirty log's cost, per backend, in one run: collect time
 * vs region size and dirty fraction (against hashing every page, what finding
 * the written pages costs without the kernel's help), and the slowdown of a
 * write-heavy loop with tracking on vs off. One JSON line per measurement.
 * Never passes or fails.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include <gmem.h>

#include "opt.h"
#include "stats.h"

#define MAX_LIST 8
#define SLOW_REPS 5

struct opts {
	uint64_t sizes_mib[MAX_LIST];
	unsigned int nr_sizes;
	double fractions[MAX_LIST];
	unsigned int nr_fractions;
	uint32_t backends[MAX_LIST];
	unsigned int nr_backends;
	uint32_t backing;
	unsigned int reps;      /* collects per point, at most */
	double budget_s;        /* seconds per point, at least 3 collects */
	uint64_t slow_mib;      /* slowdown: region size */
	double hot[MAX_LIST];   /* slowdown: fractions of it written */
	unsigned int nr_hot;
	unsigned int epoch_ms;  /* slowdown: collect interval */
	unsigned int run_ms;    /* slowdown: length of a timed run */
};

static void put_i64(json_object *j, const char *key, int64_t v)
{
	json_object_object_add(j, key, json_object_new_int64(v));
}

static void put_dbl(json_object *j, const char *key, double v)
{
	json_object_object_add(j, key, json_object_new_double(v));
}

static void put_str(json_object *j, const char *key, const char *v)
{
	json_object_object_add(j, key, json_object_new_string(v));
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int region_new(uint64_t bytes, const struct opts *o, uint32_t backend,
		      struct gmem_region **r)
{
	struct gmem_region_params p = {
		.nr_pages = bytes / 4096, .backing = o->backing,
		.dirty_backend = backend, .name = "dirty-bench",
	};

	return gmem_region_create(&p, r);
}

/* Marks about @frac of the pages at random in @want; returns how many. */
static uint64_t pick_dirty(uint64_t *want, uint64_t nr_pages, double frac,
			   uint64_t *seed)
{
	uint64_t n = 0;
	uint64_t cut = frac >= 1.0 ? UINT64_MAX : frac * (double)UINT64_MAX;

	memset(want, 0, (nr_pages + 63) / 64 * 8);
	for (uint64_t p = 0; p < nr_pages; p++) {
		if (xorshift(seed) > cut)
			continue;
		want[p / 64] |= 1ULL << (p % 64);
		n++;
	}
	return n;
}

static void write_pages(uint8_t *base, const uint64_t *want, uint64_t nr_pages)
{
	for (uint64_t p = 0; p < nr_pages; p++)
		if (want[p / 64] >> (p % 64) & 1)
			((volatile uint64_t *)(base + p * 4096))[p % 512] = p;
}

struct point {
	struct samples collect_ns, scan_ns, write_ns_per_page;
	uint64_t dirty, reported, missed, extra, collects;
};

/* One epoch: dirty the pages, collect, compare. */
static int one_collect(struct gmem_region *r, struct point *pt, uint64_t *want,
		       uint64_t *got, double frac, uint64_t *seed)
{
	uint64_t n = gmem_region_nr_pages(r);
	uint64_t k = pick_dirty(want, n, frac, seed), t0, t1;
	struct gmem_dirty_result res = { .bitmap = got };
	int64_t ret;

	t0 = bench_now_ns();
	write_pages(gmem_region_addr(r), want, n);
	t1 = bench_now_ns();
	ret = gmem_dirty_collect(r, &res);
	if (ret < 0)
		return (int)ret;
	samples_add(&pt->collect_ns, bench_now_ns() - t1);
	samples_add(&pt->scan_ns, res.scan_ns);
	if (k)
		samples_add(&pt->write_ns_per_page, (t1 - t0) / k);
	for (uint64_t w = 0; w < (n + 63) / 64; w++) {
		pt->missed += __builtin_popcountll(want[w] & ~got[w]);
		pt->extra += __builtin_popcountll(got[w] & ~want[w]);
	}
	pt->dirty += k;
	pt->reported += ret;
	pt->collects++;
	return 0;
}

static void emit_point(const char *backend, const struct opts *o,
		       uint64_t bytes, double frac, struct point *pt)
{
	json_object *j = json_object_new_object();
	uint64_t c = pt->collects ? pt->collects : 1;

	put_str(j, "bench", "dirty-collect");
	put_str(j, "backend", backend);
	put_str(j, "backing",
		o->backing == GMEM_BACKING_ANON ? "anon" : "memfd");
	put_i64(j, "region_bytes", bytes);
	put_dbl(j, "dirty_fraction", frac);
	put_i64(j, "dirty_pages", pt->dirty / c);
	put_i64(j, "collects", pt->collects);
	put_i64(j, "collect_ns_p50", samples_pct(&pt->collect_ns, 50));
	put_i64(j, "collect_ns_p99", samples_pct(&pt->collect_ns, 99));
	put_i64(j, "scan_ns_p50", samples_pct(&pt->scan_ns, 50));
	put_i64(j, "write_ns_per_page_p50",
		samples_pct(&pt->write_ns_per_page, 50));
	put_i64(j, "reported_pages", pt->reported / c);
	put_i64(j, "missed_pages", pt->missed);
	put_i64(j, "false_positive_pages", pt->extra);
	bench_emit(j);
}

/* The baseline: one XXH3 per page over the whole region, which is what
 * finding the written pages costs when nothing tracks them. */
static void emit_hash_baseline(struct gmem_region *r, uint64_t bytes)
{
	const uint8_t *base = gmem_region_addr(r);
	uint64_t acc = 0, t0 = bench_now_ns(), dt;
	json_object *j = json_object_new_object();

	for (uint64_t off = 0; off < bytes; off += 4096)
		acc ^= XXH3_64bits(base + off, 4096);
	dt = bench_now_ns() - t0;
	put_str(j, "bench", "dirty-collect");
	put_str(j, "backend", "baseline-xxh3-every-page");
	put_i64(j, "region_bytes", bytes);
	put_i64(j, "collect_ns_p50", dt);
	put_i64(j, "digest", acc & 0xffff);
	bench_emit(j);
}

static void collect_point(struct gmem_region *r, const struct opts *o,
			  const char *name, double frac, uint64_t *want,
			  uint64_t *got)
{
	struct point pt = { 0 };
	uint64_t seed = 0x9e3779b97f4a7c15ULL, t0 = bench_now_ns();
	int ret = 0;

	for (unsigned int i = 0; i < o->reps && ret == 0; i++) {
		if (i >= 3 && bench_now_ns() - t0 > o->budget_s * 1e9)
			break;
		ret = one_collect(r, &pt, want, got, frac, &seed);
	}
	if (ret < 0)
		fprintf(stderr, "%s: collect: %s\n", name, strerror(-ret));
	emit_point(name, o, gmem_region_size(r), frac, &pt);
	samples_free(&pt.collect_ns);
	samples_free(&pt.scan_ns);
	samples_free(&pt.write_ns_per_page);
}

/* Collect time for one backend and size, every dirty fraction. */
static void collect_bench(const struct opts *o, uint32_t backend,
			  uint64_t bytes, bool baseline)
{
	struct gmem_dirty_params dp = { .backend = backend };
	struct gmem_dirty_result res = { 0 };
	const char *name = gmem_dirty_backend_name(backend);
	struct gmem_region *r;
	uint64_t *want, *got;
	int ret = region_new(bytes, o, backend, &r);

	if (ret < 0) {
		fprintf(stderr, "%s: %lu MiB region: %s\n", name,
			(unsigned long)(bytes >> 20), strerror(-ret));
		return;
	}
	memset(gmem_region_addr(r), 1, bytes); /* a populated image */
	if (baseline)
		emit_hash_baseline(r, bytes);
	want = calloc(gmem_dirty_bitmap_words(r), 8);
	got = calloc(gmem_dirty_bitmap_words(r), 8);
	res.bitmap = got;
	ret = want && got ? gmem_dirty_start(r, &dp) : -ENOMEM;
	if (ret == 0)
		ret = (int)gmem_dirty_collect(r, &res); /* the epoch before */
	if (ret < 0)
		fprintf(stderr, "%s: start: %s\n", name, strerror(-ret));
	for (unsigned int f = 0; ret >= 0 && f < o->nr_fractions; f++)
		collect_point(r, o, name, o->fractions[f], want, got);
	free(want);
	free(got);
	gmem_region_destroy(r);
}

/* --- slowdown of a write-heavy loop --------------------------------------- */

struct collector {
	struct gmem_region *r;
	unsigned int epoch_ms;
	int stop;
	uint64_t collects, pages;
};

static void *collector_thread(void *arg)
{
	struct collector *c = arg;
	uint64_t *bm = malloc(gmem_dirty_bitmap_words(c->r) * 8);
	struct gmem_dirty_result res = { .bitmap = bm };

	while (bm && !__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		int64_t n;

		usleep(c->epoch_ms * 1000);
		n = gmem_dirty_collect(c->r, &res);
		if (n < 0)
			break;
		c->collects++;
		c->pages += n;
	}
	free(bm);
	return NULL;
}

/* Random 8-byte stores over the first @hot pages for @run_ms; returns
 * stores per second. */
static double write_loop(uint8_t *base, uint64_t hot, unsigned int run_ms)
{
	uint64_t s = 0x2545f4914f6cdd1dULL, n = 0, t0 = bench_now_ns(), dt;

	do {
		for (unsigned int i = 0; i < 65536; i++, n++) {
			uint64_t x = xorshift(&s);

			/* a random word of a random page of the hot set */
			((volatile uint64_t *)base)[(x % hot) * 512 +
						    (x >> 55)] = n;
		}
		dt = bench_now_ns() - t0;
	} while (dt < run_ms * 1000000ULL);
	return n * 1e9 / dt;
}

/* One timed run, tracking on when @c is given; stores per second. */
static double timed_run(struct gmem_region *r, uint64_t hot,
			const struct opts *o, struct collector *c)
{
	pthread_t th;
	double rate;

	if (c && pthread_create(&th, NULL, collector_thread, c))
		return 0;
	rate = write_loop(gmem_region_addr(r), hot, o->run_ms);
	if (c) {
		__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
	}
	return rate;
}

static void emit_slowdown(const char *name, const struct opts *o,
			  double hot, struct samples *off, struct samples *on,
			  const struct collector *c)
{
	json_object *j = json_object_new_object();
	uint64_t off50 = samples_pct(off, 50), on50 = samples_pct(on, 50);

	put_str(j, "bench", "dirty-slowdown");
	put_str(j, "backend", name);
	put_i64(j, "region_bytes", o->slow_mib << 20);
	put_dbl(j, "hot_fraction", hot);
	put_i64(j, "epoch_ms", o->epoch_ms);
	put_i64(j, "run_ms", o->run_ms);
	put_i64(j, "off_stores_per_s_p50", off50);
	put_i64(j, "on_stores_per_s_p50", on50);
	put_dbl(j, "slowdown_pct",
		on50 ? 100.0 * ((double)off50 / on50 - 1) : 0);
	put_i64(j, "collects", c->collects);
	put_i64(j, "dirty_pages_per_collect",
		c->collects ? c->pages / c->collects : 0);
	bench_emit(j);
}

/* Off and on alternate, SLOW_REPS times each, on the same populated region,
 * so drift of the machine hits both alike. */
static void slowdown_bench(const struct opts *o, uint32_t backend)
{
	struct gmem_dirty_params dp = { .backend = backend };
	const char *name = gmem_dirty_backend_name(backend);
	struct gmem_region *r;
	int ret = region_new(o->slow_mib << 20, o, backend, &r);

	if (ret < 0)
		return;
	memset(gmem_region_addr(r), 1, gmem_region_size(r));
	for (unsigned int h = 0; h < o->nr_hot; h++) {
		uint64_t hot = gmem_region_nr_pages(r) * o->hot[h];
		struct samples off = { 0 }, on = { 0 };
		struct collector c = { 0 };

		hot = hot ? hot : 1;
		for (unsigned int i = 0; i < SLOW_REPS && ret == 0; i++) {
			samples_add(&off, timed_run(r, hot, o, NULL));
			c = (struct collector){ .r = r,
						.epoch_ms = o->epoch_ms };
			ret = gmem_dirty_start(r, &dp);
			if (ret == 0) {
				samples_add(&on, timed_run(r, hot, o, &c));
				ret = gmem_dirty_stop(r);
			}
		}
		if (ret < 0)
			fprintf(stderr, "%s: slowdown: %s\n", name,
				strerror(-ret));
		else
			emit_slowdown(name, o, o->hot[h], &off, &on, &c);
		samples_free(&off);
		samples_free(&on);
	}
	gmem_region_destroy(r);
}

/* --- options ------------------------------------------------------------ */

/* Up to MAX_LIST numbers in [@min, @max], comma-separated. */
static unsigned int parse_list(const char *opt, const char *arg, double *out,
			       double min, double max)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	unsigned int n = 0;

	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n == MAX_LIST)
			opt_bad("%s: expected at most %d numbers, got '%s'",
				opt, MAX_LIST, arg);
		out[n++] = opt_double(opt, tok, min, max);
	}
	free(copy);
	if (!n)
		opt_bad("%s: expected numbers separated by commas, got '%s'",
			opt, arg);
	return n;
}

static void parse_backends(const char *arg, struct opts *o)
{
	static const uint32_t all[] = { GMEM_DIRTY_WP_ASYNC, GMEM_DIRTY_WP_SYNC,
					GMEM_DIRTY_SOFT_DIRTY };
	o->nr_backends = 0;
	for (unsigned int i = 0; i < 3; i++)
		if (strstr(arg, gmem_dirty_backend_name(all[i])) ||
		    !strcmp(arg, "all"))
			o->backends[o->nr_backends++] = all[i];
	if (!o->nr_backends)
		opt_bad("--backends: expected all or some of wp-async,wp-sync,soft-dirty, got '%s'",
			arg);
}

static void usage(void)
{
	printf("usage: dirty-bench [--sizes MiB,...] [--fractions f,...] [--backends all|wp-async,wp-sync,soft-dirty]\n"
	       "          [--anon] [--reps N] [--budget-s S] [--slow-mib MiB] [--hot f,...]\n"
	       "          [--epoch-ms MS] [--run-ms MS] [--no-slowdown] [--no-collect]\n");
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "sizes", required_argument, NULL, 's' },
		{ "fractions", required_argument, NULL, 'f' },
		{ "backends", required_argument, NULL, 'b' },
		{ "anon", no_argument, NULL, 'a' },
		{ "reps", required_argument, NULL, 'r' },
		{ "budget-s", required_argument, NULL, 'B' },
		{ "slow-mib", required_argument, NULL, 'm' },
		{ "hot", required_argument, NULL, 'h' },
		{ "epoch-ms", required_argument, NULL, 'e' },
		{ "run-ms", required_argument, NULL, 'n' },
		{ "no-slowdown", no_argument, NULL, 'S' },
		{ "no-collect", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	double sizes[MAX_LIST];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o->nr_sizes = parse_list("--sizes", optarg, sizes, 1,
						 1 << 20);
			for (unsigned int i = 0; i < o->nr_sizes; i++)
				o->sizes_mib[i] = sizes[i];
			break;
		case 'f':
			o->nr_fractions = parse_list("--fractions", optarg,
						     o->fractions, 0, 1);
			break;
		case 'b': parse_backends(optarg, o); break;
		case 'a': o->backing = GMEM_BACKING_ANON; break;
		case 'r': o->reps = opt_int("--reps", optarg, 1, UINT_MAX); break;
		case 'B':
			o->budget_s = opt_double("--budget-s", optarg, 0, 1e6);
			break;
		case 'm':
			o->slow_mib = opt_int("--slow-mib", optarg, 1, 1 << 20);
			break;
		case 'h':
			o->nr_hot = parse_list("--hot", optarg, o->hot, 0, 1);
			break;
		case 'e':
			o->epoch_ms = opt_int("--epoch-ms", optarg, 1, INT32_MAX);
			break;
		case 'n':
			o->run_ms = opt_int("--run-ms", optarg, 1, INT32_MAX);
			break;
		case 'S': o->slow_mib = 0; break;
		case 'C': o->nr_sizes = 0; break;
		case 'H': usage(); exit(0);
		default: opt_getopt_fail(c, argv, lo);
		}
	}
	if (optind < argc)
		opt_fail("unexpected argument '%s'", argv[optind]);
}

int main(int argc, char **argv)
{
	struct opts o = {
		.sizes_mib = { 256, 1024 }, .nr_sizes = 2,
		.fractions = { 0.001, 0.01, 0.1, 1.0 }, .nr_fractions = 4,
		.backing = GMEM_BACKING_MEMFD, .reps = 20, .budget_s = 5,
		.slow_mib = 256, .hot = { 0.001, 0.01, 0.1, 1.0 }, .nr_hot = 4,
		.epoch_ms = 100, .run_ms = 2000,
	};
	char feat[1024];

	parse_backends("all", &o);
	parse_opts(argc, argv, &o);
	if (gmem_features_report(feat, sizeof(feat)) < 0) {
		fprintf(stderr, "%s: no userfaultfd on this machine\n", opt_prog());
		return 1;
	}
	for (unsigned int b = 0; b < o.nr_backends; b++) {
		for (unsigned int s = 0; s < o.nr_sizes; s++)
			collect_bench(&o, o.backends[b], o.sizes_mib[s] << 20,
				      b == 0);
		if (o.slow_mib)
			slowdown_bench(&o, o.backends[b]);
	}
	return 0;
}
