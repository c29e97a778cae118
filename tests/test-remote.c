// SPDX-License-Identifier: MIT
/*
 * test-remote.c - post-copy paging between two processes on loopback: a page
 * server in the test process, a destination in a child. Random access from 8
 * threads, sequential scans and an idle destination (background push only)
 * all end with equal per-page digests and plausible urgent/pushed counts; a
 * corrupted payload, a garbage frame and a server that vanishes mid-stream
 * are rejected with the region intact (a byte-mangling proxy in between).
 * With a pre-shared key, a peer holding another key or none is refused
 * before any page moves, either way round. Post-copy recovery: every
 * connection cut mid post-copy, the destination reconnects through the
 * proxy and completes with equal digests; a destination that does not come
 * back leaves the server failing with every page kept. The push sends the
 * working set it was given first, tier by tier, then the rest in address
 * order (a proxy notes the pushed frames in order).
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <linux/pkt_sched.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "wire/proto.h"

TestSuite(remote, .init = require_uffd);

#define SEED 0x7e11
#define NR_PAGES 16384ULL
#define PS GMEM_PAGE_4K

enum workload { IDLE, RANDOM8, SEQUENTIAL };

struct dest_cfg {
	enum workload work;
	uint32_t backing;
	uint32_t fault_around;
	uint32_t nr_bulk;
	const char *key; /* pre-shared key, or NULL */
	int recover_ms;  /* post-copy recovery; 0 = off */
	bool prealloc;   /* gmem_region_prealloc() before pre-copy */
	/* With recovery: gmem_remote_recover() to this address right after
	 * the attach, and once more after the end. */
	char recover_to[32];
};

/* What the destination child reports, in shared memory. */
struct dest_result {
	int setup_ret;
	int wait_ret;
	uint64_t present;
	uint64_t bad;        /* present pages with wrong bytes */
	uint64_t touch_bad;  /* reads by the workload that saw wrong bytes */
	uint64_t nr_latencies;
	int64_t precopy;
	int state_len;
	char state[64];
	struct gmem_remote_stats st;
	int64_t nr_mismatch; /* gmem_remote_mismatches() */
	uint64_t mismatch[4];
	uint64_t first_bad;  /* the first present page with wrong bytes */
	int recover_ret;     /* gmem_remote_recover() after the attach */
	int recover_end_ret; /* ... and after the wait */
	char err[192];
};

struct toucher {
	struct gmem_region *r;
	unsigned int seed;
	unsigned int touches;
	uint64_t bad;
};

static void *touch_random(void *arg)
{
	struct toucher *t = arg;
	uint8_t *base = gmem_region_addr(t->r);

	for (unsigned int i = 0; i < t->touches; i++) {
		uint64_t p = rand_r(&t->seed) % NR_PAGES;

		if (!pattern_check(base + p * PS, SEED, p, PS))
			t->bad++;
	}
	return NULL;
}

static uint64_t run_workload(struct gmem_region *r, enum workload w)
{
	struct toucher t[8];
	pthread_t th[8];
	uint8_t *base = gmem_region_addr(r);
	uint64_t bad = 0;

	if (w == SEQUENTIAL) {
		for (uint64_t p = 0; p < NR_PAGES; p++)
			bad += !pattern_check(base + p * PS, SEED, p, PS);
		return bad;
	}
	if (w != RANDOM8)
		return 0;
	for (int i = 0; i < 8; i++) {
		t[i] = (struct toucher){ .r = r, .seed = i + 1, .touches = 300 };
		pthread_create(&th[i], NULL, touch_random, &t[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		bad += t[i].bad;
	}
	return bad;
}

/* Checks every present page against the pattern (reading a present page
 * never faults). */
static uint64_t present_bad(struct gmem_region *r, uint64_t *first)
{
	uint8_t *base = gmem_region_addr(r);
	uint64_t bad = 0;

	for (uint64_t p = 0; p < NR_PAGES; p++) {
		if (!gmem_page_present(r, p) ||
		    pattern_check(base + p * PS, SEED, p, PS))
			continue;
		if (!bad++ && first)
			*first = p;
	}
	return bad;
}

static void dest_run(const char *addr, const struct dest_cfg *c,
		     struct dest_result *res)
{
	struct gmem_remote_params rp = { .nr_bulk = c->nr_bulk, .key = c->key,
					 .key_len = c->key ? strlen(c->key) : 0,
					 .recover_ms = c->recover_ms };
	struct gmem_fault_params fp = { .nr_threads = 2,
					.fault_around = c->fault_around };
	struct gmem_region_params p = {
		.nr_pages = NR_PAGES, .page_size = PS, .backing = c->backing,
		.flags = GMEM_REGION_MISSING,
	};
	struct gmem_region *r = NULL;
	struct gmem_source *src = NULL;
	struct gmem_remote *rm;
	uint64_t lat[64];
	int ret;

	ret = gmem_remote_connect(addr, &rp, &rm);
	if (ret < 0) {
		res->setup_ret = ret;
		if (rm)
			snprintf(res->err, sizeof(res->err), "%s",
				 gmem_remote_error(rm));
		gmem_remote_destroy(rm);
		return;
	}
	ret = gmem_region_create(&p, &r);
	if (ret == 0 && c->prealloc)
		ret = gmem_region_prealloc(r);
	if (ret == 0)
		res->precopy = gmem_remote_precopy(rm, r, 10000);
	ret = res->precopy < 0 ? (int)res->precopy : ret;
	if (ret == 0)
		res->state_len = gmem_remote_state(rm, res->state,
						   sizeof(res->state));
	if (ret == 0)
		ret = gmem_remote_source(rm, &src);
	if (ret == 0)
		ret = gmem_region_attach(r, src, &fp);
	res->setup_ret = ret;
	if (ret == 0 && c->recover_to[0])
		res->recover_ret = gmem_remote_recover(rm, c->recover_to);
	if (ret == 0) {
		res->touch_bad = run_workload(r, c->work);
		res->wait_ret = gmem_remote_wait(rm, 30000);
		gmem_region_detach(r);
	}
	if (c->recover_to[0])
		res->recover_end_ret = gmem_remote_recover(rm, c->recover_to);
	gmem_remote_stats(rm, &res->st);
	res->nr_mismatch = gmem_remote_mismatches(rm, res->mismatch, 4);
	res->nr_latencies = gmem_remote_latencies(rm, lat, 64);
	snprintf(res->err, sizeof(res->err), "%s", gmem_remote_error(rm));
	if (r) {
		res->present = gmem_region_nr_present(r);
		res->bad = present_bad(r, &res->first_bad);
	}
	gmem_source_destroy(src);
	gmem_remote_destroy(rm);
	gmem_region_destroy(r);
}

static struct dest_result *shared_result(void)
{
	void *p = mmap(NULL, sizeof(struct dest_result),
		       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	memset(p, 0, sizeof(struct dest_result));
	return p;
}

static pid_t dest_fork(uint16_t port, const struct dest_cfg *c,
		       struct dest_result *res)
{
	char addr[64];
	pid_t pid;

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dest_run(addr, c, res);
		_exit(0);
	}
	return pid;
}

static struct gmem_region *source_region(void)
{
	struct gmem_region *r = region_new(NR_PAGES, PS, GMEM_BACKING_MEMFD, 0);

	pattern_fill(gmem_region_addr(r), SEED, 0, NR_PAGES, PS);
	return r;
}

static void wait_child(pid_t pid)
{
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "destination crashed (status %#x)", status);
}

/* Serves one destination; returns what gmem_server_serve() said. */
static int serve_one(struct gmem_server *srv, struct gmem_remote_stats *st)
{
	int ret = gmem_server_accept(srv, 10000);

	if (ret == 0)
		ret = gmem_server_serve(srv, 20000);
	gmem_server_stats(srv, st);
	return ret;
}

static void check_complete(const struct dest_cfg *c)
{
	struct gmem_region *src = source_region();
	struct dest_result *res = shared_result();
	struct gmem_remote_stats sst;
	struct gmem_server *srv;
	pid_t pid;
	int ret;

	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &srv), 0);
	pid = dest_fork(gmem_server_port(srv), c, res);
	ret = serve_one(srv, &sst);
	wait_child(pid);
	cr_assert_eq(res->setup_ret, 0, "setup: %d %s (server: %s)", res->setup_ret,
		     res->err, gmem_server_error(srv));
	cr_assert_eq(ret, 0, "server: %d %s", ret, gmem_server_error(srv));
	cr_assert_eq(res->wait_ret, 0, "wait: %d %s", res->wait_ret, res->err);
	cr_assert_eq(res->st.mismatches, 0);
	cr_assert_eq(res->present, NR_PAGES);
	cr_assert_eq(res->bad, 0);
	cr_assert_eq(res->touch_bad, 0);
	/* Every page installed exactly once, from one of the three paths. */
	cr_assert_eq(res->st.urgent_pages + res->st.pushed_pages +
			     res->st.prefetched_pages, NR_PAGES,
		     "urgent %lu + pushed %lu + prefetched %lu",
		     res->st.urgent_pages, res->st.pushed_pages,
		     res->st.prefetched_pages);
	/* The destination stops reading once its last page is in, so pages
	 * still in flight then were sent but never counted there. */
	cr_assert_leq(res->st.urgent_pages + res->st.pushed_pages +
			      res->st.prefetched_pages + res->st.dropped_pages,
		      sst.urgent_pages + sst.pushed_pages +
			      sst.prefetched_pages,
		      "destination urgent %lu pushed %lu prefetched %lu "
		      "dropped %lu, server urgent %lu pushed %lu prefetched %lu",
		      res->st.urgent_pages, res->st.pushed_pages,
		      res->st.prefetched_pages, res->st.dropped_pages,
		      sst.urgent_pages, sst.pushed_pages, sst.prefetched_pages);
	if (c->work == IDLE) {
		cr_assert_eq(res->st.requests, 0);
		cr_assert_eq(res->st.urgent_pages, 0);
	} else {
		/* Urgent answers may all lose the race to the push (then
		 * they are dropped), but each request is answered. */
		cr_assert_gt(res->st.requests, 0);
		cr_assert_gt(res->nr_latencies, 0);
	}
	gmem_server_destroy(srv);
	gmem_region_destroy(src);
}

