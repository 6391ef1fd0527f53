// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Traces over OTLP/HTTP, received by tests/otlp/collector.mjs, which
 * decodes them with OpenTelemetry's own message definitions:
 *
 * - cross_node: the job's flow to node B is one trace of two spans, node
 *   A's (kind CLIENT) the parent of node B's (kind SERVER), each from its
 *   own node's resource, with the ids its node's audit line names, the
 *   flow's service, port and bytes, and timestamps in order;
 * - denied: node B's refusal is a SERVER span with an error status that
 *   says why, under A's span;
 * - audit_exactly_once: every decision of both nodes is one audit line,
 *   and no token or key material is in an audit log, agent log or span;
 * - collector_gone: with the collector killed, the job's flows all work,
 *   and node A counts the failed exports and the spans it dropped.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_proc.h"
#include "checks.h"
#include "client.h"
#include "env.h"
#include "harness.h"
#include "idp_launch.h"
#include "mesh.h"
#include "pki.h"
#include "scrape.h"
#include "servers.h"
#include "util.h"

#define COLLECTOR_SCRIPT "tests/otlp/collector.mjs"
#define COLLECTOR_MODULE "tests/otlp/node_modules/@opentelemetry/otlp-transformer/package.json"
#define COLLECTOR_SETUP "tests/otlp/setup.sh"
#define SPAN_WAIT_MS 10000
#define ECHO_BYTES 3000
/* Small, so that the collector_gone flows overflow it. */
#define QUEUE 16
#define GONE_FLOWS 40

struct collector {
	pid_t pid;
	const char *ns;
	char url[IDP_URL_MAX];
	char out[PATH_MAX];
};

static int collector_child_setup(void *arg)
{
	const struct collector *c = arg;

	child_reset_signals();
	return netns_join(c->ns);
}

/* The collector's modules, installed by tests/otlp/setup.sh when missing. */
static bool collector_ready(void)
{
	char *argv[] = { COLLECTOR_SETUP, NULL };
	char *out = NULL, *err = NULL;
	int ret;

	if (!access(COLLECTOR_MODULE, R_OK))
		return true;
	ret = run_argv(argv, &out, &err, 300000);
	if (ret)
		printf("%s: exit %d: %.300s\n", COLLECTOR_SETUP, ret, err ?: "");
	free(out);
	free(err);
	return !ret;
}

/* In node A's namespace on its address, which node B's agent reaches too. */
static int collector_start(struct sl_env *env, struct collector *c)
{
	char log[PATH_MAX];
	char *args[] = { "--host", env->ip4_a, "--port", "0", "--out", c->out, NULL };
	int ret;

	c->ns = env->ns_a;
	env_path(env, "spans.jsonl", c->out, sizeof(c->out));
	env_path(env, "collector.log", log, sizeof(log));
	ret = node_launch(COLLECTOR_SCRIPT, args, log, collector_child_setup, c, c->url, &c->pid);
	if (ret) {
		printf("the collector did not get ready (its stderr is %s)\n", log);
		return ret;
	}
	env_track_child(env, c->pid);
	return 0;
}

static void collector_stop(struct sl_env *env, struct collector *c)
{
	if (c->pid <= 0)
		return;
	idp_kill(c->pid, SIGKILL, 2000);
	env_untrack_child(env, c->pid);
	c->pid = -1;
}

struct want {
	const char *node; /* the resource's host.name */
	int kind; /* 2 SERVER, 3 CLIENT */
	const char *trace; /* NULL: any */
	const char *verdict; /* NULL: any */
};

static bool matches(json_t *s, const struct want *w)
{
	const char *host =
	    json_string_value(json_object_get(json_object_get(s, "resource"), "host.name"));
	const char *tid = json_string_value(json_object_get(s, "traceId"));
	const char *verdict =
	    json_string_value(json_object_get(json_object_get(s, "attributes"), "sluice.verdict"));

	return host && !strcmp(host, w->node) &&
	       json_integer_value(json_object_get(s, "kind")) == w->kind &&
	       (!w->trace || (tid && !strcmp(tid, w->trace))) &&
	       (!w->verdict || (verdict && !strcmp(verdict, w->verdict)));
}

/* The newest span received that matches w, waiting up to SPAN_WAIT_MS;
 * NULL when none came. The caller decrefs. A request the collector could
 * not decode fails the test. */
