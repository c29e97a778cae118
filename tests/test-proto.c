// SPDX-License-Identifier: MIT
/*
 * test-proto.c - the wire protocol's frames: encode/decode round trips, the
 * crc32c over header and payload, and every malformed frame rejected (bad
 * magic, version, type, flags, length, out-of-range offset, bad crc,
 * truncation, malformed AUTH). proto.c is compiled into this binary.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "wire/proto.h"

static const struct proto_geom geom = { .page_size = 4096, .nr_pages = 1000 };
static uint8_t frame[PROTO_HDR_LEN + 2 * 4096];

static const char *decode(struct proto_hdr *h)
{
	const char *why = "";

	cr_assert_eq(proto_decode(frame, &geom, h, &why), -EPROTO,
		     "frame accepted");
	return why;
}

static void encode(uint8_t type, uint16_t flags, uint32_t len, uint64_t pgoff,
		   uint32_t nr)
{
	struct proto_hdr h = { .type = type, .flags = flags, .len = len,
			       .seq = 7, .pgoff = pgoff, .nr = nr };

	proto_encode(frame, &h, frame + PROTO_HDR_LEN);
}

/* Patches the length field (little-endian, bytes 8..11) without encoding a
 * payload that long. */
static void patch_len(uint32_t len)
{
	for (int i = 0; i < 4; i++)
		frame[8 + i] = len >> (8 * i);
}

Test(proto, pages_round_trip, .timeout = 5)
{
	struct proto_hdr h;
	const char *why = "";

	memset(frame + PROTO_HDR_LEN, 0x3c, 2 * 4096);
	encode(PROTO_PAGES, PROTO_F_PUSH, 2 * 4096, 998, 2);
	cr_assert_eq(proto_decode(frame, &geom, &h, &why), 0, "%s", why);
	cr_assert_eq(h.type, PROTO_PAGES);
	cr_assert_eq(h.flags, PROTO_F_PUSH);
	cr_assert_eq(h.len, 8192);
	cr_assert_eq(h.seq, 7);
	cr_assert_eq(h.pgoff, 998);
	cr_assert_eq(h.nr, 2);
	cr_assert(proto_crc_ok(frame, frame + PROTO_HDR_LEN, h.len));
	/* Little-endian on the wire, magic first. */
	cr_assert_eq(memcmp(frame, "GMEM", 4), 0);
}

Test(proto, hello_round_trip, .timeout = 5)
{
	struct proto_hello in = { .role = PROTO_ROLE_SERVER, .page_size = 4096,
				  .nr_pages = 1 << 20,
				  .features = PROTO_FEATURES, .session = 42 };
	struct proto_hello out;
	const char *why = "";
	uint8_t buf[PROTO_HELLO_LEN];

	proto_hello_encode(buf, &in);
	cr_assert_eq(proto_hello_decode(buf, &out, &why), 0, "%s", why);
	cr_assert_eq(out.nr_pages, in.nr_pages);
	cr_assert_eq(out.session, 42);
	in.page_size = 8192;
	proto_hello_encode(buf, &in);
	cr_assert_eq(proto_hello_decode(buf, &out, &why), -EPROTO);
	in.page_size = 4096;
	in.features = 0;
	proto_hello_encode(buf, &in);
	cr_assert_eq(proto_hello_decode(buf, &out, &why), -EPROTO);
}

Test(proto, hello_carries_rdma_key_only_from_an_rdma_server, .timeout = 5)
{
	struct proto_hello in = { .role = PROTO_ROLE_SERVER, .page_size = 4096,
				  .nr_pages = 16,
				  .features = PROTO_FEATURES | PROTO_FEAT_RDMA,
				  .rkey = 0x1234, .raddr = 0x7f0000001000ULL };
	struct proto_hello out;
	const char *why = "";
	uint8_t buf[PROTO_HELLO_LEN];

	proto_hello_encode(buf, &in);
	cr_assert_eq(proto_hello_decode(buf, &out, &why), 0, "%s", why);
	cr_assert_eq(out.rkey, 0x1234);
	cr_assert_eq(out.raddr, 0x7f0000001000ULL);
	/* Without the feature the bytes are reserved, as in version 1. */
	in.features = PROTO_FEATURES;
	proto_hello_encode(buf, &in);
	cr_assert_eq(proto_hello_decode(buf, &out, &why), -EPROTO);
	cr_assert_str_eq(why, "HELLO: reserved fields not zero");
	/* A client has no key to give. */
	in.role = PROTO_ROLE_CONTROL;
	in.features = PROTO_FEATURES | PROTO_FEAT_RDMA;
	proto_hello_encode(buf, &in);
	cr_assert_eq(proto_hello_decode(buf, &out, &why), -EPROTO);
}

