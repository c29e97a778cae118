/* SPDX-License-Identifier: MIT */
/*
 * proto.h - the page server's wire protocol (libgmem/wire/PROTOCOL.md): frame
 * header layout, message types and the encode/decode helpers that check
 * every field from the wire before anything else looks at it.
 */
#ifndef GMEM_PROTO_H
#define GMEM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC 0x4d454d47U /* "GMEM" as little-endian bytes */
#define PROTO_VERSION 1
#define PROTO_HDR_LEN 32U
/* Largest payload of any frame: bounds every receive buffer. */
#define PROTO_MAX_PAYLOAD (4U << 20)
/* Bitmap chunks (NEED, STALE) and digest chunks stay within 1 MiB. */
#define PROTO_MAX_BITMAP_LEN (1U << 20)
#define PROTO_MAX_DIGESTS (PROTO_MAX_BITMAP_LEN / 8)
#define PROTO_MAX_STATE_LEN (64U << 10)
#define PROTO_MAX_ERROR_LEN 256U
/* Bulk connections one destination may open (besides its control and
 * fault-around connections). */
#define PROTO_MAX_BULK 8U
/* Connections of one session: control, bulk and fault-around. */
#define PROTO_MAX_CONNS (2 + PROTO_MAX_BULK)
/* Pages one REQ may ask for. */
#define PROTO_MAX_REQ_PAGES 512U

enum proto_type {
	PROTO_HELLO = 1,      /* both ways: geometry, features, role */
	PROTO_REQ = 2,        /* dst->src: urgent request for [pgoff, +nr) */
	PROTO_PAGES = 3,      /* src->dst: nr pages from pgoff, PROTO_F_* */
	PROTO_NEED = 4,       /* dst->src: bitmap chunk of pages to push */
	PROTO_STALE = 5,      /* src->dst: bitmap chunk of stale pages */
	PROTO_STATE = 6,      /* src->dst: device state; ends pre-copy */
	PROTO_DIGEST_REQ = 7, /* dst->src: digests of [pgoff, +nr) wanted */
	PROTO_DIGEST = 8,     /* src->dst: nr XXH3-64 digests from pgoff */
	PROTO_DONE = 9,       /* dst->src: completion, nr = mismatching pages */
	PROTO_ERROR = 10,     /* either way: pgoff = errno, text payload */
	PROTO_AUTH = 11,      /* handshake: nr = step, nonce and HMAC */
	PROTO_TYPE_MAX = PROTO_AUTH,
};

/* PAGES flags: why the pages were sent. */
#define PROTO_F_URGENT (1U << 0)  /* answer to a REQ */
#define PROTO_F_PUSH (1U << 1)    /* background push */
#define PROTO_F_PRECOPY (1U << 2) /* pre-copy round: fill, do not install */
/* REQ: the pages are a fault-around hint, no fault waits on them (with
 * PROTO_FEAT_PREFETCH agreed); PAGES: the answer to such a REQ. */
#define PROTO_F_PREFETCH (1U << 3)
#define PROTO_F_MASK \
	(PROTO_F_URGENT | PROTO_F_PUSH | PROTO_F_PRECOPY | PROTO_F_PREFETCH)

/* HELLO roles. */
enum proto_role {
	PROTO_ROLE_SERVER = 0,
	PROTO_ROLE_CONTROL = 1, /* the destination's first (urgent) connection */
	PROTO_ROLE_BULK = 2,    /* further connections of the same session */
	PROTO_ROLE_PREFETCH = 3, /* the fault-around one, after the bulk ones */
};

/* Feature bits negotiated in HELLO (the intersection is used). */
#define PROTO_FEAT_CRC32C (1ULL << 0) /* payload checksums (mandatory) */
#define PROTO_FEAT_DIGEST (1ULL << 1) /* DIGEST_REQ/DIGEST completion check */
#define PROTO_FEAT_AUTH (1ULL << 2)   /* AUTH exchange after HELLO (a key) */
/* Control client: this connection set resumes the paused session @session
 * after a broken link (post-copy recovery); the server echoes it when it
 * takes the set back. Never offered in a first HELLO. */
