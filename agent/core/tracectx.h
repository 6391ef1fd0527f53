/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * W3C trace context, version 00: the ids the tunnel's OPEN frame, nginx's
 * traceparent header, the audit log and the OTLP spans share, as lowercase
 * hex. All-zero ids are invalid (they would join unrelated flows in a trace
 * store), so none is ever made or accepted.
 */
#ifndef SLUICE_TRACECTX_H
#define SLUICE_TRACECTX_H

#include <stdbool.h>

#define TRACE_ID_HEX 32
#define SPAN_ID_HEX 16
/* "00-<trace id>-<span id>-<flags>" */
#define TRACEPARENT_LEN 55

struct tracectx {
	char trace_id[TRACE_ID_HEX + 1];
	char span_id[SPAN_ID_HEX + 1];
};

/* A new random trace with its first span: 0, or -EIO when the random
 * generator fails. */
int tracectx_new(struct tracectx *tc);
/* A new random span id in the same trace. */
int tracectx_span_new(char span_id[SPAN_ID_HEX + 1]);
/* true for a valid version-00 traceparent; *tc, when given, then holds its
 * trace id and parent (span) id. */
bool traceparent_parse(const char *s, struct tracectx *tc);
/* "00-<trace>-<span>-01": sampled, as every span sluice makes is exported. */
void traceparent_format(const struct tracectx *tc, char out[TRACEPARENT_LEN + 1]);

#endif
