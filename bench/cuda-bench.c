// SPDX-License-Identifier: MIT
/*
 * cuda-bench.c - the VRAM mirror's freeze on a real trace's write set,
 * measured side by side in one run on one GPU: the GPU's memory bandwidth
 * (a device-to-device copy), the fingerprint pass per GiB, the freeze
 * (last fingerprint pass + copy of the pages one step wrote) and
 * stop-and-copy of the whole image through the same path. One JSON line
 * per trace step and a summary line. Never passes or fails.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <gmem-cuda.h>
#include <gmem.h>

#include "opt.h"
#include "stats.h"
#include "trace.h"

#define PAGE 4096ULL

struct opts {
	const char *trace;
	uint32_t scale;
	unsigned int steps;   /* trace steps replayed, each then synced */
	unsigned int reps;    /* bandwidth and stop-and-copy repetitions */
};

static void put(json_object *o, const char *k, double v)
{
	json_object_object_add(o, k, json_object_new_double(v));
}

/* HBM bandwidth: a device-to-device copy of half the buffer onto the other
 * half reads and writes that many bytes each. Best of @reps. */
static double hbm_bytes_per_s(uint8_t *d, uint64_t len, unsigned int reps)
{
	uint64_t half = len / 2 / PAGE * PAGE, best = UINT64_MAX;

	for (unsigned int i = 0; i < reps; i++) {
		uint64_t t0 = bench_now_ns(), dt;

		cudaMemcpy(d + half, d, half, cudaMemcpyDeviceToDevice);
		cudaDeviceSynchronize();
		dt = bench_now_ns() - t0;
		if (dt < best)
			best = dt;
	}
	return 2.0 * half / (best / 1e9);
}

/* The workload's writes of trace step @s: each page gets a new value. */
static int write_step(const struct trace *t, uint32_t s, uint8_t *d)
{
	const struct trace_step *st = &t->steps[s];
	cudaError_t e = cudaSuccess;

	for (uint64_t i = 0; i < st->nr_runs && !e; i++) {
		const struct trace_run *r = &t->runs[st->run_idx + i];

		e = cudaMemsetAsync(d + r->first * PAGE, (s * 37 + 1) & 0xff,
				    r->nr_pages * PAGE, 0);
	}
	return e || cudaDeviceSynchronize() ? -EIO : 0;
}

static json_object *sync_json(const char *what, uint32_t step,
			      const struct gmem_cuda_stats *s)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "what", json_object_new_string(what));
	json_object_object_add(o, "step", json_object_new_int64(step));
	json_object_object_add(o, "pages", json_object_new_int64(s->copied_pages));
	put(o, "fingerprint_ms", s->fingerprint_ns / 1e6);
	put(o, "copy_ms", s->copy_ns / 1e6);
	put(o, "total_ms", s->total_ns / 1e6);
	return o;
}

static int run(const struct opts *o, const struct trace *t,
	       struct gmem_region *r, uint8_t *d)
{
	uint64_t len = t->nr_pages * PAGE, sc_best = UINT64_MAX;
	struct gmem_cuda_stats s, sc = {}, worst = {};
	double hbm, fp_sum = 0, copy_bps, bound;
	struct gmem_cuda *c;
	json_object *sum;
	unsigned int n = 0;
	int ret;

