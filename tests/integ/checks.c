// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "policy.h"
#include "servers.h"

#define SERVER_DONE_MS 30000
#define FLOW_GONE_MS 10000
#define POLL_MS 10

bool start_std_agent(struct sl_env *env, const struct agent_cfg *cfg, bool keep_pinned)
{
	if (!ASSERT_OK(agent_write_config(env, cfg), "write sluice.yaml") ||
	    !ASSERT_OK(agent_write_std_policy(env), "write policy.yaml"))
		return false;
	if (keep_pinned)
		return ASSERT_OK(agent_start(env, "--keep-pinned", NULL), "start sluiced");
	return ASSERT_OK(agent_start(env, NULL), "start sluiced");
}

bool get_std_ids(struct sl_env *env, struct std_ids *ids)
{
	ids->job = pinned_identity(env, ID_JOB);
	ids->notebook = pinned_identity(env, ID_NOTEBOOK);
	ids->data = pinned_service(env, SVC_DATA);
	ids->secret = pinned_service(env, SVC_SECRET);
	return ASSERT_NEQ(ids->job, 0, "job identity") &&
	       ASSERT_NEQ(ids->notebook, 0, "notebook identity") &&
	       ASSERT_NEQ(ids->data, 0, "data service id") &&
	       ASSERT_NEQ(ids->secret, 0, "secret service id");
}

void sockaddr_ip(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *addr = ss->ss_family == AF_INET6
			       ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
			       : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (!inet_ntop(ss->ss_family, addr, buf, len))
		snprintf(buf, len, "(family %d)", ss->ss_family);
}


/* Runs the echo and the checks both routes share; *rec is the server's
 * record of the connection. */
static bool echo_checked(struct sl_env *env, struct server *srv, const char *cgroup, int family,
			 uint16_t port, uint64_t bytes, struct client_res *res,
			 struct conn_record *rec)
{
	struct client_req req = {
	    .op = CL_ECHO,
	    .cgroup = cgroup,
	    .family = family,
	    .port = port,
	    .bytes = bytes,
	};
	int before = server_nr_conns(srv);
	char ip[INET6_ADDRSTRLEN];

	if (!ASSERT_OK(client_run(env, &req, res), "echo client report"))
		return false;
	if (!ASSERT_EQ(res->err, 0, "echo client errno"))
		printf("echo from %s: %s failed: %s\n", cgroup, res->call, strerror(res->err));
	ASSERT_EQ(res->recvd.bytes, bytes, "echo bytes back");
	ASSERT_EQ(res->recvd.mismatch_at, -1, "echo first differing byte");
	ASSERT_EQ(res->recvd.crc, res->sent.crc, "echo crc back");
	ASSERT_TRUE(res->eof, "echo client saw EOF");
	if (!ASSERT_EQ(server_nr_conns(srv), before + 1, "server connections") ||
	    !ASSERT_OK(server_wait_done(srv, before + 1, SERVER_DONE_MS), "server conn done") ||
	    !ASSERT_OK(server_get(srv, before, rec), "server record"))
		return false;
	sockaddr_ip(&rec->peer, ip, sizeof(ip));
	ASSERT_STREQ(ip, family == AF_INET6 ? env->ip6_a : env->ip4_a, "server's peer is node A");
	ASSERT_EQ(rec->in.bytes, bytes, "server bytes in");
	ASSERT_EQ(rec->in.mismatch_at, -1, "server first differing byte");
	ASSERT_TRUE(rec->eof, "server saw EOF");
	return !res->err && res->recvd.bytes == bytes && res->recvd.mismatch_at == -1;
}

bool echo_via_agent(struct sl_env *env, struct server *srv, const char *cgroup, int family,
		    uint16_t port, uint64_t bytes, struct client_res *out)
{
	struct conn_record rec;
	struct client_res res;
	char peer[64];
	bool ok;

	ok = echo_checked(env, srv, cgroup, family, port, bytes, &res, &rec);
	sockaddr_str(&res.peer, peer, sizeof(peer));
	ok &= ASSERT_STREQ(peer, family == AF_INET6 ? OUTBOUND6 : OUTBOUND4,
			   "client's peer is the agent's listener");
	if (out)
		*out = res;
	return ok;
}

