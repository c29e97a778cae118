// SPDX-License-Identifier: MIT
/*
 * server.c - the page server: serves one region to one destination. Urgent
 * requests are answered on the control connection before anything else;
 * the background push (server-push.c) streams needed pages over the bulk
 * connections, the working set first; pre-copy rounds and the switchover
 * state use the same frames. The caller's thread drives all but the push.
 */
#include <endian.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "page-server/server.h"

int srv_err(struct gmem_server *s, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	s->error = ret;
	return ret;
}

/* Pages the owner has written (a fill gate may hold the rest back). */
bool srv_filled(const struct gmem_server *s, uint64_t pgoff, uint64_t nr)
{
	return gmem_region_filled(s->r) >= (pgoff + nr) << s->r->page_shift;
}

/*
 * While the fill gate is not fully up, its mark must keep rising: an error
 * once it has stood still for FILL_STALL_NS (the owner died or stopped
 * writing), so that nothing waits on it for ever. Sets *@poll_ns to how
 * long the caller may idle: briefly while pages wait to be written.
 */
static int fill_check(struct gmem_server *s, int64_t *poll_ns)
{
	uint64_t mark = gmem_region_filled(s->r), t = now_ns();

	if (mark == s->r->size)
		return 0;
	*poll_ns = FILL_POLL_NS;
	if (mark != s->fill_mark || !s->fill_since_ns) {
		s->fill_mark = mark;
		s->fill_since_ns = t;
		return 0;
	}
	if (t - s->fill_since_ns < FILL_STALL_NS)
		return 0;
	return srv_err(s, -ETIMEDOUT, "the workload stopped writing its "
		       "region at byte %llu of %llu", (unsigned long long)mark,
		       (unsigned long long)s->r->size);
}

static struct srv_slot *slot_get(struct srv_conn *c)
{
	for (unsigned int i = 0; i < c->nr_slots; i++)
		if (!c->slots[i].busy)
			return &c->slots[i];
	return NULL;
}

/*
 * Finishes a frame whose payload is in @slot, or at @src (NULL: in the
 * slot), and queues it for the next submit. A sealed connection's payload
 * is encrypted from @src into the slot, one pass over the bytes.
 */
static void frame_queue(struct gmem_server *s, unsigned int conn,
			struct srv_slot *slot, struct proto_hdr *h,
			const void *src)
{
	struct srv_conn *c = &s->conns[conn];
	uint32_t len;

	h->seq = c->tx_seq++;
	s->precopy_frames += h->type == PROTO_PAGES &&
			     (h->flags & PROTO_F_PRECOPY);
	len = wire_encode(&c->tx, slot->buf, h, src);
	wire_simd_clean();
	slot->req = (struct transport_req){
		.conn = conn, .dir = TRANSPORT_SEND, .buf = slot->buf,
		.len = len, .user = slot,
	};
	slot->busy = true;
	c->busy++;
	s->batch[s->nr_batch++] = &slot->req;
}

/*
 * Pages are copied into the slot: a pre-copy page may be rewritten by the
 * running workload between its checksum and its send, and an urgent frame
 * goes out in one send (header and pages apart would cost a ring round
 * trip between the two, as sends of a connection go one at a time).
 */
static void queue_pages(struct gmem_server *s, unsigned int conn,
			struct srv_slot *slot, uint64_t pgoff, uint32_t nr,
			uint16_t why)
{
	unsigned int shift = s->r->page_shift;
	struct proto_hdr h = {
		.type = PROTO_PAGES, .flags = why, .len = nr << shift,
		.pgoff = pgoff, .nr = nr,
	};

	frame_queue(s, conn, slot, &h, s->base + (pgoff << shift));
	stat_add(&s->stats.bytes, h.len);
}

