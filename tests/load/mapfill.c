// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * mapfill: the maps of a running agent at the size of issue 13's scrape
 * goal, written into its pinned maps the way sockops would, so that no
 * 10,000 sockets are needed: IDS identities x SVCS services of
 * workload/service pairs (svc_stats, svc_rtt), and FLOWS live flows.
 *
 *   mapfill PIN_DIR [IDS SVCS FLOWS]     (defaults 100 10 10000)
 *
 * Idempotent: names keep their ids and the same keys are overwritten.
 * Used by integ metrics_scale and scripts/bench.sh's scrape rows.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "names.h"

#define MAX_IDS 4096
#define MAX_SVCS 256

static int pinned(const char *dir, const char *name)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		fprintf(stderr, "mapfill: %s: %s (is the agent running with bpf_pin_path %s?)\n",
			path, strerror(errno), dir);
	return fd;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "mapfill: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

int main(int argc, char **argv)
{
	int nr_ids = 100, nr_svcs = 10, nr_flows = 10000;
	static __u32 ids[MAX_IDS], svcs[MAX_SVCS];
	int names, stats, rtt, flows, ret;
	char name[64];

	if (argc != 2 && argc != 5) {
		fprintf(stderr, "usage: mapfill PIN_DIR [IDS SVCS FLOWS]\n");
		return 2;
	}
	if (argc == 5) {
		nr_ids = atoi(argv[2]);
		nr_svcs = atoi(argv[3]);
		nr_flows = atoi(argv[4]);
	}
	if (nr_ids < 1 || nr_ids > MAX_IDS || nr_svcs < 1 || nr_svcs > MAX_SVCS || nr_flows < 0) {
		fprintf(stderr, "mapfill: IDS 1-%d, SVCS 1-%d, FLOWS >= 0\n", MAX_IDS, MAX_SVCS);
		return 2;
	}
	names = pinned(argv[1], "names");
	stats = pinned(argv[1], "svc_stats");
	rtt = pinned(argv[1], "svc_rtt");
	flows = pinned(argv[1], "flows");
	if (names < 0 || stats < 0 || rtt < 0 || flows < 0)
		return 1;
	for (int i = 0; i < nr_ids; i++) {
		snprintf(name, sizeof(name), "spiffe://acme.example/job/scale-%d", i);
		ret = names_assign(names, SLUICE_NAME_IDENTITY, name, &ids[i]);
		if (ret)
			return fail(name, ret);
	}
	for (int i = 0; i < nr_svcs; i++) {
		snprintf(name, sizeof(name), "svc-%d", i);
		ret = names_assign(names, SLUICE_NAME_SERVICE, name, &svcs[i]);
		if (ret)
			return fail(name, ret);
	}
	for (int i = 0; i < nr_ids * nr_svcs; i++) {
		struct sluice_svc_key k = { .identity = ids[i / nr_svcs], .service = svcs[i % nr_svcs] };
		struct sluice_svc_stats s = { .flows = 3, .closed = 2, .bytes_sent = 100 };
		struct sluice_svc_rtt r = { .samples = 2, .rtt_us_sum = 200 };

		s.lat_buckets[6] = 3;
		r.rtt_buckets[6] = 2;
		if (bpf_map_update_elem(stats, &k, &s, BPF_ANY) ||
		    bpf_map_update_elem(rtt, &k, &r, BPF_ANY))
			return fail("svc_stats/svc_rtt", errno);
	}
	for (__u64 c = 1; c <= (__u64)nr_flows; c++) {
		struct sluice_flow f = { .state = SLUICE_FLOW_ESTABLISHED, .start_ns = 1 };
		/* Cookies no socket has: the kernel's count from 1. */
		__u64 cookie = (1ull << 62) + c;

		f.dst.identity = ids[c % nr_ids];
		if (bpf_map_update_elem(flows, &cookie, &f, BPF_ANY))
			return fail("flows", errno);
	}
	printf("mapfill: %d pairs, %d flows in %s\n", nr_ids * nr_svcs, nr_flows, argv[1]);
	return 0;
}
