// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "yamlx.h"

/* Service names sorted for lookups from rules' `to` lists. */
struct svc_ref {
	const char *name;
	int idx;
};

struct parse_ctx {
	struct policy *pol;
	struct svc_ref *svc_index;
};

static int svc_ref_cmp(const void *a, const void *b)
{
	return strcmp(((const struct svc_ref *)a)->name, ((const struct svc_ref *)b)->name);
}

static int find_service(const struct parse_ctx *ctx, const char *name)
{
	struct svc_ref key = { .name = name }, *r;

	r = bsearch(&key, ctx->svc_index, ctx->pol->nr_services, sizeof(key), svc_ref_cmp);
	return r ? r->idx : -1;
}

static int find_role(const struct policy *pol, const char *name)
{
	for (int i = 0; i < pol->nr_roles; i++) {
		if (!strcmp(pol->roles[i].name, name))
			return i;
	}
	return -1;
}

static int parse_addresses(struct yamlx *y, const struct yamlx_val *v, struct policy_service *svc,
			   struct errmsg *err)
{
	struct yamlx_val item;
	struct yamlx_list l;
	struct cidr *c;
	char why[96];
	const char *s;
	int ret, i, j;

	ret = yamlx_list(y, v, true, POLICY_MAX_ADDRS, &l, err);
	if (ret)
		return ret;
	if (!l.nr)
		return yamlx_error(y, v->node, err, "service \"%s\" needs at least one address",
				   svc->name);
	svc->addrs = calloc(l.nr, sizeof(*svc->addrs));
	if (!svc->addrs)
		return yamlx_nomem(y, err);
	for (i = 0; i < l.nr; i++) {
		ret = yamlx_list_str(y, &l, i, &item, &s, err);
		if (ret)
			return ret;
		c = &svc->addrs[i];
		if (parse_cidr(s, c, why, sizeof(why)))
			return yamlx_error(y, item.node, err, "bad address \"%s\": %s", s, why);
		for (j = 0; j < i; j++) {
			if (!memcmp(&svc->addrs[j], c, sizeof(*c)))
				return yamlx_error(y, item.node, err, "duplicate address \"%s\"",
						   s);
		}
		svc->nr_addrs++;
	}
	return 0;
}

static int parse_ports(struct yamlx *y, const struct yamlx_val *v, struct policy_service *svc,
		       struct errmsg *err)
{
	struct yamlx_val item;
	struct yamlx_list l;
	bool any = false;
	const char *s;
	uint16_t port;
	int ret, i, j;

	ret = yamlx_list(y, v, true, POLICY_MAX_PORTS, &l, err);
	if (ret)
		return ret;
	if (!l.nr)
		return yamlx_error(y, v->node, err,
				   "empty \"ports\": omit it or write [any] for any port");
	svc->ports = calloc(l.nr, sizeof(*svc->ports));
	if (!svc->ports)
		return yamlx_nomem(y, err);
	for (i = 0; i < l.nr; i++) {
		ret = yamlx_list_str(y, &l, i, &item, &s, err);
		if (ret)
			return ret;
		if (!strcmp(s, "any")) {
			any = true;
			continue;
		}
		if (parse_port(s, &port) || !port)
			return yamlx_error(y, item.node, err,
					   "bad port \"%s\": expected 1-65535 or any", s);
		for (j = 0; j < svc->nr_ports; j++) {
			if (svc->ports[j] == port)
				return yamlx_error(y, item.node, err, "duplicate port %u", port);
		}
		svc->ports[svc->nr_ports++] = port;
	}
	if (any && l.nr > 1)
		return yamlx_error(y, v->node, err, "port any cannot be combined with other ports");
	return 0;
}

static int parse_service(struct yamlx *y, const struct yamlx_val *v, void *elem, void *ctx,
			 struct errmsg *err)
{
	enum { S_NAME, S_ADDRESSES, S_PORTS, S_PROTOCOL, S_MESH, NR_S };
	struct yamlx_field f[NR_S] = {
		[S_NAME] = { .key = "name", .required = true },
		[S_ADDRESSES] = { .key = "addresses", .required = true },
		[S_PORTS] = { .key = "ports" },
		[S_PROTOCOL] = { .key = "protocol" },
		[S_MESH] = { .key = "mesh" },
	};
	struct policy_service *svc = elem, *prev;
	struct policy *pol = ctx;
	const char *s;
	int ret;

