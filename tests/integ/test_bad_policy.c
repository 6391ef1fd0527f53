// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A policy that does not validate is rejected whole, naming file and line,
 * and never disturbs the live one; a good one becomes the next generation,
 * and SIGUSR2 brings the previous one back. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

#define EXIT_MS 30000
#define BAD_LINE 6

/* One service, data, and one rule allowing `from` to reach it. */
static int write_policy(struct sl_env *env, const char *ports, const char *from)
{
	return env_write_file(env, POLICY_FILE,
			      "version: 1\n"
			      "default: deny\n"
			      "services:\n"
			      "  - name: " SVC_DATA "\n"
			      "    addresses: [%s/32]\n"
			      "    ports: [%s]\n"
			      "rules:\n"
			      "  - from: {kind: %s}\n"
			      "    to: [" SVC_DATA "]\n"
			      "    action: allow\n",
			      env->ip4_b, ports, from);
}

/* Line BAD_LINE holds a port out of range. */
static int write_bad_policy(struct sl_env *env)
{
	return write_policy(env, "70000", "job");
}

/* The standard policy turned around for data: notebooks yes, jobs no. */
static int write_flipped_policy(struct sl_env *env)
{
	return write_policy(env, "7000, 7001, 7002, 7003", "notebook");
}

static void bad_at_start(struct sl_env *env)
{
	char want[64];
	long from = agent_log_size(env);
	char *log;
	int status;

	if (!ASSERT_OK(write_bad_policy(env), "write bad policy.yaml") ||
	    !ASSERT_OK(agent_spawn(env, NULL), "spawn sluiced"))
		return;
	status = agent_wait_exit(env, EXIT_MS);
	ASSERT_GE(status, 0, "sluiced exited");
	ASSERT_NEQ(status, 0, "sluiced exit status");
	log = agent_log(env, from);
	snprintf(want, sizeof(want), POLICY_FILE ":%d: ", BAD_LINE);
	ASSERT_HAS_SUBSTR(log, want, "stderr names file and line");
	ASSERT_HAS_SUBSTR(log, "70000", "stderr names the bad value");
	free(log);
	ASSERT_FALSE(pinned_exists(env, "sluice_cfg"), "sluice_cfg pinned");
}

/* What the standard policy enforces: jobs reach data, notebooks do not. */
static void std_enforced(struct sl_env *env, struct server *echo)
{
	echo_via_agent(env, echo, "job", AF_INET, PORT_ECHO, 1000, NULL);
	connect_denied(env, "notebook", AF_INET, PORT_ECHO);
}

static void bad_reload(struct sl_env *env, struct server *echo, uint32_t gen)
{
	long from = agent_log_size(env);
	char want[64];

	if (!ASSERT_OK(write_bad_policy(env), "write bad policy.yaml") ||
	    !ASSERT_OK(agent_signal(env, SIGHUP), "SIGHUP"))
		return;
	ASSERT_TRUE(agent_log_wait(env, from, "reload rejected", LOG_WAIT_MS),
		    "agent logged the rejection");
	snprintf(want, sizeof(want), POLICY_FILE ":%d: ", BAD_LINE);
	ASSERT_TRUE(agent_log_wait(env, from, want, 0), "rejection names file and line");
	ASSERT_TRUE(agent_running(env), "sluiced still running");
	ASSERT_EQ(pinned_generation(env), gen, "live generation");
	std_enforced(env, echo);
}

static void good_reload_and_rollback(struct sl_env *env, struct server *echo, uint32_t gen)
{
	char line[64];
	long from = agent_log_size(env);

	if (!ASSERT_OK(write_flipped_policy(env), "write new policy.yaml") ||
	    !ASSERT_OK(agent_signal(env, SIGHUP), "SIGHUP"))
		return;
	snprintf(line, sizeof(line), "policy generation %u live", gen + 1);
	if (!ASSERT_TRUE(agent_log_wait(env, from, line, LOG_WAIT_MS), line))
		return;
	ASSERT_EQ(pinned_generation(env), gen + 1, "live generation after reload");
	echo_via_agent(env, echo, "notebook", AF_INET, PORT_ECHO, 1000, NULL);
	connect_denied(env, "job", AF_INET, PORT_ECHO);

	from = agent_log_size(env);
	if (!ASSERT_OK(agent_signal(env, SIGUSR2), "SIGUSR2"))
		return;
	snprintf(line, sizeof(line), "rolled back: policy generation %u live", gen);
	if (!ASSERT_TRUE(agent_log_wait(env, from, line, LOG_WAIT_MS), line))
		return;
	ASSERT_EQ(pinned_generation(env), gen, "live generation after rollback");
	std_enforced(env, echo);
}

void test_bad_policy(struct sl_env *env)
{
	struct agent_cfg cfg = {};
	struct server *echo;
	uint32_t gen;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") ||
	    !ASSERT_OK(agent_write_config(env, &cfg), "write sluice.yaml"))
		return;

	if (test__start_subtest("at_start"))
		bad_at_start(env);

	if (!start_std_agent(env, &cfg, false))
		return;
	gen = pinned_generation(env);
	if (!ASSERT_NEQ(gen, 0, "live generation"))
		return;
	if (test__start_subtest("reload"))
		bad_reload(env, echo, gen);
	if (test__start_subtest("rollback"))
		good_reload_and_rollback(env, echo, gen);
}
