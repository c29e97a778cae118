// SPDX-License-Identifier: MIT
/*
 * fuzz-frames.c - libFuzzer harness for what the page server and the
 * destination do with a frame once it passed framing: the handlers that
 * index bitmaps, page ranges, digests and the region with wire fields
 * (page-server/server.c and push.c: REQ, NEED, DIGEST_REQ, DONE;
 * remote-source/remote.c and fetch.c: pre-copy PAGES, STALE, STATE, PAGES,
 * DIGEST). The whole library is built in, through its public calls, with
 * this file's fake in place of the TCP transport (it defines
 * transport_tcp_ops; tcp.c is left out): every connection carries the
 * handshake a real peer sends, then the control connection carries the
 * input's frames and ends, the others stay silent. fuzz-wire.c covers
 * framing; here each frame gets the right magic, version, sequence number
 * and crc32c, so the fuzzer spends its time in the handlers.
 *
 * Input: byte 0 = side (bit 0: the destination, else the page server; bit
 * 1, destination: GMEM_REMOTE_ON_DEMAND, no NEED), byte 1 = bytes per read
 * (0: all there is), then frames: a 32-byte header (libgmem/wire/
 * PROTOCOL.md) and, but for PAGES, its payload from the input, cut where
 * the input ends; a PAGES payload is made here (its declared length, up to
 * 64 KiB, of filler), as page bytes are no input to any check.
 *
 * Besides the sanitizers' findings, one property is checked: a destination
 * that completes with every digest equal had every page's digest in some
 * DIGEST frame of the input.
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <isa-l/crc.h>

#include "gmem.h"
#include "wire/frame.h"

#define NR_PAGES 64U /* a page a bit of a uint64_t */
#define PAGE 4096U
#define SESSION 42U
#define MAX_PAGES_LEN (64U << 10)
#define MAX_STREAM (1U << 20)
#define MAX_PENDING 64
#define MAX_FAKE_CONNS 4

/* One connection's bytes towards the code under test. */
struct stream {
	uint8_t *data;
	size_t len, off;
	bool made;      /* data built (at the first receive) */
	bool shut;
	bool last;      /* ends with the end of the stream; else silent */
	int fd;
};

struct fake_ep {
	pthread_mutex_t lock;
	unsigned int idx; /* endpoints made this run, in order */
	struct transport_req *pending[MAX_PENDING];
	unsigned int nr;
	struct stream conns[MAX_FAKE_CONNS];
	unsigned int nr_conns;
};

/* This input's run. */
static struct fuzz_run {
	bool dest;
	const uint8_t *frames;
	size_t frames_len;
	size_t chunk;
	uint64_t digested; /* pages (bits) some DIGEST frame covers */
	unsigned int nr_eps;
	uint64_t session; /* the server's, from its first HELLO */
} run;

static void hello_frame(uint8_t *buf, const struct proto_hello *hello)
{
	struct proto_hdr h = { .type = PROTO_HELLO, .len = PROTO_HELLO_LEN };

	proto_hello_encode(buf + PROTO_HDR_LEN, hello);
	proto_encode(buf, &h, buf + PROTO_HDR_LEN);
}

/* The peer's HELLO on connection @conn of endpoint @ep, then on the
 * control connection the input's frames, ready for any check. */
static void stream_make(struct fake_ep *ep, unsigned int conn,
			struct stream *s)
{
	unsigned int idx = run.dest ? ep->idx : conn;
	struct proto_hello hello = { .features = PROTO_FEATURES };
	size_t hl = PROTO_HDR_LEN + PROTO_HELLO_LEN;

	s->made = true;
	s->last = idx == 0;
	s->data = malloc(hl + (s->last ? run.frames_len : 0));
	if (!s->data)
		abort();
	if (run.dest) {
		hello.role = PROTO_ROLE_SERVER;
		hello.page_size = PAGE;
		hello.nr_pages = NR_PAGES;
		hello.session = SESSION;
	} else {
		hello.role = idx == 0 ? PROTO_ROLE_CONTROL
			     : idx == 1 ? PROTO_ROLE_BULK : PROTO_ROLE_PREFETCH;
		hello.nr_bulk = idx == 0;
		hello.session = idx ? run.session : 0;
	}
	hello_frame(s->data, &hello);
	s->len = hl;
	if (s->last) {
		memcpy(s->data + hl, run.frames, run.frames_len);
		s->len += run.frames_len;
	}
}

/* The page server's first HELLO names its session, which the bulk
 * connections' HELLOs must echo. */
static void sent(const struct transport_req *q)
{
	struct proto_hello hello;
	const char *why;

	if (run.dest || run.session ||
	    q->len != PROTO_HDR_LEN + PROTO_HELLO_LEN || q->buf[5] != PROTO_HELLO)
		return;
	if (proto_hello_decode(q->buf + PROTO_HDR_LEN, &hello, &why) == 0)
		run.session = hello.session;
}

/* Completes @q if it can: a send at once, a receive with what its stream
 * holds (or its end). */
