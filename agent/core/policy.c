// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l7.h"
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
		else if (!strcmp(s, "http"))
			svc->http = true;
		else if (strcmp(s, "tcp"))
			return yamlx_error(y, f[S_PROTOCOL].v.node, err,
					   "unknown protocol \"%s\" (expected tcp, udp or http)",
					   s);
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

/* Checks one L7 list item and writes its stored form to buf; -EINVAL with
 * the message at node otherwise. */
typedef int (*l7_item_fn)(struct yamlx *y, const yaml_node_t *node, const char *s, char *buf,
			  size_t len, struct errmsg *err);

static bool tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/*
 * Methods are case-sensitive (RFC 9110 9.1): "get" is a method of its own
 * that no client means by GET, so lower case is refused rather than
 * folded, and a rule says exactly what it matches.
 */
static int check_method(struct yamlx *y, const yaml_node_t *node, const char *s, char *buf,
			size_t len, struct errmsg *err)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 'a' && s[i] <= 'z')
			return yamlx_error(y, node, err,
					   "bad method \"%s\": methods are case-sensitive; "
					   "write it in upper case",
					   s);
		if (!tchar(s[i]))
			return yamlx_error(y, node, err,
					   "bad method \"%s\": expected a token such as GET", s);
	}
	if (n >= L7_METHOD_MAX || n >= len)
		return yamlx_error(y, node, err, "bad method \"%s\": longer than %d characters",
				   s, L7_METHOD_MAX - 1);
	memcpy(buf, s, n + 1);
	return 0;
}

/* Normalised like a request path, so a pattern means what it would match;
 * then '*' only as a whole segment and '**' only as the last one. */
static int check_path(struct yamlx *y, const yaml_node_t *node, const char *s, char *buf,
		      size_t len, struct errmsg *err)
{
	struct errmsg why = {};
	const char *p, *seg;
	size_t n;

	if (strchr(s, '?') || strchr(s, '#'))
		return yamlx_error(y, node, err, "bad path \"%s\": %s", s,
				   "a query or fragment cannot be matched");
	if (l7_path_normalize(s, strlen(s), buf, len, &why))
		return yamlx_error(y, node, err, "bad path \"%s\": %s", s, why.msg);
	for (p = buf; *p; p = seg + n) {
		seg = p + 1;
		n = strcspn(seg, "/");
		if (!memchr(seg, '*', n) || n == 1)
			continue;
		if (n != 2 || seg[0] != '*' || seg[1] != '*')
			return yamlx_error(y, node, err, "bad path \"%s\": %s", s,
					   "'*' only as a whole segment, or \"**\" as the last");
		if (seg[2])
			return yamlx_error(y, node, err, "bad path \"%s\": %s", s,
					   "\"**\" only as the last segment");
	}
	return 0;
}

static bool label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* A DNS name, lower-cased (names are case-insensitive), optionally
 * "*." first for any one or more labels in front of the rest. */
static int check_host(struct yamlx *y, const yaml_node_t *node, const char *s, char *buf,
		      size_t len, struct errmsg *err)
{
	size_t n = strlen(s), i, label = 0, start;

	start = !strncmp(s, "*.", 2) ? 2 : 0;
	if (n - start < 1 || n - start > 253 || n >= len)
		goto bad;
	for (i = 0; i < n; i++) {
		buf[i] = s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i];
		if (i < start)
			continue;
		if (buf[i] == '.') {
			if (!label || buf[i - 1] == '-')
				goto bad;
			label = 0;
		} else if (!label_char(buf[i]) || (!label && buf[i] == '-') || ++label > 63) {
			goto bad;
		}
	}
	if (!label || buf[n - 1] == '-')
		goto bad;
	buf[n] = '\0';
	return 0;
bad:
	return yamlx_error(y, node, err, "bad host \"%s\": %s", s,
			   "expected a DNS name, optionally starting with \"*.\"");
}

/* A list of distinct items, each checked and stored by fn. */
static int parse_l7_list(struct yamlx *y, const struct yamlx_val *v, const char *what, int max,
			 const char *if_empty, l7_item_fn fn, char ***out, int *nr,
			 struct errmsg *err)
{
	char buf[L7_PATH_MAX];
	struct yamlx_val item;
	struct yamlx_list l;
	const char *s;
	int ret, i, j;

