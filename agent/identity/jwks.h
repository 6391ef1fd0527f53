/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Token verification keys by `kid`: a JWKS document from an IdP (RFC 7517),
 * or a node certificate's public key for the tokens agents mint themselves.
 *
 * Only keys that can verify ES256 (EC P-256) or RS256 (RSA, 2048 bits or
 * more) signatures are kept. Keys for encryption ("use" other than "sig"),
 * keys whose "alg" is neither ES256 nor RS256, other curves and key types
 * (including symmetric "oct" keys) are skipped. Private members ("d", ...)
 * are never read. A malformed key of a kind we use fails the whole document:
 * a key set is trusted as a whole or not at all.
 */
#ifndef SLUICE_JWKS_H
#define SLUICE_JWKS_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "errmsg.h"

/* A document with more keys than this is refused rather than trimmed. */
#define JWKS_MAX_KEYS 32

/* The JWS algorithms a key can verify, as bits for allow-lists. */
enum jws_alg {
	JWS_ES256 = 1 << 0,
	JWS_RS256 = 1 << 1,
};

struct jwk {
	char *kid;		/* NULL when the JWK has none */
	EVP_PKEY *pkey;		/* public key, EC P-256 or RSA */
};

struct jwks {
	struct jwk *keys;
	int nr;
};

/* Parses a JWKS document ({"keys": [...]}) of len bytes. Returns 0 with *out
 * set, -EINVAL for a malformed document or key, duplicate kids or more than
 * JWKS_MAX_KEYS keys, -ENOENT when no usable key is left, -ENOMEM. */
int jwks_parse(const char *doc, size_t len, struct jwks **out, struct errmsg *err);

/* A set of one key: pkey's public half (the caller keeps its reference)
 * under kid (may be NULL). Returns 0, -EINVAL for a key that is neither EC
 * P-256 nor RSA of 2048 bits or more, -ENOMEM. */
int jwks_from_pkey(EVP_PKEY *pkey, const char *kid, struct jwks **out, struct errmsg *err);

/* jwks_from_pkey() with the certificate's public key, for the tokens a peer
 * agent mints with its node key. The certificate is not verified here: the
 * caller passes one whose chain it has verified (the tunnel peer's);
 * pki_peer_keys() keeps the set with the peer's entry. */
int jwks_from_cert(X509 *cert, const char *kid, struct jwks **out, struct errmsg *err);

/*
 * The key for kid, as jwt_verify_opts.get_key wants it (ctx is the struct
 * jwks *): 0 with *pkey holding a new reference, or -ENOENT. A NULL kid
 * finds the key only when the set holds exactly one; keys without a kid are
 * found only that way.
 */
int jwks_get_key(void *ctx, const char *kid, EVP_PKEY **pkey);

/* JWS_ES256 for an EC P-256 key, JWS_RS256 for an RSA key of 2048 bits or
 * more, 0 for anything else: a key verifies exactly one algorithm. */
int jwks_key_alg(const EVP_PKEY *pkey);

void jwks_free(struct jwks *set);

#endif