Test(remote, random_access_from_8_threads_completes, .timeout = 60)
{
	struct dest_cfg c = { .work = RANDOM8, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 1 };

	check_complete(&c);
}

Test(remote, random_access_anonymous_fault_around_16, .timeout = 60)
{
	struct dest_cfg c = { .work = RANDOM8, .backing = GMEM_BACKING_ANON,
			      .fault_around = 16, .nr_bulk = 2 };

	check_complete(&c);
}

/* Pages copied into a page cache allocated ahead, by the bulk threads and
 * the urgent path at once. */
Test(remote, random_access_preallocated_destination, .timeout = 60)
{
	struct dest_cfg c = { .work = RANDOM8, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 16, .nr_bulk = 2,
			      .prealloc = true };

	check_complete(&c);
}

Test(remote, sequential_scan_completes, .timeout = 60)
{
	struct dest_cfg c = { .work = SEQUENTIAL, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 16 };

	check_complete(&c);
}

Test(remote, idle_destination_gets_everything_by_push, .timeout = 60)
{
	struct dest_cfg c = { .work = IDLE, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 16 };

	check_complete(&c);
}

/* Pre-copy: even pages go first, then pages 0..99 change at the source and
 * are marked stale at switchover. Valid pages are installed locally, the
 * rest pushed; the digests must still agree. */
Test(remote, precopy_then_stale_pages_are_fetched_again, .timeout = 60)
{
	struct gmem_region *src = source_region();
	struct dest_result *res = shared_result();
	struct dest_cfg c = { .work = IDLE, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 16 };
	uint64_t even[NR_PAGES / 64], stale[NR_PAGES / 64] = { 0 };
	uint8_t *base = gmem_region_addr(src);
	struct gmem_server *srv;
	pid_t pid;
	int ret;

	memset(even, 0x55, sizeof(even));
	stale[0] = ~0ULL;
	stale[1] = (1ULL << 36) - 1; /* pages 0..99 */
	memset(base, 0, 100 * PS);
	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &srv), 0);
	pid = dest_fork(gmem_server_port(srv), &c, res);
	cr_assert_eq(gmem_server_accept(srv, 10000), 0);
	cr_assert_eq(gmem_server_send_pages(srv, even, NR_PAGES), NR_PAGES / 2);
	pattern_fill(base, SEED, 0, 100, PS);
	cr_assert_eq(gmem_server_send_state(srv, "device-state", 13, stale,
					    NR_PAGES), 0);
	ret = gmem_server_serve(srv, 20000);
	wait_child(pid);
	cr_assert_eq(ret, 0, "server: %d %s", ret, gmem_server_error(srv));
	cr_assert_eq(res->wait_ret, 0, "wait: %d %s", res->wait_ret, res->err);
	cr_assert_eq(res->precopy, NR_PAGES / 2);
	cr_assert_eq(res->state_len, 13);
	cr_assert_str_eq(res->state, "device-state");
	cr_assert_eq(res->bad, 0);
	cr_assert_eq(res->present, NR_PAGES);
	/* 50 of the even pages were stale. */
	cr_assert_eq(res->st.local_pages, NR_PAGES / 2 - 50);
	cr_assert_eq(res->st.pushed_pages, NR_PAGES / 2 + 50);
	gmem_server_destroy(srv);
	gmem_region_destroy(src);
}

/*
 * A proxy between destination and server that damages the stream: it
 * flips a byte of a bulk payload, inserts garbage on the control
 * connection, or vanishes, once enough bytes went through; or it cuts
 * every connection once and then forwards the next ones untouched; or it
 * holds back everything the server sends on the fault-around connection
 * after its HELLO; or it flips a byte of a bulk payload and gives the frame
 * its right crc32c again (a server that sends wrong bytes), which only the
 * completion's digests can tell; or, besides, answers a DIGEST_REQ with the
 * digests of the second half of the region twice, never the first.
 */
enum damage {
	CORRUPT, GARBAGE, VANISH, CUT, HOLD_FAULT_AROUND, RECRC, REPEAT_DIGEST,
	LOG_PUSH, NO_DAMAGE
};

/* LOG_PUSH: the pushed frames of the bulk connection, in arrival order
 * (shared memory the proxy writes). */
#define LOG_MAX 4096U
struct push_log {
	uint32_t nr;
	struct { uint64_t pgoff; uint32_t nr; } f[LOG_MAX];
};

static struct push_log *proxy_log;

/* Control, one bulk and the fault-around connection. */
#define PROXY_CONNS 3

struct pair {
	int down, up; /* destination side, server side */
	uint64_t to_down;
	bool damaged;
};

static int listen_any(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 8), 0);
	getsockname(fd, (struct sockaddr *)&a, &sl);
	*port = ntohs(a.sin_port);
	return fd;
}

