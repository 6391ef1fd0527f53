// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * llhttp calls back with pieces of each element as they arrive (a header
 * name may end in the next read), so every capture appends to a bounded
 * buffer and is judged when its element completes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "http_watch.h"

#define FIELD_MAX 64

enum capture {
	CAP_NONE,
	CAP_HOST,
	CAP_VALUE,
};

/* A bounded string; over: it outgrew max and is judged so. */
struct sbuf {
	size_t len;
	bool over;
};

struct http_watch {
	llhttp_t parser;
	http_watch_cb cb;
	void *ctx;
	char *header;
	const char *error;		/* the watch stopped */
	unsigned long requests;
	enum capture cap;
	int seen_value;			/* how often the captured header came */
	bool seen_host;
	struct sbuf field_s, target_s, host_s, value_s;
	char field[FIELD_MAX + 1];
	char target[HTTP_WATCH_TARGET_MAX + 1];
	char host[HTTP_WATCH_HOST_MAX + 1];
	char value[HTTP_WATCH_VALUE_MAX + 1];
};

static struct http_watch *of(llhttp_t *p)
{
	return p->data;
}

static void sbuf_add(struct sbuf *s, char *buf, size_t max, const char *at, size_t len)
{
	size_t room = max - s->len;

	if (s->over)
		return;
	if (len > room) {
		s->over = true;
		len = room;
	}
	memcpy(buf + s->len, at, len);
	s->len += len;
	buf[s->len] = '\0';
}

static int on_message_begin(llhttp_t *p)
{
	struct http_watch *w = of(p);

	w->target_s = w->host_s = w->value_s = w->field_s = (struct sbuf){};
	w->target[0] = w->host[0] = w->value[0] = w->field[0] = '\0';
	w->seen_value = 0;
	w->seen_host = false;
	w->cap = CAP_NONE;
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct http_watch *w = of(p);

	sbuf_add(&w->target_s, w->target, HTTP_WATCH_TARGET_MAX, at, len);
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_watch *w = of(p);

	sbuf_add(&w->field_s, w->field, FIELD_MAX, at, len);
	return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
	struct http_watch *w = of(p);

	w->cap = CAP_NONE;
	/* A repeated header's later copies are not captured: which one a
	 * service reads is its own business, and the head says it repeated. */
	if (!w->field_s.over && !strcasecmp(w->field, "host")) {
		w->cap = w->seen_host ? CAP_NONE : CAP_HOST;
		w->seen_host = true;
	} else if (!w->field_s.over && !strcasecmp(w->field, w->header)) {
		w->cap = w->seen_value ? CAP_NONE : CAP_VALUE;
		w->seen_value++;
	}
	w->field_s = (struct sbuf){};
	w->field[0] = '\0';
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_watch *w = of(p);

	if (w->cap == CAP_HOST)
		sbuf_add(&w->host_s, w->host, HTTP_WATCH_HOST_MAX, at, len);
	else if (w->cap == CAP_VALUE)
		sbuf_add(&w->value_s, w->value, HTTP_WATCH_VALUE_MAX, at, len);
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct http_watch *w = of(p);
	char target[HTTP_WATCH_TARGET_MAX + 1];
	struct http_head h = {
		.method = llhttp_method_name(llhttp_get_method(p)),
		.target = w->target,
		.host = w->seen_host && !w->host_s.over ? w->host : NULL,
		.value = w->seen_value && !w->value_s.over ? w->value : NULL,
		.repeated = w->seen_value > 1,
	};

	if (w->target_s.over) {
		memcpy(target, w->target, HTTP_WATCH_TARGET_MAX - 3);
		strcpy(target + HTTP_WATCH_TARGET_MAX - 3, "...");
		h.target = target;
	}
	w->requests++;
	w->cb(w->ctx, &h);
	return 0;
}

static const llhttp_settings_t settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_field_complete = on_header_field_complete,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
};

struct http_watch *http_watch_new(const char *header, http_watch_cb cb, void *ctx)
{
	struct http_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->header = strdup(header);
	if (!w->header) {
		free(w);
		return NULL;
	}
	w->cb = cb;
	w->ctx = ctx;
	llhttp_init(&w->parser, HTTP_REQUEST, &settings);
	w->parser.data = w;
	return w;
}

int http_watch_feed(struct http_watch *w, const char *buf, size_t len)
{
	llhttp_errno_t err;

	if (w->error)
		return 1;
	err = llhttp_execute(&w->parser, buf, len);
	if (err == HPE_OK)
		return 0;
	w->error = err == HPE_PAUSED_UPGRADE ? "upgrade" : llhttp_get_error_reason(&w->parser);
	if (!w->error)
		w->error = llhttp_errno_name(err);
	return 1;
}

const char *http_watch_error(const struct http_watch *w)
{
	return w->error;
}

unsigned long http_watch_requests(const struct http_watch *w)
{
	return w->requests;
}

void http_watch_free(struct http_watch *w)
{
	if (!w)
		return;
	free(w->header);
	free(w);
}
