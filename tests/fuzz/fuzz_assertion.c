// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The caller assertion a service or agent receives from the edge:
 * assertion_verify() against a fixed mesh CA, whose node certificate
 * (spiffe://acme.example/node/edge-a) signs what the harness signs.
 *
 * The first byte picks the mode, the rest is its input:
 *   mode & 1 == 0: the rest is a compact token, verified as it is: the
 *                  split, the header's own parsing (typ, alg, kid, x5c and
 *                  its strict base64), then the chain;
 *   mode & 1 == 1: the rest is a header and a claims object separated by
 *                  a NUL byte, both JSON; in the header the string "@X5C@"
 *                  becomes the node certificate (base64 DER) and "@KID@"
 *                  its thumbprint, then the harness signs it with the node
 *                  key, so the chain, issuer and claim checks run on any
 *                  claims.
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "assertion.h"
#include "pki.h"
#include "pki_ca.h"

#define NOW 1764003600
#define TD "acme.example"
#define AUD "spiffe://acme.example/service/api"

/* Kept for the whole run: the store and the signer use them. */
static EVP_PKEY *node_key, *ca_key;
static X509 *ca, *cert;
static X509_STORE *store;
static char cert_b64[4096];
static char kid[PKI_THUMBPRINT_LEN];

static X509 *make(const char *id, const char *cn, bool ca, EVP_PKEY *key, X509 *issuer,
		  EVP_PKEY *issuer_key)
{
	struct pki_cert_req req = {
		.spiffe_id = id, .cn = cn, .ca = ca,
		.not_before = NOW - 86400, .not_after = NOW + 86400,
	};
	struct errmsg err;
	X509 *cert;

	if (pki_make_cert(&req, key, issuer, issuer_key, &cert, &err))
		abort();
	return cert;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char *der = NULL;
	struct errmsg err;
	int len;

	if (pki_new_key(&ca_key, &err) || pki_new_key(&node_key, &err))
		abort();
	ca = make("spiffe://" TD, "mesh CA", true, ca_key, NULL, NULL);
	cert = make("spiffe://" TD "/node/edge-a", "edge-a", false, node_key, ca, ca_key);
	store = X509_STORE_new();
	len = i2d_X509(cert, &der);
	if (!store || !X509_STORE_add_cert(store, ca) || len <= 0 ||
	    (size_t)len > sizeof(cert_b64) * 3 / 4 - 4 || pki_thumbprint(cert, kid, sizeof(kid)))
		abort();
	EVP_EncodeBlock((unsigned char *)cert_b64, der, len);
	OPENSSL_free(der);
	return 0;
}

/* "@X5C@" and "@KID@" anywhere a string of the header stands. */
static void fill(json_t *v)
{
	const char *key;
	json_t *item;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach(v, key, item) {
			if (json_is_string(item) && !strcmp(json_string_value(item), "@X5C@"))
				json_object_set_new(v, key, json_string(cert_b64));
			else if (json_is_string(item) && !strcmp(json_string_value(item), "@KID@"))
				json_object_set_new(v, key, json_string(kid));
			else
				fill(item);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item) {
			if (json_is_string(item) && !strcmp(json_string_value(item), "@X5C@"))
				json_array_set_new(v, i, json_string(cert_b64));
			else
				fill(item);
		}
	}
}

static char *signed_token(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	json_t *hdr, *claims;
	struct errmsg err;
	char *tok = NULL;

	if (!nul)
		return NULL;
	hdr = json_loadb((const char *)data, nul - data, JSON_REJECT_DUPLICATES, NULL);
	claims = json_loadb((const char *)nul + 1, size - (nul + 1 - data), JSON_REJECT_DUPLICATES,
			    NULL);
	if (json_is_object(hdr) && json_is_object(claims)) {
		fill(hdr);
		jwt_sign_es256(node_key, hdr, claims, &tok, &err);
	}
	json_decref(hdr);
	json_decref(claims);
	return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jwt_result res = {};
	char *tok;

	if (!size)
		return 0;
	if (data[0] & 1) {
		tok = signed_token(data + 1, size - 1);
	} else {
		tok = malloc(size);
		if (tok) {
			memcpy(tok, data + 1, size - 1);
			tok[size - 1] = '\0';
		}
	}
	if (!tok)
		return 0;
	assertion_verify(tok, store, TD, AUD, NOW, 30, &res);
	jwt_result_free(&res);
	free(tok);
	return 0;
}
