// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * L7 conditions of policy rules: request paths and hosts brought to one
 * canonical form, rule patterns matched against them, and the precedence
 * between rules for one HTTP request (docs/l7.md has worked examples).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "l7.h"

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decodes one segment s[0..n) (no raw '/') to out, returning its decoded
 * length or -EINVAL with the reason in err. Encoded '/', '\' and NUL are
 * refused rather than decoded: nginx and the upstream each see the raw
 * request line, and "/a%2Fb" is one segment to us but two to a server
 * that decodes before splitting, so a rule on "/a/b" could be walked
 * around (or hit by a path it was never meant for).
 */
static int decode_segment(const char *s, size_t n, char *out, struct errmsg *err)
{
	size_t i, o = 0;
	unsigned char c;
	int hi, lo;

	for (i = 0; i < n; i++) {
		c = s[i];
		if (c < 0x21 || c == 0x7f)
			return errmsg_set(err, -EINVAL, "control character or space in path");
		if (c == '\\')
			return errmsg_set(err, -EINVAL, "backslash in path");
		if (c == '%') {
			hi = i + 2 < n ? hexval(s[i + 1]) : -1;
			lo = hi >= 0 ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return errmsg_set(err, -EINVAL, "malformed percent-escape in path");
			c = hi << 4 | lo;
			if (c == '/' || c == '\\' || c == 0)
				return errmsg_set(err, -EINVAL,
						  "encoded '/', '\\' or NUL in path (%%%c%c)",
						  s[i + 1], s[i + 2]);
			i += 2;
		}
		out[o++] = c;
	}
	return o;
}

/*
 * Segment by segment: each is decoded in place after the output so far,
 * then dropped (empty, "."), popped with its parent (".."), or kept. Raw
 * and decoded slashes are the same set because %2F is refused, so the
 * segments we see are the ones the upstream sees. A ".." above the root
 * is refused, not clamped: clamping would let "/../admin" match rules
 * written for "/admin" while a lax upstream resolves it elsewhere.
 * Out of len + 1 bytes always suffices.
 */
int l7_path_normalize(const char *target, size_t len, char *out, size_t outlen,
		      struct errmsg *err)
{
	size_t end, i, n, w = 0;
	bool trailing = false;
	int d;

	for (end = 0; end < len && target[end] != '?' && target[end] != '#'; end++)
		;
	if (!end || target[0] != '/')
		return errmsg_set(err, -EINVAL, "request target is not a path starting with '/'");
	for (i = 1; i <= end; i += n + 1) {
		for (n = 0; i + n < end && target[i + n] != '/'; n++)
			;
		if (w + n + 2 > outlen)
			return errmsg_set(err, -ENAMETOOLONG, "path longer than %zu bytes",
					  outlen ? outlen - 1 : 0);
		d = decode_segment(target + i, n, out + w + 1, err);
		if (d < 0)
			return d;
		trailing = d == 0 || (d == 1 && out[w + 1] == '.');
		if (trailing)
			continue;
		if (d == 2 && out[w + 1] == '.' && out[w + 2] == '.') {
			if (!w)
				return errmsg_set(err, -EINVAL, "\"..\" above the root in path");
			while (out[--w] != '/')
				;
			trailing = true;
			continue;
		}
		out[w] = '/';
		w += d + 1;
	}
	if (!w || trailing)
		out[w++] = '/';
	out[w] = '\0';
	return 0;
}

/* The segment at *p (after its '/'), its length, and *p moved past it. */
static size_t next_segment(const char **p)
{
	const char *s = ++*p;
	size_t n = strcspn(s, "/");

	*p = s + n;
	return n;
}

static bool is_globstar(const char *p)
{
	return p[0] == '/' && p[1] == '*' && p[2] == '*' && !p[3];
}

/*
 * Patterns (checked by policy_load()): an exact path; a segment "*" that
 * matches exactly one non-empty segment; a last segment "**" that matches
 * the path before it and anything below it. Both sides are normalised, so
 * segments line up one to one. Walked a byte at a time without library
 * calls: it runs for every rule of the service on every request.
 */
