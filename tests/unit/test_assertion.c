// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The caller assertion: what the edge mints, a service verifies with the
 * mesh CA alone, and every way a forged, misdirected or stale one is
 * refused.
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
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "assertion.h"
#include "b64url.h"
#include "jwks.h"
#include "jwt.h"
#include "pki.h"
#include "pki_ca.h"

#define NOW 1800000000LL
#define TD "acme.example"
#define AUD "spiffe://" TD "/service/orders"
#define SKEW 30

static struct {
	EVP_PKEY *ca_key, *other_ca_key, *key_a, *key_b, *key_w, *key_x;
	X509 *ca, *other_ca, *cert_a, *cert_b, *cert_w, *cert_x, *cert_a_other;
	X509_STORE *store;
} f;

static X509 *make_ca(EVP_PKEY *key, const char *td)
{
	char id[128];
	struct pki_cert_req req = {
		.spiffe_id = id, .cn = "mesh CA", .ca = true,
		.not_before = NOW - 86400, .not_after = NOW + 86400,
	};
	struct errmsg err = {};
	X509 *cert;

	snprintf(id, sizeof(id), "spiffe://%s", td);
	assert_int_equal(pki_make_cert(&req, key, NULL, NULL, &cert, &err), 0);
	return cert;
}

static X509 *make_cert(EVP_PKEY *key, const char *id, X509 *ca, EVP_PKEY *ca_key)
{
	struct pki_cert_req req = {
		.spiffe_id = id, .cn = "test", .not_before = NOW - 3600, .not_after = NOW + 3600,
	};
	struct errmsg err = {};
	X509 *cert;

	assert_int_equal(pki_make_cert(&req, key, ca, ca_key, &cert, &err), 0);
	return cert;
}

static int setup(void **state)
{
	struct errmsg err = {};

	(void)state;
	if (pki_new_key(&f.ca_key, &err) || pki_new_key(&f.other_ca_key, &err) ||
	    pki_new_key(&f.key_a, &err) || pki_new_key(&f.key_b, &err) ||
	    pki_new_key(&f.key_w, &err) || pki_new_key(&f.key_x, &err))
		return -1;
	f.ca = make_ca(f.ca_key, TD);
	f.other_ca = make_ca(f.other_ca_key, TD);
	f.cert_a = make_cert(f.key_a, "spiffe://" TD "/node/edge-a", f.ca, f.ca_key);
	f.cert_b = make_cert(f.key_b, "spiffe://" TD "/node/node-b", f.ca, f.ca_key);
	f.cert_w = make_cert(f.key_w, "spiffe://" TD "/service/orders", f.ca, f.ca_key);
	f.cert_x = make_cert(f.key_x, "spiffe://other.example/node/edge-a", f.ca, f.ca_key);
	/* Node A's key and name, under a CA the verifier does not trust. */
	f.cert_a_other = make_cert(f.key_a, "spiffe://" TD "/node/edge-a", f.other_ca,
				   f.other_ca_key);
	f.store = X509_STORE_new();
	if (!f.store || !X509_STORE_add_cert(f.store, f.ca))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	X509_STORE_free(f.store);
	X509_free(f.ca);
	X509_free(f.other_ca);
	X509_free(f.cert_a);
	X509_free(f.cert_b);
	X509_free(f.cert_w);
	X509_free(f.cert_x);
	X509_free(f.cert_a_other);
	EVP_PKEY_free(f.ca_key);
	EVP_PKEY_free(f.other_ca_key);
	EVP_PKEY_free(f.key_a);
	EVP_PKEY_free(f.key_b);
	EVP_PKEY_free(f.key_w);
	EVP_PKEY_free(f.key_x);
	return 0;
}

static const char *const roles[] = { "reader", "ops" };

static struct assertion base(void)
{
	return (struct assertion){
		.sub = "alice@acme.example", .roles = roles, .nr_roles = 2, .aud = AUD,
		.orig_jti = "idp-jti-1", .now = NOW, .lifetime = 60,
	};
}

static char *mint_with(EVP_PKEY *key, X509 *cert, const struct assertion *a)
{
	struct errmsg err = {};
	char *tok = NULL;

	assert_int_equal(assertion_mint(key, cert, a, &tok, &err), 0);
	assert_non_null(tok);
	return tok;
}

static char *mint_a(void)
{
	struct assertion a = base();

	return mint_with(f.key_a, f.cert_a, &a);
}

static enum jwt_reason verify_at(const char *tok, int64_t now)
{
	struct jwt_result res;
	enum jwt_reason r = assertion_verify(tok, f.store, TD, AUD, now, SKEW, &res);

	if (r != JWT_OK)
		assert_true(res.err.msg[0]);
	jwt_result_free(&res);
	return r;
}

static enum jwt_reason verify(const char *tok)
{
	return verify_at(tok, NOW);
}

