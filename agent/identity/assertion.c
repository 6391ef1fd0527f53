// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "assertion.h"
#include "b64url.h"
#include "pki.h"
#include "spiffe.h"

#define NODE_ID_FMT "spiffe://%s/node/"
#define EC_COORD 32
/* A node certificate's DER is well under this; a larger x5c is refused
 * before it is decoded. */
#define CERT_DER_MAX 4096

__attribute__((format(printf, 3, 4)))
static enum jwt_reason refuse(struct jwt_result *res, enum jwt_reason reason, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->err.msg, sizeof(res->err.msg), fmt, ap);
	va_end(ap);
	res->reason = reason;
	return reason;
}

/* Standard base64 with padding and no line breaks (RFC 7515 4.1.6): a
 * malloc'd string, NULL on -ENOMEM. */
static char *cert_b64(X509 *cert)
{
	unsigned char *der = NULL;
	char *s = NULL;
	int len = i2d_X509(cert, &der);

	if (len > 0)
		s = malloc(4 * ((len + 2) / 3) + 1);
	if (s)
		EVP_EncodeBlock((unsigned char *)s, der, len);
	OPENSSL_free(der);
	return s;
}

/* The certificate in an x5c entry. Strict: canonical padded base64 only,
 * and nothing after the DER. NULL when it is not one. */
static X509 *cert_from_b64(const char *s)
{
	unsigned char der[CERT_DER_MAX + 3];
	const unsigned char *p = der;
	size_t len = strlen(s), pad;
	X509 *cert;
	char *back;
	int n;

	if (!len || len % 4 || len / 4 * 3 > sizeof(der))
		return NULL;
	n = EVP_DecodeBlock(der, (const unsigned char *)s, (int)len);
	if (n < 0)
		return NULL;
	/* EVP_DecodeBlock counts padding as zero bytes. */
	pad = (s[len - 1] == '=') + (s[len - 2] == '=');
	n -= (int)pad;
	cert = d2i_X509(NULL, &p, n);
	if (cert && p != der + n) {
		X509_free(cert);
		cert = NULL;
	}
	/* Re-encoding must give the same text: no second spelling of the
	 * same certificate (whitespace, non-zero pad bits) gets through. */
	back = cert ? cert_b64(cert) : NULL;
	if (cert && (!back || strcmp(back, s))) {
		X509_free(cert);
		cert = NULL;
	}
	free(back);
	ERR_clear_error();
	return cert;
}

/* 0 when id is spiffe://td/node/NAME with a valid NAME. */
static int check_node_id(const char *id, const char *td)
{
	char pfx[SPIFFE_ID_MAX];
	size_t n;

	if ((size_t)snprintf(pfx, sizeof(pfx), NODE_ID_FMT, td) >= sizeof(pfx))
		return -EINVAL;
	n = strlen(pfx);
	if (strncmp(id, pfx, n) || !node_name_valid(id + n))
		return -EACCES;
	return 0;
}

static int random_jti(char *out, size_t len)
{
	unsigned char rnd[16];
	size_t i;

	if (len < 2 * sizeof(rnd) + 1 || RAND_bytes(rnd, sizeof(rnd)) != 1) {
		ERR_clear_error();
		return -EIO;
	}
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(out + 2 * i, 3, "%02x", rnd[i]);
	return 0;
}

static json_t *roles_array(const struct assertion *a)
{
	json_t *roles = json_array();
	int i;

	for (i = 0; roles && i < a->nr_roles; i++) {
		if (!a->roles[i] || json_array_append_new(roles, json_string(a->roles[i]))) {
			json_decref(roles);
			return NULL;
		}
	}
	return roles;
}

static int mint_claims(const struct assertion *a, const char *iss, json_t **out,
		       struct errmsg *err)
{
	int64_t now = a->now ? a->now : (int64_t)time(NULL);
	char jti[33];
	json_t *claims, *roles;

	if (random_jti(jti, sizeof(jti)))
		return errmsg_set(err, -EIO, "caller assertion for %s: no random bytes for jti",
				  a->aud);
	roles = roles_array(a);
	if (!roles)
		return errmsg_set(err, -EINVAL, "caller assertion for %s: a role is not a UTF-8 "
				  "string", a->aud);
	claims = json_pack("{s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:I}", "iss", iss, "sub", a->sub,
			   "aud", a->aud, "roles", roles, "jti", jti, "iat", (json_int_t)now,
			   "nbf", (json_int_t)now, "exp", (json_int_t)(now + a->lifetime));
	if (!claims)
		return errmsg_set(err, -EINVAL, "caller assertion for %s: sub is not a UTF-8 "
				  "string", a->aud);
	if (a->orig_jti && json_object_set_new(claims, "orig_jti", json_string(a->orig_jti))) {
		json_decref(claims);
		return errmsg_set(err, -EINVAL, "caller assertion for %s: orig_jti is not a "
				  "UTF-8 string", a->aud);
	}
	*out = claims;
	return 0;
}

