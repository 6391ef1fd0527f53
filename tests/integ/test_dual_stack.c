// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * A dual-stack AF_INET6 socket, the JVM's default, reaches IPv4 peers
 * through IPv4-mapped addresses (::ffff:10.x.0.2). connect6 must decide
 * them as the IPv4 destinations they are: the allowed call goes through
 * the agent, the denied one meets its IPv4 rule (not only the default),
 * and under default allow an IPv4 deny rule cannot be walked around.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

#define MAPPED_LOOPBACK_OUTBOUND "[::ffff:127.0.0.1]:15001"

static void mapped(const struct sl_env *env, char *buf, size_t len)
{
	snprintf(buf, len, "::ffff:%s", env->ip4_b);
}

static void allowed(struct sl_env *env, struct server *echo, const struct std_ids *ids)
{
	struct client_req req = {
		.op = CL_ECHO, .cgroup = "job", .family = AF_INET6, .port = PORT_ECHO,
		.bytes = 4096, .hold = true,
	};
	struct conn_record rec;
	struct client_res res;
	struct sluice_flow fl;
	char addr[64], peer[64], ip[INET6_ADDRSTRLEN];
	struct in_addr want;
	struct client c;
	int before = server_nr_conns(echo);

	mapped(env, addr, sizeof(addr));
	req.addr = addr;
	inet_pton(AF_INET, env->ip4_b, &want);
	if (!ASSERT_OK(client_start(env, &req, &c), "client start"))
		return;
	if (!ASSERT_OK(client_result(&c, &res, CLIENT_MS), "client report (open)") ||
	    !ASSERT_EQ(res.err, 0, "client errno")) {
		printf("job's dual-stack connect to %s: %s: %s\n", addr, res.call,
		       strerror(res.err));
		client_finish(env, &c);
		return;
	}
	ASSERT_EQ(res.recvd.bytes, 4096, "bytes echoed");
	ASSERT_EQ(res.recvd.mismatch_at, -1, "first differing byte");
	sockaddr_str(&res.peer, peer, sizeof(peer));
	ASSERT_STREQ(peer, MAPPED_LOOPBACK_OUTBOUND, "client's peer: the agent's IPv4 listener");
	if (ASSERT_OK(pinned_flow(env, res.cookie, &fl), "flows entry while open")) {
		ASSERT_EQ(fl.dst.family, AF_INET, "flow family (unmapped)");
		ASSERT_EQ(fl.dst.addr[0], want.s_addr, "flow original address");
		ASSERT_EQ(fl.dst.port, htons(PORT_ECHO), "flow original port");
		ASSERT_EQ(fl.dst.identity, ids->job, "flow identity");
		ASSERT_EQ(fl.dst.service, ids->data, "flow service");
	}
	client_release(&c);
	client_result(&c, &res, CLIENT_MS);
	client_finish(env, &c);
	if (ASSERT_OK(server_wait_done(echo, before + 1, CLIENT_MS), "server conn done") &&
	    ASSERT_OK(server_get(echo, before, &rec), "server record")) {
		sockaddr_ip(&rec.peer, ip, sizeof(ip));
		ASSERT_STREQ(ip, env->ip4_a, "server's peer is node A over IPv4");
		ASSERT_EQ(rec.in.bytes, 4096, "server bytes in");
	}
}

/* connect() on AF_INET6 to the mapped address of a denied IPv4 service:
 * EPERM, and the counter that moves is the rule's, not the default's. */
static bool mapped_denied(struct sl_env *env, const char *cgroup, uint16_t port,
			  uint32_t identity, uint32_t service, uint32_t reason)
{
	struct client_req req = {
		.op = CL_CONNECT, .cgroup = cgroup, .family = AF_INET6, .port = port,
	};
	long long before = pinned_violations(env, identity, service, reason);
	long long total = pinned_violations_total(env);
	struct client_res res;
	char addr[64];
	bool ok;

	mapped(env, addr, sizeof(addr));
	req.addr = addr;
	if (!ASSERT_OK(client_run(env, &req, &res), "connect client report"))
		return false;
	ok = ASSERT_EQ(res.err, EPERM, "dual-stack connect errno");
	ok &= ASSERT_STREQ(res.call, "connect", "failing call");
	ok &= ASSERT_EQ(pinned_violations(env, identity, service, reason) - before, 1,
			"violation delta (rule's service and reason)");
	ok &= ASSERT_EQ(pinned_violations_total(env) - total, 1, "violations total delta");
	return ok;
}

/* Default allow, one IPv4 deny rule: the AF_INET6 route to the same
 * address is refused too. */
static void default_allow(struct sl_env *env, struct server *secret, const struct std_ids *ids)
{
	long from = agent_log_size(env);
	uint32_t gen = pinned_generation(env);
	char line[64];

	if (!ASSERT_OK(env_write_file(env, POLICY_FILE,
				      "version: 1\n"
				      "default: allow\n"
				      "services:\n"
				      "  - name: " SVC_DATA "\n"
				      "    addresses: [%s/32]\n"
				      "    ports: [7000, 7001, 7002, 7003]\n"
				      "  - name: " SVC_SECRET "\n"
				      "    addresses: [%s/32]\n"
				      "    ports: [7100]\n"
				      "rules:\n"
				      "  - name: nobody-reads-secret\n"
				      "    from: {any: true}\n"
				      "    to: [" SVC_SECRET "]\n"
				      "    action: deny\n",
				      env->ip4_b, env->ip4_b),
		       "write default-allow policy") ||
	    !ASSERT_OK(agent_signal(env, SIGHUP), "SIGHUP"))
		return;
	snprintf(line, sizeof(line), "policy generation %u live", gen + 1);
	if (!ASSERT_TRUE(agent_log_wait(env, from, line, LOG_WAIT_MS), line))
		return;
	mapped_denied(env, "job", PORT_SECRET, ids->job, ids->secret, SLUICE_REASON_POLICY_DENY);
	mapped_denied(env, "notebook", PORT_SECRET, ids->notebook, ids->secret,
		      SLUICE_REASON_POLICY_DENY);
	ASSERT_EQ(server_nr_conns(secret), 0, "connections the secret server saw");
}

void test_dual_stack(struct sl_env *env)
{
	struct server *echo, *secret;
	struct agent_cfg cfg = {};
	struct std_ids ids;

	if (!env->has_ipv6) {
		test__skip("the kernel has no IPv6 (/proc/net/if_inet6 is missing)");
		return;
	}
	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	secret = server_start(env, SRV_ECHO, PORT_SECRET);
	if (!ASSERT_OK_PTR(echo, "echo server") || !ASSERT_OK_PTR(secret, "secret server") ||
	    !start_std_agent(env, &cfg, false) || !get_std_ids(env, &ids))
		return;

	if (test__start_subtest("allowed"))
		allowed(env, echo, &ids);
	if (test__start_subtest("denied")) {
		mapped_denied(env, "notebook", PORT_SECRET, ids.notebook, ids.secret,
			      SLUICE_REASON_POLICY_DENY);
		mapped_denied(env, "notebook", PORT_ECHO, ids.notebook, ids.data,
			      SLUICE_REASON_DEFAULT_DENY);
		ASSERT_EQ(server_nr_conns(secret), 0, "connections the secret server saw");
	}
	if (test__start_subtest("default_allow"))
		default_allow(env, secret, &ids);
}
