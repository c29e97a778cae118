// SPDX-License-Identifier: MIT
/*
 * push.c - the page server's background push (post-copy): one thread
 * per bulk connection claims the next run of needed pages, the working set
 * the caller named first (gmem_server_push_first()), then the rest in
 * address order, and sends it in place from the region, the source being
 * paused. One thread checksumming and copying for every connection capped
 * the push at a fraction of what the link carries; urgent requests stay on
 * the caller's thread and control connection, so they never queue behind
 * it.
 * One more thread sends the fault-around hints' pages on the fault-around
 * connection, the same way, so they queue behind neither.
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include "page-server/server.h"
#include "probes.h"
#include "threads.h"

void push_need(struct gmem_server *s, const struct proto_hdr *h,
	       const uint8_t *bitmap)
{
	struct srv_push *push = &s->push;
	uint64_t nw = proto_bitmap_len(h->nr) / 8;

	pthread_mutex_lock(&push->lock);
	for (uint64_t i = 0; i < nw; i++) {
		uint64_t w;

		memcpy(&w, bitmap + i * 8, 8);
		w = le64toh(w);
		if (i == nw - 1 && h->nr % 64)
			w &= (1ULL << (h->nr % 64)) - 1;
		__atomic_fetch_or(&s->need.words[h->pgoff / 64 + i], w,
				  __ATOMIC_RELAXED);
	}
	if (!push->active || h->pgoff < push->cursor)
		push->cursor = h->pgoff;
	for (unsigned int t = 0; t < push->nr_tiers; t++)
		if (!push->active || h->pgoff < push->tier_cursor[t])
			push->tier_cursor[t] = h->pgoff;
	push->active = true;
	pthread_cond_broadcast(&push->cond);
	pthread_mutex_unlock(&push->lock);
}

int gmem_server_push_first(struct gmem_server *s, const uint64_t *bitmap,
			   uint64_t nr_pages)
{
	struct srv_push *push = &s->push;
	struct bitmap *b;

	if (!bitmap || nr_pages > s->r->nr_pages)
		return -EINVAL;
	if (push->nr_threads)
		return -EALREADY;
	if (push->nr_tiers == PUSH_TIERS)
		return -ENOSPC;
	b = &push->tiers[push->nr_tiers];
	if (bitmap_init(b, s->r->nr_pages, false))
		return -ENOMEM;
	memcpy(b->words, bitmap, nr_pages / 64 * 8);
	if (nr_pages % 64)
		b->words[nr_pages / 64] = bitmap[nr_pages / 64] &
					  ((1ULL << (nr_pages % 64)) - 1);
	push->tier_cursor[push->nr_tiers++] = 0;
	return 0;
}

void push_tiers_free(struct gmem_server *s)
{
	while (s->push.nr_tiers)
		bitmap_free(&s->push.tiers[--s->push.nr_tiers]);
}

/*
 * The next run of pages set in both @need and @tier at or after *@cursor,
 * at most @max long; taken from @need. *@cursor moves to its start (to the
 * end when there is none). Returns its length (0: the tier is done).
 */
static uint32_t tier_next_run(struct bitmap *need, const struct bitmap *tier,
			      uint64_t *cursor, uint32_t max)
{
	uint64_t p = *cursor, n = 0;

	while (p < need->nbits) {
		uint64_t w = __atomic_load_n(&need->words[p / 64],
					     __ATOMIC_ACQUIRE) &
			     tier->words[p / 64] & (~0ULL << (p % 64));

		if (w) {
			p = (p & ~63ULL) + __builtin_ctzll(w);
			break;
		}
		p = (p | 63) + 1;
	}
	if (p >= need->nbits) {
		*cursor = need->nbits;
		return 0;
	}
	while (p + n < need->nbits && n < max && bitmap_test(need, p + n) &&
	       bitmap_test(tier, p + n))
		n++;
	bitmap_clear_range(need, p, n);
	*cursor = p;
	return n;
}

