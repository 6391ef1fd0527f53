// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The per-address counts behind the proxy's handshake caps. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "addrcount.h"

#define NR_HOSTS 500

static struct sockaddr_storage v4(uint32_t host, uint16_t port)
{
	struct sockaddr_storage ss = {};
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(host);
	s4->sin_port = htons(port);
	return ss;
}

static struct sockaddr_storage v6(uint32_t host, uint16_t port)
{
	struct sockaddr_storage ss = {};
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	s6->sin6_family = AF_INET6;
	s6->sin6_addr.s6_addr32[3] = htonl(host);
	s6->sin6_port = htons(port);
	return ss;
}

/* Ports do not matter; families do. */
static void test_per_host(void **state)
{
	struct sockaddr_storage a1 = v4(0x0a000001, 1000), a2 = v4(0x0a000001, 2000);
	struct sockaddr_storage b = v4(0x0a000002, 1000), a6 = v6(0x0a000001, 1000);
	struct addr_count *c;

	assert_int_equal(addr_count_new(2, &c), 0);
	assert_int_equal(addr_count_inc(c, &a1), 0);
	assert_int_equal(addr_count_inc(c, &a2), 0);
	assert_int_equal(addr_count_get(c, &a1), 2);
	assert_true(addr_same_host(&a1, &a2));
	assert_false(addr_same_host(&a1, &a6));
	assert_int_equal(addr_count_get(c, &b), 0);
	assert_int_equal(addr_count_inc(c, &b), 0);
	/* Two hosts counted: a third does not fit, more of either does. */
	assert_int_equal(addr_count_inc(c, &a6), -ENOSPC);
	assert_int_equal(addr_count_inc(c, &b), 0);
	assert_int_equal(addr_count_get(c, &b), 2);
	addr_count_dec(c, &a1);
	addr_count_dec(c, &a2);
	assert_int_equal(addr_count_get(c, &a1), 0);
	assert_int_equal(addr_count_inc(c, &a6), 0);
	assert_int_equal(addr_count_get(c, &a6), 1);
	addr_count_free(c);
}

/* Many hosts in and out, against a plain array: freeing a slot never
 * loses a host whose probe run passed over it. */
static void test_churn(void **state)
{
	static unsigned int want[NR_HOSTS];
	struct sockaddr_storage ss;
	struct addr_count *c;
	unsigned int seed = 7, h;

	assert_int_equal(addr_count_new(NR_HOSTS, &c), 0);
	for (int round = 0; round < 200000; round++) {
		seed = seed * 1103515245 + 12345;
		h = (seed >> 8) % NR_HOSTS;
		ss = h % 2 ? v4(h, round) : v6(h, round);
		if (want[h] && (seed >> 4) % 2) {
			addr_count_dec(c, &ss);
			want[h]--;
		} else {
			assert_int_equal(addr_count_inc(c, &ss), 0);
			want[h]++;
		}
		if (round % 1000 == 0) {
			for (unsigned int i = 0; i < NR_HOSTS; i++) {
				ss = i % 2 ? v4(i, 1) : v6(i, 1);
				assert_int_equal(addr_count_get(c, &ss), want[i]);
			}
		}
	}
	addr_count_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_host),
		cmocka_unit_test(test_churn),
	};

	return cmocka_run_group_tests_name("addrcount", tests, NULL, NULL);
}
