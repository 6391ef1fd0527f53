/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef SLUICE_WORKLOADS_H
#define SLUICE_WORKLOADS_H

#include <stdint.h>

#include "config.h"
#include "datapath.h"
#include "errmsg.h"
#include "policy.h"

struct workload_set {
	uint64_t *cgroup_ids;
	struct policy_identity *ids;	/* parallel to cgroup_ids */
	uint32_t *flags;		/* parallel: enum sluice_wl_flags */
	int nr;
};

/* Whether every configured workload's cgroup exists; an error names the
 * config line of the first that does not. */
int workloads_check_cgroups(const struct config *cfg, const char *cgroup_root, struct errmsg *err);
/*
 * Resolves every configured workload to its cgroup id and a stable numeric
 * identity (assigned in the names map). Fails, naming the config line, when
 * a cgroup does not exist. Nothing is enforced until workloads_publish.
 */
int workloads_resolve(struct datapath *dp, const struct config *cfg, const char *cgroup_root,
		      struct workload_set *set, struct errmsg *err);
/* Makes set the managed workloads: adds its entries to the workloads map
 * (mesh-only ones flagged for the inbound program) and removes entries of
 * cgroups no longer configured. */
int workloads_publish(struct datapath *dp, const struct workload_set *set, struct errmsg *err);
void workloads_free(struct workload_set *set);

#endif
