/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The HTTP/1.1 gate in front of a protocol: http service: every request
 * head on the connection is parsed (llhttp, strict) and held until it is
 * decided; an allowed request passes with its body, a denied one is
 * answered here (403, 401, 400) and never reaches the service. Responses
 * are parsed too, so that an answer made here goes to the client in the
 * request's turn (pipelining), so that each request's status and duration
 * are known, and so that the connection turns into opaque bytes only once
 * the service agreed to an upgrade (a 101, or a 2xx to CONNECT): a request
 * that asks for one and is refused by the service leaves the connection
 * HTTP, and the bytes after it are decided as requests.
 *
 * No sockets here: the owner (the proxy's relay) feeds each direction's
 * bytes in order and asks what to do next with them: pass n bytes on,
 * drop n bytes, write bytes the gate made (a traceparent header, an
 * answer), close, or wait. The bytes a step covers are always the oldest
 * fed and not yet stepped over, so the owner's buffer stays a FIFO.
 *
 * Beyond llhttp's strict mode, refused with a 400 and the connection
 * closed: obsolete line folding, a header name that is not a token
 * (whitespace in or before it), control characters in a value or the
 * target, a Transfer-Encoding other than exactly one "chunked", a missing
 * or repeated Host, a repeated caller assertion, an HTTP version that is
 * not 1.x. HTTP/2 (the prior-knowledge preface or an h2c upgrade) is
 * refused with its own reason, and so are a TLS ClientHello (a client
 * speaking HTTPS to a plain service: closed without an answer, which it
 * could not read) and bytes that are not HTTP.
 */
#ifndef SLUICE_HTTP_GATE_H
#define SLUICE_HTTP_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tracectx.h"

/* Requests decided and not yet answered on one connection: a client that
 * pipelines more waits until responses come back. */
#define HTTP_GATE_DEPTH 8
#define HTTP_GATE_PATH_MAX 256		/* the exchange's path, cut */
#define HTTP_GATE_WHY_MAX 160
#define HTTP_GATE_RULE_MAX 64
#define HTTP_GATE_CALLER_MAX 256
#define HTTP_GATE_HOST_MAX 256
#define HTTP_GATE_ID_MAX 72		/* a jti, a kid */

enum { HTTP_GATE_REQ, HTTP_GATE_RES };	/* the two directions */

/* Bounds on a request head, as nginx's large_client_header_buffers and
 * Apache's LimitRequestFields bound theirs (http_gate_limits_default()). */
struct http_gate_limits {
	unsigned int request_line;	/* bytes; over: 414 */
	unsigned int header_size;	/* the whole head, bytes; over: 431 */
	unsigned int headers;		/* header fields; over: 431 */
};

void http_gate_limits_default(struct http_gate_limits *l);

/* A request head, for the owner's decision; valid during decide only. */
struct http_gate_req {
	const char *method;		/* "GET" */
	const char *target;		/* the request-target as sent */
	const char *host;		/* the Host header */
	const char *assertion;		/* X-Sluice-Assertion; NULL: absent */
	const char *traceparent;	/* NULL: absent or not a valid one */
	bool keep_alive;		/* the connection may carry another */
	bool body;			/* Content-Length > 0 or chunked */
	bool upgrade;			/* Upgrade or CONNECT */
};

/* One request from its head to the end of its response. The gate sets
 * the first block; decide sets the rest for its own use in done. */
struct http_exchange {
	char method[16];
	uint64_t start_ns;		/* head decided, CLOCK_MONOTONIC */
	uint64_t end_ns;		/* response complete (or the flow ended) */
	int status;			/* response's, or the answer's; 0: none came */
	bool local;			/* answered here */
	bool upgrade;
	bool head;			/* a HEAD: its response has no body */
	bool close;			/* local: the connection closes after it */
	/* decide's */
	const char *reason;		/* a reason code, "ok", "policy-deny": static
					 * or code */
	char code[48];
	char why[HTTP_GATE_WHY_MAX];	/* local: the answer's body, one line */
	char rule[HTTP_GATE_RULE_MAX];
	char caller[HTTP_GATE_CALLER_MAX]; /* "": the flow's source itself */
	char path[HTTP_GATE_PATH_MAX];
	char host[HTTP_GATE_HOST_MAX];
	char jti[HTTP_GATE_ID_MAX], kid[HTTP_GATE_ID_MAX], orig_jti[HTTP_GATE_ID_MAX];
	bool add_traceparent;		/* pass with "traceparent: trace_id-span_id" */
	char trace_id[TRACE_ID_HEX + 1];	/* "": no span */
	char span_id[SPAN_ID_HEX + 1];
	char parent_span_id[SPAN_ID_HEX + 1];
};

struct http_gate_ops {
	/* A request head: set x->status 0 to pass it, or 400, 401, 403 (with
	 * x->why) to answer it here. */
	void (*decide)(void *ctx, const struct http_gate_req *req, struct http_exchange *x);
	/* An exchange ended: its response completed, or the flow ended
	 * first (status 0 for a request that got none). */
	void (*done)(void *ctx, const struct http_exchange *x);
	/* The connection is refused: bytes that are not HTTP or that would
	 * frame requests differently for another parser. reason is a stable
	 * code ("tls-client-hello", "http2-prior-knowledge", "smuggling" ...),
	 * detail says what was seen. Once per gate; the owner audits it. */
	void (*refused)(void *ctx, const char *reason, const char *detail);
	/* The gate is freed: ctx is no longer used. May be NULL. */
	void (*release)(void *ctx);
};

enum http_gate_step_kind {
	HTTP_STEP_WAIT,			/* nothing to do until more is fed */
	HTTP_STEP_PASS,			/* write the next len bytes fed on */
	HTTP_STEP_DROP,			/* discard the next len bytes fed */
	HTTP_STEP_WRITE,		/* write data[0..len) (the gate's) */
	HTTP_STEP_CLOSE,		/* RES: all is written, close the flow */
};

struct http_gate_step {
	enum http_gate_step_kind kind;
	size_t len;
	const char *data;
};

struct http_gate;

/* NULL on ENOMEM (release is then not called). */
struct http_gate *http_gate_new(const struct http_gate_limits *lim,
				const struct http_gate_ops *ops, void *ctx);

/* Bytes of direction dir, after those fed before. Returns how many it
 * took (fewer, down to 0, while it waits for the other direction: feed
 * the rest later). */
size_t http_gate_feed(struct http_gate *g, int dir, const char *buf, size_t len);

/* dir's source ended (EOF) after everything fed. */
void http_gate_eof(struct http_gate *g, int dir);

/* What to do next in dir; then http_gate_done() with how much of it was
 * done (a WRITE or PASS may be partial). WAIT and CLOSE need no done. */
void http_gate_step(struct http_gate *g, int dir, struct http_gate_step *s);
void http_gate_done(struct http_gate *g, int dir, size_t n);

/* True once, after a step in one direction let the other move on (an
 * upgrade decided, a pipelined request's turn): pump both again. */
bool http_gate_kicked(struct http_gate *g);

/* The connection is opaque bytes now (after a 101). */
bool http_gate_opaque(const struct http_gate *g);

/* Exchanges still open end with status 0 (done), then release. NULL: no-op. */
void http_gate_free(struct http_gate *g);

#endif
