// SPDX-License-Identifier: MIT
/*
 * test-seal.c - sealed frames (libgmem/wire/PROTOCOL.md, "Encryption") through the
 * receive state machine, with a fixed test key and both ciphers: a frame
 * sealed by one end opens at the other with its payload intact and none of
 * it in the clear on the wire; a flipped ciphertext, tag or header byte, a
 * replayed, reordered or truncated frame, and another key are each refused
 * with -EBADMSG and no frame handed out. frame.c, proto.c, seal.c are
 * compiled in; a fake transport feeds the bytes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "wire/seal.h"
#include "wire/frame.h"

#define PAGE 4096U
#define NR 2U
#define FRAME (PROTO_HDR_LEN + NR * PAGE + SEAL_TAG_LEN)
#define RX_CAP (NR * PAGE)

static const struct proto_geom geom = { .page_size = PAGE, .nr_pages = 100 };

/* The stream the receiver reads, handed out whole on each read. */
struct fake {
	uint8_t in[8 * FRAME];
	size_t len, off;
	struct transport_req *pending;
};

static int fake_queue(struct transport *t, struct transport_req **reqs,
		      unsigned int nr)
{
	struct fake *f = t->priv;

	f->pending = reqs[0];
	return 0;
}

static struct fake f;
static struct transport t = {
	.ops = &(const struct transport_ops){ .queue = fake_queue,
					      .submit = fake_queue },
	.priv = &f,
};
static uint8_t rxbuf[PROTO_HDR_LEN + RX_CAP + 4096];
static struct wire_rx rx;
static struct seal dst_tx, dst_rx, srv_tx, srv_rx;
static uint8_t pages[NR * PAGE];

static void setup_cipher(enum seal_cipher c, const char *dst_secret)
{
	uint8_t a[SEAL_SECRET_LEN] = "fixed test secret of 32 bytes..";
	uint8_t b[SEAL_SECRET_LEN] = { 0 };

	memcpy(b, dst_secret, strlen(dst_secret));
	memset(&f, 0, sizeof(f));
	seal_derive(a, c, true, &srv_tx, &srv_rx);
	seal_derive(dst_secret[0] ? b : a, c, false, &dst_tx, &dst_rx);
	wire_rx_init(&rx, 0, rxbuf, sizeof(rxbuf), RX_CAP);
	rx.open = dst_rx;
	for (size_t i = 0; i < sizeof(pages); i += 8)
		memcpy(pages + i, "GMEMPAGE", 8); /* the page pattern */
}

/* The server seals PAGES(@seq) onto the stream; returns where it lies. */
static uint8_t *seal_pages(uint32_t seq, uint64_t pgoff)
{
	struct proto_hdr h = { .type = PROTO_PAGES, .flags = PROTO_F_PUSH,
			       .len = NR * PAGE, .seq = seq, .pgoff = pgoff,
			       .nr = NR };
	uint8_t *at = f.in + f.len;

	cr_assert_leq(f.len + FRAME, sizeof(f.in));
	cr_assert_eq(wire_encode(&srv_tx, at, &h, pages), FRAME);
	f.len += FRAME;
	return at;
}

/* Reads frames until one is handed out (1), the stream ends, or an error. */
static int next_frame(const char **why)
{
	int ret = wire_rx_next(&t, &rx, &geom, why);

	while (ret == 0) {
		struct transport_req *q = f.pending;
		size_t n = f.len - f.off;

		cr_assert(q, "no read submitted");
		f.pending = NULL;
		n = n < q->len ? n : q->len;
		memcpy(q->buf, f.in + f.off, n);
		f.off += n;
		q->done = n;
		q->res = n ? 0 : -ECONNRESET;
		ret = wire_rx_done(&t, &rx, &geom, why);
	}
	return ret;
}

static void expect_refused(int want)
{
	const char *why = "";
	int ret = next_frame(&why);

	cr_assert_eq(ret, want, "%d: %s", ret, why);
	cr_assert_not(rx.have_frame, "a frame was handed out");
	if (want == -EBADMSG)
		cr_assert(strstr(why, "failed authentication"), "%s", why);
}

static void expect_pages(uint32_t seq, uint64_t pgoff)
{
	const char *why = "";

	cr_assert_eq(next_frame(&why), 1, "%s", why);
	cr_assert_eq(rx.hdr.type, PROTO_PAGES);
	cr_assert_eq(rx.hdr.seq, seq);
	cr_assert_eq(rx.hdr.pgoff, pgoff);
	cr_assert_eq(memcmp(wire_payload(&rx), pages, sizeof(pages)), 0);
}

