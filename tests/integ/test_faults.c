// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Faults of the data path and what the workload sees of them:
 *
 * - upstream_reset: the destination resets mid-stream (SRV_RESET). The job,
 *   through one agent, gets ECONNRESET rather than a clean EOF, which would
 *   pass a truncated stream for a whole one, and the agent's flow record
 *   (its -v "flow closed" line) names the reset.
 * - tunnel_faults/upstream_reset: the same across the tunnel; both agents'
 *   audit lines for the flow say "status":"ECONNRESET".
 * - tunnel_faults/peer_killed: node B's agent dies (SIGKILL) while the job
 *   streams through it: the job's connection is reset within
 *   PEER_GONE_MS, not left hanging, node A audits the error the flow ended
 *   with (ECONNRESET or EPIPE, whichever the socket reports first), and
 *   node A's agent keeps running.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "agent_proc.h"
#include "checks.h"
#include "client.h"
#include "env.h"
#include "harness.h"
#include "mesh.h"
#include "servers.h"

#define RESET_CLIENT_BYTES (1u << 20)
/* A stream that outlasts the test: it ends only by the fault. */
#define ENDLESS_BYTES (1ull << 40)
/* From the peer's death to the job's error: the tunnel socket's RST or EOF
 * arrives at once, so seconds would mean a hang. */
#define PEER_GONE_MS 3000
#define STREAMING_MS 10000

/* The job echoes RESET_CLIENT_BYTES to the reset server on node B's echo
 * port: the server took exactly RESET_AFTER bytes and the job got a reset
 * after at most those back. */
static bool job_sees_reset(struct sl_env *env, struct server *srv)
{
	struct client_req req = {
		.op = CL_ECHO,
		.cgroup = "job",
		.family = AF_INET,
		.port = PORT_ECHO,
		.bytes = RESET_CLIENT_BYTES,
	};
	struct client_res res = {};
	struct conn_record rec = {};
	bool ok;

	if (!ASSERT_OK(client_run(env, &req, &res), "client"))
		return false;
	ok = ASSERT_EQ(res.err, ECONNRESET, "the job's errno");
	/* The client reports an EOF mid-echo as ECONNRESET from "read-eof". */
	ok &= ASSERT_NO_SUBSTR(res.call, "eof", "the call that failed, not an EOF");
	ok &= ASSERT_TRUE(res.recvd.bytes <= RESET_AFTER, "bytes back at most what was echoed");
	ok &= ASSERT_EQ(res.recvd.mismatch_at, -1, "first differing byte");
	if (ASSERT_OK(server_wait_done(srv, server_nr_conns(srv), CLIENT_MS), "server done") &&
	    ASSERT_OK(server_get(srv, server_nr_conns(srv) - 1, &rec), "server record"))
		ok &= ASSERT_EQ(rec.in.bytes, RESET_AFTER, "bytes the server took before its RST");
	return ok;
}

void test_upstream_reset(struct sl_env *env)
{
	struct agent_cfg cfg = {};
	struct server *srv;
	long from;

	srv = server_start(env, SRV_RESET, PORT_ECHO);
	if (!ASSERT_OK_PTR(srv, "reset server") ||
	    !ASSERT_OK(agent_write_config(env, &cfg), "write sluice.yaml") ||
	    !ASSERT_OK(agent_write_std_policy(env), "write policy.yaml") ||
	    !ASSERT_OK(agent_start(env, "-v", NULL), "start sluiced -v"))
		return;
	from = agent_log_size(env);
	job_sees_reset(env, srv);
	ASSERT_TRUE(agent_log_wait(env, from, "error: Connection reset by peer", LOG_WAIT_MS),
		    "the agent's flow record names the reset");
	ASSERT_TRUE(agent_running(env), "the agent still runs");
}

