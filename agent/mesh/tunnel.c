// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "audit.h"
#include "b64url.h"
#include "credfile.h"
#include "frame.h"
#include "jwks.h"
#include "jwt.h"
#include "log.h"
#include "oidc.h"
#include "pki.h"
#include "tunnel.h"
#include "utf8.h"

#define MAX_TOKEN 8192
/* A cached session is not offered when the certificate it holds for the
 * peer expires this soon: the peer would refuse the resumption anyway. */
#define SESSION_MARGIN_S 5
/* Peers whose token verification keys are kept decoded. */
#define NODE_KEYS_MAX 256
/* A full disk must not flood the log: one message about the audit log in
 * this many seconds at most. */
#define AUDIT_SAY_S 10

/* One per peer node name ever configured; never freed before the tunnel,
 * since SSLs in flight point at it. */
struct peer_state {
	char *node;
	SSL_SESSION *session;
	const struct tunnel *tunnel;
	struct peer_state *next;
};

struct token {
	char *workload;
	char *jwt;
	int64_t iat, exp;
	char jti[40];
};

struct tunnel {
	const struct config *cfg;
	const struct policy *pol;
	const struct workload_set *wls;
	uint32_t generation;
	struct pki_creds *creds;
	SSL_CTX *client_ctx, *server_ctx;
	struct peer_state *peers;
	struct token *tokens;
	int nr_tokens;
	struct oidc *oidc;
	struct jwks *idp_jwks;
	uint64_t idp_jwks_gen;
	struct jwks_cache *node_keys;	/* peers' certificate keys, by thumbprint */
	struct audit *audit;
	bool audit_unwell;		/* the log said it fails, and not yet that it works */
	time_t audit_quiet_until;	/* CLOCK_MONOTONIC s: nothing said before then */
	/* identity.oidc.bind_cert as the OIDC client started with it: a
	 * reload changes neither side (identity changes need a restart). */
	bool bind_cert;
	char *credfile;
	char *creds_sig;		/* what credentials.json says now */
};

/* A tunnel flow, as the audit line describes it. */
struct tflow {
	struct tunnel *t;
	bool inbound;
	bool allow;
	bool decided;			/* a deny line is already written */
	struct peer_state *peer;	/* outbound */
	char src_node[CONFIG_NAME_MAX];
	char src_workload[FRAME_ID_MAX];
	char peer_addr[SOCKADDR_STR_LEN];
	char detail[128];
	char dst[SOCKADDR_STR_LEN];
	char service[64];
	char rule[FRAME_REASON_MAX];
	char reason[FRAME_REASON_MAX];
	char failed[FRAME_REASON_MAX];	/* inbound allow: why its bytes never flowed */
	char jti[64];
	char kid[64];
	char trace_id[33];
	uint64_t generation;
	enum audit_resumed resumed;
};

static int ssl_peer_idx = -1;

/* Says that audit lines are lost, with the running count, and that they
 * are written again once they are, at most once every AUDIT_SAY_S. */
static void audit_report(struct tunnel *t, int ret)
{
	struct audit_health h;
	struct timespec ts;

	if (!ret && !t->audit_unwell)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec < t->audit_quiet_until) {
		t->audit_unwell = true;
		return;
	}
	audit_get_health(t->audit, &h);
	if (ret)
		pr_err("audit: %llu lines lost so far: cannot write %s: %s",
		       (unsigned long long)h.lost, t->cfg->audit_log, strerror(-ret));
	else
		pr_info("audit: writing to %s again, %llu lines lost so far", t->cfg->audit_log,
			(unsigned long long)h.lost);
	t->audit_unwell = ret != 0;
	t->audit_quiet_until = ts.tv_sec + AUDIT_SAY_S;
}