	ret = yamlx_list(y, v, true, max, &l, err);
	if (ret)
		return ret;
	if (!l.nr)
		return yamlx_error(y, v->node, err, "empty %s: %s", v->what, if_empty);
	*out = calloc(l.nr, sizeof(**out));
	if (!*out)
		return yamlx_nomem(y, err);
	for (i = 0; i < l.nr; i++) {
		ret = yamlx_list_str(y, &l, i, &item, &s, err);
		if (ret)
			return ret;
		ret = fn(y, item.node, s, buf, sizeof(buf), err);
		if (ret)
			return ret;
		for (j = 0; j < *nr; j++) {
			if (!strcmp((*out)[j], buf))
				return yamlx_error(y, item.node, err, "duplicate %s \"%s\"", what,
						   buf);
		}
		(*out)[i] = strdup(buf);
		if (!(*out)[i])
			return yamlx_nomem(y, err);
		(*nr)++;
	}
	return 0;
}

/* L7 conditions are decided where HTTP is parsed, so only for services
 * that are HTTP; on a tcp or udp service they could never match. */
static int check_l7_services(struct yamlx *y, const yaml_node_t *node, const struct policy *pol,
			     const struct policy_rule *rule, struct errmsg *err)
{
	const struct policy_service *svc;

	for (int j = 0; j < rule->nr_to; j++) {
		svc = &pol->services[rule->to[j]];
		if (svc->http)
			continue;
		if (rule->name)
			return yamlx_error(y, node, err,
					   "rule \"%s\": methods/paths/hosts/via need protocol: http "
					   "services; \"%s\" is %s",
					   rule->name, svc->name,
					   svc->proto == IPPROTO_UDP ? "udp" : "tcp");
		return yamlx_error(y, node, err,
				   "rule: methods/paths/hosts/via need protocol: http services; "
				   "\"%s\" is %s",
				   svc->name, svc->proto == IPPROTO_UDP ? "udp" : "tcp");
	}
	return 0;
}

/* The only place a request comes in from, for now. */
static int parse_via(const struct yamlx *y, const struct yamlx_val *v, struct policy_rule *rule,
		     struct errmsg *err)
{
	const char *s;
	int ret;

	ret = yamlx_str(y, v, &s, err);
	if (ret)
		return ret;
	if (strcmp(s, "edge"))
		return yamlx_error(y, v->node, err, "unknown via \"%s\" (expected edge)", s);
	rule->via_edge = true;
	return 0;
}

static const char match_any[] = "omit it to match any";
static const char need_host[] = "name at least one host";

/* f: the methods, paths, hosts and via fields, in that order. */
static int parse_rule_l7(struct yamlx *y, const struct yamlx_field *f, const struct policy *pol,
			 struct policy_rule *rule, struct errmsg *err)
{
	const yaml_node_t *first = NULL;
	int ret = 0;

	if (f[0].v.node)
		ret = parse_l7_list(y, &f[0].v, "method", POLICY_MAX_L7, match_any, check_method,
				    &rule->methods, &rule->nr_methods, err);
	if (!ret && f[1].v.node)
		ret = parse_l7_list(y, &f[1].v, "path", POLICY_MAX_L7, match_any, check_path,
				    &rule->paths, &rule->nr_paths, err);
	if (!ret && f[2].v.node)
		ret = parse_l7_list(y, &f[2].v, "host", POLICY_MAX_L7, match_any, check_host,
				    &rule->hosts, &rule->nr_hosts, err);
	if (!ret && f[3].v.node)
		ret = parse_via(y, &f[3].v, rule, err);
	if (ret)
		return ret;
	for (int i = 3; i >= 0; i--)
		first = f[i].key_node ? f[i].key_node : first;
	return first ? check_l7_services(y, first, pol, rule, err) : 0;
}

/* mode: enforce | audit, into *audit. */
static int parse_mode(const struct yamlx *y, const struct yamlx_val *v, bool *audit,
		      struct errmsg *err)
{
	const char *s;
	int ret;

	ret = yamlx_str(y, v, &s, err);
	if (ret)
		return ret;
	if (strcmp(s, "enforce") && strcmp(s, "audit"))
		return yamlx_error(y, v->node, err, "unknown mode \"%s\" (expected enforce or audit)",
				   s);
	*audit = !strcmp(s, "audit");
	return 0;
}

