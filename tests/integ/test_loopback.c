// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Loopback calls inside one workload (py4j between a notebook's Python and
 * its JVM, a Jupyter kernel's sockets, Spark's local services) pass under
 * default deny, over 127.0.0.1, ::1 and ::ffff:127.0.0.1, also to a
 * listener opened before the agent started. A call to another workload's
 * loopback listener is decided by policy like any other: refused and
 * counted by default, allowed by a rule for a loopback service.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "agent_proc.h"
#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"

#define PORT_PRIVATE 7300 /* the job's own; nobody else may call it */
#define PORT_EARLY 7301	  /* the job's, opened before the agent started */
#define PORT_GATEWAY 7302 /* the job's; notebooks may call it by rule */
#define SVC_GATEWAY "job-gateway"

struct listeners {
	struct client l[5];
	int nr;
};

static bool listen_as(struct sl_env *env, struct listeners *ls, const char *cgroup, int family,
		      const char *addr, uint16_t port)
{
	struct client_req req = { .op = CL_LISTEN, .cgroup = cgroup, .family = family,
				  .addr = addr, .port = port };
	struct client_res res;
	struct client *c = &ls->l[ls->nr];

	if (!ASSERT_OK(client_start(env, &req, c), "listener start"))
		return false;
	ls->nr++;
	if (!ASSERT_OK(client_result(c, &res, CLIENT_MS), "listener report"))
		return false;
	if (!ASSERT_EQ(res.err, 0, "listener errno")) {
		printf("%s listening on %s port %u: %s: %s\n", cgroup, addr, port, res.call,
		       strerror(res.err));
		return false;
	}
	return true;
}

/* Newest first: each listener holds the control pipes of those forked
 * before it, which see EOF only once it is gone. */
static void listeners_close(struct sl_env *env, struct listeners *ls)
{
	for (int i = ls->nr - 1; i >= 0; i--) {
		client_release(&ls->l[i]);
		client_finish(env, &ls->l[i]);
	}
}

/* connect() from cgroup to addr:port; returns its errno (0: connected,
 * and then directly, to the listener itself). */
static int call(struct sl_env *env, const char *cgroup, int family, const char *addr,
		uint16_t port)
{
	struct client_req req = { .op = CL_CONNECT, .cgroup = cgroup, .family = family,
				  .addr = addr, .port = port };
	struct client_res res;

	if (!ASSERT_OK(client_run(env, &req, &res), "connect client report"))
		return -1;
	if (!res.err)
		ASSERT_EQ(sockaddr_port(&res.peer), port, "peer is the listener (not redirected)");
	return res.err;
}

static int write_policy(struct sl_env *env)
{
	return env_write_file(env, POLICY_FILE,
			      "version: 1\n"
			      "default: deny\n"
			      "services:\n"
			      "  - name: " SVC_GATEWAY "\n"
			      "    addresses: [127.0.0.1/32, \"::1/128\"]\n"
			      "    ports: [%d]\n"
			      "    mesh: false\n"
			      "rules:\n"
			      "  - name: notebooks-use-the-gateway\n"
			      "    from: {kind: notebook}\n"
			      "    to: [" SVC_GATEWAY "]\n"
			      "    action: allow\n",
			      PORT_GATEWAY);
}

static void denied_counted(struct sl_env *env, int family, const char *addr, uint16_t port)
{
	uint32_t nb = pinned_identity(env, ID_NOTEBOOK);
	long long before = pinned_violations(env, nb, SLUICE_SERVICE_NONE,
					     SLUICE_REASON_DEFAULT_DENY);

	ASSERT_EQ(call(env, "notebook", family, addr, port), EPERM,
		  "notebook's connect to the job's loopback listener");
	ASSERT_EQ(pinned_violations(env, nb, SLUICE_SERVICE_NONE, SLUICE_REASON_DEFAULT_DENY) -
			  before,
		  1, "violations[notebook, -, default-deny] delta");
}

void test_loopback(struct sl_env *env)
{
	struct listeners ls = {};
	struct agent_cfg cfg = {};
	bool v6 = env->has_ipv6;

	if (!ASSERT_OK(agent_write_config(env, &cfg), "write sluice.yaml") ||
	    !ASSERT_OK(write_policy(env), "write policy.yaml") ||
	    !listen_as(env, &ls, "job", AF_INET, "127.0.0.1", PORT_EARLY) ||
	    !ASSERT_OK(agent_start(env, NULL), "start sluiced") ||
	    !listen_as(env, &ls, "job", AF_INET, "127.0.0.1", PORT_PRIVATE) ||
	    !listen_as(env, &ls, "job", AF_INET, "127.0.0.1", PORT_GATEWAY) ||
	    (v6 && !listen_as(env, &ls, "job", AF_INET6, "::1", PORT_PRIVATE)) ||
	    (v6 && !listen_as(env, &ls, "job", AF_INET6, "::1", PORT_GATEWAY)))
		goto out;

	if (test__start_subtest("own_ipv4")) {
		ASSERT_EQ(call(env, "job", AF_INET, "127.0.0.1", PORT_PRIVATE), 0,
			  "job to its own 127.0.0.1 listener");
		ASSERT_EQ(call(env, "job", AF_INET, "127.0.0.1", PORT_EARLY), 0,
			  "job to its listener from before the agent");
	}
	if (v6 && test__start_subtest("own_ipv6")) {
		ASSERT_EQ(call(env, "job", AF_INET6, "::1", PORT_PRIVATE), 0,
			  "job to its own ::1 listener");
		ASSERT_EQ(call(env, "job", AF_INET6, "::ffff:127.0.0.1", PORT_PRIVATE), 0,
			  "job to its own listener through ::ffff:127.0.0.1");
	}
	if (test__start_subtest("other_workload")) {
		denied_counted(env, AF_INET, "127.0.0.1", PORT_PRIVATE);
		if (v6)
			denied_counted(env, AF_INET6, "::1", PORT_PRIVATE);
		/* Nothing listens: the same refusal, so the verdict does not
		 * depend on who is listening elsewhere. */
		denied_counted(env, AF_INET, "127.0.0.1", PORT_UNLISTED);
	}
	if (test__start_subtest("by_rule")) {
		ASSERT_EQ(call(env, "notebook", AF_INET, "127.0.0.1", PORT_GATEWAY), 0,
			  "notebook to the gateway over 127.0.0.1 (rule)");
		if (v6)
			ASSERT_EQ(call(env, "notebook", AF_INET6, "::1", PORT_GATEWAY), 0,
				  "notebook to the gateway over ::1 (rule)");
	}
out:
	listeners_close(env, &ls);
}
