/* SPDX-License-Identifier: MIT */
/*
 * wire.h - framed connections on top of a transport, shared by the page
 * server and the remote source: the receive state machine (header, then
 * payload, each checked before use), framed sends and the HELLO exchange.
 */
#ifndef GMEM_WIRE_H
#define GMEM_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"
#include "transport/transport.h"

/* Receive side of one connection: one frame at a time into @buf. */
struct wire_rx {
	struct transport_req req;
	uint8_t *buf;        /* PROTO_HDR_LEN + @cap bytes */
	uint32_t cap;        /* largest payload accepted on this connection */
	uint32_t seq;        /* sequence number the next frame must carry */
	bool in_payload;
	struct proto_hdr hdr;
};

void wire_rx_init(struct wire_rx *rx, unsigned int conn, uint8_t *buf,
		  uint32_t cap);
/* Starts receiving the next frame's header. */
int wire_rx_start(struct transport *t, struct wire_rx *rx);
/*
 * Advances @rx after its request completed: returns 1 when a whole, checked
 * frame is in (rx->hdr, payload at wire_payload(rx)), 0 when the payload read
 * was submitted, or a negative errno with a reason in @why (-EPROTO for a
 * malformed frame, -ECONNRESET when the peer went away).
 */
int wire_rx_done(struct transport *t, struct wire_rx *rx,
		 const struct proto_geom *g, const char **why);

static inline uint8_t *wire_payload(const struct wire_rx *rx)
{
	return rx->buf + PROTO_HDR_LEN;
}

/* Moves one request to completion within @wait_ns; the endpoint must have
 * nothing else in flight (handshakes). On timeout the connection is shut
 * down and -ETIMEDOUT returned. */
int wire_xfer_sync(struct transport *t, struct transport_req *q,
		   int64_t wait_ns);
/* Sends HELLO (@buf: PROTO_HDR_LEN + PROTO_HELLO_LEN bytes of scratch). */
int wire_hello_send(struct transport *t, unsigned int conn, uint8_t *buf,
		    uint32_t seq, const struct proto_hello *hello,
		    int64_t wait_ns);
/* Receives and checks a HELLO into @hello. */
int wire_hello_recv(struct transport *t, struct wire_rx *rx,
		    struct proto_hello *hello, int64_t wait_ns,
		    const char **why);

#endif /* GMEM_WIRE_H */
