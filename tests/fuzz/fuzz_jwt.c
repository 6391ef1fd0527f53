// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Workload tokens: jwt_verify() against a fixed key set (an EC P-256 key
 * with kid "ec-1", an RSA-2048 key with kid "rsa-1"), as the tunnel and
 * the edge verify them.
 *
 * The first byte picks the mode, the rest is its input:
 *   mode & 3 == 0: the rest is a compact token, verified as it is: the
 *                  split, base64url, header, alg and kid checks (the
 *                  signature then almost never verifies);
 *   mode & 3 == 1: the rest is a header and a payload separated by a NUL
 *                  byte, which the harness signs with the EC key (2: the
 *                  RSA key) so that the claim checks run on any payload;
 *   mode & 4:      the verifier wants cnf.x5t#S256 bound to a certificate;
 *   mode & 8:      the verifier bounds the lifetime (iat required).
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include "b64url.h"
#include "jwt.h"

#define NOW 1764003600
#define X5T "7oU5kFmHXv1l2m6y4bXJ0tQ8gQ3qf4E0n2cY6aK9s1A"

static struct jwks *keys;
static EVP_PKEY *ec_key, *rsa_key;

static void add_key(EVP_PKEY *k, const char *kid)
{
	struct jwks *one;
	struct errmsg err;

	if (!k || jwks_from_pkey(k, kid, &one, &err))
		abort();
	keys->keys[keys->nr++] = one->keys[0];
	one->nr = 0;
	jwks_free(one);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	ec_key = EVP_EC_gen("P-256");
	rsa_key = EVP_RSA_gen(2048);
	keys = calloc(1, sizeof(*keys));
	if (!keys || !(keys->keys = calloc(2, sizeof(*keys->keys))))
		abort();
	add_key(ec_key, "ec-1");
	add_key(rsa_key, "rsa-1");
	return 0;
}

/* JOSE's ES256 signature is R || S, OpenSSL's is DER. */
static size_t es256_raw(const uint8_t *der, size_t der_len, uint8_t raw[64])
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	size_t n = 0;

	if (sig && BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 &&
	    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32)
		n = 64;
	ECDSA_SIG_free(sig);
	return n;
}

/* header.payload.signature over the bytes as given, or NULL. */
static char *sign(EVP_PKEY *k, const uint8_t *hdr, size_t hlen, const uint8_t *pay,
		  size_t plen)
{
	size_t n = B64URL_ENC_LEN(hlen) + B64URL_ENC_LEN(plen) + B64URL_ENC_LEN(512) + 3;
	uint8_t sig[512], raw[64];
	size_t sig_len = sizeof(sig), len;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *tok = malloc(n);
	bool ok;

	if (!md || !tok)
		goto fail;
	len = b64url_encode(hdr, hlen, tok);
	tok[len++] = '.';
	len += b64url_encode(pay, plen, tok + len);
	ok = EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, k, NULL) == 1 &&
	     EVP_DigestSign(md, sig, &sig_len, (uint8_t *)tok, len) == 1;
	if (!ok)
		goto fail;
	if (k == ec_key && !(sig_len = es256_raw(sig, sig_len, raw)))
		goto fail;
	tok[len++] = '.';
	b64url_encode(k == ec_key ? raw : sig, sig_len, tok + len);
	EVP_MD_CTX_free(md);
	return tok;
fail:
	EVP_MD_CTX_free(md);
	free(tok);
	return NULL;
}

static char *token_for(uint8_t mode, const uint8_t *data, size_t size)
{
	const uint8_t *nul;
	char *tok;

	if (!(mode & 3)) {
		tok = malloc(size + 1);
		if (tok) {
			memcpy(tok, data, size);
			tok[size] = '\0';
		}
		return tok;
	}
	nul = memchr(data, '\0', size);
	if (!nul)
		return NULL;
	return sign((mode & 3) == 1 ? ec_key : rsa_key, data, nul - data, nul + 1,
		    size - (nul + 1 - data));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jwt_verify_opts o = {
		.issuer = "https://idp.acme.example",
		.audience = "spiffe://acme.example",
		.get_key = jwks_get_key,
		.key_ctx = keys,
		.now = NOW,
	};
	struct jwt_result res;
	uint8_t mode;
	char *tok;

	if (!size)
		return 0;
	mode = data[0];
	if (mode & 4)
		o.cnf_x5t = X5T;
	if (mode & 8)
		o.max_lifetime = 3600;
	tok = token_for(mode, data + 1, size - 1);
	if (!tok)
		return 0;
	jwt_verify(tok, &o, &res);
	/* What the tunnel reads of any result for its audit line. */
	jwt_reason_name(res.reason);
	jwt_result_free(&res);
	free(tok);
	return 0;
}
