// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The pinned maps: their expected layouts, decoders to JSON for `map dump`,
 * and the open/walk code every sluicectl object uses.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>

#include "ctl.h"
#include "policy.h"

static void jset_u64(json_t *o, const char *key, __u64 v)
{
	json_object_set_new(o, key, json_u64(v));
}

static void jset_str(json_t *o, const char *key, const char *s)
{
	json_object_set_new(o, key, json_string(s));
}

static void jset_addr(json_t *o, const char *key, int family, const __u32 *addr)
{
	char buf[INET6_ADDRSTRLEN];

	jset_str(o, key, fmt_addr(family, addr, buf, sizeof(buf)));
}

static json_t *index_json(const void *key)
{
	json_t *o = json_object();

	jset_u64(o, "index", *(const __u32 *)key);
	return o;
}

static json_t *cgroup_key_json(const void *key)
{
	json_t *o = json_object();

	jset_u64(o, "cgroup_id", *(const __u64 *)key);
	return o;
}

static json_t *cookie_key_json(const void *key)
{
	json_t *o = json_object();

	jset_u64(o, "cookie", *(const __u64 *)key);
	return o;
}

static json_t *config_json(const void *value)
{
	const struct sluice_config *c = value;
	json_t *o = json_object(), *loaded = json_array(), *gen = json_array(), *def = json_array();
	__u32 a4[4] = { c->outbound4_addr };

	for (int i = 0; i < SLUICE_SLOTS; i++) {
		json_array_append_new(loaded, json_boolean(c->slot_loaded[i]));
		json_array_append_new(gen, json_u64(c->slot_generation[i]));
		json_array_append_new(def, json_string(policy_action_name(c->slot_default[i])));
	}
	jset_u64(o, "abi_version", c->abi_version);
	jset_u64(o, "active_slot", c->active_slot);
	json_object_set_new(o, "slot_loaded", loaded);
	json_object_set_new(o, "slot_generation", gen);
	json_object_set_new(o, "slot_default", def);
	jset_str(o, "fail_mode", fail_mode_name(c->fail_mode));
	jset_u64(o, "agent_pid", c->agent_pid);
	jset_u64(o, "agent_cgroup_id", c->agent_cgroup_id);
	jset_u64(o, "heartbeat_ns", c->heartbeat_ns);
	jset_u64(o, "heartbeat_timeout_ns", c->heartbeat_timeout_ns);
	jset_u64(o, "started_ns", c->started_ns);
	jset_addr(o, "outbound4_addr", AF_INET, a4);
	jset_u64(o, "outbound_port", ntohs(c->outbound_port));
	jset_addr(o, "outbound6_addr", AF_INET6, c->outbound6_addr);
	return o;
}

static json_t *workload_json(const void *value)
{
	const struct sluice_workload *w = value;
	json_t *o = json_object();

	jset_u64(o, "identity", w->identity);
	jset_u64(o, "flags", w->flags);
	return o;
}

static void policy_key_common(json_t *o, __u32 prefixlen, __u32 identity, __u8 slot, __u8 proto,
			      __u16 port)
{
	jset_u64(o, "prefixlen", prefixlen);
	jset_u64(o, "identity", identity);
	jset_u64(o, "slot", slot);
	jset_str(o, "proto", proto_name(proto));
	jset_u64(o, "port", ntohs(port));
}

static json_t *policy_key4_json(const void *key)
{
	const struct sluice_policy_key4 *k = key;
	json_t *o = json_object();
	__u32 a[4] = { k->addr };

	policy_key_common(o, k->prefixlen, k->identity, k->slot, k->proto, k->port);
	jset_addr(o, "addr", AF_INET, a);
	return o;
}

static json_t *policy_key6_json(const void *key)
{
	const struct sluice_policy_key6 *k = key;
	json_t *o = json_object();

	policy_key_common(o, k->prefixlen, k->identity, k->slot, k->proto, k->port);
	jset_addr(o, "addr", AF_INET6, k->addr);
	return o;
}

static json_t *policy_value_json(const void *value)
{
	const struct sluice_policy_value *v = value;
	json_t *o = json_object();

	json_object_set_new(o, "action", json_string(policy_action_name(v->action)));
	jset_u64(o, "service", v->service);
	jset_u64(o, "rule", v->rule);
	jset_u64(o, "flags", v->flags);
	return o;
}

