/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * GET /metrics on listen.http: Prometheus' text exposition format 0.0.4,
 * rendered on each scrape straight from the BPF maps (per-CPU counters
 * summed, log2 histograms converted to `le` buckets) and the agent's own
 * counters. A scrape walks the maps that hold live series (svc_stats,
 * svc_rtt, violations: pairs and keys, never past flows) and counts the
 * entries of the others in batches. README.md#metrics lists every metric.
 *
 * Cardinality: at most METRICS_MAX_SERIES label sets per family; what is
 * past it is left out and counted in sluice_metrics_series_dropped_total.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "audit.h"
#include "decisions.h"
#include "http_authz.h"
#include "otlp.h"
#include "proxy.h"
#include "strbuf.h"
#include "tunnel.h"

#define METRICS_MAX_SERIES 4096

struct datapath;

/* What the agent knows that the maps do not. */
struct metrics_agent {
	struct proxy_stats proxy;
	struct audit_health audit;
	struct decisions_stats dec;
	uint64_t applies_ok, applies_failed, rollbacks;
	uint32_t generation;		/* the live one, and its policy's SHA-256 */
	const char *sha256;
	bool has_tunnel;
	struct tunnel_stats tunnel;
	bool has_otlp;
	struct otlp_stats otlp;
	struct http_authz_stats http;	/* its series valid while rendering */
};

struct metrics_deps {
	const struct datapath *dp;
	void (*agent)(void *ctx, struct metrics_agent *out);
	void *ctx;
};

/*
 * A scrape is rendered in two parts, appended to b in this order.
 * metrics_render_agent(): what the agent knows, asked through deps->agent,
 * and sluice_cfg; in the agent's thread, since that state is the loop's.
 * metrics_render_maps(): the families read from the BPF maps, the bulk of
 * a scrape; it only reads dp's map fds, so it may run in another thread
 * while the loop goes on. -ENOMEM when b could not grow.
 */
void metrics_render_agent(const struct metrics_deps *deps, struct strbuf *b);
int metrics_render_maps(const struct datapath *dp, struct strbuf *b);

/* Histogram buckets, in microseconds: `le` bounds the log2 buckets are
 * merged into (every other power of two, 16 us to 16.8 s). */
#define METRICS_NR_LE 11
extern const uint64_t metrics_le_us[METRICS_NR_LE];
/* Cumulative counts of log2 buckets b (bucket i: [2^i, 2^(i+1)) us) at
 * each of metrics_le_us; exact, since every bound is a bucket edge. */
void metrics_cumulate(const __u64 *b, int nr_b, uint64_t cum[METRICS_NR_LE]);

#endif
