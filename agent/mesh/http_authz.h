/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The requests on a flow to a protocol: http service, decided by the agent
 * in front of the service (the tunnel's receiving end, or the only agent
 * of a flow that crosses none): each head the gate (http_gate.h) parses is
 * decided with the policy's L7 rules for the flow's source, or for the
 * caller an edge assertion names when the source is an edge workload
 * (http.edge_workloads) and the assertion verifies: signed by the source
 * node's key under the mesh CA, for this service, in its lifetime. An
 * assertion that fails is a 401; a denied request a 403.
 *
 * Every request ends in one "request" record: an audit line when it was
 * refused, let through as a would-deny (an audit-mode deny), carried an
 * assertion, or audit.http_allows is on, and a span
 * either way (continuing the request's traceparent, or the flow's span
 * when it has none, with the header added so the service's spans join);
 * and in the counters /metrics shows.
 */
#ifndef SLUICE_HTTP_AUTHZ_H
#define SLUICE_HTTP_AUTHZ_H

#include <stdbool.h>
#include <stdint.h>
#include <openssl/x509_vfy.h>
#include <sluice/abi.h>

#include "audit.h"
#include "config.h"
#include "http_gate.h"
#include "policy.h"
#include "rulecount.h"

/* Who sent a flow; the strings are copied. */
struct http_source {
	const char *node;		/* the node it came from (this one: local) */
	const char *workload;		/* its SPIFFE ID */
	enum workload_kind kind;
	const char *const *roles;
	int nr_roles;
	const char *peer;		/* the peer agent's address; NULL: local */
	const char *dst;		/* "10.99.0.2:80" */
	const char *service;
	const char *trace_id;		/* the flow's span; NULL: none */
	const char *span_id;
};

/* Method classes and status classes of the request counters. */
enum http_method_class {
	HTTP_M_GET,			/* GET, HEAD, OPTIONS: reads */
	HTTP_M_WRITE,			/* POST, PUT, PATCH, DELETE */
	HTTP_M_OTHER,
	HTTP_M_NR,
};
/* 1xx..5xx; 0: no response came (the flow ended first). */
#define HTTP_STATUS_CLASSES 6

/* One series of sluice_http_requests_total and its duration histogram. */
struct http_series {
	char workload[SLUICE_NAME_LEN];	/* the source (or the edge's caller), cut */
	char service[64];
	enum http_method_class method;
	int status_class;		/* 0..5 */
	uint64_t count;
	__u64 duration_us_log2[SLUICE_LAT_BUCKETS];	/* bucket i: [2^i, 2^(i+1)) us */
	uint64_t duration_sum_us;
};

/* sluice_http_denied_total by (service, rule, reason). */
struct http_denial {
	char service[64];
	char rule[HTTP_GATE_RULE_MAX];
	char reason[48];
	uint64_t count;
};

#define HTTP_AUTHZ_MAX_SERIES 4096

struct http_authz_stats {
	uint64_t requests;		/* decided */
	uint64_t refused;		/* connections refused whole (not HTTP, smuggling) */
	uint64_t series_dropped;	/* updates past HTTP_AUTHZ_MAX_SERIES */
	const struct http_series *series;
	int nr_series;
	const struct http_denial *denials;
	int nr_denials;
	struct rule_counts would_deny;	/* requests let through as would-deny, by rule */
};

struct http_authz;

/* audit may be NULL (nothing written). ca_store(ctx) is the mesh CA to
 * verify assertions with, or NULL (then every assertion is a 401). */
int http_authz_new(struct audit *audit, X509_STORE *(*ca_store)(void *ctx), void *ctx,
		   struct http_authz **out);
/* The policy and config requests are decided with from now on (also for
 * flows already open); both must outlive the next call. */
void http_authz_set_policy(struct http_authz *a, const struct config *cfg,
			   const struct policy *pol, uint32_t generation);
/* A gate for one flow from src to a protocol: http service; NULL on
 * ENOMEM. */
struct http_gate *http_authz_gate(struct http_authz *a, const struct http_source *src);
/* For the sending end of a tunnel flow to a protocol: http service: a gate
 * that decides and changes nothing (the receiving agent does) but gives each
 * request a "request-out" span, the client side of the receiving agent's:
 * in the request's trace, or in the flow's, which the receiving agent's
 * spans share. Bytes it cannot frame are refused here already, as they
 * would be there. */
struct http_gate *http_authz_observer(struct http_authz *a, const struct http_source *src);
/* Valid until the next request is decided. */
void http_authz_get_stats(const struct http_authz *a, struct http_authz_stats *out);
void http_authz_free(struct http_authz *a);

#endif
