// SPDX-License-Identifier: MIT
/*
 * migrate.c - the parts both sides of a migration share: parameter checks
 * and defaults, the header of the switchover message, and the progress
 * ticker that keeps the operator informed while the engine blocks.
 */
#include <endian.h>
#include <string.h>

#include "wire/auth.h"
#include "migrate/migrate.h"
#include "region/engine.h"

int mig_params_check(const struct gmem_migrate_params *p, struct mig_params *m)
{
	unsigned int threads, fa;

	if (!p || p->mode > GMEM_MIGRATE_AUTO ||
	    p->flags & ~(GMEM_MIGRATE_ABORT_UNCONVERGED | GMEM_MIGRATE_RDMA |
			 GMEM_MIGRATE_PUSH_ADDRESS) ||
	    p->nr_bulk > GMEM_MAX_BULK ||
	    fault_params_check(&(struct gmem_fault_params){
		    .nr_threads = p->nr_threads,
		    .fault_around = p->fault_around }, &threads, &fa) < 0 ||
	    p->wait_ms < -1 ||
	    p->recover_ms < -1 || (p->key_len && !p->key) ||
	    (p->key && (p->key_len < AUTH_KEY_MIN || p->key_len > AUTH_KEY_MAX)))
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(p->resv); i++)
		if (p->resv[i])
			return -EINVAL;
	if (p->resv0 || p->hot_epoch_ms > MIG_HOT_EPOCH_MAX_MS)
		return -EINVAL;
	*m = (struct mig_params){
		.mode = p->mode,
		.flags = p->flags,
		.max_rounds = p->max_rounds ? p->max_rounds :
			      p->mode == GMEM_MIGRATE_HYBRID ? 2 : 30,
		.downtime_ms = p->downtime_ms ? p->downtime_ms : 300,
		/* Sealed, one bulk connection carries about 0.8 GB/s (one
		 * core encrypting, one decrypting; AES-256-GCM, 16-core Xeon):
		 * four fill a 25 Gbit/s link, as two do in the clear. */
		.nr_bulk = p->nr_bulk ? p->nr_bulk : p->key ? 4 : 2,
		.nr_threads = p->nr_threads ? p->nr_threads : 2,
		.fault_around = p->fault_around ? p->fault_around : 16,
		.wait_ms = p->wait_ms ? p->wait_ms : 30000,
		.key = p->key,
		.key_len = p->key_len,
		.recover_ms = p->recover_ms,
		.hot_epoch_ms = p->hot_epoch_ms ? p->hot_epoch_ms : 200,
	};
	return 0;
}

void mig_hdr_encode(struct mig_hdr *h, const struct gmem_migrate_stats *st,
		    uint64_t state_len)
{
	*h = (struct mig_hdr){
		.magic = htole32(MIG_MAGIC),
		.version = htole32(MIG_VERSION),
		.mode = htole32(st->mode),
		.rounds = htole32(st->rounds),
		.converged = htole32(st->converged),
		.switch_reason = htole32(st->switch_reason),
		.precopy_pages = htole64(st->precopy_pages),
		.freeze_pages = htole64(st->freeze_pages),
		.stale_pages = htole64(st->stale_pages),
		.expected_downtime_ms = htole64(st->expected_downtime_ms),
		.start_ns = htole64(st->start_ns),
		.pause_ns = htole64(st->pause_ns),
		.state_sent_ns = htole64(st->state_sent_ns),
		.link_bytes_per_s = htole64(st->link_bytes_per_s),
		.state_len = htole64(state_len),
	};
}

int64_t mig_hdr_decode(const void *buf, size_t len,
		       struct gmem_migrate_stats *st)
{
	struct mig_hdr h;
	uint64_t state_len;

	if (len < sizeof(h))
		return -EPROTO;
	memcpy(&h, buf, sizeof(h));
	state_len = le64toh(h.state_len);
	if (le32toh(h.magic) != MIG_MAGIC || le32toh(h.version) != MIG_VERSION ||
	    le32toh(h.mode) > GMEM_MIGRATE_STOP_AND_COPY ||
	    le32toh(h.switch_reason) > GMEM_SWITCH_ROUND_LIMIT ||
	    state_len != len - sizeof(h))
		return -EPROTO;
	st->mode = le32toh(h.mode);
	st->rounds = le32toh(h.rounds);
	st->converged = le32toh(h.converged);
	st->switch_reason = le32toh(h.switch_reason);
	st->precopy_pages = le64toh(h.precopy_pages);
	st->freeze_pages = le64toh(h.freeze_pages);
	st->stale_pages = le64toh(h.stale_pages);
	st->expected_downtime_ms = le64toh(h.expected_downtime_ms);
	st->start_ns = le64toh(h.start_ns);
	st->pause_ns = le64toh(h.pause_ns);
	st->state_sent_ns = le64toh(h.state_sent_ns);
	st->link_bytes_per_s = le64toh(h.link_bytes_per_s);
	return state_len;
}