static json_t *span_wait(const struct collector *c, const struct want *w)
{
	long long deadline = now_ms() + SPAN_WAIT_MS;

	do {
		char *text = read_file_from(c->out, 0), *line, *save = NULL;
		json_t *found = NULL;

		for (line = text ? strtok_r(text, "\n", &save) : NULL; line;
		     line = strtok_r(NULL, "\n", &save)) {
			json_t *s = json_loads(line, 0, NULL);

			if (json_object_get(s, "error"))
				ASSERT_STREQ(json_string_value(json_object_get(s, "error")), "",
					     "a request the collector could not decode");
			if (s && matches(s, w)) {
				json_decref(found);
				found = json_incref(s);
			}
			json_decref(s);
		}
		free(text);
		if (found)
			return found;
		sleep_ms(100);
	} while (now_ms() < deadline);
	return NULL;
}

static const char *str(json_t *span, const char *key)
{
	return json_string_value(json_object_get(span, key)) ?: "";
}

static json_t *attr(json_t *span, const char *key)
{
	return json_object_get(json_object_get(span, "attributes"), key);
}

static const char *attr_str(json_t *span, const char *key)
{
	return json_string_value(attr(span, key)) ?: "";
}

/* The audit line of node names the span's ids. */
static void audit_names(struct sl_env *env, char node, long from, json_t *span)
{
	char want[128];
	char *audit = mesh_audit(env, node, from);

	snprintf(want, sizeof(want), "\"trace_id\":\"%s\",\"span_id\":\"%s\"", str(span, "traceId"),
		 str(span, "spanId"));
	ASSERT_HAS_SUBSTR(audit, want,
			  node == 'a' ? "node A's audit: the span's ids"
				      : "node B's audit: the span's ids");
	free(audit);
}

static void cross_node(struct sl_env *env, const struct collector *c)
{
	long audit_a = mesh_audit_size(env, 'a'), audit_b = mesh_audit_size(env, 'b');
	struct client_req req = {
		.op = CL_ECHO,
		.cgroup = "job",
		.family = AF_INET,
		.port = PORT_ECHO,
		.bytes = ECHO_BYTES,
	};
	struct client_res res = {};
	json_t *out = NULL, *in = NULL;

	if (!ASSERT_OK(client_run(env, &req, &res), "client") ||
	    !ASSERT_EQ(res.recvd.bytes, ECHO_BYTES, "bytes echoed"))
		return;
	out = span_wait(c, &(struct want){ .node = NODE_A, .kind = 3 });
	if (!ASSERT_OK_PTR(out, "node A's CLIENT span"))
		return;
	in =
	    span_wait(c, &(struct want){ .node = NODE_B, .kind = 2, .trace = str(out, "traceId") });
	if (ASSERT_OK_PTR(in, "node B's SERVER span in the same trace")) {
		ASSERT_STREQ(str(in, "parentSpanId"), str(out, "spanId"),
			     "B's span's parent is A's span");
		ASSERT_FALSE(json_object_get(out, "parentSpanId"), "A's span is the root");
		ASSERT_STREQ(attr_str(in, "sluice.source.workload"), ID_JOB, "B: source workload");
		ASSERT_STREQ(attr_str(in, "sluice.verdict"), "allow", "B: verdict");
		ASSERT_STREQ(attr_str(in, "sluice.destination.service"), SVC_DATA, "B: service");
		ASSERT_TRUE(strtoull(str(out, "start"), NULL, 10) <=
				strtoull(str(in, "start"), NULL, 10),
			    "A's span starts before B's");
		audit_names(env, 'b', audit_b, in);
		json_decref(in);
	}
	ASSERT_STREQ(str(out, "name"), "outbound " SVC_DATA, "A: span name");
	ASSERT_STREQ(attr_str(out, "sluice.source.workload"), ID_JOB, "A: source workload");
	ASSERT_STREQ(attr_str(out, "server.address"), env->ip4_b, "A: server.address");
	ASSERT_EQ(json_integer_value(attr(out, "server.port")), PORT_ECHO, "A: server.port");
	ASSERT_EQ(json_integer_value(attr(out, "sluice.bytes.sent")), ECHO_BYTES, "A: bytes sent");
	ASSERT_EQ(json_integer_value(attr(out, "sluice.bytes.received")), ECHO_BYTES,
		  "A: bytes received");
	ASSERT_GE(json_integer_value(attr(out, "sluice.upstream.connect_us")), 1,
		  "A: the tunnel connection's connect time, from sockops");
	ASSERT_STREQ(str(json_object_get(out, "resource"), "service.name"), "sluiced",
		     "A: resource service.name");
	ASSERT_FALSE(json_object_get(out, "status"), "A: no error status");
	audit_names(env, 'a', audit_a, out);
	json_decref(out);
}