	svc->line = yamlx_line(v->node);
	svc->proto = IPPROTO_TCP;
	svc->mesh = true;
	ret = yamlx_fields(y, v, f, NR_S, err);
	if (ret)
		return ret;
	ret = yamlx_name(y, &f[S_NAME].v, "service", "-", &svc->name, err);
	if (ret)
		return ret;
	for (prev = pol->services; prev < svc; prev++) {
		if (!strcmp(prev->name, svc->name))
			return yamlx_error(y, f[S_NAME].v.node, err,
					   "duplicate service \"%s\" (first defined at line %d)",
					   svc->name, prev->line);
	}
	ret = parse_addresses(y, &f[S_ADDRESSES].v, svc, err);
	if (ret)
		return ret;
	if (f[S_PORTS].v.node) {
		ret = parse_ports(y, &f[S_PORTS].v, svc, err);
		if (ret)
			return ret;
	}
	if (f[S_PROTOCOL].v.node) {
		ret = yamlx_str(y, &f[S_PROTOCOL].v, &s, err);
		if (ret)
			return ret;
		if (!strcmp(s, "udp"))
			svc->proto = IPPROTO_UDP;
		else if (strcmp(s, "tcp"))
			return yamlx_error(y, f[S_PROTOCOL].v.node, err,
					   "unknown protocol \"%s\" (expected tcp or udp)", s);
	}
	if (f[S_MESH].v.node)
		return yamlx_bool(y, &f[S_MESH].v, &svc->mesh, err);
	return 0;
}

static int parse_claims(struct yamlx *y, const struct yamlx_val *v, struct policy_role *role,
			struct errmsg *err)
{
	struct yamlx_val value;
	struct yamlx_map m;
	const char *key;
	int ret, i;

	ret = yamlx_map(y, v, &m, err);
	if (ret)
		return ret;
	if (m.nr > POLICY_MAX_CLAIMS)
		return yamlx_error(y, v->node, err, "too many claims (%d, max %d)", m.nr,
				   POLICY_MAX_CLAIMS);
	if (!m.nr)
		return 0;
	role->claim_keys = calloc(m.nr, sizeof(*role->claim_keys));
	role->claim_values = calloc(m.nr, sizeof(*role->claim_values));
	if (!role->claim_keys || !role->claim_values)
		return yamlx_nomem(y, err);
	for (i = 0; i < m.nr; i++) {
		key = yamlx_map_get(y, &m, i, &value);
		role->nr_claims = i + 1;
		role->claim_keys[i] = strdup(key);
		if (!role->claim_keys[i])
			return yamlx_nomem(y, err);
		ret = yamlx_strdup(y, &value, &role->claim_values[i], err);
		if (ret)
			return ret;
	}
	return 0;
}

static int parse_role(struct yamlx *y, const struct yamlx_val *v, void *elem, void *ctx,
		      struct errmsg *err)
{
	enum { R_NAME, R_CLAIMS, NR_R };
	struct yamlx_field f[NR_R] = {
		[R_NAME] = { .key = "name", .required = true },
		[R_CLAIMS] = { .key = "claims" },
	};
	struct policy_role *role = elem, *prev;
	struct policy *pol = ctx;
	int ret;

	role->line = yamlx_line(v->node);
	ret = yamlx_fields(y, v, f, NR_R, err);
	if (ret)
		return ret;
	ret = yamlx_name(y, &f[R_NAME].v, "role", "-_", &role->name, err);
	if (ret)
		return ret;
	for (prev = pol->roles; prev < role; prev++) {
		if (!strcmp(prev->name, role->name))
			return yamlx_error(y, f[R_NAME].v.node, err,
					   "duplicate role \"%s\" (first defined at line %d)",
					   role->name, prev->line);
	}
	if (f[R_CLAIMS].v.node)
		return parse_claims(y, &f[R_CLAIMS].v, role, err);
	return 0;
}

