/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Inbound enforcement for mesh-only workloads: parsing the packet to a
 * listener, and telling the agent's sockets from anyone else's. */
#ifndef SLUICE_BPF_INBOUND_H
#define SLUICE_BPF_INBOUND_H

#include "common.h"

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
static __always_inline void count_refused(__u32 identity, __u64 cgid,
					  const struct sluice_config *cfg, const struct tcp_pkt *p)
{
	__u32 *seq = bpf_map_lookup_elem(&refused_syns, &p->k);
	struct refusal r = {
		.key = { .identity = identity, .reason = SLUICE_REASON_NOT_VIA_MESH,
			 .port = p->k.dport },
		.family = p->k.family,
		.port = p->k.dport,
		.peer_port = p->k.sport,
		.generation = cfg->slot_generation[cfg->active_slot & 1],
		.proto = IPPROTO_TCP,
		.hook = SLUICE_HOOK_INBOUND,
		.cgroup_id = cgid,
	};

	if (seq && *seq == p->seq)
		return;
	bpf_map_update_elem(&refused_syns, &p->k, &p->seq, BPF_ANY);
	__builtin_memcpy(r.addr, p->k.daddr, sizeof(r.addr));
	__builtin_memcpy(r.peer, p->k.saddr, sizeof(r.peer));
	count_violation(&r);
}

#endif