/* Claims the next run of the push, under @lock: the tiers in their order,
 * then address order. Returns its length (0: nothing needed now). */
static uint32_t push_claim(struct gmem_server *s, uint64_t *pgoff,
			   uint32_t max)
{
	struct srv_push *push = &s->push;
	uint32_t n;

	for (unsigned int t = 0; t < push->nr_tiers; t++) {
		uint64_t *c = &push->tier_cursor[t];

		n = tier_next_run(&s->need, &push->tiers[t], c, max);
		if (n) {
			*pgoff = *c;
			*c += n;
			stat_add(&s->stats.hot_pages, n);
			return n;
		}
	}
	n = srv_next_run(&s->need, &push->cursor, max, true);
	*pgoff = push->cursor;
	push->cursor += n;
	return n;
}

bool push_prefetch(struct gmem_server *s, const struct proto_hdr *h)
{
	struct srv_push *push = &s->push;
	bool room;

	pthread_mutex_lock(&push->lock);
	room = push->prefetch_tail - push->prefetch_head < PREFETCH_MAX;
	if (room) {
		push->prefetch[push->prefetch_tail++ % PREFETCH_MAX] =
			(struct srv_work){ .pgoff = h->pgoff, .nr = h->nr };
		pthread_cond_signal(&push->hint_cond);
	}
	pthread_mutex_unlock(&push->lock);
	return room;
}

/* Takes up to @max pages of the oldest fault-around hint, under @lock;
 * they leave the push. Returns the pages taken (0: no hint). */
static uint32_t take_prefetch(struct gmem_server *s, uint64_t *pgoff,
			      uint32_t max)
{
	struct srv_push *push = &s->push;
	struct srv_work *w;
	uint32_t n;

	if (push->prefetch_head == push->prefetch_tail)
		return 0;
	w = &push->prefetch[push->prefetch_head % PREFETCH_MAX];
	n = w->nr < max ? w->nr : max;
	*pgoff = w->pgoff;
	bitmap_clear_range(&s->need, w->pgoff, n);
	w->pgoff += n;
	w->nr -= n;
	if (!w->nr)
		push->prefetch_head++;
	return n;
}

/* Header, then the pages straight from the region: no copy of ours. A
 * sealed connection's pages are encrypted from the region into @buf
 * (the pusher's own), then sent with their header and tag at once. */
static int push_frame(struct gmem_server *s, unsigned int conn, uint8_t *buf,
		      uint64_t pgoff, uint32_t nr, uint16_t why)
{
	unsigned int shift = s->r->page_shift;
	const uint8_t *pages = s->base + (pgoff << shift);
	struct seal *tx = &s->conns[conn].tx;
	struct proto_hdr h = {
		.type = PROTO_PAGES, .flags = why, .len = nr << shift,
		.seq = s->conns[conn].tx_seq++, .pgoff = pgoff, .nr = nr,
	};
	uint8_t hdr[PROTO_HDR_LEN];
	int ret;

	if (seal_on(tx)) {
		uint32_t len = wire_encode(tx, buf, &h, pages);

		wire_simd_clean();
		ret = s->t.ops->send_now(&s->t, conn, buf, len);
	} else {
		proto_encode(hdr, &h, pages);
		wire_simd_clean();
		ret = s->t.ops->send_now(&s->t, conn, hdr, sizeof(hdr));
		if (ret == 0)
			ret = s->t.ops->send_now(&s->t, conn, pages, h.len);
	}
	if (ret < 0)
		return ret;
	GMEM_PROBE(push_batch, conn, pgoff, nr, why);
	stat_add(why == PROTO_F_PUSH ? &s->stats.pushed_pages
				     : &s->stats.prefetched_pages, nr);
	stat_add(&s->stats.bytes, h.len);
	return 0;
}

