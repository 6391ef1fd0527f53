/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Reads the agent's pinned maps and links directly, the way an operator's
 * bpftool would, so tests check the datapath's state independently of
 * sluicectl.
 */
#ifndef SLUICE_INTEG_PINNED_H
#define SLUICE_INTEG_PINNED_H

#include <stdbool.h>
#include <stdint.h>
#include <sluice/abi.h>

#include "clock.h"

struct sl_env;

/* bpf_obj_get(<pin_dir>/<name>); a negative errno when it is not pinned. */
int pinned_fd(const struct sl_env *env, const char *name);
bool pinned_exists(const struct sl_env *env, const char *name);
int pinned_cfg(const struct sl_env *env, struct sluice_config *cfg);
/* The generation of the live slot; 0 when unreadable. */
uint32_t pinned_generation(const struct sl_env *env);

/* Numeric id that the names map gives an identity (SPIFFE ID) or a service;
 * 0 when there is none. */
uint32_t pinned_identity(const struct sl_env *env, const char *spiffe_id);
uint32_t pinned_service(const struct sl_env *env, const char *name);

/* violations[{identity, service, reason}] summed over CPUs; 0 if absent. */
long long pinned_violations(const struct sl_env *env, uint32_t identity, uint32_t service,
			    uint32_t reason);
/* Every violation counter summed. */
long long pinned_violations_total(const struct sl_env *env);
/* svc_stats[{identity, service}], zeroed when the entry is absent;
 * negative errno when the map cannot be read. */
int pinned_svc_stats(const struct sl_env *env, uint32_t identity, uint32_t service,
		     struct sluice_svc_stats *out);
/* Entries in a pinned map; negative errno when it cannot be read. */
int pinned_count(const struct sl_env *env, const char *map);
int pinned_flow(const struct sl_env *env, uint64_t cookie, struct sluice_flow *out);
/* Counts flow_links entries whose app_cookie is cookie. */
int pinned_links_to(const struct sl_env *env, uint64_t cookie);
/* Entries of one policy slot in policy4 plus policy6. */
int pinned_policy_entries(const struct sl_env *env, uint32_t slot);
/* Kernel id of a pinned bpf_link (bpf_link_get_info_by_fd). */
int pinned_link_id(const struct sl_env *env, const char *name, uint32_t *id);

#endif
