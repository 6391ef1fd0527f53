// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The edge's decision for one auth_request subrequest: the bearer token
 * (verified, introspected or found in the cache), the caller's roles, the
 * policy's answer for (caller, service, method, path, host), an audit
 * line, and on allow the caller assertion.
 *
 * Nothing here echoes token material: answers and audit lines name a
 * token by its jti and kid, and reasons are this file's own words.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "assertion.h"
#include "audit.h"
#include "clock.h"
#include "edge_int.h"
#include "jwt.h"
#include "l7.h"
#include "log.h"
#include "oidc.h"
#include "tracectx.h"
#include "utf8.h"

#define INTRO_LOG_NS (10 * 1000000000ull)

int edge_core_new(const struct config *cfg, const struct edge_deps *deps, struct edge **out,
		  struct errmsg *err)
{
	struct edge *e = calloc(1, sizeof(*e));

	if (!e)
		return errmsg_set(err, -ENOMEM, "edge: out of memory");
	e->cfg = cfg;
	e->deps = *deps;
	edge_cache_init(&e->cache, cfg->edge.cache_max, cfg->edge.cache_ttl_s);
	*out = e;
	return 0;
}

void edge_core_free(struct edge *e)
{
	edge_cache_free(&e->cache);
	free(e);
}

void edge_set_policy(struct edge *e, const struct policy *pol, uint32_t generation)
{
	/* Cached roles point into the old policy and were mapped by it. */
	edge_cache_clear(&e->cache);
	/* cfg is the agent's, which a reload replaced in place. */
	e->cache.ttl_s = e->cfg->edge.cache_ttl_s;
	e->pol = pol;
	e->generation = generation;
}

void edge_get_stats(const struct edge *e, struct edge_stats *out)
{
	*out = e->stats;
	out->cache_entries = e->cache.nr;
}

void edge_answer_release(struct edge_answer *ans)
{
	free(ans->assertion);
	ans->assertion = NULL;
}

/* What one decision collected, for its answer and its audit line. */
struct edge_ctx {
	const struct edge_req *req;
	struct edge_answer *ans;
	const char *code;		/* the audit reason */
	const char *service;		/* a valid name, or NULL */
	char path[L7_PATH_MAX];
	char host[L7_HOST_MAX];
	struct edge_caller caller;
	bool have_caller;
	uint8_t key[SHA256_DIGEST_LENGTH];	/* the token's, once authenticated */
};

static void sanitize(char *s)
{
	/* Reasons go into a header: no control characters, no quotes. */
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"' || *s == '\\')
			*s = '?';
	}
}

static void __attribute__((format(printf, 4, 5)))
answer(struct edge_ctx *x, int status, const char *code, const char *fmt, ...)
{
	struct edge_answer *ans = x->ans;
	char words[EDGE_REASON_MAX - 40];	/* room for a code of 32 */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(words, sizeof(words), fmt, ap);
	va_end(ap);
	sanitize(words);
	ans->status = status;
	x->code = code;
	snprintf(ans->reason, sizeof(ans->reason), "%.32s: %s", code, words);
}

/* RFC 6750 3: no error without a token (3.1), invalid_token with one. */
static void unauthorized(struct edge_ctx *x, bool had_token, const char *code, const char *words)
{
	struct edge_answer *ans = x->ans;

	answer(x, 401, code, "%s", words);
	if (!had_token)
		snprintf(ans->www_authenticate, sizeof(ans->www_authenticate),
			 "Bearer realm=\"sluice\"");
	else
		snprintf(ans->www_authenticate, sizeof(ans->www_authenticate),
			 "Bearer realm=\"sluice\", error=\"invalid_token\", "
			 "error_description=\"%s\"",
			 ans->reason);
}

static bool b64token_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

/*
 * RFC 6750 2.1: "Bearer" (any case), one space, a b64token. 1 with *tok,
 * 0 when there is no bearer token (no header, another scheme), -1 for a
 * malformed one.
 */
