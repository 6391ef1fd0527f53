// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "b64url.h"
#include "jwt.h"

#define ES256_COORD 32
#define ES256_SIG_LEN (2 * ES256_COORD)
/* NumericDates beyond this (about 31 million years) are refused, so that
 * date arithmetic cannot overflow. */
#define DATE_MAX 1000000000000000LL

static const char *const reason_names[] = {
	[JWT_OK] = "ok",
	[JWT_MALFORMED] = "malformed",
	[JWT_TOO_LARGE] = "too-large",
	[JWT_ALG_NOT_ALLOWED] = "alg-not-allowed",
	[JWT_UNKNOWN_KID] = "unknown-kid",
	[JWT_BAD_SIGNATURE] = "bad-signature",
	[JWT_BAD_ISSUER] = "bad-issuer",
	[JWT_BAD_AUDIENCE] = "bad-audience",
	[JWT_EXPIRED] = "expired",
	[JWT_NOT_YET_VALID] = "not-yet-valid",
	[JWT_ISSUED_IN_FUTURE] = "issued-in-future",
	[JWT_LIFETIME_TOO_LONG] = "lifetime-too-long",
	[JWT_NOT_BOUND] = "not-bound",
	[JWT_MISSING_CLAIM] = "missing-claim",
	[JWT_INTERNAL] = "internal-error",
};

const char *jwt_reason_name(enum jwt_reason reason)
{
	if ((unsigned int)reason < sizeof(reason_names) / sizeof(reason_names[0]))
		return reason_names[reason];
	return "unknown";
}

enum jwt_reason jwt_refuse(struct jwt_result *res, enum jwt_reason reason, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->err.msg, sizeof(res->err.msg), fmt, ap);
	va_end(ap);
	res->reason = reason;
	return reason;
}

/* A header value (alg, kid) as it may appear in a message: short, and with
 * nothing that could forge or break a log line. */
static const char *shown(const char *s, char *buf, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size; i++)
		buf[i] = (s[i] > ' ' && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

static json_t *load_object(const uint8_t *buf, size_t len)
{
	json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);

	if (v && !json_is_object(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

static int alg_bit(const char *alg)
{
	if (!strcmp(alg, "ES256"))
		return JWS_ES256;
	if (!strcmp(alg, "RS256"))
		return JWS_RS256;
	return 0;
}

/* JOSE carries ECDSA signatures as R || S (RFC 7518 section 3.4); OpenSSL
 * verifies DER. Returns the DER length, 0 on failure. */
static int es256_to_der(const uint8_t *raw, unsigned char **der)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, ES256_COORD, NULL);
	BIGNUM *s = BN_bin2bn(raw + ES256_COORD, ES256_COORD, NULL);
	int len = 0;

	if (sig && r && s && ECDSA_SIG_set0(sig, r, s)) {
		r = s = NULL;
		len = i2d_ECDSA_SIG(sig, der);
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return len > 0 ? len : 0;
}

/* 1: valid, 0: not, -1: could not be checked. */
static int verify_sig(EVP_PKEY *pkey, int alg, const char *input, size_t input_len,
		      const uint8_t *sig, size_t sig_len)
{
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *der = NULL;
	EVP_MD_CTX *md;
	int der_len, ret = -1;

	if (alg == JWS_ES256) {
		/* A DER signature, or any other length, is not a JWS ES256 one. */
		if (sig_len != ES256_SIG_LEN)
			return 0;
		der_len = es256_to_der(sig, &der);
		if (!der_len)
			return -1;
		sig = der;
		sig_len = der_len;
	}
	md = EVP_MD_CTX_new();
	if (md && EVP_DigestVerifyInit_ex(md, &pctx, "SHA256", NULL, NULL, pkey, NULL) == 1 &&
	    (alg != JWS_RS256 || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1))
		ret = EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)input, input_len) == 1;
	OPENSSL_free(der);
	EVP_MD_CTX_free(md);
	return ret;
}

