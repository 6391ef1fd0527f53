// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl edge: the nginx config a policy's edge: section renders to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "edge_render.h"
#include "policy.h"

static int edge_render_cmd(int argc, char **argv)
{
	struct policy pol = {};
	struct config cfg = {};
	struct errmsg err = {};
	const char *file, *config = NULL;
	char *text = NULL;
	int ret;

	ret = REQ_ARGS(1);
	if (ret)
		return ret;
	file = *argv;
	NEXT_ARG();
	while (argc) {
		if (strcmp(*argv, "-c") && strcmp(*argv, "--config"))
			return BAD_ARG();
		NEXT_ARG();
		ret = REQ_ARGS(1);
		if (ret)
			return ret;
		config = *argv;
		NEXT_ARG();
	}

	ret = policy_load(file, &pol, &err);
	if (ret)
		return errmsg_set(&ctl_err, ret, "%s", err.msg);
	if (config)
		ret = config_load(config, &cfg, &err);
	/* Generation 0: no agent numbered it; sluiced renders its own. */
	if (!ret)
		ret = edge_render(&pol, config ? &cfg : NULL, 0, &text, &err);
	if (ret)
		errmsg_set(&ctl_err, ret, "%s", err.msg);
	else if (json_output)
		ret = print_json(json_pack("{s:s, s:o, s:s}", "file", file, "config",
					   config ? json_string(config) : json_null(), "nginx",
					   text));
	else
		fputs(text, stdout);
	free(text);
	if (config)
		config_free(&cfg);
	policy_free(&pol);
	return ret;
}

static int edge_help(int argc, char **argv)
{
	return print_help(
		"Usage: %1$s edge render POLICY [-c|--config CONFIG]\n"
		"       %1$s edge help\n"
		"\n"
		"render: prints the nginx config (an http{}-level snippet) that sluiced\n"
		"would render from POLICY's edge: section, for review without an agent.\n"
		"The authz upstream is CONFIG's edge.socket, or <run_dir>/authz.sock\n"
		"(default /run/sluice/authz.sock); the generation in it reads 0, sluiced\n"
		"writes the live one. Errors name FILE:LINE and exit 1. nginx -t is not\n"
		"run: sluiced runs it with the outer config before a generation goes live.\n",
		bin_name);
}

static const struct cmd cmds[] = {
	{ "render", edge_render_cmd },
	{ "help", edge_help },
	{ 0 }
};

int do_edge(int argc, char **argv)
{
	return cmd_select(cmds, argc, argv, "edge");
}
