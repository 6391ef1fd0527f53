// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * credentials.json in a temporary directory: written and read back, replaced
 * atomically (an open reader keeps the whole old document, a refused write
 * leaves the file as it was, no temporary file stays behind), token- and
 * key-shaped text cut out of error messages, and each refusal of the reader.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "credfile.h"

#define NOW 1800000000LL
#define NODE_ID "spiffe://acme.example/node/node-a"
#define JOB_ID "spiffe://acme.example/job/1234"
#define JWKS_URL "https://idp.acme.example/jwks"
/* A real ES256 token's shape: header {"alg":"ES256","typ":"JWT"}. */
#define TOKEN                                                                                      \
	"eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzcGlmZmU6Ly9hY21lLmV4YW1wbGUvam9i"     \
	"LzEyMzQifQ.MEUCIQDx3Wd8a1hq9L5cQ2n0xV7"

struct fx {
	char dir[64];
	char path[PATH_MAX];
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	strcpy(fx->dir, "/tmp/test_credfile.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof(fx->path), "%s/%s", fx->dir, CREDFILE_NAME);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	char path[PATH_MAX];
	struct dirent *d;
	DIR *dir = opendir(fx->dir);

	while (dir && (d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", fx->dir, d->d_name);
		unlink(path);
	}
	if (dir)
		closedir(dir);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static const struct cred_entry entries[] = {
	{ .kind = CRED_CA, .name = "spiffe://acme.example", .source = "file", .state = "valid",
	  .not_after = NOW + 86400 * 365, .updated = NOW - 10 },
	{ .kind = CRED_NODE_CERT, .name = NODE_ID, .source = "file", .state = "valid",
	  .not_after = NOW + 3600, .updated = NOW - 10 },
	{ .kind = CRED_TOKEN, .name = JOB_ID, .source = "oidc", .state = "failed",
	  .not_after = NOW + 60, .updated = NOW - 240,
	  .error = "POST https://idp.acme.example/token: Connection refused" },
	{ .kind = CRED_JWKS, .name = JWKS_URL, .source = "oidc", .state = "valid",
	  .updated = NOW - 5, .error = "" },
	{ .kind = CRED_TOKEN, .name = "spiffe://acme.example/notebook/alice", .source = "embedded",
	  .state = "pending" },
};

#define NR_ENTRIES ((int)(sizeof(entries) / sizeof(entries[0])))

static void write_ok(const char *path, const char *node, const struct cred_entry *e, int nr)
{
	struct errmsg err = {};

	if (credfile_write(path, node, e, nr, NULL, NOW, &err))
		fail_msg("credfile_write: %s", err.msg);
}

static json_t *read_ok(const char *path)
{
	struct errmsg err = {};
	json_t *doc = NULL;

	if (credfile_read(path, &doc, &err))
		fail_msg("credfile_read: %s", err.msg);
	return doc;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0;

	assert_non_null(f);
	assert_true(getdelim(&buf, &len, '\0', f) > 0);
	fclose(f);
	return buf;
}

/* How many files dir holds, each failing the test unless it is name. */
static int files_but(const char *path, const char *name)
{
	DIR *dir = opendir(path);
	struct dirent *d;
	int n = 0;

	assert_non_null(dir);
	while ((d = readdir(dir))) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		if (strcmp(d->d_name, name))
			fail_msg("%s: unexpected file %s", path, d->d_name);
		n++;
	}
	closedir(dir);
	return n;
}

static json_t *cred(json_t *doc, size_t i)
{
	json_t *c = json_array_get(json_object_get(doc, "credentials"), i);

	assert_non_null(c);
	return c;
}

static const char *member(json_t *c, const char *key)
{
	return json_string_value(json_object_get(c, key));
}

static void test_write_read_back(void **state)
{
	struct fx *fx = *state;
	struct stat st;
	json_t *doc, *c;
	mode_t old;

	/* Readable by anyone whatever the writer's umask: it holds no secret. */
	old = umask(077);
	write_ok(fx->path, "node-a", entries, NR_ENTRIES);
	umask(old);
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);

	doc = read_ok(fx->path);
	assert_int_equal(json_integer_value(json_object_get(doc, "version")), CREDFILE_VERSION);
	assert_string_equal(member(doc, "node"), "node-a");
	assert_int_equal(json_integer_value(json_object_get(doc, "written")), NOW);
	assert_int_equal(json_array_size(json_object_get(doc, "credentials")), NR_ENTRIES);

	c = cred(doc, 0);
	assert_string_equal(member(c, "kind"), "ca");
	assert_string_equal(member(c, "name"), "spiffe://acme.example");
	assert_string_equal(member(c, "source"), "file");
	assert_string_equal(member(c, "state"), "valid");
	assert_int_equal(json_integer_value(json_object_get(c, "not_after")), NOW + 86400 * 365);
	assert_int_equal(json_integer_value(json_object_get(c, "updated")), NOW - 10);
	assert_true(json_is_null(json_object_get(c, "error")));

	c = cred(doc, 1);
	assert_string_equal(member(c, "kind"), "node-cert");
	assert_string_equal(member(c, "name"), NODE_ID);

	c = cred(doc, 2);
	assert_string_equal(member(c, "kind"), "token");
	assert_string_equal(member(c, "source"), "oidc");
	assert_string_equal(member(c, "state"), "failed");
	assert_int_equal(json_integer_value(json_object_get(c, "not_after")), NOW + 60);
	assert_string_equal(member(c, "error"),
			    "POST https://idp.acme.example/token: Connection refused");

	/* No expiry and an empty error: null, not 0 and "". */
	c = cred(doc, 3);
	assert_string_equal(member(c, "kind"), "jwks");
	assert_string_equal(member(c, "name"), JWKS_URL);
	assert_true(json_is_null(json_object_get(c, "not_after")));
	assert_true(json_is_null(json_object_get(c, "error")));

	c = cred(doc, 4);
	assert_string_equal(member(c, "source"), "embedded");
	assert_string_equal(member(c, "state"), "pending");
	assert_true(json_is_null(json_object_get(c, "updated")));
	json_decref(doc);

	/* No credentials yet is an empty array, not an error. */
	write_ok(fx->path, "node-a", NULL, 0);
	doc = read_ok(fx->path);
	assert_true(json_is_array(json_object_get(doc, "credentials")));
	assert_int_equal(json_array_size(json_object_get(doc, "credentials")), 0);
	json_decref(doc);
}

/* The audit log's health beside the credentials; a path that is not
 * UTF-8 does not cost the file. */
static void test_audit_member(void **state)
{
	struct fx *fx = *state;
	struct cred_audit lost = { .log = "/run/sluice/audit.jsonl", .lines_lost = 3,
				   .error = "No space left on device" };
	struct cred_audit well = { .log = "/var/log/\xff" "audit.jsonl" };
	struct errmsg err = {};
	json_t *doc, *a;

	assert_int_equal(credfile_write(fx->path, "node-a", entries, 1, &lost, NOW, &err), 0);
	doc = read_ok(fx->path);
	a = json_object_get(doc, "audit");
	assert_string_equal(member(a, "log"), lost.log);
	assert_int_equal(json_integer_value(json_object_get(a, "lines_lost")), 3);
	assert_string_equal(member(a, "error"), lost.error);
	json_decref(doc);

	assert_int_equal(credfile_write(fx->path, "node-a", entries, 1, &well, NOW, &err), 0);
	doc = read_ok(fx->path);
	a = json_object_get(doc, "audit");
	assert_string_equal(member(a, "log"), "/var/log/\xef\xbf\xbd" "audit.jsonl");
	assert_int_equal(json_integer_value(json_object_get(a, "lines_lost")), 0);
	assert_true(json_is_null(json_object_get(a, "error")));
	json_decref(doc);

	write_ok(fx->path, "node-a", entries, 1);
	doc = read_ok(fx->path);
	assert_null(json_object_get(doc, "audit"));
	json_decref(doc);
}

static void test_atomic_replace(void **state)
{
	struct fx *fx = *state;
	struct cred_entry bad = entries[0];
	struct errmsg err = {};
	char *before, *after, buf[8192];
	struct stat st_old, st_new;
	json_t *doc;
	ssize_t n;
	int fd;

	write_ok(fx->path, "node-a", entries, NR_ENTRIES);
	before = slurp(fx->path);
	fd = open(fx->path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st_old), 0);

