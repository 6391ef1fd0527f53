// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluice datapath: L4 policy and redirect at connect(), L4 policy for
 * unconnected UDP at sendmsg(), flow tracking in sockops, and inbound
 * enforcement for mesh-only workloads at the receiving socket
 * (cgroup_skb/ingress). All are attached to the agent's cgroup root.
 *
 * An IPv4-mapped IPv6 destination (::ffff:a.b.c.d, what a dual-stack
 * AF_INET6 socket such as the JVM's uses for every IPv4 peer) is an IPv4
 * destination: it is decided by the IPv4 policy and redirected to the
 * agent's IPv4 listener, so that no address family escapes a rule.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#include "lib/maps.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
/* IPv6 extension headers a SYN may carry before the TCP header. */
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_DSTOPTS 60
#define IPV6_EXT_MAX 4

/* connect4/6 return codes: 0 makes connect() fail with EPERM. */
#define SYSCALL_DENY 0
#define SYSCALL_PASS 1
/* cgroup_skb return codes. */
#define SKB_DROP 0
#define SKB_PASS 1

char LICENSE[] SEC("license") = "Dual BSD/GPL";

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

struct verdict {
	__u32 action;
	__u32 service;
	__u32 rule;
	__u32 reason;
};

static __always_inline void decide(const struct sluice_config *cfg, __u32 slot,
				   const struct sluice_policy_value *v, struct verdict *out)
{
	if (v) {
		out->action = v->action;
		out->service = v->service;
		out->rule = v->rule;
		out->reason = v->action == SLUICE_ACT_DENY ? SLUICE_REASON_POLICY_DENY : 0;
	} else {
		out->action = cfg->slot_default[slot & 1];
		out->service = SLUICE_SERVICE_NONE;
		out->rule = 0;
		out->reason = out->action == SLUICE_ACT_DENY ? SLUICE_REASON_DEFAULT_DENY : 0;
	}
}

/*
 * Common tail of connect4/6 once the policy verdict is known. Returns the
 * syscall verdict; on SLUICE_ACT_REDIRECT with a live agent it stores the
 * original destination and sets *redirect so the caller rewrites the
 * address.
 */
static __always_inline int enforce(struct bpf_sock_addr *ctx, const struct sluice_config *cfg,
				   __u32 identity, __u32 slot, struct verdict *vd,
				   struct sluice_orig_dst *od, bool *redirect)
{
	__u64 cookie;

	*redirect = false;
	if (vd->action == SLUICE_ACT_DENY) {
		count_violation(identity, vd->service, vd->reason, 0);
		return SYSCALL_DENY;
	}
	if (vd->action != SLUICE_ACT_REDIRECT || ctx->protocol != IPPROTO_TCP)
		return SYSCALL_PASS;
	if (agent_stale(cfg)) {
		if (cfg->fail_mode == SLUICE_FAIL_OPEN) {
			count_violation(identity, vd->service, SLUICE_REASON_BYPASS, 0);
			return SYSCALL_PASS;
		}
		count_violation(identity, vd->service, SLUICE_REASON_AGENT_DOWN, 0);
		return SYSCALL_DENY;
	}
	cookie = bpf_get_socket_cookie(ctx);
	od->identity = identity;
	od->service = vd->service;
	od->rule = vd->rule;
	od->generation = cfg->slot_generation[slot & 1];
	od->cookie = cookie;
	bpf_map_update_elem(&orig_dst, &cookie, od, BPF_ANY);
	*redirect = true;
	return SYSCALL_PASS;
}

struct caller {
	const struct sluice_config *cfg;
	__u32 identity;
	__u32 slot;
};

/*
 * Who is connecting: 1 for a managed workload (c filled in), 0 when the
 * connect is none of sluice's business (other protocols, unmanaged cgroups,
 * the agent itself), -1 when it must be refused because no policy is live.
 */
static __always_inline int caller_get(struct bpf_sock_addr *ctx, struct caller *c)
{
	const struct sluice_workload *wl;
	struct sluice_config *cfg;
	__u32 zero = 0;
	__u64 cgid;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 0;
	cfg = bpf_map_lookup_elem(&sluice_cfg, &zero);
	if (!cfg || cfg->abi_version != SLUICE_ABI_VERSION)
		return 0;
	cgid = bpf_get_current_cgroup_id();
	if (cgid == cfg->agent_cgroup_id)
		return 0;
	wl = bpf_map_lookup_elem(&workloads, &cgid);
	if (!wl || !(wl->flags & SLUICE_WL_MANAGED))
		return 0;
	c->cfg = cfg;
	c->identity = wl->identity;
	c->slot = cfg->active_slot & 1;
	if (!cfg->slot_loaded[c->slot]) {
		count_violation(c->identity, SLUICE_SERVICE_NONE, SLUICE_REASON_NO_POLICY, 0);
		return -1;
	}
	return 1;
}

/* The destination a decision is about, IPv4-mapped addresses unmapped. */
struct dest {
	__u32 family;
	__u32 addr[4];			/* network order; v4 in addr[0] */
	__u16 port;			/* network order */
};

static __always_inline bool ip6_v4mapped(const __u32 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff);
}

