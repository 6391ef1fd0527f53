// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The verdict comes from policy_decide() and policy_decide_http(); what is
 * computed here is only the account: the candidates, ranked by the same
 * keys in the same order, and set aside one precedence step at a time.
 * tests/unit/test_policy_explain.c holds the two to each other.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "policy_explain.h"
#include "strbuf.h"
#include "utf8.h"

/* The ranking keys a candidate carries, compared in this order. */
enum {
	K_PORT,				/* names the destination port */
	K_PREFIX,			/* longest prefix holding the address, + 1 */
	K_PATH_CLASS,			/* 0 no paths, 1 pattern, 2 exact */
	K_LITERALS,
	K_FEW_WILDCARDS,		/* minus the wildcards */
	K_SPEC,				/* policy_rule_specificity() */
	K_CONDITIONS,			/* methods and hosts present, 0-2 */
	K_DENY,				/* policy_rule_deny_level() */
	NR_KEYS,
};

struct cand {
	int rule;
	int service;			/* the rule's `to` that holds the destination */
	const struct cidr *cidr;	/* its longest prefix holding the address */
	const char *pattern;		/* the rule's best path match, NULL for none */
	int key[NR_KEYS];
	bool out;			/* set aside */
};

/* One precedence step: the keys [first, last] it compares. */
struct stage {
	const char *step;
	int first, last;
	const char *why;
};

static const struct stage l4_stages[] = {
	{ "port", K_PORT, K_PORT, "a rule naming the destination port beats one for any port" },
	{ "prefix", K_PREFIX, K_PREFIX, "the longest destination prefix wins" },
	{ "specificity", K_SPEC, K_SPEC,
	  "the most specific source wins (workload, then role or kind, then any)" },
	{ "deny", K_DENY, K_DENY,
	  "at equal specificity deny beats an audit-mode deny, which beats allow" },
};

static const struct stage l7_stages[] = {
	{ "path", K_PATH_CLASS, K_FEW_WILDCARDS,
	  "the most specific path match wins (exact, then more literal segments, then fewer "
	  "wildcards; no paths last)" },
	{ "specificity", K_SPEC, K_SPEC,
	  "the most specific source wins (workload, then role or kind, then any)" },
	{ "conditions", K_CONDITIONS, K_CONDITIONS, "more of methods and hosts wins" },
	{ "deny", K_DENY, K_DENY, "deny beats an audit-mode deny, which beats allow" },
};

struct explain {
	const struct policy *pol;
	const struct policy_identity *src;
	const struct policy_dest *dest;
	json_t *steps;
	struct strbuf b;		/* the detail of the step being written */
	bool oom;
};

const char *policy_explain_rule(const struct policy *pol, int rule, char *buf, size_t len)
{
	if (rule < 0)
		snprintf(buf, len, "default");
	else if (pol->rules[rule].name)
		snprintf(buf, len, "%s", pol->rules[rule].name);
	else
		snprintf(buf, len, "#%d", rule + 1);
	return buf;
}

static int find_role(const struct policy *pol, const char *name)
{
	for (int i = 0; i < pol->nr_roles; i++) {
		if (!strcmp(pol->roles[i].name, name))
			return i;
	}
	return -1;
}

static void source_role(const struct policy *pol, int role, struct policy_source *src)
{
	src->roles[0] = pol->roles[role].name;
	src->id.roles = src->roles;
	src->id.nr_roles = 1;
}

int policy_source_parse(const char *arg, const struct policy *pol, const struct config *cfg,
			struct policy_source *src, struct errmsg *err)
{
	const struct workload_cfg *w;
	struct spiffe_id sid;
	const char *why;
	int role;

