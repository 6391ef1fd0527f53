// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Two llhttp parsers, one per direction, each paused at every point where
 * the gate must act: a request's headers complete (decide it), a message
 * complete (the next bytes are the next head, or the next response). The
 * bytes a pause leaves unparsed are fed again, so every step knows exactly
 * which bytes it covers.
 *
 * Each direction keeps a FIFO of steps over the bytes fed: a request head
 * is held (no step) until decided, then becomes PASS (or PASS, WRITE of a
 * traceparent header, PASS) or DROP; body bytes follow as the head went.
 * Responses become PASS, and an answer made here is a WRITE queued when
 * its exchange is the oldest still open, so it goes out in its turn.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "clock.h"
#include "http_gate.h"
#include "strbuf.h"

#define SEGS (4 * HTTP_GATE_DEPTH)
#define FIELD_MAX 64
#define HOST_MAX 255			/* as l7_host_normalize() takes */
#define ASSERTION_MAX 8192
#define SMALL_MAX 128			/* traceparent, Transfer-Encoding, Upgrade */
#define ANSWER_MAX 512

enum cap {
	CAP_NONE,
	CAP_HOST,
	CAP_ASSERTION,
	CAP_TRACEPARENT,
	CAP_TE,
	CAP_UPGRADE,
	CAP_NR,
};

static const char *const cap_names[CAP_NR] = {
	[CAP_HOST] = "host",
	[CAP_ASSERTION] = "x-sluice-assertion",
	[CAP_TRACEPARENT] = "traceparent",
	[CAP_TE] = "transfer-encoding",
	[CAP_UPGRADE] = "upgrade",
};

static const size_t cap_max[CAP_NR] = {
	[CAP_HOST] = HOST_MAX,
	[CAP_ASSERTION] = ASSERTION_MAX,
	[CAP_TRACEPARENT] = SMALL_MAX,
	[CAP_TE] = SMALL_MAX,
	[CAP_UPGRADE] = SMALL_MAX,
};

/* A header value captured whole, or known to be longer than its max. */
struct capture {
	char *buf;
	size_t len;
	int seen;
	bool over;
};

struct seg {
	enum http_gate_step_kind kind;
	size_t len;
	char *data;			/* WRITE: malloc'd */
};

struct segq {
	struct seg s[SEGS];
	unsigned int head, nr;
	size_t off;			/* into the head WRITE */
};

enum rq_state {
	RQ_HEAD,			/* between requests or inside a head */
	RQ_BODY,			/* after a decided head */
	RQ_WAIT,			/* an upgrade request waits for its response */
	RQ_DISCARD,			/* refused or closing: nothing more passes */
	RQ_OPAQUE,			/* upgraded */
};

enum paused {
	P_NONE,
	P_HEADERS,
	P_TRAILER,			/* the last chunk: trailer fields follow */
	P_MESSAGE,
};

/* Why the request parser stopped, when the gate stopped it. */
struct refusal {
	int status;
	const char *reason;
	const char *detail;
};

struct http_gate {
	llhttp_t req, res;
	struct http_gate_limits lim;
	const struct http_gate_ops *ops;
	void *ctx;

	enum rq_state rq;
	enum paused paused;
	size_t held;			/* fed bytes of the head being parsed */
	/* A copy of them: a head that gets a traceparent goes out as one
	 * write (one TLS record), not three. */
	char *head;
	size_t head_cap;
	size_t head_bytes, line_len, cur_line;
	bool line_done, prev_lf, fed_any, body_pass, refused;
	unsigned int nr_headers;
	size_t target_len;
	struct refusal why;		/* why.reason set: a callback stopped it */
	/* The byte a span callback refused: where the request is cut, so
	 * that what reaches the service does not depend on where llhttp's
	 * spans happened to end (the end of a read). */
	const char *bad_at;
	/* A chunked request's trailer section, held until it parses whole:
	 * a refusal in it must cut the stream at the same byte however the
	 * reads fell, and a trailer line is refused only once llhttp has
	 * seen the byte after it. Written in one step at the message end. */
	bool in_trailer;
	char *trailer;
	size_t trailer_len;
	enum cap cap;
	char field[FIELD_MAX + 1];
	size_t field_len;
	struct capture caps[CAP_NR];
	char *target;			/* lim.request_line + 1 */