bool l7_path_match(const char *pattern, const char *path)
{
	const char *p = pattern, *s = path;

	for (;;) {
		if (is_globstar(p))
			return !*s || *s == '/';
		if (!*p || !*s)
			return !*p && !*s;
		p++;
		s++;
		if (p[0] == '*' && (!p[1] || p[1] == '/')) {
			if (!*s || *s == '/')
				return false;
			for (p++; *s && *s != '/'; s++)
				;
			continue;
		}
		for (; *p && *p != '/' && *p == *s; p++, s++)
			;
		if ((*p && *p != '/') || (*s && *s != '/'))
			return false;
	}
}

bool l7_host_match(const char *pattern, const char *host)
{
	size_t pn, hn;

	if (strncmp(pattern, "*.", 2))
		return !strcmp(pattern, host);
	/* "*.example" needs at least one label before ".example". */
	pn = strlen(pattern + 1);
	hn = strlen(host);
	return hn > pn && !strcmp(host + hn - pn, pattern + 1);
}

static bool host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
	       c == '_';
}

static int port_valid(const char *p)
{
	unsigned long v = 0;

	/* RFC 3986 allows an empty port ("host:"); it means the default. */
	for (size_t n = 0; p[n]; n++) {
		if (p[n] < '0' || p[n] > '9' || n >= 5)
			return -EINVAL;
		v = v * 10 + (p[n] - '0');
	}
	return v <= 65535 ? 0 : -EINVAL;
}

/*
 * A Host header value (or :authority): reg-name or IPv4 lower-cased, an
 * IPv6 literal kept in its brackets, the port dropped. One trailing dot
 * is dropped as nginx does, so "api.acme.example." meets the rules for
 * "api.acme.example". Anything else that is not a host (userinfo, a
 * path, percent-escapes, spaces) is -EINVAL rather than passed on.
 */
int l7_host_normalize(const char *host, char *out, size_t outlen)
{
	const char *end, *port;
	size_t n, i;

	if (host[0] == '[') {
		end = strchr(host, ']');
		if (!end || end == host + 1)
			return -EINVAL;
		port = end[1] == ':' ? end + 2 : end + 1;
		if (*port && end[1] != ':')
			return -EINVAL;
		end++;
	} else {
		end = host + strcspn(host, ":");
		port = *end ? end + 1 : end;
	}
	if (port_valid(port))
		return -EINVAL;
	n = end - host;
	if (host[0] != '[' && n && host[n - 1] == '.')
		n--;
	if (!n)
		return -EINVAL;
	if (n + 1 > outlen)
		return -ENAMETOOLONG;
	for (i = 0; i < n; i++) {
		unsigned char c = host[i];

		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (host[0] == '[' ? !(hexval(c) >= 0 || c == ':' || c == '.' || i == 0 ||
				       i == n - 1)
				   : !host_char(c))
			return -EINVAL;
		out[i] = c;
	}
	out[n] = '\0';
	return 0;
}

struct http_match {
	int path_class;			/* 0 no paths, 1 pattern, 2 exact */
	int literals;			/* literal segments of the pattern */
	int wildcards;			/* '*' and '**' segments */
};

/* How specifically pattern p names a path, for precedence step (1). */
static struct http_match pattern_rank(const char *p)
{
	struct http_match m = { .path_class = 2 };
	const char *s;
	size_t n;

	while (*p) {
		s = p + 1;
		n = next_segment(&p);
		if (!n)
			continue;
		if (*s == '*') {
			m.wildcards++;
			m.path_class = 1;
		} else {
			m.literals++;
		}
	}
	return m;
}

static int match_cmp(const struct http_match *a, const struct http_match *b)
{
	if (a->path_class != b->path_class)
		return a->path_class - b->path_class;
	if (a->literals != b->literals)
		return a->literals - b->literals;
	return b->wildcards - a->wildcards;
}

static bool list_has(char *const *list, int nr, const char *s)
{
	for (int i = 0; i < nr; i++) {
		if (!strcmp(list[i], s))
			return true;
	}
	return false;
}

/* Whether rule's L7 lists admit req; *m is its best path match. */
static bool rule_admits(const struct policy_rule *rule, const struct http_req *req,
			struct http_match *m)
{
	struct http_match cur;
	bool host = false;