static int connect_port(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		_exit(2);
	return fd;
}

/* Forwards one chunk server -> destination, damaging it once as asked:
 * garbage right after the control connection's HELLO and STATE (112
 * bytes), a flipped bit 1 MiB into the bulk stream (inside a payload), or
 * nothing more at all from there. Returns false once the proxy must go. */
static bool forward_down(struct pair *p, int idx, enum damage d, uint8_t *buf,
			 ssize_t n)
{
	static const uint8_t junk[32] = { 0xab, 0xab, 0xab, 0xab };
	const uint64_t at = 1 << 20;
	bool ok;

	if (!p->damaged && d == GARBAGE && idx == 0 && p->to_down + n >= 112) {
		p->damaged = true;
		p->to_down += n;
		ok = write(p->down, buf, n) == n;
		return ok && write(p->down, junk, sizeof(junk)) == sizeof(junk);
	}
	if (!p->damaged && (d == CORRUPT || d == VANISH || d == CUT) &&
	    idx == 1 && p->to_down + n > at) {
		p->damaged = true;
		if (d == VANISH || d == CUT)
			return false;
		buf[at - p->to_down] ^= 0x40;
	}
	p->to_down += n;
	return write(p->down, buf, n) == n;
}

static bool read_full(int fd, uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = read(fd, buf, len);

		if (n <= 0)
			return false;
		buf += n;
		len -= n;
	}
	return true;
}

/* RECRC and REPEAT_DIGEST: forward the bulk stream (RECRC), or the bulk and
 * the control stream (REPEAT_DIGEST), frame by frame (HELLO first, so
 * frames are followed from the start) until the damage is done: the first
 * PAGES frame past 1 MiB gets byte 100 flipped under a recomputed crc32c;
 * the first DIGEST frame, for pages [p, p + n), goes out as two frames for
 * [p + n / 2, p + n), the second one numbered one more. LOG_PUSH: the bulk
 * stream frame by frame, untouched, each pushed frame noted in proxy_log. */
static bool forward_frame(struct pair *p, enum damage d)
{
	static uint8_t f[PROTO_HDR_LEN + PROTO_MAX_PAYLOAD];
	static const struct proto_geom g = { .page_size = PS,
					     .nr_pages = NR_PAGES };
	const char *why = "";
	struct proto_hdr h;
	uint32_t len;

	if (!read_full(p->up, f, PROTO_HDR_LEN) ||
	    proto_decode(f, &g, &h, &why) < 0 ||
	    !read_full(p->up, f + PROTO_HDR_LEN, h.len))
		return false;
	if (d == LOG_PUSH) {
		if (h.type == PROTO_PAGES && h.flags & PROTO_F_PUSH &&
		    proxy_log->nr < LOG_MAX) {
			proxy_log->f[proxy_log->nr].pgoff = h.pgoff;
			proxy_log->f[proxy_log->nr++].nr = h.nr;
		}
	} else if (h.type == PROTO_PAGES && p->to_down >= 1 << 20) {
		f[PROTO_HDR_LEN + 100] ^= 0x40;
		proto_encode(f, &h, f + PROTO_HDR_LEN);
		p->damaged = true;
	}
	if (d != LOG_PUSH && h.type == PROTO_DIGEST) {
		uint32_t half = h.nr / 2;

		memmove(f + PROTO_HDR_LEN, f + PROTO_HDR_LEN + half * 8,
			(h.nr - half) * 8);
		h.pgoff += half;
		h.nr -= half;
		h.len = h.nr * 8;
		proto_encode(f, &h, f + PROTO_HDR_LEN);
		if (write(p->down, f, PROTO_HDR_LEN + h.len) !=
		    (ssize_t)(PROTO_HDR_LEN + h.len))
			return false;
		h.seq++;
		proto_encode(f, &h, f + PROTO_HDR_LEN);
		p->damaged = true;
	}
	len = PROTO_HDR_LEN + h.len;
	p->to_down += len;
	return write(p->down, f, len) == (ssize_t)len;
}

/* Closes every connection, both ways (the cut). */
static int cut_all(struct pair *pairs, int nr)
{
	for (int i = 0; i < nr; i++) {
		close(pairs[i].down);
		close(pairs[i].up);
	}
	return 0;
}

/* Bytes of the server's HELLO frame (a 32-byte header and a 48-byte
 * payload, libgmem/wire/PROTOCOL.md), which HOLD_FAULT_AROUND lets through. */
#define HELLO_BYTES 80U

static void proxy_run(int lfd, uint16_t server_port, enum damage d)
{
	static uint8_t buf[1 << 16];
	struct pair pairs[PROXY_CONNS];
	struct pollfd pfd[1 + 2 * PROXY_CONNS];
	int nr = 0;

	for (;;) {
		int n = 0;

		pfd[n++] = (struct pollfd){ .fd = nr < PROXY_CONNS ? lfd : -1,
					    .events = POLLIN };
		for (int i = 0; i < nr; i++) {
			bool held = d == HOLD_FAULT_AROUND && i == 2 &&
				    pairs[i].to_down >= HELLO_BYTES;

			pfd[n++] = (struct pollfd){ .fd = pairs[i].down,
						    .events = POLLIN };
			pfd[n++] = (struct pollfd){ .fd = pairs[i].up,
						    .events = held ? 0 : POLLIN };
		}
		if (poll(pfd, n, 20000) <= 0)
			_exit(0);
		if (pfd[0].revents & POLLIN) {
			pairs[nr].down = accept(lfd, NULL, NULL);
			pairs[nr].up = connect_port(server_port);
			pairs[nr].to_down = 0;
			pairs[nr++].damaged = false;
			continue;
		}
		for (int i = 0; i < nr; i++) {
			ssize_t len;

			if (pfd[1 + 2 * i].revents) {
				len = read(pairs[i].down, buf, sizeof(buf));
				if (len <= 0 || write(pairs[i].up, buf, len) != len)
					_exit(0);
			}
			if (pfd[2 + 2 * i].revents && !pairs[i].damaged &&
			    ((d == RECRC && i == 1) ||
			     (d == LOG_PUSH && i == 1) ||
			     (d == REPEAT_DIGEST && i < 2))) {
				if (!forward_frame(&pairs[i], d))
					_exit(0);
			} else if (pfd[2 + 2 * i].revents) {
				len = read(pairs[i].up, buf,
					   d == HOLD_FAULT_AROUND && i == 2
						   ? HELLO_BYTES - pairs[i].to_down
						   : sizeof(buf));
				if (len <= 0 ||
				    !forward_down(&pairs[i], i, d, buf, len)) {
					if (d != CUT)
						_exit(0);
					nr = cut_all(pairs, nr);
					d = NO_DAMAGE;
					break;
				}
			}
		}
	}
}

/* Starts the proxy in front of @srv; *@pport is where it listens. */
static pid_t proxy_fork(struct gmem_server *srv, enum damage d,
			uint16_t *pport)
{
	int lfd = listen_any(pport);
	pid_t proxy = fork();

	cr_assert_geq(proxy, 0);
	if (proxy == 0) {
		proxy_run(lfd, gmem_server_port(srv), d);
		_exit(0);
	}
	close(lfd);
	return proxy;
}

