/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The integration test runner, in the manner of the kernel's BPF selftests
 * (test_progs): every test is a function test_<name>(env) listed in tests.h,
 * assertions are named and return bool, and output is buffered per test and
 * shown only when something failed or with -v.
 *
 * The runner builds a fresh environment (struct sl_env, env.h) before each
 * test and tears it down after it, also when an assertion failed, so a test
 * body only does `if (!ASSERT_...) return;`.
 */
#ifndef SLUICE_INTEG_HARNESS_H
#define SLUICE_INTEG_HARNESS_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct sl_env;

/* Marks the running test (or subtest) failed. */
void test__fail(void);
/* Marks the running test (or subtest) skipped; the reason is always shown.
 * Only for a feature the kernel lacks. */
void test__skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Ends the previous subtest and starts `name`. Returns false when -t
 * filters it out: the caller then skips its body. */
bool test__start_subtest(const char *name);
bool test__verbose(void);
/* -b: where sluiced and sluicectl are. */
const char *test__build_dir(void);
/* Milliseconds on CLOCK_MONOTONIC. */
long long now_ms(void);

#define _CHECK(fail, name, fmt, ...)                                                               \
	({                                                                                         \
		bool __fail = (fail);                                                              \
		if (__fail) {                                                                      \
			test__fail();                                                              \
			printf("%s:FAIL:%s " fmt "\n", __func__, (name), ##__VA_ARGS__);           \
		} else {                                                                           \
			printf("%s:PASS:%s\n", __func__, (name));                                  \
		}                                                                                  \
		!__fail;                                                                           \
	})

#define ASSERT_TRUE(actual, name) _CHECK(!(actual), (name), "unexpected %s: got FALSE", (name))

#define ASSERT_FALSE(actual, name) _CHECK(!!(actual), (name), "unexpected %s: got TRUE", (name))

#define ASSERT_EQ(actual, expected, name)                                                          \
	({                                                                                         \
		long long ___act = (long long)(actual);                                            \
		long long ___exp = (long long)(expected);                                          \
		_CHECK(___act != ___exp, (name), "unexpected %s: actual %lld != expected %lld",    \
		       (name), ___act, ___exp);                                                    \
	})

#define ASSERT_NEQ(actual, expected, name)                                                         \
	({                                                                                         \
		long long ___act = (long long)(actual);                                            \
		long long ___exp = (long long)(expected);                                          \
		_CHECK(___act == ___exp, (name), "unexpected %s: actual %lld == expected %lld",    \
		       (name), ___act, ___exp);                                                    \
	})

#define ASSERT_GE(actual, expected, name)                                                          \
	({                                                                                         \
		long long ___act = (long long)(actual);                                            \
		long long ___exp = (long long)(expected);                                          \
		_CHECK(___act < ___exp, (name), "unexpected %s: actual %lld < expected %lld",      \
		       (name), ___act, ___exp);                                                    \
	})

/* 0 is success; anything else is printed with errno. */
#define ASSERT_OK(res, name)                                                                       \
	({                                                                                         \
		long long ___res = (long long)(res);                                               \
		int ___errno = errno;                                                              \
		_CHECK(___res != 0, (name), "unexpected error: %lld (errno %d)", ___res,           \
		       ___errno);                                                                  \
	})

/* A negative result is the expected failure. */
#define ASSERT_ERR(res, name)                                                                      \
	({                                                                                         \
		long long ___res = (long long)(res);                                               \
		_CHECK(___res >= 0, (name), "unexpected success: %lld", ___res);                   \
	})

#define ASSERT_OK_FD(fd, name)                                                                     \
	({                                                                                         \
		int ___fd = (fd);                                                                  \
		int ___errno = errno;                                                              \
		_CHECK(___fd < 0, (name), "unexpected fd: %d (errno %d)", ___fd, ___errno);        \
	})

#define ASSERT_STREQ(actual, expected, name)                                                       \
	({                                                                                         \
		const char *___act = (actual);                                                     \
		const char *___exp = (expected);                                                   \
		if (!___act)                                                                       \
			___act = "(null)";                                                         \
		_CHECK(strcmp(___act, ___exp), (name),                                             \
		       "unexpected %s: actual '%s' != expected '%s'", (name), ___act, ___exp);     \
	})

#define ASSERT_HAS_SUBSTR(str, substr, name)                                                       \
	({                                                                                         \
		const char *___str = (str) ? (str) : "";                                           \
		const char *___sub = (substr);                                                     \
		_CHECK(!strstr(___str, ___sub), (name),                                            \
		       "unexpected %s: '%s' is not a substring of '%.512s'", (name), ___sub,       \
		       ___str);                                                                    \
	})

#define ASSERT_NO_SUBSTR(str, substr, name)                                                        \
	({                                                                                         \
		const char *___str = (str) ? (str) : "";                                           \
		const char *___sub = (substr);                                                     \
		_CHECK(strstr(___str, ___sub) != NULL, (name),                                     \
		       "unexpected %s: '%s' found in '%.512s'", (name), ___sub, ___str);           \
	})

#define ASSERT_OK_PTR(ptr, name)                                                                   \
	_CHECK(!(ptr), (name), "unexpected pointer: NULL (errno %d)", errno)

#endif
