// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "b64url.h"
#include "fileopen.h"
#include "http.h"
#include "jwt.h"
#include "log.h"
#include "oidc.h"
#include "pki.h"

#define DISCOVERY_PATH "/.well-known/openid-configuration"
#define SECRET_MAX 4096
#define TOKEN_BODY_MAX (64 * 1024)
#define JWKS_BODY_MAX (256 * 1024)
#define ASSERTION_LIFETIME_S 60
/* Longest error text taken from an IdP response into a message. */
#define IDP_TEXT_MAX 200

/* What the last request for a token (or to the IdP as a whole) ran into. */
enum fail {
	FAIL_NONE = 0,
	FAIL_UNREACHABLE,	/* transport error, timeout, HTTP 5xx or 429 */
	FAIL_REFUSED,		/* the IdP said no: HTTP 4xx, OAuth error */
	FAIL_BAD_RESPONSE,	/* an answer that breaks the protocol */
	FAIL_CREDENTIALS,	/* our own secret or key file */
	NR_FAIL,
};

static const char *const fail_reasons[NR_FAIL][2] = {
	[FAIL_NONE] = { OIDC_REASON_PENDING, OIDC_REASON_PENDING_EXPIRED },
	[FAIL_UNREACHABLE] = { OIDC_REASON_UNREACHABLE, OIDC_REASON_UNREACHABLE_EXPIRED },
	[FAIL_REFUSED] = { OIDC_REASON_REFUSED, OIDC_REASON_REFUSED_EXPIRED },
	[FAIL_BAD_RESPONSE] = { OIDC_REASON_BAD_RESPONSE, OIDC_REASON_BAD_RESPONSE_EXPIRED },
	[FAIL_CREDENTIALS] = { OIDC_REASON_CREDENTIALS, OIDC_REASON_CREDENTIALS_EXPIRED },
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

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void notify(struct oidc *o)
{
	uint64_t one = 1;

	/* Only fails when the counter would overflow: it is readable then. */
	if (write(o->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn("oidc: eventfd: %s", strerror(errno));
}

static unsigned int next_backoff(const struct oidc *o, unsigned int cur)
{
	if (!cur)
		return o->retry_min_ms;
	return cur >= o->retry_max_ms / 2 ? o->retry_max_ms : cur * 2;
}

/* http is for tests on loopback only: a token or secret must never cross
 * a network in clear. */
static bool url_allowed(const char *url)
{
	static const char *const loopback[] = { "127.0.0.1", "[::1]", "localhost" };
	const char *host;

	if (!strncmp(url, "https://", 8))
		return url[8] != '\0';
	if (strncmp(url, "http://", 7))
		return false;
	host = url + 7;
	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
		size_t n = strlen(loopback[i]);

		if (!strncmp(host, loopback[i], n) &&
		    (host[n] == ':' || host[n] == '/' || host[n] == '\0'))
			return true;
	}
	return false;
}

/* Text from the IdP made safe for a log line: printable ASCII, bounded,
 * and never the secret even if the IdP echoes it. */
static void idp_text(char *dst, size_t size, const char *src, const char *secret)
{
	size_t n = 0;

	if (secret && *secret && strstr(src, secret))
		src = "[text containing the client secret removed]";
	for (; *src && n + 1 < size && n < IDP_TEXT_MAX; src++)
		dst[n++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
	dst[n] = '\0';
}

/* A private credential file, opened and then checked on its descriptor:
 * a regular file nobody else can read. Returns the descriptor. */
static int open_private(const char *path, const char *what, struct errmsg *err)
{
	struct stat st;
	int fd, ret;

	fd = fileopen_read(path, &st);
	if (fd < 0)
		return errmsg_set(err, fd, "%s%s: %s", what, path, strerror(-fd));
	ret = fileopen_private(what, path, &st, err);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* Reads the secret, without trailing whitespace, into buf (SECRET_MAX). */
static int read_secret(const char *path, char *buf, struct errmsg *err)
{
	ssize_t n;
	int fd, ret;

	fd = open_private(path, "client secret file ", err);
	if (fd < 0)
		return fd;
	n = read(fd, buf, SECRET_MAX);
	ret = -errno;
	close(fd);
	if (n < 0)
		return errmsg_set(err, ret, "client secret file %s: %s", path, strerror(-ret));
	if (n == SECRET_MAX) {
		OPENSSL_cleanse(buf, SECRET_MAX);
		return errmsg_set(err, -EINVAL, "client secret file %s: longer than %d bytes", path,
				  SECRET_MAX - 1);
	}
	while (n && strchr(" \t\r\n", buf[n - 1]))
		n--;
	buf[n] = '\0';
	if (!n)
		return errmsg_set(err, -EINVAL, "client secret file %s: empty", path);
	return 0;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

static int load_ec_key(const char *path, EVP_PKEY **out, struct errmsg *err)
{
	EVP_PKEY *k = NULL;
	FILE *f;
	int fd, ret;

	fd = open_private(path, "client key file ", err);
	if (fd < 0)
		return fd;
	f = fdopen(fd, "r");
	if (!f) {
		ret = -errno;
		close(fd);
		return errmsg_set(err, ret, "client key file %s: %s", path, strerror(-ret));
	}
	k = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!k)
		return errmsg_set(err, -EINVAL,
				  "client key file %s: not an unencrypted PEM private key", path);
	if (jwks_key_alg(k) != JWS_ES256) {
		EVP_PKEY_free(k);
		return errmsg_set(err, -EINVAL,
				  "client key file %s: not an EC P-256 key (private_key_jwt signs "
				  "with ES256)",
				  path);
	}
	*out = k;
	return 0;
}

/* The RFC 7523 client assertion for private_key_jwt. aud is the issuer
 * identifier, which draft-ietf-oauth-rfc7523bis makes the only safe
 * choice (a token endpoint URL can be another server's). */
static int client_assertion(const struct oidc *o, const char *client_id, const char *key_file,
			    char **out, struct errmsg *err)
{
	unsigned char rnd[16];
	char jti[B64URL_ENC_LEN(sizeof(rnd)) + 1];
	time_t now = time(NULL);
	EVP_PKEY *k = NULL;
	json_t *claims;
	int ret;

	ret = load_ec_key(key_file, &k, err);
	if (ret)
		return ret;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		ret = errmsg_set(err, -EIO, "client assertion for %s: no random bytes", client_id);
		goto out;
	}
	b64url_encode(rnd, sizeof(rnd), jti);
	claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "iss", client_id, "sub", client_id,
			   "aud", o->issuer, "jti", jti, "iat", (json_int_t)now, "exp",
			   (json_int_t)(now + ASSERTION_LIFETIME_S));
	if (!claims) {
		ret = errmsg_set(err, -ENOMEM, "client assertion for %s: out of memory", client_id);
		goto out;
	}
	ret = jwt_mint_es256(k, NULL, claims, out, err);
	json_decref(claims);
out:
	EVP_PKEY_free(k);
	return ret;
}

static void http_opts_init(const struct oidc *o, struct http_opts *h, size_t max_body)
{
	*h = (struct http_opts){
		.ca_file = o->ca_file,
		.cert_file = o->cert_file,
		.key_file = o->key_file,
		.connect_timeout_ms = o->connect_timeout_ms,
		.timeout_ms = o->timeout_ms,
		.max_body = max_body,
		.cancel = &o->stop,
	};
}

/* A request that got no usable HTTP answer: the IdP is unreachable. */
static enum fail transport_fail(int err)
{
	return err == -ENOMEM || err == -EMSGSIZE ? FAIL_BAD_RESPONSE : FAIL_UNREACHABLE;
}

/* A non-200 answer: "HTTP 401 invalid_client (client authentication
 * failed)" and whether it means the IdP is unavailable or refusing. */
static enum fail http_fail(const struct http_response *r, const char *secret, char *buf,
			   size_t size)
{
	char code[IDP_TEXT_MAX + 1] = "", desc[IDP_TEXT_MAX + 1] = "";
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	const char *e = json_string_value(json_object_get(j, "error"));
	const char *d = json_string_value(json_object_get(j, "error_description"));

	if (e)
		idp_text(code, sizeof(code), e, secret);
	if (d)
		idp_text(desc, sizeof(desc), d, secret);
	json_decref(j);
	snprintf(buf, size, "HTTP %ld%s%s%s%s%s", r->status, code[0] ? " " : "", code,
		 desc[0] ? " (" : "", desc, desc[0] ? ")" : "");
	if (r->status >= 500 || r->status == 429)
		return FAIL_UNREACHABLE;
	if (r->status >= 400)
		return FAIL_REFUSED;
	return FAIL_BAD_RESPONSE;
}

static const char *json_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s && *s ? s : NULL;
}

/* The discovered endpoints, or a failure class with the message in err. */
static enum fail discover(struct oidc *o, char *token_ep, char *jwks_uri, struct errmsg *err)
{
	char url[OIDC_URL_MAX + sizeof(DISCOVERY_PATH)], status[2 * IDP_TEXT_MAX + 64];
	size_t n = strlen(o->issuer);
	struct http_response r;
	struct http_opts h;
	const char *iss, *tok, *jwks;
	enum fail fail = FAIL_BAD_RESPONSE;
	json_t *j;
	int ret;

	/* OpenID Connect Discovery 4: a trailing slash is removed first. */
	if (o->issuer[n - 1] == '/')
		n--;
	snprintf(url, sizeof(url), "%.*s%s", (int)n, o->issuer, DISCOVERY_PATH);
	http_opts_init(o, &h, TOKEN_BODY_MAX);
	ret = http_get(url, &h, &r, err);
	if (ret)
		return transport_fail(ret);
	if (r.status != 200) {
		fail = http_fail(&r, NULL, status, sizeof(status));
		errmsg_set(err, -EPROTO, "OIDC discovery %s: %s", url, status);
		goto out;
	}
	j = json_loadb(r.body, r.len, 0, NULL);
	iss = json_str(j, "issuer");
	tok = json_str(j, "token_endpoint");
	jwks = json_str(j, "jwks_uri");
	if (!json_is_object(j)) {
		errmsg_set(err, -EPROTO, "OIDC discovery %s: not a JSON object", url);
	} else if (!iss || strcmp(iss, o->issuer)) {
		errmsg_set(err, -EPROTO,
			   "OIDC discovery %s: issuer \"%.200s\" is not the configured issuer \"%s\"",
			   url, iss ? iss : "", o->issuer);
	} else if (!tok || !jwks) {
		errmsg_set(err, -EPROTO, "OIDC discovery %s: no %s", url,
			   tok ? "jwks_uri" : "token_endpoint");
	} else if (strlen(tok) >= OIDC_URL_MAX || strlen(jwks) >= OIDC_URL_MAX ||
		   !url_allowed(tok) || !url_allowed(jwks)) {
		errmsg_set(err, -EPROTO, "OIDC discovery %s: endpoint %.200s is not an https URL",
			   url, url_allowed(tok) ? jwks : tok);
	} else {
		strcpy(token_ep, tok);
		strcpy(jwks_uri, jwks);
		fail = FAIL_NONE;
	}
	json_decref(j);
out:
	http_response_free(&r);
	return fail;
}

struct token_result {
	char *token;
	size_t len;
	long long expires_in;
};

static enum fail parse_token(const char *url, const struct http_response *r,
			     struct token_result *out, struct errmsg *err)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	const char *tok = json_str(j, "access_token");
	const char *type = json_str(j, "token_type");
	json_t *exp = json_object_get(j, "expires_in");
	enum fail fail = FAIL_BAD_RESPONSE;

	if (!tok) {
		errmsg_set(err, -EPROTO, "IdP token endpoint %s: no access_token in the response",
			   url);
	} else if (strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
			  "-._~+/=") != strlen(tok)) {
		errmsg_set(err, -EPROTO,
			   "IdP token endpoint %s: access_token has characters RFC 6750 forbids", url);
	} else if (!type || strcasecmp(type, "Bearer")) {
		errmsg_set(err, -EPROTO, "IdP token endpoint %s: token_type \"%.40s\" is not Bearer",
			   url, type ? type : "");
	} else if (!json_is_integer(exp) || json_integer_value(exp) <= 0) {
		errmsg_set(err, -EPROTO, "IdP token endpoint %s: no positive integer expires_in",
			   url);
	} else {
		out->len = strlen(tok);
		out->token = strdup(tok);
		out->expires_in = json_integer_value(exp);
		fail = out->token ? FAIL_NONE : FAIL_BAD_RESPONSE;
		if (!out->token)
			errmsg_set(err, -ENOMEM, "IdP token endpoint %s: out of memory", url);
	}
	if (tok)
		OPENSSL_cleanse((void *)tok, strlen(tok));
	json_decref(j);
	return fail;
}