bool echo_direct(struct sl_env *env, struct server *srv, const char *cgroup, int family,
		 uint16_t port, struct client_res *out)
{
	char peer[64], want[64];
	struct conn_record rec;
	struct client_res res;
	bool ok;

	ok = echo_checked(env, srv, cgroup, family, port, 1000, &res, &rec);
	sockaddr_str(&res.peer, peer, sizeof(peer));
	if (family == AF_INET6)
		snprintf(want, sizeof(want), "[%s]:%u", env->ip6_b, port);
	else
		snprintf(want, sizeof(want), "%s:%u", env->ip4_b, port);
	ok &= ASSERT_STREQ(peer, want, "client's peer is the server itself");
	/* Same port on both ends: one TCP connection, no proxy between. */
	ok &= ASSERT_EQ(sockaddr_port(&rec.peer), sockaddr_port(&res.local),
			"server's peer port is the client's port");
	if (out)
		*out = res;
	return ok;
}

bool connect_denied(struct sl_env *env, const char *cgroup, int family, uint16_t port)
{
	struct client_req req = {
	    .op = CL_CONNECT,
	    .cgroup = cgroup,
	    .family = family,
	    .port = port,
	};
	struct client_res res;

	if (!ASSERT_OK(client_run(env, &req, &res), "connect client report"))
		return false;
	if (!ASSERT_EQ(res.err, EPERM, "connect errno")) {
		printf("connect from %s to port %u: %s (call %s)\n", cgroup, port,
		       res.err ? strerror(res.err) : "succeeded", res.call[0] ? res.call : "-");
		return false;
	}
	return ASSERT_STREQ(res.call, "connect", "failing call");
}

bool denied_and_counted(struct sl_env *env, const char *cgroup, int family, uint16_t port,
			uint32_t identity, uint32_t service, uint32_t reason)
{
	long long before = pinned_violations(env, identity, service, reason);
	long long total = pinned_violations_total(env);
	char name[128];
	bool ok;

	ok = connect_denied(env, cgroup, family, port);
	snprintf(name, sizeof(name), "violations[%u, %u, %s] delta", identity, service,
		 policy_reason_name(reason));
	ok &= ASSERT_EQ(pinned_violations(env, identity, service, reason) - before, 1, name);
	ok &= ASSERT_EQ(pinned_violations_total(env) - total, 1, "violations total delta");
	return ok;
}

bool hold_echo(struct sl_env *env, const char *cgroup, int family, uint64_t bytes, struct client *c,
	       struct client_res *res)
{
	struct client_req req = {
	    .op = CL_ECHO,
	    .cgroup = cgroup,
	    .family = family,
	    .port = PORT_ECHO,
	    .bytes = bytes,
	    .hold = true,
	};

	if (!ASSERT_OK(client_start(env, &req, c), "client start"))
		return false;
	if (ASSERT_OK(client_result(c, res, CLIENT_MS), "client report (open)")) {
		if (ASSERT_EQ(res->err, 0, "client errno"))
			return true;
		printf("client from %s: %s failed: %s\n", cgroup, res->call, strerror(res->err));
	}
	client_finish(env, c);
	return false;
}

bool wait_flow_gone(struct sl_env *env, uint64_t cookie)
{
	long long deadline = now_ms() + FLOW_GONE_MS;
	struct sluice_flow fl;
	int ret;

	while ((ret = pinned_flow(env, cookie, &fl)) == 0 && now_ms() < deadline)
		sleep_ms(POLL_MS);
	return ASSERT_EQ(ret, -ENOENT, "flow entry removed after close");
}

bool wait_map_count(struct sl_env *env, const char *map, int n, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	char name[64];
	int count;

	while ((count = pinned_count(env, map)) != n && now_ms() < deadline)
		sleep_ms(POLL_MS);
	snprintf(name, sizeof(name), "%s entries", map);
	return ASSERT_EQ(count, n, name);
}

long long wait_svc_closed(struct sl_env *env, uint32_t identity, uint32_t service, long long n)
{
	long long deadline = now_ms() + SERVER_DONE_MS;
	struct sluice_svc_stats st = {};

	while (!pinned_svc_stats(env, identity, service, &st) && (long long)st.closed < n &&
	       now_ms() < deadline)
		sleep_ms(POLL_MS);
	return st.closed;
}
