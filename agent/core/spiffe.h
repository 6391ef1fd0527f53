/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Names and SPIFFE IDs: what a node, role or service name may hold, and
 * spiffe://<trust_domain>/<kind>/<name>. Shared by the config, the policy,
 * the certificates and the tunnel, so none of them includes the others.
 */
#ifndef SLUICE_SPIFFE_H
#define SLUICE_SPIFFE_H

#include <stdbool.h>
#include <stddef.h>

/* A SPIFFE ID's length with its NUL. */
#define SPIFFE_ID_MAX 128

enum workload_kind {
	WL_KIND_JOB = 1,
	WL_KIND_NOTEBOOK,
	WL_KIND_CLUSTER,
	WL_KIND_SERVICE,
};

/* "job" -> WL_KIND_JOB ...; 0 when unknown. */
enum workload_kind workload_kind_parse(const char *s);
const char *workload_kind_name(enum workload_kind kind);

/* s is 1-63 characters of a-z, 0-9 and those in extra (node, role and
 * service names). */
bool name_valid(const char *s, const char *extra);

/* What node names may hold beside a-z and 0-9. */
#define NODE_NAME_CHARS ".-"
/* Why a name of NODE_NAME_CHARS is still no node name. */
#define NODE_NAME_DOTS "cannot be \".\" or \"..\""
/* name_valid(s, NODE_NAME_CHARS), and neither "." nor "..": those are path
 * segments, so spiffe://TD/node/.. would name the trust domain's root and a
 * directory named after the node its parent. */
bool node_name_valid(const char *s);

/* s[0..len) is a lowercase DNS name: labels of 1-63 [a-z0-9-], no hyphen at
 * either end, 253 characters at most. */
bool trust_domain_valid(const char *s, size_t len);

struct spiffe_id {
	const char *trust_domain;	/* points into the parsed string */
	int trust_domain_len;
	enum workload_kind kind;
};

/* Parses `spiffe://<trust_domain>/<kind>/<name>` (shorter than
 * SPIFFE_ID_MAX); on -EINVAL *why says what is wrong. */
int spiffe_id_parse(const char *s, struct spiffe_id *out, const char **why);
bool spiffe_id_in_domain(const struct spiffe_id *sid, const char *trust_domain);

#endif
