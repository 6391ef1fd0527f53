// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The HTTP gate driven as the proxy drives it, without sockets: a client's
 * bytes in, what the service receives out; the service's bytes in, what
 * the client receives out. The decision denies DELETE and anything under
 * /admin, answers 401 to a bad assertion, and passes the rest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_gate.h"
#include "strbuf.h"

struct sim {
	struct http_gate *g;
	struct strbuf in[2];		/* fed and not yet stepped over */
	size_t in_off[2];
	struct strbuf pending[2];	/* not yet taken by the gate */
	size_t pending_off[2];
	struct strbuf out[2];		/* REQ: the service got; RES: the client got */
	bool closed;
	int decided, done, refused;
	char refusal[64];
	int statuses[32];
	bool add_traceparent;
};

static void decide(void *ctx, const struct http_gate_req *r, struct http_exchange *x)
{
	struct sim *s = ctx;

	s->decided++;
	if (r->assertion && strcmp(r->assertion, "good")) {
		x->status = 401;
		x->reason = "assertion-bad-signature";
		snprintf(x->why, sizeof(x->why), "the caller assertion does not verify");
	} else if (!strcmp(r->method, "DELETE") || !strncmp(r->target, "/admin", 6)) {
		x->status = 403;
		x->reason = "policy-deny";
		snprintf(x->why, sizeof(x->why), "%s %s is denied by rule no-delete", r->method,
			 r->target);
	}
	if (s->add_traceparent && !r->traceparent) {
		x->add_traceparent = true;
		strcpy(x->trace_id, "0af7651916cd43dd8448eb211c80319c");
		strcpy(x->span_id, "b7ad6b7169203331");
	}
}

static void done(void *ctx, const struct http_exchange *x)
{
	struct sim *s = ctx;

	if (s->done < 32)
		s->statuses[s->done] = x->status;
	s->done++;
}

static void refused(void *ctx, const char *reason, const char *detail)
{
	struct sim *s = ctx;

	s->refused++;
	snprintf(s->refusal, sizeof(s->refusal), "%s", reason);
	assert_non_null(detail);
}

static const struct http_gate_ops ops = {
	.decide = decide,
	.done = done,
	.refused = refused,
};

static void sim_init(struct sim *s)
{
	struct http_gate_limits lim;

	memset(s, 0, sizeof(*s));
	http_gate_limits_default(&lim);
	lim.request_line = 200;
	lim.headers = 10;
	lim.header_size = 1024;
	s->g = http_gate_new(&lim, &ops, s);
	assert_non_null(s->g);
	for (int d = 0; d < 2; d++) {
		strbuf_init(&s->in[d], NULL, 256);
		strbuf_init(&s->pending[d], NULL, 256);
		strbuf_init(&s->out[d], NULL, 256);
	}
}

static void sim_free(struct sim *s)
{
	http_gate_free(s->g);
	for (int d = 0; d < 2; d++) {
		strbuf_release(&s->in[d]);
		strbuf_release(&s->pending[d]);
		strbuf_release(&s->out[d]);
	}
}

/* Steps dir as far as it goes; true when something moved. */
static bool sim_step(struct sim *s, int d)
{
	struct http_gate_step st;
	bool moved = false;
	size_t have;

	for (;;) {
		http_gate_step(s->g, d, &st);
		have = s->in[d].len - s->in_off[d];
		if (st.kind == HTTP_STEP_WAIT)
			return moved;
		if (st.kind == HTTP_STEP_CLOSE) {
			s->closed = true;
			return moved;
		}
		if (st.kind == HTTP_STEP_WRITE) {
			strbuf_put(&s->out[d], st.data, st.len);
			http_gate_done(s->g, d, st.len);
			moved = true;
			continue;
		}
		if (!have)
			return moved;
		if (st.len < have)
			have = st.len;
		if (st.kind == HTTP_STEP_PASS)
			strbuf_put(&s->out[d], s->in[d].p + s->in_off[d], have);
		s->in_off[d] += have;
		http_gate_done(s->g, d, have);
		moved = true;
	}
}

