// SPDX-License-Identifier: MIT
/*
 * fault.c - the userfaultfd reader threads. Each reads fault events in
 * batches, aligns them to the page size, sorts and de-duplicates them, and
 * hands each page to the attached source (missing/minor faults) or to the
 * dirty log (write-protect faults). No I/O is done here beyond the ioctls the
 * source's synchronous fill makes (umap's reader/filler split, kept simple).
 */
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>

#include "compat.h"
#include "internal.h"
#include "region/engine.h"
#include "probes.h"
#include "sort.h"
#include "syscall.h"

#define MSG_BATCH 64

struct fault_engine {
	int stop_fd; /* eventfd: readable once the threads must stop */
	unsigned int nr_threads;
	pthread_t threads[GMEM_MAX_THREADS];
	/* Each thread's staging buffer, made before the threads start so
	 * that a failure fails the attach instead of a thread, silently. */
	struct fault_thread {
		struct gmem_region *r;
		struct staging st;
	} t[GMEM_MAX_THREADS];
};

/* Turns a batch of messages into sorted, unique page indexes; write-protect
 * faults go straight to the dirty log. Returns the number of pages. */
static unsigned int fault_read_batch(struct gmem_region *r,
				     const struct uffd_msg *msg, unsigned int n,
				     uint64_t *pages)
{
	unsigned int nr = 0, out = 0;
	uint64_t now = now_ns();

	for (unsigned int i = 0; i < n; i++) {
		uint64_t addr, pgoff;

		if (msg[i].event != UFFD_EVENT_PAGEFAULT)
			continue;
		addr = msg[i].arg.pagefault.address;
		if (!region_pgoff(r, addr, &pgoff))
			continue;
		GMEM_PROBE(fault_read, addr, pgoff,
			   msg[i].arg.pagefault.feat.ptid,
			   msg[i].arg.pagefault.flags);
		if (msg[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
			if (r->wp_fault)
				r->wp_fault(r, pgoff);
			continue;
		}
		blocktime_fault(r, msg[i].arg.pagefault.feat.ptid, pgoff, now);
		pages[nr++] = pgoff;
	}
	qsort(pages, nr, sizeof(*pages), cmp_u64);
	for (unsigned int i = 0; i < nr; i++)
		if (!out || pages[out - 1] != pages[i])
			pages[out++] = pages[i];
	stat_add(&r->stats.faults, out);
	return out;
}

/* Resolves one faulting page with the fault-around run that holds it. */
static void fault_resolve(struct gmem_region *r, uint64_t pgoff,
			  struct staging *st)
{
	uint64_t fa = r->fault_around, start, t0 = now_ns();
	int64_t ret;

	if (bitmap_test(&r->present, pgoff)) {
		/* Installed since the fault was queued (-EEXIST case):
		 * the waiter may still sleep, so wake it. */
		stat_add(&r->stats.faults_present, 1);
		uffd_wake(r, pgoff << r->page_shift, r->page_size);
		blocktime_end(r, pgoff, 1);
		return;
	}
	if (!r->source) {
		bitmap_set(&r->pending, pgoff);
		return;
	}
	start = pgoff & ~(fa - 1);
	ret = source_resolve(r, pgoff, start,
			     fa < r->nr_pages - start ? fa : r->nr_pages - start,
			     st);
	if (ret < 0)
		stat_add(&r->stats.errors, 1);
	stat_add(&r->stats.resolve_ns, now_ns() - t0);
}

static void *fault_thread(void *arg)
{
	struct fault_thread *ft = arg;
	struct gmem_region *r = ft->r;
	struct uffd_msg msg[MSG_BATCH];
	uint64_t pages[MSG_BATCH];
	struct pollfd pfd[2] = {
		{ .fd = r->uffd, .events = POLLIN },
		{ .fd = r->engine->stop_fd, .events = POLLIN },
	};
	struct staging *st = &ft->st;

	run_near_node(r);
	for (;;) {
		ssize_t len;
		unsigned int n;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		/* POLLERR: the userfaultfd lost O_NONBLOCK (a flag of the
		 * description, which its other holders share) or is not
		 * set up; polling again would spin. Counted, not looped. */
		if (pfd[0].revents & (POLLERR | POLLNVAL))
			goto fail;
		if (!(pfd[0].revents & POLLIN))
			continue;
		len = read(r->uffd, msg, sizeof(msg));
		if (len < 0 && errno != EAGAIN && errno != EINTR)
			goto fail;
		if (len <= 0)
			continue; /* EAGAIN: another reader took the batch */
		n = fault_read_batch(r, msg, len / sizeof(msg[0]), pages);
		for (unsigned int i = 0; i < n; i++)
			fault_resolve(r, pages[i], st);
	}
	return NULL;
fail:
	stat_add(&r->stats.errors, 1);
	return NULL;
}

static void engine_stop(struct gmem_region *r)
{
	struct fault_engine *e = r->engine;
	uint64_t one = 1;

	if (!e)
		return;
	/* Adding 1 to a fresh eventfd cannot fail or block. */
	if (write(e->stop_fd, &one, sizeof(one)) < 0)
		return;
	for (unsigned int i = 0; i < e->nr_threads; i++)
		pthread_join(e->threads[i], NULL);
	for (unsigned int i = 0; i < GMEM_MAX_THREADS; i++)
		staging_free(&e->t[i].st);
	close(e->stop_fd);
	free(e);
	r->engine = NULL;
}

static int engine_start(struct gmem_region *r)
{
	unsigned int n = r->nr_threads ? r->nr_threads : 1;
	struct fault_engine *e = calloc(1, sizeof(*e));
	int ret;

	if (!e)
		return -ENOMEM;
	e->stop_fd = sys_ret(eventfd(0, EFD_CLOEXEC));
	if (e->stop_fd < 0) {
		ret = e->stop_fd;
		free(e);
		return ret;
	}
	r->engine = e;
	for (unsigned int i = 0; i < n; i++) {
		e->t[i].r = r;
		ret = staging_init(&e->t[i].st, r,
				   r->fault_around ? r->fault_around : 1);
		if (ret < 0) {
			engine_stop(r);
			return ret;
		}
	}
	for (; e->nr_threads < n; e->nr_threads++) {
		ret = -pthread_create(&e->threads[e->nr_threads], NULL,
				      fault_thread, &e->t[e->nr_threads]);
		if (ret < 0) {
			engine_stop(r);
			return ret;
		}
	}
	return 0;
}

/* Faults read while no source was attached: their threads still wait. */
static void resolve_pending(struct gmem_region *r)
{
	for (uint64_t p = bitmap_next_set(&r->pending, 0); p < r->nr_pages;
	     p = bitmap_next_set(&r->pending, p + 1)) {
		bitmap_clear(&r->pending, p);
		fault_resolve(r, p, NULL);
	}
}

int fault_engine_get(struct gmem_region *r, unsigned int user)
{
	engine_stop(r);
	r->engine_users |= user;
	if (r->source)
		resolve_pending(r);
	return engine_start(r);
}

void fault_engine_put(struct gmem_region *r, unsigned int user)
{
	engine_stop(r);
	r->engine_users &= ~user;
	if (user & ENGINE_USER_SOURCE)
		r->source = NULL;
	if (r->engine_users && engine_start(r) < 0)
		r->engine_users = 0;
}
