// SPDX-License-Identifier: MIT
/*
 * replay-writer.c - gmem-replay's writer thread: stores into the listed pages
 * of each trace step, spread over the step's duration, parks at a store
 * boundary when paused, times its steps, and checks what it wrote (verify).
 * The control socket lives in replay-control.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include <gmem.h>

#include "replay.h"

#define CHUNK_NS 1000000ULL /* pace in slices of about 1 ms of writes */
#define PARK_TIMEOUT_NS (10 * 1000000000ULL)

/* Where the writer is in a step's runs. */
struct cursor {
	const struct trace_run *run;
	uint64_t off;
};

/* The writer thread's own state; published to struct replay per chunk. */
struct wctx {
	struct replay_devstate ds;
	struct cursor cur;
	uint64_t t0;            /* the step's start, re-based after a pause */
	uint64_t last_store_ns;
	uint64_t first_ns;      /* first store after resume, to publish */
	bool stamp_first;
	bool since;             /* measuring gaps since a user resume */
	uint64_t gap_from_ns;   /* the last store; 0 after a park */
	uint64_t max_lag_ns, max_gap_ns, max_gap_end_ns;
};

/* Never 0, so a page that was never written (reads 0) cannot match. */
static inline uint64_t page_value(uint64_t page, uint64_t seq)
{
	return XXH3_64bits_withSeed(&page, sizeof(page), seq) | 1;
}

static inline uint64_t fold(uint64_t checksum, uint64_t v)
{
	return XXH3_64bits_withSeed(&v, sizeof(v), checksum);
}

static inline volatile uint64_t *page_word(struct replay *w, uint64_t page)
{
	return (volatile uint64_t *)(w->addr + page * w->t->page_size);
}

static struct cursor seek(const struct trace *t, uint32_t s, uint64_t pos)
{
	const struct trace_step *st = &t->steps[s];
	struct cursor c = { .run = &t->runs[st->run_idx] };

	if (!st->nr_runs)
		return c;
	/* Stop on a run end rather than past the last run of the step. */
	while (pos > c.run->nr_pages) {
		pos -= c.run->nr_pages;
		c.run++;
	}
	c.off = pos;
	return c;
}

static void rebase(struct replay *w, struct wctx *x)
{
	const struct trace_step *st = &w->t->steps[x->ds.step];
	uint64_t done_ns = st->nr_pages ?
		st->dur_ns * x->ds.pos / st->nr_pages : 0;

	x->t0 = bench_now_ns() - done_ns;
	x->cur = seek(w->t, x->ds.step, x->ds.pos);
}

/* Lock held: what query and pause report. */
static void publish(struct replay *w, struct wctx *x)
{
	w->shown = x->ds;
	if (x->since) {
		w->since.max_lag_ns = x->max_lag_ns;
		w->since.max_gap_ns = x->max_gap_ns;
		w->since.max_gap_end_ns = x->max_gap_end_ns;
	}
	if (x->first_ns) {
		w->first_write_ns = x->first_ns;
		x->first_ns = 0;
	}
}

/* Sleeps until @until_ns, or less when a pause or stop comes. */
static void pace(struct replay *w, struct wctx *x, uint64_t until_ns)
{
	struct timespec ts = {
		.tv_sec = until_ns / 1000000000ULL,
		.tv_nsec = until_ns % 1000000000ULL,
	};

	pthread_mutex_lock(&w->lock);
	publish(w, x);
	while (!w->pause_req && bench_now_ns() < until_ns)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&w->lock);
}

/*
 * Parks while a pause is asked for. The resume may carry a new device state
 * (an incoming destination), so the cursor is sought again.
 * Return: false when the writer must stop.
 */
