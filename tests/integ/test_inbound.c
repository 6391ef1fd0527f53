// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * inbound: mesh-only. A server in workload db (mesh-only) on node A, the
 * agent's node, is reached through the agent only: a job's meshed
 * connection, which the agent opens from its own cgroup, gets through, and
 * so does anything else in the agent's cgroup. Every other SYN is dropped at
 * the server's listening socket, so connect() hears nothing and times out,
 * whether it comes from node B or from node A over loopback, and each
 * attempt is counted once as not-via-mesh under db's identity and port,
 * however often the client's kernel retransmits the SYN. db's own
 * connections and datagrams out get their answers. A workload left at
 * inbound: open stays reachable directly until a reload makes it mesh-only,
 * which leaves its established connections alone. Enforcement holds while
 * the agent is down, and a restart keeps the pinned link.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_proc.h"
#include "checks.h"
#include "client.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "workload_proc.h"

#define ID_DB "spiffe://acme.example/service/db"
#define ID_WEB "spiffe://acme.example/service/web"
#define PORT_DB 7300
#define PORT_WEB 7301
/* A listener in the agent's cgroup on every address, as the agent's tunnel
 * listener is. */
#define PORT_AGENT_LISTENER 7302
/* A TCP and UDP echo on node B that db may call directly. */
#define PORT_OUTSIDE 7400
/* The first SYN retransmission comes after 1 s (TCP_TIMEOUT_INIT): a
 * refused client waits long enough to have sent its SYN at least twice. */
#define REFUSED_WAIT_MS 2500
#define CTL_MS 10000

#define WORKLOADS(web_inbound)                                                                     \
	"  - cgroup: db\n"                                                                         \
	"    id: " ID_DB "\n"                                                                      \
	"    inbound: mesh-only\n"                                                                 \
	"  - cgroup: web\n"                                                                        \
	"    id: " ID_WEB "\n"                                                                     \
	"    inbound: " web_inbound "\n"

/* A server in a workload, with the identity and port its violations are
 * counted under. */
struct target {
	struct cg_server srv;
	const char *id;
	uint16_t port;
};

/* `sluicectl -P PIN -j CMD SUB`: exits 0 and prints JSON. */
static json_t *ctl_json(struct sl_env *env, const char *cmd, const char *sub)
{
	char bin[PATH_MAX], *out = NULL, *err = NULL;
	char *argv[] = {bin, "-P", env->pin_dir, "-j", (char *)cmd, (char *)sub, NULL};
	json_t *root = NULL;
	int ret;

	snprintf(bin, sizeof(bin), "%s/sluicectl", test__build_dir());
	ret = run_argv(argv, &out, &err, CTL_MS);
	if (ASSERT_EQ(ret, 0, "sluicectl exit status"))
		root = json_loads(out ? out : "", 0, NULL);
	if (!ASSERT_OK_PTR(root, "sluicectl output is JSON"))
		printf("sluicectl -j %s %s: %s%s\n", cmd, sub, out ? out : "", err ? err : "");
	free(out);
	free(err);
	return root;
}

/* The not-via-mesh count `sluicectl violation list` shows for t; 0
 * without a row, -1 when it cannot be read. */
static long long refused_count(struct sl_env *env, const struct target *t)
{
	json_t *rows = ctl_json(env, "violation", "list"), *r;
	long long count = 0;
	size_t i;

	if (!rows)
		return -1;
	json_array_foreach(rows, i, r)
	{
		const char *wl = json_string_value(json_object_get(r, "workload"));
		const char *reason = json_string_value(json_object_get(r, "reason"));

		if (!wl || !reason || strcmp(wl, t->id) || strcmp(reason, "not-via-mesh") ||
		    json_integer_value(json_object_get(r, "port")) != t->port)
			continue;
		ASSERT_TRUE(json_is_null(json_object_get(r, "service")), "not-via-mesh service");
		count = json_integer_value(json_object_get(r, "count"));
	}
	json_decref(rows);
	return count;
}

/* A direct connect to t from cgroup on node ns gets no answer although
 * the client retransmitted its SYN; t accepts nothing, and exactly one
 * violation is counted, shown by sluicectl under t's workload and port. */
static void refused_once(struct sl_env *env, struct target *t, const char *ns, const char *cgroup,
			 int family, const char *addr, uint16_t sport)
{
	struct attempt_req req = {.family = family,
				  .addr = addr,
				  .port = t->port,
				  .sport = sport,
				  .wait_ms = REFUSED_WAIT_MS};
	long long total = pinned_violations_total(env);
	long long count = refused_count(env, t);
	int accepted = server_accepted(&t->srv);
	struct attempt a;

	if (!attempt_run(env, ns, cgroup, &req, &a))
		return;
	ASSERT_EQ(a.err, ETIMEDOUT, "direct connect errno");
	ASSERT_GE(a.syn_retrans, 1, "SYNs retransmitted");
	ASSERT_EQ(server_accepted(&t->srv), accepted, "connections the server accepted");
	ASSERT_EQ(pinned_violations_total(env) - total, 1, "violations total delta");
	ASSERT_EQ(refused_count(env, t) - count, 1, "violation list: not-via-mesh delta");
}

