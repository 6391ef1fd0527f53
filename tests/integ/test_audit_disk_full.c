// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Node A's audit log on a 64 KiB tmpfs that the test fills (docs/audit.md,
 * lost lines): flows through the tunnel keep working, at their pace, while
 * no line can be written; every lost line is counted in credentials.json
 * and by `sluicectl cred list`, and logged once, not once per line. Once
 * there is room again the next flow's line is written, and after the 10 s
 * quiet interval the agent says it writes again. Host only: that interval.
 * run_dir_full puts run_dir itself (credentials.json) on the full disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_proc.h"
#include "client.h"
#include "env.h"
#include "harness.h"
#include "mesh.h"
#include "servers.h"

#define AUDIT_FS "auditfs"
#define AUDIT_FS_SIZE "64k"
#define NR_FULL 3
#define FLOW_BYTES 65536
/* A flow of FLOW_BYTES through the tunnel takes milliseconds; a stall on
 * the audit write would take the flow's whole timeout. */
#define FLOW_MS 2000
/* The agent's AUDIT_SAY_S, and a margin. */
#define AUDIT_QUIET_MS 11000
#define LOST_MSG "lines lost so far: cannot write"

struct world {
	char audit[PATH_MAX];
	char filler[PATH_MAX];
	char run_dir[PATH_MAX];
	struct server *echo;
};

/* Fills the tmpfs until the kernel says ENOSPC. */
static int fill(const char *path)
{
	static const char block[4096];
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (!ret)
		ret = write_full(fd, block, sizeof(block));
	close(fd);
	return ret;
}

/* One job flow through the tunnel: byte-exact and within FLOW_MS. */
static bool flow_ok(struct sl_env *env, struct world *w)
{
	struct client_req req = {
		.op = CL_ECHO,
		.cgroup = "job",
		.family = AF_INET,
		.port = PORT_ECHO,
		.bytes = FLOW_BYTES,
	};
	struct client_res res = {};
	long long t0 = now_ms(), took;
	bool ok;

	if (!ASSERT_OK(client_run(env, &req, &res), "client"))
		return false;
	took = now_ms() - t0;
	ok = ASSERT_EQ(res.err, 0, "the job's errno");
	ok &= ASSERT_EQ(res.recvd.bytes, FLOW_BYTES, "bytes echoed");
	ok &= ASSERT_TRUE(took < FLOW_MS, "the flow took less than FLOW_MS");
	printf("flow: %lld ms\n", took);
	return ok;
}

/* audit.lines_lost in node A's credentials.json; -1 when unreadable. */
static long long lines_lost(struct world *w)
{
	char path[PATH_MAX + 32];
	long long n = -1;
	json_t *doc;

	snprintf(path, sizeof(path), "%s/credentials.json", w->run_dir);
	doc = json_load_file(path, 0, NULL);
	if (json_is_integer(json_object_get(json_object_get(doc, "audit"), "lines_lost")))
		n = json_integer_value(json_object_get(json_object_get(doc, "audit"), "lines_lost"));
	json_decref(doc);
	return n;
}

static bool wait_lines_lost(struct world *w, long long want)
{
	long long deadline = now_ms() + LOG_WAIT_MS;

	while (lines_lost(w) != want && now_ms() < deadline)
		sleep_ms(100);
	return ASSERT_EQ(lines_lost(w), want, "credentials.json audit.lines_lost");
}

/* `sluicectl cred list --run-dir <tmp>/run`, its stdout (malloc'd). */
static char *cred_list(struct world *w)
{
	char bin[PATH_MAX];
	char *argv[] = { bin, "cred", "list", "--run-dir", w->run_dir, NULL };
	char *out = NULL, *err = NULL;
	int ret;

	snprintf(bin, sizeof(bin), "%s/sluicectl", test__build_dir());
	ret = run_argv(argv, &out, &err, LOG_WAIT_MS);
	if (ret)
		printf("sluicectl cred list: exit %d: %s\n", ret, err ?: "");
	free(err);
	return out;
}

static void disk_full(struct sl_env *env, struct world *w)
{
	long from = agent_log_size(env);
	char *log, *out, want[128];
	int flows = 0;

	for (int i = 0; i < NR_FULL; i++)
		flows += flow_ok(env, w);
	ASSERT_EQ(flows, NR_FULL, "flows that worked on a full disk");
	ASSERT_TRUE(agent_running(env), "node A's agent still runs");
	wait_lines_lost(w, NR_FULL);
	ASSERT_EQ(file_size(w->audit), 0, "bytes in the audit log");
	out = cred_list(w);
	snprintf(want, sizeof(want),
		 "%d lines lost since sluiced started, the last: No space left on device", NR_FULL);
	ASSERT_HAS_SUBSTR(out, want, "sluicectl cred list");
	free(out);
	log = agent_log(env, from);
	ASSERT_EQ(count_substr(log, LOST_MSG), 1, "log lines about lost lines");
	ASSERT_HAS_SUBSTR(log, "error audit: 1 " LOST_MSG, "the first lost line, logged");
	free(log);
}

