// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "l7.h"
#include "policy.h"
#include "spiffe.h"

#define DATA "tests/data/policy/"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct norm_case {
	const char *in;
	int ret;
	const char *out;		/* the path, or the reason for a refusal */
};

static const struct norm_case norm_cases[] = {
	{ "/", 0, "/" },
	{ "/a/b", 0, "/a/b" },
	{ "/A", 0, "/A" },
	{ "/a/", 0, "/a/" },
	{ "/a//b", 0, "/a/b" },
	{ "//a///b//", 0, "/a/b/" },
	{ "/a/./b", 0, "/a/b" },
	{ "/a/.", 0, "/a/" },
	{ "/a/b/../c", 0, "/a/c" },
	{ "/a/..", 0, "/" },
	{ "/a/%2e%2e/b", 0, "/b" },
	{ "/a/%2E/b", 0, "/a/b" },
	{ "/a/.%2e/b", 0, "/b" },
	{ "/a/...", 0, "/a/..." },
	{ "/abc/def/../../ghi", 0, "/ghi" },
	{ "/abc/def/..//../ghi/", 0, "/ghi/" },
	{ "/a/.hidden/..b", 0, "/a/.hidden/..b" },
	{ "/a?x=1", 0, "/a" },
	{ "/a?x=/../..", 0, "/a" },
	{ "/a#frag", 0, "/a" },
	{ "/caf%C3%A9", 0, "/caf\xc3\xa9" },
	{ "/a%20b", 0, "/a b" },
	{ "/%41", 0, "/A" },
	{ "/../x", -EINVAL, "\"..\" above the root in path" },
	{ "/a/../../x", -EINVAL, "\"..\" above the root in path" },
	{ "/%2e%2e/x", -EINVAL, "\"..\" above the root in path" },
	{ "/a%2fb", -EINVAL, "encoded '/', '\\' or NUL in path (%2f)" },
	{ "/a%2Fb", -EINVAL, "encoded '/', '\\' or NUL in path (%2F)" },
	{ "/a%5cb", -EINVAL, "encoded '/', '\\' or NUL in path (%5c)" },
	{ "/a%00", -EINVAL, "encoded '/', '\\' or NUL in path (%00)" },
	{ "%", -EINVAL, "request target is not a path starting with '/'" },
	{ "/%", -EINVAL, "malformed percent-escape in path" },
	{ "/%zz", -EINVAL, "malformed percent-escape in path" },
	{ "/%4", -EINVAL, "malformed percent-escape in path" },
	{ "/%4/x", -EINVAL, "malformed percent-escape in path" },
	{ "/a\\b", -EINVAL, "backslash in path" },
	{ "/a b", -EINVAL, "control character or space in path" },
	{ "/a\tb", -EINVAL, "control character or space in path" },
	{ "/a\x7f", -EINVAL, "control character or space in path" },
	{ "*", -EINVAL, "request target is not a path starting with '/'" },
	{ "http://h/a", -EINVAL, "request target is not a path starting with '/'" },
	{ "", -EINVAL, "request target is not a path starting with '/'" },
	{ "?x", -EINVAL, "request target is not a path starting with '/'" },
};

static void test_normalize_table(void **state)
{
	char out[L7_PATH_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(norm_cases); i++) {
		const struct norm_case *c = &norm_cases[i];
		struct errmsg err = {};
		int ret;

		ret = l7_path_normalize(c->in, strlen(c->in), out, sizeof(out), &err);
		if (ret != c->ret)
			fail_msg("\"%s\": returned %d, want %d (%s)", c->in, ret, c->ret, err.msg);
		if (!ret && strcmp(out, c->out))
			fail_msg("\"%s\": got \"%s\", want \"%s\"", c->in, out, c->out);
		if (ret && strcmp(err.msg, c->out))
			fail_msg("\"%s\": reason \"%s\", want \"%s\"", c->in, err.msg, c->out);
	}
}

/* len bounds the target: a NUL inside it is a byte like any other (and
 * refused), bytes after it are not read. */
static void test_normalize_len(void **state)
{
	struct errmsg err = {};
	char out[16];

	assert_int_equal(l7_path_normalize("/ab/cd", 3, out, sizeof(out), &err), 0);
	assert_string_equal(out, "/ab");
	assert_int_equal(l7_path_normalize("/a\0b", 4, out, sizeof(out), &err), -EINVAL);
	assert_string_equal(err.msg, "control character or space in path");
}

