// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluicectl policy explain and test: what a policy file decides, and why,
 * without an agent: they read files, never the maps.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "ctl_policy_explain.h"
#include "policy.h"
#include "policy_cases.h"
#include "policy_explain.h"

/* The policy and config a command decides with; cfg stays zeroed without
 * a config. */
struct decide_input {
	struct policy pol;
	struct config cfg;
};

static void input_free(struct decide_input *in)
{
	policy_free(&in->pol);
	config_free(&in->cfg);
}

/* The agent's live generation, over the control socket: what it
 * enforces, named as it was applied. */
static int live_policy_load(struct policy *pol, struct errmsg *err)
{
	const char *name, *content;
	json_t *r;
	int ret;

	ret = ctl_request(CTL_POLICY_GET, NULL, &r);
	if (ret)
		return errmsg_set(err, ret, "the live policy: %s (or give --policy FILE)",
				  ctl_err.msg);
	name = json_string_value(json_object_get(r, "name"));
	content = json_string_value(json_object_get(r, "content"));
	if (!name || !content)
		ret = errmsg_set(err, -EPROTO, "the agent's policy.get answer has no name or "
				 "content");
	else
		ret = policy_load_buf(name, content, json_string_length(json_object_get(r, "content")),
				      pol, err);
	json_decref(r);
	return ret;
}

/* Where the policy comes from: the file, checked as `policy check` does,
 * or (file NULL) the agent's live one. */
static int policy_source_load(const char *file, struct policy *pol, struct errmsg *err)
{
	return file ? policy_load(file, pol, err) : live_policy_load(pol, err);
}

/* The policy, then the config (optional) checked against it. */
static int input_load(const char *file, const char *config, struct decide_input *in)
{
	struct errmsg err = {};
	int ret;

	memset(in, 0, sizeof(*in));
	ret = policy_source_load(file, &in->pol, &err);
	if (!ret && config) {
		ret = config_load(config, &in->cfg, &err);
		if (!ret)
			ret = policy_check_config(&in->pol, &in->cfg, &err);
	}
	if (ret) {
		input_free(in);
		return errmsg_set(&ctl_err, ret, "%s", err.msg);
	}
	return 0;
}

struct explain_args {
	const char *policy, *config, *from, *to, *method, *path;
};

/* Each option once, as `--name VALUE`. */
static int explain_parse(int argc, char **argv, struct explain_args *a)
{
	static const struct {
		const char *name;
		size_t off;
	} opts[] = {
		{ "--policy", offsetof(struct explain_args, policy) },
		{ "-c", offsetof(struct explain_args, config) },
		{ "--config", offsetof(struct explain_args, config) },
		{ "--from", offsetof(struct explain_args, from) },
		{ "--to", offsetof(struct explain_args, to) },
		{ "--method", offsetof(struct explain_args, method) },
		{ "--path", offsetof(struct explain_args, path) },
	};
	const char **slot;
	size_t i;
	int ret;

	memset(a, 0, sizeof(*a));
	while (argc) {
		for (i = 0; i < ARRAY_SIZE(opts) && strcmp(*argv, opts[i].name); i++)
			;
		if (i == ARRAY_SIZE(opts))
			return BAD_ARG();
		slot = (const char **)((char *)a + opts[i].off);
		if (*slot)
			return errmsg_set(&ctl_err, -EINVAL, "'%s' given twice", *argv);
		NEXT_ARG();
		ret = REQ_ARGS(1);
		if (ret)
			return ret;
		*slot = *argv;
		NEXT_ARG();
	}
	if (!a->from || !a->to)
		return errmsg_set(&ctl_err, -EINVAL, "'explain' needs --from SRC and --to DST");
	if (!a->method != !a->path)
		return errmsg_set(&ctl_err, -EINVAL, "--method and --path go together");
	return 0;
}

int do_policy_explain(int argc, char **argv)
{
	struct policy_source src;
	struct decide_input in;
	struct explain_args a;
	struct errmsg err = {};
	json_t *doc;
	int ret;

	ret = explain_parse(argc, argv, &a);
	if (!ret)
		ret = input_load(a.policy, a.config, &in);
	if (ret)
		return ret;
	ret = policy_source_parse(a.from, &in.pol, a.config ? &in.cfg : NULL, &src, &err);
	if (!ret)
		ret = policy_explain(&in.pol, &src.id, a.to, a.method, a.path, &doc, &err);
	if (ret) {
		input_free(&in);
		return errmsg_set(&ctl_err, ret, "%s", err.msg);
	}
	if (json_output) {
		ret = print_json(doc);
	} else {
		policy_explain_print(doc, stdout);
		json_decref(doc);
	}
	input_free(&in);
	return ret;
}

int do_policy_test(int argc, char **argv)
{
	const char *file, *cases_file, *config = NULL;
	struct policy_cases cases;
	struct decide_input in;
	struct errmsg err = {};
	json_t *doc;
	int ret, failed;

	ret = REQ_ARGS(2);
	if (ret)
		return ret;
	file = *argv;
	/* CASES [-c CONFIG]: the arguments of `policy check`. */
	NEXT_ARG();
	ret = parse_file_config(argc, argv, &cases_file, &config);
	if (!ret)
		ret = input_load(file, config, &in);
	if (ret)
		return ret;
	ret = policy_cases_load(cases_file, &in.pol, config ? &in.cfg : NULL, &cases, &err);
	if (!ret) {
		ret = policy_cases_run(&in.pol, &cases, &doc, &err);
		policy_cases_free(&cases);
	}
	if (ret) {
		input_free(&in);
		return errmsg_set(&ctl_err, ret, "%s", err.msg);
	}
	failed = json_integer_value(json_object_get(doc, "failed"));
	if (json_output) {
		ret = print_json(doc);
	} else {
		policy_cases_print(doc, stdout);
		json_decref(doc);
	}
	input_free(&in);
	return ret ? ret : failed ? CTL_FAILED : 0;
}
