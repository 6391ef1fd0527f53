/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * L7 conditions of policy rules, decided for HTTP requests at the edge
 * (and, later, by the agent in front of a protocol: http service).
 *
 * The pattern syntax, the normalisation a request path goes through before
 * it is matched and the precedence between rules are documented at
 * l7_path_normalize() and policy_decide_http() below and in the README's
 * "Edge" section; keep the three in step.
 */
#ifndef SLUICE_L7_H
#define SLUICE_L7_H

#include <stdbool.h>
#include <stddef.h>

#include "errmsg.h"
#include "policy.h"

#define L7_PATH_MAX 4096		/* normalised path, with its NUL */
#define L7_HOST_MAX 256
#define L7_METHOD_MAX 32

/*
 * Normalises the path of a request-target (origin form, "/..."; the query
 * is dropped) into out: percent-decoding, dot segments, repeated slashes.
 * Returns 0, -EINVAL for a target that cannot be decided safely (with the
 * reason in err: not origin form, bad or forbidden escape, NUL, ...), or
 * -ENAMETOOLONG when out is too small.
 */
int l7_path_normalize(const char *target, size_t len, char *out, size_t outlen,
		      struct errmsg *err);

/* Whether a rule's path pattern (as policy_load() stored it) matches a
 * normalised path. */
bool l7_path_match(const char *pattern, const char *path);

/* Whether a hosts pattern (lower case, "*.example" for subdomains) matches
 * host (lower case, no port). */
bool l7_host_match(const char *pattern, const char *host);

/* Lower-cases host and strips a ":port" (and IPv6 brackets' port) into
 * out. -EINVAL for an empty or malformed host, -ENAMETOOLONG. */
int l7_host_normalize(const char *host, char *out, size_t outlen);

struct http_req {
	const char *method;		/* as sent, e.g. "GET" */
	const char *path;		/* l7_path_normalize()d */
	const char *host;		/* l7_host_normalize()d */
	bool via_edge;			/* came in through the edge (via: edge rules) */
};

/*
 * Decides an HTTP request from caller to pol->services[service] with the
 * rules' L7 conditions: like policy_decide() but a rule applies only when
 * its methods, paths and hosts (each when present) match req. Precedence is
 * documented at the definition. out->rule is the deciding rule or -1 for
 * the default. No allocation.
 */
void policy_decide_http(const struct policy *pol, const struct policy_identity *caller,
			int service, const struct http_req *req, struct decision *out);

/* The edge route (index into pol->edge.routes) whose prefix is the longest
 * that holds path, or -1. */
int policy_edge_route(const struct policy *pol, const char *path);

#endif