static int parse_rule(struct yamlx *y, const struct yamlx_val *v, void *elem, void *ctxp,
		      struct errmsg *err)
{
	enum { U_NAME, U_FROM, U_TO, U_ACTION, U_METHODS, U_PATHS, U_HOSTS, U_VIA, U_MODE, NR_U };
	struct yamlx_field f[NR_U] = {
		[U_NAME] = { .key = "name" },
		[U_FROM] = { .key = "from", .required = true },
		[U_TO] = { .key = "to", .required = true },
		[U_ACTION] = { .key = "action", .required = true },
		[U_METHODS] = { .key = "methods" },
		[U_PATHS] = { .key = "paths" },
		[U_HOSTS] = { .key = "hosts" },
		[U_VIA] = { .key = "via" },
		[U_MODE] = { .key = "mode" },
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
	if (f[U_MODE].v.node) {
		ret = parse_mode(y, &f[U_MODE].v, &rule->audit, err);
		if (ret)
			return ret;
	}
	/* An audit policy enforces nothing: no rule's mode makes it. */
	rule->audit |= ctx->pol->audit;
	return parse_rule_l7(y, f + U_METHODS, ctx->pol, rule, err);
}

static int parse_timeout(const struct yamlx *y, const struct yamlx_val *v, unsigned int *out,
			 struct errmsg *err)
{
	const char *s;
	int ret;

	ret = parse_duration(y, v, out, err);
	if (ret || (*out >= 100 && *out <= 3600 * 1000))
		return ret;
	yamlx_str(y, v, &s, err);
	return yamlx_error(y, v->node, err, "duration \"%s\" for %s: %s", s, v->what,
			   "expected 100ms to 1h");
}

static int parse_tls(struct yamlx *y, const struct yamlx_val *v, struct policy_edge *edge,
		     struct errmsg *err)
{
	enum { T_CERT, T_KEY, NR_T };
	struct yamlx_field f[NR_T] = {
		[T_CERT] = { .key = "cert", .required = true },
		[T_KEY] = { .key = "key", .required = true },
	};
	int ret;

	ret = yamlx_fields(y, v, f, NR_T, err);
	if (ret)
		return ret;
	ret = yamlx_strdup(y, &f[T_CERT].v, &edge->tls_cert, err);
	if (ret)
		return ret;
	return yamlx_strdup(y, &f[T_KEY].v, &edge->tls_key, err);
}

/* What a prefix may hold: it is written into nginx's config as a location,
 * unquoted, so nothing that nginx's parser or a regex would read. */
static bool prefix_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("-._~/:@+,=", c));
}

static int parse_route(struct yamlx *y, const struct yamlx_val *v, void *elem, void *ctxp,
		       struct errmsg *err)
{
	enum { E_PREFIX, E_SERVICE, NR_E };
	struct yamlx_field f[NR_E] = {
		[E_PREFIX] = { .key = "prefix", .required = true },
		[E_SERVICE] = { .key = "service", .required = true },
	};
	const struct parse_ctx *ctx = ctxp;
	struct policy_edge_route *route = elem, *prev;
	const struct policy_service *svc;
	char buf[L7_PATH_MAX];
	struct errmsg why = {};
	const char *s;
	int ret;

	route->line = yamlx_line(v->node);
	route->service = -1;
	ret = yamlx_fields(y, v, f, NR_E, err);
	if (ret)
		return ret;
	ret = yamlx_str(y, &f[E_PREFIX].v, &s, err);
	if (ret)
		return ret;
	if (l7_path_normalize(s, strlen(s), buf, sizeof(buf), &why))
		return yamlx_error(y, f[E_PREFIX].v.node, err, "bad prefix \"%s\": %s", s,
				   why.msg);
	if (strcmp(s, buf))
		return yamlx_error(y, f[E_PREFIX].v.node, err,
				   "bad prefix \"%s\": not normalised (write \"%s\")", s, buf);
	for (const char *p = s; *p; p++) {
		if (!prefix_char(*p))
			return yamlx_error(y, f[E_PREFIX].v.node, err, "bad prefix \"%s\": %s", s,
					   "only letters, digits and -._~/:@+,=");
	}
	for (prev = ctx->pol->edge.routes; prev < route; prev++) {
		if (!strcmp(prev->prefix, s))
			return yamlx_error(y, f[E_PREFIX].v.node, err,
					   "duplicate prefix \"%s\" (first at line %d)", s,
					   prev->line);
	}
	route->prefix = strdup(s);
	if (!route->prefix)
		return yamlx_nomem(y, err);
	ret = yamlx_str(y, &f[E_SERVICE].v, &s, err);
	if (ret)
		return ret;
	route->service = find_service(ctx, s);
	if (route->service < 0)
		return yamlx_error(y, f[E_SERVICE].v.node, err, "unknown service \"%s\"", s);
	svc = &ctx->pol->services[route->service];
	if (!svc->http)
		return yamlx_error(y, f[E_SERVICE].v.node, err,
				   "route \"%s\": service \"%s\" is %s, not protocol: http",
				   route->prefix, s, svc->proto == IPPROTO_UDP ? "udp" : "tcp");
	return 0;
}

