/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef SLUICE_CGROUP_H
#define SLUICE_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#include "errmsg.h"

/* Finds the cgroup2 mount in /proc/mounts; never assumes /sys/fs/cgroup. */
int cgroup2_mount(char *buf, size_t len, struct errmsg *err);
/* Joins a path relative to base (or returns it when absolute). */
int cgroup_path(const char *base, const char *path, char *buf, size_t len);
/* The kernel's cgroup id (what bpf_get_current_cgroup_id returns). */
int cgroup_id(const char *path, uint64_t *id);
/* The calling process's cgroup2 directory. */
int cgroup_self(const char *mount, char *buf, size_t len);
/* Creates path (and parents) when missing and moves the caller into it. */
int cgroup_join(const char *path, struct errmsg *err);

#endif
