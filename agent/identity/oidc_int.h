/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The OIDC client's insides, shared by oidc.c (token cache and public API),
 * oidc_intro.c (opaque token introspection), oidc_thread.c (the thread that
 * keeps tokens and the JWKS fresh and asks the IdP about opaque tokens) and
 * oidc_fetch.c (the requests to the IdP). Not for other modules: they use
 * oidc.h. */
#ifndef SLUICE_OIDC_INT_H
#define SLUICE_OIDC_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "oidc.h"

/* read_secret's buffer: oidc_add_workload reads the secret once to
 * reject a bad file at configuration time. */
#define SECRET_MAX 4096

/* What the last request for a token (or to the IdP as a whole) ran into. */
enum fail {
	FAIL_NONE = 0,
	FAIL_UNREACHABLE,	/* transport error, timeout, HTTP 5xx or 429 */
	FAIL_REFUSED,		/* the IdP said no: HTTP 4xx, OAuth error */
	FAIL_BAD_RESPONSE,	/* an answer that breaks the protocol */
	FAIL_CREDENTIALS,	/* our own secret or key file */
	NR_FAIL,
};

struct workload {
	char *name;
	char *client_id;
	enum oidc_auth auth;
	char *cred_file;		/* secret or private key, by auth */

	char *token;			/* NULL, or valid until exp_ms */
	size_t token_len;
	bool had_token;
	time_t exp;			/* wall clock */
	uint64_t exp_ms;		/* monotonic */
	uint64_t due_ms;		/* next request */
	unsigned int backoff_ms;
	enum fail fail;
	char error[ERRMSG_LEN];
	uint64_t fetched;
	uint64_t failed;
	/* The thread works on it without the lock; removal then only
	 * marks it and the thread frees it. */
	bool busy;
	bool removed;
};

/* Introspection requests waiting for the thread or being made. */
#define INTRO_MAX_PENDING 256
/* Answers not picked up yet: twice that, the oldest dropped first. */
#define INTRO_MAX_ENTRIES (2 * INTRO_MAX_PENDING)
/* How long an answer waits to be picked up. */
#define INTRO_KEEP_MS 10000
/* Longer tokens are never asked about: no IdP issues them. */
#define INTRO_TOKEN_MAX 8192

enum intro_state {
	INTRO_PENDING,
	INTRO_BUSY,		/* the thread is asking the IdP, without the lock */
	INTRO_DONE,
};

/* One opaque token the IdP is asked about, by its SHA-256. */
struct intro {
	unsigned char md[SHA256_DIGEST_LENGTH];
	char *token;			/* until the request is made, then wiped */
	size_t token_len;
	enum intro_state state;
	uint64_t seq;			/* order of arrival: sent first come first */
	int result;			/* 0, -EACCES, -ENOKEY once DONE */
	json_t *claims;			/* result 0 */
	char error[ERRMSG_LEN];		/* result < 0 */
	uint64_t done_ms;		/* monotonic, when answered */
};

struct oidc {
	/* Configuration, immutable after oidc_new. */
	char *issuer;
	char *resource;
	char *ca_file;
	char *cert_file;
	char *key_file;
	unsigned int connect_timeout_ms;
	unsigned int timeout_ms;
	unsigned int jwks_refresh_s;
	unsigned int jwks_refetch_min_s;
	unsigned int retry_min_ms;
	unsigned int retry_max_ms;

	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	int efd;

	/* Everything below is under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;

	bool discovered;
	char token_endpoint[OIDC_URL_MAX];
	char jwks_uri[OIDC_URL_MAX];
	char intro_endpoint[OIDC_URL_MAX];	/* "" when the IdP has none */

	/* The introspection client (NULL: none) and the requests. */
	char *intro_client_id;
	char *intro_secret_file;
	struct intro **intros;
	size_t nr_intros;
	uint64_t intro_seq;

	/* IdP-wide state: discovery failures, and transport failures of any
	 * request, which hold back every request until idp_retry_ms. */
	enum fail idp_fail;
	char idp_error[ERRMSG_LEN];
	uint64_t idp_retry_ms;
	unsigned int idp_backoff_ms;

	char *jwks;
	uint64_t jwks_gen;
	uint64_t jwks_fetches;
	uint64_t jwks_due_ms;
	uint64_t jwks_last_ms;		/* start of the last fetch, 0: never */
	unsigned int jwks_backoff_ms;
	bool jwks_want;
	bool jwks_busy;
	char jwks_error[ERRMSG_LEN];

	struct workload **wls;
	size_t nr_wls;
	size_t cap_wls;
};

struct token_result {
	char *token;
	size_t len;
	long long expires_in;
};

/* oidc.c: the token cache */
void wipe_token(struct workload *w);
void workload_free(struct workload *w);

/* oidc_intro.c, with the lock held */
void intro_free(struct intro *in);
/* The pending request that came first, or NULL. */
struct intro *intro_next(struct oidc *o);
/* Answers every pending request with -ENOKEY and msg (the IdP failed). */
void intro_fail_pending(struct oidc *o, const char *msg);
/* Frees answers older than INTRO_KEEP_MS; returns when the next one is
 * due (UINT64_MAX: none). */
uint64_t intro_expire(struct oidc *o, uint64_t now);

/* oidc_thread.c */
int thread_start(struct oidc *o);

/* oidc_fetch.c: one request each, made without the lock */
bool url_allowed(const char *url);
int read_secret(const char *path, char *buf, struct errmsg *err);
int load_ec_key(const char *path, EVP_PKEY **out, struct errmsg *err);
/* intro_ep may come back "": introspection is optional. */
enum fail discover(struct oidc *o, char *token_ep, char *jwks_uri, char *intro_ep,
		   struct errmsg *err);
enum fail fetch_token(struct oidc *o, const struct workload *w, struct token_result *out,
		      struct errmsg *err);
enum fail fetch_jwks(struct oidc *o, char **out, struct errmsg *err);
/* One RFC 7662 request: *result 0 (active, *claims set), -EACCES
 * (inactive) or -ENOKEY (the failure returned, message in err). */
enum fail fetch_introspect(struct oidc *o, const char *client_id, const char *secret_file,
			   const char *token, int *result, json_t **claims, struct errmsg *err);

#endif