/* Part (0 header, 1 payload) of tok decoded, as a JSON object. */
static json_t *part(const char *tok, int idx)
{
	const char *s = tok, *e;
	uint8_t buf[ASSERTION_MAX_LEN];
	size_t n;
	json_t *v;

	for (; idx; idx--)
		s = strchr(s, '.') + 1;
	e = strchr(s, '.');
	assert_int_equal(b64url_decode(s, e - s, buf, &n), 0);
	v = json_loadb((const char *)buf, n, 0, NULL);
	assert_non_null(v);
	return v;
}

/* tok with part idx replaced by v (not re-signed). */
static char *replace_part(const char *tok, int idx, json_t *v)
{
	char *js = json_dumps(v, JSON_COMPACT), *out, enc[ASSERTION_MAX_LEN];
	const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');

	b64url_encode(js, strlen(js), enc);
	free(js);
	out = malloc(strlen(tok) + strlen(enc) + 2);
	if (idx == 0)
		sprintf(out, "%s%s", enc, d1);
	else
		sprintf(out, "%.*s.%s%s", (int)(d1 - tok), tok, enc, d2);
	return out;
}

static void test_mint_verify(void **state)
{
	struct jwt_result res;
	char kid[PKI_THUMBPRINT_LEN];
	char *tok = mint_a();
	json_t *h = part(tok, 0);

	(void)state;
	assert_int_equal(pki_thumbprint(f.cert_a, kid, sizeof(kid)), 0);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "ES256");
	assert_string_equal(json_string_value(json_object_get(h, "typ")), "sluice-caller+jwt");
	assert_string_equal(json_string_value(json_object_get(h, "kid")), kid);
	/* Standard base64 of the DER, padded, so services can hand it to any
	 * X.509 library as it is. */
	assert_int_equal(strlen(json_string_value(json_array_get(json_object_get(h, "x5c"), 0)))
			 % 4, 0);
	json_decref(h);

	assert_int_equal(assertion_verify(tok, f.store, TD, AUD, NOW + 10, SKEW, &res), JWT_OK);
	assert_string_equal(res.iss, "spiffe://" TD "/node/edge-a");
	assert_string_equal(res.sub, "alice@acme.example");
	assert_int_equal(res.exp, NOW + 60);
	assert_int_equal(strlen(res.jti), 32);
	assert_string_equal(json_string_value(json_object_get(res.claims, "orig_jti")),
			    "idp-jti-1");
	assert_string_equal(json_string_value(json_object_get(res.claims, "aud")), AUD);
	assert_int_equal(json_integer_value(json_object_get(res.claims, "nbf")), NOW);
	assert_string_equal(json_string_value(json_array_get(json_object_get(res.claims, "roles"),
							     1)), "ops");
	jwt_result_free(&res);
	free(tok);
}

static void test_jti_unique_and_orig_jti_optional(void **state)
{
	struct assertion a = base();
	char *t1, *t2;
	json_t *p1, *p2;

	(void)state;
	a.orig_jti = NULL;
	a.nr_roles = 0;
	t1 = mint_with(f.key_a, f.cert_a, &a);
	t2 = mint_with(f.key_a, f.cert_a, &a);
	p1 = part(t1, 1);
	p2 = part(t2, 1);
	assert_null(json_object_get(p1, "orig_jti"));
	assert_int_equal(json_array_size(json_object_get(p1, "roles")), 0);
	assert_string_not_equal(json_string_value(json_object_get(p1, "jti")),
				json_string_value(json_object_get(p2, "jti")));
	assert_int_equal(verify(t1), JWT_OK);
	json_decref(p1);
	json_decref(p2);
	free(t1);
	free(t2);
}

static void test_mint_refuses(void **state)
{
	struct assertion a = base();
	struct errmsg err = {};
	char *tok = (char *)1;

	(void)state;
	a.lifetime = ASSERTION_MAX_LIFETIME + 1;
	assert_int_equal(assertion_mint(f.key_a, f.cert_a, &a, &tok, &err), -EINVAL);
	assert_null(tok);
	a = base();
	a.lifetime = 0;
	assert_int_equal(assertion_mint(f.key_a, f.cert_a, &a, &tok, &err), -EINVAL);
	a = base();
	a.sub = NULL;
	assert_int_equal(assertion_mint(f.key_a, f.cert_a, &a, &tok, &err), -EINVAL);
	/* Another node's key under A's certificate would mint assertions that
	 * no verifier accepts. */
	a = base();
	assert_int_equal(assertion_mint(f.key_b, f.cert_a, &a, &tok, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "edge-a"));
}

static void test_wrong_ca(void **state)
{
	struct assertion a = base();
	char *tok = mint_with(f.key_a, f.cert_a_other, &a);

	(void)state;
	assert_int_equal(verify(tok), JWT_UNKNOWN_KID);
	free(tok);
}

