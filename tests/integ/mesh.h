/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Two agents joined by the mTLS tunnel, for the identity tests:
 *
 *   node A: the agent of agent_proc.h (workloads job and notebook),
 *     config <tmp>/sluice.yaml, log <tmp>/sluiced.log,
 *     audit <tmp>/run/audit.jsonl
 *   node B: a second agent, the tunnel's receiving end, no workloads,
 *     node A in its peers with A's workloads (peers[].workloads),
 *     cgroup root <cgroup2>/sl<pid>-<test>-b, pins /sys/fs/bpf/sl<pid>-<test>-b,
 *     config <tmp>/sluice-b.yaml, log <tmp>/sluiced-b.log,
 *     audit <tmp>/run-b/audit.jsonl, tunnel on <ip4_b>:15008
 *   pki:   <tmp>/pki/ca.{crt,key}, <tmp>/pki/<node>/node.{crt,key},
 *     made with `sluicectl ca init|issue`
 *
 * Both agents' policies name node B's servers (SVC_DATA, SVC_SECRET); a
 * flow from a workload on A to B's addresses crosses the tunnel, and B's
 * agent connects to the server. env_teardown stops both agents.
 */
#ifndef SLUICE_INTEG_MESH_H
#define SLUICE_INTEG_MESH_H

#include <stdbool.h>
#include <stdint.h>

struct sl_env;
struct server;

#define TUNNEL_PORT 15008
#define NODE_A "node-a"
#define NODE_B "node-b"
/* A node with a certificate from the mesh CA and no agent, for tests that
 * speak as it. */
#define NODE_C "node-c"
#define MESH_PKI_DIR "pki"
#define CONFIG_FILE_B "sluice-b.yaml"
#define POLICY_FILE_B "policy-b.yaml"

/* The services: section of a policy for node B, which serves them on its
 * own addresses (any address B's agent is asked to reach is local). */
#define MESH_SERVICES_B                                                                            \
	"services:\n"                                                                              \
	"  - name: " SVC_DATA "\n"                                                                 \
	"    addresses: [0.0.0.0/0, \"::/0\"]\n"                                                   \
	"    ports: [7000, 7001, 7002, 7003]\n"                                                    \
	"  - name: " SVC_SECRET "\n"                                                               \
	"    addresses: [0.0.0.0/0, \"::/0\"]\n"                                                   \
	"    ports: [7100]\n"

/* A policy for node B: jobs may use SVC_DATA but not SVC_SECRET, which node
 * A's standard policy allows them. */
#define MESH_POLICY_B_NO_SECRET                                                                    \
	"version: 1\n"                                                                             \
	"default: deny\n" MESH_SERVICES_B "rules:\n"                                               \
	"  - name: jobs-use-data\n"                                                                \
	"    from: {kind: job}\n"                                                                  \
	"    to: [" SVC_DATA "]\n"                                                                 \
	"    action: allow\n"                                                                      \
	"  - name: secret-stays-on-node-b\n"                                                       \
	"    from: {kind: job}\n"                                                                  \
	"    to: [" SVC_SECRET "]\n"                                                               \
	"    action: deny\n"

struct mesh_cfg {
	const char *cert_lifetime;  /* `ca issue --lifetime` for both nodes; NULL: 24h */
	const char *token_lifetime; /* identity.token_lifetime on A; NULL: default */
	const char *clock_skew;	    /* identity.clock_skew on both; NULL: default */
	bool no_resumption;	    /* identity.resumption: false on A */
	/* Lines appended to both agents' identity: sections, at two spaces'
	 * indent (an oidc: block); NULL: embedded tokens. */
	const char *identity_extra;
	/* Lines added to each of A's workloads (job, notebook) at four
	 * spaces' indent (their oidc: client); NULL: none. */
	const char *workload_extra_a;
	/* B's policy file text; NULL: agent_write_std_policy's policy. */
	const char *policy_b;
	/* Entries appended to B's peers: list, at two spaces' indent (B
	 * always lists node A, which may vouch for ID_JOB and ID_NOTEBOOK);
	 * NULL: none. */
	const char *peers_extra_b;
	/* Node A's audit_log (an absolute path); NULL: <tmp>/run/audit.jsonl. */
	const char *audit_log_a;
	/* Top-level YAML appended to B's config (a tunnel: section); NULL:
	 * none. */
	const char *extra_b;
	/* Top-level YAML appended to A's config (an edge: section); NULL:
	 * none. */
	const char *extra_a;
	/* More items of A's workloads: list, at two spaces' indent; NULL:
	 * none. */
	const char *extra_workloads_a;
	/* A's policy file text; NULL: agent_write_std_policy's policy. */
	const char *policy_a;
	/* More IDs node A may vouch for at B, items of a YAML flow list
	 * after ID_JOB and ID_NOTEBOOK; NULL: none. */
	const char *vouch_extra_b;
};