	write_ok(fx->path, "node-a", entries, 1);

	/* The new document is a new file renamed into place: a reader that had
	 * the old one open still reads all of it. */
	assert_int_equal(stat(fx->path, &st_new), 0);
	assert_int_not_equal(st_new.st_ino, st_old.st_ino);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, before);
	doc = read_ok(fx->path);
	assert_int_equal(json_array_size(json_object_get(doc, "credentials")), 1);
	json_decref(doc);

	/* A refused document leaves the file as it was. */
	after = slurp(fx->path);
	bad.state = "fine";
	assert_int_equal(credfile_write(fx->path, "node-a", &bad, 1, NULL, NOW, &err), -EINVAL);
	assert_string_equal(err.msg, "credential 0 (spiffe://acme.example): needs a kind, a name, "
				     "a source (file, embedded, oidc) and a state (valid, expired, "
				     "pending, failed)");
	free(before);
	before = slurp(fx->path);
	assert_string_equal(before, after);

	/* And nothing is left beside it. */
	assert_int_equal(files_but(fx->dir, CREDFILE_NAME), 1);
	free(before);
	free(after);
}

static void test_refuses_bad_entries(void **state)
{
	struct fx *fx = *state;
	struct errmsg err = {};
	struct cred_entry e;

	e = entries[1];
	e.kind = 0;
	assert_int_equal(credfile_write(fx->path, "node-a", &e, 1, NULL, NOW, &err), -EINVAL);
	e = entries[1];
	e.kind = CRED_JWKS + 1;
	assert_int_equal(credfile_write(fx->path, "node-a", &e, 1, NULL, NOW, &err), -EINVAL);
	e = entries[1];
	e.source = "disk";
	assert_int_equal(credfile_write(fx->path, "node-a", &e, 1, NULL, NOW, &err), -EINVAL);
	e = entries[1];
	e.state = NULL;
	assert_int_equal(credfile_write(fx->path, "node-a", &e, 1, NULL, NOW, &err), -EINVAL);
	e = entries[1];
	e.name = "";
	assert_int_equal(credfile_write(fx->path, "node-a", &e, 1, NULL, NOW, &err), -EINVAL);
	assert_string_equal(err.msg, "credential 0 (no name): needs a kind, a name, a source "
				     "(file, embedded, oidc) and a state (valid, expired, pending, "
				     "failed)");
	/* Nothing was written. */
	assert_int_equal(access(fx->path, F_OK), -1);

	/* A directory that is not there. */
	assert_int_equal(credfile_write("/nonexistent-sluice/" CREDFILE_NAME, "node-a", entries, 1,
					NULL, NOW, &err),
			 -ENOENT);
	assert_non_null(strstr(err.msg, "cannot create /nonexistent-sluice/" CREDFILE_NAME "."));
}

