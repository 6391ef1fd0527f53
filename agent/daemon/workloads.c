// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>

#include "cgroup.h"
#include "names.h"
#include "workloads.h"

static int workload_cgroup_id(const struct config *cfg, int i, const char *cgroup_root,
			      uint64_t *id, struct errmsg *err)
{
	const struct workload_cfg *w = &cfg->workloads[i];
	char path[PATH_MAX];
	int ret;

	ret = cgroup_path(cgroup_root, w->cgroup, path, sizeof(path));
	if (!ret)
		ret = cgroup_id(path, id);
	if (ret)
		return errmsg_set(err, ret,
				  "%s:%d: workload %s: cgroup %s: %s (create the cgroup before "
				  "starting sluiced, or fix workloads[].cgroup)",
				  cfg->path, w->line, w->id, path, strerror(-ret));
	return 0;
}

int workloads_check_cgroups(const struct config *cfg, const char *cgroup_root, struct errmsg *err)
{
	uint64_t id;
	int ret;

	for (int i = 0; i < cfg->nr_workloads; i++) {
		ret = workload_cgroup_id(cfg, i, cgroup_root, &id, err);
		if (ret)
			return ret;
	}
	return 0;
}

int workloads_resolve(struct datapath *dp, const struct config *cfg, const char *cgroup_root,
		      struct workload_set *set, struct errmsg *err)
{
	int ret;

	memset(set, 0, sizeof(*set));
	set->cgroup_ids = calloc(cfg->nr_workloads + 1, sizeof(*set->cgroup_ids));
	set->ids = calloc(cfg->nr_workloads + 1, sizeof(*set->ids));
	set->flags = calloc(cfg->nr_workloads + 1, sizeof(*set->flags));
	if (!set->cgroup_ids || !set->ids || !set->flags) {
		workloads_free(set);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	for (int i = 0; i < cfg->nr_workloads; i++) {
		const struct workload_cfg *w = &cfg->workloads[i];
		struct policy_identity *id = &set->ids[i];

		ret = workload_cgroup_id(cfg, i, cgroup_root, &set->cgroup_ids[i], err);
		if (ret) {
			workloads_free(set);
			return ret;
		}
		ret = names_assign(dp->names_fd, SLUICE_NAME_IDENTITY, w->id, &id->id);
		if (ret) {
			workloads_free(set);
			return errmsg_set(err, ret, "cannot assign an identity to %s: %s", w->id,
					  strerror(-ret));
		}
		id->spiffe_id = w->id;
		id->kind = w->kind;
		id->roles = w->roles;
		id->nr_roles = w->nr_roles;
		set->flags[i] = SLUICE_WL_MANAGED | (w->mesh_only ? SLUICE_WL_MESH_ONLY : 0);
		set->nr++;
	}
	return 0;
}

static bool in_set(const struct workload_set *set, uint64_t cg_id)
{
	for (int i = 0; i < set->nr; i++) {
		if (set->cgroup_ids[i] == cg_id)
			return true;
	}
	return false;
}

int workloads_publish(struct datapath *dp, const struct workload_set *set, struct errmsg *err)
{
	uint64_t key, next, *stale = NULL;
	int nr_stale = 0, cap = 0, ret = 0;
	void *prev = NULL;

	for (int i = 0; i < set->nr; i++) {
		struct sluice_workload wl = {
			.identity = set->ids[i].id,
			.flags = set->flags[i],
		};

		if (bpf_map_update_elem(dp->workloads_fd, &set->cgroup_ids[i], &wl, BPF_ANY))
			return errmsg_set(err, -errno, "cannot register workload %s: %s",
					  set->ids[i].spiffe_id, strerror(errno));
	}
	/* Collect first: deleting while walking get_next_key restarts it. */
	while (!bpf_map_get_next_key(dp->workloads_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (in_set(set, key))
			continue;
		if (nr_stale == cap) {
			uint64_t *n;

			cap = cap ? cap * 2 : 16;
			n = realloc(stale, cap * sizeof(*stale));
			if (!n) {
				ret = errmsg_set(err, -ENOMEM, "out of memory");
				goto out;
			}
			stale = n;
		}
		stale[nr_stale++] = key;
	}
	for (int i = 0; i < nr_stale; i++)
		bpf_map_delete_elem(dp->workloads_fd, &stale[i]);
out:
	free(stale);
	return ret;
}

void workloads_free(struct workload_set *set)
{
	free(set->cgroup_ids);
	free(set->ids);
	free(set->flags);
	memset(set, 0, sizeof(*set));
}
