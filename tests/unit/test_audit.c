// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "audit.h"
#include "unit/json_lines.h"
#include "utf8.h"

#define FFFD UTF8_REPLACEMENT

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

/* The one line written for r: a JSON object, with every member of deny_rec
 * but kid as deny_rec has it. Returns its kid. */
static const char *one_line(struct fixture *f, const struct audit_rec *r, json_t **lines)
{
	struct errmsg err = {};
	struct audit *a;
	json_t *o;

	assert_int_equal(audit_open(f->path, &a, &err), 0);
	assert_int_equal(audit_write(a, r), 0);
	audit_close(a);
	*lines = read_lines(f->path);
	assert_int_equal(json_array_size(*lines), 1);
	o = json_array_get(*lines, 0);
	assert_string_equal(json_string_value(json_object_get(o, "verdict")), deny_rec.verdict);
	assert_string_equal(json_string_value(json_object_get(o, "reason")), deny_rec.reason);
	assert_string_equal(json_string_value(json_object_get(o, "src_workload")),
			    deny_rec.src_workload);
	assert_string_equal(json_string_value(json_object_get(o, "dst")), deny_rec.dst);
	assert_string_equal(json_string_value(json_object_get(o, "trace_id")), deny_rec.trace_id);
	assert_int_equal(json_integer_value(json_object_get(o, "generation")),
			 deny_rec.generation);
	assert_non_null(json_string_value(json_object_get(o, "kid")));
	return json_string_value(json_object_get(o, "kid"));
}

/* A kid that a 64-byte snprintf() cut inside "é" still gets its line: the
 * stray byte becomes U+FFFD. */
static void test_kid_cut_inside_a_character(void **state)
{
	struct audit_rec r = deny_rec;
	json_t *lines;

	r.kid = "Nqetuq3OZz3JmbKEzz_\xc3";
	assert_string_equal(one_line(*state, &r, &lines), "Nqetuq3OZz3JmbKEzz_" FFFD);
	json_decref(lines);
}

/* Bytes that are no UTF-8 at all: stray continuation, overlong, surrogate,
 * 0xff. The jti beside them is kept as it is. */
static void test_kid_raw_invalid_utf8(void **state)
{
	struct audit_rec r = deny_rec;
	json_t *lines;

	r.kid = "\x80k\xc0\xafi\xed\xa0\x80" "d\xff";
	r.jti = "35d1257a0a542ec61f8ad407dd5aafd7";
	assert_string_equal(one_line(*state, &r, &lines),
			    FFFD "k" FFFD FFFD "i" FFFD FFFD FFFD "d" FFFD);
	assert_string_equal(json_string_value(json_object_get(json_array_get(lines, 0), "jti")),
			    r.jti);
	json_decref(lines);
}

/* An edge line carries who asked for what, and an inbound line none of it. */
static void test_edge_members(void **state)
{
	struct audit_rec r = deny_rec;
	json_t *lines, *o;

	r.direction = "edge";
	r.caller = "alice@acme.example";
	r.client = "198.51.100.7";
	r.host = "api.acme.example";
	r.method = "DELETE";
	r.path = "/api/jobs/1";
	one_line(*state, &r, &lines);
	o = json_array_get(lines, 0);
	assert_string_equal(json_string_value(json_object_get(o, "direction")), "edge");
	assert_string_equal(json_string_value(json_object_get(o, "caller")), r.caller);
	assert_string_equal(json_string_value(json_object_get(o, "client")), r.client);
	assert_string_equal(json_string_value(json_object_get(o, "host")), r.host);
	assert_string_equal(json_string_value(json_object_get(o, "method")), r.method);
	assert_string_equal(json_string_value(json_object_get(o, "path")), r.path);
	json_decref(lines);
	unlink(((struct fixture *)*state)->path);

	one_line(*state, &deny_rec, &lines);
	o = json_array_get(lines, 0);
	assert_null(json_object_get(o, "caller"));
	assert_null(json_object_get(o, "path"));
	json_decref(lines);
}

/* 4 KiB of kid, in three-byte characters after one ASCII byte: cut short
 * between two of them, and marked. */