/* One client credentials grant. The workload's fields are stable while
 * the thread works on it (busy), the token endpoint after discovery. */
static enum fail fetch_token(struct oidc *o, const struct workload *w, struct token_result *out,
			     struct errmsg *err)
{
	char status[2 * IDP_TEXT_MAX + 64], secret[SECRET_MAX];
	const char *url = o->token_endpoint;
	char *form = NULL, *assertion = NULL, *user = NULL, *pass = NULL;
	enum fail fail = FAIL_CREDENTIALS;
	struct http_response r = {};
	struct http_opts h;
	int ret;

	secret[0] = '\0';
	http_opts_init(o, &h, TOKEN_BODY_MAX);
	ret = http_form_add(&form, "grant_type", "client_credentials");
	if (!ret && o->resource)
		ret = http_form_add(&form, "resource", o->resource);
	if (ret)
		goto nomem;
	if (w->auth == OIDC_AUTH_CLIENT_SECRET_BASIC) {
		if (read_secret(w->cred_file, secret, err))
			goto out;
		user = http_escape(w->client_id);
		pass = http_escape(secret);
		if (!user || !pass)
			goto nomem;
		h.username = user;
		h.password = pass;
	} else {
		if (client_assertion(o, w->client_id, w->cred_file, &assertion, err))
			goto out;
		if (http_form_add(&form, "client_id", w->client_id) ||
		    http_form_add(&form, "client_assertion_type",
				  "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") ||
		    http_form_add(&form, "client_assertion", assertion))
			goto nomem;
	}

