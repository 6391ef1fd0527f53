// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Every decision the datapath makes is in the audit log exactly once: a
 * refused connect() or datagram, a retry loop folded into a count, and a
 * flow the agent proxied without a tunnel, each with the workload, the
 * destination and the service it resolves to. */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "checks.h"
#include "client.h"
#include "env.h"
#include "harness.h"
#include "mesh.h"
#include "pinned.h"
#include "servers.h"
#include "util.h"

/* The audit lines written since from, that match direction and reason
 * (NULL: any), as a JSON array. */
static json_t *records(struct sl_env *env, long from, const char *direction, const char *reason)
{
	char *text = mesh_audit(env, 'a', from), *line, *save = NULL;
	json_t *arr = json_array();

	for (line = text ? strtok_r(text, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);
		const char *d, *r;

		if (!ASSERT_OK_PTR(o, "audit line is JSON"))
			continue;
		d = json_string_value(json_object_get(o, "direction"));
		r = json_string_value(json_object_get(o, "reason"));
		if ((!direction || (d && !strcmp(d, direction))) &&
		    (!reason || (r && !strcmp(r, reason))))
			json_array_append(arr, o);
		json_decref(o);
	}
	free(text);
	return arr;
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key)) ?: "";
}

static long long jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* The refusals' lines stand for count refusals each (1 when absent). */
static long long total_count(json_t *arr)
{
	long long n = 0;
	json_t *o;
	size_t i;

	json_array_foreach(arr, i, o)
		n += json_object_get(o, "count") ? jint(o, "count") : 1;
	return n;
}

/* Folded repeats are written once their second is over: wait for the
 * lines to add up to want, or give up after a few seconds. */
static json_t *records_adding_up(struct sl_env *env, long from, const char *reason,
				 long long want)
{
	json_t *arr = NULL;

	for (int i = 0; i < 50; i++) {
		json_decref(arr);
		arr = records(env, from, "outbound", reason);
		if (total_count(arr) >= want)
			break;
		usleep(100 * 1000);
	}
	return arr;
}

static void default_deny(struct sl_env *env, uint32_t gen)
{
	long from = mesh_audit_size(env, 'a');
	char want[64];
	json_t *arr, *o;

	if (!connect_denied(env, "notebook", AF_INET, PORT_ECHO))
		return;
	arr = records_adding_up(env, from, "default-deny", 1);
	if (!ASSERT_EQ(json_array_size(arr), 1, "default-deny lines"))
		goto out;
	o = json_array_get(arr, 0);
	snprintf(want, sizeof(want), "%s:%d", env->ip4_b, PORT_ECHO);
	ASSERT_EQ(jint(o, "schema"), 3, "schema");
	ASSERT_STREQ(jstr(o, "src_workload"), ID_NOTEBOOK, "src_workload");
	ASSERT_STREQ(jstr(o, "dst"), want, "dst");
	ASSERT_STREQ(jstr(o, "service"), SVC_DATA, "service resolved without a rule");
	ASSERT_STREQ(jstr(o, "verdict"), "deny", "verdict");
	ASSERT_STREQ(jstr(o, "hook"), "connect", "hook");
	ASSERT_STREQ(jstr(o, "proto"), "tcp", "proto");
	ASSERT_EQ(jint(o, "generation"), gen, "generation");
	ASSERT_GE(jint(o, "pid"), 1, "pid");
	ASSERT_NEQ(strlen(jstr(o, "comm")), 0, "comm");
	ASSERT_TRUE(!json_object_get(o, "count"), "no count on a single refusal");
out:
	json_decref(arr);
}

static void policy_deny(struct sl_env *env)
{
	long from = mesh_audit_size(env, 'a');
	json_t *arr, *o;

	if (!connect_denied(env, "notebook", AF_INET6, PORT_SECRET))
		return;
	arr = records_adding_up(env, from, "policy-deny", 1);
	if (ASSERT_EQ(json_array_size(arr), 1, "policy-deny lines")) {
		o = json_array_get(arr, 0);
		ASSERT_STREQ(jstr(o, "service"), SVC_SECRET, "service");
		ASSERT_STREQ(jstr(o, "rule"), "notebooks-keep-out-of-secret", "rule");
		ASSERT_HAS_SUBSTR(jstr(o, "dst"), "]:7100", "IPv6 dst");
	}
	json_decref(arr);
}

/* A retry loop: n refusals within a second or two are a handful of lines,
 * whose counts add up to n exactly. */
static void retry_loop(struct sl_env *env)
{
	struct client_req req = { .op = CL_RETRY, .cgroup = "notebook", .family = AF_INET,
				  .port = PORT_UNLISTED, .count = 500 };
	long from = mesh_audit_size(env, 'a');
	struct client_res res;
	json_t *arr;

	if (!ASSERT_OK(client_run(env, &req, &res), "retry client") ||
	    !ASSERT_EQ(res.completed, 500, "connects refused with EPERM"))
		return;
	arr = records_adding_up(env, from, "default-deny", 500);
	ASSERT_EQ(total_count(arr), 500, "refusals the lines stand for");
	ASSERT_TRUE(json_array_size(arr) <= 6, "at most 6 lines written for 500 refusals");
	ASSERT_GE(json_array_size(arr), 2, "the first at once, the repeats folded");
	ASSERT_STREQ(jstr(json_array_get(arr, 0), "service"), "", "no service has that port");
	json_decref(arr);
}

/* A flow through the agent without a tunnel: one allow line, at close,
 * with its bytes. */
static void proxied(struct sl_env *env, struct server *echo, const struct std_ids *ids)
{
	long from = mesh_audit_size(env, 'a');
	json_t *arr, *o;

	if (!echo_via_agent(env, echo, "job", AF_INET, PORT_ECHO, 1000, NULL))
		return;
	wait_svc_closed(env, ids->job, ids->data, 1);
	arr = NULL;
	for (int i = 0; i < 30; i++) {
		json_decref(arr);
		arr = records(env, from, "outbound", "ok");
		if (json_array_size(arr))
			break;
		usleep(100 * 1000);
	}
	if (ASSERT_EQ(json_array_size(arr), 1, "proxied flow lines")) {
		o = json_array_get(arr, 0);
		ASSERT_STREQ(jstr(o, "src_workload"), ID_JOB, "src_workload");
		ASSERT_STREQ(jstr(o, "service"), SVC_DATA, "service");
		ASSERT_STREQ(jstr(o, "verdict"), "allow", "verdict");
		ASSERT_STREQ(jstr(o, "rule"), "jobs-use-data", "rule");
		ASSERT_EQ(jint(o, "bytes_up"), 1000, "bytes_up");
		ASSERT_EQ(jint(o, "bytes_down"), 1000, "bytes_down");
		ASSERT_STREQ(jstr(o, "status"), "ok", "status");
	}
	json_decref(arr);
}

void test_audit_trail(struct sl_env *env)
{
	struct agent_cfg cfg = {};
	struct server *echo;
	struct std_ids ids;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !start_std_agent(env, &cfg, false) ||
	    !get_std_ids(env, &ids))
		return;

	if (test__start_subtest("default_deny"))
		default_deny(env, pinned_generation(env));
	if (test__start_subtest("policy_deny"))
		policy_deny(env);
	if (test__start_subtest("retry_loop"))
		retry_loop(env);
	if (test__start_subtest("proxied_flow"))
		proxied(env, echo, &ids);
}