	struct http_exchange x[HTTP_GATE_DEPTH];
	unsigned int xhead, xnr;

	enum paused res_paused;
	bool interim, upgrading, abort, opaque, kick, closing;

	struct segq q[2];
};

void http_gate_limits_default(struct http_gate_limits *l)
{
	*l = (struct http_gate_limits){
		.request_line = 8192,
		.header_size = 32768,
		.headers = 100,
	};
}

static struct http_gate *of(llhttp_t *p)
{
	return p->data;
}

static struct http_exchange *front(struct http_gate *g)
{
	return g->xnr ? &g->x[g->xhead] : NULL;
}

static unsigned int seg_room(const struct segq *q)
{
	return SEGS - q->nr;
}

static struct seg *seg_tail(struct segq *q)
{
	return q->nr ? &q->s[(q->head + q->nr - 1) % SEGS] : NULL;
}

/* Room was checked before a parse began: a head needs at most 3, the body
 * after it merges into its last step. */
static void seg_add(struct segq *q, enum http_gate_step_kind kind, size_t len, char *data)
{
	struct seg *t = seg_tail(q);

	if (!len && kind != HTTP_STEP_CLOSE)
		return;
	if (t && !data && t->kind == kind && kind != HTTP_STEP_CLOSE) {
		t->len += len;
		return;
	}
	if (!seg_room(q)) {
		free(data);
		return;
	}
	q->s[(q->head + q->nr) % SEGS] = (struct seg){ .kind = kind, .len = len, .data = data };
	q->nr++;
}

static void seg_pop(struct segq *q)
{
	free(q->s[q->head].data);
	q->s[q->head] = (struct seg){};
	q->head = (q->head + 1) % SEGS;
	q->nr--;
	q->off = 0;
}

static void cap_reset(struct http_gate *g)
{
	for (int i = 0; i < CAP_NR; i++) {
		if (g->caps[i].buf)
			g->caps[i].buf[0] = '\0';
		g->caps[i].len = 0;
		g->caps[i].seen = 0;
		g->caps[i].over = false;
	}
	g->cap = CAP_NONE;
	g->field_len = 0;
	g->target_len = 0;
	g->target[0] = '\0';
}

static const char *cap_value(const struct http_gate *g, enum cap c)
{
	const struct capture *k = &g->caps[c];

	return k->seen == 1 && !k->over ? k->buf : NULL;
}

static int stop(struct http_gate *g, int status, const char *reason, const char *detail)
{
	g->why = (struct refusal){ status, reason, detail };
	return -1;
}

/* RFC 9110 5.6.2: tchar. */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c);
}

static int on_req_begin(llhttp_t *p)
{
	struct http_gate *g = of(p);

	cap_reset(g);
	g->nr_headers = 0;
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct http_gate *g = of(p);

	for (size_t i = 0; i < len; i++) {
		unsigned char c = at[i];

		if (c <= 0x20 || c >= 0x7f)
			return stop(g, 400, "bad-target", "a byte in the request-target that is not "
							  "visible ASCII");
	}
	if (g->target_len + len > g->lim.request_line)
		return stop(g, 414, "request-line-too-long", "the request-target is over "
							     "http.max_request_line");
	memcpy(g->target + g->target_len, at, len);
	g->target_len += len;
	g->target[g->target_len] = '\0';
	return 0;
}

static int on_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_gate *g = of(p);

	for (size_t i = 0; i < len; i++) {
		if (!is_tchar(at[i])) {
			g->bad_at = at + i;
			return stop(g, 400, "bad-header-name",
				    "a header name with a character that is not a token's "
				    "(whitespace in or before it?)");
		}
	}
	if (g->field_len + len <= FIELD_MAX)
		memcpy(g->field + g->field_len, at, len);
	g->field_len += len;
	return 0;
}