static int mint_header(X509 *cert, json_t **out, struct errmsg *err)
{
	char kid[PKI_THUMBPRINT_LEN], *x5c;

	if (pki_thumbprint(cert, kid, sizeof(kid)))
		return errmsg_set(err, -EINVAL, "caller assertion: cannot hash the node "
				  "certificate");
	x5c = cert_b64(cert);
	if (!x5c)
		return errmsg_set(err, -ENOMEM, "caller assertion: out of memory");
	*out = json_pack("{s:s, s:s, s:s, s:[s]}", "alg", "ES256", "typ", ASSERTION_TYP, "kid",
			 kid, "x5c", x5c);
	free(x5c);
	return *out ? 0 : errmsg_set(err, -ENOMEM, "caller assertion: out of memory");
}

int assertion_mint(EVP_PKEY *key, X509 *cert, const struct assertion *a, char **out,
		   struct errmsg *err)
{
	char iss[PKI_ID_MAX];
	json_t *header = NULL, *claims = NULL;
	int ret;

	*out = NULL;
	if (!key || !cert || !a->sub || !a->aud || a->nr_roles < 0 ||
	    (a->nr_roles && !a->roles) || a->lifetime <= 0 ||
	    a->lifetime > ASSERTION_MAX_LIFETIME)
		return errmsg_set(err, -EINVAL, "caller assertion: key, certificate, sub, aud and "
				  "a lifetime of 1-%d s are required", ASSERTION_MAX_LIFETIME);
	if (pki_spiffe_id(cert, iss, sizeof(iss)))
		return errmsg_set(err, -EINVAL, "caller assertion: the node certificate has no "
				  "single SPIFFE ID (URI SAN)");
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		return errmsg_set(err, -EINVAL, "caller assertion: the key is not the node "
				  "certificate's (%s)", iss);
	}
	ret = mint_header(cert, &header, err);
	if (!ret)
		ret = mint_claims(a, iss, &claims, err);
	if (!ret)
		ret = jwt_sign_es256(key, header, claims, out, err);
	json_decref(header);
	json_decref(claims);
	return ret;
}

/* The header, decoded but not yet trusted. NULL when the token has no
 * first part that is a base64url JSON object. */
static json_t *peek_header(const char *token)
{
	const char *dot = strchr(token, '.');
	size_t len = dot ? (size_t)(dot - token) : 0, n;
	json_t *h = NULL;
	uint8_t *buf;

	if (!len || len > ASSERTION_MAX_LEN)
		return NULL;
	buf = malloc(B64URL_DEC_LEN(len) + 1);
	if (buf && !b64url_decode(token, len, buf, &n))
		h = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	if (h && !json_is_object(h)) {
		json_decref(h);
		h = NULL;
	}
	return h;
}

/* The header's one x5c certificate, its kid checked against it. */
static enum jwt_reason header_cert(json_t *h, X509 **cert, struct jwt_result *res)
{
	const char *alg = json_string_value(json_object_get(h, "alg"));
	const char *typ = json_string_value(json_object_get(h, "typ"));
	const char *kid = json_string_value(json_object_get(h, "kid"));
	json_t *x5c = json_object_get(h, "x5c");
	char x5t[PKI_THUMBPRINT_LEN];

	if (!alg)
		return refuse(res, JWT_MALFORMED, "caller assertion: header has no alg");
	if (strcmp(alg, "ES256"))
		return refuse(res, JWT_ALG_NOT_ALLOWED, "caller assertion: alg must be ES256");
	if (!typ || strcmp(typ, ASSERTION_TYP))
		return refuse(res, JWT_MALFORMED, "caller assertion: typ must be " ASSERTION_TYP);
	if (!json_is_array(x5c) || json_array_size(x5c) != 1 ||
	    !json_is_string(json_array_get(x5c, 0)))
		return refuse(res, JWT_MALFORMED, "caller assertion: x5c must hold exactly the "
			      "node certificate");
	*cert = cert_from_b64(json_string_value(json_array_get(x5c, 0)));
	if (!*cert)
		return refuse(res, JWT_MALFORMED, "caller assertion: x5c is not a base64 DER "
			      "certificate");
	if (pki_thumbprint(*cert, x5t, sizeof(x5t)))
		return refuse(res, JWT_INTERNAL, "caller assertion: cannot hash the x5c "
			      "certificate");
	if (!kid || strcmp(kid, x5t))
		return refuse(res, JWT_UNKNOWN_KID, "caller assertion: kid is not the x5c "
			      "certificate's x5t#S256");
	return JWT_OK;
}