const char *gmem_migrate_mode_name(enum gmem_migrate_mode m)
{
	static const char *const names[] = {
		[GMEM_MIGRATE_POSTCOPY] = "postcopy",
		[GMEM_MIGRATE_PRECOPY] = "precopy",
		[GMEM_MIGRATE_HYBRID] = "hybrid",
		[GMEM_MIGRATE_STOP_AND_COPY] = "stop-and-copy",
		[GMEM_MIGRATE_AUTO] = "auto",
	};

	return (unsigned int)m < ARRAY_SIZE(names) ? names[m] : NULL;
}

/* --- progress ticker ------------------------------------------------------ */

/* Rate and ETA of a watched region from its present count since the last
 * tick. Called with t->lock held. */
static void ticker_rate(struct mig_ticker *t)
{
	uint64_t now = now_ns(), done = gmem_region_nr_present(t->region);
	uint64_t left = t->cur.pages_total > done ? t->cur.pages_total - done : 0;

	if (t->last_ns && now > t->last_ns && done >= t->last_done)
		t->cur.bytes_per_s = (double)((done - t->last_done) *
					      t->region->page_size) * 1e9 /
				     (now - t->last_ns);
	t->cur.eta_ns = t->cur.bytes_per_s ?
		(double)left * t->region->page_size * 1e9 / t->cur.bytes_per_s : 0;
	t->cur.pages_done = done;
	t->last_ns = now;
	t->last_done = done;
}

/* A pause of post-copy shows as its own phase while it lasts. */
static void ticker_paused(const struct mig_ticker *t,
			  struct gmem_migrate_progress *p)
{
	uint64_t since = 0, recoveries = 0, end;

	if (t->pause)
		t->pause(t->side, &since, &recoveries);
	if (!since)
		return;
	end = since + (uint64_t)t->recover_ms * 1000000ULL;
	p->phase = GMEM_PHASE_PAUSED;
	p->round = recoveries + 1;
	p->bytes_per_s = 0;
	p->eta_ns = t->recover_ms > 0 && end > now_ns() ? end - now_ns() : 0;
}

static void ticker_report(struct mig_ticker *t)
{
	struct gmem_migrate_progress p;

	pthread_mutex_lock(&t->lock);
	if (t->region)
		ticker_rate(t);
	p = t->cur;
	p.elapsed_ns = now_ns() - t->start_ns;
	ticker_paused(t, &p);
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_lock(&t->report_lock);
	t->ops->progress(t->ctx, &p);
	pthread_mutex_unlock(&t->report_lock);
}

static void *ticker_thread(void *arg)
{
	struct mig_ticker *t = arg;
	struct timespec ts;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
		if (t->stop)
			break;
		pthread_mutex_unlock(&t->lock);
		ticker_report(t);
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

void mig_ticker_start(struct mig_ticker *t, const struct gmem_migrate_ops *ops,
		      void *ctx, uint64_t start_ns)
{
	memset(t, 0, sizeof(*t));
	t->ops = ops;
	t->ctx = ctx;
	t->start_ns = start_ns;
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->report_lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	if (ops->progress)
		t->running = pthread_create(&t->thread, NULL, ticker_thread,
					    t) == 0;
}

void mig_ticker_phase(struct mig_ticker *t, uint32_t phase, uint32_t round,
		      uint64_t pages_done, uint64_t pages_total,
		      uint64_t bytes_per_s, const struct gmem_region *watch)
{
	if (!t->ops->progress)
		return;
	pthread_mutex_lock(&t->lock);
	t->cur.phase = phase;
	t->cur.round = round;
	t->cur.pages_done = pages_done;
	t->cur.pages_total = pages_total;
	t->cur.bytes_per_s = bytes_per_s;
	t->cur.eta_ns = 0;
	t->region = watch;
	t->last_ns = 0;
	pthread_mutex_unlock(&t->lock);
	ticker_report(t);
}

void mig_ticker_watch_pause(struct mig_ticker *t,
			    void (*pause)(const void *side, uint64_t *since_ns,
					  uint64_t *recoveries),
			    const void *side, int recover_ms)
{
	pthread_mutex_lock(&t->lock);
	t->pause = pause;
	t->side = side;
	t->recover_ms = recover_ms;
	pthread_mutex_unlock(&t->lock);
}

void mig_ticker_stop(struct mig_ticker *t)
{
	if (t->running) {
		pthread_mutex_lock(&t->lock);
		t->stop = true;
		pthread_cond_signal(&t->cond);
		pthread_mutex_unlock(&t->lock);
		pthread_join(t->thread, NULL);
	}
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->report_lock);
	pthread_mutex_destroy(&t->lock);
}
