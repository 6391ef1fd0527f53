// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The conversion of BPF's log2 microsecond buckets into Prometheus' `le`
 * buckets (metrics.h): cumulative, exact at every bound, nothing counted
 * twice or lost.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "metrics.h"

/* An observation of us microseconds, as BPF's log2_bucket() files it. */
static void observe(__u64 *b, uint64_t us)
{
	int i = us ? 63 - __builtin_clzll(us) : 0;

	b[i < SLUICE_LAT_BUCKETS ? i : SLUICE_LAT_BUCKETS - 1]++;
}

static void test_bounds_are_bucket_edges(void **state)
{
	for (int k = 0; k < METRICS_NR_LE; k++) {
		assert_int_equal(__builtin_popcountll(metrics_le_us[k]), 1);
		if (k)
			assert_true(metrics_le_us[k] > metrics_le_us[k - 1]);
	}
}

/* Every le counts exactly the observations under it. */
static void test_cumulative_exact(void **state)
{
	static const uint64_t obs[] = { 0, 1, 15, 16, 17, 63, 64, 100, 255, 256, 1023, 1024,
					5000, 70000, 999999, 1048576, 20000000, 1ull << 40 };
	__u64 b[SLUICE_LAT_BUCKETS] = {};
	uint64_t cum[METRICS_NR_LE];

	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
		observe(b, obs[i]);
	metrics_cumulate(b, SLUICE_LAT_BUCKETS, cum);
	for (int k = 0; k < METRICS_NR_LE; k++) {
		uint64_t want = 0;

		for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
			want += obs[i] < metrics_le_us[k];
		assert_int_equal(cum[k], want);
		if (k)
			assert_true(cum[k] >= cum[k - 1]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds_are_bucket_edges),
		cmocka_unit_test(test_cumulative_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
