// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* `sluicectl -j` output parses as JSON and says what the pinned maps say
 * (read here directly), with the keys docs/sluicectl.md documents; errors
 * are `Error: ...` on stderr and exit status 1. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

#define CTL_MS 10000
#define MAX_ARGS 12

/* Runs `sluicectl -P PIN ARGS...`; returns its exit status. */
static int ctl_run(struct sl_env *env, const char *pin, char **out, char **err, va_list ap)
{
	char bin[PATH_MAX], *argv[MAX_ARGS + 4];
	const char *a;
	int argc = 0, ret;

	snprintf(bin, sizeof(bin), "%s/sluicectl", test__build_dir());
	argv[argc++] = bin;
	argv[argc++] = "-P";
	argv[argc++] = (char *)pin;
	while ((a = va_arg(ap, const char *)) && argc < MAX_ARGS + 3)
		argv[argc++] = (char *)a;
	argv[argc] = NULL;
	*out = *err = NULL;
	ret = run_argv(argv, out, err, CTL_MS);
	printf("sluicectl");
	for (int i = 1; i < argc; i++)
		printf(" %s", argv[i]);
	printf(": exit %d\n", ret);
	if (*err && **err)
		printf("stderr: %s", *err);
	return ret;
}

static int ctl_run_args(struct sl_env *env, const char *pin, char **out, char **err, ...)
{
	va_list ap;
	int ret;

	va_start(ap, err);
	ret = ctl_run(env, pin, out, err, ap);
	va_end(ap);
	return ret;
}

/* `sluicectl -P PIN ARGS...` with -j among ARGS: must exit 0 and print
 * JSON. */
static json_t *ctl_vjson(struct sl_env *env, const char *what, va_list ap)
{
	char *out = NULL, *err = NULL, name[128];
	json_error_t jerr;
	json_t *root;
	int ret;

	ret = ctl_run(env, env->pin_dir, &out, &err, ap);
	snprintf(name, sizeof(name), "sluicectl -j %s exit status", what);
	if (!ASSERT_EQ(ret, 0, name)) {
		free(out);
		free(err);
		return NULL;
	}
	root = json_loads(out ? out : "", 0, &jerr);
	snprintf(name, sizeof(name), "sluicectl -j %s output parses as JSON", what);
	if (!ASSERT_OK_PTR(root, name))
		printf("line %d: %s\n%s\n", jerr.line, jerr.text, out);
	free(out);
	free(err);
	return root;
}

static json_t *ctl_json(struct sl_env *env, const char *what, ...)
{
	va_list ap;
	json_t *j;

	va_start(ap, what);
	j = ctl_vjson(env, what, ap);
	va_end(ap);
	return j;
}

/* A list command: an array with a row per entry of the pinned map. */
static json_t *ctl_list(struct sl_env *env, const char *map, const char *what, ...)
{
	char name[128];
	va_list ap;
	json_t *j;

	va_start(ap, what);
	j = ctl_vjson(env, what, ap);
	va_end(ap);
	if (!j)
		return NULL;
	snprintf(name, sizeof(name), "%s is an array", what);
	if (ASSERT_TRUE(json_is_array(j), name)) {
		snprintf(name, sizeof(name), "%s rows == %s entries", what, map);
		if (ASSERT_EQ(json_array_size(j), pinned_count(env, map), name))
			return j;
	}
	json_decref(j);
	return NULL;
}

/* root["a"]["b"] for "a.b"; NULL when any step is missing. */
static json_t *jget(json_t *root, const char *path)
{
	char key[64];

	while (root && *path) {
		size_t len = strcspn(path, ".");

		snprintf(key, sizeof(key), "%.*s", (int)len, path);
		root = json_object_get(root, key);
		path += len + (path[len] == '.');
	}
	return root;
}

