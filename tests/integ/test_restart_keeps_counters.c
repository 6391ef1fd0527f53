// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* With --keep-pinned, an agent restart loses nothing: programs stay attached
 * through the same links, counters and names survive, and new events add on
 * top of the old counts. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

static const char *const links[] = {
    SLUICE_LINK_CONNECT4,
    SLUICE_LINK_CONNECT6,
    SLUICE_LINK_SOCKOPS,
    SLUICE_LINK_INBOUND,
};

static const char *const maps[] = {
    "sluice_cfg", "workloads",	"policy4",    "policy6",   "orig_dst", "redirects",
    "flows",	  "flow_links", "violations", "svc_stats", "names",
    "refused_syns",
};

#define NR_LINKS (sizeof(links) / sizeof(links[0]))
#define NR_MAPS (sizeof(maps) / sizeof(maps[0]))

struct counts {
	long long default_deny; /* notebook -> data */
	long long policy_deny;	/* notebook -> secret */
	long long flows;	/* job -> data, svc_stats */
	long long closed;
	uint32_t job, nb, data, secret;
	uint32_t link_ids[NR_LINKS];
};

static void read_counts(struct sl_env *env, struct counts *c)
{
	struct sluice_svc_stats st = {};

	c->job = pinned_identity(env, ID_JOB);
	c->nb = pinned_identity(env, ID_NOTEBOOK);
	c->data = pinned_service(env, SVC_DATA);
	c->secret = pinned_service(env, SVC_SECRET);
	c->default_deny =
	    pinned_violations(env, c->nb, c->data, SLUICE_REASON_DEFAULT_DENY);
	c->policy_deny = pinned_violations(env, c->nb, c->secret, SLUICE_REASON_POLICY_DENY);
	ASSERT_OK(pinned_svc_stats(env, c->job, c->data, &st), "job -> data service stats");
	c->flows = st.flows;
	c->closed = st.closed;
	for (size_t i = 0; i < NR_LINKS; i++) {
		c->link_ids[i] = 0;
		pinned_link_id(env, links[i], &c->link_ids[i]);
	}
}

/* Every counter and id in got must equal want, plus the given deltas. */
static void expect_counts(const struct counts *got, const struct counts *want, int dd, int pd,
			  int flows, const char *when)
{
	char name[128];

	snprintf(name, sizeof(name), "%s: job identity", when);
	ASSERT_EQ(got->job, want->job, name);
	snprintf(name, sizeof(name), "%s: notebook identity", when);
	ASSERT_EQ(got->nb, want->nb, name);
	snprintf(name, sizeof(name), "%s: data service id", when);
	ASSERT_EQ(got->data, want->data, name);
	snprintf(name, sizeof(name), "%s: secret service id", when);
	ASSERT_EQ(got->secret, want->secret, name);
	snprintf(name, sizeof(name), "%s: violations[notebook, 0, default-deny]", when);
	ASSERT_EQ(got->default_deny, want->default_deny + dd, name);
	snprintf(name, sizeof(name), "%s: violations[notebook, secret, policy-deny]", when);
	ASSERT_EQ(got->policy_deny, want->policy_deny + pd, name);
	snprintf(name, sizeof(name), "%s: svc_stats[job, data].flows", when);
	ASSERT_EQ(got->flows, want->flows + flows, name);
	snprintf(name, sizeof(name), "%s: svc_stats[job, data].closed", when);
	ASSERT_EQ(got->closed, want->closed + flows, name);
	for (size_t i = 0; i < NR_LINKS; i++) {
		snprintf(name, sizeof(name), "%s: %s link id", when, links[i]);
		ASSERT_EQ(got->link_ids[i], want->link_ids[i], name);
	}
}

void test_restart_keeps_counters(struct sl_env *env)
{
	struct counts first, stopped, restarted, after;
	struct agent_cfg cfg = {};
	struct server *echo;
	long from;
	int i;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !start_std_agent(env, &cfg, true))
		return;

	for (i = 0; i < 3; i++)
		connect_denied(env, "notebook", AF_INET, PORT_ECHO);
	for (i = 0; i < 2; i++)
		connect_denied(env, "notebook", AF_INET, PORT_SECRET);
	for (i = 0; i < 2; i++)
		echo_via_agent(env, echo, "job", AF_INET, PORT_ECHO, 1000, NULL);
	wait_svc_closed(env, pinned_identity(env, ID_JOB), pinned_service(env, SVC_DATA), 2);
	read_counts(env, &first);
	if (!ASSERT_EQ(first.default_deny, 3, "violations[notebook, data, default-deny]") ||
	    !ASSERT_EQ(first.policy_deny, 2, "violations[notebook, secret, policy-deny]") ||
	    !ASSERT_EQ(first.flows, 2, "svc_stats[job, data].flows") ||
	    !ASSERT_EQ(first.closed, 2, "svc_stats[job, data].closed"))
		return;
	for (size_t l = 0; l < NR_LINKS; l++)
		ASSERT_NEQ(first.link_ids[l], 0, links[l]);

	if (!ASSERT_EQ(agent_stop(env), 0, "sluiced exit status after SIGTERM"))
		return;
	for (size_t m = 0; m < NR_MAPS; m++)
		ASSERT_TRUE(pinned_exists(env, maps[m]), maps[m]);
	read_counts(env, &stopped);
	expect_counts(&stopped, &first, 0, 0, 0, "agent stopped");

	from = agent_log_size(env);
	if (!ASSERT_OK(agent_start(env, "--keep-pinned", NULL), "restart sluiced"))
		return;
	read_counts(env, &restarted);
	expect_counts(&restarted, &first, 0, 0, 0, "restarted");
	for (size_t l = 0; l < NR_LINKS; l++) {
		char line[PATH_MAX];

		snprintf(line, sizeof(line), "reused pinned link %s/%s", env->pin_dir, links[l]);
		ASSERT_TRUE(agent_log_wait(env, from, line, 0), line);
	}

	connect_denied(env, "notebook", AF_INET, PORT_ECHO);
	connect_denied(env, "notebook", AF_INET, PORT_SECRET);
	echo_via_agent(env, echo, "job", AF_INET, PORT_ECHO, 1000, NULL);
	wait_svc_closed(env, first.job, first.data, 3);
	read_counts(env, &after);
	expect_counts(&after, &first, 1, 1, 1, "new events");
}
