// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A notebook's connect() to what it may not reach fails with EPERM before a
 * packet leaves, and exactly one violation is counted, under the reason and
 * service a security engineer would look for. */
#include <arpa/inet.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

void test_denied_flow(struct sl_env *env)
{
	struct server *echo, *secret;
	struct agent_cfg cfg = {};
	struct std_ids ids;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	secret = server_start(env, SRV_ECHO, PORT_SECRET);
	if (!ASSERT_OK_PTR(echo, "echo server") || !ASSERT_OK_PTR(secret, "secret server") ||
	    !start_std_agent(env, &cfg, false) || !get_std_ids(env, &ids))
		return;

	if (test__start_subtest("policy_deny")) {
		denied_and_counted(env, "notebook", AF_INET, PORT_SECRET, ids.notebook, ids.secret,
				   SLUICE_REASON_POLICY_DENY);
		ASSERT_EQ(server_nr_conns(secret), 0, "connections the server saw");
	}
	if (test__start_subtest("default_deny")) {
		/* data is not for notebooks: no rule matches, the default
		 * denies, and the violation still names the service. */
		denied_and_counted(env, "notebook", AF_INET, PORT_ECHO, ids.notebook, ids.data,
				   SLUICE_REASON_DEFAULT_DENY);
		ASSERT_EQ(server_nr_conns(echo), 0, "connections the server saw");
		/* Nothing listens there: EPERM, not ECONNREFUSED, proves the
		 * verdict came before any packet; no service has the port. */
		denied_and_counted(env, "notebook", AF_INET, PORT_UNLISTED, ids.notebook,
				   SLUICE_SERVICE_NONE, SLUICE_REASON_DEFAULT_DENY);
	}
}
