// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Switching generations under a load of connections never shows one half
 * a policy: while the job opens connections to data, 100 cycles of `policy
 * apply` (a generation that denies it) and `policy rollback` (the one that
 * allows it) run through the control socket. Every connection must either
 * carry its bytes or fail with EPERM; each audit line's verdict must be
 * what the generation it names says; and the client's counts must equal
 * the audit log's: no allowed connection failed, no denied one got
 * through.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checks.h"
#include "client.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"
#include "util.h"

#define CYCLES 100
#define CONNECTS 3000
#define CTL_MS 20000
#define MAX_GENS (2 * CYCLES + 8)
#define DENYING "denying.yaml"

struct sw {
	struct sl_env *env;
	char sock[PATH_MAX];
	char denying[PATH_MAX];
	/* Which generations deny the job: every one `apply` made. */
	bool denies[MAX_GENS + 1];
};

/* sluicectl -j -S SOCK policy CMD [FILE]: the generation it made live. */
static long ctl_gen(struct sw *t, const char *cmd, const char *file)
{
	char bin[PATH_MAX], *out = NULL, *err = NULL;
	char *argv[] = { bin, "-j", "-S", t->sock, "policy", (char *)cmd, (char *)file, NULL };
	json_t *doc;
	long gen = -1;

	snprintf(bin, sizeof(bin), "%s/sluicectl", test__build_dir());
	if (!run_argv(argv, &out, &err, CTL_MS) && (doc = json_loads(out, 0, NULL))) {
		gen = json_integer_value(json_object_get(doc, "generation"));
		json_decref(doc);
	} else {
		printf("sluicectl policy %s: %s%s", cmd, out ?: "", err ?: "");
	}
	free(out);
	free(err);
	return gen;
}

struct tally {
	long allow, deny, wrong, unknown;
};

/* The job's lines to data: allows at close, denies (folded: count). */
static void tally_line(const struct sw *t, json_t *l, struct tally *n)
{
	const char *wl = json_string_value(json_object_get(l, "src_workload"));
	const char *dst = json_string_value(json_object_get(l, "dst"));
	const char *verdict = json_string_value(json_object_get(l, "verdict"));
	json_int_t gen = json_integer_value(json_object_get(l, "generation"));
	json_int_t count = json_integer_value(json_object_get(l, "count"));
	bool deny;

	if (!wl || strcmp(wl, ID_JOB) || !dst || !strstr(dst, ":7000") || !verdict)
		return;
	deny = !strcmp(verdict, "deny");
	if (deny)
		n->deny += count > 1 ? count : 1;
	else
		n->allow++;
	if (gen <= 0 || gen > MAX_GENS) {
		n->unknown++;
		return;
	}
	if (deny != t->denies[gen])
		n->wrong++;
}

static bool tally(const struct sw *t, struct tally *n)
{
	char path[PATH_MAX], *log, *line, *save = NULL;

	env_path(t->env, "run/audit.jsonl", path, sizeof(path));
	log = read_file_from(path, 0);
	if (!ASSERT_OK_PTR(log, "audit log"))
		return false;
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *l = json_loads(line, 0, NULL);

		if (l)
			tally_line(t, l, n);
		json_decref(l);
	}
	free(log);
	return true;
}

static int write_denying(struct sl_env *env)
{
	return env_write_file(env, DENYING,
			      "version: 1\n"
			      "default: deny\n"
			      "services:\n"
			      "  - name: " SVC_DATA "\n"
			      "    addresses: [%s/32]\n"
			      "    ports: [7000]\n"
			      "rules:\n"
			      "  - name: notebooks-use-data\n"
			      "    from: {kind: notebook}\n"
			      "    to: [" SVC_DATA "]\n"
			      "    action: allow\n",
			      env->ip4_b);
}

static int cycles(struct sw *t)
{
	int done = 0;

	for (int i = 0; i < CYCLES; i++) {
		long gen = ctl_gen(t, "apply", t->denying);

		if (gen <= 0 || gen > MAX_GENS)
			break;
		t->denies[gen] = true;
		if (ctl_gen(t, "rollback", NULL) <= 0)
			break;
		done++;
	}
	return done;
}

void test_policy_switch(struct sl_env *env)
{
	struct client_req req = { .op = CL_VERDICTS, .cgroup = "job", .family = AF_INET,
				  .port = PORT_ECHO, .count = CONNECTS };
	struct sw t = { .env = env };
	struct agent_cfg cfg = {};
	char extra[PATH_MAX + 32];
	struct client_res res = {};
	struct tally n = {};
	struct client cl;
	struct server *echo;
	int done;

	env_path(env, "ctl.sock", t.sock, sizeof(t.sock));
	env_path(env, DENYING, t.denying, sizeof(t.denying));
	snprintf(extra, sizeof(extra), "control:\n  socket: %s\n", t.sock);
	cfg.extra = extra;
	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(echo, "echo server") || !ASSERT_OK(write_denying(env), "denying.yaml") ||
	    !start_std_agent(env, &cfg, false))
		return;
	if (!ASSERT_OK(client_start(env, &req, &cl), "start the job's connections"))
		return;
	done = cycles(&t);
	ASSERT_EQ(client_result(&cl, &res, CLIENT_MS), 0, "the job's report");
	client_finish(env, &cl);
	ASSERT_EQ(done, CYCLES, "apply/rollback cycles");
	/* The last allows are written at close, the last refusals within a
	 * second (decisions.h); stopping the agent writes what is left. */
	ASSERT_OK(agent_stop(env), "stop sluiced");
	if (!tally(&t, &n))
		return;
	printf("policy_switch: %d cycles; job: %d connections carried, %d refused (EPERM), %d "
	       "broken; audit: %ld allow, %ld deny lines' worth, %ld against their generation, "
	       "%ld with no generation\n", done, res.completed, res.denied, res.broken, n.allow,
	       n.deny, n.wrong, n.unknown);
	ASSERT_EQ(res.broken, 0, "connections neither carried nor refused");
	ASSERT_EQ(res.completed + res.denied, CONNECTS, "every connection accounted for");
	ASSERT_TRUE(res.completed > 0 && res.denied > 0, "both generations were seen");
	ASSERT_EQ(n.wrong, 0, "audit lines whose verdict is not their generation's");
	ASSERT_EQ(n.unknown, 0, "audit lines of no known generation");
	ASSERT_EQ(n.allow, res.completed, "allow lines = connections carried");
	ASSERT_EQ(n.deny, res.denied, "deny lines = connections refused");
}
