// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_proc.h"
#include "client.h"
#include "credfile.h"
#include "env.h"
#include "harness.h"
#include "mesh.h"
#include "servers.h"

#define CTL_TIMEOUT_MS 10000
#define CTL_MAX_ARGS 16

void mesh_pki_path(const struct sl_env *env, const char *file, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" MESH_PKI_DIR "/%s", env->tmp_dir, file);
}

int mesh_sluicectl(struct sl_env *env, const char *const argv[])
{
	char bin[PATH_MAX], *full[CTL_MAX_ARGS + 2], *out = NULL, *err = NULL;
	int n = 0, ret;

	snprintf(bin, sizeof(bin), "%s/sluicectl", test__build_dir());
	full[n++] = bin;
	for (; *argv && n <= CTL_MAX_ARGS; argv++)
		full[n++] = (char *)*argv;
	full[n] = NULL;
	ret = run_argv(full, &out, &err, CTL_TIMEOUT_MS);
	if (ret) {
		printf("sluicectl");
		for (int i = 1; i < n; i++)
			printf(" %s", full[i]);
		printf(": exit %d\n%s%s", ret, out ?: "", err ?: "");
	}
	free(out);
	free(err);
	return ret;
}

int mesh_issue(struct sl_env *env, const char *node, const char *lifetime)
{
	char dir[PATH_MAX];

	mesh_pki_path(env, "", dir, sizeof(dir));
	return mesh_sluicectl(env, (const char *const[]){ "ca", "issue", node, "--dir", dir,
							  "--lifetime", lifetime ?: "24h", NULL });
}

static int make_pki(struct sl_env *env, const struct mesh_cfg *cfg)
{
	char dir[PATH_MAX];

	mesh_pki_path(env, "", dir, sizeof(dir));
	if (mesh_sluicectl(env, (const char *const[]){ "ca", "init", "--trust-domain",
						       TRUST_DOMAIN, "--dir", dir, NULL }))
		return -1;
	if (mesh_issue(env, NODE_A, cfg->cert_lifetime) ||
	    mesh_issue(env, NODE_B, cfg->cert_lifetime))
		return -1;
	return 0;
}

/* The identity: and peers: sections of NODE's config; the peer is the
 * other node, and B lets A vouch for A's workloads. */
static void identity_yaml(const struct sl_env *env, const struct mesh_cfg *cfg, char node,
			  char *buf, size_t len)
{
	const char *me = node == 'a' ? NODE_A : NODE_B, *peer = node == 'a' ? NODE_B : NODE_A;
	const char *ip4 = node == 'a' ? env->ip4_b : env->ip4_a;
	const char *ip6 = node == 'a' ? env->ip6_b : env->ip6_a;
	const char *peers_extra = node == 'b' && cfg->peers_extra_b ? cfg->peers_extra_b : "";
	char skew[64] = "", lifetime[64] = "", v6[80] = "", audit[PATH_MAX + 16] = "";
	char vouch[512] = "";

	if (node == 'b')
		snprintf(vouch, sizeof(vouch), "    workloads: [" ID_JOB ", " ID_NOTEBOOK "%s%s]\n",
			 cfg->vouch_extra_b ? ", " : "", cfg->vouch_extra_b ?: "");
	if (cfg->clock_skew)
		snprintf(skew, sizeof(skew), "  clock_skew: %s\n", cfg->clock_skew);
	if (cfg->token_lifetime && node == 'a')
		snprintf(lifetime, sizeof(lifetime), "  token_lifetime: %s\n",
			 cfg->token_lifetime);
	if (env->has_ipv6)
		snprintf(v6, sizeof(v6), ", \"%s/128\"", ip6);
	if (cfg->audit_log_a && node == 'a')
		snprintf(audit, sizeof(audit), "audit_log: %s\n", cfg->audit_log_a);
	snprintf(buf, len,
		 "identity:\n"
		 "  ca: " MESH_PKI_DIR "/ca.crt\n"
		 "  cert: " MESH_PKI_DIR "/%s/node.crt\n"
		 "  key: " MESH_PKI_DIR "/%s/node.key\n"
		 "  resumption: %s\n"
		 "%s%s%s"
		 "peers:\n"
		 "  - node: %s\n"
		 "    tunnel: %s:%d\n"
		 "    cidrs: [%s/32%s]\n"
		 "%s%s%s",
		 me, me, node == 'a' && cfg->no_resumption ? "false" : "true", skew, lifetime,
		 cfg->identity_extra ?: "", peer, ip4, TUNNEL_PORT, ip4, v6, vouch, peers_extra,
		 audit);
}

