/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the tunnel's files share and nothing outside them sees: the tunnel
 * and its flows, and the calls between the decisions (tunnel.c), the
 * workloads' tokens (tunnel_token.c) and the node's credentials
 * (tunnel_creds.c).
 */
#ifndef SLUICE_TUNNEL_INT_H
#define SLUICE_TUNNEL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "audit.h"
#include "frame.h"
#include "http_authz.h"
#include "jwks.h"
#include "oidc.h"
#include "pki.h"
#include "tunnel.h"

#define MAX_TOKEN 8192

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
	struct audit *audit;
	struct http_authz *http;	/* decides requests to protocol: http services */
	/* identity.oidc.bind_cert as the OIDC client started with it: a
	 * reload changes neither side (identity changes need a restart). */
	bool bind_cert;
	char *credfile;
	char *creds_sig;		/* what credentials.json says now */
	bool creds_failing;		/* its last write failed, and said so */
	/* What it says, for /metrics: entries and their strings. */
	struct cred_entry *creds_view;
	void *creds_view_buf;
	int nr_creds_view;
	struct tunnel_stats stats;
	struct tunnel_hs_peer *hs;	/* never shrinks: peers ever seen */
	int nr_hs, cap_hs;
};

/* A tunnel flow, as the audit line describes it. */
struct tflow {
	struct tunnel *t;
	bool inbound;
	bool allow;
	bool would_deny;		/* allowed: an audit-mode deny decided */
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
	char trace_id[TRACE_ID_HEX + 1];	/* "": no span */
	char span_id[SPAN_ID_HEX + 1];
	char parent_span_id[SPAN_ID_HEX + 1];
	uint64_t generation;
	enum audit_resumed resumed;
	bool http;			/* the service is protocol: http */
};

/* The SSL ex_data slot that points an outbound SSL at its peer_state. */
extern int ssl_peer_idx;

/* tunnel.c: decisions and their audit lines. */
void set_reason(struct tflow *f, const char *reason);

/* tunnel_token.c: minting, caching and verifying the workloads' tokens. */
void tokens_drop(struct tunnel *t);
const char *token_for(struct tunnel *t, const struct policy_identity *id,
		      struct tflow *f, char *buf, size_t len);
void idp_jwks_update(struct tunnel *t);
const char *check_token(struct tunnel *t, const struct frame_open *open, X509 *peer_cert,
			struct pki_peer *peer, struct tflow *f, json_t **claims);
int token_roles(const struct tunnel *t, json_t *claims, const char **roles, int max);

/* tunnel_hs.c: handshakes by peer (proxy_ops.handshake_done). */
void t_handshake_done(void *ctx, void *flow_ctx, SSL *ssl, const struct sockaddr_storage *peer,
		      bool inbound, enum proxy_hs_result result, uint64_t duration_ns);

/* tunnel_creds.c: the node's credentials, TLS sessions, credentials.json. */
struct peer_state *peer_state(struct tunnel *t, const char *node);
void sessions_drop(struct tunnel *t);
void resume_from(SSL *ssl, SSL_SESSION *sess);
bool session_usable(SSL_SESSION *sess, time_t now);
int contexts_make(struct tunnel *t, struct pki_creds *c, struct errmsg *err);
void creds_reload(struct tunnel *t);
void creds_publish(struct tunnel *t);

#endif