static void check_damage(enum damage d, int want, const char *what)
{
	struct gmem_region *src = source_region();
	struct dest_result *res = shared_result();
	struct dest_cfg c = { .work = IDLE, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 16 };
	struct gmem_remote_stats sst;
	struct gmem_server *srv;
	uint16_t pport;
	pid_t proxy, pid;
	int ret, got;

	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &srv), 0);
	proxy = proxy_fork(srv, d, &pport);
	pid = dest_fork(pport, &c, res);
	ret = serve_one(srv, &sst);
	wait_child(pid);
	kill(proxy, SIGKILL);
	waitpid(proxy, NULL, 0);
	cr_assert_lt(ret, 0, "the server must see the session fail");
	/* Damage right after the switchover may already end pre-copy. */
	got = res->setup_ret ? res->setup_ret : res->wait_ret;
	cr_assert_eq(got, want, "setup %d, wait %d: %s", res->setup_ret,
		     res->wait_ret, res->err);
	cr_assert(strstr(res->err, what), "error text: %s", res->err);
	/* Intact: nothing wrong was installed, and not everything came. */
	cr_assert_eq(res->bad, 0);
	cr_assert_lt(res->present, NR_PAGES);
	gmem_server_destroy(srv);
	gmem_region_destroy(src);
}

Test(remote, corrupted_payload_is_rejected_region_intact, .timeout = 60)
{
	check_damage(CORRUPT, -EPROTO, "checksum");
}

Test(remote, garbage_frame_is_rejected_region_intact, .timeout = 60)
{
	check_damage(GARBAGE, -EPROTO, "bad magic");
}

Test(remote, server_vanishing_mid_stream_is_reported, .timeout = 60)
{
	check_damage(VANISH, -ECONNRESET, "closed");
}

/* Runs a migration through a proxy doing @d; returns the server's result. */
static int run_damaged(enum damage d, struct dest_result *res,
		       struct gmem_remote_stats *sst)
{
	struct gmem_region *src = source_region();
	struct dest_cfg c = { .work = IDLE, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 16 };
	struct gmem_server *srv;
	uint16_t pport;
	pid_t proxy, pid;
	int ret;

	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &srv), 0);
	proxy = proxy_fork(srv, d, &pport);
	pid = dest_fork(pport, &c, res);
	ret = serve_one(srv, sst);
	wait_child(pid);
	kill(proxy, SIGKILL);
	waitpid(proxy, NULL, 0);
	cr_assert_eq(gmem_region_nr_present(src), NR_PAGES);
	cr_assert_eq(present_bad(src, NULL), 0, "the source's copy is intact");
	gmem_server_destroy(srv);
	gmem_region_destroy(src);
	return ret;
}

/* A server that sends one wrong byte under a right crc32c: every page
 * arrives, but the completion's digests tell, on both ends (-EIO), naming
 * the page; the source keeps every page as it was. */
Test(remote, wrong_byte_under_right_crc_is_caught_at_completion,
     .timeout = 60)
{
	struct dest_result *res = shared_result();
	struct gmem_remote_stats sst;
	int ret = run_damaged(RECRC, res, &sst);

	cr_assert_eq(res->setup_ret, 0, "setup: %d %s", res->setup_ret, res->err);
	cr_assert_eq(res->wait_ret, -EIO, "wait: %d %s", res->wait_ret, res->err);
	cr_assert_eq(ret, -EIO, "server: %d", ret);
	/* The flip passed every frame check: all pages came, one wrong. */
	cr_assert_eq(res->present, NR_PAGES);
	cr_assert_eq(res->bad, 1);
	cr_assert_eq(res->st.mismatches, 1);
	cr_assert_eq(sst.mismatches, 1, "the server learns the count (DONE)");
	cr_assert_eq(res->nr_mismatch, 1);
	cr_assert_eq(res->mismatch[0], res->first_bad,
		     "mismatch reported at page %lu, wrong bytes at page %lu",
		     res->mismatch[0], res->first_bad);
}

/* The same wrong page, and digests that cover the second half of the
 * region twice: completion must not pass with the first half unchecked. */
Test(remote, repeated_digests_do_not_complete_the_check, .timeout = 60)
{
	struct dest_result *res = shared_result();
	struct gmem_remote_stats sst;
	int ret = run_damaged(REPEAT_DIGEST, res, &sst);

	cr_assert_eq(res->setup_ret, 0, "setup: %d %s", res->setup_ret, res->err);
	cr_assert_eq(res->bad, 1, "the wrong page came");
	cr_assert_eq(res->wait_ret, -EPROTO, "wait: %d %s", res->wait_ret,
		     res->err);
	cr_assert(strstr(res->err, "DIGEST"), "%s", res->err);
	cr_assert_lt(ret, 0, "server: %d", ret);
}

/* Pages [first, first + n) in @b. */
static void mark(uint64_t *b, uint64_t first, uint64_t n)
{
	for (uint64_t p = first; p < first + n; p++)
		b[p / 64] |= 1ULL << (p % 64);
}

/*
 * Two tiers named before the push: pages 12000..12099, then 4000..4129 and
 * 12050..12059 (already in the first). An idle destination with one bulk
 * connection must receive them in that order, then every other page in
 * address order, each once.
 */
Test(remote, push_sends_the_working_set_first, .timeout = 60)
{
	static uint64_t hot[NR_PAGES / 64], warm[NR_PAGES / 64];
	static uint32_t want[NR_PAGES];
	struct gmem_region *src = source_region();
	struct dest_result *res = shared_result();
	struct dest_cfg c = { .work = IDLE, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 16 };
	struct gmem_remote_stats sst;
	struct gmem_server *srv;
	uint64_t got = 0, nw = 0;
	uint16_t pport;
	pid_t proxy, pid;
	int ret;

	proxy_log = mmap(NULL, sizeof(*proxy_log), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(proxy_log, MAP_FAILED);
	mark(hot, 12000, 100);
	mark(warm, 4000, 130);
	mark(warm, 12050, 10);
	for (uint64_t p = 12000; p < 12100; p++)
		want[nw++] = p;
	for (uint64_t p = 4000; p < 4130; p++)
		want[nw++] = p;
	for (uint64_t p = 0; p < NR_PAGES; p++)
		if ((p < 4000 || p >= 4130) && (p < 12000 || p >= 12100))
			want[nw++] = p;
	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &srv), 0);
	cr_assert_eq(gmem_server_push_first(srv, hot, NR_PAGES), 0);
	cr_assert_eq(gmem_server_push_first(srv, warm, NR_PAGES), 0);
	proxy = proxy_fork(srv, LOG_PUSH, &pport);
	pid = dest_fork(pport, &c, res);
	ret = serve_one(srv, &sst);
	wait_child(pid);
	kill(proxy, SIGKILL);
	waitpid(proxy, NULL, 0);
	cr_assert_eq(ret, 0, "server: %d %s", ret, gmem_server_error(srv));
	cr_assert_eq(res->wait_ret, 0, "wait: %d %s", res->wait_ret, res->err);
	cr_assert_eq(res->bad, 0);
	cr_assert_eq(sst.hot_pages, 230, "hot pages pushed: %lu",
		     sst.hot_pages);
	for (uint32_t i = 0; i < proxy_log->nr; i++)
		for (uint32_t k = 0; k < proxy_log->f[i].nr; k++, got++)
			cr_assert_eq(proxy_log->f[i].pgoff + k, want[got],
				     "pushed page %lu was %lu, not %u",
				     got, proxy_log->f[i].pgoff + k,
				     want[got]);
	cr_assert_eq(got, NR_PAGES, "pushed %lu pages", got);
	munmap(proxy_log, sizeof(*proxy_log));
	gmem_server_destroy(srv);
	gmem_region_destroy(src);
}

