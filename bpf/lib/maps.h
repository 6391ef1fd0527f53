/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map definitions. Every map is pinned by name under the agent's pin
 * directory so that counters and flows outlive an agent restart and
 * sluicectl can read them while the agent is down. */
#ifndef SLUICE_BPF_MAPS_H
#define SLUICE_BPF_MAPS_H

#include <sluice/abi.h>

/* Writer: agent (start, policy switch, heartbeat). Readers: connect4/6,
 * inbound, sluicectl. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sluice_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sluice_cfg SEC(".maps");

/* Writer: agent (registration from config). Readers: connect4/6,
 * inbound, sluicectl. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_WORKLOADS);
	__type(key, __u64);
	__type(value, struct sluice_workload);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} workloads SEC(".maps");

/* Writer: agent's policy compiler, inactive slot only. Readers:
 * connect4/6, sluicectl. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_MAX_POLICY);
	__type(key, struct sluice_policy_key4);
	__type(value, struct sluice_policy_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SLUICE_MAX_POLICY);
	__type(key, struct sluice_policy_key6);
	__type(value, struct sluice_policy_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} policy6 SEC(".maps");

/* Writer: connect4/6 on redirect. Reader: sockops (deletes on close). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_MAX_FLOWS);
	__type(key, __u64);
	__type(value, struct sluice_orig_dst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} orig_dst SEC(".maps");

/* Writer: sockops when a redirected socket sends its SYN (deletes on
 * close). Reader: agent after accept(), keyed by the accepted peer. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_MAX_FLOWS);
	__type(key, struct sluice_tuple_key);
	__type(value, struct sluice_orig_dst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} redirects SEC(".maps");

/* Writer: sockops (app and upstream sockets; deleted when the app socket
 * closes). Readers: sluicectl, agent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_MAX_FLOWS);
	__type(key, __u64);
	__type(value, struct sluice_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows SEC(".maps");

/* Writer: agent, before it connects upstream. Reader: sockops (deletes
 * when the upstream socket closes). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SLUICE_MAX_FLOWS);
	__type(key, __u64);
	__type(value, struct sluice_link);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flow_links SEC(".maps");

/* Writers: connect4/6 on deny or bypass, inbound on a refused SYN.
 * Readers: sluicectl, /metrics. */
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

/* Writer: sockops (upstream established and closed). Readers: sluicectl,
 * /metrics. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_STATS);
	__type(key, struct sluice_svc_key);
	__type(value, struct sluice_svc_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} svc_stats SEC(".maps");

/* Writer: agent. Reader: sluicectl. Never read by BPF programs; defined
 * here so that it is created and pinned with the others. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLUICE_MAX_NAMES);
	__type(key, struct sluice_name_key);
	__type(value, struct sluice_name);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} names SEC(".maps");

#endif
