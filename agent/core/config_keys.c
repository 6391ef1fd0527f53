// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The config's per-section key readers: listen, workloads, peers and
 * identity. config.c reads the top-level keys and calls these; they live
 * apart so that each file stays readable on its own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/abi.h>

#include "config.h"
#include "config_int.h"
#include "spiffe.h"
#include "yamlx.h"

#define DEFAULT_OUTBOUND_PORT 15001
#define DEFAULT_TUNNEL_PORT 15008
#define DEFAULT_HTTP_PORT 15020
#define DEFAULT_TOKEN_LIFETIME_S 300
#define DEFAULT_CLOCK_SKEW_S 30

static int parse_listen_addr(const struct yamlx *y, const struct yamlx_val *v, const char *name,
			     int family, struct sockaddr_storage *ss, struct errmsg *err)
{
	const char *want = family == AF_INET ? "an IPv4 address (IPv6 goes in listen.outbound6)"
					     : "an IPv6 address in brackets";
	const char *s;
	int ret;

	ret = yamlx_str(y, v, &s, err);
	if (ret)
		return ret;
	if (parse_sockaddr(s, ss))
		return yamlx_error(y, v->node, err,
				   "bad address \"%s\" for %s: expected IP:PORT or [IPv6]:PORT", s,
				   name);
	if (ss->ss_family != family)
		return yamlx_error(y, v->node, err, "bad address \"%s\" for %s: expected %s", s,
				   name, want);
	/* Both families share sluice_config.outbound_port. */
	if (!((struct sockaddr_in *)ss)->sin_port)
		return yamlx_error(y, v->node, err,
				   "bad address \"%s\" for %s: port must be 1-65535", s, name);
	return 0;
}

static bool sockaddr_is_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
	       (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && s6->sin6_addr.s6_addr[12] == 127);
}

static void default6(struct config *cfg)
{
	cfg->outbound6.sin6_family = AF_INET6;
	cfg->outbound6.sin6_addr = in6addr_loopback;
	cfg->outbound6.sin6_port = cfg->outbound4.sin_port;
}

/* listen.http and listen.http_routable (NULL: absent). On by default on
 * every agent: /metrics is there; the CA and JWKS only with identity. */
static int parse_listen_http(const struct yamlx *y, const struct yamlx_field *http,
			     const struct yamlx_field *routable, struct config *cfg,
			     struct errmsg *err)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&cfg->http;
	const char *s;
	int ret;

	if (routable && routable->v.node) {
		ret = yamlx_bool(y, &routable->v, &cfg->http_routable, err);
		if (ret)
			return ret;
	}
	if (!http || !http->v.node) {
		cfg->has_http = true;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(DEFAULT_HTTP_PORT);
		return 0;
	}
	ret = yamlx_str(y, &http->v, &s, err);
	if (ret)
		return ret;
	if (!strcmp(s, "off"))
		return 0;
	if (parse_sockaddr(s, &cfg->http) || !sin->sin_port)
		return yamlx_error(y, http->v.node, err,
				   "bad address \"%s\" for listen.http: expected IP:PORT, "
				   "[IPv6]:PORT (port 1-65535) or off",
				   s);
	/* /metrics is here: what a workload's traffic looks like is for this
	 * host's scrapers unless the operator says so. */
	if (!sockaddr_is_loopback(&cfg->http) && !cfg->http_routable)
		return yamlx_error(y, http->v.node, err,
				   "listen.http \"%s\" is not a loopback address: use 127.0.0.1 "
				   "or [::1], or set listen.http_routable: true",
				   s);
	cfg->has_http = true;
	return 0;
}

int parse_listen(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
		 struct errmsg *err)
{
	enum { L_OUTBOUND, L_OUTBOUND6, L_TUNNEL, L_HTTP, L_HTTP_ROUTABLE, NR_L };
	struct yamlx_field f[NR_L] = {
		[L_OUTBOUND] = { .key = "outbound" },
		[L_OUTBOUND6] = { .key = "outbound6" },
		[L_TUNNEL] = { .key = "tunnel" },
		[L_HTTP] = { .key = "http" },
		[L_HTTP_ROUTABLE] = { .key = "http_routable" },
	};
	struct sockaddr_in *tun = (struct sockaddr_in *)&cfg->tunnel;
	const char *s;
	struct sockaddr_storage ss;
	int ret;