static void test_normalize_too_long(void **state)
{
	struct errmsg err = {};
	char out[8];

	assert_int_equal(l7_path_normalize("/abcdef", 7, out, sizeof(out), &err), 0);
	assert_string_equal(out, "/abcdef");
	assert_int_equal(l7_path_normalize("/abcdefg", 8, out, sizeof(out), &err),
			 -ENAMETOOLONG);
	assert_string_equal(err.msg, "path longer than 7 bytes");
	assert_int_equal(l7_path_normalize("/abcdef/", 8, out, sizeof(out), &err),
			 -ENAMETOOLONG);
}

struct match_case {
	const char *pattern;
	const char *path;
	bool match;
};

static const struct match_case match_cases[] = {
	{ "/a/b", "/a/b", true },
	{ "/a/b", "/a/b/", false },
	{ "/a/b", "/a/bc", false },
	{ "/a/b", "/A/b", false },
	{ "/", "/", true },
	{ "/", "/a", false },
	{ "/api/*/jobs", "/api/7/jobs", true },
	{ "/api/*/jobs", "/api//jobs", false },	/* never normalised so, but empty */
	{ "/api/*/jobs", "/api/jobs", false },
	{ "/api/*/jobs", "/api/7/8/jobs", false },
	{ "/api/*", "/api/", false },
	{ "/api/**", "/api", true },
	{ "/api/**", "/api/", true },
	{ "/api/**", "/api/x/y", true },
	{ "/api/**", "/apix", false },
	{ "/api/**", "/", false },
	{ "/**", "/", true },
	{ "/**", "/anything/at/all", true },
	{ "/*/b/**", "/a/b/c", true },
	{ "/*/b/**", "/a/c/b", false },
	{ "/a/*", "/a/b/", false },
	{ "/a/*/", "/a/b/", true },
	{ "/a/", "/a/", true },
	{ "/a/", "/a", false },
	{ "/a/", "/a/b", false },
	{ "/*", "/", false },
	{ "/*", "/*", true },
	{ "/a/**", "/a/**", true },
};

static void test_path_match(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(match_cases); i++) {
		const struct match_case *c = &match_cases[i];

		if (l7_path_match(c->pattern, c->path) != c->match)
			fail_msg("\"%s\" against \"%s\": want %s", c->pattern, c->path,
				 c->match ? "a match" : "no match");
	}
}

static void test_host_match(void **state)
{
	assert_true(l7_host_match("api.acme.example", "api.acme.example"));
	assert_false(l7_host_match("api.acme.example", "x.api.acme.example"));
	assert_true(l7_host_match("*.acme.example", "api.acme.example"));
	assert_true(l7_host_match("*.acme.example", "a.b.acme.example"));
	assert_false(l7_host_match("*.acme.example", "acme.example"));
	assert_false(l7_host_match("*.acme.example", "evilacme.example"));
	assert_false(l7_host_match("*.acme.example", "api.acme.example.evil"));
}

struct host_case {
	const char *in;
	int ret;
	const char *out;
};

static const struct host_case host_cases[] = {
	{ "API.Acme.Example", 0, "api.acme.example" },
	{ "api.acme.example:8443", 0, "api.acme.example" },
	{ "api.acme.example.", 0, "api.acme.example" },
	{ "api.acme.example.:443", 0, "api.acme.example" },
	{ "api.acme.example:", 0, "api.acme.example" },
	{ "10.0.0.1:80", 0, "10.0.0.1" },
	{ "[FD00::1]:8080", 0, "[fd00::1]" },
	{ "[::1]", 0, "[::1]" },
	{ "", -EINVAL, NULL },
	{ ":80", -EINVAL, NULL },
	{ ".", -EINVAL, NULL },
	{ "a:b:c", -EINVAL, NULL },
	{ "a:99999", -EINVAL, NULL },
	{ "a:8x", -EINVAL, NULL },
	{ "user@host", -EINVAL, NULL },
	{ "host/path", -EINVAL, NULL },
	{ "a%2eb", -EINVAL, NULL },
	{ "a b", -EINVAL, NULL },
	{ "[::1", -EINVAL, NULL },
	{ "[]", -EINVAL, NULL },
	{ "[::1]x", -EINVAL, NULL },
	{ "[fe80::1%eth0]", -EINVAL, NULL },
	{ "[::g]", -EINVAL, NULL },
};

static void test_host_normalize(void **state)
{
	char out[L7_HOST_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(host_cases); i++) {
		const struct host_case *c = &host_cases[i];
		int ret = l7_host_normalize(c->in, out, sizeof(out));

		if (ret != c->ret)
			fail_msg("\"%s\": returned %d, want %d", c->in, ret, c->ret);
		if (!ret && strcmp(out, c->out))
			fail_msg("\"%s\": got \"%s\", want \"%s\"", c->in, out, c->out);
	}
	assert_int_equal(l7_host_normalize("abcd", out, 4), -ENAMETOOLONG);
	assert_int_equal(l7_host_normalize("abc", out, 4), 0);
}