static int queue_digests(struct gmem_server *s, struct srv_slot *slot,
			 uint64_t pgoff, uint32_t nr)
{
	uint64_t *d = (uint64_t *)(slot->buf + PROTO_HDR_LEN);
	struct proto_hdr h = {
		.type = PROTO_DIGEST, .len = nr * 8, .pgoff = pgoff, .nr = nr,
	};
	int ret = gmem_region_digest(s->r, pgoff, nr, d);

	if (ret < 0)
		return srv_err(s, ret, "digest: %s", strerror(-ret));
	for (uint32_t i = 0; i < nr; i++)
		d[i] = htole64(d[i]);
	frame_queue(s, 0, slot, &h, NULL);
	return 0;
}

/* Urgent work first: answers on the control connection. */
static int fill_urgent(struct gmem_server *s)
{
	unsigned int shift = s->r->page_shift;
	struct srv_slot *slot;

	while (s->work_head != s->work_tail && (slot = slot_get(&s->conns[0]))) {
		struct srv_work *w = &s->work[s->work_head % WORK_MAX];
		uint32_t max = w->type == WORK_PAGES ? s->slot_cap >> shift
						     : s->slot_cap / 8;
		uint32_t n = w->nr < max ? w->nr : max;

		/* Served in order, once written: the next round retries. */
		if (!srv_filled(s, w->pgoff, n))
			return 0;
		if (w->type == WORK_DIGEST) {
			if (queue_digests(s, slot, w->pgoff, n) < 0)
				return s->error;
		} else {
			queue_pages(s, 0, slot, w->pgoff, n, PROTO_F_URGENT);
			bitmap_clear_range(&s->need, w->pgoff, n);
			stat_add(&s->stats.urgent_pages, n);
		}
		w->pgoff += n;
		w->nr -= n;
		if (!w->nr)
			s->work_head++;
	}
	return 0;
}

uint32_t srv_next_run(struct bitmap *b, uint64_t *cursor, uint32_t max,
		      bool take)
{
	uint64_t p = bitmap_next_set(b, *cursor), n = 0;

	while (p + n < b->nbits && n < max && bitmap_test(b, p + n))
		n++;
	if (take && n)
		bitmap_clear_range(b, p, n);
	*cursor = p;
	return n;
}

/*
 * A page written during pre-copy is sent again in a later round, and the
 * destination must land the rounds in order; frames of two bulk connections
 * are not ordered with each other. So a pre-copy page always travels on the
 * connection its stripe (one frame's worth of pages) maps to, and a frame
 * never crosses a stripe. Moves *@cursor to the next page to send and
 * returns a free slot of that connection (NULL: none free, or none left);
 * *@max becomes the pages left in the stripe.
 */
static struct srv_slot *precopy_slot(struct gmem_server *s, struct bitmap *b,
				     uint64_t *cursor, unsigned int *conn,
				     uint32_t *max)
{
	uint64_t p = bitmap_next_set(b, *cursor);

	*cursor = p;
	if (p >= b->nbits)
		return NULL;
	*conn = 1 + (p / *max) % s->nr_bulk;
	*max -= p % *max;
	return slot_get(&s->conns[*conn]);
}

/* Streams the pre-copy pages of @b from *@cursor over free bulk slots. */
static uint64_t fill_precopy(struct gmem_server *s, struct bitmap *b,
			     uint64_t *cursor)
{
	uint32_t run = s->slot_cap >> s->r->page_shift;
	uint64_t pages = 0;

	while (*cursor < b->nbits) {
		uint32_t n, max = run;
		struct srv_slot *slot;
		unsigned int conn;

		slot = precopy_slot(s, b, cursor, &conn, &max);
		if (!slot)
			break;
		n = srv_next_run(b, cursor, max, false);
		if (!n || !srv_filled(s, *cursor, n))
			break;
		queue_pages(s, conn, slot, *cursor, n, PROTO_F_PRECOPY);
		*cursor += n;
		pages += n;
	}
	return pages;
}

static int queue_work(struct gmem_server *s, const struct proto_hdr *h,
		      uint32_t type)
{
	if (s->work_tail - s->work_head == WORK_MAX)
		return srv_err(s, -EPROTO, "too many outstanding requests");
	s->work[s->work_tail++ % WORK_MAX] = (struct srv_work){
		.pgoff = h->pgoff, .nr = h->nr, .type = type,
	};
	return 0;
}

