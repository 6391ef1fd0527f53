// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "sluice.skel.h"
#include "addr.h"
#include "cgroup.h"
#include "clock.h"
#include "datapath.h"
#include "log.h"

static bool libbpf_verbose;
static char libbpf_last_warn[256];

/* libbpf's warnings, the verifier log among them, are what an operator
 * needs when a load fails: log them whole, one line each. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg, *line, *save = NULL;
	const char *first;

	if (level == LIBBPF_DEBUG && !libbpf_verbose)
		return 0;
	if (vasprintf(&msg, fmt, ap) < 0)
		return 0;
	for (line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (level == LIBBPF_WARN && !libbpf_last_warn[0]) {
			first = strncmp(line, "libbpf: ", 8) ? line : line + 8;
			snprintf(libbpf_last_warn, sizeof(libbpf_last_warn), "%.*s",
				 (int)sizeof(libbpf_last_warn) - 1, first);
		}
		log_msg(level == LIBBPF_WARN ? LOG_WARN : LOG_DEBUG, "%s", line);
	}
	free(msg);
	return 0;
}

void datapath_set_verbose(bool verbose)
{
	libbpf_verbose = verbose;
	libbpf_set_print(libbpf_print);
}

static const char *const link_names[DP_NR_PROGS] = {
	[DP_CONNECT4] = SLUICE_LINK_CONNECT4,
	[DP_CONNECT6] = SLUICE_LINK_CONNECT6,
	[DP_SENDMSG4] = SLUICE_LINK_SENDMSG4,
	[DP_SENDMSG6] = SLUICE_LINK_SENDMSG6,
	[DP_SOCKOPS] = SLUICE_LINK_SOCKOPS,
	[DP_INBOUND] = SLUICE_LINK_INBOUND,
};

static struct bpf_program *dp_prog(struct datapath *dp, enum datapath_prog p)
{
	switch (p) {
	case DP_CONNECT4:
		return dp->skel->progs.sluice_connect4;
	case DP_CONNECT6:
		return dp->skel->progs.sluice_connect6;
	case DP_SENDMSG4:
		return dp->skel->progs.sluice_sendmsg4;
	case DP_SENDMSG6:
		return dp->skel->progs.sluice_sendmsg6;
	case DP_SOCKOPS:
		return dp->skel->progs.sluice_sockops;
	default:
		return dp->skel->progs.sluice_inbound;
	}
}

/* A pinned link is reused only when it is attached to the same cgroup;
 * otherwise the config moved the root and the old link must go. */
static struct bpf_link *reuse_link(const char *path, uint64_t cg_id, struct bpf_program *prog)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	struct bpf_link *link;

	/* A first start has nothing pinned: not worth a libbpf warning. */
	if (access(path, F_OK))
		return NULL;
	link = bpf_link__open(path);
	if (!link)
		return NULL;
	if (bpf_obj_get_info_by_fd(bpf_link__fd(link), &info, &len) ||
	    info.type != BPF_LINK_TYPE_CGROUP || info.cgroup.cgroup_id != cg_id ||
	    bpf_link__update_program(link, prog)) {
		bpf_link__unpin(link);
		bpf_link__destroy(link);
		return NULL;
	}
	return link;
}

static int attach_all(struct datapath *dp, const char *cgroup_root, struct errmsg *err)
{
	char path[PATH_MAX + 32];
	uint64_t cg_id;
	int cg_fd, ret;

	ret = cgroup_id(cgroup_root, &cg_id);
	if (ret)
		return errmsg_set(err, ret, "cgroup_root %s: %s", cgroup_root, strerror(-ret));
	cg_fd = open(cgroup_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return errmsg_set(err, -errno, "cgroup_root %s: %s", cgroup_root, strerror(errno));

	for (int i = 0; i < DP_NR_PROGS; i++) {
		struct bpf_program *prog = dp_prog(dp, i);

		snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, link_names[i]);
		dp->links[i] = reuse_link(path, cg_id, prog);
		if (dp->links[i]) {
			pr_info("reused pinned link %s", path);
			continue;
		}
		dp->links[i] = bpf_program__attach_cgroup(prog, cg_fd);
		if (!dp->links[i]) {
			ret = -errno;
			errmsg_set(err, ret, "cannot attach %s to cgroup %s: %s",
				   bpf_program__name(prog), cgroup_root, strerror(-ret));
			break;
		}
		ret = bpf_link__pin(dp->links[i], path);
		if (ret) {
			errmsg_set(err, ret, "cannot pin link at %s: %s", path, strerror(-ret));
			break;
		}
	}
	close(cg_fd);
	return ret;
}