static int bearer_token(const char *auth, const char **tok)
{
	const char *p;

	if (!auth || strncasecmp(auth, "Bearer", 6) || (auth[6] && auth[6] != ' '))
		return 0;
	p = auth + 6;
	if (*p++ != ' ' || !*p)
		return -1;
	*tok = p;
	while (b64token_char(*p))
		p++;
	while (*p == '=')
		p++;
	return *p || p == *tok ? -1 : 1;
}

static bool sub_acceptable(const char *sub)
{
	size_t len = strlen(sub), n;

	if (!len || len >= EDGE_SUB_MAX)
		return false;
	/* It becomes X-Sluice-Caller: printable, whole characters. */
	for (const char *p = sub, *end = sub + len; p < end; p += n) {
		n = utf8_char_len(p, end - p);
		if (!n || (unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	}
	return true;
}

static void caller_from_claims(struct edge *e, const char *sub, json_t *claims,
			       struct edge_caller *c)
{
	struct spiffe_id sid;
	const char *why;

	snprintf(c->sub, sizeof(c->sub), "%s", sub);
	c->kind = 0;
	/* A kind only for IDs of this trust domain: a foreign SPIFFE ID
	 * must not match `kind:` rules. */
	if (!spiffe_id_parse(sub, &sid, &why) && spiffe_id_in_domain(&sid, e->cfg->trust_domain))
		c->kind = sid.kind;
	c->nr_roles = policy_roles_from_claims(e->pol, claims, c->roles, EDGE_ROLES_MAX);
}

static int verify_jwt(struct edge *e, struct edge_ctx *x, const char *token)
{
	struct jwt_verify_opts o = {
		.issuer = e->cfg->identity.oidc_issuer,
		.audience = e->cfg->edge.audience,
		.get_key = e->deps.idp_key,
		.key_ctx = e->deps.ctx,
		.skew = e->cfg->identity.clock_skew_s,
	};
	struct jwt_result res = {};
	int ret = -EACCES;

	e->stats.verified++;
	jwt_verify(token, &o, &res);
	if (res.kid)
		utf8_copy(x->caller.kid, sizeof(x->caller.kid), res.kid);
	if (res.jti)
		utf8_copy(x->caller.jti, sizeof(x->caller.jti), res.jti);
	if (res.reason != JWT_OK) {
		pr_debug("edge: token refused: %s", res.err.msg);
		unauthorized(x, true, jwt_reason_name(res.reason), "the bearer token was refused");
	} else if (!sub_acceptable(res.sub)) {
		unauthorized(x, true, "bad-subject", "the token's sub cannot name a caller");
	} else {
		caller_from_claims(e, res.sub, res.claims, &x->caller);
		x->caller.exp = res.exp;
		ret = 0;
	}
	jwt_result_free(&res);
	return ret;
}

/* Every client of a down IdP fails at once: one line per
 * INTRO_LOG_NS, with how many failed since the last. */
static void log_introspection_failed(struct edge *e, const struct errmsg *err)
{
	uint64_t now = mono_ns();

	e->intro_failed++;
	if (e->intro_logged_ns && now - e->intro_logged_ns < INTRO_LOG_NS)
		return;
	pr_warn("edge: introspection failed (%llu requests since the last line): %s",
		(unsigned long long)e->intro_failed, err->msg);
	e->intro_failed = 0;
	e->intro_logged_ns = now;
}

/* What the IdP says of an opaque token (RFC 7662): 0, -EINPROGRESS, or
 * -EACCES with the answer set. */
static int introspect(struct edge *e, struct edge_ctx *x, const char *token)
{
	struct errmsg err = {};
	json_t *claims = NULL, *exp;
	const char *sub, *jti;
	int ret;

	if (!e->deps.oidc || !e->cfg->edge.introspection_client_id) {
		unauthorized(x, true, "opaque-token", "opaque tokens need edge.introspection");
		return -EACCES;
	}
	ret = oidc_introspect(e->deps.oidc, token, &claims, &err);
	if (ret == -EINPROGRESS) {
		x->ans->status = EDGE_PENDING;
		return ret;
	}
	if (ret == -EACCES) {
		unauthorized(x, true, "inactive", "the IdP says the token is not active");
		return ret;
	}
	if (ret) {
		log_introspection_failed(e, &err);
		answer(x, 503, "introspection-unavailable",
		       "the IdP could not be asked about the token; try again");
		return -EACCES;
	}
	e->stats.introspected++;
	sub = json_string_value(json_object_get(claims, "sub"));
	exp = json_object_get(claims, "exp");
	if ((jti = json_string_value(json_object_get(claims, "jti"))))
		utf8_copy(x->caller.jti, sizeof(x->caller.jti), jti);
	ret = -EACCES;
	if (!sub || !sub_acceptable(sub))
		unauthorized(x, true, "bad-subject", "the token's sub cannot name a caller");
	else if (exp && (!json_is_integer(exp) || json_integer_value(exp) <= time(NULL)))
		unauthorized(x, true, "expired", "the token has expired");
	else
		ret = 0;
	if (!ret) {
		caller_from_claims(e, sub, claims, &x->caller);
		x->caller.exp = exp ? json_integer_value(exp) : 0;
	}
	json_decref(claims);
	return ret;
}

/* The caller behind the Authorization header: 0, or the answer is set. */
static int authenticate(struct edge *e, struct edge_ctx *x)
{
	uint8_t *key = x->key;
	const struct edge_caller *hit;
	const char *token = NULL, *p;
	int64_t now = time(NULL);
	int dots = 0, ret;

	ret = bearer_token(x->req->authorization, &token);
	if (!ret) {
		unauthorized(x, false, "no-token", "a bearer token is required");
		return -EACCES;
	}
	if (ret < 0 || strlen(token) > JWT_MAX_LEN) {
		unauthorized(x, true, "malformed", "the Authorization header is no bearer token");
		return -EACCES;
	}
	SHA256((const unsigned char *)token, strlen(token), key);
	hit = edge_cache_get(&e->cache, key, now);
	if (hit) {
		e->stats.cache_hits++;
		x->ans->cached = true;
		x->caller = *hit;
		return 0;
	}
	for (p = token; *p; p++)
		dots += *p == '.';
	ret = dots == 2 ? verify_jwt(e, x, token) : introspect(e, x, token);
	if (!ret && edge_cache_put(&e->cache, key, &x->caller, now) == -ENOMEM)
		pr_warn("edge: no memory for the token cache; verifying every request");
	return ret;
}

static int find_service(const struct policy *pol, const char *name)
{
	for (int i = 0; i < pol->nr_services; i++) {
		if (!strcmp(pol->services[i].name, name))
			return pol->services[i].http ? i : -1;
	}
	return -1;
}

static bool method_valid(const char *m)
{
	size_t n = strlen(m);

	if (!n || n >= L7_METHOD_MAX)
		return false;
	for (; *m; m++) {
		if (!((*m >= 'A' && *m <= 'Z') || *m == '-' || *m == '_'))
			return false;
	}
	return true;
}

/* The request nginx describes: 0 with the service index, or the answer is
 * set. A missing header is nginx's misconfiguration, not the client's. */
static int request_target(struct edge *e, struct edge_ctx *x, int *service)
{
	static const struct {
		const char *name;
		size_t off;
	} need[] = {
		{ "X-Original-Method", offsetof(struct edge_req, method) },
		{ "X-Original-URI", offsetof(struct edge_req, uri) },
		{ "X-Original-Host", offsetof(struct edge_req, host) },
		{ "X-Original-Remote-Addr", offsetof(struct edge_req, remote_addr) },
		{ "X-Sluice-Service", offsetof(struct edge_req, service) },
	};
	const struct edge_req *r = x->req;
	struct errmsg err = {};

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (!*(const char *const *)((const char *)r + need[i].off)) {
			answer(x, 400, "missing-header",
			       "the subrequest has no %s header: nginx's auth_request location "
			       "must set it (render the edge config with sluice)",
			       need[i].name);
			return -EINVAL;
		}
	}
	if (!method_valid(r->method)) {
		answer(x, 400, "bad-method", "X-Original-Method is not an HTTP method");
		return -EINVAL;
	}
	if (!name_valid(r->service, "-") || (*service = find_service(e->pol, r->service)) < 0) {
		answer(x, 403, "unknown-service",
		       "the policy of generation %u has no protocol: http service of that name",
		       e->generation);
		return -EACCES;
	}
	x->service = r->service;
	if (l7_path_normalize(r->uri, strlen(r->uri), x->path, sizeof(x->path), &err)) {
		x->path[0] = '\0';
		answer(x, 403, "bad-path", "the request path cannot be decided safely: %s",
		       err.msg);
		return -EACCES;
	}
	if (l7_host_normalize(r->host, x->host, sizeof(x->host))) {
		x->host[0] = '\0';
		answer(x, 403, "bad-host", "the request's host is malformed");
		return -EACCES;
	}
	return 0;
}

static void rule_name(const struct policy *pol, int rule, char *buf, size_t len)
{
	if (rule < 0)
		snprintf(buf, len, "default");
	else if (pol->rules[rule].name)
		snprintf(buf, len, "%s", pol->rules[rule].name);
	else
		snprintf(buf, len, "line-%d", pol->rules[rule].line);
}

static void roles_list(const struct edge_caller *c, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < c->nr_roles && n < len; i++)
		n += snprintf(buf + n, len - n, "%s%s", i ? "," : "", c->roles[i]);
}