/* Feeds what is pending each way in pieces of chunk bytes, stepping both
 * ways, until nothing moves. */
static void sim_run(struct sim *s, size_t chunk)
{
	size_t n, took;
	bool moved;

	do {
		moved = false;
		for (int d = 0; d < 2; d++) {
			n = s->pending[d].len - s->pending_off[d];
			if (n > chunk)
				n = chunk;
			if (!n || s->closed)
				continue;
			took = http_gate_feed(s->g, d, s->pending[d].p + s->pending_off[d], n);
			strbuf_put(&s->in[d], s->pending[d].p + s->pending_off[d], took);
			s->pending_off[d] += took;
			moved |= took > 0;
		}
		moved |= sim_step(s, HTTP_GATE_REQ);
		moved |= sim_step(s, HTTP_GATE_RES);
		moved |= http_gate_kicked(s->g);
	} while (moved);
}

static void sim_send(struct sim *s, int d, const char *bytes, size_t len, size_t chunk)
{
	strbuf_put(&s->pending[d], bytes, len);
	sim_run(s, chunk);
}

#define CLIENT(s, str) sim_send(s, HTTP_GATE_REQ, str, sizeof(str) - 1, SIZE_MAX)
#define SERVER(s, str) sim_send(s, HTTP_GATE_RES, str, sizeof(str) - 1, SIZE_MAX)

static const char *got(struct sim *s, int d)
{
	strbuf_put(&s->out[d], "", 1);
	s->out[d].len--;
	return s->out[d].p ? s->out[d].p : "";
}

#define GET1 "GET /a HTTP/1.1\r\nHost: api\r\n\r\n"
#define DEL2 "DELETE /b HTTP/1.1\r\nHost: api\r\n\r\n"
#define GET3 "GET /c HTTP/1.1\r\nHost: api\r\n\r\n"
#define UP "GET /ws HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
#define SW "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
#define POST_CONTINUE "POST /p HTTP/1.1\r\nHost: api\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
#define HEAD_H "HEAD /h HTTP/1.1\r\nHost: api\r\n\r\n"
#define RESP(body) "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" body

static void pipelined_run(size_t chunk)
{
	static const char reqs[] = GET1 DEL2 GET3;
	struct sim s;

	sim_init(&s);
	sim_send(&s, HTTP_GATE_REQ, reqs, sizeof(reqs) - 1, chunk);
	assert_string_equal(got(&s, HTTP_GATE_REQ), GET1 GET3);
	assert_string_equal(got(&s, HTTP_GATE_RES), "");
	sim_send(&s, HTTP_GATE_RES, RESP("1") RESP("3"), 2 * (sizeof(RESP("1")) - 1), chunk);
	assert_non_null(strstr(got(&s, HTTP_GATE_RES), RESP("1") "HTTP/1.1 403 Forbidden\r\n"));
	assert_non_null(strstr(got(&s, HTTP_GATE_RES), "Connection: keep-alive\r\n\r\n"
						    "DELETE /b is denied by rule no-delete\n" RESP("3")));
	assert_false(s.closed);
	assert_int_equal(s.decided, 3);
	assert_int_equal(s.done, 3);
	assert_int_equal(s.statuses[0], 200);
	assert_int_equal(s.statuses[1], 403);
	assert_int_equal(s.statuses[2], 200);
	/* The connection carries on after the 403. */
	CLIENT(&s, GET1);
	assert_string_equal(got(&s, HTTP_GATE_REQ), GET1 GET3 GET1);
	sim_free(&s);
}

static void test_pipelined_deny_in_order(void **state)
{
	(void)state;
	pipelined_run(SIZE_MAX);
}

static void test_pipelined_byte_by_byte(void **state)
{
	(void)state;
	pipelined_run(1);
	pipelined_run(7);
}

static void test_keepalive_deny_then_allow(void **state)
{
	struct sim s;

	(void)state;
	sim_init(&s);
	CLIENT(&s, GET1);
	SERVER(&s, RESP("1"));
	CLIENT(&s, DEL2);
	assert_string_equal(got(&s, HTTP_GATE_REQ), GET1);
	assert_non_null(strstr(got(&s, HTTP_GATE_RES), RESP("1") "HTTP/1.1 403 Forbidden\r\n"));
	CLIENT(&s, GET3);
	SERVER(&s, RESP("3"));
	assert_string_equal(got(&s, HTTP_GATE_REQ), GET1 GET3);
	assert_false(s.closed);
	sim_free(&s);
}

