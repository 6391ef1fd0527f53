// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The platform's own clients: a plain Java program (OpenJDK from Debian,
 * default settings, so a dual-stack AF_INET6 socket and the IPv4-mapped
 * address of an IPv4 peer) run as the job reaches node B's echo server
 * through the agent, as a C client over AF_INET does, and run as the
 * notebook it is refused as the C client is. Host only: the VM image ships
 * no JVM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_proc.h"
#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

#define JAVA_MS 60000
#define JAVA_CLIENT "tests/data/java/EchoClient.java"
#define JAVA_LINE "hello from the jvm\n"

/* java as a workload in node A; exit status, stdout in *out, stderr in
 * *err. */
static int java(struct sl_env *env, const char *cgroup, char **out, char **err)
{
	char cmd[2 * PATH_MAX], procs[PATH_MAX];
	char *argv[] = { "sh", "-c", cmd, NULL };

	env_cgroup(env, cgroup, procs, sizeof(procs));
	snprintf(cmd, sizeof(cmd),
		 "echo $$ > %s/cgroup.procs && exec nsenter --net=/run/netns/%s "
		 "java -XX:TieredStopAtLevel=1 " JAVA_CLIENT " %s %d",
		 procs, env->ns_a, env->ip4_b, PORT_ECHO);
	*out = *err = NULL;
	return run_argv(argv, out, err, JAVA_MS);
}

void test_jvm_client(struct sl_env *env)
{
	struct sluice_svc_stats before, after;
	struct agent_cfg cfg = {};
	struct server *echo;
	struct std_ids ids;
	char *out = NULL, *err = NULL;
	int ret;

	if (system("command -v java >/dev/null 2>&1")) {
		ASSERT_TRUE(false, "java on PATH (make deps installs openjdk-17-jdk-headless)");
		return;
	}
	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !start_std_agent(env, &cfg, false) ||
	    !get_std_ids(env, &ids))
		return;

	if (test__start_subtest("allowed")) {
		ASSERT_OK(pinned_svc_stats(env, ids.job, ids.data, &before), "svc_stats before");
		ret = java(env, "job", &out, &err);
		if (!ASSERT_EQ(ret, 0, "job's java exit status"))
			printf("java: %s\n", err ? err : "");
		ASSERT_STREQ(out ?: "", JAVA_LINE, "what the echo server sent back");
		if (ASSERT_OK(pinned_svc_stats(env, ids.job, ids.data, &after), "svc_stats after"))
			ASSERT_EQ(after.flows - before.flows, 1, "flows through the agent");
		free(out);
		free(err);
	}
	if (test__start_subtest("denied")) {
		long long n = pinned_violations(env, ids.notebook, ids.data,
						SLUICE_REASON_DEFAULT_DENY);
		int conns = server_nr_conns(echo);

		ret = java(env, "notebook", &out, &err);
		ASSERT_NEQ(ret, 0, "notebook's java exit status");
		ASSERT_HAS_SUBSTR(err ?: "", "java.net.SocketException: Operation not permitted",
				  "what the JVM reports");
		ASSERT_EQ(pinned_violations(env, ids.notebook, ids.data,
					    SLUICE_REASON_DEFAULT_DENY) - n,
			  1, "violations[notebook, data, default-deny] delta");
		ASSERT_EQ(server_nr_conns(echo), conns, "connections the server saw");
		free(out);
		free(err);
	}
}
