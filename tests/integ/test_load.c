// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * load_agent, load_tunnel: SLUICE_LOAD_CONNS connections (10,000, or what
 * the hard fd limit lets one agent proxy) from a job on node A to an echo
 * server on node B, held for SLUICE_LOAD_SECONDS with 64 bytes each way on
 * every connection every second, each byte checked: through one agent, and
 * through both agents and the mTLS tunnel (one TLS connection a flow).
 * Every connection opens, none is dropped, no byte is lost or corrupted,
 * and the agents' resident memory stays within its goals: at most 15 MiB
 * idle after start, at most 20 KiB a proxied connection.
 */
#include <stdio.h>
#include <sys/resource.h>

#include "agent_proc.h"
#include "checks.h"
#include "env.h"
#include "harness.h"
#include "load.h"
#include "mesh.h"

#define RSS_IDLE_MAX_KIB (15 * 1024)
#define RSS_CONN_MAX_KIB 20
/* The per-connection goal is for 10k: below this, fixed costs that load
 * brings (the proxy's pool of up to 64 rings, TLS session caches) weigh
 * on each connection, so the figure is printed, not asserted. */
#define RSS_CONN_MIN_CONNS 5000
/* The ramp: TLS handshakes on 2 shared cores. */
#define RAMP_MS 150000
/* Past the hold: loadgen's drain and some slack. */
#define FINISH_SLACK_MS 30000
/* Settle after the ramp before RSS is read: flows still starting. */
#define SETTLE_MS 1000
/* After the clients close: until the agents have closed their flows. */
#define CLOSE_MS 30000
#define CLOSE_FD_SLACK 16

struct load_rss {
	const char *node;
	pid_t pid;
	int (*stop)(struct sl_env *env);
	long idle, loaded;
	int idle_fds;
};

static void rss_report(struct load_rss *r, int conns)
{
	double per_conn = (double)(r->loaded - r->idle) / conns;

	printf("rss %s: idle %ld KiB, %ld KiB at %d connections, %.1f KiB a connection\n", r->node,
	       r->idle, r->loaded, conns, per_conn);
	ASSERT_TRUE(r->idle <= RSS_IDLE_MAX_KIB, "RSS idle within 15 MiB");
	if (conns >= RSS_CONN_MIN_CONNS)
		ASSERT_TRUE(per_conn <= RSS_CONN_MAX_KIB, "RSS within 20 KiB a connection");
}

static bool load_ok(const struct loadgen_res *r, int conns)
{
	return ASSERT_EQ(r->opened, conns, "connections opened") &
	       ASSERT_EQ(r->established, conns, "connections through their first echo") &
	       ASSERT_EQ(r->failed, 0, "connections failed") &
	       ASSERT_EQ(r->dropped, 0, "connections dropped") &
	       ASSERT_EQ(r->corrupted, 0, "connections with corrupted bytes") &
	       ASSERT_EQ(r->lost, 0, "bytes lost") &
	       ASSERT_EQ(r->stalled, 0, "connections with no echo after their first");
}

/* The clients are gone: the agent closes their flows (each a close_notify
 * and an audit line through the tunnel), then exits on SIGTERM. */
static void stop_after_load(struct sl_env *env, struct load_rss *r)
{
	long long start = now_ms(), closed;

	while (fds_of(r->pid) > r->idle_fds + CLOSE_FD_SLACK && now_ms() < start + CLOSE_MS)
		sleep_ms(100);
	closed = now_ms();
	ASSERT_TRUE(fds_of(r->pid) <= r->idle_fds + CLOSE_FD_SLACK, "agent closed the flows");
	ASSERT_EQ(r->stop(env), 0, "agent exits cleanly after the load");
	printf("load %s: flows closed in %lld ms, then stopped in %lld ms\n", r->node,
	       closed - start, now_ms() - closed);
}

/* Runs loadgen from the job to B's echo server and reads every agent's
 * RSS once the connections are all up. */
