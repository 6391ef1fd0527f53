// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The OIDC client's requests to the IdP: discovery, the client credentials
 * grant (client_secret_basic or private_key_jwt), the JWKS and token
 * introspection (RFC 7662). Each runs without the client's lock and returns
 * a failure class with the message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "b64url.h"
#include "fileopen.h"
#include "http.h"
#include "jwks.h"
#include "jwt.h"
#include "oidc_int.h"

#define DISCOVERY_PATH "/.well-known/openid-configuration"
#define TOKEN_BODY_MAX (64 * 1024)
#define JWKS_BODY_MAX (256 * 1024)
#define INTRO_BODY_MAX (64 * 1024)
#define ASSERTION_LIFETIME_S 60
/* Longest error text taken from an IdP response into a message. */
#define IDP_TEXT_MAX 200

/* http is for tests on loopback only: a token or secret must never cross
 * a network in clear. */
bool url_allowed(const char *url)
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
int read_secret(const char *path, char *buf, struct errmsg *err)
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

int load_ec_key(const char *path, EVP_PKEY **out, struct errmsg *err)
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
/* An optional endpoint: "" when absent, NULL when unusable. */
static const char *opt_endpoint(json_t *j, const char *key)
{
	const char *s = json_str(j, key);

	if (!s)
		return "";
	return strlen(s) < OIDC_URL_MAX && url_allowed(s) ? s : NULL;
}

enum fail discover(struct oidc *o, char *token_ep, char *jwks_uri, char *intro_ep,
		   struct errmsg *err)
{
	char url[OIDC_URL_MAX + sizeof(DISCOVERY_PATH)], status[2 * IDP_TEXT_MAX + 64];
	size_t n = strlen(o->issuer);
	struct http_response r;
	struct http_opts h;
	const char *iss, *tok, *jwks, *intro;
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
	intro = opt_endpoint(j, "introspection_endpoint");
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
	} else if (!intro) {
		errmsg_set(err, -EPROTO, "OIDC discovery %s: introspection_endpoint %.200s is not "
			   "an https URL", url, json_str(j, "introspection_endpoint"));
	} else {
		strcpy(token_ep, tok);
		strcpy(jwks_uri, jwks);
		strcpy(intro_ep, intro);
		fail = FAIL_NONE;
	}
	json_decref(j);
out:
	http_response_free(&r);
	return fail;
}

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
enum fail fetch_token(struct oidc *o, const struct workload *w, struct token_result *out,
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

enum fail fetch_jwks(struct oidc *o, char **out, struct errmsg *err)
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

/* An active answer past its exp is as good as inactive: the IdP may
 * answer from a cache, or our clock may be ahead. */
static enum fail parse_introspection(const char *url, const struct http_response *r,
				     int *result, json_t **claims, struct errmsg *err)
{
	json_t *j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
	json_t *active = json_object_get(j, "active"), *exp = json_object_get(j, "exp");

	if (!json_is_object(j) || !json_is_boolean(active)) {
		json_decref(j);
		*result = errmsg_set(err, -ENOKEY, "IdP introspection endpoint %s: the response is "
				     "not a JSON object with a boolean \"active\"", url);
		return FAIL_BAD_RESPONSE;
	}
	if (exp && !json_is_number(exp)) {
		json_decref(j);
		*result = errmsg_set(err, -ENOKEY, "IdP introspection endpoint %s: exp is not a "
				     "number", url);
		return FAIL_BAD_RESPONSE;
	}
	if (!json_is_true(active)) {
		*result = errmsg_set(err, -EACCES, "IdP introspection endpoint %s: token is not "
				     "active", url);
	} else if (exp && json_number_value(exp) <= (double)time(NULL)) {
		*result = errmsg_set(err, -EACCES, "IdP introspection endpoint %s: token is "
				     "active but expired %.0f s ago", url,
				     (double)time(NULL) - json_number_value(exp));
	} else {
		*result = 0;
		*claims = j;
		return FAIL_NONE;
	}
	json_decref(j);
	return FAIL_NONE;
}

enum fail fetch_introspect(struct oidc *o, const char *client_id, const char *secret_file,
			   const char *token, int *result, json_t **claims, struct errmsg *err)
{
	char status[2 * IDP_TEXT_MAX + 64], secret[SECRET_MAX];
	const char *url = o->intro_endpoint;
	char *form = NULL, *user = NULL, *pass = NULL;
	struct http_response r = {};
	enum fail fail = FAIL_CREDENTIALS;
	struct http_opts h;
	int ret;

	*result = -ENOKEY;
	*claims = NULL;
	secret[0] = '\0';
	http_opts_init(o, &h, INTRO_BODY_MAX);
	if (read_secret(secret_file, secret, err))
		goto out;
	user = http_escape(client_id);
	pass = http_escape(secret);
	if (!user || !pass || http_form_add(&form, "token", token) ||
	    http_form_add(&form, "token_type_hint", "access_token")) {
		fail = FAIL_BAD_RESPONSE;
		errmsg_set(err, -ENOMEM, "IdP introspection endpoint %s: out of memory", url);
		goto out;
	}
	h.username = user;
	h.password = pass;
	ret = http_post_form(url, form, &h, &r, err);
	if (ret) {
		fail = transport_fail(ret);
	} else if (r.status == 200) {
		fail = parse_introspection(url, &r, result, claims, err);
	} else {
		fail = http_fail(&r, secret, status, sizeof(status));
		errmsg_set(err, -EPROTO, "IdP introspection endpoint %s: %s for client %s", url,
			   status, client_id);
	}
out:
	if (r.body)
		OPENSSL_cleanse(r.body, r.len);
	http_response_free(&r);
	if (form)
		OPENSSL_cleanse(form, strlen(form));
	free(form);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (pass)
		OPENSSL_cleanse(pass, strlen(pass));
	free(pass);
	free(user);
	return fail;
}
