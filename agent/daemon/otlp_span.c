// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Audit records as OTLP spans, in OTLP's JSON encoding: ids in lowercase
 * hex, 64-bit integers as decimal strings, enums as numbers, names in
 * lowerCamelCase. Attributes use OpenTelemetry's semantic conventions where
 * one exists (server.*, client.*, network.*, http.request.method, url.path)
 * and sluice.* for the rest; docs/tracing.md lists them.
 *
 * Written as text, as audit lines are (audit.c says why): a span is made in
 * the proxy loop for every flow, and building it as jansson objects cost
 * about as much CPU as the flow's own relaying at one connection per
 * request.
 */
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "otlp.h"

/* An attribute list being written: the comma goes before all but the
 * first. */
struct attrs {
	struct strbuf *b;
	bool any;
};

/* key and type are this file's literals: nothing to escape. */
static void attr_open(struct attrs *a, const char *key, const char *type)
{
	struct strbuf *b = a->b;

	if (a->any)
		strbuf_put(b, ",", 1);
	a->any = true;
	strbuf_put(b, "{\"key\":\"", 8);
	strbuf_puts(b, key);
	strbuf_put(b, "\",\"value\":{\"", 12);
	strbuf_puts(b, type);
	strbuf_put(b, "\":", 2);
}

static void attr_str(struct attrs *a, const char *key, const char *v)
{
	if (!v || !v[0] || !strcmp(v, "-"))
		return;
	attr_open(a, key, "stringValue");
	strbuf_json_str(a->b, v);
	strbuf_put(a->b, "}}", 2);
}

/* OTLP/JSON writes 64-bit integers as decimal strings. */
static void u64_str(struct strbuf *b, uint64_t v)
{
	strbuf_put(b, "\"", 1);
	strbuf_u64(b, v);
	strbuf_put(b, "\"", 1);
}

static void attr_int(struct attrs *a, const char *key, uint64_t v)
{
	attr_open(a, key, "intValue");
	u64_str(a->b, v);
	strbuf_put(a->b, "}}", 2);
}

/* server.address and server.port from "10.0.0.2:5432" or "[fd00::2]:80". */
static void attr_server(struct attrs *attrs, const char *dst)
{
	struct sockaddr_storage ss;
	char ip[SOCKADDR_STR_LEN];
	const char *colon;

	if (!dst || parse_sockaddr(dst, &ss))
		return;
	colon = strrchr(dst, ':');
	if (dst[0] == '[')
		snprintf(ip, sizeof(ip), "%.*s", (int)(colon - dst - 2), dst + 1);
	else
		snprintf(ip, sizeof(ip), "%.*s", (int)(colon - dst), dst);
	attr_str(attrs, "server.address", ip);
	attr_int(attrs, "server.port", sockaddr_port(&ss));
}

static void attrs_flow(struct attrs *a, const struct audit_rec *r)
{
	attr_server(a, r->dst);
	attr_str(a, "network.transport", r->proto ? r->proto : "tcp");
	attr_str(a, "network.peer.address", r->peer);
	if (!r->closed)
		return;
	attr_int(a, "sluice.bytes.sent", r->bytes_up);
	attr_int(a, "sluice.bytes.received", r->bytes_down);
	attr_str(a, "sluice.status", r->status);
	if (r->connect_us)
		attr_int(a, "sluice.upstream.connect_us", r->connect_us);
	if (r->srtt_us)
		attr_int(a, "sluice.upstream.srtt_us", r->srtt_us);
}

/* Edge and request spans: OpenTelemetry's HTTP server attributes. */
static void attrs_http(struct attrs *a, const struct audit_rec *r)
{
	attr_str(a, "http.request.method", r->method);
	attr_str(a, "url.path", r->path);
	attr_str(a, "server.address", r->host);
	attr_str(a, "client.address", r->client);
	attr_str(a, "sluice.caller", r->caller);
	if (r->http_status)
		attr_int(a, "http.response.status_code", r->http_status);
}