/* A new assertion into ans->assertion: 0, or the answer is set. */
static int sign_assertion(struct edge *e, struct edge_ctx *x, int service, int64_t now,
			  int64_t lifetime)
{
	const struct pki_creds *creds = e->deps.creds ? e->deps.creds(e->deps.ctx) : NULL;
	struct errmsg err = {};
	char aud[CONFIG_NAME_MAX + 80];
	struct assertion a = {
		.sub = x->caller.sub,
		.roles = x->caller.roles,
		.nr_roles = x->caller.nr_roles,
		.aud = aud,
		.orig_jti = x->caller.jti[0] ? x->caller.jti : NULL,
		.now = now,
		.lifetime = lifetime,
	};

	snprintf(aud, sizeof(aud), "spiffe://%s/service/%s", e->cfg->trust_domain,
		 e->pol->services[service].name);
	if (!creds || assertion_mint(creds->key, creds->cert, &a, &x->ans->assertion, &err)) {
		pr_err("edge: cannot sign the caller assertion: %s",
		       creds ? err.msg : "no node credentials");
		answer(x, 503, "no-assertion", "the agent cannot sign the caller assertion");
		return -EIO;
	}
	e->stats.signed_assertions++;
	return 0;
}

/*
 * The caller assertion, never outliving the token it stands for. One
 * signed for the same token and service is handed out again while it has
 * at least half its lifetime left: a service sees the same statement for
 * the same caller, and a warm request costs no signature.
 */
