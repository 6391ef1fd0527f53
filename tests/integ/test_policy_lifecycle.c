// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Policy generations through the control socket: apply --dry-run shows the
 * diff and changes nothing; apply flips the verdicts and rollback flips
 * them back; history names both with who sent them; a restart keeps the
 * live generation and rollback still works; a bad policy is refused with
 * file:line and the live one stays; a user outside the control groups is
 * refused, a reader can read but not apply; every change is audited.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"
#include "util.h"

#define CTL_MS 20000
#define MAX_ARGS 16
#define READ_GID "4242"
#define NOBODY "65534"
#define FLIPPED "flipped.yaml"
#define BROKEN "broken.yaml"
#define BAD_LINE 6

struct lc {
	struct sl_env *env;
	struct server *echo;
	char sock[PATH_MAX];
	char flipped[PATH_MAX];
	uint32_t gen;			/* the policy: file's generation */
};

/* Runs sluicectl -P PINS -S SOCK ARGS... (after the words of `as`, a setpriv
 * prefix, when non-NULL); its exit status, output in *out and *err. */
static int ctl(struct lc *t, const char *const *as, char **out, char **err, ...)
{
	char bin[PATH_MAX], *argv[MAX_ARGS + 12];
	const char *a;
	int argc = 0, ret;
	va_list ap;

	snprintf(bin, sizeof(bin), "%s/sluicectl", test__build_dir());
	for (; as && *as; as++)
		argv[argc++] = (char *)*as;
	argv[argc++] = bin;
	argv[argc++] = "-P";
	argv[argc++] = t->env->pin_dir;
	argv[argc++] = "-S";
	argv[argc++] = t->sock;
	va_start(ap, err);
	while ((a = va_arg(ap, const char *)) && argc < MAX_ARGS + 10)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	*out = *err = NULL;
	ret = run_argv(argv, out, err, CTL_MS);
	printf("sluicectl");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf(": exit %d\n%s%s", ret, *out ?: "", *err ?: "");
	return ret;
}

static const char *const as_nobody[] = { "setpriv", "--reuid=" NOBODY, "--regid=" NOBODY,
					 "--clear-groups", NULL };
static const char *const as_reader[] = { "setpriv", "--reuid=" NOBODY, "--regid=" NOBODY,
					 "--groups=" READ_GID, NULL };

/* The standard policy turned around for data: notebooks yes, jobs no. */
static int write_flipped(struct sl_env *env, const char *file, const char *port)
{
	return env_write_file(env, file,
			      "version: 1\n"
			      "default: deny\n"
			      "services:\n"
			      "  - name: " SVC_DATA "\n"
			      "    addresses: [%s/32]\n"
			      "    ports: [%s]\n"
			      "rules:\n"
			      "  - name: notebooks-use-data\n"
			      "    from: {kind: notebook}\n"
			      "    to: [" SVC_DATA "]\n"
			      "    action: allow\n",
			      env->ip4_b, port);
}

static void std_enforced(struct lc *t)
{
	echo_via_agent(t->env, t->echo, "job", AF_INET, PORT_ECHO, 1000, NULL);
	connect_denied(t->env, "notebook", AF_INET, PORT_ECHO);
}

static void flipped_enforced(struct lc *t)
{
	echo_via_agent(t->env, t->echo, "notebook", AF_INET, PORT_ECHO, 1000, NULL);
	connect_denied(t->env, "job", AF_INET, PORT_ECHO);
}

static json_t *ctl_json(struct lc *t, const char *what)
{
	char *out, *err;
	json_t *doc = NULL;
	json_error_t jerr;
	int ret;

	if (!strcmp(what, "history"))
		ret = ctl(t, NULL, &out, &err, "-j", "policy", "history", NULL);
	else
		ret = ctl(t, NULL, &out, &err, "-j", "status", NULL);
	if (ASSERT_EQ(ret, 0, what))
		doc = json_loads(out ?: "", 0, &jerr);
	ASSERT_OK_PTR(doc, "JSON");
	free(out);
	free(err);
	return doc;
}