#define PROTO_FEAT_RESUME (1ULL << 4)
/* Pages by one-sided RDMA READs of the source's registered region (the
 * destination asks, the server offers it or leaves the bit out). */
#define PROTO_FEAT_RDMA (1ULL << 3)
/* REQ may carry PROTO_F_PREFETCH: the server answers it on a connection of
 * its own (role PROTO_ROLE_PREFETCH, opened after the bulk ones), so a
 * fault's own page never waits behind the pages around the last fault, nor
 * those behind the push (QEMU's postcopy-preempt channel, the other way
 * round). */
#define PROTO_FEAT_PREFETCH (1ULL << 5)
/* With AUTH: every frame after it is encrypted and authenticated (the
 * header as associated data, a tag after the payload, no crc32c): seal.h.
 * Offered only with a key; a keyed end refuses a peer without it. */
#define PROTO_FEAT_SEAL (1ULL << 6)
/* With SEAL: this end runs AES-256-GCM at speed (AES-NI); both offering it
 * selects it, else XChaCha20-Poly1305. */
#define PROTO_FEAT_AES256GCM (1ULL << 7)
#define PROTO_FEATURES \
	(PROTO_FEAT_CRC32C | PROTO_FEAT_DIGEST | PROTO_FEAT_PREFETCH)

/* AUTH frames: nr is the step, the payload a nonce then an HMAC-SHA256. */
#define PROTO_AUTH_NONCE_LEN 32U
#define PROTO_AUTH_MAC_LEN 32U
#define PROTO_AUTH_LEN (PROTO_AUTH_NONCE_LEN + PROTO_AUTH_MAC_LEN)
enum proto_auth_step {
	PROTO_AUTH_CHALLENGE = 1, /* server: its nonce */
	PROTO_AUTH_CLIENT = 2,    /* destination: its nonce and proof */
	PROTO_AUTH_SERVER = 3,    /* server: its proof */
};

/* A decoded header, host byte order. */
struct proto_hdr {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint32_t len; /* payload bytes */
	uint32_t seq;
	uint64_t pgoff;
	uint32_t nr;
	uint32_t crc; /* crc32c of header bytes 0..27 and the payload */
};

#define PROTO_HELLO_LEN 48U
struct proto_hello {
	uint32_t role;       /* enum proto_role */
	uint32_t page_size;  /* server: region page size; clients: 0 */
	uint64_t nr_pages;   /* server: region pages; clients: 0 */
	uint64_t features;   /* PROTO_FEAT_* offered (server: agreed) */
	uint64_t session;    /* server: id; bulk clients echo it */
	uint32_t nr_bulk;    /* control client: bulk connections to follow */
	uint32_t rkey;       /* server with PROTO_FEAT_RDMA: the region's key */
	uint64_t raddr;      /* ... and its address; 0 otherwise */
};

/* What the receiver knows of the region; zero before HELLO. */
struct proto_geom {
	uint32_t page_size;
	uint64_t nr_pages;
};

/* Writes a header (and its crc over @payload) into @buf. */
void proto_encode(void *buf, const struct proto_hdr *h, const void *payload);
/* Writes a header with a zero crc field: a sealed frame's, whose tag
 * covers it and the payload. */
void proto_encode_sealed(void *buf, const struct proto_hdr *h);
/*
 * Checks a received header: magic, version, type, length and every range
 * against @g (ranges need a geometry: before HELLO only HELLO, AUTH and
 * ERROR pass). Returns 0 and fills @h, or -EPROTO with a reason in @why.
 */
int proto_decode(const void *buf, const struct proto_geom *g,
		 struct proto_hdr *h, const char **why);
/* Checks the crc of a decoded frame once its payload is in. */
bool proto_crc_ok(const void *hdr_buf, const void *payload, uint32_t len);

void proto_hello_encode(void *buf, const struct proto_hello *hello);
int proto_hello_decode(const void *buf, struct proto_hello *hello,
		       const char **why);

/* Bytes of a bitmap chunk of @nr_bits bits (whole 64-bit words). */
static inline uint32_t proto_bitmap_len(uint64_t nr_bits)
{
	return (uint32_t)((nr_bits + 63) / 64 * 8);
}

const char *proto_type_name(unsigned int type);

#endif /* GMEM_PROTO_H */
