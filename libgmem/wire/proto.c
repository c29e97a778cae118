// SPDX-License-Identifier: MIT
/*
 * proto.c - encode and check the page server's frames (libgmem/wire/PROTOCOL.md).
 * Little-endian on the wire; crc32c from ISA-L. Knows nothing of sockets:
 * the transport moves bytes, this file says whether they make a frame.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <isa-l/crc.h>

#include "wire/proto.h"

#define CRC_INIT 0xffffffffU
#define HDR_CRC_OFF 28U

static const char *const type_names[] = {
	[PROTO_HELLO] = "HELLO",	   [PROTO_REQ] = "REQ",
	[PROTO_PAGES] = "PAGES",	   [PROTO_NEED] = "NEED",
	[PROTO_STALE] = "STALE",	   [PROTO_STATE] = "STATE",
	[PROTO_DIGEST_REQ] = "DIGEST_REQ", [PROTO_DIGEST] = "DIGEST",
	[PROTO_DONE] = "DONE",		   [PROTO_ERROR] = "ERROR",
	[PROTO_AUTH] = "AUTH",
};

const char *proto_type_name(unsigned int type)
{
	if (type == 0 || type > PROTO_TYPE_MAX)
		return "unknown";
	return type_names[type];
}

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static uint32_t frame_crc(const uint8_t *hdr, const void *payload,
			  uint32_t len)
{
	uint32_t crc = crc32_iscsi((unsigned char *)hdr, HDR_CRC_OFF, CRC_INIT);

	if (len)
		crc = crc32_iscsi((unsigned char *)payload, (int)len, crc);
	return crc;
}

static void encode_fields(uint8_t *p, const struct proto_hdr *h)
{
	put32(p, PROTO_MAGIC);
	p[4] = PROTO_VERSION;
	p[5] = h->type;
	put16(p + 6, h->flags);
	put32(p + 8, h->len);
	put32(p + 12, h->seq);
	put64(p + 16, h->pgoff);
	put32(p + 24, h->nr);
}

void proto_encode(void *buf, const struct proto_hdr *h, const void *payload)
{
	uint8_t *p = buf;

	encode_fields(p, h);
	put32(p + HDR_CRC_OFF, frame_crc(p, payload, h->len));
}

void proto_encode_sealed(void *buf, const struct proto_hdr *h)
{
	uint8_t *p = buf;

	encode_fields(p, h);
	put32(p + HDR_CRC_OFF, 0);
}

bool proto_crc_ok(const void *hdr_buf, const void *payload, uint32_t len)
{
	const uint8_t *p = hdr_buf;

	return get32(p + HDR_CRC_OFF) == frame_crc(p, payload, len);
}

static bool in_region(const struct proto_geom *g, uint64_t pgoff, uint64_t nr)
{
	return nr >= 1 && pgoff < g->nr_pages && nr <= g->nr_pages - pgoff;
}

#define REJECT(msg)               \
	do {                      \
		*why = (msg);     \
		return -EPROTO;   \
	} while (0)

/* Length and range rules of the frames that carry page ranges. */
static int check_ranged(const struct proto_geom *g, const struct proto_hdr *h,
			const char **why)
{
	if (!in_region(g, h->pgoff, h->nr))
		REJECT("page range outside the region");
	switch (h->type) {
	case PROTO_REQ:
		if (h->len || h->nr > PROTO_MAX_REQ_PAGES)
			REJECT("bad REQ length or page count");
		return 0;
	case PROTO_PAGES:
		if ((uint64_t)h->nr * g->page_size != h->len)
			REJECT("PAGES length is not nr * page size");
		if (!h->flags || (h->flags & ~PROTO_F_MASK) ||
		    (h->flags & (h->flags - 1)))
			REJECT("PAGES flags must name one reason");
		return 0;
	case PROTO_NEED:
	case PROTO_STALE:
		if (h->pgoff % 64)
			REJECT("bitmap chunk not 64-page aligned");
		if (h->len != proto_bitmap_len(h->nr) ||
		    h->len > PROTO_MAX_BITMAP_LEN)
			REJECT("bad bitmap chunk length");
		return 0;
	case PROTO_DIGEST_REQ:
		if (h->len || h->nr > PROTO_MAX_DIGESTS)
			REJECT("bad DIGEST_REQ length or count");
		return 0;
	default: /* PROTO_DIGEST */
		if (h->nr > PROTO_MAX_DIGESTS || h->len != h->nr * 8U)
			REJECT("DIGEST length is not nr * 8");
		return 0;
	}
}

