// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Audit records as OTLP/JSON spans (otlp.h): kinds, parents, times derived
 * from the record, semantic-convention attributes for both families, the
 * error status of a refusal, and no span without trace context. The
 * collector in tests/otlp checks the encoding against OpenTelemetry's own
 * definitions (integ otlp); this pins the mapping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "otlp.h"
#include "utf8.h"

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN "00f067aa0ba902b7"
#define PARENT "a3ce929d0e0e4736"

/* The span of r as the exporter writes it, parsed back: it must be one
 * JSON object, and the exact text the collector test decodes with
 * OpenTelemetry's definitions. NULL when no span was written. */
static json_t *span_of(const struct audit_rec *r)
{
	struct strbuf b;
	json_error_t e;
	json_t *s = NULL;
	char *text;

	strbuf_init(&b, NULL, 0);
	if (!otlp_span_from_audit(&b, r)) {
		assert_int_equal(b.len, 0);
		strbuf_release(&b);
		return NULL;
	}
	text = strbuf_detach(&b, NULL);
	assert_non_null(text);
	s = json_loads(text, 0, &e);
	if (!s)
		fail_msg("not JSON (%s at %d): %s", e.text, e.position, text);
	assert_true(json_is_object(s));
	free(text);
	return s;
}

/* The value object of attribute key, NULL when absent. */
static json_t *attr(json_t *span, const char *key)
{
	size_t i;
	json_t *kv;

	json_array_foreach(json_object_get(span, "attributes"), i, kv)
	{
		if (!strcmp(json_string_value(json_object_get(kv, "key")), key))
			return json_object_get(kv, "value");
	}
	return NULL;
}

static const char *attr_str(json_t *span, const char *key, const char *type)
{
	return json_string_value(json_object_get(attr(span, key), type));
}

static void test_outbound_close(void **state)
{
	struct audit_rec r = {
		.time_ns = 1700000000123456789,
		.direction = "outbound",
		.src_node = "node-a",
		.src_workload = "spiffe://acme.example/job/etl",
		.dst = "10.1.2.3:5432",
		.service = "warehouse",
		.verdict = "allow",
		.reason = "ok",
		.generation = 7,
		.trace_id = TRACE,
		.span_id = SPAN,
		.resumed = AUDIT_RESUMED_YES,
		.closed = true,
		.bytes_up = 100,
		.bytes_down = 2000,
		.duration_ns = 123456789,
		.connect_us = 42,
		.status = "ok",
	};
	json_t *s = span_of(&r);

	assert_non_null(s);
	assert_string_equal(json_string_value(json_object_get(s, "traceId")), TRACE);
	assert_string_equal(json_string_value(json_object_get(s, "spanId")), SPAN);
	assert_null(json_object_get(s, "parentSpanId"));
	assert_string_equal(json_string_value(json_object_get(s, "name")), "outbound warehouse");
	assert_int_equal(json_integer_value(json_object_get(s, "kind")), 3);
	assert_string_equal(json_string_value(json_object_get(s, "startTimeUnixNano")),
			    "1700000000000000000");
	assert_string_equal(json_string_value(json_object_get(s, "endTimeUnixNano")),
			    "1700000000123456789");
	assert_null(json_object_get(s, "status"));
	assert_string_equal(attr_str(s, "server.address", "stringValue"), "10.1.2.3");
	assert_string_equal(attr_str(s, "server.port", "intValue"), "5432");
	assert_string_equal(attr_str(s, "sluice.bytes.sent", "intValue"), "100");
	assert_string_equal(attr_str(s, "sluice.bytes.received", "intValue"), "2000");
	assert_string_equal(attr_str(s, "sluice.upstream.connect_us", "intValue"), "42");
	assert_null(attr(s, "sluice.upstream.srtt_us"));
	assert_string_equal(attr_str(s, "sluice.tls.session", "stringValue"), "resumed");
	assert_string_equal(attr_str(s, "sluice.policy.generation", "intValue"), "7");
	json_decref(s);
}

