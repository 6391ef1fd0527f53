// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/abi.h>

#include "config.h"
#include "config_int.h"
#include "log.h"
#include "spiffe.h"
#include "yamlx.h"

#define DEFAULT_RUN_DIR "/run/sluice"
#define DEFAULT_HEARTBEAT_MS 3000
/* A transparent proxy must not cut a healthy idle connection (a pooled
 * database connection) that the application never asked it to: keepalive
 * finds the dead ones instead. */
#define DEFAULT_IDLE_MS 0
#define DEFAULT_KEEPALIVE_IDLE_S 60
#define DEFAULT_KEEPALIVE_INTERVAL_S 10
#define DEFAULT_KEEPALIVE_COUNT 6
/* The kernel's bounds (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT). */
#define KEEPALIVE_MAX_S 32767
#define KEEPALIVE_MAX_COUNT 127
/* The agent refreshes its heartbeat every second: a timeout that short
 * would declare a healthy agent dead between two beats. */
#define HEARTBEAT_INTERVAL_MS 1000
/* Handshakes in flight each way: a share of the fd limit, within bounds. */
#define HANDSHAKES_FD_SHARE 8
#define HANDSHAKES_MIN 16
#define HANDSHAKES_DEFAULT_MAX 1024
#define HANDSHAKES_PER_ADDRESS_SHARE 4
#define HANDSHAKES_LIMIT 65536
/* A TLS 1.3 handshake and two frames: milliseconds between agents, and
 * long enough for a peer under load; a peer that says nothing holds a
 * descriptor and a TLS object no longer than this. */
#define HANDSHAKE_TIMEOUT_DEFAULT_MS 10000
#define HANDSHAKE_TIMEOUT_MIN_MS 100
#define HANDSHAKE_TIMEOUT_MAX_MS 300000

int parse_duration_ms(const char *s, unsigned int *out)
{
	static const struct {
		const char *suffix;
		unsigned long long ms;
	} units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60 * 1000 }, { "h", 3600 * 1000 }, { "", 1000 },
	};
	unsigned long long v = 0;
	const char *p;

	for (p = s; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > UINT_MAX)
			return -ERANGE;
	}
	if (p == s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].suffix))
			continue;
		v *= units[i].ms;
		if (v > UINT_MAX)
			return -ERANGE;
		*out = v;
		return 0;
	}
	return -EINVAL;
}

/* Segments are non-empty and never "." or "..", so a path cannot leave the
 * subtree it is relative to. */
static bool cgroup_path_valid(const char *s, bool abs_ok)
{
	const char *seg = s, *end;
	size_t len;

	if (*seg == '/') {
		if (!abs_ok)
			return false;
		seg++;
	}
	for (;;) {
		end = strchrnul(seg, '/');
		len = end - seg;
		if (!len || len > NAME_MAX || (len == 1 && seg[0] == '.') ||
		    (len == 2 && !strncmp(seg, "..", 2)))
			return false;
		if (!*end)
			return true;
		seg = end + 1;
	}
}

int parse_cgroup_path(const struct yamlx *y, const struct yamlx_val *v, bool abs_ok,
		      char **out, struct errmsg *err)
{
	int ret;

	ret = yamlx_strdup(y, v, out, err);
	if (ret)
		return ret;
	if (!cgroup_path_valid(*out, abs_ok))
		return yamlx_error(y, v->node, err,
				   "bad cgroup path \"%s\" for %s: expected a %s%s", *out,
				   v->what, abs_ok ? "" : "relative ",
				   "path without empty, \".\" or \"..\" segments");
	return 0;
}

int parse_abs_path(const struct yamlx *y, const struct yamlx_val *v, char **out,
		   struct errmsg *err)
{
	int ret;

	ret = yamlx_strdup(y, v, out, err);
	if (ret)
		return ret;
	if ((*out)[0] != '/')
		return yamlx_error(y, v->node, err, "bad path \"%s\" for %s: must be absolute",
				   *out, v->what);
	return 0;
}

int parse_duration(const struct yamlx *y, const struct yamlx_val *v, unsigned int *out,
		   struct errmsg *err)
{
	const char *s;
	int ret;

	ret = yamlx_str(y, v, &s, err);
	if (ret)
		return ret;
	ret = parse_duration_ms(s, out);
	if (ret == -ERANGE)
		return yamlx_error(y, v->node, err, "duration \"%s\" for %s is too long", s,
				   v->what);
	if (ret)
		return yamlx_error(y, v->node, err, "bad duration \"%s\" for %s: %s", s, v->what,
				   "expected a number with ms, s, m or h");
	return 0;
}

