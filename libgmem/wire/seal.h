/* SPDX-License-Identifier: MIT */
/*
 * seal.h - frame encryption on a keyed connection (libgmem/wire/PROTOCOL.md,
 * "Encryption"): one AEAD key and frame counter per direction of each
 * connection, derived from the AUTH exchange's secret. The header travels
 * in the clear as associated data, the payload encrypted, a 16-byte tag
 * after it. The counter is the nonce and is never sent: a frame replayed,
 * reordered, dropped or changed fails to open. OpenSSL's AES-256-GCM,
 * libsodium's XChaCha20-Poly1305 and KDF.
 */
#ifndef GMEM_SEAL_H
#define GMEM_SEAL_H

#include <stdbool.h>
#include <stdint.h>

#include <sodium.h>

#define SEAL_TAG_LEN 16U
#define SEAL_SECRET_LEN 32U

enum seal_cipher {
	SEAL_NONE = 0,        /* frames in the clear */
	SEAL_AES256GCM,       /* both ends have AES-NI (and PCLMUL) */
	SEAL_XCHACHA20POLY1305,
};

/* One direction of one connection. Owned by the one thread (or lock) that
 * sends, or receives, on it. */
struct seal {
	uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
	uint64_t ctr;         /* nonce of the next frame */
	enum seal_cipher cipher;
};

static inline bool seal_on(const struct seal *s)
{
	return s->cipher != SEAL_NONE;
}

/* Whether this CPU runs AES-256-GCM at speed (AES-NI and PCLMUL). */
bool seal_aes_available(void);
/* The cipher the HELLO features @agreed name (SEAL_NONE: no PROTO_FEAT_SEAL). */
enum seal_cipher seal_cipher_of(uint64_t agreed);
const char *seal_cipher_name(enum seal_cipher c);

/*
 * Derives both directions' keys from the AUTH exchange's @secret: @tx for
 * what this end sends, @rx for what it receives; @server says which end
 * this is (the key ids differ per direction). Counters start at 0.
 */
void seal_derive(const uint8_t secret[SEAL_SECRET_LEN], enum seal_cipher c,
		 bool server, struct seal *tx, struct seal *rx);
void seal_clear(struct seal *s);

/*
 * Encrypts @len bytes of @src into @dst (the same buffer or apart) and
 * writes the tag at @dst + @len, authenticating the @ad_len bytes of @ad
 * with them; uses and advances the counter.
 */
void seal_encrypt(struct seal *s, uint8_t *dst, const uint8_t *src,
		  uint32_t len, const uint8_t *ad, uint32_t ad_len);
/*
 * Checks and decrypts in place @len bytes at @buf followed by their tag.
 * Returns 0 (counter advanced), or -EBADMSG: the frame is not the next one
 * the peer sealed with this key; @buf's bytes must not be used.
 */
int seal_decrypt(struct seal *s, uint8_t *buf, uint32_t len,
		 const uint8_t *ad, uint32_t ad_len);

#endif /* GMEM_SEAL_H */
