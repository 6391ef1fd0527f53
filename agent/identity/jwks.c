// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "b64url.h"
#include "jwks.h"

/* RFC 7518 section 3.3: RS256 keys are 2048 bits or more. 8192 bounds the
 * work an IdP's document can ask of us. */
#define RSA_MIN_BITS 2048
#define RSA_MAX_BYTES (8192 / 8)
#define P256_COORD 32

int jwks_key_alg(const EVP_PKEY *pkey)
{
	char group[32];

	if (EVP_PKEY_is_a(pkey, "EC")) {
		if (!EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) ||
		    strcmp(group, SN_X9_62_prime256v1))
			return 0;
		return JWS_ES256;
	}
	if (EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= RSA_MIN_BITS)
		return JWS_RS256;
	return 0;
}

void jwks_free(struct jwks *set)
{
	int i;

	if (!set)
		return;
	for (i = 0; i < set->nr; i++) {
		free(set->keys[i].kid);
		EVP_PKEY_free(set->keys[i].pkey);
	}
	free(set->keys);
	free(set);
}

static struct jwks *jwks_alloc(size_t cap)
{
	struct jwks *set = calloc(1, sizeof(*set));

	if (!set)
		return NULL;
	set->keys = calloc(cap ? cap : 1, sizeof(*set->keys));
	if (!set->keys) {
		free(set);
		return NULL;
	}
	return set;
}

/* Takes over pkey, also on failure. where names the key in messages. */
static int jwks_add(struct jwks *set, EVP_PKEY *pkey, const char *kid, const char *where,
		    struct errmsg *err)
{
	EVP_PKEY_CTX *ctx;
	char *copy = NULL;
	int i, ok;

	if (!jwks_key_alg(pkey)) {
		EVP_PKEY_free(pkey);
		return errmsg_set(err, -EINVAL, "%s: not an EC P-256 or RSA (>= %d bits) key", where,
				  RSA_MIN_BITS);
	}
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	ok = ctx && EVP_PKEY_public_check(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok) {
		EVP_PKEY_free(pkey);
		return errmsg_set(err, -EINVAL, "%s: invalid public key", where);
	}
	for (i = 0; kid && i < set->nr; i++) {
		if (set->keys[i].kid && !strcmp(set->keys[i].kid, kid)) {
			EVP_PKEY_free(pkey);
			return errmsg_set(err, -EINVAL, "%s: duplicate kid", where);
		}
	}
	if (kid && !(copy = strdup(kid))) {
		EVP_PKEY_free(pkey);
		return errmsg_set(err, -ENOMEM, "%s: out of memory", where);
	}
	set->keys[set->nr].kid = copy;
	set->keys[set->nr].pkey = pkey;
	set->nr++;
	return 0;
}

static int pkey_from_params(const char *type, OSSL_PARAM *params, EVP_PKEY **out)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	int ok;

	*out = NULL;
	ok = ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
	     EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok ? 0 : -EINVAL;
}

/* Decodes the base64url member name of jwk into buf (cap bytes). */
static int b64_member(json_t *jwk, const char *name, uint8_t *buf, size_t cap, size_t *len,
		      const char *where, struct errmsg *err)
{
	json_t *v = json_object_get(jwk, name);
	const char *s;
	size_t n;

	if (!json_is_string(v))
		return errmsg_set(err, -EINVAL, "%s: \"%s\" missing or not a string", where, name);
	s = json_string_value(v);
	n = json_string_length(v);
	if (B64URL_DEC_LEN(n) > cap)
		return errmsg_set(err, -EINVAL, "%s: \"%s\" is longer than %zu bytes", where, name,
				  cap);
	if (b64url_decode(s, n, buf, len))
		return errmsg_set(err, -EINVAL, "%s: \"%s\" is not unpadded base64url", where, name);
	return 0;
}