	ret = gmem_cuda_attach(r, 0, d, len, NULL, &c);
	if (ret)
		return ret;
	hbm = hbm_bytes_per_s(d, len, o->reps);
	ret = write_step(t, 0, d);
	/* The image: every page is owed since attach. */
	if (!ret && gmem_cuda_sync(c, 0, &s) < 0)
		ret = -EIO;
	for (uint32_t i = 1; !ret && i <= o->steps; i++) {
		uint32_t step = 1 + (i - 1) % (t->nr_steps - 1);

		ret = write_step(t, step, d);
		if (!ret && gmem_cuda_sync(c, 0, &s) < 0)
			ret = -EIO;
		if (ret)
			break;
		bench_emit(sync_json("freeze", step, &s));
		fp_sum += s.fingerprint_ns;
		n++;
		if (s.total_ns > worst.total_ns)
			worst = s;
	}
	for (unsigned int i = 0; !ret && i < o->reps; i++) {
		if (gmem_cuda_sync(c, GMEM_CUDA_SYNC_ALL, &s) < 0)
			ret = -EIO;
		else if (s.total_ns < sc_best)
			sc_best = s.total_ns, sc = s;
	}
	gmem_cuda_detach(c);
	if (ret || !n)
		return ret ? ret : -EINVAL;
	bench_emit(sync_json("stop-and-copy", 0, &sc));
	copy_bps = sc.copied_pages * PAGE / (sc.copy_ns / 1e9);
	bound = worst.fingerprint_ns / 1e6 +
		worst.copied_pages * PAGE / copy_bps * 1e3;
	sum = json_object_new_object();
	json_object_object_add(sum, "what", json_object_new_string("summary"));
	json_object_object_add(sum, "trace", json_object_new_string(t->name));
	json_object_object_add(sum, "scale_n", json_object_new_int64(t->scale));
	put(sum, "image_GiB", len / (double)(1ULL << 30));
	put(sum, "hbm_GBps", hbm / 1e9);
	put(sum, "fingerprint_ms_per_GiB",
	    fp_sum / n / 1e6 / (len / (double)(1ULL << 30)));
	put(sum, "fingerprint_GBps", len / (fp_sum / n / 1e9) / 1e9);
	put(sum, "fingerprint_vs_hbm", len / (fp_sum / n / 1e9) / hbm);
	put(sum, "copy_GBps", copy_bps / 1e9);
	put(sum, "freeze_worst_ms", worst.total_ns / 1e6);
	put(sum, "freeze_worst_pages", worst.copied_pages);
	put(sum, "freeze_bound_ms", bound);
	put(sum, "freeze_vs_bound", worst.total_ns / 1e6 / bound);
	put(sum, "stop_and_copy_ms", sc.total_ns / 1e6);
	put(sum, "stop_and_copy_vs_freeze",
	    (double)sc.total_ns / worst.total_ns);
	bench_emit(sum);
	return 0;
}

static void usage(void)
{
	printf("usage: cuda-bench --trace FILE [--scale 1/N] [--steps K] [--reps R]\n");
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "trace", required_argument, NULL, 't' },
		{ "scale", required_argument, NULL, 's' },
		{ "steps", required_argument, NULL, 'n' },
		{ "reps", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int ch;

	*o = (struct opts){ .scale = 1, .steps = 4, .reps = 3 };
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (ch) {
		case 't': o->trace = optarg; break;
		case 's':
			if (trace_parse_scale(optarg, &o->scale))
				opt_bad("--scale: expected 1/N, N from 1 to %u, got '%s'",
					TRACE_MAX_SCALE, optarg);
			break;
		case 'n': o->steps = opt_int("--steps", optarg, 1, INT_MAX); break;
		case 'r': o->reps = opt_int("--reps", optarg, 1, INT_MAX); break;
		case 'h': usage(); exit(0);
		default: opt_getopt_fail(ch, argv, lo);
		}
	}
	if (optind < argc)
		opt_fail("unexpected argument '%s'", argv[optind]);
	if (!o->trace)
		opt_fail("--trace FILE is required");
}

int main(int argc, char **argv)
{
	struct gmem_region_params rp = { .page_size = PAGE };
	struct gmem_region *r = NULL;
	struct trace *t = NULL;
	uint8_t *d = NULL;
	char err[256];
	struct opts o;
	int ret;

	parse(argc, argv, &o);
	ret = trace_load(o.trace, o.scale, &t, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "cuda-bench: %s\n", err);
		return 2;
	}
	rp.nr_pages = t->nr_pages;
	ret = gmem_region_create(&rp, &r);
	if (!ret && cudaMalloc((void **)&d, t->nr_pages * PAGE))
		ret = -ENOMEM;
	if (!ret)
		ret = run(&o, t, r, d);
	if (ret)
		fprintf(stderr, "cuda-bench: %s\n", strerror(-ret));
	cudaFree(d);
	gmem_region_destroy(r);
	trace_free(t);
	return ret ? 1 : 0;
}
