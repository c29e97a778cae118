// SPDX-License-Identifier: MIT
/*
 * reads.c - the remote source's data path over a transport with one-sided
 * reads (TRANSPORT_CAP_READ: RDMA): a fault's pages are claimed and read
 * with one read on the urgent lane; the background push is a pipeline of
 * large reads on its own lane; a completion thread installs what landed.
 * Fd-backed regions are read straight into their page cache through the
 * alias and resolved with UFFDIO_CONTINUE; anonymous ones into registered
 * staging slots, then UFFDIO_COPY. The control stream (STATE, digests,
 * DONE) stays on the transport's streams. A broken lane pauses the session
 * like a broken stream: recover.c halts the lanes (rm_reads_pause()),
 * opens new ones with the connection set, closes the old ones only then
 * (never on a link still down) and starts the reads anew.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote-source/remote.h"
#include "region/engine.h"
#include "probes.h"
#include "transport/rdma.h"

#define URGENT_SLOTS 64U
#define PUSH_SLOTS 16U
#define RUN_BYTES (256U << 10) /* largest read (4 KiB pages: 64 pages) */
#define SIGNAL_EVERY 4U        /* push reads per signalled completion */
#define SPIN_NS 50000ULL       /* poll this long before sleeping */
#define WAIT_MS 1

/* One read in flight: the page run it fills and where it lands. */
struct rr_slot {
	uint64_t pgoff;
	uint64_t t0_ns;
	uint32_t nr;
	bool busy;
	uint8_t *stage; /* anonymous regions: this slot's staging bytes */
};

struct rm_reads {
	struct transport t;   /* the read lanes (ops NULL: closed) */
	/* Lanes halted by a pause, closed once new ones are open: closing
	 * talks to the source, which a link still down must not carry. */
	struct transport old;
	uint32_t run_pages;
	uint8_t *staging;     /* anonymous regions only */
	uint8_t *mem;         /* where reads land: alias or staging */
	size_t mem_len;
	/* @urgent's busy flags, @dead; urgent reads are posted under it, so
	 * none is posted on lanes that rm_reads_pause() closes. */
	pthread_mutex_t lock;
	pthread_cond_t slot_free;
	struct rr_slot urgent[URGENT_SLOTS];
	struct rr_slot push[PUSH_SLOTS];
	uint64_t push_head;   /* push reads posted ... */
	uint64_t push_tail;   /* ... and installed */
	uint64_t push_cursor;
	pthread_t thread;
	bool running;
	bool stop;            /* atomic */
	bool dead;            /* under @lock: no read may be posted */
	char name[96];
};

static void lanes_close(struct transport *t)
{
	if (t->ops)
		t->ops->close_reads(t);
	t->ops = NULL;
}

static const char *lanes_error(const struct gmem_remote *rm)
{
	const struct rm_reads *rd = rm->reads;

	return rd->t.ops ? rd->t.ops->read_error(&rd->t) : "read lanes closed";
}

/* The lanes failed: like a broken stream, that pauses the session where
 * recovery is on, else fails it. Returns @ret. */
static int lanes_broke(struct gmem_remote *rm, int ret)
{
	if (!rm_pause(rm, "read lanes: %s", lanes_error(rm)))
		rm_fail(rm, ret, "%s", lanes_error(rm));
	return ret;
}

int rm_reads_open(struct gmem_remote *rm, const char *addr, char *why,
		  size_t why_len)
{
	struct rm_reads *rd = rm->reads;
	int ret;

	if (!rd) {
		rd = calloc(1, sizeof(*rd));
		if (!rd) {
			snprintf(why, why_len, "no memory for the read lanes");
			return -ENOMEM;
		}
		pthread_mutex_init(&rd->lock, NULL);
		pthread_cond_init(&rd->slot_free, NULL);
		rm->reads = rd;
	}
	lanes_close(&rd->t);
	ret = rm->ops->open_reads(&rd->t, addr, &rm->win, rm->wait_ms);
	/* Opened again after a pause: the same memory as before. */
	if (ret == 0 && rd->mem)
		ret = rd->t.ops->read_into(&rd->t, rd->mem, rd->mem_len);
	if (ret < 0) {
		snprintf(why, why_len, "%s connect %s: %s",
			 rm->ops->name, addr, lanes_error(rm));
		lanes_close(&rd->t);
		return ret;
	}
	lanes_close(&rd->old);
	snprintf(rd->name, sizeof(rd->name), "%s %s", rm->ops->name,
		 rd->t.ops->read_device(&rd->t));
	pthread_mutex_lock(&rd->lock);
	rd->dead = false;
	pthread_mutex_unlock(&rd->lock);
	return 0;
}