	memset(src, 0, sizeof(*src));
	src->id.id = 1;
	if (!strncmp(arg, "spiffe://", 9)) {
		if (spiffe_id_parse(arg, &sid, &why))
			return errmsg_set(err, -EINVAL, "bad SPIFFE ID \"%s\": %s", arg, why);
		snprintf(src->spiffe_id, sizeof(src->spiffe_id), "%s", arg);
		src->id.spiffe_id = src->spiffe_id;
		src->id.kind = sid.kind;
		w = cfg ? config_workload_by_id(cfg, arg) : NULL;
		if (w) {
			src->id.roles = w->roles;
			src->id.nr_roles = w->nr_roles;
		}
		return 0;
	}
	if (!strncmp(arg, "kind:", 5)) {
		src->id.kind = workload_kind_parse(arg + 5);
		if (!src->id.kind)
			return errmsg_set(err, -EINVAL,
					  "unknown kind \"%s\" (expected job, notebook, cluster or "
					  "service)",
					  arg + 5);
		return 0;
	}
	if (!strncmp(arg, "role:", 5)) {
		role = find_role(pol, arg + 5);
		if (role < 0)
			return errmsg_set(err, -EINVAL, "role \"%s\" is not defined in %s",
					  arg + 5, pol->path);
		source_role(pol, role, src);
		return 0;
	}
	role = find_role(pol, arg);
	if (role < 0)
		return errmsg_set(err, -EINVAL,
				  "unknown source \"%s\": expected a SPIFFE ID, role:NAME, "
				  "kind:KIND or a role of %s",
				  arg, pol->path);
	source_role(pol, role, src);
	return 0;
}

static int find_service(const struct policy *pol, const char *name)
{
	for (int i = 0; i < pol->nr_services; i++) {
		if (!strcmp(pol->services[i].name, name))
			return i;
	}
	return -1;
}

static bool port_named(const struct policy *pol, uint8_t proto, uint16_t port)
{
	for (int i = 0; i < pol->nr_services; i++) {
		const struct policy_service *s = &pol->services[i];

		for (int p = 0; p < s->nr_ports && s->proto == proto; p++) {
			if (s->ports[p] == port)
				return true;
		}
	}
	return false;
}

/* A port that stands for "any port": one no service names, so that no
 * named-port service of another rule claims the destination instead. */
static uint16_t any_port(const struct policy *pol, uint8_t proto)
{
	uint16_t port = 1;

	while (port < 65535 && port_named(pol, proto, port))
		port++;
	return port;
}

static void dest_of_service(const struct policy *pol, int i, struct policy_dest *d)
{
	const struct policy_service *svc = &pol->services[i];
	const struct cidr *a;

	d->proto = svc->proto;
	d->port = svc->nr_ports ? svc->ports[0] : any_port(pol, svc->proto);
	d->named = i;
	for (a = svc->addrs; a < svc->addrs + svc->nr_addrs; a++) {
		d->family = a->family;
		memcpy(d->addr, a->addr, sizeof(d->addr));
		d->service = policy_service_at(pol, d->family, d->addr, d->port, d->proto);
		if (d->service == i)
			return;
	}
	/* Every address is inside a more specific service: the first one, then,
	 * and the destination step says whose it is. */
	d->family = svc->addrs[0].family;
	memcpy(d->addr, svc->addrs[0].addr, sizeof(d->addr));
	d->service = policy_service_at(pol, d->family, d->addr, d->port, d->proto);
}

static int dest_of_address(const struct policy *pol, const char *to, struct policy_dest *d,
			   struct errmsg *err)
{
	const char *slash = strchr(to, '/');
	size_t len = slash ? (size_t)(slash - to) : strlen(to);
	struct sockaddr_storage ss;
	char buf[SOCKADDR_STR_LEN];

	if (slash && strcmp(slash, "/tcp") && strcmp(slash, "/udp"))
		return errmsg_set(err, -EINVAL, "bad destination \"%s\": the protocol is /tcp or "
				  "/udp", to);
	if (len >= sizeof(buf))
		goto bad;
	memcpy(buf, to, len);
	buf[len] = '\0';
	if (parse_sockaddr(buf, &ss))
		goto bad;
	sockaddr_unmap(&ss);
	d->family = ss.ss_family;
	memcpy(d->addr, sockaddr_words(&ss), d->family == AF_INET ? 4 : 16);
	d->port = sockaddr_port(&ss);
	if (!d->port)
		return errmsg_set(err, -EINVAL, "bad destination \"%s\": port 0", to);
	d->proto = slash && !strcmp(slash, "/udp") ? IPPROTO_UDP : IPPROTO_TCP;
	d->named = -1;
	d->service = policy_service_at(pol, d->family, d->addr, d->port, d->proto);
	return 0;
bad:
	return errmsg_set(err, -EINVAL,
			  "bad destination \"%s\": expected a service of %s or ADDR:PORT "
			  "(a.b.c.d:p or [v6]:p, optionally with /tcp or /udp)",
			  to, pol->path);
}