Test(proto, rejects_bad_magic, .timeout = 5)
{
	struct proto_hdr h;

	encode(PROTO_REQ, 0, 0, 1, 1);
	frame[0] ^= 1;
	cr_assert_str_eq(decode(&h), "bad magic");
}

Test(proto, rejects_bad_version, .timeout = 5)
{
	struct proto_hdr h;

	encode(PROTO_REQ, 0, 0, 1, 1);
	frame[4] = PROTO_VERSION + 1;
	cr_assert_str_eq(decode(&h), "unsupported protocol version");
}

Test(proto, rejects_unknown_type, .timeout = 5)
{
	struct proto_hdr h;

	encode(0, 0, 0, 0, 0);
	cr_assert_str_eq(decode(&h), "unknown frame type");
	encode(PROTO_TYPE_MAX + 1, 0, 0, 0, 0);
	cr_assert_str_eq(decode(&h), "unknown frame type");
}

Test(proto, rejects_bad_flags, .timeout = 5)
{
	struct proto_hdr h;

	encode(PROTO_PAGES, PROTO_F_PUSH | PROTO_F_URGENT, 4096, 0, 1);
	decode(&h);
	encode(PROTO_PAGES, 0x80, 4096, 0, 1);
	decode(&h);
	encode(PROTO_REQ, PROTO_F_PUSH, 0, 0, 1);
	cr_assert_str_eq(decode(&h), "REQ flags other than PREFETCH");
	encode(PROTO_REQ, PROTO_F_PREFETCH | PROTO_F_URGENT, 0, 0, 1);
	cr_assert_str_eq(decode(&h), "REQ flags other than PREFETCH");
}

/* A fault-around hint and its answer: the only flag a REQ may carry, and
 * one more reason for PAGES. */
Test(proto, accepts_prefetch_flags, .timeout = 5)
{
	struct proto_hdr h;
	const char *why = "";

	encode(PROTO_REQ, PROTO_F_PREFETCH, 0, 10, 15);
	cr_assert_eq(proto_decode(frame, &geom, &h, &why), 0, "%s", why);
	cr_assert_eq(h.flags, PROTO_F_PREFETCH);
	encode(PROTO_PAGES, PROTO_F_PREFETCH, 4096, 10, 1);
	cr_assert_eq(proto_decode(frame, &geom, &h, &why), 0, "%s", why);
	cr_assert_eq(h.flags, PROTO_F_PREFETCH);
}

Test(proto, rejects_bad_lengths, .timeout = 5)
{
	struct proto_hdr h;

	encode(PROTO_PAGES, PROTO_F_PUSH, 4095, 0, 1);
	cr_assert_str_eq(decode(&h), "PAGES length is not nr * page size");
	encode(PROTO_PAGES, PROTO_F_PUSH, 0, 0, 1025);
	patch_len(PROTO_MAX_PAYLOAD + 4096);
	cr_assert_str_eq(decode(&h), "frame longer than the protocol allows");
	encode(PROTO_HELLO, 0, 12, 0, 0);
	decode(&h);
	encode(PROTO_REQ, 0, 8, 0, 1);
	decode(&h);
	encode(PROTO_NEED, 0, 8, 0, 65);
	decode(&h);
	encode(PROTO_DIGEST, 0, 16, 0, 3);
	decode(&h);
	encode(PROTO_STATE, 0, 0, 0, 0);
	patch_len(PROTO_MAX_STATE_LEN + 1);
	decode(&h);
	encode(PROTO_ERROR, 0, 0, 0, 0);
	patch_len(PROTO_MAX_ERROR_LEN + 1);
	decode(&h);
}