static json_t *orig_dst_json(const void *value)
{
	const struct sluice_orig_dst *d = value;
	json_t *o = json_object();

	jset_str(o, "family", family_name(d->family));
	jset_addr(o, "addr", d->family, d->addr);
	jset_u64(o, "port", ntohs(d->port));
	jset_u64(o, "identity", d->identity);
	jset_u64(o, "service", d->service);
	jset_u64(o, "rule", d->rule);
	jset_u64(o, "generation", d->generation);
	jset_u64(o, "cookie", d->cookie);
	return o;
}

static json_t *tuple_key_json(const void *key)
{
	const struct sluice_tuple_key *k = key;
	json_t *o = json_object();

	jset_str(o, "family", family_name(k->family));
	jset_addr(o, "addr", k->family, k->addr);
	jset_u64(o, "port", ntohs(k->port));
	return o;
}

static json_t *flow_json(const void *value)
{
	const struct sluice_flow *f = value;
	json_t *o = json_object();

	json_object_set_new(o, "dst", orig_dst_json(&f->dst));
	jset_addr(o, "saddr", f->dst.family, f->saddr);
	jset_u64(o, "sport", ntohs(f->sport));
	jset_str(o, "state", flow_state_name(f->state));
	json_object_set_new(o, "verdict", json_string(policy_action_name(f->verdict)));
	jset_u64(o, "start_ns", f->start_ns);
	jset_u64(o, "established_ns", f->established_ns);
	jset_u64(o, "upstream_syn_ns", f->upstream_syn_ns);
	jset_u64(o, "connect_us", f->connect_us);
	jset_u64(o, "srtt_us", f->srtt_us);
	jset_u64(o, "bytes_sent", f->bytes_sent);
	jset_u64(o, "bytes_received", f->bytes_received);
	jset_u64(o, "last_ns", f->last_ns);
	return o;
}

static json_t *link_json(const void *value)
{
	const struct sluice_link *l = value;
	json_t *o = json_object();

	jset_u64(o, "app_cookie", l->app_cookie);
	jset_u64(o, "identity", l->identity);
	jset_u64(o, "service", l->service);
	return o;
}

static json_t *violation_key_json(const void *key)
{
	const struct sluice_violation_key *k = key;
	json_t *o = json_object();

	jset_u64(o, "identity", k->identity);
	jset_u64(o, "service", k->service);
	json_object_set_new(o, "reason", json_string(policy_reason_name(k->reason)));
	jset_u64(o, "port", ntohs(k->port));
	return o;
}

static json_t *syn_key_json(const void *key)
{
	const struct sluice_syn_key *k = key;
	json_t *o = json_object();

	jset_str(o, "family", family_name(k->family));
	jset_addr(o, "saddr", k->family, k->saddr);
	jset_u64(o, "sport", ntohs(k->sport));
	jset_addr(o, "daddr", k->family, k->daddr);
	jset_u64(o, "dport", ntohs(k->dport));
	return o;
}

static json_t *syn_seq_json(const void *value)
{
	json_t *o = json_object();

	jset_u64(o, "seq", ntohl(*(const __u32 *)value));
	return o;
}

static json_t *counter_json(const void *value)
{
	const struct sluice_counter *c = value;
	json_t *o = json_object();

	jset_u64(o, "count", c->count);
	jset_u64(o, "last_ns", c->last_ns);
	return o;
}

static json_t *violation_dst_json(const void *value)
{
	const struct sluice_violation_dst *d = value;
	json_t *o = json_object();

	jset_str(o, "family", family_name(d->family));
	jset_addr(o, "addr", d->family, d->addr);
	jset_u64(o, "port", ntohs(d->port));
	jset_u64(o, "last_ns", d->last_ns);
	return o;
}

static json_t *u64_json(const void *value)
{
	return json_u64(*(const __u64 *)value);
}

static json_t *svc_key_json(const void *key)
{
	const struct sluice_svc_key *k = key;
	json_t *o = json_object();

	jset_u64(o, "identity", k->identity);
	jset_u64(o, "service", k->service);
	return o;
}

