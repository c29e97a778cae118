// SPDX-License-Identifier: MIT
/*
 * recover.c - post-copy recovery at the page server (QEMU's
 * postcopy-recover): after a broken link the serving thread stops the
 * push, drops every connection and waits on the listening socket for the
 * same destination to resume the session, keeping every page meanwhile.
 * The destination's side is recover.c.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "page-server/server.h"
#include "probes.h"

#define LFD_CHECK_NS 20000000ULL /* how often serving looks for a return */
#define RETRY_NS 10000000L

bool srv_destination_back(struct gmem_server *s)
{
	struct pollfd pfd = { .fd = s->lfd, .events = POLLIN };
	uint64_t now = now_ns();

	/* A destination whose link broke without this side seeing it (a
	 * reset that never arrived) reconnects while the old connections
	 * still look alive. */
	if (!s->recover_ms || s->lfd < 0 || now - s->last_lfd_ns < LFD_CHECK_NS)
		return false;
	s->last_lfd_ns = now;
	return poll(&pfd, 1, 0) == 1;
}

/* Accepts connection sets until one resumes the session; strangers and
 * new sessions are refused (srv_accept_set() tells them why) and the wait
 * goes on until @deadline. */
static int wait_destination(struct gmem_server *s, uint64_t deadline,
			    const char *why)
{
	for (;;) {
		uint64_t now = now_ns();
		int left_ms = s->recover_ms < 0 ? -1 :
			      now >= deadline ? 0 :
			      (int)((deadline - now + 999999) / 1000000);
		int ret;

		if (!left_ms)
			return srv_err(s, -ETIMEDOUT, "destination did not come "
				       "back within %d ms (%s)", s->recover_ms,
				       why);
		ret = srv_conns_reset(s);
		if (ret < 0)
			return srv_err(s, ret, "recovery: endpoint: %s",
				       strerror(-ret));
		s->error = 0;
		ret = srv_accept_set(s, left_ms, true);
		if (ret == 0)
			return 0;
		if (ret != -ETIMEDOUT)
			nanosleep(&(struct timespec){ .tv_nsec = RETRY_NS }, NULL);
	}
}

int srv_recover(struct gmem_server *s)
{
	uint64_t since = now_ns();
	char why[sizeof(s->err)];
	int ret;

	memcpy(why, s->err, sizeof(why));
	__atomic_store_n(&s->paused_since_ns, since, __ATOMIC_RELEASE);
	GMEM_PROBE(recover_begin, GMEM_PROBE_SOURCE, since);
	push_stop(s);
	/* The destination says again what it still needs (NEED, REQ). */
	push_reset(s);
	s->work_head = s->work_tail;
	ret = wait_destination(s, since + (uint64_t)s->recover_ms * 1000000ULL,
			       why);
	stat_add(&s->stats.paused_ns, now_ns() - since);
	GMEM_PROBE(recover_end, GMEM_PROBE_SOURCE, since, ret);
	__atomic_store_n(&s->paused_since_ns, 0, __ATOMIC_RELEASE);
	if (ret < 0)
		return ret;
	s->error = 0;
	s->link_lost = false;
	s->last_rx_ns = now_ns();
	stat_add(&s->stats.recoveries, 1);
	ret = push_start(s);
	return ret < 0 ? srv_err(s, ret, "push: %s", strerror(-ret)) : 0;
}

uint64_t srv_paused_since_ns(const struct gmem_server *s)
{
	return __atomic_load_n(&s->paused_since_ns, __ATOMIC_ACQUIRE);
}

uint64_t srv_recoveries(const struct gmem_server *s)
{
	return __atomic_load_n(&s->stats.recoveries, __ATOMIC_RELAXED);
}