Test(proto, rejects_out_of_range_pages, .timeout = 5)
{
	struct proto_hdr h;

	encode(PROTO_PAGES, PROTO_F_PUSH, 2 * 4096, 999, 2);
	cr_assert_str_eq(decode(&h), "page range outside the region");
	encode(PROTO_REQ, 0, 0, 1000, 1);
	decode(&h);
	encode(PROTO_REQ, 0, 0, 0, 0);
	decode(&h);
	/* pgoff + nr wrapping around 2^64 */
	encode(PROTO_DIGEST_REQ, 0, 0, UINT64_MAX, 2);
	decode(&h);
	encode(PROTO_NEED, 0, 8, 32, 1);
	cr_assert_str_eq(decode(&h), "bitmap chunk not 64-page aligned");
	encode(PROTO_REQ, 0, 0, 0, PROTO_MAX_REQ_PAGES + 1);
	decode(&h);
}

/* AUTH passes before HELLO gave a geometry (it follows HELLO, and the
 * destination's connections check it with none), with its exact shape. */
Test(proto, auth_frame_rules, .timeout = 5)
{
	static const struct proto_geom none;
	struct proto_hdr h;
	const char *why = "";

	encode(PROTO_AUTH, 0, PROTO_AUTH_LEN, 0, PROTO_AUTH_CLIENT);
	cr_assert_eq(proto_decode(frame, &none, &h, &why), 0, "%s", why);
	cr_assert_eq(h.nr, PROTO_AUTH_CLIENT);
	cr_assert_str_eq(proto_type_name(PROTO_AUTH), "AUTH");
	encode(PROTO_AUTH, 0, PROTO_AUTH_LEN - 1, 0, PROTO_AUTH_CLIENT);
	cr_assert_str_eq(decode(&h), "bad AUTH frame");
	encode(PROTO_AUTH, 0, PROTO_AUTH_LEN, 0, 0);
	cr_assert_str_eq(decode(&h), "bad AUTH frame");
	encode(PROTO_AUTH, 0, PROTO_AUTH_LEN, 0, PROTO_AUTH_SERVER + 1);
	cr_assert_str_eq(decode(&h), "bad AUTH frame");
	encode(PROTO_AUTH, 0, PROTO_AUTH_LEN, 1, PROTO_AUTH_SERVER);
	cr_assert_str_eq(decode(&h), "bad AUTH frame");
	encode(PROTO_AUTH, PROTO_F_PUSH, PROTO_AUTH_LEN, 0, PROTO_AUTH_SERVER);
	cr_assert_str_eq(decode(&h), "flags set on a frame that has none");
}

Test(proto, rejects_frames_before_hello, .timeout = 5)
{
	static const struct proto_geom none;
	struct proto_hdr h;
	const char *why = "";

	encode(PROTO_REQ, 0, 0, 0, 1);
	cr_assert_eq(proto_decode(frame, &none, &h, &why), -EPROTO);
	cr_assert_str_eq(why, "frame before HELLO");
}

Test(proto, detects_corruption_by_crc, .timeout = 5)
{
	struct proto_hdr h;
	const char *why = "";

	memset(frame + PROTO_HDR_LEN, 0x11, 4096);
	encode(PROTO_PAGES, PROTO_F_URGENT, 4096, 5, 1);
	cr_assert_eq(proto_decode(frame, &geom, &h, &why), 0);
	frame[PROTO_HDR_LEN + 100] ^= 4;
	cr_assert_not(proto_crc_ok(frame, frame + PROTO_HDR_LEN, 4096));
	frame[PROTO_HDR_LEN + 100] ^= 4;
	cr_assert(proto_crc_ok(frame, frame + PROTO_HDR_LEN, 4096));
	/* The header is covered too: a changed sequence number shows. */
	frame[12] ^= 1;
	cr_assert_not(proto_crc_ok(frame, frame + PROTO_HDR_LEN, 4096));
}

Test(proto, detects_truncated_payload, .timeout = 5)
{
	memset(frame + PROTO_HDR_LEN, 0x22, 2 * 4096);
	encode(PROTO_PAGES, PROTO_F_PUSH, 2 * 4096, 0, 2);
	/* A receiver that got fewer bytes can only check what it has. */
	cr_assert_not(proto_crc_ok(frame, frame + PROTO_HDR_LEN, 4096));
}
