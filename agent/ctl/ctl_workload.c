// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl workload: the cgroups sluiced manages and their identities. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"

struct workload_row {
	__u64 cgroup_id;
	__u32 identity;
	__u32 flags;
	char name[SLUICE_NAME_LEN];
	char cgroup[PATH_MAX];		/* empty when the cgroup is gone */
};

static int row_cmp(const void *a, const void *b)
{
	const struct workload_row *x = a, *y = b;

	return cmp_u64(x->identity, y->identity) ?: cmp_u64(x->cgroup_id, y->cgroup_id);
}

static json_t *workloads_json(const struct workload_row *rows, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		const struct workload_row *r = &rows[i];

		json_array_append_new(
			arr, json_pack("{s:o, s:o, s:o, s:o, s:b, s:o}", "cgroup_id",
				       json_u64(r->cgroup_id), "identity", json_u64(r->identity),
				       "workload", json_name(SLUICE_NAME_IDENTITY, r->identity),
				       "flags", json_u64(r->flags), "managed",
				       (r->flags & SLUICE_WL_MANAGED) != 0, "cgroup",
				       *r->cgroup ? json_string(r->cgroup) : json_null()));
	}
	return arr;
}

static int workloads_plain(const struct workload_row *rows, size_t n)
{
	static const struct table_col cols[] = {
		{ "CGROUP ID", true }, { "ID", true }, { "WORKLOAD", false }, { "FLAGS", false },
		{ "CGROUP", false },
	};
	char cg[24], id[12];
	struct table t;
	int ret = 0;

	table_init(&t, cols, ARRAY_SIZE(cols));
	for (size_t i = 0; i < n && !ret; i++) {
		const struct workload_row *r = &rows[i];

		snprintf(id, sizeof(id), "%u", r->identity);
		ret = table_add(&t, fmt_u64(r->cgroup_id, cg, sizeof(cg)), id, r->name,
				r->flags & SLUICE_WL_MANAGED ? "managed" : "-",
				*r->cgroup ? r->cgroup : "(gone)");
	}
	if (!ret)
		table_print(&t);
	table_free(&t);
	return ret;
}

static bool workload_fill(const struct map_snap *s, size_t i, void *row, void *ctx)
{
	const struct sluice_workload *w = snap_value(s, i, 0);
	struct workload_row *r = row;

	r->cgroup_id = *(const __u64 *)snap_key(s, i);
	r->identity = w->identity;
	r->flags = w->flags;
	ctl_name(SLUICE_NAME_IDENTITY, r->identity, r->name, sizeof(r->name));
	if (cgroup_id_path(r->cgroup_id, r->cgroup, sizeof(r->cgroup)))
		r->cgroup[0] = '\0';
	return true;
}

static int workload_list(int argc, char **argv)
{
	struct workload_row *rows = NULL;
	size_t n = 0;
	int ret;

	if (argc)
		return BAD_ARG();
	ret = map_rows("workloads", sizeof(*rows), workload_fill, NULL, row_cmp, (void **)&rows,
		       &n);
	if (!ret)
		ret = json_output ? print_json(workloads_json(rows, n)) : workloads_plain(rows, n);
	free(rows);
	return ret;
}

static int workload_help(int argc, char **argv)
{
	return print_help(
		"Usage: %1$s workload { list | help }\n"
		"\n"
		"Lists the cgroups in the workloads map: cgroup id, numeric identity,\n"
		"workload identity (SPIFFE ID, from the names map), flags (managed: its\n"
		"connects are subject to policy) and the cgroup's path under the cgroup2\n"
		"mount ((gone) when the cgroup no longer exists).\n",
		bin_name);
}

static const struct cmd cmds[] = {
	{ "list", workload_list },
	{ "show", workload_list },
	{ "help", workload_help },
	{ 0 }
};

int do_workload(int argc, char **argv)
{
	return cmd_select(cmds, argc, argv, "workload");
}
