/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What a new policy changes against the live one: the document
 * `sluicectl policy apply FILE --dry-run` shows (the agent computes it,
 * sluicectl prints it, or with -j passes it on) and whose one-line summary
 * goes into `policy history`.
 *
 *   {"file": {"before": "live.yaml" | null, "after": "policy.yaml"},
 *    "rules": {"added": [RULE], "removed": [RULE],
 *              "changed": [{"name": N, "before": SIDE, "after": SIDE}]},
 *    "default": {"before": "deny" | "allow" | "none", "after": ...},
 *    "verdicts": [{"from": F, "to": SERVICE, "method": M | null,
 *                  "path": P | null, "via": "edge" | null,
 *                  "before": V, "after": V,
 *                  "rule_before": R | null, "rule_after": R | null}],
 *    "summary": {"rules_added": n, "rules_removed": n, "rules_changed": n,
 *                "verdicts_changed": n, "default_changed": bool}}
 *
 *   RULE = {"name": N | null, "index": I, "line": L, "text": T}
 *   SIDE = {"index": I, "line": L, "text": T}
 *
 * Rules. A named rule is the same rule in both policies when its name is;
 * if its text differs it is "changed". An unnamed rule is matched to an
 * unnamed one with the same text, each used once, so renaming a rule, or
 * naming an unnamed one, is a removal and an addition. The text is the
 * rule in one canonical line, its lists sorted so their order does not
 * count: "deny kind notebook -> api, web methods DELETE paths /x/x via
 * edge". index is 1-based in file order, as "#3" names an unnamed rule.
 *
 * Verdicts. The sources are the workloads in ids (their SPIFFE IDs as
 * "from"), then every role a rule of either policy names ("role:etl"; an
 * identity of that one role, no kind and no SPIFFE ID), sorted, then
 * every kind one names ("kind:job"; that kind, no roles), in enum order.
 * The destinations are every service either policy has, by name. For
 * each pair, each side is what policy_decide() says at each of the
 * service's addresses (its network address) times each of its ports; a
 * service without ports is probed at port 0, which no service can name
 * (ports are 1-65535), so exactly the any-port rules reach it, as they
 * reach any port no service names. Probes that disagree make "mixed"; a
 * service the policy lacks is "none" (old NULL: every "before" is). The
 * rule is the deciding rule's name, "#N" for an unnamed one, "default",
 * or, where probes were decided by several, their labels joined by ","
 * in probe order; null with "none".
 *
 * Requests. For a protocol: http service, every rule of either policy
 * that targets it and has methods, paths or via: edge contributes probes:
 * each method (GET without methods) times each path pattern with every
 * "*" and "**" segment made "x" (a "**" segment of /api becomes /api/x; "/" without
 * paths), with via_edge as the rule's. Each source's request is decided
 * by policy_decide_http() without a Host, so rules with hosts: show only
 * where their methods or paths meet another probe. A side where the
 * service is not protocol: http has no gate: its request verdict is the
 * connection's. Request rows follow their pair's connection row, sorted
 * by method, path, via.
 *
 * Only rows whose verdict differs are listed: sources outer, services
 * inner. Nothing here ranks rules: both deciders are the ones enforcement
 * calls, so the diff cannot disagree with what will be enforced.
 */
#ifndef SLUICE_POLICY_DIFF_H
#define SLUICE_POLICY_DIFF_H

#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

#include "errmsg.h"
#include "policy.h"

/* old may be NULL (no live policy yet: every rule added, verdicts from "none"). ids: the node's
 * workloads (the agent passes its resolved workloads; tests pass their own), each with its SPIFFE
 * ID. Returns 0 and a new JSON document, or -errno with err set (-ENOMEM). */
int policy_diff(const struct policy *old, const struct policy *new_, const struct policy_identity *ids,
		int nr_ids, json_t **out, struct errmsg *err);

/* Prints the document as text on f (the plain output of `apply --dry-run`). Missing members print
 * as "-" rather than fail: the document may come from an agent of another version. */
void policy_diff_print(const json_t *diff, FILE *f);

/* A one-line summary for history, e.g. "+1 -0 ~1 rules, 2 verdicts change", with ", default deny
 * -> allow" when the default flips. Returns snprintf-style length. */
size_t policy_diff_summary(const json_t *diff, char *buf, size_t len);

#endif