static void test_not_a_node(void **state)
{
	struct assertion a = base();
	char *tok = mint_with(f.key_w, f.cert_w, &a);

	(void)state;
	assert_int_equal(verify(tok), JWT_BAD_ISSUER);
	free(tok);
	tok = mint_with(f.key_x, f.cert_x, &a);
	assert_int_equal(verify(tok), JWT_BAD_ISSUER);
	free(tok);
}

static void test_tampered_payload(void **state)
{
	char *tok = mint_a(), *bad;
	json_t *p = part(tok, 1);

	(void)state;
	json_object_set_new(p, "sub", json_string("mallory@acme.example"));
	bad = replace_part(tok, 1, p);
	assert_int_equal(verify(bad), JWT_BAD_SIGNATURE);
	json_decref(p);
	free(bad);
	free(tok);
}

static void test_header_swapped(void **state)
{
	char *tok = mint_a(), *bad, *b64;
	char kid_b[PKI_THUMBPRINT_LEN];
	unsigned char *der = NULL;
	json_t *h = part(tok, 0), *orig = json_deep_copy(h);
	int len;

	(void)state;
	assert_int_equal(pki_thumbprint(f.cert_b, kid_b, sizeof(kid_b)), 0);
	len = i2d_X509(f.cert_b, &der);
	b64 = malloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, der, len);

	/* Node B's certificate and kid on A's signature: B's key rejects it. */
	json_object_set_new(h, "kid", json_string(kid_b));
	json_object_set_new(h, "x5c", json_pack("[s]", b64));
	bad = replace_part(tok, 0, h);
	assert_int_equal(verify(bad), JWT_BAD_SIGNATURE);
	free(bad);

	/* Only one of the two swapped: the kid must name the x5c. */
	json_object_set_new(h, "x5c", json_deep_copy(json_object_get(orig, "x5c")));
	bad = replace_part(tok, 0, h);
	assert_int_equal(verify(bad), JWT_UNKNOWN_KID);
	free(bad);
	json_object_set_new(h, "kid", json_deep_copy(json_object_get(orig, "kid")));
	json_object_set_new(h, "x5c", json_pack("[s]", b64));
	bad = replace_part(tok, 0, h);
	assert_int_equal(verify(bad), JWT_UNKNOWN_KID);
	free(bad);

	/* No x5c, or a second spelling of it. */
	json_object_del(h, "x5c");
	bad = replace_part(tok, 0, h);
	assert_int_equal(verify(bad), JWT_MALFORMED);
	free(bad);
	json_object_set_new(h, "x5c", json_pack("[s]", "not base64!"));
	bad = replace_part(tok, 0, h);
	assert_int_equal(verify(bad), JWT_MALFORMED);
	free(bad);

	OPENSSL_free(der);
	free(b64);
	json_decref(h);
	json_decref(orig);
	free(tok);
}

static void test_alg_and_typ(void **state)
{
	static const char *const algs[] = { "none", "RS256", "HS256", "es256" };
	char *tok = mint_a(), *bad, *none;
	json_t *h = part(tok, 0);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		json_object_set_new(h, "alg", json_string(algs[i]));
		bad = replace_part(tok, 0, h);
		assert_int_equal(verify(bad), JWT_ALG_NOT_ALLOWED);
		/* alg none with the signature cut off. */
		none = strdup(bad);
		strrchr(none, '.')[1] = '\0';
		assert_int_equal(verify(none), JWT_ALG_NOT_ALLOWED);
		free(none);
		free(bad);
	}
	/* A workload token (typ JWT) of the same node is no caller assertion. */
	json_object_set_new(h, "alg", json_string("ES256"));
	json_object_set_new(h, "typ", json_string("JWT"));
	bad = replace_part(tok, 0, h);
	assert_int_equal(verify(bad), JWT_MALFORMED);
	free(bad);
	json_decref(h);
	free(tok);
}

static void test_times(void **state)
{
	struct assertion a = base();
	char *tok = mint_a();

	(void)state;
	assert_int_equal(verify_at(tok, NOW + 60 + SKEW), JWT_EXPIRED);
	assert_int_equal(verify_at(tok, NOW + 60 + SKEW - 1), JWT_OK);
	assert_int_equal(verify_at(tok, NOW - SKEW - 1), JWT_NOT_YET_VALID);
	/* Past the certificate's notAfter, however fresh the claims. */
	free(tok);
	a.now = NOW + 3600;
	tok = mint_with(f.key_a, f.cert_a, &a);
	assert_int_equal(verify_at(tok, NOW + 3601), JWT_UNKNOWN_KID);
	free(tok);
}

