// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The buffer /metrics and audit lines are built in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "strbuf.h"

/* Starting in the caller's buffer, it moves to the heap once that is
 * full and keeps every byte written before. */
static void test_initial_then_heap(void **state)
{
	char stack[8], want[64];
	struct strbuf b;
	size_t len = 0;
	char *s;

	strbuf_init(&b, stack, sizeof(stack));
	strbuf_puts(&b, "abcdef");
	assert_ptr_equal(b.p, stack);
	strbuf_puts(&b, "ghijklmnop");
	assert_ptr_not_equal(b.p, stack);
	strbuf_printf(&b, "-%d-%s", 42, "x");
	snprintf(want, sizeof(want), "abcdefghijklmnop-42-x");
	s = strbuf_detach(&b, &len);
	assert_non_null(s);
	assert_string_equal(s, want);
	assert_int_equal(len, strlen(want));
	/* Empty again, back in the caller's buffer. */
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.p, stack);
	free(s);
}

/* A detached copy of text that never left the caller's buffer is the
 * caller's to free, and the buffer stays usable. */
static void test_detach_from_initial(void **state)
{
	char stack[32];
	struct strbuf b;
	size_t len = 0;
	char *s;

	strbuf_init(&b, stack, sizeof(stack));
	strbuf_puts(&b, "short");
	s = strbuf_detach(&b, &len);
	assert_ptr_not_equal(s, stack);
	assert_string_equal(s, "short");
	assert_int_equal(len, 5);
	free(s);
	strbuf_puts(&b, "again");
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.p, "again", 5);
	strbuf_release(&b);
}

static void test_u64(void **state)
{
	struct strbuf b;
	char *s;

	strbuf_init(&b, NULL, 0);
	strbuf_u64(&b, 0);
	strbuf_puts(&b, " ");
	strbuf_u64(&b, 7);
	strbuf_puts(&b, " ");
	strbuf_u64(&b, 1000000);
	strbuf_puts(&b, " ");
	strbuf_u64(&b, UINT64_MAX);
	s = strbuf_detach(&b, NULL);
	assert_string_equal(s, "0 7 1000000 18446744073709551615");
	free(s);
}

/* printf past the room left grows once and loses nothing; an empty
 * buffer detaches as "". */
static void test_printf_grows(void **state)
{
	char big[5000], *s;
	struct strbuf b;
	size_t len;

	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	strbuf_init(&b, NULL, 16);
	strbuf_printf(&b, "<%s>", big);
	s = strbuf_detach(&b, &len);
	assert_int_equal(len, sizeof(big) + 1);
	assert_int_equal(s[0], '<');
	assert_int_equal(s[len - 1], '>');
	assert_int_equal(s[len], '\0');
	free(s);
	s = strbuf_detach(&b, &len);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_initial_then_heap),
		cmocka_unit_test(test_detach_from_initial),
		cmocka_unit_test(test_u64),
		cmocka_unit_test(test_printf_grows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
