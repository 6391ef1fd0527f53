/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Loads the BPF object, reusing maps pinned by an earlier run, and attaches
 * the programs to the cgroup root through pinned bpf_links. A restart swaps
 * the programs in the existing links (bpf_link_update), so no connect()
 * ever runs unfiltered and no counter is lost.
 */
#ifndef SLUICE_DATAPATH_H
#define SLUICE_DATAPATH_H

#include <stdbool.h>
#include <limits.h>
#include <stdint.h>
#include <sys/socket.h>

#include <sluice/abi.h>

#include "config.h"
#include "errmsg.h"

enum datapath_prog {
	DP_CONNECT4,
	DP_CONNECT6,
	DP_SENDMSG4,
	DP_SENDMSG6,
	DP_SOCKOPS,
	DP_INBOUND,
	DP_NR_PROGS,
};

struct datapath {
	struct sluice_bpf *skel;
	struct bpf_link *links[DP_NR_PROGS];
	char pin_dir[PATH_MAX];
	int cfg_fd;
	int workloads_fd;
	int policy4_fd;
	int policy6_fd;
	int redirects_fd;
	int flow_links_fd;
	int names_fd;
	int violations_fd;
	int refusals_fd;
	int dp_counters_fd;
	/* Whether the last heartbeat / flow_links update failed: a failure
	 * is logged when it starts and when it ends, not every time. */
	bool heartbeat_failing;
	bool flow_link_failing;
};

/* Routes libbpf's messages: debug lines only when verbose, and the last
 * warning is kept for datapath_open's error message. */
void datapath_set_verbose(bool verbose);

int datapath_open(struct datapath *dp, const char *pin_dir, const char *cgroup_root,
		  struct errmsg *err);
int datapath_config_get(const struct datapath *dp, struct sluice_config *cfg);
int datapath_config_set(const struct datapath *dp, const struct sluice_config *cfg);
/* Fills sluice_cfg for this agent: ABI, failure mode, pid and cgroup,
 * listen addresses, and a first heartbeat. */
int datapath_write_config(struct datapath *dp, const struct config *cfg, uint64_t agent_cg_id);
/* Refreshes sluice_cfg's heartbeat; BPF applies failure_mode once it is
 * heartbeat_timeout old. Logs when refreshing starts failing and when it
 * works again. */
void datapath_heartbeat(struct datapath *dp);
/* -EBUSY, with what to do in err, when a live sluiced other than this
 * process heartbeats sluice_cfg under pin_dir; 0 otherwise (nothing
 * pinned, a stale or a dead agent's). */
int datapath_check_no_other_agent(const char *pin_dir, struct errmsg *err);
/* The original destination BPF recorded for a redirected connection, by
 * the accepted socket's peer address; -ENOENT when there is none. */
int datapath_orig_dst(const struct datapath *dp, const struct sockaddr_storage *peer,
		      struct sluice_orig_dst *out);
/* Links the agent's upstream socket fd to the app's flow in flow_links, so
 * sockops attributes its RTT, connect latency and bytes to the flow. The
 * flow is proxied either way: on failure (negative errno) only those
 * figures are lost, and that is logged when it starts and when it ends. */
/* The upstream connect time sockops recorded for the flow of application
 * socket cookie; left alone when it has no record. */
void datapath_flow_connect_us(const struct datapath *dp, uint64_t cookie, uint32_t *connect_us);
int datapath_link_upstream(struct datapath *dp, int fd, const struct sluice_orig_dst *dst);
/* keep_pinned: leave links and maps pinned (programs stay attached).
 * Otherwise detach the programs and remove every pin. */
void datapath_close(struct datapath *dp, bool keep_pinned);

#endif