static void test_inbound_deny(void **state)
{
	struct audit_rec r = {
		.time_ns = 1700000000000000000,
		.direction = "inbound",
		.src_workload = "spiffe://acme.example/notebook/7",
		.peer = "10.0.0.1:40000",
		.dst = "[fd00::2]:8080",
		.verdict = "deny",
		.reason = "policy-deny",
		.rule = "no-notebooks",
		.trace_id = TRACE,
		.span_id = SPAN,
		.parent_span_id = PARENT,
	};
	json_t *s = span_of(&r), *status;

	assert_non_null(s);
	assert_int_equal(json_integer_value(json_object_get(s, "kind")), 2);
	assert_string_equal(json_string_value(json_object_get(s, "parentSpanId")), PARENT);
	assert_string_equal(json_string_value(json_object_get(s, "name")), "inbound -");
	assert_string_equal(json_string_value(json_object_get(s, "startTimeUnixNano")),
			    json_string_value(json_object_get(s, "endTimeUnixNano")));
	status = json_object_get(s, "status");
	assert_int_equal(json_integer_value(json_object_get(status, "code")), 2);
	assert_string_equal(json_string_value(json_object_get(status, "message")),
			    "denied: policy-deny");
	assert_string_equal(attr_str(s, "server.address", "stringValue"), "fd00::2");
	assert_string_equal(attr_str(s, "server.port", "intValue"), "8080");
	assert_string_equal(attr_str(s, "network.peer.address", "stringValue"), "10.0.0.1:40000");
	assert_string_equal(attr_str(s, "sluice.rule", "stringValue"), "no-notebooks");
	assert_null(attr(s, "sluice.bytes.sent"));
	json_decref(s);
}

static void test_edge_and_errors(void **state)
{
	struct audit_rec r = {
		.time_ns = 1,
		.direction = "edge",
		.service = "api",
		.verdict = "allow",
		.reason = "ok",
		.method = "GET",
		.path = "/api/x",
		.host = "api.acme.example",
		.client = "192.0.2.1",
		.dst = "-",
		.trace_id = TRACE,
		.span_id = SPAN,
	};
	json_t *s = span_of(&r);

	assert_int_equal(json_integer_value(json_object_get(s, "kind")), 2);
	assert_string_equal(attr_str(s, "http.request.method", "stringValue"), "GET");
	assert_string_equal(attr_str(s, "url.path", "stringValue"), "/api/x");
	assert_string_equal(attr_str(s, "server.address", "stringValue"), "api.acme.example");
	assert_string_equal(attr_str(s, "client.address", "stringValue"), "192.0.2.1");
	assert_null(attr(s, "server.port"));
	json_decref(s);

	/* A flow that ended in a reset is an error too. */
	r = (struct audit_rec){ .time_ns = 10,
				.direction = "outbound",
				.verdict = "allow",
				.trace_id = TRACE,
				.span_id = SPAN,
				.closed = true,
				.duration_ns = 20,
				.status = "ECONNRESET" };
	s = span_of(&r);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(s, "status"), "message")),
	    "ECONNRESET");
	/* A duration longer than the clock: the start is the end. */
	assert_string_equal(json_string_value(json_object_get(s, "startTimeUnixNano")), "10");
	json_decref(s);

	r.span_id = NULL;
	assert_null(span_of(&r));
}

/* What a workload chose (a path, a name) may hold quotes, control
 * characters and bytes that are not UTF-8: the span stays one valid
 * document, the text as close to what was sent as JSON allows. */
static void test_escaped(void **state)
{
	struct audit_rec r = {
		.time_ns = 1,
		.direction = "edge",
		.verdict = "deny",
		.reason = "l7-deny",
		.path = "/a\"b\\c\n\x01\xff",
		.trace_id = TRACE,
		.span_id = SPAN,
	};
	json_t *s = span_of(&r);

	assert_string_equal(attr_str(s, "url.path", "stringValue"),
			    "/a\"b\\c\n\x01" UTF8_REPLACEMENT);
	json_decref(s);
}

static void test_request(void **state)
{
	char *spans[2] = { strdup("{\"spanId\":\"1\"}"), strdup("{\"spanId\":\"2\"}") };
	json_t *req, *rs, *kv;
	struct strbuf b;
	bool host = false;
	char *text;
	size_t i;

	strbuf_init(&b, NULL, 0);
	otlp_request(&b, "node-\"a\"", spans, 2);
	text = strbuf_detach(&b, NULL);
	req = json_loads(text, 0, NULL);
	assert_non_null(req);
	rs = json_array_get(json_object_get(req, "resourceSpans"), 0);
	json_array_foreach(json_object_get(json_object_get(rs, "resource"), "attributes"), i, kv)
	{
		if (!strcmp(json_string_value(json_object_get(kv, "key")), "host.name"))
			host = !strcmp(json_string_value(json_object_get(
					   json_object_get(kv, "value"), "stringValue")),
				       "node-\"a\"");
	}
	assert_true(host);
	rs = json_array_get(json_object_get(rs, "scopeSpans"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(rs, "scope"), "name")),
			    "sluice");
	assert_int_equal(json_array_size(json_object_get(rs, "spans")), 2);
	assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(rs, "spans"), 1), "spanId")),
			    "2");
	json_decref(req);
	free(text);
	free(spans[0]);
	free(spans[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outbound_close),
		cmocka_unit_test(test_inbound_deny),
		cmocka_unit_test(test_edge_and_errors),
		cmocka_unit_test(test_escaped),
		cmocka_unit_test(test_request),
	};

	return cmocka_run_group_tests_name("otlp", tests, NULL, NULL);
}