static int on_field_done(llhttp_t *p)
{
	struct http_gate *g = of(p);
	struct capture *k;

	if (++g->nr_headers > g->lim.headers)
		return stop(g, 431, "too-many-headers", "more header fields than http.max_headers");
	g->cap = CAP_NONE;
	if (g->field_len <= FIELD_MAX) {
		g->field[g->field_len] = '\0';
		for (int i = CAP_NONE + 1; i < CAP_NR; i++) {
			if (!strcasecmp(g->field, cap_names[i]))
				g->cap = i;
		}
	}
	g->field_len = 0;
	if (g->cap == CAP_NONE)
		return 0;
	k = &g->caps[g->cap];
	if (++k->seen > 1) {
		if (g->cap == CAP_HOST)
			return stop(g, 400, "repeated-host", "more than one Host header");
		if (g->cap == CAP_ASSERTION)
			return stop(g, 400, "repeated-assertion", "more than one X-Sluice-Assertion");
		if (g->cap == CAP_TE)
			return stop(g, 400, "bad-transfer-encoding",
				    "more than one Transfer-Encoding header");
	}
	return 0;
}

static int on_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_gate *g = of(p);
	struct capture *k = &g->caps[g->cap];
	size_t max = cap_max[g->cap];

	for (size_t i = 0; i < len; i++) {
		unsigned char c = at[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return stop(g, 400, "bad-header-value", "a control character in a header value");
	}
	if (g->cap == CAP_NONE || k->seen > 1 || k->over)
		return 0;
	if (k->len + len > max) {
		k->over = true;
		return 0;
	}
	memcpy(k->buf + k->len, at, len);
	k->len += len;
	k->buf[k->len] = '\0';
	return 0;
}

/* Whether the comma-separated list s holds the token t. */
static bool list_has(const char *s, const char *t)
{
	size_t n = strlen(t);

	while (*s) {
		s += strspn(s, " \t,");
		if (!strncasecmp(s, t, n) && (!s[n] || strchr(" \t,/", s[n])))
			return true;
		s += strcspn(s, ",");
	}
	return false;
}

static int on_value_done(llhttp_t *p)
{
	struct http_gate *g = of(p);
	const struct capture *k = &g->caps[g->cap];

	if (g->cap == CAP_TE && (k->over || strcasecmp(k->buf, "chunked")))
		return stop(g, 400, "bad-transfer-encoding",
			    "a Transfer-Encoding other than \"chunked\"");
	if (g->cap == CAP_UPGRADE && (k->over || list_has(k->buf, "h2c")))
		return stop(g, 400, "http2-upgrade",
			    "an h2c upgrade: HTTP/2 is not supported on protocol: http services");
	return 0;
}

static int on_req_headers(llhttp_t *p)
{
	of(p)->paused = P_HEADERS;
	return HPE_PAUSED;
}

static int on_chunk_header(llhttp_t *p)
{
	if (p->content_length)
		return 0;
	of(p)->paused = P_TRAILER;
	return HPE_PAUSED;
}

static int on_req_done(llhttp_t *p)
{
	of(p)->paused = P_MESSAGE;
	return HPE_PAUSED;
}

static const llhttp_settings_t req_settings = {
	.on_message_begin = on_req_begin,
	.on_url = on_url,
	.on_header_field = on_field,
	.on_header_field_complete = on_field_done,
	.on_header_value = on_value,
	.on_header_value_complete = on_value_done,
	.on_headers_complete = on_req_headers,
	.on_chunk_header = on_chunk_header,
	.on_message_complete = on_req_done,
};

static int on_res_begin(llhttp_t *p)
{
	of(p)->interim = false;
	return 0;
}

static int on_res_headers(llhttp_t *p)
{
	struct http_gate *g = of(p);
	struct http_exchange *x = front(g);
	int status = llhttp_get_status_code(p);

	g->interim = status >= 100 && status < 200 && status != 101;
	if (!x || g->interim)
		return 0;
	if (x->head)
		return 1;
	if (x->upgrade && !strcmp(x->method, "CONNECT") && status >= 200 && status < 300)
		return 2;
	return 0;
}

static void exchange_pop(struct http_gate *g, int status)
{
	struct http_exchange *x = front(g);

	x->status = status;
	x->end_ns = mono_ns();
	g->ops->done(g->ctx, x);
	g->xhead = (g->xhead + 1) % HTTP_GATE_DEPTH;
	g->xnr--;
	g->kick = true;
}

