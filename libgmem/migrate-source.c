// SPDX-License-Identifier: MIT
/*
 * migrate-source.c - the source side of a migration: pre-copy rounds from
 * the dirty log, the freeze (pause, last pages, device state), then serving
 * post-copy until the destination confirms every page by digest.
 */
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

struct mig_src {
	struct gmem_region *r;
	struct gmem_server *srv;
	struct mig_params m;
	struct gmem_migrate_stats *st;
	struct mig_ticker tick;
	uint64_t words;   /* uint64_t words of one page bitmap */
	uint64_t *dirty;  /* last collect, not yet sent */
	uint64_t *unsent; /* written since sent: pages owed at the freeze */
	bool tracking;
};

static void bitmap_or(uint64_t *dst, const uint64_t *src, uint64_t words)
{
	for (uint64_t i = 0; i < words; i++)
		dst[i] |= src[i];
}

/* Sets the first @nr bits, and no bit beyond. */
static void bitmap_fill(uint64_t *b, uint64_t nr)
{
	memset(b, 0xff, nr / 64 * 8);
	if (nr % 64)
		b[nr / 64] = (1ULL << (nr % 64)) - 1;
}

static uint64_t bitmap_weight(const uint64_t *b, uint64_t words)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < words; i++)
		n += __builtin_popcountll(b[i]);
	return n;
}

/* Sends one pre-copy round and updates the measured link rate. */
static int64_t src_send(struct mig_src *s, const uint64_t *bitmap)
{
	uint64_t t0 = now_ns(), dt;
	int64_t n = gmem_server_send_pages(s->srv, bitmap, s->r->nr_pages);

	if (n <= 0)
		return n;
	dt = now_ns() - t0;
	if (dt)
		s->st->link_bytes_per_s =
			(uint64_t)((double)(n << s->r->page_shift) * 1e9 / dt);
	return n;
}

/* Collects the dirty log into s->dirty and adds it to s->unsent. */
static int64_t src_collect(struct mig_src *s)
{
	struct gmem_dirty_result res = { .bitmap = s->dirty };
	int64_t n = gmem_dirty_collect(s->r, &res);

	if (n >= 0)
		bitmap_or(s->unsent, s->dirty, s->words);
	return n;
}

/* Whether the pages owed now would fit the target downtime. */
static bool src_fits(struct mig_src *s, uint64_t nr)
{
	uint64_t rate = s->st->link_bytes_per_s ? s->st->link_bytes_per_s : 1;
	uint64_t ms = (nr << s->r->page_shift) * 1000 / rate;

	s->st->expected_downtime_ms = ms;
	return ms <= s->m.downtime_ms;
}

/*
 * Pre-copy: a full pass, then rounds of what was written meanwhile, until
 * the rest fits the downtime (PRECOPY) or the round limit is reached.
 * Leaves in s->unsent the pages written since they were last sent.
 */
static int src_precopy(struct mig_src *s)
{
	struct gmem_dirty_params dp = {};
	int64_t n;
	int ret;

	ret = gmem_dirty_start(s->r, &dp);
	if (ret < 0)
		return ret;
	s->tracking = true;
	bitmap_fill(s->unsent, s->r->nr_pages);
	for (uint32_t round = 1;; round++) {
		uint64_t owed = bitmap_weight(s->unsent, s->words);

		if (round > 1 && s->m.mode == GMEM_MIGRATE_PRECOPY &&
		    src_fits(s, owed)) {
			s->st->converged = 1;
			return 0;
		}
		if (round > s->m.max_rounds + 1)
			return 0;
		mig_ticker_phase(&s->tick, GMEM_PHASE_PRECOPY, round, 0, owed,
				 s->st->link_bytes_per_s, NULL);
		memcpy(s->dirty, s->unsent, s->words * 8);
		memset(s->unsent, 0, s->words * 8);
		n = src_send(s, s->dirty);
		if (n < 0)
			return n;
		s->st->precopy_pages += n;
		s->st->rounds = round;
		n = src_collect(s);
		if (n < 0)
			return n;
		if (s->m.mode == GMEM_MIGRATE_PRECOPY)
			src_fits(s, bitmap_weight(s->unsent, s->words));
	}
}