/* A NumericDate member: 1 when present and valid, 0 when absent, -EINVAL
 * when not a number, -ERANGE when too far from 1970 to compute with. */
static int numeric_date(json_t *claims, const char *name, int64_t *out)
{
	json_t *v = json_object_get(claims, name);
	double d;

	if (!v)
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
	} else if (json_is_real(v)) {
		d = json_real_value(v);
		if (!(d > -(double)DATE_MAX && d < (double)DATE_MAX))
			return -ERANGE;
		/* Rounded up: against whole seconds (now, now +- skew), x <= n and
		 * x > n hold exactly when they hold for ceil(x), so exp, nbf and
		 * iat compare as if the fraction were kept. Rounding down would
		 * cut an exp short and move an nbf or iat into the past. */
		*out = (int64_t)d + ((double)(int64_t)d < d);
	} else {
		return -EINVAL;
	}
	return *out > -DATE_MAX && *out < DATE_MAX ? 1 : -ERANGE;
}

/* Refuses the NumericDate name that numeric_date() found bad (has < 0). */
static enum jwt_reason bad_date(struct jwt_result *res, const char *name, int has)
{
	if (has == -ERANGE)
		return jwt_refuse(res, JWT_MALFORMED,
				  "claim %s is out of range (more than %lld s from 1970)", name,
				  DATE_MAX);
	return jwt_refuse(res, JWT_MALFORMED, "claim %s is not a NumericDate", name);
}

/* A string claim: 1 when present, 0 when absent, -1 when not a string. */
static int string_claim(json_t *claims, const char *name, const char **out)
{
	json_t *v = json_object_get(claims, name);

	*out = json_string_value(v);
	if (!v)
		return 0;
	return *out ? 1 : -1;
}

static bool audience_has(json_t *aud, const char *want, bool *malformed)
{
	json_t *v;
	size_t i;
	bool found = false;

	*malformed = false;
	if (json_is_string(aud))
		return !strcmp(json_string_value(aud), want);
	if (!json_is_array(aud)) {
		*malformed = true;
		return false;
	}
	json_array_foreach(aud, i, v) {
		if (!json_is_string(v)) {
			*malformed = true;
			return false;
		}
		found = found || !strcmp(json_string_value(v), want);
	}
	return found;
}

static enum jwt_reason check_claims(const struct jwt_verify_opts *o, struct jwt_result *res)
{
	json_t *claims = res->claims, *aud, *cnf;
	int64_t now = o->now ? o->now : (int64_t)time(NULL);
	int64_t skew = o->skew ? o->skew : JWT_DEFAULT_SKEW;
	int64_t nbf, iat;
	const char *x5t = NULL;
	bool bad_aud;
	int has;

	has = string_claim(claims, "iss", &res->iss);
	if (has <= 0)
		return jwt_refuse(res, has ? JWT_MALFORMED : JWT_MISSING_CLAIM,
				  has ? "claim iss is not a string" : "claim iss is missing");
	has = string_claim(claims, "sub", &res->sub);
	if (has <= 0)
		return jwt_refuse(res, has ? JWT_MALFORMED : JWT_MISSING_CLAIM,
				  has ? "claim sub is not a string" : "claim sub is missing");
	if (string_claim(claims, "jti", &res->jti) < 0)
		return jwt_refuse(res, JWT_MALFORMED, "claim jti is not a string");
	has = numeric_date(claims, "exp", &res->exp);
	if (has < 0)
		return bad_date(res, "exp", has);
	if (!has)
		return jwt_refuse(res, JWT_MISSING_CLAIM, "claim exp is missing");

	if (strcmp(res->iss, o->issuer))
		return jwt_refuse(res, JWT_BAD_ISSUER, "claim iss is not the expected issuer");
	aud = json_object_get(claims, "aud");
	if (!aud)
		return jwt_refuse(res, JWT_MISSING_CLAIM, "claim aud is missing");
	if (!audience_has(aud, o->audience, &bad_aud))
		return jwt_refuse(res, bad_aud ? JWT_MALFORMED : JWT_BAD_AUDIENCE,
				  bad_aud ? "claim aud is not a string or an array of strings"
					  : "claim aud does not name this audience");

