// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Workload tokens: minting and verifying embedded ES256 tokens against a
 * node certificate issued by a mesh CA, a table of attacks each refused with
 * its own reason, RS256 tokens signed here with OpenSSL directly against a
 * JWKS built here, a real oidc-provider token, RFC 7515's ES256 example, JWKS
 * parsing and base64url.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "b64url.h"
#include "jwks.h"
#include "jwt.h"
#include "pki.h"
#include "pki_ca.h"

#define NOW 1800000000LL
#define TD "acme.example"
#define AUD "spiffe://" TD
#define LIFETIME 300
#define MAX_LIFETIME 3600
#define IDP_ISS "https://idp.test"

static struct {
	EVP_PKEY *ca_key, *key_a, *key_b, *rsa;
	X509 *ca, *cert_a, *cert_b;
	char x5t_a[PKI_THUMBPRINT_LEN], x5t_b[PKI_THUMBPRINT_LEN];
	char iss_a[PKI_ID_MAX];
	/* What a peer of node A builds from A's certificate. */
	struct jwks *keys_a;
	/* An IdP's JWKS built in this file: RSA "rsa-1" and EC "ec-a" (key A). */
	struct jwks *keys_idp;
} f;

static char *b64(const void *p, size_t len)
{
	char *s = malloc(B64URL_ENC_LEN(len) + 1);

	assert_non_null(s);
	b64url_encode(p, len, s);
	return s;
}

static char *b64_bn(const BIGNUM *bn, int len)
{
	unsigned char buf[512];

	assert_true(len > 0 && len <= (int)sizeof(buf));
	assert_int_equal(BN_bn2binpad(bn, buf, len), len);
	return b64(buf, len);
}

/* header.payload.signature from the JSON texts and the signature bytes. */
static char *forge(const char *header, const char *payload, const void *sig, size_t sig_len)
{
	char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload));
	char *s = b64(sig, sig_len), *tok;

	assert_true(asprintf(&tok, "%s.%s.%s", h, p, s) > 0);
	free(h);
	free(p);
	free(s);
	return tok;
}

/* Signs with OpenSSL directly rather than through jwt.c, so that the
 * verifier is checked against a second implementation. DER output. */
static size_t sign_der(EVP_PKEY *key, int padding, const char *input, unsigned char *sig,
		       size_t cap)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	size_t len = cap;

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit_ex(md, &pctx, "SHA256", NULL, NULL, key, NULL), 1);
	if (padding)
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, padding), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &len, (const unsigned char *)input,
					strlen(input)), 1);
	EVP_MD_CTX_free(md);
	return len;
}

enum sig_form { SIG_RAW, SIG_DER, SIG_RSA };

static char *sign(EVP_PKEY *key, enum sig_form form, const char *header, const char *payload)
{
	char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload)), *input, *tok;
	unsigned char sig[512], raw[64];
	const unsigned char *q = sig;
	ECDSA_SIG *es;
	size_t len;

	assert_true(asprintf(&input, "%s.%s", h, p) > 0);
	len = sign_der(key, form == SIG_RSA ? RSA_PKCS1_PADDING : 0, input, sig, sizeof(sig));
	if (form == SIG_RAW) {
		es = d2i_ECDSA_SIG(NULL, &q, (long)len);
		assert_non_null(es);
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32), 32);
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32), 32);
		ECDSA_SIG_free(es);
		memcpy(sig, raw, sizeof(raw));
		len = sizeof(raw);
	}
	tok = forge(header, payload, sig, len);
	free(input);
	free(h);
	free(p);
	return tok;
}

static char *hs256(const char *header, const char *payload, const void *secret, size_t len)
{
	char *h = b64(header, strlen(header)), *p = b64(payload, strlen(payload)), *input, *tok;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len;

	assert_true(asprintf(&input, "%s.%s", h, p) > 0);
	assert_non_null(HMAC(EVP_sha256(), secret, (int)len, (unsigned char *)input,
			     strlen(input), mac, &mac_len));
	tok = forge(header, payload, mac, mac_len);
	free(input);
	free(h);
	free(p);
	return tok;
}

/* The claims node A's agent puts in a workload token. */
static json_t *claims(void)
{
	char *roles[] = { "etl", "readers" };
	struct jwt_workload w = {
		.trust_domain = TD, .node = "node-a", .id = AUD "/job/1234",
		.roles = roles, .nr_roles = 2, .cnf_x5t = f.x5t_a, .now = NOW,
		.lifetime = LIFETIME,
	};
	struct errmsg err = {};
	json_t *c;

	assert_int_equal(jwt_workload_claims(&w, &c, &err), 0);
	return c;
}

static char *mint(json_t *c)
{
	struct errmsg err = {};
	char *tok;

	assert_int_equal(jwt_mint_es256(f.key_a, f.x5t_a, c, &tok, &err), 0);
	json_decref(c);
	return tok;
}

static char *mint_set(const char *name, json_t *v)
{
	json_t *c = claims();

	assert_int_equal(json_object_set_new(c, name, v), 0);
	return mint(c);
}

static char *mint_del(const char *name)
{
	json_t *c = claims();

	assert_int_equal(json_object_del(c, name), 0);
	return mint(c);
}

static char *payload_json(void)
{
	json_t *c = claims();
	char *s = json_dumps(c, JSON_COMPACT);

	assert_non_null(s);
	json_decref(c);
	return s;
}

/* {"alg":alg,"typ":"JWT","kid":kid}; valid until the next call. */
static const char *header(const char *alg, const char *kid)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", alg, kid);
	return buf;
}

/* A token signed by sign() over header and the standard payload. */
static char *signed_with(EVP_PKEY *key, enum sig_form form, const char *hdr)
{
	char *p = payload_json(), *tok = sign(key, form, hdr, p);

	free(p);
	return tok;
}

static char *replace_part(const char *tok, int part, const char *json)
{
	const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
	char *enc = b64(json, strlen(json)), *out;

	if (part == 0)
		assert_true(asprintf(&out, "%s%s", enc, d1) > 0);
	else
		assert_true(asprintf(&out, "%.*s%s%s", (int)(d1 + 1 - tok), tok, enc, d2) > 0);
	free(enc);
	return out;
}

/* A token signed with key A under hdr over the standard payload. */
static char *t_header_as_given(const char *hdr)
{
	return signed_with(f.key_a, SIG_RAW, hdr);
}

static struct jwt_verify_opts embedded_opts(void)
{
	return (struct jwt_verify_opts){
		.issuer = f.iss_a,
		.audience = AUD,
		.get_key = jwks_get_key,
		.key_ctx = f.keys_a,
		.now = NOW,
		.max_lifetime = MAX_LIFETIME,
		.cnf_x5t = f.x5t_a,
	};
}