static int parse_from(struct yamlx *y, const struct yamlx_val *v, const struct policy *pol,
		      struct policy_rule *rule, struct errmsg *err)
{
	enum { F_WORKLOAD, F_KIND, F_ROLE, F_ANY, NR_F };
	struct yamlx_field f[NR_F] = {
		[F_WORKLOAD] = { .key = "workload" },
		[F_KIND] = { .key = "kind" },
		[F_ROLE] = { .key = "role" },
		[F_ANY] = { .key = "any" },
	};
	struct spiffe_id sid;
	const char *why;
	int ret, i, n = 0, which = 0;
	bool any;

	ret = yamlx_fields(y, v, f, NR_F, err);
	if (ret)
		return ret;
	for (i = 0; i < NR_F; i++) {
		if (f[i].v.node) {
			n++;
			which = i;
		}
	}
	if (n != 1)
		return yamlx_error(y, v->node, err, "rule needs exactly one of %s in \"from\"",
				   "workload, kind, role, any");
	if (which == F_ANY) {
		rule->from = FROM_ANY;
		ret = yamlx_bool(y, &f[F_ANY].v, &any, err);
		if (ret)
			return ret;
		if (!any)
			return yamlx_error(y, f[F_ANY].v.node, err,
					   "bad value \"false\" for \"any\": expected true");
		return 0;
	}
	ret = yamlx_strdup(y, &f[which].v, &rule->from_value, err);
	if (ret)
		return ret;
	switch (which) {
	case F_WORKLOAD:
		rule->from = FROM_WORKLOAD;
		if (spiffe_id_parse(rule->from_value, &sid, &why))
			return yamlx_error(y, f[which].v.node, err, "bad SPIFFE ID \"%s\": %s",
					   rule->from_value, why);
		break;
	case F_KIND:
		rule->from = FROM_KIND;
		if (!workload_kind_parse(rule->from_value))
			return yamlx_error(y, f[which].v.node, err,
					   "unknown kind \"%s\" (expected %s)", rule->from_value,
					   "job, notebook, cluster or service");
		break;
	default:
		rule->from = FROM_ROLE;
		if (find_role(pol, rule->from_value) < 0)
			return yamlx_error(y, f[which].v.node, err, "unknown role \"%s\"",
					   rule->from_value);
	}
	return 0;
}

static int parse_to(struct yamlx *y, const struct yamlx_val *v, const struct parse_ctx *ctx,
		    struct policy_rule *rule, struct errmsg *err)
{
	struct yamlx_val item;
	struct yamlx_list l;
	const char *s;
	int ret, i, j, idx;

	ret = yamlx_list(y, v, true, POLICY_MAX_SERVICES, &l, err);
	if (ret)
		return ret;
	if (!l.nr)
		return yamlx_error(y, v->node, err, "empty \"to\": name at least one service");
	rule->to = calloc(l.nr, sizeof(*rule->to));
	if (!rule->to)
		return yamlx_nomem(y, err);
	for (i = 0; i < l.nr; i++) {
		ret = yamlx_list_str(y, &l, i, &item, &s, err);
		if (ret)
			return ret;
		idx = find_service(ctx, s);
		if (idx < 0)
			return yamlx_error(y, item.node, err, "unknown service \"%s\"", s);
		for (j = 0; j < rule->nr_to; j++) {
			if (rule->to[j] == idx)
				return yamlx_error(y, item.node, err,
						   "service \"%s\" listed twice in \"to\"", s);
		}
		rule->to[rule->nr_to++] = idx;
	}
	return 0;
}

static int parse_rule(struct yamlx *y, const struct yamlx_val *v, void *elem, void *ctxp,
		      struct errmsg *err)
{
	enum { U_NAME, U_FROM, U_TO, U_ACTION, NR_U };
	struct yamlx_field f[NR_U] = {
		[U_NAME] = { .key = "name" },
		[U_FROM] = { .key = "from", .required = true },
		[U_TO] = { .key = "to", .required = true },
		[U_ACTION] = { .key = "action", .required = true },
	};
	const struct parse_ctx *ctx = ctxp;
	struct policy_rule *rule = elem, *prev;
	const char *s;
	int ret;

