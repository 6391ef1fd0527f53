// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "http.h"

struct body {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
	bool too_big;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t body_write(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct body *b = ctx;
	size_t n = size * nmemb;

	if (b->len + n > b->max) {
		b->too_big = true;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->buf, cap);
		if (!p)
			return 0;
		b->buf = p;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	b->buf[b->len] = '\0';
	return n;
}

static int progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		    curl_off_t ulnow)
{
	const atomic_bool *cancel = ctx;

	return atomic_load(cancel);
}

static int curl_errno(CURL *c, CURLcode rc, const struct body *b)
{
	long os_errno = 0;

	switch (rc) {
	case CURLE_WRITE_ERROR:
		return b->too_big ? -EMSGSIZE : -ENOMEM;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
		return os_errno ? -os_errno : -ECONNREFUSED;
	default:
		return -EPROTO;
	}
}

/* A POST when body is set: sent as content_type, or as a form when NULL. */
static int request(const char *method, const char *url, const char *body, size_t body_len,
		   const char *content_type, const struct http_opts *opts,
		   struct http_response *resp, struct errmsg *err)
{
	char ct[128];
	char errbuf[CURL_ERROR_SIZE] = "";
	struct body b = { .max = opts->max_body };
	struct curl_slist *hdrs = NULL;
	CURLcode rc;
	CURL *c;
	int ret;

	memset(resp, 0, sizeof(*resp));
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return errmsg_set(err, -ENOMEM, "%s %s: libcurl: %s", method, url,
				  curl_easy_strerror(global_rc));
	c = curl_easy_init();
	hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (hdrs && content_type) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
		hdrs = curl_slist_append(hdrs, ct) ?: (curl_slist_free_all(hdrs), NULL);
	}
	if (!c || !hdrs) {
		ret = errmsg_set(err, -ENOMEM, "%s %s: out of memory", method, url);
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	/* Threads: no signals for DNS timeouts. */
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)opts->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)opts->timeout_ms);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (opts->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, opts->ca_file);
	if (opts->cert_file) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, opts->cert_file);
		curl_easy_setopt(c, CURLOPT_SSLKEY, opts->key_file);
	}
	if (opts->username) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, opts->username);
		curl_easy_setopt(c, CURLOPT_PASSWORD, opts->password);
	}
	if (opts->cancel) {
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)opts->cancel);
	}
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}

	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		ret = curl_errno(c, rc, &b);
		if (ret == -EMSGSIZE)
			errmsg_set(err, ret, "%s %s: response larger than %zu bytes", method, url,
				   opts->max_body);
		else
			errmsg_set(err, ret, "%s %s: %s%s%s%s", method, url, curl_easy_strerror(rc),
				   errbuf[0] ? " (" : "", errbuf, errbuf[0] ? ")" : "");
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	if (!b.buf) {
		b.buf = strdup("");
		if (!b.buf) {
			ret = errmsg_set(err, -ENOMEM, "%s %s: out of memory", method, url);
			goto out;
		}
	}
	resp->body = b.buf;
	resp->len = b.len;
	b.buf = NULL;
	ret = 0;
out:
	free(b.buf);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return ret;
}

int http_get(const char *url, const struct http_opts *opts, struct http_response *resp,
	     struct errmsg *err)
{
	return request("GET", url, NULL, 0, NULL, opts, resp, err);
}

int http_post_form(const char *url, const char *form, const struct http_opts *opts,
		   struct http_response *resp, struct errmsg *err)
{
	return request("POST", url, form, strlen(form), NULL, opts, resp, err);
}

int http_post(const char *url, const char *content_type, const void *body, size_t len,
	      const struct http_opts *opts, struct http_response *resp, struct errmsg *err)
{
	return request("POST", url, body, len, content_type, opts, resp, err);
}

void http_response_free(struct http_response *resp)
{
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

/* RFC 3986 unreserved characters pass; everything else is %XX. */
static bool unreserved(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') ||
	       ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

static size_t escaped_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += unreserved(*s) ? 1 : 3;
	return n;
}

static char *escape(char *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = *s;

		if (unreserved(ch)) {
			*out++ = ch;
		} else {
			*out++ = '%';
			*out++ = hex[ch >> 4];
			*out++ = hex[ch & 15];
		}
	}
	return out;
}

char *http_escape(const char *s)
{
	char *out = malloc(escaped_len(s) + 1);

	if (out)
		*escape(out, s) = '\0';
	return out;
}

int http_form_add(char **form, const char *key, const char *value)
{
	size_t old = *form ? strlen(*form) : 0;
	char *p, *q;

	p = realloc(*form, old + 1 + escaped_len(key) + 1 + escaped_len(value) + 1);
	if (!p)
		return -ENOMEM;
	q = p + old;
	if (old)
		*q++ = '&';
	q = escape(q, key);
	*q++ = '=';
	q = escape(q, value);
	*q = '\0';
	*form = p;
	return 0;
}
