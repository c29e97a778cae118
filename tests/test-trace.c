// SPDX-License-Identifier: MIT
/*
 * test-trace.c - the trace parser of gmem-replay (bench/trace.c): both real
 * traces load with the totals docs/traces.md gives, the 1/N scale rule, and bad
 * files (missing, garbage, truncated, inconsistent) give errors that name
 * the file and line.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../bench/trace.h"

#ifndef GMEM_TRACES_DIR
#define GMEM_TRACES_DIR "traces"
#endif

struct tmpfile {
	char path[256];
};

/* The real trace @name, from the source tree's traces/. */
static void real_trace_path(const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s/%s.trace.gz", GMEM_TRACES_DIR, name);
	cr_assert_eq(access(path, R_OK), 0, "trace %s: %s", path,
		     strerror(errno));
}

static struct trace *load_real(const char *name, uint32_t scale)
{
	char path[512], err[512];
	struct trace *t = NULL;
	int ret;

	real_trace_path(name, path, sizeof(path));
	ret = trace_load(path, scale, &t, err, sizeof(err));
	cr_assert_eq(ret, 0, "trace_load(%s): %d: %s", path, ret, err);
	return t;
}

/* Writes @len bytes of @text to a new temporary file, gzip'd if @gz. */
static void tmp_write(struct tmpfile *f, const char *text, size_t len, bool gz)
{
	const char *dir = getenv("TMPDIR");
	gzFile g;
	int fd;

	snprintf(f->path, sizeof(f->path), "%s/gmem-trace-XXXXXX",
		 dir ? dir : "/tmp");
	fd = mkstemp(f->path);
	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	if (!gz) {
		cr_assert_eq(write(fd, text, len), (ssize_t)len);
		close(fd);
		return;
	}
	g = gzdopen(fd, "wb");
	cr_assert_not_null(g);
	cr_assert_eq(gzwrite(g, text, len), (int)len);
	cr_assert_eq(gzclose(g), Z_OK);
}

/* Loads @text as a trace file; returns trace_load()'s result. */
static int load_text(const char *text, uint32_t scale, struct trace **t,
		     char *err, size_t errlen, struct tmpfile *f)
{
	tmp_write(f, text, strlen(text), true);
	return trace_load(f->path, scale, t, err, errlen);
}

static void expect_error(const char *text, int want, const char *line_tag,
			 const char *words)
{
	struct trace *t = NULL;
	struct tmpfile f;
	char err[512] = "";
	int ret = load_text(text, 1, &t, err, sizeof(err), &f);

	unlink(f.path);
	cr_assert_eq(ret, want, "want %d, got %d (%s)", want, ret, err);
	cr_assert_null(t);
	cr_assert(strstr(err, f.path), "error names the file: %s", err);
	cr_assert(strstr(err, line_tag), "error names line '%s': %s",
		  line_tag, err);
	cr_assert(strstr(err, words), "error says '%s': %s", words, err);
}

#define HEAD "segment 0 first 0 pages 20\nstep 0 dur_ns 0 ranges 0+20\n"
#define TAIL "total_pages 20 page_size 4096\n"

Test(trace, loads_llama_infer_with_readme_totals, .timeout = 30.0)
{
	struct trace *t = load_real("llama-infer", 1);
	uint32_t i;

	cr_assert_str_eq(t->name, "llama-infer");
	cr_assert_eq(t->total_pages, 702464);
	cr_assert_eq(t->nr_pages, 702464);
	cr_assert_eq(t->page_size, 4096);
	cr_assert_eq(t->nr_steps, 33);
	cr_assert_eq(t->nr_segments, 123);
	cr_assert_eq(t->steps[0].nr_pages, t->total_pages, "step 0 = image");
	for (i = 1; i < t->nr_steps; i++) {
		double frac = (double)t->steps[i].nr_pages / t->nr_pages;

		/* docs/traces.md: a few percent dirty per ~0.6 s observation. */
		cr_assert(frac > 0.02 && frac < 0.06, "step %u: %.4f", i, frac);
		cr_assert(t->steps[i].dur_ns > 500000000ULL &&
			  t->steps[i].dur_ns < 1200000000ULL);
	}
	trace_free(t);
}

Test(trace, loads_gpt2_train_with_readme_totals, .timeout = 30.0)
{
	struct trace *t = load_real("gpt2-train", 1);
	uint32_t i;

	cr_assert_str_eq(t->name, "gpt2-train");
	cr_assert_eq(t->total_pages, 6409728);
	cr_assert_eq(t->page_size, 4096);
	cr_assert_eq(t->nr_steps, 21);
	cr_assert_eq(t->nr_segments, 162);
	cr_assert_eq(t->steps[0].nr_pages, t->total_pages);
	for (i = 1; i < t->nr_steps; i++) {
		double frac = (double)t->steps[i].nr_pages / t->nr_pages;

		/* docs/traces.md: 93% of the image per ~129 ms step. */
		cr_assert(frac > 0.925 && frac < 0.935, "step %u: %.4f", i, frac);
		cr_assert(t->steps[i].dur_ns > 125000000ULL &&
			  t->steps[i].dur_ns < 135000000ULL);
	}
	trace_free(t);
}