	ret = http_post_form(url, form, &h, &r, err);
	if (ret) {
		fail = transport_fail(ret);
		goto out;
	}
	if (r.status == 200) {
		fail = parse_token(url, &r, out, err);
	} else {
		fail = http_fail(&r, secret, status, sizeof(status));
		errmsg_set(err, -EPROTO, "IdP token endpoint %s: %s for client %s", url, status,
			   w->client_id);
	}
	goto out;
nomem:
	fail = FAIL_BAD_RESPONSE;
	errmsg_set(err, -ENOMEM, "IdP token endpoint %s: out of memory", url);
out:
	if (r.body)
		OPENSSL_cleanse(r.body, r.len);
	http_response_free(&r);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (pass)
		OPENSSL_cleanse(pass, strlen(pass));
	free(pass);
	free(user);
	free(form);
	free(assertion);
	return fail;
}

static void wipe_token(struct workload *w)
{
	if (!w->token)
		return;
	OPENSSL_cleanse(w->token, w->token_len);
	free(w->token);
	w->token = NULL;
	w->token_len = 0;
}

static void workload_free(struct workload *w)
{
	if (!w)
		return;
	wipe_token(w);
	free(w->name);
	free(w->client_id);
	free(w->cred_file);
	free(w);
}

/* Records a transport failure of any request: the whole IdP backs off. */
static void idp_failed(struct oidc *o, enum fail fail, const char *msg)
{
	/* Once per change: the text varies between retries (timings). */
	if (o->idp_fail != fail)
		pr_warn("oidc: %s", msg);
	o->idp_fail = fail;
	snprintf(o->idp_error, sizeof(o->idp_error), "%s", msg);
	o->idp_backoff_ms = next_backoff(o, o->idp_backoff_ms);
	o->idp_retry_ms = now_ms() + o->idp_backoff_ms;
}

