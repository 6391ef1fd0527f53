// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_watch.h"

#define MAX_HEADS 8

struct heard {
	int nr;
	struct {
		char method[16];
		char target[HTTP_WATCH_TARGET_MAX + 1];
		char host[HTTP_WATCH_HOST_MAX + 1];
		char value[HTTP_WATCH_VALUE_MAX + 1];
		bool has_host, has_value, repeated;
	} h[MAX_HEADS];
};

static void on_head(void *ctx, const struct http_head *h)
{
	struct heard *hd = ctx;

	assert_true(hd->nr < MAX_HEADS);
	snprintf(hd->h[hd->nr].method, sizeof(hd->h[0].method), "%s", h->method);
	snprintf(hd->h[hd->nr].target, sizeof(hd->h[0].target), "%s", h->target);
	hd->h[hd->nr].has_host = h->host != NULL;
	hd->h[hd->nr].has_value = h->value != NULL;
	hd->h[hd->nr].repeated = h->repeated;
	if (h->host)
		snprintf(hd->h[hd->nr].host, sizeof(hd->h[0].host), "%s", h->host);
	if (h->value)
		snprintf(hd->h[hd->nr].value, sizeof(hd->h[0].value), "%s", h->value);
	hd->nr++;
}

/* Feeds s in pieces of step bytes (0: whole); returns the last feed's. */
static int feed(struct http_watch *w, const char *s, size_t len, size_t step)
{
	int ret = 0;

	if (!step)
		step = len;
	for (size_t off = 0; off < len && !ret; off += step)
		ret = http_watch_feed(w, s + off, len - off < step ? len - off : step);
	return ret;
}

static const char pipelined[] =
	"GET /api/x?q=1 HTTP/1.1\r\nHost: api.example\r\nx-sluice-assertion: aaa.bbb.ccc\r\n\r\n"
	"POST /api/y HTTP/1.1\r\nHost: api.example\r\nContent-Length: 40\r\n\r\n"
	"GET /smuggled HTTP/1.1\r\nHost: evil\r\n\r\n.."
	"PUT /api/z HTTP/1.1\r\nHost: api.example\r\nTransfer-Encoding: chunked\r\n"
	"X-Sluice-Assertion: ddd\r\n\r\n"
	"19\r\nGET /chunk HTTP/1.1\r\n\r\n..\r\n0\r\n\r\n"
	"DELETE /api/w HTTP/1.1\r\nHost: api.example\r\n\r\n";

/* Every request head is heard once, in order, whatever the reads' sizes;
 * bodies (by length or chunked) that look like requests are not. */
static void test_pipelined(void **state)
{
	static const size_t steps[] = { 0, 1, 2, 7, 64 };

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct heard hd = {};
		struct http_watch *w = http_watch_new("X-Sluice-Assertion", on_head, &hd);

		assert_non_null(w);
		assert_int_equal(feed(w, pipelined, sizeof(pipelined) - 1, steps[i]), 0);
		assert_null(http_watch_error(w));
		assert_int_equal(hd.nr, 4);
		assert_int_equal(http_watch_requests(w), 4);
		assert_string_equal(hd.h[0].method, "GET");
		assert_string_equal(hd.h[0].target, "/api/x?q=1");
		assert_string_equal(hd.h[0].host, "api.example");
		assert_true(hd.h[0].has_value);
		assert_string_equal(hd.h[0].value, "aaa.bbb.ccc");
		assert_string_equal(hd.h[1].method, "POST");
		assert_false(hd.h[1].has_value);
		assert_string_equal(hd.h[2].method, "PUT");
		assert_string_equal(hd.h[2].value, "ddd");
		assert_string_equal(hd.h[3].method, "DELETE");
		assert_string_equal(hd.h[3].target, "/api/w");
		http_watch_free(w);
	}
}

static void test_repeated_and_missing(void **state)
{
	static const char req[] = "GET / HTTP/1.1\r\nX-Sluice-Assertion: first\r\n"
				  "x-sluice-assertion: second\r\n\r\n";
	struct heard hd = {};
	struct http_watch *w = http_watch_new("X-Sluice-Assertion", on_head, &hd);

	assert_int_equal(feed(w, req, sizeof(req) - 1, 0), 0);
	assert_int_equal(hd.nr, 1);
	assert_false(hd.h[0].has_host);
	assert_true(hd.h[0].repeated);
	assert_string_equal(hd.h[0].value, "first");
	http_watch_free(w);
}

/* What would smuggle a request past a proxy stops the watch (strict mode),
 * and nothing after it is heard. */
static void test_smuggling_stops(void **state)
{
	static const char *const reqs[] = {
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/1.1\r\nBad@Name: a\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		struct heard hd = {};
		struct http_watch *w = http_watch_new("X-Sluice-Assertion", on_head, &hd);
		static const char next[] = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";

		feed(w, reqs[i], strlen(reqs[i]), 0);
		assert_int_equal(http_watch_feed(w, next, sizeof(next) - 1), 1);
		assert_non_null(http_watch_error(w));
		for (int j = 0; j < hd.nr; j++)
			assert_string_not_equal(hd.h[j].target, "/next");
		http_watch_free(w);
	}
}

static void test_upgrade_stops(void **state)
{
	static const char req[] = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
				  "Upgrade: websocket\r\n\r\nGET /not-http HTTP/1.1\r\n\r\n";
	struct heard hd = {};
	struct http_watch *w = http_watch_new("X-Sluice-Assertion", on_head, &hd);

	assert_int_equal(feed(w, req, sizeof(req) - 1, 0), 1);
	assert_string_equal(http_watch_error(w), "upgrade");
	assert_int_equal(hd.nr, 1);
	assert_string_equal(hd.h[0].target, "/ws");
	http_watch_free(w);
}

/* A value past the bound is not captured (no valid one is that long); a
 * target past it is cut with a mark. */
static void test_bounds(void **state)
{
	size_t vlen = HTTP_WATCH_VALUE_MAX + 1, tlen = HTTP_WATCH_TARGET_MAX + 100;
	char *req = malloc(vlen + tlen + 128);
	struct heard hd = {};
	struct http_watch *w = http_watch_new("X-Sluice-Assertion", on_head, &hd);
	int n;

	n = sprintf(req, "GET /");
	memset(req + n, 'p', tlen);
	n += tlen;
	n += sprintf(req + n, " HTTP/1.1\r\nX-Sluice-Assertion: ");
	memset(req + n, 'v', vlen);
	n += vlen;
	n += sprintf(req + n, "\r\n\r\n");
	assert_int_equal(feed(w, req, n, 1000), 0);
	assert_int_equal(hd.nr, 1);
	assert_false(hd.h[0].has_value);
	assert_int_equal(strlen(hd.h[0].target), HTTP_WATCH_TARGET_MAX);
	assert_string_equal(hd.h[0].target + HTTP_WATCH_TARGET_MAX - 3, "...");
	http_watch_free(w);
	free(req);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_repeated_and_missing),
		cmocka_unit_test(test_smuggling_stops),
		cmocka_unit_test(test_upgrade_stops),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests_name("http_watch", tests, NULL, NULL);
}
