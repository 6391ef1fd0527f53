/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * An HTTP answer collected through libcurl's header and write callbacks,
 * for the tests that ask the agent's HTTP listeners (the edge's endpoint,
 * the local listener). What does not fit is dropped, NUL-terminated.
 */
#ifndef SLUICE_TEST_CURL_REPLY_H
#define SLUICE_TEST_CURL_REPLY_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct reply {
	long status;
	char headers[16384];
	size_t hlen;
	char body[16384];
	size_t blen;
};

static inline size_t reply_append(char *dst, size_t cap, size_t *used, const char *buf,
				  size_t len)
{
	if (*used + len < cap) {
		memcpy(dst + *used, buf, len);
		*used += len;
		dst[*used] = '\0';
	}
	return len;
}

/* CURLOPT_HEADERFUNCTION, with CURLOPT_HEADERDATA the reply. */
static inline size_t on_header(char *buf, size_t size, size_t n, void *ctx)
{
	struct reply *r = ctx;

	return reply_append(r->headers, sizeof(r->headers), &r->hlen, buf, size * n);
}

/* CURLOPT_WRITEFUNCTION, with CURLOPT_WRITEDATA the reply. */
static inline size_t on_body(char *buf, size_t size, size_t n, void *ctx)
{
	struct reply *r = ctx;

	return reply_append(r->body, sizeof(r->body), &r->blen, buf, size * n);
}

/* The value of a response header, into buf ("" when absent). */
static inline const char *hdr(const struct reply *r, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	buf[0] = '\0';
	for (const char *p = r->headers; *p; p = strchr(p, '\n') + 1) {
		if (!strncasecmp(p, name, n) && p[n] == ':') {
			const char *v = p + n + 1, *end = strpbrk(v, "\r\n");

			while (*v == ' ')
				v++;
			snprintf(buf, len, "%.*s", (int)(end - v), v);
			break;
		}
		if (!strchr(p, '\n'))
			break;
	}
	return buf;
}

#endif
