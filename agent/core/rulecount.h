/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Counts by (where, rule): sluice_policy_would_deny_total, kept by each
 * module that sees would-deny decisions (decisions.c for BPF's, the
 * tunnel, http_authz) and rendered by metrics.c. Rules come and go with
 * reloads, so the table is bounded: past RULE_COUNTS_MAX rows a count goes
 * to its where's RULE_COUNTS_OTHER row, and totals stay whole.
 */
#ifndef SLUICE_RULECOUNT_H
#define SLUICE_RULECOUNT_H

#include <stdint.h>

#define RULE_COUNTS_MAX 1024
#define RULE_COUNTS_OTHER "(other)"	/* no rule name has parentheses */
#define RULE_COUNTS_LABEL_LEN 64	/* rule names are at most 63 characters */

struct rule_count {
	char where[16];			/* "connect", "sendmsg", "tunnel", "request" */
	char rule[RULE_COUNTS_LABEL_LEN];	/* policy_rule_label() */
	uint64_t count;
};

struct rule_counts {
	struct rule_count *rows;
	int nr, cap;
};

/* One more for (where, rule). Without memory the count is not kept. */
void rule_counts_add(struct rule_counts *t, const char *where, const char *rule);
void rule_counts_free(struct rule_counts *t);

#endif
