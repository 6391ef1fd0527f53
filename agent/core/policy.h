/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Policy file v1 (L4):
 *
 *   version: 1
 *   default: deny                  # deny (default) | allow
 *   mode: enforce                  # enforce (default) | audit: every deny
 *                                  # of the policy, its default's too, is
 *                                  # a would-deny (below)
 *   roles:                         # optional; claims are for IdP mapping
 *     - name: etl
 *       claims: {groups: etl-jobs}
 *   services:
 *     - name: warehouse            # [a-z0-9-]{1,63}, unique
 *       addresses: [10.77.0.2/32, "fd77::2"]   # CIDRs or hosts, v4 and v6
 *       ports: [5432]              # 1-65535; omitted or [any] = any port
 *       protocol: tcp              # tcp (default) | udp | http (TCP
 *                                  # carrying HTTP/1.1: the kind the
 *                                  # edge routes to; L7 rules allowed)
 *       mesh: true                 # true (default): steer through the agent;
 *                                  # false: allow direct (e.g. DNS, IdP)
 *   rules:
 *     - name: jobs-read-warehouse  # optional
 *       from: {kind: job}          # exactly one of: workload: SPIFFE ID,
 *                                  # kind: job|notebook|cluster|service,
 *                                  # role: NAME, any: true
 *       to: [warehouse]            # service name or list of names
 *       action: allow              # allow | deny
 *       mode: audit                # optional, enforce (default) | audit;
 *                                  # in a mode: audit policy every rule is
 *                                  # audit, whatever it says
 *       methods: [GET, HEAD]       # optional L7 conditions, only on rules
 *       paths: [/api/2.0/jobs/list]  # whose every `to` service is
 *       hosts: [api.acme.example]  # protocol: http; see l7.h
 *       via: edge                  # optional: only requests that came in
 *                                  # through the edge, decided as the
 *                                  # caller its assertion names
 *   edge:                          # optional: the nginx edge (edge_render.h)
 *     hosts: [api.acme.example]    # server_name; required
 *     port: 443                    # default 443 with tls, 80 without
 *     tls: {cert: PATH, key: PATH} # optional; without it plain HTTP
 *     max_body: 10m                # client_max_body_size, default 1m
 *     timeout: 60s                 # upstream read/send, default 60s
 *     routes:                      # required, at least one
 *       - prefix: /api/            # path prefix, longest first
 *         service: api             # a protocol: http service
 *
 * Role and rule names are 1-63 characters of [a-z0-9_-], unique. Lists of
 * names, addresses or ports also accept a single scalar. Unknown keys and
 * duplicate keys are errors. The file is bounded as yamlx.h says (1 MiB,
 * 64 levels of nesting, 262,144 nodes counting what aliases name, ...).
 *
 * Precedence, evaluated per connect(): (1) a rule naming the destination
 * port beats one for any port; (2) the longest destination prefix wins;
 * (3) at equal port and prefix, the most specific source wins: workload,
 * then role or kind, then any; (4) at equal specificity deny beats allow.
 * (1) and (2) happen in BPF (two LPM lookups); (3) and (4) are resolved by
 * the compiler, which emits one entry per (identity, proto, port, prefix).
 * In (4) an enforced deny beats an audit one, which beats an allow.
 *
 * Audit mode: a deny of an audit rule (or the default deny of an audit
 * policy) that decides a connection or request lets it through as an
 * allow would, and it is counted and audited as a would-deny
 * (docs/policy-audit-mode.md), so that a policy can be watched on real
 * traffic before it enforces.
 */
#ifndef SLUICE_POLICY_H
#define SLUICE_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <sluice/abi.h>

#include "config.h"
#include "errmsg.h"

#define POLICY_MAX_SERVICES 1024
#define POLICY_MAX_RULES 4096
#define POLICY_MAX_ROLES 1024
#define POLICY_MAX_CLAIMS 64		/* per role */
#define POLICY_MAX_ADDRS 256		/* per service */
#define POLICY_MAX_PORTS 256		/* per service */
/* One generation may use half of a policy map: the other slot stays loaded
 * while the inactive one is rewritten. */
#define POLICY_MAX_ENTRIES (SLUICE_MAX_POLICY / SLUICE_SLOTS)
/* Candidate entries one compilation may weigh before rules that land on
 * the same entries are merged: 32 for every entry the maps can hold, so
 * a reload compiles in tens of milliseconds. */
#define POLICY_MAX_CANDIDATES (32 * POLICY_MAX_ENTRIES)

struct policy_service {
	char *name;
	struct cidr *addrs;
	int nr_addrs;
	uint16_t *ports;		/* host order; empty = any port */
	int nr_ports;
	uint8_t proto;			/* IPPROTO_TCP / IPPROTO_UDP */
	bool http;			/* protocol: http (proto is TCP) */
	bool mesh;
	int line;
};

