// SPDX-License-Identifier: MIT
/*
 * fetch.c - the remote page source (post-copy): faults become urgent
 * requests on the control connection, sent from the handler thread without
 * waiting; a receive thread installs urgent pages exactly once (the bulk
 * threads of remote.c install pushed ones, racing by claim), installs
 * valid pre-copy pages locally, and checks per-page digests once every page
 * is present. The server pushes the rest in address order.
 */
#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remote-source/remote.h"
#include "region/engine.h"
#include "probes.h"

#define LOCAL_RUN 512U /* valid pages the thread installs per step */

/* The service time of the urgent request that @h completes, if any. */
static void sample_latency(struct gmem_remote *rm, const struct proto_hdr *h)
{
	uint64_t t0 = 0, end = h->pgoff + h->nr;

	pthread_mutex_lock(&rm->ctl_lock);
	for (unsigned int i = 0; i < RM_OUTSTANDING; i++) {
		struct rm_req *q = &rm->reqs[i];

		if (q->used && q->pgoff <= h->pgoff && end == q->pgoff + q->nr) {
			t0 = q->t0_ns;
			q->used = false;
			break;
		}
	}
	pthread_mutex_unlock(&rm->ctl_lock);
	if (t0)
		rm_add_sample(rm, now_ns() - t0);
}

void rm_add_sample(struct gmem_remote *rm, uint64_t ns)
{
	pthread_mutex_lock(&rm->lock);
	if (!rm->samples)
		rm->samples = malloc(RM_MAX_SAMPLES * sizeof(*rm->samples));
	if (rm->samples && rm->nr_samples < RM_MAX_SAMPLES)
		rm->samples[rm->nr_samples++] = ns;
	pthread_mutex_unlock(&rm->lock);
}

int rm_install_pages(struct gmem_remote *rm, const struct proto_hdr *h,
		     const uint8_t *payload)
{
	struct gmem_region *r = rm->r;
	uint64_t p = h->pgoff, end = p + h->nr, installed = 0;
	enum rm_phase phase = rm_phase(rm);

	GMEM_PROBE(pages_received, h->pgoff, h->nr, h->flags);
	/* Whole, checked frames still buffered when another thread paused
	 * the session hold good pages: they are installed all the same. */
	if (phase != RM_POSTCOPY && phase != RM_VERIFYING && phase != RM_PAUSED)
		return rm_fail(rm, -EPROTO, "page before post-copy began");
	for (;;) {
		uint64_t n = install_claim(r, &p, end, end - p);
		int ret;

		if (!n)
			break;
		/* Fd-backed: pwrite(2) into the page cache, then CONTINUE;
		 * anonymous: UFFDIO_COPY straight from the receive buffer. */
		ret = install_commit(r, p, n,
				     payload + ((p - h->pgoff) << r->page_shift));
		if (ret < 0)
			return rm_fail(rm, ret, "install: %s", strerror(-ret));
		installed += n;
		p += n;
	}
	__atomic_fetch_add(&rm->installed, installed, __ATOMIC_RELEASE);
	/* The sample before the count, which releases it: whoever sees the
	 * pages counted (remote_stats_load() acquires) sees their latency. */
	if (h->flags & PROTO_F_URGENT)
		sample_latency(rm, h);
	__atomic_fetch_add(h->flags & PROTO_F_URGENT ? &rm->stats.urgent_pages
			   : h->flags & PROTO_F_PREFETCH
				   ? &rm->stats.prefetched_pages
				   : &rm->stats.pushed_pages,
			   installed, __ATOMIC_RELEASE);
	stat_add(&rm->stats.dropped_pages, h->nr - installed);
	stat_add(&rm->stats.bytes, h->len);
	return 0;
}

/* Installs the valid pages of a range that nobody claimed yet: their bytes
 * are in the page cache already, so only UFFDIO_CONTINUE is left to do. */
static int64_t install_valid(struct gmem_remote *rm, uint64_t pgoff,
			     uint64_t nr)
{
	uint64_t p = pgoff, end = pgoff + nr, done = 0;

	for (;;) {
		uint64_t n = install_claim(rm->r, &p, end, end - p);
		int ret;

		if (!n)
			break;
		ret = install_commit(rm->r, p, n, NULL);
		if (ret < 0)
			return ret;
		done += n;
		p += n;
	}
	__atomic_fetch_add(&rm->installed, done, __ATOMIC_RELEASE);
	stat_add(&rm->stats.local_pages, done);
	return done;
}

