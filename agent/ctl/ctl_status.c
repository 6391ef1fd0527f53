// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* sluicectl status: is the agent alive, what the datapath does right now. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include "ctl.h"
#include "policy.h"

/* The pinned links: connect4, connect6, sendmsg4, sendmsg6, sockops, inbound. */
#define NR_LINKS 6

struct link_state {
	const char *name;
	const char *pin;
	int err;			/* 0, or why it could not be read */
	__u32 link_id;
	__u32 prog_id;
	char prog_name[BPF_OBJ_NAME_LEN];
	__u64 cgroup_id;
	char cgroup[PATH_MAX];		/* empty when the cgroup is not found */
};

struct map_state {
	const struct map_def *def;
	int err;
	char msg[ERRMSG_LEN];
	__u32 entries;
	__u32 max_entries;
};

struct status {
	struct sluice_config cfg;
	__u64 now;
	bool pid_exists;
	bool stale;
	const char *agent;		/* running, unresponsive, down */
	const char *datapath;		/* off, no-policy, refusing, bypassing, enforcing */
	char agent_cgroup[PATH_MAX];
	struct link_state links[NR_LINKS];
	struct map_state maps[NR_MAP_DEFS];
	/* The agent's own word on the live generation (control socket
	 * "status"): NULL when it cannot be asked, and why. */
	json_t *live;
	char live_err[sizeof(ctl_err.msg)];
};

static void read_link(struct link_state *l)
{
	struct bpf_link_info info = {};
	struct bpf_prog_info pinfo = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd, pfd;

	snprintf(path, sizeof(path), "%s/%s", pin_path, l->pin);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		l->err = -errno;
		return;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		l->err = -errno;
	close(fd);
	if (l->err)
		return;
	l->link_id = info.id;
	l->prog_id = info.prog_id;
	l->cgroup_id = info.cgroup.cgroup_id;
	if (cgroup_id_path(l->cgroup_id, l->cgroup, sizeof(l->cgroup)))
		l->cgroup[0] = '\0';
	pfd = bpf_prog_get_fd_by_id(l->prog_id);
	if (pfd < 0)
		return;
	len = sizeof(pinfo);
	if (!bpf_obj_get_info_by_fd(pfd, &pinfo, &len))
		snprintf(l->prog_name, sizeof(l->prog_name), "%s", pinfo.name);
	close(pfd);
}

static bool map_full(const struct map_state *m)
{
	/* An array has every entry from the start: never full. */
	if (m->def->type == BPF_MAP_TYPE_ARRAY || m->def->type == BPF_MAP_TYPE_PERCPU_ARRAY)
		return false;
	return sluice_map_full(m->def->type == BPF_MAP_TYPE_LRU_HASH, m->entries, m->max_entries);
}

static void read_map(struct map_state *m)
{
	int fd;

	m->err = map_open(m->def, &fd);
	if (!m->err) {
		m->err = map_count(fd, m->def, &m->entries, &m->max_entries);
		close(fd);
	}
	if (m->err)
		snprintf(m->msg, sizeof(m->msg), "%s", ctl_err.msg);
}

/* What connect() from a managed workload meets right now; mirrors the
 * order of checks in bpf/sluice.bpf.c. */
static const char *datapath_mode(const struct status *st)
{
	const struct sluice_config *c = &st->cfg;

	if (c->abi_version != SLUICE_ABI_VERSION)
		return "off";
	if (!c->slot_loaded[c->active_slot & 1])
		return "no-policy";
	if (!st->stale)
		return "enforcing";
	return c->fail_mode == SLUICE_FAIL_OPEN ? "bypassing" : "refusing";
}

