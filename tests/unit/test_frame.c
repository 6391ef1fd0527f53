// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The tunnel handshake frames (docs/tunnel.md): OPEN and VERDICT round
 * trips, every header refusal with its reason code, every payload refusal
 * with the field it names, and a fixed-seed mutation loop over valid frames
 * that the decoder must survive (run it under SAN=1). No privileges.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "frame.h"

#define SRC "spiffe://acme.example/job/1234"
#define TOKEN "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmUifQ.c2lnbmF0dXJl"
#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define NOT_OBJECT "payload is not a JSON object"
#define FUZZ_ROUNDS 20000

/* A copy of exactly len bytes: no terminating NUL for the decoder to lean
 * on, and reading past it is an ASan report. */
static uint8_t *exact_copy(const char *s, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);

	assert_non_null(buf);
	memcpy(buf, s, len);
	return buf;
}

static void open_fill(struct frame_open *o, const char *dst, const char *traceparent)
{
	memset(o, 0, sizeof(*o));
	assert_int_equal(parse_sockaddr(dst, &o->dst), 0);
	strcpy(o->src, SRC);
	o->token = TOKEN;
	strcpy(o->traceparent, traceparent);
}

/* Checks the header encode wrote and returns the payload length it announces. */
static size_t check_hdr(const uint8_t *buf, size_t len, enum frame_type type)
{
	const char *why = NULL;
	uint32_t be;

	assert_true(len > FRAME_HDR_LEN);
	assert_memory_equal(buf, "SLCE", 4);
	assert_int_equal(buf[4], FRAME_VERSION);
	assert_int_equal(buf[5], type);
	assert_int_equal(buf[6], 0);
	assert_int_equal(buf[7], 0);
	memcpy(&be, buf + 8, 4);
	assert_int_equal(ntohl(be), len - FRAME_HDR_LEN);
	assert_int_equal(frame_hdr_parse(buf, type, &why), len - FRAME_HDR_LEN);
	assert_null(why);
	return len - FRAME_HDR_LEN;
}

static void open_round_trip(const char *dst, const char *traceparent)
{
	struct frame_open in, out;
	const char *detail = NULL;
	char got[SOCKADDR_STR_LEN];
	uint8_t *buf = NULL;
	size_t len, n;

	open_fill(&in, dst, traceparent);
	assert_int_equal(frame_open_encode(&in, &buf, &len), 0);
	n = check_hdr(buf, len, FRAME_OPEN);
	/* An absent traceparent is left out, not sent empty. */
	assert_int_equal(memmem(buf, len, "traceparent", 11) != NULL, traceparent[0] != 0);

	assert_int_equal(frame_open_decode(buf + FRAME_HDR_LEN, n, &out, &detail), 0);
	assert_null(detail);
	assert_string_equal(format_sockaddr(&out.dst, got, sizeof(got)), dst);
	assert_memory_equal(&out.dst, &in.dst, sizeof(out.dst));
	assert_string_equal(out.src, SRC);
	assert_string_equal(out.token, TOKEN);
	assert_string_equal(out.traceparent, traceparent);
	frame_open_release(&out);
	assert_null(out.token);
	/* Twice is harmless: an error path may release what it never filled. */
	frame_open_release(&out);
	free(buf);
}

static void test_open_ipv4_traceparent(void **state)
{
	open_round_trip("10.99.0.2:5432", TRACEPARENT);
}

static void test_open_ipv4_no_traceparent(void **state)
{
	open_round_trip("10.99.0.2:5432", "");
}

static void test_open_ipv6_traceparent(void **state)
{
	open_round_trip("[fd00:99::2]:8443", TRACEPARENT);
}

static void test_open_ipv6_no_traceparent(void **state)
{
	open_round_trip("[::1]:1", "");
}

