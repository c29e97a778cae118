// SPDX-License-Identifier: MIT
/*
 * remote.c - the destination end of a page server session: receiving
 * pre-copy pages and the switchover state, dispatching every checked frame,
 * the bulk receive threads, and the public accessors. Connecting is
 * remote-connect.c's; the page source built on it (urgent requests, receive
 * thread) is in source-remote.c.
 */
#include <endian.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remote-source/remote.h"
#include "region/engine.h"
#include "threads.h"

int rm_fail(struct gmem_remote *rm, int ret, const char *fmt, ...)
{
	bool resumed = false;
	va_list ap;

	pthread_mutex_lock(&rm->lock);
	if (rm->phase != RM_FAILED && rm->phase != RM_DONE) {
		resumed = rm->phase == RM_POSTCOPY || rm->phase == RM_PAUSED;
		va_start(ap, fmt);
		vsnprintf(rm->err, sizeof(rm->err), fmt, ap);
		va_end(ap);
		rm->error = ret;
		rm->phase = RM_FAILED;
		pthread_cond_broadcast(&rm->cond);
	}
	pthread_mutex_unlock(&rm->lock);
	/* The workload runs here already and its missing pages can no longer
	 * come: rather than leave its threads waiting on them for ever, they
	 * get SIGBUS (the source still holds every page). Without
	 * UFFDIO_POISON (Linux < 6.6) they wait as before. */
	if (resumed)
		region_poison_missing(rm->r);
	return ret;
}

bool rm_pause(struct gmem_remote *rm, const char *fmt, ...)
{
	bool paused = false;
	va_list ap;

	if (!rm->recover_ms)
		return false;
	pthread_mutex_lock(&rm->lock);
	if (rm->phase == RM_POSTCOPY || rm->phase == RM_VERIFYING) {
		rm->resume_phase = rm->phase;
		rm->phase = RM_PAUSED;
		va_start(ap, fmt);
		vsnprintf(rm->pause_why, sizeof(rm->pause_why), fmt, ap);
		va_end(ap);
		__atomic_store_n(&rm->paused_since_ns, now_ns(),
				 __ATOMIC_RELEASE);
		pthread_cond_broadcast(&rm->cond);
	}
	/* Already paused by another thread's view of the same break. */
	paused = rm->phase == RM_PAUSED;
	pthread_mutex_unlock(&rm->lock);
	return paused;
}

enum rm_phase rm_phase(struct gmem_remote *rm)
{
	enum rm_phase p;

	pthread_mutex_lock(&rm->lock);
	p = rm->phase;
	pthread_mutex_unlock(&rm->lock);
	return p;
}

void rm_set_silence(struct gmem_remote *rm, int ms)
{
	__atomic_store_n(&rm->last_rx_ns, now_ns(), __ATOMIC_RELAXED);
	rm->silence_ms = ms;
}

bool rm_silent(struct gmem_remote *rm)
{
	uint64_t last = __atomic_load_n(&rm->last_rx_ns, __ATOMIC_RELAXED);
	enum rm_phase phase;

	if (!rm->silence_ms ||
	    now_ns() - last <= (uint64_t)rm->silence_ms * 1000000ULL)
		return false;
	phase = rm_phase(rm);
	if (phase != RM_PRECOPY && phase != RM_VERIFYING &&
	    (phase != RM_POSTCOPY || rm->reads))
		return false;
	rm_fail(rm, -ETIMEDOUT, "source silent for %d ms", rm->silence_ms);
	return true;
}

void rm_set_phase(struct gmem_remote *rm, enum rm_phase phase)
{
	pthread_mutex_lock(&rm->lock);
	if (rm->phase != RM_FAILED)
		rm->phase = phase;
	pthread_cond_broadcast(&rm->cond);
	pthread_mutex_unlock(&rm->lock);
}

