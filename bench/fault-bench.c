// SPDX-License-Identifier: MIT
/*
 * fault-bench.c - per-fault latency and pages/s of gmem's fault engine from a
 * local in-memory source, against the bare userfaultfd floor (one handler
 * thread doing UFFDIO_COPY of the same window from memory) in the same run.
 * Prints one JSON line per configuration; the figure is gmem's ratio to the
 * floor of the same backing (anonymous: UFFDIO_COPY; memfd: MISSING on shmem
 * + UFFDIO_COPY) at equal fault-around. With --page-sizes instead: a thread
 * streaming through a memfd region of 4 KiB pages, of 4 KiB pages with 64 KiB
 * fault-around, and of 2 MiB hugetlbfs pages, side by side. Never passes or
 * fails.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gmem.h>

#include "floor.h"
#include "opt.h"
#include "stats.h"

#define PAGE 4096UL

struct run {
	uint8_t *base;
	uint64_t first, nr_pages;
	unsigned int fa;
	struct samples lat;
};

/* Touches the first page of every fault-around window in order: each touch
 * is one fault; its latency is one sample. */
static void *toucher(void *arg)
{
	struct run *t = arg;

	for (uint64_t p = t->first; p < t->first + t->nr_pages; p += t->fa) {
		uint64_t t0 = bench_now_ns();

		*(volatile uint8_t *)(t->base + p * PAGE) = 1;
		samples_add(&t->lat, bench_now_ns() - t0);
	}
	return NULL;
}

/* Runs @n touchers over [0, nr_pages) of @base; returns wall ns and merges
 * their samples into @lat. */
static uint64_t touch_all(uint8_t *base, uint64_t nr_pages, unsigned int fa,
			  unsigned int n, struct samples *lat)
{
	struct run t[2];
	pthread_t tid[2];
	uint64_t t0 = bench_now_ns(), per = nr_pages / n;

	for (unsigned int i = 0; i < n; i++) {
		t[i] = (struct run){ .base = base, .first = i * per,
				     .nr_pages = per, .fa = fa };
		pthread_create(&tid[i], NULL, toucher, &t[i]);
	}
	for (unsigned int i = 0; i < n; i++) {
		pthread_join(tid[i], NULL);
		for (size_t k = 0; k < t[i].lat.n; k++)
			samples_add(lat, t[i].lat.v[k]);
		samples_free(&t[i].lat);
	}
	return bench_now_ns() - t0;
}

/* A memfd floor registers MISSING on shmem and resolves with UFFDIO_COPY,
 * the cheapest kernel path for that backing. */
static int floor_run(uint8_t *src, uint64_t nr_pages, bool memfd,
		     unsigned int fa, unsigned int touchers, struct samples *lat,
		     uint64_t *ns)
{
	struct floor_map m;
	int ret = floor_map(&m, nr_pages * PAGE, memfd, src, nr_pages * PAGE,
			    fa);

	if (ret < 0)
		return ret;
	*ns = touch_all(m.base, nr_pages, fa, touchers, lat);
	floor_unmap(&m);
	return 0;
}

/* --- gmem ----------------------------------------------------------------- */

static int copy_fill(void *ctx, uint64_t pgoff, uint64_t nr, void *dst)
{
	memcpy(dst, (uint8_t *)ctx + pgoff * PAGE, nr * PAGE);
	return 0;
}

static int gmem_run(uint8_t *src, uint64_t nr_pages, uint32_t backing,
		    unsigned int fa, unsigned int handlers, struct samples *lat,
		    uint64_t *ns)
{
	struct gmem_region_params rp = { .nr_pages = nr_pages,
					 .backing = backing,
					 .flags = GMEM_REGION_MISSING };
	struct gmem_fault_params fp = { .nr_threads = handlers,
					.fault_around = fa };
	struct gmem_region *r;
	struct gmem_source *s;
	int ret = gmem_region_create(&rp, &r);

	if (ret < 0)
		return ret;
	ret = gmem_source_callback(copy_fill, src, &s);
	if (!ret)
		ret = gmem_region_attach(r, s, &fp);
	if (!ret)
		*ns = touch_all(gmem_region_addr(r), nr_pages, fa, handlers, lat);
	gmem_region_destroy(r);
	gmem_source_destroy(s);
	return ret;
}

static void emit(const char *engine, const char *backing, unsigned int fa,
		 unsigned int handlers, uint64_t nr_pages, struct samples *lat,
		 uint64_t ns, double floor_pps)
{
	json_object *o = json_object_new_object();
	double pps = nr_pages / (ns / 1e9);

	json_object_object_add(o, "bench", json_object_new_string("fault"));
	json_object_object_add(o, "engine", json_object_new_string(engine));
	json_object_object_add(o, "backing", json_object_new_string(backing));
	json_object_object_add(o, "fault_around", json_object_new_int(fa));
	json_object_object_add(o, "handlers", json_object_new_int(handlers));
	json_object_object_add(o, "pages", json_object_new_int64(nr_pages));
	json_object_object_add(o, "faults", json_object_new_int64(lat->n));
	json_object_object_add(o, "fault_p50_us",
			       json_object_new_double(samples_pct(lat, 50) / 1e3));
	json_object_object_add(o, "fault_p99_us",
			       json_object_new_double(samples_pct(lat, 99) / 1e3));
	json_object_object_add(o, "pages_per_s", json_object_new_double(pps));
	if (floor_pps > 0)
		json_object_object_add(o, "ratio_to_floor",
				       json_object_new_double(pps / floor_pps));
	bench_emit(o);
}

