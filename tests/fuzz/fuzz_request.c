// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The request heads a receiving agent watches on a flow to a protocol:
 * http service (agent/mesh/http_watch.c): bytes a peer sends, through
 * llhttp. The first byte picks read sizes; the rest is fed once whole and
 * once in those pieces, and both must hear the same heads and stop alike,
 * as a TCP stream splits anywhere. Every string a head hands out stays in
 * its bound.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "http_watch.h"

struct heard {
	unsigned long nr;
	unsigned long sum;		/* over every head: a digest of what it held */
};

static unsigned long digest(const char *s)
{
	unsigned long h = 5381;

	while (s && *s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static void on_head(void *ctx, const struct http_head *h)
{
	struct heard *hd = ctx;

	if (strlen(h->target) > HTTP_WATCH_TARGET_MAX ||
	    (h->host && strlen(h->host) > HTTP_WATCH_HOST_MAX) ||
	    (h->value && strlen(h->value) > HTTP_WATCH_VALUE_MAX))
		abort();
	hd->nr++;
	hd->sum += digest(h->method) ^ digest(h->target) * 3 ^ digest(h->host) * 5 ^
		   digest(h->value) * 7 ^ h->repeated;
}

static int run(const uint8_t *data, size_t size, size_t step, struct heard *hd)
{
	struct http_watch *w = http_watch_new("X-Sluice-Assertion", on_head, hd);
	int stopped = 0;

	if (!w)
		abort();
	for (size_t off = 0; off < size && !stopped; off += step)
		stopped = http_watch_feed(w, (const char *)data + off,
					  size - off < step ? size - off : step);
	if (stopped != (http_watch_error(w) != NULL) || http_watch_requests(w) != hd->nr)
		abort();
	if (stopped && http_watch_feed(w, "GET / HTTP/1.1\r\n\r\n", 18) != 1)
		abort();
	http_watch_free(w);
	return stopped;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct heard whole = {}, pieces = {};
	size_t step;

	if (!size)
		return 0;
	step = data[0] % 17 + 1;
	data++;
	size--;
	if (run(data, size, size ? size : 1, &whole) != run(data, size, step, &pieces) ||
	    whole.nr != pieces.nr || whole.sum != pieces.sum)
		abort();
	return 0;
}
