// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

int parse_port(const char *s, uint16_t *out)
{
	unsigned int v = 0;
	const char *p;

	for (p = s; *p >= '0' && *p <= '9' && p - s < 5; p++)
		v = v * 10 + (*p - '0');
	if (p == s || *p || v > 65535)
		return -EINVAL;
	*out = v;
	return 0;
}

int parse_sockaddr(const char *s, struct sockaddr_storage *out)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
	struct sockaddr_in *sin = (struct sockaddr_in *)out;
	char host[INET6_ADDRSTRLEN];
	const char *end, *port;
	bool v6 = s[0] == '[';
	size_t len;
	uint16_t p;

	if (v6) {
		s++;
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		port = end + 2;
	} else {
		/* An unbracketed IPv6 address has more than one colon. */
		end = strchr(s, ':');
		if (!end || strchr(end + 1, ':'))
			return -EINVAL;
		port = end + 1;
	}
	len = end - s;
	if (len >= sizeof(host) || parse_port(port, &p))
		return -EINVAL;
	memcpy(host, s, len);
	host[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (v6) {
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(p);
	} else {
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -EINVAL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(p);
	}
	return 0;
}

static void mask_cidr(uint32_t *addr, int words, int prefixlen)
{
	int bits;

	for (int i = 0; i < words; i++) {
		bits = prefixlen - 32 * i;
		if (bits >= 32)
			continue;
		addr[i] &= bits <= 0 ? 0 : htonl(~0u << (32 - bits));
	}
}

int parse_cidr(const char *s, struct cidr *c, char *why, size_t why_len)
{
	char host[INET6_ADDRSTRLEN], fixed[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	uint32_t masked[4];
	int max, words;
	uint16_t plen;

	memset(c, 0, sizeof(*c));
	snprintf(why, why_len, "expected an IPv4 or IPv6 address, optionally with /PREFIX");
	if (len >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
		words = 1;
	} else if (inet_pton(AF_INET6, host, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
		words = 4;
	} else {
		return -EINVAL;
	}
	c->prefixlen = max;
	if (slash) {
		/* Digits only, like a port; the range is checked here. */
		if (parse_port(slash + 1, &plen) || plen > max) {
			snprintf(why, why_len, "prefix length must be 0-%d", max);
			return -EINVAL;
		}
		c->prefixlen = plen;
	}
	memcpy(masked, c->addr, sizeof(masked));
	mask_cidr(masked, words, c->prefixlen);
	if (memcmp(masked, c->addr, sizeof(masked))) {
		inet_ntop(c->family, masked, fixed, sizeof(fixed));
		snprintf(why, why_len, "host bits must be zero (did you mean %s/%d?)", fixed,
			 c->prefixlen);
		return -EINVAL;
	}
	/* ::ffff:a.b.c.d/N is the IPv4 network a.b.c.d/(N-96): decisions see
	 * mapped destinations as IPv4 ones, so the rule must too. */
	if (c->family == AF_INET6 && c->prefixlen >= 96 && addr_v4mapped(c->addr)) {
		c->family = AF_INET;
		c->addr[0] = c->addr[3];
		c->addr[1] = c->addr[2] = c->addr[3] = 0;
		c->prefixlen -= 96;
	}
	return 0;
}

bool addr_v4mapped(const uint32_t *a)
{
	return !a[0] && !a[1] && a[2] == htonl(0xffff);
}

void sockaddr_unmap(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 s6 = *(struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	if (ss->ss_family != AF_INET6 || !addr_v4mapped(s6.sin6_addr.s6_addr32))
		return;
	memset(ss, 0, sizeof(*ss));
	s4->sin_family = AF_INET;
	s4->sin_port = s6.sin6_port;
	s4->sin_addr.s_addr = s6.sin6_addr.s6_addr32[3];
}

char *format_sockaddr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
	}
	return buf;
}

bool cidr_contains(const struct cidr *c, int family, const uint32_t *addr)
{
	int bits = c->prefixlen;

	if (family == AF_INET6 && addr_v4mapped(addr)) {
		family = AF_INET;
		addr += 3;
	}
	if (c->family != family)
		return false;
	for (int i = 0; bits > 0; i++, bits -= 32) {
		uint32_t mask = bits >= 32 ? ~0u : htonl(~0u << (32 - bits));

		if ((addr[i] & mask) != c->addr[i])
			return false;
	}
	return true;
}

void orig_dst_sockaddr(const struct sluice_orig_dst *d, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = d->family;
	if (d->family == AF_INET6) {
		memcpy(&((struct sockaddr_in6 *)ss)->sin6_addr, d->addr, 16);
		((struct sockaddr_in6 *)ss)->sin6_port = d->port;
	} else {
		((struct sockaddr_in *)ss)->sin_addr.s_addr = d->addr[0];
		((struct sockaddr_in *)ss)->sin_port = d->port;
	}
}

void sockaddr_orig_dst(const struct sockaddr_storage *ss, struct sluice_orig_dst *d)
{
	memset(d, 0, sizeof(*d));
	d->family = ss->ss_family;
	d->port = htons(sockaddr_port(ss));
	memcpy(d->addr, sockaddr_words(ss), ss->ss_family == AF_INET6 ? 16 : 4);
}

const uint32_t *sockaddr_words(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr32;
	return &((const struct sockaddr_in *)ss)->sin_addr.s_addr;
}

uint16_t sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}
