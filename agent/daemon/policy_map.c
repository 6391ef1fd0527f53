// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "names.h"
#include "policy_map.h"

/* Deletes every key of one slot from an LPM trie whose keys carry the slot
 * at slot_off. Keys are collected first: get_next_key restarts after a
 * delete. */
static int clear_slot(int fd, size_t key_size, size_t slot_off, uint8_t slot)
{
	char *keys = NULL, *prev = NULL, next[sizeof(struct sluice_policy_key6)];
	int nr = 0, cap = 0, ret = 0;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		if (nr == cap) {
			char *n;

			cap = cap ? cap * 2 : 256;
			n = realloc(keys, cap * key_size);
			if (!n) {
				free(keys);
				return -ENOMEM;
			}
			keys = n;
		}
		memcpy(keys + nr * key_size, next, key_size);
		prev = keys + nr * key_size;
		nr++;
	}
	for (int i = 0; i < nr; i++) {
		char *k = keys + i * key_size;

		if ((uint8_t)k[slot_off] == slot && bpf_map_delete_elem(fd, k) && errno != ENOENT)
			ret = -errno;
	}
	free(keys);
	return ret;
}

static int clear_both(struct datapath *dp, uint8_t slot)
{
	int ret;

	ret = clear_slot(dp->policy4_fd, sizeof(struct sluice_policy_key4),
			 offsetof(struct sluice_policy_key4, slot), slot);
	if (ret)
		return ret;
	return clear_slot(dp->policy6_fd, sizeof(struct sluice_policy_key6),
			  offsetof(struct sluice_policy_key6, slot), slot);
}

static int load_entries(struct datapath *dp, const struct policy_entry *e, int nr)
{
	for (int i = 0; i < nr; i++) {
		int fd = e[i].family == AF_INET ? dp->policy4_fd : dp->policy6_fd;
		const void *key = e[i].family == AF_INET ? (const void *)&e[i].key4
							 : (const void *)&e[i].key6;

		if (bpf_map_update_elem(fd, key, &e[i].value, BPF_ANY))
			return -errno;
	}
	return 0;
}

static int service_ids(struct datapath *dp, const struct policy *pol, uint32_t **out,
		       struct errmsg *err)
{
	uint32_t *ids;
	int ret;

	ids = calloc(pol->nr_services + 1, sizeof(*ids));
	if (!ids)
		return errmsg_set(err, -ENOMEM, "out of memory");
	for (int i = 0; i < pol->nr_services; i++) {
		ret = names_assign(dp->names_fd, SLUICE_NAME_SERVICE, pol->services[i].name, &ids[i]);
		if (ret) {
			free(ids);
			return errmsg_set(err, ret, "cannot assign an id to service %s: %s",
					  pol->services[i].name, strerror(-ret));
		}
	}
	*out = ids;
	return 0;
}

int policy_map_apply(struct datapath *dp, const struct policy *pol,
		     const struct policy_identity *ids, int nr_ids, uint32_t gen, bool activate,
		     struct policy_map_result *res, struct errmsg *err)
{
	struct policy_entry *entries = NULL, *dir = NULL;
	struct sluice_config cfg;
	uint32_t *svc_ids = NULL;
	int nr_entries = 0, nr_dir = 0, ret;
	uint8_t slot;

	ret = datapath_config_get(dp, &cfg);
	if (ret)
		return errmsg_set(err, ret, "cannot read sluice_cfg: %s", strerror(-ret));
	slot = cfg.slot_loaded[cfg.active_slot & 1] ? !(cfg.active_slot & 1) : (cfg.active_slot & 1);

	ret = service_ids(dp, pol, &svc_ids, err);
	if (ret)
		return ret;
	ret = policy_compile(pol, ids, nr_ids, svc_ids, slot, &entries, &nr_entries, err);
	if (!ret)
		ret = policy_compile_directory(pol, svc_ids, slot, &dir, &nr_dir, err);
	free(svc_ids);
	if (ret) {
		free(entries);
		return ret;
	}

	ret = clear_both(dp, slot);
	if (!ret)
		ret = load_entries(dp, entries, nr_entries);
	if (!ret)
		ret = load_entries(dp, dir, nr_dir);
	free(entries);
	free(dir);
	nr_entries += nr_dir;
	if (ret) {
		/* Leave no half-written generation behind; the live slot was
		 * never touched. */
		clear_both(dp, slot);
		return errmsg_set(err, ret, "%s: cannot load %d policy entries: %s (map holds at "
				  "most %d)", pol->path, nr_entries, strerror(-ret),
				  SLUICE_MAX_POLICY);
	}

	/* Two writes: the slot is complete before it becomes live, and the
	 * switch itself changes only active_slot. */
	cfg.slot_loaded[slot] = 1;
	cfg.slot_generation[slot] = gen;
	cfg.slot_default[slot] = policy_default_action(pol);
	ret = datapath_config_set(dp, &cfg);
	if (!ret && activate) {
		cfg.active_slot = slot;
		ret = datapath_config_set(dp, &cfg);
	}
	if (ret)
		return errmsg_set(err, ret, "cannot switch policy generation: %s", strerror(-ret));
	res->generation = gen;
	res->slot = slot;
	res->nr_entries = nr_entries;
	return 0;
}

uint32_t policy_map_max_generation(struct datapath *dp)
{
	struct sluice_config cfg;

	if (datapath_config_get(dp, &cfg))
		return 0;
	return cfg.slot_generation[0] > cfg.slot_generation[1] ? cfg.slot_generation[0]
							       : cfg.slot_generation[1];
}

int policy_map_rollback(struct datapath *dp, struct policy_map_result *res, struct errmsg *err)
{
	struct sluice_config cfg;
	uint32_t other;
	int ret;

	ret = datapath_config_get(dp, &cfg);
	if (ret)
		return errmsg_set(err, ret, "cannot read sluice_cfg: %s", strerror(-ret));
	other = !(cfg.active_slot & 1);
	if (!cfg.slot_loaded[other])
		return errmsg_set(err, -ENOENT, "no previous policy generation to roll back to");
	cfg.active_slot = other;
	ret = datapath_config_set(dp, &cfg);
	if (ret)
		return errmsg_set(err, ret, "cannot switch policy generation: %s", strerror(-ret));
	res->generation = cfg.slot_generation[other];
	res->slot = other;
	res->nr_entries = -1;
	return 0;
}
