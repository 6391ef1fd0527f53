/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map definitions. Every map is pinned by name under the agent's pin
 * directory so that counters and flows outlive an agent restart and
 * sluicectl can read them while the agent is down. */
#ifndef SLUICE_BPF_MAPS_H
#define SLUICE_BPF_MAPS_H

#include <sluice/abi.h>

/* Writer: agent (start, policy switch, heartbeat every second). Readers:
 * connect4/6 and sendmsg4/6 on every call, inbound on every packet to a
 * listener, sluicectl. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_cfg SEC(".maps");

/* Writer: agent (registration from config, at start and reload). Readers:
 * connect4/6 and sendmsg4/6 (the caller's cgroup, and a loopback
 * listener's), inbound (the listening socket's), sluicectl. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_WORKLOADS);
	__type(key, __u64);
	__type(value, struct sluice_workload);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} workloads SEC(".maps");

/* policy4: IPv4 destinations, IPv4-mapped ones included. Writer: agent's
 * policy compiler, inactive slot only. Readers: connect4/6, sendmsg4/6,
 * agent (clearing the inactive slot), sluicectl. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_MAX_POLICY);
	__type(key, struct sluice_policy_key4);
	__type(value, struct sluice_policy_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy4 SEC(".maps");

/* policy6: IPv6 destinations that are not IPv4-mapped. Writer and
 * readers as policy4. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_MAX_POLICY);
	__type(key, struct sluice_policy_key6);
	__type(value, struct sluice_policy_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy6 SEC(".maps");

/* Writer: connect4/6 on redirect. Reader: sockops (deletes on close). LRU. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_MAX_FLOWS);
	__type(key, __u64);
	__type(value, struct sluice_orig_dst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} orig_dst SEC(".maps");

/* Writer: sockops when a redirected socket sends its SYN (deletes on
 * close). Reader: agent after accept(), keyed by the accepted peer. LRU. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_MAX_FLOWS);
	__type(key, struct sluice_tuple_key);
	__type(value, struct sluice_orig_dst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} redirects SEC(".maps");

/* Writer: sockops (app and upstream sockets; deleted when the app socket
 * closes). Reader: sluicectl. LRU. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_MAX_FLOWS);
	__type(key, __u64);
	__type(value, struct sluice_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows SEC(".maps");

/* Writer: agent, before it connects upstream. Reader: sockops (deletes
 * when the upstream socket closes). LRU. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_MAX_FLOWS);
	__type(key, __u64);
	__type(value, struct sluice_link);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_links SEC(".maps");

/* Writers: connect4/6 and sendmsg4/6 on deny or bypass, inbound on a
 * refused SYN. Readers: agent (the once-a-second violation log), sluicectl. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, SLUICE_MAX_VIOLATIONS);
	__type(key, struct sluice_violation_key);
	__type(value, struct sluice_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} violations SEC(".maps");

/* Writer and reader: inbound, so that a retransmitted SYN is refused
 * without being counted again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_MAX_REFUSED_SYNS);
	__type(key, struct sluice_syn_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} refused_syns SEC(".maps");

/* Writer: sockops (upstream established and closed). Reader: sluicectl. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_STATS);
	__type(key, struct sluice_svc_key);
	__type(value, struct sluice_svc_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} svc_stats SEC(".maps");

/* Writers: as violations, on the same events. Reader: sluicectl (the
 * destination of a row without a service). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_VIOLATIONS);
	__type(key, struct sluice_violation_key);
	__type(value, struct sluice_violation_dst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} violation_dst SEC(".maps");

/* Writers: connect4/6, sendmsg4/6 and inbound, one event per violation
 * counted. Reader: agent (the audit log). Pinned, so that the refusals made
 * while the agent was down (agent-down, bypass) are audited when it is back,
 * as many as fit. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SLUICE_REFUSALS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} refusals SEC(".maps");

/* Writers: every program, about itself. Readers: agent (/metrics),
 * sluicectl. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLUICE_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_counters SEC(".maps");

/* Writer: sockops (upstream closed). Readers: agent (/metrics), sluicectl. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_STATS);
	__type(key, struct sluice_svc_key);
	__type(value, struct sluice_svc_rtt);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} svc_rtt SEC(".maps");

/* Writer: agent. Readers: agent (reuses pinned ids, names violations in its
 * log), sluicectl. Never read by BPF programs; defined here so that it is
 * created and pinned with the others. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_NAMES);
	__type(key, struct sluice_name_key);
	__type(value, struct sluice_name);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} names SEC(".maps");

#endif