static const char *const analyst[] = { "analyst" };

/* Callers of the precedence table. */
static const struct policy_identity nobody = { .id = 1 };
static const struct policy_identity job = {
	.id = 2, .spiffe_id = "spiffe://acme.example/job/etl", .kind = WL_KIND_JOB,
};
static const struct policy_identity analyst_user = {
	.id = 3, .roles = (char *const *)analyst, .nr_roles = 1,
};
static const struct policy_identity notebook7 = {
	.id = 4, .spiffe_id = "spiffe://acme.example/notebook/7", .kind = WL_KIND_NOTEBOOK,
	.roles = (char *const *)analyst, .nr_roles = 1,
};

struct prec_case {
	const char *why;
	const struct policy_identity *caller;
	const char *service;
	const char *method, *path, *host;
	bool allow;
	const char *rule;		/* NULL: the default */
};

/* Rules of tests/data/policy/l7.yaml; default deny. */
static const struct prec_case prec_cases[] = {
	{ "a method-restricted rule without paths", &nobody, "api", "GET", "/foo", NULL, true,
	  "any-read" },
	{ "no rule admits DELETE: the default", &nobody, "api", "DELETE", "/foo", NULL, false,
	  NULL },
	{ "a prefix beats a rule without paths", &nobody, "api", "GET", "/admin/users", NULL,
	  false, "admin-deny" },
	{ "\"/**\" holds the path before it", &nobody, "api", "GET", "/admin", NULL, false,
	  "admin-deny" },
	{ "exact beats prefix", &nobody, "api", "GET", "/admin/health", NULL, true,
	  "admin-health" },
	{ "paths are case-sensitive", &nobody, "api", "GET", "/Admin/users", NULL, true,
	  "any-read" },
	{ "more literal segments beat a wider prefix, whatever the source", &job, "api", "GET",
	  "/api/7/jobs", NULL, true, "jobs-one" },
	{ "the path before the source: an exact path for any beats a role's prefix",
	  &analyst_user, "api", "GET", "/api/status", NULL, true, "status" },
	{ "the role's prefix beats any's prefix", &analyst_user, "api", "GET", "/api/x", NULL,
	  false, "analyst-api-deny" },
	{ "the kind rule does not match another caller", &nobody, "api", "GET", "/api/7/jobs",
	  NULL, false, "api-deny" },
	{ "'*' is exactly one segment", &job, "api", "GET", "/api/7/jobs/x", NULL, false,
	  "api-deny" },
	{ "role beats any at the same path", &analyst_user, "api", "GET", "/reports/q1", NULL,
	  true, "analyst-reports" },
	{ "no role: the any rule", &nobody, "api", "GET", "/reports/q1", NULL, false,
	  "any-reports" },
	{ "workload beats role", &notebook7, "api", "GET", "/reports/q1", NULL, false,
	  "notebook-reports" },
	{ "a method-restricted allow beats a broad deny", &nobody, "api", "POST", "/upload/f",
	  NULL, true, "upload-post" },
	{ "other methods fall to the broad deny", &nobody, "api", "PUT", "/upload/f", NULL,
	  false, "upload-deny" },
	{ "methods are case-sensitive", &nobody, "api", "post", "/upload/f", NULL, false,
	  "upload-deny" },
	{ "deny beats allow at a full tie", &nobody, "web", "GET", "/x", "web.example", false,
	  "x-deny" },
	{ "a host-restricted allow beats a rule without hosts", &nobody, "web", "GET", "/y",
	  "a.internal.example", true, "internal-hosts" },
	{ "\"*.\" needs a label in front", &nobody, "web", "GET", "/y", "internal.example",
	  false, "web-deny" },
	{ "no host: host rules do not match", &nobody, "web", "GET", "/y", NULL, false,
	  "web-deny" },
	{ "fewer wildcards win at equal literals", &nobody, "other", "GET", "/a/b/c", NULL, true,
	  "below-a" },
	{ "a rule for another service never applies", &nobody, "other", "GET", "/x", NULL,
	  false, NULL },
	{ "an L4 rule decides a request too", &nobody, "db", "GET", "/", NULL, true, "db-l4" },
	{ "not through the edge: a via: edge rule does not match", &analyst_user, "api", "GET",
	  "/edge-only/x", NULL, false, "edge-only" },
};