static void test_kid_4kib(void **state)
{
	struct audit_rec r = deny_rec;
	char kid[4097];
	const char *got;
	json_t *lines;
	size_t len;

	kid[0] = 'k';
	for (int i = 1; i + 3 <= 4096; i += 3)
		memcpy(kid + i, "\xe2\x82\xac", 3);
	kid[4096] = '\0';
	r.kid = kid;
	got = one_line(*state, &r, &lines);
	len = strlen(got);
	assert_true(len < 4096 - 2048);
	assert_true(len > strlen(UTF8_CUT));
	assert_string_equal(got + len - strlen(UTF8_CUT), UTF8_CUT);
	assert_int_equal((len - strlen(UTF8_CUT) - 1) % 3, 0);
	assert_memory_equal(got, kid, len - strlen(UTF8_CUT));
	json_decref(lines);
}

/* Every line to a full disk is lost, and counted. */
static void test_lost_lines_counted(void **state)
{
	struct audit_health h;
	struct errmsg err = {};
	struct audit *a;

	assert_int_equal(audit_open("/dev/full", &a, &err), 0);
	audit_get_health(a, &h);
	assert_int_equal(h.lost, 0);
	assert_int_equal(h.last_err, 0);
	assert_int_equal(audit_write(a, &deny_rec), -ENOSPC);
	assert_int_equal(audit_write(a, &deny_rec), -ENOSPC);
	audit_get_health(a, &h);
	assert_int_equal(h.lost, 2);
	assert_int_equal(h.last_err, -ENOSPC);
	audit_close(a);
}

/* The file reaches its size limit inside a line: that line is lost and
 * counted, and the next one, once there is room, stands on a line of its
 * own. */