static void verdict_round_trip(const struct frame_verdict *in)
{
	struct frame_verdict out;
	const char *detail = NULL;
	uint8_t *buf = NULL;
	size_t len, n;

	assert_int_equal(frame_verdict_encode(in, &buf, &len), 0);
	n = check_hdr(buf, len, FRAME_VERDICT);
	assert_int_equal(memmem(buf, len, "\"rule\"", 6) != NULL, in->rule[0] != 0);
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(frame_verdict_decode(buf + FRAME_HDR_LEN, n, &out, &detail), 0);
	assert_null(detail);
	assert_int_equal(out.allow, in->allow);
	assert_string_equal(out.reason, in->reason);
	assert_string_equal(out.rule, in->rule);
	assert_int_equal(out.generation, in->generation);
	free(buf);
}

static void test_verdict_allow_rule(void **state)
{
	struct frame_verdict v = { .allow = 1, .reason = "ok", .rule = "jobs-read-warehouse",
				   .generation = 7 };

	verdict_round_trip(&v);
}

static void test_verdict_deny_no_rule(void **state)
{
	struct frame_verdict v = { .allow = 0, .reason = "default-deny", .generation = 0 };

	verdict_round_trip(&v);
	v.generation = 4294967295u;
	strcpy(v.reason, "policy-deny");
	strcpy(v.rule, "no-notebooks");
	verdict_round_trip(&v);
}

/* The longest fields that fit go through whole. */
static void test_fields_at_their_limits(void **state)
{
	struct frame_verdict v = { .allow = 0 };
	struct frame_open o, out;
	const char *detail = NULL;
	uint8_t *buf = NULL;
	size_t len;

	open_fill(&o, "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", TRACEPARENT);
	memset(o.src, 's', FRAME_ID_MAX - 1);
	o.src[FRAME_ID_MAX - 1] = '\0';
	assert_int_equal(frame_open_encode(&o, &buf, &len), 0);
	assert_int_equal(frame_open_decode(buf + FRAME_HDR_LEN, len - FRAME_HDR_LEN, &out,
					   &detail),
			 0);
	assert_memory_equal(&out.dst, &o.dst, sizeof(o.dst));
	assert_string_equal(out.src, o.src);
	frame_open_release(&out);
	free(buf);

	memset(v.reason, 'r', FRAME_REASON_MAX - 1);
	memset(v.rule, 'u', FRAME_REASON_MAX - 1);
	verdict_round_trip(&v);
}

/* A payload that would not fit a frame is not sent truncated. */
static void test_encode_too_large(void **state)
{
	static char token[FRAME_MAX_PAYLOAD + 1];
	struct frame_open o;
	uint8_t *buf = NULL;
	size_t len = 0;

	open_fill(&o, "10.99.0.2:5432", "");
	memset(token, 'a', sizeof(token) - 1);
	o.token = token;
	assert_int_equal(frame_open_encode(&o, &buf, &len), -EMSGSIZE);
	assert_null(buf);
}

struct hdr_case {
	uint8_t hdr[FRAME_HDR_LEN];
	enum frame_type want;
	int ret;
	const char *why;
};

#define HDR(m0, m1, m2, m3, ver, type, r0, r1, l0, l1, l2, l3) \
	{ m0, m1, m2, m3, ver, type, r0, r1, l0, l1, l2, l3 }

