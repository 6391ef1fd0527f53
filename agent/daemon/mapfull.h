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
 * that is full (sluice_map_full). A count is spread over ticks, a few
 * batches a tick, so that a full map never stalls the proxy's loop for
 * long; entries that come and go meanwhile make it approximate, which is
 * enough to tell full from not.
 */
#ifndef SLUICE_MAPFULL_H
#define SLUICE_MAPFULL_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>

struct datapath;

#define MAPFULL_INTERVAL_S 10

/* Zeroed: the first round starts at the first poll. */
struct mapfull {
	uint64_t next_ns;		/* next round, CLOCK_MONOTONIC */
	bool counting;			/* a round is under way */
	int map;			/* the map it counts */
	bool started;			/* token holds where the walk got to */
	__u64 token;
	long entries;			/* so far in this map */
};

/* Called every tick: goes on with the round under way, or starts one once
 * the interval is over. */
void mapfull_poll(struct mapfull *mf, const struct datapath *dp);

#endif