static int ec_from_jwk(json_t *jwk, EVP_PKEY **out, const char *where, struct errmsg *err)
{
	/* SEC 1 uncompressed point: 0x04 || x || y. */
	uint8_t point[1 + 2 * P256_COORD] = { 0x04 };
	char group[] = SN_X9_62_prime256v1;
	OSSL_PARAM params[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
		OSSL_PARAM_END,
	};
	size_t xlen, ylen;
	int ret;

	ret = b64_member(jwk, "x", point + 1, P256_COORD, &xlen, where, err);
	if (!ret)
		ret = b64_member(jwk, "y", point + 1 + P256_COORD, P256_COORD, &ylen, where, err);
	if (ret)
		return ret;
	/* RFC 7518 section 6.2.1.2: the full coordinate, leading zeros kept;
	 * an IdP that strips them publishes a key that fails one time in 256. */
	if (xlen != P256_COORD || ylen != P256_COORD)
		return errmsg_set(err, -EINVAL,
				  "%s: \"x\" and \"y\" must be %d bytes each, leading zeros kept "
				  "(RFC 7518 6.2.1.2); \"x\" is %zu, \"y\" %zu",
				  where, P256_COORD, xlen, ylen);
	if (pkey_from_params("EC", params, out))
		return errmsg_set(err, -EINVAL, "%s: not a point on P-256", where);
	return 0;
}

static int rsa_from_jwk(json_t *jwk, EVP_PKEY **out, const char *where, struct errmsg *err)
{
	uint8_t n[RSA_MAX_BYTES], e[8];
	size_t nlen, elen;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	int ret;

	ret = b64_member(jwk, "n", n, sizeof(n), &nlen, where, err);
	if (!ret)
		ret = b64_member(jwk, "e", e, sizeof(e), &elen, where, err);
	if (ret)
		return ret;
	ret = -ENOMEM;
	bn_n = BN_bin2bn(n, (int)nlen, NULL);
	bn_e = BN_bin2bn(e, (int)elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld))) {
		errmsg_set(err, ret, "%s: out of memory", where);
		goto out;
	}
	ret = pkey_from_params("RSA", params, out);
	if (ret)
		errmsg_set(err, ret, "%s: not an RSA public key", where);
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	return ret;
}

/* An optional string member: 0 with *s NULL when absent. */
static int opt_string(json_t *jwk, const char *name, const char **s, const char *where,
		      struct errmsg *err)
{
	json_t *v = json_object_get(jwk, name);

	*s = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return errmsg_set(err, -EINVAL, "%s: \"%s\" is not a string", where, name);
	*s = json_string_value(v);
	return 0;
}

static bool str_is(const char *s, const char *want)
{
	return s && !strcmp(s, want);
}

/* Adds the idx-th JWK of a document to set, or skips it when it is not an
 * ES256/RS256 signing key. */
static int jwks_parse_key(json_t *jwk, size_t idx, struct jwks *set, struct errmsg *err)
{
	const char *kty, *kid, *use, *alg, *crv;
	EVP_PKEY *pkey = NULL;
	char where[96];
	int ret;

	snprintf(where, sizeof(where), "JWKS key %zu", idx);
	if (!json_is_object(jwk))
		return errmsg_set(err, -EINVAL, "%s: not an object", where);
	ret = opt_string(jwk, "kid", &kid, where, err);
	if (ret)
		return ret;
	if (kid)
		snprintf(where, sizeof(where), "JWKS key %zu (kid \"%.40s\")", idx, kid);
	ret = opt_string(jwk, "kty", &kty, where, err);
	if (!ret)
		ret = opt_string(jwk, "use", &use, where, err);
	if (!ret)
		ret = opt_string(jwk, "alg", &alg, where, err);
	if (!ret)
		ret = opt_string(jwk, "crv", &crv, where, err);
	if (ret)
		return ret;
	if (!kty)
		return errmsg_set(err, -EINVAL, "%s: no \"kty\"", where);
	if (use && strcmp(use, "sig"))
		return 0;
	if (!strcmp(kty, "EC") && str_is(crv, "P-256") && (!alg || !strcmp(alg, "ES256")))
		ret = ec_from_jwk(jwk, &pkey, where, err);
	else if (!strcmp(kty, "RSA") && (!alg || !strcmp(alg, "RS256")))
		ret = rsa_from_jwk(jwk, &pkey, where, err);
	else
		return 0;
	if (ret)
		return ret;
	return jwks_add(set, pkey, kid, where, err);
}