	cfg->outbound4.sin_family = AF_INET;
	cfg->outbound4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cfg->outbound4.sin_port = htons(DEFAULT_OUTBOUND_PORT);
	tun->sin_family = AF_INET;
	tun->sin_port = htons(DEFAULT_TUNNEL_PORT);
	if (!v->node) {
		default6(cfg);
		return parse_listen_http(y, NULL, NULL, cfg, err);
	}
	ret = yamlx_fields(y, v, f, NR_L, err);
	if (!ret)
		ret = parse_listen_http(y, &f[L_HTTP], &f[L_HTTP_ROUTABLE], cfg, err);
	if (ret)
		return ret;
	if (f[L_TUNNEL].v.node) {
		ret = yamlx_str(y, &f[L_TUNNEL].v, &s, err);
		if (ret)
			return ret;
		if (parse_sockaddr(s, &cfg->tunnel) || !tun->sin_port)
			return yamlx_error(y, f[L_TUNNEL].v.node, err,
					   "bad address \"%s\" for listen.tunnel: expected IP:PORT "
					   "or [IPv6]:PORT (port 1-65535)",
					   s);
	}
	if (f[L_OUTBOUND].v.node) {
		ret = parse_listen_addr(y, &f[L_OUTBOUND].v, "listen.outbound", AF_INET, &ss, err);
		if (ret)
			return ret;
		memcpy(&cfg->outbound4, &ss, sizeof(cfg->outbound4));
	}
	if (f[L_OUTBOUND6].v.node) {
		ret = parse_listen_addr(y, &f[L_OUTBOUND6].v, "listen.outbound6", AF_INET6, &ss,
					err);
		if (ret)
			return ret;
		memcpy(&cfg->outbound6, &ss, sizeof(cfg->outbound6));
		if (cfg->outbound6.sin6_port != cfg->outbound4.sin_port)
			return yamlx_error(y, f[L_OUTBOUND6].v.node, err,
					   "listen.outbound6 port %u must equal listen.outbound "
					   "port %u",
					   ntohs(cfg->outbound6.sin6_port),
					   ntohs(cfg->outbound4.sin_port));
		return 0;
	}
	default6(cfg);
	return 0;
}

int parse_node_name(const struct yamlx *y, const struct yamlx_val *v, char **out,
		    struct errmsg *err)
{
	int ret;

	ret = yamlx_name(y, v, "node", NODE_NAME_CHARS, out, err);
	if (ret || node_name_valid(*out))
		return ret;
	return yamlx_error(y, v->node, err, "bad node name \"%s\": " NODE_NAME_DOTS, *out);
}

static int parse_roles(struct yamlx *y, const struct yamlx_field *f, struct workload_cfg *w,
		       struct errmsg *err)
{
	const struct yamlx_val *v = &f->v;
	struct yamlx_list l;
	struct yamlx_val item;
	char **role;
	int ret, i;

	w->roles_line = yamlx_line(f->key_node);
	ret = yamlx_list(y, v, true, CONFIG_MAX_ROLES, &l, err);
	if (ret)
		return ret;
	for (i = 0; i < l.nr; i++) {
		yamlx_list_get(y, &l, i, &item);
		/* Counted first so that config_free() releases it on error. */
		role = &w->roles[w->nr_roles++];
		ret = yamlx_name(y, &item, "role", "-_", role, err);
		if (ret)
			return ret;
		for (char **prev = w->roles; prev < role; prev++) {
			if (!strcmp(*prev, *role))
				return yamlx_error(y, item.node, err, "duplicate role \"%s\"",
						   *role);
		}
	}
	return 0;
}

/* Relative to the config file's directory, so a config and the files it
 * names (policy, certificates, secrets) can move together. */
int resolve_path(const struct yamlx *y, const struct yamlx_val *v, const struct config *cfg,
		 char **out, struct errmsg *err)
{
	const char *s, *slash;
	int ret;

	ret = yamlx_str(y, v, &s, err);
	if (ret)
		return ret;
	slash = strrchr(cfg->path, '/');
	if (s[0] == '/' || !slash)
		*out = strdup(s);
	else if (asprintf(out, "%.*s/%s", (int)(slash - cfg->path), cfg->path, s) < 0)
		*out = NULL;
	return *out ? 0 : yamlx_nomem(y, err);
}