static void test_hdr_refusals(void **state)
{
	static const struct hdr_case cases[] = {
		/* Each rule alone. */
		{ HDR('S', 'L', 'C', 'E', 1, 1, 0, 0, 0, 0, 0, 1), FRAME_OPEN, 1, NULL },
		{ HDR('S', 'L', 'C', 'E', 1, 2, 0, 0, 0, 0, 0x40, 0), FRAME_VERDICT, 16384, NULL },
		{ HDR('S', 'L', 'C', 'X', 1, 1, 0, 0, 0, 0, 0, 9), FRAME_OPEN, -EBADMSG,
		  FRAME_BAD_MAGIC },
		{ HDR('s', 'l', 'c', 'e', 1, 1, 0, 0, 0, 0, 0, 9), FRAME_OPEN, -EBADMSG,
		  FRAME_BAD_MAGIC },
		{ HDR('G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P', '/', '1'), FRAME_OPEN,
		  -EBADMSG, FRAME_BAD_MAGIC },
		{ HDR('S', 'L', 'C', 'E', 0, 1, 0, 0, 0, 0, 0, 9), FRAME_OPEN, -EBADMSG,
		  FRAME_BAD_VERSION },
		{ HDR('S', 'L', 'C', 'E', 2, 1, 0, 0, 0, 0, 0, 9), FRAME_OPEN, -EBADMSG,
		  FRAME_BAD_VERSION },
		{ HDR('S', 'L', 'C', 'E', 1, 2, 0, 0, 0, 0, 0, 9), FRAME_OPEN, -EBADMSG,
		  FRAME_BAD_TYPE },
		{ HDR('S', 'L', 'C', 'E', 1, 1, 0, 0, 0, 0, 0, 9), FRAME_VERDICT, -EBADMSG,
		  FRAME_BAD_TYPE },
		{ HDR('S', 'L', 'C', 'E', 1, 0, 0, 0, 0, 0, 0, 9), FRAME_OPEN, -EBADMSG,
		  FRAME_BAD_TYPE },
		{ HDR('S', 'L', 'C', 'E', 1, 3, 0, 0, 0, 0, 0, 9), FRAME_VERDICT, -EBADMSG,
		  FRAME_BAD_TYPE },
		{ HDR('S', 'L', 'C', 'E', 1, 1, 1, 0, 0, 0, 0, 9), FRAME_OPEN, -EBADMSG,
		  FRAME_MALFORMED },
		{ HDR('S', 'L', 'C', 'E', 1, 1, 0, 0x80, 0, 0, 0, 9), FRAME_OPEN, -EBADMSG,
		  FRAME_MALFORMED },
		{ HDR('S', 'L', 'C', 'E', 1, 1, 0, 0, 0, 0, 0x40, 1), FRAME_OPEN, -EBADMSG,
		  FRAME_TOO_LARGE },
		/* 1 MiB, and the largest length there is. */
		{ HDR('S', 'L', 'C', 'E', 1, 1, 0, 0, 0, 0x10, 0, 0), FRAME_OPEN, -EBADMSG,
		  FRAME_TOO_LARGE },
		{ HDR('S', 'L', 'C', 'E', 1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff), FRAME_OPEN, -EBADMSG,
		  FRAME_TOO_LARGE },
		{ HDR('S', 'L', 'C', 'E', 1, 2, 0, 0, 0, 0, 0, 0), FRAME_VERDICT, -EBADMSG,
		  FRAME_MALFORMED },
		/* Several wrong: the first in header order names it. */
		{ HDR('X', 'L', 'C', 'E', 9, 9, 1, 1, 0xff, 0, 0, 0), FRAME_OPEN, -EBADMSG,
		  FRAME_BAD_MAGIC },
		{ HDR('S', 'L', 'C', 'E', 9, 9, 1, 1, 0xff, 0, 0, 0), FRAME_OPEN, -EBADMSG,
		  FRAME_BAD_VERSION },
		{ HDR('S', 'L', 'C', 'E', 1, 9, 1, 1, 0xff, 0, 0, 0), FRAME_OPEN, -EBADMSG,
		  FRAME_BAD_TYPE },
		{ HDR('S', 'L', 'C', 'E', 1, 1, 1, 1, 0xff, 0, 0, 0), FRAME_OPEN, -EBADMSG,
		  FRAME_MALFORMED },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct hdr_case *c = &cases[i];
		uint8_t *hdr = exact_copy((const char *)c->hdr, FRAME_HDR_LEN);
		const char *why = NULL;
		int ret;

		ret = frame_hdr_parse(hdr, c->want, &why);
		if (ret != c->ret || (c->why ? !why || strcmp(why, c->why) : why != NULL))
			fail_msg("header case %zu: got %d \"%s\", want %d \"%s\"", i, ret,
				 why ? why : "(null)", c->ret, c->why ? c->why : "(null)");
		free(hdr);
	}
}

