// SPDX-License-Identifier: MIT
/*
 * outgoing.c - the source side of a migration: pre-copy rounds from
 * the dirty log, the freeze (pause, last pages, device state), then serving
 * post-copy until the destination confirms every page by digest, the pages
 * written in the last epochs before the pause pushed first.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "migrate/migrate.h"
#include "page-server/server.h"
#include "probes.h"

struct mig_src {
	struct gmem_region *r;
	struct gmem_server *srv;
	struct mig_params m;
	struct gmem_migrate_stats *st;
	struct mig_ticker tick;
	struct bitmap dirty;  /* last collect, not yet sent */
	struct bitmap prev;   /* the collect before it */
	struct bitmap unsent; /* written since sent: pages owed at the freeze */
	uint64_t pass_end;    /* pages from here on were never sent (AUTO) */
	bool tracking;
};

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

/* Collects the dirty log into s->dirty (the one before moves to s->prev)
 * and adds it to s->unsent. */
static int64_t src_collect(struct mig_src *s)
{
	uint64_t *w = s->prev.words;
	struct gmem_dirty_result res;
	int64_t n;

	s->prev.words = s->dirty.words;
	s->dirty.words = w;
	res = (struct gmem_dirty_result){ .bitmap = s->dirty.words };
	n = gmem_dirty_collect(s->r, &res);

	if (n >= 0)
		bitmap_or(&s->unsent, &s->dirty);
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
 * AUTO gives pre-copy up when a round did not at least halve the pages
 * owed: the workload wrote during the round more than half of what the
 * link sent in it, so further rounds mostly send the same pages again
 * and the rest shrinks too slowly to reach the downtime in time, if ever.
 */
#define AUTO_SHRINK 2

/* AUTO's switch: the mode it runs from here on, and why. */
static void src_auto_switch(struct mig_src *s, uint32_t mode, uint32_t why)
{
	s->m.mode = mode;
	s->st->mode = mode;
	s->st->switch_reason = why;
}

/*
 * AUTO, before round @round: whether pre-copy ends here, after @sent
 * pages in the last round left @owed (those written meanwhile).
 */
static bool src_auto_done(struct mig_src *s, uint32_t round, uint64_t owed,
			  uint64_t sent)
{
	if (src_fits(s, owed)) {
		s->st->converged = 1;
		src_auto_switch(s, GMEM_MIGRATE_PRECOPY, GMEM_SWITCH_CONVERGED);
	} else if (owed * AUTO_SHRINK > sent) {
		src_auto_switch(s, GMEM_MIGRATE_HYBRID,
				GMEM_SWITCH_NOT_CONVERGING);
	} else if (round > s->m.max_rounds + 1) {
		src_auto_switch(s, GMEM_MIGRATE_HYBRID, GMEM_SWITCH_ROUND_LIMIT);
	} else {
		return false;
	}
	return true;
}

/*
 * AUTO sends its full pass in pieces of 1/AUTO_PIECES of the region (16
 * MiB at least), so that a workload that writes faster than the link
 * sends is seen after one piece rather than after the whole image.
 */
#define AUTO_PIECES 16
#define AUTO_PIECE_MIN_BYTES (16ULL << 20)

/*
 * AUTO's full pass: after each piece, the pages written since the pass
 * began are owed again; once they do not fit the downtime and are more
 * than half the pages sent so far, post-copy starts without the rest of
 * the pass: the destination fetches those pages as it fetches any page
 * it lacks, and only pages it holds are marked stale. Leaves the pages
 * sent in @sent. Return: 1 switched, 0 the pass was sent whole, or an
 * error of the send or the dirty log.
 */
static int src_auto_pass(struct mig_src *s, uint64_t *sent)
{
	uint64_t nr = s->r->nr_pages, piece = nr / AUTO_PIECES;
	uint64_t min = AUTO_PIECE_MIN_BYTES >> s->r->page_shift;

	if (piece < min)
		piece = min ? min : 1;
	*sent = 0;
	for (uint64_t lo = 0; lo < nr; lo += piece) {
		uint64_t hi = lo + piece < nr ? lo + piece : nr, owed;
		int64_t n;

		bitmap_clear_range(&s->dirty, 0, nr);
		bitmap_set_range(&s->dirty, lo, hi - lo);
		n = src_send(s, s->dirty.words);
		if (n < 0)
			return n;
		*sent += n;
		s->st->precopy_pages += n;
		n = src_collect(s);
		if (n < 0)
			return n;
		owed = bitmap_count(&s->unsent);
		if (hi < nr && !src_fits(s, owed) && owed * AUTO_SHRINK > *sent) {
			s->pass_end = hi;
			src_auto_switch(s, GMEM_MIGRATE_HYBRID,
					GMEM_SWITCH_NOT_CONVERGING);
			return 1;
		}
	}
	return 0;
}

/*
 * Pre-copy: a full pass, then rounds of what was written meanwhile, until
 * the rest fits the downtime (PRECOPY), AUTO switches, or the round limit
 * is reached. Leaves in s->unsent the pages written since they were last
 * sent.
 */
static int src_precopy(struct mig_src *s)
{
	struct gmem_dirty_params dp = {};
	uint64_t sent = 0;
	int64_t n;
	int ret;

	ret = gmem_dirty_start(s->r, &dp);
	if (ret < 0)
		return ret;
	s->tracking = true;
	bitmap_set_range(&s->unsent, 0, s->r->nr_pages);
	for (uint32_t round = 1;; round++) {
		uint64_t owed = bitmap_count(&s->unsent);

		if (round > 1 && s->m.mode == GMEM_MIGRATE_AUTO)
			if (src_auto_done(s, round, owed, sent))
				return 0;
		if (round > 1 && s->m.mode == GMEM_MIGRATE_PRECOPY &&
		    src_fits(s, owed)) {
			s->st->converged = 1;
			return 0;
		}
		if (round > s->m.max_rounds + 1)
			return 0;
		mig_ticker_phase(&s->tick, GMEM_PHASE_PRECOPY, round, 0, owed,
				 s->st->link_bytes_per_s, NULL);
		memcpy(s->dirty.words, s->unsent.words,
		       (s->r->nr_pages + 63) / 64 * 8);
		bitmap_clear_range(&s->unsent, 0, s->r->nr_pages);
		if (round == 1 && s->m.mode == GMEM_MIGRATE_AUTO) {
			s->st->rounds = round;
			ret = src_auto_pass(s, &sent);
			if (ret)
				return ret < 0 ? ret : 0;
			continue;
		}
		n = src_send(s, s->dirty.words);
		if (n < 0)
			return n;
		s->st->precopy_pages += n;
		s->st->rounds = round;
		sent = n;
		n = src_collect(s);
		if (n < 0)
			return n;
		if (s->m.mode == GMEM_MIGRATE_PRECOPY)
			src_fits(s, bitmap_count(&s->unsent));
	}
}

_Static_assert(MIG_MAX_STATE - sizeof(struct mig_hdr) == 65440,
	       "gmem.h names the device state limit");

/*
 * The pause callback wrote more device state than the switchover message
 * holds. Nothing of the freeze went out yet, so the workload may run on
 * here: the destination is told why, and the source resumed.
 */
static int src_state_too_big(struct mig_src *s,
			     const struct gmem_migrate_ops *ops, void *ctx,
			     size_t len)
{
	int ret = srv_err(s->srv, -EMSGSIZE,
			  "device state of %zu bytes is over the limit of %zu",
			  len, MIG_MAX_STATE - sizeof(struct mig_hdr));

	srv_send_error(s->srv, 0, EMSGSIZE, gmem_server_error(s->srv));
	if (ops->resume)
		ops->resume(ctx, NULL, 0);
	return ret;
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
	GMEM_PROBE(pause, ret, len);
	if (ret == 0 && len > MIG_MAX_STATE - sizeof(struct mig_hdr))
		ret = src_state_too_big(s, ops, ctx, len);
	if (ret < 0)
		goto out;
	mig_ticker_phase(&s->tick, GMEM_PHASE_SWITCHOVER, 0, 0, 0, 0, NULL);
	/*
	 * What was written until the pause. The log stays on until the end
	 * (gmem_migrate_source() stops it): the paused workload writes no
	 * more, and stopping it here, which write-unprotects every page (a
	 * few hundred ms a GiB on a small VM), would lengthen the freeze.
	 */
	if (s->tracking) {
		n = src_collect(s);
		if (n < 0) {
			ret = n;
			goto out;
		}
	}
	if (s->m.mode == GMEM_MIGRATE_STOP_AND_COPY)
		bitmap_set_range(&s->unsent, 0, s->r->nr_pages);
	if (s->m.mode == GMEM_MIGRATE_HYBRID) {
		/* Pages never sent are missing there, not stale. */
		bitmap_clear_range(&s->unsent, s->pass_end,
				   s->r->nr_pages - s->pass_end);
		stale = s->unsent.words;
		s->st->stale_pages = bitmap_count(&s->unsent);
	} else if (s->m.mode != GMEM_MIGRATE_POSTCOPY) {
		n = gmem_server_send_pages(s->srv, s->unsent.words,
					   s->r->nr_pages);
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

/*
 * Post-copy alone has no dirty log: one epoch of it, of hot_epoch_ms just
 * before the pause, tells the push the working set. It is collected before
 * the pause too, so that neither the freeze nor the push waits for the
 * scan; the writes of the moment between are the only ones it misses. Only
 * an order: without a dirty log (-EOPNOTSUPP) the push goes in address
 * order.
 */
static void src_hot_epoch(struct mig_src *s)
{
	struct timespec ts = { .tv_sec = s->m.hot_epoch_ms / 1000,
			       .tv_nsec = s->m.hot_epoch_ms % 1000 * 1000000L };

	if (s->m.mode != GMEM_MIGRATE_POSTCOPY || s->srv->reads_on ||
	    s->m.flags & GMEM_MIGRATE_PUSH_ADDRESS ||
	    gmem_dirty_start(s->r, NULL) < 0)
		return;
	nanosleep(&ts, NULL);
	if (src_collect(s) < 0)
		bitmap_clear_range(&s->dirty, 0, s->r->nr_pages);
	gmem_dirty_stop(s->r);
}

/*
 * Names the working set to the push: the pages written in the last epoch
 * before the pause, then those of the epoch before it. In hybrid mode these
 * are the stale pages; the rest follows in address order. A failure here
 * costs the order, not a page: the push still sends every needed page.
 */
static void src_push_order(struct mig_src *s)
{
	const struct bitmap *epoch[] = { &s->dirty, &s->prev };

	if ((s->m.mode != GMEM_MIGRATE_POSTCOPY &&
	     s->m.mode != GMEM_MIGRATE_HYBRID) ||
	    s->m.flags & GMEM_MIGRATE_PUSH_ADDRESS || s->srv->reads_on)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(epoch); i++)
		if (bitmap_count(epoch[i]) &&
		    gmem_server_push_first(s->srv, epoch[i]->words,
					   s->r->nr_pages) < 0)
			return;
}

/* The progress ticker's view of the server's pauses. */
static void server_pause(const void *srv, uint64_t *since_ns,
			 uint64_t *recoveries)
{
	*since_ns = srv_paused_since_ns(srv);
	*recoveries = srv_recoveries(srv);
}

static int src_run(struct mig_src *s, const char *listen,
		   const struct gmem_migrate_ops *ops, void *ctx)
{
	int ret = gmem_server_listen(s->r, listen, &s->srv);

	if (ret == 0 && (s->m.flags & GMEM_MIGRATE_RDMA))
		ret = gmem_server_offer_rdma(s->srv, listen);
	if (ret == 0 && s->m.key)
		ret = gmem_server_set_key(s->srv, s->m.key, s->m.key_len);
	if (ret == 0)
		ret = gmem_server_set_recover(s->srv, s->m.recover_ms);
	if (ret < 0)
		return ret;
	mig_ticker_watch_pause(&s->tick, server_pause, s->srv,
			       s->m.recover_ms);
	mig_ticker_phase(&s->tick, GMEM_PHASE_SETUP, 0, 0, 0, 0, NULL);
	ret = gmem_server_accept(s->srv, s->m.wait_ms);
	if (ret < 0)
		return ret;
	if (s->m.mode == GMEM_MIGRATE_PRECOPY ||
	    s->m.mode == GMEM_MIGRATE_HYBRID ||
	    s->m.mode == GMEM_MIGRATE_AUTO) {
		ret = src_precopy(s);
		if (ret < 0)
			return ret;
		if (!s->st->converged && s->m.mode == GMEM_MIGRATE_PRECOPY &&
		    s->m.flags & GMEM_MIGRATE_ABORT_UNCONVERGED)
			return -ECANCELED;
	}
	src_hot_epoch(s);
	ret = src_switchover(s, ops, ctx);
	if (ret < 0)
		return ret;
	src_push_order(s);
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
	struct mig_src s = { .r = r, .st = st, .pass_end = r->nr_pages };
	int ret;

	if (!r || !listen || !ops || !ops->pause || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	ret = mig_params_check(p, &s.m);
	if (ret < 0)
		return ret;
	st->mode = s.m.mode;
	st->start_ns = now_ns();
	if (bitmap_init(&s.dirty, r->nr_pages, false) ||
	    bitmap_init(&s.prev, r->nr_pages, false) ||
	    bitmap_init(&s.unsent, r->nr_pages, false)) {
		ret = -ENOMEM;
		goto out;
	}
	mig_ticker_start(&s.tick, ops, ctx, st->start_ns);
	ret = src_run(&s, listen, ops, ctx);
	if (ret == 0)
		mig_ticker_phase(&s.tick, GMEM_PHASE_COMPLETE, 0, r->nr_pages,
				 r->nr_pages, 0, NULL);
	mig_ticker_stop(&s.tick);
	if (ret < 0 && s.srv && ops->failed && gmem_server_error(s.srv)[0])
		ops->failed(ctx, gmem_server_error(s.srv));
	if (s.srv)
		gmem_server_stats(s.srv, &st->pages);
out:
	if (s.tracking)
		gmem_dirty_stop(r);
	gmem_server_destroy(s.srv);
	bitmap_free(&s.dirty);
	bitmap_free(&s.prev);
	bitmap_free(&s.unsent);
	return ret;
}
