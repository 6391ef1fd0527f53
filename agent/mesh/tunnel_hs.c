// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Tunnel handshakes counted by peer, result and session, and their
 * duration, for /metrics (tunnel.h: struct tunnel_hs_peer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrcount.h"
#include "tunnel_int.h"

static struct tunnel_hs_peer *hs_peer(struct tunnel *t, const char *name)
{
	struct tunnel_hs_peer *n;

	for (int i = 0; i < t->nr_hs; i++) {
		if (!strcmp(t->hs[i].peer, name))
			return &t->hs[i];
	}
	if (t->nr_hs == t->cap_hs) {
		int cap = t->cap_hs ? 2 * t->cap_hs : 8;

		n = realloc(t->hs, cap * sizeof(*n));
		if (!n)
			return NULL;
		t->hs = n;
		t->cap_hs = cap;
	}
	n = &t->hs[t->nr_hs++];
	memset(n, 0, sizeof(*n));
	snprintf(n->peer, sizeof(n->peer), "%s", name);
	return n;
}

/* The configured peer a completed inbound handshake's certificate names;
 * NULL when it names no configured node. */
static const char *cert_peer(const struct tunnel *t, SSL *ssl)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	char id[PKI_ID_MAX], prefix[CONFIG_NAME_MAX + 16];
	const struct peer_cfg *p;
	size_t len;

	if (!cert || pki_spiffe_id(cert, id, sizeof(id)))
		return NULL;
	len = snprintf(prefix, sizeof(prefix), "spiffe://%s/node/", t->cfg->trust_domain);
	if (strncmp(id, prefix, len))
		return NULL;
	p = config_peer_by_node(t->cfg, id + len);
	return p ? p->node : NULL;
}

static const char *addr_peer(const struct tunnel *t, const struct sockaddr_storage *from)
{
	for (int i = 0; i < t->cfg->nr_peers; i++) {
		if (addr_same_host(&t->cfg->peers[i].tunnel, from))
			return t->cfg->peers[i].node;
	}
	return NULL;
}

static unsigned int log2_bucket(uint64_t us)
{
	unsigned int b = us ? 63 - __builtin_clzll(us) : 0;

	return b < SLUICE_LAT_BUCKETS ? b : SLUICE_LAT_BUCKETS - 1;
}

void t_handshake_done(void *ctx, void *flow_ctx, SSL *ssl, const struct sockaddr_storage *peer,
		      bool inbound, enum proxy_hs_result result, uint64_t duration_ns)
{
	struct tunnel *t = ctx;
	const struct tflow *f = flow_ctx;
	const char *name = NULL;
	struct tunnel_hs_peer *hp;
	uint64_t us = duration_ns / 1000;
	int resumed;

	if (!inbound && f && f->peer)
		name = f->peer->node;
	else if (inbound && result == PROXY_HS_OK)
		name = cert_peer(t, ssl);
	else if (inbound)
		name = addr_peer(t, peer);
	hp = hs_peer(t, name ?: TUNNEL_HS_UNKNOWN);
	if (!hp)
		return;
	if (result != PROXY_HS_OK) {
		hp->ended[inbound][result]++;
		return;
	}
	resumed = SSL_session_reused(ssl) ? 1 : 0;
	hp->buckets[inbound][resumed][log2_bucket(us)]++;
	hp->sum_us[inbound][resumed] += us;
}
