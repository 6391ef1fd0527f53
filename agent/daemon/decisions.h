/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The audit lines of the decisions the tunnel does not write
 * (docs/audit.md): every refusal BPF makes at connect(), sendmsg() and at a
 * mesh-only listener, and every would-deny it lets through (an audit-mode
 * deny), read from the `refusals` ring buffer as it happens,
 * and every flow the agent proxies without a tunnel, when it closes.
 *
 * Refusals are folded so that a retry loop or a UDP flood cannot flood the
 * log: the first refusal of a (workload, destination, protocol, reason)
 * is written at once; the repeats within the next second are written as
 * one line with "count" when the second is over. The counts of all lines
 * add up to the refusals BPF made: those that did not fit the ring buffer,
 * or the fold table, are written as lines of their own with their count.
 */
#ifndef SLUICE_DECISIONS_H
#define SLUICE_DECISIONS_H

#include <stdint.h>

#include <sluice/abi.h>

#include "audit.h"
#include "errmsg.h"
#include "proxy.h"
#include "rulecount.h"

/* Distinct (workload, destination, protocol, reason) folded per second. */
#define DECISIONS_FOLD_SLOTS 4096

struct decisions;

struct decisions_deps {
	struct audit *audit;
	const char *node;		/* copied */
	int refusals_fd;		/* the ring buffer */
	int names_fd;
	int dp_counters_fd;
	/* The name of rule (1-based) in the generation that decided; NULL
	 * when it has none or the generation is gone. */
	const char *(*rule_name)(void *ctx, uint32_t generation, uint32_t rule);
	void *ctx;
};

struct decisions_stats {
	uint64_t refusals_read;		/* events read from the ring buffer */
	uint64_t lines_refusal;		/* refusal lines written (or lost in audit) */
	uint64_t folded;		/* refusals written as part of a count */
	uint64_t unitemised;		/* refusals past the fold table */
	uint64_t lost_in_bpf;		/* SLUICE_CNT_REFUSALS_LOST, as last seen */
	uint64_t lines_flow;		/* proxied-flow lines */
	/* Would-deny events read, by hook and rule; its rows are valid
	 * until the next event is read. */
	struct rule_counts would_deny;
};

int decisions_new(const struct decisions_deps *deps, struct decisions **out, struct errmsg *err);
/* The fd to watch for readability; then call decisions_run(d). */
int decisions_fd(const struct decisions *d);
void decisions_run(void *d);
/* Once a second: writes the folded lines whose second is over, and a line
 * for refusals the ring buffer had no room for. */
void decisions_tick(struct decisions *d);
/* The line of a flow the agent proxied without a tunnel: a trace of its
 * own, with one span. */
void decisions_flow_closed(struct decisions *d, const struct sluice_orig_dst *dst,
			   const struct flow_end *e);
void decisions_get_stats(const struct decisions *d, struct decisions_stats *out);
/* Writes what is still folded, then frees. NULL: no-op. */
void decisions_free(struct decisions *d);

#endif