static long long jint(json_t *root, const char *path)
{
	json_t *v = jget(root, path);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

static const char *jstr(json_t *root, const char *path)
{
	return json_string_value(jget(root, path));
}

static void status(struct sl_env *env)
{
	struct sluice_config cfg;
	uint32_t link_id = 0;
	char cg[128];
	json_t *j;

	j = ctl_json(env, "status", "-j", "status", NULL);
	if (!j || !ASSERT_OK(pinned_cfg(env, &cfg), "sluice_cfg"))
		goto out;
	ASSERT_TRUE(json_is_object(j), "status is an object");
	ASSERT_STREQ(jstr(j, "agent.state"), "running", "agent.state");
	ASSERT_EQ(jint(j, "agent.pid"), env->agent_pid, "agent.pid");
	ASSERT_TRUE(json_is_true(jget(j, "agent.pid_exists")), "agent.pid_exists");
	ASSERT_TRUE(json_is_false(jget(j, "agent.heartbeat_stale")), "agent.heartbeat_stale");
	ASSERT_EQ(jint(j, "agent.heartbeat_timeout_ns"), cfg.heartbeat_timeout_ns,
		  "agent.heartbeat_timeout_ns");
	ASSERT_EQ(jint(j, "agent.cgroup_id"), env_cgroup_id(env, "sluiced"), "agent.cgroup_id");
	snprintf(cg, sizeof(cg), "/%s/sluiced", env->name);
	ASSERT_STREQ(jstr(j, "agent.cgroup"), cg, "agent.cgroup");
	ASSERT_STREQ(jstr(j, "datapath"), "enforcing", "datapath");
	ASSERT_STREQ(jstr(j, "failure_mode"), "closed", "failure_mode");
	ASSERT_STREQ(jstr(j, "outbound.ipv4"), OUTBOUND4, "outbound.ipv4");
	ASSERT_STREQ(jstr(j, "outbound.ipv6"), OUTBOUND6, "outbound.ipv6");
	ASSERT_EQ(jint(j, "policy.active_slot"), cfg.active_slot, "policy.active_slot");
	ASSERT_EQ(jint(j, "policy.generation"), pinned_generation(env), "policy.generation");
	ASSERT_STREQ(jstr(j, "policy.default"), "deny", "policy.default");
	ASSERT_EQ(json_array_size(jget(j, "policy.slots")), 2, "policy.slots size");
	ASSERT_EQ(jint(j, "abi_version"), SLUICE_ABI_VERSION, "abi_version");
	if (ASSERT_OK(pinned_link_id(env, SLUICE_LINK_CONNECT4, &link_id), "connect4 link id")) {
		ASSERT_TRUE(json_is_true(jget(j, "links.connect4.pinned")),
			    "links.connect4.pinned");
		ASSERT_EQ(jint(j, "links.connect4.link_id"), link_id, "links.connect4.link_id");
		ASSERT_EQ(jint(j, "links.connect4.cgroup_id"), env_cgroup_id(env, "."),
			  "links.connect4.cgroup_id");
	}
	ASSERT_EQ(jint(j, "maps.flows.entries"), pinned_count(env, "flows"), "maps.flows.entries");
	ASSERT_EQ(jint(j, "maps.workloads.entries"), pinned_count(env, "workloads"),
		  "maps.workloads.entries");
	ASSERT_EQ(jint(j, "maps.violations.entries"), pinned_count(env, "violations"),
		  "maps.violations.entries");
out:
	json_decref(j);
}

static void workloads(struct sl_env *env)
{
	static const char *const names[][2] = {{"job", ID_JOB}, {"notebook", ID_NOTEBOOK}};
	json_t *j, *w;
	size_t i;

	j = ctl_list(env, "workloads", "workload list", "-j", "workload", "list", NULL);
	if (!j)
		return;
	for (size_t n = 0; n < 2; n++) {
		uint64_t cg_id = env_cgroup_id(env, names[n][0]);
		char cg[128];
		bool found = false;

		snprintf(cg, sizeof(cg), "/%s/%s", env->name, names[n][0]);
		json_array_foreach(j, i, w)
		{
			if (jint(w, "cgroup_id") != (long long)cg_id)
				continue;
			found = true;
			ASSERT_EQ(jint(w, "identity"), pinned_identity(env, names[n][1]),
				  "identity");
			ASSERT_STREQ(jstr(w, "workload"), names[n][1], "workload");
			ASSERT_TRUE(json_is_true(jget(w, "managed")), "managed");
			ASSERT_EQ(jint(w, "flags"), SLUICE_WL_MANAGED, "flags");
			ASSERT_STREQ(jstr(w, "cgroup"), cg, "cgroup");
		}
		ASSERT_TRUE(found, names[n][0]);
	}
	json_decref(j);
}

static void flows(struct sl_env *env, const struct client_res *open, uint32_t job, uint32_t data)
{
	json_t *j, *f;

	j = ctl_list(env, "flows", "flow list", "-j", "flow", "list", NULL);
	if (!j)
		return;
	if (!ASSERT_EQ(json_array_size(j), 1, "open flows"))
		goto out;
	f = json_array_get(j, 0);
	ASSERT_EQ((uint64_t)jint(f, "cookie"), open->cookie, "cookie");
	ASSERT_EQ(jint(f, "identity"), job, "identity");
	ASSERT_STREQ(jstr(f, "workload"), ID_JOB, "workload");
	ASSERT_STREQ(jstr(f, "family"), "ipv4", "family");
	ASSERT_STREQ(jstr(f, "saddr"), "127.0.0.1", "saddr");
	ASSERT_EQ(jint(f, "sport"), sockaddr_port(&open->local), "sport");
	ASSERT_STREQ(jstr(f, "daddr"), env->ip4_b, "daddr");
	ASSERT_EQ(jint(f, "dport"), PORT_ECHO, "dport");
	ASSERT_EQ(jint(f, "service_id"), data, "service_id");
	ASSERT_STREQ(jstr(f, "service"), SVC_DATA, "service");
	ASSERT_STREQ(jstr(f, "state"), "established", "state");
	ASSERT_STREQ(jstr(f, "verdict"), "redirect", "verdict");
	ASSERT_EQ(jint(f, "generation"), pinned_generation(env), "generation");
out:
	json_decref(j);
}

/* --sort and --limit: the busiest flow alone; a bad key is refused. */
static void flows_sorted(struct sl_env *env, const struct client_res *open)
{
	char *out = NULL, *err = NULL;
	json_t *j;
	int ret;

	j = ctl_json(env, "flow list --sort bytes --limit 1", "-j", "flow", "list", "--sort",
		     "bytes", "--limit", "1", NULL);
	if (j && ASSERT_EQ(json_array_size(j), 1, "flows with --limit 1"))
		ASSERT_EQ((uint64_t)jint(json_array_get(j, 0), "cookie"), open->cookie,
			  "the busiest flow");
	json_decref(j);
	ret = ctl_run_args(env, env->pin_dir, &out, &err, "flow", "list", "--sort", "size", NULL);
	ASSERT_EQ(ret, 1, "exit status of --sort size");
	ASSERT_HAS_SUBSTR(err, "--sort takes rtt, bytes or age, not 'size'", "--sort error");
	free(out);
	free(err);
}

/* Every row names where the caller went: the service, also for a
 * default-deny, and the address. */
static void violations(struct sl_env *env, const struct std_ids *ids)
{
	uint32_t nb = ids->notebook, secret = ids->secret, data = ids->data;
	char want[64];
	bool seen_pd = false, seen_dd = false;
	json_t *j, *v;
	size_t i;

	j = ctl_list(env, "violations", "violation list", "-j", "violation", "list", NULL);
	if (!j)
		return;
	json_array_foreach(j, i, v)
	{
		long long id = jint(v, "identity"), svc = jint(v, "service_id");
		const char *reason = jstr(v, "reason");

		if (id != nb || !reason)
			continue;
		if (svc == secret && !strcmp(reason, "policy-deny")) {
			seen_pd = true;
			ASSERT_EQ(jint(v, "count"),
				  pinned_violations(env, nb, secret, SLUICE_REASON_POLICY_DENY),
				  "policy-deny count == map");
			ASSERT_EQ(jint(v, "count"), 2, "policy-deny count");
			ASSERT_STREQ(jstr(v, "service"), SVC_SECRET, "policy-deny service");
			ASSERT_STREQ(jstr(v, "workload"), ID_NOTEBOOK, "policy-deny workload");
			snprintf(want, sizeof(want), "%s:%d", env->ip4_b, PORT_SECRET);
			ASSERT_STREQ(jstr(v, "destination"), want, "policy-deny destination");
		} else if (svc == data && !strcmp(reason, "default-deny")) {
			seen_dd = true;
			ASSERT_EQ(jint(v, "count"),
				  pinned_violations(env, nb, data, SLUICE_REASON_DEFAULT_DENY),
				  "default-deny count == map");
			ASSERT_EQ(jint(v, "count"), 1, "default-deny count");
			ASSERT_STREQ(jstr(v, "service"), SVC_DATA, "default-deny service");
			snprintf(want, sizeof(want), "%s:%d", env->ip4_b, PORT_ECHO);
			ASSERT_STREQ(jstr(v, "destination"), want, "default-deny destination");
		}
	}
	ASSERT_TRUE(seen_pd, "policy-deny row");
	ASSERT_TRUE(seen_dd, "default-deny row");
	json_decref(j);
}

static void stats(struct sl_env *env, uint32_t job, uint32_t data)
{
	struct sluice_svc_stats st;
	bool seen = false;
	json_t *j, *s;
	size_t i;

	j = ctl_list(env, "svc_stats", "stats", "-j", "stats", NULL);
	if (!j || !ASSERT_OK(pinned_svc_stats(env, job, data, &st), "svc_stats"))
		goto out;
	json_array_foreach(j, i, s)
	{
		if (jint(s, "identity") != job || jint(s, "service_id") != data)
			continue;
		seen = true;
		ASSERT_STREQ(jstr(s, "workload"), ID_JOB, "workload");
		ASSERT_STREQ(jstr(s, "service"), SVC_DATA, "service");
		ASSERT_EQ(jint(s, "flows"), st.flows, "flows == map");
		ASSERT_EQ(jint(s, "closed"), st.closed, "closed == map");
		ASSERT_EQ(jint(s, "bytes_sent"), st.bytes_sent, "bytes_sent == map");
		ASSERT_EQ(jint(s, "bytes_received"), st.bytes_received, "bytes_received == map");
		ASSERT_EQ(jint(s, "connect_us_sum"), st.connect_us_sum, "connect_us_sum == map");
		ASSERT_EQ(json_array_size(jget(s, "lat_buckets")), SLUICE_LAT_BUCKETS,
			  "lat_buckets size");
	}
	ASSERT_TRUE(seen, "row for job -> data");
out:
	json_decref(j);
}

static void policy(struct sl_env *env, uint32_t job, uint32_t data)
{
	struct sluice_config cfg;
	bool seen = false;
	json_t *j, *e;
	size_t i;

	j = ctl_json(env, "policy show", "-j", "policy", "show", NULL);
	if (!j || !ASSERT_OK(pinned_cfg(env, &cfg), "sluice_cfg"))
		goto out;
	ASSERT_EQ(jint(j, "slot"), cfg.active_slot, "slot");
	ASSERT_TRUE(json_is_true(jget(j, "active")), "active");
	ASSERT_TRUE(json_is_true(jget(j, "loaded")), "loaded");
	ASSERT_EQ(jint(j, "generation"), pinned_generation(env), "generation");
	ASSERT_STREQ(jstr(j, "default"), "deny", "default");
	ASSERT_EQ(json_array_size(jget(j, "entries")), pinned_policy_entries(env, cfg.active_slot),
		  "entries == map");
	json_array_foreach(jget(j, "entries"), i, e)
	{
		char cidr[64];

		snprintf(cidr, sizeof(cidr), "%s/32", env->ip4_b);
		if (jint(e, "identity") != job || jint(e, "port") != PORT_ECHO ||
		    !jstr(e, "cidr") || strcmp(jstr(e, "cidr"), cidr))
			continue;
		seen = true;
		ASSERT_STREQ(jstr(e, "workload"), ID_JOB, "workload");
		ASSERT_STREQ(jstr(e, "family"), "ipv4", "family");
		ASSERT_STREQ(jstr(e, "proto"), "tcp", "proto");
		ASSERT_STREQ(jstr(e, "action"), "redirect", "action");
		ASSERT_EQ(jint(e, "service_id"), data, "service_id");
		ASSERT_STREQ(jstr(e, "service"), SVC_DATA, "service");
		ASSERT_EQ(jint(e, "rule"), 1, "rule");
	}
	ASSERT_TRUE(seen, "entry job -> data port 7000");
out:
	json_decref(j);
}

static void errors(struct sl_env *env)
{
	char missing[PATH_MAX], *out = NULL, *err = NULL;
	json_t *j;
	int ret;

	snprintf(missing, sizeof(missing), "%s-missing", env->pin_dir);
	ret = ctl_run_args(env, missing, &out, &err, "status", NULL);
	ASSERT_EQ(ret, 1, "exit status with a missing pin dir");
	ASSERT_TRUE(err && !strncmp(err, "Error: ", 7), "stderr starts with 'Error: '");
	ASSERT_HAS_SUBSTR(err, missing, "stderr names the pin dir");
	ASSERT_STREQ(out, "", "stdout");
	free(out);
	free(err);

	ret = ctl_run_args(env, missing, &out, &err, "-j", "status", NULL);
	ASSERT_EQ(ret, 1, "-j exit status with a missing pin dir");
	j = json_loads(out ? out : "", 0, NULL);
	if (ASSERT_OK_PTR(j, "-j error parses as JSON"))
		ASSERT_TRUE(json_is_string(jget(j, "error")), "-j error has \"error\"");
	json_decref(j);
	free(out);
	free(err);
}

void test_sluicectl_json(struct sl_env *env)
{
	struct agent_cfg cfg = {};
	struct server *echo, *sec;
	struct client_res res;
	struct std_ids ids;
	struct client c;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	sec = server_start(env, SRV_ECHO, PORT_SECRET);
	if (!ASSERT_OK_PTR(echo, "echo server") || !ASSERT_OK_PTR(sec, "secret server") ||
	    !start_std_agent(env, &cfg, false) || !get_std_ids(env, &ids))
		return;

	/* Something to show: violations of two kinds, one closed flow, one
	 * open flow. */
	connect_denied(env, "notebook", AF_INET, PORT_SECRET);
	connect_denied(env, "notebook", AF_INET, PORT_SECRET);
	connect_denied(env, "notebook", AF_INET, PORT_ECHO);
	echo_via_agent(env, echo, "job", AF_INET, PORT_ECHO, 1000, NULL);
	wait_svc_closed(env, ids.job, ids.data, 1);
	if (!hold_echo(env, "job", AF_INET, 100, &c, &res))
		return;

	if (test__start_subtest("status"))
		status(env);
	if (test__start_subtest("workload_list"))
		workloads(env);
	if (test__start_subtest("flow_list"))
		flows(env, &res, ids.job, ids.data);
	if (test__start_subtest("flow_sort"))
		flows_sorted(env, &res);
	if (test__start_subtest("violation_list"))
		violations(env, &ids);
	if (test__start_subtest("stats"))
		stats(env, ids.job, ids.data);
	if (test__start_subtest("policy_show"))
		policy(env, ids.job, ids.data);
	if (test__start_subtest("errors"))
		errors(env);
	client_finish(env, &c);
}