int rm_ctl_send(struct gmem_remote *rm, struct proto_hdr *h,
		const void *payload)
{
	uint8_t hdr[PROTO_HDR_LEN];
	int ret;

	pthread_mutex_lock(&rm->ctl_lock);
	/* Paused: the recovery owns the endpoint, and sends again what is
	 * still wanted once it has a new one. */
	if (rm_phase(rm) == RM_PAUSED) {
		pthread_mutex_unlock(&rm->ctl_lock);
		return 1;
	}
	h->seq = rm->ctl_seq++;
	if (seal_on(&rm->ctl_tx)) {
		uint32_t len = wire_encode(&rm->ctl_tx, rm->ctl_buf, h, payload);

		ret = rm->t[0].ops->send_now(&rm->t[0], 0, rm->ctl_buf, len);
	} else {
		proto_encode(hdr, h, payload);
		ret = rm->t[0].ops->send_now(&rm->t[0], 0, hdr, sizeof(hdr));
		if (ret == 0 && h->len)
			ret = rm->t[0].ops->send_now(&rm->t[0], 0, payload,
						     h->len);
	}
	pthread_mutex_unlock(&rm->ctl_lock);
	if (ret < 0 && rm_pause(rm, "control connection: send: %s", strerror(-ret)))
		return 1;
	return ret;
}

/*
 * A region of another process (gmem_region_adopt_uffd()) has no page cache
 * here to write ahead into: its pre-copy pages are installed at once
 * (UFFDIO_COPY), each only once, which is what stop-and-copy sends. A page
 * sent again (a later pre-copy round) could not replace the first.
 */
static int precopy_install(struct gmem_remote *rm, const struct proto_hdr *h,
			   const uint8_t *payload)
{
	struct gmem_region *r = rm->r;
	uint64_t p = h->pgoff, end = p + h->nr;

	while (p < end) {
		uint64_t at = p, n = install_claim(r, &at, end, end - p);
		int ret;

		if (at != p || n == 0)
			return -EOPNOTSUPP; /* claimed: sent before */
		ret = install_commit(r, p, n, payload +
				     ((p - h->pgoff) << r->page_shift));
		if (ret < 0)
			return ret;
		p += n;
	}
	return 0;
}

static int handle_precopy(struct gmem_remote *rm, const struct proto_hdr *h,
			  const uint8_t *payload)
{
	uint64_t frames;
	int ret;

	if (rm_phase(rm) != RM_PRECOPY ||
	    (__atomic_load_n(&rm->state_in, __ATOMIC_ACQUIRE) &&
	     __atomic_load_n(&rm->precopy_frames, __ATOMIC_RELAXED) >=
		     rm->precopy_expected))
		return rm_fail(rm, -EPROTO, "pre-copy page after switchover");
	if (!rm->r->alias && !rm->r->addr) /* another process's memory */
		ret = precopy_install(rm, h, payload);
	else if (!rm->r->alias)
		return rm_fail(rm, -EOPNOTSUPP,
			       "pre-copy pages for an anonymous region");
	else
		ret = install_cache_write(rm->r, h->pgoff << rm->r->page_shift,
					  h->len, payload);
	if (ret == -EOPNOTSUPP)
		return rm_fail(rm, ret, "pre-copy page %llu sent again: another "
			       "process's memory takes each page once "
			       "(stop-and-copy)", (unsigned long long)h->pgoff);
	if (ret < 0)
		return rm_fail(rm, ret, "pre-copy write: %s", strerror(-ret));
	bitmap_set_range(&rm->received, h->pgoff, h->nr);
	stat_add(&rm->stats.precopy_pages, h->nr);
	stat_add(&rm->stats.bytes, h->len);
	frames = __atomic_add_fetch(&rm->precopy_frames, 1, __ATOMIC_ACQ_REL);
	/* The last frame may come after STATE: wake the caller waiting. */
	if (__atomic_load_n(&rm->state_in, __ATOMIC_ACQUIRE) &&
	    frames == rm->precopy_expected) {
		pthread_mutex_lock(&rm->lock);
		pthread_cond_broadcast(&rm->cond);
		pthread_mutex_unlock(&rm->lock);
	}
	return 0;
}

static int handle_stale(struct gmem_remote *rm, const struct proto_hdr *h,
			const uint8_t *payload)
{
	if (rm_phase(rm) != RM_PRECOPY ||
	    __atomic_load_n(&rm->state_in, __ATOMIC_ACQUIRE))
		return rm_fail(rm, -EPROTO, "STALE outside the switchover");
	for (uint32_t i = 0; i < h->nr; i++) {
		uint64_t w;

		memcpy(&w, payload + i / 64 * 8, 8);
		if ((le64toh(w) >> (i % 64)) & 1)
			bitmap_set(&rm->stale, h->pgoff + i);
	}
	return 0;
}

