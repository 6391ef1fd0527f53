// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "addrcount.h"

struct host {
	uint32_t addr[4];		/* v4 in addr[0] */
	uint32_t family;
};

struct slot {
	struct host host;
	unsigned int count;		/* 0: free */
};

struct addr_count {
	struct slot *slots;
	unsigned int mask;		/* slots - 1, a power of two minus one */
	unsigned int used, max;
	uint64_t seed;
};

static void host_of(const struct sockaddr_storage *ss, struct host *h)
{
	memset(h, 0, sizeof(*h));
	h->family = ss->ss_family;
	if (ss->ss_family == AF_INET6)
		memcpy(h->addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, sizeof(h->addr));
	else
		h->addr[0] = ((const struct sockaddr_in *)ss)->sin_addr.s_addr;
}

bool addr_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	struct host ha, hb;

	host_of(a, &ha);
	host_of(b, &hb);
	return !memcmp(&ha, &hb, sizeof(ha));
}

/* splitmix64's finalizer over the words, keyed by the seed. */
static unsigned int host_hash(const struct addr_count *c, const struct host *h)
{
	uint64_t x = c->seed ^ h->family;

	for (int i = 0; i < 4; i++) {
		x ^= h->addr[i];
		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
		x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
		x ^= x >> 31;
	}
	return x;
}

/* The slot holding h, or the free one where it would go. */
static struct slot *find(const struct addr_count *c, const struct host *h)
{
	unsigned int i = host_hash(c, h) & c->mask;

	while (c->slots[i].count && memcmp(&c->slots[i].host, h, sizeof(*h)))
		i = (i + 1) & c->mask;
	return &c->slots[i];
}

int addr_count_new(unsigned int max, struct addr_count **out)
{
	struct addr_count *c;
	unsigned int n = 2;

	/* At most half full: probes stay short. */
	while (n < 2 * max)
		n *= 2;
	c = calloc(1, sizeof(*c));
	if (c)
		c->slots = calloc(n, sizeof(*c->slots));
	if (!c || !c->slots) {
		free(c);
		return -ENOMEM;
	}
	c->mask = n - 1;
	c->max = max;
	if (getrandom(&c->seed, sizeof(c->seed), 0) != sizeof(c->seed))
		c->seed = (uintptr_t)c ^ 0x9e3779b97f4a7c15ULL;
	*out = c;
	return 0;
}

void addr_count_free(struct addr_count *c)
{
	if (!c)
		return;
	free(c->slots);
	free(c);
}

unsigned int addr_count_get(const struct addr_count *c, const struct sockaddr_storage *ss)
{
	struct host h;

	host_of(ss, &h);
	return find(c, &h)->count;
}

int addr_count_inc(struct addr_count *c, const struct sockaddr_storage *ss)
{
	struct slot *s;
	struct host h;

	host_of(ss, &h);
	s = find(c, &h);
	if (!s->count) {
		if (c->used == c->max)
			return -ENOSPC;
		c->used++;
		s->host = h;
	}
	s->count++;
	return 0;
}

/* Moves later members of the probe run back over the freed slot, so that
 * find() never stops short at a hole (no tombstones to pile up). */
static void slot_free(struct addr_count *c, unsigned int hole)
{
	unsigned int i = hole, home;

	c->slots[hole].count = 0;
	for (;;) {
		i = (i + 1) & c->mask;
		if (!c->slots[i].count)
			return;
		home = host_hash(c, &c->slots[i].host) & c->mask;
		/* Stays if its home lies cyclically in (hole, i]. */
		if (hole <= i ? (hole < home && home <= i) : (hole < home || home <= i))
			continue;
		c->slots[hole] = c->slots[i];
		c->slots[i].count = 0;
		hole = i;
	}
}

void addr_count_dec(struct addr_count *c, const struct sockaddr_storage *ss)
{
	struct slot *s;
	struct host h;

	host_of(ss, &h);
	s = find(c, &h);
	if (!s->count || --s->count)
		return;
	c->used--;
	slot_free(c, s - c->slots);
}
