/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A JSON-lines file (the audit log) read back by the unit tests. Include
 * after <cmocka.h>: the helper asserts with it.
 */
#ifndef SLUICE_TEST_JSON_LINES_H
#define SLUICE_TEST_JSON_LINES_H

#include <stdio.h>
#include <stdlib.h>
#include <jansson.h>

/* The file's lines, each parsed; fails the test on a line that is not a
 * JSON object. */
static inline json_t *read_lines(const char *path)
{
	json_t *all = json_array();
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t size = 0;

	assert_non_null(fp);
	while (getline(&line, &size, fp) > 0) {
		json_t *o = json_loads(line, 0, NULL);

		if (!json_is_object(o))
			fail_msg("not a JSON object: %s", line);
		json_array_append_new(all, o);
	}
	free(line);
	fclose(fp);
	return all;
}

#endif
