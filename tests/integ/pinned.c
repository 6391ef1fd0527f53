// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "env.h"
#include "pinned.h"

int pinned_fd(const struct sl_env *env, const char *name)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", env->pin_dir, name);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

bool pinned_exists(const struct sl_env *env, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", env->pin_dir, name);
	return !access(path, F_OK);
}

static int pinned_lookup(const struct sl_env *env, const char *map, const void *key, void *val)
{
	int fd, ret = 0;

	fd = pinned_fd(env, map);
	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, key, val))
		ret = -errno;
	close(fd);
	return ret;
}

int pinned_cfg(const struct sl_env *env, struct sluice_config *cfg)
{
	__u32 zero = 0;

	return pinned_lookup(env, "sluice_cfg", &zero, cfg);
}

uint32_t pinned_generation(const struct sl_env *env)
{
	struct sluice_config cfg;

	if (pinned_cfg(env, &cfg))
		return 0;
	return cfg.slot_generation[cfg.active_slot & 1];
}

static uint32_t name_id(const struct sl_env *env, uint32_t kind, const char *name)
{
	struct sluice_name_key key, *prev = NULL;
	struct sluice_name val;
	uint32_t id = 0;
	int fd;

	fd = pinned_fd(env, "names");
	if (fd < 0)
		return 0;
	while (!bpf_map_get_next_key(fd, prev, &key)) {
		prev = &key;
		if (key.kind == kind && !bpf_map_lookup_elem(fd, &key, &val) &&
		    !strncmp(val.name, name, sizeof(val.name))) {
			id = key.id;
			break;
		}
	}
	close(fd);
	return id;
}

uint32_t pinned_identity(const struct sl_env *env, const char *spiffe_id)
{
	return name_id(env, SLUICE_NAME_IDENTITY, spiffe_id);
}

uint32_t pinned_service(const struct sl_env *env, const char *name)
{
	return name_id(env, SLUICE_NAME_SERVICE, name);
}

/* Sum of one per-CPU counter; values are padded to 8 bytes per CPU. */
static long long percpu_sum(int fd, const struct sluice_violation_key *key)
{
	int ncpu = libbpf_num_possible_cpus();
	struct sluice_counter *vals;
	long long sum = 0;

	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (!bpf_map_lookup_elem(fd, key, vals)) {
		for (int i = 0; i < ncpu; i++)
			sum += vals[i].count;
	}
	free(vals);
	return sum;
}

long long pinned_violations(const struct sl_env *env, uint32_t identity, uint32_t service,
			    uint32_t reason)
{
	struct sluice_violation_key key = {
	    .identity = identity,
	    .service = service,
	    .reason = reason,
	};
	long long sum;
	int fd;

	fd = pinned_fd(env, "violations");
	if (fd < 0)
		return fd;
	sum = percpu_sum(fd, &key);
	close(fd);
	return sum;
}

long long pinned_violations_total(const struct sl_env *env)
{
	struct sluice_violation_key key, *prev = NULL;
	long long sum = 0;
	int fd;

	fd = pinned_fd(env, "violations");
	if (fd < 0)
		return fd;
	while (!bpf_map_get_next_key(fd, prev, &key)) {
		prev = &key;
		sum += percpu_sum(fd, &key);
	}
	close(fd);
	return sum;
}

int pinned_svc_stats(const struct sl_env *env, uint32_t identity, uint32_t service,
		     struct sluice_svc_stats *out)
{
	struct sluice_svc_key key = {.identity = identity, .service = service};
	int fd, ret = 0;

	/* No entry is no traffic yet; no map is an error. */
	memset(out, 0, sizeof(*out));
	fd = pinned_fd(env, "svc_stats");
	if (fd < 0)
		return fd;
	if (bpf_map_lookup_elem(fd, &key, out) && errno != ENOENT)
		ret = -errno;
	close(fd);
	return ret;
}

#define ANY_SLOT UINT32_MAX

/* Keys of a map; with slot != ANY_SLOT only policy keys of that slot. */
static int count_keys(const struct sl_env *env, const char *map, size_t slot_off, uint32_t slot)
{
	char key[64], *prev = NULL;
	int fd, n = 0;

	fd = pinned_fd(env, map);
	if (fd < 0)
		return fd;
	/* Every key in sluice/abi.h fits in 64 bytes; the kernel reads the
	 * previous key before it writes the next one into the same buffer. */
	while (!bpf_map_get_next_key(fd, prev, key)) {
		prev = key;
		n += slot == ANY_SLOT || (uint8_t)key[slot_off] == slot;
	}
	close(fd);
	return n;
}

int pinned_count(const struct sl_env *env, const char *map)
{
	return count_keys(env, map, 0, ANY_SLOT);
}

int pinned_flow(const struct sl_env *env, uint64_t cookie, struct sluice_flow *out)
{
	return pinned_lookup(env, "flows", &cookie, out);
}

int pinned_links_to(const struct sl_env *env, uint64_t cookie)
{
	__u64 key, *prev = NULL;
	struct sluice_link ln;
	int fd, n = 0;

	fd = pinned_fd(env, "flow_links");
	if (fd < 0)
		return fd;
	while (!bpf_map_get_next_key(fd, prev, &key)) {
		prev = &key;
		if (!bpf_map_lookup_elem(fd, &key, &ln) && ln.app_cookie == cookie)
			n++;
	}
	close(fd);
	return n;
}

int pinned_policy_entries(const struct sl_env *env, uint32_t slot)
{
	int n4, n6;

	n4 = count_keys(env, "policy4", offsetof(struct sluice_policy_key4, slot), slot);
	n6 = count_keys(env, "policy6", offsetof(struct sluice_policy_key6, slot), slot);
	if (n4 < 0)
		return n4;
	if (n6 < 0)
		return n6;
	return n4 + n6;
}

int pinned_link_id(const struct sl_env *env, const char *name, uint32_t *id)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	int fd, ret = 0;

	fd = pinned_fd(env, name);
	if (fd < 0)
		return fd;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		ret = -errno;
	else
		*id = info.id;
	close(fd);
	return ret;
}