int policy_dest_parse(const struct policy *pol, const char *to, bool http,
		      struct policy_dest *dest, struct errmsg *err)
{
	int i = find_service(pol, to), ret;
	struct in_addr v4;

	memset(dest, 0, sizeof(*dest));
	if (i >= 0) {
		dest_of_service(pol, i, dest);
	} else if (!strpbrk(to, ":/") && inet_pton(AF_INET, to, &v4) != 1) {
		/* No service name holds ':' or '/', nor is an IPv4 address. */
		return errmsg_set(err, -EINVAL, "unknown service \"%s\" in %s", to, pol->path);
	} else {
		ret = dest_of_address(pol, to, dest, err);
		if (ret)
			return ret;
	}
	i = dest->named >= 0 ? dest->named : dest->service;
	if (http && (i < 0 || !pol->services[i].http))
		return errmsg_set(err, -EINVAL,
				  "\"%s\" is not a protocol: http service (a method and path "
				  "need one)",
				  to);
	return 0;
}

static bool tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

int policy_request_parse(const char *method, const char *path, char norm[L7_PATH_MAX],
			 struct errmsg *err)
{
	struct errmsg why = {};
	size_t n = strlen(method);

	for (size_t i = 0; i < n; i++) {
		if (!tchar(method[i]))
			return errmsg_set(err, -EINVAL,
					  "bad method \"%s\": expected a token such as GET", method);
	}
	if (!n || n >= L7_METHOD_MAX)
		return errmsg_set(err, -EINVAL, "bad method \"%s\": expected 1-%d characters",
				  method, L7_METHOD_MAX - 1);
	if (l7_path_normalize(path, strlen(path), norm, L7_PATH_MAX, &why))
		return errmsg_set(err, -EINVAL, "bad path \"%s\": %s", path, why.msg);
	/* The documents are JSON, which holds only UTF-8. */
	for (size_t i = 0, len = strlen(norm), c; i < len; i += c) {
		c = utf8_char_len(norm + i, len - i);
		if (!c)
			return errmsg_set(err, -EINVAL, "bad path \"%s\": not UTF-8 once decoded",
					  path);
	}
	return 0;
}

/* Appends one step whose detail is what b holds, and empties b. */
static void step_from(struct explain *ex, struct strbuf *b, const char *name)
{
	char *s = strbuf_detach(b, NULL);

	if (!s || json_array_append_new(ex->steps, json_pack("{s:s, s:s}", "step", name,
								 "detail", s)))
		ex->oom = true;
	free(s);
}

static void step(struct explain *ex, const char *name)
{
	step_from(ex, &ex->b, name);
}

/* "name (line N", for more inside the parenthesis. */
static void put_rule_open(struct explain *ex, int r)
{
	char name[80];

	strbuf_printf(&ex->b, "%s (line %d", policy_explain_rule(ex->pol, r, name, sizeof(name)),
		      ex->pol->rules[r].line);
}

static void put_rule(struct explain *ex, int r)
{
	put_rule_open(ex, r);
	strbuf_puts(&ex->b, ")");
}

static void put_from(struct strbuf *b, const struct policy_rule *r)
{
	static const char *const from[] = {
		[FROM_WORKLOAD] = "workload", [FROM_KIND] = "kind", [FROM_ROLE] = "role",
	};

	if (r->from == FROM_ANY)
		strbuf_puts(b, "any");
	else
		strbuf_printf(b, "%s %s", from[r->from], r->from_value);
}

static void put_cidr(struct strbuf *b, const struct cidr *c)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(c->family, c->addr, a, sizeof(a));
	strbuf_printf(b, "%s/%d", a, c->prefixlen);
}

static void put_list(struct strbuf *b, char *const *s, int nr)
{
	for (int i = 0; i < nr; i++)
		strbuf_printf(b, "%s%s", i ? ", " : "", s[i]);
}

static const char *action_name(const struct policy_rule *r)
{
	return r->allow ? "allow" : r->audit ? "deny (mode: audit)" : "deny";
}

static const char *conditions_name(int c, const struct policy_rule *r)
{
	if (c == 2)
		return "methods and hosts";
	if (c == 1)
		return r->nr_methods ? "methods" : "hosts";
	return "neither methods nor hosts";
}

