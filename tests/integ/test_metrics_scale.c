// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * /metrics at the size the issue names: 10,000 live flows and 1,000
 * workload/service pairs in the maps. The scrape renders every pair once
 * and counts the flows; how long it takes is reported (min, median, max of
 * SCRAPES), not asserted: speed is a benchmark's to judge (make
 * bench-load). The pairs and flows are written into the pinned maps
 * directly, as sockops would, so no 10,000 sockets are needed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "names.h"
#include "pinned.h"
#include "util.h"

#define NR_FLOWS 10000
#define NR_IDS 100
#define NR_SVCS 10
#define SCRAPES 9

static bool fill(struct sl_env *env)
{
	int names = pinned_fd(env, "names"), stats = pinned_fd(env, "svc_stats"),
	    rtt = pinned_fd(env, "svc_rtt"), flows = pinned_fd(env, "flows");
	__u32 ids[NR_IDS], svcs[NR_SVCS];
	char name[64];
	bool ok = names >= 0 && stats >= 0 && rtt >= 0 && flows >= 0;

	for (int i = 0; ok && i < NR_IDS; i++) {
		snprintf(name, sizeof(name), "spiffe://acme.example/job/scale-%d", i);
		ok = !names_assign(names, SLUICE_NAME_IDENTITY, name, &ids[i]);
	}
	for (int i = 0; ok && i < NR_SVCS; i++) {
		snprintf(name, sizeof(name), "svc-%d", i);
		ok = !names_assign(names, SLUICE_NAME_SERVICE, name, &svcs[i]);
	}
	for (int i = 0; ok && i < NR_IDS * NR_SVCS; i++) {
		struct sluice_svc_key k = { .identity = ids[i / NR_SVCS], .service = svcs[i % NR_SVCS] };
		struct sluice_svc_stats s = { .flows = 3, .closed = 2, .bytes_sent = 100 };
		struct sluice_svc_rtt r = { .samples = 2, .rtt_us_sum = 200 };

		s.lat_buckets[6] = 3;
		r.rtt_buckets[6] = 2;
		ok = !bpf_map_update_elem(stats, &k, &s, BPF_ANY) &&
		     !bpf_map_update_elem(rtt, &k, &r, BPF_ANY);
	}
	for (__u64 c = 1; ok && c <= NR_FLOWS; c++) {
		struct sluice_flow f = { .state = SLUICE_FLOW_ESTABLISHED, .start_ns = 1 };
		__u64 cookie = (1ull << 62) + c;

		f.dst.identity = ids[c % NR_IDS];
		ok = !bpf_map_update_elem(flows, &cookie, &f, BPF_ANY);
	}
	close(names);
	close(stats);
	close(rtt);
	close(flows);
	return ASSERT_TRUE(ok, "maps filled");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void test_metrics_scale(struct sl_env *env)
{
	char *argv[] = { "ip", "netns", "exec", env->ns_a, "curl", "-s", "-o", "/dev/null", "-w",
			 "%{time_total} %{size_download}", "http://127.0.0.1:15020/metrics", NULL };
	char *body[] = { "ip", "netns", "exec", env->ns_a, "curl", "-sf",
			 "http://127.0.0.1:15020/metrics", NULL };
	struct agent_cfg cfg = {};
	double t[SCRAPES];
	long bytes = 0;
	char *out, *err;

	if (!start_std_agent(env, &cfg, false) || !fill(env))
		return;
	if (ASSERT_EQ(run_argv(body, &out, &err, 20000), 0, "scrape")) {
		ASSERT_EQ(count_substr(out, "\nsluice_tcp_connections_closed_total{"),
			  NR_IDS * NR_SVCS, "pairs rendered");
		ASSERT_EQ(count_substr(out, "\nsluice_tcp_rtt_seconds_count{"), NR_IDS * NR_SVCS,
			  "RTT histograms rendered");
		ASSERT_HAS_SUBSTR(out, "sluice_map_entries{map=\"flows\"} 10000\n", "flows counted");
		ASSERT_HAS_SUBSTR(out, "sluice_metrics_series_dropped_total{family=\"tcp\"} 0\n",
				  "nothing dropped");
	}
	free(out);
	free(err);
	for (int i = 0; i < SCRAPES; i++) {
		if (!ASSERT_EQ(run_argv(argv, &out, &err, 20000), 0, "timed scrape"))
			return;
		sscanf(out, "%lf %ld", &t[i], &bytes);
		free(out);
		free(err);
	}
	qsort(t, SCRAPES, sizeof(t[0]), cmp_double);
	printf("metrics_scale: %d flows, %d pairs: scrape of %ld bytes took %.1f ms median "
	       "(%.1f-%.1f ms over %d scrapes, curl's time_total)\n",
	       NR_FLOWS, NR_IDS * NR_SVCS, bytes, t[SCRAPES / 2] * 1e3, t[0] * 1e3,
	       t[SCRAPES - 1] * 1e3, SCRAPES);
}