int mesh_write_config_b(struct sl_env *env, const struct mesh_cfg *cfg)
{
	char identity[4096];

	identity_yaml(env, cfg, 'b', identity, sizeof(identity));
	return env_write_file(env, CONFIG_FILE_B,
			      "node: " NODE_B "\n"
			      "trust_domain: " TRUST_DOMAIN "\n"
			      "cgroup_root: %s\n"
			      "agent_cgroup: sluiced\n"
			      "bpf_pin_path: %s\n"
			      "run_dir: %s/run-b\n"
			      "policy: " POLICY_FILE_B "\n"
			      "log_level: info\n"
			      "listen:\n"
			      "  tunnel: %s:%d\n"
			      "%s%s",
			      env->cg_root_b, env->pin_dir_b, env->tmp_dir, env->ip4_b, TUNNEL_PORT,
			      identity, cfg->extra_b ?: "");
}

static int write_policy_b(struct sl_env *env, const struct mesh_cfg *cfg)
{
	char path[PATH_MAX];
	char *std;
	int ret;

	if (cfg->policy_b)
		return env_write_file(env, POLICY_FILE_B, "%s", cfg->policy_b);
	env_path(env, POLICY_FILE, path, sizeof(path));
	std = read_file_from(path, 0);
	if (!std)
		return -ENOENT;
	ret = env_write_file(env, POLICY_FILE_B, "%s", std);
	free(std);
	return ret;
}

void mesh_node_c_peer(const struct sl_env *env, const char *workloads, char *buf, size_t len)
{
	int net = 0;

	sscanf(env->ip4_b, "10.%d.", &net);
	snprintf(buf, len,
		 "  - node: " NODE_C "\n"
		 "    tunnel: 10.%d.0.3:%d\n"
		 "    cidrs: [10.%d.0.3/32]\n"
		 "    workloads: [%s]\n",
		 net, TUNNEL_PORT, net, workloads);
}

/* After write_policy_b(), which copies A's standard policy for B. */
static int write_policy_a(struct sl_env *env, const struct mesh_cfg *cfg)
{
	return cfg->policy_a ? env_write_file(env, POLICY_FILE, "%s", cfg->policy_a) : 0;
}

int mesh_setup(struct sl_env *env, const struct mesh_cfg *cfg)
{
	char identity[4096], extra[16384];
	struct agent_cfg a = { .workload_keys = cfg->workload_extra_a,
			       .extra_workloads = cfg->extra_workloads_a,
			       .extra = extra };
	int ret;

	identity_yaml(env, cfg, 'a', identity, sizeof(identity));
	if ((size_t)snprintf(extra, sizeof(extra), "%s%s", identity, cfg->extra_a ?: "") >=
	    sizeof(extra))
		return -E2BIG;
	if (make_pki(env, cfg) || env_cgroup_root_b(env, "sluiced") ||
	    agent_write_config(env, &a) || agent_write_std_policy(env) ||
	    mesh_write_config_b(env, cfg) || write_policy_b(env, cfg) || write_policy_a(env, cfg))
		return -1;
	ret = mesh_start_b(env, NULL);
	if (ret) {
		printf("node B's agent did not start: %s\n", strerror(-ret));
		return ret;
	}
	ret = agent_start(env, NULL);
	if (ret)
		printf("node A's agent did not start: %s\n", strerror(-ret));
	return ret;
}

