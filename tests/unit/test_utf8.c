// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "utf8.h"

#define FFFD UTF8_REPLACEMENT

static void test_char_len(void **state)
{
	static const struct {
		const char *s;
		size_t len;
	} cases[] = {
		{ "a", 1 },
		{ "\xc3\xa9", 2 },		/* é */
		{ "\xe2\x82\xac", 3 },		/* € */
		{ "\xf0\x9f\x98\x80", 4 },	/* U+1F600 */
		{ "\xf4\x8f\xbf\xbf", 4 },	/* U+10FFFF, the last there is */
		{ "\xc3", 0 },			/* cut short */
		{ "\xe2\x82", 0 },
		{ "\x80", 0 },			/* a lone continuation byte */
		{ "\xc0\xaf", 0 },		/* overlong '/' */
		{ "\xe0\x80\xaf", 0 },
		{ "\xf0\x80\x80\xaf", 0 },
		{ "\xed\xa0\x80", 0 },		/* a surrogate, U+D800 */
		{ "\xf4\x90\x80\x80", 0 },	/* U+110000 */
		{ "\xff", 0 },
		{ "\xc3" "a", 0 },		/* not a continuation */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t got = utf8_char_len(cases[i].s, strlen(cases[i].s));

		if (got != cases[i].len)
			fail_msg("case %zu: %zu, want %zu", i, got, cases[i].len);
	}
	assert_int_equal(utf8_char_len("\xc3\xa9", 1), 0);
	assert_int_equal(utf8_char_len("", 0), 0);
}

/* What utf8_copy makes of src in size bytes: want, and nothing jansson
 * refuses. */
static void assert_copy(size_t size, const char *src, const char *want)
{
	char buf[64];
	json_t *s;

	assert_true(size <= sizeof(buf));
	assert_int_equal(utf8_copy(buf, size, src), strlen(want));
	assert_string_equal(buf, want);
	s = json_string(buf);
	assert_non_null(s);
	json_decref(s);
}

static void test_copy_fits(void **state)
{
	assert_copy(16, "", "");
	assert_copy(16, "kid-1", "kid-1");
	assert_copy(16, "caf\xc3\xa9", "caf\xc3\xa9");
	/* Exactly as long as the buffer allows. */
	assert_copy(6, "abcde", "abcde");
}

static void test_copy_replaces_invalid_bytes(void **state)
{
	assert_copy(32, "a\xffz", "a" FFFD "z");
	assert_copy(32, "\xc0\xaf", FFFD FFFD);
	assert_copy(32, "\xed\xa0\x80", FFFD FFFD FFFD);
	/* A character cut short before the data ends. */
	assert_copy(32, "ab\xc3", "ab" FFFD);
	assert_copy(32, "\xe2\x82z", FFFD FFFD "z");
}

static void test_copy_cuts_between_characters(void **state)
{
	assert_copy(6, "abcdef", "ab" UTF8_CUT);
	/* "é" would end at byte 3 of the 2 left for text: it goes whole. */
	assert_copy(6, "a\xc3\xa9xyz", "a" UTF8_CUT);
	assert_copy(7, "a\xc3\xa9wxyz", "a\xc3\xa9" UTF8_CUT);
	assert_copy(8, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", "\xe2\x82\xac" UTF8_CUT);
	/* Replacements take room too. */
	assert_copy(8, "\xff\xff\xff", FFFD UTF8_CUT);
	assert_copy(4, "abcd", UTF8_CUT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_char_len),
		cmocka_unit_test(test_copy_fits),
		cmocka_unit_test(test_copy_replaces_invalid_bytes),
		cmocka_unit_test(test_copy_cuts_between_characters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