Test(remote, push_first_checks_its_arguments, .timeout = 10)
{
	static uint64_t b[NR_PAGES / 64];
	struct gmem_region *src = source_region();
	struct gmem_server *srv;

	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &srv), 0);
	cr_assert_eq(gmem_server_push_first(srv, NULL, NR_PAGES), -EINVAL);
	cr_assert_eq(gmem_server_push_first(srv, b, NR_PAGES + 1), -EINVAL);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(gmem_server_push_first(srv, b, NR_PAGES), 0);
	cr_assert_eq(gmem_server_push_first(srv, b, NR_PAGES), -ENOSPC);
	gmem_server_destroy(srv);
	gmem_region_destroy(src);
}

/* An owner that writes the region only once the destination runs (the
 * fill gate, as a GPU job copies VRAM after the switchover): 1/16 of it
 * every 20 ms, up to @upto pages, raising the mark behind each part. */
struct filler {
	struct gmem_region *r;
	uint64_t upto;
};

static void *fill_slowly(void *arg)
{
	const struct timespec tick = { .tv_nsec = 20000000L };
	struct filler *f = arg;
	uint64_t part = NR_PAGES / 16;

	for (uint64_t p = 0; p < f->upto; p += part) {
		nanosleep(&tick, NULL);
		pattern_fill((uint8_t *)gmem_region_addr(f->r) + p * PS, SEED, p,
			     part, PS);
		gmem_region_fill_set(f->r, (p + part) * PS);
	}
	return NULL;
}

/* Serves a gated region filled up to @upto pages to a destination that
 * runs @work; returns the server's result and its error in @err. */
static int serve_gated(uint64_t upto, enum workload work,
		       struct dest_result *res, char *err, size_t err_len)
{
	struct gmem_region *src = region_new(NR_PAGES, PS, GMEM_BACKING_MEMFD, 0);
	struct dest_cfg c = { .work = work, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 16, .nr_bulk = 2 };
	struct filler f = { .r = src, .upto = upto };
	struct gmem_remote_stats sst;
	struct gmem_server *srv;
	pthread_t t;
	pid_t pid;
	int ret;

	cr_assert_eq(gmem_region_fill_gate(src), 0);
	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &srv), 0);
	pid = dest_fork(gmem_server_port(srv), &c, res);
	cr_assert_eq(pthread_create(&t, NULL, fill_slowly, &f), 0);
	ret = serve_one(srv, &sst);
	pthread_join(t, NULL);
	wait_child(pid);
	snprintf(err, err_len, "%s", gmem_server_error(srv));
	gmem_server_destroy(srv);
	gmem_region_destroy(src);
	return ret;
}

/* Without the gate the push (64 MiB in milliseconds here) would send the
 * region's zeros long before the owner has written them. */
Test(remote, fill_gate_sends_each_page_once_written, .timeout = 60)
{
	struct dest_result *res = shared_result();
	char err[192];
	int ret = serve_gated(NR_PAGES, RANDOM8, res, err, sizeof(err));

	cr_assert_eq(ret, 0, "server: %d %s", ret, err);
	cr_assert_eq(res->setup_ret, 0, "setup: %s", res->err);
	cr_assert_eq(res->wait_ret, 0, "wait: %d %s", res->wait_ret, res->err);
	cr_assert_eq(res->present, NR_PAGES);
	cr_assert_eq(res->bad, 0, "first wrong page %lu", res->first_bad);
	cr_assert_eq(res->touch_bad, 0, "the workload read unwritten pages");
	cr_assert_eq(res->st.mismatches, 0);
}

/* An owner that stops writing halfway fails the session in about 10 s,
 * and the destination never gets a page it did not write (its workload
 * idles: one waiting on a page would get SIGBUS, rightly). */
Test(remote, fill_gate_that_stops_rising_fails_the_session, .timeout = 60)
{
	struct dest_result *res = shared_result();
	char err[192];
	int ret = serve_gated(NR_PAGES / 2, IDLE, res, err, sizeof(err));

	cr_assert_eq(ret, -ETIMEDOUT, "server: %d %s", ret, err);
	cr_assert(strstr(err, "stopped writing its region at byte 33554432 "),
		  "%s", err);
	cr_assert_neq(res->wait_ret, 0, "the destination cannot complete");
	cr_assert_leq(res->present, NR_PAGES / 2);
	cr_assert_eq(res->bad, 0, "first wrong page %lu", res->first_bad);
}

/* Runs a migration through a proxy that breaks the link mid post-copy
 * (@d: CUT every connection once, or VANISH for good); the destination
 * recovers for c->recover_ms, the server waits @srv_recover_ms; with
 * @direct, the destination is told (gmem_remote_recover()) to come back to
 * the server itself. Returns the server's result. */
static int run_cut(enum damage d, bool direct, int srv_recover_ms,
		   const struct dest_cfg *c, struct dest_result *res,
		   struct gmem_remote_stats *sst, char *srv_err,
		   size_t srv_err_len)
{
	struct gmem_region *src = source_region();
	struct dest_cfg cfg = *c;
	struct gmem_server *srv;
	uint16_t pport;
	pid_t proxy, pid;
	int ret;

	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &srv), 0);
	cr_assert_eq(gmem_server_set_recover(srv, srv_recover_ms), 0);
	if (direct)
		snprintf(cfg.recover_to, sizeof(cfg.recover_to),
			 "127.0.0.1:%u", gmem_server_port(srv));
	proxy = proxy_fork(srv, d, &pport);
	pid = dest_fork(pport, &cfg, res);
	ret = serve_one(srv, sst);
	wait_child(pid);
	kill(proxy, SIGKILL);
	waitpid(proxy, NULL, 0);
	snprintf(srv_err, srv_err_len, "%s", gmem_server_error(srv));
	/* Failed or not, the source holds every page as it was. */
	cr_assert_eq(gmem_region_nr_present(src), NR_PAGES);
	cr_assert_eq(present_bad(src, NULL), 0);
	gmem_server_destroy(srv);
	gmem_region_destroy(src);
	return ret;
}

Test(recover, cut_mid_postcopy_resumes_and_completes, .timeout = 60,
     .init = require_uffd)
{
	struct dest_result *res = shared_result();
	struct dest_cfg c = { .work = RANDOM8, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 16, .recover_ms = 10000 };
	struct gmem_remote_stats sst;
	char err[192];
	int ret = run_cut(CUT, false, 10000, &c, res, &sst, err, sizeof(err));

	cr_assert_eq(res->setup_ret, 0, "setup: %d %s", res->setup_ret, res->err);
	cr_assert_eq(ret, 0, "server: %d %s", ret, err);
	cr_assert_eq(res->wait_ret, 0, "wait: %d %s", res->wait_ret, res->err);
	cr_assert_eq(res->st.mismatches, 0);
	cr_assert_eq(res->present, NR_PAGES);
	cr_assert_eq(res->bad, 0);
	cr_assert_eq(res->touch_bad, 0);
	cr_assert_eq(res->st.recoveries, 1, "destination recoveries %lu",
		     res->st.recoveries);
	cr_assert_eq(sst.recoveries, 1, "server recoveries %lu", sst.recoveries);
	cr_assert_gt(res->st.paused_ns, 0);
	/* Installed exactly once, whatever came twice. */
	cr_assert_eq(res->st.urgent_pages + res->st.pushed_pages +
			     res->st.prefetched_pages, NR_PAGES);
}

