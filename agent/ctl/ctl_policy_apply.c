// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluicectl policy apply, rollback and history: policy generations, over
 * the agent's control socket.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_policy_apply.h"
#include "policy_diff.h"
#include "yamlx.h"

static const char *short_sha(json_t *o)
{
	static char buf[13];
	const char *s = json_string_value(json_object_get(o, "sha256"));

	snprintf(buf, sizeof(buf), "%s", s ? s : "?");
	return buf;
}

static const char *str_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static long long int_of(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static void print_applied(const char *file, json_t *r)
{
	json_t *live = json_object_get(r, "live_generation");

	if (json_is_true(json_object_get(r, "dry_run")))
		printf("%s (sha256 %s): dry run against generation %lld: nothing changed\n", file,
		       short_sha(r), (long long)json_integer_value(live));
	else if (json_is_integer(live))
		printf("%s (sha256 %s): generation %lld live, was %lld (rollback target)\n",
		       file, short_sha(r), int_of(r, "generation"),
		       (long long)json_integer_value(live));
	else
		printf("%s (sha256 %s): generation %lld live\n", file, short_sha(r),
		       int_of(r, "generation"));
	policy_diff_print(json_object_get(r, "diff"), stdout);
	if (json_is_string(json_object_get(r, "warning")))
		printf("warning: %s\n", json_string_value(json_object_get(r, "warning")));
}

int do_policy_apply(int argc, char **argv)
{
	char real[PATH_MAX], *buf = NULL;
	const char *file = NULL;
	bool dry_run = false;
	struct errmsg err = {};
	json_t *args, *r;
	size_t len = 0;
	int ret;

	while (argc) {
		if (!strcmp(*argv, "--dry-run") || !strcmp(*argv, "-n"))
			dry_run = true;
		else if (!file && **argv != '-')
			file = *argv;
		else
			return BAD_ARG();
		NEXT_ARG();
	}
	if (!file)
		return errmsg_set(&ctl_err, -EINVAL, "'apply' needs a policy FILE");
	ret = yamlx_read(file, &buf, &len, &err);
	if (ret)
		return errmsg_set(&ctl_err, ret, "%s", err.msg);
	/* The agent names the file in errors and in history: by the path
	 * that finds it from anywhere. */
	if (!realpath(file, real))
		snprintf(real, sizeof(real), "%s", file);
	args = json_pack("{s:s, s:s%, s:b}", "name", real, "content", buf, len, "dry_run",
			 dry_run);
	free(buf);
	if (!args)
		return errmsg_set(&ctl_err, -EINVAL, "%s: not UTF-8 text", file);
	ret = ctl_request(CTL_POLICY_APPLY, args, &r);
	if (ret)
		return ret;
	if (json_output)
		return print_json(r);
	print_applied(file, r);
	json_decref(r);
	return 0;
}

int do_policy_rollback(int argc, char **argv)
{
	json_t *r;
	int ret;

	if (argc)
		return BAD_ARG();
	ret = ctl_request(CTL_POLICY_ROLLBACK, NULL, &r);
	if (ret)
		return ret;
	if (json_output)
		return print_json(r);
	printf("rolled back: generation %lld live (sha256 %s), generation %lld is the rollback "
	       "target\n", int_of(r, "generation"), short_sha(r), int_of(r, "previous"));
	json_decref(r);
	return 0;
}

static const char *role_of(json_t *doc, long long gen)
{
	if (gen == int_of(doc, "live"))
		return "live";
	if (gen == int_of(doc, "previous"))
		return "rollback";
	return "";
}

static void fmt_by(json_t *g, char *buf, size_t len)
{
	if (json_is_integer(json_object_get(g, "uid")))
		snprintf(buf, len, "uid %lld pid %lld", int_of(g, "uid"), int_of(g, "pid"));
	else
		snprintf(buf, len, "-");
}

static int history_plain(json_t *doc)
{
	static const struct table_col cols[] = {
		{ "GEN", true },     { "STATE", false }, { "TIME", false },
		{ "SOURCE", false }, { "BY", false },    { "SHA256", false },
		{ "NAME", false },   { "CHANGES", false },
	};
	json_t *gens = json_object_get(doc, "generations"), *g;
	char gen[16], by[64];
	struct table t;
	size_t i;
	int ret = 0;

	table_init(&t, cols, ARRAY_SIZE(cols));
	json_array_foreach(gens, i, g) {
		snprintf(gen, sizeof(gen), "%lld", int_of(g, "generation"));
		fmt_by(g, by, sizeof(by));
		ret = table_add(&t, gen, role_of(doc, int_of(g, "generation")),
				str_of(g, "time"), str_of(g, "source"), by, short_sha(g),
				str_of(g, "name"), str_of(g, "summary"));
		if (ret)
			break;
	}
	if (!ret)
		table_print(&t);
	table_free(&t);
	return ret;
}

int do_policy_history(int argc, char **argv)
{
	json_t *r;
	int ret;

	if (argc)
		return BAD_ARG();
	ret = ctl_request(CTL_POLICY_HISTORY, NULL, &r);
	if (ret)
		return ret;
	if (json_output)
		return print_json(r);
	ret = history_plain(r);
	json_decref(r);
	return ret;
}