static void run_load(struct sl_env *env, const char *what, struct load_rss *rss, int nr_rss)
{
	int seconds = load_env_int("SLUICE_LOAD_SECONDS", LOAD_SECONDS_DEFAULT);
	int want = load_env_int("SLUICE_LOAD_CONNS", LOAD_CONNS_DEFAULT);
	struct loadgen_res res = {};
	struct load_proc echo = {}, gen = {};
	struct loadgen_args a = {.cgroup = "job",
				 .seconds = seconds,
				 .interval_ms = load_env_int("SLUICE_LOAD_INTERVAL_MS", 0)};
	char dst[64];
	int conns = want, up;

	for (int i = 0; i < nr_rss; i++) {
		rss[i].idle = rss_kib(rss[i].pid);
		rss[i].idle_fds = fds_of(rss[i].pid);
		conns = load_conns_fit(rss[i].pid, conns);
	}
	if (conns < want)
		printf("load %s: %d connections, what the hard fd limit leaves one agent\n", what,
		       conns);
	snprintf(dst, sizeof(dst), "%s:%d", env->ip4_b, PORT_ECHO);
	if (!ASSERT_OK(echod_start(env, env->ns_b, env->ip4_b, PORT_ECHO, conns, &echo),
		       "echo server"))
		return;
	a.dst = dst;
	a.conns = conns;
	if (!ASSERT_OK(loadgen_start(env, &a, &gen), "loadgen"))
		goto out;
	up = loadgen_established(&gen, RAMP_MS);
	if (!ASSERT_EQ(up, conns, "connections established"))
		goto out;
	sleep_ms(SETTLE_MS);
	for (int i = 0; i < nr_rss; i++)
		rss[i].loaded = rss_kib(rss[i].pid);
	if (!ASSERT_OK(loadgen_finish(env, &gen, &res, seconds * 1000 + FINISH_SLACK_MS),
		       "loadgen result"))
		goto out;
	printf("load %s: %lld connections for %d s: %lld failed, %lld dropped, %lld corrupted, "
	       "%lld bytes lost; %lld bytes echoed in %lld messages (%lld late); round trip "
	       "p50 %lld us, p99 %lld us, max %lld us; connect to first echo p50 %lld us, max "
	       "%lld us\n",
	       what, res.established, seconds, res.failed, res.dropped, res.corrupted, res.lost,
	       res.bytes, res.messages, res.late, res.rtt_p50_us, res.rtt_p99_us, res.rtt_max_us,
	       res.first_p50_us, res.first_max_us);
	load_ok(&res, conns);
	for (int i = 0; i < nr_rss; i++)
		rss_report(&rss[i], conns);
	for (int i = 0; i < nr_rss; i++)
		stop_after_load(env, &rss[i]);
out:
	load_proc_stop(env, &gen);
	load_proc_stop(env, &echo);
}

/* The runner's fd limit is every later test's too: each test here puts
 * it back. */
void test_load_agent(struct sl_env *env)
{
	struct agent_cfg cfg = {};
	struct load_rss rss = {.node = "one agent", .stop = agent_stop};
	struct rlimit old;

	if (!ASSERT_OK(load_nofile_max(&old), "fd limit"))
		return;
	if (start_std_agent(env, &cfg, false)) {
		rss.pid = env->agent_pid;
		run_load(env, "one agent", &rss, 1);
	}
	setrlimit(RLIMIT_NOFILE, &old);
}

void test_load_tunnel(struct sl_env *env)
{
	struct mesh_cfg cfg = {};
	struct load_rss rss[2] = {{.node = "tunnel, node A", .stop = agent_stop},
				  {.node = "tunnel, node B", .stop = mesh_stop_b}};
	struct rlimit old;

	if (!ASSERT_OK(load_nofile_max(&old), "fd limit"))
		return;
	if (ASSERT_OK(mesh_setup(env, &cfg), "mesh")) {
		rss[0].pid = env->agent_pid;
		rss[1].pid = env->agent_b_pid;
		run_load(env, "tunnel", rss, 2);
	}
	setrlimit(RLIMIT_NOFILE, &old);
}