static int handle_state(struct gmem_remote *rm, const struct proto_hdr *h,
			const uint8_t *payload)
{
	if (rm_phase(rm) != RM_PRECOPY ||
	    __atomic_load_n(&rm->state_in, __ATOMIC_ACQUIRE))
		return rm_fail(rm, -EPROTO, "STATE outside the switchover");
	if (h->len) {
		rm->state = malloc(h->len);
		if (!rm->state)
			return rm_fail(rm, -ENOMEM, "no memory for the state");
		memcpy(rm->state, payload, h->len);
	}
	rm->state_len = h->len;
	rm->precopy_expected = h->pgoff;
	__atomic_store_n(&rm->state_in, true, __ATOMIC_RELEASE);
	if (__atomic_load_n(&rm->precopy_frames, __ATOMIC_ACQUIRE) >
	    rm->precopy_expected)
		return rm_fail(rm, -EPROTO, "more pre-copy frames than sent");
	return 0;
}

static int handle_frame(struct gmem_remote *rm, unsigned int idx,
			const struct proto_hdr *h, const uint8_t *payload)
{
	/* Bulk threads run beside the control one: only pages, which they
	 * install exactly once by claim, may come on their connections. */
	if (idx && h->type != PROTO_PAGES && h->type != PROTO_ERROR)
		return rm_fail(rm, -EPROTO, "%s on bulk connection %u",
			       proto_type_name(h->type), idx);
	switch (h->type) {
	case PROTO_PAGES:
		if (h->flags & PROTO_F_PRECOPY)
			return handle_precopy(rm, h, payload);
		return rm_install_pages(rm, h, payload);
	case PROTO_STALE:
		return handle_stale(rm, h, payload);
	case PROTO_STATE:
		return handle_state(rm, h, payload);
	case PROTO_DIGEST:
		return rm_check_digests(rm, h, payload);
	case PROTO_ERROR:
		return rm_fail(rm, -ECONNABORTED, "server gave up: %.*s",
			       (int)h->len, (const char *)payload);
	default:
		return rm_fail(rm, -EPROTO, "unexpected %s from the server",
			       proto_type_name(h->type));
	}
}

int rm_step(struct gmem_remote *rm, unsigned int idx, int64_t wait_ns)
{
	struct transport *t = &rm->t[idx];
	struct wire_rx *rx = &rm->rx[idx];
	struct transport_req *done[1];
	const char *why = "";
	int ret, n = t->ops->poll(t, done, 1, wait_ns);

	if (n < 0)
		return rm_fail(rm, n, "poll: %s", strerror(-n));
	if (n == 0)
		return 0;
	__atomic_store_n(&rm->last_rx_ns, now_ns(), __ATOMIC_RELAXED);
	for (ret = wire_rx_done(t, rx, &rm->geom, &why); ret == 1;
	     ret = wire_rx_next(t, rx, &rm->geom, &why)) {
		ret = handle_frame(rm, idx, &rx->hdr, wire_payload(rx));
		if (ret < 0)
			return ret; /* handle_frame() said why */
	}
	/* Once every page is present the server may close its bulk
	 * connections as soon as it reads DONE, which the control thread sends
	 * before it marks the session done. */
	if (ret == -ECONNRESET && idx && rm_phase(rm) >= RM_VERIFYING &&
	    rm_phase(rm) != RM_PAUSED)
		return 0;
	/* A broken link, not a malformed frame (which stays fatal): post-copy
	 * pauses and reconnects when recovery is on. */
	if (ret < 0 && ret != -EPROTO &&
	    rm_pause(rm, "connection %u: %s", idx, why))
		return 0;
	if (ret < 0)
		return rm_fail(rm, ret, "connection %u: %s", idx, why);
	return 0;
}

static void *bulk_thread(void *arg)
{
	struct rm_bulk *b = arg;
	struct gmem_remote *rm = b->rm;

	run_near_node(rm->r);
	while (!__atomic_load_n(&rm->stop, __ATOMIC_ACQUIRE)) {
		enum rm_phase phase = rm_phase(rm);

		/* Paused: the recovery replaces this endpoint. */
		if (phase == RM_FAILED || phase == RM_DONE ||
		    phase == RM_PAUSED ||
		    rm_step(rm, b->idx, RM_IO_WAIT_NS) < 0)
			break;
	}
	return NULL;
}

