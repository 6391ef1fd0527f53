// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A policy in mode audit refuses nothing: a connect() its deny rule (or its
 * default) would refuse goes through the agent as an allow would, and is
 * audited as a would-deny with the rule and counted once: in BPF's counter,
 * in the violations map and in sluice_policy_would_deny_total. The same policy in mode enforce refuses it
 * with EPERM. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "mesh.h"
#include "pinned.h"
#include "scrape.h"
#include "servers.h"

#define RULE_DENY "notebooks-keep-out-of-secret"

/* The standard policy's services and rules, in mode. */
static int write_policy(struct sl_env *env, const char *mode)
{
	return env_write_file(env, POLICY_FILE,
			      "version: 1\n"
			      "mode: %s\n"
			      "services:\n"
			      "  - name: " SVC_DATA "\n"
			      "    addresses: [%s/32]\n"
			      "    ports: [7000, 7001, 7002, 7003]\n"
			      "  - name: " SVC_SECRET "\n"
			      "    addresses: [%s/32]\n"
			      "    ports: [7100]\n"
			      "rules:\n"
			      "  - name: jobs-use-data\n"
			      "    from: {kind: job}\n"
			      "    to: [" SVC_DATA ", " SVC_SECRET "]\n"
			      "    action: allow\n"
			      "  - name: " RULE_DENY "\n"
			      "    from: {kind: notebook}\n"
			      "    to: [" SVC_SECRET "]\n"
			      "    action: deny\n",
			      mode, env->ip4_b, env->ip4_b);
}

/* dp_counters[idx], summed over CPUs; -1 when it cannot be read. */
static long long dp_counter(struct sl_env *env, __u32 idx)
{
	int ncpu = libbpf_num_possible_cpus(), fd = pinned_fd(env, "dp_counters");
	long long sum = -1;
	__u64 *v;

	if (fd < 0 || ncpu <= 0)
		goto out;
	v = calloc(ncpu, sizeof(*v));
	if (v && !bpf_map_lookup_elem(fd, &idx, v)) {
		sum = 0;
		for (int i = 0; i < ncpu; i++)
			sum += v[i];
	}
	free(v);
out:
	if (fd >= 0)
		close(fd);
	return sum;
}

/* sluice_policy_would_deny_total of rule at connect(), 0 before its first. */
static long long metric(struct sl_env *env, const char *rule)
{
	char *text = scrape(env, env->ns_a, METRICS_URL), series[128];
	long long v;

	if (!text)
		return -1;
	snprintf(series, sizeof(series),
		 "sluice_policy_would_deny_total{rule=\"%s\",where=\"connect\"}", rule);
	v = scrape_sample(text, series);
	free(text);
	return v < 0 ? 0 : v;
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key)) ?: "";
}

/* The outbound lines with reason written on node A since from, waiting a
 * few seconds for the first (lines of BPF's events are written as the
 * agent reads them), as a JSON array. */
static json_t *lines_with_reason(struct sl_env *env, long from, const char *reason)
{
	json_t *arr = json_array();

	for (int i = 0; i < 50 && !json_array_size(arr); i++) {
		char *text = mesh_audit(env, 'a', from), *line, *save = NULL;

		for (line = text ? strtok_r(text, "\n", &save) : NULL; line;
		     line = strtok_r(NULL, "\n", &save)) {
			json_t *o = json_loads(line, 0, NULL);

			if (ASSERT_OK_PTR(o, "audit line is JSON") &&
			    !strcmp(jstr(o, "direction"), "outbound") &&
			    !strcmp(jstr(o, "reason"), reason))
				json_array_append(arr, o);
			json_decref(o);
		}
		free(text);
		if (!json_array_size(arr))
			usleep(100 * 1000);
	}
	return arr;
}

/* notebook's connect() to port, which the policy would deny by rule (NULL:
 * by its default), goes on as an allow would: a rule's through the agent
 * (the service is meshed), the default's directly (as default: allow
 * does). One would-deny is counted and written, naming rule and service. */