/* One measurement of each engine, @repeat times interleaved; the median
 * run (by pages/s) of each is reported, so a burst of noise on this shared
 * machine hits all three alike. */
struct result {
	struct samples lat;
	uint64_t ns;
};

static int cmp_ns(const void *a, const void *b)
{
	const struct result *x = a, *y = b;

	return x->ns < y->ns ? -1 : x->ns > y->ns;
}

/* --- page sizes: 4 KiB, 64 KiB fault-around, 2 MiB ------------------------ */

struct page_conf {
	const char *name;
	uint32_t page_size;
	unsigned int fa;
};

static const struct page_conf page_confs[] = {
	{ "4k", GMEM_PAGE_4K, 1 },
	{ "4k-fault-around-64k", GMEM_PAGE_4K, 16 },
	{ "2m", GMEM_PAGE_2M, 1 },
};

struct sized_src {
	const uint8_t *src;
	uint32_t page_size;
};

static int sized_fill(void *ctx, uint64_t pgoff, uint64_t nr, void *dst)
{
	const struct sized_src *s = ctx;

	memcpy(dst, s->src + pgoff * s->page_size, nr * s->page_size);
	return 0;
}

/* One thread writes every 4 KiB of a MISSING memfd region in order, as a
 * workload sweeping its memory after a switchover; every write is a sample,
 * so the slowest is the longest stall. */
static int sized_run(const uint8_t *src, uint64_t bytes,
		     const struct page_conf *c, struct result *res,
		     uint64_t *faults)
{
	struct gmem_region_params rp = { .nr_pages = bytes / c->page_size,
					 .page_size = c->page_size,
					 .flags = GMEM_REGION_MISSING };
	struct gmem_fault_params fp = { .fault_around = c->fa };
	struct sized_src ctx = { .src = src, .page_size = c->page_size };
	struct gmem_fault_stats st;
	struct gmem_region *r;
	struct gmem_source *s = NULL;
	uint8_t *base;
	int ret = gmem_region_create(&rp, &r);

	if (ret < 0)
		return ret;
	ret = gmem_source_callback(sized_fill, &ctx, &s);
	if (!ret)
		ret = gmem_region_attach(r, s, &fp);
	if (!ret) {
		uint64_t t0 = bench_now_ns();

		base = gmem_region_addr(r);
		for (uint64_t off = 0; off < bytes; off += PAGE) {
			uint64_t t = bench_now_ns();

			*(volatile uint8_t *)(base + off) = 1;
			samples_add(&res->lat, bench_now_ns() - t);
		}
		res->ns = bench_now_ns() - t0;
		gmem_region_fault_stats(r, &st);
		*faults = st.faults;
	}
	gmem_region_destroy(r);
	gmem_source_destroy(s);
	return ret;
}

static void emit_sized(const struct page_conf *c, uint64_t bytes,
		       struct result *m, uint64_t faults, uint64_t base_ns)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "bench", json_object_new_string("fault-pages"));
	json_object_object_add(o, "config", json_object_new_string(c->name));
	json_object_object_add(o, "page_size", json_object_new_int(c->page_size));
	json_object_object_add(o, "fault_around", json_object_new_int(c->fa));
	json_object_object_add(o, "bytes", json_object_new_int64(bytes));
	json_object_object_add(o, "faults", json_object_new_int64(faults));
	json_object_object_add(o, "total_ms", json_object_new_double(m->ns / 1e6));
	json_object_object_add(o, "touch_p50_us",
			       json_object_new_double(samples_pct(&m->lat, 50) / 1e3));
	json_object_object_add(o, "touch_p99_us",
			       json_object_new_double(samples_pct(&m->lat, 99) / 1e3));
	json_object_object_add(o, "touch_max_us",
			       json_object_new_double(samples_pct(&m->lat, 100) / 1e3));
	json_object_object_add(o, "MBps", json_object_new_double(bytes / (m->ns / 1e3)));
	json_object_object_add(o, "time_vs_4k",
			       json_object_new_double((double)m->ns / base_ns));
	bench_emit(o);
}