static __always_inline void dest4(struct bpf_sock_addr *ctx, struct dest *d)
{
	d->family = AF_INET;
	d->addr[0] = ctx->user_ip4;
	d->port = (__u16)ctx->user_port;
}

static __always_inline void dest6(struct bpf_sock_addr *ctx, struct dest *d)
{
	__u32 a[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };

	d->port = (__u16)ctx->user_port;
	if (ip6_v4mapped(a)) {
		d->family = AF_INET;
		d->addr[0] = a[3];
		return;
	}
	d->family = AF_INET6;
	__builtin_memcpy(d->addr, a, sizeof(d->addr));
}

/* The port-exact entry first, then the any-port one; key's port field is
 * passed separately so one body serves both key layouts. */
static __always_inline struct sluice_policy_value *policy_lookup(void *map, void *key,
								 __u16 *port)
{
	struct sluice_policy_value *v;

	v = bpf_map_lookup_elem(map, key);
	if (v)
		return v;
	*port = SLUICE_PORT_ANY;
	return bpf_map_lookup_elem(map, key);
}

static __always_inline struct sluice_policy_value *policy_find(const struct caller *c, __u8 proto,
							       const struct dest *d)
{
	struct sluice_policy_key4 k4 = {};
	struct sluice_policy_key6 k6 = {};

	if (d->family == AF_INET) {
		k4.prefixlen = SLUICE_POLICY_FIXED_BITS + 32;
		k4.identity = c->identity;
		k4.slot = c->slot;
		k4.proto = proto;
		k4.port = d->port;
		k4.addr = d->addr[0];
		return policy_lookup(&policy4, &k4, &k4.port);
	}
	k6.prefixlen = SLUICE_POLICY_FIXED_BITS + 128;
	k6.identity = c->identity;
	k6.slot = c->slot;
	k6.proto = proto;
	k6.port = d->port;
	__builtin_memcpy(k6.addr, d->addr, sizeof(k6.addr));
	return policy_lookup(&policy6, &k6, &k6.port);
}

static __always_inline bool dest_loopback(const struct dest *d)
{
	if (d->family == AF_INET)
		return (d->addr[0] & bpf_htonl(0xff000000)) == bpf_htonl(0x7f000000);
	return d->addr[0] == 0 && d->addr[1] == 0 && d->addr[2] == 0 &&
	       d->addr[3] == bpf_htonl(1);
}

/*
 * Whether a loopback TCP destination is a listener of the caller's own
 * workload (the cgroup that opened the listener maps to the same
 * identity): py4j between a notebook's Python and its JVM, a Jupyter
 * kernel's ZeroMQ sockets, Spark's local services. The mesh decides
 * between identities, so such a call passes without a policy lookup.
 * The listener's cgroup is read from the socket itself, so listeners
 * opened before the agent started count too.
 */
