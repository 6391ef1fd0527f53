// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The per-flow LRU maps full (orig_dst, redirects, flows, flow_links, at
 * their real size, SLUICE_MAX_FLOWS): the test fills the pinned maps with
 * twice their capacity of synthetic entries, in batches, which a real
 * node reaches with that many connections at once. Established flows whose
 * entries are evicted (by the fill, or for sure, by hand) still run to
 * their end, byte-exact; a new flow still works; `sluicectl status` marks the maps
 * full and the agent logs it, once per interval. Host only: the agent
 * counts every 10 s.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "agent_proc.h"
#include "checks.h"
#include "client.h"
#include "env.h"
#include "harness.h"
#include "pinned.h"
#include "servers.h"

#define NR_HELD 4
/* Most of a download crosses after the fill: socket buffers hold far less. */
#define HELD_BYTES (32ull << 20)
#define BATCH 4096
/* Synthetic keys start here, far above any real socket cookie. */
#define FAKE_KEY_BASE (1ull << 62)
/* The agent's MAPFULL_INTERVAL_S, a round over both full maps (8 s) and a
 * margin. */
#define MAPFULL_WAIT_MS 20000
#define ONCE_WAIT_MS 3000
#define CTL_MS 10000

static const char *const lru_maps[] = { "orig_dst", "redirects", "flows", "flow_links" };

/* Fills the pinned map with twice max_entries new keys, zero values. */
static int fill_map(struct sl_env *env, const char *name)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char *keys = NULL, *vals = NULL;
	int fd, ret = -ENOMEM;
	__u64 next = FAKE_KEY_BASE;

	fd = pinned_fd(env, name);
	if (fd < 0)
		return fd;
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		ret = -errno;
		goto out;
	}
	keys = calloc(BATCH, info.key_size);
	vals = calloc(BATCH, info.value_size);
	if (!keys || !vals || info.key_size < sizeof(next))
		goto out;
	for (__u32 done = 0; done < 2 * info.max_entries; done += BATCH) {
		__u32 n = BATCH;

		for (__u32 i = 0; i < n; i++, next++)
			memcpy(keys + (size_t)i * info.key_size, &next, sizeof(next));
		if (bpf_map_update_batch(fd, keys, vals, &n, &opts)) {
			ret = -errno;
			goto out;
		}
	}
	ret = 0;
out:
	free(keys);
	free(vals);
	close(fd);
	return ret;
}

/* What LRU may do to an established flow at any time, done for sure:
 * deletes the entries that sockops reads for it (flows and orig_dst by the
 * app socket's cookie, flow_links by the upstream socket's). Its redirects
 * entry was consumed at accept(). Returns how many were still there. */
static int evict_flow(struct sl_env *env, __u64 cookie)
{
	int flows = pinned_fd(env, "flows"), orig = pinned_fd(env, "orig_dst");
	int links = pinned_fd(env, "flow_links");
	struct sluice_link link;
	__u64 key, next, *prev = NULL;
	int n = 0;

	if (flows >= 0)
		n += !bpf_map_delete_elem(flows, &cookie);
	if (orig >= 0)
		n += !bpf_map_delete_elem(orig, &cookie);
	while (links >= 0 && !bpf_map_get_next_key(links, prev, &next)) {
		key = next;
		prev = &key;
		if (!bpf_map_lookup_elem(links, &key, &link) && link.app_cookie == cookie)
			n += !bpf_map_delete_elem(links, &key);
	}
	close(flows);
	close(orig);
	close(links);
	return n;
}

/* `sluicectl -P <pins> status` with args; stdout (malloc'd) or NULL. */
static char *ctl_status(struct sl_env *env, bool json)
{
	char bin[PATH_MAX];
	char *argv[] = { bin, "-P", env->pin_dir, json ? "-j" : "status", json ? "status" : NULL,
			 NULL };
	char *out = NULL, *err = NULL;
	int ret;

	snprintf(bin, sizeof(bin), "%s/sluicectl", test__build_dir());
	ret = run_argv(argv, &out, &err, CTL_MS);
	if (ret)
		printf("sluicectl status: exit %d: %s\n", ret, err ?: "");
	free(err);
	if (ret) {
		free(out);
		return NULL;
	}
	return out;
}

