// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* GET /metrics on listen.http: promtool accepts it, the counters hold
 * exactly the refusals and flows the test caused, and a real Prometheus
 * scraping the agent answers PromQL with the same numbers and a connect
 * latency quantile inside the bucket the datapath counted it in. */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "scrape.h"
#include "servers.h"
#include "util.h"

#define PROM_ADDR "127.0.0.1:19090"
#define NR_DENIED 3
#define NR_FLOWS 2

static void exposition(struct sl_env *env, const struct std_ids *ids)
{
	char series[512];
	char *text = scrape(env, env->ns_a, METRICS_URL);

	if (!text)
		return;
	promtool_check(env, text);
	snprintf(series, sizeof(series),
		 "sluice_violations_total{source_workload=\"%s\",destination_service=\"%s\","
		 "reason=\"default-deny\"}",
		 ID_NOTEBOOK, SVC_DATA);
	ASSERT_EQ(scrape_sample(text, series), NR_DENIED, "default-deny refusals");
	snprintf(series, sizeof(series),
		 "sluice_tcp_connections_opened_total{source_workload=\"%s\","
		 "destination_service=\"%s\",verdict=\"allow\"}",
		 ID_JOB, SVC_DATA);
	ASSERT_EQ(scrape_sample(text, series), NR_FLOWS, "allowed flows");
	snprintf(series, sizeof(series),
		 "sluice_tcp_sent_bytes_total{source_workload=\"%s\",destination_service=\"%s\"}",
		 ID_JOB, SVC_DATA);
	/* TCP's own count (tcp_info's bytes_acked): the SYN and the FIN
	 * take a sequence number each, so up to 2 more per connection. */
	ASSERT_GE(scrape_sample(text, series), NR_FLOWS * 1000, "bytes sent");
	ASSERT_TRUE(scrape_sample(text, series) <= NR_FLOWS * 1002, "bytes sent, at most 2 more a flow");
	snprintf(series, sizeof(series),
		 "sluice_tcp_connect_duration_seconds_count{source_workload=\"%s\","
		 "destination_service=\"%s\"}",
		 ID_JOB, SVC_DATA);
	ASSERT_EQ(scrape_sample(text, series), NR_FLOWS, "connect latency observations");
	ASSERT_EQ(scrape_sample(text, "sluice_refusal_events_total{result=\"lost\"}"), 0,
		  "refusal events lost");
	ASSERT_EQ(scrape_sample(text, "sluice_policy_applies_total{result=\"ok\"}"), 1, "applies");
	ASSERT_HAS_SUBSTR(text, "sluice_build_info{version=\"", "build info");
	(void)ids;
	free(text);
}

/* The PromQL answer's first value, -1 when there is none yet. */
static double query(struct sl_env *env, const char *promql)
{
	char url[1024], *text, *v;
	double val = -1;
	char *enc = NULL;
	size_t n;
	FILE *f = open_memstream(&enc, &n);

	for (const char *p = promql; *p; p++)
		fprintf(f, isalnum((unsigned char)*p) ? "%c" : "%%%02X", (unsigned char)*p);
	fclose(f);
	snprintf(url, sizeof(url), "http://" PROM_ADDR "/api/v1/query?query=%s", enc);
	free(enc);
	text = scrape(env, env->ns_a, url);
	/* "value":[<time>,"<value>"] */
	v = text ? strstr(text, "\"value\":[") : NULL;
	v = v ? strchr(v, '"') : NULL;
	v = v ? strchr(v + 8, '"') : NULL;
	if (v)
		val = atof(v + 1);
	free(text);
	return val;
}

