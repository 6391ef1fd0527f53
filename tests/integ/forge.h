/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Workload tokens for attacks on the tunnel. FORGE_VALID is a token exactly
 * as a node's agent mints it (agent/mesh/tunnel_token.c: jwt_workload_claims() and
 * jwt_mint_es256() with the node key, kid and cnf the certificate's
 * thumbprint); every other kind is that token bent one way, and a receiving
 * agent must refuse it. A token minted with another node's credentials, or
 * presented after its exp, is FORGE_VALID with other creds or a short
 * lifetime.
 *
 * Tokens are bearer secrets: callers never print them.
 */
#ifndef SLUICE_INTEG_FORGE_H
#define SLUICE_INTEG_FORGE_H

#include <stdint.h>

struct pki_creds;

enum forge_kind {
	FORGE_VALID,
	FORGE_ALG_NONE,	     /* "alg": "none" and an empty signature */
	FORGE_HS256_PUBKEY,  /* HS256 keyed with the node's public key, PEM */
	FORGE_WRONG_ISS,     /* iss: the node's ID in another trust domain */
	FORGE_WRONG_AUD,     /* aud: another trust domain */
	FORGE_EXPIRED,	     /* iat an hour ago, exp a minute after it */
	FORGE_NOT_YET_VALID, /* nbf an hour from now */
	FORGE_UNKNOWN_KID,   /* signed by the node key, kid of no certificate */
	FORGE_TAMPERED,	     /* signed, then sub and roles rewritten */
	FORGE_CLAIMS,	     /* req->set's members set over the claims, then signed */
	FORGE_HEADER,	     /* signed under a header with req->set's members set over it */
	FORGE_KID,	     /* signed by the node key, the header's kid req->kid */
	FORGE_KID_RAW,	     /* a header that is JSON but for req->kid's raw bytes */
};

struct forge_req {
	const char *sub; /* the workload's SPIFFE ID */
	char *const *roles;
	int nr_roles;
	int64_t now;		/* 0: time(NULL) */
	int64_t lifetime;	/* seconds */
	const char *tamper_sub; /* FORGE_TAMPERED: sub after signing */
	const char *set;	/* FORGE_CLAIMS, FORGE_HEADER: a JSON object's text */
	const char *kid;	/* FORGE_KID, FORGE_KID_RAW */
};

/* A token of kind for req->sub, from the node whose credentials are c
 * (pki_load()). Returns 0 with *out to free(), or a negative errno. */
int forge_token(const struct pki_creds *c, enum forge_kind kind, const struct forge_req *req,
		char **out);

#endif