static int on_res_done(llhttp_t *p)
{
	struct http_gate *g = of(p);
	struct http_exchange *x = front(g);
	int status = llhttp_get_status_code(p);

	if (g->interim)
		return 0;
	g->res_paused = P_MESSAGE;
	if (!x)
		return HPE_PAUSED;
	if (x->upgrade) {
		g->upgrading = status == 101 || (!strcmp(x->method, "CONNECT") && status >= 200 &&
						 status < 300);
		/* Refused by the service: what follows is requests again. */
		if (!g->upgrading && g->rq == RQ_WAIT) {
			llhttp_resume_after_upgrade(&g->req);
			g->rq = RQ_HEAD;
		}
	}
	exchange_pop(g, status);
	return HPE_PAUSED;
}

static const llhttp_settings_t res_settings = {
	.on_message_begin = on_res_begin,
	.on_headers_complete = on_res_headers,
	.on_message_complete = on_res_done,
};

struct http_gate *http_gate_new(const struct http_gate_limits *lim,
				const struct http_gate_ops *ops, void *ctx)
{
	struct http_gate *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->lim = *lim;
	g->target = malloc(lim->request_line + 1);
	for (int i = CAP_NONE + 1; i < CAP_NR && g->target; i++) {
		g->caps[i].buf = malloc(cap_max[i] + 1);
		if (!g->caps[i].buf) {
			free(g->target);
			g->target = NULL;
		}
	}
	if (!g->target) {
		for (int i = 0; i < CAP_NR; i++)
			free(g->caps[i].buf);
		free(g);
		return NULL;
	}
	g->ops = ops;
	g->ctx = ctx;
	llhttp_init(&g->req, HTTP_REQUEST, &req_settings);
	llhttp_init(&g->res, HTTP_RESPONSE, &res_settings);
	g->req.data = g->res.data = g;
	cap_reset(g);
	return g;
}

static struct http_exchange *exchange_push(struct http_gate *g)
{
	struct http_exchange *x = &g->x[(g->xhead + g->xnr) % HTTP_GATE_DEPTH];

	*x = (struct http_exchange){ .start_ns = mono_ns() };
	g->xnr++;
	return x;
}

static char *answer_render(const struct http_exchange *x, size_t *len)
{
	static const struct {
		int status;
		const char *text;
	} texts[] = {
		{ 400, "Bad Request" },		{ 401, "Unauthorized" },
		{ 403, "Forbidden" },		{ 414, "URI Too Long" },
		{ 431, "Request Header Fields Too Large" },
		{ 505, "HTTP Version Not Supported" },
	};
	const char *text = "Refused";
	char *buf = malloc(ANSWER_MAX);
	int n;

	if (!buf)
		return NULL;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		if (texts[i].status == x->status)
			text = texts[i].text;
	}
	n = snprintf(buf, ANSWER_MAX,
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		     "X-Sluice-Reason: %s\r\nConnection: %s\r\n\r\n%s\n",
		     x->status, text, strlen(x->why) + 1, x->reason ? x->reason : "refused",
		     x->close ? "close" : "keep-alive", x->why);
	*len = n < ANSWER_MAX ? (size_t)n : ANSWER_MAX - 1;
	return buf;
}

/* The oldest exchanges answered here go out now: every response before
 * them is already queued. */
static void answers_queue(struct http_gate *g)
{
	struct segq *q = &g->q[HTTP_GATE_RES];
	struct http_exchange *x;
	size_t len = 0;
	char *a;

	while (!g->closing && (x = front(g)) && x->local && seg_room(q) >= 2) {
		if (x->status) {
			a = answer_render(x, &len);
			if (a)
				seg_add(q, HTTP_STEP_WRITE, len, a);
		}
		if (x->close) {
			seg_add(q, HTTP_STEP_CLOSE, 0, NULL);
			g->closing = true;
		}
		exchange_pop(g, x->status);
	}
}

