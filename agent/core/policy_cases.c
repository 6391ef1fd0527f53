// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_cases.h"
#include "yamlx.h"

struct cases_ctx {
	const struct policy *pol;
	const struct config *cfg;
};

static const char *const expect_names[] = {
	[EXPECT_ALLOW] = "allow",
	[EXPECT_DENY] = "deny",
	[EXPECT_WOULD_DENY] = "would-deny",
};

/* A rule as a case or a document names it (policy_explain_rule()): its
 * name, "#N" or "default"; POLICY_CASE_ANY_RULE when pol has no such
 * rule. */
static int rule_index(const struct policy *pol, const char *s)
{
	char *end;
	long n;

	if (!strcmp(s, "default"))
		return -1;
	if (s[0] == '#') {
		n = strtol(s + 1, &end, 10);
		if (s[1] < '1' || s[1] > '9' || *end || n > pol->nr_rules)
			return POLICY_CASE_ANY_RULE;
		return n - 1;
	}
	for (int i = 0; i < pol->nr_rules; i++) {
		if (pol->rules[i].name && !strcmp(pol->rules[i].name, s))
			return i;
	}
	return POLICY_CASE_ANY_RULE;
}

static int parse_expect(struct yamlx *y, const struct yamlx_val *v, struct policy_case *c,
			struct errmsg *err)
{
	const char *s;
	int ret;

	ret = yamlx_str(y, v, &s, err);
	if (ret)
		return ret;
	for (int e = EXPECT_ALLOW; e <= EXPECT_WOULD_DENY; e++) {
		if (!strcmp(s, expect_names[e])) {
			c->expect = e;
			return 0;
		}
	}
	return yamlx_error(y, v->node, err,
			   "unknown expect \"%s\" (expected allow, deny or would-deny)", s);
}

static int parse_rule(struct yamlx *y, const struct yamlx_val *v, const struct policy *pol,
		      struct policy_case *c, struct errmsg *err)
{
	const char *s;
	int ret;

	ret = yamlx_str(y, v, &s, err);
	if (ret)
		return ret;
	c->rule = rule_index(pol, s);
	if (c->rule == POLICY_CASE_ANY_RULE)
		return yamlx_error(y, v->node, err,
				   "unknown rule \"%s\" in %s (expected a rule's name, #N or "
				   "default)",
				   s, pol->path);
	return 0;
}

/* method and path, each checked where it is written. */
static int parse_request(struct yamlx *y, const struct yamlx_field *method,
			 const struct yamlx_field *path, struct policy_case *c, struct errmsg *err)
{
	char norm[L7_PATH_MAX];
	struct errmsg why = {};
	int ret;

	if (!method->v.node != !path->v.node)
		return yamlx_error(y, (method->key_node ? method : path)->key_node, err,
				   "\"method\" and \"path\" go together");
	if (!method->v.node)
		return 0;
	ret = yamlx_strdup(y, &method->v, &c->method, err);
	if (!ret)
		ret = yamlx_strdup(y, &path->v, &c->path, err);
	if (ret)
		return ret;
	/* The method alone first, so that its error points at its line. */
	if (policy_request_parse(c->method, "/", norm, &why))
		return yamlx_error(y, method->v.node, err, "%s", why.msg);
	if (policy_request_parse(c->method, c->path, norm, &why))
		return yamlx_error(y, path->v.node, err, "%s", why.msg);
	return 0;
}

static int parse_case(struct yamlx *y, const struct yamlx_val *v, void *elem, void *ctxp,
		      struct errmsg *err)
{
	enum { C_NAME, C_FROM, C_TO, C_METHOD, C_PATH, C_EXPECT, C_RULE, NR_C };
	struct yamlx_field f[NR_C] = {
		[C_NAME] = { .key = "name" },
		[C_FROM] = { .key = "from", .required = true },
		[C_TO] = { .key = "to", .required = true },
		[C_METHOD] = { .key = "method" },
		[C_PATH] = { .key = "path" },
		[C_EXPECT] = { .key = "expect", .required = true },
		[C_RULE] = { .key = "rule" },
	};
	const struct cases_ctx *ctx = ctxp;
	struct policy_case *c = elem;
	struct policy_dest dest;
	struct errmsg why = {};
	int ret;