static int parse_workload_oidc(struct yamlx *y, const struct yamlx_val *v, struct workload_cfg *w,
			       const struct config *cfg, struct errmsg *err)
{
	enum { O_CLIENT_ID, O_SECRET_FILE, O_KEY_FILE, NR_O };
	struct yamlx_field f[NR_O] = {
		[O_CLIENT_ID] = { .key = "client_id" },
		[O_SECRET_FILE] = { .key = "secret_file" },
		[O_KEY_FILE] = { .key = "key_file" },
	};
	int ret;

	ret = yamlx_fields(y, v, f, NR_O, err);
	if (ret)
		return ret;
	if (!f[O_SECRET_FILE].v.node == !f[O_KEY_FILE].v.node)
		return yamlx_error(y, v->node, err,
				   "%s needs exactly one of secret_file (client_secret_basic) "
				   "or key_file (private_key_jwt)",
				   v->what);
	if (f[O_CLIENT_ID].v.node)
		ret = yamlx_strdup(y, &f[O_CLIENT_ID].v, &w->oidc_client_id, err);
	else if (!(w->oidc_client_id = strdup(w->id)))
		ret = yamlx_nomem(y, err);
	if (ret)
		return ret;
	if (f[O_SECRET_FILE].v.node)
		return resolve_path(y, &f[O_SECRET_FILE].v, cfg, &w->oidc_secret_file, err);
	return resolve_path(y, &f[O_KEY_FILE].v, cfg, &w->oidc_key_file, err);
}

static int parse_inbound(const struct yamlx *y, const struct yamlx_val *v, struct workload_cfg *w,
			 struct errmsg *err)
{
	const char *s;
	int ret;

	ret = yamlx_str(y, v, &s, err);
	if (ret)
		return ret;
	if (strcmp(s, "open") && strcmp(s, "mesh-only"))
		return yamlx_error(y, v->node, err,
				   "unknown inbound \"%s\" (expected open or mesh-only)", s);
	w->mesh_only = !strcmp(s, "mesh-only");
	return 0;
}

/* Parses one workload; the ones before it in cfg->workloads are complete
 * and checked for duplicates. */
int parse_workload(struct yamlx *y, const struct yamlx_val *v, void *elem, void *ctx,
		   struct errmsg *err)
{
	struct workload_cfg *w = elem;
	struct config *cfg = ctx;
	enum { W_CGROUP, W_ID, W_ROLES, W_INBOUND, W_OIDC, NR_W };
	struct yamlx_field f[NR_W] = {
		[W_CGROUP] = { .key = "cgroup", .required = true },
		[W_ID] = { .key = "id", .required = true },
		[W_ROLES] = { .key = "roles" },
		[W_INBOUND] = { .key = "inbound" },
		[W_OIDC] = { .key = "oidc" },
	};
	struct spiffe_id sid;
	const struct workload_cfg *prev;
	const char *why;
	int ret;