int datapath_open(struct datapath *dp, const char *pin_dir, const char *cgroup_root,
		  struct errmsg *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	int ret;

	memset(dp, 0, sizeof(*dp));
	snprintf(dp->pin_dir, sizeof(dp->pin_dir), "%s", pin_dir);
	libbpf_last_warn[0] = '\0';

	dp->skel = sluice_bpf__open_opts(&opts);
	if (!dp->skel)
		return errmsg_set(err, -errno, "cannot open the BPF object: %s", strerror(errno));
	ret = sluice_bpf__load(dp->skel);
	if (ret) {
		errmsg_set(err, ret, "cannot load the BPF programs: %s%s%s", strerror(-ret),
			   libbpf_last_warn[0] ? ": " : " (run with -v for libbpf's log)",
			   libbpf_last_warn);
		if (strstr(libbpf_last_warn, "reuse pinned map"))
			snprintf(err->msg + strlen(err->msg), sizeof(err->msg) - strlen(err->msg),
				 " -- maps pinned in %s come from an incompatible sluice "
				 "build: remove that directory (loses counters)", pin_dir);
		goto fail;
	}
	ret = attach_all(dp, cgroup_root, err);
	if (ret)
		goto fail;

	dp->cfg_fd = bpf_map__fd(dp->skel->maps.sluice_cfg);
	dp->workloads_fd = bpf_map__fd(dp->skel->maps.workloads);
	dp->policy4_fd = bpf_map__fd(dp->skel->maps.policy4);
	dp->policy6_fd = bpf_map__fd(dp->skel->maps.policy6);
	dp->redirects_fd = bpf_map__fd(dp->skel->maps.redirects);
	dp->flow_links_fd = bpf_map__fd(dp->skel->maps.flow_links);
	dp->names_fd = bpf_map__fd(dp->skel->maps.names);
	dp->violations_fd = bpf_map__fd(dp->skel->maps.violations);
	dp->refusals_fd = bpf_map__fd(dp->skel->maps.refusals);
	dp->dp_counters_fd = bpf_map__fd(dp->skel->maps.dp_counters);
	return 0;
fail:
	datapath_close(dp, true);
	return ret;
}

int datapath_config_get(const struct datapath *dp, struct sluice_config *cfg)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(dp->cfg_fd, &zero, cfg) ? -errno : 0;
}

int datapath_config_set(const struct datapath *dp, const struct sluice_config *cfg)
{
	__u32 zero = 0;

	return bpf_map_update_elem(dp->cfg_fd, &zero, cfg, BPF_ANY) ? -errno : 0;
}

int datapath_write_config(struct datapath *dp, const struct config *cfg, uint64_t agent_cg_id)
{
	struct sluice_config c;
	int ret;

	ret = datapath_config_get(dp, &c);
	if (ret)
		return ret;
	c.abi_version = SLUICE_ABI_VERSION;
	c.fail_mode = cfg->fail_open ? SLUICE_FAIL_OPEN : SLUICE_FAIL_CLOSED;
	c.agent_pid = getpid();
	c.agent_cgroup_id = agent_cg_id;
	c.heartbeat_ns = mono_ns();
	c.heartbeat_timeout_ns = (uint64_t)cfg->heartbeat_timeout_ms * 1000000ull;
	c.started_ns = c.heartbeat_ns;
	c.outbound4_addr = cfg->outbound4.sin_addr.s_addr;
	c.outbound_port = cfg->outbound4.sin_port;
	memcpy(c.outbound6_addr, &cfg->outbound6.sin6_addr, sizeof(c.outbound6_addr));
	/* sin_port and sin6_port share their offset. */
	c.http_port = cfg->has_http ? ((const struct sockaddr_in *)&cfg->http)->sin_port : 0;
	return datapath_config_set(dp, &c);
}

