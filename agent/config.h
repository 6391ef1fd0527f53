/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's config file (/etc/sluice/sluice.yaml by default):
 *
 *   node: node-a                          # required, [a-z0-9.-]{1,63}
 *   trust_domain: acme.example            # required, DNS name
 *   cgroup_root: sluice/node-a            # required; relative to the cgroup2
 *                                         # mount, or absolute under it
 *   agent_cgroup: sluiced                 # optional, relative to cgroup_root;
 *                                         # the agent moves itself there
 *   listen:
 *     outbound: 127.0.0.1:15001           # default 127.0.0.1:15001
 *     outbound6: "[::1]:15001"            # default [::1]:<outbound port>;
 *                                         # must use the same port
 *   bpf_pin_path: /sys/fs/bpf/sluice      # default
 *   run_dir: /run/sluice                  # default
 *   policy: /etc/sluice/policy.yaml       # required; relative paths are
 *                                         # relative to the config file
 *   failure_mode: closed                  # closed | open, default closed
 *   heartbeat_timeout: 3s                 # default 3s (ms, s, m suffixes)
 *   idle_timeout: 300s                    # default 300s
 *   log_level: info                       # error | warn | info | debug
 *   workloads:
 *     - cgroup: job-1234                  # relative to cgroup_root
 *       id: spiffe://acme.example/job/1234
 *       roles: [etl]                      # optional
 *
 * A workload's kind is the first path segment of its SPIFFE ID (job,
 * notebook, cluster, service); the ID's trust domain must be the config's.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "errmsg.h"

#define CONFIG_DEFAULT_PATH "/etc/sluice/sluice.yaml"
#define CONFIG_MAX_ROLES 16
#define CONFIG_NAME_MAX 128

enum workload_kind {
	WL_KIND_JOB = 1,
	WL_KIND_NOTEBOOK,
	WL_KIND_CLUSTER,
	WL_KIND_SERVICE,
};

struct workload_cfg {
	char *cgroup;			/* as written, relative to cgroup_root */
	char *id;			/* spiffe://td/kind/name */
	enum workload_kind kind;
	char *roles[CONFIG_MAX_ROLES];
	int nr_roles;
	int line;			/* line of the list item, for messages */
	int roles_line;
};

struct config {
	char *path;			/* the file it was read from */
	char *node;
	char *trust_domain;
	char *cgroup_root;		/* as written */
	char *agent_cgroup;		/* NULL: stay where started */
	struct sockaddr_in outbound4;
	struct sockaddr_in6 outbound6;
	char *pin_path;
	char *run_dir;
	char *policy_path;		/* resolved against the config's dir */
	bool fail_open;
	unsigned int heartbeat_timeout_ms;
	unsigned int idle_timeout_ms;
	int log_level;			/* enum log_level */
	struct workload_cfg *workloads;
	int nr_workloads;
};

/* Reads and validates path. On error returns a negative errno and leaves
 * `file:line: reason` in err; cfg is then empty (nothing to free). */
int config_load(const char *path, struct config *cfg, struct errmsg *err);
void config_free(struct config *cfg);

/* "job" -> WL_KIND_JOB ...; 0 when unknown. */
enum workload_kind workload_kind_parse(const char *s);
const char *workload_kind_name(enum workload_kind kind);

/* Parses "1.2.3.4:80" / "[::1]:80"; -EINVAL on anything else. */
int parse_sockaddr(const char *s, struct sockaddr_storage *out);
/* Parses a decimal port, 0-65535; -EINVAL otherwise. */
int parse_port(const char *s, uint16_t *out);
/* Parses "250ms", "3s", "5m", "1h"; a bare number is seconds. */
int parse_duration_ms(const char *s, unsigned int *out);

/* s is 1-63 characters of a-z, 0-9 and those in extra (node, role and
 * service names). */
bool name_valid(const char *s, const char *extra);

struct spiffe_id {
	const char *trust_domain;	/* points into the parsed string */
	int trust_domain_len;
	enum workload_kind kind;
};

/* Parses `spiffe://<trust_domain>/<kind>/<name>` (shorter than
 * CONFIG_NAME_MAX); on -EINVAL *why says what is wrong. */
int spiffe_id_parse(const char *s, struct spiffe_id *out, const char **why);
bool spiffe_id_in_domain(const struct spiffe_id *sid, const char *trust_domain);

#endif