struct payload_case {
	const char *json;
	size_t len;			/* 0: strlen(json) */
	const char *detail;		/* NULL: decodes */
};

static int decode_open(const char *json, size_t len, struct frame_open *o, const char **detail)
{
	uint8_t *buf = exact_copy(json, len);
	int ret;

	*detail = NULL;
	ret = frame_open_decode(buf, len, o, detail);
	free(buf);
	return ret;
}

static int decode_verdict(const char *json, size_t len, struct frame_verdict *v,
			  const char **detail)
{
	uint8_t *buf = exact_copy(json, len);
	int ret;

	*detail = NULL;
	ret = frame_verdict_decode(buf, len, v, detail);
	free(buf);
	return ret;
}

#define OPEN_REST "\"src\":\"" SRC "\",\"token\":\"" TOKEN "\""
#define OPEN_WITH_DST(d) "{\"dst\":" d "," OPEN_REST "}"
#define OPEN_WITH_TP(t) "{\"dst\":\"10.99.0.2:5432\"," OPEN_REST ",\"traceparent\":" t "}"
#define VALID_OPEN OPEN_WITH_DST("\"10.99.0.2:5432\"")
#define RAW_NUL "{\"dst\":\"10.99.0.2:5432\",\"src\":\"a\0b\",\"token\":\"t\"}"
#define LONG64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define LONG256 LONG64 LONG64 LONG64 LONG64

static void check_payload_cases(const struct payload_case *cases, size_t nr, bool open)
{
	for (size_t i = 0; i < nr; i++) {
		const struct payload_case *c = &cases[i];
		size_t len = c->len ? c->len : strlen(c->json);
		struct frame_verdict v;
		struct frame_open o;
		const char *detail;
		int ret, want = c->detail ? -EBADMSG : 0;

		if (open)
			ret = decode_open(c->json, len, &o, &detail);
		else
			ret = decode_verdict(c->json, len, &v, &detail);
		if (ret != want || (c->detail ? !detail || strcmp(detail, c->detail) : false))
			fail_msg("%s case %zu (%s): got %d \"%s\", want %d \"%s\"",
				 open ? "OPEN" : "VERDICT", i, c->json, ret,
				 detail ? detail : "(null)", want,
				 c->detail ? c->detail : "(null)");
		if (open) {
			/* A refused OPEN holds no token to leak. */
			if (ret)
				assert_null(o.token);
			frame_open_release(&o);
		}
	}
}