static int service_index(const struct policy *pol, const char *name)
{
	for (int i = 0; i < pol->nr_services; i++) {
		if (!strcmp(pol->services[i].name, name))
			return i;
	}
	fail_msg("no service %s", name);
	return -1;
}

static void load(struct policy *pol)
{
	struct errmsg err = {};

	if (policy_load(DATA "l7.yaml", pol, &err))
		fail_msg("%s", err.msg);
}

static void test_precedence_table(void **state)
{
	struct decision d;
	struct policy pol;

	load(&pol);
	for (size_t i = 0; i < ARRAY_SIZE(prec_cases); i++) {
		const struct prec_case *c = &prec_cases[i];
		struct http_req req = { .method = c->method, .path = c->path, .host = c->host };
		int svc = service_index(&pol, c->service);
		const char *got;

		policy_decide_http(&pol, c->caller, svc, &req, &d);
		got = d.rule < 0 ? NULL : pol.rules[d.rule].name;
		if (d.allow != c->allow || (got == NULL) != (c->rule == NULL) ||
		    (got && strcmp(got, c->rule)))
			fail_msg("%s: %s %s on %s: got %s by %s, want %s by %s", c->why, c->method,
				 c->path, c->service, d.allow ? "allow" : "deny",
				 got ? got : "the default", c->allow ? "allow" : "deny",
				 c->rule ? c->rule : "the default");
		if (!c->rule) {
			assert_int_equal(d.reason, SLUICE_REASON_DEFAULT_DENY);
			assert_int_equal(d.service, -1);
		} else {
			assert_int_equal(d.reason,
					 d.allow ? SLUICE_REASON_NONE : SLUICE_REASON_POLICY_DENY);
			assert_int_equal(d.service, svc);
		}
	}
	policy_free(&pol);
}

/* Through the edge, a via: edge rule weighs as any other; other callers
 * fall to the rules without it. */
static void test_via_edge(void **state)
{
	struct http_req req = { .method = "GET", .path = "/edge-only/x", .via_edge = true };
	struct decision d;
	struct policy pol;

	load(&pol);
	policy_decide_http(&pol, &analyst_user, service_index(&pol, "api"), &req, &d);
	assert_true(d.allow);
	assert_string_equal(pol.rules[d.rule].name, "edge-analysts");
	policy_decide_http(&pol, &nobody, service_index(&pol, "api"), &req, &d);
	assert_false(d.allow);
	assert_string_equal(pol.rules[d.rule].name, "edge-only");
	policy_free(&pol);
}

static void test_default_allow(void **state)
{
	struct http_req req = { .method = "GET", .path = "/zzz" };
	struct decision d;
	struct policy pol;

	load(&pol);
	pol.default_allow = true;
	policy_decide_http(&pol, &nobody, service_index(&pol, "other"), &req, &d);
	assert_true(d.allow);
	assert_int_equal(d.reason, SLUICE_REASON_NONE);
	assert_int_equal(d.rule, -1);
	policy_free(&pol);
}

static void test_edge_route(void **state)
{
	static const struct {
		const char *path;
		const char *prefix;
	} cases[] = {
		{ "/api/x", "/api/" },
		{ "/api", "/api/" },
		{ "/api/", "/api/" },
		{ "/api/v2/jobs", "/api/v2/" },
		{ "/api/v2", "/api/v2/" },
		{ "/api/v20", "/api/" },
		{ "/health", "/health" },
		{ "/health/x", "/" },
		{ "/healthz", "/" },
		{ "/", "/" },
		{ "/apix", "/" },
	};
	struct policy pol;
	int r;

	load(&pol);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		r = policy_edge_route(&pol, cases[i].path);
		if (r < 0 || strcmp(pol.edge.routes[r].prefix, cases[i].prefix))
			fail_msg("%s: got %s, want %s", cases[i].path,
				 r < 0 ? "no route" : pol.edge.routes[r].prefix, cases[i].prefix);
	}
	pol.edge.nr_routes = 3;	/* without "/" */
	assert_int_equal(policy_edge_route(&pol, "/other"), -1);
	pol.edge.nr_routes = 4;
	policy_free(&pol);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize_table),
		cmocka_unit_test(test_normalize_len),
		cmocka_unit_test(test_normalize_too_long),
		cmocka_unit_test(test_path_match),
		cmocka_unit_test(test_host_match),
		cmocka_unit_test(test_host_normalize),
		cmocka_unit_test(test_precedence_table),
		cmocka_unit_test(test_via_edge),
		cmocka_unit_test(test_default_allow),
		cmocka_unit_test(test_edge_route),
	};

	return cmocka_run_group_tests_name("l7", tests, NULL, NULL);
}
