// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>

#include "rulecount.h"
#include "strbuf.h"

static struct rule_count *find(const struct rule_counts *t, const char *where, const char *rule)
{
	for (int i = 0; i < t->nr; i++) {
		if (!strcmp(t->rows[i].where, where) && !strcmp(t->rows[i].rule, rule))
			return &t->rows[i];
	}
	return NULL;
}

void rule_counts_add(struct rule_counts *t, const char *where, const char *rule)
{
	struct rule_count *c = find(t, where, rule);
	int cap;

	if (!c && t->nr >= RULE_COUNTS_MAX) {
		rule = RULE_COUNTS_OTHER;
		c = find(t, where, rule);
	}
	if (c) {
		c->count++;
		return;
	}
	/* Past the cap only the few (where, other) rows are added. */
	if (t->nr == t->cap) {
		cap = t->cap ? 2 * t->cap : 16;
		c = realloc(t->rows, cap * sizeof(*c));
		if (!c)
			return;
		t->rows = c;
		t->cap = cap;
	}
	c = &t->rows[t->nr++];
	str_cut(c->where, sizeof(c->where), where);
	str_cut(c->rule, sizeof(c->rule), rule);
	c->count = 1;
}

void rule_counts_free(struct rule_counts *t)
{
	free(t->rows);
	*t = (struct rule_counts){};
}
