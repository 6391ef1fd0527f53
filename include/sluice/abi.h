/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ABI shared by the BPF programs (bpf/) and userspace (agent/, sluicectl).
 *
 * Every struct here is a map key or value; bpf/lib/maps.h says, for each
 * map, who writes it and who reads it. Layouts are fixed: explicit
 * padding, no bitfields, naturally aligned, so that both clang -target bpf
 * and the host compiler agree. Changing a layout changes a pinned map's
 * key/value size, which makes libbpf refuse to reuse the old pin: bump
 * SLUICE_ABI_VERSION and document the upgrade path when you do.
 */
#ifndef SLUICE_MAPS_H
#define SLUICE_MAPS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#include <stdbool.h>
#endif

#define SLUICE_ABI_VERSION 1

/* Default pin directory; one directory per agent (node). */
#define SLUICE_PIN_PATH "/sys/fs/bpf/sluice"

/* Map capacities. LRU maps bound per-flow state under connection churn. */
#define SLUICE_MAX_WORKLOADS 4096
#define SLUICE_MAX_POLICY 65536
#define SLUICE_MAX_FLOWS 65536
#define SLUICE_MAX_VIOLATIONS 16384
#define SLUICE_MAX_STATS 16384
#define SLUICE_MAX_NAMES 16384
#define SLUICE_MAX_REFUSED_SYNS 8192
#define SLUICE_LAT_BUCKETS 32
#define SLUICE_NAME_LEN 128
/* refusals ring buffer: 256 KiB holds about 2,000 events, a second of a
 * fast retry loop; what does not fit is counted (SLUICE_CNT_REFUSALS_LOST). */
#define SLUICE_REFUSALS_BYTES (256 * 1024)
#define SLUICE_COMM_LEN 16

/* Policy generations live side by side in two slots; one switch of
 * sluice_config.active_slot makes the other live (apply and rollback). */
#define SLUICE_SLOTS 2

/* Identity 0 is never assigned: it means "no identity" in stats keys. In
 * policy4/6 it keys the service directory: one entry per service address
 * and port, which a refusal no rule matched is resolved with, so that a
 * default-deny still names the service the caller tried to reach. */
#define SLUICE_IDENTITY_NONE 0
/* Service 0 means "no service matched" (default action). */
#define SLUICE_SERVICE_NONE 0
/* A policy entry with this port matches any port. */
#define SLUICE_PORT_ANY 0

enum sluice_action {
	SLUICE_ACT_DENY = 0,
	SLUICE_ACT_ALLOW = 1,		/* allowed, connects directly (not meshed) */
	SLUICE_ACT_REDIRECT = 2,	/* allowed and meshed: steered to the agent */
	/* sluice_config.slot_default only: the default deny of a mode: audit
	 * policy. A miss connects as SLUICE_ACT_ALLOW would, and is reported
	 * as SLUICE_REASON_WOULD_DENY. */
	SLUICE_ACT_ALLOW_WOULD_DENY = 3,
};

/* sluice_policy_value.flags */
enum sluice_policy_flags {
	/* An audit-mode deny: action is what an allow of the same
	 * destination compiles to, and the hooks report the connect() as
	 * SLUICE_REASON_WOULD_DENY (not a refusal: it proceeds). */
	SLUICE_POLICY_F_WOULD_DENY = 1 << 0,
};

enum sluice_reason {
	SLUICE_REASON_NONE = 0,
	SLUICE_REASON_POLICY_DENY = 1,	/* an explicit deny rule matched */
	SLUICE_REASON_DEFAULT_DENY = 2,	/* no rule matched, default is deny */
	SLUICE_REASON_AGENT_DOWN = 3,	/* fail-closed: heartbeat is stale */
	SLUICE_REASON_BYPASS = 4,	/* fail-open: allowed past a stale agent */
	SLUICE_REASON_NO_POLICY = 5,	/* no policy generation loaded yet */
	SLUICE_REASON_NOT_VIA_MESH = 6,	/* a connection into a mesh-only workload
					 * that its agent did not open */
	SLUICE_REASON_WOULD_DENY = 7,	/* allowed: an audit-mode deny (rule or
					 * default) would have refused it */
	SLUICE_REASON_MAX,
};

