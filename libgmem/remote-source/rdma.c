// SPDX-License-Identifier: MIT
/*
 * rdma.c - the remote source's RDMA data path: a fault's pages are
 * claimed and read with one RDMA READ on the urgent queue pair; the
 * background push is a pipeline of large reads on its own queue pair; a
 * completion thread installs what landed. Fd-backed regions are read
 * straight into their page cache through the alias and resolved with
 * UFFDIO_CONTINUE; anonymous ones into registered staging slots, then
 * UFFDIO_COPY. The control stream (STATE, digests, DONE) stays on TCP.
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

struct rm_rdma {
	struct rdmat *rt;
	uint32_t run_pages;
	uint8_t *staging;     /* anonymous regions only */
	pthread_mutex_t lock; /* @urgent's busy flags */
	pthread_cond_t slot_free;
	struct rr_slot urgent[URGENT_SLOTS];
	struct rr_slot push[PUSH_SLOTS];
	uint64_t push_head;   /* push reads posted ... */
	uint64_t push_tail;   /* ... and installed */
	uint64_t push_cursor;
	pthread_t thread;
	bool running;
	bool stop;            /* atomic */
	bool dead;            /* under @lock: no more completions come */
	char name[96];
};

int rm_rdma_connect(struct gmem_remote *rm, const char *addr, int wait_ms)
{
	struct rm_rdma *rd = calloc(1, sizeof(*rd));
	char err[192];
	int ret;

	if (!rd)
		return rm_fail(rm, -ENOMEM, "no memory for RDMA");
	pthread_mutex_init(&rd->lock, NULL);
	pthread_cond_init(&rd->slot_free, NULL);
	rm->rdma = rd;
	ret = rdmat_connect(addr, rm->rkey, rm->raddr, wait_ms, &rd->rt, err,
			    sizeof(err));
	if (ret < 0)
		return rm_fail(rm, ret, "RDMA connect %s: %s", addr, err);
	snprintf(rd->name, sizeof(rd->name), "rdma %s", rdmat_device(rd->rt));
	return 0;
}

/* Where the bytes of @slot's run land. */
static uint8_t *landing(const struct gmem_remote *rm, const struct rr_slot *slot)
{
	const struct gmem_region *r = rm->r;

	return r->alias ? r->alias + (slot->pgoff << r->page_shift)
			: slot->stage;
}

static int post_read(struct gmem_remote *rm, enum rdmat_qp qp,
		     struct rr_slot *slot, uint64_t wr_id, bool signal)
{
	unsigned int shift = rm->r->page_shift;

	slot->t0_ns = now_ns();
	return rdmat_read(rm->rdma->rt, qp, landing(rm, slot),
			  slot->pgoff << shift, slot->nr << shift, wr_id,
			  signal);
}

static struct rr_slot *urgent_get(struct rm_rdma *rd)
{
	struct rr_slot *slot = NULL;

	pthread_mutex_lock(&rd->lock);
	while (!slot && !rd->dead) {
		for (unsigned int i = 0; i < URGENT_SLOTS && !slot; i++)
			if (!rd->urgent[i].busy)
				slot = &rd->urgent[i];
		if (!slot)
			pthread_cond_wait(&rd->slot_free, &rd->lock);
	}
	if (slot)
		slot->busy = true;
	pthread_mutex_unlock(&rd->lock);
	return slot;
}

static void urgent_put(struct rm_rdma *rd, struct rr_slot *slot)
{
	pthread_mutex_lock(&rd->lock);
	slot->busy = false;
	pthread_cond_signal(&rd->slot_free);
	pthread_mutex_unlock(&rd->lock);
}