static int handle_frame(struct gmem_server *s, unsigned int conn)
{
	struct wire_rx *rx = &s->conns[conn].rx;
	const struct proto_hdr *h = &rx->hdr;

	if (conn && h->type != PROTO_ERROR)
		return srv_err(s, -EPROTO, "%s frame on a bulk connection",
			       proto_type_name(h->type));
	switch (h->type) {
	case PROTO_REQ:
		stat_add(&s->stats.requests, 1);
		/* With a fault-around connection; a hint the queue has no
		 * room for is answered as urgent. */
		if ((h->flags & PROTO_F_PREFETCH) &&
		    s->nr_conns > 1 + s->nr_bulk && push_prefetch(s, h))
			return 0;
		return queue_work(s, h, WORK_PAGES);
	case PROTO_DIGEST_REQ:
		return queue_work(s, h, WORK_DIGEST);
	case PROTO_NEED:
		push_need(s, h, wire_payload(rx));
		return 0;
	case PROTO_DONE:
		s->done = true;
		__atomic_store_n(&s->stats.mismatches, h->nr, __ATOMIC_RELAXED);
		return 0;
	case PROTO_ERROR:
		return srv_err(s, -ECONNABORTED, "destination gave up: %.*s",
			       (int)h->len, (const char *)wire_payload(rx));
	default:
		return srv_err(s, -EPROTO, "unexpected %s from the destination",
			       proto_type_name(h->type));
	}
}

static int reap_one(struct gmem_server *s, struct transport_req *q)
{
	struct wire_rx *rx;
	const char *why = "";
	int ret;

	if (q->dir == TRANSPORT_SEND) {
		struct srv_slot *slot = q->user;

		slot->busy = false;
		s->conns[q->conn].busy--;
		if (q->res < 0) {
			s->link_lost = true;
			return srv_err(s, q->res, "send on connection %u: %s",
				       q->conn, strerror(-q->res));
		}
		return 0;
	}
	rx = &s->conns[q->conn].rx;
	s->last_rx_ns = now_ns();
	for (ret = wire_rx_done(&s->t, rx, &s->geom, &why); ret == 1;
	     ret = wire_rx_next(&s->t, rx, &s->geom, &why)) {
		ret = handle_frame(s, q->conn);
		if (ret < 0)
			return ret;
	}
	/* A destination that is done closes every connection at once: its
	 * DONE on the control connection may be reaped after a bulk one's
	 * end. Only the control connection's end fails the session. */
	if (ret == -ECONNRESET && q->conn)
		return 0;
	if (ret < 0) {
		if (ret == -EPROTO)
			srv_send_error(s, q->conn, EPROTO, why);
		/* Not a malformed frame: the link broke. */
		s->link_lost = ret != -EPROTO;
		return srv_err(s, ret, "connection %u: %s", q->conn, why);
	}
	return 0;
}

/* Submits what was queued, then reaps completions (waiting @wait_ns for
 * the first when nothing was submitted). */
static int server_step(struct gmem_server *s, int64_t wait_ns)
{
	struct transport_req *done[64];
	int ret = 0, n;

	if (s->nr_batch) {
		ret = s->t.ops->submit(&s->t, s->batch, s->nr_batch);
		wait_ns = 0;
		s->nr_batch = 0;
		if (ret < 0)
			return srv_err(s, ret, "submit: %s", strerror(-ret));
	}
	n = s->t.ops->poll(&s->t, done, ARRAY_SIZE(done), wait_ns);
	if (n < 0)
		return srv_err(s, n, "poll: %s", strerror(-n));
	for (int i = 0; i < n && ret == 0; i++)
		ret = reap_one(s, done[i]);
	return ret;
}

/* server_step() for a loop that waits on the fill gate too: it idles no
 * longer than fill_check() allows and fails once the mark stands still. */
static int gated_step(struct gmem_server *s)
{
	int64_t poll_ns = IDLE_WAIT_NS;
	int ret = fill_check(s, &poll_ns);

	return ret < 0 ? ret : server_step(s, poll_ns);
}