static void room_again(struct sl_env *env, struct world *w)
{
	char again[PATH_MAX + 64], *audit;
	long from = agent_log_size(env);
	long long quiet_end = now_ms() + AUDIT_QUIET_MS;

	if (!ASSERT_OK(unlink(w->filler), "delete the filler"))
		return;
	flow_ok(env, w);
	ASSERT_TRUE(file_wait(w->audit, 0, "\"status\":\"ok\"", LOG_WAIT_MS),
		    "the next flow's line was written");
	ASSERT_EQ(lines_lost(w), NR_FULL, "audit.lines_lost after writing resumed");
	/* The agent says so after its quiet interval, with the next line. */
	while (now_ms() < quiet_end)
		sleep_ms(200);
	flow_ok(env, w);
	snprintf(again, sizeof(again), "audit: writing to %s again, %d lines lost so far", w->audit,
		 NR_FULL);
	ASSERT_TRUE(agent_log_wait(env, from, again, LOG_WAIT_MS), "the agent logged the resume");
	audit = read_file_from(w->audit, 0);
	ASSERT_EQ(count_substr(audit, "\"status\""), 2, "lines in the audit log");
	free(audit);
}

void test_audit_disk_full(struct sl_env *env)
{
	struct world w = {};
	struct mesh_cfg cfg = { .audit_log_a = w.audit };

	env_path(env, AUDIT_FS "/audit.jsonl", w.audit, sizeof(w.audit));
	env_path(env, AUDIT_FS "/filler", w.filler, sizeof(w.filler));
	env_path(env, "run", w.run_dir, sizeof(w.run_dir));
	if (!ASSERT_OK(env_mount_tmpfs(env, AUDIT_FS, AUDIT_FS_SIZE), "mount the audit tmpfs") ||
	    !ASSERT_OK(mesh_setup(env, &cfg), "two agents"))
		return;
	w.echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(w.echo, "echo server"))
		return;
	/* Empty, so that no page of its own has room for a line. */
	if (!ASSERT_EQ(file_size(w.audit), 0, "bytes in the audit log before the fill") ||
	    !ASSERT_EQ(fill(w.filler), -ENOSPC, "fill the tmpfs"))
		return;
	if (test__start_subtest("disk_full"))
		disk_full(env, &w);
	if (test__start_subtest("room_again"))
		room_again(env, &w);
}

/* How long the agent gets to repeat a warning it must say once: three
 * rounds of its one-second retry. */
#define RETRY_ROUNDS_MS 3500

/*
 * run_dir itself on a full disk (credentials.json and, by default, the
 * audit log): the flow still passes, the agent says once, not every
 * second, that it cannot write credentials.json, and writes it again, with
 * the lost line counted, once there is room.
 */
void test_run_dir_full(struct sl_env *env)
{
	const char *needle = "warn  credentials file: ";
	struct mesh_cfg cfg = {};
	struct world w = {};
	char again[PATH_MAX + 64], *log;
	long from;

	env_path(env, "run/audit.jsonl", w.audit, sizeof(w.audit));
	env_path(env, "run/filler", w.filler, sizeof(w.filler));
	env_path(env, "run", w.run_dir, sizeof(w.run_dir));
	if (!ASSERT_OK(env_mount_tmpfs(env, "run", AUDIT_FS_SIZE), "mount run_dir's tmpfs") ||
	    !ASSERT_OK(mesh_setup(env, &cfg), "two agents") || !wait_lines_lost(&w, 0))
		return;
	w.echo = server_start(env, SRV_ECHO, PORT_ECHO);
	if (!ASSERT_OK_PTR(w.echo, "echo server") ||
	    !ASSERT_EQ(fill(w.filler), -ENOSPC, "fill the tmpfs"))
		return;
	from = agent_log_size(env);
	/* Its lost audit line changes what credentials.json must say. */
	flow_ok(env, &w);
	if (!ASSERT_TRUE(agent_log_wait(env, from, needle, LOG_WAIT_MS),
			 "the agent said it cannot write credentials.json"))
		return;
	sleep_ms(RETRY_ROUNDS_MS);
	log = agent_log(env, from);
	ASSERT_EQ(count_substr(log, needle), 1, "log lines about credentials.json");
	free(log);
	ASSERT_EQ(lines_lost(&w), 0, "audit.lines_lost in the stale credentials.json");
	ASSERT_TRUE(agent_running(env), "node A's agent still runs");

	if (!ASSERT_OK(unlink(w.filler), "delete the filler"))
		return;
	snprintf(again, sizeof(again), "credentials file: %s/credentials.json written again",
		 w.run_dir);
	ASSERT_TRUE(agent_log_wait(env, from, again, LOG_WAIT_MS),
		    "the agent said it writes again");
	wait_lines_lost(&w, 1);
}
