/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Listening UNIX sockets the agent serves to other local users: the edge's
 * authorization socket and the control socket. */
#ifndef SLUICE_UNIXSOCK_H
#define SLUICE_UNIXSOCK_H

#include <stdbool.h>

#include "errmsg.h"

/*
 * A non-blocking listening socket at path, mode 0660 and (as root) owned by
 * root:gid before anyone can connect. A stale socket at path is removed,
 * anything else there is an error. With make_dir, path's directory is
 * created if missing and held to mode 0750, root:gid; without it, a
 * directory others may write is refused (they could put their own socket
 * there). key names the config key in errors. The fd, or -errno.
 */
int unixsock_listen(const char *path, const char *key, unsigned int gid, bool make_dir,
		    struct errmsg *err);

#endif
