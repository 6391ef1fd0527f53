/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Why the policy decides what it does for one source and destination, for
 * `sluicectl policy explain` and `policy test` (policy_cases.h). The
 * verdict and the deciding rule are always those of the deciders the
 * datapath and the agents use, policy_decide() and policy_decide_http();
 * the steps are an account of the precedence (policy.h, l7.h) built beside
 * them: which rules were candidates and which step set each one aside.
 *
 * The account models a workload's connection through the mesh: connect()
 * decides the connection; a request on it is decided per request only
 * when the connection goes through the agent (an allow rule to a mesh
 * service), never when it goes direct (mesh: false, or a default allow).
 * It is not the edge's account (no via: edge, no Host).
 */
#ifndef SLUICE_POLICY_EXPLAIN_H
#define SLUICE_POLICY_EXPLAIN_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "config.h"
#include "errmsg.h"
#include "l7.h"
#include "policy.h"

/* A source as --from names it: src.id points into the rest of it and into
 * the policy and config it was parsed against, which must outlive it. */
struct policy_source {
	struct policy_identity id;
	char spiffe_id[SPIFFE_ID_MAX];
	char *roles[1];			/* role:NAME; a config workload's are its own */
};

/*
 * Parses a --from argument: a SPIFFE ID (its kind from its path; its roles
 * those of cfg's workload of that ID when cfg is non-NULL and has one),
 * "role:NAME" or a bare NAME that is a role of pol, or "kind:KIND" (a
 * caller with that kind and no SPIFFE ID). -EINVAL with the reason in err.
 */
int policy_source_parse(const char *arg, const struct policy *pol, const struct config *cfg,
			struct policy_source *src, struct errmsg *err);

/* A destination as --to names it. */
struct policy_dest {
	int family;
	uint32_t addr[4];		/* network order, v4 in addr[0] */
	uint16_t port;			/* host order */
	uint8_t proto;			/* IPPROTO_TCP / IPPROTO_UDP */
	int service;			/* the service it is (policy_service_at()), or -1 */
	int named;			/* the service `to` named, or -1 for an address */
};

/*
 * Parses `to`: a service name of pol, or ADDR:PORT (a.b.c.d:p or [v6]:p)
 * with an optional /tcp (the default) or /udp. A service stands for its
 * first address that is that service (policy_service_at()), and its first
 * port or, for any port, the lowest port no service of its protocol
 * names. With http set it must be a protocol: http service. -EINVAL with
 * the reason in err.
 */
int policy_dest_parse(const struct policy *pol, const char *to, bool http,
		      struct policy_dest *dest, struct errmsg *err);

/* Checks an HTTP request's method (a token, as sent: methods are
 * case-sensitive) and normalises its path into norm (l7_path_normalize()).
 * -EINVAL with the reason in err. */
int policy_request_parse(const char *method, const char *path, char norm[L7_PATH_MAX],
			 struct errmsg *err);

/*
 * Explains the decision for src connecting to `to` (policy_dest_parse())
 * and, when method and path are non-NULL (both or neither), for that
 * request on the connection. Fills *out with a new document:
 *
 *   {"policy": FILE, "from": ..., "to": ..., "destination": "ADDR:PORT/PROTO",
 *    "service": NAME|null, "method": ...|null, "path": ...|null,
 *    "verdict": "allow"|"deny", "would_deny": BOOL, "rule": NAME|"#N"|"default",
 *    "line": N|null, "steps": [{"step": ..., "detail": ...}, ...]}
 *
 * verdict is what is enforced: an audit-mode deny (policy.h) that decides
 * is an allow with would_deny true. path is the normalised one.
 * -EINVAL with err for an unknown service, a malformed address, method or
 * path; -ENOMEM.
 */
int policy_explain(const struct policy *pol, const struct policy_identity *src, const char *to,
		   const char *method, const char *path, json_t **out, struct errmsg *err);

/* The verdict line, the rule (name, FILE:LINE), then the numbered steps. */
void policy_explain_print(const json_t *doc, FILE *f);

/* What the documents call rule `rule` of pol (-1: the default): its name,
 * else "#N", 1-based as `policy show` numbers rules. */
const char *policy_explain_rule(const struct policy *pol, int rule, char *buf, size_t len);

#endif