static void test_denied_with_body_closes(void **state)
{
	static const char post[] = "POST /admin/x HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\n"
				   "\r\nhello" GET1;
	struct sim s;

	(void)state;
	sim_init(&s);
	CLIENT(&s, post);
	assert_string_equal(got(&s, HTTP_GATE_REQ), "");
	assert_non_null(strstr(got(&s, HTTP_GATE_RES), "403 Forbidden\r\n"));
	assert_non_null(strstr(got(&s, HTTP_GATE_RES), "Connection: close\r\n"));
	assert_true(s.closed);
	assert_int_equal(s.decided, 1);
	sim_free(&s);
}

static void test_unauthorized_assertion(void **state)
{
	struct sim s;

	(void)state;
	sim_init(&s);
	CLIENT(&s, "GET /a HTTP/1.1\r\nHost: api\r\nX-Sluice-Assertion: forged\r\n\r\n");
	assert_string_equal(got(&s, HTTP_GATE_REQ), "");
	assert_non_null(strstr(got(&s, HTTP_GATE_RES), "HTTP/1.1 401 Unauthorized\r\n"));
	assert_non_null(strstr(got(&s, HTTP_GATE_RES), "X-Sluice-Reason: assertion-bad-signature"));
	CLIENT(&s, "GET /a HTTP/1.1\r\nHost: api\r\nX-Sluice-Assertion: good\r\n\r\n");
	assert_non_null(strstr(got(&s, HTTP_GATE_REQ), "X-Sluice-Assertion: good"));
	sim_free(&s);
}

