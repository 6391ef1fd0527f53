// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* 2000 short connections through the agent: every one works, each is counted
 * once, and the per-flow maps drain back to where they started (no leak in
 * orig_dst, redirects, flows or flow_links). */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

#define CONNS 2000
#define DRAIN_MS 30000

static const char *const flow_maps[] = {"orig_dst", "redirects", "flows", "flow_links"};
#define NR_FLOW_MAPS (sizeof(flow_maps) / sizeof(flow_maps[0]))

void test_flow_churn(struct sl_env *env)
{
	struct client_req req = {
	    .op = CL_CHURN,
	    .cgroup = "job",
	    .family = AF_INET,
	    .port = PORT_ECHO,
	    .count = CONNS,
	};
	struct sluice_svc_stats before, after = {};
	int baseline[NR_FLOW_MAPS];
	struct agent_cfg cfg = {};
	struct client_res res;
	struct server *echo;
	struct std_ids ids;
	char peer[64];

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !start_std_agent(env, &cfg, false) ||
	    !get_std_ids(env, &ids) ||
	    !ASSERT_OK(pinned_svc_stats(env, ids.job, ids.data, &before), "svc_stats before"))
		return;
	for (size_t i = 0; i < NR_FLOW_MAPS; i++) {
		baseline[i] = pinned_count(env, flow_maps[i]);
		ASSERT_GE(baseline[i], 0, flow_maps[i]);
	}

	if (!ASSERT_OK(client_run(env, &req, &res), "churn client report"))
		return;
	if (!ASSERT_EQ(res.err, 0, "churn errno"))
		printf("churn stopped at connection %d: %s: %s\n", res.completed, res.call,
		       strerror(res.err));
	ASSERT_EQ(res.completed, CONNS, "connections completed");
	sockaddr_str(&res.peer, peer, sizeof(peer));
	ASSERT_STREQ(peer, OUTBOUND4, "first connection's peer is the agent");
	ASSERT_OK(server_wait_done(echo, CONNS, DRAIN_MS), "server saw every connection end");
	ASSERT_EQ(server_nr_conns(echo), CONNS, "connections the server saw");

	for (size_t i = 0; i < NR_FLOW_MAPS; i++)
		wait_map_count(env, flow_maps[i], baseline[i], DRAIN_MS);
	wait_svc_closed(env, ids.job, ids.data, before.closed + CONNS);
	ASSERT_OK(pinned_svc_stats(env, ids.job, ids.data, &after), "svc_stats after");
	ASSERT_EQ(after.flows - before.flows, CONNS, "svc_stats flows delta");
	ASSERT_EQ(after.closed - before.closed, CONNS, "svc_stats closed delta");
}
