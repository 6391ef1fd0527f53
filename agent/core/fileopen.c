// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "fileopen.h"

int fileopen_read(const char *path, struct stat *st)
{
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int fileopen_private(const char *what, const char *path, const struct stat *st,
		     struct errmsg *err)
{
	static const struct {
		mode_t bit;
		const char *what;
	} open_to[] = {
		{ S_IROTH, "readable by others" },
		{ S_IWOTH, "writable by others" },
		{ S_IRGRP, "readable by its group" },
		{ S_IWGRP, "writable by its group" },
	};

	/* A FIFO or a device would block the reader or feed it anything. */
	if (!S_ISREG(st->st_mode))
		return errmsg_set(err, -EINVAL, "%s%s: not a regular file", what, path);
	for (size_t i = 0; i < sizeof(open_to) / sizeof(open_to[0]); i++) {
		if (st->st_mode & open_to[i].bit)
			return errmsg_set(err, -EPERM, "%s%s: mode %04o is %s: chmod 600 %s", what,
					  path, st->st_mode & 07777, open_to[i].what, path);
	}
	return 0;
}
