/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The edge: the authorization endpoint nginx's auth_request asks
 * (docs/edge.md). edge.c serves HTTP/1.1 with libmicrohttpd inside the
 * agent's epoll loop, on the UNIX socket edge.socket and optionally on
 * edge.listen:
 *
 *   GET /v1/authz      the decision (edge_decide() below)
 *   GET /v1/ca.pem     the mesh CA certificate, PEM
 *   GET /v1/jwks.json  the node certificate's key (assertion_jwks())
 *
 * Anything else is 404, a method other than GET or HEAD 405. Every agent
 * with identity also serves the last two on listen.http (local_http.h).
 *
 * edge_decide() is the decision alone, without HTTP: the bearer token
 * verified as the tunnel verifies the IdP's (or introspected when opaque),
 * positive results cached by the token's SHA-256, roles mapped with the
 * policy, the request decided with policy_decide_http(), one audit line,
 * and on allow a caller assertion signed with the node key.
 */
#ifndef SLUICE_EDGE_H
#define SLUICE_EDGE_H

#include <stdbool.h>
#include <stdint.h>
#include <openssl/evp.h>

#include "config.h"
#include "errmsg.h"
#include "pki.h"
#include "policy.h"

struct edge;
struct audit;
struct oidc;

/* What the edge takes from the rest of the agent (the tunnel's, in
 * sluiced); pointers stay valid until edge_free(). */
struct edge_deps {
	/* The IdP's verification key for kid, as jwt_verify_opts.get_key;
	 * may schedule a JWKS refetch for an unknown kid. */
	int (*idp_key)(void *ctx, const char *kid, EVP_PKEY **pkey);
	/* The node's current credentials (they rotate: asked per request);
	 * NULL when there are none. */
	const struct pki_creds *(*creds)(void *ctx);
	void *ctx;
	struct oidc *oidc;		/* introspection; NULL: opaque tokens refused */
	struct audit *audit;		/* NULL: no audit lines */
};

/* The subrequest's inputs: the headers nginx sets, NULL when absent. */
struct edge_req {
	const char *authorization;
	const char *method;		/* X-Original-Method */
	const char *uri;		/* X-Original-URI, raw $request_uri */
	const char *host;		/* X-Original-Host */
	const char *remote_addr;	/* X-Original-Remote-Addr */
	const char *service;		/* X-Sluice-Service */
	const char *generation;		/* X-Sluice-Generation */
	const char *traceparent;	/* the client's, optional: the edge span's parent */
};

#define EDGE_PENDING 0			/* edge_answer.status: introspection in flight */
#define EDGE_SUB_MAX 512		/* a longer sub is refused */
#define EDGE_ROLES_MAX 32		/* roles carried per caller */
#define EDGE_REASON_MAX 256

struct edge_answer {
	/* 200, 400, 401, 403, or EDGE_PENDING: ask again once the OIDC
	 * client's eventfd fired. */
	int status;
	/* 401/403/400: "<code>: <words>", for X-Sluice-Reason and the body;
	 * 200: "ok". Never holds token material. */
	char reason[EDGE_REASON_MAX];
	/* 401 only: the WWW-Authenticate value (RFC 6750 3). */
	char www_authenticate[EDGE_REASON_MAX + 96];
	/* 200 only. */
	char *assertion;		/* malloc'd */
	char caller[EDGE_SUB_MAX];
	char roles[EDGE_ROLES_MAX * 64];	/* comma separated */
	char rule[80];			/* the deciding rule's name, "line-N", "default" */
	bool cached;			/* the token's verification came from the cache */
};

void edge_answer_release(struct edge_answer *ans);

/* Counters for tests and the log. */
struct edge_stats {
	uint64_t verified;		/* signature checks (jwt_verify) */
	uint64_t introspected;		/* active answers from the IdP */
	uint64_t cache_hits;
	uint64_t signed_assertions;	/* assertion_mint() calls */
	uint64_t cache_entries;
	uint64_t decisions;
};

/*
 * The decision state alone (no sockets), for edge_decide(): cfg and deps
 * are kept (not copied). -ENOMEM.
 */
int edge_core_new(const struct config *cfg, const struct edge_deps *deps, struct edge **out,
		  struct errmsg *err);

/* Frees what edge_core_new() made. */
void edge_core_free(struct edge *e);

/*
 * edge_core_new() and the HTTP daemons: the UNIX socket (a stale one
 * unlinked; its directory must not be writable by others; mode 0660,
 * group edge.socket_gid when root) and edge.listen. Errors name the socket
 * and what to do; -errno.
 */
int edge_new(const struct config *cfg, const struct edge_deps *deps, struct edge **out,
	     struct errmsg *err);

/* The daemons' epoll fds (at most max): watch each for readability (in
 * sluiced, proxy_watch()) and call edge_run(e) when one is readable. They
 * stay open until edge_free(). */
int edge_fds(const struct edge *e, int *fds, int max);
void edge_run(void *e);

/* The live policy and its generation; drops the token cache, whose roles
 * came from the previous policy. pol stays valid until the next call. */
void edge_set_policy(struct edge *e, const struct policy *pol, uint32_t generation);

void edge_decide(struct edge *e, const struct edge_req *req, struct edge_answer *ans);

/* Once a second: connection timeouts. */
void edge_tick(struct edge *e);

/* The OIDC client's eventfd fired (after the tunnel consumed it):
 * requests waiting for introspection are asked again. */
void edge_oidc_event(struct edge *e);

void edge_get_stats(const struct edge *e, struct edge_stats *out);

/* Stops the daemons, removes the socket, frees everything. NULL: no-op.
 * Call it after the loop that watched edge_fds() stopped watching. */
void edge_free(struct edge *e);

#endif