static void denied(struct sl_env *env, const struct collector *c, struct server *secret)
{
	struct client_req req = {
		.op = CL_ECHO,
		.cgroup = "job",
		.family = AF_INET,
		.port = PORT_SECRET,
		.bytes = 100,
	};
	struct client_res res = {};
	json_t *in, *status;
	char *text;

	int before = server_nr_conns(secret);

	if (!ASSERT_OK(client_run(env, &req, &res), "client"))
		return;
	ASSERT_EQ(server_nr_conns(secret) - before, 0, "connections that reached the server");
	in = span_wait(c, &(struct want){ .node = NODE_B, .kind = 2, .verdict = "deny" });
	if (!ASSERT_OK_PTR(in, "node B's span of the refusal"))
		return;
	status = json_object_get(in, "status");
	ASSERT_EQ(json_integer_value(json_object_get(status, "code")), 2, "status code ERROR");
	ASSERT_STREQ(json_string_value(json_object_get(status, "message")) ?: "",
		     "denied: policy-deny", "status message");
	ASSERT_STREQ(attr_str(in, "sluice.rule"), "secret-stays-on-node-b", "the rule");
	ASSERT_TRUE(json_object_get(in, "parentSpanId"), "under node A's span");
	text = read_file_from(c->out, 0);
	ASSERT_HAS_SUBSTR(text, str(in, "parentSpanId"), "node A's span was exported too");
	free(text);
	json_decref(in);
}

/* Whether text holds a JWT: a base64url JSON header, a dot, a base64url
 * JSON payload ("eyJ" is the base64 of '{"'). */