	rule->line = yamlx_line(v->node);
	ret = yamlx_fields(y, v, f, NR_U, err);
	if (ret)
		return ret;
	if (f[U_NAME].v.node) {
		ret = yamlx_name(y, &f[U_NAME].v, "rule", "-_", &rule->name, err);
		if (ret)
			return ret;
		for (prev = ctx->pol->rules; prev < rule; prev++) {
			if (prev->name && !strcmp(prev->name, rule->name))
				return yamlx_error(y, f[U_NAME].v.node, err,
						   "duplicate rule \"%s\" (first defined at "
						   "line %d)",
						   rule->name, prev->line);
		}
	}
	ret = parse_from(y, &f[U_FROM].v, ctx->pol, rule, err);
	if (ret)
		return ret;
	ret = parse_to(y, &f[U_TO].v, ctx, rule, err);
	if (ret)
		return ret;
	ret = yamlx_str(y, &f[U_ACTION].v, &s, err);
	if (ret)
		return ret;
	if (!strcmp(s, "allow"))
		rule->allow = true;
	else if (strcmp(s, "deny"))
		return yamlx_error(y, f[U_ACTION].v.node, err,
				   "unknown action \"%s\" (expected allow or deny)", s);
	return 0;
}

static int parse_policy(struct yamlx *y, struct policy *pol, struct errmsg *err)
{
	enum { P_VERSION, P_DEFAULT, P_ROLES, P_SERVICES, P_RULES, NR_P };
	struct yamlx_field f[NR_P] = {
		[P_VERSION] = { .key = "version", .required = true },
		[P_DEFAULT] = { .key = "default" },
		[P_ROLES] = { .key = "roles" },
		[P_SERVICES] = { .key = "services" },
		[P_RULES] = { .key = "rules" },
	};
	struct parse_ctx ctx = { .pol = pol };
	struct yamlx_val root;
	const char *s;
	int ret, i;

	yamlx_root(y, &root);
	ret = yamlx_fields(y, &root, f, NR_P, err);
	if (ret)
		return ret;
	ret = yamlx_str(y, &f[P_VERSION].v, &s, err);
	if (ret)
		return ret;
	if (strcmp(s, "1"))
		return yamlx_error(y, f[P_VERSION].v.node, err,
				   "unsupported policy version \"%s\" (expected 1)", s);
	if (f[P_DEFAULT].v.node) {
		ret = yamlx_str(y, &f[P_DEFAULT].v, &s, err);
		if (ret)
			return ret;
		if (!strcmp(s, "allow"))
			pol->default_allow = true;
		else if (strcmp(s, "deny"))
			return yamlx_error(y, f[P_DEFAULT].v.node, err,
					   "unknown default \"%s\" (expected deny or allow)", s);
	}
	if (f[P_ROLES].v.node) {
		ret = yamlx_array(y, &f[P_ROLES].v, POLICY_MAX_ROLES, sizeof(*pol->roles),
				  (void **)&pol->roles, &pol->nr_roles, parse_role, pol, err);
		if (ret)
			return ret;
	}
	if (f[P_SERVICES].v.node) {
		ret = yamlx_array(y, &f[P_SERVICES].v, POLICY_MAX_SERVICES,
				  sizeof(*pol->services), (void **)&pol->services,
				  &pol->nr_services, parse_service, pol, err);
		if (ret)
			return ret;
	}
	if (!f[P_RULES].v.node)
		return 0;
	ctx.svc_index = calloc(pol->nr_services ? pol->nr_services : 1, sizeof(*ctx.svc_index));
	if (!ctx.svc_index)
		return yamlx_nomem(y, err);
	for (i = 0; i < pol->nr_services; i++) {
		ctx.svc_index[i].name = pol->services[i].name;
		ctx.svc_index[i].idx = i;
	}
	qsort(ctx.svc_index, pol->nr_services, sizeof(*ctx.svc_index), svc_ref_cmp);
	ret = yamlx_array(y, &f[P_RULES].v, POLICY_MAX_RULES, sizeof(*pol->rules),
			  (void **)&pol->rules, &pol->nr_rules, parse_rule, &ctx, err);
	free(ctx.svc_index);
	return ret;
}

int policy_load(const char *path, struct policy *pol, struct errmsg *err)
{
	struct yamlx y;
	int ret;

	memset(pol, 0, sizeof(*pol));
	ret = yamlx_load(&y, path, err);
	if (ret)
		return ret;
	pol->path = strdup(path);
	ret = pol->path ? parse_policy(&y, pol, err) : yamlx_nomem(&y, err);
	yamlx_free(&y);
	if (ret)
		policy_free(pol);
	return ret;
}