static void idp_answered(struct oidc *o)
{
	if (o->idp_fail)
		pr_info("oidc: %s answers again", o->issuer);
	o->idp_fail = FAIL_NONE;
	o->idp_error[0] = '\0';
	o->idp_backoff_ms = 0;
	o->idp_retry_ms = 0;
}

/* Called and returns with the lock held; drops it for the request. */
static void run_discovery(struct oidc *o)
{
	char tok[OIDC_URL_MAX], jwks[OIDC_URL_MAX];
	struct errmsg e = {};
	enum fail fail;

	pthread_mutex_unlock(&o->lock);
	fail = discover(o, tok, jwks, &e);
	pthread_mutex_lock(&o->lock);
	if (atomic_load(&o->stop))
		return;
	if (fail) {
		idp_failed(o, fail, e.msg);
	} else {
		idp_answered(o);
		strcpy(o->token_endpoint, tok);
		strcpy(o->jwks_uri, jwks);
		o->discovered = true;
		o->jwks_want = true;
		pr_info("oidc: %s: token endpoint %s, JWKS %s", o->issuer, tok, jwks);
	}
	notify(o);
}

static enum fail fetch_jwks(struct oidc *o, char **out, struct errmsg *err)
{
	struct http_response r;
	struct http_opts h;
	enum fail fail;
	char status[2 * IDP_TEXT_MAX + 64];
	json_t *j;
	int ret;