static bool complete(struct fake_ep *ep, struct transport_req *q)
{
	struct stream *s = &ep->conns[q->conn];
	size_t n;

	if (q->dir == TRANSPORT_SEND) {
		q->res = s->shut ? -EPIPE : 0;
		q->done = q->res ? 0 : q->len;
		if (!q->res)
			sent(q);
		return true;
	}
	if (!s->made)
		stream_make(ep, q->conn, s);
	n = s->len - s->off;
	if (!n && !s->last && !s->shut)
		return false;
	if (run.chunk && n > run.chunk)
		n = run.chunk;
	/* The HELLO comes alone, as from a real peer, which sends nothing
	 * more before its handshake is answered: bytes read with it would
	 * wait, unparsed, for the next read (wire_frame_recv()). */
	if (s->off < PROTO_HDR_LEN + PROTO_HELLO_LEN &&
	    n > PROTO_HDR_LEN + PROTO_HELLO_LEN - s->off)
		n = PROTO_HDR_LEN + PROTO_HELLO_LEN - s->off;
	if (n > q->len)
		n = q->len;
	if (!q->partial && n < q->len)
		n = 0;
	memcpy(q->buf, s->data + s->off, n);
	s->off += n;
	q->done = n;
	q->res = n ? 0 : -ECONNRESET;
	return true;
}

static int fake_queue(struct transport *t, struct transport_req **reqs,
		      unsigned int nr)
{
	struct fake_ep *ep = t->priv;
	int ret = 0;

	pthread_mutex_lock(&ep->lock);
	for (unsigned int i = 0; i < nr && !ret; i++) {
		if (ep->nr == MAX_PENDING || reqs[i]->conn >= ep->nr_conns)
			ret = -EBUSY;
		else
			ep->pending[ep->nr++] = reqs[i];
	}
	pthread_mutex_unlock(&ep->lock);
	return ret;
}

static int fake_poll(struct transport *t, struct transport_req **done,
		     unsigned int max, int64_t wait_ns)
{
	struct timespec nap = { .tv_nsec = 200000 };
	struct fake_ep *ep = t->priv;
	unsigned int n = 0, i = 0;

	pthread_mutex_lock(&ep->lock);
	while (i < ep->nr && n < max) {
		struct transport_req *q = ep->pending[i];

		if (!complete(ep, q)) {
			i++;
			continue;
		}
		done[n++] = q;
		memmove(ep->pending + i, ep->pending + i + 1,
			(--ep->nr - i) * sizeof(q));
	}
	pthread_mutex_unlock(&ep->lock);
	/* Only silent connections: as a quiet link would, but briefly. */
	if (!n && wait_ns)
		nanosleep(&nap, NULL);
	return n;
}

static int fake_listen(const char *addr, uint16_t *port)
{
	*port = 1;
	return eventfd(0, EFD_CLOEXEC);
}

static int fake_accept(int lfd, int wait_ms)
{
	return eventfd(0, EFD_CLOEXEC);
}

static int fake_connect(const char *addr, int wait_ms)
{
	return eventfd(0, EFD_CLOEXEC);
}

static int fake_init(struct transport *t, unsigned int depth, void *buf,
		     size_t len)
{
	struct fake_ep *ep = calloc(1, sizeof(*ep));

	if (!ep)
		return -ENOMEM;
	pthread_mutex_init(&ep->lock, NULL);
	ep->idx = run.nr_eps++;
	t->ops = &transport_tcp_ops;
	t->priv = ep;
	return 0;
}

static int fake_add_conn(struct transport *t, int fd)
{
	struct fake_ep *ep = t->priv;
	int ret;

	pthread_mutex_lock(&ep->lock);
	ret = ep->nr_conns < MAX_FAKE_CONNS ? (int)ep->nr_conns++ : -EMFILE;
	if (ret >= 0)
		ep->conns[ret].fd = fd;
	pthread_mutex_unlock(&ep->lock);
	return ret;
}

/* Sends from any thread go nowhere. */
static int fake_send_now(struct transport *t, unsigned int conn,
			 const void *buf, size_t len)
{
	return 0;
}

static void fake_prioritize(struct transport *t, unsigned int conn)
{
}

static void fake_shutdown(struct transport *t, unsigned int conn)
{
	struct fake_ep *ep = t->priv;

	pthread_mutex_lock(&ep->lock);
	ep->conns[conn].shut = true;
	pthread_mutex_unlock(&ep->lock);
}

static void fake_fini(struct transport *t)
{
	struct fake_ep *ep = t->priv;

	if (!ep)
		return;
	for (unsigned int i = 0; i < ep->nr_conns; i++) {
		close(ep->conns[i].fd);
		free(ep->conns[i].data);
	}
	pthread_mutex_destroy(&ep->lock);
	free(ep);
	t->priv = NULL;
}

const struct transport_ops transport_tcp_ops = {
	.name = "tcp",	/* found as the TCP transport it stands in for */
	.listen = fake_listen,
	.accept = fake_accept,
	.connect = fake_connect,
	.init = fake_init,
	.add_conn = fake_add_conn,
	.submit = fake_queue,
	.queue = fake_queue,
	.poll = fake_poll,
	.send_now = fake_send_now,
	.prioritize = fake_prioritize,
	.shutdown = fake_shutdown,
	.fini = fake_fini,
};

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