static void test_open_refusals(void **state)
{
	static const struct payload_case cases[] = {
		/* Not one JSON object. */
		{ "", 0, NOT_OBJECT },
		{ "[]", 0, NOT_OBJECT },
		{ "\"dst\"", 0, NOT_OBJECT },
		{ "null", 0, NOT_OBJECT },
		{ "42", 0, NOT_OBJECT },
		{ "{\"dst\":", 0, NOT_OBJECT },
		{ "{dst: 1}", 0, NOT_OBJECT },
		{ VALID_OPEN "{}", 0, NOT_OBJECT },
		{ VALID_OPEN " x", 0, NOT_OBJECT },
		{ "{\"dst\":\"10.99.0.2:5432\",\"dst\":\"10.99.0.3:5432\"," OPEN_REST "}", 0,
		  NOT_OBJECT },
		/* Not UTF-8, or a NUL inside a string, escaped or raw. */
		{ "{\"dst\":\"10.99.0.2:5432\",\"src\":\"\xff\xfe\",\"token\":\"t\"}", 0,
		  NOT_OBJECT },
		{ "{\"dst\":\"10.99.0.2:5432\",\"src\":\"\xc0\xaf\",\"token\":\"t\"}", 0,
		  NOT_OBJECT },
		{ "{\"dst\":\"10.99.0.2:5432\",\"src\":\"a\\u0000b\",\"token\":\"t\"}", 0,
		  NOT_OBJECT },
		{ RAW_NUL, sizeof(RAW_NUL) - 1, NOT_OBJECT },
		{ VALID_OPEN "\0", sizeof(VALID_OPEN), NOT_OBJECT },
		/* Missing or of the wrong type. */
		{ "{" OPEN_REST "}", 0, "dst" },
		{ OPEN_WITH_DST("null"), 0, "dst" },
		{ OPEN_WITH_DST("5432"), 0, "dst" },
		{ OPEN_WITH_DST("[\"10.99.0.2:5432\"]"), 0, "dst" },
		{ "{\"dst\":\"10.99.0.2:5432\",\"token\":\"t\"}", 0, "src" },
		{ "{\"dst\":\"10.99.0.2:5432\",\"src\":{},\"token\":\"t\"}", 0, "src" },
		{ "{\"dst\":\"10.99.0.2:5432\",\"src\":\"" SRC "\"}", 0, "token" },
		{ "{\"dst\":\"10.99.0.2:5432\",\"src\":\"" SRC "\",\"token\":true}", 0, "token" },
		{ OPEN_WITH_TP("42"), 0, "traceparent" },
		{ OPEN_WITH_TP("null"), 0, "traceparent" },
		/* Bad destinations. */
		{ OPEN_WITH_DST("\"\""), 0, "dst" },
		{ OPEN_WITH_DST("\"10.99.0.2\""), 0, "dst" },
		{ OPEN_WITH_DST("\"10.99.0.2:\""), 0, "dst" },
		{ OPEN_WITH_DST("\"10.99.0.2:0\""), 0, "dst" },
		{ OPEN_WITH_DST("\"10.99.0.2:65536\""), 0, "dst" },
		{ OPEN_WITH_DST("\"10.99.0.2:-1\""), 0, "dst" },
		{ OPEN_WITH_DST("\"10.99.0.2:54x\""), 0, "dst" },
		{ OPEN_WITH_DST("\"10.99.0.256:5432\""), 0, "dst" },
		{ OPEN_WITH_DST("\"db.internal:5432\""), 0, "dst" },
		{ OPEN_WITH_DST("\"fd00::2:5432\""), 0, "dst" },
		{ OPEN_WITH_DST("\"[fd00::2]5432\""), 0, "dst" },
		{ OPEN_WITH_DST("\"[fd00::2]:0\""), 0, "dst" },
		{ OPEN_WITH_DST("\"[10.99.0.2]:5432\""), 0, "dst" },
		{ OPEN_WITH_DST("\"[" LONG64 "]:5432\""), 0, "dst" },
		/* Too long. */
		{ "{\"dst\":\"10.99.0.2:5432\",\"src\":\"" LONG256 "\",\"token\":\"t\"}", 0,
		  "src" },
		/* Not a W3C traceparent. */
		{ OPEN_WITH_TP("\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\""), 0,
		  "traceparent" },
		{ OPEN_WITH_TP("\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011\""),
		  0, "traceparent" },
		{ OPEN_WITH_TP("\"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\""), 0,
		  "traceparent" },
		{ OPEN_WITH_TP("\"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01\""), 0,
		  "traceparent" },
		{ OPEN_WITH_TP("\"00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01\""), 0,
		  "traceparent" },
		{ OPEN_WITH_TP("\"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01\""), 0,
		  "traceparent" },
		{ OPEN_WITH_TP("\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz\""), 0,
		  "traceparent" },
		/* All-zero trace or parent id: invalid in W3C trace context. */
		{ OPEN_WITH_TP("\"00-00000000000000000000000000000000-00f067aa0ba902b7-01\""), 0,
		  "traceparent" },
		{ OPEN_WITH_TP("\"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01\""), 0,
		  "traceparent" },
		/* Accepted: an empty traceparent is none, unknown keys are ignored. */
		{ OPEN_WITH_TP("\"\""), 0, NULL },
		{ "{\"dst\":\"10.99.0.2:5432\"," OPEN_REST ",\"future\":{\"x\":[1,2]}}", 0, NULL },
		{ " \n{\"token\":\"\",\"src\":\"\",\"dst\":\"[::1]:1\"}\n", 0, NULL },
	};

	check_payload_cases(cases, sizeof(cases) / sizeof(cases[0]), true);
}

