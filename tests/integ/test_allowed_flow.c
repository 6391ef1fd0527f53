// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A job reaches a service it is allowed to, through the agent, and every
 * byte arrives in both directions, including across a half-close. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>

#include "checks.h"
#include "client.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

#define SMALL 1000
#define BULK (100ull << 20)
#define HALF 65536

static void small(struct sl_env *env, struct server *echo, uint32_t job, uint32_t data)
{
	struct sluice_svc_stats before, after;
	struct conn_record rec = {};
	struct client_res res = {};
	struct sluice_flow fl = {};
	char peer[64], ip[64];
	struct client c;

	if (!ASSERT_OK(pinned_svc_stats(env, job, data, &before), "svc_stats before") ||
	    !hold_echo(env, "job", AF_INET, SMALL, &c, &res))
		return;
	ASSERT_EQ(res.recvd.bytes, SMALL, "bytes echoed");
	ASSERT_EQ(res.recvd.mismatch_at, -1, "first differing byte");
	ASSERT_EQ(res.recvd.crc, res.sent.crc, "crc echoed");
	sockaddr_str(&res.peer, peer, sizeof(peer));
	ASSERT_STREQ(peer, OUTBOUND4, "client's peer is the agent's listener");

	/* While the connection is open: the server sees node A, the agent
	 * tracks the flow under the client socket's cookie. */
	if (ASSERT_OK(server_get(echo, 0, &rec), "server record")) {
		sockaddr_ip(&rec.peer, ip, sizeof(ip));
		ASSERT_STREQ(ip, env->ip4_a, "server's peer is node A");
	}
	ASSERT_EQ(server_nr_conns(echo), 1, "server connections");
	if (ASSERT_OK(pinned_flow(env, res.cookie, &fl), "flows entry while open")) {
		ASSERT_EQ(fl.dst.family, AF_INET, "flow family");
		ASSERT_EQ(fl.dst.addr[0], inet_addr(env->ip4_b), "flow original address");
		ASSERT_EQ(fl.dst.port, htons(PORT_ECHO), "flow original port");
		ASSERT_EQ(fl.dst.identity, job, "flow identity");
		ASSERT_EQ(fl.dst.service, data, "flow service");
		ASSERT_EQ(fl.state, SLUICE_FLOW_ESTABLISHED, "flow state");
	}
	ASSERT_EQ(pinned_links_to(env, res.cookie), 1, "flow_links entries for the flow");
	ASSERT_OK(pinned_svc_stats(env, job, data, &after), "svc_stats after");
	ASSERT_EQ(after.flows - before.flows, 1, "svc_stats flows delta");

	client_release(&c);
	if (ASSERT_OK(client_result(&c, &res, CLIENT_MS), "client report (closed)")) {
		ASSERT_EQ(res.err, 0, "client errno at close");
		ASSERT_TRUE(res.eof, "client saw EOF");
	}
	if (ASSERT_OK(server_wait_done(echo, 1, CLIENT_MS), "server done") &&
	    ASSERT_OK(server_get(echo, 0, &rec), "server record (closed)")) {
		ASSERT_EQ(rec.in.bytes, SMALL, "server bytes in");
		ASSERT_TRUE(rec.eof, "server saw EOF");
	}
	wait_flow_gone(env, res.cookie);
	client_finish(env, &c);
}