	c->line = yamlx_line(v->node);
	c->rule = POLICY_CASE_ANY_RULE;
	ret = yamlx_fields(y, v, f, NR_C, err);
	if (ret)
		return ret;
	if (f[C_NAME].v.node)
		ret = yamlx_strdup(y, &f[C_NAME].v, &c->name, err);
	else if (asprintf(&c->name, "%s:%d", y->path, c->line) < 0)
		ret = yamlx_nomem(y, err);
	if (!ret)
		ret = yamlx_strdup(y, &f[C_FROM].v, &c->from, err);
	if (ret)
		return ret;
	if (policy_source_parse(c->from, ctx->pol, ctx->cfg, &c->src, &why))
		return yamlx_error(y, f[C_FROM].v.node, err, "%s", why.msg);
	ret = parse_request(y, &f[C_METHOD], &f[C_PATH], c, err);
	if (!ret)
		ret = yamlx_strdup(y, &f[C_TO].v, &c->to, err);
	if (ret)
		return ret;
	if (policy_dest_parse(ctx->pol, c->to, c->method, &dest, &why))
		return yamlx_error(y, f[C_TO].v.node, err, "%s", why.msg);
	ret = parse_expect(y, &f[C_EXPECT].v, c, err);
	if (!ret && f[C_RULE].v.node)
		ret = parse_rule(y, &f[C_RULE].v, ctx->pol, c, err);
	return ret;
}

int policy_cases_load(const char *path, const struct policy *pol, const struct config *cfg,
		      struct policy_cases *cs, struct errmsg *err)
{
	struct yamlx_field f[] = { { .key = "cases", .required = true } };
	struct cases_ctx ctx = { .pol = pol, .cfg = cfg };
	struct yamlx_val root;
	struct yamlx y;
	int ret;

	memset(cs, 0, sizeof(*cs));
	ret = yamlx_load(&y, path, err);
	if (ret)
		return ret;
	cs->path = strdup(path);
	if (!cs->path) {
		ret = yamlx_nomem(&y, err);
		goto out;
	}
	yamlx_root(&y, &root);
	ret = yamlx_fields(&y, &root, f, 1, err);
	if (!ret)
		ret = yamlx_array(&y, &f[0].v, POLICY_MAX_CASES, sizeof(*cs->cases),
				  (void **)&cs->cases, &cs->nr, parse_case, &ctx, err);
	if (!ret && !cs->nr)
		ret = yamlx_error(&y, f[0].v.node, err, "no cases");
out:
	yamlx_free(&y);
	if (ret)
		policy_cases_free(cs);
	return ret;
}

void policy_cases_free(struct policy_cases *cs)
{
	for (int i = 0; i < cs->nr; i++) {
		free(cs->cases[i].name);
		free(cs->cases[i].from);
		free(cs->cases[i].to);
		free(cs->cases[i].method);
		free(cs->cases[i].path);
	}
	free(cs->cases);
	free(cs->path);
	memset(cs, 0, sizeof(*cs));
}

static enum policy_expect verdict_of(const json_t *doc)
{
	if (json_is_true(json_object_get(doc, "would_deny")))
		return EXPECT_WOULD_DENY;
	return strcmp(json_string_value(json_object_get(doc, "verdict")), "allow") ? EXPECT_DENY
										   : EXPECT_ALLOW;
}