/* Where the bytes of @slot's run land. */
static uint8_t *landing(const struct gmem_remote *rm, const struct rr_slot *slot)
{
	const struct gmem_region *r = rm->r;

	return r->alias ? r->alias + (slot->pgoff << r->page_shift)
			: slot->stage;
}

static int post_read(struct gmem_remote *rm, unsigned int lane,
		     struct rr_slot *slot, uint64_t cookie, bool signal)
{
	struct rm_reads *rd = rm->reads;
	unsigned int shift = rm->r->page_shift;

	slot->t0_ns = now_ns();
	return rd->t.ops->read(&rd->t, lane, landing(rm, slot),
			       slot->pgoff << shift, slot->nr << shift, cookie,
			       signal);
}

/* Reads the claimed run [@p, @p + @n) on the urgent lane, in the next free
 * slot. Returns 0, 1 when the lanes are down (the claim given back under
 * @lock: a recovery reads the run again), or -errno. */
static int urgent_read(struct gmem_remote *rm, uint64_t p, uint64_t n)
{
	struct rm_reads *rd = rm->reads;
	struct rr_slot *slot = NULL;
	int ret = 1;

	pthread_mutex_lock(&rd->lock);
	while (!slot && !rd->dead) {
		for (unsigned int i = 0; i < URGENT_SLOTS && !slot; i++)
			if (!rd->urgent[i].busy)
				slot = &rd->urgent[i];
		if (!slot)
			pthread_cond_wait(&rd->slot_free, &rd->lock);
	}
	if (slot) {
		slot->busy = true;
		slot->pgoff = p;
		slot->nr = n;
		ret = post_read(rm, TRANSPORT_LANE_URGENT, slot,
				slot - rd->urgent, true);
		if (ret < 0)
			slot->busy = false;
	}
	if (ret)
		install_unclaim(rm->r, p, n);
	pthread_mutex_unlock(&rd->lock);
	if (ret < 0)
		return lanes_broke(rm, ret);
	return ret;
}

static void urgent_put(struct rm_reads *rd, struct rr_slot *slot)
{
	pthread_mutex_lock(&rd->lock);
	slot->busy = false;
	pthread_cond_signal(&rd->slot_free);
	pthread_mutex_unlock(&rd->lock);
}

int rm_reads_request(struct gmem_remote *rm, uint64_t pgoff, uint64_t nr)
{
	struct rm_reads *rd = rm->reads;
	uint64_t p = pgoff, end = pgoff + nr, n;

	GMEM_PROBE(request_sent, pgoff, nr, GMEM_PROBE_REQ_RDMA);
	/* Pages the push claimed already are on their way. */
	while ((n = install_claim(rm->r, &p, end, rd->run_pages))) {
		int ret = urgent_read(rm, p, n);

		/* Lanes down: paused, the recovery reads what is still
		 * requested; else the session ended. */
		if (ret == 1)
			return rm_phase(rm) == RM_PAUSED ? 0
			       : rm->error		  ? rm->error
							  : -ECONNRESET;
		if (ret < 0)
			return rm_phase(rm) == RM_PAUSED ? 0 : ret;
		stat_add(&rm->stats.requests, 1);
		p += n;
	}
	return 0;
}

/* A run landed: installs it (nothing of a failed read is installed). */
static int land(struct gmem_remote *rm, struct rr_slot *slot, int res,
		bool urgent)
{
	struct gmem_region *r = rm->r;
	int ret;

	if (res < 0) {
		install_unclaim(r, slot->pgoff, slot->nr);
		return lanes_broke(rm, res);
	}
	ret = install_commit(r, slot->pgoff, slot->nr,
			     r->alias ? NULL : slot->stage);
	if (ret < 0)
		return rm_fail(rm, ret, "read install failed: %s",
			       strerror(-ret));
	__atomic_fetch_add(&rm->installed, slot->nr, __ATOMIC_RELEASE);
	stat_add(urgent ? &rm->stats.urgent_pages : &rm->stats.pushed_pages,
		 slot->nr);
	stat_add(&rm->stats.bytes, (uint64_t)slot->nr << r->page_shift);
	if (urgent)
		rm_add_sample(rm, now_ns() - slot->t0_ns);
	return 0;
}