/* What candidate c is at stage st, as the stage's detail names it. */
static void put_value(struct explain *ex, const struct cand *c, const struct stage *st)
{
	const struct policy_rule *r = &ex->pol->rules[c->rule];

	switch (st->first) {
	case K_PORT:
		if (c->key[K_PORT])
			strbuf_printf(&ex->b, "port %u", ex->dest->port);
		else
			strbuf_puts(&ex->b, "any port");
		break;
	case K_PREFIX:
		put_cidr(&ex->b, c->cidr);
		break;
	case K_PATH_CLASS:
		strbuf_puts(&ex->b, c->pattern ? c->pattern : "no paths");
		break;
	case K_SPEC:
		put_from(&ex->b, r);
		break;
	case K_CONDITIONS:
		strbuf_puts(&ex->b, conditions_name(c->key[K_CONDITIONS], r));
		break;
	case K_DENY:
		strbuf_puts(&ex->b, action_name(r));
		break;
	}
}

static int key_cmp(const struct cand *a, const struct cand *b, int first, int last)
{
	for (int k = first; k <= last; k++) {
		if (a->key[k] != b->key[k])
			return a->key[k] - b->key[k];
	}
	return 0;
}

/* The first candidate still in that ranks highest on st's keys. */
static const struct cand *stage_best(const struct cand *c, int n, const struct stage *st)
{
	const struct cand *best = NULL;

	for (int i = 0; i < n; i++) {
		if (!c[i].out && (!best || key_cmp(&c[i], best, st->first, st->last) > 0))
			best = &c[i];
	}
	return best;
}

/* Sets aside every candidate below the best on st's keys; one step when
 * any was. */
static void stage_run(struct explain *ex, struct cand *c, int n, const struct stage *st)
{
	const struct cand *best = stage_best(c, n, st);
	int aside = 0;

	for (int i = 0; i < n; i++) {
		if (c[i].out || !key_cmp(&c[i], best, st->first, st->last))
			continue;
		if (!aside++) {
			strbuf_printf(&ex->b, "%s: ", st->why);
			put_value(ex, best, st);
			strbuf_puts(&ex->b, "; set aside ");
		} else {
			strbuf_puts(&ex->b, ", ");
		}
		put_rule_open(ex, c[i].rule);
		strbuf_puts(&ex->b, ": ");
		put_value(ex, &c[i], st);
		strbuf_puts(&ex->b, ")");
		c[i].out = true;
	}
	if (aside)
		step(ex, st->step);
}

/* A full tie: the deciders keep the first rule in file order. */
static void stage_order(struct explain *ex, struct cand *c, int n)
{
	bool kept = false;
	int aside = 0;

	for (int i = 0; i < n; i++) {
		if (c[i].out)
			continue;
		if (!kept) {
			kept = true;
			continue;
		}
		strbuf_puts(&ex->b, aside++ ? ", " : "a full tie: the first rule in file order "
						   "decides: set aside ");
		put_rule(ex, c[i].rule);
		c[i].out = true;
	}
	if (aside)
		step(ex, "order");
}

static void eliminate(struct explain *ex, struct cand *c, int n, const struct stage *st,
		      int nr_st)
{
	for (int i = 0; i < nr_st; i++)
		stage_run(ex, c, n, &st[i]);
	stage_order(ex, c, n);
}

#define DEST_LEN (INET6_ADDRSTRLEN + 16)

static const char *fmt_dest(const struct policy_dest *d, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(d->family, d->addr, a, sizeof(a));
	snprintf(buf, len, d->family == AF_INET6 ? "[%s]:%u/%s" : "%s:%u/%s", a, d->port,
		 d->proto == IPPROTO_UDP ? "udp" : "tcp");
	return buf;
}

/* How svc holds the destination: whether it names the port, and its
 * longest prefix holding the address (NULL: it does not hold it). */