static int status_read(struct status *st)
{
	static const char *const pins[NR_LINKS][2] = {
		{ "connect4", SLUICE_LINK_CONNECT4 },
		{ "connect6", SLUICE_LINK_CONNECT6 },
		{ "sendmsg4", SLUICE_LINK_SENDMSG4 },
		{ "sendmsg6", SLUICE_LINK_SENDMSG6 },
		{ "sockops", SLUICE_LINK_SOCKOPS },
		{ "inbound", SLUICE_LINK_INBOUND },
	};
	const struct sluice_config *c = &st->cfg;
	char proc[32];
	struct stat sb;
	int ret;

	memset(st, 0, sizeof(*st));
	ret = sluice_cfg_read(&st->cfg);
	if (ret)
		return ret;
	st->now = mono_ns();
	snprintf(proc, sizeof(proc), "/proc/%u", c->agent_pid);
	st->pid_exists = c->agent_pid && !stat(proc, &sb);
	/* Same test as agent_stale() in BPF. */
	st->stale = st->now - c->heartbeat_ns > c->heartbeat_timeout_ns;
	st->agent = !st->pid_exists ? "down" : st->stale ? "unresponsive" : "running";
	st->datapath = datapath_mode(st);
	if (!c->agent_cgroup_id ||
	    cgroup_id_path(c->agent_cgroup_id, st->agent_cgroup, sizeof(st->agent_cgroup)))
		st->agent_cgroup[0] = '\0';

	for (int i = 0; i < NR_LINKS; i++) {
		st->links[i].name = pins[i][0];
		st->links[i].pin = pins[i][1];
		read_link(&st->links[i]);
	}
	for (int i = 0; i < NR_MAP_DEFS; i++) {
		st->maps[i].def = &map_defs[i];
		read_map(&st->maps[i]);
	}
	return 0;
}

static json_t *json_str_or_null(const char *s)
{
	return *s ? json_string(s) : json_null();
}

static json_t *slot_json(const struct sluice_config *c, int slot)
{
	return json_pack("{s:i, s:b, s:b, s:o, s:o}", "slot", slot, "active",
			 (int)(c->active_slot & 1) == slot, "loaded", c->slot_loaded[slot] != 0,
			 "generation", json_u64(c->slot_generation[slot]), "default",
			 json_string(policy_action_name(c->slot_default[slot])));
}

static json_t *status_json(const struct status *st)
{
	const struct sluice_config *c = &st->cfg;
	json_t *agent, *links, *maps, *policy, *slots, *outbound;
	int act = c->active_slot & 1, other = !act;
	char ep4[64], ep6[80];
	__u32 a4[4] = { c->outbound4_addr };

	agent = json_pack("{s:s, s:o, s:b, s:o, s:o, s:b, s:o, s:o, s:o}", "state", st->agent,
			  "pid", json_u64(c->agent_pid), "pid_exists", st->pid_exists,
			  "heartbeat_age_ns",
			  json_u64_or_null(c->heartbeat_ns, age_ns(st->now, c->heartbeat_ns)),
			  "heartbeat_timeout_ns", json_u64(c->heartbeat_timeout_ns),
			  "heartbeat_stale", st->stale, "uptime_ns",
			  json_u64_or_null(c->started_ns && st->pid_exists,
					   age_ns(st->now, c->started_ns)),
			  "cgroup_id", json_u64(c->agent_cgroup_id), "cgroup",
			  json_str_or_null(st->agent_cgroup));
	outbound = json_pack("{s:s, s:s}", "ipv4",
			     fmt_endpoint(AF_INET, a4, c->outbound_port, ep4, sizeof(ep4)), "ipv6",
			     fmt_endpoint(AF_INET6, c->outbound6_addr, c->outbound_port, ep6,
					  sizeof(ep6)));

	links = json_object();
	for (int i = 0; i < NR_LINKS; i++) {
		const struct link_state *l = &st->links[i];

		if (l->err)
			json_object_set_new(links, l->name,
					    json_pack("{s:b, s:s}", "pinned", 0, "error",
						      strerror(-l->err)));
		else
			json_object_set_new(
				links, l->name,
				json_pack("{s:b, s:o, s:o, s:s, s:o, s:o}", "pinned", 1, "link_id",
					  json_u64(l->link_id), "prog_id", json_u64(l->prog_id),
					  "prog_name", l->prog_name, "cgroup_id",
					  json_u64(l->cgroup_id), "cgroup",
					  json_str_or_null(l->cgroup)));
	}

	slots = json_array();
	for (int i = 0; i < SLUICE_SLOTS; i++)
		json_array_append_new(slots, slot_json(c, i));
	policy = json_pack("{s:i, s:o, s:s, s:i, s:o, s:o}", "active_slot", act, "generation",
			   json_u64_or_null(c->slot_loaded[act], c->slot_generation[act]),
			   "default", policy_action_name(c->slot_default[act]), "rollback_slot",
			   other, "rollback_generation",
			   json_u64_or_null(c->slot_loaded[other], c->slot_generation[other]),
			   "slots", slots);

	maps = json_object();
	for (int i = 0; i < NR_MAP_DEFS; i++) {
		const struct map_state *m = &st->maps[i];

		if (m->err)
			json_object_set_new(maps, m->def->name,
					    json_pack("{s:s}", "error", m->msg));
		else
			json_object_set_new(maps, m->def->name,
					    json_pack("{s:o, s:o, s:b}", "entries", json_u64(m->entries),
						      "max_entries", json_u64(m->max_entries), "full",
						      map_full(m)));
	}

	if (st->live)
		json_object_update_missing(policy, json_pack("{s:O?, s:O?, s:O?}", "sha256",
							     json_object_get(st->live, "sha256"),
							     "source",
							     json_object_get(st->live, "source"),
							     "name",
							     json_object_get(st->live, "policy")));
	else
		json_object_set_new(policy, "control_error", json_string(st->live_err));
	return json_pack("{s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:i}", "agent", agent,
			 "datapath", st->datapath, "failure_mode", fail_mode_name(c->fail_mode),
			 "outbound", outbound, "links", links, "policy", policy, "maps", maps,
			 "abi_version", json_u64(c->abi_version), "sluicectl_abi_version",
			 SLUICE_ABI_VERSION);
}