static int parse_edge(struct yamlx *y, const struct yamlx_val *v, struct parse_ctx *ctx,
		      struct errmsg *err)
{
	enum { G_HOSTS, G_PORT, G_TLS, G_MAX_BODY, G_TIMEOUT, G_ROUTES, NR_G };
	struct yamlx_field f[NR_G] = {
		[G_HOSTS] = { .key = "hosts", .required = true },
		[G_PORT] = { .key = "port" },
		[G_TLS] = { .key = "tls" },
		[G_MAX_BODY] = { .key = "max_body" },
		[G_TIMEOUT] = { .key = "timeout" },
		[G_ROUTES] = { .key = "routes", .required = true },
	};
	struct policy_edge *edge = &ctx->pol->edge;
	unsigned int port;
	int ret;

	edge->present = true;
	edge->line = yamlx_line(v->node);
	edge->max_body = 1 << 20;
	edge->timeout_ms = 60 * 1000;
	ret = yamlx_fields(y, v, f, NR_G, err);
	if (ret)
		return ret;
	ret = parse_l7_list(y, &f[G_HOSTS].v, "host", POLICY_MAX_EDGE_HOSTS, need_host, check_host,
			    &edge->hosts, &edge->nr_hosts, err);
	if (ret)
		return ret;
	if (f[G_TLS].v.node) {
		ret = parse_tls(y, &f[G_TLS].v, edge, err);
		if (ret)
			return ret;
	}
	edge->port = edge->tls_cert ? 443 : 80;
	if (f[G_PORT].v.node) {
		ret = yamlx_uint(y, &f[G_PORT].v, 1, 65535, &port, err);
		if (ret)
			return ret;
		edge->port = port;
	}
	if (f[G_MAX_BODY].v.node) {
		ret = yamlx_size(y, &f[G_MAX_BODY].v, &edge->max_body, err);
		if (ret)
			return ret;
	}
	if (f[G_TIMEOUT].v.node) {
		ret = parse_timeout(y, &f[G_TIMEOUT].v, &edge->timeout_ms, err);
		if (ret)
			return ret;
	}
	ret = yamlx_array(y, &f[G_ROUTES].v, POLICY_MAX_EDGE_ROUTES, sizeof(*edge->routes),
			  (void **)&edge->routes, &edge->nr_routes, parse_route, ctx, err);
	if (ret)
		return ret;
	if (!edge->nr_routes)
		return yamlx_error(y, f[G_ROUTES].v.node, err,
				   "edge needs at least one route");
	return 0;
}