/* The connection is refused from here on: an answer in its turn, then
 * the close. A request whose body already passed in part cannot be
 * answered in order (its response never comes): that cuts the flow once
 * what is queued is written. */
static void refuse(struct http_gate *g, int status, const char *reason, const char *detail)
{
	struct http_exchange *x;

	if (g->refused)
		return;
	g->refused = true;
	g->ops->refused(g->ctx, reason, detail);
	seg_add(&g->q[HTTP_GATE_REQ], HTTP_STEP_DROP, g->held, NULL);
	g->held = 0;
	if (g->rq == RQ_BODY && g->body_pass) {
		g->abort = true;
	} else {
		x = exchange_push(g);
		x->local = x->close = true;
		x->status = status;
		x->reason = reason;
		str_cut(x->why, sizeof(x->why), detail);
	}
	g->rq = RQ_DISCARD;
	answers_queue(g);
}

static void refuse_parse(struct http_gate *g, llhttp_errno_t err)
{
	const char *detail = llhttp_get_error_reason(&g->req);
	const char *reason = "bad-request";

	if (g->why.reason) {
		refuse(g, g->why.status, g->why.reason, g->why.detail);
		return;
	}
	switch (err) {
	case HPE_PAUSED_H2_UPGRADE:
		refuse(g, 400, "http2-prior-knowledge",
		       "the HTTP/2 preface: HTTP/2 is not supported on protocol: http services");
		return;
	case HPE_UNEXPECTED_CONTENT_LENGTH:
	case HPE_INVALID_CONTENT_LENGTH:
		reason = "bad-content-length";
		break;
	case HPE_INVALID_TRANSFER_ENCODING:
		reason = "bad-transfer-encoding";
		break;
	case HPE_INVALID_CHUNK_SIZE:
		reason = "bad-chunk";
		break;
	case HPE_INVALID_HEADER_TOKEN:
	case HPE_LF_EXPECTED:
	case HPE_CR_EXPECTED:
	case HPE_UNEXPECTED_SPACE:
		reason = "bad-header";
		break;
	case HPE_INVALID_METHOD:
	case HPE_INVALID_CONSTANT:
	case HPE_INVALID_VERSION:
		reason = "not-http";
		break;
	case HPE_INVALID_URL:
		reason = "bad-target";
		break;
	default:
		break;
	}
	refuse(g, 400, reason, detail ? detail : llhttp_errno_name(err));
}

/* The bytes of a head as they are parsed: the limits, and obsolete line
 * folding (a line that starts with whitespace), which llhttp takes. */
static bool head_scan(struct http_gate *g, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = buf[i];

		if (!g->line_done) {
			/* Empty lines before the request line are part of it
			 * here (RFC 9112 2.2 lets a server skip them). */
			g->line_len++;
			g->cur_line++;
			if (c == '\n') {
				g->line_done = g->cur_line > 2;
				g->cur_line = 0;
			} else if (g->line_len > g->lim.request_line) {
				refuse(g, 414, "request-line-too-long",
				       "the request line is over http.max_request_line");
				return false;
			}
		} else if (g->prev_lf && (c == ' ' || c == '\t')) {
			refuse(g, 400, "obs-fold", "a header continued on the next line "
						   "(obsolete line folding)");
			return false;
		}
		g->prev_lf = c == '\n';
	}
	g->head_bytes += n;
	if (g->head_bytes > g->lim.header_size) {
		refuse(g, 431, "header-too-large", "the request head is over http.max_header_size");
		return false;
	}
	return true;
}

/* What the gate itself refuses in a complete head; NULL: nothing. */
static const char *head_refusal(struct http_gate *g, int *status, const char **detail)
{
	const struct capture *host = &g->caps[CAP_HOST];

	*status = 400;
	if (llhttp_get_http_major(&g->req) != 1) {
		*status = 505;
		*detail = "only HTTP/1.x is spoken here";
		return "bad-version";
	}
	if (!host->seen && llhttp_get_http_minor(&g->req) >= 1) {
		*detail = "an HTTP/1.1 request without Host";
		return "no-host";
	}
	if (host->over) {
		*detail = "a Host header over 255 bytes";
		return "bad-host";
	}
	if (g->caps[CAP_ASSERTION].over) {
		*detail = "an X-Sluice-Assertion over 8192 bytes";
		return "bad-assertion";
	}
	return NULL;
}

