/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The pinned `names` map: {kind, id} -> name for numeric identities and
 * services. The agent assigns ids; sluicectl reads them back so that its
 * tables show names while the agent is down.
 *
 * Ids start at 1 and are stable: a name keeps the id already pinned for it
 * across agent restarts, and a new name gets the largest id of its kind + 1,
 * so ids that live in other pinned maps (policy, counters) keep meaning the
 * same thing. Id 0 is never assigned (SLUICE_IDENTITY_NONE,
 * SLUICE_SERVICE_NONE).
 */
#ifndef SLUICE_NAMES_H
#define SLUICE_NAMES_H

#include <stddef.h>
#include <linux/types.h>

#include <sluice/abi.h>

/*
 * Writes the name of {kind, id} into buf (truncated to len). When there is
 * none, writes a fallback instead and returns a negative errno (-ENOENT when
 * the entry is missing): "-" for id 0, "id:<id>" for an identity,
 * "svc:<id>" for a service, "<kind>:<id>" for any other kind.
 */
int names_lookup(int map_fd, __u32 kind, __u32 id, char *buf, size_t len);

/*
 * Finds the id pinned for name under kind, or allocates the largest id of
 * that kind + 1 and writes the entry (extra = 0). Returns 0 with *id set,
 * -EINVAL for an empty name, -ENAMETOOLONG when it does not fit
 * SLUICE_NAME_LEN, -ENOSPC when ids are exhausted, or the map's errno.
 */
int names_assign(int map_fd, __u32 kind, const char *name, __u32 *id);

#endif