static json_t *svc_stats_json(const void *value)
{
	const struct sluice_svc_stats *s = value;
	json_t *o = json_object(), *b = json_array();

	for (int i = 0; i < SLUICE_LAT_BUCKETS; i++)
		json_array_append_new(b, json_u64(s->lat_buckets[i]));
	jset_u64(o, "flows", s->flows);
	jset_u64(o, "closed", s->closed);
	jset_u64(o, "bytes_sent", s->bytes_sent);
	jset_u64(o, "bytes_received", s->bytes_received);
	jset_u64(o, "connect_us_sum", s->connect_us_sum);
	json_object_set_new(o, "lat_buckets", b);
	return o;
}

static json_t *svc_rtt_json(const void *value)
{
	const struct sluice_svc_rtt *r = value;
	json_t *o = json_object(), *b = json_array();

	for (int i = 0; i < SLUICE_LAT_BUCKETS; i++)
		json_array_append_new(b, json_u64(r->rtt_buckets[i]));
	jset_u64(o, "samples", r->samples);
	jset_u64(o, "rtt_us_sum", r->rtt_us_sum);
	json_object_set_new(o, "rtt_buckets", b);
	return o;
}

static json_t *name_key_json(const void *key)
{
	const struct sluice_name_key *k = key;
	json_t *o = json_object();

	jset_str(o, "kind", name_kind_name(k->kind));
	jset_u64(o, "id", k->id);
	return o;
}

static json_t *name_json(const void *value)
{
	const struct sluice_name *n = value;
	json_t *o = json_object(), *s;

	s = json_stringn(n->name, strnlen(n->name, sizeof(n->name)));
	json_object_set_new(o, "name", s ? s : json_null());
	jset_u64(o, "extra", n->extra);
	return o;
}

#define MAP_DEF(n, t, k, v, kj, vj)                                                                \
	{                                                                                          \
		.name = n, .type = t, .key_size = sizeof(k), .value_size = sizeof(v),              \
		.key_json = kj, .value_json = vj                                                   \
	}

const struct map_def map_defs[] = {
	MAP_DEF("sluice_cfg", BPF_MAP_TYPE_ARRAY, __u32, struct sluice_config, index_json,
		config_json),
	MAP_DEF("workloads", BPF_MAP_TYPE_HASH, __u64, struct sluice_workload, cgroup_key_json,
		workload_json),
	MAP_DEF("policy4", BPF_MAP_TYPE_LPM_TRIE, struct sluice_policy_key4,
		struct sluice_policy_value, policy_key4_json, policy_value_json),
	MAP_DEF("policy6", BPF_MAP_TYPE_LPM_TRIE, struct sluice_policy_key6,
		struct sluice_policy_value, policy_key6_json, policy_value_json),
	MAP_DEF("orig_dst", BPF_MAP_TYPE_LRU_HASH, __u64, struct sluice_orig_dst, cookie_key_json,
		orig_dst_json),
	MAP_DEF("redirects", BPF_MAP_TYPE_LRU_HASH, struct sluice_tuple_key, struct sluice_orig_dst,
		tuple_key_json, orig_dst_json),
	MAP_DEF("flows", BPF_MAP_TYPE_LRU_HASH, __u64, struct sluice_flow, cookie_key_json,
		flow_json),
	MAP_DEF("flow_links", BPF_MAP_TYPE_LRU_HASH, __u64, struct sluice_link, cookie_key_json,
		link_json),
	MAP_DEF("violations", BPF_MAP_TYPE_PERCPU_HASH, struct sluice_violation_key,
		struct sluice_counter, violation_key_json, counter_json),
	MAP_DEF("refused_syns", BPF_MAP_TYPE_LRU_HASH, struct sluice_syn_key, __u32, syn_key_json,
		syn_seq_json),
	MAP_DEF("svc_stats", BPF_MAP_TYPE_HASH, struct sluice_svc_key, struct sluice_svc_stats,
		svc_key_json, svc_stats_json),
	MAP_DEF("names", BPF_MAP_TYPE_HASH, struct sluice_name_key, struct sluice_name,
		name_key_json, name_json),
	MAP_DEF("violation_dst", BPF_MAP_TYPE_HASH, struct sluice_violation_key,
		struct sluice_violation_dst, violation_key_json, violation_dst_json),
	MAP_DEF("dp_counters", BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, index_json, u64_json),
	MAP_DEF("svc_rtt", BPF_MAP_TYPE_HASH, struct sluice_svc_key, struct sluice_svc_rtt,
		svc_key_json, svc_rtt_json),
};