static void test_lifetime_too_long(void **state)
{
	char *tok = mint_a(), *bad;
	json_t *p = part(tok, 1);
	struct jwt_result res;
	json_t *claims, *header;
	struct errmsg err = {};

	(void)state;
	/* Signed properly by node A, with 301 s between iat and exp. */
	claims = json_deep_copy(p);
	json_object_set_new(claims, "exp", json_integer(NOW + ASSERTION_MAX_LIFETIME + 1));
	header = part(tok, 0);
	assert_int_equal(jwt_sign_es256(f.key_a, header, claims, &bad, &err), 0);
	assert_int_equal(assertion_verify(bad, f.store, TD, AUD, NOW, SKEW, &res),
			 JWT_LIFETIME_TOO_LONG);
	jwt_result_free(&res);
	free(bad);
	/* Without iat the lifetime is unbounded: refused as well. */
	json_object_del(claims, "iat");
	json_object_set_new(claims, "exp", json_integer(NOW + 60));
	assert_int_equal(jwt_sign_es256(f.key_a, header, claims, &bad, &err), 0);
	assert_int_equal(verify(bad), JWT_MISSING_CLAIM);
	free(bad);
	json_decref(claims);
	json_decref(header);
	json_decref(p);
	free(tok);
}

static void test_wrong_aud(void **state)
{
	struct jwt_result res;
	char *tok = mint_a();

	(void)state;
	assert_int_equal(assertion_verify(tok, f.store, TD, "spiffe://" TD "/service/billing", NOW,
					  SKEW, &res), JWT_BAD_AUDIENCE);
	jwt_result_free(&res);
	/* Another trust domain's verifier: A is no node of it. */
	assert_int_equal(assertion_verify(tok, f.store, "other.example", AUD, NOW, SKEW, &res),
			 JWT_BAD_ISSUER);
	jwt_result_free(&res);
	free(tok);
}

static void test_jwks_verifies(void **state)
{
	struct jwt_verify_opts o = {
		.issuer = "spiffe://" TD "/node/edge-a", .audience = AUD, .algs = JWS_ES256,
		.get_key = jwks_get_key, .now = NOW, .max_lifetime = ASSERTION_MAX_LIFETIME,
	};
	char kid[PKI_THUMBPRINT_LEN], *doc = NULL, *tok = mint_a();
	struct errmsg err = {};
	struct jwt_result res;
	struct jwks *set = NULL;
	json_t *v, *k;

	(void)state;
	assert_int_equal(assertion_jwks(f.cert_a, &doc, &err), 0);
	v = json_loads(doc, 0, NULL);
	k = json_array_get(json_object_get(v, "keys"), 0);
	assert_int_equal(pki_thumbprint(f.cert_a, kid, sizeof(kid)), 0);
	assert_string_equal(json_string_value(json_object_get(k, "kid")), kid);
	assert_string_equal(json_string_value(json_object_get(k, "use")), "sig");
	assert_string_equal(json_string_value(json_object_get(k, "alg")), "ES256");
	assert_int_equal(json_array_size(json_object_get(k, "x5c")), 1);
	assert_null(json_object_get(k, "d"));
	json_decref(v);

	assert_int_equal(jwks_parse(doc, strlen(doc), &set, &err), 0);
	o.key_ctx = set;
	assert_int_equal(jwt_verify(tok, &o, &res), JWT_OK);
	jwt_result_free(&res);
	jwks_free(set);
	free(doc);
	free(tok);

	/* B's key set does not verify A's assertion. */
	assert_int_equal(assertion_jwks(f.cert_b, &doc, &err), 0);
	assert_int_equal(jwks_parse(doc, strlen(doc), &set, &err), 0);
	o.key_ctx = set;
	tok = mint_a();
	assert_int_not_equal(jwt_verify(tok, &o, &res), JWT_OK);
	jwt_result_free(&res);
	jwks_free(set);
	free(doc);
	free(tok);
}

static void test_garbage(void **state)
{
	static const char *const bad[] = { "", ".", "a.b.c", "e30.e30.", "x" };
	char *big = malloc(ASSERTION_MAX_LEN + 2);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(verify(bad[i]), JWT_MALFORMED);
	memset(big, 'a', ASSERTION_MAX_LEN + 1);
	big[ASSERTION_MAX_LEN + 1] = '\0';
	assert_int_equal(verify(big), JWT_TOO_LARGE);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mint_verify),
		cmocka_unit_test(test_jti_unique_and_orig_jti_optional),
		cmocka_unit_test(test_mint_refuses),
		cmocka_unit_test(test_wrong_ca),
		cmocka_unit_test(test_not_a_node),
		cmocka_unit_test(test_tampered_payload),
		cmocka_unit_test(test_header_swapped),
		cmocka_unit_test(test_alg_and_typ),
		cmocka_unit_test(test_times),
		cmocka_unit_test(test_lifetime_too_long),
		cmocka_unit_test(test_wrong_aud),
		cmocka_unit_test(test_jwks_verifies),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