static const char *datapath_text(const struct status *st)
{
	if (!strcmp(st->datapath, "off"))
		return "off: sluiced never configured it (or ABI mismatch), connects pass";
	if (!strcmp(st->datapath, "no-policy"))
		return "no policy loaded: managed workloads' connects are denied";
	if (!strcmp(st->datapath, "refusing"))
		return "agent heartbeat stale, failure mode closed: meshed connects are refused";
	if (!strcmp(st->datapath, "bypassing"))
		return "agent heartbeat stale, failure mode open: meshed connects bypass the agent";
	return "enforcing policy, meshed connects go through the agent";
}

static void print_slot(const char *label, const struct sluice_config *c, int slot)
{
	if (!c->slot_loaded[slot]) {
		printf("%-14sslot %d, empty\n", label, slot);
		return;
	}
	printf("%-14sslot %d, generation %u, default %s\n", label, slot, c->slot_generation[slot],
	       policy_action_name(c->slot_default[slot]));
}

/* A name column for s: at least w, and one space after the name. */
static int widest(int w, const char *s)
{
	int n = (int)strlen(s) + 1;

	return n > w ? n : w;
}

static void status_plain(const struct status *st)
{
	const struct sluice_config *c = &st->cfg;
	char hb[32], to[32], up[32], ep4[64], ep6[80];
	__u32 a4[4] = { c->outbound4_addr };
	int w = 0;

	printf("%-14s%s", "agent:", st->agent);
	if (c->agent_pid)
		printf(", pid %u%s", c->agent_pid, st->pid_exists ? "" : " (gone)");
	if (c->heartbeat_ns)
		printf(", heartbeat %s ago (timeout %s)",
		       fmt_duration(age_ns(st->now, c->heartbeat_ns), hb, sizeof(hb)),
		       fmt_duration(c->heartbeat_timeout_ns, to, sizeof(to)));
	else
		printf(", no heartbeat yet");
	if (c->started_ns && st->pid_exists)
		printf(", up %s", fmt_duration(age_ns(st->now, c->started_ns), up, sizeof(up)));
	printf("\n");
	printf("%-14s%s\n", "datapath:", datapath_text(st));
	printf("%-14s%s\n", "failure mode:", fail_mode_name(c->fail_mode));
	printf("%-14s%s, %s\n", "outbound:",
	       fmt_endpoint(AF_INET, a4, c->outbound_port, ep4, sizeof(ep4)),
	       fmt_endpoint(AF_INET6, c->outbound6_addr, c->outbound_port, ep6, sizeof(ep6)));
	printf("%-14s%llu %s\n", "agent cgroup:", c->agent_cgroup_id,
	       *st->agent_cgroup ? st->agent_cgroup : "(not found)");
	print_slot("policy:", c, c->active_slot & 1);
	print_slot("rollback:", c, !(c->active_slot & 1));
	if (st->live)
		printf("%-14ssha256 %s, generation %lld from %s (%s)\n", "policy file:",
		       json_string_value(json_object_get(st->live, "sha256")),
		       (long long)json_integer_value(json_object_get(st->live, "generation")),
		       json_string_value(json_object_get(st->live, "source")) ?: "?",
		       json_string_value(json_object_get(st->live, "policy")) ?: "?");
	else
		printf("%-14sunknown: %s\n", "policy file:", st->live_err);
	if (c->abi_version == SLUICE_ABI_VERSION)
		printf("%-14s%u\n", "abi version:", c->abi_version);
	else
		printf("%-14s%u (this sluicectl: %d)\n", "abi version:", c->abi_version,
		       SLUICE_ABI_VERSION);

	/* One name column for both tables, as wide as the longest name and a
	 * space. */
	for (int i = 0; i < NR_LINKS; i++)
		w = widest(w, st->links[i].name);
	for (int i = 0; i < NR_MAP_DEFS; i++)
		w = widest(w, st->maps[i].def->name);
	printf("links:\n");
	for (int i = 0; i < NR_LINKS; i++) {
		const struct link_state *l = &st->links[i];

		if (l->err) {
			printf("  %-*snot pinned: %s\n", w, l->name, strerror(-l->err));
			continue;
		}
		printf("  %-*slink %u, prog %u %s, cgroup %llu %s\n", w, l->name, l->link_id,
		       l->prog_id, *l->prog_name ? l->prog_name : "?", l->cgroup_id,
		       *l->cgroup ? l->cgroup : "(not found)");
	}
	printf("maps:\n");
	for (int i = 0; i < NR_MAP_DEFS; i++) {
		const struct map_state *m = &st->maps[i];

		if (m->err)
			printf("  %-*s%s\n", w, m->def->name, m->msg);
		else
			printf("  %-*s%u/%u%s\n", w, m->def->name, m->entries, m->max_entries,
			       !map_full(m) ? ""
			       : m->def->type == BPF_MAP_TYPE_LRU_HASH
				   ? " full: the oldest entries are evicted"
				   : " full: new entries are refused");
	}
}