static void allow(struct edge *e, struct edge_ctx *x, int service)
{
	struct edge_answer *ans = x->ans;
	int64_t now = time(NULL), lifetime = e->cfg->edge.assertion_lifetime_s;
	const char *reuse;

	if (x->caller.exp && x->caller.exp - now < lifetime)
		lifetime = x->caller.exp - now;
	if (lifetime <= 0) {
		unauthorized(x, true, "expired", "the token has expired");
		return;
	}
	reuse = edge_cache_assertion(&e->cache, x->key, service, now);
	if (reuse && !(ans->assertion = strdup(reuse))) {
		answer(x, 503, "no-memory", "the agent is out of memory");
		return;
	}
	if (!reuse) {
		if (sign_assertion(e, x, service, now, lifetime))
			return;
		edge_cache_keep_assertion(&e->cache, x->key, service, ans->assertion,
					  now + lifetime / 2);
	}
	ans->status = 200;
	x->code = "ok";
	snprintf(ans->reason, sizeof(ans->reason), "ok");
	snprintf(ans->caller, sizeof(ans->caller), "%s", x->caller.sub);
	roles_list(&x->caller, ans->roles, sizeof(ans->roles));
}

static void decide(struct edge *e, struct edge_ctx *x, int service)
{
	struct policy_identity id = {
		.id = 1,
		.spiffe_id = x->caller.sub,
		.kind = x->caller.kind,
		.roles = (char *const *)x->caller.roles,
		.nr_roles = x->caller.nr_roles,
	};
	struct http_req hr = { .method = x->req->method, .path = x->path, .host = x->host,
			       .via_edge = true };
	struct decision d;

	policy_decide_http(e->pol, &id, service, &hr, &d);
	rule_name(e->pol, d.rule, x->ans->rule, sizeof(x->ans->rule));
	if (d.allow) {
		allow(e, x, service);
		return;
	}
	answer(x, 403, policy_reason_name(d.reason), "%s %s to %s is denied by %s%s",
	       x->req->method, x->path, x->service,
	       d.rule < 0 ? "the policy's default" : "rule ", d.rule < 0 ? "" : x->ans->rule);
}

