/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Turns the BPF violation counters into log lines, once per tick, so that
 * a refused connect() shows up in the agent's log without anyone asking. */
#ifndef SLUICE_VIOLATIONS_H
#define SLUICE_VIOLATIONS_H

#include <stdbool.h>
#include <stdint.h>

#include <sluice/abi.h>

struct violation_seen {
	struct sluice_violation_key key;
	uint64_t count;
};

struct violation_watch {
	int map_fd;
	int names_fd;
	int nr_cpus;
	struct sluice_counter *percpu;	/* lookup buffer, nr_cpus values */
	struct violation_seen *seen;
	int nr_seen;
	int cap_seen;
	bool scan_failing;		/* logged once, when it starts */
};

/* Snapshots the current counts: what an earlier run counted is not news. */
int violation_watch_init(struct violation_watch *w, int map_fd, int names_fd);
/* Logs one line per counter that moved since the last poll, and once when
 * polls start failing for want of memory (and when they recover). */
void violation_watch_poll(struct violation_watch *w);
void violation_watch_free(struct violation_watch *w);

#endif
