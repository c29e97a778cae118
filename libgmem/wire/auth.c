// SPDX-License-Identifier: MIT
/*
 * auth.c - the AUTH exchange (libgmem/wire/PROTOCOL.md): the server challenges with
 * a random nonce, the destination answers with its own nonce and an
 * HMAC-SHA256 over both, the server proves the key back the same way. The
 * HMAC, the nonces and the constant-time comparison are libsodium's.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "wire/auth.h"

/* Each direction's proof has its own label, so that one is never
 * accepted for the other. */
static const char label_dst[] = "gmem auth v1 destination";
static const char label_src[] = "gmem auth v1 page server";
/* The connection's secret, never sent: seal.c derives its keys from it. */
static const char label_seal[] = "gmem seal v1";

int auth_key_set(struct auth_key *k, const void *key, size_t len)
{
	if (!key || len < AUTH_KEY_MIN || len > AUTH_KEY_MAX)
		return -EINVAL;
	/* Seeds the nonce generator; safe to call from any thread, often. */
	if (sodium_init() < 0)
		return -ENOSYS;
	memcpy(k->bytes, key, len);
	k->len = len;
	return 0;
}

void auth_key_clear(struct auth_key *k)
{
	sodium_memzero(k, sizeof(*k));
}

/* HMAC-SHA256(key, label | session | role | first nonce | second nonce). */
static void auth_mac(const struct auth_key *k, const char *label,
		     uint64_t session, uint32_t role, const uint8_t *first,
		     const uint8_t *second, uint8_t *mac)
{
	crypto_auth_hmacsha256_state st;
	uint64_t s = htole64(session);
	uint32_t r = htole32(role);

	crypto_auth_hmacsha256_init(&st, k->bytes, k->len);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)label,
				      strlen(label) + 1);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)&s, sizeof(s));
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)&r, sizeof(r));
	crypto_auth_hmacsha256_update(&st, first, PROTO_AUTH_NONCE_LEN);
	crypto_auth_hmacsha256_update(&st, second, PROTO_AUTH_NONCE_LEN);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

static int auth_send(struct transport *t, struct wire_rx *rx, uint8_t *buf,
		     uint32_t *seq, uint32_t step, const uint8_t *msg,
		     int64_t wait_ns, const char **why)
{
	struct proto_hdr h = {
		.type = PROTO_AUTH, .len = PROTO_AUTH_LEN, .seq = (*seq)++,
		.nr = step,
	};
	int ret = wire_frame_send(t, rx->req.conn, buf, &h, msg, wait_ns);

	if (ret < 0)
		*why = "AUTH frame not sent";
	return ret;
}

/* Receives the peer's AUTH of @step into @msg. */
static int auth_recv(struct transport *t, struct wire_rx *rx, uint32_t step,
		     uint8_t *msg, int64_t wait_ns, const char **why)
{
	int ret = wire_frame_recv(t, rx, PROTO_AUTH, msg, PROTO_AUTH_LEN,
				  wait_ns, why);

	if (ret == 0 && rx->hdr.nr != step) {
		*why = "AUTH steps out of order";
		ret = -EPROTO;
	}
	return ret;
}

/* Checks the HMAC at the end of @msg against the one the key gives. */
static int auth_check(const struct auth_key *k, const char *label,
		      uint64_t session, uint32_t role, const uint8_t *first,
		      const uint8_t *second, const uint8_t *msg,
		      const char *refusal, const char **why)
{
	uint8_t want[PROTO_AUTH_MAC_LEN];

	auth_mac(k, label, session, role, first, second, want);
	if (crypto_verify_32(want, msg + PROTO_AUTH_NONCE_LEN) == 0)
		return 0;
	*why = refusal;
	return -EACCES;
}

int auth_server(struct transport *t, struct wire_rx *rx, uint8_t *buf,
		uint32_t *seq, const struct auth_key *k, uint64_t session,
		uint32_t role, int64_t wait_ns, uint8_t *secret,
		const char **why)
{
	uint8_t mine[PROTO_AUTH_LEN] = { 0 }, theirs[PROTO_AUTH_LEN];
	int ret;

	randombytes_buf(mine, PROTO_AUTH_NONCE_LEN);
	ret = auth_send(t, rx, buf, seq, PROTO_AUTH_CHALLENGE, mine, wait_ns,
			why);
	ret = ret ?: auth_recv(t, rx, PROTO_AUTH_CLIENT, theirs, wait_ns, why);
	ret = ret ?: auth_check(k, label_dst, session, role, mine, theirs,
				theirs, "destination failed authentication "
				"(another key?)", why);
	if (ret < 0)
		return ret;
	auth_mac(k, label_seal, session, role, mine, theirs, secret);
	/* The proof goes out only to a peer that proved the key first. */
	auth_mac(k, label_src, session, role, theirs, mine,
		 mine + PROTO_AUTH_NONCE_LEN);
	memset(mine, 0, PROTO_AUTH_NONCE_LEN);
	return auth_send(t, rx, buf, seq, PROTO_AUTH_SERVER, mine, wait_ns,
			 why);
}

int auth_client(struct transport *t, struct wire_rx *rx, uint8_t *buf,
		uint32_t *seq, const struct auth_key *k, uint64_t session,
		uint32_t role, int64_t wait_ns, uint8_t *secret,
		const char **why)
{
	uint8_t mine[PROTO_AUTH_LEN], challenge[PROTO_AUTH_LEN];
	uint8_t proof[PROTO_AUTH_LEN];
	int ret = auth_recv(t, rx, PROTO_AUTH_CHALLENGE, challenge, wait_ns,
			    why);

	if (ret < 0)
		return ret;
	randombytes_buf(mine, PROTO_AUTH_NONCE_LEN);
	auth_mac(k, label_dst, session, role, challenge, mine,
		 mine + PROTO_AUTH_NONCE_LEN);
	ret = auth_send(t, rx, buf, seq, PROTO_AUTH_CLIENT, mine, wait_ns,
			why);
	ret = ret ?: auth_recv(t, rx, PROTO_AUTH_SERVER, proof, wait_ns, why);
	ret = ret ?: auth_check(k, label_src, session, role, mine, challenge,
				proof, "the page server failed authentication "
				"(another key?)", why);
	if (ret == 0)
		auth_mac(k, label_seal, session, role, challenge, mine, secret);
	return ret;
}