/* Each is refused with its reason; nothing reaches the service. */
static void test_smuggling_table(void **state)
{
	static const struct {
		const char *in;
		const char *reason;
		const char *status;		/* NULL: no answer */
	} t[] = {
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
		  "\r\n0\r\n\r\n", "bad-content-length", "400" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"
		  "\r\n0\r\n\r\n", "bad-content-length", "400" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		  "bad-content-length", "400" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
		  "bad-content-length", "400" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\na", "bad-content-length",
		  "400" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
		  "bad-transfer-encoding", "400" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n",
		  "bad-transfer-encoding", "400" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "bad-transfer-encoding", "400" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
		  "bad-header", "400" },
		{ "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
		  "obs-fold", "400" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n\tb\r\n\r\n", "obs-fold", "400" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nBad Name: a\r\n\r\n", "bad-header-name", "400" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01\r\n\r\n", "bad-header", "400" },
		{ "GET / HTTP/1.1\nHost: a\n\n", "bad-header", "400" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "repeated-host", "400" },
		{ "GET / HTTP/1.1\r\n\r\n", "no-host", "400" },
		{ "GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", "bad-target", "400" },
		{ "GET / HTTP/2.0\r\nHost: a\r\n\r\n", "bad-version", "505" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nX-Sluice-Assertion: good\r\n"
		  "X-Sluice-Assertion: good\r\n\r\n", "repeated-assertion", "400" },
		{ "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "http2-prior-knowledge", "400" },
		{ "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
		  "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
		  "http2-upgrade", "400" },
		{ "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "tls-client-hello", NULL },
		{ "SSH-2.0-OpenSSH_9.2\r\n", "not-http", "400" },
	};
	char status[16];
	struct sim s;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		sim_init(&s);
		sim_send(&s, HTTP_GATE_REQ, t[i].in, strlen(t[i].in), SIZE_MAX);
		if (strcmp(s.refusal, t[i].reason))
			fail_msg("case %zu: refused as \"%s\", want \"%s\"", i, s.refusal, t[i].reason);
		assert_int_equal(s.refused, 1);
		if (strstr(got(&s, HTTP_GATE_REQ), "HTTP/"))
			fail_msg("case %zu reached the service", i);
		assert_true(s.closed);
		if (t[i].status) {
			snprintf(status, sizeof(status), "HTTP/1.1 %s ", t[i].status);
			if (strncmp(got(&s, HTTP_GATE_RES), status, strlen(status)))
				fail_msg("case %zu answered \"%.20s\"", i, got(&s, HTTP_GATE_RES));
		} else {
			assert_string_equal(got(&s, HTTP_GATE_RES), "");
		}
		sim_free(&s);
	}
}

/* A body that turns out malformed after its head passed cannot be
 * answered in its turn (its response never comes): the flow is cut. */
static void test_bad_chunk_cuts(void **state)
{
	struct sim s;

	(void)state;
	sim_init(&s);
	CLIENT(&s, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n"
		   "hello\r\nzz\r\n");
	assert_string_equal(s.refusal, "bad-chunk");
	assert_true(s.closed);
	assert_string_equal(got(&s, HTTP_GATE_REQ), "POST / HTTP/1.1\r\nHost: a\r\n"
			    "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
	assert_string_equal(got(&s, HTTP_GATE_RES), "");
	sim_free(&s);
}

/* A service whose bytes are not responses: what was framed goes out, the
 * flow ends, and the client's next request never reaches the service. */
static void test_bad_response_cuts(void **state)
{
	struct http_gate_step st;
	struct sim s;

	(void)state;
	sim_init(&s);
	CLIENT(&s, GET1);
	SERVER(&s, RESP("1") "garbage\r\n\r\n");
	assert_true(s.closed);
	assert_string_equal(got(&s, HTTP_GATE_REQ), GET1);
	assert_string_equal(got(&s, HTTP_GATE_RES), RESP("1"));
	/* What the client sends before the flow is closed is dropped. */
	assert_int_equal(http_gate_feed(s.g, HTTP_GATE_REQ, GET3, strlen(GET3)), strlen(GET3));
	http_gate_step(s.g, HTTP_GATE_REQ, &st);
	assert_int_equal(st.kind, HTTP_STEP_DROP);
	assert_int_equal(st.len, strlen(GET3));
	sim_free(&s);
}

/* A refused request after allowed ones: they are answered first. */
static void test_refusal_waits_its_turn(void **state)
{
	struct sim s;

	(void)state;
	sim_init(&s);
	CLIENT(&s, GET1 "GARBAGE\r\n\r\n");
	assert_string_equal(got(&s, HTTP_GATE_REQ), GET1);
	assert_false(s.closed);
	assert_string_equal(got(&s, HTTP_GATE_RES), "");
	SERVER(&s, RESP("1"));
	assert_int_equal(strncmp(got(&s, HTTP_GATE_RES), RESP("1") "HTTP/1.1 400 Bad Request",
				 strlen(RESP("1") "HTTP/1.1 400 Bad Request")), 0);
	assert_true(s.closed);
	sim_free(&s);
}

static void test_chunked_body_passes(void **state)
{
	struct strbuf body, req;
	struct sim s;

	(void)state;
	strbuf_init(&body, NULL, 256);
	strbuf_init(&req, NULL, 256);
	strbuf_printf(&req, "PUT /up HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 300; i++) {
		strbuf_printf(&req, "%x;ext=1\r\n", 1000 + i);
		for (int j = 0; j < 1000 + i; j++)
			strbuf_put(&req, &"0123456789abcdef"[(i + j) & 15], 1);
		strbuf_printf(&req, "\r\n");
	}
	strbuf_printf(&req, "0\r\nTrailer: x\r\n\r\n" GET1);
	sim_init(&s);
	sim_send(&s, HTTP_GATE_REQ, req.p, req.len, 4093);
	assert_int_equal(s.in[HTTP_GATE_REQ].len, req.len);
	assert_int_equal(s.out[HTTP_GATE_REQ].len, req.len);
	assert_memory_equal(s.out[HTTP_GATE_REQ].p, req.p, req.len);
	assert_int_equal(s.decided, 2);
	sim_free(&s);
	strbuf_release(&body);
	strbuf_release(&req);
}

/* A refused trailer never reaches the service in part: the same bytes go
 * out (the body up to the last chunk) whether the request comes whole or
 * a byte at a time, and nothing of the trailer section. */
static void test_bad_trailer_cut(void **state)
{
	static const char body[] = "PUT /up HTTP/1.1\r\nHost: api\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n";
	static const char req[] = "PUT /up HTTP/1.1\r\nHost: api\r\n"
				  "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
				  "Trail er: x\r\n\r\n";
	size_t chunks[] = { sizeof(req) - 1, 1, 3 };

	(void)state;
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		struct sim s;

		sim_init(&s);
		sim_send(&s, HTTP_GATE_REQ, req, sizeof(req) - 1, chunks[i]);
		assert_int_equal(s.refused, 1);
		assert_string_equal(s.refusal, "bad-header-name");
		assert_true(s.closed);
		assert_int_equal(s.out[HTTP_GATE_REQ].len, sizeof(body) - 1);
		assert_memory_equal(s.out[HTTP_GATE_REQ].p, body, sizeof(body) - 1);
		sim_free(&s);
	}
}

static void test_upgrade(void **state)
{
	struct sim s;

	(void)state;
	sim_init(&s);
	CLIENT(&s, UP "\x81\x05" "DELETE /x HTTP/1.1\r\n\r\n");
	/* The bytes after it wait for the service's answer. */
	assert_string_equal(got(&s, HTTP_GATE_REQ), UP);
	SERVER(&s, SW "\x81\x02hi");
	assert_string_equal(got(&s, HTTP_GATE_REQ), UP "\x81\x05" "DELETE /x HTTP/1.1\r\n\r\n");
	assert_string_equal(got(&s, HTTP_GATE_RES), SW "\x81\x02hi");
	assert_true(http_gate_opaque(s.g));
	CLIENT(&s, "\x16\x03 anything");
	SERVER(&s, "HTTP/1.1 999 not parsed");
	assert_non_null(strstr(got(&s, HTTP_GATE_REQ), "\x16\x03 anything"));
	assert_non_null(strstr(got(&s, HTTP_GATE_RES), "999 not parsed"));
	assert_int_equal(s.decided, 1);
	assert_int_equal(s.refused, 0);
	sim_free(&s);
}

/* A service that says no to the upgrade keeps the connection HTTP: what
 * follows is decided as requests, not smuggled through. */
static void test_upgrade_refused_stays_http(void **state)
{
	struct sim s;

	(void)state;
	sim_init(&s);
	CLIENT(&s, UP DEL2 GET3);
	SERVER(&s, "HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n");
	assert_string_equal(got(&s, HTTP_GATE_REQ), UP GET3);
	assert_non_null(strstr(got(&s, HTTP_GATE_RES), "426 Upgrade Required\r\nContent-Length: 0"
						    "\r\n\r\nHTTP/1.1 403 Forbidden"));
	assert_false(http_gate_opaque(s.g));
	assert_int_equal(s.decided, 3);
	sim_free(&s);
}

static void test_continue_and_head(void **state)
{
	struct sim s;

	(void)state;
	sim_init(&s);
	CLIENT(&s, POST_CONTINUE);
	SERVER(&s, "HTTP/1.1 100 Continue\r\n\r\n");
	CLIENT(&s, "ok");
	SERVER(&s, RESP("x"));
	assert_int_equal(s.done, 1);
	assert_int_equal(s.statuses[0], 200);
	CLIENT(&s, HEAD_H GET1);
	/* The HEAD's Content-Length announces a body that never comes. */
	SERVER(&s, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" RESP("1"));
	assert_int_equal(s.done, 3);
	assert_string_equal(got(&s, HTTP_GATE_REQ), POST_CONTINUE "ok" HEAD_H GET1);
	sim_free(&s);
}

static void test_traceparent_added(void **state)
{
	static const char with[] = "GET /t HTTP/1.1\r\nHost: api\r\ntraceparent: "
				   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n";
	struct sim s;

	(void)state;
	sim_init(&s);
	s.add_traceparent = true;
	CLIENT(&s, "\r\n" GET1);
	assert_string_equal(got(&s, HTTP_GATE_REQ),
			    "\r\nGET /a HTTP/1.1\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-"
			    "b7ad6b7169203331-01\r\nHost: api\r\n\r\n");
	SERVER(&s, RESP("1"));
	CLIENT(&s, with);
	assert_non_null(strstr(got(&s, HTTP_GATE_REQ), with));
	sim_free(&s);
}

static void test_limits(void **state)
{
	char line[300];
	struct sim s;

	(void)state;
	sim_init(&s);
	snprintf(line, sizeof(line), "GET /%0250d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
	sim_send(&s, HTTP_GATE_REQ, line, strlen(line), 16);
	assert_string_equal(s.refusal, "request-line-too-long");
	assert_int_equal(strncmp(got(&s, HTTP_GATE_RES), "HTTP/1.1 414 ", 13), 0);
	sim_free(&s);

	sim_init(&s);
	CLIENT(&s, "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n"
		   "F: 1\r\nG: 1\r\nH: 1\r\nI: 1\r\nJ: 1\r\n\r\n");
	assert_string_equal(s.refusal, "too-many-headers");
	assert_int_equal(strncmp(got(&s, HTTP_GATE_RES), "HTTP/1.1 431 ", 13), 0);
	sim_free(&s);

	sim_init(&s);
	memset(line, 'x', sizeof(line));
	CLIENT(&s, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < 4; i++) {
		sim_send(&s, HTTP_GATE_REQ, "X-Long: ", 8, SIZE_MAX);
		sim_send(&s, HTTP_GATE_REQ, line, sizeof(line), SIZE_MAX);
		sim_send(&s, HTTP_GATE_REQ, "\r\n", 2, SIZE_MAX);
	}
	assert_string_equal(s.refusal, "header-too-large");
	assert_string_equal(got(&s, HTTP_GATE_REQ), "");
	sim_free(&s);
}

/* More pipelined requests than the gate holds: the rest wait for the
 * responses, and all are answered in order. */
static void test_depth(void **state)
{
	struct strbuf reqs;
	struct sim s;

	(void)state;
	strbuf_init(&reqs, NULL, 256);
	for (int i = 0; i < 40; i++)
		strbuf_printf(&reqs, "GET /%d HTTP/1.1\r\nHost: api\r\n\r\n", i);
	sim_init(&s);
	sim_send(&s, HTTP_GATE_REQ, reqs.p, reqs.len, SIZE_MAX);
	assert_int_equal(s.decided, HTTP_GATE_DEPTH - 1);
	for (int i = 0; i < 40; i++)
		SERVER(&s, RESP("r"));
	assert_int_equal(s.decided, 40);
	assert_int_equal(s.done, 40);
	assert_memory_equal(got(&s, HTTP_GATE_REQ), reqs.p, reqs.len);
	sim_free(&s);
	strbuf_release(&reqs);
}

/* A flow that ends with requests open reports each (status 0). */
static void test_free_ends_open_exchanges(void **state)
{
	struct sim s;

	(void)state;
	sim_init(&s);
	CLIENT(&s, GET1 GET3);
	http_gate_free(s.g);
	s.g = NULL;
	assert_int_equal(s.done, 2);
	assert_int_equal(s.statuses[0], 0);
	sim_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined_deny_in_order),
		cmocka_unit_test(test_pipelined_byte_by_byte),
		cmocka_unit_test(test_keepalive_deny_then_allow),
		cmocka_unit_test(test_denied_with_body_closes),
		cmocka_unit_test(test_unauthorized_assertion),
		cmocka_unit_test(test_smuggling_table),
		cmocka_unit_test(test_refusal_waits_its_turn),
		cmocka_unit_test(test_bad_chunk_cuts),
		cmocka_unit_test(test_bad_response_cuts),
		cmocka_unit_test(test_chunked_body_passes),
		cmocka_unit_test(test_bad_trailer_cut),
		cmocka_unit_test(test_upgrade),
		cmocka_unit_test(test_upgrade_refused_stays_http),
		cmocka_unit_test(test_continue_and_head),
		cmocka_unit_test(test_traceparent_added),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_free_ends_open_exchanges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