/* Both agents audit the flow, each with the reset as its status. */
static void tunnel_upstream_reset(struct sl_env *env)
{
	long audit_a = mesh_audit_size(env, 'a'), audit_b = mesh_audit_size(env, 'b');
	struct server *srv = server_start(env, SRV_RESET, PORT_ECHO);
	char *audit;

	if (!ASSERT_OK_PTR(srv, "reset server") || !job_sees_reset(env, srv))
		return;
	if (ASSERT_TRUE(mesh_audit_wait(env, 'b', audit_b, "\"status\"", LOG_WAIT_MS),
			"node B audited the flow")) {
		audit = mesh_audit(env, 'b', audit_b);
		ASSERT_HAS_SUBSTR(audit, "\"direction\":\"inbound\"", "node B's audit: direction");
		ASSERT_HAS_SUBSTR(audit, "\"status\":\"ECONNRESET\"", "node B's audit: status");
		free(audit);
	}
	if (ASSERT_TRUE(mesh_audit_wait(env, 'a', audit_a, "\"status\"", LOG_WAIT_MS),
			"node A audited the flow")) {
		audit = mesh_audit(env, 'a', audit_a);
		ASSERT_HAS_SUBSTR(audit, "\"direction\":\"outbound\"", "node A's audit: direction");
		ASSERT_HAS_SUBSTR(audit, "\"status\":\"ECONNRESET\"", "node A's audit: status");
		free(audit);
	}
}

/* Waits until the echo server has seen bytes of the job's stream. */
static bool streaming(struct server *srv)
{
	long long deadline = now_ms() + STREAMING_MS;

	while (now_ms() < deadline) {
		if (server_nr_conns(srv) == 1)
			return true;
		sleep_ms(20);
	}
	return false;
}

/* An echo server on the sink's port: the reset server holds the echo port. */
static void peer_killed(struct sl_env *env)
{
	struct server *srv = server_start(env, SRV_ECHO, PORT_SINK);
	struct client_req req = {
		.op = CL_ECHO,
		.cgroup = "job",
		.family = AF_INET,
		.port = PORT_SINK,
		.bytes = ENDLESS_BYTES,
	};
	long audit_a = mesh_audit_size(env, 'a');
	struct client_res res = {};
	struct client c;
	long long t0;
	char *audit;

	if (!ASSERT_OK_PTR(srv, "echo server") ||
	    !ASSERT_OK(client_start(env, &req, &c), "start the job's stream"))
		return;
	if (!ASSERT_TRUE(streaming(srv), "the stream reached the server")) {
		client_finish(env, &c);
		return;
	}
	/* Mid-transfer: let bytes flow both ways first. */
	sleep_ms(200);
	t0 = now_ms();
	ASSERT_EQ(mesh_kill_b(env), 128 + SIGKILL, "node B's agent died of SIGKILL");
	if (ASSERT_OK(client_result(&c, &res, PEER_GONE_MS), "the job's stream ended")) {
		printf("the job's stream ended %lld ms after the kill, %llu bytes back\n",
		       now_ms() - t0, (unsigned long long)res.recvd.bytes);
		ASSERT_EQ(res.err, ECONNRESET, "the job's errno");
		ASSERT_NO_SUBSTR(res.call, "eof", "the call that failed, not an EOF");
		ASSERT_GE(res.recvd.bytes, 1, "bytes back before the kill");
		ASSERT_EQ(res.recvd.mismatch_at, -1, "first differing byte");
	}
	client_finish(env, &c);
	if (ASSERT_TRUE(mesh_audit_wait(env, 'a', audit_a, "\"status\"", LOG_WAIT_MS),
			"node A audited the flow")) {
		audit = mesh_audit(env, 'a', audit_a);
		ASSERT_HAS_SUBSTR(audit, "\"verdict\":\"allow\"", "node A's audit: verdict");
		/* Which error the tunnel socket reports first is the kernel's
		 * race: the reset (ECONNRESET), or a write after it (EPIPE).
		 * Either names the fault; "ok" would hide it. */
		ASSERT_HAS_SUBSTR(audit, "\"status\":\"E", "node A's audit: an errno as status");
		ASSERT_NO_SUBSTR(audit, "\"status\":\"ok\"", "node A's audit: not ok");
		free(audit);
	}
	ASSERT_TRUE(agent_running(env), "node A's agent still runs");
}

void test_tunnel_faults(struct sl_env *env)
{
	struct mesh_cfg cfg = {};

	if (!ASSERT_OK(mesh_setup(env, &cfg), "two agents"))
		return;
	if (test__start_subtest("upstream_reset"))
		tunnel_upstream_reset(env);
	/* Last: node B is gone after it. */
	if (test__start_subtest("peer_killed"))
		peer_killed(env);
}
