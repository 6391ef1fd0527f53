// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The tunnel's decisions: where an outbound flow goes and what its OPEN
 * says, whether an inbound OPEN is allowed, the verdicts, and the audit
 * line each decision leaves; and the tunnel's lifetime.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <openssl/crypto.h>

#include "credfile.h"
#include "log.h"
#include "tunnel_int.h"

/* e: how the flow ended; NULL for a decision that ends it before it began. */
static void audit_emit(struct tunnel *t, const struct tflow *f, const struct flow_end *e)
{
	static const struct flow_end none;
	bool closed = e;
	struct timespec ts;
	struct audit_rec r = {
		.direction = f->inbound ? "inbound" : "outbound",
		.src_node = f->src_node[0] ? f->src_node : NULL,
		.src_workload = f->src_workload[0] ? f->src_workload : NULL,
		.peer = f->peer_addr[0] ? f->peer_addr : NULL,
		.dst = f->dst,
		.service = f->service[0] ? f->service : NULL,
		.verdict = !f->allow ? "deny" : f->would_deny ? "would-deny" : "allow",
		.reason = f->reason[0] ? f->reason : "ok",
		.detail = f->detail[0] ? f->detail : NULL,
		.rule = f->rule[0] ? f->rule : NULL,
		.generation = f->generation,
		.jti = f->jti[0] ? f->jti : NULL,
		.kid = f->kid[0] ? f->kid : NULL,
		.trace_id = f->trace_id[0] ? f->trace_id : NULL,
		.span_id = f->trace_id[0] ? f->span_id : NULL,
		.parent_span_id = f->parent_span_id[0] ? f->parent_span_id : NULL,
		.resumed = f->resumed,
		.closed = closed,
	};

	e = e ?: &none;
	r.bytes_up = e->bytes_up;
	r.bytes_down = e->bytes_down;
	r.duration_ns = e->duration_ns;
	r.connect_us = e->connect_us;
	r.srtt_us = e->srtt_us;
	r.status = f->failed[0] ? f->failed : !e->status ? "ok" : strerrorname_np(-e->status);

	clock_gettime(CLOCK_REALTIME, &ts);
	r.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	audit_write(t->audit, &r);
	t->stats.decisions[f->inbound][f->allow][f->resumed]++;
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

void set_reason(struct tflow *f, const char *reason)
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
		audit_emit(f->t, f, NULL);
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

/* The sending side's spans of the flow's requests, in the flow's trace. */
static struct http_gate *request_observer(struct tunnel *t, const struct tflow *f,
					  const struct policy_identity *id)
{
	struct http_source src = {
		.node = f->src_node,
		.workload = f->src_workload,
		.kind = id->kind,
		.dst = f->dst,
		.service = f->service,
		.trace_id = f->trace_id,
		.span_id = f->span_id,
	};

	return http_authz_observer(t->http, &src);
}

static int t_route(void *ctx, const struct sluice_orig_dst *dst, struct proxy_route *out)
{
	struct tunnel *t = ctx;
	const struct policy_identity *id;
	const struct peer_cfg *peer;
	struct frame_open open = {};
	struct sockaddr_storage ss;
	char buf[MAX_TOKEN];
	struct tracectx tc;
	struct decision d;
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
	/* The service, as node A's policy knows it, for the audit line and
	 * span; node B decides. */
	policy_decide(t->pol, id, dst->family, dst->addr, ntohs(dst->port), IPPROTO_TCP, &d);
	if (d.service >= 0)
		snprintf(f->service, sizeof(f->service), "%s", t->pol->services[d.service].name);
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
	ret = tracectx_new(&tc);
	if (!ret) {
		/* The OPEN's traceparent names this span as the inbound one's
		 * parent. */
		traceparent_format(&tc, open.traceparent);
		memcpy(f->trace_id, tc.trace_id, sizeof(f->trace_id));
		memcpy(f->span_id, tc.span_id, sizeof(f->span_id));
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
	/* Framing requests here only makes spans: not when none would go
	 * anywhere (no otlp:, no audit.http_allows). */
	if (d.service >= 0 && t->pol->services[d.service].http &&
	    (t->cfg->otlp.endpoint || t->cfg->audit_http_allows) &&
	    !(out->gate = request_observer(t, f, id))) {
		SSL_free(ssl);
		OPENSSL_cleanse(out->open, out->open_len);
		free(out->open);
		out->open = NULL;
		deny(f, "internal-error");
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
	char want[PKI_ID_MAX];
	struct errmsg err = {};
	struct pki_peer *got;

	f->resumed = tls_resumed(ssl);
	snprintf(want, sizeof(want), "spiffe://%s/node/%s", t->cfg->trust_domain, f->peer->node);
	if (pki_verify_peer(t->creds, SSL_get0_peer_certificate(ssl), SSL_get_peer_cert_chain(ssl),
			    &got, &err)) {
		pr_warn("tunnel to %s: %s", f->peer->node, err.msg);
		deny(f, "peer-cert-rejected");
		return -EKEYREJECTED;
	}
	if (strcmp(want, got->spiffe_id)) {
		pr_warn("tunnel to %s: the peer is %s", f->peer->node, got->spiffe_id);
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
		/* What the receiving agent's line says, this side's says. */
		f->would_deny = !strcmp(v->reason, policy_reason_name(SLUICE_REASON_WOULD_DENY));
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

/* The inbound span continues the outbound agent's: its trace, with the
 * OPEN's span as parent. An OPEN without one (an older peer) starts a
 * trace. */
static void trace_inbound(struct tflow *f, const char *traceparent)
{
	struct tracectx tc;

	if (traceparent[0] && traceparent_parse(traceparent, &tc)) {
		memcpy(f->trace_id, tc.trace_id, sizeof(f->trace_id));
		memcpy(f->parent_span_id, tc.span_id, sizeof(f->parent_span_id));
		if (!tracectx_span_new(f->span_id))
			return;
	} else if (!tracectx_new(&tc)) {
		memcpy(f->trace_id, tc.trace_id, sizeof(f->trace_id));
		memcpy(f->span_id, tc.span_id, sizeof(f->span_id));
		return;
	}
	f->trace_id[0] = '\0';
}

/* The flow's requests go through a gate, decided for its source as the
 * token said (the roles point into its claims, so the gate copies them). */
static struct http_gate *request_gate(struct tunnel *t, const struct tflow *f,
				      const struct spiffe_id *sid, const char **roles, int nr_roles)
{
	struct http_source src = {
		.node = f->src_node,
		.workload = f->src_workload,
		.kind = sid->kind,
		.roles = roles,
		.nr_roles = nr_roles,
		.peer = f->peer_addr,
		.dst = f->dst,
		.service = f->service,
		.trace_id = f->trace_id[0] ? f->trace_id : NULL,
		.span_id = f->span_id,
	};

	return http_authz_gate(t->http, &src);
}

/* An audit-mode deny decided d: counted by rule, and said in the flow's
 * line and VERDICT, which still allows. */
static void would_deny(struct tunnel *t, struct tflow *f, const struct decision *d)
{
	const struct policy_rule *r = d->rule >= 0 ? &t->pol->rules[d->rule] : NULL;
	char label[RULE_COUNTS_LABEL_LEN];

	policy_rule_label(r ? r->name : NULL, d->rule + 1, label, sizeof(label));
	rule_counts_add(&t->stats.would_deny, "tunnel", label);
	f->would_deny = true;
	set_reason(f, policy_reason_name(d->reason));
}

static void decide_open(struct tunnel *t, SSL *ssl, const uint8_t *payload, size_t len,
			struct tflow *f, struct proxy_authz *out)
{
	const char *roles[CONFIG_MAX_ROLES * 4];
	const char *why, *detail = NULL;
	struct frame_open open = {};
	struct errmsg err = {};
	struct spiffe_id sid;
	struct decision d;
	int nr_roles;
	json_t *claims = NULL;
	X509 *cert = SSL_get0_peer_certificate(ssl);
	struct pki_peer *peer;
	const uint32_t *addr;
	uint16_t port;

	if (pki_verify_peer(t->creds, cert, SSL_get_peer_cert_chain(ssl), &peer, &err)) {
		pr_warn("tunnel refused: %s", err.msg);
		set_reason(f, "peer-cert-rejected");
		return;
	}
	snprintf(f->src_node, sizeof(f->src_node), "%s", strrchr(peer->spiffe_id, '/') + 1);
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
	trace_inbound(f, open.traceparent);
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
	why = check_token(t, &open, cert, peer, f, &claims);
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
	if (d.service >= 0) {
		snprintf(f->service, sizeof(f->service), "%s", t->pol->services[d.service].name);
		f->http = t->pol->services[d.service].http;
	}
	if (d.rule >= 0 && t->pol->rules[d.rule].name)
		snprintf(f->rule, sizeof(f->rule), "%s", t->pol->rules[d.rule].name);
	if (!d.allow) {
		set_reason(f, policy_reason_name(d.reason));
		goto out;
	}
	if (f->http && !(out->gate = request_gate(t, f, &sid, roles, nr_roles))) {
		set_reason(f, "internal-error");
		goto out;
	}
	f->allow = true;
	set_reason(f, "ok");
	if (d.would_deny)
		would_deny(t, f, &d);
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
	X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	struct pki_peer *known;

	format_sockaddr(peer, f.peer_addr, sizeof(f.peer_addr));
	f.resumed = tls_resumed(ssl);
	snprintf(f.detail, sizeof(f.detail), "%s", detail);
	/* Named only when the certificate is one of ours. */
	if (cert && !pki_verify_peer(t->creds, cert, SSL_get_peer_cert_chain(ssl), &known, NULL))
		snprintf(f.src_node, sizeof(f.src_node), "%s", strrchr(known->spiffe_id, '/') + 1);
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
	ops->handshake_done = t_handshake_done;
}

void tunnel_flow_closed(struct tunnel *t, void *flow_ctx, const struct flow_end *e)
{
	struct tflow *f = flow_ctx;

	if (!f)
		return;
	/* A deny was written when decided; the rest are written now. */
	if (!f->decided) {
		if (!f->allow && !f->reason[0])
			set_reason(f, "tunnel-broken");
		audit_emit(t, f, e);
	}
	free(f);
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

/* The credentials file lives in run_dir, which the audit log's default
 * path used to create: with audit_log elsewhere it was never made, and the
 * file could not be published. 0755: anyone may read that file. */
static int run_dir_make(const struct config *cfg, struct errmsg *err)
{
	if (mkdir(cfg->run_dir, 0755) && errno != EEXIST)
		return errmsg_set(err, -errno,
				  "run_dir %s: cannot create it: %s (set run_dir in the config)",
				  cfg->run_dir, strerror(errno));
	return 0;
}

int tunnel_new(const struct config *cfg, struct audit *audit, struct http_authz *http,
	       struct tunnel **out, struct errmsg *err)
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
	t->audit = audit;
	t->http = http;
	ret = pki_load(&paths, cfg->trust_domain, cfg->node, &t->creds, err);
	if (!ret)
		ret = contexts_make(t, t->creds, err);
	if (!ret)
		ret = run_dir_make(cfg, err);
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

const struct pki_creds *tunnel_creds(void *ctx)
{
	struct tunnel *t = ctx;

	return t->creds;
}

struct oidc *tunnel_oidc(const struct tunnel *t)
{
	return t->oidc;
}

void tunnel_get_stats(const struct tunnel *t, struct tunnel_stats *out)
{
	struct oidc_token_info ti;

	*out = t->stats;
	/* The IdP's tokens are renewed in its thread: each fetch after a
	 * workload's first is a rotation. */
	for (int i = 0; t->oidc && i < t->cfg->nr_workloads; i++) {
		if (oidc_token_info(t->oidc, t->cfg->workloads[i].id, &ti))
			continue;
		out->rotations[CRED_TOKEN] += ti.fetched ? ti.fetched - 1 : 0;
		out->renewal_failures[CRED_TOKEN] += ti.failed;
	}
	out->creds = t->creds_view;
	out->nr_creds = t->nr_creds_view;
	out->hs = t->hs;
	out->nr_hs = t->nr_hs;
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
	SSL_CTX_free(t->client_ctx);
	SSL_CTX_free(t->server_ctx);
	pki_creds_free(t->creds);
	free(t->creds_sig);
	free(t->creds_view);
	free(t->creds_view_buf);
	free(t->hs);
	free(t->credfile);
	rule_counts_free(&t->stats.would_deny);
	free(t);
}