/* Multiples of @n in [first, first + nr). */
static uint64_t multiples(uint64_t first, uint64_t nr, uint64_t n)
{
	return (first + nr + n - 1) / n - (first + n - 1) / n;
}

Test(trace, scale_keeps_every_nth_page_of_real_traces, .timeout = 30.0)
{
	static const char *const names[] = { "llama-infer", "gpt2-train" };
	uint32_t i, s, n = 64;

	for (i = 0; i < 2; i++) {
		struct trace *full = load_real(names[i], 1);
		struct trace *t = load_real(names[i], n);

		cr_assert_eq(t->scale, n);
		cr_assert_eq(t->nr_pages, (full->total_pages + n - 1) / n);
		cr_assert_eq(t->nr_steps, full->nr_steps);
		for (s = 0; s < t->nr_steps; s++) {
			const struct trace_step *fs = &full->steps[s];
			uint64_t r, want = 0;
			double ff, fr;

			for (r = fs->run_idx; r < fs->run_idx + fs->nr_runs; r++)
				want += multiples(full->runs[r].first,
						  full->runs[r].nr_pages, n);
			cr_assert_eq(t->steps[s].nr_pages, want, "step %u", s);
			cr_assert_eq(t->steps[s].dur_ns, fs->dur_ns);
			ff = (double)fs->nr_pages / full->nr_pages;
			fr = (double)t->steps[s].nr_pages / t->nr_pages;
			cr_assert(ff - fr < 0.005 && fr - ff < 0.005,
				  "%s step %u: dirty %.4f at 1/1, %.4f at 1/%u",
				  names[i], s, ff, fr, n);
		}
		trace_free(t);
		trace_free(full);
	}
}

Test(trace, scale_maps_page_p_to_p_over_n, .timeout = 10.0)
{
	struct trace *t = NULL;
	struct tmpfile f;
	char err[256];
	int ret;

	ret = load_text(HEAD "step 1 dur_ns 100 ranges 3+5 9+1 12+4\n" TAIL,
			4, &t, err, sizeof(err), &f);
	unlink(f.path);
	cr_assert_eq(ret, 0, "%s", err);
	cr_assert_eq(t->nr_pages, 5);
	/* 3..7 keeps 4 -> 1; 9 keeps nothing; 12..15 keeps 12 -> 3. */
	cr_assert_eq(t->steps[1].nr_pages, 2);
	cr_assert_eq(t->steps[1].nr_runs, 2);
	cr_assert_eq(trace_page_at(t, 1, 0), 1);
	cr_assert_eq(trace_page_at(t, 1, 1), 3);
	trace_free(t);
}

Test(trace, adjacent_ranges_merge_into_one_run, .timeout = 10.0)
{
	struct trace *t = NULL;
	struct tmpfile f;
	char err[256];
	int ret;

	ret = load_text(HEAD "step 1 dur_ns 100 ranges 0+2 2+3 8+1\n" TAIL,
			1, &t, err, sizeof(err), &f);
	unlink(f.path);
	cr_assert_eq(ret, 0, "%s", err);
	cr_assert_eq(t->steps[1].nr_runs, 2);
	cr_assert_eq(t->steps[1].nr_pages, 6);
	cr_assert_eq(trace_page_at(t, 1, 4), 4);
	cr_assert_eq(trace_page_at(t, 1, 5), 8);
	trace_free(t);
}

Test(trace, plain_text_file_loads, .timeout = 10.0)
{
	static const char text[] = HEAD "step 1 dur_ns 7 ranges 1+1\n" TAIL;
	struct trace *t = NULL;
	struct tmpfile f;
	char err[256];
	int ret;

	tmp_write(&f, text, strlen(text), false);
	ret = trace_load(f.path, 1, &t, err, sizeof(err));
	unlink(f.path);
	cr_assert_eq(ret, 0, "%s", err);
	cr_assert_eq(t->steps[1].dur_ns, 7);
	trace_free(t);
}

Test(trace, parse_scale_accepts_1_over_n_only, .timeout = 5.0)
{
	uint32_t n;

	cr_assert_eq(trace_parse_scale("1/8", &n), 0);
	cr_assert_eq(n, 8);
	cr_assert_eq(trace_parse_scale("64", &n), 0);
	cr_assert_eq(n, 64);
	cr_assert_eq(trace_parse_scale("1/0", &n), -EINVAL);
	cr_assert_eq(trace_parse_scale("0", &n), -EINVAL);
	cr_assert_eq(trace_parse_scale("1/x", &n), -EINVAL);
	cr_assert_eq(trace_parse_scale("2/8", &n), -EINVAL);
	cr_assert_eq(trace_parse_scale("1/-8", &n), -EINVAL);
	cr_assert_eq(trace_parse_scale("", &n), -EINVAL);
}

