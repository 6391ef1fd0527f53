// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The agent's own upstream connection must pass the connect hook untouched:
 * were it redirected, the agent would accept its own connection (a loop) and
 * the server would never see one. Its cgroup is exempt from policy too.
 *
 * The config also registers the agent's cgroup as a workload that no rule
 * allows anything: only the exemption for the agent's cgroup, not the mere
 * absence of a registration, then keeps its connects working. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

static void upstream(struct sl_env *env, struct server *echo, uint32_t job)
{
	char closed[128], looped[128], *log;
	struct client_res res;
	long from = agent_log_size(env);
	struct client c;

	if (!hold_echo(env, "job", AF_INET, 100, &c, &res))
		return;
	/* One app socket, one upstream, one connection at the server. */
	ASSERT_EQ(server_nr_conns(echo), 1, "connections the server saw");
	ASSERT_EQ(pinned_count(env, "flows"), 1, "flows entries");
	ASSERT_EQ(pinned_count(env, "orig_dst"), 1, "orig_dst entries");
	ASSERT_EQ(pinned_count(env, "redirects"), 1, "redirects entries");
	ASSERT_EQ(pinned_count(env, "flow_links"), 1, "flow_links entries");
	ASSERT_EQ(pinned_links_to(env, res.cookie), 1, "flow_links entry -> the app's flow");
	client_release(&c);
	ASSERT_OK(client_result(&c, &res, CLIENT_MS), "client report (closed)");
	client_finish(env, &c);

	/* The agent's own account (debug log): one flow, to the server. */
	snprintf(closed, sizeof(closed), "flow closed: identity %u -> %s:%u ", job, env->ip4_b,
		 PORT_ECHO);
	snprintf(looped, sizeof(looped), "-> %s ", OUTBOUND4);
	ASSERT_TRUE(agent_log_wait(env, from, "flow closed", LOG_WAIT_MS), "agent logged the flow");
	log = agent_log(env, from);
	ASSERT_EQ(count_substr(log, "flow closed"), 1, "flows the agent logged");
	ASSERT_HAS_SUBSTR(log, closed, "agent log names the original destination");
	ASSERT_NO_SUBSTR(log, looped, "agent log has a flow to its own listener");
	free(log);
}

static void agent_cgroup(struct sl_env *env, struct server *unlisted)
{
	struct client_res res;
	long long before;
	struct sluice_flow fl;

	/* Port 7200 is in no service: default deny for every workload... */
	if (!connect_denied(env, "job", AF_INET, PORT_UNLISTED))
		return;
	before = pinned_violations_total(env);
	/* ...but not for the agent's cgroup, which connects directly. */
	echo_direct(env, unlisted, "sluiced", AF_INET, PORT_UNLISTED, &res);
	ASSERT_EQ(pinned_flow(env, res.cookie, &fl), -ENOENT, "flows entry for the socket");
	ASSERT_EQ(pinned_violations_total(env), before, "violations total");
}

void test_agent_upstream_not_redirected(struct sl_env *env)
{
	struct server *echo, *unlisted;
	struct agent_cfg cfg = {
	    .extra_workloads = "  - cgroup: sluiced\n"
			       "    id: spiffe://" TRUST_DOMAIN "/service/sluiced\n",
	};
	uint32_t job;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	unlisted = server_start(env, SRV_ECHO, PORT_UNLISTED);
	if (!ASSERT_OK_PTR(echo, "echo server") || !ASSERT_OK_PTR(unlisted, "unlisted server") ||
	    !ASSERT_OK(agent_write_config(env, &cfg), "write sluice.yaml") ||
	    !ASSERT_OK(agent_write_std_policy(env), "write policy.yaml") ||
	    !ASSERT_OK(agent_start(env, "-v", NULL), "start sluiced -v"))
		return;
	job = pinned_identity(env, ID_JOB);
	if (!ASSERT_NEQ(job, 0, "job identity"))
		return;

	if (test__start_subtest("upstream"))
		upstream(env, echo, job);
	if (test__start_subtest("agent_cgroup"))
		agent_cgroup(env, unlisted);
}