/* The pages of the range in header @h, as bits of a 64-page region. */
static uint64_t range_bits(const uint8_t *h)
{
	uint64_t pgoff, bits = 0;
	uint32_t nr;

	memcpy(&pgoff, h + 16, 8);
	memcpy(&nr, h + 24, 4);
	pgoff = le64toh(pgoff);
	nr = le32toh(nr);
	for (uint64_t p = pgoff; p < NR_PAGES && p - pgoff < nr; p++)
		bits |= 1ULL << p;
	return bits;
}

/* The input's frames with magic, version, sequence numbers (from 1, after
 * HELLO), lengths and crc32c right, into @out (MAX_STREAM bytes). */
static size_t fix_frames(const uint8_t *in, size_t len, uint8_t *out,
			 uint64_t *digested)
{
	size_t off = 0, o = 0;
	uint32_t seq = 1;

	while (len - off >= PROTO_HDR_LEN) {
		uint8_t *h = out + o;
		uint32_t plen, crc;

		memcpy(&plen, in + off + 8, 4);
		plen = le32toh(plen);
		if (in[off + 5] == PROTO_PAGES && plen > MAX_PAGES_LEN)
			plen = MAX_PAGES_LEN;
		if (in[off + 5] != PROTO_PAGES &&
		    plen > len - off - PROTO_HDR_LEN)
			plen = len - off - PROTO_HDR_LEN;
		if (MAX_STREAM - o < PROTO_HDR_LEN + plen)
			break;
		memcpy(h, in + off, PROTO_HDR_LEN);
		if (h[5] == PROTO_DIGEST)
			*digested |= range_bits(h);
		put32(h, PROTO_MAGIC);
		h[4] = PROTO_VERSION;
		put32(h + 8, plen);
		put32(h + 12, seq++);
		off += PROTO_HDR_LEN;
		if (in[off - PROTO_HDR_LEN + 5] == PROTO_PAGES) {
			memset(h + PROTO_HDR_LEN, 0xa5, plen);
		} else {
			memcpy(h + PROTO_HDR_LEN, in + off, plen);
			off += plen;
		}
		crc = crc32_iscsi(h, 28, 0xffffffffU);
		crc = crc32_iscsi(h + PROTO_HDR_LEN, (int)plen, crc);
		put32(h + 28, crc);
		o += PROTO_HDR_LEN + plen;
	}
	return o;
}

static struct gmem_region *region(uint32_t flags)
{
	struct gmem_region_params p = {
		.nr_pages = NR_PAGES, .page_size = PAGE,
		.backing = GMEM_BACKING_MEMFD, .flags = flags,
	};
	struct gmem_region *r = NULL;

	if (gmem_region_create(&p, &r) < 0)
		abort();
	return r;
}

/* A page server of a 64-page region accepts a destination whose control
 * connection carries the input, and serves it until it ends. */
static void serve(void)
{
	static struct gmem_region *src;
	struct gmem_server *s;

	if (!src) {
		src = region(0);
		memset(gmem_region_addr(src), 0x5a, NR_PAGES * PAGE);
	}
	if (gmem_server_listen(src, "fuzz:1", &s) < 0)
		abort();
	if (gmem_server_accept(s, 1000) == 0)
		gmem_server_serve(s, 1000);
	gmem_server_destroy(s);
}

/* A destination connects, takes pre-copy frames and the switchover
 * state, attaches and waits for completion, from the input. */
static void fetch(bool on_demand)
{
	struct gmem_remote_params rp = {
		.connect_ms = 1000,
		.flags = on_demand ? GMEM_REMOTE_ON_DEMAND : 0,
	};
	struct gmem_fault_params fp = { .nr_threads = 1 };
	struct gmem_region *r = region(GMEM_REGION_MISSING);
	struct gmem_source *src = NULL;
	struct gmem_remote *rm;
	int ret;

	ret = gmem_remote_connect("fuzz:1", &rp, &rm);
	if (ret == 0 && gmem_remote_precopy(rm, r, 20) < 0)
		ret = -1;
	if (ret == 0)
		ret = gmem_remote_source(rm, &src);
	if (ret == 0 && gmem_region_attach(r, src, &fp) == 0) {
		/* Complete and equal with a page never compared: the
		 * completion check was cut short. */
		if (gmem_remote_wait(rm, 200) == 0 && run.digested != ~0ULL)
			abort();
		gmem_region_detach(r);
	}
	gmem_source_destroy(src);
	gmem_remote_destroy(rm);
	gmem_region_destroy(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *frames;

	if (size < 2)
		return 0;
	if (!frames)
		frames = malloc(MAX_STREAM);
	if (!frames)
		abort();
	run = (struct fuzz_run){
		.dest = data[0] & 1, .chunk = data[1], .frames = frames,
	};
	run.frames_len = fix_frames(data + 2, size - 2, frames, &run.digested);
	if (run.dest)
		fetch(data[0] & 2);
	else
		serve();
	return 0;
}
