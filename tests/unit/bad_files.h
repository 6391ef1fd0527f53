/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The bad-file tables of the config and policy tests: each file breaks
 * exactly one rule, and the message must be `PATH:LINE: REASON` to the
 * byte. One cmocka case per file, named after it, beside the fixed ones.
 * Include after <cmocka.h>.
 */
#ifndef SLUICE_TEST_BAD_FILES_H
#define SLUICE_TEST_BAD_FILES_H

#include <stdio.h>
#include <stdlib.h>

struct bad_case {
	const char *file;
	int line;
	const char *reason;
};

/* The file's path under dir and the message it must produce. */
static inline void bad_case_expect(const char *dir, const struct bad_case *c, char *path,
				   size_t path_len, char *want, size_t want_len)
{
	snprintf(path, path_len, "%s%s", dir, c->file);
	snprintf(want, want_len, "%s:%d: %s", path, c->line, c->reason);
}

/* Runs the fixed cases, then test_func once per bad case (its state). */
static inline int run_with_bad_files(const char *group, const struct CMUnitTest *fixed,
				     size_t nr_fixed, const struct bad_case *bad, size_t nr_bad,
				     CMUnitTestFunction test_func)
{
	struct CMUnitTest *tests = calloc(nr_fixed + nr_bad, sizeof(*tests));
	size_t n = 0;
	int ret;

	if (!tests)
		return 1;
	for (size_t i = 0; i < nr_fixed; i++)
		tests[n++] = fixed[i];
	for (size_t i = 0; i < nr_bad; i++)
		tests[n++] = (struct CMUnitTest){
			.name = bad[i].file,
			.test_func = test_func,
			.initial_state = (void *)&bad[i],
		};
	ret = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
	free(tests);
	return ret;
}

#endif
