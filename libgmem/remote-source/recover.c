// SPDX-License-Identifier: MIT
/*
 * recover.c - post-copy recovery at the destination (QEMU's postcopy-recover):
 * after a broken link the receive thread takes every endpoint over,
 * reconnects with backoff to the page server, resumes the session there and
 * asks again for what is still missing, the same over streams and over
 * one-sided reads (whose lanes it closes and opens again). Deciding to pause is remote.c's;
 * the server's side of it is server-recover.c.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "remote-source/remote.h"
#include "probes.h"

#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS 1000

/* Opens a whole connection set that resumes the session, on fresh
 * endpoints (frames half-received on the old ones are dropped with them). */
static int reconnect(struct gmem_remote *rm, char *why, size_t why_len)
{
	char addr[sizeof(rm->addr)];
	int ret;

	pthread_mutex_lock(&rm->lock);
	memcpy(addr, rm->addr, sizeof(addr));
	pthread_mutex_unlock(&rm->lock);
	rm_endpoints_fini(rm);
	ret = rm_endpoints_init(rm);
	if (ret < 0) {
		snprintf(why, why_len, "endpoint: %s", strerror(-ret));
		return ret;
	}
	for (unsigned int i = 0; i < rm->nr_conns && ret == 0; i++)
		ret = rm_open_conn(rm, addr, i, true, why, why_len);
	for (unsigned int i = 0; i < rm->nr_conns && ret == 0; i++)
		ret = wire_rx_start(&rm->t[i], &rm->rx[i]);
	/* The server accepts the read lanes after the connection set. */
	if (ret == 0 && rm->reads)
		ret = rm_reads_open(rm, addr, why, why_len);
	return ret;
}

/* The server refused this session, or we failed it: retrying is useless. */
static bool refused(int ret)
{
	return ret == -EPROTO || ret == -EACCES || ret == -ENOMEM;
}

/* Sleeps @ms in short steps; false when the session is being torn down. */
static bool backoff(struct gmem_remote *rm, int ms)
{
	for (; ms > 0; ms -= 10) {
		struct timespec ts = { .tv_nsec = (ms < 10 ? ms : 10) * 1000000L };

		if (__atomic_load_n(&rm->stop, __ATOMIC_ACQUIRE))
			return false;
		nanosleep(&ts, NULL);
	}
	return !__atomic_load_n(&rm->stop, __ATOMIC_ACQUIRE);
}

/* Tries until a connection set is up or the recovery time is over. */
static int reconnect_loop(struct gmem_remote *rm, uint64_t since)
{
	uint64_t deadline = since + (uint64_t)rm->recover_ms * 1000000ULL;
	int delay_ms = BACKOFF_FIRST_MS;
	char why[224] = "";

	for (;;) {
		int ret = reconnect(rm, why, sizeof(why));

		if (ret == 0)
			return 0;
		if (refused(ret))
			return rm_fail(rm, ret, "recovery: %s", why);
		if (rm->recover_ms > 0 &&
		    now_ns() + delay_ms * 1000000ULL > deadline)
			return rm_fail(rm, -ETIMEDOUT, "source did not come back "
				       "within %d ms (%s; last try: %s)",
				       rm->recover_ms, rm->pause_why, why);
		if (!backoff(rm, delay_ms))
			return -ECANCELED;
		delay_ms = delay_ms * 2 < BACKOFF_MAX_MS ? delay_ms * 2
							 : BACKOFF_MAX_MS;
	}
}

/* Asks again, on the new control connection, for every page a faulting
 * thread still waits for: requested and not present. */
static int request_again(struct gmem_remote *rm)
{
	uint64_t nr_pages = rm->geom.nr_pages, p = 0;
	int ret = 0;

	while (ret == 0 && (p = bitmap_next_set(&rm->requested, p)) < nr_pages) {
		uint32_t n = 0;

		while (p + n < nr_pages && n < PROTO_MAX_REQ_PAGES &&
		       bitmap_test(&rm->requested, p + n) &&
		       !bitmap_test(&rm->r->present, p + n))
			n++;
		if (n)
			ret = rm_fetch(rm, p, n, false);
		p += n ? n : 1;
	}
	return ret;
}

/* Back on new connections: what the server must send again. Pages it
 * sends twice are dropped by the install claim. */
static int resume(struct gmem_remote *rm, enum rm_phase phase)
{
	int ret;

	if (phase == RM_VERIFYING) {
		/* DIGEST frames lost with the old link: compare all again. */
		rm->digests_checked = 0;
		__atomic_store_n(&rm->stats.mismatches, 0, __ATOMIC_RELAXED);
		return rm_send_digest_requests(rm);
	}
	/* Reads: the push starts again from the first page, here. */
	ret = rm->flags & GMEM_REMOTE_ON_DEMAND || rm->reads ? 0
							     : rm_send_need(rm);
	if (ret == 0)
		ret = request_again(rm);
	if (ret < 0)
		return rm_fail(rm, ret, "recovery: %s", strerror(-ret));
	return 0;
}

int rm_recover(struct gmem_remote *rm)
{
	uint64_t since = __atomic_load_n(&rm->paused_since_ns, __ATOMIC_ACQUIRE);
	enum rm_phase phase;
	int ret;

	GMEM_PROBE(recover_begin, GMEM_PROBE_DEST, since);
	/* Wake whoever still blocks on an old endpoint: bulk threads leave on
	 * PAUSED, a sender inside send_now() fails. From the lock's release
	 * on, no sender touches the control endpoint (they see PAUSED). */
	for (unsigned int i = 0; i < rm->nr_conns; i++)
		rm->t[i].ops->shutdown(&rm->t[i], 0);
	rm_bulk_join(rm);
	if (rm->reads)
		rm_reads_pause(rm);
	pthread_mutex_lock(&rm->ctl_lock);
	pthread_mutex_unlock(&rm->ctl_lock);
	ret = reconnect_loop(rm, since);
	stat_add(&rm->stats.paused_ns, now_ns() - since);
	GMEM_PROBE(recover_end, GMEM_PROBE_DEST, since, ret);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&rm->ctl_lock);
	/* Answers to the old requests died with the link: none to time. */
	memset(rm->reqs, 0, sizeof(rm->reqs));
	pthread_mutex_unlock(&rm->ctl_lock);
	stat_add(&rm->stats.recoveries, 1);
	pthread_mutex_lock(&rm->lock);
	phase = rm->resume_phase;
	__atomic_store_n(&rm->paused_since_ns, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&rm->lock);
	/* Senders use the new control endpoint from here on; whatever they
	 * held back while paused is in @requested, which is read after. */
	rm_set_phase(rm, phase);
	ret = rm_bulk_start(rm);
	if (ret == 0 && rm->reads)
		ret = rm_reads_start(rm);
	if (ret < 0)
		return rm_fail(rm, ret, "recovery: receive threads: %s",
			       strerror(-ret));
	return resume(rm, phase);
}

uint64_t rm_paused_since_ns(const struct gmem_remote *rm)
{
	return __atomic_load_n(&rm->paused_since_ns, __ATOMIC_ACQUIRE);
}

uint64_t rm_recoveries(const struct gmem_remote *rm)
{
	return __atomic_load_n(&rm->stats.recoveries, __ATOMIC_RELAXED);
}
