/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Test cases for a policy, for `sluicectl policy test`:
 *
 *   cases:
 *     - name: notebooks cannot read the warehouse   # optional, free text
 *       from: spiffe://acme.example/notebook/alice  # as explain's --from
 *       to: warehouse                               # as explain's --to
 *       method: DELETE                              # optional, with path
 *       path: /api/x
 *       expect: deny                                # allow | deny | would-deny
 *       rule: default                               # optional: a rule's name,
 *                                                   # "#N" or "default"
 *
 * Each case is decided by policy_explain(), so by the deciders themselves.
 * expect allow matches an allow, would-deny an audit-mode deny (which is
 * let through, policy.h), deny a deny. Everything a case names is checked
 * when the file is loaded, against the policy (and config) it is for, so
 * a run never stops half way: errors are FILE:LINE: reason as the policy's
 * own, and the file is bounded as yamlx.h says.
 */
#ifndef SLUICE_POLICY_CASES_H
#define SLUICE_POLICY_CASES_H

#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>

#include "config.h"
#include "errmsg.h"
#include "policy.h"
#include "policy_explain.h"

#define POLICY_MAX_CASES 4096

enum policy_expect {
	EXPECT_ALLOW = 1,
	EXPECT_DENY,
	EXPECT_WOULD_DENY,
};

/* No `rule:` in the case: any rule will do. */
#define POLICY_CASE_ANY_RULE (-2)

struct policy_case {
	char *name;			/* as written, else "FILE:LINE" */
	int line;
	char *from, *to, *method, *path;	/* method and path both or neither */
	struct policy_source src;
	enum policy_expect expect;
	int rule;			/* index into rules, -1 default, or _ANY_RULE */
};

struct policy_cases {
	char *path;
	struct policy_case *cases;
	int nr;
};

/* Reads path and checks each case against pol and cfg (NULL: no config,
 * so SPIFFE IDs have no roles), which must outlive cs. */
int policy_cases_load(const char *path, const struct policy *pol, const struct config *cfg,
		      struct policy_cases *cs, struct errmsg *err);
void policy_cases_free(struct policy_cases *cs);

/*
 * Runs every case: *out is a new {"policy": FILE, "cases": [{"name",
 * "line", "ok", "expect", "expect_rule" (null: any), "verdict",
 * "would_deny", "rule", "rule_line", "why" (null when ok), "explain"}...],
 * "passed": N, "failed": N}. -ENOMEM only.
 */
int policy_cases_run(const struct policy *pol, const struct policy_cases *cs, json_t **out,
		     struct errmsg *err);

/* One line per case, `ok   NAME` or `FAIL NAME: WHY`, then `N passed, N
 * failed`. */
void policy_cases_print(const json_t *doc, FILE *f);

#endif
