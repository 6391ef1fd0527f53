// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "b64url.h"
#include "forge.h"
#include "jwt.h"
#include "pki.h"

#define HOUR 3600
#define OTHER_DOMAIN "evil.example"
#define TAMPER_ROLE "admin"
/* base64url of 32 zero bytes: shaped like a thumbprint, of no certificate. */
#define NO_SUCH_KID "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* The claims c's agent would put in a token for req. */
static int workload_claims(const struct pki_creds *c, const struct forge_req *req, json_t **out)
{
	struct jwt_workload w = {
	    .trust_domain = c->trust_domain,
	    .node = c->node,
	    .id = req->sub,
	    .roles = req->roles,
	    .nr_roles = req->nr_roles,
	    .cnf_x5t = c->thumbprint,
	    .now = req->now ? req->now : time(NULL),
	    .lifetime = req->lifetime,
	};
	struct errmsg err = {};
	int ret;

	ret = jwt_workload_claims(&w, out, &err);
	if (ret)
		printf("forge: %s\n", err.msg);
	return ret;
}

static int mint(const struct pki_creds *c, const char *kid, json_t *claims, char **out)
{
	struct errmsg err = {};
	int ret;

	ret = jwt_mint_es256(c->key, kid, claims, out, &err);
	if (ret)
		printf("forge: %s\n", err.msg);
	return ret;
}

/* base64url of a JSON value's compact text, malloc'd. */
static char *b64_json(json_t *v)
{
	char *js = json_dumps(v, JSON_COMPACT), *enc;

	if (!js)
		return NULL;
	enc = malloc(B64URL_ENC_LEN(strlen(js)) + 1);
	if (enc)
		b64url_encode(js, strlen(js), enc);
	free(js);
	return enc;
}

/* "<header>.<claims>." and room for a signature of sig_max bytes. */
static char *signing_input(const char *alg, const char *kid, json_t *claims, size_t sig_max)
{
	json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", alg, "typ", "JWT", "kid", kid);
	char *h = hdr ? b64_json(hdr) : NULL, *p = b64_json(claims), *tok = NULL;

	if (h && p) {
		tok = malloc(strlen(h) + strlen(p) + B64URL_ENC_LEN(sig_max) + 3);
		if (tok)
			sprintf(tok, "%s.%s.", h, p);
	}
	json_decref(hdr);
	free(h);
	free(p);
	return tok;
}

/* The public half of c's key as an attacker finds it: PEM. */
static int pubkey_pem(const struct pki_creds *c, char **pem, long *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	int ret = -ENOMEM;

	if (bio && PEM_write_bio_PUBKEY(bio, c->key)) {
		*len = BIO_get_mem_data(bio, &data);
		*pem = malloc(*len);
		if (*pem) {
			memcpy(*pem, data, *len);
			ret = 0;
		}
	}
	BIO_free(bio);
	return ret;
}

/* The classic confusion: a verifier that let the header pick the
 * algorithm would take the public key as an HMAC secret. */
static int hs256_pubkey(const struct pki_creds *c, json_t *claims, char **out)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	char *tok, *pem = NULL;
	size_t mac_len, n;
	long pem_len;

	tok = signing_input("HS256", c->thumbprint, claims, sizeof(mac));
	if (!tok || pubkey_pem(c, &pem, &pem_len)) {
		free(tok);
		return -ENOMEM;
	}
	n = strlen(tok) - 1;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, pem, pem_len, (unsigned char *)tok, n,
		       mac, sizeof(mac), &mac_len)) {
		free(pem);
		free(tok);
		return -EIO;
	}
	b64url_encode(mac, mac_len, tok + n + 1);
	free(pem);
	*out = tok;
	return 0;
}

/* A token c signed, with its claims then swapped for claims: the
 * signature no longer covers what the token says. */
static int tampered(const struct pki_creds *c, json_t *claims, const char *sub, char **out)
{
	char *tok, *p, *dot1, *dot2, *res;
	int ret;

	ret = mint(c, c->thumbprint, claims, &tok);
	if (ret)
		return ret;
	if (json_object_set_new(claims, "sub", json_string(sub)) ||
	    json_object_set_new(claims, "roles", json_pack("[s]", TAMPER_ROLE)) ||
	    !(p = b64_json(claims))) {
		free(tok);
		return -ENOMEM;
	}
	dot1 = strchr(tok, '.');
	dot2 = strchr(dot1 + 1, '.');
	ret = asprintf(&res, "%.*s%s%s", (int)(dot1 + 1 - tok), tok, p, dot2) < 0 ? -ENOMEM : 0;
	free(p);
	free(tok);
	if (!ret)
		*out = res;
	return ret;
}