static void test_verdict_refusals(void **state)
{
	static const struct payload_case cases[] = {
		{ "", 0, NOT_OBJECT },
		{ "[\"allow\"]", 0, NOT_OBJECT },
		{ "{\"verdict\":\"allow\",\"reason\":\"ok\"", 0, NOT_OBJECT },
		{ "{\"verdict\":\"allow\",\"verdict\":\"deny\",\"reason\":\"ok\"}", 0, NOT_OBJECT },
		{ "{\"verdict\":\"allow\",\"reason\":\"\xe2\x82\"}", 0, NOT_OBJECT },
		{ "{\"reason\":\"ok\"}", 0, "verdict" },
		{ "{\"verdict\":true,\"reason\":\"ok\"}", 0, "verdict" },
		{ "{\"verdict\":\"maybe\",\"reason\":\"ok\"}", 0, "verdict" },
		{ "{\"verdict\":\"allowed\",\"reason\":\"ok\"}", 0, "verdict" },
		{ "{\"verdict\":\"ALLOW\",\"reason\":\"ok\"}", 0, "verdict" },
		{ "{\"verdict\":\"allow-all-the-things\",\"reason\":\"ok\"}", 0, "verdict" },
		{ "{\"verdict\":\"deny\"}", 0, "reason" },
		{ "{\"verdict\":\"deny\",\"reason\":7}", 0, "reason" },
		{ "{\"verdict\":\"deny\",\"reason\":\"" LONG64 "\"}", 0, "reason" },
		{ "{\"verdict\":\"deny\",\"reason\":\"x\",\"rule\":[]}", 0, "rule" },
		{ "{\"verdict\":\"deny\",\"reason\":\"x\",\"rule\":\"" LONG64 "\"}", 0, "rule" },
		{ "{\"verdict\":\"deny\",\"reason\":\"x\",\"generation\":-1}", 0, "generation" },
		{ "{\"verdict\":\"deny\",\"reason\":\"x\",\"generation\":\"7\"}", 0, "generation" },
		{ "{\"verdict\":\"deny\",\"reason\":\"x\",\"generation\":1.5}", 0, "generation" },
		{ "{\"verdict\":\"deny\",\"reason\":\"x\",\"generation\":null}", 0, "generation" },
		/* Accepted: no rule, no generation, an unknown key. */
		{ "{\"verdict\":\"deny\",\"reason\":\"x\",\"next\":1}", 0, NULL },
	};
	struct frame_verdict v;
	const char *detail;

	check_payload_cases(cases, sizeof(cases) / sizeof(cases[0]), false);
	assert_int_equal(decode_verdict("{\"verdict\":\"allow\",\"reason\":\"ok\"}", 33, &v,
					&detail),
			 0);
	assert_int_equal(v.allow, 1);
	assert_string_equal(v.rule, "");
	assert_int_equal(v.generation, 0);
}