/* Makes the CA and both node certificates, writes both configs and
 * policies, starts B's agent and then A's, and waits until both are ready
 * (A's tunnel client has its credentials). */
int mesh_setup(struct sl_env *env, const struct mesh_cfg *cfg);

/* Writes B's config from cfg, as mesh_setup() does: for a restart of B
 * with other settings. */
int mesh_write_config_b(struct sl_env *env, const struct mesh_cfg *cfg);

/* For mesh_cfg.peers_extra_b: a peers: entry for NODE_C, at 10.<x>.0.3 of
 * the nodes' subnet, where no traffic goes, that may vouch for workloads
 * (the items of a YAML flow list). */
void mesh_node_c_peer(const struct sl_env *env, const char *workloads, char *buf, size_t len);

/* <tmp>/pki/<file>, e.g. "ca.crt" or "node-a/node.key". */
void mesh_pki_path(const struct sl_env *env, const char *file, char *buf, size_t len);
/* Runs sluicectl with argv (NULL-terminated, after "sluicectl"); its
 * output is printed when it fails. Returns its exit status. */
int mesh_sluicectl(struct sl_env *env, const char *const argv[]);
/* Re-issues NODE's certificate in <tmp>/pki/NODE/ (key kept or new, as
 * `ca issue` does), lifetime as `--lifetime`; NULL: 24h. The agents reload
 * it from disk. */
int mesh_issue(struct sl_env *env, const char *node, const char *lifetime);

/* Node B's agent, like agent_start/agent_stop for A (agent_proc.c):
 * `sluiced -c <tmp>/sluice-b.yaml ARGS...` in node B, ready once its tunnel
 * listens. */
int mesh_start_b(struct sl_env *env, ...) __attribute__((sentinel));
int mesh_stop_b(struct sl_env *env);
/* SIGKILL to node B's agent, and waits for it: a node that dies without a
 * word. Returns its exit status (128 + 9) or a negative errno. */
int mesh_kill_b(struct sl_env *env);
bool mesh_b_running(struct sl_env *env);
long mesh_b_log_size(struct sl_env *env);
bool mesh_b_log_wait(struct sl_env *env, long from, const char *needle, int timeout_ms);

/* The audit log of node 'a' or 'b', from byte offset from (malloc'd, NULL
 * when there is none yet), its size, and a wait for needle after from. */
char *mesh_audit(struct sl_env *env, char node, long from);
long mesh_audit_size(struct sl_env *env, char node);
bool mesh_audit_wait(struct sl_env *env, char node, long from, const char *needle,
		     int timeout_ms);

/* A job's connection to srv, an echo server on node B, that node A refuses
 * itself: the job gets no byte back and a closed connection, A audits the
 * deny with reason, and neither srv nor B's agent sees anything. Named
 * assertions; true when all of them held. */
bool mesh_refused_on_a(struct sl_env *env, struct server *srv, uint16_t port,
		       const char *reason);

/* One entry of the credentials.json that node 'a' or 'b' publishes in its
 * run dir (agent/identity/credfile.h). */
struct mesh_cred {
	char state[16];
	long long not_after; /* 0: none */
	long long updated;   /* 0: never */
};

/* The credential of kind ("node-cert", "token", ...) named name (NULL: the
 * first of that kind). -ENOENT when the file or the entry is missing. */
int mesh_cred(struct sl_env *env, char node, const char *kind, const char *name,
	      struct mesh_cred *out);

#endif
