// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Two nodes, two agents: a job on node A reaches node B's nginx and echo
 * server through the mTLS tunnel, and what crosses the wire between the
 * nodes is TLS, not the plaintext the job sent or nginx answered. Node B's
 * agent refuses what its own policy denies, whatever node A allowed, and
 * both agents audit the flows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_proc.h"
#include "capture.h"
#include "checks.h"
#include "client.h"
#include "env.h"
#include "harness.h"
#include "mesh.h"
#include "servers.h"

/* nginx listens on one of SVC_DATA's ports, which jobs may call. */
#define PORT_NGINX PORT_SOURCE
#define MARKER "sluice-plaintext-marker-7f3a9c"
#define PAGE_LINES 2000
#define ECHO_BYTES (1u << 20)
#define NGINX_READY_MS 10000
#define CURL_MS 15000

static int write_page(struct sl_env *env)
{
	char path[PATH_MAX];
	FILE *f;

	env_path(env, "www", path, sizeof(path));
	if (mkdir(path, 0755))
		return -errno;
	env_path(env, "www/page.txt", path, sizeof(path));
	f = fopen(path, "w");
	if (!f)
		return -errno;
	for (int i = 0; i < PAGE_LINES; i++)
		fprintf(f, "%s line %d\n", MARKER, i);
	return fclose(f) ? -errno : 0;
}

/* Debian's nginx in node B, as root without workers: the test's temp dir
 * is 0700. Ready once it wrote its pid file, which it does after binding. */
static pid_t start_nginx(struct sl_env *env)
{
	char conf[PATH_MAX], pidfile[PATH_MAX];
	long long deadline;
	pid_t pid;

	env_path(env, "nginx.pid", pidfile, sizeof(pidfile));
	if (write_page(env) ||
	    env_write_file(env, "nginx.conf",
			   "daemon off;\n"
			   "master_process off;\n"
			   "pid %s;\n"
			   "error_log %s/nginx-error.log;\n"
			   "events { worker_connections 64; }\n"
			   "http {\n"
			   "  access_log off;\n"
			   "  client_body_temp_path %s/nginx-tmp;\n"
			   "  proxy_temp_path %s/nginx-tmp;\n"
			   "  fastcgi_temp_path %s/nginx-tmp;\n"
			   "  uwsgi_temp_path %s/nginx-tmp;\n"
			   "  scgi_temp_path %s/nginx-tmp;\n"
			   "  server { listen %s:%d; root %s/www; }\n"
			   "}\n",
			   pidfile, env->tmp_dir, env->tmp_dir, env->tmp_dir, env->tmp_dir,
			   env->tmp_dir, env->tmp_dir, env->ip4_b, PORT_NGINX, env->tmp_dir))
		return -1;
	env_path(env, "nginx.conf", conf, sizeof(conf));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		child_reset_signals();
		if (netns_join(env->ns_b))
			_exit(126);
		execlp("nginx", "nginx", "-c", conf, "-p", env->tmp_dir, (char *)NULL);
		_exit(127);
	}
	env_track_child(env, pid);
	deadline = now_ms() + NGINX_READY_MS;
	while (access(pidfile, F_OK)) {
		if (now_ms() > deadline || !wait_child(pid, NULL, 0)) {
			printf("nginx did not start (see %s/nginx-error.log)\n", env->tmp_dir);
			return -1;
		}
		sleep_ms(20);
	}
	return pid;
}

/* curl in node A; as the job when join_job, else as a process outside
 * every workload. Returns curl's exit status, output in *out. */
