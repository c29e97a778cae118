// SPDX-License-Identifier: MIT
/*
 * frame.c - framed connections over a transport: a frame is received as a
 * header, checked field by field (proto_decode), then its payload, checked
 * by crc32c, before the caller may look at it. Also the synchronous
 * handshake helpers used while nothing else is in flight.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "wire/frame.h"

void wire_rx_init(struct wire_rx *rx, unsigned int conn, uint8_t *buf,
		  uint32_t size, uint32_t cap)
{
	memset(rx, 0, sizeof(*rx));
	rx->req.conn = conn;
	rx->req.dir = TRANSPORT_RECV;
	rx->req.partial = true;
	rx->buf = buf;
	rx->size = size;
	rx->cap = cap;
}

void wire_simd_clean(void)
{
#if defined(__x86_64__)
	/* vzeroupper faults where there is no AVX. */
	if (__builtin_cpu_supports("avx"))
		__asm__ volatile("vzeroupper");
#endif
}

/* Reads whatever comes into the free end of the buffer, making room first
 * for the whole of the frame at @head. */
int wire_rx_start(struct transport *t, struct wire_rx *rx)
{
	struct transport_req *q = &rx->req;
	uint32_t need = rx->have_hdr ? wire_frame_len(&rx->open, rx->hdr.len)
				     : PROTO_HDR_LEN;

	if (rx->head == rx->tail) {
		rx->head = 0;
		rx->tail = 0;
	} else if (rx->head + need > rx->size) {
		memmove(rx->buf, rx->buf + rx->head, rx->tail - rx->head);
		rx->tail -= rx->head;
		rx->head = 0;
	}
	q->buf = rx->buf + rx->tail;
	q->len = rx->size - rx->tail;
	/* Handed over by the owner's next submit or poll. */
	return t->ops->queue(t, &q, 1);
}

/* Decodes the header at @head once enough bytes are in. */
static int rx_header(struct wire_rx *rx, const struct proto_geom *g,
		     const char **why)
{
	int ret = proto_decode(rx->buf + rx->head, g, &rx->hdr, why);

	if (ret < 0)
		return ret;
	if (rx->hdr.seq != rx->seq) {
		*why = "frame out of sequence";
		return -EPROTO;
	}
	if (rx->hdr.len > rx->cap) {
		*why = "frame too long for this connection";
		return -EPROTO;
	}
	rx->have_hdr = true;
	return 0;
}

/* "receive failed: " and the errno's words, for the caller to print at
 * once (one buffer per thread). */
static const char *rx_failed(int ret)
{
	static __thread char why[80];

	snprintf(why, sizeof(why), "receive failed: %s", strerror(-ret));
	return why;
}

/*
 * A sealed frame's header is trusted only once the frame opened: until then
 * only its length is read, to know where the tag ends. A length beyond the
 * connection's cap cannot come from the peer holding the key.
 */
static int rx_sealed_len(struct wire_rx *rx, const char **why)
{
	uint32_t len;

	memcpy(&len, rx->buf + rx->head + 8, sizeof(len));
	len = le32toh(len);
	if (len > rx->cap) {
		*why = "sealed frame failed authentication (bad length)";
		return -EBADMSG;
	}
	rx->hdr.len = len;
	rx->have_hdr = true;
	return 0;
}

/* Opens the whole sealed frame at @head in place, then checks its header
 * as any other. */
static int rx_open(struct wire_rx *rx, const struct proto_geom *g,
		   const char **why)
{
	uint8_t *hdr = rx->buf + rx->head;

	if (seal_decrypt(&rx->open, hdr + PROTO_HDR_LEN, rx->hdr.len, hdr,
			 PROTO_HDR_LEN) < 0) {
		*why = "sealed frame failed authentication (changed, replayed, "
		       "reordered, cut or another key)";
		return -EBADMSG;
	}
	return rx_header(rx, g, why);
}

/* Drops the frame handed out last. */
static void rx_consume(struct wire_rx *rx)
{
	if (!rx->have_frame)
		return;
	rx->head += wire_frame_len(&rx->open, rx->hdr.len);
	rx->have_frame = false;
	rx->have_hdr = false;
}

int wire_rx_next(struct transport *t, struct wire_rx *rx,
		 const struct proto_geom *g, const char **why)
{
	int ret;

	rx_consume(rx);
	if (!rx->have_hdr && rx->tail - rx->head >= PROTO_HDR_LEN) {
		ret = seal_on(&rx->open) ? rx_sealed_len(rx, why)
					 : rx_header(rx, g, why);
		if (ret < 0)
			return ret;
	}
	if (rx->have_hdr && seal_on(&rx->open) &&
	    rx->tail - rx->head >= wire_frame_len(&rx->open, rx->hdr.len)) {
		ret = rx_open(rx, g, why);
		if (ret < 0)
			return ret;
		rx->seq++;
		rx->have_frame = true;
		return 1;
	}
	if (rx->have_hdr && !seal_on(&rx->open) &&
	    rx->tail - rx->head >= PROTO_HDR_LEN + rx->hdr.len) {
		bool ok = proto_crc_ok(rx->buf + rx->head, wire_payload(rx),
				       rx->hdr.len);

		wire_simd_clean();
		if (!ok) {
			*why = "payload checksum (crc32c) mismatch";
			return -EPROTO;
		}
		rx->seq++;
		rx->have_frame = true;
		return 1;
	}
	ret = wire_rx_start(t, rx);
	if (ret < 0)
		*why = rx_failed(ret);
	return ret;
}

