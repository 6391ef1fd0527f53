// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are IPv4 addresses wherever a
 * decision is made: a dual-stack AF_INET6 socket (the JVM's default) must
 * meet the IPv4 rules, allowed or denied, and never slip past them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "policy.h"

static void addr6(const char *s, uint32_t *a)
{
	assert_int_equal(inet_pton(AF_INET6, s, a), 1);
}

static void test_cidr_mapped_is_ipv4(void **state)
{
	struct cidr c;
	char why[128];

	assert_int_equal(parse_cidr("::ffff:10.0.0.0/104", &c, why, sizeof(why)), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefixlen, 8);
	assert_int_equal(c.addr[0], htonl(0x0a000000));
	assert_int_equal(c.addr[1] | c.addr[2] | c.addr[3], 0);

	assert_int_equal(parse_cidr("::ffff:10.77.0.2", &c, why, sizeof(why)), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefixlen, 32);
	assert_int_equal(c.addr[0], htonl(0x0a4d0002));

	/* Wider than the mapped block: an IPv6 network like any other. */
	assert_int_equal(parse_cidr("::/64", &c, why, sizeof(why)), 0);
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.prefixlen, 64);

	assert_int_equal(parse_cidr("::ffff:10.0.0.1/104", &c, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "host bits must be zero (did you mean ::ffff:10.0.0.0/104?)");
}

static void test_cidr_contains_mapped(void **state)
{
	struct cidr v4, v6;
	uint32_t a[4];
	char why[128];

	assert_int_equal(parse_cidr("10.77.0.0/24", &v4, why, sizeof(why)), 0);
	assert_int_equal(parse_cidr("::/0", &v6, why, sizeof(why)), 0);
	addr6("::ffff:10.77.0.2", a);
	assert_true(cidr_contains(&v4, AF_INET6, a));
	/* Decided as IPv4: an IPv6 wildcard does not cover it. */
	assert_false(cidr_contains(&v6, AF_INET6, a));
	addr6("::ffff:10.78.0.2", a);
	assert_false(cidr_contains(&v4, AF_INET6, a));
	/* ::a.b.c.d (IPv4-compatible, deprecated) is plain IPv6. */
	addr6("::10.77.0.2", a);
	assert_false(cidr_contains(&v4, AF_INET6, a));
	assert_true(cidr_contains(&v6, AF_INET6, a));
}

static void test_sockaddr_unmap(void **state)
{
	struct sockaddr_storage ss;
	char buf[SOCKADDR_STR_LEN];

	assert_int_equal(parse_sockaddr("[::ffff:10.99.0.2]:5432", &ss), 0);
	sockaddr_unmap(&ss);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_string_equal(format_sockaddr(&ss, buf, sizeof(buf)), "10.99.0.2:5432");

	assert_int_equal(parse_sockaddr("[fd99::2]:5432", &ss), 0);
	sockaddr_unmap(&ss);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_string_equal(format_sockaddr(&ss, buf, sizeof(buf)), "[fd99::2]:5432");

	assert_int_equal(parse_sockaddr("10.99.0.2:80", &ss), 0);
	sockaddr_unmap(&ss);
	assert_string_equal(format_sockaddr(&ss, buf, sizeof(buf)), "10.99.0.2:80");
}

/* What the tunnel's receiving side decides for a mapped destination: the
 * IPv4 deny rules hold under default allow. */
static void test_decide_mapped(void **state)
{
	static const struct policy_identity job = {
		.id = 10, .spiffe_id = "spiffe://acme.example/job/1", .kind = WL_KIND_JOB,
	};
	struct errmsg err = {};
	struct decision d;
	struct policy pol;
	uint32_t a[4];

	assert_int_equal(policy_load("tests/data/policy/mapped.yaml", &pol, &err), 0);

	addr6("::ffff:10.9.0.2", a);
	policy_decide(&pol, &job, AF_INET6, a, 5432, IPPROTO_TCP, &d);
	assert_false(d.allow);
	assert_string_equal(pol.rules[d.rule].name, "no-warehouse");

	/* The service written with a mapped network denies the IPv4 address. */
	memset(a, 0, sizeof(a));
	a[0] = htonl(0x0a080001);
	policy_decide(&pol, &job, AF_INET, a, 443, IPPROTO_TCP, &d);
	assert_false(d.allow);
	assert_string_equal(pol.services[d.service].name, "legacy");

	/* ::/0 is IPv6 only: a mapped destination on port 22 is IPv4. */
	addr6("::ffff:10.7.0.1", a);
	policy_decide(&pol, &job, AF_INET6, a, 22, IPPROTO_TCP, &d);
	assert_true(d.allow);
	addr6("fd00::1", a);
	policy_decide(&pol, &job, AF_INET6, a, 22, IPPROTO_TCP, &d);
	assert_false(d.allow);
	policy_free(&pol);
}

/* The compiled map holds no IPv6 entry for a mapped network: connect6
 * looks mapped destinations up in policy4. */
static void test_compile_mapped(void **state)
{
	static const struct policy_identity job = {
		.id = 10, .spiffe_id = "spiffe://acme.example/job/1", .kind = WL_KIND_JOB,
	};
	static const uint32_t svc_ids[] = { 1, 2, 3 };
	struct policy_entry *e;
	struct errmsg err = {};
	struct policy pol;
	int n, legacy4 = 0;

	assert_int_equal(policy_load("tests/data/policy/mapped.yaml", &pol, &err), 0);
	assert_int_equal(policy_compile(&pol, &job, 1, svc_ids, 0, &e, &n, &err), 0);
	for (int i = 0; i < n; i++) {
		if (e[i].value.service != 2)
			continue;
		assert_int_equal(e[i].family, AF_INET);
		assert_int_equal(e[i].key4.addr, htonl(0x0a080000));
		assert_int_equal(e[i].key4.prefixlen, SLUICE_POLICY_FIXED_BITS + 16);
		legacy4++;
	}
	/* Any port, TCP: exactly one entry, and it is IPv4. */
	assert_int_equal(legacy4, 1);
	free(e);
	policy_free(&pol);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_mapped_is_ipv4),
		cmocka_unit_test(test_cidr_contains_mapped),
		cmocka_unit_test(test_sockaddr_unmap),
		cmocka_unit_test(test_decide_mapped),
		cmocka_unit_test(test_compile_mapped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