	if (res->exp <= now - skew)
		return jwt_refuse(res, JWT_EXPIRED, "claim exp: expired %lld s ago",
				  (long long)(now - res->exp));
	has = numeric_date(claims, "nbf", &nbf);
	if (has < 0)
		return bad_date(res, "nbf", has);
	if (has && nbf > now + skew)
		return jwt_refuse(res, JWT_NOT_YET_VALID, "claim nbf: valid in %lld s",
				  (long long)(nbf - now));
	has = numeric_date(claims, "iat", &iat);
	if (has < 0)
		return bad_date(res, "iat", has);
	if (has && iat > now + skew)
		return jwt_refuse(res, JWT_ISSUED_IN_FUTURE, "claim iat: %lld s in the future",
				  (long long)(iat - now));
	if (o->max_lifetime) {
		if (!has)
			return jwt_refuse(res, JWT_MISSING_CLAIM,
					  "claim iat is missing (needed to bound the lifetime)");
		if (res->exp - iat > o->max_lifetime)
			return jwt_refuse(res, JWT_LIFETIME_TOO_LONG,
					  "claims exp - iat: lifetime %lld s exceeds %lld s",
					  (long long)(res->exp - iat), (long long)o->max_lifetime);
	}

	cnf = json_object_get(claims, "cnf");
	if (cnf && !json_is_object(cnf))
		return jwt_refuse(res, JWT_MALFORMED, "claim cnf is not an object");
	if (string_claim(cnf, "x5t#S256", &x5t) < 0)
		return jwt_refuse(res, JWT_MALFORMED, "claim cnf.x5t#S256 is not a string");
	if ((o->cnf_x5t || o->require_cnf) && !x5t)
		return jwt_refuse(res, JWT_NOT_BOUND, "claim cnf.x5t#S256 is missing");
	if (o->cnf_x5t && strcmp(x5t, o->cnf_x5t))
		return jwt_refuse(res, JWT_NOT_BOUND,
				  "claim cnf.x5t#S256: bound to another certificate");
	res->reason = JWT_OK;
	return JWT_OK;
}

enum jwt_reason jwt_verify(const char *token, const struct jwt_verify_opts *o,
			   struct jwt_result *res)
{
	/* All three parts decode back to back into this. */
	uint8_t buf[B64URL_DEC_LEN(JWT_MAX_LEN)];
	const char *dot1, *dot2, *alg;
	size_t len, hlen, plen, slen;
	unsigned int allowed = o->algs ? o->algs : JWS_ES256 | JWS_RS256;
	EVP_PKEY *pkey = NULL;
	char a[24], k[48];
	json_t *kid;
	int bit, ret;

