/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A growing byte buffer for text built in pieces (audit lines, /metrics).
 * Appends never fail at the call: an allocation failure sets oom, drops
 * every later append, and strbuf_detach() reports it. It may start in a
 * caller's buffer (a stack array) and moves to the heap only when that is
 * full.
 */
#ifndef SLUICE_STRBUF_H
#define SLUICE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct strbuf {
	char *p;
	size_t len, cap;
	bool oom;
	char *initial;		/* the caller's buffer, never freed here */
	size_t initial_size;
};

/* Starts empty in initial (size bytes), or on the heap when initial is
 * NULL; size is then the first allocation's. */
void strbuf_init(struct strbuf *b, char *initial, size_t size);
/* Makes room for n more bytes; false (and oom) when it cannot. */
bool strbuf_grow(struct strbuf *b, size_t n);

static inline void strbuf_put(struct strbuf *b, const void *s, size_t n)
{
	if (!n || (b->len + n > b->cap && !strbuf_grow(b, n)))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static inline void strbuf_puts(struct strbuf *b, const char *s)
{
	strbuf_put(b, s, strlen(s));
}

/* src into dst[size], cut to fit and NUL-terminated, as snprintf() with
 * "%s" would, at a fraction of its cost (a request's fields, per request). */
static inline void str_cut(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* v in decimal. */
void strbuf_u64(struct strbuf *b, uint64_t v);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Longest string strbuf_json_str() keeps, in bytes with its NUL. */
#define STRBUF_JSON_STR_MAX 1024

/* s as a JSON string, quoted and escaped. Whatever s holds becomes valid
 * UTF-8 first (utf8_copy(), cut at STRBUF_JSON_STR_MAX): one member that
 * could not be encoded would cost the whole document. */
void strbuf_json_str(struct strbuf *b, const char *s);

/* The text, NUL-terminated and malloc'd (*len bytes without the NUL), or
 * NULL when an append failed (-ENOMEM); the buffer is empty again. */
char *strbuf_detach(struct strbuf *b, size_t *len);
/* Frees what the buffer allocated; it is empty again. */
void strbuf_release(struct strbuf *b);

#endif
