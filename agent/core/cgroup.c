// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"

int cgroup2_mount(char *buf, size_t len, struct errmsg *err)
{
	struct mntent *m;
	FILE *f;

	f = setmntent("/proc/mounts", "r");
	if (!f)
		return errmsg_set(err, -errno, "cannot read /proc/mounts: %s", strerror(errno));
	while ((m = getmntent(f))) {
		if (!strcmp(m->mnt_type, "cgroup2")) {
			snprintf(buf, len, "%s", m->mnt_dir);
			endmntent(f);
			return 0;
		}
	}
	endmntent(f);
	return errmsg_set(err, -ENOENT,
			  "no cgroup2 file system is mounted (see /proc/mounts): mount one with "
			  "`mount -t cgroup2 none /sys/fs/cgroup/unified`; under `ip netns exec`, "
			  "which remounts /sys, use `nsenter --net=/run/netns/NAME` instead");
}

int cgroup_path(const char *base, const char *path, char *buf, size_t len)
{
	int n;

	if (path[0] == '/' && !strncmp(path, base, strlen(base)))
		n = snprintf(buf, len, "%s", path);
	else
		n = snprintf(buf, len, "%s/%s", base, path[0] == '/' ? path + 1 : path);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return 0;
}

int cgroup_id(const char *path, uint64_t *id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh.handle_bytes = sizeof(uint64_t) };
	int mount_id;

	/* The file handle of a cgroup2 directory is its kernfs id, the value
	 * bpf_get_current_cgroup_id() returns (as selftests' get_cgroup_id). */
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) < 0)
		return -errno;
	*id = h.id;
	return 0;
}

int cgroup_self(const char *mount, char *buf, size_t len)
{
	char line[4096];
	int err = -ENOENT;
	FILE *f;

	f = fopen("/proc/self/cgroup", "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		err = cgroup_path(mount, line + 3, buf, len);
		break;
	}
	fclose(f);
	return err;
}

static int mkdir_p(char *path)
{
	char *p;

	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) && errno != EEXIST) {
			*p = '/';
			return -errno;
		}
		*p = '/';
	}
	if (mkdir(path, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

int cgroup_join(const char *path, struct errmsg *err)
{
	char procs[4096], tmp[4096];
	int fd, ret;

	snprintf(tmp, sizeof(tmp), "%s", path);
	ret = mkdir_p(tmp);
	if (ret)
		return errmsg_set(err, ret, "cannot create cgroup %s: %s", path, strerror(-ret));
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", path);
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errmsg_set(err, -errno, "cannot open %s: %s", procs, strerror(errno));
	/* "0" moves the writing process itself. */
	ret = write(fd, "0", 1) < 0 ? -errno : 0;
	close(fd);
	if (ret)
		return errmsg_set(err, ret, "cannot join cgroup %s: %s", path, strerror(-ret));
	return 0;
}
