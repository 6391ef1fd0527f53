// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * /metrics at the size the issue names: 10,000 live flows and 1,000
 * workload/service pairs in the maps. The scrape renders every pair once
 * and counts the flows; how long it takes is reported (min, median, max of
 * SCRAPES), not asserted: speed is a benchmark's to judge (make
 * bench-load). tests/load/mapfill writes the pairs and flows into the
 * pinned maps directly, as sockops would, so no 10,000 sockets are needed.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "util.h"

#define NR_FLOWS 10000
#define NR_IDS 100
#define NR_SVCS 10
#define SCRAPES 9
#define AT_ONCE 4		/* local_http.c's SCRAPES_MAX */
#define LAST_LINE "sluice_metrics_series_dropped_total{family=\"violations\"} 0\n"

/* tests/load/mapfill into the agent's pinned maps. */
static bool fill(struct sl_env *env)
{
	char bin[PATH_MAX], ids[16], svcs[16], flows[16];
	char *argv[] = { bin, env->pin_dir, ids, svcs, flows, NULL };
	char *out = NULL, *err = NULL;
	int ret;

	snprintf(bin, sizeof(bin), "%s/tests/mapfill", test__build_dir());
	snprintf(ids, sizeof(ids), "%d", NR_IDS);
	snprintf(svcs, sizeof(svcs), "%d", NR_SVCS);
	snprintf(flows, sizeof(flows), "%d", NR_FLOWS);
	ret = run_argv(argv, &out, &err, 60000);
	if (ret)
		printf("%s: %s\n", bin, err ?: "");
	free(out);
	free(err);
	return ASSERT_EQ(ret, 0, "maps filled (mapfill)");
}

/* AT_ONCE scrapes at the same moment, each rendered in a thread of its
 * own: every one gets the whole exposition, down to its last line. */
static void concurrent(struct sl_env *env)
{
	char script[PATH_MAX + 256], path[PATH_MAX + 16], *text, *out = NULL, *err = NULL;
	char *argv[] = { "ip", "netns", "exec", env->ns_a, "bash", "-c", script, NULL };

	snprintf(script, sizeof(script),
		 "for i in 1 2 3 4; do { curl -s -o %s/scrape$i -w \"$i %%{http_code}\\n\" "
		 "http://127.0.0.1:15020/metrics || echo \"$i: curl exit $?\"; } & done; wait",
		 env->tmp_dir);
	if (ASSERT_EQ(run_argv(argv, &out, &err, 30000), 0, "4 scrapes at once"))
		ASSERT_EQ(count_substr(out ?: "", " 200\n"), AT_ONCE, "each answered 200");
	if (out && count_substr(out, " 200\n") != AT_ONCE)
		printf("scrapes at once: %s\n", out);
	free(out);
	free(err);
	for (int i = 1; i <= AT_ONCE; i++) {
		snprintf(path, sizeof(path), "%s/scrape%d", env->tmp_dir, i);
		text = read_file_from(path, 0);
		if (ASSERT_TRUE(text != NULL, "a scrape's body"))
			ASSERT_EQ(count_substr(text, "\nsluice_tcp_rtt_seconds_count{"),
				  NR_IDS * NR_SVCS, "every pair in a concurrent scrape");
		if (text)
			ASSERT_TRUE(strlen(text) > strlen(LAST_LINE) &&
					    !strcmp(text + strlen(text) - strlen(LAST_LINE),
						    LAST_LINE),
				    "a concurrent scrape ends with the last family");
		free(text);
	}
}

/* The agent's CPU time so far (utime + stime), in ms; -1 if unreadable. */
static double agent_cpu_ms(pid_t pid)
{
	unsigned long long ut, st;
	char path[64], buf[1024], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	/* Past the command's closing parenthesis: fields 3 on; 14 and 15. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			 &st) != 2)
		return -1;
	return (ut + st) * 1000.0 / sysconf(_SC_CLK_TCK);
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
	double t[SCRAPES], cpu0, cpu1;
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
		ASSERT_HAS_SUBSTR(out, "sluice_map_entries{map=\"svc_stats\"} 1000\n",
				  "pairs counted from the families' own walk");
		ASSERT_HAS_SUBSTR(out, "sluice_map_entries{map=\"svc_rtt\"} 1000\n",
				  "RTT pairs counted");
		ASSERT_HAS_SUBSTR(out, "sluice_metrics_series_dropped_total{family=\"tcp\"} 0\n",
				  "nothing dropped");
	}
	free(out);
	free(err);
	concurrent(env);
	cpu0 = agent_cpu_ms(env->agent_pid);
	for (int i = 0; i < SCRAPES; i++) {
		if (!ASSERT_EQ(run_argv(argv, &out, &err, 20000), 0, "timed scrape"))
			return;
		sscanf(out, "%lf %ld", &t[i], &bytes);
		free(out);
		free(err);
	}
	cpu1 = agent_cpu_ms(env->agent_pid);
	qsort(t, SCRAPES, sizeof(t[0]), cmp_double);
	printf("metrics_scale: %d flows, %d pairs: scrape of %ld bytes took %.1f ms median "
	       "(%.1f-%.1f ms over %d scrapes, curl's time_total)\n",
	       NR_FLOWS, NR_IDS * NR_SVCS, bytes, t[SCRAPES / 2] * 1e3, t[0] * 1e3,
	       t[SCRAPES - 1] * 1e3, SCRAPES);
	if (cpu0 >= 0 && cpu1 >= 0)
		printf("metrics_scale: the agent's CPU per scrape: %.1f ms (all threads, %d scrapes, "
		       "/proc/PID/stat)\n",
		       (cpu1 - cpu0) / SCRAPES, SCRAPES);
}