Test(recover, without_recovery_the_cut_fails_cleanly, .timeout = 60,
     .init = require_uffd)
{
	struct dest_result *res = shared_result();
	struct dest_cfg c = { .work = IDLE, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 16 };
	struct gmem_remote_stats sst;
	char err[192];
	time_t t0 = time(NULL);
	int ret = run_cut(CUT, false, 400, &c, res, &sst, err, sizeof(err));

	cr_assert_eq(res->wait_ret, -ECONNRESET, "wait: %d %s", res->wait_ret,
		     res->err);
	cr_assert_lt(res->present, NR_PAGES);
	cr_assert_eq(res->bad, 0);
	/* The server waited for it in vain, and says so. */
	cr_assert_eq(ret, -ETIMEDOUT, "server: %d %s", ret, err);
	cr_assert(strstr(err, "did not come back within 400 ms"), "%s", err);
	cr_assert_lt(time(NULL) - t0, 30, "the wait is bounded");
	cr_assert_eq(sst.recoveries, 0);
}

/* The route through the proxy dies for good mid post-copy; the destination,
 * told another address of the same server, resumes there and completes.
 * Once the session is over, a new address is refused. */
Test(recover, recover_to_another_address_completes, .timeout = 60,
     .init = require_uffd)
{
	struct dest_result *res = shared_result();
	struct dest_cfg c = { .work = RANDOM8, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 16, .recover_ms = 10000 };
	struct gmem_remote_stats sst;
	char err[192];
	int ret = run_cut(VANISH, true, 10000, &c, res, &sst, err,
			  sizeof(err));

	cr_assert_eq(res->setup_ret, 0, "setup: %d %s", res->setup_ret, res->err);
	cr_assert_eq(res->recover_ret, 0);
	cr_assert_eq(ret, 0, "server: %d %s", ret, err);
	cr_assert_eq(res->wait_ret, 0, "wait: %d %s", res->wait_ret, res->err);
	cr_assert_eq(res->present, NR_PAGES);
	cr_assert_eq(res->bad, 0);
	cr_assert_eq(res->touch_bad, 0);
	cr_assert_eq(res->st.recoveries, 1, "destination recoveries %lu",
		     res->st.recoveries);
	cr_assert_eq(sst.recoveries, 1, "server recoveries %lu", sst.recoveries);
	cr_assert_eq(res->recover_end_ret, -ESHUTDOWN);
}

/* gmem_remote_recover()'s refusals, on a remote end whose connect failed
 * (handed out all the same, failed). */
Test(recover, recover_checks_its_arguments, .timeout = 30)
{
	struct gmem_remote_params p = { .connect_ms = 200 };
	char addr[300];
	struct gmem_remote *rm;
	uint16_t port;
	int lfd = listen_any(&port);

	/* A port nobody listens on: bound, then closed. */
	close(lfd);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	cr_assert_lt(gmem_remote_connect(addr, &p, &rm), 0);
	cr_assert_not_null(rm);
	cr_assert_eq(gmem_remote_recover(rm, addr), -EOPNOTSUPP,
		     "recovery was off");
	gmem_remote_destroy(rm);
	p.recover_ms = 1000;
	cr_assert_lt(gmem_remote_connect(addr, &p, &rm), 0);
	cr_assert_not_null(rm);
	cr_assert_eq(gmem_remote_recover(rm, NULL), -EINVAL);
	memset(addr, '1', sizeof(addr) - 1);
	addr[sizeof(addr) - 1] = '\0';
	cr_assert_eq(gmem_remote_recover(rm, addr), -EINVAL, "too long");
	cr_assert_eq(gmem_remote_recover(rm, "127.0.0.1:1"), -ESHUTDOWN,
		     "the session failed");
	gmem_remote_destroy(rm);
}

/* A client that speaks no protocol at all is turned away at accept. */
Test(remote, server_rejects_garbage_hello, .timeout = 30)
{
	struct gmem_region *src = source_region();
	struct gmem_server *srv;
	uint8_t junk[80];
	pid_t pid;

	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &srv), 0);
	memset(junk, 0xab, sizeof(junk));
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = connect_port(gmem_server_port(srv));

		if (write(fd, junk, sizeof(junk)) != sizeof(junk))
			_exit(1);
		while (read(fd, junk, sizeof(junk)) > 0)
			;
		_exit(0);
	}
	cr_assert_eq(gmem_server_accept(srv, 10000), -EPROTO);
	cr_assert(strstr(gmem_server_error(srv), "bad magic"), "%s",
		  gmem_server_error(srv));
	gmem_server_destroy(srv);
	wait_child(pid);
	gmem_region_destroy(src);
}

#define KEY_A "key-of-the-two-hosts-0123456789"
#define KEY_B "key-of-a-stranger-9876543210abc"

/* A server with @srv_key (NULL: none) and a destination with @dst_key;
 * returns the server's result, the destination's in @res. */
static int run_keyed(const char *srv_key, const char *dst_key,
		     struct dest_result *res, struct gmem_remote_stats *sst,
		     char *srv_err, size_t srv_err_len)
{
	struct gmem_region *src = source_region();
	struct dest_cfg c = { .work = RANDOM8, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 16, .nr_bulk = 2,
			      .key = dst_key };
	struct gmem_server *srv;
	pid_t pid;
	int ret;

	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &srv), 0);
	if (srv_key)
		cr_assert_eq(gmem_server_set_key(srv, srv_key,
						 strlen(srv_key)), 0);
	pid = dest_fork(gmem_server_port(srv), &c, res);
	ret = gmem_server_accept(srv, 3000);
	if (ret == 0)
		ret = gmem_server_serve(srv, 20000);
	gmem_server_stats(srv, sst);
	snprintf(srv_err, srv_err_len, "%s", gmem_server_error(srv));
	wait_child(pid);
	gmem_server_destroy(srv);
	gmem_region_destroy(src);
	return ret;
}

Test(auth, same_key_completes, .timeout = 60, .init = require_uffd)
{
	struct dest_result *res = shared_result();
	struct gmem_remote_stats sst;
	char err[192];
	int ret = run_keyed(KEY_A, KEY_A, res, &sst, err, sizeof(err));

	cr_assert_eq(res->setup_ret, 0, "setup: %d %s", res->setup_ret, res->err);
	cr_assert_eq(ret, 0, "server: %d %s", ret, err);
	cr_assert_eq(res->wait_ret, 0, "wait: %d %s", res->wait_ret, res->err);
	cr_assert_eq(res->present, NR_PAGES);
	cr_assert_eq(res->bad + res->touch_bad, 0);
	cr_assert_gt(res->st.requests, 0);
}

/* Refused on both sides, each saying why, and not one page sent. */
static void check_refused(const char *srv_key, const char *dst_key,
			  const char *srv_why, const char *dst_why)
{
	struct dest_result *res = shared_result();
	struct gmem_remote_stats sst;
	char err[192];
	int ret = run_keyed(srv_key, dst_key, res, &sst, err, sizeof(err));

	cr_assert_eq(res->setup_ret, -EACCES, "setup: %d %s", res->setup_ret,
		     res->err);
	cr_assert_lt(ret, 0, "the server served a refused peer");
	cr_assert(strstr(err, srv_why), "server: %s", err);
	cr_assert(strstr(res->err, dst_why), "destination: %s", res->err);
	cr_assert_eq(sst.bytes + sst.urgent_pages + sst.pushed_pages, 0);
	cr_assert_eq(res->st.bytes, 0);
	cr_assert_eq(res->present, 0);
}

Test(auth, wrong_key_is_refused_before_any_page, .timeout = 60,
     .init = require_uffd)
{
	check_refused(KEY_A, KEY_B, "destination failed authentication",
		      "destination failed authentication");
}