	http_opts_init(o, &h, JWKS_BODY_MAX);
	ret = http_get(o->jwks_uri, &h, &r, err);
	if (ret)
		return transport_fail(ret);
	if (r.status != 200) {
		fail = http_fail(&r, NULL, status, sizeof(status));
		errmsg_set(err, -EPROTO, "JWKS %s: %s", o->jwks_uri, status);
		http_response_free(&r);
		return fail;
	}
	j = json_loadb(r.body, r.len, 0, NULL);
	fail = json_is_array(json_object_get(j, "keys")) ? FAIL_NONE : FAIL_BAD_RESPONSE;
	json_decref(j);
	if (fail) {
		errmsg_set(err, -EPROTO, "JWKS %s: not a JSON object with a \"keys\" array",
			   o->jwks_uri);
		http_response_free(&r);
		return fail;
	}
	*out = r.body;
	return FAIL_NONE;
}

static void run_jwks(struct oidc *o)
{
	struct errmsg e = {};
	char *jwks = NULL;
	enum fail fail;

	o->jwks_want = false;
	o->jwks_busy = true;
	o->jwks_last_ms = now_ms();
	pthread_mutex_unlock(&o->lock);
	fail = fetch_jwks(o, &jwks, &e);
	pthread_mutex_lock(&o->lock);
	o->jwks_busy = false;
	/* Cancelled by oidc_free: not a failure worth a log line. */
	if (atomic_load(&o->stop)) {
		free(jwks);
		return;
	}
	if (fail) {
		if (fail == FAIL_UNREACHABLE)
			idp_failed(o, fail, e.msg);
		else if (!o->jwks_error[0])
			pr_warn("oidc: %s", e.msg);
		snprintf(o->jwks_error, sizeof(o->jwks_error), "%s", e.msg);
		o->jwks_backoff_ms = next_backoff(o, o->jwks_backoff_ms);
		o->jwks_due_ms = now_ms() + o->jwks_backoff_ms;
	} else {
		idp_answered(o);
		o->jwks_error[0] = '\0';
		o->jwks_backoff_ms = 0;
		o->jwks_due_ms = now_ms() + (uint64_t)o->jwks_refresh_s * 1000;
		o->jwks_fetches++;
		if (!o->jwks || strcmp(o->jwks, jwks)) {
			free(o->jwks);
			o->jwks = jwks;
			o->jwks_gen++;
			jwks = NULL;
		}
	}
	free(jwks);
	notify(o);
}

static void run_token(struct oidc *o, struct workload *w)
{
	struct token_result t = {};
	struct errmsg e = {};
	uint64_t start = now_ms();
	struct timespec wall;
	enum fail fail;

	clock_gettime(CLOCK_REALTIME, &wall);

	w->busy = true;
	pthread_mutex_unlock(&o->lock);
	fail = fetch_token(o, w, &t, &e);
	pthread_mutex_lock(&o->lock);
	w->busy = false;
	if (w->removed || atomic_load(&o->stop)) {
		if (t.token)
			OPENSSL_cleanse(t.token, t.len);
		free(t.token);
		if (w->removed)
			workload_free(w);
		return;
	}
	if (fail) {
		w->failed++;
		if (w->fail != fail && fail != FAIL_UNREACHABLE)
			pr_warn("oidc: workload %s: %s", w->name, e.msg);
		w->fail = fail;
		snprintf(w->error, sizeof(w->error), "%s", e.msg);
		if (fail == FAIL_UNREACHABLE) {
			/* Stays due: the IdP-wide backoff decides when to retry. */
			idp_failed(o, fail, e.msg);
			w->due_ms = now_ms();
		} else {
			if (fail != FAIL_CREDENTIALS)
				idp_answered(o);
			w->backoff_ms = next_backoff(o, w->backoff_ms);
			w->due_ms = now_ms() + w->backoff_ms;
		}
	} else {
		idp_answered(o);
		if (w->fail)
			pr_info("oidc: workload %s: token obtained again", w->name);
		wipe_token(w);
		w->token = t.token;
		w->token_len = t.len;
		w->had_token = true;
		/* The IdP's exp is its iat, whole seconds no earlier than
		 * ours, plus expires_in: counted from the start of our second,
		 * the token never outlasts it. */
		w->exp = wall.tv_sec + t.expires_in;
		w->exp_ms = start - wall.tv_nsec / 1000000 + t.expires_in * 1000;
		/* Refresh at two thirds of the lifetime. */
		w->due_ms = start + t.expires_in * 2000 / 3;
		w->backoff_ms = 0;
		w->fail = FAIL_NONE;
		w->error[0] = '\0';
		w->fetched++;
	}
	notify(o);
}

static void wait_until(struct oidc *o, uint64_t deadline_ms)
{
	struct timespec ts;

	if (deadline_ms == UINT64_MAX) {
		pthread_cond_wait(&o->cond, &o->lock);
		return;
	}
	ts.tv_sec = deadline_ms / 1000;
	ts.tv_nsec = (deadline_ms % 1000) * 1000000;
	pthread_cond_timedwait(&o->cond, &o->lock, &ts);
}