static void audit_emit(struct tunnel *t, const struct tflow *f, bool closed, uint64_t up,
		       uint64_t down, uint64_t duration_ns, int status)
{
	struct timespec ts;
	struct audit_rec r = {
		.direction = f->inbound ? "inbound" : "outbound",
		.src_node = f->src_node[0] ? f->src_node : NULL,
		.src_workload = f->src_workload[0] ? f->src_workload : NULL,
		.peer = f->peer_addr[0] ? f->peer_addr : NULL,
		.dst = f->dst,
		.service = f->service[0] ? f->service : NULL,
		.verdict = f->allow ? "allow" : "deny",
		.reason = f->reason[0] ? f->reason : "ok",
		.detail = f->detail[0] ? f->detail : NULL,
		.rule = f->rule[0] ? f->rule : NULL,
		.generation = f->generation,
		.jti = f->jti[0] ? f->jti : NULL,
		.kid = f->kid[0] ? f->kid : NULL,
		.trace_id = f->trace_id[0] ? f->trace_id : NULL,
		.resumed = f->resumed,
		.closed = closed,
		.bytes_up = up,
		.bytes_down = down,
		.duration_ns = duration_ns,
		.status = f->failed[0] ? f->failed : !status ? "ok" : strerrorname_np(-status),
	};

	clock_gettime(CLOCK_REALTIME, &ts);
	r.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	audit_report(t, audit_write(t->audit, &r));
}

static struct tflow *tflow_new(struct tunnel *t, bool inbound)
{
	struct tflow *f = calloc(1, sizeof(*f));

	if (f) {
		f->t = t;
		f->inbound = inbound;
		f->generation = t->generation;
	}
	return f;
}

static void set_reason(struct tflow *f, const char *reason)
{
	snprintf(f->reason, sizeof(f->reason), "%s", reason);
}

/* Writes the deny line of a flow that ends before any byte moved; reason
 * NULL keeps the one set. */
static void deny(struct tflow *f, const char *reason)
{
	f->allow = false;
	if (reason)
		set_reason(f, reason);
	if (!f->decided)
		audit_emit(f->t, f, false, 0, 0, 0, 0);
	f->decided = true;
}

static enum audit_resumed tls_resumed(SSL *ssl)
{
	if (!ssl || !SSL_is_init_finished(ssl))
		return AUDIT_RESUMED_UNKNOWN;
	return SSL_session_reused(ssl) ? AUDIT_RESUMED_YES : AUDIT_RESUMED_NO;
}

static const struct policy_identity *identity_by_num(const struct tunnel *t, uint32_t id)
{
	for (int i = 0; i < t->wls->nr; i++) {
		if (t->wls->ids[i].id == id)
			return &t->wls->ids[i];
	}
	return NULL;
}

static struct peer_state *peer_state(struct tunnel *t, const char *node)
{
	struct peer_state *ps;

	for (ps = t->peers; ps; ps = ps->next) {
		if (!strcmp(ps->node, node))
			return ps;
	}
	ps = calloc(1, sizeof(*ps));
	if (!ps || !(ps->node = strdup(node))) {
		free(ps);
		return NULL;
	}
	ps->tunnel = t;
	ps->next = t->peers;
	t->peers = ps;
	return ps;
}

static void sessions_drop(struct tunnel *t)
{
	for (struct peer_state *ps = t->peers; ps; ps = ps->next) {
		SSL_SESSION_free(ps->session);
		ps->session = NULL;
	}
}

/* TLS 1.3 tickets arrive after the handshake; keep the newest per peer.
 * Kept and resumed as copies that no SSL holds: OpenSSL marks the session
 * of an SSL freed without close_notify unresumable, and one flow's reset
 * must not send every later flow to that peer through a full handshake. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct peer_state *ps = SSL_get_ex_data(ssl, ssl_peer_idx);
	SSL_SESSION *copy;

	/* A ticket can arrive after a reload for a connection made with the
	 * old certificate: resuming it would present that certificate to the
	 * peer while tokens are bound to the new one. */
	if (!ps || SSL_get_SSL_CTX(ssl) != ps->tunnel->client_ctx)
		return 0;
	copy = SSL_SESSION_dup(sess);
	if (copy) {
		SSL_SESSION_free(ps->session);
		ps->session = copy;
	}
	return 0;
}

static void resume_from(SSL *ssl, SSL_SESSION *sess)
{
	SSL_SESSION *copy = SSL_SESSION_dup(sess);

	if (copy) {
		SSL_set_session(ssl, copy);
		SSL_SESSION_free(copy);
	}
}

static bool session_usable(SSL_SESSION *sess, time_t now)
{
	X509 *peer = SSL_SESSION_get0_peer(sess);
	time_t na;

	if (!peer || pki_asn1_time(X509_get0_notAfter(peer), &na))
		return false;
	return na > now + SESSION_MARGIN_S &&
	       SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess) > now;
}

