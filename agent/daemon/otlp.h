/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Spans to an OpenTelemetry collector over OTLP/HTTP, JSON encoding
 * (POST <otlp.endpoint>/v1/traces, application/json; docs/tracing.md).
 *
 * A span is made from each audit record that has a trace and span id (a
 * tunnel flow either way, a flow proxied without a tunnel, an edge
 * decision), so the trace and the audit log never disagree. Making one
 * never blocks: it goes into a bounded queue, and one that does not fit is
 * dropped and counted. One exporter thread sends batches (otlp.batch spans,
 * or what is queued every otlp.interval), retries a failed export with
 * exponential backoff (1 s doubling to 30 s, five tries, as OTLP's
 * retryable statuses 429, 502, 503, 504 and transport errors allow), and
 * drops and counts a batch it gives up on or the collector rejects.
 */
#ifndef SLUICE_OTLP_H
#define SLUICE_OTLP_H

#include <stdbool.h>
#include <stdint.h>

#include "audit.h"
#include "config.h"
#include "errmsg.h"
#include "strbuf.h"

struct otlp;

struct otlp_stats {
	uint64_t queued; /* spans made */
	uint64_t exported; /* accepted by the collector */
	uint64_t dropped_queue_full; /* made while the queue was full */
	uint64_t dropped_export_failed; /* in batches given up on */
	uint64_t rejected; /* refused by the collector (4xx, partial success) */
	uint64_t requests_ok;
	uint64_t requests_failed; /* every failed try, retried or not */
	uint32_t queue_len;
	uint32_t queue_cap;
};

/* Starts the exporter thread for cfg (copied). node and version name the
 * resource. */
int otlp_new(const struct otlp_cfg *cfg, const char *node, struct otlp **out, struct errmsg *err);
/* The audit hook (audit_set_hook): a span for r when it has trace and
 * span ids. ctx is the struct otlp. */
void otlp_audit_hook(void *ctx, const struct audit_rec *r);
void otlp_get_stats(struct otlp *o, struct otlp_stats *out);
/* Sends what is queued (one try, at most 2 s), stops the thread and frees.
 * NULL: no-op. */
void otlp_free(struct otlp *o);

/* Appends the span of an audit record to b, as exported (one element of
 * ScopeSpans.spans, OTLP/JSON); false, appending nothing, without trace and
 * span ids. For the unit tests and otlp.c. */
bool otlp_span_from_audit(struct strbuf *b, const struct audit_rec *r);
/* Appends the ExportTraceServiceRequest around n spans' texts to b. */
void otlp_request(struct strbuf *b, const char *node, char *const *spans, unsigned int n);

#endif