static bool check_pause(struct replay *w, struct wctx *x)
{
	bool stop;

	if (!__atomic_load_n(&w->pause_req, __ATOMIC_ACQUIRE))
		return true;
	pthread_mutex_lock(&w->lock);
	publish(w, x);
	w->parked_write_ns = x->last_store_ns;
	w->parked = true;
	pthread_cond_broadcast(&w->cond);
	while (w->pause_req && !w->stop_req)
		pthread_cond_wait(&w->cond, &w->lock);
	w->parked = false;
	x->ds = w->shown;
	x->stamp_first = w->stamp_first;
	w->stamp_first = false;
	if (x->stamp_first) {
		x->since = true;
		x->max_lag_ns = x->max_gap_ns = x->max_gap_end_ns = 0;
	}
	x->gap_from_ns = 0; /* parked time is no gap in progress */
	stop = w->stop_req;
	pthread_mutex_unlock(&w->lock);
	rebase(w, x);
	return !stop;
}

/*
 * A store happened: how late it came on the trace's pace (faults slow a
 * step by many short waits as well as one long one), and the time since
 * the previous store.
 */
static void progress_note(struct replay *w, struct wctx *x)
{
	const struct trace_step *st = &w->t->steps[x->ds.step];
	uint64_t now = bench_now_ns();
	uint64_t due = x->t0 + (st->nr_pages ?
		st->dur_ns * (x->ds.pos - 1) / st->nr_pages : 0);

	if (now > due && now - due > x->max_lag_ns)
		x->max_lag_ns = now - due;
	if (x->gap_from_ns && now - x->gap_from_ns > x->max_gap_ns) {
		x->max_gap_ns = now - x->gap_from_ns;
		x->max_gap_end_ns = now;
	}
	x->gap_from_ns = now;
}

/* Lock held: a step ended since the user resume. */
static void since_step(struct replay_since *s, const struct replay_step_rec *r)
{
	if (!s->steps)
		s->first_step_ns = r->dur_ns;
	if (r->dur_ns > s->max_step_ns)
		s->max_step_ns = r->dur_ns;
	if (s->steps < REPLAY_SERIES)
		s->series[s->steps] = *r;
	s->steps++;
}

/* Stores into up to @nr pages of the step; stops early at a pause. */
static uint64_t write_chunk(struct replay *w, struct wctx *x, uint64_t nr)
{
	uint64_t i, v;

	for (i = 0; i < nr; i++) {
		if (__atomic_load_n(&w->pause_req, __ATOMIC_RELAXED))
			break;
		if (x->cur.off == x->cur.run->nr_pages) {
			x->cur.run++;
			x->cur.off = 0;
		}
		v = page_value(x->cur.run->first + x->cur.off, x->ds.seq++);
		*page_word(w, x->cur.run->first + x->cur.off++) = v;
		x->ds.checksum = fold(x->ds.checksum, v);
		x->ds.pos++;
		if (x->since)
			progress_note(w, x);
		if (x->stamp_first) {
			x->first_ns = bench_now_ns();
			x->stamp_first = false;
		}
	}
	if (i)
		x->last_store_ns = bench_now_ns();
	return i;
}

/* Writes the rest of the current step at its pace. Return: false to stop. */
static bool run_step(struct replay *w, struct wctx *x)
{
	const struct trace_step *st;
	uint64_t chunk, end;

	for (;;) {
		if (!check_pause(w, x))
			return false;
		st = &w->t->steps[x->ds.step];
		if (x->ds.pos == st->nr_pages) {
			end = x->t0 + st->dur_ns;
			if (bench_now_ns() >= end)
				return true;
			pace(w, x, end);
			continue;
		}
		chunk = st->dur_ns ? st->nr_pages * CHUNK_NS / st->dur_ns : 0;
		if (chunk < 1)
			chunk = 1;
		if (chunk > st->nr_pages - x->ds.pos)
			chunk = st->nr_pages - x->ds.pos;
		write_chunk(w, x, chunk);
		pace(w, x, x->t0 + st->dur_ns * x->ds.pos / st->nr_pages);
	}
}