	w->line = w->roles_line = yamlx_line(v->node);
	ret = yamlx_fields(y, v, f, NR_W, err);
	if (ret)
		return ret;
	ret = parse_cgroup_path(y, &f[W_CGROUP].v, false, &w->cgroup, err);
	if (ret)
		return ret;
	ret = yamlx_strdup(y, &f[W_ID].v, &w->id, err);
	if (ret)
		return ret;
	if (spiffe_id_parse(w->id, &sid, &why))
		return yamlx_error(y, f[W_ID].v.node, err, "bad SPIFFE ID \"%s\": %s", w->id, why);
	if (!spiffe_id_in_domain(&sid, cfg->trust_domain))
		return yamlx_error(y, f[W_ID].v.node, err,
				   "SPIFFE ID \"%s\" is not in trust domain \"%s\"", w->id,
				   cfg->trust_domain);
	w->kind = sid.kind;
	for (prev = cfg->workloads; prev < w; prev++) {
		if (!strcmp(prev->cgroup, w->cgroup))
			return yamlx_error(y, f[W_CGROUP].v.node, err,
					   "duplicate workload cgroup \"%s\" (first defined at "
					   "line %d)",
					   w->cgroup, prev->line);
		if (!strcmp(prev->id, w->id))
			return yamlx_error(y, f[W_ID].v.node, err,
					   "duplicate workload ID \"%s\" (first defined at line "
					   "%d)",
					   w->id, prev->line);
	}
	if (f[W_INBOUND].v.node) {
		ret = parse_inbound(y, &f[W_INBOUND].v, w, err);
		if (ret)
			return ret;
	}
	if (cfg->identity.oidc && !f[W_OIDC].v.node)
		return yamlx_error(y, v->node, err,
				   "workload \"%s\" has no oidc: client (identity.oidc is set)",
				   w->id);
	if (f[W_OIDC].v.node) {
		if (!cfg->identity.oidc)
			return yamlx_error(y, f[W_OIDC].v.node, err,
					   "oidc: for workload \"%s\" needs identity.oidc", w->id);
		ret = parse_workload_oidc(y, &f[W_OIDC].v, w, cfg, err);
		if (ret)
			return ret;
	}
	if (f[W_ROLES].v.node)
		return parse_roles(y, &f[W_ROLES], w, err);
	return 0;
}

/* A workload ID whose name may end in '*': checked as the ID it names with
 * the '*' read as one more name character. whose names the list in
 * messages ("peer node-b", "http.edge_workloads"). */
int parse_id_pattern(const struct yamlx *y, const struct yamlx_val *item,
		     const struct config *cfg, const char *whose, char **out, struct errmsg *err)
{
	const char *why = "'*' may only end the name", *star;
	struct spiffe_id sid;
	char *id;
	int ret;

	ret = yamlx_strdup(y, item, out, err);
	if (ret)
		return ret;
	id = strdup(*out);
	if (!id)
		return yamlx_nomem(y, err);
	star = strchr(*out, '*');
	if (star)
		id[star - *out] = 'x';
	ret = star && star[1] ? -EINVAL : spiffe_id_parse(id, &sid, &why);
	if (ret)
		ret = yamlx_error(y, item->node, err, "bad workload pattern \"%s\" for %s: %s",
				  *out, whose, why);
	else if (!spiffe_id_in_domain(&sid, cfg->trust_domain))
		ret = yamlx_error(y, item->node, err,
				  "workload pattern \"%s\" for %s is not in trust domain \"%s\"",
				  *out, whose, cfg->trust_domain);
	free(id);
	return ret;
}

/* Which workloads the peer may vouch for; absent, none: a node proves who
 * it is, never who it hosts, so nobody may be taken on its word alone. */
static int parse_peer_workloads(struct yamlx *y, const struct yamlx_val *v, struct peer_cfg *peer,
				const struct config *cfg, struct errmsg *err)
{
	char whose[CONFIG_NAME_MAX + 8];
	struct yamlx_list l;
	struct yamlx_val item;
	int ret;

	ret = yamlx_list(y, v, true, SLUICE_MAX_WORKLOADS, &l, err);
	if (ret)
		return ret;
	peer->workloads = calloc(l.nr, sizeof(*peer->workloads));
	if (l.nr && !peer->workloads)
		return yamlx_nomem(y, err);
	snprintf(whose, sizeof(whose), "peer %s", peer->node);
	for (int i = 0; i < l.nr; i++) {
		yamlx_list_get(y, &l, i, &item);
		/* Counted first so that config_free() releases it on error. */
		ret = parse_id_pattern(y, &item, cfg, whose, &peer->workloads[peer->nr_workloads++],
				       err);
		if (ret)
			return ret;
	}
	return 0;
}

int parse_peer(struct yamlx *y, const struct yamlx_val *v, void *elem, void *ctx,
	       struct errmsg *err)
{
	struct peer_cfg *peer = elem;
	struct config *cfg = ctx;
	enum { P_NODE, P_TUNNEL, P_CIDRS, P_WORKLOADS, NR_P };
	struct yamlx_field f[NR_P] = {
		[P_NODE] = { .key = "node", .required = true },
		[P_TUNNEL] = { .key = "tunnel", .required = true },
		[P_CIDRS] = { .key = "cidrs", .required = true },
		[P_WORKLOADS] = { .key = "workloads" },
	};
	struct yamlx_list l;
	struct yamlx_val item;
	char why[128];
	const char *s;
	int ret, i;

