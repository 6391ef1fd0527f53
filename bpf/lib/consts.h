/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Numbers the programs need that vmlinux.h does not define (UAPI macros). */
#ifndef SLUICE_BPF_CONSTS_H
#define SLUICE_BPF_CONSTS_H

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
/* A full preallocated hash refuses a new key with -E2BIG. */
#define E2BIG 7

/* connect4/6 return codes: 0 makes connect() fail with EPERM. */
#define SYSCALL_DENY 0
#define SYSCALL_PASS 1
/* cgroup_skb return codes. */
#define SKB_DROP 0
#define SKB_PASS 1

#endif
