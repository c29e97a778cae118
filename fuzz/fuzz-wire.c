// SPDX-License-Identifier: MIT
/*
 * fuzz-wire.c - libFuzzer harness for what a page server or destination
 * reads from the network: the receive state machine and frame checks
 * (wire/frame.c, proto.c), the HELLO negotiation and the AUTH exchange (auth.c)
 * as a keyed server runs them, then any frames that follow, in the clear
 * or sealed (seal.c) with a fixed test key. A fake transport feeds the
 * input in reads of a size the input chooses.
 *
 * Input: byte 0 = mode (bit 0: recompute each frame's crc32c, or seal it
 * with the test key, so the fuzzer gets past the check; bit 1: run the
 * AUTH exchange after HELLO; bit 2: frames after HELLO are sealed with the
 * test key, as after AUTH; bit 3: ... by AES-256-GCM where this CPU has
 * it, else XChaCha20-Poly1305), byte 1 = bytes per read (0 = 1), then the
 * byte stream.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/crc.h>

#include "wire/auth.h"
#include "wire/frame.h"

#define RX_CAP (64U << 10)
#define MAX_PENDING 4

struct fake {
	const uint8_t *in;
	size_t len, off, chunk;
	struct transport_req *pending[MAX_PENDING];
	unsigned int nr;
};

static int fake_queue(struct transport *t, struct transport_req **reqs,
		      unsigned int nr)
{
	struct fake *f = t->priv;

	for (unsigned int i = 0; i < nr; i++) {
		if (f->nr == MAX_PENDING)
			return -EBUSY;
		f->pending[f->nr++] = reqs[i];
	}
	return 0;
}

/* Sends vanish; a receive takes the next chunk of input, or sees the end
 * of the stream. */
static int fake_poll(struct transport *t, struct transport_req **done,
		     unsigned int max, int64_t wait_ns)
{
	struct fake *f = t->priv;
	struct transport_req *q;
	size_t n;

	if (!f->nr || !max)
		return 0;
	q = f->pending[0];
	memmove(f->pending, f->pending + 1, --f->nr * sizeof(q));
	q->res = 0;
	q->done = q->len;
	if (q->dir == TRANSPORT_RECV) {
		n = f->len - f->off < f->chunk ? f->len - f->off : f->chunk;
		n = n < q->len ? n : q->len;
		memcpy(q->buf, f->in + f->off, n);
		f->off += n;
		q->done = n;
		q->res = n ? 0 : -ECONNRESET;
	}
	done[0] = q;
	return 1;
}

static int fake_send_now(struct transport *t, unsigned int conn,
			 const void *buf, size_t len)
{
	return 0;
}

static void fake_shutdown(struct transport *t, unsigned int conn)
{
}

static const struct transport_ops fake_ops = {
	.name = "fuzz",
	.submit = fake_queue,
	.queue = fake_queue,
	.poll = fake_poll,
	.send_now = fake_send_now,
	.shutdown = fake_shutdown,
};

/* The test key's secret, as auth.c would have derived it. */
static const uint8_t test_secret[SEAL_SECRET_LEN] = "fuzzing secret, 32 bytes long..";

/* Gives every whole frame in @buf its right crc32c (seed ~0, no final
 * xor, header bytes 0..27 then the payload: libgmem/wire/PROTOCOL.md); with @tx,
 * every frame after the first (HELLO) is sealed instead, its tag after
 * its payload. */
static void fix_frames(uint8_t *buf, size_t len, struct seal *tx)
{
	size_t off = 0;

	while (len - off >= PROTO_HDR_LEN) {
		uint8_t *h = buf + off;
		uint32_t plen, crc, tag = off && tx ? SEAL_TAG_LEN : 0;

		memcpy(&plen, h + 8, 4);
		plen = le32toh(plen);
		if (len - off - PROTO_HDR_LEN < tag)
			return;
		if (plen > len - off - PROTO_HDR_LEN - tag)
			plen = len - off - PROTO_HDR_LEN - tag;
		if (tag) {
			seal_encrypt(tx, h + PROTO_HDR_LEN, h + PROTO_HDR_LEN,
				     plen, h, PROTO_HDR_LEN);
		} else {
			crc = crc32_iscsi(h, 28, 0xffffffffU);
			crc = crc32_iscsi(h + PROTO_HDR_LEN, (int)plen, crc);
			crc = htole32(crc);
			memcpy(h + 28, &crc, 4);
		}
		off += PROTO_HDR_LEN + plen + tag;
	}
}

/* Every frame after the handshake, checked as a destination after HELLO
 * checks them (a 1000-page region). */
static void frames(struct transport *t, struct wire_rx *rx)
{
	static const struct proto_geom g = { .page_size = 4096,
					     .nr_pages = 1000 };
	struct transport_req *done;
	struct proto_hello hello;
	const char *why = "";
	int ret;

	for (;;) {
		ret = wire_rx_next(t, rx, &g, &why);
		while (ret == 0) {
			if (fake_poll(t, &done, 1, 0) <= 0)
				return;
			ret = wire_rx_done(t, rx, &g, &why);
		}
		if (ret < 0)
			return;
		if (rx->hdr.type == PROTO_HELLO)
			proto_hello_decode(wire_payload(rx), &hello, &why);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t rxbuf[PROTO_HDR_LEN + RX_CAP + 4096];
	static uint8_t txbuf[PROTO_HDR_LEN + PROTO_AUTH_LEN];
	uint8_t secret[SEAL_SECRET_LEN];
	struct auth_key key = { 0 };
	struct seal srv_tx, srv_rx;
	enum seal_cipher cipher = SEAL_NONE;
	struct fake f = { 0 };
	struct transport t = { .ops = &fake_ops, .priv = &f };
	struct proto_hello hello;
	struct wire_rx rx;
	const char *why = "";
	uint32_t seq = 1;
	uint8_t *in;
	int ret;

	if (size < 2)
		return 0;
	in = malloc(size - 2 ? size - 2 : 1);
	if (!in)
		return 0;
	memcpy(in, data + 2, size - 2);
	if (data[0] & 4)
		cipher = (data[0] & 8) && seal_aes_available()
				 ? SEAL_AES256GCM : SEAL_XCHACHA20POLY1305;
	if (cipher)
		seal_derive(test_secret, cipher, true, &srv_tx, &srv_rx);
	if (data[0] & 1)
		fix_frames(in, size - 2, cipher ? &srv_tx : NULL);
	f = (struct fake){ .in = in, .len = size - 2,
			   .chunk = data[1] ? data[1] : 1 };
	wire_rx_init(&rx, 0, rxbuf, sizeof(rxbuf), RX_CAP);
	ret = wire_hello_recv(&t, &rx, &hello, 1000000000LL, &why);
	if (ret == 0 && (data[0] & 2) &&
	    auth_key_set(&key, "fuzzing-key-0123456789", 22) == 0)
		ret = auth_server(&t, &rx, txbuf, &seq, &key, 42, hello.role,
				  1000000000LL, secret, &why);
	/* As a destination after AUTH: what the server seals opens here. */
	if (ret == 0 && cipher)
		seal_derive(test_secret, cipher, false, &srv_rx, &rx.open);
	if (ret == 0)
		frames(&t, &rx);
	free(in);
	return 0;
}
