// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* An agent that cannot start says exactly why and leaves the node as it
 * found it: nothing attached to the cgroup, nothing pinned. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "checks.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

#define EXIT_MS 30000

/* Programs attached to the test's cgroup root, all hooks sluice uses. */
static int attached(struct sl_env *env)
{
	static const enum bpf_attach_type types[] = {
	    BPF_CGROUP_INET4_CONNECT,
	    BPF_CGROUP_INET6_CONNECT,
	    BPF_CGROUP_UDP4_SENDMSG,
	    BPF_CGROUP_UDP6_SENDMSG,
	    BPF_CGROUP_SOCK_OPS,
	    BPF_CGROUP_INET_INGRESS,
	};
	int fd, total = 0;

	fd = open(env->cg_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		__u32 ids[16], cnt = 16, flags = 0;

		if (bpf_prog_query(fd, types[i], 0, &flags, ids, &cnt)) {
			total = -1;
			break;
		}
		total += cnt;
	}
	close(fd);
	return total;
}

/* Entries in the pin directory; 0 when it does not exist, -1 when it
 * cannot be read. */
static int pins(struct sl_env *env)
{
	struct dirent *d;
	DIR *dir;
	int n = 0;

	dir = opendir(env->pin_dir);
	if (!dir)
		return errno == ENOENT ? 0 : -1;
	while ((d = readdir(dir))) {
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
			n++;
	}
	closedir(dir);
	return n;
}

/* Runs the agent to its exit; checks status 1, the message and the node. */
static void expect_refusal(struct sl_env *env, const char *needle1, const char *needle2)
{
	int before_attached = attached(env), before_pins = pins(env), status;
	long from = agent_log_size(env);
	char *log;

	ASSERT_GE(before_attached, 0, "programs attached before");
	ASSERT_GE(before_pins, 0, "entries in the pin directory before");
	if (!ASSERT_OK(agent_spawn(env, NULL), "spawn sluiced"))
		return;
	status = agent_wait_exit(env, EXIT_MS);
	ASSERT_EQ(status, 1, "sluiced exit status");
	log = agent_log(env, from);
	ASSERT_HAS_SUBSTR(log, needle1, "error message");
	if (needle2)
		ASSERT_HAS_SUBSTR(log, needle2, "error message");
	free(log);
	ASSERT_EQ(attached(env), before_attached, "programs attached to the cgroup root");
	ASSERT_EQ(pins(env), before_pins, "entries in the pin directory");
}

/* The 1-based line of the config that contains s; 0 when none does. */
static int config_line_of(struct sl_env *env, const char *s)
{
	char path[PATH_MAX], *text, *p;
	int line = 1;

	env_path(env, CONFIG_FILE, path, sizeof(path));
	text = read_file_from(path, 0);
	p = text ? strstr(text, s) : NULL;
	if (!p) {
		free(text);
		return 0;
	}
	for (char *q = text; q < p; q++)
		line += *q == '\n';
	free(text);
	return line;
}

static void missing_cgroup(struct sl_env *env)
{
	struct agent_cfg cfg = {
	    .extra_workloads = "  - cgroup: ghost\n"
			       "    id: spiffe://" TRUST_DOMAIN "/job/ghost\n",
	};
	char where[64], cg[PATH_MAX];
	int line;

	if (!ASSERT_OK(agent_write_config(env, &cfg), "write sluice.yaml") ||
	    !ASSERT_OK(agent_write_std_policy(env), "write policy.yaml"))
		return;
	line = config_line_of(env, "- cgroup: ghost");
	if (!ASSERT_NEQ(line, 0, "line of the ghost workload"))
		return;
	snprintf(where, sizeof(where), CONFIG_FILE ":%d: ", line);
	env_cgroup(env, "ghost", cg, sizeof(cg));
	expect_refusal(env, where, cg);
}

static void port_in_use(struct sl_env *env)
{
	struct agent_cfg cfg = {};
	struct server *squatter;

	squatter = server_start_at(env, env->ns_a, "127.0.0.1", SRV_ECHO, PORT_OUTBOUND);
	if (!ASSERT_OK_PTR(squatter, "listener on " OUTBOUND4 " in node A") ||
	    !ASSERT_OK(agent_write_config(env, &cfg), "write sluice.yaml") ||
	    !ASSERT_OK(agent_write_std_policy(env), "write policy.yaml"))
		return;
	expect_refusal(env, OUTBOUND4, NULL);
}

void test_bad_input(struct sl_env *env)
{
	if (test__start_subtest("missing_cgroup"))
		missing_cgroup(env);
	/* Last: its listener stays until teardown. */
	if (test__start_subtest("port_in_use"))
		port_in_use(env);
}
