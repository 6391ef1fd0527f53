// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The control socket's protocol: every request a client may send parses to
 * what ctlproto.h says, everything else is refused with the exact reason,
 * and answers round-trip. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctlproto.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct bad_case {
	const char *line;
	int ret;
	const char *msg;
};

static const struct bad_case bad[] = {
	{ "", -EINVAL, "not JSON: '[' or '{' expected near end of file at column 0" },
	{ "[1]", -EINVAL, "expected a JSON object" },
	{ "{\"v\":2,\"cmd\":\"status\"}", -EPROTO, "protocol version 2 is not spoken here (1)" },
	{ "{\"cmd\":\"status\"}", -EINVAL, "v: expected the protocol version, 1" },
	{ "{\"v\":1,\"cmd\":\"reboot\"}", -EINVAL, "unknown command \"reboot\"" },
	{ "{\"v\":1,\"cmd\":7}", -EINVAL, "cmd: expected a string" },
	{ "{\"v\":1,\"cmd\":\"status\",\"x\":1}", -EINVAL, "request: unknown member \"x\"" },
	{ "{\"v\":1,\"cmd\":\"status\",\"args\":{\"a\":1}}", -EINVAL, "status takes no args" },
	{ "{\"v\":1,\"cmd\":\"policy.apply\"}", -EINVAL, "args: expected an object" },
	{ "{\"v\":1,\"cmd\":\"policy.apply\",\"args\":{\"content\":\"x\"}}", -EINVAL,
	  "args.name: expected a non-empty string" },
	{ "{\"v\":1,\"cmd\":\"policy.apply\",\"args\":{\"name\":\"p\"}}", -EINVAL,
	  "args.content: expected a string" },
	{ "{\"v\":1,\"cmd\":\"policy.apply\",\"args\":{\"name\":\"a\\u0000b\",\"content\":\"\"}}",
	  -EINVAL, "not JSON: \\u0000 is not allowed without JSON_ALLOW_NUL near "
		   "'\"a\\u0000b\"' at column 53" },
	{ "{\"v\":1,\"cmd\":\"policy.apply\",\"args\":{\"name\":\"p\",\"content\":\"\","
	  "\"dry_run\":1}}", -EINVAL, "args.dry_run: expected true or false" },
	{ "{\"v\":1,\"cmd\":\"status\",\"cmd\":\"status\"}", -EINVAL,
	  "not JSON: duplicate object key near '\"cmd\"' at column 27" },
};

static void test_bad(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct ctl_request req;
		struct errmsg err = {};

		assert_int_equal(ctlproto_parse_request(bad[i].line, strlen(bad[i].line), &req,
							&err), bad[i].ret);
		assert_string_equal(err.msg, bad[i].msg);
		assert_null(req.doc);
	}
}

static void test_apply(void **state)
{
	static const char line[] = "{\"v\":1,\"cmd\":\"policy.apply\",\"args\":{\"name\":"
				   "\"/etc/p.yaml\",\"content\":\"version: 1\\n\",\"dry_run\":true}}";
	struct ctl_request req;
	struct errmsg err = {};

	assert_int_equal(ctlproto_parse_request(line, strlen(line), &req, &err), 0);
	assert_int_equal(req.cmd, CTL_POLICY_APPLY);
	assert_string_equal(req.name, "/etc/p.yaml");
	assert_int_equal(req.content_len, 11);
	assert_memory_equal(req.content, "version: 1\n", 11);
	assert_true(req.dry_run);
	assert_true(ctlproto_cmd_changes(req.cmd));
	ctlproto_request_free(&req);
}

/* What sluicectl sends parses back to the same request. */
static void test_request_round_trip(void **state)
{
	struct ctl_request req;
	struct errmsg err = {};
	size_t len = 0;
	char *line;

	for (int c = 0; c < NR_CTL_CMDS; c++) {
		json_t *args = c == CTL_POLICY_APPLY
				       ? json_pack("{s:s, s:s}", "name", "p", "content", "")
				       : NULL;

		line = ctlproto_request(c, args, &len);
		assert_non_null(line);
		assert_int_equal(line[len - 1], '\n');
		assert_int_equal(ctlproto_parse_request(line, len - 1, &req, &err), 0);
		assert_int_equal(req.cmd, c);
		assert_int_equal(ctlproto_cmd_changes(c), c == CTL_POLICY_APPLY ||
							  c == CTL_POLICY_ROLLBACK);
		ctlproto_request_free(&req);
		free(line);
	}
}

static void test_too_long(void **state)
{
	size_t n = CTLPROTO_MAX_REQUEST + 1;
	char *line = malloc(n);
	struct ctl_request req;
	struct errmsg err = {};

	assert_non_null(line);
	memset(line, ' ', n);
	assert_int_equal(ctlproto_parse_request(line, n, &req, &err), -EFBIG);
	assert_string_equal(err.msg, "request longer than 4 MiB");
	free(line);
}

static void test_answers(void **state)
{
	struct errmsg err = {};
	json_t *res;
	size_t len = 0;
	char *line;

	line = ctlproto_ok(json_pack("{s:i}", "generation", 4), &len);
	assert_int_equal(ctlproto_parse_response(line, len - 1, &res, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(res, "generation")), 4);
	json_decref(res);
	free(line);

	line = ctlproto_error(-EPERM, "needs root", &len);
	assert_string_equal(line, "{\"v\":1,\"ok\":false,\"error\":\"needs root\",\"errno\":"
				  "\"EPERM\"}\n");
	assert_int_equal(ctlproto_parse_response(line, len - 1, &res, &err), -EPERM);
	assert_string_equal(err.msg, "needs root");
	assert_null(res);
	free(line);

	/* A reason cut inside a character still goes out, as valid UTF-8. */
	line = ctlproto_error(-EINVAL, "unknown command \"\xc3\"", &len);
	assert_non_null(line);
	assert_int_equal(ctlproto_parse_response(line, len - 1, &res, &err), -EINVAL);
	assert_string_equal(err.msg, "unknown command \"\xef\xbf\xbd\"");
	free(line);

	assert_int_equal(ctlproto_parse_response("{\"v\":2,\"ok\":true}", 17, &res, &err),
			 -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