static void push_fail(struct srv_push *push, unsigned int conn, int ret)
{
	pthread_mutex_lock(&push->lock);
	if (!push->error && !push->stop) {
		snprintf(push->err, sizeof(push->err),
			 "send on connection %u: %s", conn, strerror(-ret));
		__atomic_store_n(&push->error, ret, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&push->lock);
}

static void *pusher(void *arg)
{
	struct srv_pusher *p = arg;
	struct gmem_server *s = p->s;
	struct srv_push *push = &s->push;
	const struct timespec fill_tick = { .tv_nsec = FILL_POLL_NS };
	uint32_t max = s->slot_cap >> s->r->page_shift;
	uint8_t *buf = NULL;

	if (seal_on(&s->conns[p->conn].tx)) {
		buf = malloc(PROTO_HDR_LEN + s->slot_cap + SEAL_TAG_LEN);
		if (!buf) {
			push_fail(push, p->conn, -ENOMEM);
			return NULL;
		}
	}
	for (;;) {
		uint16_t why = 0;
		uint64_t pgoff = 0;
		uint32_t n = 0;
		bool stop;
		int ret;

		pthread_mutex_lock(&push->lock);
		while (!push->stop && !why) {
			if (p->hints && (n = take_prefetch(s, &pgoff, max))) {
				why = PROTO_F_PREFETCH;
			} else if (!p->hints && push->active &&
				   (n = push_claim(s, &pgoff, max))) {
				why = PROTO_F_PUSH;
			} else {
				pthread_cond_wait(p->hints ? &push->hint_cond
							   : &push->cond,
						  &push->lock);
			}
		}
		stop = push->stop;
		pthread_mutex_unlock(&push->lock);
		/* The owner may still be writing these pages (a fill gate); the
		 * serving thread fails the session if its mark stops rising. */
		while (!stop && !srv_filled(s, pgoff, n)) {
			nanosleep(&fill_tick, NULL);
			stop = __atomic_load_n(&push->stop, __ATOMIC_ACQUIRE);
		}
		if (stop)
			break;
		ret = push_frame(s, p->conn, buf, pgoff, n, why);
		if (ret < 0) {
			push_fail(push, p->conn, ret);
			break;
		}
	}
	free(buf);
	return NULL;
}

int push_start(struct gmem_server *s)
{
	struct srv_push *push = &s->push;
	int ret;

	for (unsigned int c = 1; c < s->nr_conns; c++)
		push->threads[c - 1] = (struct srv_pusher){
			.s = s, .conn = c, .hints = c > s->nr_bulk };
	ret = threads_start(push->threads, s->nr_conns - 1, pusher,
			    &push->nr_threads);
	if (ret < 0)
		push_stop(s);
	return ret;
}

void push_stop(struct gmem_server *s)
{
	struct srv_push *push = &s->push;

	if (!push->nr_threads)
		return;
	pthread_mutex_lock(&push->lock);
	__atomic_store_n(&push->stop, true, __ATOMIC_RELEASE); /* fill waits */
	pthread_cond_broadcast(&push->cond);
	pthread_cond_broadcast(&push->hint_cond);
	pthread_mutex_unlock(&push->lock);
	/* The session is over: a pusher blocked in a send to a destination
	 * that stopped reading returns once its connection is shut down. */
	for (unsigned int c = 1; c < s->nr_conns; c++)
		s->t.ops->shutdown(&s->t, c);
	for (unsigned int i = 0; i < push->nr_threads; i++)
		pthread_join(push->threads[i].thread, NULL);
	push->nr_threads = 0;
}

void push_reset(struct gmem_server *s)
{
	struct srv_push *push = &s->push;

	bitmap_clear_range(&s->need, 0, s->need.nbits);
	push->cursor = 0;
	for (unsigned int t = 0; t < push->nr_tiers; t++)
		push->tier_cursor[t] = 0;
	push->active = false;
	push->prefetch_head = push->prefetch_tail = 0;
	push->stop = false;
	push->error = 0;
	push->err[0] = 0;
}

int push_error(struct gmem_server *s)
{
	return __atomic_load_n(&s->push.error, __ATOMIC_ACQUIRE);
}
