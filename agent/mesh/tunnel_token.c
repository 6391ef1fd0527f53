// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The workloads' tokens: minted with the node key or taken from the IdP,
 * cached per workload and re-minted at two thirds of their life outbound;
 * verified inbound against the node keys or the IdP's JWKS, bound to the
 * peer's certificate, and read for their roles.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>

#include "b64url.h"
#include "jwt.h"
#include "log.h"
#include "tunnel_int.h"
#include "utf8.h"

void tokens_drop(struct tunnel *t)
{
	for (int i = 0; i < t->nr_tokens; i++) {
		if (t->tokens[i].jwt) {
			OPENSSL_cleanse(t->tokens[i].jwt, strlen(t->tokens[i].jwt));
			free(t->tokens[i].jwt);
		}
		t->tokens[i].jwt = NULL;
		t->tokens[i].exp = 0;
	}
}

static struct token *token_slot(struct tunnel *t, const char *workload)
{
	struct token *tk;

	for (int i = 0; i < t->nr_tokens; i++) {
		if (!strcmp(t->tokens[i].workload, workload))
			return &t->tokens[i];
	}
	tk = realloc(t->tokens, (t->nr_tokens + 1) * sizeof(*tk));
	if (!tk)
		return NULL;
	t->tokens = tk;
	tk = &t->tokens[t->nr_tokens];
	memset(tk, 0, sizeof(*tk));
	tk->workload = strdup(workload);
	if (!tk->workload)
		return NULL;
	t->nr_tokens++;
	return tk;
}

static int mint(struct tunnel *t, const struct policy_identity *id, struct token *tk,
		struct errmsg *err)
{
	struct jwt_workload w = {
		.trust_domain = t->cfg->trust_domain,
		.node = t->cfg->node,
		.id = id->spiffe_id,
		.roles = id->roles,
		.nr_roles = id->nr_roles,
		.cnf_x5t = t->creds->thumbprint,
		.now = time(NULL),
		.lifetime = t->cfg->identity.token_lifetime_s,
	};
	json_t *claims;
	char *jwt;
	int ret;

	/* Never outlive the certificate that binds it. */
	if (w.now + w.lifetime > t->creds->not_after)
		w.lifetime = t->creds->not_after - w.now;
	if (w.lifetime <= 0)
		return errmsg_set(err, -EKEYEXPIRED, "node certificate %s expired",
				  t->cfg->identity.cert);
	ret = jwt_workload_claims(&w, &claims, err);
	if (ret)
		return ret;
	snprintf(tk->jti, sizeof(tk->jti), "%s", json_string_value(json_object_get(claims, "jti")));
	ret = jwt_mint_es256(t->creds->key, t->creds->thumbprint, claims, &jwt, err);
	json_decref(claims);
	if (ret)
		return ret;
	if (tk->jwt) {
		OPENSSL_cleanse(tk->jwt, strlen(tk->jwt));
		free(tk->jwt);
	}
	tk->jwt = jwt;
	tk->iat = w.now;
	tk->exp = w.now + w.lifetime;
	return 0;
}

/* The unverified header (part 0) or claims (part 1) of a compact JWS: to
 * choose the verification keys by "iss", or to name the token in the
 * audit. The signature check is what trusts it. */
static json_t *peek_part(const char *token, int part)
{
	const char *start = token, *end;
	char buf[MAX_TOKEN];
	size_t n;

	if (part && !(start = strchr(token, '.')))
		return NULL;
	start += part;
	end = strchr(start, '.');
	if (!end || (size_t)(end - start) > B64URL_ENC_LEN(sizeof(buf) - 1) ||
	    b64url_decode(start, end - start, buf, &n))
		return NULL;
	return json_loadb(buf, n, 0, NULL);
}

/* The IdP's token is opaque to its sender, but the outbound audit line
 * names it as the inbound one does. */
static void note_token_ids(const char *token, struct tflow *f)
{
	json_t *hdr = peek_part(token, 0), *claims = peek_part(token, 1);
	const char *s;

	if ((s = json_string_value(json_object_get(hdr, "kid"))))
		utf8_copy(f->kid, sizeof(f->kid), s);
	if ((s = json_string_value(json_object_get(claims, "jti"))))
		utf8_copy(f->jti, sizeof(f->jti), s);
	json_decref(hdr);
	json_decref(claims);
}