static const struct cidr *service_holds(const struct policy_service *svc,
					const struct policy_dest *d, bool *port)
{
	const struct cidr *best = NULL;

	*port = false;
	if (svc->proto != d->proto)
		return NULL;
	for (int p = 0; p < svc->nr_ports && !*port; p++)
		*port = svc->ports[p] == d->port;
	if (svc->nr_ports && !*port)
		return NULL;
	for (const struct cidr *a = svc->addrs; a < svc->addrs + svc->nr_addrs; a++) {
		if ((!best || a->prefixlen > best->prefixlen) && cidr_contains(a, d->family, d->addr))
			best = a;
	}
	return best;
}

/* rule r as an L4 candidate: its best `to` for the destination. */
static bool l4_cand(const struct policy *pol, int r, const struct policy_dest *d, int spec,
		    struct cand *c)
{
	const struct policy_rule *rule = &pol->rules[r];
	const struct cidr *cidr;
	bool port;

	memset(c, 0, sizeof(*c));
	c->rule = r;
	c->service = -1;
	/* As policy_decide(): the first `to` of the highest rank. */
	for (int j = 0; j < rule->nr_to; j++) {
		cidr = service_holds(&pol->services[rule->to[j]], d, &port);
		if (!cidr)
			continue;
		if (c->service >= 0 && (port != c->key[K_PORT] ? port < c->key[K_PORT]
							       : cidr->prefixlen + 1 <= c->key[K_PREFIX]))
			continue;
		c->service = rule->to[j];
		c->cidr = cidr;
		c->key[K_PORT] = port;
		c->key[K_PREFIX] = cidr->prefixlen + 1;
	}
	c->key[K_SPEC] = spec;
	c->key[K_DENY] = policy_rule_deny_level(rule);
	return c->service >= 0;
}

static void put_source(struct explain *ex)
{
	const struct policy_identity *s = ex->src;

	if (s->spiffe_id)
		strbuf_printf(&ex->b, "%s: ", s->spiffe_id);
	strbuf_printf(&ex->b, "kind %s, ", s->kind ? workload_kind_name(s->kind) : "none");
	if (s->nr_roles) {
		strbuf_printf(&ex->b, "role%s ", s->nr_roles > 1 ? "s" : "");
		put_list(&ex->b, s->roles, s->nr_roles);
	} else {
		strbuf_puts(&ex->b, "no roles");
	}
	if (!s->spiffe_id)
		strbuf_puts(&ex->b, ", no SPIFFE ID (matches no workload rule)");
	step(ex, "source");
}

static void put_destination(struct explain *ex)
{
	const struct policy_dest *d = ex->dest;
	const struct policy_service *svc = d->service >= 0 ? &ex->pol->services[d->service] : NULL;
	char buf[DEST_LEN];

	strbuf_puts(&ex->b, fmt_dest(d, buf, sizeof(buf)));
	if (d->named >= 0 && d->named != d->service)
		strbuf_printf(&ex->b, " (standing for %s, whose addresses are all inside more "
			      "specific services)", ex->pol->services[d->named].name);
	if (svc)
		strbuf_printf(&ex->b, " is service %s (line %d)", svc->name, svc->line);
	else
		strbuf_puts(&ex->b, " is no service of the policy");
	step(ex, "destination");
}

/*
 * The rules for the destination that are no candidates: with
 * source_matches false those whose `from` is not the source, with it true
 * those of the source that decide requests, not connections.
 */
static void l4_not_candidates(struct explain *ex, bool source_matches)
{
	const struct policy *pol = ex->pol;
	struct cand c;
	int n = 0;

	for (int r = 0; r < pol->nr_rules; r++) {
		const struct policy_rule *rule = &pol->rules[r];
		int spec = policy_rule_specificity(rule, ex->src);

		if (!spec == source_matches || !l4_cand(pol, r, ex->dest, spec, &c))
			continue;
		if (source_matches && policy_rule_per_connection(rule))
			continue;
		strbuf_puts(&ex->b, n++ ? "; " : "");
		put_rule(ex, r);
		strbuf_puts(&ex->b, ": ");
		if (!source_matches)
			put_from(&ex->b, rule);
		else if (rule->via_edge)
			strbuf_puts(&ex->b, "via: edge, about the edge's callers, not connections");
		else
			strbuf_puts(&ex->b, "a deny with L7 conditions refuses requests, not "
					    "connections");
	}
	if (n)
		step(ex, source_matches ? "per-request" : "other-sources");
}