	peer->line = yamlx_line(v->node);
	ret = yamlx_fields(y, v, f, NR_P, err);
	if (ret)
		return ret;
	ret = parse_node_name(y, &f[P_NODE].v, &peer->node, err);
	if (ret)
		return ret;
	if (!strcmp(peer->node, cfg->node))
		return yamlx_error(y, f[P_NODE].v.node, err,
				   "peer \"%s\" is this node; list only other nodes", peer->node);
	for (const struct peer_cfg *prev = cfg->peers; prev < peer; prev++) {
		if (!strcmp(prev->node, peer->node))
			return yamlx_error(y, f[P_NODE].v.node, err,
					   "duplicate peer \"%s\" (first defined at line %d)",
					   peer->node, prev->line);
	}
	ret = yamlx_str(y, &f[P_TUNNEL].v, &s, err);
	if (ret)
		return ret;
	if (parse_sockaddr(s, &peer->tunnel) || !((struct sockaddr_in *)&peer->tunnel)->sin_port)
		return yamlx_error(y, f[P_TUNNEL].v.node, err,
				   "bad tunnel address \"%s\" for peer %s: expected IP:PORT or "
				   "[IPv6]:PORT",
				   s, peer->node);
	ret = yamlx_list(y, &f[P_CIDRS].v, true, CONFIG_MAX_CIDRS, &l, err);
	if (ret)
		return ret;
	peer->cidrs = calloc(l.nr, sizeof(*peer->cidrs));
	if (!peer->cidrs)
		return yamlx_nomem(y, err);
	for (i = 0; i < l.nr; i++) {
		ret = yamlx_list_str(y, &l, i, &item, &s, err);
		if (ret)
			return ret;
		if (parse_cidr(s, &peer->cidrs[i], why, sizeof(why)))
			return yamlx_error(y, item.node, err, "bad CIDR \"%s\" for peer %s: %s", s,
					   peer->node, why);
		peer->nr_cidrs++;
	}
	if (f[P_WORKLOADS].v.node)
		return parse_peer_workloads(y, &f[P_WORKLOADS].v, peer, cfg, err);
	return 0;
}

static int parse_oidc(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
		      struct errmsg *err)
{
	struct identity_cfg *id = &cfg->identity;
	enum { O_ISSUER, O_AUDIENCE, O_CA_FILE, O_BIND_CERT, NR_O };
	struct yamlx_field f[NR_O] = {
		[O_ISSUER] = { .key = "issuer", .required = true },
		[O_AUDIENCE] = { .key = "audience" },
		[O_CA_FILE] = { .key = "ca_file" },
		[O_BIND_CERT] = { .key = "bind_cert" },
	};
	int ret;

	ret = yamlx_fields(y, v, f, NR_O, err);
	if (ret)
		return ret;
	id->oidc = true;
	ret = yamlx_strdup(y, &f[O_ISSUER].v, &id->oidc_issuer, err);
	if (ret)
		return ret;
	if (strncmp(id->oidc_issuer, "https://", 8) && strncmp(id->oidc_issuer, "http://", 7))
		return yamlx_error(y, f[O_ISSUER].v.node, err,
				   "bad issuer \"%s\": expected an https:// URL",
				   id->oidc_issuer);
	if (f[O_AUDIENCE].v.node)
		ret = yamlx_strdup(y, &f[O_AUDIENCE].v, &id->oidc_audience, err);
	else if (asprintf(&id->oidc_audience, "spiffe://%s", cfg->trust_domain) < 0 &&
		 !(id->oidc_audience = NULL))
		ret = yamlx_nomem(y, err);
	if (ret)
		return ret;
	if (f[O_CA_FILE].v.node) {
		ret = resolve_path(y, &f[O_CA_FILE].v, cfg, &id->oidc_ca_file, err);
		if (ret)
			return ret;
	}
	id->oidc_bind_cert = true;
	if (f[O_BIND_CERT].v.node)
		return yamlx_bool(y, &f[O_BIND_CERT].v, &id->oidc_bind_cert, err);
	return 0;
}

