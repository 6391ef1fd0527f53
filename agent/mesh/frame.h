/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The tunnel handshake frames (docs/tunnel.md). Inside the agents' TLS 1.3
 * connection, before any application byte, the outbound agent sends one
 * OPEN and the inbound agent answers one VERDICT:
 *
 *   offset  size  field
 *        0     4  magic "SLCE"
 *        4     1  version, FRAME_VERSION
 *        5     1  type: 1 OPEN, 2 VERDICT
 *        6     2  reserved, zero
 *        8     4  payload length, big endian, at most FRAME_MAX_PAYLOAD
 *       12     n  payload: one JSON object, UTF-8
 *
 * OPEN:    {"dst": "10.99.0.2:5432", "src": "spiffe://td/job/1234",
 *           "token": "<JWT>", "traceparent": "00-<32 hex>-<16 hex>-01"}
 * VERDICT: {"verdict": "allow"|"deny", "reason": "ok"|<reason code>,
 *           "rule": "name" (optional), "generation": N}
 *
 * Unknown payload keys are ignored, so a later version 1 sender may add
 * fields; anything that changes the meaning of a field bumps the version.
 * Every parse error has a stable reason code (the `why` out-parameters),
 * which the receiver sends back in a deny VERDICT and writes to the audit
 * log.
 */
#ifndef SLUICE_FRAME_H
#define SLUICE_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tracectx.h"

#define FRAME_MAGIC "SLCE"
#define FRAME_VERSION 1
#define FRAME_HDR_LEN 12
#define FRAME_MAX_PAYLOAD (16 * 1024)
#define FRAME_ID_MAX 256
#define FRAME_REASON_MAX 64
#define FRAME_TRACEPARENT_LEN TRACEPARENT_LEN

enum frame_type {
	FRAME_OPEN = 1,
	FRAME_VERDICT = 2,
};

/* Stable reason codes for frames that cannot be read. */
#define FRAME_BAD_MAGIC "bad-magic"
#define FRAME_BAD_VERSION "unsupported-version"
#define FRAME_BAD_TYPE "unexpected-frame"
#define FRAME_TOO_LARGE "frame-too-large"
#define FRAME_MALFORMED "malformed-frame"
#define FRAME_TRUNCATED "truncated-frame"

struct frame_open {
	struct sockaddr_storage dst;
	char src[FRAME_ID_MAX];
	char *token;				/* decoded: malloc'd, see frame_open_release */
	char traceparent[FRAME_TRACEPARENT_LEN + 1]; /* "" when absent */
};

struct frame_verdict {
	int allow;
	char reason[FRAME_REASON_MAX];
	char rule[FRAME_REASON_MAX];		/* "" when none */
	uint64_t generation;
};

/*
 * Checks a frame header (FRAME_HDR_LEN bytes). Returns the payload length,
 * or -EBADMSG with *why set (bad magic, unknown version, a type other than
 * want, a payload over FRAME_MAX_PAYLOAD or empty).
 */
int frame_hdr_parse(const uint8_t *hdr, enum frame_type want, const char **why);

/* Encodes a frame, header and payload, into a malloc'd buffer. */
int frame_open_encode(const struct frame_open *o, uint8_t **out, size_t *len);
int frame_verdict_encode(const struct frame_verdict *v, uint8_t **out, size_t *len);

/*
 * Decodes a payload of len bytes. -EBADMSG (reason FRAME_MALFORMED) with
 * *detail naming the field that is missing, of the wrong type or too long;
 * -ENOMEM. A decoded OPEN owns its token: frame_open_release() wipes and
 * frees it.
 */
int frame_open_decode(const uint8_t *buf, size_t len, struct frame_open *o, const char **detail);
void frame_open_release(struct frame_open *o);
int frame_verdict_decode(const uint8_t *buf, size_t len, struct frame_verdict *v,
			 const char **detail);

/* A W3C traceparent with a new random trace and span id, sampled. */
int frame_traceparent_new(char out[FRAME_TRACEPARENT_LEN + 1]);

#endif