static bool has_jwt(const char *text)
{
	const char *p = text;

	while (p && (p = strstr(p, "eyJ"))) {
		p += 3;
		while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		       (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
			p++;
		if (!strncmp(p, ".eyJ", 4))
			return true;
	}
	return false;
}

#define ONCE_FLOWS 3

/* Every decision of node A (a refusal in BPF, tunnel flows allowed, one
 * denied by node B) and of node B is one audit line: the tunnel ones
 * matched by trace id across the nodes, none twice. No token, and nothing
 * of node A's key, is in either audit log, agent log or span. */
static void audit_exactly_once(struct sl_env *env, const struct collector *c)
{
	long audit_a = mesh_audit_size(env, 'a'), audit_b = mesh_audit_size(env, 'b');
	struct client_req req = { .op = CL_ECHO, .cgroup = "job", .family = AF_INET, .bytes = 100 };
	char *a = NULL, *b = NULL, *files[4], key[PATH_MAX], *pem, *line2, needle[64];
	const char *names[4] = { "node A's audit", "node B's audit", "node A's log",
				 "node B's log" };
	struct client_res res;
	json_t *o;

	for (int i = 0; i <= ONCE_FLOWS; i++) {
		req.port = i < ONCE_FLOWS ? PORT_ECHO : PORT_SECRET;
		ASSERT_OK(client_run(env, &req, &res), "client");
	}
	if (!connect_denied(env, "notebook", AF_INET, PORT_ECHO))
		return;
	/* Allowed flows are written at close, B's after A's VERDICT. */
	for (int i = 0; i < 50; i++) {
		free(a);
		free(b);
		a = mesh_audit(env, 'a', audit_a);
		b = mesh_audit(env, 'b', audit_b);
		if (count_substr(a, "\n") >= ONCE_FLOWS + 2 && count_substr(b, "\n") >= ONCE_FLOWS + 1)
			break;
		sleep_ms(100);
	}
	sleep_ms(300); /* a line written twice would be there by now */
	free(a);
	free(b);
	a = mesh_audit(env, 'a', audit_a);
	b = mesh_audit(env, 'b', audit_b);
	ASSERT_EQ(count_substr(a, "\n"), ONCE_FLOWS + 2, "node A's lines: flows, B's deny, a refusal");
	ASSERT_EQ(count_substr(a, "\"reason\":\"default-deny\""), 1, "node A: the refusal, once");
	ASSERT_EQ(count_substr(b, "\n"), ONCE_FLOWS + 1, "node B's lines: flows and its deny");
	ASSERT_EQ(count_substr(b, "\"verdict\":\"deny\""), 1, "node B: its deny, once");
	for (char *p = a, *save = NULL, *l; (l = strtok_r(p, "\n", &save)); p = NULL) {
		const char *tid;
		char want[64];

		o = json_loads(l, 0, NULL);
		tid = json_string_value(json_object_get(o, "trace_id"));
		if (tid) {
			snprintf(want, sizeof(want), "\"trace_id\":\"%s\"", tid);
			ASSERT_EQ(count_substr(b, want), 1, "node B's line of node A's tunnel flow");
		}
		json_decref(o);
	}
	free(a);
	free(b);

	files[0] = mesh_audit(env, 'a', 0);
	files[1] = mesh_audit(env, 'b', 0);
	files[2] = read_file_from(env->agent_log, 0);
	files[3] = read_file_from(env->agent_b_log, 0);
	/* The key's first base64 line after the PEM header. */
	mesh_pki_path(env, NODE_A "/" PKI_NODE_KEY, key, sizeof(key));
	pem = read_file_from(key, 0);
	line2 = pem ? strchr(pem, '\n') : NULL;
	if (ASSERT_OK_PTR(line2, "node A's key file"))
		snprintf(needle, sizeof(needle), "%.40s", line2 + 1);
	for (int i = 0; i < 4; i++) {
		char what[96];

		snprintf(what, sizeof(what), "a token in %s", names[i]);
		ASSERT_FALSE(files[i] && has_jwt(files[i]), what);
		snprintf(what, sizeof(what), "node A's key in %s", names[i]);
		ASSERT_FALSE(files[i] && line2 && strstr(files[i], needle), what);
		free(files[i]);
	}
	free(pem);
	files[0] = read_file_from(c->out, 0);
	ASSERT_FALSE(files[0] && has_jwt(files[0]), "a token in the spans");
	free(files[0]);
}

static void collector_gone(struct sl_env *env, struct collector *c)
{
	struct client_req req = {
		.op = CL_ECHO,
		.cgroup = "job",
		.family = AF_INET,
		.port = PORT_ECHO,
		.bytes = 100,
	};
	int ok = 0;
	char *text;

	collector_stop(env, c);
	for (int i = 0; i < GONE_FLOWS; i++) {
		struct client_res res = {};

		if (!client_run(env, &req, &res) && !res.err && res.recvd.bytes == 100)
			ok++;
	}
	ASSERT_EQ(ok, GONE_FLOWS, "flows that worked with the collector gone");
	sleep_ms(1500);
	text = scrape(env, env->ns_a, METRICS_URL);
	if (!text)
		return;
	ASSERT_GE(scrape_sample(text, "sluice_otlp_export_requests_total{result=\"failed\"}"), 1,
		  "failed exports counted");
	ASSERT_GE(scrape_sample(text, "sluice_otlp_spans_total{result=\"dropped_queue_full\"}"),
		  GONE_FLOWS - 2 * QUEUE, "spans dropped at the full queue, counted");
	ASSERT_EQ(scrape_sample(text, "sluice_otlp_queue_capacity_spans"), QUEUE,
		  "the queue's capacity");
	free(text);
}

void test_otlp(struct sl_env *env)
{
	struct collector c = { .pid = -1 };
	struct server *echo, *secret;
	char extra[512];
	struct mesh_cfg cfg = {
		.extra_a = extra,
		.extra_b = extra,
		.policy_b = MESH_POLICY_B_NO_SECRET,
	};

	if (!ASSERT_TRUE(collector_ready(), "the collector's modules (tests/otlp/setup.sh)") ||
	    !ASSERT_OK(collector_start(env, &c), "start the collector"))
		return;
	snprintf(extra, sizeof(extra),
		 "otlp:\n  endpoint: %s\n  interval: 200ms\n  timeout: 2s\n  queue: %d\n"
		 "  batch: 8\n",
		 c.url, QUEUE);
	if (!ASSERT_OK(mesh_setup(env, &cfg), "two agents exporting spans"))
		return;
	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	secret = server_start(env, SRV_ECHO, PORT_SECRET);
	if (!ASSERT_OK_PTR(echo, "echo server") || !ASSERT_OK_PTR(secret, "secret server"))
		return;
	if (test__start_subtest("cross_node"))
		cross_node(env, &c);
	if (test__start_subtest("denied"))
		denied(env, &c, secret);
	if (test__start_subtest("audit_exactly_once"))
		audit_exactly_once(env, &c);
	/* Last: the collector is gone after it. */
	if (test__start_subtest("collector_gone"))
		collector_gone(env, &c);
	collector_stop(env, &c);
}
