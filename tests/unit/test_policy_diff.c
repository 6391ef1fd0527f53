// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* policy_diff(): a table of policy pairs and the exact text `sluicectl
 * policy apply --dry-run` prints for each, and the history summary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"
#include "policy_diff.h"
#include "spiffe.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define HEAD                                                                                       \
	"version: 1\n"                                                                             \
	"default: deny\n"                                                                          \
	"roles:\n"                                                                                 \
	"  - name: etl\n"                                                                          \
	"services:\n"                                                                              \
	"  - name: warehouse\n"                                                                    \
	"    addresses: [10.0.0.2/32]\n"                                                           \
	"    ports: [5432]\n"                                                                      \
	"  - name: api\n"                                                                          \
	"    addresses: [10.0.0.3/32]\n"                                                           \
	"    ports: [80]\n"                                                                        \
	"    protocol: http\n"                                                                     \
	"rules:\n"                                                                                 \
	"  - name: etl-reads-warehouse\n"                                                          \
	"    from: {role: etl}\n"                                                                  \
	"    to: [warehouse]\n"                                                                    \
	"    action: allow\n"                                                                      \
	"  - name: all-call-api\n"                                                                 \
	"    from: {any: true}\n"                                                                  \
	"    to: [api]\n"                                                                          \
	"    action: allow\n"

static const char base[] = HEAD;

static const char notebook_gains[] = HEAD "  - name: notebooks-read-warehouse\n"
					  "    from: {kind: notebook}\n"
					  "    to: [warehouse]\n"
					  "    action: allow\n";

static const char no_deletes[] = HEAD "  - name: no-job-deletes\n"
				      "    from: {kind: job}\n"
				      "    to: [api]\n"
				      "    methods: [DELETE]\n"
				      "    action: deny\n";

/* etl-reads-warehouse now names a kind instead of the role. */
static const char changed[] = "version: 1\n"
			      "default: deny\n"
			      "roles:\n"
			      "  - name: etl\n"
			      "services:\n"
			      "  - name: warehouse\n"
			      "    addresses: [10.0.0.2/32]\n"
			      "    ports: [5432]\n"
			      "  - name: api\n"
			      "    addresses: [10.0.0.3/32]\n"
			      "    ports: [80]\n"
			      "    protocol: http\n"
			      "rules:\n"
			      "  - name: etl-reads-warehouse\n"
			      "    from: {kind: notebook}\n"
			      "    to: [warehouse]\n"
			      "    action: allow\n"
			      "  - name: all-call-api\n"
			      "    from: {any: true}\n"
			      "    to: [api]\n"
			      "    action: allow\n";

static char *const etl[] = { "etl" };

static const struct policy_identity ids[] = {
	{ .id = 1, .spiffe_id = "spiffe://acme.example/job/1", .kind = WL_KIND_JOB,
	  .roles = etl, .nr_roles = 1 },
	{ .id = 2, .spiffe_id = "spiffe://acme.example/notebook/2", .kind = WL_KIND_NOTEBOOK },
};

struct diff_case {
	const char *name;
	const char *old;		/* NULL: no live policy */
	const char *new_;
	const char *text;
	const char *summary;
};

static const struct diff_case cases[] = {
	{ "unchanged", base, base,
	  "rules: 0 added, 0 removed, 0 changed\n"
	  "default: deny (unchanged)\n"
	  "verdicts: none change\n",
	  "+0 -0 ~0 rules, 0 verdicts change" },
	{ "notebook gains the warehouse", base, notebook_gains,
	  "rules: 1 added, 0 removed, 0 changed\n"
	  "  + notebooks-read-warehouse (new.yaml:22): allow kind notebook -> warehouse\n"
	  "default: deny (unchanged)\n"
	  "verdicts: 2 change\n"
	  "  FROM                              TO         METHOD  PATH  BEFORE  AFTER  RULE\n"
	  "  spiffe://acme.example/notebook/2  warehouse  -       -     deny    allow  notebooks-read-warehouse\n"
	  "  kind:notebook                     warehouse  -       -     deny    allow  notebooks-read-warehouse\n",
	  "+1 -0 ~0 rules, 2 verdicts change" },
	{ "a per-request deny", base, no_deletes,
	  "rules: 1 added, 0 removed, 0 changed\n"
	  "  + no-job-deletes (new.yaml:22): deny kind job -> api methods DELETE\n"
	  "default: deny (unchanged)\n"
	  "verdicts: 2 change\n"
	  "  FROM                         TO   METHOD  PATH  BEFORE  AFTER  RULE\n"
	  "  spiffe://acme.example/job/1  api  DELETE  /     allow   deny   no-job-deletes\n"
	  "  kind:job                     api  DELETE  /     allow   deny   no-job-deletes\n",
	  "+1 -0 ~0 rules, 2 verdicts change" },
	{ "a rule changed", base, changed,
	  "rules: 0 added, 0 removed, 1 changed\n"
	  "  ~ etl-reads-warehouse (old.yaml:14): allow role etl -> warehouse\n"
	  "    now (new.yaml:14): allow kind notebook -> warehouse\n"
	  "default: deny (unchanged)\n"
	  "verdicts: 4 change\n"
	  "  FROM                              TO         METHOD  PATH  BEFORE  AFTER  RULE\n"
	  "  spiffe://acme.example/job/1       warehouse  -       -     allow   deny   default\n"
	  "  spiffe://acme.example/notebook/2  warehouse  -       -     deny    allow  etl-reads-warehouse\n"
	  "  role:etl                          warehouse  -       -     allow   deny   default\n"
	  "  kind:notebook                     warehouse  -       -     deny    allow  etl-reads-warehouse\n",
	  "+0 -0 ~1 rules, 4 verdicts change" },
};

static char *print(const json_t *doc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	policy_diff_print(doc, f);
	fclose(f);
	return buf;
}

static void load(const char *name, const char *text, struct policy *pol)
{
	struct errmsg err = {};

	if (policy_load_buf(name, text, strlen(text), pol, &err))
		fail_msg("%s", err.msg);
}

static void test_table(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct diff_case *c = &cases[i];
		struct policy old = {}, new_ = {};
		struct errmsg err = {};
		char summary[256];
		json_t *doc;
		char *text;

		if (c->old)
			load("old.yaml", c->old, &old);
		load("new.yaml", c->new_, &new_);
		assert_int_equal(policy_diff(c->old ? &old : NULL, &new_, ids, ARRAY_SIZE(ids),
					     &doc, &err), 0);
		text = print(doc);
		if (strcmp(text, c->text))
			fail_msg("%s: got\n%s\nexpected\n%s", c->name, text, c->text);
		policy_diff_summary(doc, summary, sizeof(summary));
		assert_string_equal(summary, c->summary);
		free(text);
		json_decref(doc);
		policy_free(&old);
		policy_free(&new_);
	}
}

/* The first generation: every rule added, every pair from "none". */
static void test_first(void **state)
{
	struct policy pol = {};
	struct errmsg err = {};
	char summary[256];
	json_t *doc, *row;

	load("new.yaml", base, &pol);
	assert_int_equal(policy_diff(NULL, &pol, ids, ARRAY_SIZE(ids), &doc, &err), 0);
	policy_diff_summary(doc, summary, sizeof(summary));
	assert_string_equal(summary, "+2 -0 ~0 rules, 6 verdicts change, default none -> deny");
	row = json_array_get(json_object_get(doc, "verdicts"), 0);
	assert_string_equal(json_string_value(json_object_get(row, "before")), "none");
	assert_true(json_is_null(json_object_get(row, "rule_before")));
	json_decref(doc);
	policy_free(&pol);
}

/* A default flip names every pair no rule decides, and the summary says it. */
static void test_default_flip(void **state)
{
	static const char open_[] = "version: 1\n"
				    "default: allow\n"
				    "services:\n"
				    "  - name: warehouse\n"
				    "    addresses: [10.0.0.2/32]\n"
				    "    ports: [5432]\n";
	static const char closed[] = "version: 1\n"
				     "default: deny\n"
				     "services:\n"
				     "  - name: warehouse\n"
				     "    addresses: [10.0.0.2/32]\n"
				     "    ports: [5432]\n";
	struct policy old = {}, new_ = {};
	struct errmsg err = {};
	char summary[256];
	json_t *doc;

	load("old.yaml", open_, &old);
	load("new.yaml", closed, &new_);
	assert_int_equal(policy_diff(&old, &new_, ids, ARRAY_SIZE(ids), &doc, &err), 0);
	policy_diff_summary(doc, summary, sizeof(summary));
	assert_string_equal(summary, "+0 -0 ~0 rules, 2 verdicts change, default allow -> deny");
	json_decref(doc);
	policy_free(&old);
	policy_free(&new_);
}

/* A service with two ports, only one of which a new rule opens. */
static void test_mixed(void **state)
{
	static const char two[] = "version: 1\n"
				  "default: deny\n"
				  "services:\n"
				  "  - name: warehouse\n"
				  "    addresses: [10.0.0.2/32]\n"
				  "    ports: [5432, 5433]\n"
				  "  - name: replica\n"
				  "    addresses: [10.0.0.2/32]\n"
				  "    ports: [5433]\n"
				  "rules:\n"
				  "  - from: {kind: job}\n"
				  "    to: [replica]\n"
				  "    action: allow\n";
	static const char none[] = "version: 1\n"
				   "default: deny\n"
				   "services:\n"
				   "  - name: warehouse\n"
				   "    addresses: [10.0.0.2/32]\n"
				   "    ports: [5432, 5433]\n"
				   "  - name: replica\n"
				   "    addresses: [10.0.0.2/32]\n"
				   "    ports: [5433]\n";
	struct policy old = {}, new_ = {};
	struct errmsg err = {};
	json_t *doc, *rows, *row;
	bool mixed = false;
	size_t i;

	load("old.yaml", none, &old);
	load("new.yaml", two, &new_);
	assert_int_equal(policy_diff(&old, &new_, ids, 1, &doc, &err), 0);
	rows = json_object_get(doc, "verdicts");
	json_array_foreach(rows, i, row) {
		if (!strcmp(json_string_value(json_object_get(row, "to")), "warehouse")) {
			assert_string_equal(json_string_value(json_object_get(row, "after")),
					    "mixed");
			assert_string_equal(json_string_value(json_object_get(row, "rule_after")),
					    "default,#1");
			mixed = true;
		}
	}
	assert_true(mixed);
	json_decref(doc);
	policy_free(&old);
	policy_free(&new_);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_first),
		cmocka_unit_test(test_default_flip),
		cmocka_unit_test(test_mixed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
