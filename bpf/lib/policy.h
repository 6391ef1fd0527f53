/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The decision at connect() and sendmsg(): who calls, where to (IPv4-mapped
 * destinations unmapped), the policy lookup, loopback calls within a
 * workload, and the redirect to the agent. */
#ifndef SLUICE_BPF_POLICY_H
#define SLUICE_BPF_POLICY_H

#include "common.h"

struct verdict {
	__u32 action;
	__u32 service;
	__u32 rule;
	__u32 reason;
};

/* reason SLUICE_REASON_WOULD_DENY: an audit-mode deny decided, and action
 * is what an allow would be (policy.h, SLUICE_ACT_ALLOW_WOULD_DENY). */
static __always_inline void decide(const struct sluice_config *cfg, __u32 slot,
				   const struct sluice_policy_value *v, struct verdict *out)
{
	if (v) {
		out->action = v->action;
		out->service = v->service;
		out->rule = v->rule;
		out->reason = v->action == SLUICE_ACT_DENY ? SLUICE_REASON_POLICY_DENY : 0;
		if (v->flags & SLUICE_POLICY_F_WOULD_DENY)
			out->reason = SLUICE_REASON_WOULD_DENY;
		return;
	}
	out->action = cfg->slot_default[slot & 1];
	out->service = SLUICE_SERVICE_NONE;
	out->rule = 0;
	out->reason = out->action == SLUICE_ACT_DENY ? SLUICE_REASON_DEFAULT_DENY : 0;
	if (out->action == SLUICE_ACT_ALLOW_WOULD_DENY) {
		out->action = SLUICE_ACT_ALLOW;
		out->reason = SLUICE_REASON_WOULD_DENY;
	}
}

struct caller {
	const struct sluice_config *cfg;
	__u32 identity;
	__u32 slot;
	__u8 hook;			/* enum sluice_hook */
	__u64 cgroup_id;
};

/* The destination a decision is about, IPv4-mapped addresses unmapped. */
struct dest {
	__u32 family;
	__u32 addr[4];			/* network order; v4 in addr[0] */
	__u16 port;			/* network order */
};

/* Counts and reports one refusal (or bypass) of c's call to d. */
static __always_inline void refuse(struct bpf_sock_addr *ctx, const struct caller *c,
				   const struct dest *d, __u32 service, __u32 rule, __u32 reason)
{
	struct refusal r = {
		.key = { .identity = c->identity, .service = service, .reason = reason },
		.family = d->family,
		.port = d->port,
		.rule = rule,
		.generation = c->cfg->slot_generation[c->slot & 1],
		.proto = ctx->protocol,
		.hook = c->hook,
		.task = true,
		.cgroup_id = c->cgroup_id,
	};

	__builtin_memcpy(r.addr, d->addr, sizeof(r.addr));
	count_violation(&r);
}

/*
 * Common tail of connect4/6 once the policy verdict is known. Returns the
 * syscall verdict; on SLUICE_ACT_REDIRECT with a live agent it stores the
 * original destination and sets *redirect so the caller rewrites the
 * address.
 */
static __always_inline int enforce(struct bpf_sock_addr *ctx, const struct caller *c,
				   const struct dest *d, const struct verdict *vd, bool *redirect)
{
	const struct sluice_config *cfg = c->cfg;
	struct sluice_orig_dst od = {};
	__u64 cookie;

	*redirect = false;
	if (vd->action == SLUICE_ACT_DENY) {
		refuse(ctx, c, d, vd->service, vd->rule, vd->reason);
		return SYSCALL_DENY;
	}
	/* Reported as a refusal is, then connected as an allow. */
	if (vd->reason == SLUICE_REASON_WOULD_DENY) {
		dp_count(SLUICE_CNT_WOULD_DENY);
		refuse(ctx, c, d, vd->service, vd->rule, vd->reason);
	}
	if (vd->action != SLUICE_ACT_REDIRECT || ctx->protocol != IPPROTO_TCP)
		return SYSCALL_PASS;
	if (agent_stale(cfg)) {
		if (cfg->fail_mode == SLUICE_FAIL_OPEN) {
			refuse(ctx, c, d, vd->service, vd->rule, SLUICE_REASON_BYPASS);
			return SYSCALL_PASS;
		}
		refuse(ctx, c, d, vd->service, vd->rule, SLUICE_REASON_AGENT_DOWN);
		return SYSCALL_DENY;
	}
	cookie = bpf_get_socket_cookie(ctx);
	od.family = d->family;
	__builtin_memcpy(od.addr, d->addr, sizeof(od.addr));
	od.port = d->port;
	od.identity = c->identity;
	od.service = vd->service;
	od.rule = vd->rule;
	od.generation = cfg->slot_generation[c->slot & 1];
	od.cookie = cookie;
	bpf_map_update_elem(&orig_dst, &cookie, &od, BPF_ANY);
	*redirect = true;
	return SYSCALL_PASS;
}

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
	c->cgroup_id = cgid;
	return cfg->slot_loaded[c->slot] ? 1 : -1;
}

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

