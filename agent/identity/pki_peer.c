// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The peer certificates a node accepted, and what the tunnel needs of each. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>

#include "b64url.h"
#include "jwks.h"
#include "pki.h"
#include "pki_int.h"

static struct pki_peer *verified_find(struct pki_creds *c, const unsigned char *md)
{
	for (int i = 0; i < c->nr_verified; i++) {
		if (!memcmp(c->verified[i].md, md, sizeof(c->verified[i].md)))
			return &c->verified[i];
	}
	return NULL;
}

static bool verified_fresh(const struct pki_peer *v, time_t now)
{
	/* A clock set back could make the certificate not yet valid. */
	return now >= v->from && now < v->until;
}

/* A free slot, else the one whose acceptance ends first, emptied. */
static struct pki_peer *verified_slot(struct pki_creds *c)
{
	struct pki_peer *v;

	if (c->nr_verified < PKI_VERIFIED_MAX)
		return &c->verified[c->nr_verified++];
	v = &c->verified[0];
	for (int i = 1; i < c->nr_verified; i++) {
		if (c->verified[i].until < v->until)
			v = &c->verified[i];
	}
	jwks_free(v->keys);
	memset(v, 0, sizeof(*v));
	return v;
}

/* Remembers peer, accepted now as id, in v (an entry for the same DER
 * whose acceptance lapsed: its key set stays) or in a slot of its own.
 * NULL when the certificate's notAfter cannot be read. */
static struct pki_peer *verified_set(struct pki_creds *c, struct pki_peer *v, X509 *peer,
				     const unsigned char *md, const char *id, time_t now)
{
	time_t not_after;

	if (pki_asn1_time(X509_get0_notAfter(peer), &not_after))
		return NULL;
	if (!v) {
		v = verified_slot(c);
		memcpy(v->md, md, sizeof(v->md));
		b64url_encode(md, sizeof(v->md), v->thumbprint);
	}
	snprintf(v->spiffe_id, sizeof(v->spiffe_id), "%s", id);
	v->from = now;
	v->until = now + PKI_VERIFIED_TTL < not_after ? now + PKI_VERIFIED_TTL : not_after;
	return v;
}

int pki_verify_peer(struct pki_creds *c, X509 *peer, STACK_OF(X509) *chain,
		    struct pki_peer **out, struct errmsg *err)
{
	struct node_check nc = { .store = c->store, .ca_path = c->path[PKI_FILE_CA],
				 .cert = peer, .chain = chain, .name = "peer certificate",
				 .hint = "", .trust_domain = c->trust_domain };
	unsigned char md[SHA256_DIGEST_LENGTH];
	char id[PKI_ID_MAX];
	struct pki_peer *v;
	time_t now = time(NULL);
	int ret;

	if (!peer)
		return errmsg_set(err, -EKEYREJECTED, "the peer sent no certificate");
	if (!X509_digest(peer, EVP_sha256(), md, NULL))
		return ossl_err(err, -ENOMEM, "cannot hash the peer certificate");
	v = verified_find(c, md);
	if (v && verified_fresh(v, now)) {
		*out = v;
		return 0;
	}
	ret = check_node(&nc, id, sizeof(id), err);
	if (ret)
		return ret;
	v = verified_set(c, v, peer, md, id, now);
	if (!v)
		return errmsg_set(err, -EINVAL, "peer certificate: unreadable notAfter");
	*out = v;
	return 0;
}

int pki_peer_keys(struct pki_peer *peer, X509 *cert, struct jwks **out, struct errmsg *err)
{
	int ret;

	if (!peer->keys) {
		ret = jwks_from_cert(cert, peer->thumbprint, &peer->keys, err);
		if (ret)
			return ret;
	}
	*out = peer->keys;
	return 0;
}
