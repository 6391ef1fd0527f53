// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bad_files.h"

#include "config.h"
#include "l7.h"
#include "policy.h"
#include "policy_cases.h"
#include "policy_explain.h"

#define DATA "tests/data/policy/explain/"
#define POLICY DATA "policy.yaml"
#define CONFIG DATA "config.yaml"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

extern char **environ;

struct fixture {
	struct policy pol;
	struct config cfg;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct errmsg err = {};

	if (!f)
		return -1;
	if (policy_load(POLICY, &f->pol, &err) || config_load(CONFIG, &f->cfg, &err) ||
	    policy_check_config(&f->pol, &f->cfg, &err)) {
		print_error("%s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	policy_free(&f->pol);
	config_free(&f->cfg);
	free(f);
	return 0;
}

/* One row: the question, and the verdict and rule it must get. */
struct row {
	const char *from, *to, *method, *path;
	const char *verdict;		/* "allow", "deny" or "would-deny" */
	const char *rule;		/* name, "#N" or "default" */
};

/* Each row isolates one precedence step (policy.h's for connections,
 * l7.h's for requests); the rules of explain/policy.yaml are named for
 * the row they win or lose in. */
static const struct row rows[] = {
	/* (1) a named port beats any port, even when the any-port rule denies. */
	{ "kind:cluster", "10.1.0.5:5432", NULL, NULL, "allow", "db-port" },
	{ "kind:cluster", "db", NULL, NULL, "allow", "db-port" },
	{ "kind:cluster", "10.1.0.5:22", NULL, NULL, "deny", "db-host-deny" },
	{ "kind:cluster", "db-host", NULL, NULL, "deny", "db-host-deny" },
	/* (2) the longest prefix wins. */
	{ "kind:cluster", "10.2.3.4:80", NULL, NULL, "allow", "narrow-allow" },
	{ "kind:cluster", "10.2.9.9:80", NULL, NULL, "deny", "wide-deny" },
	{ "kind:cluster", "10.2.3.4:80/udp", NULL, NULL, "deny", "default" },
	/* (3) workload, then role or kind, then any. */
	{ "spiffe://acme.example/job/1", "spec", NULL, NULL, "allow", "spec-workload" },
	{ "spiffe://acme.example/job/2", "spec", NULL, NULL, "deny", "spec-role" },
	{ "role:etl", "spec", NULL, NULL, "deny", "spec-role" },
	{ "etl", "10.3.0.1:9000", NULL, NULL, "deny", "spec-role" },
	{ "kind:notebook", "spec", NULL, NULL, "deny", "spec-kind" },
	{ "kind:cluster", "spec", NULL, NULL, "allow", "spec-any" },
	/* (4) at equal specificity deny beats allow; a full tie goes to the
	 * first rule in file order. */
	{ "spiffe://acme.example/job/1", "tie", NULL, NULL, "deny", "tie-kind-deny" },
	{ "role:etl", "tie", NULL, NULL, "allow", "tie-role-allow" },
	{ "kind:cluster", "tie", NULL, NULL, "allow", "#11" },
	/* The default, v6 and udp, mesh: false. */
	{ "kind:cluster", "10.9.9.9:80", NULL, NULL, "deny", "default" },
	{ "kind:job", "six", NULL, NULL, "deny", "default" },
	{ "kind:notebook", "[fd00:5::1]:53/udp", NULL, NULL, "allow", "six-notebooks" },
	{ "kind:notebook", "[::ffff:10.1.0.5]:5432", NULL, NULL, "allow", "db-port" },
	{ "kind:job", "direct", NULL, NULL, "allow", "direct-any" },
	/* An audit-mode deny decides as a deny would, and lets through. */
	{ "kind:job", "watched", NULL, NULL, "would-deny", "watched-audit" },
	{ "kind:service", "watched", NULL, NULL, "allow", "watched-allow" },
	/* Requests: the path match first, then the source, then more of methods
	 * and hosts, then deny. */
	{ "kind:job", "api", "GET", "/x", "allow", "api-read" },
	{ "kind:job", "api", "DELETE", "/x", "deny", "api-delete-deny" },
	{ "kind:job", "api", "POST", "/x", "allow", "api-connect" },
	{ "kind:job", "api", "GET", "/admin/users", "deny", "api-admin-deny" },
	{ "kind:job", "api", "GET", "/admin/./health", "allow", "api-admin-health" },
	{ "kind:job", "10.7.0.1:8080", "GET", "/api/7/jobs", "allow", "api-jobs" },
	{ "kind:notebook", "api", "GET", "/api/7/jobs", "deny", "api-deny" },
	{ "kind:job", "api", "get", "/x", "allow", "api-connect" },
	/* web: the connection is refused before any request; an allowed one
	 * is still decided per request. */
	{ "kind:job", "web", "GET", "/x", "deny", "default" },
	{ "kind:notebook", "web", "GET", "/x", "allow", "web-read" },
	{ "kind:notebook", "web", "DELETE", "/x", "deny", "default" },
};

static const char *verdict_name(const struct decision *d)
{
	return d->would_deny ? "would-deny" : d->allow ? "allow" : "deny";
}

/* What enforcement decides for the row, asked of the deciders directly:
 * connect() first; a request only on a connection through the agent to an
 * http service. */
static void decide_row(const struct policy *pol, const struct policy_identity *id,
		       const struct row *r, struct decision *d)
{
	char norm[L7_PATH_MAX];
	struct policy_dest dest;
	struct errmsg err = {};
	const struct policy_service *svc;

	assert_int_equal(policy_dest_parse(pol, r->to, r->method, &dest, &err), 0);
	policy_decide(pol, id, dest.family, dest.addr, dest.port, dest.proto, d);
	if (!r->method || !d->allow || d->rule < 0)
		return;
	svc = &pol->services[d->service];
	if (!svc->mesh || !svc->http)
		return;
	assert_int_equal(l7_path_normalize(r->path, strlen(r->path), norm, sizeof(norm), &err), 0);
	policy_decide_http(pol, id, d->service,
			   &(struct http_req){ .method = r->method, .path = norm }, d);
}

static json_t *explain_row(struct fixture *f, const struct row *r, struct decision *d)
{
	struct policy_source src;
	struct errmsg err = {};
	json_t *doc = NULL;

	if (policy_source_parse(r->from, &f->pol, &f->cfg, &src, &err) ||
	    policy_explain(&f->pol, &src.id, r->to, r->method, r->path, &doc, &err))
		fail_msg("%s -> %s: %s", r->from, r->to, err.msg);
	if (d)
		decide_row(&f->pol, &src.id, r, d);
	return doc;
}

static const char *doc_verdict(const json_t *doc)
{
	if (json_is_true(json_object_get(doc, "would_deny")))
		return "would-deny";
	return json_string_value(json_object_get(doc, "verdict"));
}

/* Every row: the verdict and rule it expects, explain's, and the
 * deciders' are one. */
static void test_precedence_table(void **state)
{
	struct fixture *f = *state;
	char label[80];
	struct decision d;
	json_t *doc;

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		const struct row *r = &rows[i];

		doc = explain_row(f, r, &d);
		policy_explain_rule(&f->pol, d.rule, label, sizeof(label));
		if (strcmp(verdict_name(&d), r->verdict) || strcmp(label, r->rule))
			fail_msg("row %zu (%s -> %s %s %s): deciders say %s by %s, the table %s "
				 "by %s", i, r->from, r->to, r->method ? r->method : "",
				 r->path ? r->path : "", verdict_name(&d), label, r->verdict,
				 r->rule);
		assert_string_equal(doc_verdict(doc), r->verdict);
		assert_string_equal(json_string_value(json_object_get(doc, "rule")), r->rule);
		if (d.rule >= 0)
			assert_int_equal(json_integer_value(json_object_get(doc, "line")),
					 f->pol.rules[d.rule].line);
		else
			assert_true(json_is_null(json_object_get(doc, "line")));
		json_decref(doc);
	}
}

static const char *step_detail(const json_t *doc, const char *name)
{
	const char *last = NULL;
	const json_t *s;
	size_t i;

	json_array_foreach(json_object_get(doc, "steps"), i, s) {
		if (!strcmp(json_string_value(json_object_get(s, "step")), name))
			last = json_string_value(json_object_get(s, "detail"));
	}
	return last;
}

static char *print_doc(const json_t *doc, void (*print)(const json_t *, FILE *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	assert_non_null(m);
	print(doc, m);
	fclose(m);
	return buf;
}

/* What a user reads: the whole plain output of one connection. */
static void test_explain_plain(void **state)
{
	static const struct row r = { .from = "spiffe://acme.example/job/1", .to = "spec" };
	struct fixture *f = *state;
	json_t *doc = explain_row(f, &r, NULL);
	char *out = print_doc(doc, policy_explain_print);

	assert_string_equal(
		out,
		"verdict: allow\n"
		"rule: spec-workload (" POLICY ":75)\n"
		"steps:\n"
		"  1. source: spiffe://acme.example/job/1: kind job, role etl\n"
		"  2. destination: 10.3.0.1:9000/tcp is service spec (line 18)\n"
		"  3. other-sources: spec-kind (line 71): kind notebook\n"
		"  4. candidates: spec-any (line 63): any, allow, service spec, port 9000, "
		"10.3.0.1/32; spec-role (line 67): role etl, deny, service spec, port 9000, "
		"10.3.0.1/32; spec-workload (line 75): workload spiffe://acme.example/job/1, allow, "
		"service spec, port 9000, 10.3.0.1/32\n"
		"  5. specificity: the most specific source wins (workload, then role or kind, then "
		"any): workload spiffe://acme.example/job/1; set aside spec-any (line 63: any), "
		"spec-role (line 67: role etl)\n"
		"  6. decision: rule spec-workload (line 75) allows the connection, through the "
		"agent\n");
	free(out);
	json_decref(doc);
}

/* The step each row is about says which rules it set aside, and why. */
static void test_explain_steps(void **state)
{
	static const struct {
		struct row r;
		const char *step, *detail;
	} cases[] = {
		{ { .from = "kind:cluster", .to = "db" }, "port",
		  "a rule naming the destination port beats one for any port: port 5432; set "
		  "aside db-host-deny (line 49: any port)" },
		{ { .from = "kind:cluster", .to = "10.2.3.4:80" }, "prefix",
		  "the longest destination prefix wins: 10.2.3.0/24; set aside wide-deny (line 54: "
		  "10.2.0.0/16)" },
		{ { .from = "spiffe://acme.example/job/1", .to = "tie" }, "deny",
		  "at equal specificity deny beats an audit-mode deny, which beats allow: deny; set "
		  "aside tie-role-allow (line 81: allow)" },
		{ { .from = "kind:cluster", .to = "tie" }, "order",
		  "a full tie: the first rule in file order decides: set aside tie-any-again (line "
		  "92)" },
		{ { .from = "kind:job", .to = "direct" }, "decision",
		  "rule direct-any (line 100) allows the connection, direct (mesh: false)" },
		{ { .from = "kind:job", .to = "watched" }, "decision",
		  "rule watched-audit (line 150) would deny the connection (mode: audit: let "
		  "through as an allow would, and reported), through the agent" },
		{ { .from = "kind:cluster", .to = "10.9.9.9:80" }, "destination",
		  "10.9.9.9:80/tcp is no service of the policy" },
		{ { .from = "kind:job", .to = "api", .method = "GET", .path = "/admin/./health" }, "path",
		  "the most specific path match wins (exact, then more literal segments, then fewer "
		  "wildcards; no paths last): /admin/health; set aside api-connect (line 105: no "
		  "paths), api-read (line 109: no paths), api-admin-deny (line 119: /admin/**)" },
		{ { .from = "kind:job", .to = "api", .method = "DELETE", .path = "/x" }, "conditions",
		  "more of methods and hosts wins: methods; set aside api-connect (line 105: "
		  "neither methods nor hosts)" },
		{ { .from = "kind:job", .to = "api", .method = "DELETE", .path = "/x" }, "unmatched",
		  "api-read (line 109): method DELETE is not one of GET, HEAD; api-admin-deny (line "
		  "119): path /x matches none of /admin/**; api-admin-health (line 124): path /x "
		  "matches none of /admin/health; api-jobs (line 129): path /x matches none of "
		  "/api/*/jobs; api-deny (line 134): path /x matches none of /api/**" },
		{ { .from = "kind:job", .to = "web", .method = "GET", .path = "/x" }, "request",
		  "not sent: the connection is refused" },
		{ { .from = "kind:notebook", .to = "web", .method = "DELETE", .path = "/x" }, "decision",
		  "no rule decides the request: the policy's default, deny (403)" },
	};
	struct fixture *f = *state;
	const char *detail;
	json_t *doc;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		doc = explain_row(f, &cases[i].r, NULL);
		/* The last step of that name: a request's decision comes after the
		 * connection's. */
		detail = step_detail(doc, cases[i].step);
		if (!detail)
			fail_msg("%s -> %s: no step %s", cases[i].r.from, cases[i].r.to,
				 cases[i].step);
		assert_string_equal(detail, cases[i].detail);
		json_decref(doc);
	}
}

/* The document's members beside the verdict: what -j prints. */
static void test_explain_json(void **state)
{
	static const struct row r = { .from = "kind:job", .to = "api", .method = "GET",
				      .path = "/admin/./health" };
	struct fixture *f = *state;
	json_t *doc = explain_row(f, &r, NULL);

	assert_string_equal(json_string_value(json_object_get(doc, "policy")), POLICY);
	assert_string_equal(json_string_value(json_object_get(doc, "from")), "kind:job");
	assert_string_equal(json_string_value(json_object_get(doc, "to")), "api");
	assert_string_equal(json_string_value(json_object_get(doc, "destination")),
			    "10.7.0.1:8080/tcp");
	assert_string_equal(json_string_value(json_object_get(doc, "service")), "api");
	assert_string_equal(json_string_value(json_object_get(doc, "method")), "GET");
	assert_string_equal(json_string_value(json_object_get(doc, "path")), "/admin/health");
	assert_true(json_is_false(json_object_get(doc, "would_deny")));
	assert_int_equal(json_integer_value(json_object_get(doc, "line")), 124);
	assert_int_equal(json_array_size(json_object_get(doc, "steps")), 11);
	json_decref(doc);
}

static void expect_explain_error(struct fixture *f, const char *from, const char *to,
				 const char *method, const char *path, const char *msg)
{
	struct policy_source src;
	struct errmsg err = {};
	json_t *doc = NULL;
	int ret;

	ret = policy_source_parse(from, &f->pol, &f->cfg, &src, &err);
	if (!ret)
		ret = policy_explain(&f->pol, &src.id, to, method, path, &doc, &err);
	assert_int_equal(ret, -EINVAL);
	assert_null(doc);
	assert_string_equal(err.msg, msg);
}

static void test_explain_errors(void **state)
{
	struct fixture *f = *state;

	expect_explain_error(f, "kind:job", "warehous", NULL, NULL,
			     "unknown service \"warehous\" in " POLICY);
	expect_explain_error(f, "kind:job", "10.0.0.1", NULL, NULL,
			     "bad destination \"10.0.0.1\": expected a service of " POLICY
			     " or ADDR:PORT (a.b.c.d:p or [v6]:p, optionally with /tcp or /udp)");
	expect_explain_error(f, "kind:job", "[fd00::1:53", NULL, NULL,
			     "bad destination \"[fd00::1:53\": expected a service of " POLICY
			     " or ADDR:PORT (a.b.c.d:p or [v6]:p, optionally with /tcp or /udp)");
	expect_explain_error(f, "kind:job", "10.0.0.1:0", NULL, NULL,
			     "bad destination \"10.0.0.1:0\": port 0");
	expect_explain_error(f, "kind:job", "10.0.0.1:80/sctp", NULL, NULL,
			     "bad destination \"10.0.0.1:80/sctp\": the protocol is /tcp or /udp");
	expect_explain_error(f, "kind:job", "spec", "GET", "/x",
			     "\"spec\" is not a protocol: http service (a method and path need "
			     "one)");
	expect_explain_error(f, "kind:job", "10.9.9.9:80", "GET", "/x",
			     "\"10.9.9.9:80\" is not a protocol: http service (a method and path "
			     "need one)");
	expect_explain_error(f, "kind:job", "api", "GET", NULL, "a method and a path go together");
	expect_explain_error(f, "kind:job", "api", "GET /", "/x",
			     "bad method \"GET /\": expected a token such as GET");
	expect_explain_error(f, "kind:job", "api", "GET", "/../x",
			     "bad path \"/../x\": \"..\" above the root in path");
	expect_explain_error(f, "kind:job", "api", "GET", "/a%FF",
			     "bad path \"/a%FF\": not UTF-8 once decoded");
	expect_explain_error(f, "analysts", "api", NULL, NULL,
			     "unknown source \"analysts\": expected a SPIFFE ID, role:NAME, "
			     "kind:KIND or a role of " POLICY);
	expect_explain_error(f, "role:analysts", "api", NULL, NULL,
			     "role \"analysts\" is not defined in " POLICY);
	expect_explain_error(f, "kind:jobs", "api", NULL, NULL,
			     "unknown kind \"jobs\" (expected job, notebook, cluster or service)");
	expect_explain_error(f, "spiffe://acme.example/job", "api", NULL, NULL,
			     "bad SPIFFE ID \"spiffe://acme.example/job\": expected "
			     "spiffe://<trust-domain>/<kind>/<name>");
}

/* A SPIFFE ID takes its roles from the config's workload of that ID, and
 * has none without a config. */
static void test_source_roles(void **state)
{
	struct fixture *f = *state;
	struct policy_source src;
	struct errmsg err = {};

	assert_int_equal(policy_source_parse("spiffe://acme.example/job/2", &f->pol, &f->cfg, &src,
					     &err), 0);
	assert_int_equal(src.id.kind, WL_KIND_JOB);
	assert_string_equal(src.id.spiffe_id, "spiffe://acme.example/job/2");
	assert_int_equal(src.id.nr_roles, 1);
	assert_string_equal(src.id.roles[0], "etl");
	assert_int_equal(policy_source_parse("spiffe://acme.example/job/2", &f->pol, NULL, &src,
					     &err), 0);
	assert_int_equal(src.id.nr_roles, 0);
	assert_int_equal(policy_source_parse("etl", &f->pol, NULL, &src, &err), 0);
	assert_null(src.id.spiffe_id);
	assert_int_equal(src.id.kind, 0);
	assert_int_equal(src.id.nr_roles, 1);
	assert_string_equal(src.id.roles[0], "etl");
	assert_int_equal(policy_source_parse("kind:notebook", &f->pol, NULL, &src, &err), 0);
	assert_int_equal(src.id.kind, WL_KIND_NOTEBOOK);
	assert_int_equal(src.id.nr_roles, 0);
}

static json_t *run_cases(struct fixture *f, const char *file)
{
	struct policy_cases cs;
	struct errmsg err = {};
	json_t *doc = NULL;

	if (policy_cases_load(file, &f->pol, &f->cfg, &cs, &err) ||
	    policy_cases_run(&f->pol, &cs, &doc, &err))
		fail_msg("%s", err.msg);
	policy_cases_free(&cs);
	return doc;
}

static void test_cases_pass(void **state)
{
	json_t *doc = run_cases(*state, DATA "cases.yaml");
	char *out = print_doc(doc, policy_cases_print);

	assert_string_equal(out, "ok   job 1 reaches spec by its workload rule\n"
				 "ok   notebooks cannot use spec\n"
				 "ok   the first of two equal rules\n"
				 "ok   named rules answer to their number too\n"
				 "ok   " DATA "cases.yaml:23\n"
				 "ok   jobs may not delete\n"
				 "ok   watched in audit mode\n"
				 "7 passed, 0 failed\n");
	assert_int_equal(json_integer_value(json_object_get(doc, "passed")), 7);
	assert_int_equal(json_integer_value(json_object_get(doc, "failed")), 0);
	free(out);
	json_decref(doc);
}

static void test_cases_fail(void **state)
{
	json_t *doc = run_cases(*state, DATA "cases-fail.yaml"), *c;
	char *out = print_doc(doc, policy_cases_print);

	assert_string_equal(out,
			    "FAIL notebooks cannot read the warehouse: expected deny by default, "
			    "got allow by rule db-port (" POLICY ":45)\n"
			    "ok   this one holds\n"
			    "FAIL " DATA "cases-fail.yaml:13: expected allow by rule api-read, got "
			    "allow by rule api-admin-health (" POLICY ":124)\n"
			    "FAIL an audit deny is no allow: expected allow, got would-deny by rule "
			    "watched-audit (" POLICY ":150)\n"
			    "1 passed, 3 failed\n");
	assert_int_equal(json_integer_value(json_object_get(doc, "passed")), 1);
	assert_int_equal(json_integer_value(json_object_get(doc, "failed")), 3);
	c = json_array_get(json_object_get(doc, "cases"), 0);
	assert_true(json_is_false(json_object_get(c, "ok")));
	assert_int_equal(json_integer_value(json_object_get(c, "line")), 4);
	assert_string_equal(json_string_value(json_object_get(c, "expect")), "deny");
	assert_string_equal(json_string_value(json_object_get(c, "expect_rule")), "default");
	assert_string_equal(json_string_value(json_object_get(c, "verdict")), "allow");
	assert_string_equal(json_string_value(json_object_get(c, "rule")), "db-port");
	assert_int_equal(json_integer_value(json_object_get(c, "rule_line")), 45);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(c, "explain"), "destination")),
		"10.1.0.5:5432/tcp");
	c = json_array_get(json_object_get(doc, "cases"), 1);
	assert_true(json_is_true(json_object_get(c, "ok")));
	assert_true(json_is_null(json_object_get(c, "why")));
	assert_true(json_is_null(json_object_get(c, "expect_rule")));
	free(out);
	json_decref(doc);
}

