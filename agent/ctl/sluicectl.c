// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * sluicectl: inspects a node's sluice datapath through the maps and links
 * sluiced pins, in the manner of bpftool.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "ctl.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "dev"
#endif

bool json_output;
bool pretty_output;
const char *pin_path = SLUICE_PIN_PATH;
const char *control_path = CTL_DEFAULT_SOCKET;
const char *bin_name = "sluicectl";
struct errmsg ctl_err;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %1$s [OPTIONS] OBJECT { COMMAND | help }\n"
		"       %1$s help\n"
		"       %1$s version\n"
		"\n"
		"       OBJECT := { status | workload | flow | violation | audit | top |\n"
		"                   stats | service | policy | map | ca | cred | edge }\n"
		"       OPTIONS := { -j|--json [-p|--pretty] | -P|--pin-path DIR |\n"
		"                    -S|--socket PATH | -h|--help | -V|--version }\n"
		"\n"
		"Reads the BPF maps and links sluiced pins under DIR (default %2$s,\n"
		"or $SLUICE_PIN_PATH), so it also works while sluiced is down. What changes\n"
		"the agent (policy apply, rollback) and what only the agent knows (policy\n"
		"history) goes through its control socket PATH (default %3$s,\n"
		"or $SLUICE_CONTROL_SOCKET; docs/control.md). Options come before OBJECT.\n"
		"'%1$s OBJECT help' describes the commands of an object.\n",
		bin_name, SLUICE_PIN_PATH, CTL_DEFAULT_SOCKET);
}

static int do_help(int argc, char **argv)
{
	if (json_output)
		return print_json(json_null());
	usage(stdout);
	return 0;
}

static int do_version(int argc, char **argv)
{
	if (argc)
		return BAD_ARG();
	if (json_output)
		return print_json(json_pack("{s:s, s:i, s:s}", "version", SLUICE_VERSION,
					    "abi_version", SLUICE_ABI_VERSION, "libbpf",
					    libbpf_version_string()));
	printf("%s %s (ABI %d, libbpf %s)\n", bin_name, SLUICE_VERSION, SLUICE_ABI_VERSION,
	       libbpf_version_string());
	return 0;
}

static const struct cmd cmds[] = {
	{ "help", do_help },
	{ "status", do_status },
	{ "workload", do_workload },
	{ "flow", do_flow },
	{ "violation", do_violation },
	{ "audit", do_audit },
	{ "top", do_top },
	{ "stats", do_stats },
	{ "service", do_service },
	{ "policy", do_policy },
	{ "map", do_map },
	{ "ca", do_ca },
	{ "cred", do_cred },
	{ "edge", do_edge },
	{ "version", do_version },
	{ 0 }
};

static void print_error(void)
{
	if (json_output)
		print_json(json_pack("{s:s}", "error", ctl_err.msg));
	else
		fprintf(stderr, "Error: %s\n", ctl_err.msg);
}

static int parse_options(int argc, char **argv, bool *done)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "pin-path", required_argument, NULL, 'P' },
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *env = getenv("SLUICE_PIN_PATH");
	int c;

	if (env && *env)
		pin_path = env;
	env = getenv("SLUICE_CONTROL_SOCKET");
	if (env && *env)
		control_path = env;
	/* '+': stop at OBJECT, whose commands take options of their own. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:jpP:S:hV", opts, NULL)) >= 0) {
		switch (c) {
		case 'p':
			pretty_output = true;
			/* fallthrough */
		case 'j':
			json_output = true;
			break;
		case 'P':
			pin_path = optarg;
			break;
		case 'S':
			control_path = optarg;
			break;
		case 'h':
			*done = true;
			return do_help(0, NULL);
		case 'V':
			*done = true;
			return do_version(0, NULL);
		case ':':
			return errmsg_set(&ctl_err, -EINVAL, "option '%s' needs an argument",
					  argv[optind - 1]);
		default:
			if (optopt)
				return errmsg_set(&ctl_err, -EINVAL,
						  "unknown option '-%c' (see '%s help')", optopt,
						  bin_name);
			return errmsg_set(&ctl_err, -EINVAL, "unknown option '%s' (see '%s help')",
					  argv[optind - 1], bin_name);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	bool done = false;
	int ret;

	ret = parse_options(argc, argv, &done);
	if (!ret && !done) {
		argc -= optind;
		argv += optind;
		if (!argc && !json_output) {
			usage(stderr);
			return 1;
		}
		if (!argc)
			ret = errmsg_set(&ctl_err, -EINVAL, "no OBJECT given (see '%s help')",
					 bin_name);
		else
			ret = cmd_select(cmds, argc, argv, NULL);
	}
	if (ret == CTL_FAILED)
		return 1;
	if (ret) {
		print_error();
		return 1;
	}
	return 0;
}
