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

#include <sluice/abi.h>

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
};

/* Routes libbpf's messages: debug lines only when verbose, and the last
 * warning is kept for datapath_open's error message. */
void datapath_set_verbose(bool verbose);

int datapath_open(struct datapath *dp, const char *pin_dir, const char *cgroup_root,
		  struct errmsg *err);
int datapath_config_get(const struct datapath *dp, struct sluice_config *cfg);
int datapath_config_set(const struct datapath *dp, const struct sluice_config *cfg);
/* keep_pinned: leave links and maps pinned (programs stay attached).
 * Otherwise detach the programs and remove every pin. */
void datapath_close(struct datapath *dp, bool keep_pinned);

#endif