static __always_inline bool own_listener(struct bpf_sock_addr *ctx, const struct caller *c,
					 const struct dest *d)
{
	const struct sluice_workload *wl;
	struct bpf_sock_tuple t = {};
	struct tcp_sock *tp;
	struct bpf_sock *sk;
	__u64 cgid = 0;

	if (ctx->protocol != IPPROTO_TCP || !dest_loopback(d))
		return false;
	if (d->family == AF_INET) {
		t.ipv4.daddr = d->addr[0];
		t.ipv4.dport = d->port;
		sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	} else {
		__builtin_memcpy(t.ipv6.daddr, d->addr, sizeof(t.ipv6.daddr));
		t.ipv6.dport = d->port;
		sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
	}
	if (!sk)
		return false;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp && sk->state == BPF_TCP_LISTEN)
		cgid = BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.sk_cgrp_data.cgroup, kn, id);
	bpf_sk_release(sk);
	if (!cgid)
		return false;
	wl = bpf_map_lookup_elem(&workloads, &cgid);
	return wl && (wl->flags & SLUICE_WL_MANAGED) && wl->identity == c->identity;
}

/*
 * The decision for one connect() or sendmsg() of a managed workload to d.
 * Returns the syscall verdict; *redirect (false on entry) says the caller
 * must rewrite the destination to the agent's listener.
 */
static __always_inline int police(struct bpf_sock_addr *ctx, const struct caller *c,
				  const struct dest *d, bool *redirect)
{
	struct sluice_orig_dst od = {};
	struct verdict vd = {};

	if (own_listener(ctx, c, d))
		return SYSCALL_PASS;
	decide(c->cfg, c->slot, policy_find(c, ctx->protocol, d), &vd);
	od.family = d->family;
	__builtin_memcpy(od.addr, d->addr, sizeof(od.addr));
	od.port = d->port;
	return enforce(ctx, c->cfg, c->identity, c->slot, &vd, &od, redirect);
}

/* Everything a connect or sendmsg hook does before rewriting: who calls,
 * where to, and the verdict. */
static __always_inline int hook(struct bpf_sock_addr *ctx, bool v6, struct caller *c,
				struct dest *d, bool *redirect)
{
	int ret;

	*redirect = false;
	ret = caller_get(ctx, c);
	if (ret <= 0)
		return ret ? SYSCALL_DENY : SYSCALL_PASS;
	if (v6)
		dest6(ctx, d);
	else
		dest4(ctx, d);
	return police(ctx, c, d, redirect);
}

SEC("cgroup/connect4")
int sluice_connect4(struct bpf_sock_addr *ctx)
{
	struct caller c = {};
	struct dest d = {};
	bool redirect;
	int ret;

	ret = hook(ctx, false, &c, &d, &redirect);
	if (redirect) {
		ctx->user_ip4 = c.cfg->outbound4_addr;
		ctx->user_port = c.cfg->outbound_port;
	}
	return ret;
}

SEC("cgroup/connect6")
int sluice_connect6(struct bpf_sock_addr *ctx)
{
	struct caller c = {};
	struct dest d = {};
	bool redirect;
	int ret;

	ret = hook(ctx, true, &c, &d, &redirect);
	if (!redirect)
		return ret;
	/* A mapped destination stays IPv4: the socket reaches the agent's
	 * IPv4 listener through the mapped loopback address. */
	if (d.family == AF_INET) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = c.cfg->outbound4_addr;
	} else {
		ctx->user_ip6[0] = c.cfg->outbound6_addr[0];
		ctx->user_ip6[1] = c.cfg->outbound6_addr[1];
		ctx->user_ip6[2] = c.cfg->outbound6_addr[2];
		ctx->user_ip6[3] = c.cfg->outbound6_addr[3];
	}
	ctx->user_port = c.cfg->outbound_port;
	return ret;
}

/*
 * sendto()/sendmsg() with a destination on a UDP socket: connect() is
 * never called, so these are the only hooks that see where the datagram
 * goes. Decided as a connect() to the same destination would be; UDP is
 * never redirected.
 */
SEC("cgroup/sendmsg4")
int sluice_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct caller c = {};
	struct dest d = {};
	bool redirect;

	return hook(ctx, false, &c, &d, &redirect);
}

SEC("cgroup/sendmsg6")
int sluice_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct caller c = {};
	struct dest d = {};
	bool redirect;

	return hook(ctx, true, &c, &d, &redirect);
}

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
	bpf_map_update_elem(&svc_stats, &key, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&svc_stats, &key);
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
	bpf_map_update_elem(&flows, &cookie, &fl, BPF_ANY);
	bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void app_close(struct bpf_sock_ops *skops, __u64 cookie)
{
	struct sluice_tuple_key tk = {};

	local_tuple(skops, &tk);
	bpf_map_delete_elem(&redirects, &tk);
	bpf_map_delete_elem(&orig_dst, &cookie);
	bpf_map_delete_elem(&flows, &cookie);
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
	bpf_map_delete_elem(&flow_links, &cookie);
}