static char *idp_jwks_doc(void)
{
	BIGNUM *n = NULL, *e = NULL, *x = NULL, *y = NULL;
	char *sn, *se, *sx, *sy, *doc;

	assert_int_equal(EVP_PKEY_get_bn_param(f.rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(f.rsa, OSSL_PKEY_PARAM_RSA_E, &e), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(f.key_a, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(f.key_a, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
	sn = b64_bn(n, BN_num_bytes(n));
	se = b64_bn(e, BN_num_bytes(e));
	sx = b64_bn(x, 32);
	sy = b64_bn(y, 32);
	/* An encryption key and an HMAC key too: a verifier must skip both. */
	assert_true(asprintf(&doc, "{\"keys\":["
			     "{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":\"rsa-1\","
			     "\"n\":\"%s\",\"e\":\"%s\"},"
			     "{\"kty\":\"EC\",\"use\":\"sig\",\"alg\":\"ES256\",\"kid\":\"ec-a\","
			     "\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},"
			     "{\"kty\":\"EC\",\"use\":\"enc\",\"kid\":\"enc-1\","
			     "\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},"
			     "{\"kty\":\"oct\",\"kid\":\"hmac-1\",\"k\":\"c2VjcmV0\"}]}",
			     sn, se, sx, sy, sx, sy) > 0);
	free(sn);
	free(se);
	free(sx);
	free(sy);
	BN_free(n);
	BN_free(e);
	BN_free(x);
	BN_free(y);
	return doc;
}

static X509 *node_cert(EVP_PKEY *key, const char *node)
{
	char id[128];
	struct pki_cert_req req = {
		.spiffe_id = id, .cn = node, .not_before = NOW - 60, .not_after = NOW + 86400,
	};
	struct errmsg err = {};
	X509 *cert;

	snprintf(id, sizeof(id), "spiffe://" TD "/node/%s", node);
	assert_int_equal(pki_make_cert(&req, key, f.ca, f.ca_key, &cert, &err), 0);
	return cert;
}

static int setup(void **state)
{
	struct pki_cert_req ca = {
		.spiffe_id = AUD, .cn = "mesh CA", .ca = true,
		.not_before = NOW - 60, .not_after = NOW + 86400,
	};
	struct errmsg err = {};
	char *doc;

	if (pki_new_key(&f.ca_key, &err) || pki_new_key(&f.key_a, &err) ||
	    pki_new_key(&f.key_b, &err) || pki_make_cert(&ca, f.ca_key, NULL, NULL, &f.ca, &err))
		return -1;
	f.cert_a = node_cert(f.key_a, "node-a");
	f.cert_b = node_cert(f.key_b, "node-b");
	f.rsa = EVP_RSA_gen(2048);
	if (!f.rsa || pki_thumbprint(f.cert_a, f.x5t_a, sizeof(f.x5t_a)) ||
	    pki_thumbprint(f.cert_b, f.x5t_b, sizeof(f.x5t_b)) ||
	    pki_spiffe_id(f.cert_a, f.iss_a, sizeof(f.iss_a)) ||
	    jwks_from_cert(f.cert_a, f.x5t_a, &f.keys_a, &err))
		return -1;
	doc = idp_jwks_doc();
	if (jwks_parse(doc, strlen(doc), &f.keys_idp, &err))
		return -1;
	free(doc);
	return 0;
}

static int teardown(void **state)
{
	jwks_free(f.keys_a);
	jwks_free(f.keys_idp);
	X509_free(f.ca);
	X509_free(f.cert_a);
	X509_free(f.cert_b);
	EVP_PKEY_free(f.ca_key);
	EVP_PKEY_free(f.key_a);
	EVP_PKEY_free(f.key_b);
	EVP_PKEY_free(f.rsa);
	return 0;
}

static void test_reason_names(void **state)
{
	static const char *const want[] = {
		"ok", "malformed", "too-large", "alg-not-allowed", "unknown-kid",
		"bad-signature", "bad-issuer", "bad-audience", "expired", "not-yet-valid",
		"issued-in-future", "lifetime-too-long", "not-bound", "missing-claim",
		"internal-error",
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_string_equal(jwt_reason_name((enum jwt_reason)i), want[i]);
	assert_string_equal(jwt_reason_name((enum jwt_reason)99), "unknown");
}

static void test_b64url(void **state)
{
	/* RFC 4648 section 10, and the two characters that differ from base64. */
	static const struct {
		const char *bytes, *enc;
	} v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg" }, { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
		{ "\xfb\xff", "-_8" },
	};
	static const char *const bad[] = { "Zg==", "Zh", "Z", "Zm9v YmFy", "+/8", "Zm9v\n" };
	char enc[16];
	unsigned char dec[16];
	size_t len;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(b64url_encode(v[i].bytes, strlen(v[i].bytes), enc),
				 strlen(v[i].enc));
		assert_string_equal(enc, v[i].enc);
		assert_int_equal(b64url_decode(v[i].enc, strlen(v[i].enc), dec, &len), 0);
		assert_int_equal(len, strlen(v[i].bytes));
		assert_memory_equal(dec, v[i].bytes, len);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(b64url_decode(bad[i], strlen(bad[i]), dec, &len), -EINVAL);
}

static void test_mint_verify_round_trip(void **state)
{
	struct jwt_verify_opts o = embedded_opts();
	struct jwt_result res, other;
	char *tok = mint(claims()), *again = mint(claims());
	char hdr[128];
	const char *dot = strchr(tok, '.');
	json_t *roles;
	size_t len;
	unsigned char *h = malloc(B64URL_DEC_LEN(dot - tok) + 1);

	assert_non_null(h);
	assert_int_equal(b64url_decode(tok, dot - tok, h, &len), 0);
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", f.x5t_a);
	assert_int_equal(len, strlen(hdr));
	assert_memory_equal(h, hdr, len);
	free(h);
	/* R || S: 64 bytes, 86 characters. */
	assert_int_equal(strlen(strrchr(tok, '.') + 1), 86);

	assert_int_equal(jwt_verify(tok, &o, &res), JWT_OK);
	assert_string_equal(res.err.msg, "");
	assert_string_equal(res.iss, "spiffe://" TD "/node/node-a");
	assert_string_equal(res.sub, AUD "/job/1234");
	assert_string_equal(res.kid, f.x5t_a);
	assert_int_equal(res.exp, NOW + LIFETIME);
	assert_int_equal(strlen(res.jti), 32);
	assert_int_equal(strspn(res.jti, "0123456789abcdef"), 32);
	assert_int_equal(json_integer_value(json_object_get(res.claims, "iat")), NOW);
	assert_int_equal(json_integer_value(json_object_get(res.claims, "nbf")), NOW);
	assert_string_equal(json_string_value(json_object_get(res.claims, "aud")), AUD);
	assert_string_equal(json_string_value(json_object_get(json_object_get(res.claims, "cnf"),
							      "x5t#S256")), f.x5t_a);
	roles = json_object_get(res.claims, "roles");
	assert_int_equal(json_array_size(roles), 2);
	assert_string_equal(json_string_value(json_array_get(roles, 0)), "etl");
	assert_string_equal(json_string_value(json_array_get(roles, 1)), "readers");
	jwt_result_free(&res);

	/* A fresh jti per token. */
	assert_int_equal(jwt_verify(tok, &o, &res), JWT_OK);
	assert_int_equal(jwt_verify(again, &o, &other), JWT_OK);
	assert_string_not_equal(res.jti, other.jti);
	jwt_result_free(&res);
	jwt_result_free(&other);
	free(tok);
	free(again);
}

static void test_mint_refuses(void **state)
{
	struct jwt_workload no_lifetime = {
		.trust_domain = TD, .node = "n", .id = AUD "/job/1", .cnf_x5t = f.x5t_a, .now = NOW,
	};
	struct errmsg err = {};
	json_t *c = claims();
	char *tok = NULL, big[JWT_MAX_LEN];

	assert_int_equal(jwt_mint_es256(f.rsa, "k", c, &tok, &err), -EINVAL);
	assert_null(tok);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_object_set_new(c, "pad", json_string(big));
	assert_int_equal(jwt_mint_es256(f.key_a, "k", c, &tok, &err), -E2BIG);
	assert_null(tok);
	json_decref(c);

	assert_int_equal(jwt_workload_claims(&no_lifetime, &c, &err), -EINVAL);
	assert_null(c);
}

/* Attacks. Each builds a token (and may change the verifier's options). */

static char *t_alg_none_empty_sig(void)
{
	char *p = payload_json(), *tok = forge(header("none", f.x5t_a), p, "", 0);

	free(p);
	return tok;
}

static char *t_alg_none_with_sig(void)
{
	char *p = payload_json(), *tok = forge(header("none", f.x5t_a), p, "sig", 3);

	free(p);
	return tok;
}

static char *t_alg_none_two_parts(void)
{
	char *tok = t_alg_none_empty_sig();

	*strrchr(tok, '.') = '\0';
	return tok;
}

static char *t_alg_none_mixed_case(void)
{
	char *p = payload_json(), *tok = forge(header("nOnE", f.x5t_a), p, "", 0);

	free(p);
	return tok;
}

/* The classic: an HS256 token whose HMAC secret is the verifier's public
 * key, hoping it is used as the HMAC key. */
static char *t_hs256_ec_pubkey(void)
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(f.key_a, &der);
	char *p = payload_json(), *tok;

	assert_true(len > 0);
	tok = hs256(header("HS256", f.x5t_a), p, der, len);
	OPENSSL_free(der);
	free(p);
	return tok;
}

static char *t_hs256_rsa_pem(void)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem, *p = payload_json(), *tok;
	long len;

	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PUBKEY(bio, f.rsa), 1);
	len = BIO_get_mem_data(bio, &pem);
	tok = hs256(header("HS256", "rsa-1"), p, pem, len);
	BIO_free(bio);
	free(p);
	return tok;
}

static char *t_wrong_issuer(void)
{
	return mint_set("iss", json_string("spiffe://" TD "/node/node-b"));
}

static char *t_wrong_audience(void)
{
	return mint_set("aud", json_string("spiffe://other.example"));
}

static char *t_wrong_audience_array(void)
{
	return mint_set("aud", json_pack("[s, s]", "spiffe://other.example", AUD "/x"));
}

static char *t_audience_in_array(void)
{
	return mint_set("aud", json_pack("[s, s]", "spiffe://other.example", AUD));
}

static char *t_audience_not_strings(void)
{
	return mint_set("aud", json_pack("[s, i]", AUD, 7));
}

static char *t_expired(void)
{
	return mint_set("exp", json_integer(NOW - 31));
}

static char *t_expired_at_skew(void)
{
	return mint_set("exp", json_integer(NOW - 30));
}

static char *t_expired_within_skew(void)
{
	return mint_set("exp", json_integer(NOW - 29));
}

static char *t_exp_fractional(void)
{
	return mint_set("exp", json_real(NOW - 29.5));
}

static char *t_exp_fractional_past_skew(void)
{
	return mint_set("exp", json_real(NOW - 30.5));
}

static char *t_nbf_fractional_past_skew(void)
{
	return mint_set("nbf", json_real(NOW + 30.5));
}

static char *t_exp_string(void)
{
	return mint_set("exp", json_string("1800000300"));
}

static char *t_no_exp(void)
{
	return mint_del("exp");
}

static char *t_no_aud(void)
{
	return mint_del("aud");
}

static char *t_no_sub(void)
{
	return mint_del("sub");
}

static char *t_not_yet_valid(void)
{
	return mint_set("nbf", json_integer(NOW + 31));
}

static char *t_nbf_within_skew(void)
{
	return mint_set("nbf", json_integer(NOW + 30));
}

static char *t_iat_future(void)
{
	return mint_set("iat", json_integer(NOW + 120));
}

static char *t_lifetime_too_long(void)
{
	json_t *c = claims();

	json_object_set_new(c, "exp", json_integer(NOW + MAX_LIFETIME + 1));
	return mint(c);
}

static char *t_no_iat_with_max_lifetime(void)
{
	return mint_del("iat");
}

static char *t_unknown_kid(void)
{
	struct errmsg err = {};
	char *tok;
	json_t *c = claims();

	assert_int_equal(jwt_mint_es256(f.key_a, "rotated-away", c, &tok, &err), 0);
	json_decref(c);
	return tok;
}

static char *t_no_kid_many_keys(void)
{
	struct errmsg err = {};
	char *tok;
	json_t *c = claims();

	assert_int_equal(jwt_mint_es256(f.key_a, NULL, c, &tok, &err), 0);
	json_decref(c);
	return tok;
}

static char *t_tampered_payload(void)
{
	char *tok = mint(claims()), *p, *out;
	json_t *c = claims();

	json_object_set_new(c, "sub", json_string(AUD "/job/evil"));
	p = json_dumps(c, JSON_COMPACT);
	out = replace_part(tok, 1, p);
	json_decref(c);
	free(p);
	free(tok);
	return out;
}

static char *t_signed_by_other_node(void)
{
	return signed_with(f.key_b, SIG_RAW, header("ES256", f.x5t_a));
}

/* ES256 header on a genuine RS256 token, and the other way round. */
static char *t_rs256_header_on_es256(void)
{
	char *tok = mint(claims()), *out = replace_part(tok, 0, header("RS256", f.x5t_a));

	free(tok);
	return out;
}

static char *t_es256_header_on_rs256(void)
{
	char *tok = signed_with(f.rsa, SIG_RSA, header("RS256", "rsa-1"));
	char *out = replace_part(tok, 0, header("ES256", "rsa-1"));

	free(tok);
	return out;
}

static char *t_rs256_with_ec_key_kid(void)
{
	return signed_with(f.rsa, SIG_RSA, header("RS256", "ec-a"));
}

/* The token brings its own key, hoping the verifier uses it. */
static char *t_embedded_jwk(void)
{
	char hdr[256];

	snprintf(hdr, sizeof(hdr),
		 "{\"alg\":\"ES256\",\"kid\":\"%s\",\"jwk\":{\"kty\":\"EC\",\"crv\":\"P-256\"}}",
		 f.x5t_a);
	return signed_with(f.key_b, SIG_RAW, hdr);
}

/* RSASSA-PSS is not on the allow-list, whatever key it names. */
static char *t_alg_ps256(void)
{
	return t_header_as_given(header("PS256", f.x5t_a));
}

/* Algorithm names are case-sensitive (RFC 7515 section 4.1.1). */
static char *t_alg_es256_lowercase(void)
{
	return t_header_as_given(header("es256", f.x5t_a));
}

/* jku and x5u name where keys could be fetched; the verifier never looks:
 * the kid picks a key the verifier already has, or none. */
static char *t_jku_x5u(void)
{
	char hdr[320];

	snprintf(hdr, sizeof(hdr),
		 "{\"alg\":\"ES256\",\"kid\":\"%s\",\"jku\":\"https://127.0.0.1:1/jwks\","
		 "\"x5u\":\"https://127.0.0.1:1/cert.pem\"}",
		 f.x5t_a);
	return t_header_as_given(hdr);
}

static char *t_jku_x5u_unknown_kid(void)
{
	return signed_with(f.key_b, SIG_RAW,
			   "{\"alg\":\"ES256\",\"kid\":\"in-the-jku-set\","
			   "\"jku\":\"https://127.0.0.1:1/jwks\","
			   "\"x5u\":\"https://127.0.0.1:1/cert.pem\"}");
}

static char *t_bound_to_other_node(void)
{
	return mint_set("cnf", json_pack("{s:s}", "x5t#S256", f.x5t_b));
}

static char *t_no_cnf(void)
{
	return mint_del("cnf");
}

static char *t_cnf_not_object(void)
{
	return mint_set("cnf", json_string(f.x5t_a));
}

static char *t_huge(size_t len)
{
	char *tok = malloc(len + 1);

	assert_non_null(tok);
	memset(tok, 'A', len);
	tok[len / 3] = '.';
	tok[2 * len / 3] = '.';
	tok[len] = '\0';
	return tok;
}

static char *t_one_mib(void)
{
	return t_huge(1 << 20);
}

static char *t_just_over_limit(void)
{
	return t_huge(JWT_MAX_LEN + 1);
}

static char *t_at_limit(void)
{
	return t_huge(JWT_MAX_LEN);
}

static char *t_truncated(void)
{
	char *tok = mint(claims());

	tok[strlen(tok) / 2] = '\0';
	return tok;
}

static char *t_truncated_signature(void)
{
	char *tok = mint(claims());

	/* Two characters off leave 84, still canonical base64url (63 bytes):
	 * refused for its length, not for its encoding. */
	tok[strlen(tok) - 2] = '\0';
	return tok;
}

static char *t_garbage(void)
{
	return strdup("\x01\xffnot a token at all");
}

static char *t_empty(void)
{
	return strdup("");
}

static char *t_only_dots(void)
{
	return strdup("..");
}

static char *t_header_not_json(void)
{
	char *tok = mint(claims()), *out = replace_part(tok, 0, "{\"alg\":\"ES256\"");

	free(tok);
	return out;
}

static char *t_header_array(void)
{
	char *tok = mint(claims()), *out = replace_part(tok, 0, "[\"ES256\"]");

	free(tok);
	return out;
}

static char *t_der_signature(void)
{
	return signed_with(f.key_a, SIG_DER, header("ES256", f.x5t_a));
}

/* r = s = 0 verifies everything in a broken ECDSA (CVE-2022-21449). */
static char *t_zero_signature(void)
{
	static const unsigned char zero[64];
	char *p = payload_json(), *tok = forge(header("ES256", f.x5t_a), p, zero, sizeof(zero));

	free(p);
	return tok;
}

static char *t_extra_dots(void)
{
	char *tok = mint(claims()), *out;

	assert_true(asprintf(&out, "%s.", tok) > 0);
	free(tok);
	return out;
}

static char *t_padded(void)
{
	char *tok = mint(claims()), *out;

	assert_true(asprintf(&out, "%s==", tok) > 0);
	free(tok);
	return out;
}

/* The last of 86 characters carries 4 unused bits, which must be zero:
 * otherwise many strings would pass for one signature. */
static char *t_noncanonical_signature(void)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *tok = mint(claims()), *last = tok + strlen(tok) - 1;

	*last = alphabet[(strchr(alphabet, *last) - alphabet) | 1];
	return tok;
}