void policy_free(struct policy *pol)
{
	int i, j;

	for (i = 0; i < pol->nr_services; i++) {
		free(pol->services[i].name);
		free(pol->services[i].addrs);
		free(pol->services[i].ports);
	}
	for (i = 0; i < pol->nr_roles; i++) {
		for (j = 0; j < pol->roles[i].nr_claims; j++) {
			free(pol->roles[i].claim_keys[j]);
			free(pol->roles[i].claim_values[j]);
		}
		free(pol->roles[i].name);
		free(pol->roles[i].claim_keys);
		free(pol->roles[i].claim_values);
	}
	for (i = 0; i < pol->nr_rules; i++) {
		free(pol->rules[i].name);
		free(pol->rules[i].from_value);
		free(pol->rules[i].to);
	}
	free(pol->services);
	free(pol->roles);
	free(pol->rules);
	free(pol->path);
	memset(pol, 0, sizeof(*pol));
}

int policy_check_config(const struct policy *pol, const struct config *cfg,
			struct errmsg *err)
{
	const struct workload_cfg *w;
	const struct policy_rule *r;
	struct spiffe_id sid;
	const char *why;

	/* Indexed: an empty list is a NULL array, and NULL + 0 is undefined
	 * behaviour. */
	for (int j = 0; j < cfg->nr_workloads; j++) {
		w = &cfg->workloads[j];
		for (int i = 0; i < w->nr_roles; i++) {
			if (find_role(pol, w->roles[i]) < 0)
				return errmsg_set(err, -EINVAL,
						  "%s:%d: role \"%s\" is not defined in %s",
						  cfg->path, w->roles_line, w->roles[i], pol->path);
		}
	}
	for (int j = 0; j < pol->nr_rules; j++) {
		r = &pol->rules[j];
		if (r->from != FROM_WORKLOAD)
			continue;
		if (spiffe_id_parse(r->from_value, &sid, &why))
			return errmsg_set(err, -EINVAL, "%s:%d: bad SPIFFE ID \"%s\": %s",
					  pol->path, r->line, r->from_value, why);
		if (!spiffe_id_in_domain(&sid, cfg->trust_domain))
			return errmsg_set(err, -EINVAL,
					  "%s:%d: workload \"%s\" is not in trust domain "
					  "\"%s\" (%s)",
					  pol->path, r->line, r->from_value, cfg->trust_domain,
					  cfg->path);
	}
	return 0;
}


const char *policy_action_name(uint32_t action)
{
	switch (action) {
	case SLUICE_ACT_DENY:
		return "deny";
	case SLUICE_ACT_ALLOW:
		return "allow";
	case SLUICE_ACT_REDIRECT:
		return "redirect";
	default:
		return "unknown";
	}
}

const char *policy_reason_name(uint32_t reason)
{
	static const char *const names[SLUICE_REASON_MAX] = {
		[SLUICE_REASON_NONE] = "none",
		[SLUICE_REASON_POLICY_DENY] = "policy-deny",
		[SLUICE_REASON_DEFAULT_DENY] = "default-deny",
		[SLUICE_REASON_AGENT_DOWN] = "agent-down",
		[SLUICE_REASON_BYPASS] = "bypass",
		[SLUICE_REASON_NO_POLICY] = "no-policy",
		[SLUICE_REASON_NOT_VIA_MESH] = "not-via-mesh",
	};

	return reason < SLUICE_REASON_MAX ? names[reason] : "unknown";
}


static bool claim_matches(const json_t *claim, const char *want)
{
	const json_t *v;
	size_t i;

	if (json_is_string(claim))
		return !strcmp(json_string_value(claim), want);
	json_array_foreach(claim, i, v) {
		if (json_is_string(v) && !strcmp(json_string_value(v), want))
			return true;
	}
	return false;
}

int policy_roles_from_claims(const struct policy *pol, const json_t *claims, const char **roles,
			     int max)
{
	int n = 0;

	for (int i = 0; i < pol->nr_roles && n < max; i++) {
		const struct policy_role *role = &pol->roles[i];
		bool all = role->nr_claims > 0;

		for (int c = 0; c < role->nr_claims && all; c++)
			all = claim_matches(json_object_get(claims, role->claim_keys[c]),
					    role->claim_values[c]);
		if (all)
			roles[n++] = role->name;
	}
	return n;
}
