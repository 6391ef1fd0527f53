// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl stats: per workload and service flow counters and latency. */
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"

struct stats_row {
	struct sluice_svc_key key;
	struct sluice_svc_stats st;
	char workload[SLUICE_NAME_LEN];
	char service[SLUICE_NAME_LEN];
};

static int row_cmp(const void *a, const void *b)
{
	const struct sluice_svc_key *x = &((const struct stats_row *)a)->key;
	const struct sluice_svc_key *y = &((const struct stats_row *)b)->key;

	return cmp_u64(x->identity, y->identity) ?: cmp_u64(x->service, y->service);
}

static bool stats_fill(const struct map_snap *s, size_t i, void *row, void *ctx)
{
	struct stats_row *r = row;

	r->key = *(const struct sluice_svc_key *)snap_key(s, i);
	r->st = *(const struct sluice_svc_stats *)snap_value(s, i, 0);
	ctl_name(SLUICE_NAME_IDENTITY, r->key.identity, r->workload, sizeof(r->workload));
	ctl_name(SLUICE_NAME_SERVICE, r->key.service, r->service, sizeof(r->service));
	return true;
}

/*
 * The q-th percentile (q in percent) of the connect latency, as the upper
 * bound of the log2 bucket it falls in: bucket i counts [2^i, 2^(i+1)) us.
 * Returns false when there are no samples.
 */
static bool lat_percentile(const struct sluice_svc_stats *st, unsigned int q, __u64 *us)
{
	__u64 total = 0, seen = 0, rank;

	for (int i = 0; i < SLUICE_LAT_BUCKETS; i++)
		total += st->lat_buckets[i];
	if (!total)
		return false;
	rank = (total * q + 99) / 100;
	for (int i = 0; i < SLUICE_LAT_BUCKETS; i++) {
		seen += st->lat_buckets[i];
		if (seen >= rank) {
			*us = 2ULL << i;
			break;
		}
	}
	return true;
}

static json_t *json_percentile(const struct sluice_svc_stats *st, unsigned int q)
{
	__u64 us;

	return lat_percentile(st, q, &us) ? json_u64(us) : json_null();
}

static json_t *stats_json(const struct stats_row *rows, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++) {
		const struct stats_row *r = &rows[i];
		const struct sluice_svc_stats *st = &r->st;
		json_t *o = json_object(), *b = json_array();

		for (int k = 0; k < SLUICE_LAT_BUCKETS; k++)
			json_array_append_new(b, json_u64(st->lat_buckets[k]));
		json_object_set_new(o, "identity", json_u64(r->key.identity));
		json_object_set_new(o, "workload",
				    json_name(SLUICE_NAME_IDENTITY, r->key.identity));
		json_object_set_new(o, "service_id", json_u64(r->key.service));
		json_object_set_new(o, "service", json_name(SLUICE_NAME_SERVICE, r->key.service));
		json_object_set_new(o, "flows", json_u64(st->flows));
		json_object_set_new(o, "closed", json_u64(st->closed));
		json_object_set_new(o, "bytes_sent", json_u64(st->bytes_sent));
		json_object_set_new(o, "bytes_received", json_u64(st->bytes_received));
		json_object_set_new(o, "connect_us_sum", json_u64(st->connect_us_sum));
		json_object_set_new(o, "connect_us_mean",
				    st->flows ? json_u64(st->connect_us_sum / st->flows)
					      : json_null());
		json_object_set_new(o, "connect_us_p50", json_percentile(st, 50));
		json_object_set_new(o, "connect_us_p99", json_percentile(st, 99));
		json_object_set_new(o, "lat_buckets", b);
		json_array_append_new(arr, o);
	}
	return arr;
}

static char *fmt_percentile(const struct sluice_svc_stats *st, unsigned int q, char *buf,
			    size_t len)
{
	__u64 us;

	if (!lat_percentile(st, q, &us)) {
		snprintf(buf, len, "-");
		return buf;
	}
	buf[0] = '<';
	fmt_duration(us * 1000, buf + 1, len - 1);
	return buf;
}

static int stats_plain(const struct stats_row *rows, size_t n)
{
	static const struct table_col cols[] = {
		{ "WORKLOAD", false }, { "SERVICE", false }, { "FLOWS", true },
		{ "CLOSED", true },    { "SENT", true },     { "RECEIVED", true },
		{ "MEAN", true },      { "P50", true },      { "P99", true },
	};
	char flows[24], closed[24], sent[24], recv[24], mean[32], p50[32], p99[32];
	struct table t;
	int ret = 0;

	table_init(&t, cols, ARRAY_SIZE(cols));
	for (size_t i = 0; i < n && !ret; i++) {
		const struct sluice_svc_stats *st = &rows[i].st;

		if (st->flows)
			fmt_duration(st->connect_us_sum / st->flows * 1000, mean, sizeof(mean));
		else
			snprintf(mean, sizeof(mean), "-");
		ret = table_add(&t, rows[i].workload, rows[i].service,
				fmt_u64(st->flows, flows, sizeof(flows)),
				fmt_u64(st->closed, closed, sizeof(closed)),
				fmt_u64(st->bytes_sent, sent, sizeof(sent)),
				fmt_u64(st->bytes_received, recv, sizeof(recv)), mean,
				fmt_percentile(st, 50, p50, sizeof(p50)),
				fmt_percentile(st, 99, p99, sizeof(p99)));
	}
	if (!ret)
		table_print(&t);
	table_free(&t);
	return ret;
}

static int stats_show(int argc, char **argv)
{
	struct stats_row *rows = NULL;
	size_t n = 0;
	int ret;

	if (argc)
		return BAD_ARG();
	ret = map_rows("svc_stats", sizeof(*rows), stats_fill, NULL, row_cmp, (void **)&rows, &n);
	if (!ret)
		ret = json_output ? print_json(stats_json(rows, n)) : stats_plain(rows, n);
	free(rows);
	return ret;
}

static int stats_help(int argc, char **argv)
{
	return print_help(
		"Usage: %1$s stats [show]\n"
		"       %1$s service { stats | help }\n"
		"\n"
		"Per source workload and destination service: upstream connections\n"
		"established (FLOWS) and closed, bytes sent and received by closed\n"
		"connections, and the upstream connect latency: the exact mean, and P50\n"
		"and P99 estimated from log2 buckets, shown as the bucket's upper bound\n"
		"(\"<512us\": under 512us). Counters survive agent restarts.\n",
		bin_name);
}

static const struct cmd stats_cmds[] = {
	{ "show", stats_show },
	{ "list", stats_show },
	{ "help", stats_help },
	{ 0 }
};

static const struct cmd service_cmds[] = {
	{ "stats", stats_show },
	{ "help", stats_help },
	{ 0 }
};

int do_stats(int argc, char **argv)
{
	return cmd_select(stats_cmds, argc, argv, "stats");
}

int do_service(int argc, char **argv)
{
	return cmd_select(service_cmds, argc, argv, "service");
}