static char *t_crit(void)
{
	char hdr[256];

	snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"kid\":\"%s\",\"crit\":[\"exp\"],"
		 "\"exp\":1}", f.x5t_a);
	return signed_with(f.key_a, SIG_RAW, hdr);
}

static char *t_duplicate_claim(void)
{
	char *p = payload_json(), *dup, *tok;

	/* A second sub after the first: parsers that keep the last one would
	 * see another identity than those that keep the first. */
	p[strlen(p) - 1] = '\0';
	assert_true(asprintf(&dup, "%s,\"sub\":\"" AUD "/job/evil\"}", p) > 0);
	tok = sign(f.key_a, SIG_RAW, header("ES256", f.x5t_a), dup);
	free(dup);
	free(p);
	return tok;
}

static char *t_payload_not_object(void)
{
	return sign(f.key_a, SIG_RAW, header("ES256", f.x5t_a), "[1,2]");
}

static void o_idp_keys(struct jwt_verify_opts *o)
{
	o->key_ctx = f.keys_idp;
}

static void o_require_cnf_only(struct jwt_verify_opts *o)
{
	o->cnf_x5t = NULL;
	o->require_cnf = true;
}

static void o_es256_only_idp(struct jwt_verify_opts *o)
{
	o->key_ctx = f.keys_idp;
	o->algs = JWS_ES256;
}