static pid_t prometheus_start(struct sl_env *env)
{
	char conf[PATH_MAX], data[PATH_MAX], cfg_arg[PATH_MAX + 16], data_arg[PATH_MAX + 32];
	pid_t pid;

	if (env_write_file(env, "prometheus.yml",
			   "global:\n  scrape_interval: 1s\n"
			   "scrape_configs:\n  - job_name: sluice\n"
			   "    static_configs:\n      - targets: ['127.0.0.1:15020']\n"))
		return -1;
	env_path(env, "prometheus.yml", conf, sizeof(conf));
	env_path(env, "prometheus-data", data, sizeof(data));
	snprintf(cfg_arg, sizeof(cfg_arg), "--config.file=%s", conf);
	snprintf(data_arg, sizeof(data_arg), "--storage.tsdb.path=%s", data);
	pid = fork();
	if (pid == 0) {
		char *argv[] = { "ip", "netns", "exec", env->ns_a, "prometheus", cfg_arg, data_arg,
				 "--web.listen-address=" PROM_ADDR, "--log.level=warn", NULL };

		child_reset_signals();
		freopen("/dev/null", "w", stdout);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid > 0)
		env_track_child(env, pid);
	return pid;
}

/* The log2 bucket that holds the median of b, as the `le` bounds it lies
 * between (microseconds). */
static void median_bounds(const __u64 *b, double *lo, double *hi)
{
	static const double le[] = { 0, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576 };
	__u64 total = 0, seen = 0;
	int i;

	for (i = 0; i < SLUICE_LAT_BUCKETS; i++)
		total += b[i];
	for (i = 0; i < SLUICE_LAT_BUCKETS; i++) {
		seen += b[i];
		if (seen * 2 >= total)
			break;
	}
	/* Bucket i is [2^i, 2^(i+1)) us: inside the le pair around it. */
	for (size_t k = 1; k < sizeof(le) / sizeof(le[0]); k++) {
		if ((double)(1ull << (i + 1)) <= le[k]) {
			*lo = le[k - 1];
			*hi = le[k];
			return;
		}
	}
	*lo = 0;
	*hi = 1e12;
}

static void prometheus(struct sl_env *env, const struct std_ids *ids)
{
	struct sluice_svc_stats st = {};
	double denied = -1, flows = -1, q = -1, lo, hi;
	char promql[512];
	pid_t pid;

	pid = prometheus_start(env);
	if (!ASSERT_GE(pid, 1, "prometheus started"))
		return;
	snprintf(promql, sizeof(promql),
		 "sum(sluice_violations_total{reason=\"default-deny\",source_workload=\"%s\"})",
		 ID_NOTEBOOK);
	for (int i = 0; i < 60 && denied < 0; i++) {
		sleep_ms(500);
		denied = query(env, promql);
	}
	ASSERT_EQ((long long)denied, NR_DENIED, "PromQL: default-deny refusals");
	flows = query(env, "sum(sluice_tcp_connections_opened_total{verdict=\"allow\"})");
	ASSERT_EQ((long long)flows, NR_FLOWS, "PromQL: allowed flows");
	q = query(env, "histogram_quantile(0.5, sum by (le) "
		       "(sluice_tcp_connect_duration_seconds_bucket))");
	if (ASSERT_OK(pinned_svc_stats(env, ids->job, ids->data, &st), "svc_stats")) {
		median_bounds(st.lat_buckets, &lo, &hi);
		if (!ASSERT_TRUE(q * 1e6 >= lo && q * 1e6 <= hi,
				 "median connect latency inside its bucket"))
			printf("quantile %g s, bucket (%g, %g] us\n", q, lo, hi);
	}
	kill(pid, SIGTERM);
	wait_child(pid, NULL, 10000);
	env_untrack_child(env, pid);
}

void test_metrics(struct sl_env *env)
{
	struct agent_cfg cfg = {};
	struct server *echo;
	struct std_ids ids;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !start_std_agent(env, &cfg, false) ||
	    !get_std_ids(env, &ids))
		return;
	for (int i = 0; i < NR_DENIED; i++)
		connect_denied(env, "notebook", AF_INET, PORT_ECHO);
	for (int i = 0; i < NR_FLOWS; i++)
		echo_via_agent(env, echo, "job", AF_INET, PORT_ECHO, 1000, NULL);
	wait_svc_closed(env, ids.job, ids.data, NR_FLOWS);

	if (test__start_subtest("exposition"))
		exposition(env, &ids);
	if (test__start_subtest("prometheus")) {
		if (access("/usr/bin/prometheus", X_OK))
			test__skip("Debian's prometheus is not installed (scripts/deps.sh)");
		else
			prometheus(env, &ids);
	}
}