/* The held head with a traceparent after its request line, as one WRITE
 * in place of its bytes; NULL on ENOMEM (it then passes without). */
static char *head_with_traceparent(const struct http_gate *g, const struct http_exchange *x,
				   size_t *len)
{
	char tp[TRACEPARENT_LEN + 32];
	int n = snprintf(tp, sizeof(tp), "traceparent: 00-%s-%s-01\r\n", x->trace_id, x->span_id);
	char *buf = malloc(g->held + n);

	if (!buf)
		return NULL;
	memcpy(buf, g->head, g->line_len);
	memcpy(buf + g->line_len, tp, n);
	memcpy(buf + g->line_len + n, g->head + g->line_len, g->held - g->line_len);
	*len = g->held + n;
	return buf;
}

static void head_pass(struct http_gate *g, struct http_exchange *x)
{
	struct segq *q = &g->q[HTTP_GATE_REQ];
	size_t len;
	char *head = x->add_traceparent ? head_with_traceparent(g, x, &len) : NULL;

	if (head) {
		seg_add(q, HTTP_STEP_WRITE, len, head);
		seg_add(q, HTTP_STEP_DROP, g->held, NULL);
	} else {
		seg_add(q, HTTP_STEP_PASS, g->held, NULL);
	}
}

/* Keeps the head's bytes as they are parsed; false on ENOMEM. */
static bool head_keep(struct http_gate *g, const char *buf, size_t n)
{
	char *h;

	/* A pause can leave nothing new (and no buffer yet). */
	if (!n)
		return true;
	if (g->held + n > g->head_cap) {
		size_t cap = g->head_cap ? g->head_cap : 1024;

		while (cap < g->held + n)
			cap *= 2;
		h = realloc(g->head, cap);
		if (!h)
			return false;
		g->head = h;
		g->head_cap = cap;
	}
	memcpy(g->head + g->held, buf, n);
	return true;
}

static void head_decide(struct http_gate *g)
{
	const char *tp = cap_value(g, CAP_TRACEPARENT), *reason, *detail;
	struct http_exchange *x;
	int status;
	struct http_gate_req r = {
		.method = llhttp_method_name(llhttp_get_method(&g->req)),
		.target = g->target,
		.host = cap_value(g, CAP_HOST),
		.assertion = cap_value(g, CAP_ASSERTION),
		.traceparent = tp && traceparent_parse(tp, NULL) ? tp : NULL,
		.keep_alive = llhttp_should_keep_alive(&g->req),
		.body = (g->req.flags & F_CHUNKED) || g->req.content_length,
		.upgrade = g->req.upgrade,
	};

	reason = head_refusal(g, &status, &detail);
	if (reason) {
		refuse(g, status, reason, detail);
		return;
	}
	x = exchange_push(g);
	str_cut(x->method, sizeof(x->method), r.method);
	x->head = llhttp_get_method(&g->req) == HTTP_HEAD;
	x->upgrade = r.upgrade;
	g->ops->decide(g->ctx, &r, x);
	if (!x->status) {
		head_pass(g, x);
		g->body_pass = true;
		g->rq = RQ_BODY;
	} else {
		x->local = true;
		x->close = !r.keep_alive || r.body || r.upgrade;
		seg_add(&g->q[HTTP_GATE_REQ], HTTP_STEP_DROP, g->held, NULL);
		g->body_pass = false;
		g->rq = x->close ? RQ_DISCARD : RQ_BODY;
	}
	g->held = 0;
	answers_queue(g);
}

static void trailer_drop(struct http_gate *g)
{
	free(g->trailer);
	g->trailer = NULL;
	g->trailer_len = 0;
	g->in_trailer = false;
}

/* Holds len bytes of the trailer section (dropped from the stream now,
 * written whole at the message end); false past http.max_header_size. */