static int reap_urgent(struct gmem_remote *rm)
{
	struct rm_reads *rd = rm->reads;
	struct transport_read_done done[32];
	int n = rd->t.ops->read_poll(&rd->t, TRANSPORT_LANE_URGENT, done,
				     ARRAY_SIZE(done));

	if (n < 0)
		return lanes_broke(rm, n);
	for (int i = 0; i < n; i++) {
		struct rr_slot *slot = &rd->urgent[done[i].cookie];
		int ret = land(rm, slot, done[i].res, true);

		urgent_put(rd, slot);
		if (ret < 0)
			return ret;
	}
	return n;
}

/* A signalled push read completed: so did every read posted before it on
 * the same lane (they complete in order). */
static int reap_push(struct gmem_remote *rm)
{
	struct rm_reads *rd = rm->reads;
	struct transport_read_done done[8];
	int n = rd->t.ops->read_poll(&rd->t, TRANSPORT_LANE_PUSH, done,
				     ARRAY_SIZE(done));

	if (n < 0)
		return lanes_broke(rm, n);
	for (int i = 0; i < n; i++) {
		while (rd->push_tail <= done[i].cookie) {
			struct rr_slot *s = &rd->push[rd->push_tail % PUSH_SLOTS];
			int ret = land(rm, s, done[i].res, false);

			rd->push_tail++;
			if (ret < 0)
				return ret;
		}
	}
	return n;
}

/* The next run the push must read: neither valid (pre-copy, installed
 * locally) nor claimed; claims it. Returns its length, 0 when none. */
static uint64_t push_claim(struct gmem_remote *rm, uint64_t *pgoff)
{
	struct rm_reads *rd = rm->reads;
	uint64_t nr_pages = rm->geom.nr_pages, p = rd->push_cursor, e, n = 0;

	while (!n && p < nr_pages) {
		while (p < nr_pages && (bitmap_test(&rm->r->claimed, p) ||
					bitmap_test(&rm->valid, p)))
			p++;
		for (e = p; e < nr_pages && e - p < rd->run_pages &&
			    !bitmap_test(&rm->valid, e) &&
			    !bitmap_test(&rm->r->claimed, e); e++)
			;
		n = p < nr_pages ? install_claim(rm->r, &p, e, e - p) : 0;
		if (!n)
			p = e;
	}
	*pgoff = p;
	rd->push_cursor = p + n;
	return n;
}

/* Keeps PUSH_SLOTS large reads in flight. Signals every SIGNAL_EVERY-th
 * read and the last one of each call, known by claiming the next run
 * before posting: every read is then followed by a signalled one, so none
 * stays unreaped when the push runs out of pages short of the region's end
 * (its tail valid or claimed by faults). */
static int push_fill(struct gmem_remote *rm)
{
	struct rm_reads *rd = rm->reads;
	uint64_t pgoff, next_pgoff = 0, n, next = 0;

	n = rd->push_head - rd->push_tail < PUSH_SLOTS ? push_claim(rm, &pgoff)
						       : 0;
	for (; n; n = next, pgoff = next_pgoff) {
		struct rr_slot *s = &rd->push[rd->push_head % PUSH_SLOTS];
		int ret;

		next = rd->push_head + 1 - rd->push_tail < PUSH_SLOTS
			       ? push_claim(rm, &next_pgoff)
			       : 0;
		s->pgoff = pgoff;
		s->nr = n;
		ret = post_read(rm, TRANSPORT_LANE_PUSH, s, rd->push_head,
				!next || rd->push_head % SIGNAL_EVERY ==
						 SIGNAL_EVERY - 1);
		if (ret < 0) {
			install_unclaim(rm->r, pgoff, n);
			if (next)
				install_unclaim(rm->r, next_pgoff, next);
			return lanes_broke(rm, ret);
		}
		rd->push_head++;
	}
	return 0;
}

static void *completion_thread(void *arg)
{
	struct gmem_remote *rm = arg;
	struct rm_reads *rd = rm->reads;
	bool push = !(rm->flags & GMEM_REMOTE_ON_DEMAND);
	uint64_t idle_since = now_ns();

	while (!__atomic_load_n(&rd->stop, __ATOMIC_ACQUIRE)) {
		enum rm_phase phase = rm_phase(rm);
		int u, p;

		/* Paused: the recovery takes the lanes over. */
		if (phase == RM_FAILED || phase == RM_DONE ||
		    phase == RM_PAUSED)
			break;
		u = reap_urgent(rm);
		p = reap_push(rm);
		if (u < 0 || p < 0 || (push && push_fill(rm) < 0))
			break;
		if (u || p) {
			idle_since = now_ns();
			continue;
		}
		/* Spin briefly (a fault's read takes microseconds on real
		 * hardware), then sleep on the completion channel. */
		if (now_ns() - idle_since > SPIN_NS &&
		    rd->t.ops->read_wait(&rd->t, WAIT_MS) < 0) {
			lanes_broke(rm, -EIO);
			break;
		}
	}
	/* Fault handlers waiting for a slot must not wait for ever. */
	pthread_mutex_lock(&rd->lock);
	rd->dead = true;
	pthread_cond_broadcast(&rd->slot_free);
	pthread_mutex_unlock(&rd->lock);
	return NULL;
}

