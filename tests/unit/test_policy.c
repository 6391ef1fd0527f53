// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bad_files.h"

#include "config.h"
#include "l7.h"
#include "policy.h"

#define DATA "tests/data/policy/"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Each file breaks exactly one rule; the message must name file and line. */
static const struct bad_case bad_cases[] = {
	{ "bad-unknown-service.yaml", 9, "unknown service \"warehous\"" },
	{ "bad-dup-service.yaml", 9, "duplicate service \"api\" (first defined at line 4)" },
	{ "bad-from-two.yaml", 7,
	  "rule needs exactly one of workload, kind, role, any in \"from\"" },
	{ "bad-from-none.yaml", 7,
	  "rule needs exactly one of workload, kind, role, any in \"from\"" },
	{ "bad-from-key.yaml", 8, "unknown key \"group\"" },
	{ "bad-cidr-host-bits.yaml", 6,
	  "bad address \"10.0.0.1/8\": host bits must be zero (did you mean 10.0.0.0/8?)" },
	{ "bad-cidr6-host-bits.yaml", 4,
	  "bad address \"fd00::1/64\": host bits must be zero (did you mean fd00::/64?)" },
	{ "bad-cidr-prefix.yaml", 4, "bad address \"10.0.0.0/33\": prefix length must be 0-32" },
	{ "bad-address.yaml", 4,
	  "bad address \"db.example\": expected an IPv4 or IPv6 address, optionally with /PREFIX" },
	{ "bad-no-addresses.yaml", 4, "service \"db\" needs at least one address" },
	{ "bad-dup-address.yaml", 4, "duplicate address \"10.0.0.1/32\"" },
	{ "bad-port.yaml", 5, "bad port \"70000\": expected 1-65535 or any" },
	{ "bad-port-zero.yaml", 5, "bad port \"0\": expected 1-65535 or any" },
	{ "bad-port-any-mixed.yaml", 5, "port any cannot be combined with other ports" },
	{ "bad-dup-port.yaml", 7, "duplicate port 80" },
	{ "bad-protocol.yaml", 5, "unknown protocol \"sctp\" (expected tcp, udp or http)" },
	{ "bad-mesh.yaml", 5, "bad value \"maybe\" for \"mesh\": expected true or false" },
	{ "bad-service-key.yaml", 5, "unknown key \"port\"" },
	{ "bad-service-name.yaml", 3,
	  "bad service name \"Warehouse\": expected 1-63 characters of a-z, 0-9 and '-'" },
	{ "bad-action.yaml", 9, "unknown action \"permit\" (expected allow or deny)" },
	{ "bad-missing-action.yaml", 7, "missing required key \"action\"" },
	{ "bad-missing-to.yaml", 7, "missing required key \"to\"" },
	{ "bad-to-type.yaml", 8, "expected a sequence for \"to\", got a mapping" },
	{ "bad-to-twice.yaml", 8, "service \"db\" listed twice in \"to\"" },
	{ "bad-default.yaml", 2, "unknown default \"reject\" (expected deny or allow)" },
	{ "bad-version.yaml", 1, "unsupported policy version \"2\" (expected 1)" },
	{ "bad-missing-version.yaml", 2, "missing required key \"version\"" },
	{ "bad-unknown-key.yaml", 3, "unknown key \"service\"" },
	{ "bad-unknown-role.yaml", 8, "unknown role \"elt\"" },
	{ "bad-dup-role.yaml", 6, "duplicate role \"etl\" (first defined at line 3)" },
	{ "bad-role-name.yaml", 3,
	  "bad role name \"ETL\": expected 1-63 characters of a-z, 0-9, '-' and '_'" },
	{ "bad-claim-type.yaml", 5, "expected a scalar for \"groups\", got a sequence" },
	{ "bad-kind.yaml", 7,
	  "unknown kind \"jobs\" (expected job, notebook, cluster or service)" },
	{ "bad-workload-id.yaml", 8,
	  "bad SPIFFE ID \"spiffe://acme.example/job\": expected "
	  "spiffe://<trust-domain>/<kind>/<name>" },
	{ "bad-any-false.yaml", 7, "bad value \"false\" for \"any\": expected true" },
	{ "bad-dup-rule-name.yaml", 11, "duplicate rule \"r1\" (first defined at line 7)" },
	{ "bad-rule-name.yaml", 7,
	  "bad rule name \"Read DB\": expected 1-63 characters of a-z, 0-9, '-' and '_'" },
	{ "bad-too-many-ports.yaml", 5, "too many items in \"ports\" (257, max 256)" },
	{ "bad-syntax.yaml", 5,
	  "YAML syntax error: did not find expected '-' indicator (while parsing a block "
	  "collection that started at line 3)" },
	{ "bad-two-docs.yaml", 2, "more than one YAML document" },
	{ "bad-rules-type.yaml", 6, "expected a sequence for \"rules\", got a scalar" },
	{ "bad-deep.yaml", 2, "nesting deeper than 64 levels" },
	{ "bad-many-keys.yaml", 4, "more than 256 keys in one mapping" },
	{ "bad-long-scalar.yaml", 4, "scalar longer than 4096 bytes" },
	{ "bad-alias-bomb.yaml", 16,
	  "more than 262144 nodes (an alias counts as the nodes it names)" },
	{ "bad-alias-loop.yaml", 3, "alias *s inside the node it names" },
	{ "bad-anchors.yaml", 516, "more than 256 anchors" },
	/* L7 conditions and the edge section (l7.h). */
	{ "bad-edge-empty-hosts.yaml", 12, "empty \"hosts\": name at least one host" },
	{ "bad-edge-host.yaml", 12,
	  "bad host \"api.example:443\": expected a DNS name, optionally starting with \"*.\"" },
	{ "bad-edge-key.yaml", 13, "unknown key \"server\"" },
	{ "bad-edge-max-body-unit.yaml", 13,
	  "bad size \"10mb\" for \"max_body\": expected a number with an optional k, m or g" },
	{ "bad-edge-max-body.yaml", 13, "size \"2g\" for \"max_body\": expected 1 byte to 1g" },
	{ "bad-edge-missing-routes.yaml", 12, "missing required key \"routes\"" },
	{ "bad-edge-no-hosts.yaml", 12, "missing required key \"hosts\"" },
	{ "bad-edge-no-routes.yaml", 13, "edge needs at least one route" },
	{ "bad-edge-port.yaml", 13,
	  "bad value \"0\" for \"port\": expected a whole number from 1 to 65535" },
	{ "bad-edge-prefix-char.yaml", 14,
	  "bad prefix \"/a;b\": only letters, digits and -._~/:@+,=" },
	{ "bad-edge-prefix-relative.yaml", 14,
	  "bad prefix \"api/\": request target is not a path starting with '/'" },
	{ "bad-edge-prefix-unnormalised.yaml", 14,
	  "bad prefix \"/api//v1/\": not normalised (write \"/api/v1/\")" },
	{ "bad-edge-route-dup.yaml", 16, "duplicate prefix \"/api/\" (first at line 14)" },
	{ "bad-edge-route-tcp.yaml", 15,
	  "route \"/db/\": service \"warehouse\" is tcp, not protocol: http" },
	{ "bad-edge-route-unknown.yaml", 15, "unknown service \"apix\"" },
	{ "bad-edge-timeout-unit.yaml", 13,
	  "bad duration \"1d\" for \"timeout\": expected a number with ms, s, m or h" },
	{ "bad-edge-timeout.yaml", 13, "duration \"50ms\" for \"timeout\": expected 100ms to 1h" },
	{ "bad-edge-tls-half.yaml", 13, "missing required key \"key\"" },
	{ "bad-host-dup.yaml", 16, "duplicate host \"api.example\"" },
	{ "bad-host-wild-mid.yaml", 16,
	  "bad host \"a.*.example\": expected a DNS name, optionally starting with \"*.\"" },
	{ "bad-host.yaml", 16,
	  "bad host \"api_x.example\": expected a DNS name, optionally starting with \"*.\"" },
	{ "bad-l7-tcp-service.yaml", 16,
	  "rule \"r\": methods/paths/hosts/via need protocol: http services; \"warehouse\" is tcp" },
	{ "bad-l7-udp-unnamed.yaml", 15,
	  "rule: methods/paths/hosts/via need protocol: http services; \"dns\" is udp" },
	{ "bad-method-dup.yaml", 16, "duplicate method \"GET\"" },
	{ "bad-method-long.yaml", 16,
	  "bad method \"MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM\": longer than 31 characters" },
	{ "bad-method-lower.yaml", 16,
	  "bad method \"get\": methods are case-sensitive; write it in upper case" },
	{ "bad-method-token.yaml", 16, "bad method \"GET/\": expected a token such as GET" },
	{ "bad-methods-empty.yaml", 16, "empty \"methods\": omit it to match any" },
	{ "bad-path-above-root.yaml", 16, "bad path \"/../x\": \"..\" above the root in path" },
	{ "bad-path-dup.yaml", 16, "duplicate path \"/a/b\"" },
	{ "bad-path-encoded-slash.yaml", 16,
	  "bad path \"/a%2Fb\": encoded '/', '\\' or NUL in path (%2F)" },
	{ "bad-path-query.yaml", 16, "bad path \"/a?x=1\": a query or fragment cannot be matched" },
	{ "bad-path-relative.yaml", 16,
	  "bad path \"api/x\": request target is not a path starting with '/'" },
	{ "bad-path-star-inside.yaml", 16,
	  "bad path \"/a*b\": '*' only as a whole segment, or \"**\" as the last" },
	{ "bad-path-starstar-mid.yaml", 16,
	  "bad path \"/a/**/b\": \"**\" only as the last segment" },
	{ "bad-path-starstar-slash.yaml", 16,
	  "bad path \"/a/**/\": \"**\" only as the last segment" },
	{ "bad-rule-l7-key.yaml", 16, "unknown key \"method\"" },
	{ "bad-via.yaml", 9, "unknown via \"nginx\" (expected edge)" },
	{ "bad-too-many-methods.yaml", 16, "too many items in \"methods\" (65, max 64)" },
	/* Audit mode. */
	{ "bad-mode.yaml", 2, "unknown mode \"dry-run\" (expected enforce or audit)" },
	{ "bad-rule-mode.yaml", 10, "unknown mode \"Audit\" (expected enforce or audit)" },
	{ "bad-mode-type.yaml", 2, "expected a scalar for \"mode\", got a sequence" },
};