int parse_identity(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
		   struct errmsg *err)
{
	struct identity_cfg *id = &cfg->identity;
	enum { I_CA, I_CERT, I_KEY, I_TOKEN_LIFETIME, I_CLOCK_SKEW, I_RESUMPTION, I_OIDC, NR_I };
	struct yamlx_field f[NR_I] = {
		[I_CA] = { .key = "ca", .required = true },
		[I_CERT] = { .key = "cert", .required = true },
		[I_KEY] = { .key = "key", .required = true },
		[I_TOKEN_LIFETIME] = { .key = "token_lifetime" },
		[I_CLOCK_SKEW] = { .key = "clock_skew" },
		[I_RESUMPTION] = { .key = "resumption" },
		[I_OIDC] = { .key = "oidc" },
	};
	unsigned int ms;
	int ret;

	ret = yamlx_fields(y, v, f, NR_I, err);
	if (ret)
		return ret;
	id->enabled = true;
	ret = resolve_path(y, &f[I_CA].v, cfg, &id->ca, err);
	if (!ret)
		ret = resolve_path(y, &f[I_CERT].v, cfg, &id->cert, err);
	if (!ret)
		ret = resolve_path(y, &f[I_KEY].v, cfg, &id->key, err);
	if (ret)
		return ret;
	id->token_lifetime_s = DEFAULT_TOKEN_LIFETIME_S;
	if (f[I_TOKEN_LIFETIME].v.node) {
		ret = parse_duration(y, &f[I_TOKEN_LIFETIME].v, &ms, err);
		if (ret)
			return ret;
		if (ms < 3000 || ms > 24 * 3600 * 1000)
			return yamlx_error(y, f[I_TOKEN_LIFETIME].v.node, err,
					   "token_lifetime must be between 3s and 24h");
		id->token_lifetime_s = ms / 1000;
	}
	id->clock_skew_s = DEFAULT_CLOCK_SKEW_S;
	if (f[I_CLOCK_SKEW].v.node) {
		ret = parse_duration(y, &f[I_CLOCK_SKEW].v, &ms, err);
		if (ret)
			return ret;
		/* Tokens carry whole seconds; 0 would mean the default to
		 * the verifier, so it is refused rather than misread. */
		if (ms < 1000 || ms > 300 * 1000 || ms % 1000)
			return yamlx_error(y, f[I_CLOCK_SKEW].v.node, err,
					   "clock_skew must be whole seconds from 1s to 5m");
		id->clock_skew_s = ms / 1000;
	}
	id->resumption = true;
	if (f[I_RESUMPTION].v.node) {
		ret = yamlx_bool(y, &f[I_RESUMPTION].v, &id->resumption, err);
		if (ret)
			return ret;
	}
	if (f[I_OIDC].v.node)
		return parse_oidc(y, &f[I_OIDC].v, cfg, err);
	return 0;
}

#define DEFAULT_EDGE_CACHE_MAX 10000
#define EDGE_CACHE_LIMIT 1000000
#define DEFAULT_EDGE_CACHE_TTL_S 60
#define DEFAULT_EDGE_ASSERTION_S 60
/* assertion_verify() refuses lifetimes past 5 minutes. */
#define EDGE_ASSERTION_MAX_S 300
#define DEFAULT_EDGE_RENDER_DIR "/etc/sluice/edge"
#define DEFAULT_EDGE_NGINX "/usr/sbin/nginx"
#define DEFAULT_EDGE_NGINX_CONF "/etc/nginx/sluice-edge.conf"

/* Whole seconds from 1s to max seconds. */
static int parse_edge_seconds(const struct yamlx *y, const struct yamlx_val *v, unsigned int max,
			      unsigned int *out, struct errmsg *err)
{
	unsigned int ms;
	int ret;

	ret = parse_duration(y, v, &ms, err);
	if (ret)
		return ret;
	if (ms < 1000 || ms > max * 1000 || ms % 1000)
		return yamlx_error(y, v->node, err, "%s must be whole seconds from 1s to %us",
				   v->what, max);
	*out = ms / 1000;
	return 0;
}

static int parse_edge_listen(const struct yamlx *y, const struct yamlx_field *listen,
			     const struct yamlx_field *routable, struct edge_cfg *e,
			     struct errmsg *err)
{
	const char *s;
	int ret;

