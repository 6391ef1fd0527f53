// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * spancost: the agent's CPU per exported span, without the network: a
 * tunnel flow's audit record made into a span as otlp_audit_hook() does
 * (text into a stack buffer, one malloc'd copy for the queue), joined into
 * requests of BATCH spans as the exporter does, and freed.
 *
 *   spancost [SPANS]     (default 200000)
 *
 * Prints "US_PER_SPAN BYTES_PER_SPAN". scripts/bench.sh runs it on the
 * measured CPU and sets it beside the sluice-otlp rows' CPU per flow; the
 * POST itself (libcurl, one keep-alive connection, BATCH spans a request)
 * is in those rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "otlp.h"

#define BATCH 512

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	/* What node B's agent records for an allowed flow of the bench. */
	const struct audit_rec r = {
		.time_ns = 1700000000123456789,
		.direction = "inbound",
		.src_node = "node-a",
		.src_workload = "spiffe://acme.example/job/etl-1234",
		.peer = "10.77.0.1:40000",
		.dst = "10.77.0.2:80",
		.service = "api",
		.verdict = "allow",
		.reason = "ok",
		.rule = "jobs-to-api",
		.generation = 7,
		.jti = "5d2c7c1e-8a8b-4d6e-9d0c-3f1f2a7b9e11",
		.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
		.span_id = "00f067aa0ba902b7",
		.parent_span_id = "a3ce929d0e0e4736",
		.resumed = AUDIT_RESUMED_YES,
		.closed = true,
		.bytes_up = 78,
		.bytes_down = 235,
		.duration_ns = 1234567,
		.connect_us = 42,
		.srtt_us = 30,
		.status = "ok",
	};
	long n = argc > 1 ? atol(argv[1]) : 200000;
	char *spans[BATCH];
	size_t bytes = 0, len;
	double t0;

	if (n < BATCH) {
		fprintf(stderr, "usage: spancost [SPANS]   (SPANS at least %d)\n", BATCH);
		return 2;
	}
	n -= n % BATCH;
	t0 = now();
	for (long i = 0; i < n; i++) {
		char stack[2048];
		struct strbuf b, req;
		char *body;

		strbuf_init(&b, stack, sizeof(stack));
		otlp_span_from_audit(&b, &r);
		spans[i % BATCH] = strbuf_detach(&b, NULL);
		if (!spans[i % BATCH])
			return fprintf(stderr, "spancost: out of memory\n"), 1;
		if (i % BATCH != BATCH - 1)
			continue;
		strbuf_init(&req, NULL, 4096);
		otlp_request(&req, "node-b", spans, BATCH);
		body = strbuf_detach(&req, &len);
		if (!body)
			return fprintf(stderr, "spancost: out of memory\n"), 1;
		bytes += len;
		free(body);
		for (int j = 0; j < BATCH; j++)
			free(spans[j]);
	}
	printf("%.2f %.0f\n", (now() - t0) / n * 1e6, (double)bytes / n);
	return 0;
}
