// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "audit.h"

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/test_audit.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/sub/audit.jsonl", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

/* The file's lines, each parsed; fails the test on a line that is not a
 * JSON object. */
static json_t *read_lines(const char *path)
{
	json_t *all = json_array();
	char line[4096];
	FILE *fp = fopen(path, "r");

	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		json_t *o = json_loads(line, 0, NULL);

		if (!json_is_object(o))
			fail_msg("not a JSON object: %s", line);
		json_array_append_new(all, o);
	}
	fclose(fp);
	return all;
}

static const struct audit_rec deny_rec = {
	.time_ns = 1795548117297465221LL,
	.direction = "inbound",
	.src_node = "node-a",
	.src_workload = "spiffe://acme.example/notebook/7",
	.dst = "10.66.0.2:8080",
	.verdict = "deny",
	.reason = "default-deny",
	.generation = 3,
	.kid = "Nqetuq3OZz3JmbKEzz_3Z-vwVHkIi2Kmy7Z9wQ25s1k",
	.trace_id = "89b5415bae45b4101bbe0d79edc9ce7b",
};

static void test_lines(void **state)
{
	struct fixture *f = *state;
	struct audit_rec close_rec = deny_rec;
	struct errmsg err = {};
	struct audit *a;
	struct stat st;
	json_t *lines, *o;

	assert_int_equal(audit_open(f->path, &a, &err), 0);
	assert_int_equal(audit_write(a, &deny_rec), 0);
	close_rec.verdict = "allow";
	close_rec.reason = "ok";
	close_rec.service = "api";
	close_rec.rule = "etl-api";
	close_rec.closed = true;
	close_rec.bytes_up = 81;
	close_rec.bytes_down = 100000207;
	close_rec.duration_ns = 136720695;
	close_rec.status = "ECONNRESET";
	close_rec.resumed = AUDIT_RESUMED_YES;
	assert_int_equal(audit_write(a, &close_rec), 0);
	audit_close(a);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);

	lines = read_lines(f->path);
	assert_int_equal(json_array_size(lines), 2);
	o = json_array_get(lines, 0);
	assert_string_equal(json_string_value(json_object_get(o, "time")),
			    "2026-11-24T19:21:57.297465Z");
	assert_string_equal(json_string_value(json_object_get(o, "verdict")), "deny");
	assert_string_equal(json_string_value(json_object_get(o, "reason")), "default-deny");
	assert_int_equal(json_integer_value(json_object_get(o, "generation")), 3);
	/* Absent members are left out, not null; no close members on a deny. */
	assert_null(json_object_get(o, "service"));
	assert_null(json_object_get(o, "jti"));
	assert_null(json_object_get(o, "bytes_up"));
	assert_null(json_object_get(o, "resumed"));
	o = json_array_get(lines, 1);
	assert_true(json_is_true(json_object_get(o, "resumed")));
	assert_string_equal(json_string_value(json_object_get(o, "rule")), "etl-api");
	assert_int_equal(json_integer_value(json_object_get(o, "bytes_down")), 100000207);
	assert_string_equal(json_string_value(json_object_get(o, "status")), "ECONNRESET");
	json_decref(lines);
}

/* Two processes appending at once: every line whole. */
static void test_concurrent_writers(void **state)
{
	struct fixture *f = *state;
	struct errmsg err = {};
	struct audit *a;
	json_t *lines;
	int status;
	pid_t pid;

	assert_int_equal(audit_open(f->path, &a, &err), 0);
	pid = fork();
	assert_true(pid >= 0);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(audit_write(a, &deny_rec), 0);
	if (!pid)
		_exit(0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	audit_close(a);
	lines = read_lines(f->path);
	assert_int_equal(json_array_size(lines), 4000);
	json_decref(lines);
}

static void test_reopen_after_rotation(void **state)
{
	struct fixture *f = *state;
	char rotated[160];
	struct errmsg err = {};
	struct audit *a;
	json_t *lines;

	snprintf(rotated, sizeof(rotated), "%s.1", f->path);
	assert_int_equal(audit_open(f->path, &a, &err), 0);
	assert_int_equal(audit_write(a, &deny_rec), 0);
	assert_int_equal(rename(f->path, rotated), 0);
	assert_int_equal(audit_reopen(a, &err), 0);
	assert_int_equal(audit_write(a, &deny_rec), 0);
	audit_close(a);
	lines = read_lines(f->path);
	assert_int_equal(json_array_size(lines), 1);
	json_decref(lines);
	lines = read_lines(rotated);
	assert_int_equal(json_array_size(lines), 1);
	json_decref(lines);
}

static void test_open_error_names_path(void **state)
{
	struct errmsg err = {};
	struct audit *a;

	assert_int_equal(audit_open("/proc/self/nope/audit.jsonl", &a, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/proc/self/nope"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_after_rotation, setup, teardown),
		cmocka_unit_test(test_open_error_names_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