/* Where reads land, registered once: fd-backed regions the whole alias,
 * so that reads land in the page cache; anonymous ones staging slots. */
static int landing_setup(struct gmem_remote *rm)
{
	struct rm_reads *rd = rm->reads;
	struct gmem_region *r = rm->r;
	size_t per;

	rd->run_pages = RUN_BYTES >> r->page_shift ? RUN_BYTES >> r->page_shift
						   : 1;
	per = (size_t)rd->run_pages << r->page_shift;
	if (r->alias) {
		rd->mem = r->alias;
		rd->mem_len = r->size;
	} else {
		rd->mem_len = (URGENT_SLOTS + PUSH_SLOTS) * per;
		rd->staging = aligned_alloc(r->page_size, rd->mem_len);
		if (!rd->staging)
			return -ENOMEM;
		for (unsigned int i = 0; i < URGENT_SLOTS; i++)
			rd->urgent[i].stage = rd->staging + i * per;
		for (unsigned int i = 0; i < PUSH_SLOTS; i++)
			rd->push[i].stage =
				rd->staging + (URGENT_SLOTS + i) * per;
		rd->mem = rd->staging;
	}
	return rd->t.ops->read_into(&rd->t, rd->mem, rd->mem_len);
}

int rm_reads_start(struct gmem_remote *rm)
{
	struct rm_reads *rd = rm->reads;
	int ret;

	if (!rd->mem) {
		ret = landing_setup(rm);
		if (ret < 0)
			return rm_fail(rm, ret, "%s", lanes_error(rm));
	}
	rd->stop = false;
	ret = -pthread_create(&rd->thread, NULL, completion_thread, rm);
	rd->running = ret == 0;
	return ret;
}

void rm_reads_stop(struct gmem_remote *rm)
{
	struct rm_reads *rd = rm->reads;

	if (!rd || !rd->running)
		return;
	__atomic_store_n(&rd->stop, true, __ATOMIC_RELEASE);
	pthread_join(rd->thread, NULL);
	rd->running = false;
}

void rm_reads_pause(struct gmem_remote *rm)
{
	struct rm_reads *rd = rm->reads;

	pthread_mutex_lock(&rd->lock);
	rd->dead = true;
	pthread_cond_broadcast(&rd->slot_free);
	pthread_mutex_unlock(&rd->lock);
	rm_reads_stop(rm);
	/* Once the lanes are halted no read lands any more: the runs still
	 * in flight give their claim back, to be read again. */
	if (rd->t.ops) {
		rd->t.ops->halt_reads(&rd->t);
		lanes_close(&rd->old);
		rd->old = rd->t;
		rd->t.ops = NULL;
	}
	for (unsigned int i = 0; i < URGENT_SLOTS; i++) {
		struct rr_slot *slot = &rd->urgent[i];

		if (slot->busy)
			install_unclaim(rm->r, slot->pgoff, slot->nr);
		slot->busy = false;
	}
	for (; rd->push_tail < rd->push_head; rd->push_tail++) {
		struct rr_slot *slot = &rd->push[rd->push_tail % PUSH_SLOTS];

		install_unclaim(rm->r, slot->pgoff, slot->nr);
	}
	rd->push_cursor = 0;
}

void rm_reads_free(struct gmem_remote *rm)
{
	struct rm_reads *rd = rm->reads;

	if (!rd)
		return;
	rm_reads_stop(rm);
	lanes_close(&rd->t);
	lanes_close(&rd->old);
	pthread_mutex_destroy(&rd->lock);
	pthread_cond_destroy(&rd->slot_free);
	free(rd->staging);
	free(rd);
	rm->reads = NULL;
}

const char *gmem_remote_transport(const struct gmem_remote *rm)
{
	return rm->reads ? rm->reads->name : rm->ops->name;
}

int gmem_rdma_devices(void)
{
	return rdmat_devices();
}
