/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Blocking HTTP(S) requests through libcurl, for the agent's calls to an
 * identity provider and its exports to a trace collector. Every call makes a fresh connection (a client
 * certificate that changed on disk is presented on the next call), follows
 * no redirects, speaks only http and https, and has a connect and a total
 * timeout. Safe to call from any thread; never raises SIGPIPE or SIGALRM.
 *
 * A response with any HTTP status is a success here: the caller reads the
 * status and the body. Errors are transport failures only.
 */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include <stdatomic.h>
#include <stddef.h>

#include "errmsg.h"

struct http_opts {
	const char *ca_file;		/* trust anchors for https; NULL: system store */
	const char *cert_file;		/* client certificate (PEM), NULL: none */
	const char *key_file;		/* its private key (PEM) */
	/* HTTP Basic credentials, sent as given (NULL: none). Never logged
	 * or put into error messages. */
	const char *username;
	const char *password;
	unsigned int connect_timeout_ms;
	unsigned int timeout_ms;	/* the whole request */
	size_t max_body;		/* a longer body fails with -EMSGSIZE */
	/* When set, an ongoing request stops within about a second and
	 * fails with -ECANCELED. May be NULL. */
	const atomic_bool *cancel;
};

struct http_response {
	long status;
	char *body;			/* NUL-terminated, malloc'd */
	size_t len;
};

/*
 * GET url, or POST the application/x-www-form-urlencoded form to it.
 * On success *resp is filled and must be released with http_response_free.
 * Errors: -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT, -EPROTO (TLS or HTTP
 * failure), -EMSGSIZE, -ECANCELED, -ENOMEM, each with a message naming the
 * method and URL and libcurl's reason.
 */
int http_get(const char *url, const struct http_opts *opts, struct http_response *resp,
	     struct errmsg *err);
int http_post_form(const char *url, const char *form, const struct http_opts *opts,
		   struct http_response *resp, struct errmsg *err);
/* POST len bytes of body as content_type (an OTLP export, say). */
int http_post(const char *url, const char *content_type, const void *body, size_t len,
	      const struct http_opts *opts, struct http_response *resp, struct errmsg *err);
void http_response_free(struct http_response *resp);

/* s percent-encoded for a form or HTTP Basic credentials (RFC 6749
 * 2.3.1): a malloc'd string, NULL on -ENOMEM. */
char *http_escape(const char *s);

/* Appends `&key=value` (no `&` when *form is NULL or empty) to the malloc'd
 * string *form, percent-encoding both. -ENOMEM leaves *form as it was. */
int http_form_add(char **form, const char *key, const char *value);

#endif