/* Whole seconds from 1 to max, for kernel knobs counted in seconds. */
static int parse_seconds(const struct yamlx *y, const struct yamlx_val *v, const char *name,
			 unsigned int max, unsigned int *out, struct errmsg *err)
{
	unsigned int ms;
	int ret;

	ret = parse_duration(y, v, &ms, err);
	if (ret)
		return ret;
	if (ms < 1000 || ms > max * 1000 || ms % 1000)
		return yamlx_error(y, v->node, err, "%s must be whole seconds from 1s to %us", name,
				   max);
	*out = ms / 1000;
	return 0;
}

static int parse_idle_timeout(const struct yamlx *y, const struct yamlx_val *v,
			      struct config *cfg, struct errmsg *err)
{
	const char *s;
	int ret;

	cfg->idle_timeout_ms = DEFAULT_IDLE_MS;
	if (!v->node)
		return 0;
	ret = yamlx_str(y, v, &s, err);
	if (ret || !strcmp(s, "off"))
		return ret;
	return parse_duration(y, v, &cfg->idle_timeout_ms, err);
}

static int parse_keepalive(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
			   struct errmsg *err)
{
	enum { K_IDLE, K_INTERVAL, K_COUNT, NR_K };
	struct yamlx_field f[NR_K] = {
		[K_IDLE] = { .key = "idle" },
		[K_INTERVAL] = { .key = "interval" },
		[K_COUNT] = { .key = "count" },
	};
	struct keepalive_cfg *ka = &cfg->keepalive;
	int ret = 0;

	*ka = (struct keepalive_cfg){ .idle_s = DEFAULT_KEEPALIVE_IDLE_S,
				      .interval_s = DEFAULT_KEEPALIVE_INTERVAL_S,
				      .count = DEFAULT_KEEPALIVE_COUNT };
	if (!v->node)
		return 0;
	if (v->node->type == YAML_SCALAR_NODE &&
	    !strcmp((const char *)v->node->data.scalar.value, "off")) {
		ka->idle_s = 0;
		return 0;
	}
	ret = yamlx_fields(y, v, f, NR_K, err);
	if (!ret && f[K_IDLE].v.node)
		ret = parse_seconds(y, &f[K_IDLE].v, "keepalive.idle", KEEPALIVE_MAX_S, &ka->idle_s,
				    err);
	if (!ret && f[K_INTERVAL].v.node)
		ret = parse_seconds(y, &f[K_INTERVAL].v, "keepalive.interval", KEEPALIVE_MAX_S,
				    &ka->interval_s, err);
	if (!ret && f[K_COUNT].v.node)
		ret = yamlx_uint(y, &f[K_COUNT].v, 1, KEEPALIVE_MAX_COUNT, &ka->count, err);
	return ret;
}

static int parse_tunnel(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
			struct errmsg *err)
{
	enum { T_MAX, T_PER_ADDRESS, T_TIMEOUT, NR_T };
	struct yamlx_field f[NR_T] = {
		[T_MAX] = { .key = "max_handshakes" },
		[T_PER_ADDRESS] = { .key = "max_handshakes_per_address" },
		[T_TIMEOUT] = { .key = "handshake_timeout" },
	};
	struct handshake_caps *hc = &cfg->handshakes;
	int ret;

	ret = yamlx_fields(y, v, f, NR_T, err);
	if (!ret && f[T_MAX].v.node)
		ret = yamlx_uint(y, &f[T_MAX].v, 1, HANDSHAKES_LIMIT, &hc->max, err);
	if (!ret && f[T_PER_ADDRESS].v.node)
		ret = yamlx_uint(y, &f[T_PER_ADDRESS].v, 1, HANDSHAKES_LIMIT, &hc->per_address,
				 err);
	if (!ret && hc->max && hc->per_address > hc->max)
		ret = yamlx_error(y, f[T_PER_ADDRESS].v.node, err,
				  "max_handshakes_per_address %u is more than max_handshakes %u",
				  hc->per_address, hc->max);
	if (!ret && f[T_TIMEOUT].v.node)
		ret = parse_duration(y, &f[T_TIMEOUT].v, &hc->timeout_ms, err);
	if (!ret && f[T_TIMEOUT].v.node &&
	    (hc->timeout_ms < HANDSHAKE_TIMEOUT_MIN_MS || hc->timeout_ms > HANDSHAKE_TIMEOUT_MAX_MS))
		ret = yamlx_error(y, f[T_TIMEOUT].v.node, err,
				  "handshake_timeout must be from %ums to %us",
				  HANDSHAKE_TIMEOUT_MIN_MS, HANDSHAKE_TIMEOUT_MAX_MS / 1000);
	return ret;
}