/* A connect from cgroup on node ns to srv reaches it, with nothing
 * counted. */
static void reaches(struct sl_env *env, struct cg_server *srv, const char *ns, const char *cgroup,
		    int family, const char *addr, uint16_t port)
{
	struct attempt_req req = {
	    .family = family, .addr = addr, .port = port, .wait_ms = ANSWER_MS};
	long long total = pinned_violations_total(env);
	int accepted = server_accepted(srv);
	struct attempt a;

	if (!attempt_run(env, ns, cgroup, &req, &a))
		return;
	ASSERT_EQ(a.err, 0, "connect and echo errno");
	ASSERT_EQ(server_accepted(srv), accepted + 1, "connections the server accepted");
	ASSERT_EQ(pinned_violations_total(env), total, "violations total");
}

/* A job reaches db through the agent: its connect is redirected to the
 * agent's listener, and the agent connects to db. */
static void via_agent(struct sl_env *env, struct target *db)
{
	struct client_req req = {
	    .op = CL_ECHO, .cgroup = "job", .addr = env->ip4_a, .port = PORT_DB, .bytes = 4096};
	long long total = pinned_violations_total(env);
	int accepted = server_accepted(&db->srv);
	struct client_res res;
	char peer[64];

	if (!ASSERT_OK(client_run(env, &req, &res), "job client report"))
		return;
	if (!ASSERT_EQ(res.err, 0, "job echo errno"))
		printf("job: %s failed: %s\n", res.call, strerror(res.err));
	ASSERT_EQ(res.recvd.bytes, 4096, "job echo bytes back");
	sockaddr_str(&res.peer, peer, sizeof(peer));
	ASSERT_STREQ(peer, OUTBOUND4, "job's peer (the agent's listener)");
	ASSERT_EQ(server_accepted(&db->srv), accepted + 1, "connections db accepted");
	ASSERT_EQ(pinned_violations_total(env), total, "violations total");
}

/* db's own traffic is not inbound: answers to its direct TCP connect and
 * to its UDP datagram reach it. */
static void own_traffic(struct sl_env *env, struct cg_server *outside)
{
	struct attempt_req req = {
	    .family = AF_INET, .addr = env->ip4_b, .port = PORT_OUTSIDE, .wait_ms = ANSWER_MS};
	struct attempt a;

	reaches(env, outside, env->ns_a, "db", AF_INET, env->ip4_b, PORT_OUTSIDE);
	req.udp = true;
	if (attempt_run(env, env->ns_a, "db", &req, &a))
		ASSERT_EQ(a.err, 0, "udp exchange errno");
}

/* web turns mesh-only on reload: a connection it accepted before keeps
 * working, a new direct one is refused. */
static void reload_mesh_only(struct sl_env *env, struct agent_cfg *cfg, struct target *web)
{
	struct attempt_req req = {.family = AF_INET,
				  .addr = env->ip4_a,
				  .port = PORT_WEB,
				  .wait_ms = ANSWER_MS,
				  .hold = true};
	long from = agent_log_size(env);
	struct attempt a;
	pid_t pid;
	int fd;

	if (!attempt_start(env, env->ns_b, "unmanaged", &req, &a, &pid, &fd))
		return;
	if (!ASSERT_EQ(a.err, 0, "echo before the reload")) {
		child_reap(env, pid, fd);
		return;
	}
	cfg->extra_workloads = WORKLOADS("mesh-only");
	if (!ASSERT_OK(agent_write_config(env, cfg), "rewrite sluice.yaml") ||
	    !ASSERT_OK(agent_signal(env, SIGHUP), "SIGHUP") ||
	    !ASSERT_TRUE(agent_log_wait(env, from, "policy generation", LOG_WAIT_MS),
			 "reload applied")) {
		child_reap(env, pid, fd);
		return;
	}
	if (attempt_finish(env, pid, fd, &a))
		ASSERT_EQ(a.err, 0, "echo on the connection after the reload");
	refused_once(env, web, env->ns_b, "unmanaged", AF_INET, env->ip4_a, 0);
}

static void inbound_link(struct sl_env *env, uint32_t link_id)
{
	json_t *st = ctl_json(env, "status", "show"), *l;

	if (!st)
		return;
	l = json_object_get(json_object_get(st, "links"), "inbound");
	ASSERT_TRUE(json_is_true(json_object_get(l, "pinned")), "status: links.inbound.pinned");
	ASSERT_STREQ(json_string_value(json_object_get(l, "prog_name")), "sluice_inbound",
		     "status: links.inbound.prog_name");
	ASSERT_EQ(json_integer_value(json_object_get(l, "link_id")), link_id,
		  "status: links.inbound.link_id");
	json_decref(st);
}