static int failing_get_key(void *ctx, const char *kid, EVP_PKEY **pkey)
{
	return -EHOSTUNREACH;
}

static void o_key_unavailable(struct jwt_verify_opts *o)
{
	o->get_key = failing_get_key;
}

static const struct attack {
	const char *name;
	char *(*token)(void);
	void (*opts)(struct jwt_verify_opts *o);
	enum jwt_reason want;
} attacks[] = {
	{ "alg none, empty signature", t_alg_none_empty_sig, NULL, JWT_ALG_NOT_ALLOWED },
	{ "alg none, with a signature", t_alg_none_with_sig, NULL, JWT_ALG_NOT_ALLOWED },
	{ "alg none, no signature part", t_alg_none_two_parts, NULL, JWT_MALFORMED },
	{ "alg nOnE", t_alg_none_mixed_case, NULL, JWT_ALG_NOT_ALLOWED },
	{ "HS256 keyed with the EC public key", t_hs256_ec_pubkey, NULL, JWT_ALG_NOT_ALLOWED },
	{ "HS256 keyed with the RSA public key PEM", t_hs256_rsa_pem, o_idp_keys,
	  JWT_ALG_NOT_ALLOWED },
	{ "wrong issuer", t_wrong_issuer, NULL, JWT_BAD_ISSUER },
	{ "wrong audience", t_wrong_audience, NULL, JWT_BAD_AUDIENCE },
	{ "wrong audience in an array", t_wrong_audience_array, NULL, JWT_BAD_AUDIENCE },
	{ "audience in an array (accepted)", t_audience_in_array, NULL, JWT_OK },
	{ "audience array with a number", t_audience_not_strings, NULL, JWT_MALFORMED },
	{ "expired beyond the skew", t_expired, NULL, JWT_EXPIRED },
	{ "expired exactly at the skew", t_expired_at_skew, NULL, JWT_EXPIRED },
	{ "expired within the skew (accepted)", t_expired_within_skew, NULL, JWT_OK },
	{ "fractional exp within the skew (accepted)", t_exp_fractional, NULL, JWT_OK },
	{ "fractional exp just past the skew", t_exp_fractional_past_skew, NULL, JWT_EXPIRED },
	{ "fractional nbf just past the skew", t_nbf_fractional_past_skew, NULL,
	  JWT_NOT_YET_VALID },
	{ "exp as a string", t_exp_string, NULL, JWT_MALFORMED },
	{ "no exp", t_no_exp, NULL, JWT_MISSING_CLAIM },
	{ "no aud", t_no_aud, NULL, JWT_MISSING_CLAIM },
	{ "no sub", t_no_sub, NULL, JWT_MISSING_CLAIM },
	{ "not yet valid", t_not_yet_valid, NULL, JWT_NOT_YET_VALID },
	{ "nbf within the skew (accepted)", t_nbf_within_skew, NULL, JWT_OK },
	{ "iat in the future", t_iat_future, NULL, JWT_ISSUED_IN_FUTURE },
	{ "lifetime above the maximum", t_lifetime_too_long, NULL, JWT_LIFETIME_TOO_LONG },
	{ "no iat under a maximum lifetime", t_no_iat_with_max_lifetime, NULL,
	  JWT_MISSING_CLAIM },
	{ "unknown kid", t_unknown_kid, NULL, JWT_UNKNOWN_KID },
	{ "no kid, several keys", t_no_kid_many_keys, o_idp_keys, JWT_UNKNOWN_KID },
	{ "key lookup failing", t_unknown_kid, o_key_unavailable, JWT_UNKNOWN_KID },
	{ "tampered payload", t_tampered_payload, NULL, JWT_BAD_SIGNATURE },
	{ "signed by another node's key", t_signed_by_other_node, NULL, JWT_BAD_SIGNATURE },
	{ "header swapped ES256 -> RS256", t_rs256_header_on_es256, NULL, JWT_ALG_NOT_ALLOWED },
	{ "header swapped RS256 -> ES256", t_es256_header_on_rs256, o_idp_keys,
	  JWT_ALG_NOT_ALLOWED },
	{ "RS256 naming an EC key", t_rs256_with_ec_key_kid, o_idp_keys, JWT_ALG_NOT_ALLOWED },
	{ "RS256 when only ES256 is allowed", t_es256_header_on_rs256, o_es256_only_idp,
	  JWT_ALG_NOT_ALLOWED },
	{ "key embedded in the header", t_embedded_jwk, NULL, JWT_BAD_SIGNATURE },
	{ "alg PS256", t_alg_ps256, NULL, JWT_ALG_NOT_ALLOWED },
	{ "alg es256 (lower case)", t_alg_es256_lowercase, NULL, JWT_ALG_NOT_ALLOWED },
	{ "jku and x5u headers (accepted: ignored)", t_jku_x5u, NULL, JWT_OK },
	{ "jku and x5u headers, kid only there", t_jku_x5u_unknown_kid, NULL, JWT_UNKNOWN_KID },
	{ "bound to another node's certificate", t_bound_to_other_node, NULL, JWT_NOT_BOUND },
	{ "no cnf, binding expected", t_no_cnf, NULL, JWT_NOT_BOUND },
	{ "no cnf, cnf required", t_no_cnf, o_require_cnf_only, JWT_NOT_BOUND },
	{ "cnf not an object", t_cnf_not_object, NULL, JWT_MALFORMED },
	{ "1 MiB token", t_one_mib, NULL, JWT_TOO_LARGE },
	{ "one byte over the limit", t_just_over_limit, NULL, JWT_TOO_LARGE },
	{ "garbage at the limit", t_at_limit, NULL, JWT_MALFORMED },
	{ "truncated", t_truncated, NULL, JWT_MALFORMED },
	{ "truncated signature", t_truncated_signature, NULL, JWT_BAD_SIGNATURE },
	{ "garbage", t_garbage, NULL, JWT_MALFORMED },
	{ "empty", t_empty, NULL, JWT_MALFORMED },
	{ "only dots", t_only_dots, NULL, JWT_MALFORMED },
	{ "header not JSON", t_header_not_json, NULL, JWT_MALFORMED },
	{ "header an array", t_header_array, NULL, JWT_MALFORMED },
	{ "DER-encoded ES256 signature", t_der_signature, NULL, JWT_BAD_SIGNATURE },
	{ "all-zero ES256 signature", t_zero_signature, NULL, JWT_BAD_SIGNATURE },
	{ "extra dot", t_extra_dots, NULL, JWT_MALFORMED },
	{ "base64 padding", t_padded, NULL, JWT_MALFORMED },
	{ "non-canonical base64url signature", t_noncanonical_signature, NULL, JWT_MALFORMED },
	{ "crit header", t_crit, NULL, JWT_MALFORMED },
	{ "duplicate claim", t_duplicate_claim, NULL, JWT_MALFORMED },
	{ "payload not an object", t_payload_not_object, NULL, JWT_MALFORMED },
};

