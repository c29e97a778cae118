// SPDX-License-Identifier: MIT
/*
 * seal.c - AEAD framing for keyed connections (libgmem/wire/PROTOCOL.md,
 * "Encryption"): AES-256-GCM where both CPUs have AES-NI, else
 * XChaCha20-Poly1305 (IETF), both libsodium's, detached tags. Each
 * direction has its own key, so the two counters may take the same values.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "wire/proto.h"
#include "wire/seal.h"

/* crypto_kdf context: 8 bytes. Subkey ids: one per direction. */
static const char kdf_ctx[crypto_kdf_CONTEXTBYTES] = "gmemseal";
#define KDF_ID_TO_DESTINATION 1
#define KDF_ID_TO_SERVER 2

bool seal_aes_available(void)
{
	return sodium_init() >= 0 && crypto_aead_aes256gcm_is_available();
}

enum seal_cipher seal_cipher_of(uint64_t agreed)
{
	if (!(agreed & PROTO_FEAT_SEAL))
		return SEAL_NONE;
	return agreed & PROTO_FEAT_AES256GCM ? SEAL_AES256GCM
					     : SEAL_XCHACHA20POLY1305;
}

const char *seal_cipher_name(enum seal_cipher c)
{
	switch (c) {
	case SEAL_AES256GCM:
		return "aes-256-gcm";
	case SEAL_XCHACHA20POLY1305:
		return "xchacha20-poly1305";
	default:
		return "none";
	}
}

static void seal_init(struct seal *s, enum seal_cipher c,
		      const uint8_t *secret, uint64_t id)
{
	memset(s, 0, sizeof(*s));
	crypto_kdf_derive_from_key(s->key, sizeof(s->key), id, kdf_ctx,
				   secret);
	if (c == SEAL_AES256GCM)
		crypto_aead_aes256gcm_beforenm(&s->aes, s->key);
	s->cipher = c;
}

void seal_derive(const uint8_t secret[SEAL_SECRET_LEN], enum seal_cipher c,
		 bool server, struct seal *tx, struct seal *rx)
{
	seal_init(tx, c, secret,
		  server ? KDF_ID_TO_DESTINATION : KDF_ID_TO_SERVER);
	seal_init(rx, c, secret,
		  server ? KDF_ID_TO_SERVER : KDF_ID_TO_DESTINATION);
}

void seal_clear(struct seal *s)
{
	sodium_memzero(s, sizeof(*s));
}

/* The counter, little-endian, then zeros to the cipher's nonce size. */
static void nonce_of(uint64_t ctr, uint8_t *npub)
{
	uint64_t le = htole64(ctr);

	memset(npub, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	memcpy(npub, &le, sizeof(le));
}

void seal_encrypt(struct seal *s, uint8_t *dst, const uint8_t *src,
		  uint32_t len, const uint8_t *ad, uint32_t ad_len)
{
	uint8_t npub[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];

	nonce_of(s->ctr++, npub);
	if (s->cipher == SEAL_AES256GCM)
		crypto_aead_aes256gcm_encrypt_detached_afternm(
			dst, dst + len, NULL, src, len, ad, ad_len, NULL, npub,
			&s->aes);
	else
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
			dst, dst + len, NULL, src, len, ad, ad_len, NULL, npub,
			s->key);
}

int seal_decrypt(struct seal *s, uint8_t *buf, uint32_t len,
		 const uint8_t *ad, uint32_t ad_len)
{
	uint8_t npub[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	int ret;

	nonce_of(s->ctr, npub);
	if (s->cipher == SEAL_AES256GCM)
		ret = crypto_aead_aes256gcm_decrypt_detached_afternm(
			buf, NULL, buf, len, buf + len, ad, ad_len, npub,
			&s->aes);
	else
		ret = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
			buf, NULL, buf, len, buf + len, ad, ad_len, npub,
			s->key);
	if (ret < 0)
		return -EBADMSG;
	s->ctr++;
	return 0;
}