/* Where a refusal was made (struct sluice_refusal.hook). */
enum sluice_hook {
	SLUICE_HOOK_CONNECT = 1,
	SLUICE_HOOK_SENDMSG = 2,
	SLUICE_HOOK_INBOUND = 3,
};

/* dp_counters: PERCPU_ARRAY, index -> __u64, what the programs count about
 * themselves. Flows evicted from the LRU maps are tracked - untracked -
 * live entries: an evicted entry is never deleted, so it is never
 * untracked. */
enum sluice_dp_counter {
	SLUICE_CNT_REFUSALS_SENT = 0,	/* events written to refusals */
	SLUICE_CNT_REFUSALS_LOST = 1,	/* refusals full: the event was dropped */
	SLUICE_CNT_FLOWS_TRACKED = 2,	/* flows entries created */
	SLUICE_CNT_FLOWS_UNTRACKED = 3,	/* flows entries deleted at close */
	SLUICE_CNT_VIOLATIONS_UNCOUNTED = 4,	/* violations full: a new key was not added */
	SLUICE_CNT_STATS_UNCOUNTED = 5,	/* svc_stats full: a new pair was not added */
	SLUICE_CNT_WOULD_DENY = 6,	/* connects and datagrams let through that an
					 * audit-mode deny would have refused */
	SLUICE_CNT_MAX = 16,
};

enum sluice_fail_mode {
	SLUICE_FAIL_CLOSED = 0,
	SLUICE_FAIL_OPEN = 1,
};

enum sluice_wl_flags {
	SLUICE_WL_MANAGED = 1 << 0,
	/* inbound: mesh-only. Its TCP listeners take packets only from
	 * sockets of the agent's cgroup on this node, in either failure mode;
	 * every other SYN is dropped and counted. */
	SLUICE_WL_MESH_ONLY = 1 << 1,
};

enum sluice_name_kind {
	SLUICE_NAME_IDENTITY = 1,
	SLUICE_NAME_SERVICE = 2,
};

enum sluice_flow_state {
	SLUICE_FLOW_CONNECTING = 1,
	SLUICE_FLOW_ESTABLISHED = 2,
	SLUICE_FLOW_CLOSING = 3,
};

/* sluice_cfg[0]: the agent's settings, liveness and policy slots. */
struct sluice_config {
	__u32 abi_version;
	__u32 active_slot;		/* 0 or 1; policy key's slot */
	__u32 slot_loaded[SLUICE_SLOTS];	/* 1 when the slot holds a policy */
	__u32 slot_generation[SLUICE_SLOTS];	/* monotonic generation number */
	__u32 slot_default[SLUICE_SLOTS];	/* enum sluice_action for misses:
						 * DENY, ALLOW or ALLOW_WOULD_DENY */
	__u32 fail_mode;		/* enum sluice_fail_mode */
	__u32 agent_pid;
	__u64 agent_cgroup_id;		/* connects from here pass untouched,
					 * and only they reach mesh-only
					 * workloads */
	__u64 heartbeat_ns;		/* CLOCK_MONOTONIC == bpf_ktime_get_ns */
	__u64 heartbeat_timeout_ns;
	__u64 started_ns;
	__u32 outbound4_addr;		/* network order */
	__u16 outbound_port;		/* network order; one port for v4 and v6 */
	__u16 http_port;		/* network order, 0: none. The agent's
					 * listen.http: managed workloads reach
					 * it on loopback whatever the policy */
	__u32 outbound6_addr[4];	/* network order */
};

/* workloads: cgroup id (__u64) -> struct sluice_workload. */
struct sluice_workload {
	__u32 identity;
	__u32 flags;			/* enum sluice_wl_flags */
};

/*
 * policy4 / policy6: LPM trie. Every field before the address is always
 * matched in full, so the prefix length is 64 + the destination CIDR length;
 * a shorter CIDR is a wildcard over addresses. Port SLUICE_PORT_ANY entries
 * are looked up second, so a rule naming the port beats one for any port.
 */
struct sluice_policy_key4 {
	__u32 prefixlen;
	__u32 identity;
	__u8 slot;
	__u8 proto;			/* IPPROTO_TCP / IPPROTO_UDP */
	__u16 port;			/* network order, 0 = any */
	__u32 addr;			/* network order */
};

