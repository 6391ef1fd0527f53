// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A workload dies with a flow open and its cgroup is removed under the
 * agent: the agent carries on and serves the next workload's flow. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

void test_cgroup_gone(struct sl_env *env)
{
	struct agent_cfg cfg = {
	    .extra_workloads = "  - cgroup: job-2\n"
			       "    id: spiffe://" TRUST_DOMAIN "/job/etl-2\n",
	};
	struct server *echo;
	struct client_res res;
	struct sluice_flow fl;
	struct client c;
	int status;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") ||
	    !ASSERT_OK(env_cgroup_add(env, "job-2"), "create cgroup job-2") ||
	    !start_std_agent(env, &cfg, false))
		return;

	if (!hold_echo(env, "job-2", AF_INET, 1000, &c, &res))
		return;
	if (!ASSERT_OK(pinned_flow(env, res.cookie, &fl), "flows entry while open")) {
		client_finish(env, &c);
		return;
	}

	/* SIGKILL through cgroup.kill, then rmdir, with the flow open. */
	ASSERT_OK(env_cgroup_remove(env, "job-2"), "kill and remove cgroup job-2");
	status = client_finish(env, &c);
	ASSERT_EQ(status, 128 + SIGKILL, "client exit (128 + signal)");
	wait_flow_gone(env, res.cookie);

	ASSERT_TRUE(agent_running(env), "sluiced still running");
	echo_via_agent(env, echo, "job", AF_INET, PORT_ECHO, 1000, NULL);
	ASSERT_TRUE(agent_running(env), "sluiced still running after the next flow");
}