Test(auth, destination_without_key_is_refused, .timeout = 60,
     .init = require_uffd)
{
	check_refused(KEY_A, NULL, "offered none", "needs a key");
}

/* A server that cannot prove the key could write anything into the
 * region: the destination refuses it (the server then waits in vain for
 * the bulk connections). */
Test(auth, server_without_key_is_refused, .timeout = 60,
     .init = require_uffd)
{
	check_refused(NULL, KEY_A, "did not open it", "offers no authentication");
}

struct serving {
	struct gmem_server *srv;
	int ret;
};

static void *accept_and_serve(void *arg)
{
	struct serving *sv = arg;

	sv->ret = gmem_server_accept(sv->srv, 20000);
	if (sv->ret == 0)
		sv->ret = gmem_server_serve(sv->srv, 20000);
	return NULL;
}

/* A stranger who connects first is refused, and the wait goes on: the
 * destination holding the key, coming after, is served in full. */
Test(auth, stranger_first_does_not_end_the_migration, .timeout = 90,
     .init = require_uffd)
{
	struct dest_result *stranger = shared_result(), *res = shared_result();
	struct dest_cfg c = { .work = RANDOM8, .backing = GMEM_BACKING_MEMFD,
			      .fault_around = 16, .nr_bulk = 2, .key = KEY_B };
	struct gmem_region *src = source_region();
	struct serving sv = { 0 };
	pthread_t th;

	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &sv.srv), 0);
	cr_assert_eq(gmem_server_set_key(sv.srv, KEY_A, strlen(KEY_A)), 0);
	pthread_create(&th, NULL, accept_and_serve, &sv);
	wait_child(dest_fork(gmem_server_port(sv.srv), &c, stranger));
	cr_assert_eq(stranger->setup_ret, -EACCES, "stranger: %d %s",
		     stranger->setup_ret, stranger->err);
	c.key = KEY_A;
	wait_child(dest_fork(gmem_server_port(sv.srv), &c, res));
	pthread_join(th, NULL);
	cr_assert_eq(res->setup_ret, 0, "setup: %d %s", res->setup_ret, res->err);
	cr_assert_eq(sv.ret, 0, "server: %d %s", sv.ret,
		     gmem_server_error(sv.srv));
	cr_assert_eq(res->wait_ret, 0, "wait: %d %s", res->wait_ret, res->err);
	cr_assert_eq(res->present, NR_PAGES);
	cr_assert_eq(res->bad + res->touch_bad, 0);
	gmem_server_destroy(sv.srv);
	gmem_region_destroy(src);
}

/* A server in a thread, with the proxy in front of it unless @d is
 * NO_DAMAGE, and a destination on demand (nothing pushed), fault-around 16,
 * one handler thread, attached. */
struct fa_session {
	struct gmem_region *src_r;
	struct serving sv;
	pthread_t th;
	pid_t proxy;
	struct gmem_region *r;
	struct gmem_remote *rm;
	struct gmem_source *src;
	struct gmem_remote_stats st; /* fa_stats() */
};

static void fa_open(struct fa_session *f, enum damage d)
{
	struct gmem_region_params p = { .nr_pages = NR_PAGES, .page_size = PS,
					.flags = GMEM_REGION_MISSING };
	struct gmem_remote_params rp = { .flags = GMEM_REMOTE_ON_DEMAND };
	struct gmem_fault_params fp = { .nr_threads = 1, .fault_around = 16 };
	uint16_t port;
	char addr[64];

	memset(f, 0, sizeof(*f));
	f->src_r = source_region();
	cr_assert_eq(gmem_server_listen(f->src_r, "127.0.0.1:0", &f->sv.srv), 0);
	pthread_create(&f->th, NULL, accept_and_serve, &f->sv);
	port = gmem_server_port(f->sv.srv);
	if (d != NO_DAMAGE)
		f->proxy = proxy_fork(f->sv.srv, d, &port);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	cr_assert_eq(gmem_remote_connect(addr, &rp, &f->rm), 0);
	cr_assert_eq(gmem_region_create(&p, &f->r), 0);
	cr_assert_eq(gmem_remote_precopy(f->rm, f->r, 10000), 0);
	cr_assert_eq(gmem_remote_source(f->rm, &f->src), 0);
	cr_assert_eq(gmem_region_attach(f->r, f->src, &fp), 0);
}

/* Touches page @pg and checks what it reads. */
static void fa_touch(struct fa_session *f, uint64_t pg)
{
	cr_assert(pattern_check(gmem_region_addr(f->r) + pg * PS, SEED, pg, PS),
		  "page %lu", (unsigned long)pg);
}

/* The stats once @installed pages are counted: a receive thread counts
 * a frame's pages after installing them, so after the faulting thread
 * (woken by the install) may already look. */
static const struct gmem_remote_stats *fa_stats(struct fa_session *f,
						uint64_t installed)
{
	for (int i = 0; i < 5000; i++) {
		gmem_remote_stats(f->rm, &f->st);
		if (f->st.urgent_pages + f->st.prefetched_pages +
			    f->st.pushed_pages >= installed)
			break;
		usleep(1000);
	}
	return &f->st;
}

static void fa_close(struct fa_session *f)
{
	gmem_region_detach(f->r);
	gmem_source_destroy(f->src);
	gmem_remote_destroy(f->rm);
	gmem_region_destroy(f->r);
	if (f->proxy > 0) {
		kill(f->proxy, SIGKILL);
		waitpid(f->proxy, NULL, 0);
	}
	pthread_join(f->th, NULL);
	gmem_server_destroy(f->sv.srv);
	gmem_region_destroy(f->src_r);
}

/* One touch in a 16-page fault-around window, nothing pushed: the faulting
 * page is asked for alone (the one timed request), the rest of the window
 * around it in two hints that come on the fault-around connection; all 16
 * pages come, each once. */
Test(remote, fault_around_asks_for_the_faulting_page_first, .timeout = 60,
     .init = require_uffd)
{
	const struct gmem_remote_stats *st;
	struct fa_session f;
	uint64_t lat[8];

	fa_open(&f, NO_DAMAGE);
	fa_touch(&f, 5);
	fa_stats(&f, 16);
	cr_assert_eq(gmem_region_nr_present(f.r), 16);
	for (uint64_t pg = 0; pg < 16; pg++)
		fa_touch(&f, pg);
	st = fa_stats(&f, 16);
	cr_assert_eq(st->requests, 3, "requests %lu: page 5, then 0-4 and 6-15",
		     (unsigned long)st->requests);
	cr_assert_eq(gmem_remote_latencies(f.rm, lat, 8), 1);
	cr_assert_eq(st->urgent_pages, 1, "urgent %lu prefetched %lu",
		     (unsigned long)st->urgent_pages,
		     (unsigned long)st->prefetched_pages);
	cr_assert_eq(st->prefetched_pages, 15);
	cr_assert_eq(st->pushed_pages, 0);
	fa_close(&f);
}

/* The fault-around connection is held back: urgent answers still come, on
 * the control connection, none behind the pages around an earlier fault. */
Test(remote, urgent_answers_never_wait_behind_fault_around, .timeout = 60,
     .init = require_uffd)
{
	const struct gmem_remote_stats *st;
	struct fa_session f;

	fa_open(&f, HOLD_FAULT_AROUND);
	fa_touch(&f, 5);
	fa_touch(&f, 21);
	st = fa_stats(&f, 2);
	cr_assert_eq(st->urgent_pages, 2);
	cr_assert_eq(st->prefetched_pages, 0);
	cr_assert_eq(st->requests, 6, "requests %lu: pages 5 and 21, and the "
		     "hints around each", (unsigned long)st->requests);
	fa_close(&f);
}

