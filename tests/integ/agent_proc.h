/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent under test: its config and policy files, and sluiced itself run
 * in node A with its log in the test's temp dir (printed when a test fails).
 */
#ifndef SLUICE_INTEG_AGENT_PROC_H
#define SLUICE_INTEG_AGENT_PROC_H

#include <stdbool.h>

struct sl_env;

#define TRUST_DOMAIN "acme.example"
#define ID_JOB "spiffe://acme.example/job/etl"
#define ID_NOTEBOOK "spiffe://acme.example/notebook/alice"
#define SVC_DATA "data"	    /* ports 7000-7003 on node B: jobs only */
#define SVC_SECRET "secret" /* port 7100: jobs yes, notebooks denied */
#define CONFIG_FILE "sluice.yaml"
/* How long a test waits for a line in the agent's log. */
#define LOG_WAIT_MS 10000
#define POLICY_FILE "policy.yaml"

struct agent_cfg {
	bool fail_open;
	const char *heartbeat_timeout; /* NULL: the agent's default */
	/* More `workloads:` list items, YAML at two spaces' indent. */
	const char *extra_workloads;
	/* Lines added to each of job and notebook, at four spaces' indent. */
	const char *workload_keys;
	/* Top-level YAML appended to the file (identity:, peers:). */
	const char *extra;
};

/* Writes <tmp>/sluice.yaml: workloads job and notebook, agent_cgroup
 * sluiced, pins in env->pin_dir. */
int agent_write_config(struct sl_env *env, const struct agent_cfg *cfg);
/* Writes <tmp>/policy.yaml: the policy described at SVC_DATA/SVC_SECRET,
 * default deny. */
int agent_write_std_policy(struct sl_env *env);

/* Starts `sluiced -c <tmp>/sluice.yaml ARGS...` (NULL-terminated) inside
 * node A and returns without waiting. */
int agent_spawn(struct sl_env *env, ...) __attribute__((sentinel));
/* agent_spawn, then waits until the agent says its policy generation is
 * live and the pinned sluice_cfg names its pid. */
int agent_start(struct sl_env *env, ...) __attribute__((sentinel));
/* agent_start, with sluiced run by the NULL-terminated words of wrap (a
 * program that execs it in the same process, like valgrind), and ready_ms
 * for it to get ready. */
int agent_start_wrapped(struct sl_env *env, const char *const *wrap, int ready_ms, ...)
    __attribute__((sentinel));
/* Waits for the agent to exit; returns its exit status (128 + signal) or
 * -ETIMEDOUT. */
int agent_wait_exit(struct sl_env *env, int timeout_ms);
/* SIGTERM and agent_wait_exit. */
int agent_stop(struct sl_env *env);
int agent_signal(struct sl_env *env, int sig);
bool agent_running(struct sl_env *env);

/* The agent's log (stderr and stdout) from byte offset from. */
long agent_log_size(struct sl_env *env);
char *agent_log(struct sl_env *env, long from);
/* Waits until the log after from contains needle. */
bool agent_log_wait(struct sl_env *env, long from, const char *needle, int timeout_ms);

#endif
