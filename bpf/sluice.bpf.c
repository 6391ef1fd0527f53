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

#include "lib/consts.h"
#include "lib/policy.h"
#include "lib/flows.h"
#include "lib/inbound.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/connect4")
int sluice_connect4(struct bpf_sock_addr *ctx)
{
	struct caller c = {};
	struct dest d = {};
	bool redirect;
	int ret;

	ret = hook(ctx, false, SLUICE_HOOK_CONNECT, &c, &d, &redirect);
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

	ret = hook(ctx, true, SLUICE_HOOK_CONNECT, &c, &d, &redirect);
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

	return hook(ctx, false, SLUICE_HOOK_SENDMSG, &c, &d, &redirect);
}

SEC("cgroup/sendmsg6")
int sluice_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct caller c = {};
	struct dest d = {};
	bool redirect;

	return hook(ctx, true, SLUICE_HOOK_SENDMSG, &c, &d, &redirect);
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
		count_refused(wl->identity, cgid, cfg, &p);
	return SKB_DROP;
}
