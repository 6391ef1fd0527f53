/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Watching the requests on an HTTP flow without touching its bytes: the
 * receiving agent feeds what it relays toward a `protocol: http` service
 * through llhttp (Node.js' parser, strict mode) and hears of each request
 * head, for the audit line that names the caller an edge assertion vouches
 * for (docs/audit.md, direction "request").
 *
 * Observation only: bytes the parser refuses are still relayed (refusing
 * them is for the HTTP-aware services of a later issue); the watch stops at
 * the first error, and after a request that upgrades the connection
 * (Upgrade, CONNECT), whose bytes are no longer HTTP.
 *
 * llhttp 8.1's strict mode refuses what would frame a request differently
 * (Content-Length with Transfer-Encoding, repeated Content-Length, a bad
 * Transfer-Encoding, bare LF, invalid characters in a name), but still
 * takes obsolete line folding and whitespace inside or before a header
 * name ("Bad Name:", "Name :"): whoever enforces per request must refuse
 * those itself.
 */
#ifndef SLUICE_HTTP_WATCH_H
#define SLUICE_HTTP_WATCH_H

#include <stdbool.h>
#include <stddef.h>

/* Longer targets are cut and end in "..."; longer host or captured header
 * values are dropped (NULL), as no valid one is that long. */
#define HTTP_WATCH_TARGET_MAX 2048
#define HTTP_WATCH_HOST_MAX 256
#define HTTP_WATCH_VALUE_MAX 8192

struct http_watch;

/* One request head; the strings are valid during the callback only. */
struct http_head {
	const char *method;		/* "GET" */
	const char *target;		/* the request-target as sent */
	const char *host;		/* the Host header; NULL when absent */
	const char *value;		/* the captured header; NULL when absent */
	bool repeated;			/* the captured header came more than once */
};

typedef void (*http_watch_cb)(void *ctx, const struct http_head *h);

/* Watches requests, capturing the header named header (case-insensitive);
 * cb runs once per request head. NULL on ENOMEM. */
struct http_watch *http_watch_new(const char *header, http_watch_cb cb, void *ctx);

/* The next len bytes of the client's side of the flow. Returns 0 while
 * watching, 1 once it stopped (an upgrade, or bytes that are not HTTP/1.x:
 * http_watch_error() says which), and does nothing from then on. */
int http_watch_feed(struct http_watch *w, const char *buf, size_t len);

/* Why the watch stopped ("upgrade", or llhttp's reason); NULL while it
 * watches. */
const char *http_watch_error(const struct http_watch *w);

/* Requests heard so far. */
unsigned long http_watch_requests(const struct http_watch *w);

void http_watch_free(struct http_watch *w);

#endif
