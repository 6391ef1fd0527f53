// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <string.h>
#include <zlib.h>

#include "payload.h"

/* splitmix64: every 8-byte word of the stream is a hash of its index. */
static uint64_t word_at(uint64_t idx)
{
	uint64_t z = idx + 0x9e3779b97f4a7c15ull * (idx + 1);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill(uint8_t *buf, size_t len, uint64_t off)
{
	uint64_t w = word_at(off / 8);

	for (size_t i = 0; i < len; i++, off++) {
		if (!(off % 8))
			w = word_at(off / 8);
		buf[i] = w >> (8 * (off % 8));
	}
}

void payload_init(struct payload_stream *s)
{
	s->bytes = 0;
	s->crc = crc32(0, NULL, 0);
	s->mismatch_at = -1;
}

void payload_next(struct payload_stream *s, void *buf, size_t len)
{
	fill(buf, len, s->bytes);
	s->crc = crc32(s->crc, buf, len);
	s->bytes += len;
}

void payload_feed(struct payload_stream *s, const void *buf, size_t len)
{
	const uint8_t *got = buf;
	uint8_t want[4096];

	for (size_t done = 0; done < len && s->mismatch_at < 0;) {
		size_t n = len - done < sizeof(want) ? len - done : sizeof(want);

		fill(want, n, s->bytes + done);
		if (memcmp(want, got + done, n)) {
			for (size_t i = 0; i < n; i++) {
				if (want[i] != got[done + i]) {
					s->mismatch_at = s->bytes + done + i;
					break;
				}
			}
		}
		done += n;
	}
	s->crc = crc32(s->crc, buf, len);
	s->bytes += len;
}
