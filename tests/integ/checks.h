/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Checks several tests share, each a sequence of named assertions: what a
 * workload sees when its connection goes through the agent, goes directly,
 * or is denied; and waits for the datapath's per-flow state to drain.
 */
#ifndef SLUICE_INTEG_CHECKS_H
#define SLUICE_INTEG_CHECKS_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "agent_proc.h"
#include "client.h"

struct sl_env;
struct server;

/* The ids the agent gave the standard workloads and services. */
struct std_ids {
	uint32_t job;
	uint32_t notebook;
	uint32_t data;
	uint32_t secret;
};

/* Writes cfg and the standard policy and starts the agent. */
bool start_std_agent(struct sl_env *env, const struct agent_cfg *cfg, bool keep_pinned);

/* Reads std_ids from the names map; every one must be assigned. */
bool get_std_ids(struct sl_env *env, struct std_ids *ids);

/* Echoes bytes from cgroup to node B's port through the agent: byte-exact,
 * the client's peer is the agent's listener, the server's peer is node A.
 * With res, the client's report is copied out. */
bool echo_via_agent(struct sl_env *env, struct server *srv, const char *cgroup, int family,
		    uint16_t port, uint64_t bytes, struct client_res *res);
/* The same, but the connection must go directly (not redirected). */
bool echo_direct(struct sl_env *env, struct server *srv, const char *cgroup, int family,
		 uint16_t port, struct client_res *res);
/* connect() from cgroup to node B's port fails with EPERM. */
bool connect_denied(struct sl_env *env, const char *cgroup, int family, uint16_t port);

/* connect_denied, and the violation {identity, service, reason} and the
 * total over all counters each moved by exactly one. */
bool denied_and_counted(struct sl_env *env, const char *cgroup, int family, uint16_t port,
			uint32_t identity, uint32_t service, uint32_t reason);
/* Starts a client echoing bytes from cgroup to node B's echo port and
 * holding the connection open; reads its first report, which must show no
 * error. On false the client is already finished. */
bool hold_echo(struct sl_env *env, const char *cgroup, int family, uint64_t bytes, struct client *c,
	       struct client_res *res);

/* Waits (a few seconds at most) until the flows map has no entry for
 * cookie. */
bool wait_flow_gone(struct sl_env *env, uint64_t cookie);
/* Waits until a pinned map holds exactly n entries. */
bool wait_map_count(struct sl_env *env, const char *map, int n, int timeout_ms);

/* svc_stats.closed moves when the upstream socket closes, a moment after
 * the client saw EOF: waits until it reaches n; returns where it got to. */
long long wait_svc_closed(struct sl_env *env, uint32_t identity, uint32_t service, long long n);

/* The IP of a socket address, without the port. */
void sockaddr_ip(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