Test(trace, missing_file_names_it, .timeout = 5.0)
{
	struct trace *t = NULL;
	char err[256];

	cr_assert_eq(trace_load("no/such/file.trace.gz", 1, &t, err,
				sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "no/such/file.trace.gz"), "%s", err);
	cr_assert_eq(trace_load("no/such/file.trace.gz", 0, &t, err,
				sizeof(err)), -EINVAL);
}

Test(trace, garbage_line_is_named, .timeout = 5.0)
{
	expect_error(HEAD "hello world\n" TAIL, -EINVAL, ":3:",
		     "unknown record 'hello'");
	expect_error("\x01\x02\xff binary\n", -EINVAL, ":1:", "unknown record");
}

Test(trace, bad_numbers_are_named, .timeout = 5.0)
{
	expect_error(HEAD "step 1 dur_ns 12x ranges 1+1\n" TAIL, -EINVAL, ":3:",
		     "'dur_ns' needs an unsigned integer, found '12x'");
	expect_error(HEAD "step 1 dur_ns 5 ranges 1-1\n" TAIL, -EINVAL, ":3:",
		     "bad range '1-1'");
	expect_error(HEAD "step 1 dur_ns 5 ranges 1+0\n" TAIL, -EINVAL, ":3:",
		     "empty");
	expect_error(HEAD "step 1 dur_ns 99999999999999999999999 ranges\n" TAIL,
		     -EINVAL, ":3:", "'dur_ns' needs an unsigned integer");
}

Test(trace, inconsistent_records_are_named, .timeout = 5.0)
{
	expect_error(HEAD "step 2 dur_ns 5 ranges 1+1\n" TAIL, -EINVAL, ":3:",
		     "step 2 out of order (expected step 1)");
	expect_error(HEAD "step 1 dur_ns 5 ranges 4+4 6+1\n" TAIL, -EINVAL,
		     ":3:", "overlaps");
	expect_error(HEAD "step 1 dur_ns 5 ranges 19+2\n" TAIL, -EINVAL, ":3:",
		     "beyond total_pages 20");
	expect_error("segment 0 first 5 pages 20\n", -EINVAL, ":1:",
		     "not contiguous");
	expect_error(HEAD "step 1 dur_ns 5 ranges 1+1\ntotal_pages 21 page_size 4096\n",
		     -EINVAL, ":4:", "differs from the segments");
	expect_error(HEAD "step 1 dur_ns 5 ranges 1+1\ntotal_pages 20 page_size 1000\n",
		     -EINVAL, ":4:", "not a power of two");
	expect_error(HEAD TAIL, -EINVAL, ":3:", "at least one more");
	expect_error(HEAD "step 1 dur_ns 5 ranges 1+1\n" TAIL "step 2 dur_ns 1 ranges\n",
		     -EINVAL, ":5:", "after the total_pages line");
}

Test(trace, missing_total_line_is_truncation, .timeout = 5.0)
{
	expect_error(HEAD "step 1 dur_ns 5 ranges 1+1\n", -ENODATA, ":3:",
		     "truncated: no total_pages line");
}

Test(trace, truncated_gzip_stream_is_named, .timeout = 10.0)
{
	size_t len = 0, cap = 1 << 20, i;
	char *text = malloc(cap), *gzdata;
	struct trace *t = NULL;
	struct tmpfile f;
	char err[512];
	FILE *in;
	int ret;

	cr_assert_not_null(text);
	len += snprintf(text, cap, "segment 0 first 0 pages 100000\nstep 0 dur_ns 0 ranges 0+100000\n");
	for (i = 1; i < 2000; i++)
		len += snprintf(text + len, cap - len,
				"step %zu dur_ns %zu ranges %zu+7 %zu+9\n", i,
				i * 7919, i * 13, i * 13 + 50);
	len += snprintf(text + len, cap - len, "total_pages 100000 page_size 4096\n");
	tmp_write(&f, text, len, true);
	/* Keep the first half of the compressed bytes. */
	in = fopen(f.path, "rb");
	cr_assert_not_null(in);
	gzdata = malloc(cap);
	len = fread(gzdata, 1, cap, in);
	fclose(in);
	unlink(f.path);
	tmp_write(&f, gzdata, len / 2, false);
	ret = trace_load(f.path, 1, &t, err, sizeof(err));
	unlink(f.path);
	free(gzdata);
	free(text);
	cr_assert_eq(ret, -ENODATA, "%d: %s", ret, err);
	cr_assert(strstr(err, f.path) && strstr(err, "truncated gzip stream"),
		  "%s", err);
}