/* Each case runs with both ciphers (AES-256-GCM where this CPU has it). */
#define CIPHER_TEST(name)                                                \
	static void name(enum seal_cipher cipher);                       \
	Test(seal, name##_xchacha20poly1305, .timeout = 10)              \
	{                                                                \
		name(SEAL_XCHACHA20POLY1305);                            \
	}                                                                \
	Test(seal, name##_aes256gcm, .timeout = 10)                      \
	{                                                                \
		if (!seal_aes_available())                               \
			cr_skip_test("no AES-NI on this CPU");           \
		name(SEAL_AES256GCM);                                    \
	}                                                                \
	static void name(enum seal_cipher cipher)

CIPHER_TEST(frames_open_in_order_and_no_plaintext_on_the_wire)
{
	setup_cipher(cipher, "");
	seal_pages(3, 10);
	seal_pages(4, 50);
	rx.seq = 3;
	cr_assert_null(memmem(f.in, f.len, "GMEMPAGE", 8),
		       "page pattern in the clear (%s)", seal_cipher_name(cipher));
	expect_pages(3, 10);
	expect_pages(4, 50);
	expect_refused(-ECONNRESET); /* then the stream's end */
}

CIPHER_TEST(flipped_ciphertext_byte_is_refused)
{
	setup_cipher(cipher, "");
	seal_pages(0, 10)[PROTO_HDR_LEN + 5000] ^= 1;
	expect_refused(-EBADMSG);
}

CIPHER_TEST(flipped_tag_byte_is_refused)
{
	setup_cipher(cipher, "");
	seal_pages(0, 10)[FRAME - 1] ^= 0x80;
	expect_refused(-EBADMSG);
}

/* The header is in the clear but authenticated: moving the pages to
 * another offset is caught. */
CIPHER_TEST(changed_header_is_refused)
{
	setup_cipher(cipher, "");
	seal_pages(0, 10)[16] = 11;
	expect_refused(-EBADMSG);
}

CIPHER_TEST(replayed_frame_is_refused)
{
	uint8_t *first;

	setup_cipher(cipher, "");
	first = seal_pages(0, 10);
	memcpy(f.in + f.len, first, FRAME);
	f.len += FRAME;
	expect_pages(0, 10);
	expect_refused(-EBADMSG);
}

/* Even with its sequence number rewritten to the one expected. */
CIPHER_TEST(replayed_frame_with_new_seq_is_refused)
{
	uint8_t *first;

	setup_cipher(cipher, "");
	first = seal_pages(0, 10);
	memcpy(f.in + f.len, first, FRAME);
	f.in[f.len + 12] = 1;
	f.len += FRAME;
	expect_pages(0, 10);
	expect_refused(-EBADMSG);
}

CIPHER_TEST(reordered_frames_are_refused)
{
	uint8_t tmp[FRAME];

	setup_cipher(cipher, "");
	seal_pages(0, 10);
	seal_pages(1, 20);
	memcpy(tmp, f.in, FRAME);
	memcpy(f.in, f.in + FRAME, FRAME);
	memcpy(f.in + FRAME, tmp, FRAME);
	f.in[12] = 0; /* even renumbered */
	f.in[FRAME + 12] = 1;
	expect_refused(-EBADMSG);
}

/* A dropped frame: the next one does not open either. */
CIPHER_TEST(dropped_frame_is_detected)
{
	setup_cipher(cipher, "");
	seal_pages(0, 10);
	seal_pages(1, 20);
	memmove(f.in, f.in + FRAME, FRAME);
	f.len = FRAME;
	f.in[12] = 0;
	expect_refused(-EBADMSG);
}

/* Cut short with the stream's end: nothing handed out, the link's end. */
CIPHER_TEST(truncated_frame_at_end_of_stream_hands_out_nothing)
{
	setup_cipher(cipher, "");
	seal_pages(0, 10);
	f.len -= 100;
	expect_refused(-ECONNRESET);
}

/* Cut short, with its length field shortened to match. */
CIPHER_TEST(truncated_frame_with_shorter_length_is_refused)
{
	uint8_t *fr;

	setup_cipher(cipher, "");
	fr = seal_pages(0, 10);
	fr[9] = (PAGE >> 8) & 0xff; /* len = one page */
	fr[10] = 0;
	fr[24] = 1;                 /* nr = 1 */
	memmove(fr + PROTO_HDR_LEN + PAGE, fr + FRAME - SEAL_TAG_LEN,
		SEAL_TAG_LEN);
	f.len = PROTO_HDR_LEN + PAGE + SEAL_TAG_LEN;
	expect_refused(-EBADMSG);
}

CIPHER_TEST(another_key_is_refused)
{
	setup_cipher(cipher, "another secret");
	seal_pages(0, 10);
	expect_refused(-EBADMSG);
}

/* A length no peer with the key sends is refused before waiting for it. */
CIPHER_TEST(length_beyond_the_cap_is_refused_at_once)
{
	setup_cipher(cipher, "");
	seal_pages(0, 10)[11] = 0x7f;
	expect_refused(-EBADMSG);
}

/* Each direction has its own key: the server's frames do not open with
 * the key of what it receives (no reflection). */
CIPHER_TEST(directions_have_their_own_keys)
{
	setup_cipher(cipher, "");
	rx.open = srv_rx;
	seal_pages(0, 10);
	expect_refused(-EBADMSG);
}

Test(seal, cipher_follows_the_agreed_features)
{
	cr_assert_eq(seal_cipher_of(PROTO_FEAT_AUTH), SEAL_NONE);
	cr_assert_eq(seal_cipher_of(PROTO_FEAT_SEAL), SEAL_XCHACHA20POLY1305);
	cr_assert_eq(seal_cipher_of(PROTO_FEAT_SEAL | PROTO_FEAT_AES256GCM),
		     SEAL_AES256GCM);
	cr_assert_eq(seal_cipher_of(PROTO_FEAT_AES256GCM), SEAL_NONE);
}

/* The AES-256-GCM frames are the standard construction (the 12-byte nonce
 * the counter, the header the associated data): libsodium's own
 * implementation opens what seal.c sealed, and seals what it opens. */
Test(seal, aes256gcm_is_the_standard_construction)
{
	uint8_t hdr[PROTO_HDR_LEN] = "header bytes";
	uint8_t npub[crypto_aead_aes256gcm_NPUBBYTES] = { 1 }; /* counter 1 */
	static uint8_t buf[NR * PAGE + SEAL_TAG_LEN];

	if (!seal_aes_available())
		cr_skip_test("no AES-NI on this CPU");
	setup_cipher(SEAL_AES256GCM, "");
	srv_tx.ctr = 1;
	seal_encrypt(&srv_tx, buf, pages, NR * PAGE, hdr, sizeof(hdr));
	cr_assert_eq(crypto_aead_aes256gcm_decrypt_detached(
			     buf, NULL, buf, NR * PAGE, buf + NR * PAGE, hdr,
			     sizeof(hdr), npub, srv_tx.key), 0);
	cr_assert_eq(memcmp(buf, pages, NR * PAGE), 0);
	crypto_aead_aes256gcm_encrypt_detached(buf, buf + NR * PAGE, NULL,
					       pages, NR * PAGE, hdr,
					       sizeof(hdr), NULL, npub,
					       srv_tx.key);
	dst_rx.ctr = 1;
	cr_assert_eq(seal_decrypt(&dst_rx, buf, NR * PAGE, hdr, sizeof(hdr)),
		     0);
	cr_assert_eq(memcmp(buf, pages, NR * PAGE), 0);
	cr_assert_eq(dst_rx.ctr, 2);
}

/* Threads seal and open with keys of their own at once: each thread's
 * contexts are keyed per frame, so no frame takes another's key. */
struct sealer {
	uint8_t secret[SEAL_SECRET_LEN];
	pthread_t tid;
	int opened;
};

static void *seal_many(void *arg)
{
	struct sealer *sl = arg;
	struct seal tx, open, unused;
	uint8_t page[PAGE], buf[PAGE + SEAL_TAG_LEN];

	seal_derive(sl->secret, SEAL_AES256GCM, true, &tx, &unused);
	seal_derive(sl->secret, SEAL_AES256GCM, false, &unused, &open);
	memset(page, sl->secret[0], sizeof(page));
	for (int i = 0; i < 3000; i++) {
		seal_encrypt(&tx, buf, page, PAGE, NULL, 0);
		if (seal_decrypt(&open, buf, PAGE, NULL, 0) == 0 &&
		    memcmp(buf, page, PAGE) == 0)
			sl->opened++;
	}
	return NULL;
}

Test(seal, threads_seal_with_their_own_keys_at_once, .timeout = 30)
{
	struct sealer sl[4] = { 0 };

	if (!seal_aes_available())
		cr_skip_test("no AES-NI on this CPU");
	for (int i = 0; i < 4; i++) {
		memset(sl[i].secret, 'a' + i, sizeof(sl[i].secret));
		cr_assert_eq(pthread_create(&sl[i].tid, NULL, seal_many, &sl[i]),
			     0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(sl[i].tid, NULL);
		cr_expect_eq(sl[i].opened, 3000, "thread %d: %d of 3000 opened",
			     i, sl[i].opened);
	}
}