static unsigned int busy_slots(const struct gmem_server *s)
{
	unsigned int busy = 0;

	for (unsigned int i = 0; i < s->nr_conns; i++)
		busy += s->conns[i].busy;
	return busy;
}

static int server_ready(struct gmem_server *s)
{
	if (s->error)
		return s->error;
	return s->nr_conns ? 0 : -ENOTCONN;
}

int64_t gmem_server_send_pages(struct gmem_server *s, const uint64_t *bitmap,
			       uint64_t nr_pages)
{
	struct bitmap b = { .nbits = nr_pages, .words = (uint64_t *)bitmap };
	uint64_t cursor = 0, pages = 0;
	int ret = server_ready(s);

	if (ret < 0)
		return ret;
	if (!bitmap || nr_pages > s->r->nr_pages)
		return -EINVAL;
	if (s->state_sent)
		return -EALREADY;
	while (ret == 0 && (cursor < nr_pages || busy_slots(s))) {
		pages += fill_precopy(s, &b, &cursor);
		ret = gated_step(s);
	}
	stat_add(&s->stats.precopy_pages, pages);
	return ret < 0 ? ret : (int64_t)pages;
}

/* Queues the stale bitmap in chunks on the control connection (zero
 * chunks are left out: the destination starts with none stale). */
static int queue_stale(struct gmem_server *s, const uint64_t *stale,
		       uint64_t nr_pages)
{
	uint64_t chunk = (uint64_t)s->slot_cap * 8;

	for (uint64_t p = 0; p < nr_pages; p += chunk) {
		uint32_t nr = nr_pages - p < chunk ? nr_pages - p : chunk;
		uint64_t *d, nw = proto_bitmap_len(nr) / 8, any = 0;
		struct proto_hdr h = {
			.type = PROTO_STALE, .len = proto_bitmap_len(nr),
			.pgoff = p, .nr = nr,
		};
		struct srv_slot *slot;
		int ret = 0;

		for (uint64_t i = 0; i < nw; i++)
			any |= stale[p / 64 + i];
		if (!any)
			continue;
		while (ret == 0 && !(slot = slot_get(&s->conns[0])))
			ret = server_step(s, IDLE_WAIT_NS);
		if (ret < 0)
			return ret;
		d = (uint64_t *)(slot->buf + PROTO_HDR_LEN);
		for (uint64_t i = 0; i < nw; i++)
			d[i] = htole64(stale[p / 64 + i]);
		if (nr % 64)
			d[nw - 1] &= htole64((1ULL << (nr % 64)) - 1);
		frame_queue(s, 0, slot, &h, NULL);
	}
	return 0;
}

int gmem_server_send_state(struct gmem_server *s, const void *blob,
			   size_t len, const uint64_t *stale,
			   uint64_t nr_pages)
{
	struct proto_hdr h = {
		.type = PROTO_STATE, .len = len, .pgoff = s->precopy_frames,
	};
	struct srv_slot *slot;
	int ret = server_ready(s);

	if (ret < 0)
		return ret;
	if (len > PROTO_MAX_STATE_LEN || (len && !blob) ||
	    nr_pages > s->r->nr_pages || (nr_pages && !stale))
		return -EINVAL;
	if (s->state_sent)
		return -EALREADY;
	/* One-sided reads bypass this CPU, and so the fill gate: the
	 * destination runs only once the whole region is written. */
	while (ret == 0 && s->reads.ops && !srv_filled(s, 0, s->r->nr_pages))
		ret = gated_step(s);
	if (ret == 0)
		ret = queue_stale(s, stale, stale ? nr_pages : 0);
	while (ret == 0 && !(slot = slot_get(&s->conns[0])))
		ret = server_step(s, IDLE_WAIT_NS);
	if (ret < 0)
		return ret;
	frame_queue(s, 0, slot, &h, len ? blob : NULL);
	s->state_sent = true;
	return server_step(s, 0);
}

/* One round of serving: urgent work, completions, the pushers' and the
 * link's health. */