static void test_nothing_secret_like(void **state)
{
	struct fx *fx = *state;
	struct cred_entry e = entries[2];
	char *text;
	json_t *doc;

	e.error = "POST https://idp.acme.example/token: HTTP 400: invalid_grant: token "
		  TOKEN " was refused\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB...";
	write_ok(fx->path, "node-a", &e, 1);
	text = slurp(fx->path);
	assert_null(strstr(text, "eyJhbGci"));
	assert_null(strstr(text, "MEUCIQDx3Wd8"));
	assert_null(strstr(text, "BEGIN"));
	assert_null(strstr(text, "MHcCAQEEIB"));
	assert_null(strstr(text, "\\n"));
	free(text);
	doc = read_ok(fx->path);
	assert_string_equal(member(cred(doc, 0), "error"),
			    "POST https://idp.acme.example/token: HTTP 400: invalid_grant: token "
			    "[token] was refused?[pem]");
	json_decref(doc);

	/* What only starts like a token, and control and non-ASCII bytes. */
	e.error = "kid eyJ.a.b unknown;\tstatus \x1b[31m\xc3\xa9";
	write_ok(fx->path, "node-a", &e, 1);
	doc = read_ok(fx->path);
	assert_string_equal(member(cred(doc, 0), "error"),
			    "kid eyJ.a.b unknown;?status ?[31m??");
	json_decref(doc);
}

/* After the file's path in the message; with prefix set, how the message
 * starts (what follows is jansson's wording). */
