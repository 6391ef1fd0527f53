// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <bpf/bpf.h>

#include "names.h"

static void names_fallback(__u32 kind, __u32 id, char *buf, size_t len)
{
	if (!id)
		snprintf(buf, len, "-");
	else if (kind == SLUICE_NAME_IDENTITY)
		snprintf(buf, len, "id:%u", id);
	else if (kind == SLUICE_NAME_SERVICE)
		snprintf(buf, len, "svc:%u", id);
	else
		snprintf(buf, len, "%u:%u", kind, id);
}

int names_lookup(int map_fd, __u32 kind, __u32 id, char *buf, size_t len)
{
	struct sluice_name_key key = { .kind = kind, .id = id };
	struct sluice_name val;

	if (!id) {
		names_fallback(kind, id, buf, len);
		return -ENOENT;
	}
	if (bpf_map_lookup_elem(map_fd, &key, &val)) {
		int err = -errno;

		names_fallback(kind, id, buf, len);
		return err;
	}
	/* The map is written by the agent only, but never trust a NUL. */
	snprintf(buf, len, "%.*s", (int)sizeof(val.name), val.name);
	return 0;
}

int names_assign(int map_fd, __u32 kind, const char *name, __u32 *id)
{
	struct sluice_name_key key, next, *prev = NULL;
	struct sluice_name val;
	size_t n = strlen(name);
	__u32 max_id = 0;

	if (!n)
		return -EINVAL;
	if (n >= sizeof(val.name))
		return -ENAMETOOLONG;

	while (!bpf_map_get_next_key(map_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (key.kind != kind)
			continue;
		if (bpf_map_lookup_elem(map_fd, &key, &val)) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		if (!strncmp(val.name, name, sizeof(val.name))) {
			*id = key.id;
			return 0;
		}
		if (key.id > max_id)
			max_id = key.id;
	}
	if (errno != ENOENT)
		return -errno;
	if (max_id == UINT32_MAX)
		return -ENOSPC;

	memset(&val, 0, sizeof(val));
	memcpy(val.name, name, n);
	key = (struct sluice_name_key){ .kind = kind, .id = max_id + 1 };
	if (bpf_map_update_elem(map_fd, &key, &val, BPF_NOEXIST))
		return -errno;
	*id = key.id;
	return 0;
}