SEC("sockops")
int sluice_sockops(struct bpf_sock_ops *skops)
{
	struct sluice_orig_dst *od;
	struct sluice_link *ln;
	struct sluice_flow *fl;
	__u32 op = skops->op;
	__u64 cookie;

	if (skops->family != AF_INET && skops->family != AF_INET6)
		return 1;
	if (op != BPF_SOCK_OPS_TCP_CONNECT_CB && op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    op != BPF_SOCK_OPS_RTT_CB && op != BPF_SOCK_OPS_STATE_CB)
		return 1;

	cookie = bpf_get_socket_cookie(skops);
	od = bpf_map_lookup_elem(&orig_dst, &cookie);
	if (od) {
		if (op == BPF_SOCK_OPS_TCP_CONNECT_CB)
			app_connect(skops, cookie, od);
		else if (op == BPF_SOCK_OPS_STATE_CB && skops->args[1] == BPF_TCP_CLOSE)
			app_close(skops, cookie);
		return 1;
	}

	ln = bpf_map_lookup_elem(&flow_links, &cookie);
	if (!ln)
		return 1;
	switch (op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		fl = bpf_map_lookup_elem(&flows, &ln->app_cookie);
		if (fl)
			fl->upstream_syn_ns = bpf_ktime_get_ns();
		bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG |
						 BPF_SOCK_OPS_RTT_CB_FLAG);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		upstream_established(skops, ln);
		break;
	case BPF_SOCK_OPS_RTT_CB:
		fl = bpf_map_lookup_elem(&flows, &ln->app_cookie);
		if (fl)
			upstream_sample(skops, fl);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[1] == BPF_TCP_CLOSE)
			upstream_close(skops, cookie, ln);
		break;
	}
	return 1;
}

/* What inbound needs of a packet to a listener: its 4-tuple (the sender's
 * lookup key and refused_syns key), its sequence number and whether it
 * asks for a connection. */
struct tcp_pkt {
	struct sluice_syn_key k;
	__u32 seq;
	bool syn;
};

static __always_inline int tcp_parse_tail(struct __sk_buff *skb, __u32 off, struct tcp_pkt *p)
{
	struct tcphdr th;

	if (bpf_skb_load_bytes(skb, off, &th, sizeof(th)))
		return -1;
	p->k.sport = th.source;
	p->k.dport = th.dest;
	p->seq = th.seq;
	p->syn = th.syn && !th.ack;
	return 0;
}

static __always_inline int tcp_parse4(struct __sk_buff *skb, struct tcp_pkt *p)
{
	struct iphdr ip;

	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.version != 4 || ip.ihl < 5 ||
	    ip.protocol != IPPROTO_TCP)
		return -1;
	p->k.family = AF_INET;
	p->k.saddr[0] = ip.saddr;
	p->k.daddr[0] = ip.daddr;
	return tcp_parse_tail(skb, ip.ihl * 4, p);
}

static __always_inline int tcp_parse6(struct __sk_buff *skb, struct tcp_pkt *p)
{
	struct ipv6_opt_hdr opt;
	struct ipv6hdr ip;
	__u32 off = sizeof(ip);
	__u8 next;

	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.version != 6)
		return -1;
	next = ip.nexthdr;
	for (int i = 0; i < IPV6_EXT_MAX && next != IPPROTO_TCP; i++) {
		if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING &&
		    next != IPPROTO_DSTOPTS && next != IPPROTO_AH)
			return -1;
		if (bpf_skb_load_bytes(skb, off, &opt, sizeof(opt)))
			return -1;
		off += next == IPPROTO_AH ? (opt.hdrlen + 2) * 4 : (opt.hdrlen + 1) * 8;
		next = opt.nexthdr;
	}
	if (next != IPPROTO_TCP)
		return -1;
	p->k.family = AF_INET6;
	__builtin_memcpy(p->k.saddr, &ip.saddr, sizeof(p->k.saddr));
	__builtin_memcpy(p->k.daddr, &ip.daddr, sizeof(p->k.daddr));
	return tcp_parse_tail(skb, off, p);
}