static void status_shows_full(struct sl_env *env)
{
	char *out = ctl_status(env, true), name[64];
	json_t *j = out ? json_loads(out, 0, NULL) : NULL;

	if (ASSERT_OK_PTR(j, "sluicectl -j status")) {
		for (size_t i = 0; i < sizeof(lru_maps) / sizeof(lru_maps[0]); i++) {
			json_t *m = json_object_get(json_object_get(j, "maps"), lru_maps[i]);

			snprintf(name, sizeof(name), "maps.%s.full", lru_maps[i]);
			ASSERT_TRUE(json_is_true(json_object_get(m, "full")), name);
		}
		ASSERT_TRUE(json_is_false(json_object_get(json_object_get(json_object_get(j, "maps"),
									  "names"),
							  "full")),
			    "maps.names.full");
	}
	json_decref(j);
	free(out);
	out = ctl_status(env, false);
	ASSERT_HAS_SUBSTR(out, "full: the oldest entries are evicted", "sluicectl status");
	free(out);
}

static void logged_once(struct sl_env *env, long from)
{
	const char *needle = "datapath: map flows is full";
	char *log;

	if (!ASSERT_TRUE(agent_log_wait(env, from, needle, MAPFULL_WAIT_MS),
			 "the agent logged the full map"))
		return;
	sleep_ms(ONCE_WAIT_MS);
	log = agent_log(env, from);
	ASSERT_EQ(count_substr(log, needle), 1, "log lines about the full flows map");
	ASSERT_HAS_SUBSTR(log, "datapath: map redirects is full", "the full redirects map, logged");
	free(log);
}

void test_map_full(struct sl_env *env)
{
	struct client_req req = {
		.op = CL_DOWNLOAD,
		.cgroup = "job",
		.family = AF_INET,
		.port = PORT_SOURCE,
		.bytes = HELD_BYTES,
		.hold = true,
	};
	struct client held[NR_HELD];
	struct client_res res[NR_HELD] = {};
	struct server *echo, *source;
	struct sluice_flow fl;
	struct agent_cfg cfg = {};
	int nr = 0, evicted = 0;
	long from = agent_log_size(env);
	long long t0;

	echo = server_start(env, SRV_ECHO, PORT_ECHO);
	source = server_start(env, SRV_SOURCE, PORT_SOURCE);
	if (!ASSERT_OK_PTR(echo, "echo server") || !ASSERT_OK_PTR(source, "source server") ||
	    !start_std_agent(env, &cfg, false))
		return;
	for (; nr < NR_HELD; nr++) {
		if (!ASSERT_OK(client_start(env, &req, &held[nr]), "start a held download"))
			goto release;
		if (!ASSERT_OK(client_result(&held[nr], &res[nr], CLIENT_MS), "its first report") ||
		    !ASSERT_EQ(res[nr].err, 0, "the held download's errno") ||
		    !ASSERT_OK(pinned_flow(env, res[nr].cookie, &fl), "its flows entry")) {
			client_finish(env, &held[nr]);
			goto release;
		}
	}

	from = agent_log_size(env);
	t0 = now_ms();
	for (size_t i = 0; i < sizeof(lru_maps) / sizeof(lru_maps[0]); i++)
		if (!ASSERT_OK(fill_map(env, lru_maps[i]), lru_maps[i]))
			goto release;
	printf("filled the LRU maps twice over in %lld ms\n", now_ms() - t0);
	/* LRU keeps entries that sockops keeps touching, so the fill need
	 * not have reached the held flows' own: the rest go by hand. */
	for (int i = 0; i < nr; i++) {
		evicted += pinned_flow(env, res[i].cookie, &fl) == -ENOENT;
		evict_flow(env, res[i].cookie);
		ASSERT_EQ(pinned_flow(env, res[i].cookie, &fl), -ENOENT, "the held flow's record");
	}
	printf("%d of %d held flows' records evicted by the fill\n", evicted, nr);
	status_shows_full(env);

release:
	for (int i = 0; i < nr; i++) {
		client_release(&held[i]);
		if (ASSERT_OK(client_result(&held[i], &res[i], CLIENT_MS), "the held download ended")) {
			ASSERT_EQ(res[i].err, 0, "the evicted flow's errno");
			ASSERT_EQ(res[i].recvd.bytes, HELD_BYTES, "the evicted flow's bytes");
			ASSERT_EQ(res[i].recvd.mismatch_at, -1, "the evicted flow's first differing byte");
			ASSERT_TRUE(res[i].eof, "the evicted flow ended with EOF");
		}
		client_finish(env, &held[i]);
	}
	if (nr < NR_HELD)
		return;
	echo_via_agent(env, echo, "job", AF_INET, PORT_ECHO, 1000, NULL);
	logged_once(env, from);
	ASSERT_TRUE(agent_running(env), "the agent still runs");
}
