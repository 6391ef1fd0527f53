// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Listening UNIX sockets: unixsock.h. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "unixsock.h"

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* Refuses a directory others may write: they could replace the socket
 * with their own and answer in the agent's name. */
static int check_dir(const char *path, const char *dir, const char *key, struct errmsg *err)
{
	struct stat st;

	if (stat(dir, &st))
		return errmsg_set(err, -errno, "%s %s: directory %s: %s", key, path, dir,
				  strerror(errno));
	if (st.st_mode & S_IWOTH)
		return errmsg_set(err, -EPERM,
				  "%s %s: directory %s is writable by others; put the socket in "
				  "a directory only root and the socket group write",
				  key, path, dir);
	return 0;
}

static int own_dir(const char *path, const char *dir, const char *key, unsigned int gid,
		   struct errmsg *err)
{
	struct stat st;

	if (mkdir(dir, 0750) && errno != EEXIST)
		return errmsg_set(err, -errno, "%s %s: cannot create %s: %s", key, path, dir,
				  strerror(errno));
	if (lstat(dir, &st))
		return errmsg_set(err, -errno, "%s %s: %s: %s", key, path, dir, strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return errmsg_set(err, -EPERM, "%s %s: %s is not a directory of the agent's user "
				  "(uid %u): remove it, or choose another socket path", key, path,
				  dir, geteuid());
	if ((!geteuid() && chown(dir, 0, gid)) || chmod(dir, 0750))
		return errmsg_set(err, -errno, "%s %s: cannot hold %s to 0750 root:%u: %s", key,
				  path, dir, gid, strerror(errno));
	return 0;
}

static int unlink_stale(const char *path, const char *key, struct errmsg *err)
{
	struct stat st;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : errmsg_set(err, -errno, "%s %s: %s", key, path,
							 strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return errmsg_set(err, -EEXIST,
				  "%s %s exists and is no socket; remove it or choose another "
				  "path",
				  key, path);
	if (unlink(path))
		return errmsg_set(err, -errno, "%s %s: cannot remove the stale socket: %s", key,
				  path, strerror(errno));
	return 0;
}

int unixsock_listen(const char *path, const char *key, unsigned int gid, bool make_dir,
		    struct errmsg *err)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[SUN_PATH_MAX];
	int fd, ret;

	if (strlen(path) >= sizeof(sun.sun_path))
		return errmsg_set(err, -ENAMETOOLONG, "%s %s: longer than %zu bytes", key, path,
				  sizeof(sun.sun_path) - 1);
	snprintf(dir, sizeof(dir), "%s", path);
	dirname(dir);
	ret = make_dir ? own_dir(path, dir, key, gid, err) : check_dir(path, dir, key, err);
	if (!ret)
		ret = unlink_stale(path, key, err);
	if (ret)
		return ret;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errmsg_set(err, -errno, "%s %s: %s", key, path, strerror(errno));
	/* Nobody connects before listen(): the modes are set first. */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		ret = errmsg_set(err, -errno, "%s %s: bind: %s", key, path, strerror(errno));
		close(fd);
		return ret;
	}
	if (chmod(path, 0660) || (!geteuid() && chown(path, 0, gid)) || listen(fd, SOMAXCONN)) {
		ret = errmsg_set(err, -errno, "%s %s: %s (group %u)", key, path, strerror(errno),
				 gid);
		close(fd);
		return ret;
	}
	return fd;
}