/* The connection: candidates, then the four precedence steps. */
static void explain_l4(struct explain *ex, struct cand *cands)
{
	const struct policy *pol = ex->pol;
	int n = 0, spec;

	l4_not_candidates(ex, false);
	l4_not_candidates(ex, true);
	for (int r = 0; r < pol->nr_rules; r++) {
		const struct policy_rule *rule = &pol->rules[r];

		if (!policy_rule_per_connection(rule))
			continue;
		spec = policy_rule_specificity(rule, ex->src);
		if (spec && l4_cand(pol, r, ex->dest, spec, &cands[n]))
			n++;
	}
	if (!n)
		return;
	for (int i = 0; i < n; i++) {
		strbuf_puts(&ex->b, i ? "; " : "");
		put_rule(ex, cands[i].rule);
		strbuf_puts(&ex->b, ": ");
		put_from(&ex->b, &pol->rules[cands[i].rule]);
		strbuf_printf(&ex->b, ", %s, service %s, ", action_name(&pol->rules[cands[i].rule]),
			      pol->services[cands[i].service].name);
		put_value(ex, &cands[i], &l4_stages[0]);
		strbuf_puts(&ex->b, ", ");
		put_cidr(&ex->b, cands[i].cidr);
	}
	step(ex, "candidates");
	eliminate(ex, cands, n, l4_stages, sizeof(l4_stages) / sizeof(l4_stages[0]));
}

/* How specifically pattern p names a path (l7.c ranks paths so). */
static void pattern_keys(const char *p, struct cand *c)
{
	const char *s;
	size_t n;

	c->key[K_PATH_CLASS] = 2;
	c->key[K_LITERALS] = 0;
	c->key[K_FEW_WILDCARDS] = 0;
	for (; *p; p = s + n) {
		s = p + 1;
		n = strcspn(s, "/");
		if (!n)
			continue;
		if (*s == '*') {
			c->key[K_FEW_WILDCARDS]--;
			c->key[K_PATH_CLASS] = 1;
		} else {
			c->key[K_LITERALS]++;
		}
	}
}

static bool list_has(char *const *list, int nr, const char *s)
{
	for (int i = 0; i < nr; i++) {
		if (!strcmp(list[i], s))
			return true;
	}
	return false;
}

/* Whether rule r admits the request (as l7.c's rule_admits()); if not,
 * why says why. */
static bool l7_admits(const struct policy *pol, int r, const struct http_req *req,
		      struct cand *c, struct strbuf *why)
{
	const struct policy_rule *rule = &pol->rules[r];
	struct cand cur;

	if (rule->via_edge) {
		strbuf_puts(why, "via: edge, and the request did not come through the edge");
		return false;
	}
	if (rule->nr_methods && !list_has(rule->methods, rule->nr_methods, req->method)) {
		strbuf_printf(why, "method %s is not one of ", req->method);
		put_list(why, rule->methods, rule->nr_methods);
		return false;
	}
	if (rule->nr_hosts) {
		strbuf_puts(why, "it needs a Host of ");
		put_list(why, rule->hosts, rule->nr_hosts);
		strbuf_puts(why, ", and the request is explained without one");
		return false;
	}
	c->pattern = NULL;
	for (int i = 0; i < rule->nr_paths; i++) {
		if (!l7_path_match(rule->paths[i], req->path))
			continue;
		pattern_keys(rule->paths[i], &cur);
		if (!c->pattern || key_cmp(&cur, c, K_PATH_CLASS, K_FEW_WILDCARDS) > 0) {
			memcpy(&c->key[K_PATH_CLASS], &cur.key[K_PATH_CLASS], 3 * sizeof(int));
			c->pattern = rule->paths[i];
		}
	}
	if (rule->nr_paths && !c->pattern) {
		strbuf_printf(why, "path %s matches none of ", req->path);
		put_list(why, rule->paths, rule->nr_paths);
		return false;
	}
	return true;
}

static bool rule_targets(const struct policy_rule *rule, int service)
{
	for (int j = 0; j < rule->nr_to; j++) {
		if (rule->to[j] == service)
			return true;
	}
	return false;
}

/* The request on the connection: candidates, then l7.h's four steps. */
static void explain_l7(struct explain *ex, int service, const struct http_req *req,
		       struct cand *cands)
{
	const struct policy *pol = ex->pol;
	char name[80];
	size_t mark;
	int n = 0;