/* No part of a token may be echoed in a message. */
static void assert_not_echoed(const char *name, const char *tok, const char *msg)
{
	const char *part = tok;
	char piece[13];

	while (part && *part) {
		snprintf(piece, sizeof(piece), "%s", part);
		piece[strcspn(piece, ".")] = '\0';
		if (strlen(piece) >= 8 && strstr(msg, piece))
			fail_msg("%s: message \"%s\" quotes the token", name, msg);
		part = strchr(part, '.');
		part = part ? part + 1 : NULL;
	}
}

static void test_attacks(void **state)
{
	int failed = 0;

	for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
		const struct attack *a = &attacks[i];
		struct jwt_verify_opts o = embedded_opts();
		struct jwt_result res;
		char *tok = a->token();
		enum jwt_reason got;

		if (a->opts)
			a->opts(&o);
		got = jwt_verify(tok, &o, &res);
		if (got != a->want || res.reason != got) {
			print_error("%s: %s (%s), want %s\n", a->name, jwt_reason_name(got),
				    res.err.msg, jwt_reason_name(a->want));
			failed++;
		}
		if (got != JWT_OK && !res.err.msg[0]) {
			print_error("%s: refused without a message\n", a->name);
			failed++;
		}
		assert_not_echoed(a->name, tok, res.err.msg);
		jwt_result_free(&res);
		free(tok);
	}
	assert_int_equal(failed, 0);
}

