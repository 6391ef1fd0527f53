// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* allowed_flow/small and denied_flow over IPv6: connect6 steers and denies
 * like connect4, and the flow keeps the v6 original destination. */
#include <arpa/inet.h>
#include <string.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

static void allowed(struct sl_env *env, struct server *echo, uint32_t job, uint32_t data)
{
	struct sluice_svc_stats before, after;
	struct in6_addr want;
	struct client_res res;
	struct sluice_flow fl;
	char peer[64];
	struct client c;

	inet_pton(AF_INET6, env->ip6_b, &want);
	if (!ASSERT_OK(pinned_svc_stats(env, job, data, &before), "svc_stats before") ||
	    !hold_echo(env, "job", AF_INET6, 1000, &c, &res))
		return;
	ASSERT_EQ(res.recvd.bytes, 1000, "bytes echoed");
	ASSERT_EQ(res.recvd.mismatch_at, -1, "first differing byte");
	sockaddr_str(&res.peer, peer, sizeof(peer));
	ASSERT_STREQ(peer, OUTBOUND6, "client's peer is the agent's v6 listener");
	if (ASSERT_OK(pinned_flow(env, res.cookie, &fl), "flows entry while open")) {
		ASSERT_EQ(fl.dst.family, AF_INET6, "flow family");
		ASSERT_EQ(memcmp(fl.dst.addr, &want, sizeof(want)), 0, "flow original address");
		ASSERT_EQ(fl.dst.port, htons(PORT_ECHO), "flow original port");
		ASSERT_EQ(fl.dst.identity, job, "flow identity");
		ASSERT_EQ(fl.dst.service, data, "flow service");
	}
	ASSERT_OK(pinned_svc_stats(env, job, data, &after), "svc_stats after");
	ASSERT_EQ(after.flows - before.flows, 1, "svc_stats flows delta");
	client_release(&c);
	if (ASSERT_OK(client_result(&c, &res, CLIENT_MS), "client report (closed)"))
		ASSERT_TRUE(res.eof, "client saw EOF");
	wait_flow_gone(env, res.cookie);
	client_finish(env, &c);
	/* And a fresh connection, with the server's side checked. */
	echo_via_agent(env, echo, "job", AF_INET6, PORT_ECHO, 4096, NULL);
}

void test_ipv6(struct sl_env *env)
{
	struct agent_cfg cfg = {};
	struct server *echo;
	struct std_ids ids;

	if (!env->has_ipv6) {
		test__skip("the kernel has no IPv6 (/proc/net/if_inet6 is missing)");
		return;
	}
	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !start_std_agent(env, &cfg, false) ||
	    !get_std_ids(env, &ids))
		return;

	if (test__start_subtest("allowed"))
		allowed(env, echo, ids.job, ids.data);
	if (test__start_subtest("denied")) {
		denied_and_counted(env, "notebook", AF_INET6, PORT_SECRET, ids.notebook, ids.secret,
				   SLUICE_REASON_POLICY_DENY);
		denied_and_counted(env, "notebook", AF_INET6, PORT_ECHO, ids.notebook, ids.data,
				   SLUICE_REASON_DEFAULT_DENY);
	}
}
