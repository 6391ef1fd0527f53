// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The tunnel's handshake frames as the peer's bytes arrive: the header
 * (frame_hdr_parse), then the payload it announces, decoded as the type the
 * header names (frame_open_decode, frame_verdict_decode). A frame that
 * decodes must encode back to one that decodes to the same fields: what
 * one agent accepts, its peer must be able to say.
 */
#include <stdlib.h>
#include <string.h>

#include "frame.h"

static void open_roundtrip(const struct frame_open *o)
{
	struct frame_open again;
	const char *why, *detail;
	uint8_t *buf;
	size_t len;
	int n;

	if (frame_open_encode(o, &buf, &len))
		return;
	n = frame_hdr_parse(buf, FRAME_OPEN, &why);
	if (n != (int)(len - FRAME_HDR_LEN) ||
	    frame_open_decode(buf + FRAME_HDR_LEN, n, &again, &detail) ||
	    memcmp(&again.dst, &o->dst, sizeof(o->dst)) || strcmp(again.src, o->src) ||
	    strcmp(again.token, o->token) || strcmp(again.traceparent, o->traceparent))
		abort();
	frame_open_release(&again);
	free(buf);
}

static void verdict_roundtrip(const struct frame_verdict *v)
{
	struct frame_verdict again;
	const char *why, *detail;
	uint8_t *buf;
	size_t len;
	int n;

	if (frame_verdict_encode(v, &buf, &len))
		return;
	n = frame_hdr_parse(buf, FRAME_VERDICT, &why);
	if (n != (int)(len - FRAME_HDR_LEN) ||
	    frame_verdict_decode(buf + FRAME_HDR_LEN, n, &again, &detail) ||
	    again.allow != v->allow || strcmp(again.reason, v->reason) ||
	    strcmp(again.rule, v->rule) || again.generation != v->generation)
		abort();
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum frame_type type;
	struct frame_verdict v;
	struct frame_open o;
	const char *why, *detail;
	int n;

	if (size < FRAME_HDR_LEN)
		return 0;
	type = data[5] == FRAME_VERDICT ? FRAME_VERDICT : FRAME_OPEN;
	n = frame_hdr_parse(data, type, &why);
	if (n < 0 || (size_t)n > size - FRAME_HDR_LEN)
		return 0;
	/* The payload is exactly what the receiver reads: no more, no NUL. */
	data += FRAME_HDR_LEN;
	if (type == FRAME_OPEN) {
		if (!frame_open_decode(data, n, &o, &detail))
			open_roundtrip(&o);
		frame_open_release(&o);
	} else if (!frame_verdict_decode(data, n, &v, &detail)) {
		verdict_roundtrip(&v);
	}
	return 0;
}