/* Jobs reach db through the mesh; db may call node B's echo directly. */
static int write_policy(struct sl_env *env)
{
	char addrs[128];

	env_node_addrs(env, 'a', addrs, sizeof(addrs));
	return env_write_file(env, POLICY_FILE,
			      "version: 1\n"
			      "default: deny\n"
			      "services:\n"
			      "  - name: db\n"
			      "    addresses: [%s]\n"
			      "    ports: [%d]\n"
			      "  - name: outside\n"
			      "    addresses: [%s/32]\n"
			      "    ports: [%d]\n"
			      "    mesh: false\n"
			      "  - name: outside-udp\n"
			      "    addresses: [%s/32]\n"
			      "    ports: [%d]\n"
			      "    protocol: udp\n"
			      "    mesh: false\n"
			      "rules:\n"
			      "  - name: jobs-use-db\n"
			      "    from: {kind: job}\n"
			      "    to: [db]\n"
			      "    action: allow\n"
			      "  - name: db-calls-out\n"
			      "    from: {workload: \"" ID_DB "\"}\n"
			      "    to: [outside, outside-udp]\n"
			      "    action: allow\n",
			      addrs, PORT_DB, env->ip4_b, PORT_OUTSIDE, env->ip4_b, PORT_OUTSIDE);
}

void test_inbound(struct sl_env *env)
{
	struct agent_cfg cfg = {.extra_workloads = WORKLOADS("open")};
	struct target db = {.id = ID_DB, .port = PORT_DB};
	struct target web = {.id = ID_WEB, .port = PORT_WEB};
	struct cg_server outside, agent_listener;
	uint32_t link_id = 0, id;

	if (!ASSERT_OK(env_cgroup_add(env, "db"), "cgroup db") ||
	    !ASSERT_OK(env_cgroup_add(env, "web"), "cgroup web") ||
	    !server_start_in(env, env->ns_a, "db", PORT_DB, &db.srv) ||
	    !server_start_in(env, env->ns_a, "web", PORT_WEB, &web.srv) ||
	    !server_start_in(env, env->ns_b, "unmanaged", PORT_OUTSIDE, &outside) ||
	    !ASSERT_OK(agent_write_config(env, &cfg), "write sluice.yaml") ||
	    !ASSERT_OK(write_policy(env), "write policy.yaml") ||
	    !ASSERT_OK(agent_start(env, "--keep-pinned", NULL), "start sluiced") ||
	    !ASSERT_OK(pinned_link_id(env, SLUICE_LINK_INBOUND, &link_id), "inbound link id"))
		return;

	if (test__start_subtest("via_agent"))
		via_agent(env, &db);
	if (test__start_subtest("from_node_b"))
		refused_once(env, &db, env->ns_b, "unmanaged", AF_INET, env->ip4_a, 0);
	if (test__start_subtest("loopback_not_agent"))
		refused_once(env, &db, env->ns_a, "unmanaged", AF_INET, "127.0.0.1", 0);
	if (test__start_subtest("agent_cgroup"))
		reaches(env, &db.srv, env->ns_a, "sluiced", AF_INET, "127.0.0.1", PORT_DB);
	/* The sender is looked up by the reversed 4-tuple: a source port on
	 * which the agent listens must not make a stranger pass for it. */
	if (test__start_subtest("agent_port_as_source") &&
	    server_start_in(env, env->ns_a, "sluiced", PORT_AGENT_LISTENER, &agent_listener))
		refused_once(env, &db, env->ns_b, "unmanaged", AF_INET, env->ip4_a,
			     PORT_AGENT_LISTENER);
	if (env->has_ipv6 && test__start_subtest("ipv6")) {
		refused_once(env, &db, env->ns_b, "unmanaged", AF_INET6, env->ip6_a, 0);
		reaches(env, &db.srv, env->ns_a, "sluiced", AF_INET6, "::1", PORT_DB);
	}
	if (test__start_subtest("own_traffic"))
		own_traffic(env, &outside);
	if (test__start_subtest("open_workload"))
		reaches(env, &web.srv, env->ns_b, "unmanaged", AF_INET, env->ip4_a, PORT_WEB);
	if (test__start_subtest("reload"))
		reload_mesh_only(env, &cfg, &web);
	if (test__start_subtest("status"))
		inbound_link(env, link_id);
	if (test__start_subtest("restart")) {
		if (!ASSERT_EQ(agent_stop(env), 0, "sluiced exit status after SIGTERM"))
			return;
		/* Nobody is left to let a connection in: still refused. */
		refused_once(env, &db, env->ns_b, "unmanaged", AF_INET, env->ip4_a, 0);
		if (!ASSERT_OK(agent_start(env, "--keep-pinned", NULL), "restart sluiced") ||
		    !ASSERT_OK(pinned_link_id(env, SLUICE_LINK_INBOUND, &id), "inbound link id"))
			return;
		ASSERT_EQ(id, link_id, "inbound link id after restart");
		via_agent(env, &db);
		refused_once(env, &db, env->ns_b, "unmanaged", AF_INET, env->ip4_a, 0);
	}
}