const struct map_def *map_def_find(const char *name)
{
	for (int i = 0; i < NR_MAP_DEFS; i++)
		if (!strcmp(map_defs[i].name, name))
			return &map_defs[i];
	return NULL;
}

void map_names(char *buf, size_t len)
{
	size_t off = strlen(buf);

	for (int i = 0; i < NR_MAP_DEFS && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%s", i ? ", " : "", map_defs[i].name);
}

static bool is_percpu(enum bpf_map_type type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

/* A failed syscall on a map we already opened: name it by its pin. */
static int map_err(const struct map_def *def, int err)
{
	return errmsg_set(&ctl_err, err, "%s/%s: %s", pin_path, def->name, strerror(-err));
}

static int map_info(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, len);
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

int map_open(const struct map_def *def, int *fd)
{
	struct bpf_map_info info;
	char path[PATH_MAX];
	const char *hint;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", pin_path, def->name);
	*fd = bpf_obj_get(path);
	if (*fd < 0) {
		ret = -errno;
		if (ret == -ENOENT)
			hint = " (is sluiced running, or did it run with this pin path? "
			       "-P sets it)";
		else if (ret == -EACCES || ret == -EPERM)
			hint = " (reading BPF maps needs root)";
		else
			hint = "";
		return errmsg_set(&ctl_err, ret, "cannot open %s: %s%s", path, strerror(-ret),
				  hint);
	}
	ret = map_info(*fd, &info);
	if (ret) {
		close(*fd);
		return map_err(def, ret);
	}
	if (info.type != def->type || info.key_size != def->key_size ||
	    info.value_size != def->value_size) {
		close(*fd);
		return errmsg_set(&ctl_err, -EPROTO,
				  "%s is a %s map with %u-byte keys and %u-byte values; this "
				  "sluicectl (ABI %d) expects %s, %u and %u: sluicectl and sluiced "
				  "come from different builds",
				  path, libbpf_bpf_map_type_str(info.type), info.key_size,
				  info.value_size, SLUICE_ABI_VERSION,
				  libbpf_bpf_map_type_str(def->type), def->key_size,
				  def->value_size);
	}
	return 0;
}

int map_open_name(const char *name, int *fd)
{
	return map_open(map_def_find(name), fd);
}

int sluice_cfg_read(struct sluice_config *cfg)
{
	__u32 zero = 0;
	int fd, ret;

	ret = map_open_name("sluice_cfg", &fd);
	if (ret)
		return ret;
	if (bpf_map_lookup_elem(fd, &zero, cfg))
		ret = map_err(map_def_find("sluice_cfg"), -errno);
	close(fd);
	return ret;
}

int map_count(int fd, const struct map_def *def, __u32 *count, __u32 *max_entries)
{
	unsigned char key[def->key_size], next[def->key_size];
	struct bpf_map_info info;
	void *prev = NULL;
	int ret;

	ret = map_info(fd, &info);
	if (ret)
		return map_err(def, ret);
	*max_entries = info.max_entries;
	*count = 0;
	/* Bounded like snap_walk: a busy map may restart the walk. */
	while (*count < info.max_entries && !bpf_map_get_next_key(fd, prev, next)) {
		memcpy(key, next, sizeof(key));
		prev = key;
		(*count)++;
	}
	if (*count < info.max_entries && errno != ENOENT)
		return map_err(def, -errno);
	return 0;
}

static int key_cmp(const void *a, const void *b, void *size)
{
	return memcmp(a, b, *(const __u32 *)size);
}

static int snap_grow(struct map_snap *s, size_t *cap)
{
	size_t n = *cap ? *cap * 2 : 256;
	unsigned char *recs = realloc(s->recs, n * s->rec_size);

	if (!recs)
		return errmsg_set(&ctl_err, -ENOMEM, "%s: out of memory", s->def->name);
	s->recs = recs;
	*cap = n;
	return 0;
}

static int snap_walk(int fd, struct map_snap *s, __u32 max_entries)
{
	__u32 ksize = s->def->key_size;
	unsigned char pos[ksize], *rec;
	size_t cap = 0;
	bool started = false;
	int ret;

	/* A walk that restarts on deleted keys must still end. */
	for (__u64 steps = 0; s->nr < max_entries && steps < 2ULL * max_entries; steps++) {
		if (s->nr == cap) {
			ret = snap_grow(s, &cap);
			if (ret)
				return ret;
		}
		rec = s->recs + s->nr * s->rec_size;
		memset(rec, 0, s->rec_size);
		if (bpf_map_get_next_key(fd, started ? pos : NULL, rec)) {
			if (errno == ENOENT)
				break;
			return map_err(s->def, -errno);
		}
		memcpy(pos, rec, ksize);
		started = true;
		if (bpf_map_lookup_elem(fd, rec, rec + s->val_off)) {
			/* Deleted since the walk found it (closed flow, LRU). */
			if (errno == ENOENT)
				continue;
			return map_err(s->def, -errno);
		}
		s->nr++;
	}
	return 0;
}

int map_snapshot(const char *name, struct map_snap *s)
{
	const struct map_def *def = map_def_find(name);
	struct bpf_map_info info;
	__u32 ksize = def->key_size;
	size_t out = 0;
	int fd, ret;

	memset(s, 0, sizeof(*s));
	s->def = def;
	ret = map_open(def, &fd);
	if (ret)
		return ret;
	ret = map_info(fd, &info);
	if (ret) {
		map_err(def, ret);
		goto out;
	}
	s->nr_cpus = 1;
	s->percpu = is_percpu(def->type);
	if (s->percpu) {
		s->nr_cpus = libbpf_num_possible_cpus();
		if (s->nr_cpus < 0) {
			ret = errmsg_set(&ctl_err, s->nr_cpus, "cannot count possible CPUs: %s",
					 strerror(-s->nr_cpus));
			goto out;
		}
	}
	/* Per-CPU values come 8-byte aligned, one per possible CPU. */
	s->val_stride = (def->value_size + 7) & ~7U;
	s->val_off = (ksize + 7) & ~7U;
	s->rec_size = s->val_off + s->val_stride * s->nr_cpus;

	ret = snap_walk(fd, s, info.max_entries);
	if (ret)
		goto out;
	qsort_r(s->recs, s->nr, s->rec_size, key_cmp, &ksize);
	for (size_t i = 0; i < s->nr; i++) {
		if (out && !memcmp(s->recs + (out - 1) * s->rec_size, s->recs + i * s->rec_size,
				   ksize))
			continue;
		if (out != i)
			memcpy(s->recs + out * s->rec_size, s->recs + i * s->rec_size, s->rec_size);
		out++;
	}
	s->nr = out;
out:
	close(fd);
	if (ret)
		map_snap_free(s);
	return ret;
}

void map_snap_free(struct map_snap *s)
{
	free(s->recs);
	s->recs = NULL;
	s->nr = 0;
}

int map_rows(const char *name, size_t row_size, row_fill_fn fill, void *ctx,
	     int (*cmp)(const void *, const void *), void **rows, size_t *nr)
{
	struct map_snap snap;
	unsigned char *out;
	int ret;

	ret = map_snapshot(name, &snap);
	if (!ret)
		ret = ctl_names_open();
	if (ret) {
		map_snap_free(&snap);
		return ret;
	}
	out = realloc(*rows, (*nr + snap.nr + 1) * row_size);
	if (!out) {
		map_snap_free(&snap);
		return errmsg_set(&ctl_err, -ENOMEM, "%s: out of memory", name);
	}
	*rows = out;
	for (size_t i = 0; i < snap.nr; i++) {
		void *row = out + *nr * row_size;

		memset(row, 0, row_size);
		if (fill(&snap, i, row, ctx))
			(*nr)++;
	}
	map_snap_free(&snap);
	qsort(*rows, *nr, row_size, cmp);
	return 0;
}
