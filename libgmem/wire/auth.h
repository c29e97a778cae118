/* SPDX-License-Identifier: MIT */
/*
 * auth.h - peer authentication by a pre-shared key: the AUTH exchange that
 * follows HELLO on every connection when both ends hold a key (an HMAC
 * challenge each way). Knows nothing of pages or sessions beyond their id.
 */
#ifndef GMEM_AUTH_H
#define GMEM_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/seal.h"
#include "wire/frame.h"

#define AUTH_KEY_MIN 16U
#define AUTH_KEY_MAX 256U

struct auth_key {
	uint32_t len; /* 0: no key, no authentication */
	uint8_t bytes[AUTH_KEY_MAX];
};

/* Copies @len bytes of @key (AUTH_KEY_MIN..AUTH_KEY_MAX; -EINVAL else). */
int auth_key_set(struct auth_key *k, const void *key, size_t len);
/* Wipes the key from memory. */
void auth_key_clear(struct auth_key *k);

static inline bool auth_on(const struct auth_key *k)
{
	return k->len != 0;
}

/*
 * One connection's exchange after HELLO, synchronous (nothing else may be in
 * flight on @t). @buf is PROTO_HDR_LEN + PROTO_AUTH_LEN bytes of scratch,
 * *@seq the next frame number this side sends (advanced). Both bind the
 * proofs to @session and the connection's @role. On success @secret holds
 * the connection's secret for seal_derive(), which both ends compute from
 * the key and both fresh nonces. Return 0; -EACCES the peer holds another
 * key (or none), @why says which; -EPROTO; -ETIMEDOUT; -ECONNRESET.
 */
int auth_server(struct transport *t, struct wire_rx *rx, uint8_t *buf,
		uint32_t *seq, const struct auth_key *k, uint64_t session,
		uint32_t role, int64_t wait_ns, uint8_t *secret,
		const char **why);
int auth_client(struct transport *t, struct wire_rx *rx, uint8_t *buf,
		uint32_t *seq, const struct auth_key *k, uint64_t session,
		uint32_t role, int64_t wait_ns, uint8_t *secret,
		const char **why);

#endif /* GMEM_AUTH_H */
