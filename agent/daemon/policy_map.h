/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Generations: a policy is compiled into the inactive slot of policy4/6 and
 * made live by one write of sluice_config.active_slot. The slot it replaced
 * stays loaded, so rollback is the same single write.
 */
#ifndef SLUICE_POLICY_MAP_H
#define SLUICE_POLICY_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "datapath.h"
#include "errmsg.h"
#include "policy.h"

struct policy_map_result {
	uint32_t generation;
	uint32_t slot;
	int nr_entries;
};

/* Compiles pol into the inactive slot as generation gen and, with
 * activate, makes it live; without, it waits there as the rollback
 * target. The live slot is never written. */
int policy_map_apply(struct datapath *dp, const struct policy *pol,
		     const struct policy_identity *ids, int nr_ids, uint32_t gen, bool activate,
		     struct policy_map_result *res, struct errmsg *err);
/* The highest generation either slot holds; 0 for none. */
uint32_t policy_map_max_generation(struct datapath *dp);
/* Makes the other loaded slot live again; -ENOENT when there is none. */
int policy_map_rollback(struct datapath *dp, struct policy_map_result *res, struct errmsg *err);

#endif
