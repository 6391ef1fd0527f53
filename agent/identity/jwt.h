/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Workload tokens: JWTs (RFC 7519) in compact JWS serialization, signed
 * ES256 or RS256.
 *
 * Embedded default: an agent mints ES256 tokens for its own workloads with
 * its node key (jwt_workload_claims() + jwt_mint_es256()), with the node
 * certificate's x5t#S256 thumbprint (pki_thumbprint()) as kid and as the cnf
 * binding. A peer verifies them with jwks_from_cert() on the tunnel peer's
 * certificate, issuer "spiffe://TD/node/NODE" taken from that certificate's
 * SPIFFE ID and cnf_x5t = pki_thumbprint() of the same certificate. OIDC:
 * tokens from the IdP verify against its JWKS through a get_key callback that
 * may refetch.
 *
 * Nothing here logs, and neither tokens nor keys are ever copied into error
 * messages; messages name the claim and what is wrong with it.
 */
#ifndef SLUICE_JWT_H
#define SLUICE_JWT_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "errmsg.h"
#include "jwks.h"

/* Longer tokens are refused before any decoding. */
#define JWT_MAX_LEN 8192
#define JWT_DEFAULT_SKEW 30

/* Why a token was refused; jwt_reason_name() gives the stable audit name. */
enum jwt_reason {
	JWT_OK,
	JWT_MALFORMED,
	JWT_TOO_LARGE,
	JWT_ALG_NOT_ALLOWED,
	JWT_UNKNOWN_KID,
	JWT_BAD_SIGNATURE,
	JWT_BAD_ISSUER,
	JWT_BAD_AUDIENCE,
	JWT_EXPIRED,
	JWT_NOT_YET_VALID,
	JWT_ISSUED_IN_FUTURE,
	JWT_LIFETIME_TOO_LONG,
	JWT_NOT_BOUND,
	JWT_MISSING_CLAIM,
	/* Out of memory or a crypto library failure: not the token's fault,
	 * refused all the same. */
	JWT_INTERNAL,
};

/* "ok", "malformed", "too-large", "alg-not-allowed", "unknown-kid",
 * "bad-signature", "bad-issuer", "bad-audience", "expired", "not-yet-valid",
 * "issued-in-future", "lifetime-too-long", "not-bound", "missing-claim",
 * "internal-error". */
const char *jwt_reason_name(enum jwt_reason reason);

struct jwt_verify_opts {
	const char *issuer;	/* required: iss must equal it */
	const char *audience;	/* required: aud (string or array) must hold it */
	unsigned int algs;	/* JWS_* bits allowed; 0: JWS_ES256 | JWS_RS256 */
	/*
	 * The verification key for kid (NULL when the header has none): 0 with
	 * *pkey a reference jwt_verify() releases, -ENOENT for an unknown kid,
	 * another negative errno when no key can be had (also reported as
	 * unknown-kid: refused either way). jwks_get_key() fits, with key_ctx
	 * the struct jwks *.
	 */
	int (*get_key)(void *key_ctx, const char *kid, EVP_PKEY **pkey);
	void *key_ctx;
	int64_t now;		/* seconds since the epoch; 0: time(NULL) */
	int skew;		/* seconds of clock skew allowed; 0: JWT_DEFAULT_SKEW */
	int64_t max_lifetime;	/* exp - iat at most this (iat then required); 0: any */
	const char *cnf_x5t;	/* when set, cnf["x5t#S256"] must equal it (RFC 8705) */
	bool require_cnf;	/* cnf["x5t#S256"] must be present */
};

struct jwt_result {
	enum jwt_reason reason;
	struct errmsg err;	/* what was refused and why; empty for JWT_OK */
	/* From the header once it parsed, unverified until the signature is:
	 * for audit lines. */
	const char *kid;
	/*
	 * Set once the signature verified, so also when a claim check failed
	 * after it (audit lines for an expired or misdirected token). Act on
	 * them only when reason is JWT_OK. Strings point into claims.
	 */
	const char *sub, *iss, *jti;
	int64_t exp;
	json_t *claims;		/* the payload, e.g. groups for role mapping */
	json_t *header;
};

/*
 * Verifies a compact JWS token: structure and size, the algorithm against
 * the allow-list and the key's type, the signature, then iss, sub, aud, exp,
 * nbf, iat, lifetime and cnf. Returns res->reason (JWT_OK when every check
 * passed); release res with jwt_result_free() whatever the outcome.
 */
enum jwt_reason jwt_verify(const char *token, const struct jwt_verify_opts *o,
			   struct jwt_result *res);

void jwt_result_free(struct jwt_result *res);

/* Sets res->reason and its message (never token bytes) and returns the
 * reason: for verifiers built on jwt_verify(), such as the assertion's. */
__attribute__((format(printf, 3, 4))) enum jwt_reason
jwt_refuse(struct jwt_result *res, enum jwt_reason reason, const char *fmt, ...);

/* Signs claims as {"alg":"ES256","typ":"JWT","kid":kid} (no kid when NULL)
 * with an EC P-256 private key. Returns 0 with *out a NUL-terminated token
 * to free(), -EINVAL for another key type, -EIO when signing fails,
 * -ENOMEM. */
int jwt_mint_es256(EVP_PKEY *key, const char *kid, json_t *claims, char **out,
		   struct errmsg *err);
/* The same under a header object of the caller's, taken as it is (a
 * verifier must refuse a header that lies about the key). */
int jwt_sign_es256(EVP_PKEY *key, json_t *header, json_t *claims, char **out,
		   struct errmsg *err);

struct jwt_workload {
	const char *trust_domain;	/* acme.example */
	const char *node;		/* the minting node's name */
	const char *id;			/* the workload's SPIFFE ID: sub */
	char *const *roles;
	int nr_roles;
	const char *cnf_x5t;		/* the node certificate's pki_thumbprint() */
	int64_t now;
	int64_t lifetime;		/* seconds, > 0 */
};

/*
 * The claims of an embedded workload token: iss "spiffe://TD/node/NODE", sub,
 * aud "spiffe://TD", iat = nbf = now, exp = now + lifetime, a random 128-bit
 * hex jti, cnf {"x5t#S256": cnf_x5t} and roles. Returns 0 with *out a new
 * object, -EINVAL for a missing field, -EIO when no random bytes, -ENOMEM.
 */
int jwt_workload_claims(const struct jwt_workload *w, json_t **out, struct errmsg *err);

#endif