struct policy_role {
	char *name;
	char **claim_keys;
	char **claim_values;
	int nr_claims;
	int line;
};

enum policy_from {
	FROM_WORKLOAD = 1,
	FROM_KIND,
	FROM_ROLE,
	FROM_ANY,
};

struct policy_rule {
	char *name;			/* NULL when not given */
	enum policy_from from;
	char *from_value;		/* SPIFFE ID, kind name or role; NULL for any */
	int *to;			/* indexes into services */
	int nr_to;
	bool allow;
	bool audit;			/* mode: audit, its own or the policy's */
	int line;
	/* L7 conditions (l7.h), decided per request at the edge and by the
	 * agent in front of the service: a rule with any of them matches a
	 * request only when each list that is present holds a match (and,
	 * via_edge, only a request that came through the edge). methods upper
	 * case; paths normalised patterns; hosts lower case, "*.example"
	 * matching one or more labels. */
	char **methods;
	int nr_methods;
	char **paths;
	int nr_paths;
	char **hosts;
	int nr_hosts;
	bool via_edge;			/* via: edge */
};

#define POLICY_MAX_L7 64		/* methods, paths or hosts per rule */
#define POLICY_MAX_EDGE_ROUTES 256
#define POLICY_MAX_EDGE_HOSTS 64

struct policy_edge_route {
	char *prefix;			/* a normalised path ending in '/' or exact */
	int service;			/* index into services, a protocol: http one */
	int line;
};

struct policy_edge {
	bool present;			/* the policy has an edge: section */
	char **hosts;			/* server_name, lower case */
	int nr_hosts;
	uint16_t port;
	char *tls_cert;			/* NULL: plain HTTP; paths as written */
	char *tls_key;
	uint64_t max_body;		/* bytes */
	unsigned int timeout_ms;
	struct policy_edge_route *routes;
	int nr_routes;
	int line;
};

struct policy {
	char *path;
	bool default_allow;
	bool audit;			/* mode: audit */
	struct policy_service *services;
	int nr_services;
	struct policy_role *roles;
	int nr_roles;
	struct policy_rule *rules;
	int nr_rules;
	struct policy_edge edge;
};

static inline bool policy_rule_is_l7(const struct policy_rule *r)
{
	return r->nr_methods || r->nr_paths || r->nr_hosts || r->via_edge;
}

/*
 * Whether the rule decides connections at connect() (and at the tunnel's
 * OPEN), beside the requests on them. A deny with L7 conditions refuses
 * some requests, not the connection that carries them; a via: edge rule
 * is about the edge's callers, not the workload that connects. An L7
 * allow lets the connection through for the gate to decide each request.
 */
static inline bool policy_rule_per_connection(const struct policy_rule *r)
{
	return !r->via_edge && (r->allow || !policy_rule_is_l7(r));
}

/* Precedence step (4) as a number, for policy_decide() and
 * policy_decide_http() alike: 2 deny, 1 an audit-mode deny, 0 allow. */
static inline int policy_rule_deny_level(const struct policy_rule *r)
{
	return r->allow ? 0 : r->audit ? 1 : 2;
}

/* For a rule with L7 conditions, what `sluicectl policy check` says of it:
 * "decided per request (at the edge, and by the agent in front of api,
 * web); at connect() it lets connections through". Returns the length as
 * snprintf() does. */
size_t policy_rule_mesh_note(const struct policy *pol, const struct policy_rule *r, char *buf,
			     size_t len);

/* Reads and validates a policy file on its own: syntax, names, addresses,
 * ports, references from rules to services and roles. Errors as config. */
int policy_load(const char *path, struct policy *pol, struct errmsg *err);
/* The same from len bytes at buf; name is pol->path and names it in
 * errors (a file sent over the control socket keeps its own name). */
int policy_load_buf(const char *name, const char *buf, size_t len, struct policy *pol,
		    struct errmsg *err);
void policy_free(struct policy *pol);

/* Cross-checks against the config: every workload role is defined in the
 * policy, every `workload:` rule names an ID in the config's trust domain.
 * Error messages name the config or policy file and line. */
int policy_check_config(const struct policy *pol, const struct config *cfg,
			struct errmsg *err);

/* An identity the compiler emits entries for. */
struct policy_identity {
	uint32_t id;			/* numeric identity, != 0 */
	const char *spiffe_id;
	enum workload_kind kind;
	char *const *roles;
	int nr_roles;
};

/* One compiled map entry: key and value for policy4 (family AF_INET) or
 * policy6, with key.slot set to the requested slot. */
