/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The real OpenID provider of the identity tests: tests/oidc/idp.mjs
 * (oidc-provider from npm) run by node inside a node's network namespace,
 * on that node's IPv4 address, so that the agents of both nodes reach it.
 * It speaks https only, with a self-signed certificate made for that
 * address (an agent refuses http off loopback); the certificate is the
 * agents' identity.oidc.ca_file. It asks every client for a certificate,
 * and binds the tokens of `bound` clients to it (RFC 8705).
 *
 *   files: <tmp>/idp/{clients.json,idp.crt,idp.key,idp.log}
 *
 * Paths are relative to the repository root, where integ_progs runs.
 * Teardown kills an IdP the test did not stop.
 */
#ifndef SLUICE_INTEG_IDP_H
#define SLUICE_INTEG_IDP_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "errmsg.h"
#include "http.h"
#include "idp_launch.h"

struct sl_env;

#define IDP_DIR "idp"
#define IDP_CA IDP_DIR "/idp.crt"

struct idp_client {
	const char *client_id;
	const char *secret; /* client_secret_basic */
	const char *groups; /* the tokens' "groups" claim, [groups]; NULL: none */
	int token_ttl;	    /* seconds; 0: the IdP's default (300) */
	bool bound;	    /* tls_client_certificate_bound_access_tokens */
};

struct idp {
	pid_t pid;
	char ns[128];
	char url[IDP_URL_MAX]; /* the issuer, https://IP:PORT */
	char ca[PATH_MAX]; /* its certificate */
	char log[PATH_MAX];
};

/* 0 when node and the IdP's modules are installed, running
 * tests/oidc/setup.sh when only the modules are missing. -ENOENT when node
 * is not installed (the caller skips), another negative errno when the
 * modules cannot be installed; why says what. */
int idp_check(char *why, size_t len);

/* Starts the IdP in node 'a' or 'b' on a free port, serving the nr
 * clients, and waits until it listens. */
int idp_start(struct sl_env *env, char node, const struct idp_client *clients, int nr,
	      struct idp *idp);
/* SIGTERM and wait; the port then refuses connections. */
void idp_stop(struct sl_env *env, struct idp *idp);

/* path on the IdP, from inside its namespace: GET, or POST form when form
 * is not NULL. opts->ca_file NULL means the IdP's own certificate. */
int idp_request(const struct idp *idp, const char *path, const char *form,
		const struct http_opts *opts, struct http_response *resp, struct errmsg *err);

/* The RFC 8707 resource of the IdP's opaque access tokens, which only
 * introspection (POST /token/introspection) reads. */
#define IDP_OPAQUE_RESOURCE "urn:sluice:opaque"

/* An access token for client_id (client credentials grant, the secret by
 * client_secret_basic, no client certificate) for resource (NULL: the
 * IdP's default, JWT tokens): 0 with *out to free() (a bearer secret:
 * never print it), or a negative errno with why in err. */
int idp_token(const struct idp *idp, const char *client_id, const char *secret,
	      const char *resource, char **out, struct errmsg *err);
/* Revokes token at the IdP (RFC 7009, as its own client): introspection
 * then says it is inactive. */
int idp_revoke(const struct idp *idp, const char *client_id, const char *secret, const char *token,
	       struct errmsg *err);

#endif
