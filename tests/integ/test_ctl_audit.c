// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl audit reads an audit log the way an operator asks it: each
 * filter selects exactly its lines, a line that is not JSON is reported
 * with its number and the rest still read, members it does not know pass
 * through, and --follow sees lines appended later, also after a rotation. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "harness.h"
#include "util.h"

#define FIXTURE "tests/data/audit/mixed.jsonl"
#define MAX_ARGS 16

/* sluicectl ARGS... (NULL-terminated); stdout and stderr in *out, *err. */
static int ctl(char **out, char **err, ...)
{
	char bin[PATH_MAX], *argv[MAX_ARGS + 2];
	int argc = 0;
	const char *a;
	va_list ap;

	snprintf(bin, sizeof(bin), "%s/sluicectl", test__build_dir());
	argv[argc++] = bin;
	va_start(ap, err);
	while ((a = va_arg(ap, const char *)) && argc < MAX_ARGS)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	*out = *err = NULL;
	return run_argv(argv, out, err, 10000);
}

/* How many records sluicectl -j audit FIXTURE FILTERS... selects; -1 on
 * failure. */
static long selected(const char *f1, const char *v1, const char *f2, const char *v2)
{
	char *out, *err;
	json_t *j;
	long n = -1;

	if (ctl(&out, &err, "-j", "audit", FIXTURE, f1, v1, f2, v2, NULL) == 0) {
		j = json_loads(out, 0, NULL);
		if (json_is_array(j))
			n = json_array_size(j);
		json_decref(j);
	}
	free(out);
	free(err);
	return n;
}

static void filters(void)
{
	char *out, *err;
	json_t *j;

	ASSERT_EQ(selected(NULL, NULL, NULL, NULL), 4, "all records");
	ASSERT_EQ(selected("--workload", "notebook/77", NULL, NULL), 2, "--workload by suffix");
	ASSERT_EQ(selected("--workload", "spiffe://acme.example/job/1234", NULL, NULL), 1,
		  "--workload in full");
	ASSERT_EQ(selected("--workload", "alice", NULL, NULL), 1, "--workload matches caller");
	ASSERT_EQ(selected("--service", "api", NULL, NULL), 2, "--service");
	ASSERT_EQ(selected("--verdict", "allow", NULL, NULL), 1, "--verdict");
	ASSERT_EQ(selected("--reason", "default-deny", "--direction", "outbound"), 2,
		  "--reason and --direction");
	ASSERT_EQ(selected("--trace", "0af7651916cd43dd8448eb211c80319c", NULL, NULL), 1,
		  "--trace");
	ASSERT_EQ(selected("--since", "2026-11-20T10:00:01Z", "--until", "2026-11-20T11:00:00Z"),
		  2, "--since and --until");
	ASSERT_EQ(selected("--since", "1d", NULL, NULL), 0, "--since an age (the fixture is old)");

	if (ASSERT_EQ(ctl(&out, &err, "-j", "audit", FIXTURE, "--limit", "1", NULL), 0,
		      "--limit 1 exit status")) {
		j = json_loads(out, 0, NULL);
		ASSERT_EQ(json_array_size(j), 1, "--limit 1 records");
		ASSERT_STREQ(json_string_value(json_object_get(json_array_get(j, 0), "direction")),
			     "edge", "--limit keeps the last");
		json_decref(j);
		ASSERT_HAS_SUBSTR(err, FIXTURE ":3: not a JSON object, skipped",
				  "the bad line is reported with its number");
	}
	free(out);
	free(err);
	if (ASSERT_EQ(ctl(&out, &err, "-j", "audit", FIXTURE, "--trace",
			  "0af7651916cd43dd8448eb211c80319c", NULL), 0, "--trace exit status"))
		ASSERT_HAS_SUBSTR(out, "\"future_member\"", "unknown members pass through");
	free(out);
	free(err);
	ASSERT_EQ(ctl(&out, &err, "audit", FIXTURE, "x41", NULL), 1, "a stray word");
	free(out);
	free(err);
	ASSERT_EQ(ctl(&out, &err, "audit", FIXTURE, "--since", "yesterday", NULL), 1,
		  "a bad --since");
	ASSERT_HAS_SUBSTR(err, "--since takes an RFC 3339 time", "--since error");
	free(out);
	free(err);
	ASSERT_EQ(ctl(&out, &err, "audit", "/nonexistent/audit.jsonl", NULL), 1, "a missing file");
	ASSERT_HAS_SUBSTR(err, "cannot read /nonexistent/audit.jsonl", "missing file error");
	free(out);
	free(err);
}

static void append(const char *path, const char *reason)
{
	FILE *f = fopen(path, "a");

	if (!ASSERT_OK_PTR(f, "audit file"))
		return;
	fprintf(f, "{\"time\":\"2026-12-02T13:00:00Z\",\"schema\":3,\"direction\":\"outbound\","
		   "\"verdict\":\"deny\",\"reason\":\"%s\"}\n", reason);
	fclose(f);
}

/* --follow: a line appended later is printed; after a rename and a new
 * file, so is the new file's. */
static void follow(struct sl_env *env)
{
	char path[PATH_MAX], moved[PATH_MAX], bin[PATH_MAX], outp[PATH_MAX], *text = NULL;
	char cmd[4 * PATH_MAX];
	pid_t pid;

	env_path(env, "audit.jsonl", path, sizeof(path));
	env_path(env, "audit.jsonl.1", moved, sizeof(moved));
	env_path(env, "follow.out", outp, sizeof(outp));
	snprintf(bin, sizeof(bin), "%s/sluicectl", test__build_dir());
	append(path, "first");
	snprintf(cmd, sizeof(cmd), "exec %s -j audit %s --follow > %s 2>&1", bin, path, outp);
	pid = fork();
	if (pid == 0) {
		child_reset_signals();
		execl("/bin/sh", "sh", "-c", cmd, NULL);
		_exit(127);
	}
	if (!ASSERT_GE(pid, 1, "fork"))
		return;
	env_track_child(env, pid);
	append(path, "second");
	ASSERT_TRUE(file_wait(outp, 0, "\"second\"", 5000), "appended line followed");
	ASSERT_OK(rename(path, moved), "rotate");
	append(moved, "third");
	append(path, "fourth");
	ASSERT_TRUE(file_wait(outp, 0, "\"fourth\"", 5000), "the new file followed");
	text = read_file_from(outp, 0);
	ASSERT_HAS_SUBSTR(text ?: "", "\"third\"", "the rest of the old file read first");
	free(text);
	kill(pid, SIGTERM);
	wait_child(pid, NULL, 5000);
	env_untrack_child(env, pid);
}

void test_ctl_audit(struct sl_env *env)
{
	if (test__start_subtest("filters"))
		filters();
	if (test__start_subtest("follow"))
		follow(env);
}