static bool trailer_keep(struct http_gate *g, const char *buf, size_t len)
{
	char *t;

	if (g->trailer_len + len > g->lim.header_size)
		return false;
	t = realloc(g->trailer, g->trailer_len + len + 1);
	if (!t)
		return false;
	memcpy(t + g->trailer_len, buf, len);
	g->trailer = t;
	g->trailer_len += len;
	return true;
}

/* The message ended: its held trailer section goes out in its place. */
static void trailer_write(struct http_gate *g, struct segq *q)
{
	if (g->trailer_len && g->body_pass) {
		seg_add(q, HTTP_STEP_WRITE, g->trailer_len, g->trailer);
		g->trailer = NULL;
	}
	trailer_drop(g);
}

static void head_reset(struct http_gate *g)
{
	g->rq = RQ_HEAD;
	g->head_bytes = g->line_len = g->cur_line = 0;
	g->line_done = g->prev_lf = false;
}

static size_t feed_req(struct http_gate *g, const char *buf, size_t len)
{
	struct segq *q = &g->q[HTTP_GATE_REQ];
	size_t off = 0, pos;
	llhttp_errno_t err;
	bool in_head;

	if (!g->fed_any && len) {
		g->fed_any = true;
		if (buf[0] == 0x16) {
			/* No method starts with 0x16; a TLS record does. */
			refuse(g, 0, "tls-client-hello",
			       "a TLS ClientHello: the client speaks HTTPS to a plain HTTP service");
		}
	}
	for (;;) {
		switch (g->rq) {
		case RQ_OPAQUE:
			seg_add(q, HTTP_STEP_PASS, len - off, NULL);
			return len;
		case RQ_DISCARD:
			seg_add(q, HTTP_STEP_DROP, len - off, NULL);
			return len;
		case RQ_WAIT:
			return off;
		case RQ_HEAD:
			/* A whole head's steps, and a spare exchange for a
			 * refusal while its body flows. */
			if (!g->held && (g->xnr >= HTTP_GATE_DEPTH - 1 || seg_room(q) < 4))
				return off;
			break;
		case RQ_BODY:
			if (seg_room(q) < 2)
				return off;
			break;
		}
		in_head = g->rq == RQ_HEAD;
		g->paused = P_NONE;
		err = llhttp_execute(&g->req, buf + off, len - off);
		pos = err == HPE_OK ? len : (size_t)(llhttp_get_error_pos(&g->req) - buf);
		if (err == HPE_USER && g->bad_at)
			pos = g->bad_at - buf;
		g->bad_at = NULL;
		if (in_head) {
			if (!head_scan(g, buf + off, pos - off))
				continue;
			if (!head_keep(g, buf + off, pos - off)) {
				refuse(g, 400, "no-memory", "the agent is out of memory");
				continue;
			}
			g->held += pos - off;
		} else if (g->in_trailer) {
			seg_add(q, HTTP_STEP_DROP, pos - off, NULL);
			if (!trailer_keep(g, buf + off, pos - off)) {
				refuse(g, 431, "header-too-large",
				       "the request's trailer fields are over http.max_header_size");
				trailer_drop(g);
				off = pos;
				continue;
			}
		} else {
			seg_add(q, g->body_pass ? HTTP_STEP_PASS : HTTP_STEP_DROP, pos - off, NULL);
		}
		off = pos;
		if (err == HPE_OK)
			return len;
		if (err == HPE_PAUSED) {
			llhttp_resume(&g->req);
			if (g->paused == P_HEADERS) {
				head_decide(g);
			} else if (g->paused == P_TRAILER) {
				g->in_trailer = true;
			} else if (g->paused == P_MESSAGE && g->rq == RQ_BODY) {
				trailer_write(g, q);
				head_reset(g);
			}
			continue;
		}
		if (err == HPE_PAUSED_UPGRADE) {
			/* The decided upgrade request is complete: nothing after
			 * it is parsed until the service answers it. */
			if (g->rq == RQ_BODY || g->rq == RQ_HEAD) {
				head_reset(g);
				g->rq = RQ_WAIT;
			}
			continue;
		}
		refuse_parse(g, err);
	}
}

