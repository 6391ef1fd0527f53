// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Each gate's context is a copy of its flow's source, so that a gate never
 * points into a flow the proxy has freed; the policy is the agent's, read
 * at every request, so a reload decides the next request on an open flow.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "assertion.h"
#include "clock.h"
#include "http_authz.h"
#include "l7.h"
#include "spiffe.h"
#include "strbuf.h"
#include "tracectx.h"

#define MAX_ROLES (CONFIG_MAX_ROLES * 4)
#define MAX_DENIALS 1024

struct http_authz {
	struct audit *audit;
	X509_STORE *(*ca_store)(void *ctx);
	void *ctx;
	const struct config *cfg;
	const struct policy *pol;
	uint32_t generation;
	struct http_gate_limits lim;
	struct http_authz_stats st;
	struct http_series *series;
	int nr_series, cap_series;
	int *index;			/* open addressing into series, -1 empty */
	int cap_index;
	struct http_denial *denials;
	int nr_denials, cap_denials;
};

struct hflow {
	struct http_authz *a;
	bool observe;			/* the sending side's: spans, no decisions */
	char node[CONFIG_NAME_MAX];
	char workload[SPIFFE_ID_MAX];
	enum workload_kind kind;
	char *roles[MAX_ROLES];
	int nr_roles;
	char peer[SOCKADDR_STR_LEN];
	char dst[SOCKADDR_STR_LEN];
	char service[64];
	char trace_id[TRACE_ID_HEX + 1];
	char span_id[SPAN_ID_HEX + 1];
};

int http_authz_new(struct audit *audit, X509_STORE *(*ca_store)(void *ctx), void *ctx,
		   struct http_authz **out)
{
	struct http_authz *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->audit = audit;
	a->ca_store = ca_store;
	a->ctx = ctx;
	http_gate_limits_default(&a->lim);
	*out = a;
	return 0;
}

void http_authz_set_policy(struct http_authz *a, const struct config *cfg,
			   const struct policy *pol, uint32_t generation)
{
	a->cfg = cfg;
	a->pol = pol;
	a->generation = generation;
	a->lim = (struct http_gate_limits){
		.request_line = cfg->http_svc.max_request_line,
		.header_size = cfg->http_svc.max_header_size,
		.headers = cfg->http_svc.max_headers,
	};
}