	memset(res, 0, sizeof(*res));
	if (!o->issuer || !o->audience || !o->get_key)
		return jwt_refuse(res, JWT_INTERNAL, "verifier has no issuer, audience or keys");
	len = strnlen(token, JWT_MAX_LEN + 1);
	if (len > JWT_MAX_LEN)
		return jwt_refuse(res, JWT_TOO_LARGE, "token longer than %d bytes", JWT_MAX_LEN);
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (dot1 + 1 - token)) : NULL;
	if (!dot2 || memchr(dot2 + 1, '.', len - (dot2 + 1 - token)))
		return jwt_refuse(res, JWT_MALFORMED, "token is not three dot-separated parts");
	if (b64url_decode(token, dot1 - token, buf, &hlen) ||
	    b64url_decode(dot1 + 1, dot2 - dot1 - 1, buf + hlen, &plen) ||
	    b64url_decode(dot2 + 1, len - (dot2 + 1 - token), buf + hlen + plen, &slen))
		return jwt_refuse(res, JWT_MALFORMED, "token part is not unpadded base64url");

	res->header = load_object(buf, hlen);
	if (!res->header)
		return jwt_refuse(res, JWT_MALFORMED, "header is not a JSON object");
	alg = json_string_value(json_object_get(res->header, "alg"));
	if (!alg)
		return jwt_refuse(res, JWT_MALFORMED, "header has no alg");
	kid = json_object_get(res->header, "kid");
	if (kid && !json_is_string(kid))
		return jwt_refuse(res, JWT_MALFORMED, "header kid is not a string");
	res->kid = json_string_value(kid);
	/* RFC 7515 section 4.1.11: extensions we do not implement must fail. */
	if (json_object_get(res->header, "crit"))
		return jwt_refuse(res, JWT_MALFORMED, "header has crit extensions");
	bit = alg_bit(alg);
	if (!(bit & allowed))
		return jwt_refuse(res, JWT_ALG_NOT_ALLOWED, "alg \"%s\" is not allowed",
				  shown(alg, a, sizeof(a)));

	ret = o->get_key(o->key_ctx, res->kid, &pkey);
	if (ret)
		return jwt_refuse(res, JWT_UNKNOWN_KID, "kid \"%s\": %s",
				  res->kid ? shown(res->kid, k, sizeof(k)) : "-",
				  ret == -ENOENT ? "unknown" : strerror(-ret));
	/* The header must not pick how a key is used: an RS256 header on an EC
	 * key, or HS256 with a public key as the secret, never verifies. */
	if (jwks_key_alg(pkey) != bit) {
		EVP_PKEY_free(pkey);
		return jwt_refuse(res, JWT_ALG_NOT_ALLOWED,
				  "alg %s does not match the key of kid \"%s\"", alg,
				  res->kid ? shown(res->kid, k, sizeof(k)) : "-");
	}
	ret = verify_sig(pkey, bit, token, dot2 - token, buf + hlen + plen, slen);
	EVP_PKEY_free(pkey);
	if (ret != 1) {
		/* Leave nothing in this thread's queue for a later TLS call. */
		ERR_clear_error();
		return ret ? jwt_refuse(res, JWT_INTERNAL, "signature could not be checked")
			   : jwt_refuse(res, JWT_BAD_SIGNATURE, "signature does not verify");
	}

	/* Only now, with the signature verified, is the payload parsed. */
	res->claims = load_object(buf + hlen, plen);
	if (!res->claims)
		return jwt_refuse(res, JWT_MALFORMED, "payload is not a JSON object");
	return check_claims(o, res);
}

void jwt_result_free(struct jwt_result *res)
{
	json_decref(res->claims);
	json_decref(res->header);
	memset(res, 0, sizeof(*res));
}

int jwt_sign_es256(EVP_PKEY *key, json_t *header, json_t *claims, char **out,
		   struct errmsg *err)
{
	unsigned char der[EVP_MAX_MD_SIZE * 2 + 16], raw[ES256_SIG_LEN];
	const unsigned char *p = der;
	char *hdr = NULL, *pay = NULL, *tok = NULL;
	size_t der_len = sizeof(der), hlen, plen, n;
	ECDSA_SIG *sig = NULL;
	EVP_MD_CTX *md = NULL;
	int ret;