static void assert_empty(const struct policy *pol)
{
	static const struct policy zero;

	assert_memory_equal(pol, &zero, sizeof(zero));
}

static void test_bad_policy(void **state)
{
	const struct bad_case *c = *state;
	char path[128], want[ERRMSG_LEN];
	struct errmsg err = {};
	struct policy pol;

	bad_case_expect(DATA, c, path, sizeof(path), want, sizeof(want));
	assert_int_equal(policy_load(path, &pol, &err), -EINVAL);
	assert_string_equal(err.msg, want);
	assert_empty(&pol);
}

static void test_missing_file(void **state)
{
	struct errmsg err = {};
	struct policy pol;

	assert_int_equal(policy_load("/nonexistent/policy.yaml", &pol, &err), -ENOENT);
	assert_string_equal(err.msg, "/nonexistent/policy.yaml: No such file or directory");
	assert_empty(&pol);
}

static void assert_cidr(const struct cidr *c, const char *addr, int prefixlen)
{
	char buf[INET6_ADDRSTRLEN];

	assert_non_null(inet_ntop(c->family, c->addr, buf, sizeof(buf)));
	assert_string_equal(buf, addr);
	assert_int_equal(c->prefixlen, prefixlen);
}

/* A file written for one test in its own directory under /tmp. */
struct tmpfile {
	char dir[32];
	char path[64];
};