void config_handshake_defaults(struct handshake_caps *hc, unsigned long nofile)
{
	unsigned long n = nofile / HANDSHAKES_FD_SHARE;

	if (!hc->max) {
		hc->max = HANDSHAKES_DEFAULT_MAX;
		if (n < HANDSHAKES_DEFAULT_MAX)
			hc->max = n > HANDSHAKES_MIN ? n : HANDSHAKES_MIN;
	}
	if (!hc->per_address)
		hc->per_address = hc->max / HANDSHAKES_PER_ADDRESS_SHARE;
	if (!hc->per_address)
		hc->per_address = 1;
	if (hc->per_address > hc->max)
		hc->per_address = hc->max;
	if (!hc->timeout_ms)
		hc->timeout_ms = HANDSHAKE_TIMEOUT_DEFAULT_MS;
}

static int parse_config(struct yamlx *y, struct config *cfg, struct errmsg *err)
{
	enum {
		C_NODE,
		C_TRUST_DOMAIN,
		C_CGROUP_ROOT,
		C_AGENT_CGROUP,
		C_LISTEN,
		C_PIN_PATH,
		C_RUN_DIR,
		C_POLICY,
		C_FAILURE_MODE,
		C_HEARTBEAT,
		C_IDLE,
		C_KEEPALIVE,
		C_LOG_LEVEL,
		C_IDENTITY,
		C_AUDIT_LOG,
		C_AUDIT,
		C_HTTP,
		C_OTLP,
		C_TUNNEL,
		C_EDGE,
		C_CONTROL,
		C_PEERS,
		C_WORKLOADS,
		NR_C
	};
	struct yamlx_field f[NR_C] = {
		[C_NODE] = { .key = "node", .required = true },
		[C_TRUST_DOMAIN] = { .key = "trust_domain", .required = true },
		[C_CGROUP_ROOT] = { .key = "cgroup_root", .required = true },
		[C_AGENT_CGROUP] = { .key = "agent_cgroup" },
		[C_LISTEN] = { .key = "listen" },
		[C_PIN_PATH] = { .key = "bpf_pin_path" },
		[C_RUN_DIR] = { .key = "run_dir" },
		[C_POLICY] = { .key = "policy", .required = true },
		[C_FAILURE_MODE] = { .key = "failure_mode" },
		[C_HEARTBEAT] = { .key = "heartbeat_timeout" },
		[C_IDLE] = { .key = "idle_timeout" },
		[C_KEEPALIVE] = { .key = "keepalive" },
		[C_LOG_LEVEL] = { .key = "log_level" },
		[C_IDENTITY] = { .key = "identity" },
		[C_AUDIT_LOG] = { .key = "audit_log" },
		[C_AUDIT] = { .key = "audit" },
		[C_HTTP] = { .key = "http" },
		[C_OTLP] = { .key = "otlp" },
		[C_TUNNEL] = { .key = "tunnel" },
		[C_EDGE] = { .key = "edge" },
		[C_CONTROL] = { .key = "control" },
		[C_PEERS] = { .key = "peers" },
		[C_WORKLOADS] = { .key = "workloads" },
	};
	enum log_level level = LOG_INFO;
	struct yamlx_val root;
	const char *s;
	int ret;

	yamlx_root(y, &root);
	ret = yamlx_fields(y, &root, f, NR_C, err);
	if (ret)
		return ret;

	ret = parse_node_name(y, &f[C_NODE].v, &cfg->node, err);
	if (ret)
		return ret;

	ret = yamlx_strdup(y, &f[C_TRUST_DOMAIN].v, &cfg->trust_domain, err);
	if (ret)
		return ret;
	if (!trust_domain_valid(cfg->trust_domain, strlen(cfg->trust_domain)))
		return yamlx_error(y, f[C_TRUST_DOMAIN].v.node, err,
				   "bad trust domain \"%s\": expected a lowercase DNS name such as "
				   "acme.example",
				   cfg->trust_domain);

	ret = parse_cgroup_path(y, &f[C_CGROUP_ROOT].v, true, &cfg->cgroup_root, err);
	if (ret)
		return ret;
	if (f[C_AGENT_CGROUP].v.node) {
		ret = parse_cgroup_path(y, &f[C_AGENT_CGROUP].v, false, &cfg->agent_cgroup, err);
		if (ret)
			return ret;
	}

	if (f[C_PIN_PATH].v.node)
		ret = parse_abs_path(y, &f[C_PIN_PATH].v, &cfg->pin_path, err);
	else if (!(cfg->pin_path = strdup(SLUICE_PIN_PATH)))
		ret = yamlx_nomem(y, err);
	if (ret)
		return ret;
	if (f[C_RUN_DIR].v.node)
		ret = parse_abs_path(y, &f[C_RUN_DIR].v, &cfg->run_dir, err);
	else if (!(cfg->run_dir = strdup(DEFAULT_RUN_DIR)))
		ret = yamlx_nomem(y, err);
	if (ret)
		return ret;

	ret = resolve_path(y, &f[C_POLICY].v, cfg, &cfg->policy_path, err);
	if (!ret)
		ret = parse_control(y, &f[C_CONTROL].v, cfg, err);
	if (ret)
		return ret;

	if (f[C_FAILURE_MODE].v.node) {
		ret = yamlx_str(y, &f[C_FAILURE_MODE].v, &s, err);
		if (ret)
			return ret;
		if (strcmp(s, "closed") && strcmp(s, "open"))
			return yamlx_error(y, f[C_FAILURE_MODE].v.node, err,
					   "unknown failure_mode \"%s\" (expected closed or open)",
					   s);
		cfg->fail_open = !strcmp(s, "open");
	}

	cfg->heartbeat_timeout_ms = DEFAULT_HEARTBEAT_MS;
	if (f[C_HEARTBEAT].v.node) {
		ret = parse_duration(y, &f[C_HEARTBEAT].v, &cfg->heartbeat_timeout_ms, err);
		if (ret)
			return ret;
		if (cfg->heartbeat_timeout_ms <= HEARTBEAT_INTERVAL_MS)
			return yamlx_error(y, f[C_HEARTBEAT].v.node, err,
					   "heartbeat_timeout must be longer than the agent's "
					   "heartbeat interval (%dms)",
					   HEARTBEAT_INTERVAL_MS);
	}
	ret = parse_idle_timeout(y, &f[C_IDLE].v, cfg, err);
	if (!ret)
		ret = parse_keepalive(y, &f[C_KEEPALIVE].v, cfg, err);
	if (ret)
		return ret;

	if (f[C_LOG_LEVEL].v.node) {
		ret = yamlx_str(y, &f[C_LOG_LEVEL].v, &s, err);
		if (ret)
			return ret;
		if (log_level_parse(s, &level))
			return yamlx_error(y, f[C_LOG_LEVEL].v.node, err,
					   "unknown log_level \"%s\" (expected %s)", s,
					   "error, warn, info or debug");
	}
	cfg->log_level = level;

	if (f[C_IDENTITY].v.node) {
		ret = parse_identity(y, &f[C_IDENTITY].v, cfg, err);
		if (ret)
			return ret;
	}
	/* After identity:, which decides whether listen.http has anything
	 * to serve. */
	ret = parse_listen(y, &f[C_LISTEN].v, cfg, err);
	if (ret)
		return ret;
	if (f[C_AUDIT_LOG].v.node)
		ret = parse_abs_path(y, &f[C_AUDIT_LOG].v, &cfg->audit_log, err);
	else if (asprintf(&cfg->audit_log, "%s/audit.jsonl", cfg->run_dir) < 0 &&
		 !(cfg->audit_log = NULL))
		ret = yamlx_nomem(y, err);
	if (ret)
		return ret;
	if (f[C_AUDIT].v.node) {
		ret = parse_audit(y, &f[C_AUDIT].v, cfg, err);
		if (ret)
			return ret;
	}
	config_http_defaults(&cfg->http_svc);
	if (f[C_HTTP].v.node) {
		ret = parse_http(y, &f[C_HTTP].v, cfg, err);
		if (ret)
			return ret;
	}
	if (f[C_OTLP].v.node) {
		ret = parse_otlp(y, &f[C_OTLP].v, cfg, err);
		if (ret)
			return ret;
	}
	if (f[C_TUNNEL].v.node) {
		ret = parse_tunnel(y, &f[C_TUNNEL].v, cfg, err);
		if (ret)
			return ret;
	}
	if (f[C_EDGE].v.node) {
		ret = parse_edge(y, &f[C_EDGE].v, cfg, err);
		if (ret)
			return ret;
	}
	if (f[C_PEERS].v.node) {
		ret = yamlx_array(y, &f[C_PEERS].v, CONFIG_MAX_PEERS, sizeof(*cfg->peers),
				  (void **)&cfg->peers, &cfg->nr_peers, parse_peer, cfg, err);
		if (ret)
			return ret;
	}

	if (f[C_WORKLOADS].v.node)
		return yamlx_array(y, &f[C_WORKLOADS].v, SLUICE_MAX_WORKLOADS,
				   sizeof(*cfg->workloads), (void **)&cfg->workloads,
				   &cfg->nr_workloads, parse_workload, cfg, err);
	return 0;
}