void datapath_heartbeat(struct datapath *dp)
{
	struct sluice_config c;
	const char *what = "read";
	int ret;

	ret = datapath_config_get(dp, &c);
	if (!ret) {
		what = "write";
		c.heartbeat_ns = mono_ns();
		ret = datapath_config_set(dp, &c);
	}
	if (ret && !dp->heartbeat_failing)
		pr_err("heartbeat: cannot %s sluice_cfg: %s (the datapath applies failure_mode "
		       "once the heartbeat is heartbeat_timeout old)", what, strerror(-ret));
	else if (!ret && dp->heartbeat_failing)
		pr_info("heartbeat: sluice_cfg written again");
	dp->heartbeat_failing = ret;
}

int datapath_check_no_other_agent(const char *pin_dir, struct errmsg *err)
{
	char path[PATH_MAX], proc[64];
	struct sluice_config c;
	__u32 zero = 0;
	bool live;
	int fd;

	snprintf(path, sizeof(path), "%s/sluice_cfg", pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	/* A map that cannot be read is not another agent's: datapath_open
	 * reuses it or says why it cannot. */
	live = !bpf_map_lookup_elem(fd, &zero, &c) && c.agent_pid &&
	       c.agent_pid != (__u32)getpid() && mono_ns() - c.heartbeat_ns < c.heartbeat_timeout_ns;
	close(fd);
	if (!live)
		return 0;
	snprintf(proc, sizeof(proc), "/proc/%u", c.agent_pid);
	if (access(proc, F_OK))
		return 0;
	return errmsg_set(err, -EBUSY,
			  "another sluiced (pid %u) is running with bpf_pin_path %s: stop it first, "
			  "or give this one its own bpf_pin_path", c.agent_pid, pin_dir);
}

int datapath_orig_dst(const struct datapath *dp, const struct sockaddr_storage *peer,
		      struct sluice_orig_dst *out)
{
	struct sluice_tuple_key key = {
		.family = peer->ss_family,
		.port = htons(sockaddr_port(peer)),
	};

	memcpy(key.addr, sockaddr_words(peer), peer->ss_family == AF_INET6 ? 16 : 4);
	return bpf_map_lookup_elem(dp->redirects_fd, &key, out) ? -ENOENT : 0;
}

void datapath_flow_connect_us(const struct datapath *dp, uint64_t cookie, uint32_t *connect_us)
{
	struct sluice_flow fl;

	if (cookie && !bpf_map__lookup_elem(dp->skel->maps.flows, &cookie, sizeof(cookie), &fl,
					    sizeof(fl), 0))
		*connect_us = fl.connect_us;
}

int datapath_link_upstream(struct datapath *dp, int fd, const struct sluice_orig_dst *dst)
{
	struct sluice_link link = {
		.app_cookie = dst->cookie,
		.identity = dst->identity,
		.service = dst->service,
	};
	socklen_t len = sizeof(uint64_t);
	const char *what = "SO_COOKIE";
	uint64_t cookie;
	int ret = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len)) {
		ret = -errno;
	} else if (bpf_map_update_elem(dp->flow_links_fd, &cookie, &link, BPF_ANY)) {
		ret = -errno;
		what = "flow_links update";
	}
	if (ret && !dp->flow_link_failing)
		pr_warn("%s: %s: proxied flows lack upstream RTT and bytes until it works again",
			what, strerror(-ret));
	else if (!ret && dp->flow_link_failing)
		pr_info("flow_links: upstream sockets linked to their flows again");
	dp->flow_link_failing = ret;
	return ret;
}

static void unpin_maps(struct datapath *dp)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, dp->skel->obj) {
		if (bpf_map__is_pinned(map))
			bpf_map__unpin(map, NULL);
	}
}

void datapath_close(struct datapath *dp, bool keep_pinned)
{
	for (int i = 0; i < DP_NR_PROGS; i++) {
		if (!dp->links[i])
			continue;
		if (!keep_pinned)
			bpf_link__unpin(dp->links[i]);
		bpf_link__destroy(dp->links[i]);
		dp->links[i] = NULL;
	}
	if (dp->skel && !keep_pinned) {
		unpin_maps(dp);
		rmdir(dp->pin_dir);
	}
	sluice_bpf__destroy(dp->skel);
	dp->skel = NULL;
}
