// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "names.h"
#include "policy.h"
#include "violations.h"

static struct violation_seen *seen_find(struct violation_watch *w,
					const struct sluice_violation_key *k)
{
	for (int i = 0; i < w->nr_seen; i++) {
		if (!memcmp(&w->seen[i].key, k, sizeof(*k)))
			return &w->seen[i];
	}
	return NULL;
}

static struct violation_seen *seen_add(struct violation_watch *w,
				       const struct sluice_violation_key *k)
{
	if (w->nr_seen == w->cap_seen) {
		int cap = w->cap_seen ? w->cap_seen * 2 : 64;
		struct violation_seen *n = realloc(w->seen, cap * sizeof(*n));

		if (!n)
			return NULL;
		w->seen = n;
		w->cap_seen = cap;
	}
	w->seen[w->nr_seen] = (struct violation_seen){ .key = *k };
	return &w->seen[w->nr_seen++];
}

static void log_moved(struct violation_watch *w, const struct sluice_violation_key *k,
		      uint64_t delta, uint64_t total)
{
	char who[SLUICE_NAME_LEN], svc[SLUICE_NAME_LEN];

	names_lookup(w->names_fd, SLUICE_NAME_IDENTITY, k->identity, who, sizeof(who));
	names_lookup(w->names_fd, SLUICE_NAME_SERVICE, k->service, svc, sizeof(svc));
	if (k->reason == SLUICE_REASON_NOT_VIA_MESH) {
		pr_warn("violation: direct connection into %s port %u refused (%s): %llu new, "
			"%llu total",
			who, ntohs(k->port), policy_reason_name(k->reason),
			(unsigned long long)delta, (unsigned long long)total);
		return;
	}
	pr_warn("violation: %s -> %s refused at connect (%s): %llu new, %llu total", who, svc,
		policy_reason_name(k->reason), (unsigned long long)delta,
		(unsigned long long)total);
}

/* report=false only records; used for the snapshot at start. -ENOMEM when
 * a new counter cannot be remembered: the scan stops there. */
static int scan(struct violation_watch *w, bool report)
{
	struct sluice_violation_key key, *prev = NULL;
	struct violation_seen *s;

	while (!bpf_map_get_next_key(w->map_fd, prev, &key)) {
		uint64_t total = 0;

		prev = &key;
		if (bpf_map_lookup_elem(w->map_fd, &key, w->percpu))
			continue;
		for (int c = 0; c < w->nr_cpus; c++)
			total += w->percpu[c].count;
		s = seen_find(w, &key);
		if (!s)
			s = seen_add(w, &key);
		if (!s)
			return -ENOMEM;
		if (report && total > s->count)
			log_moved(w, &key, total - s->count, total);
		s->count = total;
	}
	return 0;
}

int violation_watch_init(struct violation_watch *w, int map_fd, int names_fd)
{
	memset(w, 0, sizeof(*w));
	w->map_fd = map_fd;
	w->names_fd = names_fd;
	w->nr_cpus = libbpf_num_possible_cpus();
	if (w->nr_cpus <= 0)
		return w->nr_cpus ? w->nr_cpus : -EINVAL;
	w->percpu = calloc(w->nr_cpus, sizeof(*w->percpu));
	if (!w->percpu)
		return -ENOMEM;
	return scan(w, false);
}

void violation_watch_poll(struct violation_watch *w)
{
	int ret;

	if (!w->percpu)
		return;
	ret = scan(w, true);
	if (ret && !w->scan_failing)
		pr_err("violations: %s: counters not yet seen go unreported until memory frees up",
		       strerror(-ret));
	else if (!ret && w->scan_failing)
		pr_info("violations: every counter reported again");
	w->scan_failing = ret;
}

void violation_watch_free(struct violation_watch *w)
{
	free(w->percpu);
	free(w->seen);
	memset(w, 0, sizeof(*w));
}
