/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One test's world, built before the test and removed after it:
 *
 *   node A (netns sl<pid>-<test>-a): the agent and the workloads,
 *     eth0 10.<x>.0.1/24 fd<x>::1/64
 *   node B (netns sl<pid>-<test>-b): the servers, eth0 10.<x>.0.2 fd<x>::2
 *   cgroups <cgroup2>/sl<pid>-<test>/{sluiced,job,notebook,unmanaged}
 *   pins    /sys/fs/bpf/sl<pid>-<test>
 *   files   /tmp/sl<pid>-<test>-XXXXXX (config, policy, agent log)
 *
 * Every name carries the runner's pid, so a later run can tell leftovers of
 * a killed run (pid gone) from those of a run still going.
 */
#ifndef SLUICE_INTEG_ENV_H
#define SLUICE_INTEG_ENV_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

/* Paths here are short (/sys/fs/bpf/sl<pid>-<test>): bounded well below
 * PATH_MAX so that paths built from them fit a PATH_MAX buffer. */
#define ENV_PATH_LEN 512
#define ENV_MAX_CHILDREN 64
#define ENV_MAX_SERVERS 16

/* Ports of the servers on node B. */
#define PORT_ECHO 7000
#define PORT_SINK 7001
#define PORT_SOURCE 7002
#define PORT_HALF_CLOSE 7003
#define PORT_SECRET 7100
#define PORT_UNLISTED 7200
/* The agent's outbound listener in node A (its default), as a workload's
 * getpeername() shows it after the redirect. */
#define PORT_OUTBOUND 15001
#define OUTBOUND4 "127.0.0.1:15001"
#define OUTBOUND6 "[::1]:15001"

struct server;

struct sl_env {
	char test[64];
	char name[96]; /* sl<pid>-<test> */
	int net;       /* the <x> in 10.<x>.0.0/24 */
	char ns_a[128];
	char ns_b[128];
	char ip4_a[16], ip4_b[16];
	char ip6_a[48], ip6_b[48];
	bool has_ipv6;
	char cg_mount[256];
	char cg_root[ENV_PATH_LEN];
	char pin_dir[ENV_PATH_LEN];
	char tmp_dir[ENV_PATH_LEN];
	char agent_log[PATH_MAX];
	pid_t agent_pid;
	/* Node B's agent, only in the mesh tests (mesh.h). */
	char cg_root_b[ENV_PATH_LEN + 4];
	char pin_dir_b[ENV_PATH_LEN + 4];
	char agent_b_log[PATH_MAX];
	pid_t agent_b_pid;
	bool made_cg_b;
	pid_t children[ENV_MAX_CHILDREN];
	int nr_children;
	struct server *servers[ENV_MAX_SERVERS];
	int nr_servers;
	/* A tmpfs a test mounted in tmp_dir (env_mount_tmpfs). */
	char tmpfs[ENV_PATH_LEN + 32];
	bool made_ns_a, made_ns_b, made_cg, made_tmp, made_tmpfs;
};

/* Builds everything above; on failure what was built is torn down. */
int env_setup(struct sl_env *env, const char *test, int net);
/* Always safe to call; prints the agent's log when the test failed. */
void env_teardown(struct sl_env *env, bool failed);
/* For SIGINT/SIGTERM/watchdog: kills and removes without stdio. */
void env_emergency_teardown(struct sl_env *env);
/* Removes sl<pid>-* leftovers of runs whose pid is gone. */
void env_remove_stale(void);

/* Runs `ip ARGS` (split on spaces), logging the command and, on failure,
 * its output. Returns 0 or -1. */
int env_ip(struct sl_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Node B's own cgroup root, <cg_root>-b, with the agent's cgroup in it
 * (mesh.h): a sibling of A's, so neither agent's programs see the other's
 * sockets. */
int env_cgroup_root_b(struct sl_env *env, const char *agent_cgroup);
/* <cg_root>/<name>. */
void env_cgroup(const struct sl_env *env, const char *name, char *buf, size_t len);
/* Creates an extra workload cgroup under the root. */
int env_cgroup_add(struct sl_env *env, const char *name);
/* Kills what runs in <cg_root>/<name> and removes it. */
int env_cgroup_remove(struct sl_env *env, const char *name);
uint64_t env_cgroup_id(const struct sl_env *env, const char *name);
/* Moves the calling process into <cg_root>/<name>: its sockets are then
 * that workload's. */
int env_cgroup_join(const struct sl_env *env, const char *name);

/* Writes <tmp_dir>/<file> from a format. */
int env_write_file(struct sl_env *env, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Mounts a tmpfs of size (mount's size=, e.g. "64k") on <tmp_dir>/<dir>,
 * a new directory: a small disk that a test may fill. Teardown unmounts
 * it. One per test. */
int env_mount_tmpfs(struct sl_env *env, const char *dir, const char *size);
/* <tmp_dir>/<file>. */
void env_path(const struct sl_env *env, const char *file, char *buf, size_t len);
/* Node A's (node 'a') or B's addresses as items of a YAML flow list for
 * policy files: `10.<x>.0.1/32, "fd<x>::1"`, v6 only when there is v6. */
void env_node_addrs(const struct sl_env *env, char node, char *buf, size_t len);

/* Moves the calling thread into a network namespace by name. */
int netns_join(const char *ns);

/* Remembers a child process so teardown kills it. */
void env_track_child(struct sl_env *env, pid_t pid);
void env_untrack_child(struct sl_env *env, pid_t pid);

#endif