static int status_show(int argc, char **argv)
{
	struct status st;
	int ret;

	if (argc)
		return BAD_ARG();
	ret = status_read(&st);
	if (ret)
		return ret;
	if (ctl_request(CTL_STATUS, NULL, &st.live))
		snprintf(st.live_err, sizeof(st.live_err), "%s", ctl_err.msg);
	ctl_err = (struct errmsg){};
	if (json_output)
		ret = print_json(status_json(&st));
	else
		status_plain(&st);
	json_decref(st.live);
	return ret;
}

static int status_help(int argc, char **argv)
{
	return print_help(
		"Usage: %1$s status [show]\n"
		"       %1$s status help\n"
		"\n"
		"Shows whether sluiced is alive (its pid exists and its heartbeat in\n"
		"sluice_cfg is younger than the heartbeat timeout), what the datapath does\n"
		"right now, the failure mode, the pinned links and where they are attached,\n"
		"the active and rollback policy generations, and how full each map is; and,\n"
		"asked over the control socket, the live policy file's SHA-256 and where\n"
		"its generation came from (file, socket or config).\n",
		bin_name);
}

static const struct cmd cmds[] = {
	{ "show", status_show },
	{ "list", status_show },
	{ "help", status_help },
	{ 0 }
};

int do_status(int argc, char **argv)
{
	return cmd_select(cmds, argc, argv, "status");
}