/* "expected deny by default, got allow by rule nb-wh (policy.yaml:31)" */
static char *mismatch(const struct policy *pol, const struct policy_case *c, enum policy_expect got,
		      int rule, const json_t *doc)
{
	char want[96] = "", name[80];
	char *why;
	int n;

	if (c->rule == -1)
		snprintf(want, sizeof(want), " by default");
	else if (c->rule >= 0)
		snprintf(want, sizeof(want), " by rule %s",
			 policy_explain_rule(pol, c->rule, name, sizeof(name)));
	if (rule < 0)
		n = asprintf(&why, "expected %s%s, got %s by default", expect_names[c->expect], want,
			     expect_names[got]);
	else
		n = asprintf(&why, "expected %s%s, got %s by rule %s (%s:%lld)",
			     expect_names[c->expect], want, expect_names[got],
			     json_string_value(json_object_get(doc, "rule")), pol->path,
			     (long long)json_integer_value(json_object_get(doc, "line")));
	return n < 0 ? NULL : why;
}

static int case_run(const struct policy *pol, const struct policy_case *c, json_t **out,
		    bool *ok, struct errmsg *err)
{
	enum policy_expect got;
	char *why = NULL, name[80];
	json_t *doc;
	int ret, rule;

	ret = policy_explain(pol, &c->src.id, c->to, c->method, c->path, &doc, err);
	if (ret)
		return ret;
	got = verdict_of(doc);
	rule = rule_index(pol, json_string_value(json_object_get(doc, "rule")));
	*ok = got == c->expect && (c->rule == POLICY_CASE_ANY_RULE || c->rule == rule);
	if (!*ok && !(why = mismatch(pol, c, got, rule, doc))) {
		json_decref(doc);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	*out = json_pack("{s:s, s:i, s:b, s:s, s:o, s:s, s:b, s:O, s:O, s:o, s:o}", "name",
			 c->name, "line", c->line, "ok", *ok, "expect", expect_names[c->expect],
			 "expect_rule",
			 c->rule == POLICY_CASE_ANY_RULE
				 ? json_null()
				 : json_string(policy_explain_rule(pol, c->rule, name, sizeof(name))),
			 "verdict", json_string_value(json_object_get(doc, "verdict")),
			 "would_deny", got == EXPECT_WOULD_DENY, "rule",
			 json_object_get(doc, "rule"), "rule_line", json_object_get(doc, "line"),
			 "why", why ? json_string(why) : json_null(), "explain", doc);
	free(why);
	return *out ? 0 : errmsg_set(err, -ENOMEM, "out of memory");
}

int policy_cases_run(const struct policy *pol, const struct policy_cases *cs, json_t **out,
		     struct errmsg *err)
{
	json_t *arr = json_array(), *one;
	int passed = 0, ret = 0;
	bool ok;

	*out = NULL;
	for (int i = 0; i < cs->nr && arr && !ret; i++) {
		ret = case_run(pol, &cs->cases[i], &one, &ok, err);
		if (!ret && json_array_append_new(arr, one))
			ret = errmsg_set(err, -ENOMEM, "out of memory");
		passed += !ret && ok;
	}
	if (!ret && arr)
		*out = json_pack("{s:s, s:O, s:i, s:i}", "policy", pol->path, "cases", arr,
				 "passed", passed, "failed", cs->nr - passed);
	json_decref(arr);
	if (!ret && !*out)
		ret = errmsg_set(err, -ENOMEM, "out of memory");
	return ret;
}

void policy_cases_print(const json_t *doc, FILE *f)
{
	const json_t *c;
	size_t i;

	json_array_foreach(json_object_get(doc, "cases"), i, c) {
		if (json_is_true(json_object_get(c, "ok")))
			fprintf(f, "ok   %s\n", json_string_value(json_object_get(c, "name")));
		else
			fprintf(f, "FAIL %s: %s\n", json_string_value(json_object_get(c, "name")),
				json_string_value(json_object_get(c, "why")));
	}
	fprintf(f, "%lld passed, %lld failed\n",
		(long long)json_integer_value(json_object_get(doc, "passed")),
		(long long)json_integer_value(json_object_get(doc, "failed")));
}