/*
 * Whether the agent sent this packet. The agent connects to local
 * workloads from its own cgroup and network namespace, so its socket is
 * found by the reversed 4-tuple: in SYN_SENT for the SYN, ESTABLISHED for
 * the handshake's last ACK. A listener must not count: when no socket
 * matches exactly the lookup falls back to listeners, and a client that
 * picks a port the agent listens on as its source port is not the agent.
 * (A workload in a network namespace of its own is out of reach of this
 * lookup: mesh-only is for workloads that share the agent's.)
 */
static __always_inline bool from_agent(struct __sk_buff *skb, const struct tcp_pkt *p,
				       __u64 agent_cgroup_id)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	bool agent;

	if (p->k.family == AF_INET) {
		t.ipv4.saddr = p->k.daddr[0];
		t.ipv4.daddr = p->k.saddr[0];
		t.ipv4.sport = p->k.dport;
		t.ipv4.dport = p->k.sport;
		sk = bpf_sk_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	} else {
		__builtin_memcpy(t.ipv6.saddr, p->k.daddr, sizeof(t.ipv6.saddr));
		__builtin_memcpy(t.ipv6.daddr, p->k.saddr, sizeof(t.ipv6.daddr));
		t.ipv6.sport = p->k.dport;
		t.ipv6.dport = p->k.sport;
		sk = bpf_sk_lookup_tcp(skb, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
	}
	if (!sk)
		return false;
	agent = sk->state != BPF_TCP_LISTEN && bpf_sk_cgroup_id(sk) == agent_cgroup_id;
	bpf_sk_release(sk);
	return agent;
}

/* One violation per connection attempt, not per SYN: a retransmit carries
 * the sequence number refused_syns already holds for its 4-tuple. */
static __always_inline void count_refused(__u32 identity, const struct tcp_pkt *p)
{
	__u32 *seq = bpf_map_lookup_elem(&refused_syns, &p->k);

	if (seq && *seq == p->seq)
		return;
	bpf_map_update_elem(&refused_syns, &p->k, &p->seq, BPF_ANY);
	count_violation(identity, SLUICE_SERVICE_NONE, SLUICE_REASON_NOT_VIA_MESH, p->k.dport);
}

/*
 * Runs for every packet delivered to a socket under the cgroup root, in
 * the cgroup of the receiving socket. A mesh-only workload's listeners hear
 * from the agent only: a SYN from anyone else is dropped and counted, and
 * so is, uncounted, anything else they would be sent (an ACK with a guessed
 * SYN cookie opens a connection too). Everything else passes, cheapest test
 * first, since this is on every packet's path.
 */
SEC("cgroup_skb/ingress")
int sluice_inbound(struct __sk_buff *skb)
{
	const struct sluice_workload *wl;
	struct sluice_config *cfg;
	struct tcp_pkt p = {};
	struct bpf_sock *sk;
	__u32 zero = 0;
	__u64 cgid;
	int ret;

	/* Established flows are delivered to their own socket, never to the
	 * listener: they pass here, whoever opened them. */
	sk = skb->sk;
	if (!sk || sk->state != BPF_TCP_LISTEN)
		return SKB_PASS;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_TCP)
		return SKB_PASS;
	cfg = bpf_map_lookup_elem(&sluice_cfg, &zero);
	if (!cfg || cfg->abi_version != SLUICE_ABI_VERSION)
		return SKB_PASS;
	cgid = bpf_sk_cgroup_id(sk);
	wl = bpf_map_lookup_elem(&workloads, &cgid);
	if (!wl || !(wl->flags & SLUICE_WL_MESH_ONLY))
		return SKB_PASS;

	if (skb->protocol == bpf_htons(ETH_P_IP))
		ret = tcp_parse4(skb, &p);
	else if (skb->protocol == bpf_htons(ETH_P_IPV6))
		ret = tcp_parse6(skb, &p);
	else
		ret = -1;
	/* Headers the agent never sends: refuse rather than guess. */
	if (ret)
		return SKB_DROP;
	if (from_agent(skb, &p, cfg->agent_cgroup_id))
		return SKB_PASS;
	if (p.syn)
		count_refused(wl->identity, &p);
	return SKB_DROP;
}