static void tokens_drop(struct tunnel *t)
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
static const char *token_for(struct tunnel *t, const struct policy_identity *id,
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
		if (mint(t, id, tk, &err)) {
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

static int t_route(void *ctx, const struct sluice_orig_dst *dst, struct proxy_route *out)
{
	struct tunnel *t = ctx;
	const struct policy_identity *id;
	const struct peer_cfg *peer;
	struct frame_open open = {};
	struct sockaddr_storage ss;
	char buf[MAX_TOKEN];
	struct tflow *f;
	SSL *ssl;
	int ret;

	peer = config_peer_for(t->cfg, dst->family, dst->addr);
	if (!peer)
		return 0;
	f = tflow_new(t, false);
	if (!f)
		return -ENOMEM;
	snprintf(f->src_node, sizeof(f->src_node), "%s", t->cfg->node);
	orig_dst_sockaddr(dst, &ss);
	format_sockaddr(&ss, f->dst, sizeof(f->dst));
	id = identity_by_num(t, dst->identity);
	if (!id) {
		deny(f, "unknown-workload");
		free(f);
		return -ENOENT;
	}
	snprintf(f->src_workload, sizeof(f->src_workload), "%s", id->spiffe_id);
	if (t->creds->not_after <= time(NULL)) {
		deny(f, "node-cert-expired");
		free(f);
		return -EKEYEXPIRED;
	}
	open.token = (char *)token_for(t, id, f, buf, sizeof(buf));
	if (!open.token) {
		deny(f, NULL);
		free(f);
		return -ENOKEY;
	}
	parse_sockaddr(f->dst, &open.dst);
	snprintf(open.src, sizeof(open.src), "%s", id->spiffe_id);
	ret = frame_traceparent_new(open.traceparent);
	if (!ret) {
		memcpy(f->trace_id, open.traceparent + 3, 32);
		ret = frame_open_encode(&open, &out->open, &out->open_len);
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	f->peer = peer_state(t, peer->node);
	ssl = ret || !f->peer ? NULL : SSL_new(t->client_ctx);
	if (!ssl) {
		deny(f, "internal-error");
		if (out->open) {
			OPENSSL_cleanse(out->open, out->open_len);
			free(out->open);
			out->open = NULL;
		}
		free(f);
		return -ENOMEM;
	}
	SSL_set_ex_data(ssl, ssl_peer_idx, f->peer);
	if (t->cfg->identity.resumption && f->peer->session &&
	    session_usable(f->peer->session, time(NULL)))
		resume_from(ssl, f->peer->session);
	out->ssl = ssl;
	out->peer = peer->tunnel;
	out->flow_ctx = f;
	return 0;
}

static int t_tunnel_ready(void *ctx, void *flow_ctx, SSL *ssl)
{
	struct tunnel *t = ctx;
	struct tflow *f = flow_ctx;
	char want[PKI_ID_MAX], got[PKI_ID_MAX];
	struct errmsg err = {};

	f->resumed = tls_resumed(ssl);
	snprintf(want, sizeof(want), "spiffe://%s/node/%s", t->cfg->trust_domain, f->peer->node);
	if (pki_verify_peer(t->creds, SSL_get0_peer_certificate(ssl), SSL_get_peer_cert_chain(ssl),
			    got, sizeof(got), &err)) {
		pr_warn("tunnel to %s: %s", f->peer->node, err.msg);
		deny(f, "peer-cert-rejected");
		return -EKEYREJECTED;
	}
	if (strcmp(want, got)) {
		pr_warn("tunnel to %s: the peer is %s", f->peer->node, got);
		deny(f, "peer-identity-mismatch");
		return -EPERM;
	}
	return 0;
}

static void t_verdict(void *ctx, void *flow_ctx, const struct frame_verdict *v)
{
	struct tflow *f = flow_ctx;

	(void)ctx;
	if (!f)
		return;
	snprintf(f->rule, sizeof(f->rule), "%s", v->rule);
	f->generation = v->generation;
	if (v->allow) {
		f->allow = true;
		set_reason(f, v->reason);
		return;
	}
	deny(f, v->reason);
}

/* Said in the allow line written at close: one decision, one line. */
static void t_setup_failed(void *ctx, void *flow_ctx, const char *why, const char *detail)
{
	struct tflow *f = flow_ctx;

	(void)ctx;
	pr_info("tunnel from %s: flow of %s to %s allowed, then %s (%s)", f->src_node,
		f->src_workload, f->dst, why, detail);
	snprintf(f->failed, sizeof(f->failed), "%s", why);
	snprintf(f->detail, sizeof(f->detail), "%s", detail);
}

static SSL *t_tunnel_accept(void *ctx)
{
	struct tunnel *t = ctx;

	return SSL_new(t->server_ctx);
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

static void idp_jwks_update(struct tunnel *t)
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
	} else {
		jwks_free(t->idp_jwks);
		t->idp_jwks = set;
	}
	t->idp_jwks_gen = gen;
	free(doc);
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
			     const char *peer_id, const char *peer_thumb, const char *aud,
			     struct jwt_verify_opts *o)
{
	struct jwks *node_keys = NULL;
	struct errmsg err = {};

	/* A token another node minted is not this peer's to present. */
	if (iss && !strncmp(iss, aud, strlen(aud)) && !strncmp(iss + strlen(aud), "/node/", 6) &&
	    strcmp(iss, peer_id))
		return "not-bound";
	if (jwks_cache_get(t->node_keys, peer_cert, peer_thumb, &node_keys, &err)) {
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
			      const char *peer_id, const char *peer_thumb, const char *aud,
			      struct jwt_verify_opts *o)
{
	json_t *peek = peek_part(open->token, 1);
	const char *iss = peek ? json_string_value(json_object_get(peek, "iss")) : NULL;
	const char *why = NULL;

	if (t->oidc && iss && strcmp(iss, t->cfg->identity.oidc_issuer)) {
		pr_info("tunnel from %s: token for %s refused: not the IdP's (identity.oidc)",
			peer_id, open->src);
		why = "idp-token-required";
	} else if (t->oidc) {
		idp_opts(t, o);
	} else {
		why = node_opts(t, iss, peer_cert, peer_id, peer_thumb, aud, o);
	}
	json_decref(peek);
	return why;
}

/* Verifies an OPEN's token against the TLS peer: 0 or a reason code. */
static const char *check_token(struct tunnel *t, const struct frame_open *open, X509 *peer_cert,
			       const char *peer_id, const char *peer_thumb, struct tflow *f,
			       json_t **claims)
{
	struct jwt_verify_opts o = {
		.skew = t->cfg->identity.clock_skew_s,
		.cnf_x5t = peer_thumb,
		.require_cnf = true,
	};
	struct jwt_result res = {};
	const char *reason;
	char aud[CONFIG_NAME_MAX + 16];

	snprintf(aud, sizeof(aud), "spiffe://%s", t->cfg->trust_domain);
	reason = token_opts(t, open, peer_cert, peer_id, peer_thumb, aud, &o);
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
		pr_info("tunnel from %s: token for %s refused: %s", peer_id, open->src, res.err.msg);
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
static int token_roles(const struct tunnel *t, json_t *claims, const char **roles, int max)
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

/* A node's certificate proves which node it is, never which workloads it
 * hosts: only a peer the config lets vouch for src may speak for it,
 * whatever its token says (an IdP's too: it names the workload, not where
 * it runs). */
static bool peer_vouches(const struct tunnel *t, const char *src, struct tflow *f)
{
	const struct peer_cfg *peer = config_peer_by_node(t->cfg, f->src_node);

	if (peer && config_peer_vouches(peer, src))
		return true;
	/* Node names are at most 63 characters (name_valid). */
	if (peer)
		snprintf(f->detail, sizeof(f->detail), "not in peers[].workloads of %.63s",
			 f->src_node);
	else
		snprintf(f->detail, sizeof(f->detail), "%.63s is not in peers", f->src_node);
	pr_info("tunnel from %s: %s refused: %s", f->src_node, src, f->detail);
	return false;
}

static void decide_open(struct tunnel *t, SSL *ssl, const uint8_t *payload, size_t len,
			struct tflow *f, struct proxy_authz *out)
{
	char peer_id[PKI_ID_MAX], thumb[PKI_THUMBPRINT_LEN];
	const char *roles[CONFIG_MAX_ROLES * 4];
	const char *why, *detail = NULL;
	struct frame_open open = {};
	struct errmsg err = {};
	struct spiffe_id sid;
	struct decision d;
	int nr_roles;
	json_t *claims = NULL;
	X509 *cert = SSL_get0_peer_certificate(ssl);
	const uint32_t *addr;
	uint16_t port;

	if (pki_verify_peer(t->creds, cert, SSL_get_peer_cert_chain(ssl), peer_id, sizeof(peer_id),
			    &err)) {
		pr_warn("tunnel refused: %s", err.msg);
		set_reason(f, "peer-cert-rejected");
		return;
	}
	snprintf(f->src_node, sizeof(f->src_node), "%s", strrchr(peer_id, '/') + 1);
	pki_thumbprint(cert, thumb, sizeof(thumb));
	if (frame_open_decode(payload, len, &open, &detail)) {
		pr_info("tunnel from %s: malformed OPEN frame: %s", f->src_node, detail);
		set_reason(f, FRAME_MALFORMED);
		return;
	}
	/* A mapped destination is the IPv4 one for every check below and for
	 * the connect: no family may slip past a CIDR. */
	sockaddr_unmap(&open.dst);
	format_sockaddr(&open.dst, f->dst, sizeof(f->dst));
	snprintf(f->src_workload, sizeof(f->src_workload), "%s", open.src);
	if (open.traceparent[0])
		memcpy(f->trace_id, open.traceparent + 3, 32);
	if (spiffe_id_parse(open.src, &sid, &why) ||
	    !spiffe_id_in_domain(&sid, t->cfg->trust_domain)) {
		set_reason(f, "bad-source");
		goto out;
	}
	if (!peer_vouches(t, open.src, f)) {
		set_reason(f, "workload-not-on-peer");
		goto out;
	}
	addr = open.dst.ss_family == AF_INET6
		       ? (const uint32_t *)&((struct sockaddr_in6 *)&open.dst)->sin6_addr
		       : &((struct sockaddr_in *)&open.dst)->sin_addr.s_addr;
	port = ntohs(((struct sockaddr_in *)&open.dst)->sin_port);
	/* Only destinations on this node: the agent is no open relay. */
	if (config_peer_for(t->cfg, open.dst.ss_family, addr)) {
		set_reason(f, "not-local-destination");
		goto out;
	}
	why = check_token(t, &open, cert, peer_id, thumb, f, &claims);
	if (why) {
		set_reason(f, why);
		goto out;
	}
	nr_roles = token_roles(t, claims, roles, sizeof(roles) / sizeof(roles[0]));
	policy_decide(t->pol,
		      &(struct policy_identity){ .spiffe_id = open.src, .kind = sid.kind,
						 .roles = (char *const *)roles,
						 .nr_roles = nr_roles },
		      open.dst.ss_family, addr, port, IPPROTO_TCP, &d);
	if (d.service >= 0)
		snprintf(f->service, sizeof(f->service), "%s", t->pol->services[d.service].name);
	if (d.rule >= 0 && t->pol->rules[d.rule].name)
		snprintf(f->rule, sizeof(f->rule), "%s", t->pol->rules[d.rule].name);
	if (!d.allow) {
		set_reason(f, policy_reason_name(d.reason));
		goto out;
	}
	f->allow = true;
	set_reason(f, "ok");
	out->allow = true;
	out->dst = open.dst;
out:
	json_decref(claims);
	frame_open_release(&open);
}

static void t_authorize(void *ctx, SSL *ssl, const struct sockaddr_storage *peer,
			const uint8_t *payload, size_t len, struct proxy_authz *out)
{
	struct tunnel *t = ctx;
	struct tflow *f = tflow_new(t, true);

	out->allow = false;
	if (!f) {
		snprintf(out->verdict.reason, sizeof(out->verdict.reason), "internal-error");
		return;
	}
	format_sockaddr(peer, f->peer_addr, sizeof(f->peer_addr));
	f->resumed = tls_resumed(ssl);
	decide_open(t, ssl, payload, len, f, out);
	out->verdict = (struct frame_verdict){ .allow = f->allow, .generation = f->generation };
	snprintf(out->verdict.reason, sizeof(out->verdict.reason), "%s", f->reason);
	snprintf(out->verdict.rule, sizeof(out->verdict.rule), "%s", f->rule);
	if (!f->allow) {
		deny(f, NULL);
		free(f);
		return;
	}
	out->flow_ctx = f;
}

static void t_tunnel_refused(void *ctx, SSL *ssl, const struct sockaddr_storage *peer,
			     const char *reason, const char *detail)
{
	struct tunnel *t = ctx;
	struct tflow f = { .t = t, .inbound = true, .generation = t->generation };
	char id[PKI_ID_MAX];
	X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;

	format_sockaddr(peer, f.peer_addr, sizeof(f.peer_addr));
	f.resumed = tls_resumed(ssl);
	snprintf(f.detail, sizeof(f.detail), "%s", detail);
	/* Named only when the certificate is one of ours. */
	if (cert && !pki_verify_peer(t->creds, cert, SSL_get_peer_cert_chain(ssl), id, sizeof(id),
				     NULL))
		snprintf(f.src_node, sizeof(f.src_node), "%s", strrchr(id, '/') + 1);
	pr_info("tunnel from %s refused: %s (%s)", f.peer_addr, reason, detail);
	snprintf(f.dst, sizeof(f.dst), "%s", "-");
	deny(&f, reason);
}

void tunnel_proxy_ops(struct proxy_ops *ops)
{
	ops->route = t_route;
	ops->tunnel_ready = t_tunnel_ready;
	ops->verdict = t_verdict;
	ops->tunnel_accept = t_tunnel_accept;
	ops->authorize = t_authorize;
	ops->tunnel_refused = t_tunnel_refused;
	ops->setup_failed = t_setup_failed;
}

void tunnel_flow_closed(struct tunnel *t, void *flow_ctx, uint64_t bytes_up, uint64_t bytes_down,
			uint64_t duration_ns, int status)
{
	struct tflow *f = flow_ctx;

	if (!f)
		return;
	/* A deny was written when decided; the rest are written now. */
	if (!f->decided) {
		if (!f->allow && !f->reason[0])
			set_reason(f, "tunnel-broken");
		audit_emit(t, f, true, bytes_up, bytes_down, duration_ns, status);
	}
	free(f);
}

static int contexts_make(struct tunnel *t, struct pki_creds *c, struct errmsg *err)
{
	SSL_CTX *cli = NULL, *srv = NULL;
	int ret;

	ret = pki_ssl_ctx(c, false, &cli, err);
	if (!ret)
		ret = pki_ssl_ctx(c, true, &srv, err);
	if (ret) {
		SSL_CTX_free(cli);
		return ret;
	}
	SSL_CTX_sess_set_new_cb(cli, on_new_session);
	SSL_CTX_free(t->client_ctx);
	SSL_CTX_free(t->server_ctx);
	t->client_ctx = cli;
	t->server_ctx = srv;
	return 0;
}

static int oidc_start(struct tunnel *t, const struct config *cfg, struct errmsg *err)
{
	const struct identity_cfg *id = &cfg->identity;
	struct oidc_cfg oc = {
		.issuer = id->oidc_issuer,
		.resource = id->oidc_audience,
		.ca_file = id->oidc_ca_file,
		.cert_file = id->oidc_bind_cert ? id->cert : NULL,
		.key_file = id->oidc_bind_cert ? id->key : NULL,
	};
	int ret;

	ret = oidc_new(&oc, &t->oidc, err);
	if (ret)
		return ret;
	t->bind_cert = id->oidc_bind_cert;
	if (!t->bind_cert)
		pr_warn("identity.oidc.bind_cert is false: IdP tokens are not bound to a node "
			"certificate, so a token copied anywhere (a log, a proxy, a node) can be "
			"replayed until it expires through any node that peers[].workloads lets "
			"vouch for its workload; set bind_cert: true once the IdP issues "
			"certificate-bound tokens (RFC 8705)");
	for (int i = 0; i < cfg->nr_workloads; i++) {
		const struct workload_cfg *w = &cfg->workloads[i];
		struct oidc_client_cfg cc = {
			.workload = w->id,
			.client_id = w->oidc_client_id,
			.auth = w->oidc_secret_file ? OIDC_AUTH_CLIENT_SECRET_BASIC
						    : OIDC_AUTH_PRIVATE_KEY_JWT,
			.secret_file = w->oidc_secret_file,
			.key_file = w->oidc_key_file,
		};

		ret = oidc_add_workload(t->oidc, &cc, err);
		if (ret)
			return ret;
	}
	return 0;
}

int tunnel_new(const struct config *cfg, struct tunnel **out, struct errmsg *err)
{
	const struct identity_cfg *id = &cfg->identity;
	struct pki_paths paths = { .ca = id->ca, .cert = id->cert, .key = id->key };
	struct tunnel *t;
	int ret;

	if (ssl_peer_idx < 0)
		ssl_peer_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	t = calloc(1, sizeof(*t));
	if (!t)
		return errmsg_set(err, -ENOMEM, "out of memory");
	t->cfg = cfg;
	ret = pki_load(&paths, cfg->trust_domain, cfg->node, &t->creds, err);
	if (!ret)
		ret = contexts_make(t, t->creds, err);
	if (!ret && jwks_cache_new(NODE_KEYS_MAX, &t->node_keys))
		ret = errmsg_set(err, -ENOMEM, "out of memory");
	if (!ret)
		ret = audit_open(cfg->audit_log, &t->audit, err);
	if (!ret && asprintf(&t->credfile, "%s/" CREDFILE_NAME, cfg->run_dir) < 0)
		ret = errmsg_set(err, -ENOMEM, "out of memory");
	if (!ret && id->oidc)
		ret = oidc_start(t, cfg, err);
	if (ret) {
		tunnel_free(t);
		return ret;
	}
	*out = t;
	return 0;
}

void tunnel_set_policy(struct tunnel *t, const struct config *cfg, const struct policy *pol,
		       const struct workload_set *wls, uint32_t generation)
{
	t->cfg = cfg;
	t->pol = pol;
	t->wls = wls;
	t->generation = generation;
}

static void creds_reload(struct tunnel *t)
{
	struct errmsg err = {};
	int ret;

	ret = pki_reload(&t->creds, &err);
	if (ret < 0) {
		pr_err("new node credentials refused, keeping the current ones: %s", err.msg);
		return;
	}
	if (!ret)
		return;
	if (contexts_make(t, t->creds, &err)) {
		pr_err("node credentials: %s", err.msg);
		return;
	}
	/* Sessions and tokens carry the old certificate's binding; peers'
	 * keys were trusted through the old CA. */
	sessions_drop(t);
	tokens_drop(t);
	jwks_cache_clear(t->node_keys);
	if (t->oidc)
		oidc_refresh_all(t->oidc);
	pr_info("node certificate reloaded: %s, valid until %ld", t->creds->spiffe_id,
		(long)t->creds->not_after);
}

/* Room for one credential's strings while the file is written. */
struct cred_buf {
	char name[OIDC_URL_MAX];
	char error[ERRMSG_LEN];
};

static void cred_add(struct cred_entry *e, struct cred_buf *b, int *n, enum cred_kind kind,
		     const char *name, const char *source, int64_t not_after, int64_t updated,
		     const char *state, const char *error)
{
	snprintf(b[*n].name, sizeof(b[*n].name), "%s", name);
	snprintf(b[*n].error, sizeof(b[*n].error), "%s", error ? error : "");
	e[*n] = (struct cred_entry){ .kind = kind, .name = b[*n].name, .source = source,
				     .state = state, .not_after = not_after, .updated = updated,
				     .error = b[*n].error };
	(*n)++;
}

static void token_cred(struct tunnel *t, const char *id, struct cred_entry *e, struct cred_buf *b,
		       int *n, int64_t now)
{
	struct oidc_token_info ti;
	struct token *tk = NULL;

	if (t->oidc) {
		if (oidc_token_info(t->oidc, id, &ti))
			return;
		cred_add(e, b, n, CRED_TOKEN, id, "oidc", ti.exp, 0,
			 ti.valid ? "valid" : ti.error[0] ? "failed" : ti.exp ? "expired" : "pending",
			 ti.error);
		return;
	}
	for (int j = 0; j < t->nr_tokens; j++) {
		if (!strcmp(t->tokens[j].workload, id))
			tk = &t->tokens[j];
	}
	cred_add(e, b, n, CRED_TOKEN, id, "embedded", tk ? tk->exp : 0, tk ? tk->iat : 0,
		 !tk || !tk->jwt ? "pending" : tk->exp > now ? "valid" : "expired", NULL);
}

/* Rewrites credentials.json when what it would say changed: states flip
 * at expiry, tokens renew. */
static void creds_publish(struct tunnel *t)
{
	int max = 3 + t->cfg->nr_workloads, n = 0;
	int64_t now = time(NULL);
	struct errmsg err = {};
	struct cred_entry *e;
	struct cred_buf *b;
	char ca_id[CONFIG_NAME_MAX + 16], *sig = NULL;
	struct audit_health ah;
	struct cred_audit aud;
	size_t sig_len = 0;
	time_t ca_na = 0;
	FILE *f;

	e = calloc(max, sizeof(*e));
	b = calloc(max, sizeof(*b));
	if (!e || !b)
		goto out;
	pki_asn1_time(X509_get0_notAfter(t->creds->ca), &ca_na);
	snprintf(ca_id, sizeof(ca_id), "spiffe://%s", t->creds->trust_domain);
	cred_add(e, b, &n, CRED_CA, ca_id, "file", ca_na, 0, ca_na > now ? "valid" : "expired",
		 NULL);
	cred_add(e, b, &n, CRED_NODE_CERT, t->creds->spiffe_id, "file", t->creds->not_after, 0,
		 t->creds->not_after > now ? "valid" : "expired", NULL);
	for (int i = 0; i < t->cfg->nr_workloads; i++)
		token_cred(t, t->cfg->workloads[i].id, e, b, &n, now);
	if (t->oidc) {
		struct oidc_info oi;

		oidc_get_info(t->oidc, &oi);
		cred_add(e, b, &n, CRED_JWKS,
			 oi.jwks_uri[0] ? oi.jwks_uri : t->cfg->identity.oidc_issuer, "oidc", 0, 0,
			 t->idp_jwks ? "valid" : oi.error[0] ? "failed" : "pending", oi.error);
	}
	audit_get_health(t->audit, &ah);
	aud = (struct cred_audit){ .log = t->cfg->audit_log, .lines_lost = ah.lost,
				   .error = ah.last_err ? strerror(-ah.last_err) : NULL };
	f = open_memstream(&sig, &sig_len);
	if (!f)
		goto out;
	for (int i = 0; i < n; i++)
		fprintf(f, "%d %s %s %s %lld %lld %s\n", e[i].kind, e[i].name, e[i].source,
			e[i].state, (long long)e[i].not_after, (long long)e[i].updated, e[i].error);
	fprintf(f, "audit %llu %d\n", (unsigned long long)ah.lost, ah.last_err);
	fclose(f);
	if (t->creds_sig && !strcmp(sig, t->creds_sig))
		goto out;
	if (credfile_write(t->credfile, t->cfg->node, e, n, &aud, 0, &err)) {
		pr_warn("credentials file: %s", err.msg);
		goto out;
	}
	free(t->creds_sig);
	t->creds_sig = sig;
	sig = NULL;
out:
	free(sig);
	free(e);
	free(b);
}

void tunnel_tick(struct tunnel *t)
{
	creds_reload(t);
	idp_jwks_update(t);
	creds_publish(t);
}

int tunnel_oidc_fd(const struct tunnel *t)
{
	return t->oidc ? oidc_fd(t->oidc) : -1;
}

void tunnel_oidc_event(void *ctx)
{
	struct tunnel *t = ctx;

	oidc_fd_clear(t->oidc);
	idp_jwks_update(t);
	creds_publish(t);
}

void tunnel_reopen_audit(struct tunnel *t)
{
	struct errmsg err = {};

	if (t->audit && audit_reopen(t->audit, &err))
		pr_err("audit: %s", err.msg);
}

void tunnel_free(struct tunnel *t)
{
	if (!t)
		return;
	oidc_free(t->oidc);
	tokens_drop(t);
	for (int i = 0; i < t->nr_tokens; i++)
		free(t->tokens[i].workload);
	free(t->tokens);
	sessions_drop(t);
	while (t->peers) {
		struct peer_state *ps = t->peers;

		t->peers = ps->next;
		free(ps->node);
		free(ps);
	}
	jwks_free(t->idp_jwks);
	jwks_cache_free(t->node_keys);
	SSL_CTX_free(t->client_ctx);
	SSL_CTX_free(t->server_ctx);
	pki_creds_free(t->creds);
	if (t->audit)
		audit_close(t->audit);
	free(t->creds_sig);
	free(t->credfile);
	free(t);
}
