// SPDX-License-Identifier: MIT
/*
 * incoming.c - the destination side of a migration: pre-copy pages into
 * the page cache, the device state, then resume the workload at once with
 * the remote page source attached, and wait for every page and its digest.
 */
#include <stdlib.h>
#include <string.h>

#include "migrate/migrate.h"
#include "remote-source/remote.h"
#include "probes.h"
#include "sort.h"

/* p50/p99 of the urgent-request service times. */
static void dest_latency(struct gmem_remote *rm, struct gmem_migrate_stats *st)
{
	const uint64_t max = 1U << 20;
	uint64_t *ns = malloc(max * sizeof(*ns));
	int64_t n = ns ? gmem_remote_latencies(rm, ns, max) : 0;

	if (n > 0) {
		qsort(ns, n, sizeof(*ns), cmp_u64);
		st->fault_p50_ns = ns[(n - 1) / 2];
		st->fault_p99_ns = ns[(uint64_t)(n - 1) * 99 / 100];
	}
	free(ns);
}

/* The workload's threads' waits on faults, all after the resume. */
static void dest_blocktime(struct gmem_region *r, struct gmem_migrate_stats *st)
{
	int64_t n = gmem_region_blocktime(r, NULL, 0);
	struct gmem_thread_blocktime *t = n > 0 ? malloc(n * sizeof(*t)) : NULL;

	if (t)
		n = gmem_region_blocktime(r, t, n);
	for (int64_t i = 0; t && i < n; i++)
		st->blocked_ns += t[i].ns;
	if (t && n > 0) {
		st->blocked_threads = n;
		st->blocked_max_ns = t[0].ns;
		st->blocked_max_tid = t[0].tid;
	}
	free(t);
}

/* Takes the switchover message apart and resumes the workload. */
static int dest_resume(struct gmem_remote *rm, const struct gmem_migrate_ops *ops,
		       void *ctx, struct gmem_migrate_stats *st)
{
	int len = gmem_remote_state(rm, NULL, 0);
	uint8_t *buf;
	int64_t state_len;
	int ret;

	if (len < 0)
		return len;
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	gmem_remote_state(rm, buf, len);
	state_len = mig_hdr_decode(buf, len, st);
	ret = state_len < 0 ? (int)state_len :
			      ops->resume(ctx, buf + sizeof(struct mig_hdr),
					  state_len);
	st->resume_ns = now_ns();
	GMEM_PROBE(resume, ret, state_len);
	free(buf);
	return ret;
}

static int dest_run(struct gmem_region *r, struct gmem_remote *rm,
		    const struct mig_params *m, const struct gmem_migrate_ops *ops,
		    void *ctx, struct gmem_migrate_stats *st,
		    struct mig_ticker *tick)
{
	struct gmem_fault_params fp = { .nr_threads = m->nr_threads,
					.fault_around = m->fault_around };
	struct gmem_source *src = NULL;
	int64_t n;
	int ret;

	mig_ticker_phase(tick, GMEM_PHASE_PRECOPY, 0, 0, r->nr_pages, 0, NULL);
	n = gmem_remote_precopy(rm, r, -1);
	if (n < 0)
		return n;
	ret = gmem_remote_source(rm, &src);
	if (ret < 0)
		return ret;
	ret = gmem_region_attach(r, src, &fp);
	if (ret == 0) {
		mig_ticker_phase(tick, GMEM_PHASE_SWITCHOVER, 0, 0, 0, 0, NULL);
		ret = dest_resume(rm, ops, ctx, st);
	}
	if (ret == 0) {
		mig_ticker_phase(tick, GMEM_PHASE_POSTCOPY, 0, 0, r->nr_pages,
				 0, r);
		ret = gmem_remote_wait(rm, -1);
		st->complete_ns = now_ns();
	}
	dest_blocktime(r, st);
	gmem_region_detach(r);
	gmem_source_destroy(src);
	return ret;
}

/* The progress ticker's view of the remote end's pauses. */
static void remote_pause(const void *rm, uint64_t *since_ns,
			 uint64_t *recoveries)
{
	*since_ns = rm_paused_since_ns(rm);
	*recoveries = rm_recoveries(rm);
}

int gmem_migrate_dest(struct gmem_region *r, const char *connect,
		      const struct gmem_migrate_params *p,
		      const struct gmem_migrate_ops *ops, void *ctx,
		      struct gmem_migrate_stats *st)
{
	struct gmem_remote_params rp = {};
	struct gmem_remote *rm = NULL;
	struct mig_ticker tick;
	struct mig_params m;
	int ret;

	if (!r || !connect || !ops || !ops->resume || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	ret = mig_params_check(p, &m);
	if (ret < 0)
		return ret;
	rp.nr_bulk = m.nr_bulk;
	st->nr_bulk = m.nr_bulk;
	rp.connect_ms = m.wait_ms;
	if (m.flags & GMEM_MIGRATE_RDMA)
		rp.flags |= GMEM_REMOTE_RDMA;
	rp.key = m.key;
	rp.key_len = m.key_len;
	rp.recover_ms = m.recover_ms;
	rp.expect_page_size = r->page_size;
	rp.expect_nr_pages = r->nr_pages;
	mig_ticker_start(&tick, ops, ctx, now_ns());
	mig_ticker_phase(&tick, GMEM_PHASE_SETUP, 0, 0, 0, 0, NULL);
	ret = gmem_remote_connect(connect, &rp, &rm);
	/* gmem.h: the destination gives up on a source silent for wait_ms. */
	if (ret == 0 && m.wait_ms > 0)
		rm_set_silence(rm, m.wait_ms);
	if (ret == 0)
		mig_ticker_watch_pause(&tick, remote_pause, rm, m.recover_ms);
	if (ret == 0 && (gmem_remote_page_size(rm) != r->page_size ||
			 gmem_remote_nr_pages(rm) != r->nr_pages))
		ret = -EINVAL;
	if (ret == 0)
		ret = dest_run(r, rm, &m, ops, ctx, st, &tick);
	if (ret == 0)
		mig_ticker_phase(&tick, GMEM_PHASE_COMPLETE, 0, r->nr_pages,
				 r->nr_pages, 0, NULL);
	mig_ticker_stop(&tick);
	if (ret < 0 && rm && ops->failed && gmem_remote_error(rm)[0])
		ops->failed(ctx, gmem_remote_error(rm));
	if (rm) {
		gmem_remote_stats(rm, &st->pages);
		dest_latency(rm, st);
	}
	gmem_remote_destroy(rm);
	return ret;
}
