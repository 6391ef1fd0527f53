/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The OIDC client: per-workload access tokens from the organisation's IdP
 * (client credentials grant) and the IdP's JWKS, both cached.
 *
 * - Discovery: GET ISSUER/.well-known/openid-configuration; its "issuer"
 *   must equal the configured issuer byte for byte. http is allowed only
 *   for loopback issuers (tests); anything else must be https.
 * - Tokens: client_secret_basic (secret read from a file on every request,
 *   so a rotated secret file is picked up) or private_key_jwt (an ES256
 *   client assertion signed with an EC P-256 key from a file, aud = the
 *   issuer, lifetime 60 s). The RFC 8707 `resource` parameter names the
 *   audience. A token is refreshed at 2/3 of its lifetime.
 * - Fail closed: while refreshes fail, the cached token is returned until
 *   its expiry and never after; then oidc_token_get fails with -EKEYEXPIRED
 *   and a reason such as OIDC_REASON_UNREACHABLE_EXPIRED.
 * - RFC 8705: with cert_file/key_file set, that certificate is presented to
 *   the IdP, which can bind tokens to it (cnf.x5t#S256). Call
 *   oidc_refresh_all after the certificate changes on disk.
 * - JWKS: fetched after discovery and every jwks_refresh_s; a verifier that
 *   meets an unknown kid asks for a refetch with oidc_jwks_refetch, which is
 *   honoured at most once per jwks_refetch_min_s. The document is returned
 *   raw (checked only to be an object with a "keys" array).
 * - Opaque tokens: asked about at discovery's introspection_endpoint
 *   (RFC 7662) with a client of their own; see oidc_introspect.
 *
 * Threading: one background thread makes every network call, one at a
 * time, each with a connect and a total timeout. The other functions only
 * read or change the caches under a mutex and never wait for the network,
 * so they are safe to call from the agent's epoll loop and from any thread.
 * oidc_fd() is an eventfd that turns readable whenever a token, the
 * discovery or the JWKS changes state (obtained, refreshed, failed); add it
 * to the epoll set to retry work that waited for a token or a JWKS, and call
 * oidc_fd_clear when it fires.
 *
 * Failures back off per workload (retry_min_ms doubling up to
 * retry_max_ms); a transport failure (IdP unreachable, timeout, HTTP 5xx)
 * backs off every request to the IdP, so an IdP that is down costs one
 * probe per backoff period rather than one per workload. Each change
 * between working and failing is logged once; secrets never are.
 */
#ifndef SLUICE_OIDC_H
#define SLUICE_OIDC_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "errmsg.h"

#define OIDC_URL_MAX 1024

/* Reasons oidc_token_get gives when it returns no token, for the audit
 * log: "<what went wrong>-<no-token|token-expired>". */
#define OIDC_REASON_PENDING "idp-pending-no-token"		/* -EAGAIN */
#define OIDC_REASON_UNREACHABLE "idp-unreachable-no-token"	/* -ENOKEY */
#define OIDC_REASON_REFUSED "idp-refused-no-token"		/* -ENOKEY */
#define OIDC_REASON_BAD_RESPONSE "idp-bad-response-no-token"	/* -ENOKEY */
#define OIDC_REASON_CREDENTIALS "client-credentials-no-token"	/* -ENOKEY */
#define OIDC_REASON_PENDING_EXPIRED "idp-pending-token-expired"	/* -EKEYEXPIRED */
#define OIDC_REASON_UNREACHABLE_EXPIRED "idp-unreachable-token-expired"
#define OIDC_REASON_REFUSED_EXPIRED "idp-refused-token-expired"
#define OIDC_REASON_BAD_RESPONSE_EXPIRED "idp-bad-response-token-expired"
#define OIDC_REASON_CREDENTIALS_EXPIRED "client-credentials-token-expired"

struct oidc;

struct oidc_cfg {
	const char *issuer;		/* e.g. https://idp.acme.example */
	const char *resource;		/* RFC 8707 resource (token audience); NULL: none */
	const char *ca_file;		/* trust anchors for an https IdP; NULL: system */
	const char *cert_file;		/* client certificate for the IdP; NULL: none */
	const char *key_file;
	/* Zero picks the default given after each field. */
	unsigned int connect_timeout_ms;	/* 2000 */
	unsigned int timeout_ms;		/* 5000, the whole request */
	unsigned int jwks_refresh_s;		/* 300 */
	unsigned int jwks_refetch_min_s;	/* 30 */
	unsigned int retry_min_ms;		/* 1000 */
	unsigned int retry_max_ms;		/* 30000 */
};

enum oidc_auth {
	OIDC_AUTH_CLIENT_SECRET_BASIC = 1,
	OIDC_AUTH_PRIVATE_KEY_JWT,
};

struct oidc_client_cfg {
	const char *workload;		/* the cache key, e.g. a SPIFFE ID */
	const char *client_id;
	enum oidc_auth auth;
	const char *secret_file;	/* client_secret_basic; mode 0600 or stricter */
	const char *key_file;		/* private_key_jwt: EC P-256 key, PEM; same */
};

struct oidc_info {
	bool discovered;
	char token_endpoint[OIDC_URL_MAX];
	char jwks_uri[OIDC_URL_MAX];
	char introspection_endpoint[OIDC_URL_MAX];	/* "" when the IdP has none */
	uint64_t jwks_generation;	/* bumps when the JWKS content changes */
	uint64_t jwks_fetches;		/* successful JWKS requests */
	char error[ERRMSG_LEN];		/* last discovery or JWKS failure, "" if none */
};

struct oidc_token_info {
	bool valid;			/* holds a token that has not expired */
	time_t exp;			/* its expiry, wall clock (0: none) */
	uint64_t fetched;		/* tokens obtained */
	uint64_t failed;		/* requests that failed */
	char error[ERRMSG_LEN];		/* last failure since the last success, or "" */
};

/*
 * Validates cfg (copied) and starts the background thread, which runs
 * discovery at once. Errors: -EINVAL (bad issuer, key without certificate),
 * -ENOENT/-EACCES (certificate or CA file), -ENOMEM, with a message.
 */
int oidc_new(const struct oidc_cfg *cfg, struct oidc **out, struct errmsg *err);

/*
 * Registers a workload's client (copied) and schedules its first token.
 * The secret or key file is checked now: a readable regular file closed
 * to group and others, and (key) an EC P-256 private key.
 * Errors: -EEXIST (workload known), -EINVAL, -EPERM (file mode), -errno.
 */
int oidc_add_workload(struct oidc *o, const struct oidc_client_cfg *c, struct errmsg *err);
/* Forgets a workload and its token. -ENOENT if unknown. */
int oidc_remove_workload(struct oidc *o, const char *workload);

/*
 * Copies the workload's current token (NUL-terminated) into buf and its
 * wall-clock expiry into *exp (may be NULL). Never blocks on the network.
 * Errors, each with *reason (may be NULL) set to an OIDC_REASON_* and a
 * message naming the IdP URL and the HTTP status or OAuth error:
 *   -ENOENT       unknown workload
 *   -EAGAIN       no token yet, the first request has not finished
 *   -ENOKEY       no token was ever obtained: the last request failed
 *   -EKEYEXPIRED  the token expired and refreshing it has been failing
 *   -ENOSPC       len is too small (no reason)
 */
int oidc_token_get(struct oidc *o, const char *workload, char *buf, size_t len, time_t *exp,
		   const char **reason, struct errmsg *err);
int oidc_token_info(struct oidc *o, const char *workload, struct oidc_token_info *out);
/* Refreshes every token now, e.g. because the client certificate changed
 * and tokens bound to the old one are useless. Cached tokens stay usable
 * until replaced. */
void oidc_refresh_all(struct oidc *o);

/*
 * A malloc'd copy of the last JWKS document and its generation (may be
 * NULL). -EAGAIN before the first fetch finished, -ENOKEY when it failed
 * (message says why).
 */
int oidc_jwks_get(struct oidc *o, char **json, uint64_t *generation, struct errmsg *err);
/* Asks for a JWKS refetch (a token named a kid the JWKS lacks). 0: a fetch
 * is scheduled or already pending; oidc_fd fires when it finishes.
 * -EBUSY: the last fetch started less than jwks_refetch_min_s ago. */
int oidc_jwks_refetch(struct oidc *o);

/*
 * Opaque tokens (RFC 7662): the client the agent introspects with, its
 * secret read from secret_file (client_secret_basic) on every request.
 * The endpoint is discovery's "introspection_endpoint". -EINVAL, -EPERM
 * (file mode), -errno.
 */
int oidc_set_introspection_client(struct oidc *o, const char *client_id,
				  const char *secret_file, struct errmsg *err);

/*
 * What the IdP says of an opaque token, without waiting on the network:
 *   0            active; *claims is the response (a new reference: sub,
 *                exp, scope, client_id, groups, ...)
 *   -EACCES      the IdP says inactive, or active with an exp in the past;
 *                also an empty token or one over 8192 bytes (not asked)
 *   -EINPROGRESS asked now or earlier and not answered yet: oidc_fd fires
 *                when it is, call again then
 *   -ENOKEY      no answer could be had (no client, no endpoint, HTTP
 *                error, a response that is not a JSON object with a
 *                boolean "active", the IdP unreachable); err says why and
 *                never holds the token. A transport failure answers every
 *                waiting request, and while the IdP backs off new ones
 *                get -ENOKEY at once.
 * An answer is kept (by the token's SHA-256; the token itself only until
 * it was sent) for one call after it arrived or at most 10 s: callers
 * cache what they trust. Requests in flight are bounded (-EBUSY past 256).
 */
int oidc_introspect(struct oidc *o, const char *token, json_t **claims, struct errmsg *err);

void oidc_get_info(struct oidc *o, struct oidc_info *out);

int oidc_fd(const struct oidc *o);
void oidc_fd_clear(struct oidc *o);

/* Stops the thread (an ongoing request is abandoned within about a second)
 * and frees everything, wiping secrets and tokens. NULL is a no-op. */
void oidc_free(struct oidc *o);

#endif
