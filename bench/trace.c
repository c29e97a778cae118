// SPDX-License-Identifier: MIT
/*
 * trace.c - parser of GPU dirty-page traces (gzip'd text, read with zlib).
 * Every step's ranges become scaled runs in one array; errors name the file
 * and line. Knows nothing of regions or pacing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "trace.h"


struct parser {
	gzFile gz;
	const char *path;
	uint64_t line_no;
	char *line;
	size_t cap;
	struct trace *t;
	uint32_t steps_cap;
	uint64_t runs_cap;
	uint64_t seg_end;      /* first page after the last segment */
	uint64_t max_end;      /* highest range end seen (unscaled) */
	uint64_t max_end_line;
	bool have_total;
	char *err;
	size_t errlen;
};

static int fail(struct parser *p, int ret, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(p->err, p->errlen, "%s:%" PRIu64 ": ", p->path,
		     p->line_no);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - n, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static int gz_error(struct parser *p)
{
	int zerr;
	const char *msg = gzerror(p->gz, &zerr);

	switch (zerr) {
	case Z_OK:
	case Z_STREAM_END:
		return 0;
	case Z_BUF_ERROR:
		return fail(p, -ENODATA, "truncated gzip stream after this line (%s)",
			    msg);
	case Z_MEM_ERROR:
		return fail(p, -ENOMEM, "out of memory");
	case Z_ERRNO:
		return fail(p, errno ? -errno : -EIO, "read: %s",
			    strerror(errno));
	default:
		return fail(p, -EINVAL, "corrupt gzip data after this line (%s)",
			    msg);
	}
}

/* Reads one line without its '\n'. Return: 1 line, 0 end of file, -errno. */
static int read_line(struct parser *p)
{
	size_t len = 0;

	for (;;) {
		if (p->cap - len < 2) {
			char *n = realloc(p->line, p->cap * 2);

			if (!n)
				return fail(p, -ENOMEM, "out of memory");
			p->line = n;
			p->cap *= 2;
		}
		if (!gzgets(p->gz, p->line + len, p->cap - len)) {
			int ret = gz_error(p);

			if (ret)
				return ret;
			break;
		}
		len += strlen(p->line + len);
		if (len && p->line[len - 1] == '\n') {
			p->line[--len] = '\0';
			break;
		}
		if (gzeof(p->gz)) {
			/* A last line without '\n': a stream cut short? */
			int ret = gz_error(p);

			if (ret)
				return ret;
			break;
		}
	}
	if (!len && gzeof(p->gz))
		return 0;
	p->line[len] = '\0';
	p->line_no++;
	return 1;
}

/* Splits off the next space-separated word; NULL at the end of the line. */
static char *next_word(char **s)
{
	char *w = *s + strspn(*s, " \t\r");
	char *e;

	if (!*w)
		return NULL;
	e = w + strcspn(w, " \t\r");
	*s = *e ? e + 1 : e;
	*e = '\0';
	return w;
}

/* Strict unsigned decimal: digits only, no sign, no overflow. */
static bool parse_u64(const char *s, char stop, const char **end,
		      uint64_t *out)
{
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	if (*s != stop)
		return false;
	if (end)
		*end = s;
	*out = v;
	return true;
}

/* Expects "KEY VALUE" as the next two words. */
static int expect_field(struct parser *p, char **s, const char *key,
			uint64_t *out)
{
	char *k = next_word(s);
	char *v = k ? next_word(s) : NULL;

	if (!k || strcmp(k, key))
		return fail(p, -EINVAL, "expected '%s' here, found '%s'", key,
			    k ? k : "end of line");
	if (!v || !parse_u64(v, '\0', NULL, out))
		return fail(p, -EINVAL, "'%s' needs an unsigned integer, found '%s'",
			    key, v ? v : "end of line");
	return 0;
}

static int parse_segment(struct parser *p, char *s)
{
	uint64_t k, first, n;
	int ret;

	if ((ret = expect_field(p, &s, "segment", &k)) ||
	    (ret = expect_field(p, &s, "first", &first)) ||
	    (ret = expect_field(p, &s, "pages", &n)))
		return ret;
	if (next_word(&s))
		return fail(p, -EINVAL, "trailing words after segment");
	if (k != p->t->nr_segments)
		return fail(p, -EINVAL, "segment %" PRIu64 " out of order (expected %u)",
			    k, p->t->nr_segments);
	if (first != p->seg_end || !n || n > UINT64_MAX / 2 - first)
		return fail(p, -EINVAL, "segment %" PRIu64 " not contiguous: first %" PRIu64 " pages %" PRIu64 ", expected first %" PRIu64,
			    k, first, n, p->seg_end);
	p->seg_end = first + n;
	p->t->nr_segments++;
	return 0;
}

static int push_run(struct parser *p, struct trace_step *st, uint64_t first,
		    uint64_t nr)
{
	struct trace *t = p->t;
	struct trace_run *last = st->nr_runs ? &t->runs[t->nr_runs - 1] : NULL;

	st->nr_pages += nr;
	if (last && last->first + last->nr_pages == first) {
		last->nr_pages += nr;
		return 0;
	}
	if (t->nr_runs == p->runs_cap) {
		uint64_t cap = p->runs_cap ? p->runs_cap * 2 : 1024;
		struct trace_run *n = realloc(t->runs, cap * sizeof(*n));

		if (!n)
			return fail(p, -ENOMEM, "out of memory");
		t->runs = n;
		p->runs_cap = cap;
	}
	t->runs[t->nr_runs++] = (struct trace_run){ first, nr };
	st->nr_runs++;
	return 0;
}

/* One "p+n" word: checked, scaled (see struct trace) and appended. */
static int parse_range(struct parser *p, struct trace_step *st, char *w,
		       uint64_t *prev_end)
{
	uint64_t first, nr, end, n = p->t->scale;
	const char *e;

	if (!parse_u64(w, '+', &e, &first) || !parse_u64(e + 1, '\0', NULL, &nr))
		return fail(p, -EINVAL, "bad range '%s' (expected FIRST+COUNT)", w);
	if (!nr || nr > UINT64_MAX / 2 || first > UINT64_MAX / 2)
		return fail(p, -EINVAL, "bad range '%s' (empty or too large)", w);
	if (first < *prev_end)
		return fail(p, -EINVAL, "range '%s' overlaps or precedes the previous one (ranges must ascend)",
			    w);
	*prev_end = end = first + nr;
	if (end > p->max_end) {
		p->max_end = end;
		p->max_end_line = p->line_no;
	}
	first = (first + n - 1) / n;
	end = (end + n - 1) / n;
	return end > first ? push_run(p, st, first, end - first) : 0;
}

static int grow_steps(struct parser *p)
{
	struct trace *t = p->t;
	struct trace_step *n;
	uint32_t cap;

	if (t->nr_steps < p->steps_cap)
		return 0;
	cap = p->steps_cap ? p->steps_cap * 2 : 64;
	n = realloc(t->steps, cap * sizeof(*n));
	if (!n)
		return fail(p, -ENOMEM, "out of memory");
	t->steps = n;
	p->steps_cap = cap;
	return 0;
}

static int parse_step(struct parser *p, char *s)
{
	struct trace *t = p->t;
	struct trace_step *st;
	uint64_t i, dur_ns, prev_end = 0;
	char *w;
	int ret;

	if ((ret = expect_field(p, &s, "step", &i)) ||
	    (ret = expect_field(p, &s, "dur_ns", &dur_ns)))
		return ret;
	w = next_word(&s);
	if (!w || strcmp(w, "ranges"))
		return fail(p, -EINVAL, "expected 'ranges' here, found '%s'",
			    w ? w : "end of line");
	if (i != t->nr_steps)
		return fail(p, -EINVAL, "step %" PRIu64 " out of order (expected step %u)",
			    i, t->nr_steps);
	if ((ret = grow_steps(p)))
		return ret;
	st = &t->steps[t->nr_steps];
	*st = (struct trace_step){ .dur_ns = dur_ns, .run_idx = t->nr_runs };
	while ((w = next_word(&s))) {
		ret = parse_range(p, st, w, &prev_end);
		if (ret)
			return ret;
	}
	t->nr_steps++;
	return 0;
}

static int parse_total(struct parser *p, char *s)
{
	uint64_t total, page_size;
	int ret;

	if ((ret = expect_field(p, &s, "total_pages", &total)) ||
	    (ret = expect_field(p, &s, "page_size", &page_size)))
		return ret;
	if (next_word(&s))
		return fail(p, -EINVAL, "trailing words after page_size");
	if (page_size < 512 || page_size > (1U << 30) ||
	    (page_size & (page_size - 1)))
		return fail(p, -EINVAL, "page_size %" PRIu64 " is not a power of two in 512..1G",
			    page_size);
	if (!total || (p->t->nr_segments && total != p->seg_end))
		return fail(p, -EINVAL, "total_pages %" PRIu64 " differs from the segments' %" PRIu64,
			    total, p->seg_end);
	p->t->total_pages = total;
	p->t->page_size = page_size;
	p->have_total = true;
	return 0;
}

/* The first @len (<= 32) bytes of @s, fit to print in an error message. */
static const char *printable(char *s, size_t len)
{
	size_t i;

	if (len > 32)
		len = 32;
	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			s[i] = '?';
	s[len] = '\0';
	return s;
}

static int parse_line(struct parser *p)
{
	char *s = p->line;
	size_t kw = strcspn(s, " \t\r");

	if (p->have_total)
		return fail(p, -EINVAL, "record after the total_pages line (must be last)");
	if (kw == 7 && !strncmp(s, "segment", kw))
		return parse_segment(p, s);
	if (kw == 4 && !strncmp(s, "step", kw))
		return parse_step(p, s);
	if (kw == 11 && !strncmp(s, "total_pages", kw))
		return parse_total(p, s);
	return fail(p, -EINVAL, "unknown record '%s' (expected segment, step or total_pages)",
		    printable(s, kw));
}

/* Whole-file checks once every line is read. */
static int check_end(struct parser *p)
{
	struct trace *t = p->t;

	if (!p->have_total)
		return fail(p, -ENODATA, "truncated: no total_pages line at the end");
	if (t->nr_steps < 2)
		return fail(p, -EINVAL, "%u step(s): needs step 0 (the image) and at least one more",
			    t->nr_steps);
	if (p->max_end > t->total_pages) {
		p->line_no = p->max_end_line;
		return fail(p, -EINVAL, "range ends at page %" PRIu64 ", beyond total_pages %" PRIu64,
			    p->max_end, t->total_pages);
	}
	t->nr_pages = (t->total_pages + t->scale - 1) / t->scale;
	return 0;
}

static void set_name(struct trace *t, const char *path)
{
	const char *b = strrchr(path, '/');
	size_t len;

	b = b ? b + 1 : path;
	len = strcspn(b, ".");
	if (!len)
		len = strlen(b);
	snprintf(t->name, sizeof(t->name), "%.*s", (int)len, b);
}

static int parse_all(struct parser *p)
{
	int ret;

	while ((ret = read_line(p)) > 0) {
		ret = parse_line(p);
		if (ret)
			return ret;
	}
	return ret ? ret : check_end(p);
}

int trace_load(const char *path, uint32_t scale, struct trace **out,
	       char *err, size_t errlen)
{
	struct parser p = { .path = path, .err = err, .errlen = errlen };
	int ret;

	if (!scale || scale > TRACE_MAX_SCALE) {
		snprintf(err, errlen, "scale 1/%u out of range 1..%u", scale,
			 TRACE_MAX_SCALE);
		return -EINVAL;
	}
	p.gz = gzopen(path, "rb");
	if (!p.gz) {
		ret = errno ? -errno : -ENOMEM;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	p.cap = 4096;
	p.line = malloc(p.cap);
	p.t = calloc(1, sizeof(*p.t));
	if (!p.line || !p.t) {
		ret = fail(&p, -ENOMEM, "out of memory");
		goto out;
	}
	p.t->scale = scale;
	set_name(p.t, path);
	ret = parse_all(&p);
out:
	gzclose(p.gz);
	free(p.line);
	if (ret)
		trace_free(p.t);
	else
		*out = p.t;
	return ret;
}

void trace_free(struct trace *t)
{
	if (!t)
		return;
	free(t->steps);
	free(t->runs);
	free(t);
}

int trace_parse_scale(const char *s, uint32_t *out)
{
	uint64_t n;

	if (!strncmp(s, "1/", 2))
		s += 2;
	if (!parse_u64(s, '\0', NULL, &n) || !n || n > TRACE_MAX_SCALE)
		return -EINVAL;
	*out = n;
	return 0;
}

uint64_t trace_page_at(const struct trace *t, uint32_t s, uint64_t pos)
{
	const struct trace_run *r = &t->runs[t->steps[s].run_idx];

	while (pos >= r->nr_pages)
		pos -= (r++)->nr_pages;
	return r->first + pos;
}