/* Sends one request: urgent and timed (its answer a latency sample), or,
 * with @hint, the pages around a fault that nobody waits on, untimed and
 * marked PREFETCH where the server takes hints. */
int rm_send_request(struct gmem_remote *rm, uint64_t pgoff, uint32_t nr,
		    bool hint)
{
	struct proto_hdr h = {
		.type = PROTO_REQ, .pgoff = pgoff, .nr = nr,
		.flags = hint && rm->prefetch ? PROTO_F_PREFETCH : 0,
	};
	uint64_t t0 = now_ns();

	pthread_mutex_lock(&rm->ctl_lock);
	for (unsigned int i = 0; !hint && i < RM_OUTSTANDING; i++) {
		if (!rm->reqs[i].used) {
			rm->reqs[i] = (struct rm_req){
				.pgoff = pgoff, .nr = nr, .t0_ns = t0,
				.used = true,
			};
			break;
		}
	}
	pthread_mutex_unlock(&rm->ctl_lock);
	stat_add(&rm->stats.requests, 1);
	GMEM_PROBE(request_sent, pgoff, nr, hint ? GMEM_PROBE_REQ_HINT
					 : GMEM_PROBE_REQ_URGENT);
	return rm_ctl_send(rm, &h, NULL);
}

int rm_fetch(struct gmem_remote *rm, uint64_t pgoff, uint32_t nr, bool hint)
{
	int ret;

	/* Read, nobody waits on the server: a hint is as urgent. */
	if (rm->reads)
		return rm_reads_request(rm, pgoff, nr);
	ret = rm_send_request(rm, pgoff, nr, hint);
	return ret > 0 ? 0 : ret;
}

/* Whether page @p still has to be asked for; marks it asked for. */
static bool want_page(struct gmem_remote *rm, uint64_t p)
{
	return !bitmap_test(&rm->r->claimed, p) && !bitmap_test(&rm->valid, p) &&
	       !bitmap_test_and_set(&rm->requested, p);
}

/*
 * Called by fault handlers for a fault-around run. Pages claimed already are
 * on their way; valid ones are installed here and now; the others, unless
 * requested before, are asked for in contiguous runs. The faulting page is
 * asked for alone, first, so that its answer is one page and the thread
 * waits for that page only; the rest of the run is a hint, which the
 * server answers on the fault-around connection (without
 * PROTO_FEAT_PREFETCH: after the faulting page on the control connection).
 * Never waits for the network: a receive thread installs the answer and
 * wakes the faulter.
 */
static int remote_request(struct gmem_source *s, uint64_t fault,
			  uint64_t pgoff, uint64_t nr)
{
	struct gmem_remote *rm = s->priv;
	uint64_t end = pgoff + nr, run = 0, start = 0, local = 0;
	/* With a fault, the rest of the run is a hint; a fill (no fault)
	 * is asked for whole, urgently. */
	bool hint = fault != SOURCE_NO_FAULT;
	int ret = 0;

	if (rm_phase(rm) == RM_FAILED)
		return rm->error;
	if (hint && want_page(rm, fault))
		ret = rm_fetch(rm, fault, 1, false);
	for (uint64_t p = pgoff; p <= end && ret >= 0; p++) {
		bool want = p < end && want_page(rm, p);

		if (want && run++ == 0)
			start = p;
		if (!want && run) {
			ret = rm_fetch(rm, start, run, hint);
			run = 0;
		}
		if (p < end && bitmap_test(&rm->valid, p) &&
		    !bitmap_test(&rm->r->claimed, p)) {
			int64_t n = install_valid(rm, p, 1);

			ret = n < 0 ? (int)n : ret;
			local += n > 0 ? n : 0;
		}
	}
	return ret < 0 ? ret : (int)local;
}

int rm_send_digest_requests(struct gmem_remote *rm)
{
	uint64_t nr_pages = rm->geom.nr_pages;
	int ret = 0;

	if (!rm->digests) /* a recovery asks again */
		rm->digests = malloc(PROTO_MAX_DIGESTS * sizeof(*rm->digests));
	if (!rm->digests)
		return rm_fail(rm, -ENOMEM, "no memory for digests");
	for (uint64_t p = 0; p < nr_pages && ret == 0; p += PROTO_MAX_DIGESTS) {
		struct proto_hdr h = {
			.type = PROTO_DIGEST_REQ, .pgoff = p,
			.nr = nr_pages - p < PROTO_MAX_DIGESTS ? nr_pages - p
							      : PROTO_MAX_DIGESTS,
		};

		ret = rm_ctl_send(rm, &h, NULL);
	}
	return ret < 0 ? rm_fail(rm, ret, "DIGEST_REQ: %s", strerror(-ret)) : 0;
}