	for (int r = 0; r < pol->nr_rules; r++) {
		const struct policy_rule *rule = &pol->rules[r];
		struct cand *c = &cands[n];
		int spec = policy_rule_specificity(rule, ex->src);

		if (!rule_targets(rule, service) || !spec)
			continue;
		memset(c, 0, sizeof(*c));
		c->rule = r;
		c->service = service;
		c->key[K_SPEC] = spec;
		c->key[K_CONDITIONS] = !!rule->nr_methods + !!rule->nr_hosts;
		c->key[K_DENY] = policy_rule_deny_level(rule);
		/* Written before the reason is known; taken back if it admits. */
		mark = ex->b.len;
		strbuf_printf(&ex->b, "%s%s (line %d): ", mark ? "; " : "",
			      policy_explain_rule(pol, r, name, sizeof(name)), rule->line);
		if (l7_admits(pol, r, req, c, &ex->b)) {
			ex->b.len = mark;
			n++;
		}
	}
	if (ex->b.len)
		step(ex, "unmatched");
	for (int i = 0; i < n; i++) {
		const struct policy_rule *rule = &pol->rules[cands[i].rule];

		strbuf_puts(&ex->b, i ? "; " : "");
		put_rule(ex, cands[i].rule);
		strbuf_puts(&ex->b, ": ");
		put_from(&ex->b, rule);
		strbuf_printf(&ex->b, ", %s", action_name(rule));
		if (rule->nr_methods) {
			strbuf_puts(&ex->b, ", methods ");
			put_list(&ex->b, rule->methods, rule->nr_methods);
		}
		strbuf_printf(&ex->b, ", %s", cands[i].pattern ? cands[i].pattern : "no paths");
	}
	if (n) {
		step(ex, "request-candidates");
		eliminate(ex, cands, n, l7_stages, sizeof(l7_stages) / sizeof(l7_stages[0]));
	}
}

/* What a decision does: of the connection (conn) or of the request. */
static void decided(struct explain *ex, const struct decision *d, bool conn, bool direct)
{
	const struct policy *pol = ex->pol;
	const char *what = conn ? "the connection" : "the request";

	if (d->rule >= 0) {
		strbuf_puts(&ex->b, "rule ");
		put_rule(ex, d->rule);
		strbuf_printf(&ex->b, " %s %s",
			      d->would_deny ? "would deny" : d->allow ? "allows" : "denies", what);
	} else {
		strbuf_printf(&ex->b, "no rule decides %s: the policy's default, %s", what,
			      d->would_deny ? "would-deny" : d->allow ? "allow" : "deny");
	}
	if (d->would_deny)
		strbuf_puts(&ex->b, " (mode: audit: let through as an allow would, and reported)");
	if (!d->allow)
		strbuf_puts(&ex->b, conn ? " (connect() fails with EPERM)" : " (403)");
	else if (direct && d->rule >= 0 && !pol->services[d->service].mesh)
		strbuf_puts(&ex->b, ", direct (mesh: false)");
	else if (direct)
		strbuf_puts(&ex->b, ", direct, not through the agent");
	else if (conn)
		strbuf_puts(&ex->b, ", through the agent");
	step(ex, "decision");
}

/* Whether an allowed connection bypasses the agent: only a redirect (an
 * allow rule to a TCP service with mesh: true) reaches it. */
static bool goes_direct(const struct policy *pol, const struct decision *d)
{
	const struct policy_service *svc;

	if (d->rule < 0)
		return true;
	svc = &pol->services[d->service];
	return !svc->mesh || svc->proto != IPPROTO_TCP;
}

static json_t *from_json(const struct policy_identity *s)
{
	if (s->spiffe_id)
		return json_string(s->spiffe_id);
	if (s->kind)
		return json_sprintf("kind:%s", workload_kind_name(s->kind));
	return json_sprintf("role:%s", s->nr_roles ? s->roles[0] : "");
}

/* The steps into ex->steps and the deciders' answer into *d. */
static int explain_run(struct explain *ex, const char *method, const char *norm,
		       struct decision *d)
{
	const struct policy *pol = ex->pol;
	const struct policy_dest *dest = ex->dest;
	struct http_req req = { .method = method, .path = norm };
	struct cand *cands;
	bool direct;