/* Every proper prefix of a valid payload is refused, none read past. */
static void test_truncated_payloads(void **state)
{
	struct frame_verdict v = { .allow = 1, .reason = "ok", .rule = "r", .generation = 3 };
	struct frame_verdict vout;
	struct frame_open o, oout;
	const char *detail;
	uint8_t *open = NULL, *verdict = NULL;
	size_t open_len, verdict_len;

	open_fill(&o, "[fd00::2]:5432", TRACEPARENT);
	assert_int_equal(frame_open_encode(&o, &open, &open_len), 0);
	assert_int_equal(frame_verdict_encode(&v, &verdict, &verdict_len), 0);
	for (size_t n = 0; n < open_len - FRAME_HDR_LEN; n++) {
		assert_int_equal(decode_open((char *)open + FRAME_HDR_LEN, n, &oout, &detail),
				 -EBADMSG);
		assert_string_equal(detail, NOT_OBJECT);
		assert_null(oout.token);
	}
	for (size_t n = 0; n < verdict_len - FRAME_HDR_LEN; n++) {
		assert_int_equal(decode_verdict((char *)verdict + FRAME_HDR_LEN, n, &vout, &detail),
				 -EBADMSG);
		assert_string_equal(detail, NOT_OBJECT);
	}
	free(open);
	free(verdict);
}

static void test_traceparent_new(void **state)
{
	char a[FRAME_TRACEPARENT_LEN + 1], b[FRAME_TRACEPARENT_LEN + 1];
	struct frame_open out;
	const char *detail;
	char json[256];

	assert_int_equal(frame_traceparent_new(a), 0);
	assert_int_equal(frame_traceparent_new(b), 0);
	assert_int_equal(strlen(a), FRAME_TRACEPARENT_LEN);
	assert_string_not_equal(a, b);
	/* Sampled, and not the all-zero ids W3C calls invalid. */
	assert_memory_equal(a + FRAME_TRACEPARENT_LEN - 3, "-01", 3);
	assert_memory_not_equal(a + 3, "00000000000000000000000000000000", 32);
	assert_memory_not_equal(a + 36, "0000000000000000", 16);
	/* The decoder takes what the encoder makes. */
	snprintf(json, sizeof(json), OPEN_WITH_TP("\"%s\""), a);
	assert_int_equal(decode_open(json, strlen(json), &out, &detail), 0);
	assert_string_equal(out.traceparent, a);
	frame_open_release(&out);
}

/* xorshift64: the same mutations on every run and every libc. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Bit flips, bytes that matter to JSON, random bytes, and truncations
 * anywhere after the header (the proxy reads the header whole or not at
 * all). */
static size_t mutate(uint8_t *buf, size_t len, uint64_t *seed)
{
	static const uint8_t special[] = { 0, '"', '\\', '{', '}', '[', ':', ',', '-',
					   '0', 0x7f, 0x80, 0xc0, 0xff };
	unsigned int edits = 1 + rnd(seed) % 4;

	for (unsigned int i = 0; i < edits; i++) {
		size_t at = rnd(seed) % len;

		switch (rnd(seed) % 4) {
		case 0:
			buf[at] ^= 1 << (rnd(seed) % 8);
			break;
		case 1:
			buf[at] = special[rnd(seed) % sizeof(special)];
			break;
		case 2:
			buf[at] = rnd(seed);
			break;
		default:
			len = FRAME_HDR_LEN + rnd(seed) % (len - FRAME_HDR_LEN + 1);
			break;
		}
	}
	return len;
}

/* What a decoded OPEN must look like, whatever the input was. */
static void check_open_sane(const struct frame_open *o)
{
	const struct sockaddr_in *s4 = (const void *)&o->dst;

	assert_true(o->dst.ss_family == AF_INET || o->dst.ss_family == AF_INET6);
	assert_int_not_equal(s4->sin_port, 0);
	assert_true(strnlen(o->src, sizeof(o->src)) < sizeof(o->src));
	assert_non_null(o->token);
	assert_true(!o->traceparent[0] || strlen(o->traceparent) == FRAME_TRACEPARENT_LEN);
}