int rm_check_digests(struct gmem_remote *rm, const struct proto_hdr *h,
		     const uint8_t *payload)
{
	struct proto_hdr done = { .type = PROTO_DONE };
	int ret;

	if (rm_phase(rm) == RM_PAUSED) /* asked for again on resuming */
		return 0;
	if (rm_phase(rm) != RM_VERIFYING)
		return rm_fail(rm, -EPROTO, "DIGEST before completion");
	/* The DIGEST_REQs went in page order on this connection and are
	 * answered in order: a chunk repeated or out of place would count
	 * pages as checked that never were. */
	if (h->pgoff != rm->digests_checked)
		return rm_fail(rm, -EPROTO,
			       "DIGEST for page %llu, expected %llu",
			       (unsigned long long)h->pgoff,
			       (unsigned long long)rm->digests_checked);
	memcpy(rm->digests, rm->r->installed_digests + h->pgoff, h->nr * 8);
	for (uint32_t i = 0; i < h->nr; i++) {
		uint64_t theirs;

		memcpy(&theirs, payload + i * 8, 8);
		if (le64toh(theirs) == rm->digests[i])
			continue;
		if (rm->stats.mismatches < RM_MISMATCH_KEEP)
			rm->mismatch[rm->stats.mismatches] = h->pgoff + i;
		stat_add(&rm->stats.mismatches, 1);
	}
	rm->digests_checked += h->nr;
	if (rm->digests_checked < rm->geom.nr_pages)
		return 0;
	done.nr = rm->stats.mismatches;
	ret = rm_ctl_send(rm, &done, NULL);
	if (ret < 0)
		return rm_fail(rm, ret, "DONE: %s", strerror(-ret));
	if (ret) /* paused: the recovery checks every digest again */
		return 0;
	rm_set_phase(rm, RM_DONE);
	return 0;
}

/* Installs the next few valid pages (no network), then checks whether every
 * page is present: that starts the digest comparison. */
static int background_work(struct gmem_remote *rm)
{
	uint64_t nr_pages = rm->geom.nr_pages, p = rm->local_cursor;

	if (p < nr_pages) {
		p = bitmap_next_set(&rm->valid, p);
		if (p < nr_pages) {
			uint64_t n = 1;
			int64_t ret;

			while (p + n < nr_pages && n < LOCAL_RUN &&
			       bitmap_test(&rm->valid, p + n))
				n++;
			ret = install_valid(rm, p, n);

			if (ret < 0)
				return rm_fail(rm, ret, "local install: %s",
					       strerror(-ret));
			p += n;
		}
		rm->local_cursor = p;
	}
	if (rm_phase(rm) != RM_POSTCOPY ||
	    rm->present_base + __atomic_load_n(&rm->installed, __ATOMIC_ACQUIRE) <
		    nr_pages)
		return 0;
	if (gmem_region_nr_present(rm->r) < nr_pages)
		return 0;
	rm_set_phase(rm, RM_VERIFYING);
	return rm_send_digest_requests(rm);
}

static void *receive_thread(void *arg)
{
	struct gmem_remote *rm = arg;

	run_near_node(rm->r);
	while (!__atomic_load_n(&rm->stop, __ATOMIC_ACQUIRE)) {
		enum rm_phase phase = rm_phase(rm);
		int64_t wait = rm->local_cursor < rm->geom.nr_pages ? 0
								    : RM_IO_WAIT_NS;

		if (phase == RM_FAILED || phase == RM_DONE)
			break;
		if (phase == RM_PAUSED) {
			if (rm_recover(rm) < 0)
				break;
			/* The pause counted against recover_ms, not the
			 * silence limit. */
			__atomic_store_n(&rm->last_rx_ns, now_ns(),
					 __ATOMIC_RELAXED);
			continue;
		}
		if (rm_step(rm, 0, wait) < 0 || background_work(rm) < 0 ||
		    rm_silent(rm))
			break;
	}
	return NULL;
}

