/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* CLOCK_MONOTONIC, the clock bpf_ktime_get_ns() reads: heartbeats,
 * deadlines and ages compare with what BPF wrote. */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline uint64_t mono_ms(void)
{
	return mono_ns() / 1000000;
}

#endif