static int serve_step(struct gmem_server *s, int wait_ms)
{
	int ret;

	s->link_lost = false; /* reap_one() sets it for a broken link */
	ret = fill_urgent(s);
	if (ret == 0)
		ret = gated_step(s);
	if (ret < 0)
		return ret;
	s->link_lost = true; /* for each of the checks below */
	if (push_error(s))
		return srv_err(s, push_error(s), "push: %s", s->push.err);
	if (wait_ms >= 0 && now_ns() - s->last_rx_ns > wait_ms * 1000000ULL)
		return srv_err(s, -ETIMEDOUT, "destination silent for %d ms",
			       wait_ms);
	if (srv_destination_back(s))
		return srv_err(s, -ECONNRESET, "the destination reconnected");
	s->link_lost = false;
	return 0;
}

int gmem_server_serve(struct gmem_server *s, int wait_ms)
{
	int ret = server_ready(s);

	if (ret == 0 && !s->state_sent)
		ret = gmem_server_send_state(s, NULL, 0, NULL, 0);
	if (ret == 0)
		ret = push_start(s);
	if (ret < 0)
		return ret == s->error ? ret : srv_err(s, ret, "push: %s",
							 strerror(-ret));
	s->last_rx_ns = now_ns();
	while (ret == 0 && !s->done) {
		ret = serve_step(s, wait_ms);
		/* Post-copy recovery: the pages stay here, whatever broke. */
		if (ret < 0 && s->link_lost && s->recover_ms)
			ret = srv_recover(s);
	}
	push_stop(s);
	if (ret < 0)
		return ret;
	return __atomic_load_n(&s->stats.mismatches, __ATOMIC_RELAXED) ? -EIO : 0;
}

int gmem_server_stats(const struct gmem_server *s,
		      struct gmem_remote_stats *out)
{
	remote_stats_load(out, &s->stats);
	return 0;
}

int gmem_server_offer_rdma(struct gmem_server *s, const char *addr)
{
	const struct transport_ops *ops = transport_find("rdma");
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	char where[300];
	int ret;

	if (!colon || s->reads.ops || s->nr_conns)
		return -EINVAL;
	/* rdma_cm has its own port space: the TCP port serves it too. */
	snprintf(where, sizeof(where), "%.*s:%u", (int)(colon - addr), addr,
		 s->port);
	ret = ops->expose(&s->reads, where, (void *)s->base, s->r->size,
			  &s->win);
	if (ret < 0) {
		/* The server stays as it was: on its stream transport. */
		snprintf(s->err, sizeof(s->err), "%s",
			 ops->read_error(&s->reads));
		ops->close_reads(&s->reads);
		s->reads.ops = NULL;
		return ret;
	}
	s->err[0] = '\0';
	/* One transport for the session: its streams too. */
	s->ops = ops;
	return srv_conns_reset(s);
}

const char *gmem_server_transport(const struct gmem_server *s)
{
	struct gmem_server *m = (struct gmem_server *)s;

	if (!s->reads.ops)
		return s->ops->name;
	snprintf(m->transport, sizeof(m->transport), "%s %s%s", s->ops->name,
		 s->reads.ops->read_device(&s->reads),
		 s->nr_conns && !s->reads_on ? " (offered; destination uses "
					       "tcp)" : "");
	return s->transport;
}

const char *gmem_server_error(const struct gmem_server *s)
{
	return s->err;
}

void gmem_server_destroy(struct gmem_server *s)
{
	if (!s)
		return;
	push_stop(s);
	if (s->t.ops)
		s->t.ops->fini(&s->t);
	if (s->reads.ops)
		s->reads.ops->close_reads(&s->reads);
	pthread_mutex_destroy(&s->push.lock);
	pthread_cond_destroy(&s->push.cond);
	pthread_cond_destroy(&s->push.hint_cond);
	if (s->lfd >= 0)
		close(s->lfd);
	bitmap_free(&s->need);
	push_tiers_free(s);
	auth_key_clear(&s->key);
	/* The connections' keys. */
	sodium_memzero(s->conns, sizeof(s->conns));
	free(s->mem);
	free(s);
}