int rm_bulk_start(struct gmem_remote *rm)
{
	int ret;

	for (unsigned int i = 1; i < rm->nr_conns; i++)
		rm->bulk[i - 1] = (struct rm_bulk){ .rm = rm, .idx = i };
	ret = threads_start(rm->bulk, rm->nr_conns - 1, bulk_thread,
			    &rm->nr_bulk_running);
	if (ret < 0)
		rm_bulk_stop(rm);
	return ret;
}

void rm_bulk_stop(struct gmem_remote *rm)
{
	__atomic_store_n(&rm->stop, true, __ATOMIC_RELEASE);
	rm_bulk_join(rm);
}

void rm_bulk_join(struct gmem_remote *rm)
{
	for (unsigned int i = 0; i < rm->nr_bulk_running; i++)
		pthread_join(rm->bulk[i].thread, NULL);
	rm->nr_bulk_running = 0;
}

static int precopy_begin(struct gmem_remote *rm, struct gmem_region *r)
{
	int ret;

	if (!r || r->page_size != rm->geom.page_size ||
	    r->nr_pages != rm->geom.nr_pages ||
	    !(r->flags & GMEM_REGION_MISSING) || r->source)
		return -EINVAL;
	if (rm_phase(rm) != RM_CONNECTED)
		return rm->error ? rm->error : -EALREADY;
	rm->r = r;
	if (bitmap_init(&rm->received, r->nr_pages, false) < 0 ||
	    bitmap_init(&rm->stale, r->nr_pages, false) < 0)
		return -ENOMEM;
	/* Another process's memory installs its pre-copy pages as they come
	 * (precopy_install()): their digests from the first. */
	if (!r->alias && !r->addr) {
		ret = region_record_digests(r);
		if (ret < 0)
			return ret;
	}
	/* Received pages pass through these buffers: near the region. */
	ret = place_on_node(r, rm->mem, rm->mem_len);
	if (ret < 0)
		return ret;
	rm_set_phase(rm, RM_PRECOPY);
	/* Only now: a pre-copy frame needs the region to land in. */
	return rm_bulk_start(rm);
}

/* Every pre-copy frame the STATE counted is in (bulk threads, under
 * @lock for the wake-up). */
static bool precopy_complete(struct gmem_remote *rm)
{
	return __atomic_load_n(&rm->state_in, __ATOMIC_ACQUIRE) &&
	       __atomic_load_n(&rm->precopy_frames, __ATOMIC_ACQUIRE) ==
		       rm->precopy_expected;
}

/* Waits until precopy_complete() or failure, up to @deadline_ns on the
 * monotonic clock (-1: forever). */
static int precopy_wait(struct gmem_remote *rm, int64_t deadline_ns)
{
	int ret = 0;

	pthread_mutex_lock(&rm->lock);
	while (!precopy_complete(rm) && rm->phase != RM_FAILED && ret == 0) {
		/* With a silence limit, wakes up now and then to check it. */
		int64_t until = rm->silence_ms ? (int64_t)now_ns() + RM_SILENCE_TICK_NS
					       : -1;
		struct timespec ts;

		if (until < 0 || (deadline_ns >= 0 && deadline_ns < until))
			until = deadline_ns;
		ts.tv_sec = until / 1000000000LL;
		ts.tv_nsec = until % 1000000000LL;
		ret = until < 0 ? pthread_cond_wait(&rm->cond, &rm->lock)
				: pthread_cond_timedwait(&rm->cond, &rm->lock,
							 &ts);
		if (ret == ETIMEDOUT && until != deadline_ns) {
			pthread_mutex_unlock(&rm->lock);
			rm_silent(rm);
			pthread_mutex_lock(&rm->lock);
			ret = 0;
		}
	}
	pthread_mutex_unlock(&rm->lock);
	if (rm_phase(rm) == RM_FAILED)
		return rm->error;
	if (!precopy_complete(rm))
		return rm_fail(rm, -ETIMEDOUT, "pre-copy: timed out");
	return 0;
}