static FILE *tmpfile_open(struct tmpfile *t, const char *name)
{
	FILE *f;

	snprintf(t->dir, sizeof(t->dir), "/tmp/test_policy.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, name);
	f = fopen(t->path, "w");
	assert_non_null(f);
	return f;
}

static void tmpfile_remove(struct tmpfile *t)
{
	unlink(t->path);
	rmdir(t->dir);
}

static void load_fails(const char *path, int want_ret, const char *want)
{
	struct errmsg err = {};
	struct policy pol;

	assert_int_equal(policy_load(path, &pol, &err), want_ret);
	assert_string_equal(err.msg, want);
	assert_empty(&pol);
}

/* libyaml's scanner is quadratic in the depth: 40,000 levels took it over
 * a second, and a 1 MiB file minutes, in the agent's event loop. The bound
 * is met after 65 levels, so the rest is never scanned. */
static void test_deep_nesting(void **state)
{
	struct tmpfile t;
	char want[160];
	FILE *f = tmpfile_open(&t, "deep.yaml");

	fputs("version: 1\nrules: ", f);
	for (int i = 0; i < 40000; i++)
		fputc('[', f);
	for (int i = 0; i < 40000; i++)
		fputc(']', f);
	fputc('\n', f);
	assert_int_equal(fclose(f), 0);
	snprintf(want, sizeof(want), "%s:2: nesting deeper than 64 levels", t.path);
	load_fails(t.path, -EINVAL, want);
	tmpfile_remove(&t);
}

/* 1 MiB, a ConfigMap's limit, is read; one byte more is not. */
static void test_file_size(void **state)
{
	static const char body[] = "version: 1\ndefault: allow\n";
	struct errmsg err = {};
	struct policy pol;
	struct tmpfile t;
	char want[160];
	FILE *f = tmpfile_open(&t, "big.yaml");

	/* The body, then one comment line up to exactly 1 MiB. */
	fputs(body, f);
	fputc('#', f);
	for (size_t n = strlen(body) + 2; n < 1 << 20; n++)
		fputc('.', f);
	fputc('\n', f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(policy_load(t.path, &pol, &err), 0);
	assert_true(pol.default_allow);
	policy_free(&pol);

	f = fopen(t.path, "a");
	assert_non_null(f);
	fputc('\n', f);
	assert_int_equal(fclose(f), 0);
	snprintf(want, sizeof(want), "%s: larger than 1 MiB", t.path);
	load_fails(t.path, -EFBIG, want);
	tmpfile_remove(&t);
}

/* An alias still names its anchor's node, and counts as what it names. */
static void test_alias(void **state)
{
	struct errmsg err = {};
	struct policy pol;

	assert_int_equal(policy_load(DATA "alias.yaml", &pol, &err), 0);
	assert_int_equal(pol.nr_services, 2);
	assert_int_equal(pol.services[1].nr_addrs, 2);
	assert_cidr(&pol.services[1].addrs[0], "10.1.0.0", 24);
	assert_cidr(&pol.services[1].addrs[1], "fd01::", 64);
	assert_int_equal(pol.services[1].ports[0], 5433);
	policy_free(&pol);
	load_fails(DATA "bad-alias-bomb.yaml", -EINVAL,
		   DATA "bad-alias-bomb.yaml:16: more than 262144 nodes (an alias counts as the "
			"nodes it names)");
}

static void test_good_policy(void **state)
{
	const struct policy_service *s;
	const struct policy_rule *r;
	struct errmsg err = {};
	struct policy pol;

	assert_int_equal(policy_load(DATA "good.yaml", &pol, &err), 0);
	assert_string_equal(pol.path, DATA "good.yaml");
	assert_true(pol.default_allow);

	assert_int_equal(pol.nr_roles, 2);
	assert_string_equal(pol.roles[0].name, "etl");
	assert_int_equal(pol.roles[0].line, 5);
	assert_int_equal(pol.roles[0].nr_claims, 1);
	assert_string_equal(pol.roles[0].claim_keys[0], "groups");
	assert_string_equal(pol.roles[0].claim_values[0], "etl-jobs");
	assert_string_equal(pol.roles[1].name, "analyst");
	assert_int_equal(pol.roles[1].nr_claims, 2);
	assert_string_equal(pol.roles[1].claim_keys[1], "department");
	assert_string_equal(pol.roles[1].claim_values[1], "finance");

	assert_int_equal(pol.nr_services, 4);
	s = &pol.services[0];
	assert_string_equal(s->name, "warehouse");
	assert_int_equal(s->line, 12);
	assert_int_equal(s->nr_addrs, 2);
	assert_int_equal(s->addrs[0].family, AF_INET);
	assert_cidr(&s->addrs[0], "10.77.0.2", 32);
	assert_int_equal(s->addrs[1].family, AF_INET6);
	assert_cidr(&s->addrs[1], "fd77::2", 128);
	assert_int_equal(s->nr_ports, 1);
	assert_int_equal(s->ports[0], 5432);
	assert_int_equal(s->proto, IPPROTO_TCP);
	assert_true(s->mesh);
	s = &pol.services[1];
	assert_string_equal(s->name, "api");
	assert_int_equal(s->nr_addrs, 1);
	assert_cidr(&s->addrs[0], "10.77.1.0", 24);
	assert_int_equal(s->nr_ports, 2);
	assert_int_equal(s->ports[0], 8080);
	assert_int_equal(s->ports[1], 8443);
	s = &pol.services[2];
	assert_string_equal(s->name, "dns");
	assert_int_equal(s->proto, IPPROTO_UDP);
	assert_int_equal(s->nr_ports, 1);
	assert_int_equal(s->ports[0], 53);
	s = &pol.services[3];
	assert_string_equal(s->name, "idp");
	assert_cidr(&s->addrs[1], "fd77:1::", 64);
	assert_int_equal(s->nr_ports, 0);
	assert_false(s->mesh);
	assert_int_equal(s->line, 23);

	assert_int_equal(pol.nr_rules, 4);
	r = &pol.rules[0];
	assert_string_equal(r->name, "jobs-read-warehouse");
	assert_int_equal(r->from, FROM_KIND);
	assert_string_equal(r->from_value, "job");
	assert_int_equal(r->nr_to, 1);
	assert_int_equal(r->to[0], 0);
	assert_true(r->allow);
	assert_int_equal(r->line, 28);
	r = &pol.rules[1];
	assert_null(r->name);
	assert_int_equal(r->from, FROM_ROLE);
	assert_string_equal(r->from_value, "analyst");
	assert_int_equal(r->nr_to, 2);
	assert_int_equal(r->to[0], 0);
	assert_int_equal(r->to[1], 1);
	r = &pol.rules[2];
	assert_int_equal(r->from, FROM_ANY);
	assert_null(r->from_value);
	assert_int_equal(r->nr_to, 1);
	assert_int_equal(r->to[0], 2);
	r = &pol.rules[3];
	assert_int_equal(r->from, FROM_WORKLOAD);
	assert_string_equal(r->from_value, "spiffe://acme.example/notebook/7");
	assert_false(r->allow);
	assert_int_equal(r->line, 38);

	policy_free(&pol);
	assert_empty(&pol);
}

static void test_default_deny(void **state)
{
	struct errmsg err = {};
	struct policy pol;

	assert_int_equal(policy_load(DATA "compile.yaml", &pol, &err), 0);
	assert_false(pol.default_allow);
	policy_free(&pol);
}

static void load_both(const char *config, struct config *cfg, struct policy *pol)
{
	struct errmsg err = {};

	if (config_load(config, cfg, &err))
		fail_msg("%s", err.msg);
	if (policy_load(cfg->policy_path, pol, &err))
		fail_msg("%s", err.msg);
}

static void test_check_config_ok(void **state)
{
	struct errmsg err = {};
	struct policy pol;
	struct config cfg;

	load_both("tests/data/config/good.yaml", &cfg, &pol);
	assert_int_equal(policy_check_config(&pol, &cfg, &err), 0);
	policy_free(&pol);
	config_free(&cfg);
}

static void test_check_config_role(void **state)
{
	struct errmsg err = {};
	struct policy pol;
	struct config cfg;

	load_both("tests/data/config/check-role.yaml", &cfg, &pol);
	assert_int_equal(policy_check_config(&pol, &cfg, &err), -EINVAL);
	assert_string_equal(err.msg, "tests/data/config/check-role.yaml:12: role \"ghost\" is not "
				     "defined in tests/data/config/../policy/good.yaml");
	policy_free(&pol);
	config_free(&cfg);
}

static void test_check_config_domain(void **state)
{
	struct errmsg err = {};
	struct policy pol;
	struct config cfg;

	load_both("tests/data/config/check-domain.yaml", &cfg, &pol);
	assert_int_equal(policy_check_config(&pol, &cfg, &err), -EINVAL);
	assert_string_equal(err.msg, "tests/data/config/../policy/check-domain.yaml:10: workload "
				     "\"spiffe://other.example/job/1\" is not in trust domain "
				     "\"acme.example\" (tests/data/config/check-domain.yaml)");
	policy_free(&pol);
	config_free(&cfg);
}

/* compile.yaml's services, in file order. */
static const uint32_t svc_ids[] = { 101, 102, 103, 104, 105 };
enum { DB = 101, WIDE, DIRECT, SAME_SPEC, ROLE_VS_ANY };

static char *const etl[] = { "etl" };
static const struct policy_identity idents[] = {
	{ .id = 10, .spiffe_id = "spiffe://acme.example/job/1", .kind = WL_KIND_JOB },
	{ .id = 11, .spiffe_id = "spiffe://acme.example/job/2", .kind = WL_KIND_JOB,
	  .roles = etl, .nr_roles = 1 },
	{ .id = 12, .spiffe_id = "spiffe://acme.example/notebook/3", .kind = WL_KIND_NOTEBOOK },
};

struct want {
	int family;
	uint32_t identity;
	uint8_t proto;
	uint16_t port;
	const char *addr;
	int prefixlen;
	uint32_t action, service, rule;
};

static struct policy_entry make_entry(const struct want *w, uint8_t slot)
{
	struct policy_entry e;

	memset(&e, 0, sizeof(e));
	e.family = w->family;
	if (w->family == AF_INET) {
		e.key4.prefixlen = SLUICE_POLICY_FIXED_BITS + w->prefixlen;
		e.key4.identity = w->identity;
		e.key4.slot = slot;
		e.key4.proto = w->proto;
		e.key4.port = htons(w->port);
		assert_int_equal(inet_pton(AF_INET, w->addr, &e.key4.addr), 1);
	} else {
		e.key6.prefixlen = SLUICE_POLICY_FIXED_BITS + w->prefixlen;
		e.key6.identity = w->identity;
		e.key6.slot = slot;
		e.key6.proto = w->proto;
		e.key6.port = htons(w->port);
		assert_int_equal(inet_pton(AF_INET6, w->addr, e.key6.addr), 1);
	}
	e.value.action = w->action;
	e.value.service = w->service;
	e.value.rule = w->rule;
	return e;
}

static void compile_file(const char *file, const struct policy_identity *ids, int nr_ids,
			 uint8_t slot, struct policy_entry **entries, int *nr)
{
	struct errmsg err = {};
	struct policy pol;

	if (policy_load(file, &pol, &err))
		fail_msg("%s", err.msg);
	assert_true(pol.nr_services <= (int)ARRAY_SIZE(svc_ids));
	if (policy_compile(&pol, ids, nr_ids, svc_ids, slot, entries, nr, &err))
		fail_msg("%s", err.msg);
	policy_free(&pol);
}

/* Finds the entry for identity and address (port in host order). */
static const struct policy_entry *find(const struct policy_entry *e, int nr, uint32_t identity,
				       const char *addr, uint16_t port)
{
	uint32_t a[4] = {};
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET;

	assert_int_equal(inet_pton(family, addr, a), 1);
	for (int i = 0; i < nr; i++) {
		if (e[i].family != family || e[i].key4.identity != identity ||
		    ntohs(e[i].key4.port) != port)
			continue;
		if (family == AF_INET ? e[i].key4.addr == a[0]
				      : !memcmp(e[i].key6.addr, a, sizeof(a)))
			return &e[i];
	}
	fail_msg("no entry for identity %u, %s port %u", identity, addr, port);
	return NULL;
}

static void test_compile_exact(void **state)
{
	static const struct want want[] = {
		/* job/1: its workload deny overrides the kind allow on db. */
		{ AF_INET, 10, IPPROTO_TCP, 80, "10.3.0.7", 32, SLUICE_ACT_ALLOW, DIRECT, 1 },
		{ AF_INET, 10, IPPROTO_TCP, 443, "10.3.0.7", 32, SLUICE_ACT_ALLOW, DIRECT, 1 },
		{ AF_INET, 10, IPPROTO_TCP, 5432, "10.1.0.5", 32, SLUICE_ACT_DENY, DB, 2 },
		{ AF_INET, 10, IPPROTO_TCP, 9000, "10.4.0.1", 32, SLUICE_ACT_DENY, SAME_SPEC, 5 },
		{ AF_INET, 10, IPPROTO_TCP, 9000, "10.5.0.1", 32, SLUICE_ACT_DENY, ROLE_VS_ANY, 6 },
		/* job/2 with role etl. */
		{ AF_INET, 11, IPPROTO_TCP, 80, "10.3.0.7", 32, SLUICE_ACT_ALLOW, DIRECT, 1 },
		{ AF_INET, 11, IPPROTO_TCP, 443, "10.3.0.7", 32, SLUICE_ACT_ALLOW, DIRECT, 1 },
		{ AF_INET, 11, IPPROTO_TCP, 5432, "10.1.0.5", 32, SLUICE_ACT_REDIRECT, DB, 1 },
		{ AF_INET, 11, IPPROTO_TCP, 9000, "10.4.0.1", 32, SLUICE_ACT_DENY, SAME_SPEC, 5 },
		{ AF_INET, 11, IPPROTO_TCP, 9000, "10.5.0.1", 32, SLUICE_ACT_REDIRECT, ROLE_VS_ANY,
		  7 },
		/* notebook/3. */
		{ AF_INET, 12, IPPROTO_TCP, 9000, "10.5.0.1", 32, SLUICE_ACT_DENY, ROLE_VS_ANY, 6 },
		{ AF_INET, 12, IPPROTO_UDP, 0, "10.2.0.0", 16, SLUICE_ACT_ALLOW, WIDE, 3 },
		{ AF_INET6, 12, IPPROTO_UDP, 0, "fd00:2::", 32, SLUICE_ACT_ALLOW, WIDE, 3 },
	};
	struct policy_entry *e, w;
	int nr;

	compile_file(DATA "compile.yaml", idents, ARRAY_SIZE(idents), 1, &e, &nr);
	assert_int_equal(nr, ARRAY_SIZE(want));
	for (int i = 0; i < nr; i++) {
		w = make_entry(&want[i], 1);
		if (memcmp(&e[i], &w, sizeof(w)))
			fail_msg("entry %d: identity %u port %u action %u rule %u service %u, want "
				 "identity %u port %u action %u rule %u service %u",
				 i, e[i].key4.identity, ntohs(e[i].key4.port), e[i].value.action,
				 e[i].value.rule, e[i].value.service, want[i].identity,
				 want[i].port, want[i].action, want[i].rule, want[i].service);
	}
	free(e);
}

static void test_workload_deny_beats_kind_allow(void **state)
{
	const struct policy_entry *x;
	struct policy_entry *e;
	int nr;

	compile_file(DATA "compile.yaml", idents, ARRAY_SIZE(idents), 0, &e, &nr);
	x = find(e, nr, 10, "10.1.0.5", 5432);
	assert_int_equal(x->value.action, SLUICE_ACT_DENY);
	assert_int_equal(x->value.rule, 2);
	x = find(e, nr, 11, "10.1.0.5", 5432);
	assert_int_equal(x->value.action, SLUICE_ACT_REDIRECT);
	assert_int_equal(x->value.rule, 1);
	free(e);
}

static void test_deny_beats_allow_same_specificity(void **state)
{
	const struct policy_entry *x;
	struct policy_entry *e;
	int nr;

	/* Role etl allows (rule 4), kind job denies (rule 5). */
	compile_file(DATA "compile.yaml", &idents[1], 1, 0, &e, &nr);
	x = find(e, nr, 11, "10.4.0.1", 9000);
	assert_int_equal(x->value.action, SLUICE_ACT_DENY);
	assert_int_equal(x->value.rule, 5);
	assert_int_equal(x->value.service, SAME_SPEC);
	free(e);
}

static void test_role_allow_beats_any_deny(void **state)
{
	const struct policy_entry *x;
	struct policy_entry *e;
	int nr;

	compile_file(DATA "compile.yaml", idents, ARRAY_SIZE(idents), 0, &e, &nr);
	x = find(e, nr, 11, "10.5.0.1", 9000);
	assert_int_equal(x->value.action, SLUICE_ACT_REDIRECT);
	assert_int_equal(x->value.rule, 7);
	/* Without the role, the any deny stands. */
	x = find(e, nr, 10, "10.5.0.1", 9000);
	assert_int_equal(x->value.action, SLUICE_ACT_DENY);
	assert_int_equal(x->value.rule, 6);
	free(e);
}

static void test_port_any_and_v6(void **state)
{
	const struct policy_entry *x;
	struct policy_entry *e;
	int nr;

	compile_file(DATA "compile.yaml", &idents[2], 1, 0, &e, &nr);
	assert_int_equal(nr, 3);
	x = find(e, nr, 12, "fd00:2::", SLUICE_PORT_ANY);
	assert_int_equal(x->family, AF_INET6);
	assert_int_equal(x->key6.prefixlen, SLUICE_POLICY_FIXED_BITS + 32);
	assert_int_equal(x->key6.proto, IPPROTO_UDP);
	x = find(e, nr, 12, "10.2.0.0", SLUICE_PORT_ANY);
	assert_int_equal(x->key4.prefixlen, SLUICE_POLICY_FIXED_BITS + 16);
	free(e);
}

static void test_udp_and_direct_allow(void **state)
{
	const struct policy_entry *x;
	struct policy_entry *e;
	int nr;

	compile_file(DATA "compile.yaml", idents, ARRAY_SIZE(idents), 0, &e, &nr);
	/* UDP is never steered through the agent, even with mesh: true. */
	x = find(e, nr, 12, "10.2.0.0", SLUICE_PORT_ANY);
	assert_int_equal(x->value.action, SLUICE_ACT_ALLOW);
	/* mesh: false connects directly. */
	x = find(e, nr, 11, "10.3.0.7", 443);
	assert_int_equal(x->value.action, SLUICE_ACT_ALLOW);
	assert_int_equal(x->key4.proto, IPPROTO_TCP);
	free(e);
}

static void test_slot(void **state)
{
	struct policy_entry *e;
	int nr;

	for (uint8_t slot = 0; slot < SLUICE_SLOTS; slot++) {
		compile_file(DATA "compile.yaml", idents, ARRAY_SIZE(idents), slot, &e, &nr);
		assert_true(nr > 0);
		for (int i = 0; i < nr; i++)
			assert_int_equal(e[i].family == AF_INET ? e[i].key4.slot : e[i].key6.slot,
					 slot);
		free(e);
	}
}

static void test_unmentioned_identity(void **state)
{
	static const struct policy_identity ids[] = {
		{ .id = 20, .spiffe_id = "spiffe://acme.example/job/2", .kind = WL_KIND_JOB },
		{ .id = 21, .spiffe_id = "spiffe://acme.example/job/1", .kind = WL_KIND_JOB },
	};
	struct policy_entry *e;
	int nr;

	/* check-domain.yaml only has rules for two workload IDs. */
	compile_file(DATA "check-domain.yaml", ids, 1, 0, &e, &nr);
	assert_int_equal(nr, 0);
	assert_null(e);
	compile_file(DATA "check-domain.yaml", ids, 2, 0, &e, &nr);
	assert_int_equal(nr, 1);
	assert_int_equal(e[0].key4.identity, 21);
	assert_int_equal(e[0].value.rule, 1);
	free(e);
}

/* Found by fuzz_policy: a policy without rules (and a config without
 * workloads) has NULL arrays, which compiling and checking walked with
 * NULL + 0, undefined behaviour (clang's UBSan reports it, gcc's does not). */
static void test_no_rules(void **state)
{
	static const struct policy_identity id = {
		.id = 20, .spiffe_id = "spiffe://acme.example/job/2", .kind = WL_KIND_JOB,
	};
	struct errmsg err = {};
	struct policy_entry *e;
	struct policy pol;
	struct config cfg;
	int nr;

	compile_file(DATA "no-rules.yaml", &id, 1, 0, &e, &nr);
	assert_int_equal(nr, 0);
	assert_null(e);
	assert_int_equal(config_load("tests/data/config/minimal.yaml", &cfg, &err), 0);
	assert_int_equal(policy_load(DATA "no-rules.yaml", &pol, &err), 0);
	assert_int_equal(cfg.nr_workloads, 0);
	assert_int_equal(policy_check_config(&pol, &cfg, &err), 0);
	policy_free(&pol);
	config_free(&cfg);
}

static void test_deterministic(void **state)
{
	struct policy_identity rev[ARRAY_SIZE(idents)];
	struct policy_entry *a, *b;
	int nr_a, nr_b;

	for (size_t i = 0; i < ARRAY_SIZE(idents); i++)
		rev[i] = idents[ARRAY_SIZE(idents) - 1 - i];
	compile_file(DATA "compile.yaml", idents, ARRAY_SIZE(idents), 0, &a, &nr_a);
	compile_file(DATA "compile.yaml", rev, ARRAY_SIZE(rev), 0, &b, &nr_b);
	assert_int_equal(nr_a, nr_b);
	assert_memory_equal(a, b, nr_a * sizeof(*a));
	free(a);
	free(b);
}

static void test_compile_too_big(void **state)
{
	enum { NR_ADDRS = 129, NR_PORTS = 256 };
	static const struct policy_identity id = { .id = 1, .kind = WL_KIND_JOB };
	struct cidr addrs[NR_ADDRS] = {};
	uint16_t ports[NR_PORTS];
	int to = 0, nr = -1;
	struct policy_service svc = {
		.name = "big", .addrs = addrs, .nr_addrs = NR_ADDRS, .ports = ports,
		.nr_ports = NR_PORTS, .proto = IPPROTO_TCP, .mesh = true,
	};
	struct policy_rule rule = { .from = FROM_ANY, .to = &to, .nr_to = 1, .allow = true };
	struct policy pol = {
		.path = "big.yaml", .services = &svc, .nr_services = 1, .rules = &rule,
		.nr_rules = 1,
	};
	struct policy_entry *e = (void *)1;
	struct errmsg err = {};

	for (int i = 0; i < NR_ADDRS; i++) {
		addrs[i].family = AF_INET;
		addrs[i].addr[0] = htonl(0x0a000000 + i);
		addrs[i].prefixlen = 32;
	}
	for (int i = 0; i < NR_PORTS; i++)
		ports[i] = 1000 + i;
	/* 129 * 256 = 33024 entries, over the 32768 one generation may use. */
	assert_int_equal(policy_compile(&pol, &id, 1, svc_ids, 0, &e, &nr, &err), -E2BIG);
	assert_null(e);
	assert_int_equal(nr, 0);
	assert_string_equal(err.msg,
			    "big.yaml: policy compiles to more than 32768 entries of one family");
	svc.nr_addrs = 128;
	assert_int_equal(policy_compile(&pol, &id, 1, svc_ids, 0, &e, &nr, &err), 0);
	assert_int_equal(nr, POLICY_MAX_ENTRIES);
	free(e);
}

/* Rules that all land on one entry still cost a candidate each, for every
 * workload: past POLICY_MAX_CANDIDATES a reload would stall the agent. */
static void test_compile_overlap(void **state)
{
	enum { NR_RULES = 1024, NR_IDS = POLICY_MAX_CANDIDATES / NR_RULES + 1 };
	struct cidr addr = { .family = AF_INET, .addr = { htonl(0x0a000001) }, .prefixlen = 32 };
	struct policy_service svc = {
		.name = "one", .addrs = &addr, .nr_addrs = 1, .proto = IPPROTO_TCP, .mesh = true,
	};
	struct policy_rule *rules = calloc(NR_RULES, sizeof(*rules));
	struct policy_identity *ids = calloc(NR_IDS, sizeof(*ids));
	struct policy pol = {
		.path = "overlap.yaml", .services = &svc, .nr_services = 1, .rules = rules,
		.nr_rules = NR_RULES,
	};
	struct policy_entry *e = (void *)1;
	struct errmsg err = {};
	char want[256];
	int to = 0, nr = -1;

	assert_non_null(rules);
	assert_non_null(ids);
	for (int i = 0; i < NR_RULES; i++)
		rules[i] = (struct policy_rule){ .from = FROM_ANY, .to = &to, .nr_to = 1,
						 .allow = true };
	for (int i = 0; i < NR_IDS; i++)
		ids[i] = (struct policy_identity){ .id = i + 1, .kind = WL_KIND_JOB };
	assert_int_equal(policy_compile(&pol, ids, NR_IDS, svc_ids, 0, &e, &nr, &err), -EOVERFLOW);
	assert_null(e);
	assert_int_equal(nr, 0);
	snprintf(want, sizeof(want),
		 "overlap.yaml: rules overlap too much: compiling them for %d workloads weighs "
		 "more than 1048576 candidate entries (workloads x rules x addresses x ports)",
		 NR_IDS);
	assert_string_equal(err.msg, want);
	/* Exactly the budget compiles: one entry per workload. */
	assert_int_equal(policy_compile(&pol, ids, NR_IDS - 1, svc_ids, 0, &e, &nr, &err), 0);
	assert_int_equal(nr, NR_IDS - 1);
	free(e);
	free(ids);
	free(rules);
}

static void test_compile_bad_args(void **state)
{
	static const struct policy_identity zero = { .id = 0, .spiffe_id = "spiffe://a/job/1" };
	struct policy pol = { .path = "p.yaml" };
	struct errmsg err = {};
	struct policy_entry *e;
	int nr;

	assert_int_equal(policy_compile(&pol, idents, 1, svc_ids, 2, &e, &nr, &err), -EINVAL);
	assert_string_equal(err.msg, "policy slot 2 out of range");
	assert_int_equal(policy_compile(&pol, &zero, 1, svc_ids, 0, &e, &nr, &err), -EINVAL);
	assert_string_equal(err.msg, "identity of spiffe://a/job/1 is 0, which is reserved");
}

static void test_names(void **state)
{
	assert_string_equal(policy_action_name(SLUICE_ACT_DENY), "deny");
	assert_string_equal(policy_action_name(SLUICE_ACT_ALLOW), "allow");
	assert_string_equal(policy_action_name(SLUICE_ACT_REDIRECT), "redirect");
	assert_string_equal(policy_action_name(SLUICE_ACT_ALLOW_WOULD_DENY), "would-deny");
	assert_string_equal(policy_action_name(4), "unknown");
	assert_string_equal(policy_reason_name(SLUICE_REASON_NONE), "none");
	assert_string_equal(policy_reason_name(SLUICE_REASON_POLICY_DENY), "policy-deny");
	assert_string_equal(policy_reason_name(SLUICE_REASON_DEFAULT_DENY), "default-deny");
	assert_string_equal(policy_reason_name(SLUICE_REASON_AGENT_DOWN), "agent-down");
	assert_string_equal(policy_reason_name(SLUICE_REASON_BYPASS), "bypass");
	assert_string_equal(policy_reason_name(SLUICE_REASON_NO_POLICY), "no-policy");
	assert_string_equal(policy_reason_name(SLUICE_REASON_NOT_VIA_MESH), "not-via-mesh");
	assert_string_equal(policy_reason_name(SLUICE_REASON_WOULD_DENY), "would-deny");
	assert_string_equal(policy_reason_name(SLUICE_REASON_MAX), "unknown");
}

/* What the datapath answers for one connect(): the port-specific LPM
 * lookup, then the any-port one, over the compiled entries. */
static const struct policy_entry *lpm_emulate(const struct policy_entry *e, int n, uint32_t id,
					      int family, const uint32_t *addr, uint16_t port,
					      uint8_t proto)
{
	const uint16_t ports[2] = { htons(port), SLUICE_PORT_ANY };

	for (int pass = 0; pass < 2; pass++) {
		const struct policy_entry *best = NULL;

		for (int i = 0; i < n; i++) {
			struct cidr c = { .family = e[i].family,
					  .prefixlen = e[i].key4.prefixlen - SLUICE_POLICY_FIXED_BITS };

			if (e[i].family != family || e[i].key4.identity != id ||
			    e[i].key4.proto != proto || e[i].key4.port != ports[pass])
				continue;
			if (family == AF_INET)
				c.addr[0] = e[i].key4.addr;
			else
				memcpy(c.addr, e[i].key6.addr, sizeof(c.addr));
			if (cidr_contains(&c, family, addr) &&
			    (!best || best->key4.prefixlen < e[i].key4.prefixlen))
				best = &e[i];
		}
		if (best)
			return best;
	}
	return NULL;
}

/* What policy_decide must say of a connect() the datapath misses: the
 * slot's default. */
static void assert_default(const struct policy *pol, const struct decision *d)
{
	uint32_t act = policy_default_action(pol);

	assert_int_equal(d->rule, -1);
	assert_int_equal(d->allow, act != SLUICE_ACT_DENY);
	assert_int_equal(d->would_deny, act == SLUICE_ACT_ALLOW_WOULD_DENY);
	assert_int_equal(d->reason, act == SLUICE_ACT_DENY ? SLUICE_REASON_DEFAULT_DENY
			 : d->would_deny	     ? SLUICE_REASON_WOULD_DENY
						     : SLUICE_REASON_NONE);
}

/* What policy_decide must say of a connect() the datapath finds hit for. */
static void assert_entry(const struct policy_entry *hit, const struct decision *d)
{
	bool flagged = hit->value.flags & SLUICE_POLICY_F_WOULD_DENY;

	assert_int_equal(d->allow, hit->value.action != SLUICE_ACT_DENY);
	assert_int_equal(d->would_deny, flagged);
	assert_int_equal(d->rule + 1, hit->value.rule);
	assert_int_equal(svc_ids[d->service], hit->value.service);
	assert_int_equal(d->reason, flagged	 ? SLUICE_REASON_WOULD_DENY
				    : d->allow ? SLUICE_REASON_NONE
					       : SLUICE_REASON_POLICY_DENY);
}

/* policy_decide and the compiled entries of file must never disagree over
 * the grid of addrs, ports and protocols: the far agent's answer has to be
 * the one connect() got. Returns how many the entries decided. */
static int decide_grid(const char *file, const char *const *addrs, size_t nr_addrs)
{
	static const uint16_t ports[] = { 80, 443, 5432, 9000, 53, 1 };
	static const uint8_t protos[] = { IPPROTO_TCP, IPPROTO_UDP };
	struct policy_entry *entries;
	const struct policy_entry *hit;
	struct errmsg err = {};
	struct decision d;
	struct policy pol;
	uint32_t addr[4];
	int n, family, checked = 0;

	assert_int_equal(policy_load(file, &pol, &err), 0);
	assert_int_equal(policy_compile(&pol, idents, ARRAY_SIZE(idents), svc_ids, 0, &entries,
					&n, &err), 0);
	for (size_t i = 0; i < ARRAY_SIZE(idents); i++) {
		for (size_t a = 0; a < nr_addrs; a++) {
			memset(addr, 0, sizeof(addr));
			family = strchr(addrs[a], ':') ? AF_INET6 : AF_INET;
			assert_int_equal(inet_pton(family, addrs[a], addr), 1);
			for (size_t p = 0; p < ARRAY_SIZE(ports); p++) {
				for (size_t k = 0; k < ARRAY_SIZE(protos); k++) {
					hit = lpm_emulate(entries, n, idents[i].id, family, addr,
							  ports[p], protos[k]);
					policy_decide(&pol, &idents[i], family, addr, ports[p],
						      protos[k], &d);
					if (!hit) {
						assert_default(&pol, &d);
						continue;
					}
					checked++;
					assert_entry(hit, &d);
				}
			}
		}
	}
	free(entries);
	policy_free(&pol);
	return checked;
}

static void test_decide_matches_datapath(void **state)
{
	static const char *const addrs[] = { "10.1.0.5", "10.1.0.6", "10.2.3.4", "10.3.0.7",
					     "10.4.0.1", "10.5.0.1", "fd00:2::9", "fd00:3::1",
					     "192.0.2.1" };

	/* The grid reaches every precedence case of compile.yaml. */
	assert_true(decide_grid(DATA "compile.yaml", addrs, ARRAY_SIZE(addrs)) >= 10);
}

/* The same for audit mode: would-denies, and an audit policy's default. */
static void test_audit_decide_matches_datapath(void **state)
{
	static const char *const addrs[] = { "10.1.0.5", "10.2.0.53", "10.3.0.7", "10.4.0.1",
					     "10.6.0.1", "10.7.0.1" };

	assert_int_equal(decide_grid(DATA "audit.yaml", addrs, ARRAY_SIZE(addrs)), 4);
	assert_int_equal(decide_grid(DATA "audit-rule.yaml", addrs, ARRAY_SIZE(addrs)), 4);
}

/* mode: at the top makes every rule audit, whatever a rule says; in an
 * enforce policy only the rules that say so are. */
static void test_audit_parse(void **state)
{
	struct errmsg err = {};
	struct policy pol;

	assert_int_equal(policy_load(DATA "audit.yaml", &pol, &err), 0);
	assert_true(pol.audit);
	for (int i = 0; i < pol.nr_rules; i++)
		assert_true(pol.rules[i].audit);
	assert_int_equal(policy_audit_rules(&pol), 3);
	assert_int_equal(policy_default_action(&pol), SLUICE_ACT_ALLOW_WOULD_DENY);
	policy_free(&pol);

	assert_int_equal(policy_load(DATA "audit-rule.yaml", &pol, &err), 0);
	assert_false(pol.audit);
	assert_false(pol.rules[0].audit);
	assert_true(pol.rules[1].audit);
	assert_false(pol.rules[2].audit);
	assert_true(pol.rules[3].audit);
	assert_int_equal(policy_audit_rules(&pol), 3);
	assert_int_equal(policy_default_action(&pol), SLUICE_ACT_DENY);
	policy_free(&pol);

	assert_int_equal(policy_load(DATA "compile.yaml", &pol, &err), 0);
	assert_false(pol.audit);
	assert_int_equal(policy_audit_rules(&pol), 0);
	policy_free(&pol);
}

/* An audit deny compiles to what an allow of the destination would (the
 * agent for a meshed TCP service, direct otherwise), flagged. */
static void test_audit_compile(void **state)
{
	const struct policy_entry *x;
	struct policy_entry *e;
	int nr;

	compile_file(DATA "audit.yaml", idents, ARRAY_SIZE(idents), 0, &e, &nr);
	x = find(e, nr, 10, "10.1.0.5", 5432);
	assert_int_equal(x->value.action, SLUICE_ACT_REDIRECT);
	assert_int_equal(x->value.flags, SLUICE_POLICY_F_WOULD_DENY);
	assert_int_equal(x->value.rule, 2);
	x = find(e, nr, 11, "10.1.0.5", 5432);
	assert_int_equal(x->value.action, SLUICE_ACT_REDIRECT);
	assert_int_equal(x->value.flags, 0);
	assert_int_equal(x->value.rule, 1);
	x = find(e, nr, 12, "10.3.0.7", 443);
	assert_int_equal(x->value.action, SLUICE_ACT_ALLOW);
	assert_int_equal(x->value.flags, SLUICE_POLICY_F_WOULD_DENY);
	x = find(e, nr, 12, "10.2.0.53", 53);
	assert_int_equal(x->key4.proto, IPPROTO_UDP);
	assert_int_equal(x->value.action, SLUICE_ACT_ALLOW);
	assert_int_equal(x->value.flags, SLUICE_POLICY_F_WOULD_DENY);
	assert_int_equal(x->value.rule, 3);
	free(e);

	compile_file(DATA "audit-rule.yaml", idents, ARRAY_SIZE(idents), 0, &e, &nr);
	x = find(e, nr, 10, "10.1.0.5", 5432);
	assert_int_equal(x->value.action, SLUICE_ACT_REDIRECT);
	assert_int_equal(x->value.flags, SLUICE_POLICY_F_WOULD_DENY);
	assert_int_equal(x->value.rule, 2);
	/* An enforced deny beats an audit one of equal rank. */
	x = find(e, nr, 11, "10.1.0.5", 5432);
	assert_int_equal(x->value.action, SLUICE_ACT_DENY);
	assert_int_equal(x->value.flags, 0);
	assert_int_equal(x->value.rule, 3);
	free(e);
}

static void decide_at(const struct policy *pol, const struct policy_identity *id,
		      const char *addr, uint16_t port, uint8_t proto, struct decision *d)
{
	uint32_t a[4] = {};

	assert_int_equal(inet_pton(AF_INET, addr, a), 1);
	policy_decide(pol, id, AF_INET, a, port, proto, d);
}

static void test_audit_decide(void **state)
{
	struct errmsg err = {};
	struct decision d;
	struct policy pol;

	assert_int_equal(policy_load(DATA "audit.yaml", &pol, &err), 0);
	decide_at(&pol, &idents[0], "10.1.0.5", 5432, IPPROTO_TCP, &d);
	assert_true(d.allow);
	assert_true(d.would_deny);
	assert_int_equal(d.reason, SLUICE_REASON_WOULD_DENY);
	assert_int_equal(d.rule, 1);
	assert_int_equal(d.service, 0);
	decide_at(&pol, &idents[1], "10.1.0.5", 5432, IPPROTO_TCP, &d);
	assert_true(d.allow);
	assert_false(d.would_deny);
	assert_int_equal(d.reason, SLUICE_REASON_NONE);
	/* The default deny of an audit policy, still naming the service. */
	decide_at(&pol, &idents[2], "10.6.0.1", 80, IPPROTO_TCP, &d);
	assert_true(d.allow);
	assert_true(d.would_deny);
	assert_int_equal(d.reason, SLUICE_REASON_WOULD_DENY);
	assert_int_equal(d.rule, -1);
	assert_int_equal(d.service, 3);
	policy_free(&pol);

	assert_int_equal(policy_load(DATA "audit-rule.yaml", &pol, &err), 0);
	decide_at(&pol, &idents[1], "10.1.0.5", 5432, IPPROTO_TCP, &d);
	assert_false(d.allow);
	assert_false(d.would_deny);
	assert_int_equal(d.reason, SLUICE_REASON_POLICY_DENY);
	assert_int_equal(d.rule, 2);
	/* An enforce policy's default still refuses. */
	decide_at(&pol, &idents[2], "10.1.0.5", 5432, IPPROTO_TCP, &d);
	assert_false(d.allow);
	assert_false(d.would_deny);
	assert_int_equal(d.reason, SLUICE_REASON_DEFAULT_DENY);
	policy_free(&pol);
}

static void decide_request(const struct policy *pol, const struct policy_identity *id,
			   const char *service, const char *method, struct decision *d)
{
	struct http_req req = { .method = method, .path = "/a" };
	int svc = -1;

	for (int i = 0; i < pol->nr_services; i++)
		svc = !strcmp(pol->services[i].name, service) ? i : svc;
	assert_true(svc >= 0);
	policy_decide_http(pol, id, svc, &req, d);
}

static void test_audit_decide_http(void **state)
{
	struct errmsg err = {};
	struct decision d;
	struct policy pol;

	assert_int_equal(policy_load(DATA "audit-rule.yaml", &pol, &err), 0);
	decide_request(&pol, &idents[0], "api", "DELETE", &d);
	assert_true(d.allow);
	assert_true(d.would_deny);
	assert_int_equal(d.reason, SLUICE_REASON_WOULD_DENY);
	assert_int_equal(d.rule, 4);
	assert_int_equal(d.service, 1);
	decide_request(&pol, &idents[0], "api", "PUT", &d);
	assert_false(d.allow);
	assert_false(d.would_deny);
	assert_int_equal(d.reason, SLUICE_REASON_POLICY_DENY);
	assert_int_equal(d.rule, 5);
	decide_request(&pol, &idents[0], "api", "GET", &d);
	assert_true(d.allow);
	assert_false(d.would_deny);
	assert_int_equal(d.rule, 0);
	decide_request(&pol, &idents[2], "api", "GET", &d);
	assert_false(d.allow);
	assert_int_equal(d.reason, SLUICE_REASON_DEFAULT_DENY);
	policy_free(&pol);

	assert_int_equal(policy_load(DATA "audit.yaml", &pol, &err), 0);
	decide_request(&pol, &idents[2], "web", "GET", &d);
	assert_true(d.allow);
	assert_true(d.would_deny);
	assert_int_equal(d.reason, SLUICE_REASON_WOULD_DENY);
	assert_int_equal(d.rule, -1);
	policy_free(&pol);
}

static void test_rule_label(void **state)
{
	char buf[64];

	policy_rule_label("no-delete", 5, buf, sizeof(buf));
	assert_string_equal(buf, "no-delete");
	policy_rule_label(NULL, 3, buf, sizeof(buf));
	assert_string_equal(buf, "rule-3");
	policy_rule_label(NULL, 0, buf, sizeof(buf));
	assert_string_equal(buf, "default");
}

static void test_roles_from_claims(void **state)
{
	const char *roles[4];
	struct errmsg err = {};
	struct policy pol;
	json_t *claims;

	assert_int_equal(policy_load(DATA "good.yaml", &pol, &err), 0);
	claims = json_pack("{s:s, s:[s, s]}", "sub", "x", "groups", "nobody", "etl-jobs");
	assert_int_equal(policy_roles_from_claims(&pol, claims, roles, 4), 1);
	assert_string_equal(roles[0], "etl");
	json_decref(claims);
	claims = json_pack("{s:s}", "groups", "etl-jobs");
	assert_int_equal(policy_roles_from_claims(&pol, claims, roles, 4), 1);
	json_decref(claims);
	claims = json_pack("{s:[s]}", "groups", "analysts-not");
	assert_int_equal(policy_roles_from_claims(&pol, claims, roles, 4), 0);
	json_decref(claims);
	/* Every claim of a role must hold. */
	claims = json_pack("{s:[s], s:s}", "groups", "analysts", "department", "finance");
	assert_int_equal(policy_roles_from_claims(&pol, claims, roles, 4), 1);
	assert_string_equal(roles[0], "analyst");
	json_decref(claims);
	claims = json_pack("{s:[s]}", "groups", "analysts");
	assert_int_equal(policy_roles_from_claims(&pol, claims, roles, 4), 0);
	json_decref(claims);
	policy_free(&pol);
}

/* What l7.yaml's L7 keys and edge section hold once loaded. */
static void test_l7_parse(void **state)
{
	const struct policy_edge *e;
	const struct policy_rule *r;
	struct errmsg err = {};
	struct policy pol;

	assert_int_equal(policy_load(DATA "l7.yaml", &pol, &err), 0);
	assert_true(pol.services[0].http);
	assert_int_equal(pol.services[0].proto, IPPROTO_TCP);
	assert_false(pol.services[3].http);
	r = &pol.rules[0];
	assert_int_equal(r->nr_methods, 2);
	assert_string_equal(r->methods[0], "GET");
	assert_string_equal(r->methods[1], "HEAD");
	assert_int_equal(r->nr_paths, 0);
	assert_true(policy_rule_is_l7(r));
	r = &pol.rules[1];
	assert_int_equal(r->nr_paths, 1);	/* a scalar is a one-item list */
	assert_string_equal(r->paths[0], "/admin/**");
	r = &pol.rules[12];
	assert_int_equal(r->nr_hosts, 1);
	assert_string_equal(r->hosts[0], "*.internal.example");
	assert_false(policy_rule_is_l7(&pol.rules[16]));

	e = &pol.edge;
	assert_true(e->present);
	assert_int_equal(e->line, 127);	/* its first key */
	assert_int_equal(e->nr_hosts, 2);
	assert_string_equal(e->hosts[0], "api.acme.example");
	assert_string_equal(e->hosts[1], "*.edge.example");
	assert_int_equal(e->port, 80);
	assert_null(e->tls_cert);
	assert_null(e->tls_key);
	assert_int_equal(e->max_body, 10 << 20);
	assert_int_equal(e->timeout_ms, 90 * 1000);
	assert_int_equal(e->nr_routes, 4);
	assert_string_equal(e->routes[0].prefix, "/api/");
	assert_int_equal(e->routes[0].service, 0);
	assert_int_equal(e->routes[0].line, 131);
	assert_string_equal(e->routes[1].prefix, "/api/v2/");
	assert_int_equal(e->routes[1].service, 2);
	assert_string_equal(e->routes[3].prefix, "/");
	assert_int_equal(e->routes[3].service, 1);
	policy_free(&pol);
	assert_empty(&pol);

	assert_int_equal(policy_load(DATA "good.yaml", &pol, &err), 0);
	assert_false(pol.edge.present);
	policy_free(&pol);
}

static void write_policy(struct tmpfile *t, const char *body)
{
	FILE *f = tmpfile_open(t, "policy.yaml");

	fputs(body, f);
	assert_int_equal(fclose(f), 0);
}

/* Defaults: 443 with tls (paths as written), 1 MiB, 60 s; patterns are
 * stored normalised and upper-case methods as written. */
static void test_edge_defaults(void **state)
{
	static const char body[] = "version: 1\n"
				   "services:\n"
				   "  - {name: api, addresses: [10.0.0.1], protocol: http}\n"
				   "rules:\n"
				   "  - from: {any: true}\n"
				   "    to: api\n"
				   "    action: allow\n"
				   "    methods: M-SEARCH\n"
				   "    paths: [\"/a/./b//c/../d\", /x/%41/*, /p%2541]\n"
				   "edge:\n"
				   "  hosts: API.Acme.Example\n"
				   "  tls: {cert: ../pki/edge.crt, key: /etc/sluice/edge.key}\n"
				   "  routes: [{prefix: /, service: api}]\n";
	char path[L7_PATH_MAX];
	struct errmsg err = {};
	struct policy pol;
	struct tmpfile t;

	write_policy(&t, body);
	if (policy_load(t.path, &pol, &err))
		fail_msg("%s", err.msg);
	assert_string_equal(pol.rules[0].methods[0], "M-SEARCH");
	assert_string_equal(pol.rules[0].paths[0], "/a/b/d");
	assert_string_equal(pol.rules[0].paths[1], "/x/A/*");
	/* Stored decoded, so it matches what the same request decodes to,
	 * and not the path "/p%41" would decode to. */
	assert_string_equal(pol.rules[0].paths[2], "/p%41");
	assert_int_equal(l7_path_normalize("/p%2541", 7, path, sizeof(path), &err), 0);
	assert_true(l7_path_match(pol.rules[0].paths[2], path));
	assert_false(l7_path_match(pol.rules[0].paths[2], "/pA"));
	assert_string_equal(pol.edge.hosts[0], "api.acme.example");
	assert_string_equal(pol.edge.tls_cert, "../pki/edge.crt");
	assert_string_equal(pol.edge.tls_key, "/etc/sluice/edge.key");
	assert_int_equal(pol.edge.port, 443);
	assert_int_equal(pol.edge.max_body, 1 << 20);
	assert_int_equal(pol.edge.timeout_ms, 60 * 1000);
	policy_free(&pol);
	tmpfile_remove(&t);
}

static void test_edge_sizes(void **state)
{
	static const struct {
		const char *size;
		uint64_t bytes;
	} cases[] = {
		{ "1", 1 }, { "512", 512 }, { "64k", 64 << 10 }, { "8K", 8 << 10 },
		{ "10m", 10 << 20 }, { "1g", 1 << 30 }, { "1024m", 1 << 30 },
	};
	char body[256];
	struct errmsg err = {};
	struct policy pol;
	struct tmpfile t;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(body, sizeof(body),
			 "version: 1\n"
			 "services: [{name: api, addresses: [10.0.0.1], protocol: http}]\n"
			 "edge: {hosts: a.example, port: 8080, max_body: %s,\n"
			 "       routes: [{prefix: /, service: api}]}\n",
			 cases[i].size);
		write_policy(&t, body);
		if (policy_load(t.path, &pol, &err))
			fail_msg("%s: %s", cases[i].size, err.msg);
		assert_int_equal(pol.edge.max_body, cases[i].bytes);
		assert_int_equal(pol.edge.port, 8080);
		policy_free(&pol);
		tmpfile_remove(&t);
	}
}

/* Inside the mesh an L7 rule applies by its L4 part: an allow with methods
 * lets every connection to the service through (steered, as mesh: true
 * services are), whatever the method, and a deny with paths drops them
 * all. The edge decides the requests. */
/* At connect() an L7 allow lets connections through for the gate to
 * decide each request; an L7 deny and a via: edge rule refuse none (they
 * are about requests), so the L4 rule under them decides the connection. */
static void test_l7_rule_compiles_to_l4(void **state)
{
	static const char body[] = "version: 1\n"
				   "services:\n"
				   "  - {name: api, addresses: [10.0.0.1], ports: [80], protocol: http}\n"
				   "  - {name: web, addresses: [10.0.0.2], ports: [80], protocol: http}\n"
				   "rules:\n"
				   "  - {from: {any: true}, to: api, action: allow, methods: [GET]}\n"
				   "  - {from: {any: true}, to: web, action: deny, paths: [/admin/**]}\n"
				   "  - {from: {any: true}, to: web, action: allow}\n"
				   "  - {from: {any: true}, to: api, action: deny, via: edge}\n";
	static const struct policy_identity id = { .id = 7 };
	const struct policy_entry *x;
	struct policy_entry *e;
	uint32_t addr[4] = {};
	struct decision d;
	struct errmsg err = {};
	struct policy pol;
	struct tmpfile t;
	int nr;

	write_policy(&t, body);
	compile_file(t.path, &id, 1, 0, &e, &nr);
	assert_int_equal(nr, 2);
	x = find(e, nr, 7, "10.0.0.1", 80);
	assert_int_equal(x->value.action, SLUICE_ACT_REDIRECT);
	assert_int_equal(x->value.rule, 1);	/* 1-based in the maps */
	x = find(e, nr, 7, "10.0.0.2", 80);
	assert_int_equal(x->value.action, SLUICE_ACT_REDIRECT);
	assert_int_equal(x->value.rule, 3);
	free(e);

	assert_int_equal(policy_load(t.path, &pol, &err), 0);
	assert_int_equal(inet_pton(AF_INET, "10.0.0.1", addr), 1);
	policy_decide(&pol, &id, AF_INET, addr, 80, IPPROTO_TCP, &d);
	assert_true(d.allow);
	assert_int_equal(d.rule, 0);
	assert_int_equal(inet_pton(AF_INET, "10.0.0.2", addr), 1);
	policy_decide(&pol, &id, AF_INET, addr, 80, IPPROTO_TCP, &d);
	assert_true(d.allow);
	assert_int_equal(d.rule, 2);
	policy_free(&pol);
	tmpfile_remove(&t);
}

/* What `sluicectl policy check` prints for each L7 rule. */
static void test_mesh_note(void **state)
{
	static const char body[] = "version: 1\n"
				   "services:\n"
				   "  - {name: api, addresses: [10.0.0.1], protocol: http}\n"
				   "  - {name: web, addresses: [10.0.0.2], protocol: http}\n"
				   "rules:\n"
				   "  - {from: {any: true}, to: [api, web], action: allow, hosts: a.example}\n"
				   "  - {from: {any: true}, to: web, action: deny, paths: /x}\n";
	static const char want[] = "decided per request (at the edge, and by the agent in front "
				   "of api, web); at connect() it lets connections through";
	struct errmsg err = {};
	struct policy pol;
	struct tmpfile t;
	char buf[160];

	write_policy(&t, body);
	assert_int_equal(policy_load(t.path, &pol, &err), 0);
	assert_int_equal(policy_rule_mesh_note(&pol, &pol.rules[0], buf, sizeof(buf)),
			 strlen(want));
	assert_string_equal(buf, want);
	assert_int_equal(policy_rule_mesh_note(&pol, &pol.rules[0], NULL, 0), strlen(want));
	/* Cut like snprintf(), NUL-terminated. */
	assert_int_equal(policy_rule_mesh_note(&pol, &pol.rules[0], buf, 9), strlen(want));
	assert_string_equal(buf, "decided ");
	policy_rule_mesh_note(&pol, &pol.rules[1], buf, sizeof(buf));
	assert_string_equal(buf, "decided per request (at the edge, and by the agent in front "
				 "of web); it refuses no connection");
	policy_free(&pol);
	tmpfile_remove(&t);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_good_policy),
		cmocka_unit_test(test_default_deny),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_file_size),
		cmocka_unit_test(test_alias),
		cmocka_unit_test(test_check_config_ok),
		cmocka_unit_test(test_check_config_role),
		cmocka_unit_test(test_check_config_domain),
		cmocka_unit_test(test_compile_exact),
		cmocka_unit_test(test_decide_matches_datapath),
		cmocka_unit_test(test_audit_decide_matches_datapath),
		cmocka_unit_test(test_audit_parse),
		cmocka_unit_test(test_audit_compile),
		cmocka_unit_test(test_audit_decide),
		cmocka_unit_test(test_audit_decide_http),
		cmocka_unit_test(test_rule_label),
		cmocka_unit_test(test_roles_from_claims),
		cmocka_unit_test(test_workload_deny_beats_kind_allow),
		cmocka_unit_test(test_deny_beats_allow_same_specificity),
		cmocka_unit_test(test_role_allow_beats_any_deny),
		cmocka_unit_test(test_port_any_and_v6),
		cmocka_unit_test(test_udp_and_direct_allow),
		cmocka_unit_test(test_slot),
		cmocka_unit_test(test_unmentioned_identity),
		cmocka_unit_test(test_no_rules),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_compile_too_big),
		cmocka_unit_test(test_compile_overlap),
		cmocka_unit_test(test_compile_bad_args),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_l7_parse),
		cmocka_unit_test(test_edge_defaults),
		cmocka_unit_test(test_edge_sizes),
		cmocka_unit_test(test_l7_rule_compiles_to_l4),
		cmocka_unit_test(test_mesh_note),
	};
	return run_with_bad_files("policy", fixed, ARRAY_SIZE(fixed), bad_cases, ARRAY_SIZE(bad_cases),
				  test_bad_policy);
}
