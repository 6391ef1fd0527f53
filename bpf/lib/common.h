/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What every hook shares: counting a violation, and whether the agent is alive. */
#ifndef SLUICE_BPF_COMMON_H
#define SLUICE_BPF_COMMON_H

#include "maps.h"

static __always_inline void count_violation(__u32 identity, __u32 service, __u32 reason,
					    __u16 port)
{
	struct sluice_violation_key key = {
		.identity = identity,
		.service = service,
		.reason = reason,
		.port = port,
	};
	struct sluice_counter *c, zero = {};

	c = bpf_map_lookup_elem(&violations, &key);
	if (!c) {
		bpf_map_update_elem(&violations, &key, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&violations, &key);
		if (!c)
			return;
	}
	/* Per-CPU value: no other writer, a plain add is exact. */
	c->count++;
	c->last_ns = bpf_ktime_get_ns();
}

static __always_inline bool agent_stale(const struct sluice_config *cfg)
{
	__u64 now = bpf_ktime_get_ns();

	return now - cfg->heartbeat_ns > cfg->heartbeat_timeout_ns;
}

#endif
