// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl violation: connects the datapath refused or let bypass, and
 * direct connections refused at mesh-only workloads. */
#include <arpa/inet.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "policy.h"

struct violation_row {
	struct sluice_violation_key key;
	__u64 count;
	__u64 last_ns;
	char workload[SLUICE_NAME_LEN];
	char service[SLUICE_NAME_LEN];
	struct sluice_violation_dst dst;	/* family 0: not recorded */
	char dst_str[INET6_ADDRSTRLEN + 8];	/* "10.0.0.2:5432", "[fd00::2]:80", "-" */
};

static int row_cmp(const void *a, const void *b)
{
	const struct sluice_violation_key *x = &((const struct violation_row *)a)->key;
	const struct sluice_violation_key *y = &((const struct violation_row *)b)->key;

	return cmp_u64(x->identity, y->identity) ?: cmp_u64(x->service, y->service) ?:
	       cmp_u64(x->reason, y->reason) ?: cmp_u64(ntohs(x->port), ntohs(y->port));
}

/* Where the newest violation under the row's key went, from violation_dst
 * (agents before it did not record it: "-"). */
static void dst_fill(int dst_fd, struct violation_row *r)
{
	char a[INET6_ADDRSTRLEN];

	strcpy(r->dst_str, "-");
	if (dst_fd < 0 || bpf_map_lookup_elem(dst_fd, &r->key, &r->dst) ||
	    (r->dst.family != AF_INET && r->dst.family != AF_INET6)) {
		r->dst.family = 0;
		return;
	}
	fmt_addr(r->dst.family, r->dst.addr, a, sizeof(a));
	snprintf(r->dst_str, sizeof(r->dst_str), r->dst.family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		 a, ntohs(r->dst.port));
}

static bool violation_fill(const struct map_snap *s, size_t i, void *row, void *ctx)
{
	struct violation_row *r = row;

	r->key = *(const struct sluice_violation_key *)snap_key(s, i);
	/* Each CPU counts its own connects: the total is the sum. */
	for (int cpu = 0; cpu < s->nr_cpus; cpu++) {
		const struct sluice_counter *c = snap_value(s, i, cpu);

		r->count += c->count;
		if (c->last_ns > r->last_ns)
			r->last_ns = c->last_ns;
	}
	ctl_name(SLUICE_NAME_IDENTITY, r->key.identity, r->workload, sizeof(r->workload));
	ctl_name(SLUICE_NAME_SERVICE, r->key.service, r->service, sizeof(r->service));
	dst_fill(*(const int *)ctx, r);
	return true;
}

static json_t *violations_json(const struct violation_row *rows, size_t n, __u64 now)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		const struct violation_row *r = &rows[i];

		json_array_append_new(
			arr,
			json_pack("{s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o}", "identity",
				  json_u64(r->key.identity), "workload",
				  json_name(SLUICE_NAME_IDENTITY, r->key.identity), "service_id",
				  json_u64(r->key.service), "service",
				  json_name(SLUICE_NAME_SERVICE, r->key.service), "port",
				  json_u64_or_null(r->key.port, ntohs(r->key.port)), "reason",
				  policy_reason_name(r->key.reason), "count", json_u64(r->count),
				  "last_ns", json_u64(r->last_ns), "last_seen_age_ns",
				  json_u64(age_ns(now, r->last_ns))));
		json_object_set_new(json_array_get(arr, i), "destination",
				    r->dst.family ? json_string(r->dst_str) : json_null());
	}
	return arr;
}

static int violations_plain(const struct violation_row *rows, size_t n, __u64 now)
{
	static const struct table_col cols[] = {
		{ "WORKLOAD", false }, { "SERVICE", false }, { "DESTINATION", false },
		{ "REASON", false },   { "COUNT", true },    { "LAST SEEN", true },
	};
	char count[24], last[32];
	struct table t;
	int ret = 0;

	table_init(&t, cols, ARRAY_SIZE(cols));
	for (size_t i = 0; i < n && !ret; i++) {
		const struct violation_row *r = &rows[i];

		fmt_duration(age_ns(now, r->last_ns), last, sizeof(last));
		strcat(last, " ago");
		ret = table_add(&t, r->workload, r->service, r->dst_str,
				policy_reason_name(r->key.reason),
				fmt_u64(r->count, count, sizeof(count)), last);
	}
	if (!ret)
		table_print(&t);
	table_free(&t);
	return ret;
}

static int violation_list(int argc, char **argv)
{
	struct violation_row *rows = NULL;
	size_t n = 0;
	int ret, dst_fd;
	__u64 now;

	if (argc)
		return BAD_ARG();
	if (map_open_name("violation_dst", &dst_fd))
		dst_fd = -1;
	ret = map_rows("violations", sizeof(*rows), violation_fill, &dst_fd, row_cmp,
		       (void **)&rows, &n);
	if (dst_fd >= 0)
		close(dst_fd);
	now = mono_ns();
	if (!ret)
		ret = json_output ? print_json(violations_json(rows, n, now))
				  : violations_plain(rows, n, now);
	free(rows);
	return ret;
}

static int violation_help(int argc, char **argv)
{
	return print_help(
		"Usage: %1$s violation { list | help }\n"
		"\n"
		"Lists the violation counters the datapath keeps per workload, service,\n"
		"port and reason, summed over CPUs, with the time since the last one.\n"
		"Refused or bypassing connects of a workload (WORKLOAD is the caller):\n"
		"  policy-deny    an explicit deny rule matched\n"
		"  default-deny   no rule matched and the default action is deny\n"
		"  agent-down     failure mode closed and the agent's heartbeat is stale\n"
		"  bypass         failure mode open: allowed past a stale agent\n"
		"  no-policy      the workload connected before any policy was loaded\n"
		"Refused connections into a workload with inbound: mesh-only:\n"
		"  not-via-mesh   a SYN that its agent did not send; WORKLOAD is the\n"
		"                 protected workload and PORT the port it was aimed at;\n"
		"                 counted once per attempt, not per retransmitted SYN\n"
		"The counters survive agent restarts. SERVICE is the destination's service,\n"
		"also for a default-deny (- when no service has that address and port);\n"
		"DESTINATION is the address and port of the newest violation of the row\n"
		"(for not-via-mesh, the protected workload's).\n",
		bin_name);
}

static const struct cmd cmds[] = {
	{ "list", violation_list },
	{ "show", violation_list },
	{ "help", violation_help },
	{ 0 }
};

int do_violation(int argc, char **argv)
{
	return cmd_select(cmds, argc, argv, "violation");
}