int wire_rx_done(struct transport *t, struct wire_rx *rx,
		 const struct proto_geom *g, const char **why)
{
	int ret = rx->req.res;

	if (ret < 0) {
		*why = ret == -ECONNRESET ? "peer closed the connection"
					  : rx_failed(ret);
		return ret;
	}
	rx->tail += rx->req.done;
	return wire_rx_next(t, rx, g, why);
}

/* Waits for the one request in flight. On timeout its connection is shut
 * down, which ends the request, and it is reaped: its buffer is free again. */
static int wait_one(struct transport *t, struct transport_req *q,
		    int64_t wait_ns)
{
	uint64_t deadline = wait_ns < 0 ? UINT64_MAX : now_ns() + wait_ns;
	struct transport_req *done;
	int ret;

	for (;;) {
		uint64_t now = now_ns();

		if (now >= deadline)
			break;
		/* A short transfer resubmitted inside the transport wakes
		 * the poll without completing: loop until the deadline. */
		ret = t->ops->poll(t, &done, 1, deadline - now > INT64_MAX ?
						 -1 : (int64_t)(deadline - now));
		if (ret != 0)
			return ret < 0 ? ret : q->res;
	}
	t->ops->shutdown(t, q->conn);
	for (int i = 0; i < 100; i++)
		if (t->ops->poll(t, &done, 1, 10000000) != 0)
			break;
	return -ETIMEDOUT;
}

int wire_xfer_sync(struct transport *t, struct transport_req *q,
		   int64_t wait_ns)
{
	int ret = t->ops->submit(t, &q, 1);

	return ret < 0 ? ret : wait_one(t, q, wait_ns);
}

int wire_frame_send(struct transport *t, unsigned int conn, uint8_t *buf,
		    const struct proto_hdr *h, const void *payload,
		    int64_t wait_ns)
{
	struct transport_req q = {
		.conn = conn, .dir = TRANSPORT_SEND, .buf = buf,
		.len = PROTO_HDR_LEN + h->len,
	};

	memcpy(buf + PROTO_HDR_LEN, payload, h->len);
	proto_encode(buf, h, buf + PROTO_HDR_LEN);
	return wire_xfer_sync(t, &q, wait_ns);
}

uint32_t wire_encode(struct seal *tx, uint8_t *buf, const struct proto_hdr *h,
		     const void *payload)
{
	uint8_t *body = buf + PROTO_HDR_LEN;

	if (!payload)
		payload = body;
	if (seal_on(tx)) {
		proto_encode_sealed(buf, h);
		seal_encrypt(tx, body, payload, h->len, buf, PROTO_HDR_LEN);
	} else {
		if (payload != body)
			memcpy(body, payload, h->len);
		proto_encode(buf, h, body);
	}
	return wire_frame_len(tx, h->len);
}

int wire_hello_send(struct transport *t, unsigned int conn, uint8_t *buf,
		    uint32_t seq, const struct proto_hello *hello,
		    int64_t wait_ns)
{
	struct proto_hdr h = {
		.type = PROTO_HELLO, .len = PROTO_HELLO_LEN, .seq = seq,
	};
	uint8_t payload[PROTO_HELLO_LEN];

	proto_hello_encode(payload, hello);
	return wire_frame_send(t, conn, buf, &h, payload, wait_ns);
}

/* An ERROR in place of the frame wanted: the peer's errno and reason. */
static int refused(const struct wire_rx *rx, const char **why)
{
	const char *text = (const char *)wire_payload(rx);
	uint64_t err = rx->hdr.pgoff;

	*why = rx->hdr.len && memchr(text, 0, rx->hdr.len) ?
		       text : "peer refused the session";
	return err > 0 && err < 4096 ? -(int)err : -EPROTO;
}

int wire_frame_recv(struct transport *t, struct wire_rx *rx, uint8_t type,
		    void *payload, uint32_t len, int64_t wait_ns,
		    const char **why)
{
	static const struct proto_geom none;
	int ret = wire_rx_next(t, rx, &none, why);

	while (ret == 0) {
		ret = wait_one(t, &rx->req, wait_ns);
		if (ret == -ETIMEDOUT)
			*why = "no answer in time";
		if (ret < 0 && ret != rx->req.res)
			return ret; /* the transport itself failed */
		ret = wire_rx_done(t, rx, &none, why);
	}
	if (ret < 0)
		return ret;
	if (rx->hdr.type == PROTO_ERROR)
		return refused(rx, why);
	if (rx->hdr.type != type || rx->hdr.len != len) {
		*why = type == PROTO_HELLO ? "first frame is not HELLO"
					   : "unexpected frame in the handshake";
		return -EPROTO;
	}
	memcpy(payload, wire_payload(rx), len);
	/* Handshake frames alternate, but the server may send two in a row:
	 * wire_rx_start()/wire_rx_next() go on from the bytes after it. */
	rx_consume(rx);
	return 0;
}

int wire_hello_recv(struct transport *t, struct wire_rx *rx,
		    struct proto_hello *hello, int64_t wait_ns,
		    const char **why)
{
	uint8_t payload[PROTO_HELLO_LEN];
	int ret = wire_frame_recv(t, rx, PROTO_HELLO, payload, sizeof(payload),
				  wait_ns, why);

	return ret < 0 ? ret : proto_hello_decode(payload, hello, why);
}