/* Tells the server which pages to push: neither valid nor present. */
int rm_send_need(struct gmem_remote *rm)
{
	uint64_t nr_pages = rm->geom.nr_pages;
	uint64_t chunk = PROTO_MAX_BITMAP_LEN * 8ULL;
	uint64_t *words = malloc(PROTO_MAX_BITMAP_LEN);
	int ret = 0;

	if (!words)
		return -ENOMEM;
	for (uint64_t p = 0; p < nr_pages && ret == 0; p += chunk) {
		struct proto_hdr h = {
			.type = PROTO_NEED, .pgoff = p,
			.nr = nr_pages - p < chunk ? nr_pages - p : chunk,
		};
		uint64_t any = 0;

		h.len = proto_bitmap_len(h.nr);
		for (uint64_t i = 0; i < h.len / 8; i++) {
			/* Bulk threads may be installing pages already: a
			 * page they install now is merely pushed again. */
			uint64_t w = ~(rm->valid.words[p / 64 + i] |
				       __atomic_load_n(
					       &rm->r->present.words[p / 64 + i],
					       __ATOMIC_RELAXED));

			any |= w;
			words[i] = htole64(w);
		}
		if (any)
			ret = rm_ctl_send(rm, &h, words);
	}
	free(words);
	return ret;
}

/* valid = received and not stale. */
static int make_valid(struct gmem_remote *rm)
{
	uint64_t nw = (rm->geom.nr_pages + 63) / 64;
	int ret;

	ret = bitmap_init(&rm->valid, rm->geom.nr_pages, false);
	if (ret == 0)
		ret = bitmap_init(&rm->requested, rm->geom.nr_pages, false);
	if (ret < 0)
		return ret;
	for (uint64_t i = 0; i < nw; i++)
		rm->valid.words[i] = rm->received.words[i] & ~rm->stale.words[i];
	return 0;
}

static int remote_attach(struct gmem_source *s, struct gmem_region *r)
{
	struct gmem_remote *rm = s->priv;
	int ret;

	if (r != rm->r || rm_phase(rm) != RM_READY)
		return -EINVAL;
	/* The workload may rewrite a page as soon as it is installed: the
	 * completion check compares the pages as they were installed. */
	ret = region_record_digests(r);
	if (ret < 0)
		return ret;
	if (!rm->valid.words) {
		ret = make_valid(rm);
		if (ret < 0)
			return ret;
	}
	rm->present_base = bitmap_count(&r->present);
	/* Pages present before the attach count as installed as they are;
	 * pre-copy pages installed at once (another process's memory) were
	 * hashed as they were installed. */
	for (uint64_t p = bitmap_next_set(&r->present, 0);
	     p < r->nr_pages && ret == 0;
	     p = bitmap_next_set(&r->present, p + 1))
		if (r->alias || r->addr || !bitmap_test(&rm->received, p))
			ret = gmem_region_digest(r, p, 1,
						 &r->installed_digests[p]);
	if (ret < 0)
		return ret;
	/* Before NEED: the bulk threads install what it makes the server
	 * push, from the first frame. With reads the destination pushes to
	 * itself: no NEED. */
	rm_set_phase(rm, RM_POSTCOPY);
	/* The server waited for our NEED meanwhile: silence counts anew. */
	__atomic_store_n(&rm->last_rx_ns, now_ns(), __ATOMIC_RELAXED);
	ret = rm->flags & GMEM_REMOTE_ON_DEMAND || rm->reads ? 0
							     : rm_send_need(rm);
	if (ret < 0)
		return rm_fail(rm, ret, "NEED: %s", strerror(-ret));
	if (rm->reads) {
		ret = rm_reads_start(rm);
		if (ret < 0)
			return ret;
	}
	ret = -pthread_create(&rm->io, NULL, receive_thread, rm);
	rm->io_running = ret == 0;
	return ret;
}

static void remote_detach(struct gmem_source *s)
{
	struct gmem_remote *rm = s->priv;

	rm_reads_stop(rm);
	/* The receive thread first: while recovering it restarts the bulk
	 * threads, which are joined after it. */
	__atomic_store_n(&rm->stop, true, __ATOMIC_RELEASE);
	if (rm->io_running)
		pthread_join(rm->io, NULL);
	rm->io_running = false;
	rm_bulk_stop(rm);
}

static void remote_destroy(struct gmem_source *s)
{
	struct gmem_remote *rm = s->priv;

	remote_detach(s);
	rm->src = NULL;
}

static const struct source_ops remote_ops = {
	.request = remote_request,
	.attach = remote_attach,
	.detach = remote_detach,
	.destroy = remote_destroy,
};

int gmem_remote_source(struct gmem_remote *rm, struct gmem_source **out)
{
	int ret;

	if (!rm || !out || rm_phase(rm) < RM_READY)
		return -EINVAL;
	if (rm->src)
		return -EBUSY;
	ret = source_new(&remote_ops, rm, &rm->src);
	if (ret == 0)
		*out = rm->src;
	return ret;
}
