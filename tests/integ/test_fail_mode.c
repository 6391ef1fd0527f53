// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* failure_mode: what meshed connections do once the agent is gone (stopped
 * with --keep-pinned, heartbeat stale). closed: refused, counted as
 * agent-down. open: connect directly, counted as bypass. Policy denies hold
 * either way. The _kill9 tests (host only: a load and seconds of outage)
 * kill the agent with SIGKILL under a churn load and count, at the
 * destination, what got through while it was down. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

#define STALE_MARGIN_NS 200000000ull
#define STALE_WAIT_MS 10000

/* Starts the agent, proves the mesh works, stops it and waits out its
 * heartbeat. */
static bool agent_gone(struct sl_env *env, struct server *echo, bool fail_open, struct std_ids *ids)
{
	/* Short, yet twice the agent's 1 s heartbeat interval, so that a slow
	 * machine (qemu without KVM) does not see a live agent as stale. */
	struct agent_cfg cfg = {.fail_open = fail_open, .heartbeat_timeout = "2s"};
	struct sluice_config c;
	long long deadline;

	if (!start_std_agent(env, &cfg, true) || !get_std_ids(env, ids) ||
	    !echo_via_agent(env, echo, "job", AF_INET, PORT_ECHO, 1000, NULL))
		return false;
	if (!ASSERT_EQ(agent_stop(env), 0, "sluiced exit status after SIGTERM") ||
	    !ASSERT_OK(pinned_cfg(env, &c), "sluice_cfg still pinned"))
		return false;
	ASSERT_EQ(c.fail_mode, fail_open ? SLUICE_FAIL_OPEN : SLUICE_FAIL_CLOSED, "fail_mode");
	ASSERT_EQ(c.heartbeat_timeout_ns, 2000000000ull, "heartbeat_timeout_ns");
	deadline = now_ms() + STALE_WAIT_MS;
	while (mono_ns() - c.heartbeat_ns <= c.heartbeat_timeout_ns + STALE_MARGIN_NS &&
	       now_ms() < deadline)
		sleep_ms(20);
	return ASSERT_OK(pinned_cfg(env, &c), "sluice_cfg") &&
	       ASSERT_TRUE(mono_ns() - c.heartbeat_ns > c.heartbeat_timeout_ns,
			   "heartbeat is stale");
}

void test_fail_closed(struct sl_env *env)
{
	struct server *echo;
	struct std_ids ids;
	int conns;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !agent_gone(env, echo, false, &ids))
		return;
	conns = server_nr_conns(echo);
	denied_and_counted(env, "job", AF_INET, PORT_ECHO, ids.job, ids.data,
			   SLUICE_REASON_AGENT_DOWN);
	ASSERT_EQ(server_nr_conns(echo), conns, "connections the server saw");
	/* A denied destination stays denied, with its own reason. */
	denied_and_counted(env, "notebook", AF_INET, PORT_ECHO, ids.notebook, ids.data,
			   SLUICE_REASON_DEFAULT_DENY);
}

void test_fail_open(struct sl_env *env)
{
	struct client_res res;
	struct sluice_flow fl;
	struct server *echo;
	struct std_ids ids;
	long long before;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !agent_gone(env, echo, true, &ids))
		return;
	before = pinned_violations(env, ids.job, ids.data, SLUICE_REASON_BYPASS);
	echo_direct(env, echo, "job", AF_INET, PORT_ECHO, &res);
	ASSERT_EQ(pinned_violations(env, ids.job, ids.data, SLUICE_REASON_BYPASS) - before, 1,
		  "violations[job, data, bypass] delta");
	ASSERT_EQ(pinned_flow(env, res.cookie, &fl), -ENOENT, "flows entry for the socket");
	/* Open only opens what the policy allows. */
	denied_and_counted(env, "notebook", AF_INET, PORT_ECHO, ids.notebook, ids.data,
			   SLUICE_REASON_DEFAULT_DENY);
}

/* How long the kill -9 tests keep connecting after the kill: past the 2 s
 * heartbeat timeout, so both halves of the outage are seen (redirected to
 * a listener that is gone, then decided by failure_mode alone). */
#define OUTAGE_MS 3500
#define LOAD_MS 300
#define LOAD_CONNS 1000000
/* For connections accepted but not yet counted by the server's thread. */
#define SETTLE_MS 300

struct outage {
	int attempts;
	int completed; /* connections that echoed their bytes */
	int refused;   /* of the rest, those refused with EPERM */
};

/* Starts a churn load, kills the agent with SIGKILL under it (no
 * --keep-pinned, no goodbye), and checks that the load ends, not hangs. */
