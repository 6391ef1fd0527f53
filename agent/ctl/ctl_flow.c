// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl flow: the redirected connections sockops is tracking. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "policy.h"

struct flow_row {
	__u64 cookie;
	struct sluice_flow f;
	char workload[SLUICE_NAME_LEN];
	char service[SLUICE_NAME_LEN];
};

static int row_cmp(const void *a, const void *b)
{
	const struct flow_row *x = a, *y = b;

	return cmp_u64(x->f.start_ns, y->f.start_ns) ?: cmp_u64(x->cookie, y->cookie);
}

/* --sort rtt: slowest first; bytes: busiest first (both ways); age: oldest
 * first, the default. */
static int cmp_rtt(const void *a, const void *b)
{
	const struct flow_row *x = a, *y = b;

	return cmp_u64(y->f.srtt_us, x->f.srtt_us) ?: row_cmp(a, b);
}

static int cmp_bytes(const void *a, const void *b)
{
	const struct flow_row *x = a, *y = b;

	return cmp_u64(y->f.bytes_sent + y->f.bytes_received,
		       x->f.bytes_sent + x->f.bytes_received) ?: row_cmp(a, b);
}

static int parse_sort(const char *s, int (**cmp)(const void *, const void *))
{
	if (!strcmp(s, "rtt"))
		*cmp = cmp_rtt;
	else if (!strcmp(s, "bytes"))
		*cmp = cmp_bytes;
	else if (!strcmp(s, "age"))
		*cmp = row_cmp;
	else
		return errmsg_set(&ctl_err, -EINVAL, "--sort takes rtt, bytes or age, not '%s'", s);
	return 0;
}

static int parse_limit(const char *s, size_t *limit)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || !v)
		return errmsg_set(&ctl_err, -EINVAL,
				  "--limit takes a number of flows (1 or more), not '%s'", s);
	*limit = v;
	return 0;
}

static bool flow_fill(const struct map_snap *s, size_t i, void *row, void *ctx)
{
	struct flow_row *r = row;

	r->cookie = *(const __u64 *)snap_key(s, i);
	r->f = *(const struct sluice_flow *)snap_value(s, i, 0);
	ctl_name(SLUICE_NAME_IDENTITY, r->f.dst.identity, r->workload, sizeof(r->workload));
	ctl_name(SLUICE_NAME_SERVICE, r->f.dst.service, r->service, sizeof(r->service));
	return true;
}

static json_t *flows_json(const struct flow_row *rows, size_t n, __u64 now)
{
	json_t *arr = json_array();
	char saddr[INET6_ADDRSTRLEN], daddr[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < n; i++) {
		const struct sluice_flow *f = &rows[i].f;
		json_t *o = json_object();

		json_object_set_new(o, "cookie", json_u64(rows[i].cookie));
		json_object_set_new(o, "identity", json_u64(f->dst.identity));
		json_object_set_new(o, "workload",
				    json_name(SLUICE_NAME_IDENTITY, f->dst.identity));
		json_object_set_new(o, "family", json_string(family_name(f->dst.family)));
		json_object_set_new(
			o, "saddr",
			json_string(fmt_addr(f->dst.family, f->saddr, saddr, sizeof(saddr))));
		json_object_set_new(o, "sport", json_u64(ntohs(f->sport)));
		json_object_set_new(
			o, "daddr",
			json_string(fmt_addr(f->dst.family, f->dst.addr, daddr, sizeof(daddr))));
		json_object_set_new(o, "dport", json_u64(ntohs(f->dst.port)));
		json_object_set_new(o, "service_id", json_u64(f->dst.service));
		json_object_set_new(o, "service", json_name(SLUICE_NAME_SERVICE, f->dst.service));
		json_object_set_new(o, "state", json_string(flow_state_name(f->state)));
		json_object_set_new(o, "start_ns", json_u64(f->start_ns));
		json_object_set_new(o, "age_ns", json_u64(age_ns(now, f->start_ns)));
		json_object_set_new(o, "bytes_sent", json_u64(f->bytes_sent));
		json_object_set_new(o, "bytes_received", json_u64(f->bytes_received));
		json_object_set_new(o, "connect_us", json_u64(f->connect_us));
		json_object_set_new(o, "srtt_us", json_u64(f->srtt_us));
		json_object_set_new(o, "verdict", json_string(policy_action_name(f->verdict)));
		json_object_set_new(o, "rule", json_u64(f->dst.rule));
		json_object_set_new(o, "generation", json_u64(f->dst.generation));
		json_array_append_new(arr, o);
	}
	return arr;
}