static void answer(struct http_exchange *x, int status, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void answer(struct http_exchange *x, int status, const char *reason, const char *fmt, ...)
{
	va_list ap;

	x->status = status;
	x->reason = reason;
	va_start(ap, fmt);
	vsnprintf(x->why, sizeof(x->why), fmt, ap);
	va_end(ap);
}

/* A request let through, and why it is written (reason static). */
static void pass_noted(struct http_exchange *x, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void pass_noted(struct http_exchange *x, const char *reason, const char *fmt, ...)
{
	va_list ap;

	x->reason = reason;
	va_start(ap, fmt);
	vsnprintf(x->why, sizeof(x->why), fmt, ap);
	va_end(ap);
}

static int find_service(const struct policy *pol, const char *name)
{
	for (int i = 0; i < pol->nr_services; i++) {
		if (!strcmp(pol->services[i].name, name))
			return pol->services[i].http ? i : -1;
	}
	return -1;
}

static void rule_name(const struct policy *pol, int rule, char *buf, size_t len)
{
	if (rule < 0)
		str_cut(buf, len, "default");
	else if (pol->rules[rule].name)
		str_cut(buf, len, pol->rules[rule].name);
	else
		snprintf(buf, len, "line-%d", pol->rules[rule].line);
}

/* Whether decide() let x through as an audit-mode deny. */
static bool is_would_deny(const struct http_exchange *x)
{
	return x->reason && !strcmp(x->reason, policy_reason_name(SLUICE_REASON_WOULD_DENY));
}

/* An audit-mode deny decided d: the request passes, counted by rule, and
 * its record says what enforcing would have done. */
static void would_deny(struct http_authz *a, const struct hflow *h, const struct decision *d,
		       const char *method, struct http_exchange *x)
{
	const struct policy_rule *r = d->rule >= 0 ? &a->pol->rules[d->rule] : NULL;
	char label[RULE_COUNTS_LABEL_LEN];

	policy_rule_label(r ? r->name : NULL, d->rule + 1, label, sizeof(label));
	rule_counts_add(&a->st.would_deny, "request", label);
	pass_noted(x, policy_reason_name(d->reason),
		   "%s %s to %s would be denied by %s%s (mode: audit)", method, x->path,
		   h->service, r ? "rule " : "the policy's default", r ? x->rule : "");
}

/* The request's span: a child of its traceparent, or of the flow's span,
 * or the first of a new trace. Where it is decided, a request without a
 * traceparent gets one naming this span, so the service's own spans join
 * the trace; the sending agent changes no byte (both agents' flow spans
 * are one trace already, and the receiving agent adds the header). */
static void trace(const struct hflow *h, const struct http_gate_req *req, struct http_exchange *x)
{
	struct tracectx tc;

	if (req->traceparent && traceparent_parse(req->traceparent, &tc)) {
		memcpy(x->trace_id, tc.trace_id, sizeof(x->trace_id));
		memcpy(x->parent_span_id, tc.span_id, sizeof(x->parent_span_id));
		if (tracectx_span_new(x->span_id))
			x->trace_id[0] = '\0';
		return;
	}
	if (h->trace_id[0]) {
		memcpy(x->trace_id, h->trace_id, sizeof(x->trace_id));
		memcpy(x->parent_span_id, h->span_id, sizeof(x->parent_span_id));
		if (tracectx_span_new(x->span_id))
			x->trace_id[0] = '\0';
	} else if (!tracectx_new(&tc)) {
		memcpy(x->trace_id, tc.trace_id, sizeof(x->trace_id));
		memcpy(x->span_id, tc.span_id, sizeof(x->span_id));
	}
	x->add_traceparent = x->trace_id[0] && !h->observe;
}

/* The assertion's roles, pointing into res->claims. */
static int claim_roles(const struct jwt_result *res, const char **roles, int max)
{
	json_t *arr = json_object_get(res->claims, "roles"), *v;
	size_t i;
	int n = 0;

	json_array_foreach(arr, i, v) {
		if (json_is_string(v) && n < max)
			roles[n++] = json_string_value(v);
	}
	return n;
}

/* The edge's caller, into *id (pointing into res): 0, or the 401 is set. */
static int caller_of(const struct hflow *h, const char *token, int svc, struct http_exchange *x,
		     struct jwt_result *res, struct policy_identity *id, const char **roles)
{
	const struct http_authz *a = h->a;
	const char *td = a->cfg->trust_domain, *orig;
	X509_STORE *store = a->ca_store ? a->ca_store(a->ctx) : NULL;
	char aud[CONFIG_NAME_MAX + 80], iss[CONFIG_NAME_MAX * 2 + 16];
	struct spiffe_id sid;
	const char *why;
	enum jwt_reason r;

	if (!config_edge_workload(a->cfg, h->workload)) {
		answer(x, 401, "assertion-not-from-edge",
		       "%s is not in http.edge_workloads: its requests may not carry a caller "
		       "assertion", h->workload);
		return -EPERM;
	}
	if (!store) {
		answer(x, 401, "assertion-unverifiable",
		       "this agent has no mesh CA (identity:) to verify the caller assertion with");
		return -EPERM;
	}
	snprintf(aud, sizeof(aud), "spiffe://%s/service/%s", td, a->pol->services[svc].name);
	r = assertion_verify(token, store, td, aud, 0, a->cfg->identity.clock_skew_s, res);
	if (res->kid)
		str_cut(x->kid, sizeof(x->kid), res->kid);
	if (r != JWT_OK) {
		snprintf(x->code, sizeof(x->code), "assertion-%s", jwt_reason_name(r));
		answer(x, 401, x->code, "the caller assertion is refused: %s", res->err.msg);
		return -EPERM;
	}
	snprintf(iss, sizeof(iss), "spiffe://%s/node/%s", td, h->node);
	if (!res->iss || strcmp(res->iss, iss)) {
		answer(x, 401, "assertion-wrong-node",
		       "the caller assertion was signed by %s, not by the node the request came "
		       "from (%s)", res->iss ? res->iss : "nobody", h->node);
		return -EPERM;
	}
	str_cut(x->caller, sizeof(x->caller), res->sub);
	str_cut(x->jti, sizeof(x->jti), res->jti ? res->jti : "");
	orig = json_string_value(json_object_get(res->claims, "orig_jti"));
	str_cut(x->orig_jti, sizeof(x->orig_jti), orig ? orig : "");
	*id = (struct policy_identity){ .id = 1, .spiffe_id = res->sub, .roles = (char *const *)roles,
					.nr_roles = claim_roles(res, roles, MAX_ROLES) };
	/* A kind only for IDs of this trust domain: a foreign SPIFFE ID
	 * must not match `kind:` rules. */
	if (!spiffe_id_parse(res->sub, &sid, &why) && spiffe_id_in_domain(&sid, td))
		id->kind = sid.kind;
	return 0;
}

/* The sending agent decides nothing: it names each request's span (the
 * client side of B's) and passes the traceparent on to B. */
static void observe(struct hflow *h, const struct http_gate_req *req, struct http_exchange *x)
{
	char path[L7_PATH_MAX];
	struct errmsg err = {};

	trace(h, req, x);
	if (req->host)
		str_cut(x->host, sizeof(x->host), req->host);
	if (l7_path_normalize(req->target, strlen(req->target), path, sizeof(path), &err))
		str_cut(path, sizeof(path), req->target);
	str_cut(x->path, sizeof(x->path), path);
	x->reason = "ok";
}

static void decide(void *ctx, const struct http_gate_req *req, struct http_exchange *x)
{
	struct hflow *h = ctx;
	struct http_authz *a = h->a;
	const struct policy *pol = a->pol;
	char path[L7_PATH_MAX], host[L7_HOST_MAX];
	struct policy_identity id = { .id = 1, .spiffe_id = h->workload, .kind = h->kind,
				      .roles = h->roles, .nr_roles = h->nr_roles };
	struct http_req hr = { .method = req->method, .path = path };
	const char *roles[MAX_ROLES];
	struct jwt_result res = {};
	struct errmsg err = {};
	struct decision d;
	int svc;

	if (h->observe) {
		observe(h, req, x);
		return;
	}
	a->st.requests++;
	trace(h, req, x);
	if (req->host)
		str_cut(x->host, sizeof(x->host), req->host);
	svc = find_service(pol, h->service);
	if (svc < 0) {
		answer(x, 403, "service-gone",
		       "%s is no protocol: http service in policy generation %u", h->service,
		       a->generation);
		return;
	}
	if (l7_path_normalize(req->target, strlen(req->target), path, sizeof(path), &err)) {
		str_cut(x->path, sizeof(x->path), req->target);
		answer(x, 400, "bad-path", "the request path cannot be decided safely: %s",
		       err.msg);
		return;
	}
	/* Cut for the audit line and the span; decided whole. */
	str_cut(x->path, sizeof(x->path), path);
	if (req->host) {
		if (l7_host_normalize(req->host, host, sizeof(host))) {
			answer(x, 400, "bad-host", "the request's Host is malformed");
			return;
		}
		hr.host = host;
	}
	if (req->assertion) {
		if (caller_of(h, req->assertion, svc, x, &res, &id, roles)) {
			jwt_result_free(&res);
			return;
		}
		hr.via_edge = true;
	}
	policy_decide_http(pol, &id, svc, &hr, &d);
	rule_name(pol, d.rule, x->rule, sizeof(x->rule));
	if (!d.allow)
		answer(x, 403, policy_reason_name(d.reason), "%s %s to %s is denied by %s%s",
		       req->method, x->path, h->service,
		       d.rule < 0 ? "the policy's default" : "rule ", d.rule < 0 ? "" : x->rule);
	else if (d.would_deny)
		would_deny(a, h, &d, req->method, x);
	else
		x->reason = "ok";
	jwt_result_free(&res);
}

static enum http_method_class method_class(const char *m)
{
	if (!strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS"))
		return HTTP_M_GET;
	if (!strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH") ||
	    !strcmp(m, "DELETE"))
		return HTTP_M_WRITE;
	return HTTP_M_OTHER;
}

static uint64_t series_hash(const char *w, const char *s, int m, int c)
{
	uint64_t h = 1469598103934665603ull;

	for (; *w; w++)
		h = (h ^ (unsigned char)*w) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (h ^ (uint64_t)(m * 8 + c)) * 1099511628211ull;
}

static bool series_is(const struct http_series *e, const char *w, const char *s, int m, int c)
{
	return e->method == (enum http_method_class)m && e->status_class == c &&
	       !strcmp(e->workload, w) && !strcmp(e->service, s);
}

/* Doubles the index (and the series' room) so it stays under half full. */
static int series_grow(struct http_authz *a)
{
	int cap = a->cap_index ? 2 * a->cap_index : 64;
	struct http_series *ns;
	int *ni;

	ns = realloc(a->series, cap / 2 * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	a->series = ns;
	a->cap_series = cap / 2;
	ni = malloc(cap * sizeof(*ni));
	if (!ni)
		return -ENOMEM;
	for (int i = 0; i < cap; i++)
		ni[i] = -1;
	for (int i = 0; i < a->nr_series; i++) {
		const struct http_series *e = &a->series[i];
		uint64_t k = series_hash(e->workload, e->service, e->method, e->status_class);

		while (ni[k % cap] >= 0)
			k++;
		ni[k % cap] = i;
	}
	free(a->index);
	a->index = ni;
	a->cap_index = cap;
	return 0;
}

static struct http_series *series_get(struct http_authz *a, const char *w, const char *s, int m,
				      int c)
{
	uint64_t k = series_hash(w, s, m, c);
	struct http_series *e;

	for (; a->cap_index && a->index[k % a->cap_index] >= 0; k++) {
		e = &a->series[a->index[k % a->cap_index]];
		if (series_is(e, w, s, m, c))
			return e;
	}
	if (a->nr_series >= HTTP_AUTHZ_MAX_SERIES)
		return NULL;
	if (a->nr_series + 1 > a->cap_index / 2) {
		if (series_grow(a))
			return NULL;
		return series_get(a, w, s, m, c);
	}
	e = &a->series[a->nr_series];
	*e = (struct http_series){ .method = m, .status_class = c };
	str_cut(e->workload, sizeof(e->workload), w);
	str_cut(e->service, sizeof(e->service), s);
	a->index[k % a->cap_index] = a->nr_series++;
	return e;
}

static void denial_count(struct http_authz *a, const char *service, const struct http_exchange *x)
{
	const char *reason = x->reason ? x->reason : "refused";
	struct http_denial *d;

	for (int i = 0; i < a->nr_denials; i++) {
		d = &a->denials[i];
		if (!strcmp(d->service, service) && !strcmp(d->rule, x->rule) &&
		    !strcmp(d->reason, reason)) {
			d->count++;
			return;
		}
	}
	if (a->nr_denials == a->cap_denials) {
		int cap = a->cap_denials ? 2 * a->cap_denials : 16;

		if (cap > MAX_DENIALS || !(d = realloc(a->denials, cap * sizeof(*d)))) {
			a->st.series_dropped++;
			return;
		}
		a->denials = d;
		a->cap_denials = cap;
	}
	d = &a->denials[a->nr_denials++];
	*d = (struct http_denial){ .count = 1 };
	str_cut(d->service, sizeof(d->service), service);
	str_cut(d->rule, sizeof(d->rule), x->rule);
	str_cut(d->reason, sizeof(d->reason), reason);
}

static void count(struct http_authz *a, const struct hflow *h, const struct http_exchange *x,
		  uint64_t us)
{
	int c = x->status >= 100 && x->status < 600 ? x->status / 100 : 0;
	char who[SLUICE_NAME_LEN];
	struct http_series *e;
	int b = 0;

	/* Cut as the series keeps it, so a long caller finds its own. */
	str_cut(who, sizeof(who), x->caller[0] ? x->caller : h->workload);
	e = series_get(a, who, h->service, method_class(x->method), c);
	if (x->local && x->status >= 400)
		denial_count(a, h->service, x);
	if (!e) {
		a->st.series_dropped++;
		return;
	}
	e->count++;
	e->duration_sum_us += us;
	while (b < SLUICE_LAT_BUCKETS - 1 && us >> (b + 1))
		b++;
	e->duration_us_log2[b]++;
}

static const char *request_verdict(bool refusal, const struct http_exchange *x)
{
	if (refusal || (x && x->local))
		return "deny";
	return x && is_would_deny(x) ? "would-deny" : "allow";
}

static void record(const struct hflow *h, const struct http_exchange *x, bool refusal,
		   const char *reason, const char *detail)
{
	struct http_authz *a = h->a;
	struct timespec ts;
	struct audit_rec r = {
		.direction = h->observe ? "request-out" : "request",
		.src_node = h->node,
		.src_workload = h->workload,
		.peer = h->peer[0] ? h->peer : NULL,
		.dst = h->dst,
		.service = h->service,
		.verdict = request_verdict(refusal, x),
		.reason = reason,
		.detail = detail,
		.generation = a->generation,
	};

	if (!a->audit)
		return;
	if (x) {
		r.rule = x->rule[0] ? x->rule : NULL;
		r.jti = x->jti[0] ? x->jti : NULL;
		r.kid = x->kid[0] ? x->kid : NULL;
		r.orig_jti = x->orig_jti[0] ? x->orig_jti : NULL;
		r.caller = x->caller[0] ? x->caller : NULL;
		r.trace_id = x->trace_id[0] ? x->trace_id : NULL;
		r.span_id = r.trace_id ? x->span_id : NULL;
		r.parent_span_id = r.trace_id && x->parent_span_id[0] ? x->parent_span_id : NULL;
		r.host = x->host[0] ? x->host : NULL;
		r.method = x->method;
		r.path = x->path[0] ? x->path : NULL;
		r.http_status = x->status;
		r.duration_ns = x->end_ns - x->start_ns;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	r.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	if (refusal || (x && (x->local || is_would_deny(x) || x->caller[0] || x->kid[0])) ||
	    a->cfg->audit_http_allows)
		audit_write(a->audit, &r);
	else
		audit_span(a->audit, &r);
}

static void done(void *ctx, const struct http_exchange *x)
{
	struct hflow *h = ctx;

	if (!h->observe)
		count(h->a, h, x, (x->end_ns - x->start_ns) / 1000);
	record(h, x, false, x->reason ? x->reason : "ok",
	       x->local || is_would_deny(x) ? x->why : NULL);
}

static void refused(void *ctx, const char *reason, const char *detail)
{
	struct hflow *h = ctx;

	h->a->st.refused++;
	record(h, NULL, true, reason, detail);
}

static void release(void *ctx)
{
	struct hflow *h = ctx;

	for (int i = 0; i < h->nr_roles; i++)
		free(h->roles[i]);
	free(h);
}

static const struct http_gate_ops gate_ops = {
	.decide = decide,
	.done = done,
	.refused = refused,
	.release = release,
};

static struct http_gate *gate_new(struct http_authz *a, const struct http_source *src,
				  bool observer)
{
	struct hflow *h = calloc(1, sizeof(*h));
	struct http_gate *g;

	if (!h)
		return NULL;
	h->a = a;
	h->observe = observer;
	str_cut(h->node, sizeof(h->node), src->node);
	str_cut(h->workload, sizeof(h->workload), src->workload);
	h->kind = src->kind;
	for (int i = 0; i < src->nr_roles && i < MAX_ROLES; i++) {
		h->roles[i] = strdup(src->roles[i]);
		if (!h->roles[i]) {
			release(h);
			return NULL;
		}
		h->nr_roles++;
	}
	str_cut(h->peer, sizeof(h->peer), src->peer ? src->peer : "");
	str_cut(h->dst, sizeof(h->dst), src->dst);
	str_cut(h->service, sizeof(h->service), src->service);
	if (src->trace_id && src->span_id) {
		str_cut(h->trace_id, sizeof(h->trace_id), src->trace_id);
		str_cut(h->span_id, sizeof(h->span_id), src->span_id);
	}
	g = http_gate_new(&a->lim, &gate_ops, h);
	if (!g)
		release(h);
	return g;
}

struct http_gate *http_authz_gate(struct http_authz *a, const struct http_source *src)
{
	return gate_new(a, src, false);
}

struct http_gate *http_authz_observer(struct http_authz *a, const struct http_source *src)
{
	return gate_new(a, src, true);
}

void http_authz_get_stats(const struct http_authz *a, struct http_authz_stats *out)
{
	*out = a->st;
	out->series = a->series;
	out->nr_series = a->nr_series;
	out->denials = a->denials;
	out->nr_denials = a->nr_denials;
}

void http_authz_free(struct http_authz *a)
{
	if (!a)
		return;
	free(a->series);
	free(a->index);
	free(a->denials);
	rule_counts_free(&a->st.would_deny);
	free(a);
}
