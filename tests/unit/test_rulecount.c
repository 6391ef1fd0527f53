// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The counts by (where, rule) behind sluice_policy_would_deny_total. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rulecount.h"

static uint64_t count_of(const struct rule_counts *t, const char *where, const char *rule)
{
	for (int i = 0; i < t->nr; i++) {
		if (!strcmp(t->rows[i].where, where) && !strcmp(t->rows[i].rule, rule))
			return t->rows[i].count;
	}
	return 0;
}

/* One row per (where, rule): the same rule elsewhere is a row of its own. */
static void test_rows(void **state)
{
	struct rule_counts t = {};

	rule_counts_add(&t, "connect", "no-delete");
	rule_counts_add(&t, "connect", "no-delete");
	rule_counts_add(&t, "request", "no-delete");
	rule_counts_add(&t, "connect", "default");
	assert_int_equal(t.nr, 3);
	assert_int_equal(count_of(&t, "connect", "no-delete"), 2);
	assert_int_equal(count_of(&t, "request", "no-delete"), 1);
	assert_int_equal(count_of(&t, "connect", "default"), 1);
	rule_counts_free(&t);
	assert_int_equal(t.nr, 0);
	assert_null(t.rows);
}

/* Past the cap, new rules are counted under their where's other row:
 * bounded rows, whole totals; rules already in keep their own. */
static void test_cap(void **state)
{
	struct rule_counts t = {};
	uint64_t total = 0;
	char rule[32];

	for (int i = 0; i < RULE_COUNTS_MAX + 10; i++) {
		snprintf(rule, sizeof(rule), "r%d", i);
		rule_counts_add(&t, "tunnel", rule);
	}
	rule_counts_add(&t, "tunnel", "r0");
	rule_counts_add(&t, "request", "late");
	assert_int_equal(t.nr, RULE_COUNTS_MAX + 2);
	assert_int_equal(count_of(&t, "tunnel", "r0"), 2);
	assert_int_equal(count_of(&t, "tunnel", RULE_COUNTS_OTHER), 10);
	assert_int_equal(count_of(&t, "request", RULE_COUNTS_OTHER), 1);
	for (int i = 0; i < t.nr; i++)
		total += t.rows[i].count;
	assert_int_equal(total, RULE_COUNTS_MAX + 12);
	rule_counts_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