	*out = NULL;
	if (jwks_key_alg(key) != JWS_ES256 || !json_is_object(header) || !json_is_object(claims))
		return errmsg_set(err, -EINVAL, "ES256 token: needs an EC P-256 key, a header "
				  "and a claims object");
	hdr = json_dumps(header, JSON_COMPACT);
	pay = json_dumps(claims, JSON_COMPACT);
	if (!hdr || !pay) {
		ret = errmsg_set(err, -ENOMEM, "ES256 token: out of memory");
		goto out;
	}
	hlen = strlen(hdr);
	plen = strlen(pay);
	n = B64URL_ENC_LEN(hlen) + 1 + B64URL_ENC_LEN(plen) + 1 + B64URL_ENC_LEN(ES256_SIG_LEN);
	/* What we mint, our peers must accept. */
	if (n > JWT_MAX_LEN) {
		ret = errmsg_set(err, -E2BIG, "ES256 token: %zu bytes, more than %d", n,
				 JWT_MAX_LEN);
		goto out;
	}
	tok = malloc(n + 1);
	md = EVP_MD_CTX_new();
	if (!tok || !md) {
		ret = errmsg_set(err, -ENOMEM, "ES256 token: out of memory");
		goto out;
	}
	n = b64url_encode(hdr, hlen, tok);
	tok[n++] = '.';
	n += b64url_encode(pay, plen, tok + n);
	if (EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
	    EVP_DigestSign(md, der, &der_len, (unsigned char *)tok, n) != 1 ||
	    !(sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) ||
	    BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, ES256_COORD) != ES256_COORD ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + ES256_COORD, ES256_COORD) != ES256_COORD) {
		ERR_clear_error();
		ret = errmsg_set(err, -EIO, "ES256 token: signing failed");
		goto out;
	}
	tok[n++] = '.';
	b64url_encode(raw, sizeof(raw), tok + n);
	*out = tok;
	tok = NULL;
	ret = 0;
out:
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	free(tok);
	free(hdr);
	free(pay);
	return ret;
}

int jwt_mint_es256(EVP_PKEY *key, const char *kid, json_t *claims, char **out,
		   struct errmsg *err)
{
	json_t *header = kid ? json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "JWT", "kid",
					 kid)
			     : json_pack("{s:s, s:s}", "alg", "ES256", "typ", "JWT");
	int ret;

	*out = NULL;
	if (!header)
		return errmsg_set(err, -ENOMEM, "ES256 token: out of memory");
	ret = jwt_sign_es256(key, header, claims, out, err);
	json_decref(header);
	return ret;
}

int jwt_workload_claims(const struct jwt_workload *w, json_t **out, struct errmsg *err)
{
	unsigned char rnd[16];
	char jti[2 * sizeof(rnd) + 1], iss[512], aud[512];
	json_error_t jerr;
	json_t *claims, *roles, *role;
	size_t i;
	int j;

	*out = NULL;
	if (!w->trust_domain || !w->node || !w->id || !w->cnf_x5t || w->lifetime <= 0 ||
	    w->nr_roles < 0 || (w->nr_roles && !w->roles))
		return errmsg_set(err, -EINVAL, "workload token: trust domain, node, id, "
				  "certificate thumbprint and a positive lifetime are required");
	if ((size_t)snprintf(iss, sizeof(iss), "spiffe://%s/node/%s", w->trust_domain,
			     w->node) >= sizeof(iss))
		return errmsg_set(err, -EINVAL, "workload token: node name too long");
	snprintf(aud, sizeof(aud), "spiffe://%s", w->trust_domain);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		ERR_clear_error();
		return errmsg_set(err, -EIO, "workload token %s: no random bytes for jti", w->id);
	}
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(jti + 2 * i, 3, "%02x", rnd[i]);

	roles = json_array();
	for (j = 0; roles && j < w->nr_roles; j++) {
		role = json_pack_ex(&jerr, 0, "s", w->roles[j]);
		if (!role || json_array_append_new(roles, role)) {
			json_decref(roles);
			return errmsg_set(err, -EINVAL, "workload token %s: role %d: %s", w->id, j,
					  role ? "out of memory" : jerr.text);
		}
	}
	claims = json_pack_ex(&jerr, 0, "{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:{s:s}, s:o}",
			      "iss", iss, "sub", w->id, "aud", aud, "iat", (json_int_t)w->now,
			      "nbf", (json_int_t)w->now, "exp", (json_int_t)(w->now + w->lifetime),
			      "jti", jti, "cnf", "x5t#S256", w->cnf_x5t, "roles", roles);
	if (!claims)
		return errmsg_set(err, -EINVAL, "workload token %s: %s", w->id, jerr.text);
	*out = claims;
	return 0;
}