int rm_rdma_request(struct gmem_remote *rm, uint64_t pgoff, uint64_t nr)
{
	struct rm_rdma *rd = rm->rdma;
	uint64_t p = pgoff, end = pgoff + nr, n;

	GMEM_PROBE(request_sent, pgoff, nr, GMEM_PROBE_REQ_RDMA);
	/* Pages the push claimed already are on their way. */
	while ((n = install_claim(rm->r, &p, end, rd->run_pages))) {
		struct rr_slot *slot = urgent_get(rd);
		int ret;

		if (!slot) {
			install_unclaim(rm->r, p, n);
			return rm->error ? rm->error : -ECONNRESET;
		}
		slot->pgoff = p;
		slot->nr = n;
		ret = post_read(rm, RDMAT_QP_URGENT, slot, slot - rd->urgent,
				true);
		if (ret < 0) {
			install_unclaim(rm->r, p, n);
			urgent_put(rd, slot);
			return rm_fail(rm, ret, "%s", rdmat_error(rd->rt));
		}
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
	int ret = res;

	if (ret == 0)
		ret = install_commit(r, slot->pgoff, slot->nr,
				     r->alias ? NULL : slot->stage);
	else
		install_unclaim(r, slot->pgoff, slot->nr);
	if (ret < 0)
		return rm_fail(rm, ret, "%s",
			       res < 0 ? rdmat_error(rm->rdma->rt)
				       : "RDMA install failed");
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
	struct rm_rdma *rd = rm->rdma;
	struct rdmat_done done[32];
	int n = rdmat_poll(rd->rt, RDMAT_QP_URGENT, done, ARRAY_SIZE(done));

	if (n < 0)
		return rm_fail(rm, n, "%s", rdmat_error(rd->rt));
	for (int i = 0; i < n; i++) {
		struct rr_slot *slot = &rd->urgent[done[i].wr_id];
		int ret = land(rm, slot, done[i].res, true);

		urgent_put(rd, slot);
		if (ret < 0)
			return ret;
	}
	return n;
}

/* A signalled push read completed: so did every read posted before it on
 * the same queue pair (RC completes in order). */
static int reap_push(struct gmem_remote *rm)
{
	struct rm_rdma *rd = rm->rdma;
	struct rdmat_done done[8];
	int n = rdmat_poll(rd->rt, RDMAT_QP_PUSH, done, ARRAY_SIZE(done));

	if (n < 0)
		return rm_fail(rm, n, "%s", rdmat_error(rd->rt));
	for (int i = 0; i < n; i++) {
		while (rd->push_tail <= done[i].wr_id) {
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
	struct rm_rdma *rd = rm->rdma;
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
	struct rm_rdma *rd = rm->rdma;
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
		ret = post_read(rm, RDMAT_QP_PUSH, s, rd->push_head,
				!next || rd->push_head % SIGNAL_EVERY ==
						 SIGNAL_EVERY - 1);
		if (ret < 0) {
			install_unclaim(rm->r, pgoff, n);
			if (next)
				install_unclaim(rm->r, next_pgoff, next);
			return rm_fail(rm, ret, "%s", rdmat_error(rd->rt));
		}
		rd->push_head++;
	}
	return 0;
}

static void *completion_thread(void *arg)
{
	struct gmem_remote *rm = arg;
	struct rm_rdma *rd = rm->rdma;
	bool push = !(rm->flags & GMEM_REMOTE_ON_DEMAND);
	uint64_t idle_since = now_ns();

	while (!__atomic_load_n(&rd->stop, __ATOMIC_ACQUIRE)) {
		enum rm_phase phase = rm_phase(rm);
		int u, p;

		if (phase == RM_FAILED || phase == RM_DONE)
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
		    rdmat_wait(rd->rt, WAIT_MS) < 0) {
			rm_fail(rm, -EIO, "%s", rdmat_error(rd->rt));
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

int rm_rdma_start(struct gmem_remote *rm)
{
	struct rm_rdma *rd = rm->rdma;
	struct gmem_region *r = rm->r;
	size_t stage_len = 0;
	int ret;

	rd->run_pages = RUN_BYTES >> r->page_shift ? RUN_BYTES >> r->page_shift
						   : 1;
	if (!r->alias) {
		size_t per = (size_t)rd->run_pages << r->page_shift;

		stage_len = (URGENT_SLOTS + PUSH_SLOTS) * per;
		rd->staging = aligned_alloc(r->page_size, stage_len);
		if (!rd->staging)
			return -ENOMEM;
		for (unsigned int i = 0; i < URGENT_SLOTS; i++)
			rd->urgent[i].stage = rd->staging + i * per;
		for (unsigned int i = 0; i < PUSH_SLOTS; i++)
			rd->push[i].stage =
				rd->staging + (URGENT_SLOTS + i) * per;
	}
	/* Fd-backed: the whole alias, so reads land in the page cache. */
	ret = r->alias ? rdmat_reg_local(rd->rt, r->alias, r->size)
		       : rdmat_reg_local(rd->rt, rd->staging, stage_len);
	if (ret < 0)
		return rm_fail(rm, ret, "%s", rdmat_error(rd->rt));
	rd->stop = false;
	rd->dead = false;
	ret = -pthread_create(&rd->thread, NULL, completion_thread, rm);
	rd->running = ret == 0;
	return ret;
}

void rm_rdma_stop(struct gmem_remote *rm)
{
	struct rm_rdma *rd = rm->rdma;

	if (!rd || !rd->running)
		return;
	__atomic_store_n(&rd->stop, true, __ATOMIC_RELEASE);
	pthread_join(rd->thread, NULL);
	rd->running = false;
}

void rm_rdma_free(struct gmem_remote *rm)
{
	struct rm_rdma *rd = rm->rdma;

	if (!rd)
		return;
	rm_rdma_stop(rm);
	rdmat_destroy(rd->rt);
	pthread_mutex_destroy(&rd->lock);
	pthread_cond_destroy(&rd->slot_free);
	free(rd->staging);
	free(rd);
	rm->rdma = NULL;
}

const char *gmem_remote_transport(const struct gmem_remote *rm)
{
	return rm->rdma ? rm->rdma->name : "tcp";
}

int gmem_rdma_devices(void)
{
	return rdmat_devices();
}