/* Each file breaks one rule of the cases format at the line named. */
static const struct bad_case bad_cases[] = {
	{ "bad-case-key.yaml", 5, "unknown key \"expct\"" },
	{ "bad-case-no-expect.yaml", 6, "missing required key \"expect\"" },
	{ "bad-case-from.yaml", 3,
	  "unknown source \"analysts\": expected a SPIFFE ID, role:NAME, kind:KIND or a role "
	  "of " POLICY },
	{ "bad-case-from-id.yaml", 2,
	  "bad SPIFFE ID \"spiffe://acme.example/jobs/1\": kind must be job, notebook, cluster "
	  "or service" },
	{ "bad-case-to.yaml", 3, "unknown service \"warehous\" in " POLICY },
	{ "bad-case-address.yaml", 3,
	  "bad destination \"10.3.0.1:99999\": expected a service of " POLICY
	  " or ADDR:PORT (a.b.c.d:p or [v6]:p, optionally with /tcp or /udp)" },
	{ "bad-case-not-http.yaml", 3,
	  "\"spec\" is not a protocol: http service (a method and path need one)" },
	{ "bad-case-method-alone.yaml", 4, "\"method\" and \"path\" go together" },
	{ "bad-case-method.yaml", 4, "bad method \"GET /x\": expected a token such as GET" },
	{ "bad-case-path.yaml", 5, "bad path \"/../etc\": \"..\" above the root in path" },
	{ "bad-case-expect.yaml", 4,
	  "unknown expect \"permit\" (expected allow, deny or would-deny)" },
	{ "bad-case-rule.yaml", 5,
	  "unknown rule \"spec-anything\" in " POLICY " (expected a rule's name, #N or default)" },
	{ "bad-case-rule-number.yaml", 5,
	  "unknown rule \"#99\" in " POLICY " (expected a rule's name, #N or default)" },
	{ "bad-case-top-key.yaml", 1, "unknown key \"case\"" },
	{ "bad-case-empty.yaml", 1, "no cases" },
	{ "bad-case-list.yaml", 2, "expected a sequence for \"cases\", got a mapping" },
};