static void *thread_main(void *arg)
{
	struct oidc *o = arg;

	pthread_mutex_lock(&o->lock);
	while (!atomic_load(&o->stop)) {
		uint64_t now = now_ms(), wake = UINT64_MAX;
		struct workload *due = NULL;

		/* Nothing lingers past its lifetime, even if nobody asks. */
		for (size_t i = 0; i < o->nr_wls; i++) {
			struct workload *w = o->wls[i];

			if (w->token && now >= w->exp_ms) {
				wipe_token(w);
				notify(o);
			}
			if (w->token && w->exp_ms < wake)
				wake = w->exp_ms;
			if (!due || w->due_ms < due->due_ms)
				due = w;
		}
		if (now < o->idp_retry_ms) {
			wait_until(o, o->idp_retry_ms < wake ? o->idp_retry_ms : wake);
		} else if (!o->discovered) {
			run_discovery(o);
		} else if (o->jwks_want || now >= o->jwks_due_ms) {
			run_jwks(o);
		} else if (due && due->due_ms <= now) {
			run_token(o, due);
		} else {
			if (o->jwks_due_ms < wake)
				wake = o->jwks_due_ms;
			if (due && due->due_ms < wake)
				wake = due->due_ms;
			wait_until(o, wake);
		}
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

static struct workload *find(const struct oidc *o, const char *name, size_t *idx)
{
	for (size_t i = 0; i < o->nr_wls; i++) {
		if (!strcmp(o->wls[i]->name, name)) {
			if (idx)
				*idx = i;
			return o->wls[i];
		}
	}
	return NULL;
}

static int dup_opt(char **dst, const char *src)
{
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

static int check_readable(const char *path, const char *what, struct errmsg *err)
{
	if (path && access(path, R_OK))
		return errmsg_set(err, -errno, "OIDC %s %s: %s", what, path, strerror(errno));
	return 0;
}

/* The process's signals are the agent's main loop's (a signalfd, set up
 * after this thread starts): taken here, SIGHUP or SIGTERM would run their
 * default action and kill the agent instead of reloading or stopping it. */
static int thread_start(struct oidc *o)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(&o->thread, NULL, thread_main, o);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

int oidc_new(const struct oidc_cfg *cfg, struct oidc **out, struct errmsg *err)
{
	pthread_condattr_t ca;
	struct oidc *o;
	int ret;

	if (!cfg->issuer || strlen(cfg->issuer) >= OIDC_URL_MAX || !url_allowed(cfg->issuer))
		return errmsg_set(err, -EINVAL,
				  "OIDC issuer \"%s\": not an https URL (http only on loopback)",
				  cfg->issuer ? cfg->issuer : "");
	if (!cfg->cert_file != !cfg->key_file)
		return errmsg_set(err, -EINVAL,
				  "OIDC client certificate and key go together (have %s only)",
				  cfg->cert_file ? "the certificate" : "the key");
	ret = check_readable(cfg->ca_file, "CA file", err);
	if (!ret)
		ret = check_readable(cfg->cert_file, "certificate file", err);
	if (!ret)
		ret = check_readable(cfg->key_file, "key file", err);
	if (ret)
		return ret;

	o = calloc(1, sizeof(*o));
	if (!o)
		return errmsg_set(err, -ENOMEM, "OIDC client: out of memory");
	o->efd = -1;
	pthread_mutex_init(&o->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cond, &ca);
	pthread_condattr_destroy(&ca);
	o->connect_timeout_ms = cfg->connect_timeout_ms ?: 2000;
	o->timeout_ms = cfg->timeout_ms ?: 5000;
	o->jwks_refresh_s = cfg->jwks_refresh_s ?: 300;
	o->jwks_refetch_min_s = cfg->jwks_refetch_min_s ?: 30;
	o->retry_min_ms = cfg->retry_min_ms ?: 1000;
	o->retry_max_ms = cfg->retry_max_ms ?: 30000;
	if (o->retry_max_ms < o->retry_min_ms)
		o->retry_max_ms = o->retry_min_ms;
	if (dup_opt(&o->issuer, cfg->issuer) || dup_opt(&o->resource, cfg->resource) ||
	    dup_opt(&o->ca_file, cfg->ca_file) || dup_opt(&o->cert_file, cfg->cert_file) ||
	    dup_opt(&o->key_file, cfg->key_file)) {
		ret = errmsg_set(err, -ENOMEM, "OIDC client: out of memory");
		goto err_free;
	}
	o->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (o->efd < 0) {
		ret = errmsg_set(err, -errno, "OIDC client: eventfd: %s", strerror(errno));
		goto err_free;
	}
	ret = thread_start(o);
	if (ret) {
		errmsg_set(err, ret, "OIDC client: starting its thread: %s", strerror(-ret));
		goto err_free;
	}
	o->thread_started = true;
	*out = o;
	return 0;
err_free:
	oidc_free(o);
	return ret;
}

int oidc_add_workload(struct oidc *o, const struct oidc_client_cfg *c, struct errmsg *err)
{
	struct workload *w, **wls;
	char secret[SECRET_MAX];
	EVP_PKEY *k = NULL;
	int ret;

	if (!c->workload || !*c->workload || !c->client_id || !*c->client_id)
		return errmsg_set(err, -EINVAL, "OIDC client: workload and client_id are required");
	switch (c->auth) {
	case OIDC_AUTH_CLIENT_SECRET_BASIC:
		if (!c->secret_file)
			return errmsg_set(err, -EINVAL,
					  "workload %s: client_secret_basic needs a secret file",
					  c->workload);
		ret = read_secret(c->secret_file, secret, err);
		OPENSSL_cleanse(secret, sizeof(secret));
		break;
	case OIDC_AUTH_PRIVATE_KEY_JWT:
		if (!c->key_file)
			return errmsg_set(err, -EINVAL, "workload %s: private_key_jwt needs a key file",
					  c->workload);
		ret = load_ec_key(c->key_file, &k, err);
		EVP_PKEY_free(k);
		break;
	default:
		return errmsg_set(err, -EINVAL, "workload %s: unknown client authentication %d",
				  c->workload, c->auth);
	}
	if (ret)
		return ret;

	w = calloc(1, sizeof(*w));
	if (!w || dup_opt(&w->name, c->workload) || dup_opt(&w->client_id, c->client_id) ||
	    dup_opt(&w->cred_file, c->auth == OIDC_AUTH_CLIENT_SECRET_BASIC ? c->secret_file
									   : c->key_file)) {
		workload_free(w);
		return errmsg_set(err, -ENOMEM, "workload %s: out of memory", c->workload);
	}
	w->auth = c->auth;

	pthread_mutex_lock(&o->lock);
	if (find(o, c->workload, NULL)) {
		ret = errmsg_set(err, -EEXIST, "workload %s already has an OIDC client",
				 c->workload);
		goto err_unlock;
	}
	if (o->nr_wls == o->cap_wls) {
		size_t cap = o->cap_wls ? o->cap_wls * 2 : 8;

		wls = realloc(o->wls, cap * sizeof(*wls));
		if (!wls) {
			ret = errmsg_set(err, -ENOMEM, "workload %s: out of memory", c->workload);
			goto err_unlock;
		}
		o->wls = wls;
		o->cap_wls = cap;
	}
	o->wls[o->nr_wls++] = w;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
	return 0;
err_unlock:
	pthread_mutex_unlock(&o->lock);
	workload_free(w);
	return ret;
}

int oidc_remove_workload(struct oidc *o, const char *workload)
{
	struct workload *w;
	size_t i;

	pthread_mutex_lock(&o->lock);
	w = find(o, workload, &i);
	if (w) {
		o->wls[i] = o->wls[--o->nr_wls];
		if (w->busy)
			w->removed = true;
		else
			workload_free(w);
	}
	pthread_mutex_unlock(&o->lock);
	return w ? 0 : -ENOENT;
}

int oidc_token_get(struct oidc *o, const char *workload, char *buf, size_t len, time_t *exp,
		   const char **reason, struct errmsg *err)
{
	const char *why, *detail;
	char when[32];
	struct workload *w;
	enum fail fail;
	int ret;

	pthread_mutex_lock(&o->lock);
	w = find(o, workload, NULL);
	if (!w) {
		ret = errmsg_set(err, -ENOENT, "workload %s has no OIDC client", workload);
		goto out;
	}
	if (w->token && now_ms() < w->exp_ms) {
		if (w->token_len >= len) {
			ret = errmsg_set(err, -ENOSPC, "workload %s: token of %zu bytes, buffer of %zu",
					 workload, w->token_len, len);
			goto out;
		}
		memcpy(buf, w->token, w->token_len + 1);
		if (exp)
			*exp = w->exp;
		ret = 0;
		goto out;
	}
	wipe_token(w);
	/* The workload's own last failure, else what the IdP as a whole is
	 * failing with (down, or discovery not done). */
	fail = w->fail ? w->fail : o->idp_fail;
	detail = w->fail ? w->error : o->idp_fail ? o->idp_error : NULL;
	why = fail_reasons[fail][w->had_token];
	if (reason)
		*reason = why;
	if (w->had_token) {
		ret = errmsg_set(err, -EKEYEXPIRED, "%s: workload %s: token expired at %s; %s", why,
				 workload, pki_fmt_time(w->exp, when, sizeof(when)),
				 detail ? detail : "refresh still in progress");
	} else if (detail) {
		ret = errmsg_set(err, -ENOKEY, "%s: workload %s: %s", why, workload, detail);
	} else {
		ret = errmsg_set(err, -EAGAIN, "%s: workload %s: waiting for the first token from %s",
				 why, workload, o->issuer);
	}
out:
	pthread_mutex_unlock(&o->lock);
	return ret;
}

int oidc_token_info(struct oidc *o, const char *workload, struct oidc_token_info *out)
{
	struct workload *w;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&o->lock);
	w = find(o, workload, NULL);
	if (w) {
		out->valid = w->token && now_ms() < w->exp_ms;
		out->exp = out->valid ? w->exp : 0;
		out->fetched = w->fetched;
		out->failed = w->failed;
		snprintf(out->error, sizeof(out->error), "%s", w->error);
	}
	pthread_mutex_unlock(&o->lock);
	return w ? 0 : -ENOENT;
}

void oidc_refresh_all(struct oidc *o)
{
	uint64_t now = now_ms();

	pthread_mutex_lock(&o->lock);
	for (size_t i = 0; i < o->nr_wls; i++)
		o->wls[i]->due_ms = now;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

int oidc_jwks_get(struct oidc *o, char **json, uint64_t *generation, struct errmsg *err)
{
	int ret = 0;

	pthread_mutex_lock(&o->lock);
	if (o->jwks) {
		*json = strdup(o->jwks);
		if (!*json)
			ret = errmsg_set(err, -ENOMEM, "JWKS: out of memory");
		else if (generation)
			*generation = o->jwks_gen;
	} else if (o->jwks_error[0] || o->idp_fail) {
		ret = errmsg_set(err, -ENOKEY, "no JWKS: %s",
				 o->jwks_error[0] ? o->jwks_error : o->idp_error);
	} else {
		ret = errmsg_set(err, -EAGAIN, "no JWKS yet from %s", o->issuer);
	}
	pthread_mutex_unlock(&o->lock);
	return ret;
}

int oidc_jwks_refetch(struct oidc *o)
{
	int ret = 0;

	pthread_mutex_lock(&o->lock);
	if (o->jwks_want || o->jwks_busy) {
		ret = 0;
	} else if (o->jwks_last_ms &&
		   now_ms() - o->jwks_last_ms < (uint64_t)o->jwks_refetch_min_s * 1000) {
		ret = -EBUSY;
	} else {
		o->jwks_want = true;
		pthread_cond_signal(&o->cond);
	}
	pthread_mutex_unlock(&o->lock);
	return ret;
}

void oidc_get_info(struct oidc *o, struct oidc_info *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&o->lock);
	out->discovered = o->discovered;
	strcpy(out->token_endpoint, o->token_endpoint);
	strcpy(out->jwks_uri, o->jwks_uri);
	out->jwks_generation = o->jwks_gen;
	out->jwks_fetches = o->jwks_fetches;
	snprintf(out->error, sizeof(out->error), "%s",
		 o->idp_fail ? o->idp_error : o->jwks_error);
	pthread_mutex_unlock(&o->lock);
}

int oidc_fd(const struct oidc *o)
{
	return o->efd;
}

void oidc_fd_clear(struct oidc *o)
{
	uint64_t n;

	if (read(o->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		pr_warn("oidc: eventfd: %s", strerror(errno));
}

void oidc_free(struct oidc *o)
{
	if (!o)
		return;
	if (o->thread_started) {
		pthread_mutex_lock(&o->lock);
		atomic_store(&o->stop, true);
		pthread_cond_signal(&o->cond);
		pthread_mutex_unlock(&o->lock);
		pthread_join(o->thread, NULL);
	}
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->lock);
	if (o->efd >= 0)
		close(o->efd);
	for (size_t i = 0; i < o->nr_wls; i++)
		workload_free(o->wls[i]);
	free(o->wls);
	free(o->jwks);
	free(o->issuer);
	free(o->resource);
	free(o->ca_file);
	free(o->cert_file);
	free(o->key_file);
	free(o);
}