int config_load(const char *path, struct config *cfg, struct errmsg *err)
{
	struct yamlx y;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	ret = yamlx_load(&y, path, err);
	if (ret)
		return ret;
	cfg->path = strdup(path);
	ret = cfg->path ? parse_config(&y, cfg, err) : yamlx_nomem(&y, err);
	yamlx_free(&y);
	if (ret)
		config_free(cfg);
	return ret;
}

void config_free(struct config *cfg)
{
	/* Indexed: with no workloads the array is NULL, and NULL + 0 is
	 * undefined behaviour. */
	for (int j = 0; j < cfg->nr_workloads; j++) {
		struct workload_cfg *w = &cfg->workloads[j];

		free(w->cgroup);
		free(w->id);
		for (int i = 0; i < w->nr_roles; i++)
			free(w->roles[i]);
		free(w->oidc_client_id);
		free(w->oidc_secret_file);
		free(w->oidc_key_file);
	}
	free(cfg->workloads);
	for (int i = 0; i < cfg->nr_peers; i++) {
		free(cfg->peers[i].node);
		free(cfg->peers[i].cidrs);
		for (int j = 0; j < cfg->peers[i].nr_workloads; j++)
			free(cfg->peers[i].workloads[j]);
		free(cfg->peers[i].workloads);
	}
	free(cfg->peers);
	http_cfg_free(&cfg->http_svc);
	free(cfg->identity.ca);
	free(cfg->identity.cert);
	free(cfg->identity.key);
	free(cfg->identity.oidc_issuer);
	free(cfg->identity.oidc_audience);
	free(cfg->identity.oidc_ca_file);
	free(cfg->edge.socket);
	free(cfg->edge.audience);
	free(cfg->edge.introspection_client_id);
	free(cfg->edge.introspection_secret_file);
	free(cfg->edge.render_dir);
	free(cfg->edge.nginx);
	free(cfg->edge.nginx_conf);
	free(cfg->edge.nginx_pid);
	free(cfg->audit_log);
	otlp_cfg_free(&cfg->otlp);
	control_cfg_free(&cfg->control);
	free(cfg->path);
	free(cfg->node);
	free(cfg->trust_domain);
	free(cfg->cgroup_root);
	free(cfg->agent_cgroup);
	free(cfg->pin_path);
	free(cfg->run_dir);
	free(cfg->policy_path);
	memset(cfg, 0, sizeof(*cfg));
}

