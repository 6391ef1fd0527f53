/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Kernel feature probes run before the programs are loaded, so that an
 * older kernel gets "kernel lacks X (needs Linux >= Y)" rather than a
 * verifier log.
 */
#ifndef SLUICE_PROBE_H
#define SLUICE_PROBE_H

#include <stdbool.h>
#include <stdio.h>

#include "errmsg.h"

struct probe_result {
	const char *name;
	const char *since;		/* first kernel with it, for the hint */
	bool required;
	bool present;
};

#define PROBE_MAX 24

/* Fills results (up to PROBE_MAX); returns the number filled. */
int probe_kernel(struct probe_result *res);
/* 0 when every required feature is present; otherwise -ENOTSUP and a
 * message naming the first missing one. */
int probe_check(const struct probe_result *res, int n, struct errmsg *err);
void probe_print(FILE *f, const struct probe_result *res, int n);

#endif