	if (routable->v.node) {
		ret = yamlx_bool(y, &routable->v, &e->listen_routable, err);
		if (ret)
			return ret;
	}
	if (!listen->v.node)
		return 0;
	ret = yamlx_str(y, &listen->v, &s, err);
	if (ret)
		return ret;
	if (parse_sockaddr(s, &e->listen) || !((struct sockaddr_in *)&e->listen)->sin_port)
		return yamlx_error(y, listen->v.node, err,
				   "bad address \"%s\" for edge.listen: expected IP:PORT or "
				   "[IPv6]:PORT (port 1-65535)",
				   s);
	/* Anyone who reaches the endpoint learns which tokens are valid and
	 * obtains signed assertions for them: only nginx on this host should. */
	if (!sockaddr_is_loopback(&e->listen) && !e->listen_routable)
		return yamlx_error(y, listen->v.node, err,
				   "edge.listen \"%s\" is not a loopback address: use 127.0.0.1 "
				   "or [::1], or set edge.listen_routable: true",
				   s);
	e->has_listen = true;
	return 0;
}

int parse_group(const struct yamlx *y, const struct yamlx_val *v, const char *key,
		unsigned int *gid, struct errmsg *err)
{
	struct group *gr;
	const char *s;
	char *end;
	unsigned long n;
	int ret;

	ret = yamlx_str(y, v, &s, err);
	if (ret)
		return ret;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (s[0] >= '0' && s[0] <= '9' && !*end && !errno && n < UINT_MAX) {
		*gid = n;
		return 0;
	}
	gr = getgrnam(s);
	if (!gr)
		return yamlx_error(y, v->node, err,
				   "unknown group \"%s\" for %s: give a group name of this host "
				   "or a numeric gid",
				   s, key);
	*gid = gr->gr_gid;
	return 0;
}

static int parse_edge_cache(struct yamlx *y, const struct yamlx_val *v, struct edge_cfg *e,
			    struct errmsg *err)
{
	enum { K_MAX, K_TTL, NR_K };
	struct yamlx_field f[NR_K] = {
		[K_MAX] = { .key = "max" },
		[K_TTL] = { .key = "ttl" },
	};
	int ret;

	ret = yamlx_fields(y, v, f, NR_K, err);
	if (!ret && f[K_MAX].v.node)
		ret = yamlx_uint(y, &f[K_MAX].v, 0, EDGE_CACHE_LIMIT, &e->cache_max, err);
	if (!ret && f[K_TTL].v.node)
		ret = parse_edge_seconds(y, &f[K_TTL].v, 24 * 3600, &e->cache_ttl_s, err);
	return ret;
}

static int parse_edge_introspection(struct yamlx *y, const struct yamlx_val *v,
				    const struct config *cfg, struct edge_cfg *e,
				    struct errmsg *err)
{
	enum { I_CLIENT_ID, I_SECRET_FILE, NR_I };
	struct yamlx_field f[NR_I] = {
		[I_CLIENT_ID] = { .key = "client_id", .required = true },
		[I_SECRET_FILE] = { .key = "secret_file", .required = true },
	};
	int ret;

	ret = yamlx_fields(y, v, f, NR_I, err);
	if (!ret)
		ret = yamlx_strdup(y, &f[I_CLIENT_ID].v, &e->introspection_client_id, err);
	if (!ret)
		ret = resolve_path(y, &f[I_SECRET_FILE].v, cfg, &e->introspection_secret_file,
				   err);
	return ret;
}

static int edge_path_or(const struct yamlx *y, const struct yamlx_val *v,
			const struct config *cfg, const char *def, char **out, struct errmsg *err)
{
	if (v->node)
		return resolve_path(y, v, cfg, out, err);
	*out = strdup(def);
	return *out ? 0 : yamlx_nomem(y, err);
}