const struct peer_cfg *config_peer_for(const struct config *cfg, int family,
				       const uint32_t *addr)
{
	const struct peer_cfg *best = NULL;
	int best_len = -1;

	for (int i = 0; i < cfg->nr_peers; i++) {
		for (int j = 0; j < cfg->peers[i].nr_cidrs; j++) {
			const struct cidr *c = &cfg->peers[i].cidrs[j];

			if (c->prefixlen > best_len && cidr_contains(c, family, addr)) {
				best = &cfg->peers[i];
				best_len = c->prefixlen;
			}
		}
	}
	return best;
}

const struct workload_cfg *config_workload_by_id(const struct config *cfg, const char *id)
{
	for (int i = 0; i < cfg->nr_workloads; i++) {
		if (!strcmp(cfg->workloads[i].id, id))
			return &cfg->workloads[i];
	}
	return NULL;
}

const struct peer_cfg *config_peer_by_node(const struct config *cfg, const char *node)
{
	for (int i = 0; i < cfg->nr_peers; i++) {
		if (!strcmp(cfg->peers[i].node, node))
			return &cfg->peers[i];
	}
	return NULL;
}

static bool pattern_match(const char *pattern, const char *id)
{
	size_t n = strlen(pattern);

	if (!n || pattern[n - 1] != '*')
		return !strcmp(pattern, id);
	/* The '*' stands for the rest of a name: something, and no '/'. */
	return !strncmp(pattern, id, n - 1) && id[n - 1] && !strchr(id + n - 1, '/');
}

static bool patterns_match(char *const *patterns, int nr, const char *id)
{
	for (int i = 0; i < nr; i++) {
		if (pattern_match(patterns[i], id))
			return true;
	}
	return false;
}

bool config_peer_vouches(const struct peer_cfg *peer, const char *id)
{
	return patterns_match(peer->workloads, peer->nr_workloads, id);
}

bool config_edge_workload(const struct config *cfg, const char *id)
{
	return patterns_match(cfg->http_svc.edge_workloads, cfg->http_svc.nr_edge_workloads, id);
}