struct sluice_policy_key6 {
	__u32 prefixlen;
	__u32 identity;
	__u8 slot;
	__u8 proto;
	__u16 port;
	__u32 addr[4];
};

#define SLUICE_POLICY_FIXED_BITS 64

struct sluice_policy_value {
	__u32 action;			/* enum sluice_action */
	__u32 service;			/* service id, see names */
	__u32 rule;			/* rule id (1-based index in the file) */
	__u32 flags;			/* enum sluice_policy_flags; was padding
					 * (0), so the layout is ABI 1's */
};

/* Original destination of a redirected socket. */
struct sluice_orig_dst {
	__u32 family;			/* AF_INET / AF_INET6 */
	__u32 addr[4];			/* network order; v4 in addr[0] */
	__u16 port;			/* network order */
	__u16 pad0;
	__u32 identity;
	__u32 service;
	__u32 rule;
	__u32 generation;
	__u32 pad1;
	__u64 cookie;			/* app socket cookie */
};

/* orig_dst: app socket cookie (__u64) -> struct sluice_orig_dst. An
 * IPv4-mapped destination is recorded as AF_INET. */

/* redirects: app socket's local address -> struct sluice_orig_dst; the key
 * is what the agent's accept() sees as the peer, so a dual-stack socket
 * redirected to the mapped IPv4 listener has an AF_INET key. */
struct sluice_tuple_key {
	__u32 addr[4];			/* network order; v4 in addr[0] */
	__u16 port;			/* network order */
	__u16 family;
};

/* flows: app socket cookie (__u64) -> struct sluice_flow. */
struct sluice_flow {
	struct sluice_orig_dst dst;
	__u32 saddr[4];			/* app socket local address */
	__u16 sport;			/* network order */
	__u16 state;			/* enum sluice_flow_state */
	__u32 verdict;			/* enum sluice_action */
	__u64 start_ns;			/* app connect() */
	__u64 established_ns;		/* upstream established */
	__u64 upstream_syn_ns;
	__u32 connect_us;		/* upstream SYN -> established */
	__u32 srtt_us;			/* upstream smoothed RTT */
	__u64 bytes_sent;		/* app -> destination (acked) */
	__u64 bytes_received;		/* destination -> app */
	__u64 last_ns;
};

/* flow_links: agent's upstream socket cookie (__u64) -> struct sluice_link. */
struct sluice_link {
	__u64 app_cookie;
	__u32 identity;
	__u32 service;
};

/*
 * violations: PERCPU_HASH, struct sluice_violation_key -> sluice_counter.
 * Never deleted, so a restart keeps them.
 *
 * connect4/6 and sendmsg4/6 count one per refused (or bypassing, or
 * would-deny) connect() or datagram: identity is the caller, service the destination's, port 0.
 * inbound counts SLUICE_REASON_NOT_VIA_MESH once per connection attempt
 * (retransmitted SYNs are not counted again, see refused_syns): the client
 * is outside the mesh and has no identity, so identity is the protected
 * workload the SYN was aimed at, service SLUICE_SERVICE_NONE and port the
 * port it was aimed at. The client's address is left out on purpose: keys
 * must stay bounded whatever a scanner sends.
 */
struct sluice_violation_key {
	__u32 identity;
	__u32 service;
	__u32 reason;			/* enum sluice_reason */
	__u16 port;			/* network order; 0 unless inbound */
	__u16 pad0;
};

struct sluice_counter {
	__u64 count;
	__u64 last_ns;
};

/* violation_dst: HASH, struct sluice_violation_key -> the destination of
 * the newest violation under that key (for inbound, the protected
 * workload's address the SYN was aimed at), so that a row with no service
 * still says where the caller went. Bounded as violations is. */
struct sluice_violation_dst {
	__u32 family;			/* AF_INET / AF_INET6 */
	__u32 addr[4];			/* network order; v4 in addr[0] */
	__u16 port;			/* network order */
	__u16 pad0;
	__u64 last_ns;
};