static void bulk(struct sl_env *env, struct server *sink, struct server *source, uint32_t job,
		 uint32_t data)
{
	struct client_req up = {
	    .op = CL_UPLOAD,
	    .cgroup = "job",
	    .family = AF_INET,
	    .port = PORT_SINK,
	    .bytes = BULK,
	};
	struct client_req down = up;
	struct sluice_svc_stats before, after;
	struct conn_record rec;
	struct client_res res;
	char peer[64];

	down.op = CL_DOWNLOAD;
	down.port = PORT_SOURCE;
	ASSERT_OK(pinned_svc_stats(env, job, data, &before), "svc_stats before");

	if (ASSERT_OK(client_run(env, &up, &res), "upload client report")) {
		ASSERT_EQ(res.err, 0, "upload errno");
		ASSERT_EQ(res.sent.bytes, BULK, "upload bytes sent");
		sockaddr_str(&res.peer, peer, sizeof(peer));
		ASSERT_STREQ(peer, OUTBOUND4, "upload client's peer is the agent");
		ASSERT_TRUE(res.eof, "upload client saw EOF");
		if (ASSERT_OK(server_wait_done(sink, 1, CLIENT_MS), "sink done") &&
		    ASSERT_OK(server_get(sink, 0, &rec), "sink record")) {
			ASSERT_EQ(rec.in.bytes, BULK, "sink bytes received");
			ASSERT_EQ(rec.in.mismatch_at, -1, "sink first differing byte");
			ASSERT_EQ(rec.in.crc, res.sent.crc, "sink crc == client crc");
			ASSERT_TRUE(rec.eof, "sink saw EOF");
		}
	}

	if (ASSERT_OK(client_run(env, &down, &res), "download client report")) {
		ASSERT_EQ(res.err, 0, "download errno");
		ASSERT_EQ(res.recvd.bytes, BULK, "download bytes received");
		ASSERT_EQ(res.recvd.mismatch_at, -1, "download first differing byte");
		ASSERT_TRUE(res.eof, "download client saw EOF");
		sockaddr_str(&res.peer, peer, sizeof(peer));
		ASSERT_STREQ(peer, OUTBOUND4, "download client's peer is the agent");
		if (ASSERT_OK(server_wait_done(source, 1, CLIENT_MS), "source done") &&
		    ASSERT_OK(server_get(source, 0, &rec), "source record")) {
			ASSERT_EQ(rec.out.bytes, BULK, "source bytes sent");
			ASSERT_EQ(res.recvd.crc, rec.out.crc, "client crc == source crc");
		}
	}

	ASSERT_OK(pinned_svc_stats(env, job, data, &after), "svc_stats after");
	ASSERT_EQ(after.flows - before.flows, 2, "svc_stats flows delta");
}

static void half_close(struct sl_env *env, struct server *half)
{
	struct client_req req = {
	    .op = CL_HALF_CLOSE,
	    .cgroup = "job",
	    .family = AF_INET,
	    .port = PORT_HALF_CLOSE,
	    .bytes = HALF,
	};
	struct conn_record rec;
	struct client_res res;
	char want[96];

	if (!ASSERT_OK(client_run(env, &req, &res), "client report"))
		return;
	ASSERT_EQ(res.err, 0, "client errno");
	/* The reply is written only after the server's read hit EOF, and it
	 * counts what arrived before that EOF. */
	snprintf(want, sizeof(want), HALF_CLOSE_REPLY, (unsigned long long)HALF, res.sent.crc);
	ASSERT_STREQ(res.reply, want, "reply after half-close");
	ASSERT_TRUE(res.eof, "client saw EOF after the reply");
	if (ASSERT_OK(server_wait_done(half, 1, CLIENT_MS), "server done") &&
	    ASSERT_OK(server_get(half, 0, &rec), "server record")) {
		ASSERT_EQ(rec.in.bytes, HALF, "server bytes before EOF");
		ASSERT_EQ(rec.in.mismatch_at, -1, "server first differing byte");
		ASSERT_TRUE(rec.eof, "server saw EOF");
		ASSERT_EQ(rec.err, 0, "server errno");
	}
}

void test_allowed_flow(struct sl_env *env)
{
	struct server *echo, *sink, *source, *half;
	struct agent_cfg cfg = {};
	struct std_ids ids;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	sink = server_start(env, SRV_SINK, PORT_SINK);
	source = server_start(env, SRV_SOURCE, PORT_SOURCE);
	half = server_start(env, SRV_HALF_CLOSE, PORT_HALF_CLOSE);
	if (!ASSERT_OK_PTR(echo, "echo server") || !ASSERT_OK_PTR(sink, "sink server") ||
	    !ASSERT_OK_PTR(source, "source server") || !ASSERT_OK_PTR(half, "half-close server"))
		return;
	if (!start_std_agent(env, &cfg, false) || !get_std_ids(env, &ids))
		return;

	if (test__start_subtest("small"))
		small(env, echo, ids.job, ids.data);
	if (test__start_subtest("bulk"))
		bulk(env, sink, source, ids.job, ids.data);
	if (test__start_subtest("half_close"))
		half_close(env, half);
}