static bool kill_under_load(struct sl_env *env, struct server *echo, bool fail_open,
			    struct std_ids *ids)
{
	struct agent_cfg cfg = {.fail_open = fail_open, .heartbeat_timeout = "2s"};
	struct client_req req = {
		.op = CL_CHURN,
		.cgroup = "job",
		.family = AF_INET,
		.port = PORT_ECHO,
		.count = LOAD_CONNS,
	};
	struct client_res res = {};
	struct client load;
	bool ok;

	if (!start_std_agent(env, &cfg, false) || !get_std_ids(env, ids) ||
	    !ASSERT_OK(client_start(env, &req, &load), "start the load"))
		return false;
	sleep_ms(LOAD_MS);
	ok = ASSERT_EQ(agent_signal(env, SIGKILL), 0, "SIGKILL to sluiced") &&
	     ASSERT_EQ(agent_wait_exit(env, STALE_WAIT_MS), 128 + SIGKILL, "sluiced died");
	if (ok && ASSERT_OK(client_result(&load, &res, STALE_WAIT_MS), "the load ended")) {
		printf("the load completed %d connections before the kill\n", res.completed);
		ok &= ASSERT_GE(res.completed, 1, "the load's connections before the kill");
		ok &= ASSERT_NEQ(res.err, 0, "the load's connections fail once the agent is gone");
	}
	client_finish(env, &load);
	return ok;
}

/* A connection every 50 ms for OUTAGE_MS, each from a new workload
 * process, as a job retrying would. */
static void connect_through_outage(struct sl_env *env, struct outage *o)
{
	struct client_req req = {
		.op = CL_CHURN,
		.cgroup = "job",
		.family = AF_INET,
		.port = PORT_ECHO,
		.count = 1,
	};
	long long end = now_ms() + OUTAGE_MS;
	struct client_res res;

	while (now_ms() < end) {
		memset(&res, 0, sizeof(res));
		if (client_run(env, &req, &res))
			continue;
		o->attempts++;
		o->completed += res.completed;
		o->refused += !res.completed && res.err == EPERM;
		sleep_ms(50);
	}
	printf("outage: %d attempts, %d completed, %d refused with EPERM\n", o->attempts,
	       o->completed, o->refused);
}

/* Closed: while the agent is down nothing reaches the destination, neither
 * through the dead listener nor around it. */
void test_fail_closed_kill9(struct sl_env *env)
{
	struct outage o = {};
	struct server *echo;
	struct std_ids ids;
	long long down;
	int conns;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !kill_under_load(env, echo, false, &ids))
		return;
	sleep_ms(SETTLE_MS);
	conns = server_nr_conns(echo);
	down = pinned_violations(env, ids.job, ids.data, SLUICE_REASON_AGENT_DOWN);
	connect_through_outage(env, &o);
	sleep_ms(SETTLE_MS);
	ASSERT_GE(o.attempts, 10, "connections tried during the outage");
	ASSERT_EQ(o.completed, 0, "connections that worked during the outage");
	ASSERT_EQ(server_nr_conns(echo) - conns, 0, "connections the server saw during the outage");
	ASSERT_GE(o.refused, 1, "connections refused once the heartbeat was stale");
	ASSERT_EQ(pinned_violations(env, ids.job, ids.data, SLUICE_REASON_AGENT_DOWN) - down,
		  o.refused, "violations[job, data, agent-down] delta");
}

/* Open: what went direct is exactly what the bypass counter says, counted
 * at the destination. */
void test_fail_open_kill9(struct sl_env *env)
{
	struct outage o = {};
	struct server *echo;
	struct std_ids ids;
	long long bypass;
	int conns;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !kill_under_load(env, echo, true, &ids))
		return;
	sleep_ms(SETTLE_MS);
	conns = server_nr_conns(echo);
	bypass = pinned_violations(env, ids.job, ids.data, SLUICE_REASON_BYPASS);
	connect_through_outage(env, &o);
	if (!ASSERT_OK(server_wait_done(echo, conns + o.completed, CLIENT_MS), "server done"))
		return;
	sleep_ms(SETTLE_MS);
	ASSERT_GE(o.completed, 1, "connections that went direct once the heartbeat was stale");
	ASSERT_EQ(server_nr_conns(echo) - conns, o.completed,
		  "connections the server saw during the outage");
	ASSERT_EQ(pinned_violations(env, ids.job, ids.data, SLUICE_REASON_BYPASS) - bypass,
		  o.completed, "violations[job, data, bypass] delta");
}
