// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tunnel_flood: 5,000 TCP connections to node B's tunnel listener that
 * never start TLS, from node A's own address, opened at once and held.
 * Node B's agent, started with the usual soft fd limit of 1024, raised it
 * to the hard limit and took its handshake caps from that; it keeps at
 * most its per-address cap of the flood (the oldest go first, reset), so
 * its descriptors stay bounded; it says how many it refused, rate-limited;
 * it keeps running; and a job on A still reaches B's echo server through
 * both agents while the flood connects and while it is held, its handshake
 * from the same address as the flood's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_proc.h"
#include "client.h"
#include "config.h"
#include "env.h"
#include "flood.h"
#include "harness.h"
#include "mesh.h"
#include "servers.h"

#define NR_IDLE 5000
/* Descriptors the test needs beyond the flood: agents' pipes, servers. */
#define FD_HEADROOM 1024
/* The soft limit the agents start with, as under most init systems. */
#define SOFT_NOFILE 1024
#define CONNECT_MS 20000
#define ECHO_BYTES 1000
/* What node B holds beside the flood's survivors: a flow, timers, slack. */
#define FD_SLACK 16
#define CAPS_LINE "tunnel: at most "
#define STORM_START_MS 50

/* The job's echo through both agents; its time in ms, or -1. */
static long long echo_ms(struct sl_env *env, const char *what)
{
	struct client_req req = {.op = CL_ECHO,
				 .cgroup = "job",
				 .family = AF_INET,
				 .port = PORT_ECHO,
				 .bytes = ECHO_BYTES};
	struct client_res res = {};
	long long start = now_ms(), took;

	if (!ASSERT_OK(client_run(env, &req, &res), "echo client report"))
		return -1;
	took = now_ms() - start;
	printf("echo %s: %lld ms\n", what, took);
	if (!ASSERT_EQ(res.err, 0, "echo client errno") ||
	    !ASSERT_EQ(res.recvd.bytes, ECHO_BYTES, "bytes echoed") ||
	    !ASSERT_EQ(res.recvd.mismatch_at, -1, "first differing byte"))
		return -1;
	return took;
}

/* A process's soft and hard limits on open files, from /proc. */
static bool nofile_of(pid_t pid, unsigned long *soft, unsigned long *hard)
{
	char path[64], *limits, *line;
	bool ok;

	snprintf(path, sizeof(path), "/proc/%d/limits", pid);
	limits = read_file_from(path, 0);
	line = limits ? strstr(limits, "Max open files") : NULL;
	ok = line && sscanf(line, "Max open files %lu %lu", soft, hard) == 2;
	free(limits);
	return ASSERT_TRUE(ok, "node B's limits");
}

/* Node B's caps, as config_handshake_defaults() takes them from the fd
 * limit it raised itself to, and as it logged them. */
static bool caps_of_b(struct sl_env *env, struct handshake_caps *hc)
{
	unsigned long soft, hard;
	char want[128];

	if (!nofile_of(env->agent_b_pid, &soft, &hard) ||
	    !ASSERT_EQ(soft, hard, "node B's soft fd limit raised to the hard one"))
		return false;
	*hc = (struct handshake_caps){};
	config_handshake_defaults(hc, soft);
	snprintf(want, sizeof(want), CAPS_LINE "%u handshakes in flight each way, %u per address",
		 hc->max, hc->per_address);
	return ASSERT_TRUE(mesh_b_log_wait(env, 0, want, LOG_WAIT_MS), "node B logged its caps");
}

/* The agents start at SOFT_NOFILE; the test itself needs the flood and
 * room for everything else. */
static bool set_nofile(rlim_t soft, struct rlimit *old)
{
	struct rlimit want;

	if (old && !ASSERT_OK(getrlimit(RLIMIT_NOFILE, old), "getrlimit"))
		return false;
	if (!ASSERT_OK(getrlimit(RLIMIT_NOFILE, &want), "getrlimit"))
		return false;
	if (want.rlim_max < NR_IDLE + FD_HEADROOM)
		want.rlim_max = NR_IDLE + FD_HEADROOM;
	want.rlim_cur = soft ? soft : want.rlim_max;
	return ASSERT_OK(setrlimit(RLIMIT_NOFILE, &want), "setrlimit");
}

static void flood(struct sl_env *env, struct flood *fl)
{
	struct handshake_caps hc = {};
	long from = mesh_b_log_size(env);
	int before, during, reset;

	before = fds_of(env->agent_b_pid);
	caps_of_b(env, &hc);
	if (!ASSERT_GE(before, 1, "node B's fds before") ||
	    !ASSERT_GE(echo_ms(env, "before the flood"), 0, "echo before the flood"))
		return;
	if (!ASSERT_OK(flood_start(fl), "flood thread"))
		return;
	/* Into the storm, which takes a few hundred ms to connect. */
	sleep_ms(STORM_START_MS);
	ASSERT_GE(echo_ms(env, "while the flood connects"), 0, "echo while the flood connects");
	flood_join(fl);
	ASSERT_OK(fl->err, "flood sockets");
	ASSERT_EQ(fl->connected, NR_IDLE, "flood connections made");

	ASSERT_TRUE(mesh_b_log_wait(env, from, "handshakes refused (in-flight cap", LOG_WAIT_MS),
		    "node B logged the refused handshakes");
	during = fds_of(env->agent_b_pid);
	printf("node B: %d fds before, %d with %d idle connections held (caps %u, %u per "
	       "address)\n",
	       before, during, fl->connected, hc.max, hc.per_address);
	ASSERT_TRUE(during <= before + (int)hc.per_address + FD_SLACK, "node B's fds stay bounded");
	ASSERT_GE(echo_ms(env, "during the flood"), 0, "echo during the flood");
	reset = flood_reset(fl);
	printf("%d of the flood's connections reset by node B\n", reset);
	ASSERT_GE(reset, NR_IDLE - (int)hc.per_address - 1, "the flood's oldest were reset");
	ASSERT_TRUE(mesh_b_running(env), "node B's agent still running");
}

void test_tunnel_flood(struct sl_env *env)
{
	struct server *echo = server_start(env, SRV_ECHO, PORT_ECHO);
	struct flood fl = {.nr = NR_IDLE, .connect_ms = CONNECT_MS};
	struct mesh_cfg cfg = {};
	struct rlimit old;
	char tunnel[64];

	if (!ASSERT_OK_PTR(echo, "echo server") || !set_nofile(SOFT_NOFILE, &old))
		return;
	if (!ASSERT_OK(mesh_setup(env, &cfg), "mesh") || !set_nofile(0, NULL))
		goto restore;
	fl.ns = env->ns_a;
	snprintf(tunnel, sizeof(tunnel), "%s:%d", env->ip4_b, TUNNEL_PORT);
	if (ASSERT_OK(parse_sockaddr(tunnel, &fl.dst), "tunnel address"))
		flood(env, &fl);
	flood_free(&fl);
restore:
	setrlimit(RLIMIT_NOFILE, &old);
}
