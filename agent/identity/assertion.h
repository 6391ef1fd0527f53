/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The caller assertion: what the edge tells the service behind it about
 * who was let in. A compact JWS (ES256) signed with the edge node's key:
 *
 *   header  {"alg":"ES256","typ":"sluice-caller+jwt","kid":<x5t#S256>,
 *            "x5c":[<node certificate, base64 DER>]}
 *   claims  iss  spiffe://TD/node/NODE (the node certificate's SPIFFE ID)
 *           sub  the caller (the IdP token's sub)
 *           aud  spiffe://TD/service/<service>
 *           roles, orig_jti (the IdP token's jti, when it had one),
 *           jti (random, 128 bits hex), iat = nbf, exp = iat + lifetime
 *
 * Any service or agent verifies it with the mesh CA alone: the x5c
 * certificate must chain to the CA and carry spiffe://TD/node/..., its key
 * must verify the signature, and iss must be that certificate's ID.
 */
#ifndef SLUICE_ASSERTION_H
#define SLUICE_ASSERTION_H

#include <stdint.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "errmsg.h"
#include "jwt.h"

#define ASSERTION_MAX_LEN 8192
#define ASSERTION_TYP "sluice-caller+jwt"
/* Seconds; a longer exp - iat is refused when minted and when verified. */
#define ASSERTION_MAX_LIFETIME 300

struct assertion {
	const char *sub;
	const char *const *roles;
	int nr_roles;
	const char *aud;		/* spiffe://TD/service/NAME */
	const char *orig_jti;		/* NULL: omitted */
	int64_t now;			/* 0: time(NULL) */
	int64_t lifetime;		/* seconds, 1..ASSERTION_MAX_LIFETIME */
};

/*
 * Mints an assertion signed with key (EC P-256), cert its certificate
 * (the node's; its SPIFFE ID is iss and its thumbprint the kid). Returns 0
 * with *out a NUL-terminated token to free(); -EINVAL, -EIO, -ENOMEM.
 */
int assertion_mint(EVP_PKEY *key, X509 *cert, const struct assertion *a, char **out,
		   struct errmsg *err);

/*
 * Verifies an assertion against the mesh CA (store) for audience aud,
 * with skew seconds of clock skew: alg ES256 and typ, the chain, kid
 * against the x5c thumbprint, the node SPIFFE ID of trust_domain, the
 * signature, iss, aud, exp, nbf, iat and a lifetime of
 * at most 5 minutes, all at now (0: time(NULL); the certificate's validity
 * too, without skew). Returns res->reason as jwt_verify() does (an x5c that
 * does not chain to the CA or a kid that is not its thumbprint:
 * JWT_UNKNOWN_KID; a certificate that is not a node's of trust_domain:
 * JWT_BAD_ISSUER); release res with jwt_result_free().
 */
enum jwt_reason assertion_verify(const char *token, X509_STORE *store, const char *trust_domain,
				 const char *aud, int64_t now, int skew, struct jwt_result *res);

/*
 * The JWKS document (RFC 7517) of a node certificate's key, for the agent's
 * /v1/jwks.json: {"keys":[{"kty":"EC","crv":"P-256","x":..,"y":..,
 * "kid":<x5t#S256>,"use":"sig","alg":"ES256","x5c":[<base64 DER>]}]}.
 * Returns 0 with *json a NUL-terminated string to free(); -EINVAL for a key
 * that is not EC P-256, -ENOMEM.
 */
int assertion_jwks(X509 *cert, char **json, struct errmsg *err);

#endif
