// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The edge's verified tokens, by the SHA-256 of the token (never the token
 * itself), so the signature check (or the IdP's introspection) is paid
 * once per token and ttl rather than per request.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "edge_int.h"

void edge_cache_init(struct edge_cache *c, unsigned int max, unsigned int ttl_s)
{
	memset(c, 0, sizeof(*c));
	c->max = max;
	c->ttl_s = ttl_s;
}

static unsigned int bucket_of(const struct edge_cache *c, const uint8_t *key)
{
	uint32_t h;

	/* The key is a cryptographic hash: any four bytes are uniform. */
	memcpy(&h, key, sizeof(h));
	return h & (c->nr_buckets - 1);
}

const struct edge_caller *edge_cache_get(const struct edge_cache *c, const uint8_t *key,
					 int64_t now)
{
	int i;

	if (!c->slots)
		return NULL;
	for (i = c->buckets[bucket_of(c, key)]; i >= 0; i = c->slots[i].next) {
		if (!memcmp(c->slots[i].key, key, SHA256_DIGEST_LENGTH))
			return now < c->slots[i].expires ? &c->slots[i].c : NULL;
	}
	return NULL;
}

static int alloc_slots(struct edge_cache *c)
{
	unsigned int nb = 1;

	while (nb < c->max)
		nb <<= 1;
	c->slots = calloc(c->max, sizeof(*c->slots));
	c->buckets = malloc(nb * sizeof(*c->buckets));
	if (!c->slots || !c->buckets) {
		free(c->slots);
		free(c->buckets);
		c->slots = NULL;
		c->buckets = NULL;
		return -ENOMEM;
	}
	c->nr_buckets = nb;
	memset(c->buckets, 0xff, nb * sizeof(*c->buckets));
	return 0;
}

static void unlink_slot(struct edge_cache *c, int slot)
{
	int *link = &c->buckets[bucket_of(c, c->slots[slot].key)];

	while (*link != slot)
		link = &c->slots[*link].next;
	*link = c->slots[slot].next;
	free(c->slots[slot].assertion);
	c->slots[slot].assertion = NULL;
	c->slots[slot].used = false;
	c->nr--;
}

static int find_slot(const struct edge_cache *c, const uint8_t *key)
{
	for (int i = c->buckets[bucket_of(c, key)]; i >= 0; i = c->slots[i].next) {
		if (!memcmp(c->slots[i].key, key, SHA256_DIGEST_LENGTH))
			return i;
	}
	return -1;
}

int edge_cache_put(struct edge_cache *c, const uint8_t *key, const struct edge_caller *caller,
		   int64_t now)
{
	struct edge_cached *e;
	int64_t expires = now + c->ttl_s;
	unsigned int b;
	int slot;

	if (!c->max)
		return -ENOSPC;
	if (!c->slots && alloc_slots(c))
		return -ENOMEM;
	/* An expired entry of the same token is replaced, not doubled. */
	slot = find_slot(c, key);
	if (slot >= 0)
		unlink_slot(c, slot);
	slot = c->head;
	if (c->slots[slot].used)
		unlink_slot(c, slot);
	c->head = (c->head + 1) % c->max;
	if (caller->exp && caller->exp < expires)
		expires = caller->exp;
	e = &c->slots[slot];
	memset(e, 0, sizeof(*e));
	memcpy(e->key, key, SHA256_DIGEST_LENGTH);
	e->expires = expires;
	e->c = *caller;
	e->used = true;
	b = bucket_of(c, key);
	e->next = c->buckets[b];
	c->buckets[b] = slot;
	c->nr++;
	return 0;
}

const char *edge_cache_assertion(const struct edge_cache *c, const uint8_t *key, int service,
				 int64_t now)
{
	const struct edge_cached *e;
	int slot;

	if (!c->slots || (slot = find_slot(c, key)) < 0)
		return NULL;
	e = &c->slots[slot];
	if (!e->assertion || e->assertion_service != service || now >= e->reuse_until ||
	    now >= e->expires)
		return NULL;
	return e->assertion;
}

void edge_cache_keep_assertion(struct edge_cache *c, const uint8_t *key, int service,
			       const char *assertion, int64_t reuse_until)
{
	struct edge_cached *e;
	char *copy;
	int slot;

	if (!c->slots || (slot = find_slot(c, key)) < 0)
		return;
	/* Without memory the next request signs again: no harm. */
	copy = strdup(assertion);
	if (!copy)
		return;
	e = &c->slots[slot];
	free(e->assertion);
	e->assertion = copy;
	e->assertion_service = service;
	e->reuse_until = reuse_until;
}

static void free_assertions(struct edge_cache *c)
{
	for (unsigned int i = 0; i < c->max; i++)
		free(c->slots[i].assertion);
}

void edge_cache_clear(struct edge_cache *c)
{
	if (!c->slots)
		return;
	free_assertions(c);
	memset(c->slots, 0, c->max * sizeof(*c->slots));
	memset(c->buckets, 0xff, c->nr_buckets * sizeof(*c->buckets));
	c->head = 0;
	c->nr = 0;
}

void edge_cache_free(struct edge_cache *c)
{
	if (c->slots)
		free_assertions(c);
	free(c->slots);
	free(c->buckets);
	edge_cache_init(c, 0, 0);
}
