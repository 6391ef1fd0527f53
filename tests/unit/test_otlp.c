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

#include <string.h>

#include "otlp.h"

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN "00f067aa0ba902b7"
#define PARENT "a3ce929d0e0e4736"

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
	json_t *s = otlp_span_from_audit(&r);

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
	json_t *s = otlp_span_from_audit(&r), *status;

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
	json_t *s = otlp_span_from_audit(&r);

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
	s = otlp_span_from_audit(&r);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(s, "status"), "message")),
	    "ECONNRESET");
	/* A duration longer than the clock: the start is the end. */
	assert_string_equal(json_string_value(json_object_get(s, "startTimeUnixNano")), "10");
	json_decref(s);

	r.span_id = NULL;
	assert_null(otlp_span_from_audit(&r));
}

static void test_request(void **state)
{
	json_t *req = otlp_request("node-a", json_array()), *rs, *kv;
	size_t i;
	bool host = false;

	assert_non_null(req);
	rs = json_array_get(json_object_get(req, "resourceSpans"), 0);
	json_array_foreach(json_object_get(json_object_get(rs, "resource"), "attributes"), i, kv)
	{
		if (!strcmp(json_string_value(json_object_get(kv, "key")), "host.name"))
			host = !strcmp(json_string_value(json_object_get(
					   json_object_get(kv, "value"), "stringValue")),
				       "node-a");
	}
	assert_true(host);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0), "scope"),
		"name")),
	    "sluice");
	json_decref(req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outbound_close),
		cmocka_unit_test(test_inbound_deny),
		cmocka_unit_test(test_edge_and_errors),
		cmocka_unit_test(test_request),
	};

	return cmocka_run_group_tests_name("otlp", tests, NULL, NULL);
}