	cands = calloc(pol->nr_rules ? pol->nr_rules : 1, sizeof(*cands));
	if (!cands)
		return -ENOMEM;
	put_source(ex);
	put_destination(ex);
	policy_decide(pol, ex->src, dest->family, dest->addr, dest->port, dest->proto, d);
	explain_l4(ex, cands);
	direct = d->allow && goes_direct(pol, d);
	decided(ex, d, true, direct);
	if (method && !d->allow) {
		strbuf_puts(&ex->b, "not sent: the connection is refused");
		step(ex, "request");
	} else if (method && direct) {
		strbuf_puts(&ex->b, "the connection does not reach the agent, so nothing decides "
				    "its requests");
		step(ex, "request");
	} else if (method && !pol->services[d->service].http) {
		strbuf_printf(&ex->b, "the connection is to service %s, which is not protocol: "
			      "http, so nothing decides its requests",
			      pol->services[d->service].name);
		step(ex, "request");
	} else if (method) {
		strbuf_printf(&ex->b, "%s %s to service %s", method, norm,
			      pol->services[d->service].name);
		step(ex, "request");
		policy_decide_http(pol, ex->src, d->service, &req, d);
		explain_l7(ex, d->service, &req, cands);
		decided(ex, d, false, false);
	}
	free(cands);
	return ex->oom || ex->b.oom ? -ENOMEM : 0;
}

int policy_explain(const struct policy *pol, const struct policy_identity *src, const char *to,
		   const char *method, const char *path, json_t **out, struct errmsg *err)
{
	struct policy_dest dest;
	struct explain ex = { .pol = pol, .src = src, .dest = &dest };
	char norm[L7_PATH_MAX], label[80], dbuf[DEST_LEN];
	struct decision d;
	int ret;

	*out = NULL;
	if (!method != !path)
		return errmsg_set(err, -EINVAL, "a method and a path go together");
	ret = policy_dest_parse(pol, to, method, &dest, err);
	if (!ret && method)
		ret = policy_request_parse(method, path, norm, err);
	if (ret)
		return ret;
	ex.steps = json_array();
	strbuf_init(&ex.b, NULL, 256);
	ret = ex.steps ? explain_run(&ex, method, norm, &d) : -ENOMEM;
	strbuf_release(&ex.b);
	if (!ret)
		*out = json_pack("{s:s, s:o, s:s, s:s, s:o, s:o, s:o, s:s, s:b, s:s, s:o, s:O}",
				 "policy", pol->path, "from", from_json(src), "to", to,
				 "destination", fmt_dest(&dest, dbuf, sizeof(dbuf)), "service",
				 dest.service >= 0 ? json_string(pol->services[dest.service].name)
						   : json_null(),
				 "method", method ? json_string(method) : json_null(), "path",
				 method ? json_string(norm) : json_null(), "verdict",
				 d.allow ? "allow" : "deny", "would_deny", d.would_deny, "rule",
				 policy_explain_rule(pol, d.rule, label, sizeof(label)), "line",
				 d.rule >= 0 ? json_integer(pol->rules[d.rule].line) : json_null(),
				 "steps", ex.steps);
	json_decref(ex.steps);
	if (!ret && !*out)
		ret = -ENOMEM;
	if (ret)
		return errmsg_set(err, ret, "%s: out of memory explaining the policy", pol->path);
	return 0;
}

void policy_explain_print(const json_t *doc, FILE *f)
{
	const json_t *steps = json_object_get(doc, "steps"), *s;
	const json_t *line = json_object_get(doc, "line");
	size_t i;

	fprintf(f, "verdict: %s%s\n", json_string_value(json_object_get(doc, "verdict")),
		json_is_true(json_object_get(doc, "would_deny")) ? " (would-deny: mode audit)"
								  : "");
	fprintf(f, "rule: %s", json_string_value(json_object_get(doc, "rule")));
	if (json_is_integer(line))
		fprintf(f, " (%s:%lld)", json_string_value(json_object_get(doc, "policy")),
			(long long)json_integer_value(line));
	fprintf(f, "\nsteps:\n");
	json_array_foreach(steps, i, s)
		fprintf(f, "%3zu. %s: %s\n", i + 1, json_string_value(json_object_get(s, "step")),
			json_string_value(json_object_get(s, "detail")));
}
