// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl top in a real terminal (tmux): the live flow and the newest
 * violation are on screen, q quits, and the terminal is as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checks.h"
#include "client.h"
#include "env.h"
#include "harness.h"
#include "servers.h"
#include "util.h"

static int tmux(char **out, const char *a1, const char *a2, const char *a3, const char *a4,
		const char *a5)
{
	char *argv[] = { "tmux", (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5,
			 NULL };
	char *err = NULL;
	int ret;

	*out = NULL;
	ret = run_argv(argv, out, &err, 10000);
	free(err);
	return ret;
}

static char *capture(const char *session)
{
	char *out;

	if (tmux(&out, "capture-pane", "-p", "-t", session, NULL)) {
		free(out);
		return NULL;
	}
	return out;
}

static void in_tmux(struct sl_env *env, const char *session)
{
	char cmd[3 * PATH_MAX], stty[PATH_MAX], *out = NULL, *screen = NULL;
	bool gone = false;

	env_path(env, "stty.after", stty, sizeof(stty));
	/* After top: what the line discipline is, for the restore check. */
	snprintf(cmd, sizeof(cmd), "%s/sluicectl -P %s top -d 0.3; stty -a > %s; sleep 30",
		 test__build_dir(), env->pin_dir, stty);
	if (!ASSERT_EQ(tmux(&out, "new-session", "-d", "-s", session, cmd), 0, "tmux new-session"))
		goto out;
	for (int i = 0; i < 50; i++) {
		free(screen);
		screen = capture(session);
		if (screen && strstr(screen, ID_JOB) && strstr(screen, "notebook/alice"))
			break;
		sleep_ms(100);
	}
	if (!ASSERT_OK_PTR(screen, "capture-pane"))
		goto out;
	ASSERT_HAS_SUBSTR(screen, "sluicectl top", "header");
	ASSERT_HAS_SUBSTR(screen, "agent up", "agent state");
	ASSERT_HAS_SUBSTR(screen, ID_JOB, "the live flow's workload");
	ASSERT_HAS_SUBSTR(screen, SVC_DATA, "the live flow's service");
	/* Too long for its column in 80: the end of it is kept. */
	ASSERT_HAS_SUBSTR(screen, "notebook/alice", "the newest violation's workload");
	ASSERT_HAS_SUBSTR(screen, "default-deny", "the newest violation's reason");
	free(out);
	tmux(&out, "send-keys", "-t", session, "q", NULL);
	for (int i = 0; i < 50 && !gone; i++) {
		gone = access(stty, F_OK) == 0;
		sleep_ms(100);
	}
	if (ASSERT_TRUE(gone, "top quit on q")) {
		char *after;

		sleep_ms(200);
		after = read_file_from(stty, 0);
		ASSERT_TRUE(after && strstr(after, " icanon") && strstr(after, " echo "),
			    "terminal restored (icanon and echo back on)");
		free(after);
	}
out:
	free(screen);
	free(out);
	tmux(&out, "kill-session", "-t", session, NULL, NULL);
	free(out);
}

static void batch(struct sl_env *env)
{
	char bin[PATH_MAX], *out = NULL, *err = NULL;
	char *argv[] = { bin, "-P", env->pin_dir, "top", "--once", NULL };
	char *bad[] = { bin, "-P", env->pin_dir, "top", "-d", "0", NULL };

	snprintf(bin, sizeof(bin), "%s/sluicectl", test__build_dir());
	if (ASSERT_EQ(run_argv(argv, &out, &err, 10000), 0, "top --once exit status")) {
		ASSERT_HAS_SUBSTR(out, "BUSIEST FLOWS", "batch frame");
		ASSERT_HAS_SUBSTR(out, ID_JOB, "batch frame shows the flow");
		ASSERT_TRUE(!strchr(out, '\033'), "no escape sequences in batch mode");
	}
	free(out);
	free(err);
	ASSERT_EQ(run_argv(bad, &out, &err, 10000), 1, "top -d 0 exit status");
	ASSERT_HAS_SUBSTR(err ?: "", "-d takes seconds between 0.1 and 3600", "-d error");
	free(out);
	free(err);
}

void test_top(struct sl_env *env)
{
	struct agent_cfg cfg = {};
	struct client_res res;
	struct server *echo;
	struct client c;
	char session[64];

	if (access("/usr/bin/tmux", X_OK)) {
		test__skip("tmux is not installed (scripts/deps.sh)");
		return;
	}
	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !start_std_agent(env, &cfg, false))
		return;
	connect_denied(env, "notebook", AF_INET, PORT_ECHO);
	if (!hold_echo(env, "job", AF_INET, 1000, &c, &res))
		return;
	snprintf(session, sizeof(session), "sluice-top-%d", getpid());
	if (test__start_subtest("tmux"))
		in_tmux(env, session);
	if (test__start_subtest("batch"))
		batch(env);
	client_finish(env, &c);
}
