/* SPDX-License-Identifier: MIT */
/*
 * frame.h - framed connections on top of a transport, shared by the page
 * server and the remote source: the receive state machine (header, then
 * payload, each checked before use), framed sends and the HELLO exchange.
 */
#ifndef GMEM_WIRE_H
#define GMEM_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "wire/proto.h"
#include "wire/seal.h"
#include "transport/transport.h"

/*
 * Receive side of one connection: a stream buffer. Each read takes whatever
 * the socket holds (several frames, or part of one), so a small frame costs
 * one completion and a burst of frames costs one read. Frames are handed
 * out in place, checked, one at a time; a frame cut by the buffer's end is
 * moved to its start before the rest is read.
 */
struct wire_rx {
	struct transport_req req;
	uint8_t *buf;
	uint32_t size;       /* bytes of @buf, >= PROTO_HDR_LEN + @cap */
	uint32_t cap;        /* largest payload accepted on this connection */
	uint32_t head, tail; /* unparsed bytes are [head, tail) */
	uint32_t seq;        /* sequence number the next frame must carry */
	bool have_hdr;       /* @hdr holds the header at @head */
	bool have_frame;     /* ...and its payload is in: handed out */
	struct proto_hdr hdr;
	/* Frames after AUTH on a sealed connection: each is opened (-EBADMSG
	 * when it fails) before its header is decoded; off: crc32c. */
	struct seal open;
};

void wire_rx_init(struct wire_rx *rx, unsigned int conn, uint8_t *buf,
		  uint32_t size, uint32_t cap);
/* Starts reading (the first time, and after a handshake: bytes already
 * buffered stay). */
int wire_rx_start(struct transport *t, struct wire_rx *rx);
/*
 * After @rx's read completed: accounts its bytes and returns the next frame
 * as wire_rx_next() does.
 */
int wire_rx_done(struct transport *t, struct wire_rx *rx,
		 const struct proto_geom *g, const char **why);
/*
 * Drops the frame handed out last, if any, and returns 1 when the next whole,
 * checked frame is buffered (rx->hdr, payload at wire_payload(rx), valid
 * until the next call), 0 when a read was submitted for more, or a negative
 * errno with a reason in @why (-EPROTO malformed, -ECONNRESET peer gone,
 * -EBADMSG a sealed frame that fails authentication: changed, replayed,
 * reordered, cut, or sealed with another key; the caller treats it as a
 * broken link, as nothing of it can be trusted). @why stays valid until
 * this thread's next call.
 */
int wire_rx_next(struct transport *t, struct wire_rx *rx,
		 const struct proto_geom *g, const char **why);

/*
 * Call after a crc32c (proto_encode, proto_crc_ok): ISA-L's AVX-512 crc
 * returns with the upper halves of the vector registers dirty, and every
 * legacy-SSE instruction after it (libxxhash's XXH3, which hashes each page
 * installed or served) then pays an SSE/AVX transition: 3x slower here.
 */
void wire_simd_clean(void);

static inline uint8_t *wire_payload(const struct wire_rx *rx)
{
	return rx->buf + rx->head + PROTO_HDR_LEN;
}

/* Moves one request to completion within @wait_ns; the endpoint must have
 * nothing else in flight (handshakes). On timeout the connection is shut
 * down and -ETIMEDOUT returned. */
int wire_xfer_sync(struct transport *t, struct transport_req *q,
		   int64_t wait_ns);
/* Sends one frame, header @h (its seq included) and @h->len bytes of
 * @payload, copied into @buf (PROTO_HDR_LEN + @h->len bytes of scratch). */
int wire_frame_send(struct transport *t, unsigned int conn, uint8_t *buf,
		    const struct proto_hdr *h, const void *payload,
		    int64_t wait_ns);
/* Receives one frame of @type with exactly @len payload bytes, copied to
 * @payload; rx->hdr keeps its header. An ERROR instead returns the peer's
 * errno with its text in @why; another frame -EPROTO. */
int wire_frame_recv(struct transport *t, struct wire_rx *rx, uint8_t type,
		    void *payload, uint32_t len, int64_t wait_ns,
		    const char **why);
/* Bytes a frame of @len payload bytes takes on a connection (sealed: +tag). */
static inline uint32_t wire_frame_len(const struct seal *s, uint32_t len)
{
	return PROTO_HDR_LEN + len + (seal_on(s) ? SEAL_TAG_LEN : 0);
}

/*
 * Writes the frame of header @h (its seq included) and @h->len bytes of
 * @payload (NULL: already at @buf + PROTO_HDR_LEN) into @buf, as connection
 * direction @tx carries it: sealed (header, ciphertext, tag; the counter of
 * @tx advanced, so frames must be sent in the order they were encoded) or
 * in the clear (header with its crc32c, payload). Returns its bytes,
 * wire_frame_len().
 */
uint32_t wire_encode(struct seal *tx, uint8_t *buf, const struct proto_hdr *h,
		     const void *payload);

/* Sends HELLO (@buf: PROTO_HDR_LEN + PROTO_HELLO_LEN bytes of scratch). */
int wire_hello_send(struct transport *t, unsigned int conn, uint8_t *buf,
		    uint32_t seq, const struct proto_hello *hello,
		    int64_t wait_ns);
/* Receives and checks a HELLO into @hello. */
int wire_hello_recv(struct transport *t, struct wire_rx *rx,
		    struct proto_hello *hello, int64_t wait_ns,
		    const char **why);

#endif /* GMEM_WIRE_H */
