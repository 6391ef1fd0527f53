/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow tracking for sockops: the redirected app socket and the agent's
 * upstream socket it is linked to, their latency, RTT and bytes. */
#ifndef SLUICE_BPF_FLOWS_H
#define SLUICE_BPF_FLOWS_H

#include "common.h"

/* The app socket's local address as the agent sees it after accept(): a
 * dual-stack socket redirected to the mapped IPv4 listener is an IPv4
 * peer there. */
static __always_inline void local_tuple(struct bpf_sock_ops *skops, struct sluice_tuple_key *k)
{
	__u32 a[4];

	k->port = bpf_htons((__u16)skops->local_port);
	k->family = skops->family;
	if (skops->family == AF_INET) {
		k->addr[0] = skops->local_ip4;
		return;
	}
	a[0] = skops->local_ip6[0];
	a[1] = skops->local_ip6[1];
	a[2] = skops->local_ip6[2];
	a[3] = skops->local_ip6[3];
	if (ip6_v4mapped(a)) {
		k->family = AF_INET;
		k->addr[0] = a[3];
		return;
	}
	__builtin_memcpy(k->addr, a, sizeof(k->addr));
}

static __always_inline __u32 log2_bucket(__u64 v)
{
	__u32 r = 0;

	/* Unrolled binary search: the verifier sees a bounded result. */
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r < SLUICE_LAT_BUCKETS ? r : SLUICE_LAT_BUCKETS - 1;
}

static __always_inline struct sluice_svc_stats *svc_stats_get(__u32 identity, __u32 service)
{
	struct sluice_svc_key key = { .identity = identity, .service = service };
	struct sluice_svc_stats *s;
	static const struct sluice_svc_stats zero;

	s = bpf_map_lookup_elem(&svc_stats, &key);
	if (s)
		return s;
	if (bpf_map_update_elem(&svc_stats, &key, &zero, BPF_NOEXIST) == -E2BIG)
		dp_count(SLUICE_CNT_STATS_UNCOUNTED);
	return bpf_map_lookup_elem(&svc_stats, &key);
}

/* The flow's last smoothed RTT, into its pair's histogram. */
static __always_inline void svc_rtt_add(__u32 identity, __u32 service, __u32 srtt_us)
{
	struct sluice_svc_key key = { .identity = identity, .service = service };
	static const struct sluice_svc_rtt zero;
	struct sluice_svc_rtt *r;

	r = bpf_map_lookup_elem(&svc_rtt, &key);
	if (!r) {
		if (bpf_map_update_elem(&svc_rtt, &key, &zero, BPF_NOEXIST) == -E2BIG)
			dp_count(SLUICE_CNT_STATS_UNCOUNTED);
		r = bpf_map_lookup_elem(&svc_rtt, &key);
		if (!r)
			return;
	}
	__sync_fetch_and_add(&r->samples, 1);
	__sync_fetch_and_add(&r->rtt_us_sum, srtt_us);
	__sync_fetch_and_add(&r->rtt_buckets[log2_bucket(srtt_us)], 1);
}

/* A redirected app socket sends its SYN to the agent: publish its local
 * address so the agent can find the original destination after accept(). */
static __always_inline void app_connect(struct bpf_sock_ops *skops, __u64 cookie,
					struct sluice_orig_dst *od)
{
	struct sluice_tuple_key tk = {};
	struct sluice_flow fl = {};
	__u64 now = bpf_ktime_get_ns();

	local_tuple(skops, &tk);
	bpf_map_update_elem(&redirects, &tk, od, BPF_ANY);

	fl.dst = *od;
	__builtin_memcpy(fl.saddr, tk.addr, sizeof(fl.saddr));
	fl.sport = tk.port;
	fl.state = SLUICE_FLOW_CONNECTING;
	fl.verdict = SLUICE_ACT_REDIRECT;
	fl.start_ns = now;
	fl.last_ns = now;
	if (!bpf_map_update_elem(&flows, &cookie, &fl, BPF_ANY))
		dp_count(SLUICE_CNT_FLOWS_TRACKED);
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void app_close(struct bpf_sock_ops *skops, __u64 cookie)
{
	struct sluice_tuple_key tk = {};

	local_tuple(skops, &tk);
	bpf_map_delete_elem(&redirects, &tk);
	bpf_map_delete_elem(&orig_dst, &cookie);
	if (!bpf_map_delete_elem(&flows, &cookie))
		dp_count(SLUICE_CNT_FLOWS_UNTRACKED);
}

static __always_inline void upstream_sample(struct bpf_sock_ops *skops, struct sluice_flow *fl)
{
	fl->srtt_us = skops->srtt_us >> 3;
	fl->bytes_sent = skops->bytes_acked;
	fl->bytes_received = skops->bytes_received;
	fl->last_ns = bpf_ktime_get_ns();
}

static __always_inline void upstream_established(struct bpf_sock_ops *skops,
						 struct sluice_link *ln)
{
	struct sluice_svc_stats *st;
	struct sluice_flow *fl;
	__u64 now = bpf_ktime_get_ns(), us;

	fl = bpf_map_lookup_elem(&flows, &ln->app_cookie);
	if (!fl)
		return;
	us = fl->upstream_syn_ns ? (now - fl->upstream_syn_ns) / 1000 : 0;
	fl->established_ns = now;
	fl->connect_us = us;
	fl->state = SLUICE_FLOW_ESTABLISHED;
	upstream_sample(skops, fl);

	st = svc_stats_get(ln->identity, ln->service);
	if (!st)
		return;
	__sync_fetch_and_add(&st->flows, 1);
	__sync_fetch_and_add(&st->connect_us_sum, us);
	__sync_fetch_and_add(&st->lat_buckets[log2_bucket(us)], 1);
}

static __always_inline void upstream_close(struct bpf_sock_ops *skops, __u64 cookie,
					   struct sluice_link *ln)
{
	struct sluice_svc_stats *st;
	struct sluice_flow *fl;

	fl = bpf_map_lookup_elem(&flows, &ln->app_cookie);
	if (fl) {
		upstream_sample(skops, fl);
		fl->state = SLUICE_FLOW_CLOSING;
	}
	st = svc_stats_get(ln->identity, ln->service);
	if (st) {
		__sync_fetch_and_add(&st->closed, 1);
		__sync_fetch_and_add(&st->bytes_sent, skops->bytes_acked);
		__sync_fetch_and_add(&st->bytes_received, skops->bytes_received);
	}
	/* A flow that never got established has no RTT to tell. */
	if (fl && fl->established_ns)
		svc_rtt_add(ln->identity, ln->service, skops->srtt_us >> 3);
	bpf_map_delete_elem(&flow_links, &cookie);
}

#endif