static int curl(struct sl_env *env, bool join_job, char **out)
{
	char cmd[2 * PATH_MAX], join[PATH_MAX + 32] = "", procs[PATH_MAX], *err = NULL;
	char *argv[] = { "sh", "-c", cmd, NULL };
	int ret;

	if (join_job) {
		env_cgroup(env, "job", procs, sizeof(procs));
		snprintf(join, sizeof(join), "echo $$ > %s/cgroup.procs && ", procs);
	}
	snprintf(cmd, sizeof(cmd),
		 "%sexec nsenter --net=/run/netns/%s curl -sS --max-time 10 http://%s:%d/page.txt",
		 join, env->ns_a, env->ip4_b, PORT_NGINX);
	*out = NULL;
	ret = run_argv(argv, out, &err, CURL_MS);
	if (ret)
		printf("curl: exit %d: %s\n", ret, err ? err : "");
	free(err);
	return ret;
}

static void nginx_through_tunnel(struct sl_env *env)
{
	long audit_b = mesh_audit_size(env, 'b');
	struct capture *cap;
	char *page = NULL, *audit;

	if (!ASSERT_GE(start_nginx(env), 1, "nginx started in node B"))
		return;
	cap = capture_start(env->ns_b, "eth0");
	if (!ASSERT_OK_PTR(cap, "capture on node B's eth0"))
		return;
	ASSERT_EQ(curl(env, true, &page), 0, "job's curl exit status");
	capture_stop(cap);
	ASSERT_HAS_SUBSTR(page, MARKER " line 1999", "the whole page reached the job");
	ASSERT_GE(capture_tls_records(cap, TUNNEL_PORT), 2, "TLS records on the tunnel port");
	ASSERT_EQ(capture_segments(cap, PORT_NGINX), 0, "segments on nginx's port between nodes");
	ASSERT_FALSE(capture_has(cap, MARKER, strlen(MARKER)), "plaintext on the wire");
	ASSERT_FALSE(capture_has(cap, "GET /page.txt", strlen("GET /page.txt")),
		     "the request in plaintext on the wire");
	capture_free(cap);
	free(page);

	if (ASSERT_TRUE(mesh_audit_wait(env, 'b', audit_b, "\"status\"", LOG_WAIT_MS),
			"node B audited the closed flow")) {
		audit = mesh_audit(env, 'b', audit_b);
		ASSERT_HAS_SUBSTR(audit, "\"src_workload\":\"" ID_JOB "\"", "audit: source");
		ASSERT_HAS_SUBSTR(audit, "\"src_node\":\"" NODE_A "\"", "audit: source node");
		ASSERT_HAS_SUBSTR(audit, "\"verdict\":\"allow\"", "audit: verdict");
		ASSERT_HAS_SUBSTR(audit, "\"rule\":\"jobs-use-data\"", "audit: rule");
		ASSERT_HAS_SUBSTR(audit, "\"jti\":", "audit: token id");
		ASSERT_NO_SUBSTR(audit, "\"token\"", "audit: no token");
		free(audit);
	}

	/* The same capture sees plaintext when there is some: curl from
	 * outside every workload goes to nginx directly. */
	cap = capture_start(env->ns_b, "eth0");
	if (!ASSERT_OK_PTR(cap, "second capture"))
		return;
	ASSERT_EQ(curl(env, false, &page), 0, "unmanaged curl exit status");
	capture_stop(cap);
	ASSERT_TRUE(capture_has(cap, MARKER, strlen(MARKER)), "a direct flow shows plaintext");
	capture_free(cap);
	free(page);
}

