/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What edge.c (HTTP), edge_decide.c (the decision) and edge_cache.c (the
 * verified tokens) share and nothing else sees.
 */
#ifndef SLUICE_EDGE_INT_H
#define SLUICE_EDGE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <openssl/sha.h>

#include "edge.h"
#include "spiffe.h"

#define EDGE_ID_MAX 64			/* jti and kid as the audit keeps them */

/* A verified token: what a decision needs of it. roles point into the
 * policy of the generation it was verified under. */
struct edge_caller {
	char sub[EDGE_SUB_MAX];
	enum workload_kind kind;
	const char *roles[EDGE_ROLES_MAX];
	int nr_roles;
	char jti[EDGE_ID_MAX], kid[EDGE_ID_MAX];
	int64_t exp;			/* the token's, 0: none given */
};

struct edge_cached {
	uint8_t key[SHA256_DIGEST_LENGTH];	/* SHA-256 of the token */
	int64_t expires;		/* wall clock, s */
	int next;			/* in its bucket, -1: last */
	bool used;
	struct edge_caller c;
	/* The last caller assertion signed for this token, for one service:
	 * handed out again until reuse_until, so a warm request costs no
	 * signature. */
	char *assertion;
	int assertion_service;
	int64_t reuse_until;
};

/*
 * Bounded: max entries in one array, allocated at the first insert; the
 * oldest entry is overwritten when it is full (a ring), so a flood of
 * distinct valid tokens costs no more memory than max entries.
 */
struct edge_cache {
	unsigned int max, ttl_s;
	struct edge_cached *slots;
	int *buckets;
	unsigned int nr_buckets;	/* a power of two */
	unsigned int head;		/* the next slot written: the oldest */
	unsigned int nr;
};

void edge_cache_init(struct edge_cache *c, unsigned int max, unsigned int ttl_s);
/* The entry for key, or NULL when absent or expired at now. */
const struct edge_caller *edge_cache_get(const struct edge_cache *c, const uint8_t *key,
					 int64_t now);
/* Copies caller in under key until min(now + ttl, caller->exp). 0, or
 * -ENOMEM (the cache then stays empty), or -ENOSPC when off. */
int edge_cache_put(struct edge_cache *c, const uint8_t *key, const struct edge_caller *caller,
		   int64_t now);
/* The assertion kept for key and service, still to be reused at now, or
 * NULL. */
const char *edge_cache_assertion(const struct edge_cache *c, const uint8_t *key, int service,
				 int64_t now);
/* Keeps a copy of assertion for key's entry (if it is there), replacing
 * the one it had. */
void edge_cache_keep_assertion(struct edge_cache *c, const uint8_t *key, int service,
			       const char *assertion, int64_t reuse_until);
void edge_cache_clear(struct edge_cache *c);
void edge_cache_free(struct edge_cache *c);

struct httpd;

struct edge {
	const struct config *cfg;
	struct edge_deps deps;
	const struct policy *pol;
	uint32_t generation;
	uint32_t stale_logged;		/* the last X-Sluice-Generation logged as stale */
	uint64_t intro_failed;		/* introspection failures since the last line */
	uint64_t intro_logged_ns;	/* when that line was written */
	struct edge_cache cache;
	struct edge_stats stats;
	/* edge.c */
	struct httpd *daemons[2];		/* the UNIX socket, edge.listen */
	int nr_daemons;
	char *socket_path;		/* to unlink at free; NULL: none created */
};

#endif