/* The chain to the mesh CA at the verifier's time, with the usages of a
 * node certificate (the CA signs every leaf directly). */
static enum jwt_reason check_chain(X509 *cert, X509_STORE *store, int64_t now,
				   struct jwt_result *res)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *param;
	int ok;

	if (!ctx || !X509_STORE_CTX_init(ctx, store, cert, NULL)) {
		X509_STORE_CTX_free(ctx);
		ERR_clear_error();
		return refuse(res, JWT_INTERNAL, "caller assertion: cannot verify the x5c "
			      "certificate");
	}
	param = X509_STORE_CTX_get0_param(ctx);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	X509_VERIFY_PARAM_set_depth(param, 0);
	X509_VERIFY_PARAM_set_time(param, (time_t)now);
	ok = X509_verify_cert(ctx) == 1;
	if (!ok)
		refuse(res, JWT_UNKNOWN_KID, "caller assertion: the x5c certificate does not "
		       "verify against the mesh CA: %s",
		       X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return ok ? JWT_OK : res->reason;
}

static int cert_key(void *ctx, const char *kid, EVP_PKEY **pkey)
{
	(void)kid;	/* matched against the certificate already */
	*pkey = X509_get_pubkey(ctx);
	return *pkey ? 0 : -ENOENT;
}

enum jwt_reason assertion_verify(const char *token, X509_STORE *store, const char *trust_domain,
				 const char *aud, int64_t now, int skew, struct jwt_result *res)
{
	struct jwt_verify_opts o = {
		.audience = aud, .algs = JWS_ES256, .get_key = cert_key, .skew = skew,
		.max_lifetime = ASSERTION_MAX_LIFETIME,
	};
	char iss[PKI_ID_MAX];
	X509 *cert = NULL;
	json_t *h;

	memset(res, 0, sizeof(*res));
	if (!store || !trust_domain || !aud)
		return refuse(res, JWT_INTERNAL, "caller assertion: verifier has no CA, trust "
			      "domain or audience");
	if (strnlen(token, ASSERTION_MAX_LEN + 1) > ASSERTION_MAX_LEN)
		return refuse(res, JWT_TOO_LARGE, "caller assertion: longer than %d bytes",
			      ASSERTION_MAX_LEN);
	o.now = now ? now : (int64_t)time(NULL);
	h = peek_header(token);
	if (!h)
		return refuse(res, JWT_MALFORMED, "caller assertion: header is not a base64url "
			      "JSON object");
	header_cert(h, &cert, res);
	json_decref(h);
	if (res->reason == JWT_OK)
		check_chain(cert, store, o.now, res);
	if (res->reason == JWT_OK && (pki_spiffe_id(cert, iss, sizeof(iss)) ||
				      check_node_id(iss, trust_domain)))
		refuse(res, JWT_BAD_ISSUER, "caller assertion: the x5c certificate is not a node "
		       "certificate of %s", trust_domain);
	if (res->reason == JWT_OK) {
		o.issuer = iss;
		o.key_ctx = cert;
		jwt_verify(token, &o, res);
	}
	X509_free(cert);
	return res->reason;
}

static int ec_coord(EVP_PKEY *pkey, const char *name, char *out)
{
	unsigned char raw[EC_COORD];
	BIGNUM *bn = NULL;
	int ok;

	ok = EVP_PKEY_get_bn_param(pkey, name, &bn) == 1 &&
	     BN_bn2binpad(bn, raw, sizeof(raw)) == sizeof(raw);
	BN_free(bn);
	if (ok)
		b64url_encode(raw, sizeof(raw), out);
	return ok ? 0 : -EINVAL;
}

int assertion_jwks(X509 *cert, char **json, struct errmsg *err)
{
	char kid[PKI_THUMBPRINT_LEN], x[B64URL_ENC_LEN(EC_COORD) + 1], y[sizeof(x)];
	EVP_PKEY *pkey = X509_get0_pubkey(cert);
	char *x5c = NULL;
	json_t *doc;

	*json = NULL;
	if (!pkey || jwks_key_alg(pkey) != JWS_ES256 || pki_thumbprint(cert, kid, sizeof(kid)) ||
	    ec_coord(pkey, OSSL_PKEY_PARAM_EC_PUB_X, x) ||
	    ec_coord(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, y)) {
		ERR_clear_error();
		return errmsg_set(err, -EINVAL, "node JWKS: the certificate's key is not EC "
				  "P-256");
	}
	x5c = cert_b64(cert);
	doc = x5c ? json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[s]}]}", "keys", "kty",
			      "EC", "crv", "P-256", "x", x, "y", y, "kid", kid, "use", "sig", "alg",
			      "ES256", "x5c", x5c)
		  : NULL;
	free(x5c);
	*json = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return *json ? 0 : errmsg_set(err, -ENOMEM, "node JWKS: out of memory");
}
