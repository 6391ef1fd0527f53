/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Watches the LRU maps that hold an entry per flow (orig_dst, redirects,
 * flows, flow_links). An LRU map never refuses an insert: when full it
 * evicts its oldest entries, silently. A flow the agent has accepted needs
 * none of them any more (it already read its redirect), so it keeps going;
 * what is lost is its record (sluicectl flow list, svc_stats at close) and,
 * at worst, the redirect of a connection not yet accepted. So the agent
 * counts the entries of redirects and flows (the other two fill with them)
 * every MAPFULL_INTERVAL_S and warns, once per interval, about each one
 * that is full (sluice_map_full).
 */
#ifndef SLUICE_MAPFULL_H
#define SLUICE_MAPFULL_H

#include <stdint.h>

struct datapath;

#define MAPFULL_INTERVAL_S 10

struct mapfull {
	uint64_t next_ns; /* next count, CLOCK_MONOTONIC; 0: at the first poll */
};

/* Called every tick; counts and logs only once the interval is over. */
void mapfull_poll(struct mapfull *mf, const struct datapath *dp);

#endif