/* Records the finished step, moves on. Return: false at --steps. */
static bool end_step(struct replay *w, struct wctx *x)
{
	uint64_t now = bench_now_ns();
	struct replay_step_rec rec = {
		.start_ns = x->t0, .dur_ns = now - x->t0, .step = x->ds.step,
		.trace_dur_ns = w->t->steps[x->ds.step].dur_ns,
	};
	bool more;

	x->ds.steps_done++;
	x->ds.step = x->ds.step + 1 < w->t->nr_steps ? x->ds.step + 1 : 1;
	x->ds.pos = 0;
	x->t0 = now;
	x->cur = seek(w->t, x->ds.step, 0);

	pthread_mutex_lock(&w->lock);
	samples_add(&w->durs, rec.dur_ns); /* on ENOMEM, p50/p99 miss it */
	w->recent[w->nr_recs++ % REPLAY_RECENT] = rec;
	if (x->since)
		since_step(&w->since, &rec);
	publish(w, x);
	more = !w->max_steps || x->ds.steps_done < w->max_steps;
	if (!more) {
		w->state = REPLAY_DONE;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return more;
}

static void *writer_main(void *arg)
{
	struct replay *w = arg;
	struct wctx x = { 0 };

	pthread_mutex_lock(&w->lock);
	x.ds = w->shown;
	pthread_mutex_unlock(&w->lock);
	rebase(w, &x);
	while (run_step(w, &x) && end_step(w, &x))
		;
	pthread_mutex_lock(&w->lock);
	publish(w, &x);
	w->parked_write_ns = x.last_store_ns;
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

void replay_write_image(struct replay *w)
{
	const struct trace_step *st = &w->t->steps[0];
	struct wctx x = { .cur = seek(w->t, 0, 0) };

	write_chunk(w, &x, st->nr_pages);
	x.ds.step = 1;
	x.ds.pos = 0;
	pthread_mutex_lock(&w->lock);
	publish(w, &x);
	pthread_mutex_unlock(&w->lock);
}

/* --- verify: recompute each page's last value ----------------------------- */

struct walk {
	uint32_t step;
	uint64_t pos;           /* positions [0, pos) of step are still to check */
	uint64_t seq;           /* seq of the store at position pos, plus one */
	uint64_t *seen;         /* bitmap: page's last store already checked */
	uint64_t nr_seen;
};

static void check_page(struct replay *w, struct walk *k, uint64_t page,
		       uint64_t seq, struct replay_verify_result *res)
{
	uint64_t want, got;

	if (k->seen[page / 64] & (1ULL << (page % 64)))
		return;
	k->seen[page / 64] |= 1ULL << (page % 64);
	k->nr_seen++;
	want = seq == UINT64_MAX ? 0 : page_value(page, seq);
	got = *page_word(w, page);
	res->checked++;
	if (got != want && !res->mismatches++) {
		res->first_bad_page = page;
		res->expected = want;
		res->found = got;
	}
}

/* Checks positions [0, k->pos) of k->step, last store first. */
static void check_step_back(struct replay *w, struct walk *k,
			    struct replay_verify_result *res)
{
	const struct trace_step *st = &w->t->steps[k->step];
	const struct trace_run *r = &w->t->runs[st->run_idx];
	uint64_t i = 0, acc = 0, j;

	if (k->seq < k->pos)
		k->pos = k->seq; /* a carried state the trace cannot produce */
	while (i < st->nr_runs && acc + r[i].nr_pages < k->pos)
		acc += r[i++].nr_pages;
	while (k->pos) {
		for (j = k->pos - acc; j-- > 0;)
			check_page(w, k, r[i].first + j, --k->seq, res);
		k->pos = acc;
		if (!i--)
			break;
		acc -= r[i].nr_pages;
	}
}

/*
 * Walks the stores backwards from @ds: the first store met for a page is its
 * last. Once a whole loop of steps 1..last has been walked, older loops add
 * no page, so the walk jumps to the image (step 0, seqs 0..P0-1).
 */
int replay_verify(struct replay *w, const struct replay_devstate *ds,
		  struct replay_verify_result *res)
{
	const struct trace *t = w->t;
	uint32_t last = t->nr_steps - 1, full = 0;
	struct walk k = { .step = ds->step, .pos = ds->pos, .seq = ds->seq };
	uint64_t p0 = t->steps[0].nr_pages, page;

	memset(res, 0, sizeof(*res));
	k.seen = calloc(t->nr_pages / 64 + 1, sizeof(*k.seen));
	if (!k.seen)
		return -ENOMEM;
	for (bool first = true; k.nr_seen < t->nr_pages; first = false) {
		check_step_back(w, &k, res);
		if (k.step == 0)
			break;
		if (!first && ++full >= last) {
			k.step = 0;
			k.seq = p0;
		} else if (k.step > 1) {
			k.step--;
		} else {
			k.step = k.seq <= p0 ? 0 : last;
		}
		k.pos = t->steps[k.step].nr_pages;
	}
	for (page = 0; page < t->nr_pages; page++)
		check_page(w, &k, page, UINT64_MAX, res);
	free(k.seen);
	return 0;
}

/* --- control side -------------------------------------------------------- */

int replay_park_locked(struct replay *w)
{
	uint64_t until = bench_now_ns() + PARK_TIMEOUT_NS;
	struct timespec ts = {
		.tv_sec = until / 1000000000ULL,
		.tv_nsec = until % 1000000000ULL,
	};

	if (w->state != REPLAY_RUNNING)
		return 0;
	__atomic_store_n(&w->pause_req, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&w->cond);
	while (!w->parked && w->state == REPLAY_RUNNING)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
			break;
	if (w->parked) {
		w->state = REPLAY_PAUSED;
	} else if (w->state == REPLAY_RUNNING) {
		/* Stuck in a store (a fault nobody serves): let it go on
		 * rather than pause it later, behind the caller's back. */
		__atomic_store_n(&w->pause_req, false, __ATOMIC_RELEASE);
		return -ETIMEDOUT;
	}
	return 0;
}

void replay_unpark_locked(struct replay *w, bool stamp_first)
{
	w->stamp_first = stamp_first;
	if (stamp_first) {
		w->first_write_ns = 0;
		memset(&w->since, 0, sizeof(w->since));
		w->since.active = true;
	}
	w->state = REPLAY_RUNNING;
	__atomic_store_n(&w->pause_req, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&w->cond);
}

void replay_init(struct replay *w, const struct trace *t,
		 struct gmem_region *region, uint64_t max_steps, bool incoming)
{
	pthread_condattr_t ca;

	memset(w, 0, sizeof(*w));
	w->t = t;
	w->region = region;
	w->addr = gmem_region_addr(region);
	w->max_steps = max_steps;
	w->state = incoming ? REPLAY_INCOMING : REPLAY_RUNNING;
	/* An incoming writer starts parked until resume brings its state. */
	w->pause_req = incoming;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&w->lock, NULL);
}

int replay_start(struct replay *w)
{
	int ret = pthread_create(&w->writer, NULL, writer_main, w);

	if (ret)
		return -ret;
	w->writer_started = true;
	return 0;
}

int replay_stop(struct replay *w)
{
	struct timespec ts;
	int ret;

	if (!w->writer_started)
		return 0;
	pthread_mutex_lock(&w->lock);
	w->stop_req = true;
	__atomic_store_n(&w->pause_req, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	/* pthread_timedjoin_np() counts in CLOCK_REALTIME. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += PARK_TIMEOUT_NS / 1000000000ULL;
	ret = pthread_timedjoin_np(w->writer, NULL, &ts);
	if (ret)
		return -ret;
	w->writer_started = false;
	return 0;
}

void replay_fini(struct replay *w)
{
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	samples_free(&w->durs);
}

bool replay_devstate_valid(const struct replay *w,
			   const struct replay_devstate *ds)
{
	const struct trace *t = w->t;

	return ds->step >= 1 && ds->step < t->nr_steps &&
	       ds->pos <= t->steps[ds->step].nr_pages &&
	       ds->seq >= t->steps[0].nr_pages + ds->pos;
}

const char *replay_state_name(enum replay_state s)
{
	static const char *const names[] = {
		[REPLAY_INCOMING] = "incoming", [REPLAY_RUNNING] = "running",
		[REPLAY_PAUSED] = "paused", [REPLAY_DONE] = "done",
	};

	return names[s];
}
