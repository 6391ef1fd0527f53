// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl cred: the agent's credentials and when each expires. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "credfile.h"
#include "ctl.h"
#include "pki.h"

/* What a credential is now. The file's state is as of when the agent wrote
 * it: one past its not_after is expired whatever the file says, since the
 * agent may have stopped before it could write that. */
static const char *state_now(json_t *c, time_t now)
{
	const char *state = json_string_value(json_object_get(c, "state"));
	json_int_t not_after = json_integer_value(json_object_get(c, "not_after"));

	if (not_after && not_after <= now && !strcmp(state, "valid"))
		return "expired";
	return state;
}

static json_t *cred_json(json_t *doc, time_t now)
{
	json_t *arr = json_array(), *c, *v;
	json_int_t not_after;
	size_t i;

	json_array_foreach(json_object_get(doc, "credentials"), i, c) {
		v = json_deep_copy(c);
		not_after = json_integer_value(json_object_get(c, "not_after"));
		if (!v || json_object_set_new(v, "node", json_copy(json_object_get(doc, "node"))) ||
		    json_object_set_new(v, "state", json_string(state_now(c, now))) ||
		    json_object_set_new(v, "expires_in_s",
					not_after ? json_integer(not_after - now) : json_null()) ||
		    json_array_append_new(arr, v)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static const char *str(json_t *c, const char *key)
{
	return json_string_value(json_object_get(c, key));
}

/* Decisions missing from the audit log are said; a healthy log is not. */
static void audit_plain(json_t *audit)
{
	json_int_t lost = json_integer_value(json_object_get(audit, "lines_lost"));

	if (lost > 0)
		printf("audit %s: %lld lines lost since sluiced started, the last: %s\n",
		       str(audit, "log"), (long long)lost, str(audit, "error") ?: "-");
}

static int cred_plain(json_t *doc, time_t now)
{
	static const struct table_col cols[] = {
		{ "KIND", false }, { "NAME", false },	    { "SOURCE", false },
		{ "STATE", false }, { "EXPIRES-IN", true }, { "NOT-AFTER", false },
	};
	json_t *creds = json_object_get(doc, "credentials"), *c;
	char in[48], at[32];
	json_int_t not_after;
	struct table t;
	int ret = 0;
	size_t i;

	table_init(&t, cols, ARRAY_SIZE(cols));
	json_array_foreach(creds, i, c) {
		not_after = json_integer_value(json_object_get(c, "not_after"));
		if (not_after) {
			fmt_expires_in(not_after, now, in, sizeof(in));
			pki_fmt_time(not_after, at, sizeof(at));
		} else {
			snprintf(in, sizeof(in), "-");
			snprintf(at, sizeof(at), "-");
		}
		ret = table_add(&t, str(c, "kind"), str(c, "name"), str(c, "source"),
				state_now(c, now), in, at);
		if (ret)
			break;
	}
	if (!ret)
		table_print(&t);
	table_free(&t);
	/* Errors are too long for a column: one line each, under the table. */
	json_array_foreach(creds, i, c) {
		if (!ret && str(c, "error"))
			printf("%s %s: %s\n", str(c, "kind"), str(c, "name"), str(c, "error"));
	}
	if (!ret)
		audit_plain(json_object_get(doc, "audit"));
	return ret;
}

static int cred_help(int argc, char **argv)
{
	return print_help(
		"Usage: %1$s cred { list | show } [--run-dir DIR]\n"
		"       %1$s cred help\n"
		"\n"
		"list: the node's credentials and when each expires: the mesh CA, the\n"
		"node certificate, each workload's token and the IdP's JWKS, as sluiced\n"
		"last wrote them to DIR/%2$s (DIR: its run_dir, default\n"
		"%3$s). KIND is ca, node-cert, token or jwks; NAME the SPIFFE ID or\n"
		"URL; SOURCE file, embedded (minted by the agent) or oidc (from the IdP);\n"
		"STATE valid, expired, pending (not obtained yet) or failed (the last\n"
		"refresh failed: a cached credential is still used until it expires).\n"
		"One past its NOT-AFTER shows expired even if the agent has not said so.\n"
		"The last error of each credential follows the table, and the count of\n"
		"decisions the agent could not write to its audit log, if any.\n",
		bin_name, CREDFILE_NAME, CREDFILE_DEFAULT_DIR);
}

static int cred_list(int argc, char **argv)
{
	const char *run_dir = CREDFILE_DEFAULT_DIR;
	char path[PATH_MAX];
	struct errmsg err;
	time_t now;
	json_t *doc;
	int ret;

	while (argc) {
		if (!strcmp(*argv, "--help") || !strcmp(*argv, "-h"))
			return cred_help(0, NULL);
		if (strcmp(*argv, "--run-dir"))
			return BAD_ARG();
		NEXT_ARG();
		ret = REQ_ARGS(1);
		if (ret)
			return ret;
		run_dir = *argv;
		NEXT_ARG();
	}
	snprintf(path, sizeof(path), "%s/%s", run_dir, CREDFILE_NAME);

	ret = credfile_read(path, &doc, &err);
	if (ret == -ENOENT)
		return errmsg_set(&ctl_err, ret,
				  "no credentials file at %s; is sluiced running with identity: "
				  "configured?",
				  path);
	if (ret)
		return errmsg_set(&ctl_err, ret, "%s", err.msg);
	now = time(NULL);
	if (json_output) {
		json_t *arr = cred_json(doc, now);

		json_decref(doc);
		if (!arr)
			return errmsg_set(&ctl_err, -ENOMEM, "out of memory");
		return print_json(arr);
	}
	ret = cred_plain(doc, now);
	json_decref(doc);
	return ret;
}

static const struct cmd cmds[] = {
	{ "list", cred_list },
	{ "show", cred_list },
	{ "help", cred_help },
	{ 0 }
};

int do_cred(int argc, char **argv)
{
	/* `cred --run-dir DIR` lists, as `cred` alone does. */
	if (argc && **argv == '-')
		return cred_list(argc, argv);
	return cmd_select(cmds, argc, argv, "cred");
}
