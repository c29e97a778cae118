// SPDX-License-Identifier: MIT
/*
 * outgoing.c - the source side of a migration: pre-copy rounds from
 * the dirty log, the freeze (pause, last pages, device state), then serving
 * post-copy until the destination confirms every page by digest.
 */
#include <stdlib.h>
#include <string.h>

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
	struct bitmap unsent; /* written since sent: pages owed at the freeze */
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

/* Collects the dirty log into s->dirty and adds it to s->unsent. */
static int64_t src_collect(struct mig_src *s)
{
	struct gmem_dirty_result res = { .bitmap = s->dirty.words };
	int64_t n = gmem_dirty_collect(s->r, &res);

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
	bitmap_set_range(&s->unsent, 0, s->r->nr_pages);
	for (uint32_t round = 1;; round++) {
		uint64_t owed = bitmap_count(&s->unsent);

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
		n = src_send(s, s->dirty.words);
		if (n < 0)
			return n;
		s->st->precopy_pages += n;
		s->st->rounds = round;
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
		bitmap_set_range(&s->unsent, 0, s->r->nr_pages);
	if (s->m.mode == GMEM_MIGRATE_HYBRID) {
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
	if (bitmap_init(&s.dirty, r->nr_pages, false) ||
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
	bitmap_free(&s.unsent);
	return ret;
}
