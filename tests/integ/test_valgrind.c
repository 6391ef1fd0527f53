// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluiced under valgrind's memcheck for a whole cycle: start, an allowed
 * flow through the agent and a denied connect, a SIGHUP reload, the same
 * traffic on the new generation, SIGTERM. No invalid access, no use of
 * uninitialised memory and no definite or indirect leak may show up. Host
 * only: memcheck under TCG would take longer than the test's watchdog. */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

/* memcheck runs the agent some 20 to 50 times slower: its BPF loading,
 * policy compile and the leak check at exit take seconds, not ms. */
#define VG_READY_MS 120000
#define VG_LOG_WAIT_MS 60000
#define VG_EXIT_MS 120000
#define VG_LOG "valgrind.log"
#define VG_SUPP "tests/data/valgrind.supp"

/* The bytes valgrind's leak summary gives for kind ("definitely lost"),
 * 0 when every block was freed, -1 when the log has no summary. */
static long long leaked_bytes(const char *log, const char *kind)
{
	long long n = 0;
	const char *p;

	if (strstr(log, "All heap blocks were freed"))
		return 0;
	p = strstr(log, "LEAK SUMMARY:");
	if (!p || !(p = strstr(p, kind)))
		return -1;
	p += strlen(kind);
	p += strspn(p, ": ");
	/* "1,024 bytes in 3 blocks": drop the thousands separators. */
	for (; *p && *p != ' '; p++)
		if (*p >= '0' && *p <= '9')
			n = n * 10 + (*p - '0');
	return n;
}

/* The N of "ERROR SUMMARY: N errors", -1 when the log has none. */
static long long error_count(const char *log)
{
	const char *p = strstr(log, "ERROR SUMMARY: ");

	return p ? atoll(p + strlen("ERROR SUMMARY: ")) : -1;
}

static bool traffic(struct sl_env *env, struct server *echo, const char *when)
{
	char name[96];
	bool ok;

	ok = echo_via_agent(env, echo, "job", AF_INET, PORT_ECHO, 64 * 1024, NULL);
	ok = connect_denied(env, "notebook", AF_INET, PORT_SECRET) && ok;
	snprintf(name, sizeof(name), "%s: traffic", when);
	return ASSERT_TRUE(ok, name);
}

/* The policy: file makes a new generation only when its content changed:
 * the same rules, and a comment that differs. */
static bool reload(struct sl_env *env, uint32_t gen)
{
	long from = agent_log_size(env);
	char line[64], path[PATH_MAX];
	FILE *f;

	env_path(env, POLICY_FILE, path, sizeof(path));
	if (!ASSERT_OK(agent_write_std_policy(env), "rewrite policy.yaml") ||
	    !ASSERT_OK_PTR(f = fopen(path, "a"), "open policy.yaml"))
		return false;
	fprintf(f, "# generation %u\n", gen + 1);
	if (!ASSERT_OK(fclose(f), "append to policy.yaml") ||
	    !ASSERT_OK(agent_signal(env, SIGHUP), "SIGHUP"))
		return false;
	snprintf(line, sizeof(line), "policy generation %u live", gen + 1);
	return ASSERT_TRUE(agent_log_wait(env, from, line, VG_LOG_WAIT_MS), line);
}

static void check_report(const char *path, int status)
{
	char *log = read_file_from(path, 0);
	bool ok;

	if (!ASSERT_OK_PTR(log, "valgrind log"))
		return;
	ok = ASSERT_EQ(status, 0, "sluiced exit status under valgrind (99: errors)");
	ok = ASSERT_EQ(error_count(log), 0, "valgrind ERROR SUMMARY") && ok;
	ok = ASSERT_EQ(leaked_bytes(log, "definitely lost"), 0, "definitely lost bytes") && ok;
	ok = ASSERT_EQ(leaked_bytes(log, "indirectly lost"), 0, "indirectly lost bytes") && ok;
	if (!ok)
		printf("---- %s ----\n%s", path, log);
	free(log);
}

void test_valgrind(struct sl_env *env)
{
	char log_opt[PATH_MAX + 16], supp_opt[64], log[PATH_MAX];
	const char *wrap[] = {
	    "valgrind",
	    "--leak-check=full",
	    "--errors-for-leak-kinds=definite,indirect",
	    "--show-leak-kinds=definite,indirect",
	    "--error-exitcode=99",
	    "--track-fds=no",
	    "--num-callers=30",
	    supp_opt,
	    log_opt,
	    NULL,
	};
	struct agent_cfg cfg = {.heartbeat_timeout = "60s"};
	struct server *echo, *secret;
	uint32_t gen;

	if (!ASSERT_OK(system("valgrind --version >/dev/null 2>&1"),
		       "valgrind installed (scripts/deps.sh)"))
		return;
	env_path(env, VG_LOG, log, sizeof(log));
	snprintf(log_opt, sizeof(log_opt), "--log-file=%s", log);
	snprintf(supp_opt, sizeof(supp_opt), "--suppressions=%s", VG_SUPP);
	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	secret = server_start(env, SRV_ECHO, PORT_SECRET);
	if (!ASSERT_OK_PTR(echo, "echo server") || !ASSERT_OK_PTR(secret, "secret server") ||
	    !ASSERT_OK(agent_write_config(env, &cfg), "write sluice.yaml") ||
	    !ASSERT_OK(agent_write_std_policy(env), "write policy.yaml") ||
	    !ASSERT_OK(agent_start_wrapped(env, wrap, VG_READY_MS, NULL), "start sluiced"))
		return;

	gen = pinned_generation(env);
	if (traffic(env, echo, "first generation") && reload(env, gen))
		traffic(env, echo, "after the reload");
	if (!ASSERT_OK(agent_signal(env, SIGTERM), "SIGTERM"))
		return;
	check_report(log, agent_wait_exit(env, VG_EXIT_MS));
}
