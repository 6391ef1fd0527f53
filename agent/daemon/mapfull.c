// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "clock.h"
#include "datapath.h"
#include "log.h"
#include "mapfull.h"
#include "sluice.skel.h"

/* Entries per batch: the whole of a full flows map in 16 calls, where a
 * walk with get_next_key would take a syscall per entry. */
#define BATCH 4096

/* Entries of an LRU hash map, by batch lookups; -errno when it cannot be
 * read. */
static long count_entries(int fd, const struct bpf_map_info *info)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	void *keys = malloc((size_t)BATCH * info->key_size);
	void *vals = malloc((size_t)BATCH * info->value_size);
	__u64 in = 0, out = 0;
	long total = 0;
	bool first = true;
	int ret;

	if (!keys || !vals) {
		total = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 n = BATCH;

		/* An LRU hash batch token is a bucket index, a __u32 in 8
		 * bytes of room. */
		ret = bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, vals, &n, &opts);
		first = false;
		if (ret && errno != ENOENT) {
			total = -errno;
			break;
		}
		total += n;
		if (ret)
			break;
		in = out;
	}
out:
	free(keys);
	free(vals);
	return total;
}

static void check_map(const struct bpf_map *map)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_map__fd(map);
	long n;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return;
	n = count_entries(fd, &info);
	if (n < 0) {
		pr_debug("datapath: cannot count the entries of map %s: %s", bpf_map__name(map),
			 strerror(-n));
		return;
	}
	if (!sluice_map_full(true, n, info.max_entries))
		return;
	pr_warn("datapath: map %s is full (%ld of %u entries): LRU evicts the oldest flows' "
		"entries; flows in progress keep going but may lose their record (sluicectl flow "
		"list), connections not yet accepted may be reset",
		bpf_map__name(map), n, info.max_entries);
}

void mapfull_poll(struct mapfull *mf, const struct datapath *dp)
{
	/* orig_dst fills with redirects and flow_links with flows (same
	 * writers, same lifetimes): counting two of the four halves the
	 * time the loop spends here, some 40 ms a full map. */
	const struct bpf_map *maps[] = {
	    dp->skel->maps.redirects,
	    dp->skel->maps.flows,
	};
	uint64_t now = mono_ns();

	if (now < mf->next_ns)
		return;
	mf->next_ns = now + MAPFULL_INTERVAL_S * 1000000000ull;
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		check_map(maps[i]);
}