static int parse_policy(struct yamlx *y, struct policy *pol, struct errmsg *err)
{
	enum { P_VERSION, P_DEFAULT, P_MODE, P_ROLES, P_SERVICES, P_RULES, P_EDGE, NR_P };
	struct yamlx_field f[NR_P] = {
		[P_VERSION] = { .key = "version", .required = true },
		[P_DEFAULT] = { .key = "default" },
		[P_MODE] = { .key = "mode" },
		[P_ROLES] = { .key = "roles" },
		[P_SERVICES] = { .key = "services" },
		[P_RULES] = { .key = "rules" },
		[P_EDGE] = { .key = "edge" },
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
	if (f[P_MODE].v.node) {
		ret = parse_mode(y, &f[P_MODE].v, &pol->audit, err);
		if (ret)
			return ret;
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
	if (!f[P_RULES].v.node && !f[P_EDGE].v.node)
		return 0;
	ctx.svc_index = calloc(pol->nr_services ? pol->nr_services : 1, sizeof(*ctx.svc_index));
	if (!ctx.svc_index)
		return yamlx_nomem(y, err);
	for (i = 0; i < pol->nr_services; i++) {
		ctx.svc_index[i].name = pol->services[i].name;
		ctx.svc_index[i].idx = i;
	}
	qsort(ctx.svc_index, pol->nr_services, sizeof(*ctx.svc_index), svc_ref_cmp);
	ret = 0;
	if (f[P_RULES].v.node)
		ret = yamlx_array(y, &f[P_RULES].v, POLICY_MAX_RULES, sizeof(*pol->rules),
				  (void **)&pol->rules, &pol->nr_rules, parse_rule, &ctx, err);
	if (!ret && f[P_EDGE].v.node)
		ret = parse_edge(y, &f[P_EDGE].v, &ctx, err);
	free(ctx.svc_index);
	return ret;
}

static int load(struct yamlx *y, const char *path, struct policy *pol, struct errmsg *err)
{
	int ret;

	pol->path = strdup(path);
	ret = pol->path ? parse_policy(y, pol, err) : yamlx_nomem(y, err);
	yamlx_free(y);
	if (ret)
		policy_free(pol);
	return ret;
}

int policy_load(const char *path, struct policy *pol, struct errmsg *err)
{
	struct yamlx y;
	int ret;

	memset(pol, 0, sizeof(*pol));
	ret = yamlx_load(&y, path, err);
	return ret ? ret : load(&y, path, pol, err);
}

int policy_load_buf(const char *name, const char *buf, size_t len, struct policy *pol,
		    struct errmsg *err)
{
	struct yamlx y;
	int ret;

	memset(pol, 0, sizeof(*pol));
	ret = yamlx_load_buf(&y, name, buf, len, err);
	return ret ? ret : load(&y, name, pol, err);
}

static void free_strings(char **s, int nr)
{
	for (int i = 0; i < nr; i++)
		free(s[i]);
	free(s);
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
		free_strings(pol->rules[i].methods, pol->rules[i].nr_methods);
		free_strings(pol->rules[i].paths, pol->rules[i].nr_paths);
		free_strings(pol->rules[i].hosts, pol->rules[i].nr_hosts);
	}
	free_strings(pol->edge.hosts, pol->edge.nr_hosts);
	for (i = 0; i < pol->edge.nr_routes; i++)
		free(pol->edge.routes[i].prefix);
	free(pol->edge.routes);
	free(pol->edge.tls_cert);
	free(pol->edge.tls_key);
	free(pol->services);
	free(pol->roles);
	free(pol->rules);
	free(pol->path);
	memset(pol, 0, sizeof(*pol));
}

/* Appends s to buf[0..len) at n as snprintf() would; returns the new n. */
static size_t note_add(char *buf, size_t len, size_t n, const char *s)
{
	if (n < len)
		snprintf(buf + n, len - n, "%s", s);
	return n + strlen(s);
}

size_t policy_rule_mesh_note(const struct policy *pol, const struct policy_rule *r, char *buf,
			     size_t len)
{
	size_t n = note_add(buf, len, 0, r->via_edge ? "decided per request through the edge"
						     : "decided per request");

	n = note_add(buf, len, n, " (at the edge, and by the agent in front of ");
	for (int j = 0; j < r->nr_to; j++) {
		if (j)
			n = note_add(buf, len, n, ", ");
		n = note_add(buf, len, n, pol->services[r->to[j]].name);
	}
	return note_add(buf, len, n, policy_rule_per_connection(r)
					     ? "); at connect() it lets connections through"
					     : "); it refuses no connection");
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
	case SLUICE_ACT_ALLOW_WOULD_DENY:
		return "would-deny";
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
		[SLUICE_REASON_WOULD_DENY] = "would-deny",
	};

	return reason < SLUICE_REASON_MAX ? names[reason] : "unknown";
}

void policy_rule_label(const char *name, uint32_t number, char *buf, size_t len)
{
	if (name)
		snprintf(buf, len, "%s", name);
	else if (number)
		snprintf(buf, len, "rule-%u", number);
	else
		snprintf(buf, len, "default");
}

int policy_audit_rules(const struct policy *pol)
{
	int n = 0;

	for (int i = 0; i < pol->nr_rules; i++)
		n += pol->rules[i].audit;
	return n;
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