static void dry_run(struct lc *t)
{
	char *out, *err;

	if (!ASSERT_OK(write_flipped(t->env, FLIPPED, "7000"), "write flipped.yaml"))
		return;
	if (!ASSERT_EQ(ctl(t, NULL, &out, &err, "policy", "apply", t->flipped, "--dry-run",
			   NULL), 0, "apply --dry-run"))
		goto out;
	ASSERT_HAS_SUBSTR(out, "dry run against generation", "says it is a dry run");
	ASSERT_HAS_SUBSTR(out, "+ notebooks-use-data", "the added rule");
	ASSERT_HAS_SUBSTR(out, "- jobs-use-data", "the removed rule");
	ASSERT_HAS_SUBSTR(out, ID_NOTEBOOK, "the notebook's pair");
	ASSERT_HAS_SUBSTR(out, ID_JOB, "the job's pair");
	ASSERT_EQ(pinned_generation(t->env), t->gen, "live generation unchanged");
	std_enforced(t);
out:
	free(out);
	free(err);
}

static void apply_and_rollback(struct lc *t)
{
	char *out, *err, want[64];
	json_t *h;

	if (!ASSERT_EQ(ctl(t, NULL, &out, &err, "policy", "apply", t->flipped, NULL), 0,
		       "apply"))
		goto out;
	snprintf(want, sizeof(want), "generation %u live, was %u", t->gen + 1, t->gen);
	ASSERT_HAS_SUBSTR(out, want, "names the new and the old generation");
	ASSERT_EQ(pinned_generation(t->env), t->gen + 1, "live generation");
	flipped_enforced(t);
	free(out);
	free(err);
	/* Without --policy, explain asks the agent what is live. */
	if (ASSERT_EQ(ctl(t, NULL, &out, &err, "policy", "explain", "--from", ID_NOTEBOOK, "--to",
			  SVC_DATA, NULL), 0, "explain the live policy"))
		ASSERT_HAS_SUBSTR(out, "notebooks-use-data", "names the live generation's rule");

	h = ctl_json(t, "history");
	if (h) {
		json_t *g0 = json_array_get(json_object_get(h, "generations"), 0);
		json_t *g1 = json_array_get(json_object_get(h, "generations"), 1);

		ASSERT_EQ(json_integer_value(json_object_get(h, "live")), t->gen + 1, "live");
		ASSERT_EQ(json_integer_value(json_object_get(h, "previous")), t->gen,
			  "previous");
		ASSERT_STREQ(json_string_value(json_object_get(g0, "source")), "socket",
			     "newest from the socket");
		ASSERT_EQ(json_integer_value(json_object_get(g0, "uid")), 0, "sent by uid 0");
		ASSERT_STREQ(json_string_value(json_object_get(g0, "name")), t->flipped,
			     "its file");
		ASSERT_STREQ(json_string_value(json_object_get(g1, "source")), "file",
			     "the first from the policy: file");
		json_decref(h);
	}
	free(out);
	free(err);
	if (!ASSERT_EQ(ctl(t, NULL, &out, &err, "policy", "rollback", NULL), 0, "rollback"))
		goto out;
	ASSERT_EQ(pinned_generation(t->env), t->gen, "live generation after rollback");
	std_enforced(t);
out:
	free(out);
	free(err);
}

/* A restart brings back what was live, not the policy: file, and what
 * rollback reaches. */
static void restart(struct lc *t)
{
	char *out = NULL, *err = NULL;
	json_t *st;

	if (!ASSERT_EQ(ctl(t, NULL, &out, &err, "policy", "rollback", NULL), 0,
		       "rollback to the applied one") ||
	    !ASSERT_OK(agent_stop(t->env), "stop sluiced") ||
	    !ASSERT_OK(agent_start(t->env, NULL), "start sluiced again"))
		goto out;
	ASSERT_EQ(pinned_generation(t->env), t->gen + 1, "the applied generation is live");
	flipped_enforced(t);
	st = ctl_json(t, "status");
	if (st) {
		ASSERT_STREQ(json_string_value(json_object_get(
				     json_object_get(st, "policy"), "source")), "socket",
			     "status: from the socket");
		json_decref(st);
	}
	free(out);
	free(err);
	if (!ASSERT_EQ(ctl(t, NULL, &out, &err, "policy", "rollback", NULL), 0,
		       "rollback after the restart"))
		goto out;
	ASSERT_EQ(pinned_generation(t->env), t->gen, "rolled back to the file's");
	std_enforced(t);
out:
	free(out);
	free(err);
}

