// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Audit records as OTLP spans, in OTLP's JSON encoding: ids in lowercase
 * hex, 64-bit integers as decimal strings, enums as numbers, names in
 * lowerCamelCase. Attributes use OpenTelemetry's semantic conventions where
 * one exists (server.*, client.*, network.*, http.request.method, url.path)
 * and sluice.* for the rest; docs/tracing.md lists them.
 */
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "otlp.h"

enum {
	SPAN_KIND_SERVER = 2,
	SPAN_KIND_CLIENT = 3,
	STATUS_CODE_ERROR = 2,
};

static json_t *u64_str(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return json_string(buf);
}

static void attr(json_t *attrs, const char *key, json_t *value)
{
	json_t *kv;

	if (!value)
		return;
	kv = json_pack("{s:s, s:o}", "key", key, "value", value);
	if (kv)
		json_array_append_new(attrs, kv);
}

static void attr_str(json_t *attrs, const char *key, const char *v)
{
	if (v && v[0] && strcmp(v, "-"))
		attr(attrs, key, json_pack("{s:s}", "stringValue", v));
}

static void attr_int(json_t *attrs, const char *key, uint64_t v)
{
	attr(attrs, key, json_pack("{s:o}", "intValue", u64_str(v)));
}

/* server.address and server.port from "10.0.0.2:5432" or "[fd00::2]:80". */
static void attr_server(json_t *attrs, const char *dst)
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

static void attrs_flow(json_t *a, const struct audit_rec *r)
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

static void attrs_edge(json_t *a, const struct audit_rec *r)
{
	attr_str(a, "http.request.method", r->method);
	attr_str(a, "url.path", r->path);
	attr_str(a, "server.address", r->host);
	attr_str(a, "client.address", r->client);
	attr_str(a, "sluice.caller", r->caller);
}

static json_t *attributes(const struct audit_rec *r, bool edge)
{
	json_t *a = json_array();

	if (!a)
		return NULL;
	attr_str(a, "sluice.direction", r->direction);
	attr_str(a, "sluice.source.node", r->src_node);
	attr_str(a, "sluice.source.workload", r->src_workload);
	attr_str(a, "sluice.destination.service", r->service);
	attr_str(a, "sluice.verdict", r->verdict);
	attr_str(a, "sluice.reason", r->reason);
	attr_str(a, "sluice.rule", r->rule);
	attr_int(a, "sluice.policy.generation", r->generation);
	attr_str(a, "sluice.token.jti", r->jti);
	if (r->resumed)
		attr_str(a, "sluice.tls.session",
			 r->resumed == AUDIT_RESUMED_YES ? "resumed" : "full");
	if (edge)
		attrs_edge(a, r);
	else
		attrs_flow(a, r);
	return a;
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

json_t *otlp_span_from_audit(const struct audit_rec *r)
{
	bool edge = r->direction && !strcmp(r->direction, "edge");
	bool server = edge || (r->direction && !strcmp(r->direction, "inbound"));
	uint64_t end = r->time_ns, start = end;
	char name[96], why[96];
	const char *fail;
	json_t *span;

	if (!r->trace_id || !r->span_id || !r->direction)
		return NULL;
	if (r->closed && r->duration_ns < end)
		start = end - r->duration_ns;
	snprintf(name, sizeof(name), "%s %s", r->direction, r->service ? r->service : "-");
	span = json_pack(
	    "{s:s, s:s, s:s, s:i, s:o, s:o, s:o}", "traceId", r->trace_id, "spanId", r->span_id,
	    "name", name, "kind", server ? SPAN_KIND_SERVER : SPAN_KIND_CLIENT, "startTimeUnixNano",
	    u64_str(start), "endTimeUnixNano", u64_str(end), "attributes", attributes(r, edge));
	if (!span)
		return NULL;
	if (r->parent_span_id)
		json_object_set_new(span, "parentSpanId", json_string(r->parent_span_id));
	fail = failure(r, why, sizeof(why));
	if (fail)
		json_object_set_new(
		    span, "status",
		    json_pack("{s:i, s:s}", "code", STATUS_CODE_ERROR, "message", fail));
	return span;
}

json_t *otlp_request(const char *node, json_t *spans)
{
	json_t *res = json_array();

	attr_str(res, "service.name", "sluiced");
	attr_str(res, "service.version", SLUICE_VERSION);
	attr_str(res, "service.instance.id", node);
	attr_str(res, "host.name", node);
	return json_pack("{s:[{s:{s:o}, s:[{s:{s:s, s:s}, s:o}]}]}", "resourceSpans", "resource",
			 "attributes", res, "scopeSpans", "scope", "name", "sluice", "version",
			 SLUICE_VERSION, "spans", spans);
}