int64_t gmem_remote_precopy(struct gmem_remote *rm, struct gmem_region *r,
			    int wait_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)wait_ms * 1000000ULL;
	int ret = precopy_begin(rm, r);

	/* STATE comes on the control connection, polled here... */
	while (ret == 0 && !rm->state_in) {
		ret = rm_step(rm, 0, RM_IO_WAIT_NS);
		if (ret == 0 && (rm_silent(rm) || rm_phase(rm) == RM_FAILED))
			ret = rm->error;
		if (ret == 0 && wait_ms >= 0 && now_ns() > deadline)
			ret = rm_fail(rm, -ETIMEDOUT, "pre-copy: timed out");
	}
	/* ...and the pre-copy frames still in flight on the bulk threads. */
	if (ret == 0)
		ret = precopy_wait(rm, wait_ms < 0 ? -1 : (int64_t)deadline);
	if (ret < 0)
		return ret;
	rm_set_phase(rm, RM_READY);
	return __atomic_load_n(&rm->stats.precopy_pages, __ATOMIC_RELAXED);
}

int gmem_remote_state(const struct gmem_remote *rm, void *buf, size_t len)
{
	if (!rm->state_in)
		return -EAGAIN;
	if (len && rm->state_len) /* an empty state has no buffer */
		memcpy(buf, rm->state, len < rm->state_len ? len : rm->state_len);
	return rm->state_len;
}

int gmem_remote_wait(struct gmem_remote *rm, int wait_ms)
{
	struct timespec ts;
	int ret = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += wait_ms / 1000;
	ts.tv_nsec += (wait_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&rm->lock);
	while (rm->phase != RM_DONE && rm->phase != RM_FAILED && ret == 0)
		ret = wait_ms < 0 ? pthread_cond_wait(&rm->cond, &rm->lock)
				  : pthread_cond_timedwait(&rm->cond, &rm->lock,
							   &ts);
	if (rm->phase == RM_FAILED)
		ret = rm->error;
	else if (rm->phase == RM_DONE)
		ret = rm->stats.mismatches ? -EIO : 0;
	else
		ret = -ETIMEDOUT;
	pthread_mutex_unlock(&rm->lock);
	return ret;
}

int64_t gmem_remote_mismatches(const struct gmem_remote *rm, uint64_t *pgoffs,
			       uint64_t max)
{
	uint64_t n = rm->stats.mismatches;

	for (uint64_t i = 0; i < n && i < max && i < RM_MISMATCH_KEEP; i++)
		pgoffs[i] = rm->mismatch[i];
	return n;
}

int gmem_remote_stats(const struct gmem_remote *rm,
		      struct gmem_remote_stats *out)
{
	remote_stats_load(out, &rm->stats);
	return 0;
}

int64_t gmem_remote_latencies(const struct gmem_remote *rm, uint64_t *ns,
			      uint64_t max)
{
	struct gmem_remote *m = (struct gmem_remote *)rm;
	uint64_t n;

	pthread_mutex_lock(&m->lock);
	n = m->nr_samples < max ? m->nr_samples : max;
	if (n)
		memcpy(ns, m->samples, n * sizeof(*ns));
	pthread_mutex_unlock(&m->lock);
	return n;
}

int gmem_remote_recover(struct gmem_remote *rm, const char *addr)
{
	int ret = 0;

	if (!rm || !addr || strlen(addr) >= sizeof(rm->addr))
		return -EINVAL;
	if (!rm->recover_ms)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&rm->lock);
	if (rm->phase == RM_DONE || rm->phase == RM_FAILED)
		ret = -ESHUTDOWN;
	else
		strcpy(rm->addr, addr);
	pthread_mutex_unlock(&rm->lock);
	return ret;
}

const char *gmem_remote_error(const struct gmem_remote *rm)
{
	return rm->err;
}

void gmem_remote_destroy(struct gmem_remote *rm)
{
	if (!rm)
		return;
	rm_reads_free(rm);
	rm_bulk_stop(rm);
	rm_endpoints_fini(rm);
	bitmap_free(&rm->received);
	bitmap_free(&rm->stale);
	bitmap_free(&rm->valid);
	bitmap_free(&rm->requested);
	auth_key_clear(&rm->key);
	seal_clear(&rm->ctl_tx);
	for (unsigned int i = 0; i < PROTO_MAX_CONNS; i++)
		seal_clear(&rm->rx[i].open);
	free(rm->ctl_buf);
	pthread_mutex_destroy(&rm->lock);
	pthread_mutex_destroy(&rm->ctl_lock);
	pthread_cond_destroy(&rm->cond);
	free(rm->digests);
	free(rm->samples);
	free(rm->state);
	free(rm->mem);
	free(rm);
}
