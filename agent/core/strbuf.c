// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "strbuf.h"
#include "utf8.h"

void strbuf_init(struct strbuf *b, char *initial, size_t size)
{
	*b = (struct strbuf){ .p = initial, .cap = initial ? size : 0, .initial = initial,
			      .initial_size = initial ? size : 0 };
	if (!initial && size) {
		b->p = malloc(size);
		b->cap = b->p ? size : 0;
		b->oom = !b->p;
	}
}

bool strbuf_grow(struct strbuf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (b->oom)
		return false;
	while (cap < b->len + n)
		cap *= 2;
	if (cap == b->cap)
		return true;
	p = b->p == b->initial ? malloc(cap) : realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	if (b->p && b->p == b->initial)
		memcpy(p, b->initial, b->len);
	b->p = p;
	b->cap = cap;
	return true;
}

void strbuf_u64(struct strbuf *b, uint64_t v)
{
	char d[20];
	int i = sizeof(d);

	do
		d[--i] = '0' + v % 10;
	while (v /= 10);
	strbuf_put(b, d + i, sizeof(d) - i);
}

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->p ? b->p + b->len : NULL, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	/* One more for the NUL vsnprintf writes. */
	if (b->len + n + 1 > b->cap) {
		if (!strbuf_grow(b, n + 1))
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += n;
}

char *strbuf_detach(struct strbuf *b, size_t *len)
{
	char *p = NULL;

	if (strbuf_grow(b, 1)) {
		b->p[b->len] = '\0';
		if (b->p != b->initial) {
			p = b->p;
			b->p = b->initial;
		} else {
			p = malloc(b->len + 1);
			if (p)
				memcpy(p, b->p, b->len + 1);
		}
		if (p && len)
			*len = b->len;
	}
	strbuf_release(b);
	return p;
}

void strbuf_release(struct strbuf *b)
{
	if (b->p != b->initial)
		free(b->p);
	strbuf_init(b, b->initial, b->initial_size);
}

/* Escapes for '"', '\\' and control characters only, UTF-8 kept as it
 * is: what jansson's compact dump writes. */
static void json_escaped(struct strbuf *l, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t run = 0;
	char esc[6];

	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		strbuf_put(l, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': case '\\': esc[1] = c; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			strbuf_put(l, esc, 6);
			continue;
		}
		strbuf_put(l, esc, 2);
	}
	strbuf_put(l, s + run, n - run);
}

void strbuf_json_str(struct strbuf *b, const char *s)
{
	char buf[STRBUF_JSON_STR_MAX];
	size_t len = utf8_copy(buf, sizeof(buf), s);

	strbuf_put(b, "\"", 1);
	json_escaped(b, buf, len);
	strbuf_put(b, "\"", 1);
}
