/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The mesh CA: making one, and issuing node certificates from it. Only
 * sluicectl's `ca` command (ctl_ca.c) and the tests call these; agents just
 * load what they wrote (pki.h). Errors are as in pki.h: 0 or a negative
 * errno with the message in err, which names the file and says what to do.
 */
#ifndef SLUICE_PKI_CA_H
#define SLUICE_PKI_CA_H

#include <stdbool.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "errmsg.h"
#include "pki.h"

/* Issued certificates start this long before now, for peers whose clock lags. */
#define PKI_CLOCK_SKEW 60

/* What a certificate says about its subject, for pki_make_cert(). */
struct pki_cert_req {
	const char *spiffe_id;		/* the URI SAN */
	const char *cn;
	bool ca;			/* a CA (pathlen 0) or a node certificate */
	time_t not_before;
	time_t not_after;
};

/* A new ECDSA P-256 key. */
int pki_new_key(EVP_PKEY **out, struct errmsg *err);
/*
 * Makes a certificate for key with a random 128-bit serial, signed by
 * issuer_key as issuer, or self-signed by key when issuer is NULL.
 */
int pki_make_cert(const struct pki_cert_req *req, EVP_PKEY *key, X509 *issuer,
		  EVP_PKEY *issuer_key, X509 **out, struct errmsg *err);

/*
 * Creates dir (mode 0700 if missing) with ca.key (0600) and ca.crt, a CA
 * for trust_domain valid for days. Refuses to replace either unless force.
 */
int pki_ca_init(const char *dir, const char *trust_domain, unsigned int days, bool force,
		struct errmsg *err);
/*
 * Issues node a certificate from the CA in dir, of the CA's trust domain,
 * valid from not_before to not_after, with a new key, and writes node.crt,
 * node.key (0600) and a copy of ca.crt into out (created if missing). Each
 * file is written aside and renamed into place.
 */
int pki_issue(const char *dir, const char *node, const char *out, time_t not_before,
	      time_t not_after, struct errmsg *err);

#endif
