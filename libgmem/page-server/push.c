// SPDX-License-Identifier: MIT
/*
 * push.c - the page server's background push (post-copy): one thread
 * per bulk connection claims the next run of needed pages in address order
 * and sends it in place from the region, the source being paused. One
 * thread checksumming and copying for every connection capped the push at
 * a fraction of what the link carries; urgent requests stay on the
 * caller's thread and control connection, so they never queue behind it.
 * One more thread sends the fault-around hints' pages on the fault-around
 * connection, the same way, so they queue behind neither.
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	push->active = true;
	pthread_cond_broadcast(&push->cond);
	pthread_mutex_unlock(&push->lock);
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
				   (n = srv_next_run(&s->need, &push->cursor,
						     max, true))) {
				why = PROTO_F_PUSH;
				pgoff = push->cursor;
				push->cursor += n;
			} else {
				pthread_cond_wait(p->hints ? &push->hint_cond
							   : &push->cond,
						  &push->lock);
			}
		}
		stop = push->stop;
		pthread_mutex_unlock(&push->lock);
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
	push->stop = true;
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
