/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Addresses as the config, the policy, the datapath and the tunnel speak
 * them: ports, IP:PORT sockets, CIDRs, and IPv4-mapped IPv6 addresses,
 * which every decision treats as the IPv4 address they stand for.
 */
#ifndef SLUICE_ADDR_H
#define SLUICE_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <sluice/abi.h>

struct cidr {
	int family;			/* AF_INET / AF_INET6 */
	uint32_t addr[4];		/* network order; v4 in addr[0] */
	int prefixlen;
};

/* Parses "1.2.3.4:80" / "[::1]:80"; -EINVAL on anything else. */
int parse_sockaddr(const char *s, struct sockaddr_storage *out);
/* The inverse: "1.2.3.4:80" / "[::1]:80"; len >= SOCKADDR_STR_LEN. */
#define SOCKADDR_STR_LEN (INET6_ADDRSTRLEN + 8)
char *format_sockaddr(const struct sockaddr_storage *ss, char *buf, size_t len);
/* Parses "10.0.0.0/8", "fd00::/8", or a host address (/32, /128); on
 * -EINVAL why says what is wrong. Host bits must be zero. An IPv4-mapped
 * network (::ffff:10.0.0.0/104) comes back as the IPv4 one (10.0.0.0/8). */
int parse_cidr(const char *s, struct cidr *c, char *why, size_t why_len);
/* Whether an IPv6 address (network order) is IPv4-mapped, ::ffff:a.b.c.d. */
bool addr_v4mapped(const uint32_t *a);
/* Rewrites an IPv4-mapped AF_INET6 address as the AF_INET one it stands
 * for; anything else is left alone. */
void sockaddr_unmap(struct sockaddr_storage *ss);
/* Whether addr (network order, v4 in addr[0]) of family is inside c; an
 * IPv4-mapped IPv6 addr is tested as the IPv4 address it stands for. */
bool cidr_contains(const struct cidr *c, int family, const uint32_t *addr);
/* Parses a decimal port, 0-65535; -EINVAL otherwise. */
int parse_port(const char *s, uint16_t *out);
/* The original destination BPF recorded, as a socket address. */
void orig_dst_sockaddr(const struct sluice_orig_dst *d, struct sockaddr_storage *ss);
/* The other way: family, address and port of ss; the rest zeroed. */
void sockaddr_orig_dst(const struct sockaddr_storage *ss, struct sluice_orig_dst *d);
/* The address words of an AF_INET or AF_INET6 socket address (network
 * order, v4 in [0]) and its port (host order). */
const uint32_t *sockaddr_words(const struct sockaddr_storage *ss);
uint16_t sockaddr_port(const struct sockaddr_storage *ss);

#endif
