/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's local HTTP listener (listen.http, docs/http.md), for the
 * services on this host that prefer a URL to a file:
 *
 *   GET /metrics        Prometheus text exposition 0.0.4 (metrics.h)
 *   GET /v1/ca.pem      the mesh CA certificate, PEM (503 without identity)
 *   GET /v1/jwks.json   the node certificate's key (assertion_jwks()),
 *                       what caller assertions are verified with (503
 *                       without identity)
 *
 * Anything else is 404 with a body that lists these, a method other than
 * GET or HEAD 405. The edge's /v1/authz is never served here: it stays on
 * edge.socket and edge.listen. Served with httpd.h in the agent's loop;
 * the BPF maps' part of /metrics is rendered in a thread per scrape (at
 * most 4 at once, 503 past that), so the loop never waits for it.
 */
#ifndef SLUICE_LOCAL_HTTP_H
#define SLUICE_LOCAL_HTTP_H

#include "config.h"
#include "errmsg.h"
#include "metrics.h"
#include "pki.h"

struct local_http;

struct local_http_deps {
	/* The node's current credentials (they rotate: asked per request);
	 * NULL when there are none. */
	const struct pki_creds *(*creds)(void *ctx);
	void *ctx;
	/* What /metrics renders; metrics.dp NULL: 404. */
	struct metrics_deps metrics;
};

/*
 * Listens on cfg->http (the caller checked cfg->has_http). A bind failure
 * names the address and what to do; -errno.
 */
int local_http_new(const struct config *cfg, const struct local_http_deps *deps,
		   struct local_http **out, struct errmsg *err);

/* The fd to watch for readability (in sluiced, proxy_watch()): call
 * local_http_run(l) when it is readable. */
int local_http_fd(const struct local_http *l);
void local_http_run(void *l);
/* Once a second: connection timeouts. */
void local_http_tick(struct local_http *l);
/* The bound port, host order (listen.http may say port 0 in tests). */
unsigned int local_http_port(const struct local_http *l);
/* NULL: no-op. Call it after the loop stopped watching local_http_fd(). */
void local_http_free(struct local_http *l);

#endif