/*
 * refusals: RINGBUF of struct sluice_refusal, one per refused (or
 * bypassing, or would-deny) connect(), datagram or inbound connection
 * attempt, read by the
 * agent, which writes the audit lines. For inbound the caller is outside the
 * mesh: pid 0, cgroup_id the protected workload's, peer the client.
 */
struct sluice_refusal {
	__u64 time_ns;			/* bpf_ktime_get_ns() */
	__u64 cgroup_id;
	__u32 pid;			/* thread group id */
	__u32 identity;
	__u32 service;
	__u32 rule;
	__u32 reason;			/* enum sluice_reason */
	__u32 generation;
	__u32 family;			/* of addr and peer: AF_INET / AF_INET6 */
	__u32 addr[4];			/* destination, network order, v4 in [0] */
	__u32 peer[4];			/* inbound: the client's address */
	__u16 port;			/* network order */
	__u16 peer_port;		/* network order */
	__u8 proto;			/* IPPROTO_TCP / IPPROTO_UDP */
	__u8 hook;			/* enum sluice_hook */
	__u16 pad0;
	char comm[SLUICE_COMM_LEN];
};

/* refused_syns: LRU_HASH, struct sluice_syn_key -> __u32, the sequence
 * number of the last SYN inbound refused on that 4-tuple. A retransmitted
 * SYN carries the same number, so it is dropped without being counted
 * again; a new connect() from the same port has a new one. Under a SYN
 * flood old entries are evicted, and a retransmit of an evicted attempt
 * counts once more. */
struct sluice_syn_key {
	__u32 saddr[4];			/* the client; network order, v4 in [0] */
	__u32 daddr[4];			/* the protected workload's address */
	__u16 sport;			/* network order */
	__u16 dport;			/* network order */
	__u16 family;			/* AF_INET / AF_INET6 */
	__u16 pad0;
};

/* svc_stats: HASH, {identity, service} -> struct sluice_svc_stats, added
 * to atomically. Latency is the upstream connect time,
 * log2 buckets of microseconds: bucket i counts [2^i, 2^(i+1)) us,
 * bucket 0 also counts 0 us. */
struct sluice_svc_key {
	__u32 identity;
	__u32 service;
};

struct sluice_svc_stats {
	__u64 flows;
	__u64 closed;
	__u64 bytes_sent;
	__u64 bytes_received;
	__u64 connect_us_sum;
	__u64 lat_buckets[SLUICE_LAT_BUCKETS];
};

/* svc_rtt: HASH, struct sluice_svc_key -> struct sluice_svc_rtt, the
 * upstream smoothed RTT of each flow when it closes, log2 buckets of
 * microseconds as lat_buckets. A map of its own, beside svc_stats, so
 * that pins of ABI 1 are reused as they are. */
struct sluice_svc_rtt {
	__u64 samples;
	__u64 rtt_us_sum;
	__u64 rtt_buckets[SLUICE_LAT_BUCKETS];
};

/* names: {kind, id} -> name, so that tables show names while the agent is
 * down. Ids are stable: the agent reuses the id already pinned for a name. */
struct sluice_name_key {
	__u32 kind;			/* enum sluice_name_kind */
	__u32 id;
};

struct sluice_name {
	char name[SLUICE_NAME_LEN];
	__u32 extra;			/* identity: flags; service: port count */
	__u32 pad0;
};

/* Pinned link names under the pin directory. */
#define SLUICE_LINK_CONNECT4 "link_connect4"
#define SLUICE_LINK_CONNECT6 "link_connect6"
#define SLUICE_LINK_SENDMSG4 "link_sendmsg4"
#define SLUICE_LINK_SENDMSG6 "link_sendmsg6"
#define SLUICE_LINK_SOCKOPS "link_sockops"
#define SLUICE_LINK_INBOUND "link_inbound"

/* Whether a map is full: a plain hash then refuses inserts; an LRU hash
 * evicts its oldest entries instead, and starts to before entries reach
 * max_entries, since each CPU keeps free nodes of its own: within 1/32 of
 * max_entries it counts as full. The agent's log and sluicectl status use
 * the same test. */
static inline bool sluice_map_full(bool lru, __u32 entries, __u32 max_entries)
{
	return entries >= max_entries - (lru ? max_entries / 32 : 0);
}

#endif