static void attributes(struct strbuf *b, const struct audit_rec *r, bool http)
{
	struct attrs a = { .b = b };

	strbuf_put(b, ",\"attributes\":[", 15);
	attr_str(&a, "sluice.direction", r->direction);
	attr_str(&a, "sluice.source.node", r->src_node);
	attr_str(&a, "sluice.source.workload", r->src_workload);
	attr_str(&a, "sluice.destination.service", r->service);
	attr_str(&a, "sluice.verdict", r->verdict);
	attr_str(&a, "sluice.reason", r->reason);
	attr_str(&a, "sluice.rule", r->rule);
	attr_int(&a, "sluice.policy.generation", r->generation);
	attr_str(&a, "sluice.token.jti", r->jti);
	if (r->resumed)
		attr_str(&a, "sluice.tls.session",
			 r->resumed == AUDIT_RESUMED_YES ? "resumed" : "full");
	if (http)
		attrs_http(&a, r);
	else
		attrs_flow(&a, r);
	strbuf_put(b, "]", 1);
}

/* What went wrong, for the span's status: a refusal, or a flow that ended
 * in an error; NULL when nothing did. */
static const char *failure(const struct audit_rec *r, char *buf, size_t len)
{
	if (r->verdict && strcmp(r->verdict, "allow")) {
		snprintf(buf, len, "denied: %s", r->reason ? r->reason : "-");
		return buf;
	}
	if (r->closed && r->status && strcmp(r->status, "ok"))
		return r->status;
	return NULL;
}

static void member(struct strbuf *b, const char *key, const char *v)
{
	strbuf_put(b, ",\"", 2);
	strbuf_puts(b, key);
	strbuf_put(b, "\":", 2);
	strbuf_json_str(b, v);
}

bool otlp_span_from_audit(struct strbuf *b, const struct audit_rec *r)
{
	bool http = r->direction && (!strcmp(r->direction, "edge") ||
				     !strncmp(r->direction, "request", 7));
	bool server = r->direction && (!strcmp(r->direction, "edge") ||
				       !strcmp(r->direction, "request") ||
				       !strcmp(r->direction, "inbound"));
	uint64_t end = r->time_ns, start = end;
	char name[96], why[96];
	const char *fail;

	if (!r->trace_id || !r->span_id || !r->direction)
		return false;
	if ((r->closed || r->http_status) && r->duration_ns < end)
		start = end - r->duration_ns;
	snprintf(name, sizeof(name), "%s %s", r->direction, r->service ? r->service : "-");
	strbuf_put(b, "{\"traceId\":", 11);
	strbuf_json_str(b, r->trace_id);
	member(b, "spanId", r->span_id);
	if (r->parent_span_id)
		member(b, "parentSpanId", r->parent_span_id);
	member(b, "name", name);
	/* SPAN_KIND_SERVER is 2, SPAN_KIND_CLIENT 3. */
	strbuf_puts(b, server ? ",\"kind\":2" : ",\"kind\":3");
	strbuf_puts(b, ",\"startTimeUnixNano\":");
	u64_str(b, start);
	strbuf_puts(b, ",\"endTimeUnixNano\":");
	u64_str(b, end);
	attributes(b, r, http);
	fail = failure(r, why, sizeof(why));
	if (fail) {
		/* STATUS_CODE_ERROR */
		strbuf_puts(b, ",\"status\":{\"code\":2");
		member(b, "message", fail);
		strbuf_put(b, "}", 1);
	}
	strbuf_put(b, "}", 1);
	return true;
}

void otlp_request(struct strbuf *b, const char *node, char *const *spans, unsigned int n)
{
	struct attrs res = { .b = b };

	strbuf_puts(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
	attr_str(&res, "service.name", "sluiced");
	attr_str(&res, "service.version", SLUICE_VERSION);
	attr_str(&res, "service.instance.id", node);
	attr_str(&res, "host.name", node);
	strbuf_puts(b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"sluice\",\"version\":");
	strbuf_json_str(b, SLUICE_VERSION);
	strbuf_puts(b, "},\"spans\":[");
	for (unsigned int i = 0; i < n; i++) {
		if (i)
			strbuf_put(b, ",", 1);
		strbuf_puts(b, spans[i]);
	}
	strbuf_puts(b, "]}]}]}");
}