static void test_bad_cases_file(void **state)
{
	const struct bad_case *c = *state;
	char path[256], want[1024];
	struct policy_cases cs;
	struct fixture f = {};
	struct errmsg err = {};
	void *fs = &f;

	assert_int_equal(setup(&fs), 0);
	bad_case_expect(DATA, c, path, sizeof(path), want, sizeof(want));
	assert_int_equal(policy_cases_load(path, &((struct fixture *)fs)->pol,
					   &((struct fixture *)fs)->cfg, &cs, &err),
			 -EINVAL);
	assert_string_equal(err.msg, want);
	assert_null(cs.cases);
	teardown(&fs);
}

/* The binary beside this one's directory: BUILD/tests/test_x ->
 * BUILD/sluicectl, which `make all` builds (make check does, first); for
 * the sanitizer build (BUILD/san/tests/test_x), the plain one above it. */
static bool find_ctl(char *buf, size_t len)
{
	/* Room left in buf for "/sluicectl". */
	char self[PATH_MAX - 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n < 0)
		return false;
	self[n] = '\0';
	for (int i = 0; i < 3 && (slash = strrchr(self, '/')); i++) {
		*slash = '\0';
		snprintf(buf, len, "%s/sluicectl", self);
		if (i && !access(buf, X_OK))
			return true;
	}
	return false;
}

static int run_ctl(const char *ctl, const char *cases)
{
	char *argv[] = { (char *)ctl, "policy", "test", POLICY, (char *)cases, "-c", CONFIG, NULL };
	posix_spawn_file_actions_t fa;
	int status;
	pid_t pid;

	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0), 0);
	assert_int_equal(posix_spawn(&pid, ctl, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_ctl_exit_status(void **state)
{
	char ctl[PATH_MAX];

	if (!find_ctl(ctl, sizeof(ctl))) {
		print_message("skipped: %s is not built (make all)\n", ctl);
		skip();
	}
	assert_int_equal(run_ctl(ctl, DATA "cases.yaml"), 0);
	assert_int_equal(run_ctl(ctl, DATA "cases-fail.yaml"), 1);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test_setup_teardown(test_precedence_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_explain_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_explain_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_explain_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_explain_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_roles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cases_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cases_fail, setup, teardown),
		cmocka_unit_test(test_ctl_exit_status),
	};

	return run_with_bad_files("policy_explain", fixed, ARRAY_SIZE(fixed), bad_cases,
				  ARRAY_SIZE(bad_cases), test_bad_cases_file);
}