/* A token c signed with the members of set (a JSON object's text) set
 * over its claims, or over its header: whatever the header then says, the
 * signature is ES256 with c's key. */
static int bent(const struct pki_creds *c, json_t *claims, const char *set, bool header,
		char **out)
{
	json_t *over = set ? json_loads(set, 0, NULL) : NULL;
	json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "JWT", "kid",
				c->thumbprint);
	struct errmsg err = {};
	int ret = -EINVAL;

	if (over && hdr && !json_object_update(header ? hdr : claims, over)) {
		ret = jwt_sign_es256(c->key, hdr, claims, out, &err);
		if (ret)
			printf("forge: %s\n", err.msg);
	}
	json_decref(over);
	json_decref(hdr);
	return ret;
}

/* A header no JSON encoder would write: kid's bytes as they are, which
 * may be no UTF-8. The signature is of nothing: the header is refused
 * before it is looked at. */
static int raw_kid(json_t *claims, const char *kid, char **out)
{
	static const uint8_t no_sig[64];
	char *hdr, *h, *p, *tok, sig[B64URL_ENC_LEN(sizeof(no_sig)) + 1];
	int ret = -ENOMEM;

	if (asprintf(&hdr, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid) < 0)
		return -ENOMEM;
	h = malloc(B64URL_ENC_LEN(strlen(hdr)) + 1);
	p = b64_json(claims);
	if (h && p) {
		b64url_encode(hdr, strlen(hdr), h);
		b64url_encode(no_sig, sizeof(no_sig), sig);
		if (asprintf(&tok, "%s.%s.%s", h, p, sig) >= 0) {
			*out = tok;
			ret = 0;
		}
	}
	free(hdr);
	free(h);
	free(p);
	return ret;
}

static int set_int(json_t *claims, const char *name, int64_t v)
{
	return json_object_set_new(claims, name, json_integer(v)) ? -ENOMEM : 0;
}

int forge_token(const struct pki_creds *c, enum forge_kind kind, const struct forge_req *req,
		char **out)
{
	int64_t now = req->now ? req->now : time(NULL);
	char other[PKI_ID_MAX];
	json_t *claims;
	int ret;

	*out = NULL;
	ret = workload_claims(c, req, &claims);
	if (ret)
		return ret;
	switch (kind) {
	case FORGE_VALID:
		ret = mint(c, c->thumbprint, claims, out);
		break;
	case FORGE_ALG_NONE:
		*out = signing_input("none", c->thumbprint, claims, 0);
		ret = *out ? 0 : -ENOMEM;
		break;
	case FORGE_HS256_PUBKEY:
		ret = hs256_pubkey(c, claims, out);
		break;
	case FORGE_WRONG_ISS:
		snprintf(other, sizeof(other), "spiffe://" OTHER_DOMAIN "/node/%s", c->node);
		ret = json_object_set_new(claims, "iss", json_string(other)) ? -ENOMEM : 0;
		if (!ret)
			ret = mint(c, c->thumbprint, claims, out);
		break;
	case FORGE_WRONG_AUD:
		ret = json_object_set_new(claims, "aud", json_string("spiffe://" OTHER_DOMAIN))
			  ? -ENOMEM
			  : 0;
		if (!ret)
			ret = mint(c, c->thumbprint, claims, out);
		break;
	case FORGE_EXPIRED:
		ret = set_int(claims, "iat", now - HOUR) ?: set_int(claims, "nbf", now - HOUR) ?:
		      set_int(claims, "exp", now - HOUR + 60);
		if (!ret)
			ret = mint(c, c->thumbprint, claims, out);
		break;
	case FORGE_NOT_YET_VALID:
		ret = set_int(claims, "nbf", now + HOUR) ?: set_int(claims, "exp", now + 2 * HOUR);
		if (!ret)
			ret = mint(c, c->thumbprint, claims, out);
		break;
	case FORGE_UNKNOWN_KID:
		ret = mint(c, NO_SUCH_KID, claims, out);
		break;
	case FORGE_TAMPERED:
		ret = req->tamper_sub ? tampered(c, claims, req->tamper_sub, out) : -EINVAL;
		break;
	case FORGE_CLAIMS:
	case FORGE_HEADER:
		ret = bent(c, claims, req->set, kind == FORGE_HEADER, out);
		break;
	case FORGE_KID:
		ret = req->kid ? mint(c, req->kid, claims, out) : -EINVAL;
		break;
	case FORGE_KID_RAW:
		ret = req->kid ? raw_kid(claims, req->kid, out) : -EINVAL;
		break;
	default:
		ret = -EINVAL;
	}
	json_decref(claims);
	return ret;
}