static void check_verdict_sane(const struct frame_verdict *v)
{
	assert_true(v->allow == 0 || v->allow == 1);
	assert_true(strnlen(v->reason, sizeof(v->reason)) < sizeof(v->reason));
	assert_true(strnlen(v->rule, sizeof(v->rule)) < sizeof(v->rule));
}

/* One mutated frame through the header check and then the decoder; the
 * payload is decoded even when the header is refused, so mutations past
 * the header always reach the JSON side. */
static int fuzz_one(const uint8_t *frame, size_t len, enum frame_type type)
{
	struct frame_verdict v;
	struct frame_open o;
	const char *why = NULL, *detail = NULL;
	size_t plen = len - FRAME_HDR_LEN;
	int ret;

	ret = frame_hdr_parse(frame, type, &why);
	if (ret < 0) {
		assert_int_equal(ret, -EBADMSG);
		assert_non_null(why);
		assert_true(why[0]);
	} else {
		assert_true(ret >= 1 && ret <= FRAME_MAX_PAYLOAD);
		/* Announcing more than arrived: decode what is there. */
		if ((size_t)ret < plen)
			plen = ret;
	}
	detail = NULL;
	if (type == FRAME_OPEN) {
		ret = frame_open_decode(frame + FRAME_HDR_LEN, plen, &o, &detail);
		if (!ret)
			check_open_sane(&o);
		else
			assert_null(o.token);
		frame_open_release(&o);
	} else {
		ret = frame_verdict_decode(frame + FRAME_HDR_LEN, plen, &v, &detail);
		if (!ret)
			check_verdict_sane(&v);
	}
	if (ret) {
		assert_int_equal(ret, -EBADMSG);
		assert_non_null(detail);
		assert_true(detail[0]);
	}
	return !ret;
}

static void test_fuzz(void **state)
{
	struct frame_verdict v = { .allow = 1, .reason = "ok", .rule = "jobs-read",
				   .generation = 12 };
	struct frame_open o;
	uint8_t *valid[2], *buf;
	size_t valid_len[2], len;
	uint64_t seed = 0x5eed5eed5eedULL;
	int decoded = 0;

	open_fill(&o, "[fd00:99::2]:5432", TRACEPARENT);
	assert_int_equal(frame_open_encode(&o, &valid[0], &valid_len[0]), 0);
	assert_int_equal(frame_verdict_encode(&v, &valid[1], &valid_len[1]), 0);
	for (int i = 0; i < FUZZ_ROUNDS; i++) {
		int k = i & 1;

		/* Cut to the mutated length: reading past it is an ASan report. */
		buf = malloc(valid_len[k]);
		assert_non_null(buf);
		memcpy(buf, valid[k], valid_len[k]);
		len = mutate(buf, valid_len[k], &seed);
		buf = realloc(buf, len);
		assert_non_null(buf);
		decoded += fuzz_one(buf, len, k ? FRAME_VERDICT : FRAME_OPEN);
		free(buf);
	}
	/* Mutations that leave a frame valid (a digit of the port, a byte in
	 * the token) decode; if none did, the loop tested only the refusals. */
	assert_true(decoded > FUZZ_ROUNDS / 100);
	assert_true(decoded < FUZZ_ROUNDS / 2);
	free(valid[0]);
	free(valid[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_ipv4_traceparent),
		cmocka_unit_test(test_open_ipv4_no_traceparent),
		cmocka_unit_test(test_open_ipv6_traceparent),
		cmocka_unit_test(test_open_ipv6_no_traceparent),
		cmocka_unit_test(test_verdict_allow_rule),
		cmocka_unit_test(test_verdict_deny_no_rule),
		cmocka_unit_test(test_fields_at_their_limits),
		cmocka_unit_test(test_encode_too_large),
		cmocka_unit_test(test_hdr_refusals),
		cmocka_unit_test(test_open_refusals),
		cmocka_unit_test(test_verdict_refusals),
		cmocka_unit_test(test_truncated_payloads),
		cmocka_unit_test(test_traceparent_new),
		cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