static int check_type(const struct proto_geom *g, const struct proto_hdr *h,
		      const char **why)
{
	if (h->type == PROTO_REQ && h->flags & ~PROTO_F_PREFETCH)
		REJECT("REQ flags other than PREFETCH");
	if (h->type != PROTO_PAGES && h->type != PROTO_REQ && h->flags)
		REJECT("flags set on a frame that has none");
	switch (h->type) {
	case PROTO_HELLO:
		if (h->len != PROTO_HELLO_LEN || h->pgoff || h->nr)
			REJECT("bad HELLO length");
		return 0;
	case PROTO_ERROR:
		if (h->len > PROTO_MAX_ERROR_LEN)
			REJECT("ERROR text too long");
		return 0;
	case PROTO_AUTH:
		if (h->len != PROTO_AUTH_LEN || h->pgoff ||
		    h->nr < PROTO_AUTH_CHALLENGE || h->nr > PROTO_AUTH_SERVER)
			REJECT("bad AUTH frame");
		return 0;
	}
	if (!g->page_size || !g->nr_pages)
		REJECT("frame before HELLO");
	switch (h->type) {
	case PROTO_STATE:
		if (h->len > PROTO_MAX_STATE_LEN || h->nr)
			REJECT("bad STATE length");
		return 0;
	case PROTO_DONE:
		if (h->len || h->pgoff || h->nr > g->nr_pages)
			REJECT("bad DONE frame");
		return 0;
	default:
		return check_ranged(g, h, why);
	}
}

int proto_decode(const void *buf, const struct proto_geom *g,
		 struct proto_hdr *h, const char **why)
{
	const uint8_t *p = buf;

	if (get32(p) != PROTO_MAGIC)
		REJECT("bad magic");
	h->version = p[4];
	h->type = p[5];
	h->flags = get16(p + 6);
	h->len = get32(p + 8);
	h->seq = get32(p + 12);
	h->pgoff = get64(p + 16);
	h->nr = get32(p + 24);
	h->crc = get32(p + HDR_CRC_OFF);
	if (h->version != PROTO_VERSION)
		REJECT("unsupported protocol version");
	if (h->type == 0 || h->type > PROTO_TYPE_MAX)
		REJECT("unknown frame type");
	if (h->len > PROTO_MAX_PAYLOAD)
		REJECT("frame longer than the protocol allows");
	return check_type(g, h, why);
}

void proto_hello_encode(void *buf, const struct proto_hello *hello)
{
	uint8_t *p = buf;

	memset(p, 0, PROTO_HELLO_LEN);
	put32(p, hello->role);
	put32(p + 4, hello->page_size);
	put64(p + 8, hello->nr_pages);
	put64(p + 16, hello->features);
	put64(p + 24, hello->session);
	put32(p + 32, hello->nr_bulk);
	put32(p + 36, hello->rkey);
	put64(p + 40, hello->raddr);
}

int proto_hello_decode(const void *buf, struct proto_hello *hello,
		       const char **why)
{
	const uint8_t *p = buf;

	hello->role = get32(p);
	hello->page_size = get32(p + 4);
	hello->nr_pages = get64(p + 8);
	hello->features = get64(p + 16);
	hello->session = get64(p + 24);
	hello->nr_bulk = get32(p + 32);
	hello->rkey = get32(p + 36);
	hello->raddr = get64(p + 40);
	if (hello->role > PROTO_ROLE_PREFETCH)
		REJECT("HELLO: unknown role");
	if ((hello->rkey || hello->raddr) &&
	    (hello->role != PROTO_ROLE_SERVER ||
	     !(hello->features & PROTO_FEAT_RDMA)))
		REJECT("HELLO: reserved fields not zero");
	if (!(hello->features & PROTO_FEAT_CRC32C))
		REJECT("HELLO: peer does not checksum payloads");
	if (hello->nr_bulk > PROTO_MAX_BULK)
		REJECT("HELLO: too many bulk connections");
	if (hello->role != PROTO_ROLE_SERVER)
		return 0;
	if (hello->page_size != 4096 && hello->page_size != (2U << 20))
		REJECT("HELLO: unsupported page size");
	if (!hello->nr_pages || hello->nr_pages > (UINT64_MAX >> 22))
		REJECT("HELLO: bad region size");
	return 0;
}