struct policy_entry {
	int family;
	union {
		struct sluice_policy_key4 key4;
		struct sluice_policy_key6 key6;
	};
	struct sluice_policy_value value;
};

/*
 * Compiles pol for the given identities into slot. service_ids[i] is the
 * numeric id of pol->services[i] (see names.h). Allocates *entries (free
 * with free()). Identities no rule mentions get no entries: they fall to
 * the default action. Entries are sorted by family, identity, proto, port,
 * address, prefix length, so equal inputs give equal output. More than
 * POLICY_MAX_ENTRIES entries of one family is -E2BIG, more than
 * POLICY_MAX_CANDIDATES candidates -EOVERFLOW. Returns 0 or a negative
 * errno.
 */
int policy_compile(const struct policy *pol, const struct policy_identity *ids, int nr_ids,
		   const uint32_t *service_ids, uint8_t slot, struct policy_entry **entries,
		   int *nr_entries, struct errmsg *err);

/*
 * The service directory for slot: one entry per service address and port
 * under SLUICE_IDENTITY_NONE, valued with the service's id (action deny,
 * rule 0, never a verdict), that BPF resolves a default-deny's destination
 * with. Where services overlap, the first in the file names the entry.
 * Allocates *entries as policy_compile() does; -E2BIG past
 * POLICY_MAX_ENTRIES of one family.
 */
int policy_compile_directory(const struct policy *pol, const uint32_t *service_ids, uint8_t slot,
			     struct policy_entry **entries, int *nr_entries, struct errmsg *err);

/* The source specificity of rule r for id, as precedence step (3) ranks
 * it: 0 when r's `from` does not match id, then any < role or kind <
 * workload. id->kind 0 and a NULL spiffe_id (a caller that is no
 * workload) match only role and any rules. */
int policy_rule_specificity(const struct policy_rule *r, const struct policy_identity *id);

/* What the policy says of one connection, for decisions made in
 * userspace (the tunnel's receiving side). */
struct decision {
	bool allow;
	/* An audit-mode deny decided (allow is true, reason
	 * SLUICE_REASON_WOULD_DENY): let it through, and say so. */
	bool would_deny;
	uint32_t reason;		/* SLUICE_REASON_NONE, _POLICY_DENY, _DEFAULT_DENY,
					 * _WOULD_DENY */
	int rule;			/* index into rules, -1 for the default */
	int service;			/* index into services, -1 when none matched */
};

/* The decision that a rule (index r, -1: the default) makes, for out's
 * service as already set: allow, deny or, in audit mode, would-deny. */
void policy_decision_of(const struct policy *pol, int r, struct decision *out);

/* sluice_config.slot_default for pol: SLUICE_ACT_ALLOW, _DENY, or
 * _ALLOW_WOULD_DENY for the default deny of a mode: audit policy. */
uint32_t policy_default_action(const struct policy *pol);

/* Rules in mode audit (all of them in a mode: audit policy). */
int policy_audit_rules(const struct policy *pol);

/* How sluice_policy_would_deny_total's rule label names a rule: its name,
 * else "rule-N" with its 1-based number (as `policy show` numbers it);
 * number 0 is "default". */
void policy_rule_label(const char *name, uint32_t number, char *buf, size_t len);

/*
 * Decides for src connecting to addr:port over proto with exactly the
 * precedence the datapath enforces (the comment at the top), so a flow
 * gets the same answer at connect() on its node and at the far agent.
 * addr is in network order (v4 in addr[0]), port in host order. No
 * allocation: it runs for every inbound tunnel flow. out->service is the
 * deciding rule's service, or, decided by the default, the service the
 * destination is (policy_service_at()).
 */
void policy_decide(const struct policy *pol, const struct policy_identity *src, int family,
		   const uint32_t *addr, uint16_t port, uint8_t proto, struct decision *out);

/* The service addr:port over proto is, most specific first (a named port,
 * then the longest prefix): an index into pol->services, or -1. */
int policy_service_at(const struct policy *pol, int family, const uint32_t *addr, uint16_t port,
		      uint8_t proto);

/*
 * The roles whose claims an IdP token satisfies: every key of the role's
 * `claims` present in claims, equal to the value or, for an array claim
 * (groups), containing it. Roles without claims are never granted this
 * way. Fills roles (pointers into pol) up to max; returns how many.
 */
int policy_roles_from_claims(const struct policy *pol, const json_t *claims, const char **roles,
			     int max);

/* "deny", "allow", "redirect", "would-deny" (ALLOW_WOULD_DENY) */
const char *policy_action_name(uint32_t action);
const char *policy_reason_name(uint32_t reason);	/* "policy-deny", ... */

#endif