/* The freeze: pause, settle what is owed, send the device state. */
static int src_switchover(struct mig_src *s, const struct gmem_migrate_ops *ops,
			  void *ctx)
{
	size_t len = MIG_MAX_STATE - sizeof(struct mig_hdr);
	uint8_t *blob = malloc(MIG_MAX_STATE);
	const uint64_t *stale = NULL;
	int64_t n = 0;
	int ret;

	if (!blob)
		return -ENOMEM;
	ret = ops->pause(ctx, blob + sizeof(struct mig_hdr), &len);
	s->st->pause_ns = now_ns();
	if (ret < 0 || len > MIG_MAX_STATE - sizeof(struct mig_hdr))
		goto out;
	mig_ticker_phase(&s->tick, GMEM_PHASE_SWITCHOVER, 0, 0, 0, 0, NULL);
	if (s->tracking) {
		n = src_collect(s); /* what was written until the pause */
		gmem_dirty_stop(s->r);
		s->tracking = false;
		if (n < 0) {
			ret = n;
			goto out;
		}
	}
	if (s->m.mode == GMEM_MIGRATE_STOP_AND_COPY)
		bitmap_fill(s->unsent, s->r->nr_pages);
	if (s->m.mode == GMEM_MIGRATE_HYBRID) {
		stale = s->unsent;
		s->st->stale_pages = bitmap_weight(s->unsent, s->words);
	} else if (s->m.mode != GMEM_MIGRATE_POSTCOPY) {
		n = gmem_server_send_pages(s->srv, s->unsent, s->r->nr_pages);
		if (n < 0) {
			ret = n;
			goto out;
		}
		s->st->freeze_pages = n;
	}
	s->st->state_sent_ns = now_ns();
	mig_hdr_encode((struct mig_hdr *)blob, s->st, len);
	ret = gmem_server_send_state(s->srv, blob, sizeof(struct mig_hdr) + len,
				     stale, stale ? s->r->nr_pages : 0);
out:
	free(blob);
	return ret;
}

static int src_run(struct mig_src *s, const char *listen,
		   const struct gmem_migrate_ops *ops, void *ctx)
{
	int ret = gmem_server_listen(s->r, listen, &s->srv);

	if (ret < 0)
		return ret;
	mig_ticker_phase(&s->tick, GMEM_PHASE_SETUP, 0, 0, 0, 0, NULL);
	ret = gmem_server_accept(s->srv, s->m.wait_ms);
	if (ret < 0)
		return ret;
	if (s->m.mode == GMEM_MIGRATE_PRECOPY ||
	    s->m.mode == GMEM_MIGRATE_HYBRID) {
		ret = src_precopy(s);
		if (ret < 0)
			return ret;
		if (!s->st->converged && s->m.mode == GMEM_MIGRATE_PRECOPY &&
		    s->m.flags & GMEM_MIGRATE_ABORT_UNCONVERGED)
			return -ECANCELED;
	}
	ret = src_switchover(s, ops, ctx);
	if (ret < 0)
		return ret;
	mig_ticker_phase(&s->tick, GMEM_PHASE_POSTCOPY, 0, 0, s->r->nr_pages,
			 0, NULL);
	ret = gmem_server_serve(s->srv, s->m.wait_ms);
	s->st->complete_ns = now_ns();
	return ret;
}

int gmem_migrate_source(struct gmem_region *r, const char *listen,
			const struct gmem_migrate_params *p,
			const struct gmem_migrate_ops *ops, void *ctx,
			struct gmem_migrate_stats *st)
{
	struct mig_src s = { .r = r, .st = st };
	int ret;

	if (!r || !listen || !ops || !ops->pause || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	ret = mig_params_check(p, &s.m);
	if (ret < 0)
		return ret;
	st->mode = s.m.mode;
	st->start_ns = now_ns();
	s.words = (r->nr_pages + 63) / 64;
	s.dirty = calloc(s.words, 8);
	s.unsent = calloc(s.words, 8);
	if (!s.dirty || !s.unsent) {
		ret = -ENOMEM;
		goto out;
	}
	mig_ticker_start(&s.tick, ops, ctx, st->start_ns);
	ret = src_run(&s, listen, ops, ctx);
	if (ret == 0)
		mig_ticker_phase(&s.tick, GMEM_PHASE_COMPLETE, 0, r->nr_pages,
				 r->nr_pages, 0, NULL);
	mig_ticker_stop(&s.tick);
	if (s.srv)
		gmem_server_stats(s.srv, &st->pages);
out:
	if (s.tracking)
		gmem_dirty_stop(r);
	gmem_server_destroy(s.srv);
	free(s.dirty);
	free(s.unsent);
	return ret;
}