static void echo_through_tunnel(struct sl_env *env)
{
	struct server *echo = server_start(env, SRV_ECHO, PORT_ECHO);
	struct client_req req = {
	    .op = CL_ECHO,
	    .cgroup = "job",
	    .family = AF_INET,
	    .port = PORT_ECHO,
	    .bytes = ECHO_BYTES,
	};
	struct client_res res = {};
	struct conn_record rec = {};

	if (!ASSERT_OK_PTR(echo, "echo server"))
		return;
	if (!ASSERT_OK(client_run(env, &req, &res), "client"))
		return;
	ASSERT_EQ(res.err, 0, "client errno");
	ASSERT_EQ(res.recvd.bytes, ECHO_BYTES, "bytes echoed");
	ASSERT_EQ(res.recvd.mismatch_at, -1, "first differing byte");
	ASSERT_TRUE(res.eof, "client saw EOF");
	if (ASSERT_OK(server_wait_done(echo, 1, CLIENT_MS), "server done") &&
	    ASSERT_OK(server_get(echo, 0, &rec), "server record")) {
		char ip[64];

		sockaddr_ip(&rec.peer, ip, sizeof(ip));
		ASSERT_STREQ(ip, env->ip4_b, "server's peer is node B's agent");
		ASSERT_EQ(rec.in.bytes, ECHO_BYTES, "server bytes in");
	}
	if (env->has_ipv6) {
		req.family = AF_INET6;
		if (ASSERT_OK(client_run(env, &req, &res), "client over IPv6")) {
			ASSERT_EQ(res.err, 0, "IPv6 client errno");
			ASSERT_EQ(res.recvd.bytes, ECHO_BYTES, "IPv6 bytes echoed");
			ASSERT_EQ(res.recvd.mismatch_at, -1, "IPv6 first differing byte");
		}
	}
}

static void denied_by_node_b(struct sl_env *env)
{
	struct server *secret = server_start(env, SRV_ECHO, PORT_SECRET);
	long audit_a = mesh_audit_size(env, 'a'), audit_b = mesh_audit_size(env, 'b');
	struct client_req req = {
	    .op = CL_ECHO,
	    .cgroup = "job",
	    .family = AF_INET,
	    .port = PORT_SECRET,
	    .bytes = 1000,
	};
	struct client_res res = {};
	char *audit;

	if (!ASSERT_OK_PTR(secret, "secret server"))
		return;
	if (!ASSERT_OK(client_run(env, &req, &res), "client"))
		return;
	ASSERT_EQ(res.recvd.bytes, 0, "bytes the job got back");
	ASSERT_TRUE(res.eof || res.err == ECONNRESET, "the job's connection was closed");
	ASSERT_EQ(server_nr_conns(secret), 0, "connections that reached the server");
	if (ASSERT_TRUE(mesh_audit_wait(env, 'b', audit_b, "\"verdict\":\"deny\"", LOG_WAIT_MS),
			"node B audited the deny")) {
		audit = mesh_audit(env, 'b', audit_b);
		ASSERT_HAS_SUBSTR(audit, "\"reason\":\"policy-deny\"", "audit: reason");
		ASSERT_HAS_SUBSTR(audit, "\"rule\":\"secret-stays-on-node-b\"", "audit: rule");
		ASSERT_HAS_SUBSTR(audit, "\"src_workload\":\"" ID_JOB "\"", "audit: source");
		free(audit);
	}
	if (ASSERT_TRUE(mesh_audit_wait(env, 'a', audit_a, "\"verdict\":\"deny\"", LOG_WAIT_MS),
			"node A audited the peer's deny")) {
		audit = mesh_audit(env, 'a', audit_a);
		ASSERT_HAS_SUBSTR(audit, "\"direction\":\"outbound\"", "node A's audit: direction");
		ASSERT_HAS_SUBSTR(audit, "\"reason\":\"policy-deny\"", "node A's audit: reason");
		free(audit);
	}
}

void test_tunnel(struct sl_env *env)
{
	struct mesh_cfg cfg = { .policy_b = MESH_POLICY_B_NO_SECRET };

	if (!ASSERT_OK(mesh_setup(env, &cfg), "two agents"))
		return;
	if (test__start_subtest("nginx_through_tunnel"))
		nginx_through_tunnel(env);
	if (test__start_subtest("echo_through_tunnel"))
		echo_through_tunnel(env);
	if (test__start_subtest("denied_by_node_b"))
		denied_by_node_b(env);
	ASSERT_TRUE(agent_running(env), "node A's agent still runs");
	ASSERT_TRUE(mesh_b_running(env), "node B's agent still runs");
}