/* What a refused token still tells the audit line, and what it does not. */
static void test_result_of_refused_tokens(void **state)
{
	struct jwt_verify_opts o = embedded_opts();
	struct jwt_result res;
	char *tok = t_expired(), *forged = t_signed_by_other_node();

	assert_int_equal(jwt_verify(tok, &o, &res), JWT_EXPIRED);
	assert_string_equal(res.err.msg, "claim exp: expired 31 s ago");
	assert_string_equal(res.kid, f.x5t_a);
	assert_string_equal(res.sub, AUD "/job/1234");
	assert_non_null(res.jti);
	jwt_result_free(&res);
	assert_null(res.claims);

	/* Nothing from an unverified payload. */
	assert_int_equal(jwt_verify(forged, &o, &res), JWT_BAD_SIGNATURE);
	assert_string_equal(res.kid, f.x5t_a);
	assert_null(res.sub);
	assert_null(res.jti);
	assert_null(res.claims);
	jwt_result_free(&res);
	free(tok);
	free(forged);
}

/* NumericDates at and past the ends of what can be computed with: each
 * refused with a message that says why, none overflowing (UBSan). */
static void test_dates_out_of_range(void **state)
{
	static const char range[] = "is out of range (more than 1000000000000000 s from 1970)";
	static const struct {
		const char *name, *claims;
		enum jwt_reason want;
		const char *msg;
	} cases[] = {
		{ "exp -1", "{\"exp\":-1}", JWT_EXPIRED, "claim exp: expired 1800000001 s ago" },
		{ "exp 2^63-1", "{\"exp\":9223372036854775807}", JWT_MALFORMED, "claim exp " },
		{ "exp -2^63", "{\"exp\":-9223372036854775808}", JWT_MALFORMED, "claim exp " },
		{ "exp 1e300", "{\"exp\":1e300}", JWT_MALFORMED, "claim exp " },
		{ "exp -1e300", "{\"exp\":-1e300}", JWT_MALFORMED, "claim exp " },
		{ "nbf 2^63-1", "{\"nbf\":9223372036854775807}", JWT_MALFORMED, "claim nbf " },
		{ "iat -1e300", "{\"iat\":-1e300}", JWT_MALFORMED, "claim iat " },
		/* The last dates in range: exp - iat is about 2e15, no overflow. */
		{ "exp and iat at the ends", "{\"exp\":999999999999999,\"iat\":-999999999999999}",
		  JWT_LIFETIME_TOO_LONG,
		  "claims exp - iat: lifetime 1999999999999998 s exceeds 3600 s" },
	};
	struct jwt_verify_opts o = embedded_opts();
	struct jwt_result res;
	char want[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *c = claims(), *set = json_loads(cases[i].claims, 0, NULL);
		char *tok;

		assert_non_null(set);
		assert_int_equal(json_object_update(c, set), 0);
		json_decref(set);
		tok = mint(c);
		snprintf(want, sizeof(want), "%s%s", cases[i].msg,
			 cases[i].want == JWT_MALFORMED ? range : "");
		if (jwt_verify(tok, &o, &res) != cases[i].want || strcmp(res.err.msg, want))
			fail_msg("%s: %s (%s), want %s (%s)", cases[i].name,
				 jwt_reason_name(res.reason), res.err.msg,
				 jwt_reason_name(cases[i].want), want);
		jwt_result_free(&res);
		free(tok);
	}
}

static void test_rs256_signed_independently(void **state)
{
	struct jwt_verify_opts o = {
		.issuer = IDP_ISS, .audience = AUD, .get_key = jwks_get_key,
		.key_ctx = f.keys_idp, .now = NOW,
	};
	struct jwt_result res;
	char payload[256], *tok;

	snprintf(payload, sizeof(payload),
		 "{\"iss\":\"" IDP_ISS "\",\"sub\":\"notebook-7\",\"aud\":[\"" AUD "\"],"
		 "\"iat\":%lld,\"exp\":%lld,\"groups\":[\"analysts\"]}", NOW - 10, NOW + 290);
	tok = sign(f.rsa, SIG_RSA, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa-1\"}",
		   payload);
	assert_int_equal(jwt_verify(tok, &o, &res), JWT_OK);
	assert_string_equal(res.sub, "notebook-7");
	assert_string_equal(res.kid, "rsa-1");
	assert_string_equal(json_string_value(json_array_get(json_object_get(res.claims,
									     "groups"), 0)),
			    "analysts");
	jwt_result_free(&res);

	/* The same key set's EC key verifies ES256 tokens by its own kid. */
	free(tok);
	tok = sign(f.key_a, SIG_RAW, "{\"alg\":\"ES256\",\"kid\":\"ec-a\"}", payload);
	assert_int_equal(jwt_verify(tok, &o, &res), JWT_OK);
	jwt_result_free(&res);

	/* Without the binding the embedded default insists on. */
	o.require_cnf = true;
	assert_int_equal(jwt_verify(tok, &o, &res), JWT_NOT_BOUND);
	jwt_result_free(&res);
	free(tok);
}

/*
 * An access token issued by oidc-provider 9.13.3 (tests/oidc/idp.mjs, TLS,
 * client credentials for a client with
 * tls_client_certificate_bound_access_tokens) and the JWKS it published at
 * the time, with the client certificate it was bound to.
 */
