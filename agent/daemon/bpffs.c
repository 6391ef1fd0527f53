// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "bpffs.h"

#define BPFFS_DEFAULT "/sys/fs/bpf"

static int is_bpffs(const char *path)
{
	struct statfs st;

	if (statfs(path, &st))
		return -errno;
	return st.f_type == BPF_FS_MAGIC;
}

int bpffs_prepare(const char *pin_dir, struct errmsg *err)
{
	char parent[PATH_MAX];
	char *slash;
	int ret;

	snprintf(parent, sizeof(parent), "%s", pin_dir);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return errmsg_set(err, -EINVAL, "bpf_pin_path %s: expected a directory on bpffs, "
				  "such as /sys/fs/bpf/sluice", pin_dir);
	*slash = '\0';

	ret = is_bpffs(parent);
	if (ret < 0)
		return errmsg_set(err, ret, "bpf_pin_path %s: %s: %s", pin_dir, parent,
				  strerror(-ret));
	if (!ret) {
		if (strcmp(parent, BPFFS_DEFAULT))
			return errmsg_set(err, -ENOTSUP,
					  "bpf_pin_path %s: %s is not a bpf file system: mount one "
					  "with `mount -t bpf bpf %s`", pin_dir, parent, parent);
		if (mount("bpf", BPFFS_DEFAULT, "bpf", 0, "mode=0700"))
			return errmsg_set(err, -errno,
					  "cannot mount bpffs at %s: %s (run as root with "
					  "CAP_SYS_ADMIN, or mount it on the host)",
					  BPFFS_DEFAULT, strerror(errno));
	}
	if (mkdir(pin_dir, 0700) && errno != EEXIST)
		return errmsg_set(err, -errno, "cannot create %s: %s", pin_dir, strerror(errno));
	return 0;
}