static void test_torn_line_takes_no_other(void **state)
{
	struct fixture *f = *state;
	struct rlimit old, lim;
	struct audit_health h;
	struct errmsg err = {};
	struct stat st;
	struct audit *a;
	FILE *fp;
	char *line = NULL;
	size_t size = 0;
	int n = 0, last_ok = 0;

	assert_int_equal(audit_open(f->path, &a, &err), 0);
	assert_int_equal(audit_write(a, &deny_rec), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = st.st_size + st.st_size / 2;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(audit_write(a, &deny_rec), -ENOSPC);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(audit_write(a, &deny_rec), 0);
	audit_get_health(a, &h);
	audit_close(a);
	assert_int_equal(h.lost, 1);

	/* Whole, torn, whole: only the torn one is not JSON. */
	fp = fopen(f->path, "r");
	assert_non_null(fp);
	while (getline(&line, &size, fp) > 0) {
		json_t *o = json_loads(line, 0, NULL);

		n++;
		last_ok = json_is_object(o);
		json_decref(o);
	}
	free(line);
	fclose(fp);
	assert_int_equal(n, 3);
	assert_true(last_ok);
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

/* jansson's compact dump of the record, as the agent wrote lines before it
 * built them itself: the reference its lines must equal byte for byte. */
static char *jansson_line(const struct audit_rec *r, const char *when)
{
	const char *keys[] = { "direction", "src_node", "src_workload", "peer", "dst",
			       "service", "verdict", "reason", "detail", "rule" };
	const char *vals[] = { r->direction, r->src_node, r->src_workload, r->peer, r->dst,
			       r->service, r->verdict, r->reason, r->detail, r->rule };
	const char *keys2[] = { "jti", "kid", "trace_id", "caller", "client",
				"host", "method", "path", "orig_jti" };
	const char *vals2[] = { r->jti, r->kid, r->trace_id, r->caller, r->client,
				r->host, r->method, r->path, r->orig_jti };
	json_t *o = json_object();
	char buf[AUDIT_STR_MAX], *line;

	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "schema", json_integer(AUDIT_SCHEMA));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (vals[i])
			json_object_set_new(o, keys[i],
					    json_stringn(buf, utf8_copy(buf, sizeof(buf), vals[i])));
	json_object_set_new(o, "generation", json_integer(r->generation));
	for (size_t i = 0; i < sizeof(keys2) / sizeof(keys2[0]); i++)
		if (vals2[i])
			json_object_set_new(o, keys2[i],
					    json_stringn(buf, utf8_copy(buf, sizeof(buf), vals2[i])));
	if (r->resumed)
		json_object_set_new(o, "resumed", json_boolean(r->resumed == AUDIT_RESUMED_YES));
	if (r->closed) {
		json_object_set_new(o, "bytes_up", json_integer(r->bytes_up));
		json_object_set_new(o, "bytes_down", json_integer(r->bytes_down));
		json_object_set_new(o, "duration_ns", json_integer(r->duration_ns));
		json_object_set_new(o, "status", json_string(r->status));
	}
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return line;
}

/* Random bytes of every kind (quotes, backslashes, controls, DEL, UTF-8,
 * invalid sequences), of random length up to past the member bound. */
static char *random_str(unsigned int *seed)
{
	static const char *const pieces[] = { "\"", "\\", "\n", "\t", "\b", "\f", "\r",
					      "\x01", "\x1f", "\x7f", "/", "é", "\xe2\x82\xac",
					      "\xf0\x9f\x98\x80", "\xc3", "\xed\xa0\x80", "a", "Z" };
	size_t want = rand_r(seed) % 3 ? rand_r(seed) % 40 : rand_r(seed) % 1200, len = 0;
	char *s = malloc(want * 4 + 1);

	while (len < want) {
		const char *p = pieces[rand_r(seed) % (sizeof(pieces) / sizeof(pieces[0]))];

		memcpy(s + len, p, strlen(p));
		len += strlen(p);
	}
	s[len] = '\0';
	return s;
}

static void test_same_as_jansson(void **state)
{
	struct fixture *f = *state;
	unsigned int seed = 12;

	for (int round = 0; round < 300; round++) {
		char *strs[19], *want, *got, when[40];
		struct audit_rec r = { .time_ns = 1795548117297465221LL + round * 1000003LL };
		const char **slots[] = { &r.direction, &r.src_node, &r.src_workload, &r.peer,
					 &r.dst, &r.service, &r.verdict, &r.reason, &r.detail,
					 &r.rule, &r.jti, &r.kid, &r.trace_id, &r.caller,
					 &r.client, &r.host, &r.method, &r.path, &r.orig_jti };
		struct errmsg err = {};
		struct audit *a;
		struct tm tm;
		time_t t = r.time_ns / 1000000000;
		FILE *fp;
		size_t n = 0;

		for (int i = 0; i < 19; i++) {
			strs[i] = rand_r(&seed) % 4 ? random_str(&seed) : NULL;
			*slots[i] = strs[i];
		}
		r.generation = rand_r(&seed);
		r.resumed = rand_r(&seed) % 3;
		r.closed = rand_r(&seed) % 2;
		r.bytes_up = (uint64_t)rand_r(&seed) << 20;
		r.bytes_down = rand_r(&seed);
		r.duration_ns = (uint64_t)rand_r(&seed) * 1000;
		r.status = "ok";
		gmtime_r(&t, &tm);
		n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(when + n, sizeof(when) - n, ".%06ldZ",
			 (long)(r.time_ns % 1000000000 / 1000));
		want = jansson_line(&r, when);
		unlink(f->path);
		assert_int_equal(audit_open(f->path, &a, &err), 0);
		assert_int_equal(audit_write(a, &r), 0);
		audit_close(a);
		fp = fopen(f->path, "r");
		got = NULL;
		n = 0;
		assert_true(getline(&got, &n, fp) > 0);
		fclose(fp);
		got[strcspn(got, "\n")] = '\0';
		assert_string_equal(got, want);
		free(got);
		free(want);
		for (int i = 0; i < 19; i++)
			free(strs[i]);
	}
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
		cmocka_unit_test_setup_teardown(test_same_as_jansson, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kid_cut_inside_a_character, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kid_raw_invalid_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kid_4kib, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edge_members, setup, teardown),
		cmocka_unit_test(test_lost_lines_counted),
		cmocka_unit_test_setup_teardown(test_torn_line_takes_no_other, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