static __always_inline struct sluice_policy_value *policy_find(const struct caller *c,
							       __u32 identity, __u8 proto,
							       const struct dest *d)
{
	struct sluice_policy_key4 k4 = {};
	struct sluice_policy_key6 k6 = {};

	if (d->family == AF_INET) {
		k4.prefixlen = SLUICE_POLICY_FIXED_BITS + 32;
		k4.identity = identity;
		k4.slot = c->slot;
		k4.proto = proto;
		k4.port = d->port;
		k4.addr = d->addr[0];
		return policy_lookup(&policy4, &k4, &k4.port);
	}
	k6.prefixlen = SLUICE_POLICY_FIXED_BITS + 128;
	k6.identity = identity;
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
 * So does a call to the agent's own listen.http (the CA and JWKS a
 * service verifies assertions with), and only that port of the agent's.
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
	if (cgid == c->cfg->agent_cgroup_id)
		return c->cfg->http_port && d->port == c->cfg->http_port;
	wl = bpf_map_lookup_elem(&workloads, &cgid);
	return wl && (wl->flags & SLUICE_WL_MANAGED) && wl->identity == c->identity;
}

/* A default-deny (or an audit policy's default would-deny) names the
 * service the caller tried to reach, from the service directory (identity
 * 0 in the policy maps): only on these paths, so an allowed connect()
 * pays for one lookup as before. Only the default leaves rule 0. */
static __always_inline void resolve_service(struct bpf_sock_addr *ctx, const struct caller *c,
					    const struct dest *d, struct verdict *vd)
{
	struct sluice_policy_value *v;

	if (vd->rule || (vd->reason != SLUICE_REASON_DEFAULT_DENY &&
			 vd->reason != SLUICE_REASON_WOULD_DENY))
		return;
	v = policy_find(c, SLUICE_IDENTITY_NONE, ctx->protocol, d);
	if (v)
		vd->service = v->service;
}

/*
 * The decision for one connect() or sendmsg() of a managed workload to d.
 * Returns the syscall verdict; *redirect (false on entry) says the caller
 * must rewrite the destination to the agent's listener.
 */
static __always_inline int police(struct bpf_sock_addr *ctx, const struct caller *c,
				  const struct dest *d, bool *redirect)
{
	struct verdict vd = {};

	if (own_listener(ctx, c, d))
		return SYSCALL_PASS;
	decide(c->cfg, c->slot, policy_find(c, c->identity, ctx->protocol, d), &vd);
	resolve_service(ctx, c, d, &vd);
	return enforce(ctx, c, d, &vd, redirect);
}

/* Everything a connect or sendmsg hook does before rewriting: who calls,
 * where to, and the verdict. */
static __always_inline int hook(struct bpf_sock_addr *ctx, bool v6, __u8 hook_id,
				struct caller *c, struct dest *d, bool *redirect)
{
	int ret;

	*redirect = false;
	ret = caller_get(ctx, c);
	if (!ret)
		return SYSCALL_PASS;
	c->hook = hook_id;
	if (v6)
		dest6(ctx, d);
	else
		dest4(ctx, d);
	if (ret < 0) {
		refuse(ctx, c, d, SLUICE_SERVICE_NONE, 0, SLUICE_REASON_NO_POLICY);
		return SYSCALL_DENY;
	}
	return police(ctx, c, d, redirect);
}

#endif