/* The workload's token into f's OPEN: the embedded one re-minted at two
 * thirds of its life, or the IdP's cached one. NULL with the reason in f
 * when there is none. */
const char *token_for(struct tunnel *t, const struct policy_identity *id,
		      struct tflow *f, char *buf, size_t len)
{
	struct errmsg err = {};
	const char *reason = NULL;
	struct token *tk;
	int64_t now = time(NULL);

	if (t->oidc) {
		if (oidc_token_get(t->oidc, id->spiffe_id, buf, len, NULL, &reason, &err)) {
			set_reason(f, reason ? reason : "no-token");
			pr_debug("no token for %s: %s", id->spiffe_id, err.msg);
			return NULL;
		}
		note_token_ids(buf, f);
		return buf;
	}
	tk = token_slot(t, id->spiffe_id);
	if (!tk) {
		set_reason(f, "internal-error");
		return NULL;
	}
	if (!tk->jwt || now >= tk->iat + (tk->exp - tk->iat) * 2 / 3) {
		bool renewing = tk->iat;	/* one was minted before */

		if (!mint(t, id, tk, &err)) {
			t->stats.rotations[CRED_TOKEN] += renewing;
		} else {
			t->stats.renewal_failures[CRED_TOKEN]++;
			pr_warn("cannot mint a token for %s: %s", id->spiffe_id, err.msg);
			/* A token still valid beats none. */
			if (!tk->jwt || now >= tk->exp) {
				set_reason(f, "no-token");
				return NULL;
			}
		}
	}
	snprintf(f->jti, sizeof(f->jti), "%s", tk->jti);
	snprintf(f->kid, sizeof(f->kid), "%s", t->creds->thumbprint);
	return tk->jwt;
}

static int idp_get_key(void *ctx, const char *kid, EVP_PKEY **pkey)
{
	struct tunnel *t = ctx;
	int ret;

	ret = t->idp_jwks ? jwks_get_key(t->idp_jwks, kid, pkey) : -ENOENT;
	/* A kid we lack may be the IdP's new key: fetch again, rate-limited
	 * by the OIDC client. This token is refused; the next one may pass. */
	if (ret == -ENOENT)
		oidc_jwks_refetch(t->oidc);
	return ret;
}

void idp_jwks_update(struct tunnel *t)
{
	struct errmsg err = {};
	struct jwks *set;
	uint64_t gen;
	char *doc;

	if (!t->oidc || oidc_jwks_get(t->oidc, &doc, &gen, &err))
		return;
	if (gen == t->idp_jwks_gen) {
		free(doc);
		return;
	}
	if (jwks_parse(doc, strlen(doc), &set, &err)) {
		pr_warn("IdP JWKS refused, keeping the previous one: %s", err.msg);
		t->stats.renewal_failures[CRED_JWKS]++;
	} else {
		t->stats.rotations[CRED_JWKS] += t->idp_jwks != NULL;
		jwks_free(t->idp_jwks);
		t->idp_jwks = set;
	}
	t->idp_jwks_gen = gen;
	free(doc);
}

int tunnel_idp_key(void *ctx, const char *kid, EVP_PKEY **pkey)
{
	struct tunnel *t = ctx;

	idp_jwks_update(t);
	return idp_get_key(t, kid, pkey);
}

static void idp_opts(struct tunnel *t, struct jwt_verify_opts *o)
{
	idp_jwks_update(t);
	o->issuer = t->cfg->identity.oidc_issuer;
	o->audience = t->cfg->identity.oidc_audience;
	o->get_key = idp_get_key;
	o->key_ctx = t;
	o->require_cnf = t->bind_cert;
	if (!o->require_cnf)
		o->cnf_x5t = NULL;
}

/* A token the peer minted with its node key: 0 or a reason code. */
static const char *node_opts(struct tunnel *t, const char *iss, X509 *peer_cert,
			     struct pki_peer *peer, const char *aud, struct jwt_verify_opts *o)
{
	const char *peer_id = peer->spiffe_id;
	struct jwks *node_keys = NULL;
	struct errmsg err = {};

