/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Deterministic test bytes: the byte at stream offset o is a fixed function
 * of o, so a receiver checks every byte of 100 MiB on the fly without a
 * copy, and a checksum compares what both ends saw.
 */
#ifndef SLUICE_INTEG_PAYLOAD_H
#define SLUICE_INTEG_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

/* Both directions of one byte stream: bytes, CRC-32 (zlib) of them and the
 * offset of the first byte that differs from the pattern (-1: none). */
struct payload_stream {
	uint64_t bytes;
	uint32_t crc;
	int64_t mismatch_at;
};

void payload_init(struct payload_stream *s);
/* Fills buf with the next len bytes of s and accounts for them. */
void payload_next(struct payload_stream *s, void *buf, size_t len);
/* Accounts for len received bytes, checking them against the pattern. */
void payload_feed(struct payload_stream *s, const void *buf, size_t len);

#endif
