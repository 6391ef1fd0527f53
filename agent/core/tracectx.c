// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <openssl/rand.h>

#include "tracectx.h"

/*
 * Ids need to be unique and unguessable enough not to collide across
 * agents, not secret: a xoshiro128+-style generator per thread, seeded
 * from the CSPRNG once. RAND_bytes() per span cost a request through the
 * HTTP gate about 1 us (its DRBG's locks, parameter lookups and a getpid()
 * for fork safety), half of the gate's user time.
 */
static __thread uint64_t rng[2];
static pthread_once_t rng_once = PTHREAD_ONCE_INIT;

/* A forked child must not repeat its parent's ids: it seeds anew. */
static void rng_forget(void)
{
	rng[0] = rng[1] = 0;
}

static void rng_atfork(void)
{
	pthread_atfork(NULL, NULL, rng_forget);
}

static int rng_next(uint64_t *out)
{
	uint64_t s0, s1;

	if (!(rng[0] | rng[1])) {
		pthread_once(&rng_once, rng_atfork);
		if (RAND_bytes((unsigned char *)rng, sizeof(rng)) != 1)
			return -EIO;
	}
	s0 = rng[0];
	s1 = rng[1];
	*out = s0 + s1;
	s1 ^= s0;
	rng[0] = ((s0 << 24) | (s0 >> 40)) ^ s1 ^ (s1 << 16);
	rng[1] = (s1 << 37) | (s1 >> 27);
	return 0;
}

static int random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char id[16];
	uint64_t v;

	for (size_t i = 0; i < nbytes; i += 8) {
		if (rng_next(&v))
			return -EIO;
		memcpy(id + i, &v, 8);
	}
	id[0] |= 1;
	for (size_t i = 0; i < nbytes; i++) {
		*out++ = hex[id[i] >> 4];
		*out++ = hex[id[i] & 15];
	}
	*out = '\0';
	return 0;
}

int tracectx_new(struct tracectx *tc)
{
	return random_hex(tc->trace_id, TRACE_ID_HEX / 2)
		   ?: random_hex(tc->span_id, SPAN_ID_HEX / 2);
}

int tracectx_span_new(char span_id[SPAN_ID_HEX + 1])
{
	return random_hex(span_id, SPAN_ID_HEX / 2);
}

static bool all_zero(const char *s, size_t len)
{
	return strspn(s, "0") >= len;
}

bool traceparent_parse(const char *s, struct tracectx *tc)
{
	static const char shape[] = "00-################################-################-##";

	if (strlen(s) != TRACEPARENT_LEN)
		return false;
	for (int i = 0; i < TRACEPARENT_LEN; i++) {
		if (shape[i] == '#' ? !strchr("0123456789abcdef", s[i]) || !s[i] : s[i] != shape[i])
			return false;
	}
	if (all_zero(s + 3, TRACE_ID_HEX) || all_zero(s + 36, SPAN_ID_HEX))
		return false;
	if (tc) {
		memcpy(tc->trace_id, s + 3, TRACE_ID_HEX);
		tc->trace_id[TRACE_ID_HEX] = '\0';
		memcpy(tc->span_id, s + 36, SPAN_ID_HEX);
		tc->span_id[SPAN_ID_HEX] = '\0';
	}
	return true;
}

void traceparent_format(const struct tracectx *tc, char out[TRACEPARENT_LEN + 1])
{
	snprintf(out, TRACEPARENT_LEN + 1, "00-%s-%s-01", tc->trace_id, tc->span_id);
}
