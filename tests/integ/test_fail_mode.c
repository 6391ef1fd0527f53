// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* failure_mode: what meshed connections do once the agent is gone (stopped
 * with --keep-pinned, heartbeat stale). closed: refused, counted as
 * agent-down. open: connect directly, counted as bypass. Policy denies hold
 * either way. */
#include <arpa/inet.h>
#include <errno.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

#define STALE_MARGIN_NS 200000000ull
#define STALE_WAIT_MS 10000

/* Starts the agent, proves the mesh works, stops it and waits out its
 * heartbeat. */
static bool agent_gone(struct sl_env *env, struct server *echo, bool fail_open, struct std_ids *ids)
{
	/* Short, yet twice the agent's 1 s heartbeat interval, so that a slow
	 * machine (qemu without KVM) does not see a live agent as stale. */
	struct agent_cfg cfg = {.fail_open = fail_open, .heartbeat_timeout = "2s"};
	struct sluice_config c;
	long long deadline;

	if (!start_std_agent(env, &cfg, true) || !get_std_ids(env, ids) ||
	    !echo_via_agent(env, echo, "job", AF_INET, PORT_ECHO, 1000, NULL))
		return false;
	if (!ASSERT_EQ(agent_stop(env), 0, "sluiced exit status after SIGTERM") ||
	    !ASSERT_OK(pinned_cfg(env, &c), "sluice_cfg still pinned"))
		return false;
	ASSERT_EQ(c.fail_mode, fail_open ? SLUICE_FAIL_OPEN : SLUICE_FAIL_CLOSED, "fail_mode");
	ASSERT_EQ(c.heartbeat_timeout_ns, 2000000000ull, "heartbeat_timeout_ns");
	deadline = now_ms() + STALE_WAIT_MS;
	while (mono_ns() - c.heartbeat_ns <= c.heartbeat_timeout_ns + STALE_MARGIN_NS &&
	       now_ms() < deadline)
		sleep_ms(20);
	return ASSERT_OK(pinned_cfg(env, &c), "sluice_cfg") &&
	       ASSERT_TRUE(mono_ns() - c.heartbeat_ns > c.heartbeat_timeout_ns,
			   "heartbeat is stale");
}

void test_fail_closed(struct sl_env *env)
{
	struct server *echo;
	struct std_ids ids;
	int conns;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !agent_gone(env, echo, false, &ids))
		return;
	conns = server_nr_conns(echo);
	denied_and_counted(env, "job", AF_INET, PORT_ECHO, ids.job, ids.data,
			   SLUICE_REASON_AGENT_DOWN);
	ASSERT_EQ(server_nr_conns(echo), conns, "connections the server saw");
	/* A denied destination stays denied, with its own reason. */
	denied_and_counted(env, "notebook", AF_INET, PORT_ECHO, ids.notebook, SLUICE_SERVICE_NONE,
			   SLUICE_REASON_DEFAULT_DENY);
}

void test_fail_open(struct sl_env *env)
{
	struct client_res res;
	struct sluice_flow fl;
	struct server *echo;
	struct std_ids ids;
	long long before;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !agent_gone(env, echo, true, &ids))
		return;
	before = pinned_violations(env, ids.job, ids.data, SLUICE_REASON_BYPASS);
	echo_direct(env, echo, "job", AF_INET, PORT_ECHO, &res);
	ASSERT_EQ(pinned_violations(env, ids.job, ids.data, SLUICE_REASON_BYPASS) - before, 1,
		  "violations[job, data, bypass] delta");
	ASSERT_EQ(pinned_flow(env, res.cookie, &fl), -ENOENT, "flows entry for the socket");
	/* Open only opens what the policy allows. */
	denied_and_counted(env, "notebook", AF_INET, PORT_ECHO, ids.notebook, SLUICE_SERVICE_NONE,
			   SLUICE_REASON_DEFAULT_DENY);
}