static void read_fails(const char *path, int want, const char *want_msg, bool prefix)
{
	char msg[PATH_MAX + 256];
	struct errmsg err = {};
	json_t *doc = (json_t *)1;

	snprintf(msg, sizeof(msg), "%s%s", path, want_msg);
	assert_int_equal(credfile_read(path, &doc, &err), want);
	assert_null(doc);
	if (prefix && !strncmp(err.msg, msg, strlen(msg)))
		return;
	assert_string_equal(err.msg, msg);
}

#define TIMES_MSG                                                                          \
	"needs the strings kind, name, source and state, and not_after and updated as Unix "   \
	"times (0 to 9999-12-31) or null"

static void test_read_refuses(void **state)
{
	static const struct {
		const char *doc;
		const char *msg;
		bool prefix;
	} v[] = {
		{ "{\"version\": 1, \"node\": \"a\", \"credentials\": [", ":1: not JSON: ", true },
		{ "{\"version\": 1, \"version\": 1, \"node\": \"a\", \"credentials\": []}",
		  ":1: not JSON: duplicate object key", true },
		{ "{\"version\": 2, \"node\": \"a\", \"credentials\": []}",
		  ": version 2; this build reads version 1 (sluicectl and sluiced come from "
		  "different builds)", false },
		{ "{\"node\": \"a\", \"credentials\": []}",
		  ": not a sluice credentials file (no version)", false },
		{ "{\"version\": 1, \"node\": \"a\", \"credentials\": {}}",
		  ": no \"node\" string or \"credentials\" array", false },
		{ "{\"version\": 1, \"credentials\": []}",
		  ": no \"node\" string or \"credentials\" array", false },
		{ "{\"version\": 1, \"node\": \"a\", \"credentials\": [{\"kind\": \"ca\", "
		  "\"name\": \"x\", \"source\": \"file\", \"state\": \"valid\", "
		  "\"not_after\": \"tomorrow\"}]}",
		  ": credential 0: " TIMES_MSG, false },
		{ "{\"version\": 1, \"node\": \"a\", \"credentials\": [{\"kind\": \"ca\"}]}",
		  ": credential 0: " TIMES_MSG, false },
		/* sluicectl subtracts them from the clock. */
		{ "{\"version\": 1, \"node\": \"a\", \"credentials\": [{\"kind\": \"ca\", "
		  "\"name\": \"x\", \"source\": \"file\", \"state\": \"valid\", "
		  "\"not_after\": -9223372036854775808}]}",
		  ": credential 0: " TIMES_MSG, false },
		{ "{\"version\": 1, \"node\": \"a\", \"credentials\": [{\"kind\": \"ca\", "
		  "\"name\": \"x\", \"source\": \"file\", \"state\": \"valid\", "
		  "\"updated\": 253402300800}]}",
		  ": credential 0: " TIMES_MSG, false },
		{ "{\"version\": 1, \"node\": \"a\", \"credentials\": [], \"audit\": "
		  "{\"log\": \"/x\", \"lines_lost\": \"3\"}}",
		  ": \"audit\" needs a \"log\" string and a \"lines_lost\" number", false },
	};
	struct fx *fx = *state;
	char want[64];
	FILE *f;
	int fd;

	read_fails(fx->path, -ENOENT, ": No such file or directory", false);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		f = fopen(fx->path, "we");
		assert_non_null(f);
		assert_true(fputs(v[i].doc, f) >= 0);
		fclose(f);
		read_fails(fx->path, -EINVAL, v[i].msg, v[i].prefix);
	}

	fd = open(fx->path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, CREDFILE_MAX_SIZE + 1), 0);
	close(fd);
	snprintf(want, sizeof(want), ": %d bytes, more than a credentials file has",
		 CREDFILE_MAX_SIZE + 1);
	read_fails(fx->path, -EFBIG, want, false);
}

static void test_kind_names(void **state)
{
	assert_string_equal(cred_kind_name(CRED_CA), "ca");
	assert_string_equal(cred_kind_name(CRED_NODE_CERT), "node-cert");
	assert_string_equal(cred_kind_name(CRED_TOKEN), "token");
	assert_string_equal(cred_kind_name(CRED_JWKS), "jwks");
	assert_null(cred_kind_name(0));
	assert_null(cred_kind_name(CRED_JWKS + 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind_names),
		cmocka_unit_test_setup_teardown(test_write_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_member, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomic_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_bad_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_secret_like, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_refuses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
