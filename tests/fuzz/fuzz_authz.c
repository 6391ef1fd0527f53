// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The edge's decision: edge_decide() on the headers nginx passes, with a
 * fixed policy (an http service, an allow by role with method and path
 * conditions, a deny), a fixed EC key as the IdP's JWKS and fixed node
 * credentials that sign the caller assertion.
 *
 * The first byte picks the mode, the rest is up to seven fields separated
 * by NUL bytes: Authorization, X-Original-Method, X-Original-URI,
 * X-Original-Host, X-Original-Remote-Addr, X-Sluice-Service,
 * X-Sluice-Generation; missing fields are absent headers.
 *   mode & 1: the first field is a claims object the harness signs with
 *             the IdP key (kid "idp-1"), sent as "Bearer <token>", so
 *             that verification passes and decide, cache and assertion run;
 *   mode & 2: the policy is set again between the two decisions each
 *             input gets (the cache is dropped), else the second one is
 *             answered from the cache.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "edge.h"
#include "harness.h"
#include "jwks.h"
#include "jwt.h"
#include "pki.h"
#include "pki_ca.h"
#include "policy.h"

#define NR_FIELDS 7

static const char policy_yaml[] =
	"version: 1\n"
	"default: deny\n"
	"roles:\n"
	"  - name: analyst\n"
	"    claims: {groups: analysts}\n"
	"services:\n"
	"  - name: api\n"
	"    addresses: [10.66.0.2/32]\n"
	"    ports: [8080]\n"
	"    protocol: http\n"
	"rules:\n"
	"  - name: analysts-read\n"
	"    from: {role: analyst}\n"
	"    to: api\n"
	"    action: allow\n"
	"    methods: [GET, HEAD]\n"
	"    paths: [/api/**, /api/*/jobs]\n"
	"    hosts: [\"*.acme.example\"]\n"
	"  - name: no-admin\n"
	"    from: {any: true}\n"
	"    to: api\n"
	"    action: deny\n"
	"    paths: [/api/admin/**]\n";

static struct policy pol;
static struct config cfg;
static struct pki_creds creds;
static struct jwks *idp;
static EVP_PKEY *idp_key;
static struct edge *edge;

static int get_key(void *ctx, const char *kid, EVP_PKEY **pkey)
{
	return jwks_get_key(idp, kid, pkey);
}

static const struct pki_creds *get_creds(void *ctx)
{
	return &creds;
}

static X509 *cert(EVP_PKEY *key, const char *id, bool ca, X509 *issuer, EVP_PKEY *ikey)
{
	struct pki_cert_req req = {
		.spiffe_id = id, .cn = "fuzz", .ca = ca,
		.not_before = time(NULL) - 3600, .not_after = time(NULL) + 30 * 86400,
	};
	struct errmsg err;
	X509 *out;

	if (pki_make_cert(&req, key, issuer, ikey, &out, &err))
		abort();
	return out;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct edge_deps deps = { .idp_key = get_key, .creds = get_creds };
	struct errmsg err;
	EVP_PKEY *ca_key;

	if (policy_load(fuzz_file((const uint8_t *)policy_yaml, strlen(policy_yaml)), &pol, &err) ||
	    pki_new_key(&idp_key, &err) || pki_new_key(&ca_key, &err) ||
	    pki_new_key(&creds.key, &err) || jwks_from_pkey(idp_key, "idp-1", &idp, &err)) {
		fprintf(stderr, "fuzz_authz: %s\n", err.msg);
		abort();
	}
	creds.ca = cert(ca_key, "spiffe://acme.example", true, NULL, NULL);
	creds.cert = cert(creds.key, "spiffe://acme.example/node/edge-a", false, creds.ca, ca_key);
	/* Lines go nowhere, but every member is encoded as on a real log. */
	if (audit_open("/dev/null", &deps.audit, &err))
		abort();
	cfg.trust_domain = "acme.example";
	cfg.identity.oidc = true;
	cfg.identity.oidc_issuer = "https://idp.acme.example";
	cfg.identity.clock_skew_s = 30;
	cfg.edge.enabled = true;
	cfg.edge.audience = "https://api.acme.example";
	cfg.edge.cache_max = 8;
	cfg.edge.cache_ttl_s = 60;
	cfg.edge.assertion_lifetime_s = 60;
	if (edge_core_new(&cfg, &deps, &edge, &err))
		abort();
	edge_set_policy(edge, &pol, 1);
	return 0;
}

/* "Bearer " and the claims signed with the IdP key, or NULL. */
static char *signed_bearer(const char *claims_json)
{
	json_t *hdr = json_pack("{s:s, s:s}", "alg", "ES256", "kid", "idp-1");
	json_t *claims = json_loads(claims_json, JSON_REJECT_DUPLICATES, NULL);
	struct errmsg err;
	char *tok = NULL, *out = NULL;

	if (hdr && json_is_object(claims) && !jwt_sign_es256(idp_key, hdr, claims, &tok, &err) &&
	    asprintf(&out, "Bearer %s", tok) < 0)
		out = NULL;
	free(tok);
	json_decref(hdr);
	json_decref(claims);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *field[NR_FIELDS] = {};
	struct edge_answer ans;
	struct edge_req req;
	char *buf, *p, *end, *bearer = NULL;
	uint8_t mode;
	int n = 0;

	if (!size)
		return 0;
	mode = data[0];
	buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	for (p = buf, end = buf + size - 1; n < NR_FIELDS && p <= end; p += strlen(p) + 1)
		field[n++] = p;
	if ((mode & 1) && field[0])
		field[0] = bearer = signed_bearer(field[0]);
	req = (struct edge_req){
		.authorization = field[0], .method = field[1], .uri = field[2], .host = field[3],
		.remote_addr = field[4], .service = field[5], .generation = field[6],
	};
	for (int i = 0; i < 2; i++) {
		edge_decide(edge, &req, &ans);
		/* What nginx would copy into a header must be one line. */
		if (strpbrk(ans.reason, "\r\n") || strpbrk(ans.www_authenticate, "\r\n") ||
		    strpbrk(ans.caller, "\r\n") || (ans.status == 200 && !ans.assertion))
			abort();
		edge_answer_release(&ans);
		if (mode & 2)
			edge_set_policy(edge, &pol, 2 + i);
	}
	free(bearer);
	free(buf);
	return 0;
}