static const char idp_jwks[] =
	"{\"keys\":[{\"kty\":\"EC\",\"use\":\"sig\",\"kid\":\"idp-key-1\",\"alg\":\"ES256\","
	"\"crv\":\"P-256\",\"x\":\"HnnWRvr5v3Sj8j_ld9PxqMFzjE_wRWQvbs26RnN_FJk\","
	"\"y\":\"krCKwmA3STfzNV-B2CRw9doOqGnFBxgmzORzs_p7X60\"}]}";
static const char idp_token[] =
	"eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImlkcC1rZXktMSJ9."
	"eyJncm91cHMiOlsiZXRsIiwicmVhZGVycyJdLCJqdGkiOiJqU0Nfc1hCZXRXcUdLZ29sLVppSHlOaHNH"
	"T00zS1ViQ3RWM0l4UExtaWJGIiwic3ViIjoiam9iLTEyMzQiLCJpYXQiOjE3OTU1NDU0MjQsImV4cCI6"
	"MTc5NTU0NjAyNCwiY2xpZW50X2lkIjoiam9iLTEyMzQiLCJpc3MiOiJodHRwczovLzEyNy4wLjAuMTo0"
	"MTA0NSIsImF1ZCI6InNwaWZmZTovL2FjbWUuZXhhbXBsZSIsImNuZiI6eyJ4NXQjUzI1NiI6Ik1jUG5i"
	"MVVqS2IyOTJyWS0zcEc3UVZicE1YLXZqV1lWUXhOS3QxUUF0dmsifX0."
	"l3wabp3iegJSn9u-gGd59XzSahdVFSA_lVrqtrom1cLfYsfLaI3Uz3y0I1Er8SdFyJH0eFUX2X7A2dNEDCgo6g";
static const char idp_client_cert[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBpjCCAUygAwIBAgIUI5BbUbioexgKNnRFqyVhEJwuSIEwCgYIKoZIzj0EAwIw\n"
	"ETEPMA0GA1UEAwwGbm9kZS1hMB4XDTI2MTEyNDE4MzY1OFoXDTM2MTEyMTE4MzY1\n"
	"OFowETEPMA0GA1UEAwwGbm9kZS1hMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
	"FME6cO/DN0AT9LF4I2houH5ORCmP6ESMk6qc+Q37/me6qDjHUgiOWRyXmVAn0Fm1\n"
	"M0MXF7q+VqX4jge6/9HGcqOBgTB/MB0GA1UdDgQWBBQjpdcVHsvzF/QCznlI811s\n"
	"lhrh5zAfBgNVHSMEGDAWgBQjpdcVHsvzF/QCznlI811slhrh5zAPBgNVHRMBAf8E\n"
	"BTADAQH/MCwGA1UdEQQlMCOGIXNwaWZmZTovL2FjbWUuZXhhbXBsZS9ub2RlL25v\n"
	"ZGUtYTAKBggqhkjOPQQDAgNIADBFAiBLdyyOyqBJ+c6so36PgYVXFSgb+Ni7FMSc\n"
	"YNzkMwnpHQIhAMZZ0eKn0QW8mikrUbOEGxrjkZ+cqAm0OcN/xY726ChX\n"
	"-----END CERTIFICATE-----\n";
#define IDP_IAT 1795545424LL
#define IDP_EXP 1795546024LL

static void test_oidc_provider_token(void **state)
{
	BIO *bio = BIO_new_mem_buf(idp_client_cert, -1);
	X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	char x5t[PKI_THUMBPRINT_LEN];
	struct errmsg err = {};
	struct jwks *keys;
	struct jwt_result res;
	struct jwt_verify_opts o = {
		.issuer = "https://127.0.0.1:41045", .audience = AUD, .get_key = jwks_get_key,
		.now = IDP_IAT + 10, .max_lifetime = 600, .cnf_x5t = x5t,
	};

	assert_non_null(cert);
	assert_int_equal(pki_thumbprint(cert, x5t, sizeof(x5t)), 0);
	assert_int_equal(jwks_parse(idp_jwks, strlen(idp_jwks), &keys, &err), 0);
	assert_int_equal(keys->nr, 1);
	assert_string_equal(keys->keys[0].kid, "idp-key-1");
	o.key_ctx = keys;

	assert_int_equal(jwt_verify(idp_token, &o, &res), JWT_OK);
	assert_string_equal(res.sub, "job-1234");
	assert_string_equal(res.kid, "idp-key-1");
	assert_string_equal(res.jti, "jSC_sXBetWqGKgol-ZiHyNhsGOM3KUbCtV3IxPLmibF");
	assert_int_equal(res.exp, IDP_EXP);
	assert_string_equal(json_string_value(json_array_get(json_object_get(res.claims,
									     "groups"), 1)),
			    "readers");
	jwt_result_free(&res);

	/* The replay past expiry, and the same token presented by node B. */
	o.now = IDP_EXP + JWT_DEFAULT_SKEW;
	assert_int_equal(jwt_verify(idp_token, &o, &res), JWT_EXPIRED);
	jwt_result_free(&res);
	o.now = IDP_IAT + 10;
	o.cnf_x5t = f.x5t_b;
	assert_int_equal(jwt_verify(idp_token, &o, &res), JWT_NOT_BOUND);
	jwt_result_free(&res);
	o.max_lifetime = 599;
	assert_int_equal(jwt_verify(idp_token, &o, &res), JWT_LIFETIME_TOO_LONG);
	jwt_result_free(&res);

	jwks_free(keys);
	X509_free(cert);
	BIO_free(bio);
}

/* RFC 7515 appendix A.3: ES256 over a payload with CRLFs, no kid. Its only
 * claims are iss and exp, so the verdict after a good signature is the
 * missing sub; a bad signature would have stopped earlier. */
static void test_rfc7515_es256_example(void **state)
{
	static const char doc[] =
		"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
		"\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
		"\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
	static const char tok[] =
		"eyJhbGciOiJFUzI1NiJ9."
		"eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19y"
		"b290Ijp0cnVlfQ."
		"DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
	struct errmsg err = {};
	struct jwks *keys;
	struct jwt_result res;
	struct jwt_verify_opts o = {
		.issuer = "joe", .audience = AUD, .get_key = jwks_get_key,
		.now = 1300819380LL - 100,
	};
	char *bad = strdup(tok);

	assert_int_equal(jwks_parse(doc, strlen(doc), &keys, &err), 0);
	assert_null(keys->keys[0].kid);
	o.key_ctx = keys;
	assert_int_equal(jwt_verify(tok, &o, &res), JWT_MISSING_CLAIM);
	assert_string_equal(res.err.msg, "claim sub is missing");
	assert_string_equal(res.iss, "joe");
	assert_true(json_is_true(json_object_get(res.claims, "http://example.com/is_root")));
	jwt_result_free(&res);

	bad[strlen(bad) - 10] ^= 1;
	assert_int_equal(jwt_verify(bad, &o, &res), JWT_BAD_SIGNATURE);
	jwt_result_free(&res);
	free(bad);
	jwks_free(keys);
}

static void test_jwks_parse_keeps_signing_keys(void **state)
{
	EVP_PKEY *pk = NULL;

	assert_int_equal(f.keys_idp->nr, 2);
	assert_string_equal(f.keys_idp->keys[0].kid, "rsa-1");
	assert_string_equal(f.keys_idp->keys[1].kid, "ec-a");
	assert_int_equal(jwks_key_alg(f.keys_idp->keys[0].pkey), JWS_RS256);
	assert_int_equal(jwks_key_alg(f.keys_idp->keys[1].pkey), JWS_ES256);
	assert_int_equal(jwks_get_key(f.keys_idp, "enc-1", &pk), -ENOENT);
	assert_int_equal(jwks_get_key(f.keys_idp, "hmac-1", &pk), -ENOENT);
	assert_int_equal(jwks_get_key(f.keys_idp, NULL, &pk), -ENOENT);
	assert_int_equal(jwks_get_key(f.keys_idp, "ec-a", &pk), 0);
	assert_int_equal(EVP_PKEY_eq(pk, f.key_a), 1);
	EVP_PKEY_free(pk);
	/* A single key answers for tokens without a kid. */
	assert_int_equal(jwks_get_key(f.keys_a, NULL, &pk), 0);
	EVP_PKEY_free(pk);
}

static void test_jwks_from_pkey_drops_private_half(void **state)
{
	struct errmsg err = {};
	struct jwks *keys;
	EVP_PKEY *pk = NULL, *weak;
	BIGNUM *d = NULL;

	assert_int_equal(jwks_from_pkey(f.key_b, "b", &keys, &err), 0);
	assert_int_equal(jwks_get_key(keys, "b", &pk), 0);
	assert_int_equal(EVP_PKEY_eq(pk, f.key_b), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &d), 0);
	assert_null(d);
	EVP_PKEY_free(pk);
	jwks_free(keys);

	weak = EVP_RSA_gen(1024);
	assert_non_null(weak);
	assert_int_equal(jwks_from_pkey(weak, "weak", &keys, &err), -EINVAL);
	assert_null(keys);
	EVP_PKEY_free(weak);
}

