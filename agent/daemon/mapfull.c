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

/* Entries per batch lookup: a full flows map takes 16, where a walk with
 * get_next_key would take a syscall per entry. */
#define BATCH 4096
/* A batch of a full map costs some 2.5 ms: a tick spends at most 10 ms
 * here, and a round of both full maps takes 8 ticks, within the interval. */
#define BATCHES_PER_TICK 4

/* One batch of the map being counted: -EAGAIN while more remain, 0 once
 * the walk is done, another -errno when the map cannot be read. */
static int count_batch(struct mapfull *mf, int fd, const struct bpf_map_info *info)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	void *keys = malloc((size_t)BATCH * info->key_size);
	void *vals = malloc((size_t)BATCH * info->value_size);
	__u32 n = BATCH;
	__u64 out = 0;
	int ret;

	ret = keys && vals ? 0 : -ENOMEM;
	if (!ret &&
	    bpf_map_lookup_batch(fd, mf->started ? &mf->token : NULL, &out, keys, vals, &n, &opts))
		ret = -errno;
	free(keys);
	free(vals);
	if (ret && ret != -ENOENT)
		return ret;
	mf->entries += n;
	mf->token = out;
	mf->started = true;
	return ret == -ENOENT ? 0 : -EAGAIN;
}

static void report(const struct bpf_map *map, long entries, __u32 max_entries)
{
	if (!sluice_map_full(true, entries, max_entries))
		return;
	pr_warn("datapath: map %s is full (%ld of %u entries): LRU evicts the oldest flows' "
		"entries; flows in progress keep going but may lose their record (sluicectl flow "
		"list), connections not yet accepted may be reset",
		bpf_map__name(map), entries, max_entries);
}

/* Counts on in the current map; true once it is done with. */
static bool count_map(struct mapfull *mf, const struct bpf_map *map)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_map__fd(map), ret;

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return true;
	ret = count_batch(mf, fd, &info);
	if (ret == -EAGAIN)
		return false;
	if (ret)
		pr_debug("datapath: cannot count the entries of map %s: %s", bpf_map__name(map),
			 strerror(-ret));
	else
		report(map, mf->entries, info.max_entries);
	return true;
}

void mapfull_poll(struct mapfull *mf, const struct datapath *dp)
{
	/* orig_dst fills with redirects and flow_links with flows (same
	 * writers, same lifetimes): counting two of the four is enough. */
	const struct bpf_map *maps[] = {
		dp->skel->maps.redirects,
		dp->skel->maps.flows,
	};
	const int nr = sizeof(maps) / sizeof(maps[0]);
	uint64_t now = mono_ns();

	if (!mf->counting && now < mf->next_ns)
		return;
	mf->counting = true;
	for (int i = 0; i < BATCHES_PER_TICK; i++) {
		if (!count_map(mf, maps[mf->map]))
			continue;
		mf->started = false;
		mf->entries = 0;
		if (++mf->map < nr)
			continue;
		mf->map = 0;
		mf->counting = false;
		mf->next_ns = now + MAPFULL_INTERVAL_S * 1000000000ull;
		return;
	}
}