	/* A token another node minted is not this peer's to present. */
	if (iss && !strncmp(iss, aud, strlen(aud)) && !strncmp(iss + strlen(aud), "/node/", 6) &&
	    strcmp(iss, peer_id))
		return "not-bound";
	if (pki_peer_keys(peer, peer_cert, &node_keys, &err)) {
		pr_info("tunnel from %s: %s", peer_id, err.msg);
		return "internal-error";
	}
	o->issuer = peer_id;
	o->audience = aud;
	o->algs = JWS_ES256;
	o->get_key = jwks_get_key;
	o->key_ctx = node_keys;
	o->max_lifetime = 24 * 3600;
	return NULL;
}

/*
 * How the OPEN's token is verified, chosen by its unverified iss: 0 or a
 * reason code. With an IdP, the IdP alone vouches for workloads: a token
 * of another issuer, a node's own included, is refused whatever it claims,
 * so no node can grant a role the policy maps from the IdP's claims, nor
 * speak for a workload the IdP never authenticated.
 */
static const char *token_opts(struct tunnel *t, const struct frame_open *open, X509 *peer_cert,
			      struct pki_peer *peer, const char *aud, struct jwt_verify_opts *o)
{
	json_t *peek = peek_part(open->token, 1);
	const char *iss = peek ? json_string_value(json_object_get(peek, "iss")) : NULL;
	const char *why = NULL;

	if (t->oidc && iss && strcmp(iss, t->cfg->identity.oidc_issuer)) {
		pr_info("tunnel from %s: token for %s refused: not the IdP's (identity.oidc)",
			peer->spiffe_id, open->src);
		why = "idp-token-required";
	} else if (t->oidc) {
		idp_opts(t, o);
	} else {
		why = node_opts(t, iss, peer_cert, peer, aud, o);
	}
	json_decref(peek);
	return why;
}

/* Verifies an OPEN's token against the TLS peer: 0 or a reason code. */
const char *check_token(struct tunnel *t, const struct frame_open *open, X509 *peer_cert,
			struct pki_peer *peer, struct tflow *f, json_t **claims)
{
	struct jwt_verify_opts o = {
		.skew = t->cfg->identity.clock_skew_s,
		.cnf_x5t = peer->thumbprint,
		.require_cnf = true,
	};
	struct jwt_result res = {};
	const char *reason;
	char aud[CONFIG_NAME_MAX + 16];

	snprintf(aud, sizeof(aud), "spiffe://%s", t->cfg->trust_domain);
	reason = token_opts(t, open, peer_cert, peer, aud, &o);
	if (reason)
		return reason;
	jwt_verify(open->token, &o, &res);
	/* The caller's choice, the kid before any signature was checked: only
	 * whole characters may be kept, or the line would be lost. */
	if (res.kid)
		utf8_copy(f->kid, sizeof(f->kid), res.kid);
	if (res.jti)
		utf8_copy(f->jti, sizeof(f->jti), res.jti);
	if (res.reason != JWT_OK) {
		pr_info("tunnel from %s: token for %s refused: %s", peer->spiffe_id, open->src,
			res.err.msg);
		reason = jwt_reason_name(res.reason);
	} else if (!res.sub || strcmp(res.sub, open->src)) {
		reason = "wrong-subject";
	} else {
		*claims = json_incref(res.claims);
		reason = NULL;
	}
	jwt_result_free(&res);
	return reason;
}

/* Roles: with an IdP (whose tokens alone get here), the policy's mapping
 * of its claims; otherwise the embedded token's own list. */
int token_roles(const struct tunnel *t, json_t *claims, const char **roles, int max)
{
	json_t *v, *list;
	size_t i;
	int n = 0;

	if (t->oidc)
		return policy_roles_from_claims(t->pol, claims, roles, max);
	list = json_object_get(claims, "roles");
	json_array_foreach(list, i, v) {
		if (json_is_string(v) && n < max)
			roles[n++] = json_string_value(v);
	}
	return n;
}
