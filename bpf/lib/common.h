/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What every hook shares: counting a violation, and whether the agent is alive. */
#ifndef SLUICE_BPF_COMMON_H
#define SLUICE_BPF_COMMON_H

#include "maps.h"

static __always_inline void dp_count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&dp_counters, &idx);

	/* Per-CPU value: no other writer, a plain add is exact. */
	if (v)
		(*v)++;
}

/* A refusal as the hooks know it: the violation's key, where the caller
 * went, and what the audit line needs besides. */
struct refusal {
	struct sluice_violation_key key;
	__u32 family;
	__u32 addr[4];			/* network order; v4 in addr[0] */
	__u32 peer[4];			/* inbound: the client */
	__u16 port;			/* network order */
	__u16 peer_port;
	__u32 rule;
	__u32 generation;
	__u8 proto;
	__u8 hook;			/* enum sluice_hook */
	bool task;			/* a syscall's: pid and comm are the caller's */
	__u64 cgroup_id;
};

static __always_inline void refusal_send(const struct refusal *r, __u64 now)
{
	struct sluice_refusal *e;

	e = bpf_ringbuf_reserve(&refusals, sizeof(*e), 0);
	if (!e) {
		dp_count(SLUICE_CNT_REFUSALS_LOST);
		return;
	}
	e->time_ns = now;
	e->cgroup_id = r->cgroup_id;
	e->pid = r->task ? bpf_get_current_pid_tgid() >> 32 : 0;
	e->identity = r->key.identity;
	e->service = r->key.service;
	e->rule = r->rule;
	e->reason = r->key.reason;
	e->generation = r->generation;
	e->family = r->family;
	__builtin_memcpy(e->addr, r->addr, sizeof(e->addr));
	__builtin_memcpy(e->peer, r->peer, sizeof(e->peer));
	e->port = r->port;
	e->peer_port = r->peer_port;
	e->proto = r->proto;
	e->hook = r->hook;
	e->pad0 = 0;
	if (!r->task || bpf_get_current_comm(e->comm, sizeof(e->comm)))
		__builtin_memset(e->comm, 0, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	dp_count(SLUICE_CNT_REFUSALS_SENT);
}

/* Counts the violation, remembers where it went, and tells the agent. */
static __always_inline void count_violation(const struct refusal *r)
{
	struct sluice_violation_dst dst = {};
	struct sluice_counter *c, zero = {};
	__u64 now = bpf_ktime_get_ns();

	c = bpf_map_lookup_elem(&violations, &r->key);
	if (!c) {
		if (bpf_map_update_elem(&violations, &r->key, &zero, BPF_NOEXIST) == -E2BIG)
			dp_count(SLUICE_CNT_VIOLATIONS_UNCOUNTED);
		c = bpf_map_lookup_elem(&violations, &r->key);
	}
	if (c) {
		c->count++;
		c->last_ns = now;
		dst.family = r->family;
		__builtin_memcpy(dst.addr, r->addr, sizeof(dst.addr));
		dst.port = r->port;
		dst.last_ns = now;
		bpf_map_update_elem(&violation_dst, &r->key, &dst, BPF_ANY);
	}
	refusal_send(r, now);
}

static __always_inline bool agent_stale(const struct sluice_config *cfg)
{
	__u64 now = bpf_ktime_get_ns();

	return now - cfg->heartbeat_ns > cfg->heartbeat_timeout_ns;
}

#endif