/* Every configuration @repeat times, interleaved; the median of each. */
static int measure_sizes(const uint8_t *src, uint64_t bytes, unsigned int repeat)
{
	enum { N = sizeof(page_confs) / sizeof(page_confs[0]) };
	struct result res[N][9] = {};
	uint64_t faults[N] = {};
	int ret = 0;

	for (unsigned int k = 0; k < repeat && !ret; k++)
		for (int c = 0; c < N && !ret; c++)
			ret = sized_run(src, bytes, &page_confs[c], &res[c][k],
					&faults[c]);
	if (ret == -ENOSPC)
		fprintf(stderr, "fault-bench: %" PRIu64 " huge pages of 2 MiB needed: sysctl vm.nr_hugepages=N (root)\n",
			bytes >> 21);
	else if (ret < 0)
		fprintf(stderr, "fault-bench: %s\n", strerror(-ret));
	for (int c = 0; c < N && !ret; c++) {
		qsort(res[c], repeat, sizeof(res[c][0]), cmp_ns);
		emit_sized(&page_confs[c], bytes, &res[c][repeat / 2], faults[c],
			   res[0][repeat / 2].ns);
	}
	for (int c = 0; c < N; c++)
		for (unsigned int k = 0; k < repeat; k++)
			samples_free(&res[c][k].lat);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: fault-bench [--pages N] [--repeat R] [--page-sizes]\n"
		   "Fault-engine latency and pages/s vs a bare userfaultfd\n"
		   "handler, fault-around 1/16/64, 1-2 handler threads and\n"
		   "as many faulting threads; the floor has one handler.\n"
		   "  --pages N      4 KiB pages per run, rounded down to 128\n"
		   "                 (default 16384 = 64 MiB)\n"
		   "  --repeat R     runs of each, median reported (default 3)\n"
		   "  --page-sizes   instead: one thread writing every 4 KiB of a\n"
		   "                 memfd region of 4 KiB pages, of 4 KiB pages with\n"
		   "                 64 KiB fault-around, of 2 MiB pages (hugetlbfs:\n"
		   "                 N / 512 reserved huge pages): faults, total time,\n"
		   "                 write latency p50/p99/max\n"
		   "  -h, --help     this text\n");
}

static int measure(uint8_t *src, uint64_t nr_pages, unsigned int fa,
		   unsigned int h, unsigned int repeat)
{
	struct result res[4][9] = {};
	int ret = 0;

	/* [0] floor anon, [1] gmem anon, [2] floor memfd, [3] gmem memfd */
	for (unsigned int k = 0; k < repeat && !ret; k++) {
		ret = floor_run(src, nr_pages, false, fa, h, &res[0][k].lat,
				&res[0][k].ns);
		if (!ret)
			ret = gmem_run(src, nr_pages, GMEM_BACKING_ANON, fa, h,
				       &res[1][k].lat, &res[1][k].ns);
		if (!ret)
			ret = floor_run(src, nr_pages, true, fa, h,
					&res[2][k].lat, &res[2][k].ns);
		if (!ret)
			ret = gmem_run(src, nr_pages, GMEM_BACKING_MEMFD, fa, h,
				       &res[3][k].lat, &res[3][k].ns);
	}
	if (ret < 0) {
		fprintf(stderr, "fault-bench: %s\n", strerror(-ret));
		return ret;
	}
	for (int e = 0; e < 4; e++) {
		struct result *m;
		double floor_pps;

		qsort(res[e], repeat, sizeof(res[e][0]), cmp_ns);
		m = &res[e][repeat / 2];
		floor_pps = nr_pages / (res[e & ~1][repeat / 2].ns / 1e9);
		emit(e & 1 ? "gmem" : "floor", e & 2 ? "memfd" : "anon", fa,
		     e & 1 ? h : 1, nr_pages, &m->lat, m->ns,
		     e & 1 ? floor_pps : 0);
	}
	for (int e = 0; e < 4; e++)
		for (unsigned int k = 0; k < repeat; k++)
			samples_free(&res[e][k].lat);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pages", required_argument, NULL, 'p' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "page-sizes", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	static const char shorts[] = ":p:r:sh";
	static const unsigned int fas[] = { 1, 16, 64 };
	const char *pages = NULL;
	uint64_t nr_pages = 16384;
	unsigned int repeat = 3;
	bool sizes = false;
	uint8_t *src;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		if (c == 's') {
			sizes = true;
		} else if (c == 'p') {
			pages = optarg;
		} else if (c == 'r') {
			/* A median of at most 9 runs (the result arrays). */
			repeat = opt_int("--repeat", optarg, 1, 9);
		} else if (c == 'h') {
			usage(stdout);
			return 0;
		} else {
			opt_getopt_fail(c, argv, opts);
		}
	}
	if (optind < argc)
		opt_fail("unexpected argument '%s'", argv[optind]);
	/* --page-sizes needs whole 2 MiB pages. */
	if (pages)
		nr_pages = opt_int("--pages", pages, sizes ? 512 : 128,
				   LLONG_MAX / PAGE);
	nr_pages &= sizes ? ~511ULL : ~127ULL;
	src = malloc(nr_pages * PAGE);
	if (!src)
		return 1;
	memset(src, 0x42, nr_pages * PAGE);
	if (sizes) {
		c = measure_sizes(src, nr_pages * PAGE, repeat);
		free(src);
		return c < 0;
	}
	for (size_t i = 0; i < sizeof(fas) / sizeof(fas[0]); i++)
		for (unsigned int h = 1; h <= 2; h++)
			if (measure(src, nr_pages, fas[i], h, repeat) < 0)
				return 1;
	free(src);
	return 0;
}