static void would_deny(struct sl_env *env, struct server *srv, uint16_t port, uint32_t identity,
		       uint32_t service, const char *svc_name, const char *rule)
{
	long long wd = dp_counter(env, SLUICE_CNT_WOULD_DENY);
	long long viol = pinned_violations(env, identity, service, SLUICE_REASON_WOULD_DENY);
	long long m = metric(env, rule ? rule : "default");
	long from = mesh_audit_size(env, 'a');
	json_t *arr, *o;

	if (!ASSERT_GE(wd, 0, "dp_counters readable") || !ASSERT_GE(m, 0, "metrics scraped") ||
	    !(rule ? echo_via_agent(env, srv, "notebook", AF_INET, port, 1000, NULL)
		   : echo_direct(env, srv, "notebook", AF_INET, port, NULL)))
		return;
	ASSERT_EQ(dp_counter(env, SLUICE_CNT_WOULD_DENY) - wd, 1, "would-deny counter delta");
	ASSERT_EQ(pinned_violations(env, identity, service, SLUICE_REASON_WOULD_DENY) - viol, 1,
		  "violations[notebook, service, would-deny] delta");
	arr = lines_with_reason(env, from, "would-deny");
	if (ASSERT_EQ(json_array_size(arr), 1, "would-deny lines")) {
		o = json_array_get(arr, 0);
		ASSERT_STREQ(jstr(o, "verdict"), "would-deny", "verdict");
		ASSERT_STREQ(jstr(o, "src_workload"), ID_NOTEBOOK, "src_workload");
		ASSERT_STREQ(jstr(o, "service"), svc_name, "service");
		ASSERT_STREQ(jstr(o, "rule"), rule ? rule : "", "rule");
		ASSERT_STREQ(jstr(o, "hook"), "connect", "hook");
	}
	json_decref(arr);
	ASSERT_EQ(metric(env, rule ? rule : "default") - m, 1,
		  "sluice_policy_would_deny_total delta");
}

/* The same policy, enforced: the rule's deny refuses with EPERM, audited
 * as a policy-deny, and no would-deny is counted. */
static void enforced(struct sl_env *env, struct server *secret, const struct std_ids *ids)
{
	long long wd = dp_counter(env, SLUICE_CNT_WOULD_DENY);
	uint32_t gen = pinned_generation(env);
	long from = agent_log_size(env), audit_from;
	char line[64];
	int conns;
	json_t *arr;

	if (!ASSERT_OK(write_policy(env, "enforce"), "write enforce policy.yaml") ||
	    !ASSERT_OK(agent_signal(env, SIGHUP), "SIGHUP"))
		return;
	snprintf(line, sizeof(line), "policy generation %u live", gen + 1);
	if (!ASSERT_TRUE(agent_log_wait(env, from, line, LOG_WAIT_MS), line))
		return;
	audit_from = mesh_audit_size(env, 'a');
	conns = server_nr_conns(secret);
	denied_and_counted(env, "notebook", AF_INET, PORT_SECRET, ids->notebook, ids->secret,
			   SLUICE_REASON_POLICY_DENY);
	ASSERT_EQ(server_nr_conns(secret), conns, "connections the secret server saw");
	ASSERT_EQ(dp_counter(env, SLUICE_CNT_WOULD_DENY) - wd, 0, "would-deny counter delta");
	arr = lines_with_reason(env, audit_from, "policy-deny");
	if (ASSERT_EQ(json_array_size(arr), 1, "policy-deny lines")) {
		ASSERT_STREQ(jstr(json_array_get(arr, 0), "verdict"), "deny", "verdict");
		ASSERT_STREQ(jstr(json_array_get(arr, 0), "rule"), RULE_DENY, "rule");
	}
	json_decref(arr);
}

void test_audit_mode(struct sl_env *env)
{
	struct server *echo, *secret;
	struct agent_cfg cfg = {};
	struct std_ids ids;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	secret = server_start(env, SRV_ECHO, PORT_SECRET);
	if (!ASSERT_OK_PTR(echo, "echo server") || !ASSERT_OK_PTR(secret, "secret server") ||
	    !ASSERT_OK(agent_write_config(env, &cfg), "write sluice.yaml") ||
	    !ASSERT_OK(write_policy(env, "audit"), "write audit policy.yaml") ||
	    !ASSERT_OK(agent_start(env, NULL), "start sluiced") || !get_std_ids(env, &ids))
		return;

	if (test__start_subtest("rule"))
		would_deny(env, secret, PORT_SECRET, ids.notebook, ids.secret, SVC_SECRET,
			   RULE_DENY);
	if (test__start_subtest("default"))
		would_deny(env, echo, PORT_ECHO, ids.notebook, ids.data, SVC_DATA, NULL);
	if (test__start_subtest("enforce"))
		enforced(env, secret, &ids);
}