/* render_dir, nginx, nginx_conf and nginx_pid, in that order in f. */
static int parse_edge_nginx(const struct yamlx *y, const struct yamlx_field *f,
			    const struct config *cfg, struct edge_cfg *e, struct errmsg *err)
{
	int ret;

	ret = edge_path_or(y, &f[0].v, cfg, DEFAULT_EDGE_RENDER_DIR, &e->render_dir, err);
	if (!ret)
		ret = edge_path_or(y, &f[1].v, cfg, DEFAULT_EDGE_NGINX, &e->nginx, err);
	if (!ret)
		ret = edge_path_or(y, &f[2].v, cfg, DEFAULT_EDGE_NGINX_CONF, &e->nginx_conf, err);
	if (!ret && f[3].v.node)
		ret = resolve_path(y, &f[3].v, cfg, &e->nginx_pid, err);
	return ret;
}

int parse_edge(struct yamlx *y, const struct yamlx_val *v, struct config *cfg,
	       struct errmsg *err)
{
	enum {
		E_SOCKET,
		E_SOCKET_GROUP,
		E_LISTEN,
		E_LISTEN_ROUTABLE,
		E_AUDIENCE,
		E_CACHE,
		E_ASSERTION_LIFETIME,
		E_INTROSPECTION,
		E_RENDER_DIR,
		E_NGINX,
		E_NGINX_CONF,
		E_NGINX_PID,
		NR_E
	};
	struct yamlx_field f[NR_E] = {
		[E_SOCKET] = { .key = "socket" },
		[E_SOCKET_GROUP] = { .key = "socket_group" },
		[E_LISTEN] = { .key = "listen" },
		[E_LISTEN_ROUTABLE] = { .key = "listen_routable" },
		[E_AUDIENCE] = { .key = "audience" },
		[E_CACHE] = { .key = "cache" },
		[E_ASSERTION_LIFETIME] = { .key = "assertion_lifetime" },
		[E_INTROSPECTION] = { .key = "introspection" },
		[E_RENDER_DIR] = { .key = "render_dir" },
		[E_NGINX] = { .key = "nginx" },
		[E_NGINX_CONF] = { .key = "nginx_conf" },
		[E_NGINX_PID] = { .key = "nginx_pid" },
	};
	struct edge_cfg *e = &cfg->edge;
	int ret;

	ret = yamlx_fields(y, v, f, NR_E, err);
	if (ret)
		return ret;
	if (!cfg->identity.oidc)
		return yamlx_error(y, v->node, err,
				   "edge: needs identity.oidc (the IdP whose tokens the edge "
				   "verifies); add identity: with oidc: issuer: ...");
	e->enabled = true;
	e->cache_max = DEFAULT_EDGE_CACHE_MAX;
	e->cache_ttl_s = DEFAULT_EDGE_CACHE_TTL_S;
	e->assertion_lifetime_s = DEFAULT_EDGE_ASSERTION_S;
	if (f[E_SOCKET].v.node)
		ret = resolve_path(y, &f[E_SOCKET].v, cfg, &e->socket, err);
	else if (asprintf(&e->socket, "%s/authz.sock", cfg->run_dir) < 0 && !(e->socket = NULL))
		ret = yamlx_nomem(y, err);
	if (!ret && f[E_SOCKET_GROUP].v.node)
		ret = parse_group(y, &f[E_SOCKET_GROUP].v, "edge.socket_group", &e->socket_gid, err);
	if (!ret)
		ret = parse_edge_listen(y, &f[E_LISTEN], &f[E_LISTEN_ROUTABLE], e, err);
	if (!ret && f[E_AUDIENCE].v.node)
		ret = yamlx_strdup(y, &f[E_AUDIENCE].v, &e->audience, err);
	else if (!ret && !(e->audience = strdup(cfg->identity.oidc_audience)))
		ret = yamlx_nomem(y, err);
	if (!ret && f[E_CACHE].v.node)
		ret = parse_edge_cache(y, &f[E_CACHE].v, e, err);
	if (!ret && f[E_ASSERTION_LIFETIME].v.node)
		ret = parse_edge_seconds(y, &f[E_ASSERTION_LIFETIME].v, EDGE_ASSERTION_MAX_S,
					 &e->assertion_lifetime_s, err);
	if (!ret && f[E_INTROSPECTION].v.node)
		ret = parse_edge_introspection(y, &f[E_INTROSPECTION].v, cfg, e, err);
	if (!ret)
		ret = parse_edge_nginx(y, &f[E_RENDER_DIR], cfg, e, err);
	return ret;
}
