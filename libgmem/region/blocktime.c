// SPDX-License-Identifier: MIT
/*
 * blocktime.c - how long each thread of the workload waited on its faults
 * (QEMU's postcopy-blocktime). With UFFD_FEATURE_THREAD_ID every fault
 * message names the faulting thread; a thread waits on one page at a time,
 * from the handler's read of its message until the install (or the wake of
 * a page found present) that covers the page. Each thread has one slot:
 * the page it waits on, since when, and its sums.
 */
#include <stdlib.h>

#include "compat.h"
#include "internal.h"
#include "probes.h"
#include "region/engine.h"

struct blocktime_thread {
	struct gmem_thread_blocktime st;
	bool waiting;
	uint64_t pgoff, since_ns;
};

struct blocktime {
	pthread_mutex_t lock;     /* everything below but @waiting */
	unsigned int waiting;     /* threads waiting now (atomic): installs
				   * skip the lock while it is 0 */
	unsigned int nr, cap;
	struct blocktime_thread *t;
};

int blocktime_init(struct gmem_region *r)
{
	struct blocktime *bt;

	if (r->blocktime || !(r->uffd_features & UFFD_FEATURE_THREAD_ID))
		return 0;
	bt = calloc(1, sizeof(*bt));
	if (!bt)
		return -ENOMEM;
	pthread_mutex_init(&bt->lock, NULL);
	/* Readers (gmem_region_blocktime()) take no region lock. */
	__atomic_store_n(&r->blocktime, bt, __ATOMIC_RELEASE);
	return 0;
}

void blocktime_free(struct gmem_region *r)
{
	struct blocktime *bt = r->blocktime;

	if (!bt)
		return;
	pthread_mutex_destroy(&bt->lock);
	free(bt->t);
	free(bt);
	r->blocktime = NULL;
}

/* The slot of @tid, added if new; NULL when out of memory (untimed). */
static struct blocktime_thread *slot(struct blocktime *bt, uint32_t tid)
{
	struct blocktime_thread *t;

	for (unsigned int i = 0; i < bt->nr; i++)
		if (bt->t[i].st.tid == tid)
			return &bt->t[i];
	if (bt->nr == bt->cap) {
		unsigned int cap = bt->cap ? bt->cap * 2 : 16;

		t = realloc(bt->t, cap * sizeof(*t));
		if (!t)
			return NULL;
		bt->t = t;
		bt->cap = cap;
	}
	t = &bt->t[bt->nr++];
	*t = (struct blocktime_thread){ .st.tid = tid };
	return t;
}

/* Set once, under r->lock, which neither installers nor readers take. */
static struct blocktime *bt_of(const struct gmem_region *r)
{
	return __atomic_load_n(&r->blocktime, __ATOMIC_ACQUIRE);
}

void blocktime_fault(struct gmem_region *r, uint32_t tid, uint64_t pgoff,
		     uint64_t now)
{
	struct blocktime *bt = bt_of(r);
	struct blocktime_thread *t;

	if (!bt || !tid)
		return;
	pthread_mutex_lock(&bt->lock);
	t = slot(bt, tid);
	if (t && !(t->waiting && t->pgoff == pgoff)) {
		/* A wait on another page ended unseen (the thread left on a
		 * signal): dropped, its end is unknown. The same page again
		 * (the thread faulted twice) keeps its first read. */
		if (!t->waiting)
			__atomic_fetch_add(&bt->waiting, 1, __ATOMIC_SEQ_CST);
		t->waiting = true;
		t->pgoff = pgoff;
		t->since_ns = now;
	}
	pthread_mutex_unlock(&bt->lock);
}

void blocktime_end(struct gmem_region *r, uint64_t pgoff, uint64_t nr)
{
	struct blocktime *bt = bt_of(r);
	uint64_t now;

	if (!bt)
		return;
	/* Pairs with the increment above: either the handler sees the page
	 * present after counting its thread, or this sees the count. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&bt->waiting, __ATOMIC_RELAXED))
		return;
	now = now_ns();
	pthread_mutex_lock(&bt->lock);
	for (unsigned int i = 0; i < bt->nr; i++) {
		struct blocktime_thread *t = &bt->t[i];
		uint64_t ns;

		if (!t->waiting || t->pgoff < pgoff || t->pgoff - pgoff >= nr)
			continue;
		ns = now - t->since_ns;
		t->st.ns += ns;
		t->st.faults++;
		if (ns > t->st.max_ns)
			t->st.max_ns = ns;
		t->waiting = false;
		__atomic_fetch_sub(&bt->waiting, 1, __ATOMIC_RELAXED);
		GMEM_PROBE(fault_wake, t->st.tid, t->pgoff, ns);
	}
	pthread_mutex_unlock(&bt->lock);
}

static int cmp_ns_desc(const void *a, const void *b)
{
	const struct gmem_thread_blocktime *x = a, *y = b;

	return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

int64_t gmem_region_blocktime(const struct gmem_region *r,
			      struct gmem_thread_blocktime *out, uint64_t max)
{
	struct blocktime *bt = r ? bt_of(r) : NULL;
	struct gmem_thread_blocktime *all;
	int64_t n = 0;

	if (!r || (max && !out))
		return -EINVAL;
	if (!bt)
		return r->uffd_features & UFFD_FEATURE_THREAD_ID ? 0
								 : -EOPNOTSUPP;
	pthread_mutex_lock(&bt->lock);
	all = malloc((bt->nr ? bt->nr : 1) * sizeof(*all));
	for (unsigned int i = 0; all && i < bt->nr; i++)
		if (bt->t[i].st.faults)
			all[n++] = bt->t[i].st;
	pthread_mutex_unlock(&bt->lock);
	if (!all)
		return -ENOMEM;
	qsort(all, n, sizeof(*all), cmp_ns_desc);
	for (int64_t i = 0; i < n && (uint64_t)i < max; i++)
		out[i] = all[i];
	free(all);
	return n;
}