/* The edge span continues the client's trace when its traceparent is
 * valid, and starts one otherwise. */
static void audit(struct edge *e, const struct edge_ctx *x)
{
	struct tracectx parent = {}, tc;
	bool traced;
	struct timespec ts;
	const char *words = strchr(x->ans->reason, ':');
	struct audit_rec r = {
		.direction = "edge",
		.service = x->service,
		.verdict = x->ans->status == 200 ? "allow" : "deny",
		.reason = x->code,
		.detail = words && x->ans->status != 200 ? words + 2 : NULL,
		.rule = x->ans->rule[0] ? x->ans->rule : NULL,
		.generation = e->generation,
		.jti = x->caller.jti[0] ? x->caller.jti : NULL,
		.kid = x->caller.kid[0] ? x->caller.kid : NULL,
		.caller = x->have_caller ? x->caller.sub : NULL,
		.client = x->req->remote_addr,
		.host = x->host[0] ? x->host : x->req->host,
		.method = x->req->method,
		.path = x->path[0] ? x->path : NULL,
		.dst = "-",
	};

	if (!e->deps.audit)
		return;
	if (x->req->traceparent && traceparent_parse(x->req->traceparent, &parent)) {
		tc = parent;
		traced = !tracectx_span_new(tc.span_id);
		r.parent_span_id = parent.span_id;
	} else {
		traced = !tracectx_new(&tc);
	}
	if (traced) {
		r.trace_id = tc.trace_id;
		r.span_id = tc.span_id;
	} else {
		r.parent_span_id = NULL;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	r.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	audit_write(e->deps.audit, &r);
}

static void note_generation(struct edge *e, const char *gen)
{
	char *end;
	unsigned long g;

	if (!gen)
		return;
	g = strtoul(gen, &end, 10);
	if (*end || end == gen || g == e->generation || g == e->stale_logged)
		return;
	/* Once per stale value: nginx may not have reloaded yet. */
	e->stale_logged = g;
	pr_info("edge: nginx's config is from policy generation %lu, %u is live; deciding with "
		"the live one",
		g, e->generation);
}

void edge_decide(struct edge *e, const struct edge_req *req, struct edge_answer *ans)
{
	struct edge_ctx x = { .req = req, .ans = ans };
	int service;

	memset(ans, 0, sizeof(*ans));
	e->stats.decisions++;
	if (!e->pol) {
		answer(&x, 503, "no-policy", "the agent has no policy yet");
		return;
	}
	note_generation(e, req->generation);
	if (!request_target(e, &x, &service)) {
		if (!authenticate(e, &x)) {
			x.have_caller = true;
			decide(e, &x, service);
		}
	}
	if (ans->status != EDGE_PENDING)
		audit(e, &x);
}