static size_t feed_res(struct http_gate *g, const char *buf, size_t len)
{
	struct segq *q = &g->q[HTTP_GATE_RES];
	size_t off = 0, pos;
	llhttp_errno_t err;

	for (;;) {
		answers_queue(g);
		if (g->opaque) {
			seg_add(q, HTTP_STEP_PASS, len - off, NULL);
			return len;
		}
		if (g->abort || g->closing) {
			seg_add(q, HTTP_STEP_DROP, len - off, NULL);
			return len;
		}
		if (seg_room(q) < 3)
			return off;
		g->res_paused = P_NONE;
		err = llhttp_execute(&g->res, buf + off, len - off);
		pos = err == HPE_OK ? len : (size_t)(llhttp_get_error_pos(&g->res) - buf);
		if (err == HPE_USER && g->bad_at)
			pos = g->bad_at - buf;
		g->bad_at = NULL;
		seg_add(q, HTTP_STEP_PASS, pos - off, NULL);
		off = pos;
		if (err == HPE_OK)
			return len;
		if (err == HPE_PAUSED) {
			llhttp_resume(&g->res);
			continue;
		}
		if (err == HPE_PAUSED_UPGRADE && g->upgrading) {
			g->opaque = true;
			g->rq = RQ_OPAQUE;
			g->kick = true;
			continue;
		}
		/* The service's bytes cannot be framed as responses: what was
		 * framed goes out, then the flow ends, and no request that
		 * could not be answered in order goes on. */
		g->abort = true;
		if (g->rq != RQ_DISCARD) {
			seg_add(&g->q[HTTP_GATE_REQ], HTTP_STEP_DROP, g->held, NULL);
			g->held = 0;
			g->rq = RQ_DISCARD;
			g->kick = true;
		}
	}
}

size_t http_gate_feed(struct http_gate *g, int dir, const char *buf, size_t len)
{
	return dir == HTTP_GATE_REQ ? feed_req(g, buf, len) : feed_res(g, buf, len);
}

void http_gate_eof(struct http_gate *g, int dir)
{
	if (dir == HTTP_GATE_REQ) {
		/* A head the client never finished is never sent on. */
		if (g->rq == RQ_HEAD) {
			seg_add(&g->q[HTTP_GATE_REQ], HTTP_STEP_DROP, g->held, NULL);
			g->held = 0;
		}
		return;
	}
	if (!g->opaque && !g->abort && !g->closing)
		llhttp_finish(&g->res);
}

void http_gate_step(struct http_gate *g, int dir, struct http_gate_step *s)
{
	struct segq *q = &g->q[dir];
	const struct seg *h;

	if (dir == HTTP_GATE_RES)
		answers_queue(g);
	if (!q->nr) {
		s->kind = dir == HTTP_GATE_RES && g->abort ? HTTP_STEP_CLOSE : HTTP_STEP_WAIT;
		s->len = 0;
		s->data = NULL;
		return;
	}
	h = &q->s[q->head];
	s->kind = h->kind;
	s->len = h->len - q->off;
	s->data = h->data ? h->data + q->off : NULL;
}

void http_gate_done(struct http_gate *g, int dir, size_t n)
{
	struct segq *q = &g->q[dir];
	struct seg *h;

	if (!q->nr)
		return;
	h = &q->s[q->head];
	if (h->kind == HTTP_STEP_WRITE) {
		q->off += n;
		if (q->off >= h->len)
			seg_pop(q);
		return;
	}
	h->len -= n < h->len ? n : h->len;
	if (!h->len)
		seg_pop(q);
}

bool http_gate_kicked(struct http_gate *g)
{
	bool k = g->kick;

	g->kick = false;
	return k;
}

bool http_gate_opaque(const struct http_gate *g)
{
	return g->opaque;
}

void http_gate_free(struct http_gate *g)
{
	if (!g)
		return;
	while (g->xnr)
		exchange_pop(g, 0);
	for (int d = 0; d < 2; d++) {
		while (g->q[d].nr)
			seg_pop(&g->q[d]);
	}
	if (g->ops->release)
		g->ops->release(g->ctx);
	for (int i = 0; i < CAP_NR; i++)
		free(g->caps[i].buf);
	free(g->target);
	free(g->head);
	free(g->trailer);
	free(g);
}