int jwks_parse(const char *doc, size_t len, struct jwks **out, struct errmsg *err)
{
	json_error_t jerr;
	json_t *root, *keys, *jwk;
	struct jwks *set = NULL;
	size_t i;
	int ret;

	*out = NULL;
	root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return errmsg_set(err, -EINVAL, "JWKS: not JSON: %s at line %d", jerr.text,
				  jerr.line);
	keys = json_object_get(root, "keys");
	if (!json_is_array(keys)) {
		ret = errmsg_set(err, -EINVAL, "JWKS: no \"keys\" array");
		goto out;
	}
	if (json_array_size(keys) > JWKS_MAX_KEYS) {
		ret = errmsg_set(err, -EINVAL, "JWKS: %zu keys, more than %d",
				 json_array_size(keys), JWKS_MAX_KEYS);
		goto out;
	}
	set = jwks_alloc(json_array_size(keys));
	if (!set) {
		ret = errmsg_set(err, -ENOMEM, "JWKS: out of memory");
		goto out;
	}
	json_array_foreach(keys, i, jwk) {
		ret = jwks_parse_key(jwk, i, set, err);
		if (ret)
			goto out;
	}
	if (!set->nr) {
		ret = errmsg_set(err, -ENOENT, "JWKS: no ES256 or RS256 signing key");
		goto out;
	}
	*out = set;
	set = NULL;
	ret = 0;
out:
	jwks_free(set);
	json_decref(root);
	return ret;
}

int jwks_from_pkey(EVP_PKEY *pkey, const char *kid, struct jwks **out, struct errmsg *err)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub;
	struct jwks *set;
	char where[64];
	int len, ret;

	*out = NULL;
	snprintf(where, sizeof(where), "key \"%.40s\"", kid ? kid : "-");
	/* Through SubjectPublicKeyInfo so that a private key given here is
	 * never held by a verification key set. */
	len = i2d_PUBKEY(pkey, &der);
	if (len <= 0)
		return errmsg_set(err, -EINVAL, "%s: no public key", where);
	p = der;
	pub = d2i_PUBKEY(NULL, &p, len);
	OPENSSL_free(der);
	set = jwks_alloc(1);
	if (!pub || !set) {
		EVP_PKEY_free(pub);
		jwks_free(set);
		return errmsg_set(err, -ENOMEM, "%s: out of memory", where);
	}
	ret = jwks_add(set, pub, kid, where, err);
	if (ret) {
		jwks_free(set);
		return ret;
	}
	*out = set;
	return 0;
}

int jwks_from_cert(X509 *cert, const char *kid, struct jwks **out, struct errmsg *err)
{
	EVP_PKEY *pkey = X509_get0_pubkey(cert);

	if (!pkey) {
		*out = NULL;
		return errmsg_set(err, -EINVAL, "certificate: no usable public key");
	}
	return jwks_from_pkey(pkey, kid, out, err);
}

int jwks_get_key(void *ctx, const char *kid, EVP_PKEY **pkey)
{
	const struct jwks *set = ctx;
	const struct jwk *k = NULL;
	int i;

	if (!kid) {
		if (set->nr == 1)
			k = &set->keys[0];
	} else {
		for (i = 0; i < set->nr && !k; i++) {
			if (set->keys[i].kid && !strcmp(set->keys[i].kid, kid))
				k = &set->keys[i];
		}
	}
	if (!k || !EVP_PKEY_up_ref(k->pkey))
		return -ENOENT;
	*pkey = k->pkey;
	return 0;
}
