// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * An IdP's raw HTTP responses: the input, byte for byte, is what a loopback
 * server answers to http_get() (http_post_form() when the first byte is
 * odd), so the status line, headers, chunking and body all come from the
 * fuzzer, through libcurl into http.c's body handling and its size bound.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "http.h"

/* Small, so that the bound is within reach of short inputs. */
#define MAX_BODY 1024

static char url[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/token", fuzz_http_start(0));
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const atomic_bool cancel = false;
	const struct http_opts opts = {
		.connect_timeout_ms = 2000,
		.timeout_ms = 2000,
		.max_body = MAX_BODY,
		.cancel = &cancel,
		.username = "job-1234",
		.password = "s3cret",
	};
	struct http_response r;
	struct errmsg err;
	int ret;

	if (!size)
		return 0;
	fuzz_http_respond(data + 1, size - 1);
	if (data[0] & 1)
		ret = http_post_form(url, "grant_type=client_credentials", &opts, &r, &err);
	else
		ret = http_get(url, &opts, &r, &err);
	if (!ret) {
		/* The promise callers rely on: a NUL-terminated body of len bytes. */
		if (r.len > MAX_BODY || r.body[r.len])
			abort();
		http_response_free(&r);
	}
	return 0;
}