static void test_jwks_parse_refuses(void **state)
{
	static const struct {
		const char *doc;
		int err;
		const char *msg;
	} v[] = {
		{ "not json", -EINVAL, "JWKS: not JSON" },
		{ "{\"kys\":[]}", -EINVAL, "JWKS: no \"keys\" array" },
		{ "{\"keys\":[]}", -ENOENT, "JWKS: no ES256 or RS256 signing key" },
		{ "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", -ENOENT,
		  "JWKS: no ES256 or RS256 signing key" },
		{ "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}]}",
		  -ENOENT, "JWKS: no ES256 or RS256 signing key" },
		{ "{\"keys\":[7]}", -EINVAL, "JWKS key 0: not an object" },
		{ "{\"keys\":[{\"kid\":\"a\"}]}", -EINVAL, "JWKS key 0 (kid \"a\"): no \"kty\"" },
		{ "{\"keys\":[{\"kid\":1,\"kty\":\"EC\"}]}", -EINVAL,
		  "JWKS key 0: \"kid\" is not a string" },
		/* x cut by two characters: 41 is no base64url length. */
		{ "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"s\","
		  "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRV\","
		  "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}",
		  -EINVAL, "JWKS key 0 (kid \"s\"): \"x\" is not unpadded base64url" },
		/* x one byte short: its leading byte stripped. */
		{ "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"s\","
		  "\"x\":\"zc4ncPbEXUGDy-5v20t7WAczNXvp7xO6z248e9FURQ\","
		  "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}",
		  -EINVAL, "JWKS key 0 (kid \"s\"): \"x\" and \"y\" must be 32 bytes each, leading "
		  "zeros kept (RFC 7518 6.2.1.2); \"x\" is 31, \"y\" 32" },
		/* x one byte long: a zero byte prepended. */
		{ "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"s\","
		  "\"x\":\"AH_Nzidw9sRdQYPL7m_bS3tYBzM1e-nvE7rPbjx70VRF\","
		  "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}",
		  -EINVAL, "JWKS key 0 (kid \"s\"): \"x\" is longer than 32 bytes" },
		/* y of another point: not on the curve. */
		{ "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"c\","
		  "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
		  "\"y\":\"krCKwmA3STfzNV-B2CRw9doOqGnFBxgmzORzs_p7X60\"}]}",
		  -EINVAL, "JWKS key 0 (kid \"c\"): not a point on P-256" },
		{ "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
		  -EINVAL, "JWKS key 0 (kid \"r\"): not an EC P-256 or RSA (>= 2048 bits) key" },
		{ "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"e\":\"AQAB\"}]}",
		  -EINVAL, "JWKS key 0 (kid \"r\"): \"n\" missing or not a string" },
		{ "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"d\","
		  "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
		  "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
		  "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"d\","
		  "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
		  "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}",
		  -EINVAL, "JWKS key 1 (kid \"d\"): duplicate kid" },
	};
	struct errmsg err;
	struct jwks *keys;

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		memset(&err, 0, sizeof(err));
		keys = f.keys_a;
		assert_int_equal(jwks_parse(v[i].doc, strlen(v[i].doc), &keys, &err), v[i].err);
		assert_null(keys);
		if (strncmp(err.msg, v[i].msg, strlen(v[i].msg)))
			fail_msg("doc %zu: \"%s\", want \"%s\"", i, err.msg, v[i].msg);
		/* Key material is not quoted back. */
		assert_null(strstr(err.msg, "f83OJ3D2"));
		assert_null(strstr(err.msg, "zc4ncPbE"));
		assert_null(strstr(err.msg, "AH_Nzidw"));
		assert_null(strstr(err.msg, "krCKwmA3"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_mint_verify_round_trip),
		cmocka_unit_test(test_mint_refuses),
		cmocka_unit_test(test_attacks),
		cmocka_unit_test(test_result_of_refused_tokens),
		cmocka_unit_test(test_dates_out_of_range),
		cmocka_unit_test(test_rs256_signed_independently),
		cmocka_unit_test(test_oidc_provider_token),
		cmocka_unit_test(test_rfc7515_es256_example),
		cmocka_unit_test(test_jwks_parse_keeps_signing_keys),
		cmocka_unit_test(test_jwks_from_pkey_drops_private_half),
		cmocka_unit_test(test_jwks_parse_refuses),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