/* Connected TCP sockets of this process at socket priority @prio. */
static int sockets_at_priority(int prio)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		int p, listening, type, domain;
		socklen_t l = sizeof(int);

		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) < 0 ||
		    (domain != AF_INET && domain != AF_INET6) ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 ||
		    type != SOCK_STREAM ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) < 0 ||
		    listening ||
		    getsockopt(fd, SOL_SOCKET, SO_PRIORITY, &p, &l) < 0)
			continue;
		n += p == prio;
	}
	return n;
}

/* Both ends of the control connection, and only they, go first in the
 * host's priority queueing (TC_PRIO_INTERACTIVE, pfifo_fast's band 0):
 * urgent requests and answers never wait behind the push at a saturated
 * NIC. */
Test(remote, only_the_control_connection_is_prioritized, .timeout = 60,
     .init = require_uffd)
{
	struct fa_session f;

	fa_open(&f, NO_DAMAGE);
	fa_touch(&f, 5);
	cr_assert_eq(sockets_at_priority(TC_PRIO_INTERACTIVE), 2);
	/* One bulk and one fault-around connection, both ends. */
	cr_assert_eq(sockets_at_priority(0), 4);
	fa_close(&f);
}

Test(auth, key_length_is_checked, .timeout = 10, .init = require_uffd)
{
	struct gmem_remote_params rp = { .key = "short", .key_len = 5 };
	struct gmem_region *src = source_region();
	struct gmem_server *srv;
	struct gmem_remote *rm;

	cr_assert_eq(gmem_remote_connect("127.0.0.1:1", &rp, &rm), -EINVAL);
	rp.key = NULL;
	rp.key_len = 16;
	cr_assert_eq(gmem_remote_connect("127.0.0.1:1", &rp, &rm), -EINVAL);
	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &srv), 0);
	cr_assert_eq(gmem_server_set_key(srv, "short", 5), -EINVAL);
	cr_assert_eq(gmem_server_set_key(srv, NULL, 16), -EINVAL);
	gmem_server_destroy(srv);
	gmem_region_destroy(src);
}

static void *accept_briefly(void *arg)
{
	struct serving *sv = arg;

	/* A refused session: the server waits on for another destination. */
	sv->ret = gmem_server_accept(sv->srv, 2000);
	return NULL;
}

/*
 * A destination whose region has another geometry refuses the server at
 * its first HELLO, saying both, and opens no other connection: the
 * server's session fails before it began, not one page sent.
 */
Test(remote, expected_geometry_refuses_another_server, .timeout = 30,
     .init = require_uffd)
{
	struct gmem_remote_params rp = { .connect_ms = 5000,
					 .expect_page_size = PS,
					 .expect_nr_pages = NR_PAGES / 2 };
	struct gmem_region *src = source_region();
	struct gmem_remote_stats sst;
	struct serving sv = {};
	struct gmem_remote *rm;
	char addr[64];
	pthread_t th;

	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &sv.srv), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u",
		 gmem_server_port(sv.srv));
	cr_assert_eq(pthread_create(&th, NULL, accept_briefly, &sv), 0);
	cr_assert_eq(gmem_remote_connect(addr, &rp, &rm), -EINVAL);
	cr_assert_not_null(rm);
	cr_assert(strstr(gmem_remote_error(rm), "has 16384 pages of 4096 "
			 "bytes, this one 8192 of 4096"), "%s",
		  gmem_remote_error(rm));
	gmem_remote_destroy(rm);
	pthread_join(th, NULL);
	cr_assert_lt(sv.ret, 0, "the server began a session");
	gmem_server_stats(sv.srv, &sst);
	cr_assert_eq(sst.bytes + sst.urgent_pages + sst.pushed_pages, 0);
	/* Half an expectation is refused before connecting. */
	rp.expect_nr_pages = 0;
	cr_assert_eq(gmem_remote_connect(addr, &rp, &rm), -EINVAL);
	cr_assert_null(rm);
	gmem_server_destroy(sv.srv);
	gmem_region_destroy(src);
}

/* Writes HELLO(@role, @features) as a peer of an older gmem would. */
static void old_hello(int fd, uint32_t role, uint64_t features,
		      uint64_t session)
{
	uint8_t buf[PROTO_HDR_LEN + PROTO_HELLO_LEN];
	struct proto_hello hello = {
		.role = role, .features = features, .session = session,
		.nr_bulk = role == PROTO_ROLE_CONTROL,
		.page_size = role == PROTO_ROLE_SERVER ? 4096 : 0,
		.nr_pages = role == PROTO_ROLE_SERVER ? NR_PAGES : 0,
	};
	struct proto_hdr h = { .type = PROTO_HELLO, .len = PROTO_HELLO_LEN };

	proto_hello_encode(buf + PROTO_HDR_LEN, &hello);
	proto_encode(buf, &h, buf + PROTO_HDR_LEN);
	if (write(fd, buf, sizeof(buf)) != sizeof(buf))
		_exit(1);
}

/* A keyed server and a keyed destination of a gmem that authenticates but
 * does not encrypt (AUTH offered, no SEAL): refused before any frame after
 * HELLO, saying why. There is no keyed session in the clear. */
Test(auth, keyed_server_refuses_a_destination_that_does_not_encrypt,
     .timeout = 30)
{
	struct gmem_region *src = source_region();
	struct gmem_server *srv;
	pid_t pid;

	cr_assert_eq(gmem_server_listen(src, "127.0.0.1:0", &srv), 0);
	cr_assert_eq(gmem_server_set_key(srv, KEY_A, strlen(KEY_A)), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = connect_port(gmem_server_port(srv));
		uint8_t junk[256];

		old_hello(fd, PROTO_ROLE_CONTROL,
			  PROTO_FEAT_CRC32C | PROTO_FEAT_AUTH, 0);
		while (read(fd, junk, sizeof(junk)) > 0)
			;
		_exit(0);
	}
	cr_assert_eq(gmem_server_accept(srv, 3000), -EACCES);
	cr_assert(strstr(gmem_server_error(srv), "destination does not"), "%s",
		  gmem_server_error(srv));
	gmem_server_destroy(srv);
	wait_child(pid);
	gmem_region_destroy(src);
}

Test(auth, keyed_destination_refuses_a_server_that_does_not_encrypt,
     .timeout = 30)
{
	struct gmem_remote_params p = { .key = KEY_A, .key_len = strlen(KEY_A),
					.connect_ms = 3000 };
	struct gmem_remote *rm;
	uint16_t port;
	int lfd = listen_any(&port);
	char addr[32];
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = accept(lfd, NULL, NULL);
		uint8_t in[PROTO_HDR_LEN + PROTO_HELLO_LEN];

		if (fd < 0 || read(fd, in, sizeof(in)) <= 0)
			_exit(1);
		old_hello(fd, PROTO_ROLE_SERVER,
			  PROTO_FEAT_CRC32C | PROTO_FEAT_AUTH, 42);
		while (read(fd, in, sizeof(in)) > 0)
			;
		_exit(0);
	}
	close(lfd);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	cr_assert_eq(gmem_remote_connect(addr, &p, &rm), -EACCES);
	cr_assert(strstr(gmem_remote_error(rm), "does not encrypt"), "%s",
		  gmem_remote_error(rm));
	gmem_remote_destroy(rm);
	wait_child(pid);
}
