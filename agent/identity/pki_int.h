/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What pki.c (node credentials), pki_peer.c (the peers accepted) and
 * pki_ca.c (the CA) share and nothing outside them sees: the CA reads its
 * own files and checks its certificate as an agent does, so that sluicectl
 * refuses what agents would refuse, with the same messages.
 */
#ifndef SLUICE_PKI_INT_H
#define SLUICE_PKI_INT_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "errmsg.h"
#include "pki.h"

#define SPIFFE_PREFIX "spiffe://"
#define NODE_PATH "/node/"

/* pki.c */
/* What a node certificate is checked against, and how to name it. */
struct node_check {
	X509_STORE *store;		/* the mesh CA, alone */
	const char *ca_path;
	X509 *cert;
	STACK_OF(X509) *chain;		/* untrusted extras, or NULL */
	const char *name;		/* its file, or "peer certificate" */
	const char *hint;		/* what to do, or "" */
	const char *trust_domain;
	const char *node;		/* NULL: any node */
};

/* Fills id (len bytes) with the certificate's node SPIFFE ID. */
int check_node(const struct node_check *nc, char *id, size_t len, struct errmsg *err);
int ossl_err(struct errmsg *err, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* stamp may be NULL. */
int read_cert(const char *path, struct pki_stamp *stamp, X509 **out, struct errmsg *err);
int read_key(const char *path, struct pki_stamp *stamp, EVP_PKEY **out, struct errmsg *err);
int check_time(X509 *cert, const char *name, const char *hint, struct errmsg *err);
int check_pair(X509 *cert, const char *cert_path, EVP_PKEY *key, const char *key_path,
	       const char *hint, struct errmsg *err);

/* pki_ca.c */
/* Fills td (len bytes) with the trust domain of ca, read from path. */
int check_ca(X509 *ca, const char *path, char *td, size_t len, struct errmsg *err);

#endif