	*m = (struct http_match){ 0 };
	if (rule->via_edge && !req->via_edge)
		return false;
	if (rule->nr_methods && !(req->method && list_has(rule->methods, rule->nr_methods,
							   req->method)))
		return false;
	for (int i = 0; i < rule->nr_hosts && req->host && !host; i++)
		host = l7_host_match(rule->hosts[i], req->host);
	if (rule->nr_hosts && !host)
		return false;
	if (!rule->nr_paths)
		return true;
	m->path_class = -1;
	for (int i = 0; i < rule->nr_paths && req->path; i++) {
		if (!l7_path_match(rule->paths[i], req->path))
			continue;
		cur = pattern_rank(rule->paths[i]);
		if (m->path_class < 0 || match_cmp(&cur, m) > 0)
			*m = cur;
	}
	return m->path_class >= 0;
}

static bool rule_targets(const struct policy_rule *rule, int service)
{
	for (int j = 0; j < rule->nr_to; j++) {
		if (rule->to[j] == service)
			return true;
	}
	return false;
}

/* The precedence of rule a over b, once both admit the request. */
struct http_rank {
	struct http_match m;
	int spec;
	int conditions;			/* methods and hosts present, 0-2 */
	int deny;			/* policy_rule_deny_level() */
};

static int rank_cmp(const struct http_rank *a, const struct http_rank *b)
{
	int c = match_cmp(&a->m, &b->m);

	if (c)
		return c;
	if (a->spec != b->spec)
		return a->spec - b->spec;
	if (a->conditions != b->conditions)
		return a->conditions - b->conditions;
	return a->deny - b->deny;
}

/*
 * Among the rules whose `from` matches caller, whose `to` holds service and
 * whose present L7 lists all admit req, the deciding one is chosen by:
 * (1) the most specific path match: an exact path, then a pattern with
 * more literal segments, then one with fewer wildcards; a rule without
 * paths is the least specific; (2) the most specific source: workload,
 * then role or kind, then any; (3) more of methods and hosts present;
 * (4) deny over an audit-mode deny over allow. The first rule in file
 * order wins a full tie, which (4) makes a tie between equal actions.
 * None: the policy's default. An audit-mode deny decides an allow with
 * out->would_deny set.
 */
void policy_decide_http(const struct policy *pol, const struct policy_identity *caller,
			int service, const struct http_req *req, struct decision *out)
{
	struct http_rank best = { 0 }, cur;
	int found = -1;

	out->service = -1;
	policy_decision_of(pol, -1, out);
	for (int r = 0; r < pol->nr_rules; r++) {
		const struct policy_rule *rule = &pol->rules[r];

		/* Cheapest test first: most rules are for other services. */
		if (!rule_targets(rule, service))
			continue;
		cur.spec = policy_rule_specificity(rule, caller);
		if (!cur.spec || !rule_admits(rule, req, &cur.m))
			continue;
		cur.conditions = !!rule->nr_methods + !!rule->nr_hosts;
		cur.deny = policy_rule_deny_level(rule);
		if (found >= 0 && rank_cmp(&cur, &best) <= 0)
			continue;
		best = cur;
		found = r;
	}
	if (found < 0)
		return;
	policy_decision_of(pol, found, out);
	out->service = service;
}

/*
 * A prefix ending in '/' holds the paths below it and the path without
 * that slash ("/api/" holds "/api/x" and "/api", as nginx redirects a
 * bare "/api" to a "location /api/"); any other prefix holds exactly
 * itself. A route equal to path wins, then the longest prefix.
 */
int policy_edge_route(const struct policy *pol, const char *path)
{
	size_t n, best_len = 0, plen = strlen(path);
	int best = -1;

	for (int i = 0; i < pol->edge.nr_routes; i++) {
		const char *p = pol->edge.routes[i].prefix;

		n = strlen(p);
		if (!strcmp(p, path))
			return i;
		if (p[n - 1] != '/' || n <= best_len)
			continue;
		if (!strncmp(p, path, n) || (plen == n - 1 && !strncmp(p, path, n - 1))) {
			best = i;
			best_len = n;
		}
	}
	return best;
}