long mesh_b_log_size(struct sl_env *env)
{
	long n = file_size(env->agent_b_log);

	return n < 0 ? 0 : n;
}

bool mesh_b_log_wait(struct sl_env *env, long from, const char *needle, int timeout_ms)
{
	return file_wait(env->agent_b_log, from, needle, timeout_ms);
}

static void audit_path(const struct sl_env *env, char node, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s/audit.jsonl", env->tmp_dir, node == 'b' ? "run-b" : "run");
}

char *mesh_audit(struct sl_env *env, char node, long from)
{
	char path[PATH_MAX];

	audit_path(env, node, path, sizeof(path));
	return read_file_from(path, from);
}

long mesh_audit_size(struct sl_env *env, char node)
{
	char path[PATH_MAX];
	long n;

	audit_path(env, node, path, sizeof(path));
	n = file_size(path);
	return n < 0 ? 0 : n;
}

bool mesh_audit_wait(struct sl_env *env, char node, long from, const char *needle,
		     int timeout_ms)
{
	char path[PATH_MAX];

	audit_path(env, node, path, sizeof(path));
	return file_wait(path, from, needle, timeout_ms);
}

int mesh_cred(struct sl_env *env, char node, const char *kind, const char *name,
	      struct mesh_cred *out)
{
	char path[PATH_MAX];
	struct errmsg err = {};
	json_t *doc, *c;
	size_t i;
	int ret;

	snprintf(path, sizeof(path), "%s/%s/" CREDFILE_NAME, env->tmp_dir,
		 node == 'b' ? "run-b" : "run");
	ret = credfile_read(path, &doc, &err);
	if (ret)
		return ret;
	ret = -ENOENT;
	json_array_foreach(json_object_get(doc, "credentials"), i, c) {
		if (strcmp(json_string_value(json_object_get(c, "kind")), kind) ||
		    (name && strcmp(json_string_value(json_object_get(c, "name")), name)))
			continue;
		snprintf(out->state, sizeof(out->state), "%s",
			 json_string_value(json_object_get(c, "state")));
		out->not_after = json_integer_value(json_object_get(c, "not_after"));
		out->updated = json_integer_value(json_object_get(c, "updated"));
		ret = 0;
		break;
	}
	json_decref(doc);
	return ret;
}

bool mesh_refused_on_a(struct sl_env *env, struct server *srv, uint16_t port,
		       const char *reason)
{
	long audit_a = mesh_audit_size(env, 'a'), audit_b = mesh_audit_size(env, 'b');
	int conns = server_nr_conns(srv);
	struct client_req req = {
		.op = CL_ECHO,
		.cgroup = "job",
		.family = AF_INET,
		.port = port,
		.bytes = 1000,
	};
	struct client_res res = {};
	char want[96], *audit;
	bool ok;

	if (!ASSERT_OK(client_run(env, &req, &res), "client"))
		return false;
	ok = ASSERT_EQ(res.recvd.bytes, 0, "bytes the job got back");
	ok &= ASSERT_TRUE(res.eof || res.err == ECONNRESET, "the job's connection was closed");
	snprintf(want, sizeof(want), "\"reason\":\"%s\"", reason);
	if (ASSERT_TRUE(mesh_audit_wait(env, 'a', audit_a, "\"verdict\":\"deny\"", LOG_WAIT_MS),
			"node A audited the refusal")) {
		audit = mesh_audit(env, 'a', audit_a);
		ok &= ASSERT_HAS_SUBSTR(audit, want, "audit: reason");
		ok &= ASSERT_HAS_SUBSTR(audit, "\"src_workload\":\"" ID_JOB "\"", "audit: source");
		free(audit);
	} else {
		ok = false;
	}
	ok &= ASSERT_EQ(server_nr_conns(srv), conns, "connections that reached the server");
	ok &= ASSERT_EQ(mesh_audit_size(env, 'b'), audit_b, "node B's audit log grew");
	return ok;
}