static int flows_plain(const struct flow_row *rows, size_t n, __u64 now)
{
	static const struct table_col cols[] = {
		{ "WORKLOAD", false }, { "SOURCE", false },   { "DESTINATION", false },
		{ "SERVICE", false },  { "STATE", false },    { "AGE", true },
		{ "SENT", true },      { "RECEIVED", true },  { "CONNECT", true },
		{ "SRTT", true },      { "VERDICT", false },  { "GEN", true },
	};
	char src[64], dst[64], age[32], sent[24], recv[24], conn[32], srtt[32], gen[12];
	struct table t;
	int ret = 0;

	table_init(&t, cols, ARRAY_SIZE(cols));
	for (size_t i = 0; i < n && !ret; i++) {
		const struct sluice_flow *f = &rows[i].f;

		/* Until the upstream connect completes there is no latency to show. */
		if (f->established_ns)
			fmt_duration(f->connect_us * 1000ULL, conn, sizeof(conn));
		else
			snprintf(conn, sizeof(conn), "-");
		if (f->srtt_us)
			fmt_duration(f->srtt_us * 1000ULL, srtt, sizeof(srtt));
		else
			snprintf(srtt, sizeof(srtt), "-");
		snprintf(gen, sizeof(gen), "%u", f->dst.generation);
		ret = table_add(&t, rows[i].workload,
				fmt_endpoint(f->dst.family, f->saddr, f->sport, src, sizeof(src)),
				fmt_endpoint(f->dst.family, f->dst.addr, f->dst.port, dst,
					     sizeof(dst)),
				rows[i].service, flow_state_name(f->state),
				fmt_duration(age_ns(now, f->start_ns), age, sizeof(age)),
				fmt_u64(f->bytes_sent, sent, sizeof(sent)),
				fmt_u64(f->bytes_received, recv, sizeof(recv)), conn, srtt,
				policy_action_name(f->verdict), gen);
	}
	if (!ret)
		table_print(&t);
	table_free(&t);
	return ret;
}

static int flow_list(int argc, char **argv)
{
	int (*cmp)(const void *, const void *) = row_cmp;
	struct flow_row *rows = NULL;
	size_t n = 0, limit = SIZE_MAX;
	__u64 now;
	int ret;

	while (argc) {
		if (strcmp(*argv, "--sort") && strcmp(*argv, "--limit"))
			return BAD_ARG();
		NEXT_ARG();
		ret = REQ_ARGS(1);
		if (!ret)
			ret = !strcmp(argv[-1], "--sort") ? parse_sort(*argv, &cmp)
							  : parse_limit(*argv, &limit);
		if (ret)
			return ret;
		NEXT_ARG();
	}
	ret = map_rows("flows", sizeof(*rows), flow_fill, NULL, cmp, (void **)&rows, &n);
	if (n > limit)
		n = limit;
	now = mono_ns();
	if (!ret)
		ret = json_output ? print_json(flows_json(rows, n, now))
				  : flows_plain(rows, n, now);
	free(rows);
	return ret;
}

static int flow_help(int argc, char **argv)
{
	return print_help(
		"Usage: %1$s flow { list [--sort { rtt | bytes | age }] [--limit N] | help }\n"
		"\n"
		"Lists the connections sluice redirected through the agent that are still\n"
		"open, oldest first (--sort rtt: slowest RTT first; bytes: most bytes both\n"
		"ways first; --limit: the first N only): source workload, the workload socket's address, the\n"
		"original destination and its service, state (connecting, established,\n"
		"closing), age, bytes sent and received on the upstream connection, the\n"
		"upstream connect latency and smoothed RTT, the verdict and the policy\n"
		"generation that decided it.\n",
		bin_name);
}

static const struct cmd cmds[] = {
	{ "list", flow_list },
	{ "show", flow_list },
	{ "help", flow_help },
	{ 0 }
};

int do_flow(int argc, char **argv)
{
	return cmd_select(cmds, argc, argv, "flow");
}
