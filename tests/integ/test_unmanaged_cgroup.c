// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A process in a cgroup the config does not name is none of sluice's
 * business: it connects directly, even where workloads are denied, and
 * leaves no trace in the counters or the flow table. */
#include <arpa/inet.h>
#include <errno.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

void test_unmanaged_cgroup(struct sl_env *env)
{
	long long violations_before, violations_after;
	struct agent_cfg cfg = {};
	struct server *secret;
	struct client_res res;
	struct sluice_flow fl;
	int flows_before;

	secret = server_start(env, SRV_ECHO, PORT_SECRET);
	if (!ASSERT_OK_PTR(secret, "secret server") || !start_std_agent(env, &cfg, false))
		return;
	/* The destination really is denied to a managed workload. */
	if (!connect_denied(env, "notebook", AF_INET, PORT_SECRET))
		return;

	violations_before = pinned_violations_total(env);
	flows_before = pinned_count(env, "flows");
	ASSERT_GE(violations_before, 0, "violations readable");
	ASSERT_GE(flows_before, 0, "flows readable");

	echo_direct(env, secret, "unmanaged", AF_INET, PORT_SECRET, &res);
	ASSERT_EQ(pinned_flow(env, res.cookie, &fl), -ENOENT, "flows entry for the socket");
	violations_after = pinned_violations_total(env);
	ASSERT_EQ(violations_after, violations_before, "violations total");
	ASSERT_EQ(pinned_count(env, "flows"), flows_before, "flows entries");
}