static void bad_policy(struct lc *t)
{
	char *out, *err, path[PATH_MAX], want[PATH_MAX + 16];

	env_path(t->env, BROKEN, path, sizeof(path));
	if (!ASSERT_OK(write_flipped(t->env, BROKEN, "70000"), "write broken.yaml"))
		return;
	ASSERT_EQ(ctl(t, NULL, &out, &err, "policy", "apply", path, NULL), 1, "apply refused");
	snprintf(want, sizeof(want), "%s:%d: ", path, BAD_LINE);
	ASSERT_HAS_SUBSTR(err, want, "file:line");
	ASSERT_EQ(pinned_generation(t->env), t->gen, "live generation stays");
	std_enforced(t);
	free(out);
	free(err);
}

static void rights(struct lc *t)
{
	char *out, *err;

	ASSERT_NEQ(ctl(t, as_nobody, &out, &err, "policy", "history", NULL), 0,
		   "nobody refused");
	ASSERT_HAS_SUBSTR(err, "permission denied", "says why");
	free(out);
	free(err);
	ASSERT_EQ(ctl(t, as_reader, &out, &err, "policy", "history", NULL), 0,
		  "a reader reads");
	ASSERT_HAS_SUBSTR(out, "live", "the history");
	free(out);
	free(err);
	ASSERT_EQ(ctl(t, as_reader, &out, &err, "policy", "apply", t->flipped, NULL), 1,
		  "a reader may not apply");
	ASSERT_HAS_SUBSTR(err, "needs root", "says what it needs");
	ASSERT_EQ(pinned_generation(t->env), t->gen, "nothing changed");
	free(out);
	free(err);
}

/* One line per change and per refusal, with who. */
static void audited(struct lc *t)
{
	char path[PATH_MAX];
	char *log;

	env_path(t->env, "run/audit.jsonl", path, sizeof(path));
	log = read_file_from(path, 0);
	if (!ASSERT_OK_PTR(log, "audit log"))
		return;
	ASSERT_HAS_SUBSTR(log, "\"direction\":\"control\"", "control lines");
	ASSERT_HAS_SUBSTR(log, "\"op\":\"policy.apply\",\"uid\":0,\"gid\":0", "apply by root");
	ASSERT_HAS_SUBSTR(log, "\"op\":\"policy.rollback\",\"uid\":0", "rollback by root");
	ASSERT_HAS_SUBSTR(log, "\"reason\":\"not-permitted\"", "the reader's apply");
	ASSERT_HAS_SUBSTR(log, "\"op\":\"policy.apply\",\"uid\":" NOBODY, "with its uid");
	ASSERT_HAS_SUBSTR(log, "\"reason\":\"invalid\"", "the broken policy");
	free(log);
}

void test_policy_lifecycle(struct sl_env *env)
{
	struct agent_cfg cfg = {};
	char extra[PATH_MAX + 128];
	struct lc t = { .env = env };

	env_path(env, "ctl/control.sock", t.sock, sizeof(t.sock));
	env_path(env, FLIPPED, t.flipped, sizeof(t.flipped));
	snprintf(extra, sizeof(extra), "control:\n  socket: %s\n  read_group: " READ_GID "\n",
		 t.sock);
	cfg.extra = extra;
	/* Others may pass through to the socket's own directory, which holds
	 * them to its group. */
	if (!ASSERT_OK(chmod(env->tmp_dir, 0711), "chmod the test directory"))
		return;
	t.echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(t.echo, "echo server") || !start_std_agent(env, &cfg, false))
		return;
	t.gen = pinned_generation(env);
	if (!ASSERT_NEQ(t.gen, 0, "live generation"))
		return;
	if (test__start_subtest("dry_run"))
		dry_run(&t);
	if (test__start_subtest("apply_rollback"))
		apply_and_rollback(&t);
	if (test__start_subtest("restart"))
		restart(&t);
	if (test__start_subtest("bad_policy"))
		bad_policy(&t);
	if (test__start_subtest("rights"))
		rights(&t);
	if (test__start_subtest("audited"))
		audited(&t);
}
