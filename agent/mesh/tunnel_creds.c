// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The node's credentials: its TLS contexts and the sessions cached per
 * peer, their reload when the files change, and the view of every
 * credential published in credentials.json.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "credfile.h"
#include "log.h"
#include "tunnel_int.h"

/* A cached session is not offered when the certificate it holds for the
 * peer expires this soon: the peer would refuse the resumption anyway. */
#define SESSION_MARGIN_S 5

int ssl_peer_idx = -1;

struct peer_state *peer_state(struct tunnel *t, const char *node)
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

void sessions_drop(struct tunnel *t)
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

void resume_from(SSL *ssl, SSL_SESSION *sess)
{
	SSL_SESSION *copy = SSL_SESSION_dup(sess);

	if (copy) {
		SSL_set_session(ssl, copy);
		SSL_SESSION_free(copy);
	}
}

bool session_usable(SSL_SESSION *sess, time_t now)
{
	X509 *peer = SSL_SESSION_get0_peer(sess);
	time_t na;

	if (!peer || pki_asn1_time(X509_get0_notAfter(peer), &na))
		return false;
	return na > now + SESSION_MARGIN_S &&
	       SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess) > now;
}

int contexts_make(struct tunnel *t, struct pki_creds *c, struct errmsg *err)
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

void creds_reload(struct tunnel *t)
{
	struct errmsg err = {};
	int ret;

	ret = pki_reload(&t->creds, &err);
	if (ret < 0) {
		pr_err("new node credentials refused, keeping the current ones: %s", err.msg);
		t->stats.renewal_failures[CRED_NODE_CERT]++;
		return;
	}
	if (!ret)
		return;
	if (contexts_make(t, t->creds, &err)) {
		pr_err("node credentials: %s", err.msg);
		t->stats.renewal_failures[CRED_NODE_CERT]++;
		return;
	}
	t->stats.rotations[CRED_NODE_CERT]++;
	/* Sessions and tokens carry the old certificate's binding; the new
	 * creds start with no peer accepted (nor its keys). */
	sessions_drop(t);
	tokens_drop(t);
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
void creds_publish(struct tunnel *t)
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
	/* Retried every tick until it works: said once, not every second. */
	if (credfile_write(t->credfile, t->cfg->node, e, n, &aud, 0, &err)) {
		if (!t->creds_failing)
			pr_warn("credentials file: %s (retrying every second, said once)", err.msg);
		t->creds_failing = true;
		goto out;
	}
	if (t->creds_failing)
		pr_info("credentials file: %s written again", t->credfile);
	t->creds_failing = false;
	free(t->creds_sig);
	t->creds_sig = sig;
	sig = NULL;
out:
	free(sig);
	if (n) {
		/* What the file says (or would), for /metrics. */
		free(t->creds_view);
		free(t->creds_view_buf);
		t->creds_view = e;
		t->creds_view_buf = b;
		t->nr_creds_view = n;
		return;
	}
	free(e);
	free(b);
}
